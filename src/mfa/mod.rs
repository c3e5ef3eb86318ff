//! MFA codes and the sessions they open: the code a user hands over (`credfresh mfa`), the
//! one an `mfa_process` prints, one code at a time per device, and what a restart can keep.
//!
//! A code is 6 digits, too short for the log scrubber ([`crate::redact`] masks secrets of 8
//! characters or more), so it is kept out of every text by construction: [`MfaCode`] has no
//! `Display`, its `Debug` prints `***`, error messages never quote it, and the only place
//! it goes is the `TokenCode` of one STS request.

pub mod process;

use crate::config::{Config, Mfa};
use crate::creds::TempCredentials;
use crate::source_error::SourceError;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A one-time code of an MFA device: exactly 6 ASCII digits.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaCode(String);

impl MfaCode {
    /// Reads a code; surrounding whitespace is ignored. The error never quotes the input.
    pub fn parse(text: &str) -> Result<MfaCode, String> {
        let t = text.trim();
        if t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(MfaCode(t.to_owned()))
        } else {
            Err("an MFA code is the 6 digits your device shows now".into())
        }
    }

    /// The digits, for the one STS request that spends the code.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaCode(***)")
    }
}

/// What one MFA device remembers: the code spent last, so a helper's code is not spent twice.
#[derive(Debug, Default)]
pub struct Device {
    /// The last code sent to STS for this device.
    pub last_code: Option<MfaCode>,
}

/// The command that gives profile `name` a code.
pub fn mfa_command(name: &str) -> String {
    format!("credfresh mfa {name}")
}

/// Settings a reload can change.
#[derive(Clone, Debug)]
pub struct MfaSettings {
    /// How long before an MFA session ends to warn.
    pub warn_before: Duration,
    /// How long before expiry credentials are refreshed.
    pub refresh_before: Duration,
    /// Whether to show desktop notifications.
    pub desktop: bool,
    /// The credentials file, where a restart finds the sessions it held.
    pub credentials_file: PathBuf,
}

#[derive(Clone, Debug, Default)]
struct ProfileInfo {
    mfa: bool,
    source: Option<String>,
}

/// Shared by the fetcher (which spends codes) and the control socket (which hands them
/// over). One lock per device: two profiles of one device never send codes at once.
pub struct MfaManager {
    settings: Mutex<MfaSettings>,
    handed: Mutex<HashMap<String, MfaCode>>,
    /// Woken when a code is handed over, so a running `mfa_process` gives way to it.
    handed_notify: tokio::sync::Notify,
    devices: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Device>>>>,
    profiles: Mutex<HashMap<String, ProfileInfo>>,
    /// Access key ids of the credentials this process obtained or took over: a section of
    /// the file holding one of them is no session to take over.
    known_keys: Mutex<HashSet<String>>,
    /// The end of each profile's current session, and whether it was warned about.
    ends: Mutex<HashMap<String, (SystemTime, bool)>>,
    /// Each profile's current session and whose it is (user or role, and device), handed
    /// out again when it is asked for before any code is due (`credfresh refresh`, a
    /// dependent pulling its source forward) by a profile of the same identity.
    sessions: Mutex<HashMap<String, (String, TempCredentials)>>,
    /// Profiles whose session a reload dropped (their user, role or device changed), until
    /// they hold a new one: what they need is said so.
    dropped: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MfaManager {
    /// A manager with no codes and no sessions.
    pub fn new(settings: MfaSettings) -> Self {
        MfaManager {
            settings: Mutex::new(settings),
            handed: Mutex::default(),
            handed_notify: tokio::sync::Notify::new(),
            devices: Mutex::default(),
            profiles: Mutex::default(),
            known_keys: Mutex::default(),
            ends: Mutex::default(),
            sessions: Mutex::default(),
            dropped: Mutex::default(),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> MfaSettings {
        lock(&self.settings).clone()
    }

    /// Applies reloaded settings.
    pub fn set_settings(&self, settings: MfaSettings) {
        *lock(&self.settings) = settings;
    }

    /// Learns which profiles need codes and how they chain (at start and every reload).
    pub fn set_profiles(&self, config: &Config) {
        let map = config
            .profiles
            .iter()
            .map(|p| {
                let info = ProfileInfo {
                    mfa: p.source.mfa().is_some(),
                    source: p.source.managed_source().map(str::to_owned),
                };
                (p.name.clone(), info)
            })
            .collect();
        *lock(&self.profiles) = map;
    }

    /// The profiles from the one a code for `name` is meant for (`name` itself when it has an
    /// MFA device, else the nearest profile up its `source_profile` chain that has one) down to
    /// `name`, sources first: everything a code for `name` refreshes.
    pub fn chain(&self, name: &str) -> Result<Vec<String>, String> {
        let profiles = lock(&self.profiles);
        let mut chain = Vec::new();
        let mut at = name;
        for _ in 0..=profiles.len() {
            let Some(info) = profiles.get(at) else {
                return Err(format!("no managed profile named \"{name}\""));
            };
            chain.push(at.to_owned());
            if info.mfa {
                chain.reverse();
                return Ok(chain);
            }
            match &info.source {
                Some(src) => at = src,
                None => break,
            }
        }
        Err(format!(
            "profile \"{name}\" uses no MFA device: neither it nor a profile up its source_profile chain has `mfa_serial`"
        ))
    }

    /// Keeps `code` for the next attempt of profile `name` (`credfresh mfa`).
    pub fn hand(&self, name: &str, code: MfaCode) {
        lock(&self.handed).insert(name.to_owned(), code);
        self.handed_notify.notify_waiters();
    }

    /// Waits until a code is handed for `name` and takes it: a running `mfa_process` gives
    /// way to it.
    pub async fn handed_wait(&self, name: &str) -> MfaCode {
        loop {
            let notified = self.handed_notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so a code handed in between is not missed.
            notified.as_mut().enable();
            if let Some(code) = self.take_handed(name) {
                return code;
            }
            notified.await;
        }
    }

    /// Whether a code handed for `name` is still waiting for an attempt to take it.
    pub fn is_handed(&self, name: &str) -> bool {
        lock(&self.handed).contains_key(name)
    }

    /// Forgets a code handed for `name` that no attempt used: a code is good for seconds.
    pub fn discard(&self, name: &str) {
        lock(&self.handed).remove(name);
    }

    /// Takes the code handed for `name`, if any (it is spent by the attempt that takes it).
    pub fn take_handed(&self, name: &str) -> Option<MfaCode> {
        lock(&self.handed).remove(name)
    }

    /// The lock of device `serial`.
    pub fn device(&self, serial: &str) -> Arc<tokio::sync::Mutex<Device>> {
        lock(&self.devices)
            .entry(serial.to_owned())
            .or_default()
            .clone()
    }

    /// Whether this process obtained (or already took over) the key `id`.
    pub fn knows_key(&self, id: &str) -> bool {
        lock(&self.known_keys).contains(id)
    }

    /// Remembers the session profile `name` now holds as `identity` (who it belongs to):
    /// its key and its end.
    pub fn holds(&self, name: &str, identity: &str, creds: &TempCredentials) {
        let end = creds.expiration;
        lock(&self.known_keys).insert(creds.access_key_id.clone());
        let session = (identity.to_owned(), creds.clone());
        lock(&self.sessions).insert(name.to_owned(), session);
        lock(&self.dropped).remove(name);
        let mut ends = lock(&self.ends);
        let warned = ends.get(name).is_some_and(|&(e, w)| e == end && w);
        ends.insert(name.to_owned(), (end, warned));
    }

    /// The session profile `name` holds as `identity`, while no code is due for it yet: it
    /// ends later than `warn_before` and `refresh_before` from `now`. A profile whose user,
    /// role or device a reload changed has none: that session is dropped (forgotten with
    /// its end, so nothing says it still runs).
    pub fn running(&self, name: &str, identity: &str, now: SystemTime) -> Option<TempCredentials> {
        let settings = self.settings();
        let lead = settings.warn_before.max(settings.refresh_before);
        let mut sessions = lock(&self.sessions);
        if sessions.get(name).is_some_and(|(id, _)| id != identity) {
            sessions.remove(name);
            lock(&self.ends).remove(name);
            lock(&self.dropped).insert(name.to_owned());
            return None;
        }
        sessions
            .get(name)
            .filter(|(id, _)| id == identity)
            .map(|(_, c)| c)
            .filter(|c| c.expiration.checked_sub(lead).is_some_and(|at| at > now))
            .cloned()
    }

    /// The `login_required` error of a profile that needs a code and has none (the scheduler
    /// logs it as a warning). While its session still runs it says when it ends; the first
    /// time for each end, `warn` is `Some(message)` for the desktop notification.
    pub fn needs_code(
        &self,
        name: &str,
        mfa: &Mfa,
        now: SystemTime,
    ) -> (SourceError, Option<String>) {
        let mut ends = lock(&self.ends);
        let running = ends.get_mut(name).filter(|(end, _)| *end > now);
        match running {
            Some((end, warned)) => {
                // The same text every time: the scheduler logs it once, not at every look.
                let msg = format!(
                    "the MFA session of \"{name}\" ends at {}; run `{}` with a new code from {} before then to keep its roles fresh",
                    humantime::format_rfc3339_seconds(*end),
                    mfa_command(name),
                    mfa.serial
                );
                let warn = (!std::mem::replace(warned, true)).then(|| msg.clone());
                (SourceError::login_required(msg), warn)
            }
            None if lock(&self.dropped).contains(name) => {
                let msg = format!(
                    "a reload changed the user, role or MFA device of \"{name}\", so its MFA session was dropped; run `{}` with a code from {}",
                    mfa_command(name),
                    mfa.serial
                );
                (SourceError::login_required(msg), None)
            }
            None => {
                let msg = format!(
                    "profile \"{name}\" needs a code from MFA device {}: run `{}`",
                    mfa.serial,
                    mfa_command(name)
                );
                (SourceError::login_required(msg), None)
            }
        }
    }

    /// When to look at a session that ends at `end` again, to warn that a code is due:
    /// [`warn_lead`] ahead of its end, or at once (a second from `now`, as the scheduler
    /// takes only later times) when that has passed, e.g. a session taken over at a restart
    /// inside the warning window. `None` once the session has ended.
    pub fn warn_at(
        &self,
        end: SystemTime,
        now: SystemTime,
        lifetime: Duration,
    ) -> Option<SystemTime> {
        if end <= now {
            return None;
        }
        let lead = warn_lead(lock(&self.settings).warn_before, lifetime);
        let soonest = now + Duration::from_secs(1);
        Some(end.checked_sub(lead).map_or(soonest, |at| at.max(soonest)))
    }
}

/// How long before the end of a session lasting `lifetime` (its `duration`) the code is asked
/// for: `warn_before`, or a third of the session when `warn_before` is not shorter than it
/// (the session would need a code from its start), as `refresh_before` does for credentials.
pub fn warn_lead(warn_before: Duration, lifetime: Duration) -> Duration {
    if warn_before < lifetime {
        warn_before
    } else {
        lifetime / 3
    }
}

/// The refusal of a code, said so that the user knows what to do: `login_required` when a
/// person must type the next code, kept as it is when a helper gave the code.
///
/// `handed` says the code was given with `credfresh mfa` (even when a helper is set).
pub fn refused(name: &str, mfa: &Mfa, handed: bool, err: SourceError) -> SourceError {
    // STS says the device is not this user's: no code can help, the config must change.
    if err.message.contains("verify your MFA serial number") {
        return SourceError::login_required(format!(
            "{}; a new code cannot help: check `mfa_serial` = \"{}\" of \"{name}\" (the device's ARN as IAM lists it for this user), then `credfresh reload`",
            err.message, mfa.serial
        ));
    }
    let about_code = err.message.contains("MultiFactorAuthentication")
        || err.message.contains("one time pass code");
    if !about_code {
        return err;
    }
    if mfa.process.is_some() && !handed {
        let msg = format!("{} (the code came from `mfa_process`)", err.message);
        return SourceError::new(err.kind, &err.reason, msg);
    }
    SourceError::login_required(format!(
        "{}; run `{}` with a new code",
        err.message,
        mfa_command(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_never_printed() {
        let c = MfaCode::parse(" 123456\n").unwrap();
        assert_eq!(c.expose(), "123456");
        assert_eq!(format!("{c:?}"), "MfaCode(***)");
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
            let e = MfaCode::parse(bad).unwrap_err();
            assert!(!bad.is_empty() && !e.contains(bad) || bad.is_empty(), "{e}");
        }
    }

    fn manager() -> MfaManager {
        MfaManager::new(MfaSettings {
            warn_before: Duration::from_secs(3600),
            refresh_before: Duration::from_secs(900),
            desktop: false,
            credentials_file: "creds".into(),
        })
    }

    #[test]
    fn a_running_session_is_warned_about_once_per_end() {
        let m = manager();
        let mfa = Mfa {
            serial: "arn:aws:iam::123456789012:mfa/alice".into(),
            process: None,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (e, warn) = m.needs_code("base", &mfa, now);
        assert!(warn.is_none());
        assert!(
            e.message.contains("run `credfresh mfa base`"),
            "{}",
            e.message
        );
        let creds = |end: u64| TempCredentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: "s".to_owned().into(),
            session_token: None,
            expiration: now + Duration::from_secs(end),
            account_id: None,
            arn: None,
            check_again_at: None,
        };
        m.holds("base", "alice", &creds(600));
        assert!(
            m.running("base", "alice", now).is_none(),
            "a code is due: it ends within warn_before"
        );
        let (e, warn) = m.needs_code("base", &mfa, now);
        assert!(warn.is_some());
        assert!(e.message.contains("ends at"), "{}", e.message);
        assert!(m.needs_code("base", &mfa, now).1.is_none());
        m.holds("base", "alice", &creds(600));
        assert!(m.needs_code("base", &mfa, now).1.is_none());
        assert!(m.knows_key("ASIA1") && !m.knows_key("ASIA2"));
        m.holds("base", "alice", &creds(7200));
        assert_eq!(
            m.running("base", "alice", now).unwrap().access_key_id,
            "ASIA1"
        );
        assert!(m.running("base", "bob", now).is_none(), "another identity");
    }

    #[test]
    fn the_warning_is_warn_before_ahead_or_at_once_or_at_two_thirds() {
        let m = manager();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let min = |n: u64| Duration::from_secs(n * 60);
        // A 12 h session: an hour ahead.
        assert_eq!(
            m.warn_at(now + min(720), now, min(720)),
            Some(now + min(660))
        );
        // Taken over with 9 minutes left: at once.
        assert_eq!(
            m.warn_at(now + min(9), now, min(720)),
            Some(now + Duration::from_secs(1))
        );
        // A 15-minute session, shorter than warn_before: after two thirds.
        assert_eq!(m.warn_at(now + min(15), now, min(15)), Some(now + min(10)));
        assert_eq!(m.warn_at(now, now, min(15)), None);
    }

    #[test]
    fn a_code_for_a_chained_role_goes_to_its_mfa_session() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[base]\naws_access_key_id = AKIA\n",
        )
        .unwrap();
        let env = crate::env::Environment::new(dir.path(), &[]);
        let text = "[[profile]]\nname = \"mfa\"\nkind = \"session_token\"\nsource_profile = \"base\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/alice\"\n\n\
            [[profile]]\nname = \"a\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/A\"\nsource_profile = \"mfa\"\n\n\
            [[profile]]\nname = \"b\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/B\"\nsource_profile = \"a\"\n\n\
            [[profile]]\nname = \"plain\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/P\"\nsource_profile = \"base\"\n";
        let config = crate::config::parse(&dir.path().join("c.toml"), text, &env).unwrap();
        let m = manager();
        m.set_profiles(&config);
        assert_eq!(m.chain("b").unwrap(), ["mfa", "a", "b"]);
        assert_eq!(m.chain("mfa").unwrap(), ["mfa"]);
        assert!(m.chain("plain").unwrap_err().contains("uses no MFA device"));
        assert!(m
            .chain("nope")
            .unwrap_err()
            .starts_with("no managed profile"));
        m.hand("mfa", MfaCode::parse("123456").unwrap());
        m.discard("mfa");
        assert!(m.take_handed("mfa").is_none());
    }

    #[tokio::test]
    async fn a_waiting_attempt_gets_the_code_handed_for_its_profile() {
        let m = Arc::new(manager());
        // Handed before the wait: taken at once.
        m.hand("base", MfaCode::parse("111111").unwrap());
        assert_eq!(m.handed_wait("base").await.expose(), "111111");
        // Handed during the wait; a code for another profile does not end it.
        let waiter = tokio::spawn({
            let m = m.clone();
            async move { m.handed_wait("base").await }
        });
        tokio::task::yield_now().await;
        m.hand("other", MfaCode::parse("333333").unwrap());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        m.hand("base", MfaCode::parse("222222").unwrap());
        let code = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code.expose(), "222222");
        assert!(!m.is_handed("base") && m.is_handed("other"));
    }

    #[test]
    fn a_refused_code_asks_for_a_new_one_unless_a_helper_gives_them() {
        let err = SourceError::permanent(
            "AccessDenied",
            "STS refused: AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        );
        let mut mfa = Mfa {
            serial: "arn:aws:iam::123456789012:mfa/alice".into(),
            process: None,
        };
        let e = refused("base", &mfa, false, err.clone());
        assert_eq!(e.kind, crate::source_error::FailureKind::LoginRequired);
        assert!(
            e.message.contains("invalid MFA one time pass code")
                && e.message.contains("credfresh mfa base")
        );
        mfa.process = Some(vec!["helper".into()]);
        assert_eq!(
            refused("base", &mfa, false, err.clone()).kind,
            crate::source_error::FailureKind::Permanent
        );
        // A code typed by a person while a helper is set: the person is asked again.
        assert_eq!(
            refused("base", &mfa, true, err).kind,
            crate::source_error::FailureKind::LoginRequired
        );
        // A device that is not the user's: the serial is named, no new code suggested.
        let err = SourceError::permanent(
            "AccessDenied",
            "STS refused: AccessDenied: MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
        );
        let e = refused("base", &mfa, false, err);
        assert_eq!(e.kind, crate::source_error::FailureKind::LoginRequired);
        assert!(e.message.contains("check `mfa_serial`"), "{}", e.message);
        assert!(!e.message.contains("with a new code"), "{}", e.message);
    }
}
