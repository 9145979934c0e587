//! The figment layers, each named so that errors and `check` can say where a value came from
//! in words a user recognises (`` `run.timeout` in ./cost-exporter.toml (TOML file)``,
//! `environment variable PUSHGATEWAY_PASSWORD`), and the layered configuration before validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use url::Url;

use super::global::RawConfig;
use super::{ConfigError, ENV_PREFIX, Schema};

/// The file tried when `--config` is not given, in the working directory.
const LOCAL_CONFIG: &str = "cost-exporter.toml";
/// The file tried after [`LOCAL_CONFIG`].
const SYSTEM_CONFIG: &str = "/etc/cost-exporter/config.toml";

/// A figment provider with its own name.
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

/// A fixed set of key/value pairs (environment variables read by [`layer`]).
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
pub(crate) struct Loaded {
    pub(super) figment: Figment,
    /// The file that was read, if any.
    pub(crate) file: Option<PathBuf>,
    /// Dotted keys whose values are credentials.
    secrets: BTreeSet<String>,
}

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
/// process environment); `schema` says which conventional variables set which keys.
pub(crate) fn layer(
    overrides: &Overrides,
    env: &BTreeMap<String, String>,
    schema: &Schema,
) -> Result<Loaded, ConfigError> {
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
    for v in schema.variables() {
        let var = v.var.name;
        let file_var = format!("{var}_FILE");
        let direct = env.get(var);
        let from_file = env.get(&file_var).filter(|p| !p.trim().is_empty());
        match (direct, from_file) {
            (Some(_), Some(_)) => problems.push(format!(
                "both {var} and {file_var} are set; set only one of them"
            )),
            (Some(value), None) => {
                figment = figment.merge(Layer {
                    inner: Pairs(vec![(v.key, Value::from(value.clone()))]),
                    name: format!("environment variable {var}"),
                    source: None,
                    spell: |_| String::new(),
                });
            }
            (None, Some(path)) => match std::fs::read_to_string(path.trim()) {
                Ok(content) => {
                    figment = figment.merge(Layer {
                        inner: Pairs(vec![(v.key, Value::from(content))]),
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
        Ok(Loaded {
            figment,
            file,
            secrets: schema.secret_keys(),
        })
    } else {
        Err(ConfigError(problems))
    }
}

impl Loaded {
    /// Where the value at `key` came from, in words: `` `pushgateway.url` in ./x.toml (TOML
    /// file)``, `environment variable PUSHGATEWAY_PASSWORD`, `COST_EXPORTER_RUN__TIMEOUT`.
    pub(crate) fn origin(&self, key: &str) -> String {
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

    /// The keys set under `key` (a table), in order.
    pub(super) fn keys_under(&self, key: &str) -> Vec<String> {
        match self.figment.find_value(key) {
            Ok(Value::Dict(_, dict)) => dict.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Every leaf of the merged configuration with its origin, secrets redacted: `check`.
    pub(crate) fn effective(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if let Ok(map) = self.figment.data()
            && let Some(dict) = map.get(&Profile::Default)
        {
            walk(dict, "", &mut |key, value| {
                let shown = if self.secrets.contains(key) {
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

/// One figment error in the words `check` uses: where (key and layer), then what.
pub(super) fn describe(e: &figment::Error) -> String {
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
