//! `backfill`: past months from the providers' own history, one point per series per day (at
//! 23:59:59 UTC), with the names, labels and month-to-date meaning `push` gives them, so a
//! backfilled day and a pushed day draw one line. Written as OpenMetrics with timestamps
//! (`openmetrics`, for `promtool tsdb create-blocks-from openmetrics`) or sent with
//! Prometheus remote write (`remote_write`).
//!
//! Month by month: every collector's [`Collector::history`] for the month runs concurrently;
//! then, day by day, the outcome model turns the day's collections into what `push` would have
//! reported at the end of that day (the forecast included), and the figures are written. Memory
//! holds one month of history, never the whole span. A source without history is named in
//! the log; a failing provider does not stop the others (exit 3). On a terminal, a progress
//! line on stderr says how many months and providers are done, the requests made, and the
//! time elapsed and left.

mod openmetrics;
mod remote_write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use url::Url;

use crate::config::Settings;
use crate::cost::Target;
use crate::error::CollectError;
use crate::exit;
use crate::fx;
use crate::metrics::{self, FIGURES, PreviousErrors};
use crate::outcome::{self, SourceResult, State};
use crate::progress::{self, Progress};
use crate::providers::{self, Collector, Context, Days, History, Plan};

/// What to backfill and where to.
#[derive(Debug, Clone)]
pub struct Request {
    /// The first day (the 1st of `--from`).
    pub from: time::Date,
    /// The last day (the end of `--to`, at most yesterday).
    pub to: time::Date,
    /// `--output`: a file instead of stdout.
    pub output: Option<PathBuf>,
    /// `--remote-write`: send to this receiver instead of writing OpenMetrics.
    pub remote_write: Option<Url>,
}

impl Request {
    /// From `--from YYYY-MM` and `--to YYYY-MM` (default: yesterday's month) relative to
    /// `today` (UTC): the 1st of `from` to the end of `to`, at most yesterday. An error names
    /// the flag.
    pub fn new(
        from: &str,
        to: Option<&str>,
        today: time::Date,
        output: Option<PathBuf>,
        remote_write: Option<&str>,
    ) -> Result<Request, String> {
        let yesterday = today.previous_day().ok_or("today has no yesterday")?;
        let month = |flag: &str, text: &str| {
            crate::money::year_month(text)
                .ok_or_else(|| format!("{flag} {text:?} is not a month such as 2026-03"))
        };
        let from = month("--from", from)?;
        // Samples are stamped in milliseconds since 1970: a day before it has no timestamp.
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
            .map_err(|e| e.to_string())?;
        if from < epoch {
            return Err(format!(
                "--from {} is before 1970-01: backfill writes samples stamped since the Unix epoch, and no billing history reaches that far",
                format_args!("{:04}-{:02}", from.year(), u8::from(from.month()))
            ));
        }
        let to = match to {
            None => yesterday,
            Some(t) => {
                let first = month("--to", t)?;
                first
                    .replace_day(first.month().length(first.year()))
                    .map_err(|e| e.to_string())?
                    .min(yesterday)
            }
        };
        if from > to {
            return Err(format!(
                "--from {} is after the last complete day to backfill ({to}); history ends yesterday",
                &from.to_string()[..7]
            ));
        }
        let remote_write = match remote_write {
            None => None,
            Some(u) => {
                let url = Url::parse(u.trim()).map_err(|e| {
                    format!(
                        "--remote-write {:?} is not a URL ({e})",
                        crate::config::redact_url(u)
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!(
                        "--remote-write {:?} is not an http(s) URL",
                        crate::config::redact_url(u)
                    ));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err("--remote-write: the URL holds credentials".into());
                }
                Some(url)
            }
        };
        Ok(Request {
            from,
            to,
            output,
            remote_write,
        })
    }

    /// The months, each as its days (the last one ends at `to`).
    fn months(&self) -> Vec<Days> {
        let mut out = Vec::new();
        let mut first = self.from;
        while first <= self.to {
            let days = Days::month_of(first, self.to);
            out.push(days);
            match days.last.next_day() {
                Some(next) => first = next,
                None => break,
            }
        }
        out
    }
}

/// Where the samples go.
enum Sink {
    OpenMetrics(openmetrics::Spool),
    RemoteWrite(remote_write::RemoteWrite),
}

impl Sink {
    async fn add(
        &mut self,
        def: &'static metrics::Def,
        labels: &[(&str, &str)],
        value: f64,
        ts: i64,
    ) -> Result<(), String> {
        match self {
            Sink::OpenMetrics(s) => s
                .add(def, labels, value, ts)
                .map_err(|e| format!("cannot spool the samples: {e}")),
            Sink::RemoteWrite(r) => r.add(def.name, labels, value, ts).await,
        }
    }
}

/// Runs the backfill and returns the exit code: 0, 3 when a provider failed (the others are
/// written), 1 when the output could not be written or sent.
pub async fn execute(settings: &Settings, plan: Plan, req: &Request) -> u8 {
    let now = match crate::clock::now() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}");
            return exit::CONFIG;
        }
    };
    let http = match providers::client(&settings.http) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    // Today's rates convert every day of history.
    let fx = fx::for_run(
        &settings.fx,
        settings.fx_source.as_ref(),
        &http,
        settings.run.timeout,
    )
    .await;
    let mut sink = match &req.remote_write {
        Some(url) => match remote_write::RemoteWrite::new(url.clone(), settings.http.timeout) {
            Ok(r) => Sink::RemoteWrite(r),
            Err(e) => {
                tracing::error!("{e}");
                return exit::PUSH_FAILED;
            }
        },
        None => match openmetrics::Spool::new() {
            Ok(s) => Sink::OpenMetrics(s),
            Err(e) => {
                tracing::error!("cannot create a temporary directory for the samples: {e}");
                return exit::PUSH_FAILED;
            }
        },
    };
    for p in &plan.unconfigured {
        tracing::info!(provider = %p, "not configured (no credentials): nothing to backfill");
    }
    let months = req.months();
    let providers: BTreeSet<Target> = plan.collectors.iter().map(|c| c.target()).collect();
    let progress = Progress::start(
        progress::Status {
            what: "backfilling".into(),
            counts: vec![
                progress::Count {
                    done: 0,
                    total: months.len(),
                    unit: "months",
                },
                progress::Count {
                    done: 0,
                    total: providers.len(),
                    unit: "providers",
                },
            ],
            ..Default::default()
        },
        http.sent(),
        Duration::ZERO,
    );
    let cx = Arc::new(Context { http, now });
    let mut failed: BTreeSet<Target> = BTreeSet::new();
    let mut without_history: BTreeSet<(Target, &'static str)> = BTreeSet::new();
    let mut written_days: BTreeMap<Target, u32> = BTreeMap::new();
    for (i, days) in months.iter().copied().enumerate() {
        tracing::info!("backfilling {} to {}", days.first, days.last);
        let done = Done {
            months: i,
            of: months.len(),
            progress: &progress,
        };
        let histories = month(
            &plan.collectors,
            &cx,
            days,
            settings.run.accounts_at_once,
            done,
        )
        .await;
        // Per provider: its sources' histories, or the month fails for it.
        let mut by_provider: BTreeMap<Target, Vec<HashMap<time::Date, crate::cost::Collection>>> =
            BTreeMap::new();
        let mut failed_now: BTreeSet<Target> = BTreeSet::new();
        for (provider, source, result) in histories {
            match result {
                Ok(Some(h)) => by_provider
                    .entry(provider)
                    .or_default()
                    .push(h.into_iter().collect()),
                Ok(None) => {
                    if without_history.insert((provider.clone(), source)) {
                        tracing::warn!(
                            provider = %provider,
                            source,
                            "this source keeps no history: not backfilled"
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(
                        provider = %provider,
                        reason = %e.reason,
                        "history of {} to {} failed: {}",
                        days.first,
                        days.last,
                        e.message
                    );
                    failed_now.insert(provider);
                }
            }
        }
        for p in &failed_now {
            by_provider.remove(p);
        }
        failed.extend(failed_now);
        for day in days.iter() {
            let at = Days::end_of(day);
            let ts = metrics::unix(at) as i64;
            let results: Vec<SourceResult> = by_provider
                .iter_mut()
                .flat_map(|(p, sources)| {
                    sources.iter_mut().filter_map(move |s| {
                        s.remove(&day)
                            .map(|c| (p.clone(), Ok::<_, CollectError>(c), Duration::ZERO))
                    })
                })
                .collect();
            let outcomes = outcome::assess(results, &BTreeSet::new(), |p| plan.budget(p), &fx, at);
            for o in outcomes {
                match &o.state {
                    State::Collected(_) => {}
                    State::Failed(errs) => {
                        for e in errs {
                            tracing::error!(provider = %o.target, "{day}: {}", e.message);
                        }
                        failed.insert(o.target.clone());
                        continue;
                    }
                    State::Unconfigured => continue,
                }
                let (fams, _) = metrics::provider_group(&o, &fx, &PreviousErrors::default(), at);
                for (def, labels, value) in fams.samples(FIGURES) {
                    let mut all: Vec<(&str, &str)> = vec![("job", "cost-exporter")];
                    all.extend(o.target.labels());
                    all.extend(labels);
                    all.sort();
                    if let Err(e) = sink.add(def, &all, value, ts).await {
                        tracing::error!("{e}");
                        return exit::PUSH_FAILED;
                    }
                }
                *written_days.entry(o.target.clone()).or_default() += 1;
            }
        }
    }
    // Off the terminal before the samples are written (to stdout, perhaps).
    progress.finish();
    for (p, n) in &written_days {
        tracing::info!(provider = %p, "{n} day(s) backfilled");
    }
    let code = match finish(sink, req).await {
        Ok(n) => {
            tracing::info!("{n} samples written");
            if failed.is_empty() {
                exit::OK
            } else {
                exit::PARTIAL
            }
        }
        Err(e) => {
            tracing::error!("{e}");
            exit::PUSH_FAILED
        }
    };
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(Target::to_string).collect();
        tracing::warn!("not backfilled, or only in part: {}", list.join(", "));
    }
    code
}

/// Writes the spooled exposition (stdout or `--output`) or sends the last batch; the number
/// of samples.
async fn finish(sink: Sink, req: &Request) -> Result<u64, String> {
    match sink {
        Sink::RemoteWrite(r) => r.finish().await,
        Sink::OpenMetrics(spool) => {
            let n = spool.len();
            match &req.output {
                Some(path) => std::fs::File::create(path)
                    .map(std::io::BufWriter::new)
                    .and_then(|mut f| spool.finish(FIGURES, &mut f).and_then(|_| f.flush()))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    spool
                        .finish(FIGURES, &mut out)
                        .map_err(|e| format!("cannot write to stdout: {e}"))?;
                }
            }
            Ok(n)
        }
    }
}

/// Where the backfill stands, for the progress line: months done before this one, of how
/// many.
struct Done<'a> {
    months: usize,
    of: usize,
    progress: &'a Progress,
}

impl Done<'_> {
    /// Shows the month with `running` (sources still running per provider) of `providers`.
    fn show(&self, running: &BTreeMap<Target, usize>, providers: usize) {
        let finished = providers - running.len();
        self.progress.update(|s| {
            s.counts = vec![
                progress::Count {
                    done: self.months,
                    total: self.of,
                    unit: "months",
                },
                progress::Count {
                    done: finished,
                    total: providers,
                    unit: "providers",
                },
            ];
            let providers = providers.max(1) as f64;
            s.fraction =
                Some((self.months as f64 + finished as f64 / providers) / self.of.max(1) as f64);
            s.waiting.clear();
        });
    }
}

/// Every collector's history of `days`, concurrently: (provider, source, result).
async fn month(
    collectors: &[Arc<dyn Collector>],
    cx: &Arc<Context>,
    days: Days,
    accounts_at_once: usize,
    done: Done<'_>,
) -> Vec<(Target, &'static str, Result<Option<History>, CollectError>)> {
    let mut set = JoinSet::new();
    // Sources still running per provider: a provider is done with the month with its last.
    let mut running: BTreeMap<Target, usize> = BTreeMap::new();
    // Named accounts of one provider take turns, `accounts_at_once` at a time.
    let mut turns: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    for c in collectors {
        *running.entry(c.target()).or_default() += 1;
        let turn = c.target().account.map(|_| {
            Arc::clone(
                turns
                    .entry(c.provider().to_owned())
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(accounts_at_once))),
            )
        });
        let (c, cx) = (Arc::clone(c), Arc::clone(cx));
        set.spawn(async move {
            let _turn = match &turn {
                Some(t) => t.acquire().await.ok(),
                None => None,
            };
            let r = c.history(&cx, days).await;
            (c.target(), c.source(), r)
        });
    }
    let providers = running.len();
    done.show(&running, providers);
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => {
                if let Some(n) = running.get_mut(&r.0) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        running.remove(&r.0);
                    }
                }
                done.show(&running, providers);
                out.push(r);
            }
            Err(e) => tracing::error!("a history task ended abnormally: {e}"),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u8, d: u8) -> time::Date {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
    }

    #[test]
    fn the_range_runs_from_the_first_of_from_to_yesterday_at_most() {
        let today = date(2026, 11, 29);
        let r = Request::new("2026-09", None, today, None, None).unwrap();
        assert_eq!((r.from, r.to), (date(2026, 9, 1), date(2026, 11, 28)));
        let months = r.months();
        assert_eq!(months.len(), 3);
        assert_eq!(months[0].last, date(2026, 9, 30));
        assert_eq!(months[2].last, date(2026, 11, 28));
        let r = Request::new("2026-01", Some("2026-02"), today, None, None).unwrap();
        assert_eq!(r.to, date(2026, 2, 28));
        let r = Request::new("2026-11", Some("2027-05"), today, None, None).unwrap();
        assert_eq!(r.to, date(2026, 11, 28));
        // On the 1st, the current month has no complete day: the previous month ends it.
        let r = Request::new("2026-10", None, date(2026, 11, 1), None, None).unwrap();
        assert_eq!(r.to, date(2026, 10, 31));
        for (from, to, why) in [
            ("2026-12", None, "after the last complete day"),
            ("2026-13", None, "--from"),
            ("26-01", None, "--from"),
            ("2026-01", Some("May"), "--to"),
        ] {
            let e = Request::new(from, to, today, None, None).unwrap_err();
            assert!(e.contains(why), "{from} {to:?}: {e}");
        }
        let e = Request::new("2026-01", None, today, None, Some("ftp://x")).unwrap_err();
        assert!(e.contains("--remote-write"), "{e}");
    }
}
