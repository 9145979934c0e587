//! Benchmark: parse a 200 MB FOCUS JSON Lines body with the Vercel collector's streaming
//! parser, fed in 64 KiB chunks as the network would, and print throughput and peak memory.
//!
//! Run: `cargo bench --bench vercel_charges` (size in MB as an argument: `-- 50`).
//! Peak memory is the process's VmHWM (Linux) before and after parsing: the body is read from
//! a temporary file, so the difference is what the parser itself held.
//!
//! Then end to end as the collector reads it: the same body gzipped, served on loopback with
//! `Content-Encoding: gzip`, fetched by reqwest as the job builds it (gzip on, inflated in a
//! stream by async-compression over flate2), and parsed chunk by chunk: throughput in MB/s of
//! uncompressed JSON Lines.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufWriter, Read, Write};
use std::time::{Instant, SystemTime};

use cost_exporter::providers::vercel::ChargesParser;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> std::io::Result<()> {
    let mb: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let target = mb * 1_000_000;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("charges.jsonl");
    let services = [
        ("Function Invocations", "Invocations"),
        ("Fast Data Transfer", "GB"),
        ("Edge Requests", "Requests"),
        ("Active CPU", "Hours"),
        ("Provisioned Memory", "GB-Hrs"),
        ("Image Optimization Transformations", "Transformations"),
    ];
    let mut written = 0u64;
    let mut records = 0u64;
    // A cheap generator, so that amounts, quantities, ids and regions vary as in a real
    // export (a body of repeated lines compresses 18×; real ones about 6 to 8×).
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let regions = [
        "iad1", "sfo1", "cdg1", "fra1", "hnd1", "syd1", "gru1", "bom1",
    ];
    {
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        while written < target {
            let (svc, unit) = services[(records % 6) as usize];
            let project = next() % 500;
            let day = 1 + records % 28;
            let region = regions[(next() % 8) as usize];
            let line = format!(
                "{{\"BilledCost\":{}.{:06},\"BillingCurrency\":\"USD\",\"ChargeCategory\":\"Usage\",\"ChargePeriodStart\":\"2026-11-{day:02}T07:00:00.000Z\",\"ChargePeriodEnd\":\"2026-11-{:02}T07:00:00.000Z\",\"ConsumedQuantity\":{}.{:04},\"ConsumedUnit\":\"{unit}\",\"EffectiveCost\":{}.{:06},\"RegionId\":\"{region}\",\"RegionName\":\"{region}\",\"ServiceName\":\"{svc}\",\"ServiceCategory\":\"Compute\",\"ServiceProviderName\":\"Vercel\",\"Tags\":{{\"ProjectId\":\"prj_{:016x}\",\"ProjectName\":\"project-{project}\"}},\"PricingCategory\":\"Standard\",\"PricingCurrency\":\"USD\",\"PricingQuantity\":0.{:06},\"PricingUnit\":\"MIUs\"}}\n",
                next() % 7,
                next() % 1_000_000,
                day + 1,
                next() % 100_000,
                next() % 10_000,
                next() % 7,
                next() % 1_000_000,
                project.wrapping_mul(0x9E37_79B9),
                next() % 1_000_000,
            );
            w.write_all(line.as_bytes())?;
            written += line.len() as u64;
            records += 1;
        }
        w.flush()?;
    }
    let before = vm_hwm_kib();
    let mut file = std::fs::File::open(&path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut parser = ChargesParser::default();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Err(e) = parser.feed(&buf[..n]) {
            eprintln!("parse error: {e}");
            std::process::exit(1);
        }
    }
    let totals = match parser.finish() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("parse error: {e}");
            std::process::exit(1);
        }
    };
    let parsed = totals.records;
    let c = totals
        .into_collection(10, SystemTime::now())
        .expect("the bench's charges add up");
    let secs = started.elapsed().as_secs_f64();
    let after = vm_hwm_kib();
    assert_eq!(parsed, records, "every record parsed");
    println!(
        "vercel charges parser: {records} records, {:.1} MB",
        written as f64 / 1e6
    );
    println!("  time        {secs:.2} s");
    println!(
        "  throughput  {:.1} MB/s, {:.0} records/s",
        written as f64 / 1e6 / secs,
        records as f64 / secs
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "  peak memory (VmHWM) {:.1} MiB before parsing, {:.1} MiB after: +{:.1} MiB",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            (a.saturating_sub(b)) as f64 / 1024.0
        );
    }
    println!(
        "  output      {} usage series, {} spend series",
        c.usage.len(),
        c.spend.len()
    );
    end_to_end(&path, written, records)
}

/// Inflate and parse over HTTP on loopback, as the collector does.
fn end_to_end(path: &std::path::Path, written: u64, records: u64) -> std::io::Result<()> {
    let raw = std::fs::read(path)?;
    let started = Instant::now();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw)?;
    let body = gz.finish()?;
    drop(raw);
    let gzip_secs = started.elapsed().as_secs_f64();
    // Inflate alone (the backend flate2 was built with), into a sink.
    let started = Instant::now();
    let mut dec = flate2::read::GzDecoder::new(&body[..]);
    let inflated = std::io::copy(&mut dec, &mut std::io::sink())?;
    let inflate_secs = started.elapsed().as_secs_f64();
    println!(
        "inflate alone: {:.1} MB/s of output ({} MB in {inflate_secs:.2} s)",
        inflated as f64 / 1e6 / inflate_secs,
        inflated / 1_000_000
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (secs, parsed) = rt.block_on(async move {
        let server = wiremock::MockServer::start().await;
        let size = body.len();
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(
                wiremock::ResponseTemplate::new(200)
                    .insert_header("content-encoding", "gzip")
                    .insert_header("content-type", "application/jsonl")
                    .set_body_bytes(body),
            )
            .mount(&server)
            .await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .gzip(true)
            .build()
            .expect("client");
        println!(
            "  gzip body   {:.1} MB on the wire ({:.1}× smaller)",
            size as f64 / 1e6,
            written as f64 / size as f64
        );
        let started = Instant::now();
        let resp = client.get(server.uri()).send().await.expect("GET");
        // The collector's own reading: the body on one task, the parser on another.
        let totals = cost_exporter::providers::vercel::read_charges(resp, "GET charges")
            .await
            .expect("read");
        (started.elapsed().as_secs_f64(), totals.records)
    });
    assert_eq!(parsed, records, "every record parsed over HTTP");
    println!("end to end (HTTP on loopback, gzip inflated in a stream, parsed):");
    println!(
        "  time        {secs:.2} s   ({:.1} MB/s of uncompressed JSON Lines; gzipping it took {gzip_secs:.1} s)",
        written as f64 / 1e6 / secs
    );
    Ok(())
}
