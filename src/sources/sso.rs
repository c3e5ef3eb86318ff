//! IAM Identity Center role credentials: SSO portal `GetRoleCredentials` with the session's
//! access token from the [`TokenManager`] (the AWS CLI's cache, refreshed as needed).

use super::{describe, SourceError};
use crate::config::Sso;
use crate::creds::TempCredentials;
use crate::sso::{fingerprint, TokenManager};
use aws_config::SdkConfig;
use aws_sdk_sso::error::ProvideErrorMetadata;
use aws_types::region::Region;
use secrecy::ExposeSecret;
use std::time::{Duration, SystemTime};

/// One `GetRoleCredentials` for profile `name`; when the portal rejects the token, one more
/// with a refreshed one (refreshed by this profile, or already by another of the session).
pub(super) async fn fetch(
    sdk: &SdkConfig,
    tokens: &TokenManager,
    name: &str,
    spec: &Sso,
) -> Result<TempCredentials, SourceError> {
    let conf = aws_sdk_sso::config::Builder::from(sdk)
        .region(Region::new(spec.session.region.clone()))
        .build();
    let client = aws_sdk_sso::Client::from_conf(conf);
    let mut rejected: Option<Vec<u8>> = None;
    loop {
        let token = tokens.token(&spec.session, rejected.as_deref()).await?;
        let result = client
            .get_role_credentials()
            .account_id(&spec.account_id)
            .role_name(&spec.role_name)
            .access_token(token.access_token.expose_secret())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or_default();
                if code == "UnauthorizedException" {
                    if rejected.is_none() {
                        rejected = Some(fingerprint(&token.access_token));
                        continue;
                    }
                    return Err(tokens
                        .give_up(
                            &spec.session,
                            "the SSO portal rejected the access token even after a refresh".into(),
                        )
                        .await);
                }
                let mut err = describe("the SSO portal", &e);
                if matches!(code, "ForbiddenException" | "ResourceNotFoundException") {
                    err.kind = crate::sources::FailureKind::Permanent;
                }
                err.message = format!(
                    "get role credentials for {} in account {} for \"{name}\": {}",
                    spec.role_name, spec.account_id, err.message
                );
                return Err(err);
            }
        };
        let c = out.role_credentials().ok_or_else(|| {
            SourceError::transient(
                "bad_response",
                "SSO GetRoleCredentials response holds no roleCredentials",
            )
        })?;
        let (Some(id), Some(secret), Some(session_token)) =
            (c.access_key_id(), c.secret_access_key(), c.session_token())
        else {
            return Err(SourceError::transient(
                "bad_response",
                "SSO GetRoleCredentials response lacks a key, secret or session token",
            ));
        };
        // The SDK reads a missing `expiration` as 0.
        if c.expiration() == 0 {
            return Err(SourceError::transient(
                "bad_response",
                "SSO GetRoleCredentials response has no expiration",
            ));
        }
        let ms = u64::try_from(c.expiration()).map_err(|_| {
            SourceError::transient(
                "bad_response",
                "SSO GetRoleCredentials response has an unreadable expiration",
            )
        })?;
        return Ok(TempCredentials {
            access_key_id: id.to_owned(),
            secret_access_key: crate::redact::secret(secret.to_owned()),
            session_token: Some(crate::redact::secret(session_token.to_owned())),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            account_id: Some(spec.account_id.clone()),
            arn: Some(format!(
                "arn:aws:sts::{}:assumed-role/{}",
                spec.account_id, spec.role_name
            )),
            // The token cache keeps times by the local clock, as the AWS CLI does; the
            // scheduler plans by AWS's.
            check_again_at: token.check_at.map(|t| crate::skew::estimate().to_server(t)),
        });
    }
}
