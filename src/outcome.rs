//! The run's outcome model, pure: what happened to each provider, its figures checked and
//! converted to the reporting currency, and the month-end forecast.
//!
//! No I/O, no clock of its own, no task or signal: `run` hands it the collectors' results and
//! the run's time, and `metrics` renders what it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;

use crate::cost::{Collection, Labels, Spend, SpendKind, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::Fx;

/// One source's result: the provider it belongs to, the collection or its error, the time it
/// took.
pub(crate) type SourceResult = (String, Result<Collection, CollectError>, Duration);

/// What happened to one provider this run.
#[derive(Debug)]
pub(crate) struct ProviderOutcome {
    /// The provider (grouping label).
    pub provider: String,
    /// Collected, failed, or not configured.
    pub state: State,
    /// Its budget, in the reporting currency.
    pub budget: Option<Decimal>,
    /// How long its slowest source took.
    pub duration: Duration,
}

/// The result for a provider.
#[derive(Debug)]
pub(crate) enum State {
    /// Every source succeeded.
    Collected(Report),
    /// At least one source failed; the errors, one per failed source.
    Failed(Vec<CollectError>),
    /// Known, but without credentials.
    Unconfigured,
}

/// A provider's figures, ready to render.
#[derive(Debug)]
pub(crate) struct Report {
    /// Usage.
    pub usage: Vec<Usage>,
    /// Limits.
    pub limits: Vec<UsageLimit>,
    /// Spend in the reporting currency, with breakdown labels.
    pub spend: Vec<(Decimal, Labels)>,
    /// Effective (amortized) spend in the reporting currency, where reported apart.
    pub effective_spend: Vec<(Decimal, Labels)>,
    /// Which source answered.
    pub source: Option<&'static str>,
    /// Month-end forecast, when it can be computed.
    pub forecast: Option<Decimal>,
    /// Renewals, their prices in the reporting currency.
    pub renewals: Vec<RenewalReport>,
    /// When resources' usage resets (quota windows that are not the calendar month).
    pub resets: Vec<(String, SystemTime)>,
    /// The plan or tier.
    pub plan: Option<String>,
    /// End of the provider's data window.
    pub data_as_of: Option<SystemTime>,
}

/// A renewal ready to render: prices converted to the reporting currency.
#[derive(Debug)]
pub(crate) struct RenewalReport {
    /// The service.
    pub name: String,
    /// When it renews.
    pub at: SystemTime,
    /// Its renewal price.
    pub price: Decimal,
    /// The current period's price, where known.
    pub current_price: Option<Decimal>,
    /// Whether it renews by itself, where known.
    pub automatic: Option<bool>,
}

/// Groups source results by provider, validates the figures, converts money and forecasts.
pub(crate) fn assess(
    results: Vec<SourceResult>,
    unconfigured: &BTreeSet<String>,
    budget: impl Fn(&str) -> Option<Decimal>,
    fx: &Fx,
    now: SystemTime,
) -> Vec<ProviderOutcome> {
    let mut by_provider: BTreeMap<String, (Vec<Collection>, Vec<CollectError>, Duration)> =
        BTreeMap::new();
    for (provider, result, took) in results {
        let entry = by_provider.entry(provider).or_default();
        entry.2 = entry.2.max(took);
        match result {
            Ok(c) => entry.0.push(c),
            Err(e) => entry.1.push(e),
        }
    }
    let mut out: Vec<ProviderOutcome> = by_provider
        .into_iter()
        .map(|(provider, (collections, errors, duration))| {
            let state = if errors.is_empty() {
                let mut merged = Collection::default();
                for c in collections {
                    merged.merge(c);
                }
                match report(merged, fx, now) {
                    Ok(r) => State::Collected(r),
                    Err(e) => State::Failed(vec![e]),
                }
            } else {
                State::Failed(errors)
            };
            ProviderOutcome {
                budget: budget(&provider),
                provider,
                state,
                duration,
            }
        })
        .collect();
    for p in unconfigured {
        out.push(ProviderOutcome {
            provider: p.clone(),
            state: State::Unconfigured,
            budget: budget(p),
            duration: Duration::ZERO,
        });
    }
    out.sort_by(|a, b| a.provider.cmp(&b.provider));
    out
}

/// Checks every figure and converts spend to the reporting currency. A bad figure fails the
/// provider (`decode`), a missing rate too (`config`): nothing is pushed as 0 or NaN.
fn report(c: Collection, fx: &Fx, now: SystemTime) -> Result<Report, CollectError> {
    for u in &c.usage {
        if !u.value.is_finite() || u.value < 0.0 {
            return Err(CollectError::new(
                Reason::Decode,
                format!("usage {} is {}", u.resource, u.value),
            ));
        }
    }
    for l in &c.limits {
        if !l.value.is_finite() || l.value < 0.0 {
            return Err(CollectError::new(
                Reason::Decode,
                format!("limit {} is {}", l.resource, l.value),
            ));
        }
    }
    // Every money figure is checked and converted the same way, billed or effective.
    let convert = |s: &Spend| -> Result<Decimal, CollectError> {
        if s.money.amount.is_sign_negative() && !s.money.amount.is_zero() {
            return Err(CollectError::new(
                Reason::Decode,
                format!(
                    "a spend of {} {} is negative",
                    s.money.amount, s.money.currency
                ),
            ));
        }
        fx.convert(s.money)
            .map_err(|e| CollectError::new(Reason::Config, e))
    };
    let mut spend = Vec::with_capacity(c.spend.len());
    // Known for the month (fixed amounts, what was billed, what is still due) and metered.
    let (mut known, mut metered, mut any_metered) = (Decimal::ZERO, Decimal::ZERO, false);
    for s in c.spend {
        let amount = convert(&s)?;
        match s.kind {
            SpendKind::Fixed | SpendKind::Billed => known += amount,
            SpendKind::Metered => {
                metered += amount;
                any_metered = true;
            }
        }
        spend.push((amount, s.labels));
    }
    for s in &c.due {
        known += convert(s)?;
    }
    let mut renewals = Vec::with_capacity(c.renewals.len());
    for r in c.renewals {
        let money = |m: crate::money::Money| {
            convert(&Spend {
                money: m,
                kind: SpendKind::Billed,
                labels: Vec::new(),
            })
        };
        renewals.push(RenewalReport {
            price: money(r.price)?,
            current_price: r.current_price.map(money).transpose()?,
            name: r.name,
            at: r.at,
            automatic: r.automatic,
        });
    }
    let effective_spend = c
        .effective_spend
        .into_iter()
        .map(|s| Ok((convert(&s)?, s.labels)))
        .collect::<Result<Vec<_>, CollectError>>()?;
    Ok(Report {
        usage: c.usage,
        limits: c.limits,
        spend,
        effective_spend,
        source: c.source,
        forecast: forecast(known, any_metered.then_some(metered), now),
        renewals,
        resets: c.resets,
        plan: c.plan,
        data_as_of: c.data_as_of,
    })
}

/// Month-end forecast: what is known for the month (fixed amounts, bills, renewals still due)
/// plus metered month-to-date × days in month / days elapsed (today counted). With metered
/// spend it exists from the 3rd day of the month on; without, it is exactly the known sum
/// every day.
pub(crate) fn forecast(
    fixed: Decimal,
    metered: Option<Decimal>,
    now: SystemTime,
) -> Option<Decimal> {
    let Some(metered) = metered else {
        return Some(fixed);
    };
    let (day, days) = day_of_month(now);
    if day < 3 {
        return None;
    }
    Some(fixed + metered * Decimal::from(days) / Decimal::from(day))
}

/// (day of month, days in month), in UTC.
pub(crate) fn day_of_month(now: SystemTime) -> (u8, u8) {
    let t = time::OffsetDateTime::from(now);
    (t.day(), t.month().length(t.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn at(y: i32, m: u8, d: u8) -> SystemTime {
        let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        date.with_hms(12, 0, 0).unwrap().assume_utc().into()
    }

    #[test]
    fn forecast_follows_the_design_rules() {
        let ten = Decimal::from(10);
        let fixed = Decimal::from_str("250").unwrap();
        // Fixed only: exactly the fixed amount, every day.
        assert_eq!(forecast(fixed, None, at(2026, 11, 1)), Some(fixed));
        // Metered: absent on days 1 and 2, run-rate from the 3rd.
        assert_eq!(forecast(fixed, Some(ten), at(2026, 11, 2)), None);
        assert_eq!(
            forecast(fixed, Some(ten), at(2026, 11, 3)),
            Some(fixed + Decimal::from(100))
        );
        // February of a leap year has 29 days.
        assert_eq!(
            forecast(Decimal::ZERO, Some(ten), at(2028, 2, 29)),
            Some(ten)
        );
    }
}
