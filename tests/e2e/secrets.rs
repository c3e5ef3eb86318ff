//! Secrets stay secret at every log level (the SDK's and hyper's wire-level trace output is
//! capped, and every line is scrubbed of the secrets the daemon holds or has held), in
//! every reply that is not `/v1/credentials`, and in the CLI's error output. The secrets
//! searched for are every one STS issued (recorded by the proxy in front of moto), not only
//! those still in the credentials file at the end.

use crate::support::fault_proxy::FaultProxy;
use crate::support::{output_text, show, AssumeRole, Daemon, Moto, TestEnv, ACCOUNT, BASE_PROFILE};
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
    // Trace was asked for: the SDK's debug output is there, its wire-level trace output
    // (requests with their headers and bodies) is held back whatever the filter says.
    let log = daemon.log();
    assert!(
        log.contains("beginning attempt #1"),
        "trace logging was not on:\n{log}"
    );
    assert!(
        !log.contains("transmitting request"),
        "the SDK's wire-level trace is on:\n{log}"
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

/// One non-UTF-8 byte in the credentials file: the SDK's profile parser would print the whole
/// file as decimal bytes (`FromUtf8Error { bytes: [35, 32, …] }`) and read it as empty.
/// Instead the profile fails with a message naming the file and the bad byte's line, and no
/// secret of the file shows in any form (text, decimal or hex bytes), at the default level
/// or at trace.
#[test]
fn non_utf8_credentials_file_is_named_never_dumped() {
    for rust_log in ["", "trace"] {
        let moto = Moto::start();
        let env = TestEnv::new(&moto);
        env.write_config(&[AssumeRole::new("p1", "Role1", BASE_PROFILE).duration("1h")]);
        let mut daemon = Daemon::start_with(&env, &[("RUST_LOG", rust_log)]);
        daemon.wait_state("p1", "fresh", Duration::from_secs(30));
        let good = std::fs::read(&env.credentials).expect("the credentials file");
        env.record_secrets(&String::from_utf8_lossy(&good));
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let mut bad = good.clone();
        bad.extend_from_slice(b"# caf\xe9\n");
        std::fs::write(&env.credentials, &bad).expect("append to the credentials file");

        let out = env.cli(&["refresh"]);
        assert_eq!(out.status.code(), Some(1), "{rust_log:?}: {}", show(&out));
        let p = daemon.profile("p1").expect("p1");
        let error = p["last_error"].as_str().unwrap_or_default();
        let path = env.credentials.display().to_string();
        for part in [
            path.as_str(),
            "is not UTF-8",
            &format!("line {line}, column 6"),
        ] {
            assert!(error.contains(part), "{rust_log:?}: {part:?} not in {p}");
        }
        assert!(!error.contains("was not defined"), "{rust_log:?}: {p}");
        assert!(
            daemon.log().contains("is not UTF-8"),
            "{rust_log:?}: the failure is not logged:\n{}",
            daemon.log()
        );
        assert!(!daemon.log().contains("FromUtf8Error"), "{rust_log:?}");

        // The file is fixed: the profile recovers, and the leak check can read it.
        std::fs::write(&env.credentials, &good).expect("restore the credentials file");
        let out = env.cli(&["refresh"]);
        assert!(out.status.success(), "{rust_log:?}: {}", show(&out));
        daemon.signal(Signal::SIGTERM);
        daemon.wait_exit(Duration::from_secs(10));
        env.assert_secrets_never_logged(&daemon);
    }
}

/// A web identity token with characters a form body escapes (`+`, `/`, `=`).
const WEB_IDENTITY_TOKEN: &str = "Opaque+Tok/With=Pad+SecretWebIdentityTokenNeverShown/e2e==";

/// STS answers with an error whose message quotes the request's session token header and
/// its form body (the web identity token, percent-encoded): the daemon's status, profile and
/// refresh replies, `/metrics`, the CLI's output and `credfresh check`'s lines (a process
/// of its own, with credentials from the daemon or fetched directly) show `***` where the
/// secrets were, as the log does.
#[test]
fn secrets_echoed_in_remote_errors_are_masked_in_replies_and_output() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let env = TestEnv::with_sts(&proxy.endpoint());
    env.set_var("RUST_LOG", "trace");
    let token_file = env.root().join("token");
    crate::support::write_file(&token_file, WEB_IDENTITY_TOKEN, 0o600);
    env.record_secret(WEB_IDENTITY_TOKEN);
    let mut text = env.write_config(&[
        AssumeRole::new("src", "SrcRole", BASE_PROFILE).duration("1h"),
        AssumeRole::new("dep", "DepRole", "src").duration("1h"),
    ]);
    text.push_str(&format!(
        "\n[[profile]]\nname = \"wi\"\nkind = \"web_identity\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/PodRole\"\ntoken_file = \"{}\"\nduration = \"1h\"\n",
        token_file.display()
    ));
    env.write_config_text(&text);
    let mut daemon = Daemon::start(&env);
    for name in ["src", "dep", "wi"] {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }

    proxy.fault("echo", None);
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // The echo reached the daemon: each profile's error quotes it, masked.
    for name in ["dep", "wi"] {
        let p = daemon.profile(name).expect(name);
        let error = p["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("InvalidClientTokenId") && error.contains("***"),
            "{name}: {p}"
        );
    }
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["status", "dep"],
        &["status", "wi"],
        &["refresh", "dep"],
        &["refresh", "wi"],
    ] {
        env.cli(args);
    }
    for path in [
        "/v1/status",
        "/v1/profiles/dep",
        "/v1/profiles/wi",
        "/metrics",
    ] {
        let reply = daemon.get(path);
        env.note_text(path, &reply.body);
    }
    // check gets dep's credentials from the daemon; its GetCallerIdentity is echoed too.
    let out = env.cli(&["check", "dep"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains("InvalidClientTokenId"),
        "{}",
        show(&out)
    );
    daemon.signal(Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(10));

    // No daemon: the CLI and check fetch directly, and print the echoed errors themselves.
    for args in [
        &["credential-process", "wi"][..],
        &["credential-process", "dep"],
        &["check", "wi"],
        &["check"],
    ] {
        let out = env.cli(args);
        assert_ne!(out.status.code(), Some(0), "{}", show(&out));
        assert!(
            output_text(&out).contains("InvalidClientTokenId"),
            "{args:?}: {}",
            show(&out)
        );
    }
    for secret in proxy.issued_secrets() {
        env.record_secret(&secret);
    }
    env.assert_secrets_never_logged(&daemon);
}
