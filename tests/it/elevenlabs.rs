//! The ElevenLabs collector end to end against a loopback mock that checks the `xi-api-key`
//! header and answers with the documented subscription (`tests/fixtures/elevenlabs/`); the real
//! binary and a real Pushgateway. ElevenLabs publishes only generated SDKs: the mock's oracle is
//! an OpenAPI document written from the Python SDK's types (`tests/fixtures/elevenlabs/`), and
//! every request and answer is held against it.

use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer};

use crate::contract::{Spec, assert_requests_follow};
use crate::support::{self, Pushgateway};

const SUBSCRIPTION: &str = "/v1/user/subscription";

/// The description derived from the SDK.
pub fn spec() -> Spec {
    Spec::load("elevenlabs/openapi.json")
}

/// The fixture subscription, its quota window resetting (and its invoice due) at `reset`.
fn subscription(reset: i64) -> Value {
    let text = std::fs::read_to_string(support::fixture("elevenlabs/subscription.json"))
        .unwrap()
        .replace("{{RESET}}", &reset.to_string());
    serde_json::from_str(&text).unwrap()
}

pub const KEY: &str = "sk_elevenlabs_test_2718";

/// The quota window resets (and the next invoice is due) in ten days.
fn reset() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 10 * 86_400
}

pub async fn mock(reset: i64) -> MockServer {
    mock_body(subscription(reset)).await
}

/// A mock that answers `body` (checked against the description) to the right key, and
/// ElevenLabs' 401 to any other.
async fn mock_body(body: Value) -> MockServer {
    let spec = spec();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SUBSCRIPTION))
        .and(header("xi-api-key", KEY))
        .respond_with(spec.answer("get", SUBSCRIPTION, 200, body))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(spec.answer(
            "get",
            SUBSCRIPTION,
            401,
            serde_json::json!({
                "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
            }),
        ))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn characters_against_the_plan_its_reset_the_overage_and_the_next_invoice() {
    let at = reset();
    let api = mock(at).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n\
         [providers.elevenlabs]\nbase_url = \"{}\"\nbudget = 30\n",
        pg.url,
        api.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[("ELEVENLABS_API_KEY", KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let v = |m: &str, l: &[(&str, &str)]| pg.value(Some("elevenlabs"), m, l);
    let chars = [("resource", "characters"), ("unit", "characters")];
    assert_eq!(v("cost_usage", &chars), Some(81_000.0));
    assert_eq!(v("cost_usage_limit", &chars), Some(100_000.0));
    assert_eq!(
        v(
            "cost_usage_reset_timestamp_seconds",
            &[("resource", "characters")]
        ),
        Some(at as f64)
    );
    assert_eq!(v("cost_plan_info", &[("plan", "creator")]), Some(1.0));
    // The overage so far is the spend; the next invoice (which includes it) the forecast.
    assert_eq!(v("cost_spend", &[("service", "overage")]), Some(1.2));
    assert_eq!(v("cost_forecast", &[]), Some(23.2));
    assert_eq!(v("cost_renewal_price", &[("name", "creator")]), Some(23.2));
    assert_eq!(
        v("cost_renewal_timestamp_seconds", &[("name", "creator")]),
        Some(at as f64)
    );
    assert!(!stderr.contains(KEY) && !pg.dump().contains(KEY));

    // The plan's limit can be overridden, as for the other providers.
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n\
         [providers.elevenlabs]\nbase_url = \"{}\"\n[providers.elevenlabs.limits]\ncharacters = 90000\n",
        pg.url,
        api.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[("ELEVENLABS_API_KEY", KEY)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v("cost_usage_limit", &chars), Some(90_000.0));
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure_that_says_what_to_fix() {
    let api = mock(reset()).await;
    let cfg = support::toml(&format!(
        "[providers.elevenlabs]\nbase_url = \"{}\"\n",
        api.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path],
        &[("ELEVENLABS_API_KEY", "sk_wrong_0000")],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("User: Read"), "{stderr}");
    assert!(
        stdout.contains("cost_collector_errors_total{provider=\"elevenlabs\",reason=\"auth\"} 1"),
        "{stdout}"
    );
    assert!(!stderr.contains("sk_wrong_0000"));
    assert_requests_follow(&spec(), &api).await;
}

/// The fixture subscription with `change` applied (the description must still allow it).
async fn mock_with(reset: i64, change: impl FnOnce(&mut Value)) -> MockServer {
    let mut body = subscription(reset);
    change(&mut body);
    mock_body(body).await
}

async fn collect(api: &MockServer) -> (Option<i32>, String, String) {
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[http]\nretries = 0\n[providers.elevenlabs]\nbase_url = \"{}\"\n",
        api.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "elevenlabs"],
        &[("ELEVENLABS_API_KEY", KEY)],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_requests_follow(&spec(), api).await;
    (out.status.code(), stdout, stderr)
}

#[tokio::test]
async fn no_next_payment_attempt_is_read_as_none() {
    // The SDK: "-1 when there is no next payment attempt".
    let api = mock_with(reset(), |b| {
        b["next_invoice"]["next_payment_attempt_unix"] = (-1).into();
    })
    .await;
    let (code, stdout, stderr) = collect(&api).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "cost_spend{currency=\"USD\",provider=\"elevenlabs\",service=\"overage\"} 1.2"
        ),
        "{stdout}"
    );
    // The invoice is still owed; it has no date to renew on.
    assert!(
        stdout.contains("cost_forecast{currency=\"USD\",provider=\"elevenlabs\"} 23.2"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cost_renewal_timestamp_seconds{"),
        "{stdout}"
    );
}

#[tokio::test]
async fn nulls_missing_optionals_and_new_enum_values_never_fail_the_provider() {
    let api = mock_with(reset(), |b| {
        let o = b.as_object_mut().unwrap();
        for k in [
            "max_character_limit_extension",
            "max_voice_add_edits",
            "pending_change",
            "has_used_starter_coupon_on_account",
            "has_used_creator_coupon_on_account",
            "billing_period",
        ] {
            o.remove(k);
        }
        o.insert("next_character_count_reset_unix".into(), Value::Null);
        o.insert("next_invoice".into(), Value::Null);
        o.insert("character_refresh_period".into(), "weekly_period".into());
        o.insert("status".into(), "paused_for_review".into());
        o.insert("tier".into(), "scale_2027_01_01".into());
        o.insert("max_credit_limit_extension".into(), "unlimited".into());
    })
    .await;
    let (code, stdout, stderr) = collect(&api).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("cost_plan_info{plan=\"scale_2027_01_01\",provider=\"elevenlabs\"} 1"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cost_usage_reset_timestamp_seconds{"),
        "{stdout}"
    );

    // A currency this build cannot price (the SDK's currency enum is open): the money is left
    // out with a warning, the quota still reported.
    let api = mock_with(reset(), |b| {
        b["currency"] = "credits".into();
        b["current_overage"]["currency"] = "credits".into();
    })
    .await;
    let (code, stdout, stderr) = collect(&api).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "cost_usage{provider=\"elevenlabs\",resource=\"characters\",unit=\"characters\"} 81000"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("cost_spend{"), "{stdout}");
    assert!(
        stdout.contains(
            "cost_collector_records_skipped{provider=\"elevenlabs\",reason=\"unknown_currency\"} 2"
        ),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("credits"), "{stderr}");
}

#[tokio::test]
async fn an_overage_no_decimal_can_subtract_is_decode_never_a_panic() {
    let api = mock_with(reset(), |b| {
        b["current_overage"]["amount"] = "-79228162514264337593543950335".into();
    })
    .await;
    let (code, stdout, stderr) = collect(&api).await;
    assert_ne!(code, Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stdout.contains("cost_collector_errors_total{provider=\"elevenlabs\",reason=\"decode\"} 1"),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("cost_spend{"), "{stdout}");
}

/// The control: the checker refuses a request and an answer ElevenLabs' SDK would not make or
/// accept, so the tests above could fail.
#[test]
fn the_description_catches_an_off_description_request_and_answer() {
    let spec = spec();
    let request = |url: &str, key: bool| {
        let mut headers = wiremock::http::HeaderMap::new();
        if key {
            headers.insert("xi-api-key", KEY.parse().unwrap());
        }
        wiremock::Request {
            url: url::Url::parse(url).unwrap(),
            method: wiremock::http::Method::GET,
            headers,
            body: vec![],
        }
    };
    let ok = format!("http://127.0.0.1{SUBSCRIPTION}");
    assert_eq!(
        spec.request_violations(&request(&ok, true)),
        Vec::<String>::new()
    );
    for (url, key, expect) in [
        (ok.clone(), false, "authentication"),
        (format!("{ok}?workspace=1"), true, "not in the description"),
        (
            "http://127.0.0.1/v2/user/subscription".into(),
            true,
            "no such operation",
        ),
    ] {
        let v = spec.request_violations(&request(&url, key));
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{url}: {expect} not in {v:?}"
        );
    }
    assert!(
        spec.answer_violations("get", SUBSCRIPTION, 200, &subscription(1))
            .is_empty()
    );
    let mut no_overage = subscription(1);
    no_overage
        .as_object_mut()
        .unwrap()
        .remove("current_overage");
    let mut text_count = subscription(1);
    text_count["character_count"] = "81000".into();
    let mut no_attempt = subscription(1);
    no_attempt["next_invoice"]
        .as_object_mut()
        .unwrap()
        .remove("next_payment_attempt_unix");
    for (body, expect) in [
        (no_overage, "lacks required \"current_overage\""),
        (text_count, "is not of type integer"),
        (no_attempt, "lacks required \"next_payment_attempt_unix\""),
    ] {
        let v = spec.answer_violations("get", SUBSCRIPTION, 200, &body);
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{expect} not in {v:?}"
        );
    }
}
