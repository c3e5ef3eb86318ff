//! Private temporary files for atomic replacement (write beside the target, sync, rename),
//! and the clean-up of those an interrupted run left behind.
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

/// Writes `contents` to a synced, mode-0600 file named `{prefix}XXXXXX.tmp` in `dir`; the
/// file is deleted on drop unless persisted.
pub fn write_private(dir: &Path, prefix: &str, contents: &[u8]) -> io::Result<NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    // Creation mode is filtered by the umask; set it exactly before any secret is written.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Renames `tmp` over `path` and syncs the directory, so the rename survives a crash.
pub fn persist(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map_err(|e| e.error)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
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
}
