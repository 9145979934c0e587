//! `Secret`: a credential that never prints, trimmed and checked on the way in.
//!
//! Every token, key and password the job handles lives in a [`Secret`]. Its `Debug` is `***`,
//! it has no `Display` and no `Serialize`, and the only way to read it is
//! [`Secret::expose`], called where an HTTP header is built (and marked sensitive).

use std::fmt;

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
    fn debug_never_shows_the_value() {
        let s = Secret::clean("SENTINEL-1").unwrap().unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert!(!format!("{:?}", Some(s)).contains("SENTINEL"));
    }
}
