//! The commands that ask the daemon to act: `refresh`, `reload`, `prune`.

use crate::client::{self, Reply};
use crate::control::RefreshReply;
use crate::output::{colour_stdout, fail, reply_error, table, EXIT_FAILURE, EXIT_USAGE};
use std::path::Path;
use std::time::SystemTime;

pub(super) async fn refresh(socket: &Path, profiles: Vec<String>) -> u8 {
    match client::refresh(socket, &profiles).await {
        Ok(Reply::Ok(reply)) => print_refreshed(&reply),
        Ok(Reply::Refused(code, body)) => reply_error(code, &body),
        Err(e) => fail(e),
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

pub(super) async fn reload(socket: &Path) -> u8 {
    match client::reload(socket).await {
        Ok(Reply::Ok(r)) if r.ok => {
            println!("{}", r.message);
            0
        }
        Ok(Reply::Ok(r)) => {
            eprintln!("credfresh: {}", r.message);
            EXIT_USAGE
        }
        Ok(Reply::Refused(code, body)) => reply_error(code, &body),
        Err(e) => fail(e),
    }
}

pub(super) async fn prune(socket: &Path, dry_run: bool) -> u8 {
    match client::prune(socket, dry_run).await {
        Ok(Reply::Ok(r)) => {
            let verb = if r.dry_run { "would remove" } else { "removed" };
            if r.removed.is_empty() {
                println!("nothing to prune: every section credfresh wrote belongs to a configured profile");
            }
            for name in &r.removed {
                println!("{verb} [{name}]");
            }
            0
        }
        Ok(Reply::Refused(code, body)) => reply_error(code, &body),
        Err(e) => fail(e),
    }
}
