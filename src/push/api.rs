//! `GET /api/v1/metrics`, read in one streaming pass that keeps only what a run needs: this
//! job's groups, each with its labels, its last push time and the two counters a run
//! continues (`cost_collector_errors_total` by reason, `cost_collector_consecutive_failures`).
//!
//! The answer holds every group of every job with every sample, and on a shared Pushgateway
//! other jobs' groups can be most of it. The body is handed chunk by chunk to a parser on a
//! blocking thread, which skips everything else as it reads: memory is a few chunks plus this
//! job's groups, whatever the size of the answer (which is capped at [`MAX_BYTES`], a bound on
//! time, not on memory).

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::JOB;

/// The most of an `/api/v1/metrics` answer read: far beyond any Pushgateway a person runs
/// (the answer is streamed, so this bounds the time spent, not the memory).
pub(crate) const MAX_BYTES: u64 = 256 << 20;
/// This job's groups kept before the answer is refused (200 accounts of 9 providers fit).
const MAX_GROUPS: usize = 10_000;
/// Samples kept per family (a counter has one per reason).
const MAX_SAMPLES: usize = 64;

/// One group of this job.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct JobGroup {
    /// Its grouping labels (`job` included).
    pub(crate) labels: BTreeMap<String, String>,
    /// `push_time_seconds`, where readable.
    pub(crate) push_time: Option<f64>,
    /// `cost_collector_errors_total`: reason → value, as text.
    pub(crate) errors: Vec<(String, String)>,
    /// `cost_collector_consecutive_failures`, as text.
    pub(crate) consecutive: Option<String>,
}

/// Parses a whole answer held in memory (tests, and the same visitor the stream uses).
#[cfg(test)]
pub(crate) fn parse(body: &[u8]) -> Result<Vec<JobGroup>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    Answer.deserialize(&mut de).map_err(describe)
}

/// Reads and parses `resp`'s body as it arrives. The error says whether another attempt
/// could succeed (a connection cut mid-body) or not (an answer that is not what it should be).
pub(crate) async fn read(mut resp: reqwest::Response) -> Result<Vec<JobGroup>, (String, bool)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::with_capacity(
            64 << 10,
            ChunkReader {
                rx,
                current: Bytes::new(),
            },
        );
        let mut de = serde_json::Deserializer::from_reader(reader);
        Answer.deserialize(&mut de).map_err(describe)
    });
    let mut total: u64 = 0;
    let pumped: Result<(), (String, bool)> = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                total += chunk.len() as u64;
                if total > MAX_BYTES {
                    break Err((
                        format!("the answer is larger than {} MiB", MAX_BYTES >> 20),
                        false,
                    ));
                }
                // The parser stopped early (it found an error): nothing more to hand it.
                if tx.send(chunk).await.is_err() {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err((crate::http::error_chain(&e.without_url()), true)),
        }
    };
    drop(tx);
    let parsed = parser
        .await
        .map_err(|e| (format!("the parser stopped: {e}"), false))?;
    pumped?;
    parsed.map_err(|e| (e, false))
}

fn describe(e: serde_json::Error) -> String {
    format!("the Pushgateway's /api/v1/metrics is not the expected JSON ({e})")
}

/// A `Read` over the chunks the async side receives.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(next) => self.current = next,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// `{"status": …, "data": [group, …]}`.
struct Answer;

impl<'de> DeserializeSeed<'de> for Answer {
    type Value = Vec<JobGroup>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Answer {
    type Value = Vec<JobGroup>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `data`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut groups = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                groups = Some(map.next_value_seed(Groups)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        groups.ok_or_else(|| de::Error::missing_field("data"))
    }
}

/// `[group, …]`, keeping this job's.
struct Groups;

impl<'de> DeserializeSeed<'de> for Groups {
    type Value = Vec<JobGroup>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Groups {
    type Value = Vec<JobGroup>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of groups")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(group) = seq.next_element_seed(Group)? {
            let Some(group) = group else { continue };
            if out.len() == MAX_GROUPS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_GROUPS} groups of job {JOB}"
                )));
            }
            out.push(group);
        }
        Ok(out)
    }
}

/// One group: kept (`Some`) only when its `job` label is this job's.
struct Group;

impl<'de> DeserializeSeed<'de> for Group {
    type Value = Option<JobGroup>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Group {
    type Value = Option<JobGroup>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a group")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let errors = crate::metrics::ERRORS.name;
        let consecutive = crate::metrics::CONSECUTIVE_FAILURES.name;
        let mut g = JobGroup::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "labels" => g.labels = map.next_value()?,
                "push_time_seconds" => {
                    g.push_time = map
                        .next_value_seed(Family)?
                        .into_iter()
                        .next()
                        .and_then(|(_, v)| v.parse().ok());
                }
                k if k == errors => {
                    g.errors = map
                        .next_value_seed(Family)?
                        .into_iter()
                        .filter_map(|(reason, v)| Some((reason?, v)))
                        .collect();
                }
                k if k == consecutive => {
                    g.consecutive = map
                        .next_value_seed(Family)?
                        .into_iter()
                        .next()
                        .map(|(_, v)| v);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((g.labels.get("job").map(String::as_str) == Some(JOB)).then_some(g))
    }
}

/// A family: `{"type": …, "metrics": [{"labels": {…}, "value": "…"}]}`, as (the `reason`
/// label, the value text) per sample.
struct Family;

impl<'de> DeserializeSeed<'de> for Family {
    type Value = Vec<(Option<String>, String)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        #[derive(serde::Deserialize)]
        struct Sample {
            #[serde(default)]
            labels: BTreeMap<String, String>,
            value: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(default)]
            metrics: Vec<Sample>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(raw
            .metrics
            .into_iter()
            .take(MAX_SAMPLES)
            .filter_map(|mut s| Some((s.labels.remove("reason"), s.value?)))
            .collect())
    }
}

use serde::Deserialize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_jobs_groups_and_their_counters_are_kept() {
        let text = r#"{"status":"success","data":[
          {"cost_collector_errors_total":{"type":"COUNTER","metrics":[
             {"labels":{"job":"cost-exporter","provider":"ionos","reason":"timeout","instance":""},"value":"2"}]},
           "labels":{"job":"cost-exporter","provider":"ionos"},
           "other_metric":{"type":"GAUGE","metrics":[{"labels":{},"value":"1"}]},
           "push_time_seconds":{"type":"GAUGE","metrics":[{"labels":{},"value":"1.7e9"}]},
           "cost_collector_consecutive_failures":{"type":"GAUGE","metrics":[{"labels":{},"value":"3"}]}},
          {"labels":{"job":"other","provider":"ionos"},
           "cost_collector_errors_total":{"metrics":[{"labels":{"reason":"timeout"},"value":"9"}]}}]}"#;
        let groups = parse(text.as_bytes()).unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.labels["provider"], "ionos");
        assert_eq!(g.push_time, Some(1.7e9));
        assert_eq!(g.errors, vec![("timeout".to_owned(), "2".to_owned())]);
        assert_eq!(g.consecutive.as_deref(), Some("3"));
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"status":"success"}"#).is_err());
    }
}
