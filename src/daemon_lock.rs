//! One daemon per credentials file: a daemon holds an exclusive `flock` of
//! `.NAME.credfresh.daemon.lock`, beside the file it keeps fresh (where a symlink points), for
//! its whole life. The lock file says which process holds it and where its socket is, so a
//! second daemon can refuse to start naming both, and a client that finds no socket can tell
//! "no daemon" from "a daemon whose socket was deleted".

use crate::credentials_file::{ensure_dir, resolve_symlinks};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The daemon lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct DaemonLock {
    _file: Flock<File>,
}

/// The daemon that holds the lock of a credentials file, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The lock file.
    pub lock: PathBuf,
    /// Its process id, when it could be read.
    pub pid: Option<u32>,
    /// Its control socket, when it could be read.
    pub socket: Option<PathBuf>,
}

impl Holder {
    /// "pid N, socket S" (or what is unknown of it).
    pub fn describe(&self) -> String {
        let pid = self
            .pid
            .map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
        match &self.socket {
            Some(s) => format!("{pid}, socket {}", s.display()),
            None => pid,
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon keeps the same file fresh.
    #[error("another credfresh daemon ({}) already keeps {} fresh; stop it (or point this one at another credentials_file) first", .holder.describe(), .file.display())]
    Held {
        /// The credentials file (symlinks resolved).
        file: PathBuf,
        /// Who holds it.
        holder: Holder,
    },
    /// The lock file could not be created or locked.
    #[error("cannot take the daemon lock {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// The daemon lock file of the credentials file `path`, and the file itself with its
/// symlinks resolved. Two paths to one file (through `..`, a symlinked directory or a
/// symlink to the file) give the same lock file.
pub fn lock_path(path: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let target = resolve_symlinks(path).map_err(io::Error::other)?;
    let name = target.file_name().map_or_else(
        || "credentials".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    Ok((dir.join(format!(".{name}.credfresh.daemon.lock")), target))
}

/// Takes the daemon lock of the credentials file `path` for a daemon listening on `socket`,
/// creating the file's directory (0700) when missing. Fails at once, naming the holder, when
/// another daemon holds it.
pub fn acquire(path: &Path, socket: &Path) -> Result<DaemonLock, LockError> {
    let io_err = |lock: &Path| {
        let lock = lock.to_owned();
        move |source: io::Error| LockError::Io { path: lock, source }
    };
    let (lock, target) = lock_path(path).map_err(io_err(path))?;
    if let Some(dir) = lock.parent() {
        ensure_dir(dir).map_err(|e| io_err(&lock)(io::Error::other(e)))?;
    }
    // Created once, then held open read-only: a file open for writing for the daemon's life
    // would stop its filesystem from being remounted read-only. An existing lock file on a
    // read-only filesystem still locks.
    let file = match File::open(&lock) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock)
            .and_then(|_| File::open(&lock)),
        r => r,
    }
    .map_err(io_err(&lock))?;
    // A client peeking with `holder` holds a shared lock for a moment: try a few times.
    let mut file = file;
    let mut tries = 0;
    let locked = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, Errno::EWOULDBLOCK)) if tries < 20 => {
                tries += 1;
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    holder: read_holder(&lock),
                    file: target,
                })
            }
            Err((_, e)) => return Err(io_err(&lock)(e.into())),
        }
    };
    let socket = std::path::absolute(socket).unwrap_or_else(|_| socket.to_owned());
    let record = format!("{}\n{}\n", std::process::id(), socket.display());
    let written = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&lock)
        .and_then(|mut f| f.write_all(record.as_bytes()));
    if let Err(e) = written {
        // The lock still works; only the holder's description is missing.
        tracing::warn!(lock = %lock.display(), "cannot record the daemon's pid in its lock file: {e}");
    }
    Ok(DaemonLock { _file: locked })
}

/// The daemon holding the lock of the credentials file `path`, if one does.
pub fn holder(path: &Path) -> Option<Holder> {
    let (lock, _) = lock_path(path).ok()?;
    let file = File::open(&lock).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err((_, Errno::EWOULDBLOCK)) => Some(read_holder(&lock)),
        Err(_) => None,
    }
}

/// What the lock file `lock` says of its holder ("PID\nSOCKET\n").
fn read_holder(lock: &Path) -> Holder {
    let mut text = String::new();
    let _ = File::open(lock).and_then(|f| f.take(8192).read_to_string(&mut text));
    let mut lines = text.lines();
    Holder {
        lock: lock.to_owned(),
        pid: lines.next().and_then(|l| l.trim().parse().ok()),
        socket: lines.next().filter(|l| !l.is_empty()).map(PathBuf::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aws").join("credentials");
        assert_eq!(holder(&file), None);
        let held = acquire(&file, Path::new("/run/a.sock")).unwrap();
        // Another path to the same file: through `..` and through a symlink.
        let other = dir.path().join("aws/../aws/credentials");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for path in [&file, &other, &link] {
            let err = acquire(path, Path::new("/run/b.sock")).unwrap_err();
            let LockError::Held { holder, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(holder.pid, Some(std::process::id()));
            assert_eq!(holder.socket.as_deref(), Some(Path::new("/run/a.sock")));
            let msg = err.to_string();
            assert!(
                msg.contains("/run/a.sock") && msg.contains("credentials"),
                "{msg}"
            );
        }
        assert_eq!(holder(&link).and_then(|h| h.pid), Some(std::process::id()));
        drop(held);
        assert_eq!(holder(&file), None);
        acquire(&link, Path::new("/run/b.sock")).unwrap();
    }
}
