//! The command line as a user meets it: `collect` output that promtool accepts, `check`
//! with redaction and sources, `--help`, global flags after the subcommand.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{self, Pushgateway};

fn example() -> String {
    support::repo("examples/cost-exporter.toml")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn collect_prints_exposition_that_promtool_accepts() {
    let promtool = support::require("promtool", "prometheus");
    let out = support::run(
        &["collect", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("cost_spend{currency=\"EUR\",name=\"bms-1\",provider=\"ovh\"} 62.5"),
        "{stdout}"
    );
    assert!(!stdout.contains("NaN") && !stdout.contains("Inf"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdout.as_bytes())
        .expect("write");
    let checked = child.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // Logs went to stderr, data to stdout.
    assert!(!stdout.contains("INFO"));
}

#[test]
fn push_dry_run_is_collect_and_global_flags_go_after_the_subcommand() {
    let out = support::run(
        &[
            "push",
            "--dry-run",
            "--only",
            "ionos",
            "--config",
            &example(),
        ],
        &[support::EXAMPLE_OFFLINE],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("provider=\"ionos\""));
    assert!(
        !stdout.contains("provider=\"ovh\""),
        "--only restricts: {stdout}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = support::run(
        &["--log-format", "json", "collect", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn help_teaches_commands_and_exit_codes() {
    let out = support::run(&["--help"], &[]);
    let (stdout, _) = support::text(&out);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        "push",
        "collect",
        "report",
        "check",
        "--config",
        "--only",
        "--log-format",
        "Exit codes",
        "  3  ",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle} missing from --help: {stdout}"
        );
    }
    let out = support::run(&["check", "--help"], &[]);
    let help = support::text(&out).0;
    assert!(
        help.contains("--probe") && help.contains("--settings"),
        "{help}"
    );
    let out = support::run(&["report", "--help"], &[]);
    let help = support::text(&out).0;
    assert!(
        help.contains("--output") && help.contains("json") && help.contains("NO_COLOR"),
        "{help}"
    );
    // A usage error is a configuration error.
    let out = support::run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_redacts_secrets_and_says_where_each_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("supabase-token");
    std::fs::write(&token_file, "sbp_from_a_file_0042\r\n").unwrap();
    let env = [
        // Numeric-looking secrets must work.
        ("VERCEL_API_TOKEN", "  918273645  "),
        ("SUPABASE_ACCESS_TOKEN_FILE", token_file.to_str().unwrap()),
        ("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst"),
        ("COST_EXPORTER_HTTP__TIMEOUT", "45s"),
    ];
    // The summary first: what each provider does, its budget, where its credentials come
    // from (named, never shown).
    let out = support::run(&["check", "--config", &example()], &env);
    let (summary, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{summary}{stderr}");
    assert!(!summary.contains("918273645") && !stderr.contains("918273645"));
    assert!(!summary.contains("sbp_from_a_file") && !stderr.contains("sbp_from_a_file"));
    assert!(
        summary.starts_with("config file: ") && summary.contains("examples/cost-exporter.toml"),
        "{summary}"
    );
    assert!(
        summary.contains("pushgateway: http://localhost:9091/")
            && summary.contains("`pushgateway.url` in"),
        "{summary}"
    );
    assert!(
        summary.contains("vercel      collected (API: vercel); budget 0\n")
            && summary.contains("credentials: token from environment variable VERCEL_API_TOKEN"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "credentials: token from file {} (from SUPABASE_ACCESS_TOKEN_FILE)",
            token_file.display()
        )),
        "{summary}"
    );
    assert!(
        summary.contains("anthropic   not configured (no credentials); budget 200\n"),
        "{summary}"
    );
    assert!(summary.contains("configuration is valid"), "{summary}");
    // No list of settings by default: the first screen is the summary.
    assert!(!summary.contains("http.timeout ="), "{summary}");
    assert!(summary.contains("check --settings lists all "), "{summary}");

    // --settings: every setting with where it came from, after the summary.
    let out = support::run(&["check", "--settings", "--config", &example()], &env);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with(&summary[..summary.find("configuration is valid").unwrap()]));
    assert!(!stdout.contains("918273645") && !stderr.contains("918273645"));
    assert!(!stdout.contains("sbp_from_a_file") && !stderr.contains("sbp_from_a_file"));
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key} not in check output: {stdout}"))
            .to_owned()
    };
    let vercel = line("providers.vercel.token");
    assert!(
        vercel.contains("***") && vercel.contains("VERCEL_API_TOKEN"),
        "{vercel}"
    );
    let supabase = line("providers.supabase.token");
    assert!(
        supabase.contains("***") && supabase.contains("SUPABASE_ACCESS_TOKEN_FILE"),
        "{supabase}"
    );
    let timeout = line("http.timeout");
    assert!(
        timeout.contains("45s") && timeout.contains("COST_EXPORTER_HTTP__TIMEOUT"),
        "{timeout}"
    );
    let currency = line("currency");
    assert!(
        currency.contains("EUR") && currency.contains("cost-exporter.toml"),
        "{currency}"
    );
    let retries = line("pushgateway.retries");
    assert!(retries.contains("built-in default"), "{retries}");
    assert!(stdout.contains("configuration is valid"));
}

#[test]
fn check_probe_reports_the_pushgateway() {
    let pg = Pushgateway::start();
    let out = support::run(
        &[
            "check",
            "--probe",
            "--config",
            &example(),
            "--pushgateway",
            &pg.url,
        ],
        &[],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("pushgateway") && stdout.contains("ok"),
        "{stdout}"
    );

    let down = format!("http://127.0.0.1:{}", support::free_port());
    let out = support::run(
        &[
            "check",
            "--probe",
            "--config",
            &example(),
            "--pushgateway",
            &down,
        ],
        &[("COST_EXPORTER_PUSHGATEWAY__RETRIES", "0")],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("pushgateway") && stdout.contains("FAILED"),
        "{stdout}"
    );
}

#[test]
fn cost_exporter_now_sets_the_run_s_clock() {
    let example = support::repo("examples/cost-exporter.toml");
    let path = example.to_str().unwrap();
    // The last second of a leap February: the report says so, and so does the run's time.
    let out = support::run(
        &["report", "--config", path],
        &[
            ("COST_EXPORTER_NOW", "2028-02-29T23:59:59Z"),
            support::EXAMPLE_OFFLINE,
        ],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("February 2028 so far (day 29 of 29)"),
        "{stdout}"
    );
    let out = support::run(
        &["collect", "--config", path],
        &[
            ("COST_EXPORTER_NOW", "2028-03-01T00:00:00+01:00"),
            support::EXAMPLE_OFFLINE,
        ],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the run's clock is set by COST_EXPORTER_NOW"),
        "{stderr}"
    );
    assert!(
        stdout.contains("cost_exporter_last_run_timestamp_seconds 18354780"),
        "{stdout}"
    );
    // Not a time: a configuration error naming the variable, before any request.
    let out = support::run(
        &["collect", "--config", path],
        &[("COST_EXPORTER_NOW", "yesterday")],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("COST_EXPORTER_NOW \"yesterday\""),
        "{stderr}"
    );
}
