//! OpenMetrics text with timestamps (<https://prometheus.io/docs/specs/om/open_metrics_spec/>),
//! as `promtool tsdb create-blocks-from openmetrics` reads it.
//!
//! A family must appear once in a MetricSet, but history arrives day by day, provider by
//! provider. Rather than keep every sample until the end (memory growing with the length of
//! history), each family's lines are spooled to its own temporary file as they come, and the
//! files are concatenated under their `# HELP`/`# TYPE` lines at the end, `# EOF` last. Within a
//! series, samples are written in the order they come, which the runner keeps chronological.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};

use crate::metrics::{Def, Kind};

/// Families spooled to temporary files.
pub(crate) struct Spool {
    dir: tempfile::TempDir,
    /// Family name → (its definition, its spool file).
    files: BTreeMap<&'static str, (&'static Def, BufWriter<File>)>,
    samples: u64,
}

impl Spool {
    /// An empty spool in a new temporary directory.
    pub(crate) fn new() -> io::Result<Spool> {
        Ok(Spool {
            dir: tempfile::Builder::new()
                .prefix("cost-exporter-backfill")
                .tempdir()?,
            files: BTreeMap::new(),
            samples: 0,
        })
    }

    /// Adds one sample at `ts` (Unix seconds).
    pub(crate) fn add(
        &mut self,
        def: &'static Def,
        labels: &[(&str, &str)],
        value: f64,
        ts: i64,
    ) -> io::Result<()> {
        let file = match self.files.get_mut(def.name) {
            Some((_, f)) => f,
            None => {
                let f = File::create(self.dir.path().join(def.name))?;
                &mut self
                    .files
                    .entry(def.name)
                    .or_insert((def, BufWriter::new(f)))
                    .1
            }
        };
        file.write_all(sample_line(def.name, labels, value, ts).as_bytes())?;
        self.samples += 1;
        Ok(())
    }

    /// Samples added so far.
    pub(crate) fn len(&self) -> u64 {
        self.samples
    }

    /// Writes the whole exposition to `out`, families in `order`, then `# EOF`.
    pub(crate) fn finish(self, order: &[&Def], out: &mut dyn Write) -> io::Result<()> {
        let mut files = self.files;
        for def in order {
            let Some((def, writer)) = files.remove(def.name) else {
                continue;
            };
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            drop(file);
            writeln!(out, "# HELP {} {}", def.name, escape_help(def.help))?;
            writeln!(
                out,
                "# TYPE {} {}",
                def.name,
                match def.kind {
                    Kind::Gauge => "gauge",
                    Kind::Counter => "counter",
                }
            )?;
            let mut reader = BufReader::new(File::open(self.dir.path().join(def.name))?);
            io::copy(&mut reader, out)?;
        }
        writeln!(out, "# EOF")?;
        out.flush()
    }
}

/// `name{a="b",c="d"} value timestamp\n`.
fn sample_line(name: &str, labels: &[(&str, &str)], value: f64, ts: i64) -> String {
    let mut line = String::with_capacity(64);
    line.push_str(name);
    if !labels.is_empty() {
        line.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(k);
            line.push_str("=\"");
            line.push_str(&escape_value(v));
            line.push('"');
        }
        line.push('}');
    }
    line.push(' ');
    line.push_str(&value.to_string());
    line.push(' ');
    line.push_str(&ts.to_string());
    line.push('\n');
    line
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text: backslash, double quote and line feed escaped.
fn escape_help(v: &str) -> String {
    escape_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FORECAST, SPEND};

    #[test]
    fn families_come_out_once_each_in_order_with_their_samples_in_arrival_order() {
        let mut s = Spool::new().unwrap();
        s.add(&SPEND, &[("provider", "a")], 1.5, 100).unwrap();
        s.add(&FORECAST, &[("provider", "a")], 3.0, 100).unwrap();
        s.add(&SPEND, &[("provider", "a")], 2.5, 200).unwrap();
        s.add(&SPEND, &[("name", "say \"hi\"\\\n")], 1e21, 200)
            .unwrap();
        assert_eq!(s.len(), 4);
        let mut out = Vec::new();
        s.finish(&[&SPEND, &FORECAST], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            format!("# HELP cost_spend {}", escape_help(SPEND.help))
        );
        assert_eq!(lines[1], "# TYPE cost_spend gauge");
        assert_eq!(lines[2], "cost_spend{provider=\"a\"} 1.5 100");
        assert_eq!(lines[3], "cost_spend{provider=\"a\"} 2.5 200");
        assert_eq!(
            lines[4],
            "cost_spend{name=\"say \\\"hi\\\"\\\\\\n\"} 1000000000000000000000 200"
        );
        assert_eq!(lines[6], "# TYPE cost_forecast gauge");
        assert_eq!(lines[7], "cost_forecast{provider=\"a\"} 3 100");
        assert_eq!(*lines.last().unwrap(), "# EOF");
        assert_eq!(text.matches("# TYPE cost_spend").count(), 1);
    }
}
