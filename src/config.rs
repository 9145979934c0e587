//! Configuration: figment layers (defaults < TOML < `COST_EXPORTER_*` < conventional env names
//! and their `_FILE` variants < command-line flags), then validation into typed [`Settings`].
//!
//! Every problem is collected and reported at once, each naming the key and the layer it came
//! from (file path or environment variable), before any network I/O. Secrets are read as raw
//! text, trimmed, held in [`Secret`] and never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::money::{ConfigDecimal, Currency, Fx, Money};
use crate::secret::{RawSecret, Secret};

/// Prefix of the generic environment layer: `COST_EXPORTER_PUSHGATEWAY__URL` is `pushgateway.url`.
pub const ENV_PREFIX: &str = "COST_EXPORTER_";

/// The file tried when `--config` is not given, in the working directory.
pub const LOCAL_CONFIG: &str = "cost-exporter.toml";
/// The file tried after [`LOCAL_CONFIG`].
pub const SYSTEM_CONFIG: &str = "/etc/cost-exporter/config.toml";

/// Keys whose values are credentials: read as raw text, redacted by `check`.
pub const SECRET_KEYS: &[&str] = &[
    "pushgateway.password",
    "providers.vercel.token",
    "providers.supabase.token",
    "providers.wasabi.access_key",
    "providers.wasabi.secret_key",
    "providers.wasabi.billing_access_key",
    "providers.wasabi.billing_secret_key",
    "providers.anthropic.admin_key",
    "providers.openai.admin_key",
    "providers.supabase.service_role_key",
];

/// The conventional environment variables and the keys they set. Each also has a `_FILE`
/// variant naming a file that holds the value (Docker and Kubernetes secrets).
pub const CONVENTIONAL_ENV: &[(&str, &str)] = &[
    ("PUSHGATEWAY_USERNAME", "pushgateway.username"),
    ("PUSHGATEWAY_PASSWORD", "pushgateway.password"),
    ("VERCEL_API_TOKEN", "providers.vercel.token"),
    ("VERCEL_TEAM_ID", "providers.vercel.team_id"),
    ("SUPABASE_ACCESS_TOKEN", "providers.supabase.token"),
    ("SUPABASE_PROJECT_REF", "providers.supabase.project_refs"),
    (
        "SUPABASE_SERVICE_ROLE_KEY",
        "providers.supabase.service_role_key",
    ),
    ("WASABI_ACCESS_KEY", "providers.wasabi.access_key"),
    ("WASABI_SECRET_KEY", "providers.wasabi.secret_key"),
    (
        "WASABI_BILLING_ACCESS_KEY",
        "providers.wasabi.billing_access_key",
    ),
    (
        "WASABI_BILLING_SECRET_KEY",
        "providers.wasabi.billing_secret_key",
    ),
    ("ANTHROPIC_ADMIN_KEY", "providers.anthropic.admin_key"),
    ("OPENAI_ADMIN_KEY", "providers.openai.admin_key"),
];

/// Providers with a usage or billing API, and so a typed `[providers.<name>]` section.
pub const API_PROVIDERS: &[&str] = &["anthropic", "openai", "supabase", "vercel", "wasabi"];

// ---------------------------------------------------------------------------------------------
// Validated settings

/// The validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reporting currency and the rates into it.
    pub fx: Fx,
    /// Where and how to push.
    pub pushgateway: PushgatewaySettings,
    /// Whole-run limits.
    pub run: RunSettings,
    /// The provider HTTP client's limits.
    pub http: HttpSettings,
    /// Every provider named in the configuration, by name.
    pub providers: BTreeMap<String, ProviderSettings>,
    /// `[[fixed]]` entries, each normalised to a monthly amount.
    pub fixed: Vec<FixedEntry>,
    /// `--only`: the providers this run is restricted to.
    pub only: Option<BTreeSet<String>>,
}

/// `[pushgateway]`.
#[derive(Debug, Clone)]
pub struct PushgatewaySettings {
    /// Base URL, without credentials.
    pub url: Url,
    /// Basic-auth user and password, both or neither.
    pub basic_auth: Option<(String, Secret)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt, on 5xx and transport errors.
    pub retries: u32,
}

/// `[run]`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Deadline for collection; collectors still running then are cancelled and counted as
    /// failed (`timeout`), and the push still happens.
    pub timeout: Duration,
}

/// `[http]`: the provider client.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Whole-request timeout, body included.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt, on 408, 429, 5xx and transport errors.
    pub retries: u32,
    /// Longest `Retry-After` that is waited for; a longer one fails the request at once.
    pub max_retry_after: Duration,
}

/// One provider: a budget and, for providers with an API, its settings.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Absolute monthly budget in the reporting currency.
    pub budget: Option<Decimal>,
    /// The API settings, for providers that have one.
    pub api: Option<ApiSettings>,
}

/// The API part of a provider section.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where the API is (https, or http on loopback).
    pub base_url: Url,
    /// The credentials the provider needs; `None` when any is missing.
    pub credentials: Option<Vec<Secret>>,
    /// The plan, where the provider has plans.
    pub plan: Option<String>,
    /// Quota overrides under `[providers.<name>.limits]`.
    pub limits: BTreeMap<String, Decimal>,
    /// Vercel team id.
    pub team_id: Option<String>,
    /// Supabase project refs.
    pub project_refs: Vec<String>,
    /// Wasabi region.
    pub region: Option<String>,
    /// Wasabi buckets.
    pub buckets: Vec<String>,
    /// Wasabi Stats API URL.
    pub stats_url: Option<Url>,
    /// Vercel: `auto`, `charges` or `usage`.
    pub source: Option<String>,
    /// Vercel: how many projects get their own `project` label.
    pub top_n: Option<usize>,
    /// Supabase: how many of the largest tables get a row count.
    pub top_tables: Option<usize>,
    /// Supabase: how many edge functions get their own `function` label.
    pub top_functions: Option<usize>,
    /// Supabase: the service-role (or `sb_secret_…`) key for the project's metrics endpoint.
    pub service_role_key: Option<Secret>,
    /// Supabase: the metrics endpoint, `{ref}` standing for the project ref.
    pub metrics_url: Option<String>,
    /// Anthropic, OpenAI: a model price table read from `price_table` (else the pinned one).
    pub prices: Option<crate::providers::ai::prices::PriceTable>,
    /// Wasabi: USD per TB-month.
    pub price: Option<Decimal>,
    /// Wasabi: prefixes listed at once.
    pub concurrency: Option<usize>,
    /// Wasabi: read the Stats API with the S3 key.
    pub stats: bool,
}

impl ApiSettings {
    /// Whether every credential the provider needs is set.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }
}

/// A `[[fixed]]` entry, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedEntry {
    /// The provider group it is pushed in.
    pub provider: String,
    /// Tells the provider's entries apart (`name` label).
    pub name: String,
    /// The amount per month in its own currency (a yearly amount divided by 12).
    pub monthly: Money,
}

// ---------------------------------------------------------------------------------------------
// Raw, as deserialized

/// A humantime duration such as `"30s"` or `"5m"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dur = humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}); write it like \"30s\", \"2m\" or \"1h 30m\""
            ))
        })?;
        if dur.is_zero() {
            return Err(serde::de::Error::custom("the duration must be above zero"));
        }
        Ok(HumanDuration(dur))
    }
}

/// A list given either as an array or, from an environment variable, as `"a,b"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(StringList(match Either::deserialize(d)? {
            Either::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Either::Many(v) => v,
        }))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    currency: String,
    pushgateway: RawPushgateway,
    run: RawRun,
    http: RawHttp,
    fx: BTreeMap<String, ConfigDecimal>,
    providers: BTreeMap<String, Value>,
    fixed: Vec<RawFixed>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            currency: "USD".into(),
            pushgateway: RawPushgateway::default(),
            run: RawRun {
                timeout: HumanDuration(Duration::from_secs(300)),
            },
            http: RawHttp {
                timeout: HumanDuration(Duration::from_secs(30)),
                connect_timeout: HumanDuration(Duration::from_secs(5)),
                retries: 3,
                max_retry_after: HumanDuration(Duration::from_secs(60)),
            },
            fx: BTreeMap::new(),
            providers: BTreeMap::new(),
            fixed: Vec::new(),
        }
    }
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
}

/// `[providers.<name>]` for a provider without an API: a budget only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlain {
    budget: Option<ConfigDecimal>,
}

/// `[providers.<name>]` for a provider with an API. One struct for all five keeps the
/// validation in one place; [`allowed_api_keys`] says which keys each provider takes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawApi {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    plan: Option<String>,
    limits: BTreeMap<String, ConfigDecimal>,
    token: RawSecret,
    team_id: Option<String>,
    project_refs: StringList,
    admin_key: RawSecret,
    access_key: RawSecret,
    secret_key: RawSecret,
    billing_access_key: RawSecret,
    billing_secret_key: RawSecret,
    region: Option<String>,
    buckets: StringList,
    endpoint: Option<String>,
    stats_url: Option<String>,
    stats: bool,
    source: Option<String>,
    top_projects: Option<u32>,
    top_tables: Option<u32>,
    top_functions: Option<u32>,
    service_role_key: RawSecret,
    metrics_url: Option<String>,
    price_table: Option<String>,
    top_workspaces: Option<u32>,
    price_per_tb_month: Option<ConfigDecimal>,
    concurrency: Option<u32>,
}

fn allowed_api_keys(provider: &str) -> &'static [&'static str] {
    match provider {
        "vercel" => &[
            "budget",
            "base_url",
            "plan",
            "limits",
            "token",
            "team_id",
            "source",
            "top_projects",
        ],
        "supabase" => &[
            "budget",
            "base_url",
            "plan",
            "limits",
            "token",
            "project_refs",
            "top_tables",
            "top_functions",
            "service_role_key",
            "metrics_url",
        ],
        "wasabi" => &[
            "budget",
            "limits",
            "price_per_tb_month",
            "concurrency",
            "region",
            "buckets",
            "endpoint",
            "stats_url",
            "stats",
            "access_key",
            "secret_key",
            "billing_access_key",
            "billing_secret_key",
        ],
        "anthropic" => &[
            "budget",
            "base_url",
            "admin_key",
            "price_table",
            "top_workspaces",
        ],
        "openai" => &[
            "budget",
            "base_url",
            "admin_key",
            "price_table",
            "top_projects",
        ],
        _ => &[],
    }
}

fn plans(provider: &str) -> &'static [&'static str] {
    match provider {
        "vercel" => &["hobby", "pro"],
        "supabase" => &["free", "pro", "team"],
        _ => &[],
    }
}

fn default_base_url(provider: &str) -> &'static str {
    match provider {
        "vercel" => "https://api.vercel.com",
        "supabase" => "https://api.supabase.com",
        "anthropic" => "https://api.anthropic.com",
        "openai" => "https://api.openai.com",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Layers

/// A figment provider with its own name, so that errors and `check` say where a value came
/// from in words a user recognises.
struct Layer<P> {
    inner: P,
    name: String,
    source: Option<PathBuf>,
    /// How a key path is spelled in this layer (`pushgateway.url`, or an env var name).
    spell: fn(&[&str]) -> String,
}

fn dotted(keys: &[&str]) -> String {
    keys.join(".")
}

fn env_spelling(keys: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
}

impl<P: Provider> Provider for Layer<P> {
    fn metadata(&self) -> Metadata {
        let spell = self.spell;
        let md = Metadata::named(self.name.clone())
            .interpolater(move |_: &Profile, keys: &[&str]| spell(keys));
        match &self.source {
            Some(p) => md.source(p.as_path()),
            None => md,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// A fixed set of key/value pairs (environment variables read by [`load`]).
struct Pairs(Vec<(String, Value)>);

impl Provider for Pairs {
    fn metadata(&self) -> Metadata {
        Metadata::named("pairs")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            insert_path(&mut dict, key, value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn insert_path(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(child, Value::Dict(..)) {
                *child = Value::from(Dict::new());
            }
            if let Value::Dict(_, d) = child {
                insert_path(d, rest, value);
            }
        }
    }
}

/// What the command line adds to the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`: a file that must exist.
    pub config: Option<PathBuf>,
    /// `--only`: provider names.
    pub only: Option<Vec<String>>,
    /// `--pushgateway`: overrides `pushgateway.url`.
    pub pushgateway_url: Option<String>,
}

/// The layered configuration before validation: also what `check` prints.
pub struct Loaded {
    figment: Figment,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
}

/// One configuration problem, already phrased for the user.
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

/// Chooses the file: the named one (which must exist), else `./cost-exporter.toml`, else
/// `/etc/cost-exporter/config.toml`, else none.
fn choose_file(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(ConfigError(vec![format!(
                "the config file {} named with --config does not exist (or is not a file)",
                p.display()
            )]));
        }
        return Ok(Some(p.to_path_buf()));
    }
    Ok([LOCAL_CONFIG, SYSTEM_CONFIG]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file()))
}

/// Builds the layers from a file and an environment (passed in, so tests need not touch the
/// process environment).
pub fn layer(overrides: &Overrides, env: &BTreeMap<String, String>) -> Result<Loaded, ConfigError> {
    let file = choose_file(overrides.config.as_deref())?;
    let mut problems = Vec::new();

    let mut figment = Figment::new().merge(Layer {
        inner: Serialized::defaults(RawConfig::default()),
        name: "built-in default".into(),
        source: None,
        spell: dotted,
    });
    if let Some(path) = &file {
        figment = figment.merge(Layer {
            inner: Toml::file_exact(path),
            name: "TOML file".into(),
            source: Some(path.clone()),
            spell: dotted,
        });
    }

    // COST_EXPORTER_A__B=v sets a.b. Values stay text; numbers and booleans are read leniently
    // at extraction, so a numeric-looking token or id keeps its exact spelling.
    let generic: Vec<(String, Value)> = env
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(ENV_PREFIX)?;
            let key = rest.to_ascii_lowercase().replace("__", ".");
            (!key.is_empty()).then(|| (key, Value::from(v.clone())))
        })
        .collect();
    if !generic.is_empty() {
        figment = figment.merge(Layer {
            inner: Pairs(generic),
            name: "environment".into(),
            source: None,
            spell: env_spelling,
        });
    }

    // Conventional names, then their _FILE variants, one layer each so that errors and
    // `check` name the exact variable.
    for (var, key) in CONVENTIONAL_ENV {
        let file_var = format!("{var}_FILE");
        let direct = env.get(*var);
        let from_file = env.get(&file_var).filter(|p| !p.trim().is_empty());
        match (direct, from_file) {
            (Some(_), Some(_)) => problems.push(format!(
                "both {var} and {file_var} are set; set only one of them"
            )),
            (Some(v), None) => {
                figment = figment.merge(Layer {
                    inner: Pairs(vec![((*key).to_owned(), Value::from(v.clone()))]),
                    name: format!("environment variable {var}"),
                    source: None,
                    spell: |_| String::new(),
                });
            }
            (None, Some(path)) => match std::fs::read_to_string(path.trim()) {
                Ok(content) => {
                    figment = figment.merge(Layer {
                        inner: Pairs(vec![((*key).to_owned(), Value::from(content))]),
                        name: format!("file {} (from {file_var})", path.trim()),
                        source: None,
                        spell: |_| String::new(),
                    });
                }
                Err(e) => problems.push(format!(
                    "{file_var} names {}, which cannot be read: {e}",
                    path.trim()
                )),
            },
            (None, None) => {}
        }
    }

    if let Some(url) = &overrides.pushgateway_url {
        figment = figment.merge(Layer {
            inner: Pairs(vec![("pushgateway.url".into(), Value::from(url.clone()))]),
            name: "command-line flag --pushgateway".into(),
            source: None,
            spell: |_| String::new(),
        });
    }

    if problems.is_empty() {
        Ok(Loaded { figment, file })
    } else {
        Err(ConfigError(problems))
    }
}

impl Loaded {
    /// Where the value at `key` came from, in words: `` `pushgateway.url` in ./x.toml (TOML
    /// file)``, `environment variable VERCEL_API_TOKEN`, `COST_EXPORTER_RUN__TIMEOUT`.
    pub fn origin(&self, key: &str) -> String {
        let keys: Vec<&str> = key.split('.').collect();
        match self
            .find(key)
            .and_then(|v| self.figment.get_metadata(v.tag()))
        {
            None => format!("`{key}`"),
            Some(md) => place(md, &md.interpolate(&Profile::Default, &keys)),
        }
    }

    /// The merged value at `key`, where `key` may index arrays: `fixed[2].amount`.
    fn find(&self, key: &str) -> Option<Value> {
        let mut parts = key.split('.');
        let first = parts.next()?;
        let (name, index) = split_index(first);
        let mut value = self.figment.find_value(name).ok()?;
        if let Some(i) = index {
            value = value.into_array()?.into_iter().nth(i)?;
        }
        for part in parts {
            let (name, index) = split_index(part);
            value = value.into_dict()?.remove(name)?;
            if let Some(i) = index {
                value = value.into_array()?.into_iter().nth(i)?;
            }
        }
        Some(value)
    }

    /// Every leaf of the merged configuration with its origin, secrets redacted: `check`.
    pub fn effective(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Ok(map) = self.figment.data()
            && let Some(dict) = map.get(&Profile::Default)
        {
            walk(dict, "", &mut |key, value| {
                let shown = if SECRET_KEYS.contains(&key) {
                    "***".to_owned()
                } else if let Value::String(_, text) = value
                    && text.contains('@')
                    && let Ok(mut url) = Url::parse(text.trim())
                    && (!url.username().is_empty() || url.password().is_some())
                {
                    // A URL with credentials is a configuration error, but `check` prints
                    // before validating: never echo them.
                    let _ = url.set_username("***");
                    let _ = url.set_password(Some("***"));
                    format!("{:?}", url.as_str())
                } else {
                    render_value(value)
                };
                out.push((key.to_owned(), shown, self.origin(key)));
            });
        }
        out
    }

    /// Validates everything, collecting every problem.
    pub fn settings(&self, only: Option<&[String]>) -> Result<Settings, ConfigError> {
        validate(self, only)
    }
}

fn walk(dict: &Dict, prefix: &str, f: &mut dyn FnMut(&str, &Value)) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Dict(_, d) if !d.is_empty() => walk(d, &key, f),
            Value::Array(_, items) if items.iter().any(|i| matches!(i, Value::Dict(..))) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Dict(_, d) => walk(d, &format!("{key}[{i}]"), f),
                        other => f(&format!("{key}[{i}]"), other),
                    }
                }
            }
            other => f(&key, other),
        }
    }
}

fn render_value(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match (n.to_u128(), n.to_i128(), n.to_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => "?".into(),
        },
        Value::Empty(..) => "(empty)".into(),
        Value::Dict(_, d) if d.is_empty() => "{}".into(),
        Value::Dict(..) => "{…}".into(),
        Value::Array(_, items) => {
            let inner: Vec<String> = items.iter().map(render_value).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// Loads and validates in one step: what `push` and `collect` call.
pub fn load(
    overrides: &Overrides,
    env: &BTreeMap<String, String>,
) -> Result<(Loaded, Settings), ConfigError> {
    let loaded = layer(overrides, env)?;
    let settings = loaded.settings(overrides.only.as_deref())?;
    Ok((loaded, settings))
}

// ---------------------------------------------------------------------------------------------
// Validation

fn figment_problems(e: figment::Error) -> Vec<String> {
    e.into_iter().map(|e| describe(&e)).collect()
}

/// One figment error in the words `check` uses: where (key and layer), then what.
fn describe(e: &figment::Error) -> String {
    let keys: Vec<&str> = e.path.iter().map(String::as_str).collect();
    let spelled = match &e.metadata {
        Some(md) if !keys.is_empty() => md.interpolate(&Profile::Default, &keys),
        _ => String::new(),
    };
    let at = match &e.metadata {
        Some(md) => place(md, &spelled),
        None if keys.is_empty() => "configuration".to_owned(),
        None => format!("`{}`", keys.join(".")),
    };
    format!("{at}: {}", e.kind)
}

/// Where a value came from: the key as spelled in its layer, and the layer.
fn place(md: &Metadata, spelled: &str) -> String {
    let source = md.source.as_ref().map(|s| match s {
        figment::Source::File(p) => p.display().to_string(),
        other => other.to_string(),
    });
    match (source, spelled.is_empty()) {
        (Some(src), true) => format!("{src} ({})", md.name),
        (Some(src), false) => format!("`{spelled}` in {src} ({})", md.name),
        (None, true) => md.name.to_string(),
        (None, false) if md.name == "environment" => format!("environment variable {spelled}"),
        (None, false) => format!("`{spelled}` ({})", md.name),
    }
}

/// `fixed[2]` → (`fixed`, Some(2)).
fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((name, i)) => match i.parse() {
            Ok(i) => (name, Some(i)),
            Err(_) => (part, None),
        },
        None => (part, None),
    }
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 32
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
}

/// A URL that credentials may be sent to: https, or http to a loopback address.
fn provider_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL holds credentials; give them in the environment instead".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{raw:?} uses http; provider URLs must use https (http is allowed only for loopback addresses)"
        )),
        other => Err(format!("{raw:?} has scheme {other:?}; expected https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
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
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?} has a query or fragment; give the base URL only"
        ));
    }
    Ok(url)
}

struct Checker<'a> {
    loaded: &'a Loaded,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &str, what: impl fmt::Display) {
        let origin = self.loaded.origin(key);
        self.problems.push(format!("{origin}: {what}"));
    }

    fn secret(&mut self, key: &str, raw: &RawSecret) -> Option<Secret> {
        let text = raw.expose()?;
        match Secret::clean(text) {
            Ok(s) => s,
            Err(problem) => {
                self.fail(key, problem);
                None
            }
        }
    }

    fn amount(&mut self, key: &str, d: Option<ConfigDecimal>) -> Option<Decimal> {
        let d = d?.0;
        if d.is_sign_negative() && !d.is_zero() {
            self.fail(key, format!("{d} is negative; amounts must be 0 or more"));
            return None;
        }
        Some(d)
    }

    fn url(&mut self, key: &str, raw: &str) -> Option<Url> {
        match provider_url(raw) {
            Ok(u) => Some(u),
            Err(e) => {
                self.fail(key, e);
                None
            }
        }
    }
}

fn validate(loaded: &Loaded, only: Option<&[String]>) -> Result<Settings, ConfigError> {
    let raw: RawConfig = loaded
        .figment
        .extract_lossy()
        .map_err(|e| ConfigError(figment_problems(e)))?;
    let mut c = Checker {
        loaded,
        problems: Vec::new(),
    };

    let reporting = match raw.currency.parse::<Currency>() {
        Ok(cur) => Some(cur),
        Err(e) => {
            c.fail("currency", e);
            None
        }
    };

    let mut rates = BTreeMap::new();
    for (code, rate) in &raw.fx {
        let key = format!("fx.{code}");
        match code.parse::<Currency>() {
            Ok(cur) if rate.0 > Decimal::ZERO => {
                rates.insert(cur, rate.0);
            }
            Ok(_) => c.fail(&key, format!("rate {} must be above 0", rate.0)),
            Err(e) => c.fail(&key, e),
        }
    }

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

    // Providers: typed sections, validated one by one so errors carry their key and origin.
    let mut providers = BTreeMap::new();
    for name in raw.providers.keys() {
        let key = format!("providers.{name}");
        if !is_slug(name) {
            c.fail(&key, "provider names are lowercase letters, digits, '_' or '-', at most 32, starting with a letter");
            continue;
        }
        if API_PROVIDERS.contains(&name.as_str()) {
            if let Some(p) = validate_api(&mut c, name, &key) {
                providers.insert(name.clone(), p);
            }
        } else {
            match loaded.figment.extract_inner_lossy::<RawPlain>(&key) {
                Ok(plain) => {
                    let budget = c.amount(&format!("{key}.budget"), plain.budget);
                    providers.insert(name.clone(), ProviderSettings { budget, api: None });
                }
                Err(e) => c.problems.extend(figment_problems(e)),
            }
        }
    }

    // Fixed entries.
    let mut fixed = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, f) in raw.fixed.iter().enumerate() {
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
        if let (true, Some(amount), Some(currency)) = (ok, amount, currency) {
            let monthly = match f.period {
                Period::Monthly => amount,
                Period::Yearly => amount / Decimal::from(12),
            };
            fixed.push(FixedEntry {
                provider: f.provider.clone(),
                name: name.to_owned(),
                monthly: Money {
                    amount: monthly,
                    currency,
                },
            });
        }
    }
    // A provider that only has fixed entries still gets a (budget-less) section.
    for f in &fixed {
        providers
            .entry(f.provider.clone())
            .or_insert(ProviderSettings {
                budget: None,
                api: None,
            });
    }

    // Every currency in use needs a rate.
    if let Some(reporting) = reporting {
        let fx = Fx::new(reporting, rates.clone());
        for (i, f) in fixed.iter().enumerate() {
            if !fx.has(f.monthly.currency) {
                c.fail(
                    &format!("fixed[{i}].currency"),
                    format!("no [fx] rate converts {} into the reporting currency {reporting}; add `{} = <rate>` under [fx]", f.monthly.currency, f.monthly.currency),
                );
            }
        }
        for (name, p) in &providers {
            if p.api.as_ref().is_some_and(ApiSettings::has_credentials) && !fx.has(Currency::USD) {
                c.fail(
                    &format!("providers.{name}"),
                    format!("{name} bills in USD, and no [fx] rate converts USD into the reporting currency {reporting}; add `USD = <rate>` under [fx]"),
                );
            }
        }
    }

    // --only names known providers.
    let only = only.map(|names| {
        let set: BTreeSet<String> = names.iter().map(|n| n.trim().to_owned()).collect();
        for n in &set {
            if !providers.contains_key(n) {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                c.problems.push(format!(
                    "--only names {n:?}, which the configuration does not have (known: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        set
    });

    let http = HttpSettings {
        timeout: raw.http.timeout.0,
        connect_timeout: raw.http.connect_timeout.0,
        retries: raw.http.retries,
        max_retry_after: raw.http.max_retry_after.0,
    };

    match (c.problems.is_empty(), reporting, pg_url) {
        (true, Some(reporting), Some(url)) => Ok(Settings {
            fx: Fx::new(reporting, rates),
            pushgateway: PushgatewaySettings {
                url,
                basic_auth,
                timeout: pg.timeout.0,
                retries: pg.retries,
            },
            run: RunSettings {
                timeout: raw.run.timeout.0,
            },
            http,
            providers,
            fixed,
            only,
        }),
        _ => Err(ConfigError(c.problems)),
    }
}

fn validate_api(c: &mut Checker<'_>, name: &str, key: &str) -> Option<ProviderSettings> {
    // Unknown keys first: the error names the key and the layer that set it.
    if let Ok(Value::Dict(_, dict)) = c.loaded.figment.find_value(key) {
        let allowed = allowed_api_keys(name);
        for k in dict.keys() {
            if !allowed.contains(&k.as_str()) {
                c.fail(
                    &format!("{key}.{k}"),
                    format!(
                        "unknown key `{k}` for provider {name} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    let raw: RawApi = match c.loaded.figment.extract_inner_lossy(key) {
        Ok(r) => r,
        Err(e) => {
            c.problems.extend(figment_problems(e));
            return None;
        }
    };
    let budget = c.amount(&format!("{key}.budget"), raw.budget);

    let plan = match &raw.plan {
        Some(p) if !plans(name).contains(&p.as_str()) => {
            c.fail(
                &format!("{key}.plan"),
                format!(
                    "unknown plan {p:?} for {name} (expected one of: {})",
                    plans(name).join(", ")
                ),
            );
            None
        }
        Some(p) => Some(p.clone()),
        None => plans(name).first().map(|p| (*p).to_owned()),
    };
    let mut limits = BTreeMap::new();
    for (k, v) in &raw.limits {
        let known: Vec<&str> = match name {
            "vercel" => crate::providers::vercel::RESOURCES
                .iter()
                .map(|(n, _)| *n)
                .collect(),
            "supabase" => crate::providers::supabase::RESOURCES
                .iter()
                .map(|(n, _)| *n)
                .collect(),
            "wasabi" => crate::providers::wasabi::RESOURCES
                .iter()
                .map(|(n, _)| *n)
                .collect(),
            _ => Vec::new(),
        };
        if !known.is_empty() && !known.contains(&k.as_str()) {
            c.fail(
                &format!("{key}.limits.{k}"),
                format!(
                    "unknown limit `{k}` for {name} (expected one of: {})",
                    known.join(", ")
                ),
            );
            continue;
        }
        if let Some(d) = c.amount(&format!("{key}.limits.{k}"), Some(*v)) {
            limits.insert(k.clone(), d);
        }
    }
    let source = raw.source.as_deref().map(str::trim).map(str::to_owned);
    if let Some(s) = &source
        && crate::providers::vercel::Source::parse(s).is_none()
    {
        c.fail(
            &format!("{key}.source"),
            format!("unknown source {s:?} (expected auto, charges or usage)"),
        );
    }
    for (field, value) in [
        ("top_projects", raw.top_projects),
        ("top_workspaces", raw.top_workspaces),
        ("concurrency", raw.concurrency),
        ("top_tables", raw.top_tables),
        ("top_functions", raw.top_functions),
    ] {
        if let Some(n) = value
            && !(1..=100).contains(&n)
        {
            c.fail(
                &format!("{key}.{field}"),
                format!("{n} is out of range (1 to 100)"),
            );
        }
    }
    let service_role_key = c.secret(&format!("{key}.service_role_key"), &raw.service_role_key);
    if service_role_key.is_some() && raw.project_refs.0.len() > 1 {
        c.fail(
            &format!("{key}.service_role_key"),
            "a service-role key belongs to one project, but several project_refs are set",
        );
    }
    let prices = match raw.price_table.as_deref().map(str::trim) {
        None | Some("") if matches!(name, "anthropic" | "openai") => {
            match crate::providers::ai::prices::PriceTable::pinned() {
                Ok(t) => Some(t),
                Err(e) => {
                    c.fail(key, e);
                    None
                }
            }
        }
        None | Some("") => None,
        Some(path) => match crate::providers::ai::prices::PriceTable::from_file(Path::new(path)) {
            Ok(t) => Some(t),
            Err(e) => {
                c.fail(&format!("{key}.price_table"), e);
                None
            }
        },
    };
    let price = c.amount(&format!("{key}.price_per_tb_month"), raw.price_per_tb_month);
    let metrics_url = raw.metrics_url.as_deref().map(str::trim).map(str::to_owned);
    if let Some(m) = &metrics_url {
        if !m.contains("{ref}") {
            c.fail(
                &format!("{key}.metrics_url"),
                format!("{m:?} has no {{ref}} placeholder for the project ref"),
            );
        } else {
            let _ = c.url(&format!("{key}.metrics_url"), &m.replace("{ref}", "ref"));
        }
    }

    let region = raw.region.clone().map(|r| r.trim().to_owned());
    if let Some(r) = &region
        && !r.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        c.fail(
            &format!("{key}.region"),
            format!("{r:?} is not a region name such as eu-central-1"),
        );
    }
    let base_raw = match name {
        "wasabi" => raw.endpoint.clone().unwrap_or_else(|| {
            format!(
                "https://s3.{}.wasabisys.com",
                region.as_deref().unwrap_or("us-east-1")
            )
        }),
        _ => raw
            .base_url
            .clone()
            .unwrap_or_else(|| default_base_url(name).to_owned()),
    };
    let url_key = if name == "wasabi" {
        format!("{key}.endpoint")
    } else {
        format!("{key}.base_url")
    };
    let base_url = c.url(&url_key, &base_raw);
    let stats_url = if name == "wasabi" {
        let s = raw
            .stats_url
            .clone()
            .unwrap_or_else(|| "https://stats.wasabisys.com".into());
        c.url(&format!("{key}.stats_url"), &s)
    } else {
        None
    };

    let secret = |c: &mut Checker<'_>, field: &str, raw: &RawSecret| {
        c.secret(&format!("{key}.{field}"), raw)
    };
    let credentials = match name {
        "vercel" | "supabase" => secret(c, "token", &raw.token).map(|t| vec![t]),
        "anthropic" | "openai" => secret(c, "admin_key", &raw.admin_key).map(|t| vec![t]),
        "wasabi" => {
            let a = secret(c, "access_key", &raw.access_key);
            let s = secret(c, "secret_key", &raw.secret_key);
            let ba = secret(c, "billing_access_key", &raw.billing_access_key);
            let bs = secret(c, "billing_secret_key", &raw.billing_secret_key);
            match (a, s) {
                (Some(a), Some(s)) => {
                    Some([vec![a, s], ba.into_iter().chain(bs).collect()].concat())
                }
                (Some(_), None) | (None, Some(_)) => {
                    c.fail(
                        &format!("{key}.secret_key"),
                        "WASABI_ACCESS_KEY and WASABI_SECRET_KEY must be set together",
                    );
                    None
                }
                (None, None) => None,
            }
        }
        _ => None,
    };

    let mut project_refs = Vec::new();
    for r in &raw.project_refs.0 {
        if r.chars().all(|ch| ch.is_ascii_alphanumeric()) && !r.is_empty() && r.len() <= 64 {
            project_refs.push(r.clone());
        } else {
            c.fail(
                &format!("{key}.project_refs"),
                format!("{r:?} is not a Supabase project ref (letters and digits)"),
            );
        }
    }
    for b in &raw.buckets.0 {
        let valid = (3..=63).contains(&b.len())
            && b.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.');
        if !valid {
            c.fail(
                &format!("{key}.buckets"),
                format!(
                    "{b:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
                ),
            );
        }
    }

    Some(ProviderSettings {
        budget,
        api: Some(ApiSettings {
            base_url: base_url?,
            credentials,
            plan,
            limits,
            team_id: raw
                .team_id
                .clone()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
            project_refs,
            region,
            buckets: raw.buckets.0.clone(),
            stats_url,
            source,
            top_n: raw.top_projects.or(raw.top_workspaces).map(|n| n as usize),
            top_tables: raw.top_tables.map(|n| n as usize),
            top_functions: raw.top_functions.map(|n| n as usize),
            service_role_key,
            metrics_url,
            prices,
            price,
            concurrency: raw.concurrency.map(|n| n as usize),
            stats: raw.stats,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    fn load_text(text: &str, e: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let f = file(text);
        let o = Overrides {
            config: Some(f.path().to_path_buf()),
            ..Overrides::default()
        };
        load(&o, &env(e)).map(|(_, s)| s)
    }

    #[test]
    fn slugs() {
        assert!(is_slug("ovh"));
        assert!(is_slug("claude-max"));
        assert!(!is_slug("OVH"));
        assert!(!is_slug("1x"));
        assert!(!is_slug(""));
    }

    #[test]
    fn http_provider_urls_only_on_loopback() {
        assert!(provider_url("http://127.0.0.1:8080").is_ok());
        assert!(provider_url("http://localhost:1").is_ok());
        assert!(provider_url("http://[::1]:1").is_ok());
        assert!(provider_url("http://api.vercel.com").is_err());
        assert!(provider_url("https://api.vercel.com").is_ok());
        assert!(provider_url("ftp://x").is_err());
    }

    #[test]
    fn env_beats_file_and_conventional_beats_prefixed() {
        let s = load_text(
            "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[providers.vercel]\nbudget = 5\n",
            &[
                ("COST_EXPORTER_PROVIDERS__VERCEL__BUDGET", "7"),
                ("COST_EXPORTER_PROVIDERS__VERCEL__TOKEN", "from-prefixed"),
                ("VERCEL_API_TOKEN", "  0123  "),
            ],
        )
        .unwrap();
        let v = &s.providers["vercel"];
        assert_eq!(v.budget, Some(Decimal::from(7)));
        let creds = v.api.as_ref().unwrap().credentials.as_ref().unwrap();
        assert_eq!(
            creds[0].expose(),
            "0123",
            "numeric-looking secret kept verbatim and trimmed"
        );
    }

    #[test]
    fn yearly_amounts_become_monthly_and_toml_numbers_work_as_secrets() {
        let s = load_text(
            "[[fixed]]\nprovider = \"ovh\"\nname = \"domain\"\namount = 18\ncurrency = \"EUR\"\nperiod = \"yearly\"\n\
             [fx]\nEUR = 1.1\n[providers.anthropic]\nadmin_key = 12345\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.fixed[0].monthly.amount, Decimal::new(15, 1));
        let creds = s.providers["anthropic"].api.as_ref().unwrap();
        assert_eq!(creds.credentials.as_ref().unwrap()[0].expose(), "12345");
        assert_eq!(s.run.timeout, Duration::from_secs(300));
        assert_eq!(s.pushgateway.url.as_str(), "http://localhost:9091/");
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
}
