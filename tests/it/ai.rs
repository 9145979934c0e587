//! Anthropic and OpenAI end to end: paginated loopback mocks with the documented payloads, the
//! real binary, a real Pushgateway; pushed values equal the sums computed here from the
//! fixtures (exact decimals for money).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::contract::{self, Spec};
use crate::support::{self, Pushgateway};

const ANTHROPIC_KEY: &str = "sk-ant-admin01-test-1234";
const OPENAI_KEY: &str = "sk-admin-test-5678";

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(support::fixture(name)).unwrap()).unwrap()
}

/// OpenAI's pinned description (its paths are under `/v1`, the document's server).
fn openai_spec() -> Spec {
    Spec::load("openai/openapi.json").with_prefix("/v1")
}

/// The page-size limits OpenAI documents in words (the schema has no maximum): daily usage
/// buckets at most 31 a page, cost buckets 1 to 180.
fn openai_limits(r: &Request) -> Vec<String> {
    let max = if r.url.path().ends_with("/organization/costs") {
        180
    } else {
        31
    };
    r.url
        .query_pairs()
        .filter(|(k, _)| k == "limit")
        .filter(|(_, v)| !v.parse::<u64>().is_ok_and(|n| (1..=max).contains(&n)))
        .map(|(_, v)| format!("{}: limit {v} is outside 1..={max}", r.url.path()))
        .collect()
}

/// Makes `mock` refuse (400) any request outside `spec` or `extra`'s documented limits, as
/// the provider would, and fail the test when one comes (`expect(0)`).
async fn refuse_off_spec(mock: &MockServer, spec: Spec, extra: fn(&Request) -> Vec<String>) {
    let spec = Arc::new(spec);
    Mock::given(move |r: &Request| !spec.request_violations(r).is_empty() || !extra(r).is_empty())
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "invalid request", "type": "invalid_request_error"}
        })))
        .with_priority(1)
        .expect(0)
        .mount(mock)
        .await;
}

/// A page answer, checked against the description's schema for `route` first.
fn page(spec: &Spec, route: &str, body: Value) -> ResponseTemplate {
    spec.answer("get", route, 200, body)
}

fn config(pg: &str, provider: &str, mock: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 2\n\
         [providers.{provider}]\nbase_url = \"{mock}\"\nbudget = 200\n"
    ))
}

fn f(d: Decimal) -> f64 {
    d.to_string().parse().unwrap()
}

/// Two pages at `route`, the second behind `cursor`, each answered once, only to a request
/// with every `must` pair; each page checked against `schema` (the description and the
/// operation's path template) first.
async fn mount_pages(
    mock: &MockServer,
    schema: Option<(&Spec, &str)>,
    route: &str,
    pages: [&str; 2],
    cursor: &str,
    must: &[(&str, String)],
) {
    let mut first = Mock::given(method("GET"))
        .and(path(route))
        .and(query_param_is_missing("page"));
    let mut second = Mock::given(method("GET"))
        .and(path(route))
        .and(query_param("page", cursor));
    for (k, v) in must {
        first = first.and(query_param(*k, v.as_str()));
        second = second.and(query_param(*k, v.as_str()));
    }
    let answer = |page: &str| match schema {
        Some((spec, template)) => spec.answer("get", template, 200, fixture(page)),
        None => ResponseTemplate::new(200).set_body_json(fixture(page)),
    };
    first
        .respond_with(answer(pages[0]))
        .expect(1)
        .mount(mock)
        .await;
    second
        .respond_with(answer(pages[1]))
        .expect(1)
        .mount(mock)
        .await;
}

/// Anthropic's derived description (`tests/fixtures/anthropic/README.md`).
fn anthropic_spec() -> Spec {
    Spec::load("anthropic/openapi.json")
}

/// The limits Anthropic documents in words: 31 daily buckets a page; an analytics window
/// starts no earlier than 2026-01-01 and spans at most 31 days.
fn anthropic_limits(r: &Request) -> Vec<String> {
    let q: BTreeMap<String, String> = r.url.query_pairs().into_owned().collect();
    let mut out = Vec::new();
    let daily = q.get("bucket_width").map(String::as_str) == Some("1d");
    if daily
        && q.get("limit")
            .is_some_and(|l| l.parse::<u64>().is_ok_and(|n| n > 31))
    {
        out.push(format!("{}: limit above 31 daily buckets", r.url.path()));
    }
    let time = |k: &str| {
        q.get(k).and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    if r.url.path().contains("/analytics/") {
        let since = time::Date::from_calendar_date(2026, time::Month::January, 1)
            .unwrap()
            .midnight()
            .assume_utc();
        match (time("starting_at"), time("ending_at")) {
            (Some(start), _) if start < since => {
                out.push(format!("{}: starting_at before 2026-01-01", r.url.path()));
            }
            (Some(start), Some(end)) if end - start > time::Duration::days(31) => {
                out.push(format!("{}: a window over 31 days", r.url.path()));
            }
            _ => {}
        }
    }
    out
}

/// The legacy usage and cost reports (their pages with `has_more`), checked against the
/// description; every request off it is refused.
async fn mount_anthropic(mock: &MockServer) {
    let spec = anthropic_spec();
    refuse_off_spec(mock, anthropic_spec(), anthropic_limits).await;
    let start = support::month_start()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let common = vec![
        ("starting_at", start),
        ("bucket_width", "1d".to_owned()),
        ("limit", "31".to_owned()),
    ];
    let mut usage = common.clone();
    usage.push(("group_by[]", "model".to_owned()));
    mount_pages(
        mock,
        Some((&spec, "/v1/organizations/usage_report/messages")),
        "/v1/organizations/usage_report/messages",
        ["anthropic/usage-page1.json", "anthropic/usage-page2.json"],
        "page_MjAyNi0xMS0wM1QwMDowMDowMFo=",
        &usage,
    )
    .await;
    let mut cost = common;
    cost.push(("group_by[]", "workspace_id".to_owned()));
    mount_pages(
        mock,
        Some((&spec, "/v1/organizations/cost_report")),
        "/v1/organizations/cost_report",
        ["anthropic/cost-page1.json", "anthropic/cost-page2.json"],
        "page_Y29zdDI=",
        &cost,
    )
    .await;
}

/// The analytics usage and cost reports (cursor pages: `next_page`, no `has_more`), with the
/// same tokens and costs as the legacy fixtures.
async fn mount_anthropic_analytics(mock: &MockServer) {
    let spec = anthropic_spec();
    let start = support::month_start()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let must = vec![
        ("beta", "true".to_owned()),
        ("starting_at", start),
        ("bucket_width", "1d".to_owned()),
        ("limit", "31".to_owned()),
        ("group_by[]", "model".to_owned()),
    ];
    mount_pages(
        mock,
        Some((&spec, "/v1/organizations/analytics/usage_report")),
        "/v1/organizations/analytics/usage_report",
        [
            "anthropic/analytics-usage-page1.json",
            "anthropic/analytics-usage-page2.json",
        ],
        "cursor_usage_2",
        &must,
    )
    .await;
    mount_pages(
        mock,
        Some((&spec, "/v1/organizations/analytics/cost_report")),
        "/v1/organizations/analytics/cost_report",
        [
            "anthropic/analytics-cost-page1.json",
            "anthropic/analytics-cost-page2.json",
        ],
        "cursor_cost_2",
        &must,
    )
    .await;
}

/// Tokens by (model, token type), and cost in USD by model.
type Figures = (
    BTreeMap<(String, &'static str), f64>,
    BTreeMap<String, Decimal>,
);

/// A report pair's figures, from its pages.
fn anthropic_figures(usage: [&str; 2], cost: [&str; 2]) -> Figures {
    let mut tokens: BTreeMap<(String, &str), f64> = BTreeMap::new();
    for page in usage {
        for b in fixture(page)["data"].as_array().unwrap() {
            for r in b["results"].as_array().unwrap() {
                let m = r["model"].as_str().unwrap().to_owned();
                let n = |v: &Value| v.as_f64().unwrap_or(0.0);
                *tokens.entry((m.clone(), "input")).or_default() += n(&r["uncached_input_tokens"]);
                *tokens.entry((m.clone(), "output")).or_default() += n(&r["output_tokens"]);
                *tokens.entry((m.clone(), "cache_read")).or_default() +=
                    n(&r["cache_read_input_tokens"]);
                *tokens.entry((m.clone(), "cache_write")).or_default() +=
                    n(&r["cache_creation"]["ephemeral_5m_input_tokens"])
                        + n(&r["cache_creation"]["ephemeral_1h_input_tokens"]);
            }
        }
    }
    let mut usd: BTreeMap<String, Decimal> = BTreeMap::new();
    for page in cost {
        for b in fixture(page)["data"].as_array().unwrap() {
            for r in b["results"].as_array().unwrap() {
                let model = r["model"].as_str().unwrap_or("none").to_owned();
                *usd.entry(model).or_default() += Decimal::from_str(r["amount"].as_str().unwrap())
                    .unwrap()
                    / Decimal::ONE_HUNDRED;
            }
        }
    }
    (tokens, usd)
}

const LEGACY_PAGES: ([&str; 2], [&str; 2]) = (
    ["anthropic/usage-page1.json", "anthropic/usage-page2.json"],
    ["anthropic/cost-page1.json", "anthropic/cost-page2.json"],
);
const ANALYTICS_PAGES: ([&str; 2], [&str; 2]) = (
    [
        "anthropic/analytics-usage-page1.json",
        "anthropic/analytics-usage-page2.json",
    ],
    [
        "anthropic/analytics-cost-page1.json",
        "anthropic/analytics-cost-page2.json",
    ],
);

#[tokio::test]
async fn anthropic_tokens_and_cents_are_summed_exactly_across_pages() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    // Every request carries the Admin key and the API version.
    Mock::given(method("GET"))
        .and(|r: &wiremock::Request| {
            r.headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(ANTHROPIC_KEY)
                || r.headers
                    .get("anthropic-version")
                    .and_then(|v| v.to_str().ok())
                    != Some("2023-06-01")
        })
        .respond_with(ResponseTemplate::new(418))
        .expect(0)
        .mount(&mock)
        .await;
    mount_anthropic(&mock).await;
    let cfg = config(&pg.url, "anthropic", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");

    // Tokens by model and type, from the fixtures.
    let mut tokens: BTreeMap<(String, &str), f64> = BTreeMap::new();
    for page in ["anthropic/usage-page1.json", "anthropic/usage-page2.json"] {
        for b in fixture(page)["data"].as_array().unwrap() {
            for r in b["results"].as_array().unwrap() {
                let m = r["model"].as_str().unwrap().to_owned();
                let n = |v: &Value| v.as_f64().unwrap_or(0.0);
                *tokens.entry((m.clone(), "input")).or_default() += n(&r["uncached_input_tokens"]);
                *tokens.entry((m.clone(), "output")).or_default() += n(&r["output_tokens"]);
                *tokens.entry((m.clone(), "cache_read")).or_default() +=
                    n(&r["cache_read_input_tokens"]);
                *tokens.entry((m.clone(), "cache_write")).or_default() +=
                    n(&r["cache_creation"]["ephemeral_5m_input_tokens"])
                        + n(&r["cache_creation"]["ephemeral_1h_input_tokens"]);
            }
        }
    }
    for ((model, kind), n) in &tokens {
        assert_eq!(
            pg.value(
                Some("anthropic"),
                "cost_usage",
                &[
                    ("resource", "tokens"),
                    ("model", model),
                    ("token_type", kind)
                ]
            ),
            Some(*n),
            "{model} {kind}"
        );
    }
    // Reported cost by model and workspace: cents strings / 100, as decimals.
    let mut cost: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for page in ["anthropic/cost-page1.json", "anthropic/cost-page2.json"] {
        for b in fixture(page)["data"].as_array().unwrap() {
            for r in b["results"].as_array().unwrap() {
                let model = r["model"].as_str().unwrap_or("none").to_owned();
                let ws = r["workspace_id"].as_str().unwrap_or("default").to_owned();
                *cost.entry((model, ws)).or_default() +=
                    Decimal::from_str(r["amount"].as_str().unwrap()).unwrap()
                        / Decimal::ONE_HUNDRED;
            }
        }
    }
    for ((model, ws), usd) in &cost {
        assert_eq!(
            pg.value(
                Some("anthropic"),
                "cost_spend",
                &[("model", model), ("workspace", ws), ("basis", "reported")]
            ),
            Some(f(*usd)),
            "{model} {ws}"
        );
    }
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_spend",
            &[
                ("model", "claude-opus-4-1"),
                ("workspace", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ")
            ]
        ),
        Some(1.2378912)
    );
    // Haiku has tokens but no cost line: estimated at $1/M input and $5/M output, and its
    // batch-tier million input tokens at the batch price, $0.50/M.
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_spend",
            &[("model", "claude-haiku-4-5"), ("basis", "estimated")]
        ),
        Some(2.0 + 1.5 + 0.5)
    );
    // Sonnet has a cost line, but priority-tier usage is not in the cost report: its 100k
    // output tokens are estimated ($15/M).
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_spend",
            &[
                ("model", "claude-sonnet-4-5-20250929"),
                ("basis", "estimated")
            ]
        ),
        Some(1.5)
    );
    // The pinned table priced them, and says how recent it is (2026-11-29).
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_price_table_timestamp_seconds",
            &[("source", "pinned")]
        ),
        Some(1_795_910_400.0)
    );
    // The cost report's last bucket ends on the 4th: the forecast extrapolates up to there.
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_collector_data_as_of_timestamp_seconds",
            &[]
        ),
        // 2026-11-04T00:00:00Z
        Some(1_793_750_400.0)
    );
    // A model that is in neither: its tokens are counted, not priced at 0.
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_usage",
            &[
                ("resource", "unpriced_tokens"),
                ("model", "claude-experimental-x")
            ]
        ),
        Some(777.0)
    );
    assert!(
        pg.series(Some("anthropic"), "cost_spend")
            .iter()
            .all(|(l, _)| l.get("model").map(String::as_str) != Some("claude-experimental-x"))
    );
    let total: Decimal = cost.values().sum::<Decimal>() + Decimal::new(55, 1);
    let pushed: f64 = pg
        .series(Some("anthropic"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!(
        (pushed - f(total)).abs() < 0.005,
        "to the cent: {pushed} vs {total}"
    );
    assert!(!pg.dump().contains(ANTHROPIC_KEY) && !stderr.contains(ANTHROPIC_KEY));
    // The analytics reports were asked first; absent (404), the legacy ones answered.
    let paths: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    for analytics in [
        "/v1/organizations/analytics/usage_report",
        "/v1/organizations/analytics/cost_report",
    ] {
        assert!(paths.iter().any(|p| p == analytics), "{paths:?}");
    }
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_collector_source",
            &[("source", "legacy")]
        ),
        Some(1.0)
    );
    contract::assert_requests_follow(&anthropic_spec(), &mock).await;
}

#[tokio::test]
async fn anthropic_analytics_reports_are_read_first_with_the_same_figures() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    refuse_off_spec(&mock, anthropic_spec(), anthropic_limits).await;
    mount_anthropic_analytics(&mock).await;
    let cfg = config(&pg.url, "anthropic", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // The same tokens and the same reported cost per model as the legacy reports hold.
    let (tokens, usd) = anthropic_figures(ANALYTICS_PAGES.0, ANALYTICS_PAGES.1);
    assert_eq!(
        (tokens.clone(), usd.clone()),
        anthropic_figures(LEGACY_PAGES.0, LEGACY_PAGES.1),
        "the fixtures hold the same figures"
    );
    for ((model, kind), n) in &tokens {
        assert_eq!(
            pg.value(
                Some("anthropic"),
                "cost_usage",
                &[
                    ("resource", "tokens"),
                    ("model", model),
                    ("token_type", kind)
                ]
            ),
            Some(*n),
            "{model} {kind}"
        );
    }
    let series = pg.series(Some("anthropic"), "cost_spend");
    for (model, want) in &usd {
        let got: f64 = series
            .iter()
            .filter(|(l, _)| {
                l.get("model") == Some(model)
                    && l.get("basis").map(String::as_str) == Some("reported")
            })
            .map(|(_, v)| v)
            .sum();
        assert!((got - f(*want)).abs() < 1e-9, "{model}: {got} vs {want}");
    }
    // The analytics reports have no workspace: no workspace label, never a made-up one.
    assert!(
        series
            .iter()
            .filter(|(l, _)| l.get("basis").map(String::as_str) == Some("reported"))
            .all(|(l, _)| !l.contains_key("workspace")),
        "{series:?}"
    );
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_collector_source",
            &[("source", "analytics")]
        ),
        Some(1.0)
    );
    let requests = mock.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.url.path().starts_with("/v1/organizations/analytics/")),
        "the legacy reports are not read when the analytics ones answer"
    );
    contract::assert_requests_follow(&anthropic_spec(), &mock).await;
}

#[tokio::test]
async fn anthropic_falls_back_to_the_legacy_reports_when_analytics_refuse_the_key() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    let spec = anthropic_spec();
    // A key without `read:analytics`, or an organization not on the plan that has them.
    for route in ["usage_report", "cost_report"] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/organizations/analytics/{route}")))
            .respond_with(spec.answer(
                "get",
                &format!("/v1/organizations/analytics/{route}"),
                403,
                json!({"type": "error", "error": {"type": "permission_error", "message": "analytics are not available to this key"}}),
            ))
            .mount(&mock)
            .await;
    }
    mount_anthropic(&mock).await;
    let cfg = config(&pg.url, "anthropic", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_collector_source",
            &[("source", "legacy")]
        ),
        Some(1.0)
    );
    contract::assert_requests_follow(&spec, &mock).await;
}

/// The control: a request and an answer off the pinned descriptions are caught, for OpenAI
/// and Anthropic alike.
#[test]
fn the_ai_mocks_refuse_what_the_providers_refuse() {
    let get = |url: &str, headers: &[(&str, &str)]| {
        let mut h = wiremock::http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                wiremock::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Request {
            url: url::Url::parse(url).unwrap(),
            method: wiremock::http::Method::GET,
            headers: h,
            body: vec![],
        }
    };
    let openai = openai_spec();
    let bearer = [("authorization", "Bearer sk-admin-x")];
    let ok = get(
        "http://m/v1/organization/costs?start_time=1&limit=31&group_by[]=project_id",
        &bearer,
    );
    assert!(openai.request_violations(&ok).is_empty() && openai_limits(&ok).is_empty());
    let v = openai.request_violations(&get(
        "http://m/v1/organization/costs?start_time=1&group_by[]=model",
        &bearer,
    ));
    assert!(v.iter().any(|m| m.contains("is not one of")), "{v:?}");
    let v = openai.request_violations(&get("http://m/v1/organization/costs?start_time=1", &[]));
    assert!(v.iter().any(|m| m.contains("authentication")), "{v:?}");
    assert!(
        !openai_limits(&get(
            "http://m/v1/organization/costs?start_time=1&limit=181",
            &bearer
        ))
        .is_empty()
    );
    assert!(
        !openai_limits(&get(
            "http://m/v1/organization/usage/completions?start_time=1&limit=32",
            &bearer
        ))
        .is_empty()
    );
    let v = openai.answer_violations(
        "get",
        "/organization/costs",
        200,
        &json!({"object": "page", "data": [{"object": "bucket", "start_time": 1, "end_time": 2, "results": [{"object": "organization.costs.result", "amount": {"value": "0.06", "currency": "usd"}}]}], "has_more": false, "next_page": null}),
    );
    assert!(!v.is_empty());

    let anthropic = anthropic_spec();
    let key = [
        ("x-api-key", "sk-ant-admin-x"),
        ("anthropic-version", "2023-06-01"),
    ];
    let ok = get(
        "http://m/v1/organizations/analytics/cost_report?beta=true&starting_at=2026-12-01T00:00:00Z&bucket_width=1d&limit=31&group_by[]=model",
        &key,
    );
    assert!(anthropic.request_violations(&ok).is_empty() && anthropic_limits(&ok).is_empty());
    // workspace_id is a legacy grouping: the analytics reports do not take it.
    let v = anthropic.request_violations(&get(
        "http://m/v1/organizations/analytics/cost_report?starting_at=2026-12-01T00:00:00Z&group_by[]=workspace_id",
        &key,
    ));
    assert!(v.iter().any(|m| m.contains("is not one of")), "{v:?}");
    let v = anthropic.request_violations(&get(
        "http://m/v1/organizations/cost_report?starting_at=2026-12-01T00:00:00Z",
        &[("x-api-key", "k")],
    ));
    assert!(v.iter().any(|m| m.contains("anthropic-version")), "{v:?}");
    assert!(!anthropic_limits(&get("http://m/v1/organizations/usage_report/messages?starting_at=2026-12-01T00:00:00Z&bucket_width=1d&limit=32", &key)).is_empty());
    assert!(
        !anthropic_limits(&get(
            "http://m/v1/organizations/analytics/usage_report?starting_at=2025-12-01T00:00:00Z",
            &key
        ))
        .is_empty()
    );
    assert!(!anthropic_limits(&get("http://m/v1/organizations/analytics/usage_report?starting_at=2026-10-01T00:00:00Z&ending_at=2026-11-02T00:00:00Z", &key)).is_empty());
    // A cost amount as a number, where the description has a decimal string.
    let v = anthropic.answer_violations(
        "get",
        "/v1/organizations/analytics/cost_report",
        200,
        &json!({"data": [{"starting_at": "2026-12-01T00:00:00Z", "ending_at": "2026-12-02T00:00:00Z", "results": [{"amount": 12.5, "list_amount": "12.5", "currency": "USD"}]}], "next_page": null}),
    );
    assert!(v.iter().any(|m| m.contains("amount")), "{v:?}");
}

/// The OpenAI organization API on `mock`: every request must carry the admin key and follow
/// the pinned description, and the usage query must group by model, batch, service tier and
/// project.
async fn mount_openai(mock: &MockServer) {
    let start = support::month_start().unix_timestamp().to_string();
    let common = vec![
        ("start_time", start),
        ("bucket_width", "1d".to_owned()),
        ("limit", "31".to_owned()),
    ];
    let mut usage = common.clone();
    usage.push(("group_by[]", "model".to_owned()));
    usage.push(("group_by[]", "batch".to_owned()));
    usage.push(("group_by[]", "service_tier".to_owned()));
    usage.push(("group_by[]", "project_id".to_owned()));
    refuse_off_spec(mock, openai_spec(), openai_limits).await;
    Mock::given(method("GET"))
        .and(|r: &wiremock::Request| {
            r.headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some("Bearer sk-admin-test-5678")
        })
        .respond_with(ResponseTemplate::new(418))
        .expect(0)
        .mount(mock)
        .await;
    let spec = openai_spec();
    mount_pages(
        mock,
        Some((&spec, "/organization/usage/completions")),
        "/v1/organization/usage/completions",
        ["openai/usage-page1.json", "openai/usage-page2.json"],
        "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=",
        &usage,
    )
    .await;
    let mut costs = common;
    costs.push(("group_by[]", "line_item".to_owned()));
    mount_pages(
        mock,
        Some((&spec, "/organization/costs")),
        "/v1/organization/costs",
        ["openai/costs-page1.json", "openai/costs-page2.json"],
        "page_costs_2",
        &costs,
    )
    .await;
}

#[tokio::test]
async fn openai_tokens_and_dollars_are_summed_exactly_across_pages() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_openai(&mock).await;
    let cfg = config(&pg.url, "openai", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("OPENAI_ADMIN_KEY", OPENAI_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");

    let tok = |model: &str, kind: &str| {
        pg.value(
            Some("openai"),
            "cost_usage",
            &[
                ("resource", "tokens"),
                ("model", model),
                ("token_type", kind),
            ],
        )
    };
    assert_eq!(
        tok("gpt-4o-2024-08-06", "input"),
        Some(3000.0),
        "input_uncached_tokens when given"
    );
    assert_eq!(tok("gpt-4o-2024-08-06", "cache_read"), Some(1800.0));
    assert_eq!(tok("gpt-4o-2024-08-06", "cache_write"), Some(200.0));
    assert_eq!(tok("gpt-4o-2024-08-06", "output"), Some(1000.0));
    // Without input_uncached_tokens: input − cached − cache writes; nulls are 0.
    assert_eq!(
        tok("gpt-4o-mini-2024-07-18", "input"),
        Some(100_000.0 + 1000.0)
    );
    assert_eq!(tok("gpt-4o-mini-2024-07-18", "cache_read"), Some(20_000.0));
    assert_eq!(tok("gpt-4o-mini-2024-07-18", "output"), Some(30_010.0));

    // Reported spend by line item (as OpenAI writes it) and project.
    let spend = |item: &str, project: &str| {
        pg.value(
            Some("openai"),
            "cost_spend",
            &[
                ("line_item", item),
                ("project", project),
                ("basis", "reported"),
            ],
        )
    };
    assert_eq!(spend("gpt-4o-2024-08-06, input", "proj_abc"), Some(0.06));
    assert_eq!(spend("gpt-4o-2024-08-06, output", "proj_abc"), Some(0.1));
    assert_eq!(
        spend("gpt-4o-2024-08-06, cached input", "proj_abc"),
        Some(0.015)
    );
    assert_eq!(
        spend("gpt-4o-2024-08-06, output", "proj_xyz"),
        Some(1.23456789)
    );
    // gpt-4o's tokens are in proj_abc, which the cost report covers: not estimated again.
    assert_eq!(
        pg.value(
            Some("openai"),
            "cost_spend",
            &[("model", "gpt-4o-2024-08-06"), ("basis", "estimated")]
        ),
        None
    );
    // gpt-4o-mini: tokens, no cost line: 101000 × $0.15/M + 20000 × $0.075/M + 30010 × $0.6/M.
    assert_eq!(
        pg.value(
            Some("openai"),
            "cost_spend",
            &[("model", "gpt-4o-mini-2024-07-18"), ("basis", "estimated")]
        ),
        Some(0.034656)
    );
    assert_eq!(
        pg.value(
            Some("openai"),
            "cost_usage",
            &[
                ("resource", "unpriced_tokens"),
                ("model", "ft:gpt-9-custom")
            ]
        ),
        Some(4242.0 + 58.0)
    );
    contract::assert_requests_follow(&openai_spec(), &mock).await;
}

/// One day of OpenAI's reports: usage rows and cost rows, as the description shapes them.
fn openai_day(start: i64, usage: Vec<Value>, costs: Vec<Value>) -> (Value, Value) {
    let bucket = |results: Vec<Value>| json!({"object": "page", "data": [{"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}], "has_more": false, "next_page": null});
    (bucket(usage), bucket(costs))
}

fn completions(model: &str, project: &str, input: u64) -> Value {
    json!({"object": "organization.usage.completions.result", "input_tokens": input, "output_tokens": 0, "num_model_requests": 1, "model": model, "project_id": project, "batch": null, "service_tier": null})
}

fn cost(line_item: Option<&str>, project: Option<&str>, usd: f64) -> Value {
    json!({"object": "organization.costs.result", "amount": {"value": usd, "currency": "usd"}, "line_item": line_item, "project_id": project})
}

#[tokio::test]
async fn openai_reported_and_estimated_spend_never_overlap_whatever_the_line_items_say() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    let spec = openai_spec();
    refuse_off_spec(&mock, openai_spec(), openai_limits).await;
    // The month's first day: a million gpt-4o-mini input tokens in each of two projects. The
    // cost report covers proj_a with line items that name no model ("input_tokens", as the
    // description's own example, "Fine-tuning", something new); it has nothing for proj_b.
    let start = support::month_start().unix_timestamp();
    let (usage, costs) = openai_day(
        start,
        vec![
            completions("gpt-4o-mini-2024-07-18", "proj_a", 1_000_000),
            completions("gpt-4o-mini-2024-07-18", "proj_b", 1_000_000),
        ],
        vec![
            cost(Some("input_tokens"), Some("proj_a"), 0.15),
            cost(Some("Fine-tuning"), Some("proj_a"), 2.0),
            cost(Some("a charge nobody has seen yet"), Some("proj_a"), 0.5),
        ],
    );
    Mock::given(method("GET"))
        .and(path("/v1/organization/usage/completions"))
        .respond_with(page(&spec, "/organization/usage/completions", usage))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organization/costs"))
        .respond_with(page(&spec, "/organization/costs", costs))
        .mount(&mock)
        .await;
    let cfg = config(&pg.url, "openai", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("OPENAI_ADMIN_KEY", OPENAI_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let series = pg.series(Some("openai"), "cost_spend");
    let sum = |basis: &str| -> f64 {
        series
            .iter()
            .filter(|(l, _)| l.get("basis").map(String::as_str) == Some(basis))
            .map(|(_, v)| v)
            .sum()
    };
    assert!((sum("reported") - 2.65).abs() < 1e-9, "{series:?}");
    // Only proj_b's million tokens are estimated ($0.15 per million): proj_a's are in the
    // reported $2.65 whatever its line items say.
    assert!((sum("estimated") - 0.15).abs() < 1e-9, "{series:?}");
    assert_eq!(
        pg.value(
            Some("openai"),
            "cost_spend",
            &[
                ("line_item", "Fine-tuning"),
                ("project", "proj_a"),
                ("basis", "reported")
            ]
        ),
        Some(2.0)
    );
    contract::assert_requests_follow(&spec, &mock).await;
}

/// The estimated gpt-4o-mini spend of the OpenAI fixtures at `input`, `cached` and `output`
/// dollars per million tokens.
fn mini_estimate(input: f64, cached: f64, output: f64) -> f64 {
    (101_000.0 * input + 20_000.0 * cached + 30_010.0 * output) / 1e6
}

#[tokio::test]
async fn a_price_table_served_over_http_replaces_the_pinned_one() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    mount_openai(&mock).await;
    let prices = MockServer::start().await;
    // A newer table in LiteLLM's format, with gpt-4o-mini at $1 / $0.50 / $4 per million.
    Mock::given(method("GET"))
        .and(path("/model_prices_and_context_window.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("last-modified", "Fri, 27 Nov 2026 08:00:00 GMT")
                .set_body_json(serde_json::json!({
                    "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
                    "gpt-4o-mini-2024-07-18": {
                        "litellm_provider": "openai", "mode": "chat",
                        "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06,
                        "cache_read_input_token_cost": 5e-07
                    }
                })),
        )
        .expect(1)
        .mount(&prices)
        .await;
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
         [providers.openai]\nbase_url = \"{}\"\n\
         price_table = \"{}/model_prices_and_context_window.json\"\n",
        pg.url,
        mock.uri(),
        prices.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[("OPENAI_ADMIN_KEY", OPENAI_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let estimated = pg
        .value(
            Some("openai"),
            "cost_spend",
            &[("model", "gpt-4o-mini-2024-07-18"), ("basis", "estimated")],
        )
        .unwrap();
    assert!(
        (estimated - mini_estimate(1.0, 0.5, 4.0)).abs() < 1e-9,
        "{estimated}"
    );
    // Which table, and how recent: the URL's Last-Modified (2026-11-27T08:00:00Z).
    assert_eq!(
        pg.value(
            Some("openai"),
            "cost_price_table_timestamp_seconds",
            &[("source", "url")]
        ),
        Some(1_795_766_400.0)
    );
}

#[tokio::test]
async fn the_pinned_table_is_the_fallback_when_the_price_url_fails() {
    let prices = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/broken.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not a table</html>"))
        .mount(&prices)
        .await;
    // A server that is down (a port nobody listens on), then one that answers with a page that
    // is not a price table.
    let down = format!("http://127.0.0.1:{}/prices.json", support::free_port());
    let broken = format!("{}/broken.json", prices.uri());
    for (url, why) in [(down, "error sending request"), (broken, "not a LiteLLM")] {
        let pg = Pushgateway::start();
        let mock = MockServer::start().await;
        mount_openai(&mock).await;
        let cfg = support::toml(&format!(
            "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
             [providers.openai]\nbase_url = \"{}\"\nprice_table = \"{url}\"\n",
            pg.url,
            mock.uri(),
        ));
        let (code, stderr) = support::push(cfg.path(), &[("OPENAI_ADMIN_KEY", OPENAI_KEY)]).await;
        assert_eq!(
            code,
            Some(0),
            "a price table is never worth failing the run: {stderr}"
        );
        assert!(
            stderr.contains("could not be used, so the pinned one") && stderr.contains(why),
            "{stderr}"
        );
        // The pinned prices ($0.15 / $0.075 / $0.60), and the metric says so.
        let estimated = pg
            .value(
                Some("openai"),
                "cost_spend",
                &[("model", "gpt-4o-mini-2024-07-18"), ("basis", "estimated")],
            )
            .unwrap();
        assert!(
            (estimated - mini_estimate(0.15, 0.075, 0.6)).abs() < 1e-9,
            "{estimated}"
        );
        assert!(
            pg.value(
                Some("openai"),
                "cost_price_table_timestamp_seconds",
                &[("source", "pinned")]
            )
            .is_some()
        );
        assert_eq!(
            pg.value(Some("openai"), "cost_collector_up", &[]),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn a_429_then_a_529_are_waited_out() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(serde_json::json!({"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/cost_report"))
        .respond_with(
            ResponseTemplate::new(529)
                .set_body_json(serde_json::json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    mount_anthropic(&mock).await;
    let cfg = config(&pg.url, "anthropic", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("429") && stderr.contains("529"), "{stderr}");
    assert_eq!(
        pg.value(Some("anthropic"), "cost_collector_up", &[]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_non_admin_key_is_told_an_admin_key_is_required() {
    for (provider, var, key) in [
        ("anthropic", "ANTHROPIC_ADMIN_KEY", "sk-ant-api03-regular"),
        ("openai", "OPENAI_ADMIN_KEY", "sk-proj-regular"),
    ] {
        let pg = Pushgateway::start();
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
                "type": "error",
                "error": {"type": "permission_error", "message": "This endpoint requires an admin key"}
            })))
            .mount(&mock)
            .await;
        let cfg = config(&pg.url, provider, &mock.uri());
        let (code, stderr) = support::push(cfg.path(), &[(var, key)]).await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(
            stderr.to_lowercase().contains("admin key") && stderr.contains("is required"),
            "{stderr}"
        );
        assert_eq!(
            pg.value(
                Some(provider),
                "cost_collector_errors_total",
                &[("reason", "auth")]
            ),
            Some(1.0)
        );
        assert!(!stderr.contains(key));
    }
}

#[tokio::test]
async fn a_repeating_cursor_stops_with_a_pagination_error() {
    let pg = Pushgateway::start();
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{"starting_at": "2026-11-01T00:00:00Z", "ending_at": "2026-11-02T00:00:00Z", "results": []}],
            "has_more": true,
            "next_page": "page_same"
        })))
        .mount(&mock)
        .await;
    let cfg = config(&pg.url, "anthropic", &mock.uri());
    let (code, stderr) = support::push(cfg.path(), &[("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("repeats"), "{stderr}");
    assert_eq!(
        pg.value(
            Some("anthropic"),
            "cost_collector_errors_total",
            &[("reason", "pagination")]
        ),
        Some(1.0)
    );
    // The usage report stopped at the repeat (the cost report is read at the same time).
    let usage_requests = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/usage_report/messages"))
        .count();
    assert_eq!(usage_requests, 2, "stopped at the repeat");
}
