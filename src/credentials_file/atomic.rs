//! Atomic replacement of the credentials file: advisory lock, settle-then-read, temp file in
//! the same directory, re-read-and-compare, rename, sync of the directory, and the merge of
//! edits written into the replaced inode.

use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use tempfile::NamedTempFile;

use super::ini::EditError;
use crate::fsutil::{self, parent_dir};

/// The largest credentials file credfresh reads and rewrites (8 MiB, thousands of profiles):
/// every rewrite holds a few copies of the file and its parse in memory, so a larger file is
/// refused ([`WriteError::TooLarge`]) rather than costing memory and time without bound.
pub const MAX_FILE_SIZE: u64 = 8 << 20;

/// How many times [`write_atomic`] redoes its edit when another writer keeps changing the file.
const MAX_ATTEMPTS: u32 = 10;

/// Bound on symlink hops, so a symlink loop fails instead of spinning (same as Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

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
        fsutil::rename(tmp, &target)
            .map_err(explain_busy(&target))
            .map_err(io_error("replace", &target))?;
        fsutil::sync_dir(dir).map_err(io_error("sync directory", dir))?;
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

/// Whether the file at `path` (a symlink followed) is exactly the one this process wrote
/// last: a change event for it is the daemon's own rename.
pub fn is_own_write(path: &Path) -> bool {
    fs::metadata(path)
        .is_ok_and(|meta| OWN_WRITE.lock().is_ok_and(|own| *own == Some(stamp(&meta))))
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
    if fs::read_dir(dir).is_err() {
        return Vec::new();
    }
    let Ok(_lock) = lock(&target) else {
        return Vec::new();
    };
    fsutil::remove_leftovers(dir, is_temp_name, started)
}

/// Whether `name` is one of [`write_temp`]'s names, `.credfresh-XXXXXX.tmp`.
fn is_temp_name(name: &str) -> bool {
    let random = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|r| r.strip_suffix(".tmp"));
    random.is_some_and(|r| r.len() == 6 && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A rename refused with `EBUSY` onto a single-file bind mount says what to do instead.
fn explain_busy(target: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| match e.raw_os_error() {
        Some(libc::EBUSY) if crate::mounts::single_file_mount(target).is_some() => {
            io::Error::new(e.kind(), format!("{e}; {}", crate::mounts::advice(target)))
        }
        _ => e,
    }
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
    let mut tmp = fsutil::create_private(dir, TEMP_PREFIX)
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
    fsutil::fill_private(&mut tmp, contents.as_bytes())
        .map_err(io_error("write temporary file in", dir))?;
    Ok(tmp)
}

/// The start of the temporary files' names, `.credfresh-XXXXXX.tmp`.
const TEMP_PREFIX: &str = ".credfresh-";

#[cfg(test)]
mod tests {
    use super::super::edit::tests::{apply_any, update, NEW_SECTION};
    use super::super::ini::read_section;
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::symlink;

    fn tmp_names(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".credfresh-"))
            .collect()
    }

    #[test]
    fn temp_names_are_six_random_characters_between_prefix_and_suffix() {
        assert!(is_temp_name(".credfresh-Ab12Cd.tmp"));
        for other in [
            ".credfresh-backup1.tmp",
            ".credfresh-Ab12C.tmp",
            "credfresh-Ab12Cd.tmp",
            ".credfresh-Ab12Cd.tmp.bak",
            ".credfresh-Ab-2Cd.tmp",
            ".credfresh-init-Ab12Cd.tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
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
