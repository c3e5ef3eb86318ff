//! Time-compressed soak: 50 profiles with 30–60 s credentials, a reader checking the file all
//! the while. Every read must find all 50 profiles with credentials valid for at least the
//! effective lead time minus the jitter bound, and the daemon's memory and open files must
//! stay flat.
//!
//! The test runs 90 s; `CREDFRESH_SOAK_SECONDS=1800 cargo test --test e2e soak -- --nocapture`
//! is the 30-minute run recorded in RELIABILITY.md.

use crate::support::{ini, rfc3339, wait_until, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::time::{Duration, Instant, SystemTime};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn fifty_short_lived_profiles_stay_valid_with_flat_memory() {
    let seconds: u64 = std::env::var("CREDFRESH_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let profiles: Vec<AssumeRole> = (0..50)
        .map(|i| {
            AssumeRole::new(&format!("soak{i:02}"), &format!("Soak{i}"), BASE_PROFILE)
                .duration(&format!("{}s", 30 + (i % 31)))
        })
        .collect();
    let names: Vec<String> = (0..50).map(|i| format!("soak{i:02}")).collect();
    // What a read must find left of each profile's credentials: the effective lead time (a
    // third of a lifetime shorter than three `refresh_before`s) minus the jitter bound (5% of
    // the lifetime), which also covers the STS call and the write.
    let required: Vec<Duration> = (0..50)
        .map(|i| {
            let lifetime = Duration::from_secs(30 + (i % 31));
            lifetime / 3 - lifetime / 20
        })
        .collect();
    env.write_config(&profiles);
    let daemon = Daemon::start(&env);
    for n in &names {
        daemon.wait_state(n, "fresh", Duration::from_secs(60));
    }
    // `fresh` means fetched; the writer may hold a batch for up to a second more.
    wait_until(
        Duration::from_secs(10),
        "all 50 sections in the file",
        || {
            let sections = ini::parse(&env.read_credentials());
            names
                .iter()
                .all(|n| sections.iter().any(|(name, _)| name == n))
        },
    );
    let pid = daemon.pid();
    let warmup_end = Instant::now() + Duration::from_secs(seconds.min(30));
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut reads, mut min_left, mut min_margin) = (0u64, Duration::MAX, Duration::MAX);
    let mut baseline = None;
    while Instant::now() < end {
        let text = std::fs::read_to_string(&env.credentials).expect("read the credentials file");
        let sections = ini::parse(&text);
        let now = SystemTime::now();
        for (n, required) in names.iter().zip(&required) {
            let s = sections
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, s)| s)
                .unwrap_or_else(|| panic!("read {reads}: {n} missing"));
            let expiry = rfc3339(&s["x_credfresh_expiration"], "expiration");
            let left = expiry
                .duration_since(now)
                .unwrap_or_else(|_| panic!("read {reads}: {n} expired"));
            assert!(
                left >= *required,
                "read {reads}: {n} had {left:?} left, less than {required:?}"
            );
            min_left = min_left.min(left);
            min_margin = min_margin.min(left - *required);
        }
        reads += 1;
        if baseline.is_none() && Instant::now() >= warmup_end {
            baseline = Some((rss_kib(pid), open_fds(pid)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss0, fds0) = baseline.expect("a baseline after warm-up");
    let (rss1, fds1) = (rss_kib(pid), open_fds(pid));
    let refreshes = daemon.log().matches("refreshed").count();
    println!(
        "soak: {seconds} s, {reads} reads, {refreshes} refreshes, min validity left {min_left:?} (least margin over the required {min_margin:?}), RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}"
    );
    assert!(refreshes >= 100, "only {refreshes} refreshes");
    assert!(fds1 <= fds0 + 2, "open files grew: {fds0} -> {fds1}");
    assert!(rss1 <= rss0 + 8 * 1024, "RSS grew: {rss0} -> {rss1} KiB");
    env.assert_secrets_never_logged(&daemon);
}
