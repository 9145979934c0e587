//! `cost-exporter check`: what a run will do, first: the configuration file, the
//! Pushgateway, the reporting currency, and each provider (collected or not and why, its
//! budget, where its credentials come from); with `--settings` every effective setting with
//! where it came from (secrets as `***`); with `--probe` one cheap read-only call per
//! collector and one to the Pushgateway (a progress line on a terminal while they run).
//! Everything printed passes through [`crate::secret::redact`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::config::{self, Loaded, Overrides, Settings};
use crate::exit;
use crate::progress::{self, Progress};
use crate::providers::{self, Context, Plan};
use crate::push::Pushgateway;

/// A setting as `check --settings` lists it: key, value as shown, origin.
type Row = (String, String, String);

/// Runs `check` and returns the exit code: 0 valid (and every probe answered), 1 a probe
/// failed, 2 a configuration error.
pub(crate) async fn run(
    overrides: &Overrides,
    env: &BTreeMap<String, String>,
    list_settings: bool,
    probe: bool,
) -> u8 {
    let mut out = std::io::stdout().lock();
    let loaded = match config::layer(overrides, env, &providers::schema()) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let rows = loaded.effective();
    let (settings, plan) = match providers::configure(&loaded, overrides.only.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            // The settings as read help find where a wrong value came from.
            if list_settings {
                let _ = out.write_all(crate::secret::redact(&settings_list(&rows)).as_bytes());
                let _ = out.flush();
            }
            tracing::error!("{}", e.to_string().trim_end());
            return exit::CONFIG;
        }
    };
    let mut text = summary(&loaded, &rows, &settings, &plan);
    text.push_str("configuration is valid\n");
    if list_settings {
        text.push('\n');
        text.push_str(&settings_list(&rows));
    } else {
        let _ = writeln!(
            text,
            "check --settings lists all {} settings and where each came from;\n\
             check --probe calls each provider and the Pushgateway once",
            rows.len()
        );
    }
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
    let _ = out.flush();
    let progress = Progress::start(
        progress::Status {
            what: "probing".into(),
            ..Default::default()
        },
        http.sent(),
        Duration::from_secs(1),
    );
    let cx = Context {
        http,
        now: std::time::SystemTime::now(),
    };
    for (i, c) in plan.collectors.iter().enumerate() {
        progress.update(|s| {
            s.counts = vec![progress::Count {
                done: i,
                total: plan.collectors.len(),
                unit: "sources",
            }];
            s.waiting = vec![format!("{} ({})", c.provider(), c.source())];
        });
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
    progress.finish();
    for name in &plan.unconfigured {
        let _ = writeln!(text, "  {name:<12} skipped: not configured");
    }
    let _ = out.write_all(crate::secret::redact(&text).as_bytes());
    let _ = out.flush();
    if failed { exit::PUSH_FAILED } else { exit::OK }
}

/// Every effective setting with where it came from, secrets as `***`.
fn settings_list(rows: &[Row]) -> String {
    let mut text = String::from("effective settings (secrets shown as ***):\n");
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (k, v, origin) in rows {
        let kv = format!("{k} = {v}");
        let _ = writeln!(text, "  {kv:<width$}  # {origin}");
    }
    text
}

/// The first screen: file, Pushgateway, currency, and what happens to each provider.
fn summary(loaded: &Loaded, rows: &[Row], settings: &Settings, plan: &Plan) -> String {
    let mut text = String::new();
    match &loaded.file {
        Some(p) => {
            let _ = writeln!(text, "config file: {}", p.display());
        }
        None => text.push_str("config file: none (built-in defaults and the environment only)\n"),
    }
    let pg = &settings.pushgateway;
    let auth = if pg.basic_auth.is_some() {
        "basic auth"
    } else {
        "no basic auth"
    };
    let _ = writeln!(
        text,
        "pushgateway: {}, job cost-exporter, {auth}\n  url from {}",
        config::redact_url(pg.url.as_str()),
        loaded.origin("pushgateway.url")
    );
    if pg.basic_auth.is_some()
        && let Some(from) = credentials(rows, "pushgateway.")
    {
        let _ = writeln!(text, "  {from}");
    }
    let currency = settings.fx.reporting();
    let rates: Vec<String> = settings
        .fx
        .rates()
        .map(|(c, r)| format!("1 {c} = {} {currency}", r.value))
        .collect();
    let rates = match (&settings.fx_source, rates.is_empty()) {
        (Some(_), true) => "rates from the ECB".to_owned(),
        (Some(_), false) => format!("rates from the ECB, else {}", rates.join(", ")),
        (None, true) => "no exchange rate needed".to_owned(),
        (None, false) => rates.join(", "),
    };
    let _ = writeln!(
        text,
        "currency: {currency}, tax {}; {rates}",
        settings.tax.as_str()
    );

    let mut fixed: BTreeMap<&str, Vec<&config::FixedEntry>> = BTreeMap::new();
    for f in &settings.fixed {
        fixed.entry(f.provider.as_str()).or_default().push(f);
    }
    let wanted: Vec<(&providers::Target, &providers::Planned)> = plan
        .providers
        .iter()
        .filter(|(target, _)| settings.wanted(target))
        .collect();
    let collected = wanted
        .iter()
        .filter(|(target, _)| plan.collectors.iter().any(|c| c.target() == **target))
        .count();
    let _ = writeln!(
        text,
        "providers: a run collects {collected} of {}{}, budgets in {currency}",
        wanted.len(),
        if settings.only.is_some() {
            " (--only)"
        } else {
            ""
        }
    );
    let width = wanted
        .iter()
        .map(|(n, _)| n.to_string().len())
        .max()
        .unwrap_or(0)
        .max(10);
    for (target, p) in wanted {
        let sources: Vec<&str> = plan
            .collectors
            .iter()
            .filter(|c| c.target() == *target)
            .map(|c| c.source())
            .collect();
        let name = target.to_string();
        let section = match &target.account {
            None => format!("providers.{}.", target.provider),
            Some(a) => format!("providers.{}.accounts.{a}.", target.provider),
        };
        let api: Vec<&str> = sources.iter().copied().filter(|s| *s != "fixed").collect();
        let entries = if p.fixed_replaced {
            None
        } else {
            target
                .account
                .is_none()
                .then(|| fixed.get(target.provider.as_str()))
                .flatten()
                .map(|e| fixed_text(e, settings))
        };
        let mut what: Vec<String> = Vec::new();
        if !api.is_empty() {
            what.push(format!("API: {}", api.join(", ")));
        }
        what.extend(entries);
        let mut more: Vec<String> = Vec::new();
        let status = match (&p.unconfigured, sources.is_empty()) {
            (Some(why), false) => {
                more.push(format!("API not collected: {why}"));
                format!("collected ({})", what.join("; "))
            }
            (Some(why), true) => format!("not configured ({why})"),
            (None, false) => format!("collected ({})", what.join("; ")),
            (None, true) => "not collected (budget only)".to_owned(),
        };
        if let Some(from) = credentials(rows, &section) {
            more.push(format!("credentials: {from}"));
        }
        if p.fixed_replaced {
            more.push("its [[fixed]] entries are replaced by the API's figures".to_owned());
        }
        let budget = p
            .budget
            .map(|b| format!("; budget {b}"))
            .unwrap_or_default();
        let _ = writeln!(text, "  {name:<width$}  {status}{budget}");
        for m in more {
            let _ = writeln!(text, "  {:<width$}  {m}", "");
        }
    }
    for (provider, budget) in plan.totals() {
        let _ = writeln!(
            text,
            "  {provider:<width$}  budget {budget} over its accounts"
        );
    }
    text
}

/// `[[fixed]] name, 6.00 EUR a month` or `4 [[fixed]] entries, 250.00 EUR a month`, in the
/// reporting currency; a yearly entry due in its month as `18.00 EUR a year in March`, one
/// without `since` said to be spread.
fn fixed_text(entries: &[&config::FixedEntry], settings: &Settings) -> String {
    let money = |s: Option<Decimal>, per: &str| match s {
        Some(s) => format!("{:.2} {} {per}", s.round_dp(2), settings.fx.reporting()),
        None => "an amount beyond conversion".to_owned(),
    };
    let mut parts = Vec::new();
    // Monthly entries, and yearly ones spread over the months.
    let monthly: Vec<&&config::FixedEntry> =
        entries.iter().filter(|e| !e.yearly || e.spread()).collect();
    if !monthly.is_empty() {
        let sum = monthly.iter().try_fold(Decimal::ZERO, |sum, e| {
            settings
                .fx
                .convert(e.monthly_share())
                .ok()
                .and_then(|v| sum.checked_add(v))
        });
        parts.push(money(sum, "a month"));
    }
    let named = |e: &config::FixedEntry| {
        if entries.len() > 1 {
            format!(" ({})", e.name)
        } else {
            String::new()
        }
    };
    for e in entries.iter().filter(|e| e.yearly) {
        if let Some(s) = e.since {
            parts.push(format!(
                "{} in {}{}",
                money(settings.fx.convert(e.amount).ok(), "a year"),
                s.month(),
                named(e)
            ));
        }
    }
    let spread: Vec<&str> = entries
        .iter()
        .filter(|e| e.spread())
        .map(|e| e.name.as_str())
        .collect();
    if !spread.is_empty() {
        parts.push(format!(
            "yearly spread over the months{} (no `since`: the month it falls due is unknown)",
            if entries.len() > 1 {
                format!(": {}", spread.join(", "))
            } else {
                String::new()
            }
        ));
    }
    let amount = parts.join(", ");
    match entries {
        [one] => format!("[[fixed]] {}, {amount}", one.name),
        many => format!("{} [[fixed]] entries, {amount}", many.len()),
    }
}

/// Where the secrets under `prefix` came from: `token from environment variable X`, or
/// `None` when none is set.
fn credentials(rows: &[Row], prefix: &str) -> Option<String> {
    let found: Vec<String> = rows
        .iter()
        .filter(|(k, v, _)| v == "***" && k.starts_with(prefix))
        .map(|(k, _, origin)| format!("{} from {origin}", &k[prefix.len()..]))
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}
