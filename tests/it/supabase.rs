//! The Supabase collector end to end against a loopback Management API mock, with the real
//! binary and a real Pushgateway. Every request is held against the pinned description
//! (`tests/fixtures/supabase/openapi.json`, supabase/cli @af50b99, through `contract`), every
//! answer is one its schema allows, and the logs endpoints refuse a window over 24 hours as the
//! description says they do.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::contract::{self, Spec};
use crate::support::{self, Pushgateway};

pub const TOKEN: &str = "sbp_test_token_4242";
pub const REF: &str = "abcdefghijklmnopqrst";
const SERVICE_KEY: &str = "sb_secret_test_9999";

/// The current logs endpoint (ClickHouse SQL over the unified stream).
const LOGS: &str = "/v1/projects/{ref}/analytics/endpoints/logs";
/// The deprecated one (BigQuery SQL over `function_edge_logs`).
const LOGS_ALL: &str = "/v1/projects/{ref}/analytics/endpoints/logs.all";

fn spec() -> Spec {
    Spec::load("supabase/openapi.json")
}

/// A 200 answer to `GET <template>`, checked against the description first.
fn answer(template: &str, body: Value) -> ResponseTemplate {
    spec().answer("get", template, 200, body)
}

/// `template` with the test project's ref.
fn at(template: &str) -> String {
    template.replace("{ref}", REF)
}

/// How the logs mock answers: a validation error (400) for a window the description refuses
/// (either timestamp missing or not RFC 3339, or more than 24 hours once rounded to the
/// minute), a query error in the body for SQL of the other endpoint's dialect, else `rows`.
fn logs_answer(req: &Request, current: bool, rows: &Value) -> ResponseTemplate {
    let (status, body) = logs_reply(req, current, rows);
    if status == 200 {
        let template = if current { LOGS } else { LOGS_ALL };
        spec().answer("get", template, 200, body)
    } else {
        ResponseTemplate::new(status).set_body_json(body)
    }
}

/// The status and body `logs_answer` sends.
fn logs_reply(req: &Request, current: bool, rows: &Value) -> (u16, Value) {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let time = |k: &str| {
        q.get(k).and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let (Some(start), Some(end)) = (time("iso_timestamp_start"), time("iso_timestamp_end")) else {
        return (
            400,
            json!({"message": "iso_timestamp_start and iso_timestamp_end must be RFC 3339 timestamps"}),
        );
    };
    let minutes = ((end - start).whole_seconds() as f64 / 60.0).round();
    if !(0.0..=24.0 * 60.0).contains(&minutes) {
        return (
            400,
            json!({"message": "The timestamp range must be no more than 24 hours"}),
        );
    }
    let sql = q.get("sql").map(String::as_str).unwrap_or_default();
    // The unified stream is ClickHouse (`from logs where source = …`, attributes in a map);
    // the deprecated endpoint is BigQuery (`function_edge_logs`, `unnest(metadata)`).
    let dialect_ok = if current {
        sql.contains("from logs") && sql.contains("log_attributes['function_id']")
    } else {
        sql.contains("from function_edge_logs") && sql.contains("unnest(metadata)")
    };
    if dialect_ok {
        (200, json!({"result": rows}))
    } else {
        (
            200,
            json!({"result": [], "error": {"code": 400, "errors": [], "message": "syntax error", "status": "INVALID_ARGUMENT"}}),
        )
    }
}

/// The per-window answer of the logs mocks: 100 invocations of `fn-1`, 5 of `fn-2` (a count
/// as a string, as ClickHouse writes 64-bit integers).
fn window_rows() -> Value {
    json!([{"function_id": "fn-1", "count": 100}, {"function_id": "fn-2", "count": "5"}])
}

/// The current logs endpoint, answering every window with `window_rows`.
async fn mount_logs(mock: &MockServer) {
    Mock::given(method("GET"))
        .and(path(at(LOGS)))
        .respond_with(|req: &Request| logs_answer(req, true, &window_rows()))
        .mount(mock)
        .await;
}

/// The windows the logs requests asked for, in order, with the path they went to.
async fn log_windows(
    mock: &MockServer,
) -> Vec<(String, time::OffsetDateTime, time::OffsetDateTime)> {
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/analytics/endpoints/"))
        .map(|r| {
            let q: BTreeMap<String, String> = r.url.query_pairs().into_owned().collect();
            (
                r.url.path().to_owned(),
                parse(&q["iso_timestamp_start"]),
                parse(&q["iso_timestamp_end"]),
            )
        })
        .collect()
}

fn summary_rows() -> Value {
    // bigint results arrive as strings or numbers.
    json!([{"database_size": "48211968", "storage_size": 1500000000, "users": "1234", "monthly_active_users": "321"}])
}

fn table_rows() -> Value {
    json!([
        {"table_name": "public.events", "row_count": "150000"},
        {"table_name": "public.users", "row_count": 1234},
        {"table_name": "audit.log", "row_count": 0}
    ])
}

/// A gp3 disk answer.
fn gp3(size_gb: u64, iops: u64, throughput: u64) -> Value {
    json!({"attributes": {"type": "gp3", "size_gb": size_gb, "iops": iops, "throughput_mibps": throughput}, "last_modified_at": "2026-11-02T10:00:00Z"})
}

/// A selected add-on: (type, variant id, name, price type, interval, amount).
fn addon(kind: &str, id: &str, name: &str, price: &str, interval: &str, amount: f64) -> Value {
    json!({"type": kind, "variant": {"id": id, "name": name, "price": {"description": format!("${amount} {interval}"), "type": price, "interval": interval, "amount": amount}}})
}

/// The project's disk and add-ons endpoints.
async fn mount_billing(mock: &MockServer, disk: Value, addons: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/config/disk")))
        .respond_with(answer("/v1/projects/{ref}/config/disk", disk))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/billing/addons")))
        .respond_with(answer(
            "/v1/projects/{ref}/billing/addons",
            json!({"selected_addons": addons, "available_addons": []}),
        ))
        .mount(mock)
        .await;
}

/// The documented Management API, for one project.
pub async fn mount_api(mock: &MockServer) {
    mount_project(mock).await;
    // The default disk and a Micro instance: covered by the plan and its compute credit.
    mount_billing(
        mock,
        gp3(8, 3000, 125),
        vec![addon(
            "compute_instance",
            "ci_micro",
            "Micro",
            "usage",
            "hourly",
            0.01344,
        )],
    )
    .await;
}

/// The project's figures, without its billing endpoints; edge function invocations from the
/// current logs endpoint.
async fn mount_project(mock: &MockServer) {
    mount_project_without_logs(mock).await;
    mount_logs(mock).await;
}

/// Makes `mock` refuse (400) a Management API request the description does not allow, as the
/// API would, and fail the test when one comes (`expect(0)`).
async fn refuse_off_spec(mock: &MockServer) {
    let spec = std::sync::Arc::new(spec());
    Mock::given(move |r: &Request| {
        r.url.path().starts_with("/v1/") && !spec.request_violations(r).is_empty()
    })
    .respond_with(ResponseTemplate::new(400).set_body_json(json!({"message": "invalid request"})))
    .with_priority(1)
    .expect(0)
    .mount(mock)
    .await;
}

/// The project's figures without any logs endpoint (a Management API that has neither: 404).
async fn mount_project_without_logs(mock: &MockServer) {
    refuse_off_spec(mock).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{REF}/database/query/read-only")))
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let q = body["query"].as_str().unwrap_or_default();
            let rows = if q.contains("pg_stat_user_tables") {
                table_rows()
            } else if q.contains("pg_database_size") {
                summary_rows()
            } else {
                json!([{"monthly_active_users": 321}])
            };
            ResponseTemplate::new(201).set_body_json(rows)
        })
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/config/disk/util")))
        .respond_with(answer("/v1/projects/{ref}/config/disk/util", json!({
            "timestamp": "2026-11-24T06:00:00Z",
            "metrics": {"fs_size_bytes": 8589934592u64, "fs_avail_bytes": 7516192768u64, "fs_used_bytes": 1073741824u64}
        })))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/functions")))
        .respond_with(answer("/v1/projects/{ref}/functions", json!([
            {"id": "fn-1", "slug": "send-email", "name": "send-email", "status": "ACTIVE", "version": 3, "created_at": 1, "updated_at": 2},
            {"id": "fn-2", "slug": "webhook", "name": "webhook", "status": "ACTIVE", "version": 1, "created_at": 1, "updated_at": 2, "import_map_path": null},
            {"id": "fn-3", "slug": "idle", "name": "idle", "status": "ACTIVE", "version": 1, "created_at": 1, "updated_at": 2}
        ])))
        .mount(mock)
        .await;
}

fn config(pg: &str, mock: &str, extra: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 1\n\
         [providers.supabase]\nbase_url = \"{mock}\"\nplan = \"pro\"\nbudget = 40\n{extra}"
    ))
}

async fn push(
    cfg: &tempfile::NamedTempFile,
    env: &[(&'static str, &'static str)],
) -> (Option<i32>, String) {
    let mut all = vec![
        ("SUPABASE_ACCESS_TOKEN", TOKEN),
        ("SUPABASE_PROJECT_REF", REF),
    ];
    all.extend_from_slice(env);
    support::push(cfg.path(), &all).await
}

fn usage(pg: &Pushgateway, resource: &str, extra: &[(&str, &str)]) -> Option<f64> {
    let mut labels = vec![("resource", resource), ("project", REF)];
    labels.extend_from_slice(extra);
    pg.value(Some("supabase"), "cost_usage", &labels)
}

#[tokio::test]
async fn sql_figures_are_pushed_exactly_and_every_request_follows_the_spec() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_api(&mock).await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");

    assert_eq!(usage(&pg, "database_size", &[]), Some(48_211_968.0));
    assert_eq!(usage(&pg, "storage_size", &[]), Some(1_500_000_000.0));
    assert_eq!(usage(&pg, "users", &[]), Some(1234.0));
    assert_eq!(usage(&pg, "monthly_active_users", &[]), Some(321.0));
    assert_eq!(
        usage(&pg, "table_rows", &[("table", "public.events")]),
        Some(150_000.0)
    );
    assert_eq!(
        usage(&pg, "table_rows", &[("table", "public.users")]),
        Some(1234.0)
    );
    assert_eq!(usage(&pg, "disk_used", &[]), Some(1_073_741_824.0));
    assert_eq!(usage(&pg, "disk_size", &[]), Some(8_589_934_592.0));
    // Invocations: the month read a day at a time, each window's counts added up.
    let windows = log_windows(&mock).await;
    assert_windows_cover_the_month(&windows, &at(LOGS));
    let n = windows.len() as f64;
    assert_eq!(
        usage(
            &pg,
            "edge_function_invocations",
            &[("function", "send-email")]
        ),
        Some(100.0 * n)
    );
    assert_eq!(
        usage(&pg, "edge_function_invocations", &[("function", "webhook")]),
        Some(5.0 * n)
    );
    assert_eq!(
        usage(&pg, "edge_function_invocations", &[("function", "idle")]),
        Some(0.0)
    );
    // No API gives egress: absent, never 0.
    assert_eq!(usage(&pg, "egress", &[]), None);
    assert!(
        pg.series(Some("supabase"), "cost_usage")
            .iter()
            .all(|(l, _)| l["resource"] != "egress")
    );
    // Pro quotas.
    let limit = |r: &str| pg.value(Some("supabase"), "cost_usage_limit", &[("resource", r)]);
    assert_eq!(limit("database_size"), Some(8e9));
    assert_eq!(limit("storage_size"), Some(100e9));
    assert_eq!(limit("monthly_active_users"), Some(100_000.0));
    assert_eq!(limit("edge_function_invocations"), Some(2_000_000.0));
    // Plan fee, no overage under the quotas; the 8 GB gp3 disk is included and the Micro
    // instance is covered by the compute credit.
    assert_eq!(
        pg.value(Some("supabase"), "cost_spend", &[("service", "plan")]),
        Some(25.0)
    );
    let total: f64 = pg
        .series(Some("supabase"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 25.0);

    contract::assert_requests_follow(&spec(), &mock).await;
    let requests = mock.received_requests().await.unwrap();
    for r in &requests {
        let post_ok = r.url.path().ends_with("/database/query/read-only");
        assert!(
            r.method.as_str() == "GET" || post_ok,
            "{} {}",
            r.method,
            r.url.path()
        );
        assert_eq!(
            r.headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert_eq!(
        requests.len(),
        6 + windows.len(),
        "few requests: two queries, disk use, functions, disk, add-ons and a logs query a day"
    );
}

/// The logs were read in windows of at most 24 hours (as the description requires), one after
/// the other from the 1st at 00:00 UTC to the run's time, all at `path`: at most 31.
fn assert_windows_cover_the_month(
    windows: &[(String, time::OffsetDateTime, time::OffsetDateTime)],
    path: &str,
) {
    assert!(!windows.is_empty() && windows.len() <= 31, "{windows:?}");
    let mut from = support::month_start();
    for (p, start, end) in windows {
        assert_eq!(p, path);
        assert_eq!(*start, from, "contiguous windows: {windows:?}");
        assert!(
            *end > *start && *end - *start <= time::Duration::hours(24),
            "{windows:?}"
        );
        from = *end;
    }
    let now = time::OffsetDateTime::now_utc();
    assert!(
        from <= now && now - from < time::Duration::minutes(5),
        "the last window ends at the run's time: {from} vs {now}"
    );
}

/// Hours elapsed in the month now, and hours in the month.
fn month_hours() -> (f64, f64) {
    let start = support::month_start();
    let now = time::OffsetDateTime::now_utc();
    let next = (start + time::Duration::days(32)).replace_day(1).unwrap();
    (
        (now - start).as_seconds_f64() / 3600.0,
        (next - start).as_seconds_f64() / 3600.0,
    )
}

#[tokio::test]
async fn disk_compute_and_add_ons_are_billed_per_project_as_supabase_bills_them() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_project(&mock).await;
    mount_billing(
        &mock,
        gp3(18, 3600, 200),
        vec![
            addon(
                "compute_instance",
                "ci_small",
                "Small",
                "usage",
                "hourly",
                0.0206,
            ),
            addon("pitr", "pitr_7", "7 days", "usage", "monthly", 100.0),
            addon("ipv4", "ipv4_default", "IPv4", "usage", "hourly", 0.0055),
        ],
    )
    .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (hours, month) = month_hours();
    let spend = |s: &str| {
        pg.value(
            Some("supabase"),
            "cost_spend",
            &[("service", s), ("project", REF)],
        )
        .unwrap_or_else(|| panic!("no {s} spend"))
    };
    // A second or two pass between the run and here: compare to a tenth of a cent.
    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 1e-3, "{what}: {got} vs {want}");
    };
    // The provisioned disk, not the database size: 10 GB beyond the 8 included, 600 IOPS
    // beyond 3,000, 75 MB/s beyond 125, by the hour.
    close(spend("disk_size"), 10.0 * 0.000171 * hours, "disk size");
    close(spend("disk_iops"), 600.0 * 0.00003288 * hours, "IOPS");
    close(
        spend("disk_throughput"),
        75.0 * 0.00013 * hours,
        "throughput",
    );
    // Small compute by the hour, less the $10 credit (all of it so far, up to $10).
    let compute = 0.0206 * hours;
    close(spend("compute"), (compute - 10.0).max(0.0), "compute");
    // PITR's monthly price prorated by the hour; IPv4 by the hour.
    close(spend("pitr"), 100.0 * hours / month, "pitr");
    close(spend("ipv4"), 0.0055 * hours, "ipv4");
    assert_eq!(
        usage(&pg, "disk_provisioned", &[]),
        Some(18e9),
        "the provisioned size is exported as usage"
    );
    // The forecast: the plan, the metered lines over the month, and the credit deducted once,
    // up to what compute costs for the month.
    if hours >= 48.0 {
        let f = month / hours;
        let metered = (10.0 * 0.000171 + 600.0 * 0.00003288 + 75.0 * 0.00013 + 0.0055) * hours
            + 100.0 * hours / month
            + compute;
        let want = 25.0 + metered * f - (compute * f).min(10.0);
        let got = pg.value(Some("supabase"), "cost_forecast", &[]).unwrap();
        assert!((got - want).abs() < 1e-2, "forecast {got} vs {want}");
    }
}

#[tokio::test]
async fn the_free_plan_reads_no_billing_endpoint_and_bills_nothing_but_its_caps() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_project(&mock).await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n[providers.supabase]\nbase_url = \"{}\"\nplan = \"free\"\n",
        pg.url,
        mock.uri()
    ));
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let requests = mock.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().ends_with("/config/disk") && !r.url.path().contains("/billing/")),
        "the Free plan has no disk or add-on charges to read"
    );
    let spend = pg.series(Some("supabase"), "cost_spend");
    assert_eq!(spend.len(), 1, "{spend:?}");
    assert_eq!(spend[0].1, 0.0);
}

#[tokio::test]
async fn a_disk_answer_outside_the_spec_fails_with_its_field_named() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_project(&mock).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/config/disk")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"attributes": {"type": "st1", "size_gb": 8, "iops": 3000}})),
        )
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("config/disk") && stderr.contains("st1"),
        "{stderr}"
    );
    assert_eq!(
        pg.value(
            Some("supabase"),
            "cost_collector_errors_total",
            &[("reason", "decode")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn overage_above_the_quotas_is_priced_at_the_published_rates() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_api(&mock).await;
    let cfg = config(
        &pg.url,
        &mock.uri(),
        "[providers.supabase.limits]\nmonthly_active_users = 300\nedge_function_invocations = 100\n",
    );
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let spend = |s: &str| pg.value(Some("supabase"), "cost_spend", &[("service", s)]);
    // (321 - 300) MAU × $0.00325 and (105 a day - 100) invocations × $2 per million.
    assert_eq!(spend("monthly_active_users"), Some(0.06825));
    let days = log_windows(&mock).await.len() as f64;
    let want = (105.0 * days - 100.0) * 2.0 / 1e6;
    let got = spend("edge_function_invocations").unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert_eq!(
        pg.value(
            Some("supabase"),
            "cost_usage_limit",
            &[("resource", "monthly_active_users")]
        ),
        Some(300.0)
    );
}

/// The quotas are monthly allowances: the usage so far is projected to the month's end before
/// the quota comes off. The run's clock: 11 November 2026, 00:00 UTC, 10 days (240 hours) of
/// a 30-day month (720 hours), f = 3; the quotas lowered to 300 MAU, 2,000 invocations and
/// 1 GB of storage; the project has 321 MAU, 105 invocations a day (1,050 in 10 windows) and
/// 1.5 GB stored.
///
/// - MAU: 321 × 3 = 963, 663 beyond 300 × $0.00325 = $2.15475 (21 beyond so far, $0.06825,
///   extrapolated: $0.20475);
/// - invocations: 1,050 × 3 = 3,150, 1,150 beyond 2,000 × $2 a million = $0.0023 (none beyond
///   so far: $0);
/// - storage: 1.5 GB × 720 h = 1,080 GB-hours, 336 beyond the quota's 1 GB × 744 = 744 ×
///   $0.00002919 = $0.00980784;
/// - the plan's $25, and a Micro instance the compute credit covers: **$27.17** (it printed
///   $25.22). Month to date: $25 + $0.06825 = **$25.07**.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_overage_is_charged_on_the_usage_projected_to_the_month_s_end() {
    let mock = MockServer::start().await;
    mount_api(&mock).await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[providers.supabase]\nbase_url = \"{}\"\nplan = \"pro\"\n\
         [providers.supabase.limits]\nmonthly_active_users = 300\n\
         edge_function_invocations = 2000\nstorage_size = 1_000_000_000\n",
        mock.uri()
    ));
    let env = [
        ("SUPABASE_ACCESS_TOKEN", TOKEN),
        ("SUPABASE_PROJECT_REF", REF),
        ("COST_EXPORTER_NOW", "2026-11-11T00:00:00Z"),
    ];
    let (spent, forecast, stderr) = support::printed(cfg.path(), &env, "supabase").await;
    assert_eq!(log_windows(&mock).await.len(), 10, "{stderr}");
    assert_eq!(spent.as_deref(), Some("25.07"));
    assert_eq!(forecast.as_deref(), Some("27.17"));
}

#[tokio::test]
async fn the_metrics_endpoint_replaces_sql_for_sizes_and_users() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_api(&mock).await;
    let sample = std::fs::read_to_string(support::fixture("supabase/metrics_sample.prom")).unwrap();
    let served = sample
        .lines()
        .map(|l| {
            if l.starts_with("pg_database_size_bytes{") && l.contains("datname=\"postgres\"") {
                l.replace("} 0", "} 99123456")
            } else if l.starts_with("storage_storage_size_mb{") {
                l.replace("} 0", "} 2048.5")
            } else if l.starts_with("auth_users_user_count{") {
                l.replace("} 0", "} 777")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(served, sample, "the sample has the three metrics");
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("service_role:{SERVICE_KEY}"))
    );
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^/{REF}/customer/v1/privileged/metrics$"
        )))
        .and(wiremock::matchers::header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(served))
        .expect(1)
        .mount(&mock)
        .await;
    let extra = format!(
        "metrics_url = \"{}/{{ref}}/customer/v1/privileged/metrics\"\n",
        mock.uri()
    );
    let cfg = config(&pg.url, &mock.uri(), &extra);
    let (code, stderr) = push(&cfg, &[("SUPABASE_SERVICE_ROLE_KEY", SERVICE_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(usage(&pg, "database_size", &[]), Some(99_123_456.0));
    assert_eq!(usage(&pg, "storage_size", &[]), Some(2048.5e6));
    assert_eq!(usage(&pg, "users", &[]), Some(777.0));
    assert_eq!(usage(&pg, "monthly_active_users", &[]), Some(321.0));
    let requests = mock.received_requests().await.unwrap();
    let sql: Vec<String> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        sql.iter().all(|q| !q.contains("pg_database_size")),
        "no size SQL with metrics: {sql:?}"
    );
    assert!(!stderr.contains(SERVICE_KEY));
    assert!(!pg.dump().contains(SERVICE_KEY));
}

#[tokio::test]
async fn an_sql_error_in_a_201_body_is_a_query_failure() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{REF}/database/query/read-only")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "message": "Failed to run sql query: ERROR:  42501: permission denied for table users"
        })))
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert_eq!(
        pg.value(
            Some("supabase"),
            "cost_collector_errors_total",
            &[("reason", "query")]
        ),
        Some(1.0)
    );
    assert!(pg.series(Some("supabase"), "cost_usage").is_empty());
}

#[tokio::test]
async fn a_429_is_retried_after_the_advertised_wait() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    mount_api(&mock).await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("429"), "{stderr}");
    assert_eq!(usage(&pg, "database_size", &[]), Some(48_211_968.0));
}

#[tokio::test]
async fn api_errors_are_bounded_failures_never_crashes() {
    let cases: &[(u16, Value, &str, &str)] = &[
        (401, json!({"message": "Unauthorized"}), "auth", "401"),
        (
            403,
            json!({"message": "missing_permissions: database_read"}),
            "auth",
            "lacks a permission",
        ),
        (
            404,
            json!({"message": "Project not found"}),
            "http_4xx",
            "unknown to this token",
        ),
        (500, json!({"message": "Internal error"}), "http_5xx", "500"),
    ];
    for (status, body, reason, needle) in cases {
        let pg = Pushgateway::start();
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body.clone()))
            .mount(&mock)
            .await;
        let cfg = config(&pg.url, &mock.uri(), "");
        let (code, stderr) = push(&cfg, &[("COST_EXPORTER_HTTP__RETRIES", "0")]).await;
        assert_eq!(code, Some(3), "{status}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{status}: {needle:?} not in {stderr}"
        );
        assert_eq!(
            pg.value(
                Some("supabase"),
                "cost_collector_errors_total",
                &[("reason", reason)]
            ),
            Some(1.0),
            "{status}"
        );
        assert!(!stderr.contains(TOKEN));
    }
}

#[tokio::test]
async fn invocations_fall_back_to_the_deprecated_logs_endpoint_with_the_same_figures() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    // A Management API without the unified logs endpoint (404), whose deprecated one refuses
    // a window over 24 hours.
    mount_project_without_logs(&mock).await;
    Mock::given(method("GET"))
        .and(path(at(LOGS_ALL)))
        .respond_with(|req: &Request| logs_answer(req, false, &window_rows()))
        .mount(&mock)
        .await;
    mount_billing(&mock, gp3(8, 3000, 125), vec![]).await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let windows = log_windows(&mock).await;
    // One try of the current endpoint, then the month a day at a time on the deprecated one.
    assert_eq!(windows[0].0, at(LOGS), "{windows:?}");
    assert_windows_cover_the_month(&windows[1..], &at(LOGS_ALL));
    let n = (windows.len() - 1) as f64;
    assert_eq!(
        usage(
            &pg,
            "edge_function_invocations",
            &[("function", "send-email")]
        ),
        Some(100.0 * n)
    );
    assert_eq!(
        usage(&pg, "edge_function_invocations", &[("function", "webhook")]),
        Some(5.0 * n)
    );
    contract::assert_requests_follow(&spec(), &mock).await;
}

/// The control: the mocks refuse what the Management API refuses. A logs window over 24 hours
/// is a validation error; a request off the description (a ref of another shape, an unknown
/// parameter) and an answer its schema does not allow (a null `error`, an add-on price
/// without its amount) are caught.
#[tokio::test]
async fn the_mocks_refuse_what_the_management_api_refuses() {
    let request = |url: &str| Request {
        url: url::Url::parse(url).unwrap(),
        method: wiremock::http::Method::GET,
        headers: {
            let mut h = wiremock::http::HeaderMap::new();
            h.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
            h
        },
        body: vec![],
    };
    let logs = |from: &str, to: &str| {
        request(&format!(
            "http://mock{}?sql=select+1+from+logs+log_attributes%5B%27function_id%27%5D&iso_timestamp_start={from}&iso_timestamp_end={to}",
            at(LOGS)
        ))
    };
    let day = logs("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    assert_eq!(logs_reply(&day, true, &window_rows()).0, 200);
    assert!(spec().request_violations(&day).is_empty());
    let long = logs("2026-12-01T00:00:00Z", "2026-12-02T00:01:00Z");
    assert_eq!(logs_reply(&long, true, &window_rows()).0, 400);
    let v = spec().request_violations(&request(
        "http://mock/v1/projects/ABC123/analytics/endpoints/logs?from=1",
    ));
    assert!(v.iter().any(|m| m.contains("does not match")), "{v:?}");
    assert!(v.iter().any(|m| m.contains("\"from\"")), "{v:?}");
    let v = spec().answer_violations("get", LOGS, 200, &json!({"result": [], "error": null}));
    assert!(!v.is_empty());
    let mut no_amount = addon("pitr", "pitr_7", "7 days", "usage", "monthly", 100.0);
    no_amount["variant"]["price"]
        .as_object_mut()
        .unwrap()
        .remove("amount");
    let v = spec().answer_violations(
        "get",
        "/v1/projects/{ref}/billing/addons",
        200,
        &json!({"selected_addons": [no_amount], "available_addons": []}),
    );
    assert!(v.iter().any(|m| m.contains("amount")), "{v:?}");
}

#[tokio::test]
async fn add_ons_are_priced_by_price_type_and_interval() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_project(&mock).await;
    mount_billing(
        &mock,
        gp3(8, 3000, 125),
        vec![
            // Usage by the hour: the hours so far.
            addon("ipv4", "ipv4_default", "IPv4", "usage", "hourly", 0.0055),
            // Usage priced by the month: the month's price prorated by the hour.
            addon("pitr", "pitr_7", "7 days", "usage", "monthly", 100.0),
            // A fixed monthly price: the month's fee, whole, however far the month is.
            addon(
                "custom_domain",
                "cd_default",
                "Custom domain",
                "fixed",
                "monthly",
                10.0,
            ),
            // A fixed hourly price accrues by the hour; the newer etl_pipeline add-on is read.
            addon(
                "etl_pipeline",
                "etl_pipeline_default",
                "ETL",
                "fixed",
                "hourly",
                0.02,
            ),
        ],
    )
    .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (hours, month) = month_hours();
    let spend = |s: &str| {
        pg.value(
            Some("supabase"),
            "cost_spend",
            &[("service", s), ("project", REF)],
        )
        .unwrap_or_else(|| panic!("no {s} spend"))
    };
    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 1e-3, "{what}: {got} vs {want}");
    };
    close(spend("ipv4"), 0.0055 * hours, "ipv4");
    close(spend("pitr"), 100.0 * hours / month, "pitr");
    assert_eq!(spend("custom_domain"), 10.0, "a fixed monthly fee is whole");
    close(spend("etl_pipeline"), 0.02 * hours, "etl_pipeline");
    assert_eq!(
        pg.value(Some("supabase"), "cost_collector_records_skipped", &[]),
        None
    );
}

#[tokio::test]
async fn an_add_on_with_a_price_type_or_interval_this_build_does_not_know_is_skipped() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_project(&mock).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/config/disk")))
        .respond_with(answer("/v1/projects/{ref}/config/disk", gp3(8, 3000, 125)))
        .mount(&mock)
        .await;
    // Values a newer description may add to the enums (as it added etl_pipeline), served
    // as such: each such add-on is left out and counted, the rest priced.
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/billing/addons")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "selected_addons": [
                addon("ipv4", "ipv4_default", "IPv4", "usage", "hourly", 0.0055),
                addon("pitr", "pitr_7", "7 days", "tiered", "monthly", 100.0),
                addon("log_drain", "log_drain_default", "Log drain", "usage", "daily", 2.0)
            ],
            "available_addons": []
        })))
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("tiered") && stderr.contains("daily"),
        "each skipped add-on is named: {stderr}"
    );
    assert_eq!(
        pg.value(
            Some("supabase"),
            "cost_collector_records_skipped",
            &[("reason", "unknown_enum")]
        ),
        Some(2.0)
    );
    let services: Vec<String> = pg
        .series(Some("supabase"), "cost_spend")
        .iter()
        .filter_map(|(l, _)| l.get("service").cloned())
        .collect();
    assert!(services.contains(&"ipv4".to_owned()), "{services:?}");
    assert!(
        !services.contains(&"pitr".to_owned()) && !services.contains(&"log_drain".to_owned()),
        "{services:?}"
    );
}

#[test]
fn project_refs_of_another_shape_are_refused_by_check() {
    let file = support::toml("[providers.supabase]\n");
    let cfg = file.path().to_str().unwrap();
    for bad in [
        "abc123",
        "ABCDEFGHIJKLMNOPQRST",
        "abcdefghijklmnopqrs",
        "abcdefghijklmnopqrstu",
        "abcdefghijklmnopq123",
    ] {
        let out = support::run(
            &["check", "--config", cfg],
            &[
                ("SUPABASE_ACCESS_TOKEN", TOKEN),
                ("SUPABASE_PROJECT_REF", bad),
            ],
        );
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(bad) && stderr.contains("20 lowercase letters"),
            "{bad}: {stderr}"
        );
    }
    let out = support::run(
        &["check", "--config", cfg],
        &[
            ("SUPABASE_ACCESS_TOKEN", TOKEN),
            ("SUPABASE_PROJECT_REF", REF),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out).1);
}
