//! `cost-exporter`: a short-lived job that collects what SaaS accounts and servers cost this
//! month and pushes it to a Prometheus Pushgateway.
//!
//! Layout, in the order data flows:
//! - [`cli`]: commands, flags, exit codes.
//! - [`config`]: figment layers and validation into [`config::Settings`]; [`secret`] and
//!   [`money`] are its value types.
//! - [`collectors`]: the `Collector` trait and the registry; one module per provider.
//! - [`http`]: the one provider HTTP client (GET only, no redirects, retries).
//! - [`cost`]: the plain data collectors return.
//! - [`outcome`]: the pure outcome model: figures checked and converted, the forecast.
//! - [`run`]: concurrent collection under a deadline, push order, exit code.
//! - [`metrics`]: every metric name, and rendering to exposition text.
//! - [`push`]: the Pushgateway client.
//! - [`telemetry`]: log setup.
//!
//! See ARCHITECTURE.md for the invariants.

pub mod cli;
pub mod config;
pub mod cost;
pub mod error;
pub mod http;
pub mod metrics;
pub mod money;
pub mod outcome;
pub mod providers;
pub mod push;
pub mod run;
pub mod secret;
pub mod telemetry;

/// Exit codes, as the README documents them.
pub mod exit {
    /// Every enabled provider collected, and the push (if any) succeeded.
    pub const OK: u8 = 0;
    /// The push failed: nothing, or only part, reached the Pushgateway.
    pub const PUSH_FAILED: u8 = 1;
    /// Configuration error, detected before any network I/O.
    pub const CONFIG: u8 = 2;
    /// Printed or pushed, but at least one provider failed.
    pub const PARTIAL: u8 = 3;
}
