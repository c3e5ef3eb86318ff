//! Log setup: human-readable lines on stderr by default, JSON when configured.
//! journald adds its own timestamps, so none are printed when stderr is the journal.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Default filter when `RUST_LOG` is unset: our own info and up, the SDK's warnings.
pub const DEFAULT_FILTER: &str = "warn,credfresh=info";

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match (format, journal) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder.with_ansi(false).try_init(),
    };
    let _ = result;
}
