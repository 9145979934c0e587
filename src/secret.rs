//! `Secret`: a credential that never prints, trimmed and checked on the way in.
//!
//! Every token, key and password the job handles lives in a [`Secret`]. Its `Debug` is `***`,
//! it has no `Display` and no `Serialize`, and the only way to read it is
//! [`Secret::expose`], called where an HTTP header is built (and marked sensitive).
//!
//! Every secret is also registered, in each spelling it can travel in (as is, base64,
//! percent- and form-encoded, JSON-escaped), for the process: [`redact`] replaces them all
//! with `***`. The log writer, the metric label values and `check`'s output pass through it, so
//! a secret a provider echoes back (in an error body, or inside a 2xx answer that then fails to
//! decode) never reaches a log line or a metric, whichever route its message took.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};

/// A credential. Cloning is cheap enough for the handful the job holds.
#[derive(Clone)]
pub(crate) struct Secret(SecretString);

/// Why a raw credential was refused. Never carries the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretProblem {
    /// Whitespace or a control character inside the value (after trimming both ends).
    InnerWhitespace,
}

impl fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretProblem::InnerWhitespace => {
                f.write_str("contains whitespace or a control character inside the value")
            }
        }
    }
}

impl Secret {
    /// Cleans a raw value: surrounding whitespace (spaces, tabs, CR, LF) is trimmed; an empty
    /// result means "not set" (`Ok(None)`); whitespace or control characters left inside are an
    /// error, since no provider issues such tokens and they usually mean a pasting mistake.
    pub(crate) fn clean(raw: &str) -> Result<Option<Secret>, SecretProblem> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SecretProblem::InnerWhitespace);
        }
        register(trimmed);
        Ok(Some(Secret(SecretString::from(trimmed.to_owned()))))
    }

    /// The value, for building a request header. Call nowhere else.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Secrets shorter than this are not registered for [`redact`]: no provider issues one, and
/// replacing every occurrence of two letters would garble every log line.
const MIN_REGISTERED: usize = 6;

/// The spellings of every secret of the process, longest first.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `secret`'s spellings for [`redact`].
fn register(secret: &str) {
    if secret.len() < MIN_REGISTERED {
        return;
    }
    let mut all = match REGISTERED.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    for s in spellings(secret) {
        if s.len() >= MIN_REGISTERED && !all.contains(&s) {
            all.push(s);
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The spellings a secret takes on the wire and in echoed bodies: as is, base64 (as HTTP
/// basic auth carries `user:secret`; a basic token is registered whole as well),
/// percent-encoded (every non-alphanumeric byte, and RFC 3986's unreserved set kept),
/// form-encoded (as an OAuth2 client secret travels), and JSON-escaped. Longest first.
pub(crate) fn spellings(secret: &str) -> Vec<String> {
    use base64::Engine;
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut out = vec![secret.to_owned()];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        out.push(engine.encode(secret).trim_end_matches('=').to_owned());
    }
    out.push(utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string());
    out.push(utf8_percent_encode(secret, UNRESERVED).to_string());
    out.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json.trim_matches('"').to_owned());
    }
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every spelling of every secret of the process replaced by `***`. Borrowed
/// when there is nothing to replace.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let all = match REGISTERED.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut out = Cow::Borrowed(text);
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), "***"));
        }
    }
    out
}

/// A credential as it arrives from the configuration, before [`Secret::clean`].
///
/// Accepts any scalar, so that a numeric-looking secret written without quotes in TOML
/// (`password = 12345`) is taken as the text `12345` instead of failing with an error message
/// that would quote it.
#[derive(Clone, Default)]
pub(crate) struct RawSecret(Option<SecretString>);

impl RawSecret {
    /// The raw text, if any was given.
    pub(crate) fn expose(&self) -> Option<&str> {
        self.0.as_ref().map(|s| s.expose_secret())
    }
}

impl fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "***" } else { "unset" })
    }
}

/// The error for a secret written as a bare number or boolean.
fn unquoted<E: de::Error>() -> E {
    E::custom(
        "a secret written as a bare number or boolean loses its exact spelling; quote it (key = \"…\")",
    )
}

impl<'de> serde::Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(Some(SecretString::from(v.to_owned()))))
            }
            // An unquoted number loses its spelling (`1e3` reads as 1000, `007` as 7): refused,
            // and the message never repeats the value.
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
                Err(unquoted())
            }
            fn visit_none<E: de::Error>(self) -> Result<RawSecret, E> {
                Ok(RawSecret(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawSecret, E> {
                Ok(RawSecret(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_trims_and_refuses_inner_whitespace() {
        assert_eq!(Secret::clean(" abc\r\n").unwrap().unwrap().expose(), "abc");
        assert!(Secret::clean("  \r\n").unwrap().is_none());
        assert_eq!(
            Secret::clean("ab c").unwrap_err(),
            SecretProblem::InnerWhitespace
        );
        assert_eq!(
            Secret::clean("ab\u{7}c").unwrap_err(),
            SecretProblem::InnerWhitespace
        );
    }

    #[test]
    fn every_secret_is_redacted_in_every_spelling() {
        let s = Secret::clean("c1ient-s3cr+t/x~y.z").unwrap().unwrap();
        let text = format!(
            "a {} b {} c {} d {} e {}",
            s.expose(),
            "c1ient-s3cr%2Bt%2Fx~y.z",
            "c1ient-s3cr%2Bt%2Fx%7Ey.z",
            "c1ient%2Ds3cr%2Bt%2Fx%7Ey%2Ez",
            "YzFpZW50LXMzY3IrdC94fnkueg"
        );
        assert_eq!(redact(&text), "a *** b *** c *** d *** e ***");
        // Nothing to replace: borrowed, unchanged.
        assert!(matches!(redact("plain text"), Cow::Borrowed("plain text")));
        // Too short to register: "abc" stays readable everywhere else.
        let short = Secret::clean("abc").unwrap().unwrap();
        assert_eq!(redact("abc"), short.expose());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::clean("SENTINEL-1").unwrap().unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert!(!format!("{:?}", Some(s)).contains("SENTINEL"));
    }
}
