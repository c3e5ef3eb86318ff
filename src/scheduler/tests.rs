use super::*;
use crate::config::{AssumeRole, DaemonSettings, LogFormat, ProfileSource, SourceRef};
use futures_util::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Mutex;

const T0: u64 = 1_800_000_000;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

#[test]
fn refresh_at_uses_lead_for_long_lifetimes() {
    let lead = Duration::from_secs(15 * 60);
    // 1 h lifetime: 45 min, minus at most 60 s of jitter (5% of 1 h = 3 min, capped at 60 s).
    assert_eq!(refresh_at(t(0), t(3600), lead, 0.0), t(2700));
    assert_eq!(refresh_at(t(0), t(3600), lead, 1.0), t(2640));
    // 12 h lifetime: 11 h 45 min.
    assert_eq!(refresh_at(t(0), t(43200), lead, 0.0), t(42300));
}

#[test]
fn refresh_at_uses_two_thirds_for_short_lifetimes() {
    let lead = Duration::from_secs(15 * 60);
    assert_eq!(refresh_at(t(0), t(30), lead, 0.0), t(20));
    // 5% of 30 s = 1.5 s of jitter at most.
    assert_eq!(
        refresh_at(t(0), t(30), lead, 1.0),
        t(20) - Duration::from_millis(1500)
    );
    // Exactly three leads: both rules agree.
    assert_eq!(refresh_at(t(0), t(2700), lead, 0.0), t(1800));
    // Already expired: refresh at once.
    assert_eq!(refresh_at(t(10), t(5), lead, 0.5), t(10));
}

#[test]
fn jitter_stays_within_bounds() {
    let lead = Duration::from_secs(900);
    for i in 0..=100 {
        let j = i as f64 / 100.0;
        let at = refresh_at(t(0), t(3600), lead, j);
        assert!(at <= t(2700) && at >= t(2640), "{j}");
        let b = backoff(3, j);
        assert!(
            b >= Duration::from_secs(3) && b <= Duration::from_secs(5),
            "{b:?}"
        );
    }
}

/// Wall clock that follows tokio's (paused) clock, plus jumps a test makes. Counts the
/// scheduler's waits on it (one per turn of its loop) and, like the Linux timer, ends them
/// when the clock jumps.
struct TestClock {
    start: tokio::time::Instant,
    jump: Mutex<Duration>,
    jumps: watch::Sender<u64>,
    waits: std::sync::atomic::AtomicU64,
}

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(TestClock {
            start: tokio::time::Instant::now(),
            jump: Mutex::new(Duration::ZERO),
            jumps: watch::channel(0).0,
            waits: Default::default(),
        })
    }
    fn elapsed(&self) -> Duration {
        self.now().duration_since(t(0)).unwrap()
    }
    /// Moves the wall clock `by` ahead and says so, as the kernel does after a resume or a
    /// clock set.
    fn jump(&self, by: Duration) {
        *self.jump.lock().unwrap() += by;
        self.jumps.send_modify(|n| *n += 1);
    }
    /// Moves the wall clock without saying so, as on a platform with no wall-clock timer.
    fn jump_silently(&self, by: Duration) {
        *self.jump.lock().unwrap() += by;
    }
    fn waits(&self) -> u64 {
        self.waits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        t(0) + self.start.elapsed() + *self.jump.lock().unwrap()
    }

    fn sleep_until(&self, deadline: SystemTime, wake: Duration) -> BoxFuture<'static, ()> {
        self.waits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut jumps = self.jumps.subscribe();
        // The deadline is `wake` away on this clock too; a jump ends the sleep early.
        let _ = deadline;
        Box::pin(async move {
            tokio::select! {
                changed = jumps.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                _ = tokio::time::sleep(wake) => {}
            }
        })
    }
}

/// Issues credentials valid for `lifetime`, records every call, fails while told to.
struct FakeFetcher {
    clock: Arc<TestClock>,
    lifetime: Duration,
    /// (profile, when since `t(0)`, source access key id)
    calls: Mutex<Vec<(String, Duration, Option<String>)>>,
    failing: Mutex<Vec<String>>,
    permanent: Mutex<Vec<String>>,
    /// Profiles that fail with `login_required`.
    login: Mutex<Vec<String>>,
    /// `check_again_at` = issue time + this.
    check_in: Mutex<Option<Duration>>,
    latency: Duration,
}

impl FakeFetcher {
    fn new(clock: Arc<TestClock>, lifetime: Duration) -> Arc<Self> {
        Arc::new(FakeFetcher {
            clock,
            lifetime,
            calls: Mutex::new(Vec::new()),
            failing: Mutex::new(Vec::new()),
            permanent: Mutex::new(Vec::new()),
            login: Mutex::new(Vec::new()),
            check_in: Mutex::new(None),
            latency: Duration::from_millis(100),
        })
    }
    /// When `name` was fetched, in whole seconds since `t(0)`.
    fn calls(&self, name: &str) -> Vec<u64> {
        self.call_times(name)
            .iter()
            .map(Duration::as_secs)
            .collect()
    }
    fn call_times(&self, name: &str) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.0 == name).map(|c| c.1).collect()
    }
}

impl Fetcher for FakeFetcher {
    fn fetch(
        &self,
        profile: &Profile,
        source: Option<TempCredentials>,
    ) -> BoxFuture<'static, Result<TempCredentials, SourceError>> {
        let now = self.clock.now();
        let n = self.calls.lock().unwrap().len();
        self.calls.lock().unwrap().push((
            profile.name.clone(),
            self.clock.elapsed(),
            source.map(|s| s.access_key_id),
        ));
        let fail = self.failing.lock().unwrap().contains(&profile.name);
        let denied = self.permanent.lock().unwrap().contains(&profile.name);
        let login = self.login.lock().unwrap().contains(&profile.name);
        let check_again_at = self.check_in.lock().unwrap().map(|d| now + d);
        let expiration = now + self.latency + self.lifetime;
        let latency = self.latency;
        let name = profile.name.clone();
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            if fail {
                return Err(SourceError::transient("unreachable", "cannot reach STS"));
            }
            if denied {
                return Err(SourceError::permanent(
                    "AccessDenied",
                    "STS refused: AccessDenied",
                ));
            }
            if login {
                return Err(SourceError::login_required("SSO session needs a login"));
            }
            Ok(TempCredentials {
                access_key_id: format!("ASIA{name}{n}"),
                secret_access_key: SecretString::from("s"),
                session_token: Some(SecretString::from("t")),
                expiration,
                account_id: Some("123456789012".into()),
                arn: None,
                check_again_at,
            })
        })
    }
}

fn profile(name: &str, source: Option<&str>) -> Profile {
    Profile {
        name: name.into(),
        line: 1,
        source: ProfileSource::AssumeRole(AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/R".into(),
            source: match source {
                Some(s) => SourceRef::Managed(s.into()),
                None => SourceRef::Aws("base".into()),
            },
            duration: Duration::from_secs(30),
            session_name: "s".into(),
            external_id: None,
            region: None,
            mfa: None,
        }),
    }
}

/// `p` assuming another role: a changed profile for a reload.
fn with_other_role(mut p: Profile) -> Profile {
    if let ProfileSource::AssumeRole(ar) = &mut p.source {
        ar.role_arn = "arn:aws:iam::123456789012:role/Other".into();
    }
    p
}

fn config(profiles: Vec<Profile>) -> Config {
    Config {
        path: "c.toml".into(),
        daemon: DaemonSettings {
            credentials_file: "creds".into(),
            socket: "sock".into(),
            refresh_before: Duration::from_secs(900),
            log_format: LogFormat::Text,
            container: None,
            warn_before: Duration::from_secs(3600),
        },
        profiles,
        notes: Vec::new(),
    }
}

struct Harness {
    clock: Arc<TestClock>,
    fetcher: Arc<FakeFetcher>,
    status: watch::Receiver<Vec<ProfileSnapshot>>,
    commands: mpsc::Sender<Command>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    reports: mpsc::UnboundedSender<WriteReport>,
}

impl Harness {
    fn start(profiles: Vec<Profile>, lifetime: Duration) -> Self {
        Self::start_writing(profiles, lifetime, true)
    }

    /// With `writes`, a writer that has every delivery in the file at once; without, the
    /// test sends the writer's reports itself ([`Harness::report`]).
    fn start_writing(profiles: Vec<Profile>, lifetime: Duration, writes: bool) -> Self {
        let clock = TestClock::new();
        let fetcher = FakeFetcher::new(clock.clone(), lifetime);
        let (tx, mut raw) = mpsc::unbounded_channel::<Delivery>();
        let (fwd, deliveries) = mpsc::unbounded_channel();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let writer = reports_tx.clone();
        tokio::spawn(async move {
            while let Some(d) = raw.recv().await {
                if writes {
                    let _ = writer.send(WriteReport {
                        profiles: vec![crate::writer::Stamp::of(&d.name, &d.creds)],
                        outcome: Ok(()),
                    });
                }
                let _ = fwd.send(d);
            }
        });
        let (s, status) = Scheduler::new(
            &config(profiles),
            fetcher.clone(),
            clock.clone(),
            tx,
            reports,
        );
        let metrics = Arc::new(Metrics::new());
        let s = s.with_metrics(metrics.clone());
        let (commands, rx) = mpsc::channel(8);
        let shutdown = CancellationToken::new();
        tokio::spawn(s.run(rx, shutdown.clone()));
        Harness {
            clock,
            fetcher,
            status,
            commands,
            deliveries,
            shutdown,
            metrics,
            reports: reports_tx,
        }
    }

    /// Reports, as the writer would, that `d`'s credentials were written (or why not).
    fn report(&self, d: &Delivery, outcome: Result<(), &str>) {
        self.reports
            .send(WriteReport {
                profiles: vec![crate::writer::Stamp::of(&d.name, &d.creds)],
                outcome: outcome.map_err(str::to_owned),
            })
            .unwrap();
    }
    async fn refresh(&self, names: &[&str]) -> Result<Vec<ProfileSnapshot>, Vec<String>> {
        let (reply, rx) = oneshot::channel();
        let names = names.iter().map(|n| n.to_string()).collect();
        self.commands
            .send(Command::Refresh { names, reply })
            .await
            .unwrap();
        rx.await.unwrap()
    }
    /// Reloads with `profiles`; the reload's summary.
    async fn reload(&self, profiles: Vec<Profile>) -> String {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Reload {
                config: config(profiles),
                reply,
            })
            .await
            .unwrap();
        rx.await.unwrap()
    }
    /// The profile's status once no fetch is in flight.
    async fn settled(&self, name: &str) -> ProfileSnapshot {
        loop {
            let s = self.state(name);
            if s.state != ProfileState::Refreshing {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    fn state(&self, name: &str) -> ProfileSnapshot {
        self.status
            .borrow()
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .clone()
    }
}

async fn advance(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn refreshes_at_two_thirds_of_short_lifetimes() {
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(30));
    advance(95).await;
    let calls = h.fetcher.calls("a");
    // Fetched at 0, then every ~20 s (2/3 of 30 s, minus up to 1.5 s jitter, plus latency).
    assert!(calls.len() >= 5 && calls.len() <= 6, "{calls:?}");
    for pair in calls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((18..=21).contains(&gap), "{calls:?}");
    }
    assert_eq!(h.settled("a").await.state, ProfileState::Fresh);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn chains_refresh_in_dependency_order() {
    let h = Harness::start(
        vec![profile("b", None), profile("a", Some("b"))],
        Duration::from_secs(3600),
    );
    advance(1).await;
    let calls = h.fetcher.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, "b");
    assert_eq!(calls[1].0, "a");
    assert_eq!(
        calls[1].2.as_deref(),
        Some("ASIAb0"),
        "a assumed with b's credentials"
    );

    // A forced refresh of both still goes b first, then a with b's new credentials.
    let out = h.refresh(&["a", "b"]).await.unwrap();
    let states: Vec<(&str, ProfileState)> =
        out.iter().map(|p| (p.name.as_str(), p.state)).collect();
    assert_eq!(
        states,
        [("b", ProfileState::Fresh), ("a", ProfileState::Fresh)]
    );
    let calls = h.fetcher.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[2].0, "b");
    assert_eq!(calls[3].0, "a");
    assert_eq!(calls[3].2.as_deref(), Some("ASIAb2"));
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_keep_credentials_and_spare_others() {
    let mut h = Harness::start(
        vec![profile("a", None), profile("other", None)],
        Duration::from_secs(60),
    );
    advance(1).await;
    assert_eq!(h.state("a").state, ProfileState::Fresh);
    let first = h.deliveries.recv().await.unwrap();
    assert_eq!(first.name, "a");
    h.fetcher.failing.lock().unwrap().push("a".into());
    // Refresh due at ~40 s; retries at +1, +2, +4, +8 ... (±25%).
    advance(50).await;
    let a = h.settled("a").await;
    assert_eq!(a.state, ProfileState::Retrying);
    assert_eq!(a.last_error.as_deref(), Some("cannot reach STS"));
    assert_eq!(
        a.expires_at.map(rfc3339),
        Some(rfc3339(t(60) + Duration::from_millis(100)))
    );
    assert_eq!(h.settled("other").await.state, ProfileState::Fresh);
    // Expiry passes: expired, still retrying, slower and slower.
    advance(60).await;
    assert_eq!(h.settled("a").await.state, ProfileState::Expired);
    let attempts = h.fetcher.calls("a").len();
    assert!((7..=10).contains(&attempts), "{attempts} attempts in 110 s");
    // Measured to the millisecond: whole seconds would round 1.3 s and 1.6 s apart to 2 and 1.
    let gaps: Vec<Duration> = h
        .fetcher
        .call_times("a")
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(gaps.windows(2).skip(1).all(|g| g[1] >= g[0]), "{gaps:?}");
    // The other profile kept refreshing on its own schedule.
    assert!(h.fetcher.calls("other").len() >= 3);
    // Recovery.
    h.fetcher.failing.lock().unwrap().clear();
    advance(120).await;
    // Credentials for 60 s refresh every ~40 s: settle any refresh in flight at this instant.
    let a = h.settled("a").await;
    assert_eq!(a.state, ProfileState::Fresh);
    assert_eq!(a.last_error, None);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn clock_jump_refreshes_at_once() {
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(3600));
    advance(5).await;
    assert_eq!(h.fetcher.calls("a").len(), 1);
    // Suspend for two hours: the monotonic clock did not move, the wall clock did, and the
    // wall-clock timer reports it. The refresh follows within a second, not a minute.
    h.clock.jump(Duration::from_secs(7200));
    advance(1).await;
    let calls = h.fetcher.calls("a");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1] >= 7205 && calls[1] <= 7205 + 1, "{calls:?}");
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn unreported_clock_jump_is_caught_by_the_minute_check() {
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(3600));
    advance(5).await;
    assert_eq!(h.fetcher.calls("a").len(), 1);
    // No wall-clock timer (macOS): the once-a-minute check notices the jump.
    h.clock.jump_silently(Duration::from_secs(7200));
    advance(61).await;
    let calls = h.fetcher.calls("a");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1] >= 7205 && calls[1] <= 7205 + 61, "{calls:?}");
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn idle_scheduler_wakes_at_most_once_a_minute() {
    // Credentials for 2 h: nothing to do for the next 45 min. The loop must only sleep, never
    // spin: every turn of it waits on the clock once, so count the waits.
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(7200));
    advance(5).await;
    assert_eq!(h.state("a").state, ProfileState::Fresh);
    let before = h.clock.waits();
    advance(45 * 60).await;
    let turns = h.clock.waits() - before;
    assert!(turns <= 45, "{turns} wake-ups in 45 idle minutes");
    assert!(turns >= 1, "the once-a-minute check never ran");
    assert_eq!(h.fetcher.calls("a").len(), 1);
    assert!(h.state("a").next_refresh_at.is_some());
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn source_failure_blocks_only_its_dependents_and_they_recover() {
    let h = Harness::start(
        vec![
            profile("b", None),
            profile("a", Some("b")),
            profile("c", None),
        ],
        Duration::from_secs(3600),
    );
    h.fetcher.failing.lock().unwrap().push("b".into());
    advance(3).await;
    assert_eq!(h.state("c").state, ProfileState::Fresh);
    let a = h.state("a");
    assert_eq!(a.state, ProfileState::Retrying);
    assert!(a.last_error.unwrap().contains("source profile \"b\""));
    h.fetcher.failing.lock().unwrap().clear();
    advance(10).await;
    assert_eq!(h.state("b").state, ProfileState::Fresh);
    assert_eq!(h.state("a").state, ProfileState::Fresh);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_unchanged_profiles() {
    let h = Harness::start(
        vec![profile("a", None), profile("b", None)],
        Duration::from_secs(3600),
    );
    advance(1).await;
    let before = h.state("a");
    let summary = h
        .reload(vec![
            profile("a", None),
            with_other_role(profile("b", None)),
            profile("new", None),
        ])
        .await;
    assert!(
        summary.contains("1 added (new), 1 changed (b), 0 removed"),
        "{summary}"
    );
    advance(1).await;
    assert_eq!(
        h.state("a"),
        before,
        "unchanged profile kept its credentials and schedule"
    );
    assert_eq!(h.fetcher.calls("a").len(), 1);
    assert_eq!(h.fetcher.calls("b").len(), 2);
    assert_eq!(h.fetcher.calls("new").len(), 1);
    assert_eq!(
        h.refresh(&["gone", "a"]).await,
        Err(vec!["gone".to_owned()])
    );
    assert_eq!(h.refresh(&[]).await.unwrap().len(), 3);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn reload_renews_the_dependents_of_a_changed_source() {
    // c ← b ← a (a assumes from b, b from c), and an unrelated d.
    let h = Harness::start(
        vec![
            profile("c", None),
            profile("b", Some("c")),
            profile("a", Some("b")),
            profile("d", None),
        ],
        Duration::from_secs(3600),
    );
    advance(1).await;
    let before = h.state("d");
    let summary = h
        .reload(vec![
            with_other_role(profile("c", None)),
            profile("b", Some("c")),
            profile("a", Some("b")),
            profile("d", None),
        ])
        .await;
    assert!(
        summary.contains("0 added (none), 3 changed (c, b, a), 0 removed (none), 1 unchanged"),
        "{summary}"
    );
    advance(1).await;
    // The whole chain was fetched again, in order, each from its source's new credentials.
    let calls = h.fetcher.calls.lock().unwrap().clone();
    let names: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["c", "d", "b", "a", "c", "b", "a"], "{calls:?}");
    assert_eq!(calls[5].2.as_deref(), Some("ASIAc4"), "{calls:?}");
    assert_eq!(calls[6].2.as_deref(), Some("ASIAb5"), "{calls:?}");
    assert_eq!(h.state("a").state, ProfileState::Fresh);
    assert_eq!(
        h.state("d"),
        before,
        "the unrelated profile kept everything"
    );
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn due_dependent_refreshes_its_source_first() {
    // Both live 30 s; whatever the jitter, each round goes b then a.
    let h = Harness::start(
        vec![profile("b", None), profile("a", Some("b"))],
        Duration::from_secs(30),
    );
    advance(100).await;
    let calls = h.fetcher.calls.lock().unwrap().clone();
    assert!(calls.len() >= 8, "{calls:?}");
    for pair in calls.chunks(2) {
        if pair.len() == 2 {
            assert_eq!(
                (pair[0].0.as_str(), pair[1].0.as_str()),
                ("b", "a"),
                "{calls:?}"
            );
        }
    }
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_hammered() {
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(3600));
    h.fetcher.permanent.lock().unwrap().push("a".into());
    advance(300).await;
    let calls = h.fetcher.calls("a");
    // At least 45 s between attempts: about 6 in 5 minutes, not the ~12 of a transient failure.
    assert!(calls.len() <= 7, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[1] - w[0] >= 44), "{calls:?}");
    assert_eq!(h.settled("a").await.state, ProfileState::Error);
    h.shutdown.cancel();
}

fn sso_profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        line: 1,
        source: ProfileSource::Sso(crate::config::Sso {
            session: sso_session(),
            account_id: "123456789012".into(),
            role_name: "R".into(),
            region: None,
        }),
    }
}

fn sso_session() -> crate::config::SsoSession {
    crate::config::SsoSession {
        name: Some("acme".into()),
        start_url: "https://acme.awsapps.com/start".into(),
        region: "us-east-1".into(),
        scopes: vec![],
    }
}

#[tokio::test(start_paused = true)]
async fn token_check_comes_first_and_login_required_parks_until_the_cache_changes() {
    let h = Harness::start(
        vec![sso_profile("sso"), profile("dep", Some("sso"))],
        Duration::from_secs(3600),
    );
    // The SSO token wants a refresh after 10 min, long before the role credentials' 45 min.
    *h.fetcher.check_in.lock().unwrap() = Some(Duration::from_secs(600));
    advance(1).await;
    assert_eq!(h.fetcher.calls("sso").len(), 1);
    advance(610).await;
    let calls = h.fetcher.calls("sso");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!((600..=602).contains(&calls[1]), "{calls:?}");

    // The session ends: parked, not retried, credentials kept.
    *h.fetcher.check_in.lock().unwrap() = None;
    h.fetcher.login.lock().unwrap().push("sso".into());
    let out = h.refresh(&["sso"]).await.unwrap();
    assert_eq!(out[0].state, ProfileState::LoginRequired);
    let st = h.settled("sso").await;
    assert_eq!(st.state, ProfileState::LoginRequired);
    assert_eq!(st.next_refresh_at, None);
    assert!(st.expires_at.is_some());
    assert!(st.last_error.unwrap().contains("login"));
    let n = h.fetcher.calls("sso").len();
    advance(2000).await;
    assert_eq!(
        h.fetcher.calls("sso").len(),
        n,
        "login_required is not retried"
    );

    // A login elsewhere: the cache changes, the profile is fetched at once.
    h.fetcher.login.lock().unwrap().clear();
    h.commands
        .send(Command::SsoCacheChanged(vec![sso_session().cache_key()]))
        .await
        .unwrap();
    advance(1).await;
    assert_eq!(h.fetcher.calls("sso").len(), n + 1);
    assert_eq!(h.settled("sso").await.state, ProfileState::Fresh);
    // An unrelated cache file changes nothing.
    h.commands
        .send(Command::SsoCacheChanged(vec!["0000".into()]))
        .await
        .unwrap();
    advance(1).await;
    assert_eq!(h.fetcher.calls("sso").len(), n + 1);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_cache_change_during_a_failing_fetch_is_looked_at_when_it_ends() {
    let h = Harness::start(vec![sso_profile("sso")], Duration::from_secs(3600));
    advance(1).await;
    assert_eq!(h.settled("sso").await.state, ProfileState::Fresh);
    let n = h.fetcher.calls("sso").len();

    // A fetch starts with the old token and will come back login_required…
    h.fetcher.login.lock().unwrap().push("sso".into());
    let (reply, outcome) = oneshot::channel();
    h.commands
        .send(Command::Refresh {
            names: vec!["sso".into()],
            reply,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(h.fetcher.calls("sso").len(), n + 1);
    // …while a login elsewhere rewrites the cache.
    h.fetcher.login.lock().unwrap().clear();
    h.commands
        .send(Command::SsoCacheChanged(vec![sso_session().cache_key()]))
        .await
        .unwrap();
    let out = outcome.await.unwrap().unwrap();
    assert_eq!(out[0].state, ProfileState::LoginRequired);
    // Looked at again once that fetch ended: fresh with the new token.
    advance(1).await;
    assert_eq!(h.fetcher.calls("sso").len(), n + 2);
    assert_eq!(h.settled("sso").await.state, ProfileState::Fresh);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn at_most_sixteen_fetches_run_at_once() {
    let profiles = (0..100).map(|i| profile(&format!("p{i}"), None)).collect();
    let h = Harness::start(profiles, Duration::from_secs(3600));
    advance(5).await;
    // Each fetch takes 100 ms: 100 profiles in batches of 16 take about 0.7 s, all fetched.
    let calls = h.fetcher.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 100);
    let statuses = h.status.borrow().clone();
    assert!(statuses.iter().all(|p| p.state == ProfileState::Fresh));
    h.shutdown.cancel();
}

/// Sends a refresh of `names` and returns where its reply will arrive.
async fn ask_refresh(
    h: &Harness,
    names: &[&str],
) -> oneshot::Receiver<Result<Vec<ProfileSnapshot>, Vec<String>>> {
    let (reply, rx) = oneshot::channel();
    let names = names.iter().map(|n| n.to_string()).collect();
    h.commands
        .send(Command::Refresh { names, reply })
        .await
        .unwrap();
    rx
}

/// The reply to a refresh, which must come within `secs` (of the paused clock).
async fn answered(
    rx: oneshot::Receiver<Result<Vec<ProfileSnapshot>, Vec<String>>>,
    secs: u64,
) -> Vec<ProfileSnapshot> {
    tokio::time::timeout(Duration::from_secs(secs), rx)
        .await
        .expect("the refresh was answered in time")
        .expect("the scheduler replied")
        .expect("the profiles are managed")
}

#[tokio::test(start_paused = true)]
async fn refresh_of_a_dependent_whose_source_failed_is_answered_at_once() {
    let h = Harness::start(
        vec![profile("src", None), profile("dep", Some("src"))],
        Duration::from_secs(3600),
    );
    h.fetcher.failing.lock().unwrap().push("src".into());
    advance(2).await;
    assert_eq!(h.settled("src").await.state, ProfileState::Retrying);
    // src backs off; dep fails fast without an attempt of its own, and says why.
    let out = answered(ask_refresh(&h, &["dep"]).await, 2).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].name, "dep");
    assert_ne!(out[0].state, ProfileState::Fresh);
    let why = out[0].last_error.clone().unwrap_or_default();
    assert!(
        why.contains("source profile \"src\"") && why.contains("cannot reach STS"),
        "{why}"
    );
    assert!(h.fetcher.calls("dep").is_empty());
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn refresh_of_a_dependent_of_a_parked_source_is_answered_at_once() {
    let h = Harness::start(
        vec![sso_profile("sso"), profile("dep", Some("sso"))],
        Duration::from_secs(3600),
    );
    h.fetcher.login.lock().unwrap().push("sso".into());
    advance(2).await;
    assert_eq!(h.settled("sso").await.state, ProfileState::LoginRequired);
    let out = answered(ask_refresh(&h, &["dep"]).await, 2).await;
    assert_eq!(out[0].state, ProfileState::LoginRequired);
    assert!(
        out[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("login"),
        "{out:?}"
    );
    // Both together: the source's own attempt and the dependent's fail-fast both answer.
    let out = answered(ask_refresh(&h, &["sso", "dep"]).await, 2).await;
    let states: Vec<ProfileState> = out.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        [ProfileState::LoginRequired, ProfileState::LoginRequired]
    );
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn refresh_is_answered_after_success_failure_and_permanent_failure() {
    let h = Harness::start(
        vec![
            profile("ok", None),
            profile("down", None),
            profile("denied", None),
        ],
        Duration::from_secs(3600),
    );
    advance(1).await;
    h.fetcher.failing.lock().unwrap().push("down".into());
    h.fetcher.permanent.lock().unwrap().push("denied".into());
    let out = answered(ask_refresh(&h, &[]).await, 2).await;
    let states: Vec<(&str, ProfileState)> =
        out.iter().map(|p| (p.name.as_str(), p.state)).collect();
    assert_eq!(
        states,
        [
            ("ok", ProfileState::Fresh),
            ("down", ProfileState::Retrying),
            ("denied", ProfileState::Error)
        ]
    );
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn refresh_of_a_profile_a_reload_removes_or_changes_is_answered() {
    let h = Harness::start(
        vec![profile("gone", None), profile("changed", None)],
        Duration::from_secs(3600),
    );
    advance(1).await;
    let rx = ask_refresh(&h, &["gone", "changed"]).await;
    // Both fetches are in flight (100 ms) when the reload lands.
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.reload(vec![with_other_role(profile("changed", None))])
        .await;
    let out = answered(rx, 2).await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].name, "gone");
    assert_eq!(out[0].state, ProfileState::Error);
    assert_eq!(
        out[0].last_error.as_deref(),
        Some("removed from the config by a reload")
    );
    // The changed profile's waiter moved to its new entry and got that fetch's outcome.
    assert_eq!(out[1].name, "changed");
    assert_eq!(out[1].state, ProfileState::Fresh);
    assert_eq!(h.fetcher.calls("changed").len(), 3);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn refresh_in_flight_at_shutdown_is_answered() {
    let h = Harness::start(vec![profile("a", None)], Duration::from_secs(3600));
    advance(1).await;
    let rx = ask_refresh(&h, &["a"]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(h.state("a").state, ProfileState::Refreshing);
    h.shutdown.cancel();
    let out = answered(rx, 2).await;
    assert_eq!(out[0].state, ProfileState::Refreshing);
    assert_eq!(
        out[0].last_error.as_deref(),
        Some("the daemon stopped before the refresh finished")
    );
}

#[tokio::test(start_paused = true)]
async fn reload_drops_the_metric_series_of_removed_profiles() {
    let h = Harness::start(
        vec![profile("gone", None), profile("kept", None)],
        Duration::from_secs(3600),
    );
    h.fetcher.failing.lock().unwrap().push("gone".into());
    advance(1).await;
    let text = h.metrics.render(&[], t(0));
    assert!(text.contains("profile=\"gone\""), "{text}");
    h.reload(vec![profile("kept", None)]).await;
    let text = h.metrics.render(&[], t(0));
    assert!(!text.contains("profile=\"gone\""), "{text}");
    assert!(text.contains("profile=\"kept\""), "{text}");
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn fresh_only_once_the_writer_has_the_credentials_in_the_file() {
    let mut h = Harness::start_writing(vec![profile("a", None)], Duration::from_secs(3600), false);
    let asked = ask_refresh(&h, &["a"]).await;
    advance(1).await;
    // Fetched and served from memory, but not in the file yet: still refreshing.
    let d = h.deliveries.recv().await.unwrap();
    let a = h.state("a");
    assert_eq!(a.state, ProfileState::Refreshing);
    assert!(a.expires_at.is_some() && a.in_file_until.is_none(), "{a:?}");
    let refreshes = |h: &Harness| {
        h.metrics
            .render(&[], SystemTime::now())
            .contains("credfresh_refreshes_total{profile=\"a\"} 1")
    };
    assert!(!refreshes(&h));
    // The write fails: retrying, saying why; the refresh is answered with that.
    h.report(&d, Err("disk full"));
    let out = answered(asked, 2).await;
    assert_eq!(out[0].state, ProfileState::Retrying);
    assert_eq!(
        out[0].last_error.as_deref(),
        Some("the credentials file was not updated: disk full")
    );
    advance(1).await;
    assert_eq!(h.state("a").state, ProfileState::Retrying);
    // A report about other credentials of the profile changes nothing.
    let mut other = Delivery {
        name: d.name.clone(),
        creds: d.creds.clone(),
    };
    other.creds.access_key_id = "ASIAOTHER".into();
    h.report(&other, Ok(()));
    advance(1).await;
    assert_eq!(h.state("a").state, ProfileState::Retrying);
    // The writer's retry succeeds: fresh, delivered, counted once.
    h.report(&d, Ok(()));
    advance(1).await;
    let a = h.state("a");
    assert_eq!(a.state, ProfileState::Fresh);
    assert!(a.in_file_until.is_some() && a.last_error.is_none(), "{a:?}");
    assert!(refreshes(&h));
    h.report(&d, Ok(()));
    advance(1).await;
    assert!(refreshes(&h));
    // A refresh is answered only once the new credentials are in the file.
    let mut asked = ask_refresh(&h, &["a"]).await;
    advance(2).await;
    let d2 = h.deliveries.recv().await.unwrap();
    assert!(asked.try_recv().is_err(), "answered before the write");
    let a = h.state("a");
    assert_eq!(a.state, ProfileState::Refreshing);
    // The earlier credentials are still in the file.
    assert_eq!(a.in_file_until, Some(d.creds.expiration));
    h.report(&d2, Ok(()));
    let out = answered(asked, 2).await;
    assert_eq!(out[0].state, ProfileState::Fresh);
    assert_eq!(out[0].in_file_until, Some(d2.creds.expiration));
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn credentials_never_written_expire_as_such() {
    let mut h = Harness::start_writing(vec![profile("a", None)], Duration::from_secs(30), false);
    advance(1).await;
    let d = h.deliveries.recv().await.unwrap();
    assert_eq!(h.state("a").state, ProfileState::Refreshing);
    // Nothing reported, the credentials lapse: expired, not refreshing forever.
    h.fetcher.failing.lock().unwrap().push("a".into());
    advance(40).await;
    let a = h.settled("a").await;
    assert!(matches!(a.state, ProfileState::Expired), "{a:?}");
    // The writer's late word about them (dropped as expired) keeps them expired.
    h.report(
        &d,
        Err("the credentials expired before they could be written"),
    );
    advance(1).await;
    assert_ne!(h.state("a").state, ProfileState::Fresh);
    h.shutdown.cancel();
}

mod file;
