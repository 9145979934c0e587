//! The figment layers, each named so that errors and `check` can say where a value came from
//! in words a user recognises (`` `run.timeout` in ./cost-exporter.toml (TOML file)``,
//! `environment variable PUSHGATEWAY_PASSWORD`), and the layered configuration before validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

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
    /// Top-level merged values already looked up, by name: finding the origin of
    /// `fixed[i].amount` walks this copy instead of asking figment for (a clone of) the whole
    /// `fixed` array each time, which made validating many entries quadratic.
    tops: std::sync::Mutex<std::collections::HashMap<String, Option<Value>>>,
    /// Each provider's named accounts, in order (providers without any are absent).
    pub(crate) accounts: BTreeMap<String, Vec<String>>,
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
    let mut generic: Vec<(String, Value)> = Vec::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // The run's clock, not a key of the configuration.
        if k == crate::clock::VARIABLE {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if key.is_empty() {
            continue;
        }
        // No key of the configuration is deeper than this: a deeper one is a mistake (and
        // an unbounded one would nest without end).
        if key.split('.').count() > MAX_KEY_DEPTH {
            let shown: String = k.chars().take(60).collect();
            problems.push(format!(
                "environment variable {shown}…: more than {MAX_KEY_DEPTH} levels of `__`; no key is that deep"
            ));
            continue;
        }
        generic.push((key, Value::from(v.clone())));
    }
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
        figment = conventional(figment, &mut problems, env, v.var.name, &v.key);
    }

    // Named accounts: each account's own variables (`<VARIABLE>__<ACCOUNT>`), then what it
    // inherits from its provider's section.
    let accounts = accounts(&figment, &mut problems);
    for (provider, names) in &accounts {
        let section = schema.providers.iter().find(|s| s.name == provider);
        for v in section.map(|s| s.env).unwrap_or_default() {
            for name in names {
                let var = format!("{}__{}", v.name, account_env_name(name));
                let key = format!("providers.{provider}.accounts.{name}.{}", v.key);
                figment = conventional(figment, &mut problems, env, &var, &key);
            }
            // A variable for an account the configuration does not declare.
            let prefix = format!("{}__", v.name);
            for k in env.keys() {
                let Some(suffix) = k.strip_prefix(&prefix) else {
                    continue;
                };
                let suffix = suffix.strip_suffix("_FILE").unwrap_or(suffix);
                if !suffix.is_empty()
                    && !env.get(k).is_some_and(|v| v.trim().is_empty())
                    && !names.iter().any(|n| account_env_name(n) == suffix)
                {
                    problems.push(format!(
                        "environment variable {k} names account {:?} of {provider}, which the configuration does not declare (declare it as [providers.{provider}.accounts.<name>]; declared: {})",
                        suffix.to_ascii_lowercase(),
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                    ));
                }
            }
        }
        for name in names {
            figment = inherit(figment, provider, name);
        }
    }
    // Account variables of providers without a declared account.
    for v in schema.variables() {
        let Some(provider) = v
            .key
            .strip_prefix("providers.")
            .and_then(|k| k.split('.').next())
        else {
            continue;
        };
        if accounts.contains_key(provider) {
            continue;
        }
        let prefix = format!("{}__", v.var.name);
        for k in env.keys() {
            if k.starts_with(&prefix) && !env.get(k).is_some_and(|v| v.trim().is_empty()) {
                problems.push(format!(
                    "environment variable {k} names an account of {provider}, which declares none (declare it as [providers.{provider}.accounts.<name>])"
                ));
            }
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
            secrets: with_accounts(schema.secret_keys(), &accounts),
            tops: Default::default(),
            accounts,
        })
    } else {
        Err(ConfigError(problems))
    }
}

/// One conventional variable (or its `_FILE` variant, or a file named after it in the
/// credentials directory) setting `key`, as its own named layer.
fn conventional(
    mut figment: Figment,
    problems: &mut Vec<String>,
    env: &BTreeMap<String, String>,
    var: &str,
    key: &str,
) -> Figment {
    let file_var = format!("{var}_FILE");
    // An empty value counts as unset (compose passes every listed variable, empty or not).
    let direct = env.get(var).filter(|v| !v.trim().is_empty());
    let from_file = env.get(&file_var).filter(|p| !p.trim().is_empty());
    let layer = |figment: Figment, value: String, name: String| {
        figment.merge(Layer {
            inner: Pairs(vec![(key.to_owned(), Value::from(value))]),
            name,
            source: None,
            spell: |_| String::new(),
        })
    };
    match (direct, from_file) {
        (Some(_), Some(_)) => problems.push(format!(
            "both {var} and {file_var} are set; set only one of them"
        )),
        (Some(value), None) => {
            figment = layer(
                figment,
                value.clone(),
                format!("environment variable {var}"),
            );
        }
        (None, Some(path)) => match read_secret_file(path.trim()) {
            Ok(content) => {
                figment = layer(
                    figment,
                    content,
                    format!("file {} (from {file_var})", path.trim()),
                );
            }
            Err(e) => problems.push(format!("{file_var} names {}, {e}", path.trim())),
        },
        (None, None) => {
            // A directory of credential files, one per variable name: a Kubernetes Secret
            // mounted as a volume, or systemd's LoadCredential= (CREDENTIALS_DIRECTORY).
            if let Some(dir) = env
                .get(CREDENTIALS_DIRECTORY)
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
            {
                let path = Path::new(dir).join(var);
                if path.exists() {
                    match read_secret_file(&path.to_string_lossy()) {
                        Ok(content) => {
                            figment = layer(
                                figment,
                                content,
                                format!("file {} (in {CREDENTIALS_DIRECTORY})", path.display()),
                            );
                        }
                        Err(e) => problems.push(format!(
                            "{CREDENTIALS_DIRECTORY} holds {}, {e}",
                            path.display()
                        )),
                    }
                }
            }
        }
    }
    figment
}

/// The longest account name.
const MAX_ACCOUNT_NAME: usize = 32;

/// Whether `name` is a valid account name: 1 to 32 lowercase letters, digits, `_` and `-`,
/// starting with a letter or a digit.
pub(crate) fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ACCOUNT_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// How an account is spelled in a variable's name: upper case, `-` as `_`
/// (`client-a` → `ACME_API_TOKEN__CLIENT_A`).
pub(crate) fn account_env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The named accounts each provider section declares (`[providers.<name>.accounts.<account>]`),
/// in order; every invalid or colliding name recorded as a problem and left out.
fn accounts(figment: &Figment, problems: &mut Vec<String>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Ok(Value::Dict(_, providers)) = figment.find_value("providers") else {
        return out;
    };
    for (provider, section) in &providers {
        let Some(accounts) = section.as_dict().and_then(|d| d.get("accounts")) else {
            continue;
        };
        let Some(accounts) = accounts.as_dict() else {
            problems.push(format!(
                "`providers.{provider}.accounts` must be a table of accounts, [providers.{provider}.accounts.<name>]"
            ));
            continue;
        };
        let mut names: Vec<String> = Vec::new();
        for (name, value) in accounts {
            if !is_account_name(name) {
                problems.push(format!(
                    "`providers.{provider}.accounts.{name}`: an account name is 1 to {MAX_ACCOUNT_NAME} lowercase letters, digits, '_' or '-', starting with a letter or a digit"
                ));
                continue;
            }
            if value.as_dict().is_none() {
                problems.push(format!(
                    "`providers.{provider}.accounts.{name}` must be a table ([providers.{provider}.accounts.{name}])"
                ));
                continue;
            }
            if let Some(other) = names
                .iter()
                .find(|n| account_env_name(n) == account_env_name(name))
            {
                problems.push(format!(
                    "accounts {other:?} and {name:?} of {provider} are spelled alike in variable names ({}); rename one",
                    account_env_name(name)
                ));
                continue;
            }
            names.push(name.clone());
        }
        if !names.is_empty() {
            out.insert(provider.clone(), names);
        }
    }
    out
}

/// Keys of a provider section an account does not inherit: its accounts, and its budget (the
/// section's `budget` is the provider's total over its accounts; an account has its own).
const NOT_INHERITED: &[&str] = &["accounts", "budget"];

/// Gives account `name` of `provider` every setting of the provider's section it does not set
/// itself, leaf by leaf (a table such as `limits` merges), each as a layer that says where the
/// inherited value came from.
fn inherit(mut figment: Figment, provider: &str, name: &str) -> Figment {
    let Ok(Value::Dict(_, section)) = figment.find_value(&format!("providers.{provider}")) else {
        return figment;
    };
    let own = figment
        .find_value(&format!("providers.{provider}.accounts.{name}"))
        .ok();
    let mut leaves: Vec<(String, Value)> = Vec::new();
    for (k, v) in &section {
        if NOT_INHERITED.contains(&k.as_str()) {
            continue;
        }
        walk_value(v, k, &mut |path, value| {
            leaves.push((path.to_owned(), value.clone()))
        });
    }
    for (path, value) in leaves {
        let set = own.as_ref().is_some_and(|o| {
            path.split('.')
                .try_fold(o, |v, part| v.as_dict().and_then(|d| d.get(part)))
                .is_some()
        });
        if set {
            continue;
        }
        let from = match figment.get_metadata(value.tag()) {
            Some(md) => {
                let keys: Vec<String> = format!("providers.{provider}.{path}")
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                place(md, &md.interpolate(&Profile::Default, &keys))
            }
            None => format!("`providers.{provider}.{path}`"),
        };
        figment = figment.merge(Layer {
            inner: Pairs(vec![(
                format!("providers.{provider}.accounts.{name}.{path}"),
                value,
            )]),
            name: format!("{from}, for account {name}"),
            source: None,
            spell: |_| String::new(),
        });
    }
    figment
}

/// Every leaf under `value`, with its dotted path from `path`.
fn walk_value(value: &Value, path: &str, f: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Dict(_, d) if !d.is_empty() => {
            for (k, v) in d {
                walk_value(v, &format!("{path}.{k}"), f);
            }
        }
        leaf => f(path, leaf),
    }
}

/// The secret keys, with each account's own copy of its provider's.
fn with_accounts(
    mut secrets: BTreeSet<String>,
    accounts: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let mut extra = Vec::new();
    for (provider, names) in accounts {
        let prefix = format!("providers.{provider}.");
        for key in &secrets {
            if let Some(k) = key.strip_prefix(&prefix) {
                for name in names {
                    extra.push(format!("{prefix}accounts.{name}.{k}"));
                }
            }
        }
    }
    secrets.extend(extra);
    secrets
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
        let mut tops = match self.tops.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let top = tops.entry(name.to_owned()).or_insert_with(|| {
            #[cfg(test)]
            TOP_LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.figment.find_value(name).ok()
        });
        let mut value = top.as_ref()?;
        if let Some(i) = index {
            value = value.as_array()?.get(i)?;
        }
        for part in parts {
            let (name, index) = split_index(part);
            value = value.as_dict()?.get(name)?;
            if let Some(i) = index {
                value = value.as_array()?.get(i)?;
            }
        }
        Some(value.clone())
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
                let shown = if self.secrets.contains(key) || looks_secret(key) {
                    // Declared secrets, and any key that looks like one (a misspelt
                    // `admin_kye` is still a key).
                    "***".to_owned()
                } else if let Value::String(_, text) = value
                    && text.contains("://")
                {
                    // A URL's credentials and query are never echoed, parsed or not.
                    format!("{:?}", redact_url(text))
                } else {
                    render_value(value)
                };
                // The walked value carries its tag: no lookup by key (which would clone the
                // merged tree for every leaf, quadratic in the number of entries).
                let keys: Vec<&str> = key.split('.').collect();
                let origin = match self.figment.get_metadata(value.tag()) {
                    None => format!("`{key}`"),
                    Some(md) => place(md, &md.interpolate(&Profile::Default, &keys)),
                };
                out.push((key.to_owned(), shown, origin));
            });
        }
        out
    }
}

/// A directory holding one file per conventional variable, named after it.
const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// The deepest key `COST_EXPORTER_…` may set (`providers.x.limits.y` is 4).
const MAX_KEY_DEPTH: usize = 6;

/// Largest secret file read through a `_FILE` variable.
const SECRET_FILE_LIMIT: u64 = 64 << 10;

/// A `_FILE` variable's file: a regular file (a symlink to one is fine, as Kubernetes mounts
/// secrets) of at most 64 KiB, read as UTF-8. A FIFO, a device or a directory is refused
/// without being opened for reading, so nothing blocks or grows. Also for provider modules
/// whose credential is a file named by a setting (a key file).
pub(crate) fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("which cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("which is not a regular file (a FIFO, a device or a directory)".into());
    }
    if meta.len() > SECRET_FILE_LIMIT {
        return Err(format!(
            "which holds {} bytes; a secret file may hold at most {SECRET_FILE_LIMIT}",
            meta.len()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("which cannot be read: {e}"))?;
    let mut buf = Vec::new();
    // The size may change between the check and the read: read one byte more than allowed.
    file.take(SECRET_FILE_LIMIT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("which cannot be read: {e}"))?;
    if buf.len() as u64 > SECRET_FILE_LIMIT {
        return Err(format!("which holds more than {SECRET_FILE_LIMIT} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "which is not UTF-8 text".into())
}

/// Whether a key's last part looks like it holds a secret: a word of it is, or is one typo
/// away from, token, key, secret, password, passwd, credential or auth (`tokn`, `admin_kye`
/// and `scret` are caught: a misspelt key still holds the secret it was meant for).
pub(crate) fn looks_secret(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "pwd",
        "credential",
        "credentials",
        "auth",
        "apikey",
    ];
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    last.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|w| {
            WORDS.iter().any(|s| {
                let allowed = if s.len() <= 4 { 1 } else { 2 };
                w.contains(s) || typo_distance(w, s) <= allowed
            })
        })
}

/// Edit distance with adjacent transpositions counted as one (optimal string alignment).
fn typo_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// A URL-looking text with its userinfo (`user:pass@`) and query replaced by `***`, parsed or
/// not: `http://u:p@[bad/x?k=v` → `http://***@[bad/x?***`.
pub(crate) fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A figment error's text without quoted source lines: a TOML parse error shows the offending
/// line, which may hold a secret (an unterminated or duplicated key). Keeps "TOML parse error
/// at line L, column C" and the problem.
fn without_source_lines(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            let after_digits = t
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !(t.is_empty() || t.starts_with('|') || after_digits.starts_with('|'))
        })
        .map(|l| {
            // The problem line may quote a value (`found string "…"`): keys stay, values go.
            if l.contains("value") || l.contains("string") {
                elide_quoted(l)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// `found string "secret", expected u32` → `found string "…", expected u32`.
fn elide_quoted(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut inside = false;
    for c in line.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
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
    format!("{at}: {}", without_source_lines(&e.kind.to_string()))
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

/// Top-level values asked of figment, for the test that keeps validation linear.
#[cfg(test)]
static TOP_LOOKUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many top-level values were asked of figment so far in this process.
#[cfg(test)]
pub(crate) fn top_lookups() -> usize {
    TOP_LOOKUPS.load(std::sync::atomic::Ordering::SeqCst)
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries_parsed_or_not() {
        assert_eq!(
            redact_url("http://user:SENTINEL@[bad/path?token=SENT2"),
            "http://***@[bad/path?***"
        );
        assert_eq!(redact_url("https://h:9091/x"), "https://h:9091/x");
        assert_eq!(redact_url("https://a@b@host"), "https://***@host");
        assert_eq!(redact_url("no url"), "no url");
    }

    #[test]
    fn secret_looking_keys_are_recognised() {
        for k in [
            "providers.x.admin_kye",
            "providers.x.api_token",
            "pushgateway.passwd",
            "x.client_secret",
            "a.b.auth",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["providers.x.budget", "currency", "providers.x.top_projects"] {
            assert!(!looks_secret(k), "{k}");
        }
    }

    #[test]
    fn toml_errors_keep_the_position_and_the_problem_not_the_line() {
        let text = "TOML parse error at line 3, column 37\n  |\n3 | admin_key = \"SENTINEL\n  |                                     ^\ninvalid basic string\n";
        let out = without_source_lines(text);
        assert!(!out.contains("SENTINEL"), "{out}");
        assert!(
            out.contains("line 3, column 37") && out.contains("invalid basic string"),
            "{out}"
        );
    }
}
