//! Benchmark: list a bucket of 200,000 objects from a loopback S3 listing server with the
//! Wasabi collector (the real binary, `collect --only wasabi`) and with `rclone size` on the
//! same bucket in the same run; print objects/second and peak memory of each.
//!
//! Run: `cargo bench --bench wasabi_listing` (object count as an argument: `-- 50000`). Needs
//! `rclone` (Debian package) and GNU `time` (`/usr/bin/time`) for peak memory.
//!
//! The server is in this file: an in-memory ListObjectsV2 (and V1) with prefix, delimiter and
//! continuation tokens, 1000 keys a page. It does not check signatures (s3s-fs does, in the
//! tests, but walks the whole bucket for every page, about 4 s a page at this size).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const BUCKET: &str = "bench-bucket";

struct Bucket {
    keys: Vec<(String, u64)>,
}

impl Bucket {
    fn new(n: usize) -> Bucket {
        let dirs = 20;
        let mut keys: Vec<(String, u64)> = (0..n)
            .map(|i| {
                (
                    format!("d{:02}/o{:07}.dat", i % dirs, i),
                    1000 + (i as u64 * 7919) % 100_000,
                )
            })
            .collect();
        keys.sort();
        Bucket { keys }
    }

    /// One page: objects and common prefixes after `start_after`, under `prefix`.
    fn page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: &str,
        max: usize,
    ) -> (Vec<&(String, u64)>, Vec<String>, Option<String>) {
        let from = self
            .keys
            .partition_point(|(k, _)| k.as_str() <= start_after);
        let from = from.max(self.keys.partition_point(|(k, _)| k.as_str() < prefix));
        let mut contents = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut last = None;
        let mut i = from;
        while i < self.keys.len() && contents.len() + prefixes.len() < max {
            let (k, _) = &self.keys[i];
            if !k.starts_with(prefix) {
                break;
            }
            if let Some(d) = delimiter
                && let Some(pos) = k[prefix.len()..].find(d)
            {
                let cp = k[..prefix.len() + pos + d.len()].to_owned();
                // Skip every key under this common prefix.
                let end = self
                    .keys
                    .partition_point(|(k2, _)| k2.as_str() < cp.as_str() || k2.starts_with(&cp));
                last = Some(self.keys[end - 1].0.clone());
                prefixes.push(cp);
                i = end;
                continue;
            }
            contents.push(&self.keys[i]);
            last = Some(k.clone());
            i += 1;
        }
        let more = i < self.keys.len() && self.keys[i].0.starts_with(prefix);
        (contents, prefixes, if more { last } else { None })
    }
}

fn respond(bucket: &Bucket, req: &Request) -> ResponseTemplate {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    if req.method.as_str() == "HEAD" {
        return ResponseTemplate::new(200);
    }
    if q.contains_key("location") {
        return ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LocationConstraint>us-east-1</LocationConstraint>",
        );
    }
    if req.url.path().trim_matches('/') != BUCKET {
        return ResponseTemplate::new(404).set_body_string("<Error><Code>NoSuchKey</Code></Error>");
    }
    let v2 = q.get("list-type").map(String::as_str) == Some("2");
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").filter(|d| !d.is_empty()).cloned();
    let max = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let after = if v2 {
        q.get("continuation-token")
            .or(q.get("start-after"))
            .cloned()
            .unwrap_or_default()
    } else {
        q.get("marker").cloned().unwrap_or_default()
    };
    let (contents, prefixes, next) = bucket.page(&prefix, delimiter.as_deref(), &after, max);
    let mut xml = String::with_capacity(200 * contents.len() + 500);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    xml.push_str(&format!(
        "<Name>{BUCKET}</Name><Prefix>{prefix}</Prefix><MaxKeys>{max}</MaxKeys>"
    ));
    if let Some(d) = &delimiter {
        xml.push_str(&format!("<Delimiter>{d}</Delimiter>"));
    }
    if v2 {
        xml.push_str(&format!(
            "<KeyCount>{}</KeyCount>",
            contents.len() + prefixes.len()
        ));
    }
    xml.push_str(&format!("<IsTruncated>{}</IsTruncated>", next.is_some()));
    if let Some(n) = &next {
        if v2 {
            xml.push_str(&format!(
                "<NextContinuationToken>{n}</NextContinuationToken>"
            ));
        } else {
            xml.push_str(&format!("<NextMarker>{n}</NextMarker>"));
        }
    }
    for (k, size) in contents {
        xml.push_str(&format!(
            "<Contents><Key>{k}</Key><LastModified>2026-11-01T00:00:00.000Z</LastModified><ETag>\"0123456789abcdef0123456789abcdef\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        ));
    }
    for p in prefixes {
        xml.push_str(&format!(
            "<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>"
        ));
    }
    xml.push_str("</ListBucketResult>");
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/xml")
        .set_body_string(xml)
}

/// Runs `cmd` under GNU time; returns (seconds, peak RSS in MiB, stdout).
fn timed(cmd: &mut Command) -> (f64, f64, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("time");
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut t = Command::new("/usr/bin/time");
    // The AWS SDK inside rclone refuses AWS_CA_BUNDLE with its own transport; nothing here
    // uses TLS.
    t.env_remove("AWS_CA_BUNDLE");
    t.arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&out_file)
        .arg(program)
        .args(args);
    for (k, v) in envs {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    let started = Instant::now();
    let out = t
        .output()
        .expect("run under /usr/bin/time (Debian package `time`)");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let measured = std::fs::read_to_string(&out_file).unwrap();
    let mut parts = measured.split_whitespace();
    let _secs: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(wall);
    let kib: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (
        wall,
        kib / 1024.0,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let rclone = which("rclone").expect("rclone is not installed: sudo apt-get install -y rclone");
    let bucket = Arc::new(Bucket::new(n));
    let total_bytes: u64 = bucket.keys.iter().map(|(_, s)| s).sum();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let b = Arc::clone(&bucket);
        Mock::given(any())
            .respond_with(move |req: &Request| respond(&b, req))
            .mount(&server)
            .await;
        server
    });
    let uri = server.uri();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!("currency = \"USD\"\n[providers.wasabi]\nendpoint = \"{uri}\"\nregion = \"us-east-1\"\nbuckets = [\"{BUCKET}\"]\n"),
    )
    .unwrap();
    println!(
        "bucket: {n} objects, {total_bytes} bytes, 20 top-level prefixes, 1000 keys a page, loopback server"
    );

    let exe = env!("CARGO_BIN_EXE_cost-exporter");
    let (secs, mib, out) = timed(
        Command::new(exe)
            .args(["collect", "--only", "wasabi", "--config"])
            .arg(&config)
            .env("WASABI_ACCESS_KEY", "bench")
            .env("WASABI_SECRET_KEY", "bench-secret")
            .env("RUST_LOG", "warn"),
    );
    let objects = out
        .lines()
        .find(|l| l.starts_with("cost_usage{") && l.contains("resource=\"objects\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("objects in the output");
    let bytes = out
        .lines()
        .find(|l| l.starts_with("cost_usage{") && l.contains("resource=\"storage\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("bytes in the output");
    assert_eq!(objects as usize, n, "cost-exporter counted every object");
    assert_eq!(bytes as u64, total_bytes, "cost-exporter summed every byte");
    println!(
        "  cost-exporter collect   {secs:6.2} s  {:9.0} objects/s  peak {mib:6.1} MiB",
        n as f64 / secs
    );

    let (secs, mib, out) = timed(
        Command::new(rclone)
            .args(["size", "--json", &format!(":s3:{BUCKET}")])
            .args([
                "--s3-provider",
                "Other",
                "--s3-endpoint",
                &uri,
                "--s3-force-path-style=true",
            ])
            .args([
                "--s3-access-key-id",
                "bench",
                "--s3-secret-access-key",
                "bench-secret",
            ])
            .args([
                "--s3-list-version",
                "2",
                "--s3-list-chunk",
                "1000",
                "--config",
                "/dev/null",
            ]),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("rclone size --json");
    assert_eq!(
        v["count"].as_u64(),
        Some(n as u64),
        "rclone counted every object: {out}"
    );
    assert_eq!(
        v["bytes"].as_u64(),
        Some(total_bytes),
        "rclone summed every byte: {out}"
    );
    println!(
        "  rclone size             {secs:6.2} s  {:9.0} objects/s  peak {mib:6.1} MiB",
        n as f64 / secs
    );
    drop(server);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
