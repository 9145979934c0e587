//! The month as JSON for scripts: `schema_version` 1, described by `docs/report.schema.json`.
//!
//! The same figures as the table. Money is a string with two decimals (`"120.00"`), exact, as
//! Prometheus' HTTP API gives sample values; usage and shares are JSON numbers (usage in the
//! metrics' base units, shares as ratios: 0.81 is 81 %). Every key is always present; an
//! unknown figure is `null`, never 0.

use std::time::SystemTime;

use rust_decimal::Decimal;
use serde::Serialize;

use super::{Line, Month, SCHEMA_VERSION, Status};

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    generated_at: String,
    month: String,
    currency: &'a str,
    providers: Vec<Provider<'a>>,
    total: Total,
}

#[derive(Serialize)]
struct Provider<'a> {
    provider: &'a str,
    account: Option<&'a str>,
    status: &'static str,
    errors: Vec<Error<'a>>,
    not_configured: Option<&'a str>,
    note: Option<&'a str>,
    month_to_date: Option<String>,
    forecast: Option<String>,
    budget: Option<String>,
    forecast_share_of_budget: Option<f64>,
    over_budget: Option<bool>,
    closest_to_limit: Option<Limit<'a>>,
    next_renewal: Option<Renewal<'a>>,
    data_as_of: Option<String>,
}

#[derive(Serialize)]
struct Error<'a> {
    reason: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct Limit<'a> {
    resource: &'a str,
    unit: &'static str,
    used: f64,
    limit: f64,
    share: f64,
}

#[derive(Serialize)]
struct Renewal<'a> {
    name: &'a str,
    date: String,
    amount: String,
}

#[derive(Serialize)]
struct Total {
    month_to_date: String,
    forecast: String,
    budget: Option<String>,
    forecast_share_of_budget: Option<f64>,
    over_budget: Option<bool>,
    providers_counted: usize,
    providers_failed: usize,
}

/// Two decimals, as a string.
fn money(d: Decimal) -> String {
    format!("{d:.2}")
}

/// RFC 3339 in UTC, whole seconds.
fn timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A ratio with at most four decimals.
fn ratio(r: f64) -> f64 {
    (r * 10_000.0).round() / 10_000.0
}

fn provider(l: &Line) -> Provider<'_> {
    let (status, errors, not_configured) = match &l.status {
        Status::Ok => ("ok", Vec::new(), None),
        Status::Failed(errs) => (
            "failed",
            errs.iter()
                .map(|e| Error {
                    reason: e.reason,
                    message: &e.message,
                })
                .collect(),
            None,
        ),
        Status::NotConfigured(why) => ("not_configured", Vec::new(), Some(why.as_str())),
    };
    Provider {
        provider: &l.provider,
        account: l.account.as_deref(),
        status,
        errors,
        not_configured,
        note: l.note.as_deref(),
        month_to_date: l.spent.map(money),
        forecast: l.forecast.map(money),
        budget: l.budget.map(money),
        forecast_share_of_budget: l.share(),
        over_budget: l.over_budget(),
        closest_to_limit: l.closest.as_ref().map(|c| Limit {
            resource: &c.resource,
            unit: c.unit.as_str(),
            used: c.used,
            limit: c.limit,
            share: ratio(c.share()),
        }),
        next_renewal: l.renewal.as_ref().map(|n| Renewal {
            name: &n.name,
            date: super::human::date(n.at),
            amount: money(n.amount),
        }),
        data_as_of: l.data_as_of.map(timestamp),
    }
}

/// The document, pretty-printed, ending with a line break.
pub(crate) fn render(m: &Month) -> String {
    let now = time::OffsetDateTime::from(m.now);
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        generated_at: timestamp(m.now),
        month: format!("{:04}-{:02}", now.year(), u8::from(now.month())),
        currency: &m.currency,
        providers: m.lines.iter().map(provider).collect(),
        total: Total {
            month_to_date: money(m.total.spent),
            forecast: money(m.total.forecast),
            budget: m.total.budget.map(money),
            forecast_share_of_budget: m.total.share(),
            over_budget: m.total.over_budget(),
            providers_counted: m.total.counted,
            providers_failed: m.total.failed.len(),
        },
    };
    // Nothing in the document can fail to serialize (no map with non-string keys); were it
    // to, the error says so rather than printing half a document.
    let mut text = serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot write the report: {e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::super::month;
    use super::super::tests::{at, outcome, report};
    use super::*;
    use crate::error::{CollectError, Reason};
    use crate::outcome::State;

    #[test]
    fn money_is_a_string_with_two_decimals_and_unknown_is_null() {
        let outcomes = vec![
            outcome(
                "over",
                State::Collected(Box::new(report(&["120"], "120"))),
                Some("100"),
            ),
            outcome(
                "broken",
                State::Failed(vec![CollectError::new(Reason::Auth, "401")]),
                Some("10"),
            ),
        ];
        let m = month(&outcomes, |_| None, "EUR", at(2026, 12, 7));
        let v: serde_json::Value = serde_json::from_str(&render(&m)).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["month"], "2026-12");
        assert_eq!(v["generated_at"], "2026-12-07T00:00:00Z");
        let over = &v["providers"][0];
        assert_eq!(over["month_to_date"], "120.00");
        assert_eq!(over["forecast_share_of_budget"], 1.2);
        assert_eq!(over["over_budget"], true);
        assert!(over["closest_to_limit"].is_null());
        let broken = &v["providers"][1];
        assert_eq!(broken["status"], "failed");
        assert_eq!(broken["errors"][0]["reason"], "auth");
        assert!(broken["forecast"].is_null() && broken["month_to_date"].is_null());
        assert_eq!(broken["budget"], "10.00");
        assert_eq!(v["total"]["providers_failed"], 1);
        assert_eq!(v["total"]["budget"], "100.00");
    }
}
