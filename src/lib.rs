//! `cost-exporter`: a short-lived job that collects what SaaS accounts and servers cost this
//! month and pushes it to a Prometheus Pushgateway.
//!
//! Layout, in the order data flows:
//! - [`cli`]: commands, flags, exit codes; `check`: the `check` command.
//! - [`config`]: the configuration core: layers, global sections, validation that collects
//!   every problem; names no provider. `secret` and [`money`] are its value types.
//! - [`providers`]: the registry ([`providers::PROVIDERS`]), the [`providers::Collector`]
//!   trait, and one module per provider, each owning its section and building its collector.
//! - `http`: the one provider HTTP client (GET only, no redirects, retries) and its error.
//! - [`cost`]: the plain data collectors return; [`error`]: why a collection failed;
//!   [`calendar`]: where each provider's invoices cut the months (its billing time zone).
//! - `fx`: the run's exchange rates: configured, or the ECB's daily reference rates crossed
//!   into the reporting currency with the configured ones as fallback and overrides.
//! - `outcome`: the pure outcome model: figures checked and converted, the forecast.
//! - [`run`]: concurrent collection under a deadline, push order, exit code.
//! - `report`: the month at a glance for `report`, a table for people or JSON for scripts.
//! - `progress`: the progress line on a terminal's stderr; `term`: colour and width.
//! - [`backfill`]: past months from the providers' history, as OpenMetrics with timestamps or
//!   remote write.
//! - [`metrics`]: every metric name, and rendering to exposition text.
//! - [`push`]: the Pushgateway client; `prune`: the `prune` command (stale groups).
//! - `telemetry`: log setup.
//!
//! The public surface is what the binary, the integration tests and the benchmarks use;
//! everything else is `pub(crate)`. See ARCHITECTURE.md for the invariants.

#![warn(missing_docs, unreachable_pub)]

pub mod backfill;
pub mod calendar;
mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cost;
pub mod error;
mod fx;
mod http;
pub mod metrics;
pub mod money;
mod outcome;
mod progress;
pub mod providers;
mod prune;
pub mod push;
mod report;
pub mod run;
mod secret;
mod telemetry;
mod term;

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
    /// A second SIGTERM or SIGINT ended the run at once.
    pub const SIGNAL: u8 = 130;
}
