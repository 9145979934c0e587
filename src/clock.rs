//! The run's clock: the time that places a run in its billing month.
//!
//! It is the system clock, unless `COST_EXPORTER_NOW` holds an RFC 3339 time (with its offset):
//! then the run believes it is that moment — the last second of a month, the first of the next,
//! midnight in Paris in summer time — so that a test, or a person checking what the job would
//! have said on a given day, can run the real binary there. Signatures, tokens and the
//! Pushgateway's timestamps keep the system clock: providers check those against their own.

use std::time::SystemTime;

/// The variable that sets the run's clock.
pub const VARIABLE: &str = "COST_EXPORTER_NOW";

/// The run's time: `COST_EXPORTER_NOW` when set (a warning says so), else the system clock. A
/// value that is not an RFC 3339 time is an error naming the variable.
pub fn now() -> Result<SystemTime, String> {
    match std::env::var(VARIABLE) {
        Err(_) => Ok(SystemTime::now()),
        Ok(text) if text.trim().is_empty() => Ok(SystemTime::now()),
        Ok(text) => {
            let t = time::OffsetDateTime::parse(
                text.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| {
                format!(
                    "{VARIABLE} {text:?} is not an RFC 3339 time such as 2026-12-31T23:59:59Z ({e})"
                )
            })?;
            tracing::warn!("the run's clock is set by {VARIABLE}: {text}");
            Ok(t.into())
        }
    }
}
