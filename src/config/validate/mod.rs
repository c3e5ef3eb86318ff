//! Raw config → [`Config`](super::Config): each concern in its own file (the `[daemon]`
//! table, one profile at a time, SSO sessions, the AWS files, chains), all reporting into one
//! [`Validator`] that collects every error with its line.

mod aws_checks;
mod chains;
mod checks;
mod daemon;
mod mfa;
mod profiles;
mod sso;

#[cfg(test)]
pub(super) use checks::{check_profile_name, default_session_name};

use super::aws::AwsConfigIndex;
use super::raw::RawConfig;
use super::{Config, ConfigError, ConfigErrors};
use crate::env::Environment;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

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
    let aws_config = v.aws_file(&env.aws_config_file(), "config");
    let credentials = v.aws_file(&daemon.credentials_file, "credentials");
    let empty = AwsConfigIndex::empty(&env.aws_config_file());
    let mut profiles = v.profiles(&raw.profile, env, aws_config.as_ref().unwrap_or(&empty));
    // Checks against a file the SDKs cannot read would only add wrong "not found" errors.
    if let (Some(aws_config), Some(credentials)) = (&aws_config, &credentials) {
        v.check_sources(&raw.profile, &mut profiles, aws_config, credentials);
        v.check_conflicts(&raw.profile, aws_config, credentials);
        v.check_session_tokens(&raw.profile, &profiles, aws_config, credentials);
    }
    let mut profiles = v.order(&raw.profile, profiles);
    let mut notes = mfa::cap_role_chaining(&mut profiles, aws_config.as_ref().unwrap_or(&empty));
    notes.extend(mfa::mfa_notes(&profiles, daemon.warn_before, env));
    if v.errors.is_empty() {
        Ok(Config {
            path: path.to_owned(),
            daemon,
            profiles,
            notes,
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

/// The config being validated and every error found so far; each concern adds its methods
/// in its own file.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The index of the AWS `what` file at `path`, or an error naming the file and the
    /// problem's line when botocore and the SDKs could not read it.
    fn aws_file(&mut self, path: &Path, what: &str) -> Option<AwsConfigIndex> {
        AwsConfigIndex::read(path)
            .map_err(|e| {
                self.errors.push(ConfigError {
                    path: path.to_owned(),
                    line: Some(e.line()),
                    profile: None,
                    message: format!("this AWS {what} file {e}"),
                })
            })
            .ok()
    }

    pub(super) fn error(
        &mut self,
        span: std::ops::Range<usize>,
        profile: Option<&str>,
        message: String,
    ) {
        let line = Some(self.line_of(span.start));
        self.errors.push(ConfigError {
            path: self.path.to_owned(),
            line,
            profile: profile.map(str::to_owned),
            message,
        });
    }

    pub(super) fn duration(
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
    pub(super) fn path(
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
}
