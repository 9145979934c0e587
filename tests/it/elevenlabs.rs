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

/// A run's clock on 7 December 2026 at noon UTC, and ten days later (17 December, 12:00 UTC).
const DECEMBER_7: &str = "2026-12-07T12:00:00Z";
const DECEMBER_17: i64 = 1_797_508_800;

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
    let at = DECEMBER_17;
    let api = mock(at).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"USD\"\n[pushgateway]\nurl = \"{}\"\n\
         [providers.elevenlabs]\nbase_url = \"{}\"\nbudget = 30\n",
        pg.url,
        api.uri()
    ));
    let env = [
        ("ELEVENLABS_API_KEY", KEY),
        ("COST_EXPORTER_NOW", DECEMBER_7),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
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
    // The overage so far is the spend; the next invoice (which includes it), due on the 17th,
    // the forecast. The current period's invoice was November's (a month before the next).
    assert_eq!(v("cost_spend", &[("service", "overage")]), Some(1.2));
    assert_eq!(pg.series(Some("elevenlabs"), "cost_spend").len(), 1);
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
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(v("cost_usage_limit", &chars), Some(90_000.0));
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure_that_says_what_to_fix() {
    let api = mock(DECEMBER_17).await;
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
    collect_at(api, DECEMBER_7, "currency = \"USD\"\n").await
}

/// `collect --only elevenlabs` with the run's clock at `now` and `settings` (the reporting
/// currency, the tax basis, rates) on top of the section.
async fn collect_at(api: &MockServer, now: &str, settings: &str) -> (Option<i32>, String, String) {
    let cfg = support::toml(&format!(
        "{settings}[http]\nretries = 0\n[providers.elevenlabs]\nbase_url = \"{}\"\n",
        api.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "elevenlabs"],
        &[("ELEVENLABS_API_KEY", KEY), ("COST_EXPORTER_NOW", now)],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_requests_follow(&spec(), api).await;
    (out.status.code(), stdout, stderr)
}

#[tokio::test]
async fn no_next_payment_attempt_is_read_as_none() {
    // The SDK: "-1 when there is no next payment attempt".
    let api = mock_with(DECEMBER_17, |b| {
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
    // No attempt: nothing falls due this month (the overage so far is the forecast), and no
    // date to renew on.
    assert!(
        stdout.contains("cost_forecast{currency=\"USD\",provider=\"elevenlabs\"} 1.2\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cost_renewal_timestamp_seconds{"),
        "{stdout}"
    );
}

#[tokio::test]
async fn nulls_missing_optionals_and_new_enum_values_never_fail_the_provider() {
    let api = mock_with(DECEMBER_17, |b| {
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
    let api = mock_with(DECEMBER_17, |b| {
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
    let api = mock_with(DECEMBER_17, |b| {
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

/// The fixture subscription on a plan billed per `period` in `currency`, without overage, its
/// next invoice of `due` cents (`subtotal` + `tax`) attempted at `attempt` (Unix time).
async fn plan(
    period: &str,
    currency: &str,
    due: i64,
    subtotal: i64,
    tax: i64,
    attempt: i64,
) -> MockServer {
    let (period, currency) = (period.to_owned(), currency.to_owned());
    mock_with(attempt, move |b| {
        b["billing_period"] = period.as_str().into();
        b["currency"] = currency.as_str().into();
        b["current_overage"] = serde_json::json!({"amount": "0.00", "currency": currency});
        b["next_invoice"]["amount_due_cents"] = due.into();
        b["next_invoice"]["subtotal_cents"] = subtotal.into();
        b["next_invoice"]["tax_cents"] = tax.into();
    })
    .await
}

/// `cost_forecast` and Σ `cost_spend` of `collect`'s output, in cents.
fn forecast_and_spend(stdout: &str) -> (i64, i64) {
    let cents =
        |l: &str| (l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
    let sum = |metric: &str| -> i64 {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("elevenlabs"))
            .map(cents)
            .sum()
    };
    (sum("cost_forecast"), sum("cost_spend"))
}

const EUR_WITH_USD: &str = "currency = \"EUR\"\n[fx]\nUSD = 0.92\n";

/// The table: an annual plan of $264 with VAT ($220 + $44), its next invoice due in
/// September 2027. December's invoices charge nothing of it: the forecast is 0 €, not the
/// 242.88 € (264 × 0.92) the job added every month whatever the invoice's date, period or
/// tax. In September the invoice is due: 202.40 € without tax (220 × 0.92), 242.88 € with;
/// once paid (the next attempt a year on) it is September's spend, and October has none.
#[tokio::test]
async fn an_annual_plan_is_its_invoice_in_the_month_it_falls_due_and_nothing_in_the_others() {
    // 14 September 2027 and 2028, 08:00 UTC.
    let (sept_2027, sept_2028) = (1_820_908_800, 1_852_531_200);
    let due = plan("annual_period", "usd", 26_400, 22_000, 4_400, sept_2027).await;
    let paid = plan("annual_period", "usd", 26_400, 22_000, 4_400, sept_2028).await;
    let excluded = EUR_WITH_USD.to_owned();
    let included = format!("tax = \"included\"\n{EUR_WITH_USD}");
    for (api, now, settings, want) in [
        (&due, DECEMBER_7, &excluded, (0, 0)),
        (&due, DECEMBER_7, &included, (0, 0)),
        (&due, "2027-09-01T00:00:00Z", &excluded, (20_240, 0)),
        (&due, "2027-09-01T00:00:00Z", &included, (24_288, 0)),
        (&paid, "2027-09-20T00:00:00Z", &excluded, (20_240, 20_240)),
        (&paid, "2027-09-30T23:59:59Z", &included, (24_288, 24_288)),
        (&paid, "2027-10-01T00:00:00Z", &excluded, (0, 0)),
    ] {
        let (code, stdout, stderr) = collect_at(api, now, settings).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            forecast_and_spend(&stdout),
            want,
            "{now} {settings}\n{stdout}"
        );
    }
}

/// The table: a monthly plan with 20 % VAT, its next invoice 28.26 € (23.55 € + 4.71 €)
/// due on the 20th. With `tax = "excluded"` December's forecast is 23.55 €, not the 28.26 € the
/// job read from `amount_due_cents` (which includes tax); with tax included, 28.26 €. The
/// renewal price follows the tax basis too.
#[tokio::test]
async fn the_next_invoice_follows_the_tax_basis() {
    // 20 December 2026, 08:00 UTC.
    let api = plan("monthly_period", "eur", 2_826, 2_355, 471, 1_797_753_600).await;
    for (settings, forecast) in [
        ("currency = \"EUR\"\n", 2_355),
        ("currency = \"EUR\"\ntax = \"excluded\"\n", 2_355),
        ("currency = \"EUR\"\ntax = \"included\"\n", 2_826),
    ] {
        let (code, stdout, stderr) = collect_at(&api, DECEMBER_7, settings).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            forecast_and_spend(&stdout),
            (forecast, 0),
            "{settings}\n{stdout}"
        );
        let renewal = stdout
            .lines()
            .find(|l| l.starts_with("cost_renewal_price{"))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            renewal.ends_with(&format!(" {}", forecast as f64 / 100.0)),
            "{renewal}"
        );
    }
}

/// An invoice attempted at the next month's 00:00 is next month's; the current period's,
/// a month before it, is this month's spend; a leap February has its 29th.
#[tokio::test]
async fn an_invoice_is_due_in_the_utc_month_of_its_payment_attempt() {
    // 1 March 2028 at 00:00 UTC: February's last second has the invoice of 1 February (a
    // month before) as spend and nothing more due; March's first second has it due.
    let api = plan("monthly_period", "eur", 2_826, 2_355, 471, 1_835_481_600).await;
    for (now, want) in [
        ("2028-02-29T23:59:59Z", (2_355, 2_355)),
        ("2028-03-01T00:00:00Z", (2_355, 0)),
    ] {
        let (code, stdout, stderr) = collect_at(&api, now, "currency = \"EUR\"\n").await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(forecast_and_spend(&stdout), want, "{now}\n{stdout}");
    }
    // 29 February 2028 at 23:00 UTC, the run an hour before: due in February.
    let api = plan("monthly_period", "eur", 2_826, 2_355, 471, 1_835_478_000).await;
    let (code, stdout, stderr) =
        collect_at(&api, "2028-02-29T22:00:00Z", "currency = \"EUR\"\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(forecast_and_spend(&stdout), (2_355, 0), "{stdout}");
}
