//! Anthropic: month-to-date tokens by model and type (`usage_report/messages`) and cost by
//! model and workspace (`cost_report`, amounts in cents as decimal strings) from the Admin API.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use url::Url;

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::Collection;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, join};
use crate::money::{ConfigDecimal, Currency};
use crate::providers::ai::{
    self, AiTotals, Coverage, Daily, PriceSource, Scope, Service, SpendLabels, Tier, TokenType,
};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "anthropic";
const BASE_URL: &str = "https://api.anthropic.com";
const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

/// The registry's description of Anthropic.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[EnvVar {
            name: "ANTHROPIC_ADMIN_KEY",
            key: "admin_key",
            help: "Anthropic Admin API key (sk-ant-admin...): not read-only, keep it to this job.",
        }],
        secrets: &["admin_key"],
    },
    posts: &[],
    configure,
};

/// `[providers.anthropic]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    admin_key: RawSecret,
    price_table: Option<String>,
    top_workspaces: Option<u32>,
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let prices = ai::price_table(s, raw.price_table.as_deref());
    let top_workspaces = s.count("top_workspaces", raw.top_workspaces, 10);
    let api = match s.secret("admin_key", &raw.admin_key) {
        None => Api::NoCredentials,
        Some(key) => {
            s.bills_in(Currency::USD);
            Api::Collector(Arc::new(Anthropic {
                base: base?,
                key,
                prices: prices?,
                top_workspaces,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The Anthropic collector.
struct Anthropic {
    base: Url,
    key: Secret,
    prices: PriceSource,
    top_workspaces: usize,
}

impl Anthropic {
    /// Reported spend by model and workspace.
    fn labels(&self) -> SpendLabels {
        SpendLabels {
            item: "model",
            group: "workspace",
            top_groups: self.top_workspaces,
        }
    }

    fn url(&self, path: &str, window: (&str, &str), group_by: &[&str]) -> Url {
        let mut url = join(&self.base, path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("starting_at", window.0);
            q.append_pair("ending_at", window.1);
            q.append_pair("bucket_width", "1d");
            q.append_pair("limit", "31");
            for g in group_by {
                q.append_pair("group_by[]", g);
            }
        }
        url
    }

    /// Reads both reports over `days` (`ending_at` = `end`), each daily bucket's rows added to
    /// its day's totals.
    async fn read(&self, cx: &Context, days: Days, end: &str) -> Result<Daily, CollectError> {
        let start = wire::rfc3339(days.start());
        let window = (start.as_str(), end);
        let usage = ai::Report {
            url: self.url(
                "/v1/organizations/usage_report/messages",
                window,
                &["model", "service_tier", "context_window"],
            ),
            add_row: add_usage_row,
        };
        let cost = ai::Report {
            url: self.url(
                "/v1/organizations/cost_report",
                window,
                &["description", "workspace_id"],
            ),
            add_row: add_cost_row,
        };
        let auth = Auth::Header("x-api-key", &self.key);
        // Priority Tier costs are not in the cost report.
        ai::read_reports(
            cx,
            days,
            Scope {
                unreported: &[Service::Priority],
                coverage: Coverage::Model,
            },
            auth,
            &[VERSION],
            usage,
            cost,
        )
        .await
        .map_err(admin_hint)
    }
}

/// A usage-report row: tokens by model, kind and tier.
fn add_usage_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let model = ai::dimension(r.get("model"), "unknown");
    let tier = Tier {
        service: Service::parse(r.get("service_tier").and_then(Value::as_str)),
        long_context: r.get("context_window").and_then(Value::as_str) == Some("200k-1M"),
    };
    let cache = r.get("cache_creation");
    for (kind, v) in [
        (TokenType::Input, r.get("uncached_input_tokens")),
        (TokenType::Output, r.get("output_tokens")),
        (TokenType::CacheRead, r.get("cache_read_input_tokens")),
        (
            TokenType::CacheWrite,
            cache.and_then(|c| c.get("ephemeral_5m_input_tokens")),
        ),
        (
            TokenType::CacheWrite1h,
            cache.and_then(|c| c.get("ephemeral_1h_input_tokens")),
        ),
    ] {
        totals.add_tokens(&model, kind, tier, ai::tokens(v)?);
    }
    Ok(())
}

/// A cost-report row: cents by model and workspace.
fn add_cost_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let currency = r.get("currency").and_then(Value::as_str).unwrap_or("USD");
    if !currency.eq_ignore_ascii_case("USD") {
        return Err(CollectError::new(
            Reason::Decode,
            format!("cost in {currency}, expected USD"),
        ));
    }
    let usd = cents_to_usd(r.get("amount"))?;
    let model = ai::dimension(r.get("model"), "none");
    let workspace = ai::dimension(r.get("workspace_id"), "default");
    totals.add_cost(&model, &workspace, usd);
    Ok(())
}

/// 401/403 from the Admin API: say that an Admin key is needed.
fn admin_hint(e: CollectError) -> CollectError {
    e.hint_on(
        &[401, 403],
        "an Anthropic Admin key, sk-ant-admin…, is required; a regular API key cannot read usage and cost",
    )
}

/// Cents as a decimal string (`"123.78912"`) → dollars, exactly.
fn cents_to_usd(v: Option<&Value>) -> Result<Decimal, CollectError> {
    let text = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => return Ok(Decimal::ZERO),
        Some(other) => {
            return Err(CollectError::new(
                Reason::Decode,
                format!("amount {other} is not a decimal string"),
            ));
        }
    };
    let cents = Decimal::from_str(text.trim())
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|_| {
            CollectError::new(Reason::Decode, format!("amount {text:?} is not a decimal"))
        })?;
    Ok(cents / Decimal::ONE_HUNDRED)
}

#[async_trait::async_trait]
impl Collector for Anthropic {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let prices = self.prices.table(cx, NAME).await;
        let (_, end) = cx.month_window();
        let days = Days::month_of(
            cx.month_start().date(),
            time::OffsetDateTime::from(cx.now).date(),
        );
        let daily = self.read(cx, days, &end).await?;
        daily
            .total(NAME, &prices)?
            .into_collection(NAME, &prices, self.labels(), cx.now)
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        let prices = self.prices.table(cx, NAME).await;
        let daily = self.read(cx, days, &wire::rfc3339(days.end())).await?;
        daily.history(NAME, &prices, self.labels()).map(Some)
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let mut url = join(&self.base, "/v1/organizations/cost_report");
        url.query_pairs_mut()
            .append_pair("starting_at", &cx.month_window().0)
            .append_pair("limit", "1");
        cx.http
            .get(&url, Auth::Header("x-api-key", &self.key), &[VERSION])
            .await
            .map_err(|e| admin_hint(e.into()))?;
        Ok("the Admin key reads the cost report".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_strings_become_exact_dollars() {
        let v = |s: &str| Value::String(s.into());
        assert_eq!(
            cents_to_usd(Some(&v("123.78912"))).unwrap(),
            Decimal::from_str("1.2378912").unwrap()
        );
        assert_eq!(cents_to_usd(Some(&v("0"))).unwrap(), Decimal::ZERO);
        assert_eq!(cents_to_usd(None).unwrap(), Decimal::ZERO);
        assert!(cents_to_usd(Some(&v("12,5"))).is_err());
        assert!(cents_to_usd(Some(&Value::Bool(true))).is_err());
    }
}
