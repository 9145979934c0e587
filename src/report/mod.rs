//! `report`: the month at a glance, collected exactly like `collect` (`run` hands over the
//! outcomes) and shown as a table for people ([`table()`]) or as JSON for scripts ([`json()`],
//! `schema_version` 1, described by `docs/report.schema.json`).
//!
//! [`month`] is the one adapter from the outcome model: the table and the JSON read only the
//! [`Month`] it returns, so a change to the model (an optional forecast, accounts per
//! provider) changes this function, not the renderers.
//!
//! Money is rounded to two decimals here, once, and the totals are the sums of the rounded
//! amounts: the table's and the JSON's figures are the same and add up. Unknown is `None`
//! (a dash, `null`), never 0.

mod human;
mod json;
mod table;

use std::collections::BTreeMap;
use std::time::SystemTime;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::cost::Target;
use crate::cost::Unit;
use crate::outcome::{ProviderOutcome, State};

pub(crate) use json::render as json;
pub(crate) use table::render as table;

/// The JSON's `schema_version`: raised when a field is removed, renamed or changes meaning
/// or type; adding a field keeps it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Share of a budget or a limit from which a figure is near it (the `BudgetWarning` alert's
/// threshold).
pub(crate) const NEAR: f64 = 0.8;

/// The month so far, ready to show.
#[derive(Debug)]
pub(crate) struct Month {
    /// When the run collected.
    pub now: SystemTime,
    /// The reporting currency.
    pub currency: String,
    /// One line per provider, by forecast (highest first), then failed, then not configured.
    pub lines: Vec<Line>,
    /// The sums over the providers collected.
    pub total: Total,
}

/// One provider.
#[derive(Debug)]
pub(crate) struct Line {
    /// Its name.
    pub provider: String,
    /// The named account, for a provider with several.
    pub account: Option<String>,
    /// Collected, failed or not configured.
    pub status: Status,
    /// Month-to-date spend, rounded.
    pub spent: Option<Decimal>,
    /// Month-end forecast, rounded.
    pub forecast: Option<Decimal>,
    /// Its budget, rounded.
    pub budget: Option<Decimal>,
    /// The usage closest to its limit.
    pub closest: Option<Closest>,
    /// The next renewal from today on.
    pub renewal: Option<Next>,
    /// How far its data reaches.
    pub data_as_of: Option<SystemTime>,
    /// What else to know about its figures (its API is not collected, only its `[[fixed]]`
    /// entries are).
    pub note: Option<String>,
}

/// What happened to a provider.
#[derive(Debug)]
pub(crate) enum Status {
    /// Collected.
    Ok,
    /// At least one source failed.
    Failed(Vec<Failure>),
    /// Known, not collected: why.
    NotConfigured(String),
}

/// One failed source.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The `reason` label.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

/// The usage closest to its limit.
#[derive(Debug)]
pub(crate) struct Closest {
    /// The resource.
    pub resource: String,
    /// Its base unit.
    pub unit: Unit,
    /// Used this month (summed over its breakdown).
    pub used: f64,
    /// Its limit, above 0.
    pub limit: f64,
}

impl Closest {
    /// Used ÷ limit.
    pub(crate) fn share(&self) -> f64 {
        self.used / self.limit
    }
}

/// A provider's next renewal.
#[derive(Debug)]
pub(crate) struct Next {
    /// The service or subscription.
    pub name: String,
    /// When.
    pub at: SystemTime,
    /// Its price, rounded.
    pub amount: Decimal,
}

/// Sums over the providers collected; a provider that failed or is not configured is left
/// out (its figures are unknown, not 0).
#[derive(Debug)]
pub(crate) struct Total {
    /// Month to date.
    pub spent: Decimal,
    /// Forecast.
    pub forecast: Decimal,
    /// The budgets of the providers collected, if any has one.
    pub budget: Option<Decimal>,
    /// Providers collected.
    pub counted: usize,
    /// Providers that failed.
    pub failed: Vec<String>,
}

impl Line {
    /// As a person reads it: `acme`, or `acme/client-a`.
    pub(crate) fn name(&self) -> String {
        match &self.account {
            None => self.provider.clone(),
            Some(a) => format!("{}/{a}", self.provider),
        }
    }

    /// Forecast ÷ budget, for a budget above 0.
    pub(crate) fn share(&self) -> Option<f64> {
        share(self.forecast?, self.budget?)
    }

    /// Whether the forecast (or the spend so far) is over the budget; a budget of 0 is over
    /// with any spend. `None` without a budget or figures.
    pub(crate) fn over_budget(&self) -> Option<bool> {
        over(self.spent, self.forecast, self.budget)
    }
}

impl Total {
    /// Forecast ÷ budget.
    pub(crate) fn share(&self) -> Option<f64> {
        share(self.forecast, self.budget?)
    }

    /// Whether the forecast is over the budgets.
    pub(crate) fn over_budget(&self) -> Option<bool> {
        over(Some(self.spent), Some(self.forecast), self.budget)
    }
}

fn share(amount: Decimal, budget: Decimal) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    if budget <= Decimal::ZERO {
        return None;
    }
    amount
        .checked_div(budget)?
        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .to_f64()
}

fn over(
    spent: Option<Decimal>,
    forecast: Option<Decimal>,
    budget: Option<Decimal>,
) -> Option<bool> {
    let budget = budget?;
    let figures = [spent, forecast];
    if figures.iter().all(Option::is_none) {
        return None;
    }
    Some(figures.iter().flatten().any(|a| *a > budget))
}

/// An amount as shown: two decimals, half away from zero.
fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The month from the run's outcomes. `why` says why a provider's API is not collected (for
/// one not configured, or collected from its `[[fixed]]` entries only).
pub(crate) fn month(
    outcomes: &[ProviderOutcome],
    why: impl Fn(&Target) -> Option<String>,
    currency: &str,
    now: SystemTime,
) -> Month {
    let today = time::OffsetDateTime::from(now)
        .date()
        .midnight()
        .assume_utc();
    let mut lines: Vec<Line> = outcomes
        .iter()
        .map(|o| line(o, why(&o.target), today.into()))
        .collect();
    lines.sort_by(|a, b| {
        let rank = |l: &Line| match l.status {
            Status::Ok => 0,
            Status::Failed(_) => 1,
            Status::NotConfigured(_) => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then(b.forecast.cmp(&a.forecast))
            .then(a.provider.cmp(&b.provider))
            .then(a.account.cmp(&b.account))
    });
    let mut total = Total {
        spent: Decimal::ZERO,
        forecast: Decimal::ZERO,
        budget: None,
        counted: 0,
        failed: Vec::new(),
    };
    for l in &lines {
        match l.status {
            Status::Ok => {
                total.counted += 1;
                let add = |sum: Decimal, v: Option<Decimal>| {
                    v.and_then(|v| sum.checked_add(v)).unwrap_or(sum)
                };
                total.spent = add(total.spent, l.spent);
                total.forecast = add(total.forecast, l.forecast);
                if let Some(b) = l.budget {
                    total.budget = Some(add(total.budget.unwrap_or_default(), Some(b)));
                }
            }
            Status::Failed(_) => total.failed.push(l.name()),
            Status::NotConfigured(_) => {}
        }
    }
    Month {
        now,
        currency: currency.to_owned(),
        lines,
        total,
    }
}

/// One provider's line: the only reader of the outcome model's fields.
fn line(o: &ProviderOutcome, why: Option<String>, today: SystemTime) -> Line {
    let mut l = Line {
        provider: o.target.provider.clone(),
        account: o.target.account.clone(),
        status: Status::Ok,
        spent: None,
        forecast: None,
        budget: o.budget.map(cents),
        closest: None,
        renewal: None,
        data_as_of: None,
        note: None,
    };
    match &o.state {
        State::Unconfigured => {
            l.status = Status::NotConfigured(why.unwrap_or_else(|| "no credentials".to_owned()));
        }
        State::Failed(errors) => {
            l.status = Status::Failed(
                errors
                    .iter()
                    .map(|e| Failure {
                        reason: e.reason.as_str(),
                        message: e.message.clone(),
                    })
                    .collect(),
            );
        }
        State::Collected(r) => {
            l.spent = r
                .spend
                .iter()
                .try_fold(Decimal::ZERO, |sum, (amount, _)| sum.checked_add(*amount))
                .map(cents);
            l.forecast = r.forecast.map(cents);
            l.data_as_of = r.data_as_of;
            l.closest = closest(&r.usage, &r.limits);
            l.renewal = r
                .renewals
                .iter()
                .filter(|n| n.at >= today)
                .min_by(|a, b| a.at.cmp(&b.at).then(a.name.cmp(&b.name)))
                .map(|n| Next {
                    name: n.name.clone(),
                    at: n.at,
                    amount: cents(n.price),
                });
            l.note = why.map(|w| format!("[[fixed]] entries only, API not collected ({w})"));
        }
    }
    l
}

/// The usage with the highest share of its limit: usage summed over its breakdown labels
/// per resource and unit, against a limit above 0 (as the `BudgetWarning` alert reads them).
fn closest(usage: &[crate::cost::Usage], limits: &[crate::cost::UsageLimit]) -> Option<Closest> {
    let mut used: BTreeMap<(&str, Unit), f64> = BTreeMap::new();
    for u in usage {
        *used.entry((u.resource.as_str(), u.unit)).or_default() += u.value;
    }
    let mut best: Option<Closest> = None;
    for l in limits
        .iter()
        .filter(|l| l.value > 0.0 && l.value.is_finite())
    {
        let Some(&value) = used.get(&(l.resource.as_str(), l.unit)) else {
            continue;
        };
        let candidate = Closest {
            resource: l.resource.clone(),
            unit: l.unit,
            used: value,
            limit: l.value,
        };
        let better = match &best {
            None => true,
            Some(b) => {
                candidate.share() > b.share()
                    || (candidate.share() == b.share() && candidate.resource < b.resource)
            }
        };
        if better && candidate.share().is_finite() {
            best = Some(candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cost::{Usage, UsageLimit};
    use crate::error::{CollectError, Reason};
    use crate::outcome::{RenewalReport, Report};

    pub(crate) fn at(y: i32, m: u8, d: u8) -> SystemTime {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
            .unwrap()
            .midnight()
            .assume_utc()
            .into()
    }

    pub(crate) fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn usage(resource: &str, value: f64) -> Usage {
        Usage {
            resource: resource.into(),
            unit: Unit::Requests,
            value,
            labels: vec![],
        }
    }

    fn limit(resource: &str, value: f64) -> UsageLimit {
        UsageLimit {
            resource: resource.into(),
            unit: Unit::Requests,
            value,
        }
    }

    pub(crate) fn report(spend: &[&str], forecast: &str) -> Report {
        Report {
            usage: vec![],
            limits: vec![],
            spend: spend.iter().map(|s| (dec(s), vec![])).collect(),
            metered: None,
            effective_spend: vec![],
            source: None,
            forecast: Some(dec(forecast)),
            renewals: vec![],
            resets: vec![],
            plan: None,
            data_as_of: None,
            price_table: None,
            skipped: Default::default(),
        }
    }

    pub(crate) fn outcome(name: &str, state: State, budget: Option<&str>) -> ProviderOutcome {
        ProviderOutcome {
            target: name.into(),
            state,
            budget: budget.map(dec),
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn lines_are_sorted_by_forecast_then_failed_then_not_configured() {
        let outcomes = vec![
            outcome(
                "a-small",
                State::Collected(Box::new(report(&["1"], "1"))),
                None,
            ),
            outcome("b-off", State::Unconfigured, Some("15")),
            outcome(
                "c-failed",
                State::Failed(vec![CollectError::new(Reason::Http5xx, "500 from x")]),
                Some("200"),
            ),
            outcome(
                "d-big",
                State::Collected(Box::new(report(&["60.004", "60.001"], "120.005"))),
                Some("100"),
            ),
        ];
        let m = month(&outcomes, |_| None, "EUR", at(2026, 12, 7));
        let names: Vec<&str> = m.lines.iter().map(|l| l.provider.as_str()).collect();
        assert_eq!(names, ["d-big", "a-small", "c-failed", "b-off"]);
        let big = &m.lines[0];
        // Rounded once, half away from zero; the spend adds up its series first.
        assert_eq!(big.spent, Some(dec("120.01")));
        assert_eq!(big.forecast, Some(dec("120.01")));
        assert_eq!(big.share(), Some(1.2001));
        assert_eq!(big.over_budget(), Some(true));
        // Unknown stays unknown.
        assert_eq!(m.lines[2].spent, None);
        assert_eq!(m.lines[2].over_budget(), None);
        assert!(matches!(&m.lines[3].status, Status::NotConfigured(w) if w == "no credentials"));
        // The total counts the providers collected: their budgets only.
        assert_eq!(m.total.counted, 2);
        assert_eq!(m.total.forecast, dec("121.01"));
        assert_eq!(m.total.budget, Some(dec("100")));
        assert_eq!(m.total.failed, ["c-failed"]);
    }

    #[test]
    fn a_budget_of_zero_is_over_with_any_spend_and_has_no_share() {
        let l = line(
            &outcome(
                "p",
                State::Collected(Box::new(report(&["0.5"], "2"))),
                Some("0"),
            ),
            None,
            at(2026, 12, 1),
        );
        assert_eq!(l.over_budget(), Some(true));
        assert_eq!(l.share(), None);
        let l = line(
            &outcome(
                "p",
                State::Collected(Box::new(report(&["0"], "0"))),
                Some("0"),
            ),
            None,
            at(2026, 12, 1),
        );
        assert_eq!(l.over_budget(), Some(false));
    }

    #[test]
    fn the_closest_usage_sums_its_breakdown_and_skips_limits_of_zero() {
        let mut r = report(&[], "0");
        r.usage = vec![
            usage("invocations", 300.0),
            usage("invocations", 520.0),
            usage("edge", 10.0),
            usage("builds", 5.0),
        ];
        r.limits = vec![
            limit("invocations", 1000.0),
            limit("edge", 100.0),
            limit("builds", 0.0),
        ];
        let c = closest(&r.usage, &r.limits).unwrap();
        assert_eq!(
            (c.resource.as_str(), c.used, c.limit),
            ("invocations", 820.0, 1000.0)
        );
        // A limit without usage says nothing; no limit, no closest.
        assert!(closest(&[], &r.limits).is_none());
        assert!(closest(&r.usage, &[]).is_none());
    }

    #[test]
    fn the_next_renewal_is_the_earliest_from_today_on() {
        let mut r = report(&["1"], "1");
        let renewal = |name: &str, at: SystemTime| RenewalReport {
            name: name.into(),
            at,
            price: dec("9.999"),
            current_price: None,
            automatic: None,
        };
        r.renewals = vec![
            renewal("later", at(2027, 1, 20)),
            renewal("past", at(2026, 12, 1)),
            renewal("today", at(2026, 12, 7)),
        ];
        let l = line(
            &outcome("p", State::Collected(Box::new(r)), None),
            Some("no credentials".into()),
            at(2026, 12, 7),
        );
        let n = l.renewal.unwrap();
        assert_eq!((n.name.as_str(), n.amount), ("today", dec("10.00")));
        assert!(l.note.unwrap().contains("[[fixed]] entries only"));
    }
}
