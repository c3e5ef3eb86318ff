//! The credfresh config file: parsed from TOML into raw types that remember where each value
//! came from, then validated into a [`Config`] that cannot hold an invalid state.
//!
//! Every error names the file, the line and the profile, and says what to change.

mod aws;
mod raw;
mod validate;

pub use aws::aws_sso_session;
pub use validate::parse;

use crate::env::Environment;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lead time before expiry at which credentials are refreshed, unless configured.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);
/// Session length asked of STS unless a profile sets `duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The longest session STS grants (role chaining and most roles allow less).
pub const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);
/// Session length asked of `GetSessionToken` unless a `session_token` profile sets `duration`.
pub const DEFAULT_SESSION_TOKEN_DURATION: Duration = Duration::from_secs(12 * 3600);
/// The shortest and longest session `GetSessionToken` grants an IAM user.
pub const SESSION_TOKEN_DURATIONS: (Duration, Duration) =
    (Duration::from_secs(15 * 60), Duration::from_secs(36 * 3600));
/// The longest session AWS grants a role assumed with role credentials (role chaining).
pub const ROLE_CHAINING_MAX: Duration = Duration::from_secs(3600);
/// How long before an SSO session ends the user is warned, unless configured.
pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(3600);
/// The scope `credfresh login` registers for when the sso-session names none.
pub const DEFAULT_SSO_SCOPE: &str = "sso:account:access";

/// A validated config: every profile is well-formed, names are unique, and chains are acyclic.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file this config was read from.
    pub path: PathBuf,
    /// Daemon-wide settings.
    pub daemon: DaemonSettings,
    /// Managed profiles, sources before the profiles that assume from them.
    pub profiles: Vec<Profile>,
    /// Things changed on the way that the user should hear about once (a `duration` cut
    /// to the role-chaining limit), each naming the profile.
    pub notes: Vec<String>,
}

/// The `[daemon]` table with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSettings {
    /// The shared credentials file credfresh keeps fresh.
    pub credentials_file: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// How long before expiry to refresh.
    pub refresh_before: Duration,
    /// How log lines are formatted.
    pub log_format: LogFormat,
    /// The opt-in ECS-style container credentials endpoint.
    pub container: Option<ContainerEndpoint>,
    /// How long before an SSO session ends (only a new login helps then) to warn.
    pub warn_before: Duration,
}

/// Where the container credentials endpoint listens and where its token goes.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerEndpoint {
    /// A loopback address.
    pub addr: std::net::SocketAddr,
    /// The file holding the random token clients send as `Authorization`.
    pub token_file: PathBuf,
}

impl DaemonSettings {
    /// Every setting at its default for `env`.
    pub fn defaults(env: &Environment) -> Self {
        DaemonSettings {
            credentials_file: env.default_credentials_file(),
            socket: env.default_socket(),
            refresh_before: DEFAULT_REFRESH_BEFORE,
            log_format: LogFormat::Text,
            container: None,
            warn_before: DEFAULT_WARN_BEFORE,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// One managed profile: a section of the credentials file credfresh owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Section name in the credentials file.
    pub name: String,
    /// Line in the config file where the profile starts (for messages).
    pub line: usize,
    /// Where the credentials come from.
    pub source: ProfileSource,
}

/// How a profile obtains credentials.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileSource {
    /// `sts:AssumeRole` with credentials of another profile.
    AssumeRole(AssumeRole),
    /// Whatever the AWS SDK's own profile chain resolves for an AWS profile.
    AwsProfile {
        /// The profile in `~/.aws/config` / `~/.aws/credentials`.
        aws_profile: String,
    },
    /// `sts:AssumeRoleWithWebIdentity` with a token file the platform rotates (EKS IRSA).
    WebIdentity(WebIdentity),
    /// The platform's own identity: the ECS/SageMaker container endpoint when its variables
    /// are set, else EC2's IMDSv2.
    Instance,
    /// IAM Identity Center role credentials (`GetRoleCredentials`) with the SSO token the
    /// AWS CLI's cache holds.
    Sso(Sso),
    /// `sts:GetSessionToken` with an MFA code and an IAM user's long-term keys: the MFA
    /// session that roles chained from it refresh from.
    SessionToken(SessionToken),
}

impl ProfileSource {
    /// The `kind` key as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            ProfileSource::AssumeRole(_) => "assume_role",
            ProfileSource::AwsProfile { .. } => "aws_profile",
            ProfileSource::WebIdentity(_) => "web_identity",
            ProfileSource::Instance => "instance",
            ProfileSource::Sso(_) => "sso",
            ProfileSource::SessionToken(_) => "session_token",
        }
    }

    /// The MFA device whose codes this profile needs, if any.
    pub fn mfa(&self) -> Option<&Mfa> {
        match self {
            ProfileSource::AssumeRole(ar) => ar.mfa.as_ref(),
            ProfileSource::SessionToken(st) => Some(&st.mfa),
            _ => None,
        }
    }

    /// Whether this profile's credentials are a role's (so a role assumed with them is
    /// capped at [`ROLE_CHAINING_MAX`]); `aws_profile` is judged where the AWS files are read.
    pub fn issues_role_credentials(&self) -> bool {
        matches!(
            self,
            ProfileSource::AssumeRole(_)
                | ProfileSource::WebIdentity(_)
                | ProfileSource::Sso(_)
                | ProfileSource::Instance
        )
    }

    /// The managed profile this one needs credentials from, if any.
    pub fn managed_source(&self) -> Option<&str> {
        match self {
            ProfileSource::AssumeRole(AssumeRole {
                source: SourceRef::Managed(name),
                ..
            }) => Some(name),
            _ => None,
        }
    }
}

/// Settings of an `assume_role` profile.
#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRole {
    /// The role to assume.
    pub role_arn: String,
    /// Whose credentials call `AssumeRole`.
    pub source: SourceRef,
    /// Session length asked of STS.
    pub duration: Duration,
    /// `RoleSessionName`, visible in CloudTrail.
    pub session_name: String,
    /// `ExternalId`, when the role's trust policy requires one.
    pub external_id: Option<String>,
    /// STS region; the SDK's default region when unset.
    pub region: Option<String>,
    /// The MFA device, when the role's trust policy demands MFA.
    pub mfa: Option<Mfa>,
}

/// Where a profile's MFA codes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mfa {
    /// `mfa_serial`: the device ARN (`arn:aws:iam::123456789012:mfa/alice`) or a hardware
    /// token's serial number, sent as `SerialNumber`.
    pub serial: String,
    /// `mfa_process`, split into program and arguments (run without a shell): prints a code.
    pub process: Option<Vec<String>>,
}

/// Settings of a `session_token` profile.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionToken {
    /// The AWS profile with the IAM user's long-term keys.
    pub source_profile: String,
    /// The MFA device and where its codes come from.
    pub mfa: Mfa,
    /// Session length asked of STS (15m–36h).
    pub duration: Duration,
    /// STS region; the SDK's default region when unset.
    pub region: Option<String>,
}

/// Settings of a `web_identity` profile.
#[derive(Clone, Debug, PartialEq)]
pub struct WebIdentity {
    /// The role to assume (the key, else `AWS_ROLE_ARN`).
    pub role_arn: String,
    /// The OIDC token, re-read on every refresh because the platform rotates it (the key,
    /// else `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub token_file: PathBuf,
    /// Session length asked of STS.
    pub duration: Duration,
    /// `RoleSessionName`, visible in CloudTrail.
    pub session_name: String,
    /// STS region; the SDK's default region when unset.
    pub region: Option<String>,
}

/// Settings of an `sso` profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Sso {
    /// The SSO session whose token signs `GetRoleCredentials`.
    pub session: SsoSession,
    /// The 12-digit account of the permission set.
    pub account_id: String,
    /// The permission set's role name, e.g. `PowerUserAccess`.
    pub role_name: String,
    /// Region of `region` in the profile (informational; the portal is in the session's region).
    pub region: Option<String>,
}

/// An IAM Identity Center session: an `[sso-session NAME]` of `~/.aws/config`, or the legacy
/// inline `sso_start_url` + `sso_region` of one profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SsoSession {
    /// The `[sso-session NAME]`; `None` for a legacy inline start URL.
    pub name: Option<String>,
    /// The AWS access portal URL.
    pub start_url: String,
    /// The region of IAM Identity Center (portal and OIDC).
    pub region: String,
    /// `sso_registration_scopes`, default `sso:account:access`.
    pub scopes: Vec<String>,
}

impl SsoSession {
    /// The token cache file name, as botocore and the AWS CLI compute it: the SHA-1 hex of
    /// the session name, or of the start URL for a legacy inline profile.
    pub fn cache_key(&self) -> String {
        use sha1::Digest;
        let input = self.name.as_deref().unwrap_or(&self.start_url);
        hex::encode(sha1::Sha1::digest(input.as_bytes()))
    }

    /// How messages and `credfresh login --sso-session` name the session.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.start_url)
    }

    /// The command that fixes an ended session.
    pub fn login_command(&self) -> String {
        format!("credfresh login --sso-session {}", self.label())
    }
}

/// The `source_profile` of an `assume_role` profile.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceRef {
    /// Another managed `[[profile]]`: a chain refreshed in dependency order.
    Managed(String),
    /// A profile the AWS SDK resolves from `~/.aws/config` and `~/.aws/credentials`.
    Aws(String),
}

/// A problem in the config, located as precisely as possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The profile concerned, when there is one.
    pub profile: Option<String>,
    /// What is wrong and what to change.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(profile) = &self.profile {
            write!(f, "profile \"{profile}\": ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// All problems found in one config file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path, env: &Environment) -> Result<Config, ConfigErrors> {
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (create it from config.example.toml, run `credfresh init`, or pass --config)"
        } else {
            ""
        };
        ConfigErrors(vec![ConfigError {
            path: path.to_owned(),
            line: None,
            profile: None,
            message: format!("cannot read the config file: {e}{hint}"),
        }])
    })?;
    let text = crate::text::utf8(&bytes).map_err(|bad| {
        ConfigErrors(vec![ConfigError {
            path: path.to_owned(),
            line: Some(bad.line),
            profile: None,
            message: format!("the file is not UTF-8 text (saved in another encoding?): {bad}"),
        }])
    })?;
    parse(path, text, env)
}

/// What a client command learns from the config file about where the daemon listens.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SocketHint {
    /// The `[daemon] socket`, if the file names one (as far as it can be read).
    pub socket: Option<PathBuf>,
    /// Why the config on disk would not load (not UTF-8, not TOML, invalid), if it would not.
    pub broken: Option<String>,
}

/// The `[daemon] socket` of the config at `path`, read leniently: client commands must find
/// the running daemon even while the config on disk is broken (to `reload` a fixed one, or
/// hear why the daemon refuses it). A missing file is not broken: the defaults apply.
pub fn socket_hint(path: &Path, env: &Environment) -> SocketHint {
    let Ok(bytes) = std::fs::read(path) else {
        return SocketHint::default();
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Err(bad) = crate::text::utf8(&bytes) {
        return SocketHint {
            socket: scan_socket(&text, env),
            broken: Some(format!(
                "{}:{}: the file is not UTF-8 text (saved in another encoding?): {bad}",
                path.display(),
                bad.line
            )),
        };
    }
    match text.parse::<toml::Table>() {
        Ok(table) => {
            let socket = table
                .get("daemon")
                .and_then(|d| d.get("socket"))
                .and_then(|s| s.as_str())
                .map(|s| env.expand(s));
            let broken = parse(path, &text, env).err().map(|e| e.to_string());
            SocketHint { socket, broken }
        }
        Err(_) => SocketHint {
            socket: scan_socket(&text, env),
            broken: load(path, env).err().map(|e| e.to_string()),
        },
    }
}

/// Finds `socket = "…"` (or `'…'`) in the `[daemon]` table of text that is not valid TOML.
fn scan_socket(text: &str, env: &Environment) -> Option<PathBuf> {
    let mut in_daemon = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(header) = t.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or_default();
            in_daemon = !header.starts_with('[') && name.trim() == "daemon";
        } else if let Some(rest) = t.strip_prefix("socket").map(str::trim_start) {
            if in_daemon {
                let value = rest.strip_prefix('=')?.trim_start();
                let quote = value.chars().next().filter(|c| matches!(c, '"' | '\''))?;
                let value = value[1..].split(quote).next()?;
                return Some(env.expand(value));
            }
        }
    }
    None
}

#[cfg(test)]
use validate::{check_profile_name, default_session_name};

#[cfg(test)]
mod tests;
