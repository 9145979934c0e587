//! The providers: one module per provider, and [`PROVIDERS`], the registry that lists them.
//!
//! A provider module owns everything about its provider: its configuration struct (read with
//! `deny_unknown_fields`), defaults, plans and sources, credentials, the conventional
//! environment variables it reads, the validation of its section, and its collector(s), which
//! validating the section builds. Nothing outside this directory names a provider: the
//! configuration core, the HTTP client, the runner, metrics and push see only the registry's
//! descriptions and the [`Collector`] trait.
//!
//! Shared by the modules: `fixed` (`[[fixed]]` entries of any provider), `wire` (payload
//! helpers), and `collector` (the trait, its context, what a section yields).

mod ai;
mod cloudflare;
mod collector;
mod elevenlabs;
mod fixed;
mod google;
mod hostinger;
mod ovh;
mod pacer;
mod supabase;
pub mod vercel;
mod wasabi;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;

use crate::config::{
    self, ConfigError, Loaded, Overrides, Schema, Section, SectionSchema, Settings,
};
use crate::money::ConfigDecimal;

pub use crate::cost::Target;
pub(crate) use collector::{Api, Configured, Planned};
pub use collector::{Collector, Context, Days, History, Plan};

/// A provider module's description: the one thing the registry holds about it.
#[derive(Debug)]
pub struct Provider {
    /// Its section, conventional variables and secret keys; `schema.name` is the provider's
    /// name (`[providers.<name>]`, the `provider` label, an `--only` value).
    pub schema: SectionSchema,
    /// Path endings of the read-only query endpoints its collector POSTs to (a query that
    /// only reads); the HTTP client refuses every other POST. Empty for GET-only providers.
    pub posts: &'static [&'static str],
    /// Validates the section: its problems go into the [`Section`]; a valid section yields
    /// its budget and its collector (or why it is not collected).
    pub(crate) configure: fn(&mut Section<'_>) -> Option<Configured>,
}

/// Every provider with a module, in the order help and documentation list them.
pub static PROVIDERS: &[&Provider] = &[
    &vercel::PROVIDER,
    &supabase::PROVIDER,
    &wasabi::PROVIDER,
    &ai::anthropic::PROVIDER,
    &ai::openai::PROVIDER,
    &ovh::PROVIDER,
    &hostinger::PROVIDER,
    &cloudflare::PROVIDER,
    &elevenlabs::PROVIDER,
    &google::PROVIDER,
];

/// The client every collector of a run shares: `[http]`'s settings and retries, and the
/// read-only POST paths the registry declares.
pub(crate) fn client(
    settings: &crate::config::HttpSettings,
) -> Result<crate::http::ProviderHttp, String> {
    crate::http::ProviderHttp::new(
        settings,
        crate::http::RetryPolicy::from_settings(settings),
        read_only_posts(),
    )
}

/// Every path ending a provider may POST a read-only query to, for the HTTP client.
fn read_only_posts() -> &'static [&'static str] {
    static POSTS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    POSTS.get_or_init(|| {
        PROVIDERS
            .iter()
            .flat_map(|p| p.posts.iter().copied())
            .collect()
    })
}

/// The sections the configuration core layers: every provider's schema.
pub fn schema() -> Schema {
    Schema {
        providers: PROVIDERS.iter().map(|p| &p.schema).collect(),
    }
}

/// Layers and validates the configuration, every provider section included: what `push` and
/// `collect` call. Every problem is reported at once; no network I/O happens here.
pub fn load(
    overrides: &Overrides,
    env: &BTreeMap<String, String>,
) -> Result<(Settings, Plan), ConfigError> {
    let loaded = config::layer(overrides, env, &schema())?;
    configure(&loaded, overrides.only.as_deref())
}

/// Validates layered configuration: the global sections by the core, each provider section by
/// its module (a name no module has is a budget-only section), then the run's [`Plan`].
pub(crate) fn configure(
    loaded: &Loaded,
    only: Option<&[String]>,
) -> Result<(Settings, Plan), ConfigError> {
    let (settings, sections) = config::validate(loaded, only, |section| {
        match PROVIDERS.iter().find(|p| p.schema.name == section.name()) {
            Some(p) => (p.configure)(section),
            None => plain(section),
        }
    })?;
    let plan = plan(&settings, sections);
    Ok((settings, plan))
}

/// `[providers.<name>]` for a provider without a module: a budget only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain {
    budget: Option<ConfigDecimal>,
}

fn plain(section: &mut Section<'_>) -> Option<Configured> {
    let raw: Plain = section.extract()?;
    Some(Configured {
        budget: section.budget(raw.budget),
        api: Api::None,
    })
}

/// Logs why a provider's API is not collected and, without `[[fixed]]` entries to report,
/// marks it not configured.
fn unconfigured_api(
    target: &Target,
    why: &str,
    wanted: bool,
    fixed: &BTreeMap<String, Vec<config::FixedEntry>>,
    unconfigured: &mut BTreeSet<Target>,
) {
    if !wanted {
        return;
    }
    if target.account.is_none() && fixed.contains_key(&target.provider) {
        tracing::info!(provider = %target.provider, "{why}; only its [[fixed]] entries are reported");
    } else {
        tracing::info!(provider = %target.provider, account = target.account.as_deref().unwrap_or(""), "{why}; exporting it as not configured");
        unconfigured.insert(target.clone());
    }
}

/// The run: API collectors and `[[fixed]]` collectors, restricted to `--only`. A provider
/// whose API is collected has its `[[fixed]]` entries left out: the API's figures replace them,
/// so the two never both count.
fn plan(settings: &Settings, sections: BTreeMap<Target, Configured>) -> Plan {
    let mut collectors: Vec<Arc<dyn Collector>> = Vec::new();
    let mut providers = BTreeMap::new();
    let fixed = fixed::by_provider(&settings.fixed);
    let mut unconfigured = BTreeSet::new();
    // Providers some of whose accounts' APIs are collected: their [[fixed]] entries are left
    // out (the APIs' figures replace them).
    let mut replaced = BTreeSet::new();
    for (target, c) in &sections {
        if matches!(c.api, Api::Collector(_)) {
            replaced.insert(target.provider.clone());
        }
    }
    for (target, c) in sections {
        let name = target.provider.clone();
        let wanted = settings.wanted(&target);
        let why = match c.api {
            Api::None => None,
            Api::Collector(collector) => {
                if let Some(entries) = fixed.get(&name)
                    && wanted
                    && target.account.is_none()
                {
                    tracing::warn!(
                        provider = %name,
                        "its API is collected, so its {} [[fixed]] entr{} ({}) are not reported: the API's figures replace them",
                        entries.len(),
                        if entries.len() == 1 { "y" } else { "ies" },
                        entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
                if wanted {
                    collectors.push(match &target.account {
                        None => collector,
                        Some(account) => Arc::new(collector::Accounted::new(collector, account)),
                    });
                }
                None
            }
            Api::NoCredentials => {
                unconfigured_api(
                    &target,
                    "no API credentials set",
                    wanted,
                    &fixed,
                    &mut unconfigured,
                );
                Some("no credentials".to_owned())
            }
            Api::Incomplete(why) => {
                unconfigured_api(&target, &why, wanted, &fixed, &mut unconfigured);
                Some(why)
            }
        };
        providers.insert(
            target.clone(),
            Planned {
                budget: c.budget,
                unconfigured: why,
                fixed_replaced: target.account.is_none() && replaced.contains(&name),
            },
        );
    }
    for (provider, entries) in &fixed {
        let target = Target::provider(provider);
        if settings.wanted(&target) && !replaced.contains(provider) {
            collectors.push(Arc::new(fixed::Fixed::new(
                provider.clone(),
                entries.clone(),
            )));
        }
        providers.entry(target).or_insert(Planned {
            budget: None,
            unconfigured: None,
            fixed_replaced: replaced.contains(provider),
        });
    }
    Plan {
        collectors,
        unconfigured,
        providers,
        totals: settings.totals.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rust_decimal::Decimal;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_text(text: &str, e: &[(&str, &str)]) -> Result<(Settings, Plan), ConfigError> {
        let f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        let o = Overrides {
            config: Some(f.path().to_path_buf()),
            ..Overrides::default()
        };
        load(&o, &env(e))
    }

    #[test]
    fn the_origins_of_many_failing_entries_cost_one_lookup_of_their_section() {
        // Each failing [[fixed]] entry names its origin; each lookup cloned the whole array,
        // so 8,000 failing entries took 78 s. Now the section is looked up once.
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!(
                "[[fixed]]\nprovider = \"p\"\nname = \"e{i}\"\namount = -1\ncurrency = \"XXX\"\n"
            ));
        }
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let overrides = crate::config::Overrides {
            config: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        let before = crate::config::top_lookups();
        let err = crate::providers::load(&overrides, &Default::default()).unwrap_err();
        let lookups = crate::config::top_lookups() - before;
        assert!(err.to_string().contains("fixed[499].amount"), "{err}");
        // Other tests may look up concurrently: a handful, never one per entry.
        assert!(lookups < 50, "{lookups} lookups for 500 failing entries");
    }

    #[test]
    fn env_beats_file_and_conventional_beats_prefixed() {
        let (_, plan) = load_text(
            "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[providers.vercel]\nbudget = 5\n",
            &[
                ("COST_EXPORTER_PROVIDERS__VERCEL__BUDGET", "7"),
                ("COST_EXPORTER_PROVIDERS__VERCEL__TOKEN", "from-prefixed"),
                ("VERCEL_API_TOKEN", "  0123  "),
            ],
        )
        .unwrap();
        assert_eq!(plan.budget(&"vercel".into()), Some(Decimal::from(7)));
        assert_eq!(plan.collectors.len(), 1, "the token builds the collector");
    }

    #[test]
    fn yearly_amounts_without_a_month_are_spread_and_bare_numbers_are_refused_as_secrets() {
        let (s, plan) = load_text(
            "[[fixed]]\nprovider = \"ovh\"\nname = \"domain\"\namount = 18\ncurrency = \"EUR\"\nperiod = \"yearly\"\n\
             [fx]\nEUR = 1.1\n[providers.anthropic]\nadmin_key = \"0012345\"\n",
            &[],
        )
        .unwrap();
        // Without `since` its month is unknown: a twelfth a month, said to be spread.
        let d = |m| time::Date::from_calendar_date(2026, m, 1).unwrap();
        assert!(s.fixed[0].spread());
        assert_eq!(
            s.fixed[0].charge(d(time::Month::March)).unwrap().amount,
            Decimal::new(15, 1)
        );
        assert!(
            plan.collectors.iter().any(|c| c.provider() == "anthropic"),
            "a quoted numeric admin_key is a key"
        );
        assert_eq!(s.run.timeout, Duration::from_secs(300));
        assert_eq!(s.pushgateway.url.as_str(), "http://localhost:9091/");
        // Unquoted, 1e3 would be sent as 1000: refused, with the key named, the value not.
        let err = load_text("[providers.anthropic]\nadmin_key = 1e3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.anthropic.admin_key") && err.contains("quote it"),
            "{err}"
        );
        assert!(!err.contains("1000") && !err.contains("1e3"), "{err}");
    }

    #[test]
    fn errors_name_key_and_origin() {
        let err = load_text("[pushgateway]\ntimeout = \"soon\"\n", &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pushgateway.timeout"), "{text}");
        assert!(text.contains("TOML file"), "{text}");

        let err = load_text("", &[("COST_EXPORTER_RUN__TIMEOUT", "-3")]).unwrap_err();
        assert!(
            err.to_string().contains("COST_EXPORTER_RUN__TIMEOUT"),
            "{err}"
        );
    }

    #[test]
    fn every_unknown_key_of_a_section_is_named_with_the_keys_it_takes() {
        let err = load_text(
            "[providers.vercel]\nbudgett = 3\ntokn = \"x\"\n[providers.ionos]\nbudgett = 1\n",
            &[("COST_EXPORTER_PROVIDERS__WASABI__BUCKET", "b")],
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "`providers.vercel.budgett`",
            "`providers.vercel.tokn`",
            "unknown key `budgett` for provider vercel (expected one of: budget, base_url, plan",
            "`providers.ionos.budgett`",
            "unknown key `budgett` for provider ionos (expected one of: budget)",
            "environment variable COST_EXPORTER_PROVIDERS__WASABI__BUCKET: unknown key `bucket` for provider wasabi",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }

    #[test]
    fn names_are_unique_and_every_variable_sets_a_key_of_its_section() {
        let mut names = std::collections::BTreeSet::new();
        let mut vars = std::collections::BTreeSet::new();
        for p in PROVIDERS {
            assert!(names.insert(p.schema.name), "{} twice", p.schema.name);
            for v in p.schema.env {
                assert!(vars.insert(v.name), "{} twice", v.name);
            }
        }
        // Each variable's key is one the section takes: setting it alone never yields an
        // unknown-key error.
        for p in PROVIDERS {
            for v in p.schema.env {
                let result = load_text("", &[(v.name, "abc")]);
                if let Err(e) = result {
                    assert!(!e.to_string().contains("unknown key"), "{}: {e}", v.name);
                }
            }
            for secret in p.schema.secrets {
                let text = format!("[providers.{}]\n{secret} = \"abc\"\n", p.schema.name);
                if let Err(e) = load_text(&text, &[]) {
                    assert!(!e.to_string().contains("unknown key"), "{secret}: {e}");
                }
            }
        }
    }
}
