//! One `[[profile]]` at a time: its name, kind, the keys that kind takes, and each value.

use super::checks::{
    check_profile_name, check_region, check_role_arn, check_session_name, default_session_name,
};
use super::Validator;
use crate::config::aws::AwsConfigIndex;
use crate::config::raw::{
    RawProfile, ASSUME_ROLE_KEYS, AWS_PROFILE_KEYS, INSTANCE_KEYS, KINDS, SESSION_TOKEN_KEYS,
    SSO_KEYS, WEB_IDENTITY_KEYS,
};
use crate::config::{
    AssumeRole, Profile, ProfileSource, SourceRef, WebIdentity, DEFAULT_DURATION, MAX_DURATION,
};
use crate::env::Environment;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

impl Validator<'_> {
    /// Validates each profile on its own; `None` marks one that had errors.
    pub(super) fn profiles(
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

    pub(super) fn profile(
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
            "session_token" => SESSION_TOKEN_KEYS,
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
            "session_token" => self.session_token(raw, name),
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

    pub(super) fn assume_role(
        &mut self,
        raw: &Spanned<RawProfile>,
        name: &str,
    ) -> Option<ProfileSource> {
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
            mfa: self.mfa(raw, name),
        }))
    }

    /// A `web_identity` profile: `role_arn` and `token_file` default to the variables EKS
    /// (IRSA) and other OIDC platforms set for the pod.
    pub(super) fn web_identity(
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

    /// `duration`: a whole number of seconds up to STS's 12 h, default 1 h.
    pub(super) fn session_duration(&mut self, p: &RawProfile, name: &str) -> Duration {
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
    pub(super) fn session_name(&mut self, p: &RawProfile, name: &str) -> String {
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
    pub(super) fn region(&mut self, p: &RawProfile, name: &str) -> Option<String> {
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
}
