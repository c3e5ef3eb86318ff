//! Log setup: human-readable lines on stderr by default, JSON when configured.
//! journald adds its own timestamps, so none are printed when stderr is the journal.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Default filter when neither `--log-level` nor `RUST_LOG` is given: our own info and up,
/// the SDK's warnings.
pub const DEFAULT_FILTER: &str = "warn,credfresh=info";

/// Installs the global subscriber. `level` (from `--log-level`) wins over `RUST_LOG`.
/// Safe to call once; later calls are ignored.
pub fn init(format: LogFormat, level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::new(format!("warn,credfresh={level}")),
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    };
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let result = match (format, journal) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
    let _ = result;
}
