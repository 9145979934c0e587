//! Reading provider payloads safely: JSON Lines split as they arrive (memory bounded by the
//! longest line, not the body), numbers that may arrive as strings, RFC 3339 timestamps.

use std::fmt;

use rust_decimal::Decimal;

use serde::de::{self, Deserializer, Visitor};

use crate::error::{CollectError, Reason};

/// The longest JSON line accepted: a FOCUS record is well under 4 KiB.
pub(super) const MAX_LINE: usize = 1 << 20;

/// Splits a byte stream into lines as chunks arrive. Blank lines (and a final line without a
/// newline) are handled; a line longer than [`MAX_LINE`] is an error.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
    line: usize,
}

impl LineSplitter {
    /// Feeds one chunk; calls `each(line_number, line)` for every complete, non-blank line.
    pub(super) fn feed<F>(&mut self, chunk: &[u8], mut each: F) -> Result<(), CollectError>
    where
        F: FnMut(usize, &[u8]) -> Result<(), CollectError>,
    {
        let mut rest = chunk;
        while let Some(pos) = memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            self.line += 1;
            if self.pending.is_empty() {
                emit(self.line, head, &mut each)?;
            } else {
                self.pending.extend_from_slice(head);
                let line = std::mem::take(&mut self.pending);
                emit(self.line, &line, &mut each)?;
            }
        }
        if self.pending.len() + rest.len() > MAX_LINE {
            return Err(CollectError::new(
                Reason::Decode,
                format!("line {} is longer than {MAX_LINE} bytes", self.line + 1),
            ));
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the stream: a last line without a newline is still a line.
    pub(super) fn finish<F>(&mut self, mut each: F) -> Result<(), CollectError>
    where
        F: FnMut(usize, &[u8]) -> Result<(), CollectError>,
    {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.line += 1;
        let line = std::mem::take(&mut self.pending);
        emit(self.line, &line, &mut each)
    }
}

fn emit<F>(n: usize, line: &[u8], each: &mut F) -> Result<(), CollectError>
where
    F: FnMut(usize, &[u8]) -> Result<(), CollectError>,
{
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    each(n, line)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

/// RFC 3339 in whole seconds, as the providers' query parameters take it.
pub(super) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A calendar date as providers write it: `YYYY-MM-DD`.
pub(crate) fn calendar_date(text: &str) -> Option<time::Date> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// An RFC 3339 date-time, or a date (taken as midnight UTC).
pub(crate) fn date_time(text: &str) -> Option<time::OffsetDateTime> {
    let text = text.trim();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| Some(calendar_date(text)?.midnight().assume_utc()))
}

/// An id from a provider's answer, to be put in a URL path: 1 to 128 letters, digits, `.`,
/// `_` or `-` (never a `/`, never `..`), else `None`.
pub(crate) fn path_segment(id: &str) -> Option<&str> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(id)
}

/// A count or size from a JSON payload: a number or numeric string, finite and not negative.
pub(super) fn non_negative(v: &serde_json::Value) -> Result<f64, String> {
    let n: Num = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    if n.0 < 0.0 {
        return Err(format!("{} is negative", n.0));
    }
    Ok(n.0)
}

/// A float figure as a decimal, for money arithmetic. A figure a decimal cannot hold (NaN,
/// infinite, beyond 7.9e28) is a `decode` error naming `what`, never 0.
pub(super) fn decimal(f: f64, what: &str) -> Result<rust_decimal::Decimal, CollectError> {
    rust_decimal::prelude::FromPrimitive::from_f64(f).ok_or_else(|| {
        CollectError::new(
            Reason::Decode,
            format!("{what}: {f} cannot be represented as a decimal"),
        )
    })
}

/// `*acc += v`, or a `decode` error naming `what` when the sum cannot be represented.
pub(crate) fn add(acc: &mut Decimal, v: Decimal, what: &str) -> Result<(), CollectError> {
    *acc = acc.checked_add(v).ok_or_else(|| overflow(what))?;
    Ok(())
}

/// `a × b`, or a `decode` error naming `what` when the product cannot be represented.
pub(crate) fn mul(a: Decimal, b: Decimal, what: &str) -> Result<Decimal, CollectError> {
    a.checked_mul(b).ok_or_else(|| overflow(what))
}

fn overflow(what: &str) -> CollectError {
    CollectError::new(
        Reason::Decode,
        format!("{what}: the amounts are too large to add up (beyond 7.9e28)"),
    )
}

/// Per-label amounts with credits netted: a label (a project, a service) whose credits exceed
/// its charges (typically account-level credits, `unattributed`) is reported as 0 and the
/// excess is deducted from the largest first, so the series still add up to the amount due
/// (and all are 0 when credits exceed every charge). Never negative.
pub(crate) fn net_credits(mut projects: Vec<(String, Decimal)>) -> Vec<(String, Decimal)> {
    let mut pool = Decimal::ZERO;
    for (_, amount) in projects.iter_mut() {
        if amount.is_sign_negative() {
            // Saturating: a pool beyond any line's amount nets every line to 0 either way.
            pool = pool.saturating_add(-*amount);
            *amount = Decimal::ZERO;
        }
    }
    if pool.is_zero() {
        return projects;
    }
    tracing::info!(
        "{pool} of credits not covered by their own project are deducted from the largest projects"
    );
    let mut order: Vec<usize> = (0..projects.len()).collect();
    order.sort_by(|a, b| projects[*b].1.cmp(&projects[*a].1).then(a.cmp(b)));
    for i in order {
        if pool.is_zero() {
            break;
        }
        let take = projects[i].1.min(pool);
        projects[i].1 -= take;
        pool -= take;
    }
    projects
}

/// A JSON number that may also arrive as a string (`"123"`); never NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub(super) struct Num(pub f64);

impl<'de> serde::Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                if v.is_finite() {
                    Ok(Num(v))
                } else {
                    Err(E::custom("the number is not finite"))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                match v.trim().parse::<f64>() {
                    Ok(f) if f.is_finite() => Ok(Num(f)),
                    _ => Err(E::custom(format!("{v:?} is not a number"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Result<Vec<(usize, String)>, CollectError> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |n, l| {
                out.push((n, String::from_utf8_lossy(l).into_owned()));
                Ok(())
            })?;
        }
        s.finish(|n, l| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn lines_split_across_chunks_with_numbers_that_count_blank_lines() {
        let got = split(&[b"{\"a\"", b":1}\n\n{\"b\":2}\r\n", b"{\"c\":3}"]).unwrap();
        assert_eq!(
            got,
            vec![
                (1, "{\"a\":1}".to_owned()),
                (3, "{\"b\":2}".to_owned()),
                (4, "{\"c\":3}".to_owned())
            ]
        );
        assert!(split(&[b""]).unwrap().is_empty());
    }

    #[test]
    fn an_endless_line_is_refused() {
        let big = vec![b'x'; MAX_LINE + 1];
        let err = split(&[&big]).unwrap_err();
        assert_eq!(err.reason, Reason::Decode);
    }

    #[test]
    fn a_figure_a_decimal_cannot_hold_is_an_error_not_zero() {
        assert_eq!(
            decimal(1.5, "x").unwrap(),
            rust_decimal::Decimal::new(15, 1)
        );
        for bad in [1e30, f64::NAN, f64::INFINITY] {
            let err = decimal(bad, "storage").unwrap_err();
            assert_eq!(err.reason, Reason::Decode);
            assert!(err.message.starts_with("storage: "), "{}", err.message);
        }
    }

    #[test]
    fn ids_from_answers_are_safe_path_segments() {
        assert_eq!(path_segment(" FR123 "), Some("FR123"));
        assert_eq!(path_segment("12.a_b-c"), Some("12.a_b-c"));
        for bad in ["", "..", "a/b", "a?b", "a b", "%2e"] {
            assert_eq!(path_segment(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_may_be_strings() {
        let v: Vec<Num> = serde_json::from_str(r#"[1, 2.5, "3", " 4.25 "]"#).unwrap();
        assert_eq!(v, vec![Num(1.0), Num(2.5), Num(3.0), Num(4.25)]);
        assert!(serde_json::from_str::<Num>(r#""NaN""#).is_err());
        assert!(serde_json::from_str::<Num>(r#""abc""#).is_err());
    }

    #[test]
    fn credits_are_netted_so_the_series_add_up_to_the_amount_due() {
        let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
        let got = net_credits(vec![
            ("a".into(), d("3")),
            ("b".into(), d("5")),
            ("unattributed".into(), d("-6.5")),
        ]);
        assert_eq!(
            got,
            vec![
                ("a".into(), d("1.5")),
                ("b".into(), d("0")),
                ("unattributed".into(), d("0"))
            ]
        );
        let got = net_credits(vec![("a".into(), d("1")), ("b".into(), d("-4"))]);
        assert!(got.iter().all(|(_, v)| v.is_zero()));
    }
}
