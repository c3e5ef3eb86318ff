//! Log setup: human-readable lines on stderr by default, JSON when configured.
//! journald adds its own timestamps, so none are printed when stderr is the journal.

use crate::config::LogFormat;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

/// Default filter when neither `--log-level` nor `RUST_LOG` is given: our own info and up,
/// the SDK's warnings.
pub const DEFAULT_FILTER: &str = "warn,credfresh=info";

/// The filter: `--log-level` wins over `RUST_LOG`, which takes `target=level` lists such as
/// `warn,credfresh=debug`. An empty or unparsable `RUST_LOG` gives the default.
fn filter(level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let wanted = match level {
        Some(level) => format!("warn,credfresh={level}"),
        None => rust_log
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(DEFAULT_FILTER)
            .to_owned(),
    };
    wanted
        .parse()
        .or_else(|_| DEFAULT_FILTER.parse())
        .unwrap_or_default()
}

/// Installs the global subscriber. `level` (from `--log-level`) wins over `RUST_LOG`.
/// Safe to call once; later calls are ignored.
pub fn init(format: LogFormat, level: Option<&str>) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let base = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match (format, journal) {
        (LogFormat::Json, _) => base.json().flatten_event(true).boxed(),
        (LogFormat::Text, true) => base.without_time().boxed(),
        (LogFormat::Text, false) => base.boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter(level, rust_log.as_deref())))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;
    use tracing::Level;

    #[test]
    fn log_level_wins_over_rust_log() {
        let f = filter(Some("debug"), Some("credfresh=error"));
        assert!(f.would_enable("credfresh::daemon", &Level::DEBUG));
        assert!(!f.would_enable("aws_config", &Level::INFO));
        assert!(f.would_enable("aws_config", &Level::WARN));
    }

    #[test]
    fn rust_log_target_lists() {
        let f = filter(None, Some("warn,credfresh=trace"));
        assert!(f.would_enable("credfresh::scheduler", &Level::TRACE));
        assert!(!f.would_enable("hyper", &Level::INFO));
        let f = filter(None, Some("debug"));
        assert!(f.would_enable("aws_smithy_runtime", &Level::DEBUG));
    }

    #[test]
    fn empty_or_bad_rust_log_gives_the_default() {
        for bad in [None, Some(""), Some("  "), Some("credfresh=loud")] {
            let f = filter(None, bad);
            assert!(f.would_enable("credfresh", &Level::INFO), "{bad:?}");
            assert!(!f.would_enable("credfresh", &Level::DEBUG), "{bad:?}");
            assert_eq!(f.default_level(), Some(LevelFilter::WARN), "{bad:?}");
        }
    }
}
