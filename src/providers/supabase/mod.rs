//! Supabase: per project, database size, storage size, users and the MAU approximation, the
//! largest tables' row counts (read-only SQL through the Management API), disk utilisation,
//! edge function invocations (logs), optionally the project's Prometheus metrics endpoint;
//! organisation quotas per plan; spend = plan fee + per project the provisioned disk, the
//! compute instance and the add-ons (paid plans, less the monthly compute credit) + overage
//! above the organisation's quotas.
//!
//! Requests are paced under the Management API's 60 requests a minute: six per project, and
//! the edge logs a day at a time (the logs endpoints refuse a window over 24 hours), so at most
//! 31 more; every request is a GET except the SQL, which goes to the read-only endpoint. The
//! logs are read from the unified logs endpoint (`analytics/endpoints/logs`, ClickHouse SQL),
//! or from the deprecated `logs.all` (BigQuery SQL) where the first answers 404.
//!
//! Parts: this file (the section, its validation, the collector), `metrics` (the project's
//! metrics endpoint), `billing` (disk, compute and add-on prices).

mod billing;
mod metrics;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema, StringList};
use crate::cost::{
    Allowance, Collection, Credit, Skipped, Spend, SpendKind, Unit, Usage, UsageLimit,
};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, PostBody, ProviderHttp, describe, join, scrub};
use crate::money::{ConfigDecimal, Currency, Money};
use crate::providers::wire;
use crate::providers::{Api, Collector, Configured, Context, Provider};
use crate::secret::{RawSecret, Secret};

use crate::providers::pacer::Pacer;
use metrics::{MetricsFigures, parse_metrics};

const NAME: &str = "supabase";
const BASE_URL: &str = "https://api.supabase.com";

/// The registry's description of Supabase.
pub(super) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "SUPABASE_ACCESS_TOKEN",
                key: "token",
                help: "Supabase personal access token (read-only where offered).",
            },
            EnvVar {
                name: "SUPABASE_PROJECT_REF",
                key: "project_refs",
                help: "Supabase project refs to collect, comma-separated (the id in the project URL).",
            },
            EnvVar {
                name: "SUPABASE_SERVICE_ROLE_KEY",
                key: "service_role_key",
                help: "Optional: the project's service-role key, to read sizes from its metrics endpoint (one project).",
            },
        ],
        secrets: &["token", "service_role_key"],
    },
    // The SQL runs as `supabase_read_only_user` on this endpoint.
    posts: &["/database/query/read-only"],
    configure,
};

/// `[providers.supabase]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    plan: Option<String>,
    limits: BTreeMap<String, ConfigDecimal>,
    token: RawSecret,
    project_refs: StringList,
    top_tables: Option<u32>,
    top_functions: Option<u32>,
    service_role_key: RawSecret,
    metrics_url: Option<String>,
}

/// The organisation's plan: quotas, fee, and whether overage is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Free,
    Pro,
    Team,
}

const PLANS: &[(&str, Plan)] = &[
    ("free", Plan::Free),
    ("pro", Plan::Pro),
    ("team", Plan::Team),
];

/// Resources with a quota: the keys `[providers.supabase.limits]` accepts.
const RESOURCES: &[(&str, Unit)] = &[
    ("database_size", Unit::Bytes),
    ("storage_size", Unit::Bytes),
    ("monthly_active_users", Unit::Users),
    ("edge_function_invocations", Unit::Requests),
];

/// Included quotas per plan, GB decimal
/// (<https://supabase.com/docs/guides/platform/org-based-billing>). `database_size` is per
/// project, the others per organisation.
fn plan_quotas(plan: Plan) -> [(&'static str, f64); 4] {
    match plan {
        Plan::Free => [
            ("database_size", 500e6),
            ("storage_size", 1e9),
            ("monthly_active_users", 50_000.0),
            ("edge_function_invocations", 500_000.0),
        ],
        Plan::Pro | Plan::Team => [
            ("database_size", 8e9),
            ("storage_size", 100e9),
            ("monthly_active_users", 100_000.0),
            ("edge_function_invocations", 2_000_000.0),
        ],
    }
}

/// Monthly base fee per plan, in USD (<https://supabase.com/pricing>).
fn plan_fee(plan: Plan) -> Decimal {
    match plan {
        Plan::Free => Decimal::ZERO,
        Plan::Pro => Decimal::from(25),
        Plan::Team => Decimal::from(599),
    }
}

/// Published Pro/Team overage prices, USD, each beyond the organisation's monthly quota
/// (<https://supabase.com/docs/guides/platform/manage-your-usage>): storage size per GB-hour
/// ($0.00002919, $0.021 a GB-month), the quota in GB-hours being the quota in GB × 744
/// (74,400 GB-Hrs on Pro, as Supabase's table gives it); per MAU ($0.00325); per edge function
/// invocation ($2 a million). (Disk is billed on the provisioned size, by the hour beyond what
/// each hour includes: `billing`.)
const STORAGE_GB_HOUR: Decimal = Decimal::from_parts(2919, 0, 0, false, 8);
const STORAGE_QUOTA_HOURS: Decimal = Decimal::from_parts(744, 0, 0, false, 0);
const PER_MAU: Decimal = Decimal::from_parts(325, 0, 0, false, 5);
const PER_INVOCATION: Decimal = Decimal::from_parts(2, 0, 0, false, 6);

/// The longest window the logs endpoints accept.
const LOG_WINDOW: time::Duration = time::Duration::DAY;
/// Logs windows read per project and run at most: a month of days.
const MAX_LOG_WINDOWS: usize = 31;
/// Invocations per function, on the unified logs endpoint (ClickHouse SQL over the one `logs`
/// stream, the function's id among the attributes).
const LOGS_SQL: &str = "select log_attributes['function_id'] as function_id, count() as count \
                        from logs where source = 'function_edge_logs' group by function_id";
/// The same on the deprecated `logs.all` (BigQuery SQL over `function_edge_logs`).
const LOGS_ALL_SQL: &str = "select m.function_id as function_id, count(*) as count \
                            from function_edge_logs cross join unnest(metadata) as m \
                            group by m.function_id";

/// Largest body read from any Supabase endpoint.
const BODY_LIMIT: usize = 8 << 20;
/// The metrics endpoint, unless configured.
const DEFAULT_METRICS_URL: &str = "https://{ref}.supabase.co/customer/v1/privileged/metrics";

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let plan = s
        .choice("plan", raw.plan.as_deref(), PLANS)
        .unwrap_or(Plan::Free);
    let limits = s.limits(&raw.limits, RESOURCES, &plan_quotas(plan));
    let top_tables = s.count("top_tables", raw.top_tables, 10);
    let top_functions = s.count("top_functions", raw.top_functions, 10);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let token = s.secret("token", &raw.token);
    let service_role_key = s.secret("service_role_key", &raw.service_role_key);
    if service_role_key.is_some() && raw.project_refs.0.len() > 1 {
        s.fail(
            "service_role_key",
            "a service-role key belongs to one project, but several project_refs are set",
        );
    }
    let metrics_url = raw.metrics_url.as_deref().map(str::trim).map(str::to_owned);
    if let Some(m) = &metrics_url {
        if !m.contains("{ref}") {
            s.fail(
                "metrics_url",
                format!("{m:?} has no {{ref}} placeholder for the project ref"),
            );
        } else {
            let _ = s.url("metrics_url", &m.replace("{ref}", "ref"));
        }
    }
    let mut refs = Vec::new();
    for r in &raw.project_refs.0 {
        if is_project_ref(r) {
            refs.push(r.clone());
        } else {
            s.fail(
                "project_refs",
                format!(
                    "{:?} is not a Supabase project ref (exactly {REF_LEN} lowercase letters, the id in the project URL)",
                    r.chars().take(80).collect::<String>()
                ),
            );
        }
    }
    let api = match token {
        None => Api::NoCredentials,
        Some(_) if refs.is_empty() => {
            tracing::warn!(
                provider = NAME,
                "SUPABASE_ACCESS_TOKEN is set but no project ref (SUPABASE_PROJECT_REF or providers.supabase.project_refs): nothing to collect"
            );
            Api::Incomplete("a token but no project ref".into())
        }
        Some(token) => {
            s.bills_in(Currency::USD);
            // 60 requests a minute per user, across all their tokens: paced per token.
            let pacer = Pacer::shared(Pacer::scope(NAME, &[&token]), 10.0, 0.8);
            Api::Collector(Arc::new(Supabase {
                base: base?,
                token,
                refs,
                plan,
                limits,
                top_tables,
                top_functions,
                service_role_key,
                metrics_url: metrics_url.unwrap_or_else(|| DEFAULT_METRICS_URL.to_owned()),
                pacer,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// Length of a project ref: the Management API's `ref` path parameter is `^[a-z]+$`, 20
/// characters exactly.
const REF_LEN: usize = 20;

/// Whether `r` has the shape the Management API's `ref` parameter takes.
fn is_project_ref(r: &str) -> bool {
    r.len() == REF_LEN && r.bytes().all(|b| b.is_ascii_lowercase())
}

/// The Supabase collector.
struct Supabase {
    base: Url,
    token: Secret,
    refs: Vec<String>,
    plan: Plan,
    limits: Vec<UsageLimit>,
    top_tables: usize,
    top_functions: usize,
    service_role_key: Option<Secret>,
    metrics_url: String,
    pacer: Arc<Pacer>,
}

impl Supabase {
    fn url(&self, path: &str) -> Url {
        join(&self.base, path)
    }

    fn http(&self, cx: &Context) -> ProviderHttp {
        // A 429 blocks every Management API call for the next minute.
        cx.http.with_rate_limit_wait(Duration::from_secs(60))
    }

    /// Runs a read-only SQL query; a JSON array of row objects, or a `query` error.
    async fn sql(&self, cx: &Context, r: &str, query: &str) -> Result<Vec<Value>, CollectError> {
        self.pacer.wait().await;
        let url = self.url(&format!("/v1/projects/{r}/database/query/read-only"));
        let what = format!("POST {}", describe(&url));
        let resp = self
            .http(cx)
            .post(
                &url,
                Auth::Bearer(&self.token),
                PostBody::Json(&json!({ "query": query, "parameters": [] })),
            )
            .await
            .map_err(|e| not_found(e.into(), r))?;
        let body = crate::http::read_capped(resp, &what, BODY_LIMIT).await?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(rows)) => Ok(rows),
            Ok(other) => {
                let msg = other
                    .get("message")
                    .or_else(|| other.get("error"))
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .unwrap_or_else(|| other.to_string());
                Err(CollectError::new(
                    Reason::Query,
                    format!(
                        "{what}: the query failed: {}",
                        scrub(&msg, Some(&self.token))
                    ),
                ))
            }
            Err(e) => Err(CollectError::new(
                Reason::Decode,
                format!("{what}: not JSON rows ({e})"),
            )),
        }
    }

    async fn get_json(
        &self,
        cx: &Context,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, CollectError> {
        self.pacer.wait().await;
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let what = format!("GET {}", describe(&url));
        let resp = self
            .http(cx)
            .get(&url, Auth::Bearer(&self.token), &[])
            .await?;
        let body = crate::http::read_capped(resp, &what, BODY_LIMIT).await?;
        serde_json::from_slice(&body)
            .map_err(|e| CollectError::new(Reason::Decode, format!("{what}: not JSON ({e})")))
    }

    async fn project(&self, cx: &Context, r: &str) -> Result<Project, CollectError> {
        let mut p = Project::default();
        // Sizes and users: from the metrics endpoint when a service-role key is set (no SQL
        // needed for them), else from SQL.
        let summary_sql = if let Some(key) = &self.service_role_key {
            let m = self.metrics(cx, r, key).await?;
            p.database_size = m.database_size;
            p.storage_size = m.storage_size;
            p.users = m.users;
            "select (select count(*) from auth.users where last_sign_in_at >= date_trunc('month', now() at time zone 'utc')) as monthly_active_users"
        } else {
            "select pg_database_size(current_database()) as database_size, \
             (select coalesce(sum((metadata->>'size')::bigint), 0) from storage.objects) as storage_size, \
             (select count(*) from auth.users) as users, \
             (select count(*) from auth.users where last_sign_in_at >= date_trunc('month', now() at time zone 'utc')) as monthly_active_users"
        };
        let rows = self
            .sql(cx, r, summary_sql)
            .await
            .map_err(|e| e.context("summary query"))?;
        let row = rows.first().ok_or_else(|| {
            CollectError::new(Reason::Decode, "the summary query returned no row")
        })?;
        let field = |name: &str| -> Result<Option<f64>, CollectError> {
            match row.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => wire::non_negative(v).map(Some).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("summary query: {name}: {e}"))
                }),
            }
        };
        if self.service_role_key.is_none() {
            p.database_size = field("database_size")?;
            p.storage_size = field("storage_size")?;
            p.users = field("users")?;
        }
        p.monthly_active_users = field("monthly_active_users")?;

        let tables_sql = format!(
            "select schemaname || '.' || relname as table_name, n_live_tup as row_count \
             from pg_stat_user_tables order by n_live_tup desc, 1 limit {}",
            self.top_tables
        );
        for row in self
            .sql(cx, r, &tables_sql)
            .await
            .map_err(|e| e.context("table query"))?
        {
            let name = row
                .get("table_name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    CollectError::new(Reason::Decode, "table query: a row has no table_name")
                })?;
            let rows = match row.get("row_count") {
                None | Some(Value::Null) => {
                    return Err(CollectError::new(
                        Reason::Decode,
                        format!("table query: the row of {name} has no row_count"),
                    ));
                }
                Some(v) => wire::non_negative(v).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("table query: row_count: {e}"))
                })?,
            };
            p.tables.push((name.chars().take(128).collect(), rows));
        }

        let disk = self
            .get_json(cx, &format!("/v1/projects/{r}/config/disk/util"), &[])
            .await
            .map_err(|e| not_found(e, r))?;
        let metric = |name: &str| -> Result<Option<f64>, CollectError> {
            match disk.get("metrics").and_then(|m| m.get(name)) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => wire::non_negative(v).map(Some).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("disk/util: {name}: {e}"))
                }),
            }
        };
        p.disk_used = metric("fs_used_bytes")?;
        p.disk_size = metric("fs_size_bytes")?;

        // What a paid plan bills per project: the provisioned disk, compute and add-ons.
        if self.plan != Plan::Free {
            let decode = |m: String| CollectError::new(Reason::Decode, m);
            let disk = self
                .get_json(cx, &format!("/v1/projects/{r}/config/disk"), &[])
                .await
                .map_err(|e| not_found(e, r))?;
            p.disk = Some(billing::parse_disk(&disk).map_err(decode)?);
            let addons = self
                .get_json(cx, &format!("/v1/projects/{r}/billing/addons"), &[])
                .await
                .map_err(|e| not_found(e, r))?;
            p.addons = billing::parse_addons(&addons, &mut p.skipped).map_err(decode)?;
        }

        let functions = self
            .get_json(cx, &format!("/v1/projects/{r}/functions"), &[])
            .await
            .map_err(|e| not_found(e, r))?;
        let functions: Vec<Function> = serde_json::from_value(functions).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("functions: not the documented list ({e})"),
            )
        })?;
        let names: HashMap<String, String> = functions
            .into_iter()
            .map(|f| (f.id, f.slug.unwrap_or_else(|| "unnamed".into())))
            .collect();
        p.invocations = if names.is_empty() {
            Some(Vec::new())
        } else {
            Some(self.invocations(cx, r, &names, &mut p.skipped).await?)
        };
        Ok(p)
    }

    /// Edge function invocations this month, from the edge logs (bounded by log retention),
    /// read a day at a time: the unified logs endpoint, or the deprecated `logs.all` from the
    /// first 404 on.
    async fn invocations(
        &self,
        cx: &Context,
        r: &str,
        names: &HashMap<String, String>,
        skipped: &mut Skipped,
    ) -> Result<Vec<(String, f64)>, CollectError> {
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        let mut current = true;
        for (start, end) in log_windows(cx.month_start(), OffsetDateTime::from(cx.now)) {
            let (start, end) = (wire::rfc3339(start), wire::rfc3339(end));
            let body = loop {
                let (endpoint, sql) = if current {
                    ("logs", LOGS_SQL)
                } else {
                    ("logs.all", LOGS_ALL_SQL)
                };
                let path = format!("/v1/projects/{r}/analytics/endpoints/{endpoint}");
                let query = [
                    ("sql", sql),
                    ("iso_timestamp_start", start.as_str()),
                    ("iso_timestamp_end", end.as_str()),
                ];
                match self.get_json(cx, &path, &query).await {
                    Err(e) if current && e.status == Some(404) => {
                        tracing::info!(
                            project = %r,
                            "the unified logs endpoint answered 404: reading the deprecated logs.all"
                        );
                        current = false;
                    }
                    Err(e) => return Err(not_found(e, r)),
                    Ok(body) => break body,
                }
            };
            let what = if current { "logs" } else { "logs.all" };
            for (id, n) in self.log_rows(body, what, skipped)? {
                let name = names.get(&id).cloned().unwrap_or_else(|| "unknown".into());
                *counts.entry(name).or_default() += n;
            }
        }
        for name in names.values() {
            counts.entry(name.clone()).or_default();
        }
        let mut ranked: Vec<(String, f64)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if ranked.len() > self.top_functions {
            let rest: f64 = ranked[self.top_functions..].iter().map(|(_, n)| n).sum();
            ranked.truncate(self.top_functions);
            ranked.push(("other".into(), rest));
        }
        Ok(ranked)
    }

    /// The (function id, invocations) rows of a logs answer (`AnalyticsResponse`). An error in
    /// the body is a `query` failure; a row without a count is skipped (`missing_field`).
    fn log_rows(
        &self,
        body: Value,
        what: &str,
        skipped: &mut Skipped,
    ) -> Result<Vec<(String, f64)>, CollectError> {
        let parsed: Analytics = serde_json::from_value(body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the documented shape ({e})"),
            )
        })?;
        if let Some(err) = parsed.error.filter(|e| !e.is_null()) {
            let msg = err
                .as_str()
                .or_else(|| err.get("message").and_then(Value::as_str))
                .map_or_else(|| err.to_string(), str::to_owned);
            return Err(CollectError::new(
                Reason::Query,
                format!(
                    "{what}: the logs query failed: {}",
                    scrub(&msg, Some(&self.token))
                ),
            ));
        }
        let mut out = Vec::new();
        for row in parsed.result.unwrap_or_default() {
            let id = row.get("function_id").and_then(Value::as_str).unwrap_or("");
            match row.get("count") {
                None | Some(Value::Null) => skipped.record(
                    "missing_field",
                    format!(
                        "{what}: a row without a count (function {:?})",
                        id.chars().take(64).collect::<String>()
                    ),
                ),
                Some(v) => out.push((
                    id.to_owned(),
                    wire::non_negative(v).map_err(|e| {
                        CollectError::new(Reason::Decode, format!("{what}: count: {e}"))
                    })?,
                )),
            }
        }
        Ok(out)
    }

    async fn metrics(
        &self,
        cx: &Context,
        r: &str,
        key: &Secret,
    ) -> Result<MetricsFigures, CollectError> {
        let raw = self.metrics_url.replace("{ref}", r);
        let url = Url::parse(&raw).map_err(|e| {
            CollectError::new(
                Reason::Config,
                format!("metrics_url for {r} is not a URL ({e})"),
            )
        })?;
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(&url, Auth::Basic("service_role", key), &[])
            .await?;
        let body = crate::http::read_capped(resp, &what, BODY_LIMIT).await?;
        let text = String::from_utf8(body)
            .map_err(|_| CollectError::new(Reason::Decode, format!("{what}: not UTF-8 text")))?;
        parse_metrics(&text).map_err(|e| e.context(&what))
    }
}

#[derive(Deserialize)]
struct Function {
    id: String,
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Deserialize)]
struct Analytics {
    #[serde(default)]
    result: Option<Vec<Value>>,
    #[serde(default)]
    error: Option<Value>,
}

/// The windows the month's logs are read in: from `start` a day at a time (each at most
/// [`LOG_WINDOW`]) up to `now`, at most [`MAX_LOG_WINDOWS`].
fn log_windows(
    start: OffsetDateTime,
    now: OffsetDateTime,
) -> Vec<(OffsetDateTime, OffsetDateTime)> {
    let mut out = Vec::new();
    let mut from = start;
    while from < now && out.len() < MAX_LOG_WINDOWS {
        let to = (from + LOG_WINDOW).min(now);
        out.push((from, to));
        from = to;
    }
    out
}

/// One project's figures; `None` is unknown (absent), never 0.
#[derive(Debug, Default)]
struct Project {
    database_size: Option<f64>,
    storage_size: Option<f64>,
    users: Option<f64>,
    monthly_active_users: Option<f64>,
    tables: Vec<(String, f64)>,
    disk_used: Option<f64>,
    disk_size: Option<f64>,
    invocations: Option<Vec<(String, f64)>>,
    /// The provisioned disk (paid plans).
    disk: Option<billing::Disk>,
    /// The selected add-ons, compute included (paid plans).
    addons: Vec<billing::Addon>,
    /// Records left out of these figures.
    skipped: Skipped,
}

fn not_found(e: CollectError, r: &str) -> CollectError {
    if e.status == Some(404) {
        let mut e = e;
        e.message = format!("project ref {r:?} is unknown to this token: {}", e.message);
        return e;
    }
    if e.status == Some(403) && e.code.as_deref() == Some("missing_permissions") {
        let mut e = e;
        e.message = format!(
            "the token lacks a permission this collector needs: {}",
            e.message
        );
        return e;
    }
    e
}

#[async_trait::async_trait]
impl Collector for Supabase {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let mut usage = Vec::new();
        let mut totals: HashMap<&str, f64> = HashMap::new();
        // Per project lines of a paid plan: (service, project, USD); compute apart, for the
        // credit.
        let mut project_lines: Vec<(&'static str, String, Decimal, SpendKind)> = Vec::new();
        let mut skipped = Skipped::default();
        let mut compute: Vec<(String, Decimal)> = Vec::new();
        let start = cx.month_start();
        let now = OffsetDateTime::from(cx.now);
        let hours = Decimal::from((now - start).whole_seconds().max(0)) / Decimal::from(3600);
        let month_hours = Decimal::from(u32::from(start.month().length(start.year())) * 24);
        for r in &self.refs {
            let mut p = self.project(cx, r).await?;
            skipped.merge(std::mem::take(&mut p.skipped));
            let mut add = |resource: &'static str,
                           unit: Unit,
                           value: Option<f64>,
                           extra: Vec<(&'static str, String)>| {
                if let Some(v) = value {
                    let mut labels = vec![("project", r.clone())];
                    labels.extend(extra);
                    usage.push(Usage {
                        resource: resource.into(),
                        unit,
                        value: v,
                        labels,
                    });
                    *totals.entry(resource).or_default() += v;
                }
            };
            add("database_size", Unit::Bytes, p.database_size, vec![]);
            add("storage_size", Unit::Bytes, p.storage_size, vec![]);
            add("users", Unit::Users, p.users, vec![]);
            add(
                "monthly_active_users",
                Unit::Users,
                p.monthly_active_users,
                vec![],
            );
            add("disk_used", Unit::Bytes, p.disk_used, vec![]);
            add("disk_size", Unit::Bytes, p.disk_size, vec![]);
            for (table, rows) in &p.tables {
                add(
                    "table_rows",
                    Unit::Rows,
                    Some(*rows),
                    vec![("table", table.clone())],
                );
            }
            match &p.invocations {
                Some(list) if list.is_empty() => {
                    add(
                        "edge_function_invocations",
                        Unit::Requests,
                        Some(0.0),
                        vec![],
                    );
                }
                Some(list) => {
                    for (f, n) in list {
                        add(
                            "edge_function_invocations",
                            Unit::Requests,
                            Some(*n),
                            vec![("function", f.clone())],
                        );
                    }
                }
                None => {}
            }
            if let Some(d) = &p.disk {
                add(
                    "disk_provisioned",
                    Unit::Bytes,
                    Some(d.size_gb as f64 * 1e9),
                    vec![],
                );
                for (service, amount) in billing::disk_charges(d, hours) {
                    project_lines.push((service, r.clone(), amount, SpendKind::Metered));
                }
            }
            if self.plan != Plan::Free && !p.addons.iter().any(|a| a.service == "compute") {
                tracing::info!(project = %r, "no compute instance among the selected add-ons: no compute line");
            }
            for a in &p.addons {
                let (amount, kind) = a.charge(hours, month_hours).ok_or_else(|| {
                    CollectError::new(
                        Reason::Decode,
                        format!("add-on {}: its price is too large to count", a.variant),
                    )
                })?;
                tracing::debug!(project = %r, variant = %a.variant, %amount, "add-on");
                // The compute credit covers compute billed by the hour.
                if a.service == "compute" && kind == SpendKind::Metered {
                    compute.push((r.clone(), amount));
                } else {
                    project_lines.push((a.service, r.clone(), amount, kind));
                }
            }
        }

        // Spend in USD: the plan fee, per project the disk, compute (less the organisation's
        // compute credit) and add-ons, and the overage above the organisation's quotas; the
        // Free plan has none of these (it is capped instead).
        let mut spend = Vec::new();
        let usd = |amount: Decimal, kind: SpendKind, labels: Vec<(&'static str, String)>| Spend {
            money: Money {
                amount: amount.round_dp(6),
                currency: Currency::USD,
            },
            kind,
            labels,
        };
        let service = |s: &str| vec![("service", s.to_owned())];
        spend.push(usd(plan_fee(self.plan), SpendKind::Fixed, service("plan")));
        let mut credits = Vec::new();
        if self.plan != Plan::Free {
            let mut covered = Decimal::ZERO;
            for (_, v) in &compute {
                wire::add(&mut covered, *v, "compute")?;
            }
            let applied = covered.min(billing::COMPUTE_CREDIT);
            let mut left = applied;
            compute.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (project, amount) in compute {
                let take = amount.min(left);
                left -= take;
                project_lines.push(("compute", project, amount - take, SpendKind::Metered));
            }
            if !covered.is_zero() {
                let money = |amount| Money {
                    amount,
                    currency: Currency::USD,
                };
                credits.push(Credit {
                    covered: money(covered),
                    applied: money(applied),
                    total: money(billing::COMPUTE_CREDIT),
                });
            }
            for (s, project, amount, kind) in project_lines {
                spend.push(usd(
                    amount,
                    kind,
                    vec![("service", s.to_owned()), ("project", project)],
                ));
            }
            // The organisation's quotas are monthly allowances: the usage so far is charged
            // beyond them, and the forecast projects the usage to the month's end before
            // taking them off (`Overage`). A resource without a known figure or quota has
            // no line (unknown, not 0).
            let quota = |name: &str| {
                self.limits
                    .iter()
                    .find(|l| l.resource == name)
                    .map(|l| wire::decimal(l.value, name))
                    .transpose()
            };
            let used = |name: &str| {
                totals
                    .get(name)
                    .map(|v| wire::decimal(*v, name))
                    .transpose()
            };
            let gb = Decimal::from(1_000_000_000);
            let allowances = [
                // Storage in GB-hours: the size now, held since the 1st.
                (
                    "storage_size",
                    used("storage_size")?
                        .map(|b| wire::mul(b / gb, hours, "storage GB-hours"))
                        .transpose()?,
                    quota("storage_size")?
                        .map(|q| wire::mul(q / gb, STORAGE_QUOTA_HOURS, "storage quota"))
                        .transpose()?,
                    STORAGE_GB_HOUR,
                ),
                (
                    "monthly_active_users",
                    used("monthly_active_users")?,
                    quota("monthly_active_users")?,
                    PER_MAU,
                ),
                (
                    "edge_function_invocations",
                    used("edge_function_invocations")?,
                    quota("edge_function_invocations")?,
                    PER_INVOCATION,
                ),
            ];
            for (name, used, included, price) in allowances {
                let (Some(used), Some(included)) = (used, included) else {
                    continue;
                };
                let allowance = Allowance {
                    used,
                    included,
                    unit: Decimal::ONE,
                    price,
                };
                spend.push(
                    allowance
                        .spend(Currency::USD, service(name))
                        .ok_or_else(|| {
                            CollectError::new(
                                Reason::Decode,
                                format!("{name}: {used} beyond {included} cannot be charged"),
                            )
                        })?,
                );
            }
        }
        Ok(Collection {
            usage,
            limits: self.limits.clone(),
            spend,
            credits,
            skipped,
            data_as_of: Some(cx.now),
            ..Collection::default()
        })
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let r = self.refs.first().map(String::as_str).unwrap_or_default();
        self.get_json(cx, &format!("/v1/projects/{r}/config/disk/util"), &[])
            .await
            .map_err(|e| not_found(e, r))?;
        Ok(format!(
            "the token reads project {r} ({} project(s) configured)",
            self.refs.len()
        ))
    }
}
