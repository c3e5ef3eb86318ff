//! What the validator and `credfresh login` use of AWS's own files (read by
//! [`aws_files`](crate::aws_files)): `~/.aws/config` (profiles, `[sso-session NAME]`) and the
//! credentials file (its section names).

use super::{SsoSession, DEFAULT_SSO_SCOPE};
use crate::aws_files::{self, Section};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `sso_registration_scopes` as the AWS CLI reads it: comma-separated, default
/// `sso:account:access`.
pub(super) fn parse_scopes(raw: Option<&str>) -> Vec<String> {
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

/// The SSO session of the `[sso-session NAME]` section in the AWS config file at `path`, if
/// it has `sso_start_url` and `sso_region`; an error if the SDKs could not read the file.
pub fn aws_sso_session(
    path: &Path,
    name: &str,
) -> Result<Option<SsoSession>, aws_files::Unreadable> {
    let index = AwsConfigIndex::read(path)?;
    Ok(index.sso_session(name))
}

/// The sections of an AWS config or credentials file by header; a header written twice is
/// one section (at its first line) with the keys of both, in file order.
pub(super) struct AwsConfigIndex {
    pub(super) path: PathBuf,
    sections: HashMap<String, Section>,
}

impl AwsConfigIndex {
    /// An index of the file at `path`, unless the SDKs could not read it either.
    pub(super) fn read(path: &Path) -> Result<Self, aws_files::Unreadable> {
        let mut index = AwsConfigIndex::empty(path);
        for s in aws_files::read(path)? {
            match index.sections.get_mut(&s.header) {
                Some(first) => first.entries.extend(s.entries),
                None => {
                    index.sections.insert(s.header.clone(), s);
                }
            }
        }
        Ok(index)
    }

    /// The index of a file with no sections.
    pub(super) fn empty(path: &Path) -> Self {
        AwsConfigIndex {
            path: path.to_owned(),
            sections: HashMap::new(),
        }
    }

    /// The `[sso-session NAME]`, if it has `sso_start_url` and `sso_region`.
    fn sso_session(&self, name: &str) -> Option<SsoSession> {
        let section = self.section(&format!("sso-session {name}"))?;
        Some(SsoSession {
            name: Some(name.to_owned()),
            start_url: section.get("sso_start_url")?.to_owned(),
            region: section.get("sso_region")?.to_owned(),
            scopes: parse_scopes(section.get("sso_registration_scopes")),
        })
    }

    /// The section with this header (`sso-session x`, a credentials file profile's name).
    pub(super) fn section(&self, header: &str) -> Option<&Section> {
        self.sections.get(header)
    }

    pub(super) fn header_line(&self, header: &str) -> usize {
        self.section(header).map_or(1, |s| s.line)
    }

    /// A `[profile NAME]` (or `[NAME]` for default) in the config file.
    pub(super) fn has_profile(&self, name: &str) -> bool {
        self.config_section(name).is_some()
    }

    pub(super) fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    fn config_section(&self, name: &str) -> Option<&Section> {
        self.sections.get(&format!("profile {name}")).or_else(|| {
            (name == "default")
                .then(|| self.sections.get("default"))
                .flatten()
        })
    }

    /// Whether `[profile NAME]` gives role credentials (a role, SSO or web identity profile).
    pub(super) fn is_role(&self, name: &str) -> bool {
        self.credential_key(name)
            .is_some_and(|(key, _)| !matches!(key, "credential_process" | "credential_source"))
            || self
                .config_section(name)
                .is_some_and(|s| s.entries.iter().any(|e| e.key == "credential_source"))
    }

    /// The first key of `[profile NAME]` that makes the SDKs ignore static keys for it.
    pub(super) fn credential_key(&self, name: &str) -> Option<(&str, usize)> {
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
            .entries
            .iter()
            .find(|e| KEYS.contains(&e.key.as_str()))
            .map(|e| (e.key.as_str(), e.line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> (tempfile::TempDir, AwsConfigIndex) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let index = AwsConfigIndex::read(&path).unwrap();
        (dir, index)
    }

    #[test]
    fn a_repeated_header_is_one_section_at_its_first_line() {
        let (_dir, idx) =
            index("[profile a]\nregion = x\n\n[default]\n[profile a]\nrole_arn = r\n");
        assert_eq!(idx.header_line("profile a"), 1);
        assert_eq!(idx.credential_key("a"), Some(("role_arn", 6)));
        assert!(idx.has_profile("default"));
        assert!(!idx.has_profile("b"));
        assert_eq!(idx.header_line("missing"), 1);
    }

    #[test]
    fn sso_sessions_need_a_start_url_and_a_region() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "[sso-session ok]\nsso_start_url = https://x\nsso_region = eu-west-1\nsso_registration_scopes = a, b\n[sso-session half]\nsso_start_url = https://x\nsso_region =\n",
        )
        .unwrap();
        let s = aws_sso_session(&path, "ok").unwrap().unwrap();
        assert_eq!(s.name.as_deref(), Some("ok"));
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.scopes, ["a", "b"]);
        assert_eq!(aws_sso_session(&path, "half"), Ok(None));
        assert_eq!(aws_sso_session(&path, "none"), Ok(None));
        std::fs::write(&path, "\u{feff}[sso-session ok]\n").unwrap();
        assert_eq!(
            aws_sso_session(&path, "ok"),
            Err(aws_files::Unreadable::Bom)
        );
    }

    #[test]
    fn scopes_default_to_account_access() {
        assert_eq!(parse_scopes(None), [DEFAULT_SSO_SCOPE]);
        assert_eq!(parse_scopes(Some(" , ")), [DEFAULT_SSO_SCOPE]);
        assert_eq!(parse_scopes(Some("x,y ")), ["x", "y"]);
    }
}
