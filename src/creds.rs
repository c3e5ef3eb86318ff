//! Temporary credentials as credfresh holds them in memory.
//!
//! The secret parts live in [`SecretString`], whose `Debug` prints a redaction marker, so a
//! stray `{:?}` in a log line or an error can never leak them.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::SystemTime;

/// One set of temporary AWS credentials and the facts about where they came from.
#[derive(Clone)]
pub struct TempCredentials {
    /// The access key id; not a secret (it shows in CloudTrail and error messages).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token; `None` only for long-term keys, which credfresh never manages.
    pub session_token: Option<SecretString>,
    /// The source's own `Expiration`, never a guess.
    pub expiration: SystemTime,
    /// The 12-digit account the credentials belong to, when the source says so.
    pub account_id: Option<String>,
    /// The ARN of the assumed identity, when the source says so.
    pub arn: Option<String>,
    /// When the source wants to be asked again even though the credentials last longer
    /// (an SSO access token to refresh, or an SSO session end to warn about).
    pub check_again_at: Option<SystemTime>,
}

impl TempCredentials {
    /// Converts into the SDK's credential type, to sign requests with these credentials.
    pub fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            self.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some(self.expiration),
            "credfresh",
        )
    }

    /// Converts credentials an SDK provider resolved, with the expiry it reported.
    pub fn from_sdk(c: &aws_credential_types::Credentials, expiration: SystemTime) -> Self {
        TempCredentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: crate::redact::secret(c.secret_access_key().to_owned()),
            session_token: c
                .session_token()
                .map(|t| crate::redact::secret(t.to_owned())),
            expiration,
            account_id: c.account_id().map(|a| a.as_str().to_owned()),
            arn: None,
            check_again_at: None,
        }
    }

    /// Whether the credentials are still usable at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.expiration > now
    }
}

impl fmt::Debug for TempCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &"***")
            .field(
                "expiration",
                &humantime::format_rfc3339_seconds(self.expiration),
            )
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Extracts the account id from an ARN such as `arn:aws:sts::123456789012:assumed-role/R/s`.
pub fn account_from_arn(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn debug_never_shows_secrets() {
        let c = TempCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretString::from("very-secret-key"),
            session_token: Some(SecretString::from("very-secret-token")),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            account_id: Some("123456789012".into()),
            arn: None,
            check_again_at: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("ASIAEXAMPLE"));
    }

    #[test]
    fn account_is_read_from_arn() {
        assert_eq!(
            account_from_arn("arn:aws:sts::123456789012:assumed-role/R/s").as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_from_arn("arn:aws:sts::12:assumed-role/R/s"), None);
        assert_eq!(account_from_arn("nonsense"), None);
    }
}
