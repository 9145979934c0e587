//! The run's outcome model, pure: what happened to each provider, its figures checked and
//! converted to the reporting currency, and the month-end forecast.
//!
//! No I/O, no clock of its own, no task or signal: `run` hands it the collectors' results and
//! the run's time, and `metrics` renders what it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;

use crate::calendar::{Calendar, Month};
use crate::cost::{Collection, Labels, Skipped, Spend, SpendKind, Target, Usage, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::Fx;

/// One source's result: the provider (and account) it belongs to, the collection or its error, the time it
/// took.
pub(crate) type SourceResult = (Target, Result<Collection, CollectError>, Duration);

/// What happened to one provider this run.
#[derive(Debug)]
pub(crate) struct ProviderOutcome {
    /// The provider and named account (the grouping labels).
    pub target: Target,
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
    Collected(Box<Report>),
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
    /// The metered part of the spend (what grows with usage), in the reporting currency;
    /// `None` when no source reported money at all (a usage-only API): unknown, not 0.
    pub metered: Option<Decimal>,
    /// Effective (amortized) spend in the reporting currency, where reported apart.
    pub effective_spend: Vec<(Decimal, Labels)>,
    /// Which source answered.
    pub source: Option<&'static str>,
    /// Month-end forecast, for a provider that reports money (absent, never 0, for one that
    /// reports usage only).
    pub forecast: Option<Decimal>,
    /// Renewals, their prices in the reporting currency.
    pub renewals: Vec<RenewalReport>,
    /// When resources' usage resets (quota windows that are not the calendar month).
    pub resets: Vec<(String, SystemTime)>,
    /// The plan or tier.
    pub plan: Option<String>,
    /// End of the provider's data window.
    pub data_as_of: Option<SystemTime>,
    /// The price table estimates came from: source and how recent.
    pub price_table: Option<(&'static str, SystemTime)>,
    /// Records left out of the figures, by reason.
    pub skipped: Skipped,
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
    unconfigured: &BTreeSet<Target>,
    budget: impl Fn(&Target) -> Option<Decimal>,
    fx: &Fx,
    now: SystemTime,
) -> Vec<ProviderOutcome> {
    let mut by_provider: BTreeMap<Target, (Vec<Collection>, Vec<CollectError>, Duration)> =
        BTreeMap::new();
    for (target, result, took) in results {
        let entry = by_provider.entry(target).or_default();
        entry.2 = entry.2.max(took);
        match result {
            Ok(c) => entry.0.push(c),
            Err(e) => entry.1.push(e),
        }
    }
    let mut out: Vec<ProviderOutcome> = by_provider
        .into_iter()
        .map(|(target, (collections, errors, duration))| {
            let state = if errors.is_empty() {
                match report(collections, fx, now) {
                    Ok(r) => State::Collected(Box::new(r)),
                    Err(e) => State::Failed(vec![e]),
                }
            } else {
                State::Failed(errors)
            };
            ProviderOutcome {
                budget: budget(&target),
                target,
                state,
                duration,
            }
        })
        .collect();
    for p in unconfigured {
        out.push(ProviderOutcome {
            target: p.clone(),
            state: State::Unconfigured,
            budget: budget(p),
            duration: Duration::ZERO,
        });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

/// Checks every figure and converts spend to the reporting currency. A bad figure fails the
/// provider (`decode`), a missing rate too (`config`): nothing is pushed as 0 or NaN.
///
/// The forecast is summed source by source, each metered part extrapolated over the time its
/// own data covers; then the sources are merged.
fn report(collections: Vec<Collection>, fx: &Fx, now: SystemTime) -> Result<Report, CollectError> {
    let mut forecast = Decimal::ZERO;
    let mut c = Collection::default();
    for part in collections {
        forecast = forecast
            .checked_add(source_forecast(&part, fx, now)?)
            .ok_or_else(too_large)?;
        c.merge(part);
    }
    let has_money = !c.spend.is_empty() || !c.due.is_empty() || !c.credits.is_empty();
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
        fx.convert(s.money).map_err(convert_error)
    };
    let mut spend = Vec::with_capacity(c.spend.len());
    let mut metered = Decimal::ZERO;
    for s in c.spend {
        let amount = convert(&s)?;
        if matches!(s.kind, SpendKind::Metered | SpendKind::Overage(_)) {
            metered = metered.checked_add(amount).ok_or_else(too_large)?;
        }
        spend.push((amount, s.labels));
    }
    let mut renewals = Vec::with_capacity(c.renewals.len());
    for r in distinct_names(c.renewals) {
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
        metered: (!spend.is_empty()).then_some(metered),
        spend,
        effective_spend,
        source: c.source,
        forecast: has_money.then_some(forecast),
        renewals,
        resets: c.resets,
        plan: c.plan,
        data_as_of: c.data_as_of,
        price_table: c.price_table,
        skipped: c.skipped,
    })
}

/// Renewals with names of their own: each renewal is its own series, keyed by `name`, so
/// two that share a name (two zones on "Pro Plan", two servers called alike) are told apart
/// by their id, `name (id)`, or where a provider gives none by their order of date,
/// `name (#2)`. Never one series for both, whose timestamps and flags would add up.
fn distinct_names(mut renewals: Vec<crate::cost::Renewal>) -> Vec<crate::cost::Renewal> {
    renewals.sort_by(|a, b| a.name.cmp(&b.name).then(a.at.cmp(&b.at)));
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in &renewals {
        *count.entry(r.name.clone()).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut taken: BTreeSet<String> = renewals
        .iter()
        .filter(|r| count.get(&r.name) == Some(&1))
        .map(|r| r.name.clone())
        .collect();
    for r in &mut renewals {
        if count.get(&r.name).copied().unwrap_or(0) < 2 {
            continue;
        }
        let n = seen.entry(r.name.clone()).or_default();
        *n += 1;
        let by_id =
            r.id.as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| format!("{} ({id})", r.name));
        let mut name = match by_id {
            Some(candidate) if !taken.contains(&candidate) => candidate,
            _ => format!("{} (#{n})", r.name),
        };
        while taken.contains(&name) {
            name.push('\'');
        }
        taken.insert(name.clone());
        r.name = name;
    }
    renewals
}

/// One source's month-end forecast, in the reporting currency: what is known for the month
/// (fixed amounts, bills, amounts still due) plus its metered spend extrapolated by
/// [`extrapolate`] over the time its data covers (`data_as_of`, the run's time when absent) in
/// its own billing month, and usage charged beyond an allowance at the usage projected to the
/// month's end ([`project`]).
fn source_forecast(c: &Collection, fx: &Fx, now: SystemTime) -> Result<Decimal, CollectError> {
    let convert = |m: crate::money::Money| fx.convert(m).map_err(convert_error);
    let month = c.month.unwrap_or_else(|| Calendar::Utc.month_of(now));
    let as_of = c.data_as_of.unwrap_or(now);
    let (mut known, mut metered) = (Decimal::ZERO, Decimal::ZERO);
    let add = |acc: &mut Decimal, v: Decimal| -> Result<(), CollectError> {
        *acc = acc.checked_add(v).ok_or_else(too_large)?;
        Ok(())
    };
    for s in &c.spend {
        match s.kind {
            SpendKind::Fixed | SpendKind::Billed => add(&mut known, convert(s.money)?)?,
            SpendKind::Metered => add(&mut metered, convert(s.money)?)?,
            SpendKind::Overage(a) => {
                let amount = project(a.used, &month, as_of, now)
                    .and_then(|used| a.charge(used))
                    .ok_or_else(too_large)?;
                add(
                    &mut known,
                    convert(crate::money::Money {
                        amount,
                        currency: s.money.currency,
                    })?,
                )?;
            }
        }
    }
    for s in &c.due {
        add(&mut known, convert(s.money)?)?;
    }
    let mut credits = Vec::with_capacity(c.credits.len());
    for k in &c.credits {
        credits.push(Credit {
            covered: convert(k.covered)?,
            applied: convert(k.applied)?,
            total: convert(k.total)?,
        });
    }
    extrapolate(metered, &credits, &month, as_of, now)
        .and_then(|m| known.checked_add(m))
        .ok_or_else(too_large)
}

/// A missing rate is `config`; an amount too large to convert is `decode`.
fn convert_error(e: crate::money::ConvertError) -> CollectError {
    match e {
        crate::money::ConvertError::NoRate(m) => CollectError::new(Reason::Config, m),
        crate::money::ConvertError::Overflow(m) => CollectError::new(Reason::Decode, m),
    }
}

/// A `decode` error for sums no decimal can hold: the provider fails, nothing is pushed as 0.
fn too_large() -> CollectError {
    CollectError::new(
        Reason::Decode,
        "the month's amounts are too large to add up (beyond 7.9e28)",
    )
}

/// Below this much data in the month, metered spend is not extrapolated: the forecast uses
/// the month-to-date amount as a floor.
const MIN_ELAPSED: Duration = Duration::from_secs(48 * 3600);

/// A credit against metered spend, in the reporting currency ([`crate::cost::Credit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Credit {
    /// Month-to-date spend of what it covers, before it.
    pub covered: Decimal,
    /// Deducted so far.
    pub applied: Decimal,
    /// For the whole month.
    pub total: Decimal,
}

/// The metered part of a forecast: month-to-date `metered` spend (net of the `credits`
/// applied) × f, where f = the month's length ÷ the time elapsed from its start to `as_of`
/// (fractional; `as_of` is clamped to the month so far, [`growth`]). Credits are not
/// extrapolated: the spend before them is, and each credit is deducted once, up to its total
/// and to the extrapolated spend it covers: `(metered + Σ applied) × f − Σ min(total, covered
/// × f)`, at least 0. With under 48 hours of data the month-to-date amount is the forecast, a
/// floor rather than a guess from a few hours. `None` when a step cannot be represented.
pub(crate) fn extrapolate(
    metered: Decimal,
    credits: &[Credit],
    month: &Month,
    as_of: SystemTime,
    now: SystemTime,
) -> Option<Decimal> {
    let Some((length, elapsed)) = growth(month, as_of, now) else {
        return Some(metered);
    };
    let f = |d: Decimal| d.checked_mul(length)?.checked_div(elapsed);
    let mut gross = metered;
    let mut deducted = Decimal::ZERO;
    for c in credits {
        gross = gross.checked_add(c.applied)?;
        deducted = deducted.checked_add(c.total.min(f(c.covered)?))?;
    }
    Some(f(gross)?.checked_sub(deducted)?.max(Decimal::ZERO))
}

/// Usage so far projected to the month's end at the same rate (× f, as [`extrapolate`]); the
/// usage itself with under 48 hours of data. `None` when it cannot be represented.
pub(crate) fn project(
    used: Decimal,
    month: &Month,
    as_of: SystemTime,
    now: SystemTime,
) -> Option<Decimal> {
    match growth(month, as_of, now) {
        None => Some(used),
        Some((length, elapsed)) => used.checked_mul(length)?.checked_div(elapsed),
    }
}

/// (the month's length, the time its data covers), in seconds, with `as_of` clamped between
/// the month's start and `now`; `None` under 48 hours of data (no extrapolation).
fn growth(month: &Month, as_of: SystemTime, now: SystemTime) -> Option<(Decimal, Decimal)> {
    let elapsed = month.elapsed(as_of.min(now));
    if elapsed < MIN_ELAPSED {
        return None;
    }
    Some((
        Decimal::from(month.length().as_secs()),
        Decimal::from(elapsed.as_secs()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};

    fn at(y: i32, m: u8, d: u8, h: u8, min: u8) -> SystemTime {
        let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        date.with_hms(h, min, 0).unwrap().assume_utc().into()
    }

    /// [`extrapolate`] in the run's UTC month.
    fn ext(m: Decimal, c: &[Credit], as_of: SystemTime, now: SystemTime) -> Option<Decimal> {
        extrapolate(m, c, &Calendar::Utc.month_of(now), as_of, now)
    }

    fn usd(v: i64) -> Decimal {
        Decimal::from(v)
    }

    #[test]
    fn metered_spend_is_extrapolated_over_the_time_its_data_covers() {
        // The 10th of November at 06:17 UTC; the report ends with the 9th (a daily cost report
        // without today's bucket). 90 over 9 whole days of a 30-day month is 300; counting the
        // 10th as a whole day (90 × 30 / 10 = 270) was 10% low.
        let now = at(2026, 11, 10, 6, 17);
        let through_9th = at(2026, 11, 10, 0, 0);
        assert_eq!(ext(usd(90), &[], through_9th, now), Some(usd(300)));
        // Live data up to the run: 9 days 6 h 17 min elapsed, 9.2618… days.
        let live = ext(usd(90), &[], now, now).unwrap();
        let expected =
            Decimal::from(90 * 30 * 86_400) / Decimal::from(9 * 86_400 + 6 * 3600 + 17 * 60);
        assert_eq!(live, expected);
        assert_eq!(live.round_dp(2), Decimal::new(29152, 2));
        // A provider whose data ends two days back: 70 over 7 days.
        assert_eq!(
            ext(usd(70), &[], at(2026, 11, 8, 0, 0), now),
            Some(usd(300))
        );
        // February of a leap year has 29 days: 14 over 14 days is 29.
        assert_eq!(
            ext(usd(14), &[], at(2028, 2, 15, 0, 0), at(2028, 2, 15, 9, 0)),
            Some(usd(29))
        );
        // … and 28 in a common year.
        assert_eq!(
            ext(usd(14), &[], at(2027, 2, 15, 0, 0), at(2027, 2, 15, 9, 0)),
            Some(usd(28))
        );
    }

    #[test]
    fn the_first_48_hours_of_data_are_a_floor() {
        // The 2nd at 12:00: 36 hours in; the month-to-date amount, not ×20.
        let now = at(2026, 11, 2, 12, 0);
        assert_eq!(ext(usd(3), &[], now, now), Some(usd(3)));
        // A zero metered line still has a forecast: zero.
        assert_eq!(ext(usd(0), &[], now, now), Some(usd(0)));
        // The 3rd at 01:00 with data through the 1st only: 24 hours of data, still a floor.
        let now = at(2026, 11, 3, 1, 0);
        assert_eq!(ext(usd(4), &[], at(2026, 11, 2, 0, 0), now), Some(usd(4)));
        // Exactly 48 hours of data: extrapolated (30 / 2).
        assert_eq!(ext(usd(4), &[], at(2026, 11, 3, 0, 0), now), Some(usd(60)));
        // Data from last month (the 1st, before the first daily bucket): the floor.
        let now = at(2026, 12, 1, 3, 0);
        assert_eq!(ext(usd(0), &[], at(2026, 11, 30, 0, 0), now), Some(usd(0)));
    }

    #[test]
    fn data_as_of_is_clamped_to_the_run() {
        // A provider clock ahead of ours never shortens the month.
        let now = at(2026, 11, 10, 0, 0);
        assert_eq!(
            ext(usd(90), &[], at(2026, 11, 12, 0, 0), now),
            Some(usd(300))
        );
    }

    #[test]
    fn credits_are_deducted_once_not_extrapolated() {
        let now = at(2026, 11, 11, 0, 0);
        let credit = |covered, applied, total| Credit {
            covered: usd(covered),
            applied: usd(applied),
            total: usd(total),
        };
        // 30 of usage over 10 days with a 20 credit applied as it came: 10 net month to date.
        // The month: 30 × 3 = 90 of usage less 20 = 70, not 10 × 3 = 30.
        assert_eq!(ext(usd(10), &[credit(30, 20, 20)], now, now), Some(usd(70)));
        // Usage entirely covered so far (20 of usage, 20 applied): the month's 60 outgrows it
        // by 40.
        assert_eq!(ext(usd(0), &[credit(20, 20, 20)], now, now), Some(usd(40)));
        // A monthly credit of 10 against compute of 3.33 so far (a small instance over 10 days)
        // and 2 of disk: compute's month (10) is covered in full, disk's month (6) is not.
        let compute = Decimal::new(333, 2);
        let c = Credit {
            covered: compute,
            applied: compute,
            total: usd(10),
        };
        assert_eq!(ext(usd(2), &[c], now, now), Some(usd(6)));
        // Compute of 5 so far: 15 for the month, of which the credit takes 10.
        let c = Credit {
            covered: usd(5),
            applied: usd(5),
            total: usd(10),
        };
        assert_eq!(ext(usd(2), &[c], now, now), Some(usd(11)));
        // Under 48 hours: the net month to date.
        let early = at(2026, 11, 1, 12, 0);
        assert_eq!(
            ext(usd(0), &[credit(20, 20, 20)], early, early),
            Some(usd(0))
        );
    }

    #[test]
    fn a_provider_forecast_sums_its_sources_each_over_its_own_data() {
        let now = at(2026, 11, 10, 6, 17);
        let money = |v: i64| Money {
            amount: Decimal::from(v),
            currency: Currency::USD,
        };
        let spend = |v: i64, kind| Spend {
            money: money(v),
            kind,
            labels: vec![],
        };
        let fixed = Collection {
            spend: vec![spend(250, SpendKind::Fixed)],
            ..Collection::default()
        };
        let report = Collection {
            spend: vec![spend(90, SpendKind::Metered), spend(5, SpendKind::Billed)],
            due: vec![spend(12, SpendKind::Billed)],
            data_as_of: Some(at(2026, 11, 10, 0, 0)),
            ..Collection::default()
        };
        let fx = Fx::new(Currency::USD, Default::default());
        let out = assess(
            vec![
                ("p".into(), Ok(fixed), Duration::ZERO),
                ("p".into(), Ok(report), Duration::ZERO),
            ],
            &BTreeSet::new(),
            |_| None,
            &fx,
            now,
        );
        let State::Collected(r) = &out[0].state else {
            panic!("{:?}", out[0].state)
        };
        // 250 fixed + 5 billed + 12 due + 90 over 9 days → 300.
        assert_eq!(r.forecast, Some(usd(567)));
        // The merged data-as-of is the earliest of the sources that say.
        assert_eq!(r.data_as_of, Some(at(2026, 11, 10, 0, 0)));
        // Fixed only, on the 1st: exactly the fixed amount.
        let fixed = Collection {
            spend: vec![spend(250, SpendKind::Fixed)],
            ..Collection::default()
        };
        let out = assess(
            vec![("p".into(), Ok(fixed), Duration::ZERO)],
            &BTreeSet::new(),
            |_| None,
            &fx,
            at(2026, 11, 1, 0, 5),
        );
        let State::Collected(r) = &out[0].state else {
            panic!()
        };
        assert_eq!(r.forecast, Some(usd(250)));
    }

    #[test]
    fn renewals_that_share_a_name_are_each_their_own_series() {
        let at_day = |d| at(2026, 12, d, 0, 0);
        let renewal = |name: &str, id: Option<&str>, d| crate::cost::Renewal {
            name: name.into(),
            id: id.map(str::to_owned),
            at: at_day(d),
            price: Money {
                amount: Decimal::from(20),
                currency: Currency::USD,
            },
            current_price: None,
            automatic: Some(true),
        };
        let c = Collection {
            renewals: vec![
                renewal("Pro Plan", Some("zone-b"), 20),
                renewal("Pro Plan", Some("zone-a"), 10),
                renewal("Workers Paid", None, 15),
                renewal("KVM 1", None, 3),
                renewal("KVM 1", None, 2),
            ],
            ..Collection::default()
        };
        let fx = Fx::new(Currency::USD, Default::default());
        let out = assess(
            vec![("p".into(), Ok(c), Duration::ZERO)],
            &BTreeSet::new(),
            |_| None,
            &fx,
            at(2026, 12, 1, 6, 0),
        );
        let State::Collected(r) = &out[0].state else {
            panic!("{:?}", out[0].state)
        };
        let mut got: Vec<(String, SystemTime)> =
            r.renewals.iter().map(|r| (r.name.clone(), r.at)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("KVM 1 (#1)".to_owned(), at_day(2)),
                ("KVM 1 (#2)".to_owned(), at_day(3)),
                ("Pro Plan (zone-a)".to_owned(), at_day(10)),
                ("Pro Plan (zone-b)".to_owned(), at_day(20)),
                ("Workers Paid".to_owned(), at_day(15)),
            ]
        );
    }

    fn forecast_of(c: Collection, now: SystemTime) -> Option<Decimal> {
        let fx = Fx::new(Currency::USD, Default::default());
        let out = assess(
            vec![("p".into(), Ok(c), Duration::ZERO)],
            &BTreeSet::new(),
            |_| None,
            &fx,
            now,
        );
        let State::Collected(r) = &out[0].state else {
            panic!("{:?}", out[0].state)
        };
        r.forecast
    }

    #[test]
    fn usage_beyond_an_allowance_is_projected_before_the_allowance_comes_off() {
        // R2 Class A operations on the 7th at 00:00 (6 whole days of a 31-day December): 1.2 M
        // so far against 1 M free, $4.50 a million. Projected: 1.2 × 31 / 6 = 6.2 M, 5.2 M
        // beyond, billed as 6 whole millions: $27. Extrapolating the $0.90 charged so far
        // (one million) said $4.65.
        let now = at(2026, 12, 7, 0, 0);
        let allowance = |used: &str| crate::cost::Allowance {
            used: used.parse().unwrap(),
            included: usd(1_000_000),
            unit: usd(1_000_000),
            price: "4.50".parse().unwrap(),
        };
        let c = |used| Collection {
            spend: vec![allowance(used).spend(Currency::USD, vec![]).unwrap()],
            ..Collection::default()
        };
        assert_eq!(c("1200000").spend[0].money.amount, "4.50".parse().unwrap());
        assert_eq!(forecast_of(c("1200000"), now), Some(usd(27)));
        // 0.9 M so far: nothing charged yet, but 4.65 M by the month's end: $18 (4 millions).
        assert_eq!(c("900000").spend[0].money.amount, Decimal::ZERO);
        assert_eq!(forecast_of(c("900000"), now), Some(usd(18)));
        // The first 48 hours: the usage so far, not projected.
        assert_eq!(
            forecast_of(c("900000"), at(2026, 12, 2, 0, 0)),
            Some(usd(0))
        );
    }

    #[test]
    fn a_source_extrapolates_over_its_own_billing_month() {
        // A Paris month: 1 December 00:00 Paris is 30 November 23:00 UTC. On 10 December at
        // 23:00 UTC (11 December 00:00 in Paris) ten whole Paris days have passed: 31 / 10 × 10.
        let paris = Calendar::Paris.month_of(at(2026, 12, 5, 0, 0));
        let c = Collection {
            spend: vec![Spend {
                money: Money {
                    amount: usd(10),
                    currency: Currency::USD,
                },
                kind: SpendKind::Metered,
                labels: vec![],
            }],
            month: Some(paris),
            ..Collection::default()
        };
        assert_eq!(forecast_of(c, at(2026, 12, 10, 23, 0)), Some(usd(31)));
    }

    #[test]
    fn a_provider_that_reports_no_money_has_no_forecast() {
        let c = Collection {
            usage: vec![Usage {
                resource: "function_invocations".into(),
                unit: crate::cost::Unit::Requests,
                value: 12.0,
                labels: vec![],
            }],
            ..Collection::default()
        };
        assert_eq!(forecast_of(c, at(2026, 12, 10, 0, 0)), None);
        // A known zero is a forecast of 0.
        let zero = Collection {
            spend: vec![Spend {
                money: Money {
                    amount: Decimal::ZERO,
                    currency: Currency::USD,
                },
                kind: SpendKind::Fixed,
                labels: vec![],
            }],
            ..Collection::default()
        };
        assert_eq!(
            forecast_of(zero, at(2026, 12, 10, 0, 0)),
            Some(Decimal::ZERO)
        );
    }

    #[test]
    fn sums_no_decimal_can_hold_fail_the_provider_without_a_panic() {
        let big = Spend {
            money: Money {
                amount: Decimal::MAX,
                currency: Currency::USD,
            },
            kind: SpendKind::Fixed,
            labels: vec![],
        };
        let metered = Spend {
            kind: SpendKind::Metered,
            ..big.clone()
        };
        let fx = Fx::new(Currency::USD, Default::default());
        for spend in [vec![big.clone(), big.clone()], vec![metered]] {
            let c = Collection {
                spend,
                ..Collection::default()
            };
            let out = assess(
                vec![("p".into(), Ok(c), Duration::ZERO)],
                &BTreeSet::new(),
                |_| None,
                &fx,
                at(2026, 11, 20, 0, 0),
            );
            let State::Failed(errs) = &out[0].state else {
                panic!("{:?}", out[0].state)
            };
            assert_eq!(errs[0].reason, Reason::Decode);
            assert!(errs[0].message.contains("too large"), "{}", errs[0].message);
        }
    }
}
