//! IAM Identity Center (SSO): the token cache shared with the AWS CLI, one token refresh per
//! session however many profiles use it, the warning before a session ends, and
//! `credfresh login`'s device authorization.
//!
//! aws-config's `SsoTokenProvider` cannot force a refresh, refreshes only in the last five
//! minutes and hides why a refresh failed; credfresh needs a configurable lead, a clear
//! `login_required`, and a single refresh per session, so it owns the cache here with
//! aws-sdk-ssooidc `CreateToken` and keeps the CLI's file format.
//!
//! `cache` reads and writes the CLI's token files, `plan` decides (with no clock or file) what
//! to do with a session's token, [`TokenManager`] carries that out, and `login` runs the device
//! authorization.

pub mod cache;
pub mod login;
mod plan;

use crate::config::SsoSession;
use crate::source_error::{describe, SourceError};
use aws_config::SdkConfig;
use aws_sdk_ssooidc::error::{ProvideErrorMetadata, SdkError};
use aws_types::region::Region;
use cache::{CachedToken, ReadError};
use plan::{AfterRejection, RefreshPlan, SessionMemory, TokenRequest};
use secrecy::{ExposeSecret, SecretString};
use sha1::Digest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// SSO-OIDC error codes that mean the refresh token or client registration is no good any
/// more: only a new login helps.
const REJECTED: &[&str] = &[
    "InvalidGrantException",
    "UnauthorizedException",
    "ExpiredTokenException",
    "InvalidClientException",
    "AccessDeniedException",
];

/// An access token ready to use, and when the session needs looking at again.
pub struct Token {
    /// The bearer token for the SSO portal.
    pub access_token: SecretString,
    /// When it stops working.
    pub expires_at: SystemTime,
    /// When the caller should come back even if its credentials last longer: the time to
    /// refresh the access token, the moment it ends without a way to refresh, or the time
    /// to warn that the session ends.
    pub check_at: Option<SystemTime>,
}

/// Settings of the token manager.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Refresh the access token when less than this remains.
    pub refresh_before: Duration,
    /// Warn when the session ends within this.
    pub warn_before: Duration,
    /// Whether a desktop session is there to show notifications in.
    pub desktop: bool,
}

/// Hands out access tokens from the AWS CLI's cache, refreshing them with their refresh token.
pub struct TokenManager {
    sdk: Arc<SdkConfig>,
    dir: PathBuf,
    settings: Mutex<TokenSettings>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<SessionMemory>>>>,
    /// Raised by [`TokenManager::retry_now`]: failures recorded under a lower one are forgotten.
    retry_epoch: AtomicU64,
}

impl TokenManager {
    /// A manager for the cache in `dir` (`~/.aws/sso/cache`).
    pub fn new(sdk: Arc<SdkConfig>, dir: PathBuf, settings: TokenSettings) -> Self {
        TokenManager {
            sdk,
            dir,
            settings: Mutex::new(settings),
            sessions: Mutex::new(HashMap::new()),
            retry_epoch: AtomicU64::new(0),
        }
    }

    /// Applies new settings (a reloaded config).
    pub fn set_settings(&self, settings: TokenSettings) {
        if let Ok(mut s) = self.settings.lock() {
            *s = settings;
        }
    }

    fn settings(&self) -> TokenSettings {
        match self.settings.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The cache file of `session`.
    pub fn path(&self, session: &SsoSession) -> PathBuf {
        self.dir.join(format!("{}.json", session.cache_key()))
    }

    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<SessionMemory>>>> {
        match self.sessions.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    fn memory(&self, session: &SsoSession) -> Arc<tokio::sync::Mutex<SessionMemory>> {
        self.sessions()
            .entry(session.cache_key())
            .or_default()
            .clone()
    }

    /// Forgets failed token refreshes, so the next profile of each session tries again at
    /// once (a `credfresh refresh` asked for it). Takes no session's lock: a token refresh in
    /// flight (up to 30 s) never delays the caller.
    pub fn retry_now(&self) {
        self.retry_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets everything remembered about sessions not in `in_use` (a reload removed their
    /// profiles), refreshed tokens included.
    pub fn retain_sessions(&self, in_use: &[&SsoSession]) {
        let keys: std::collections::BTreeSet<String> =
            in_use.iter().map(|s| s.cache_key()).collect();
        self.sessions().retain(|key, _| keys.contains(key));
    }

    /// A usable access token for `session`. Refreshes it first when less than
    /// `refresh_before` remains, or when the portal rejected the token whose [`fingerprint`]
    /// is `rejected` and the cache still holds that very token (when it holds another, a
    /// profile of the session has refreshed it meanwhile). Profiles of one session take turns
    /// here, so only the first refreshes and the others find the fresh token in the cache; a
    /// refresh that failed is not repeated by the others before its retry time. The decisions
    /// are the `plan` module's (pure, the time handed in); this does the I/O and the logging.
    pub async fn token(
        &self,
        session: &SsoSession,
        rejected: Option<&[u8]>,
    ) -> Result<Token, SourceError> {
        let settings = self.settings();
        let memory = self.memory(session);
        let mut memory = memory.lock().await;
        let epoch = self.retry_epoch.load(Ordering::SeqCst);
        let path = self.path(session);
        let request = TokenRequest {
            now: SystemTime::now(),
            epoch,
            rejected,
            refresh_before: settings.refresh_before,
            warn_before: settings.warn_before,
        };
        let mut token = match cache::read_async(path.clone()).await {
            Ok(t) => t,
            Err(ReadError::Missing) => {
                let why = format!(
                    "no SSO token is cached for it ({} is missing)",
                    path.display()
                );
                return Err(give_up(&mut memory, session, why, None, &settings));
            }
            Err(ReadError::Broken(why)) => {
                return Err(SourceError::transient("sso_cache", why));
            }
        };
        if let Some(newer) = memory.newer_than_cache(&token) {
            // The file went back to the token this manager replaced (a failed write, or
            // a stale copy put back): its refresh token may be spent. Use the newer one
            // and put it back in the file for the other tools.
            token = newer;
            write_back(session, &path, &token).await;
        }
        let mut retry_at = None;
        let mut reread = false;
        loop {
            memory.forget_stale_failure(&token, epoch);
            match plan::plan(&token, &memory, &request) {
                RefreshPlan::Use { retry_at: at } => {
                    retry_at = at;
                    break;
                }
                RefreshPlan::Fail(e) => return Err(e),
                RefreshPlan::LoginRequired { why, ended } => {
                    return Err(give_up(
                        &mut memory,
                        session,
                        why.to_owned(),
                        ended,
                        &settings,
                    ));
                }
                RefreshPlan::Refresh => {}
            }
            match self.refresh(session, &token).await {
                Ok(new) => {
                    store_refreshed(session, &path, &new).await;
                    memory.refreshed(fingerprint(&token.access_token), new.clone());
                    token = new;
                    break;
                }
                Err(Refresh::Rejected(why)) => {
                    // The AWS CLI or botocore may have rotated the refresh token since the
                    // cache was read, and SSO-OIDC refuses the old one: try the new one once.
                    if !reread {
                        reread = true;
                        if let Ok(current) = cache::read_async(path.clone()).await {
                            if plan::rotated(&token, &current) {
                                tracing::info!(
                                    sso_session = %session.label(),
                                    "the SSO token cache changed during the refresh; using the new token"
                                );
                                memory.latest = None;
                                token = current;
                                continue;
                            }
                        }
                    }
                    match plan::after_rejection(&token, &mut memory, &request) {
                        AfterRejection::LoginRequired { ended } => {
                            return Err(give_up(&mut memory, session, why, ended, &settings));
                        }
                        AfterRejection::UseUntilExpiry => tracing::warn!(
                            sso_session = %session.label(),
                            "{why}; the access token works until {}, then a new login is needed",
                            cache::format_time(token.expires_at)
                        ),
                    }
                    break;
                }
                Err(Refresh::Failed(mut e)) => {
                    e.message = format!(
                        "refresh the access token of SSO session \"{}\": {}",
                        session.label(),
                        e.message
                    );
                    let backoff = |n| crate::backoff::backoff(n, 0.0);
                    let Some(at) =
                        plan::after_failure(&token, &mut memory, e.clone(), backoff, &request)
                    else {
                        return Err(e);
                    };
                    retry_at = Some(at);
                    tracing::warn!(
                        sso_session = %session.label(),
                        "{}; the access token works until {}; trying again at {}",
                        e.message,
                        cache::format_time(token.expires_at),
                        cache::format_time(at)
                    );
                    break;
                }
            }
        }
        let schedule = plan::schedule(&token, &mut memory, retry_at, &request);
        if let Some((end, refreshable)) = schedule.warn_end {
            warn_session_end(session, end, refreshable, request.now, settings.desktop);
        }
        Ok(Token {
            access_token: token.access_token.clone(),
            expires_at: token.expires_at,
            check_at: schedule.check_at,
        })
    }

    /// The error that parks the profiles of `session` in `login_required` (the portal refused
    /// a freshly refreshed token), warned about like any other way the session ends.
    pub async fn give_up(&self, session: &SsoSession, why: String) -> SourceError {
        let settings = self.settings();
        let memory = self.memory(session);
        let mut memory = memory.lock().await;
        give_up(&mut memory, session, why, None, &settings)
    }

    async fn refresh(
        &self,
        session: &SsoSession,
        token: &CachedToken,
    ) -> Result<CachedToken, Refresh> {
        let (Some(refresh), Some(id), Some(secret)) =
            (&token.refresh_token, &token.client_id, &token.client_secret)
        else {
            return Err(Refresh::Rejected("no refresh token is cached".into()));
        };
        let client = oidc_client(&self.sdk, session);
        let out = client
            .create_token()
            .client_id(id)
            .client_secret(secret.expose_secret())
            .grant_type("refresh_token")
            .refresh_token(refresh.expose_secret())
            .send()
            .await
            .map_err(|e| classify_refresh(&e))?;
        let access = out.access_token().ok_or_else(|| {
            Refresh::Failed(SourceError::transient(
                "bad_response",
                "SSO-OIDC CreateToken response holds no accessToken",
            ))
        })?;
        let mut new = token.clone();
        new.access_token = crate::redact::secret(access.to_owned());
        new.expires_at = SystemTime::now() + Duration::from_secs(out.expires_in().max(0) as u64);
        if let Some(r) = out.refresh_token() {
            new.refresh_token = Some(crate::redact::secret(r.to_owned()));
        }
        Ok(new)
    }
}

/// Puts the newer `token` back in the cache file at `path`, which went back to the token it
/// replaced; a failure to write is logged, and the newer token used all the same.
async fn write_back(session: &SsoSession, path: &std::path::Path, token: &CachedToken) {
    match cache::write_async(path.to_owned(), token.clone()).await {
        Ok(()) => tracing::info!(
            sso_session = %session.label(),
            "the SSO token cache held an older token; wrote back the newer one"
        ),
        Err(e) => tracing::warn!(
            sso_session = %session.label(),
            "the SSO token cache holds an older token and cannot be rewritten ({}: {e}); using the newer one",
            path.display()
        ),
    }
}

/// Writes the token a refresh returned to the cache file at `path` (a failure is logged: the
/// token manager remembers the token) and logs the refresh.
async fn store_refreshed(session: &SsoSession, path: &std::path::Path, new: &CachedToken) {
    if let Err(e) = cache::write_async(path.to_owned(), new.clone()).await {
        tracing::warn!(
            sso_session = %session.label(),
            "cannot write the refreshed SSO token to {}: {e}",
            path.display()
        );
    }
    tracing::info!(
        sso_session = %session.label(),
        expires_at = %cache::format_time(new.expires_at),
        "refreshed the SSO access token"
    );
}

/// An SSO-OIDC client for `session`'s region, built from the shared settings (so
/// `AWS_ENDPOINT_URL_SSO_OIDC` and the disabled retries apply).
pub fn oidc_client(sdk: &SdkConfig, session: &SsoSession) -> aws_sdk_ssooidc::Client {
    let conf = aws_sdk_ssooidc::config::Builder::from(sdk)
        .region(Region::new(session.region.clone()))
        .build();
    aws_sdk_ssooidc::Client::from_conf(conf)
}

enum Refresh {
    /// Only a new login helps.
    Rejected(String),
    /// Maybe next time.
    Failed(SourceError),
}

fn classify_refresh<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Refresh
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(se) = e {
        let code = se.err().code().unwrap_or_default();
        if REJECTED.contains(&code) {
            return Refresh::Rejected(format!("SSO-OIDC rejected the refresh token ({code})"));
        }
    }
    Refresh::Failed(describe("SSO-OIDC", e))
}

/// SHA-1 of a token: enough to tell tokens apart without keeping or showing them.
pub fn fingerprint(s: &SecretString) -> Vec<u8> {
    sha1::Sha1::digest(s.expose_secret().as_bytes()).to_vec()
}

/// When only a new login can keep the session going: the client registration's end while
/// the refresh token works, else the access token's end.
pub fn session_end(token: &CachedToken, refreshable: bool) -> Option<SystemTime> {
    if refreshable {
        token.registration_expires_at
    } else {
        Some(token.expires_at)
    }
}

/// The error that parks a profile in `login_required`. `ended` is the access token's end, named
/// only when it has passed: a token the portal or SSO-OIDC refused is not "valid until" anything.
pub fn login_required(session: &SsoSession, why: String, ended: Option<SystemTime>) -> SourceError {
    let when = match ended {
        Some(t) if t <= SystemTime::now() => {
            format!("; the access token expired at {}", cache::format_time(t))
        }
        _ => String::new(),
    };
    SourceError::login_required(format!(
        "SSO session \"{}\" needs a new login: {why}{when}; run `{}` (or `aws sso login`)",
        session.label(),
        session.login_command()
    ))
}

/// Warns (log, and one desktop notification) that only a new login keeps the session going
/// after its end. With a working refresh token that end is the expiry of the OIDC client
/// registration (`registrationExpiresAt`): no client can know when IAM Identity Center itself
/// ends the session, which shows only as a refused refresh token. Without a usable refresh
/// token it is the access token's expiry.
fn warn_session_end(
    session: &SsoSession,
    end: SystemTime,
    refreshable: bool,
    now: SystemTime,
    desktop: bool,
) {
    let left = end.duration_since(now).unwrap_or_default();
    let what = if refreshable {
        "the client registration that refreshes its access token expires"
    } else {
        "its access token expires and cannot be refreshed"
    };
    let msg = format!(
        "SSO session \"{}\" ends at {} (in {}): {what}; run `{}` before then to keep credentials fresh",
        session.label(),
        cache::format_time(end),
        humantime::format_duration(Duration::from_secs(left.as_secs())),
        session.login_command()
    );
    tracing::warn!(sso_session = %session.label(), "{msg}");
    if desktop {
        notify_desktop(&msg);
    }
}

/// The `login_required` error, with one log warning and desktop notification per session
/// unless its end was warned about already.
fn give_up(
    memory: &mut SessionMemory,
    session: &SsoSession,
    why: String,
    ended: Option<SystemTime>,
    settings: &TokenSettings,
) -> SourceError {
    let e = login_required(session, why, ended);
    if memory.alert() {
        tracing::warn!(sso_session = %session.label(), "{}", e.message);
        if settings.desktop {
            notify_desktop(&e.message);
        }
    }
    e
}

/// Shows one desktop notification (`notify-send` on Linux, `osascript` on macOS); failures
/// are logged at debug and otherwise ignored.
pub fn notify_desktop(msg: &str) {
    let mut cmd = if cfg!(target_os = "macos") {
        let script = format!(
            "display notification \"{}\" with title \"credfresh\"",
            msg.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut c = tokio::process::Command::new("osascript");
        c.arg("-e").arg(script);
        c
    } else {
        let mut c = tokio::process::Command::new("notify-send");
        c.arg("--app-name=credfresh").arg("credfresh").arg(msg);
        c
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::debug!("cannot show a desktop notification: {e}"),
    }
}

/// Whether a browser can be opened: always on macOS, `DISPLAY` / `WAYLAND_DISPLAY` elsewhere.
pub fn has_display(env: &crate::env::Environment) -> bool {
    cfg!(target_os = "macos")
        || env.var("DISPLAY").is_some()
        || env.var("WAYLAND_DISPLAY").is_some()
}

/// Whether a desktop session is there to notify: always on macOS (`osascript`); elsewhere
/// `DISPLAY`, `WAYLAND_DISPLAY` or `DBUS_SESSION_BUS_ADDRESS` (systemd user units often have
/// only the session bus, which is all `notify-send` needs).
pub fn has_desktop(env: &crate::env::Environment) -> bool {
    cfg!(target_os = "macos")
        || ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
            .iter()
            .any(|v| env.var(v).is_some())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sources::FailureKind;

    fn token(expires_in: i64, refresh: bool, reg_in: Option<i64>) -> CachedToken {
        // Whole seconds, as the cache file holds them.
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let at = |s: i64| {
            if s >= 0 {
                now + Duration::from_secs(s as u64)
            } else {
                now - Duration::from_secs((-s) as u64)
            }
        };
        CachedToken {
            start_url: None,
            region: None,
            access_token: SecretString::from("a".to_owned()),
            expires_at: at(expires_in),
            refresh_token: refresh.then(|| SecretString::from("r".to_owned())),
            client_id: Some("c".into()),
            client_secret: Some(SecretString::from("s".to_owned())),
            registration_expires_at: reg_in.map(at),
            extra: Default::default(),
        }
    }

    #[test]
    fn desktop_notifications_need_a_display_or_the_session_bus() {
        let dir = tempfile::tempdir().unwrap();
        let env = |vars: &[(&str, &str)]| crate::env::Environment::new(dir.path(), vars);
        let mac = cfg!(target_os = "macos");
        assert_eq!(has_desktop(&env(&[])), mac);
        assert!(has_desktop(&env(&[("DISPLAY", ":0")])));
        assert!(has_desktop(&env(&[("WAYLAND_DISPLAY", "wayland-0")])));
        let bus_only = env(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")]);
        assert!(has_desktop(&bus_only));
        // A browser needs a display, not just the bus.
        assert_eq!(has_display(&bus_only), mac);
        assert!(has_display(&env(&[("DISPLAY", ":0")])));
    }

    #[test]
    fn session_ends_with_registration_or_access_token() {
        let t = token(3600, true, Some(86400));
        assert!(t.can_refresh(SystemTime::now()));
        assert_eq!(session_end(&t, true), t.registration_expires_at);
        let t = token(3600, false, Some(86400));
        assert!(!t.can_refresh(SystemTime::now()));
        assert_eq!(session_end(&t, false), Some(t.expires_at));
        let t = token(3600, true, Some(-5));
        assert!(!t.can_refresh(SystemTime::now()), "expired registration");
    }

    pub(crate) fn manager(
        dir: &std::path::Path,
        refresh_before: u64,
        warn_before: u64,
    ) -> TokenManager {
        let sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .http_client(crate::sources::http_client())
            .build();
        TokenManager::new(
            Arc::new(sdk),
            dir.to_owned(),
            TokenSettings {
                refresh_before: Duration::from_secs(refresh_before),
                warn_before: Duration::from_secs(warn_before),
                desktop: false,
            },
        )
    }

    pub(crate) fn session() -> SsoSession {
        SsoSession {
            name: Some("acme".into()),
            start_url: "https://x.awsapps.com/start".into(),
            region: "us-east-1".into(),
            scopes: vec![],
        }
    }

    #[tokio::test]
    async fn token_refresh_is_scheduled_refresh_before_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path(), 600, 60);
        let t = token(3600, true, Some(86400));
        cache::write(&m.path(&session()), &t).unwrap();
        let got = m.token(&session(), None).await.unwrap();
        // Refresh 10 min before expiry; the session end (a day away) is not near.
        assert_eq!(got.check_at, Some(t.expires_at - Duration::from_secs(600)));

        // No refresh token: come back when the access token ends (then login_required),
        // or to warn first.
        let t = token(3600, false, None);
        cache::write(&m.path(&session()), &t).unwrap();
        let got = m.token(&session(), None).await.unwrap();
        assert_eq!(got.check_at, Some(t.expires_at - Duration::from_secs(60)));
        let m = manager(dir.path(), 600, 7200);
        let got = m.token(&session(), None).await.unwrap();
        assert_eq!(
            got.check_at,
            Some(t.expires_at),
            "warned at once, so no warn time"
        );
    }

    #[test]
    fn removed_sessions_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path(), 600, 60);
        let other = SsoSession {
            name: Some("other".into()),
            ..session()
        };
        m.memory(&session());
        m.memory(&other);
        assert_eq!(m.sessions().len(), 2);
        m.retain_sessions(&[&session()]);
        let keys: Vec<String> = m.sessions().keys().cloned().collect();
        assert_eq!(keys, [session().cache_key()]);
        m.retain_sessions(&[]);
        assert!(m.sessions().is_empty());
    }

    #[tokio::test]
    async fn retry_now_forgets_failures_recorded_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path(), 600, 60);
        // Due for a refresh, none possible (no refresh token), still valid for 5 min.
        let t = token(300, false, None);
        cache::write(&m.path(&session()), &t).unwrap();
        let memo = m.memory(&session());
        let retry_at = SystemTime::now() + Duration::from_secs(60);
        // A token refresh in flight holds the session's lock, and then fails.
        let mut held = memo.lock().await;
        held.failed = Some(plan::FailedRefresh {
            access: fingerprint(&t.access_token),
            count: 1,
            retry_at,
            error: SourceError::transient("timeout", "SSO-OIDC did not answer in time"),
            epoch: m.retry_epoch.load(Ordering::SeqCst),
        });
        drop(held);
        let got = m.token(&session(), None).await.unwrap();
        assert_eq!(got.check_at, Some(retry_at), "the failure holds");
        // Asked for while that refresh was in flight: it does not wait for the lock.
        let held = memo.lock().await;
        m.retry_now();
        drop(held);
        let got = m.token(&session(), None).await.unwrap();
        assert_ne!(got.check_at, Some(retry_at));
        assert!(
            memo.lock().await.failed.is_none(),
            "the failure is forgotten"
        );
    }

    /// Holds `session`'s lock, as a token refresh in flight does, until the guard is dropped.
    pub(crate) async fn hold_session(
        m: &TokenManager,
        session: &SsoSession,
    ) -> Box<dyn std::any::Any + Send> {
        Box::new(m.memory(session).lock_owned().await)
    }

    #[tokio::test]
    async fn expired_without_refresh_is_login_required() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path(), 600, 60);
        let err = m.token(&session(), None).await.err().unwrap();
        assert_eq!(err.kind, FailureKind::LoginRequired, "{err}");
        assert!(
            err.message.contains("credfresh login --sso-session acme"),
            "{err}"
        );
        cache::write(&m.path(&session()), &token(-60, false, None)).unwrap();
        let err = m.token(&session(), None).await.err().unwrap();
        assert_eq!(err.kind, FailureKind::LoginRequired);
        assert!(err.message.contains("the access token expired at"), "{err}");
    }
}
