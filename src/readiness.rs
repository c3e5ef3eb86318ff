//! `credfresh wait` and `POST /v1/wait`: whether profiles' credentials are delivered (the
//! credentials a profile holds are in the credentials file and still valid), and a wait for
//! that on the scheduler's status snapshots, woken by each change rather than by polling.

use crate::api::ProfileStatus;
use crate::snapshot::ProfileSnapshot;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Semaphore};

/// The longest one `POST /v1/wait` waits (and how long it waits without `timeout_seconds`);
/// `credfresh wait` asks again until its own `--timeout`, so a connection is never held
/// for long.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Waits held open at once. Each holds one of the server's connections for up to
/// [`MAX_WAIT`] and well-behaved clients ask again at once, so waiters are never freed by the
/// slow-client deadlines: capped well below the connection cap, they cannot take the
/// connections that `credential-process`, `status` and `exec`'s endpoint need.
pub const MAX_WAITERS: usize = 16;

/// How long a client whose wait was answered at once for want of a slot pauses before asking
/// again (the reply's `retry_after_seconds`).
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The slots of [`MAX_WAITERS`] waits; shared by every clone.
#[derive(Clone)]
pub struct WaitSlots(Arc<Semaphore>);

impl Default for WaitSlots {
    fn default() -> Self {
        WaitSlots(Arc::new(Semaphore::new(MAX_WAITERS)))
    }
}

/// Body of `POST /v1/wait`: which profiles (all when `profiles` is absent) and how long to
/// wait at most (capped at [`MAX_WAIT`]; 0 answers at once).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    /// Profile names.
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// Seconds to wait at most.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

/// Reply of `POST /v1/wait`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WaitReply {
    /// Every profile asked about has its current credentials in the file.
    pub ready: bool,
    /// The profiles that do, by name.
    pub delivered: Vec<String>,
    /// The status of each profile that does not (empty when `ready`).
    pub waiting: Vec<ProfileStatus>,
    /// Set when the request was answered at once, without waiting, because [`MAX_WAITERS`]
    /// other waits are open: ask again after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<f64>,
}

/// Why a wait could not be answered.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// These names are not managed profiles.
    Unknown(Vec<String>),
    /// The daemon is stopping.
    Stopped,
}

/// Whether `p`'s credentials are delivered at `now`: the file holds valid credentials of the
/// profile and its last write did not fail. A profile being refreshed (or whose new
/// credentials are being written) while its earlier credentials are in the file and valid is
/// delivered; `fresh` implies delivered.
pub fn delivered(p: &ProfileSnapshot, now: SystemTime) -> bool {
    p.in_file_until.is_some_and(|e| e > now)
}

/// The reply for `names` (all profiles when empty) in `profiles` at `now`.
pub fn check(
    profiles: &[ProfileSnapshot],
    names: &[String],
    now: SystemTime,
) -> Result<WaitReply, WaitError> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| !profiles.iter().any(|p| &p.name == *n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(WaitError::Unknown(unknown));
    }
    let asked = profiles
        .iter()
        .filter(|p| names.is_empty() || names.contains(&p.name));
    let (done, waiting): (Vec<&ProfileSnapshot>, Vec<&ProfileSnapshot>) =
        asked.partition(|p| delivered(p, now));
    Ok(WaitReply {
        ready: waiting.is_empty(),
        delivered: done.iter().map(|p| p.name.clone()).collect(),
        waiting: waiting.iter().map(|p| p.to_wire()).collect(),
        retry_after_seconds: None,
    })
}

/// Waits until every one of `names` (all when empty) is delivered, or `timeout`; answers
/// with the state then. Wakes only when the scheduler publishes a change.
pub async fn wait(
    mut profiles: watch::Receiver<Vec<ProfileSnapshot>>,
    names: &[String],
    timeout: Duration,
) -> Result<WaitReply, WaitError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let reply = check(&profiles.borrow_and_update(), names, crate::skew::now())?;
        if reply.ready {
            return Ok(reply);
        }
        tokio::select! {
            changed = profiles.changed() => if changed.is_err() {
                return Err(WaitError::Stopped);
            },
            _ = tokio::time::sleep_until(deadline) => {
                return check(&profiles.borrow(), names, crate::skew::now());
            }
        }
    }
}

/// What a `POST /v1/wait` body must be, for error messages.
pub const WAIT_SHAPE: &str = "empty or {\"profiles\": [\"name\", ...], \"timeout_seconds\": N}";

/// Serves one `POST /v1/wait`: the reply, or the status and message of an error (`400` for
/// a bad request, `404` naming unknown profiles, `503` when the daemon stops meanwhile).
/// Without a free one of `slots`, answers at once with the state now and
/// `retry_after_seconds`.
pub async fn answer(
    profiles: watch::Receiver<Vec<ProfileSnapshot>>,
    slots: &WaitSlots,
    req: WaitRequest,
) -> Result<WaitReply, (StatusCode, String)> {
    let bad = |why: String| {
        (
            StatusCode::BAD_REQUEST,
            format!("body must be {WAIT_SHAPE}: {why}"),
        )
    };
    let timeout = request_timeout(req.timeout_seconds).map_err(bad)?;
    let names = match req.profiles {
        Some(names) if names.is_empty() => {
            return Err(bad(
                "`profiles` names no profile; leave it out to wait for them all".into(),
            ))
        }
        names => names.unwrap_or_default(),
    };
    let slot = slots.0.clone().try_acquire_owned().ok();
    let busy = slot.is_none();
    let timeout = if busy { Duration::ZERO } else { timeout };
    let reply = wait(profiles, &names, timeout).await.map(|mut r| {
        if busy && !r.ready {
            r.retry_after_seconds = Some(RETRY_AFTER.as_secs_f64());
        }
        r
    });
    drop(slot);
    reply.map_err(|e| match e {
        WaitError::Unknown(unknown) => {
            let names: Vec<String> = unknown.iter().map(|n| format!("\"{n}\"")).collect();
            (
                StatusCode::NOT_FOUND,
                format!("no managed profile named {}", names.join(", ")),
            )
        }
        WaitError::Stopped => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        ),
    })
}

/// How long a request asks to wait: `timeout_seconds` capped at [`MAX_WAIT`], or an error
/// naming the value when it is negative or not a number.
pub fn request_timeout(seconds: Option<f64>) -> Result<Duration, String> {
    match seconds {
        None => Ok(MAX_WAIT),
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64())))
        }
        Some(s) => Err(format!(
            "`timeout_seconds` must be a number of seconds from 0 to {}, not {s}",
            MAX_WAIT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProfileState;

    fn p(
        name: &str,
        state: ProfileState,
        delivered: bool,
        expires_in: Option<u64>,
    ) -> ProfileSnapshot {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let expires_at = expires_in.map(|s| now + Duration::from_secs(s));
        ProfileSnapshot {
            name: name.into(),
            kind: "assume_role".into(),
            state,
            expires_at,
            next_refresh_at: None,
            last_refresh_at: None,
            last_error: None,
            account_id: None,
            in_file_until: expires_at.filter(|_| delivered),
        }
    }

    #[test]
    fn delivered_means_in_the_file_and_valid() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let profiles = [
            p("fresh", ProfileState::Fresh, true, Some(60)),
            // Being refreshed, the earlier credentials in the file: delivered.
            p("renewing", ProfileState::Refreshing, true, Some(60)),
            // Fetched, not written yet.
            p("writing", ProfileState::Refreshing, false, Some(60)),
            p("lapsed", ProfileState::Expired, true, Some(0)),
            p("pending", ProfileState::Pending, false, None),
        ];
        let r = check(&profiles, &[], now).unwrap();
        assert!(!r.ready);
        assert_eq!(r.delivered, ["fresh", "renewing"]);
        let waiting: Vec<&str> = r.waiting.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(waiting, ["writing", "lapsed", "pending"]);
        let r = check(&profiles, &["fresh".into(), "renewing".into()], now).unwrap();
        assert!(r.ready && r.waiting.is_empty());
        assert_eq!(
            check(&profiles, &["fresh".into(), "nope".into()], now).unwrap_err(),
            WaitError::Unknown(vec!["nope".into()])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_the_change_that_delivers_or_at_its_timeout() {
        let far = Some(10 * 365 * 24 * 3600 * 100);
        let (tx, rx) = watch::channel(vec![p("a", ProfileState::Refreshing, false, far)]);
        let names = vec!["a".to_owned()];
        let started = tokio::time::Instant::now();
        let r = wait(rx.clone(), &names, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!r.ready && r.waiting[0].state == ProfileState::Refreshing);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let waiter = tokio::spawn({
            let rx = rx.clone();
            let names = names.clone();
            async move { wait(rx, &names, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(vec![p("a", ProfileState::Fresh, true, far)]);
        let r = waiter.await.unwrap().unwrap();
        assert!(r.ready);
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        drop(tx);
        assert_eq!(
            wait(rx, &["b".into()], Duration::from_secs(1))
                .await
                .unwrap_err(),
            WaitError::Unknown(vec!["b".into()])
        );
    }

    #[tokio::test]
    async fn bad_requests_and_unknown_names_are_refused() {
        let (_tx, rx) = watch::channel(vec![p("a", ProfileState::Fresh, true, None)]);
        let ask = |profiles: Option<Vec<&str>>, timeout_seconds| WaitRequest {
            profiles: profiles.map(|v| v.into_iter().map(str::to_owned).collect()),
            timeout_seconds,
        };
        let slots = WaitSlots::default();
        let (code, why) = answer(rx.clone(), &slots, ask(Some(vec![]), None))
            .await
            .unwrap_err();
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(why.contains("names no profile"), "{why}");
        let (code, why) = answer(rx.clone(), &slots, ask(None, Some(-1.0)))
            .await
            .unwrap_err();
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(why.contains("timeout_seconds"), "{why}");
        let (code, why) = answer(rx.clone(), &slots, ask(Some(vec!["a", "x"]), Some(0.0)))
            .await
            .unwrap_err();
        assert_eq!(
            (code, why.as_str()),
            (StatusCode::NOT_FOUND, "no managed profile named \"x\"")
        );
        // No expiry: not delivered; a zero timeout answers at once.
        let reply = answer(rx, &slots, ask(None, Some(0.0))).await.unwrap();
        assert!(!reply.ready && reply.waiting[0].name == "a");
        assert_eq!(reply.retry_after_seconds, None);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_beyond_the_slots_are_answered_at_once_with_a_pause_to_take() {
        let (tx, rx) = watch::channel(vec![p("a", ProfileState::Pending, false, None)]);
        let slots = WaitSlots::default();
        let held: Vec<_> = (0..MAX_WAITERS)
            .map(|_| {
                let (rx, slots) = (rx.clone(), slots.clone());
                tokio::spawn(async move { answer(rx, &slots, WaitRequest::default()).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        let reply = answer(rx.clone(), &slots, WaitRequest::default())
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(!reply.ready);
        assert_eq!(reply.retry_after_seconds, Some(RETRY_AFTER.as_secs_f64()));
        // The held waits end: a slot is free again and a wait waits.
        tx.send_modify(|v| v[0] = p("a", ProfileState::Fresh, true, Some(60)));
        for h in held {
            assert!(h.await.unwrap().unwrap().ready);
        }
        tx.send_modify(|v| v[0] = p("a", ProfileState::Pending, false, None));
        let reply = answer(rx, &slots, WaitRequest::default()).await.unwrap();
        assert_eq!(started.elapsed(), MAX_WAIT);
        assert_eq!(reply.retry_after_seconds, None);
    }

    #[test]
    fn request_timeouts_are_capped_and_checked() {
        assert_eq!(request_timeout(None), Ok(MAX_WAIT));
        assert_eq!(request_timeout(Some(0.5)), Ok(Duration::from_millis(500)));
        assert_eq!(request_timeout(Some(1e9)), Ok(MAX_WAIT));
        assert!(request_timeout(Some(-1.0)).is_err());
        assert!(request_timeout(Some(f64::NAN)).is_err());
    }
}
