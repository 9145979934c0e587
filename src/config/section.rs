//! Validation that collects every problem: [`Section`] is one provider section's view of it.
//!
//! A provider module reads its section into its own configuration struct (with
//! `deny_unknown_fields`) through [`Section::extract`], then checks each value with the helpers
//! here, which phrase every problem the same way: where (the key as spelled in the layer that
//! set it: a file and key, or an environment variable), then what.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::DeserializeOwned;
use url::Url;

use super::Loaded;
use super::layers::describe;
use crate::cost::{Unit, UsageLimit};
use crate::money::{ConfigDecimal, Currency, TaxBasis};
use crate::secret::{RawSecret, Secret};

/// Counts such as "top N" take 1 to 100.
const COUNT_RANGE: std::ops::RangeInclusive<u32> = 1..=100;

/// Problems found so far, each phrased "where: what", and the configuration they are about.
pub(super) struct Checker<'a> {
    pub(super) loaded: &'a Loaded,
    pub(super) problems: Vec<String>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(loaded: &'a Loaded) -> Checker<'a> {
        Checker {
            loaded,
            problems: Vec::new(),
        }
    }

    /// Records a problem with the value at `key` (dotted, from the root).
    pub(super) fn fail(&mut self, key: &str, what: impl fmt::Display) {
        let origin = self.loaded.origin(key);
        self.problems.push(format!("{origin}: {what}"));
    }

    /// A credential: trimmed; empty is "not set" (`None`); whitespace inside is a problem.
    pub(super) fn secret(&mut self, key: &str, raw: &RawSecret) -> Option<Secret> {
        let text = raw.expose()?;
        match Secret::clean(text) {
            Ok(s) => s,
            Err(problem) => {
                self.fail(key, problem);
                None
            }
        }
    }

    /// An amount, 0 or more.
    pub(super) fn amount(&mut self, key: &str, raw: Option<ConfigDecimal>) -> Option<Decimal> {
        let d = raw?.0;
        if d.is_sign_negative() && !d.is_zero() {
            self.fail(key, format!("{d} is negative; amounts must be 0 or more"));
            return None;
        }
        Some(d)
    }
}

/// One provider section under validation: `[providers.<name>]`.
pub(crate) struct Section<'a> {
    c: Checker<'a>,
    name: &'a str,
    key: String,
    tax: TaxBasis,
    currencies: Vec<Currency>,
}

impl<'a> Section<'a> {
    pub(super) fn new(loaded: &'a Loaded, name: &'a str, tax: TaxBasis) -> Section<'a> {
        Section {
            c: Checker::new(loaded),
            name,
            key: format!("providers.{name}"),
            tax,
            currencies: Vec::new(),
        }
    }

    /// Account `account` of provider `name`: `[providers.<name>.accounts.<account>]`, with
    /// what it inherits from the provider's section.
    pub(super) fn account(
        loaded: &'a Loaded,
        name: &'a str,
        account: &'a str,
        tax: TaxBasis,
    ) -> Section<'a> {
        Section {
            c: Checker::new(loaded),
            name,
            key: format!("providers.{name}.accounts.{account}"),
            tax,
            currencies: Vec::new(),
        }
    }

    /// The problems found and the currencies the provider's figures arrive in.
    pub(super) fn finish(self) -> (Vec<String>, Vec<Currency>) {
        (self.c.problems, self.currencies)
    }

    /// The provider's name: the section under `[providers]`.
    pub(crate) fn name(&self) -> &str {
        self.name
    }

    /// The job's tax basis (the global `tax`), for providers that give both.
    pub(crate) fn tax(&self) -> TaxBasis {
        self.tax
    }

    /// Says that this provider's figures arrive in `currency`: the configuration is invalid
    /// unless `[fx]` converts it into the reporting currency.
    pub(crate) fn bills_in(&mut self, currency: Currency) {
        if !self.currencies.contains(&currency) {
            self.currencies.push(currency);
        }
    }

    /// Reads the section into `T`. `T` denies unknown fields: every key the section has that
    /// `T` does not take is a problem naming the key, where it was set, and the keys `T` takes.
    /// Numbers and booleans given as text (from the environment) are read leniently.
    pub(crate) fn extract<T: DeserializeOwned>(&mut self) -> Option<T> {
        match self.c.loaded.figment.extract_inner_lossy::<T>(&self.key) {
            Ok(t) => Some(t),
            Err(errors) => {
                for mut e in errors {
                    // figment puts the section's own path after the field's: put it first.
                    let section: Vec<&str> = self.key.split('.').collect();
                    if e.path.len() > section.len()
                        && e.path[e.path.len() - section.len()..]
                            .iter()
                            .map(String::as_str)
                            .eq(section.iter().copied())
                    {
                        let tail = e.path.split_off(e.path.len() - section.len());
                        e.path.splice(0..0, tail);
                    }
                    match &e.kind {
                        figment::error::Kind::UnknownField(_, expected) => {
                            self.unknown_keys(expected)
                        }
                        _ => self.c.problems.push(describe(&e)),
                    }
                }
                None
            }
        }
    }

    /// Every key of the section outside `expected`, each with where it was set.
    fn unknown_keys(&mut self, expected: &[&str]) {
        for k in self.c.loaded.keys_under(&self.key) {
            if !expected.contains(&k.as_str()) {
                let what = format!(
                    "unknown key `{k}` for provider {} (expected one of: {})",
                    self.name,
                    expected.join(", ")
                );
                self.fail(&k, what);
            }
        }
    }

    /// Records a problem with `field` (a key of the section, `limits.x` for nested ones).
    pub(crate) fn fail(&mut self, field: &str, what: impl fmt::Display) {
        let key = format!("{}.{field}", self.key);
        self.c.fail(&key, what);
    }

    /// Records a problem with the section as a whole.
    pub(crate) fn fail_section(&mut self, what: impl fmt::Display) {
        let key = self.key.clone();
        self.c.fail(&key, what);
    }

    /// A credential: trimmed; empty is "not set" (`None`); whitespace inside is a problem.
    pub(crate) fn secret(&mut self, field: &str, raw: &RawSecret) -> Option<Secret> {
        let key = format!("{}.{field}", self.key);
        self.c.secret(&key, raw)
    }

    /// An amount, 0 or more.
    pub(crate) fn amount(&mut self, field: &str, raw: Option<ConfigDecimal>) -> Option<Decimal> {
        let key = format!("{}.{field}", self.key);
        self.c.amount(&key, raw)
    }

    /// `budget`: the provider's absolute monthly budget in the reporting currency.
    pub(crate) fn budget(&mut self, raw: Option<ConfigDecimal>) -> Option<Decimal> {
        self.amount("budget", raw)
    }

    /// A URL that credentials may be sent to: https, or http to a loopback address.
    pub(crate) fn url(&mut self, field: &str, raw: &str) -> Option<Url> {
        match provider_url(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                self.fail(field, e);
                None
            }
        }
    }

    /// A count from 1 to 100 (`top_projects`, `concurrency`…), `default` when unset.
    pub(crate) fn count(&mut self, field: &str, raw: Option<u32>, default: usize) -> usize {
        self.count_in(field, raw, COUNT_RANGE, default)
    }

    /// A count within `range`, `default` when unset.
    pub(crate) fn count_in(
        &mut self,
        field: &str,
        raw: Option<u32>,
        range: std::ops::RangeInclusive<u32>,
        default: usize,
    ) -> usize {
        match raw {
            None => default,
            Some(n) if range.contains(&n) => n as usize,
            Some(n) => {
                self.fail(
                    field,
                    format!("{n} is out of range ({} to {})", range.start(), range.end()),
                );
                default
            }
        }
    }

    /// One of a fixed set of words (a plan, a source), `None` when unset or not one of them.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        options: &[(&str, T)],
    ) -> Option<T> {
        let word = raw?.trim();
        match options.iter().find(|(w, _)| *w == word) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
                let what = format!(
                    "unknown {field} {word:?} for {} (expected one of: {})",
                    self.name,
                    names.join(", ")
                );
                self.fail(field, what);
                None
            }
        }
    }

    /// `[providers.<name>.limits]` over the plan's `quotas`: a limit for each of `resources`
    /// (name and unit) that has a quota or a configured value, in `resources` order. A key
    /// that names no resource, and a value no sample can hold, are problems.
    pub(crate) fn limits(
        &mut self,
        raw: &BTreeMap<String, ConfigDecimal>,
        resources: &[(&str, Unit)],
        quotas: &[(&str, f64)],
    ) -> Vec<UsageLimit> {
        let mut values: BTreeMap<&str, f64> = quotas.iter().copied().collect();
        for (k, v) in raw {
            let field = format!("limits.{k}");
            let Some((name, _)) = resources.iter().find(|(name, _)| name == k) else {
                let known: Vec<&str> = resources.iter().map(|(name, _)| *name).collect();
                let what = format!(
                    "unknown limit `{k}` for {} (expected one of: {})",
                    self.name,
                    known.join(", ")
                );
                self.fail(&field, what);
                continue;
            };
            let Some(d) = self.amount(&field, Some(*v)) else {
                continue;
            };
            match d.to_f64() {
                Some(f) => {
                    values.insert(name, f);
                }
                None => self.fail(&field, format!("{d} is not a usable number")),
            }
        }
        resources
            .iter()
            .filter_map(|(name, unit)| {
                values.get(name).map(|v| UsageLimit {
                    resource: (*name).to_owned(),
                    unit: *unit,
                    value: *v,
                })
            })
            .collect()
    }
}

/// A URL that credentials may be sent to: https, or http to a loopback address.
pub(super) fn provider_url(raw: &str) -> Result<Url, String> {
    // Never echo credentials or a query: messages show the text redacted.
    let shown = super::layers::redact_url(raw.trim());
    let url = Url::parse(raw.trim()).map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(format!("{shown:?} is not an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL holds credentials; give them in the environment instead".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{shown:?} uses http; provider URLs must use https (http is allowed only for loopback addresses)"
        )),
        other => Err(format!("{shown:?} has scheme {other:?}; expected https")),
    }
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_provider_urls_only_on_loopback() {
        assert!(provider_url("http://127.0.0.1:8080").is_ok());
        assert!(provider_url("http://localhost:1").is_ok());
        assert!(provider_url("http://[::1]:1").is_ok());
        assert!(provider_url("http://api.example.com").is_err());
        assert!(provider_url("https://api.example.com").is_ok());
        assert!(provider_url("ftp://x").is_err());
    }
}
