//! The one task that writes the shared credentials file. Updates arriving close together are
//! batched into one rewrite; a failed write keeps the old file and is retried with backoff.

use crate::credentials_file::{
    apply_updates, prune_sections, write_atomic, SectionUpdate, WriteError, WriteOutcome,
};
use crate::creds::TempCredentials;
use crate::metrics::Metrics;
use crate::scheduler::{Clock, Delivery};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How long the writer waits after the first update for more to batch with it.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Longest pause between attempts to write after failures.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// How long after a write the writer checks that its sections are still there: an
/// in-place writer such as `aws configure set` that read the file before our rename writes
/// its stale copy over ours, and this puts the managed keys back on top of its edit.
pub const VERIFY_AFTER: Duration = Duration::from_secs(1);

/// A `POST /v1/prune` for the writer: remove sections credfresh wrote for profiles that are
/// no longer configured.
pub struct PruneRequest {
    /// The profiles configured now; their sections stay.
    pub keep: Vec<String>,
    /// Only report what would be removed.
    pub dry_run: bool,
    /// The removed (or removable) section names, or why the file could not be pruned.
    pub reply: oneshot::Sender<Result<Vec<String>, String>>,
}

/// Writes what the scheduler delivers into the credentials file at `path` until `shutdown`;
/// then finishes the write in flight and flushes what is pending. Publishes the last write
/// error (or `None` after a success) on `errors`. Serves prune requests from `prunes`.
pub async fn run(
    path: PathBuf,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    mut prunes: mpsc::Receiver<PruneRequest>,
    clock: Arc<dyn Clock>,
    errors: watch::Sender<Option<String>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut pending = Pending::default();
    let mut failures = 0u32;
    // What the last write put into the file, and when to check it is still there.
    let mut last_written: Vec<(String, TempCredentials)> = Vec::new();
    let mut verify_at: Option<tokio::time::Instant> = None;
    loop {
        if pending.is_empty() {
            let verify = async {
                match verify_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut delivered = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                d = deliveries.recv() => match d {
                    Some(d) => {
                        pending.add(d);
                        delivered = true;
                    }
                    None => break,
                },
                Some(req) = prunes.recv() => {
                    let result = prune(&path, &req.keep, req.dry_run).await;
                    if !req.dry_run {
                        if let Ok(removed) = &result {
                            last_written.retain(|(n, _)| !removed.contains(n));
                            if !removed.is_empty() {
                                metrics.file_written();
                            }
                        }
                    }
                    let _ = req.reply.send(result);
                    continue;
                }
                _ = verify => {
                    verify_at = None;
                    for (name, creds) in &last_written {
                        pending.creds.entry(name.clone()).or_insert_with(|| creds.clone());
                    }
                }
            }
            if delivered {
                // Batch what arrives together into one rewrite.
                let window = tokio::time::sleep(BATCH_WINDOW);
                tokio::pin!(window);
                loop {
                    tokio::select! {
                        _ = &mut window => break,
                        d = deliveries.recv() => match d {
                            Some(d) => pending.add(d),
                            None => break,
                        },
                    }
                }
            }
        }
        while let Ok(d) = deliveries.try_recv() {
            pending.add(d);
        }
        let batch: Vec<(String, TempCredentials)> = pending
            .creds
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        match flush(&path, &mut pending, clock.as_ref()).await {
            Ok(written) => {
                if failures > 0 {
                    tracing::info!(file = %path.display(), "the credentials file is writable again");
                }
                failures = 0;
                if written {
                    metrics.file_written();
                    last_written = batch;
                    verify_at = Some(tokio::time::Instant::now() + VERIFY_AFTER);
                }
                errors.send_replace(None);
            }
            Err(e) => {
                metrics.file_write_failed();
                failures = failures.saturating_add(1);
                let delay = crate::scheduler::backoff(failures, fastrand::f64()).min(RETRY_CAP);
                tracing::error!(
                    file = %path.display(),
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot write the credentials file, the old one is kept: {e}"
                );
                errors.send_replace(Some(e));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    while let Ok(d) = deliveries.try_recv() {
        pending.add(d);
    }
    if let Err(e) = flush(&path, &mut pending, clock.as_ref()).await {
        tracing::error!(file = %path.display(), "last write before exit failed: {e}");
    }
}

/// Removes (or, with `dry_run`, lists) the sections credfresh wrote for profiles not in
/// `keep`.
async fn prune(path: &Path, keep: &[String], dry_run: bool) -> Result<Vec<String>, String> {
    let target = path.to_owned();
    let keep = keep.to_vec();
    let task = tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
        let path = target;
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        if dry_run {
            let text = match std::fs::read_to_string(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                r => r.map_err(|e| format!("failed to read {}: {e}", path.display()))?,
            };
            let (_, names) =
                prune_sections(&text, &keep).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(names);
        }
        let removed = std::sync::Mutex::new(Vec::new());
        write_atomic(&path, |old| {
            let (new, names) = prune_sections(old, &keep)?;
            if let Ok(mut r) = removed.lock() {
                *r = names;
            }
            Ok(new)
        })
        .map_err(|e| e.to_string())?;
        Ok(removed.into_inner().unwrap_or_default())
    });
    let removed = task
        .await
        .map_err(|e| format!("prune task failed: {e}"))??;
    if !dry_run && !removed.is_empty() {
        tracing::info!(file = %path.display(), sections = ?removed, "pruned sections of profiles no longer configured");
    }
    Ok(removed)
}

/// Updates waiting to be written, and who waits to hear that they were.
#[derive(Default)]
struct Pending {
    creds: BTreeMap<String, TempCredentials>,
    acks: Vec<oneshot::Sender<Result<(), String>>>,
}

impl Pending {
    fn add(&mut self, d: Delivery) {
        self.creds.insert(d.name, d.creds);
        self.acks.extend(d.written);
    }

    fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }

    fn ack(&mut self, result: &Result<(), String>) {
        for a in self.acks.drain(..) {
            let _ = a.send(result.clone());
        }
    }
}

/// Writes every pending, still valid update in one atomic rewrite and tells whoever waits.
/// Returns whether the file was rewritten. On success nothing is pending; on failure the
/// updates stay for the next attempt.
async fn flush(
    path: &std::path::Path,
    pending: &mut Pending,
    clock: &dyn Clock,
) -> Result<bool, String> {
    let result = write_pending(path, &mut pending.creds, clock).await;
    pending.ack(&result.as_ref().map(|_| ()).map_err(Clone::clone));
    result
}

async fn write_pending(
    path: &std::path::Path,
    pending: &mut BTreeMap<String, TempCredentials>,
    clock: &dyn Clock,
) -> Result<bool, String> {
    let now = clock.now();
    pending.retain(|name, c| {
        let keep = c.valid_at(now);
        if !keep {
            tracing::warn!(profile = %name, "not writing credentials that have already expired");
        }
        keep
    });
    if pending.is_empty() {
        return Ok(false);
    }
    let batch: Vec<(String, TempCredentials)> = pending
        .iter()
        .map(|(n, c)| (n.clone(), c.clone()))
        .collect();
    let target = path.to_owned();
    let result = tokio::task::spawn_blocking(move || write_batch(&target, &batch)).await;
    match result {
        Ok(Ok(outcome)) => {
            let written = outcome == WriteOutcome::Written;
            tracing::debug!(file = %path.display(), profiles = pending.len(), written, "credentials file updated");
            pending.clear();
            Ok(written)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("write task failed: {e}")),
    }
}

fn write_batch(
    path: &std::path::Path,
    batch: &[(String, TempCredentials)],
) -> Result<WriteOutcome, WriteError> {
    let updates: Vec<SectionUpdate<'_>> = batch
        .iter()
        .map(|(name, c)| SectionUpdate {
            name,
            access_key_id: &c.access_key_id,
            secret_access_key: c.secret_access_key.expose_secret(),
            session_token: c
                .session_token
                .as_ref()
                .map(|t| t.expose_secret())
                .unwrap_or(""),
            expiration: c.expiration,
        })
        .collect();
    write_atomic(path, |old| apply_updates(old, &updates))
}
