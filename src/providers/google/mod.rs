//! Google Cloud: what every Google Cloud service costs this month, from the Cloud Billing
//! export to BigQuery (the standard usage cost table), the only place Google exposes spend:
//! per service, and for the services named in `sku_services` (by default the Gemini API and
//! Cloud Text-to-Speech) per SKU with its usage in base units; credits netted, adjustments as
//! billed, taxes in the job's tax basis, amounts in the export's currency; Text-to-Speech's
//! free characters per voice family as limits.
//!
//! The job runs one parameterized SELECT of its own over the one configured table for an
//! invoice month, limited to the partitions that month's rows are exported into. A dry run
//! first says how many bytes it would scan: above `max_bytes_billed` the job refuses it, and
//! the query carries `maximumBytesBilled` so that BigQuery refuses it too. The token request
//! and the query are POSTs, the two paths this provider declares; everything else is a GET.
//!
//! Parts: this file (the section, its validation, the collector), `auth` (a service-account
//! key's signed JWT and its token, or the metadata server's token), `bigquery` (the REST
//! calls, BigQuery's row format and errors), `export` (the query and what its rows become).

mod auth;
mod bigquery;
mod export;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use url::Url;

use crate::config::{EnvVar, Section, SectionSchema, StringList, read_secret_file};
use crate::cost::{Collection, Skipped, Unit, UsageLimit};
use crate::error::{CollectError, Reason};
use crate::money::{ConfigDecimal, Currency, TaxBasis};
use crate::providers::{Api, Collector, Configured, Context, Days, History, Provider};
use crate::secret::RawSecret;

use auth::{Credentials, ServiceAccount, TokenCache};
use bigquery::Client;
use export::{Line, Reader, Shape};

const NAME: &str = "google";
/// BigQuery's REST API.
const BASE_URL: &str = "https://bigquery.googleapis.com/bigquery/v2";
/// The cap on the bytes one query may bill, unless configured: 1 GiB, at most $0.0062 at
/// BigQuery's on-demand price of $6.25 per TiB.
const DEFAULT_MAX_BYTES_BILLED: u64 = 1 << 30;
/// BigQuery bills at least 10 MiB per table a query reads: a lower cap refuses every query.
const MIN_BYTES_BILLED: u64 = 10 << 20;
/// The largest cap accepted (1 TiB, $6.25).
const MAX_BYTES_BILLED: u64 = 1 << 40;
/// The services whose SKUs are exported with their usage, unless configured.
const DEFAULT_SKU_SERVICES: &[&str] = &["Gemini API", "Cloud Text-to-Speech API"];
/// Services named in `sku_services` at most.
const MAX_SKU_SERVICES: usize = 20;

/// The registry's description of Google Cloud.
pub(crate) static PROVIDER: Provider = Provider {
    schema: SectionSchema {
        name: NAME,
        env: &[
            EnvVar {
                name: "GOOGLE_APPLICATION_CREDENTIALS",
                key: "credentials_file",
                help: "Path to a Google service-account key file (JSON): an account with roles/bigquery.dataViewer on the billing export's dataset and roles/bigquery.jobUser on a project.",
            },
            EnvVar {
                name: "GOOGLE_CREDENTIALS",
                key: "credentials",
                help: "Or: the content of that key file itself (for GOOGLE_CREDENTIALS_FILE or a file in CREDENTIALS_DIRECTORY).",
            },
            EnvVar {
                name: "GOOGLE_BILLING_EXPORT_TABLE",
                key: "table",
                help: "The standard usage cost export table: project.dataset.gcp_billing_export_v1_<BILLING_ACCOUNT_ID>.",
            },
            EnvVar {
                name: "GOOGLE_CLOUD_PROJECT",
                key: "project",
                help: "The project the queries run (and are billed) in; default: the key's project, else the table's.",
            },
        ],
        secrets: &["credentials"],
    },
    // The token request of a signed JWT, and BigQuery's jobs.query (a read-only SELECT).
    posts: &[auth::TOKEN_PATH, bigquery::QUERIES_PATH],
    configure,
};

/// `[providers.google]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    budget: Option<ConfigDecimal>,
    base_url: Option<String>,
    table: Option<String>,
    project: Option<String>,
    credentials: RawSecret,
    credentials_file: Option<String>,
    auth: Option<String>,
    metadata_url: Option<String>,
    currency: Option<String>,
    max_bytes_billed: Option<u64>,
    sku_services: Option<StringList>,
    top_services: Option<u32>,
    top_skus: Option<u32>,
    limits: BTreeMap<String, ConfigDecimal>,
}

/// Where the token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMode {
    /// A service-account key file.
    Key,
    /// The GCE or GKE metadata server.
    Metadata,
}

const AUTH_MODES: &[(&str, AuthMode)] = &[("key", AuthMode::Key), ("metadata", AuthMode::Metadata)];

/// A BigQuery table, its parts checked so that they can go in a URL path and in the query
/// (an identifier cannot be a query parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableRef {
    pub(super) project: String,
    pub(super) dataset: String,
    pub(super) table: String,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

/// A project id: lower-case letters, digits and hyphens, optionally after a domain and a
/// colon (`example.com:my-project`).
fn project_id(text: &str) -> Option<String> {
    let t = text.trim();
    let (domain, id) = match t.rsplit_once(':') {
        Some((d, id)) => (Some(d), id),
        None => (None, t),
    };
    let id_ok = (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let domain_ok = domain.is_none_or(|d| {
        (1..=253).contains(&d.len())
            && d.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    });
    (id_ok && domain_ok).then(|| t.to_owned())
}

/// `project.dataset.table` (or BigQuery's older `project:dataset.table`).
fn parse_table(text: &str) -> Result<TableRef, String> {
    let t = text.trim();
    let shown: String = t.chars().take(200).collect();
    let bad = || {
        format!(
            "{shown:?} is not project.dataset.table (letters, digits and underscores in the dataset and table)"
        )
    };
    let (rest, table) = t.rsplit_once('.').ok_or_else(bad)?;
    let (project, dataset) = match rest.rsplit_once('.') {
        Some((p, d)) if !p.ends_with(':') => (p, d),
        _ => rest.rsplit_once(':').ok_or_else(bad)?,
    };
    let name = |s: &str| {
        (1..=1024).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !name(dataset) || !name(table) {
        return Err(bad());
    }
    let project = project_id(project).ok_or_else(bad)?;
    Ok(TableRef {
        project,
        dataset: dataset.to_owned(),
        table: table.to_owned(),
    })
}

/// The metadata server's URL: the well-known one over plain http (it is link-local by design),
/// or a URL credentials may go to (https, or http on loopback).
fn metadata_url(s: &mut Section<'_>, raw: Option<&str>) -> Option<Url> {
    match raw.map(str::trim).filter(|u| !u.is_empty()) {
        None => Url::parse(auth::METADATA_TOKEN_URL).ok(),
        Some(u) => {
            let parsed = Url::parse(u).ok();
            if let Some(p) = &parsed
                && p.scheme() == "http"
                && matches!(
                    p.host_str(),
                    Some("metadata.google.internal" | "169.254.169.254")
                )
                && p.username().is_empty()
                && p.password().is_none()
            {
                return parsed;
            }
            s.url("metadata_url", u)
        }
    }
}

/// The key file's content from `credentials` or the file `credentials_file` names; `None`
/// when neither is set (or a problem was recorded).
fn key_text(s: &mut Section<'_>, raw: &Config) -> Option<(String, &'static str)> {
    let inline = raw
        .credentials
        .expose()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let path = raw
        .credentials_file
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    match (inline, path) {
        (Some(_), Some(_)) => {
            s.fail_section(
                "both GOOGLE_CREDENTIALS (credentials) and GOOGLE_APPLICATION_CREDENTIALS (credentials_file) are set; set one",
            );
            None
        }
        (Some(text), None) => Some((text.to_owned(), "credentials")),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(text) => Some((text, "credentials_file")),
            Err(e) => {
                s.fail(
                    "credentials_file",
                    format!("the key file {path} named here, {e}"),
                );
                None
            }
        },
        (None, None) => None,
    }
}

fn configure(s: &mut Section<'_>) -> Option<Configured> {
    let raw: Config = s.extract()?;
    let budget = s.budget(raw.budget);
    let base = s.url("base_url", raw.base_url.as_deref().unwrap_or(BASE_URL));
    let mode = s
        .choice("auth", raw.auth.as_deref(), AUTH_MODES)
        .unwrap_or(AuthMode::Key);
    let currency = match raw.currency.as_deref() {
        None => Some(Currency::USD),
        Some(c) => match c.parse::<Currency>() {
            Ok(c) => Some(c),
            Err(e) => {
                s.fail("currency", e);
                None
            }
        },
    };
    let max_bytes_billed = match raw.max_bytes_billed {
        None => DEFAULT_MAX_BYTES_BILLED,
        Some(n) if (MIN_BYTES_BILLED..=MAX_BYTES_BILLED).contains(&n) => n,
        Some(n) => {
            s.fail(
                "max_bytes_billed",
                format!(
                    "{n} is out of range ({MIN_BYTES_BILLED}, the 10 MiB BigQuery bills at least per query, to {MAX_BYTES_BILLED})"
                ),
            );
            DEFAULT_MAX_BYTES_BILLED
        }
    };
    let sku_services: Vec<String> = match &raw.sku_services {
        None => DEFAULT_SKU_SERVICES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        Some(list) => list.0.iter().map(|s| s.trim().to_owned()).collect(),
    };
    if sku_services.len() > MAX_SKU_SERVICES {
        s.fail(
            "sku_services",
            format!(
                "{} services; at most {MAX_SKU_SERVICES}",
                sku_services.len()
            ),
        );
    }
    if let Some(bad) = sku_services
        .iter()
        .find(|v| v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control))
    {
        let shown: String = bad.chars().take(40).collect();
        s.fail(
            "sku_services",
            format!("{shown:?} is not a service description (1 to 200 characters)"),
        );
    }
    let top_services = s.count("top_services", raw.top_services, 50);
    let top_skus = s.count("top_skus", raw.top_skus, 50);
    // Text-to-Speech's free characters per voice family, when its SKUs are read.
    let limits: Vec<UsageLimit> = if sku_services.iter().any(|v| export::is_tts(v)) {
        let resources: Vec<(&str, Unit)> = export::TTS_FAMILIES
            .iter()
            .map(|(_, r, _)| (*r, Unit::Characters))
            .collect();
        let quotas: Vec<(&str, f64)> = export::TTS_FAMILIES
            .iter()
            .map(|(_, r, q)| (*r, *q))
            .collect();
        s.limits(&raw.limits, &resources, &quotas)
    } else {
        s.limits(&raw.limits, &[], &[])
    };
    let table = match raw
        .table
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => match parse_table(t) {
            Ok(t) => Some(t),
            Err(e) => {
                s.fail("table", e);
                None
            }
        },
    };
    let project = match raw
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match project_id(p) {
            Some(p) => Some(p),
            None => {
                let shown: String = p.chars().take(80).collect();
                s.fail(
                    "project",
                    format!(
                        "{shown:?} is not a project id (lower-case letters, digits and hyphens)"
                    ),
                );
                None
            }
        },
    };
    let credentials = match mode {
        AuthMode::Metadata => {
            if raw.credentials.expose().is_some() || raw.credentials_file.is_some() {
                s.fail_section(
                    "auth = \"metadata\" takes the metadata server's token: remove the key (GOOGLE_CREDENTIALS, GOOGLE_APPLICATION_CREDENTIALS), or set auth = \"key\"",
                );
            }
            metadata_url(s, raw.metadata_url.as_deref()).map(Credentials::Metadata)
        }
        AuthMode::Key => {
            if raw.metadata_url.is_some() {
                s.fail("metadata_url", "is read only with auth = \"metadata\"");
            }
            key_text(s, &raw).and_then(|(text, field)| match ServiceAccount::parse(&text) {
                Ok(sa) => {
                    let token_uri = s.url(field, &sa.token_uri)?;
                    if !token_uri.path().ends_with(auth::TOKEN_PATH) {
                        s.fail(
                            field,
                            format!(
                                "the key file's token_uri does not end in {}, the one path the job may POST a token request to",
                                auth::TOKEN_PATH
                            ),
                        );
                        return None;
                    }
                    Some(Credentials::Key(Box::new(sa)))
                }
                Err(e) => {
                    s.fail(field, format!("the key {e}"));
                    None
                }
            })
        }
    };
    let api = match (credentials, table) {
        (None, _) => Api::NoCredentials,
        (Some(_), None) => {
            tracing::warn!(
                provider = NAME,
                "Google credentials are set but no billing export table (GOOGLE_BILLING_EXPORT_TABLE or providers.google.table): nothing to collect"
            );
            Api::Incomplete("credentials but no billing export table".into())
        }
        (Some(credentials), Some(table)) => {
            let currency = currency?;
            s.bills_in(currency);
            let project = project
                .or_else(|| match &credentials {
                    Credentials::Key(sa) => sa.project_id.as_deref().and_then(project_id),
                    Credentials::Metadata(_) => None,
                })
                .unwrap_or_else(|| table.project.clone());
            Api::Collector(Arc::new(Google {
                base: base?,
                credentials,
                token: TokenCache::default(),
                table,
                project,
                max_bytes_billed,
                sku_services,
                top_services,
                top_skus,
                tax: s.tax(),
                currency,
                limits,
            }))
        }
    };
    Some(Configured { budget, api })
}

/// The Google Cloud collector.
struct Google {
    base: Url,
    credentials: Credentials,
    token: TokenCache,
    table: TableRef,
    /// The project jobs run (and are billed) in.
    project: String,
    max_bytes_billed: u64,
    sku_services: Vec<String>,
    top_services: usize,
    top_skus: usize,
    tax: TaxBasis,
    /// The billing account's currency, for a month without rows.
    currency: Currency,
    limits: Vec<UsageLimit>,
}

/// An invoice month's rows and how far the export reaches.
struct Month {
    lines: Vec<Line>,
    /// The latest `export_time` read.
    exported: Option<time::OffsetDateTime>,
    /// Rows (or their usage) left out of the figures.
    skipped: Skipped,
}

/// Megabytes, for messages.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Google {
    fn shape(&self) -> Shape<'_> {
        Shape {
            tax: self.tax,
            top_services: self.top_services,
            top_skus: self.top_skus,
            limits: &self.limits,
            currency: self.currency,
        }
    }

    /// The export's rows of the invoice month starting `first`: the table checked, a dry run
    /// within the cap, then the query.
    async fn month(&self, cx: &Context, first: time::Date) -> Result<Month, CollectError> {
        let token = self.token.get(cx, &self.credentials).await?;
        let client = Client {
            base: &self.base,
            project: &self.project,
            token: &token,
        };
        let info = client.table(cx, &self.table).await?;
        let sql = export::sql(&self.table);
        let params = export::params(first, &self.sku_services);
        let request = bigquery::Request {
            sql: &sql,
            params: &params,
            location: &info.location,
            max_bytes_billed: self.max_bytes_billed,
        };
        let bytes = client.dry_run(cx, &request, &self.table).await?;
        if bytes > self.max_bytes_billed {
            return Err(CollectError::new(
                Reason::Config,
                format!(
                    "the query of invoice month {} would scan {} ({bytes} bytes), more than providers.google.max_bytes_billed ({}): not run; raise the cap if the export is that large",
                    export::invoice_month(first),
                    mb(bytes),
                    self.max_bytes_billed
                ),
            ));
        }
        tracing::info!(
            provider = NAME,
            "the query of invoice month {} scans {} ({bytes} bytes; cap {})",
            export::invoice_month(first),
            mb(bytes),
            self.max_bytes_billed
        );
        let mut reader: Option<Reader> = None;
        let mut lines = Vec::new();
        let mut exported: Option<time::OffsetDateTime> = None;
        let mut skipped = Skipped::default();
        client
            .run(cx, &request, &self.table, |columns, row| {
                let r = match &reader {
                    Some(r) => r,
                    None => reader.insert(Reader::new(columns)?),
                };
                if let Some(line) = r.line(row, &mut skipped)? {
                    if line.export_time > exported {
                        exported = line.export_time;
                    }
                    lines.push(line);
                }
                Ok(())
            })
            .await?;
        Ok(Month {
            lines,
            exported,
            skipped,
        })
    }
}

/// The run's invoice month: Google keeps `invoice.month` in US Pacific time, so until 08:00
/// UTC on the 1st (07:00 in summer time) it is still last month. The month and its 1st.
fn invoice_month(cx: &Context) -> (crate::calendar::Month, time::Date) {
    let month = cx.month(crate::calendar::Calendar::Pacific);
    // 00:00 on the 1st in Pacific time is 07:00 or 08:00 UTC the same day.
    let first = time::OffsetDateTime::from(month.start).date();
    (month, first)
}

#[async_trait::async_trait]
impl Collector for Google {
    fn provider(&self) -> &str {
        NAME
    }

    fn source(&self) -> &'static str {
        NAME
    }

    async fn collect(&self, cx: &Context) -> Result<Collection, CollectError> {
        let (billing, first) = invoice_month(cx);
        let month = self.month(cx, first).await?;
        let lines: Vec<&Line> = month.lines.iter().collect();
        // How far the export reaches: the latest export time read, never past the run.
        let data_as_of = month.exported.map(|t| SystemTime::from(t).min(cx.now));
        let mut c = export::collection(&lines, &self.shape(), data_as_of)?;
        c.skipped = month.skipped;
        c.month = Some(billing);
        Ok(c)
    }

    /// Each day's month to date from the same table: the invoice month's rows by usage day
    /// (a row used before the 1st counts on the 1st, one after the month's last day, in its
    /// last hours US Pacific time, on the last).
    async fn history(&self, cx: &Context, days: Days) -> Result<Option<History>, CollectError> {
        let month = self.month(cx, days.first).await?;
        let last = days
            .first
            .replace_day(days.first.month().length(days.first.year()))
            .unwrap_or(days.last);
        let mut out = Vec::new();
        for day in days.iter() {
            let lines: Vec<&Line> = month
                .lines
                .iter()
                .filter(|l| l.day.unwrap_or(days.first).clamp(days.first, last) <= day)
                .collect();
            out.push((
                day,
                export::collection(&lines, &self.shape(), Some(Days::end_of(day)))?,
            ));
        }
        Ok(Some(out))
    }

    async fn probe(&self, cx: &Context) -> Result<String, CollectError> {
        let token = self.token.get(cx, &self.credentials).await?;
        let client = Client {
            base: &self.base,
            project: &self.project,
            token: &token,
        };
        let info = client.table(cx, &self.table).await?;
        let (_, first) = invoice_month(cx);
        let sql = export::sql(&self.table);
        let params = export::params(first, &self.sku_services);
        let request = bigquery::Request {
            sql: &sql,
            params: &params,
            location: &info.location,
            max_bytes_billed: self.max_bytes_billed,
        };
        let bytes = client.dry_run(cx, &request, &self.table).await?;
        Ok(format!(
            "the {} reads {} ({}, {}); this month's query would scan {} (cap {}), run in project {}",
            self.credentials.describe(),
            self.table,
            info.location,
            info.bytes.map_or_else(|| "size unknown".to_owned(), mb),
            mb(bytes),
            mb(self.max_bytes_billed),
            self.project
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_before_they_reach_a_query() {
        let t = parse_table("my-proj.billing.gcp_billing_export_v1_01AB23_CD45EF_6789AB").unwrap();
        assert_eq!(t.project, "my-proj");
        assert_eq!(t.dataset, "billing");
        assert_eq!(
            t.to_string(),
            "my-proj.billing.gcp_billing_export_v1_01AB23_CD45EF_6789AB"
        );
        let t = parse_table("example.com:my-proj.billing.t1").unwrap();
        assert_eq!(t.project, "example.com:my-proj");
        assert_eq!(t.dataset, "billing");
        let t = parse_table("my-proj:billing.t1").unwrap();
        assert_eq!(
            (t.project.as_str(), t.dataset.as_str()),
            ("my-proj", "billing")
        );
        for bad in [
            "billing.t1",
            "p.d.t`; DROP TABLE x; --",
            "p.d.t x",
            "P.d.t",
            "p..t",
            "p.d.",
            "p.d-x.t",
        ] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
    }
}
