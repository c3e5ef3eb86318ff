//! `credfresh mfa PROFILE [--code CODE]`: hands an MFA code to the daemon, which uses it at
//! once; exit 0 once the profile is fresh, else STS's reason.

use crate::client::{self, Reply};
use crate::mfa::MfaCode;
use crate::output::{CliError, CliResult};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

pub(super) async fn mfa(socket: &Path, profile: &str, code: Option<String>) -> CliResult {
    // Parsed here, not by clap, whose errors quote the value given.
    let code = match code {
        Some(c) => {
            MfaCode::parse(&c).map_err(|e| CliError::Usage(format!("credfresh: --code: {e}")))?
        }
        None => read_code(profile)?,
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
        Reply::Refused(status, body) => Err(CliError::Refused(status, body)),
    }
}

/// A code from the terminal (`/dev/tty`) when stdin is one, else one line of stdin.
fn read_code(profile: &str) -> Result<MfaCode, CliError> {
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
        Err(e) => Err(CliError::Failed(format!(
            "credfresh: cannot read the MFA code: {e}"
        ))),
    }
}
