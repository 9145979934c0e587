//! The Hostinger collector end to end against a loopback mock that checks the bearer token and
//! the JSON content type, and answers only what Hostinger's OpenAPI description allows: every
//! request and answer is held against the copy pinned in `tests/fixtures/hostinger/`; the real
//! binary and a real Pushgateway.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer};

use crate::contract::{Spec, assert_requests_follow};
use crate::ovh::{Dates, month_end};
use crate::support::{self, Pushgateway};

pub const TOKEN: &str = "hostinger-test-token-3141";
const SUBSCRIPTIONS: &str = "/api/billing/v1/subscriptions";

/// Hostinger's pinned description.
pub fn spec() -> Spec {
    Spec::load("hostinger/openapi.json")
}

fn subscriptions(d: &Dates) -> Value {
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let next_year = month_end(support::month_start()) + time::Duration::days(400);
    let text = std::fs::read_to_string(support::fixture("hostinger/subscriptions.json"))
        .unwrap()
        .replace("{{LATER}}", &rfc(d.later))
        .replace("{{NEXT}}", &rfc(d.next))
        .replace("{{NEXT_YEAR}}", &rfc(next_year));
    serde_json::from_str(&text).unwrap()
}

pub async fn mock(d: &Dates) -> MockServer {
    mock_body(subscriptions(d)).await
}

/// A mock that answers `subscriptions` (checked against the description) to the right token
/// with the content type the description asks of every request, and the description's 401 to
/// anything else.
async fn mock_body(subscriptions: Value) -> MockServer {
    let spec = spec();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUBSCRIPTIONS))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(spec.answer("get", SUBSCRIPTIONS, 200, subscriptions))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(spec.answer(
            "get",
            SUBSCRIPTIONS,
            401,
            serde_json::json!({"message": "Unauthenticated", "correlation_id": "c0ffee"}),
        ))
        .mount(&server)
        .await;
    server
}

/// The control: the checker refuses a request and an answer the description does not allow,
/// so the tests below could fail.
#[test]
fn the_description_catches_an_off_description_request_and_answer() {
    let spec = spec();
    let request = |url: &str, bearer: bool| {
        let mut headers = wiremock::http::HeaderMap::new();
        if bearer {
            headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        }
        wiremock::Request {
            url: url::Url::parse(url).unwrap(),
            method: wiremock::http::Method::GET,
            headers,
            body: vec![],
        }
    };
    let ok = format!("http://127.0.0.1{SUBSCRIPTIONS}");
    assert_eq!(
        spec.request_violations(&request(&ok, true)),
        Vec::<String>::new()
    );
    for (url, bearer, expect) in [
        (ok.clone(), false, "authentication"),
        (format!("{ok}?page=2"), true, "not in the description"),
        (
            "http://127.0.0.1/api/billing/v1/orders".into(),
            true,
            "no such operation",
        ),
    ] {
        let v = spec.request_violations(&request(&url, bearer));
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{url}: {expect} not in {v:?}"
        );
    }
    let good = subscriptions(&Dates::now());
    assert!(
        spec.answer_violations("get", SUBSCRIPTIONS, 200, &good)
            .is_empty()
    );
    let mut text_price = good.clone();
    text_price[0]["total_price"] = "5.99".into();
    let mut unknown_status = good.clone();
    unknown_status[0]["status"] = "suspended".into();
    let mut bad_date = good;
    bad_date[0]["next_billing_at"] = "tomorrow".into();
    for (body, expect) in [
        (text_price, "is not of type integer"),
        (unknown_status, "is not one of"),
        (bad_date, "RFC 3339"),
    ] {
        let v = spec.answer_violations("get", SUBSCRIPTIONS, 200, &body);
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{expect} not in {v:?}"
        );
    }
}

#[tokio::test]
async fn subscriptions_become_monthly_amounts_with_their_renewals() {
    let dates = Dates::now();
    let api = mock(&dates).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[pushgateway]\nurl = \"{}\"\n\
         [providers.hostinger]\nbase_url = \"{}\"\nbudget = 20\n",
        pg.url,
        api.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[("HOSTINGER_API_TOKEN", TOKEN)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let spend = |name: &str| {
        pg.value(
            Some("hostinger"),
            "cost_spend",
            &[("name", name), ("basis", "derived")],
        )
    };
    // 5.99 a month; 143.52 over 48 months; 11.99 a year; the cancelled VPS not at all.
    assert_eq!(spend("KVM 1"), Some(5.99));
    assert_eq!(spend("Premium Web Hosting"), Some(2.99));
    assert_eq!(spend("Domain example.org"), Some(0.999167));
    assert_eq!(pg.series(Some("hostinger"), "cost_spend").len(), 3);
    // Fixed monthly equivalents: the forecast is their sum.
    let forecast = pg.value(Some("hostinger"), "cost_forecast", &[]).unwrap();
    assert!(
        (forecast - (5.99 + 2.99 + 0.999167)).abs() < 1e-9,
        "{forecast}"
    );
    // The VPS renews later this month at 9.99, above its 5.99.
    let r = |m: &str, name: &str| pg.value(Some("hostinger"), m, &[("name", name)]);
    assert_eq!(r("cost_renewal_price", "KVM 1"), Some(9.99));
    assert_eq!(r("cost_renewal_current_price", "KVM 1"), Some(5.99));
    assert_eq!(r("cost_renewal_automatic", "KVM 1"), Some(1.0));
    assert_eq!(
        r("cost_renewal_timestamp_seconds", "KVM 1").map(|v| v as i64),
        Some(dates.later.unix_timestamp())
    );
    // The prepaid plan does not renew by itself; its renewal date is its expiry.
    assert_eq!(
        r("cost_renewal_automatic", "Premium Web Hosting"),
        Some(0.0)
    );
    assert_eq!(r("cost_renewal_price", "Premium Web Hosting"), Some(383.52));
    assert_requests_follow(&spec(), &api).await;
    assert!(!stderr.contains(TOKEN) && !pg.dump().contains(TOKEN));
}

#[tokio::test]
async fn a_refused_token_says_what_to_fix() {
    let dates = Dates::now();
    let api = mock(&dates).await;
    let cfg = support::toml(&format!(
        "[providers.hostinger]\nbase_url = \"{}\"\n",
        api.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path],
        &[("HOSTINGER_API_TOKEN", "hostinger-wrong-0000")],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("hPanel"), "{stderr}");
    assert!(
        stdout.contains("cost_collector_up{provider=\"hostinger\"} 0"),
        "{stdout}"
    );
    assert!(!stderr.contains("hostinger-wrong-0000"));
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn one_odd_subscription_is_skipped_with_a_warning_and_the_rest_counted() {
    let dates = Dates::now();
    let mut subs = subscriptions(&dates);
    let base = subs[0].clone();
    let odd = |id: &str, change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut s = base.clone();
        s["id"] = Value::from(id);
        s["name"] = Value::from(format!("Odd {id}"));
        change(s.as_object_mut().unwrap());
        s
    };
    // No field is required by the spec, and the unit has no enum.
    let extra = [
        odd("Odd1NoPrice", &|s| {
            s.remove("total_price");
        }),
        odd("Odd2NoUnit", &|s| {
            s.remove("billing_period_unit");
        }),
        odd("Odd3NoPeriod", &|s| {
            s.remove("billing_period");
        }),
        odd("Odd4Fortnight", &|s| {
            s.insert("billing_period_unit".into(), Value::from("fortnight"));
        }),
        odd("Odd5Currency", &|s| {
            s.insert("currency_code".into(), Value::from("HOSTINGER_CREDITS"));
        }),
    ];
    subs.as_array_mut().unwrap().extend(extra);
    // Every odd one is an answer the description allows.
    let server = mock_body(subs).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[pushgateway]\nurl = \"{}\"\n[providers.hostinger]\nbase_url = \"{}\"\n",
        pg.url,
        server.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[("HOSTINGER_API_TOKEN", TOKEN)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let spend = |name: &str| {
        pg.value(
            Some("hostinger"),
            "cost_spend",
            &[("name", name), ("basis", "derived")],
        )
    };
    // The three good subscriptions as ever; none of the odd ones.
    assert_eq!(spend("KVM 1"), Some(5.99));
    assert_eq!(spend("Premium Web Hosting"), Some(2.99));
    assert_eq!(spend("Domain example.org"), Some(0.999167));
    assert_eq!(pg.series(Some("hostinger"), "cost_spend").len(), 3);
    let skipped = |reason: &str| {
        pg.value(
            Some("hostinger"),
            "cost_collector_records_skipped",
            &[("reason", reason)],
        )
    };
    assert_eq!(skipped("missing_field"), Some(3.0), "{stderr}");
    assert_eq!(skipped("unknown_unit"), Some(1.0), "{stderr}");
    assert_eq!(skipped("unknown_currency"), Some(1.0), "{stderr}");
    for id in [
        "Odd1NoPrice",
        "Odd2NoUnit",
        "Odd3NoPeriod",
        "Odd4Fortnight",
        "Odd5Currency",
    ] {
        assert!(stderr.contains(id), "{id} named in a warning: {stderr}");
    }
    assert_requests_follow(&spec(), &server).await;
}
