//! How the OVH collector authenticates: application key signatures with the server's clock,
//! or an OAuth2 service account's bearer token; and what an OVH error means for the user.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{Config, NAME, Ovh};
use crate::config::Section;
use crate::error::{CollectError, Reason};
use crate::http::{Auth, PostBody, describe, read_capped};
use crate::providers::Context;
use crate::secret::Secret;

/// Largest body read from OVH (a bill, a service, a list of ids).
const BODY_LIMIT: usize = 4 << 20;

/// The credentials of one of OVH's two ways for a script.
pub(super) enum Credentials {
    /// Application key, application secret and consumer key: each request signed.
    Signed {
        application_key: Secret,
        application_secret: Secret,
        consumer_key: Secret,
    },
    /// An OAuth2 service account: client credentials for a bearer token.
    OAuth2 {
        client_id: Secret,
        client_secret: Secret,
    },
}

impl Credentials {
    /// What authenticates, for messages.
    /// The secrets the rate limit counts against.
    pub(super) fn secrets(&self) -> Vec<&Secret> {
        match self {
            Credentials::Signed {
                application_key,
                consumer_key,
                ..
            } => vec![application_key, consumer_key],
            Credentials::OAuth2 { client_id, .. } => vec![client_id],
        }
    }

    pub(super) fn describe(&self) -> &'static str {
        match self {
            Credentials::Signed { .. } => "consumer key",
            Credentials::OAuth2 { .. } => "service account",
        }
    }
}

/// Reads the credentials of the section: one complete way, or none; anything else is a
/// problem naming the variables to set.
pub(super) fn credentials(s: &mut Section<'_>, raw: &Config) -> Option<Credentials> {
    let ak = s.secret("application_key", &raw.application_key);
    let secret = s.secret("application_secret", &raw.application_secret);
    let ck = s.secret("consumer_key", &raw.consumer_key);
    let id = s.secret("client_id", &raw.client_id);
    let cs = s.secret("client_secret", &raw.client_secret);
    let signed_any = ak.is_some() || secret.is_some() || ck.is_some();
    let oauth_any = id.is_some() || cs.is_some();
    if signed_any && oauth_any {
        s.fail_section(
            "set either OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET and OVH_CONSUMER_KEY, or OVH_CLIENT_ID and OVH_CLIENT_SECRET, not both",
        );
        return None;
    }
    if signed_any {
        let missing: Vec<&str> = [
            (ak.is_none(), "OVH_APPLICATION_KEY"),
            (secret.is_none(), "OVH_APPLICATION_SECRET"),
            (ck.is_none(), "OVH_CONSUMER_KEY"),
        ]
        .iter()
        .filter(|(m, _)| *m)
        .map(|(_, n)| *n)
        .collect();
        return match (ak, secret, ck) {
            (Some(application_key), Some(application_secret), Some(consumer_key)) => {
                Some(Credentials::Signed {
                    application_key,
                    application_secret,
                    consumer_key,
                })
            }
            _ => {
                s.fail_section(format!(
                    "the application key, secret and consumer key go together; {} is missing",
                    missing.join(" and ")
                ));
                None
            }
        };
    }
    match (id, cs) {
        (Some(client_id), Some(client_secret)) => Some(Credentials::OAuth2 {
            client_id,
            client_secret,
        }),
        (Some(_), None) | (None, Some(_)) => {
            s.fail_section("OVH_CLIENT_ID and OVH_CLIENT_SECRET must be set together");
            None
        }
        (None, None) => None,
    }
}

/// How this run's requests authenticate.
pub(super) enum Session {
    /// Signed with the server's clock: `delta` seconds to add to the local clock.
    Signed { delta: i64 },
    /// A bearer token from the token endpoint.
    Bearer(Secret),
}

/// The `$1$` signature: SHA-1 of `secret+consumer+method+url+body+timestamp`, hex.
pub(super) fn signature(
    application_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: i64,
) -> String {
    let text = format!("{application_secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    format!("$1${}", hex::encode(digest.as_ref()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

impl Ovh {
    /// Opens the run's session: the server's clock for signatures, or a bearer token.
    pub(super) async fn session(&self, cx: &Context) -> Result<Session, CollectError> {
        match &self.credentials {
            Credentials::Signed {
                application_key,
                application_secret,
                consumer_key,
            } => {
                self.pacer.wait().await;
                let url = self.url("/auth/time", &[]);
                let what = format!("GET {}", describe(&url));
                // No credential is sent, but every one is scrubbed from what comes back.
                let secrets = [application_secret, consumer_key, application_key];
                let resp = cx.http.get(&url, Auth::Signed(&secrets), &[]).await?;
                let body = read_capped(resp, &what, 64).await?;
                let server: i64 = String::from_utf8_lossy(&body).trim().parse().map_err(|_| {
                    CollectError::new(
                        Reason::Decode,
                        format!(
                            "{what}: not a Unix time ({:?})",
                            String::from_utf8_lossy(&body)
                        ),
                    )
                })?;
                let delta = server - unix_now();
                if delta.abs() > 30 {
                    tracing::info!(
                        provider = NAME,
                        "the local clock is {delta} s off OVH's: signing with OVH's time"
                    );
                }
                Ok(Session::Signed { delta })
            }
            Credentials::OAuth2 {
                client_id,
                client_secret,
            } => {
                self.pacer.wait().await;
                let url = &self.token_url;
                let what = format!("POST {}", describe(url));
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.expose()),
                    ("client_secret", client_secret.expose()),
                    ("scope", "all"),
                ];
                let resp = cx
                    .http
                    .post(url, Auth::Signed(&[client_id, client_secret]), PostBody::Form(&form))
                    .await
                    .map_err(|e| {
                        CollectError::from(e).hint_on(
                            &[400, 401, 403],
                            "the token endpoint refused the service account: check OVH_CLIENT_ID and OVH_CLIENT_SECRET",
                        )
                    })?;
                let body = read_capped(resp, &what, BODY_LIMIT).await?;
                let token: Token = serde_json::from_slice(&body).map_err(|e| {
                    CollectError::new(
                        Reason::Decode,
                        format!("{what}: not a token response ({e})"),
                    )
                })?;
                match Secret::clean(&token.access_token) {
                    Ok(Some(t)) => Ok(Session::Bearer(t)),
                    _ => Err(CollectError::new(
                        Reason::Decode,
                        format!("{what}: the access token is empty or malformed"),
                    )),
                }
            }
        }
    }

    /// A paced GET of `url`, authenticated for the session.
    pub(super) async fn get(
        &self,
        cx: &Context,
        session: &Session,
        url: &Url,
    ) -> Result<Response, CollectError> {
        self.pacer.wait().await;
        let result = match (session, &self.credentials) {
            (
                Session::Signed { delta },
                Credentials::Signed {
                    application_key,
                    application_secret,
                    consumer_key,
                },
            ) => {
                let t = unix_now() + delta;
                // Sign exactly the URL that goes on the wire, query included.
                let sig = signature(
                    application_secret.expose(),
                    consumer_key.expose(),
                    "GET",
                    url.as_str(),
                    "",
                    t,
                );
                let t = t.to_string();
                cx.http
                    .get(
                        url,
                        Auth::Signed(&[application_secret, consumer_key, application_key]),
                        &[
                            ("x-ovh-application", application_key.expose()),
                            ("x-ovh-consumer", consumer_key.expose()),
                            ("x-ovh-timestamp", &t),
                            ("x-ovh-signature", &sig),
                        ],
                    )
                    .await
            }
            (Session::Bearer(token), _) => cx.http.get(url, Auth::Bearer(token), &[]).await,
            (Session::Signed { .. }, Credentials::OAuth2 { .. }) => {
                return Err(CollectError::new(
                    Reason::Internal,
                    "a signed session without application keys",
                ));
            }
        };
        result.map_err(|e| hint(e.into(), session))
    }

    /// A GET whose body is JSON of type `T`.
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        cx: &Context,
        session: &Session,
        url: &Url,
    ) -> Result<T, CollectError> {
        let what = format!("GET {}", describe(url));
        let resp = self.get(cx, session, url).await?;
        let body = read_capped(resp, &what, BODY_LIMIT).await?;
        serde_json::from_slice(&body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("{what}: not the documented shape ({e})"),
            )
        })
    }
}

/// What to fix, for the errors OVH documents (`errorCode`) and a refused bearer token.
fn hint(mut e: CollectError, session: &Session) -> CollectError {
    let fix = match (e.code.as_deref(), session) {
        (Some("NOT_GRANTED_CALL"), _) => Some(
            "the consumer key has no access rule for this call: create one with GET on /me/bill, /me/bill/*, /me/refund, /me/refund/*, /services and /services/* (README: OVHcloud)",
        ),
        (Some("INVALID_SIGNATURE"), _) => Some(
            "OVH refused the signature: check OVH_APPLICATION_SECRET and OVH_CONSUMER_KEY; requests are signed with OVH's own clock (/auth/time), so a local clock that jumps during the run can also cause it",
        ),
        (Some("INVALID_CREDENTIAL" | "NOT_CREDENTIAL"), _) => Some(
            "the consumer key is unknown, expired or not yet validated: open its validationUrl, or create a new one",
        ),
        (Some("INVALID_KEY"), _) => {
            Some("OVH does not know this application key (OVH_APPLICATION_KEY)")
        }
        (_, Session::Bearer(_)) if e.status == Some(401) => Some(
            "the OAuth2 access token was refused (expired or revoked): check the service account",
        ),
        (_, Session::Bearer(_)) if e.status == Some(403) => Some(
            "the service account's IAM policy does not allow this call: grant account:apiovh:me/bill/get, account:apiovh:me/bill/details/get, account:apiovh:me/refund/get, account:apiovh:me/refund/details/get and account:apiovh:services/get (README: OVHcloud)",
        ),
        _ => None,
    };
    if let Some(fix) = fix {
        e.message = format!("{} ({fix})", e.message);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_sha1_of_the_documented_fields() {
        // Python: hashlib.sha1(b"AS+CK+GET+https://eu.api.ovh.com/1.0/me/bill?a=1++1700000000")
        let sig = signature(
            "AS",
            "CK",
            "GET",
            "https://eu.api.ovh.com/1.0/me/bill?a=1",
            "",
            1_700_000_000,
        );
        assert_eq!(sig, "$1$53ed1e78c6ba3662c5b8078483041321c00004d2");
    }
}
