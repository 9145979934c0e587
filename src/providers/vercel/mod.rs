//! Vercel: month-to-date usage and spend from `GET /v1/billing/charges` (FOCUS 1.3 records as
//! JSON Lines, gzip; Pro and Enterprise) or, where billing answers 403/404 (Hobby), from the
//! undocumented `GET /v2/usage` daily figures; included quotas per plan.
//!
//! Parts: this file (the section, its validation, the collector), `charges` (the streamed
//! FOCUS parser), `usage` (the daily figures).

mod charges;
mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Unit, UsageLimit};
use crate::error::CollectError;
use crate::http::{Auth, join};
use crate::money::{ConfigDecimal, Currency, TaxBasis};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
use crate::secret::{RawSecret, Secret};

pub use charges::{ChargesParser, Totals, read_charges};

const NAME: &str = "vercel";
const BASE_URL: &str = "https://api.vercel.com";

/// The registry's description of Vercel.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "VERCEL_API_TOKEN",
                key: "token",
                help: "Vercel API token (Account Settings > Tokens), scoped to one team, with an expiry.",
            },
            EnvVar {
                name: "VERCEL_TEAM_ID",
                key: "team_id",
                help: "Vercel team id (team_...), for a team account; empty for a personal account.",
            },
        ],
        secrets: &["token"],
    },
    posts: &[],
    configure,
};

/// `[providers.vercel]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    plan: Option<String>,
    limits: BTreeMap<String, ConfigDecimal>,
    token: RawSecret,
    team_id: Option<String>,
    source: Option<String>,
    top_projects: Option<u32>,
}

/// The plan, which sets the included quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Hobby,
    Pro,
}

const PLANS: &[(&str, Plan)] = &[("hobby", Plan::Hobby), ("pro", Plan::Pro)];

/// Which source to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Billing charges, falling back to `/v2/usage` on 403/404.
    Auto,
    /// Only `/v1/billing/charges`.
    Charges,
    /// Only `/v2/usage`.
    Usage,
}

const SOURCES: &[(&str, Source)] = &[
    ("auto", Source::Auto),
    ("charges", Source::Charges),
    ("usage", Source::Usage),
];

/// Every resource this collector names, with its unit: the keys `[providers.vercel.limits]`
/// accepts. Services not in this list are still reported, under a normalised name.
const RESOURCES: &[(&str, Unit)] = &[
    ("function_invocations", Unit::Requests),
    ("fast_data_transfer", Unit::Bytes),
    ("fast_origin_transfer", Unit::Bytes),
    ("edge_requests", Unit::Requests),
    ("active_cpu", Unit::Seconds),
    ("provisioned_memory", Unit::GigabyteHours),
    ("build_time", Unit::Seconds),
    ("builds", Unit::Count),
    ("edge_function_invocations", Unit::Requests),
];

/// Included quotas per plan (<https://vercel.com/docs/plans/hobby>,
/// <https://vercel.com/pricing>). Pro lists only the figures that are published; the others
/// are absent unless configured.
fn plan_quotas(plan: Plan) -> &'static [(&'static str, f64)] {
    match plan {
        Plan::Pro => &[
            ("fast_data_transfer", 1e12),
            ("edge_requests", 10_000_000.0),
        ],
        Plan::Hobby => &[
            ("fast_data_transfer", 100e9),
            ("edge_requests", 1_000_000.0),
            ("function_invocations", 1_000_000.0),
            ("active_cpu", 4.0 * 3600.0),
            ("provisioned_memory", 360.0),
            ("build_time", 6000.0 * 60.0),
        ],
    }
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let plan = s
        .choice("plan", raw.plan.as_deref(), PLANS)
        .unwrap_or(Plan::Hobby);
    let source = s
        .choice("source", raw.source.as_deref(), SOURCES)
        .unwrap_or(Source::Auto);
    let limits = s.limits(&raw.limits, RESOURCES, plan_quotas(plan));
    let top_n = s.count("top_projects", raw.top_projects, 10);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let token = s.secret("token", &raw.token);
    let team_id = raw
        .team_id
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let api = match token {
        None => Api::NoCredentials,
        Some(token) => {
            s.bills_in(Currency::USD);
            Api::Collector(Arc::new(Vercel {
                base: base?,
                token,
                team_id,
                source,
                top_n,
                limits,
                tax: s.tax(),
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The Vercel collector.
struct Vercel {
    base: Url,
    token: Secret,
    team_id: Option<String>,
    source: Source,
    top_n: usize,
    limits: Vec<UsageLimit>,
    /// The job's tax basis: Vercel's `Tax` records count only with taxes included.
    tax: TaxBasis,
}

impl Vercel {
    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = join(&self.base, path);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
            if let Some(team) = &self.team_id {
                q.append_pair("teamId", team);
            }
        }
        url
    }
}

#[async_trait::async_trait]
impl Collector for Vercel {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let (from, to) = cx.month_window();
        match self.source {
            Source::Charges => self.charges(cx, &from, &to).await,
            Source::Usage => self.usage(cx, &from, &to).await,
            Source::Auto => match self.charges(cx, &from, &to).await {
                Err(e) if matches!(e.status, Some(403 | 404)) => {
                    tracing::info!(
                        "billing charges are not readable with this token ({}); reading /v2/usage instead",
                        e.status.unwrap_or_default()
                    );
                    self.usage(cx, &from, &to).await
                }
                other => other,
            },
        }
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        match self.source {
            Source::Usage => Ok(None),
            Source::Charges => self.charges_history(cx, days).await.map(Some),
            Source::Auto => match self.charges_history(cx, days).await {
                Err(e) if matches!(e.status, Some(403 | 404)) => {
                    tracing::warn!(
                        "billing charges are not readable with this token ({}): /v2/usage keeps no history this job reads",
                        e.status.unwrap_or_default()
                    );
                    Ok(None)
                }
                other => other.map(Some),
            },
        }
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let (_, to) = cx.month_window();
        let today = wire::rfc3339(OffsetDateTime::from(cx.now).replace_time(time::Time::MIDNIGHT));
        let url = self.url("/v1/billing/charges", &[("from", &today), ("to", &to)]);
        match cx.http.get(&url, Auth::Bearer(&self.token), &[]).await {
            Ok(_) => Ok("the token can read billing charges (source charges)".into()),
            Err(e) if matches!(e.status, Some(403 | 404)) => {
                let url = self.url(
                    "/v2/usage",
                    &[("type", "requests"), ("from", &today), ("to", &to)],
                );
                cx.http.get(&url, Auth::Bearer(&self.token), &[]).await?;
                Ok(format!(
                    "the token cannot read billing charges ({}; usual on Hobby), /v2/usage answers: collecting will use it",
                    e.status.unwrap_or_default()
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}
