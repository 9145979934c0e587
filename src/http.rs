//! The provider HTTP client: the only code that talks to provider APIs.
//!
//! It sends GET and nothing else (one read-only POST aside), never follows redirects
//! (credentials must not travel to another host), uses rustls, and retries what can succeed on
//! a second attempt: 408, 429 and 5xx (a nonstandard 529 "overloaded" included) and transport errors, with
//! jittered exponential backoff; `Retry-After` is honoured as a minimum and clamped; other
//! 4xx are not retried.
//!
//! It owns its error type, [`HttpError`]: a kind, the status, the URL without its query, the
//! provider's error code when the body carries one, and a message with no credential in it.
//! It knows no provider: callers decide on those fields.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{Response, StatusCode};
use url::Url;

use crate::config::HttpSettings;
use crate::secret::Secret;

/// The `User-Agent` every request carries.
pub(crate) const USER_AGENT: &str = concat!("cost-exporter/", env!("CARGO_PKG_VERSION"));

/// How many bytes of an error body are kept for the log.
const ERROR_BODY_LIMIT: usize = 2048;

/// What kind of failure a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// 401 or 403: the credential is wrong or lacks a permission.
    Auth,
    /// 429 after the retries, or a wait longer than allowed.
    RateLimited,
    /// Another 4xx.
    Client,
    /// 5xx after the retries.
    Server,
    /// A redirect, which is never followed.
    Redirect,
    /// The request, its body or a 408: too slow.
    Timeout,
    /// Connection refused, reset, or cut mid-body.
    Transport,
    /// The body could not be decoded (gzip) or is larger than the caller accepts.
    Body,
    /// The request could not be built: a header value (or a credential) a header cannot hold.
    Request,
    /// The client refused to send it: a POST anywhere but the read-only query endpoint.
    Refused,
}

/// A failed request. Its message never holds a secret: URLs have no query string, response
/// bodies are truncated and scrubbed of every credential of the request.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// What kind of failure.
    pub kind: HttpErrorKind,
    /// The status, when the provider answered with an error status.
    pub status: Option<u16>,
    /// `host[:port]/path` of the request.
    pub url: String,
    /// The provider's error code, when the body carries one in a common shape (`error.code`,
    /// `errorCode`, `code`, `error.type`, `errors[0].code`, a `message` opening with a code, or
    /// an XML `<Code>`): a short token of letters, digits, `_`, `-` and `.`.
    pub code: Option<String>,
    /// What happened, for humans.
    pub message: String,
}

impl HttpError {
    fn new(kind: HttpErrorKind, url: &Url, message: impl Into<String>) -> HttpError {
        HttpError {
            kind,
            status: None,
            url: describe(url),
            code: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// Retry timing: 1 s to 30 s of jittered exponential backoff by default; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited for; a longer one fails the request at once.
    pub max_retry_after: Duration,
    /// The wait after a 429 without `Retry-After`, where the provider documents one.
    pub rate_limit_wait: Option<Duration>,
}

impl RetryPolicy {
    /// The policy from `[http]`, with 1 s to 30 s backoff.
    pub(crate) fn from_settings(s: &HttpSettings) -> RetryPolicy {
        RetryPolicy {
            retries: s.retries,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: s.max_retry_after,
            rate_limit_wait: None,
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}

/// The body of a declared POST.
#[derive(Clone, Copy)]
pub(crate) enum PostBody<'a> {
    /// A JSON document (`application/json`).
    Json(&'a serde_json::Value),
    /// Form fields (`application/x-www-form-urlencoded`).
    Form(&'a [(&'a str, &'a str)]),
}

/// How a request authenticates. The secret is exposed only into a header marked sensitive.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a Secret),
    /// A named header holding the secret as is (`x-api-key`).
    Header(&'static str, &'a Secret),
    /// HTTP basic auth with a fixed user name (`service_role`).
    Basic(&'static str, &'a Secret),
    /// The caller put the credentials in the headers (a SigV4 signature, a key pair); these
    /// secrets are only scrubbed from error messages.
    Signed(&'a [&'a Secret]),
}

/// The shared provider client.
#[derive(Clone)]
pub(crate) struct ProviderHttp {
    client: reqwest::Client,
    policy: RetryPolicy,
    /// Path endings a POST may go to: the read-only query endpoints the provider modules
    /// declare. Any other POST is refused without a request.
    posts: &'static [&'static str],
    /// Requests sent so far, every attempt counted, shared by every clone (the progress
    /// line shows it).
    sent: Arc<AtomicU64>,
}

/// Installs rustls' ring provider once per process (reqwest is built without one, to avoid
/// compiling aws-lc).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl ProviderHttp {
    /// Builds the client: rustls, timeouts, user agent, no redirects; POSTs allowed only to
    /// paths ending in one of `posts`.
    pub(crate) fn new(
        settings: &HttpSettings,
        policy: RetryPolicy,
        posts: &'static [&'static str],
    ) -> Result<ProviderHttp, String> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ProviderHttp {
            client,
            policy,
            posts,
            sent: Arc::default(),
        })
    }

    /// GETs `url`, retrying per the policy; returns the 2xx response with its body unread, so
    /// that callers can stream it.
    pub(crate) async fn get(
        &self,
        url: &Url,
        auth: Auth<'_>,
        headers: &[(&'static str, &str)],
    ) -> Result<Response, HttpError> {
        self.send(url, auth, headers, None).await
    }

    /// The one exception to GET-only: a POST to an endpoint a provider module declares (a
    /// read-only query, a token request), that is, one whose path ends in one of the declared
    /// `posts`. Any other path is refused without a request.
    pub(crate) async fn post(
        &self,
        url: &Url,
        auth: Auth<'_>,
        body: PostBody<'_>,
    ) -> Result<Response, HttpError> {
        if !self.posts.iter().any(|p| url.path().ends_with(p)) {
            return Err(HttpError::new(
                HttpErrorKind::Refused,
                url,
                format!(
                    "refusing a POST to {}: only the endpoints the providers declare may be posted to ({})",
                    describe(url),
                    self.posts.join(", ")
                ),
            ));
        }
        let body = match body {
            PostBody::Json(value) => {
                let bytes = serde_json::to_vec(value).map_err(|e| {
                    HttpError::new(
                        HttpErrorKind::Refused,
                        url,
                        format!("cannot encode the request: {e}"),
                    )
                })?;
                (bytes, "application/json")
            }
            PostBody::Form(pairs) => {
                let text = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
                (text.into_bytes(), "application/x-www-form-urlencoded")
            }
        };
        self.send(url, auth, &[], Some(body)).await
    }

    /// The number of requests this client and its clones have sent (each attempt counts),
    /// read while they run.
    pub(crate) fn sent(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.sent)
    }

    /// A client that waits `wait` after a 429 that does not say how long to wait (for an API
    /// that documents a fixed block after its limit).
    pub(crate) fn with_rate_limit_wait(&self, wait: Duration) -> ProviderHttp {
        let mut c = self.clone();
        c.policy.rate_limit_wait = Some(wait);
        c
    }

    async fn send(
        &self,
        url: &Url,
        auth: Auth<'_>,
        headers: &[(&'static str, &str)],
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<Response, HttpError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|_| {
                HttpError::new(
                    HttpErrorKind::Request,
                    url,
                    format!("header {name} has an invalid value"),
                )
            })?;
            map.insert(HeaderName::from_static(name), value);
        }
        let mut basic: Option<Secret> = None;
        let mut secrets: Vec<&Secret> = match auth {
            Auth::Bearer(s) => {
                map.insert(
                    AUTHORIZATION,
                    sensitive(url, &format!("Bearer {}", s.expose()))?,
                );
                vec![s]
            }
            Auth::Header(name, s) => {
                map.insert(HeaderName::from_static(name), sensitive(url, s.expose())?);
                vec![s]
            }
            Auth::Basic(user, s) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", s.expose()));
                map.insert(AUTHORIZATION, sensitive(url, &format!("Basic {token}"))?);
                // The credential as sent (base64 of user:secret) is scrubbed too.
                basic = Secret::clean(&token).ok().flatten();
                vec![s]
            }
            Auth::Signed(list) => {
                if let Some(v) = map.get_mut(AUTHORIZATION) {
                    v.set_sensitive(true);
                }
                list.to_vec()
            }
        };
        if let Some(b) = &basic {
            secrets.push(b);
        }
        let attempt = || async {
            let request = match &body {
                None => self.client.get(url.clone()),
                Some((bytes, content_type)) => self
                    .client
                    .post(url.clone())
                    .header(CONTENT_TYPE, *content_type)
                    .body(bytes.clone()),
            };
            self.sent.fetch_add(1, Ordering::Relaxed);
            let result = request.headers(map.clone()).send().await;
            let verb = if body.is_some() { "POST" } else { "GET" };
            classify(verb, url, result, &secrets, &self.policy).await
        };
        attempt
            .retry(self.policy.backoff())
            .when(|e: &Attempt| e.retry)
            .adjust(
                |e: &Attempt, next: Option<Duration>| match (e.retry_after, next) {
                    (Some(wait), Some(_)) => Some(wait),
                    (_, next) => next,
                },
            )
            .notify(|e: &Attempt, wait: Duration| {
                tracing::warn!(
                    kind = ?e.error.kind,
                    "{}; retrying in {}",
                    e.error.message,
                    humantime::format_duration(round_ms(wait))
                );
            })
            .await
            .map_err(|a| a.error)
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

fn sensitive(url: &Url, value: &str) -> Result<HeaderValue, HttpError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        HttpError::new(
            HttpErrorKind::Request,
            url,
            "the credential has characters a header cannot hold",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// One failed attempt and whether to try again.
struct Attempt {
    error: HttpError,
    retry: bool,
    retry_after: Option<Duration>,
}

/// `base` with `path` appended to its path (a base with a path prefix keeps it).
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty()
            .extend(path.trim_start_matches('/').split('/'));
    }
    url
}

/// `host/path` of a URL: what messages name (the query may hold ids; never credentials, but
/// keeping it out is simplest).
pub(crate) fn describe(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{host}:{p}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

async fn classify(
    verb: &str,
    url: &Url,
    result: reqwest::Result<Response>,
    secrets: &[&Secret],
    policy: &RetryPolicy,
) -> Result<Response, Attempt> {
    let what = format!("{verb} {}", describe(url));
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                HttpErrorKind::Timeout
            } else {
                HttpErrorKind::Transport
            };
            return Err(Attempt {
                error: HttpError::new(
                    kind,
                    url,
                    format!("{what} failed: {}", error_chain(&e.without_url())),
                ),
                retry: true,
                retry_after: None,
            });
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = parse_retry_after(resp.headers(), SystemTime::now());
    let (body, code) = body_excerpt(resp, secrets).await;
    let message = |extra: &str| {
        if body.is_empty() {
            format!("{what} answered {status}{extra}")
        } else {
            format!("{what} answered {status}{extra}: {body}")
        }
    };
    let (kind, extra, retry, retry_after) = match status {
        StatusCode::TOO_MANY_REQUESTS => match retry_after {
            Some(wait) if wait > policy.max_retry_after => (
                HttpErrorKind::RateLimited,
                format!(
                    " and asks to wait {}, longer than http.max_retry_after ({})",
                    humantime::format_duration(wait),
                    humantime::format_duration(policy.max_retry_after)
                ),
                false,
                None,
            ),
            _ => (
                HttpErrorKind::RateLimited,
                String::new(),
                true,
                retry_after.or(policy.rate_limit_wait),
            ),
        },
        StatusCode::REQUEST_TIMEOUT => (HttpErrorKind::Timeout, String::new(), true, None),
        s if s.is_server_error() => (
            HttpErrorKind::Server,
            String::new(),
            true,
            retry_after.filter(|w| *w <= policy.max_retry_after),
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            (HttpErrorKind::Auth, String::new(), false, None)
        }
        s if s.is_redirection() => (
            HttpErrorKind::Redirect,
            " (redirects are not followed)".to_owned(),
            false,
            None,
        ),
        _ => (HttpErrorKind::Client, String::new(), false, None),
    };
    let mut error = HttpError::new(kind, url, message(&extra));
    error.status = Some(status.as_u16());
    error.code = code;
    Err(Attempt {
        error,
        retry,
        retry_after,
    })
}

/// How long a provider asks to wait: `Retry-After` as delay-seconds or an HTTP-date (RFC 9110
/// §10.2.3), else `X-RateLimit-Reset` as Unix seconds (GitHub style); garbage is `None`.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(text) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let text = text.trim();
        if let Ok(secs) = text.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(text) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    let reset: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // Some APIs send milliseconds; anything past the year 5000 in seconds is taken as such.
    let reset = if reset > 95_617_584_000 {
        reset / 1000
    } else {
        reset
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The start of an error body: at most [`ERROR_BODY_LIMIT`] bytes, one line, the request's
/// credential replaced by `***`, cut to 300 characters; and the provider's error code in it.
async fn body_excerpt(mut resp: Response, secrets: &[&Secret]) -> (String, Option<String>) {
    let mut buf = Vec::new();
    while buf.len() < ERROR_BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(ERROR_BODY_LIMIT);
    let text = String::from_utf8_lossy(&buf);
    let code = error_code(&text).filter(|c| {
        !secrets
            .iter()
            .any(|s| !s.expose().is_empty() && c.contains(s.expose()))
    });
    (scrub_all(&text, secrets), code)
}

/// The provider's error code in an error body, in the shapes APIs commonly use: JSON
/// `error.errors[0].reason` (where `error.code` is only the HTTP status again), `error.code`,
/// `errorCode`, `code`, `error.type`, `errors[0].code`, `error` as a string, a `message` that
/// opens with a snake_case code and a colon (`"missing_permissions: …"`), or an XML `<Code>`
/// (S3). Only a short token is taken: letters, digits, `_`, `-`, `.`.
pub(crate) fn error_code(body: &str) -> Option<String> {
    let token = |s: &str| {
        let s = s.trim();
        (!s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .then(|| s.to_owned())
    };
    let trimmed = body.trim_start();
    if trimmed.starts_with('<') {
        let start = trimmed.find("<Code>")? + "<Code>".len();
        let len = trimmed[start..].find("</Code>")?;
        return token(&trimmed[start..start + len]);
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => token(s),
        serde_json::Value::Number(n) => token(&n.to_string()),
        _ => None,
    };
    let candidates = [
        &v["error"]["errors"][0]["reason"],
        &v["error"]["code"],
        &v["errorCode"],
        &v["code"],
        &v["error"]["type"],
        &v["errors"][0]["code"],
        &v["error"],
    ];
    if let Some(code) = candidates.into_iter().find_map(text) {
        return Some(code);
    }
    let message = v["message"].as_str()?;
    let (head, _) = message.split_once(':')?;
    (head.contains('_') && head.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .then(|| head.to_owned())
}

/// Reads a whole (small) body, refusing more than `limit` bytes; `what` names the request in
/// messages (`GET host/path (page 2)`).
pub(crate) async fn read_capped(
    mut resp: Response,
    what: &str,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let url = resp.url().clone();
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&url, what, e))? {
        if buf.len() + chunk.len() > limit {
            return Err(HttpError::new(
                HttpErrorKind::Body,
                &url,
                format!("{what}: the body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The next chunk of a streamed body.
pub(crate) async fn chunk(
    resp: &mut Response,
    what: &str,
) -> Result<Option<bytes::Bytes>, HttpError> {
    let url = resp.url().clone();
    resp.chunk().await.map_err(|e| body_error(&url, what, e))
}

/// Reads a streamed body on its own task (the network and the inflating happen there, on
/// another core) and hands it over in batches of about 256 KiB to `each` here: reading and
/// parsing overlap. At most four batches wait in between, so memory stays bounded (about
/// 1.3 MiB). An error from either side ends both.
pub(crate) async fn pipelined<E: From<HttpError>>(
    mut resp: Response,
    what: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, HttpError>>(4);
    let label = what.to_owned();
    let reader = tokio::spawn(async move {
        // Chunks are gathered into batches of about 256 KiB: one hand-over per batch, not per
        // (small) inflated chunk.
        const BATCH: usize = 256 << 10;
        let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
        loop {
            let item = match chunk(&mut resp, &label).await {
                Ok(Some(b)) => {
                    batch.extend_from_slice(&b);
                    if batch.len() < BATCH {
                        continue;
                    }
                    Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                }
                Ok(None) => {
                    if !batch.is_empty() {
                        let _ = tx.send(Ok(std::mem::take(&mut batch))).await;
                    }
                    break;
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            // The parser stopped (an error there): stop reading.
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let result = async {
        while let Some(item) = rx.recv().await {
            each(&item?)?;
        }
        Ok(())
    }
    .await;
    drop(rx);
    if result.is_err() {
        reader.abort();
    }
    let _ = reader.await;
    result
}

/// A body read error (mid-stream): a timeout, a cut connection, or a body that does not inflate.
fn body_error(url: &Url, what: &str, e: reqwest::Error) -> HttpError {
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_decode() {
        HttpErrorKind::Body
    } else {
        HttpErrorKind::Transport
    };
    HttpError::new(
        kind,
        url,
        format!(
            "{what}: reading the body failed: {}",
            error_chain(&e.without_url())
        ),
    )
}

/// Makes provider text safe for a log line: the credential replaced, control characters
/// folded, at most 300 characters.
pub(crate) fn scrub(text: &str, secret: Option<&Secret>) -> String {
    scrub_all(text, secret.as_slice())
}

/// [`scrub`] with several secrets (a key pair).
pub(crate) fn scrub_all(text: &str, secrets: &[&Secret]) -> String {
    let raw: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
    scrub_raw(text, &raw)
}

/// Replaces every spelling of every secret with `***` **before** anything is cut, removes a
/// trailing beginning of one (a secret cut by a size limit upstream), folds control
/// characters and whitespace, and cuts to 300 characters.
pub(crate) fn scrub_raw(text: &str, secrets: &[&str]) -> String {
    let patterns: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| crate::secret::spellings(s))
        .collect();
    let mut s = crate::secret::redact(text).into_owned();
    for p in &patterns {
        s = s.replace(p.as_str(), "***");
    }
    // A body cut by a byte limit may end in the first part of a secret.
    for p in &patterns {
        let min = p.chars().count().min(4);
        let cut = (min..p.len())
            .rev()
            .filter(|n| p.is_char_boundary(*n))
            .find(|n| s.ends_with(&p[..*n]));
        if let Some(n) = cut {
            s.truncate(s.len() - n);
            s.push_str("***");
        }
    }
    let folded: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    match trimmed.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed,
    }
}

/// An error and its sources on one line: hyper's `IncompleteMessage` is in the chain, not in
/// reqwest's own Display.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn backoff_jitter_is_seeded_at_random() {
        use backon::BackoffBuilder;
        let policy = RetryPolicy {
            retries: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            rate_limit_wait: None,
        };
        // Two runs of the same policy (two processes, as far as the seed goes) wait
        // differently: a constant seed would make every job retry in lock step.
        let delays: Vec<Vec<Duration>> =
            (0..4).map(|_| policy.backoff().build().collect()).collect();
        assert!(
            delays.windows(2).any(|w| w[0] != w[1]),
            "the same jitter every time: {delays:?}"
        );
    }

    #[test]
    fn every_spelling_of_a_secret_is_scrubbed_before_the_cut() {
        let secret = "s3cr3t+/=value";
        let text = format!(
            "a {secret} b {} c {} d {}",
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC),
            serde_json::to_string("s3cr3t\"q").unwrap(),
            {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(secret)
            }
        );
        let out = scrub_raw(&text, &[secret, "s3cr3t\"q"]);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(!out.contains("czNjcjN0"), "base64: {out}");
        // A body cut inside the secret: its beginning goes too.
        let out = scrub_raw("error: token s3cr3t+/", &[secret]);
        assert_eq!(out, "error: token ***");
    }

    fn client(retries: u32) -> ProviderHttp {
        let settings = HttpSettings {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            retries,
            max_retry_after: Duration::from_secs(5),
        };
        let policy = RetryPolicy {
            retries,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: settings.max_retry_after,
            rate_limit_wait: None,
        };
        ProviderHttp::new(&settings, policy, &["/query/read-only"]).unwrap()
    }

    fn url(server: &MockServer, p: &str) -> Url {
        Url::parse(&format!("{}{p}", server.uri())).unwrap()
    }

    #[tokio::test]
    async fn retries_5xx_then_gives_up_with_the_reason() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .expect(3)
            .mount(&server)
            .await;
        let http = client(2);
        let clone = http.clone();
        let err = http
            .get(&url(&server, "/x"), Auth::Signed(&[]), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Server);
        // Every attempt is a request made, counted by the client and its clones alike.
        assert_eq!(clone.sent().load(Ordering::Relaxed), 3);
        assert!(
            err.message.contains("503") && err.message.contains("busy"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn honours_retry_after_seconds() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&server)
            .await;
        let t0 = std::time::Instant::now();
        let resp = client(2)
            .get(&url(&server, "/x"), Auth::Signed(&[]), &[])
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
        assert!(
            t0.elapsed() >= Duration::from_secs(1),
            "waited {:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_fails_at_once() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "86400"))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(3)
            .get(&url(&server, "/x"), Auth::Signed(&[]), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::RateLimited);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_bodies_are_scrubbed() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(401).set_body_string("bad token SENTINEL-9 given"))
            .expect(1)
            .mount(&server)
            .await;
        let secret = Secret::clean("SENTINEL-9").unwrap().unwrap();
        let err = client(3)
            .get(&url(&server, "/x"), Auth::Bearer(&secret), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Auth);
        assert!(!err.message.contains("SENTINEL"), "{}", err.message);
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs[0].method, wiremock::http::Method::GET);
        assert_eq!(
            reqs[0].headers.get("authorization").unwrap(),
            "Bearer SENTINEL-9"
        );
        assert!(!reqs[0].url.as_str().contains("SENTINEL"));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let server = MockServer::start().await;
        let other = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/stolen", other.uri())),
            )
            .expect(1)
            .mount(&server)
            .await;
        let secret = Secret::clean("tok").unwrap().unwrap();
        let err = client(2)
            .get(&url(&server, "/x"), Auth::Header("x-api-key", &secret), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Redirect);
        assert!(other.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let u = Url::parse(&format!("http://127.0.0.1:{port}/x?secret=1")).unwrap();
        let err = client(1).get(&u, Auth::Signed(&[]), &[]).await.unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Transport);
        assert!(!err.message.contains("secret=1"), "{}", err.message);
    }

    #[tokio::test]
    async fn only_the_read_only_query_endpoint_may_be_posted_to() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_string("[]"))
            .mount(&server)
            .await;
        let body = serde_json::json!({"query": "select 1"});
        let err = client(0)
            .post(
                &url(&server, "/v1/projects/x/database/query"),
                Auth::Signed(&[]),
                PostBody::Json(&body),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Refused);
        assert!(
            server.received_requests().await.unwrap().is_empty(),
            "nothing was sent"
        );
        client(0)
            .post(
                &url(&server, "/v1/projects/x/database/query/read-only"),
                Auth::Signed(&[]),
                PostBody::Json(&body),
            )
            .await
            .unwrap();
    }

    #[test]
    fn error_codes_are_read_from_the_common_shapes() {
        let code = |b: &str| error_code(b);
        assert_eq!(
            code(r#"{"error":{"code":"forbidden","message":"Not authorized"}}"#).as_deref(),
            Some("forbidden")
        );
        assert_eq!(
            code(r#"{"type":"error","error":{"type":"authentication_error","message":"x"}}"#)
                .as_deref(),
            Some("authentication_error")
        );
        assert_eq!(
            code(r#"{"error":{"message":"m","type":"invalid_request_error","code":null}}"#)
                .as_deref(),
            Some("invalid_request_error")
        );
        assert_eq!(
            code(r#"{"errorCode":"NOT_GRANTED_CALL","httpCode":"403 Forbidden"}"#).as_deref(),
            Some("NOT_GRANTED_CALL")
        );
        assert_eq!(
            code(r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#)
                .as_deref(),
            Some("10000")
        );
        assert_eq!(
            code(r#"{"message":"missing_permissions: database_read"}"#).as_deref(),
            Some("missing_permissions")
        );
        assert_eq!(
            code("<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>m</Message></Error>")
                .as_deref(),
            Some("NoSuchBucket")
        );
        assert_eq!(
            code(r#"{"error":{"code":403,"message":"Access Denied: Table p:d.t","errors":[{"message":"Access Denied","domain":"global","reason":"accessDenied"}],"status":"PERMISSION_DENIED"}}"#)
                .as_deref(),
            Some("accessDenied")
        );
        // Free text is not a code.
        assert_eq!(code(r#"{"message":"Access denied"}"#), None);
        assert_eq!(code(r#"{"error":"bad token with spaces"}"#), None);
        assert_eq!(code("busy"), None);
    }

    #[tokio::test]
    async fn the_error_code_travels_but_never_a_credential() {
        let server = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_string(r#"{"message":"missing_permissions: database_read"}"#),
            )
            .mount(&server)
            .await;
        Mock::given(path("/y"))
            .respond_with(ResponseTemplate::new(403).set_body_string(r#"{"code":"SENTINEL-9"}"#))
            .mount(&server)
            .await;
        let secret = Secret::clean("SENTINEL-9").unwrap().unwrap();
        let err = client(0)
            .get(&url(&server, "/x"), Auth::Bearer(&secret), &[])
            .await
            .unwrap_err();
        assert_eq!(err.status, Some(403));
        assert_eq!(err.code.as_deref(), Some("missing_permissions"));
        let err = client(0)
            .get(&url(&server, "/y"), Auth::Bearer(&secret), &[])
            .await
            .unwrap_err();
        assert_eq!(err.code, None);
        assert!(!err.message.contains("SENTINEL"), "{}", err.message);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("garbage"));
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-3"));
        assert_eq!(parse_retry_after(&h, now), None);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(120)));

        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000005"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(5)));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("1700000005000"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(5)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1600000000"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        // Retry-After wins when both are present.
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(2)));
    }
}
