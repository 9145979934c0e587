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
    subscriptions_at(&rfc(d.later), &rfc(d.next), &rfc(next_year))
}

/// The fixture subscriptions: the VPS renewing at `later` (this month), the domain at `next`
/// (next month), the prepaid plan expiring at `next_year`.
fn subscriptions_at(later: &str, next: &str, next_year: &str) -> Value {
    let text = std::fs::read_to_string(support::fixture("hostinger/subscriptions.json"))
        .unwrap()
        .replace("{{LATER}}", later)
        .replace("{{NEXT}}", next)
        .replace("{{NEXT_YEAR}}", next_year);
    serde_json::from_str(&text).unwrap()
}

/// The fixture's dates for a run on 7 December 2026 at noon UTC.
fn december() -> Value {
    subscriptions_at(
        "2026-12-20T09:00:00Z",
        "2027-01-03T00:00:00Z",
        "2028-02-10T00:00:00Z",
    )
}

const DECEMBER_7: &str = "2026-12-07T12:00:00Z";

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
async fn subscriptions_count_when_charged_and_renewals_when_due_this_month() {
    let api = mock_body(december()).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[pushgateway]\nurl = \"{}\"\n\
         [providers.hostinger]\nbase_url = \"{}\"\nbudget = 20\n",
        pg.url,
        api.uri()
    ));
    let env = [
        ("HOSTINGER_API_TOKEN", TOKEN),
        ("COST_EXPORTER_NOW", DECEMBER_7),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    // On 7 December nothing was charged yet: the VPS was last renewed on 20 November, the
    // yearly domain in January, the 48-month plan long ago; the cancelled VPS never counts.
    // A known zero.
    let spend = pg.series(Some("hostinger"), "cost_spend");
    assert_eq!(spend.len(), 1, "{spend:?}");
    assert_eq!(spend[0].1, 0.0);
    assert_eq!(spend[0].0.get("basis").map(String::as_str), Some("derived"));
    assert!(!spend[0].0.contains_key("name"), "{spend:?}");
    // The forecast is what December charges: the VPS's renewal on the 20th at 9.99. The
    // domain renews in January, the prepaid plan does not renew by itself.
    let forecast = pg.value(Some("hostinger"), "cost_forecast", &[]).unwrap();
    assert_eq!(forecast, 9.99);
    // The VPS renews later this month at 9.99, above its 5.99.
    let r = |m: &str, name: &str| pg.value(Some("hostinger"), m, &[("name", name)]);
    assert_eq!(r("cost_renewal_price", "KVM 1"), Some(9.99));
    assert_eq!(r("cost_renewal_current_price", "KVM 1"), Some(5.99));
    assert_eq!(r("cost_renewal_automatic", "KVM 1"), Some(1.0));
    assert_eq!(
        r("cost_renewal_timestamp_seconds", "KVM 1").map(|v| v as i64),
        Some(1_797_757_200)
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

/// `collect --only hostinger` against `subscriptions` with the run's clock at `now`: its
/// stdout.
async fn collect_at(subscriptions: Value, now: &str) -> String {
    let api = mock_body(subscriptions).await;
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[http]\nretries = 0\n[providers.hostinger]\nbase_url = \"{}\"\n",
        api.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "hostinger"],
        &[("HOSTINGER_API_TOKEN", TOKEN), ("COST_EXPORTER_NOW", now)],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{now}: {stderr}");
    assert_requests_follow(&spec(), &api).await;
    stdout
}

/// (month-to-date spend, forecast) in cents, from `collect`'s output.
fn spend_and_forecast(stdout: &str) -> (i64, i64) {
    let cents = |v: &str| (v.parse::<f64>().unwrap() * 100.0).round() as i64;
    let sum = |metric: &str| -> i64 {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("hostinger"))
            .map(|l| cents(l.rsplit(' ').next().unwrap()))
            .sum()
    };
    (sum("cost_spend"), sum("cost_forecast"))
}

/// One subscription in the description's shape.
#[allow(clippy::too_many_arguments)]
fn subscription(
    name: &str,
    months: i64,
    total: i64,
    renewal: i64,
    auto: bool,
    created: &str,
    next: Option<&str>,
    expires: &str,
) -> Value {
    serde_json::json!({
        "id": format!("Sub{}x{months}", name.replace(' ', "")),
        "name": name,
        "status": "active",
        "billing_period": months,
        "billing_period_unit": "month",
        "currency_code": "EUR",
        "total_price": total,
        "renewal_price": renewal,
        "is_auto_renewed": auto,
        "created_at": created,
        "expires_at": expires,
        "next_billing_at": next,
    })
}

/// The table: a 12-month plan (71.88 € bought, 5.99 € a month) renewing by itself on
/// the 20th at 119.88 €. December's invoice is the renewal: 119.88 € in December's forecast
/// from the 1st, charged on the 20th, and nothing in the eleven other months. The job said
/// 5.99 € (its monthly equivalent, every month), and never put the renewal in the forecast.
#[tokio::test]
async fn a_12_month_plan_is_its_whole_renewal_in_the_month_it_renews() {
    let before = || {
        serde_json::json!([subscription(
            "KVM 2",
            12,
            7188,
            11988,
            true,
            "2025-12-20T09:00:00Z",
            Some("2026-12-20T09:00:00Z"),
            "2026-12-20T09:00:00Z",
        )])
    };
    // Renewed: the current period is the year at 119.88, billed next on 20 December 2027.
    let after = || {
        serde_json::json!([subscription(
            "KVM 2",
            12,
            11988,
            11988,
            true,
            "2025-12-20T09:00:00Z",
            Some("2027-12-20T09:00:00Z"),
            "2027-12-20T09:00:00Z",
        )])
    };
    for (subs, now, want) in [
        // The 7th: not charged yet, due on the 20th.
        (before(), DECEMBER_7, (0, 11_988)),
        // The last second before the renewal.
        (before(), "2026-12-20T08:59:59Z", (0, 11_988)),
        // The 21st: charged on the 20th, nothing more due.
        (after(), "2026-12-21T12:00:00Z", (11_988, 11_988)),
        // December's last second, then January: the renewal was December's.
        (after(), "2026-12-31T23:59:59Z", (11_988, 11_988)),
        (after(), "2027-01-01T00:00:00Z", (0, 0)),
        (after(), "2027-06-15T00:00:00Z", (0, 0)),
    ] {
        let out = collect_at(subs, now).await;
        assert_eq!(spend_and_forecast(&out), want, "{now}\n{out}");
    }
}

/// A renewal at the next month's 00:00 is next month's; a monthly plan bought this month is
/// charged on its day; a leap February has its 29th.
#[tokio::test]
async fn renewals_fall_in_the_utc_month_they_are_due_strictly_before_its_end() {
    let at_new_year = || {
        serde_json::json!([subscription(
            "KVM 1",
            1,
            599,
            999,
            true,
            "2025-02-01T00:00:00Z",
            Some("2027-01-01T00:00:00Z"),
            "2027-01-01T00:00:00Z",
        )])
    };
    let bought_on_the_3rd = || {
        serde_json::json!([subscription(
            "KVM 1",
            1,
            599,
            999,
            true,
            "2026-12-03T11:54:22Z",
            Some("2027-01-03T11:54:22Z"),
            "2027-01-03T11:54:22Z",
        )])
    };
    for (subs, now, want) in [
        // Renewed on 1 December (a month before its next billing), due again at 00:00 on
        // 1 January: December's last second has the 1 December charge only, and the renewal
        // is January's from its first second.
        (at_new_year(), "2026-12-31T23:59:59Z", (599, 599)),
        (at_new_year(), "2027-01-01T00:00:00Z", (0, 999)),
        // Bought on 3 December for a month, billed next on 3 January: charged once, on the
        // 3rd; its renewal is January's.
        (bought_on_the_3rd(), DECEMBER_7, (599, 599)),
        (bought_on_the_3rd(), "2027-01-02T12:00:00Z", (0, 999)),
        // 29 February 2028: renewed on the 29th (a month before 29 March), and one renewing
        // on the 29th still due that morning.
        (
            serde_json::json!([subscription(
                "KVM 1",
                1,
                999,
                999,
                true,
                "2027-06-29T10:00:00Z",
                Some("2028-03-29T10:00:00Z"),
                "2028-03-29T10:00:00Z",
            )]),
            "2028-02-29T23:59:59Z",
            (999, 999),
        ),
        (
            serde_json::json!([subscription(
                "KVM 1",
                1,
                999,
                999,
                true,
                "2027-06-29T10:00:00Z",
                Some("2028-02-29T10:00:00Z"),
                "2028-02-29T10:00:00Z",
            )]),
            "2028-02-29T09:00:00Z",
            (0, 999),
        ),
    ] {
        let out = collect_at(subs, now).await;
        assert_eq!(spend_and_forecast(&out), want, "{now}\n{out}");
    }
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
    let mut subs = december();
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
    let env = [
        ("HOSTINGER_API_TOKEN", TOKEN),
        ("COST_EXPORTER_NOW", DECEMBER_7),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    // The good subscriptions as ever (nothing charged yet, the VPS's 9.99 due on the 20th);
    // none of the odd ones (copies of the VPS), neither in spend nor in the forecast.
    assert_eq!(
        pg.value(Some("hostinger"), "cost_forecast", &[]),
        Some(9.99)
    );
    let spend = pg.series(Some("hostinger"), "cost_spend");
    assert_eq!(spend.len(), 1, "{spend:?}");
    assert_eq!(spend[0].1, 0.0);
    assert_eq!(pg.series(Some("hostinger"), "cost_renewal_price").len(), 3);
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
