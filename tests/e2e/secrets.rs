//! Secrets stay secret at every log level, including the SDK's and hyper's trace output, in
//! every reply that is not `/v1/credentials`, and in the CLI's error output. The secrets
//! searched for are every one STS issued (recorded by the proxy in front of moto), not only
//! those still in the credentials file at the end.

use crate::support::fault_proxy::FaultProxy;
use crate::support::{AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use nix::sys::signal::Signal;
use std::time::Duration;

#[test]
fn no_secret_in_trace_logs_status_metrics_or_errors() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let env = TestEnv::with_sts(&proxy.endpoint());
    env.write_config(&[
        AssumeRole::new("outer", "OuterRole", "inner").duration("1h"),
        AssumeRole::new("inner", "InnerRole", BASE_PROFILE).duration("1h"),
    ]);
    let mut daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    daemon.wait_state("outer", "fresh", Duration::from_secs(30));
    for _ in 0..3 {
        // Each round signs STS calls with the previous session token (the chain). The file
        // is not read in between: the secrets it held are known from the proxy's record.
        let out = env.cli(&["refresh"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Failures: their messages reach the log, status and the CLI's error output.
    for fault in ["expired_token", "access_denied", "garbage"] {
        proxy.fault(fault, None);
        let out = env.cli(&["refresh", "outer"]);
        assert_eq!(out.status.code(), Some(1), "{fault}");
        proxy.fault("pass", None);
    }
    let out = env.cli(&["refresh"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["status", "outer"],
        &["refresh", "nope"],
        &["credential-process", "nope"],
        &["validate"],
    ] {
        env.cli(args);
    }
    for path in [
        "/v1/status",
        "/v1/profiles/outer",
        "/metrics",
        "/healthz",
        "/v1/nope",
    ] {
        let reply = daemon.get(path);
        env.note_text(path, &reply.body);
    }
    daemon.signal(Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(10));
    assert!(
        daemon.log().lines().count() > 1000,
        "trace logging was not on:\n{}",
        daemon.log()
    );

    let issued = proxy.issued_secrets();
    // 5 successful rounds of 2 profiles (start + 3 + 1), a secret key and a token each.
    assert!(issued.len() >= 20, "only {} secrets issued", issued.len());
    for secret in &issued {
        env.record_secret(secret);
    }
    env.assert_secrets_never_logged(&daemon);
    eprintln!(
        "secrets: {} issued by STS, 0 in {} log lines, replies or CLI output",
        issued.len(),
        daemon.log().lines().count()
    );
}
