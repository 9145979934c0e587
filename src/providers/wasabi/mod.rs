//! Wasabi: per bucket, stored bytes and object count from an S3 ListObjectsV2 listing signed
//! with SigV4 (path-style, fanned out over the top-level prefixes, page by page), and, with a
//! billing-scoped key, the Stats API utilisation records; cost at $/TB-month with the 1 TB
//! minimum, accrued per day.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::events::Event;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use crate::config::ApiSettings;
use crate::cost::{Collection, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::http::{Auth, describe, join};
use crate::money::{Currency, Money};
use crate::providers::wire;
use crate::providers::{CollectError, Collector, Context, Reason};
use crate::secret::Secret;

/// Resources with a configurable cap (`[providers.wasabi.limits]`).
pub const RESOURCES: &[(&str, Unit)] = &[("storage", Unit::Bytes)];

/// Wasabi's TB: 1024 GB of 2^30 bytes, as its invoice formula uses.
pub const TB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
/// Days in Wasabi's pricing month ($/TB-month ÷ 30 ÷ 1024 = $/GB-day).
const PRICING_DAYS: i64 = 30;
/// Largest page body read (a page has at most 1000 keys).
const PAGE_LIMIT: usize = 16 << 20;
/// Pages per listing before giving up (`pagination`): 100 million objects.
const MAX_PAGES: usize = 100_000;

/// The characters SigV4 leaves unencoded in a query: `A-Z a-z 0-9 - _ . ~`.
const AWS_QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The Wasabi collector.
pub struct Wasabi {
    endpoint: Url,
    region: String,
    buckets: Vec<String>,
    access_key: Secret,
    secret_key: Secret,
    /// `AccessKey:SecretKey` for the Stats API, when enabled, and the two keys.
    stats_auth: Option<(Secret, Secret, Secret)>,
    stats_url: Url,
    price_per_tb_month: Decimal,
    limits: Vec<UsageLimit>,
    concurrency: usize,
}

impl Wasabi {
    /// A collector for the validated settings, or `None` without the S3 key pair.
    pub fn new(api: &ApiSettings) -> Option<Wasabi> {
        let creds = api.credentials.as_ref()?;
        let (access_key, secret_key) = (creds.first()?.clone(), creds.get(1)?.clone());
        let billing = match (creds.get(2), creds.get(3)) {
            (Some(a), Some(s)) => Some((a, s)),
            _ if api.stats => Some((&access_key, &secret_key)),
            _ => None,
        };
        let stats_auth = billing.and_then(|(a, s)| {
            let pair = Secret::clean(&format!("{}:{}", a.expose(), s.expose()))
                .ok()
                .flatten()?;
            Some((pair, a.clone(), s.clone()))
        });
        let limits = api
            .limits
            .get("storage")
            .and_then(|v| v.to_f64())
            .map(|v| {
                vec![UsageLimit {
                    resource: "storage".into(),
                    unit: Unit::Bytes,
                    value: v,
                }]
            })
            .unwrap_or_default();
        Some(Wasabi {
            endpoint: api.base_url.clone(),
            region: api.region.clone().unwrap_or_else(|| "us-east-1".into()),
            buckets: api.buckets.clone(),
            access_key,
            secret_key,
            stats_auth,
            stats_url: api.stats_url.clone()?,
            price_per_tb_month: api.price.unwrap_or(Decimal::new(699, 2)),
            limits,
            concurrency: api.concurrency.unwrap_or(8).max(1),
        })
    }

    /// Signs a GET of `url` for S3 (SigV4, service `s3`, the configured region).
    fn sign(
        &self,
        url: &Url,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, CollectError> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        let internal =
            |e: String| CollectError::new(Reason::Internal, format!("SigV4 signing failed: {e}"));
        let creds = aws_credential_types::Credentials::new(
            self.access_key.expose(),
            self.secret_key.expose(),
            None,
            None,
            "cost-exporter",
        );
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| internal(e.to_string()))?
            .into();
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let request = SignableRequest::new(
            "GET",
            url.as_str(),
            std::iter::once(("host", host.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| internal(e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| internal(e.to_string()))?
            .into_parts();
        Ok(instructions
            .headers()
            .filter_map(|(name, value)| {
                let name: &'static str = match name {
                    "authorization" => "authorization",
                    "x-amz-date" => "x-amz-date",
                    "x-amz-content-sha256" => "x-amz-content-sha256",
                    "x-amz-security-token" => "x-amz-security-token",
                    _ => return None,
                };
                Some((name, value.to_owned()))
            })
            .collect())
    }

    fn list_url(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: bool,
        token: Option<&str>,
    ) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push(bucket);
        }
        let mut q = vec![
            ("list-type", "2".to_owned()),
            ("max-keys", "1000".to_owned()),
        ];
        if let Some(t) = token {
            q.push(("continuation-token", t.to_owned()));
        }
        if let Some(p) = prefix {
            q.push(("prefix", p.to_owned()));
        }
        if delimiter {
            q.push(("delimiter", "/".to_owned()));
        }
        let query: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, AWS_QUERY)))
            .collect();
        url.set_query(Some(&query.join("&")));
        url
    }

    /// A SigV4-signed GET of `url`; S3 errors name the bucket and their code.
    async fn signed_get(
        &self,
        cx: &Context,
        url: &Url,
        bucket: &str,
    ) -> Result<reqwest::Response, CollectError> {
        let headers = self.sign(url, SystemTime::now())?;
        let refs: Vec<(&'static str, &str)> =
            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cx.http
            .get(
                url,
                Auth::Signed(&[&self.access_key, &self.secret_key]),
                &refs,
            )
            .await
            .map_err(|e| s3_error(e.into(), bucket))
    }

    /// Lists everything under `prefix`, page by page; with `delimiter`, only the top level
    /// (objects there, and the common prefixes below it).
    async fn list(
        &self,
        cx: &Context,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: bool,
    ) -> Result<Listing, CollectError> {
        let mut total = Listing::default();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let url = self.list_url(bucket, prefix, delimiter, token.as_deref());
            let what = format!("GET {}", describe(&url));
            let resp = self.signed_get(cx, &url, bucket).await?;
            let body = crate::http::read_capped(resp, &what, PAGE_LIMIT).await?;
            let page = parse_page(&body)
                .map_err(|e| CollectError::new(e.0, format!("{what}: {}", e.1)))?;
            total.bytes += page.bytes;
            total.objects += page.objects;
            total.prefixes.extend(page.prefixes);
            match (page.truncated, page.next) {
                (false, _) => return Ok(total),
                (true, None) => {
                    return Err(CollectError::new(
                        Reason::Pagination,
                        format!("{what}: IsTruncated without NextContinuationToken"),
                    ));
                }
                (true, Some(next)) => {
                    if !seen.insert(next.clone()) {
                        return Err(CollectError::new(
                            Reason::Pagination,
                            format!(
                                "{what}: the continuation token repeats; stopping instead of looping"
                            ),
                        ));
                    }
                    token = Some(next);
                }
            }
        }
        Err(CollectError::new(
            Reason::Pagination,
            format!("bucket {bucket}: more than {MAX_PAGES} pages"),
        ))
    }

    /// The whole bucket: the top level first, then every top-level prefix concurrently.
    async fn bucket(&self, cx: &Context, bucket: &str) -> Result<Listing, CollectError> {
        let top = self.list(cx, bucket, None, true).await?;
        let mut total = Listing {
            bytes: top.bytes,
            objects: top.objects,
            prefixes: Vec::new(),
        };
        let top = top.prefixes;
        let parts: Vec<Listing> = stream::iter(top)
            .map(|p: String| async move { self.list(cx, bucket, Some(&p), false).await })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        for p in parts {
            total.bytes += p.bytes;
            total.objects += p.objects;
        }
        Ok(total)
    }

    async fn stats(
        &self,
        cx: &Context,
        keys: &(Secret, Secret, Secret),
    ) -> Result<Stats, CollectError> {
        let (pair, key, secret) = keys;
        // The 1st of the month to today: always within the Stats API's 60-day window.
        let day = |t: OffsetDateTime| {
            format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
        };
        let (from, to) = (day(cx.month_start()), day(OffsetDateTime::from(cx.now)));
        let mut stats = Stats::default();
        for (path, per_bucket) in [
            ("/v1/standalone/utilizations/bucket", true),
            ("/v1/standalone/utilizations", false),
        ] {
            let mut page_num = 0u64;
            let mut pages = 1u64;
            while page_num < pages {
                let mut url = join(&self.stats_url, path);
                url.query_pairs_mut()
                    .append_pair("pageNum", &page_num.to_string())
                    .append_pair("pageSize", "100")
                    .append_pair("from", &from)
                    .append_pair("to", &to);
                let what = format!("GET {}", describe(&url));
                let resp = cx
                    .http
                    .get(
                        &url,
                        Auth::Signed(&[pair, key, secret]),
                        &[("authorization", pair.expose())],
                    )
                    .await?;
                let body = crate::http::read_capped(resp, &what, PAGE_LIMIT).await?;
                let json: Value = serde_json::from_slice(&body).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("{what}: not JSON ({e})"))
                })?;
                // Two envelopes exist: {"PageInfo": …, "Records": […]} and a bare array.
                let (records, page_count) = match &json {
                    Value::Array(a) => (a.clone(), 1),
                    Value::Object(o) => (
                        o.get("Records")
                            .and_then(Value::as_array)
                            .cloned()
                            .ok_or_else(|| {
                                CollectError::new(Reason::Decode, format!("{what}: no Records"))
                            })?,
                        o.get("PageInfo")
                            .and_then(|p| p.get("PageCount"))
                            .and_then(Value::as_u64)
                            .unwrap_or(1),
                    ),
                    _ => {
                        return Err(CollectError::new(
                            Reason::Decode,
                            format!("{what}: not records"),
                        ));
                    }
                };
                if page_num == 0 {
                    // PageCount is only sent with pageNum=0.
                    pages = page_count.clamp(1, 10_000);
                }
                for r in &records {
                    stats
                        .add(r, per_bucket)
                        .map_err(|m| CollectError::new(Reason::Decode, format!("{what}: {m}")))?;
                }
                page_num += 1;
            }
        }
        Ok(stats)
    }
}

/// Maps an S3 error answer to a message that names the S3 error code and the bucket.
fn s3_error(mut e: CollectError, bucket: &str) -> CollectError {
    e.message = match e.code.as_deref() {
        Some(code) => format!("bucket {bucket}: S3 error {code}: {}", e.message),
        None => format!("bucket {bucket}: {}", e.message),
    };
    e
}

/// Sums of a listing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listing {
    /// Σ Size.
    pub bytes: f64,
    /// Number of `Contents` (objects).
    pub objects: f64,
    /// `CommonPrefixes` (delimiter listings only).
    pub prefixes: Vec<String>,
}

/// One parsed ListObjectsV2 page.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// Σ Size of the page.
    pub bytes: f64,
    /// Objects on the page.
    pub objects: f64,
    /// Common prefixes on the page.
    pub prefixes: Vec<String>,
    /// `IsTruncated`.
    pub truncated: bool,
    /// `NextContinuationToken`.
    pub next: Option<String>,
}

/// Parses a `ListBucketResult` page event by event (no tree is built), or an S3 `<Error>`.
pub fn parse_page(xml: &[u8]) -> Result<Page, (Reason, String)> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut page = Page::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut root_seen = false;
    let mut error_code: Option<String> = None;
    let bad = |e: String| (Reason::Decode, e);
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| bad(format!("bad XML at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(s) => {
                let name = s.name().as_ref().to_owned();
                if path.is_empty() {
                    root_seen = true;
                    if name != "ListBucketResult" && name != "Error" {
                        return Err(bad(format!("unexpected root <{name}>")));
                    }
                }
                if name == "Contents" && path.len() == 1 {
                    page.objects += 1.0;
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(t.as_ref()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(bad(format!("unknown entity &{other};"))),
                    },
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                match p.as_slice() {
                    ["ListBucketResult", "Contents", "Size"] => {
                        let n = text
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|n| n.is_finite() && *n >= 0.0)
                            .ok_or_else(|| bad(format!("Size {text:?} is not a byte count")))?;
                        page.bytes += n;
                    }
                    ["ListBucketResult", "IsTruncated"] => page.truncated = text.trim() == "true",
                    ["ListBucketResult", "NextContinuationToken"] => {
                        page.next = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
                    }
                    ["ListBucketResult", "CommonPrefixes", "Prefix"] => {
                        page.prefixes.push(text.clone())
                    }
                    ["Error", "Code"] => error_code = Some(text.trim().to_owned()),
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if let Some(code) = error_code {
        let reason = match code.as_str() {
            "AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" => Reason::Auth,
            "SlowDown" => Reason::RateLimited,
            _ => Reason::Http4xx,
        };
        return Err((reason, format!("S3 error {code}")));
    }
    if !root_seen {
        return Err(bad("empty body, expected <ListBucketResult>".into()));
    }
    Ok(page)
}

/// What the Stats API says for the month.
#[derive(Debug, Default)]
struct Stats {
    /// Per bucket: (latest day, billable bytes that day, deleted bytes that day).
    latest: BTreeMap<String, (String, f64, f64)>,
    /// Per bucket: API calls and download bytes, summed over the month.
    calls: BTreeMap<String, (f64, f64)>,
    /// Account-level billable bytes per day (including the minimum-charge top-up).
    account_days: BTreeMap<String, f64>,
    /// Account-level month sums: API calls and download bytes.
    account_calls: (f64, f64),
    /// Account-level latest day: (day, stored bytes, deleted bytes).
    account_latest: (String, f64, f64),
}

impl Stats {
    fn add(&mut self, r: &Value, per_bucket: bool) -> Result<(), String> {
        let n = |k: &str| -> Result<f64, String> {
            match r.get(k) {
                None | Some(Value::Null) => Ok(0.0),
                Some(v) => wire::non_negative(v).map_err(|e| format!("{k}: {e}")),
            }
        };
        let day = r
            .get("StartTime")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(10).collect::<String>())
            .ok_or("a record has no StartTime")?;
        let stored = n("PaddedStorageSizeBytes")? + n("MetadataStorageSizeBytes")?;
        let deleted = n("DeletedStorageSizeBytes")?;
        if per_bucket {
            let bucket = r
                .get("Bucket")
                .and_then(Value::as_str)
                .ok_or("a bucket record has no Bucket")?
                .to_owned();
            let entry = self
                .latest
                .entry(bucket.clone())
                .or_insert((String::new(), 0.0, 0.0));
            if day >= entry.0 {
                *entry = (day, stored, deleted);
            }
            let c = self.calls.entry(bucket).or_default();
            c.0 += n("NumAPICalls")?;
            c.1 += n("DownloadBytes")?;
        } else {
            *self.account_days.entry(day.clone()).or_default() +=
                stored + deleted + n("MinStorageChargeBytes")?;
            self.account_calls.0 += n("NumAPICalls")?;
            self.account_calls.1 += n("DownloadBytes")?;
            if day > self.account_latest.0 {
                self.account_latest = (day, stored, deleted);
            } else if day == self.account_latest.0 {
                self.account_latest.1 += stored;
                self.account_latest.2 += deleted;
            }
        }
        Ok(())
    }
}

/// The cost of storing `bytes` for one day at `price` per TB-month, the 1 TB minimum applied:
/// GB × price ÷ (30 × 1024), the $0.00022754 per GB-day of Wasabi's invoices at $6.99.
pub fn day_cost(bytes: f64, price: Decimal) -> Result<Decimal, CollectError> {
    let gb = wire::decimal(bytes.max(TB) / (1024.0 * 1024.0 * 1024.0), "stored GB")?;
    Ok(gb * price / Decimal::from(PRICING_DAYS * 1024))
}

/// Month-to-date cost of `bytes` stored every elapsed day (today counted).
pub fn listing_cost(bytes: f64, days: u8, price: Decimal) -> Result<Decimal, CollectError> {
    Ok(day_cost(bytes, price)? * Decimal::from(days))
}

#[async_trait::async_trait]
impl Collector for Wasabi {
    fn provider(&self) -> &str {
        "wasabi"
    }

    fn source(&self) -> &'static str {
        "wasabi"
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
        let cost = match &self.stats_auth {
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
            source: Some(if self.stats_auth.is_some() {
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
    fn pages_are_parsed_without_a_tree() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>3</KeyCount>
<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok/=+1</NextContinuationToken>
<Contents><Key>a&amp;b</Key><Size>10</Size></Contents><Contents><Key>c</Key><Size>5</Size></Contents>
<CommonPrefixes><Prefix>logs/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let p = parse_page(xml).unwrap();
        assert_eq!(
            p,
            Page {
                bytes: 15.0,
                objects: 2.0,
                prefixes: vec!["logs/".into()],
                truncated: true,
                next: Some("tok/=+1".into())
            }
        );
    }

    #[test]
    fn s3_errors_become_bounded_reasons() {
        let err = |code: &str| {
            parse_page(format!("<Error><Code>{code}</Code><Message>m</Message></Error>").as_bytes())
                .unwrap_err()
        };
        assert_eq!(err("SignatureDoesNotMatch").0, Reason::Auth);
        assert_eq!(err("NoSuchBucket").0, Reason::Http4xx);
        assert_eq!(err("SlowDown").0, Reason::RateLimited);
        assert_eq!(parse_page(b"").unwrap_err().0, Reason::Decode);
        assert_eq!(
            parse_page(
                b"<ListBucketResult><Contents><Size>-1</Size></Contents></ListBucketResult>"
            )
            .unwrap_err()
            .0,
            Reason::Decode
        );
    }

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
