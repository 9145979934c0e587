//! Google Cloud end to end against one loopback mock of what Google runs: the OAuth2 token
//! endpoint, which verifies the JWT's RS256 signature with the test key's public half and its
//! claims (issuer, scope, audience, a lifetime of at most an hour around the server's clock);
//! the GCE metadata server; and BigQuery's `tables.get`, `jobs.query` and `getQueryResults`,
//! whose requests are checked against BigQuery's published discovery document and the job's
//! rules (a parameterized SELECT on the one table, legacy SQL off, `maximumBytesBilled`, the
//! table's location, a partition filter), and whose answers are BigQuery's row format (a schema
//! and rows of `f`/`v`, every value a string, FLOAT64 and TIMESTAMP as Java writes doubles),
//! computed from a fixture month of export rows as the query asks, paged with `pageToken`, with
//! `maximumBytesBilled` enforced on the bytes the query scans. Fixtures and their origins:
//! `tests/fixtures/google/README.md`. The real binary and a real Pushgateway.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{self, Pushgateway};

const PROJECT: &str = "cost-exporter-prod";
const DATASET: &str = "billing_export";
const TABLE: &str = "gcp_billing_export_v1_01AB23_CD45EF_6789AB";
const LOCATION: &str = "EU";
const EMAIL: &str = "cost-exporter@cost-exporter-prod.iam.gserviceaccount.com";
const KEY_ID: &str = "5f1e2d3c4b5a69788796a5b4c3d2e1f0aabbccdd";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const METADATA_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const MIB: u64 = 1 << 20;

fn table_name() -> String {
    format!("{PROJECT}.{DATASET}.{TABLE}")
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(support::fixture(&format!("google/{name}"))).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// The fixture month's dates, relative to now.
pub struct Dates {
    pub start: OffsetDateTime,
    pub export2: OffsetDateTime,
    /// The 1st of last month.
    pub last_first: Date,
    pub lm_day_a: OffsetDateTime,
    pub lm_day_b: OffsetDateTime,
    map: Vec<(&'static str, String)>,
}

impl Dates {
    pub fn now() -> Dates {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        // The invoice month is kept in US Pacific time: until 07:00 or 08:00 UTC on the 1st
        // it is still last month, whose 1st (UTC) the fixture's dates then start from.
        let start = {
            let utc = support::month_start();
            if now < pacific(utc) {
                (utc - time::Duration::DAY)
                    .date()
                    .replace_day(1)
                    .unwrap()
                    .midnight()
                    .assume_utc()
            } else {
                utc
            }
        };
        let span = now - start;
        let at = |n: i32, d: i32| start + span * n / d;
        let last_first = (start - time::Duration::DAY).date().replace_day(1).unwrap();
        let last_day = (start - time::Duration::DAY).date();
        let lm = |day: Date, h: u8| day.with_hms(h, 0, 0).unwrap().assume_utc();
        let lm_day_a = lm(last_first.replace_day(10).unwrap(), 12);
        let lm_day_b = lm(last_day, 20);
        let hour = time::Duration::HOUR;
        let (day1, day2) = (at(1, 4), at(1, 2));
        let (export1, export2) = (at(3, 8), at(3, 4));
        let map = vec![
            ("{{DAY1}}", rfc(day1)),
            ("{{DAY1_END}}", rfc(day1 + hour)),
            ("{{DAY2}}", rfc(day2)),
            ("{{DAY2_END}}", rfc(day2 + hour)),
            ("{{EXPORT1}}", rfc(export1)),
            ("{{EXPORT2}}", rfc(export2)),
            ("{{LM_DAY_A}}", rfc(lm_day_a)),
            ("{{LM_DAY_A_END}}", rfc(lm_day_a + hour)),
            ("{{LM_EXPORT_A}}", rfc(lm_day_a + 6 * hour)),
            ("{{LM_DAY_B}}", rfc(lm_day_b)),
            ("{{LM_DAY_B_END}}", rfc(lm_day_b + hour)),
            ("{{LM_EXPORT_B}}", rfc(at(1, 8))),
            ("{{LM_LATE}}", rfc(lm(last_day, 22))),
            // Last month's last hours in US Pacific time: this month's 1st in UTC.
            (
                "{{LM_PACIFIC}}",
                rfc(start + (span / 16i32).min(hour * 3i32)),
            ),
            (
                "{{LM_PACIFIC_END}}",
                rfc(start + (span / 16i32).min(hour * 3i32) + hour),
            ),
            ("{{LM_LATE_END}}", rfc(lm(last_day, 23))),
            ("{{LAST_MONTH}}", invoice_month(last_first)),
            ("{{MONTH}}", invoice_month(start.date())),
        ];
        Dates {
            start,
            export2,
            last_first,
            lm_day_a,
            lm_day_b,
            map,
        }
    }
}

fn invoice_month(d: Date) -> String {
    format!("{:04}{:02}", d.year(), u8::from(d.month()))
}

/// The fixture month's export rows with their dates filled in.
pub fn rows(d: &Dates) -> Vec<Value> {
    let mut text = fixture_text("export-rows.json");
    for (k, v) in &d.map {
        text = text.replace(k, v);
    }
    assert!(!text.contains("{{"), "a placeholder is left");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["rows"].as_array().unwrap().clone()
}

/// A double as Java's `Double.toString` writes it, as BigQuery's REST API writes FLOAT64 and
/// TIMESTAMP values: plain between 10^-3 and 10^7 (`5000000.0`), else `2.9409958E7`.
fn java_double(x: f64) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap();
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

fn time_of(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// The public half of the test key (PKCS#1 RSAPublicKey DER), from its PEM.
fn public_key() -> Vec<u8> {
    let pem = fixture_text("test-service-account.pub.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

/// A key file for the test service account, signed with `key` (a PEM under the fixtures).
pub fn key_file(token_uri: &str, key: &str, key_id: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": key_id,
        "private_key": fixture_text(key),
        "client_email": EMAIL,
        "client_id": "112233445566778899000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------
// The token endpoint's checks.

/// Verifies a JWT as Google's token endpoint does: RS256 over `header.claims` with the test
/// key's public half, the issuer, the scope, the audience, and `iat`/`exp` around `now` with
/// a lifetime of at most an hour.
fn verify_jwt(jwt: &str, aud: &str, public: &[u8], now: i64) -> Result<Value, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err("Invalid JWT: not three parts".into());
    }
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "Invalid JWT: not base64url".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "Invalid JWT: not JSON".to_owned())
    };
    let header = decode(parts[0])?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT: alg is not RS256".into());
    }
    if header["typ"].as_str().is_some_and(|t| t != "JWT") {
        return Err("Invalid JWT: typ is not JWT".into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    let claims = decode(parts[1])?;
    if claims["iss"] != EMAIL {
        return Err("Invalid JWT: iss is not the service account".into());
    }
    if claims["scope"] != SCOPE {
        return Err(format!(
            "Invalid JWT: scope {} is not the read-only scope",
            claims["scope"]
        ));
    }
    if claims["aud"] != aud {
        return Err(format!("Invalid JWT: aud {} is not {aud}", claims["aud"]));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("Invalid JWT: no iat or exp".into());
    };
    if iat > now + 60 || exp <= now || exp - iat > 3600 || exp <= iat {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".into());
    }
    Ok(claims)
}

// ---------------------------------------------------------------------------------------
// Checking values against the discovery document.

/// Checks `v` against a schema of the discovery document: types, int64 strings, enums, and
/// no property the schema does not have.
fn check_schema(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        match doc["schemas"].get(r) {
            Some(s) => return check_schema(doc, s, v, at, out),
            None => {
                out.push(format!(
                    "{at}: {r} is not a schema the job may send or the mock answers"
                ));
                return;
            }
        }
    }
    if v.is_null() {
        return;
    }
    match schema["type"].as_str() {
        Some("string") => match v.as_str() {
            None => out.push(format!("{at}: {v} is not a string")),
            Some(s) => {
                let ok = match schema["format"].as_str() {
                    Some("int64") => s.parse::<i64>().is_ok(),
                    Some("uint64") => s.parse::<u64>().is_ok(),
                    _ => true,
                };
                if !ok {
                    out.push(format!("{at}: {s:?} is not a {}", schema["format"]));
                }
                if let Some(e) = schema["enum"].as_array()
                    && !e.contains(v)
                {
                    out.push(format!("{at}: {v} is not one of {e:?}"));
                }
            }
        },
        Some("boolean") => {
            if !v.is_boolean() {
                out.push(format!("{at}: {v} is not a boolean"));
            }
        }
        Some("integer") => {
            let ok = match schema["format"].as_str() {
                Some("uint32") => v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
                Some("int32") => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                _ => v.is_i64() || v.is_u64(),
            };
            if !ok {
                out.push(format!("{at}: {v} is not a {}", schema["format"]));
            }
        }
        Some("number") => {
            if !v.is_number() {
                out.push(format!("{at}: {v} is not a number"));
            }
        }
        Some("array") => match v.as_array() {
            None => out.push(format!("{at}: {v} is not an array")),
            Some(items) => {
                for (i, x) in items.iter().enumerate() {
                    check_schema(doc, &schema["items"], x, &format!("{at}[{i}]"), out);
                }
            }
        },
        Some("object") => match v.as_object() {
            None => out.push(format!("{at}: {v} is not an object")),
            Some(obj) => {
                for (k, x) in obj {
                    if let Some(p) = schema["properties"].get(k) {
                        check_schema(doc, p, x, &format!("{at}.{k}"), out);
                    } else if let Some(extra) = schema.get("additionalProperties") {
                        check_schema(doc, extra, x, &format!("{at}.{k}"), out);
                    } else {
                        out.push(format!("{at}.{k}: not in the published schema"));
                    }
                }
            }
        },
        Some("any") | None => {}
        Some(other) => out.push(format!("{at}: unknown schema type {other}")),
    }
}

/// A method's query parameters: those the discovery document lists for it.
fn check_query_parameters(doc: &Value, method: &str, req: &Request, out: &mut Vec<String>) {
    let params = &doc["methods"][method]["parameters"];
    for (k, v) in req.url.query_pairs() {
        match params.get(k.as_ref()) {
            Some(p) if p["location"] == "query" => {
                let ok = match (p["type"].as_str(), p["format"].as_str()) {
                    (Some("integer"), _) => v.parse::<u32>().is_ok(),
                    (Some("boolean"), _) => v == "true" || v == "false",
                    (Some("string"), Some("uint64")) => v.parse::<u64>().is_ok(),
                    _ => true,
                };
                if !ok {
                    out.push(format!(
                        "{method}: query parameter {k}={v} is not a {}",
                        p["type"]
                    ));
                }
            }
            _ => out.push(format!("{method}: query parameter {k} is not published")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The job's query: what the mock checks and how it answers.

/// A query parameter: its type and value(s).
#[derive(Debug, Clone)]
struct Param {
    kind: String,
    value: Option<String>,
    values: Vec<String>,
}

fn parameters(body: &Value) -> Result<BTreeMap<String, Param>, String> {
    let mut out = BTreeMap::new();
    for p in body["queryParameters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = p["name"]
            .as_str()
            .ok_or("a parameter without a name")?
            .to_owned();
        let kind = p["parameterType"]["type"]
            .as_str()
            .ok_or("a parameter without a type")?;
        let param = if kind == "ARRAY" {
            if p["parameterType"]["arrayType"]["type"] != "STRING" {
                return Err(format!("@{name}: only ARRAY<STRING> is expected"));
            }
            let values = p["parameterValue"]["arrayValues"]
                .as_array()
                .ok_or(format!("@{name}: no arrayValues"))?
                .iter()
                .map(|v| {
                    v["value"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or(format!("@{name}: a value is not a string"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Param {
                kind: "ARRAY<STRING>".into(),
                value: None,
                values,
            }
        } else {
            let value = p["parameterValue"]["value"]
                .as_str()
                .ok_or(format!("@{name}: no value"))?
                .to_owned();
            Param {
                kind: kind.to_owned(),
                value: Some(value),
                values: vec![],
            }
        };
        if out.insert(name.clone(), param).is_some() {
            return Err(format!("@{name} twice"));
        }
    }
    Ok(out)
}

/// A DATE as BigQuery writes it: `YYYY-MM-DD`.
fn date(text: &str) -> Option<Date> {
    let mut p = text.splitn(3, '-');
    let y: i32 = p.next()?.parse().ok()?;
    let m: u8 = p.next()?.parse().ok()?;
    let d: u8 = p.next()?.parse().ok()?;
    Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

fn collapse(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits at `sep` outside parentheses.
fn split_top(text: &str, sep: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        if depth == 0 && text[i..].starts_with(sep) {
            out.push(text[start..i].trim().to_owned());
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    out.push(text[start..].trim().to_owned());
    out
}

/// The expressions the mock evaluates: the job's query is made of these (a change to the
/// query text is caught here, and the mock must learn it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expr {
    UsageDay,
    Service,
    SkuIfListed,
    UnitIfListed,
    CostType,
    Currency,
    SumCost,
    SumPotCredits,
    SumOtherCredits,
    SumUsageIfListed,
    MaxExport,
}

const EXPRESSIONS: &[(&str, Expr, &str)] = &[
    ("DATE(usage_start_time)", Expr::UsageDay, "DATE"),
    ("service.description", Expr::Service, "STRING"),
    (
        "IF(service.description IN UNNEST(@sku_services), sku.description, NULL)",
        Expr::SkuIfListed,
        "STRING",
    ),
    (
        "IF(service.description IN UNNEST(@sku_services), usage.unit, NULL)",
        Expr::UnitIfListed,
        "STRING",
    ),
    ("cost_type", Expr::CostType, "STRING"),
    ("currency", Expr::Currency, "STRING"),
    ("SUM(CAST(cost AS NUMERIC))", Expr::SumCost, "NUMERIC"),
    (
        "SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c WHERE c.type IN UNNEST(@pot_credit_types)), 0))",
        Expr::SumPotCredits,
        "NUMERIC",
    ),
    (
        "SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c WHERE c.type IS NULL OR c.type NOT IN UNNEST(@pot_credit_types)), 0))",
        Expr::SumOtherCredits,
        "NUMERIC",
    ),
    (
        "SUM(IF(service.description IN UNNEST(@sku_services), usage.amount, NULL))",
        Expr::SumUsageIfListed,
        "FLOAT",
    ),
    ("MAX(export_time)", Expr::MaxExport, "TIMESTAMP"),
];

impl Expr {
    fn aggregate(self) -> bool {
        matches!(
            self,
            Expr::SumCost
                | Expr::SumPotCredits
                | Expr::SumOtherCredits
                | Expr::SumUsageIfListed
                | Expr::MaxExport
        )
    }
}

/// The query, understood.
#[derive(Debug)]
struct Plan {
    items: Vec<(Expr, String, &'static str)>,
    invoice: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    /// Leaf columns the query reads (for the bytes it scans).
    leaves: BTreeSet<String>,
}

/// The leaf columns of the export schema, by dotted path, with their type.
fn schema_leaves(fields: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    for f in fields.as_array().unwrap() {
        let name = format!("{prefix}{}", f["name"].as_str().unwrap());
        if f["type"] == "RECORD" {
            out.insert(name.clone(), "RECORD".into());
            schema_leaves(&f["fields"], &format!("{name}."), out);
        } else {
            out.insert(name, f["type"].as_str().unwrap().to_owned());
        }
    }
}

const FORBIDDEN: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "EXPORT", "CALL",
    "DECLARE", "SET", "BEGIN", "GRANT", "REVOKE", "LOAD", "EXECUTE",
];

/// The job's rules for a `jobs.query` body besides the published schema: a parameterized
/// SELECT of the one table with GoogleSQL, the cap, the table's location, and a filter on the
/// partitions that keeps a month's query to the month. Returns the plan (to answer with) and
/// the violations.
fn check_query(body: &Value, export_schema: &Value) -> (Option<Plan>, Vec<String>) {
    let mut out = Vec::new();
    if body["useLegacySql"] != false {
        out.push("useLegacySql is not false (legacy SQL is the default)".into());
    }
    if body["parameterMode"] != "NAMED" {
        out.push("parameterMode is not NAMED".into());
    }
    match body["maximumBytesBilled"]
        .as_str()
        .and_then(|b| b.parse::<u64>().ok())
    {
        Some(b) if b > 0 => {}
        _ => out.push("no maximumBytesBilled: the query's cost is not capped".into()),
    }
    if body["location"] != LOCATION {
        out.push(format!(
            "location {} is not the table's ({LOCATION})",
            body["location"]
        ));
    }
    let params = match parameters(body) {
        Ok(p) => p,
        Err(e) => {
            out.push(e);
            BTreeMap::new()
        }
    };
    let Some(sql) = body["query"].as_str() else {
        out.push("no query".into());
        return (None, out);
    };
    let sql = collapse(sql);
    if !sql.starts_with("SELECT ") {
        out.push("the query is not a SELECT".into());
    }
    if sql.contains(';') {
        out.push("the query has more than one statement".into());
    }
    let words = regex::Regex::new(r"[A-Za-z_]+").unwrap();
    for w in words.find_iter(&sql) {
        if FORBIDDEN.contains(&w.as_str().to_ascii_uppercase().as_str()) {
            out.push(format!(
                "the query says {}: only reads are allowed",
                w.as_str()
            ));
        }
    }
    let quoted: Vec<&str> = sql.split('`').skip(1).step_by(2).collect();
    if quoted != [table_name().as_str()] {
        out.push(format!(
            "the query names {quoted:?}, not only {}",
            table_name()
        ));
    }
    // Every @parameter is given, and every given one is used.
    let at = regex::Regex::new(r"@([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let used: BTreeSet<String> = at.captures_iter(&sql).map(|c| c[1].to_owned()).collect();
    for u in &used {
        if !params.contains_key(u) {
            out.push(format!("@{u} is used but not given"));
        }
    }
    for p in params.keys() {
        if !used.contains(p) {
            out.push(format!("@{p} is given but not used"));
        }
    }
    // Identifiers resolve in the export's schema (an alias of UNNEST(credits) stands for it).
    let mut leaves_by_path = BTreeMap::new();
    schema_leaves(export_schema, "", &mut leaves_by_path);
    let aliases: BTreeSet<String> = regex::Regex::new(r" AS ([a-z_][a-z0-9_]*)")
        .unwrap()
        .captures_iter(&sql)
        .map(|c| c[1].to_owned())
        .collect();
    let unnest_alias: BTreeMap<String, String> =
        regex::Regex::new(r"UNNEST\(([a-z_]+)\) AS ([a-z_]+)")
            .unwrap()
            .captures_iter(&sql)
            .map(|c| (c[2].to_owned(), c[1].to_owned()))
            .collect();
    let stripped = regex::Regex::new(r"`[^`]*`|'[^']*'|@[A-Za-z0-9_]+")
        .unwrap()
        .replace_all(&sql, " ");
    let ident = regex::Regex::new(r"\b[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*\b").unwrap();
    let mut leaves = BTreeSet::new();
    for m in ident.find_iter(&stripped) {
        let id = m.as_str();
        let (head, tail) = id.split_once('.').map_or((id, None), |(h, t)| (h, Some(t)));
        let path = match (unnest_alias.get(head), tail) {
            (Some(col), Some(t)) => format!("{col}.{t}"),
            (Some(_), None) => continue,
            (None, _) if aliases.contains(id) => continue,
            (None, _) => id.to_owned(),
        };
        match leaves_by_path.get(&path) {
            Some(t) if t == "RECORD" => {}
            Some(_) => {
                leaves.insert(path);
            }
            None => out.push(format!("{path} is not a column of the export")),
        }
    }
    // The shape the mock evaluates.
    let shape = regex::Regex::new(r"^SELECT (.+) FROM `[^`]+` WHERE (.+) GROUP BY (.+)$").unwrap();
    let Some(c) = shape.captures(&sql) else {
        out.push("the query is not SELECT … FROM `table` WHERE … GROUP BY …".into());
        return (None, out);
    };
    let mut items = Vec::new();
    for item in split_top(&c[1], ",") {
        let (expr, alias) = match item.rsplit_once(" AS ") {
            Some((e, a)) if a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                (e.trim().to_owned(), a.trim().to_owned())
            }
            _ => (
                item.clone(),
                item.rsplit('.').next().unwrap_or(&item).to_owned(),
            ),
        };
        match EXPRESSIONS
            .iter()
            .find(|(text, _, _)| collapse(text) == expr)
        {
            Some((_, e, kind)) => items.push((*e, alias, *kind)),
            None => out.push(format!("the mock does not know the expression {expr}")),
        }
    }
    let mut plan = Plan {
        items,
        invoice: None,
        from: None,
        to: None,
        leaves,
    };
    let param_value = |name: &str, kind: &str, out: &mut Vec<String>| -> Option<String> {
        match params.get(name) {
            Some(p) if p.kind == kind => p.value.clone(),
            Some(p) => {
                out.push(format!("@{name} is a {}, not a {kind}", p.kind));
                None
            }
            None => None,
        }
    };
    let cond =
        regex::Regex::new(r"^(invoice\.month = |_PARTITIONDATE >= |_PARTITIONDATE < )@([a-z_]+)$")
            .unwrap();
    for term in split_top(&c[2], " AND ") {
        match cond.captures(&term) {
            Some(m) if &m[1] == "invoice.month = " => {
                plan.invoice = param_value(&m[2], "STRING", &mut out);
            }
            Some(m) => {
                let d = param_value(&m[2], "DATE", &mut out).and_then(|v| date(&v));
                if d.is_none() {
                    out.push(format!("@{} is not a DATE", &m[2]));
                }
                if m[1].starts_with("_PARTITIONDATE >=") {
                    plan.from = d;
                } else {
                    plan.to = d;
                }
            }
            None => out.push(format!("the mock does not know the condition {term}")),
        }
    }
    if plan.from.is_none() || plan.to.is_none() {
        out.push(
            "no filter on _PARTITIONDATE: the query would scan every partition of the table".into(),
        );
    }
    if plan.invoice.is_none() {
        out.push("no filter on invoice.month".into());
    }
    let grouped: BTreeSet<String> = split_top(&c[3], ",").into_iter().collect();
    let keys: BTreeSet<String> = plan
        .items
        .iter()
        .filter(|(e, _, _)| !e.aggregate())
        .map(|(_, a, _)| a.clone())
        .collect();
    if grouped != keys {
        out.push(format!(
            "GROUP BY {grouped:?} is not the non-aggregated columns {keys:?}"
        ));
    }
    (Some(plan), out)
}

/// The size BigQuery counts for a value of a leaf column: 2 bytes + UTF-8 for a STRING, 8 for
/// FLOAT64 and TIMESTAMP, nothing for NULL.
fn value_bytes(v: &Value) -> u64 {
    match v {
        Value::Null => 0,
        Value::String(s) => 2 + s.len() as u64,
        _ => 8,
    }
}

fn leaf<'a>(row: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![row];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Value::Array(items) => next.extend(items.iter().map(|i| &i[part])),
                other => next.push(&other[part]),
            }
        }
        cur = next;
    }
    cur.into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect()
}

/// FLOAT64 → NUMERIC as BigQuery casts it: rounded to 9 decimal places.
fn numeric(v: &Value) -> Decimal {
    v.as_f64()
        .map(|f| format!("{f:.9}").parse::<Decimal>().unwrap().normalize())
        .unwrap_or_default()
}

/// The result of the plan over the fixture rows: (bytes scanned, schema, rows).
fn evaluate(
    plan: &Plan,
    params: &BTreeMap<String, Param>,
    rows: &[Value],
    b: &Behaviour,
) -> (u64, Value, Vec<Value>) {
    let today = OffsetDateTime::now_utc().date();
    let partition = |r: &Value| time_of(&r["export_time"]).map(|t| t.date());
    let in_window = |d: Date| plan.from.is_none_or(|f| d >= f) && plan.to.is_none_or(|t| d < t);
    // Bytes: the fixture rows of the partitions read, and the rest of each partition (rows of
    // other months, `bulk` bytes a day since the table began).
    let mut bytes = 0u64;
    let mut d = b.first_partition;
    while d <= today {
        if in_window(d) {
            bytes += b.bulk;
        }
        d = d.next_day().unwrap();
    }
    let scanned: Vec<&Value> = rows
        .iter()
        .filter(|r| partition(r).is_some_and(in_window))
        .collect();
    for r in &scanned {
        for l in &plan.leaves {
            bytes += leaf(r, l).into_iter().map(value_bytes).sum::<u64>();
        }
    }
    let listed: Vec<String> = params
        .get("sku_services")
        .map(|p| p.values.clone())
        .unwrap_or_default();
    let pots: Vec<String> = params
        .get("pot_credit_types")
        .map(|p| p.values.clone())
        .unwrap_or_default();
    let is_listed = |r: &Value| {
        r["service"]["description"]
            .as_str()
            .is_some_and(|s| listed.iter().any(|l| l == s))
    };
    // Groups of the invoice month's rows.
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<&Value>> = BTreeMap::new();
    for r in scanned {
        if r["invoice"]["month"].as_str() != plan.invoice.as_deref() {
            continue;
        }
        let key: Vec<Option<String>> = plan
            .items
            .iter()
            .filter(|(e, _, _)| !e.aggregate())
            .map(|(e, _, _)| match e {
                Expr::UsageDay => time_of(&r["usage_start_time"]).map(|t| t.date().to_string()),
                Expr::Service => r["service"]["description"].as_str().map(str::to_owned),
                Expr::SkuIfListed => is_listed(r)
                    .then(|| r["sku"]["description"].as_str().map(str::to_owned))
                    .flatten(),
                Expr::UnitIfListed => is_listed(r)
                    .then(|| r["usage"]["unit"].as_str().map(str::to_owned))
                    .flatten(),
                Expr::CostType => r["cost_type"].as_str().map(str::to_owned),
                Expr::Currency => r["currency"].as_str().map(str::to_owned),
                _ => None,
            })
            .collect();
        groups.entry(key).or_default().push(r);
    }
    let fields: Vec<Value> = plan
        .items
        .iter()
        .map(|(_, alias, kind)| json!({"name": alias, "type": kind, "mode": "NULLABLE"}))
        .collect();
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut keys = key.into_iter();
        let cells: Vec<Value> = plan
            .items
            .iter()
            .map(|(e, _, _)| {
                let v: Option<String> = match e {
                    e if !e.aggregate() => keys.next().flatten(),
                    Expr::SumCost => Some(
                        members
                            .iter()
                            .map(|r| numeric(&r["cost"]))
                            .sum::<Decimal>()
                            .normalize()
                            .to_string(),
                    ),
                    Expr::SumPotCredits | Expr::SumOtherCredits => {
                        let pot = *e == Expr::SumPotCredits;
                        let sum: Decimal = members
                            .iter()
                            .flat_map(|r| r["credits"].as_array().cloned().unwrap_or_default())
                            .filter(|c| {
                                let t = c["type"].as_str();
                                let is_pot = t.is_some_and(|t| pots.iter().any(|p| p == t));
                                if pot { is_pot } else { !is_pot }
                            })
                            .map(|c| numeric(&c["amount"]))
                            .sum();
                        Some(sum.normalize().to_string())
                    }
                    Expr::SumUsageIfListed => {
                        let vals: Vec<f64> = members
                            .iter()
                            .filter(|r| is_listed(r))
                            .filter_map(|r| r["usage"]["amount"].as_f64())
                            .collect();
                        (!vals.is_empty()).then(|| java_double(vals.iter().sum()))
                    }
                    Expr::MaxExport => members
                        .iter()
                        .filter_map(|r| time_of(&r["export_time"]))
                        .max()
                        .map(|t| java_double(t.unix_timestamp_nanos() as f64 / 1e9)),
                    _ => None,
                };
                json!({"v": v})
            })
            .collect();
        out.push(json!({"f": cells}));
    }
    (bytes, json!({"fields": fields}), out)
}

// ---------------------------------------------------------------------------------------
// The mock.

/// What the mock does; changed by tests between runs.
pub struct Behaviour {
    /// Bytes each partition holds besides the fixture's rows (rows of other months).
    pub bulk: u64,
    /// The table's first partition.
    pub first_partition: Date,
    /// `jobComplete: false` answers before a job is done.
    pub waits: usize,
    /// Rows per page.
    pub page_rows: usize,
    /// What a dry run says, as a share of what the query scans (a dry run is an estimate).
    pub dry_run_share: f64,
    /// The service account lacks roles/bigquery.dataViewer.
    pub deny_table: bool,
    /// It lacks roles/bigquery.jobUser.
    pub deny_jobs: bool,
    /// The table does not exist.
    pub no_table: bool,
    /// BigQuery's quota is used up.
    pub quota: bool,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            bulk: 64 << 10,
            first_partition: OffsetDateTime::now_utc().date() - time::Duration::days(730),
            waits: 0,
            page_rows: 4,
            dry_run_share: 1.0,
            deny_table: false,
            deny_jobs: false,
            no_table: false,
            quota: false,
        }
    }
}

struct Job {
    schema: Value,
    rows: Vec<Value>,
    pending: usize,
    bytes: u64,
}

/// What the mock saw and holds.
#[derive(Default)]
pub struct Seen {
    /// Access tokens issued.
    pub tokens: Vec<String>,
    /// JWT assertions received.
    pub assertions: Vec<String>,
    /// Calls, in order: `token`, `metadata`, `table`, `dry_run`, `query`, `wait`, `page`.
    pub calls: Vec<String>,
    /// What broke the published description or the job's rules.
    pub violations: Vec<String>,
    /// Bytes each dry run reported.
    pub dry_runs: Vec<u64>,
    /// The SQL of each `jobs.query`.
    pub queries: Vec<String>,
    jobs: BTreeMap<String, Job>,
}

#[derive(Clone)]
pub struct GoogleMock {
    uri: String,
    rows: Arc<Vec<Value>>,
    discovery: Arc<Value>,
    export_schema: Arc<Value>,
    public: Arc<Vec<u8>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub seen: Arc<Mutex<Seen>>,
}

fn google_error(status: u16, reason: &str, message: &str) -> ResponseTemplate {
    let s = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        _ => "UNKNOWN",
    };
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": s,
        }
    }))
}

impl GoogleMock {
    fn ok(&self, schema: &str, body: Value) -> ResponseTemplate {
        let mut v = Vec::new();
        check_schema(
            &self.discovery,
            &json!({"$ref": schema}),
            &body,
            schema,
            &mut v,
        );
        self.seen.lock().unwrap().violations.extend(v);
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn token(&self, req: &Request) -> ResponseTemplate {
        let ct = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let mut seen = self.seen.lock().unwrap();
        seen.calls.push("token".into());
        if req.method != wiremock::http::Method::POST
            || ct != "application/x-www-form-urlencoded"
            || form.get("grant_type").map(String::as_str) != Some(GRANT)
        {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}));
        }
        let jwt = form.get("assertion").cloned().unwrap_or_default();
        seen.assertions.push(jwt.clone());
        match verify_jwt(
            &jwt,
            &format!("{}/token", self.uri),
            &self.public,
            unix_now(),
        ) {
            Ok(_) => {
                let token = format!("ya29.test-access-token-{}", seen.tokens.len() + 1);
                seen.tokens.push(token.clone());
                ResponseTemplate::new(200).set_body_json(
                    json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
                )
            }
            Err(e) => ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": e})),
        }
    }

    fn metadata(&self, req: &Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().unwrap();
        seen.calls.push("metadata".into());
        let flavor = req
            .headers
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok());
        if req.method != wiremock::http::Method::GET || flavor != Some("Google") {
            return ResponseTemplate::new(403)
                .set_body_string("Missing required header: Metadata-Flavor");
        }
        let token = format!("ya29.test-metadata-token-{}", seen.tokens.len() + 1);
        seen.tokens.push(token.clone());
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
        )
    }

    fn authorized(&self, req: &Request) -> bool {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let seen = self.seen.lock().unwrap();
        auth.strip_prefix("Bearer ")
            .is_some_and(|t| seen.tokens.iter().any(|k| k == t))
    }

    fn table(&self, req: &Request, p: &str, d: &str, t: &str) -> ResponseTemplate {
        let b = self.behaviour.lock().unwrap();
        {
            let mut seen = self.seen.lock().unwrap();
            seen.calls.push("table".into());
            let mut v = Vec::new();
            check_query_parameters(&self.discovery, "bigquery.tables.get", req, &mut v);
            seen.violations.extend(v);
        }
        if req.method != wiremock::http::Method::GET {
            return ResponseTemplate::new(405);
        }
        if b.deny_table {
            return google_error(
                403,
                "accessDenied",
                &format!(
                    "Access Denied: Table {p}:{d}.{t}: Permission bigquery.tables.get denied on table {p}:{d}.{t} (or it may not exist)."
                ),
            );
        }
        if b.no_table || (p, d, t) != (PROJECT, DATASET, TABLE) {
            return google_error(404, "notFound", &format!("Not found: Table {p}:{d}.{t}"));
        }
        let rows = self.rows.len() as u64;
        self.ok(
            "Table",
            json!({
                "kind": "bigquery#table",
                "etag": "x0Ww6dY1TkLmYUz3E4Kq8w==",
                "id": format!("{PROJECT}:{DATASET}.{TABLE}"),
                "selfLink": format!("{}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/{TABLE}", self.uri),
                "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": TABLE},
                "schema": {"fields": self.export_schema.as_ref().clone()},
                "timePartitioning": {"type": "DAY"},
                "numBytes": (b.bulk * 730).to_string(),
                "numRows": (rows * 1000).to_string(),
                "creationTime": "1700000000000",
                "lastModifiedTime": "1800000000000",
                "type": "TABLE",
                "location": LOCATION,
            }),
        )
    }

    fn page(&self, job_id: &str, start: usize, kind: &str) -> ResponseTemplate {
        let page_rows = self.behaviour.lock().unwrap().page_rows;
        let seen = self.seen.lock().unwrap();
        let job = &seen.jobs[job_id];
        let end = (start + page_rows).min(job.rows.len());
        let mut body = json!({
            "kind": if kind == "QueryResponse" { "bigquery#queryResponse" } else { "bigquery#getQueryResultsResponse" },
            "schema": job.schema,
            "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": LOCATION},
            "totalRows": job.rows.len().to_string(),
            "rows": job.rows[start..end].to_vec(),
            "totalBytesProcessed": job.bytes.to_string(),
            "jobComplete": true,
            "cacheHit": false,
        });
        if kind == "QueryResponse" {
            body["totalBytesBilled"] = Value::from(billed(job.bytes).to_string());
        }
        if end < job.rows.len() {
            body["pageToken"] = Value::from(format!("BG{job_id}x{end}"));
        }
        drop(seen);
        self.ok(kind, body)
    }

    fn query(&self, req: &Request, project: &str) -> ResponseTemplate {
        if req.method != wiremock::http::Method::POST {
            return ResponseTemplate::new(405);
        }
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return google_error(400, "parseError", "Parse Error"),
        };
        let dry = body["dryRun"] == true;
        {
            let b = self.behaviour.lock().unwrap();
            let mut seen = self.seen.lock().unwrap();
            seen.calls
                .push(if dry { "dry_run" } else { "query" }.into());
            seen.queries
                .push(body["query"].as_str().unwrap_or_default().to_owned());
            if b.deny_jobs {
                return google_error(
                    403,
                    "accessDenied",
                    &format!(
                        "Access Denied: Project {project}: User does not have bigquery.jobs.create permission in project {project}."
                    ),
                );
            }
            if b.quota {
                return google_error(
                    403,
                    "quotaExceeded",
                    "Quota exceeded: Your project exceeded quota for free query bytes scanned.",
                );
            }
        }
        if project != PROJECT {
            return google_error(404, "notFound", &format!("Not found: Project {project}"));
        }
        let mut violations = Vec::new();
        check_schema(
            &self.discovery,
            &json!({"$ref": "QueryRequest"}),
            &body,
            "QueryRequest",
            &mut violations,
        );
        let (plan, policy) = check_query(&body, &self.export_schema);
        violations.extend(policy);
        if !violations.is_empty() {
            let first = violations[0].clone();
            self.seen.lock().unwrap().violations.extend(violations);
            return google_error(400, "invalidQuery", &first);
        }
        let (Some(plan), Ok(params)) = (plan, parameters(&body)) else {
            return google_error(400, "invalidQuery", "not understood");
        };
        let b = self.behaviour.lock().unwrap();
        let (bytes, schema, rows) = evaluate(&plan, &params, &self.rows, &b);
        let cap: u64 = body["maximumBytesBilled"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        if dry {
            let said = (bytes as f64 * b.dry_run_share) as u64;
            drop(b);
            self.seen.lock().unwrap().dry_runs.push(said);
            return self.ok(
                "QueryResponse",
                json!({
                    "kind": "bigquery#queryResponse",
                    "schema": schema,
                    "jobReference": {"projectId": PROJECT, "location": LOCATION},
                    "totalBytesProcessed": said.to_string(),
                    "jobComplete": true,
                    "cacheHit": false,
                }),
            );
        }
        // BigQuery bills at least 10 MiB per table, in whole MiB, and refuses a query over
        // its cap without running it.
        if billed(bytes) > cap {
            return google_error(
                400,
                "bytesBilledLimitExceeded",
                &format!(
                    "Query exceeded limit for bytes billed: {cap}. {} or higher required.",
                    billed(bytes)
                ),
            );
        }
        let waits = b.waits;
        drop(b);
        let job_id = {
            let mut seen = self.seen.lock().unwrap();
            let id = format!("job_mock{}", seen.jobs.len() + 1);
            seen.jobs.insert(
                id.clone(),
                Job {
                    schema,
                    rows,
                    pending: waits,
                    bytes,
                },
            );
            id
        };
        if waits > 0 {
            self.seen
                .lock()
                .unwrap()
                .jobs
                .get_mut(&job_id)
                .unwrap()
                .pending -= 1;
            return self.ok(
                "QueryResponse",
                json!({
                    "kind": "bigquery#queryResponse",
                    "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": LOCATION},
                    "jobComplete": false,
                }),
            );
        }
        self.page(&job_id, 0, "QueryResponse")
    }

    fn results(&self, req: &Request, project: &str, job_id: &str) -> ResponseTemplate {
        let mut v = Vec::new();
        check_query_parameters(
            &self.discovery,
            "bigquery.jobs.getQueryResults",
            req,
            &mut v,
        );
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        if q.get("location").map(String::as_str) != Some(LOCATION) {
            v.push("getQueryResults without the job's location".into());
        }
        let token = q.get("pageToken").cloned();
        let mut seen = self.seen.lock().unwrap();
        seen.violations.extend(v);
        seen.calls
            .push(if token.is_some() { "page" } else { "wait" }.into());
        if project != PROJECT || !seen.jobs.contains_key(job_id) {
            return google_error(
                404,
                "notFound",
                &format!("Not found: Job {project}:{LOCATION}.{job_id}"),
            );
        }
        let job = seen.jobs.get_mut(job_id).unwrap();
        if job.pending > 0 {
            job.pending -= 1;
            drop(seen);
            return self.ok(
                "GetQueryResultsResponse",
                json!({
                    "kind": "bigquery#getQueryResultsResponse",
                    "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": LOCATION},
                    "jobComplete": false,
                }),
            );
        }
        drop(seen);
        let start = match token {
            None => 0,
            Some(t) => match t
                .strip_prefix(&format!("BG{job_id}x"))
                .and_then(|n| n.parse().ok())
            {
                Some(n) => n,
                None => return google_error(400, "invalid", "Invalid page token"),
            },
        };
        self.page(job_id, start, "GetQueryResultsResponse")
    }
}

fn billed(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).max(10) * MIB
}

impl Respond for GoogleMock {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_owned();
        if path == "/token" {
            return self.token(req);
        }
        if path == METADATA_PATH {
            return self.metadata(req);
        }
        let Some(rest) = path.strip_prefix("/bigquery/v2/") else {
            return ResponseTemplate::new(404);
        };
        if !self.authorized(req) {
            return google_error(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            );
        }
        let segs: Vec<&str> = rest.split('/').collect();
        match segs.as_slice() {
            ["projects", p, "datasets", d, "tables", t] => self.table(req, p, d, t),
            ["projects", p, "queries"] => self.query(req, p),
            ["projects", p, "queries", job] if req.method == wiremock::http::Method::GET => {
                self.results(req, p, job)
            }
            _ => google_error(404, "notFound", "Not found"),
        }
    }
}

/// Mounts the mock on `server`.
pub async fn mount(server: &MockServer, dates: &Dates, b: Behaviour) -> GoogleMock {
    let mock = GoogleMock {
        uri: server.uri(),
        rows: Arc::new(rows(dates)),
        discovery: Arc::new(fixture_json("bigquery-v2.discovery-excerpt.json")),
        export_schema: Arc::new(fixture_json("billing-export-standard-schema.json")),
        public: Arc::new(public_key()),
        behaviour: Arc::new(Mutex::new(b)),
        seen: Arc::new(Mutex::new(Seen::default())),
    };
    Mock::given(wiremock::matchers::any())
        .respond_with(mock.clone())
        .mount(server)
        .await;
    mock
}

/// A key file for the mock's token endpoint, in a temporary directory.
fn write_key(dir: &tempfile::TempDir, server: &MockServer, key: &str) -> String {
    let path = dir.path().join("key.json");
    std::fs::write(
        &path,
        key_file(&format!("{}/token", server.uri()), key, KEY_ID),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn config(pg: &str, server: &MockServer, extra: &str) -> tempfile::NamedTempFile {
    support::toml(&format!(
        "currency = \"EUR\"\n[fx]\nUSD = 0.92\n[pushgateway]\nurl = \"{pg}\"\n[http]\nretries = 0\n\
         [providers.google]\nbase_url = \"{}/bigquery/v2\"\nbudget = 100\n{extra}",
        server.uri()
    ))
}

/// The `cost_spend` series with exactly these breakdown labels.
fn spend(pg: &Pushgateway, labels: &[(&str, &str)]) -> Option<f64> {
    pg.series(Some("google"), "cost_spend")
        .into_iter()
        .find(|(l, _)| {
            let breakdown: BTreeMap<&str, &str> = l
                .iter()
                .filter(|(k, _)| !["job", "instance", "provider", "currency"].contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            breakdown == labels.iter().copied().collect()
        })
        .map(|(_, v)| v)
}

/// The query the README shows (its Google Cloud section), for this test's table.
fn readme_sql() -> String {
    let readme = std::fs::read_to_string(support::repo("README.md")).unwrap();
    let section = readme
        .split_once("\n## Google Cloud")
        .expect("README has a Google Cloud section")
        .1;
    section
        .split("```sql\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the Google Cloud section shows its query")
        .replace(
            "PROJECT.DATASET.gcp_billing_export_v1_BILLING_ACCOUNT_ID",
            &table_name(),
        )
}

const GEMINI_IN: &str = "Generate content input token count Gemini 2.5 Flash";
const GEMINI_OUT: &str = "Generate content output token count Gemini 2.5 Flash";
const TTS_WAVENET: &str = "Text-to-Speech WaveNet voices characters";
const TTS_STANDARD: &str = "Text-to-Speech Standard voices characters";

// ---------------------------------------------------------------------------------------
// Tests.

/// A change to a good request, named.
type Change = (&'static str, Box<dyn Fn(&mut Value)>);
/// A way the mock fails, and what the job must then say.
type Failure = (fn(&mut Behaviour), &'static str);
/// Settings (TOML and environment) and the problem they must cause.
type Setting<'a> = (String, Vec<(&'a str, &'a str)>, &'static str);

#[test]
fn the_fixtures_follow_the_published_schemas_and_the_mock_catches_what_is_off_spec() {
    let d = Dates::now();
    // The fixture rows are rows of the standard usage cost export.
    let schema = fixture_json("billing-export-standard-schema.json");
    fn check_row(fields: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let obj = v.as_object().unwrap();
        for (k, x) in obj {
            let Some(f) = fields
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == k.as_str())
            else {
                out.push(format!("{at}.{k}: not in the export's schema"));
                continue;
            };
            let items: Vec<&Value> = if f["mode"] == "REPEATED" {
                match x.as_array() {
                    Some(a) => a.iter().collect(),
                    None => {
                        out.push(format!("{at}.{k}: REPEATED but not an array"));
                        continue;
                    }
                }
            } else {
                vec![x]
            };
            for x in items {
                let ok = match (f["type"].as_str().unwrap(), x) {
                    (_, Value::Null) => true,
                    ("STRING", v) => v.is_string(),
                    ("FLOAT", v) => v.is_number(),
                    ("TIMESTAMP", v) => time_of(v).is_some(),
                    ("RECORD", v) if v.is_object() => {
                        check_row(&f["fields"], v, &format!("{at}.{k}"), out);
                        true
                    }
                    _ => false,
                };
                if !ok {
                    out.push(format!("{at}.{k}: {x} is not a {}", f["type"]));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, r) in rows(&d).iter().enumerate() {
        check_row(&schema, r, &format!("row {}", i + 1), &mut out);
    }
    assert!(out.is_empty(), "{out:#?}");

    // The job's own request, as the mock reads it, is clean; each single change of it is
    // caught, by the published schema or by the job's rules.
    let discovery = fixture_json("bigquery-v2.discovery-excerpt.json");
    let good = json!({
        "kind": "bigquery#queryRequest",
        "query": readme_sql(),
        "useLegacySql": false,
        "parameterMode": "NAMED",
        "queryParameters": [
            {"name": "invoice_month", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "202611"}},
            {"name": "partition_from", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2026-11-01"}},
            {"name": "partition_to", "parameterType": {"type": "DATE"}, "parameterValue": {"value": "2026-12-08"}},
            {"name": "sku_services", "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}}, "parameterValue": {"arrayValues": [{"value": "Gemini API"}]}},
            {"name": "pot_credit_types", "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}}, "parameterValue": {"arrayValues": [{"value": "PROMOTION"}]}},
        ],
        "location": LOCATION,
        "maximumBytesBilled": "1073741824",
        "dryRun": false,
        "useQueryCache": true,
        "timeoutMs": 10000,
        "maxResults": 10000,
        "labels": {"client": "cost-exporter"},
    });
    let violations = |body: &Value| {
        let mut v = Vec::new();
        check_schema(
            &discovery,
            &json!({"$ref": "QueryRequest"}),
            body,
            "QueryRequest",
            &mut v,
        );
        v.extend(check_query(body, &schema).1);
        v
    };
    assert!(violations(&good).is_empty(), "{:#?}", violations(&good));
    let sql = good["query"].as_str().unwrap().to_owned();
    let changes: Vec<Change> = vec![
        ("legacy SQL", Box::new(|b| b["useLegacySql"] = json!(true))),
        (
            "no cap",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("maximumBytesBilled");
            }),
        ),
        (
            "a cap that is not an int64 string",
            Box::new(|b| b["maximumBytesBilled"] = json!(1073741824)),
        ),
        (
            "a misspelt field",
            Box::new(|b| b["maxBytesBilled"] = json!("1")),
        ),
        (
            "another location",
            Box::new(|b| b["location"] = json!("US")),
        ),
        (
            "no partition filter",
            Box::new({
                let sql = sql.clone();
                move |b| {
                    b["query"] = json!(sql.replace("\n  AND _PARTITIONDATE >= @partition_from\n  AND _PARTITIONDATE < @partition_to", ""))
                }
            }),
        ),
        (
            "a write",
            Box::new(|b| b["query"] = json!(format!("DELETE FROM `{}` WHERE TRUE", table_name()))),
        ),
        (
            "another table",
            Box::new({
                let sql = sql.clone();
                move |b| b["query"] = json!(sql.replace(TABLE, "other_table"))
            }),
        ),
        (
            "a column the export lacks",
            Box::new({
                let sql = sql.clone();
                move |b| b["query"] = json!(sql.replace("MAX(export_time)", "MAX(exported_at)"))
            }),
        ),
        (
            "an unused parameter",
            Box::new(|b| {
                b["queryParameters"].as_array_mut().unwrap().push(json!({"name": "x", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "1"}}))
            }),
        ),
        (
            "a parameter of the wrong type",
            Box::new(|b| b["queryParameters"][1]["parameterType"]["type"] = json!("STRING")),
        ),
    ];
    for (what, change) in changes {
        let mut b = good.clone();
        change(&mut b);
        assert!(!violations(&b).is_empty(), "{what} was not caught");
    }

    // The token endpoint's checks: the job's JWT shape passes; a wrong key, an expired JWT,
    // another audience or scope do not.
    let public = public_key();
    let now = unix_now();
    let sign = |key: &str, claims: Value| -> String {
        let pem = fixture_text(key);
        let der = STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let kp = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; kp.public().modulus_len()];
        kp.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    let aud = "http://127.0.0.1:1/token";
    let claims = |iat: i64, exp: i64, aud: &str, scope: &str| json!({"iss": EMAIL, "scope": scope, "aud": aud, "iat": iat, "exp": exp});
    let ok = sign(
        "test-service-account.key.pem",
        claims(now, now + 3600, aud, SCOPE),
    );
    assert!(verify_jwt(&ok, aud, &public, now).is_ok());
    for (what, jwt, says) in [
        (
            "another key",
            sign("test-other.key.pem", claims(now, now + 3600, aud, SCOPE)),
            "Signature",
        ),
        (
            "expired",
            sign(
                "test-service-account.key.pem",
                claims(now - 7200, now - 3600, aud, SCOPE),
            ),
            "short-lived",
        ),
        (
            "longer than an hour",
            sign(
                "test-service-account.key.pem",
                claims(now, now + 7200, aud, SCOPE),
            ),
            "short-lived",
        ),
        (
            "another audience",
            sign(
                "test-service-account.key.pem",
                claims(now, now + 3600, "https://evil.example/token", SCOPE),
            ),
            "aud",
        ),
        (
            "a write scope",
            sign(
                "test-service-account.key.pem",
                claims(
                    now,
                    now + 3600,
                    aud,
                    "https://www.googleapis.com/auth/bigquery",
                ),
            ),
            "scope",
        ),
    ] {
        let err = verify_jwt(&jwt, aud, &public, now)
            .err()
            .unwrap_or_else(|| panic!("{what} passed"));
        assert!(err.contains(says), "{what}: {err}");
    }
    // Java's doubles, as BigQuery writes FLOAT64 and TIMESTAMP.
    assert_eq!(java_double(29_409_958.0), "2.9409958E7");
    assert_eq!(java_double(5_000_000.0), "5000000.0");
    assert_eq!(java_double(1_796_600_000.0), "1.7966E9");
    assert_eq!(java_double(0.0001), "1.0E-4");
}

#[tokio::test]
async fn a_month_of_the_export_is_pushed_to_the_cent() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    let mock = mount(&server, &dates, Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &server, "");
    let env = [
        ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
        ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");

    // The hand computation (tests/fixtures/google/README.md), USD × 0.92, to the cent.
    let eur = |labels: &[(&str, &str)]| spend(&pg, labels).map(cents);
    fn usage(s: &'static str, k: &'static str) -> [(&'static str, &'static str); 3] {
        [("service", s), ("sku", k), ("category", "usage")]
    }
    assert_eq!(eur(&usage("Gemini API", GEMINI_IN)), Some(922));
    assert_eq!(eur(&usage("Gemini API", GEMINI_OUT)), Some(1035));
    assert_eq!(
        eur(&usage("Cloud Text-to-Speech API", TTS_WAVENET)),
        Some(736)
    );
    assert_eq!(
        eur(&usage("Cloud Text-to-Speech API", TTS_STANDARD)),
        Some(0)
    );
    assert_eq!(
        eur(&[("service", "Compute Engine"), ("category", "usage")]),
        Some(2902)
    );
    assert_eq!(
        eur(&[("service", "Cloud Storage"), ("category", "usage")]),
        Some(295)
    );
    assert_eq!(
        eur(&[("service", "Cloud Storage"), ("category", "adjustment")]),
        Some(138)
    );
    assert_eq!(
        eur(&[("service", "BigQuery"), ("category", "usage")]),
        Some(0)
    );
    assert_eq!(
        eur(&[("service", "Cloud Run"), ("category", "usage")]),
        Some(37)
    );
    // Taxes are excluded by default; last month's rows never count.
    assert_eq!(eur(&[("service", "tax"), ("category", "tax")]), None);
    let series = pg.series(Some("google"), "cost_spend");
    assert_eq!(series.len(), 9, "{series:?}");
    assert!(series.iter().all(|(l, _)| l["currency"] == "EUR"));
    let total: f64 = series.iter().map(|(_, v)| v).sum();
    assert_eq!(cents(total), 6065, "Σ {total}");
    let metered = pg.value(Some("google"), "cost_metered_spend", &[]).unwrap();
    assert_eq!(cents(metered), 5927);
    // The forecast: usage before the pot credits extrapolated over the export's reach, the
    // credits (31.0625 USD) deducted once, the adjustment as billed.
    let as_of = pg
        .value(
            Some("google"),
            "cost_collector_data_as_of_timestamp_seconds",
            &[],
        )
        .unwrap();
    assert_eq!(as_of as i64, dates.export2.unix_timestamp());
    // Google's invoice month runs from 00:00 on the 1st in US Pacific time.
    let (start, end) = (pacific(dates.start), pacific(ovh_month_end(dates.start)));
    let elapsed = (dates.export2 - start).as_seconds_f64();
    let month = (end - start).as_seconds_f64();
    let want = if elapsed < 48.0 * 3600.0 {
        60.652019544
    } else {
        0.92 * (95.4886082 * month / elapsed - 31.0625) + 1.38
    };
    let forecast = pg.value(Some("google"), "cost_forecast", &[]).unwrap();
    assert!(
        (forecast - want).abs() < 0.011,
        "forecast {forecast}, want {want}"
    );
    // The SKUs' usage in base units, and Text-to-Speech's free characters.
    let used = |resource: &str, sku: &str| {
        pg.value(
            Some("google"),
            "cost_usage",
            &[("resource", resource), ("sku", sku)],
        )
    };
    assert_eq!(used("tokens", GEMINI_IN), Some(33_409_958.0));
    assert_eq!(used("tokens", GEMINI_OUT), Some(5_000_000.0));
    assert_eq!(
        used("tts_wavenet_characters", TTS_WAVENET),
        Some(1_500_000.0)
    );
    assert_eq!(
        used("tts_standard_characters", TTS_STANDARD),
        Some(2_500_000.0)
    );
    assert_eq!(pg.series(Some("google"), "cost_usage").len(), 4);
    let limit = |r: &str| {
        pg.value(
            Some("google"),
            "cost_usage_limit",
            &[("resource", r), ("unit", "characters")],
        )
    };
    assert_eq!(limit("tts_standard_characters"), Some(4_000_000.0));
    assert_eq!(limit("tts_wavenet_characters"), Some(1_000_000.0));
    assert_eq!(limit("tts_studio_characters"), Some(100_000.0));

    // `check --probe` says what a month's query scans, from a dry run.
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(&["check", "--probe", "--config", &path], &env).await;
    let (stdout, _) = support::text(&out);
    assert!(
        stdout.contains("this month's query would scan") && stdout.contains(&table_name()),
        "{stdout}"
    );

    // What went over the wire: one token, the table, a dry run, the query and its pages;
    // every request and answer as published, the JWT verified by the mock; the query is the
    // one the README shows.
    let requests = server.received_requests().await.unwrap();
    for r in &requests {
        let post = r.method == wiremock::http::Method::POST;
        assert!(
            !post || r.url.path() == "/token" || r.url.path().ends_with("/queries"),
            "a POST to {}",
            r.url.path()
        );
    }
    let seen = mock.seen.lock().unwrap();
    assert_eq!(
        seen.queries.len(),
        3,
        "the push's dry run and query, the probe's dry run"
    );
    for q in &seen.queries {
        assert_eq!(collapse(q), collapse(&readme_sql()));
    }
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    let pages = seen.calls.iter().filter(|c| *c == "page").count();
    assert!(pages >= 2, "{:?}", seen.calls);
    assert_eq!(
        &seen.calls[..4],
        ["token", "table", "dry_run", "query"],
        "{:?}",
        seen.calls
    );
    assert_eq!(
        &seen.calls[4 + pages..],
        ["token", "table", "dry_run"],
        "{:?}",
        seen.calls
    );
    // No secret left the requests: not the key, the signed JWT or the access token.
    let dump = pg.dump();
    let pem = fixture_text("test-service-account.key.pem");
    let key_line = pem.lines().nth(1).unwrap();
    for secret in [
        key_line,
        seen.assertions[0].as_str(),
        seen.tokens[0].as_str(),
        KEY_ID,
    ] {
        assert!(
            !stderr.contains(secret) && !dump.contains(secret),
            "a secret leaked: {}",
            &secret[..12]
        );
    }
}

/// The first of the month after `start`'s.
/// 00:00 US Pacific time on the day of `utc_midnight` (a 1st): PDT (UTC−7) from April to
/// November (summer time runs from March's second Sunday to November's first, so the 1st of
/// those months is in it), PST (UTC−8) otherwise.
fn pacific(utc_midnight: OffsetDateTime) -> OffsetDateTime {
    let summer = (4..=11).contains(&u8::from(utc_midnight.month()));
    utc_midnight + time::Duration::hours(if summer { 7 } else { 8 })
}

fn ovh_month_end(start: OffsetDateTime) -> OffsetDateTime {
    crate::ovh::month_end(start)
}

#[tokio::test]
async fn a_running_job_is_waited_for_then_read_page_by_page() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    let b = Behaviour {
        waits: 2,
        page_rows: 3,
        ..Behaviour::default()
    };
    let mock = mount(&server, &dates, b).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let cfg = config("http://127.0.0.1:9", &server, "");
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "google"],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
            ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
        ],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let total: f64 = stdout
        .lines()
        .filter(|l| l.starts_with("cost_spend{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(cents(total), 6065, "{stdout}");
    let seen = mock.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    // jobComplete false from jobs.query, once more from getQueryResults, then the pages.
    assert_eq!(
        &seen.calls[..6],
        ["token", "table", "dry_run", "query", "wait", "wait"],
        "{:?}",
        seen.calls
    );
    assert!(
        seen.calls.iter().filter(|c| *c == "page").count() >= 3,
        "{:?}",
        seen.calls
    );
}

#[tokio::test]
async fn with_tax_included_the_export_s_tax_is_its_own_series() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    mount(&server, &dates, Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let cfg = support::toml(&format!(
        "currency = \"EUR\"\ntax = \"included\"\n[fx]\nUSD = 0.92\n[providers.google]\nbase_url = \"{}/bigquery/v2\"\n\
         [providers.google.limits]\ntts_standard_characters = 2_000_000\n",
        server.uri()
    ));
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "google"],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
            ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
        ],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let value = |prefix: &str| -> f64 {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} not in {stdout}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // 12.34 USD of tax.
    assert_eq!(
        cents(value(
            "cost_spend{category=\"tax\",currency=\"EUR\",provider=\"google\",service=\"tax\"}"
        )),
        1135
    );
    // A configured limit replaces the free allowance.
    assert_eq!(
        value(
            "cost_usage_limit{provider=\"google\",resource=\"tts_standard_characters\",unit=\"characters\"}"
        ),
        2_000_000.0
    );
}

#[tokio::test]
async fn a_query_over_the_cap_is_refused_by_the_job_and_by_bigquery() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    // Every partition holds 16 MiB: a month's query scans more than the 10 MiB cap.
    let b = Behaviour {
        bulk: 16 * MIB,
        ..Behaviour::default()
    };
    let mock = mount(&server, &dates, b).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &server, "max_bytes_billed = 10_485_760\n");
    let env = [
        ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
        ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("would scan") && stderr.contains("providers.google.max_bytes_billed"),
        "{stderr}"
    );
    {
        let seen = mock.seen.lock().unwrap();
        assert!(
            seen.calls.contains(&"dry_run".to_owned()),
            "{:?}",
            seen.calls
        );
        assert!(
            !seen.calls.contains(&"query".to_owned()),
            "the query ran: {:?}",
            seen.calls
        );
        assert!(seen.dry_runs[0] > 10 * MIB);
    }
    assert_eq!(
        pg.value(
            Some("google"),
            "cost_collector_errors_total",
            &[("reason", "config")]
        ),
        Some(1.0)
    );
    // A dry run that says less than the query scans: BigQuery refuses the query itself
    // (maximumBytesBilled), nothing is billed, and the job says what to raise.
    mock.behaviour.lock().unwrap().dry_run_share = 0.01;
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("bytesBilledLimitExceeded") && stderr.contains("max_bytes_billed"),
        "{stderr}"
    );
    assert!(
        mock.seen
            .lock()
            .unwrap()
            .calls
            .contains(&"query".to_owned())
    );
}

#[tokio::test]
async fn each_failure_says_what_to_fix_and_keeps_the_last_figures() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    let mock = mount(&server, &dates, Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &server, "");
    let table = table_name();
    let env = [
        ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
        ("GOOGLE_BILLING_EXPORT_TABLE", table.as_str()),
    ];
    let (code, stderr) = support::push(cfg.path(), &env).await;
    assert_eq!(code, Some(0), "{stderr}");
    let total = || -> i64 {
        cents(
            pg.series(Some("google"), "cost_spend")
                .iter()
                .map(|(_, v)| v)
                .sum(),
        )
    };
    assert_eq!(total(), 6065);

    // A key the service account does not have (signed by another key): the JWT is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = write_key(&other_dir, &server, "test-other.key.pem");
    let (code, stderr) = support::push(
        cfg.path(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", other.as_str()),
            ("GOOGLE_BILLING_EXPORT_TABLE", table.as_str()),
        ],
    )
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("invalid_grant") && stderr.contains("make a new key"),
        "{stderr}"
    );

    let cases: Vec<Failure> = vec![
        (
            |b| b.deny_table = true,
            "roles/bigquery.dataViewer on dataset cost-exporter-prod.billing_export",
        ),
        (
            |b| b.deny_jobs = true,
            "roles/bigquery.jobUser on project cost-exporter-prod",
        ),
        (|b| b.no_table = true, "check GOOGLE_BILLING_EXPORT_TABLE"),
        (
            |b| b.quota = true,
            "quota of project cost-exporter-prod is used up",
        ),
    ];
    for (set, says) in cases {
        *mock.behaviour.lock().unwrap() = Behaviour::default();
        set(&mut mock.behaviour.lock().unwrap());
        let (code, stderr) = support::push(cfg.path(), &env).await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains(says), "{says} not in {stderr}");
    }
    // Every failure kept the last good figures; each is counted by its reason.
    assert_eq!(total(), 6065);
    assert_eq!(
        pg.value(Some("google"), "cost_collector_up", &[]),
        Some(0.0)
    );
    let errors = |reason: &str| {
        pg.value(
            Some("google"),
            "cost_collector_errors_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(errors("auth"), Some(3.0));
    assert_eq!(errors("http_4xx"), Some(1.0));
    assert_eq!(errors("http_429"), Some(1.0));
    let seen = mock.seen.lock().unwrap();
    for secret in seen.tokens.iter().chain(seen.assertions.iter()) {
        assert!(!pg.dump().contains(secret.as_str()));
    }
}

#[tokio::test]
async fn workload_identity_takes_the_metadata_server_s_token() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    let mock = mount(&server, &dates, Behaviour::default()).await;
    let cfg = config(
        "http://127.0.0.1:9",
        &server,
        &format!(
            "auth = \"metadata\"\nmetadata_url = \"{}{METADATA_PATH}\"\n",
            server.uri()
        ),
    );
    let path = cfg.path().to_str().unwrap().to_owned();
    let out = support::run_async(
        &["collect", "--config", &path, "--only", "google"],
        &[
            ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
            ("GOOGLE_CLOUD_PROJECT", PROJECT),
        ],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("service=\"Gemini API\""), "{stdout}");
    let seen = mock.seen.lock().unwrap();
    assert_eq!(seen.calls[0], "metadata");
    assert!(!seen.calls.contains(&"token".to_owned()));
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
}

#[tokio::test]
async fn backfill_reads_past_invoice_months_from_the_same_table() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    let mock = mount(&server, &dates, Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let cfg = config("http://127.0.0.1:9", &server, "");
    let path = cfg.path().to_str().unwrap().to_owned();
    let from = format!(
        "{:04}-{:02}",
        dates.last_first.year(),
        u8::from(dates.last_first.month())
    );
    let out = support::run_async(
        &[
            "backfill", "--config", &path, "--from", &from, "--only", "google",
        ],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
            ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
        ],
    )
    .await;
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut spend: BTreeMap<i64, f64> = BTreeMap::new();
    for line in stdout.lines().filter(|l| l.starts_with("cost_spend{")) {
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let v: f64 = parts.next().unwrap().parse().unwrap();
        *spend.entry(ts).or_default() += v;
    }
    // Last month: 20.00 USD of Compute Engine from the 10th, 7.77 USD of Gemini on the last
    // day (exported into this month's first partition, still last month's invoice), and 2.23
    // USD used in this month's first hours UTC but on last month's invoice (its last hours in
    // US Pacific time), counted on the last day too.
    let mut day = dates.last_first;
    while day.month() == dates.last_first.month() {
        let ts = (day.midnight().assume_utc() + time::Duration::DAY).unix_timestamp() - 1;
        let want = if day >= dates.lm_day_b.date() {
            30.0
        } else if day >= dates.lm_day_a.date() {
            20.0
        } else {
            0.0
        };
        assert_eq!(
            spend.get(&ts).map(|v| cents(*v)),
            Some(cents(want * 0.92)),
            "{day}"
        );
        day = day.next_day().unwrap();
    }
    // One token for the run; per month one table read, one dry run and one query.
    let seen = mock.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(
        seen.calls.iter().filter(|c| *c == "token").count(),
        1,
        "{:?}",
        seen.calls
    );
    let dry = seen.calls.iter().filter(|c| *c == "dry_run").count();
    assert_eq!(dry, seen.calls.iter().filter(|c| *c == "query").count());
    assert!(dry >= 1);
}

#[test]
fn bad_settings_are_configuration_errors_before_any_connection() {
    let probe = support::Counter::start(None);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(
        &key,
        key_file(
            &format!("{}/token", probe.url),
            "test-service-account.key.pem",
            KEY_ID,
        ),
    )
    .unwrap();
    let bad_key = dir.path().join("bad.json");
    std::fs::write(&bad_key, "{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nSECRETBITS\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"a@b\"}").unwrap();
    let key = key.to_str().unwrap();
    let cases: Vec<Setting> = vec![
        (
            String::new(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", key),
                ("GOOGLE_BILLING_EXPORT_TABLE", "billing.t"),
            ],
            "is not project.dataset.table",
        ),
        (
            String::new(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", bad_key.to_str().unwrap()),
                ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
            ],
            "the key has a private_key that is not",
        ),
        (
            String::new(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json"),
                ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
            ],
            "cannot be read",
        ),
        (
            "max_bytes_billed = 1000\n".into(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", key),
                ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
            ],
            "10 MiB",
        ),
        (
            "auth = \"metadata\"\nmetadata_url = \"http://example.com/token\"\n".into(),
            vec![("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t")],
            "loopback",
        ),
        (
            String::new(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", key),
                ("GOOGLE_CREDENTIALS", "{}"),
                ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
            ],
            "set one",
        ),
        (
            "[providers.google.limits]\ngemini_tokens = 5\n".into(),
            vec![
                ("GOOGLE_APPLICATION_CREDENTIALS", key),
                ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
            ],
            "unknown limit `gemini_tokens`",
        ),
    ];
    for (extra, env, says) in cases {
        let cfg = support::toml(&format!("[providers.google]\n{extra}"));
        let out = support::run(&["collect", "--config", cfg.path().to_str().unwrap()], &env);
        let (_, stderr) = support::text(&out);
        assert_eq!(out.status.code(), Some(2), "{says}: {stderr}");
        assert!(stderr.contains(says), "{says} not in {stderr}");
        assert!(!stderr.contains("SECRETBITS"), "{stderr}");
    }
    assert_eq!(probe.connections(), 0);
    // Credentials without a table: known, not collected, said so.
    let cfg = support::toml("[providers.google]\n");
    let out = support::run(
        &[
            "collect",
            "--config",
            cfg.path().to_str().unwrap(),
            "--only",
            "google",
        ],
        &[("GOOGLE_APPLICATION_CREDENTIALS", key)],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no billing export table"), "{stderr}");
    assert!(
        stdout.contains("cost_collector_configured{provider=\"google\"} 0"),
        "{stdout}"
    );
    // `check` redacts the key given inline.
    let out = support::run(
        &[
            "check",
            "--settings",
            "--config",
            cfg.path().to_str().unwrap(),
        ],
        &[
            ("GOOGLE_CREDENTIALS", &std::fs::read_to_string(key).unwrap()),
            ("GOOGLE_BILLING_EXPORT_TABLE", "p.d.t"),
        ],
    );
    let (stdout, stderr) = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("providers.google.credentials"), "{stdout}");
    assert!(
        !stdout.contains("PRIVATE KEY") && !stdout.contains(KEY_ID),
        "{stdout}"
    );
}

/// The fixture month pushed and scraped by a real Prometheus: Google's services are in the
/// dashboard's provider panels, its TTS free tiers against their limits, and its AI SKUs with
/// their spend and usage in their own table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_google_s_services_and_ai_skus() {
    let dates = Dates::now();
    let server = MockServer::start().await;
    mount(&server, &dates, Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(&dir, &server, "test-service-account.key.pem");
    let pg = Pushgateway::start();
    let cfg = config(&pg.url, &server, "");
    let (code, stderr) = support::push(
        cfg.path(),
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
            ("GOOGLE_BILLING_EXPORT_TABLE", &table_name()),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
         static_configs: [{{targets: ['{}']}}]\n",
        pg.url.trim_start_matches("http://")
    );
    tokio::task::spawn_blocking(move || {
        let prom = support::Prometheus::start(&config);
        prom.wait_for(
            r#"count(cost_spend{job="cost-exporter", provider="google"})"#,
            |v| v >= 9.0,
            std::time::Duration::from_secs(30),
        );
        let result = |title: &str| -> Vec<Value> {
            crate::monitoring::dashboard_queries()
                .into_iter()
                .filter(|(t, _)| t == title)
                .flat_map(|(_, expr)| {
                    prom.query(&expr).unwrap()["result"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        };
        let spend = result("Spend per provider");
        assert!(
            spend.iter().any(|s| s["metric"]["provider"] == "google"),
            "{spend:?}"
        );
        let limits = result("Usage against limit");
        assert!(
            limits.iter().any(|s| s["metric"]["provider"] == "google"
                && s["metric"]["resource"] == "tts_wavenet_characters"),
            "{limits:?}"
        );
        // Spend per SKU (4) and usage per SKU (4): Gemini's tokens, TTS characters.
        let skus = result("Google AI SKUs (${currency})");
        assert_eq!(skus.len(), 8, "{skus:?}");
        assert!(
            skus.iter()
                .any(|s| s["metric"]["sku"] == GEMINI_IN && s["metric"]["unit"] == "tokens")
        );
        assert!(
            skus.iter()
                .any(|s| s["metric"]["sku"] == TTS_WAVENET && s["metric"]["unit"] == "characters")
        );
    })
    .await
    .unwrap();
}
