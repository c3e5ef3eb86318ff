//! A small reader of the AWS shared credentials file, independent of credfresh's own, that
//! reads sections the way botocore does (whole-line `#`/`;` comments, `key = value`).

use std::collections::BTreeMap;

/// A section's keys (lowercase) and trimmed values.
pub type Section = BTreeMap<String, String>;

/// Every section in file order; a repeated section shows up twice.
pub fn parse(text: &str) -> Vec<(String, Section)> {
    let mut out: Vec<(String, Section)> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.push((name.trim().to_owned(), Section::new()));
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            continue; // a continuation line
        }
        if let (Some((_, section)), Some((k, v))) = (out.last_mut(), t.split_once('=')) {
            section.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

/// The keys of `name`, if the file has that section.
pub fn section(text: &str, name: &str) -> Option<Section> {
    parse(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

/// How many times section `name` appears.
pub fn count(text: &str, name: &str) -> usize {
    parse(text).iter().filter(|(n, _)| n == name).count()
}

/// `text` without the managed sections in `managed`: each one's header and the key lines
/// (and comments between them) up to its last key line are cut; blank lines and comments
/// after the last key, and everything in other sections, stay. Newlines at the end of the
/// file are dropped, since appending a section may add a separating blank line.
pub fn without_sections(text: &str, managed: &[&str]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = |l: &str| {
        let t = l.trim();
        t.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(|n| n.trim().to_owned())
    };
    let is_key = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with(';') && header(l).is_none()
    };
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let is_managed = header(lines[i]).is_some_and(|n| managed.contains(&n.as_str()));
        if !is_managed {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let end = lines[i + 1..]
            .iter()
            .position(|l| header(l).is_some())
            .map_or(lines.len(), |p| i + 1 + p);
        let last_key = (i + 1..end).rev().find(|&j| is_key(lines[j])).unwrap_or(i);
        i = last_key + 1;
    }
    out.trim_end_matches(['\n', '\r']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_sections_cuts_only_managed_key_lines() {
        let text =
            "# top\n[a]\nk = 1\n\n[m]\nk = 2\n# a comment after m\n[b]\nk=3  \n\n[m2]\nx = 1\n\n";
        assert_eq!(
            without_sections(text, &["m", "m2"]),
            "# top\n[a]\nk = 1\n\n# a comment after m\n[b]\nk=3  "
        );
        // A changed byte anywhere outside the managed sections shows.
        let edited = text.replace("k=3  ", "k=3 ");
        assert_ne!(
            without_sections(&edited, &["m", "m2"]),
            without_sections(text, &["m", "m2"])
        );
        let edited = text.replace("# a comment after m", "# a comment after M");
        assert_ne!(
            without_sections(&edited, &["m", "m2"]),
            without_sections(text, &["m", "m2"])
        );
        assert_eq!(section(text, "b").unwrap()["k"], "3");
        assert_eq!(count(text, "m"), 1);
    }
}
