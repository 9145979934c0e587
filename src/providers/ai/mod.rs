//! The AI providers, one module each ([`anthropic`], [`openai`]), and what they share: the
//! `has_more`/`next_page` pagination with a page cap and repeated-cursor detection, the model
//! price table (`prices`), and turning tokens and reported costs into a collection,
//! estimating from the price table what the provider reports without a cost.

pub(super) mod anthropic;
pub(super) mod openai;
mod prices;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rust_decimal::Decimal;
use serde_json::Value;
use url::Url;

use std::path::Path;

use crate::config::Section;
use crate::cost::{Collection, Spend, SpendKind, Unit, Usage};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe};
use crate::money::{Currency, Money};
use crate::providers::Context;
use crate::providers::wire;
use prices::PriceTable;

/// Pages followed before giving up (`pagination`): a month of daily buckets is one page.
pub(super) const MAX_PAGES: usize = 50;
/// Largest page body read.
const PAGE_LIMIT: usize = 16 << 20;
/// Distinct models kept before the rest are `other`.
const MAX_MODELS: usize = 50;

/// The kinds of token reported (`token_type` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum TokenType {
    /// Uncached input.
    Input,
    /// Output.
    Output,
    /// Input read from the prompt cache.
    CacheRead,
    /// Input written to the prompt cache (5-minute writes for Anthropic).
    CacheWrite,
    /// Anthropic 1-hour cache writes: reported as `cache_write`, priced apart.
    CacheWrite1h,
}

impl TokenType {
    /// The label value.
    pub(super) fn label(self) -> &'static str {
        match self {
            TokenType::Input => "input",
            TokenType::Output => "output",
            TokenType::CacheRead => "cache_read",
            TokenType::CacheWrite | TokenType::CacheWrite1h => "cache_write",
        }
    }
}

/// The price table: the file `price_table` names, else the pinned one. A table that cannot be
/// read or parsed is a problem of the section.
fn price_table(s: &mut Section<'_>, path: Option<&str>) -> Option<PriceTable> {
    let loaded = match path.map(str::trim) {
        None | Some("") => PriceTable::pinned(),
        Some(path) => PriceTable::from_file(Path::new(path)),
    };
    match loaded {
        Ok(t) => Some(t),
        Err(e) if path.is_some_and(|p| !p.trim().is_empty()) => {
            s.fail("price_table", e);
            None
        }
        Err(e) => {
            s.fail_section(e);
            None
        }
    }
}

/// Follows `has_more`/`next_page` from the first page, sending the cursor as `page`. Calls
/// `each` with every page's JSON.
pub(super) async fn paginate(
    cx: &Context,
    first: Url,
    auth: Auth<'_>,
    headers: &[(&'static str, &str)],
    mut each: impl FnMut(&Value) -> Result<(), CollectError>,
) -> Result<(), CollectError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut url = first.clone();
    for page in 1..=MAX_PAGES {
        let what = format!("GET {} (page {page})", describe(&url));
        let resp = cx.http.get(&url, auth, headers).await?;
        let body = crate::http::read_capped(resp, &what, PAGE_LIMIT).await?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| CollectError::new(Reason::Decode, format!("{what}: not JSON ({e})")))?;
        if !json.get("data").is_some_and(Value::is_array) {
            return Err(CollectError::new(
                Reason::Decode,
                format!("{what}: no `data` array"),
            ));
        }
        each(&json).map_err(|e| e.context(&what))?;
        let more = json
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let next = json.get("next_page").and_then(Value::as_str);
        match (more, next) {
            (false, _) => return Ok(()),
            (true, None) | (true, Some("")) => {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!("{what}: has_more is true but next_page is missing"),
                ));
            }
            (true, Some(cursor)) => {
                if !seen.insert(cursor.to_owned()) {
                    return Err(CollectError::new(
                        Reason::Pagination,
                        format!("{what}: the cursor repeats; stopping instead of looping"),
                    ));
                }
                url = first.clone();
                url.query_pairs_mut().append_pair("page", cursor);
            }
        }
    }
    Err(CollectError::new(
        Reason::Pagination,
        format!("more than {MAX_PAGES} pages from {}", describe(&first)),
    ))
}

/// Every bucket's `results` of a page.
pub(super) fn results(page: &Value) -> impl Iterator<Item = &Value> {
    page.get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("results").and_then(Value::as_array))
        .flatten()
}

/// A non-negative token count: a JSON number (or numeric string); null or absent is 0.
pub(super) fn tokens(v: Option<&Value>) -> Result<f64, CollectError> {
    match v {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => wire::non_negative(v)
            .map_err(|e| CollectError::new(Reason::Decode, format!("a token count: {e}"))),
    }
}

/// A label value from a nullable dimension.
pub(super) fn dimension(v: Option<&Value>, null: &str) -> String {
    match v.and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => s.chars().take(80).collect(),
        _ => null.to_owned(),
    }
}

/// Month-to-date tokens and reported costs of one provider.
#[derive(Debug, Default)]
pub(super) struct AiTotals {
    tokens: BTreeMap<(String, TokenType), f64>,
    cost: BTreeMap<(String, String), Decimal>,
}

impl AiTotals {
    /// Adds tokens of a model.
    pub(super) fn add_tokens(&mut self, model: &str, kind: TokenType, n: f64) {
        *self.tokens.entry((model.to_owned(), kind)).or_default() += n;
    }

    /// Adds a reported cost in USD for a model and group (workspace or project).
    pub(super) fn add_cost(&mut self, model: &str, group: &str, usd: Decimal) {
        *self
            .cost
            .entry((model.to_owned(), group.to_owned()))
            .or_default() += usd;
    }

    /// The collection: tokens by model and type; reported spend by model and group (the
    /// top `top_groups` groups by spend, the rest `other`); estimated spend for the models with
    /// tokens but no reported cost; and `unpriced_tokens` for those the table cannot price.
    pub(super) fn into_collection(
        self,
        provider: &str,
        prices: &PriceTable,
        group_label: &'static str,
        top_groups: usize,
        now: std::time::SystemTime,
    ) -> Result<Collection, CollectError> {
        // Bound the model labels: the most-used models keep their names.
        let mut by_use: BTreeMap<String, f64> = BTreeMap::new();
        for ((m, _), n) in &self.tokens {
            *by_use.entry(m.clone()).or_default() += n;
        }
        for (m, _) in self.cost.keys() {
            by_use.entry(m.clone()).or_default();
        }
        let mut ranked: Vec<(&String, &f64)> = by_use.iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        let kept_models: BTreeSet<String> = ranked
            .iter()
            .take(MAX_MODELS)
            .map(|(m, _)| (*m).clone())
            .collect();
        let model_label = |m: &String| {
            if kept_models.contains(m) {
                m.clone()
            } else {
                "other".to_owned()
            }
        };

        let mut usage_map: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
        for ((m, kind), n) in &self.tokens {
            *usage_map.entry((model_label(m), kind.label())).or_default() += n;
        }
        let mut usage: Vec<Usage> = usage_map
            .into_iter()
            .map(|((model, token_type), value)| Usage {
                resource: "tokens".into(),
                unit: Unit::Tokens,
                value,
                labels: vec![("model", model), ("token_type", token_type.to_owned())],
            })
            .collect();

        // Reported spend, groups bounded by spend.
        let mut group_spend: BTreeMap<String, Decimal> = BTreeMap::new();
        for ((_, g), c) in &self.cost {
            *group_spend.entry(g.clone()).or_default() += c;
        }
        let mut groups: Vec<(&String, &Decimal)> = group_spend.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let kept_groups: BTreeSet<&String> =
            groups.iter().take(top_groups).map(|(g, _)| *g).collect();
        let mut spend_map: BTreeMap<(String, String, &'static str), Decimal> = BTreeMap::new();
        for ((m, g), c) in &self.cost {
            let g = if kept_groups.contains(g) {
                g.clone()
            } else {
                "other".to_owned()
            };
            *spend_map
                .entry((model_label(m), g, "reported"))
                .or_default() += c;
        }

        // Models with tokens but no reported cost: estimate, or count as unpriced.
        let reported: HashSet<String> = self.cost.keys().map(|(m, _)| normalise(m)).collect();
        let mut unpriced: BTreeMap<String, f64> = BTreeMap::new();
        let mut estimated_any = false;
        for ((m, kind), n) in &self.tokens {
            if reported.contains(&normalise(m)) || *n == 0.0 {
                continue;
            }
            match prices.rates(provider, m) {
                Some(r) => {
                    let rate = match kind {
                        TokenType::Input => r.input,
                        TokenType::Output => r.output,
                        TokenType::CacheRead => r.cache_read,
                        TokenType::CacheWrite => r.cache_write,
                        TokenType::CacheWrite1h => r.cache_write_1h,
                    };
                    let tokens = wire::decimal(*n, "a token count")?.round();
                    *spend_map
                        .entry((model_label(m), "unattributed".to_owned(), "estimated"))
                        .or_default() += tokens * rate;
                    estimated_any = true;
                }
                None => *unpriced.entry(model_label(m)).or_default() += n,
            }
        }
        for (model, n) in unpriced {
            tracing::warn!(provider, %model, "{n} tokens have no price: no reported cost and not in the price table");
            usage.push(Usage {
                resource: "unpriced_tokens".into(),
                unit: Unit::Tokens,
                value: n,
                labels: vec![("model", model)],
            });
        }
        if estimated_any {
            tracing::info!(
                provider,
                "part of the spend is estimated from the price table (basis=\"estimated\")"
            );
        }
        let mut spend: Vec<Spend> = spend_map
            .into_iter()
            .map(|((model, group, basis), amount)| Spend {
                money: Money {
                    amount: amount.max(Decimal::ZERO).round_dp(10),
                    currency: Currency::USD,
                },
                kind: SpendKind::Metered,
                labels: vec![
                    ("model", model),
                    (group_label, group),
                    ("basis", basis.to_owned()),
                ],
            })
            .collect();
        if spend.is_empty() {
            spend.push(Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: Currency::USD,
                },
                kind: SpendKind::Metered,
                labels: vec![],
            });
        }
        Ok(Collection {
            usage,
            spend,
            data_as_of: Some(now),
            ..Collection::default()
        })
    }
}

/// Model names compared without a trailing date, as the price table looks them up.
fn normalise(m: &str) -> String {
    prices::strip_date(&m.to_ascii_lowercase()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_model_names_match_undated_ones() {
        assert_eq!(normalise("claude-sonnet-4-5-20250929"), "claude-sonnet-4-5");
        assert_eq!(normalise("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
        assert_eq!(normalise("gpt-4o"), "gpt-4o");
    }

    #[test]
    fn tokens_without_cost_are_estimated_or_counted_as_unpriced() {
        let mut t = AiTotals::default();
        t.add_tokens("claude-sonnet-4-5", TokenType::Input, 1_000_000.0);
        t.add_tokens("claude-sonnet-4-5", TokenType::Output, 100_000.0);
        t.add_tokens("mystery-model", TokenType::Input, 42.0);
        t.add_tokens("claude-opus-4-1", TokenType::Input, 10.0);
        t.add_cost("claude-opus-4-1", "default", Decimal::new(123, 2));
        let c = t
            .into_collection(
                "anthropic",
                &PriceTable::pinned().unwrap(),
                "workspace",
                10,
                std::time::SystemTime::now(),
            )
            .unwrap();
        let est: Vec<&Spend> = c
            .spend
            .iter()
            .filter(|s| s.labels.contains(&("basis", "estimated".into())))
            .collect();
        assert_eq!(est.len(), 1);
        // 1M × $3/M + 100k × $15/M
        assert_eq!(est[0].money.amount, Decimal::new(45, 1));
        let unpriced = c
            .usage
            .iter()
            .find(|u| u.resource == "unpriced_tokens")
            .unwrap();
        assert_eq!(unpriced.value, 42.0);
        assert_eq!(unpriced.labels, vec![("model", "mystery-model".to_owned())]);
    }
}
