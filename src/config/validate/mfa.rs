//! MFA: `session_token` profiles, `mfa_serial` / `mfa_process` keys, and the role-chaining
//! limit on `duration`.

use super::Validator;
use crate::config::aws::AwsConfigIndex;
use crate::config::raw::RawProfile;
use crate::config::{
    Mfa, Profile, ProfileSource, SessionToken, SourceRef, DEFAULT_SESSION_TOKEN_DURATION,
    ROLE_CHAINING_MAX, SESSION_TOKEN_DURATIONS,
};
use crate::env::Environment;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    /// A `session_token` profile: `GetSessionToken` with the keys of an AWS profile.
    pub(super) fn session_token(
        &mut self,
        raw: &Spanned<RawProfile>,
        name: &str,
    ) -> Option<ProfileSource> {
        let p = raw.get_ref();
        let source_profile = match &p.source_profile {
            Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_owned(),
            _ => {
                let msg = "kind \"session_token\" needs `source_profile`: the AWS profile with the IAM user's long-term keys";
                self.error(raw.span(), Some(name), msg.into());
                String::new()
            }
        };
        let mfa = match self.mfa(raw, name) {
            Some(m) => m,
            None => {
                if p.mfa_serial.is_none() {
                    let msg = "kind \"session_token\" needs `mfa_serial`: the MFA device's ARN, e.g. \"arn:aws:iam::123456789012:mfa/alice\"";
                    self.error(raw.span(), Some(name), msg.into());
                }
                return None;
            }
        };
        let (min, max) = SESSION_TOKEN_DURATIONS;
        let duration = match &p.duration {
            None => DEFAULT_SESSION_TOKEN_DURATION,
            Some(raw) => match self.duration(raw, Some(name), "duration") {
                Some(d) if d < min || d > max || d.subsec_nanos() != 0 => {
                    let msg = format!(
                        "`duration` = \"{}\" is outside what GetSessionToken grants: whole seconds from 15m to 36h",
                        raw.get_ref()
                    );
                    self.error(raw.span(), Some(name), msg);
                    DEFAULT_SESSION_TOKEN_DURATION
                }
                Some(d) => d,
                None => DEFAULT_SESSION_TOKEN_DURATION,
            },
        };
        Some(ProfileSource::SessionToken(SessionToken {
            source_profile,
            mfa,
            duration,
            region: self.region(p, name),
        }))
    }

    /// `mfa_serial` and `mfa_process`, when set; `mfa_process` alone is an error.
    pub(super) fn mfa(&mut self, raw: &Spanned<RawProfile>, name: &str) -> Option<Mfa> {
        let p = raw.get_ref();
        let Some(serial) = &p.mfa_serial else {
            if let Some(process) = &p.mfa_process {
                let msg = "`mfa_process` needs `mfa_serial`: the device whose codes it prints";
                self.error(process.span(), Some(name), msg.into());
            }
            return None;
        };
        let s = serial.get_ref().trim();
        // STS: 9–256 characters of [\w+=/:,.@-].
        let ok = (9..=256).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c));
        if !ok {
            let msg = format!(
                "`mfa_serial` = \"{s}\" is not an MFA device ARN or serial number; write it like \"arn:aws:iam::123456789012:mfa/alice\""
            );
            self.error(serial.span(), Some(name), msg);
        }
        let process = match &p.mfa_process {
            None => None,
            Some(cmd) => match shlex::split(cmd.get_ref()) {
                Some(argv) if !argv.is_empty() => Some(argv),
                _ => {
                    let msg = "`mfa_process` is empty or has an unclosed quote; write the command as in a shell, e.g. \"ykman oath accounts code --single 'AWS:alice'\" (it runs without a shell)".to_owned();
                    self.error(cmd.span(), Some(name), msg);
                    None
                }
            },
        };
        Some(Mfa {
            serial: s.to_owned(),
            process,
        })
    }

    /// A `session_token` profile's `source_profile` must be an AWS profile (long-term keys),
    /// and one MFA device serves one session: a second `session_token` profile of the same
    /// device and user would spend a code on a second `GetSessionToken`.
    pub(super) fn check_session_tokens(
        &mut self,
        raw: &[Spanned<RawProfile>],
        profiles: &[Option<Profile>],
        aws_config: &AwsConfigIndex,
        credentials: &AwsConfigIndex,
    ) {
        let mut sessions: HashMap<(&str, &str), &str> = HashMap::new();
        for (i, p) in profiles.iter().enumerate() {
            let Some(Profile {
                source: ProfileSource::SessionToken(st),
                name,
                ..
            }) = p
            else {
                continue;
            };
            let span = raw[i].get_ref().source_profile_span();
            let src = st.source_profile.as_str();
            let managed = raw.iter().any(|r| r.get_ref().name.get_ref() == src);
            if managed {
                let msg = format!(
                    "source_profile \"{src}\" is a [[profile]]: GetSessionToken needs an IAM user's long-term keys, so name the AWS profile that holds them"
                );
                self.error(span, Some(name), msg);
            } else if let Some(why) = not_long_term_keys(src, aws_config, credentials) {
                let msg = format!(
                    "source_profile \"{src}\": {why}, and GetSessionToken needs an IAM user's long-term keys; name the AWS profile that holds them (a role with `mfa_serial` is an assume_role profile instead)"
                );
                self.error(span, Some(name), msg);
            } else if !aws_config.has_profile(src) && !credentials.has_section(src) {
                let msg = format!(
                    "source_profile \"{src}\" is not a profile in {} or {}; name the AWS profile with the IAM user's long-term keys",
                    aws_config.path.display(),
                    credentials.path.display()
                );
                self.error(span, Some(name), msg);
            }
            match sessions.get(&(src, st.mfa.serial.as_str())) {
                Some(first) => {
                    let msg = format!(
                        "profile \"{first}\" already is the MFA session of {} for \"{src}\"; chain roles from it (source_profile = \"{first}\") instead of a second session",
                        st.mfa.serial
                    );
                    self.error(raw[i].span(), Some(name), msg);
                }
                None => {
                    sessions.insert((src, st.mfa.serial.as_str()), name.as_str());
                }
            }
        }
    }
}

/// Why the AWS profile `src` cannot hold an IAM user's long-term keys, where the AWS files
/// tell: a role, SSO or web identity profile gives role credentials, and a credentials file
/// section with `aws_session_token` holds temporary ones.
fn not_long_term_keys(
    src: &str,
    aws_config: &AwsConfigIndex,
    credentials: &AwsConfigIndex,
) -> Option<String> {
    if aws_config.is_role(src) {
        let (key, line) = aws_config.credential_key(src).unwrap_or((
            "credential_source",
            aws_config.header_line(&format!("profile {src}")),
        ));
        return Some(format!(
            "{}:{line} defines [profile {src}] with `{key}`, so its credentials are a role's",
            aws_config.path.display()
        ));
    }
    let token = credentials
        .section(src)?
        .entries
        .iter()
        .find(|e| e.key == "aws_session_token")?;
    Some(format!(
        "{}:{} gives [{src}] an `aws_session_token`, so its keys are temporary",
        credentials.path.display(),
        token.line
    ))
}

/// Cuts `duration` to the role-chaining limit (1 h) for roles assumed with role credentials,
/// which AWS refuses to grant more; returns one note per profile cut.
pub(super) fn cap_role_chaining(
    profiles: &mut [Profile],
    aws_config: &AwsConfigIndex,
) -> Vec<String> {
    let roles: HashMap<String, bool> = profiles
        .iter()
        .map(|p| {
            let role = match &p.source {
                ProfileSource::AwsProfile { aws_profile } => aws_config.is_role(aws_profile),
                other => other.issues_role_credentials(),
            };
            (p.name.clone(), role)
        })
        .collect();
    let mut notes = Vec::new();
    for p in profiles.iter_mut() {
        let ProfileSource::AssumeRole(ar) = &mut p.source else {
            continue;
        };
        let (source, is_role) = match &ar.source {
            SourceRef::Managed(s) => (s, roles.get(s).copied().unwrap_or(false)),
            SourceRef::Aws(s) => (s, aws_config.is_role(s)),
        };
        if is_role && ar.duration > ROLE_CHAINING_MAX {
            notes.push(format!(
                "profile \"{}\": `duration` = \"{}\" cut to 1h: its source \"{source}\" holds role credentials, and AWS grants a role assumed with them (role chaining) at most 1 hour",
                p.name,
                humantime::format_duration(ar.duration)
            ));
            ar.duration = ROLE_CHAINING_MAX;
        }
    }
    notes
}

/// Notes about MFA profiles that are valid but will not behave as one may expect: a session
/// not longer than `warn_before` (warned about after two thirds of it), and an `mfa_process`
/// whose program is not found or not executable here (it may be on the service's PATH).
pub(super) fn mfa_notes(
    profiles: &[Profile],
    warn_before: Duration,
    env: &Environment,
) -> Vec<String> {
    let mut notes = Vec::new();
    for p in profiles {
        let (mfa, duration) = match &p.source {
            ProfileSource::SessionToken(st) => (&st.mfa, st.duration),
            ProfileSource::AssumeRole(ar) => match &ar.mfa {
                Some(m) => (m, ar.duration),
                None => continue,
            },
            _ => continue,
        };
        match &mfa.process {
            None if warn_before >= duration => notes.push(format!(
                "profile \"{}\": its MFA session lasts {}, not longer than warn_before ({}), so the next code is asked for after two thirds of it, {} before it ends",
                p.name,
                humantime::format_duration(duration),
                humantime::format_duration(warn_before),
                humantime::format_duration(duration / 3)
            )),
            None => {}
            Some(argv) => {
                let Some(program) = argv.first() else { continue };
                if let Some(why) = unusable_program(program, env) {
                    notes.push(format!(
                        "profile \"{}\": `mfa_process` program \"{program}\" {why}; until it runs, the profile retries (or run `credfresh mfa {}`)",
                        p.name, p.name
                    ));
                }
            }
        }
    }
    notes
}

/// Why `program` (a path, or a name looked up on `PATH`) cannot be run, if it cannot.
fn unusable_program(program: &str, env: &Environment) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Err(_) => Some("does not exist".into()),
            Ok(_) if !executable(&path) => Some("is not an executable file".into()),
            Ok(_) => None,
        };
    }
    let found = env
        .var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&Path::new(d).join(program)));
    (!found).then(|| "is not found on PATH".to_owned())
}
