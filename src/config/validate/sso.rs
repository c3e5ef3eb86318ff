//! `kind = "sso"`: the session from the AWS config file or inline, the account and role.

use super::checks::check_region;
use super::Validator;
use crate::config::aws::{parse_scopes, AwsConfigIndex};
use crate::config::raw::RawProfile;
use crate::config::{ProfileSource, Sso, SsoSession};
use toml::Spanned;

impl Validator<'_> {
    /// An `sso` profile: the session from `[sso-session NAME]` in the AWS config file, or
    /// inline `sso_start_url` + `sso_region` (the legacy form).
    pub(super) fn sso(
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
                let Some(section) = aws_config.section(&format!("sso-session {session}")) else {
                    let msg = format!(
                        "sso_session \"{session}\" is not defined in {file}; add an [sso-session {session}] section with sso_start_url and sso_region (`aws configure sso-session` writes one), or fix the name"
                    );
                    self.error(s.span(), Some(name), msg);
                    return None;
                };
                let header = section.line;
                let get = |k: &str| section.get(k).map(str::to_owned);
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
                    scopes: parse_scopes(section.get("sso_registration_scopes")),
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
}
