//! The AI providers, one module each ([`anthropic`], [`openai`]), and what they share: the
//! `next_page` pagination (bounded by `has_more` where a page has it) with a page cap and
//! repeated-cursor detection, the model
//! price table (`prices`: pinned, a file, or a URL fetched each run with the pinned table as
//! the fallback), the end of the daily buckets a report returned (how far its data reaches),
//! and turning tokens and reported costs into a collection, estimating from the price table,
//! tier by tier, the tokens a day's cost rows do not cover (by model or by project: the
//! [`Coverage`] each cost report's description supports).

pub(super) mod anthropic;
pub(super) mod openai;
mod prices;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use url::Url;

use std::path::Path;
use std::time::SystemTime;

use crate::config::Section;
use crate::cost::{Collection, Skipped, Spend, SpendKind, Unit, Usage};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe};
use crate::money::{Currency, Money};
use crate::providers::wire;
use crate::providers::{Context, Days, History};
pub(super) use prices::{PriceTable, Service, Tier};

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

/// Where a collector's prices come from: a table read at configuration time (pinned or a
/// file), or a URL fetched at each run.
pub(super) enum PriceSource {
    /// The pinned table or a file's.
    Table(PriceTable),
    /// LiteLLM's format at this URL; the pinned table when the fetch or the parse fails.
    Url(Url),
}

/// The price source `price_table` names: an `http(s)://` URL, a file (read and parsed now),
/// else the pinned table. A file that cannot be read or parsed, or a URL that is not one, is a
/// problem of the section.
fn price_table(s: &mut Section<'_>, setting: Option<&str>) -> Option<PriceSource> {
    let setting = setting.map(str::trim).filter(|p| !p.is_empty());
    match setting {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            s.url("price_table", url).map(PriceSource::Url)
        }
        Some(path) => match PriceTable::from_file(Path::new(path)) {
            Ok(t) => Some(PriceSource::Table(t)),
            Err(e) => {
                s.fail("price_table", e);
                None
            }
        },
        None => match PriceTable::pinned() {
            Ok(t) => Some(PriceSource::Table(t)),
            Err(e) => {
                s.fail_section(e);
                None
            }
        },
    }
}

impl PriceSource {
    /// The table for this run: a URL is fetched (GET, no credentials) and parsed; when that
    /// fails the pinned table is used and the reason logged. Never fails the collection.
    pub(super) async fn table(&self, cx: &Context, provider: &str) -> PriceTable {
        let url = match self {
            PriceSource::Table(t) => return t.clone(),
            PriceSource::Url(url) => url,
        };
        match fetch_table(cx, url).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(
                    provider,
                    "the price table at {} could not be used, so the pinned one ({}) is: {e}",
                    describe(url),
                    prices::PINNED_FROM
                );
                match PriceTable::pinned() {
                    Ok(t) => t,
                    // A test proves the pinned table parses; an empty table estimates nothing
                    // and every token is counted as unpriced.
                    Err(e) => {
                        tracing::error!("{e}");
                        PriceTable::empty()
                    }
                }
            }
        }
    }
}

async fn fetch_table(cx: &Context, url: &Url) -> Result<PriceTable, String> {
    let what = format!("GET {}", describe(url));
    let resp = cx
        .http
        .get(url, Auth::Signed(&[]), &[("accept", "application/json")])
        .await
        .map_err(|e| e.to_string())?;
    let last_modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let body = crate::http::read_capped(resp, &what, prices::MAX_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&body).map_err(|_| format!("{what}: not UTF-8"))?;
    PriceTable::parse(
        text,
        prices::Origin {
            source: "url",
            as_of: last_modified.unwrap_or(cx.now),
        },
    )
    .map_err(|e| format!("{what}: {e}"))
}

/// The latest end of the daily buckets of a report page (`ending_at` as RFC 3339 for
/// Anthropic, `end_time` as Unix seconds for OpenAI), folded into `latest`.
fn bucket_end(page: &Value, latest: &mut Option<SystemTime>) -> Result<(), CollectError> {
    for b in page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let end = match (b.get("ending_at"), b.get("end_time")) {
            (Some(Value::String(t)), _) => {
                wire::date_time(t).map(SystemTime::from).ok_or_else(|| {
                    CollectError::new(
                        Reason::Decode,
                        format!("ending_at {t:?} is not an RFC 3339 time"),
                    )
                })?
            }
            (_, Some(Value::Number(n))) => n
                .as_u64()
                .map(|secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .ok_or_else(|| {
                    CollectError::new(Reason::Decode, format!("end_time {n} is not a time"))
                })?,
            _ => continue,
        };
        if latest.is_none_or(|l| end > l) {
            *latest = Some(end);
        }
    }
    Ok(())
}

/// Follows `next_page` from the first page, sending the cursor as `page`, while `has_more`
/// says there is more; a page without `has_more` (a cursor page, as Anthropic's analytics
/// reports answer) has more while its `next_page` is set. Calls `each` with every page's JSON.
async fn paginate(
    cx: &Context,
    first: Url,
    auth: Auth<'_>,
    headers: &[(&'static str, &str)],
    mut each: impl FnMut(&Value) -> Result<(), CollectError>,
) -> Result<(), CollectError> {
    let mut seen: HashSet<u64> = HashSet::new();
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
        let next = json.get("next_page").and_then(Value::as_str);
        let more = match json.get("has_more") {
            Some(v) => v.as_bool().unwrap_or(false),
            None => next.is_some_and(|n| !n.is_empty()),
        };
        match (more, next) {
            (false, _) => return Ok(()),
            (true, None) | (true, Some("")) => {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!("{what}: has_more is true but next_page is missing"),
                ));
            }
            (true, Some(cursor)) => {
                let hash = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    cursor.hash(&mut h);
                    h.finish()
                };
                if !seen.insert(hash) {
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

/// A bucket's start day and its rows.
pub(super) type Bucket<'a> = (Option<time::Date>, &'a [Value]);

/// The rows of each bucket of a page, with the day the bucket starts on (`starting_at` as RFC
/// 3339, `start_time` as Unix seconds; `None` when it says neither).
fn buckets(page: &Value) -> Result<Vec<Bucket<'_>>, CollectError> {
    let mut out = Vec::new();
    for b in page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let day = match (b.get("starting_at"), b.get("start_time")) {
            (Some(Value::String(t)), _) => Some(
                wire::date_time(t)
                    .ok_or_else(|| {
                        CollectError::new(
                            Reason::Decode,
                            format!("starting_at {t:?} is not an RFC 3339 time"),
                        )
                    })?
                    .date(),
            ),
            (_, Some(Value::Number(n))) => {
                let secs = n.as_i64().ok_or_else(|| {
                    CollectError::new(Reason::Decode, format!("start_time {n} is not a time"))
                })?;
                Some(
                    time::OffsetDateTime::from_unix_timestamp(secs)
                        .map_err(|e| {
                            CollectError::new(Reason::Decode, format!("start_time {n}: {e}"))
                        })?
                        .date(),
                )
            }
            _ => None,
        };
        let rows = b
            .get("results")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        out.push((day, rows));
    }
    Ok(out)
}

/// One of a provider's two reports: the URL of its first page and how one of its rows adds to
/// a day's totals.
pub(super) struct Report {
    pub(super) url: Url,
    pub(super) add_row: fn(&mut AiTotals, &Value) -> Result<(), CollectError>,
}

/// How a day's tokens are known to be in that day's reported cost: from what the provider's
/// cost report promises, never from the text of a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Coverage {
    /// The cost rows name their model (Anthropic): a model's tokens are covered on a day the
    /// report has a cost of that model, except in the service tiers it leaves out.
    #[default]
    Model,
    /// The cost rows name their project but not their model (OpenAI: a `line_item` has no
    /// documented format): a project's tokens are covered on a day the report has a cost of
    /// that project; a cost of no project could be any project's, and covers the whole day.
    Group,
}

/// What a provider's cost report leaves out, for [`Daily::new`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Scope {
    /// Service tiers the cost report leaves out (Anthropic's priority tier): their tokens are
    /// estimated even on a covered day.
    pub(super) unreported: &'static [Service],
    /// How coverage is decided.
    pub(super) coverage: Coverage,
}

/// The group of a row without one (OpenAI's null `project_id`).
pub(super) const NO_GROUP: &str = "none";

/// Reads the usage and the cost report over `days` at the same time (they are independent),
/// each daily bucket's rows added to its day's totals.
pub(super) async fn read_reports(
    cx: &Context,
    days: Days,
    scope: Scope,
    auth: Auth<'_>,
    headers: &[(&'static str, &str)],
    usage: Report,
    cost: Report,
) -> Result<Daily, CollectError> {
    let mut usage_daily = Daily::new(days, scope);
    let mut cost_daily = Daily::new(days, scope);
    let usage_read = paginate(cx, usage.url, auth, headers, |page| {
        bucket_end(page, &mut usage_daily.usage_end)?;
        usage_daily.add_buckets(page, usage.add_row)
    });
    let cost_read = paginate(cx, cost.url, auth, headers, |page| {
        bucket_end(page, &mut cost_daily.cost_end)?;
        cost_daily.add_buckets(page, cost.add_row)
    });
    let (u, c) = futures_util::future::join(usage_read, cost_read).await;
    u?;
    c?;
    usage_daily.absorb(cost_daily);
    Ok(usage_daily)
}

/// A month's tokens and costs, day by day: what `collect` sums and `history` accumulates.
/// Which tokens the cost report already covers is decided day by day, before the days are
/// added up.
pub(super) struct Daily {
    days: Days,
    per_day: Vec<AiTotals>,
    /// The latest end of the usage report's buckets.
    usage_end: Option<SystemTime>,
    /// The latest end of the cost report's buckets.
    cost_end: Option<SystemTime>,
}

impl Daily {
    /// Empty totals for each day of `days`.
    pub(super) fn new(days: Days, scope: Scope) -> Daily {
        Daily {
            per_day: days
                .iter()
                .map(|_| AiTotals {
                    scope,
                    ..AiTotals::default()
                })
                .collect(),
            days,
            usage_end: None,
            cost_end: None,
        }
    }

    /// Adds every row of a page's daily buckets to its day's totals.
    fn add_buckets(
        &mut self,
        page: &Value,
        add_row: fn(&mut AiTotals, &Value) -> Result<(), CollectError>,
    ) -> Result<(), CollectError> {
        for (day, rows) in buckets(page)? {
            let totals = self.day(day);
            for r in rows {
                add_row(totals, r)?;
            }
        }
        Ok(())
    }

    /// The totals of `day` (a bucket outside the days counts on the nearest one; one without a
    /// day on the first).
    pub(super) fn day(&mut self, day: Option<time::Date>) -> &mut AiTotals {
        let day = day
            .unwrap_or(self.days.first)
            .clamp(self.days.first, self.days.last);
        let i = usize::try_from((day - self.days.first).whole_days()).unwrap_or(0);
        let last = self.per_day.len().saturating_sub(1);
        &mut self.per_day[i.min(last)]
    }

    /// Adds another reading of the same days (the other report).
    pub(super) fn absorb(&mut self, other: Daily) {
        for (mine, theirs) in self.per_day.iter_mut().zip(&other.per_day) {
            mine.merge(theirs);
        }
        self.usage_end = self.usage_end.max(other.usage_end);
        self.cost_end = self.cost_end.max(other.cost_end);
    }

    /// Estimates each day's uncovered tokens from `prices`.
    fn settle(&mut self, provider: &str, prices: &PriceTable) -> Result<(), CollectError> {
        for t in &mut self.per_day {
            t.settle(provider, prices)?;
        }
        Ok(())
    }

    /// Everything, with the reports' ends, each day's uncovered tokens estimated.
    pub(super) fn total(
        mut self,
        provider: &str,
        prices: &PriceTable,
    ) -> Result<AiTotals, CollectError> {
        self.settle(provider, prices)?;
        let mut it = self.per_day.into_iter();
        let mut total = it.next().unwrap_or_default();
        for t in it {
            total.merge(&t);
        }
        total.usage_end = self.usage_end;
        total.cost_end = self.cost_end;
        Ok(total)
    }

    /// The month-to-date collection at the end of each day.
    pub(super) fn history(
        mut self,
        provider: &str,
        prices: &PriceTable,
        labels: SpendLabels,
    ) -> Result<History, CollectError> {
        self.settle(provider, prices)?;
        let mut running: Option<AiTotals> = None;
        let mut out = Vec::with_capacity(self.per_day.len());
        for (day, t) in self.days.iter().zip(self.per_day) {
            let r = match running.as_mut() {
                Some(r) => {
                    r.merge(&t);
                    r
                }
                None => running.insert(t),
            };
            out.push((
                day,
                r.clone()
                    .into_collection(provider, prices, labels, Days::end_of(day))?,
            ));
        }
        Ok(out)
    }
}

/// The labels of a provider's spend: what names a reported cost line (`model` for
/// Anthropic, `line_item` for OpenAI), its group (`workspace`, `project`) and how many groups
/// keep their own label.
#[derive(Debug, Clone, Copy)]
pub(super) struct SpendLabels {
    pub(super) item: &'static str,
    pub(super) group: &'static str,
    pub(super) top_groups: usize,
}

/// Month-to-date tokens and reported costs of one provider.
#[derive(Debug, Default, Clone)]
pub(super) struct AiTotals {
    /// Tokens by (model, kind, tier, group); the group is empty where the usage report has
    /// none.
    tokens: BTreeMap<(String, TokenType, Tier, String), f64>,
    /// Reported USD by (item, group): the item is the model or the line item; an empty group
    /// is none known.
    cost: BTreeMap<(String, String), Decimal>,
    /// What this day's cost rows cover: normalised model names or groups, by the coverage.
    covers: BTreeSet<String>,
    scope: Scope,
    /// Estimated USD by model, once settled.
    estimated: BTreeMap<String, Decimal>,
    /// Tokens neither covered nor priced, by model, once settled.
    unpriced: BTreeMap<String, f64>,
    /// Whether the estimates are made (each day's before the days are added up).
    settled: bool,
    /// A reported cost that no decimal could hold was added.
    overflow: bool,
    /// Rows left out of these figures.
    pub(super) skipped: Skipped,
    /// The latest end of the usage report's buckets.
    usage_end: Option<SystemTime>,
    /// The latest end of the cost report's buckets.
    cost_end: Option<SystemTime>,
}

impl AiTotals {
    /// Adds tokens of a model, billed in `tier`, in no group.
    pub(super) fn add_tokens(&mut self, model: &str, kind: TokenType, tier: Tier, n: f64) {
        self.add_group_tokens(model, "", kind, tier, n);
    }

    /// Adds tokens of a model in a group (OpenAI's project), billed in `tier`.
    pub(super) fn add_group_tokens(
        &mut self,
        model: &str,
        group: &str,
        kind: TokenType,
        tier: Tier,
        n: f64,
    ) {
        *self
            .tokens
            .entry((model.to_owned(), kind, tier, group.to_owned()))
            .or_default() += n;
    }

    /// Adds another day's tokens, costs and estimates.
    pub(super) fn merge(&mut self, o: &AiTotals) {
        for (k, n) in &o.tokens {
            *self.tokens.entry(k.clone()).or_default() += n;
        }
        for ((item, g), c) in &o.cost {
            self.add_amount(item, g, *c);
        }
        self.covers.extend(o.covers.iter().cloned());
        for (m, c) in &o.estimated {
            let e = self.estimated.entry(m.clone()).or_default();
            match e.checked_add(*c) {
                Some(v) => *e = v,
                None => self.overflow = true,
            }
        }
        for (m, n) in &o.unpriced {
            *self.unpriced.entry(m.clone()).or_default() += n;
        }
        self.settled = self.settled || o.settled;
        self.overflow |= o.overflow;
        self.skipped.merge(o.skipped.clone());
    }

    /// Adds a reported cost in USD of `item` (a model, or a line item) in `group` (workspace
    /// or project; empty when the report has none). A sum no decimal can hold is remembered:
    /// `into_collection` fails with `decode`.
    pub(super) fn add_cost(&mut self, item: &str, group: &str, usd: Decimal) {
        let key = match self.scope.coverage {
            Coverage::Model => normalise(item),
            Coverage::Group => group.to_owned(),
        };
        self.covers.insert(key);
        self.add_amount(item, group, usd);
    }

    fn add_amount(&mut self, item: &str, group: &str, usd: Decimal) {
        let e = self
            .cost
            .entry((item.to_owned(), group.to_owned()))
            .or_default();
        match e.checked_add(usd) {
            Some(v) => *e = v,
            None => self.overflow = true,
        }
    }

    /// Whether this day's cost rows already hold what `model`'s tokens in `tier` and `group`
    /// cost.
    fn covered(&self, model: &str, tier: Tier, group: &str) -> bool {
        if self.scope.unreported.contains(&tier.service) {
            return false;
        }
        match self.scope.coverage {
            Coverage::Model => self.covers.contains(&normalise(model)),
            Coverage::Group => {
                self.covers.contains(NO_GROUP)
                    || self.covers.contains(group)
                    || (group == NO_GROUP && !self.covers.is_empty())
            }
        }
    }

    /// Estimates, from `prices`, the tokens the cost rows do not cover, tier by tier; counts
    /// those it cannot price. Once.
    fn settle(&mut self, provider: &str, prices: &PriceTable) -> Result<(), CollectError> {
        if self.settled {
            return Ok(());
        }
        for ((m, kind, tier, group), n) in &self.tokens {
            if *n == 0.0 || self.covered(m, *tier, group) {
                continue;
            }
            match prices.price(provider, m, *kind, *tier) {
                Some(rate) => {
                    let tokens = wire::decimal(*n, "a token count")?.round();
                    wire::add(
                        self.estimated.entry(m.clone()).or_default(),
                        wire::mul(tokens, rate, "estimated cost")?,
                        "estimated cost",
                    )?;
                }
                None => *self.unpriced.entry(m.clone()).or_default() += n,
            }
        }
        self.settled = true;
        Ok(())
    }

    /// The collection: tokens by model and type; reported spend by item and group (the top
    /// groups by spend keep their label, the rest are `other`; an empty group has no label);
    /// estimated spend for the tokens no cost row covers, each tier at its price; and
    /// `unpriced_tokens` for those the table cannot price. The data reaches the end of the
    /// latest bucket of both reports (the earlier of the two), never past `now`.
    pub(super) fn into_collection(
        mut self,
        provider: &str,
        prices: &PriceTable,
        labels: SpendLabels,
        now: SystemTime,
    ) -> Result<Collection, CollectError> {
        self.settle(provider, prices)?;
        if self.overflow {
            return Err(CollectError::new(
                Reason::Decode,
                "the reported costs are too large to add up (beyond 7.9e28)",
            ));
        }
        let data_as_of = [self.usage_end, self.cost_end]
            .into_iter()
            .flatten()
            .min()
            .map_or(now, |t| t.min(now));
        // Bound the model labels: the most-used models keep their names.
        let items_are_models = labels.item == "model";
        let mut by_use: BTreeMap<String, f64> = BTreeMap::new();
        for ((m, _, _, _), n) in &self.tokens {
            *by_use.entry(m.clone()).or_default() += n;
        }
        for m in self.estimated.keys().chain(self.unpriced.keys()) {
            by_use.entry(m.clone()).or_default();
        }
        if items_are_models {
            for (m, _) in self.cost.keys() {
                by_use.entry(m.clone()).or_default();
            }
        }
        let kept_models = top(by_use.iter().map(|(m, n)| (m, *n)), MAX_MODELS);
        let model_label = |m: &String| {
            if kept_models.contains(m) {
                m.clone()
            } else {
                "other".to_owned()
            }
        };
        // Bound the line item labels (where items are not models) by spend.
        let mut by_spend: BTreeMap<String, f64> = BTreeMap::new();
        for ((item, _), c) in &self.cost {
            *by_spend.entry(item.clone()).or_default() += c.to_f64().unwrap_or(f64::MAX);
        }
        let kept_items = top(by_spend.iter().map(|(m, n)| (m, *n)), MAX_MODELS);
        let item_label = |item: &String| {
            if items_are_models {
                model_label(item)
            } else if kept_items.contains(item) {
                item.clone()
            } else {
                "other".to_owned()
            }
        };

        let mut usage_map: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
        for ((m, kind, _, _), n) in &self.tokens {
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
            wire::add(
                group_spend.entry(g.clone()).or_default(),
                *c,
                "reported cost",
            )?;
        }
        let mut groups: Vec<(&String, &Decimal)> = group_spend.iter().collect();
        groups.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let kept_groups: BTreeSet<&String> = groups
            .iter()
            .take(labels.top_groups)
            .map(|(g, _)| *g)
            .collect();
        // (item label name, item, group, basis) → USD.
        let mut spend_map: BTreeMap<(&'static str, String, String, &'static str), Decimal> =
            BTreeMap::new();
        for ((item, g), c) in &self.cost {
            let g = if g.is_empty() || kept_groups.contains(g) {
                g.clone()
            } else {
                "other".to_owned()
            };
            wire::add(
                spend_map
                    .entry((labels.item, item_label(item), g, "reported"))
                    .or_default(),
                *c,
                "reported cost",
            )?;
        }
        for (m, c) in &self.estimated {
            wire::add(
                spend_map
                    .entry((
                        "model",
                        model_label(m),
                        "unattributed".to_owned(),
                        "estimated",
                    ))
                    .or_default(),
                *c,
                "estimated cost",
            )?;
        }
        let mut unpriced: BTreeMap<String, f64> = BTreeMap::new();
        for (m, n) in &self.unpriced {
            *unpriced.entry(model_label(m)).or_default() += n;
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
        if !self.estimated.is_empty() {
            tracing::info!(
                provider,
                "part of the spend is estimated from the price table (basis=\"estimated\")"
            );
        }
        let mut spend: Vec<Spend> = spend_map
            .into_iter()
            .map(|((item_name, item, group, basis), amount)| {
                let mut l = vec![(item_name, item)];
                if !group.is_empty() {
                    l.push((labels.group, group));
                }
                l.push(("basis", basis.to_owned()));
                Spend {
                    money: Money {
                        amount: amount.round_dp(10),
                        currency: Currency::USD,
                    },
                    kind: SpendKind::Metered,
                    labels: l,
                }
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
        let origin = prices.origin();
        Ok(Collection {
            usage,
            spend,
            data_as_of: Some(data_as_of),
            price_table: Some((origin.source, origin.as_of)),
            skipped: self.skipped,
            ..Collection::default()
        })
    }
}

/// The `n` largest keys by value (ties by name).
fn top<'a>(values: impl Iterator<Item = (&'a String, f64)>, n: usize) -> BTreeSet<String> {
    let mut ranked: Vec<(&String, f64)> = values.collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.into_iter().take(n).map(|(m, _)| m.clone()).collect()
}

/// Model names compared without a trailing date, as the price table looks them up.
fn normalise(m: &str) -> String {
    prices::strip_date(&m.to_ascii_lowercase()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACES: SpendLabels = SpendLabels {
        item: "model",
        group: "workspace",
        top_groups: 10,
    };

    #[test]
    fn dated_model_names_match_undated_ones() {
        assert_eq!(normalise("claude-sonnet-4-5-20250929"), "claude-sonnet-4-5");
        assert_eq!(normalise("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
        assert_eq!(normalise("gpt-4o"), "gpt-4o");
    }

    #[test]
    fn tokens_without_cost_are_estimated_or_counted_as_unpriced() {
        let std = Tier::default();
        let mut t = AiTotals::default();
        t.add_tokens("claude-sonnet-4-5", TokenType::Input, std, 1_000_000.0);
        t.add_tokens("claude-sonnet-4-5", TokenType::Output, std, 100_000.0);
        t.add_tokens("mystery-model", TokenType::Input, std, 42.0);
        t.add_tokens("claude-opus-4-1", TokenType::Input, std, 10.0);
        t.add_cost("claude-opus-4-1", "default", Decimal::new(123, 2));
        let c = t
            .into_collection(
                "anthropic",
                &PriceTable::pinned().unwrap(),
                WORKSPACES,
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

    #[test]
    fn each_tier_is_priced_apart_and_unreported_tiers_are_estimated() {
        let batch = Tier {
            service: Service::Batch,
            long_context: false,
        };
        let priority = Tier {
            service: Service::Priority,
            long_context: false,
        };
        let mut t = AiTotals {
            scope: Scope {
                unreported: &[Service::Priority],
                coverage: Coverage::Model,
            },
            ..AiTotals::default()
        };
        // Haiku 4.5: $1/M input, $0.50/M in batch.
        t.add_tokens(
            "claude-haiku-4-5",
            TokenType::Input,
            Tier::default(),
            1_000_000.0,
        );
        t.add_tokens("claude-haiku-4-5", TokenType::Input, batch, 1_000_000.0);
        // Sonnet 4.5 has a reported cost, but its priority-tier tokens are not in it.
        t.add_cost("claude-sonnet-4-5-20250929", "default", Decimal::ONE);
        t.add_tokens(
            "claude-sonnet-4-5-20250929",
            TokenType::Input,
            Tier::default(),
            5.0,
        );
        t.add_tokens(
            "claude-sonnet-4-5-20250929",
            TokenType::Output,
            priority,
            100_000.0,
        );
        let now = std::time::SystemTime::now();
        let c = t
            .into_collection("anthropic", &PriceTable::pinned().unwrap(), WORKSPACES, now)
            .unwrap();
        let est = |m: &str| {
            c.spend
                .iter()
                .find(|s| {
                    s.labels.contains(&("basis", "estimated".into()))
                        && s.labels.contains(&("model", m.into()))
                })
                .map(|s| s.money.amount)
        };
        assert_eq!(est("claude-haiku-4-5"), Some(Decimal::new(15, 1)));
        // 100k output tokens at the plain $15/M (the table has no priority price for it).
        assert_eq!(est("claude-sonnet-4-5-20250929"), Some(Decimal::new(15, 1)));
        // Tokens are reported once per model and type, whatever the tier.
        let input: f64 = c
            .usage
            .iter()
            .filter(|u| u.labels.contains(&("model", "claude-haiku-4-5".into())))
            .map(|u| u.value)
            .sum();
        assert_eq!(input, 2_000_000.0);
        assert_eq!(c.price_table.map(|p| p.0), Some("pinned"));
    }

    /// OpenAI: a day's tokens of a project are covered when that day's cost report has a cost
    /// of the project (whatever its line item says), or a cost of no project; else estimated.
    #[test]
    fn a_project_covered_by_the_cost_report_is_not_estimated_again() {
        let std = Tier::default();
        let scope = Scope {
            unreported: &[],
            coverage: Coverage::Group,
        };
        let labels = SpendLabels {
            item: "line_item",
            group: "project",
            top_groups: 10,
        };
        let prices = PriceTable::pinned().unwrap();
        let estimated = |t: AiTotals| {
            let c = t
                .into_collection("openai", &prices, labels, SystemTime::now())
                .unwrap();
            c.spend
                .iter()
                .filter(|s| s.labels.contains(&("basis", "estimated".into())))
                .map(|s| s.money.amount)
                .sum::<Decimal>()
        };
        let day = |costs: &[(&str, &str)]| {
            let mut t = AiTotals {
                scope,
                ..AiTotals::default()
            };
            // A million gpt-4o-mini input tokens ($0.15) in each of proj_a, proj_b and none.
            for g in ["proj_a", "proj_b", NO_GROUP] {
                t.add_group_tokens("gpt-4o-mini", g, TokenType::Input, std, 1e6);
            }
            for (item, g) in costs {
                t.add_cost(item, g, Decimal::ONE);
            }
            t
        };
        let p = |s: &str| s.parse::<Decimal>().unwrap();
        let dec = |d: u8| time::Date::from_calendar_date(2026, time::Month::December, d).unwrap();
        assert_eq!(estimated(day(&[])), p("0.45"));
        // proj_a's cost covers proj_a, and the tokens of no project (they could be its).
        assert_eq!(estimated(day(&[("input_tokens", "proj_a")])), p("0.15"));
        // A cost of no project could be any project's: nothing is estimated that day.
        assert_eq!(estimated(day(&[("Fine-tuning", NO_GROUP)])), Decimal::ZERO);
        // Days are settled apart: a project covered on one day is estimated on another.
        let mut daily = Daily::new(Days::month_of(dec(1), dec(2)), scope);
        daily.day(Some(dec(1))).merge(&day(&[("x", "proj_a")]));
        daily.day(Some(dec(2))).add_group_tokens(
            "gpt-4o-mini",
            "proj_a",
            TokenType::Input,
            std,
            1e6,
        );
        assert_eq!(
            estimated(daily.total("openai", &prices).unwrap()),
            p("0.30")
        );
    }
}
