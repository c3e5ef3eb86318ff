//! The refresh scheduler: one task that owns every profile's state and sleeps until the next
//! deadline, or until the wall clock jumps (a resume from suspend, a clock set), or at most a
//! minute, the check that catches jumps where the platform cannot report them.
//!
//! Fetches run as their own tasks so a slow source never delays another profile; their results
//! come back on a channel. Deadlines are wall-clock times: a monotonic timer stops during
//! suspend, the credentials' expiry does not.

use crate::api::{rfc3339, ProfileState};
use crate::backoff::backoff;
use crate::clock::Clock;
use crate::config::{Config, Profile, ProfileSource};
use crate::creds::TempCredentials;
use crate::metrics::Metrics;
use crate::snapshot::ProfileSnapshot;
use crate::sources::{FailureKind, Fetcher, SourceError};
use crate::writer::{Delivery, WriteReport};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The longest the scheduler sleeps: the wall-clock check that catches suspend/resume and
/// clock jumps where no wall-clock timer reports them (see [`Clock::sleep_until`]).
pub const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The most fetches under way at once: a thousand profiles due together are fetched 16 at a
/// time, which keeps memory flat and STS from throttling.
pub const MAX_IN_FLIGHT: usize = 16;
/// A healthy source due this soon is refreshed together with a due dependent.
pub const CHAIN_WINDOW: Duration = Duration::from_secs(60);
/// Shortest delay after a permanent failure (AccessDenied, a malformed role ARN).
pub const PERMANENT_RETRY: Duration = Duration::from_secs(60);
/// How far away a `login_required` profile's next attempt is put: in effect never, until the
/// SSO token cache changes or a refresh is asked for.
pub const PARKED: Duration = Duration::from_secs(365 * 24 * 3600);

/// Hands the heap that a burst of fetches freed back to the kernel. glibc keeps freed memory
/// for reuse, so a daemon that fetched a thousand profiles at start would otherwise stay at
/// that high-water mark while it idles for the next hour.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When to refresh credentials issued at `issued` that expire at `expiry`: `lead` before
/// expiry, or after 2/3 of the lifetime when the lifetime is under three leads; moved earlier
/// by up to 5% of the lifetime (at most a minute) by `jitter` in `[0, 1]` so that profiles
/// issued together do not all refresh in the same instant.
pub fn refresh_at(
    issued: SystemTime,
    expiry: SystemTime,
    lead: Duration,
    jitter: f64,
) -> SystemTime {
    let lifetime = expiry.duration_since(issued).unwrap_or_default();
    let planned = if lifetime < lead.saturating_mul(3) {
        lifetime.mul_f64(2.0 / 3.0)
    } else {
        lifetime - lead
    };
    let spread = (lifetime / 20).min(Duration::from_secs(60));
    issued + planned.saturating_sub(spread.mul_f64(jitter.clamp(0.0, 1.0)))
}

/// Requests other tasks send to the scheduler.
pub enum Command {
    /// Refresh these profiles now (all when empty), sources before dependents; the reply
    /// comes once every profile's outcome is known (a dependent whose source holds no valid
    /// credentials fails at once, with its source's error), or names the profiles that are
    /// not managed.
    Refresh {
        /// The profiles.
        names: Vec<String>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Vec<ProfileSnapshot>, Vec<String>>>,
    },
    /// Answer at once: proves the loop is alive (the systemd watchdog asks).
    Ping(oneshot::Sender<()>),
    /// The SSO token cache files with these names (cache keys, without `.json`) changed,
    /// e.g. after an `aws sso login` elsewhere: profiles of those sessions that are not
    /// fresh try again now.
    SsoCacheChanged(Vec<String>),
    /// Apply a new, already validated config.
    Reload {
        /// The new config.
        config: Config,
        /// A one-line summary of what changed.
        reply: oneshot::Sender<String>,
    },
}

struct Entry {
    profile: Profile,
    generation: u64,
    creds: Option<TempCredentials>,
    state: ProfileState,
    next_refresh: SystemTime,
    in_flight: bool,
    /// The SSO token cache changed while this profile was being fetched: if the fetch
    /// fails, it may have used the old token, so try again at once.
    recheck: bool,
    last_refresh: Option<SystemTime>,
    last_error: Option<String>,
    failures: u32,
    /// The credentials held reached the credentials file (the writer said so; counted once
    /// in the metrics).
    delivered: bool,
    /// Expiry of this profile's credentials the writer last reported in the file (the ones
    /// held, or earlier ones while newer ones wait to be written).
    in_file: Option<SystemTime>,
    /// The writer's last attempt to write the credentials held failed, and why: the file
    /// cannot be vouched for until a write lands (see `delivery`).
    file_error: Option<String>,
    /// A fetch succeeded and its credentials wait for the writer: the profile turns `fresh`
    /// once they are in the file (see `delivery`).
    awaiting: bool,
    /// Whoever asked for a refresh of this profile: every one of them is answered as soon
    /// as the attempt's outcome is known (see [`Scheduler::answer`]).
    waiters: Vec<oneshot::Sender<ProfileSnapshot>>,
}

impl Entry {
    fn new(profile: Profile, generation: u64, now: SystemTime) -> Self {
        Entry {
            profile,
            generation,
            creds: None,
            state: ProfileState::Pending,
            next_refresh: now,
            in_flight: false,
            recheck: false,
            last_refresh: None,
            last_error: None,
            failures: 0,
            delivered: false,
            in_file: None,
            file_error: None,
            awaiting: false,
            waiters: Vec::new(),
        }
    }

    fn valid_creds(&self, now: SystemTime) -> Option<&TempCredentials> {
        self.creds.as_ref().filter(|c| c.valid_at(now))
    }

    fn status(&self, now: SystemTime) -> ProfileSnapshot {
        let (state, last_error) = self.shown(now);
        ProfileSnapshot {
            name: self.profile.name.clone(),
            kind: self.profile.source.kind().to_owned(),
            state,
            expires_at: self.creds.as_ref().map(|c| c.expiration),
            next_refresh_at: (!self.in_flight && self.state != ProfileState::LoginRequired)
                .then_some(self.next_refresh),
            last_refresh_at: self.last_refresh,
            last_error,
            account_id: self.creds.as_ref().and_then(|c| c.account_id.clone()),
            in_file_until: self.in_file.filter(|_| self.file_error.is_none()),
        }
    }
}

struct Done {
    name: String,
    generation: u64,
    result: Result<TempCredentials, SourceError>,
}

/// Owns the state of every managed profile. Build with [`Scheduler::new`], then [`Scheduler::run`].
pub struct Scheduler {
    entries: Vec<Entry>,
    refresh_before: Duration,
    fetcher: Arc<dyn Fetcher>,
    clock: Arc<dyn Clock>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    /// What the writer did with the deliveries; taken by [`Scheduler::run`].
    reports: Option<mpsc::UnboundedReceiver<WriteReport>>,
    status: watch::Sender<Vec<ProfileSnapshot>>,
    vault: watch::Sender<Vault>,
    metrics: Arc<Metrics>,
    done_tx: mpsc::UnboundedSender<Done>,
    next_generation: u64,
    /// Fetches finished since the heap was last trimmed.
    trim_due: bool,
}

/// The valid credentials held for each profile, for `credential_process` and the container
/// endpoint. Kept apart from the status snapshot so secrets never reach status replies.
pub type Vault = Arc<BTreeMap<String, TempCredentials>>;

impl Scheduler {
    /// A scheduler for `config`'s profiles, all due at once. Fresh credentials go to
    /// `deliveries`, and the writer's `reports` say when they are in the file (only then is
    /// a profile `fresh`); the status of every profile is published on the returned receiver.
    pub fn new(
        config: &Config,
        fetcher: Arc<dyn Fetcher>,
        clock: Arc<dyn Clock>,
        deliveries: mpsc::UnboundedSender<Delivery>,
        reports: mpsc::UnboundedReceiver<WriteReport>,
    ) -> (Self, watch::Receiver<Vec<ProfileSnapshot>>) {
        let now = clock.now();
        let (status, status_rx) = watch::channel(Vec::new());
        let (done_tx, _) = mpsc::unbounded_channel();
        let mut s = Scheduler {
            entries: Vec::new(),
            refresh_before: config.daemon.refresh_before,
            fetcher,
            clock,
            deliveries,
            reports: Some(reports),
            status,
            vault: watch::channel(Vault::default()).0,
            metrics: Arc::new(Metrics::new()),
            done_tx,
            next_generation: 0,
            trim_due: false,
        };
        for p in &config.profiles {
            let g = s.generation();
            s.entries.push(Entry::new(p.clone(), g, now));
        }
        s.publish();
        (s, status_rx)
    }

    /// Counts refreshes and failures into `metrics` (a private set otherwise).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The credentials held, updated after every refresh and reload.
    pub fn credentials(&self) -> watch::Receiver<Vault> {
        self.vault.subscribe()
    }

    fn publish_vault(&self) {
        let map = self
            .entries
            .iter()
            .filter_map(|e| e.creds.clone().map(|c| (e.profile.name.clone(), c)))
            .collect();
        self.vault.send_replace(Arc::new(map));
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Runs until `shutdown` is cancelled. Fetches still in flight then are dropped: the
    /// credentials already delivered stay valid.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        self.done_tx = done_tx;
        let mut reports = self
            .reports
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1);
        loop {
            let now = self.clock.now();
            self.tick(now);
            self.publish();
            let wake = self.next_wake(now);
            if self.trim_due && self.in_flight() == 0 {
                self.trim_due = false;
                release_freed_memory();
            }
            // One timer: the clock's wall-clock wait where the platform has one (it also wakes on
            // a resume or a clock change), else a monotonic sleep of at most a minute.
            let sleep = self.clock.sleep_until(now + wake, wake);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = done_rx.recv() => self.finish(done),
                Some(report) = reports.recv() => self.written(report),
                Some(cmd) = commands.recv() => self.command(cmd),
                () = sleep => {}
            }
        }
        // Refreshes asked for and not finished have no outcome any more: say so.
        for i in 0..self.entries.len() {
            self.answer(i, Some("the daemon stopped before the refresh finished"));
        }
    }

    /// Answers everyone waiting on entry `i` with its status now; `note`, when given, replaces
    /// the status's `last_error` (why there is no outcome to report).
    fn answer(&mut self, i: usize, note: Option<&str>) {
        let e = &mut self.entries[i];
        let waiters = std::mem::take(&mut e.waiters);
        if waiters.is_empty() {
            return;
        }
        let mut status = e.status(self.clock.now());
        if let Some(note) = note {
            status.last_error = Some(note.to_owned());
        }
        for w in waiters {
            let _ = w.send(status.clone());
        }
    }

    fn publish(&self) {
        let now = self.clock.now();
        self.status
            .send_replace(self.entries.iter().map(|e| e.status(now)).collect());
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.profile.name == name)
    }

    /// How long to sleep: until the next refresh or expiry, at most [`MAX_SLEEP`].
    fn next_wake(&self, now: SystemTime) -> Duration {
        let mut wake = now + MAX_SLEEP;
        // At the cap, due profiles wait for a fetch to finish, which wakes the loop anyway.
        let saturated = self.in_flight() >= MAX_IN_FLIGHT;
        for e in &self.entries {
            let held = saturated && e.next_refresh <= now;
            if !e.in_flight && !held && !self.waits_for_source(e, now) {
                wake = wake.min(e.next_refresh);
            }
            // A file that cannot be written: its copy's expiry turns the profile `expired`.
            if let Some(t) = e.in_file.filter(|&t| t > now && e.file_error.is_some()) {
                wake = wake.min(t);
            }
            if let Some(c) = e.valid_creds(now) {
                wake = wake.min(c.expiration);
            }
        }
        wake.duration_since(now).unwrap_or_default()
    }

    fn in_flight(&self) -> usize {
        self.entries.iter().filter(|e| e.in_flight).count()
    }

    /// Whether `e` is held back until its managed source's fetch in flight completes.
    /// (Its source is fetching, or due and itself waiting for its own source.)
    fn waits_for_source(&self, e: &Entry, now: SystemTime) -> bool {
        e.profile
            .source
            .managed_source()
            .and_then(|src| self.index(src))
            .is_some_and(|j| self.entries[j].in_flight || self.entries[j].next_refresh <= now)
    }

    /// When a profile is due and its healthy source would be due within [`CHAIN_WINDOW`] (or a
    /// quarter of its refresh period, if less) anyway, refreshes the source first, so a chain refreshes top-down in one go rather
    /// than the dependent assuming from a session about to be replaced.
    fn pull_sources_forward(&mut self, now: SystemTime) {
        for i in (0..self.entries.len()).rev() {
            let e = &self.entries[i];
            if e.in_flight || e.next_refresh > now {
                continue;
            }
            let Some(j) = e
                .profile
                .source
                .managed_source()
                .and_then(|s| self.index(s))
            else {
                continue;
            };
            let s = &mut self.entries[j];
            // "Soon" is relative to the source's own period, so a source refreshed a moment
            // ago is never refreshed again just because a dependent is due.
            let period = s
                .last_refresh
                .and_then(|l| s.next_refresh.duration_since(l).ok())
                .unwrap_or_default();
            let window = CHAIN_WINDOW.min(period / 4);
            if !s.in_flight && s.state == ProfileState::Fresh && s.next_refresh <= now + window {
                s.next_refresh = s.next_refresh.min(now);
            }
        }
    }

    /// Marks expired credentials and starts every fetch that is due, sources first.
    fn tick(&mut self, now: SystemTime) {
        for e in &mut self.entries {
            let lapsed = e.creds.as_ref().is_some_and(|c| !c.valid_at(now));
            let waiting = e.awaiting && !e.in_flight;
            if lapsed
                && (waiting || matches!(e.state, ProfileState::Fresh | ProfileState::Retrying))
            {
                tracing::warn!(profile = %e.profile.name, "credentials expired");
                e.state = ProfileState::Expired;
            }
        }
        self.pull_sources_forward(now);
        let mut in_flight = self.in_flight();
        for i in 0..self.entries.len() {
            if in_flight >= MAX_IN_FLIGHT {
                break;
            }
            let e = &self.entries[i];
            if e.in_flight || e.next_refresh > now {
                continue;
            }
            let source = match e.profile.source.managed_source() {
                None => None,
                Some(src) => match self.index(src).map(|j| &self.entries[j]) {
                    // The source is being refreshed (or waits for its own source): wait for
                    // it, its completion wakes the loop.
                    Some(s) if s.in_flight || s.next_refresh <= now => continue,
                    Some(s) => match s.valid_creds(now) {
                        Some(c) => Some(c.clone()),
                        None => {
                            // A dependent of a parked source is parked with it.
                            let kind = if s.state == ProfileState::LoginRequired {
                                FailureKind::LoginRequired
                            } else {
                                FailureKind::Transient
                            };
                            let why = match &s.last_error {
                                Some(err) => format!(
                                    "source profile \"{src}\" has no valid credentials: {err}"
                                ),
                                None => {
                                    format!("source profile \"{src}\" has no valid credentials yet")
                                }
                            };
                            let err = SourceError::new(kind, "source_unavailable", why);
                            self.fail(i, now, err);
                            // No attempt is made: the outcome is known now.
                            self.answer(i, None);
                            continue;
                        }
                    },
                    // Validated configs name only managed profiles; never wait on one
                    // that is not there.
                    None => {
                        let err = SourceError::permanent(
                            "source_unavailable",
                            format!("source profile \"{src}\" is not managed"),
                        );
                        self.fail(i, now, err);
                        self.answer(i, None);
                        continue;
                    }
                },
            };
            self.start(i, source);
            in_flight += 1;
        }
    }

    fn start(&mut self, i: usize, source: Option<TempCredentials>) {
        let e = &mut self.entries[i];
        e.in_flight = true;
        // This fetch's outcome is what the profile shows next, whatever the writer says
        // about the previous one.
        e.awaiting = false;
        e.state = ProfileState::Refreshing;
        tracing::debug!(profile = %e.profile.name, "refreshing");
        let fut = self.fetcher.fetch(&e.profile, source);
        let done = self.done_tx.clone();
        let name = e.profile.name.clone();
        let generation = e.generation;
        tokio::spawn(async move {
            let result = fut.await;
            let _ = done.send(Done {
                name,
                generation,
                result,
            });
        });
    }

    fn finish(&mut self, done: Done) {
        let Some(i) = self.index(&done.name) else {
            return;
        };
        if self.entries[i].generation != done.generation {
            return;
        }
        let now = self.clock.now();
        self.entries[i].in_flight = false;
        self.trim_due = true;
        let ok = matches!(&done.result, Ok(c) if c.valid_at(now));
        match done.result {
            Ok(creds) if ok => self.succeed(i, now, creds),
            Ok(creds) => {
                let err = SourceError::transient(
                    "expired",
                    format!(
                        "the source returned credentials that expired at {}",
                        rfc3339(creds.expiration)
                    ),
                );
                self.fail(i, now, err);
            }
            Err(err) => self.fail(i, now, err),
        }
        let e = &mut self.entries[i];
        if std::mem::take(&mut e.recheck) && !ok {
            tracing::info!(profile = %e.profile.name, "SSO token cache changed during the refresh; refreshing again");
            e.next_refresh = now;
        }
        // A failure is the outcome; new credentials are one once the writer has them in the
        // file (`written`), and whoever asked for this refresh hears back then.
        if !ok {
            self.answer(i, None);
        }
    }

    /// Takes new credentials: served from memory at once, handed to the writer, and the
    /// profile stays `refreshing` until the writer reports them in the file.
    fn succeed(&mut self, i: usize, now: SystemTime, creds: TempCredentials) {
        let lead = self.refresh_before;
        let e = &mut self.entries[i];
        e.next_refresh = refresh_at(now, creds.expiration, lead, fastrand::f64());
        // The source asks to be looked at sooner (an SSO access token to refresh first).
        if let Some(at) = creds.check_again_at.filter(|&at| at > now) {
            e.next_refresh = e.next_refresh.min(at);
        }
        e.state = ProfileState::Refreshing;
        e.awaiting = true;
        e.delivered = false;
        e.failures = 0;
        e.last_error = None;
        e.last_refresh = Some(now);
        tracing::info!(
            profile = %e.profile.name,
            expires_at = %rfc3339(creds.expiration),
            next_refresh_at = %rfc3339(e.next_refresh),
            "refreshed"
        );
        let name = e.profile.name.clone();
        e.creds = Some(creds.clone());
        self.publish_vault();
        let _ = self.deliveries.send(Delivery {
            name: name.clone(),
            creds,
        });
        // Profiles waiting on this one as their source can go now.
        for d in &mut self.entries {
            if d.profile.source.managed_source() == Some(name.as_str())
                && !d.in_flight
                && !d.awaiting
                && d.state != ProfileState::Fresh
            {
                d.next_refresh = d.next_refresh.min(now);
            }
        }
    }

    fn fail(&mut self, i: usize, now: SystemTime, err: SourceError) {
        let e = &mut self.entries[i];
        if err.kind == FailureKind::LoginRequired {
            // Retrying cannot help: wait for the token cache to change or a refresh command.
            if e.state != ProfileState::LoginRequired || e.last_error.as_ref() != Some(&err.message)
            {
                tracing::warn!(
                    profile = %e.profile.name,
                    reason = %err.reason,
                    "login required, not retrying: {}",
                    err.message
                );
            }
            e.state = ProfileState::LoginRequired;
            e.failures = 0;
            e.next_refresh = now + PARKED;
            // Credentials still held (an MFA session warned about ahead of its end, a role
            // chained from it): look again when they expire, so the error says what is due
            // then rather than "before then". No STS call: without a code the look is local.
            if !matches!(e.profile.source, ProfileSource::Sso(_)) {
                if let Some(c) = e.valid_creds(now) {
                    e.next_refresh = e.next_refresh.min(c.expiration);
                }
            }
            self.metrics.failed(&e.profile.name, &err.reason);
            e.last_error = Some(err.message);
            return;
        }
        e.failures = e.failures.saturating_add(1);
        let permanent = err.kind == FailureKind::Permanent;
        let mut delay = backoff(e.failures, fastrand::f64());
        if permanent {
            // Retrying cannot help until someone changes a policy or the config: don't hammer.
            delay = delay.max(PERMANENT_RETRY.mul_f64(0.75 + 0.5 * fastrand::f64()));
        }
        e.next_refresh = now + delay;
        e.state = if permanent {
            ProfileState::Error
        } else if e.valid_creds(now).is_some() {
            ProfileState::Retrying
        } else if e.creds.is_some() {
            ProfileState::Expired
        } else {
            ProfileState::Retrying
        };
        tracing::warn!(
            profile = %e.profile.name,
            reason = %err.reason,
            retry_in = %humantime::format_duration(Duration::from_secs(delay.as_secs().max(1))),
            "refresh failed: {}",
            err.message
        );
        self.metrics.failed(&e.profile.name, &err.reason);
        e.last_error = Some(err.message);
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Refresh { names, reply } => {
                let unknown: Vec<String> = names
                    .iter()
                    .filter(|n| self.index(n).is_none())
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    let _ = reply.send(Err(unknown));
                    return;
                }
                let now = self.clock.now();
                let mut pending = Vec::new();
                for e in &mut self.entries {
                    if names.is_empty() || names.contains(&e.profile.name) {
                        let (tx, rx) = oneshot::channel();
                        e.waiters.push(tx);
                        if !e.in_flight {
                            e.next_refresh = now;
                        }
                        pending.push(rx);
                    }
                }
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(pending.len());
                    for rx in pending {
                        // Every waiter is answered (see `answer`); a dropped one means the
                        // scheduler itself is gone.
                        if let Ok(status) = rx.await {
                            out.push(status);
                        }
                    }
                    let _ = reply.send(Ok(out));
                });
            }
            Command::SsoCacheChanged(keys) => {
                let now = self.clock.now();
                for e in &mut self.entries {
                    let crate::config::ProfileSource::Sso(sso) = &e.profile.source else {
                        continue;
                    };
                    if !keys.contains(&sso.session.cache_key()) {
                        continue;
                    }
                    if e.in_flight {
                        // Looked at again when this fetch is done, unless it succeeds.
                        e.recheck = true;
                    } else if e.state != ProfileState::Fresh && !e.awaiting {
                        tracing::info!(profile = %e.profile.name, "SSO token cache changed; refreshing");
                        e.next_refresh = now;
                    }
                }
            }
            Command::Ping(reply) => {
                let _ = reply.send(());
            }
            Command::Reload { config, reply } => {
                let _ = reply.send(self.reload(&config));
            }
        }
    }

    /// Applies a new config: unchanged profiles keep their credentials and schedule, new and
    /// changed ones are fetched at once, removed ones are forgotten (their file sections stay).
    /// A profile whose managed source (or any profile further up its chain) changed counts as
    /// changed too: its credentials came from the old source.
    fn reload(&mut self, config: &Config) -> String {
        let now = self.clock.now();
        self.refresh_before = config.daemon.refresh_before;
        let renewed = renewed_profiles(&self.entries, config);
        let mut old: Vec<Entry> = std::mem::take(&mut self.entries);
        let (mut added, mut changed, mut kept) = (Vec::new(), Vec::new(), 0usize);
        for p in &config.profiles {
            match old.iter().position(|e| e.profile.name == p.name) {
                Some(j) if !renewed.contains(p.name.as_str()) => {
                    let mut e = old.swap_remove(j);
                    e.profile = p.clone();
                    self.entries.push(e);
                    kept += 1;
                }
                Some(j) => {
                    let e = old.swap_remove(j);
                    let g = self.generation();
                    let mut fresh = Entry::new(p.clone(), g, now);
                    // Still the same identity (only a profile up its chain changed, or an MFA
                    // session's duration, helper or region): its valid credentials keep being
                    // served until the new fetch replaces them or they expire.
                    if same_identity(&e.profile.source, &p.source) {
                        fresh.creds = e.creds.filter(|c| c.valid_at(now));
                        fresh.delivered = e.delivered && fresh.creds.is_some();
                        fresh.last_refresh = e.last_refresh.filter(|_| fresh.creds.is_some());
                    }
                    fresh.waiters = e.waiters;
                    self.entries.push(fresh);
                    changed.push(p.name.clone());
                }
                None => {
                    let g = self.generation();
                    self.entries.push(Entry::new(p.clone(), g, now));
                    added.push(p.name.clone());
                }
            }
        }
        let removed: Vec<String> = old.iter().map(|e| e.profile.name.clone()).collect();
        self.publish_vault();
        for mut e in old {
            self.metrics.forget(&e.profile.name);
            // No outcome will come: the profile is no longer managed.
            e.state = ProfileState::Error;
            e.in_flight = false;
            let mut status = e.status(now);
            status.last_error = Some("removed from the config by a reload".into());
            status.next_refresh_at = None;
            for w in e.waiters {
                let _ = w.send(status.clone());
            }
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let summary = format!(
            "config reloaded: {} added ({}), {} changed ({}), {} removed ({}), {kept} unchanged",
            added.len(),
            list(&added),
            changed.len(),
            list(&changed),
            removed.len(),
            list(&removed),
        );
        summary
    }
}

/// Whether credentials of `old` are still credentials of `new`: the same settings, or the
/// same MFA session (user and device; `duration`, `mfa_process` and `region` do not change
/// whose it is).
fn same_identity(old: &ProfileSource, new: &ProfileSource) -> bool {
    match (old, new) {
        (ProfileSource::SessionToken(a), ProfileSource::SessionToken(b)) => {
            a.source_profile == b.source_profile && a.mfa.serial == b.mfa.serial
        }
        _ => old == new,
    }
}

/// The profiles of `config` that cannot keep what they hold: new ones, ones whose source
/// settings changed, and, down every chain, the dependents of those.
fn renewed_profiles<'a>(entries: &[Entry], config: &'a Config) -> BTreeSet<&'a str> {
    let mut renewed: BTreeSet<&str> = config
        .profiles
        .iter()
        .filter(|p| {
            !entries
                .iter()
                .any(|e| e.profile.name == p.name && e.profile.source == p.source)
        })
        .map(|p| p.name.as_str())
        .collect();
    // Until nothing more is added: a dependent of a renewed profile is renewed.
    loop {
        let before = renewed.len();
        for p in &config.profiles {
            if p.source
                .managed_source()
                .is_some_and(|src| renewed.contains(src))
            {
                renewed.insert(p.name.as_str());
            }
        }
        if renewed.len() == before {
            return renewed;
        }
    }
}

mod delivery;

#[cfg(test)]
mod tests;
