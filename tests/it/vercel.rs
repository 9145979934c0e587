//! The Vercel collector end to end: a loopback mock serving the documented payloads, the real
//! binary, a real Pushgateway; pushed values compared with sums computed here from the fixtures.
//! Billing-charges requests and records are held to `tests/fixtures/vercel/openapi.json`
//! (derived from the generated SDK's models); `/v2/usage` is in no published description.

use std::collections::BTreeMap;
use std::io::Write;

use rust_decimal::Decimal;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::contract::Spec;
use crate::support::{self, Pushgateway};

const TOKEN: &str = "vercel-test-token-0815";
const TEAM: &str = "team_test123";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::fixture(&format!("vercel/{name}"))).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// `YYYY-MM-01T00:00:00Z` of the current month, computed without the code under test.
/// `YYYY-MM-01T00:00:00Z` of the current month.
fn month_start_text() -> String {
    support::month_start()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The description billing-charges requests and records are held to.
fn spec() -> Spec {
    Spec::load("vercel/openapi.json")
}

/// What the description says of a charges request, and what it cannot say in OpenAPI: the
/// range from..to is forward and at most a year.
fn charges_violations(spec: &Spec, req: &Request) -> Vec<String> {
    let mut out = spec.request_violations(req);
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let at = |k: &str| {
        q.get(k).and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    if let (Some(from), Some(to)) = (at("from"), at("to"))
        && !(from < to && to - from <= time::Duration::days(366))
    {
        out.push(format!(
            "from {from} to {to}: not a forward range of at most a year"
        ));
    }
    out
}

/// Asserts that every billing-charges request `mock` received follows the description.
async fn assert_charges_follow(mock: &MockServer) {
    let spec = spec();
    let requests = mock.received_requests().await.unwrap();
    let charges: Vec<&Request> = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/billing/charges")
        .collect();
    assert!(!charges.is_empty(), "no charges request");
    let v: Vec<String> = charges
        .iter()
        .flat_map(|r| charges_violations(&spec, r))
        .collect();
    assert!(v.is_empty(), "{v:#?}");
}

/// Checks what every request to Vercel must carry: the token, the team, a month window.
fn well_formed(req: &Request) -> bool {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    let auth_ok = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    let follows =
        req.url.path() != "/v1/billing/charges" || charges_violations(&spec(), req).is_empty();
    auth_ok
        && follows
        && q.get("teamId").map(String::as_str) == Some(TEAM)
        && q.get("from") == Some(&month_start_text())
        && q.get("to")
            .is_some_and(|t| t.as_str() > month_start_text().as_str())
}

fn config(pg: &str, mock: &str, extra: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 2\n\
         [providers.vercel]\nbase_url = \"{mock}\"\nplan = \"hobby\"\ntop_projects = 3\nbudget = 20\n{extra}"
    ))
}

async fn push(
    config: &tempfile::NamedTempFile,
    extra_env: &[(&'static str, &'static str)],
) -> (Option<i32>, String) {
    let mut env = vec![("VERCEL_API_TOKEN", TOKEN), ("VERCEL_TEAM_ID", TEAM)];
    env.extend_from_slice(extra_env);
    support::push(config.path(), &env).await
}

/// A Vercel mock whose billing charges answer `response`.
async fn charges_server(response: ResponseTemplate) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(response)
        .mount(&mock)
        .await;
    mock
}

/// Expected sums from `charges.jsonl`, computed independently of the collector: usage per
/// (resource, unit, project), billed per (project, category) and effective per project, with the
/// projects outside the top 3 by usage (web, api, docs) summed as `other` and records without a
/// project as `unattributed`. The one credit (web's) comes off web's usage. The tax record is
/// left out: taxes are excluded, the job's default basis.
struct Expected {
    usage: BTreeMap<(String, String, String), f64>,
    billed: BTreeMap<(String, String), Decimal>,
    effective: BTreeMap<String, Decimal>,
    /// Credit deducted from usage.
    credit: Decimal,
}

fn expected() -> Expected {
    let text = String::from_utf8(fixture("charges.jsonl")).unwrap();
    let mut e = Expected {
        usage: BTreeMap::new(),
        billed: BTreeMap::new(),
        effective: BTreeMap::new(),
        credit: Decimal::ZERO,
    };
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["ChargeCategory"] == "Tax" {
            continue;
        }
        let project = match r["Tags"]["ProjectName"].as_str() {
            Some(p @ ("web" | "api" | "docs")) => p.to_owned(),
            None => "unattributed".to_owned(),
            _ => "other".to_owned(),
        };
        let (resource, unit, factor) = match r["ServiceName"].as_str().unwrap() {
            "Function Invocations" => ("function_invocations", "requests", 1.0),
            "Fast Data Transfer" => ("fast_data_transfer", "bytes", 1e9),
            "Edge Requests" => ("edge_requests", "requests", 1.0),
            "Active CPU" => ("active_cpu", "seconds", 3600.0),
            "Provisioned Memory" => ("provisioned_memory", "gigabyte_hours", 1.0),
            "Image Optimization Transformations" => {
                ("image_optimization_transformations", "count", 1.0)
            }
            "Credits" => ("credits", "count", 1.0),
            "Pro Plan" => ("pro_plan", "count", 1.0),
            "Sales Tax" => ("sales_tax", "count", 1.0),
            "Billing Adjustment" => ("billing_adjustment", "count", 1.0),
            other => panic!("fixture service {other} not mapped in the test"),
        };
        *e.usage
            .entry((resource.into(), unit.into(), project.clone()))
            .or_default() += r["ConsumedQuantity"].as_f64().unwrap() * factor;
        let dec = |v: &serde_json::Value| v.to_string().parse::<Decimal>().unwrap();
        let category = r["ChargeCategory"].as_str().unwrap().to_lowercase();
        if category == "credit" {
            *e.billed
                .entry((project.clone(), "usage".into()))
                .or_default() += dec(&r["BilledCost"]);
            e.credit -= dec(&r["BilledCost"]);
        } else {
            *e.billed.entry((project.clone(), category)).or_default() += dec(&r["BilledCost"]);
        }
        *e.effective.entry(project).or_default() += dec(&r["EffectiveCost"]);
    }
    e
}

/// The forecast the job should push for the fixtures, run now: what is billed, plus usage
/// extrapolated over the data's time (up to the last ChargePeriodEnd, 2026-11-04T07:00Z, within
/// the current month) with the credit deducted once; under 48 hours of data, usage as is.
fn expected_forecast(e: &Expected) -> f64 {
    let billed: Decimal = e
        .billed
        .iter()
        .filter(|((_, c), _)| c != "usage")
        .map(|(_, v)| v)
        .sum();
    let usage: Decimal = e
        .billed
        .iter()
        .filter(|((_, c), _)| c == "usage")
        .map(|(_, v)| v)
        .sum();
    let start = support::month_start();
    let end = time::OffsetDateTime::from_unix_timestamp(1_793_775_600)
        .unwrap()
        .max(start);
    let elapsed = (end - start).whole_seconds();
    let next = start.replace_day(28).unwrap() + time::Duration::days(4);
    let length = (next.replace_day(1).unwrap() - start).whole_seconds();
    let metered = if elapsed < 48 * 3600 {
        usage
    } else {
        (usage + e.credit) * Decimal::from(length) / Decimal::from(elapsed) - e.credit
    };
    money(billed + metered)
}

fn money(d: Decimal) -> f64 {
    d.to_string().parse().unwrap()
}

#[tokio::test]
async fn gzip_charges_are_summed_exactly_and_pushed() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .and(header("accept-encoding", "gzip"))
        .and(well_formed)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/jsonl")
                .insert_header("content-encoding", "gzip")
                .set_body_bytes(gzip(&fixture("charges.jsonl"))),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let cfg = config(&pg.url, &mock.uri(), "");
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");

    let want = expected();
    let usage = pg.series(Some("vercel"), "cost_usage");
    for ((resource, unit, project), value) in &want.usage {
        let got = usage
            .iter()
            .find(|(l, _)| {
                l["resource"] == *resource
                    && l["unit"] == *unit
                    && l.get("project") == Some(project)
            })
            .unwrap_or_else(|| panic!("no cost_usage for {resource}/{unit}/{project}: {usage:?}"));
        assert_eq!(got.1, *value, "{resource}/{project}");
    }
    // Spend per project and charge category; web's credit of 1.00 comes off web's usage.
    for ((project, category), amount) in &want.billed {
        assert_eq!(
            pg.value(
                Some("vercel"),
                "cost_spend",
                &[("project", project), ("category", category)]
            ),
            Some(money(*amount)),
            "billed {project} {category}"
        );
    }
    assert!(
        pg.value(Some("vercel"), "cost_spend", &[("category", "credit")])
            .is_none(),
        "credits are netted, never a series"
    );
    // The forecast: purchase and adjustment as billed; usage extrapolated, the credit deducted
    // once.
    let forecast = pg.value(Some("vercel"), "cost_forecast", &[]).unwrap();
    assert!(
        (forecast - expected_forecast(&want)).abs() < 1e-6,
        "{forecast} vs {}",
        expected_forecast(&want)
    );
    for (project, amount) in &want.effective {
        assert_eq!(
            pg.value(
                Some("vercel"),
                "cost_effective_spend",
                &[("project", project)]
            ),
            Some(money(*amount)),
            "effective {project}"
        );
    }
    let total: Decimal = want.billed.values().sum();
    let pushed: f64 = pg
        .series(Some("vercel"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!((pushed - money(total)).abs() < 1e-9, "{pushed} vs {total}");
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_source",
            &[("source", "charges")]
        ),
        Some(1.0)
    );
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_usage_limit",
            &[("resource", "function_invocations")]
        ),
        Some(1_000_000.0)
    );
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_usage_limit",
            &[("resource", "active_cpu")]
        ),
        Some(14_400.0)
    );
    assert_eq!(pg.value(Some("vercel"), "cost_budget", &[]), Some(20.0));
    assert_eq!(
        pg.value(Some("vercel"), "cost_collector_up", &[]),
        Some(1.0)
    );
    // The projects outside the top 3 are summed, never listed.
    assert!(usage.iter().all(|(l, _)| {
        l.get("project")
            .is_none_or(|p| ["web", "api", "docs", "other", "unattributed"].contains(&p.as_str()))
    }));
    assert!(!pg.dump().contains(TOKEN));
    assert!(!stderr.contains(TOKEN));
    assert_charges_follow(&mock).await;
}

#[test]
fn every_charges_fixture_record_follows_the_description() {
    let spec = spec();
    let text = String::from_utf8(fixture("charges.jsonl")).unwrap();
    for (i, line) in text.lines().enumerate() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let v = spec.value_violations("FocusCharge", &record);
        assert!(v.is_empty(), "line {}: {v:#?}", i + 1);
    }
}

/// The control: a request outside the description and records it does not allow are caught.
#[tokio::test]
async fn the_pinned_description_catches_an_off_description_request_and_record() {
    let spec = spec();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    for query in [
        // Dates without a time, and no token.
        "from=2026-11-01&to=2026-11-30",
        // Thirteen months.
        "from=2025-10-01T00:00:00Z&to=2026-11-01T00:00:00Z",
        // `to` missing, an unknown parameter.
        "from=2026-11-01T00:00:00Z&limit=100",
    ] {
        let mut r = client.get(format!("{}/v1/billing/charges?{query}", mock.uri()));
        if !query.contains("2026-11-30") {
            r = r.bearer_auth(TOKEN);
        }
        r.send().await.unwrap();
    }
    for r in mock.received_requests().await.unwrap() {
        assert!(
            !charges_violations(&spec, &r).is_empty(),
            "{} passed",
            r.url
        );
    }
    let good: serde_json::Value = serde_json::from_slice(
        fixture("charges.jsonl")
            .split(|b| *b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        spec.value_violations("FocusCharge", &good),
        Vec::<String>::new()
    );
    for (key, value) in [
        ("BilledCost", serde_json::json!("0.6")),
        ("ChargeCategory", serde_json::json!("Refund")),
        ("ChargePeriodStart", serde_json::json!("yesterday")),
    ] {
        let mut bad = good.clone();
        bad[key] = value;
        assert!(
            !spec.value_violations("FocusCharge", &bad).is_empty(),
            "{key}"
        );
    }
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("ServiceName");
    assert!(!spec.value_violations("FocusCharge", &bad).is_empty());
}

/// One odd record never sinks Vercel: a ChargeCategory or currency a later description may
/// add is skipped with a warning naming it (and counted), a negative ConsumedQuantity (a number
/// the description allows) leaves its usage out; everything else is as without them.
#[tokio::test]
async fn records_the_job_cannot_place_are_skipped_and_the_rest_pushed() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    let good: serde_json::Value = serde_json::from_slice(
        fixture("charges.jsonl")
            .split(|b| *b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut r = good.clone();
        r[key] = value;
        r
    };
    // Allowed by the description: a negative quantity, a zero cost.
    let mut negative = with("ConsumedQuantity", serde_json::json!(-5));
    negative["BilledCost"] = serde_json::json!(0);
    negative["EffectiveCost"] = serde_json::json!(0);
    assert!(spec().value_violations("FocusCharge", &negative).is_empty());
    let mut body = fixture("charges.jsonl");
    for r in [
        with("ChargeCategory", serde_json::json!("Commitment")),
        with("BillingCurrency", serde_json::json!("XBT")),
        // A category that echoes the token: named in a warning, never the token itself.
        with("ChargeCategory", serde_json::json!(TOKEN)),
        negative,
    ] {
        body.extend_from_slice(r.to_string().as_bytes());
        body.push(b'\n');
    }
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .and(well_formed)
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .expect(1)
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let skipped = |reason: &str| {
        pg.value(
            Some("vercel"),
            "cost_collector_records_skipped",
            &[("reason", reason)],
        )
    };
    assert_eq!(skipped("unknown_enum"), Some(2.0));
    assert!(!stderr.contains(TOKEN), "{stderr}");
    assert_eq!(skipped("unknown_currency"), Some(1.0));
    assert_eq!(skipped("negative_quantity"), Some(1.0));
    assert!(
        stderr.contains("\"Commitment\"") && stderr.contains("\"XBT\""),
        "{stderr}"
    );
    // The figures are the fixture's alone.
    let want = expected();
    for ((project, category), amount) in &want.billed {
        assert_eq!(
            pg.value(
                Some("vercel"),
                "cost_spend",
                &[("project", project), ("category", category)]
            ),
            Some(money(*amount)),
            "{project} {category}"
        );
    }
    let invocations = |p: &str| {
        pg.value(
            Some("vercel"),
            "cost_usage",
            &[("resource", "function_invocations"), ("project", p)],
        )
    };
    assert_eq!(
        invocations("web"),
        want.usage
            .get(&(
                "function_invocations".into(),
                "requests".into(),
                "web".into()
            ))
            .copied()
    );
    assert_charges_follow(&mock).await;
}

#[tokio::test]
async fn plain_jsonl_gives_the_same_figures() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .and(well_formed)
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("charges.jsonl")))
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let want = expected();
    for ((project, category), amount) in &want.billed {
        assert_eq!(
            pg.value(
                Some("vercel"),
                "cost_spend",
                &[("project", project), ("category", category)]
            ),
            Some(money(*amount))
        );
    }
}

/// Vercel gives its taxes as records of their own (`ChargeCategory` `Tax`): they follow the
/// job's tax basis. Excluded (the default): no tax series, and the month's spend is the rest.
/// Included: the fixture's $1.60 of sales tax is its own series, billed once.
#[tokio::test]
async fn taxes_follow_the_job_s_tax_basis() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .and(well_formed)
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("charges.jsonl")))
        .mount(&mock)
        .await;
    for (tax, series) in [("excluded", None), ("included", Some(1.6))] {
        let pg = Pushgateway::start();
        let cfg = support::toml(&format!(
            "currency = \"USD\"\ntax = \"{tax}\"\n[pushgateway]\nurl = \"{}\"\n\
             [providers.vercel]\nbase_url = \"{}\"\nplan = \"pro\"\n",
            pg.url,
            mock.uri()
        ));
        let (code, stderr) = push(&cfg, &[]).await;
        assert_eq!(code, Some(0), "{stderr}");
        let spend = pg.series(Some("vercel"), "cost_spend");
        let taxes: Vec<f64> = spend
            .iter()
            .filter(|(l, _)| l.get("category").map(String::as_str) == Some("tax"))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(taxes.first().copied(), series, "{tax}: {spend:?}");
        let purchase = spend
            .iter()
            .find(|(l, _)| l.get("category").map(String::as_str) == Some("purchase"))
            .map(|(_, v)| *v);
        assert_eq!(purchase, Some(20.0), "{tax}");
    }
}

#[tokio::test]
async fn a_malformed_line_fails_the_provider_and_pushes_no_figures() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    let mut body = fixture("charges.jsonl");
    body.extend_from_slice(b"{\"BilledCost\": 1.0, \"ServiceName\": \n");
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("line 22"),
        "the line number is logged: {stderr}"
    );
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_errors_total",
            &[("reason", "decode")]
        ),
        Some(1.0)
    );
    assert_eq!(
        pg.value(Some("vercel"), "cost_collector_up", &[]),
        Some(0.0)
    );
    assert!(
        pg.series(Some("vercel"), "cost_usage").is_empty(),
        "nothing pushed as 0"
    );
    assert!(pg.series(Some("vercel"), "cost_spend").is_empty());
}

#[tokio::test]
async fn a_429_is_waited_out_then_the_charges_are_read() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_string(
                    r#"{"error":{"code":"rate_limited","message":"Rate limit exceeded"}}"#,
                ),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("charges.jsonl")))
        .expect(1)
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("429") && stderr.contains("retrying"),
        "{stderr}"
    );
    assert_eq!(
        pg.value(Some("vercel"), "cost_collector_up", &[]),
        Some(1.0)
    );
}

/// Serves the three `/v2/usage` types from the fixtures.
async fn mount_usage(mock: &MockServer) {
    for kind in ["requests", "builds", "edge"] {
        Mock::given(method("GET"))
            .and(path("/v2/usage"))
            .and(query_param("type", kind))
            .and(well_formed)
            .respond_with(
                ResponseTemplate::new(200).set_body_bytes(fixture(&format!("usage-{kind}.json"))),
            )
            .expect(1)
            .mount(mock)
            .await;
    }
}

#[tokio::test]
async fn a_404_from_billing_falls_back_to_v2_usage() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_string(r#"{"error":{"code":"not_found","message":"Not Found"}}"#),
        )
        .expect(1)
        .mount(&mock)
        .await;
    mount_usage(&mock).await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let v = |r: &str| pg.value(Some("vercel"), "cost_usage", &[("resource", r)]);
    // 81234 + 12 + 1, "1000" (a string), null skipped, 500.
    assert_eq!(
        v("function_invocations"),
        Some(81_234.0 + 12.0 + 1.0 + 1000.0 + 500.0)
    );
    assert_eq!(v("provisioned_memory"), Some(3.75 + 0.01 + 0.0 + 0.5));
    assert_eq!(
        v("fast_data_transfer"),
        Some(2_147_483_648.0 + 1_073_741_824.0)
    );
    assert_eq!(v("build_time"), Some(310.0 + 95.5));
    assert_eq!(v("builds"), Some(3.0 + 1.0));
    // type=edge answered with no day: a known zero.
    assert_eq!(v("edge_function_invocations"), Some(0.0));
    // Not in /v2/usage: absent, never 0.
    assert_eq!(v("active_cpu"), None);
    assert_eq!(v("edge_requests"), None);
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_source",
            &[("source", "usage")]
        ),
        Some(1.0)
    );
    assert!(
        pg.series(Some("vercel"), "cost_spend").is_empty(),
        "/v2/usage has no money"
    );
    // ... so its metered spend is unknown: absent, never 0.
    assert!(
        pg.series(Some("vercel"), "cost_metered_spend").is_empty(),
        "{:?}",
        pg.series(Some("vercel"), "cost_metered_spend")
    );
    assert_charges_follow(&mock).await;
}

#[tokio::test]
async fn source_charges_does_not_fall_back_and_401_is_an_auth_error() {
    let pg = Pushgateway::start();
    let mock = charges_server(ResponseTemplate::new(404)).await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), "source = \"charges\"\n"), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_errors_total",
            &[("reason", "http_4xx")]
        ),
        Some(1.0)
    );

    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/billing/charges"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!(
            r#"{{"error":{{"code":"forbidden","message":"Not authorized: {TOKEN}"}}}}"#
        )))
        .expect(1)
        .mount(&mock)
        .await;
    let (code, stderr) = push(&config(&pg.url, &mock.uri(), ""), &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains(TOKEN),
        "an echoed token is scrubbed: {stderr}"
    );
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_collector_errors_total",
            &[("reason", "auth")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn an_empty_month_reports_known_zeros_and_a_limit_of_1_trips_the_ratio() {
    let pg = Pushgateway::start();
    let mock = charges_server(ResponseTemplate::new(200).set_body_string("")).await;
    let cfg = config(
        &pg.url,
        &mock.uri(),
        "[providers.vercel.limits]\nfunction_invocations = 1\n",
    );
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_usage",
            &[("resource", "function_invocations")]
        ),
        Some(0.0)
    );
    assert_eq!(pg.value(Some("vercel"), "cost_spend", &[]), Some(0.0));
    assert_eq!(
        pg.value(
            Some("vercel"),
            "cost_usage_limit",
            &[("resource", "function_invocations")]
        ),
        Some(1.0)
    );

    // Now any invocation at all exceeds 80% of the limit of 1.
    let mock =
        charges_server(ResponseTemplate::new(200).set_body_bytes(fixture("charges.jsonl"))).await;
    let cfg = config(
        &pg.url,
        &mock.uri(),
        "[providers.vercel.limits]\nfunction_invocations = 1\n",
    );
    let (code, stderr) = push(&cfg, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let used: f64 = pg
        .series(Some("vercel"), "cost_usage")
        .iter()
        .filter(|(l, _)| l["resource"] == "function_invocations")
        .map(|(_, v)| v)
        .sum();
    let limit = pg
        .value(
            Some("vercel"),
            "cost_usage_limit",
            &[("resource", "function_invocations")],
        )
        .unwrap();
    assert!(used / limit > 0.8, "{used} / {limit}");
}

#[tokio::test]
async fn check_probe_says_whether_the_token_reads_billing() {
    let mock = charges_server(ResponseTemplate::new(404)).await;
    Mock::given(method("GET"))
        .and(path("/v2/usage"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
        .mount(&mock)
        .await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &mock.uri(), "");
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["check", "--probe", "--config", &path],
        &[("VERCEL_API_TOKEN", TOKEN)],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("cannot read billing charges (404"),
        "{stdout}"
    );
    assert!(stdout.contains("/v2/usage answers"), "{stdout}");
}
