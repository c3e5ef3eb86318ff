//! `credfresh mfa PROFILE [--code CODE]`: hands an MFA code to the daemon, which uses it at
//! once; exit 0 once the profile is fresh, else STS's reason.

use crate::client::{self, Reply};
use crate::mfa::MfaCode;
use crate::output::{CliError, CliResult};
use hyper::body::Bytes;
use hyper::StatusCode;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

pub(super) async fn mfa(socket: &Path, profile: &str, code: Option<String>) -> CliResult {
    // Parsed here, not by clap, whose errors quote the value given.
    let code = match code {
        Some(c) => {
            MfaCode::parse(&c).map_err(|e| CliError::Usage(format!("credfresh: --code: {e}")))?
        }
        None => {
            // The name is checked before anyone types a code for it.
            let target = match client::mfa_target(socket, profile).await? {
                Reply::Ok(t) => t,
                Reply::Refused(status, body) => return Err(refused(status, body)),
            };
            read_code(&target)?
        }
    };
    match client::mfa(socket, profile, &code).await? {
        Reply::Ok(reply) => {
            let code = super::refresh::print_refreshed(&reply);
            for p in reply.profiles.iter().filter(|p| p.last_error.is_some()) {
                eprintln!(
                    "credfresh: {}: {}",
                    p.name,
                    p.last_error.as_deref().unwrap_or_default()
                );
            }
            Ok(code)
        }
        Reply::Refused(status, body) => Err(refused(status, body)),
    }
}

/// The daemon's refusal: a usage error (exit 2) for a profile that uses no MFA device (400)
/// as for an unknown one (404).
fn refused(status: StatusCode, body: Bytes) -> CliError {
    if status != StatusCode::BAD_REQUEST {
        return CliError::Refused(status, body);
    }
    let msg = serde_json::from_slice::<crate::api::ErrorReply>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    CliError::Usage(format!("credfresh: {msg}"))
}

/// A code from the terminal (`/dev/tty`) when stdin is one, else one line of stdin.
fn read_code(target: &crate::control::MfaTarget) -> Result<MfaCode, CliError> {
    let profile = match target.code_for == target.profile {
        true => target.profile.clone(),
        false => format!("{} (the device of {})", target.profile, target.code_for),
    };
    let mut line = String::new();
    let read = if std::io::stdin().is_terminal() {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .and_then(|mut tty| {
                write!(tty, "MFA code for {profile}: ")?;
                tty.flush()?;
                std::io::BufReader::new(tty).read_line(&mut line)
            })
    } else {
        std::io::stdin().lock().read_line(&mut line)
    };
    match read {
        Ok(0) => Err(CliError::Usage(
            "credfresh: no MFA code: stdin ended before a line; pass --code or type it".into(),
        )),
        Ok(_) => MfaCode::parse(&line).map_err(|e| CliError::Usage(format!("credfresh: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(CliError::Usage(format!(
            "credfresh: the MFA code read is not UTF-8 text: {}",
            MfaCode::parse("").err().unwrap_or_default()
        ))),
        Err(e) => Err(CliError::Failed(format!(
            "credfresh: cannot read the MFA code: {e}"
        ))),
    }
}
