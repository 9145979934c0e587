//! BigQuery's REST API as the collector uses it: `tables.get` (the export table's location and
//! partitioning), `jobs.query` (a dry run for the bytes a query would scan, then the query with
//! `maximumBytesBilled`), `jobs.getQueryResults` (waiting for a job and reading its pages), and
//! BigQuery's row format: a `schema` and `rows` of `{"f": [{"v": …}]}`, every scalar a string
//! (FLOAT64 as `2.9409958E7`, TIMESTAMP as seconds since the epoch such as `1.7966E9`, NUMERIC
//! as a decimal). What BigQuery's errors mean for the user is said here too.

use std::collections::HashSet;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::TableRef;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, HttpError, PostBody, describe, join, read_capped};
use crate::providers::{Context, wire};
use crate::secret::Secret;

/// The path ending of `jobs.query`: one of the two paths the job POSTs to.
pub(super) const QUERIES_PATH: &str = "/queries";
/// Rows asked for per page.
const PAGE_ROWS: u32 = 10_000;
/// Largest page read (BigQuery itself caps a response at 10 MB).
const PAGE_LIMIT: usize = 16 << 20;
/// Largest `tables.get` answer (the schema of the export is a few KiB).
const TABLE_LIMIT: usize = 1 << 20;
/// Pages read before giving up (`pagination`).
const MAX_PAGES: usize = 50;
/// Rows read before giving up: the query groups by day, service, SKU and cost type, so a
/// month is a few thousand rows even for a large account.
pub(super) const MAX_ROWS: usize = 200_000;
/// Times a running job is waited for (BigQuery holds each wait up to `timeoutMs`).
const MAX_WAITS: usize = 30;
/// How long BigQuery may hold a request while the job runs.
const WAIT_MS: u32 = 10_000;

/// Which call failed, for the hint that says what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `tables.get` of the export table.
    Table,
    /// `jobs.query` (dry run or not) in the jobs' project.
    Query,
    /// `jobs.getQueryResults`.
    Results,
}

/// What the collector knows of the export table.
#[derive(Debug, Clone)]
pub(super) struct TableInfo {
    /// Where its dataset is (`EU`, `US`, `europe-west1`): where the query runs.
    pub(super) location: String,
    /// Its size, for `check --probe`.
    pub(super) bytes: Option<u64>,
}

#[derive(Deserialize)]
struct Table {
    #[serde(default)]
    location: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "timePartitioning", default)]
    time_partitioning: Option<TimePartitioning>,
    #[serde(rename = "numBytes", default)]
    num_bytes: Option<String>,
}

#[derive(Deserialize)]
struct TimePartitioning {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// The request a query job is made of.
pub(super) struct Request<'a> {
    /// GoogleSQL text (a SELECT).
    pub(super) sql: &'a str,
    /// Its named parameters (`QueryParameter` objects).
    pub(super) params: &'a [Value],
    /// Where the job runs: the table's location.
    pub(super) location: &'a str,
    /// The most bytes the query may bill.
    pub(super) max_bytes_billed: u64,
}

/// A column of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub(super) name: String,
    /// BigQuery's type name (`STRING`, `FLOAT`, `NUMERIC`, `TIMESTAMP`, `DATE`…).
    pub(super) kind: String,
}

/// One result row: a cell per column, `None` for NULL.
pub(super) type Row<'a> = Vec<Option<&'a str>>;

/// The BigQuery client of one collector: base URL and the job's project.
pub(super) struct Client<'a> {
    pub(super) base: &'a Url,
    /// The project jobs run (and are billed) in.
    pub(super) project: &'a str,
    pub(super) token: &'a Secret,
}

impl Client<'_> {
    /// `tables.get`: the export table's location; an error unless it is a table partitioned by
    /// ingestion day (the export's tables are), which the query's partition filter needs.
    pub(super) async fn table(
        &self,
        cx: &Context,
        table: &TableRef,
    ) -> Result<TableInfo, CollectError> {
        let url = join(
            self.base,
            &format!(
                "projects/{}/datasets/{}/tables/{}",
                table.project, table.dataset, table.table
            ),
        );
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(&url, Auth::Bearer(self.token), &[])
            .await
            .map_err(|e| hint(e, Step::Table, table, self.project))?;
        let body = read_capped(resp, &what, TABLE_LIMIT).await?;
        let t: Table = serde_json::from_slice(&body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not a BigQuery table ({e})"),
            )
        })?;
        let name = table.to_string();
        if let Some(kind) = t.kind.as_deref()
            && kind != "TABLE"
        {
            return Err(CollectError::new(
                Reason::Config,
                format!(
                    "{name} is a {kind}, not the billing export's table: name the gcp_billing_export_v1_… table itself (its partitions keep a month's query small)"
                ),
            ));
        }
        match &t.time_partitioning {
            Some(p) if p.kind.as_deref() == Some("DAY") && p.field.is_none() => {}
            _ => {
                return Err(CollectError::new(
                    Reason::Config,
                    format!(
                        "{name} is not partitioned by ingestion day as the billing export's tables are, so a month's query could not be limited to the month's partitions: name the gcp_billing_export_v1_… table the export writes"
                    ),
                ));
            }
        }
        let location = t
            .location
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty() && l.len() <= 64)
            .ok_or_else(|| {
                CollectError::new(Reason::Decode, format!("{what}: the table has no location"))
            })?;
        Ok(TableInfo {
            location,
            bytes: t.num_bytes.and_then(|b| b.trim().parse().ok()),
        })
    }

    /// The `jobs.query` body of `request`.
    fn body(request: &Request<'_>, dry_run: bool) -> Value {
        serde_json::json!({
            "kind": "bigquery#queryRequest",
            "query": request.sql,
            "useLegacySql": false,
            "parameterMode": "NAMED",
            "queryParameters": request.params,
            "location": request.location,
            "maximumBytesBilled": request.max_bytes_billed.to_string(),
            "dryRun": dry_run,
            "useQueryCache": true,
            "timeoutMs": WAIT_MS,
            "maxResults": PAGE_ROWS,
            "labels": {"client": "cost-exporter"},
        })
    }

    fn queries_url(&self) -> Url {
        join(self.base, &format!("projects/{}/queries", self.project))
    }

    /// A dry run of `request`: the bytes it would process (BigQuery bills at least 10 MiB
    /// per table, rounded up to the MiB). Dry runs are free.
    pub(super) async fn dry_run(
        &self,
        cx: &Context,
        request: &Request<'_>,
        table: &TableRef,
    ) -> Result<u64, CollectError> {
        let url = self.queries_url();
        let what = format!("POST {} (dry run)", describe(&url));
        let body = Self::body(request, true);
        let resp = cx
            .http
            .post(&url, Auth::Bearer(self.token), PostBody::Json(&body))
            .await
            .map_err(|e| hint(e, Step::Query, table, self.project))?;
        let json = read_json(resp, &what).await?;
        json.get("totalBytesProcessed")
            .and_then(Value::as_str)
            .and_then(|b| b.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                CollectError::new(
                    Reason::Decode,
                    format!("{what}: no totalBytesProcessed in the dry run's answer"),
                )
            })
    }

    /// Runs `request` and calls `each` with the columns and every row, page by page; waits
    /// for a job that is not complete within the first answer. Returns the bytes billed when
    /// BigQuery says.
    pub(super) async fn run(
        &self,
        cx: &Context,
        request: &Request<'_>,
        table: &TableRef,
        mut each: impl FnMut(&[Column], &Row<'_>) -> Result<(), CollectError>,
    ) -> Result<Option<u64>, CollectError> {
        let url = self.queries_url();
        let what = format!("POST {}", describe(&url));
        let body = Self::body(request, false);
        let resp = cx
            .http
            .post(&url, Auth::Bearer(self.token), PostBody::Json(&body))
            .await
            .map_err(|e| hint(e, Step::Query, table, self.project))?;
        let mut page = read_json(resp, &what).await?;
        let billed = page
            .get("totalBytesBilled")
            .and_then(Value::as_str)
            .and_then(|b| b.trim().parse().ok());
        // The job, needed to wait for it or read further pages.
        let job = JobRef::of(&page, &what, request.location);
        let mut waits = 0;
        while page.get("jobComplete").and_then(Value::as_bool) != Some(true) {
            let job = job.as_ref().map_err(Clone::clone)?;
            waits += 1;
            if waits > MAX_WAITS {
                return Err(CollectError::new(
                    Reason::Timeout,
                    format!(
                        "the query job {} was not complete after {MAX_WAITS} waits",
                        job.id
                    ),
                ));
            }
            tracing::debug!(provider = super::NAME, job = %job.id, "the query is running; waiting for it");
            page = self.results(cx, job, None, table).await?;
        }
        let mut columns: Option<Vec<Column>> = None;
        let mut tokens: HashSet<u64> = HashSet::new();
        let mut rows = 0usize;
        for n in 1..=MAX_PAGES {
            if columns.is_none() {
                columns = Some(schema(&page).map_err(|e| e.context(&what))?);
            }
            let cols = columns.as_deref().unwrap_or_default();
            let page_rows = page
                .get("rows")
                .map(|r| {
                    r.as_array().ok_or_else(|| {
                        CollectError::new(Reason::Decode, format!("{what}: rows is not an array"))
                    })
                })
                .transpose()?
                .map_or(&[][..], Vec::as_slice);
            rows += page_rows.len();
            if rows > MAX_ROWS {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!(
                        "the query returned more than {MAX_ROWS} rows; name fewer sku_services"
                    ),
                ));
            }
            for (i, r) in page_rows.iter().enumerate() {
                let row = cells(r, cols.len()).map_err(|e| {
                    CollectError::new(Reason::Decode, format!("{what}: row {}: {e}", i + 1))
                })?;
                each(cols, &row).map_err(|e| e.context(&format!("{what}: row {}", i + 1)))?;
            }
            let token = page
                .get("pageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                return Ok(billed);
            };
            let job = job.as_ref().map_err(Clone::clone)?;
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                token.hash(&mut h);
                h.finish()
            };
            if !tokens.insert(hash) {
                return Err(CollectError::new(
                    Reason::Pagination,
                    format!("page {n} of job {}: the page token repeats", job.id),
                ));
            }
            let token = token.to_owned();
            page = self.results(cx, job, Some(&token), table).await?;
        }
        Err(CollectError::new(
            Reason::Pagination,
            format!("more than {MAX_PAGES} pages of results from {what}"),
        ))
    }

    /// `jobs.getQueryResults`: waits for the job (up to `timeoutMs`), or reads the page of
    /// `token`.
    async fn results(
        &self,
        cx: &Context,
        job: &JobRef,
        token: Option<&str>,
        table: &TableRef,
    ) -> Result<Value, CollectError> {
        let mut url = join(
            self.base,
            &format!("projects/{}/queries/{}", job.project, job.id),
        );
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("location", &job.location)
                .append_pair("maxResults", &PAGE_ROWS.to_string())
                .append_pair("timeoutMs", &WAIT_MS.to_string());
            if let Some(t) = token {
                q.append_pair("pageToken", t);
            }
        }
        let what = format!("GET {}", describe(&url));
        let resp = cx
            .http
            .get(&url, Auth::Bearer(self.token), &[])
            .await
            .map_err(|e| hint(e, Step::Results, table, self.project))?;
        read_json(resp, &what).await
    }
}

/// The job a `jobs.query` answer names.
struct JobRef {
    project: String,
    id: String,
    location: String,
}

impl JobRef {
    fn of(page: &Value, what: &str, location: &str) -> Result<JobRef, CollectError> {
        let r = &page["jobReference"];
        let field = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .and_then(wire::path_segment)
        };
        match (field("projectId"), field("jobId")) {
            (Some(project), Some(id)) => Ok(JobRef {
                project: project.to_owned(),
                id: id.to_owned(),
                location: r
                    .get("location")
                    .and_then(Value::as_str)
                    .unwrap_or(location)
                    .to_owned(),
            }),
            _ => Err(CollectError::new(
                Reason::Decode,
                format!("{what}: no usable jobReference (projectId, jobId)"),
            )),
        }
    }
}

async fn read_json(resp: reqwest::Response, what: &str) -> Result<Value, CollectError> {
    let body = read_capped(resp, what, PAGE_LIMIT).await?;
    serde_json::from_slice(&body)
        .map_err(|e| CollectError::new(Reason::Decode, format!("{what}: not JSON ({e})")))
}

/// The columns of a complete answer's `schema`: top-level scalar fields only (the job's own
/// query selects no RECORD or REPEATED column).
fn schema(page: &Value) -> Result<Vec<Column>, CollectError> {
    let fields = page["schema"]["fields"].as_array().ok_or_else(|| {
        let first = page["errors"][0]["message"]
            .as_str()
            .unwrap_or("no errors either");
        CollectError::new(
            Reason::Query,
            format!("the job is complete but its answer has no schema ({first})"),
        )
    })?;
    fields
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap_or_default().to_owned();
            let kind = f["type"].as_str().unwrap_or_default().to_ascii_uppercase();
            let mode = f["mode"].as_str().unwrap_or("NULLABLE");
            if name.is_empty() || kind.is_empty() {
                return Err(CollectError::new(
                    Reason::Decode,
                    "a schema field has no name or type",
                ));
            }
            if mode == "REPEATED" || kind == "RECORD" || kind == "STRUCT" {
                return Err(CollectError::new(
                    Reason::Decode,
                    format!("column {name} is {mode} {kind}; the query selects scalars only"),
                ));
            }
            Ok(Column { name, kind })
        })
        .collect()
}

/// The cells of one `{"f": [{"v": …}]}` row: strings, or `None` for NULL.
fn cells(row: &Value, width: usize) -> Result<Row<'_>, String> {
    let f = row["f"].as_array().ok_or("no f array")?;
    if f.len() != width {
        return Err(format!("{} cells for {width} columns", f.len()));
    }
    f.iter()
        .map(|c| match c.get("v") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!(
                "a cell is {} where BigQuery writes a string",
                match other {
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                    Value::Number(_) => "a number",
                    _ => "a boolean",
                }
            )),
        })
        .collect()
}

/// A FLOAT64, NUMERIC or INT64 value as BigQuery writes it (`2.9409958E7`, `12.345`,
/// `-3`), exactly as a decimal; `None` for what no decimal can hold (`NaN`, `Infinity`,
/// beyond 7.9e28).
pub(super) fn decimal(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t.contains(['e', 'E']) {
        Decimal::from_scientific(t).ok()
    } else {
        t.parse::<Decimal>().ok()
    }
}

/// A TIMESTAMP as BigQuery writes it by default: seconds since the epoch as a float in a
/// string (`1.7966E9`, `1700000000.123456`).
pub(super) fn timestamp(text: &str) -> Option<time::OffsetDateTime> {
    let secs = decimal(text)?;
    let nanos = secs.checked_mul(Decimal::from(1_000_000_000))?.trunc();
    let nanos: i128 = nanos.try_into().ok()?;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// What to fix, for the errors BigQuery documents (`error.errors[0].reason`).
fn hint(e: HttpError, step: Step, table: &TableRef, project: &str) -> CollectError {
    let mut e = CollectError::from(e);
    let dataset = format!("{}.{}", table.project, table.dataset);
    let (reason, fix) = match (e.status, e.code.as_deref(), step) {
        (Some(401), _, _) => (
            Reason::Auth,
            "BigQuery refused the access token (expired or revoked)".to_owned(),
        ),
        (Some(403), Some("quotaExceeded" | "rateLimitExceeded"), _) => (
            Reason::RateLimited,
            format!(
                "a BigQuery quota of project {project} is used up; the next run tries again (raise the quota, or run the queries in another project with GOOGLE_CLOUD_PROJECT)"
            ),
        ),
        (Some(403), Some("billingNotEnabled"), _) => (
            Reason::Config,
            format!(
                "project {project} has no billing account, so it cannot run query jobs: name a project with billing in GOOGLE_CLOUD_PROJECT"
            ),
        ),
        (Some(403), _, Step::Table) => (
            Reason::Auth,
            format!(
                "the service account cannot read the export table: grant it roles/bigquery.dataViewer on dataset {dataset}"
            ),
        ),
        (Some(403), _, _) => (
            Reason::Auth,
            format!(
                "the service account may not run queries in project {project} or read dataset {dataset}: grant it roles/bigquery.jobUser on project {project} and roles/bigquery.dataViewer on the dataset"
            ),
        ),
        (Some(404), _, Step::Table) => (
            Reason::Http4xx,
            format!(
                "there is no table {table}: check GOOGLE_BILLING_EXPORT_TABLE (project.dataset.gcp_billing_export_v1_<BILLING_ACCOUNT_ID>) and that the standard usage cost export to BigQuery is enabled (Billing → Billing export); the export creates the table a few hours after it is enabled"
            ),
        ),
        (Some(404), _, _) => (
            Reason::Http4xx,
            format!(
                "project {project}, its dataset or the query job was not found: check GOOGLE_CLOUD_PROJECT and GOOGLE_BILLING_EXPORT_TABLE"
            ),
        ),
        (Some(400), Some("bytesBilledLimitExceeded"), _) => (
            Reason::Config,
            "BigQuery refused the query: it would bill more bytes than providers.google.max_bytes_billed allows (nothing was billed); raise the cap if the month's export is that large".to_owned(),
        ),
        (Some(400), Some("invalidQuery"), _) => (
            Reason::Query,
            format!(
                "BigQuery refused the query: {table} lacks a column of the standard usage cost export (is it the gcp_billing_export_v1_… table?)"
            ),
        ),
        _ => return e,
    };
    e.reason = reason;
    e.message = format!("{} ({fix})", e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigquery_s_strings_are_read_exactly() {
        assert_eq!(decimal("2.9409958E7"), Some(Decimal::from(29_409_958)));
        assert_eq!(
            decimal("1.5E-4").map(|d| d.to_string()),
            Some("0.00015".into())
        );
        assert_eq!(
            decimal("12.345678901").map(|d| d.to_string()),
            Some("12.345678901".into())
        );
        assert_eq!(decimal("-3"), Some(Decimal::from(-3)));
        for bad in ["NaN", "Infinity", "-Infinity", "1E300", "", "E7", "1.2.3"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
        let t = timestamp("1.7966E9").unwrap();
        assert_eq!(t.unix_timestamp(), 1_796_600_000);
        let t = timestamp("1700000000.123456").unwrap();
        assert_eq!(t.unix_timestamp_nanos(), 1_700_000_000_123_456_000);
        assert_eq!(timestamp("1E300"), None);
    }

    #[test]
    fn rows_are_scalar_strings_or_null() {
        let row = serde_json::json!({"f": [{"v": "a"}, {"v": null}, {}]});
        assert_eq!(cells(&row, 3).unwrap(), vec![Some("a"), None, None]);
        assert!(cells(&row, 2).is_err());
        let nested = serde_json::json!({"f": [{"v": [{"v": "1"}]}]});
        assert!(cells(&nested, 1).unwrap_err().contains("array"));
        let page = serde_json::json!({"schema": {"fields": [
            {"name": "credits", "type": "RECORD", "mode": "REPEATED"}
        ]}});
        assert_eq!(schema(&page).unwrap_err().reason, Reason::Decode);
    }
}
