//! The providers' published API descriptions as test oracles.
//!
//! A provider's description (its OpenAPI document, or one derived from its generated SDK's
//! types where that is all it publishes) is pinned under `tests/fixtures/<provider>/` with its
//! origin. A mock checks every request it receives against it ([`Spec::request_violations`],
//! [`assert_requests_follow`]): the operation exists, path parameters, required and allowed
//! query parameters and their formats, limits and enums, required headers and the declared
//! authentication, the JSON or form body. It answers only what the description allows
//! ([`Spec::answer`] refuses a body its response schema does not). A mock written from our own
//! reading of the docs can no longer be more lenient than the provider.
//!
//! The schema checker covers the subset of OpenAPI 3.0 and 3.1 the pinned documents use:
//! `$ref` (any local pointer), `allOf`, `oneOf`, `anyOf`, `enum`, `const`, `type` (a name or a
//! list, `null` included), `nullable`, `required`, `properties`, `additionalProperties`,
//! `items`, `minimum`/`maximum` and their exclusive forms (3.0 booleans and 3.1 numbers),
//! `minLength`/`maxLength`, `pattern`, `minItems`/`maxItems`, and the formats `date-time`,
//! `date`, `int32` and `int64`.

use std::collections::BTreeMap;

use serde_json::Value;
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::support;

/// A pinned OpenAPI document.
pub struct Spec {
    /// The fixture it was read from, for messages.
    name: String,
    doc: Value,
    /// A prefix the mock's paths carry before the document's paths (a base path such as
    /// `/client/v4` that the document's `servers` hold instead).
    prefix: String,
}

/// An operation found for a request: its path template, the operation and its path item.
struct Found<'a> {
    template: &'a str,
    op: &'a Value,
    item: &'a Value,
    /// Path parameter values by name, percent-decoded.
    path_params: BTreeMap<String, String>,
}

impl Spec {
    /// Reads `tests/fixtures/<fixture>` (OpenAPI 3 JSON).
    pub fn load(fixture: &str) -> Spec {
        let path = support::fixture(fixture);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
            "{fixture}: not an OpenAPI 3 document"
        );
        Spec {
            name: fixture.to_owned(),
            doc,
            prefix: String::new(),
        }
    }

    /// The same document, for a mock whose paths start with `prefix` (stripped before
    /// matching).
    pub fn with_prefix(mut self, prefix: &str) -> Spec {
        self.prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// The document itself, for tests that read a fact from it.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Resolves a local `$ref` (`#/components/schemas/X`, or any `#/…` pointer).
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| {
                        panic!("{}: only local $ref are supported ({r})", self.name)
                    });
                    v = self
                        .doc
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("{}: $ref {r} points nowhere", self.name));
                }
                None => return v,
            }
        }
        panic!("{}: $ref chain too long", self.name)
    }

    /// A schema of `components/schemas`, by name.
    pub fn schema(&self, name: &str) -> &Value {
        let s = &self.doc["components"]["schemas"][name];
        assert!(!s.is_null(), "{}: no schema {name}", self.name);
        s
    }

    /// Where `v` disagrees with the component schema `name`.
    pub fn value_violations(&self, name: &str, v: &Value) -> Vec<String> {
        self.schema_violations(self.schema(name), v, name)
    }

    /// The operation for `method` and `path` (the path as the mock saw it).
    fn find(&self, method: &str, path: &str) -> Option<Found<'_>> {
        let path = path.strip_prefix(self.prefix.as_str())?;
        let method = method.to_ascii_lowercase();
        let paths = self.doc["paths"].as_object()?;
        // Literal segments beat parameters: `/a/b` before `/a/{x}`, as routers do.
        let mut best: Option<(usize, Found<'_>)> = None;
        for (template, item) in paths {
            let Some(op) = item.get(&method) else {
                continue;
            };
            let Some(params) = match_template(template, path) else {
                continue;
            };
            let literal = template.split('/').filter(|s| !s.contains('{')).count();
            if best.as_ref().is_none_or(|(l, _)| literal > *l) {
                best = Some((
                    literal,
                    Found {
                        template,
                        op,
                        item,
                        path_params: params,
                    },
                ));
            }
        }
        best.map(|(_, f)| f)
    }

    /// The operation's parameters, path-level ones included (the operation's win), resolved.
    fn parameters<'a>(&'a self, found: &Found<'a>) -> Vec<&'a Value> {
        let mut out: Vec<&Value> = Vec::new();
        for list in [&found.op["parameters"], &found.item["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                let p = self.resolve(p);
                if !out
                    .iter()
                    .any(|q| q["name"] == p["name"] && q["in"] == p["in"])
                {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Every way `req` disagrees with the description, as messages.
    pub fn request_violations(&self, req: &Request) -> Vec<String> {
        let m = req.method.as_str().to_ascii_lowercase();
        let path = req.url.path();
        let Some(found) = self.find(&m, path) else {
            return vec![format!(
                "{m} {path}: no such operation in {}{}",
                self.name,
                if self.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" (under {})", self.prefix)
                }
            )];
        };
        let at = format!("{m} {}", found.template);
        let mut out = Vec::new();
        let params = self.parameters(&found);
        // Query: every key known, each value valid, repeated only for arrays.
        let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in req.url.query_pairs() {
            query
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        for (k, values) in &query {
            // `name[]` is an array parameter `name` as the providers' own SDKs send arrays
            // (Stainless clients: `Querystring(array_format="brackets")`).
            let bracketed = |p: &&Value| {
                k.strip_suffix("[]").is_some_and(|bare| {
                    p["name"] == bare && self.resolve(&p["schema"])["type"] == "array"
                })
            };
            let Some(p) = params
                .iter()
                .find(|p| p["in"] == "query" && (p["name"] == k.as_str() || bracketed(p)))
            else {
                out.push(format!(
                    "{at}: query parameter {k:?} is not in the description"
                ));
                continue;
            };
            let schema = self.resolve(&p["schema"]);
            if schema["type"] == "array" {
                for v in values {
                    out.extend(self.text_violations(&schema["items"], v, &format!("{at}: {k}")));
                }
            } else {
                if values.len() > 1 {
                    out.push(format!(
                        "{at}: query parameter {k:?} given {} times",
                        values.len()
                    ));
                }
                for v in values {
                    out.extend(self.text_violations(schema, v, &format!("{at}: {k}")));
                }
            }
        }
        for p in &params {
            let name = p["name"].as_str().unwrap_or_default();
            let required = p["required"] == true;
            match p["in"].as_str() {
                Some("query")
                    if required
                        && !query.contains_key(name)
                        && !query.contains_key(&format!("{name}[]")) =>
                {
                    out.push(format!("{at}: required query parameter {name:?} missing"));
                }
                Some("header") => match req.headers.get(name) {
                    None if required => {
                        out.push(format!("{at}: required header {name:?} missing"));
                    }
                    Some(v) => out.extend(self.text_violations(
                        self.resolve(&p["schema"]),
                        v.to_str().unwrap_or_default(),
                        &format!("{at}: header {name}"),
                    )),
                    None => {}
                },
                Some("path") => match found.path_params.get(name) {
                    Some(v) => out.extend(self.text_violations(
                        self.resolve(&p["schema"]),
                        v,
                        &format!("{at}: path parameter {name}"),
                    )),
                    None => out.push(format!("{at}: path parameter {name} not in the template")),
                },
                _ => {}
            }
        }
        out.extend(self.security_violations(found.op, req, &query, &at));
        out.extend(self.body_violations(found.op, req, &at));
        out
    }

    /// The declared authentication: at least one of the alternatives present. Schemes the
    /// document names without defining cannot be checked and are skipped.
    fn security_violations(
        &self,
        op: &Value,
        req: &Request,
        query: &BTreeMap<String, Vec<String>>,
        at: &str,
    ) -> Vec<String> {
        let requirements = op.get("security").or_else(|| self.doc.get("security"));
        let Some(alternatives) = requirements.and_then(Value::as_array) else {
            return vec![];
        };
        if alternatives.is_empty()
            || alternatives
                .iter()
                .any(|a| a.as_object().is_some_and(|o| o.is_empty()))
        {
            return vec![];
        }
        let schemes = &self.doc["components"]["securitySchemes"];
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut checked = false;
        for alt in alternatives {
            let Some(names) = alt.as_object() else {
                continue;
            };
            let mut all = true;
            for name in names.keys() {
                let scheme = &schemes[name];
                if scheme.is_null() {
                    all = false;
                    continue;
                }
                checked = true;
                let ok = match (scheme["type"].as_str(), scheme["in"].as_str()) {
                    (Some("http"), _) => {
                        let want = match scheme["scheme"].as_str().map(str::to_ascii_lowercase) {
                            Some(s) if s == "basic" => "basic ",
                            _ => "bearer ",
                        };
                        header("authorization").is_some_and(|h| {
                            h.to_ascii_lowercase().starts_with(want) && h.len() > want.len()
                        })
                    }
                    (Some("apiKey"), Some("header")) => {
                        header(scheme["name"].as_str().unwrap_or_default())
                            .is_some_and(|h| !h.is_empty())
                    }
                    (Some("apiKey"), Some("query")) => {
                        query.contains_key(scheme["name"].as_str().unwrap_or_default())
                    }
                    (Some("oauth2" | "openIdConnect"), _) => header("authorization")
                        .is_some_and(|h| h.to_ascii_lowercase().starts_with("bearer ")),
                    _ => true,
                };
                all &= ok;
            }
            if all {
                return vec![];
            }
        }
        if checked {
            vec![format!(
                "{at}: none of the declared authentications is present"
            )]
        } else {
            vec![]
        }
    }

    /// The request body against `requestBody`.
    fn body_violations(&self, op: &Value, req: &Request, at: &str) -> Vec<String> {
        let Some(body) = op.get("requestBody").map(|b| self.resolve(b)) else {
            return if req.body.is_empty() {
                vec![]
            } else {
                vec![format!("{at}: a body is sent but the operation takes none")]
            };
        };
        if req.body.is_empty() {
            return if body["required"] == true {
                vec![format!("{at}: the required body is missing")]
            } else {
                vec![]
            };
        }
        let content_type = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(media) = body["content"].get(&content_type) else {
            return vec![format!(
                "{at}: body of type {content_type:?}, the description takes {:?}",
                body["content"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            )];
        };
        let sent: Value = if content_type == "application/x-www-form-urlencoded" {
            Value::Object(
                url::form_urlencoded::parse(&req.body)
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            )
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return vec![format!("{at}: the body is not JSON ({e})")],
            }
        };
        if content_type == "application/x-www-form-urlencoded" {
            // Form values travel as text: each is checked as a parameter would be.
            let schema = self.resolve(&media["schema"]);
            let mut out = Vec::new();
            let props = schema["properties"].as_object();
            for (k, v) in sent.as_object().into_iter().flatten() {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => out.extend(self.text_violations(
                        self.resolve(s),
                        v.as_str().unwrap_or_default(),
                        &format!("{at}: form field {k}"),
                    )),
                    None if schema["additionalProperties"] == false => {
                        out.push(format!("{at}: form field {k} is not in the description"));
                    }
                    None => {}
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if sent.get(r.as_str().unwrap_or_default()).is_none() {
                    out.push(format!("{at}: form lacks required {r}"));
                }
            }
            return out;
        }
        self.schema_violations(&media["schema"], &sent, &format!("{at}: body"))
    }

    /// A parameter's text value against its schema.
    fn text_violations(&self, schema: &Value, text: &str, at: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        let value = match type_names(schema).first().map(String::as_str) {
            Some("integer") => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => return vec![format!("{at}: {text:?} is not an integer")],
            },
            Some("number") => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Value::from(n),
                _ => return vec![format!("{at}: {text:?} is not a number")],
            },
            Some("boolean") => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return vec![format!("{at}: {text:?} is not true or false")],
            },
            _ => Value::String(text.to_owned()),
        };
        self.schema_violations(schema, &value, at)
    }

    /// Where `v` disagrees with `schema`, as messages naming the place.
    pub fn schema_violations(&self, schema: &Value, v: &Value, at: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        if schema.as_bool() == Some(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return vec![];
        }
        let mut out = Vec::new();
        if v.is_null() && schema["nullable"] == true {
            return out;
        }
        for sub in schema["allOf"].as_array().into_iter().flatten() {
            out.extend(self.schema_violations(sub, v, at));
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let fits = options
                .iter()
                .filter(|o| self.schema_violations(o, v, at).is_empty())
                .count();
            if fits != 1 {
                out.push(format!(
                    "{at}: {} fits {fits} of the oneOf options, not exactly one",
                    short(v)
                ));
            }
        }
        if let Some(options) = schema["anyOf"].as_array()
            && !options
                .iter()
                .any(|o| self.schema_violations(o, v, at).is_empty())
        {
            out.push(format!("{at}: {} fits none of the anyOf options", short(v)));
        }
        if let Some(e) = schema["enum"].as_array()
            && !e.contains(v)
            && !(v.is_null() && schema["nullable"] == true)
        {
            out.push(format!(
                "{at}: {} is not one of {}",
                short(v),
                short(&schema["enum"])
            ));
        }
        if let Some(c) = schema.get("const")
            && c != v
        {
            out.push(format!("{at}: {} is not {}", short(v), short(c)));
        }
        let types = type_names(schema);
        if !types.is_empty() && !types.iter().any(|t| is_type(t, v)) {
            out.push(format!(
                "{at}: {} is not of type {}",
                short(v),
                types.join(" or ")
            ));
            return out;
        }
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                let bound = |key: &str| schema[key].as_f64();
                if let Some(min) = bound("minimum") {
                    let exclusive = schema["exclusiveMinimum"] == true;
                    if x < min || (exclusive && x == min) {
                        out.push(format!("{at}: {x} is below the minimum {min}"));
                    }
                }
                if let Some(min) = bound("exclusiveMinimum")
                    && x <= min
                {
                    out.push(format!("{at}: {x} is not above {min}"));
                }
                if let Some(max) = bound("maximum") {
                    let exclusive = schema["exclusiveMaximum"] == true;
                    if x > max || (exclusive && x == max) {
                        out.push(format!("{at}: {x} is above the maximum {max}"));
                    }
                }
                if let Some(max) = bound("exclusiveMaximum")
                    && x >= max
                {
                    out.push(format!("{at}: {x} is not below {max}"));
                }
                match schema["format"].as_str() {
                    Some("int32") if n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) => {
                        out.push(format!("{at}: {n} is not an int32"));
                    }
                    Some("int64") if n.as_i64().is_none() && n.as_u64().is_none() => {
                        out.push(format!("{at}: {n} is not an int64"));
                    }
                    _ => {}
                }
            }
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if let Some(min) = schema["minLength"].as_u64()
                    && len < min
                {
                    out.push(format!("{at}: {s:?} is shorter than {min}"));
                }
                if let Some(max) = schema["maxLength"].as_u64()
                    && len > max
                {
                    out.push(format!("{at}: {s:?} is longer than {max}"));
                }
                if let Some(p) = schema["pattern"].as_str() {
                    let re = regex::Regex::new(p).unwrap_or_else(|e| {
                        panic!("{}: pattern {p:?} does not compile: {e}", self.name)
                    });
                    if !re.is_match(s) {
                        out.push(format!("{at}: {s:?} does not match {p:?}"));
                    }
                }
                match schema["format"].as_str() {
                    Some("date-time") if !is_date_time(s) => {
                        out.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
                    }
                    Some("date") if !is_date(s) => {
                        out.push(format!("{at}: {s:?} is not an RFC 3339 full-date"));
                    }
                    _ => {}
                }
            }
            Value::Array(items) => {
                if let Some(min) = schema["minItems"].as_u64()
                    && (items.len() as u64) < min
                {
                    out.push(format!("{at}: {} items, fewer than {min}", items.len()));
                }
                if let Some(max) = schema["maxItems"].as_u64()
                    && (items.len() as u64) > max
                {
                    out.push(format!("{at}: {} items, more than {max}", items.len()));
                }
                if let Some(item) = schema.get("items") {
                    for (i, x) in items.iter().enumerate() {
                        out.extend(self.schema_violations(item, x, &format!("{at}[{i}]")));
                    }
                }
            }
            Value::Object(o) => {
                for r in schema["required"].as_array().into_iter().flatten() {
                    let r = r.as_str().unwrap_or_default();
                    if !o.contains_key(r) {
                        out.push(format!("{at}: lacks required {r:?}"));
                    }
                }
                let props = schema["properties"].as_object();
                for (k, field) in o {
                    match props.and_then(|p| p.get(k)) {
                        Some(sub) => {
                            out.extend(self.schema_violations(sub, field, &format!("{at}.{k}")));
                        }
                        None => match schema.get("additionalProperties") {
                            Some(Value::Bool(false)) => {
                                out.push(format!("{at}: field {k:?} is not in the description"));
                            }
                            Some(extra @ Value::Object(_)) => out.extend(self.schema_violations(
                                extra,
                                field,
                                &format!("{at}.{k}"),
                            )),
                            _ => {}
                        },
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// The response schema of `method template` for `status` (or the `default` or `NXX`
    /// response), and the media types it allows.
    fn response_schema(&self, method: &str, template: &str, status: u16) -> Result<&Value, String> {
        let method = method.to_ascii_lowercase();
        let op = &self.doc["paths"][template][&method];
        if op.is_null() {
            return Err(format!("{}: no operation {method} {template}", self.name));
        }
        let responses = &op["responses"];
        let class = format!("{}XX", status / 100);
        let response = [status.to_string(), class, "default".to_owned()]
            .iter()
            .map(|k| &responses[k.as_str()])
            .find(|r| !r.is_null())
            .map(|r| self.resolve(r))
            .ok_or_else(|| {
                format!("{method} {template}: status {status} is not a documented answer")
            })?;
        let content = response["content"]
            .as_object()
            .ok_or_else(|| format!("{method} {template} {status}: the answer has no body"))?;
        content
            .iter()
            .find(|(media, _)| media.contains("json") || media.as_str() == "*/*")
            .map(|(_, m)| &m["schema"])
            .filter(|s| !s.is_null())
            .ok_or_else(|| format!("{method} {template} {status}: no JSON schema for the answer"))
    }

    /// Where `body`, answered to `method template` with `status`, disagrees with the
    /// description.
    pub fn answer_violations(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        match self.response_schema(method, template, status) {
            Ok(schema) => {
                self.schema_violations(schema, body, &format!("{method} {template} {status}"))
            }
            Err(e) => vec![e],
        }
    }

    /// A mock answer, after checking the body against the response schema.
    pub fn answer(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: Value,
    ) -> ResponseTemplate {
        let violations = self.answer_violations(method, template, status, &body);
        assert!(
            violations.is_empty(),
            "the mock's answer disagrees with {}: {violations:#?}",
            self.name
        );
        ResponseTemplate::new(status).set_body_json(body)
    }

    /// Every violation of every request in `requests`.
    pub fn requests_violations(&self, requests: &[Request]) -> Vec<String> {
        requests
            .iter()
            .flat_map(|r| self.request_violations(r))
            .collect()
    }
}

/// Asserts that every request `server` received follows `spec` (and that there was one).
pub async fn assert_requests_follow(spec: &Spec, server: &MockServer) {
    let requests = server
        .received_requests()
        .await
        .expect("request recording is on");
    assert!(!requests.is_empty(), "the mock received no request");
    let violations = spec.requests_violations(&requests);
    assert!(
        violations.is_empty(),
        "requests outside {}: {violations:#?}",
        spec.name
    );
}

/// A template's parameters matched against a path: `None` when it does not match.
fn match_template(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    for (ts, ps) in t.iter().zip(&p) {
        match (ts.find('{'), ts.find('}')) {
            (Some(open), Some(close)) if close > open => {
                // A segment such as `{id}` or `logs.{kind}`: literal text around one variable.
                let (before, after) = (&ts[..open], &ts[close + 1..]);
                let value = ps.strip_prefix(before)?.strip_suffix(after)?;
                if value.is_empty() {
                    return None;
                }
                let decoded = percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned();
                params.insert(ts[open + 1..close].to_owned(), decoded);
            }
            _ if ts == ps => {}
            _ => return None,
        }
    }
    Some(params)
}

/// The schema's `type` as a list (3.1 allows several; `nullable` adds `null` in 3.0).
fn type_names(schema: &Value) -> Vec<String> {
    let mut out: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    };
    if !out.is_empty() && schema["nullable"] == true {
        out.push("null".into());
    }
    out
}

fn is_type(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        s[..4].parse::<i32>(),
        s[5..7].parse::<u8>(),
        s[8..].parse::<u8>(),
    ) else {
        return false;
    };
    time::Month::try_from(m).is_ok_and(|m| time::Date::from_calendar_date(y, m, d).is_ok())
}

fn is_date_time(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// A value for a message, cut short.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Spec {
        let doc = json!({
            "openapi": "3.0.0",
            "paths": {
                "/v1/things/{id}": {"get": {
                    "parameters": [
                        {"in": "path", "name": "id", "required": true, "schema": {"type": "string", "pattern": "^[a-z]{20}$"}},
                        {"in": "query", "name": "from", "required": true, "schema": {"type": "string", "format": "date-time"}},
                        {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"in": "query", "name": "kind", "schema": {"type": "string", "enum": ["a", "b"]}}
                    ],
                    "security": [{"bearer": []}],
                    "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
                }}
            },
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {"Thing": {
                    "type": "object", "required": ["amount", "state"], "additionalProperties": false,
                    "properties": {
                        "amount": {"type": "number", "minimum": 0},
                        "state": {"type": "string", "enum": ["on", "off"]},
                        "note": {"type": "string", "nullable": true}
                    }
                }}
            }
        });
        Spec {
            name: "inline".into(),
            doc,
            prefix: String::new(),
        }
    }

    fn request(url: &str, auth: bool) -> Request {
        let mut headers = wiremock::http::HeaderMap::new();
        if auth {
            headers.insert("authorization", "Bearer t".parse().unwrap());
        }
        Request {
            url: url::Url::parse(url).unwrap(),
            method: wiremock::http::Method::GET,
            headers,
            body: vec![],
        }
    }

    /// The control: requests and answers off the description are caught, one per way.
    #[test]
    fn off_description_requests_and_answers_are_caught() {
        let s = spec();
        let ok = "http://x/v1/things/abcdefghijklmnopqrst?from=2026-12-01T00:00:00Z&limit=5";
        assert_eq!(
            s.request_violations(&request(ok, true)),
            Vec::<String>::new()
        );
        for (url, auth, expect) in [
            (ok, false, "authentication"),
            (
                "http://x/v1/things/ABC?from=2026-12-01T00:00:00Z",
                true,
                "does not match",
            ),
            (
                "http://x/v1/things/abcdefghijklmnopqrst",
                true,
                "required query parameter \"from\"",
            ),
            (
                "http://x/v1/things/abcdefghijklmnopqrst?from=yesterday",
                true,
                "RFC 3339",
            ),
            (
                "http://x/v1/things/abcdefghijklmnopqrst?from=2026-12-01T00:00:00Z&limit=500",
                true,
                "above the maximum",
            ),
            (
                "http://x/v1/things/abcdefghijklmnopqrst?from=2026-12-01T00:00:00Z&kind=c",
                true,
                "is not one of",
            ),
            (
                "http://x/v1/things/abcdefghijklmnopqrst?from=2026-12-01T00:00:00Z&page=2",
                true,
                "not in the description",
            ),
            ("http://x/v2/things", true, "no such operation"),
        ] {
            let v = s.request_violations(&request(url, auth));
            assert!(
                v.iter().any(|m| m.contains(expect)),
                "{url}: {expect} not in {v:?}"
            );
        }
        let t = "/v1/things/{id}";
        assert!(
            s.answer_violations(
                "get",
                t,
                200,
                &json!({"amount": 1.5, "state": "on", "note": null})
            )
            .is_empty()
        );
        for (body, expect) in [
            (json!({"amount": 1.5}), "lacks required \"state\""),
            (
                json!({"amount": "1.5", "state": "on"}),
                "is not of type number",
            ),
            (json!({"amount": -1, "state": "on"}), "below the minimum"),
            (json!({"amount": 1, "state": "dim"}), "is not one of"),
            (
                json!({"amount": 1, "state": "on", "extra": 1}),
                "not in the description",
            ),
        ] {
            let v = s.answer_violations("get", t, 200, &body);
            assert!(
                v.iter().any(|m| m.contains(expect)),
                "{body}: {expect} not in {v:?}"
            );
        }
        let v = s.answer_violations("get", t, 404, &json!({}));
        assert!(v[0].contains("not a documented answer"), "{v:?}");
    }

    /// `name[]` stands for an array parameter `name` (the SDKs' bracket form), never for
    /// a scalar one.
    #[test]
    fn bracketed_arrays_are_their_parameter() {
        let mut s = spec();
        s.doc["paths"]["/v1/things/{id}"]["get"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"in": "query", "name": "group_by", "schema": {"type": "array", "items": {"type": "string", "enum": ["model"]}}}));
        let base = "http://x/v1/things/abcdefghijklmnopqrst?from=2026-12-01T00:00:00Z";
        let ok = format!("{base}&group_by[]=model&group_by=model");
        assert_eq!(
            s.request_violations(&request(&ok, true)),
            Vec::<String>::new()
        );
        for (q, expect) in [
            ("group_by[]=project", "is not one of"),
            ("kind[]=a", "not in the description"),
        ] {
            let v = s.request_violations(&request(&format!("{base}&{q}"), true));
            assert!(v.iter().any(|m| m.contains(expect)), "{q}: {v:?}");
        }
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let p = match_template(
            "/v1/projects/{ref}/analytics/endpoints/logs.all",
            "/v1/projects/abc/analytics/endpoints/logs.all",
        );
        assert_eq!(p.unwrap()["ref"], "abc");
        assert!(match_template("/a/{x}", "/a/b/c").is_none());
        assert_eq!(
            match_template("/a/{x}.json", "/a/b.json").unwrap()["x"],
            "b"
        );
    }
}

/// The checker on a pinned description and a live mock: a request the description allows
/// passes, one it does not (a project ref of the wrong shape, an unknown parameter) is caught,
/// and an answer is refused when its schema does not allow it.
#[tokio::test]
async fn a_pinned_description_catches_what_a_provider_would_refuse() {
    use serde_json::json;
    let spec = Spec::load("supabase/openapi.json");
    let server = MockServer::start().await;
    let template = "/v1/projects/{ref}/functions";
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(spec.answer("get", template, 200, json!([])))
        .mount(&server)
        .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let get = |url: String| client.get(url).bearer_auth("sbp_test").send();
    get(format!(
        "{}/v1/projects/abcdefghijklmnopqrst/functions",
        server.uri()
    ))
    .await
    .unwrap();
    assert_requests_follow(&spec, &server).await;
    get(format!(
        "{}/v1/projects/ABC123/functions?page=2",
        server.uri()
    ))
    .await
    .unwrap();
    let requests = server.received_requests().await.unwrap();
    let v = spec.requests_violations(&requests);
    assert!(v.iter().any(|m| m.contains("does not match")), "{v:?}");
    assert!(v.iter().any(|m| m.contains("\"page\" is not in")), "{v:?}");
    let v = spec.answer_violations("get", template, 200, &json!([{"id": 1}]));
    assert!(v.iter().any(|m| m.contains("lacks required")), "{v:?}");
    assert!(
        !spec
            .value_violations("FunctionResponse", &json!({}))
            .is_empty()
    );
    assert_eq!(spec.with_prefix("/api").doc()["openapi"], "3.0.0");
}
