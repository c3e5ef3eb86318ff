//! SSO fault injection through the fake IAM Identity Center: the portal's
//! `GetRoleCredentials` and SSO-OIDC's refresh-token `CreateToken` answer 500/503, throttle,
//! refuse, hang past the timeout, close mid-response or send garbage. For each: the state and
//! `last_error` are right, retries back off (requests are counted: no storm), a refusal is not
//! hammered, the old credentials stay in the file, nothing invalid is written, and the daemon
//! recovers by itself when the fault ends. Five profiles of one session share one token
//! refresh even when the portal rejects their token together, when SSO-OIDC fails, and when
//! another tool rotates the refresh token during a refresh.

use crate::sso::{
    cache_path, check_no_leaks, read_cache, sso_env, sso_profile, write_admin_config, write_cache,
    write_cache_at,
};
use crate::support::sso::{Fault, SsoFake};
use crate::support::{show, wait_for, Daemon, TestEnv};
use std::time::{Duration, Instant};

const PORTAL: &str = "GetRoleCredentials";
const OIDC_REFRESH: &str = "CreateToken:refresh_token";

struct Case {
    /// The operation that misbehaves.
    op: &'static str,
    fault: Fault,
    state: &'static str,
    error: &'static str,
    /// Most requests to `op` allowed while the fault lasts `window` (the forced one included).
    max_requests: u32,
    window: Duration,
}

fn run(case: Case) {
    let what = format!("{} {:?}", case.op, case.fault);
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    write_cache(&env, &fake.mint(), Duration::from_secs(3600), true);
    write_admin_config(&env);
    let daemon = Daemon::start(&env);
    let fresh = daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));
    let file_before = wait_for(Duration::from_secs(10), "[sso-admin] in the file", || {
        env.section("sso-admin")
    });

    if case.op == OIDC_REFRESH {
        // The portal now rejects the access token, so every attempt needs a token refresh.
        fake.expire_access_tokens();
    }
    fake.fault(case.op, case.fault);
    let start = fake.count(case.op);
    let t = Instant::now();
    let out = env.cli(&["refresh", "sso-admin"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: refresh must report the failure: {}",
        show(&out)
    );
    let status = daemon.profile("sso-admin").expect("sso-admin");
    assert_eq!(status["state"], case.state, "{what}: {status}");
    let error = status["last_error"].as_str().unwrap_or("");
    assert!(error.contains(case.error), "{what}: last_error {error:?}");
    assert_eq!(
        status["expires_at"], fresh["expires_at"],
        "{what}: the old expiry is still reported"
    );

    // Let the backoff run for the rest of the window and count what reached the fake.
    if let Some(rest) = case.window.checked_sub(t.elapsed()) {
        std::thread::sleep(rest);
    }
    let during = fake.count(case.op) - start;
    println!(
        "fault {what}: state {}, {during} requests in {:?}, last_error {error:?}",
        case.state, case.window
    );
    assert!(
        during >= 1 && during <= case.max_requests,
        "{what}: {during} requests in {:?}",
        case.window
    );
    assert_eq!(
        env.section("sso-admin").as_ref(),
        Some(&file_before),
        "{what}: old credentials kept"
    );

    // The fault ends: back to fresh by itself (no refresh command), new credentials written.
    fake.fault(case.op, Fault::None);
    if case.state == "error" {
        // Refusals wait a minute between attempts; a user who got the role assigned refreshes.
        let out = env.cli(&["refresh", "sso-admin"]);
        assert!(out.status.success(), "{what}: {}", show(&out));
    } else {
        daemon.wait_state("sso-admin", "fresh", Duration::from_secs(45));
    }
    let recovered = daemon.profile("sso-admin").expect("sso-admin");
    assert!(recovered["last_error"].is_null(), "{what}: {recovered}");
    let after = wait_for(
        Duration::from_secs(10),
        "new credentials in the file",
        || {
            env.section("sso-admin")
                .filter(|s| s["aws_access_key_id"] != file_before["aws_access_key_id"])
        },
    );
    assert!(after["x_credfresh_expiration"] >= file_before["x_credfresh_expiration"]);
    check_no_leaks(&env, &fake, &daemon);
}

const TEN_S: Duration = Duration::from_secs(10);

/// A transient fault: attempts at about 0, 1, 3, 7 s (±25%), so at most 5 in 10 s.
fn transient(op: &'static str, fault: Fault, error: &'static str) {
    run(Case {
        op,
        fault,
        state: "retrying",
        error,
        max_requests: 5,
        window: TEN_S,
    });
}

/// One attempt hangs until the 25 s attempt timeout; then backoff.
fn hang(op: &'static str) {
    run(Case {
        op,
        fault: Fault::Hang,
        state: "retrying",
        error: "did not answer in time",
        max_requests: 3,
        window: Duration::from_secs(30),
    });
}

#[test]
fn portal_500() {
    transient(PORTAL, Fault::Status500, "InternalServerException");
}

#[test]
fn portal_503() {
    transient(PORTAL, Fault::Status503, "ServiceUnavailableException");
}

#[test]
fn portal_throttling() {
    transient(PORTAL, Fault::Throttle, "TooManyRequestsException");
}

#[test]
fn portal_garbage_body() {
    transient(PORTAL, Fault::Garbage, "could not be read");
}

#[test]
fn portal_answer_without_expiration() {
    // Issue 14: the message said "expired at 1970-01-01T00:00:00Z".
    transient(
        PORTAL,
        Fault::NoExpiration,
        "SSO GetRoleCredentials response has no expiration",
    );
}

#[test]
fn portal_closes_mid_response() {
    transient(PORTAL, Fault::Close, "SSO portal");
}

#[test]
fn portal_hangs_past_the_timeout() {
    hang(PORTAL);
}

#[test]
fn portal_no_access_is_not_hammered() {
    run(Case {
        op: PORTAL,
        fault: Fault::Forbidden,
        state: "error",
        error: "ForbiddenException",
        max_requests: 1,
        window: TEN_S,
    });
}

#[test]
fn oidc_refresh_500() {
    transient(
        OIDC_REFRESH,
        Fault::Status500,
        "refresh the access token of SSO session \"acme\": SSO-OIDC refused: InternalServerException",
    );
}

#[test]
fn oidc_refresh_503() {
    transient(
        OIDC_REFRESH,
        Fault::Status503,
        "ServiceUnavailableException",
    );
}

#[test]
fn oidc_refresh_garbage_body() {
    transient(OIDC_REFRESH, Fault::Garbage, "could not be read");
}

#[test]
fn oidc_refresh_closes_mid_response() {
    transient(
        OIDC_REFRESH,
        Fault::Close,
        "refresh the access token of SSO session \"acme\": SSO-OIDC",
    );
}

#[test]
fn oidc_refresh_hangs_past_the_timeout() {
    hang(OIDC_REFRESH);
}

#[test]
fn failed_token_refresh_while_the_access_token_works_is_warned_and_retried() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    // Five minutes left, refreshed ten minutes before expiry: due at once.
    write_cache(&env, &fake.mint(), Duration::from_secs(300), true);
    let mut text = env.daemon_table();
    text.push_str("refresh_before = \"10m\"\n");
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess"));
    env.write_config_text(&text);
    fake.fault(OIDC_REFRESH, Fault::Status500);
    let daemon = Daemon::start(&env);

    // The old access token still gets role credentials; the failure is a warning, and the
    // token refresh is tried again within a minute rather than at the next role refresh.
    let p = daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));
    assert!(p["last_error"].is_null(), "{p}");
    wait_for(Duration::from_secs(10), "[sso-admin] in the file", || {
        env.section("sso-admin")
    });
    assert_eq!(fake.count(OIDC_REFRESH), 1);
    let warning = wait_for(Duration::from_secs(5), "the warning", || {
        daemon
            .log()
            .lines()
            .find(|l| l.contains("refresh the access token of SSO session \"acme\""))
            .map(str::to_owned)
    });
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("InternalServerException"), "{warning}");
    assert!(warning.contains("trying again at"), "{warning}");
    let next = humantime::parse_rfc3339(p["next_refresh_at"].as_str().expect("next refresh"))
        .expect("an RFC 3339 time");
    let left = next
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(left <= Duration::from_secs(61), "next refresh in {left:?}");

    // Once SSO-OIDC answers again the token is refreshed.
    fake.fault(OIDC_REFRESH, Fault::None);
    let out = env.cli(&["refresh", "sso-admin"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fake.count(OIDC_REFRESH), 2);
    check_no_leaks(&env, &fake, &daemon);
}

const FIVE: [&str; 5] = ["sso-admin", "sso-read", "sso-data", "sso-ml", "sso-ops"];

/// Five profiles of session "acme", fresh, with an hour left on the access token.
fn five_profiles(fake: &SsoFake, extra: &str, cache_left: Duration) -> (TestEnv, Daemon) {
    let env = sso_env(fake, "http://127.0.0.1:9");
    write_cache(&env, &fake.mint(), cache_left, true);
    let mut text = env.daemon_table();
    text.push_str(extra);
    for (i, name) in FIVE.iter().enumerate() {
        text.push_str(&sso_profile(name, &format!("Role{i}")));
    }
    env.write_config_text(&text);
    let daemon = Daemon::start(&env);
    for name in FIVE {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }
    (env, daemon)
}

#[test]
fn five_profiles_rejected_by_the_portal_together_share_one_token_refresh() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let (env, daemon) = five_profiles(&fake, "", Duration::from_secs(3600));
    assert_eq!(fake.count(OIDC_REFRESH), 0);

    // The portal stops accepting the access token: all five get 401 at once, and each asks
    // for a new token, but only the first refreshes; the others find its token in the cache.
    fake.expire_access_tokens();
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", show(&out));
    for name in FIVE {
        let p = daemon.profile(name).expect(name);
        assert_eq!(p["state"], "fresh", "{p}");
    }
    assert_eq!(
        fake.count(OIDC_REFRESH),
        1,
        "one CreateToken for the session"
    );
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn five_profiles_share_one_failing_token_refresh_and_its_backoff() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let (env, daemon) = five_profiles(&fake, "", Duration::from_secs(3600));

    // Every profile needs a new token and SSO-OIDC fails: one CreateToken per backoff step of
    // the session (about 1, 2, 4 s), not one per profile.
    fake.expire_access_tokens();
    fake.fault(OIDC_REFRESH, Fault::Status500);
    let t = Instant::now();
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for name in FIVE {
        let p = daemon.profile(name).expect(name);
        assert_eq!(p["state"], "retrying", "{p}");
        let error = p["last_error"].as_str().unwrap_or("");
        assert!(error.contains("InternalServerException"), "{p}");
    }
    if let Some(rest) = TEN_S.checked_sub(t.elapsed()) {
        std::thread::sleep(rest);
    }
    let during = fake.count(OIDC_REFRESH);
    println!("5 profiles, SSO-OIDC failing: {during} CreateToken calls in {TEN_S:?}");
    assert!(
        (1..=5).contains(&during),
        "{during} CreateToken calls in 10 s: as many as one profile would make, at most"
    );

    // The fault ends: all five recover by themselves.
    fake.fault(OIDC_REFRESH, Fault::None);
    for name in FIVE {
        daemon.wait_state(name, "fresh", Duration::from_secs(45));
    }
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn five_profiles_share_one_failed_token_refresh_while_the_token_works() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    fake.fault(OIDC_REFRESH, Fault::Status500);
    // Five minutes left, refreshed ten minutes before expiry: due at once, and the refresh
    // fails. The first profile tries; the other four use the old token until its retry time.
    let (env, daemon) = five_profiles(
        &fake,
        "refresh_before = \"10m\"\n",
        Duration::from_secs(300),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        fake.count(OIDC_REFRESH),
        1,
        "one CreateToken for the session"
    );
    let warnings = daemon
        .log()
        .lines()
        .filter(|l| l.contains("refresh the access token of SSO session \"acme\""))
        .count();
    assert_eq!(warnings, 1, "{}", daemon.log());

    // A refresh asked for by the user tries again at once, still once for the session.
    fake.fault(OIDC_REFRESH, Fault::None);
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fake.count(OIDC_REFRESH), 2);
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn refresh_token_rotated_by_another_tool_during_the_refresh_is_used() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let (env, daemon) = five_profiles(&fake, "", Duration::from_secs(3600));
    let before = read_cache(&env);

    // The portal rejects the access token, so the daemon refreshes it; meanwhile botocore
    // refreshes with the same refresh token, rotates it and rewrites the cache: SSO-OIDC
    // refuses the daemon's (now old) refresh token. The daemon re-reads the cache and uses
    // botocore's token instead of asking for a new login.
    fake.expire_access_tokens();
    let path = cache_path(&env);
    let rotated = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = rotated.clone();
    fake.rotate_behind_next_refresh(move |m| {
        write_cache_at(&path, &m, Duration::from_secs(3600), true);
        *seen.lock().unwrap() = Some(m);
    });
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", show(&out));
    let m = rotated
        .lock()
        .unwrap()
        .clone()
        .expect("the fake rotated the token");
    for name in FIVE {
        let p = daemon.profile(name).expect(name);
        assert_eq!(p["state"], "fresh", "{p}");
    }
    assert!(
        !daemon.log().contains("needs a new login"),
        "{}",
        daemon.log()
    );
    // Only the refused CreateToken: botocore's token is used as it is, and left in the cache.
    assert_eq!(fake.count(OIDC_REFRESH), 1);
    let after = read_cache(&env);
    assert_ne!(after["refreshToken"], before["refreshToken"]);
    assert_eq!(after["refreshToken"], m.refresh_token.as_str());
    assert_eq!(after["accessToken"], m.access_token.as_str());
    let bearers = fake.bearer_tokens();
    assert_eq!(bearers.last(), Some(&m.access_token));
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn a_stale_token_put_back_in_the_cache_is_replaced_by_the_newer_one() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    let m = fake.mint();
    write_cache(&env, &m, Duration::from_secs(3600), true);
    write_admin_config(&env);
    let daemon = Daemon::start(&env);
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));

    // The portal rejects the token: the daemon refreshes it (the refresh token rotates).
    fake.expire_access_tokens();
    let out = env.cli(&["refresh", "sso-admin"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fake.count(OIDC_REFRESH), 1);
    let newer = read_cache(&env);
    assert_ne!(newer["accessToken"], m.access_token.as_str());

    // A tool that read the cache before writes its stale copy back: the old access token
    // (refused by the portal) and the spent refresh token.
    write_cache(&env, &m, Duration::from_secs(3600), true);
    let out = env.cli(&["refresh", "sso-admin"]);
    assert!(out.status.success(), "{}", show(&out));
    let p = daemon.profile("sso-admin").unwrap();
    assert_eq!(p["state"], "fresh", "{p}");
    // The newer token in memory was used, not the spent refresh token…
    assert_eq!(fake.count(OIDC_REFRESH), 1);
    assert_eq!(
        fake.bearer_tokens().last().map(String::as_str),
        newer["accessToken"].as_str()
    );
    // …and put back in the file.
    let repaired = read_cache(&env);
    assert_eq!(repaired["accessToken"], newer["accessToken"]);
    assert_eq!(repaired["refreshToken"], newer["refreshToken"]);
    check_no_leaks(&env, &fake, &daemon);
}
