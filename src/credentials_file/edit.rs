//! Edits of the managed sections: updates applied in place (only lines whose value changes
//! are rewritten, missing sections appended) and sections credfresh wrote pruned, every other
//! byte of the file left alone.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::ini::{
    check_readable, parse, section_name_problem, sections, EditError, Kind, Line, EXPIRATION_KEY,
    MANAGED_KEYS,
};

/// One managed profile's credentials to put into the file.
///
/// Borrowed rather than owned so callers can keep secrets in `secrecy` wrappers and only
/// expose them for the duration of the edit.
#[derive(Clone, Copy)]
pub struct SectionUpdate<'a> {
    /// Section (profile) name, without brackets.
    pub name: &'a str,
    /// `aws_access_key_id` value.
    pub access_key_id: &'a str,
    /// `aws_secret_access_key` value (secret: never logged).
    pub secret_access_key: &'a str,
    /// `aws_session_token` value (secret: never logged).
    pub session_token: &'a str,
    /// When these credentials expire; written as [`EXPIRATION_KEY`].
    pub expiration: SystemTime,
}

/// Redacts the secret key and session token so an update can be logged safely.
impl fmt::Debug for SectionUpdate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SectionUpdate")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// First second `humantime` cannot format (year 10000); later expirations are rejected.
const MAX_EXPIRATION_SECS: u64 = 253_402_300_800;

/// Returns `original` with every update applied, preserving all bytes outside the managed
/// keys so that hand-edited content survives credfresh.
///
/// Existing managed sections are updated in place (only lines whose value changes are
/// rewritten); missing ones are appended. An existing section without [`EXPIRATION_KEY`]
/// is not credfresh's and is refused ([`EditError::ForeignSection`]). Applying values
/// already present returns `original` unchanged, so callers can skip the write.
pub fn apply_updates(original: &str, updates: &[SectionUpdate<'_>]) -> Result<String, EditError> {
    edit(original, updates, true)
}

/// [`apply_updates`], optionally also into existing sections credfresh did not write (for the
/// tests of the editing itself).
fn edit(
    original: &str,
    updates: &[SectionUpdate<'_>],
    refuse_foreign: bool,
) -> Result<String, EditError> {
    let desired = validate(updates)?;
    let lines = parse(original);
    let names: Vec<&str> = desired.iter().map(|d| d.name).collect();
    check_readable(&lines, &names)?;
    let eol = if original.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(original.len() + 256 * desired.len());
    let mut seen: Vec<bool> = vec![false; desired.len()];

    let (preamble, sections) = sections(&lines);
    preamble.iter().for_each(|l| out.push_str(l.raw));
    for (start, name, section) in sections {
        match desired.iter().position(|d| d.name == name) {
            Some(i) if seen[i] => {
                // `check_readable` reports this with both lines; kept as a safety net.
                return Err(EditError::DuplicateSection {
                    name: desired[i].name.to_owned(),
                    first: 0,
                    line: start + 1,
                });
            }
            Some(i) => {
                if refuse_foreign && !written_by_us(section) {
                    return Err(EditError::ForeignSection {
                        name: desired[i].name.to_owned(),
                        line: start + 1,
                    });
                }
                seen[i] = true;
                edit_section(&mut out, section, &desired[i], eol);
            }
            None => section.iter().for_each(|l| out.push_str(l.raw)),
        }
    }

    for d in desired
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(d, _)| d)
    {
        if !out.is_empty() {
            end_line(&mut out, eol);
            if !ends_with_blank_line(&out) {
                out.push_str(eol);
            }
        }
        out.push('[');
        out.push_str(d.name);
        out.push(']');
        out.push_str(eol);
        for (key, value) in MANAGED_KEYS.iter().zip(d.values()) {
            push_key(&mut out, key, value, eol);
        }
    }
    Ok(out)
}

/// Returns `original` without the sections credfresh wrote (those holding
/// [`EXPIRATION_KEY`]) whose name is not in `keep`, and the names removed. A removed section
/// loses its header and lines up to its last key line; comments and blank lines after it
/// stay (they usually introduce the next section). Refuses files readers reject.
pub fn prune_sections(original: &str, keep: &[&str]) -> Result<(String, Vec<String>), EditError> {
    let lines = parse(original);
    check_readable(&lines, keep)?;
    let mut out = String::with_capacity(original.len());
    let mut removed = Vec::new();
    let (preamble, sections) = sections(&lines);
    preamble.iter().for_each(|l| out.push_str(l.raw));
    for (_, name, section) in sections {
        if written_by_us(section) && !keep.contains(&name) {
            removed.push(name.to_owned());
            let last_key = section
                .iter()
                .rposition(|l| matches!(l.kind, Kind::Key { .. } | Kind::Continuation))
                .unwrap_or(0);
            section[last_key + 1..]
                .iter()
                .for_each(|l| out.push_str(l.raw));
        } else {
            section.iter().for_each(|l| out.push_str(l.raw));
        }
    }
    Ok((out, removed))
}

/// A validated update with its expiration pre-formatted.
struct Desired<'a> {
    name: &'a str,
    credentials: [&'a str; 3],
    expiration: String,
}

impl Desired<'_> {
    /// Values in [`MANAGED_KEYS`] order.
    fn values(&self) -> [&str; 4] {
        let [id, secret, token] = self.credentials;
        [id, secret, token, &self.expiration]
    }
}

/// Rejects updates that would produce a file readers parse differently from what we meant.
fn validate<'a>(updates: &[SectionUpdate<'a>]) -> Result<Vec<Desired<'a>>, EditError> {
    let mut desired: Vec<Desired<'a>> = Vec::with_capacity(updates.len());
    for u in updates {
        let name = u.name;
        if let Some(reason) = section_name_problem(name) {
            return Err(EditError::InvalidSectionName {
                name: name.to_owned(),
                reason,
            });
        }
        if desired.iter().any(|d| d.name == name) {
            return Err(EditError::DuplicateUpdate {
                name: name.to_owned(),
            });
        }
        let credentials = [u.access_key_id, u.secret_access_key, u.session_token];
        for (key, value) in MANAGED_KEYS.iter().zip(credentials) {
            if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(EditError::InvalidValue {
                    section: name.to_owned(),
                    key,
                });
            }
        }
        let in_range = u
            .expiration
            .duration_since(UNIX_EPOCH)
            .is_ok_and(|d| d.as_secs() < MAX_EXPIRATION_SECS);
        if !in_range {
            return Err(EditError::ExpirationOutOfRange {
                section: name.to_owned(),
            });
        }
        let expiration = humantime::format_rfc3339_seconds(u.expiration).to_string();
        desired.push(Desired {
            name,
            credentials,
            expiration,
        });
    }
    Ok(desired)
}

/// Writes one existing managed section: managed keys updated in place (duplicates and
/// their continuation lines dropped), missing ones inserted after the last key line.
fn edit_section(out: &mut String, section: &[Line<'_>], d: &Desired<'_>, eol: &str) {
    let values = d.values();
    // Trailing blank/comment lines are usually about the next section; insert before them.
    let insert_after = section
        .iter()
        .rposition(|l| matches!(l.kind, Kind::Key { .. } | Kind::Continuation))
        .unwrap_or(0);
    let mut present = [false; 4];
    let mut dropping = false; // whether continuation lines belong to a line we replaced
    for (i, line) in section.iter().enumerate() {
        match line.kind {
            Kind::Key { key, value } => {
                let managed = MANAGED_KEYS
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(key));
                dropping = managed.is_some();
                match managed {
                    None => out.push_str(line.raw),
                    Some(k) if present[k] => {} // duplicate: readers reject or pick one
                    Some(k) => {
                        present[k] = true;
                        if value == values[k] && !has_continuation(&section[i + 1..]) {
                            dropping = false;
                            out.push_str(line.raw);
                        } else {
                            push_key(out, MANAGED_KEYS[k], values[k], line.eol());
                        }
                    }
                }
            }
            Kind::Continuation if dropping => {}
            Kind::Other => {
                dropping = false;
                out.push_str(line.raw);
            }
            _ => out.push_str(line.raw),
        }
        if i == insert_after {
            for k in (0..4).filter(|&k| !present[k]) {
                end_line(out, eol);
                push_key(out, MANAGED_KEYS[k], values[k], eol);
            }
        }
    }
}

/// Whether a section (header and lines) is one credfresh wrote: it has [`EXPIRATION_KEY`].
fn written_by_us(section: &[Line<'_>]) -> bool {
    section.iter().any(
        |l| matches!(l.kind, Kind::Key { key, .. } if key.eq_ignore_ascii_case(EXPIRATION_KEY)),
    )
}

/// Whether the key line just before `rest` has continuation lines.
fn has_continuation(rest: &[Line<'_>]) -> bool {
    rest.iter()
        .take_while(|l| !matches!(l.kind, Kind::Key { .. } | Kind::Header(_) | Kind::Other))
        .any(|l| matches!(l.kind, Kind::Continuation))
}

/// Appends `key = value` terminated by `eol` (which may be empty at end of file).
fn push_key(out: &mut String, key: &str, value: &str, eol: &str) {
    out.push_str(key);
    out.push_str(" = ");
    out.push_str(value);
    out.push_str(eol);
}

/// Terminates the last line of `out` if it lacks a line ending, so text can follow it.
fn end_line(out: &mut String, eol: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(eol);
    }
}

/// Whether the last (terminated) line of `out` is blank, so no separator is needed.
fn ends_with_blank_line(out: &str) -> bool {
    let body = out.strip_suffix('\n').unwrap_or(out);
    body.rsplit('\n')
        .next()
        .is_some_and(|l| l.trim().is_empty())
}

/// Counts the heap each test thread uses, so tests can check that memory is linear in the
/// input without timing anything.
#[cfg(test)]
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static IN_USE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    fn add(n: usize) {
        let _ = IN_USE.try_with(|u| {
            u.set(u.get() + n);
            let _ = PEAK.try_with(|p| p.set(p.get().max(u.get())));
        });
    }

    fn sub(n: usize) {
        let _ = IN_USE.try_with(|u| u.set(u.get().saturating_sub(n)));
    }

    // SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            sub(layout.size());
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size);
            sub(layout.size());
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// The most heap (bytes) this thread held at once while running `f`, above what it
    /// held before.
    pub fn peak_during(f: impl FnOnce()) -> usize {
        let base = IN_USE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        f();
        PEAK.with(Cell::get) - base
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::ini::read_section;
    use super::*;

    fn expiration() -> SystemTime {
        humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap()
    }

    pub(in crate::credentials_file) fn update(name: &str) -> SectionUpdate<'_> {
        SectionUpdate {
            name,
            access_key_id: "ASIANEW",
            secret_access_key: "newsecret/+=",
            session_token: "newtoken==",
            expiration: expiration(),
        }
    }

    pub(in crate::credentials_file) const NEW_SECTION: &str = "[managed]\naws_access_key_id = ASIANEW\naws_secret_access_key = newsecret/+=\naws_session_token = newtoken==\nx_credfresh_expiration = 2026-11-23T10:00:00Z\n";

    /// The editor without the refusal of sections credfresh did not write.
    pub(in crate::credentials_file) fn apply_any(
        original: &str,
        updates: &[SectionUpdate<'_>],
    ) -> Result<String, EditError> {
        edit(original, updates, false)
    }

    fn apply(original: &str) -> String {
        apply_any(original, &[update("managed")]).unwrap()
    }

    /// The raw lines not belonging to section `name` (independent of the module's parser).
    fn outside(contents: &str, name: &str) -> String {
        let mut inside = false;
        let mut kept = String::new();
        for line in contents.split_inclusive('\n') {
            let t = line.trim();
            if t.starts_with('[') && t.contains(']') {
                inside = t[1..t.find(']').unwrap()].trim() == name;
            }
            if !inside {
                kept.push_str(line);
            }
        }
        kept
    }

    /// Memory per rewrite is linear in the file with a small constant: 4x the input costs at
    /// most ~4x the heap, and at most 12 bytes per input byte even for 8-byte lines (the editor
    /// holds one small record per line; issue 15: a 49 MB file took the daemon to 2.5 GB). Shapes: typical sections, and a long section followed by many
    /// short ones (its key table used to be cleared for every later section: quadratic).
    #[test]
    fn editing_memory_is_linear_in_the_file() {
        let typical = |n: usize| {
            (0..n)
                .map(|i| format!("[p{i}]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = 0123456789012345678901234567890123456789\n\n"))
                .collect::<String>()
        };
        let long_then_short = |n: usize| {
            let mut s = String::from("[big]\n");
            (0..n).for_each(|i| s.push_str(&format!("k{i} = v\n")));
            (0..n).for_each(|i| s.push_str(&format!("[p{i}]\nk = v\n")));
            s
        };
        for (shape, make) in [
            ("typical", &typical as &dyn Fn(usize) -> String),
            ("long then short", &long_then_short),
        ] {
            let peak = |n: usize| {
                let text = make(n);
                let peak = heap::peak_during(|| {
                    apply_updates(&text, &[update("managed")]).unwrap();
                });
                (text.len(), peak)
            };
            let (len1, peak1) = peak(5_000);
            let (len4, peak4) = peak(20_000);
            eprintln!("{shape}: {len1} bytes -> {peak1}, {len4} bytes -> {peak4}");
            assert!(
                peak4 <= peak1 * 9 / 2,
                "{shape}: not linear: {peak1} then {peak4}"
            );
            assert!(
                peak4 <= len4 * 12,
                "{shape}: {peak4} bytes of heap for {len4} bytes"
            );
        }
    }

    #[test]
    fn empty_original_gets_just_the_section() {
        assert_eq!(apply(""), NEW_SECTION);
    }

    #[test]
    fn appends_after_trailing_newline() {
        let original = "[default]\nregion = us-east-1\n";
        assert_eq!(apply(original), format!("{original}\n{NEW_SECTION}"));
    }

    #[test]
    fn appends_without_trailing_newline() {
        let original = "[default]\nregion = us-east-1";
        assert_eq!(apply(original), format!("{original}\n\n{NEW_SECTION}"));
    }

    #[test]
    fn append_reuses_existing_blank_separator() {
        let original = "[default]\nregion = us-east-1\n\n";
        assert_eq!(apply(original), format!("{original}{NEW_SECTION}"));
    }

    #[test]
    fn crlf_file_gets_crlf_lines() {
        let original = "[default]\r\nregion = us-east-1\r\n";
        let out = apply(original);
        assert_eq!(
            out,
            format!("{original}\r\n{}", NEW_SECTION.replace('\n', "\r\n"))
        );

        let existing = "[managed]\r\naws_access_key_id = OLD\r\nregion = eu\r\n[z]\r\n";
        let out = apply(existing);
        assert_eq!(
            out,
            "[managed]\r\naws_access_key_id = ASIANEW\r\nregion = eu\r\naws_secret_access_key = newsecret/+=\r\naws_session_token = newtoken==\r\nx_credfresh_expiration = 2026-11-23T10:00:00Z\r\n[z]\r\n"
        );
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn in_place_update_keeps_other_keys_and_positions() {
        let original = "\
# my creds
[default]
aws_access_key_id = DEFAULT
aws_secret_access_key = defaultsecret

; managed by credfresh
[managed]
region = eu-west-1
AWS_SECRET_ACCESS_KEY=oldsecret
output = json
aws_access_key_id: OLD
x_credfresh_expiration = 2020-01-01T00:00:00Z
custom = keep me

# about other
[other]
a = b
";
        let out = apply(original);
        assert_eq!(
            out,
            "\
# my creds
[default]
aws_access_key_id = DEFAULT
aws_secret_access_key = defaultsecret

; managed by credfresh
[managed]
region = eu-west-1
aws_secret_access_key = newsecret/+=
output = json
aws_access_key_id = ASIANEW
x_credfresh_expiration = 2026-11-23T10:00:00Z
custom = keep me
aws_session_token = newtoken==

# about other
[other]
a = b
"
        );
        assert_eq!(outside(&out, "managed"), outside(original, "managed"));
        let section = read_section(&out, "managed").unwrap();
        assert_eq!(section["region"], "eu-west-1");
        assert_eq!(section["aws_session_token"], "newtoken==");
        assert_eq!(section["custom"], "keep me");
    }

    #[test]
    fn missing_keys_go_after_last_key_and_header_only_section() {
        assert_eq!(
            apply("[managed]"),
            NEW_SECTION,
            "header at EOF without newline"
        );
        assert_eq!(
            apply("[managed]\n\n[next]\n"),
            format!("{NEW_SECTION}\n[next]\n")
        );
        assert_eq!(
            apply("[managed]\nregion = x"),
            format!("[managed]\nregion = x\n{}", &NEW_SECTION[10..])
        );
    }

    #[test]
    fn foreign_content_is_byte_identical() {
        let original = "# top level\n\n# c1\n;c2\n[a]\nk=v\n  cont\n\n[managed]\naws_access_key_id = X\n\n   # indented comment\n[b]\n x : y \n\t\n[c]\nlast = no newline";
        let out = apply(original);
        assert_eq!(outside(&out, "managed"), outside(original, "managed"));
        // And the managed section took its new values.
        let section = read_section(&out, "managed").unwrap();
        assert_eq!(section["aws_access_key_id"], "ASIANEW");
        assert_eq!(section[EXPIRATION_KEY], "2026-11-23T10:00:00Z");
    }

    #[test]
    fn idempotent_and_identical_values_return_input() {
        for original in ["", "[default]\nx = 1", "[managed]\nregion = r\n\n[z]\r\n"] {
            let once = apply(original);
            assert_eq!(apply(&once), once);
        }
        // Identical values in a non-canonical layout are left byte-for-byte alone.
        let original = "[managed]\r\nAWS_ACCESS_KEY_ID=ASIANEW\r\naws_secret_access_key\t:newsecret/+=\r\naws_session_token=  newtoken==\r\nx_credfresh_expiration=2026-11-23T10:00:00Z";
        assert_eq!(apply(original), original);
        assert_eq!(apply_any(original, &[]).unwrap(), original);
    }

    #[test]
    fn duplicate_managed_header_names_second_line() {
        let original = "[managed]\na = b\n\n[other]\n[managed]  \n";
        assert_eq!(
            apply_any(original, &[update("managed")]),
            Err(EditError::DuplicateSection {
                name: "managed".into(),
                first: 1,
                line: 5
            })
        );
        let message = apply_any(original, &[update("managed")])
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("line 5: "), "{message}");
        assert!(message.contains("first on line 1"), "{message}");
        // botocore refuses foreign duplicates too, so boto3 could not read our section.
        assert_eq!(
            apply_any("[x]\n[x]\n", &[update("managed")]),
            Err(EditError::DuplicateSection {
                name: "x".into(),
                first: 1,
                line: 2
            })
        );
    }

    #[test]
    fn invalid_updates_are_rejected_without_leaking_values() {
        let mut u = update("managed");
        u.secret_access_key = "TOPSECRET value";
        let err = apply_any("", &[u]).unwrap_err();
        assert_eq!(
            err,
            EditError::InvalidValue {
                section: "managed".into(),
                key: "aws_secret_access_key"
            }
        );
        assert!(!err.to_string().contains("TOPSECRET"));
        assert!(!format!("{u:?}").contains("TOPSECRET"));

        for name in ["", " x", "a]b", "a#b", "a\nb"] {
            assert!(matches!(
                apply_any("", &[update(name)]),
                Err(EditError::InvalidSectionName { .. })
            ));
        }
        assert!(matches!(
            apply_any("", &[update("m"), update("m")]),
            Err(EditError::DuplicateUpdate { .. })
        ));
        let mut u = update("managed");
        u.expiration = UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert!(matches!(
            apply_any("", &[u]),
            Err(EditError::ExpirationOutOfRange { .. })
        ));
    }

    #[test]
    fn continuation_lines_and_duplicate_keys() {
        let original = "[managed]\naws_session_token = OLD\n  more-old\n\tand more\nregion = r\n  region cont\naws_session_token = DUP\n  dup cont\naws_access_key_id = ASIANEW\n# end\n";
        let out = apply(original);
        assert_eq!(
            out,
            "[managed]\naws_session_token = newtoken==\nregion = r\n  region cont\naws_access_key_id = ASIANEW\naws_secret_access_key = newsecret/+=\nx_credfresh_expiration = 2026-11-23T10:00:00Z\n# end\n"
        );
        let section = read_section(&out, "managed").unwrap();
        assert_eq!(section["region"], "r\nregion cont");
        assert_eq!(section["aws_session_token"], "newtoken==");
        // Same value but with a continuation is still rewritten (readers see a longer value).
        let out = apply("[managed]\naws_access_key_id = ASIANEW\n  tail\n");
        assert!(!out.contains("tail"));
        // Indented key line after a key is a continuation: not our key.
        let out = apply("[managed]\nregion = r\n  aws_access_key_id = SNEAKY\n");
        assert_eq!(
            read_section(&out, "managed").unwrap()["aws_access_key_id"],
            "ASIANEW"
        );
        assert!(out.contains("  aws_access_key_id = SNEAKY\n"));
    }

    #[test]
    fn files_botocore_refuses_are_left_alone_with_the_line() {
        let refused = [
            (
                "orphan = before any section\n[managed]\n",
                1,
                "before the first [section]",
            ),
            (
                "[a]\nk = 1\nnot a key line\n",
                3,
                "neither a [section] header",
            ),
            ("[a]\nk = 1\n= no name\n", 3, "neither a [section] header"),
            (
                "[a]\nK = 1\nk = 2\n",
                3,
                "key k appears again in [a] (first on line 2)",
            ),
            ("[a]\nk = 1\rl = 2\n", 2, "carriage return"),
            ("[b]\n  [managed]\n", 2, "indented or has spaces"),
            ("[ managed ]\n", 1, "indented or has spaces"),
            // Our keys would turn the indented header into a continuation of the last one.
            (
                "[default]\n[managed]\n [ ]",
                3,
                "header after managed section",
            ),
            (
                "[managed]\n  k = 1\n [b]\n",
                2,
                "an indented key in managed section",
            ),
            ("[]\n", 1, "neither a [section] header"),
            ("\u{feff}[default]\n", 1, "neither a [section] header"),
        ];
        for (input, line, reason) in refused {
            let err = apply_any(input, &[update("managed")]).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("line {line}: ")) && message.contains(reason),
                "{input:?}: {message}"
            );
            let about_managed = reason.contains("indented") || reason.contains("managed section");
            assert_eq!(
                prune_sections(input, &[]).is_err(),
                !about_managed,
                "{input:?}"
            );
        }
        // Duplicates of our own keys in our own section are repaired, not refused.
        let out = apply("[managed]\naws_access_key_id = A\nAWS_ACCESS_KEY_ID = B\n");
        assert_eq!(out.matches("aws_access_key_id").count(), 1, "{out}");
    }

    #[test]
    fn continuation_follows_configparser_indentation() {
        // Same indentation as the key line: a new key, not a continuation.
        let text = "[a]\n  k = 1\n  j = 2\n";
        let s = read_section(text, "a").unwrap();
        assert_eq!((s["k"].as_str(), s["j"].as_str()), ("1", "2"));
        // Deeper indentation continues, also across blank and comment lines.
        let text = "[a]\nk = 1\n\n# c\n  more\n[managed]\n";
        assert_eq!(read_section(text, "a").unwrap()["k"], "1\nmore");
        // A header-looking line indented under a key is part of its value.
        let text = "[a]\nk = 1\n  [managed]\n";
        assert_eq!(read_section(text, "managed"), None);
        let out = apply(text);
        assert!(out.starts_with(text), "{out}");
        assert_eq!(
            read_section(&out, "managed").unwrap()["aws_access_key_id"],
            "ASIANEW"
        );
        // Header up to the last `]`, as configparser's regex.
        assert!(read_section("[a]b]\nk = v\n", "a]b").is_some());
    }

    #[test]
    fn prune_removes_only_unconfigured_sections_we_wrote() {
        let text = "# top\n[kept]\naws_access_key_id = A\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n\n[gone]\naws_access_key_id = B\nX_CREDFRESH_EXPIRATION = 2026-01-01T00:00:00Z\n  \n# about foreign\n[foreign]\naws_access_key_id = C\n";
        let (out, removed) = prune_sections(text, &["kept"]).unwrap();
        assert_eq!(removed, ["gone"]);
        assert_eq!(out, "# top\n[kept]\naws_access_key_id = A\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n\n  \n# about foreign\n[foreign]\naws_access_key_id = C\n");
        // Nothing to prune: the input comes back as it was.
        let (same, none) = prune_sections(&out, &["kept"]).unwrap();
        assert!(none.is_empty());
        assert_eq!(same, out);
    }

    #[test]
    fn varied_inputs_round_trip_and_keep_foreign_lines() {
        let inputs = [
            "",
            "   \n\t\n",
            "# top comment\n; another\n[default]\nregion=us-east-1\n",
            "[a]\nkey = value with spaces = and equals\n  continuation\n\n[b]\n k : v \n",
            "[ünïcödé]\nnäme = välue 🦀\n# ℂomment ☃\n[managed]\naws_access_key_id=OLD\n; trailing\n\n[z]\nx=y",
            "[default]\r\naws_access_key_id = A\r\n\r\n[managed]\r\nregion = eu\r\n",
            "; before any section\n[managed]\n",
            "[managed]\naws_session_token = OLD\n  cont1\n  cont2\nregion = x\n",
            "[x]\na=1\n[managed]\n;c\nb = 2\n\n\n;next\n[y]\nc = 3\n",
        ];
        for input in inputs {
            assert_eq!(apply_any(input, &[]).unwrap(), input, "{input:?}");
            let out = apply(input);
            if input.contains("[managed]") {
                assert_eq!(
                    outside(&out, "managed"),
                    outside(input, "managed"),
                    "{input:?}"
                );
            } else {
                assert!(out.starts_with(input), "{input:?}");
            }
            let section = read_section(&out, "managed").unwrap();
            assert_eq!(section["aws_access_key_id"], "ASIANEW", "{input:?}");
            assert_eq!(section["aws_session_token"], "newtoken==", "{input:?}");
            for name in ["default", "a", "b", "ünïcödé", "x", "y", "z"] {
                assert_eq!(
                    read_section(&out, name),
                    read_section(input, name),
                    "{input:?}"
                );
            }
            assert_eq!(apply(&out), out, "{input:?}");
        }
    }
}

/// Property tests and the corpus replay for the editor. A longer run:
/// `PROPTEST_CASES=100000 cargo test --release --lib proptest`.
#[cfg(test)]
mod proptests {
    use super::super::ini::read_section;
    use super::tests::apply_any;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;

    fn update() -> SectionUpdate<'static> {
        SectionUpdate {
            name: "managed",
            access_key_id: "ASIANEW",
            secret_access_key: "newsecret/+=",
            session_token: "newtoken==",
            expiration: humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap(),
        }
    }

    /// The raw lines outside section `managed` (by the editor's own reading of sections),
    /// without trailing line breaks (appending a section may add a separator).
    fn foreign(text: &str) -> String {
        let mut inside = false;
        let mut out = String::new();
        for line in parse(text) {
            if let Kind::Header(name) = line.kind {
                inside = name == "managed";
            }
            if !inside {
                out.push_str(line.raw);
            }
        }
        out.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Non-managed keys of the managed section, as readers see them.
    fn other_keys(text: &str) -> Option<BTreeMap<String, String>> {
        read_section(text, "managed").map(|mut s| {
            s.retain(|k, _| !MANAGED_KEYS.contains(&k.as_str()));
            s
        })
    }

    /// Checks every guarantee the editor makes for `input`.
    fn check(input: &str) -> Result<(), TestCaseError> {
        match apply_any(input, &[]) {
            Ok(same) => prop_assert_eq!(&same, input, "untouched input must round-trip"),
            // Refused as it stands (an edit may still repair duplicates of our own keys).
            Err(_) => return Ok(()),
        }
        let out = match apply_any(input, &[update()]) {
            Ok(out) => out,
            // Lines readers only disagree about once [managed] is one of ours.
            Err(EditError::Unreadable { reason, .. }) if reason.contains("managed section") => {
                return Ok(())
            }
            Err(e) => return Err(TestCaseError::fail(format!("accepted input refused: {e}"))),
        };
        prop_assert_eq!(foreign(&out), foreign(input), "foreign bytes changed");
        let section = read_section(&out, "managed").unwrap_or_default();
        prop_assert_eq!(
            section.get("aws_access_key_id").map(String::as_str),
            Some("ASIANEW")
        );
        prop_assert_eq!(
            section.get("aws_session_token").map(String::as_str),
            Some("newtoken==")
        );
        prop_assert_eq!(
            section.get(EXPIRATION_KEY).map(String::as_str),
            Some("2026-11-23T10:00:00Z")
        );
        if read_section(input, "managed").is_some() {
            prop_assert_eq!(other_keys(&out), other_keys(input));
        }
        prop_assert_eq!(
            apply_any(&out, &[update()]).ok(),
            Some(out.clone()),
            "not idempotent"
        );
        let (pruned, removed) = prune_sections(&out, &[])
            .map_err(|e| TestCaseError::fail(format!("prune refused edited file: {e}")))?;
        prop_assert!(removed.iter().any(|r| r == "managed"), "{:?}", removed);
        prop_assert!(
            read_section(&pruned, "managed").is_none_or(|s| !s.contains_key(EXPIRATION_KEY))
        );
        Ok(())
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[managed]".to_owned()),
            Just("[default]".to_owned()),
            "\\[[a-z ]{1,5}\\]",
            "[a-zA-Z_]{1,8} {0,2}[=:] {0,2}[ -~]{0,10}",
            Just("aws_access_key_id = OLD".to_owned()),
            Just("AWS_SESSION_TOKEN: old".to_owned()),
            Just("x_credfresh_expiration=2020-01-01T00:00:00Z".to_owned()),
            "[ \t]{1,3}[ -~]{0,10}",
            "[#;][ -~]{0,10}",
            Just(String::new()),
            "\\PC{0,12}",
            "[\\[\\]=:#; \ta-z\r]{0,8}",
        ]
    }

    fn file() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(line(), 0..14),
            prop_oneof![Just("\n"), Just("\r\n")],
            any::<bool>(),
        )
            .prop_map(|(lines, eol, trailing)| {
                let mut text = lines.join(eol);
                if trailing && !text.is_empty() {
                    text.push_str(eol);
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000)
        ))]

        #[test]
        fn proptest_editor_keeps_foreign_bytes(text in file()) {
            check(&text)?;
        }

        #[test]
        fn proptest_no_panics_on_arbitrary_text(text in "\\PC{0,200}|[\\[\\]=:#; \t\r\na-z]{0,200}") {
            let _ = apply_any(&text, &[update()]);
            let _ = prune_sections(&text, &["managed"]);
            let _ = read_section(&text, "managed");
        }
    }

    #[test]
    fn corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/credentials");
        let mut seen = 0;
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ini") {
                continue;
            }
            seen += 1;
            let text = fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("refused-") {
                let err = apply_any(&text, &[update()]).unwrap_err();
                assert!(err.to_string().starts_with("line "), "{name}: {err}");
            } else if let Err(e) = check(&text) {
                panic!("{name}: {e}");
            }
        }
        assert!(seen >= 10, "corpus has only {seen} files");
    }
}
