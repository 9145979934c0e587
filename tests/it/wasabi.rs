//! Wasabi end to end: a real S3 server that verifies SigV4 (`s3s-fs`) holding what the test
//! wrote, across several listing pages and prefixes; an in-memory S3 whose every request is held
//! to botocore's ListObjectsV2 (`tests/fixtures/wasabi/s3-openapi.json`, from the pinned
//! `s3-listobjectsv2.botocore.json`); the Stats API against a loopback mock held to a
//! description written from Wasabi's docs (`tests/fixtures/wasabi/stats-openapi.json`); the real
//! binary and a real Pushgateway.

use std::path::Path;

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::{Spec, assert_requests_follow};
use crate::support::{self, Pushgateway, S3Server};

/// botocore's ListObjectsV2, the request side.
fn s3_spec() -> Spec {
    Spec::load("wasabi/s3-openapi.json")
}

/// The Stats API as Wasabi's docs describe it.
fn stats_spec() -> Spec {
    Spec::load("wasabi/stats-openapi.json")
}

/// What the Stats description says of a request, and what it cannot say in OpenAPI: from..to
/// is at most 60 days.
fn stats_violations(spec: &Spec, req: &wiremock::Request) -> Vec<String> {
    let mut out = spec.request_violations(req);
    let q: std::collections::BTreeMap<String, String> =
        req.url.query_pairs().into_owned().collect();
    let day = |k: &str| {
        q.get(k).and_then(|t| {
            let mut parts = t.splitn(3, '-').map(|p| p.parse::<u16>().ok());
            let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
            time::Date::from_calendar_date(
                i32::from(y),
                time::Month::try_from(u8::try_from(m).ok()?).ok()?,
                u8::try_from(d).ok()?,
            )
            .ok()
        })
    };
    if let (Some(from), Some(to)) = (day("from"), day("to"))
        && !(from <= to && to - from <= time::Duration::days(60))
    {
        out.push(format!("from {from} to {to}: more than 60 days"));
    }
    out
}

/// A matcher: the request follows the Stats description.
fn follows_stats(req: &wiremock::Request) -> bool {
    stats_violations(&stats_spec(), req).is_empty()
}

/// The key pair the S3 server accepts.
const S3_KEY: &[(&str, &str)] = &[
    ("WASABI_ACCESS_KEY", support::S3_ACCESS),
    ("WASABI_SECRET_KEY", support::S3_SECRET),
];

/// Writes the test's objects; returns (bytes, objects) per bucket.
fn write_objects(root: &Path) -> Vec<(&'static str, f64, f64)> {
    let mut out = Vec::new();
    // Several pages (1000 keys each) under one prefix, more under others, some at the top.
    type Part = (&'static str, usize, usize);
    let layout: &[(&str, &[Part])] = &[
        (
            "ecotrans-backups",
            &[("many/", 2345, 7), ("db/2026/11/", 40, 1000), ("", 3, 123)],
        ),
        ("ecotrans-monitoring", &[("", 5, 10)]),
        // One top-level prefix, as real backup buckets are: the listing must descend to fan
        // out, and count the objects at each level it passes exactly once.
        (
            "ecotrans-archive",
            &[
                ("daily/", 3, 50),
                ("daily/0001/", 1200, 3),
                ("daily/0002/", 30, 4),
                ("daily/0002/deep/", 7, 5),
                ("daily/0003/", 30, 6),
                ("daily/0004/", 30, 7),
                ("daily/0005/", 30, 8),
                ("daily/0006/", 30, 9),
                ("daily/0007/", 30, 10),
                ("daily/0008/", 30, 11),
                ("daily/0009/", 30, 12),
            ],
        ),
    ];
    for (bucket, parts) in layout {
        let (mut bytes, mut objects) = (0.0, 0.0);
        for (prefix, count, size) in *parts {
            let dir = root.join(bucket).join(prefix);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..*count {
                // Sizes vary so that a wrong sum cannot pass by accident.
                let len = size + i % 13;
                // Unusual characters too: spaces, `+`, `%`, non-ASCII.
                let name = if i % 97 == 5 {
                    format!("ünï cødé + 100% {i:05}.bin")
                } else {
                    format!("obj-{i:05}.bin")
                };
                std::fs::write(dir.join(name), vec![7u8; len]).unwrap();
                bytes += len as f64;
                objects += 1.0;
            }
        }
        out.push((*bucket, bytes, objects));
    }
    out
}

fn config(pg: &str, s3: &str, extra: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 1\n\
         [providers.wasabi]\nendpoint = \"{s3}\"\nregion = \"eu-central-1\"\n\
         buckets = [\"ecotrans-backups\", \"ecotrans-monitoring\", \"ecotrans-archive\"]\nbudget = 15\n{extra}"
    ))
}

#[tokio::test]
async fn a_signed_listing_counts_exactly_what_was_stored_across_pages() {
    let root = tempfile::tempdir().unwrap();
    let expected = write_objects(root.path());
    let s3 = S3Server::start(root.path());
    let pg = Pushgateway::start();
    let cfg = config(
        &pg.url,
        &s3.url,
        "[providers.wasabi.limits]\nstorage = 1_000_000\n",
    );
    let (code, stderr) = support::push(cfg.path(), S3_KEY).await;
    assert_eq!(code, Some(0), "{stderr}");
    for (bucket, bytes, objects) in &expected {
        assert_eq!(
            pg.value(
                Some("wasabi"),
                "cost_usage",
                &[("resource", "storage"), ("bucket", bucket)]
            ),
            Some(*bytes),
            "{bucket} bytes"
        );
        assert_eq!(
            pg.value(
                Some("wasabi"),
                "cost_usage",
                &[("resource", "objects"), ("bucket", bucket)]
            ),
            Some(*objects),
            "{bucket} objects"
        );
    }
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_usage_limit",
            &[("resource", "storage")]
        ),
        Some(1_000_000.0)
    );
    // Under 1 TB: what is stored, plus the top-up to the 1 TB minimum for the time elapsed
    // (fractional days): together $6.99 × elapsed days / 30. Deleted storage is unknown to a
    // listing: absent, not 0.
    let elapsed =
        (time::OffsetDateTime::now_utc() - support::month_start()).as_seconds_f64() / 86_400.0;
    let storage = pg
        .value(Some("wasabi"), "cost_spend", &[("service", "storage")])
        .unwrap();
    let minimum = pg
        .value(Some("wasabi"), "cost_spend", &[("service", "minimum")])
        .unwrap();
    assert!(minimum > storage, "{minimum} {storage}");
    // A few seconds pass between the run and this line: 2.7 µ$ a second.
    assert!(
        (storage + minimum - 6.99 * elapsed / 30.0).abs() < 1e-3,
        "{storage} + {minimum} at {elapsed} days"
    );
    assert!(
        pg.value(
            Some("wasabi"),
            "cost_spend",
            &[("service", "deleted_storage")]
        )
        .is_none()
    );
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_source",
            &[("source", "listing")]
        ),
        Some(1.0)
    );
    assert!(!stderr.contains(support::S3_SECRET));
}

#[tokio::test]
async fn a_wrong_secret_fails_with_signature_does_not_match() {
    let root = tempfile::tempdir().unwrap();
    write_objects(root.path());
    let s3 = S3Server::start(root.path());
    let pg = Pushgateway::start();
    let (code, stderr) = support::push(
        config(&pg.url, &s3.url, "").path(),
        &[
            ("WASABI_ACCESS_KEY", support::S3_ACCESS),
            ("WASABI_SECRET_KEY", "not-the-secret"),
        ],
    )
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_errors_total",
            &[("reason", "auth")]
        ),
        Some(1.0)
    );
    assert!(pg.series(Some("wasabi"), "cost_usage").is_empty());
}

#[tokio::test]
async fn a_missing_bucket_is_named() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("ecotrans-backups")).unwrap();
    let s3 = S3Server::start(root.path());
    let pg = Pushgateway::start();
    let (code, stderr) = support::push(config(&pg.url, &s3.url, "").path(), S3_KEY).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("NoSuchBucket") && stderr.contains("ecotrans-monitoring"),
        "{stderr}"
    );
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_errors_total",
            &[("reason", "http_4xx")]
        ),
        Some(1.0)
    );
}

fn record(
    bucket: Option<&str>,
    day: u32,
    padded: u64,
    deleted: u64,
    min: u64,
) -> serde_json::Value {
    let mut r = json!({
        "UtilizationNum": 280305, "AcctNum": 100000042, "AcctPlanNum": 14083,
        "StartTime": format!("2026-11-{day:02}T00:00:00Z"), "EndTime": format!("2026-11-{:02}T00:00:00Z", day + 1),
        "CreateTime": "2026-11-21T07:10:46Z",
        "NumBillableObjects": 1, "NumBillableDeletedObjects": 2,
        "RawStorageSizeBytes": padded, "PaddedStorageSizeBytes": padded, "MetadataStorageSizeBytes": 48,
        "DeletedStorageSizeBytes": deleted, "OrphanedStorageSizeBytes": 0, "MinStorageChargeBytes": min,
        "NumAPICalls": 19, "UploadBytes": 31520247, "DownloadBytes": 21010048,
        "StorageWroteBytes": 31457280, "StorageReadBytes": 20971520,
        "NumGETCalls": 2, "NumPUTCalls": 4, "NumDELETECalls": 0, "NumLISTCalls": 1, "NumHEADCalls": 1, "DeleteBytes": 0
    });
    if let Some(b) = bucket {
        r["Bucket"] = json!(b);
        r["Region"] = json!("eu-central-1");
    }
    r
}

#[tokio::test]
async fn the_stats_api_gives_billable_bytes_and_the_cost_with_the_minimum() {
    let root = tempfile::tempdir().unwrap();
    write_objects(root.path());
    let s3 = S3Server::start(root.path());
    let stats = MockServer::start().await;
    let auth = "AKBILLING:sk-billing-secret-4242";
    // Per bucket: the {PageInfo, Records} envelope over two pages (PageCount only on page 0).
    let spec = stats_spec();
    let bucket_path = "/v1/standalone/utilizations/bucket";
    Mock::given(method("GET"))
        .and(path(bucket_path))
        .and(query_param("pageNum", "0"))
        .and(header("authorization", auth))
        .and(follows_stats)
        .respond_with(spec.answer("get", bucket_path, 200, json!({
            "PageInfo": {"RecordCount": 3, "PageCount": 2, "PageSize": 100, "PageNum": 0},
            "Records": [record(Some("ecotrans-backups"), 1, 10485760, 20971520, 0), record(Some("ecotrans-backups"), 2, 11534336, 0, 0)]
        })))
        .expect(1)
        .mount(&stats)
        .await;
    // The docs promise no field: a record without one the job needs is skipped and counted,
    // never read as 0, never the whole provider failed.
    let mut no_padded = record(Some("ecotrans-monitoring"), 3, 999_999, 0, 0);
    no_padded
        .as_object_mut()
        .unwrap()
        .remove("PaddedStorageSizeBytes");
    // A record whose bucket name echoes the billing secret: its warning never shows it.
    let mut echo = record(Some("sk-billing-secret-4242"), 3, 1, 0, 0);
    echo.as_object_mut().unwrap().remove("DownloadBytes");
    Mock::given(method("GET"))
        .and(path(bucket_path))
        .and(query_param("pageNum", "1"))
        .and(follows_stats)
        .respond_with(spec.answer("get", bucket_path, 200, json!({
            "PageInfo": {"RecordCount": 0, "PageCount": 0, "PageSize": 100, "PageNum": 1},
            // A record without `Bucket` (the field is in no official text): skipped; the
            // account records hold its bytes.
            "Records": [record(Some("ecotrans-monitoring"), 2, 4096, 0, 0), record(None, 2, 777, 0, 0), no_padded, echo]
        })))
        .expect(1)
        .mount(&stats)
        .await;
    // Account: the bare-array envelope; Wasabi's own daily minimum-charge top-up is reported
    // (and not used: the minimum is per billing cycle).
    let tb: u64 = 1 << 40;
    let mut no_day = record(None, 3, tb, 0, 0);
    no_day.as_object_mut().unwrap().remove("StartTime");
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations"))
        .and(follows_stats)
        .respond_with(spec.answer(
            "get",
            "/v1/standalone/utilizations",
            200,
            json!([
                record(None, 1, 10485760, 20971520, tb - 10485760 - 20971520 - 48),
                record(None, 2, tb / 2, 0, tb / 2 - 48),
                no_day
            ]),
        ))
        .expect(1)
        .mount(&stats)
        .await;
    let pg = Pushgateway::start();
    let cfg = config(
        &pg.url,
        &s3.url,
        &format!("stats_url = \"{}\"\n", stats.uri()),
    );
    let (code, stderr) = support::push(
        cfg.path(),
        &[
            ("WASABI_ACCESS_KEY", support::S3_ACCESS),
            ("WASABI_SECRET_KEY", support::S3_SECRET),
            ("WASABI_BILLING_ACCESS_KEY", "AKBILLING"),
            ("WASABI_BILLING_SECRET_KEY", "sk-billing-secret-4242"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let u = |r: &str, b: &str| {
        pg.value(
            Some("wasabi"),
            "cost_usage",
            &[("resource", r), ("bucket", b)],
        )
    };
    // The latest day of each bucket: padded + metadata bytes.
    assert_eq!(
        u("billable_storage", "ecotrans-backups"),
        Some(11534336.0 + 48.0)
    );
    assert_eq!(u("deleted_storage", "ecotrans-backups"), Some(0.0));
    assert_eq!(
        u("billable_storage", "ecotrans-monitoring"),
        Some(4096.0 + 48.0)
    );
    assert_eq!(u("api_calls", "ecotrans-backups"), Some(38.0));
    assert_eq!(u("egress", "ecotrans-backups"), Some(2.0 * 21010048.0));
    // Account totals, under their own names (latest day: day 2).
    let a = |r: &str| pg.value(Some("wasabi"), "cost_usage", &[("resource", r)]);
    assert_eq!(
        a("account_billable_storage"),
        Some((1u64 << 39) as f64 + 48.0)
    );
    assert_eq!(a("account_api_calls"), Some(38.0));
    assert_eq!(a("account_egress"), Some(2.0 * 21010048.0));
    // Timed storage over the two days of records: 10 MiB + 48 B, then 0.5 TiB + 48 B of active
    // storage, 20 MiB deleted, at $6.99 / 30 / 1024 per GB-day. The minimum for the cycle so
    // far is 1 TB × 2 days (the records reach the end of the 2nd): the top-up is the
    // difference; deleted storage is on top of it.
    let gib = (1u64 << 30) as f64;
    let per_gb_day = 6.99 / 30.0 / 1024.0;
    let active = (10485760.0 + 48.0 + (1u64 << 39) as f64 + 48.0) / gib;
    let end = time::OffsetDateTime::from_unix_timestamp(1_793_664_000).unwrap(); // 2026-11-03
    let days = ((end - support::month_start()).whole_seconds().max(0) as f64) / 86_400.0;
    let spend = |service: &str| {
        pg.value(Some("wasabi"), "cost_spend", &[("service", service)])
            .unwrap()
    };
    assert!((spend("storage") - active * per_gb_day).abs() < 1e-6);
    assert!(
        (spend("minimum") - (1024.0 * days - active).max(0.0) * per_gb_day).abs() < 1e-6,
        "{}",
        spend("minimum")
    );
    assert!((spend("deleted_storage") - 20971520.0 / gib * per_gb_day).abs() < 1e-6);
    // The data reaches the end of the last record's day.
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_data_as_of_timestamp_seconds",
            &[]
        ),
        Some(1_793_664_000.0)
    );
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_source",
            &[("source", "stats")]
        ),
        Some(1.0)
    );
    assert_eq!(
        pg.value(
            Some("wasabi"),
            "cost_collector_records_skipped",
            &[("reason", "missing_field")]
        ),
        Some(4.0)
    );
    assert!(
        stderr.contains("skipped a record: a Stats bucket record of 2026-11-02 has no Bucket"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"ecotrans-monitoring\" on 2026-11-03 has no PaddedStorageSizeBytes")
            && stderr.contains("a Stats account record has no StartTime"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-billing-secret-4242"), "{stderr}");
    assert_requests_follow(&spec, &stats).await;
}

/// The controls: requests and answers outside the descriptions are caught.
#[tokio::test]
async fn the_pinned_descriptions_catch_off_description_requests_and_answers() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let sigv4 = [
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AK/20261107/eu-central-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        ("x-amz-date", "20261107T101010Z"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    let get = |path: &str, headers: &[(&'static str, &'static str)]| {
        let mut r = client.get(format!("{}{path}", mock.uri()));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    get(
        "/archive?list-type=2&max-keys=1000&prefix=a%2F&delimiter=%2F",
        &sigv4,
    )
    .await
    .unwrap();
    let s3 = s3_spec();
    assert_requests_follow(&s3, &mock).await;
    mock.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    // More than S3 returns a page, ListObjects (v1), an unsigned request, a bad bucket name.
    get("/archive?list-type=2&max-keys=5000", &sigv4)
        .await
        .unwrap();
    get("/archive?max-keys=1000", &sigv4).await.unwrap();
    get("/archive?list-type=2", &[]).await.unwrap();
    get("/Archive_1?list-type=2", &sigv4).await.unwrap();
    for r in mock.received_requests().await.unwrap() {
        assert!(!s3.request_violations(&r).is_empty(), "{} passed", r.url);
    }
    mock.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    // Stats: pages of 500, date-times instead of dates, 90 days, no key pair.
    let pair = [("authorization", "AK:SK")];
    let stats = stats_spec();
    get(
        "/v1/standalone/utilizations/bucket?pageNum=0&pageSize=100&from=2026-11-01&to=2026-11-07",
        &pair,
    )
    .await
    .unwrap();
    let ok = mock.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(stats_violations(&stats, &ok), Vec::<String>::new());
    mock.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    get("/v1/standalone/utilizations/bucket?pageSize=500", &pair)
        .await
        .unwrap();
    get(
        "/v1/standalone/utilizations?from=2026-11-01T00:00:00Z&to=2026-11-07",
        &pair,
    )
    .await
    .unwrap();
    get(
        "/v1/standalone/utilizations?from=2026-08-01&to=2026-11-01",
        &pair,
    )
    .await
    .unwrap();
    get("/v1/standalone/utilizations", &[]).await.unwrap();
    for r in mock.received_requests().await.unwrap() {
        assert!(!stats_violations(&stats, &r).is_empty(), "{} passed", r.url);
    }
    let template = "/v1/standalone/utilizations";
    assert!(
        stats
            .answer_violations("get", template, 200, &json!([record(None, 1, 1, 0, 0)]))
            .is_empty()
    );
    assert!(
        !stats
            .answer_violations("get", template, 200, &json!({"Records": {"a": 1}}))
            .is_empty()
    );
    let mut negative = record(None, 1, 1, 0, 0);
    negative["NumAPICalls"] = json!(-1);
    assert!(
        !stats
            .answer_violations("get", template, 200, &json!([negative]))
            .is_empty()
    );
}

/// botocore's ListObjectsV2 output shapes, by member: what a listing answer may hold.
fn botocore_members() -> std::collections::BTreeSet<String> {
    let text =
        std::fs::read_to_string(support::fixture("wasabi/s3-listobjectsv2.botocore.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for shape in [
        "ListObjectsV2Output",
        "Object",
        "CommonPrefix",
        "Owner",
        "RestoreStatus",
    ] {
        for (name, m) in d["shapes"][shape]["members"].as_object().unwrap() {
            out.insert(m["locationName"].as_str().unwrap_or(name).to_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_in_memory_s3_answers_only_elements_botocore_describes() {
    let members = botocore_members();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(S3Model::new(
            single_prefix_bucket(3, 2),
            std::time::Duration::ZERO,
        ))
        .mount(&mock)
        .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Headers of SigV4's shape (the model checks the shape, not the signature).
    let body = reqwest::Client::new()
        .get(format!("{}/archive?list-type=2&delimiter=%2F&max-keys=2", mock.uri()))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AK/20261107/eu-central-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}", "0".repeat(64)),
        )
        .header("x-amz-date", "20261107T101010Z")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names: Vec<&str> = body
        .split('<')
        .skip(1)
        .filter(|t| !t.starts_with('/') && !t.starts_with('?'))
        .map(|t| t.split(['>', ' ']).next().unwrap())
        .collect();
    assert!(names.len() > 3, "{body}");
    assert_eq!(names[0], "ListBucketResult");
    for n in &names[1..] {
        assert!(
            members.contains(*n),
            "<{n}> is not in botocore's ListObjectsV2Output"
        );
    }
}

/// An in-memory S3 that answers ListObjectsV2 as S3 does (prefix, `/` delimiter, max-keys,
/// opaque continuation tokens, lexicographic order, common prefixes counted as one key each)
/// over any keys, including "folder" objects ending in `/` and keys that are also the start of
/// others; it counts the requests.
pub struct S3Model {
    keys: std::sync::Arc<Vec<(String, u64)>>,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay: std::time::Duration,
}

impl S3Model {
    pub fn new(mut keys: Vec<(String, u64)>, delay: std::time::Duration) -> S3Model {
        keys.sort();
        S3Model {
            keys: std::sync::Arc::new(keys),
            requests: Default::default(),
            delay,
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl wiremock::Respond for S3Model {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // What botocore's ListObjectsV2 does not describe, S3 refuses.
        let violations = s3_spec().request_violations(req);
        if !violations.is_empty() {
            return ResponseTemplate::new(400).set_body_string(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidArgument</Code><Message>{}</Message></Error>",
                xml_escape(&violations.join("; "))
            ));
        }
        let q: std::collections::BTreeMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let prefix = q.get("prefix").cloned().unwrap_or_default();
        let delimited = q.get("delimiter").map(String::as_str) == Some("/");
        let max: usize = q
            .get("max-keys")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1000);
        let after = q.get("continuation-token").cloned();
        // The items of the listing, in order: a key, or a common prefix (once).
        let mut items: Vec<(String, Option<u64>)> = Vec::new();
        for (k, size) in self.keys.iter() {
            let Some(rest) = k.strip_prefix(prefix.as_str()) else {
                continue;
            };
            match rest.find('/') {
                Some(i) if delimited => {
                    let cp = format!("{prefix}{}", &rest[..=i]);
                    if items.last().map(|(n, s)| (n.as_str(), s.is_none())) != Some((&cp, true)) {
                        items.push((cp, None));
                    }
                }
                _ => items.push((k.clone(), Some(*size))),
            }
        }
        let start = match &after {
            Some(t) => items.iter().position(|(n, _)| n > t).unwrap_or(items.len()),
            None => 0,
        };
        let page: Vec<&(String, Option<u64>)> = items[start..].iter().take(max).collect();
        let truncated = start + page.len() < items.len();
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>");
        body.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        for (name, size) in &page {
            match size {
                Some(s) => body.push_str(&format!(
                    "<Contents><Key>{}</Key><Size>{s}</Size></Contents>",
                    xml_escape(name)
                )),
                None => body.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    xml_escape(name)
                )),
            }
        }
        if truncated && let Some((last, _)) = page.last() {
            body.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml_escape(last)
            ));
        }
        body.push_str("</ListBucketResult>");
        ResponseTemplate::new(200)
            .set_delay(self.delay)
            .set_body_string(body)
    }
}

/// Keys shaped like real buckets: one top-level prefix (`daily/`), `n` date prefixes under it
/// with `per` objects each, folder objects, a key that is also the start of others, unusual
/// characters, and a few keys at the top.
pub fn single_prefix_bucket(n: usize, per: usize) -> Vec<(String, u64)> {
    let mut keys = vec![
        ("daily/".to_owned(), 0),
        ("readme.txt".to_owned(), 11),
        ("daily/index".to_owned(), 7),
        ("daily/0001".to_owned(), 5),
        ("daily/0001/deep/x & <y>.bin".to_owned(), 3),
        ("daily/0002/ünï cødé + 100%.bin".to_owned(), 9),
        ("z/".to_owned(), 0),
    ];
    for d in 0..n {
        keys.push((format!("daily/{d:04}/"), 0));
        for i in 0..per {
            keys.push((
                format!("daily/{d:04}/obj-{i:05}.bin"),
                (100 + i % 17) as u64,
            ));
        }
    }
    keys
}

#[tokio::test]
async fn a_single_top_prefix_bucket_is_fanned_out_and_counted_exactly() {
    let keys = single_prefix_bucket(40, 30);
    let (bytes, objects) = keys
        .iter()
        .fold((0u64, 0u64), |(b, n), (_, s)| (b + s, n + 1));
    let mock = MockServer::start().await;
    let model = S3Model::new(keys, std::time::Duration::ZERO);
    let requests = std::sync::Arc::clone(&model.requests);
    Mock::given(method("GET"))
        .respond_with(model)
        .mount(&mock)
        .await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n[providers.wasabi]\nendpoint = \"{}\"\nregion = \"eu-central-1\"\nbuckets = [\"archive\"]\nconcurrency = 8\n",
        pg.url,
        mock.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), S3_KEY).await;
    assert_eq!(code, Some(0), "{stderr}");
    let u = |r: &str| {
        pg.value(
            Some("wasabi"),
            "cost_usage",
            &[("resource", r), ("bucket", "archive")],
        )
    };
    assert_eq!(
        u("storage"),
        Some(bytes as f64),
        "bytes: none missed, none twice"
    );
    assert_eq!(
        u("objects"),
        Some(objects as f64),
        "objects: none missed, none twice"
    );
    // Discovery is small next to the listing: the top level, `daily/` and `z/` with a
    // delimiter, then the 40 date prefixes (each one page).
    let n = requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n <= 1 + 2 + 40, "{n} requests");
    assert_requests_follow(&s3_spec(), &mock).await;
}

#[tokio::test]
async fn ranges_hold_across_pages_with_tiny_pages_and_deep_levels() {
    // max-keys is fixed at 1000 by the collector; a bucket with more prefixes than a page
    // (1,500 under one level) and more objects than a page under one of them.
    let mut keys = single_prefix_bucket(1500, 1);
    for i in 0..2500 {
        keys.push((format!("daily/0007/many/{i:05}"), 1));
    }
    let (bytes, objects) = keys
        .iter()
        .fold((0u64, 0u64), |(b, n), (_, s)| (b + s, n + 1));
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(S3Model::new(keys, std::time::Duration::ZERO))
        .mount(&mock)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[providers.wasabi]\nendpoint = \"{}\"\nbuckets = [\"archive\"]\n",
        mock.uri()
    ));
    let path = cfg.path().display().to_string();
    let out = support::run_async(&["collect", "--config", &path], S3_KEY).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "cost_usage{{bucket=\"archive\",provider=\"wasabi\",resource=\"storage\",unit=\"bytes\"}} {bytes}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "cost_usage{{bucket=\"archive\",provider=\"wasabi\",resource=\"objects\",unit=\"objects\"}} {objects}"
        )),
        "{stdout}"
    );
    assert_requests_follow(&s3_spec(), &mock).await;
}

/// Bucket names have the shape S3's naming rules give them (the pattern the pinned description
/// holds requests to): one that S3 would refuse is a configuration error, before any request.
#[test]
fn a_bucket_name_s3_would_refuse_is_a_configuration_error() {
    for bucket in ["-backups", "backups-", "back..ups", ".backups"] {
        let cfg = support::toml(&format!("[providers.wasabi]\nbuckets = [\"{bucket}\"]\n"));
        let path = cfg.path().display().to_string();
        let out = support::run(&["check", "--config", &path], S3_KEY);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{bucket}: {stderr}");
        assert!(stderr.contains("not a bucket name"), "{stderr}");
    }
}

/// A bucket of 100 GB (Wasabi's GB: 2^30 bytes) in one sparse object: listed at its size,
/// stored in no disk space.
fn hundred_gb(root: &Path, bucket: &str) {
    let dir = root.join(bucket).join("db");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("dump.tar")).unwrap();
    f.set_len(100 << 30).unwrap();
}

/// Issue 23, row "Wasabi, an account without the 1 TB minimum": the owner's example states
/// `minimum_tb` (0: this account's older pricing has none), so 100 GB stored all December is
/// what the invoice says, not a terabyte.
///
/// The run: 7 December 2026 at 03:14 UTC (6.1347 days of 31); the dollar at the example's
/// 0.92 € (its fallback, the ECB not read here). 100 GB × 31 days × $6.99 ÷ 30 ÷ 1024 a
/// GB-day = $0.7054 → **0.65 €** (so far: 100 × 6.1347 GB-days, $0.1396 → 0.13 €). With the
/// minimum the example left unset (1 TB by default), the job printed the minimum's month:
/// 1024 GB × 31 days at the same price, $7.2230 → **6.65 €**.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_states_its_minimum_and_an_account_without_one_pays_what_it_stores() {
    let root = tempfile::tempdir().unwrap();
    hundred_gb(root.path(), "ecotrans-backups");
    std::fs::create_dir_all(root.path().join("ecotrans-monitoring")).unwrap();
    let s3 = S3Server::start(root.path());
    let example = support::repo("examples/cost-exporter.toml");
    let mut env = S3_KEY.to_vec();
    env.extend([
        ("COST_EXPORTER_PROVIDERS__WASABI__ENDPOINT", s3.url.as_str()),
        ("COST_EXPORTER_NOW", "2026-12-07T03:14:00Z"),
        support::EXAMPLE_OFFLINE,
    ]);
    let (spent, forecast, stderr) = support::printed(&example, &env, "wasabi").await;
    assert_eq!(
        (spent.as_deref(), forecast.as_deref()),
        (Some("0.13"), Some("0.65")),
        "{stderr}"
    );
    // The example says which pricing applies, and why.
    let text = std::fs::read_to_string(&example).unwrap();
    assert!(
        text.contains("minimum_tb = 0  ") && text.contains("1, the default"),
        "{text}"
    );
}

/// The minimum is the month's, in the month it is used (UTC): 1 TB × the days of the month
/// at $6.99 ÷ 30 a TB-day, whatever the day of the run once two days of data are in; 100 GB
/// stored, well under it.
///
/// - the last second of December: 31 days, $7.2230 → **7.22**;
/// - a leap February on the 15th at 00:00 (14 days in): 29 days, $6.7570 → **6.76** (so far
///   14 days, $3.2620 → 3.26); a common one: 28 days, $6.5240 → **6.52**;
/// - midnight in Paris on 1 December (23:00 UTC on 30 November) is still November: 30
///   days, **6.99** (so far 29 days 23 hours, $6.9803 → 6.98).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_is_the_month_s_in_utc_months_of_their_own_length() {
    let root = tempfile::tempdir().unwrap();
    hundred_gb(root.path(), "archive");
    let s3 = S3Server::start(root.path());
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[providers.wasabi]\nendpoint = \"{}\"\nbuckets = [\"archive\"]\nminimum_tb = 1\n",
        s3.url
    ));
    for (now, spent, forecast) in [
        ("2026-12-31T23:59:59Z", "7.22", "7.22"),
        ("2028-02-15T00:00:00Z", "3.26", "6.76"),
        ("2027-02-15T00:00:00Z", "3.26", "6.52"),
        ("2026-12-01T00:00:00+01:00", "6.98", "6.99"),
    ] {
        let mut env = S3_KEY.to_vec();
        env.push(("COST_EXPORTER_NOW", now));
        let (s, f, stderr) = support::printed(cfg.path(), &env, "wasabi").await;
        assert_eq!(
            (s.as_deref(), f.as_deref()),
            (Some(spent), Some(forecast)),
            "{now}: {stderr}"
        );
    }
}
