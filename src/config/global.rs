//! The global sections (`currency`, `[pushgateway]`, `[run]`, `[http]`, `[fx]`, `[[fixed]]`),
//! their built-in defaults, and [`validate`]: one pass over them and every provider section,
//! collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use figment::value::Value;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use url::Url;

use super::section::{Checker, Section};
use super::values::HumanDuration;
use super::{
    ConfigError, FixedEntry, FxSource, HttpSettings, Loaded, PushgatewaySettings, RunSettings,
    Settings,
};
use crate::cost::Target;
use crate::money::{ConfigDecimal, Currency, Fx, Money, TaxBasis};
use crate::secret::RawSecret;

/// The whole file as deserialized; provider sections stay raw values here, for their modules.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConfig {
    currency: String,
    tax: String,
    pushgateway: RawPushgateway,
    run: RawRun,
    http: RawHttp,
    fx: RawFx,
    providers: BTreeMap<String, Value>,
    fixed: Vec<RawFixed>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            currency: "USD".into(),
            tax: "excluded".into(),
            pushgateway: RawPushgateway::default(),
            run: RawRun {
                timeout: HumanDuration(Duration::from_secs(300)),
                push_timeout: default_push_timeout(),
                accounts_at_once: default_accounts_at_once(),
            },
            http: RawHttp {
                timeout: HumanDuration(Duration::from_secs(30)),
                connect_timeout: HumanDuration(Duration::from_secs(5)),
                retries: 3,
                max_retry_after: HumanDuration(Duration::from_secs(60)),
            },
            fx: RawFx::default(),
            providers: BTreeMap::new(),
            fixed: Vec::new(),
        }
    }
}

/// `[fx]`: currency codes with their rates, and optionally a source of daily rates.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawFx {
    /// `ecb`: the European Central Bank's daily reference rates.
    source: Option<String>,
    /// Where to read them (the ECB's own file by default).
    url: Option<String>,
    /// `[fx.overrides]`: rates that win over the source's.
    overrides: BTreeMap<String, ConfigDecimal>,
    /// `CODE = rate`: the rates (with a source: the fallback). Raw values, so that a
    /// misspelt key is named as such rather than as a bad number.
    #[serde(flatten)]
    rates: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPushgateway {
    url: String,
    username: Option<String>,
    #[serde(skip_serializing)]
    password: RawSecret,
    timeout: HumanDuration,
    retries: u32,
}

impl Default for RawPushgateway {
    fn default() -> Self {
        RawPushgateway {
            url: "http://localhost:9091".into(),
            username: None,
            password: RawSecret::default(),
            timeout: HumanDuration(Duration::from_secs(10)),
            retries: 3,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    timeout: HumanDuration,
    #[serde(default = "default_push_timeout")]
    push_timeout: HumanDuration,
    #[serde(default = "default_accounts_at_once")]
    accounts_at_once: u32,
}

/// Accounts of one provider collected at once, by default.
fn default_accounts_at_once() -> u32 {
    8
}

/// The push phase's default deadline: within Kubernetes' default 30 s grace period after a
/// SIGTERM.
fn default_push_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    timeout: HumanDuration,
    connect_timeout: HumanDuration,
    retries: u32,
    max_retry_after: HumanDuration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Period {
    #[default]
    Monthly,
    Yearly,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixed {
    provider: String,
    name: String,
    amount: ConfigDecimal,
    currency: String,
    #[serde(default)]
    period: Period,
    /// `YYYY-MM`: the first month the entry is paid (for `backfill`; earlier months and the
    /// months before it in a run do not count it).
    #[serde(default)]
    since: Option<String>,
}

/// Every problem deserialization finds: serde stops at the first, so each global section is
/// also read alone, and the problems of all of them are listed (once each).
fn every_problem(loaded: &Loaded, first: figment::Error) -> Vec<String> {
    use figment::Figment;
    fn probe<T: serde::de::DeserializeOwned>(f: &Figment, key: &str) -> Vec<figment::Error> {
        match f.extract_inner_lossy::<T>(key) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .into_iter()
                .map(|mut e| {
                    // figment puts the section's name after the field's path: put it first.
                    if e.path.last().map(String::as_str) == Some(key) && e.path.len() > 1 {
                        e.path.rotate_right(1);
                    }
                    e
                })
                .collect(),
        }
    }
    let f = &loaded.figment;
    let mut errors: Vec<figment::Error> = first.into_iter().collect();
    errors.extend(probe::<String>(f, "currency"));
    errors.extend(probe::<String>(f, "tax"));
    errors.extend(probe::<RawPushgateway>(f, "pushgateway"));
    errors.extend(probe::<RawRun>(f, "run"));
    errors.extend(probe::<RawHttp>(f, "http"));
    errors.extend(probe::<RawFx>(f, "fx"));
    errors.extend(probe::<BTreeMap<String, Value>>(f, "providers"));
    errors.extend(probe::<Vec<RawFixed>>(f, "fixed"));
    let mut out: Vec<String> = Vec::new();
    for e in &errors {
        let text = super::layers::describe(e);
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// Validates everything: the global sections here, and each `[providers.<name>]` section by
/// handing a [`Section`] to `configure` (the provider registry), which returns what the
/// section yields, or `None` after recording its problems. Every problem of every section is
/// collected; `Settings` exists only when there is none.
pub(crate) fn validate<T>(
    loaded: &Loaded,
    only: Option<&[String]>,
    mut configure: impl FnMut(&mut Section<'_>) -> Option<T>,
) -> Result<(Settings, BTreeMap<Target, T>), ConfigError> {
    let raw: RawConfig = match loaded.figment.extract_lossy() {
        Ok(raw) => raw,
        Err(e) => return Err(ConfigError(every_problem(loaded, e))),
    };
    let mut c = Checker::new(loaded);

    let reporting = match raw.currency.parse::<Currency>() {
        Ok(cur) => Some(cur),
        Err(e) => {
            c.fail("currency", e);
            None
        }
    };

    let tax = match raw.tax.trim() {
        "excluded" => Some(TaxBasis::Excluded),
        "included" => Some(TaxBasis::Included),
        other => {
            c.fail(
                "tax",
                format!("unknown tax basis {other:?} (expected excluded or included)"),
            );
            None
        }
    };

    let mut plain = BTreeMap::new();
    for (code, v) in &raw.fx.rates {
        let key = format!("fx.{code}");
        match (code.parse::<Currency>(), v.deserialize::<ConfigDecimal>()) {
            (Err(e), _) => c.fail(
                &key,
                format!("{e}; [fx] takes `CODE = rate`, `source`, `url` and [fx.overrides]"),
            ),
            (Ok(_), Err(e)) => c.fail(&key, format!("not a rate ({e})")),
            (Ok(_), Ok(rate)) => {
                plain.insert(code.clone(), rate);
            }
        }
    }
    let mut parse_rates = |table: &BTreeMap<String, ConfigDecimal>, prefix: &str| {
        let mut rates = BTreeMap::new();
        for (code, rate) in table {
            let key = format!("{prefix}.{code}");
            match code.parse::<Currency>() {
                Ok(cur) if rate.0 > Decimal::ZERO => {
                    rates.insert(cur, rate.0);
                }
                Ok(_) => c.fail(&key, format!("rate {} must be above 0", rate.0)),
                Err(e) => c.fail(
                    &key,
                    format!("{e}; [fx] takes `CODE = rate`, `source`, `url` and [fx.overrides]"),
                ),
            }
        }
        rates
    };
    let rates = parse_rates(&plain, "fx");
    let overrides = parse_rates(&raw.fx.overrides, "fx.overrides");
    let fx_source = match raw.fx.source.as_deref().map(str::trim) {
        None | Some("") | Some("config") => {
            if raw.fx.url.is_some() {
                c.fail("fx.url", "a URL without `source = \"ecb\"` is never read");
            }
            if !overrides.is_empty() {
                c.fail(
                    "fx.overrides",
                    "overrides need `source = \"ecb\"`; without a source, put the rates under [fx]",
                );
            }
            None
        }
        Some("ecb") => {
            let raw_url = raw.fx.url.as_deref().unwrap_or(crate::money::ECB_DAILY);
            match super::section::provider_url(raw_url) {
                Ok(url) => Some(url),
                Err(e) => {
                    c.fail("fx.url", e);
                    None
                }
            }
        }
        Some(other) => {
            c.fail(
                "fx.source",
                format!(
                    "unknown source {other:?} (expected ecb, or none for the configured rates only)"
                ),
            );
            None
        }
    };

    let pg = &raw.pushgateway;
    let pg_url = match pushgateway_url(&pg.url) {
        Ok(u) => Some(u),
        Err(e) => {
            c.fail("pushgateway.url", e);
            None
        }
    };
    let password = c.secret("pushgateway.password", &pg.password);
    let username = pg
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let basic_auth = match (username, password) {
        (Some(u), Some(p)) => Some((u.to_owned(), p)),
        (None, None) => None,
        (Some(_), None) => {
            c.fail(
                "pushgateway.username",
                "a username is set but no password (PUSHGATEWAY_PASSWORD)",
            );
            None
        }
        (None, Some(_)) => {
            c.fail(
                "pushgateway.password",
                "a password is set but no username (PUSHGATEWAY_USERNAME)",
            );
            None
        }
    };

    // Basic auth over plain http to another host would send the password in clear.
    if basic_auth.is_some()
        && let Some(url) = &pg_url
        && url.scheme() == "http"
        && !super::section::is_loopback(url)
    {
        c.fail(
            "pushgateway.url",
            format!(
                "{:?} uses http to a host other than this machine, and a username and password are set: they would cross the network in clear; use https",
                super::layers::redact_url(url.as_str())
            ),
        );
    }

    // Provider sections: each validated by its module, so errors carry their key and origin;
    // a section with named accounts, each account (with what it inherits) instead.
    let mut sections = BTreeMap::new();
    let mut totals = BTreeMap::new();
    let mut currencies: Vec<(String, Vec<Currency>)> = Vec::new();
    for name in raw.providers.keys() {
        if !is_slug(name) {
            c.fail(&format!("providers.{name}"), "provider names are lowercase letters, digits, '_' or '-', at most 32, starting with a letter");
            continue;
        }
        let tax = tax.unwrap_or_default();
        let named = loaded.accounts.get(name);
        let targets: Vec<(Target, Section<'_>)> = match named {
            None => vec![(Target::provider(name), Section::new(loaded, name, tax))],
            Some(accounts) => {
                // The section's own budget is the provider's total over its accounts.
                let budget = raw.providers[name]
                    .as_dict()
                    .and_then(|d| d.get("budget"))
                    .map(|v| v.deserialize::<ConfigDecimal>().map_err(|e| e.to_string()));
                match budget {
                    None => {}
                    Some(Ok(b)) => {
                        if let Some(b) = c.amount(&format!("providers.{name}.budget"), Some(b)) {
                            totals.insert(name.clone(), b);
                        }
                    }
                    Some(Err(e)) => c.fail(&format!("providers.{name}.budget"), e),
                }
                accounts
                    .iter()
                    .map(|a| {
                        (
                            Target::account(name, a),
                            Section::account(loaded, name, a, tax),
                        )
                    })
                    .collect()
            }
        };
        for (target, mut section) in targets {
            let yielded = configure(&mut section);
            let (problems, used) = section.finish();
            match (problems.is_empty(), yielded) {
                (true, Some(t)) => {
                    sections.insert(target, t);
                }
                (true, None) => c.fail(
                    &format!("providers.{name}"),
                    "the section yielded nothing and no problem was recorded (a bug; please report it)",
                ),
                (false, _) => {
                    for p in problems {
                        if !c.problems.contains(&p) {
                            c.problems.push(p);
                        }
                    }
                }
            }
            currencies.push((name.clone(), used));
        }
    }

    let fixed = fixed_entries(&mut c, &raw.fixed);
    // A provider's entries are added up every run: a sum no decimal can hold is a
    // configuration error here, not a failure at every run.
    let mut sums: BTreeMap<(&str, Currency), Decimal> = BTreeMap::new();
    for (i, f) in fixed.iter().enumerate() {
        let sum = sums
            .entry((f.provider.as_str(), f.amount.currency))
            .or_default();
        match sum.checked_add(f.amount.amount) {
            Some(v) => *sum = v,
            None => c.fail(
                &format!("fixed[{i}].amount"),
                format!(
                    "the {} entries of provider {:?} add up to more than a decimal can hold (7.9e28)",
                    f.amount.currency, f.provider
                ),
            ),
        }
    }

    // Every currency in use needs a rate: configured, or published by the source.
    if let Some(reporting) = reporting {
        let mut known = rates.clone();
        known.extend(overrides.iter().map(|(c, r)| (*c, *r)));
        if fx_source.is_some() && crate::money::ecb_publishes(reporting) {
            for cur in crate::money::ECB_CURRENCIES {
                if let Ok(cur) = cur.parse::<Currency>() {
                    known.entry(cur).or_insert(Decimal::ONE);
                }
            }
        }
        let fx = Fx::new(reporting, known);
        for (i, f) in fixed.iter().enumerate() {
            if !fx.has(f.amount.currency) {
                c.fail(
                    &format!("fixed[{i}].currency"),
                    format!("no [fx] rate converts {} into the reporting currency {reporting}; add `{} = <rate>` under [fx]", f.amount.currency, f.amount.currency),
                );
            }
        }
        for (name, used) in &currencies {
            for cur in used {
                if !fx.has(*cur) {
                    c.fail(
                        &format!("providers.{name}"),
                        format!("{name} bills in {cur}, and no [fx] rate converts {cur} into the reporting currency {reporting}; add `{cur} = <rate>` under [fx]"),
                    );
                }
            }
        }
    }

    // --only names known providers (a section or [[fixed]] entries) or accounts
    // (`provider/account`).
    let only = only.map(|names| {
        let accounts: Vec<String> = loaded
            .accounts
            .iter()
            .flat_map(|(p, names)| names.iter().map(move |a| format!("{p}/{a}")))
            .collect();
        let known: BTreeSet<&str> = raw
            .providers
            .keys()
            .map(String::as_str)
            .chain(fixed.iter().map(|f| f.provider.as_str()))
            .chain(accounts.iter().map(String::as_str))
            .collect();
        let set: BTreeSet<String> = names.iter().map(|n| n.trim().to_owned()).collect();
        for n in &set {
            if !known.contains(n.as_str()) {
                let list: Vec<&str> = known.iter().copied().collect();
                c.problems.push(format!(
                    "--only names {n:?}, which the configuration does not have (known: {})",
                    if list.is_empty() {
                        "none".into()
                    } else {
                        list.join(", ")
                    }
                ));
            }
        }
        set
    });

    if !(1..=256).contains(&raw.run.accounts_at_once) {
        c.fail(
            "run.accounts_at_once",
            format!(
                "{} is out of range: 1 to 256 accounts of one provider at once",
                raw.run.accounts_at_once
            ),
        );
    }

    let http = HttpSettings {
        timeout: raw.http.timeout.0,
        connect_timeout: raw.http.connect_timeout.0,
        retries: raw.http.retries,
        max_retry_after: raw.http.max_retry_after.0,
    };

    match (c.problems.is_empty(), reporting, pg_url) {
        (true, Some(reporting), Some(url)) => Ok((
            Settings {
                fx: Fx::new(reporting, rates),
                fx_source: fx_source.map(|url| FxSource { url, overrides }),
                tax: tax.unwrap_or_default(),
                pushgateway: PushgatewaySettings {
                    url,
                    basic_auth,
                    timeout: pg.timeout.0,
                    retries: pg.retries,
                },
                run: RunSettings {
                    timeout: raw.run.timeout.0,
                    push_timeout: raw.run.push_timeout.0,
                    accounts_at_once: raw.run.accounts_at_once as usize,
                },
                http,
                fixed,
                only,
                totals,
            },
            sections,
        )),
        _ => Err(ConfigError(c.problems)),
    }
}

/// `[[fixed]]` entries, normalised; each entry's problems recorded.
fn fixed_entries(c: &mut Checker<'_>, raw: &[RawFixed]) -> Vec<FixedEntry> {
    let mut fixed = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, f) in raw.iter().enumerate() {
        let key = format!("fixed[{i}]");
        let mut ok = true;
        if !is_slug(&f.provider) {
            c.fail(&format!("{key}.provider"), format!("{:?} is not a provider name (lowercase letters, digits, '_' or '-', at most 32)", f.provider));
            ok = false;
        }
        let name = f.name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            c.fail(
                &format!("{key}.name"),
                "the name must be 1 to 64 printable characters",
            );
            ok = false;
        }
        if !seen.insert((f.provider.clone(), name.to_owned())) {
            c.fail(
                &format!("{key}.name"),
                format!(
                    "provider {:?} already has an entry named {name:?}",
                    f.provider
                ),
            );
            ok = false;
        }
        let amount = c.amount(&format!("{key}.amount"), Some(f.amount));
        let currency = match f.currency.parse::<Currency>() {
            Ok(cur) => Some(cur),
            Err(e) => {
                c.fail(&format!("{key}.currency"), e);
                None
            }
        };
        let since = match f.since.as_deref().map(str::trim) {
            None => None,
            Some(text) => match crate::money::year_month(text) {
                Some(d) => Some(d),
                None => {
                    c.fail(
                        &format!("{key}.since"),
                        format!("{text:?} is not a month such as \"2026-03\""),
                    );
                    ok = false;
                    None
                }
            },
        };
        if let (true, Some(amount), Some(currency)) = (ok, amount, currency) {
            fixed.push(FixedEntry {
                provider: f.provider.clone(),
                name: name.to_owned(),
                amount: Money { amount, currency },
                yearly: f.period == Period::Yearly,
                since,
            });
        }
    }
    fixed
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// The Pushgateway URL: http or https, no credentials in it, no query.
fn pushgateway_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        // Never echo the text: it might hold user:password@.
        format!("it is not a URL ({e})")
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "it holds credentials; set PUSHGATEWAY_USERNAME and PUSHGATEWAY_PASSWORD instead"
                .into(),
        );
    }
    let shown = super::layers::redact_url(raw.trim());
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{shown:?} is not an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{shown:?} has a query or fragment; give the base URL only"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_slug("ionos"));
        assert!(is_slug("claude-max"));
        assert!(!is_slug("IONOS"));
        assert!(!is_slug("1x"));
        assert!(!is_slug(""));
    }
}
