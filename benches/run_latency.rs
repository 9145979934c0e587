//! The whole run behind realistic latency: loopback mocks that wait 50 ms before every answer,
//! shaped like the slow cases seen in the field — a Wasabi bucket of 200,000 objects under a
//! single top-level prefix (`daily/0000/` … `daily/0199/`), a month of Anthropic usage and cost
//! reports at one day per page, and a 200 MB (uncompressed) month of Vercel charges sent
//! gzipped — and the built binary running `collect`, each provider alone and then all
//! together. Prints requests, wall time, the sequential path each API imposes, and peak memory.
//!
//! Run: `cargo bench --bench run_latency` (objects and MB as arguments: `-- 200000 200`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 8;

/// ListObjectsV2 over keys `daily/NNNN/obj-MMMMM` (prefix, `/` delimiter, 1000 keys a page,
/// continuation tokens), generated on the fly.
struct Bucket {
    prefixes: usize,
    per: usize,
    requests: Arc<AtomicUsize>,
}

impl Respond for Bucket {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let prefix = q.get("prefix").cloned().unwrap_or_default();
        let delimited = q.contains_key("delimiter");
        let token: usize = q
            .get("continuation-token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let mut body = String::from("<ListBucketResult>");
        let mut truncated = None;
        if prefix.is_empty() && delimited {
            body.push_str("<CommonPrefixes><Prefix>daily/</Prefix></CommonPrefixes>");
        } else if prefix == "daily/" && delimited {
            for d in 0..self.prefixes {
                body.push_str(&format!(
                    "<CommonPrefixes><Prefix>daily/{d:04}/</Prefix></CommonPrefixes>"
                ));
            }
        } else if prefix.starts_with("daily/") && !delimited {
            let end = (token + 1000).min(self.per);
            for i in token..end {
                body.push_str(&format!(
                    "<Contents><Key>{prefix}obj-{i:05}</Key><Size>{}</Size></Contents>",
                    1000 + i % 7
                ));
            }
            if end < self.per {
                truncated = Some(end);
            }
        } else if prefix.is_empty() {
            // A listing without discovery (the old way on a flat range): everything in order.
            let total = self.prefixes * self.per;
            let end = (token + 1000).min(total);
            for n in token..end {
                let (d, i) = (n / self.per, n % self.per);
                body.push_str(&format!(
                    "<Contents><Key>daily/{d:04}/obj-{i:05}</Key><Size>{}</Size></Contents>",
                    1000 + i % 7
                ));
            }
            if end < total {
                truncated = Some(end);
            }
        }
        match truncated {
            Some(next) => body.push_str(&format!(
                "<IsTruncated>true</IsTruncated><NextContinuationToken>{next}</NextContinuationToken>"
            )),
            None => body.push_str("<IsTruncated>false</IsTruncated>"),
        }
        body.push_str("</ListBucketResult>");
        ResponseTemplate::new(200)
            .set_delay(LATENCY)
            .set_body_string(body)
    }
}

/// An Anthropic report at one day per page, `days` pages.
struct Report {
    days: usize,
    cost: bool,
    requests: Arc<AtomicUsize>,
}

impl Respond for Report {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let day: usize = q
            .get("page")
            .and_then(|p| p.strip_prefix("day"))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let start = format!("2026-11-{:02}T00:00:00Z", day + 1);
        let end = format!("2026-11-{:02}T00:00:00Z", day + 2);
        let results = if self.cost {
            serde_json::json!([{"amount": "1234.5", "currency": "USD", "model": "claude-sonnet-4-5", "workspace_id": "w"}])
        } else {
            serde_json::json!([{"model": "claude-sonnet-4-5", "uncached_input_tokens": 1000, "output_tokens": 100}])
        };
        let more = day + 1 < self.days;
        ResponseTemplate::new(200)
            .set_delay(LATENCY)
            .set_body_json(serde_json::json!({
                "data": [{"starting_at": start, "ending_at": end, "results": results}],
                "has_more": more,
                "next_page": if more { Some(format!("day{}", day + 1)) } else { None },
            }))
    }
}

/// A month of FOCUS charges, `mb` MB uncompressed, gzipped.
fn charges(mb: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut written = 0u64;
    let mut n = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while written < mb * 1_000_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let line = format!(
            "{{\"BilledCost\":{}.{:06},\"BillingCurrency\":\"USD\",\"ChargeCategory\":\"Usage\",\"ChargePeriodStart\":\"2026-11-{:02}T07:00:00.000Z\",\"ChargePeriodEnd\":\"2026-11-{:02}T07:00:00.000Z\",\"ConsumedQuantity\":{},\"ConsumedUnit\":\"Invocations\",\"EffectiveCost\":0.5,\"RegionId\":\"iad1\",\"ServiceName\":\"Function Invocations\",\"ServiceProviderName\":\"Vercel\",\"Tags\":{{\"ProjectId\":\"prj_{:016x}\",\"ProjectName\":\"project-{}\"}}}}\n",
            seed % 7,
            seed % 1_000_000,
            1 + n % 27,
            2 + n % 27,
            seed % 100_000,
            seed,
            seed % 500
        );
        gz.write_all(line.as_bytes()).expect("gzip");
        written += line.len() as u64;
        n += 1;
    }
    gz.finish().expect("gzip")
}

/// Runs `collect` (`--only` when given), polling its peak memory: (wall s, peak MiB, ok).
fn run(config: &std::path::Path, only: Option<&str>) -> (f64, f64, bool) {
    let mut args = vec!["collect", "--config", config.to_str().expect("path")];
    if let Some(o) = only {
        args.extend(["--only", o]);
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(&args)
        .env("ANTHROPIC_ADMIN_KEY", "sk-ant-admin01-bench")
        .env("VERCEL_API_TOKEN", "bench")
        .env("WASABI_ACCESS_KEY", "AKBENCH")
        .env("WASABI_SECRET_KEY", "bench-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run cost-exporter");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(v) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(v);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (
                started.elapsed().as_secs_f64(),
                peak_kib as f64 / 1024.0,
                status.code() == Some(0),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let objects = args.first().copied().unwrap_or(200_000) as usize;
    let mb = args.get(1).copied().unwrap_or(200);
    let prefixes = 200;
    let per = objects / prefixes;
    let days = 29;
    eprintln!("preparing {mb} MB of charges…");
    let body = charges(mb);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (server, s3, anthropic, vercel) = rt.block_on(async {
        let server = MockServer::start().await;
        let s3 = Arc::new(AtomicUsize::new(0));
        let anthropic = Arc::new(AtomicUsize::new(0));
        let vercel = Arc::new(AtomicUsize::new(0));
        Mock::given(method("GET"))
            .and(path_regex("^/archive"))
            .respond_with(Bucket {
                prefixes,
                per,
                requests: Arc::clone(&s3),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/organizations/usage_report/messages"))
            .respond_with(Report {
                days,
                cost: false,
                requests: Arc::clone(&anthropic),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/organizations/cost_report"))
            .respond_with(Report {
                days,
                cost: true,
                requests: Arc::clone(&anthropic),
            })
            .mount(&server)
            .await;
        let v = Arc::clone(&vercel);
        Mock::given(method("GET"))
            .and(path("/v1/billing/charges"))
            .respond_with(move |_: &Request| {
                v.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(200)
                    .set_delay(LATENCY)
                    .insert_header("content-encoding", "gzip")
                    .insert_header("content-type", "application/jsonl")
                    .set_body_bytes(body.clone())
            })
            .mount(&server)
            .await;
        (server, s3, anthropic, vercel)
    });
    let mut cfg = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    write!(
        cfg,
        "currency = \"USD\"\n[http]\nretries = 0\n\
         [providers.wasabi]\nendpoint = \"{u}\"\nbuckets = [\"archive\"]\nconcurrency = {CONCURRENCY}\n\
         [providers.anthropic]\nbase_url = \"{u}\"\n\
         [providers.vercel]\nbase_url = \"{u}\"\nsource = \"charges\"\n",
        u = server.uri()
    )
    .expect("config");
    let ms = LATENCY.as_secs_f64();
    // The sequential path each API imposes, at 50 ms a request: Wasabi, the two discovery
    // levels then each range's pages, `concurrency` ranges at once; Anthropic, one report's
    // cursor chain (the other runs alongside); Vercel, one request (then CPU).
    let wasabi_path = (2 + prefixes.div_ceil(CONCURRENCY) * per.div_ceil(1000)) as f64 * ms;
    let anthropic_path = days as f64 * ms;
    let vercel_path = ms;
    println!(
        "latency {} ms per request; {objects} objects, {days} report days, {mb} MB of charges",
        LATENCY.as_millis()
    );
    println!(
        "{:<10} {:>9} {:>9} {:>15} {:>10}",
        "provider", "requests", "wall s", "API path s", "peak MiB"
    );
    let mut slowest_path: f64 = 0.0;
    for (name, counter, api_path) in [
        ("wasabi", &s3, wasabi_path),
        ("anthropic", &anthropic, anthropic_path),
        ("vercel", &vercel, vercel_path),
    ] {
        counter.store(0, Ordering::SeqCst);
        let (wall, peak, ok) = run(cfg.path(), Some(name));
        assert!(ok, "{name} failed");
        slowest_path = slowest_path.max(wall.max(api_path));
        println!(
            "{name:<10} {:>9} {wall:>9.2} {api_path:>15.2} {peak:>10.1}",
            counter.load(Ordering::SeqCst)
        );
    }
    for c in [&s3, &anthropic, &vercel] {
        c.store(0, Ordering::SeqCst);
    }
    let (wall, peak, ok) = run(cfg.path(), None);
    assert!(ok, "the whole run failed");
    println!(
        "{:<10} {:>9} {wall:>9.2} {:>15} {peak:>10.1}",
        "all",
        s3.load(Ordering::SeqCst)
            + anthropic.load(Ordering::SeqCst)
            + vercel.load(Ordering::SeqCst),
        "-"
    );
    println!(
        "whole run / slowest provider alone: {:.2}×",
        wall / slowest_path
    );
    drop(rt);
}
