//! One run, orchestrated: collect from every source concurrently under the run deadline (and
//! SIGTERM), hand the results to the outcome model (`outcome`), then print, report or push
//! them in order, and decide the exit code. A progress line on stderr (`progress`, a terminal
//! only) follows the collection and the push.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::Settings;
use crate::cost::Collection;
use crate::error::{CollectError, Reason};
use crate::exit;
use crate::fx;
use crate::metrics::{self, Method, PreviousErrors};
use crate::money::Fx;
use crate::outcome::{self, ProviderOutcome, SourceResult, State};
use crate::progress::{self, Progress};
use crate::providers::{self, Collector, Context, Plan};
use crate::push::{PushError, Pushgateway};
use crate::report;
use crate::term;

/// A run quicker than this shows no progress line.
const SHOW_PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Print, report or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `collect`: exposition to stdout, nothing pushed.
    Print,
    /// `report`: the month at a glance on stdout, nothing pushed.
    Report(Output),
    /// `push`.
    Push,
}

/// How `report` prints the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// A table for people: colour on a terminal (unless NO_COLOR is set), plain text
    /// otherwise; at most 100 columns.
    #[default]
    Table,
    /// JSON for scripts: schema_version 1, described by docs/report.schema.json; money as
    /// strings with two decimals, unknown as null.
    Json,
}

/// Runs once and returns the exit code.
///
/// `shutdown` resolves (with the signal's name) when the process is asked to stop; collectors
/// still running are then cancelled, and the statuses are still pushed.
pub async fn execute(
    settings: &Settings,
    plan: Plan,
    mode: Mode,
    shutdown: impl Future<Output = &'static str>,
) -> u8 {
    let started = Instant::now();
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
    let fx_http = http.clone();
    let progress = Progress::start(
        progress::Status {
            what: "collecting".into(),
            ..Default::default()
        },
        http.sent(),
        SHOW_PROGRESS_AFTER,
    );
    let cx = Arc::new(Context { http, now });
    // Both phases below stop on the first signal: the collectors are cancelled, and an
    // exchange-rate fetch still waiting gives way to the configured rates.
    let shutdown = shutdown.boxed_local().shared();
    // The exchange rates are fetched (when a source is configured) while collecting.
    let (results, fx) = tokio::join!(
        collect_all(
            &plan.collectors,
            cx,
            settings.run.timeout,
            settings.run.accounts_at_once,
            shutdown.clone(),
            &progress
        ),
        async {
            tokio::select! {
                fx = fx::for_run(
                    &settings.fx,
                    settings.fx_source.as_ref(),
                    &fx_http,
                    settings.run.timeout,
                ) => fx,
                signal = shutdown.clone() => {
                    if settings.fx_source.is_some() {
                        tracing::warn!("{signal} received while fetching exchange rates: the configured [fx] rates are used");
                    }
                    settings.fx.clone()
                }
            }
        },
    );
    let took = started.elapsed();
    let outcomes = outcome::assess(results, &plan.unconfigured, |p| plan.budget(p), &fx, now);
    for o in &outcomes {
        match &o.state {
            State::Collected(r) => tracing::info!(
                provider = %o.target,
                "collected: {} usage, {} spend series",
                r.usage.len(),
                r.spend.len()
            ),
            State::Failed(errs) => {
                for e in errs {
                    tracing::warn!(provider = %o.target, reason = %e.reason, "collection failed: {}", e.message);
                }
            }
            State::Unconfigured => {}
        }
    }
    let any_failed = outcomes.iter().any(|o| matches!(o.state, State::Failed(_)));
    let finished = now + took;
    let partial = if any_failed { exit::PARTIAL } else { exit::OK };

    match mode {
        Mode::Report(output) => {
            // Off the screen before the table is on it.
            progress.finish();
            let month = report::month(
                &outcomes,
                |p| plan.why_not_collected(p).map(str::to_owned),
                fx.reporting().code(),
                now,
            );
            let out = std::io::stdout();
            let text = match output {
                Output::Table => report::table(&month, term::colour(out.is_terminal())),
                Output::Json => report::json(&month),
            };
            let mut out = out.lock();
            if let Err(e) = out
                .write_all(crate::secret::redact(&text).as_bytes())
                .and_then(|_| out.flush())
            {
                tracing::error!("cannot write to stdout: {e}");
                return exit::PUSH_FAILED;
            }
            partial
        }
        Mode::Print => {
            progress.finish();
            let mut all = metrics::run_group(&fx, settings.tax, finished, took);
            for o in &outcomes {
                let (fams, _) =
                    metrics::provider_group(o, &fx, &PreviousErrors::default(), finished);
                all.extend(fams.with_labels(&o.target.labels()));
            }
            for (provider, budget) in totals(&plan, &outcomes) {
                all.extend(
                    metrics::total_group(budget, &fx).with_labels(&[("provider", provider)]),
                );
            }
            let mut out = std::io::stdout().lock();
            if let Err(e) = out
                .write_all(all.encode().as_bytes())
                .and_then(|_| out.flush())
            {
                tracing::error!("cannot write to stdout: {e}");
                return exit::PUSH_FAILED;
            }
            partial
        }
        Mode::Push => {
            let deadline = settings.run.push_timeout;
            let pushed = match tokio::time::timeout(
                deadline,
                push_all(settings, &plan, &fx, &outcomes, finished, took, &progress),
            )
            .await
            {
                Ok(pushed) => pushed,
                Err(_) => {
                    tracing::error!(
                        "the push did not finish within run.push_timeout ({}): stopping",
                        humantime::format_duration(deadline)
                    );
                    false
                }
            };
            progress.finish();
            if pushed { partial } else { exit::PUSH_FAILED }
        }
    }
}

/// Runs every collector concurrently. Returns one result per collector, in order; those still
/// running at the deadline or at shutdown are cancelled and reported as failed.
async fn collect_all(
    collectors: &[Arc<dyn Collector>],
    cx: Arc<Context>,
    timeout: Duration,
    accounts_at_once: usize,
    shutdown: impl Future<Output = &'static str>,
    progress: &Progress,
) -> Vec<SourceResult> {
    let started = Instant::now();
    // Sources still running per provider: a provider is done when its last one is.
    let mut running: BTreeMap<&str, usize> = BTreeMap::new();
    for c in collectors {
        *running.entry(c.provider()).or_default() += 1;
    }
    let providers = running.len();
    let show = |running: &BTreeMap<&str, usize>| {
        progress.update(|s| {
            s.counts = vec![progress::Count {
                done: providers - running.len(),
                total: providers,
                unit: "providers",
            }];
            s.waiting = running.keys().map(|p| (*p).to_owned()).collect();
        });
    };
    show(&running);
    let mut set = JoinSet::new();
    let mut index = HashMap::new();
    // Named accounts of one provider take turns, `accounts_at_once` at a time.
    let mut turns: HashMap<&str, Arc<tokio::sync::Semaphore>> = HashMap::new();
    for (i, c) in collectors.iter().enumerate() {
        let turn = match c.target().account {
            None => None,
            Some(_) => Some(Arc::clone(turns.entry(c.provider()).or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(accounts_at_once))
            }))),
        };
        let (c, cx) = (Arc::clone(c), Arc::clone(&cx));
        let span = tracing::info_span!("collect", provider = %c.target(), source = c.source());
        let handle = set.spawn(
            async move {
                let _turn = match &turn {
                    Some(t) => t.acquire().await.ok(),
                    None => None,
                };
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
                        finished(&mut running, collectors[*i].provider());
                        show(&running);
                    }
                }
                Some(Err(e)) => {
                    if let Some(i) = index.get(&e.id()) {
                        let msg = if e.is_panic() { "the collector panicked (a bug; please report it)" } else { "the collector task was cancelled" };
                        results[*i] = Some((Err(CollectError::new(Reason::Internal, msg)), started.elapsed()));
                        finished(&mut running, collectors[*i].provider());
                        show(&running);
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
            (c.target(), result, took)
        })
        .collect()
}

/// One source of `provider` has finished: the provider leaves `running` with its last.
fn finished(running: &mut BTreeMap<&str, usize>, provider: &str) {
    if let Some(n) = running.get_mut(provider) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            running.remove(provider);
        }
    }
}

/// Takes the host-wide lock for pushes to `pushgateway` (a file in the temporary directory,
/// named by the URL's hash), waiting for another run to finish its push; the push phase's
/// deadline bounds the wait.
///
/// The lock only guards the counter read-back against a second run on the same host: it never
/// costs the push. Where it cannot be had (no writable temporary directory, as on a read-only
/// root filesystem; something other than a regular file at its path), the run warns and pushes
/// without it (`None`). The file is opened without blocking and without following a link, so
/// a FIFO planted at the predictable path cannot hang the run.
async fn push_lock(pushgateway: &str) -> Option<std::fs::File> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pushgateway.hash(&mut h);
    let path = std::env::temp_dir().join(format!("cost-exporter-push-{:016x}.lock", h.finish()));
    let file = match open_lock_file(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(
                "pushing without the host-wide push lock ({e}): a second run pushing from this host at the same moment could lose one increment of an error counter"
            );
            return None;
        }
    };
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !told {
                    told = true;
                    tracing::info!(
                        "another run is pushing to the same Pushgateway from this host; waiting for it (lock {})",
                        path.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::warn!(
                    "pushing without the host-wide push lock (cannot lock {}: {e})",
                    path.display()
                );
                return None;
            }
        }
    }
}

/// Opens (creating it if needed) the lock file at `path`: never blocking (`O_NONBLOCK`), never
/// through a symbolic link (`O_NOFOLLOW`), and only a regular file.
fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .mode(0o600);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(file)
}

/// The total budgets of providers with named accounts that this run collects an account of:
/// each goes in the provider's own group.
fn totals<'a>(
    plan: &'a Plan,
    outcomes: &[ProviderOutcome],
) -> Vec<(&'a str, rust_decimal::Decimal)> {
    plan.totals()
        .filter(|(p, _)| outcomes.iter().any(|o| o.target.provider == *p))
        .collect()
}

/// Pushes every provider group, then the run-level group. Returns whether all succeeded.
async fn push_all(
    settings: &Settings,
    plan: &Plan,
    fx: &Fx,
    outcomes: &[ProviderOutcome],
    finished: SystemTime,
    took: Duration,
    progress: &Progress,
) -> bool {
    let pg = match Pushgateway::new(&settings.pushgateway) {
        Ok(pg) => pg,
        Err(e) => {
            tracing::error!("{e}");
            return false;
        }
    };
    // One push at a time per Pushgateway on this host: the error counters are read back,
    // increased and written, and two runs interleaving would lose an increment. Held until
    // the end of the push (dropped with the file).
    let _lock = push_lock(settings.pushgateway.url.as_str()).await;
    // Reading the counters back is also the reachability check: if the Pushgateway cannot be
    // reached after the retries, nothing is pushed (each group would wait out the same retries).
    let previous = match pg.read_counters().await {
        Ok(p) => p,
        Err(e) if e.retryable() => {
            tracing::error!("{e}; nothing was pushed");
            return false;
        }
        Err(e) => {
            tracing::warn!(
                "cannot read the previous error counters, starting them from 0 (Prometheus sees a counter reset): {e}"
            );
            PreviousErrors::default()
        }
    };
    let mut ok = true;
    let totals = totals(plan, outcomes);
    let groups = outcomes
        .iter()
        .map(|o| {
            let (fams, method) = metrics::provider_group(o, fx, &previous, finished);
            (o.target.labels(), method, fams)
        })
        .chain(totals.iter().map(|(provider, budget)| {
            (
                vec![("provider", *provider)],
                Method::Put,
                metrics::total_group(*budget, fx),
            )
        }))
        .chain(std::iter::once((
            Vec::new(),
            Method::Put,
            metrics::run_group(fx, settings.tax, finished, took),
        )));
    let total = outcomes.len() + totals.len() + 1;
    for (done, (labels, method, fams)) in groups.enumerate() {
        progress.update(|s| {
            s.what = "pushing".into();
            s.counts = vec![progress::Count {
                done,
                total,
                unit: "groups",
            }];
            s.waiting.clear();
        });
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
