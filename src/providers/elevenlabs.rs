//! ElevenLabs: the text-to-speech quota from `GET /v1/user/subscription`: characters (credits)
//! used against the plan's limit, and when that quota window resets (the provider's own
//! window, not the calendar month); the tier; the current overage as spend; the next invoice's
//! amount and date as the forecast and a renewal.

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

#[derive(Debug, Deserialize)]
struct Subscription {
    tier: String,
    character_count: u64,
    character_limit: u64,
    #[serde(default)]
    next_character_count_reset_unix: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    current_overage: Option<Overage>,
    #[serde(default)]
    next_invoice: Option<Invoice>,
}

#[derive(Debug, Deserialize)]
struct Overage {
    amount: ConfigDecimal,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Invoice {
    amount_due_cents: i64,
    next_payment_attempt_unix: i64,
}

fn currency(code: Option<&str>) -> Result<Currency, String> {
    let code = code.unwrap_or("usd");
    code.parse()
        .map_err(|_| format!("{code:?} is not a currency"))
}

fn unix(t: i64) -> Option<SystemTime> {
    u64::try_from(t)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
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
        let account_currency = currency(sub.currency.as_deref()).map_err(bad)?;

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
        if let Some(reset) = sub.next_character_count_reset_unix.and_then(unix) {
            c.resets.push(("characters".into(), reset));
        }
        // Spend: the overage so far in this quota window (0 when there is none).
        let overage = match &sub.current_overage {
            Some(o) => Money {
                amount: o.amount.0,
                currency: currency(o.currency.as_deref().or(sub.currency.as_deref()))
                    .map_err(bad)?,
            },
            None => Money {
                amount: Decimal::ZERO,
                currency: account_currency,
            },
        };
        c.spend.push(Spend {
            money: overage,
            kind: SpendKind::Billed,
            labels: vec![("service", "overage".to_owned())],
        });
        // The forecast: the next invoice (the plan and the overage it includes).
        if let Some(inv) = &sub.next_invoice {
            if inv.amount_due_cents < 0 {
                return Err(bad("next_invoice.amount_due_cents is negative".into()));
            }
            let due = Money {
                amount: Decimal::new(inv.amount_due_cents, 2),
                currency: account_currency,
            };
            let at = unix(inv.next_payment_attempt_unix)
                .ok_or_else(|| bad("next_payment_attempt_unix is not a time".into()))?;
            if due.currency == overage.currency && due.amount > overage.amount {
                c.due.push(Spend {
                    money: Money {
                        amount: due.amount - overage.amount,
                        currency: due.currency,
                    },
                    kind: SpendKind::Billed,
                    labels: vec![("service", "next_invoice".to_owned())],
                });
            }
            c.renewals.push(Renewal {
                name: c.plan.clone().unwrap_or_else(|| "subscription".into()),
                at,
                price: due,
                current_price: None,
                automatic: Some(true),
            });
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
