//! Exchange rates for one run: the configured `[fx]` rates, or, with `[fx] source = "ecb"`,
//! the European Central Bank's daily euro reference rates
//! (<https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates/html/index.en.html>,
//! public XML, no key), crossed into the reporting currency, with the configured rates as the
//! fallback and `[fx.overrides]` winning over both.
//!
//! A failed fetch never fails the run: it is logged, and the configured rates are used. Each
//! rate keeps its source and, for the ECB's, the day it is the reference rate of.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_xml::events::Event;
use rust_decimal::Decimal;

use crate::config::FxSource;
use crate::http::{Auth, ProviderHttp, describe};
#[cfg(test)]
use crate::money::ecb_publishes;
use crate::money::{Currency, Fx, Rate, RateSource};

/// Largest answer read (the file is about 1.6 kB).
const BODY_LIMIT: usize = 1 << 20;

/// The rates for this run: `configured` alone without a source; else the source's rates
/// crossed into the reporting currency, the configured ones filling what it lacks (or all of
/// it when the fetch fails, which is logged), and the overrides on top.
pub(crate) async fn for_run(
    configured: &Fx,
    source: Option<&FxSource>,
    http: &ProviderHttp,
    deadline: Duration,
) -> Fx {
    let Some(source) = source else {
        return configured.clone();
    };
    let fetched = match tokio::time::timeout(deadline, fetch(http, source)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(deadline)
        )),
    };
    let published = match fetched.and_then(|(day, euro)| {
        cross(configured.reporting(), day, &euro).ok_or_else(|| {
            format!(
                "the ECB publishes no rate for the reporting currency {}",
                configured.reporting()
            )
        })
    }) {
        Ok(rates) => {
            tracing::info!(
                "exchange rates: {} from the ECB ({})",
                rates.len(),
                describe(&source.url)
            );
            rates
        }
        Err(e) => {
            tracing::warn!(
                "the ECB's reference rates could not be used ({e}); the configured [fx] rates are"
            );
            BTreeMap::new()
        }
    };
    merge(configured, published, &source.overrides)
}

/// The configured rates, under the published ones, under the overrides.
fn merge(
    configured: &Fx,
    published: BTreeMap<Currency, Rate>,
    overrides: &BTreeMap<Currency, Decimal>,
) -> Fx {
    let mut rates: BTreeMap<Currency, Rate> = configured.rates().collect();
    rates.extend(published);
    for (c, value) in overrides {
        rates.insert(
            *c,
            Rate {
                value: *value,
                source: RateSource::Config,
                date: None,
            },
        );
    }
    rates.remove(&configured.reporting());
    Fx::with_rates(configured.reporting(), rates)
}

async fn fetch(
    http: &ProviderHttp,
    source: &FxSource,
) -> Result<(time::Date, BTreeMap<Currency, Decimal>), String> {
    let what = format!("GET {}", describe(&source.url));
    let resp = http
        .get(
            &source.url,
            Auth::Signed(&[]),
            &[("accept", "application/xml, text/xml")],
        )
        .await
        .map_err(|e| e.to_string())?;
    let body = crate::http::read_capped(resp, &what, BODY_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    parse(&body).map_err(|e| format!("{what}: {e}"))
}

/// Parses `eurofxref-daily.xml`: the reference day (`<Cube time='…'>`) and, per currency,
/// how many units one euro buys (`<Cube currency='USD' rate='1.0163'/>`). Currencies this
/// build does not know (a code retired from ISO 4217) are skipped; a rate that is not a
/// positive decimal is an error.
pub(crate) fn parse(xml: &[u8]) -> Result<(time::Date, BTreeMap<Currency, Decimal>), String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut day = None;
    let mut rates = BTreeMap::new();
    let mut root_seen = false;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("bad XML at byte {}: {e}", reader.buffer_position()))?;
        let e = match ev {
            Event::Start(e) | Event::Empty(e) => e,
            Event::Eof => break,
            _ => continue,
        };
        if !root_seen {
            root_seen = true;
            if e.local_name().as_ref() != "Envelope" {
                return Err(format!(
                    "not the ECB's reference rates (root <{}>)",
                    e.name().as_ref()
                ));
            }
        }
        if e.local_name().as_ref() != "Cube" {
            continue;
        }
        let (mut time, mut currency, mut rate) = (None, None, None);
        for a in e.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            let value = a.value.to_string();
            match a.key.local_name().as_ref() {
                "time" => time = Some(value),
                "currency" => currency = Some(value),
                "rate" => rate = Some(value),
                _ => {}
            }
        }
        if let Some(t) = time {
            day =
                Some(iso_date(&t).ok_or_else(|| format!("the reference day {t:?} is not a date"))?);
        }
        if let (Some(code), Some(r)) = (currency, rate) {
            let value: Decimal = r
                .trim()
                .parse()
                .map_err(|_| format!("the rate of {code} ({r:?}) is not a decimal"))?;
            if value <= Decimal::ZERO {
                return Err(format!("the rate of {code} ({r}) is not above 0"));
            }
            match code.parse::<Currency>() {
                Ok(c) => {
                    rates.insert(c, value);
                }
                Err(_) => tracing::debug!(%code, "an ECB currency this build does not know"),
            }
        }
        buf.clear();
    }
    let day = day.ok_or("no reference day (<Cube time='…'>)")?;
    if rates.is_empty() {
        return Err("no rate in the file".into());
    }
    Ok((day, rates))
}

/// `YYYY-MM-DD`.
fn iso_date(text: &str) -> Option<time::Date> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// Euro rates crossed into `reporting`: 1 unit of C is `r(reporting) / r(C)` reporting units
/// (r(EUR) = 1). `None` when the ECB has no rate for the reporting currency.
pub(crate) fn cross(
    reporting: Currency,
    day: time::Date,
    euro: &BTreeMap<Currency, Decimal>,
) -> Option<BTreeMap<Currency, Rate>> {
    let per_euro = |c: Currency| {
        if c == Currency::EUR {
            Some(Decimal::ONE)
        } else {
            euro.get(&c).copied()
        }
    };
    let r_reporting = per_euro(reporting)?;
    let mut out = BTreeMap::new();
    for c in euro.keys().copied().chain([Currency::EUR]) {
        if c == reporting {
            continue;
        }
        let Some(r_c) = per_euro(c) else { continue };
        match cross_rate(r_reporting, r_c) {
            Some(value) => {
                out.insert(
                    c,
                    Rate {
                        value,
                        source: RateSource::Ecb,
                        date: Some(day),
                    },
                );
            }
            None => tracing::warn!(
                "the ECB's rates for {c} and {reporting} give no usable cross rate ({r_reporting} / {r_c} is beyond what a decimal holds, or rounds to 0); the configured rate for {c} is used, if there is one"
            ),
        }
    }
    Some(out)
}

/// Significant digits a cross rate keeps: far more than any amount needs, and stable in
/// the exposition.
const RATE_DIGITS: u32 = 15;

/// `per_reporting / per_c`, to [`RATE_DIGITS`] significant digits; `None` when it cannot be
/// represented or rounds to 0 (a rate of 0 would report any amount as 0).
fn cross_rate(per_reporting: Decimal, per_c: Decimal) -> Option<Decimal> {
    let value = per_reporting
        .checked_div(per_c)?
        .round_sf(RATE_DIGITS)?
        .normalize();
    (value > Decimal::ZERO).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<Cube>
		<Cube time='2022-07-08'>
			<Cube currency='USD' rate='1.0163'/>
			<Cube currency='GBP' rate='0.84585'/>
			<Cube currency='HRK' rate='7.5190'/>
		</Cube>
	</Cube>
</gesmes:Envelope>"#;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn c(s: &str) -> Currency {
        s.parse().unwrap()
    }

    #[test]
    fn the_daily_file_gives_the_day_and_the_euro_rates() {
        let (day, rates) = parse(SNAPSHOT.as_bytes()).unwrap();
        assert_eq!(day.to_string(), "2022-07-08");
        assert_eq!(rates[&c("USD")], d("1.0163"));
        assert_eq!(rates[&c("GBP")], d("0.84585"));
    }

    #[test]
    fn rates_are_crossed_into_the_reporting_currency() {
        let (day, euro) = parse(SNAPSHOT.as_bytes()).unwrap();
        // Reporting in EUR: 1 USD = 1 / 1.0163 EUR.
        let eur = cross(Currency::EUR, day, &euro).unwrap();
        assert_eq!(eur[&c("USD")].value, d("0.983961428711994"));
        assert_eq!(eur[&c("USD")].source, RateSource::Ecb);
        assert_eq!(eur[&c("USD")].date, Some(day));
        // Reporting in USD: 1 EUR = 1.0163 USD; 1 GBP = 1.0163 / 0.84585 USD.
        let usd = cross(Currency::USD, day, &euro).unwrap();
        assert_eq!(usd[&Currency::EUR].value, d("1.0163"));
        assert_eq!(usd[&c("GBP")].value, d("1.20151327067447"));
        assert!(!usd.contains_key(&Currency::USD));
        // A reporting currency the ECB does not publish: no cross rates.
        assert!(cross(c("ARS"), day, &euro).is_none());
    }

    #[test]
    fn cross_rates_that_cannot_be_used_fall_back_never_panic_nor_zero() {
        let day = time::Date::from_calendar_date(2026, time::Month::December, 7).unwrap();
        let euro: BTreeMap<Currency, Decimal> = [
            (c("USD"), Decimal::MAX),
            (c("JPY"), Decimal::new(1, 28)),
            (c("GBP"), d("0.85")),
        ]
        .into();
        // Reporting in USD: 1 JPY = 7.9e28 / 1e-28 USD and 1 GBP = 7.9e28 / 0.85 overflow;
        // refused, never a panic. 1 EUR = 7.9e28 USD is representable.
        let usd = cross(c("USD"), day, &euro).unwrap();
        assert!(!usd.contains_key(&c("JPY")), "{usd:?}");
        assert!(!usd.contains_key(&c("GBP")), "{usd:?}");
        assert_eq!(
            usd[&Currency::EUR].value,
            Decimal::MAX.round_sf(15).unwrap()
        );
        // Reporting in EUR: 1 USD = 1 / 7.9e28 EUR rounds to 0 at 28 places: refused, never a
        // rate that reports every USD amount as 0.
        let eur = cross(Currency::EUR, day, &euro).unwrap();
        assert!(!eur.contains_key(&c("USD")), "{eur:?}");
        assert_eq!(eur[&c("GBP")].value, d("1.17647058823529"));
        // Small but real rates keep their digits: 1 JPY = 1/180 EUR, not 0.0055555556.
        let euro: BTreeMap<Currency, Decimal> = [(c("JPY"), d("180"))].into();
        let eur = cross(Currency::EUR, day, &euro).unwrap();
        assert_eq!(eur[&c("JPY")].value, d("0.00555555555555556"));
        let euro: BTreeMap<Currency, Decimal> = [(c("JPY"), d("1e12"))].into();
        let eur = cross(Currency::EUR, day, &euro).unwrap();
        assert_eq!(eur[&c("JPY")].value, d("1e-12"));
    }

    #[test]
    fn configured_rates_fill_gaps_and_overrides_win() {
        let (day, euro) = parse(SNAPSHOT.as_bytes()).unwrap();
        let configured = Fx::new(
            Currency::EUR,
            [(c("USD"), d("0.9")), (c("ARS"), d("0.001"))].into(),
        );
        let overrides = [(c("GBP"), d("1.2"))].into();
        let fx = merge(
            &configured,
            cross(Currency::EUR, day, &euro).unwrap(),
            &overrides,
        );
        let rates: BTreeMap<Currency, Rate> = fx.rates().collect();
        // The ECB's USD wins over the configured fallback…
        assert_eq!(rates[&c("USD")].source, RateSource::Ecb);
        // …the configured ARS fills what the ECB lacks…
        assert_eq!(rates[&c("ARS")].value, d("0.001"));
        assert_eq!(rates[&c("ARS")].source, RateSource::Config);
        // …and an override wins over the ECB.
        assert_eq!(rates[&c("GBP")].value, d("1.2"));
        assert_eq!(rates[&c("GBP")].source, RateSource::Config);
        // Without anything published (a failed fetch): the configured rates.
        let fx = merge(&configured, BTreeMap::new(), &BTreeMap::new());
        assert_eq!(fx.rates().count(), 2);
    }

    #[test]
    fn bad_files_are_named_errors() {
        for (xml, why) in [
            (
                "<html><body>Service unavailable</body></html>",
                "not the ECB",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes='x'><Cube><Cube time='2022-07-08'/></Cube></gesmes:Envelope>",
                "no rate",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes='x'><Cube><Cube currency='USD' rate='1.1'/></Cube></gesmes:Envelope>",
                "no reference day",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes='x'><Cube><Cube time='2022-07-08'><Cube currency='USD' rate='-1'/></Cube></Cube></gesmes:Envelope>",
                "not above 0",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes='x'><Cube><Cube time='8 July'><Cube currency='USD' rate='1'/></Cube></Cube></gesmes:Envelope>",
                "not a date",
            ),
            (
                "<gesmes:Envelope xmlns:gesmes='x'><Cube><Cube time='2022-07-08'><Cube currency='USD' rate='1,1'/></Cube></Cube></gesmes:Envelope>",
                "not a decimal",
            ),
        ] {
            let e = parse(xml.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{xml}: {e}");
        }
        assert!(ecb_publishes(Currency::EUR) && ecb_publishes(Currency::USD));
        assert!(!ecb_publishes(c("ARS")));
    }
}
