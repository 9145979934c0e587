//! The collector seam: the `Collector` trait, its `Context`, `CollectError`, and `build`, the
//! one place that knows every collector.
//!
//! A collector fetches and parses one source of figures for one provider and returns plain
//! data ([`Collection`]). It never touches Prometheus types or the Pushgateway.

pub mod ai;
pub mod fixed;
pub mod supabase;
pub mod vercel;
pub mod wasabi;
pub mod wire;

pub use crate::error::{CollectError, Reason};
pub use ai::{anthropic, openai};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Settings;
use crate::cost::Collection;
use crate::http::{HttpError, HttpErrorKind, ProviderHttp};

/// A source of figures for one provider.
#[async_trait::async_trait]
pub trait Collector: Send + Sync {
    /// The provider the figures belong to: the `provider` grouping label.
    fn provider(&self) -> &str;

    /// The kind of source, for logs: `fixed`, `vercel`, …
    fn source(&self) -> &'static str;

    /// Fetches the current month-to-date figures.
    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError>;

    /// Makes one cheap read-only call and says what it found (`check --probe`).
    async fn probe(&self, cx: &Context) -> Result<String, CollectError>;
}

/// What the runner hands every collector.
pub struct Context {
    /// The shared provider client (GET only, no redirects, timeouts, retries).
    pub http: ProviderHttp,
    /// The run's clock: the billing month and every timestamp derive from it.
    pub now: SystemTime,
}

impl Context {
    /// The first of the run's month, 00:00 UTC: where every month-to-date window starts.
    pub fn month_start(&self) -> time::OffsetDateTime {
        let now = time::OffsetDateTime::from(self.now);
        now.replace_day(1)
            .map(|d| d.replace_time(time::Time::MIDNIGHT))
            .unwrap_or(now)
    }

    /// The month so far, `from` and `to` as RFC 3339 (whole seconds, UTC).
    pub fn month_window(&self) -> (String, String) {
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

/// The collectors for one run, and the providers that are known but not collected.
pub struct Registry {
    /// One entry per source; several may share a provider.
    pub collectors: Vec<Arc<dyn Collector>>,
    /// Providers with a config section but no credentials: exported as not configured.
    pub unconfigured: BTreeSet<String>,
}

/// The API collector of a provider with credentials, where this build has one.
fn api_collector(
    name: &str,
    api: &crate::config::ApiSettings,
    settings: &Settings,
) -> Option<Arc<dyn Collector>> {
    match name {
        "vercel" => vercel::Vercel::new(api).map(|c| Arc::new(c) as Arc<dyn Collector>),
        "anthropic" => anthropic::Anthropic::new(api).map(|c| Arc::new(c) as Arc<dyn Collector>),
        "openai" => openai::OpenAi::new(api).map(|c| Arc::new(c) as Arc<dyn Collector>),
        "wasabi" => wasabi::Wasabi::new(api).map(|c| Arc::new(c) as Arc<dyn Collector>),
        "supabase" => {
            let fee_in_fixed = settings.fixed.iter().any(|f| f.provider == "supabase");
            supabase::Supabase::new(api, fee_in_fixed).map(|c| Arc::new(c) as Arc<dyn Collector>)
        }
        _ => None,
    }
}

/// Builds the collectors the settings enable, restricted to `settings.only` when set.
pub fn build(settings: &Settings) -> Registry {
    let wanted = |p: &str| settings.only.as_ref().is_none_or(|o| o.contains(p));
    let mut collectors: Vec<Arc<dyn Collector>> = Vec::new();
    for (provider, entries) in fixed::by_provider(&settings.fixed) {
        if wanted(&provider) {
            collectors.push(Arc::new(fixed::Fixed::new(provider, entries)));
        }
    }
    let mut unconfigured = BTreeSet::new();
    for (name, p) in &settings.providers {
        if !wanted(name) {
            continue;
        }
        if let Some(api) = &p.api {
            if let Some(c) = api_collector(name, api, settings) {
                collectors.push(c);
                continue;
            }
            let has_fixed = collectors.iter().any(|c| c.provider() == name);
            let what = if has_fixed {
                "only its [[fixed]] entries are reported"
            } else {
                "exporting it as not configured"
            };
            if api.has_credentials() {
                tracing::warn!(
                    provider = %name,
                    "credentials are set, but this build has no {name} collector yet; {what}"
                );
            } else {
                tracing::info!(provider = %name, "no API credentials set; {what}");
            }
            if !collectors.iter().any(|c| c.provider() == name) {
                unconfigured.insert(name.clone());
            }
        }
    }
    Registry {
        collectors,
        unconfigured,
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
