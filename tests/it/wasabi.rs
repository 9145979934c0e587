//! Wasabi end to end: a real S3 server that verifies SigV4 (`s3s-fs`) holding what the test
//! wrote, across several listing pages and prefixes; the Stats API against a loopback mock with
//! the documented records; the real binary and a real Pushgateway.

use std::path::Path;

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, Pushgateway, S3Server};

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
    ];
    for (bucket, parts) in layout {
        let (mut bytes, mut objects) = (0.0, 0.0);
        for (prefix, count, size) in *parts {
            let dir = root.join(bucket).join(prefix);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..*count {
                // Sizes vary so that a wrong sum cannot pass by accident.
                let len = size + i % 13;
                std::fs::write(dir.join(format!("obj-{i:05}.bin")), vec![7u8; len]).unwrap();
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
         buckets = [\"ecotrans-backups\", \"ecotrans-monitoring\"]\nbudget = 15\n{extra}"
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
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations/bucket"))
        .and(query_param("pageNum", "0"))
        .and(header("authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "PageInfo": {"RecordCount": 3, "PageCount": 2, "PageSize": 100, "PageNum": 0},
            "Records": [record(Some("ecotrans-backups"), 1, 10485760, 20971520, 0), record(Some("ecotrans-backups"), 2, 11534336, 0, 0)]
        })))
        .expect(1)
        .mount(&stats)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations/bucket"))
        .and(query_param("pageNum", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "PageInfo": {"RecordCount": 0, "PageCount": 0, "PageSize": 100, "PageNum": 1},
            "Records": [record(Some("ecotrans-monitoring"), 2, 4096, 0, 0)]
        })))
        .expect(1)
        .mount(&stats)
        .await;
    // Account: the bare-array envelope; Wasabi's own daily minimum-charge top-up is reported
    // (and not used: the minimum is per billing cycle).
    let tb: u64 = 1 << 40;
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            record(None, 1, 10485760, 20971520, tb - 10485760 - 20971520 - 48),
            record(None, 2, tb / 2, 0, tb / 2 - 48)
        ])))
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
    assert!(!stderr.contains("sk-billing-secret-4242"), "{stderr}");
}
