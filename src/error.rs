//! Why a collection failed: the bounded [`Reason`] (the `reason` label of
//! `cost_collector_errors_total`) and [`CollectError`], the error every collector returns.
//!
//! A leaf: it depends on nothing else in the crate, so that collectors, the outcome model and
//! metrics can all name it.

use std::fmt;

/// Why a collection failed: the bounded `reason` label of `cost_collector_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// 401 or 403: the credential is wrong or lacks a permission.
    Auth,
    /// 429 after the retries, or a wait longer than the run allows.
    RateLimited,
    /// Another 4xx.
    Http4xx,
    /// 5xx (or 408) after the retries.
    Http5xx,
    /// The provider answered with a redirect, which is never followed.
    Redirect,
    /// A request or the collector took too long, or the run deadline passed.
    Timeout,
    /// Connection refused, reset, or cut mid-body.
    Transport,
    /// The response did not have the documented shape, or held an invalid number.
    Decode,
    /// Pagination did not end (page cap or a repeated cursor).
    Pagination,
    /// A figure could not be reported with this configuration (a missing rate, say).
    Config,
    /// The run was stopped by SIGTERM or SIGINT before the collector finished.
    Cancelled,
    /// The collector panicked: a bug.
    Internal,
    /// The provider ran a query and reported an error in it (an SQL or a logs query).
    Query,
}

impl Reason {
    /// Every reason, so that every counter series exists from the first run.
    pub const ALL: [Reason; 13] = [
        Reason::Auth,
        Reason::RateLimited,
        Reason::Http4xx,
        Reason::Http5xx,
        Reason::Redirect,
        Reason::Timeout,
        Reason::Transport,
        Reason::Decode,
        Reason::Pagination,
        Reason::Config,
        Reason::Cancelled,
        Reason::Internal,
        Reason::Query,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::RateLimited => "http_429",
            Reason::Http4xx => "http_4xx",
            Reason::Http5xx => "http_5xx",
            Reason::Redirect => "redirect",
            Reason::Timeout => "timeout",
            Reason::Transport => "transport",
            Reason::Decode => "decode",
            Reason::Pagination => "pagination",
            Reason::Config => "config",
            Reason::Cancelled => "cancelled",
            Reason::Internal => "internal",
            Reason::Query => "query",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed collection: a bounded reason plus a message for the log.
///
/// The message never holds a secret: URLs in it have no query string, response bodies are
/// truncated and scrubbed of the request's credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} [{reason}]")]
pub struct CollectError {
    /// The label value for `cost_collector_errors_total`.
    pub reason: Reason,
    /// What happened, for humans.
    pub message: String,
    /// The HTTP status, when the provider answered with an error status.
    pub status: Option<u16>,
    /// The provider's error code, when its error body carried one.
    pub code: Option<String>,
}

impl CollectError {
    /// A new error.
    pub fn new(reason: Reason, message: impl Into<String>) -> CollectError {
        CollectError {
            reason,
            message: message.into(),
            status: None,
            code: None,
        }
    }

    /// The same error, its message prefixed with where it happened.
    pub(crate) fn context(mut self, what: &str) -> CollectError {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The same error with what to fix appended, when the provider answered one of `statuses`
    /// (its authentication refusals, typically 401 and 403).
    pub(crate) fn hint_on(mut self, statuses: &[u16], fix: &str) -> CollectError {
        if self.status.is_some_and(|s| statuses.contains(&s)) {
            self.message = format!("{} ({fix})", self.message);
        }
        self
    }
}
