//! The control socket's wire types, shared by the daemon and the CLI client.
//!
//! Times are RFC 3339 UTC strings; secrets never appear in any of these types except
//! [`ProcessCredentials`], which only `/v1/credentials/{name}` returns.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::SystemTime;

/// Where a profile is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    /// Not fetched yet.
    Pending,
    /// Valid credentials, refresh scheduled.
    Fresh,
    /// A fetch is under way.
    Refreshing,
    /// The last fetch failed; valid credentials may still be held; backing off.
    Retrying,
    /// No valid credentials; still trying.
    Expired,
    /// Only a human can help (e.g. SSO login).
    LoginRequired,
    /// A failure that retrying will not fix (access denied, bad role); still retried slowly.
    Error,
}

impl fmt::Display for ProfileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileState::Pending => "pending",
            ProfileState::Fresh => "fresh",
            ProfileState::Refreshing => "refreshing",
            ProfileState::Retrying => "retrying",
            ProfileState::Expired => "expired",
            ProfileState::LoginRequired => "login_required",
            ProfileState::Error => "error",
        })
    }
}

/// One profile as `GET /v1/status` and `GET /v1/profiles/{name}` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStatus {
    /// Section name in the credentials file.
    pub name: String,
    /// The config `kind`.
    pub kind: String,
    /// Current state.
    pub state: ProfileState,
    /// Expiry of the credentials held, as the source reported it.
    pub expires_at: Option<String>,
    /// When the next fetch is planned.
    pub next_refresh_at: Option<String>,
    /// When the last successful fetch finished.
    pub last_refresh_at: Option<String>,
    /// Why the last fetch failed, cleared on success.
    pub last_error: Option<String>,
    /// The account of the credentials held.
    pub account_id: Option<String>,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// credfresh version.
    pub version: String,
    /// Daemon process id.
    pub pid: u32,
    /// When the daemon started.
    pub started_at: String,
    /// The credentials file being kept fresh.
    pub credentials_file: String,
    /// Last credentials file write failure, cleared after a successful write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
    /// Why the last reload of the config was rejected (the previous config keeps running);
    /// cleared by a successful reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// The estimated offset of the local clock from AWS's, in seconds, server minus local
    /// (positive: the local clock is behind), from the `Date` of AWS's answers; 0 until one
    /// came or when within a second. Expiry is judged and times are reported on AWS's clock.
    #[serde(default)]
    pub clock_offset_seconds: i64,
    /// Every managed profile, sources before dependents.
    pub profiles: Vec<ProfileStatus>,
}

/// `POST /v1/reload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReply {
    /// Whether the new config was applied.
    pub ok: bool,
    /// What happened, or why the config was rejected.
    pub message: String,
}

/// An error reply body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong.
    pub error: String,
}

/// An error reply of a container credentials endpoint (the daemon's, and the one
/// `credfresh exec` serves), in the shape the SDKs read: `Code` and `Message` (the JS SDK v3
/// reads exactly these keys; the Go SDK v2 reads `code`/`message` and the Rust SDK
/// `code`/`message` in any case, both case-insensitively), plus `error`, the message again,
/// as credfresh's other replies have it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointError {
    /// A short code such as `AccessDenied`, from the HTTP status ([`endpoint_error_code`]).
    #[serde(rename = "Code")]
    pub code: String,
    /// What went wrong.
    #[serde(rename = "Message")]
    pub message: String,
    /// The same message, for clients of earlier releases that read `{"error": …}`.
    pub error: String,
}

impl EndpointError {
    /// The reply body for an error of HTTP status `status`.
    pub fn new(status: u16, message: &str) -> Self {
        EndpointError {
            code: endpoint_error_code(status).to_owned(),
            message: message.to_owned(),
            error: message.to_owned(),
        }
    }
}

/// The `Code` of a container endpoint's error reply of HTTP status `status`.
pub fn endpoint_error_code(status: u16) -> &'static str {
    match status {
        400 => "InvalidRequest",
        401 => "MissingAuthorizationToken",
        403 => "AccessDenied",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        413 => "RequestTooLarge",
        503 => "CredentialsUnavailable",
        _ => "InternalError",
    }
}

/// Formats a time as RFC 3339 UTC with seconds, as every time in the API is.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses a time written by [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// `GET /v1/credentials/{name}`: the AWS `credential_process` output format (Version 1).
/// It holds secrets: only this endpoint returns it, only to the daemon's own user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessCredentials {
    /// Always 1.
    pub version: u8,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// Expiry, RFC 3339.
    pub expiration: String,
}

impl ProcessCredentials {
    /// The `credential_process` form of `c`.
    pub fn from_creds(c: &crate::creds::TempCredentials) -> Self {
        use secrecy::ExposeSecret;
        ProcessCredentials {
            version: 1,
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.expose_secret().to_owned(),
            session_token: c
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expiration: rfc3339(c.expiration),
        }
    }
}

impl ProcessCredentials {
    /// Back into credentials (what `credfresh check` got from the daemon); `None` when the
    /// expiration cannot be read.
    pub fn into_creds(mut self) -> Option<crate::creds::TempCredentials> {
        let expiration = parse_rfc3339(&self.expiration)?;
        Some(crate::creds::TempCredentials {
            access_key_id: std::mem::take(&mut self.access_key_id),
            secret_access_key: crate::redact::secret(std::mem::take(&mut self.secret_access_key)),
            session_token: self.session_token.take().map(crate::redact::secret),
            expiration,
            account_id: None,
            arn: None,
            check_again_at: None,
        })
    }
}

/// The plain copies of the secrets are wiped when the reply has been sent.
impl Drop for ProcessCredentials {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl fmt::Debug for ProcessCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials_file::SectionUpdate;
    use crate::creds::TempCredentials;
    use std::time::Duration;

    /// A panic message is built from `Display`/`Debug` output; every type that holds a secret
    /// prints it masked, so `panic!("{x:?}")`, `unwrap()` or `expect()` on such a value can
    /// never put a secret on stderr.
    #[test]
    fn panics_with_secret_holding_values_show_no_secret() {
        let creds = TempCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s3cret-access-key-value".to_owned().into(),
            session_token: Some("s3cret-session-token-value".to_owned().into()),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            account_id: None,
            arn: None,
            check_again_at: None,
        };
        let reply = ProcessCredentials::from_creds(&creds);
        let update = SectionUpdate {
            name: "p",
            access_key_id: "ASIAEXAMPLE",
            secret_access_key: "s3cret-access-key-value",
            session_token: "s3cret-session-token-value",
            expiration: creds.expiration,
        };
        let shown = [
            format!("{creds:?}"),
            format!("{reply:?}"),
            format!("{update:?}"),
            format!("{:?}", Some(&creds)),
            format!("{:?}", Err::<(), _>(&reply)),
        ];
        for text in &shown {
            let payload = std::panic::catch_unwind(|| panic!("{text}")).unwrap_err();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(message.contains("ASIAEXAMPLE"), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        // The plain copies in a reply are wiped on drop, and moving them out keeps them whole.
        let back = reply.into_creds().unwrap();
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&back.secret_access_key),
            "s3cret-access-key-value"
        );
    }
}
