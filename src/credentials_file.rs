//! Editing and atomically rewriting the AWS shared credentials file.
//!
//! The file belongs to the user and to every other tool that touches it, so the editor
//! only rewrites the lines it owns (four keys in each managed section) and leaves every
//! other byte alone. The writer replaces the file via a temporary file and `rename`, so
//! readers (SDKs, the CLI) never observe a half-written file.
//!
//! Parsing follows what botocore (Python `configparser`) and the AWS SDKs agree on:
//! whole-line `#`/`;` comments, `key = value` (also `key: value`), keys compared
//! ASCII-case-insensitively, and indented lines after a key continuing that key's value.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use tempfile::NamedTempFile;

/// Key recording when the credentials in a managed section expire, so the daemon (and
/// curious humans) can tell from the file alone whether a refresh is due.
pub const EXPIRATION_KEY: &str = "x_credfresh_expiration";

/// The keys owned by credfresh in a managed section, in the order new sections list them.
const MANAGED_KEYS: [&str; 4] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    EXPIRATION_KEY,
];

/// The largest credentials file credfresh reads and rewrites (8 MiB, thousands of profiles):
/// every rewrite holds a few copies of the file and its parse in memory, so a larger file is
/// refused ([`WriteError::TooLarge`]) rather than costing memory and time without bound.
pub const MAX_FILE_SIZE: u64 = 8 << 20;

/// How many times [`write_atomic`] redoes its edit when another writer keeps changing the file.
const MAX_ATTEMPTS: u32 = 10;

/// Bound on symlink hops, so a symlink loop fails instead of spinning (same as Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// First second `humantime` cannot format (year 10000); later expirations are rejected.
const MAX_EXPIRATION_SECS: u64 = 253_402_300_800;

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

/// Why [`write_atomic`] failed. The target file is left as it was, except for
/// [`WriteError::Io`] with operation `"sync directory"`, which happens after the rename.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A filesystem operation failed.
    #[error("failed to {op} {}: {source}", .path.display())]
    Io {
        /// What was being attempted, e.g. `"read"` or `"replace"`.
        op: &'static str,
        /// The path the operation was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The edit refused the current contents.
    #[error("{}: {source}", .path.display())]
    Edit {
        /// The (symlink-resolved) file.
        path: PathBuf,
        /// Why.
        #[source]
        source: EditError,
    },
    /// The file is larger than [`MAX_FILE_SIZE`]; it is left alone.
    #[error("{} is larger than {} MiB, more than credfresh edits; the file is left alone: move sections out of it (e.g. into the AWS config file)", .path.display(), MAX_FILE_SIZE >> 20)]
    TooLarge {
        /// The (symlink-resolved) file.
        path: PathBuf,
    },
    /// Another credfresh kept the advisory lock for longer than [`LOCK_TIMEOUT`].
    #[error("another credfresh holds the lock {} (waited {}s); is a second daemon writing the same file?", .path.display(), LOCK_TIMEOUT.as_secs())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Another writer changed the file between every read and rename; giving up rather
    /// than overwriting its changes.
    #[error("gave up updating {} after {attempts} attempts: it kept changing concurrently", .path.display())]
    Contended {
        /// The (symlink-resolved) file being updated.
        path: PathBuf,
        /// How many edits were attempted.
        attempts: u32,
    },
}

/// What [`write_atomic`] did, so callers can log or notify only on real changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file was replaced with new contents.
    Written,
    /// The edit produced identical contents; nothing was written.
    Unchanged,
}

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

    let is_header = |l: &Line<'_>| matches!(l.kind, Kind::Header(_));
    let mut start = lines.iter().position(is_header).unwrap_or(lines.len());
    lines[..start].iter().for_each(|l| out.push_str(l.raw));
    while start < lines.len() {
        let end = lines[start + 1..]
            .iter()
            .position(is_header)
            .map_or(lines.len(), |p| start + 1 + p);
        let section = &lines[start..end];
        let managed = match section[0].kind {
            Kind::Header(name) => desired.iter().position(|d| d.name == name),
            _ => None,
        };
        match managed {
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
        start = end;
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

/// Reads `path` (missing = empty), applies `edit`, and atomically replaces the file, so
/// readers only ever see the old or the new contents and concurrent edits are not lost.
///
/// - Symlinks (chains too) are followed: the final target is replaced, the links stay.
/// - A missing parent directory is created with mode 0700.
/// - Writers that cooperate (every credfresh) serialize on an advisory `flock` of
///   [`lock_path`], a file next to the target that is never replaced or deleted (a lock on
///   the credentials file itself would be lost at every rename).
/// - A file modified in the last [`SETTLE`] is read only once it has been quiet that long,
///   so an in-place writer (`aws configure set` truncates, then writes) is not caught
///   between its truncate and its write.
/// - The new file is written to a `.credfresh-*.tmp` file (mode 0600) in the target's
///   directory, synced, and renamed over the target; the directory is then synced.
/// - Just before the rename the target is re-read; if another writer changed it, the edit
///   is redone on the new contents (up to 10 attempts, then [`WriteError::Contended`]).
///   This narrows but cannot close the window for writers that do not cooperate.
/// - If `edit` returns its input unchanged, nothing is written ([`WriteOutcome::Unchanged`]).
/// - A target readable by other users is replaced by a 0600 file, with a warning.
/// - The replacement keeps the target's owner and group (root rewriting a user's file leaves
///   it the user's); a process that may not give it them fails, leaving the file as it was.
/// - On failure the old file is intact and no temporary file is left behind.
pub fn write_atomic(
    path: &Path,
    edit: impl Fn(&str) -> Result<String, EditError>,
) -> Result<WriteOutcome, WriteError> {
    let target = resolve_symlinks(path)?;
    let dir = parent_dir(&target);
    ensure_dir(dir)?;
    let _lock = lock(&target)?;
    let (mut base, mut old) = read_settled(&target)?;
    // What the file must still hold just before the rename (normally `base`).
    let mut expected = base.clone();
    for attempt in 1..=MAX_ATTEMPTS {
        let new = Zeroizing::new(edit(&base).map_err(|source| WriteError::Edit {
            path: target.clone(),
            source,
        })?);
        if new == expected {
            return Ok(WriteOutcome::Unchanged);
        }
        let owner = fs::metadata(&target).ok().map(|m| (m.uid(), m.gid()));
        let tmp = write_temp(dir, &new, owner)?;
        let current = read_or_empty(&target)?;
        if current != expected {
            tracing::debug!(path = %target.display(), attempt, "file changed during update; redoing edit");
            (base, old) = read_settled(&target)?;
            expected = base.clone();
            continue; // dropping `tmp` deletes it
        }
        warn_if_readable_by_others(&target);
        tmp.persist(&target)
            .map_err(|e| io_error("replace", &target)(e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("sync directory", dir))?;
        remember_own_write(&target);
        // A writer that opened the old file before the rename (`aws configure set` appends a
        // new section to the path it opened) may have written into the replaced inode.
        // Its edit is redone on top of ours rather than lost.
        match late_edit(old.take(), &base) {
            Some(theirs) => {
                tracing::info!(path = %target.display(), attempt, "another writer changed the file during the rename; merging its edit");
                (base, expected) = (theirs, new);
            }
            None => return Ok(WriteOutcome::Written),
        }
    }
    Err(WriteError::Contended {
        path: target,
        attempts: MAX_ATTEMPTS,
    })
}

/// The contents of the replaced file if it changed after it was read as `base`.
fn late_edit(old: Option<(File, Stamp)>, base: &str) -> Option<Zeroizing<String>> {
    let (mut file, read_as) = old?;
    let now = file.metadata().ok()?;
    if stamp(&now) == read_as {
        return None;
    }
    io::Seek::rewind(&mut file).ok()?;
    let theirs = match read_text(&mut file, Path::new("the replaced file")) {
        Ok(theirs) => theirs,
        Err(e) => {
            tracing::warn!("cannot merge an edit written into the replaced file: {e}");
            return None;
        }
    };
    (*theirs != base).then_some(theirs)
}

/// How long the advisory lock is waited for before giving up (the caller retries later).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a just-modified file must stay unmodified before it is trusted as complete.
pub const SETTLE: Duration = Duration::from_millis(25);

/// The advisory lock file for `target` (symlinks resolved): `.NAME.credfresh.lock` in the
/// same directory, e.g. `~/.aws/.credentials.credfresh.lock`.
pub fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "credentials".into(), |n| n.to_string_lossy());
    parent_dir(target).join(format!(".{name}.credfresh.lock"))
}

/// The directory holding `target` (`.` for a bare file name).
fn parent_dir(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Takes the exclusive advisory lock for `target`, waiting up to [`LOCK_TIMEOUT`]. The
/// lock is released when the returned value is dropped (or the process dies).
fn lock(target: &Path) -> Result<Flock<File>, WriteError> {
    let path = lock_path(target);
    // Open an existing lock file read-only, so a read-only directory still reads fine;
    // create it (0600) otherwise.
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("create lock file", &path))?,
        Err(e) => return Err(io_error("open lock file", &path)(e)),
    };
    let deadline = Instant::now() + LOCK_TIMEOUT;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((_, Errno::EWOULDBLOCK)) => return Err(WriteError::Locked { path }),
            Err((_, e)) => return Err(io_error("lock", &path)(e.into())),
        }
    }
}

/// Identity of the file credfresh last wrote: (device, inode, mtime ns, size).
type Stamp = (u64, u64, i128, u64);

/// The file this process wrote last, so [`read_settled`] need not wait for it to settle.
static OWN_WRITE: Mutex<Option<Stamp>> = Mutex::new(None);

fn stamp(meta: &fs::Metadata) -> Stamp {
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    (meta.dev(), meta.ino(), mtime, meta.size())
}

fn remember_own_write(target: &Path) {
    if let (Ok(meta), Ok(mut own)) = (fs::metadata(target), OWN_WRITE.lock()) {
        *own = Some(stamp(&meta));
    }
}

/// The file's text as read, and the open file with its stamp (see [`read_settled`]).
type Settled = (Zeroizing<String>, Option<(File, Stamp)>);

/// Reads the target once it has not been modified for [`SETTLE`] (at most ~1 s of waiting),
/// unless it is exactly the file this process wrote. Also returns the open file and its
/// stamp as read, to notice writes into it after it has been replaced.
fn read_settled(target: &Path) -> Result<Settled, WriteError> {
    for _ in 0..40 {
        let Ok(meta) = fs::metadata(target) else {
            break; // missing or odd: read_or_empty reports it
        };
        if OWN_WRITE.lock().is_ok_and(|own| *own == Some(stamp(&meta))) {
            break;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(SETTLE);
        if age >= SETTLE {
            break;
        }
        std::thread::sleep(SETTLE - age);
    }
    let text = read_or_empty(target)?;
    // Best effort: the file as read, for `late_edit`.
    let old = File::open(target).ok().and_then(|mut f| {
        let meta = f.metadata().ok()?;
        let again = read_text(&mut f, target).ok()?;
        (again == text).then(|| (f, stamp(&meta)))
    });
    Ok((text, old))
}

/// Logs a warning when the file about to be replaced was readable or writable by others;
/// the replacement is always 0600.
fn warn_if_readable_by_others(target: &Path) {
    if let Ok(meta) = fs::metadata(target) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %target.display(),
                "the credentials file had mode {mode:o} (other users could read it); it is now 0600"
            );
        }
    }
}

/// Removes temporary files a crashed credfresh left next to the credentials file at `path`:
/// only regular files named like ours (`.credfresh-XXXXXX.tmp`), owned by this user and last
/// modified before `started` (this process's start), under the advisory lock so that no
/// other credfresh's write in flight is touched. Returns what was removed.
pub fn remove_stale_temp_files(path: &Path, started: SystemTime) -> Vec<PathBuf> {
    let Ok(target) = resolve_symlinks(path) else {
        return Vec::new();
    };
    let dir = parent_dir(&target);
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let Ok(_lock) = lock(&target) else {
        return Vec::new();
    };
    let uid = nix::unistd::getuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let random = name
            .strip_prefix(".credfresh-")
            .and_then(|r| r.strip_suffix(".tmp"));
        if !random.is_some_and(|r| r.len() == 6 && r.chars().all(|c| c.is_ascii_alphanumeric())) {
            continue;
        }
        let p = entry.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        let old = meta.modified().is_ok_and(|m| m < started);
        if meta.file_type().is_file() && meta.uid() == uid && old {
            match fs::remove_file(&p) {
                Ok(()) => removed.push(p),
                Err(e) => {
                    tracing::warn!(file = %p.display(), "cannot remove a stale temporary file: {e}")
                }
            }
        }
    }
    removed
}

/// Returns `original` without the sections credfresh wrote (those holding
/// [`EXPIRATION_KEY`]) whose name is not in `keep`, and the names removed. A removed section
/// loses its header and lines up to its last key line; comments and blank lines after it
/// stay (they usually introduce the next section). Refuses files readers reject.
pub fn prune_sections(original: &str, keep: &[&str]) -> Result<(String, Vec<String>), EditError> {
    let lines = parse(original);
    check_readable(&lines, keep)?;
    let is_header = |l: &Line<'_>| matches!(l.kind, Kind::Header(_));
    let mut out = String::with_capacity(original.len());
    let mut removed = Vec::new();
    let mut start = lines.iter().position(is_header).unwrap_or(lines.len());
    lines[..start].iter().for_each(|l| out.push_str(l.raw));
    while start < lines.len() {
        let end = lines[start + 1..]
            .iter()
            .position(is_header)
            .map_or(lines.len(), |p| start + 1 + p);
        let section = &lines[start..end];
        let name = match section[0].kind {
            Kind::Header(name) => name,
            _ => "",
        };
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
        start = end;
    }
    Ok((out, removed))
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

/// One physical line of the file (kept small: the editor holds one per line of the file).
struct Line<'a> {
    /// The line including its terminator, for verbatim copying.
    raw: &'a str,
    kind: Kind<'a>,
}

impl<'a> Line<'a> {
    /// The line without its terminator.
    fn text(&self) -> &'a str {
        line_text(self.raw)
    }

    /// `"\n"`, `"\r\n"`, or `""` for a last line without newline.
    fn eol(&self) -> &'a str {
        &self.raw[self.text().len()..]
    }
}

/// `raw` without its `\n` or `\r\n` terminator.
fn line_text(raw: &str) -> &str {
    raw.strip_suffix('\n')
        .map_or(raw, |t| t.strip_suffix('\r').unwrap_or(t))
}

/// What a line means to readers of the file.
enum Kind<'a> {
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
fn parse(contents: &str) -> Vec<Line<'_>> {
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
fn check_readable(lines: &[Line<'_>], managed: &[&str]) -> Result<(), EditError> {
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

/// Builds a closure turning an `io::Error` into a [`WriteError::Io`] for `op` on `path`.
fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Follows a chain of symlinks to the file that should actually be replaced (which may
/// not exist yet), so that replacing it does not turn the link into a regular file.
pub(crate) fn resolve_symlinks(path: &Path) -> Result<PathBuf, WriteError> {
    let mut current = path.to_owned();
    for _ in 0..MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let dest =
                    fs::read_link(&current).map_err(io_error("resolve symlink", &current))?;
                current = match current.parent() {
                    Some(parent) => parent.join(dest),
                    None => dest,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(io_error("inspect", &current)(e)),
        }
    }
    Err(io_error("resolve symlink", path)(
        nix::errno::Errno::ELOOP.into(),
    ))
}

/// Reads the target, treating a missing file as empty; refuses non-regular files (a FIFO
/// would block the daemon forever) and files over [`MAX_FILE_SIZE`].
/// Copies of the file's text (which holds secrets) are zeroized when dropped.
pub fn read_or_empty(path: &Path) -> Result<Zeroizing<String>, WriteError> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Zeroizing::default()),
        Err(e) => return Err(io_error("inspect", path)(e)),
        Ok(meta) if !meta.is_file() => {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io_error("read", path)(e));
        }
        Ok(_) => {}
    }
    match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Zeroizing::default()),
        Err(e) => Err(io_error("read", path)(e)),
        Ok(mut file) => read_text(&mut file, path),
    }
}

/// Reads `file` (opened from `path`) from its current position as UTF-8 text of at most
/// [`MAX_FILE_SIZE`] bytes; a larger file is refused without reading past the limit.
fn read_text(file: &mut File, path: &Path) -> Result<Zeroizing<String>, WriteError> {
    let mut bytes = Zeroizing::new(Vec::new());
    io::Read::read_to_end(
        &mut io::Read::take(&mut *file, MAX_FILE_SIZE + 1),
        &mut bytes,
    )
    .map_err(io_error("read", path))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(WriteError::TooLarge {
            path: path.to_owned(),
        });
    }
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            let e = io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8");
            Err(io_error("read", path)(e))
        }
    }
}

/// Creates `dir` (and missing ancestors) private to the user; directories that already
/// exist keep their permissions.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), WriteError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| {
            !p.as_os_str().is_empty()
                && fs::symlink_metadata(p).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error("create directory", dir))?;
    for p in missing {
        // The mode above is filtered by the umask; make it exact.
        fs::set_permissions(p, Permissions::from_mode(0o700))
            .map_err(io_error("set permissions on", p))?;
    }
    Ok(())
}

/// Writes `contents` to a synced, mode-0600 temporary file in `dir`, owned by `owner`
/// (uid, gid; the file it replaces keeps its owner, e.g. a user's file rewritten by root);
/// it is deleted on drop unless persisted. Taking over a file whose owner this process may
/// not give it fails ("Operation not permitted") before any secret is written.
fn write_temp(
    dir: &Path,
    contents: &str,
    owner: Option<(u32, u32)>,
) -> Result<NamedTempFile, WriteError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".credfresh-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io_error("create temporary file in", dir))?;
    if let Some((uid, gid)) = owner {
        let meta = tmp
            .as_file()
            .metadata()
            .map_err(io_error("inspect temporary file in", dir))?;
        let uid = (meta.uid() != uid).then_some(uid);
        let gid = (meta.gid() != gid).then_some(gid);
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::fchown(tmp.as_file(), uid, gid).map_err(io_error(
                "give the new file the owner and group of the credentials file in",
                dir,
            ))?;
        }
    }
    // Creation mode is filtered by the umask; set it exactly before any secret is written.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| tmp.write_all(contents.as_bytes()))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_error("write temporary file in", dir))?;
    Ok(tmp)
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
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::symlink;

    fn expiration() -> SystemTime {
        humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap()
    }

    fn update(name: &str) -> SectionUpdate<'_> {
        SectionUpdate {
            name,
            access_key_id: "ASIANEW",
            secret_access_key: "newsecret/+=",
            session_token: "newtoken==",
            expiration: expiration(),
        }
    }

    const NEW_SECTION: &str = "[managed]\naws_access_key_id = ASIANEW\naws_secret_access_key = newsecret/+=\naws_session_token = newtoken==\nx_credfresh_expiration = 2026-11-23T10:00:00Z\n";

    /// The editor without the refusal of sections credfresh did not write.
    pub(super) fn apply_any(
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

    fn tmp_names(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".credfresh-"))
            .collect()
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
    fn stale_temp_files_removed_only_ours_and_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[default]\n").unwrap();
        let old = dir.path().join(".credfresh-Ab12Cd.tmp");
        let foreign = [
            ".credfresh-backup1.tmp",
            "credfresh-Ab12Cd.tmp",
            ".credfresh-Ab12Cd.tmp.bak",
            "x.tmp",
        ];
        fs::write(&old, "secret").unwrap();
        for f in foreign {
            fs::write(dir.path().join(f), "theirs").unwrap();
        }
        let started = SystemTime::now() + Duration::from_secs(1);
        // A temp file newer than our start belongs to a write in flight elsewhere.
        let fresh = dir.path().join(".credfresh-Zz99Yy.tmp");
        fs::write(&fresh, "in flight").unwrap();
        File::options()
            .write(true)
            .open(&fresh)
            .unwrap()
            .set_modified(started + Duration::from_secs(5))
            .unwrap();
        // A symlink named like ours is never followed or removed.
        symlink(&path, dir.path().join(".credfresh-Ln00Ln.tmp")).unwrap();
        let removed = remove_stale_temp_files(&path, started);
        assert_eq!(removed, std::slice::from_ref(&old));
        assert!(!old.exists());
        assert!(fresh.exists());
        for f in foreign {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "[default]\n");
    }

    #[test]
    fn lock_excludes_a_second_writer_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let held = lock(&path).unwrap();
        assert!(lock_path(&path).ends_with(".credentials.credfresh.lock"));
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let t = std::thread::spawn(move || {
            let r = write_atomic(&p, |old| apply_any(old, &[update("managed")]));
            tx.send(()).unwrap();
            r
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "wrote while locked"
        );
        drop(held);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), WriteOutcome::Written);
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

    #[test]
    fn write_missing_file_creates_private_dir_and_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/credentials");
        let outcome = write_atomic(&path, |old| apply_any(old, &[update("managed")]));
        assert_eq!(outcome.unwrap(), WriteOutcome::Written);
        assert_eq!(fs::read_to_string(&path).unwrap(), NEW_SECTION);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        assert!(tmp_names(&root.path().join("a/b")).is_empty());

        let again = write_atomic(&path, |old| apply_any(old, &[update("managed")]));
        assert_eq!(again.unwrap(), WriteOutcome::Unchanged);
    }

    #[test]
    fn write_existing_file_sets_mode_0600_and_keeps_dir_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[default]\nregion = r\n").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, |old| apply_any(old, &[update("managed")])).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o755);
    }

    #[test]
    fn symlink_chain_target_is_replaced_and_links_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("creds");
        fs::write(&real, "[default]\nk = v\n").unwrap();
        let hop = dir.path().join("hop");
        symlink("real/creds", &hop).unwrap(); // relative link
        let link = dir.path().join("credentials");
        symlink(&hop, &link).unwrap();

        let outcome = write_atomic(&link, |old| apply_any(old, &[update("managed")]));
        assert_eq!(outcome.unwrap(), WriteOutcome::Written);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(&hop).unwrap().file_type().is_symlink());
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            format!("[default]\nk = v\n\n{NEW_SECTION}")
        );
        assert!(tmp_names(&real_dir).is_empty());
        assert!(tmp_names(dir.path()).is_empty());
    }

    #[test]
    fn dangling_symlink_creates_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("credentials");
        symlink("elsewhere/creds", &link).unwrap();
        write_atomic(&link, |old| apply_any(old, &[update("managed")])).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(dir.path().join("elsewhere/creds")).unwrap(),
            NEW_SECTION
        );
    }

    #[test]
    fn concurrent_change_is_merged_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[default]\nregion = r\n").unwrap();
        let calls = Cell::new(0);
        let outcome = write_atomic(&path, |old| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                // A foreign writer sneaks in after our read.
                fs::write(&path, "[default]\nregion = r\n\n[foreign]\nk = v\n").unwrap();
            }
            apply_any(old, &[update("managed")])
        });
        assert_eq!(outcome.unwrap(), WriteOutcome::Written);
        assert_eq!(calls.get(), 2);
        let contents = fs::read_to_string(&path).unwrap();
        assert_eq!(read_section(&contents, "foreign").unwrap()["k"], "v");
        assert_eq!(
            read_section(&contents, "managed").unwrap()["aws_access_key_id"],
            "ASIANEW"
        );
        assert!(tmp_names(dir.path()).is_empty());
    }

    #[test]
    fn endless_contention_gives_up_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let calls = Cell::new(0u32);
        let result = write_atomic(&path, |old| {
            calls.set(calls.get() + 1);
            fs::write(&path, format!("# foreign write {}\n", calls.get())).unwrap();
            apply_any(old, &[update("managed")])
        });
        assert!(matches!(
            result,
            Err(WriteError::Contended { attempts: 10, .. })
        ));
        assert_eq!(calls.get(), 10);
        assert_eq!(fs::read_to_string(&path).unwrap(), "# foreign write 10\n");
        assert!(tmp_names(dir.path()).is_empty());
    }

    #[test]
    fn parent_is_a_file_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "original").unwrap();
        let result = write_atomic(&blocker.join("credentials"), |old| {
            apply_any(old, &[update("managed")])
        });
        let err = result.unwrap_err();
        assert!(matches!(err, WriteError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
        assert_eq!(fs::read_to_string(&blocker).unwrap(), "original");
        assert!(tmp_names(dir.path()).is_empty());
    }

    #[test]
    fn failure_after_temp_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "[default]\n").unwrap();
        // The target turns into a directory after our read: the pre-rename re-read fails
        // after the temporary file was written.
        let result = write_atomic(&path, |old| {
            fs::remove_file(&path).unwrap();
            fs::create_dir(&path).unwrap();
            apply_any(old, &[update("managed")])
        });
        assert!(matches!(result, Err(WriteError::Io { .. })));
        assert!(tmp_names(dir.path()).is_empty());
        assert!(path.is_dir());
    }

    #[test]
    fn edit_error_leaves_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let original = "[managed]\n[managed]\n";
        fs::write(&path, original).unwrap();
        let result = write_atomic(&path, |old| apply_any(old, &[update("managed")]));
        assert!(matches!(
            result,
            Err(WriteError::Edit {
                source: EditError::DuplicateSection { line: 2, .. },
                ..
            })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), original);
        assert!(tmp_names(dir.path()).is_empty());
    }
}

/// Property tests and the corpus replay for the editor. A longer run:
/// `PROPTEST_CASES=100000 cargo test --release --lib proptest`.
#[cfg(test)]
mod proptests {
    use super::tests::apply_any;
    use super::*;
    use proptest::prelude::*;

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
