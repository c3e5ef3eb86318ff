//! Running as a service: the systemd notify protocol, the watchdog, config reload on file
//! change, the systemd unit and the launchd agent.

use crate::support::{
    repo_root, wait_for, wait_until, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

/// Collects datagrams sent to a NOTIFY_SOCKET the test owns.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(env: &TestEnv) -> NotifySocket {
        let path = env.root().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind NOTIFY_SOCKET");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set timeout");
        NotifySocket {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Waits for a message containing `line` (as one of its lines) and returns that message.
    fn expect(&mut self, line: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.seen.iter().position(|m| m.lines().any(|l| l == line)) {
                return self.seen.remove(m);
            }
            assert!(
                Instant::now() < deadline,
                "no {line:?} from the daemon within {timeout:?}; got {:?}",
                self.seen
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.seen
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn speaks_the_systemd_notify_protocol_with_watchdog() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("svc", "SvcRole", BASE_PROFILE).duration("1h")]);
    let mut notify = NotifySocket::bind(&env);
    let path = notify.path.display().to_string();
    let mut daemon = Daemon::start_with(
        &env,
        &[
            ("NOTIFY_SOCKET", path.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    notify.expect("READY=1", Duration::from_secs(10));
    notify.expect("STATUS=1 fresh", Duration::from_secs(30));
    // Pings at half the interval, only while the scheduler answers.
    for _ in 0..3 {
        notify.expect("WATCHDOG=1", Duration::from_secs(5));
    }

    daemon.signal(Signal::SIGHUP);
    let reloading = notify.expect("RELOADING=1", Duration::from_secs(10));
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{reloading:?}");
    notify.expect("READY=1", Duration::from_secs(10));

    daemon.signal(Signal::SIGTERM);
    notify.expect("STOPPING=1", Duration::from_secs(10));
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    notify.drain();
}

#[test]
fn config_file_changes_apply_without_a_signal_and_bad_ones_are_reported() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let first = AssumeRole::new("first", "FirstRole", BASE_PROFILE).duration("1h");
    env.write_config(std::slice::from_ref(&first));
    let daemon = Daemon::start(&env);
    let before = daemon.wait_state("first", "fresh", Duration::from_secs(30));

    // Add a profile by editing the file, the way an editor saves it (write + rename).
    let second = AssumeRole::new("second", "SecondRole", BASE_PROFILE).duration("1h");
    env.write_config(&[first.clone(), second.clone()]);
    daemon.wait_state("second", "fresh", Duration::from_secs(30));
    let after = daemon.profile("first").expect("first still managed");
    assert_eq!(
        after["last_refresh_at"], before["last_refresh_at"],
        "an unchanged profile keeps its credentials and schedule"
    );

    // A broken edit: reported in status and the log; the old config keeps running.
    let mut broken = env.daemon_table();
    broken.push_str("\n[[profile]]\nname = \"x\"\nkind = \"assume_role\"\nrole_arn = \"not-an-arn\"\nsource_profile = \"base\"\n");
    env.write_config_text(&broken);
    let error = wait_for(Duration::from_secs(10), "config_error in status", || {
        daemon.status()["config_error"].as_str().map(str::to_owned)
    });
    assert!(error.contains("config.toml:"), "{error}");
    assert!(error.contains("role_arn"), "{error}");
    assert!(
        daemon.log().contains("new config rejected"),
        "{}",
        daemon.log()
    );
    let table = String::from_utf8_lossy(&env.cli(&["status"]).stdout).into_owned();
    assert!(table.contains("config error:"), "{table}");
    assert!(
        daemon.profile("second").is_some(),
        "old config still served"
    );

    // Fixed again: the error clears.
    env.write_config(&[first, second]);
    wait_until(Duration::from_secs(10), "config_error cleared", || {
        daemon
            .status()
            .get("config_error")
            .is_none_or(|e| e.is_null())
    });
}

#[test]
fn systemd_unit_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit =
        std::fs::read_to_string(repo_root().join("systemd/credfresh.service")).expect("read unit");
    for key in [
        "Type=notify",
        "ExecReload=",
        "Restart=on-failure",
        "WatchdogSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=%h/.aws",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(key)),
            "the unit lacks {key}"
        );
    }
    // verify checks that ExecStart is executable: point it at the binary under test.
    let unit = unit.replace("/usr/bin/credfresh", env!("CARGO_BIN_EXE_credfresh"));
    let path = dir.path().join("credfresh.service");
    std::fs::write(&path, unit).expect("write unit");
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).expect("runtime dir");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .arg(&path)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("run systemd-analyze (install the distribution's systemd package)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn launchd_agent_parses() {
    let plist = repo_root().join("packaging/macos/dev.credfresh.plist");
    let script = r#"
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
assert p["Label"] == "dev.credfresh", p
assert p["ProgramArguments"][-1] == "daemon", p
assert p["ProgramArguments"][0].endswith("/credfresh"), p
assert p["RunAtLoad"] is True, p
assert p["KeepAlive"], p
assert p["StandardErrorPath"] and p["StandardOutPath"], p
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&plist)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logs_suit_journald_and_log_collectors() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let profile = AssumeRole::new("logged", "LogRole", BASE_PROFILE).duration("1h");

    // Under journald: no timestamps (the journal adds its own), no colour codes.
    env.write_config(std::slice::from_ref(&profile));
    let mut daemon = Daemon::start_with(&env, &[("JOURNAL_STREAM", "8:12345")]);
    daemon.wait_state("logged", "fresh", Duration::from_secs(30));
    daemon.signal(Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(10));
    let log = daemon.log();
    let started = log
        .lines()
        .find(|l| l.contains("started"))
        .expect("a start line");
    assert!(started.trim_start().starts_with("INFO"), "{started}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in the journal:\n{log}"
    );

    // JSON for collectors: every line is an object with a level and a message.
    let mut text = env.daemon_table();
    text.push_str("log_format = \"json\"\n");
    profile.render(&mut text);
    env.write_config_text(&text);
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("logged", "fresh", Duration::from_secs(30));
    daemon.signal(Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(10));
    let log = daemon.log();
    let mut refreshed = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        refreshed |= v["message"] == "refreshed" && v["profile"] == "logged";
    }
    assert!(refreshed, "no refreshed event:\n{log}");
    env.assert_secrets_never_logged(&daemon);
}
