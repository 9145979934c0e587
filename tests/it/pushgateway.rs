//! Pushgateway semantics against the real `prometheus-pushgateway`: PUT on success, POST of
//! status on failure, counters kept across runs, stale series removed, the run deadline and
//! cancellation, 400 not retried, a down gateway retried then exit 1.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cost_exporter::config::{Overrides, Settings};
use cost_exporter::cost::{Collection, Spend, SpendKind, Unit, Usage, UsageLimit};
use cost_exporter::error::{CollectError, Reason};
use cost_exporter::exit;
use cost_exporter::money::{Currency, Money};
use cost_exporter::providers::{self, Collector, Context, Plan};
use cost_exporter::run::{self, Mode};
use rust_decimal::Decimal;

use crate::support::{self, Counter, Pushgateway};

/// A collector that returns a preset result, optionally after a delay, or panics.
struct Fake {
    provider: &'static str,
    result: Result<Collection, CollectError>,
    delay: Duration,
    panic: bool,
}

#[async_trait]
impl Collector for Fake {
    fn provider(&self) -> &str {
        self.provider
    }
    fn source(&self) -> &'static str {
        "fake"
    }
    async fn collect(&self, _cx: &Context) -> Result<Collection, CollectError> {
        tokio::time::sleep(self.delay).await;
        if self.panic {
            panic!("a bug in a collector");
        }
        self.result.clone()
    }
    async fn probe(&self, _cx: &Context) -> Result<String, CollectError> {
        Ok("fake".into())
    }
}

fn ok(provider: &'static str, c: Collection) -> Arc<dyn Collector> {
    Arc::new(Fake {
        provider,
        result: Ok(c),
        delay: Duration::ZERO,
        panic: false,
    })
}

fn failing(provider: &'static str, reason: Reason) -> Arc<dyn Collector> {
    Arc::new(Fake {
        provider,
        result: Err(CollectError::new(reason, "the test says so")),
        delay: Duration::ZERO,
        panic: false,
    })
}

/// A collector that would take a minute.
fn slow() -> Arc<dyn Collector> {
    Arc::new(Fake {
        provider: "slow",
        result: Ok(Collection::default()),
        delay: Duration::from_secs(60),
        panic: false,
    })
}

fn usd(amount: &str, labels: &[(&'static str, &str)]) -> Spend {
    Spend {
        money: Money {
            amount: Decimal::from_str(amount).unwrap(),
            currency: Currency::USD,
        },
        kind: SpendKind::Metered,
        labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    }
}

fn collection(spend: Vec<Spend>) -> Collection {
    Collection {
        usage: vec![Usage {
            resource: "function_invocations".into(),
            unit: Unit::Requests,
            value: 1234.0,
            labels: vec![],
        }],
        limits: vec![UsageLimit {
            resource: "function_invocations".into(),
            unit: Unit::Requests,
            value: 1_000_000.0,
        }],
        spend,
        ..Collection::default()
    }
}

fn settings(pg: &str, extra: &str) -> Settings {
    let file = support::toml(&format!(
        "{extra}\n[pushgateway]\nurl = \"{pg}\"\nretries = 2\n"
    ));
    let overrides = Overrides {
        config: Some(file.path().to_path_buf()),
        ..Overrides::default()
    };
    providers::load(&overrides, &BTreeMap::new())
        .expect("valid test config")
        .0
}

async fn push(settings: &Settings, collectors: Vec<Arc<dyn Collector>>) -> u8 {
    run::execute(
        settings,
        Plan::of(collectors),
        Mode::Push,
        std::future::pending(),
    )
    .await
}

const ERRORS: &str = "cost_collector_errors_total";

/// The binary pushing the example configuration to `url`.
fn push_example(url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let config = support::repo("examples/cost-exporter.toml");
    let mut all = vec![
        "push",
        "--config",
        config.to_str().unwrap(),
        "--pushgateway",
        url,
    ];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(support::EXAMPLE_OFFLINE);
    support::run(&all, &env)
}

#[tokio::test]
async fn errors_counter_rises_across_runs_and_survives_a_success() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let errors = |pg: &Pushgateway| pg.value(Some("flaky"), ERRORS, &[("reason", "http_5xx")]);

    assert_eq!(
        push(&s, vec![failing("flaky", Reason::Http5xx)]).await,
        exit::PARTIAL
    );
    assert_eq!(errors(&pg), Some(1.0));
    assert_eq!(pg.value(Some("flaky"), "cost_collector_up", &[]), Some(0.0));

    assert_eq!(
        push(&s, vec![failing("flaky", Reason::Http5xx)]).await,
        exit::PARTIAL
    );
    assert_eq!(errors(&pg), Some(2.0));
    assert_eq!(
        pg.value(Some("flaky"), "cost_collector_last_run_errors", &[]),
        Some(1.0)
    );

    // A success PUTs the whole group: the counter must carry over, not reset.
    assert_eq!(
        push(&s, vec![ok("flaky", collection(vec![]))]).await,
        exit::OK
    );
    assert_eq!(errors(&pg), Some(2.0));
    assert_eq!(
        pg.value(Some("flaky"), ERRORS, &[("reason", "auth")]),
        Some(0.0)
    );
    assert_eq!(pg.value(Some("flaky"), "cost_collector_up", &[]), Some(1.0));
    assert_eq!(
        pg.value(Some("flaky"), "cost_collector_last_run_errors", &[]),
        Some(0.0)
    );

    // Another reason starts at 1 beside the old one.
    assert_eq!(
        push(&s, vec![failing("flaky", Reason::Auth)]).await,
        exit::PARTIAL
    );
    assert_eq!(
        pg.value(Some("flaky"), ERRORS, &[("reason", "auth")]),
        Some(1.0)
    );
    assert_eq!(errors(&pg), Some(2.0));
}

#[tokio::test]
async fn last_good_values_survive_a_failed_run() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let good = collection(vec![usd("12.34", &[("project", "web")])]);
    assert_eq!(push(&s, vec![ok("acme", good)]).await, exit::OK);
    let success = pg
        .value(
            Some("acme"),
            "cost_collector_last_success_timestamp_seconds",
            &[],
        )
        .expect("last success pushed");
    let attempt1 = pg
        .value(
            Some("acme"),
            "cost_collector_last_attempt_timestamp_seconds",
            &[],
        )
        .expect("last attempt pushed");

    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        push(&s, vec![failing("acme", Reason::Timeout)]).await,
        exit::PARTIAL
    );
    assert_eq!(
        pg.value(
            Some("acme"),
            "cost_spend",
            &[("project", "web"), ("currency", "USD")]
        ),
        Some(12.34)
    );
    assert_eq!(
        pg.value(
            Some("acme"),
            "cost_usage",
            &[("resource", "function_invocations")]
        ),
        Some(1234.0)
    );
    assert_eq!(
        pg.value(
            Some("acme"),
            "cost_usage_limit",
            &[("resource", "function_invocations")]
        ),
        Some(1_000_000.0)
    );
    assert_eq!(
        pg.value(
            Some("acme"),
            "cost_collector_last_success_timestamp_seconds",
            &[]
        ),
        Some(success)
    );
    let attempt2 = pg
        .value(
            Some("acme"),
            "cost_collector_last_attempt_timestamp_seconds",
            &[],
        )
        .expect("attempt");
    assert!(attempt2 > attempt1, "{attempt2} > {attempt1}");
    assert_eq!(pg.value(Some("acme"), "cost_collector_up", &[]), Some(0.0));
    assert_eq!(
        pg.value(Some("acme"), ERRORS, &[("reason", "timeout")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_successful_put_removes_stale_series() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let two = collection(vec![
        usd("1.5", &[("project", "kept")]),
        usd("2.5", &[("project", "deleted")]),
    ]);
    assert_eq!(push(&s, vec![ok("acme", two)]).await, exit::OK);
    assert_eq!(pg.series(Some("acme"), "cost_spend").len(), 2);

    let one = collection(vec![usd("1.75", &[("project", "kept")])]);
    assert_eq!(push(&s, vec![ok("acme", one)]).await, exit::OK);
    let left = pg.series(Some("acme"), "cost_spend");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0["project"], "kept");
    assert_eq!(left[0].1, 1.75);
}

#[tokio::test]
async fn one_failing_provider_never_stops_the_others_and_money_is_converted() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "currency = \"EUR\"\n[fx]\nUSD = 0.5\n");
    let code = push(
        &s,
        vec![
            failing("broken", Reason::Decode),
            ok("fine", collection(vec![usd("10", &[])])),
            Arc::new(Fake {
                provider: "buggy",
                result: Ok(Collection::default()),
                delay: Duration::ZERO,
                panic: true,
            }),
        ],
    )
    .await;
    assert_eq!(code, exit::PARTIAL);
    assert_eq!(
        pg.value(Some("fine"), "cost_spend", &[("currency", "EUR")]),
        Some(5.0)
    );
    assert_eq!(
        pg.value(Some("broken"), ERRORS, &[("reason", "decode")]),
        Some(1.0)
    );
    assert_eq!(
        pg.value(Some("buggy"), ERRORS, &[("reason", "internal")]),
        Some(1.0)
    );
    assert_eq!(
        pg.value(None, "cost_fx_rate", &[("from", "USD"), ("to", "EUR")]),
        Some(0.5)
    );
    assert!(
        pg.value(None, "cost_exporter_last_run_timestamp_seconds", &[])
            .is_some()
    );
    assert_eq!(
        pg.value(
            None,
            "cost_exporter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_run_deadline_cancels_slow_collectors_and_still_pushes() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "[run]\ntimeout = \"1s\"\n");
    let slow = slow();
    let started = Instant::now();
    let code = push(&s, vec![slow, ok("fast", collection(vec![]))]).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, exit::PARTIAL);
    assert_eq!(
        pg.value(Some("slow"), ERRORS, &[("reason", "timeout")]),
        Some(1.0)
    );
    assert_eq!(pg.value(Some("slow"), "cost_collector_up", &[]), Some(0.0));
    assert_eq!(pg.value(Some("fast"), "cost_collector_up", &[]), Some(1.0));
}

#[tokio::test]
async fn a_shutdown_signal_cancels_collectors_and_still_pushes() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let slow = slow();
    let signal = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "SIGTERM"
    };
    let started = Instant::now();
    let code = run::execute(&s, Plan::of(vec![slow]), Mode::Push, signal).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(code, exit::PARTIAL);
    assert_eq!(
        pg.value(Some("slow"), ERRORS, &[("reason", "cancelled")]),
        Some(1.0)
    );
}

#[test]
fn a_400_from_the_pushgateway_is_not_retried_and_exits_1() {
    let pg = Pushgateway::start();
    // Another job declared cost_spend as a counter: the gateway refuses our gauge with 400.
    let (status, body) = pg.send(
        "PUT",
        "/metrics/job/other",
        "# TYPE cost_spend counter\ncost_spend 1\n",
    );
    assert_eq!(status, 200, "{body}");
    let out = push_example(&pg.url, &["--only", "ovh"], &[]);
    let (_, stderr) = support::text(&out);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::PUSH_FAILED)),
        "{stderr}"
    );
    assert!(stderr.contains("400"), "{stderr}");
    assert!(
        stderr.contains("COUNTER") || stderr.contains("inconsistent"),
        "the body is logged: {stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    assert_eq!(pg.requests("push", "400"), 1.0, "exactly one attempt");
    // The run-level group, which has no conflict, still went through.
    assert!(
        pg.value(None, "cost_exporter_last_run_timestamp_seconds", &[])
            .is_some()
    );
}

#[test]
fn a_pushgateway_that_answers_503_is_retried_then_exit_1() {
    let pg = Counter::start(Some(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown",
    ));
    let out = push_example(&pg.url, &[], &[("COST_EXPORTER_PUSHGATEWAY__RETRIES", "2")]);
    let (_, stderr) = support::text(&out);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::PUSH_FAILED)),
        "{stderr}"
    );
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");
    // One read-back plus two retries, then nothing more: the gateway is down.
    assert_eq!(pg.connections(), 3, "{stderr}");
}

#[test]
fn a_pushgateway_that_is_not_listening_is_retried_then_exit_1() {
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = push_example(&url, &[], &[("COST_EXPORTER_PUSHGATEWAY__RETRIES", "1")]);
    let (_, stderr) = support::text(&out);
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::PUSH_FAILED)),
        "{stderr}"
    );
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stderr.contains("nothing was pushed"), "{stderr}");
}

#[test]
fn basic_auth_works_and_the_credentials_never_reach_the_logs() {
    let pg = Pushgateway::start_with_auth();
    let out = push_example(
        &pg.url,
        &[],
        &[
            ("PUSHGATEWAY_USERNAME", support::PG_USER),
            ("PUSHGATEWAY_PASSWORD", support::PG_PASSWORD),
            ("RUST_LOG", "trace"),
        ],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(pg.value(Some("ovh"), "cost_forecast", &[]), Some(250.0));
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        support::PG_USER,
        support::PG_PASSWORD
    ));
    for leak in [support::PG_PASSWORD, basic.as_str()] {
        assert!(!stderr.contains(leak), "credential in the logs: {stderr}");
        assert!(!stdout.contains(leak));
        assert!(!pg.dump().contains(leak));
    }

    // Without credentials: 401, not retried, and the message says what to set.
    let out = push_example(&pg.url, &[], &[]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("PUSHGATEWAY_USERNAME"), "{stderr}");
}

#[test]
fn pushing_the_example_reports_the_fixed_costs_in_euro() {
    let pg = Pushgateway::start();
    let out = push_example(&pg.url, &[], &[]);
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let ovh: f64 = pg
        .series(Some("ovh"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(ovh, 250.0);
    assert_eq!(
        pg.value(Some("ovh"), "cost_forecast", &[("currency", "EUR")]),
        Some(250.0)
    );
    assert_eq!(
        pg.value(Some("ovh"), "cost_budget", &[("currency", "EUR")]),
        Some(260.0)
    );
    // 25 USD at 0.92.
    assert_eq!(
        pg.value(Some("supabase"), "cost_spend", &[("name", "pro-plan")]),
        Some(23.0)
    );
    assert_eq!(pg.value(Some("claude"), "cost_spend", &[]), Some(185.0));
    assert_eq!(pg.value(Some("cloudflare"), "cost_spend", &[]), Some(0.0));
    // API providers without credentials are exported as not configured, with their budget.
    assert_eq!(
        pg.value(Some("anthropic"), "cost_collector_configured", &[]),
        Some(0.0)
    );
    assert_eq!(pg.value(Some("anthropic"), "cost_budget", &[]), Some(200.0));
    assert_eq!(pg.value(Some("anthropic"), "cost_spend", &[]), None);
    assert_eq!(
        pg.value(Some("ovh"), "cost_collector_configured", &[]),
        Some(1.0)
    );
    // Every group is under job cost-exporter; the run-level group has no provider label.
    let groups = pg.groups();
    assert!(groups.iter().any(|g| g["labels"].get("provider").is_none()));
    assert!(groups.iter().all(|g| g["last_push_successful"] == true));
}

#[tokio::test]
async fn grouping_values_with_a_slash_or_empty_are_base64_encoded() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let client = cost_exporter::push::Pushgateway::new(&s.pushgateway).unwrap();
    for value in ["a/b", ""] {
        client
            .push(
                &[("provider", "x"), ("path", value)],
                cost_exporter::metrics::Method::Put,
                "# TYPE cost_exporter_run_duration_seconds gauge\ncost_exporter_run_duration_seconds 1\n".into(),
            )
            .await
            .unwrap();
    }
    let groups = pg.groups();
    assert!(
        groups.iter().any(|g| g["labels"]["path"] == "a/b"),
        "{groups:?}"
    );
    // An empty value travels as `path@base64/=` and is kept as an empty label.
    assert!(
        groups
            .iter()
            .any(|g| g["labels"]["provider"] == "x" && g["labels"]["path"] == ""),
        "{groups:?}"
    );
}

#[tokio::test]
async fn consecutive_failures_are_read_back_and_counted_until_a_success() {
    let pg = Pushgateway::start();
    let s = settings(&pg.url, "");
    let in_a_row = || pg.value(Some("acme"), "cost_collector_consecutive_failures", &[]);
    let good = || collection(vec![usd("1", &[])]);
    assert_eq!(push(&s, vec![ok("acme", good())]).await, exit::OK);
    assert_eq!(in_a_row(), Some(0.0));
    for n in 1..=3 {
        assert_eq!(
            push(&s, vec![failing("acme", Reason::Timeout)]).await,
            exit::PARTIAL
        );
        assert_eq!(in_a_row(), Some(f64::from(n)), "after {n} failed runs");
    }
    assert_eq!(push(&s, vec![ok("acme", good())]).await, exit::OK);
    assert_eq!(in_a_row(), Some(0.0));
}

#[tokio::test]
async fn counters_are_read_back_past_megabytes_of_other_jobs_metrics() {
    // Other jobs on a shared Pushgateway: `/api/v1/metrics` answers with every group, here
    // about 40 MiB of JSON, beyond the 32 MiB the read-back once held in memory whole (and
    // parsed at about 18 times its size). It is streamed now: this job's counters still
    // continue from the last run.
    let pg = Pushgateway::start();
    let filler = "x".repeat(1000);
    for job in 0..8 {
        let mut body = String::from("# TYPE other_metric gauge\n");
        for i in 0..4_500 {
            body.push_str(&format!(
                "other_metric{{series=\"{i}\",note=\"{filler}\"}} {i}\n"
            ));
        }
        let (status, text) = pg.send("PUT", &format!("/metrics/job/other-{job}"), &body);
        assert_eq!(status, 200, "{text}");
    }
    let (status, api) = pg.get("/api/v1/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(api.len() > 33 << 20, "only {} bytes", api.len());
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
         [providers.vercel]\nbase_url = \"http://127.0.0.1:9\"\n",
        pg.url
    ));
    for _ in 0..2 {
        let (code, stderr) =
            support::push(cfg.path(), &[("VERCEL_API_TOKEN", "tok-vercel-1")]).await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(
            !stderr.contains("cannot read the previous error counters"),
            "{stderr}"
        );
    }
    // The second run continued the first one's count (read back from the big answer).
    for job in 0..8 {
        pg.send("DELETE", &format!("/metrics/job/other-{job}"), "");
    }
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_errors_total",
            &[("reason", "transport")]
        ),
        Some(2.0)
    );
}
