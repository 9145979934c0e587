//! Exchange rates from the ECB: a real snapshot of its daily XML served on loopback, the real
//! binary and a real Pushgateway; crossed rates, the configured fallback when the ECB is down
//! or answers something else, overrides, and each rate's source and date.

use rust_decimal::Decimal;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, Pushgateway};

/// 2022-07-08T00:00:00Z, the snapshot's reference day.
const SNAPSHOT_DAY: f64 = 1_657_238_400.0;

async fn ecb() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stats/eurofxref/eurofxref-daily.xml"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/xml")
                .set_body_bytes(
                    std::fs::read(support::fixture("ecb/eurofxref-daily.xml")).unwrap(),
                ),
        )
        .expect(1)
        .mount(&mock)
        .await;
    mock
}

/// A configuration with fixed costs in USD and GBP, reporting in `currency`, and `fx`.
fn config(pg: &str, currency: &str, fx: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"{currency}\"\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 0\n{fx}\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"dollars\"\namount = 100\ncurrency = \"USD\"\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"pounds\"\namount = 50\ncurrency = \"GBP\"\n"
    ))
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn f(d: Decimal) -> f64 {
    d.round_dp(6).to_string().parse().unwrap()
}

fn spend(pg: &Pushgateway, name: &str) -> f64 {
    let v = pg
        .value(Some("acme"), "cost_spend", &[("name", name)])
        .unwrap_or_else(|| panic!("no spend for {name}"));
    (v * 1e6).round() / 1e6
}

#[tokio::test]
async fn the_ecb_rates_convert_into_euro_with_their_source_and_day() {
    let pg = Pushgateway::start();
    let ecb = ecb().await;
    let cfg = config(
        &pg.url,
        "EUR",
        &format!(
            "[fx]\nsource = \"ecb\"\nurl = \"{}/stats/eurofxref/eurofxref-daily.xml\"\n",
            ecb.uri()
        ),
    );
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // 1 EUR = 1.0163 USD = 0.84585 GBP on 2022-07-08.
    assert_eq!(spend(&pg, "dollars"), f(dec("100") / dec("1.0163")));
    assert_eq!(spend(&pg, "pounds"), f(dec("50") / dec("0.84585")));
    let rate = |from: &str| {
        pg.value(
            None,
            "cost_fx_rate",
            &[("from", from), ("to", "EUR"), ("source", "ecb")],
        )
    };
    assert!(rate("USD").is_some_and(|r| (r - 1.0 / 1.0163).abs() < 1e-9));
    assert!(rate("JPY").is_some());
    assert_eq!(
        pg.value(
            None,
            "cost_fx_rate_timestamp_seconds",
            &[("from", "USD"), ("to", "EUR")]
        ),
        Some(SNAPSHOT_DAY)
    );
}

#[tokio::test]
async fn cross_rates_serve_a_reporting_currency_other_than_the_euro() {
    let pg = Pushgateway::start();
    let ecb = ecb().await;
    let cfg = config(
        &pg.url,
        "USD",
        &format!(
            "[fx]\nsource = \"ecb\"\nurl = \"{}/stats/eurofxref/eurofxref-daily.xml\"\n",
            ecb.uri()
        ),
    );
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(spend(&pg, "dollars"), 100.0);
    // 1 GBP = 1.0163 / 0.84585 USD.
    let gbp = (dec("1.0163") / dec("0.84585")).round_dp(10);
    assert_eq!(spend(&pg, "pounds"), f(dec("50") * gbp));
    assert!(
        pg.value(
            None,
            "cost_fx_rate",
            &[("from", "EUR"), ("to", "USD"), ("source", "ecb")]
        )
        .is_some_and(|r| (r - 1.0163).abs() < 1e-12)
    );
}

#[tokio::test]
async fn a_failed_fetch_falls_back_to_the_configured_rates_and_never_fails_the_run() {
    // The ECB down (a port nobody listens on), then answering an error page.
    let page = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&page)
        .await;
    for (url, why) in [
        (
            format!(
                "http://127.0.0.1:{}/eurofxref-daily.xml",
                support::free_port()
            ),
            "error sending request",
        ),
        (format!("{}/eurofxref-daily.xml", page.uri()), "not the ECB"),
    ] {
        let pg = Pushgateway::start();
        let cfg = config(
            &pg.url,
            "EUR",
            &format!("[fx]\nsource = \"ecb\"\nurl = \"{url}\"\nUSD = 0.9\nGBP = 1.2\n"),
        );
        let (code, stderr) = support::push(cfg.path(), &[]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stderr.contains("could not be used") && stderr.contains(why),
            "{stderr}"
        );
        assert_eq!(spend(&pg, "dollars"), 90.0);
        assert_eq!(spend(&pg, "pounds"), 60.0);
        assert_eq!(
            pg.value(
                None,
                "cost_fx_rate",
                &[("from", "USD"), ("to", "EUR"), ("source", "config")]
            ),
            Some(0.9)
        );
        assert_eq!(
            pg.value(None, "cost_fx_rate_timestamp_seconds", &[("from", "USD")]),
            None,
            "a configured rate has no reference day"
        );
    }
}

#[tokio::test]
async fn overrides_win_over_the_ecb_and_fallbacks_fill_its_gaps() {
    let pg = Pushgateway::start();
    let ecb = ecb().await;
    let cfg = config(
        &pg.url,
        "EUR",
        &format!(
            "[fx]\nsource = \"ecb\"\nurl = \"{}/stats/eurofxref/eurofxref-daily.xml\"\nUSD = 0.5\n\
             [fx.overrides]\nGBP = 1.25\n",
            ecb.uri()
        ),
    );
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // USD: the ECB's, not the fallback; GBP: the override.
    assert_eq!(spend(&pg, "dollars"), f(dec("100") / dec("1.0163")));
    assert_eq!(spend(&pg, "pounds"), 62.5);
    assert_eq!(
        pg.value(
            None,
            "cost_fx_rate",
            &[("from", "GBP"), ("to", "EUR"), ("source", "config")]
        ),
        Some(1.25)
    );
}

#[tokio::test]
async fn without_a_fallback_a_failed_fetch_fails_only_what_needs_the_rate() {
    let pg = Pushgateway::start();
    let url = format!("http://127.0.0.1:{}/x.xml", support::free_port());
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
         [fx]\nsource = \"ecb\"\nurl = \"{url}\"\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"dollars\"\namount = 100\ncurrency = \"USD\"\n\
         [[fixed]]\nprovider = \"local\"\nname = \"euros\"\namount = 7\ncurrency = \"EUR\"\n",
        pg.url
    ));
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(3), "partial, not aborted: {stderr}");
    assert!(stderr.contains("no [fx] rate for USD"), "{stderr}");
    assert_eq!(
        pg.value(Some("local"), "cost_spend", &[("name", "euros")]),
        Some(7.0)
    );
    assert_eq!(pg.value(Some("acme"), "cost_collector_up", &[]), Some(0.0));
}

/// An ECB file with the given `<Cube currency=… rate=…/>` lines, served on loopback.
async fn ecb_with(rates: &[(&str, &str)]) -> MockServer {
    let cubes: String = rates
        .iter()
        .map(|(c, r)| format!("<Cube currency='{c}' rate='{r}'/>"))
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\"><Cube><Cube time='2026-12-04'>{cubes}</Cube></Cube></gesmes:Envelope>"
    );
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stats/eurofxref/eurofxref-daily.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(xml))
        .mount(&mock)
        .await;
    mock
}

#[tokio::test]
async fn a_cross_rate_no_decimal_holds_falls_back_to_the_configured_rate_never_a_panic() {
    // Reporting in USD with the ECB's USD at the largest decimal and GBP at the smallest:
    // 1 GBP = 7.9e28 / 1e-28 USD overflows. It was a panic (exit 101, nothing pushed); now the
    // configured GBP rate is used and the run goes on.
    let ecb = ecb_with(&[
        ("USD", "79228162514264337593543950335"),
        ("GBP", "0.0000000000000000000000000001"),
    ])
    .await;
    let pg = Pushgateway::start();
    let cfg = config(
        &pg.url,
        "USD",
        &format!(
            "[fx]\nGBP = 1.25\nsource = \"ecb\"\nurl = \"{}/stats/eurofxref/eurofxref-daily.xml\"\n",
            ecb.uri()
        ),
    );
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("no usable cross rate"), "{stderr}");
    assert_eq!(spend(&pg, "pounds"), 62.5);
    assert_eq!(spend(&pg, "dollars"), 100.0);
    assert_eq!(
        pg.value(
            None,
            "cost_fx_rate",
            &[("from", "GBP"), ("to", "USD"), ("source", "config")]
        ),
        Some(1.25)
    );
}

#[tokio::test]
async fn a_tiny_cross_rate_keeps_its_digits_instead_of_reporting_zero() {
    // 1 EUR = 10^11 JPY: 1 JPY = 1e-11 EUR, which ten decimal places rounded to 0, so a
    // 1,000 JPY subscription was reported as spend 0.
    let ecb = ecb_with(&[("JPY", "100000000000"), ("USD", "1.0"), ("GBP", "1.0")]).await;
    let pg = Pushgateway::start();
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\n[pushgateway]\nurl = \"{}\"\n[http]\nretries = 0\n\
         [fx]\nsource = \"ecb\"\nurl = \"{}/stats/eurofxref/eurofxref-daily.xml\"\n\
         [[fixed]]\nprovider = \"acme\"\nname = \"yen\"\namount = 1000\ncurrency = \"JPY\"\n",
        pg.url,
        ecb.uri()
    ));
    let (code, stderr) = support::push(cfg.path(), &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let v = pg
        .value(Some("acme"), "cost_spend", &[("name", "yen")])
        .unwrap();
    assert!((v - 1e-8).abs() < 1e-20, "{v}");
}

/// Issue 23, row "`examples/cost-exporter.toml`": the owner's example reads the day's ECB
/// rate, its `[fx]` rates the fallback. Its one dollar amount, Supabase's $25 plan: at the
/// snapshot's 1 EUR = 1.0163 USD, 25 ÷ 1.0163 = **24.60 €** (it was 25 × 0.92 = 23.00 € every
/// day, whatever the ECB said); with the ECB answering something that is not its file, the
/// example's 0.92: 23.00 €, and a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_reads_the_ecb_and_falls_back_to_its_rates() {
    let example = support::repo("examples/cost-exporter.toml");
    let ecb = ecb().await;
    let url = format!("{}/stats/eurofxref/eurofxref-daily.xml", ecb.uri());
    let (spent, forecast, stderr) =
        support::printed(&example, &[("COST_EXPORTER_FX__URL", &url)], "supabase").await;
    assert_eq!(
        (spent.as_deref(), forecast.as_deref()),
        (Some("24.60"), Some("24.60")),
        "{stderr}"
    );
    assert!(!stderr.contains("could not be used"), "{stderr}");
    // No such file there (404): the fallback, said.
    let elsewhere = MockServer::start().await;
    let url = format!("{}/stats/eurofxref/eurofxref-daily.xml", elsewhere.uri());
    let (spent, _, stderr) =
        support::printed(&example, &[("COST_EXPORTER_FX__URL", &url)], "supabase").await;
    assert_eq!(spent.as_deref(), Some("23.00"), "{stderr}");
    assert!(
        stderr.contains("the ECB's reference rates could not be used"),
        "{stderr}"
    );
}
