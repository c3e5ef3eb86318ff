//! `credfresh wait`: until the profiles' current credentials are in the file, asking the
//! daemon's `POST /v1/wait` (which answers when they are, or after at most
//! [`MAX_WAIT`]) again until `--timeout`. A daemon that stops after answering once (a
//! restart, say) is asked again until `--timeout`; with none answering by then, exit 3.

use crate::client::{self, ClientError, Reply};
use crate::output::{short, CliError, CliResult, EXIT_FAILURE, EXIT_NOT_RUNNING};
use crate::readiness::{MAX_WAIT, RETRY_AFTER};
use crate::redact::scrub_str;
use axum::http::StatusCode;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How often a lost daemon is asked again.
const RECONNECT: Duration = Duration::from_millis(250);

pub(super) async fn wait(socket: &Path, profiles: &[String], timeout: Duration) -> CliResult {
    let deadline = Instant::now() + timeout;
    // Whether a daemon answered: before that, none running is exit 3 at once.
    let mut reached = false;
    // Why the daemon was lost, while it is.
    let mut lost: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = match client::wait(socket, profiles, left.min(MAX_WAIT)).await {
            Ok(Reply::Ok(r)) => r,
            // The daemon is stopping: a restarted one is asked again.
            Ok(Reply::Refused(StatusCode::SERVICE_UNAVAILABLE, _)) => {
                reached = true;
                gone(&mut lost, "the daemon is shutting down".into(), socket);
                match again(deadline).await {
                    true => continue,
                    false => return Ok(not_back(socket, timeout, lost)),
                }
            }
            Ok(Reply::Refused(code, body)) => return Err(CliError::Refused(code, body)),
            Err(e @ ClientError::BadReply(_)) => return Err(e.into()),
            Err(e) if !reached => return Err(e.into()),
            Err(e) => {
                gone(&mut lost, e.to_string(), socket);
                match again(deadline).await {
                    true => continue,
                    false => return Ok(not_back(socket, timeout, lost)),
                }
            }
        };
        if lost.take().is_some() {
            eprintln!("credfresh: the daemon answers again");
        }
        reached = true;
        if reply.ready {
            println!("ready: {}", reply.delivered.join(", "));
            return Ok(0);
        }
        if Instant::now() < deadline {
            if let Some(pause) = reply.retry_after_seconds {
                // The daemon's wait slots are all taken: ask again shortly.
                let pause = Duration::try_from_secs_f64(pause)
                    .unwrap_or(RETRY_AFTER)
                    .min(RETRY_AFTER * 5);
                tokio::time::sleep_until(deadline.min(Instant::now() + pause)).await;
            }
            continue;
        }
        let mut text = format!(
            "credfresh: timed out after {}: the current credentials of {} not in the file:\n",
            short(timeout),
            if reply.waiting.len() == 1 {
                "this profile are"
            } else {
                "these profiles are"
            }
        );
        for p in &reply.waiting {
            text.push_str(&format!(
                "  {}: {}{}\n",
                p.name,
                p.state,
                p.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
        eprint!("{}", scrub_str(&text));
        return Ok(EXIT_FAILURE);
    }
}

/// Notes (once) that the daemon was lost, and why.
fn gone(lost: &mut Option<String>, why: String, socket: &Path) {
    if lost.is_none() {
        eprintln!(
            "{}",
            scrub_str(&format!(
                "credfresh: lost the daemon on {} ({why}); waiting for it to answer again",
                socket.display()
            ))
        );
    }
    *lost = Some(why);
}

/// Sleeps before asking a lost daemon again; `false` once the deadline has passed.
async fn again(deadline: Instant) -> bool {
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    tokio::time::sleep_until((now + RECONNECT).min(deadline)).await;
    true
}

/// Reports a daemon that did not answer again before the timeout: exit 3.
fn not_back(socket: &Path, timeout: Duration, lost: Option<String>) -> u8 {
    eprintln!(
        "{}",
        scrub_str(&format!(
            "credfresh: timed out after {}: the daemon on {} stopped answering ({}) and no daemon answered again; start it with `credfresh daemon`, or `systemctl --user start credfresh` where it is installed as a service",
            short(timeout),
            socket.display(),
            lost.unwrap_or_default()
        ))
    );
    EXIT_NOT_RUNNING
}
