//! The GraphQL Analytics query: Workers and Pages Functions requests per day, R2 operations per
//! bucket and action, R2 storage per bucket and day. One POST of one query; an `errors` array in
//! a 200 answer is a `query` failure.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};

use super::{Cloudflare, GRAPHQL_PATH};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, PostBody, describe, join, read_capped, scrub};
use crate::providers::Context;
use crate::providers::wire;

/// Rows per dataset; an answer with this many is cut short (`pagination`).
const ROWS: usize = 10_000;
/// Largest answer read.
const BODY_LIMIT: usize = 32 << 20;
/// Cloudflare's GB for storage: decimal.
const GB: f64 = 1e9;
/// Days in Cloudflare's storage billing period.
const PERIOD_DAYS: f64 = 30.0;

const QUERY: &str = "query CostExporter($account: string!, $start: Date!, $end: Date!, $from: Time!, $to: Time!) {
  viewer {
    accounts(filter: {accountTag: $account}) {
      workers: workersInvocationsAdaptive(limit: 10000, filter: {date_geq: $start, date_leq: $end}) {
        sum { requests WORKERS_CPU}
        dimensions { date }
      }
      pages: pagesFunctionsInvocationsAdaptiveGroups(limit: 10000, filter: {date_geq: $start, date_leq: $end}) {
        sum { requests }
        dimensions { date }
      }
      operations: r2OperationsAdaptiveGroups(limit: 10000, filter: {datetime_geq: $from, datetime_leq: $to}) {
        sum { requests }
        dimensions { bucketName actionType }
      }
      storage: r2StorageAdaptiveGroups(limit: 10000, filter: {datetime_geq: $from, datetime_leq: $to}) {
        max { payloadSize metadataSize objectCount }
        dimensions { bucketName date }
      }
    }
  }
}";

/// The query: Workers CPU time (`cpuTimeUs`, microseconds) is asked for only where it is
/// billed (Workers Paid), so that a Free account's query stays what it was.
fn query(cpu: bool) -> String {
    QUERY.replace("WORKERS_CPU", if cpu { "cpuTimeUs " } else { "" })
}

/// What R2 bills an operation as (<https://developers.cloudflare.com/r2/pricing/>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    A,
    B,
    Free,
}

/// The class of an R2 action. Unlisted actions go by their verb: reads are Class B, deletes
/// and aborts free, anything else Class A (the dearer, so an estimate errs high).
pub(super) fn class(action: &str) -> Class {
    const A: &[&str] = &[
        "ListBuckets",
        "PutBucket",
        "ListObjects",
        "PutObject",
        "CopyObject",
        "CompleteMultipartUpload",
        "CreateMultipartUpload",
        "LifecycleStorageTierTransition",
        "ListMultipartUploads",
        "UploadPart",
        "UploadPartCopy",
        "ListParts",
        "PutBucketEncryption",
        "PutBucketCors",
        "PutBucketLifecycleConfiguration",
    ];
    const B: &[&str] = &[
        "HeadBucket",
        "HeadObject",
        "GetObject",
        "UsageSummary",
        "GetBucketEncryption",
        "GetBucketLocation",
        "GetBucketCors",
        "GetBucketLifecycleConfiguration",
    ];
    const FREE: &[&str] = &["DeleteObject", "DeleteBucket", "AbortMultipartUpload"];
    if A.contains(&action) {
        Class::A
    } else if B.contains(&action) {
        Class::B
    } else if FREE.contains(&action) || action.starts_with("Delete") || action.starts_with("Abort")
    {
        Class::Free
    } else if action.starts_with("Get") || action.starts_with("Head") {
        Class::B
    } else {
        Class::A
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    workers: Vec<Row>,
    #[serde(default)]
    pages: Vec<Row>,
    #[serde(default)]
    operations: Vec<Row>,
    #[serde(default)]
    storage: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    sum: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    max: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    dimensions: BTreeMap<String, Value>,
}

/// The analytics of the month so far.
#[derive(Debug, Default)]
pub(super) struct Analytics {
    /// Workers and Pages Functions requests per day.
    pub(super) workers: BTreeMap<Date, f64>,
    /// Workers CPU time this month, in microseconds, where it was asked for.
    pub(super) workers_cpu_us: Option<f64>,
    /// Per bucket: operations by class.
    operations: BTreeMap<String, (f64, f64)>,
    /// Per bucket and day: the day's peak stored bytes and objects.
    storage: BTreeMap<String, BTreeMap<Date, (f64, f64)>>,
}

/// One bucket's figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Bucket {
    pub(super) bucket: String,
    /// Σ over the days so far of the day's peak GB, ÷ 30 (today's peak counted whole).
    pub(super) gb_months: f64,
    /// The same with today counted for the part of it elapsed: the GB-months accrued up to
    /// the run, which a projection over the time elapsed carries to the month's end (12 GB
    /// kept all December is 12 × 31 ÷ 30 = 12.4 GB-months, whatever the hour of the run).
    pub(super) gb_months_elapsed: f64,
    /// The latest day's peak bytes.
    pub(super) bytes_now: f64,
    /// The latest day's object count.
    pub(super) objects_now: f64,
    pub(super) class_a: f64,
    pub(super) class_b: f64,
}

fn number(
    row: Option<&BTreeMap<String, Value>>,
    field: &str,
    what: &str,
) -> Result<f64, CollectError> {
    match row.and_then(|m| m.get(field)) {
        None | Some(Value::Null) => Err(CollectError::new(
            Reason::Decode,
            format!("{what}: a row has no {field}"),
        )),
        Some(v) => wire::non_negative(v)
            .map_err(|e| CollectError::new(Reason::Decode, format!("{what}: {field}: {e}"))),
    }
}

fn text<'a>(row: &'a Row, field: &str, what: &str) -> Result<&'a str, CollectError> {
    row.dimensions
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| CollectError::new(Reason::Decode, format!("{what}: a row has no {field}")))
}

fn date(row: &Row, what: &str) -> Result<Date, CollectError> {
    let d = text(row, "date", what)?;
    wire::calendar_date(d)
        .ok_or_else(|| CollectError::new(Reason::Decode, format!("{what}: {d:?} is not a date")))
}

impl Analytics {
    /// Adds the account's datasets; `cpu`: the Workers rows carry `cpuTimeUs`.
    fn add(&mut self, a: Account, cpu: bool) -> Result<(), CollectError> {
        if cpu {
            let mut total = 0.0;
            for r in &a.workers {
                total += number(r.sum.as_ref(), "cpuTimeUs", "workers")?;
            }
            self.workers_cpu_us = Some(total);
        }
        for (rows, what) in [(a.workers, "workers"), (a.pages, "pages")] {
            if rows.len() >= ROWS {
                return Err(cut(what));
            }
            for r in rows {
                let n = number(r.sum.as_ref(), "requests", what)?;
                *self.workers.entry(date(&r, what)?).or_default() += n;
            }
        }
        if a.operations.len() >= ROWS {
            return Err(cut("operations"));
        }
        for r in a.operations {
            let n = number(r.sum.as_ref(), "requests", "operations")?;
            let bucket = bucket_label(text(&r, "bucketName", "operations").unwrap_or(""));
            let entry = self.operations.entry(bucket).or_default();
            match class(text(&r, "actionType", "operations")?) {
                Class::A => entry.0 += n,
                Class::B => entry.1 += n,
                Class::Free => {}
            }
        }
        if a.storage.len() >= ROWS {
            return Err(cut("storage"));
        }
        for r in a.storage {
            let bytes = number(r.max.as_ref(), "payloadSize", "storage")?
                + number(r.max.as_ref(), "metadataSize", "storage")?;
            let objects = number(r.max.as_ref(), "objectCount", "storage")?;
            let bucket = bucket_label(text(&r, "bucketName", "storage")?);
            let day = self
                .storage
                .entry(bucket)
                .or_default()
                .entry(date(&r, "storage")?)
                .or_default();
            day.0 = day.0.max(bytes);
            day.1 = day.1.max(objects);
        }
        Ok(())
    }

    /// Every bucket's figures, the `max` biggest by storage with their name, the rest summed
    /// as `other`; `today` and the part of it elapsed (0 to 1) weigh today's storage.
    pub(super) fn r2(&self, max: usize, today: Date, elapsed_today: f64) -> Vec<Bucket> {
        let mut names: Vec<&String> = self.storage.keys().chain(self.operations.keys()).collect();
        names.sort();
        names.dedup();
        let mut out: Vec<Bucket> = names
            .into_iter()
            .map(|name| {
                let days = self.storage.get(name);
                let (a, b) = self.operations.get(name).copied().unwrap_or_default();
                let latest = days.and_then(|d| d.values().next_back()).copied();
                let weighted = |w: &dyn Fn(&Date) -> f64| {
                    days.map_or(0.0, |d| {
                        d.iter().map(|(day, (b, _))| b / GB * w(day)).sum::<f64>()
                    }) / PERIOD_DAYS
                };
                Bucket {
                    bucket: name.clone(),
                    gb_months: weighted(&|_| 1.0),
                    gb_months_elapsed: weighted(&|day| match day.cmp(&today) {
                        std::cmp::Ordering::Less => 1.0,
                        std::cmp::Ordering::Equal => elapsed_today,
                        std::cmp::Ordering::Greater => 0.0,
                    }),
                    bytes_now: latest.map_or(0.0, |l| l.0),
                    objects_now: latest.map_or(0.0, |l| l.1),
                    class_a: a,
                    class_b: b,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.gb_months
                .total_cmp(&x.gb_months)
                .then(x.bucket.cmp(&y.bucket))
        });
        if out.len() > max {
            let rest = out.split_off(max);
            let mut other = Bucket {
                bucket: "other".into(),
                ..Bucket::default()
            };
            for b in rest {
                other.gb_months += b.gb_months;
                other.gb_months_elapsed += b.gb_months_elapsed;
                other.bytes_now += b.bytes_now;
                other.objects_now += b.objects_now;
                other.class_a += b.class_a;
                other.class_b += b.class_b;
            }
            out.push(other);
        }
        out
    }
}

fn cut(what: &str) -> CollectError {
    CollectError::new(
        Reason::Pagination,
        format!("GraphQL {what}: {ROWS} rows or more; the answer is cut short"),
    )
}

/// A bucket name as a bounded label (`unattributed` for operations on no bucket).
fn bucket_label(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        "unattributed".into()
    } else {
        name.chars().take(64).collect()
    }
}

impl Cloudflare {
    /// The month's analytics: one GraphQL POST; `cpu`: Workers CPU time too.
    pub(super) async fn analytics(
        &self,
        cx: &Context,
        cpu: bool,
    ) -> Result<Analytics, CollectError> {
        let url = join(&self.base, GRAPHQL_PATH);
        let what = format!("POST {}", describe(&url));
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        let body = json!({
            "query": query(cpu),
            "variables": {
                "account": self.account,
                "start": start.date().to_string(),
                "end": now.date().to_string(),
                "from": wire::rfc3339(start),
                "to": wire::rfc3339(now),
            }
        });
        let resp = cx
            .http
            .post(&url, Auth::Bearer(&self.token), PostBody::Json(&body))
            .await
            .map_err(|e| super::rest::hint(e.into()))?;
        let bytes = read_capped(resp, &what, BODY_LIMIT).await?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not a GraphQL answer ({e})"),
            )
        })?;
        if let Some(errors) = answer.errors.filter(|e| !e.is_empty()) {
            let first = errors
                .first()
                .and_then(|e| e.message.clone())
                .unwrap_or_else(|| "no message".into());
            return Err(CollectError::new(
                Reason::Query,
                format!(
                    "{what}: the GraphQL query failed ({} error{}): {}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    scrub(&first, Some(&self.token))
                ),
            ));
        }
        let accounts = answer
            .data
            .as_ref()
            .and_then(|d| d.get("viewer"))
            .and_then(|v| v.get("accounts"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                CollectError::new(Reason::Decode, format!("{what}: no data.viewer.accounts"))
            })?;
        let account = match accounts.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(CollectError::new(
                    Reason::Auth,
                    format!(
                        "{what}: no such account for this token (check CLOUDFLARE_ACCOUNT_ID and the token's Account Analytics Read permission)"
                    ),
                ));
            }
            _ => {
                return Err(CollectError::new(
                    Reason::Decode,
                    format!("{what}: more than one account"),
                ));
            }
        };
        let account: Account = serde_json::from_value(account).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the datasets asked for ({e})"),
            )
        })?;
        let mut analytics = Analytics::default();
        analytics.add(account, cpu).map_err(|e| e.context(&what))?;
        Ok(analytics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_take_the_class_the_pricing_page_lists() {
        assert_eq!(class("PutObject"), Class::A);
        assert_eq!(class("ListObjects"), Class::A);
        assert_eq!(class("GetObject"), Class::B);
        assert_eq!(class("HeadBucket"), Class::B);
        assert_eq!(class("DeleteObject"), Class::Free);
        assert_eq!(class("DeleteObjects"), Class::Free);
        assert_eq!(class("GetBucketWebsite"), Class::B);
        assert_eq!(class("PutBucketTagging"), Class::A);
    }

    #[test]
    fn storage_is_the_days_peaks_averaged_over_thirty_days() {
        let mut a = Analytics::default();
        let row = |bucket: &str, day: &str, bytes: f64| Row {
            sum: None,
            max: Some(BTreeMap::from([
                ("payloadSize".into(), json!(bytes - 1e6)),
                ("metadataSize".into(), json!(1e6)),
                ("objectCount".into(), json!(10)),
            ])),
            dimensions: BTreeMap::from([
                ("bucketName".into(), json!(bucket)),
                ("date".into(), json!(day)),
            ]),
        };
        a.add(
            Account {
                workers: vec![],
                pages: vec![],
                operations: vec![],
                storage: vec![
                    row("b", "2026-11-01", 30e9),
                    row("b", "2026-11-01", 15e9),
                    row("b", "2026-11-02", 60e9),
                ],
            },
            false,
        )
        .unwrap();
        let today = Date::from_calendar_date(2026, time::Month::November, 2).unwrap();
        let b = &a.r2(20, today, 0.25)[0];
        // (30 + 60) GB peaks over 30 days.
        assert!((b.gb_months - 3.0).abs() < 1e-9, "{}", b.gb_months);
        // Up to 06:00 on the 2nd: the 1st whole, a quarter of the 2nd: (30 + 15) ÷ 30.
        assert!(
            (b.gb_months_elapsed - 1.5).abs() < 1e-9,
            "{}",
            b.gb_months_elapsed
        );
        assert_eq!(b.bytes_now, 60e9);
    }
}
