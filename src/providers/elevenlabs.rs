//! ElevenLabs: the text-to-speech quota from `GET /v1/user/subscription`: characters (credits)
//! used against the plan's limit, and when that quota window resets (the provider's own
//! window, not the calendar month); the tier; the current overage as spend; the invoices by
//! the cash rule in UTC months (ElevenLabs documents no billing time zone).
//!
//! The next invoice enters the forecast only when its payment attempt falls due this month
//! (strictly before the next month's start), in the job's tax basis; a plan billed per quarter
//! or year is its whole invoice in that month and nothing in the others. The API keeps no past
//! invoice: the current period's, charged a billing period before the next attempt, counts as
//! month-to-date spend when that falls this month, at the plan's price the next invoice states
//! (less the overage it adds).
//!
//! ElevenLabs publishes no API description, only generated SDKs: the job follows the types of
//! the Python SDK (`Subscription`, `Price`, `InvoiceResponse`). Their enums are open, so a new
//! tier, status, period or currency never fails the provider; a next payment attempt of -1
//! means none (no renewal date, nothing due); an amount in a currency the job cannot convert is
//! left out and counted as skipped (`unknown_currency`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use crate::calendar::Calendar;
use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, join, read_capped};
use crate::money::{ConfigDecimal, Currency, Money, TaxBasis};
use crate::providers::{Api, Collector, Configured, Context, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "elevenlabs";
const BASE_URL: &str = "https://api.elevenlabs.io";
const SUBSCRIPTION: &str = "/v1/user/subscription";
const BODY_LIMIT: usize = 1 << 20;

/// The registry's description of ElevenLabs.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[EnvVar {
            name: "ELEVENLABS_API_KEY",
            key: "api_key",
            help: "ElevenLabs API key restricted to reading the user (User: Read), nothing else.",
        }],
        secrets: &["api_key"],
    },
    posts: &[],
    configure,
};

/// `[providers.elevenlabs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    limits: BTreeMap<String, ConfigDecimal>,
    api_key: RawSecret,
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    // The plan's own limit comes from the API; a configured one replaces it.
    let limit = s
        .limits(&raw.limits, &[("characters", Unit::Characters)], &[])
        .first()
        .map(|l| l.value);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let api = match s.secret("api_key", &raw.api_key) {
        None => Api::NoCredentials,
        Some(key) => Api::Collector(Arc::new(ElevenLabs {
            base: base?,
            key,
            limit,
            tax: s.tax(),
        })),
    };
    Some(Configured { budget, api })
}

/// The ElevenLabs collector.
struct ElevenLabs {
    base: Url,
    key: Secret,
    /// A configured character limit, replacing the plan's.
    limit: Option<f64>,
    /// The job's tax basis, for invoices.
    tax: TaxBasis,
}

/// `GET /v1/user/subscription`: the SDK's `Subscription`, the fields the job reads. Its enums
/// are open (`Union[Literal[…], Any]`): a value this build does not know never fails the
/// provider; the ones it does not read (`status`, `billing_period`, …) are not read at all.
#[derive(Debug, Deserialize)]
struct Subscription {
    tier: String,
    character_count: u64,
    character_limit: u64,
    #[serde(default)]
    next_character_count_reset_unix: Option<i64>,
    /// `Optional[Currency]`, an open enum: any JSON value.
    #[serde(default)]
    currency: Option<serde_json::Value>,
    current_overage: Price,
    #[serde(default)]
    next_invoice: Option<Invoice>,
    /// `Optional[BillingPeriod]`, an open enum: any JSON value.
    #[serde(default)]
    billing_period: Option<serde_json::Value>,
}

/// `Price`: a currency/amount pair, the amount a decimal string.
#[derive(Debug, Deserialize)]
struct Price {
    amount: String,
    /// `Currency`, an open enum: any JSON value.
    currency: serde_json::Value,
}

/// `InvoiceResponse`: `amount_due_cents` includes tax; `next_payment_attempt_unix` is -1
/// when there is no next payment attempt; the tax split is optional.
#[derive(Debug, Deserialize)]
struct Invoice {
    amount_due_cents: i64,
    #[serde(default)]
    subtotal_cents: Option<i64>,
    #[serde(default)]
    tax_cents: Option<i64>,
    next_payment_attempt_unix: i64,
}

impl Invoice {
    /// The invoice's amount in `basis`, in cents. Tax included: the amount due. Tax excluded:
    /// the amount due less its tax (the subtotal on an invoice without discount; the subtotal
    /// is before discounts), else the subtotal where the tax is not given (at most the amount
    /// due), else the amount due (no split). A negative amount is an `Err`.
    fn cents(&self, basis: TaxBasis) -> Result<i64, String> {
        let due = self.amount_due_cents;
        if due < 0 {
            return Err("next_invoice.amount_due_cents is negative".into());
        }
        if self.tax_cents.is_some_and(|t| t < 0) || self.subtotal_cents.is_some_and(|s| s < 0) {
            return Err("next_invoice has a negative subtotal or tax".into());
        }
        Ok(match (basis, self.tax_cents, self.subtotal_cents) {
            (TaxBasis::Included, _, _) => due,
            (TaxBasis::Excluded, Some(tax), _) => due.saturating_sub(tax).max(0),
            (TaxBasis::Excluded, None, Some(subtotal)) => subtotal.min(due),
            (TaxBasis::Excluded, None, None) => due,
        })
    }
}

/// The months of a `billing_period` (an open enum): `None` for one this build does not know.
fn period_months(v: Option<&serde_json::Value>) -> Option<i64> {
    match v?.as_str()? {
        "monthly_period" => Some(1),
        "3_month_period" => Some(3),
        "6_month_period" => Some(6),
        "annual_period" => Some(12),
        _ => None,
    }
}

/// `t` less `months` calendar months, in UTC (the last day where the month is shorter).
fn months_before(t: SystemTime, months: i64) -> Option<SystemTime> {
    let ts = jiff::Timestamp::try_from(t).ok()?;
    let z = ts
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(jiff::Span::new().try_months(months).ok()?)
        .ok()?;
    Some(SystemTime::from(z.timestamp()))
}

/// An open-enum currency as a currency the job can convert, or what it says for a warning.
fn currency(v: &serde_json::Value) -> Result<Currency, String> {
    match v.as_str() {
        Some(code) => code.parse().map_err(|_| format!("{code:?}")),
        None => Err(format!("{} (not a code)", short(v))),
    }
}

/// A value for a warning, cut short (at most 32 characters).
fn short(v: &serde_json::Value) -> String {
    v.to_string().chars().take(32).collect()
}

/// A Unix time: `None` for a negative one (ElevenLabs' "none"), `Err` past what a clock holds.
fn unix(t: i64) -> Result<Option<SystemTime>, ()> {
    match u64::try_from(t) {
        Err(_) => Ok(None),
        Ok(s) => SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(s))
            .map(Some)
            .ok_or(()),
    }
}

#[async_trait::async_trait]
impl Collector for ElevenLabs {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let url = join(&self.base, SUBSCRIPTION);
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(&url, Auth::Header("xi-api-key", &self.key), &[])
            .await
            .map_err(|e| {
                CollectError::from(e).hint_on(
                    &[401, 403],
                    "the key is wrong or lacks the User: Read permission",
                )
            })?;
        let body = read_capped(resp, &what, BODY_LIMIT).await?;
        let sub: Subscription = serde_json::from_slice(&body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the documented subscription ({e})"),
            )
        })?;
        let bad = |m: String| CollectError::new(Reason::Decode, format!("{what}: {m}"));

        let mut c = Collection {
            usage: vec![Usage {
                resource: "characters".into(),
                unit: Unit::Characters,
                value: sub.character_count as f64,
                labels: vec![],
            }],
            limits: vec![UsageLimit {
                resource: "characters".into(),
                unit: Unit::Characters,
                value: self.limit.unwrap_or(sub.character_limit as f64),
            }],
            plan: Some(sub.tier.trim().chars().take(48).collect()),
            data_as_of: Some(cx.now),
            ..Collection::default()
        };
        if let Some(t) = sub.next_character_count_reset_unix {
            let reset = unix(t)
                .map_err(|()| bad(format!("next_character_count_reset_unix {t} is not a time")))?;
            if let Some(reset) = reset {
                c.resets.push(("characters".into(), reset));
            }
        }
        // Spend: the overage so far in this quota window, in the currency it names.
        let o = &sub.current_overage;
        let amount: Decimal = o.amount.trim().parse().map_err(|_| {
            bad(format!(
                "current_overage.amount {:?} is not a decimal",
                o.amount.chars().take(32).collect::<String>()
            ))
        })?;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(bad(format!("current_overage.amount {amount} is negative")));
        }
        let overage = match currency(&o.currency) {
            Ok(currency) => Some(Money { amount, currency }),
            Err(code) => {
                c.skipped.record(
                    "unknown_currency",
                    format!("current_overage of {amount} in {code}, a currency this build cannot convert"),
                );
                None
            }
        };
        if let Some(money) = overage {
            c.spend.push(Spend {
                money,
                kind: SpendKind::Billed,
                labels: vec![("service", "overage".to_owned())],
            });
        }
        // The next invoice (the plan and the overage it includes), in the subscription's
        // currency, else the overage's, in the job's tax basis.
        if let Some(inv) = &sub.next_invoice {
            let amount = Decimal::new(inv.cents(self.tax).map_err(bad)?, 2);
            let code = match &sub.currency {
                Some(v) if !v.is_null() => v,
                _ => &o.currency,
            };
            let invoice = match currency(code) {
                Ok(currency) => Some(Money { amount, currency }),
                Err(code) => {
                    c.skipped.record(
                        "unknown_currency",
                        format!("next_invoice of {amount} in {code}, a currency this build cannot convert"),
                    );
                    None
                }
            };
            let t = inv.next_payment_attempt_unix;
            let at = unix(t).map_err(|()| {
                bad(format!(
                    "next_invoice.next_payment_attempt_unix {t} is not a time"
                ))
            })?;
            // -1: no next payment attempt, so nothing falls due and no date it renews on.
            if let (Some(invoice), Some(at)) = (invoice, at) {
                // The overage is spend already: the rest of the invoice is the plan's price.
                let plan = match overage {
                    Some(o) if o.currency == invoice.currency => {
                        invoice.amount.checked_sub(o.amount).ok_or_else(|| {
                            bad("the invoice less the overage is beyond a decimal".into())
                        })?
                    }
                    _ => invoice.amount,
                };
                let plan = Money {
                    amount: plan.max(Decimal::ZERO),
                    currency: invoice.currency,
                };
                let month = cx.month(Calendar::Utc);
                // Due this month: the payment attempt falls before the next month's start.
                if month.contains(at) && plan.amount > Decimal::ZERO {
                    c.due.push(Spend {
                        money: plan,
                        kind: SpendKind::Billed,
                        labels: vec![("service", "next_invoice".to_owned())],
                    });
                }
                // Charged this month: the current period's invoice, a billing period before
                // the next attempt, at the plan's price (the API keeps no past invoice).
                let last =
                    period_months(sub.billing_period.as_ref()).and_then(|m| months_before(at, m));
                if let Some(last) = last
                    && month.contains(last)
                    && last <= cx.now
                {
                    c.spend.push(Spend {
                        money: plan,
                        kind: SpendKind::Billed,
                        labels: vec![
                            ("service", "subscription".to_owned()),
                            ("basis", "derived".to_owned()),
                        ],
                    });
                }
                c.renewals.push(Renewal {
                    name: c.plan.clone().unwrap_or_else(|| "subscription".into()),
                    id: None,
                    at,
                    price: invoice,
                    current_price: None,
                    automatic: Some(true),
                });
            }
        }
        c.month = Some(cx.month(Calendar::Utc));
        Ok(c)
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let url = join(&self.base, SUBSCRIPTION);
        cx.http
            .get(&url, Auth::Header("xi-api-key", &self.key), &[])
            .await?;
        Ok("the key reads the subscription".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(due: i64, subtotal: Option<i64>, tax: Option<i64>) -> Invoice {
        Invoice {
            amount_due_cents: due,
            subtotal_cents: subtotal,
            tax_cents: tax,
            next_payment_attempt_unix: 0,
        }
    }

    #[test]
    fn an_invoice_s_amount_follows_the_tax_basis() {
        let vat = invoice(2826, Some(2355), Some(471));
        assert_eq!(vat.cents(TaxBasis::Included), Ok(2826));
        assert_eq!(vat.cents(TaxBasis::Excluded), Ok(2355));
        // A 20 % discount: the subtotal is before it, the amount due after.
        let discounted = invoice(2261, Some(2355), Some(377));
        assert_eq!(discounted.cents(TaxBasis::Excluded), Ok(1884));
        // Without the tax, the subtotal (at most the amount due); without either, the amount.
        assert_eq!(
            invoice(2826, Some(2355), None).cents(TaxBasis::Excluded),
            Ok(2355)
        );
        assert_eq!(
            invoice(2826, None, None).cents(TaxBasis::Excluded),
            Ok(2826)
        );
        // A credit balance paying more than the tax: nothing left to pay, not a negative.
        assert_eq!(
            invoice(100, Some(2355), Some(471)).cents(TaxBasis::Excluded),
            Ok(0)
        );
        assert!(invoice(-1, None, None).cents(TaxBasis::Included).is_err());
        assert!(
            invoice(10, None, Some(-1))
                .cents(TaxBasis::Excluded)
                .is_err()
        );
    }

    #[test]
    fn a_billing_period_is_counted_back_in_calendar_months() {
        let at = |s: &str| -> SystemTime {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .into()
        };
        let p = |v: &str| period_months(Some(&serde_json::Value::from(v)));
        assert_eq!(p("annual_period"), Some(12));
        assert_eq!(p("3_month_period"), Some(3));
        assert_eq!(p("weekly_period"), None);
        assert_eq!(period_months(None), None);
        assert_eq!(
            months_before(at("2028-03-31T08:00:00Z"), 1),
            Some(at("2028-02-29T08:00:00Z"))
        );
        assert_eq!(
            months_before(at("2027-09-14T08:00:00Z"), 12),
            Some(at("2026-09-14T08:00:00Z"))
        );
    }
}
