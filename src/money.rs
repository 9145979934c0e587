//! Money: ISO 4217 currencies, decimal amounts, and conversion to the reporting currency.
//!
//! Amounts are `rust_decimal::Decimal` from parse to conversion; they become `f64` only when
//! the exposition is rendered. A parse never yields NaN or infinity; negative amounts are
//! refused by configuration validation and the outcome model.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};

/// Active ISO 4217 alphabetic codes (list 1, 2026), plus none of the fund or metal codes.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG",
    "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// An ISO 4217 currency code such as `EUR`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars: what every metered provider bills in.
    pub const USD: Currency = Currency(*b"USD");
    /// Euros.
    pub const EUR: Currency = Currency(*b"EUR");

    /// The three-letter code.
    pub(crate) fn code(&self) -> &str {
        // The bytes come from ISO_4217, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for Currency {
    type Err = String;
    /// Accepts a known ISO 4217 code in any case (`eur` is `EUR`).
    fn from_str(s: &str) -> Result<Self, String> {
        let upper = s.trim().to_ascii_uppercase();
        match ISO_4217.iter().find(|c| **c == upper) {
            Some(code) => {
                let b = code.as_bytes();
                Ok(Currency([b[0], b[1], b[2]]))
            }
            None => Err(format!(
                "unknown currency {s:?} (expected an ISO 4217 code such as EUR or USD)"
            )),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    /// The amount; a negative one is refused where figures are checked (configuration
    /// validation, the outcome model), never rendered.
    pub amount: Decimal,
    /// The currency the amount is in.
    pub currency: Currency,
}

/// A decimal amount in the configuration: TOML may give `62.5`, `62` or `"62.50"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConfigDecimal(pub(crate) Decimal);

impl serde::Serialize for ConfigDecimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ConfigDecimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigDecimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigDecimal, E> {
                // Sign is checked by validation, which knows the key; here only the syntax.
                let t = v.trim().replace('_', "");
                Decimal::from_str(&t)
                    .map(ConfigDecimal)
                    .map_err(|_| E::custom(format!("{v:?} is not a decimal number")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigDecimal, E> {
                Ok(ConfigDecimal(Decimal::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigDecimal, E> {
                Ok(ConfigDecimal(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigDecimal, E> {
                if !v.is_finite() {
                    return Err(E::custom("the number is not finite"));
                }
                // `f64`'s Display is the shortest text that round-trips, so 0.92 stays 0.92.
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether money figures include taxes (VAT, sales tax): one basis for the whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TaxBasis {
    /// Net of taxes, as a business that reclaims VAT reads its costs (the default).
    #[default]
    Excluded,
    /// Taxes included: what leaves the bank account.
    Included,
}

impl TaxBasis {
    /// The `basis` label value and the configuration word.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaxBasis::Excluded => "excluded",
            TaxBasis::Included => "included",
        }
    }
}

/// `YYYY-MM` → the 1st of that month.
pub(crate) fn year_month(text: &str) -> Option<time::Date> {
    let (y, m) = text.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, 1).ok()
}

/// The European Central Bank's daily euro reference rates (`[fx] source = "ecb"`).
pub(crate) const ECB_DAILY: &str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml";

/// The currencies the ECB publishes a daily reference rate for (besides the euro), as listed
/// on its reference-rate page: at validation, these need no configured rate when the ECB is the
/// source.
pub(crate) const ECB_CURRENCIES: &[&str] = &[
    "USD", "JPY", "BGN", "CZK", "DKK", "GBP", "HUF", "PLN", "RON", "SEK", "CHF", "ISK", "NOK",
    "TRY", "AUD", "BRL", "CAD", "CNY", "HKD", "IDR", "ILS", "INR", "KRW", "MXN", "MYR", "NZD",
    "PHP", "SGD", "THB", "ZAR",
];

/// Whether the ECB's rates can be crossed into `reporting`: the euro, or a currency it
/// publishes.
pub(crate) fn ecb_publishes(reporting: Currency) -> bool {
    reporting == Currency::EUR || ECB_CURRENCIES.contains(&reporting.code())
}

/// Where a conversion rate comes from (`source` label of `cost_fx_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateSource {
    /// `[fx]` in the configuration (or `[fx.overrides]`).
    Config,
    /// The European Central Bank's daily reference rates.
    Ecb,
}

impl RateSource {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RateSource::Config => "config",
            RateSource::Ecb => "ecb",
        }
    }
}

/// One conversion rate: 1 unit of a currency is `value` reporting-currency units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// The rate.
    pub value: Decimal,
    /// Where it comes from.
    pub source: RateSource,
    /// The day it is the reference rate of, where it has one (the ECB's).
    pub date: Option<time::Date>,
}

/// Conversion rates into the reporting currency.
#[derive(Debug, Clone)]
pub(crate) struct Fx {
    reporting: Currency,
    /// 1 unit of the key currency = N reporting-currency units.
    rates: BTreeMap<Currency, Rate>,
}

impl Fx {
    /// Rates as configured; the reporting currency converts to itself at 1.
    pub(crate) fn new(reporting: Currency, rates: BTreeMap<Currency, Decimal>) -> Fx {
        let rates = rates
            .into_iter()
            .map(|(c, value)| {
                (
                    c,
                    Rate {
                        value,
                        source: RateSource::Config,
                        date: None,
                    },
                )
            })
            .collect();
        Fx { reporting, rates }
    }

    /// Rates with their sources.
    pub(crate) fn with_rates(reporting: Currency, rates: BTreeMap<Currency, Rate>) -> Fx {
        Fx { reporting, rates }
    }

    /// The reporting currency.
    pub(crate) fn reporting(&self) -> Currency {
        self.reporting
    }

    /// The rates, reporting currency excluded, for `cost_fx_rate`.
    pub(crate) fn rates(&self) -> impl Iterator<Item = (Currency, Rate)> + '_ {
        self.rates
            .iter()
            .filter(|(c, _)| **c != self.reporting)
            .map(|(c, r)| (*c, *r))
    }

    /// Whether an amount in `c` can be converted.
    pub(crate) fn has(&self, c: Currency) -> bool {
        c == self.reporting || self.rates.contains_key(&c)
    }

    /// Converts into the reporting currency.
    pub(crate) fn convert(&self, m: Money) -> Result<Decimal, ConvertError> {
        if m.currency == self.reporting {
            return Ok(m.amount);
        }
        let rate = self.rates.get(&m.currency).ok_or_else(|| {
            ConvertError::NoRate(format!(
                "no [fx] rate for {} (reporting currency {})",
                m.currency, self.reporting
            ))
        })?;
        m.amount.checked_mul(rate.value).ok_or_else(|| {
            ConvertError::Overflow(format!(
                "{} {} is too large to convert (beyond 7.9e28)",
                m.amount, m.currency
            ))
        })
    }
}

/// Why an amount could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// No rate for its currency: a configuration matter.
    NoRate(String),
    /// The converted amount cannot be represented: a figure that cannot be true.
    Overflow(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::NoRate(m) | ConvertError::Overflow(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_codes_in_any_case() {
        assert_eq!("eur".parse::<Currency>().unwrap(), Currency::EUR);
        assert!("EURO".parse::<Currency>().is_err());
        assert!("XXX".parse::<Currency>().is_err());
    }

    #[test]
    fn amounts_are_exact_decimals_and_never_nan_or_infinite() {
        let parse = |text: &str| serde_json::from_str::<ConfigDecimal>(text).map(|d| d.0);
        assert_eq!(parse("\"123.78912\"").unwrap().to_string(), "123.78912");
        assert_eq!(parse("62.5").unwrap().to_string(), "62.5");
        assert_eq!(parse("\"1_000\"").unwrap(), Decimal::from(1000));
        for bad in [
            "\"NaN\"",
            "\"inf\"",
            "\"1e309\"",
            "\"\"",
            "\"12,5\"",
            "true",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn conversion_uses_the_rate_and_names_a_missing_one() {
        let fx = Fx::new(
            Currency::EUR,
            [(Currency::USD, Decimal::from_str("0.92").unwrap())].into(),
        );
        let m = Money {
            amount: Decimal::from(25),
            currency: Currency::USD,
        };
        assert_eq!(fx.convert(m).unwrap().to_string(), "23.00");
        let gbp = Money {
            amount: Decimal::ONE,
            currency: "GBP".parse().unwrap(),
        };
        assert!(fx.convert(gbp).unwrap_err().to_string().contains("GBP"));
    }
}
