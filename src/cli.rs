//! The command line: `push`, `collect`, `check`, their flags and help, and the mapping of
//! outcomes to exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Overrides};
use crate::exit;
use crate::http::{ProviderHttp, RetryPolicy};
use crate::providers;
use crate::push::Pushgateway;
use crate::run::{self, Mode};
use crate::telemetry::{self, LogFormat};

const EXIT_CODES: &str = "\
Exit codes:
  0  every enabled provider was collected (and, for push, the push succeeded)
  1  the push failed: nothing, or only part, reached the Pushgateway
  2  configuration error, found before any network I/O
  3  output printed or pushed, but at least one provider failed (its error is in the metrics)

Configuration: defaults < TOML file < COST_EXPORTER_<SECTION>__<KEY> < conventional variables
(VERCEL_API_TOKEN, SUPABASE_ACCESS_TOKEN, WASABI_ACCESS_KEY, ANTHROPIC_ADMIN_KEY,
PUSHGATEWAY_PASSWORD, … and each with _FILE) < flags. `cost-exporter check` shows where every
value came from.";

/// Collects what SaaS accounts and servers cost this month and pushes it to a Prometheus
/// Pushgateway (job `cost-exporter`, one group per provider).
#[derive(Debug, Parser)]
#[command(name = "cost-exporter", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Config file [default: ./cost-exporter.toml if present, else /etc/cost-exporter/config.toml
    /// if present, else built-in defaults and the environment]. A file named here must exist.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Only these providers (comma-separated names, as in the config: vercel,ovh).
    #[arg(long, global = true, value_delimiter = ',', value_name = "PROVIDER,…")]
    pub only: Option<Vec<String>>,

    /// Log format on stderr; RUST_LOG sets the level (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect from every enabled provider and push to the Pushgateway (the scheduled entry point).
    Push {
        /// Collect and print instead of pushing (same as `collect`).
        #[arg(long)]
        dry_run: bool,
        /// Pushgateway base URL, overriding pushgateway.url.
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
    /// Collect and print the exposition text on stdout; push nothing.
    Collect,
    /// Validate the configuration and print the effective settings and where each came from.
    Check {
        /// Also make one cheap read-only call per provider and one to the Pushgateway.
        #[arg(long)]
        probe: bool,
        /// Pushgateway base URL, overriding pushgateway.url.
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
}

/// Parses the command line, runs, and returns the exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::CONFIG
            } else {
                exit::OK
            };
        }
    };
    telemetry::init(cli.log_format);
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let (pushgateway, mode) = match &cli.command {
        Command::Push {
            dry_run: true,
            pushgateway,
        } => (pushgateway.clone(), Some(Mode::Print)),
        Command::Push { pushgateway, .. } => (pushgateway.clone(), Some(Mode::Push)),
        Command::Collect => (None, Some(Mode::Print)),
        Command::Check { pushgateway, .. } => (pushgateway.clone(), None),
    };
    let overrides = Overrides {
        config: cli.config.clone(),
        only: cli.only.clone(),
        pushgateway_url: pushgateway,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return exit::PUSH_FAILED;
        }
    };
    match (mode, &cli.command) {
        (Some(mode), _) => {
            let settings = match config::load(&overrides, &env) {
                Ok((_, s)) => s,
                Err(e) => {
                    tracing::error!("{}", e.to_string().trim_end());
                    return exit::CONFIG;
                }
            };
            let registry = providers::build(&settings);
            runtime.block_on(run::execute(&settings, registry, mode, shutdown_signal()))
        }
        (None, Command::Check { probe, .. }) => runtime.block_on(check(&overrides, &env, *probe)),
        (None, _) => exit::CONFIG,
    }
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// `check`: the effective settings with origins, then validation, then optional probes.
async fn check(overrides: &Overrides, env: &BTreeMap<String, String>, probe: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    let loaded = match config::layer(overrides, env) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let mut text = String::new();
    match &loaded.file {
        Some(p) => text.push_str(&format!("config file: {}\n", p.display())),
        None => text.push_str("config file: none (built-in defaults and the environment only)\n"),
    }
    text.push_str("effective settings (secrets shown as ***):\n");
    let rows = loaded.effective();
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (k, v, origin) in &rows {
        let kv = format!("{k} = {v}");
        text.push_str(&format!("  {kv:<width$}  # {origin}\n"));
    }
    let _ = out.write_all(text.as_bytes());
    let settings = match loaded.settings(overrides.only.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            let _ = out.flush();
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let registry = providers::build(&settings);
    let mut text = String::from("providers:\n");
    for (name, p) in &settings.providers {
        if settings.only.as_ref().is_some_and(|o| !o.contains(name)) {
            continue;
        }
        let sources: Vec<&str> = registry
            .collectors
            .iter()
            .filter(|c| c.provider() == name)
            .map(|c| c.source())
            .collect();
        let api_missing = p.api.as_ref().is_some_and(|a| !a.has_credentials());
        let status = if !sources.is_empty() && api_missing {
            format!(
                "collected ({}); API not collected: no credentials",
                sources.join(", ")
            )
        } else if !sources.is_empty() {
            format!("collected ({})", sources.join(", "))
        } else if p.api.as_ref().is_some_and(|a| a.has_credentials()) {
            "credentials set, no collector in this build: not configured".to_owned()
        } else {
            "not configured (no credentials)".to_owned()
        };
        let budget = p
            .budget
            .map(|b| format!("; budget {b} {}", settings.fx.reporting()))
            .unwrap_or_default();
        text.push_str(&format!("  {name:<12} {status}{budget}\n"));
    }
    for f in &settings.fixed {
        text.push_str(&format!(
            "  fixed: {}/{} = {} {} a month\n",
            f.provider,
            f.name,
            f.monthly.amount.round_dp(2),
            f.monthly.currency
        ));
    }
    text.push_str("configuration is valid\n");
    let _ = out.write_all(text.as_bytes());
    if !probe {
        return exit::OK;
    }

    let mut failed = false;
    let mut text = String::from("probes:\n");
    match Pushgateway::new(&settings.pushgateway) {
        Ok(pg) => match pg.probe().await {
            Ok(s) => text.push_str(&format!("  pushgateway  ok: {s}\n")),
            Err(e) => {
                failed = true;
                text.push_str(&format!("  pushgateway  FAILED: {e}\n"));
            }
        },
        Err(e) => {
            failed = true;
            text.push_str(&format!("  pushgateway  FAILED: {e}\n"));
        }
    }
    let http = match ProviderHttp::new(&settings.http, RetryPolicy::from_settings(&settings.http)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    let cx = providers::Context {
        http,
        now: std::time::SystemTime::now(),
    };
    for c in &registry.collectors {
        match c.probe(&cx).await {
            Ok(s) => text.push_str(&format!(
                "  {:<12} ok ({}): {s}\n",
                c.provider(),
                c.source()
            )),
            Err(e) => {
                failed = true;
                text.push_str(&format!(
                    "  {:<12} FAILED ({}): {e}\n",
                    c.provider(),
                    c.source()
                ));
            }
        }
    }
    for name in &registry.unconfigured {
        text.push_str(&format!("  {name:<12} skipped: not configured\n"));
    }
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if failed { exit::PUSH_FAILED } else { exit::OK }
}
