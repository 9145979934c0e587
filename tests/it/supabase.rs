//! The Supabase collector end to end against a loopback Management API mock whose requests are
//! checked against the OpenAPI spec, with the documented payloads (numbers as strings
//! included), the real binary and a real Pushgateway.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{self, Pushgateway};

pub const TOKEN: &str = "sbp_test_token_4242";
pub const REF: &str = "abcdefghijklmnopqrst";
const SERVICE_KEY: &str = "sb_secret_test_9999";

/// Every way a request can disagree with the spec, as messages.
fn spec_violations(requests: &[Request]) -> Vec<String> {
    let spec: Value =
        serde_json::from_slice(&std::fs::read(support::fixture("supabase/openapi.json")).unwrap())
            .unwrap();
    let mut out = Vec::new();
    for req in requests {
        let path = req.url.path();
        let m = req.method.as_str().to_ascii_lowercase();
        let found = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(template, item)| {
                let re = format!("^{}$", regex_template(template));
                matches(&re, path) && item.get(&m).is_some()
            });
        let Some((template, item)) = found else {
            out.push(format!("{m} {path}: no such operation in the spec"));
            continue;
        };
        let op = &item[&m];
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        for k in query.keys() {
            if !params
                .iter()
                .any(|p| p["in"] == "query" && p["name"] == k.as_str())
            {
                out.push(format!(
                    "{m} {template}: query parameter {k} is not in the spec"
                ));
            }
        }
        for p in &params {
            if p["in"] == "query"
                && p["required"] == true
                && !query.contains_key(p["name"].as_str().unwrap())
            {
                out.push(format!("{m} {template}: required {} missing", p["name"]));
            }
            if p["in"] == "path" && p["name"] == "ref" && !path.contains(REF) {
                out.push(format!("{m} {template}: wrong ref"));
            }
        }
        if let Some(body) = op.get("requestBody") {
            let schema_ref = body["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap();
            let name = schema_ref.rsplit('/').next().unwrap();
            let schema = &spec["components"]["schemas"][name];
            let sent: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    out.push(format!("{m} {template}: body is not JSON ({e})"));
                    continue;
                }
            };
            for k in sent
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if schema["properties"].get(&k).is_none() {
                    out.push(format!("{m} {template}: body field {k} is not in {name}"));
                }
            }
            for r in schema["required"].as_array().cloned().unwrap_or_default() {
                if sent.get(r.as_str().unwrap()).is_none() {
                    out.push(format!("{m} {template}: body lacks required {r}"));
                }
            }
        }
    }
    out
}

fn regex_template(t: &str) -> String {
    let mut s = String::new();
    let mut in_var = false;
    for c in t.chars() {
        match c {
            '{' => in_var = true,
            '}' => {
                in_var = false;
                s.push_str("[^/]+");
            }
            _ if in_var => {}
            '.' => s.push_str("\\."),
            c => s.push(c),
        }
    }
    s
}

fn matches(re: &str, text: &str) -> bool {
    regex::Regex::new(re).unwrap().is_match(text)
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

/// Where `v` disagrees with `schema` (a subset of OpenAPI 3: `$ref`, `oneOf`, `enum`, `type`,
/// `required`, `properties`, `items`, `minimum`), as messages naming the path.
fn schema_violations(spec: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return schema_violations(spec, &spec["components"]["schemas"][name], v, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let fits = options
            .iter()
            .filter(|o| schema_violations(spec, o, v, at).is_empty())
            .count();
        return if fits == 1 {
            vec![]
        } else {
            vec![format!(
                "{at}: fits {fits} of the oneOf options, not exactly one"
            )]
        };
    }
    let mut out = Vec::new();
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {e:?}"));
    }
    let ok = match schema["type"].as_str() {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        out.push(format!("{at}: {v} is not of type {}", schema["type"]));
        return out;
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64())
        && (n < min || (schema["exclusiveMinimum"] == true && n == min))
    {
        out.push(format!("{at}: {n} is below the minimum {min}"));
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        if v.get(r.as_str().unwrap()).is_none() {
            out.push(format!("{at}: lacks required {r}"));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, sub) in props {
            if let Some(field) = v.get(k) {
                out.extend(schema_violations(spec, sub, field, &format!("{at}.{k}")));
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            out.extend(schema_violations(spec, items, item, &format!("{at}[{i}]")));
        }
    }
    out
}

/// A mock answer for `GET <template>`, checked against the spec's 200 schema first.
fn spec_answer(template: &str, body: Value) -> ResponseTemplate {
    let spec: Value =
        serde_json::from_slice(&std::fs::read(support::fixture("supabase/openapi.json")).unwrap())
            .unwrap();
    let schema = &spec["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "{template} has no 200 schema in the spec"
    );
    let violations = schema_violations(&spec, schema, &body, template);
    assert!(
        violations.is_empty(),
        "the mock disagrees with the spec: {violations:#?}"
    );
    ResponseTemplate::new(200).set_body_json(body)
}

/// A gp3 disk answer.
fn gp3(size_gb: u64, iops: u64, throughput: u64) -> Value {
    json!({"attributes": {"type": "gp3", "size_gb": size_gb, "iops": iops, "throughput_mibps": throughput}, "last_modified_at": "2026-11-02T10:00:00Z"})
}

/// A selected add-on: (type, variant id, name, interval, amount).
fn addon(kind: &str, id: &str, name: &str, interval: &str, amount: f64) -> Value {
    json!({"type": kind, "variant": {"id": id, "name": name, "price": {"description": format!("${amount} {interval}"), "type": "usage", "interval": interval, "amount": amount}}})
}

/// The project's disk and add-ons endpoints.
async fn mount_billing(mock: &MockServer, disk: Value, addons: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/config/disk")))
        .respond_with(spec_answer("/v1/projects/{ref}/config/disk", disk))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/billing/addons")))
        .respond_with(spec_answer(
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
            "hourly",
            0.01344,
        )],
    )
    .await;
}

/// The project's figures, without its billing endpoints.
async fn mount_project(mock: &MockServer) {
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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "timestamp": "2026-11-24T06:00:00Z",
            "metrics": {"fs_size_bytes": 8589934592u64, "fs_avail_bytes": 7516192768u64, "fs_used_bytes": 1073741824u64}
        })))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/functions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "fn-1", "slug": "send-email", "name": "send-email", "status": "ACTIVE", "version": 3, "created_at": 1, "updated_at": 2},
            {"id": "fn-2", "slug": "webhook", "name": "webhook", "status": "ACTIVE", "version": 1, "created_at": 1, "updated_at": 2},
            {"id": "fn-3", "slug": "idle", "name": "idle", "status": "ACTIVE", "version": 1, "created_at": 1, "updated_at": 2}
        ])))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{REF}/analytics/endpoints/logs.all")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "result": [{"function_id": "fn-1", "count": 1500}, {"function_id": "fn-2", "count": "25"}],
            "error": null
        })))
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
    assert_eq!(
        usage(
            &pg,
            "edge_function_invocations",
            &[("function", "send-email")]
        ),
        Some(1500.0)
    );
    assert_eq!(
        usage(&pg, "edge_function_invocations", &[("function", "webhook")]),
        Some(25.0)
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

    let requests = mock.received_requests().await.unwrap();
    let violations = spec_violations(&requests);
    assert!(violations.is_empty(), "{violations:#?}");
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
        7,
        "few requests: two queries, disk use, functions, logs, disk, add-ons"
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
            addon("compute_instance", "ci_small", "Small", "hourly", 0.0206),
            addon("pitr", "pitr_7", "7 days", "monthly", 100.0),
            addon("ipv4", "ipv4_default", "IPv4", "hourly", 0.0055),
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
        "[providers.supabase.limits]\nmonthly_active_users = 300\nedge_function_invocations = 1000\n",
    );
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let spend = |s: &str| pg.value(Some("supabase"), "cost_spend", &[("service", s)]);
    // (321 - 300) MAU × $0.00325 and (1525 - 1000) invocations × $2 per million.
    assert_eq!(spend("monthly_active_users"), Some(0.06825));
    assert_eq!(spend("edge_function_invocations"), Some(0.00105));
    assert_eq!(
        pg.value(
            Some("supabase"),
            "cost_usage_limit",
            &[("resource", "monthly_active_users")]
        ),
        Some(300.0)
    );
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
