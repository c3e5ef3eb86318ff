//! The config file as TOML gives it: every value with the span it came from, so errors can
//! name the line. Nothing here is checked beyond its TOML type.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) daemon: Option<RawDaemon>,
    #[serde(default)]
    pub(super) profile: Vec<Spanned<RawProfile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) credentials_file: Option<Spanned<String>>,
    pub(super) socket: Option<Spanned<String>>,
    pub(super) refresh_before: Option<Spanned<String>>,
    pub(super) log_format: Option<Spanned<String>>,
    pub(super) warn_before: Option<Spanned<String>>,
    pub(super) container_endpoint: Option<Spanned<String>>,
    pub(super) container_token_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) role_arn: Option<Spanned<String>>,
    pub(super) source_profile: Option<Spanned<String>>,
    pub(super) duration: Option<Spanned<String>>,
    pub(super) session_name: Option<Spanned<String>>,
    pub(super) external_id: Option<Spanned<String>>,
    pub(super) region: Option<Spanned<String>>,
    pub(super) aws_profile: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) sso_session: Option<Spanned<String>>,
    pub(super) sso_start_url: Option<Spanned<String>>,
    pub(super) sso_region: Option<Spanned<String>>,
    pub(super) sso_registration_scopes: Option<Spanned<String>>,
    pub(super) account_id: Option<Spanned<String>>,
    pub(super) role_name: Option<Spanned<String>>,
    pub(super) mfa_serial: Option<Spanned<String>>,
    pub(super) mfa_process: Option<Spanned<String>>,
}

impl RawProfile {
    /// Where `source_profile` is, for errors about it (the start of the file when unset).
    pub(super) fn source_profile_span(&self) -> std::ops::Range<usize> {
        self.source_profile
            .as_ref()
            .map(|s| s.span())
            .unwrap_or_default()
    }

    /// The optional keys that are set, with their spans, for "does not apply" checks.
    pub(super) fn set_keys(&self) -> Vec<(&'static str, &Spanned<String>)> {
        [
            ("role_arn", &self.role_arn),
            ("source_profile", &self.source_profile),
            ("duration", &self.duration),
            ("session_name", &self.session_name),
            ("external_id", &self.external_id),
            ("region", &self.region),
            ("aws_profile", &self.aws_profile),
            ("token_file", &self.token_file),
            ("sso_session", &self.sso_session),
            ("sso_start_url", &self.sso_start_url),
            ("sso_region", &self.sso_region),
            ("sso_registration_scopes", &self.sso_registration_scopes),
            ("account_id", &self.account_id),
            ("role_name", &self.role_name),
            ("mfa_serial", &self.mfa_serial),
            ("mfa_process", &self.mfa_process),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect()
    }
}

pub(super) const ASSUME_ROLE_KEYS: &[&str] = &[
    "role_arn",
    "source_profile",
    "duration",
    "session_name",
    "external_id",
    "region",
    "mfa_serial",
    "mfa_process",
];
pub(super) const AWS_PROFILE_KEYS: &[&str] = &["aws_profile"];
pub(super) const WEB_IDENTITY_KEYS: &[&str] = &[
    "role_arn",
    "token_file",
    "duration",
    "session_name",
    "region",
];
pub(super) const INSTANCE_KEYS: &[&str] = &[];
pub(super) const SSO_KEYS: &[&str] = &[
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_registration_scopes",
    "account_id",
    "role_name",
    "region",
];
pub(super) const SESSION_TOKEN_KEYS: &[&str] = &[
    "source_profile",
    "mfa_serial",
    "mfa_process",
    "duration",
    "region",
];
pub(super) const KINDS: &str =
    "assume_role, aws_profile, web_identity, instance, sso, session_token";
