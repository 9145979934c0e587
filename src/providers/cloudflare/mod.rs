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

use crate::calendar::{Calendar, Month};
use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{
    Allowance, Collection, Renewal, Skipped, Spend, SpendKind, Unit, Usage, UsageLimit,
};
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
    ("workers_cpu_time", Unit::Seconds),
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
            ("workers_cpu_time", 30_000.0),
            ("r2_storage", 10.0),
            ("r2_class_a_operations", 1_000_000.0),
            ("r2_class_b_operations", 10_000_000.0),
            ("pages_builds", 5000.0),
        ],
    }
}

/// Monthly allowances and the prices beyond them, USD, as (included, billing unit, price per
/// unit): R2 Standard storage (10 GB-months free, $0.015 a GB-month), Class A operations (1
/// million free, $4.50 a million) and Class B (10 million free, $0.36 a million), rounded up
/// to whole units as Cloudflare bills R2 (<https://developers.cloudflare.com/r2/pricing/>);
/// Workers Paid requests (10 million included, $0.30 a million) and CPU time (30 million
/// milliseconds included, $0.02 a million), by the request and the millisecond
/// (<https://developers.cloudflare.com/workers/platform/pricing/>).
const R2_STORAGE: (Decimal, Decimal, Decimal) = (
    Decimal::from_parts(10, 0, 0, false, 0),
    Decimal::ONE,
    Decimal::from_parts(15, 0, 0, false, 3),
);
const R2_CLASS_A: (Decimal, Decimal, Decimal) = (
    Decimal::from_parts(1_000_000, 0, 0, false, 0),
    Decimal::from_parts(1_000_000, 0, 0, false, 0),
    Decimal::from_parts(450, 0, 0, false, 2),
);
const R2_CLASS_B: (Decimal, Decimal, Decimal) = (
    Decimal::from_parts(10_000_000, 0, 0, false, 0),
    Decimal::from_parts(1_000_000, 0, 0, false, 0),
    Decimal::from_parts(36, 0, 0, false, 2),
);
const WORKERS_REQUESTS: (Decimal, Decimal, Decimal) = (
    Decimal::from_parts(10_000_000, 0, 0, false, 0),
    Decimal::ONE,
    Decimal::from_parts(3, 0, 0, false, 7),
);
const WORKERS_CPU_MS: (Decimal, Decimal, Decimal) = (
    Decimal::from_parts(30_000_000, 0, 0, false, 0),
    Decimal::ONE,
    Decimal::from_parts(2, 0, 0, false, 8),
);

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
                plan,
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
    /// The Workers plan: on Paid, requests and CPU time beyond the monthly allowance are
    /// charged; on Free, requests beyond the daily allowance are refused, never charged.
    plan: Plan,
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

/// Usage beyond a monthly allowance as a spend record in USD, labelled `service`,
/// `resource` and `basis="estimated"`: charged in whole `unit`s at `price` beyond `included`
/// ([`Allowance`]), and projected to the month's end by the forecast. Checked: an amount no
/// decimal can hold is a `decode` error, never a panic.
fn overage(
    service: &str,
    resource: &str,
    used: Decimal,
    (included, unit, price): (Decimal, Decimal, Decimal),
) -> Result<Spend, CollectError> {
    Allowance {
        used,
        included,
        unit,
        price,
    }
    .spend(
        Currency::USD,
        vec![
            ("service", service.to_owned()),
            ("resource", resource.to_owned()),
            ("basis", "estimated".to_owned()),
        ],
    )
    .ok_or_else(|| {
        CollectError::new(
            Reason::Decode,
            format!("{resource}: {used} beyond {included} cannot be charged in units of {unit}"),
        )
    })
}

/// How many times a subscription renewing at `at` is billed after `now` and before `month`
/// ends: each renewal strictly after the run and strictly before the next month's start (a
/// renewal at 00:00 on the 1st opens next month's bill); a weekly one every 7 days from `at`.
fn renewals_due(at: OffsetDateTime, weekly: bool, now: OffsetDateTime, month: &Month) -> u32 {
    let mut n = 0;
    let mut next = at;
    while month.due_by_end(next.into()) {
        if next > now {
            n += 1;
        }
        if !weekly {
            break;
        }
        next += time::Duration::WEEK;
    }
    n
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
        let analytics = self.analytics(cx, self.plan == Plan::Paid).await?;
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
        let today_start = today.midnight().assume_utc();
        let elapsed_today =
            (OffsetDateTime::from(cx.now) - today_start).as_seconds_f64() / 86_400.0;
        let r2 = analytics.r2(MAX_BUCKETS, today, elapsed_today.clamp(0.0, 1.0));
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

        // Money: this month's charges; the R2 overage and, on Workers Paid, the Workers
        // overage at the published prices, each against its monthly allowance (the forecast
        // projects the usage to the month's end before taking the allowance off).
        let mut spend = Vec::new();
        for (currency, amount) in charges {
            spend.push(Spend {
                money: Money { amount, currency },
                kind: SpendKind::Billed,
                labels: vec![("service", "billing".to_owned())],
            });
        }
        let total = |f: fn(&graphql::Bucket) -> f64| r2.iter().map(f).sum::<f64>();
        let storage = wire::decimal(total(|b| b.gb_months_elapsed), "R2 GB-months")?;
        let class_a = wire::decimal(total(|b| b.class_a), "R2 Class A operations")?;
        let class_b = wire::decimal(total(|b| b.class_b), "R2 Class B operations")?;
        spend.push(overage("r2", "r2_storage", storage, R2_STORAGE)?);
        spend.push(overage("r2", "r2_class_a_operations", class_a, R2_CLASS_A)?);
        spend.push(overage("r2", "r2_class_b_operations", class_b, R2_CLASS_B)?);
        if self.plan == Plan::Paid {
            let requests = analytics.workers.values().sum::<f64>();
            let requests = wire::decimal(requests, "Workers requests")?;
            spend.push(overage(
                "workers",
                "workers_requests",
                requests,
                WORKERS_REQUESTS,
            )?);
            if let Some(us) = analytics.workers_cpu_us {
                usage.push(Usage {
                    resource: "workers_cpu_time".into(),
                    unit: Unit::Seconds,
                    value: us / 1e6,
                    labels: vec![],
                });
                let ms = wire::decimal(us / 1e3, "Workers CPU time")?;
                spend.push(overage("workers", "workers_cpu_time", ms, WORKERS_CPU_MS)?);
            }
        }

        // Subscriptions: renewals, and those renewing later this month (strictly before the
        // next month's start, UTC) in the forecast, each at its price for its period.
        let now = OffsetDateTime::from(cx.now);
        let month = cx.month(Calendar::Utc);
        let mut renewals = Vec::new();
        let mut due = Vec::new();
        for s in subscriptions {
            if s.price.amount.is_zero() {
                continue;
            }
            for _ in 0..renewals_due(s.at, s.weekly, now, &month) {
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

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn overage_is_billed_in_whole_units_beyond_the_free_tier() {
        let charged =
            |used: &str, allowance| overage("r2", "r", d(used), allowance).unwrap().money.amount;
        assert_eq!(charged("9.5", R2_STORAGE), Decimal::ZERO);
        // 1.1 GB-months beyond: 2 billed.
        assert_eq!(charged("11.1", R2_STORAGE), d("0.030"));
        // Units of a million operations.
        assert_eq!(charged("1000001", R2_CLASS_A), d("4.50"));
        assert_eq!(charged("2000000", R2_CLASS_A), d("4.50"));
        assert_eq!(charged("12000000", R2_CLASS_B), d("0.72"));
        // Workers Paid, by the request and the millisecond: 2.5 million requests and 1.5
        // million CPU milliseconds beyond the allowances.
        assert_eq!(charged("12500000", WORKERS_REQUESTS), d("0.75"));
        assert_eq!(charged("31500000", WORKERS_CPU_MS), d("0.03"));
        // The largest count a decimal holds: rounding it up to whole millions and pricing it
        // never overflows (it panicked, contained as `internal`).
        assert_eq!(
            charged(&Decimal::MAX.to_string(), R2_CLASS_A),
            d("79228162514264337593543") * d("4.50")
        );
        // The record carries its allowance, so that the forecast projects the usage.
        let s = overage("r2", "r2_class_a_operations", d("1200000"), R2_CLASS_A).unwrap();
        assert!(matches!(s.kind, SpendKind::Overage(a) if a.used == d("1200000")));
        assert!(s.labels.contains(&("basis", "estimated".to_owned())));
    }

    #[test]
    fn subscriptions_are_due_strictly_before_the_next_month_starts() {
        let at = |t: &str| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let month = Calendar::Utc.month_of(at("2026-12-20T00:00:00Z").into());
        let due =
            |renews: &str, weekly, now: &str| renewals_due(at(renews), weekly, at(now), &month);
        let now = "2026-12-20T00:00:00Z";
        // At 00:00 on 1 January: January's bill, not December's.
        assert_eq!(due("2027-01-01T00:00:00Z", false, now), 0);
        // The last second of December: December's.
        assert_eq!(due("2026-12-31T23:59:59Z", false, now), 1);
        // Already renewed (and in the billing history): not due again.
        assert_eq!(due("2026-12-10T00:00:00Z", false, now), 0);
        // On the last second of the month a renewal at the next month's start is not due.
        assert_eq!(
            due("2027-01-01T00:00:00Z", false, "2026-12-31T23:59:59Z"),
            0
        );
        // Weekly: the 22nd and the 29th; the 5th of January is next month's.
        assert_eq!(due("2026-12-22T00:00:00Z", true, now), 2);
        // A yearly or monthly period renews once, whatever is left of the month.
        assert_eq!(due("2026-12-21T00:00:00Z", false, now), 1);
    }
}
