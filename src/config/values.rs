//! Value types that configuration keys are read into: humantime durations and lists given as
//! arrays or, from an environment variable, as comma-separated text.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A humantime duration such as `"30s"` or `"5m"`, above zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dur = humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}); write it like \"30s\", \"2m\" or \"1h 30m\""
            ))
        })?;
        if dur.is_zero() {
            return Err(serde::de::Error::custom("the duration must be above zero"));
        }
        Ok(HumanDuration(dur))
    }
}

/// A list given either as an array or, from an environment variable, as `"a,b"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(StringList(match Either::deserialize(d)? {
            Either::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Either::Many(v) => v,
        }))
    }
}
