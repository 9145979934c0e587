//! How `check` and `collect` scale with the size of the configuration: 1,000 to 10,000
//! `[[fixed]]` entries over 100 providers, the built binary timed end to end (parse, validate,
//! collect, render), and `check` of as many entries that all fail validation (each problem
//! reported with its origin). Prints the figures; asserts nothing (run with `cargo bench --bench
//! config_scale`).

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn config(entries: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    writeln!(f, "currency = \"EUR\"").expect("write");
    for i in 0..entries {
        writeln!(
            f,
            "[[fixed]]\nprovider = \"p{}\"\nname = \"entry-{i}\"\namount = 1.5\ncurrency = \"EUR\"",
            i % 100
        )
        .expect("write");
    }
    f
}

/// `entries` `[[fixed]]` entries that each fail validation (a negative amount, an unknown
/// currency): every one is reported with its origin.
fn failing(entries: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    for i in 0..entries {
        writeln!(
            f,
            "[[fixed]]\nprovider = \"p{}\"\nname = \"entry-{i}\"\namount = -1\ncurrency = \"XXX\"",
            i % 100
        )
        .expect("write");
    }
    f
}

fn time(args: &[&str]) -> f64 {
    time_exit(args, 0)
}

fn time_exit(args: &[&str], code: i32) -> f64 {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run cost-exporter");
    assert_eq!(status.code(), Some(code), "{args:?}: {status}");
    started.elapsed().as_secs_f64()
}

fn main() {
    println!(
        "{:>8} {:>10} {:>10} {:>18}",
        "entries", "check s", "collect s", "check failing s"
    );
    for n in [1_000, 2_000, 5_000, 10_000] {
        let cfg = config(n);
        let path = cfg.path().to_str().expect("UTF-8 path");
        let check = time(&["check", "--config", path]);
        let collect = time(&["collect", "--config", path]);
        let bad = failing(n);
        let bad = time_exit(
            &[
                "check",
                "--config",
                bad.path().to_str().expect("UTF-8 path"),
            ],
            2,
        );
        println!("{n:>8} {check:>10.3} {collect:>10.3} {bad:>18.3}");
    }
}
