//! The one task that writes the shared credentials file. Updates arriving close together are
//! batched into one rewrite; a failed write keeps the old file and is retried with backoff,
//! or at once when new credentials (or the file watch's hand-over after a change) arrive.

use crate::clock::Clock;
use crate::credentials_file::{
    apply_updates, prune_sections, read_or_empty, write_atomic, SectionUpdate, WriteError,
    WriteOutcome,
};
use crate::creds::TempCredentials;
use crate::metrics::Metrics;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Fresh credentials the scheduler (or `file_watch`) hands the writer.
pub struct Delivery {
    /// The profile (section) name.
    pub name: String,
    /// Its new credentials.
    pub creds: TempCredentials,
}

/// Which credentials of a profile a write was about, without a secret: the access key id
/// and expiry tell one set of credentials from the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The profile (section) name.
    pub name: String,
    /// The credentials' access key id (not a secret).
    pub access_key_id: String,
    /// Their expiry.
    pub expiration: SystemTime,
}

impl Stamp {
    /// The stamp of `creds` for profile `name`.
    pub fn of(name: &str, creds: &TempCredentials) -> Self {
        Stamp {
            name: name.to_owned(),
            access_key_id: creds.access_key_id.clone(),
            expiration: creds.expiration,
        }
    }

    /// Whether `creds` are the credentials this stamp names.
    pub fn matches(&self, creds: &TempCredentials) -> bool {
        self.access_key_id == creds.access_key_id && self.expiration == creds.expiration
    }
}

/// Where the writer says how its writes went.
pub struct Outcomes {
    /// The last write error, `None` after a success (`file_error` in the status).
    pub errors: watch::Sender<Option<String>>,
    /// What each attempt did, for the scheduler.
    pub reports: mpsc::UnboundedSender<WriteReport>,
}

/// What one attempt to write did, sent to the scheduler after every attempt: a profile is
/// `fresh` only once its credentials are in the file. Credentials that expired before they
/// could be written are reported as not written.
#[derive(Clone, Debug)]
pub struct WriteReport {
    /// The credentials the attempt was about.
    pub profiles: Vec<Stamp>,
    /// `Ok`: they are in the file now; `Err`: why not (the writer tries again).
    pub outcome: Result<(), String>,
}

/// How long the writer waits for another update before it writes what it has: updates that
/// keep arriving closer together than this are batched into one rewrite.
pub const BATCH_QUIET: Duration = Duration::from_millis(50);
/// The longest the writer holds an update back to batch it with later ones, and, after a
/// rewrite of [`BURST`] or more updates, the shortest time before the next one. Profiles that
/// become due together reach the writer over seconds, in bursts (the scheduler caps fetches
/// in flight), so a mass expiry costs at most one rewrite per second of trickle however the
/// bursts fall.
pub const BATCH_MAX: Duration = Duration::from_secs(1);
/// A rewrite carrying this many updates means many profiles came due together: more are
/// likely on their way, and the next rewrite waits until [`BATCH_MAX`] after this one. A few
/// profiles refreshed again and again (forced refreshes) are written as fast as they come.
pub const BURST: usize = 4;
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

/// The writer task's state: the file, what waits to be written, what was written last.
struct Writer {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    errors: watch::Sender<Option<String>>,
    reports: mpsc::UnboundedSender<WriteReport>,
    metrics: Arc<Metrics>,
    pending: Pending,
    /// Consecutive failed writes.
    failures: u32,
    /// What the last write put into the file, and when to check it is still there.
    last_written: Vec<(String, TempCredentials)>,
    verify_at: Option<Instant>,
    /// When the file was last rewritten, with how many new credentials.
    last_write: Option<(Instant, usize)>,
    /// The credentials of each profile the file got last, to tell new credentials from
    /// the same ones handed over again (the file watch, the check after a write).
    on_file: BTreeMap<String, Stamp>,
}

/// Writes what the scheduler delivers into the credentials file at `path` until `shutdown`;
/// then finishes the write in flight and flushes what is pending. Publishes the last write
/// error (or `None` after a success) and what each attempt did on `outcomes`.
/// Serves prune requests from `prunes`, also while failed writes wait for their retry.
pub async fn run(
    path: PathBuf,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    mut prunes: mpsc::Receiver<PruneRequest>,
    clock: Arc<dyn Clock>,
    outcomes: Outcomes,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let Outcomes { errors, reports } = outcomes;
    let mut w = Writer {
        path,
        clock,
        errors,
        reports,
        metrics,
        pending: Pending::default(),
        failures: 0,
        last_written: Vec::new(),
        verify_at: None,
        last_write: None,
        on_file: BTreeMap::new(),
    };
    // When a failed write is tried again.
    let mut retry_at: Option<Instant> = None;
    loop {
        let verify_at = w.verify_at.filter(|_| w.pending.is_empty());
        let wake = retry_at.or(verify_at);
        let due = async {
            match wake {
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
                    w.pending.add(d);
                    delivered = true;
                }
                None => break,
            },
            Some(req) = prunes.recv() => {
                w.prune(req).await;
                continue;
            }
            _ = due => {
                if retry_at.take().is_none() {
                    w.verify_at = None;
                    for (name, creds) in &w.last_written {
                        w.pending.creds.entry(name.clone()).or_insert_with(|| creds.clone());
                    }
                }
            }
        }
        if retry_at.is_some() && !delivered {
            // A failed write waits for its retry; a prune or the check after a write does
            // not end the wait.
            continue;
        }
        // New credentials, or the file watch handing them over again after a change to the
        // file, end the wait at once: a freed disk or a repaired file is written now, not at
        // the end of a backoff of up to RETRY_CAP (the count of failures stays).
        retry_at = None;
        let next_write = w
            .last_write
            .filter(|(_, updates)| *updates >= BURST)
            .map(|(at, _)| at + BATCH_MAX);
        if delivered && batch(&mut w.pending, &mut deliveries, &shutdown, next_write).await {
            break;
        }
        while let Ok(d) = deliveries.try_recv() {
            w.pending.add(d);
        }
        if let Some(delay) = w.write().await {
            retry_at = Some(Instant::now() + delay);
        }
    }
    while let Ok(d) = deliveries.try_recv() {
        w.pending.add(d);
    }
    if let Err(e) = flush(&w.path, &mut w.pending, w.clock.as_ref(), &w.reports).await {
        tracing::error!(file = %w.path.display(), "last write before exit failed: {e}");
    }
}

/// Collects updates into `pending` until none has arrived for [`BATCH_QUIET`] and
/// `not_before` (after a burst, the previous rewrite plus [`BATCH_MAX`]) has passed, or
/// [`BATCH_MAX`] after the first. Returns whether to stop (shutdown or no more senders).
async fn batch(
    pending: &mut Pending,
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    shutdown: &CancellationToken,
    not_before: Option<Instant>,
) -> bool {
    let first = Instant::now();
    let last_call = first + BATCH_MAX;
    let not_before = not_before.unwrap_or(first);
    loop {
        let quiet_until = (Instant::now() + BATCH_QUIET)
            .max(not_before)
            .min(last_call);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return true,
            _ = tokio::time::sleep_until(quiet_until) => return false,
            d = deliveries.recv() => match d {
                Some(d) => pending.add(d),
                None => return true,
            },
        }
    }
}

impl Writer {
    /// Writes what is pending. Returns when to try again after a failure.
    async fn write(&mut self) -> Option<Duration> {
        let batch: Vec<(String, TempCredentials)> = self
            .pending
            .creds
            .iter()
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        match flush(
            &self.path,
            &mut self.pending,
            self.clock.as_ref(),
            &self.reports,
        )
        .await
        {
            Ok(written) => {
                if self.failures > 0 {
                    tracing::info!(file = %self.path.display(), "the credentials file is writable again");
                }
                self.failures = 0;
                // Only new credentials count toward a burst: the same ones handed over again
                // (a file watch event puts every profile back) are no sign of more to come.
                let new = batch
                    .iter()
                    .filter(|(n, c)| !self.on_file.get(n).is_some_and(|s| s.matches(c)))
                    .count();
                for (n, c) in &batch {
                    self.on_file.insert(n.clone(), Stamp::of(n, c));
                }
                if written {
                    self.metrics.file_written();
                    self.last_written = batch;
                    self.last_write = Some((Instant::now(), new));
                    self.verify_at = Some(Instant::now() + VERIFY_AFTER);
                }
                self.errors.send_replace(None);
                None
            }
            Err(e) => {
                self.metrics.file_write_failed();
                self.failures = self.failures.saturating_add(1);
                let delay = crate::backoff::backoff(self.failures, fastrand::f64()).min(RETRY_CAP);
                tracing::error!(
                    file = %self.path.display(),
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot write the credentials file, the old one is kept: {e}"
                );
                self.errors.send_replace(Some(e));
                Some(delay)
            }
        }
    }

    /// Serves one prune request.
    async fn prune(&mut self, req: PruneRequest) {
        let result = prune(&self.path, &req.keep, req.dry_run).await;
        if !req.dry_run {
            if let Ok(removed) = &result {
                self.last_written.retain(|(n, _)| !removed.contains(n));
                self.on_file.retain(|n, _| !removed.contains(n));
                if !removed.is_empty() {
                    self.metrics.file_written();
                }
            }
        }
        let _ = req.reply.send(result);
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
            let text = read_or_empty(&path).map_err(|e| e.to_string())?;
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

/// Updates waiting to be written.
#[derive(Default)]
struct Pending {
    creds: BTreeMap<String, TempCredentials>,
}

impl Pending {
    fn add(&mut self, d: Delivery) {
        self.creds.insert(d.name, d.creds);
    }

    fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }
}

/// Writes every pending, still valid update in one atomic rewrite and reports the outcome
/// on `reports` (updates dropped as expired, as not written). Returns whether the file was
/// rewritten. On success nothing is pending; on failure the updates stay for the next
/// attempt.
async fn flush(
    path: &std::path::Path,
    pending: &mut Pending,
    clock: &dyn Clock,
    reports: &mpsc::UnboundedSender<WriteReport>,
) -> Result<bool, String> {
    let now = clock.now();
    let (valid, expired): (Vec<_>, Vec<_>) =
        pending.creds.iter().partition(|(_, c)| c.valid_at(now));
    let stamps = |v: Vec<(&String, &TempCredentials)>| -> Vec<Stamp> {
        v.into_iter().map(|(n, c)| Stamp::of(n, c)).collect()
    };
    let (attempted, expired) = (stamps(valid), stamps(expired));
    if !expired.is_empty() {
        let _ = reports.send(WriteReport {
            profiles: expired,
            outcome: Err("the credentials expired before they could be written".into()),
        });
    }
    let result = write_pending(path, &mut pending.creds, now).await;
    if !attempted.is_empty() {
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        let _ = reports.send(WriteReport {
            profiles: attempted,
            outcome,
        });
    }
    result
}

async fn write_pending(
    path: &std::path::Path,
    pending: &mut BTreeMap<String, TempCredentials>,
    now: SystemTime,
) -> Result<bool, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use tokio::task::JoinHandle;

    /// Wall-clock time that moves with tokio's paused clock.
    struct PausedClock {
        base: SystemTime,
        start: Instant,
    }

    impl Clock for PausedClock {
        fn now(&self) -> SystemTime {
            self.base + self.start.elapsed()
        }
    }

    struct Harness {
        _dir: tempfile::TempDir,
        path: PathBuf,
        clock: Arc<PausedClock>,
        deliveries: mpsc::UnboundedSender<Delivery>,
        prunes: mpsc::Sender<PruneRequest>,
        errors: watch::Receiver<Option<String>>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        task: JoinHandle<()>,
        /// Makes every update's access key id different.
        sent: std::sync::atomic::AtomicU64,
        /// Who waits for the report on an update, by access key id.
        acks: Acks,
    }

    type Acks = Arc<
        std::sync::Mutex<std::collections::HashMap<String, oneshot::Sender<Result<(), String>>>>,
    >;

    /// A writer for `dir/credentials`, or for a file under a regular file (every write
    /// fails) when `broken`.
    fn start(broken: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = if broken {
            std::fs::write(dir.path().join("aws"), "").unwrap();
            dir.path().join("aws/credentials")
        } else {
            dir.path().join("credentials")
        };
        let clock = Arc::new(PausedClock {
            base: SystemTime::now(),
            start: Instant::now(),
        });
        let (deliveries, rx) = mpsc::unbounded_channel();
        let (prunes, prune_rx) = mpsc::channel(1);
        let (errors_tx, errors) = watch::channel(None);
        let (reports_tx, mut reports) = mpsc::unbounded_channel::<WriteReport>();
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            path.clone(),
            rx,
            prune_rx,
            clock.clone(),
            Outcomes {
                errors: errors_tx,
                reports: reports_tx,
            },
            metrics.clone(),
            shutdown.clone(),
        ));
        // Each update's first report answers the one who sent it.
        let acks: Acks = Default::default();
        let waiting = acks.clone();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                let mut waiting = waiting.lock().unwrap();
                for stamp in &report.profiles {
                    if let Some(ack) = waiting.remove(&stamp.access_key_id) {
                        let _ = ack.send(report.outcome.clone());
                    }
                }
            }
        });
        Harness {
            _dir: dir,
            path,
            clock,
            deliveries,
            prunes,
            errors,
            metrics,
            shutdown,
            task,
            sent: Default::default(),
            acks,
        }
    }

    impl Harness {
        /// Sends credentials for `name` valid for `valid` from now; returns the ack.
        fn send(&self, name: &str, valid: Duration) -> oneshot::Receiver<Result<(), String>> {
            let (written, ack) = oneshot::channel();
            let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let creds = TempCredentials {
                access_key_id: format!("ASIA{}{n}", name.to_uppercase()),
                secret_access_key: "secret".to_owned().into(),
                session_token: Some("token".to_owned().into()),
                expiration: self.clock.now() + valid,
                account_id: None,
                arn: None,
                check_again_at: None,
            };
            self.acks
                .lock()
                .unwrap()
                .insert(creds.access_key_id.clone(), written);
            self.deliveries
                .send(Delivery {
                    name: name.to_owned(),
                    creds,
                })
                .unwrap();
            ack
        }

        fn writes(&self) -> u64 {
            let text = self.metrics.render(&[], SystemTime::now());
            text.lines()
                .find_map(|l| l.strip_prefix("credfresh_file_writes_total "))
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        }

        fn text(&self) -> String {
            std::fs::read_to_string(&self.path).unwrap_or_default()
        }

        async fn prune(&self) -> Result<Vec<String>, String> {
            let (reply, rx) = oneshot::channel();
            let req = PruneRequest {
                keep: vec![],
                dry_run: false,
                reply,
            };
            self.prunes.send(req).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .expect("the writer answers a prune within 5 s")
                .unwrap()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn updates_arriving_together_make_one_write() {
        let h = start(false);
        let acks: Vec<_> = ["a", "b", "c"].iter().map(|n| h.send(n, HOUR)).collect();
        let started = Instant::now();
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        assert!(started.elapsed() >= BATCH_QUIET);
        assert!(started.elapsed() < BATCH_MAX, "{:?}", started.elapsed());
        assert_eq!(h.writes(), 1);
        let text = h.text();
        for id in ["ASIAA", "ASIAB", "ASIAC"] {
            assert!(text.contains(id), "{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_of_updates_is_written_about_once_a_second() {
        let h = start(false);
        // 1,000 profiles due together, their fetches finishing in bursts: 8 at 5 ms from each
        // other, then a pause longer than the quiet period; 14 s in all.
        let mut acks = Vec::new();
        let started = Instant::now();
        for i in 0..1000 {
            acks.push(h.send(&format!("p{i}"), HOUR));
            let pause = if i % 8 == 7 { 80 } else { 5 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let trickle = started.elapsed();
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        // Issue target: at most 20 rewrites. At most one a second, and each update is
        // held back at most BATCH_MAX, so the trickle is written in pieces as it goes.
        let writes = h.writes();
        assert!(
            writes <= 20,
            "{writes} rewrites for a trickle of {trickle:?}"
        );
        assert!(
            writes >= 5,
            "{writes} rewrites for a trickle of {trickle:?}"
        );
        let text = h.text();
        assert_eq!(
            text.matches(crate::credentials_file::EXPIRATION_KEY)
                .count(),
            1000
        );

        // Right after a burst's rewrite, the next one waits until a second has passed.
        let since_write = Instant::now();
        h.send("soon", HOUR).await.unwrap().unwrap();
        assert!(
            since_write.elapsed() <= BATCH_MAX,
            "{:?}",
            since_write.elapsed()
        );
        // A lone update later waits only for the quiet period.
        tokio::time::sleep(BATCH_MAX * 2).await;
        let started = Instant::now();
        h.send("lone", HOUR).await.unwrap().unwrap();
        assert!(
            started.elapsed() < BATCH_QUIET * 2,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(h.writes(), writes + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_profiles_refreshed_again_and_again_are_written_at_once() {
        let h = start(false);
        for round in 0..20 {
            let started = Instant::now();
            let acks: Vec<_> = ["m1", "m2"].iter().map(|n| h.send(n, HOUR)).collect();
            for ack in acks {
                ack.await.unwrap().unwrap();
            }
            assert!(
                started.elapsed() < BATCH_QUIET * 2,
                "round {round}: {:?}",
                started.elapsed()
            );
        }
        assert_eq!(h.writes(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_credentials_handed_over_again_are_no_burst() {
        let h = start(false);
        let creds = |name: &str| TempCredentials {
            access_key_id: format!("ASIASAME{}", name.to_uppercase()),
            secret_access_key: "secret".to_owned().into(),
            session_token: Some("token".to_owned().into()),
            expiration: h.clock.now() + HOUR,
            account_id: None,
            arn: None,
            check_again_at: None,
        };
        let names = ["a", "b", "c", "d", "e", "f"];
        let held: Vec<TempCredentials> = names.iter().map(|n| creds(n)).collect();
        let hand_over = || {
            for (n, c) in names.iter().zip(&held) {
                h.deliveries
                    .send(Delivery {
                        name: (*n).to_owned(),
                        creds: c.clone(),
                    })
                    .unwrap();
            }
        };
        hand_over();
        tokio::time::sleep(BATCH_MAX * 3).await;
        assert_eq!(h.writes(), 1);
        // A file watch event hands every profile over again, with one section to put back
        // (someone deleted it), together with one new update.
        std::fs::write(&h.path, h.text().replace("[f]", "[gone]")).unwrap();
        hand_over();
        h.send("new", HOUR).await.unwrap().unwrap();
        assert_eq!(h.writes(), 2);
        // That rewrite held one new update: the next one is written at once, not held back
        // until a second after it as after a burst.
        let started = Instant::now();
        h.send("next", HOUR).await.unwrap().unwrap();
        assert!(
            started.elapsed() < BATCH_QUIET * 2,
            "{:?}",
            started.elapsed()
        );
        assert!(h.text().contains("[f]"), "{}", h.text());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_updates_are_dropped_and_never_written() {
        // Already expired on arrival: the valid one is written, the other is not.
        let h = start(false);
        let stale = h.send("stale", Duration::ZERO);
        h.send("fresh", HOUR).await.unwrap().unwrap();
        let err = stale.await.unwrap().unwrap_err();
        assert!(err.contains("expired before"), "{err}");
        let text = h.text();
        assert!(
            text.contains("[fresh]") && !text.contains("[stale]"),
            "{text}"
        );

        // Expired while failed writes wait for their retry: dropped, never written.
        let h = start(true);
        let ack = h.send("short", Duration::from_secs(5));
        assert!(ack.await.unwrap().is_err());
        assert!(h.errors.borrow().is_some());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let dir = h.path.parent().unwrap();
        std::fs::remove_file(dir).unwrap();
        std::fs::create_dir(dir).unwrap();
        h.send("later", HOUR).await.unwrap().unwrap();
        let text = h.text();
        assert!(
            text.contains("[later]") && !text.contains("[short]"),
            "{text}"
        );
        assert_eq!(h.writes(), 1);
        assert!(h.errors.borrow().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn new_credentials_end_the_wait_after_failed_writes() {
        let h = start(true);
        assert!(h.send("a", HOUR).await.unwrap().is_err());
        // Failures over 40 s: the next retry is seconds away.
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert!(h.errors.borrow().is_some());
        let dir = h.path.parent().unwrap();
        std::fs::remove_file(dir).unwrap();
        std::fs::create_dir(dir).unwrap();
        // New credentials (or the file watch handing them over again) are written at once.
        let started = Instant::now();
        h.send("b", HOUR).await.unwrap().unwrap();
        assert!(started.elapsed() < BATCH_MAX * 2, "{:?}", started.elapsed());
        let text = h.text();
        assert!(text.contains("[a]") && text.contains("[b]"), "{text}");
        assert!(h.errors.borrow().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_what_is_pending() {
        let h = start(false);
        let ack = h.send("last", HOUR);
        h.shutdown.cancel();
        let text = std::fs::read_to_string(&h.path);
        assert!(text.is_err(), "written before shutdown: {text:?}");
        let Harness { task, path, .. } = h;
        task.await.unwrap();
        ack.await.unwrap().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[last]"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn prune_is_answered_while_failed_writes_wait_for_their_retry() {
        let h = start(true);
        let ack = h.send("blocked", HOUR);
        assert!(ack.await.unwrap().is_err());
        // The writer is in its backoff now; a prune gets its own (failed) answer at once.
        let err = h.prune().await.unwrap_err();
        assert!(err.contains("aws"), "{err}");
        let again = h.prune().await.unwrap_err();
        assert_eq!(again, err);
        h.shutdown.cancel();
    }
}
