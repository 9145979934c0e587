//! Anthropic: month-to-date tokens by model and type and cost by model (amounts in cents as
//! decimal strings) from the Admin API.
//!
//! The analytics reports (`/v1/organizations/analytics/usage_report` and `…/cost_report`, the
//! ones the official SDK ships) are read first; where they answer 404 (absent) or 403 (a key
//! or an organization they are not open to), the legacy `usage_report/messages` and
//! `cost_report`, with the same tokens and costs. The analytics reports have no workspace and
//! no service tier: their costs have no `workspace` label, and uncovered tokens are priced at
//! the standard tier. A window they do not take (before 2026-01-01, over 365 days ago) goes to
//! the legacy reports directly.

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
/// How far back the analytics reports go: `starting_at` "within the last 365 days and no
/// earlier than 2026-01-01T00:00:00Z".
const ANALYTICS_DAYS: i64 = 365;

/// Which pair of reports answered (`cost_collector_source`).
const ANALYTICS: &str = "analytics";
/// The legacy pair.
const LEGACY: &str = "legacy";

/// Whether the analytics reports take a window starting at `start` when it is `now`.
fn analytics_take(start: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
    let since = time::Date::from_calendar_date(2026, time::Month::January, 1)
        .map(|d| d.midnight().assume_utc());
    since.is_ok_and(|since| start >= since) && now - start <= time::Duration::days(ANALYTICS_DAYS)
}

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
    /// its day's totals: the analytics pair, or the legacy one where the analytics reports
    /// are absent (404), refuse the key (403) or do not take the window. Says which answered.
    async fn read(
        &self,
        cx: &Context,
        days: Days,
        end: &str,
    ) -> Result<(Daily, &'static str), CollectError> {
        let start = wire::rfc3339(days.start());
        let window = (start.as_str(), end);
        let auth = Auth::Header("x-api-key", &self.key);
        if analytics_take(days.start(), time::OffsetDateTime::from(cx.now)) {
            let usage = ai::Report {
                url: self.analytics_url("usage_report", window, &["model", "context_window"]),
                add_row: add_analytics_usage_row,
            };
            let cost = ai::Report {
                url: self.analytics_url("cost_report", window, &["model"]),
                add_row: add_analytics_cost_row,
            };
            // No service tier in either report: every token is the standard tier's.
            let scope = Scope {
                unreported: &[],
                coverage: Coverage::Model,
            };
            match ai::read_reports(cx, days, scope, auth, &[VERSION], usage, cost).await {
                Ok(daily) => return Ok((daily, ANALYTICS)),
                Err(e) if matches!(e.status, Some(403 | 404)) => {
                    tracing::info!(
                        provider = NAME,
                        status = e.status,
                        "the analytics reports are not open to this key: reading the legacy usage and cost reports"
                    );
                }
                Err(e) => return Err(admin_hint(e)),
            }
        }
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
        // Priority Tier costs are not in the legacy cost report.
        let scope = Scope {
            unreported: &[Service::Priority],
            coverage: Coverage::Model,
        };
        let daily = ai::read_reports(cx, days, scope, auth, &[VERSION], usage, cost)
            .await
            .map_err(admin_hint)?;
        Ok((daily, LEGACY))
    }

    /// An analytics report's URL: as the SDK calls it (`?beta=true`), daily buckets.
    fn analytics_url(&self, report: &str, window: (&str, &str), group_by: &[&str]) -> Url {
        let mut url = join(&self.base, &format!("/v1/organizations/analytics/{report}"));
        url.query_pairs_mut().append_pair("beta", "true");
        let rest = self.url("/", window, group_by);
        url.query_pairs_mut()
            .extend_pairs(rest.query_pairs().into_owned());
        url
    }
}

/// An analytics usage row: tokens by model and kind, the context window's tier.
fn add_analytics_usage_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let model = ai::dimension(r.get("model"), "unknown");
    let tier = Tier {
        service: Service::Standard,
        long_context: r.get("context_window").and_then(Value::as_str) == Some("200k-1M"),
    };
    add_tokens(totals, &model, tier, r)
}

/// An analytics cost row: cents by model (no workspace in these reports).
fn add_analytics_cost_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    add_cents(totals, r, "")
}

/// A legacy usage-report row: tokens by model, kind and tier.
fn add_usage_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let model = ai::dimension(r.get("model"), "unknown");
    let tier = Tier {
        service: Service::parse(r.get("service_tier").and_then(Value::as_str)),
        long_context: r.get("context_window").and_then(Value::as_str) == Some("200k-1M"),
    };
    add_tokens(totals, &model, tier, r)
}

/// A usage row's five token counts (the two reports share their names).
fn add_tokens(
    totals: &mut AiTotals,
    model: &str,
    tier: Tier,
    r: &Value,
) -> Result<(), CollectError> {
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
        totals.add_tokens(model, kind, tier, ai::tokens(v)?);
    }
    Ok(())
}

/// A legacy cost-report row: cents by model and workspace.
fn add_cost_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let workspace = ai::dimension(r.get("workspace_id"), "default");
    add_cents(totals, r, &workspace)
}

/// A cost row's cents by model, in `group`. A row in another currency than USD (both
/// descriptions say "currently always USD") is skipped (`unknown_currency`).
fn add_cents(totals: &mut AiTotals, r: &Value, group: &str) -> Result<(), CollectError> {
    let model = ai::dimension(r.get("model"), "none");
    let currency = r.get("currency").and_then(Value::as_str).unwrap_or("USD");
    if !currency.eq_ignore_ascii_case("USD") {
        totals.skipped.record(
            "unknown_currency",
            format!(
                "an Anthropic cost of {model} in {:?}, not USD",
                currency.chars().take(16).collect::<String>()
            ),
        );
        return Ok(());
    }
    let usd = cents_to_usd(r.get("amount"))?;
    totals.add_cost(&model, group, usd);
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
        let (daily, source) = self.read(cx, days, &end).await?;
        let mut c =
            daily
                .total(NAME, &prices)?
                .into_collection(NAME, &prices, self.labels(), cx.now)?;
        c.source = Some(source);
        Ok(c)
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        let prices = self.prices.table(cx, NAME).await;
        let (daily, source) = self.read(cx, days, &wire::rfc3339(days.end())).await?;
        let mut history = daily.history(NAME, &prices, self.labels())?;
        for (_, c) in &mut history {
            c.source = Some(source);
        }
        Ok(Some(history))
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let start = cx.month_window().0;
        let auth = Auth::Header("x-api-key", &self.key);
        let mut analytics = join(&self.base, "/v1/organizations/analytics/cost_report");
        analytics
            .query_pairs_mut()
            .append_pair("beta", "true")
            .append_pair("starting_at", &start)
            .append_pair("limit", "1");
        if analytics_take(cx.month_start(), time::OffsetDateTime::from(cx.now)) {
            match cx.http.get(&analytics, auth, &[VERSION]).await {
                Ok(_) => return Ok("the Admin key reads the analytics cost report".into()),
                Err(e) if matches!(e.status, Some(403 | 404)) => {}
                Err(e) => return Err(admin_hint(e.into())),
            }
        }
        let mut url = join(&self.base, "/v1/organizations/cost_report");
        url.query_pairs_mut()
            .append_pair("starting_at", &start)
            .append_pair("limit", "1");
        cx.http
            .get(&url, auth, &[VERSION])
            .await
            .map_err(|e| admin_hint(e.into()))?;
        Ok("the Admin key reads the legacy cost report".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytics_reports_take_windows_since_2026_within_a_year() {
        let at = |y, m, d| {
            time::Date::from_calendar_date(y, m, d)
                .unwrap()
                .midnight()
                .assume_utc()
        };
        let now = at(2026, time::Month::December, 7);
        assert!(analytics_take(at(2026, time::Month::December, 1), now));
        assert!(analytics_take(at(2026, time::Month::January, 1), now));
        assert!(!analytics_take(at(2025, time::Month::December, 1), now));
        let later = at(2027, time::Month::June, 1);
        assert!(!analytics_take(at(2026, time::Month::March, 1), later));
        assert!(analytics_take(at(2026, time::Month::July, 1), later));
    }

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
