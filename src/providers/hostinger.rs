//! Hostinger: every subscription from `GET /api/billing/v1/subscriptions` (the only billing
//! read the API has: there is no invoice or order history), as a monthly equivalent of its
//! price (derived: the price spread over its billing period), with its renewal date, renewal
//! price and whether it renews by itself. A renewal priced above the current period is
//! Hostinger's usual surprise, so both prices are exported.
//!
//! The job follows Hostinger's OpenAPI description (v1.42.5), which marks no field of a
//! subscription required and gives `billing_period_unit` no enum: a subscription without
//! what pricing needs, in a unit other than day, week, month or year, or in a currency the job
//! cannot convert is skipped with a warning and counted (`missing_field`, `unknown_unit`,
//! `invalid_period`, `unknown_currency`); the others are reported.

use std::collections::BTreeSet;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

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
/// An average month in days (365.25 / 12), for subscriptions billed by the day or week.
const DAYS_PER_MONTH: Decimal = Decimal::from_parts(3_043_750, 0, 0, false, 5);

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

/// A price for one billing period as a monthly amount (6 decimals), or why it cannot be one.
fn monthly(price: Decimal, period: i64, unit: &str) -> Result<Decimal, Skip> {
    if period <= 0 {
        return Err(("invalid_period", format!("billing_period is {period}")));
    }
    let n = Decimal::from(period);
    let amount = match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "month" => price.checked_div(n),
        "year" => n
            .checked_mul(Decimal::from(12))
            .and_then(|d| price.checked_div(d)),
        "day" => price
            .checked_mul(DAYS_PER_MONTH)
            .and_then(|p| p.checked_div(n)),
        "week" => price.checked_mul(DAYS_PER_MONTH).and_then(|p| {
            n.checked_mul(Decimal::from(7))
                .and_then(|d| p.checked_div(d))
        }),
        _ => {
            let unit: String = unit.chars().take(32).collect();
            return Err((
                "unknown_unit",
                format!("billing_period_unit {unit:?} is not day, week, month or year"),
            ));
        }
    };
    amount.map(|a| a.round_dp(6)).ok_or_else(|| {
        (
            "too_large",
            format!("price {price} is too large to turn into a monthly amount"),
        )
    })
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
    /// The monthly equivalent.
    month: Decimal,
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
    Ok(monthly(cents(total), period, unit).map(|month| Priced {
        currency,
        total,
        month,
    }))
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
        let mut spend = Vec::new();
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
            spend.push(Spend {
                money: Money {
                    amount: p.month,
                    currency: p.currency,
                },
                kind: SpendKind::Fixed,
                labels: vec![("name", name.clone()), ("basis", "derived".to_owned())],
            });
            let next = sub
                .next_billing_at
                .as_deref()
                .or(sub.expires_at.as_deref())
                .map(|t| {
                    OffsetDateTime::parse(t.trim(), &Rfc3339).map_err(|e| {
                        let t: String = t.chars().take(40).collect();
                        bad(format!("{t:?} is not a date-time ({e})"))
                    })
                })
                .transpose()?;
            if let (Some(at), Some(renewal)) = (next, sub.renewal_price) {
                renewals.push(Renewal {
                    name,
                    id: sub.id.clone(),
                    at: at.into(),
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
            // No active subscription: a known zero.
            spend.push(Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: currency_hint.unwrap_or(Currency::USD),
                },
                kind: SpendKind::Fixed,
                labels: vec![("basis", "derived".to_owned())],
            });
        }
        Ok(Collection {
            spend,
            renewals,
            data_as_of: Some(cx.now),
            skipped,
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

    #[test]
    fn prices_become_monthly_amounts() {
        let m = |p: i64, n, u| monthly(cents(p), n, u).unwrap();
        assert_eq!(m(1799, 1, "month"), Decimal::new(1799, 2));
        // A 48-month prepaid plan of 143.52 is 2.99 a month.
        assert_eq!(m(14352, 48, "month"), Decimal::new(299, 2));
        assert_eq!(m(2400, 2, "years"), Decimal::ONE);
        assert_eq!(m(1000, 1, "day"), Decimal::new(304375, 3));
        assert_eq!(m(700, 2, "week"), Decimal::new(1_521_875, 5));
        assert_eq!(
            monthly(Decimal::ONE, 0, "month").unwrap_err().0,
            "invalid_period"
        );
        assert_eq!(
            monthly(Decimal::ONE, -3, "month").unwrap_err().0,
            "invalid_period"
        );
        assert_eq!(
            monthly(Decimal::ONE, 1, "fortnight").unwrap_err().0,
            "unknown_unit"
        );
        let huge = monthly(cents(i64::MAX), 1, "day").unwrap();
        assert!(huge > Decimal::ZERO);
    }
}
