//! `GET /v2/usage` (undocumented; answers on Hobby, where billing charges do not): daily
//! figures per type (`requests`, `builds`, `edge`), summed over the month.

use std::collections::HashMap;

use serde::Deserialize;

use super::{RESOURCES, Vercel};
use crate::cost::{Collection, Usage};
use crate::error::{CollectError, Reason};
use crate::http::{Auth, describe};
use crate::providers::Context;
use crate::providers::wire;

/// Largest `/v2/usage` body read.
const USAGE_BODY_LIMIT: usize = 16 << 20;

impl Vercel {
    pub(super) async fn usage(
        &self,
        cx: &Context,
        from: &str,
        to: &str,
    ) -> Result<Collection, CollectError> {
        let mut days = DailyUsage::default();
        for kind in ["requests", "builds", "edge"] {
            let url = self.url("/v2/usage", &[("type", kind), ("from", from), ("to", to)]);
            let what = format!("GET {}?type={kind}", describe(&url));
            let resp = match cx.http.get(&url, Auth::Bearer(&self.token), &[]).await {
                Ok(r) => r,
                // Builds and edge figures are extras: an account without them still reports
                // its function usage.
                Err(e) if kind != "requests" && matches!(e.status, Some(404 | 410)) => {
                    tracing::info!(
                        "{what} is not available ({}); its figures are absent",
                        e.message
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let body = crate::http::read_capped(resp, &what, USAGE_BODY_LIMIT).await?;
            days.add(kind, &body).map_err(|e| e.context(&what))?;
        }
        let mut c = Collection {
            usage: days.into_usage(),
            limits: self.limits.clone(),
            data_as_of: Some(cx.now),
            source: Some("usage"),
            ..Collection::default()
        };
        c.usage.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(c)
    }
}

#[derive(Deserialize)]
struct UsageBody {
    data: Vec<HashMap<String, serde_json::Value>>,
}

/// Sums of the daily `/v2/usage` fields; a field absent from every day stays absent.
#[derive(Debug, Default)]
struct DailyUsage {
    sums: HashMap<&'static str, f64>,
    /// Resources whose type answered with no day at all: a known zero.
    empty: Vec<&'static str>,
}

/// `/v2/usage` fields and the resource each adds to.
const DAILY_FIELDS: &[(&str, &str, &str)] = &[
    (
        "requests",
        "function_invocation_successful_count",
        "function_invocations",
    ),
    (
        "requests",
        "function_invocation_error_count",
        "function_invocations",
    ),
    (
        "requests",
        "function_invocation_timeout_count",
        "function_invocations",
    ),
    (
        "requests",
        "function_execution_successful_gb_hours",
        "provisioned_memory",
    ),
    (
        "requests",
        "function_execution_error_gb_hours",
        "provisioned_memory",
    ),
    (
        "requests",
        "function_execution_timeout_gb_hours",
        "provisioned_memory",
    ),
    ("requests", "bandwidth_outgoing_bytes", "fast_data_transfer"),
    ("builds", "build_build_seconds", "build_time"),
    ("builds", "build_completed_count", "builds"),
    ("builds", "build_failed_count", "builds"),
    (
        "edge",
        "worker_invocation_count",
        "edge_function_invocations",
    ),
];

impl DailyUsage {
    fn add(&mut self, kind: &str, body: &[u8]) -> Result<(), CollectError> {
        let parsed: UsageBody = serde_json::from_slice(body).map_err(|e| {
            CollectError::new(
                Reason::Decode,
                format!("not the expected {{\"data\": [...]}} ({e})"),
            )
        })?;
        if parsed.data.is_empty() {
            for (k, _, resource) in DAILY_FIELDS {
                if *k == kind && !self.empty.contains(resource) {
                    self.empty.push(resource);
                }
            }
            return Ok(());
        }
        for (i, day) in parsed.data.iter().enumerate() {
            for (k, field, resource) in DAILY_FIELDS {
                if *k != kind {
                    continue;
                }
                match day.get(*field) {
                    None | Some(serde_json::Value::Null) => {}
                    Some(v) => {
                        let n = wire::non_negative(v).map_err(|e| {
                            CollectError::new(
                                Reason::Decode,
                                format!("day {}: {field}: {e}", i + 1),
                            )
                        })?;
                        *self.sums.entry(resource).or_default() += n;
                    }
                }
            }
        }
        Ok(())
    }

    fn into_usage(self) -> Vec<Usage> {
        let mut out: Vec<Usage> = Vec::new();
        for (name, unit) in RESOURCES {
            let value = match self.sums.get(name) {
                Some(v) => *v,
                None if self.empty.contains(name) => 0.0,
                None => continue,
            };
            out.push(Usage {
                resource: (*name).to_owned(),
                unit: *unit,
                value,
                labels: vec![],
            });
        }
        out
    }
}
