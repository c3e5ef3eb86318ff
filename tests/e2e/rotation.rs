//! Test 2: short sessions rotate on their own, and the file never holds expired keys.

use crate::support::{ini, rfc3339, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE, BASE_SECRET};
use std::time::{Duration, Instant, SystemTime};

#[test]
fn thirty_second_sessions_rotate_at_least_twice_a_minute() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("short", "ShortRole", BASE_PROFILE).duration("30s")]);
    let daemon = Daemon::start(&env);
    let started = Instant::now();

    // (access key id, secret, token, expiry) of every distinct set the file held.
    let mut seen: Vec<(String, String, String, SystemTime)> = Vec::new();
    let mut reads = 0u32;
    while seen.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} distinct credential sets in 60 s ({} reads); want 3 (two rotations)\n{}",
            seen.len(),
            reads,
            daemon.log()
        );
        let text = env.read_credentials();
        let now = SystemTime::now();
        reads += 1;
        // Whole-file replacement: every read sees a complete file.
        let base = ini::section(&text, BASE_PROFILE).expect("[base] in every read");
        assert_eq!(base["aws_secret_access_key"], BASE_SECRET);
        assert!(ini::count(&text, "short") <= 1, "[short] twice:\n{text}");
        if let Some(s) = ini::section(&text, "short") {
            let written = &s["x_credfresh_expiration"];
            let expiry = rfc3339(written, "x_credfresh_expiration");
            assert!(
                expiry > now,
                "the file holds expired credentials: x_credfresh_expiration = {written}, read at {}",
                humantime::format_rfc3339_seconds(now)
            );
            let set = (
                s["aws_access_key_id"].clone(),
                s["aws_secret_access_key"].clone(),
                s["aws_session_token"].clone(),
                expiry,
            );
            if seen.last().map(|l| &l.0) != Some(&set.0) {
                if let Some(prev) = seen.last() {
                    assert_ne!(prev.1, set.1, "the key id rotated but the secret did not");
                    assert_ne!(prev.2, set.2, "the key id rotated but the token did not");
                    assert!(set.3 > prev.3, "a rotation moved the expiry backwards");
                }
                seen.push(set);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    assert!(
        daemon.log_lines("refreshed", "short").len() >= 3,
        "fewer than three \"refreshed\" log lines for short:\n{}",
        daemon.log()
    );
    let status = daemon.profile("short").expect("short in status");
    assert_ne!(status["state"], "expired", "{status}");
    env.assert_secrets_never_logged(&daemon);
}
