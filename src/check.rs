//! `cost-exporter check`: the effective settings with where each came from (secrets as `***`),
//! then validation, the providers of the run, and with `--probe` one cheap read-only call per
//! collector and one to the Pushgateway.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use crate::config::{self, Overrides};
use crate::exit;
use crate::providers::{self, Context};
use crate::push::Pushgateway;

/// Runs `check` and returns the exit code: 0 valid (and every probe answered), 1 a probe
/// failed, 2 a configuration error.
pub(crate) async fn run(overrides: &Overrides, env: &BTreeMap<String, String>, probe: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    let loaded = match config::layer(overrides, env, &providers::schema()) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let mut text = String::new();
    match &loaded.file {
        Some(p) => {
            let _ = writeln!(text, "config file: {}", p.display());
        }
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
        let _ = writeln!(text, "  {kv:<width$}  # {origin}");
    }
    let _ = out.write_all(crate::secret::redact(&text).as_bytes());
    let (settings, plan) = match providers::configure(&loaded, overrides.only.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            let _ = out.flush();
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let mut text = String::from("providers:\n");
    for (name, p) in &plan.providers {
        if !settings.wanted(name) {
            continue;
        }
        let sources: Vec<&str> = plan
            .collectors
            .iter()
            .filter(|c| c.provider() == name)
            .map(|c| c.source())
            .collect();
        let status = match (&p.unconfigured, sources.is_empty()) {
            (Some(why), false) => {
                format!(
                    "collected ({}); API not collected: {why}",
                    sources.join(", ")
                )
            }
            (Some(why), true) => format!("not configured ({why})"),
            (None, false) => format!("collected ({})", sources.join(", ")),
            (None, true) => "not collected (budget only)".to_owned(),
        };
        let status = if p.fixed_replaced {
            format!("{status}; its [[fixed]] entries are replaced by the API's figures")
        } else {
            status
        };
        let budget = p
            .budget
            .map(|b| format!("; budget {b} {}", settings.fx.reporting()))
            .unwrap_or_default();
        let _ = writeln!(text, "  {name:<12} {status}{budget}");
    }
    for f in &settings.fixed {
        let replaced = plan
            .providers
            .get(&f.provider)
            .is_some_and(|p| p.fixed_replaced);
        if replaced {
            continue;
        }
        let _ = writeln!(
            text,
            "  fixed: {}/{} = {} {} a month",
            f.provider,
            f.name,
            f.monthly.amount.round_dp(2),
            f.monthly.currency
        );
    }
    text.push_str("configuration is valid\n");
    let _ = out.write_all(crate::secret::redact(&text).as_bytes());
    if !probe {
        return exit::OK;
    }

    let mut failed = false;
    let mut text = String::from("probes:\n");
    match Pushgateway::new(&settings.pushgateway) {
        Ok(pg) => match pg.probe().await {
            Ok(s) => {
                let _ = writeln!(text, "  pushgateway  ok: {s}");
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(text, "  pushgateway  FAILED: {e}");
            }
        },
        Err(e) => {
            failed = true;
            let _ = writeln!(text, "  pushgateway  FAILED: {e}");
        }
    }
    let http = match providers::client(&settings.http) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    let cx = Context {
        http,
        now: std::time::SystemTime::now(),
    };
    for c in &plan.collectors {
        match c.probe(&cx).await {
            Ok(s) => {
                let _ = writeln!(text, "  {:<12} ok ({}): {s}", c.provider(), c.source());
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(text, "  {:<12} FAILED ({}): {e}", c.provider(), c.source());
            }
        }
    }
    for name in &plan.unconfigured {
        let _ = writeln!(text, "  {name:<12} skipped: not configured");
    }
    let _ = out.write_all(crate::secret::redact(&text).as_bytes());
    let _ = out.flush();
    if failed { exit::PUSH_FAILED } else { exit::OK }
}
