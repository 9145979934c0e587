//! Prometheus remote write 1.0 (<https://prometheus.io/docs/specs/prw/remote_write_spec/>): a
//! `WriteRequest` protobuf, snappy-compressed (block format), POSTed with
//! `Content-Encoding: snappy`, `Content-Type: application/x-protobuf` and
//! `X-Prometheus-Remote-Write-Version: 0.1.0`. Samples are sent in batches as they come, each
//! series' samples in time order; a receiver needs an out-of-order window wider than the
//! history (Prometheus: `storage.tsdb.out_of_order_time_window`), as samples older than its
//! head would otherwise be refused.
//!
//! The three messages are encoded with prost's wire helpers rather than generated code:
//! `WriteRequest { repeated TimeSeries timeseries = 1; }`, `TimeSeries { repeated Label labels
//! = 1; repeated Sample samples = 2; }`, `Label { string name = 1; string value = 2; }`,
//! `Sample { double value = 1; int64 timestamp = 2; }` (milliseconds).

use std::time::Duration;

use prost::encoding::{self, WireType, encode_key, encode_varint, encoded_len_varint};
use url::Url;

/// Series per request (one sample each).
const BATCH: usize = 2000;
/// Largest part of a receiver's error body read (the rest is never read).
const ERROR_BODY_LIMIT: usize = 2048;

/// One series with one sample.
struct Series {
    /// Sorted by name, `__name__` included.
    labels: Vec<(String, String)>,
    value: f64,
    /// Milliseconds.
    ts: i64,
}

/// A remote-write client that batches samples.
pub(crate) struct RemoteWrite {
    client: reqwest::Client,
    url: Url,
    pending: Vec<Series>,
    sent: u64,
}

impl RemoteWrite {
    /// A client for `url`.
    pub(crate) fn new(url: Url, timeout: Duration) -> Result<RemoteWrite, String> {
        crate::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("cost-exporter/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the remote-write client: {e}"))?;
        Ok(RemoteWrite {
            client,
            url,
            pending: Vec::new(),
            sent: 0,
        })
    }

    /// Queues one sample at `ts` (Unix seconds); sends a batch when it is full.
    pub(crate) async fn add(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        ts: i64,
    ) -> Result<(), String> {
        let mut all: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("__name__".to_owned(), name.to_owned()));
        all.sort();
        self.pending.push(Series {
            labels: all,
            value,
            ts: ts.saturating_mul(1000),
        });
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is queued. Returns the samples sent in all.
    pub(crate) async fn finish(mut self) -> Result<u64, String> {
        self.flush().await?;
        Ok(self.sent)
    }

    async fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&encode(&self.pending))
            .map_err(|e| format!("snappy: {e}"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .client
                .post(self.url.clone())
                .header("content-encoding", "snappy")
                .header("content-type", "application/x-protobuf")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(body.clone())
                .send()
                .await;
            let retry = match resp {
                Ok(r) if r.status().is_success() => break,
                Ok(mut r) => {
                    let status = r.status();
                    // The start of the explanation only: a receiver's body is never read whole.
                    let mut body = Vec::new();
                    while body.len() < ERROR_BODY_LIMIT {
                        match r.chunk().await {
                            Ok(Some(c)) => body.extend_from_slice(&c),
                            _ => break,
                        }
                    }
                    body.truncate(ERROR_BODY_LIMIT);
                    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                    let msg = format!(
                        "remote write to {} answered {status}: {}",
                        crate::http::describe(&self.url),
                        text.trim()
                    );
                    // 5xx and 429 may succeed later; 4xx will not (the spec says not to retry).
                    if status.is_server_error() || status.as_u16() == 429 {
                        msg
                    } else {
                        return Err(msg);
                    }
                }
                Err(e) => format!("remote write to {}: {e}", crate::http::describe(&self.url)),
            };
            if attempt >= 3 {
                return Err(retry);
            }
            tracing::warn!("{retry}; retrying");
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
        self.sent += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

fn label_len(name: &str, value: &str) -> usize {
    encoding::string::encoded_len(1, &name.to_owned())
        + encoding::string::encoded_len(2, &value.to_owned())
}

fn sample_len(s: &Series) -> usize {
    encoding::double::encoded_len(1, &s.value) + encoding::int64::encoded_len(2, &s.ts)
}

fn series_len(s: &Series) -> usize {
    let labels: usize = s
        .labels
        .iter()
        .map(|(n, v)| {
            let l = label_len(n, v);
            1 + encoded_len_varint(l as u64) + l
        })
        .sum();
    let sample = sample_len(s);
    labels + 1 + encoded_len_varint(sample as u64) + sample
}

/// A `WriteRequest` with `series`.
fn encode(series: &[Series]) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in series {
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(series_len(s) as u64, &mut buf);
        for (n, v) in &s.labels {
            encode_key(1, WireType::LengthDelimited, &mut buf);
            encode_varint(label_len(n, v) as u64, &mut buf);
            encoding::string::encode(1, n, &mut buf);
            encoding::string::encode(2, v, &mut buf);
        }
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(sample_len(s) as u64, &mut buf);
        encoding::double::encode(1, &s.value, &mut buf);
        encoding::int64::encode(2, &s.ts, &mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_request_is_encoded_as_the_protobuf_wire_format_says() {
        let s = Series {
            labels: vec![("__name__".into(), "m".into()), ("a".into(), "b".into())],
            value: 1.5,
            ts: 1000,
        };
        let bytes = encode(&[s]);
        // timeseries (field 1, length-delimited), its labels, its sample.
        let expected: Vec<u8> = [
            vec![0x0a, 37],
            vec![0x0a, 13, 0x0a, 8],
            b"__name__".to_vec(),
            vec![0x12, 1, b'm'],
            vec![0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b'],
            vec![0x12, 12, 0x09],
            1.5f64.to_le_bytes().to_vec(),
            vec![0x10, 0xe8, 0x07],
        ]
        .concat();
        assert_eq!(bytes, expected);
        // And it survives snappy both ways.
        let packed = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&packed).unwrap(),
            bytes
        );
    }
}
