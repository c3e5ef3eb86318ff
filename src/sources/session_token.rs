//! MFA sources: `sts:GetSessionToken` with a code (`session_token` profiles), the code for an
//! `assume_role` whose role demands MFA, and taking over after a restart the session the
//! credentials file still holds.

use super::{describe, SourceError};
use crate::config::{Mfa, SessionToken};
use crate::creds::TempCredentials;
use crate::mfa::{Device, MfaCode, MfaManager};
use aws_config::SdkConfig;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::OwnedMutexGuard;

/// Who the credentials of a session belong to: a section of the file must belong to the
/// same before it is taken over, a running session before it is handed out again.
#[derive(Debug)]
pub(super) enum Owner<'a> {
    /// The IAM user of this AWS profile (a `session_token` profile).
    User(&'a str),
    /// This role (an `assume_role` profile with `mfa_serial`).
    Role(&'a str),
}

/// How an attempt of an MFA profile goes on.
pub(super) enum Start {
    /// With this session, no code needed: the one running, or the one the credentials file
    /// held at a restart.
    Held(TempCredentials),
    /// With a code, to spend on one STS call.
    Code(Spend),
}

/// A code to spend, with the device's lock held from here to the STS call.
pub(super) struct Spend {
    /// The code.
    pub code: MfaCode,
    /// Whether a person gave it (`credfresh mfa`) rather than `mfa_process`.
    pub handed: bool,
    /// The device, locked: two profiles of one device never send codes at once.
    pub device: OwnedMutexGuard<Device>,
}

/// How profile `name` of device `mfa` goes on: a code handed over by `credfresh mfa` first
/// (the user asked for a new session); else its running session while no code is due yet
/// (`credfresh refresh`, a dependent pulling it forward); else, after a restart, the
/// session the credentials file holds; else a code from `mfa_process` (a new one if it
/// repeats the code spent last), unless a code is handed over while it runs; else
/// `login_required`. The device's lock is taken only to spend a code, never while a helper
/// waits (for a touch, a PIN), so the device's other profiles are not held up by it.
/// `lifetime` is the longest session the profile's `duration` gives: a file's session said
/// to last longer is not taken over.
#[allow(clippy::too_many_arguments)] // the parts of one attempt, each borrowed from the caller
pub(super) async fn start(
    sdk: &SdkConfig,
    mfa_manager: &MfaManager,
    name: &str,
    mfa: &Mfa,
    owner: Owner<'_>,
    region: &str,
    device: Arc<tokio::sync::Mutex<Device>>,
    lifetime: Duration,
) -> Result<Start, SourceError> {
    let spend = |code, handed, device| {
        Ok(Start::Code(Spend {
            code,
            handed,
            device,
        }))
    };
    if let Some(code) = mfa_manager.take_handed(name) {
        return spend(code, true, device.lock_owned().await);
    }
    let now = crate::skew::now();
    let session = match mfa_manager.running(name, &session_identity(&owner, mfa), now) {
        Some(c) => Some(c),
        None => take_over(sdk, mfa_manager, name, &owner, region, lifetime).await,
    };
    if let Some(c) = session {
        return Ok(Start::Held(held(
            mfa_manager,
            name,
            mfa,
            &owner,
            c,
            lifetime,
        )));
    }
    let Some(argv) = &mfa.process else {
        return Err(no_code(mfa_manager, name, mfa));
    };
    let (code, handed) = helper_code(mfa_manager, name, argv).await?;
    let guard = device.clone().lock_owned().await;
    if handed || guard.last_code.as_ref() != Some(&code) {
        return spend(code, handed, guard);
    }
    drop(guard);
    // The code of this 30-second step was spent already: wait for the next one.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    tracing::info!(profile = %name, "mfa_process repeated the code spent last; waiting for the next one");
    let step = Duration::from_secs(30 - now % 30 + 1);
    tokio::select! {
        code = mfa_manager.handed_wait(name) => return spend(code, true, device.lock_owned().await),
        () = tokio::time::sleep(step) => {}
    }
    let (code, handed) = helper_code(mfa_manager, name, argv).await?;
    let guard = device.lock_owned().await;
    if !handed && guard.last_code.as_ref() == Some(&code) {
        return Err(SourceError::transient(
            "mfa_process",
            format!("mfa_process of \"{name}\" printed the code spent last again"),
        ));
    }
    spend(code, handed, guard)
}

/// A code from `mfa_process`, or the one handed over with `credfresh mfa` while it runs
/// (then the helper is stopped, with its process group): `(code, handed)`.
async fn helper_code(
    mfa_manager: &MfaManager,
    name: &str,
    argv: &[String],
) -> Result<(MfaCode, bool), SourceError> {
    tokio::select! {
        code = mfa_manager.handed_wait(name) => {
            tracing::info!(profile = %name, "a code was given with `credfresh mfa`; mfa_process stopped");
            Ok((code, true))
        }
        code = crate::mfa::process::run(argv, name, crate::mfa::process::TIMEOUT) => Ok((code?, false)),
    }
}

/// The error for profile `name` that has no code (the scheduler logs it), shown on the
/// desktop once per session end.
fn no_code(mfa_manager: &MfaManager, name: &str, mfa: &Mfa) -> SourceError {
    let (err, warn) = mfa_manager.needs_code(name, mfa, crate::skew::now());
    if let Some(msg) = warn {
        if mfa_manager.settings().desktop {
            crate::sso::notify_desktop(&msg);
        }
    }
    err
}

/// Remembers the session profile `name` now holds, and asks to be looked at again in time
/// to warn before it ends when only a person can give the next code (at once when that time
/// has passed: a session taken over at a restart inside the warning window). `lifetime` is
/// the profile's `duration`.
pub(super) fn held(
    mfa_manager: &MfaManager,
    name: &str,
    mfa: &Mfa,
    owner: &Owner<'_>,
    mut creds: TempCredentials,
    lifetime: Duration,
) -> TempCredentials {
    mfa_manager.holds(name, &session_identity(owner, mfa), &creds);
    if mfa.process.is_none() {
        let now = crate::skew::now();
        creds.check_again_at = mfa_manager.warn_at(creds.expiration, now, lifetime);
    }
    creds
}

/// One `GetSessionToken` for profile `name`.
pub(super) async fn fetch(
    sdk: &SdkConfig,
    mfa_manager: &MfaManager,
    name: &str,
    spec: &SessionToken,
) -> Result<TempCredentials, SourceError> {
    let region = super::sts_region(sdk, spec.region.as_ref());
    let device = mfa_manager.device(&spec.mfa.serial);
    let owner = Owner::User(&spec.source_profile);
    let mut spend = match start(
        sdk,
        mfa_manager,
        name,
        &spec.mfa,
        owner,
        &region,
        device,
        spec.duration,
    )
    .await?
    {
        Start::Held(c) => return Ok(c),
        Start::Code(spend) => spend,
    };
    let base = super::aws_profile::resolve(sdk, &spec.source_profile, &region).await?;
    let sent = super::sts_client(sdk, &region, base)
        .get_session_token()
        .serial_number(&spec.mfa.serial)
        .token_code(spend.code.expose())
        .duration_seconds(super::duration_seconds(spec.duration))
        .send()
        .await;
    spend.device.last_code = Some(spend.code);
    let out = sent.map_err(|e| {
        let mut err = describe("STS", &e);
        err.message = format!("GetSessionToken for \"{name}\": {}", err.message);
        crate::mfa::refused(name, &spec.mfa, spend.handed, err)
    })?;
    let mut creds = super::from_sts("GetSessionToken", out.credentials(), None)?;
    creds.account_id = crate::creds::account_from_arn(&spec.mfa.serial);
    tracing::info!(profile = %name, "MFA session started");
    let owner = Owner::User(&spec.source_profile);
    Ok(held(
        mfa_manager,
        name,
        &spec.mfa,
        &owner,
        creds,
        spec.duration,
    ))
}

/// The credentials the file holds in section `name` when this process did not write them
/// (a restart) and they are still valid and belong to `owner` (checked with
/// `GetCallerIdentity`), so a restart does not need a new code. An expiry further ahead than
/// `lifetime` (the configured `duration`, at most GetSessionToken's 36 h) cannot be a session
/// STS granted: a hand-edited or copied file is not trusted, a code is asked for.
async fn take_over(
    sdk: &SdkConfig,
    mfa_manager: &MfaManager,
    name: &str,
    owner: &Owner<'_>,
    region: &str,
    lifetime: Duration,
) -> Option<TempCredentials> {
    let path = mfa_manager.settings().credentials_file;
    let text = tokio::fs::read_to_string(&path).await.ok()?;
    let section = crate::credentials_file::read_section(&text, name)?;
    let key = section.get("aws_access_key_id")?;
    if mfa_manager.knows_key(key) {
        return None;
    }
    let expiry =
        humantime::parse_rfc3339(section.get(crate::credentials_file::EXPIRATION_KEY)?).ok()?;
    let now = crate::skew::now();
    if expiry <= now + Duration::from_secs(60) {
        return None;
    }
    if !plausible_expiry(expiry, now, lifetime) {
        tracing::warn!(profile = %name, expires_at = %humantime::format_rfc3339_seconds(expiry), "the credentials file says the MFA session lasts longer than its `duration` allows; not taking it over");
        return None;
    }
    let creds = TempCredentials {
        access_key_id: key.clone(),
        secret_access_key: crate::redact::secret(section.get("aws_secret_access_key")?.clone()),
        session_token: Some(crate::redact::secret(
            section.get("aws_session_token")?.clone(),
        )),
        expiration: expiry,
        account_id: None,
        arn: None,
        check_again_at: None,
    };
    let who = identity(sdk, creds.to_sdk(), region).await?;
    let belongs = match owner {
        Owner::User(profile) => {
            let keys = super::aws_profile::resolve(sdk, profile, region)
                .await
                .ok()?;
            identity(sdk, keys, region).await.as_deref() == Some(who.as_str())
        }
        Owner::Role(role_arn) => {
            let role = role_arn.rsplit('/').next().unwrap_or_default();
            who.contains(&format!(":assumed-role/{role}/"))
        }
    };
    if !belongs {
        tracing::info!(profile = %name, "the credentials file holds another identity's session; not taking it over");
        return None;
    }
    tracing::info!(profile = %name, expires_at = %humantime::format_rfc3339_seconds(expiry), "took over the MFA session the credentials file holds");
    Some(TempCredentials {
        account_id: crate::creds::account_from_arn(&who),
        arn: Some(who),
        ..creds
    })
}

/// Whether a session said to end at `expiry` can be one STS granted by `now` for at most
/// `lifetime` (capped at GetSessionToken's 36 h), allowing 5 minutes of clock difference.
fn plausible_expiry(expiry: SystemTime, now: SystemTime, lifetime: Duration) -> bool {
    let longest = lifetime.min(crate::config::SESSION_TOKEN_DURATIONS.1);
    expiry <= now + longest + Duration::from_secs(300)
}

/// Whose a session of `owner` with device `mfa` is, as the `MfaManager` compares them.
fn session_identity(owner: &Owner<'_>, mfa: &Mfa) -> String {
    format!("{owner:?} {}", mfa.serial)
}

/// The ARN `GetCallerIdentity` names for `creds`.
async fn identity(
    sdk: &SdkConfig,
    creds: aws_credential_types::Credentials,
    region: &str,
) -> Option<String> {
    let out = super::sts_client(sdk, region, creds)
        .get_caller_identity()
        .send()
        .await
        .ok()?;
    out.arn().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_longer_than_its_duration_or_36h_is_not_plausible() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert!(plausible_expiry(now + h(12), now, h(12)));
        assert!(plausible_expiry(now + h(1), now, h(12)));
        assert!(!plausible_expiry(now + h(13), now, h(12)));
        assert!(!plausible_expiry(now + h(37), now, h(48)));
        assert!(!plausible_expiry(now + h(650_000), now, h(36)));
    }
}
