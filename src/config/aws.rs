//! What the validator and `credfresh login` read from AWS's own files: `~/.aws/config`
//! (profiles, `[sso-session NAME]`) and the credentials file (its section names).

use super::{SsoSession, DEFAULT_SSO_SCOPE};
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

/// Section names and keys of an AWS config or credentials file, with line numbers.
pub(super) struct AwsConfigIndex {
    pub(super) path: PathBuf,
    /// section header (as written, trimmed) -> its keys.
    pub(super) sections: HashMap<String, Vec<IniEntry>>,
    /// section header -> line of the header.
    pub(super) headers: HashMap<String, usize>,
}

/// One `key = value` of an AWS config file.
pub(super) struct IniEntry {
    pub(super) key: String,
    pub(super) line: usize,
    pub(super) value: String,
}

impl AwsConfigIndex {
    pub(super) fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let (sections, headers) = index_ini(&text);
        AwsConfigIndex {
            path: path.to_owned(),
            sections,
            headers,
        }
    }

    pub(super) fn header_line(&self, section: &str) -> usize {
        self.headers.get(section).copied().unwrap_or(1)
    }

    /// A `[profile NAME]` (or `[NAME]` for default) in the config file.
    pub(super) fn has_profile(&self, name: &str) -> bool {
        self.config_section(name).is_some()
    }

    pub(super) fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    pub(super) fn config_section(&self, name: &str) -> Option<&Vec<IniEntry>> {
        self.sections.get(&format!("profile {name}")).or_else(|| {
            (name == "default")
                .then(|| self.sections.get("default"))
                .flatten()
        })
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
