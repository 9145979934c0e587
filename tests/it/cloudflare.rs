//! The Cloudflare collector end to end against a loopback mock: every request checked against
//! the description pinned in `tests/fixtures/cloudflare/openapi.json` (derived from the
//! generated SDK's types) and every REST answer validated by it; GraphQL answers in the
//! documented shapes (an `errors` array with HTTP 200, a 429 with `retry-after`), REST answers in
//! the v4 envelope paged as `V4PagePaginationArray` promises (`page` and `per_page` only, no
//! `total_pages`), the bearer token checked; the real binary, a real Pushgateway, and a real
//! Prometheus with the shipped rules for the daily Workers allowance.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::{Spec, assert_requests_follow};
use crate::ovh::Dates;
use crate::support::{self, Prometheus, Pushgateway};

pub const TOKEN: &str = "cf-test-token-6c1d";
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// What the GraphQL endpoint does next.
#[derive(Clone, Copy, PartialEq)]
pub enum GraphQl {
    Ok,
    /// `errors` with HTTP 200.
    Errors,
    /// One 429 with `retry-after: 1`, then answers.
    RateLimitedOnce,
}

/// Whether `/accounts/{id}/billing/history` exists for the token.
#[derive(Clone, Copy, PartialEq)]
pub enum AccountHistory {
    Available,
    /// Cloudflare's answer for a route it does not have: 404, code 7003.
    Absent,
}

/// Payments that settle nothing this month, served before the fixture's items so that the
/// items that count are past the first page.
const FILLER_PAYMENTS: usize = 60;
/// Deployments of `site` this month beyond the fixture's, so that its listing takes pages.
const EXTRA_BUILDS: usize = 30;

pub struct CloudflareApi {
    dates: Dates,
    spec: Arc<Spec>,
    pub graphql: Arc<Mutex<GraphQl>>,
    pub history: Arc<Mutex<AccountHistory>>,
    /// Every day of the month so far, with the Workers requests of that day.
    days: Vec<(time::Date, u64)>,
}

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn filled(name: &str, d: &Dates) -> String {
    std::fs::read_to_string(support::fixture(&format!("cloudflare/{name}")))
        .unwrap()
        .replace("{{DAY1}}", &rfc(d.day1))
        .replace("{{DAY2}}", &rfc(d.day2))
        .replace("{{LAST_MONTH}}", &rfc(d.last_month))
        .replace("{{LATER}}", &rfc(d.later))
        .replace("{{NEXT}}", &rfc(d.next))
}

/// The month's days so far; the last (today) has 85,000 Workers requests, the first 40,000.
fn days() -> Vec<(time::Date, u64)> {
    let start = support::month_start().date();
    let today = OffsetDateTime::now_utc().date();
    let mut out = Vec::new();
    let mut d = start;
    while d <= today {
        let n = if d == today {
            85_000
        } else if d == start {
            40_000
        } else {
            1_000
        };
        out.push((d, n));
        d = d.next_day().unwrap();
    }
    out
}

/// Storage per bucket and day, in bytes: a steady 12 GB and 3 GB.
const STORAGE: [(&str, f64); 2] = [("assets", 12e9), ("logs", 3e9)];
/// Operations per bucket and action.
const OPERATIONS: [(&str, &str, u64); 6] = [
    ("assets", "PutObject", 600_000),
    ("assets", "ListObjects", 500_000),
    ("assets", "GetObject", 9_000_000),
    ("assets", "DeleteObject", 50_000),
    ("logs", "HeadObject", 2_000_000),
    ("logs", "PutObject", 1_000),
];

/// The description the mock holds requests and answers to.
pub fn spec() -> Spec {
    Spec::load("cloudflare/openapi.json").with_prefix("/client/v4")
}

/// The v4 error envelope.
fn refusal(status: u16, code: u64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null
    }))
}

/// Page `page` of `items`, `per_page` to a page, in the v4 envelope with only what
/// `V4PagePaginationArray` promises in `result_info`.
fn paged(items: &[Value], page: u64, per_page: u64) -> Value {
    let chunk: Vec<Value> = items
        .chunks(per_page as usize)
        .nth(page as usize - 1)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    json!({
        "success": true, "errors": [], "messages": [], "result": chunk,
        "result_info": {"page": page, "per_page": per_page}
    })
}

impl CloudflareApi {
    fn graphql_answer(&self) -> Value {
        let workers: Vec<Value> = self
            .days
            .iter()
            .map(|(d, n)| json!({"sum": {"requests": n - n / 16}, "dimensions": {"date": d.to_string()}}))
            .collect();
        let pages: Vec<Value> = self
            .days
            .iter()
            .map(|(d, n)| json!({"sum": {"requests": n / 16}, "dimensions": {"date": d.to_string()}}))
            .collect();
        let operations: Vec<Value> = OPERATIONS
            .iter()
            .map(|(b, a, n)| json!({"sum": {"requests": n}, "dimensions": {"bucketName": b, "actionType": a}}))
            .collect();
        let mut storage = Vec::new();
        for (d, _) in &self.days {
            for (b, bytes) in STORAGE {
                // Two readings a day: the peak counts.
                for reading in [bytes / 2.0, bytes] {
                    storage.push(json!({
                        "max": {"payloadSize": reading - 1e8, "metadataSize": 1e8, "objectCount": 1000},
                        "dimensions": {"bucketName": b, "date": d.to_string()}
                    }));
                }
            }
        }
        json!({"data": {"viewer": {"accounts": [{
            "workers": workers, "pages": pages, "operations": operations, "storage": storage
        }]}}, "errors": null})
    }

    fn graphql(&self, req: &Request) -> ResponseTemplate {
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return ResponseTemplate::new(400);
        };
        let vars = &body["variables"];
        let start = support::month_start();
        let query = body["query"].as_str().unwrap_or_default();
        let good = ct == "application/json"
            && vars["account"] == ACCOUNT
            && vars["start"] == start.date().to_string()
            && vars["from"]
                .as_str()
                .is_some_and(|t| OffsetDateTime::parse(t, &Rfc3339).ok() == Some(start))
            && vars["end"].as_str().is_some()
            && [
                "workersInvocationsAdaptive",
                "pagesFunctionsInvocationsAdaptiveGroups",
                "r2OperationsAdaptiveGroups",
                "r2StorageAdaptiveGroups",
            ]
            .iter()
            .all(|d| query.contains(d));
        if !good {
            return ResponseTemplate::new(200).set_body_json(json!({
                "data": null, "errors": [{"message": "the request does not match the schema"}]
            }));
        }
        let mut mode = self.graphql.lock().unwrap();
        match *mode {
            GraphQl::Ok => self
                .spec
                .answer("post", "/graphql", 200, self.graphql_answer()),
            GraphQl::Errors => self.spec.answer("post", "/graphql", 200, json!({
                "data": null,
                "errors": [{"message": "quota exceeded for dataset r2StorageAdaptiveGroups", "path": ["viewer"], "extensions": {"code": "budget"}}]
            })),
            GraphQl::RateLimitedOnce => {
                *mode = GraphQl::Ok;
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "1")
                    .set_body_json(json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}]}))
            }
        }
    }
}

impl CloudflareApi {
    /// The account's billing history: filler payments, then the fixture's items.
    fn history_items(&self) -> Vec<Value> {
        let mut items: Vec<Value> = (0..FILLER_PAYMENTS)
            .map(|i| {
                json!({
                    "id": format!("p{i}"), "action": "subscription", "amount": 0.5, "currency": "USD",
                    "description": "Card payment", "occurred_at": rfc(self.dates.day1),
                    "status": "paid", "type": "payment"
                })
            })
            .collect();
        items.extend(
            serde_json::from_str::<Vec<Value>>(&filled("billing-history.json", &self.dates))
                .unwrap(),
        );
        items
    }

    /// Deployments of `project`, newest first: `site` has [`EXTRA_BUILDS`] more this month.
    fn deployments(&self, pages: &Value, project: &str) -> Option<Vec<Value>> {
        let mut all = pages["deployments"][project].as_array()?.clone();
        if project == "site" {
            let template = all[0].clone();
            for i in 0..EXTRA_BUILDS {
                let mut d = template.clone();
                d["id"] = json!(format!("extra-{i}"));
                d["short_id"] = json!(format!("extra{i:03}"));
                all.insert(0, d);
            }
        }
        Some(all)
    }
}

impl Respond for CloudflareApi {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != format!("Bearer {TOKEN}") {
            return refusal(403, 10000, "Authentication error");
        }
        // What the description does not allow, Cloudflare refuses (and the test fails on it).
        let violations = self.spec.request_violations(req);
        if !violations.is_empty() {
            return refusal(400, 8000024, &violations.join("; "));
        }
        let path = req.url.path().trim_start_matches("/client/v4");
        if path == "/graphql" {
            return self.graphql(req);
        }
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let per_page: u64 = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(20);
        let d = &self.dates;
        let answer = |template: &str, body: Value| self.spec.answer("get", template, 200, body);
        if path == "/user/billing/history" {
            // The deprecated user endpoint: every field required, and a zone.
            let mut items: Vec<Value> = self
                .history_items()
                .into_iter()
                .filter(|i| i.get("amount").is_some())
                .map(|mut i| {
                    i["zone"] = json!({"name": "example.org"});
                    i
                })
                .collect();
            // A type that echoes the token: named in a warning, but never the token itself.
            items.push(json!({
                "id": "b8", "action": "subscription", "amount": 1.0, "currency": "USD",
                "description": "echo", "occurred_at": rfc(self.dates.day2), "type": TOKEN,
                "zone": {"name": "example.org"}
            }));
            return answer("/user/billing/history", paged(&items, page, per_page));
        }
        let Some(rest) = path.strip_prefix(&format!("/accounts/{ACCOUNT}")) else {
            return refusal(
                404,
                7003,
                "Could not route to the path, perhaps your object identifier is invalid?",
            );
        };
        match rest {
            "/subscriptions" => answer(
                "/accounts/{account_id}/subscriptions",
                serde_json::from_str(&filled("subscriptions.json", d)).unwrap(),
            ),
            "/billing/history" => {
                if *self.history.lock().unwrap() == AccountHistory::Absent {
                    return refusal(
                        404,
                        7003,
                        "Could not route to /accounts/billing/history, perhaps your object identifier is invalid?",
                    );
                }
                answer(
                    "/accounts/{account_id}/billing/history",
                    paged(&self.history_items(), page, per_page),
                )
            }
            "/tokens/verify" => answer(
                "/accounts/{account_id}/tokens/verify",
                json!({"success": true, "errors": [], "messages": [], "result": {"id": "t", "status": "active"}}),
            ),
            "/pages/projects" => {
                let p: Value = serde_json::from_str(&filled("pages.json", d)).unwrap();
                let projects = p["projects"].as_array().unwrap().clone();
                answer(
                    "/accounts/{account_id}/pages/projects",
                    paged(&projects, page, per_page),
                )
            }
            other => {
                let Some(project) = other
                    .strip_prefix("/pages/projects/")
                    .and_then(|r| r.strip_suffix("/deployments"))
                else {
                    return refusal(404, 7003, "Could not route to the path");
                };
                let p: Value = serde_json::from_str(&filled("pages.json", d)).unwrap();
                let Some(all) = self.deployments(&p, project) else {
                    return refusal(404, 8000007, "Project not found.");
                };
                answer(
                    "/accounts/{account_id}/pages/projects/{project_name}/deployments",
                    paged(&all, page, per_page),
                )
            }
        }
    }
}

/// Mounts the API under `/client/v4`; returns the GraphQL switch.
pub async fn mount(server: &MockServer) -> Arc<Mutex<GraphQl>> {
    mount_with(server, AccountHistory::Available).await.0
}

/// Mounts the API with the account billing history available or not.
pub async fn mount_with(
    server: &MockServer,
    history: AccountHistory,
) -> (Arc<Mutex<GraphQl>>, Arc<Mutex<AccountHistory>>) {
    let graphql = Arc::new(Mutex::new(GraphQl::Ok));
    let history = Arc::new(Mutex::new(history));
    Mock::given(wiremock::matchers::any())
        .respond_with(CloudflareApi {
            dates: Dates::now(),
            spec: Arc::new(spec()),
            graphql: Arc::clone(&graphql),
            history: Arc::clone(&history),
            days: days(),
        })
        .mount(server)
        .await;
    (graphql, history)
}

pub fn section(server: &MockServer) -> String {
    format!(
        "[providers.cloudflare]\nbase_url = \"{}/client/v4\"\nbudget = 30\n",
        server.uri()
    )
}

pub const ENV: &[(&str, &str)] = &[
    ("CLOUDFLARE_API_TOKEN", TOKEN),
    ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
];

fn usage(pg: &Pushgateway, resource: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut all = vec![("resource", resource)];
    all.extend_from_slice(labels);
    pg.value(Some("cloudflare"), "cost_usage", &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_tier_usage_is_reported_against_the_allowances_and_fires_the_daily_warning() {
    let api = MockServer::start().await;
    let graphql = mount(&api).await;
    *graphql.lock().unwrap() = GraphQl::RateLimitedOnce;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n{}",
        pg.url,
        section(&api)
    ));
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(0), "{stderr}");

    // Workers (Pages Functions included): today's 85,000, the peak day, the month.
    let days = days();
    assert_eq!(usage(&pg, "workers_requests_today", &[]), Some(85_000.0));
    assert_eq!(usage(&pg, "workers_requests_peak_day", &[]), Some(85_000.0));
    let month: u64 = days.iter().map(|(_, n)| n).sum();
    assert_eq!(usage(&pg, "workers_requests", &[]), Some(month as f64));
    let limit = |r: &str| pg.value(Some("cloudflare"), "cost_usage_limit", &[("resource", r)]);
    assert_eq!(limit("workers_requests_today"), Some(100_000.0));
    assert_eq!(limit("r2_class_a_operations"), Some(1_000_000.0));
    assert_eq!(limit("r2_storage"), Some(10.0));
    assert_eq!(limit("pages_builds"), Some(500.0));

    // R2: GB-months from the days' peaks over 30 days, operations by class, deletes free.
    let n = days.len() as f64;
    let gbm = |b: &str| usage(&pg, "r2_storage", &[("bucket", b)]).unwrap();
    assert!(
        (gbm("assets") - 12.0 * n / 30.0).abs() < 1e-9,
        "{}",
        gbm("assets")
    );
    assert!((gbm("logs") - 3.0 * n / 30.0).abs() < 1e-9);
    assert_eq!(usage(&pg, "r2_stored", &[("bucket", "assets")]), Some(12e9));
    assert_eq!(
        usage(&pg, "r2_class_a_operations", &[("bucket", "assets")]),
        Some(1_100_000.0)
    );
    assert_eq!(
        usage(&pg, "r2_class_b_operations", &[("bucket", "assets")]),
        Some(9_000_000.0)
    );
    assert_eq!(
        usage(&pg, "r2_class_a_operations", &[("bucket", "logs")]),
        Some(1_000.0)
    );
    assert_eq!(
        usage(&pg, "r2_class_b_operations", &[("bucket", "logs")]),
        Some(2_000_000.0)
    );
    // Pages: the deployments created this month, over pages of 25 (the most the API takes).
    assert_eq!(
        usage(&pg, "pages_builds", &[]),
        Some(4.0 + EXTRA_BUILDS as f64)
    );

    // Money: this month's charge less its refund; the R2 overage estimate at list prices
    // (Class A 1,101,000 → 1 million billed, Class B 11 million → 1 million billed, storage
    // beyond 10 GB-month in whole GB-months); the Pro plan renewing later this month.
    let spend = |labels: &[(&str, &str)]| pg.value(Some("cloudflare"), "cost_spend", labels);
    // The items that count are past the first page: the listing reads on without total_pages.
    assert_eq!(spend(&[("service", "billing")]), Some(4.0));
    // An item of a type the job does not know, and a charge without an amount: skipped, named,
    // counted; never read as 0 and never failing the provider.
    let skipped = |reason: &str| {
        pg.value(
            Some("cloudflare"),
            "cost_collector_records_skipped",
            &[("reason", reason)],
        )
    };
    assert_eq!(skipped("unknown_type"), Some(1.0));
    assert_eq!(skipped("missing_field"), Some(1.0));
    assert!(
        stderr.contains("\"invoice_adjustment\"")
            && stderr.contains("b7")
            && stderr.contains("no amount"),
        "{stderr}"
    );
    let storage_over = (15.0 * n / 30.0 - 10.0).max(0.0).ceil();
    let overage = storage_over * 0.015 + 4.50 + 0.36;
    let estimate = spend(&[("service", "r2"), ("basis", "estimated")]).unwrap();
    assert!((estimate - overage).abs() < 1e-9, "{estimate} vs {overage}");
    assert_eq!(
        pg.value(
            Some("cloudflare"),
            "cost_renewal_price",
            &[("name", "Pro Plan")]
        ),
        Some(20.0)
    );
    assert_eq!(
        pg.value(
            Some("cloudflare"),
            "cost_renewal_price",
            &[("name", "Workers Paid")]
        ),
        Some(5.0)
    );
    assert_eq!(pg.series(Some("cloudflare"), "cost_renewal_price").len(), 2);

    // BudgetWarning fires on the daily allowance in a real Prometheus with the shipped rules.
    let rules = support::repo("monitoring/prometheus/rules");
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}/*.yml\n\
         scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['{}']\n",
        rules.display(),
        pg.url.trim_start_matches("http://")
    ));
    tokio::task::spawn_blocking(move || {
        prom.wait_for(
            r#"ALERTS{alertname="BudgetWarning",provider="cloudflare",resource="workers_requests_today",alertstate="firing"}"#,
            |v| v == 1.0,
            Duration::from_secs(30),
        );
    })
    .await
    .unwrap();

    // Every call was a GET but the one GraphQL POST (and its retry after the 429).
    let requests = api.received_requests().await.unwrap();
    let posts: Vec<&Request> = requests
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .collect();
    assert_eq!(posts.len(), 2, "one query, retried once after the 429");
    assert!(posts.iter().all(|r| r.url.path() == "/client/v4/graphql"));
    assert!(!stderr.contains(TOKEN) && !pg.dump().contains(TOKEN));
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn billing_history_falls_back_to_the_user_endpoint_where_the_account_one_is_absent() {
    let api = MockServer::start().await;
    mount_with(&api, AccountHistory::Absent).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n{}",
        pg.url,
        section(&api)
    ));
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        pg.value(Some("cloudflare"), "cost_spend", &[("service", "billing")]),
        Some(4.0)
    );
    let requests = api.received_requests().await.unwrap();
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert!(
        paths.contains(&"/client/v4/user/billing/history"),
        "{paths:?}"
    );
    assert!(stderr.contains("/user/billing/history"), "{stderr}");
    assert_eq!(
        pg.value(
            Some("cloudflare"),
            "cost_collector_records_skipped",
            &[("reason", "unknown_type")]
        ),
        Some(2.0)
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert_requests_follow(&spec(), &api).await;
}

/// The control: the description catches what Cloudflare would refuse, and what it never sends.
#[tokio::test]
async fn the_pinned_description_catches_an_off_description_request_and_answer() {
    let api = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = format!("{}/client/v4/accounts/{ACCOUNT}", api.uri());
    for url in [
        // 50 deployments a page: Cloudflare answers error 8000024.
        format!("{base}/pages/projects/site/deployments?page=1&per_page=50"),
        // An account id in capitals.
        format!(
            "{}/client/v4/accounts/{}/subscriptions",
            api.uri(),
            ACCOUNT.to_uppercase()
        ),
    ] {
        client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    }
    // No token at all.
    client
        .get(format!("{base}/subscriptions"))
        .send()
        .await
        .unwrap();
    let spec = spec();
    let requests = api.received_requests().await.unwrap();
    for r in &requests {
        assert!(!spec.request_violations(r).is_empty(), "{} passed", r.url);
    }
    // Well-formed: no violation.
    client
        .get(format!("{base}/pages/projects?page=2&per_page=25"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let last = api.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(spec.request_violations(&last), Vec::<String>::new());
    // An amount as a string, and a deployment without created_on, are not what it answers.
    let history = json!({"success": true, "errors": [], "messages": [], "result": [{"amount": "5.00", "type": "charge"}], "result_info": {"page": 1, "per_page": 25}});
    assert!(
        !spec
            .answer_violations(
                "get",
                "/accounts/{account_id}/billing/history",
                200,
                &history
            )
            .is_empty()
    );
    let pages: Value = serde_json::from_str(&filled("pages.json", &Dates::now())).unwrap();
    let mut deployment = pages["deployments"]["site"][0].clone();
    let good = json!({"success": true, "errors": [], "messages": [], "result": [deployment.clone()], "result_info": {"page": 1, "per_page": 25}});
    let template = "/accounts/{account_id}/pages/projects/{project_name}/deployments";
    assert_eq!(
        spec.answer_violations("get", template, 200, &good),
        Vec::<String>::new()
    );
    deployment.as_object_mut().unwrap().remove("created_on");
    let bad = json!({"success": true, "errors": [], "messages": [], "result": [deployment], "result_info": {"page": 1, "per_page": 25}});
    assert!(
        !spec
            .answer_violations("get", template, 200, &bad)
            .is_empty()
    );
}

#[tokio::test]
async fn graphql_errors_in_a_200_answer_are_a_query_failure_and_the_last_figures_stay() {
    let api = MockServer::start().await;
    let graphql = mount(&api).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n{}",
        pg.url,
        section(&api)
    ));
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(0), "{stderr}");
    *graphql.lock().unwrap() = GraphQl::Errors;
    let (code, stderr) = support::push(cfg.path(), ENV).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("the GraphQL query failed") && stderr.contains("quota exceeded"),
        "{stderr}"
    );
    assert_eq!(
        pg.value(
            Some("cloudflare"),
            "cost_collector_errors_total",
            &[("reason", "query")]
        ),
        Some(1.0)
    );
    assert_eq!(usage(&pg, "workers_requests_today", &[]), Some(85_000.0));

    // A token without the right permission: a bounded auth failure that names them.
    let env = [
        ("CLOUDFLARE_API_TOKEN", "cf-wrong-token-0000"),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("Account Analytics"), "{stderr}");
    assert!(!stderr.contains("cf-wrong-token-0000") && !stderr.contains(TOKEN));
}

#[tokio::test]
async fn a_token_without_an_account_id_is_reported_not_silently_skipped() {
    let out = support::run(&["check"], &[("CLOUDFLARE_API_TOKEN", TOKEN)]);
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("not configured (a token but no account id)"),
        "{stdout}"
    );
    assert!(stderr.contains("CLOUDFLARE_ACCOUNT_ID"), "{stderr}");
    let out = support::run(
        &["check"],
        &[
            ("CLOUDFLARE_API_TOKEN", TOKEN),
            ("CLOUDFLARE_ACCOUNT_ID", "not-an-id"),
        ],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CLOUDFLARE_ACCOUNT_ID") && stderr.contains("32 lowercase hexadecimal"),
        "{stderr}"
    );
    // The documented shape is lowercase: an id in capitals is refused by check, before any
    // request, not sent to fail at run time.
    let out = support::run(
        &["check"],
        &[
            ("CLOUDFLARE_API_TOKEN", TOKEN),
            ("CLOUDFLARE_ACCOUNT_ID", &ACCOUNT.to_uppercase()),
        ],
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CLOUDFLARE_ACCOUNT_ID"), "{stderr}");
}
