//! OpenAI: month-to-date completion tokens by model and project
//! (`/v1/organization/usage/completions`) and cost by project and line item
//! (`/v1/organization/costs`, amounts in dollars) with an admin key.
//!
//! A line item has no documented format (the description's own example is `input_tokens`), so
//! nothing is read from its text: a day's tokens of a project are left to the cost report when
//! it has a cost of that project that day (or a cost of no project), and estimated from the
//! price table otherwise ([`ai::Coverage::Group`]). Reported and estimated spend never overlap.

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
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "openai";
const BASE_URL: &str = "https://api.openai.com";

/// The registry's description of OpenAI.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[EnvVar {
            name: "OPENAI_ADMIN_KEY",
            key: "admin_key",
            help: "OpenAI admin key, for the organization usage and costs API.",
        }],
        secrets: &["admin_key"],
    },
    posts: &[],
    configure,
};

/// `[providers.openai]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    admin_key: RawSecret,
    price_table: Option<String>,
    top_projects: Option<u32>,
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let prices = ai::price_table(s, raw.price_table.as_deref());
    let top_projects = s.count("top_projects", raw.top_projects, 10);
    let api = match s.secret("admin_key", &raw.admin_key) {
        None => Api::NoCredentials,
        Some(key) => {
            s.bills_in(Currency::USD);
            Api::Collector(Arc::new(OpenAi {
                base: base?,
                key,
                prices: prices?,
                top_projects,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The OpenAI collector.
struct OpenAi {
    base: Url,
    key: Secret,
    prices: PriceSource,
    top_projects: usize,
}

impl OpenAi {
    /// Reported spend by line item (as OpenAI writes it) and project.
    fn labels(&self) -> SpendLabels {
        SpendLabels {
            item: "line_item",
            group: "project",
            top_groups: self.top_projects,
        }
    }

    fn url(&self, path: &str, window: (i64, i64), group_by: &[&str]) -> Url {
        let mut url = join(&self.base, path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("start_time", &window.0.to_string());
            q.append_pair("end_time", &window.1.to_string());
            q.append_pair("bucket_width", "1d");
            q.append_pair("limit", "31");
            for g in group_by {
                q.append_pair("group_by[]", g);
            }
        }
        url
    }

    /// Reads both reports over `days` (`end_time` = `end`, Unix seconds), each daily bucket's
    /// rows added to its day's totals.
    async fn read(&self, cx: &Context, days: Days, end: i64) -> Result<Daily, CollectError> {
        let window = (days.start().unix_timestamp(), end);
        let usage = ai::Report {
            url: self.url(
                "/v1/organization/usage/completions",
                window,
                &["model", "batch", "service_tier", "project_id"],
            ),
            add_row: add_usage_row,
        };
        let cost = ai::Report {
            url: self.url(
                "/v1/organization/costs",
                window,
                &["project_id", "line_item"],
            ),
            add_row: add_cost_row,
        };
        let auth = Auth::Bearer(&self.key);
        let scope = Scope {
            unreported: &[],
            coverage: Coverage::Group,
        };
        ai::read_reports(cx, days, scope, auth, &[], usage, cost)
            .await
            .map_err(admin_hint)
    }
}

/// A completions usage row: tokens by model, kind, tier and project.
fn add_usage_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let model = ai::dimension(r.get("model"), "unknown");
    let project = ai::dimension(r.get("project_id"), ai::NO_GROUP);
    // OpenAI's usage has no context-length dimension: its long-context prices cannot be told
    // apart and the plain ones apply.
    let tier = Tier {
        service: if r.get("batch").and_then(Value::as_bool) == Some(true) {
            Service::Batch
        } else {
            Service::parse(r.get("service_tier").and_then(Value::as_str))
        },
        long_context: false,
    };
    let input = ai::tokens(r.get("input_tokens"))?;
    let cached = ai::tokens(r.get("input_cached_tokens"))?;
    let written = ai::tokens(r.get("input_cache_write_tokens"))?;
    let uncached = match r.get("input_uncached_tokens") {
        Some(v) if !v.is_null() => ai::tokens(Some(v))?,
        // input_tokens includes cached and cache-write tokens.
        _ => (input - cached - written).max(0.0),
    };
    let output = ai::tokens(r.get("output_tokens"))?;
    for (kind, n) in [
        (TokenType::Input, uncached),
        (TokenType::CacheRead, cached),
        (TokenType::CacheWrite, written),
        (TokenType::Output, output),
    ] {
        totals.add_group_tokens(&model, &project, kind, tier, n);
    }
    Ok(())
}

/// A costs row: dollars by line item and project. A row without an amount (the description
/// makes it optional) is skipped (`missing_field`), one in another currency than USD
/// (`unknown_currency`): neither covers its project's tokens.
fn add_cost_row(totals: &mut AiTotals, r: &Value) -> Result<(), CollectError> {
    let item = ai::dimension(r.get("line_item"), "none");
    let project = ai::dimension(r.get("project_id"), ai::NO_GROUP);
    let amount = r.get("amount");
    let value = match amount.and_then(|a| a.get("value")) {
        None | Some(Value::Null) => {
            totals.skipped.record(
                "missing_field",
                format!("an OpenAI cost of {item:?} in {project} without an amount"),
            );
            return Ok(());
        }
        Some(v) => {
            serde_json::from_value::<ConfigDecimal>(v.clone())
                .map_err(|e| CollectError::new(Reason::Decode, format!("amount.value: {e}")))?
                .0
        }
    };
    let currency = amount
        .and_then(|a| a.get("currency"))
        .and_then(Value::as_str)
        .unwrap_or("usd");
    if !currency.eq_ignore_ascii_case("usd") {
        totals.skipped.record(
            "unknown_currency",
            format!(
                "an OpenAI cost of {item:?} in {project} in {:?}, not usd",
                currency.chars().take(16).collect::<String>()
            ),
        );
        return Ok(());
    }
    totals.add_cost(&item, &project, value);
    Ok(())
}

fn admin_hint(e: CollectError) -> CollectError {
    e.hint_on(
        &[401, 403],
        "an OpenAI admin key, sk-admin-…, is required; a project key cannot read organization usage and costs",
    )
}

#[async_trait::async_trait]
impl Collector for OpenAi {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let prices = self.prices.table(cx, NAME).await;
        let now = time::OffsetDateTime::from(cx.now);
        let days = Days::month_of(cx.month_start().date(), now.date());
        let daily = self.read(cx, days, now.unix_timestamp()).await?;
        daily
            .total(NAME, &prices)?
            .into_collection(NAME, &prices, self.labels(), cx.now)
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        let prices = self.prices.table(cx, NAME).await;
        let daily = self.read(cx, days, days.end().unix_timestamp()).await?;
        daily.history(NAME, &prices, self.labels()).map(Some)
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let mut url = join(&self.base, "/v1/organization/costs");
        let start = cx.month_start().unix_timestamp().to_string();
        url.query_pairs_mut()
            .append_pair("start_time", &start)
            .append_pair("limit", "1");
        cx.http
            .get(&url, Auth::Bearer(&self.key), &[])
            .await
            .map_err(|e| admin_hint(e.into()))?;
        Ok("the admin key reads organization costs".into())
    }
}
