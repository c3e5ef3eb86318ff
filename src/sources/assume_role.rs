//! `sts:AssumeRole` with the credentials of a managed profile or of an AWS profile.

use super::session_token::{start, Owner, Start};
use super::{describe, SourceError};
use crate::config::{AssumeRole, SourceRef};
use crate::creds::TempCredentials;
use crate::mfa::MfaManager;
use aws_config::SdkConfig;

/// One `AssumeRole` call for profile `name`.
pub(super) async fn fetch(
    sdk: &SdkConfig,
    mfa_manager: &MfaManager,
    name: &str,
    spec: &AssumeRole,
    managed_source: Option<TempCredentials>,
) -> Result<TempCredentials, SourceError> {
    let region = super::sts_region(sdk, spec.region.as_ref());
    // A role that demands MFA: a code for every call, one call per device at a time.
    let mut spend = match &spec.mfa {
        Some(mfa) => {
            let owner = Owner::Role(&spec.role_arn);
            let device = mfa_manager.device(&mfa.serial);
            match start(
                sdk,
                mfa_manager,
                name,
                mfa,
                owner,
                &region,
                device,
                spec.duration,
            )
            .await?
            {
                Start::Held(c) => return Ok(c),
                Start::Code(spend) => Some(spend),
            }
        }
        None => None,
    };
    let base = match &spec.source {
        SourceRef::Managed(src) => match managed_source {
            Some(c) => c.to_sdk(),
            None => {
                return Err(SourceError::transient(
                    "source_unavailable",
                    format!("source profile \"{src}\" has no valid credentials yet"),
                ))
            }
        },
        SourceRef::Aws(src) => super::aws_profile::resolve(sdk, src, &region).await?,
    };
    let sent = super::sts_client(sdk, &region, base)
        .assume_role()
        .role_arn(&spec.role_arn)
        .role_session_name(&spec.session_name)
        .duration_seconds(super::duration_seconds(spec.duration))
        .set_external_id(spec.external_id.clone())
        .set_serial_number(spec.mfa.as_ref().map(|m| m.serial.clone()))
        .set_token_code(spend.as_ref().map(|s| s.code.expose().to_owned()))
        .send()
        .await;
    let handed = spend.as_ref().is_some_and(|s| s.handed);
    if let Some(s) = spend.as_mut() {
        s.device.last_code = Some(s.code.clone());
    }
    let out = sent.map_err(|e| {
        let mut err = describe("STS", &e);
        err.message = format!("assume {} for \"{name}\": {}", spec.role_arn, err.message);
        match &spec.mfa {
            Some(mfa) => crate::mfa::refused(name, mfa, handed, err),
            None => err,
        }
    })?;
    let arn = out.assumed_role_user().map(|u| u.arn());
    let creds = super::from_sts("AssumeRole", out.credentials(), arn)?;
    Ok(match &spec.mfa {
        Some(mfa) => {
            let owner = Owner::Role(&spec.role_arn);
            super::session_token::held(mfa_manager, name, mfa, &owner, creds, spec.duration)
        }
        None => creds,
    })
}
