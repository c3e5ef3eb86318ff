//! The local clock is not AWS's clock: the daemon runs under libfaketime 20 minutes behind or
//! ahead of moto (which stamps its answers with the real time), with 30 s sessions. The test
//! itself runs on the real clock, and every read of the file is judged by it.

use crate::support::{
    ensure_libfaketime, ini, output_text, rfc3339, show, AssumeRole, Daemon, Moto, TestEnv,
    BASE_PROFILE,
};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

#[test]
fn a_clock_twenty_minutes_behind_aws_still_rotates_and_never_hands_out_expired_keys() {
    rotates_with_a_skewed_clock("-20m", 1200);
}

#[test]
fn a_clock_twenty_minutes_ahead_of_aws_still_rotates_and_never_hands_out_expired_keys() {
    rotates_with_a_skewed_clock("+20m", -1200);
}

/// Runs the daemon with its clock moved by `faketime` (libfaketime's `FAKETIME`), so AWS's
/// clock is `offset` seconds ahead of the daemon's.
fn rotates_with_a_skewed_clock(faketime: &str, offset: i64) {
    let lib = ensure_libfaketime().display().to_string();
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("short", "ShortRole", BASE_PROFILE).duration("30s")]);
    let daemon = Daemon::start_with(
        &env,
        &[
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", faketime),
            // Only the wall clock moves: tokio's timers keep the real monotonic clock.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let started = Instant::now();

    // Key ids of the distinct sets the file held; each read is judged by the real clock.
    let mut seen: Vec<String> = Vec::new();
    let mut reads = 0u32;
    while seen.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} distinct credential sets in 120 s ({reads} reads); want 3 (two rotations)\n{}",
            seen.len(),
            daemon.log()
        );
        let text = env.read_credentials();
        let now = SystemTime::now();
        reads += 1;
        if let Some(s) = ini::section(&text, "short") {
            let written = &s["x_credfresh_expiration"];
            let expiry = rfc3339(written, "x_credfresh_expiration");
            assert!(
                expiry > now,
                "the file holds credentials expired by the real clock: x_credfresh_expiration = \
                 {written}, read at {}\n{}",
                humantime::format_rfc3339_seconds(now),
                daemon.log()
            );
            if seen.last() != Some(&s["aws_access_key_id"]) {
                seen.push(s["aws_access_key_id"].clone());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The status shows the offset, and the profile is fresh by AWS's clock.
    let status = daemon.status();
    let shown = status["clock_offset_seconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("no clock_offset_seconds in {status}"));
    assert!(
        (shown - offset).abs() <= 5,
        "clock_offset_seconds = {shown}, want about {offset}: {status}"
    );
    let fresh = daemon.wait_state("short", "fresh", Duration::from_secs(60));
    let expires = rfc3339(
        fresh["expires_at"].as_str().expect("expires_at"),
        "expires_at",
    );
    let now = SystemTime::now();
    assert!(
        expires > now && expires < now + Duration::from_secs(60),
        "a fresh profile's expires_at is AWS's, within its 30 s: {fresh}"
    );

    // credential_process hands out credentials valid by the real clock.
    let r = daemon.get("/v1/credentials/short");
    assert_eq!(r.status, 200, "GET /v1/credentials/short: {}", r.body);
    let creds: Value = serde_json::from_str(&r.body).expect("credential_process JSON");
    for key in ["SecretAccessKey", "SessionToken"] {
        env.record_secret(creds[key].as_str().expect("a secret in the reply"));
    }
    let expiration = rfc3339(
        creds["Expiration"].as_str().expect("Expiration"),
        "Expiration",
    );
    assert!(
        expiration > SystemTime::now(),
        "credential_process handed out credentials expired by the real clock: {}",
        creds["Expiration"]
    );

    // The table says so, and the log warned once.
    let out = env.cli(&["status"]);
    assert!(out.status.success(), "{}", show(&out));
    let table = output_text(&out);
    let side = if offset > 0 { "behind" } else { "ahead of" };
    assert!(
        table.contains(&format!("clock: the local clock is {side} AWS's by ")),
        "{table}"
    );
    let log = daemon.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains(&format!("the local clock is {side} AWS's clock")))
        .count();
    assert_eq!(warnings, 1, "want one warning:\n{log}");
    env.assert_secrets_never_logged(&daemon);
}
