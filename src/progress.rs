//! A progress line on stderr, for a person watching long work: what is done of how much,
//! the requests made, the time elapsed and (where it can be estimated) the time left.
//!
//! Only when stderr is a terminal (and `TERM` is not `dumb`): piped, redirected or in a log
//! collector, nothing is written, and the line never goes through the logs. It is one line
//! redrawn in place with `\r` and cleared when the work ends; a log event written meanwhile
//! clears it first and redraws it after ([`around`]), so the two never mix.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the line is redrawn while nothing else changes (the elapsed time moves).
const TICK: Duration = Duration::from_millis(250);

/// A change redraws the line at most this often; the tick shows the last one.
const MIN_REDRAW: Duration = Duration::from_millis(50);

/// The line on screen now, if any: what [`around`] redraws after a log event.
static SHOWN: Mutex<Option<String>> = Mutex::new(None);

fn shown() -> MutexGuard<'static, Option<String>> {
    SHOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `write`'s output to stderr with the progress line out of its way: cleared before,
/// redrawn after. What the log writer calls for every event.
pub(crate) fn around(write: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    let line = shown();
    let Some(text) = line.as_deref() else {
        return write();
    };
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\r\x1b[K");
    let result = write();
    let _ = write!(err, "{text}\x1b[K");
    let _ = err.flush();
    result
}

/// Clears the line, if one is shown, for a process about to exit without unwinding (a second
/// signal).
pub(crate) fn abandon() {
    let mut current = shown();
    if current.take().is_some() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"\r\x1b[K");
        let _ = err.flush();
    }
}

/// A count of things done: `3 of 9 providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Count {
    /// Done so far.
    pub done: usize,
    /// Of how many.
    pub total: usize,
    /// What is counted, plural: `providers`, `months`, `groups`.
    pub unit: &'static str,
}

/// What the line says, besides requests and time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Status {
    /// The work: `collecting`, `backfilling 2026-03`.
    pub what: String,
    /// Outer count first: `[months, providers]`.
    pub counts: Vec<Count>,
    /// What is still running, by name.
    pub waiting: Vec<String>,
    /// The share of the whole work done, 0 to 1, when it can be told: the time left is
    /// estimated from it.
    pub fraction: Option<f64>,
}

/// The progress of one piece of work. Inert (draws nothing) when stderr is not a terminal.
/// Dropping it clears the line.
pub(crate) struct Progress {
    shared: Option<Arc<Shared>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    status: Mutex<Status>,
    requests: Arc<AtomicU64>,
    started: Instant,
    /// Nothing is drawn before this much time has passed: quick work shows no line.
    after: Duration,
    width: usize,
    /// When the line was last drawn: changes come faster than anyone reads.
    drawn: Mutex<Option<Instant>>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws the line, unless it is too early, or (`eager` aside) it was drawn a moment ago.
    fn draw(&self, eager: bool) {
        let elapsed = self.started.elapsed();
        if elapsed < self.after {
            return;
        }
        {
            let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
            if !eager && drawn.is_some_and(|t| t.elapsed() < MIN_REDRAW) {
                return;
            }
            *drawn = Some(Instant::now());
        }
        let text = line(
            &self.status(),
            self.requests.load(Ordering::Relaxed),
            elapsed,
            self.width,
        );
        let mut current = shown();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
        *current = Some(text);
    }
}

impl Progress {
    /// Starts a progress line for `status`, counting the requests of `requests`, shown once
    /// the work has taken `after` (zero: at once) and redrawn every quarter of a second. Call
    /// from within the async runtime.
    pub(crate) fn start(status: Status, requests: Arc<AtomicU64>, after: Duration) -> Progress {
        if !std::io::stderr().is_terminal() || !crate::term::capable() {
            return Progress {
                shared: None,
                ticker: None,
            };
        }
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            requests,
            started: Instant::now(),
            after,
            width: crate::term::width(),
            drawn: Mutex::new(None),
        });
        shared.draw(true);
        let ticking = Arc::clone(&shared);
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                ticking.draw(true);
            }
        });
        Progress {
            shared: Some(shared),
            ticker: Some(ticker),
        }
    }

    /// Changes what the line says, and redraws it.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Some(s) = &self.shared {
            change(&mut s.status());
            s.draw(false);
        }
    }

    /// Ends the line: stops redrawing and clears it.
    pub(crate) fn finish(mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if self.shared.take().is_some() {
            abandon();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The line: `backfilling: 15/25 months · 7/9 providers · 1,204 requests · 1m12s, 3m36s
/// left · waiting for a, b`, at most `width - 1` characters (the last column of a terminal
/// may wrap).
pub(crate) fn line(s: &Status, requests: u64, elapsed: Duration, width: usize) -> String {
    let mut parts: Vec<String> = s
        .counts
        .iter()
        .map(|c| format!("{}/{} {}", c.done, c.total, c.unit))
        .collect();
    parts.push(format!(
        "{} request{}",
        thousands(requests),
        if requests == 1 { "" } else { "s" }
    ));
    let mut time = clock(elapsed);
    // An estimate from under two seconds of work is noise.
    if let Some(f) = s.fraction.filter(|f| *f > 0.0 && *f < 1.0)
        && elapsed >= Duration::from_secs(2)
    {
        let left = elapsed.as_secs_f64() * (1.0 - f) / f;
        if left.is_finite() && left < 1e9 {
            time.push_str(&format!(", {} left", clock(Duration::from_secs_f64(left))));
        }
    }
    parts.push(time);
    if !s.waiting.is_empty() {
        parts.push(format!("waiting for {}", s.waiting.join(", ")));
    }
    crate::term::fit(
        &format!("{}: {}", s.what, parts.join(" · ")),
        width.saturating_sub(1),
    )
}

/// `1204` → `1,204`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2.3s`, `1m12s`, `1h04m`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(done: usize, total: usize, unit: &'static str) -> Count {
        Count { done, total, unit }
    }

    #[test]
    fn the_line_says_what_is_done_of_how_much_requests_and_time() {
        let s = Status {
            what: "collecting".into(),
            counts: vec![count(3, 9, "providers")],
            waiting: vec!["alpha".into(), "beta".into()],
            fraction: None,
        };
        assert_eq!(
            line(&s, 41, Duration::from_millis(2300), 100),
            "collecting: 3/9 providers · 41 requests · 2.3s · waiting for alpha, beta"
        );
        // Months and providers, with the time left estimated from the share done.
        let s = Status {
            what: "backfilling".into(),
            counts: vec![count(15, 25, "months"), count(7, 9, "providers")],
            waiting: vec![],
            fraction: Some(0.25),
        };
        let l = line(&s, 1204, Duration::from_secs(72), 80);
        assert_eq!(
            l,
            "backfilling: 15/25 months · 7/9 providers · 1,204 requests · 1m12s, 3m36s left"
        );
        assert!(l.chars().count() < 80);
        // No estimate from the first instants, nor once done.
        let early = line(&s, 1, Duration::from_millis(1500), 80);
        assert!(early.ends_with("1 request · 1.5s"), "{early}");
    }

    #[test]
    fn the_line_fits_the_terminal() {
        let s = Status {
            what: "collecting".into(),
            counts: vec![count(0, 40, "providers")],
            waiting: (0..40).map(|i| format!("provider-{i}")).collect(),
            fraction: None,
        };
        let l = line(&s, 0, Duration::from_secs(4000), 80);
        assert_eq!(l.chars().count(), 79, "{l}");
        assert!(l.ends_with('…'), "{l}");
        assert!(l.contains("1h06m"), "{l}");
    }
}
