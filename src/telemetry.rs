//! Logging: tracing to stderr, as text or JSON; `RUST_LOG` filters (default `info`, `warn`
//! for `report`, whose table says what the info lines would); colour only on a terminal and
//! without `NO_COLOR`; a progress line on the terminal steps aside for each event.
//!
//! HTTP and signing internals (hyper, reqwest, h2, rustls, aws-sigv4) are capped at `warn` whatever `RUST_LOG` says:
//! at debug and trace they log URLs and connection details, which is more than a cost job
//! should ever write.
//!
//! Every line passes through [`crate::secret::redact`] on its way to stderr: whatever a
//! message holds (a provider's echo of a credential in an error or a decode error), no
//! secret of the process is written in any of its spellings.

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, at `level` unless `RUST_LOG` says otherwise. Call once.
pub(crate) fn init(format: LogFormat, level: &str) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    for directive in [
        "hyper=warn",
        "hyper_util=warn",
        "reqwest=warn",
        "h2=warn",
        "rustls=warn",
        "aws_sigv4=warn",
        "aws_smithy_runtime_api=warn",
    ] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    use std::io::IsTerminal;
    let colour = crate::term::colour(std::io::stderr().is_terminal());
    let builder = tracing_subscriber::fmt()
        .with_writer(|| Redacting(std::io::stderr()))
        .with_ansi(colour)
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A writer that redacts every secret of the process from what it is given (one formatted
/// event at a time) before writing it on.
struct Redacting<W>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = crate::secret::redact(&text);
        // A progress line on the terminal steps aside for the event.
        crate::progress::around(|| self.0.write_all(text.as_bytes()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
