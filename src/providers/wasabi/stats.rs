//! The Stats API (`stats.wasabisys.com`, a key with billing permission): per-bucket and
//! account utilisation records of the month, in two envelopes, paged.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use super::{PAGE_LIMIT, StatsKeys, Wasabi};
use crate::cost::Skipped;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe, join, scrub_all};
use crate::providers::Context;
use crate::providers::wire;
use crate::secret::Secret;

impl Wasabi {
    pub(super) async fn stats(
        &self,
        cx: &Context,
        keys: &StatsKeys,
    ) -> Result<Stats, CollectError> {
        // The 1st of the month to today: always within the Stats API's 60-day window.
        self.stats_between(
            cx,
            keys,
            cx.month_start().date(),
            OffsetDateTime::from(cx.now).date(),
        )
        .await
    }

    /// The records from `first` to `last` (dates, inclusive).
    pub(super) async fn stats_between(
        &self,
        cx: &Context,
        keys: &StatsKeys,
        first: time::Date,
        last: time::Date,
    ) -> Result<Stats, CollectError> {
        let StatsKeys {
            pair,
            access_key,
            secret_key,
        } = keys;
        let day =
            |t: time::Date| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
        let (from, to) = (day(first), day(last));
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
                        Auth::Signed(&[pair, access_key, secret_key]),
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
                        .add(r, per_bucket, &[pair, access_key, secret_key])
                        .map_err(|m| CollectError::new(Reason::Decode, format!("{what}: {m}")))?;
                }
                page_num += 1;
            }
        }
        Ok(stats)
    }
}

/// What the Stats API says for the month.
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Per bucket: (latest day, billable bytes that day, deleted bytes that day).
    pub(super) latest: BTreeMap<String, (String, f64, f64)>,
    /// Per bucket: API calls and download bytes, summed over the month.
    pub(super) calls: BTreeMap<String, (f64, f64)>,
    /// Account-level bytes per day (`YYYY-MM-DD`): (active, deleted). Wasabi's daily
    /// `MinStorageChargeBytes` is not used: the minimum is applied to the billing cycle.
    pub(super) account_days: BTreeMap<String, (f64, f64)>,
    /// Account-level month sums: API calls and download bytes.
    pub(super) account_calls: (f64, f64),
    /// Account-level latest day: (day, stored bytes, deleted bytes).
    pub(super) account_latest: (String, f64, f64),
    /// Records that cannot be placed (no `Bucket`, no `StartTime`, a counter missing: the docs
    /// promise no field). The account records carry a skipped bucket record's bytes all the same.
    pub(super) skipped: Skipped,
}

/// A provider's free text in a warning: printable, at most 40 characters, quoted.
fn shown(text: &str) -> String {
    let t: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
    format!("{t:?}")
}

impl Stats {
    /// Adds one record. The docs promise no field: a record without one the job needs (its
    /// day, its bucket, a counter) is skipped with a warning instead of read as 0; a field of
    /// the wrong type or a negative count is not what the API sends, a `decode` error.
    /// Warnings are scrubbed of `secrets` (an answer may echo them).
    fn add(&mut self, r: &Value, per_bucket: bool, secrets: &[&Secret]) -> Result<(), String> {
        let kind = if per_bucket { "bucket" } else { "account" };
        let mut skip = |reason: &'static str, what: String| {
            self.skipped.record(reason, scrub_all(&what, secrets));
        };
        let day = match r.get("StartTime") {
            None | Some(Value::Null) => {
                skip(
                    "missing_field",
                    format!("a Stats {kind} record has no StartTime"),
                );
                return Ok(());
            }
            Some(Value::String(t)) => match t.get(..10).and_then(wire::calendar_date) {
                Some(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
                None => {
                    skip(
                        "bad_date",
                        format!(
                            "a Stats {kind} record's StartTime {} is not a date",
                            shown(t)
                        ),
                    );
                    return Ok(());
                }
            },
            Some(other) => return Err(format!("StartTime {other} is not text")),
        };
        let bucket = if per_bucket {
            match r.get("Bucket") {
                Some(Value::String(b)) => Some(b.clone()),
                None | Some(Value::Null) => {
                    skip(
                        "missing_field",
                        format!("a Stats bucket record of {day} has no Bucket name"),
                    );
                    return Ok(());
                }
                Some(other) => return Err(format!("Bucket {other} is not text")),
            }
        } else {
            None
        };
        let mut figures = [0.0; 5];
        for (slot, k) in figures.iter_mut().zip([
            "PaddedStorageSizeBytes",
            "MetadataStorageSizeBytes",
            "DeletedStorageSizeBytes",
            "NumAPICalls",
            "DownloadBytes",
        ]) {
            match r.get(k) {
                None | Some(Value::Null) => {
                    let whose = bucket.as_deref().map_or_else(
                        || "the account".to_owned(),
                        |b| format!("bucket {}", shown(b)),
                    );
                    skip(
                        "missing_field",
                        format!("a Stats record of {whose} on {day} has no {k}"),
                    );
                    return Ok(());
                }
                Some(v) => *slot = wire::non_negative(v).map_err(|e| format!("{k}: {e}"))?,
            }
        }
        let [padded, metadata, deleted, calls, download] = figures;
        let stored = padded + metadata;
        match bucket {
            Some(bucket) => {
                let entry = self
                    .latest
                    .entry(bucket.clone())
                    .or_insert((String::new(), 0.0, 0.0));
                if day >= entry.0 {
                    *entry = (day, stored, deleted);
                }
                let c = self.calls.entry(bucket).or_default();
                c.0 += calls;
                c.1 += download;
            }
            None => {
                let d = self.account_days.entry(day.clone()).or_default();
                d.0 += stored;
                d.1 += deleted;
                self.account_calls.0 += calls;
                self.account_calls.1 += download;
                if day > self.account_latest.0 {
                    self.account_latest = (day, stored, deleted);
                } else if day == self.account_latest.0 {
                    self.account_latest.1 += stored;
                    self.account_latest.2 += deleted;
                }
            }
        }
        Ok(())
    }
}
