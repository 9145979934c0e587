//! `backfill` end to end: two months of daily history from loopback mocks (Anthropic's cost and
//! usage reports, Vercel's FOCUS charges, a `[[fixed]]` entry with `since`), written as
//! OpenMetrics, turned into blocks by the real `promtool`, served by a real Prometheus; then
//! today's `push` through a real Pushgateway scraped by that Prometheus continues the lines.
//! The remote-write path goes to a real Prometheus with its receiver and an out-of-order
//! window. Every check compares with month-to-date sums computed here from the generated days.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{self, Prometheus, Pushgateway};

const KEY: &str = "sk-ant-admin01-backfill";
const TOKEN: &str = "vercel-backfill-token";

/// The generated days: from the 1st of the previous month to today (UTC).
fn span() -> (Date, Date) {
    let today = OffsetDateTime::now_utc().date();
    let this_month = today.replace_day(1).unwrap();
    let first = this_month.previous_day().unwrap().replace_day(1).unwrap();
    (first, today)
}

fn days(first: Date, last: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(first), move |d| d.next_day().filter(|n| *n <= last))
}

/// Anthropic's cost on `d`, in cents (a decimal string in the report), per workspace.
fn anthropic_cents(d: Date) -> [(Option<&'static str>, f64); 2] {
    let n = f64::from(d.ordinal() % 17);
    [(Some("wrkspc_a"), 1000.0 + 37.5 * n), (None, 250.25 + n)]
}

/// Vercel's billed cost on `d`, USD.
fn vercel_usd(d: Date) -> f64 {
    0.5 + f64::from(d.ordinal() % 7) * 0.125
}

/// Month-to-date sums at the end of `d`: (Anthropic USD, Vercel USD).
fn month_to_date(d: Date) -> (f64, f64) {
    let mut a = 0.0;
    let mut v = 0.0;
    for day in days(d.replace_day(1).unwrap(), d) {
        a += anthropic_cents(day).iter().map(|(_, c)| c).sum::<f64>() / 100.0;
        v += vercel_usd(day);
    }
    (a, v)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The days whose bucket starts in [from, to).
fn window(req: &Request, from: &str, to: &str) -> Vec<Date> {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let parse = |k: &str| {
        OffsetDateTime::parse(&q[k], &time::format_description::well_known::Rfc3339).unwrap()
    };
    let (start, end) = (parse(from), parse(to));
    let (first, last) = span();
    days(first, last)
        .filter(|d| {
            let t = d.midnight().assume_utc();
            t >= start && t < end
        })
        .collect()
}

async fn mount(mock: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1/organizations/cost_report"))
        .respond_with(|req: &Request| {
            let data: Vec<Value> = window(req, "starting_at", "ending_at")
                .into_iter()
                .map(|d| {
                    let start = d.midnight().assume_utc();
                    json!({
                        "starting_at": rfc3339(start),
                        "ending_at": rfc3339(start + time::Duration::DAY),
                        "results": anthropic_cents(d).iter().map(|(ws, cents)| json!({
                            "amount": format!("{cents}"), "currency": "USD",
                            "description": "Claude Sonnet 4.5 Usage - Input Tokens",
                            "model": "claude-sonnet-4-5", "workspace_id": ws,
                            "cost_type": "tokens", "token_type": "uncached_input_tokens"
                        })).collect::<Vec<_>>()
                    })
                })
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": data, "has_more": false, "next_page": null}))
        })
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .respond_with(|req: &Request| {
            let data: Vec<Value> = window(req, "starting_at", "ending_at")
                .into_iter()
                .map(|d| {
                    let start = d.midnight().assume_utc();
                    json!({
                        "starting_at": rfc3339(start),
                        "ending_at": rfc3339(start + time::Duration::DAY),
                        "results": [{"model": "claude-sonnet-4-5", "uncached_input_tokens": 1000 * d.day() as u64,
                                     "output_tokens": 10, "cache_read_input_tokens": 0,
                                     "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                                     "service_tier": "standard", "context_window": "0-200k"}]
                    })
                })
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": data, "has_more": false, "next_page": null}))
        })
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(|req: &Request| {
            let mut body = String::new();
            for d in window(req, "from", "to") {
                let start = d.midnight().assume_utc();
                body.push_str(
                    &json!({
                        "BilledCost": vercel_usd(d), "EffectiveCost": vercel_usd(d),
                        "BillingCurrency": "USD", "ChargeCategory": "Usage",
                        "ChargePeriodStart": rfc3339(start),
                        "ChargePeriodEnd": rfc3339(start + time::Duration::DAY),
                        "ConsumedQuantity": 1000, "ConsumedUnit": "Invocations",
                        "ServiceName": "Function Invocations",
                        "Tags": {"ProjectName": "web"}
                    })
                    .to_string(),
                );
                body.push('\n');
            }
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/jsonl")
                .set_body_string(body)
        })
        .mount(mock)
        .await;
}

fn config(pg: &str, mock: &str) -> tempfile::NamedTempFile {
    let (first, _) = span();
    let this_month = OffsetDateTime::now_utc().date();
    support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 0\n\
         [providers.anthropic]\nbase_url = \"{mock}\"\nbudget = 500\n\
         [providers.vercel]\nbase_url = \"{mock}\"\nsource = \"charges\"\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"plan\"\namount = 30\ncurrency = \"USD\"\nsince = \"{:04}-{:02}\"\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"new\"\namount = 5\ncurrency = \"USD\"\nsince = \"{:04}-{:02}\"\n",
        first.year(),
        u8::from(first.month()),
        this_month.year(),
        u8::from(this_month.month()),
    ))
}

const ENV: &[(&str, &str)] = &[("ANTHROPIC_ADMIN_KEY", KEY), ("VERCEL_API_TOKEN", TOKEN)];

/// `cost-exporter backfill --config <cfg> --from <the first month of span()> <extra>` with
/// `env`, off the runtime: exit code, stdout, stderr.
async fn backfill(
    cfg: &std::path::Path,
    extra: &[String],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let (first, _) = span();
    let mut args: Vec<String> = vec![
        "backfill".into(),
        "--config".into(),
        cfg.display().to_string(),
        "--from".into(),
        format!("{:04}-{:02}", first.year(), u8::from(first.month())),
    ];
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run_async(&args, env).await;
    let (o, e) = support::text(&out);
    (out.status.code(), o, e)
}

/// End of `d`, 23:59:59 UTC, Unix seconds.
fn end_of(d: Date) -> i64 {
    (d.midnight().assume_utc() + time::Duration::DAY).unix_timestamp() - 1
}

/// A range query's values, one per day from the first to yesterday, by series labels.
fn daily(prom: &Prometheus, expr: &str) -> Vec<(i64, f64)> {
    let (first, today) = span();
    let yesterday = today.previous_day().unwrap();
    let data = prom
        .query_range(expr, end_of(first), end_of(yesterday), 86_400)
        .unwrap();
    let result = data["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{expr}: one series: {data}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap() as i64,
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Every day of history is there, and equal to the month-to-date sums of the fixtures.
fn check_history(prom: &Prometheus) {
    let (first, today) = span();
    let yesterday = today.previous_day().unwrap();
    let expected: Vec<Date> = days(first, yesterday).collect();
    let anthropic = daily(
        prom,
        "sum(cost_spend{job=\"cost-exporter\",provider=\"anthropic\"})",
    );
    let vercel = daily(
        prom,
        "sum(cost_spend{job=\"cost-exporter\",provider=\"vercel\"})",
    );
    assert_eq!(anthropic.len(), expected.len(), "no day is missing");
    assert_eq!(vercel.len(), expected.len(), "no day is missing");
    for ((d, (ta, a)), (tv, v)) in expected.iter().zip(&anthropic).zip(&vercel) {
        let (want_a, want_v) = month_to_date(*d);
        assert_eq!((*ta, *tv), (end_of(*d), end_of(*d)));
        assert!((a - want_a).abs() < 1e-6, "{d}: anthropic {a} vs {want_a}");
        assert!((v - want_v).abs() < 1e-6, "{d}: vercel {v} vs {want_v}");
    }
    // The fixed entry counts from its `since`; the newer one only this month.
    let plan = daily(
        prom,
        "cost_spend{job=\"cost-exporter\",provider=\"acme\",name=\"plan\"}",
    );
    assert!(plan.iter().all(|(_, v)| *v == 30.0));
    assert_eq!(plan.len(), expected.len());
    let this_month = today.replace_day(1).unwrap();
    let newer = prom
        .query_range(
            "cost_spend{provider=\"acme\",name=\"new\"}",
            end_of(first),
            end_of(yesterday),
            86_400,
        )
        .unwrap();
    let points = newer["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        points.len(),
        days(this_month, yesterday).count(),
        "the newer entry starts with its month: {newer}"
    );
    // The budget, and what the forecast said on a day with at least 48 hours of data: the
    // month so far × seconds in the month ÷ seconds elapsed at 23:59:59.
    let budget = daily(prom, "cost_budget{provider=\"anthropic\"}");
    assert!(budget.iter().all(|(_, v)| *v == 500.0));
    let forecast = daily(prom, "cost_forecast{provider=\"anthropic\"}");
    for (d, (_, f)) in expected.iter().zip(&forecast) {
        let (mtd, _) = month_to_date(*d);
        let want = if d.day() >= 3 {
            let len = f64::from(d.month().length(d.year())) * 86_400.0;
            mtd * len / (f64::from(d.day()) * 86_400.0 - 1.0)
        } else {
            mtd
        };
        assert!((f - want).abs() < 1e-6, "{d}: forecast {f} vs {want}");
    }
}

fn promtool() -> std::path::PathBuf {
    support::require("promtool", "prometheus")
}

#[tokio::test]
async fn backfilled_blocks_and_todays_push_draw_one_line() {
    let mock = MockServer::start().await;
    mount(&mock).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &mock.uri());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.om");
    let (first, today) = span();
    let (code, _, stderr) = backfill(
        cfg.path(),
        &["--output".into(), file.display().to_string()],
        ENV,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(
        text.matches("# TYPE cost_spend gauge").count(),
        1,
        "each family once"
    );
    assert!(!text.contains(KEY) && !stderr.contains(KEY));
    assert!(
        !text.contains("cost_collector_"),
        "figures only, no run status"
    );

    // Blocks with the real promtool, then a real Prometheus on them.
    let data = dir.path().join("data");
    let out = Command::new(promtool())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pg_addr = pg.url.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start_with(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: [\"{pg_addr}\"]\n"
        ),
        Some(&data),
        &["--storage.tsdb.retention.time=10y"],
    );
    check_history(&prom);

    // Today's push, scraped: the same series continue, by today's amount.
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (want_today, _) = month_to_date(today);
    let expr = "sum(cost_spend{job=\"cost-exporter\",provider=\"anthropic\"})";
    let now = prom.wait_for(
        expr,
        |v| (v - want_today).abs() < 1e-6,
        Duration::from_secs(30),
    );
    assert!((now - want_today).abs() < 1e-6);
    // One series from the first backfilled day to now: the labels are the same.
    let range = prom
        .query_range(
            "cost_spend{provider=\"anthropic\",workspace=\"wrkspc_a\"}",
            end_of(first),
            OffsetDateTime::now_utc().unix_timestamp(),
            3600,
        )
        .unwrap();
    assert_eq!(
        range["result"].as_array().unwrap().len(),
        1,
        "backfilled and pushed samples are one series: {range}"
    );
    // No jump: today's value is yesterday's plus today's day (or today's alone on the 1st).
    let yesterday = today.previous_day().unwrap();
    let (at_yesterday, _) = month_to_date(yesterday);
    let todays_day = anthropic_cents(today).iter().map(|(_, c)| c).sum::<f64>() / 100.0;
    if today.day() > 1 {
        assert!((now - at_yesterday - todays_day).abs() < 1e-6);
    }
}

#[tokio::test]
async fn remote_write_loads_the_same_history() {
    let mock = MockServer::start().await;
    mount(&mock).await;
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start_with(
        "global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: 100d\n",
        Some(&dir.path().join("data")),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=10y",
        ],
    );
    let cfg = config("http://127.0.0.1:9", &mock.uri());
    let (code, stdout, stderr) = backfill(
        cfg.path(),
        &[
            "--remote-write".into(),
            format!("{}/api/v1/write", prom.url),
        ],
        ENV,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "nothing on stdout with --remote-write");
    check_history(&prom);
}

#[tokio::test]
async fn a_failing_provider_does_not_stop_the_others_and_a_source_without_history_is_named() {
    let mock = MockServer::start().await;
    // Anthropic answers 500 throughout; Vercel's history is there.
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&mock)
        .await;
    mount(&mock).await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[http]\nretries = 0\n[providers.anthropic]\nbase_url = \"{m}\"\n\
         [providers.vercel]\nbase_url = \"{m}\"\nsource = \"charges\"\n\
         [providers.supabase]\nbase_url = \"{m}\"\nproject_refs = [\"abcdefghijklmnopqrst\"]\n",
        m = mock.uri()
    ));
    let mut env = ENV.to_vec();
    env.push(("SUPABASE_ACCESS_TOKEN", "sbp_x"));
    let (code, stdout, stderr) = backfill(cfg.path(), &[], &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stdout.contains("provider=\"vercel\""), "vercel is written");
    assert!(!stdout.contains("provider=\"anthropic\""));
    assert!(
        stderr.contains("history of") && stderr.contains("500"),
        "{stderr}"
    );
    assert!(
        stderr.contains("keeps no history") && stderr.contains("supabase"),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_ranges_are_configuration_errors_before_any_request() {
    for (args, why) in [
        (vec!["--from", "2026-13"], "--from"),
        (vec!["--from", "2999-01"], "after the last complete day"),
        (vec!["--from", "2026-01", "--to", "soon"], "--to"),
        (
            vec!["--from", "2026-01", "--remote-write", "ftp://x"],
            "--remote-write",
        ),
        // Before the Unix epoch: every such day was stamped 0.
        (vec!["--from", "1969-12"], "before 1970-01"),
        (
            vec!["--from", "0001-01", "--to", "1969-12"],
            "before 1970-01",
        ),
    ] {
        let mut all = vec!["backfill"];
        all.extend(args);
        let out = support::run(&all, &[]);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    // Credentials in a URL the job refuses are never printed back.
    let out = support::run(
        &[
            "backfill",
            "--from",
            "2026-01",
            "--remote-write",
            "ftp://user:s3cret-rw-pass@host/x",
        ],
        &[],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--remote-write"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-rw-pass") && !stdout.contains("s3cret-rw-pass"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_receiver_s_endless_error_body_is_never_read_whole() {
    // A remote-write receiver that answers 400 with a body that never ends: the job reads the
    // start of it, says what it refused, and exits 1 (it read gigabytes before).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let chunk = format!("{:x}\r\n{}\r\n", 65536, "e".repeat(65536));
                loop {
                    if s.write_all(chunk.as_bytes()).is_err() {
                        break;
                    }
                    let n = counter.fetch_add(65536, std::sync::atomic::Ordering::SeqCst);
                    if n > 1 << 30 {
                        break;
                    }
                }
            });
        }
    });
    let mock = MockServer::start().await;
    mount(&mock).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &mock.uri());
    let (code, _, stderr) = backfill(
        cfg.path(),
        &["--only".into(), "acme".into(), "--remote-write".into(), url],
        ENV,
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("answered 400"), "{stderr}");
    let read = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read < 64 << 20, "{read} bytes were sent to the job");
}

/// Samples of one metric in an OpenMetrics text: timestamp → Σ values of the series whose
/// labels contain `needle`.
fn sums_by_day(text: &str, metric: &str, needle: &str) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with(&format!("{metric}{{")) || !line.contains(needle) {
            continue;
        }
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let v: f64 = parts.next().unwrap().parse().unwrap();
        *out.entry(ts).or_default() += v;
    }
    out
}

/// OpenAI's cost on `d`, USD.
fn openai_usd(d: Date) -> f64 {
    1.25 + f64::from(d.ordinal() % 5) * 0.5
}

/// Wasabi's active bytes on `d`: half a TiB for the first ten days of a month, then 2 TiB.
fn wasabi_bytes(d: Date) -> u64 {
    if d.day() <= 10 { 1 << 39 } else { 1 << 41 }
}

/// Unix-second window [start_time, end_time) of an OpenAI query, as days.
fn unix_window(req: &Request) -> Vec<Date> {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let (start, end): (i64, i64) = (
        q["start_time"].parse().unwrap(),
        q["end_time"].parse().unwrap(),
    );
    let (first, last) = span();
    days(first, last)
        .filter(|d| {
            let t = d.midnight().assume_utc().unix_timestamp();
            t >= start && t < end
        })
        .collect()
}

/// Days in [from, to] (inclusive dates) of a Wasabi Stats query.
fn date_window(req: &Request) -> Vec<Date> {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let parse = |k: &str| {
        let parts: Vec<i32> = q[k].split('-').map(|p| p.parse().unwrap()).collect();
        Date::from_calendar_date(
            parts[0],
            time::Month::try_from(parts[1] as u8).unwrap(),
            parts[2] as u8,
        )
        .unwrap()
    };
    let (from, to) = (parse("from"), parse("to"));
    let (first, last) = span();
    days(first, last)
        .filter(|d| *d >= from && *d <= to)
        .collect()
}

#[tokio::test]
async fn openai_and_wasabi_stats_histories_follow_their_days() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/costs"))
        .respond_with(|req: &Request| {
            let data: Vec<Value> = unix_window(req)
                .into_iter()
                .map(|d| {
                    let t = d.midnight().assume_utc().unix_timestamp();
                    json!({"object": "bucket", "start_time": t, "end_time": t + 86_400,
                           "results": [{"object": "organization.costs.result",
                                        "amount": {"value": openai_usd(d), "currency": "usd"},
                                        "line_item": "gpt-4o-2024-08-06, input", "project_id": "proj_a"}]})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({"object": "page", "data": data, "has_more": false, "next_page": null}))
        })
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/usage/completions"))
        .respond_with(|req: &Request| {
            let data: Vec<Value> = unix_window(req)
                .into_iter()
                .map(|d| {
                    let t = d.midnight().assume_utc().unix_timestamp();
                    json!({"object": "bucket", "start_time": t, "end_time": t + 86_400,
                           "results": [{"model": "gpt-4o-2024-08-06", "input_tokens": 100, "output_tokens": 10,
                                        "batch": false, "service_tier": "default"}]})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({"object": "page", "data": data, "has_more": false, "next_page": null}))
        })
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations/bucket"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"PageInfo": {"PageCount": 1}, "Records": []})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/standalone/utilizations"))
        .respond_with(|req: &Request| {
            let records: Vec<Value> = date_window(req)
                .into_iter()
                .map(|d| {
                    json!({"StartTime": format!("{d}T00:00:00Z"), "EndTime": format!("{}T00:00:00Z", d.next_day().unwrap()),
                           "PaddedStorageSizeBytes": wasabi_bytes(d), "MetadataStorageSizeBytes": 0,
                           "DeletedStorageSizeBytes": 1u64 << 30, "MinStorageChargeBytes": 0,
                           "NumAPICalls": 1, "DownloadBytes": 0})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!(records))
        })
        .mount(&mock)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[http]\nretries = 0\n[providers.openai]\nbase_url = \"{m}\"\n\
         [providers.wasabi]\nbuckets = [\"abc\"]\nendpoint = \"http://127.0.0.1:9\"\nstats_url = \"{m}\"\nstats = true\n",
        m = mock.uri()
    ));
    let (first, today) = span();
    let env = vec![
        ("OPENAI_ADMIN_KEY", "sk-admin-backfill"),
        ("WASABI_ACCESS_KEY", "AKBACKFILL"),
        ("WASABI_SECRET_KEY", "sk-backfill"),
    ];
    let (code, stdout, stderr) = backfill(cfg.path(), &[], &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    let openai = sums_by_day(&stdout, "cost_spend", "provider=\"openai\"");
    let wasabi = sums_by_day(&stdout, "cost_spend", "provider=\"wasabi\"");
    let minimum = sums_by_day(&stdout, "cost_spend", "service=\"minimum\"");
    let yesterday = today.previous_day().unwrap();
    assert_eq!(openai.len(), days(first, yesterday).count());
    assert_eq!(wasabi.len(), days(first, yesterday).count());
    let per_gb_day = 6.99 / 30.0 / 1024.0;
    for d in days(first, yesterday) {
        let ts = end_of(d);
        let mtd: f64 = days(d.replace_day(1).unwrap(), d).map(openai_usd).sum();
        assert!(
            (openai[&ts] - mtd).abs() < 1e-9,
            "{d}: openai {} vs {mtd}",
            openai[&ts]
        );
        // Wasabi: active GB-days so far, the top-up to 1 TB × the days so far, deleted on top.
        let active: f64 = days(d.replace_day(1).unwrap(), d)
            .map(|x| wasabi_bytes(x) as f64 / (1u64 << 30) as f64)
            .sum();
        let deleted = f64::from(d.day());
        let top_up = (1024.0 * f64::from(d.day()) - active).max(0.0);
        let want = (active + top_up + deleted) * per_gb_day;
        assert!(
            (wasabi[&ts] - want).abs() < 1e-5,
            "{d}: wasabi {} vs {want}",
            wasabi[&ts]
        );
        // In the first ten days (0.5 TiB) there is a top-up; from the 20th on, 2 TiB a day
        // has more than made up for it and there is none.
        if d.day() <= 10 {
            assert!(minimum[&ts] > 0.0, "{d}");
        }
        if d.day() >= 20 {
            assert_eq!(minimum[&ts], 0.0, "{d}");
        }
    }
}
