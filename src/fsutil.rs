//! Private files written atomically, the one way every file credfresh writes is replaced:
//! a randomly named temporary file in the target's directory (mode 0600), synced, renamed
//! over the target, then the directory synced. Also the clean-up of the temporary files an
//! interrupted run left behind.
//!
//! Temporary names are random (the `tempfile` crate), never derived from the process id: a
//! daemon that is PID 1 in a container on every start would otherwise collide with the
//! leftover of a run killed between create and rename.

use std::fs::{self, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tempfile::NamedTempFile;

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates an empty mode-0600 file named `{prefix}XXXXXX.tmp` in `dir` (six random
/// characters); it is deleted on drop unless persisted. Fill it with [`fill_private`].
pub fn create_private(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
}

/// Makes `tmp`'s mode exactly 0600 (the creation mode is filtered by the umask) before any
/// secret is written, then writes `contents` and syncs the file.
pub fn fill_private(tmp: &mut NamedTempFile, contents: &[u8]) -> io::Result<()> {
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()
}

/// Writes `contents` to a synced, mode-0600 file named `{prefix}XXXXXX.tmp` in `dir`; the
/// file is deleted on drop unless persisted.
pub fn write_private(dir: &Path, prefix: &str, contents: &[u8]) -> io::Result<NamedTempFile> {
    let mut tmp = create_private(dir, prefix)?;
    fill_private(&mut tmp, contents)?;
    Ok(tmp)
}

/// Renames `tmp` over `path`; [`sync_dir`] makes the rename survive a crash.
pub fn rename(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Syncs directory `dir`, so a rename into it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Renames `tmp` over `path` and syncs the directory (best effort: the rename has happened).
pub fn persist(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    rename(tmp, path)?;
    sync_dir_after_rename(path);
    Ok(())
}

/// [`persist`], but fails (`AlreadyExists`) rather than replace an existing `path`.
pub fn persist_new(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir_after_rename(path);
    Ok(())
}

/// Best-effort [`sync_dir`] of `path`'s directory (skipped for a bare file name).
fn sync_dir_after_rename(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = sync_dir(dir);
    }
}

/// Removes the temporary files an interrupted run left in `dir`: regular files whose name
/// `is_ours` accepts (random names and the pid-based ones older releases used), owned by
/// this user and last modified before `started`, so that a write in flight of a process
/// started later is never touched. Returns what was removed.
pub fn remove_leftovers(
    dir: &Path,
    is_ours: impl Fn(&str) -> bool,
    started: SystemTime,
) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let uid = nix::unistd::getuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !is_ours(&name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_random_and_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".token.1.tmp");
        fs::write(&leftover, "old").unwrap();
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&leftover)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let other = dir.path().join(".unrelated.tmp");
        fs::write(&other, "keep").unwrap();
        let a = write_private(dir.path(), ".token.", b"a").unwrap();
        let b = write_private(dir.path(), ".token.", b"b").unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = dir.path().join("token");
        persist(a, &target).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "a");
        let started = SystemTime::now() - std::time::Duration::from_secs(30);
        let removed = remove_leftovers(dir.path(), |n| n.starts_with(".token."), started);
        assert_eq!(
            removed,
            vec![leftover],
            "only the leftover, not b's file or others"
        );
        drop(b);
        assert!(other.exists());
        assert!(target.exists());
    }

    #[test]
    fn persist_new_never_replaces_and_parent_dir_of_a_bare_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("config.toml");
        let first = write_private(dir.path(), ".init.", b"first").unwrap();
        persist_new(first, &target).unwrap();
        let second = write_private(dir.path(), ".init.", b"second").unwrap();
        let err = persist_new(second, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&target).unwrap(), "first");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the refused temp file is removed");
        assert_eq!(parent_dir(Path::new("credentials")), Path::new("."));
        assert_eq!(parent_dir(&target), dir.path());
    }
}
