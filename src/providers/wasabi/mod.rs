//! Wasabi: per bucket, stored bytes and object count from an S3 ListObjectsV2 listing signed
//! with SigV4 (path-style, fanned out over the top-level prefixes, page by page), and, with a
//! billing-scoped key, the Stats API utilisation records; cost at $/TB-month on timed storage
//! (GB-days), with the minimum (1 TB by default) applied to the billing cycle, not to each day
//! ([`storage_cost`]), and deleted storage on top.
//!
//! Parts: this file (the section, its validation, the collector, the cost), `listing` (S3),
//! `stats` (the Stats API).

mod listing;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema, StringList};
use crate::cost::{Collection, Skipped, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
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
    minimum_tb: Option<ConfigDecimal>,
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
const RESOURCES: &[(&str, Unit)] = &[("storage", Unit::Bytes)];

/// Days in Wasabi's pricing month ($/TB-month ÷ 30 ÷ 1024 = $/GB-day).
const PRICING_DAYS: i64 = 30;
/// Largest page body read (a page has at most 1000 keys).
const PAGE_LIMIT: usize = 16 << 20;

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    // No quota: a limit only where configured.
    let limits = s.limits(&raw.limits, RESOURCES, &[]);
    let price = s
        .amount("price_per_tb_month", raw.price_per_tb_month)
        .unwrap_or(Decimal::new(699, 2));
    let minimum_tb = s
        .amount("minimum_tb", raw.minimum_tb)
        .unwrap_or(Decimal::ONE);
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
        // S3's bucket naming rules, which Wasabi follows: 3 to 63 lowercase letters, digits,
        // '-' and '.', beginning and ending with a letter or digit, no two dots together.
        let edge =
            |ch: Option<char>| ch.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid = (3..=63).contains(&b.len())
            && b.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.')
            && edge(b.chars().next())
            && edge(b.chars().next_back())
            && !b.contains("..");
        if !valid {
            s.fail(
                "buckets",
                format!(
                    "{b:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.', beginning and ending with a letter or digit, no '..')"
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
                minimum_tb,
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
    /// The minimum timed active storage billed per cycle, in TB (0: none).
    minimum_tb: Decimal,
    limits: Vec<UsageLimit>,
    concurrency: usize,
}

impl Wasabi {
    /// A metered spend line in USD, `service` labelled.
    fn line(&self, amount: Decimal, service: &str) -> Spend {
        Spend {
            money: Money {
                amount: amount.round_dp(6),
                currency: Currency::USD,
            },
            kind: SpendKind::Metered,
            labels: vec![("service", service.to_owned())],
        }
    }
}

/// GB (Wasabi's: 2^30 bytes) in `bytes`, as a decimal.
fn gb(bytes: f64) -> Result<Decimal, CollectError> {
    wire::decimal(bytes / (1024.0 * 1024.0 * 1024.0), "stored GB")
}

/// The month's storage charges so far, as Wasabi bills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StorageCost {
    /// Timed active storage: GB-days × price ÷ (30 × 1024), the $0.00022754 per GB-day of
    /// Wasabi's invoices at $6.99 per TB-month.
    active: Decimal,
    /// The top-up to the minimum: what the minimum would cost for the days so far, less the
    /// active storage, when positive.
    minimum: Decimal,
    /// Timed deleted storage (objects deleted before their minimum storage duration), at the
    /// same price, on top of the minimum.
    deleted: Decimal,
}

/// The charges for `active_gb_days` and `deleted_gb_days` of storage over `elapsed_days` of the
/// billing cycle, with a minimum of `minimum_tb` of timed active storage for the cycle.
///
/// The minimum is per cycle, not per day: a month below it pays the top-up to it, a month that
/// crosses it mid-month pays only what was stored. Pro rata over the days so far, the top-up is
/// `max(0, minimum × 1024 × days − active GB-days)`; at the month's end this is exactly the
/// invoice's top-up, and the forecast's extrapolation of it is the month's.
fn storage_cost(
    active_gb_days: Decimal,
    deleted_gb_days: Decimal,
    elapsed_days: Decimal,
    minimum_tb: Decimal,
    price: Decimal,
) -> Result<StorageCost, CollectError> {
    let per_gb_day = price / Decimal::from(PRICING_DAYS * 1024);
    let minimum_gb_days = wire::mul(
        wire::mul(minimum_tb, Decimal::from(1024), "the minimum")?,
        elapsed_days,
        "the minimum",
    )?;
    let top_up = minimum_gb_days
        .checked_sub(active_gb_days)
        .unwrap_or(Decimal::ZERO)
        .max(Decimal::ZERO);
    Ok(StorageCost {
        active: wire::mul(active_gb_days, per_gb_day, "stored GB-days")?,
        minimum: wire::mul(top_up, per_gb_day, "the minimum")?,
        deleted: wire::mul(deleted_gb_days, per_gb_day, "deleted GB-days")?,
    })
}

/// Days (fractional) from the 1st, 00:00 UTC, to `t`.
fn days_since(start: OffsetDateTime, t: OffsetDateTime) -> Decimal {
    Decimal::from((t - start).whole_seconds().max(0)) / Decimal::from(86_400)
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
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        // (active GB-days, deleted GB-days if known, days elapsed, data as of).
        let listing = || -> Result<_, CollectError> {
            let days = days_since(start, now);
            Ok((
                wire::mul(gb(stored)?, days, "stored GB-days")?,
                None,
                days,
                now,
            ))
        };
        let mut skipped = Skipped::default();
        let (active, deleted, days, as_of) = match &self.stats {
            Some(keys) => {
                let mut s = self.stats(cx, keys).await?;
                skipped = std::mem::take(&mut s.skipped);
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
                match s
                    .account_days
                    .keys()
                    .next_back()
                    .map(|d| wire::calendar_date(d))
                {
                    // No account record yet this month: estimate from the listing.
                    None => listing()?,
                    Some(None) => {
                        return Err(CollectError::new(
                            Reason::Decode,
                            "a Stats record's StartTime is not a date",
                        ));
                    }
                    Some(Some(last)) => {
                        let (mut active, mut deleted) = (Decimal::ZERO, Decimal::ZERO);
                        for (a, d) in s.account_days.values() {
                            wire::add(&mut active, gb(*a)?, "stored GB-days")?;
                            wire::add(&mut deleted, gb(*d)?, "deleted GB-days")?;
                        }
                        // Daily records: the data covers whole days, up to the end of the last.
                        let end = (last.midnight().assume_utc() + time::Duration::DAY).min(now);
                        (active, Some(deleted), days_since(start, end), end)
                    }
                }
            }
            None => listing()?,
        };
        let cost = storage_cost(
            active,
            deleted.unwrap_or_default(),
            days,
            self.minimum_tb,
            self.price_per_tb_month,
        )?;
        let mut spend = vec![self.line(cost.active, "storage")];
        if !self.minimum_tb.is_zero() {
            spend.push(self.line(cost.minimum, "minimum"));
        }
        // Deleted storage is only known from the Stats API: absent, not 0, from a listing.
        if deleted.is_some() {
            spend.push(self.line(cost.deleted, "deleted_storage"));
        }
        Ok(Collection {
            usage,
            limits: self.limits.clone(),
            spend,
            data_as_of: Some(as_of.into()),
            source: Some(if self.stats.is_some() {
                "stats"
            } else {
                "listing"
            }),
            skipped,
            ..Collection::default()
        })
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        // Only the Stats API keeps daily records; a listing is a snapshot.
        let Some(keys) = &self.stats else {
            return Ok(None);
        };
        let s = self.stats_between(cx, keys, days.first, days.last).await?;
        let mut out = Vec::new();
        let (mut active, mut deleted) = (Decimal::ZERO, Decimal::ZERO);
        for day in days.iter() {
            let key = format!(
                "{:04}-{:02}-{:02}",
                day.year(),
                u8::from(day.month()),
                day.day()
            );
            let Some((a, d)) = s.account_days.get(&key) else {
                // No record for the day (yet): nothing to say about it.
                continue;
            };
            wire::add(&mut active, gb(*a)?, "stored GB-days")?;
            wire::add(&mut deleted, gb(*d)?, "deleted GB-days")?;
            let elapsed = Decimal::from(day.day());
            let cost = storage_cost(
                active,
                deleted,
                elapsed,
                self.minimum_tb,
                self.price_per_tb_month,
            )?;
            let mut spend = vec![self.line(cost.active, "storage")];
            if !self.minimum_tb.is_zero() {
                spend.push(self.line(cost.minimum, "minimum"));
            }
            spend.push(self.line(cost.deleted, "deleted_storage"));
            let usage = [
                ("account_billable_storage", *a),
                ("account_deleted_storage", *d),
            ]
            .into_iter()
            .map(|(resource, value)| Usage {
                resource: resource.into(),
                unit: Unit::Bytes,
                value,
                labels: vec![],
            })
            .collect();
            out.push((
                day,
                Collection {
                    usage,
                    limits: self.limits.clone(),
                    spend,
                    data_as_of: Some(Days::end_of(day)),
                    source: Some("stats"),
                    ..Collection::default()
                },
            ));
        }
        Ok(Some(out))
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

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// At $6.99 per TB-month, over a 30-day month.
    fn month(active_gb_days: i64, deleted_gb_days: i64, minimum_tb: &str) -> StorageCost {
        storage_cost(
            Decimal::from(active_gb_days),
            Decimal::from(deleted_gb_days),
            Decimal::from(30),
            d(minimum_tb),
            d("6.99"),
        )
        .unwrap()
    }

    #[test]
    fn the_minimum_applies_to_the_billing_cycle_not_to_each_day() {
        // 1 TB for the whole month is $6.99, no top-up.
        let full = month(1024 * 30, 0, "1");
        assert_eq!((full.active + full.minimum).round_dp(6), d("6.99"));
        assert_eq!(full.minimum, Decimal::ZERO);
        // 10 GB all month pays the top-up to 1 TB: $6.99 in all.
        let small = month(10 * 30, 0, "1");
        assert_eq!((small.active + small.minimum).round_dp(6), d("6.99"));
        assert!(small.minimum > small.active);
        // 0.5 TB for 10 days, then 2 TB for 20 days: 45 TB-days ≥ 30, so only what was stored
        // ($10.485); a daily minimum would have charged 10 + 40 = 50 TB-days ($11.65).
        let crossing = month(512 * 10 + 2048 * 20, 0, "1");
        assert_eq!(crossing.minimum, Decimal::ZERO);
        assert_eq!(crossing.active.round_dp(6), d("10.485"));
        // Deleted storage is charged on top of the minimum: 100 GB-months of deleted storage
        // under a topped-up month adds its own price.
        let deleted = month(10 * 30, 100 * 30, "1");
        assert_eq!(deleted.minimum, small.minimum);
        assert_eq!(deleted.deleted.round_dp(6), d("0.682617"));
        // No minimum (reserved capacity, a reseller): exactly what was stored.
        let none = month(10 * 30, 0, "0");
        assert_eq!(none.minimum, Decimal::ZERO);
        assert_eq!(none.active.round_dp(6), d("0.068262"));
    }

    #[test]
    fn the_top_up_accrues_pro_rata_over_the_days_so_far() {
        // Day 10 of the month, 10 GB stored all along: the top-up so far is a third of the
        // month's, and × 3 (the forecast) it is the month's.
        let so_far = storage_cost(
            Decimal::from(100),
            Decimal::ZERO,
            Decimal::from(10),
            Decimal::ONE,
            d("6.99"),
        )
        .unwrap();
        let whole = month(10 * 30, 0, "1");
        assert_eq!(
            ((so_far.active + so_far.minimum) * Decimal::from(3)).round_dp(9),
            (whole.active + whole.minimum).round_dp(9)
        );
        // A size no decimal can hold is an error, not a cost of 0; so is a minimum too large
        // to multiply.
        assert!(gb(1e40).is_err());
        let huge = storage_cost(
            Decimal::ONE,
            Decimal::ZERO,
            Decimal::from(30),
            Decimal::MAX,
            d("6.99"),
        );
        assert!(huge.is_err());
    }
}
