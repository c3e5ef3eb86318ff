//! The token manager's decisions, free of I/O and of the clock: what it remembers about a
//! session ([`SessionMemory`]), what to do with the token the cache holds ([`plan`]), what a
//! refused or failed refresh leaves behind ([`after_rejection`], [`after_failure`]) and when to
//! look at the session again ([`schedule`]). [`super::TokenManager::token`] reads and writes the
//! cache, calls SSO-OIDC and logs; it reads the clock once and hands the time in.

use super::cache::CachedToken;
use super::{fingerprint, session_end};
use crate::source_error::SourceError;
use std::time::{Duration, SystemTime};

/// How soon a token refresh that failed while the old access token still works is tried again.
pub(super) const TOKEN_RETRY: Duration = Duration::from_secs(60);

/// What the manager remembers about one session between calls; its async mutex also makes
/// the profiles of one session take turns, so they share one refresh.
#[derive(Default)]
pub(super) struct SessionMemory {
    /// SHA-1 of a refresh token SSO-OIDC rejected: not tried again until the cache changes.
    pub(super) rejected: Option<Vec<u8>>,
    /// The session end already warned about.
    pub(super) warned_for: Option<SystemTime>,
    /// The last token refresh that failed and might work later: every profile of the session
    /// keeps to its retry time instead of asking SSO-OIDC itself.
    pub(super) failed: Option<FailedRefresh>,
    /// The token this manager refreshed last, and the SHA-1 of the access token it replaced:
    /// while the cache file still holds that old token (the write failed, or a stale copy
    /// was put back), the newer one in memory is used. Anything else in the file wins.
    pub(super) latest: Option<(Vec<u8>, CachedToken)>,
    /// Someone was told (log warning and desktop notification) that the session ends or
    /// needs a new login; cleared once the session works with no end in sight.
    pub(super) alerted: bool,
}

/// A token refresh that failed transiently.
pub(super) struct FailedRefresh {
    /// SHA-1 of the access token that was to be refreshed: a different token in the cache
    /// (a login, another tool's refresh) makes the failure irrelevant.
    pub(super) access: Vec<u8>,
    /// Failures in a row.
    pub(super) count: u32,
    /// Until then, the profiles of the session reuse the old token or the error.
    pub(super) retry_at: SystemTime,
    /// The error handed to profiles that need a new token before `retry_at`.
    pub(super) error: SourceError,
    /// The manager's retry epoch when the failed attempt began: a
    /// [`super::TokenManager::retry_now`] since then makes the failure irrelevant.
    pub(super) epoch: u64,
}

impl FailedRefresh {
    /// Whether the failure still speaks for `access` under the retry epoch `epoch`.
    fn applies(&self, access: &[u8], epoch: u64) -> bool {
        self.access == access && self.epoch >= epoch
    }
}

impl SessionMemory {
    /// Forgets the failed refresh if it was of another access token or from before a
    /// `retry_now`.
    pub(super) fn forget_stale_failure(&mut self, token: &CachedToken, epoch: u64) {
        let access = fingerprint(&token.access_token);
        if self
            .failed
            .as_ref()
            .is_some_and(|f| !f.applies(&access, epoch))
        {
            self.failed = None;
        }
    }

    /// Whether `token`'s refresh token is the one SSO-OIDC rejected.
    pub(super) fn refresh_rejected(&self, token: &CachedToken) -> bool {
        token
            .refresh_token
            .as_ref()
            .is_some_and(|r| self.rejected.as_deref() == Some(&fingerprint(r)[..]))
    }

    /// Marks the session as alerted; true when nobody had been told yet.
    pub(super) fn alert(&mut self) -> bool {
        !std::mem::replace(&mut self.alerted, true)
    }

    /// A refresh replaced the access token whose fingerprint is `replaced` with `new`.
    pub(super) fn refreshed(&mut self, replaced: Vec<u8>, new: CachedToken) {
        self.failed = None;
        self.latest = Some((replaced, new));
    }

    /// Checks the token read from the cache against the one this manager refreshed last.
    /// Returns that newer token when the file went back to the one it replaced (its refresh
    /// token may be spent): use it, and put it back in the file. Forgets it when the file
    /// holds any other token.
    pub(super) fn newer_than_cache(&mut self, cached: &CachedToken) -> Option<CachedToken> {
        let access = fingerprint(&cached.access_token);
        match &self.latest {
            Some((replaced, latest)) if *replaced == access => Some(latest.clone()),
            Some((_, latest)) if fingerprint(&latest.access_token) != access => {
                self.latest = None;
                None
            }
            _ => None,
        }
    }
}

/// One call of [`super::TokenManager::token`]: what it knows besides the token and the memory.
#[derive(Clone, Copy)]
pub(super) struct TokenRequest<'a> {
    /// The time of the call, read once.
    pub(super) now: SystemTime,
    /// The manager's retry epoch when the call took the session's lock.
    pub(super) epoch: u64,
    /// The fingerprint of an access token the portal rejected.
    pub(super) rejected: Option<&'a [u8]>,
    /// Refresh the access token when less than this remains.
    pub(super) refresh_before: Duration,
    /// Warn when the session ends within this.
    pub(super) warn_before: Duration,
}

impl TokenRequest<'_> {
    /// Whether the portal rejected `token`'s access token, so it must be refreshed whatever
    /// its expiry says.
    pub(super) fn forced(&self, token: &CachedToken) -> bool {
        self.rejected == Some(&fingerprint(&token.access_token)[..])
    }
}

/// What to do with the token the cache holds.
#[derive(Debug)]
pub(super) enum RefreshPlan {
    /// The token does. `retry_at`: a failed refresh's retry time that is being waited out.
    Use { retry_at: Option<SystemTime> },
    /// A profile of the session failed to refresh a moment ago and this one needs a new
    /// token: that failure's error, until its retry time.
    Fail(SourceError),
    /// Only a new login helps. `ended` is the access token's end (named only once passed).
    LoginRequired {
        why: &'static str,
        ended: Option<SystemTime>,
    },
    /// Ask SSO-OIDC for a new access token.
    Refresh,
}

/// What to do with `token`: use it as it is, refresh it, wait out a failed refresh, or give up.
pub(super) fn plan(
    token: &CachedToken,
    memory: &SessionMemory,
    request: &TokenRequest,
) -> RefreshPlan {
    let now = request.now;
    let forced = request.forced(token);
    if !(forced || token.expires_at < now + request.refresh_before) {
        return RefreshPlan::Use { retry_at: None };
    }
    let access = fingerprint(&token.access_token);
    if let Some(f) = memory
        .failed
        .as_ref()
        .filter(|f| f.applies(&access, request.epoch) && now < f.retry_at)
    {
        // A profile of the session tried a moment ago: keep to its retry time.
        if forced || !token.access_valid(now) {
            return RefreshPlan::Fail(f.error.clone());
        }
        return RefreshPlan::Use {
            retry_at: Some(f.retry_at),
        };
    }
    if !token.can_refresh(now) || memory.refresh_rejected(token) {
        if forced {
            return RefreshPlan::LoginRequired {
                why:
                    "the SSO portal rejected the access token and there is no usable refresh token",
                ended: None,
            };
        }
        if !token.access_valid(now) {
            let why = if token.refresh_token.is_none() {
                "the access token expired and no refresh token is cached"
            } else if memory.refresh_rejected(token) {
                "the access token expired and SSO-OIDC rejected the refresh token"
            } else {
                "the access token expired and the client registration that could refresh it has expired"
            };
            return RefreshPlan::LoginRequired {
                why,
                ended: Some(token.expires_at),
            };
        }
        return RefreshPlan::Use { retry_at: None };
    }
    RefreshPlan::Refresh
}

/// Whether the cache now holds another refresh token than `token` (the AWS CLI or botocore
/// rotated it while SSO-OIDC refused the old one).
pub(super) fn rotated(token: &CachedToken, current: &CachedToken) -> bool {
    let refresh = |t: &CachedToken| t.refresh_token.as_ref().map(fingerprint);
    refresh(current) != refresh(token)
}

/// What is left after SSO-OIDC refused the refresh token.
#[derive(Debug, PartialEq)]
pub(super) enum AfterRejection {
    /// Only a new login helps. `ended` is the access token's end, named only when it has
    /// passed: the portal refused a forced one already.
    LoginRequired { ended: Option<SystemTime> },
    /// The access token works until it expires, then a new login is needed.
    UseUntilExpiry,
}

/// Remembers that SSO-OIDC refused `token`'s refresh token, and says whether the access token
/// still does.
pub(super) fn after_rejection(
    token: &CachedToken,
    memory: &mut SessionMemory,
    request: &TokenRequest,
) -> AfterRejection {
    memory.rejected = token.refresh_token.as_ref().map(fingerprint);
    let forced = request.forced(token);
    if forced || !token.access_valid(request.now) {
        return AfterRejection::LoginRequired {
            ended: (!forced).then_some(token.expires_at),
        };
    }
    AfterRejection::UseUntilExpiry
}

/// Remembers a refresh of `token` that failed with `error` and might work later. Returns the
/// retry time when the old access token still does until then; `None` when the caller must
/// fail with `error`. Without a usable token the profiles back off (`backoff` of the failures
/// in a row, about 1 s doubling); the session waits the shortest such backoff, so the profile
/// that tried is never held back by its own failure.
pub(super) fn after_failure(
    token: &CachedToken,
    memory: &mut SessionMemory,
    error: SourceError,
    backoff: fn(u32) -> Duration,
    request: &TokenRequest,
) -> Option<SystemTime> {
    let now = request.now;
    let count = memory.failed.as_ref().map_or(0, |f| f.count) + 1;
    let usable = token.access_valid(now) && !request.forced(token);
    let retry_at = if usable {
        (now + TOKEN_RETRY).min(token.expires_at)
    } else {
        now + backoff(count)
    };
    memory.failed = Some(FailedRefresh {
        access: fingerprint(&token.access_token),
        count,
        retry_at,
        error,
        epoch: request.epoch,
    });
    usable.then_some(retry_at)
}

/// When to come back, and whether to warn now that the session ends.
#[derive(Debug, PartialEq)]
pub(super) struct Schedule {
    /// When the caller should come back even if its credentials last longer.
    pub(super) check_at: Option<SystemTime>,
    /// The session's end to warn about now, and whether the token can be refreshed until then.
    pub(super) warn_end: Option<(SystemTime, bool)>,
}

/// When to look at the session again for the `token` about to be used (`retry_at`: a failed
/// refresh's retry time), and whether its end is to be warned about now; records the warning
/// in `memory`.
pub(super) fn schedule(
    token: &CachedToken,
    memory: &mut SessionMemory,
    retry_at: Option<SystemTime>,
    request: &TokenRequest,
) -> Schedule {
    let now = request.now;
    let refreshable = token.can_refresh(now) && !memory.refresh_rejected(token);
    let end = session_end(token, refreshable);
    let mut check_at = if refreshable {
        token.expires_at.checked_sub(request.refresh_before)
    } else {
        Some(token.expires_at)
    };
    if retry_at.is_some() {
        check_at = retry_at;
    }
    let mut ending = false;
    let mut warn_end = None;
    if let Some(end) = end {
        let warn_at = end
            .checked_sub(request.warn_before)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        ending = warn_at <= now;
        if memory.warned_for != Some(end) {
            if ending {
                memory.warned_for = Some(end);
                // Not when the session was already said to need a new login.
                if memory.alert() {
                    warn_end = Some((end, refreshable));
                }
            } else {
                check_at = Some(check_at.map_or(warn_at, |c| c.min(warn_at)));
            }
        }
    }
    if refreshable && !ending {
        // The session works with no end in sight: its next end or refusal is news again.
        memory.alerted = false;
    }
    Schedule {
        check_at: check_at.filter(|c| *c > now),
        warn_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source_error::FailureKind;
    use secrecy::SecretString;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            now() + Duration::from_secs(secs as u64)
        } else {
            now() - Duration::from_secs((-secs) as u64)
        }
    }

    /// A token with access token `access`, ending in `expires_in` s, with refresh token
    /// `refresh` and a registration ending in `reg_in` s.
    fn token(
        access: &str,
        expires_in: i64,
        refresh: Option<&str>,
        reg_in: Option<i64>,
    ) -> CachedToken {
        CachedToken {
            start_url: None,
            region: None,
            access_token: SecretString::from(access.to_owned()),
            expires_at: at(expires_in),
            refresh_token: refresh.map(|r| SecretString::from(r.to_owned())),
            client_id: Some("c".into()),
            client_secret: Some(SecretString::from("s".to_owned())),
            registration_expires_at: reg_in.map(at),
            extra: Default::default(),
        }
    }

    fn refreshable(expires_in: i64) -> CachedToken {
        token("a", expires_in, Some("r"), Some(86400))
    }

    fn request(rejected: Option<&[u8]>) -> TokenRequest<'_> {
        TokenRequest {
            now: now(),
            epoch: 3,
            rejected,
            refresh_before: Duration::from_secs(600),
            warn_before: Duration::from_secs(3600),
        }
    }

    fn fp(s: &str) -> Vec<u8> {
        fingerprint(&SecretString::from(s.to_owned()))
    }

    fn failed(access: &str, retry_in: i64, epoch: u64) -> FailedRefresh {
        FailedRefresh {
            access: fp(access),
            count: 2,
            retry_at: at(retry_in),
            error: SourceError::transient("timeout", "SSO-OIDC did not answer in time"),
            epoch,
        }
    }

    fn login_required(p: RefreshPlan) -> (&'static str, Option<SystemTime>) {
        match p {
            RefreshPlan::LoginRequired { why, ended } => (why, ended),
            other => panic!("expected LoginRequired, got {other:?}"),
        }
    }

    #[test]
    fn a_fresh_token_is_used_as_it_is() {
        let m = SessionMemory::default();
        let p = plan(&refreshable(3600), &m, &request(None));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
        // Even without a refresh token or with an expired registration.
        let p = plan(&token("a", 3600, None, None), &m, &request(None));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
    }

    #[test]
    fn a_token_near_its_end_is_refreshed() {
        let m = SessionMemory::default();
        // 599 s left with a 600 s lead: due; 600 s left: not yet.
        assert!(matches!(
            plan(&refreshable(599), &m, &request(None)),
            RefreshPlan::Refresh
        ));
        assert!(matches!(
            plan(&refreshable(600), &m, &request(None)),
            RefreshPlan::Use { retry_at: None }
        ));
        // Expired, but the refresh token works.
        assert!(matches!(
            plan(&refreshable(-60), &m, &request(None)),
            RefreshPlan::Refresh
        ));
    }

    #[test]
    fn a_token_the_portal_rejected_is_refreshed_however_fresh() {
        let m = SessionMemory::default();
        let rejected = fp("a");
        let p = plan(&refreshable(3600), &m, &request(Some(&rejected)));
        assert!(matches!(p, RefreshPlan::Refresh), "{p:?}");
        // The portal rejected another token: this one was refreshed meanwhile.
        let other = fp("old");
        let p = plan(&refreshable(3600), &m, &request(Some(&other)));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
        // Rejected, and no way to refresh: a new login, with no end named.
        let t = token("a", 3600, None, None);
        let (why, ended) = login_required(plan(&t, &m, &request(Some(&rejected))));
        assert!(why.contains("portal rejected the access token"), "{why}");
        assert_eq!(ended, None);
    }

    #[test]
    fn without_a_refresh_token_the_token_is_used_until_it_expires() {
        let m = SessionMemory::default();
        let p = plan(&token("a", 300, None, None), &m, &request(None));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
        // Ten seconds of margin: 5 s left is expired.
        let t = token("a", 5, None, None);
        let (why, ended) = login_required(plan(&t, &m, &request(None)));
        assert!(why.contains("no refresh token is cached"), "{why}");
        assert_eq!(ended, Some(t.expires_at));
    }

    #[test]
    fn an_expired_registration_needs_a_new_login() {
        let m = SessionMemory::default();
        let t = token("a", 300, Some("r"), Some(-1));
        let p = plan(&t, &m, &request(None));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
        let t = token("a", -60, Some("r"), Some(-1));
        let (why, ended) = login_required(plan(&t, &m, &request(None)));
        assert!(why.contains("client registration"), "{why}");
        assert_eq!(ended, Some(t.expires_at));
    }

    #[test]
    fn a_rejected_refresh_token_is_not_tried_again_but_a_rotated_one_is() {
        let m = SessionMemory {
            rejected: Some(fp("r")),
            ..Default::default()
        };
        let p = plan(&refreshable(300), &m, &request(None));
        assert!(matches!(p, RefreshPlan::Use { retry_at: None }), "{p:?}");
        let t = refreshable(-60);
        let (why, ended) = login_required(plan(&t, &m, &request(None)));
        assert!(why.contains("rejected the refresh token"), "{why}");
        assert_eq!(ended, Some(t.expires_at));
        // Another tool put a new refresh token in the cache.
        let t = token("a", -60, Some("r2"), Some(86400));
        assert!(matches!(plan(&t, &m, &request(None)), RefreshPlan::Refresh));
        assert!(rotated(&refreshable(-60), &t));
        assert!(!rotated(&refreshable(-60), &refreshable(300)));
        assert!(rotated(&token("a", 1, None, None), &refreshable(1)));
    }

    #[test]
    fn a_failed_refresh_is_kept_to_until_its_retry_time() {
        let mut m = SessionMemory {
            failed: Some(failed("a", 30, 3)),
            ..Default::default()
        };
        // The old token still works: use it until the retry time.
        let p = plan(&refreshable(300), &m, &request(None));
        assert!(
            matches!(p, RefreshPlan::Use { retry_at: Some(t) } if t == at(30)),
            "{p:?}"
        );
        // It does not (expired, or the portal rejected it): the failure's error.
        for (t, rejected) in [(refreshable(5), None), (refreshable(300), Some(fp("a")))] {
            match plan(&t, &m, &request(rejected.as_deref())) {
                RefreshPlan::Fail(e) => assert_eq!(e.kind, FailureKind::Transient),
                other => panic!("{other:?}"),
            }
        }
        // The retry time has come.
        m.failed = Some(failed("a", 0, 3));
        assert!(matches!(
            plan(&refreshable(300), &m, &request(None)),
            RefreshPlan::Refresh
        ));
    }

    #[test]
    fn a_failure_of_another_token_or_before_retry_now_is_forgotten() {
        for stale in [failed("other", 30, 3), failed("a", 30, 2)] {
            let mut m = SessionMemory {
                failed: Some(stale),
                ..Default::default()
            };
            let p = plan(&refreshable(300), &m, &request(None));
            assert!(matches!(p, RefreshPlan::Refresh), "{p:?}");
            m.forget_stale_failure(&refreshable(300), 3);
            assert!(m.failed.is_none());
        }
        let mut m = SessionMemory {
            failed: Some(failed("a", 30, 3)),
            ..Default::default()
        };
        m.forget_stale_failure(&refreshable(300), 3);
        assert!(m.failed.is_some(), "still about this token");
    }

    #[test]
    fn a_refused_refresh_token_is_remembered() {
        let mut m = SessionMemory::default();
        let t = refreshable(300);
        assert_eq!(
            after_rejection(&t, &mut m, &request(None)),
            AfterRejection::UseUntilExpiry
        );
        assert_eq!(m.rejected, Some(fp("r")));
        assert!(m.refresh_rejected(&t));
        let t = refreshable(-60);
        assert_eq!(
            after_rejection(&t, &mut m, &request(None)),
            AfterRejection::LoginRequired {
                ended: Some(t.expires_at)
            }
        );
        // The portal refused the token already: no end named.
        let rejected = fp("a");
        assert_eq!(
            after_rejection(&refreshable(300), &mut m, &request(Some(&rejected))),
            AfterRejection::LoginRequired { ended: None }
        );
    }

    #[test]
    fn a_failed_refresh_is_remembered_with_its_retry_time() {
        let backoff: fn(u32) -> Duration = |n| Duration::from_secs(u64::from(n) * 5);
        let mut m = SessionMemory::default();
        let e = || SourceError::transient("timeout", "no answer");
        // Usable old token: a minute later, or at its end if that comes first.
        assert_eq!(
            after_failure(&refreshable(300), &mut m, e(), backoff, &request(None)),
            Some(at(60))
        );
        assert_eq!(
            after_failure(&refreshable(40), &mut m, e(), backoff, &request(None)),
            Some(at(40))
        );
        let f = m.failed.as_ref().unwrap();
        assert_eq!((f.count, f.epoch, f.retry_at), (2, 3, at(40)));
        assert_eq!(f.access, fp("a"));
        // No usable token: fail now, the session backs off by the failures in a row.
        assert_eq!(
            after_failure(&refreshable(5), &mut m, e(), backoff, &request(None)),
            None
        );
        assert_eq!(m.failed.as_ref().unwrap().retry_at, at(15));
        let rejected = fp("a");
        assert_eq!(
            after_failure(
                &refreshable(300),
                &mut m,
                e(),
                backoff,
                &request(Some(&rejected))
            ),
            None
        );
        assert_eq!(m.failed.as_ref().unwrap().count, 4);
        // A refresh that works forgets it.
        m.refreshed(fp("a"), token("b", 3600, Some("r"), Some(86400)));
        assert!(m.failed.is_none());
    }

    #[test]
    fn the_newer_token_wins_over_the_one_it_replaced() {
        let newer = token("b", 3600, Some("r2"), Some(86400));
        let mut m = SessionMemory::default();
        m.refreshed(fp("a"), newer.clone());
        // The file went back to the replaced token.
        let got = m.newer_than_cache(&refreshable(300)).unwrap();
        assert_eq!(fingerprint(&got.access_token), fp("b"));
        // The file holds the newer token: nothing to do, still remembered.
        assert!(m.newer_than_cache(&newer).is_none());
        assert!(m.latest.is_some());
        // Anything else (a login) wins and is remembered no more.
        assert!(m.newer_than_cache(&token("c", 3600, None, None)).is_none());
        assert!(m.latest.is_none());
    }

    #[test]
    fn the_next_check_is_the_refresh_time_or_the_retry_time() {
        let mut m = SessionMemory::default();
        let t = refreshable(3600);
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(
            s,
            Schedule {
                check_at: Some(at(3000)),
                warn_end: None
            }
        );
        let s = schedule(&t, &mut m, Some(at(60)), &request(None));
        assert_eq!(s.check_at, Some(at(60)));
        // No way to refresh: at its end, or earlier to warn that the session ends.
        let t = token("a", 7200, None, None);
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(
            s,
            Schedule {
                check_at: Some(at(3600)),
                warn_end: None
            }
        );
        // A time already passed is no time to come back.
        let s = schedule(&refreshable(300), &mut m, None, &request(None));
        assert_eq!(s.check_at, None);
    }

    #[test]
    fn the_session_end_is_warned_about_once() {
        let mut m = SessionMemory::default();
        // The registration ends within warn_before.
        let t = token("a", 3600, Some("r"), Some(1800));
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(s.warn_end, Some((at(1800), true)));
        assert_eq!(s.check_at, Some(at(3000)));
        assert_eq!(m.warned_for, Some(at(1800)));
        assert!(m.alerted);
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(s.warn_end, None, "warned already");
        // A rejected refresh token: the access token's end, not refreshable.
        let mut m = SessionMemory {
            rejected: Some(fp("r")),
            ..Default::default()
        };
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(s.warn_end, Some((t.expires_at, false)));
        assert_eq!(s.check_at, Some(t.expires_at));
        // Already told the session needs a new login: no second warning, but remembered.
        let mut m = SessionMemory {
            alerted: true,
            ..Default::default()
        };
        let s = schedule(&t, &mut m, None, &request(None));
        assert_eq!(s.warn_end, None);
        assert_eq!(m.warned_for, Some(at(1800)));
    }

    #[test]
    fn a_session_with_no_end_in_sight_is_news_again() {
        let mut m = SessionMemory {
            alerted: true,
            ..Default::default()
        };
        schedule(&refreshable(3600), &mut m, None, &request(None));
        assert!(!m.alerted);
        // Not while it cannot be refreshed.
        m.alerted = true;
        schedule(&token("a", 36000, None, None), &mut m, None, &request(None));
        assert!(m.alerted);
        assert!(!m.alert(), "already alerted");
        m.alerted = false;
        assert!(m.alert());
    }
}
