//! Test 6: STS unreachable — the profile retries with a reason, the old credentials stay;
//! STS back — fresh again within the backoff.

use crate::support::{
    free_port, show, wait_until, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use std::time::{Duration, Instant};

#[test]
fn sts_outage_keeps_old_credentials_and_recovers() {
    let mut moto = Moto::start();
    let env = TestEnv::new(&moto);
    // Long enough that nothing expires or refreshes by itself during the test.
    env.write_config(&[AssumeRole::new("steady", "SteadyRole", BASE_PROFILE).duration("15m")]);
    let daemon = Daemon::start(&env);
    let fresh = daemon.wait_state("steady", "fresh", Duration::from_secs(30));
    wait_until(Duration::from_secs(10), "[steady] in the file", || {
        env.section("steady").is_some()
    });
    let before = env.read_credentials();

    moto.stop();
    let outage = Instant::now();
    let out = env.cli(&["refresh", "steady"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refresh with STS down must report failure:\n{}",
        show(&out)
    );
    let failed = daemon.wait_state("steady", "retrying", Duration::from_secs(30));
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        !error.trim().is_empty(),
        "no last_error while retrying: {failed}"
    );
    assert_eq!(failed["expires_at"], fresh["expires_at"], "{failed}");
    assert_eq!(
        env.read_credentials(),
        before,
        "the file changed during the outage"
    );

    // The backoff retries by itself (about 1 s, then 2 s, …), and the file still holds the
    // last valid credentials.
    wait_until(Duration::from_secs(15), "a second failed attempt", || {
        daemon.log_lines("refresh failed", "steady").len() >= 2
    });
    assert_eq!(
        env.read_credentials(),
        before,
        "the file changed during the outage"
    );
    let status = daemon.profile("steady").unwrap();
    assert!(
        status["state"] == "retrying" || status["state"] == "refreshing",
        "{status}"
    );

    moto.restart();
    let recovered = daemon.wait_state("steady", "fresh", Duration::from_secs(30));
    let outage = outage.elapsed();
    assert!(recovered["last_error"].is_null(), "{recovered}");
    assert_ne!(recovered["expires_at"], fresh["expires_at"], "{recovered}");
    wait_until(Duration::from_secs(10), "new keys in the file", || {
        env.read_credentials() != before
    });

    // One attempt is one request, retried with a doubling backoff: a short outage costs a
    // handful of attempts, not dozens.
    let failures = daemon.log_lines("refresh failed", "steady").len();
    assert!(
        failures <= 2 + 2 * (outage.as_secs_f64().log2().ceil() as usize + 1),
        "{failures} failed attempts during a {outage:?} outage:\n{}",
        daemon.log()
    );
    env.assert_secrets_never_logged(&daemon);
}

/// Issue 14: `refresh dep` while dep's source cannot be refreshed answered only after the
/// control socket's 120 s timeout. It must answer within seconds, non-zero, naming the source
/// and why it failed.
#[test]
fn refresh_of_a_dependent_answers_at_once_when_its_source_fails() {
    let env = TestEnv::with_sts(&format!("http://127.0.0.1:{}", free_port()));
    env.write_config(&[
        AssumeRole::new("srcprof", "SrcRole", BASE_PROFILE).duration("15m"),
        AssumeRole::new("dep", "DepRole", "srcprof").duration("15m"),
    ]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("srcprof", "retrying", Duration::from_secs(30));

    let started = Instant::now();
    let out = env.cli(&["refresh", "dep"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        took < Duration::from_secs(30),
        "refresh dep took {took:?}:\n{}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("source profile \"srcprof\"") && text.contains("cannot reach"),
        "the answer does not say that srcprof failed and why:\n{}",
        show(&out)
    );
    env.assert_secrets_never_logged(&daemon);
}

/// A broken AWS file (a byte that is not UTF-8 in `~/.aws/config`) is something the user
/// fixes, not a permanent failure: the profile is `retrying` on the normal backoff while its
/// credentials last, `expired` once they have lapsed (never `error` with an expiry in the
/// past), and fresh again soon after the file is fixed.
#[test]
fn a_broken_aws_file_is_retried_and_recovers_once_fixed() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("short", "ShortRole", BASE_PROFILE).duration("20s")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("short", "fresh", Duration::from_secs(30));
    let good = std::fs::read(&env.aws_config).expect("the AWS config");
    std::fs::write(&env.aws_config, [&good[..], b"# caf\xe9\n"].concat()).expect("break it");

    let out = env.cli(&["refresh", "short"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let p = daemon.profile("short").expect("short");
    assert_eq!(p["state"], "retrying", "{p}");
    assert!(
        p["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("is not UTF-8"),
        "{p}"
    );

    // Once the credentials lapse the profile says so.
    let p = daemon.wait_state("short", "expired", Duration::from_secs(60));
    assert!(
        p["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("is not UTF-8"),
        "{p}"
    );

    std::fs::write(&env.aws_config, &good).expect("fix it");
    daemon.wait_state("short", "fresh", Duration::from_secs(90));
}
