//! Benchmark: parse a 200 MB FOCUS JSON Lines body with the Vercel collector's streaming
//! parser, fed in 64 KiB chunks as the network would, and print throughput and peak memory.
//!
//! Run: `cargo bench --bench vercel_charges` (size in MB as an argument: `-- 50`).
//! Peak memory is the process's VmHWM (Linux) before and after parsing: the body is read from
//! a temporary file, so the difference is what the parser itself held.

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
    {
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        while written < target {
            let (svc, unit) = services[(records % 6) as usize];
            let project = records % 500;
            let day = 1 + records % 28;
            let line = format!(
                "{{\"BilledCost\":{}.{:02},\"BillingCurrency\":\"USD\",\"ChargeCategory\":\"Usage\",\"ChargePeriodStart\":\"2026-11-{day:02}T07:00:00.000Z\",\"ChargePeriodEnd\":\"2026-11-{:02}T07:00:00.000Z\",\"ConsumedQuantity\":{},\"ConsumedUnit\":\"{unit}\",\"EffectiveCost\":0.5,\"RegionId\":\"iad1\",\"RegionName\":\"Washington, D.C., USA\",\"ServiceName\":\"{svc}\",\"ServiceCategory\":\"Compute\",\"ServiceProviderName\":\"Vercel\",\"Tags\":{{\"ProjectId\":\"prj_{project}\",\"ProjectName\":\"project-{project}\"}},\"PricingCategory\":\"Standard\",\"PricingCurrency\":\"USD\",\"PricingQuantity\":0.075,\"PricingUnit\":\"MIUs\"}}\n",
                records % 7,
                records % 100,
                day + 1,
                records % 100_000,
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
    Ok(())
}
