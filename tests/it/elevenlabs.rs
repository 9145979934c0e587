//! The ElevenLabs collector end to end against a loopback mock that checks the `xi-api-key`
//! header and answers with the documented subscription (`tests/fixtures/elevenlabs/`); the real
//! binary and a real Pushgateway.

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, Pushgateway};

pub const KEY: &str = "sk_elevenlabs_test_2718";

/// The quota window resets (and the next invoice is due) in ten days.
fn reset() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 10 * 86_400
}

pub async fn mock(reset: i64) -> MockServer {
    let server = MockServer::start().await;
    let body = std::fs::read_to_string(support::fixture("elevenlabs/subscription.json"))
        .unwrap()
        .replace("{{RESET}}", &reset.to_string());
    Mock::given(method("GET"))
        .and(path("/v1/user/subscription"))
        .and(header("xi-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
        })))
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
}
