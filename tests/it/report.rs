//! `report` as a person and a script meet it: the table and the JSON of the example
//! configuration and of a run with a provider failed, one over its budget and one near a
//! limit, against golden files (`tests/fixtures/report/`, reviewed by eye); the JSON against
//! its published schema (`docs/report.schema.json`); colour under a pseudo-terminal and plain
//! text without one; the progress line on a terminal's stderr and nowhere else.
//!
//! The golden files hold what does not depend on the day: the figures come from `[[fixed]]`
//! entries and a subscription mock, whose forecasts are known amounts (never extrapolated
//! from the day of the month). What does depend on the day (the title's month and day, dates,
//! timestamps, loopback ports) is replaced by placeholders before comparing, and checked apart
//! against the dates the test computes. `UPDATE_GOLDEN=1 cargo test report::` rewrites the
//! files; review the diff.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, Counter};

fn example() -> String {
    support::repo("examples/cost-exporter.toml")
        .to_string_lossy()
        .into_owned()
}

/// What depends on the day or the machine, replaced by placeholders.
fn normalise(text: &str) -> String {
    let rules = [
        (
            r"(?m)^[A-Z][a-z]+ \d{4} so far \(day \d+ of \d+\)",
            "MONTH YYYY so far (day D of N)",
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z",
            "YYYY-MM-DDThh:mm:ssZ",
        ),
        (r"\b\d{4}-\d{2}-\d{2}\b", "YYYY-MM-DD"),
        (r#""month": "\d{4}-\d{2}""#, r#""month": "YYYY-MM""#),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        // A cut that a port's digits moved: the word cut goes.
        (r"(?m)\S*…$", "…"),
    ];
    let mut text = text.to_owned();
    for (pattern, with) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

/// Compares `actual` (normalised) with `tests/fixtures/report/<name>`, or writes it there
/// with `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = support::fixture(&format!("report/{name}"));
    let actual = normalise(actual);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n--- expected\n{expected}\n--- actual\n{actual}\n(UPDATE_GOLDEN=1 rewrites it; review the diff)",
            path.display(),
            first + 1
        );
    }
}

// ---- A validator for the schema's keywords ------------------------------------------------

/// Annotations: they constrain nothing.
const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description", "$defs"];

/// Checks `value` against `schema` (the subset of JSON Schema 2020-12 the published schema
/// uses); a keyword this validator does not know fails the test rather than pass unchecked.
fn validate(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        panic!("{at}: a schema must be an object");
    };
    for (k, rule) in obj {
        match k.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("{at}: only local $defs references: {rule}"));
                validate(root, &root["$defs"][name], value, at, errors);
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => panic!("{at}: type {rule}"),
                };
                let ok = types.iter().any(|t| match *t {
                    "null" => value.is_null(),
                    "boolean" => value.is_boolean(),
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "number" => value.is_number(),
                    "integer" => value.is_u64() || value.is_i64(),
                    other => panic!("{at}: unknown type {other}"),
                });
                if !ok {
                    errors.push(format!("{at}: {value} is not {types:?}"));
                }
            }
            "const" => {
                if value != rule {
                    errors.push(format!("{at}: {value} is not {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str() {
                    let re = regex::Regex::new(rule.as_str().unwrap()).unwrap();
                    if !re.is_match(s) {
                        errors.push(format!("{at}: {s:?} does not match {rule}"));
                    }
                }
            }
            "minimum" => {
                if let Some(n) = value.as_f64()
                    && n < rule.as_f64().unwrap()
                {
                    errors.push(format!("{at}: {n} is under {rule}"));
                }
            }
            "required" => {
                if let Some(o) = value.as_object() {
                    for key in rule.as_array().unwrap() {
                        let key = key.as_str().unwrap();
                        if !o.contains_key(key) {
                            errors.push(format!("{at}: `{key}` is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(o) = value.as_object() {
                    for (key, sub) in rule.as_object().unwrap() {
                        if let Some(v) = o.get(key) {
                            validate(root, sub, v, &format!("{at}.{key}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                assert_eq!(rule, &Value::Bool(false), "{at}: additionalProperties");
                if let Some(o) = value.as_object() {
                    let known = obj["properties"].as_object().unwrap();
                    for key in o.keys() {
                        if !known.contains_key(key) {
                            errors.push(format!("{at}: `{key}` is not in the schema"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        validate(root, rule, v, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            other => panic!("{at}: the validator does not know `{other}`: teach it"),
        }
    }
}

fn schema() -> Value {
    let text = std::fs::read_to_string(support::repo("docs/report.schema.json")).unwrap();
    serde_json::from_str(&text).expect("docs/report.schema.json is JSON")
}

/// Fails with every violation of the published schema.
fn assert_follows_the_schema(doc: &Value) {
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, doc, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "the JSON breaks docs/report.schema.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

#[test]
fn the_validator_catches_what_the_schema_forbids() {
    // The check is only worth something if it fails: a document off the schema in each way
    // the schema describes.
    let out = support::run(
        &["report", "-o", "json", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    let good: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_follows_the_schema(&good);
    let schema = schema();
    type Break = Box<dyn Fn(&mut Value)>;
    let breaks: Vec<(&str, Break)> = vec![
        ("version", Box::new(|d| d["schema_version"] = 2.into())),
        (
            "money as a number",
            Box::new(|d| d["total"]["forecast"] = 469.into()),
        ),
        (
            "money without cents",
            Box::new(|d| d["providers"][0]["forecast"] = "250".into()),
        ),
        (
            "unknown status",
            Box::new(|d| d["providers"][0]["status"] = "up".into()),
        ),
        (
            "a key missing",
            Box::new(|d| {
                d["providers"][0].as_object_mut().unwrap().remove("budget");
            }),
        ),
        (
            "an extra key",
            Box::new(|d| d["total"]["extra"] = true.into()),
        ),
        (
            "a bad date",
            Box::new(|d| d["generated_at"] = "yesterday".into()),
        ),
        (
            "a negative share",
            Box::new(|d| d["providers"][0]["forecast_share_of_budget"] = (-1.0).into()),
        ),
    ];
    for (what, change) in breaks {
        let mut doc = good.clone();
        change(&mut doc);
        let mut errors = Vec::new();
        validate(&schema, &schema, &doc, "$", &mut errors);
        assert!(!errors.is_empty(), "{what}: not caught");
    }
}

// ---- Golden files -----------------------------------------------------------------------

#[test]
fn the_example_s_month_as_a_table_and_as_json() {
    let out = support::run(
        &["report", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    let (table, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !table.contains('\x1b'),
        "piped output is plain text: {table:?}"
    );
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    // Warnings only by default: the table says what the info lines would.
    assert!(!stderr.contains("INFO"), "{stderr}");
    golden("example.txt", &table);

    let out = support::run(
        &["report", "--output", "json", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    let (json, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_follows_the_schema(&doc);
    golden("example.json", &json);

    // The same figures in both, and they add up.
    let providers = doc["providers"].as_array().unwrap();
    let mut sum = 0.0;
    for p in providers.iter().filter(|p| p["status"] == "ok") {
        let name = p["provider"].as_str().unwrap();
        let forecast = p["forecast"].as_str().unwrap();
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} has no row: {table}"));
        assert!(row.contains(forecast), "{row} lacks {forecast}");
        sum += forecast.parse::<f64>().unwrap();
    }
    let total: f64 = doc["total"]["forecast"].as_str().unwrap().parse().unwrap();
    assert!((sum - total).abs() < 1e-9, "{sum} vs {total}");
    // Unknown is null, never 0.
    let off = providers
        .iter()
        .find(|p| p["provider"] == "wasabi")
        .unwrap();
    assert_eq!(off["status"], "not_configured");
    assert!(
        off["forecast"].is_null() && off["month_to_date"].is_null(),
        "{off}"
    );
}

/// A run with a provider failed (its API answers 500), one over its budget (a `[[fixed]]`
/// server of 120 against a budget of 100), one near a limit (81,000 characters of 100,000,
/// renewing later this month, so its invoice is due this month), one small, and one not
/// configured.
async fn troubled() -> (MockServer, Counter, tempfile::NamedTempFile, i64) {
    let now = time::OffsetDateTime::now_utc();
    let end = crate::ovh::month_end(support::month_start());
    let renews = (now + (end - now) / 2_i32).unix_timestamp();
    let subscription = crate::elevenlabs::mock(renews).await;
    let failing = Counter::start(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 35\r\nConnection: close\r\n\r\n{\"message\":\"Internal server error\"}",
    ));
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[http]\nretries = 0\n\
         [providers.elevenlabs]\nbase_url = \"{}\"\nbudget = 30\n\
         [providers.hostinger]\nbase_url = \"{}\"\nbudget = 10\n\
         [providers.wasabi]\nbudget = 15\n\
         [providers.hosting]\nbudget = 100\n\
         [[fixed]]\nprovider = \"hosting\"\nname = \"server\"\namount = 120\ncurrency = \"EUR\"\n\
         [[fixed]]\nprovider = \"domains\"\nname = \"example.org\"\namount = 1.5\ncurrency = \"EUR\"\n",
        subscription.uri(),
        failing.url
    ));
    (subscription, failing, cfg, renews)
}

const TROUBLED_ENV: &[(&str, &str)] = &[
    ("ELEVENLABS_API_KEY", crate::elevenlabs::KEY),
    ("HOSTINGER_API_TOKEN", "hostinger-report-token"),
];

#[tokio::test]
async fn a_month_with_a_failure_a_budget_passed_and_a_limit_near() {
    let before = time::OffsetDateTime::now_utc().date();
    let (_subscription, failing, cfg, renews) = troubled().await;
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(&["report", "--config", &path], TROUBLED_ENV).await;
    let (table, stderr) = support::text(&out);
    // Exit codes as collect: printed, but a provider failed.
    assert_eq!(out.status.code(), Some(3), "{table}{stderr}");
    assert!(failing.connections() > 0);
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    assert!(
        !table.contains("hostinger-report-token") && !stderr.contains("hostinger-report-token")
    );
    golden("troubled.txt", &table);

    let out = support::run_async(&["report", "-o", "json", "--config", &path], TROUBLED_ENV).await;
    let (json, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let doc: Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_follows_the_schema(&doc);
    golden("troubled.json", &json);

    // What the placeholders hide, checked against the dates computed here.
    let by: BTreeMap<&str, &Value> = doc["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["provider"].as_str().unwrap(), p))
        .collect();
    let renewal = time::OffsetDateTime::from_unix_timestamp(renews)
        .unwrap()
        .date();
    assert_eq!(
        by["elevenlabs"]["next_renewal"]["date"],
        renewal.to_string(),
        "{json}"
    );
    assert!(table.contains(&format!("{renewal} 21.34")), "{table}");
    // The run's day is the test's, whichever side of midnight the run fell.
    let after = time::OffsetDateTime::now_utc().date();
    let title = |d: time::Date| format!("{} {} so far (day {} of ", d.month(), d.year(), d.day());
    let month = |d: time::Date| format!("{:04}-{:02}", d.year(), u8::from(d.month()));
    assert!(
        [before, after]
            .iter()
            .any(|d| table.starts_with(&title(*d))),
        "{table}"
    );
    assert!(
        [before, after]
            .iter()
            .any(|d| doc["month"] == month(*d).as_str()),
        "{json}"
    );
    assert_eq!(by["hostinger"]["status"], "failed");
    assert_eq!(by["hostinger"]["errors"][0]["reason"], "http_5xx");
    assert_eq!(by["hosting"]["over_budget"], true);
    assert_eq!(by["elevenlabs"]["closest_to_limit"]["share"], 0.81);
    assert_eq!(doc["total"]["providers_failed"], 1);
}

// ---- The terminal -----------------------------------------------------------------------

/// Runs the binary under a pseudo-terminal (util-linux `script`), with `env` only: stdout and
/// stderr both go to the terminal, and come back together.
fn under_terminal(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let script = support::require("script", "util-linux");
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let mut line = quote(env!("CARGO_BIN_EXE_cost-exporter"));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(script);
    cmd.args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run script");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The binary with stdout and stderr piped and NO_COLOR unset: not a terminal.
fn piped(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cost-exporter"));
    cmd.args(args)
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cost-exporter")
}

#[test]
fn colour_on_a_terminal_plain_text_when_piped_or_with_no_color() {
    let args = ["report", "--config", &example()];
    let (code, screen) = under_terminal(&args, &[support::EXAMPLE_OFFLINE]);
    assert_eq!(code, Some(0), "{screen}");
    // Bold headers, the providers near their budget in yellow, the unconfigured dimmed.
    assert!(screen.contains("\x1b[1mPROVIDER\x1b[0m"), "{screen:?}");
    assert!(screen.contains("\x1b[33m96%\x1b[0m"), "{screen:?}");
    assert!(
        screen.contains("\x1b[2mnot configured: no credentials\x1b[0m"),
        "{screen:?}"
    );

    // NO_COLOR on the same terminal: the same table, plain.
    let (code, plain) = under_terminal(&args, &[("NO_COLOR", "1"), support::EXAMPLE_OFFLINE]);
    assert_eq!(code, Some(0), "{plain}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("PROVIDER  "), "{plain}");

    // Piped, without NO_COLOR: plain.
    let out = piped(&args, &[support::EXAMPLE_OFFLINE]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stdout:?}"
    );
    // The terminal's table is the piped one with escapes (and the terminal's line ends).
    let stripped = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&screen, "")
        .replace("\r\n", "\n");
    assert_eq!(stripped, stdout);
}

#[tokio::test]
async fn slow_work_shows_progress_on_a_terminal_and_nowhere_else() {
    // A provider that takes 2.5 s to fail: the line shows after a second.
    let slow = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_millis(2500)))
        .mount(&slow)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[http]\nretries = 0\n[providers.hostinger]\nbase_url = \"{}\"\n\
         [[fixed]]\nprovider = \"hosting\"\nname = \"server\"\namount = 5\ncurrency = \"EUR\"\n",
        slow.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let env = [("HOSTINGER_API_TOKEN", "hostinger-progress-token")];
    let on_terminal = path.clone();
    let (code, screen) = tokio::task::spawn_blocking(move || {
        under_terminal(&["report", "--config", on_terminal.as_str()], &env)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(3), "{screen}");
    assert!(
        screen.contains("collecting: 1/2 providers · 1 request · ")
            && screen.contains("waiting for hostinger"),
        "{screen:?}"
    );
    // Redrawn in place, and cleared before the table.
    let last = screen.rfind("collecting: ").unwrap();
    let table = screen.find(" so far (day ").unwrap();
    assert!(last < table, "{screen:?}");
    assert!(screen[last..table].contains("\r\x1b[K"), "{screen:?}");

    // Piped: no progress on stderr, and the JSON logs are only logs.
    let out = tokio::task::spawn_blocking(move || {
        piped(
            &["--log-format", "json", "report", "--config", path.as_str()],
            &env,
        )
    })
    .await
    .unwrap();
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        !stderr.contains("collecting") && !stderr.contains('\r'),
        "{stderr}"
    );
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not a log line: {line}"));
    }
    assert!(
        stdout.contains("hostinger  failed: timeout")
            || stdout.contains("hostinger  failed: http_5xx"),
        "{stdout}"
    );
}

#[test]
fn backfill_shows_months_and_providers_done_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("history.om");
    let output = output.to_str().unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let from = format!("{:04}-01", today.year() - 1);
    let args = [
        "backfill",
        "--config",
        &example(),
        "--from",
        &from,
        "--output",
        output,
    ];
    let (code, screen) = under_terminal(&args, &[support::EXAMPLE_OFFLINE]);
    assert_eq!(code, Some(0), "{screen}");
    let progress =
        regex::Regex::new(r"backfilling: \d+/\d+ months · \d+/7 providers · 0 requests · \d+\.\ds")
            .unwrap();
    assert!(progress.is_match(&screen), "{screen:?}");
    // Cleared at the end: the last thing on the screen is not the line.
    let last = screen.rfind("backfilling: ").unwrap();
    assert!(screen[last..].contains("\r\x1b[K"), "{screen:?}");
    assert!(Path::new(output).is_file());

    let out = piped(&args, &[support::EXAMPLE_OFFLINE]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("backfilling: ") && !stderr.contains('\r'),
        "{stderr}"
    );
}

// ---- The README -------------------------------------------------------------------------

/// The README's fenced blocks of `lang`, in order.
fn fenced(readme: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    readme
        .split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block.to_owned()))
        .collect()
}

#[test]
fn the_readme_shows_report_and_check_as_they_print() {
    let readme = std::fs::read_to_string(support::repo("README.md")).unwrap();
    let blocks = fenced(&readme, "text");
    let find = |needle: &str| {
        blocks
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no README block with {needle:?}"))
    };
    // The quick start ends with the example's table: the binary's, day and all aside.
    let out = support::run(
        &["report", "--config", &example()],
        &[support::EXAMPLE_OFFLINE],
    );
    assert_eq!(out.status.code(), Some(0));
    let example_block = find("wasabi      not configured: no credentials\ntotal");
    assert_eq!(
        normalise(example_block),
        normalise(&String::from_utf8_lossy(&out.stdout)),
        "README's table of the example configuration is not what `report` prints"
    );
    let quick_start = readme.split("## What this build collects").next().unwrap();
    assert!(
        quick_start
            .trim_end()
            .ends_with(&format!("{example_block}```")),
        "the quick start ends with the example's table"
    );
    // The run with troubles is the golden file's.
    let golden = std::fs::read_to_string(support::fixture("report/troubled.txt")).unwrap();
    assert_eq!(normalise(find("hostinger   failed: ")), golden);
    // Its JSON excerpt is a document of the schema.
    let json = fenced(&readme, "json")
        .into_iter()
        .find(|b| b.contains("\"schema_version\": 1"))
        .expect("README shows the JSON");
    assert_follows_the_schema(&serde_json::from_str(&json).expect("README's JSON parses"));
    // `check` as run from the repository.
    let out = Command::new(env!("CARGO_BIN_EXE_cost-exporter"))
        .args(["check", "--config", "examples/cost-exporter.toml"])
        .current_dir(support::repo(""))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        find("config file: examples/cost-exporter.toml"),
        &String::from_utf8_lossy(&out.stdout),
        "README's `check` output is not what `check` prints"
    );
}
