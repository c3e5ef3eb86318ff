//! The one task that writes the shared credentials file. Updates arriving close together are
//! batched into one rewrite; a failed write keeps the old file and is retried with backoff.

use crate::credentials_file::{
    apply_updates, write_atomic, SectionUpdate, WriteError, WriteOutcome,
};
use crate::creds::TempCredentials;
use crate::metrics::Metrics;
use crate::scheduler::{Clock, Delivery};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How long the writer waits after the first update for more to batch with it.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Longest pause between attempts to write after failures.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// Writes what the scheduler delivers into the credentials file at `path` until `shutdown`;
/// then finishes the write in flight and flushes what is pending. Publishes the last write
/// error (or `None` after a success) on `errors`.
pub async fn run(
    path: PathBuf,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    clock: Arc<dyn Clock>,
    errors: watch::Sender<Option<String>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut pending = Pending::default();
    let mut failures = 0u32;
    loop {
        if pending.is_empty() {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                d = deliveries.recv() => match d {
                    Some(d) => pending.add(d),
                    None => break,
                },
            }
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
        while let Ok(d) = deliveries.try_recv() {
            pending.add(d);
        }
        match flush(&path, &mut pending, clock.as_ref()).await {
            Ok(written) => {
                failures = 0;
                if written {
                    metrics.file_written();
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
