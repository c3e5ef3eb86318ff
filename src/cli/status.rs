//! `credfresh status`.

use crate::api::{ProfileStatus, Status};
use crate::client;
use crate::client::ClientError;
use crate::output::{colour_stdout, table, CliError, CliResult};
use hyper::Method;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub(super) async fn status(
    socket: &Path,
    json: bool,
    profile: Option<String>,
    watch: bool,
) -> CliResult {
    let path = match &profile {
        Some(p) => client::url_path(&["v1", "profiles", p]),
        None => "/v1/status".to_owned(),
    };
    let colour = colour_stdout();
    loop {
        let (code, body) = client::request(socket, Method::GET, &path, None).await?;
        if !code.is_success() {
            return Err(CliError::Refused(code, body));
        }
        let text = if json {
            format!("{}\n", String::from_utf8_lossy(&body).trim_end())
        } else {
            render_status(&body, profile.is_some(), colour).map_err(ClientError::BadReply)?
        };
        if !watch {
            print!("{text}");
            return Ok(0);
        }
        // Clear the screen on a terminal; separate snapshots with a blank line otherwise.
        if colour {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            println!("{text}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// How often `status --watch` redraws.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

fn render_status(body: &[u8], single: bool, colour: bool) -> Result<String, serde_json::Error> {
    let now = SystemTime::now();
    if single {
        let p: ProfileStatus = serde_json::from_slice(body)?;
        return Ok(table(&[p], now, colour));
    }
    let s: Status = serde_json::from_slice(body)?;
    let mut out = format!(
        "credfresh {} (pid {}) writing {}\n",
        s.version, s.pid, s.credentials_file
    );
    // The daemon's times are on AWS's clock: "expires in" counts from AWS's now.
    let offset = Duration::from_secs(s.clock_offset_seconds.unsigned_abs());
    let now = if s.clock_offset_seconds >= 0 {
        now.checked_add(offset)
    } else {
        now.checked_sub(offset)
    }
    .unwrap_or(now);
    if offset > crate::skew::WARN_ABOVE {
        out.push_str(&format!(
            "clock: the local clock is {} AWS's by {} (times below are AWS's)\n",
            if s.clock_offset_seconds > 0 {
                "behind"
            } else {
                "ahead of"
            },
            humantime::format_duration(offset)
        ));
    }
    if let Some(e) = &s.file_error {
        out.push_str(&format!("credentials file error: {e}\n"));
    }
    if let Some(f) = crate::mounts::single_file_mount(Path::new(&s.credentials_file)) {
        out.push_str(&format!("warning: {}\n", crate::mounts::advice(&f)));
    }
    if let Some(e) = &s.config_error {
        out.push_str(&format!("config error: {e}\n"));
    }
    if s.profiles.is_empty() {
        out.push_str("no profiles are managed\n");
    } else {
        out.push_str(&table(&s.profiles, now, colour));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rfc3339;

    #[test]
    fn status_counts_from_aws_clock_and_names_a_large_offset() {
        let aws_now = SystemTime::now() - Duration::from_secs(1200);
        let body = serde_json::json!({
            "version": "0.1.0", "pid": 1, "started_at": rfc3339(aws_now),
            "credentials_file": "/c", "clock_offset_seconds": -1200,
            "profiles": [{
                "name": "p", "kind": "assume_role", "state": "fresh",
                "expires_at": rfc3339(aws_now + Duration::from_secs(600)),
                "next_refresh_at": null, "last_refresh_at": null, "last_error": null,
                "account_id": null
            }]
        });
        let text = render_status(body.to_string().as_bytes(), false, false).unwrap();
        assert!(
            text.contains("clock: the local clock is ahead of AWS's by 20m"),
            "{text}"
        );
        assert!(text.contains("in 9m") || text.contains("in 10m"), "{text}");
        let small = body.to_string().replace("-1200", "-30");
        let text = render_status(small.as_bytes(), false, false).unwrap();
        assert!(!text.contains("clock:"), "{text}");
    }
}
