//! Supabase: per project, database size, storage size, users and the MAU approximation, the
//! largest tables' row counts (read-only SQL through the Management API), disk utilisation,
//! edge function invocations (logs), optionally the project's Prometheus metrics endpoint;
//! organisation quotas per plan, and spend = plan fee + overage estimate.
//!
//! Requests are few (at most five per project) and paced under the Management API's 60 requests a
//! minute; every request is a GET except the SQL, which goes to the read-only endpoint.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::config::ApiSettings;
use crate::cost::{Collection, Spend, SpendKind, Unit, Usage, UsageLimit};
use crate::http::{Auth, ProviderHttp, describe, join, scrub};
use crate::money::{Currency, Money};
use crate::providers::wire;
use crate::providers::{CollectError, Collector, Context, Reason};
use crate::secret::Secret;

/// Resources with a quota: the keys `[providers.supabase.limits]` accepts.
pub const RESOURCES: &[(&str, Unit)] = &[
    ("database_size", Unit::Bytes),
    ("storage_size", Unit::Bytes),
    ("monthly_active_users", Unit::Users),
    ("edge_function_invocations", Unit::Requests),
];

/// Included quotas per plan (providers.md §2.3; GB decimal). `database_size` is per project,
/// the others per organisation.
pub fn plan_quotas(plan: &str) -> [(&'static str, f64); 4] {
    match plan {
        "free" => [
            ("database_size", 500e6),
            ("storage_size", 1e9),
            ("monthly_active_users", 50_000.0),
            ("edge_function_invocations", 500_000.0),
        ],
        _ => [
            ("database_size", 8e9),
            ("storage_size", 100e9),
            ("monthly_active_users", 100_000.0),
            ("edge_function_invocations", 2_000_000.0),
        ],
    }
}

/// Monthly base fee per plan, in USD (design.md).
pub fn plan_fee(plan: &str) -> Decimal {
    match plan {
        "pro" => Decimal::from(25),
        "team" => Decimal::from(599),
        _ => Decimal::ZERO,
    }
}

/// Published Pro/Team overage prices, USD: per GB-month of database, per GB-month of storage,
/// per MAU, per million edge function invocations.
const DB_GB_MONTH: Decimal = Decimal::from_parts(125, 0, 0, false, 3);
const STORAGE_GB_MONTH: Decimal = Decimal::from_parts(21, 0, 0, false, 3);
const PER_MAU: Decimal = Decimal::from_parts(325, 0, 0, false, 5);
const PER_MILLION_INVOCATIONS: Decimal = Decimal::from_parts(2, 0, 0, false, 0);

/// Largest body read from any Supabase endpoint.
const BODY_LIMIT: usize = 8 << 20;
/// The metrics endpoint, unless configured.
pub const DEFAULT_METRICS_URL: &str = "https://{ref}.supabase.co/customer/v1/privileged/metrics";

/// The Supabase collector.
pub struct Supabase {
    base: Url,
    token: Secret,
    refs: Vec<String>,
    plan: String,
    limits: Vec<UsageLimit>,
    top_tables: usize,
    top_functions: usize,
    service_role_key: Option<Secret>,
    metrics_url: String,
    /// The plan fee is a `[[fixed]]` entry already: do not report it twice.
    plan_fee_in_fixed: bool,
    pacer: Pacer,
}

impl Supabase {
    /// A collector for the validated settings, or `None` without a token or project ref.
    pub fn new(api: &ApiSettings, plan_fee_in_fixed: bool) -> Option<Supabase> {
        let token = api.credentials.as_ref()?.first()?.clone();
        if api.project_refs.is_empty() {
            tracing::warn!(
                provider = "supabase",
                "SUPABASE_ACCESS_TOKEN is set but no project ref (SUPABASE_PROJECT_REF or providers.supabase.project_refs): nothing to collect"
            );
            return None;
        }
        let plan = api.plan.clone().unwrap_or_else(|| "pro".into());
        let mut quotas: HashMap<&str, f64> = plan_quotas(&plan).into_iter().collect();
        for (k, v) in &api.limits {
            if let Some((name, _)) = RESOURCES.iter().find(|(n, _)| n == k) {
                quotas.insert(name, v.to_f64()?);
            }
        }
        let limits = RESOURCES
            .iter()
            .filter_map(|(name, unit)| {
                quotas.get(name).map(|v| UsageLimit {
                    resource: (*name).to_owned(),
                    unit: *unit,
                    value: *v,
                })
            })
            .collect();
        Some(Supabase {
            base: api.base_url.clone(),
            token,
            refs: api.project_refs.clone(),
            plan,
            limits,
            top_tables: api.top_tables.unwrap_or(10),
            top_functions: api.top_functions.unwrap_or(10),
            service_role_key: api.service_role_key.clone(),
            metrics_url: api
                .metrics_url
                .clone()
                .unwrap_or_else(|| DEFAULT_METRICS_URL.to_owned()),
            plan_fee_in_fixed,
            pacer: Pacer::new(10.0, 0.8),
        })
    }

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
            .post_read_only_query(
                &url,
                Auth::Bearer(&self.token),
                &json!({ "query": query, "parameters": [] }),
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
            Some(self.invocations(cx, r, &names).await?)
        };
        Ok(p)
    }

    /// Edge function invocations this month, from the edge logs (bounded by log retention).
    async fn invocations(
        &self,
        cx: &Context,
        r: &str,
        names: &HashMap<String, String>,
    ) -> Result<Vec<(String, f64)>, CollectError> {
        let (start, end) = cx.month_window();
        let sql = "select m.function_id as function_id, count(*) as count \
                   from function_edge_logs cross join unnest(metadata) as m \
                   group by m.function_id";
        let body = self
            .get_json(
                cx,
                &format!("/v1/projects/{r}/analytics/endpoints/logs.all"),
                &[
                    ("sql", sql),
                    ("iso_timestamp_start", &start),
                    ("iso_timestamp_end", &end),
                ],
            )
            .await?;
        let parsed: Analytics = serde_json::from_value(body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("logs.all: not the documented shape ({e})"),
            )
        })?;
        if let Some(err) = parsed.error.filter(|e| !e.is_null()) {
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_owned);
            return Err(CollectError::new(
                Reason::Query,
                format!(
                    "logs.all: the logs query failed: {}",
                    scrub(&msg, Some(&self.token))
                ),
            ));
        }
        let mut counts: BTreeMap<String, f64> = BTreeMap::new();
        for row in parsed.result.unwrap_or_default() {
            let id = row.get("function_id").and_then(Value::as_str).unwrap_or("");
            let n = match row.get("count") {
                None | Some(Value::Null) => {
                    return Err(CollectError::new(
                        Reason::Decode,
                        "logs.all: a row has no count",
                    ));
                }
                Some(v) => wire::non_negative(v).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("logs.all: count: {e}"))
                })?,
            };
            let name = names.get(id).cloned().unwrap_or_else(|| "unknown".into());
            *counts.entry(name).or_default() += n;
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

/// The three figures read from the project's metrics endpoint.
#[derive(Debug, Default, PartialEq)]
pub struct MetricsFigures {
    /// `pg_database_size_bytes{datname="postgres"}`.
    pub database_size: Option<f64>,
    /// `storage_storage_size_mb` × 10^6.
    pub storage_size: Option<f64>,
    /// `auth_users_user_count`.
    pub users: Option<f64>,
}

/// Parses a Prometheus text exposition (the `prometheus-parse` crate) and picks the figures.
pub fn parse_metrics(text: &str) -> Result<MetricsFigures, CollectError> {
    use prometheus_parse::{Scrape, Value as PV};
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).map_err(|e| {
        CollectError::new(Reason::Decode, format!("not a metrics exposition ({e})"))
    })?;
    if scrape.samples.is_empty() {
        return Err(CollectError::new(
            Reason::Decode,
            "the metrics exposition has no sample",
        ));
    }
    let value = |v: &PV| match v {
        PV::Gauge(f) | PV::Counter(f) | PV::Untyped(f) if f.is_finite() && *f >= 0.0 => Some(*f),
        _ => None,
    };
    let mut m = MetricsFigures::default();
    for s in &scrape.samples {
        match s.metric.as_str() {
            "pg_database_size_bytes" if s.labels.get("datname") == Some("postgres") => {
                m.database_size = value(&s.value);
            }
            "storage_storage_size_mb" => m.storage_size = value(&s.value).map(|mb| mb * 1e6),
            "auth_users_user_count" => m.users = value(&s.value),
            _ => {}
        }
    }
    Ok(m)
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

/// The elapsed share of the month (hours elapsed / hours in the month), for size overages
/// that accrue by the hour.
fn month_fraction(now: SystemTime) -> Decimal {
    let t = OffsetDateTime::from(now);
    let days = Decimal::from(t.month().length(t.year()));
    let elapsed = Decimal::from(t.day() - 1) + Decimal::from(t.hour()) / Decimal::from(24);
    (elapsed / days).min(Decimal::ONE)
}

#[async_trait::async_trait]
impl Collector for Supabase {
    fn provider(&self) -> &str {
        "supabase"
    }

    fn source(&self) -> &'static str {
        "supabase"
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let mut usage = Vec::new();
        let mut totals: HashMap<&str, f64> = HashMap::new();
        let mut db_excess_gb = Decimal::ZERO;
        let db_quota = self
            .limits
            .iter()
            .find(|l| l.resource == "database_size")
            .map(|l| l.value);
        for r in &self.refs {
            let p = self.project(cx, r).await?;
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
            if let (Some(size), Some(quota)) = (p.database_size, db_quota) {
                db_excess_gb += wire::decimal((size - quota).max(0.0) / 1e9, "database size")?;
            }
        }

        // Spend in USD: the plan fee (unless a [[fixed]] entry has it) and the overage above
        // the organisation's quotas; the Free plan has no overage (it is capped instead).
        let mut spend = Vec::new();
        let usd = |amount: Decimal, kind: SpendKind, service: &str| Spend {
            money: Money {
                amount: amount.round_dp(6),
                currency: Currency::USD,
            },
            kind,
            labels: vec![("service", service.to_owned())],
        };
        if !self.plan_fee_in_fixed {
            spend.push(usd(plan_fee(&self.plan), SpendKind::Fixed, "plan"));
        }
        if self.plan != "free" {
            let quota = |name: &str| {
                self.limits
                    .iter()
                    .find(|l| l.resource == name)
                    .map(|l| l.value)
            };
            let excess = |name: &str| match (totals.get(name), quota(name)) {
                (Some(used), Some(q)) => wire::decimal((used - q).max(0.0), name),
                _ => Ok(Decimal::ZERO),
            };
            let fraction = month_fraction(cx.now);
            spend.push(usd(
                db_excess_gb * DB_GB_MONTH * fraction,
                SpendKind::Metered,
                "database_size",
            ));
            spend.push(usd(
                excess("storage_size")? / Decimal::from(1_000_000_000)
                    * STORAGE_GB_MONTH
                    * fraction,
                SpendKind::Metered,
                "storage_size",
            ));
            spend.push(usd(
                excess("monthly_active_users")? * PER_MAU,
                SpendKind::Metered,
                "monthly_active_users",
            ));
            spend.push(usd(
                excess("edge_function_invocations")? / Decimal::from(1_000_000)
                    * PER_MILLION_INVOCATIONS,
                SpendKind::Metered,
                "edge_function_invocations",
            ));
        }
        Ok(Collection {
            usage,
            limits: self.limits.clone(),
            spend,
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

/// A token bucket: `burst` requests at once, then `per_second`.
struct Pacer {
    state: tokio::sync::Mutex<(f64, Instant)>,
    burst: f64,
    per_second: f64,
}

impl Pacer {
    fn new(burst: f64, per_second: f64) -> Pacer {
        Pacer {
            state: tokio::sync::Mutex::new((burst, Instant::now())),
            burst,
            per_second,
        }
    }

    async fn wait(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                s.0 =
                    (s.0 + now.duration_since(s.1).as_secs_f64() * self.per_second).min(self.burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                (1.0 - s.0) / self.per_second
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_sample_parses_and_yields_the_three_figures() {
        let text = "# HELP pg_database_size_bytes Disk space used by the database\n\
            # TYPE pg_database_size_bytes gauge\n\
            pg_database_size_bytes{supabase_project_ref=\"abc\",datname=\"postgres\"} 48211968\n\
            pg_database_size_bytes{supabase_project_ref=\"abc\",datname=\"template1\"} 7000000\n\
            # TYPE storage_storage_size_mb gauge\n\
            storage_storage_size_mb{supabase_project_ref=\"abc\"} 12.5\n\
            # TYPE auth_users_user_count gauge\n\
            auth_users_user_count{supabase_project_ref=\"abc\"} 1234\n";
        let m = parse_metrics(text).unwrap();
        assert_eq!(
            m,
            MetricsFigures {
                database_size: Some(48_211_968.0),
                storage_size: Some(12.5e6),
                users: Some(1234.0)
            }
        );
        assert!(parse_metrics("").is_err());
    }

    #[test]
    fn the_month_fraction_counts_elapsed_hours() {
        let at = |d: u8, h: u8| -> SystemTime {
            time::Date::from_calendar_date(2026, time::Month::November, d)
                .unwrap()
                .with_hms(h, 0, 0)
                .unwrap()
                .assume_utc()
                .into()
        };
        assert_eq!(month_fraction(at(1, 0)), Decimal::ZERO);
        assert_eq!(month_fraction(at(16, 0)), Decimal::new(5, 1));
        assert_eq!(
            month_fraction(at(16, 12)),
            Decimal::from(31) / Decimal::from(60)
        );
    }

    #[tokio::test]
    async fn the_pacer_lets_a_burst_through_then_spaces_requests() {
        let p = Pacer::new(3.0, 20.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            p.wait().await;
        }
        p.wait().await;
        p.wait().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t0.elapsed()
        );
    }
}
