//! Hostinger: every subscription from `GET /api/billing/v1/subscriptions` (the only billing
//! read the API has: there is no invoice or order history), as a monthly equivalent of its
//! price (derived: the price spread over its billing period), with its renewal date, renewal
//! price and whether it renews by itself. A renewal priced above the current period is
//! Hostinger's usual surprise, so both prices are exported.

use std::collections::BTreeSet;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Spend, SpendKind};
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

/// `Billing.V1.Subscription.SubscriptionResource`.
#[derive(Debug, Deserialize)]
struct Subscription {
    id: String,
    name: String,
    status: String,
    billing_period: u32,
    billing_period_unit: String,
    currency_code: String,
    total_price: i64,
    renewal_price: Option<i64>,
    #[serde(default)]
    is_auto_renewed: Option<bool>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    next_billing_at: Option<String>,
}

/// Cents as an exact amount.
fn cents(n: i64) -> Decimal {
    Decimal::new(n, 2)
}

/// A price for one billing period as a monthly amount (6 decimals).
fn monthly(price: Decimal, period: u32, unit: &str) -> Result<Decimal, String> {
    if period == 0 {
        return Err("billing_period is 0".into());
    }
    let n = Decimal::from(period);
    let amount = match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "month" => Some(price / n),
        "year" => Some(price / (n * Decimal::from(12))),
        "day" => price.checked_mul(DAYS_PER_MONTH).map(|p| p / n),
        "week" => price
            .checked_mul(DAYS_PER_MONTH)
            .map(|p| p / (n * Decimal::from(7))),
        other => {
            return Err(format!(
                "billing_period_unit {other:?} is not day, week, month or year"
            ));
        }
    };
    amount
        .map(|a| a.round_dp(6))
        .ok_or_else(|| format!("price {price} is too large to turn into a monthly amount"))
}

/// Statuses that are paid for now: active ones, trials, and those running to their end.
fn counts(status: &str) -> bool {
    matches!(status, "active" | "in_trial" | "not_renewing")
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
            .get(
                &url,
                Auth::Bearer(&self.token),
                &[("accept", "application/json")],
            )
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
        for sub in subs.into_iter().filter(|s| counts(&s.status)) {
            let bad = |m: String| {
                CollectError::new(
                    Reason::Decode,
                    format!("{what}: subscription {}: {m}", sub.id),
                )
            };
            let currency: Currency = sub.currency_code.parse().map_err(|_| {
                bad(format!(
                    "currency {:?} is not a currency",
                    sub.currency_code
                ))
            })?;
            currency_hint.get_or_insert(currency);
            if sub.total_price < 0 || sub.renewal_price.is_some_and(|p| p < 0) {
                return Err(bad("a price is negative".into()));
            }
            let month_amount = monthly(
                cents(sub.total_price),
                sub.billing_period,
                &sub.billing_period_unit,
            )
            .map_err(bad)?;
            // Two subscriptions with one name ("KVM 1") are told apart by their id.
            let base: String = sub.name.trim().chars().take(48).collect();
            let name = if names.insert(base.clone()) {
                base
            } else {
                let n = format!("{base} ({})", sub.id.chars().take(24).collect::<String>());
                names.insert(n.clone());
                n
            };
            spend.push(Spend {
                money: Money {
                    amount: month_amount,
                    currency,
                },
                kind: SpendKind::Fixed,
                labels: vec![("name", name.clone()), ("basis", "derived".to_owned())],
            });
            let next = sub
                .next_billing_at
                .as_deref()
                .or(sub.expires_at.as_deref())
                .map(|t| {
                    OffsetDateTime::parse(t.trim(), &Rfc3339)
                        .map_err(|e| bad(format!("{t:?} is not a date-time ({e})")))
                })
                .transpose()?;
            if let (Some(at), Some(renewal)) = (next, sub.renewal_price) {
                renewals.push(Renewal {
                    name,
                    at: at.into(),
                    price: Money {
                        amount: cents(renewal),
                        currency,
                    },
                    current_price: Some(Money {
                        amount: cents(sub.total_price),
                        currency,
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
            ..Collection::default()
        })
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let url = join(&self.base, SUBSCRIPTIONS);
        cx.http.get(&url, Auth::Bearer(&self.token), &[]).await?;
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
        assert!(monthly(Decimal::ONE, 0, "month").is_err());
        assert!(monthly(Decimal::ONE, 1, "fortnight").is_err());
    }
}
