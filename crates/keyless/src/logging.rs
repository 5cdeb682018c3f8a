//! Logging of the long-running commands (`serve`, `webhook`, `dev-cluster`): one
//! tracing subscriber to stderr, filtered by `KEYLESS_LOG` (an `EnvFilter` directive)
//! or else the command's default.

use clap::ValueEnum;

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the subscriber: `KEYLESS_LOG` if set and valid, else `default_filter`.
/// A second call (tests running commands in one process) keeps the first subscriber.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYLESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
