//! The configuration core: figment layers (defaults < TOML < `COST_EXPORTER_*` < conventional
//! environment variables and their `_FILE` variants < command-line flags), then validation of
//! every section into typed [`Settings`], every problem collected and reported at once, each
//! naming the key and the layer it came from, before any network I/O.
//!
//! It names no provider. A provider module describes its section with a [`SectionSchema`]
//! (its conventional variables, which keys are secrets) and validates it through a
//! `Section`; the provider registry hands both in. The parts:
//! - `layers`: the layers, where each value came from, what `check` prints;
//! - `global`: the global sections (`currency`, `[pushgateway]`, `[run]`, `[http]`, `[fx]`,
//!   `[[fixed]]`) and the run of validation over them and every provider section;
//! - `section`: the list of problems found so far, and `Section`, one provider's view of it;
//! - `values`: value types keys are read into.

mod global;
mod layers;
mod section;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rust_decimal::Decimal;
use url::Url;

use crate::money::{Currency, Fx, Money, TaxBasis};
use crate::secret::Secret;

pub(crate) use global::validate;
pub use layers::Overrides;
#[cfg(test)]
pub(crate) use layers::top_lookups;
pub(crate) use layers::{Loaded, layer, read_secret_file, redact_url};
pub(crate) use section::Section;
pub(crate) use values::StringList;

/// Prefix of the generic environment layer: `COST_EXPORTER_PUSHGATEWAY__URL` is `pushgateway.url`.
pub(crate) const ENV_PREFIX: &str = "COST_EXPORTER_";

/// A conventional environment variable: its value sets one key of a section. Each also has a
/// `_FILE` variant naming a file that holds the value (Docker and Kubernetes secrets).
#[derive(Debug)]
pub struct EnvVar {
    /// The variable, such as `PUSHGATEWAY_PASSWORD`.
    pub name: &'static str,
    /// The key it sets, relative to its section (`password`).
    pub key: &'static str,
    /// One line for humans: what to put in it.
    pub help: &'static str,
}

/// What the core needs to know of a section before validating it: where its conventional
/// variables go and which of its keys hold credentials.
#[derive(Debug)]
pub struct SectionSchema {
    /// The section's name under `[providers]` (a provider's name).
    pub name: &'static str,
    /// The conventional environment variables that set its keys.
    pub env: &'static [EnvVar],
    /// Keys whose values are credentials: read as raw text, shown as `***` by `check`.
    pub secrets: &'static [&'static str],
}

/// The `[pushgateway]` section's schema (basic auth from the environment).
pub(crate) const PUSHGATEWAY: SectionSchema = SectionSchema {
    name: "pushgateway",
    env: &[
        EnvVar {
            name: "PUSHGATEWAY_USERNAME",
            key: "username",
            help: "Basic auth toward the Pushgateway, if it requires it (both or neither).",
        },
        EnvVar {
            name: "PUSHGATEWAY_PASSWORD",
            key: "password",
            help: "Its password.",
        },
    ],
    secrets: &["password"],
};

/// Every section with a schema: the global ones and every provider's.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The provider sections, under `[providers.<name>]`.
    pub providers: Vec<&'static SectionSchema>,
}

/// A conventional variable with the full key it sets.
#[derive(Debug, Clone)]
pub struct Variable {
    /// The variable.
    pub var: &'static EnvVar,
    /// The dotted key it sets: `pushgateway.password`, `providers.<name>.token`.
    pub key: String,
    /// Whether its value is a credential.
    pub secret: bool,
}

impl Schema {
    /// Every conventional variable, the Pushgateway's first, then each provider's in order.
    pub fn variables(&self) -> Vec<Variable> {
        let global = PUSHGATEWAY.env.iter().map(|v| Variable {
            var: v,
            key: format!("pushgateway.{}", v.key),
            secret: PUSHGATEWAY.secrets.contains(&v.key),
        });
        let providers = self.providers.iter().flat_map(|s| {
            s.env.iter().map(|v| Variable {
                var: v,
                key: format!("providers.{}.{}", s.name, v.key),
                secret: s.secrets.contains(&v.key),
            })
        });
        global.chain(providers).collect()
    }

    /// Every key whose value is a credential, dotted.
    pub(crate) fn secret_keys(&self) -> BTreeSet<String> {
        let global = PUSHGATEWAY
            .secrets
            .iter()
            .map(|k| format!("pushgateway.{k}"));
        let providers = self.providers.iter().flat_map(|s| {
            s.secrets
                .iter()
                .map(move |k| format!("providers.{}.{k}", s.name))
        });
        global.chain(providers).collect()
    }
}

/// The validated global configuration of one run. Provider sections are validated by their
/// modules into the provider registry's plan.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reporting currency and the configured rates into it (with a source, the fallback).
    pub(crate) fx: Fx,
    /// `[fx] source`: where daily rates are read at each run, and the overrides.
    pub(crate) fx_source: Option<FxSource>,
    /// Whether money includes taxes, for every provider that gives both.
    pub(crate) tax: TaxBasis,
    /// Where and how to push.
    pub pushgateway: PushgatewaySettings,
    /// Whole-run limits.
    pub(crate) run: RunSettings,
    /// The provider HTTP client's limits.
    pub(crate) http: HttpSettings,
    /// `[[fixed]]` entries, each normalised to a monthly amount.
    pub(crate) fixed: Vec<FixedEntry>,
    /// `--only`: the providers this run is restricted to.
    pub(crate) only: Option<BTreeSet<String>>,
    /// Budgets of providers with named accounts: the provider's total over its accounts
    /// (`[providers.<name>] budget`).
    pub(crate) totals: BTreeMap<String, Decimal>,
}

impl Settings {
    /// Whether `--only` (when given) names the target's provider, or the target itself
    /// (`provider/account`).
    pub(crate) fn wanted(&self, target: &crate::cost::Target) -> bool {
        self.only.as_ref().is_none_or(|o| {
            o.contains(&target.provider)
                || (target.account.is_some() && o.contains(&target.to_string()))
        })
    }
}

/// `[fx] source = "ecb"`: the daily reference rates' URL and the rates that win over them.
#[derive(Debug, Clone)]
pub(crate) struct FxSource {
    /// The ECB's `eurofxref-daily.xml` (or a copy).
    pub url: Url,
    /// `[fx.overrides]`: 1 unit = N reporting-currency units, whatever the source says.
    pub overrides: BTreeMap<Currency, Decimal>,
}

/// `[pushgateway]`.
#[derive(Debug, Clone)]
pub struct PushgatewaySettings {
    /// Base URL, without credentials.
    pub(crate) url: Url,
    /// Basic-auth user and password, both or neither.
    pub(crate) basic_auth: Option<(String, Secret)>,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
    /// Retries after the first attempt, on 5xx and transport errors.
    pub(crate) retries: u32,
}

/// `[run]`.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    /// Deadline for collection; collectors still running then are cancelled and counted as
    /// failed (`timeout`), and the push still happens.
    pub(crate) timeout: Duration,
    /// Deadline for the push phase (reading counters back, every group): what is not pushed
    /// by then is a push failure (exit 1).
    pub(crate) push_timeout: Duration,
    /// Named accounts of one provider collected at once (`run.accounts_at_once`): the
    /// provider's own rate limits are per token or per account, but several accounts at once
    /// still add up against per-IP limits.
    pub(crate) accounts_at_once: usize,
}

/// `[http]`: the provider client.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    /// Whole-request timeout, body included.
    pub(crate) timeout: Duration,
    /// Connect timeout.
    pub(crate) connect_timeout: Duration,
    /// Retries after the first attempt, on 408, 429, 5xx and transport errors.
    pub(crate) retries: u32,
    /// Longest `Retry-After` that is waited for; a longer one fails the request at once.
    pub(crate) max_retry_after: Duration,
}

/// A `[[fixed]]` entry, normalised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FixedEntry {
    /// The provider group it is pushed in.
    pub(crate) provider: String,
    /// Tells the provider's entries apart (`name` label).
    pub(crate) name: String,
    /// The amount per period (a month, or a year), in its own currency.
    pub(crate) amount: Money,
    /// Paid once a year rather than every month.
    pub(crate) yearly: bool,
    /// The 1st of the first month it is paid, when configured (`since`); for a yearly entry,
    /// the month it falls due every year.
    pub(crate) since: Option<time::Date>,
}

impl FixedEntry {
    /// What the entry charges in the month starting `first`, on the job's cash basis: a
    /// monthly amount every month; a yearly amount in full in the month it falls due (the month
    /// of `since`, every twelve months) and nothing in the eleven others; a yearly amount
    /// without `since`, whose month is unknown, spread as a twelfth every month. `None` before
    /// `since`.
    pub(crate) fn charge(&self, first: time::Date) -> Option<Money> {
        if self.since.is_some_and(|s| first < s) {
            return None;
        }
        Some(match (self.yearly, self.since) {
            (false, _) => self.amount,
            (true, Some(s)) if first.month() == s.month() => self.amount,
            (true, Some(_)) => Money {
                amount: rust_decimal::Decimal::ZERO,
                currency: self.amount.currency,
            },
            (true, None) => self.monthly_share(),
        })
    }

    /// A yearly amount whose month is unknown (no `since`), counted as a twelfth every month.
    pub(crate) fn spread(&self) -> bool {
        self.yearly && self.since.is_none()
    }

    /// The amount a month on average: the amount, or a yearly amount ÷ 12.
    pub(crate) fn monthly_share(&self) -> Money {
        if self.yearly {
            Money {
                amount: self.amount.amount / rust_decimal::Decimal::from(12),
                currency: self.amount.currency,
            }
        } else {
            self.amount
        }
    }
}

/// Configuration problems, each already phrased for the user (where, then what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
