//! Cloudflare: the free tier is what to watch. Workers requests (Pages Functions included)
//! per day against the daily allowance, today's and the month's highest day; R2 storage in
//! GB-month as Cloudflare bills it and Class A / Class B operations per bucket against the
//! monthly allowances (deletes are free); Pages builds this month; money from this month's
//! billing history, the account's subscriptions as renewals, and an R2 overage estimate at the
//! published prices (labelled `basis="estimated"`).
//!
//! Read-only: REST GETs with a bearer token, and one GraphQL query, a POST to `/graphql` (the
//! one path this provider declares); `errors` in a 200 answer is a `query` failure.
//!
//! Parts: this file (the section, its validation, the collector), `graphql` (Workers and R2
//! analytics), `rest` (the v4 envelope, billing, subscriptions, Pages deployments).

mod graphql;
mod rest;

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Skipped, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "cloudflare";
const BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// The GraphQL endpoint's path: the one path this provider POSTs to.
const GRAPHQL_PATH: &str = "/graphql";
/// Buckets with their own label before the rest are `other`.
const MAX_BUCKETS: usize = 20;

/// The registry's description of Cloudflare.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "CLOUDFLARE_API_TOKEN",
                key: "token",
                help: "Cloudflare account API token with read-only permission groups only (README: Cloudflare).",
            },
            EnvVar {
                name: "CLOUDFLARE_ACCOUNT_ID",
                key: "account_id",
                help: "The Cloudflare account id (32 lowercase hex characters, in the dashboard's URL).",
            },
        ],
        secrets: &["token"],
    },
    // GraphQL Analytics: a read, sent as a POST.
    posts: &[GRAPHQL_PATH],
    configure,
};

/// `[providers.cloudflare]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    plan: Option<String>,
    limits: BTreeMap<String, ConfigDecimal>,
    token: RawSecret,
    account_id: Option<String>,
}

/// The Workers plan: Free has a daily request allowance, Paid a monthly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Free,
    Paid,
}

const PLANS: &[(&str, Plan)] = &[("free", Plan::Free), ("paid", Plan::Paid)];

/// Resources with an allowance: the keys `[providers.cloudflare.limits]` accepts.
const RESOURCES: &[(&str, Unit)] = &[
    ("workers_requests_today", Unit::Requests),
    ("workers_requests_peak_day", Unit::Requests),
    ("workers_requests", Unit::Requests),
    ("r2_storage", Unit::GigabyteMonths),
    ("r2_class_a_operations", Unit::Requests),
    ("r2_class_b_operations", Unit::Requests),
    ("pages_builds", Unit::Count),
];

/// Allowances per plan (<https://developers.cloudflare.com/workers/platform/pricing/>,
/// <https://developers.cloudflare.com/r2/pricing/>,
/// <https://developers.cloudflare.com/pages/platform/limits/>).
fn plan_quotas(plan: Plan) -> &'static [(&'static str, f64)] {
    match plan {
        Plan::Free => &[
            ("workers_requests_today", 100_000.0),
            ("workers_requests_peak_day", 100_000.0),
            ("r2_storage", 10.0),
            ("r2_class_a_operations", 1_000_000.0),
            ("r2_class_b_operations", 10_000_000.0),
            ("pages_builds", 500.0),
        ],
        Plan::Paid => &[
            ("workers_requests", 10_000_000.0),
            ("r2_storage", 10.0),
            ("r2_class_a_operations", 1_000_000.0),
            ("r2_class_b_operations", 10_000_000.0),
            ("pages_builds", 5000.0),
        ],
    }
}

/// R2 Standard storage prices beyond the free tier, USD: per GB-month, per million Class A,
/// per million Class B operations; the free tier (GB-month, Class A, Class B).
const R2_GB_MONTH: Decimal = Decimal::from_parts(15, 0, 0, false, 3);
const R2_CLASS_A_PER_MILLION: Decimal = Decimal::from_parts(450, 0, 0, false, 2);
const R2_CLASS_B_PER_MILLION: Decimal = Decimal::from_parts(36, 0, 0, false, 2);
const R2_FREE: (u64, u64, u64) = (10, 1_000_000, 10_000_000);

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let plan = s
        .choice("plan", raw.plan.as_deref(), PLANS)
        .unwrap_or(Plan::Free);
    let limits = s.limits(&raw.limits, RESOURCES, plan_quotas(plan));
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let account = raw
        .account_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    // Account ids are 32 lowercase hexadecimal characters (the API schema's identifier,
    // every example in the SDKs and the dashboard's URLs).
    if let Some(a) = account
        && !(a.len() == 32 && a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    {
        s.fail(
            "account_id",
            format!(
                "{a:?} is not a Cloudflare account id (32 lowercase hexadecimal characters, as in the dashboard's URL)"
            ),
        );
    }
    let api = match (s.secret("token", &raw.token), account) {
        (None, _) => Api::NoCredentials,
        (Some(_), None) => {
            tracing::warn!(
                provider = NAME,
                "CLOUDFLARE_API_TOKEN is set but no account id (CLOUDFLARE_ACCOUNT_ID or providers.cloudflare.account_id): nothing to collect"
            );
            Api::Incomplete("a token but no account id".into())
        }
        (Some(token), Some(account)) => {
            s.bills_in(Currency::USD);
            Api::Collector(Arc::new(Cloudflare {
                base: base?,
                token,
                account: account.to_owned(),
                limits,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The Cloudflare collector.
struct Cloudflare {
    base: Url,
    token: Secret,
    account: String,
    limits: Vec<UsageLimit>,
}

impl Cloudflare {
    /// `{base}/accounts/{account}{path}`.
    fn account_url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = crate::http::join(&self.base, &format!("/accounts/{}{path}", self.account));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// Billable units beyond a free allowance, rounded up to whole units as Cloudflare bills: in
/// units of `unit`. Checked: an amount no decimal can hold is a `decode` error, never a panic.
fn billable(
    used: Decimal,
    free: Decimal,
    unit: Decimal,
    what: &str,
) -> Result<Decimal, CollectError> {
    let over = used.checked_sub(free).unwrap_or(Decimal::ZERO);
    if over <= Decimal::ZERO {
        return Ok(Decimal::ZERO);
    }
    over.checked_div(unit).map(|u| u.ceil()).ok_or_else(|| {
        CollectError::new(
            crate::error::Reason::Decode,
            format!("{what}: {over} cannot be counted in units of {unit}"),
        )
    })
}

#[async_trait::async_trait]
impl Collector for Cloudflare {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let analytics = self.analytics(cx).await?;
        let builds = self.pages_builds(cx).await?;
        let mut skipped = Skipped::default();
        let charges = self.charges(cx, &mut skipped).await?;
        let subscriptions = self.subscriptions(cx, &mut skipped).await?;

        let today = OffsetDateTime::from(cx.now).date();
        let mut usage = Vec::new();
        let requests = |resource: &str, value: f64| Usage {
            resource: resource.into(),
            unit: Unit::Requests,
            value,
            labels: vec![],
        };
        usage.push(requests(
            "workers_requests_today",
            analytics.workers.get(&today).copied().unwrap_or(0.0),
        ));
        usage.push(requests(
            "workers_requests_peak_day",
            analytics.workers.values().copied().fold(0.0, f64::max),
        ));
        usage.push(requests(
            "workers_requests",
            analytics.workers.values().sum(),
        ));
        let r2 = analytics.r2(MAX_BUCKETS);
        for b in &r2 {
            let labels = vec![("bucket", b.bucket.clone())];
            usage.push(Usage {
                resource: "r2_storage".into(),
                unit: Unit::GigabyteMonths,
                value: b.gb_months,
                labels: labels.clone(),
            });
            usage.push(Usage {
                resource: "r2_stored".into(),
                unit: Unit::Bytes,
                value: b.bytes_now,
                labels: labels.clone(),
            });
            usage.push(Usage {
                resource: "r2_objects".into(),
                unit: Unit::Objects,
                value: b.objects_now,
                labels: labels.clone(),
            });
            usage.push(Usage {
                resource: "r2_class_a_operations".into(),
                unit: Unit::Requests,
                value: b.class_a,
                labels: labels.clone(),
            });
            usage.push(Usage {
                resource: "r2_class_b_operations".into(),
                unit: Unit::Requests,
                value: b.class_b,
                labels,
            });
        }
        usage.push(Usage {
            resource: "pages_builds".into(),
            unit: Unit::Count,
            value: builds as f64,
            labels: vec![],
        });

        // Money: this month's charges, and the R2 overage at the published prices.
        let mut spend = Vec::new();
        for (currency, amount) in charges {
            spend.push(Spend {
                money: Money { amount, currency },
                kind: SpendKind::Billed,
                labels: vec![("service", "billing".to_owned())],
            });
        }
        let total = |f: fn(&graphql::Bucket) -> f64| r2.iter().map(f).sum::<f64>();
        let storage = wire::decimal(total(|b| b.gb_months), "R2 GB-months")?;
        let class_a = wire::decimal(total(|b| b.class_a), "R2 Class A operations")?;
        let class_b = wire::decimal(total(|b| b.class_b), "R2 Class B operations")?;
        let million = Decimal::from(1_000_000);
        let mut overage = Decimal::ZERO;
        for (used, free, unit, price, what) in [
            (storage, R2_FREE.0, Decimal::ONE, R2_GB_MONTH, "R2 storage"),
            (
                class_a,
                R2_FREE.1,
                million,
                R2_CLASS_A_PER_MILLION,
                "R2 Class A operations",
            ),
            (
                class_b,
                R2_FREE.2,
                million,
                R2_CLASS_B_PER_MILLION,
                "R2 Class B operations",
            ),
        ] {
            let units = billable(used, Decimal::from(free), unit, what)?;
            wire::add(&mut overage, wire::mul(units, price, what)?, what)?;
        }
        spend.push(Spend {
            money: Money {
                amount: overage,
                currency: Currency::USD,
            },
            kind: SpendKind::Metered,
            labels: vec![
                ("service", "r2".to_owned()),
                ("basis", "estimated".to_owned()),
            ],
        });

        // Subscriptions: renewals, and those renewing later this month in the forecast.
        let now = OffsetDateTime::from(cx.now);
        let end = {
            let start = cx.month_start();
            let (y, m) = if start.month() == time::Month::December {
                (start.year() + 1, time::Month::January)
            } else {
                (start.year(), start.month().next())
            };
            time::Date::from_calendar_date(y, m, 1)
                .map(|d| d.midnight().assume_utc())
                .map_err(|e| CollectError::new(Reason::Internal, e.to_string()))?
        };
        let mut renewals = Vec::new();
        let mut due = Vec::new();
        for s in subscriptions {
            if s.price.amount.is_zero() {
                continue;
            }
            if s.at > now && s.at <= end {
                due.push(Spend {
                    money: s.price,
                    kind: SpendKind::Billed,
                    labels: vec![("service", s.name.clone())],
                });
            }
            renewals.push(Renewal {
                name: s.name,
                id: s.id,
                at: s.at.into(),
                price: s.price,
                current_price: None,
                automatic: Some(true),
            });
        }
        Ok(Collection {
            usage,
            limits: self.limits.clone(),
            spend,
            due,
            renewals,
            // Analytics lag by minutes; the run's time is as close as it gets.
            data_as_of: Some(cx.now),
            skipped,
            ..Collection::default()
        })
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let url = self.account_url("/tokens/verify", &[]);
        self.get_result::<serde_json::Value>(cx, &url).await?;
        Ok("the token is valid for the account".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overage_is_billed_in_whole_units_beyond_the_free_tier() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let b = |used, free, unit| billable(used, free, unit, "test").unwrap();
        assert_eq!(b(d("9.5"), d("10"), d("1")), Decimal::ZERO);
        assert_eq!(b(d("11.1"), d("10"), d("1")), d("2"));
        let m = Decimal::from(1_000_000);
        // Units of a million operations.
        assert_eq!(b(d("1000001"), m, m), Decimal::ONE);
        assert_eq!(b(d("2000000"), m, m), Decimal::ONE);
        // The largest count a decimal holds: rounding it up to whole millions no longer
        // overflows (it panicked, contained as `internal`).
        assert_eq!(b(Decimal::MAX, m, m), d("79228162514264337593543"));
    }
}
