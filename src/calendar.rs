//! Billing calendars: where a provider's invoices cut the months.
//!
//! A provider's month starts at midnight on the 1st in its billing time zone: a provider that
//! dates and cuts its bills in Paris time has a Paris month, an invoice month kept in US
//! Pacific time a Pacific one; providers that document no billing time zone are cut in UTC. A moment exactly on the boundary belongs to the
//! month it starts: [`Month`] is half open, `[start, end)`, and something due at `end` (a
//! renewal at 00:00 on the 1st) is next month's.
//!
//! Time zones come from `jiff` with the IANA database compiled in, so the cut is right in
//! winter and summer time and on a machine (or image) without `/usr/share/zoneinfo`.

use std::time::{Duration, SystemTime};

/// Where a provider's invoices cut months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calendar {
    /// Midnight UTC (providers that document no billing time zone).
    #[default]
    Utc,
    /// Midnight in Europe/Paris (bills dated and cut in Paris time).
    Paris,
    /// Midnight in America/Los_Angeles (an invoice month kept in US Pacific time).
    Pacific,
}

/// One billing month: from `start` (included) to `end` (excluded, the next month's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    /// 00:00 on the 1st in the calendar's time zone.
    pub start: SystemTime,
    /// 00:00 on the 1st of the next month in the same zone.
    pub end: SystemTime,
}

impl Calendar {
    /// The IANA name of its time zone, for documentation and logs.
    pub fn zone(self) -> &'static str {
        match self {
            Calendar::Utc => "UTC",
            Calendar::Paris => "Europe/Paris",
            Calendar::Pacific => "America/Los_Angeles",
        }
    }

    fn tz(self) -> jiff::tz::TimeZone {
        match self {
            Calendar::Utc => jiff::tz::TimeZone::UTC,
            // The database is compiled in: the lookup cannot miss; UTC is only a guard.
            zone => jiff::tz::TimeZone::get(zone.zone()).unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// The month `t` falls in.
    pub fn month_of(self, t: SystemTime) -> Month {
        let tz = self.tz();
        let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let first = ts.to_zoned(tz.clone()).date().first_of_month();
        self.month_from(first)
            .unwrap_or_else(|| Calendar::Utc.month_from(first).unwrap_or(EPOCH_MONTH))
    }

    /// The month of `year`-`month` (1 to 12), in this calendar.
    pub fn month(self, year: i32, month: u8) -> Option<Month> {
        let year = i16::try_from(year).ok()?;
        let month = i8::try_from(month).ok()?;
        self.month_from(jiff::civil::Date::new(year, month, 1).ok()?)
    }

    /// The month starting on `first` (a 1st) in this calendar.
    fn month_from(self, first: jiff::civil::Date) -> Option<Month> {
        let tz = self.tz();
        let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
        let start = first.to_zoned(tz.clone()).ok()?.start_of_day().ok()?;
        let end = next.to_zoned(tz).ok()?.start_of_day().ok()?;
        Some(Month {
            start: SystemTime::from(start.timestamp()),
            end: SystemTime::from(end.timestamp()),
        })
    }
}

impl Calendar {
    /// `t` at the offset the calendar's zone has then (`+01:00` in a Paris winter, `+02:00`
    /// in its summer): its `date()` is the day in that calendar, and written as RFC 3339 it
    /// is the time as the provider writes it.
    pub fn local(self, t: SystemTime) -> time::OffsetDateTime {
        let utc = time::OffsetDateTime::from(t);
        let offset = jiff::Timestamp::try_from(t)
            .ok()
            .map(|ts| self.tz().to_offset(ts).seconds())
            .and_then(|s| time::UtcOffset::from_whole_seconds(s).ok())
            .unwrap_or(time::UtcOffset::UTC);
        utc.to_offset(offset)
    }
}

/// January 1970, for a clock no calendar can place.
const EPOCH_MONTH: Month = Month {
    start: SystemTime::UNIX_EPOCH,
    end: SystemTime::UNIX_EPOCH,
};

impl Month {
    /// Whether `t` is in the month: `start <= t < end`.
    pub fn contains(&self, t: SystemTime) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether something due at `t` falls due before the month ends (strictly before the next
    /// month's start: a renewal at 00:00 on the 1st opens next month's bill).
    pub fn due_by_end(&self, t: SystemTime) -> bool {
        t < self.end
    }

    /// The month's length (28 to 31 days, an hour more or less across a change of summer time).
    pub fn length(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }

    /// The time from the start to `as_of`, `as_of` clamped to the month.
    pub fn elapsed(&self, as_of: SystemTime) -> Duration {
        as_of
            .clamp(self.start, self.end)
            .duration_since(self.start)
            .unwrap_or_default()
    }

    /// The month before, in the same calendar.
    pub fn previous(&self, calendar: Calendar) -> Month {
        calendar.month_of(self.start - Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap();
        t.into()
    }

    #[test]
    fn paris_months_start_at_midnight_in_winter_and_summer_time() {
        // December: Paris is UTC+1, the month starts at 23:00 UTC on 30 November.
        let dec = Calendar::Paris.month_of(at("2026-12-07T10:00:00Z"));
        assert_eq!(dec.start, at("2026-12-01T00:00:00+01:00"));
        assert_eq!(dec.end, at("2027-01-01T00:00:00+01:00"));
        // A bill dated 00:30 Paris time on 1 December is December's, though it is still
        // November in UTC.
        assert!(dec.contains(at("2026-12-01T00:30:00+01:00")));
        assert_eq!(
            Calendar::Utc
                .month_of(at("2026-12-01T00:30:00+01:00"))
                .start,
            at("2026-11-01T00:00:00Z")
        );
        // July: UTC+2.
        let jul = Calendar::Paris.month_of(at("2026-07-15T12:00:00Z"));
        assert_eq!(jul.start, at("2026-07-01T00:00:00+02:00"));
        // March loses an hour (summer time from the last Sunday), October gains one.
        let mar = Calendar::Paris.month_of(at("2026-03-10T00:00:00Z"));
        assert_eq!(mar.length(), Duration::from_secs(31 * 86_400 - 3600));
        let oct = Calendar::Paris.month_of(at("2026-10-10T00:00:00Z"));
        assert_eq!(oct.length(), Duration::from_secs(31 * 86_400 + 3600));
    }

    #[test]
    fn the_boundary_belongs_to_the_month_it_starts() {
        let dec = Calendar::Paris.month_of(at("2026-12-07T10:00:00Z"));
        // A renewal on 1 January 00:00 Paris time is next month's.
        assert!(!dec.due_by_end(at("2027-01-01T00:00:00+01:00")));
        assert!(dec.due_by_end(at("2026-12-31T23:59:59+01:00")));
        assert!(!dec.contains(at("2027-01-01T00:00:00+01:00")));
        let utc = Calendar::Utc.month_of(at("2026-12-07T10:00:00Z"));
        assert!(!utc.due_by_end(at("2027-01-01T00:00:00Z")));
        assert!(utc.due_by_end(at("2026-12-31T23:59:59Z")));
        assert!(utc.contains(at("2026-12-01T00:00:00Z")));
        // The last second of a month and the first of the next.
        assert_eq!(
            Calendar::Utc.month_of(at("2026-11-30T23:59:59Z")).start,
            at("2026-11-01T00:00:00Z")
        );
        assert_eq!(
            Calendar::Utc.month_of(at("2026-12-01T00:00:00Z")).start,
            at("2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn february_has_its_days_and_pacific_time_its_offset() {
        let leap = Calendar::Utc.month(2028, 2).unwrap();
        assert_eq!(leap.length(), Duration::from_secs(29 * 86_400));
        let common = Calendar::Utc.month(2027, 2).unwrap();
        assert_eq!(common.length(), Duration::from_secs(28 * 86_400));
        let dec = Calendar::Pacific.month_of(at("2026-12-01T07:59:59Z"));
        assert_eq!(dec.start, at("2026-11-01T00:00:00-07:00"));
        assert_eq!(dec.end, at("2026-12-01T00:00:00-08:00"));
        assert_eq!(
            dec.previous(Calendar::Pacific).start,
            at("2026-10-01T00:00:00-07:00")
        );
        assert_eq!(Calendar::Utc.month(2026, 13), None, "month 13 is no month");
    }

    #[test]
    fn a_moment_is_placed_at_the_calendar_s_offset() {
        // 23:30 UTC on 30 November is 00:30 on 1 December in Paris (winter, +01:00).
        let t = Calendar::Paris.local(at("2026-11-30T23:30:00Z"));
        assert_eq!(t.offset().whole_seconds(), 3600);
        assert_eq!(t.date().to_string(), "2026-12-01");
        // 22:30 UTC on 30 June is 00:30 on 1 July (summer, +02:00).
        let t = Calendar::Paris.local(at("2026-06-30T22:30:00Z"));
        assert_eq!(t.offset().whole_seconds(), 7200);
        assert_eq!(t.date().to_string(), "2026-07-01");
        assert_eq!(
            Calendar::Utc
                .local(at("2026-06-30T22:30:00Z"))
                .date()
                .to_string(),
            "2026-06-30"
        );
    }
}
