//! `credfresh wait`: until the profiles' current credentials are in the file, asking the
//! daemon's `POST /v1/wait` (which answers when they are, or after at most
//! [`MAX_WAIT`]) again until `--timeout`.

use crate::client::{self, Reply};
use crate::output::{short, CliError, CliResult, EXIT_FAILURE};
use crate::readiness::{MAX_WAIT, RETRY_AFTER};
use crate::redact::scrub_str;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

pub(super) async fn wait(socket: &Path, profiles: &[String], timeout: Duration) -> CliResult {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = match client::wait(socket, profiles, left.min(MAX_WAIT)).await? {
            Reply::Ok(r) => r,
            Reply::Refused(code, body) => return Err(CliError::Refused(code, body)),
        };
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
