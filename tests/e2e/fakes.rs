//! The harness itself: the venv script and moto work on their own, before any daemon.

use crate::support::{self, assert_secrets_absent, ensure_venv, show, Moto, TestEnv};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn caller_identity(env: &TestEnv) -> Value {
    let out = env.python(
        "caller_identity.py",
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAE2EHARNESS000001"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "e2eHarnessSecret00000000000000000000000",
            ),
        ],
    );
    assert!(
        out.status.success(),
        "caller_identity.py failed:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).expect("caller_identity.py prints JSON")
}

#[test]
fn venv_script_is_idempotent_and_moto_answers_sts() {
    let venv = ensure_venv();

    // A second run finds the stamp and returns at once, printing the same path.
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(support::repo_root().join("scripts/ensure-venv.sh"))
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run ensure-venv.sh");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        venv.display().to_string()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a second ensure-venv.sh run took {:?}",
        started.elapsed()
    );

    let mut moto = Moto::start();
    let env = TestEnv::new(&moto);
    let id = caller_identity(&env);
    assert_eq!(id["Account"], support::ACCOUNT, "{id}");
    assert_eq!(id["AccessKeyId"], "AKIAE2EHARNESS000001", "{id}");

    // Stopped, the port refuses connections; restarted on the same port, moto answers again.
    let port = moto.port();
    moto.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    moto.restart();
    assert_eq!(moto.port(), port);
    assert_eq!(caller_identity(&env)["Account"], support::ACCOUNT);
}

#[test]
fn secret_check_catches_a_leak() {
    let secrets = BTreeSet::from(["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY".to_owned()]);
    let clean = [(
        "a log",
        "refreshed profile=x expires_at=2026-11-23T10:00:00Z".to_owned(),
    )];
    assert_secrets_absent(&secrets, &clean);
    let leaky = [(
        "a log",
        "debug: key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY".to_owned(),
    )];
    let caught = std::panic::catch_unwind(|| assert_secrets_absent(&secrets, &leaky));
    let message = caught.expect_err("the leak was not caught");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("a log"), "{message}");
    assert!(
        !message.contains("MDENG"),
        "the check's own message shows the secret: {message}"
    );
}
