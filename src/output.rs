//! What the command line prints and how it exits: exit codes (0 ok, 1 runtime failure,
//! 2 usage or config error, 3 daemon not running), the error lines for a failed request, the
//! `status` table and durations as people say them. A leaf: `cli`, `check` and `init` use it,
//! it uses none of them.

use crate::api::{parse_rfc3339, ProfileState, ProfileStatus};
use crate::client::ClientError;
use crate::redact::scrub_str;
use hyper::body::Bytes;
use hyper::StatusCode;
use std::time::{Duration, SystemTime};

/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or config error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the daemon is not running.
pub const EXIT_NOT_RUNNING: u8 = 3;

/// A command's outcome: its exit code (0, or [`EXIT_FAILURE`] when it ran but what it
/// checked or asked for failed, having said so), or why it could not do its work.
pub type CliResult = Result<u8, CliError>;

/// Why a command could not do its work; [`CliError::report`] prints it on stderr and picks
/// the exit code.
#[derive(Debug)]
pub enum CliError {
    /// The daemon could not be asked: [`EXIT_NOT_RUNNING`] when it is not running.
    Client(ClientError),
    /// The daemon answered with an error: [`EXIT_USAGE`] for an unknown name (404).
    Refused(StatusCode, Bytes),
    /// A usage or config error, printed as it is.
    Usage(String),
    /// A runtime failure, printed as it is.
    Failed(String),
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Client(e)
    }
}

impl CliError {
    /// A usage or config error printed as `e` displays.
    pub fn usage(e: impl std::fmt::Display) -> Self {
        CliError::Usage(e.to_string())
    }

    /// Prints the error on stderr; the exit code for it.
    pub fn report(self) -> u8 {
        match self {
            CliError::Client(e) => fail(e),
            CliError::Refused(code, body) => reply_error(code, &body),
            CliError::Usage(message) => {
                eprintln!("{}", scrub_str(&message));
                EXIT_USAGE
            }
            CliError::Failed(message) => {
                eprintln!("{}", scrub_str(&message));
                EXIT_FAILURE
            }
        }
    }
}

pub fn fail(e: ClientError) -> u8 {
    eprintln!("credfresh: {}", scrub_str(&e.to_string()));
    match e {
        ClientError::NotRunning(_) => EXIT_NOT_RUNNING,
        ClientError::Failed { .. } | ClientError::Busy(_) | ClientError::BadReply(_) => {
            EXIT_FAILURE
        }
    }
}

/// Prints a non-success reply's error and picks the exit code for it.
pub fn reply_error(code: StatusCode, body: &[u8]) -> u8 {
    let msg = serde_json::from_slice::<crate::api::ErrorReply>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    eprintln!("credfresh: {}", scrub_str(&msg));
    if code == StatusCode::NOT_FOUND {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// Prints that the daemon's reply could not be read; the exit code for it.
pub fn bad_reply(e: serde_json::Error) -> u8 {
    fail(ClientError::BadReply(e))
}

/// The `status` table: one row per profile, times relative to `now`; states coloured when
/// `colour` (a terminal without `NO_COLOR`).
pub fn table(profiles: &[ProfileStatus], now: SystemTime, colour: bool) -> String {
    let header = [
        "PROFILE",
        "KIND",
        "STATE",
        "EXPIRES",
        "NEXT REFRESH",
        "LAST ERROR",
    ]
    .map(String::from);
    let rows: Vec<[String; 6]> = profiles
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.kind.clone(),
                p.state.to_string(),
                rel(p.expires_at.as_deref(), now),
                rel(p.next_refresh_at.as_deref(), now),
                p.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 6], state: Option<ProfileState>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
                continue;
            }
            let pad = " ".repeat(widths[i] - c.chars().count() + 2);
            match (i, state) {
                (2, Some(st)) if colour => {
                    s.push_str(&format!("\x1b[{}m{c}\x1b[0m{pad}", state_colour(st)))
                }
                _ => s.push_str(&format!("{c}{pad}")),
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header, None);
    for (r, p) in rows.iter().zip(profiles) {
        out.push_str(&line(r, Some(p.state)));
    }
    out
}

/// ANSI colour of a state: green when fine, yellow while working on it, red when not.
fn state_colour(state: ProfileState) -> &'static str {
    match state {
        ProfileState::Fresh => "32",
        ProfileState::Pending | ProfileState::Refreshing | ProfileState::Retrying => "33",
        ProfileState::Expired | ProfileState::LoginRequired | ProfileState::Error => "31",
    }
}

/// Whether stdout should get colours: a terminal, and `NO_COLOR` unset.
pub fn colour_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn rel(t: Option<&str>, now: SystemTime) -> String {
    let Some(t) = t.and_then(parse_rfc3339) else {
        return "-".into();
    };
    match t.duration_since(now) {
        Ok(d) => format!("in {}", short(d)),
        Err(e) if e.duration() < Duration::from_secs(1) => "now".into(),
        Err(e) => format!("{} ago", short(e.duration())),
    }
}

/// A duration as people say it: 42s, 17m, 3h5m, 2d.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..172800 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rfc3339;

    #[test]
    fn short_durations_read_naturally() {
        let s = |secs| short(Duration::from_secs(secs));
        assert_eq!(
            [
                s(0),
                s(59),
                s(60),
                s(2520),
                s(3600),
                s(3900),
                s(90000),
                s(200000)
            ],
            ["0s", "59s", "1m", "42m", "1h", "1h5m", "25h", "2d"]
        );
    }

    #[test]
    fn each_error_reports_its_exit_code() {
        let not_running = ClientError::NotRunning("/s".into());
        assert_eq!(CliError::from(not_running).report(), EXIT_NOT_RUNNING);
        let busy = ClientError::Busy("/s".into());
        assert_eq!(CliError::from(busy).report(), EXIT_FAILURE);
        let body = Bytes::from_static(br#"{"error":"no managed profile named \"x\""}"#);
        let unknown = CliError::Refused(StatusCode::NOT_FOUND, body.clone());
        assert_eq!(unknown.report(), EXIT_USAGE);
        let other = CliError::Refused(StatusCode::SERVICE_UNAVAILABLE, body);
        assert_eq!(other.report(), EXIT_FAILURE);
        assert_eq!(CliError::usage("bad config").report(), EXIT_USAGE);
        assert_eq!(CliError::Failed("no".into()).report(), EXIT_FAILURE);
    }

    #[test]
    fn table_has_header_and_one_row_per_profile() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let p = ProfileStatus {
            name: "metaflow".into(),
            kind: "assume_role".into(),
            state: ProfileState::Retrying,
            expires_at: Some(rfc3339(now + Duration::from_secs(2520))),
            next_refresh_at: Some(rfc3339(now + Duration::from_secs(4))),
            last_refresh_at: None,
            last_error: Some("cannot reach STS".into()),
            account_id: None,
        };
        let t = table(std::slice::from_ref(&p), now, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("PROFILE   KIND         STATE     EXPIRES"),
            "{t}"
        );
        assert!(
            lines[1].contains("retrying")
                && lines[1].contains("in 42m")
                && lines[1].contains("in 4s"),
            "{t}"
        );
        assert!(lines[1].ends_with("cannot reach STS"), "{t}");
        let coloured = table(&[p], now, true);
        assert!(coloured.contains("\x1b[33mretrying\x1b[0m  "), "{coloured}");
        assert_eq!(strip(&coloured), t, "colour changes no column");
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }
}
