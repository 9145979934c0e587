//! The Pushgateway client: grouping-key URLs, PUT/POST of text exposition, the counter
//! read-back from `/api/v1/metrics`, and retries.
//!
//! Semantics (<https://github.com/prometheus/pushgateway#readme>): PUT replaces a whole group,
//! POST only the names it carries.
//! 200 and 202 are success; a 4xx is a bug or a refusal and is not retried (its body, which
//! explains the inconsistency, is logged); 5xx and transport errors are retried with backoff.
//! Credentials go in a sensitive basic-auth header, never in the URL.

mod api;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::config::PushgatewaySettings;
use crate::cost::Target;
use crate::http::{USER_AGENT, error_chain, install_crypto_provider, join, scrub};
use crate::metrics::{Method, PreviousErrors};
use crate::secret::Secret;

/// The job label of every group this program pushes.
pub const JOB: &str = "cost-exporter";

/// Why a push (or read) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushError {
    /// The Pushgateway answered 4xx: not retried.
    #[error("the Pushgateway refused {what} with {status}: {body}")]
    Rejected {
        /// What was sent, e.g. `PUT /metrics/job/cost-exporter/provider/ionos`.
        what: String,
        /// The status.
        status: StatusCode,
        /// The start of its explanation.
        body: String,
    },
    /// 5xx or transport errors, after the retries.
    #[error("{what} failed: {message}")]
    Failed {
        /// What was sent.
        what: String,
        /// The last error.
        message: String,
        /// Whether another attempt could succeed.
        retryable: bool,
    },
}

impl PushError {
    /// 5xx or a transport error: another attempt could succeed.
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            PushError::Failed {
                retryable: true,
                ..
            }
        )
    }
}

/// A Pushgateway to push to.
pub struct Pushgateway {
    client: reqwest::Client,
    base: Url,
    auth: Option<(String, Secret)>,
    retries: u32,
}

/// The first backoff delay between Pushgateway attempts.
const MIN_DELAY: Duration = Duration::from_millis(500);

impl Pushgateway {
    /// A client for the configured Pushgateway.
    pub fn new(s: &PushgatewaySettings) -> Result<Pushgateway, String> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(s.timeout)
            .connect_timeout(s.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("cannot build the Pushgateway client: {e}"))?;
        Ok(Pushgateway {
            client,
            base: s.url.clone(),
            auth: s.basic_auth.clone(),
            retries: s.retries,
        })
    }

    /// `<base>/metrics/job/cost-exporter/<label>/<value>…`, with `@base64` for values that are
    /// empty or hold a `/`.
    pub(crate) fn group_url(&self, labels: &[(&str, &str)]) -> Url {
        group_url(&self.base, labels)
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, url);
        match &self.auth {
            // reqwest marks the basic-auth header sensitive.
            Some((user, pass)) => rb.basic_auth(user, Some(pass.expose())),
            None => rb,
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(MIN_DELAY)
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(self.retries as usize)
            .with_jitter()
    }

    /// Pushes `body` (text exposition) to the group with `labels` (after `job`).
    pub async fn push(
        &self,
        labels: &[(&str, &str)],
        method: Method,
        body: String,
    ) -> Result<(), PushError> {
        let url = self.group_url(labels);
        let (m, name) = match method {
            Method::Put => (reqwest::Method::PUT, "PUT"),
            Method::Post => (reqwest::Method::POST, "POST"),
        };
        let what = format!("{name} {}", url.path());
        let attempt = || async {
            let result = self
                .request(m.clone(), url.clone())
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            self.judge(&what, result).await.map(|_| ())
        };
        attempt
            .retry(self.backoff())
            .when(PushError::retryable)
            .notify(notify_retry)
            .await
    }

    async fn judge(
        &self,
        what: &str,
        result: reqwest::Result<reqwest::Response>,
    ) -> Result<reqwest::Response, PushError> {
        let resp = result.map_err(|e| PushError::Failed {
            what: what.to_owned(),
            message: error_chain(&e.without_url()),
            retryable: true,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = self.scrub(&String::from_utf8_lossy(
            &read_limited(resp, ERROR_BODY_LIMIT, true)
                .await
                .unwrap_or_default(),
        ));
        if status.is_server_error() {
            return Err(PushError::Failed {
                what: what.to_owned(),
                message: format!("the Pushgateway answered {status}: {body}"),
                retryable: true,
            });
        }
        let body = if status == StatusCode::UNAUTHORIZED {
            format!(
                "{body} (check PUSHGATEWAY_USERNAME and PUSHGATEWAY_PASSWORD{})",
                if self.auth.is_none() {
                    "; none are set"
                } else {
                    ""
                }
            )
        } else {
            body
        };
        Err(PushError::Rejected {
            what: what.to_owned(),
            status,
            body,
        })
    }

    /// This job's groups in `/api/v1/metrics`, read in one streaming pass (other jobs'
    /// groups are skipped as they are read: memory does not grow with them).
    async fn job_groups(&self) -> Result<Vec<api::JobGroup>, PushError> {
        let url = join(&self.base, "/api/v1/metrics");
        let what = format!("GET {}", url.path());
        let attempt = || async {
            let result = self.request(reqwest::Method::GET, url.clone()).send().await;
            let resp = self.judge(&what, result).await?;
            api::read(resp)
                .await
                .map_err(|(message, retryable)| PushError::Failed {
                    what: what.clone(),
                    message,
                    retryable,
                })
        };
        attempt
            .retry(self.backoff())
            .when(PushError::retryable)
            .notify(notify_retry)
            .await
    }

    /// Reads the error counters and consecutive failures of every `provider` group of this job
    /// through `/api/v1/metrics`, so that they continue from where the last run left them.
    pub(crate) async fn read_counters(&self) -> Result<PreviousErrors, PushError> {
        Ok(counters(self.job_groups().await?))
    }

    /// The provider (and account) of every provider group of this job (`/api/v1/metrics`),
    /// with the Unix time it was last pushed (`push_time_seconds`), where known.
    pub(crate) async fn provider_groups(&self) -> Result<Vec<(Target, Option<f64>)>, PushError> {
        let mut out: Vec<(Target, Option<f64>)> = self
            .job_groups()
            .await?
            .into_iter()
            .filter_map(|g| Some((target_of(&g)?, g.push_time)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes the run-level group (`/metrics/job/cost-exporter`).
    pub(crate) async fn delete_run_group(&self) -> Result<(), PushError> {
        let url = self.group_url(&[]);
        let what = format!("DELETE {}", url.path());
        let result = self.request(reqwest::Method::DELETE, url).send().await;
        self.judge(&what, result).await.map(|_| ())
    }

    /// Deletes the group of `target` (every metric in it).
    pub(crate) async fn delete_provider(&self, target: &Target) -> Result<(), PushError> {
        let url = self.group_url(&target.labels());
        let what = format!("DELETE {}", url.path());
        let result = self.request(reqwest::Method::DELETE, url).send().await;
        self.judge(&what, result).await.map(|_| ())
    }

    /// `check --probe`: one GET of `/api/v1/status` (authenticated when credentials are set).
    pub(crate) async fn probe(&self) -> Result<String, PushError> {
        let url = join(&self.base, "/api/v1/status");
        let what = format!("GET {}", url.path());
        let result = self.request(reqwest::Method::GET, url).send().await;
        let resp = self.judge(&what, result).await?;
        #[derive(Deserialize)]
        struct Status {
            data: StatusData,
        }
        #[derive(Deserialize)]
        struct StatusData {
            build_information: Option<std::collections::BTreeMap<String, String>>,
        }
        let version = read_limited(resp, STATUS_LIMIT, false)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Status>(&b).ok())
            .and_then(|s| s.data.build_information)
            .and_then(|b| b.get("version").cloned())
            .unwrap_or_else(|| "unknown".into());
        Ok(format!("reachable, version {version}"))
    }
}

/// Largest error body read from the Pushgateway (the rest is not read).
const ERROR_BODY_LIMIT: usize = 2048;
/// Largest `/api/v1/status` answer read.
const STATUS_LIMIT: usize = 64 << 10;

/// Reads at most `limit` bytes of a body: beyond it, the start (`truncate`) or an error.
async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| error_chain(&e.without_url()))?
    {
        if buf.len() + chunk.len() > limit {
            if truncate {
                buf.extend_from_slice(&chunk[..limit - buf.len()]);
                return Ok(buf);
            }
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

impl Pushgateway {
    /// `text` without the password, in any of the spellings it travels in (the basic-auth
    /// token included).
    fn scrub(&self, text: &str) -> String {
        match &self.auth {
            None => scrub(text, None),
            Some((user, pass)) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", pass.expose()));
                crate::http::scrub_raw(text, &[pass.expose(), &token])
            }
        }
    }
}

fn notify_retry(e: &PushError, wait: Duration) {
    tracing::warn!(
        "{e}; retrying in {}",
        humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
    );
}

/// Whether a grouping-label value can go in a URL path segment as it is: a nonempty run of
/// letters, digits, `_`, `-` and `.` that is not `.` or `..` (which a URL resolves away). Any
/// other value travels as `@base64`, so that what reaches the Pushgateway is exactly the
/// value: the URL parser drops tabs and line breaks from a segment, so `acme\n` sent as is
/// would name the group `acme`.
fn plain_segment(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Builds a grouping-key URL under `base` (which may have a path prefix).
pub(crate) fn group_url(base: &Url, labels: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().extend(["metrics", "job", JOB]);
        for (name, value) in labels {
            if !plain_segment(value) {
                segs.push(&format!("{name}@base64"));
                let enc = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
                segs.push(if enc.is_empty() { "=" } else { &enc });
            } else {
                segs.push(name);
                segs.push(value);
            }
        }
    }
    url
}

/// The target of a provider group of this job: labels `job` and `provider`, and `account`
/// for a named account's group; `None` for the run-level group and anything else.
fn target_of(g: &api::JobGroup) -> Option<Target> {
    let provider = g.labels.get("provider")?;
    match (g.labels.len(), g.labels.get("account")) {
        (2, None) => Some(Target::provider(provider)),
        (3, Some(account)) => Some(Target::account(provider, account)),
        _ => None,
    }
}

/// The error counters and consecutive failures of this job's provider groups, keeping only
/// finite, non-negative values.
fn counters(groups: Vec<api::JobGroup>) -> PreviousErrors {
    let metric = crate::metrics::ERRORS.name;
    let mut out = PreviousErrors::default();
    for g in groups {
        let Some(provider) = target_of(&g) else {
            continue;
        };
        if let Some(v) = g
            .consecutive
            .as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            out.consecutive.insert(provider.clone(), v);
        }
        for (reason, v) in g.errors {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => {
                    out.totals.insert((provider.clone(), reason), x);
                }
                _ => tracing::warn!(provider = %provider, "ignoring an unreadable {metric} value"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_values_that_need_it_are_base64() {
        let base = Url::parse("http://pg:9091/prefix/").unwrap();
        assert_eq!(
            group_url(&base, &[("provider", "ionos")]).as_str(),
            "http://pg:9091/prefix/metrics/job/cost-exporter/provider/ionos"
        );
        assert_eq!(
            group_url(&base, &[("provider", "a/b")]).path(),
            "/prefix/metrics/job/cost-exporter/provider@base64/YS9i"
        );
        assert_eq!(
            group_url(&base, &[("provider", "")]).path(),
            "/prefix/metrics/job/cost-exporter/provider@base64/="
        );
        // Control characters, which the URL parser would drop, and dot segments, which it
        // would resolve away: exactly the value, encoded.
        for (value, encoded) in [
            ("acme\n", "YWNtZQo="),
            ("acme\r", "YWNtZQ0="),
            ("ver\tcel", "dmVyCWNlbA=="),
            (".", "Lg=="),
            ("..", "Li4="),
        ] {
            assert_eq!(
                group_url(&base, &[("provider", value)]).path(),
                format!("/prefix/metrics/job/cost-exporter/provider@base64/{encoded}"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn counters_are_read_from_this_jobs_provider_groups_only() {
        let text = r#"{"status":"success","data":[
          {"labels":{"job":"cost-exporter","provider":"ionos"},
           "cost_collector_errors_total":{"type":"COUNTER","metrics":[
             {"labels":{"job":"cost-exporter","provider":"ionos","reason":"timeout","instance":""},"value":"2"},
             {"labels":{"reason":"decode"},"value":"NaN"}]},
           "cost_collector_consecutive_failures":{"type":"GAUGE","metrics":[{"labels":{},"value":"3"}]}},
          {"labels":{"job":"other","provider":"ionos"},
           "cost_collector_errors_total":{"metrics":[{"labels":{"reason":"timeout"},"value":"9"}]}}]}"#;
        let c = counters(api::parse(text.as_bytes()).unwrap());
        assert_eq!(c.totals.len(), 1);
        assert_eq!(
            c.totals[&(Target::provider("ionos"), "timeout".to_owned())],
            2.0
        );
        assert_eq!(c.consecutive.len(), 1);
        assert_eq!(c.consecutive[&Target::provider("ionos")], 3.0);
    }
}
