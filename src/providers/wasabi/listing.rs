//! The S3 side: ListObjectsV2 listings signed with SigV4 (path-style), fanned out over
//! prefixes discovered level by level until there are enough to keep `concurrency` listings
//! busy, and read page by page, each page parsed event by event (no tree).

use std::collections::HashSet;
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::events::Event;
use url::Url;

use super::{PAGE_LIMIT, Wasabi};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe};
use crate::providers::Context;

/// Pages per listing before giving up (`pagination`): 100 million objects.
const MAX_PAGES: usize = 100_000;

/// The characters SigV4 leaves unencoded in a query: `A-Z a-z 0-9 - _ . ~`.
const AWS_QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl Wasabi {
    /// Signs a GET of `url` for S3 (SigV4, service `s3`, the configured region).
    fn sign(
        &self,
        url: &Url,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, CollectError> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };
        let internal =
            |e: String| CollectError::new(Reason::Internal, format!("SigV4 signing failed: {e}"));
        let creds = aws_credential_types::Credentials::new(
            self.access_key.expose(),
            self.secret_key.expose(),
            None,
            None,
            "cost-exporter",
        );
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| internal(e.to_string()))?
            .into();
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let request = SignableRequest::new(
            "GET",
            url.as_str(),
            std::iter::once(("host", host.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| internal(e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| internal(e.to_string()))?
            .into_parts();
        Ok(instructions
            .headers()
            .filter_map(|(name, value)| {
                let name: &'static str = match name {
                    "authorization" => "authorization",
                    "x-amz-date" => "x-amz-date",
                    "x-amz-content-sha256" => "x-amz-content-sha256",
                    "x-amz-security-token" => "x-amz-security-token",
                    _ => return None,
                };
                Some((name, value.to_owned()))
            })
            .collect())
    }

    pub(super) fn list_url(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: bool,
        token: Option<&str>,
    ) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().push(bucket);
        }
        let mut q = vec![
            ("list-type", "2".to_owned()),
            ("max-keys", "1000".to_owned()),
        ];
        if let Some(t) = token {
            q.push(("continuation-token", t.to_owned()));
        }
        if let Some(p) = prefix {
            q.push(("prefix", p.to_owned()));
        }
        if delimiter {
            q.push(("delimiter", "/".to_owned()));
        }
        let query: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, AWS_QUERY)))
            .collect();
        url.set_query(Some(&query.join("&")));
        url
    }

    /// A SigV4-signed GET of `url`; S3 errors name the bucket and their code.
    pub(super) async fn signed_get(
        &self,
        cx: &Context,
        url: &Url,
        bucket: &str,
    ) -> Result<reqwest::Response, CollectError> {
        let headers = self.sign(url, SystemTime::now())?;
        let refs: Vec<(&'static str, &str)> =
            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cx.http
            .get(
                url,
                Auth::Signed(&[&self.access_key, &self.secret_key]),
                &refs,
            )
            .await
            .map_err(|e| s3_error(e.into(), bucket))
    }

    /// Lists everything under `prefix`, page by page; with `delimiter`, only the top level
    /// (objects there, and the common prefixes below it).
    async fn list(
        &self,
        cx: &Context,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: bool,
    ) -> Result<Listing, CollectError> {
        let mut total = Listing::default();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let url = self.list_url(bucket, prefix, delimiter, token.as_deref());
            let what = format!("GET {}", describe(&url));
            let resp = self.signed_get(cx, &url, bucket).await?;
            let body = crate::http::read_capped(resp, &what, PAGE_LIMIT).await?;
            let page = parse_page(&body)
                .map_err(|e| CollectError::new(e.0, format!("{what}: {}", e.1)))?;
            total.bytes += page.bytes;
            total.objects += page.objects;
            total.prefixes.extend(page.prefixes);
            match (page.truncated, page.next) {
                (false, _) => return Ok(total),
                (true, None) => {
                    return Err(CollectError::new(
                        Reason::Pagination,
                        format!("{what}: IsTruncated without NextContinuationToken"),
                    ));
                }
                (true, Some(next)) => {
                    // A 64-bit hash per token, not the token: memory stays small however long
                    // the tokens are (pages are capped too).
                    if !seen.insert(token_hash(&next)) {
                        return Err(CollectError::new(
                            Reason::Pagination,
                            format!(
                                "{what}: the continuation token repeats; stopping instead of looping"
                            ),
                        ));
                    }
                    token = Some(next);
                }
            }
        }
        Err(CollectError::new(
            Reason::Pagination,
            format!("bucket {bucket}: more than {MAX_PAGES} pages"),
        ))
    }

    /// The whole bucket, fanned out whatever its layout: the top level is listed with a
    /// delimiter; while there are fewer prefixes than `concurrency` listings to keep busy, the
    /// next level down is discovered the same way (each prefix listed with a delimiter, its own
    /// objects counted there, its sub-prefixes the next level), within [`MAX_DEPTH`] levels and
    /// [`MAX_DISCOVERY`] prefixes; then every prefix found is listed to its end, `concurrency`
    /// at once.
    ///
    /// Exact: a delimited listing of P counts the objects whose key has no `/` after P (a key
    /// ending in `/`, a "folder" object, belongs to the prefix it ends and is counted in that
    /// prefix's listing), and its common prefixes are disjoint, so every key is counted once.
    pub(super) async fn bucket(&self, cx: &Context, bucket: &str) -> Result<Listing, CollectError> {
        let top = self.list(cx, bucket, None, true).await?;
        let mut total = Listing {
            bytes: top.bytes,
            objects: top.objects,
            prefixes: Vec::new(),
        };
        let mut frontier = top.prefixes;
        let mut discovered = 0usize;
        for _ in 0..MAX_DEPTH {
            if frontier.is_empty()
                || frontier.len() >= self.concurrency
                || discovered + frontier.len() > MAX_DISCOVERY
            {
                break;
            }
            discovered += frontier.len();
            let levels: Vec<Listing> = stream::iter(frontier)
                .map(|p: String| async move { self.list(cx, bucket, Some(&p), true).await })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            frontier = Vec::new();
            for l in levels {
                total.bytes += l.bytes;
                total.objects += l.objects;
                frontier.extend(l.prefixes);
            }
        }
        tracing::debug!(
            %bucket,
            ranges = frontier.len(),
            discovery_listings = discovered + 1,
            "listing the ranges"
        );
        let parts: Vec<Listing> = stream::iter(frontier)
            .map(|p: String| async move { self.list(cx, bucket, Some(&p), false).await })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        for p in parts {
            total.bytes += p.bytes;
            total.objects += p.objects;
        }
        Ok(total)
    }
}

/// Levels descended to find enough prefixes to list concurrently.
const MAX_DEPTH: usize = 4;
/// Prefixes listed with a delimiter to find them (each is one or more requests).
const MAX_DISCOVERY: usize = 256;

/// Maps an S3 error answer to a message that names the S3 error code and the bucket.
fn s3_error(mut e: CollectError, bucket: &str) -> CollectError {
    e.message = match e.code.as_deref() {
        Some(code) => format!("bucket {bucket}: S3 error {code}: {}", e.message),
        None => format!("bucket {bucket}: {}", e.message),
    };
    e
}

/// Sums of a listing.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Listing {
    /// Σ Size.
    pub(super) bytes: f64,
    /// Number of `Contents` (objects).
    pub(super) objects: f64,
    /// `CommonPrefixes` (delimiter listings only).
    pub(super) prefixes: Vec<String>,
}

/// One parsed ListObjectsV2 page.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Page {
    /// Σ Size of the page.
    pub(super) bytes: f64,
    /// Objects on the page.
    pub(super) objects: f64,
    /// Common prefixes on the page.
    pub(super) prefixes: Vec<String>,
    /// `IsTruncated`.
    pub(super) truncated: bool,
    /// `NextContinuationToken`.
    pub(super) next: Option<String>,
}

/// A continuation token's hash, for loop detection.
fn token_hash(token: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

/// Parses a `ListBucketResult` page event by event (no tree is built), or an S3 `<Error>`.
pub(super) fn parse_page(xml: &[u8]) -> Result<Page, (Reason, String)> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut page = Page::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut root_seen = false;
    let mut error_code: Option<String> = None;
    let bad = |e: String| (Reason::Decode, e);
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| bad(format!("bad XML at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(s) => {
                let name = s.name().as_ref().to_owned();
                if path.is_empty() {
                    root_seen = true;
                    if name != "ListBucketResult" && name != "Error" {
                        return Err(bad(format!("unexpected root <{name}>")));
                    }
                }
                if name == "Contents" && path.len() == 1 {
                    page.objects += 1.0;
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(t.as_ref()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*r {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(bad(format!("unknown entity &{other};"))),
                    },
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                match p.as_slice() {
                    ["ListBucketResult", "Contents", "Size"] => {
                        let n = text
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|n| n.is_finite() && *n >= 0.0)
                            .ok_or_else(|| bad(format!("Size {text:?} is not a byte count")))?;
                        page.bytes += n;
                    }
                    ["ListBucketResult", "IsTruncated"] => page.truncated = text.trim() == "true",
                    ["ListBucketResult", "NextContinuationToken"] => {
                        page.next = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
                    }
                    ["ListBucketResult", "CommonPrefixes", "Prefix"] => {
                        page.prefixes.push(text.clone())
                    }
                    ["Error", "Code"] => error_code = Some(text.trim().to_owned()),
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if let Some(code) = error_code {
        let reason = match code.as_str() {
            "AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" => Reason::Auth,
            "SlowDown" => Reason::RateLimited,
            _ => Reason::Http4xx,
        };
        return Err((reason, format!("S3 error {code}")));
    }
    if !root_seen {
        return Err(bad("empty body, expected <ListBucketResult>".into()));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_parsed_without_a_tree() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>3</KeyCount>
<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>tok/=+1</NextContinuationToken>
<Contents><Key>a&amp;b</Key><Size>10</Size></Contents><Contents><Key>c</Key><Size>5</Size></Contents>
<CommonPrefixes><Prefix>logs/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let p = parse_page(xml).unwrap();
        assert_eq!(
            p,
            Page {
                bytes: 15.0,
                objects: 2.0,
                prefixes: vec!["logs/".into()],
                truncated: true,
                next: Some("tok/=+1".into())
            }
        );
    }

    #[test]
    fn s3_errors_become_bounded_reasons() {
        let err = |code: &str| {
            parse_page(format!("<Error><Code>{code}</Code><Message>m</Message></Error>").as_bytes())
                .unwrap_err()
        };
        assert_eq!(err("SignatureDoesNotMatch").0, Reason::Auth);
        assert_eq!(err("NoSuchBucket").0, Reason::Http4xx);
        assert_eq!(err("SlowDown").0, Reason::RateLimited);
        assert_eq!(parse_page(b"").unwrap_err().0, Reason::Decode);
        assert_eq!(
            parse_page(
                b"<ListBucketResult><Contents><Size>-1</Size></Contents></ListBucketResult>"
            )
            .unwrap_err()
            .0,
            Reason::Decode
        );
    }
}
