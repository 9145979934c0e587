//! The collector seam: the [`Collector`] trait, its [`Context`], and what a validated provider
//! section yields ([`Configured`]) and a run is made of ([`Plan`]).
//!
//! A collector fetches and parses one source of figures for one provider and returns plain
//! data ([`Collection`]). It never touches Prometheus types or the Pushgateway.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use rust_decimal::Decimal;

use crate::cost::{Collection, Target};
use crate::error::{CollectError, Reason};
use crate::http::{HttpError, HttpErrorKind, ProviderHttp};
use crate::providers::wire;

/// A source of figures for one provider.
#[async_trait::async_trait]
pub trait Collector: Send + Sync {
    /// The provider the figures belong to: the `provider` grouping label.
    fn provider(&self) -> &str;

    /// The kind of source, for logs and `check`: `fixed`, or the provider module's name.
    fn source(&self) -> &'static str;

    /// Whose figures: the provider, and the named account when the source is one account of
    /// several (the plan wraps such collectors in [`Accounted`]).
    fn target(&self) -> Target {
        Target::provider(self.provider())
    }

    /// Fetches the current month-to-date figures.
    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError>;

    /// Makes one cheap read-only call and says what it found (`check --probe`).
    async fn probe(&self, cx: &Context) -> Result<String, CollectError>;

    /// The month-to-date figures at the end of each day of `days` (at most one calendar
    /// month), from the provider's own history, for `backfill`. `Ok(None)`: this source keeps
    /// no history (the default).
    async fn history(&self, _cx: &Context, _days: Days) -> Result<Option<History>, CollectError> {
        Ok(None)
    }
}

/// One month of history: each day (in order) with the month-to-date figures at its end.
pub type History = Vec<(time::Date, Collection)>;

/// Days of one calendar month, for [`Collector::history`]: from the 1st to `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    /// The 1st of the month.
    pub first: time::Date,
    /// The last day wanted (at most the month's last day).
    pub last: time::Date,
}

impl Days {
    /// The days from `first`'s month start to `last` (clamped to that month).
    pub(crate) fn month_of(first: time::Date, last: time::Date) -> Days {
        let first = first.replace_day(1).unwrap_or(first);
        let month_end = first
            .replace_day(first.month().length(first.year()))
            .unwrap_or(first);
        Days {
            first,
            last: last.min(month_end),
        }
    }

    /// Every day, in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = time::Date> {
        std::iter::successors(Some(self.first), move |d| {
            d.next_day().filter(|n| *n <= self.last)
        })
    }

    /// 00:00 UTC on the 1st.
    pub(crate) fn start(self) -> time::OffsetDateTime {
        self.first.midnight().assume_utc()
    }

    /// 00:00 UTC the day after `last`: where the month-to-date window ends.
    pub(crate) fn end(self) -> time::OffsetDateTime {
        self.last.midnight().assume_utc() + time::Duration::DAY
    }

    /// The end of `day`, 23:59:59 UTC: when its month-to-date figures are stamped.
    pub(crate) fn end_of(day: time::Date) -> SystemTime {
        (day.midnight().assume_utc() + time::Duration::DAY - time::Duration::SECOND).into()
    }

    /// The day a timestamp falls on, UTC.
    pub(crate) fn day_of(t: time::OffsetDateTime) -> time::Date {
        t.to_offset(time::UtcOffset::UTC).date()
    }
}

/// What the runner hands every collector.
pub struct Context {
    /// The shared provider client (GET only, no redirects, timeouts, retries).
    pub(crate) http: ProviderHttp,
    /// The run's clock: the billing month and every timestamp derive from it.
    pub(crate) now: SystemTime,
}

impl Context {
    /// The first of the run's month, 00:00 UTC: where every month-to-date window starts.
    pub(crate) fn month_start(&self) -> time::OffsetDateTime {
        let now = time::OffsetDateTime::from(self.now);
        now.replace_day(1)
            .map(|d| d.replace_time(time::Time::MIDNIGHT))
            .unwrap_or(now)
    }

    /// The run's billing month in `calendar`: where a provider's invoices cut it.
    pub(crate) fn month(&self, calendar: crate::calendar::Calendar) -> crate::calendar::Month {
        calendar.month_of(self.now)
    }

    /// The month so far, `from` and `to` as RFC 3339 (whole seconds, UTC).
    pub(crate) fn month_window(&self) -> (String, String) {
        (
            wire::rfc3339(self.month_start()),
            wire::rfc3339(time::OffsetDateTime::from(self.now)),
        )
    }
}

impl From<HttpError> for CollectError {
    /// The bounded reason of a failed request; status and provider error code kept as fields.
    fn from(e: HttpError) -> CollectError {
        let reason = match e.kind {
            HttpErrorKind::Auth => Reason::Auth,
            HttpErrorKind::RateLimited => Reason::RateLimited,
            HttpErrorKind::Client => Reason::Http4xx,
            HttpErrorKind::Server => Reason::Http5xx,
            HttpErrorKind::Redirect => Reason::Redirect,
            HttpErrorKind::Timeout => Reason::Timeout,
            HttpErrorKind::Transport => Reason::Transport,
            HttpErrorKind::Body => Reason::Decode,
            HttpErrorKind::Request => Reason::Config,
            HttpErrorKind::Refused => Reason::Internal,
        };
        CollectError {
            reason,
            message: e.message,
            status: e.status,
            code: e.code,
        }
    }
}

/// What a valid provider section yields.
pub(crate) struct Configured {
    /// Absolute monthly budget in the reporting currency.
    pub(crate) budget: Option<Decimal>,
    /// The provider's API part.
    pub(crate) api: Api,
}

/// The API part of a provider, decided once by its section's validation.
pub(crate) enum Api {
    /// No API module: a provider known by its budget and `[[fixed]]` entries only.
    None,
    /// Credentials and settings are complete: this collector runs.
    Collector(Arc<dyn Collector>),
    /// Known but not collected: no credentials are set.
    NoCredentials,
    /// Known but not collected: credentials are set, yet something the collector needs is
    /// missing (said here, and logged as a warning by the module).
    Incomplete(String),
}

/// A collector for one named account of its provider: the same source, its figures in the
/// account's own group (`account` label).
pub(crate) struct Accounted {
    inner: Arc<dyn Collector>,
    account: String,
}

impl Accounted {
    pub(crate) fn new(inner: Arc<dyn Collector>, account: &str) -> Accounted {
        Accounted {
            inner,
            account: account.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Collector for Accounted {
    fn provider(&self) -> &str {
        self.inner.provider()
    }

    fn source(&self) -> &'static str {
        self.inner.source()
    }

    fn target(&self) -> Target {
        Target::account(self.inner.provider(), &self.account)
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        self.inner.collect(cx).await
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        self.inner.probe(cx).await
    }

    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        self.inner.history(cx, days).await
    }
}

/// A provider (or a named account of one) of this run's configuration, whether or not
/// `--only` selects it.
pub(crate) struct Planned {
    /// Its budget.
    pub(crate) budget: Option<Decimal>,
    /// Why its API is not collected, for a provider with an API module that is not.
    pub(crate) unconfigured: Option<String>,
    /// Its `[[fixed]]` entries are left out: its API's figures replace them.
    pub(crate) fixed_replaced: bool,
}

/// What one run does: the collectors to run and the providers to report as not configured
/// (both restricted to `--only`), and every configured provider's budget.
pub struct Plan {
    /// One entry per source; several may share a provider.
    pub collectors: Vec<Arc<dyn Collector>>,
    /// Providers (or accounts) with an API module but no collector and no `[[fixed]]` entry:
    /// exported as not configured.
    pub unconfigured: BTreeSet<Target>,
    /// Every provider and named account of the configuration.
    pub(crate) providers: BTreeMap<Target, Planned>,
    /// Budgets of providers with named accounts, over all their accounts.
    pub(crate) totals: BTreeMap<String, Decimal>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<String> = self
            .collectors
            .iter()
            .map(|c| format!("{}/{}", c.target(), c.source()))
            .collect();
        f.debug_struct("Plan")
            .field("collectors", &sources)
            .field("unconfigured", &self.unconfigured)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Plan {
    /// A plan that runs exactly `collectors`, with no budget and nothing unconfigured.
    pub fn of(collectors: Vec<Arc<dyn Collector>>) -> Plan {
        Plan {
            collectors,
            unconfigured: BTreeSet::new(),
            providers: BTreeMap::new(),
            totals: BTreeMap::new(),
        }
    }

    /// Whether the target is in the configuration (a section, an account or `[[fixed]]`
    /// entries; a provider's own group when it has a total budget over its accounts): its
    /// group is refreshed by every run.
    pub(crate) fn knows(&self, target: &Target) -> bool {
        self.providers.contains_key(target)
            || self.unconfigured.contains(target)
            || (target.account.is_none() && self.totals.contains_key(&target.provider))
    }

    /// The budget of the target, if it has one.
    pub(crate) fn budget(&self, target: &Target) -> Option<Decimal> {
        self.providers.get(target).and_then(|p| p.budget)
    }

    /// Why the target's API is not collected (no credentials, or what else is missing), for a
    /// provider with an API module that is not: not configured, or collected from its
    /// `[[fixed]]` entries only.
    pub(crate) fn why_not_collected(&self, target: &Target) -> Option<&str> {
        self.providers
            .get(target)
            .and_then(|p| p.unconfigured.as_deref())
    }

    /// Providers with named accounts and a total budget over them, selected by `--only`'s
    /// choice of collectors (any account of the provider in the run).
    pub(crate) fn totals(&self) -> impl Iterator<Item = (&str, Decimal)> {
        self.totals.iter().map(|(p, b)| (p.as_str(), *b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_month_window_starts_on_the_first_at_midnight_utc() {
        let settings = crate::config::HttpSettings {
            timeout: std::time::Duration::from_secs(1),
            connect_timeout: std::time::Duration::from_secs(1),
            retries: 0,
            max_retry_after: std::time::Duration::from_secs(1),
        };
        let http = ProviderHttp::new(
            &settings,
            crate::http::RetryPolicy::from_settings(&settings),
            &[],
        )
        .unwrap();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_534_317);
        let cx = Context { http, now };
        let (from, to) = cx.month_window();
        assert_eq!(from, "2026-11-01T00:00:00Z");
        assert!(to.starts_with("2026-11-24T"), "{to}");
        assert_eq!(cx.month_start().unix_timestamp(), 1_793_491_200);
    }
}
