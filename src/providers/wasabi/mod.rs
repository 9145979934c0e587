//! Wasabi: per bucket, stored bytes and object count from an S3 ListObjectsV2 listing signed
//! with SigV4 (path-style, fanned out over the top-level prefixes, page by page), and, with a
//! billing-scoped key, the Stats API utilisation records; cost at $/TB-month with the 1 TB
//! minimum, accrued per day.
//!
//! Parts: this file (the section, its validation, the collector, the cost), `listing` (S3),
//! `stats` (the Stats API).

mod listing;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema, StringList};
use crate::cost::{Collection, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Provider};
use crate::secret::{RawSecret, Secret};

const NAME: &str = "wasabi";
const STATS_URL: &str = "https://stats.wasabisys.com";
const REGION: &str = "us-east-1";

/// The registry's description of Wasabi.
pub(super) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "WASABI_ACCESS_KEY",
                key: "access_key",
                help: "Wasabi S3 key limited to s3:ListBucket, s3:GetBucketLocation, s3:HeadObject on the buckets.",
            },
            EnvVar {
                name: "WASABI_SECRET_KEY",
                key: "secret_key",
                help: "Its secret.",
            },
            EnvVar {
                name: "WASABI_BILLING_ACCESS_KEY",
                key: "billing_access_key",
                help: "Optional: a separate Wasabi key with billing permission, for the Stats API.",
            },
            EnvVar {
                name: "WASABI_BILLING_SECRET_KEY",
                key: "billing_secret_key",
                help: "Its secret.",
            },
        ],
        secrets: &[
            "access_key",
            "secret_key",
            "billing_access_key",
            "billing_secret_key",
        ],
    },
    posts: &[],
    configure,
};

/// `[providers.wasabi]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    limits: BTreeMap<String, ConfigDecimal>,
    price_per_tb_month: Option<ConfigDecimal>,
    concurrency: Option<u32>,
    region: Option<String>,
    buckets: StringList,
    endpoint: Option<String>,
    stats_url: Option<String>,
    stats: bool,
    access_key: RawSecret,
    secret_key: RawSecret,
    billing_access_key: RawSecret,
    billing_secret_key: RawSecret,
}

/// Resources with a configurable cap (`[providers.wasabi.limits]`).
const RESOURCES: &[&str] = &["storage"];

/// Wasabi's TB: 1024 GB of 2^30 bytes, as its invoice formula uses.
const TB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
/// Days in Wasabi's pricing month ($/TB-month ÷ 30 ÷ 1024 = $/GB-day).
const PRICING_DAYS: i64 = 30;
/// Largest page body read (a page has at most 1000 keys).
const PAGE_LIMIT: usize = 16 << 20;

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let overrides = s.limits(&raw.limits, RESOURCES);
    let mut limits = Vec::new();
    if let Some(v) = overrides.get("storage") {
        match v.to_f64() {
            Some(value) => limits.push(UsageLimit {
                resource: "storage".into(),
                unit: Unit::Bytes,
                value,
            }),
            None => s.fail("limits.storage", format!("{v} is not a usable number")),
        }
    }
    let price = s
        .amount("price_per_tb_month", raw.price_per_tb_month)
        .unwrap_or(Decimal::new(699, 2));
    let concurrency = s.count("concurrency", raw.concurrency, 8);
    let region = raw
        .region
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|| REGION.to_owned());
    if !region
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        s.fail(
            "region",
            format!("{region:?} is not a region name such as eu-central-1"),
        );
    }
    let endpoint = raw
        .endpoint
        .unwrap_or_else(|| format!("https://s3.{region}.wasabisys.com"));
    let endpoint = s.url("endpoint", &endpoint);
    let stats_url = s.url("stats_url", raw.stats_url.as_deref().unwrap_or(STATS_URL));
    for b in &raw.buckets.0 {
        let valid = (3..=63).contains(&b.len())
            && b.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.');
        if !valid {
            s.fail(
                "buckets",
                format!(
                    "{b:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
                ),
            );
        }
    }
    let key = pair(
        s,
        ("access_key", &raw.access_key, "WASABI_ACCESS_KEY"),
        ("secret_key", &raw.secret_key, "WASABI_SECRET_KEY"),
    );
    let billing = pair(
        s,
        (
            "billing_access_key",
            &raw.billing_access_key,
            "WASABI_BILLING_ACCESS_KEY",
        ),
        (
            "billing_secret_key",
            &raw.billing_secret_key,
            "WASABI_BILLING_SECRET_KEY",
        ),
    );
    let api = match key {
        None => Api::NoCredentials,
        Some((access_key, secret_key)) => {
            s.bills_in(Currency::USD);
            let stats = match billing {
                Some((a, k)) => Some(StatsKeys::new(a, k)?),
                None if raw.stats => Some(StatsKeys::new(access_key.clone(), secret_key.clone())?),
                None => None,
            };
            Api::Collector(Arc::new(Wasabi {
                endpoint: endpoint?,
                region,
                buckets: raw.buckets.0,
                access_key,
                secret_key,
                stats,
                stats_url: stats_url?,
                price_per_tb_month: price,
                limits,
                concurrency,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// A key pair, both or neither: each half is (field, raw value, conventional variable).
fn pair(
    s: &mut Section<'_>,
    access: (&str, &RawSecret, &str),
    secret: (&str, &RawSecret, &str),
) -> Option<(Secret, Secret)> {
    let a = s.secret(access.0, access.1);
    let k = s.secret(secret.0, secret.1);
    match (a, k) {
        (Some(a), Some(k)) => Some((a, k)),
        (Some(_), None) | (None, Some(_)) => {
            s.fail(
                secret.0,
                format!("{} and {} must be set together", access.2, secret.2),
            );
            None
        }
        (None, None) => None,
    }
}

/// The Stats API's credentials: `AccessKey:SecretKey` in the `Authorization` header, and the
/// two keys alone (to scrub them from error bodies).
struct StatsKeys {
    pair: Secret,
    access_key: Secret,
    secret_key: Secret,
}

impl StatsKeys {
    fn new(access_key: Secret, secret_key: Secret) -> Option<StatsKeys> {
        // Two clean secrets joined by a colon are clean: this never fails.
        let pair = Secret::clean(&format!("{}:{}", access_key.expose(), secret_key.expose()))
            .ok()
            .flatten()?;
        Some(StatsKeys {
            pair,
            access_key,
            secret_key,
        })
    }
}

/// The Wasabi collector.
struct Wasabi {
    endpoint: Url,
    region: String,
    buckets: Vec<String>,
    access_key: Secret,
    secret_key: Secret,
    /// The Stats API's credentials, when enabled.
    stats: Option<StatsKeys>,
    stats_url: Url,
    price_per_tb_month: Decimal,
    limits: Vec<UsageLimit>,
    concurrency: usize,
}

/// The cost of storing `bytes` for one day at `price` per TB-month, the 1 TB minimum applied:
/// GB × price ÷ (30 × 1024), the $0.00022754 per GB-day of Wasabi's invoices at $6.99.
fn day_cost(bytes: f64, price: Decimal) -> Result<Decimal, CollectError> {
    let gb = wire::decimal(bytes.max(TB) / (1024.0 * 1024.0 * 1024.0), "stored GB")?;
    Ok(gb * price / Decimal::from(PRICING_DAYS * 1024))
}

/// Month-to-date cost of `bytes` stored every elapsed day (today counted).
fn listing_cost(bytes: f64, days: u8, price: Decimal) -> Result<Decimal, CollectError> {
    Ok(day_cost(bytes, price)? * Decimal::from(days))
}

#[async_trait::async_trait]
impl Collector for Wasabi {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let mut usage = Vec::new();
        let mut stored = 0.0;
        for bucket in &self.buckets {
            let l = self.bucket(cx, bucket).await?;
            tracing::debug!(%bucket, objects = l.objects, bytes = l.bytes, "listed");
            stored += l.bytes;
            let labels = vec![("bucket", bucket.clone())];
            usage.push(Usage {
                resource: "storage".into(),
                unit: Unit::Bytes,
                value: l.bytes,
                labels: labels.clone(),
            });
            usage.push(Usage {
                resource: "objects".into(),
                unit: Unit::Objects,
                value: l.objects,
                labels,
            });
        }
        let day = OffsetDateTime::from(cx.now).day();
        let cost = match &self.stats {
            Some(keys) => {
                let s = self.stats(cx, keys).await?;
                for (bucket, (_, billable, deleted)) in &s.latest {
                    let labels = vec![("bucket", bucket.clone())];
                    usage.push(Usage {
                        resource: "billable_storage".into(),
                        unit: Unit::Bytes,
                        value: *billable,
                        labels: labels.clone(),
                    });
                    usage.push(Usage {
                        resource: "deleted_storage".into(),
                        unit: Unit::Bytes,
                        value: *deleted,
                        labels: labels.clone(),
                    });
                    if let Some((calls, egress)) = s.calls.get(bucket) {
                        usage.push(Usage {
                            resource: "api_calls".into(),
                            unit: Unit::Requests,
                            value: *calls,
                            labels: labels.clone(),
                        });
                        usage.push(Usage {
                            resource: "egress".into(),
                            unit: Unit::Bytes,
                            value: *egress,
                            labels,
                        });
                    }
                }
                if !s.account_days.is_empty() {
                    // Account totals: their own resource names, so that summing the per-bucket
                    // series never counts them twice.
                    for (resource, unit, value) in [
                        ("account_billable_storage", Unit::Bytes, s.account_latest.1),
                        ("account_deleted_storage", Unit::Bytes, s.account_latest.2),
                        ("account_api_calls", Unit::Requests, s.account_calls.0),
                        ("account_egress", Unit::Bytes, s.account_calls.1),
                    ] {
                        usage.push(Usage {
                            resource: resource.into(),
                            unit,
                            value,
                            labels: vec![],
                        });
                    }
                }
                if s.account_days.is_empty() {
                    // No account record yet this month: estimate from the listing.
                    listing_cost(stored, day, self.price_per_tb_month)?
                } else {
                    let mut sum = Decimal::ZERO;
                    for b in s.account_days.values() {
                        sum += day_cost(*b, self.price_per_tb_month)?;
                    }
                    sum
                }
            }
            None => listing_cost(stored, day, self.price_per_tb_month)?,
        };
        Ok(Collection {
            usage,
            limits: self.limits.clone(),
            spend: vec![Spend {
                money: Money {
                    amount: cost.round_dp(6),
                    currency: Currency::USD,
                },
                kind: SpendKind::Metered,
                labels: vec![("service", "storage".to_owned())],
            }],
            data_as_of: Some(cx.now),
            source: Some(if self.stats.is_some() {
                "stats"
            } else {
                "listing"
            }),
            ..Collection::default()
        })
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let bucket = self.buckets.first().ok_or_else(|| {
            CollectError::new(
                Reason::Config,
                "no bucket configured (providers.wasabi.buckets)",
            )
        })?;
        let mut url = self.list_url(bucket, None, false, None);
        url.set_query(Some("list-type=2&max-keys=1"));
        self.signed_get(cx, &url, bucket).await?;
        Ok(format!(
            "the key lists bucket {bucket} ({} bucket(s) configured)",
            self.buckets.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_1_tb_minimum_applies_to_each_day() {
        let per_gb_day = Decimal::new(699, 2);
        // 10 GB for 3 days costs what 1 TB does.
        let cost = |bytes: f64, days: u8| listing_cost(bytes, days, per_gb_day).unwrap();
        assert_eq!(cost(10e9, 3), cost(TB, 3));
        assert_eq!(cost(TB, 30), Decimal::new(699, 2));
        assert!(cost(2.0 * TB, 1) > cost(TB, 1));
        // A size no decimal can hold is an error, not a cost of 0.
        assert!(listing_cost(1e40, 1, per_gb_day).is_err());
    }
}
