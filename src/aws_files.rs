//! Reads AWS's own INI files, `~/.aws/config` and the shared credentials file, the way
//! botocore does, enough to find sections and their keys: the config's conflict checks and
//! SSO sessions, `credfresh init`'s profiles and `credfresh login`'s `[sso-session NAME]`.
//!
//! Read only: the credentials file is edited by `credentials_file`, whose byte-preserving
//! model also refuses what botocore refuses. A missing or unreadable file has no sections;
//! a file the SDKs cannot decode is [`Unreadable`], with the place of the problem (never its
//! bytes: the file may hold secrets).

use crate::text::BadByte;
use std::path::Path;

/// Why botocore and the AWS SDKs cannot read a file at all (botocore raises
/// `ConfigParseError`, the Rust SDK reads a non-UTF-8 file as empty and a BOM as a line
/// outside any profile), so every profile in it would seem undefined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("is not UTF-8 text: {0}; save it as UTF-8")]
    NotUtf8(BadByte),
    #[error("starts with a UTF-8 byte-order mark (BOM) at line 1, column 1, which botocore and the AWS SDKs refuse; save it without the BOM")]
    Bom,
}

impl Unreadable {
    /// The 1-based line of the problem.
    pub fn line(&self) -> usize {
        match self {
            Unreadable::NotUtf8(b) => b.line,
            Unreadable::Bom => 1,
        }
    }
}

/// The text of an AWS file's `bytes`, if botocore and the SDKs can read it.
pub fn decode(bytes: &[u8]) -> Result<&str, Unreadable> {
    let text = crate::text::utf8(bytes).map_err(Unreadable::NotUtf8)?;
    if text.starts_with('\u{feff}') {
        return Err(Unreadable::Bom);
    }
    Ok(text)
}

/// One `[header]` and the `key = value` lines under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The header between the brackets, whitespace-normalised (`profile x`, `sso-session y`,
    /// `default`).
    pub header: String,
    /// 1-based line of the header.
    pub line: usize,
    /// Keys in file order; nested (indented) lines are skipped.
    pub entries: Vec<Entry>,
}

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key, lowercase.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

impl Section {
    /// The first `key`'s value, unless it is empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The profile a config-file section defines: `profile x` → `x`, `default` → `default`.
    pub fn profile_name(&self) -> Option<&str> {
        match self.header.strip_prefix("profile ") {
            Some(name) => Some(name.trim()),
            None if self.header == "default" => Some("default"),
            None => None,
        }
    }
}

/// The sections of `text`, in file order (a header written twice gives two sections).
pub fn parse(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                let header = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
                out.push(Section {
                    header,
                    line: i + 1,
                    entries: Vec::new(),
                });
                continue;
            }
        }
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let (Some(section), Some(eq)) = (out.last_mut(), t.find('=')) {
            section.entries.push(Entry {
                key: t[..eq].trim().to_ascii_lowercase(),
                value: t[eq + 1..].trim().to_owned(),
                line: i + 1,
            });
        }
    }
    out
}

/// The sections of the file at `path`; none when it is missing or cannot be opened.
pub fn read(path: &Path) -> Result<Vec<Section>, Unreadable> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(parse),
        Err(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_lines() {
        let text = "# comment\n[default]\nregion = eu-west-1\n\n[ profile   dev ]\nRole_Arn=arn\n  nested = skipped\ns3 =\n    max_concurrent_requests = 2\n; other\n[sso-session corp]\nsso_start_url = https://x\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].header, "default");
        assert_eq!(s[0].line, 2);
        assert_eq!(s[0].profile_name(), Some("default"));
        assert_eq!(s[0].get("region"), Some("eu-west-1"));
        assert_eq!(s[1].header, "profile dev");
        assert_eq!(s[1].profile_name(), Some("dev"));
        assert_eq!(
            s[1].entries,
            [
                Entry {
                    key: "role_arn".into(),
                    value: "arn".into(),
                    line: 6
                },
                Entry {
                    key: "s3".into(),
                    value: String::new(),
                    line: 8
                },
            ]
        );
        assert_eq!(s[1].get("s3"), None, "empty values count as unset");
        assert_eq!(s[2].profile_name(), None);
        assert_eq!(s[2].get("sso_start_url"), Some("https://x"));
    }

    #[test]
    fn keys_before_any_header_and_repeated_headers() {
        let s = parse("orphan = 1\n[a]\nx = 1\n[a]\nx = 2\n");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].line, s[0].get("x")), (2, Some("1")));
        assert_eq!((s[1].line, s[1].get("x")), (4, Some("2")));
    }

    #[test]
    fn a_bad_byte_or_a_bom_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, b"[base]\nk = 1\n# caf\xe9\n").unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.line(), 3);
        assert!(err.to_string().contains("line 3, column 6"), "{err}");
        std::fs::write(&path, "\u{feff}[base]\nk = 1\n").unwrap();
        assert_eq!(read(&path), Err(Unreadable::Bom));
        assert_eq!(Unreadable::Bom.line(), 1);
    }

    #[test]
    fn a_missing_file_has_no_sections() {
        assert_eq!(
            read(Path::new("/nonexistent/credfresh/config")),
            Ok(Vec::new())
        );
    }
}
