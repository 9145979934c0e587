//! One run: collect from every source concurrently under the run deadline (and SIGTERM),
//! turn the results into per-provider outcomes (money converted, forecast computed), then
//! print them or push them, and decide the exit code.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::Settings;
use crate::cost::{Collection, Labels, Spend, SpendKind, Usage, UsageLimit};
use crate::exit;
use crate::http::{ProviderHttp, RetryPolicy};
use crate::metrics::{self, Method, PreviousErrors};
use crate::money::Fx;
use crate::providers::{CollectError, Collector, Context, Reason, Registry};
use crate::push::{PushError, Pushgateway};

/// What happened to one provider this run.
#[derive(Debug)]
pub struct ProviderOutcome {
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
pub enum State {
    /// Every source succeeded.
    Collected(Report),
    /// At least one source failed; the errors, one per failed source.
    Failed(Vec<CollectError>),
    /// Known, but without credentials.
    Unconfigured,
}

/// A provider's figures, ready to render.
#[derive(Debug)]
pub struct Report {
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
    /// End of the provider's data window.
    pub data_as_of: Option<SystemTime>,
}

/// Print or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `collect`: exposition to stdout, nothing pushed.
    Print,
    /// `push`.
    Push,
}

/// Runs once and returns the exit code.
///
/// `shutdown` resolves (with the signal's name) when the process is asked to stop; collectors
/// still running are then cancelled, and the statuses are still pushed.
pub async fn execute(
    settings: &Settings,
    registry: Registry,
    mode: Mode,
    shutdown: impl Future<Output = &'static str>,
) -> u8 {
    let started = Instant::now();
    let now = SystemTime::now();
    let http = match ProviderHttp::new(&settings.http, RetryPolicy::from_settings(&settings.http)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    let cx = Arc::new(Context { http, now });
    let results = collect_all(&registry.collectors, cx, settings.run.timeout, shutdown).await;
    let took = started.elapsed();
    let outcomes = assess(settings, &registry, results, now);
    for o in &outcomes {
        match &o.state {
            State::Collected(r) => tracing::info!(
                provider = %o.provider,
                "collected: {} usage, {} spend series",
                r.usage.len(),
                r.spend.len()
            ),
            State::Failed(errs) => {
                for e in errs {
                    tracing::warn!(provider = %o.provider, reason = %e.reason, "collection failed: {}", e.message);
                }
            }
            State::Unconfigured => {}
        }
    }
    let any_failed = outcomes.iter().any(|o| matches!(o.state, State::Failed(_)));
    let finished = now + took;

    match mode {
        Mode::Print => {
            let mut all = metrics::run_group(&settings.fx, finished, took);
            for o in &outcomes {
                let (fams, _) =
                    metrics::provider_group(o, &settings.fx, &PreviousErrors::new(), finished);
                all.extend(fams.with_label("provider", &o.provider));
            }
            let mut out = std::io::stdout().lock();
            if let Err(e) = out
                .write_all(all.encode().as_bytes())
                .and_then(|_| out.flush())
            {
                tracing::error!("cannot write to stdout: {e}");
                return exit::PUSH_FAILED;
            }
            if any_failed { exit::PARTIAL } else { exit::OK }
        }
        Mode::Push => {
            let pushed = push_all(settings, &outcomes, finished, took).await;
            match (pushed, any_failed) {
                (false, _) => exit::PUSH_FAILED,
                (true, true) => exit::PARTIAL,
                (true, false) => exit::OK,
            }
        }
    }
}

type SourceResult = (String, Result<Collection, CollectError>, Duration);

/// Runs every collector concurrently. Returns one result per collector, in order; those still
/// running at the deadline or at shutdown are cancelled and reported as failed.
async fn collect_all(
    collectors: &[Arc<dyn Collector>],
    cx: Arc<Context>,
    timeout: Duration,
    shutdown: impl Future<Output = &'static str>,
) -> Vec<SourceResult> {
    let started = Instant::now();
    let mut set = JoinSet::new();
    let mut index = HashMap::new();
    for (i, c) in collectors.iter().enumerate() {
        let (c, cx) = (Arc::clone(c), Arc::clone(&cx));
        let span = tracing::info_span!("collect", provider = %c.provider(), source = c.source());
        let handle = set.spawn(
            async move {
                let t0 = Instant::now();
                let r = c.collect(&cx).await;
                (r, t0.elapsed())
            }
            .instrument(span),
        );
        index.insert(handle.id(), i);
    }
    let mut results: Vec<Option<(Result<Collection, CollectError>, Duration)>> =
        collectors.iter().map(|_| None).collect();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    tokio::pin!(shutdown);
    let stopped = loop {
        tokio::select! {
            joined = set.join_next_with_id() => match joined {
                None => break None,
                Some(Ok((id, r))) => {
                    if let Some(i) = index.get(&id) {
                        results[*i] = Some(r);
                    }
                }
                Some(Err(e)) => {
                    if let Some(i) = index.get(&e.id()) {
                        let msg = if e.is_panic() { "the collector panicked (a bug; please report it)" } else { "the collector task was cancelled" };
                        results[*i] = Some((Err(CollectError::new(Reason::Internal, msg)), started.elapsed()));
                    }
                }
            },
            () = &mut deadline => break Some(CollectError::new(
                Reason::Timeout,
                format!("the run deadline (run.timeout = {}) passed before it finished", humantime::format_duration(timeout)),
            )),
            signal = &mut shutdown => {
                tracing::warn!("{signal} received: cancelling the collectors still running, then pushing their status");
                break Some(CollectError::new(Reason::Cancelled, format!("{signal} received before it finished")));
            }
        }
    };
    set.abort_all();
    collectors
        .iter()
        .zip(results)
        .map(|(c, r)| {
            let (result, took) = r.unwrap_or_else(|| {
                let e = stopped
                    .clone()
                    .unwrap_or_else(|| CollectError::new(Reason::Internal, "no result"));
                (Err(e), started.elapsed())
            });
            (c.provider().to_owned(), result, took)
        })
        .collect()
}

/// Groups source results by provider, validates the figures, converts money and forecasts.
fn assess(
    settings: &Settings,
    registry: &Registry,
    results: Vec<SourceResult>,
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
    let budget = |p: &str| settings.providers.get(p).and_then(|s| s.budget);
    let mut out: Vec<ProviderOutcome> = by_provider
        .into_iter()
        .map(|(provider, (collections, errors, duration))| {
            let state = if errors.is_empty() {
                let mut merged = Collection::default();
                for c in collections {
                    merged.merge(c);
                }
                match report(merged, &settings.fx, now) {
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
    for p in &registry.unconfigured {
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
    let (mut fixed, mut metered, mut any_metered) = (Decimal::ZERO, Decimal::ZERO, false);
    for s in c.spend {
        let amount = convert(&s)?;
        match s.kind {
            SpendKind::Fixed => fixed += amount,
            SpendKind::Metered => {
                metered += amount;
                any_metered = true;
            }
        }
        spend.push((amount, s.labels));
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
        forecast: forecast(fixed, any_metered.then_some(metered), now),
        data_as_of: c.data_as_of,
    })
}

/// Month-end forecast: fixed amounts plus metered month-to-date × days in month / days
/// elapsed (today counted). With metered spend it exists from the 3rd day of the month on;
/// with only fixed amounts it is exactly their sum every day.
pub fn forecast(fixed: Decimal, metered: Option<Decimal>, now: SystemTime) -> Option<Decimal> {
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
pub fn day_of_month(now: SystemTime) -> (u8, u8) {
    let t = time::OffsetDateTime::from(now);
    (t.day(), t.month().length(t.year()))
}

/// Pushes every provider group, then the run-level group. Returns whether all succeeded.
async fn push_all(
    settings: &Settings,
    outcomes: &[ProviderOutcome],
    finished: SystemTime,
    took: Duration,
) -> bool {
    let pg = match Pushgateway::new(&settings.pushgateway) {
        Ok(pg) => pg,
        Err(e) => {
            tracing::error!("{e}");
            return false;
        }
    };
    // Reading the counters back is also the reachability check: if the Pushgateway cannot be
    // reached after the retries, nothing is pushed (each group would wait out the same retries).
    let previous = match pg.read_counters(metrics::ERRORS.name).await {
        Ok(p) => p,
        Err(e) if e.retryable() => {
            tracing::error!("{e}; nothing was pushed");
            return false;
        }
        Err(e) => {
            tracing::warn!(
                "cannot read the previous error counters, starting them from 0 (Prometheus sees a counter reset): {e}"
            );
            PreviousErrors::new()
        }
    };
    let mut ok = true;
    let groups = outcomes
        .iter()
        .map(|o| {
            let (fams, method) = metrics::provider_group(o, &settings.fx, &previous, finished);
            (Some(o.provider.as_str()), method, fams)
        })
        .chain(std::iter::once((
            None,
            Method::Put,
            metrics::run_group(&settings.fx, finished, took),
        )));
    for (provider, method, fams) in groups {
        let labels: Vec<(&str, &str)> = provider.map(|p| ("provider", p)).into_iter().collect();
        match pg.push(&labels, method, fams.encode()).await {
            Ok(()) => {
                tracing::debug!(group = %pg.group_url(&labels).path(), ?method, "pushed");
            }
            // A refusal concerns this group's content: the others may still go through.
            Err(e @ PushError::Rejected { .. }) => {
                tracing::error!("{e}");
                ok = false;
            }
            // Still failing after the retries: the Pushgateway is down; stop here.
            Err(e @ PushError::Failed { .. }) => {
                tracing::error!("{e}; the remaining groups were not pushed");
                return false;
            }
        }
    }
    ok
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
