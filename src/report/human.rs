//! Figures for people: money with thousands separators, usage in human units (GB, TB, k, M,
//! hours), percentages, dates as YYYY-MM-DD.

use std::time::SystemTime;

use rust_decimal::Decimal;

use crate::cost::Unit;

/// `1,234.50`: two decimals, thousands separated.
pub(crate) fn money(d: Decimal) -> String {
    let text = format!("{:.2}", d.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{}.{frac}", thousands(int))
}

/// `1234567` → `1,234,567`.
fn thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a whole percentage, rounded down (79.9 % is `79%`, never shown as 80 %).
pub(crate) fn percent(share: f64) -> String {
    // A hair above, so that 0.29 (28.999… in binary) is 29 %.
    let p = (share * 100.0 + 1e-9).floor();
    if p.is_finite() && p < 1e6 {
        format!("{p:.0}%")
    } else {
        ">999999%".to_owned()
    }
}

/// The day of `t`, UTC: `2026-12-17`.
pub(crate) fn date(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A quantity in its unit, for people: `85.2 GB`, `812k`, `1.23M`, `4.2 h`.
pub(crate) fn quantity(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => scaled(
            value,
            1000.0,
            &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
            " ",
        ),
        Unit::Seconds => {
            if value < 120.0 {
                format!("{} s", short(value))
            } else if value < 7200.0 {
                format!("{} min", short(value / 60.0))
            } else {
                format!("{} h", short(value / 3600.0))
            }
        }
        Unit::GigabyteHours => format!("{} GB-h", count(value)),
        Unit::GigabyteMonths => format!("{} GB-mo", count(value)),
        Unit::Requests
        | Unit::Tokens
        | Unit::Objects
        | Unit::Rows
        | Unit::Users
        | Unit::Characters
        | Unit::Count => count(value),
    }
}

/// Used against a limit, the unit said once when they share it: `85.2/100 GB`, `81k/100k`,
/// `950 MB/1 GB`.
pub(crate) fn of(used: f64, limit: f64, unit: Unit) -> String {
    let (u, l) = (quantity(used, unit), quantity(limit, unit));
    match (u.split_once(' '), l.split_once(' ')) {
        (Some((n, a)), Some((_, b))) if a == b => format!("{n}/{l}"),
        _ => format!("{u}/{l}"),
    }
}

/// A count: up to 9,999 with separators, then `12.5k`, `812k`, `1.23M`, `4B`.
fn count(value: f64) -> String {
    if value < 10_000.0 {
        let rounded = (value * 100.0).round() / 100.0;
        if rounded.fract() == 0.0 {
            return thousands(&format!("{rounded:.0}"));
        }
        return short(value);
    }
    scaled(value, 1000.0, &["", "k", "M", "B", "T"], "")
}

/// `value` divided by `step` until under it, three significant digits, with its suffix.
fn scaled(value: f64, step: f64, suffixes: &[&str], space: &str) -> String {
    let mut v = value;
    let mut i = 0;
    while v >= step && i + 1 < suffixes.len() {
        v /= step;
        i += 1;
    }
    // 999.96k rounds to 1000k: the next suffix reads better.
    if short(v) == "1000" && i + 1 < suffixes.len() {
        v /= step;
        i += 1;
    }
    format!("{}{space}{}", short(v), suffixes[i])
}

/// Three significant digits at most, trailing zeros dropped: `8.52`, `85.2`, `852`.
fn short(v: f64) -> String {
    let text = if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_and_thousands_separators() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(money(d("0")), "0.00");
        assert_eq!(money(d("62.5")), "62.50");
        assert_eq!(money(d("1234.5")), "1,234.50");
        assert_eq!(money(d("1234567.891")), "1,234,567.89");
        assert_eq!(money(d("100")), "100.00");
        assert_eq!(money(d("-1000")), "-1,000.00");
    }

    #[test]
    fn usage_reads_in_human_units() {
        assert_eq!(quantity(85_200_000_000.0, Unit::Bytes), "85.2 GB");
        assert_eq!(quantity(1e11, Unit::Bytes), "100 GB");
        assert_eq!(quantity(1e12, Unit::Bytes), "1 TB");
        assert_eq!(quantity(999.0, Unit::Bytes), "999 B");
        assert_eq!(quantity(81_000.0, Unit::Characters), "81k");
        assert_eq!(quantity(100_000.0, Unit::Characters), "100k");
        assert_eq!(quantity(9_876.0, Unit::Requests), "9,876");
        assert_eq!(quantity(812_400.0, Unit::Requests), "812k");
        assert_eq!(quantity(1_000_000.0, Unit::Requests), "1M");
        assert_eq!(quantity(1_234_567.0, Unit::Tokens), "1.23M");
        assert_eq!(quantity(999_960.0, Unit::Requests), "1M");
        assert_eq!(quantity(2.5, Unit::Count), "2.5");
        assert_eq!(quantity(14_400.0, Unit::Seconds), "4 h");
        assert_eq!(quantity(5_400.0, Unit::Seconds), "90 min");
        assert_eq!(quantity(45.0, Unit::Seconds), "45 s");
        assert_eq!(quantity(360.0, Unit::GigabyteHours), "360 GB-h");
        assert_eq!(of(85.2e9, 1e11, Unit::Bytes), "85.2/100 GB");
        assert_eq!(of(9.5e8, 1e9, Unit::Bytes), "950 MB/1 GB");
        assert_eq!(of(81_000.0, 100_000.0, Unit::Characters), "81k/100k");
    }

    #[test]
    fn percentages_round_down_and_dates_are_iso() {
        assert_eq!(percent(0.799), "79%");
        assert_eq!(percent(0.81), "81%");
        assert_eq!(percent(0.29), "29%");
        assert_eq!(percent(1.2001), "120%");
        assert_eq!(percent(f64::INFINITY), ">999999%");
        let t = time::Date::from_calendar_date(2026, time::Month::December, 17)
            .unwrap()
            .with_hms(23, 59, 59)
            .unwrap()
            .assume_utc();
        assert_eq!(date(t.into()), "2026-12-17");
    }
}
