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
    account: Account,
}

/// What the account holds, and the run's clock the mock answers for.
#[derive(Clone)]
pub struct Account {
    /// The run's time (`COST_EXPORTER_NOW`, or the system clock).
    pub now: OffsetDateTime,
    /// Operations per bucket and action, this month.
    pub operations: Vec<(&'static str, &'static str, u64)>,
    /// Storage per bucket, the same every day, in bytes.
    pub storage: Vec<(&'static str, f64)>,
    /// Workers CPU time per day, in microseconds (answered where the query asks for it).
    pub cpu_us_per_day: u64,
    /// Workers requests on each day but the first and the last (the first has 40,000, today
    /// 85,000).
    pub requests_per_day: u64,
    /// The subscriptions (the `result`); the fixture's when `None`.
    pub subscriptions: Option<Value>,
    /// The billing history items; the fixture's, after filler payments, when `None`.
    pub history: Option<Vec<Value>>,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            now: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
            operations: OPERATIONS.to_vec(),
            storage: STORAGE.to_vec(),
            cpu_us_per_day: 0,
            requests_per_day: 1_000,
            subscriptions: None,
            history: None,
        }
    }
}

/// The first of `now`'s month, 00:00 UTC.
fn month_start(now: OffsetDateTime) -> OffsetDateTime {
    now.date().replace_day(1).unwrap().midnight().assume_utc()
}

/// The fixtures' dates for a run at `now` ([`Dates::now`] for another clock).
fn dates_at(now: OffsetDateTime) -> Dates {
    let start = month_start(now);
    let end = crate::ovh::month_end(start);
    Dates {
        day1: start + (now - start) / 4,
        day2: start + (now - start) / 2,
        last_month: start - time::Duration::days(3),
        later: now + (end - now) / 2,
        next: end + time::Duration::days(3),
    }
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

/// The month's days so far at `now`; the last (today) has 85,000 Workers requests, the
/// first 40,000, the others `others`.
fn days(now: OffsetDateTime, others: u64) -> Vec<(time::Date, u64)> {
    let start = month_start(now).date();
    let today = now.date();
    let mut out = Vec::new();
    let mut d = start;
    while d <= today {
        let n = if d == today {
            85_000
        } else if d == start {
            40_000
        } else {
            others
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
    fn graphql_answer(&self, cpu: bool) -> Value {
        let workers: Vec<Value> = self
            .days
            .iter()
            .map(|(d, n)| {
                let mut sum = json!({"requests": n - n / 16});
                if cpu {
                    sum["cpuTimeUs"] = json!(self.account.cpu_us_per_day);
                }
                json!({"sum": sum, "dimensions": {"date": d.to_string()}})
            })
            .collect();
        let pages: Vec<Value> = self
            .days
            .iter()
            .map(|(d, n)| json!({"sum": {"requests": n / 16}, "dimensions": {"date": d.to_string()}}))
            .collect();
        let operations: Vec<Value> = self
            .account
            .operations
            .iter()
            .map(|(b, a, n)| json!({"sum": {"requests": n}, "dimensions": {"bucketName": b, "actionType": a}}))
            .collect();
        let mut storage = Vec::new();
        for (d, _) in &self.days {
            for &(b, bytes) in &self.account.storage {
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
        let start = month_start(self.account.now);
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
            GraphQl::Ok => self.spec.answer(
                "post",
                "/graphql",
                200,
                self.graphql_answer(query.contains("cpuTimeUs")),
            ),
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
        if let Some(items) = &self.account.history {
            return items.clone();
        }
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
                match &self.account.subscriptions {
                    Some(result) => json!({
                        "success": true, "errors": [], "messages": [], "result": result
                    }),
                    None => serde_json::from_str(&filled("subscriptions.json", d)).unwrap(),
                },
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
    mount_account(server, history, Account::default()).await
}

/// Mounts the API answering for `account` at its clock.
pub async fn mount_account(
    server: &MockServer,
    history: AccountHistory,
    account: Account,
) -> (Arc<Mutex<GraphQl>>, Arc<Mutex<AccountHistory>>) {
    let graphql = Arc::new(Mutex::new(GraphQl::Ok));
    let history = Arc::new(Mutex::new(history));
    Mock::given(wiremock::matchers::any())
        .respond_with(CloudflareApi {
            dates: dates_at(account.now),
            spec: Arc::new(spec()),
            graphql: Arc::clone(&graphql),
            history: Arc::clone(&history),
            days: days(account.now, account.requests_per_day),
            account,
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
    let days = days(OffsetDateTime::now_utc(), 1_000);
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

    // Money: this month's charge less its refund; the R2 overage estimate at list prices,
    // one series per allowance (Class A 1,101,000 → 1 million billed, Class B 11 million → 1
    // million billed, storage beyond 10 GB-month in whole GB-months); the Pro plan renewing
    // later this month.
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
    let r2 = |resource: &str| {
        spend(&[
            ("service", "r2"),
            ("resource", resource),
            ("basis", "estimated"),
        ])
        .unwrap()
    };
    assert_eq!(r2("r2_class_a_operations"), 4.50);
    assert_eq!(r2("r2_class_b_operations"), 0.36);
    // Storage up to the run: today counts for the part of it elapsed, so between n - 1 and n
    // days of 15 GB.
    let storage = r2("r2_storage");
    let over = |days: f64| (15.0 * days / 30.0 - 10.0).max(0.0).ceil() * 0.015;
    assert!(
        storage >= over(n - 1.0) - 1e-9 && storage <= over(n) + 1e-9,
        "{storage}"
    );
    // On the Free plan Workers requests are never charged (beyond the daily allowance they
    // are refused).
    assert_eq!(spend(&[("service", "workers")]), None);
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

/// A time given in RFC 3339.
fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

/// What `report` prints for Cloudflare (month to date, forecast) on `account`'s clock, with
/// the Workers `plan`, in `currency` (EUR at 0.92 a dollar).
async fn printed(account: Account, plan: &str, currency: &str) -> (String, String) {
    let now = rfc(account.now);
    let api = MockServer::start().await;
    mount_account(&api, AccountHistory::Available, account).await;
    let cfg = support::toml(&format!(
        "currency = \"{currency}\"\n[fx]\nUSD = 0.92\n\
         [providers.cloudflare]\nbase_url = \"{}/client/v4\"\nplan = \"{plan}\"\n",
        api.uri()
    ));
    let mut env = ENV.to_vec();
    env.push(("COST_EXPORTER_NOW", &now));
    let (spent, forecast, stderr) = support::printed(cfg.path(), &env, "cloudflare").await;
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert_requests_follow(&spec(), &api).await;
    (spent.unwrap(), forecast.unwrap())
}

/// An account with no subscription and no charge yet: only R2 and Workers usage.
fn usage_only(now: &str) -> Account {
    Account {
        now: at(now),
        operations: vec![],
        storage: vec![],
        subscriptions: Some(json!([])),
        history: Some(vec![]),
        ..Account::default()
    }
}

/// Issue 23, row "Cloudflare R2, day 7": the free tiers come off the usage projected to the
/// month's end, not off the usage so far.
///
/// The run: 7 December 2026 at 03:14 UTC, 6 days 3 h 14 min (530,040 s) into a 31-day month
/// (2,678,400 s): f = 2,678,400 ÷ 530,040 = 5.0532; the dollar at 0.92 €. The bucket: 12 GB
/// stored every day, 3 million Class B operations so far, and 1.2 million (then 0.9 million)
/// Class A.
///
/// What the invoice will say, the usage going on at the same rate:
/// - Class A: 1.2 M × f = 6.06 M, 5.06 M beyond the free million, billed as 6 millions ×
///   $4.50 = $27.00 (0.9 M: 4.55 M, 3.55 M beyond, 4 millions = $18.00);
/// - Class B: 3 M × f = 15.16 M, 5.16 M beyond the free 10 M, 6 millions × $0.36 = $2.16;
/// - storage: 12 GB all month is 12 × 31 ÷ 30 = 12.4 GB-months, 2.4 beyond the free 10,
///   billed as 3 × $0.015 = $0.045;
/// - in all $29.205 × 0.92 = 26.8686 → **26.87 €** (0.9 M: $20.205 → 18.5886 → **18.59 €**).
///
/// What the job printed (the table's left column): only what was already beyond a free tier,
/// the $4.50 of the first million Class A, extrapolated: 4.50 × f × 0.92 = **20.92 €**; with
/// 0.9 M nothing was beyond yet: **0**. Class B and storage, under their free tiers so far,
/// were never seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_free_tiers_come_off_the_usage_projected_to_the_month_s_end() {
    for (class_a, spent, invoice) in [(1_200_000, "4.14", "26.87"), (900_000, "0.00", "18.59")] {
        let account = Account {
            operations: vec![
                ("media", "PutObject", class_a),
                ("media", "GetObject", 3_000_000),
                ("media", "DeleteObject", 40_000),
            ],
            storage: vec![("media", 12e9)],
            ..usage_only("2026-12-07T03:14:00Z")
        };
        let (mtd, forecast) = printed(account, "free", "EUR").await;
        // Month to date: what is already beyond a free tier (the first million Class A,
        // $4.50 × 0.92), never the projection.
        assert_eq!(mtd, spent, "{class_a} Class A so far");
        assert_eq!(forecast, invoice, "{class_a} Class A so far");
    }
}

/// Renewals at the month's boundary, the run's clock faked: a subscription renewing at 00:00
/// UTC on the 1st is next month's bill (it was counted in this month's forecast: `at <= 1st
/// of next month`); Cloudflare's calendar is UTC, so a renewal at midnight in Paris (23:00
/// UTC in winter, 22:00 in summer) is the month before's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_renewing_at_the_next_month_s_start_is_next_month_s() {
    let subscription = |end: &str, price: u32, frequency: &str| {
        json!({
            "id": format!("sub-{end}"), "currency": "USD", "current_period_end": end,
            "frequency": frequency, "price": price,
            "rate_plan": {"id": "pro", "public_name": "Pro Plan", "scope": "zone"},
            "state": "Paid"
        })
    };
    let charge = |when: &str, amount: u32| {
        json!({
            "id": format!("c-{when}"), "action": "subscription", "amount": amount,
            "currency": "USD", "description": "Pro Plan", "occurred_at": when,
            "type": "charge"
        })
    };
    // The last second of December: the Pro plan renews at 00:00 on 1 January, and a yearly
    // plan in June; December owes neither (was 20 × 0.92 = 18.40).
    let account = Account {
        subscriptions: Some(json!([
            subscription("2027-01-01T00:00:00Z", 20, "monthly"),
            subscription("2027-06-01T00:00:00Z", 240, "yearly"),
        ])),
        ..usage_only("2026-12-31T23:59:59Z")
    };
    assert_eq!(
        printed(account, "free", "EUR").await,
        ("0.00".into(), "0.00".into())
    );
    // The first second of January: the renewal is billed (in the history at 00:00) and
    // counted once, in January.
    let account = Account {
        subscriptions: Some(json!([
            subscription("2027-02-01T00:00:00Z", 20, "monthly"),
            subscription("2027-06-01T00:00:00Z", 240, "yearly"),
        ])),
        history: Some(vec![charge("2027-01-01T00:00:00Z", 20)]),
        ..usage_only("2027-01-01T00:00:00Z")
    };
    assert_eq!(
        printed(account, "free", "EUR").await,
        ("18.40".into(), "18.40".into())
    );
    // Midnight in Paris is still the month before in UTC: in winter (1 December 00:00 +01:00,
    // 23:00 UTC on 30 November) and in summer (1 July 00:00 +02:00, 22:00 UTC on 30 June), a
    // run an hour before it counts the renewal in the month that ends.
    for (now, renews) in [
        ("2026-11-30T22:00:00Z", "2026-12-01T00:00:00+01:00"),
        ("2026-06-30T21:00:00Z", "2026-07-01T00:00:00+02:00"),
    ] {
        let account = Account {
            subscriptions: Some(json!([subscription(renews, 20, "monthly")])),
            ..usage_only(now)
        };
        assert_eq!(
            printed(account, "free", "EUR").await,
            ("0.00".into(), "18.40".into()),
            "{renews}"
        );
    }
    // A weekly subscription renews again within the month: on the 22nd and the 29th.
    let account = Account {
        subscriptions: Some(json!([subscription("2026-12-22T00:00:00Z", 1, "weekly")])),
        ..usage_only("2026-12-20T00:00:00Z")
    };
    assert_eq!(
        printed(account, "free", "USD").await,
        ("0.00".into(), "2.00".into())
    );
}

/// Workers Paid: requests and CPU time beyond the monthly allowances, projected over the
/// month, in a leap February (29 days) and a common one (28). The run: the 15th at 00:00 UTC,
/// 14 days in; 15 days of data (the 1st has 40,000 requests, the 15th 85,000, each other day
/// 456,789): 6,063,257 requests; CPU 2,050 s a day, 30,750,000 ms.
///
/// - 2028 (29 days, × 29/14): requests 12,559,603.9, 2,559,604 beyond 10 million × $0.30 a
///   million = $0.7678812; CPU 63,696,428.6 ms, 33,696,429 beyond 30 million × $0.02 a
///   million = $0.67392858; **$1.44**.
/// - 2027 (28 days, × 2): 12,126,514 requests, $0.6379542; 61,500,000 ms, $0.63; **$1.27**.
///
/// The job priced no Workers usage before: it printed 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_paid_usage_is_projected_to_the_month_s_end_in_a_leap_february() {
    for (now, forecast) in [
        ("2028-02-15T00:00:00Z", "1.44"),
        ("2027-02-15T00:00:00Z", "1.27"),
    ] {
        let account = Account {
            requests_per_day: 456_789,
            cpu_us_per_day: 2_050_000_000,
            ..usage_only(now)
        };
        // So far: 750,000 ms of CPU beyond the allowance, $0.015; requests under it.
        assert_eq!(
            printed(account, "paid", "USD").await,
            ("0.02".into(), forecast.into()),
            "{now}"
        );
    }
}
