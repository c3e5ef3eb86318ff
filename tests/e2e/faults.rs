//! STS fault injection through `tests/py/fault_proxy.py`: for each fault the state and
//! `last_error` are right, retries back off (requests are counted: no storm), permanent errors
//! are not hammered, the old credentials stay in the file, nothing invalid is written, and the
//! daemon recovers by itself when the fault ends.

use crate::support::fault_proxy::FaultProxy;
use crate::support::{wait_for, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::time::{Duration, Instant};

struct Case {
    mode: &'static str,
    state: &'static str,
    error: &'static str,
    /// Most requests allowed while the fault lasts `window` (the forced one included).
    max_requests: u64,
    window: Duration,
}

fn run(case: Case) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let env = TestEnv::with_sts(&proxy.endpoint());
    env.write_config(&[AssumeRole::new("f", "FaultRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("f", "fresh", Duration::from_secs(30));
    let file_before = wait_for(Duration::from_secs(10), "the f section", || {
        env.section("f")
    });

    proxy.fault(case.mode, None);
    let start = proxy.requests();
    let t = Instant::now();
    let out = env.cli(&["refresh", "f"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: refresh must report the failure",
        case.mode
    );
    let status = daemon.profile("f").expect("f");
    assert_eq!(status["state"], case.state, "{}: {status}", case.mode);
    let error = status["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains(case.error),
        "{}: last_error {error:?}",
        case.mode
    );
    assert!(
        !status["expires_at"].is_null(),
        "{}: the old expiry is still reported",
        case.mode
    );

    // Let the backoff run for the rest of the window and count what reached "STS".
    if let Some(rest) = case.window.checked_sub(t.elapsed()) {
        std::thread::sleep(rest);
    }
    let during = proxy.requests() - start;
    println!(
        "fault {}: state {}, {during} requests in {:?}, last_error {error:?}",
        case.mode, case.state, case.window
    );
    assert!(
        during >= 1 && during <= case.max_requests,
        "{}: {during} requests in {:?}",
        case.mode,
        case.window
    );
    assert_eq!(
        env.section("f").as_ref(),
        Some(&file_before),
        "{}: old credentials kept",
        case.mode
    );

    // The fault ends: back to fresh by itself (no refresh command), new credentials written.
    proxy.fault("pass", None);
    if case.state != "error" {
        daemon.wait_state("f", "fresh", Duration::from_secs(45));
    } else {
        // Permanent errors wait a minute between attempts; a user who fixed the policy refreshes.
        let out = env.cli(&["refresh", "f"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let recovered = daemon.profile("f").expect("f");
    assert!(recovered["last_error"].is_null(), "{recovered}");
    let after = wait_for(
        Duration::from_secs(10),
        "new credentials in the file",
        || {
            env.section("f")
                .filter(|s| s["aws_access_key_id"] != file_before["aws_access_key_id"])
        },
    );
    assert!(after["x_credfresh_expiration"] > file_before["x_credfresh_expiration"]);
    env.assert_secrets_never_logged(&daemon);
}

const TEN_S: Duration = Duration::from_secs(10);

#[test]
fn sts_500() {
    // Attempts at about 0, 1, 3, 7 s (±25%): at most 5 in 10 s.
    run(Case {
        mode: "status500",
        state: "retrying",
        error: "InternalFailure",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_503() {
    run(Case {
        mode: "status503",
        state: "retrying",
        error: "ServiceUnavailable",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_throttling() {
    run(Case {
        mode: "throttle",
        state: "retrying",
        error: "Throttling",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_expired_source_token() {
    run(Case {
        mode: "expired_token",
        state: "retrying",
        error: "ExpiredToken",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_access_denied_is_not_hammered() {
    run(Case {
        mode: "access_denied",
        state: "error",
        error: "AccessDenied",
        max_requests: 1,
        window: TEN_S,
    });
}

#[test]
fn sts_garbage_body() {
    run(Case {
        mode: "garbage",
        state: "retrying",
        error: "could not be read",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_answer_without_expiration() {
    // Issue 14: the message said "expired at 1970-01-01T00:00:00Z".
    run(Case {
        mode: "no_expiration",
        state: "retrying",
        error: "STS AssumeRole response has no Expiration",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_closes_mid_response() {
    run(Case {
        mode: "close",
        state: "retrying",
        error: "STS",
        max_requests: 5,
        window: TEN_S,
    });
}

#[test]
fn sts_hangs_past_the_timeout() {
    // One attempt hangs until the 25 s attempt timeout; then backoff.
    run(Case {
        mode: "hang",
        state: "retrying",
        error: "did not answer in time",
        max_requests: 3,
        window: Duration::from_secs(30),
    });
}
