//! Puts the managed sections back when the credentials file is deleted, truncated or edited
//! by hand: a watch on the file's directory (and, for a symlinked file, its target's) hands
//! the credentials held now to the writer, whose merge rewrites only sections that differ
//! and keeps every foreign edit. The writer's own rename also shows up here: the file is then
//! exactly the one the writer wrote last, and nothing is sent.

use crate::credentials_file;
use crate::scheduler::Vault;
use crate::writer::Delivery;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Quiet time after the last change to the file before the managed sections are checked,
/// so an editor's save or a burst of events costs one check.
pub const FILE_DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the credentials file at `path`; on a change, sends every profile's current
/// credentials from `credentials` to the writer on `deliveries`. Returns `None`, logged,
/// when watching is unavailable (the next refresh still rewrites the file).
pub fn watch_file(
    path: &Path,
    credentials: watch::Receiver<Vault>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    shutdown: CancellationToken,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let (dirs, names) = watched(path)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Other files in the directory (temp files, the locks, other tools' files) are
        // dropped here, before anything is logged or done.
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| names.iter().any(|m| m == n)));
        if ours && !event.kind.is_access() {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch the credentials file ({e}); a deleted or edited file is put right at the next refresh only");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch the credentials file's directory ({e}); a deleted or edited file is put right at the next refresh only");
            return None;
        }
    }
    let path = path.to_owned();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.recv() => if r.is_none() { return },
            }
            let settle = tokio::time::sleep(FILE_DEBOUNCE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut settle => break,
                    r = rx.recv() => match r {
                        Some(()) => settle.as_mut().reset(tokio::time::Instant::now() + FILE_DEBOUNCE),
                        None => return,
                    },
                }
            }
            // The daemon's own rename: nothing to put back, and handing every profile to the
            // writer again would count as a burst and hold back the next real update.
            if credentials_file::is_own_write(&path) {
                continue;
            }
            let held = credentials.borrow().clone();
            tracing::debug!(
                profiles = held.len(),
                "credentials file changed; checking the managed sections"
            );
            for (name, creds) in held.iter() {
                let d = Delivery {
                    name: name.clone(),
                    creds: creds.clone(),
                };
                if deliveries.send(d).is_err() {
                    return;
                }
            }
        }
    });
    Some(watcher)
}

/// The directories to watch and the file names that matter in them: the file's, and for a
/// symlink, its target's.
fn watched(path: &Path) -> Option<(Vec<PathBuf>, Vec<OsString>)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let mut dirs = vec![dir.to_owned()];
    let mut names = vec![path.file_name()?.to_owned()];
    if let Ok(target) = crate::credentials_file::resolve_symlinks(path) {
        if let (Some(tdir), Some(tname)) = (target.parent(), target.file_name()) {
            if !names.iter().any(|n| n == tname) {
                names.push(tname.to_owned());
            }
            let same = std::fs::canonicalize(tdir).ok() == std::fs::canonicalize(dir).ok();
            if !same && !tdir.as_os_str().is_empty() {
                dirs.push(tdir.to_owned());
            }
        }
    }
    Some((dirs, names))
}
