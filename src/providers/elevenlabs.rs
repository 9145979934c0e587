//! ElevenLabs: the text-to-speech quota from `GET /v1/user/subscription`: characters (credits)
//! used against the plan's limit, and when that quota window resets (the provider's own
//! window, not the calendar month); the tier; the current overage as spend; the next invoice's
//! amount and date as the forecast and a renewal.
//!
//! ElevenLabs publishes no API description, only generated SDKs: the job follows the types of
//! the Python SDK (`Subscription`, `Price`, `InvoiceResponse`). Their enums are open, so a new
//! tier, status, period or currency never fails the provider; a next payment attempt of -1
//! means none (no renewal date); an amount in a currency the job cannot convert is left out
//! and counted as skipped (`unknown_currency`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema};
use crate::cost::{Collection, Renewal, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, join, read_capped};
use crate::money::{ConfigDecimal, Currency, Money};
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
}

/// `Price`: a currency/amount pair, the amount a decimal string.
#[derive(Debug, Deserialize)]
struct Price {
    amount: String,
    /// `Currency`, an open enum: any JSON value.
    currency: serde_json::Value,
}

/// `InvoiceResponse`: `amount_due_cents` includes tax; `next_payment_attempt_unix` is -1
/// when there is no next payment attempt.
#[derive(Debug, Deserialize)]
struct Invoice {
    amount_due_cents: i64,
    next_payment_attempt_unix: i64,
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
        // The forecast: the next invoice (the plan and the overage it includes), in the
        // subscription's currency, else the overage's.
        if let Some(inv) = &sub.next_invoice {
            if inv.amount_due_cents < 0 {
                return Err(bad("next_invoice.amount_due_cents is negative".into()));
            }
            let amount = Decimal::new(inv.amount_due_cents, 2);
            let code = match &sub.currency {
                Some(v) if !v.is_null() => v,
                _ => &o.currency,
            };
            let due = match currency(code) {
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
            if let Some(due) = due {
                // The overage is spend already: only the rest of the invoice is still due.
                let rest = match overage {
                    Some(o) if o.currency == due.currency => {
                        due.amount.checked_sub(o.amount).ok_or_else(|| {
                            bad("the invoice less the overage is beyond a decimal".into())
                        })?
                    }
                    _ => due.amount,
                };
                if rest > Decimal::ZERO {
                    c.due.push(Spend {
                        money: Money {
                            amount: rest,
                            currency: due.currency,
                        },
                        kind: SpendKind::Billed,
                        labels: vec![("service", "next_invoice".to_owned())],
                    });
                }
                // -1: no next payment attempt, so no date it renews on.
                if let Some(at) = at {
                    c.renewals.push(Renewal {
                        name: c.plan.clone().unwrap_or_else(|| "subscription".into()),
                        id: None,
                        at,
                        price: due,
                        current_price: None,
                        automatic: Some(true),
                    });
                }
            }
        }
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
