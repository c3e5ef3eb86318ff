//! Issue 17: `fresh` means delivered, and `credfresh wait`. A profile is `fresh` only once
//! its credentials are in the file; `wait` returns as soon as the named profiles' current
//! credentials are there, says which are not (state, last error) when it times out, and
//! exits 3 when no daemon runs.

use crate::support::{
    http, ini, initial_credentials, output_text, rfc3339, show, wait_until, write_file, AssumeRole,
    Daemon, Moto, TestEnv, BASE_PROFILE,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn profiles(n: usize) -> Vec<AssumeRole> {
    (0..n)
        .map(|i| {
            AssumeRole::new(&format!("r{i:02}"), &format!("Role{i}"), BASE_PROFILE).duration("1h")
        })
        .collect()
}

/// The access key id of `name` as the daemon serves it now (`GET /v1/credentials/NAME`).
fn served_key(daemon: &Daemon, env: &TestEnv, name: &str) -> String {
    let r = daemon.get(&format!("/v1/credentials/{name}"));
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    env.record_secret(v["SecretAccessKey"].as_str().unwrap());
    env.record_secret(v["SessionToken"].as_str().unwrap());
    v["AccessKeyId"].as_str().unwrap().to_owned()
}

/// Many profiles due together (more than the 16 fetched at once, so the writer batches them
/// over seconds): every `fresh` seen in a fast poll of the status is already in the file,
/// with the expiry the status shows, and those are the keys the daemon holds; `refresh`
/// answers only once the new credentials are in the file.
#[test]
fn every_fresh_profile_is_already_in_the_file() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let all = profiles(40);
    env.write_config(&all);
    let daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    let started = Instant::now();
    // The access key id each profile had in the file when it was first seen fresh.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut fetched_not_written = 0;
    let mut polls = 0;
    while seen.len() < all.len() {
        assert!(started.elapsed() < T, "not all fresh after {T:?}: {seen:?}");
        let Ok(r) = http::get(daemon.socket(), "/v1/status") else {
            continue;
        };
        polls += 1;
        let status: Value = serde_json::from_str(&r.body).unwrap();
        // The file is read after the status, so it is at least as new.
        let text = fs::read_to_string(&env.credentials).unwrap();
        for p in status["profiles"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            if p["state"] != "fresh" {
                fetched_not_written += usize::from(p["expires_at"].is_string());
                continue;
            }
            let section = ini::section(&text, name)
                .unwrap_or_else(|| panic!("{name} is fresh but not in the file:\n{p}\n{text}"));
            let expires = rfc3339(p["expires_at"].as_str().unwrap(), "expires_at");
            let written = rfc3339(&section["x_credfresh_expiration"], "x_credfresh_expiration");
            assert_eq!(
                written, expires,
                "{name}: the file holds other credentials:\n{p}"
            );
            for k in ["aws_secret_access_key", "aws_session_token"] {
                assert!(!section[k].is_empty(), "{name}: no {k}");
            }
            seen.entry(name.to_owned())
                .or_insert_with(|| section["aws_access_key_id"].clone());
        }
    }
    eprintln!(
        "{} profiles fresh after {:.1} s; {polls} status polls; {fetched_not_written} sightings of fetched credentials not yet written (shown as refreshing)",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    // The keys in the file when each was first fresh are the ones the daemon holds.
    for (name, key) in &seen {
        assert_eq!(&served_key(&daemon, &env, name), key, "{name}");
    }
    let metrics = daemon.get("/metrics").body;
    for p in &all {
        let line = format!("credfresh_refreshes_total{{profile=\"{}\"}} 1", p.name);
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }

    // A refresh of all answers once every new set is in the file.
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = fs::read_to_string(&env.credentials).unwrap();
    for p in &all {
        let key = served_key(&daemon, &env, &p.name);
        assert_ne!(seen[&p.name], key, "{}: not refreshed", p.name);
        assert_eq!(
            ini::section(&text, &p.name).unwrap()["aws_access_key_id"],
            key
        );
    }
    env.record_secrets(&text);
    env.assert_secrets_never_logged(&daemon);
}

/// Writes a config managing `all` whose credentials file is one botocore refuses (a section
/// twice), which the writer will not touch; returns its path and the text that fixes it.
fn refused_file(env: &TestEnv, all: &[AssumeRole]) -> (std::path::PathBuf, String) {
    let file = env.root().join("shared-creds");
    let good = format!(
        "{}\n[r00]\nregion = x\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n",
        initial_credentials()
    );
    write_file(&file, &format!("{good}\n[r00]\nk = again\n"), 0o600);
    env.write_config_with_file(&file, all);
    (file, good)
}

/// `wait` without a daemon exits 3; with one whose file cannot be written it times out
/// naming each profile, its state (`retrying`, not `fresh`) and the write error; once the
/// file can be written it returns 0 with the credentials there. An unknown name is a usage
/// error. No secret is ever printed.
#[test]
fn wait_needs_a_daemon_times_out_naming_what_is_missing_and_succeeds() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let all = profiles(2);
    let (file, good) = refused_file(&env, &all);

    let out = env.cli(&["wait", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(output_text(&out).contains("not running"), "{}", show(&out));

    let daemon = Daemon::start_with(&env, &[("RUST_LOG", "trace")]);
    let started = Instant::now();
    let out = env.cli(&["wait", "--timeout", "3s"]);
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for p in &all {
        let line = stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{}:", p.name)))
            .unwrap_or_else(|| panic!("{} not listed:\n{stderr}", p.name));
        assert!(
            line.contains("retrying")
                && line.contains("the credentials file was not updated")
                && line.contains("appears again"),
            "{line}"
        );
    }
    // Status agrees: fetched, held, served from memory, but not fresh.
    for p in &all {
        let s = daemon.profile(&p.name).unwrap();
        assert_eq!(s["state"], "retrying", "{s}");
        assert!(s["expires_at"].is_string(), "{s}");
    }
    let out = env.cli(&["wait", "nope", "r00"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        output_text(&out).contains("no managed profile named \"nope\""),
        "{}",
        show(&out)
    );

    // Fixed: `wait` returns as soon as the writer's retry has the credentials in the file.
    write_file(&file, &good, 0o600);
    let out = env.cli(&["wait", "r01", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = fs::read_to_string(&file).unwrap();
    for p in &all {
        let key = served_key(&daemon, &env, &p.name);
        assert_eq!(
            ini::section(&text, &p.name).unwrap()["aws_access_key_id"],
            key
        );
    }
    wait_until(T, "both fresh", || {
        all.iter()
            .all(|p| daemon.profile(&p.name).unwrap()["state"] == "fresh")
    });
    let out = env.cli(&["wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("r00, r01"),
        "{}",
        show(&out)
    );
    env.record_secrets(&text);
    env.assert_secrets_never_logged(&daemon);
}

/// 70 `credfresh wait` clients for a profile that never becomes ready (the file is one
/// botocore refuses, so the writer leaves it) take at most a few of the control socket's 64
/// connections: `credential-process` and `status` answer meanwhile, no waiter fails for want
/// of a connection, and every one returns 0 once the file is fixed. (Each waiter used to hold
/// a connection for 30 s at a time, so 64 of them starved everything else.)
#[test]
fn many_waiters_never_starve_credential_delivery() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let (file, good) = refused_file(&env, &profiles(1));
    let daemon = Daemon::start(&env);
    wait_until(T, "r00 fetched (held, not delivered)", || {
        daemon.profile("r00").unwrap()["expires_at"].is_string()
    });

    let mut waiters: Vec<std::process::Child> = (0..70)
        .map(|_| {
            env.command(&["wait", "r00", "--timeout", "120s"])
                .spawn()
                .expect("start credfresh wait")
        })
        .collect();
    // Setup, not an assertion: give the waiters time to connect.
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        for args in [&["credential-process", "r00"][..], &["status"][..]] {
            let out = crate::delivery::secret_cli(&env, args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", show(&out));
            if args[0] == "credential-process" {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                env.record_secret(v["SecretAccessKey"].as_str().unwrap());
                env.record_secret(v["SessionToken"].as_str().unwrap());
            }
        }
    }
    assert!(
        waiters.iter_mut().all(|w| w.try_wait().unwrap().is_none()),
        "a waiter gave up while nothing was ready"
    );

    write_file(&file, &good, 0o600);
    for w in waiters {
        let out = w.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("ready: r00"),
            "{}",
            show(&out)
        );
    }
    env.record_secrets(&fs::read_to_string(&file).unwrap());
    env.assert_secrets_never_logged(&daemon);
}
