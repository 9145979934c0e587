//! The command line: `push`, `collect`, `report`, `check`, `backfill`, their flags and help,
//! and the mapping of outcomes to exit codes. The help's list of environment variables comes
//! from the provider registry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Overrides;
use crate::exit;
use crate::providers;
use crate::run::{self, Mode, Output};
use crate::telemetry::{self, LogFormat};

const EXIT_CODES: &str = "\
Exit codes:
  0  every enabled provider was collected (and, for push, the push succeeded)
  1  the push failed: nothing, or only part, reached the Pushgateway
  2  configuration error, found before any network I/O
  3  output printed or pushed, but at least one provider failed (its error is in the metrics)
130  a second SIGTERM or SIGINT ended the run at once (the first one cancels collection and
     still pushes the statuses)";

/// The text after `--help`: exit codes, then the configuration layers with every conventional
/// variable the registry knows.
fn after_help() -> String {
    let names: Vec<&str> = providers::schema()
        .variables()
        .iter()
        .map(|v| v.var.name)
        .collect();
    let mut text = format!(
        "{EXIT_CODES}\n\nConfiguration: defaults < TOML file < COST_EXPORTER_<SECTION>__<KEY> < conventional\nvariables, each also as <NAME>_FILE (a file holding the value) < flags:\n "
    );
    let mut width = 1;
    for (i, name) in names.iter().enumerate() {
        let item = if i + 1 < names.len() {
            format!(" {name},")
        } else {
            format!(" {name}")
        };
        if width + item.len() > 92 {
            text.push_str("\n ");
            width = 1;
        }
        width += item.len();
        text.push_str(&item);
    }
    text.push_str("\n`cost-exporter check` shows where every value came from.");
    text
}

/// Collects what SaaS accounts and servers cost this month and pushes it to a Prometheus
/// Pushgateway (job `cost-exporter`, one group per provider).
#[derive(Debug, Parser)]
#[command(name = "cost-exporter", version, about)]
pub(crate) struct Cli {
    /// Config file [default: ./cost-exporter.toml if present, else /etc/cost-exporter/config.toml
    /// if present, else built-in defaults and the environment]. A file named here must exist.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Only these providers (comma-separated names as the configuration spells them: a
    /// providers section's name, or a fixed entry's provider).
    #[arg(long, global = true, value_delimiter = ',', value_name = "PROVIDER,…")]
    pub(crate) only: Option<Vec<String>>,

    /// Log format on stderr; RUST_LOG sets the level (default info; warn for report).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Collect like `collect` and print the month at a glance: per provider its status (ok,
    /// failed and why, not configured and why), spend so far, forecast, budget and the
    /// forecast's share of it, the usage closest to its limit, the next renewal; a total.
    /// Pushes nothing; exit codes as `collect`. Logs default to warnings (RUST_LOG=info for
    /// more).
    Report {
        /// How to print the month: a table for people or JSON for scripts.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Validate the configuration and say what a run will do: the config file, the
    /// Pushgateway, each provider (collected or not and why, its budget, where its credentials
    /// come from); --settings adds every effective setting and where it came from.
    Check {
        /// Also list every effective setting (secrets as ***) with where it came from: file
        /// and key, environment variable, or built-in default.
        #[arg(long)]
        settings: bool,
        /// Also make one cheap read-only call per provider and one to the Pushgateway.
        #[arg(long)]
        probe: bool,
        /// Pushgateway base URL, overriding pushgateway.url.
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
    /// Write past months from the providers' own history, one point per series per day
    /// (23:59:59 UTC), as OpenMetrics with timestamps for `promtool tsdb create-blocks-from
    /// openmetrics`, or send them with Prometheus remote write. Same names, labels and
    /// month-to-date meaning as `push`. Nothing is pushed to the Pushgateway. On a terminal,
    /// a progress line on stderr says how far it is.
    Backfill {
        /// First month, YYYY-MM (from its 1st).
        #[arg(long, value_name = "YYYY-MM")]
        from: String,
        /// Last month, YYYY-MM [default: up to yesterday, the last complete day].
        #[arg(long, value_name = "YYYY-MM")]
        to: Option<String>,
        /// Write the OpenMetrics text to FILE instead of stdout.
        #[arg(long, value_name = "FILE", conflicts_with = "remote_write")]
        output: Option<PathBuf>,
        /// Send the samples to a remote-write receiver instead (Prometheus with
        /// --web.enable-remote-write-receiver, Mimir, Thanos, VictoriaMetrics); it needs an
        /// out-of-order window wider than the backfilled span.
        #[arg(long, value_name = "URL")]
        remote_write: Option<String>,
    },
    /// List the Pushgateway groups of job cost-exporter whose provider this configuration does
    /// not have (a removed provider's spend would stay in every total); with --delete, delete
    /// them.
    Prune {
        /// Delete the groups listed (without it, only list them).
        #[arg(long)]
        delete: bool,
        /// Every group of job cost-exporter, configured or not, and the run-level group: to
        /// take the job out of a Pushgateway (rollback).
        #[arg(long)]
        all: bool,
        /// Pushgateway base URL, overriding pushgateway.url.
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout:
    /// `cost-exporter completions bash > /etc/bash_completion.d/cost-exporter`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `cost-exporter man | man -l -`.
    Man,
    /// Print every conventional environment variable: name, key it sets, whether it is a
    /// secret, and what to put in it (tab-separated; for deployment files and their checks).
    #[command(name = "env-vars", hide = true)]
    EnvVars,
}

/// Parses the command line, runs, and returns the exit code.
pub fn main() -> u8 {
    let parsed = Cli::command()
        .after_help(after_help())
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    match &cli.command {
        Command::EnvVars => return env_vars(),
        Command::Completions { shell } => {
            let mut cmd = Cli::command().after_help(after_help());
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut cmd, "cost-exporter", &mut out);
            return exit::OK;
        }
        Command::Man => {
            let cmd = Cli::command().after_help(after_help());
            let mut out = std::io::stdout().lock();
            return match clap_mangen::Man::new(cmd).render(&mut out) {
                Ok(()) => exit::OK,
                Err(_) => exit::PUSH_FAILED,
            };
        }
        _ => {}
    }
    // The table says what the info lines would (collected, not configured): warnings only,
    // unless RUST_LOG asks for more.
    let level = match cli.command {
        Command::Report { .. } => "warn",
        _ => "info",
    };
    telemetry::init(cli.log_format, level);
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let (pushgateway, mode) = match &cli.command {
        Command::Push {
            dry_run: true,
            pushgateway,
        } => (pushgateway.clone(), Some(Mode::Print)),
        Command::Push { pushgateway, .. } => (pushgateway.clone(), Some(Mode::Push)),
        Command::Collect => (None, Some(Mode::Print)),
        Command::Report { output } => (None, Some(Mode::Report(*output))),
        Command::Check { pushgateway, .. } => (pushgateway.clone(), None),
        Command::Prune { pushgateway, .. } => (pushgateway.clone(), None),
        Command::EnvVars
        | Command::Backfill { .. }
        | Command::Completions { .. }
        | Command::Man => (None, None),
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
            let (settings, plan) = match providers::load(&overrides, &env) {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::error!("{}", e.to_string().trim_end());
                    return exit::CONFIG;
                }
            };
            // The handlers are installed now, for the whole run: a signal during the push is
            // seen too (the first is reported to the run, a second exits at once).
            let (tx, mut rx) = tokio::sync::watch::channel::<Option<&'static str>>(None);
            runtime.spawn(watch_signals(tx));
            let shutdown = async move {
                loop {
                    if let Some(name) = *rx.borrow_and_update() {
                        return name;
                    }
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            let code = runtime.block_on(run::execute(&settings, plan, mode, shutdown));
            // Work done: do not wait for blocking tasks still stuck (a DNS lookup that hangs).
            runtime.shutdown_timeout(Duration::from_millis(100));
            code
        }
        (
            None,
            Command::Check {
                settings, probe, ..
            },
        ) => runtime.block_on(crate::check::run(&overrides, &env, *settings, *probe)),
        (None, Command::Prune { delete, all, .. }) => {
            let (settings, plan) = match providers::load(&overrides, &env) {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::error!("{}", e.to_string().trim_end());
                    return exit::CONFIG;
                }
            };
            runtime.block_on(crate::prune::run(&settings, &plan, *delete, *all))
        }
        (
            None,
            Command::Backfill {
                from,
                to,
                output,
                remote_write,
            },
        ) => {
            let today = match crate::clock::now() {
                Ok(t) => time::OffsetDateTime::from(t).date(),
                Err(e) => {
                    tracing::error!("{e}");
                    return exit::CONFIG;
                }
            };
            let req = match crate::backfill::Request::new(
                from,
                to.as_deref(),
                today,
                output.clone(),
                remote_write.as_deref(),
            ) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{e}");
                    return exit::CONFIG;
                }
            };
            let (settings, plan) = match providers::load(&overrides, &env) {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::error!("{}", e.to_string().trim_end());
                    return exit::CONFIG;
                }
            };
            runtime.block_on(crate::backfill::execute(&settings, plan, &req))
        }
        (None, _) => exit::CONFIG,
    }
}

/// Watches SIGTERM and SIGINT for the whole run: the first is sent to the run (which cancels
/// what is still collecting and pushes the statuses); a second ends the process at once with
/// [`exit::SIGNAL`].
async fn watch_signals(tx: tokio::sync::watch::Sender<Option<&'static str>>) {
    let first = next_signal().await;
    let _ = tx.send(Some(first));
    let second = next_signal().await;
    tracing::error!("{second} received again: exiting now, without finishing the push");
    crate::progress::abandon();
    std::process::exit(i32::from(exit::SIGNAL));
}

/// The next SIGTERM or SIGINT.
async fn next_signal() -> &'static str {
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

/// `env-vars`: one line per conventional variable, tab-separated: name, key, `secret` or
/// `value`, help.
fn env_vars() -> u8 {
    let mut text = String::new();
    for v in providers::schema().variables() {
        let kind = if v.secret { "secret" } else { "value" };
        text.push_str(&format!(
            "{}\t{}\t{kind}\t{}\n",
            v.var.name, v.key, v.var.help
        ));
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => exit::OK,
        Err(_) => exit::PUSH_FAILED,
    }
}
