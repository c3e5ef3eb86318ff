//! The commands that ask the daemon to act: `refresh`, `reload`, `prune`.

use crate::client::{self, Reply};
use crate::control::RefreshReply;
use crate::output::{colour_stdout, table, CliError, CliResult, EXIT_FAILURE};
use std::path::Path;
use std::time::SystemTime;

pub(super) async fn refresh(socket: &Path, profiles: Vec<String>) -> CliResult {
    match client::refresh(socket, &profiles).await? {
        Reply::Ok(reply) => Ok(print_refreshed(&reply)),
        Reply::Refused(code, body) => Err(CliError::Refused(code, body)),
    }
}

/// Prints the refreshed profiles' table; 0 when every one's credentials reached the file.
pub(super) fn print_refreshed(reply: &RefreshReply) -> u8 {
    print!(
        "{}",
        table(&reply.profiles, SystemTime::now(), colour_stdout())
    );
    if reply.delivered() {
        0
    } else {
        EXIT_FAILURE
    }
}

pub(super) async fn reload(socket: &Path) -> CliResult {
    match client::reload(socket).await? {
        Reply::Ok(r) if r.ok => {
            println!("{}", r.message);
            Ok(0)
        }
        Reply::Ok(r) => Err(CliError::Usage(format!("credfresh: {}", r.message))),
        Reply::Refused(code, body) => Err(CliError::Refused(code, body)),
    }
}

pub(super) async fn prune(socket: &Path, dry_run: bool) -> CliResult {
    match client::prune(socket, dry_run).await? {
        Reply::Ok(r) => {
            let verb = if r.dry_run { "would remove" } else { "removed" };
            if r.removed.is_empty() {
                println!("nothing to prune: every section credfresh wrote belongs to a configured profile");
            }
            for name in &r.removed {
                println!("{verb} [{name}]");
            }
            Ok(0)
        }
        Reply::Refused(code, body) => Err(CliError::Refused(code, body)),
    }
}
