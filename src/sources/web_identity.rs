//! `sts:AssumeRoleWithWebIdentity` with an OIDC token file, as on EKS (IRSA) and other
//! Kubernetes platforms.
//!
//! The token file is read again on every attempt: the kubelet rotates it (hourly on EKS), and
//! a token read once would expire under a long-running daemon. The call is unsigned, as in
//! aws-config's own `WebIdentityTokenCredentialsProvider`: the shared `SdkConfig` carries no
//! credentials. It is made directly rather than through that provider so that `duration` is
//! honoured and the `AssumedRoleUser` (for the account id) is kept.

use super::{describe, SourceError, FALLBACK_REGION};
use crate::config::WebIdentity;
use crate::creds::TempCredentials;
use aws_config::SdkConfig;
use aws_types::region::Region;
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

/// Reads the token in `path`: one line, surrounding whitespace dropped. Errors name the file,
/// never its content.
pub(super) async fn read_token(path: &Path) -> Result<SecretString, SourceError> {
    let bytes = tokio::fs::read(path).await.map_err(|e| {
        SourceError::transient(
            "token_file",
            format!(
                "cannot read the web identity token file {}: {e}; check that the projected service account token is mounted there (or fix `token_file` / AWS_WEB_IDENTITY_TOKEN_FILE)",
                path.display()
            ),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        SourceError::transient(
            "token_file",
            format!(
                "the web identity token file {} is not UTF-8 text; it should hold one OIDC token (a JWT)",
                path.display()
            ),
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(SourceError::transient(
            "token_file",
            format!(
                "the web identity token file {} is empty; it should hold one OIDC token (a JWT)",
                path.display()
            ),
        ));
    }
    Ok(crate::redact::secret(token.to_owned()))
}

/// One `AssumeRoleWithWebIdentity` call for profile `name`.
pub(super) async fn fetch(
    sdk: &SdkConfig,
    name: &str,
    spec: &WebIdentity,
) -> Result<TempCredentials, SourceError> {
    let token = read_token(&spec.token_file).await?;
    let region = spec
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .unwrap_or_else(|| FALLBACK_REGION.to_owned());
    // `sdk` was loaded with `no_credentials()`, so this client signs nothing: the operation
    // needs no AWS credentials, the token is the proof of identity.
    let conf = aws_sdk_sts::config::Builder::from(sdk)
        .region(Region::new(region))
        .build();
    let client = aws_sdk_sts::Client::from_conf(conf);
    let seconds = i32::try_from(spec.duration.as_secs()).unwrap_or(i32::MAX);
    let out = client
        .assume_role_with_web_identity()
        .role_arn(&spec.role_arn)
        .role_session_name(&spec.session_name)
        .duration_seconds(seconds)
        .web_identity_token(token.expose_secret())
        .send()
        .await
        .map_err(|e| {
            let mut err = describe("STS", &e);
            err.message = format!(
                "assume {} with the web identity token in {} for \"{name}\": {}",
                spec.role_arn,
                spec.token_file.display(),
                err.message
            );
            err
        })?;
    let arn = out.assumed_role_user().map(|u| u.arn());
    super::from_sts("AssumeRoleWithWebIdentity", out.credentials(), arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_file_errors_name_the_file_and_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");

        let err = read_token(&path).await.unwrap_err();
        assert_eq!(err.kind, crate::sources::FailureKind::Transient);
        assert!(err.message.contains(&path.display().to_string()), "{err}");
        assert!(err.message.contains("cannot read"), "{err}");

        std::fs::write(&path, " \n").unwrap();
        let err = read_token(&path).await.unwrap_err();
        assert!(err.message.contains("is empty"), "{err}");

        std::fs::write(&path, b"\xff\xfe").unwrap();
        let err = read_token(&path).await.unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{err}");

        std::fs::write(&path, "eyJhbGciOiJSUzI1NiJ9.secret-part.sig\n").unwrap();
        let token = read_token(&path).await.unwrap();
        assert_eq!(
            token.expose_secret(),
            "eyJhbGciOiJSUzI1NiJ9.secret-part.sig"
        );
        assert!(!format!("{token:?}").contains("secret-part"));
    }
}
