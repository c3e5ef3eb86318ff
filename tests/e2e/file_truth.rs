//! The state a profile shows is true of the credentials file (outside tester's F1–F4): a file
//! replaced by a directory, or one that cannot be written, shows as `retrying` with the write
//! error in every profile (also through new fetches) and `credfresh wait` does not count
//! them; repaired, it is written at once, not at the end of the writer's backoff. A wait in
//! flight at shutdown is answered `503`, and `credfresh wait` outlives a daemon restart
//! within its `--timeout` (exit 3 when no daemon answers again).

use crate::support::{
    ini, initial_credentials, output_text, show, wait_until, write_file, AssumeRole, Daemon, Moto,
    TestEnv, BASE_PROFILE,
};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const NOT_WRITTEN: &str = "the credentials file was not updated: ";

fn profiles(n: usize, duration: &str) -> Vec<AssumeRole> {
    (0..n)
        .map(|i| {
            AssumeRole::new(&format!("f{i}"), &format!("Role{i}"), BASE_PROFILE).duration(duration)
        })
        .collect()
}

/// Every profile's state and `last_error` in one status reply.
fn states(daemon: &Daemon) -> Vec<(String, String, Option<String>)> {
    let status: Value = daemon.status();
    status["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
                p["last_error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn all_show_the_write_error(daemon: &Daemon) -> bool {
    states(daemon).iter().all(|(_, state, err)| {
        state == "retrying" && err.as_deref().is_some_and(|e| e.starts_with(NOT_WRITTEN))
    })
}

/// A credentials file botocore refuses (a section twice): the writer will not touch it.
fn refused_and_good() -> (String, String) {
    let good = format!(
        "{}\n[f0]\nregion = x\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n",
        initial_credentials()
    );
    (format!("{good}\n[f0]\nk = again\n"), good)
}

/// A daemon (with `vars`) for profile `f0` whose credentials file botocore refuses, once
/// `f0` shows the write error; the file and the text that repairs it.
fn daemon_with_refused_file(env: &TestEnv, vars: &[(&str, &str)]) -> (Daemon, PathBuf, String) {
    let file = env.root().join("shared-creds");
    let (bad, good) = refused_and_good();
    write_file(&file, &bad, 0o600);
    env.write_config_with_file(&file, &profiles(1, "1h"));
    let daemon = Daemon::start_with(env, vars);
    wait_until(T, "f0 retrying with the write error", || {
        all_show_the_write_error(&daemon)
    });
    (daemon, file, good)
}

#[test]
fn a_file_replaced_by_a_directory_shows_in_status_and_wait_until_it_is_written() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&profiles(2, "1h"));
    let daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    let out = env.cli(&["wait", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    env.record_secrets(&fs::read_to_string(&env.credentials).unwrap());

    let bak = env.credentials.with_file_name("cred.bak");
    fs::rename(&env.credentials, &bak).unwrap();
    fs::create_dir(&env.credentials).unwrap();
    // The file watch hands the credentials to the writer, which cannot write them: every
    // profile shows it (before the fix: `fresh` until the next refresh, 45 min away).
    wait_until(T, "both profiles retrying with the write error", || {
        all_show_the_write_error(&daemon)
    });
    let out = env.cli(&["wait", "--timeout", "0s"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains(NOT_WRITTEN.trim_end()),
        "{}",
        show(&out)
    );

    // Repaired: written at once, fresh again.
    fs::remove_dir(&env.credentials).unwrap();
    let out = env.cli(&["wait", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = fs::read_to_string(&env.credentials).unwrap();
    for name in ["f0", "f1"] {
        assert!(ini::section(&text, name).is_some(), "{name}:\n{text}");
    }
    wait_until(T, "both fresh", || {
        states(&daemon)
            .iter()
            .all(|(_, s, e)| s == "fresh" && e.is_none())
    });
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn a_new_fetch_while_the_file_cannot_be_written_keeps_showing_the_write_error() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let (daemon, file, good) = daemon_with_refused_file(&env, &[("RUST_LOG", "trace")]);
    // Let the writer's backoff grow: four failed attempts, the next one seconds away.
    wait_until(T, "four failed writes", || {
        daemon.get("/metrics").body.lines().any(|l| {
            l.strip_prefix("credfresh_file_write_failures_total ")
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| n >= 4.0)
        })
    });
    // A refresh while the file is broken: every status seen meanwhile still says why the
    // file was not updated (before the fix: `refreshing` with no error until the writer's
    // next retry, and the refresh answered only then).
    let watching = std::sync::atomic::AtomicBool::new(true);
    let seen = std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let mut seen = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                seen.extend(states(&daemon));
            }
            seen
        });
        let started = Instant::now();
        let out = env.cli(&["refresh", "f0"]);
        let took = started.elapsed();
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            output_text(&out).contains(NOT_WRITTEN.trim_end()),
            "{}",
            show(&out)
        );
        assert!(
            took < Duration::from_secs(5),
            "refresh answered after {took:?}"
        );
        poller.join().unwrap()
    });
    assert!(!seen.is_empty());
    for (name, state, err) in &seen {
        assert!(
            state == "retrying" && err.as_deref().is_some_and(|e| e.starts_with(NOT_WRITTEN)),
            "{name}: {state} {err:?} in {} polls",
            seen.len()
        );
    }
    // Repaired: the file watch hands the credentials over and the writer writes them at
    // once, not at the end of its backoff.
    write_file(&file, &good, 0o600);
    let out = env.cli(&["wait", "--timeout", "4s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = fs::read_to_string(&file).unwrap();
    assert!(ini::section(&text, "f0").is_some(), "{text}");
    env.record_secrets(&text);
    env.assert_secrets_never_logged(&daemon);
}

/// `POST path` with a JSON `body`, on a raw connection; the whole reply (empty when the
/// connection is closed without one).
fn post(socket: &Path, path: &str, body: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw
}

/// Stops `daemon` with SIGTERM (exit 0); the `POST /v1/wait` in flight on `wait` gets `503`.
fn stopped_answering_503(daemon: &mut Daemon, wait: std::thread::JoinHandle<String>) {
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(daemon.wait_exit(T).success());
    let reply = wait.join().unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 503") && reply.contains("shutting down"),
        "{reply:?}"
    );
}

/// With STS hanging (the profile stays `refreshing`), a `POST /v1/wait` and a refresh in
/// flight at SIGTERM both get their answers before the daemon exits (before the fix: the
/// connections were closed with no reply).
#[test]
fn requests_in_flight_at_shutdown_are_answered() {
    let sts = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let env = TestEnv::with_sts(&format!("http://{}", sts.local_addr().unwrap()));
    env.write_config(&profiles(1, "1h"));
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("f0", "refreshing", T);
    let ask = |path: &'static str, body: &'static str| {
        let socket = env.socket.clone();
        std::thread::spawn(move || post(&socket, path, body))
    };
    let wait = ask("/v1/wait", "{}");
    let refresh = ask("/v1/profiles/f0/refresh", "");
    // Both are waiting on the daemon (nothing can finish while STS hangs).
    std::thread::sleep(Duration::from_millis(1500));
    stopped_answering_503(&mut daemon, wait);
    let reply = refresh.join().unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200")
            && reply.contains("the daemon stopped before the refresh finished"),
        "{reply:?}"
    );
}

#[test]
fn a_wait_in_flight_at_shutdown_gets_503_and_credfresh_wait_outlives_a_restart() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let (mut daemon, file, good) = daemon_with_refused_file(&env, &[]);
    let waiter = |timeout: &str| {
        env.command(&["wait", "f0", "--timeout", timeout])
            .spawn()
            .unwrap()
    };
    let short = waiter("5s");
    let long = waiter("60s");
    let socket = env.socket.clone();
    let raw = std::thread::spawn(move || post(&socket, "/v1/wait", r#"{"timeout_seconds": 25}"#));
    // All three are waiting on the daemon (nothing there to count yet).
    std::thread::sleep(Duration::from_millis(1500));
    stopped_answering_503(&mut daemon, raw);

    // No daemon comes back within 5 s: exit 3, saying so.
    let out = short.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("lost the daemon") && text.contains("no daemon answered again"),
        "{text}"
    );
    // A restarted daemon (with a repaired file) answers the other one within its timeout.
    write_file(&file, &good, 0o600);
    let daemon = Daemon::start(&env);
    let out = long.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("ready: f0") && text.contains("answers again"),
        "{text}"
    );
    env.record_secrets(&fs::read_to_string(&file).unwrap());
    env.assert_secrets_never_logged(&daemon);
}
