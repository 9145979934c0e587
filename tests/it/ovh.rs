//! The OVHcloud collector end to end against a loopback mock that checks what OVH checks: the
//! `$1$` signature over the URL as sent, the timestamp against its own clock (served skewed by
//! `/auth/time`), the OAuth2 client credentials and the bearer token, GET only, documented
//! paths and parameters (`tests/fixtures/ovh/`); the real binary and a real Pushgateway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::{Spec, assert_requests_follow};
use crate::support::{self, Pushgateway};

pub const AK: &str = "ak-test-7f3a";
const AS: &str = "as-test-secret-91b2";
pub const CK: &str = "ck-test-consumer-55e0";
const CLIENT_ID: &str = "ovh-sa-client-1234";
const CLIENT_SECRET: &str = "ovh-sa-secret-9876";
const TOKEN: &str = "ovh-bearer-token-abcd";

/// The fixture's dates, relative to now.
pub struct Dates {
    pub day1: OffsetDateTime,
    pub day2: OffsetDateTime,
    pub last_month: OffsetDateTime,
    pub later: OffsetDateTime,
    pub next: OffsetDateTime,
}

impl Dates {
    pub fn now() -> Dates {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let start = support::month_start();
        let end = month_end(start);
        Dates {
            day1: start + (now - start) / 4,
            day2: start + (now - start) / 2,
            last_month: start - time::Duration::days(3),
            later: now + (end - now) / 2,
            next: end + time::Duration::days(3),
        }
    }
}

pub fn month_end(start: OffsetDateTime) -> OffsetDateTime {
    let (y, m) = if start.month() == time::Month::December {
        (start.year() + 1, time::Month::January)
    } else {
        (start.year(), start.month().next())
    };
    time::Date::from_calendar_date(y, m, 1)
        .unwrap()
        .midnight()
        .assume_utc()
}

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The fixture account with its dates filled in.
pub fn account(d: &Dates) -> Value {
    let text = std::fs::read_to_string(support::fixture("ovh/account.json")).unwrap();
    let date = |t: OffsetDateTime| t.date().to_string();
    let text = text
        .replace("{{DAY1_DATE}}", &date(d.day1))
        .replace("{{DAY2_DATE}}", &date(d.day2))
        .replace("{{LAST_MONTH_DATE}}", &date(d.last_month))
        .replace("{{DAY1}}", &rfc(d.day1))
        .replace("{{DAY2}}", &rfc(d.day2))
        .replace("{{LAST_MONTH}}", &rfc(d.last_month))
        .replace("{{LATER}}", &rfc(d.later))
        .replace("{{NEXT}}", &rfc(d.next));
    assert!(!text.contains("{{"), "a placeholder is left");
    serde_json::from_str(&text).unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sha1_signature(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    format!("$1${}", hex::encode(d.as_ref()))
}

/// How the mock authenticates calls.
#[derive(Clone, Copy, PartialEq)]
pub enum Auth {
    /// Application keys: the signature and timestamp are checked.
    Signed,
    /// A bearer token from the token endpoint.
    Bearer,
}

/// What the mock does; changed by tests between runs.
pub struct Behaviour {
    pub auth: Auth,
    /// Seconds the server's clock is ahead of the local one (served by `/auth/time`).
    pub offset: i64,
    /// Seconds the clock the server *checks* with differs from the one it serves: a clock
    /// that moved during the run.
    pub drift: i64,
    /// Path prefixes the key has no access rule for.
    pub denied: Vec<&'static str>,
    /// The bearer token is refused (expired).
    pub token_expired: bool,
    /// Every call answers 503.
    pub down: bool,
}

impl Behaviour {
    pub fn signed() -> Behaviour {
        Behaviour {
            auth: Auth::Signed,
            offset: 3700,
            drift: 0,
            denied: Vec::new(),
            token_expired: false,
            down: false,
        }
    }
}

/// The mocked `https://eu.api.ovh.com/1.0`: every answer checked against the description.
pub struct OvhApi {
    account: Value,
    spec: Spec,
    pub behaviour: Arc<Mutex<Behaviour>>,
}

/// OVHcloud's pinned description, for a mock serving it under `/1.0`.
pub fn spec() -> Spec {
    Spec::load("ovh/openapi.json").with_prefix("/1.0")
}

fn ovh_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errorCode": code,
        "httpCode": format!("{status} {}", if status == 403 { "Forbidden" } else { "Bad Request" }),
        "message": message,
    }))
}

impl Respond for OvhApi {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let b = self.behaviour.lock().unwrap();
        if req.method != wiremock::http::Method::GET {
            return ResponseTemplate::new(405);
        }
        if b.down {
            return ResponseTemplate::new(503).set_body_string("maintenance");
        }
        let Some(path) = req.url.path().strip_prefix("/1.0") else {
            return ResponseTemplate::new(404);
        };
        let server_now = unix_now() + b.offset;
        if path == "/auth/time" {
            return self
                .spec
                .answer("get", "/auth/time", 200, json!(server_now));
        }
        let header = |n: &str| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        match b.auth {
            Auth::Signed => {
                if header("x-ovh-application") != AK {
                    return ovh_error(403, "INVALID_KEY", "This application key is invalid");
                }
                if header("x-ovh-consumer") != CK {
                    return ovh_error(403, "INVALID_CREDENTIAL", "This credential does not exist");
                }
                let ts: i64 = header("x-ovh-timestamp").parse().unwrap_or(0);
                // OVH checks the timestamp against its own clock; a skew reads as a bad
                // signature.
                if (ts - (server_now + b.drift)).abs() > 5 {
                    return ovh_error(400, "INVALID_SIGNATURE", "Invalid signature");
                }
                // The URL as sent: wiremock knows the path and query; the host is the header.
                let sent = format!(
                    "http://{}{}{}",
                    header("host"),
                    req.url.path(),
                    req.url.query().map(|q| format!("?{q}")).unwrap_or_default()
                );
                let expected = sha1_signature(&format!("{AS}+{CK}+GET+{sent}++{ts}"));
                if header("x-ovh-signature") != expected {
                    return ovh_error(400, "INVALID_SIGNATURE", "Invalid signature");
                }
            }
            Auth::Bearer => {
                if b.token_expired || header("authorization") != format!("Bearer {TOKEN}") {
                    return ResponseTemplate::new(401).set_body_json(json!({
                        "class": "Client::Unauthorized",
                        "message": "The access token is expired or invalid",
                    }));
                }
            }
        }
        if b.denied.iter().any(|d| path.starts_with(d)) {
            return ovh_error(403, "NOT_GRANTED_CALL", "This call has not been granted");
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let a = &self.account;
        // OVH's errors are not in its description; its answers are, and are checked.
        let ok = |template: &str, v: Value| self.spec.answer("get", template, 200, v);
        match segs.as_slice() {
            ["me", "bill"] => {
                for k in ["date.from", "date.to"] {
                    match q.get(k).map(|v| OffsetDateTime::parse(v, &Rfc3339)) {
                        Some(Ok(_)) => {}
                        _ => return ovh_error(400, "BAD_PARAMETER", "Invalid date"),
                    }
                }
                // Every bill, last month's too: the collector must check the dates itself.
                let ids: Vec<&String> = a["bills"].as_object().unwrap().keys().collect();
                ok("/me/bill", json!(ids))
            }
            ["me", "bill", id] => match a["bills"].get(*id) {
                Some(b) => ok("/me/bill/{billId}", b["bill"].clone()),
                None => ResponseTemplate::new(404),
            },
            ["me", "bill", id, "details"] => match a["bills"].get(*id) {
                Some(b) => {
                    let ids: Vec<&String> = b["details"].as_object().unwrap().keys().collect();
                    ok("/me/bill/{billId}/details", json!(ids))
                }
                None => ResponseTemplate::new(404),
            },
            ["me", "bill", id, "details", d] => match a["bills"].get(*id) {
                Some(b) if b["details"].get(*d).is_some() => ok(
                    "/me/bill/{billId}/details/{billDetailId}",
                    b["details"][*d].clone(),
                ),
                _ => ResponseTemplate::new(404),
            },
            ["me", "refund"] => {
                for k in ["date.from", "date.to"] {
                    match q.get(k).map(|v| OffsetDateTime::parse(v, &Rfc3339)) {
                        Some(Ok(_)) => {}
                        _ => return ovh_error(400, "BAD_PARAMETER", "Invalid date"),
                    }
                }
                // Every credit note, last month's too, as for bills.
                let ids: Vec<&String> = a["refunds"].as_object().unwrap().keys().collect();
                ok("/me/refund", json!(ids))
            }
            ["me", "refund", id] => match a["refunds"].get(*id) {
                Some(r) => ok("/me/refund/{refundId}", r["refund"].clone()),
                None => ResponseTemplate::new(404),
            },
            ["me", "refund", id, "details"] => match a["refunds"].get(*id) {
                Some(r) => {
                    let ids: Vec<&String> = r["details"].as_object().unwrap().keys().collect();
                    ok("/me/refund/{refundId}/details", json!(ids))
                }
                None => ResponseTemplate::new(404),
            },
            ["me", "refund", id, "details", d] => match a["refunds"].get(*id) {
                Some(r) if r["details"].get(*d).is_some() => ok(
                    "/me/refund/{refundId}/details/{refundDetailId}",
                    r["details"][*d].clone(),
                ),
                _ => ResponseTemplate::new(404),
            },
            ["services"] => {
                let ids: Vec<u64> = a["services"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| k.parse().unwrap())
                    .collect();
                ok("/services", json!(ids))
            }
            ["services", id] => match a["services"].get(*id) {
                Some(s) => ok("/services/{serviceId}", s.clone()),
                None => ResponseTemplate::new(404),
            },
            _ => ResponseTemplate::new(404)
                .set_body_json(json!({"message": "Got an invalid (or empty) URL"})),
        }
    }
}

/// The mocked OAuth2 token endpoint: client credentials in a form body.
struct TokenEndpoint;

impl Respond for TokenEndpoint {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let good = req.method == wiremock::http::Method::POST
            && ct == "application/x-www-form-urlencoded"
            && form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
            && form.get("scope").map(String::as_str) == Some("all");
        if good {
            ResponseTemplate::new(200).set_body_json(json!({
                "access_token": TOKEN, "token_type": "Bearer", "expires_in": 3599, "scope": "all"
            }))
        } else {
            ResponseTemplate::new(401).set_body_json(
                json!({"error": "invalid_client", "error_description": "client authentication failed"}),
            )
        }
    }
}

/// Mounts the API on `server` (under `/1.0`); returns the behaviour switch.
pub async fn mount(server: &MockServer, dates: &Dates, b: Behaviour) -> Arc<Mutex<Behaviour>> {
    mount_account(server, account(dates), b).await
}

/// Mounts the API serving `account` (the fixture's shape) on `server`.
pub async fn mount_account(
    server: &MockServer,
    account: Value,
    b: Behaviour,
) -> Arc<Mutex<Behaviour>> {
    let behaviour = Arc::new(Mutex::new(b));
    Mock::given(wiremock::matchers::any())
        .respond_with(OvhApi {
            account,
            spec: spec(),
            behaviour: Arc::clone(&behaviour),
        })
        .mount(server)
        .await;
    behaviour
}

/// The section that points the collector at the mocks.
pub fn section(api: &MockServer, token: Option<&MockServer>) -> String {
    let token = token.map_or(String::new(), |t| {
        format!("token_url = \"{}/auth/oauth2/token\"\n", t.uri())
    });
    format!(
        "[providers.ovh]\nbase_url = \"{}/1.0\"\n{token}requests_per_minute = 6000\nbudget = 300\n",
        api.uri()
    )
}

/// Application-key credentials for the binary.
pub const SIGNED_ENV: &[(&str, &str)] = &[
    ("OVH_APPLICATION_KEY", AK),
    ("OVH_APPLICATION_SECRET", AS),
    ("OVH_CONSUMER_KEY", CK),
];

fn config(pg: &str, extra: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 0\n{extra}"
    ))
}

#[test]
fn the_fixture_account_follows_the_description() {
    let a = account(&Dates::now());
    let spec = spec();
    let mut out = Vec::new();
    for (id, b) in a["bills"].as_object().unwrap() {
        out.extend(spec.value_violations("billing.Bill", &b["bill"]));
        for v in b["details"].as_object().unwrap().values() {
            out.extend(spec.value_violations("billing.BillDetail", v));
        }
        assert_eq!(b["bill"]["billId"], id.as_str());
    }
    for r in a["refunds"].as_object().unwrap().values() {
        out.extend(spec.value_violations("billing.Refund", &r["refund"]));
        for v in r["details"].as_object().unwrap().values() {
            out.extend(spec.value_violations("billing.RefundDetail", v));
        }
    }
    for s in a["services"].as_object().unwrap().values() {
        out.extend(spec.value_violations("services.expanded.Service", s));
    }
    assert!(out.is_empty(), "{out:#?}");
}

/// The control: the checker refuses a request and an answer OVH's description does not allow,
/// so the mock above could not accept them.
#[test]
fn the_description_catches_an_off_description_request_and_answer() {
    let spec = spec();
    let request = |path_and_query: &str| wiremock::Request {
        url: url::Url::parse(&format!("http://127.0.0.1/1.0{path_and_query}")).unwrap(),
        method: wiremock::http::Method::GET,
        headers: wiremock::http::HeaderMap::new(),
        body: vec![],
    };
    let ok = "/me/refund?date.from=2026-11-01T00%3A00%3A00Z&date.to=2026-11-30T00%3A00%3A00Z";
    assert_eq!(spec.request_violations(&request(ok)), Vec::<String>::new());
    for (pq, expect) in [
        ("/me/bill?date.from=yesterday", "RFC 3339"),
        (
            "/me/bill?from=2026-11-01T00%3A00%3A00Z",
            "not in the description",
        ),
        ("/me/bill?category=rent", "is not one of"),
        ("/services/ns1001", "is not an integer"),
        ("/me/consumption/usage/current", "no such operation"),
    ] {
        let v = spec.request_violations(&request(pq));
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{pq}: {expect} not in {v:?}"
        );
    }
    let a = account(&Dates::now());
    let bill = &a["bills"]["FR0001"]["bill"];
    assert!(
        spec.answer_violations("get", "/me/bill/{billId}", 200, bill)
            .is_empty()
    );
    let mut bitcoin = bill.clone();
    bitcoin["priceWithTax"]["currencyCode"] = "XBT".into();
    let mut text_cents = bill.clone();
    text_cents["tax"]["priceInUcents"] = "1290000000".into();
    for (body, expect) in [
        (bitcoin, "is not one of"),
        (text_cents, "is not of type integer"),
    ] {
        let v = spec.answer_violations("get", "/me/bill/{billId}", 200, &body);
        assert!(
            v.iter().any(|m| m.contains(expect)),
            "{expect} not in {v:?}"
        );
    }
    // OVH's errors are no documented answer: a mock cannot pass one off as a bill.
    let v = spec.answer_violations("get", "/me/bill/{billId}", 404, &json!({}));
    assert!(
        v.iter().any(|m| m.contains("not a documented answer")),
        "{v:?}"
    );
    let v = spec.answer_violations("get", "/services", 200, &json!(["101"]));
    assert!(
        v.iter().any(|m| m.contains("is not of type integer")),
        "{v:?}"
    );
}

fn spend(pg: &Pushgateway, name: &str) -> Option<f64> {
    pg.value(Some("ovh"), "cost_spend", &[("name", name)])
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

#[tokio::test]
async fn signed_with_the_servers_clock_bills_are_summed_per_service_and_renewals_forecast() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    mount(&api, &dates, Behaviour::signed()).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &section(&api, None));
    let (code, stderr) = support::push(cfg.path(), SIGNED_ENV).await;
    assert_eq!(code, Some(0), "{stderr}");

    // This month's three bills, per service, to the cent; last month's bill not counted.
    for (name, eur) in [
        // 62.50 billed, 10.00 credited back by this month's credit note.
        ("ns1001.ip-51-68-1.eu", 52.50),
        ("ns1002.ip-51-68-2.eu", 62.50),
        ("ip-51.68.1.10", 2.00),
        ("ftpback-rbx1-1.ovh.net", 4.00),
        ("unattributed", 0.50),
    ] {
        assert_eq!(spend(&pg, name).map(cents), Some(cents(eur)), "{name}");
    }
    assert_eq!(
        spend(&pg, "ns1003.ip-51-68-3.eu"),
        None,
        "last month's bill"
    );
    let total: f64 = pg
        .series(Some("ovh"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    // Σ priceWithoutTax of the month's bills, 64.50 + 62.50 + 4.50, less the month's credit
    // note (10.00); last month's credit note (5.00) is last month's.
    assert_eq!(cents(total), 12150);
    // The forecast adds the automatic renewal later this month (69.99), not the manual one.
    let forecast = pg.value(Some("ovh"), "cost_forecast", &[]).unwrap();
    assert_eq!(cents(forecast), 12150 + 6999, "forecast {forecast}");
    // Renewals: date and price per service; the deleted server is absent.
    let at = pg
        .value(
            Some("ovh"),
            "cost_renewal_timestamp_seconds",
            &[("name", "ns1003.ip-51-68-3.eu")],
        )
        .unwrap();
    assert_eq!(at as i64, dates.later.unix_timestamp());
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_renewal_price",
            &[("name", "ns1003.ip-51-68-3.eu")]
        )
        .map(cents),
        Some(6999)
    );
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_renewal_automatic",
            &[("name", "ns1004.ip-51-68-4.eu")]
        ),
        Some(0.0)
    );
    assert_eq!(pg.series(Some("ovh"), "cost_renewal_price").len(), 5);
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_renewal_price",
            &[("name", "ns0999.ip-51-68-9.eu")]
        ),
        None
    );
    assert_eq!(
        pg.value(None, "cost_tax_basis", &[("basis", "excluded")]),
        Some(1.0)
    );

    // Every call was a signed GET of a described path with described parameters; the secret
    // never left the headers.
    assert_requests_follow(&spec(), &api).await;
    assert!(api.received_requests().await.unwrap().len() > 10);
    let dump = pg.dump();
    for secret in [AS, CK, AK] {
        assert!(
            !stderr.contains(secret) && !dump.contains(secret),
            "{secret} leaked"
        );
    }
}

#[tokio::test]
async fn with_tax_included_the_bills_tax_counts_and_renewals_take_its_rate() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    mount(&api, &dates, Behaviour::signed()).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\ntax = \"included\"\n[fx]\nUSD = 0.92\n{}",
        section(&api, None)
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out =
        support::run_async(&["collect", "--config", &path, "--only", "ovh"], SIGNED_ENV).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let value = |prefix: &str| -> f64 {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} not in {stdout}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // The tax of the three bills, 12.90 + 12.50 + 0.90, less the credit note's 2.00.
    assert_eq!(
        cents(value(
            "cost_spend{currency=\"EUR\",name=\"tax\",provider=\"ovh\"}"
        )),
        2430
    );
    // Renewal at 69.99 without tax × 157.80 / 131.50 (the month's rate, 1.2).
    assert_eq!(
        (value(
            "cost_renewal_price{currency=\"EUR\",name=\"ns1003.ip-51-68-3.eu\",provider=\"ovh\"}"
        ) * 1000.0)
            .round() as i64,
        83_988
    );
    assert_eq!(
        (value("cost_forecast{currency=\"EUR\",provider=\"ovh\"}") * 1000.0).round() as i64,
        157_800 - 12_000 + 83_988
    );
    assert!(
        stdout.contains("cost_tax_basis{basis=\"included\"} 1"),
        "{stdout}"
    );
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn a_service_account_gets_its_token_by_the_only_post_and_reads_with_the_bearer() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    let mut b = Behaviour::signed();
    b.auth = Auth::Bearer;
    let behaviour = mount(&api, &dates, b).await;
    let token = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/auth/oauth2/token"))
        .respond_with(TokenEndpoint)
        .mount(&token)
        .await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &section(&api, Some(&token)));
    let env = [
        ("OVH_CLIENT_ID", CLIENT_ID),
        ("OVH_CLIENT_SECRET", CLIENT_SECRET),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(spend(&pg, "ns1001.ip-51-68-1.eu").map(cents), Some(5250));
    let posts = token.received_requests().await.unwrap();
    assert_eq!(posts.len(), 1, "one token request");
    let api_requests = api.received_requests().await.unwrap();
    assert!(
        api_requests
            .iter()
            .all(|r| r.method == wiremock::http::Method::GET),
        "every API call is a GET"
    );

    // An expired token: a bounded failure that says what to fix, last good figures kept.
    behaviour.lock().unwrap().token_expired = true;
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("expired or revoked"), "{stderr}");
    assert_eq!(pg.value(Some("ovh"), "cost_collector_up", &[]), Some(0.0));
    assert_eq!(spend(&pg, "ns1001.ip-51-68-1.eu").map(cents), Some(5250));
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_collector_errors_total",
            &[("reason", "auth")]
        ),
        Some(1.0)
    );
    // A wrong client secret: the token endpoint's refusal, named.
    let env = [
        ("OVH_CLIENT_ID", CLIENT_ID),
        ("OVH_CLIENT_SECRET", "wrong-secret-0000"),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("OVH_CLIENT_SECRET"), "{stderr}");
    for secret in [CLIENT_SECRET, "wrong-secret-0000", TOKEN] {
        assert!(
            !stderr.contains(secret) && !pg.dump().contains(secret),
            "{secret} leaked"
        );
    }
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn a_wrong_secret_a_moving_clock_and_a_missing_right_say_what_to_fix() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    let behaviour = mount(&api, &dates, Behaviour::signed()).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &section(&api, None));
    let (code, stderr) = support::push(cfg.path(), SIGNED_ENV).await;
    assert_eq!(code, Some(0), "{stderr}");

    let wrong = [
        ("OVH_APPLICATION_KEY", AK),
        ("OVH_APPLICATION_SECRET", "not-the-secret-1111"),
        ("OVH_CONSUMER_KEY", CK),
    ];
    let (code, stderr) = support::push(cfg.path(), &wrong).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("INVALID_SIGNATURE") && stderr.contains("OVH_APPLICATION_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret-1111"), "{stderr}");

    // The server's clock moves by ten minutes between /auth/time and the call.
    behaviour.lock().unwrap().drift = 600;
    let (code, stderr) = support::push(cfg.path(), SIGNED_ENV).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("clock"), "{stderr}");
    behaviour.lock().unwrap().drift = 0;

    behaviour.lock().unwrap().denied = vec!["/services"];
    let (code, stderr) = support::push(cfg.path(), SIGNED_ENV).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("NOT_GRANTED_CALL") && stderr.contains("GET on /me/bill"),
        "{stderr}"
    );
    // Every failure kept the last good figures.
    assert_eq!(spend(&pg, "ns1002.ip-51-68-2.eu").map(cents), Some(6250));
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_collector_errors_total",
            &[("reason", "http_4xx")]
        ),
        Some(2.0)
    );
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_collector_errors_total",
            &[("reason", "auth")]
        ),
        Some(1.0)
    );
    for secret in [AS, CK] {
        assert!(!pg.dump().contains(secret), "{secret} leaked");
    }
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn with_credentials_the_api_replaces_the_fixed_entries_and_check_says_so() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    mount(&api, &dates, Behaviour::signed()).await;
    let example = std::fs::read_to_string(support::repo("examples/cost-exporter.toml")).unwrap();
    let cfg = support::toml(&format!(
        "{}\n",
        example.replace(
            "endpoint = \"ovh-eu\"\n",
            &format!(
                "base_url = \"{}/1.0\"\nrequests_per_minute = 6000\n",
                api.uri()
            )
        )
    ));
    assert!(
        std::fs::read_to_string(cfg.path())
            .unwrap()
            .contains(&api.uri()),
        "the test points the example at the mock"
    );
    let path = cfg.path().to_str().unwrap().to_owned();
    let mut env = SIGNED_ENV.to_vec();
    env.push(support::EXAMPLE_OFFLINE);
    let out = support::run_async(&["collect", "--config", &path, "--only", "ovh"], &env).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stdout.contains("bms-1"),
        "the fixed entries are not reported: {stdout}"
    );
    assert!(stdout.contains("name=\"ns1001.ip-51-68-1.eu\""), "{stdout}");
    assert!(
        stderr.contains("the API's figures replace them"),
        "{stderr}"
    );
    let out = support::run_async(&["check", "--config", &path], SIGNED_ENV).await;
    let (stdout, _) = support::text(&out);
    assert!(
        stdout.contains("collected (API: ovh)")
            && stdout.contains("replaced by the API's figures")
            && !stdout.contains("bms-1"),
        "{stdout}"
    );
    // Without credentials the fixed entries stand (the example as shipped).
    let out = support::run(
        &[
            "collect",
            "--config",
            support::repo("examples/cost-exporter.toml")
                .to_str()
                .unwrap(),
            "--only",
            "ovh",
        ],
        &[support::EXAMPLE_OFFLINE],
    );
    let (stdout, _) = support::text(&out);
    assert!(stdout.contains("name=\"bms-1\""), "{stdout}");
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn backfill_counts_each_bill_from_its_day_on() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    mount(&api, &dates, Behaviour::signed()).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[http]\nretries = 0\n{}",
        section(&api, None)
    ));
    let today = OffsetDateTime::now_utc().date();
    let first = (support::month_start() - time::Duration::days(1))
        .date()
        .replace_day(1)
        .unwrap();
    let path = cfg.path().display().to_string();
    let from = format!("{:04}-{:02}", first.year(), u8::from(first.month()));
    let out = support::run_async(
        &[
            "backfill", "--config", &path, "--from", &from, "--only", "ovh",
        ],
        SIGNED_ENV,
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Σ cost_spend and the forecast per day (23:59:59 UTC).
    let mut spend: BTreeMap<i64, f64> = BTreeMap::new();
    let mut forecast: BTreeMap<i64, f64> = BTreeMap::new();
    for line in stdout.lines() {
        let into = if line.starts_with("cost_spend{") {
            &mut spend
        } else if line.starts_with("cost_forecast{") {
            &mut forecast
        } else {
            continue;
        };
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let v: f64 = parts.next().unwrap().parse().unwrap();
        *into.entry(ts).or_default() += v;
    }
    let mut day = first;
    while day < today {
        let ts = (day.midnight().assume_utc() + time::Duration::DAY).unix_timestamp() - 1;
        // Last month: its bill (62.50) less its credit note (5.00) from their day; this
        // month: 64.50 from day 1's bill, 67.00 more from day 2's bills less day 2's credit
        // note (10.00). A bill or credit note of another month never counts.
        let want = if day.month() == first.month() {
            if day >= dates.last_month.date() {
                57.50
            } else {
                0.0
            }
        } else {
            let mut v = 0.0;
            if day >= dates.day1.date() {
                v += 64.50;
            }
            if day >= dates.day2.date() {
                v += 67.00 - 10.00;
            }
            v
        };
        assert_eq!(
            spend.get(&ts).map(|v| cents(*v)),
            Some(cents(want)),
            "{day}"
        );
        // Bills are known amounts: the day's forecast is what was billed by then.
        assert_eq!(
            forecast.get(&ts).map(|v| cents(*v)),
            Some(cents(want)),
            "{day}"
        );
        day = day.next_day().unwrap();
    }
    assert_requests_follow(&spec(), &api).await;
}

/// An `order.Price` of `ucents` micro-units in `currency`.
fn price(currency: &str, ucents: i64) -> Value {
    json!({
        "currencyCode": currency,
        "priceInUcents": ucents,
        "text": format!("{} {currency}", ucents as f64 / 1e8),
        "value": ucents as f64 / 1e8,
    })
}

/// A bill of `date` in `currency` (no tax), with its detail lines `(domain, currency,
/// ucents)`.
fn bill(
    id: &str,
    date: OffsetDateTime,
    currency: &str,
    ucents: i64,
    lines: &[(&str, &str, i64)],
) -> Value {
    let details: serde_json::Map<String, Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (domain, cur, u))| {
            let d = format!("{id}-{}", i + 1);
            (
                d.clone(),
                json!({
                    "billDetailId": d, "description": format!("line of {domain}"), "domain": domain,
                    "periodStart": date.date().to_string(), "periodEnd": null, "quantity": "1",
                    "totalPrice": price(cur, *u), "unitPrice": price(cur, *u),
                }),
            )
        })
        .collect();
    json!({
        "bill": {
            "billId": id, "category": "purchase", "date": rfc(date), "orderId": 1,
            "password": "p", "pdfUrl": "https://www.ovh.com/x.pdf", "url": "https://www.ovh.com/x",
            "priceWithoutTax": price(currency, ucents), "tax": price(currency, 0),
            "priceWithTax": price(currency, ucents),
        },
        "details": details,
    })
}

#[tokio::test]
async fn bills_and_lines_in_points_na_or_an_unknown_currency_are_skipped_the_rest_counted() {
    let dates = Dates::now();
    let mut a = account(&dates);
    let bills = a["bills"].as_object_mut().unwrap();
    // OVH's currency enum has loyalty points and N/A, and LTL (retired in 2015).
    bills.insert(
        "FR0004".into(),
        bill(
            "FR0004",
            dates.day1,
            "points",
            50_000_000_000,
            &[("gift", "points", 50_000_000_000)],
        ),
    );
    bills.insert("FR0005".into(), bill("FR0005", dates.day1, "N/A", 0, &[]));
    bills.insert(
        "FR0006".into(),
        bill(
            "FR0006",
            dates.day2,
            "EUR",
            300_000_000,
            &[
                ("ns1001.ip-51-68-1.eu", "EUR", 300_000_000),
                ("free-option", "N/A", 0),
            ],
        ),
    );
    bills.insert(
        "FR0007".into(),
        bill("FR0007", dates.day2, "LTL", 1_000_000_000, &[]),
    );
    // A service renewed with points: no money renewal.
    let mut service = a["services"]["103"].clone();
    service["serviceId"] = json!(107);
    service["resource"]["name"] = json!("loyalty-gift");
    service["billing"]["pricing"]["price"] = price("points", 99_000_000_000);
    a["services"]["107"] = service;

    let api = MockServer::start().await;
    mount_account(&api, a, Behaviour::signed()).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &section(&api, None));
    let (code, stderr) = support::push(cfg.path(), SIGNED_ENV).await;
    assert_eq!(code, Some(0), "{stderr}");
    // The month's money as without the odd records, plus FR0006's 3.00 on ns1001.
    assert_eq!(spend(&pg, "ns1001.ip-51-68-1.eu").map(cents), Some(5550));
    assert_eq!(spend(&pg, "ns1002.ip-51-68-2.eu").map(cents), Some(6250));
    let total: f64 = pg
        .series(Some("ovh"), "cost_spend")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(cents(total), 12150 + 300);
    let skipped = |reason: &str| {
        pg.value(
            Some("ovh"),
            "cost_collector_records_skipped",
            &[("reason", reason)],
        )
    };
    // The points and N/A bills, the N/A line and the points renewal; the LTL bill.
    assert_eq!(skipped("non_money_currency"), Some(4.0), "{stderr}");
    assert_eq!(skipped("unknown_currency"), Some(1.0), "{stderr}");
    for named in ["FR0004", "FR0005", "FR0006", "FR0007", "loyalty-gift"] {
        assert!(
            stderr.contains(named),
            "{named} named in a warning: {stderr}"
        );
    }
    assert_eq!(
        pg.value(
            Some("ovh"),
            "cost_renewal_price",
            &[("name", "loyalty-gift")]
        ),
        None
    );
    assert_eq!(pg.series(Some("ovh"), "cost_renewal_price").len(), 5);
    assert_requests_follow(&spec(), &api).await;
}

#[tokio::test]
async fn a_tax_rate_no_decimal_can_hold_is_decode_never_a_panic() {
    let dates = Dates::now();
    let mut a = account(&dates);
    // No bill this month: the tax rate comes from last month's, whose amounts divide beyond
    // any decimal (7e28 with tax over 0.001 without).
    let mut old = bill("FR0098", dates.last_month, "EUR", 100_000, &[]);
    old["bill"]["priceWithTax"] =
        json!({"currencyCode": "EUR", "priceInUcents": null, "text": "", "value": 7e28});
    old["bill"]["priceWithoutTax"] =
        json!({"currencyCode": "EUR", "priceInUcents": null, "text": "", "value": 0.001});
    a["bills"] = json!({"FR0098": old});
    a["refunds"] = json!({});
    let api = MockServer::start().await;
    mount_account(&api, a, Behaviour::signed()).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\ntax = \"included\"\n[http]\nretries = 0\n{}",
        section(&api, None)
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out =
        support::run_async(&["collect", "--config", &path, "--only", "ovh"], SIGNED_ENV).await;
    let (stdout, stderr) = support::text(&out);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stdout.contains("cost_collector_errors_total{provider=\"ovh\",reason=\"decode\"} 1"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("tax"), "{stderr}");
    assert_requests_follow(&spec(), &api).await;
}

#[test]
fn a_currency_ovh_does_not_bill_in_is_a_configuration_error_before_any_request() {
    // OVH's description lists the currencies an amount can be in; JPY is not one.
    let listener = support::Counter::start(None);
    let cfg = support::toml(&format!(
        "[fx]\nJPY = 0.0065\n[providers.ovh]\nbase_url = \"{}/1.0\"\ncurrency = \"JPY\"\n",
        listener.url
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    for command in ["check", "collect"] {
        let out = support::run(&[command, "--config", &path], SIGNED_ENV);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("providers.ovh.currency") && stderr.contains("JPY"),
            "{stderr}"
        );
    }
    assert_eq!(listener.connections(), 0, "no request before the check");
    // The currencies OVH bills in pass.
    let cfg = support::toml("[fx]\nPLN = 0.25\n[providers.ovh]\ncurrency = \"PLN\"\n");
    let out = support::run(
        &["check", "--config", cfg.path().to_str().unwrap()],
        SIGNED_ENV,
    );
    let (_, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn check_probe_says_whether_the_key_reads_credit_notes() {
    let dates = Dates::now();
    let api = MockServer::start().await;
    let behaviour = mount(&api, &dates, Behaviour::signed()).await;
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &section(&api, None));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(&["check", "--probe", "--config", &path], SIGNED_ENV).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("reads the bills") && stdout.contains("credit notes"),
        "{stdout}"
    );
    // A key made before credit notes were read lacks the /me/refund rules.
    behaviour.lock().unwrap().denied = vec!["/me/refund"];
    let out = support::run_async(&["check", "--probe", "--config", &path], SIGNED_ENV).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("NOT_GRANTED_CALL") && stdout.contains("/me/refund/*"),
        "{stdout}"
    );
    assert_requests_follow(&spec(), &api).await;
}
