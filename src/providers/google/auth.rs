//! How the Google collector authenticates: a service-account key signs a JWT (RS256) that the
//! token endpoint exchanges for an access token (the token request is one of the two POSTs the
//! provider declares), or, on GCE and GKE (Workload Identity), the metadata server hands out
//! the attached service account's token. The token is kept for the run only.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use url::Url;

use crate::error::{CollectError, Reason};
use crate::http::{Auth, HttpErrorKind, PostBody, describe, read_capped};
use crate::providers::Context;
use crate::secret::Secret;

/// The scope asked for: read-only, which BigQuery's `jobs.query`, `jobs.getQueryResults` and
/// `tables.get` accept (their discovery document lists it); the token can change nothing.
pub(super) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";
/// Where a key's JWT is exchanged, unless the key file names its own `token_uri`.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The path ending of the token endpoint: one of the two paths the job POSTs to.
pub(super) const TOKEN_PATH: &str = "/token";
/// The OAuth2 grant of a signed JWT (RFC 7523).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The metadata server's token of the attached service account (GCE, GKE Workload Identity).
pub(super) const METADATA_TOKEN_URL: &str =
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
/// A JWT asks for a token for at most an hour, Google's maximum.
const JWT_LIFETIME: u64 = 3600;
/// A token is used until this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Largest token response read.
const BODY_LIMIT: usize = 64 << 10;

/// Where the run's access token comes from.
pub(super) enum Credentials {
    /// A service-account key file.
    Key(Box<ServiceAccount>),
    /// The metadata server at this URL.
    Metadata(Url),
}

impl Credentials {
    /// What authenticates, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Credentials::Key(sa) => format!("service account {}", sa.email),
            Credentials::Metadata(_) => "metadata server's service account".to_owned(),
        }
    }
}

/// A service-account key, read from its JSON key file.
pub(super) struct ServiceAccount {
    /// `client_email`: the JWT's issuer.
    pub(super) email: String,
    key: RsaKeyPair,
    /// `private_key_id`: the JWT's `kid`.
    key_id: Option<Secret>,
    /// The key's DER in base64, one line: only to scrub it from what a server echoes.
    key_text: Option<Secret>,
    /// `token_uri`: where the JWT is exchanged (also its audience).
    pub(super) token_uri: String,
    /// `project_id`: the service account's project, the default for running queries.
    pub(super) project_id: Option<String>,
}

/// The fields of a key file the job reads; a key file has more, which are ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

impl ServiceAccount {
    /// Reads a key file's JSON. A problem is said without quoting the file: its text is the
    /// credential.
    pub(super) fn parse(text: &str) -> Result<ServiceAccount, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            // serde's message may quote a value: only the position and kind are told.
            format!(
                "is not a service-account key file: invalid JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some("authorized_user") => {
                return Err(
                    "holds a user's credentials (type authorized_user); the job needs a service account's key (type service_account)"
                        .into(),
                );
            }
            Some("external_account") => {
                return Err(
                    "holds workload identity federation settings (type external_account), which this job does not read; use a service-account key, or auth = \"metadata\" on GCE or GKE"
                        .into(),
                );
            }
            _ => {
                return Err(
                    "is not a service-account key file (its type is not service_account)".into(),
                );
            }
        }
        let email = file
            .client_email
            .map(|e| e.trim().to_owned())
            .filter(|e| {
                !e.is_empty()
                    && e.len() <= 320
                    && e.contains('@')
                    && !e.chars().any(char::is_whitespace)
            })
            .ok_or("has no client_email")?;
        let pem = file.private_key.ok_or("has no private_key")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            // The PEM error may quote a line of the key: not repeated.
            "has a private_key that is not a PEM PKCS#8 private key (-----BEGIN PRIVATE KEY-----)"
                .to_owned()
        })?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("has a private_key that is not a usable RSA key ({e})"))?;
        let key_text = Secret::clean(&STANDARD.encode(der.secret_pkcs8_der()))
            .ok()
            .flatten();
        let key_id = file
            .private_key_id
            .as_deref()
            .and_then(|id| Secret::clean(id).ok().flatten());
        let token_uri = file
            .token_uri
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        Ok(ServiceAccount {
            email,
            key,
            key_id,
            key_text,
            token_uri,
            project_id: file
                .project_id
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
        })
    }

    /// The signed JWT asking `aud` for a read-only token, issued at `now` (Unix seconds),
    /// valid for an hour.
    pub(super) fn assertion(&self, aud: &str, now: u64) -> Result<String, CollectError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::Value::from(kid.expose());
        }
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": aud,
            "iat": now,
            "exp": now + JWT_LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| CollectError::new(Reason::Internal, "the JWT could not be signed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A token endpoint's or the metadata server's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The run's access token, fetched once and kept until shortly before it expires.
#[derive(Default)]
pub(super) struct TokenCache(tokio::sync::Mutex<Option<(Secret, Instant)>>);

impl TokenCache {
    /// The token: the kept one while it is valid, else a new one from `credentials`.
    pub(super) async fn get(
        &self,
        cx: &Context,
        credentials: &Credentials,
    ) -> Result<Secret, CollectError> {
        let mut kept = self.0.lock().await;
        if let Some((token, until)) = kept.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch(cx, credentials).await?;
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        *kept = Some((token.clone(), until));
        Ok(token)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new token and how long it lives.
async fn fetch(
    cx: &Context,
    credentials: &Credentials,
) -> Result<(Secret, Duration), CollectError> {
    let (what, body) = match credentials {
        Credentials::Key(sa) => {
            let url = Url::parse(&sa.token_uri).map_err(|_| {
                CollectError::new(Reason::Config, "the key file's token_uri is not a URL")
            })?;
            let what = format!("POST {}", describe(&url));
            // The clock of the JWT is the machine's own: Google checks iat and exp against
            // its clock, so the run's clock (which tests may set) is not the one to use.
            let assertion = sa.assertion(&sa.token_uri, unix_now())?;
            let assertion = Secret::clean(&assertion)
                .ok()
                .flatten()
                .ok_or_else(|| CollectError::new(Reason::Internal, "the signed JWT is empty"))?;
            let form = [
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.expose()),
            ];
            let mut scrub: Vec<&Secret> = vec![&assertion];
            scrub.extend(sa.key_id.iter());
            scrub.extend(sa.key_text.iter());
            let resp = cx
                .http
                .post(&url, Auth::Signed(&scrub), PostBody::Form(&form))
                .await
                .map_err(|e| {
                    let refused = e.kind == HttpErrorKind::Client || e.kind == HttpErrorKind::Auth;
                    let mut e = CollectError::from(e).hint_on(
                        &[400, 401, 403],
                        &format!(
                            "Google refused the service account's signed JWT: the key was deleted or disabled, the service account {} is disabled, or this machine's clock is more than a few minutes off; make a new key (GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_CREDENTIALS)",
                            sa.email
                        ),
                    );
                    if refused {
                        e.reason = Reason::Auth;
                    }
                    e
                })?;
            (
                what,
                read_capped(resp, "the token response", BODY_LIMIT).await?,
            )
        }
        Credentials::Metadata(url) => {
            let what = format!("GET {}", describe(url));
            let resp = cx
                .http
                .get(url, Auth::Signed(&[]), &[("metadata-flavor", "Google")])
                .await
                .map_err(|e| {
                    let unreachable = matches!(
                        e.kind,
                        HttpErrorKind::Transport | HttpErrorKind::Timeout
                    );
                    let mut e = CollectError::from(e).hint_on(
                        &[403, 404],
                        "the metadata server has no service account for this workload: attach one to the VM, or bind the Kubernetes service account to a Google service account (Workload Identity)",
                    );
                    if unreachable {
                        e.message = format!(
                            "{} (auth = \"metadata\" reads the token of the GCE or GKE metadata server, which this machine does not reach; elsewhere use a service-account key)",
                            e.message
                        );
                    }
                    e
                })?;
            (
                what,
                read_capped(resp, "the token response", BODY_LIMIT).await?,
            )
        }
    };
    let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
        CollectError::new(
            Reason::Decode,
            format!(
                "{what}: not a token response ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let secret = match Secret::clean(&token.access_token) {
        Ok(Some(t)) => t,
        _ => {
            return Err(CollectError::new(
                Reason::Decode,
                format!("{what}: the access token is empty or malformed"),
            ));
        }
    };
    let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600).min(JWT_LIFETIME));
    Ok((secret, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway key pair for unit tests (generated with openssl for this purpose only).
    const TEST_KEY: &str =
        include_str!("../../../tests/fixtures/google/test-service-account.key.pem");

    fn key_file(private_key: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "cost-exporter-test",
            "private_key_id": "0123456789abcdef",
            "private_key": private_key,
            "client_email": "reader@cost-exporter-test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }

    #[test]
    fn a_key_file_signs_an_rs256_jwt_with_the_documented_claims() {
        let sa = ServiceAccount::parse(&key_file(TEST_KEY)).unwrap();
        assert_eq!(sa.project_id.as_deref(), Some("cost-exporter-test"));
        let jwt = sa.assertion(&sa.token_uri, 1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "0123456789abcdef");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"].as_u64(), Some(1_800_003_600));
        // Verified with the key's own public half.
        let public = sa.key.public().as_ref().to_vec();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        )
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
    }

    #[test]
    fn a_bad_key_file_is_refused_without_quoting_it() {
        let secret_line = "MIIEvSECRETSECRET";
        for (text, needle) in [
            (
                "{\"type\": \"service_account\", \"private_key\": 12}".to_owned(),
                "invalid JSON",
            ),
            (
                format!("{{\"private_key\": \"{secret_line}\"}}"),
                "type is not",
            ),
            (
                serde_json::json!({"type": "authorized_user", "refresh_token": secret_line})
                    .to_string(),
                "authorized_user",
            ),
            (
                key_file(&format!(
                    "-----BEGIN RSA PRIVATE KEY-----\n{secret_line}\n-----END RSA PRIVATE KEY-----\n"
                )),
                "PKCS#8",
            ),
            (
                key_file(&format!(
                    "-----BEGIN PRIVATE KEY-----\n{secret_line}\n-----END PRIVATE KEY-----\n"
                )),
                "private_key",
            ),
        ] {
            let err = ServiceAccount::parse(&text).err().unwrap();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }
}
