//! Secrets stay secret at every log level, including the SDK's and hyper's trace output, and in
//! every reply that is not `/v1/credentials`.

use crate::support::{AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use nix::sys::signal::Signal;
use std::time::Duration;

#[test]
fn no_secret_in_trace_logs_status_or_metrics() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[
        AssumeRole::new("outer", "OuterRole", "inner").duration("1h"),
        AssumeRole::new("inner", "InnerRole", BASE_PROFILE).duration("1h"),
    ]);
    let mut daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    daemon.wait_state("outer", "fresh", Duration::from_secs(30));
    for _ in 0..3 {
        // Each round signs STS calls with the previous session token (the chain).
        let out = env.cli(&["refresh"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.read_credentials();
    }
    for path in ["/v1/status", "/v1/profiles/outer", "/metrics", "/healthz"] {
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
    env.assert_secrets_never_logged(&daemon);
}
