//! `prune`: the Pushgateway groups of job `cost-exporter` whose provider the configuration no
//! longer has. A removed provider's group would otherwise stay forever: its spend in every total,
//! stale after a day. Lists them; with `--delete`, deletes them. Groups of configured providers
//! and the run-level group are never touched, unless `--all` asks for every group (rollback).

use crate::config::Settings;
use crate::exit;
use crate::providers::Plan;
use crate::push::Pushgateway;

/// Lists (and with `delete`, deletes) the stale groups, or with `all` every group of the job;
/// the exit code.
pub(crate) async fn run(settings: &Settings, plan: &Plan, delete: bool, all: bool) -> u8 {
    let pg = match Pushgateway::new(&settings.pushgateway) {
        Ok(pg) => pg,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    let groups = match pg.provider_groups().await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return exit::PUSH_FAILED;
        }
    };
    let stale: Vec<(crate::cost::Target, Option<f64>)> = groups
        .into_iter()
        .filter(|(p, _)| all || !plan.knows(p))
        .collect();
    let mut out = String::new();
    if stale.is_empty() && !all {
        out.push_str("no stale group: every provider group in the Pushgateway is configured\n");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut code = exit::OK;
    for (provider, pushed) in &stale {
        // A name from the Pushgateway, printed with its control characters escaped.
        let shown = match &provider.account {
            None => provider.provider.escape_debug().to_string(),
            Some(a) => format!(
                "{}  account={}",
                provider.provider.escape_debug(),
                a.escape_debug()
            ),
        };
        let age = pushed.map_or_else(
            || "push time unknown".to_owned(),
            |t| {
                let days = ((now - t) / 86_400.0).max(0.0);
                format!("last pushed {days:.1} days ago")
            },
        );
        if delete {
            match pg.delete_provider(provider).await {
                Ok(()) => out.push_str(&format!("deleted   provider={shown}  ({age})\n")),
                Err(e) => {
                    tracing::error!("{e}");
                    code = exit::PUSH_FAILED;
                }
            }
        } else {
            let word = if all { "group     " } else { "stale     " };
            out.push_str(&format!("{word}provider={shown}  ({age})\n"));
        }
    }
    if all {
        if delete {
            match pg.delete_run_group().await {
                Ok(()) => out.push_str("deleted   the run-level group\n"),
                Err(e) => {
                    tracing::error!("{e}");
                    code = exit::PUSH_FAILED;
                }
            }
        } else {
            out.push_str("and       the run-level group\n");
        }
    }
    if !delete && (all || !stale.is_empty()) {
        let flags = if all { "--all --delete" } else { "--delete" };
        out.push_str(&format!(
            "run `cost-exporter prune {flags}` to delete these groups\n"
        ));
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        if stdout.write_all(out.as_bytes()).is_err() {
            return exit::PUSH_FAILED;
        }
    }
    code
}
