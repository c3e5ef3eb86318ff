//! Log setup: human-readable lines on stderr by default, JSON when configured.
//! journald adds its own timestamps, so none are printed when stderr is the journal.
//!
//! Whatever the filter says, two things hold: the targets in [`CAPS`] never log below their
//! cap (the SDK's and HTTP stack's wire-level output prints requests, headers and bodies;
//! the file watchers' prints every event, which feeds itself when the log is a file beside
//! the config), and every line passes through [`crate::redact::Scrubbed`], which masks every
//! secret the process holds or has held.

use crate::config::LogFormat;
use crate::redact::Scrubbed;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

/// Default filter when neither `--log-level` nor `RUST_LOG` is given: our own info and up,
/// the SDK's warnings.
pub const DEFAULT_FILTER: &str = "warn,credfresh=info";

/// The most a dependency's target may log, whatever `RUST_LOG` or `--log-level` ask for.
/// Their trace (and for some debug) output prints HTTP requests with their headers (SSO
/// bearer and IMDS tokens) and bodies (refresh tokens, client secrets), every inotify event,
/// or whole AWS files (the profile parser's UTF-8 error lists the file's bytes; credfresh
/// reports that error itself, naming the file and the bad byte's line).
pub const CAPS: &[(&str, LevelFilter)] = &[
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_smithy_runtime_api", LevelFilter::DEBUG),
    ("aws_smithy_http", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_smithy_types", LevelFilter::DEBUG),
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_runtime", LevelFilter::DEBUG),
    ("aws_runtime::env_config", LevelFilter::OFF),
    ("aws_config", LevelFilter::DEBUG),
    ("hyper", LevelFilter::DEBUG),
    ("hyper_util", LevelFilter::DEBUG),
    ("hyper_rustls", LevelFilter::DEBUG),
    ("h2", LevelFilter::DEBUG),
    ("rustls", LevelFilter::DEBUG),
    ("notify", LevelFilter::INFO),
    ("inotify", LevelFilter::INFO),
    ("mio", LevelFilter::INFO),
];

/// [`CAPS`] as a filter that lets everything else through.
fn caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPS.iter().copied())
}

/// The filter: `--log-level` wins over `RUST_LOG`, which takes `target=level` lists such as
/// `warn,credfresh=debug`. An empty `RUST_LOG` gives the default, and so does one that is not
/// such a list (span and field filters included), with a warning on stderr.
fn filter(level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let default = || parse_targets(DEFAULT_FILTER).unwrap_or_default();
    if let Some(level) = level {
        return parse_targets(&format!("warn,credfresh={level}")).unwrap_or_else(default);
    }
    match rust_log.filter(|s| !s.trim().is_empty()) {
        None => default(),
        Some(spec) => parse_targets(spec).unwrap_or_else(|| {
            eprintln!(
                "credfresh: RUST_LOG={spec:?} is not a list of LEVEL or TARGET=LEVEL \
                 (e.g. warn,credfresh=debug); using {DEFAULT_FILTER}"
            );
            default()
        }),
    }
}

/// `spec` as `Targets`, when every comma-separated part (trimmed, empty ones skipped) is a
/// level, a target, or `target=level`; targets are module paths.
fn parse_targets(spec: &str) -> Option<Targets> {
    let parts: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let is_target = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
    };
    let is_level = |l: &str| l.parse::<LevelFilter>().is_ok();
    let valid = !parts.is_empty()
        && parts.iter().all(|part| match part.split_once('=') {
            Some((target, level)) => is_target(target) && is_level(level),
            None => is_level(part) || is_target(part),
        });
    if !valid {
        return None;
    }
    parts.join(",").parse().ok()
}

/// Installs the global subscriber. `level` (from `--log-level`) wins over `RUST_LOG`.
/// Safe to call once; later calls are ignored.
pub fn init(format: LogFormat, level: Option<&str>) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let base = fmt::layer()
        .with_writer(Scrubbed(std::io::stderr))
        .with_target(false)
        .with_ansi(false);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match (format, journal) {
        (LogFormat::Json, _) => base.json().flatten_event(true).boxed(),
        (LogFormat::Text, true) => base.without_time().boxed(),
        (LogFormat::Text, false) => base.boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter(level, rust_log.as_deref()).and(caps())))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn wire_level_targets_are_capped_whatever_the_filter() {
        let f = filter(None, Some("trace,aws_smithy_runtime=trace,notify=trace"));
        let c = caps();
        let on = |target: &str, level: &Level| {
            f.would_enable(target, level) && c.would_enable(target, level)
        };
        assert!(on("credfresh::daemon", &Level::TRACE));
        assert!(on("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!on(
            "aws_smithy_runtime::client::orchestrator",
            &Level::TRACE
        ));
        assert!(!on("aws_sigv4::http_request::sign", &Level::TRACE));
        assert!(!on("hyper_util::client", &Level::TRACE));
        assert!(!on("notify::inotify", &Level::DEBUG));
        assert!(!on("aws_runtime::env_config::source", &Level::ERROR));
        assert!(on("aws_runtime::user_agent", &Level::WARN));
    }

    #[test]
    fn spaces_and_empty_parts_are_ignored() {
        let f = filter(None, Some(" warn , credfresh=debug ,"));
        assert!(f.would_enable("credfresh::writer", &Level::DEBUG));
        assert!(f.would_enable("aws_config", &Level::WARN));
        assert!(!f.would_enable("aws_config", &Level::INFO));
    }

    #[test]
    fn empty_or_bad_rust_log_gives_the_default() {
        for bad in [
            None,
            Some(""),
            Some("  "),
            Some(","),
            Some("credfresh=loud"),
            Some("credfresh[refresh]=debug"),
            Some("credfresh[{profile=a}]=debug"),
            Some("credfresh=debug=x"),
        ] {
            let f = filter(None, bad);
            assert!(f.would_enable("credfresh", &Level::INFO), "{bad:?}");
            assert!(!f.would_enable("credfresh", &Level::DEBUG), "{bad:?}");
            assert_eq!(f.default_level(), Some(LevelFilter::WARN), "{bad:?}");
        }
    }
}
