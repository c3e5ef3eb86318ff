//! The credfresh config file: parsed from TOML into raw types that remember where each value
//! came from, then validated into a [`Config`] that cannot hold an invalid state.
//!
//! Every error names the file, the line and the profile, and says what to change.

use crate::env::Environment;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Lead time before expiry at which credentials are refreshed, unless configured.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);
/// Session length asked of STS unless a profile sets `duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The longest session STS grants (role chaining and most roles allow less).
pub const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);
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
        }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    daemon: Option<RawDaemon>,
    #[serde(default)]
    profile: Vec<Spanned<RawProfile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    credentials_file: Option<Spanned<String>>,
    socket: Option<Spanned<String>>,
    refresh_before: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    warn_before: Option<Spanned<String>>,
    container_endpoint: Option<Spanned<String>>,
    container_token_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    kind: Spanned<String>,
    role_arn: Option<Spanned<String>>,
    source_profile: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    aws_profile: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    sso_session: Option<Spanned<String>>,
    sso_start_url: Option<Spanned<String>>,
    sso_region: Option<Spanned<String>>,
    sso_registration_scopes: Option<Spanned<String>>,
    account_id: Option<Spanned<String>>,
    role_name: Option<Spanned<String>>,
}

impl RawProfile {
    /// The optional keys that are set, with their spans, for "does not apply" checks.
    fn set_keys(&self) -> Vec<(&'static str, &Spanned<String>)> {
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
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect()
    }
}

const ASSUME_ROLE_KEYS: &[&str] = &[
    "role_arn",
    "source_profile",
    "duration",
    "session_name",
    "external_id",
    "region",
];
const AWS_PROFILE_KEYS: &[&str] = &["aws_profile"];
const WEB_IDENTITY_KEYS: &[&str] = &[
    "role_arn",
    "token_file",
    "duration",
    "session_name",
    "region",
];
const INSTANCE_KEYS: &[&str] = &[];
const SSO_KEYS: &[&str] = &[
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_registration_scopes",
    "account_id",
    "role_name",
    "region",
];
const KINDS: &str = "assume_role, aws_profile, web_identity, instance, sso";

/// Reads and validates the config file at `path`.
pub fn load(path: &Path, env: &Environment) -> Result<Config, ConfigErrors> {
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let text = std::fs::read_to_string(path).map_err(|e| {
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
    parse(path, &text, env)
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
    if let Err(e) = std::str::from_utf8(&bytes) {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return SocketHint {
            socket: scan_socket(&text, env),
            broken: Some(format!(
                "{}:{line}: the file is not UTF-8 (saved in another encoding?)",
                path.display()
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

/// Validates config `text` that was read from `path`.
pub fn parse(path: &Path, text: &str, env: &Environment) -> Result<Config, ConfigErrors> {
    let mut v = Validator {
        path,
        text,
        errors: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| v.line_of(s.start));
            let message = e.message().trim().to_owned();
            return Err(ConfigErrors(vec![ConfigError {
                path: path.to_owned(),
                line,
                profile: None,
                message: fix_hint(&message),
            }]));
        }
    };
    let daemon = v.daemon(raw.daemon, env);
    let aws_config = AwsConfigIndex::read(&env.aws_config_file());
    let mut profiles = v.profiles(&raw.profile, env, &aws_config);
    let credentials = AwsConfigIndex::read(&daemon.credentials_file);
    v.check_sources(&raw.profile, &mut profiles, &aws_config, &credentials);
    v.check_conflicts(&raw.profile, &aws_config, &credentials);
    let profiles = v.order(&raw.profile, profiles);
    if v.errors.is_empty() {
        Ok(Config {
            path: path.to_owned(),
            daemon,
            profiles,
        })
    } else {
        Err(ConfigErrors(v.errors))
    }
}

/// Adds what to do to the toml crate's messages for the mistakes people make most.
fn fix_hint(message: &str) -> String {
    if message.starts_with("unknown field") {
        format!("{message}; remove it or fix its spelling (config.example.toml lists every key)")
    } else if message.starts_with("missing field") {
        format!("{message}; add it (config.example.toml lists every key)")
    } else {
        message.to_owned()
    }
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&mut self, span: std::ops::Range<usize>, profile: Option<&str>, message: String) {
        let line = Some(self.line_of(span.start));
        self.errors.push(ConfigError {
            path: self.path.to_owned(),
            line,
            profile: profile.map(str::to_owned),
            message,
        });
    }

    fn duration(
        &mut self,
        value: &Spanned<String>,
        profile: Option<&str>,
        key: &str,
    ) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(
                    value.span(),
                    profile,
                    format!("`{key}` must be longer than zero"),
                );
                None
            }
            Err(e) => {
                self.error(
                    value.span(),
                    profile,
                    format!(
                        "`{key}` = \"{}\" is not a duration ({e}); write it like \"15m\", \"1h\" or \"90s\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A non-empty path value with `~` expanded.
    fn path(
        &mut self,
        value: Option<&Spanned<String>>,
        key: &str,
        env: &Environment,
    ) -> Option<PathBuf> {
        let v = value?;
        if v.get_ref().trim().is_empty() {
            let msg = format!("`{key}` is empty; remove the key to use the default");
            self.error(v.span(), None, msg);
            return None;
        }
        Some(env.expand(v.get_ref()))
    }

    fn daemon(&mut self, raw: Option<RawDaemon>, env: &Environment) -> DaemonSettings {
        let mut settings = DaemonSettings::defaults(env);
        let Some(raw) = raw else { return settings };
        if let Some(p) = self.path(raw.credentials_file.as_ref(), "credentials_file", env) {
            settings.credentials_file = p;
        }
        if let Some(p) = self.path(raw.socket.as_ref(), "socket", env) {
            settings.socket = p;
        }
        if let Some(d) = raw.refresh_before {
            if let Some(d) = self.duration(&d, None, "refresh_before") {
                settings.refresh_before = d;
            }
        }
        if let Some(d) = raw.warn_before {
            if let Some(d) = self.duration(&d, None, "warn_before") {
                settings.warn_before = d;
            }
        }
        if let Some(f) = raw.log_format {
            match f.get_ref().as_str() {
                "text" => settings.log_format = LogFormat::Text,
                "json" => settings.log_format = LogFormat::Json,
                other => self.error(
                    f.span(),
                    None,
                    format!("`log_format` = \"{other}\" is not known; use \"text\" or \"json\""),
                ),
            }
        }
        if let Some(a) = &raw.container_endpoint {
            match a.get_ref().parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => {
                    let token_file = match &raw.container_token_file {
                        Some(t) => env.expand(t.get_ref()),
                        None => settings
                            .socket
                            .parent()
                            .map(|d| d.join("container-token"))
                            .unwrap_or_else(|| PathBuf::from("container-token")),
                    };
                    settings.container = Some(ContainerEndpoint { addr, token_file });
                }
                Ok(_) => self.error(
                    a.span(),
                    None,
                    "`container_endpoint` must be a loopback address such as \"127.0.0.1:9911\": credentials must not be served to the network".into(),
                ),
                Err(_) => self.error(
                    a.span(),
                    None,
                    format!(
                        "`container_endpoint` = \"{}\" is not an address; write it like \"127.0.0.1:9911\"",
                        a.get_ref()
                    ),
                ),
            }
        } else if let Some(t) = &raw.container_token_file {
            self.error(
                t.span(),
                None,
                "`container_token_file` needs `container_endpoint`; set both or remove it".into(),
            );
        }
        settings
    }

    /// Validates each profile on its own; `None` marks one that had errors.
    fn profiles(
        &mut self,
        raw: &[Spanned<RawProfile>],
        env: &Environment,
        aws_config: &AwsConfigIndex,
    ) -> Vec<Option<Profile>> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for p in raw {
            let name = p.get_ref().name.get_ref().as_str();
            let name_span = p.get_ref().name.span();
            if let Some(first) = seen.get(name) {
                let msg = format!(
                    "duplicate profile name (first defined on line {first}); give each [[profile]] its own name"
                );
                self.error(name_span.clone(), Some(name), msg);
            } else {
                seen.insert(name, self.line_of(name_span.start));
            }
            out.push(self.profile(p, env, aws_config));
        }
        out
    }

    fn profile(
        &mut self,
        raw: &Spanned<RawProfile>,
        env: &Environment,
        aws_config: &AwsConfigIndex,
    ) -> Option<Profile> {
        let line = self.line_of(raw.span().start);
        let p = raw.get_ref();
        let name = p.name.get_ref().as_str();
        let before = self.errors.len();
        if let Err(why) = check_profile_name(name) {
            self.error(p.name.span(), Some(name), why);
        }
        let allowed = match p.kind.get_ref().as_str() {
            "assume_role" => ASSUME_ROLE_KEYS,
            "aws_profile" => AWS_PROFILE_KEYS,
            "web_identity" => WEB_IDENTITY_KEYS,
            "instance" => INSTANCE_KEYS,
            "sso" => SSO_KEYS,
            other => {
                let msg = format!("`kind` = \"{other}\" is not supported; use one of: {KINDS}");
                self.error(p.kind.span(), Some(name), msg);
                return None;
            }
        };
        for (key, value) in p.set_keys() {
            if !allowed.contains(&key) {
                let takes = if allowed.is_empty() {
                    "no other keys".to_owned()
                } else {
                    allowed.join(", ")
                };
                let msg = format!(
                    "`{key}` does not apply to kind \"{}\"; remove it (that kind takes: {takes})",
                    p.kind.get_ref(),
                );
                self.error(value.span(), Some(name), msg);
            }
        }
        let source = match p.kind.get_ref().as_str() {
            "assume_role" => self.assume_role(raw, name),
            "web_identity" => self.web_identity(raw, name, env),
            "instance" => Some(ProfileSource::Instance),
            "sso" => self.sso(raw, name, aws_config),
            _ => match &p.aws_profile {
                Some(a) if !a.get_ref().trim().is_empty() => Some(ProfileSource::AwsProfile {
                    aws_profile: a.get_ref().trim().to_owned(),
                }),
                _ => {
                    let msg =
                        "kind \"aws_profile\" needs `aws_profile` = the AWS profile to resolve"
                            .into();
                    self.error(raw.span(), Some(name), msg);
                    None
                }
            },
        };
        (self.errors.len() == before)
            .then_some(())
            .and(source)
            .map(|source| Profile {
                name: name.to_owned(),
                line,
                source,
            })
    }

    fn assume_role(&mut self, raw: &Spanned<RawProfile>, name: &str) -> Option<ProfileSource> {
        let p = raw.get_ref();
        let role_arn = match &p.role_arn {
            Some(arn) => {
                if let Err(why) = check_role_arn(arn.get_ref()) {
                    self.error(arn.span(), Some(name), why);
                }
                arn.get_ref().clone()
            }
            None => {
                let msg = "kind \"assume_role\" needs `role_arn`, e.g. \"arn:aws:iam::123456789012:role/MyRole\"";
                self.error(raw.span(), Some(name), msg.into());
                String::new()
            }
        };
        let source = match &p.source_profile {
            Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_owned(),
            _ => {
                let msg = "kind \"assume_role\" needs `source_profile`: an AWS profile or another [[profile]] name";
                self.error(raw.span(), Some(name), msg.into());
                String::new()
            }
        };
        Some(ProfileSource::AssumeRole(AssumeRole {
            role_arn,
            // Resolved to managed or AWS in `check_sources`, once all names are known.
            source: SourceRef::Aws(source),
            duration: self.session_duration(p, name),
            session_name: self.session_name(p, name),
            external_id: p.external_id.as_ref().map(|e| e.get_ref().clone()),
            region: self.region(p, name),
        }))
    }

    /// A `web_identity` profile: `role_arn` and `token_file` default to the variables EKS
    /// (IRSA) and other OIDC platforms set for the pod.
    fn web_identity(
        &mut self,
        raw: &Spanned<RawProfile>,
        name: &str,
        env: &Environment,
    ) -> Option<ProfileSource> {
        let p = raw.get_ref();
        let role_arn = match (&p.role_arn, env.var("AWS_ROLE_ARN")) {
            (Some(arn), _) => {
                if let Err(why) = check_role_arn(arn.get_ref()) {
                    self.error(arn.span(), Some(name), why);
                }
                arn.get_ref().clone()
            }
            (None, Some(arn)) => {
                if let Err(why) = check_role_arn(arn) {
                    let msg =
                        format!("{why} (taken from AWS_ROLE_ARN; set `role_arn` to override it)");
                    self.error(raw.span(), Some(name), msg);
                }
                arn.to_owned()
            }
            (None, None) => {
                let msg = "kind \"web_identity\" needs `role_arn` (e.g. \"arn:aws:iam::123456789012:role/MyRole\"), and AWS_ROLE_ARN is not set to provide it";
                self.error(raw.span(), Some(name), msg.into());
                String::new()
            }
        };
        let token_file = match (&p.token_file, env.var("AWS_WEB_IDENTITY_TOKEN_FILE")) {
            (Some(f), _) if f.get_ref().trim().is_empty() => {
                let msg = "`token_file` is empty; remove the key to use AWS_WEB_IDENTITY_TOKEN_FILE, or give the path of the token file".to_owned();
                self.error(f.span(), Some(name), msg);
                PathBuf::new()
            }
            (Some(f), _) => env.expand(f.get_ref().trim()),
            (None, Some(f)) => env.expand(f),
            (None, None) => {
                let msg = "kind \"web_identity\" needs `token_file` (e.g. \"/var/run/secrets/eks.amazonaws.com/serviceaccount/token\"), and AWS_WEB_IDENTITY_TOKEN_FILE is not set to provide it";
                self.error(raw.span(), Some(name), msg.into());
                PathBuf::new()
            }
        };
        Some(ProfileSource::WebIdentity(WebIdentity {
            role_arn,
            token_file,
            duration: self.session_duration(p, name),
            session_name: self.session_name(p, name),
            region: self.region(p, name),
        }))
    }

    /// An `sso` profile: the session from `[sso-session NAME]` in the AWS config file, or
    /// inline `sso_start_url` + `sso_region` (the legacy form).
    fn sso(
        &mut self,
        raw: &Spanned<RawProfile>,
        name: &str,
        aws_config: &AwsConfigIndex,
    ) -> Option<ProfileSource> {
        let p = raw.get_ref();
        let file = aws_config.path.display().to_string();
        let session = match (&p.sso_session, &p.sso_start_url) {
            (Some(s), None) => {
                let session = s.get_ref().trim();
                let inline: Vec<&str> = [
                    ("sso_region", &p.sso_region),
                    ("sso_registration_scopes", &p.sso_registration_scopes),
                ]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|_| *k))
                .collect();
                if let Some(k) = inline.first() {
                    let msg = format!("`{k}` belongs in the [sso-session {session}] section of {file} when `sso_session` is set; remove it here");
                    self.error(s.span(), Some(name), msg);
                    return None;
                }
                let Some(keys) = aws_config.sections.get(&format!("sso-session {session}")) else {
                    let msg = format!(
                        "sso_session \"{session}\" is not defined in {file}; add an [sso-session {session}] section with sso_start_url and sso_region (`aws configure sso-session` writes one), or fix the name"
                    );
                    self.error(s.span(), Some(name), msg);
                    return None;
                };
                let header = aws_config.header_line(&format!("sso-session {session}"));
                let get = |k: &str| {
                    keys.iter()
                        .find(|e| e.key == k)
                        .map(|e| e.value.clone())
                        .filter(|v| !v.is_empty())
                };
                let mut missing = Vec::new();
                let start_url = get("sso_start_url").unwrap_or_else(|| {
                    missing.push("sso_start_url");
                    String::new()
                });
                let region = get("sso_region").unwrap_or_else(|| {
                    missing.push("sso_region");
                    String::new()
                });
                if !missing.is_empty() {
                    let msg = format!(
                        "{file}:{header}: [sso-session {session}] has no {}; add {} (e.g. sso_start_url = https://my-sso-portal.awsapps.com/start, sso_region = us-east-1)",
                        missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and "),
                        if missing.len() > 1 { "them" } else { "it" }
                    );
                    self.error(s.span(), Some(name), msg);
                    return None;
                }
                SsoSession {
                    name: Some(session.to_owned()),
                    start_url,
                    region,
                    scopes: parse_scopes(get("sso_registration_scopes").as_deref()),
                }
            }
            (None, Some(url)) => {
                let Some(region) = &p.sso_region else {
                    let msg = "kind \"sso\" with `sso_start_url` also needs `sso_region` (the region of IAM Identity Center, e.g. \"us-east-1\"); or use `sso_session`".to_owned();
                    self.error(url.span(), Some(name), msg);
                    return None;
                };
                SsoSession {
                    name: None,
                    start_url: url.get_ref().trim().to_owned(),
                    region: region.get_ref().trim().to_owned(),
                    scopes: parse_scopes(
                        p.sso_registration_scopes
                            .as_ref()
                            .map(|s| s.get_ref().as_str()),
                    ),
                }
            }
            (Some(s), Some(_)) => {
                let msg = "set either `sso_session` (an [sso-session] in the AWS config file) or inline `sso_start_url` + `sso_region`, not both".to_owned();
                self.error(s.span(), Some(name), msg);
                return None;
            }
            (None, None) => {
                let msg = format!("kind \"sso\" needs `sso_session` = the name of an [sso-session NAME] section in {file} (or inline `sso_start_url` + `sso_region`)");
                self.error(raw.span(), Some(name), msg);
                return None;
            }
        };
        if !check_region(&session.region) {
            let msg = format!(
                "the SSO region \"{}\" is not an AWS region name like \"us-east-1\"",
                session.region
            );
            self.error(raw.span(), Some(name), msg);
        }
        if !(session.start_url.starts_with("https://") || session.start_url.starts_with("http://"))
        {
            let msg = format!("the SSO start URL \"{}\" is not a URL like \"https://my-sso-portal.awsapps.com/start\"", session.start_url);
            self.error(raw.span(), Some(name), msg);
        }
        let account_id = match &p.account_id {
            Some(a)
                if a.get_ref().len() == 12 && a.get_ref().bytes().all(|b| b.is_ascii_digit()) =>
            {
                a.get_ref().clone()
            }
            Some(a) => {
                let msg = format!(
                    "`account_id` = \"{}\" is not a 12-digit AWS account id",
                    a.get_ref()
                );
                self.error(a.span(), Some(name), msg);
                String::new()
            }
            None => {
                let msg =
                    "kind \"sso\" needs `account_id` = the 12-digit account of the permission set"
                        .to_owned();
                self.error(raw.span(), Some(name), msg);
                String::new()
            }
        };
        let role_name = match &p.role_name {
            Some(r) if !r.get_ref().trim().is_empty() => r.get_ref().trim().to_owned(),
            _ => {
                let msg =
                    "kind \"sso\" needs `role_name` = the permission set, e.g. \"PowerUserAccess\""
                        .to_owned();
                self.error(raw.span(), Some(name), msg);
                String::new()
            }
        };
        Some(ProfileSource::Sso(Sso {
            session,
            account_id,
            role_name,
            region: self.region(p, name),
        }))
    }

    /// `duration`: a whole number of seconds up to STS's 12 h, default 1 h.
    fn session_duration(&mut self, p: &RawProfile, name: &str) -> Duration {
        let Some(raw) = &p.duration else {
            return DEFAULT_DURATION;
        };
        match self.duration(raw, Some(name), "duration") {
            Some(d) if d > MAX_DURATION => {
                let msg = format!(
                    "`duration` = \"{}\" is longer than STS allows (12h); shorten it",
                    humantime::format_duration(d)
                );
                self.error(raw.span(), Some(name), msg);
                DEFAULT_DURATION
            }
            Some(d) if d.subsec_nanos() != 0 => {
                let msg = "`duration` must be whole seconds".to_owned();
                self.error(raw.span(), Some(name), msg);
                DEFAULT_DURATION
            }
            Some(d) => d,
            None => DEFAULT_DURATION,
        }
    }

    /// `session_name`, default `credfresh-<name>`.
    fn session_name(&mut self, p: &RawProfile, name: &str) -> String {
        match &p.session_name {
            Some(s) => {
                if let Err(why) = check_session_name(s.get_ref()) {
                    self.error(s.span(), Some(name), why);
                }
                s.get_ref().clone()
            }
            None => default_session_name(name),
        }
    }

    /// `region`, when set.
    fn region(&mut self, p: &RawProfile, name: &str) -> Option<String> {
        match &p.region {
            Some(r) if check_region(r.get_ref()) => Some(r.get_ref().clone()),
            Some(r) => {
                let msg = format!(
                    "`region` = \"{}\" is not an AWS region name like \"eu-west-1\"",
                    r.get_ref()
                );
                self.error(r.span(), Some(name), msg);
                None
            }
            None => None,
        }
    }

    /// Decides whether each `source_profile` is managed (a chain) or an AWS profile that exists.
    fn check_sources(
        &mut self,
        raw: &[Spanned<RawProfile>],
        profiles: &mut [Option<Profile>],
        aws_config: &AwsConfigIndex,
        credentials: &AwsConfigIndex,
    ) {
        let managed: HashSet<&str> = raw
            .iter()
            .map(|p| p.get_ref().name.get_ref().as_str())
            .collect();
        for (i, p) in profiles.iter_mut().enumerate() {
            let Some(Profile {
                source: ProfileSource::AssumeRole(ar),
                name,
                ..
            }) = p
            else {
                continue;
            };
            let SourceRef::Aws(src) = &ar.source else {
                continue;
            };
            if managed.contains(src.as_str()) {
                ar.source = SourceRef::Managed(src.clone());
            } else if !aws_config.has_profile(src) && !credentials.has_section(src) {
                let span = raw[i]
                    .get_ref()
                    .source_profile
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or_default();
                let msg = format!(
                    "source_profile \"{src}\" is neither a [[profile]] in this file nor a profile in {} or {}; fix the name or add that profile",
                    aws_config.path.display(),
                    credentials.path.display()
                );
                self.error(span, Some(name.as_str()), msg);
            }
        }
    }

    /// Rejects managed names that `~/.aws/config` defines as a role or SSO profile (the SDKs
    /// would use those settings and ignore the keys credfresh writes), and names of sections
    /// in the credentials file that credfresh did not write (no
    /// [`EXPIRATION_KEY`](crate::credentials_file::EXPIRATION_KEY)): their keys, an IAM
    /// user's long-term ones say, would be lost.
    fn check_conflicts(
        &mut self,
        raw: &[Spanned<RawProfile>],
        aws_config: &AwsConfigIndex,
        credentials: &AwsConfigIndex,
    ) {
        for p in raw {
            let name = p.get_ref().name.get_ref();
            if let Some(keys) = credentials.sections.get(name.as_str()) {
                let ours = keys
                    .iter()
                    .any(|e| e.key == crate::credentials_file::EXPIRATION_KEY);
                if !ours {
                    let msg = format!(
                        "{}:{} has a section [{name}] that credfresh did not write (it has no `{}`), and credfresh never overwrites it; rename this [[profile]], or rename or delete that section",
                        credentials.path.display(),
                        credentials.header_line(name),
                        crate::credentials_file::EXPIRATION_KEY,
                    );
                    self.error(p.get_ref().name.span(), Some(name), msg);
                }
            }
            if let Some((key, line)) = aws_config.credential_key(name) {
                let msg = format!(
                    "{}:{line} defines [profile {name}] with `{key}`, so the AWS SDKs would ignore the keys credfresh writes for it; rename this [[profile]] or remove `{key}` there",
                    aws_config.path.display()
                );
                self.error(p.get_ref().name.span(), Some(name), msg);
            }
        }
    }

    /// Orders profiles so every managed source comes before the profiles that use it, and
    /// reports cycles.
    fn order(
        &mut self,
        raw: &[Spanned<RawProfile>],
        profiles: Vec<Option<Profile>>,
    ) -> Vec<Profile> {
        let by_name: BTreeMap<&str, usize> = raw
            .iter()
            .enumerate()
            .map(|(i, p)| (p.get_ref().name.get_ref().as_str(), i))
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut mark = vec![0u8; raw.len()];
        let mut order = Vec::with_capacity(raw.len());
        let mut cycles = Vec::new();
        for start in 0..raw.len() {
            let mut path = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                match mark[i] {
                    2 => break,
                    1 => {
                        let from = path.iter().position(|&p| p == i).unwrap_or(0);
                        cycles.push(path[from..].to_vec());
                        break;
                    }
                    _ => {}
                }
                mark[i] = 1;
                path.push(i);
                at = profiles[i]
                    .as_ref()
                    .and_then(|p| p.source.managed_source())
                    .and_then(|s| by_name.get(s).copied());
            }
            for &i in path.iter().rev() {
                mark[i] = 2;
                order.push(i);
            }
        }
        for cycle in cycles {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| raw[i].get_ref().name.get_ref().as_str())
                .collect();
            let first = cycle[0];
            let span = raw[first]
                .get_ref()
                .source_profile
                .as_ref()
                .map(|s| s.span())
                .unwrap_or_default();
            let msg = format!(
                "source_profile chain is a cycle: {} -> {}; one profile in it must take credentials from an AWS profile",
                names.join(" -> "),
                names[0]
            );
            self.error(span, Some(names[0]), msg);
        }
        let mut profiles: Vec<Option<Profile>> = profiles;
        order
            .into_iter()
            .filter_map(|i| profiles[i].take())
            .collect()
    }
}

/// `sso_registration_scopes` as the AWS CLI reads it: comma-separated, default
/// `sso:account:access`.
fn parse_scopes(raw: Option<&str>) -> Vec<String> {
    let scopes: Vec<String> = raw
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        vec![DEFAULT_SSO_SCOPE.to_owned()]
    } else {
        scopes
    }
}

/// The SSO sessions of the `[sso-session NAME]` sections in an AWS config file text.
pub fn aws_sso_session(path: &Path, name: &str) -> Option<SsoSession> {
    let index = AwsConfigIndex::read(path);
    let keys = index.sections.get(&format!("sso-session {name}"))?;
    let get = |k: &str| {
        keys.iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    };
    Some(SsoSession {
        name: Some(name.to_owned()),
        start_url: get("sso_start_url")?,
        region: get("sso_region")?,
        scopes: parse_scopes(get("sso_registration_scopes").as_deref()),
    })
}

/// The default `RoleSessionName`: `credfresh-<profile>`, cut to what STS accepts.
fn default_session_name(profile: &str) -> String {
    let mut s: String = format!("credfresh-{profile}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    s
}

fn check_profile_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("`name` is empty; give the profile the section name it should have in the credentials file".into());
    }
    match crate::credentials_file::section_name_problem(name) {
        Some(reason) => Err(format!(
            "`name` = \"{}\" cannot be a credentials file section: {reason}; use letters, digits and -_./%@:+",
            name.escape_debug()
        )),
        None => Ok(()),
    }
}

fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`role_arn` = \"{arn}\" is not an IAM role ARN; write it like \"arn:aws:iam::123456789012:role/MyRole\""
        ))
    }
}

fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`session_name` = \"{}\" is not accepted by STS; use 2 to 64 of letters, digits and +=,.@-_",
            name.escape_debug()
        ))
    }
}

fn check_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-')
}

/// Section names and keys of an AWS config or credentials file, with line numbers.
struct AwsConfigIndex {
    path: PathBuf,
    /// section header (as written, trimmed) -> its keys.
    sections: HashMap<String, Vec<IniEntry>>,
    /// section header -> line of the header.
    headers: HashMap<String, usize>,
}

/// One `key = value` of an AWS config file.
struct IniEntry {
    key: String,
    line: usize,
    value: String,
}

impl AwsConfigIndex {
    fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let (sections, headers) = index_ini(&text);
        AwsConfigIndex {
            path: path.to_owned(),
            sections,
            headers,
        }
    }

    fn header_line(&self, section: &str) -> usize {
        self.headers.get(section).copied().unwrap_or(1)
    }

    /// A `[profile NAME]` (or `[NAME]` for default) in the config file.
    fn has_profile(&self, name: &str) -> bool {
        self.config_section(name).is_some()
    }

    fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    fn config_section(&self, name: &str) -> Option<&Vec<IniEntry>> {
        self.sections.get(&format!("profile {name}")).or_else(|| {
            (name == "default")
                .then(|| self.sections.get("default"))
                .flatten()
        })
    }

    /// The first key of `[profile NAME]` that makes the SDKs ignore static keys for it.
    fn credential_key(&self, name: &str) -> Option<(&str, usize)> {
        const KEYS: &[&str] = &[
            "role_arn",
            "sso_session",
            "sso_start_url",
            "sso_account_id",
            "sso_role_name",
            "credential_process",
            "web_identity_token_file",
            "credential_source",
        ];
        self.config_section(name)?
            .iter()
            .find(|e| KEYS.contains(&e.key.as_str()))
            .map(|e| (e.key.as_str(), e.line))
    }
}

/// Reads section headers and key names the way botocore does, enough to find profiles.
type IniIndex = (HashMap<String, Vec<IniEntry>>, HashMap<String, usize>);

fn index_ini(text: &str) -> IniIndex {
    let mut sections: HashMap<String, Vec<IniEntry>> = HashMap::new();
    let mut headers = HashMap::new();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                let name = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
                sections.entry(name.clone()).or_default();
                headers.entry(name.clone()).or_insert(i + 1);
                current = Some(name);
                continue;
            }
        }
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let (Some(section), Some(eq)) = (&current, t.find('=')) {
            let key = t[..eq].trim().to_ascii_lowercase();
            let value = t[eq + 1..].trim().to_owned();
            if let Some(keys) = sections.get_mut(section) {
                keys.push(IniEntry {
                    key,
                    line: i + 1,
                    value,
                });
            }
        }
    }
    (sections, headers)
}

#[cfg(test)]
mod tests;
