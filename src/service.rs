//! Talking to service managers: systemd's notify protocol (`READY=1`, `RELOADING=1`,
//! `STOPPING=1`, `STATUS=`, `WATCHDOG=1`). Without `NOTIFY_SOCKET` every call is a no-op,
//! so the same binary runs under launchd, in a container or in a terminal.

//!
//! Nothing here ever blocks the runtime thread: datagrams go out with non-blocking sends, and
//! when the service manager's queue is full they wait in [`Pending`] (the latest `STATUS=`
//! line and one `WATCHDOG=1` at most, events in order) for [`keep_flushing`] to retry.

use crate::api::ProfileState;
use crate::scheduler::Command;
use crate::snapshot::ProfileSnapshot;
use sd_notify::NotifyState;
use std::collections::VecDeque;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

/// How often datagrams the service manager had no room for are tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Events (`READY=1`, `RELOADING=1`, `STOPPING=1`) kept while the queue is full; older ones
/// are dropped first.
const MAX_PENDING_EVENTS: usize = 16;

/// What is still to be sent.
#[derive(Default)]
struct Pending {
    events: VecDeque<String>,
    status: Option<String>,
    watchdog: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.status.is_none() && !self.watchdog
    }
}

/// A non-blocking datagram socket aimed at `NOTIFY_SOCKET`, and what waits to be sent.
struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    pending: Mutex<Pending>,
    retry: Notify,
}

/// The notifier, or `None` without a (usable) `NOTIFY_SOCKET`.
fn notifier() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            match open(&path) {
                Ok((socket, addr)) => Some(Notifier {
                    socket,
                    addr,
                    pending: Mutex::new(Pending::default()),
                    retry: Notify::new(),
                }),
                Err(e) => {
                    tracing::warn!(
                        "NOTIFY_SOCKET is set but unusable ({e}); not talking to the service manager"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// An unbound, non-blocking datagram socket and the address `path` names (`@name` is an
/// abstract socket on Linux).
fn open(path: &std::ffi::OsStr) -> io::Result<(UnixDatagram, SocketAddr)> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets exist only on Linux",
            ))
        }
        None if bytes.first() == Some(&b'/') => SocketAddr::from_pathname(path)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither an absolute path nor an abstract name",
            ))
        }
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

/// Queues `states` for the service manager, if there is one, as one datagram, and sends
/// what is queued without ever blocking. `STATUS=` and `WATCHDOG=1` are coalesced: while the
/// manager's queue is full only the newest status line and one ping wait to be sent.
pub fn notify(states: &[NotifyState<'_>]) {
    let Some(n) = notifier() else {
        return;
    };
    {
        let mut p = n
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut event = String::new();
        for state in states {
            match state {
                NotifyState::Status(line) => p.status = Some(format!("STATUS={line}\n")),
                NotifyState::Watchdog => p.watchdog = true,
                other => event.push_str(&format!("{other}\n")),
            }
        }
        if !event.is_empty() {
            if p.events.len() == MAX_PENDING_EVENTS {
                p.events.pop_front();
            }
            p.events.push_back(event);
        }
    }
    flush(n);
}

/// Sends what is pending until done or the manager's queue is full; in that case the rest
/// stays pending and [`keep_flushing`] is woken to try again later.
fn flush(n: &Notifier) {
    let mut p = n
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let (message, which) = if let Some(e) = p.events.front() {
            (e.clone(), 0)
        } else if let Some(s) = &p.status {
            (s.clone(), 1)
        } else if p.watchdog {
            ("WATCHDOG=1\n".to_owned(), 2)
        } else {
            return;
        };
        match n.socket.send_to_addr(message.as_bytes(), &n.addr) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                n.retry.notify_one();
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The manager is gone or refuses: this message is dropped, the next one is tried.
            Err(e) => tracing::debug!("sd_notify failed: {e}"),
            Ok(_) => {}
        }
        match which {
            0 => drop(p.events.pop_front()),
            1 => p.status = None,
            _ => p.watchdog = false,
        }
    }
}

/// Retries what the service manager had no room for every [`RETRY_INTERVAL`] until it is
/// all sent; sleeps (no timer) while nothing is pending.
pub async fn keep_flushing(shutdown: CancellationToken) {
    let Some(n) = notifier() else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = n.retry.notified() => {}
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY_INTERVAL) => {}
            }
            flush(n);
            let done = n
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty();
            if done {
                break;
            }
        }
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
pub fn status_line(profiles: &[ProfileSnapshot]) -> String {
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
    mut profiles: watch::Receiver<Vec<ProfileSnapshot>>,
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

    fn p(state: ProfileState) -> ProfileSnapshot {
        ProfileSnapshot {
            name: "x".into(),
            kind: "assume_role".into(),
            state,
            expires_at: None,
            next_refresh_at: None,
            last_refresh_at: None,
            last_error: None,
            account_id: None,
            in_file_until: None,
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
