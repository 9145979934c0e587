//! Hostinger: every subscription from `GET /api/billing/v1/subscriptions` (the only billing
//! read the API has: there is no invoice or order history), with its renewal date, renewal
//! price and whether it renews by itself. A renewal priced above the current period is
//! Hostinger's usual surprise, so both prices are exported.
//!
//! Money follows the cash rule in UTC months (Hostinger documents no billing time zone), derived
//! from the subscriptions since no invoice can be read: month-to-date spend is what the
//! subscriptions were charged this month — a purchase on its `created_at`, a renewal a whole
//! billing period before the next one (`next_billing_at`, or `expires_at` for one that does not
//! renew), at the current period's `total_price` — and the forecast adds the automatic renewals
//! falling due before the next month's start, at their `renewal_price`. A 12-month plan is its
//! whole price in the month it renews and nothing in the eleven others.
//!
//! The job follows Hostinger's OpenAPI description (v1.42.5), which marks no field of a
//! subscription required and gives `billing_period_unit` no enum: a subscription without
//! what pricing needs, in a unit other than day, week, month or year, or in a currency the job
//! cannot convert is skipped with a warning and counted (`missing_field`, `unknown_unit`,
//! `invalid_period`, `unknown_currency`); the others are reported.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::calendar::{Calendar, Month};
use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Skipped, Spend, SpendKind};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, join, read_capped};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::{Api, Collector, Configured, Context, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "hostinger";
const BASE_URL: &str = "https://developers.hostinger.com";
const SUBSCRIPTIONS: &str = "/api/billing/v1/subscriptions";
/// Largest body read.
const BODY_LIMIT: usize = 4 << 20;
/// Subscriptions reported before the rest are left out (with a warning).
const MAX_SUBSCRIPTIONS: usize = 200;
/// "All requests sent to API must have the content type `application/json`" (the spec's
/// overview); the answer is JSON.
const HEADERS: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("content-type", "application/json"),
];
/// Charges of one subscription counted in a month, at most: a plan billed by the day.
const MAX_CHARGES: usize = 31;

/// The registry's description of Hostinger.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[EnvVar {
            name: "HOSTINGER_API_TOKEN",
            key: "token",
            help: "Hostinger API token (hPanel > Profile > API): it has all of its user's rights; give it an expiry.",
        }],
        secrets: &["token"],
    },
    posts: &[],
    configure,
};

/// `[providers.hostinger]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    token: RawSecret,
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let api = match s.secret("token", &raw.token) {
        None => Api::NoCredentials,
        Some(token) => Api::Collector(Arc::new(Hostinger { base: base?, token })),
    };
    Some(Configured { budget, api })
}

/// The Hostinger collector.
struct Hostinger {
    base: Url,
    token: Secret,
}

/// `Billing.V1.Subscription.SubscriptionResource`. The spec marks no field required, so each
/// is optional here (a null read as absent): a subscription without what the job needs is
/// skipped, never the whole answer.
#[derive(Debug, Deserialize)]
struct Subscription {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    billing_period: Option<i64>,
    #[serde(default)]
    billing_period_unit: Option<String>,
    #[serde(default)]
    currency_code: Option<String>,
    #[serde(default)]
    total_price: Option<i64>,
    #[serde(default)]
    renewal_price: Option<i64>,
    #[serde(default)]
    is_auto_renewed: Option<bool>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    next_billing_at: Option<String>,
}

/// `status`: the spec's enum (a value outside it is an answer the spec does not allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Active,
    Paused,
    Cancelled,
    NotRenewing,
    Transferred,
    InTrial,
    Future,
}

/// Why a subscription cannot be priced: the `reason` it is counted under and what to say.
type Skip = (&'static str, String);

/// Cents as an exact amount.
fn cents(n: i64) -> Decimal {
    Decimal::new(n, 2)
}

/// A billing period: a number of calendar months (a year is 12), or of days (a week is 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Months(i64),
    Days(i64),
}

impl Period {
    /// `billing_period` of `billing_period_unit`, or why it cannot be one.
    fn new(n: i64, unit: &str) -> Result<Period, Skip> {
        if n <= 0 {
            return Err(("invalid_period", format!("billing_period is {n}")));
        }
        let too_long = || {
            (
                "invalid_period",
                format!("billing_period {n} {unit} is too long"),
            )
        };
        match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
            "month" => Ok(Period::Months(n)),
            "year" => n.checked_mul(12).map(Period::Months).ok_or_else(too_long),
            "day" => Ok(Period::Days(n)),
            "week" => n.checked_mul(7).map(Period::Days).ok_or_else(too_long),
            _ => {
                let unit: String = unit.chars().take(32).collect();
                Err((
                    "unknown_unit",
                    format!("billing_period_unit {unit:?} is not day, week, month or year"),
                ))
            }
        }
    }

    /// `t` moved by `k` periods (back when negative), in UTC: months keep the day of the month
    /// (the last day where the month is shorter). `None` past what a clock holds.
    fn shift(self, t: SystemTime, k: i64) -> Option<SystemTime> {
        let ts = jiff::Timestamp::try_from(t).ok()?;
        let moved = match self {
            Period::Months(n) => ts
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().try_months(n.checked_mul(k)?).ok()?)
                .ok()?
                .timestamp(),
            Period::Days(n) => ts
                .checked_add(jiff::SignedDuration::from_hours(
                    n.checked_mul(k)?.checked_mul(24)?,
                ))
                .ok()?,
        };
        Some(SystemTime::from(moved))
    }

    /// Half the period, roughly: a purchase and a renewal closer than this are one charge.
    fn half(self) -> Duration {
        let secs = match self {
            Period::Months(n) => n.saturating_mul(15 * 86_400),
            Period::Days(n) => n.saturating_mul(43_200),
        };
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }
}

/// Statuses that are paid for now: active ones, trials, and those running to their end.
fn counts(status: Status) -> bool {
    matches!(
        status,
        Status::Active | Status::InTrial | Status::NotRenewing
    )
}

/// What one subscription the job can price says.
struct Priced {
    currency: Currency,
    /// The price of the current period, in cents.
    total: i64,
    /// Its billing period.
    period: Period,
}

/// Prices `sub`, or says why it is skipped (`Ok(Err(..))`); a negative price is an `Err`.
fn price(sub: &Subscription) -> Result<Result<Priced, Skip>, String> {
    let missing = |field: &str| Ok(Err(("missing_field", format!("no {field}"))));
    let Some(code) = sub.currency_code.as_deref() else {
        return missing("currency_code");
    };
    let Ok(currency) = code.parse::<Currency>() else {
        let code: String = code.chars().take(32).collect();
        return Ok(Err((
            "unknown_currency",
            format!("currency {code:?} is not a currency this build can convert"),
        )));
    };
    let Some(total) = sub.total_price else {
        return missing("total_price");
    };
    if total < 0 || sub.renewal_price.is_some_and(|p| p < 0) {
        return Err("a price is negative".into());
    }
    let Some(period) = sub.billing_period else {
        return missing("billing_period");
    };
    let Some(unit) = sub.billing_period_unit.as_deref() else {
        return missing("billing_period_unit");
    };
    Ok(Period::new(period, unit).map(|period| Priced {
        currency,
        total,
        period,
    }))
}

/// A subscription's dates, parsed.
struct Dates {
    created: Option<SystemTime>,
    expires: Option<SystemTime>,
    next: Option<SystemTime>,
}

/// When `sub` was charged in `month` up to `now`: its purchase (`created`) and its renewals,
/// each a whole period before `anchor` (its next billing, else its expiry), the latest first;
/// a renewal within half a period of the purchase is the purchase. None for a trial.
fn charged(
    status: Status,
    period: Period,
    d: &Dates,
    month: &Month,
    now: SystemTime,
) -> Vec<SystemTime> {
    let mut out = Vec::new();
    if status == Status::InTrial {
        return out;
    }
    let since = |t: SystemTime| month.contains(t) && t <= now;
    if let Some(c) = d.created.filter(|c| since(*c)) {
        out.push(c);
    }
    let Some(anchor) = d.next.or(d.expires) else {
        return out;
    };
    for k in 1..=MAX_CHARGES as i64 {
        let Some(t) = period.shift(anchor, -k) else {
            break;
        };
        if t < month.start {
            break;
        }
        // A renewal no sooner than half a period after the purchase: earlier, it is the
        // purchase (or before it).
        if let Some(c) = d.created
            && t < c + period.half()
        {
            break;
        }
        if since(t) && out.len() < MAX_CHARGES {
            out.push(t);
        }
    }
    out
}

/// When a subscription renewing by itself at `at` renews in `month`: `at` and the periods after
/// it that start before the month ends (several for a plan billed by the day). None when `at`
/// is before the month: a next billing date in a past month is not one the job can place.
fn renewing(period: Period, at: SystemTime, month: &Month) -> Vec<SystemTime> {
    let mut out = Vec::new();
    if at < month.start {
        return out;
    }
    for k in 0..MAX_CHARGES as i64 {
        match period.shift(at, k) {
            Some(t) if month.due_by_end(t) => out.push(t),
            _ => break,
        }
    }
    out
}

/// `cents` × `n`, exact; `None` when no decimal holds it.
fn times(cents_each: i64, n: usize) -> Option<Decimal> {
    cents(cents_each).checked_mul(Decimal::from(n))
}

#[async_trait::async_trait]
impl Collector for Hostinger {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let url = join(&self.base, SUBSCRIPTIONS);
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(&url, Auth::Bearer(&self.token), HEADERS)
            .await
            .map_err(|e| {
                CollectError::from(e).hint_on(
                    &[401],
                    "the token is wrong or expired: create one in hPanel > Profile > API",
                )
            })?;
        let body = read_capped(resp, &what, BODY_LIMIT).await?;
        let mut subs: Vec<Subscription> = serde_json::from_slice(&body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the documented list of subscriptions ({e})"),
            )
        })?;
        if subs.len() > MAX_SUBSCRIPTIONS {
            tracing::warn!(
                provider = NAME,
                "{} subscriptions; only the first {MAX_SUBSCRIPTIONS} are reported",
                subs.len()
            );
            subs.truncate(MAX_SUBSCRIPTIONS);
        }
        // Hostinger documents no billing time zone: UTC months.
        let month = cx.month(Calendar::Utc);
        let mut spend = Vec::new();
        let mut due = Vec::new();
        let mut renewals = Vec::new();
        let mut names = BTreeSet::new();
        let mut currency_hint = None;
        let mut skipped = Skipped::default();
        for (i, sub) in subs.iter().enumerate() {
            // The subscription as a warning names it: its id, else its name, else its place.
            let who = match (sub.id.as_deref(), sub.name.as_deref()) {
                (Some(id), _) => {
                    format!("subscription {}", id.chars().take(32).collect::<String>())
                }
                (None, Some(n)) => {
                    format!("subscription {:?}", n.chars().take(48).collect::<String>())
                }
                (None, None) => format!("subscription #{}", i + 1),
            };
            let Some(status) = sub.status else {
                skipped.record("missing_field", format!("{who}: no status"));
                continue;
            };
            if !counts(status) {
                continue;
            }
            let bad = |m: String| CollectError::new(Reason::Decode, format!("{what}: {who}: {m}"));
            let p = match price(sub).map_err(bad)? {
                Ok(p) => p,
                Err((reason, why)) => {
                    skipped.record(reason, format!("{who}: {why}"));
                    continue;
                }
            };
            let Some(label) = sub.name.as_deref().or(sub.id.as_deref()) else {
                skipped.record("missing_field", format!("{who}: no name nor id"));
                continue;
            };
            currency_hint.get_or_insert(p.currency);
            // Two subscriptions with one name ("KVM 1") are told apart by their id.
            let base: String = label.trim().chars().take(48).collect();
            let name = if names.insert(base.clone()) {
                base
            } else {
                let id: String = sub.id.as_deref().unwrap_or("").chars().take(24).collect();
                let n = format!("{base} ({id})");
                names.insert(n.clone());
                n
            };
            let date = |field: &str, v: Option<&str>| -> Result<Option<SystemTime>, CollectError> {
                v.map(|t| {
                    OffsetDateTime::parse(t.trim(), &Rfc3339)
                        .map(SystemTime::from)
                        .map_err(|e| {
                            let t: String = t.chars().take(40).collect();
                            bad(format!("{field} {t:?} is not a date-time ({e})"))
                        })
                })
                .transpose()
            };
            let dates = Dates {
                created: date("created_at", sub.created_at.as_deref())?,
                expires: date("expires_at", sub.expires_at.as_deref())?,
                next: date("next_billing_at", sub.next_billing_at.as_deref())?,
            };
            let too_large = || bad("its charges this month are beyond a decimal".into());
            // Charged this month: the current period's price, once per charge.
            let charges = charged(status, p.period, &dates, &month, cx.now);
            if !charges.is_empty() {
                spend.push(Spend {
                    money: Money {
                        amount: times(p.total, charges.len()).ok_or_else(too_large)?,
                        currency: p.currency,
                    },
                    kind: SpendKind::Billed,
                    labels: vec![("name", name.clone()), ("basis", "derived".to_owned())],
                });
            }
            // Still due this month: its automatic renewals before the month ends, at the
            // renewal price. It renews by itself when not said otherwise and it has a next
            // billing date (or an expiry, when it says it renews by itself).
            let renews_at = match sub.is_auto_renewed {
                Some(false) => None,
                Some(true) => dates.next.or(dates.expires),
                None => dates.next,
            };
            if let (Some(at), Some(price), Status::Active | Status::InTrial) =
                (renews_at, sub.renewal_price, status)
            {
                let n = renewing(p.period, at, &month).len();
                if n > 0 {
                    due.push(Spend {
                        money: Money {
                            amount: times(price, n).ok_or_else(too_large)?,
                            currency: p.currency,
                        },
                        kind: SpendKind::Billed,
                        labels: vec![("name", name.clone()), ("basis", "derived".to_owned())],
                    });
                }
            }
            if let (Some(at), Some(renewal)) = (dates.next.or(dates.expires), sub.renewal_price) {
                renewals.push(Renewal {
                    name,
                    id: sub.id.clone(),
                    at,
                    price: Money {
                        amount: cents(renewal),
                        currency: p.currency,
                    },
                    current_price: Some(Money {
                        amount: cents(p.total),
                        currency: p.currency,
                    }),
                    automatic: sub.is_auto_renewed,
                });
            }
        }
        if spend.is_empty() {
            // Nothing charged this month: a known zero.
            spend.push(Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: currency_hint.unwrap_or(Currency::USD),
                },
                kind: SpendKind::Billed,
                labels: vec![("basis", "derived".to_owned())],
            });
        }
        Ok(Collection {
            spend,
            due,
            renewals,
            data_as_of: Some(cx.now),
            skipped,
            month: Some(month),
            ..Collection::default()
        })
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let url = join(&self.base, SUBSCRIPTIONS);
        cx.http
            .get(&url, Auth::Bearer(&self.token), HEADERS)
            .await?;
        Ok("the token reads the subscriptions".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap().into()
    }

    #[test]
    fn periods_are_calendar_months_or_days() {
        assert_eq!(Period::new(1, "month"), Ok(Period::Months(1)));
        assert_eq!(Period::new(2, "years"), Ok(Period::Months(24)));
        assert_eq!(Period::new(2, "week"), Ok(Period::Days(14)));
        assert_eq!(Period::new(1, "Day"), Ok(Period::Days(1)));
        assert_eq!(Period::new(0, "month").unwrap_err().0, "invalid_period");
        assert_eq!(Period::new(-3, "month").unwrap_err().0, "invalid_period");
        assert_eq!(
            Period::new(i64::MAX, "year").unwrap_err().0,
            "invalid_period"
        );
        assert_eq!(Period::new(1, "fortnight").unwrap_err().0, "unknown_unit");
        // A month back from 31 March is the last day of February: the 29th in 2028.
        let p = Period::Months(1);
        assert_eq!(
            p.shift(at("2028-03-31T10:00:00Z"), -1),
            Some(at("2028-02-29T10:00:00Z"))
        );
        assert_eq!(
            Period::Months(12).shift(at("2027-12-20T09:00:00Z"), -1),
            Some(at("2026-12-20T09:00:00Z"))
        );
        assert_eq!(
            Period::Days(7).shift(at("2026-12-01T00:00:00Z"), 2),
            Some(at("2026-12-15T00:00:00Z"))
        );
        assert_eq!(p.shift(at("2026-12-01T00:00:00Z"), i64::MAX), None);
    }

    fn dates(created: &str, next: Option<&str>, expires: Option<&str>) -> Dates {
        Dates {
            created: Some(at(created)),
            next: next.map(at),
            expires: expires.map(at),
        }
    }

    #[test]
    fn a_subscription_is_charged_on_its_purchase_and_a_period_before_its_next_billing() {
        let dec = Calendar::Utc.month(2026, 12).unwrap();
        let now = at("2026-12-21T12:00:00Z");
        let year = Period::Months(12);
        // Renewed on 20 December for a year: charged on the 20th.
        let d = dates("2025-12-20T09:00:00Z", Some("2027-12-20T09:00:00Z"), None);
        assert_eq!(
            charged(Status::Active, year, &d, &dec, now),
            vec![at("2026-12-20T09:00:00Z")]
        );
        // Not yet on the 7th (the renewal is still due).
        let d = dates("2025-12-20T09:00:00Z", Some("2026-12-20T09:00:00Z"), None);
        assert!(charged(Status::Active, year, &d, &dec, at("2026-12-07T00:00:00Z")).is_empty());
        assert_eq!(
            renewing(year, at("2026-12-20T09:00:00Z"), &dec),
            vec![at("2026-12-20T09:00:00Z")]
        );
        // Bought on the 3rd for a month, billed next on 3 January a few minutes later in
        // the day: one charge, the purchase.
        let month = Period::Months(1);
        let d = dates("2026-12-03T11:54:22Z", Some("2027-01-03T12:00:00Z"), None);
        assert_eq!(
            charged(Status::Active, month, &d, &dec, now),
            vec![at("2026-12-03T11:54:22Z")]
        );
        // A plan that does not renew, bought this month: its expiry less its period is the
        // purchase.
        let d = dates("2026-12-05T08:00:00Z", None, Some("2027-03-05T08:00:00Z"));
        assert_eq!(
            charged(Status::NotRenewing, Period::Months(3), &d, &dec, now).len(),
            1
        );
        // A trial is not charged.
        let d = dates("2026-12-01T08:00:00Z", Some("2026-12-15T08:00:00Z"), None);
        assert!(charged(Status::InTrial, month, &d, &dec, now).is_empty());
        // A weekly plan: every renewal since the purchase, and each one still due.
        let week = Period::Days(7);
        let d = dates("2026-11-20T00:00:00Z", Some("2026-12-25T00:00:00Z"), None);
        assert_eq!(
            charged(Status::Active, week, &d, &dec, now),
            vec![
                at("2026-12-18T00:00:00Z"),
                at("2026-12-11T00:00:00Z"),
                at("2026-12-04T00:00:00Z")
            ]
        );
        assert_eq!(renewing(week, at("2026-12-25T00:00:00Z"), &dec).len(), 1);
        // A renewal at the next month's 00:00 is next month's; a next billing date in a past
        // month is none of this month's.
        assert!(renewing(month, at("2027-01-01T00:00:00Z"), &dec).is_empty());
        assert!(renewing(month, at("2024-12-20T00:00:00Z"), &dec).is_empty());
        assert_eq!(
            renewing(Period::Days(1), at("2026-12-30T06:00:00Z"), &dec).len(),
            2
        );
        assert_eq!(
            renewing(month, at("2026-12-31T23:59:59Z"), &dec),
            vec![at("2026-12-31T23:59:59Z")]
        );
    }
}
