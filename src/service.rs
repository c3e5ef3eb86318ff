//! Talking to service managers: systemd's notify protocol (`READY=1`, `RELOADING=1`,
//! `STOPPING=1`, `STATUS=`, `WATCHDOG=1`). Without `NOTIFY_SOCKET` every call is a no-op,
//! so the same binary runs under launchd, in a container or in a terminal.

use crate::api::{ProfileState, ProfileStatus};
use crate::scheduler::Command;
use sd_notify::NotifyState;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Sends `states` to the service manager, if there is one.
pub fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// Tells systemd the daemon is re-reading its config (`RELOADING=1` with `MONOTONIC_USEC`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// A one-line summary for `STATUS=`, e.g. "3 fresh, 1 login required".
pub fn status_line(profiles: &[ProfileStatus]) -> String {
    if profiles.is_empty() {
        return "no profiles managed".into();
    }
    let order = [
        ProfileState::Fresh,
        ProfileState::Refreshing,
        ProfileState::Pending,
        ProfileState::Retrying,
        ProfileState::Expired,
        ProfileState::LoginRequired,
        ProfileState::Error,
    ];
    order
        .iter()
        .filter_map(|state| {
            let n = profiles.iter().filter(|p| p.state == *state).count();
            (n > 0).then(|| format!("{n} {}", state.to_string().replace('_', " ")))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Keeps `STATUS=` current while the daemon runs.
pub async fn report_status(
    mut profiles: watch::Receiver<Vec<ProfileStatus>>,
    shutdown: CancellationToken,
) {
    let mut last = String::new();
    loop {
        let line = status_line(&profiles.borrow_and_update());
        if line != last {
            notify(&[NotifyState::Status(&line)]);
            last = line;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = profiles.changed() => if changed.is_err() { break },
        }
    }
}

/// When systemd asked for a watchdog (`WatchdogSec=`), sends `WATCHDOG=1` at half the
/// interval, but only while the scheduler loop answers: a hung scheduler gets restarted.
pub async fn watchdog(commands: mpsc::Sender<Command>, shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(10));
    tracing::debug!(
        interval_ms = interval.as_millis() as u64,
        "systemd watchdog enabled"
    );
    loop {
        let (tx, rx) = oneshot::channel();
        let alive = commands.send(Command::Ping(tx)).await.is_ok()
            && tokio::time::timeout(period, rx)
                .await
                .is_ok_and(|r| r.is_ok());
        if alive {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::warn!("scheduler did not answer the watchdog ping");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(state: ProfileState) -> ProfileStatus {
        ProfileStatus {
            name: "x".into(),
            kind: "assume_role".into(),
            state,
            expires_at: None,
            next_refresh_at: None,
            last_refresh_at: None,
            last_error: None,
            account_id: None,
        }
    }

    #[test]
    fn status_line_counts_states() {
        use ProfileState::*;
        let ps = [p(Fresh), p(LoginRequired), p(Fresh), p(Fresh)];
        assert_eq!(status_line(&ps), "3 fresh, 1 login required");
        assert_eq!(status_line(&[]), "no profiles managed");
        assert_eq!(status_line(&[p(Retrying), p(Error)]), "1 retrying, 1 error");
    }
}
