//! No log line and no write of the daemon's own feeds itself: a trace log in the config's
//! directory stays small on an idle daemon, and the SSO cache watcher does not take the
//! daemon's own cache writes for another program's login.

use crate::sso::{sso_env, write_admin_config, write_cache};
use crate::support::sso::{Fault, SsoFake};
use crate::support::{show, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::time::{Duration, Instant};

#[test]
fn trace_log_beside_the_config_stays_small_when_idle() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("p1", "Role1", BASE_PROFILE).duration("1h")]);
    let log = env.root().join("daemon.log");
    assert_eq!(
        log.parent(),
        env.config.parent(),
        "the log must be written beside the config"
    );
    let daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    daemon.wait_state("p1", "fresh", Duration::from_secs(30));
    let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let before = size();
    // Idle for 10 s: nothing is due, so nothing but the file's own events could log.
    std::thread::sleep(Duration::from_secs(10));
    let grown = size().saturating_sub(before);
    println!("the trace log grew {grown} bytes in 10 s idle");
    assert!(
        grown < 200 * 1024,
        "the trace log grew {grown} bytes in 10 s on an idle daemon"
    );
    let p = daemon.profile("p1").expect("p1");
    assert_eq!(p["state"], "fresh", "{p}");
}

#[test]
fn own_sso_cache_writes_do_not_skip_the_backoff() {
    const OIDC_REFRESH: &str = "CreateToken:refresh_token";
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    write_cache(&env, &fake.mint(), Duration::from_secs(3600), true);
    write_admin_config(&env);
    let daemon = Daemon::start(&env);
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));

    // The portal rejects every access token from now on: each attempt refreshes the token,
    // which the daemon writes to the cache itself, and fails. That write is no login.
    fake.fault("GetRoleCredentials", Fault::Unauthorized);
    let start = fake.count(OIDC_REFRESH);
    let t = Instant::now();
    let out = env.cli(&["refresh", "sso-admin"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let window = Duration::from_secs(10);
    if let Some(rest) = window.checked_sub(t.elapsed()) {
        std::thread::sleep(rest);
    }
    let during = fake.count(OIDC_REFRESH) - start;
    let p = daemon.profile("sso-admin").expect("sso-admin");
    println!(
        "{during} token refreshes in {window:?}; state {}",
        p["state"]
    );
    assert!(
        (1..=2).contains(&during),
        "{during} token refreshes in {window:?}: the daemon's own cache writes retried at once; {p}"
    );
    crate::sso::check_no_leaks(&env, &fake, &daemon);
}
