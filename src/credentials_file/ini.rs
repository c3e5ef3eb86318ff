//! The credentials file as readers see it: a byte-preserving line model, parsed the way
//! botocore (Python `configparser`) and the AWS SDKs agree on: whole-line `#`/`;` comments,
//! `key = value` (also `key: value`), keys compared ASCII-case-insensitively, and indented
//! lines after a key continuing that key's value. Also the refusal of files readers reject
//! or disagree about, and the one profile-name rule the config uses too.

use std::collections::BTreeMap;

/// Key recording when the credentials in a managed section expire, so the daemon (and
/// curious humans) can tell from the file alone whether a refresh is due.
pub const EXPIRATION_KEY: &str = "x_credfresh_expiration";

/// The keys owned by credfresh in a managed section, in the order new sections list them.
pub(super) const MANAGED_KEYS: [&str; 4] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    EXPIRATION_KEY,
];

/// Why an edit was refused: writing would produce a file that readers misread or reject.
///
/// Messages name sections, keys and line numbers, never credential values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A managed section header appears more than once; readers either reject the file
    /// (botocore) or merge the sections (SDKs), so there is no safe section to update.
    #[error(
        "line {line}: section [{name}] appears again (first on line {first}); botocore refuses a file with a repeated section, so credfresh leaves it alone: merge the two sections or delete one"
    )]
    DuplicateSection {
        /// The section name.
        name: String,
        /// 1-based line number of the first header.
        first: usize,
        /// 1-based line number of the second header.
        line: usize,
    },
    /// The file is one that botocore (and so the AWS CLI and boto3) refuses or that the
    /// readers disagree about; credfresh does not write into it.
    #[error("line {line}: {reason}; credfresh leaves the file alone until it is fixed")]
    Unreadable {
        /// 1-based line number of the offending line.
        line: usize,
        /// What is wrong and what to change (never a value from the file).
        reason: String,
    },
    /// A managed profile's name is a section credfresh did not write (it has no
    /// [`EXPIRATION_KEY`]): its keys (an IAM user's long-term ones, say) are never replaced.
    #[error("line {line}: section [{name}] was not written by credfresh (it has no {EXPIRATION_KEY}); credfresh never overwrites it: rename the profile in the credfresh config, or rename or delete the section")]
    ForeignSection {
        /// The section name.
        name: String,
        /// 1-based line number of its header.
        line: usize,
    },
    /// The same section is listed twice in one batch of updates.
    #[error("section [{name}] is listed more than once in the requested updates")]
    DuplicateUpdate {
        /// The section name.
        name: String,
    },
    /// The section name cannot be written as a header that every reader parses the same way.
    #[error("invalid section name {name:?}: {reason}")]
    InvalidSectionName {
        /// The rejected name.
        name: String,
        /// Why (see [`section_name_problem`]).
        reason: String,
    },
    /// A value would be altered or cut short by readers (trimmed, comment-stripped, split).
    #[error("value for {key} in section [{section}] is empty or contains whitespace or control characters")]
    InvalidValue {
        /// The section name.
        section: String,
        /// Which key's value was rejected (the value itself is never included).
        key: &'static str,
    },
    /// The expiration cannot be written as an RFC 3339 timestamp (before 1970 or after 9999).
    #[error("expiration for section [{section}] is outside the range 1970..=9999")]
    ExpirationOutOfRange {
        /// The section name.
        section: String,
    },
}

/// Returns the keys (lowercased, as readers see them) and trimmed values of section `name`,
/// or `None` if there is no such section; lets the daemon and tests see what SDKs will read.
///
/// Continuation lines are joined with `\n`; repeated sections are merged and repeated keys
/// keep the last value, as the AWS SDKs do.
pub fn read_section(contents: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut found = None::<BTreeMap<String, String>>;
    let mut in_section = false;
    let mut last_key: Option<String> = None;
    for line in parse(contents) {
        match line.kind {
            Kind::Header(header) => {
                in_section = header == name;
                last_key = None;
                if in_section {
                    found.get_or_insert_with(BTreeMap::new);
                }
            }
            Kind::Key { key, value } if in_section => {
                let key = key.to_ascii_lowercase();
                if let Some(map) = found.as_mut() {
                    map.insert(key.clone(), value.to_owned());
                }
                last_key = Some(key);
            }
            Kind::Continuation => {
                if let (true, Some(key), Some(map)) = (in_section, &last_key, found.as_mut()) {
                    if let Some(v) = map.get_mut(key) {
                        v.push('\n');
                        v.push_str(line.text().trim());
                    }
                }
            }
            Kind::Other => last_key = None,
            _ => {}
        }
    }
    found
}

/// Characters every reader accepts in a profile name: the Rust and Java SDKs ignore a
/// credentials-file section whose name has any other character (with only a warning).
const NAME_CHARS: &str = "_-/.%@:+";

/// Why `name` cannot be a section that every reader of the credentials file reads back as
/// exactly the profile `name` (botocore's `configparser`; the Rust, Java, Go and JavaScript
/// SDKs), or `None` when it can. The config checks profile names with this same rule, so a
/// name it accepts can always be written.
///
/// Allowed: ASCII letters and digits and `_-/.%@:+` (the SDKs' identifier characters); so no
/// whitespace (`[profile x]`, `[sso-session x]`, `[services x]` are other kinds of section),
/// brackets, `#` or `;`. Refused as well: `DEFAULT`, which botocore's `configparser` merges
/// into every other section, and `__proto__`, for which the JavaScript SDK refuses the file.
pub fn section_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && !NAME_CHARS.contains(c))
    {
        return Some(format!(
            "{:?} is not one of the characters the AWS SDKs accept in a profile name (letters, digits and {NAME_CHARS}); they ignore such a section",
            c
        ));
    }
    match name {
        "DEFAULT" => Some("botocore (the AWS CLI, boto3) reads a [DEFAULT] section as defaults for every other profile".into()),
        "__proto__" => Some("the AWS SDK for JavaScript refuses a credentials file with a [__proto__] section".into()),
        _ => None,
    }
}

/// One physical line of the file (kept small: the editor holds one per line of the file).
pub(super) struct Line<'a> {
    /// The line including its terminator, for verbatim copying.
    pub(super) raw: &'a str,
    pub(super) kind: Kind<'a>,
}

impl<'a> Line<'a> {
    /// The line without its terminator.
    pub(super) fn text(&self) -> &'a str {
        line_text(self.raw)
    }

    /// `"\n"`, `"\r\n"`, or `""` for a last line without newline.
    pub(super) fn eol(&self) -> &'a str {
        &self.raw[self.text().len()..]
    }
}

/// `raw` without its `\n` or `\r\n` terminator.
fn line_text(raw: &str) -> &str {
    raw.strip_suffix('\n')
        .map_or(raw, |t| t.strip_suffix('\r').unwrap_or(t))
}

/// What a line means to readers of the file.
pub(super) enum Kind<'a> {
    Blank,
    Comment,
    /// `[name]`, name trimmed.
    Header(&'a str),
    /// `key = value` (or `key: value`), both trimmed.
    Key {
        key: &'a str,
        value: &'a str,
    },
    /// Indented line after a key line: part of that key's value.
    Continuation,
    /// Anything else (readers reject these); copied verbatim.
    Other,
}

/// Splits `contents` into classified lines, keeping terminators, the way Python's
/// `configparser` (botocore, the AWS CLI) reads them: a line indented deeper than the key
/// line before it continues that key's value (blank and comment lines in between do not
/// end the value); a header is `[`…`]` up to the last `]`.
pub(super) fn parse(contents: &str) -> Vec<Line<'_>> {
    // Indentation (in characters) of the key line whose value may continue.
    let mut key_indent: Option<usize> = None;
    // Sized up front: growing by doubling would hold up to three times the lines at once.
    let mut lines = Vec::with_capacity(contents.bytes().filter(|&b| b == b'\n').count() + 1);
    lines.extend(contents.split_inclusive('\n').map(|raw| {
        let text = line_text(raw);
        let trimmed = text.trim();
        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
        let kind = if trimmed.is_empty() {
            Kind::Blank
        } else if trimmed.starts_with(['#', ';']) {
            Kind::Comment
        } else if key_indent.is_some_and(|k| indent > k) {
            Kind::Continuation
        } else if let Some(inner) = header_name(trimmed) {
            key_indent = None;
            Kind::Header(inner.trim())
        } else if let Some((key, value)) = trimmed
            .split_once(['=', ':'])
            .filter(|(k, _)| !k.trim().is_empty())
        {
            key_indent = Some(indent);
            Kind::Key {
                key: key.trim(),
                value: value.trim(),
            }
        } else {
            Kind::Other
        };
        Line { raw, kind }
    }));
    lines
}

/// Splits parsed lines into those before the first header and the sections that follow:
/// each the index of its header line, its name and its lines (header first).
pub(super) fn sections<'l, 'a>(lines: &'l [Line<'a>]) -> (&'l [Line<'a>], Sections<'l, 'a>) {
    let first = lines.iter().position(is_header).unwrap_or(lines.len());
    let rest = Sections {
        lines,
        start: first,
    };
    (&lines[..first], rest)
}

/// The sections of a parsed file, from [`sections`].
pub(super) struct Sections<'l, 'a> {
    lines: &'l [Line<'a>],
    /// Index of the next section's header line (`lines.len()` when done).
    start: usize,
}

impl<'l, 'a> Iterator for Sections<'l, 'a> {
    type Item = (usize, &'a str, &'l [Line<'a>]);

    fn next(&mut self) -> Option<Self::Item> {
        let (start, lines) = (self.start, self.lines);
        let Kind::Header(name) = lines.get(start)?.kind else {
            return None;
        };
        let end = lines[start + 1..]
            .iter()
            .position(is_header)
            .map_or(lines.len(), |p| start + 1 + p);
        self.start = end;
        Some((start, name, &lines[start..end]))
    }
}

fn is_header(line: &Line<'_>) -> bool {
    matches!(line.kind, Kind::Header(_))
}

/// The text between `[` and the last `]` of a trimmed line, if it is a section header
/// (`configparser`'s `\[(?P<header>.+)\]`).
fn header_name(trimmed: &str) -> Option<&str> {
    let rest = trimmed.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    Some(&rest[..close]).filter(|n| !n.is_empty())
}

/// Refuses files that botocore rejects (so boto3 and the AWS CLI already fail on them) or
/// that readers would disagree about in a managed section, naming the first offending line.
/// Writing into such a file could only hide the problem; the user has to fix it.
pub(super) fn check_readable(lines: &[Line<'_>], managed: &[&str]) -> Result<(), EditError> {
    use std::collections::hash_map::{Entry, HashMap};
    let unreadable = |line: usize, reason: &str| EditError::Unreadable {
        line,
        reason: reason.to_owned(),
    };
    // Raw header name -> first line, as configparser compares them.
    let mut sections: HashMap<&str, usize> = HashMap::new();
    // Trimmed managed name -> first line.
    let mut managed_seen: HashMap<&str, usize> = HashMap::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut current: Option<&str> = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if line.text().contains('\r') {
            return Err(unreadable(n, "a carriage return that does not end the line: Python splits the line there, the AWS SDKs do not; remove it"));
        }
        let indented = line.text().starts_with(char::is_whitespace);
        match line.kind {
            Kind::Blank | Kind::Comment => {}
            Kind::Header(name) => {
                let raw = line.text().trim();
                let raw = header_name(raw).unwrap_or(name);
                if let Some(prev) = current.filter(|p| managed.contains(p)) {
                    if indented {
                        return Err(unreadable(n, &format!("the header after managed section [{prev}] is indented: botocore reads a new section, the AWS SDKs part of [{prev}], and the keys credfresh writes would make botocore read it as part of a value too; start the line with the [")));
                    }
                }
                keys = HashMap::new(); // not clear(): that is O(capacity), quadratic after a long section
                current = Some(name);
                if managed.contains(&name) {
                    if raw != name || indented {
                        return Err(unreadable(n, &format!("the header of managed section [{name}] is indented or has spaces inside the brackets, which botocore and the AWS SDKs read as different profiles; write it as [{name}] at the start of the line")));
                    }
                    if let Some(&first) = managed_seen.get(name) {
                        return Err(EditError::DuplicateSection {
                            name: name.to_owned(),
                            first,
                            line: n,
                        });
                    }
                    managed_seen.insert(name, n);
                }
                if raw != "DEFAULT" {
                    match sections.entry(raw) {
                        Entry::Occupied(first) => {
                            return Err(EditError::DuplicateSection {
                                name: raw.to_owned(),
                                first: *first.get(),
                                line: n,
                            })
                        }
                        Entry::Vacant(v) => {
                            v.insert(n);
                        }
                    }
                }
            }
            Kind::Key { key, .. } => {
                let Some(section) = current else {
                    return Err(unreadable(n, "a key before the first [section] header; botocore refuses the whole file: move it into a section or delete it"));
                };
                if indented && managed.contains(&section) {
                    return Err(unreadable(n, &format!("an indented key in managed section [{section}]: botocore reads a key, the AWS SDKs a continuation of the line before; start the line with the key")));
                }
                let key = key.to_lowercase();
                let ours = managed.contains(&section)
                    && MANAGED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key));
                if !ours {
                    if let Some(first) = keys.insert(key.clone(), n) {
                        return Err(unreadable(n, &format!("key {key} appears again in [{section}] (first on line {first}); botocore refuses a repeated key: delete one")));
                    }
                }
            }
            Kind::Continuation => {}
            Kind::Other => {
                return Err(unreadable(n, "neither a [section] header, a `key = value` line nor a # or ; comment; botocore refuses the whole file: fix or delete the line"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_after_the_preamble_with_header_indices() {
        let lines = parse("; top\nk = v\n[a]\nx = 1\n\n[b]\n  [c]\n");
        let (preamble, all) = sections(&lines);
        assert_eq!(preamble.len(), 2);
        let got: Vec<(usize, &str, usize)> = all.map(|(i, n, s)| (i, n, s.len())).collect();
        assert_eq!(got, [(2, "a", 3), (5, "b", 1), (6, "c", 1)]);
        let none = parse("# only a comment\n");
        let (preamble, mut all) = sections(&none);
        assert_eq!(preamble.len(), 1);
        assert!(all.next().is_none());
    }

    #[test]
    fn read_section_basics() {
        assert_eq!(read_section("[a]\nk=v\n", "b"), None);
        assert_eq!(read_section("[b]\n", "b"), Some(BTreeMap::new()));
        let s = read_section(
            "k0 = outside\n[ b ]\r\n K = v \r\n# c\n[c]\nk = other\n",
            "b",
        );
        assert_eq!(s, Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])));
    }
}
