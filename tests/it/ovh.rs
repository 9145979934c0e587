//! The OVHcloud collector end to end against a loopback mock that checks what OVH checks: the
//! `$1$` signature over the URL as sent, the timestamp against its own clock (served skewed by
//! `/auth/time`), the OAuth2 client credentials and the bearer token, GET only, documented
//! paths and parameters (`tests/fixtures/ovh/`); the real binary and a real Pushgateway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use cost_exporter::calendar::Calendar;
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
    /// Dates of the run's month in UTC.
    pub fn now() -> Dates {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let start = support::month_start();
        Dates::within(now, start, month_end(start))
    }

    /// Dates of OVH's month of the run: Paris time's, which starts (and ends) an hour or two
    /// before UTC's.
    pub fn paris() -> Dates {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let month = Calendar::Paris.month_of(now.into());
        Dates::within(now, month.start.into(), month.end.into())
    }

    /// `day1` and `day2` between `start` and `now`, `later` between `now` and `end`.
    fn within(now: OffsetDateTime, start: OffsetDateTime, end: OffsetDateTime) -> Dates {
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
    // A bill line's period starts on the day in Paris time, as OVH writes it.
    let date = |t: OffsetDateTime| Calendar::Paris.local(t.into()).date().to_string();
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
    /// The bill and credit-note lists honour `date.from` and `date.to` (instants, both
    /// included); otherwise they list every document, as a server whose filter the collector
    /// must not trust.
    pub filter_dates: bool,
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
            filter_dates: false,
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
            ["me", "bill"] => match listed(&q, &a["bills"], "bill", b.filter_dates) {
                Some(ids) => ok("/me/bill", json!(ids)),
                None => ovh_error(400, "BAD_PARAMETER", "Invalid date"),
            },
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
            ["me", "refund"] => match listed(&q, &a["refunds"], "refund", b.filter_dates) {
                Some(ids) => ok("/me/refund", json!(ids)),
                None => ovh_error(400, "BAD_PARAMETER", "Invalid date"),
            },
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

/// The ids a list of `documents` (bills or credit notes, each under `kind`) answers to the
/// query `q`; `None` when `date.from` or `date.to` is missing or no RFC 3339 time. Every
/// document, last month's too, unless `filter` (then those dated from `date.from` to
/// `date.to`, compared as instants).
fn listed(
    q: &BTreeMap<String, String>,
    documents: &Value,
    kind: &str,
    filter: bool,
) -> Option<Vec<String>> {
    let time = |k: &str| OffsetDateTime::parse(q.get(k)?, &Rfc3339).ok();
    let (from, to) = (time("date.from")?, time("date.to")?);
    let ids = documents
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, d)| {
            let date = OffsetDateTime::parse(d[kind]["date"].as_str().unwrap(), &Rfc3339).unwrap();
            !filter || (from <= date && date <= to)
        })
        .map(|(id, _)| id.clone())
        .collect();
    Some(ids)
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
    let a = account(&Dates::paris());
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
    let a = account(&Dates::paris());
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    // This month: 64.50 from day 1's bill, 67.00 more from day 2's bills less day 2's credit
    // note (10.00); last month: its bill (62.50) less its credit note (5.00). Each counts from
    // the first day whose stamp (23:59:59 UTC) is past its date, in its own month in Paris
    // time: a document of another month never counts.
    let documents = [
        (dates.day1, 64.50),
        (dates.day2, 62.50 + 4.50 - 10.00),
        (dates.last_month, 62.50 - 5.00),
    ];
    let mut day = first;
    while day < today {
        let stamp = day.midnight().assume_utc() + time::Duration::DAY - time::Duration::SECOND;
        let ts = stamp.unix_timestamp();
        let month = Calendar::Paris
            .month(day.year(), u8::from(day.month()))
            .unwrap();
        let want: f64 = documents
            .iter()
            .filter(|(at, _)| month.contains((*at).into()) && *at <= stamp)
            .map(|(_, v)| v)
            .sum();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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
    let dates = Dates::paris();
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

// ---- OVH's month: Paris time -------------------------------------------------------------

/// A bill dated `date` (RFC 3339 as OVH writes it, `+01:00` or `+02:00`), in euros: its lines
/// `(domain, micro-cents without tax)` and `tax` micro-cents on top.
fn taxed_bill(id: &str, date: &str, lines: &[(&str, i64)], tax: i64) -> Value {
    let date = OffsetDateTime::parse(date, &Rfc3339).unwrap();
    let total: i64 = lines.iter().map(|(_, u)| u).sum();
    let lines: Vec<(&str, &str, i64)> = lines.iter().map(|(d, u)| (*d, "EUR", *u)).collect();
    let mut b = bill(id, date, "EUR", total, &lines);
    b["bill"]["category"] = json!("autorenew");
    b["bill"]["tax"] = price("EUR", tax);
    b["bill"]["priceWithTax"] = price("EUR", total + tax);
    b
}

/// An active service renewing by itself at `next` (as OVH writes it) for `ucents` without tax.
fn renewing(id: u64, name: &str, next: &str, ucents: i64) -> Value {
    let mut s = account(&Dates::paris())["services"]["102"].clone();
    s["serviceId"] = json!(id);
    s["resource"]["name"] = json!(name);
    s["resource"]["displayName"] = json!(name);
    s["billing"]["nextBillingDate"] = json!(next);
    s["billing"]["expirationDate"] = json!(next);
    s["billing"]["renew"]["current"]["nextDate"] = json!(next);
    s["billing"]["pricing"]["price"] = price("EUR", ucents);
    s["billing"]["pricing"]["priceInUcents"] = json!(ucents);
    s
}

/// An account of `bills` and `services`, without credit notes.
fn paris_account(bills: Vec<Value>, services: Vec<Value>) -> Value {
    let bills: serde_json::Map<String, Value> = bills
        .into_iter()
        .map(|b| (b["bill"]["billId"].as_str().unwrap().to_owned(), b))
        .collect();
    let services: serde_json::Map<String, Value> = services
        .into_iter()
        .map(|s| (s["serviceId"].to_string(), s))
        .collect();
    json!({"bills": bills, "refunds": {}, "services": services})
}

const SERVERS: [&str; 4] = [
    "ns2001.ip-51-91-1.eu",
    "ns2002.ip-51-91-2.eu",
    "ns2003.ip-51-91-3.eu",
    "ns2004.ip-51-91-4.eu",
];
/// 62.50 € without tax, 12.50 € of VAT (20 %).
const SERVER: i64 = 6_250_000_000;
const SERVER_TAX: i64 = 1_250_000_000;
const BACKUP: &str = "ftpback-rbx7-42.ovh.net";

/// The four servers' monthly renewal bill, dated `date`: 4 × 62.50 € = 250 € without tax,
/// 50 € of VAT.
fn servers_bill(id: &str, date: &str) -> Value {
    let lines: Vec<(&str, i64)> = SERVERS.iter().map(|s| (*s, SERVER)).collect();
    taxed_bill(id, date, &lines, 4 * SERVER_TAX)
}

/// The four servers, renewing by themselves at `next`.
fn servers(next: &str) -> Vec<Value> {
    SERVERS
        .iter()
        .enumerate()
        .map(|(i, name)| renewing(201 + i as u64, name, next, SERVER))
        .collect()
}

/// `collect --only ovh` against `account`, the run's clock at `now`, in the tax basis `tax`;
/// the mock lists every bill, or only those its date filter covers. Its stdout.
async fn collect_at(account: Value, now: &str, tax: &str, filter_dates: bool) -> String {
    let api = MockServer::start().await;
    let mut b = Behaviour::signed();
    b.filter_dates = filter_dates;
    mount_account(&api, account, b).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\ntax = \"{tax}\"\n[http]\nretries = 0\n{}",
        section(&api, None)
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let mut env = SIGNED_ENV.to_vec();
    env.push(("COST_EXPORTER_NOW", now));
    let out = support::run_async(&["collect", "--config", &path, "--only", "ovh"], &env).await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{now}: {stderr}");
    assert_requests_follow(&spec(), &api).await;
    stdout
}

/// Σ of a metric's OVH samples in `collect`'s output, in cents (`None` without any).
fn ovh_cents(stdout: &str, metric: &str) -> Option<i64> {
    let values: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("provider=\"ovh\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    (!values.is_empty()).then(|| cents(values.iter().sum()))
}

/// The table: four servers billed on the 1st (4 × 62.50 € without tax, at 01:30 Paris
/// time), renewing by themselves on 1 January at 00:00 Paris time, and a backup storage bought
/// on 3 December
/// (9.99 € + 2.00 € VAT) renewing on 3 January. December's invoices: the 1 December bill (250 €,
/// 300 € with VAT) and the 3 December one (9.99 €, 11.99 €): 259.99 € (311.99 €). January's
/// renewals are January's bill: the job said 509.99 € (611.99 €), counting a renewal at the
/// next 1st's 00:00 as this month's (and cutting months in UTC, where 00:00 Paris time on
/// 1 January is still 31 December).
#[tokio::test]
async fn a_renewal_at_midnight_paris_time_on_the_1st_is_next_month_s_bill() {
    let bills = || {
        vec![
            servers_bill("FR0201", "2026-12-01T01:30:00+01:00"),
            taxed_bill(
                "FR0202",
                "2026-12-03T10:00:00+01:00",
                &[(BACKUP, 999_000_000)],
                200_000_000,
            ),
        ]
    };
    // OVH writes the renewal in Paris time; the same moment in UTC, and 00:00 UTC (01:00 in
    // Paris) must be January's as well.
    for next in [
        "2027-01-01T00:00:00+01:00",
        "2026-12-31T23:00:00Z",
        "2027-01-01T00:00:00Z",
    ] {
        let mut services = servers(next);
        services.push(renewing(
            205,
            BACKUP,
            "2027-01-03T10:00:00+01:00",
            999_000_000,
        ));
        let account = paris_account(bills(), services);
        // A December day, the last second of December in Paris time, and whether or not the
        // server honours the date filter.
        for now in ["2026-12-07T12:00:00+01:00", "2026-12-31T23:59:59+01:00"] {
            for filter in [false, true] {
                let out = collect_at(account.clone(), now, "excluded", filter).await;
                let case = format!("renewal {next}, run {now}, filter {filter}");
                assert_eq!(
                    ovh_cents(&out, "cost_forecast"),
                    Some(25_999),
                    "{case}\n{out}"
                );
                assert_eq!(ovh_cents(&out, "cost_spend"), Some(25_999), "{case}\n{out}");
            }
        }
        // With tax included: 300 € + 11.99 € billed; the renewals would have added 300 € more
        // (62.50 € at the bills' rate, 311.99 / 259.99).
        let out = collect_at(
            account.clone(),
            "2026-12-07T12:00:00+01:00",
            "included",
            false,
        )
        .await;
        assert_eq!(
            ovh_cents(&out, "cost_forecast"),
            Some(31_199),
            "{next}\n{out}"
        );
        assert_eq!(ovh_cents(&out, "cost_spend"), Some(31_199), "{next}\n{out}");
        // The renewal is still exported, at its date.
        let at = OffsetDateTime::parse(next, &Rfc3339)
            .unwrap()
            .unix_timestamp();
        assert!(
            out.contains(&format!(
                "cost_renewal_timestamp_seconds{{name=\"{}\",provider=\"ovh\"}} {at}",
                SERVERS[0]
            )),
            "{out}"
        );
        // On the first second of January in Paris time, before the renewal bill: January
        // has no bill yet (December's are December's), and its forecast is the four renewals
        // and the backup's, all due in January: 259.99 € again.
        let out = collect_at(account, "2027-01-01T00:00:00+01:00", "excluded", true).await;
        assert_eq!(ovh_cents(&out, "cost_spend"), Some(0), "{next}\n{out}");
        assert_eq!(
            ovh_cents(&out, "cost_forecast"),
            Some(25_999),
            "{next}\n{out}"
        );
    }
}

/// The same, as `report --output json` prints it: 311.99 with tax included.
#[tokio::test]
async fn the_report_prints_december_s_invoices() {
    let mut services = servers("2027-01-01T00:00:00+01:00");
    services.push(renewing(
        205,
        BACKUP,
        "2027-01-03T10:00:00+01:00",
        999_000_000,
    ));
    let account = paris_account(
        vec![
            servers_bill("FR0201", "2026-12-01T01:30:00+01:00"),
            taxed_bill(
                "FR0202",
                "2026-12-03T10:00:00+01:00",
                &[(BACKUP, 999_000_000)],
                200_000_000,
            ),
        ],
        services,
    );
    let api = MockServer::start().await;
    mount_account(&api, account, Behaviour::signed()).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\ntax = \"included\"\n[http]\nretries = 0\n{}",
        section(&api, None)
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let mut env = SIGNED_ENV.to_vec();
    env.push(("COST_EXPORTER_NOW", "2026-12-15T09:00:00+01:00"));
    let out = support::run_async(
        &["report", "-o", "json", "--config", &path, "--only", "ovh"],
        &env,
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let ovh = &doc["providers"][0];
    assert_eq!(ovh["provider"], "ovh", "{stdout}");
    assert_eq!(ovh["forecast"], "311.99", "{stdout}");
    assert_eq!(ovh["month_to_date"], "311.99", "{stdout}");
    assert_eq!(doc["month"], "2026-12", "{stdout}");
    assert_requests_follow(&spec(), &api).await;
}

/// The table: the renewal bill dated 00:30 on 1 December, Paris time (23:30 UTC on
/// 30 November), is December's: 250 €. The job cut months in UTC: in the last minutes of
/// UTC's November it counted two bills in November (the 1 November one and this one), and
/// December had none.
#[tokio::test]
async fn a_bill_dated_00_30_on_the_1st_in_paris_time_is_that_month_s() {
    let bills = || {
        vec![
            // 1 November, 01:30 Paris time (00:30 UTC).
            servers_bill("FR0101", "2026-11-01T01:30:00+01:00"),
            servers_bill("FR0201", "2026-12-01T00:30:00+01:00"),
        ]
    };
    for filter in [false, true] {
        // December in Paris, still November in UTC; then UTC's first second of December.
        for now in ["2026-11-30T23:45:00Z", "2026-12-01T00:00:00Z"] {
            let out = collect_at(
                paris_account(bills(), servers("2027-01-01T00:00:00+01:00")),
                now,
                "excluded",
                filter,
            )
            .await;
            assert_eq!(ovh_cents(&out, "cost_spend"), Some(25_000), "{now}\n{out}");
            assert_eq!(
                ovh_cents(&out, "cost_forecast"),
                Some(25_000),
                "{now}\n{out}"
            );
        }
        // November's last second in Paris time: November's bill; the renewal at 00:00 on
        // 1 December, Paris time, is December's.
        let out = collect_at(
            paris_account(bills(), servers("2026-12-01T00:00:00+01:00")),
            "2026-11-30T23:59:59+01:00",
            "excluded",
            filter,
        )
        .await;
        assert_eq!(ovh_cents(&out, "cost_spend"), Some(25_000), "{out}");
        assert_eq!(ovh_cents(&out, "cost_forecast"), Some(25_000), "{out}");
    }
}

/// Paris midnight in summer time is 22:00 UTC; a leap February has 29 days in Paris time
/// too.
#[tokio::test]
async fn ovh_s_month_is_cut_at_midnight_paris_time_in_summer_and_in_a_leap_february() {
    // (bills, the servers' next renewal, the run's clock, spend, forecast), in cents.
    let cases = [
        // 30 June at 23:59:59 Paris time (21:59:59 UTC): June's bill, dated 00:30 on 1 June
        // Paris time (22:30 UTC on 31 May); the renewal at 00:00 on 1 July is July's.
        (
            vec![
                servers_bill("FR0601", "2026-06-01T00:30:00+02:00"),
                servers_bill("FR0701", "2026-07-01T00:30:00+02:00"),
            ],
            "2026-07-01T00:00:00+02:00",
            "2026-06-30T23:59:59+02:00",
            25_000,
            25_000,
        ),
        // 1 July at 02:00 Paris time (00:00 UTC): July's bill, dated 22:30 UTC on 30 June.
        (
            vec![
                servers_bill("FR0601", "2026-06-01T00:30:00+02:00"),
                servers_bill("FR0701", "2026-07-01T00:30:00+02:00"),
            ],
            "2026-08-01T00:00:00+02:00",
            "2026-07-01T00:00:00Z",
            25_000,
            25_000,
        ),
        // 1 July at 00:10 Paris time, the renewal due at 00:00 not billed yet: due this
        // month, not counted as billed.
        (
            vec![servers_bill("FR0601", "2026-06-01T00:30:00+02:00")],
            "2026-07-01T00:00:00+02:00",
            "2026-07-01T00:10:00+02:00",
            0,
            25_000,
        ),
        // The last second of February 2028 (a leap year) in Paris time: February's bill,
        // dated 00:30 on 1 February (23:30 UTC on 31 January); March's renewal is March's.
        (
            vec![servers_bill("FR2802", "2028-02-01T00:30:00+01:00")],
            "2028-03-01T00:00:00+01:00",
            "2028-02-29T23:59:59+01:00",
            25_000,
            25_000,
        ),
    ];
    for (bills, next, now, spend, forecast) in cases {
        for filter in [false, true] {
            let out = collect_at(
                paris_account(bills.clone(), servers(next)),
                now,
                "excluded",
                filter,
            )
            .await;
            assert_eq!(ovh_cents(&out, "cost_spend"), Some(spend), "{now}\n{out}");
            assert_eq!(
                ovh_cents(&out, "cost_forecast"),
                Some(forecast),
                "{now}\n{out}"
            );
        }
    }
}

/// `backfill` cuts OVH's days and months in Paris time too: each day is the month to date
/// at its stamp (23:59:59 UTC) in Paris time's month. The bill dated 00:30 on 1 December,
/// Paris time, is December's from its first day, never November's.
#[tokio::test]
async fn backfill_places_each_bill_in_its_month_in_paris_time() {
    let api = MockServer::start().await;
    let account = paris_account(
        vec![
            servers_bill("FR0101", "2026-11-01T01:30:00+01:00"),
            servers_bill("FR0201", "2026-12-01T00:30:00+01:00"),
            taxed_bill(
                "FR0202",
                "2026-12-03T10:00:00+01:00",
                &[(BACKUP, 999_000_000)],
                200_000_000,
            ),
        ],
        servers("2027-01-01T00:00:00+01:00"),
    );
    mount_account(&api, account, Behaviour::signed()).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[http]\nretries = 0\n{}",
        section(&api, None)
    ));
    let path = cfg.path().display().to_string();
    let mut env = SIGNED_ENV.to_vec();
    env.push(("COST_EXPORTER_NOW", "2026-12-10T12:00:00Z"));
    let out = support::run_async(
        &[
            "backfill", "--config", &path, "--from", "2026-11", "--only", "ovh",
        ],
        &env,
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut spend: BTreeMap<String, f64> = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("cost_spend{")) {
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let v: f64 = parts.next().unwrap().parse().unwrap();
        let day = OffsetDateTime::from_unix_timestamp(ts).unwrap().date();
        *spend.entry(day.to_string()).or_default() += v;
    }
    let day = |d: &str| spend.get(d).map(|v| cents(*v));
    // November: its own bill from the 1st, and on its last day still November's 250 €.
    assert_eq!(day("2026-11-01"), Some(25_000));
    assert_eq!(day("2026-11-30"), Some(25_000), "{spend:?}");
    // December: the 1 December bill from the 1st, the backup from the 3rd.
    assert_eq!(day("2026-12-01"), Some(25_000), "{spend:?}");
    assert_eq!(day("2026-12-02"), Some(25_000));
    assert_eq!(day("2026-12-03"), Some(25_999));
    assert_eq!(day("2026-12-09"), Some(25_999));
    assert_eq!(day("2026-12-10"), None, "history ends yesterday");
    assert_requests_follow(&spec(), &api).await;
}
