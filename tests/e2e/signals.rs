//! Test 7: SIGTERM/SIGINT end the daemon cleanly; SIGHUP reloads, rejecting a broken config.

use crate::support::{
    free_port, output_text, show, wait_until, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use nix::sys::signal::Signal;
use std::time::Duration;

fn profile_names(daemon: &Daemon) -> Vec<String> {
    daemon.status()["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sighup_rejects_broken_config_applies_valid_one_and_sigterm_exits_0() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let first = AssumeRole::new("first", "FirstRole", BASE_PROFILE).duration("1h");
    env.write_config(std::slice::from_ref(&first));
    let mut daemon = Daemon::start(&env);
    let fresh = daemon.wait_state("first", "fresh", Duration::from_secs(30));

    // A broken config: SIGHUP logs why, and the old config keeps running.
    let mut broken = env.daemon_table();
    broken.push_str(
        "\n[[profile]]\nname = \"first\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/FirstRole\"\nsource_profile = \"base\"\nduration = \"forever-ish\"\n",
    );
    let bad_line = broken
        .lines()
        .position(|l| l.starts_with("duration"))
        .unwrap()
        + 1;
    env.write_config_text(&broken);
    let logged_before = daemon.log().len();
    daemon.signal(Signal::SIGHUP);
    let location = format!("{}:{bad_line}", env.config.display());
    wait_until(
        Duration::from_secs(10),
        "the log to name the rejected config",
        || daemon.log()[logged_before..].contains(&location),
    );
    assert!(
        daemon.try_exit().is_none(),
        "the daemon exited on a broken config:\n{}",
        daemon.log()
    );
    assert_eq!(profile_names(&daemon), ["first"]);
    let still = daemon.profile("first").unwrap();
    assert_eq!(still["state"], "fresh", "{still}");
    assert_eq!(still["expires_at"], fresh["expires_at"], "{still}");

    // `credfresh reload` with the broken config is refused too, saying where.
    let out = env.cli(&["reload"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(output_text(&out).contains(&location), "{}", show(&out));
    assert!(daemon.try_exit().is_none());

    // A valid changed config: the added profile appears and is fetched.
    env.write_config(&[
        first.clone(),
        AssumeRole::new("added", "AddedRole", BASE_PROFILE).duration("1h"),
    ]);
    daemon.signal(Signal::SIGHUP);
    daemon.wait_state("added", "fresh", Duration::from_secs(30));
    wait_until(Duration::from_secs(10), "[added] in the file", || {
        env.section("added").is_some()
    });
    let kept = daemon.profile("first").unwrap();
    assert_eq!(
        kept["expires_at"], fresh["expires_at"],
        "an unchanged profile was refetched on reload: {kept}"
    );

    // Removing a profile forgets it but keeps its section in the file (no `prune`).
    let added = env.section("added").unwrap();
    env.write_config(std::slice::from_ref(&first));
    daemon.signal(Signal::SIGHUP);
    wait_until(Duration::from_secs(10), "added to leave the status", || {
        profile_names(&daemon) == ["first"]
    });
    assert_eq!(
        env.section("added"),
        Some(added),
        "removing a profile from the config changed its section"
    );

    // SIGTERM: exit 0, socket gone.
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}:\n{}",
        daemon.log()
    );
    assert!(
        !env.socket.exists(),
        "the socket {} is still there after SIGTERM",
        env.socket.display()
    );
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn sigint_exits_0_and_removes_socket_while_sts_is_down() {
    // Nothing listens on this port: the profile keeps failing while we stop the daemon.
    let env = TestEnv::with_sts(&format!("http://127.0.0.1:{}", free_port()));
    env.write_config(&[AssumeRole::new("down", "DownRole", BASE_PROFILE).duration("1h")]);
    let mut daemon = Daemon::start(&env);
    wait_until(Duration::from_secs(20), "a failed attempt", || {
        !daemon.log_lines("refresh failed", "down").is_empty()
    });
    let status = daemon.profile("down").unwrap();
    assert_ne!(status["state"], "fresh", "{status}");
    daemon.signal(Signal::SIGINT);
    let exit = daemon.wait_exit(Duration::from_secs(15));
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status {exit}:\n{}",
        daemon.log()
    );
    assert!(
        !env.socket.exists(),
        "the socket is still there after SIGINT"
    );
    assert!(
        env.section("down").is_none(),
        "credentials written without STS"
    );
}
