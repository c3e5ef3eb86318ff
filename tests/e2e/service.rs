//! Running as a service: the systemd notify protocol, the watchdog, config reload (on file
//! change and `credfresh reload`), log levels, the systemd unit and the launchd agent.

use crate::support::{
    here_document, repo_root, show, wait_for, wait_until, AssumeRole, Daemon, Moto, TestEnv,
    ACCOUNT, BASE_PROFILE,
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

/// A config that is a symlink into another directory (a dotfiles repository): saving the
/// file it points to is noticed as well as replacing the link.
#[test]
fn a_symlinked_config_is_watched_where_it_points() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let first = AssumeRole::new("first", "FirstRole", BASE_PROFILE).duration("1h");
    env.write_config(std::slice::from_ref(&first));
    let dotfiles = env.home.join("dotfiles");
    std::fs::create_dir(&dotfiles).expect("dotfiles dir");
    let target = dotfiles.join("credfresh.toml");
    std::fs::rename(&env.config, &target).expect("move config");
    std::os::unix::fs::symlink(&target, &env.config).expect("symlink config");
    let daemon = Daemon::start(&env);
    daemon.wait_state("first", "fresh", Duration::from_secs(30));

    // An editor saves the target in its own directory.
    let second = AssumeRole::new("second", "SecondRole", BASE_PROFILE).duration("1h");
    env.write_config(&[first.clone(), second]);
    assert!(env.config.is_symlink(), "the link stays");
    daemon.wait_state("second", "fresh", Duration::from_secs(30));

    // The link itself is pointed at another file (first and second), after the target has
    // dropped second.
    let other = dotfiles.join("credfresh-work.toml");
    std::fs::copy(&target, &other).expect("copy config");
    env.write_config(std::slice::from_ref(&first));
    wait_until(Duration::from_secs(10), "second removed", || {
        daemon.profile("second").is_none()
    });
    let link = env.config.with_extension("toml.link");
    std::os::unix::fs::symlink(&other, &link).expect("new link");
    std::fs::rename(&link, &env.config).expect("swap link");
    wait_until(
        Duration::from_secs(10),
        "second back after the link swap",
        || daemon.profile("second").is_some(),
    );
    // Saving the new target is noticed as well.
    env.write_config(&[first]);
    wait_until(
        Duration::from_secs(10),
        "second removed from the new target",
        || daemon.profile("second").is_none(),
    );
}

/// The values of every `key=` line of the unit, comments skipped.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
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
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(key)),
            "the unit lacks {key}"
        );
    }

    // A ReadWritePaths= entry that does not exist fails the start with 226/NAMESPACE unless it
    // is "-"-prefixed; only the runtime dir (%t) always exists under a user manager.
    let paths: Vec<&str> = unit_values(&unit, "ReadWritePaths")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    for path in ["-%h/.aws", "-%h/.cache/credfresh", "%t"] {
        assert!(
            paths.contains(&path),
            "ReadWritePaths lacks {path}: {paths:?}"
        );
    }
    for path in &paths {
        assert!(
            *path == "%t" || path.starts_with('-'),
            "ReadWritePaths={path} fails the start when it is missing; prefix it with -"
        );
    }
    // ProtectHome=read-only keeps the daemon from creating ~/.aws: the unit does, unsandboxed.
    let pre = unit_values(&unit, "ExecStartPre");
    assert!(
        pre.iter()
            .any(|c| c.starts_with('+') && c.contains("mkdir -p -m 0700 %h/.aws")),
        "no unsandboxed ExecStartPre creating ~/.aws: {pre:?}"
    );
    // A config error exits 2 and must not restart in a loop.
    assert_eq!(unit_values(&unit, "RestartPreventExitStatus"), ["2"]);
    // A user manager has no network-online.target: ordering after it would do nothing.
    for key in ["After", "Wants", "Requires"] {
        for value in unit_values(&unit, key) {
            assert!(
                !value.contains("network-online.target"),
                "{key}={value} does nothing in a user manager"
            );
        }
    }

    // verify checks that ExecStart is executable: point it at the binary under test.
    let unit = unit.replace("/usr/bin/credfresh", env!("CARGO_BIN_EXE_credfresh"));
    let path = dir.path().join("credfresh.service");
    std::fs::write(&path, unit).expect("write unit");
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).expect("runtime dir");
    let out = Command::new(systemd_analyze())
        .args(["verify", "--user", "--man=no"])
        .arg(&path)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("run systemd-analyze");
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

/// The system unit the SageMaker lifecycle script installs restarts like the user unit and
/// passes `systemd-analyze verify`.
#[test]
fn sagemaker_unit_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().display().to_string();
    let script = std::fs::read_to_string(repo_root().join("packaging/sagemaker/on-start.sh"))
        .expect("read on-start.sh");
    // What the shell does with the here-document, with this machine's values.
    let unit: String = here_document(
        &script,
        "cat >/etc/systemd/system/credfresh.service <<UNIT",
        "UNIT",
    )
    .iter()
    .map(|l| match l.strip_prefix("Environment=AWS_REGION=") {
        Some(_) => "Environment=AWS_REGION=us-east-1".to_owned(),
        None => l
            .replace("$NOTEBOOK_USER", "root")
            .replace("$USER_HOME", &home)
            .replace("$CONFIG", &format!("{home}/config.toml"))
            .replace("\\$MAINPID", "$MAINPID")
            .replace("/usr/local/bin/credfresh", env!("CARGO_BIN_EXE_credfresh")),
    })
    .map(|l| l + "\n")
    .collect();
    assert!(
        !unit.replace("$MAINPID", "").contains('$'),
        "a variable left: {unit}"
    );
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(unit_values(&unit, "RestartPreventExitStatus"), ["2"]);
    assert_eq!(unit_values(&unit, "WatchdogSec").len(), 1);

    let path = dir.path().join("credfresh.service");
    std::fs::write(&path, &unit).expect("write unit");
    let out = Command::new(systemd_analyze())
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}\n{unit}"
    );
}

/// `systemd-analyze`, installed from the distribution by `scripts/ensure-systemd-analyze.sh`
/// when absent. Panics (never skips) when it cannot be installed.
fn systemd_analyze() -> std::path::PathBuf {
    let out = Command::new(repo_root().join("scripts/ensure-systemd-analyze.sh"))
        .output()
        .expect("run scripts/ensure-systemd-analyze.sh");
    assert!(
        out.status.success(),
        "scripts/ensure-systemd-analyze.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
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
# Per-user logs, not predictable /tmp paths another user could take first; the install
# replaces /Users/YOU with $HOME (launchd expands neither ~ nor $HOME).
assert p["StandardErrorPath"] == "/Users/YOU/Library/Logs/credfresh.err.log", p
assert p["StandardOutPath"] == "/Users/YOU/Library/Logs/credfresh.out.log", p
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

#[test]
fn log_level_flag_and_rust_log_take_effect() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("levels", "LevelRole", BASE_PROFILE).duration("1h")]);
    let run = |args: &[&str]| {
        let mut daemon =
            Daemon::start_with_args(&env, args, &[("RUST_LOG", "warn,credfresh=warn")]);
        daemon.wait_state("levels", "fresh", Duration::from_secs(30));
        daemon.signal(Signal::SIGTERM);
        daemon.wait_exit(Duration::from_secs(10));
        daemon.log()
    };
    let levels = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(w))
                    .map(str::to_owned)
            })
            .collect()
    };

    // RUST_LOG alone: warnings only, not even the info "refreshed".
    let log = run(&[]);
    let seen = levels(&log);
    assert!(
        seen.iter().all(|l| l == "WARN" || l == "ERROR"),
        "RUST_LOG=credfresh=warn ignored:\n{log}"
    );
    assert!(!log.contains("refreshed"), "{log}");

    // --log-level wins over RUST_LOG: the debug events show.
    let log = run(&["--log-level", "debug"]);
    assert!(
        levels(&log).iter().any(|l| l == "DEBUG"),
        "--log-level debug ignored:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains("refreshing") && l.contains("levels")),
        "{log}"
    );
    assert!(log.contains("refreshed"), "{log}");
}

#[test]
fn no_watchdog_pings_unless_systemd_asks() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("calm", "CalmRole", BASE_PROFILE).duration("1h")]);
    let mut notify = NotifySocket::bind(&env);
    let path = notify.path.display().to_string();
    // NOTIFY_SOCKET but no WATCHDOG_USEC: the unit has no WatchdogSec=.
    let mut daemon = Daemon::start_with(&env, &[("NOTIFY_SOCKET", path.as_str())]);
    notify.expect("READY=1", Duration::from_secs(10));
    notify.expect("STATUS=1 fresh", Duration::from_secs(30));
    // With a watchdog, pings would come every few hundred milliseconds (see above); give
    // them a few seconds to (not) show.
    std::thread::sleep(Duration::from_secs(3));
    daemon.signal(Signal::SIGTERM);
    notify.expect("STOPPING=1", Duration::from_secs(10));
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(0));
    notify.drain();
    assert!(
        !notify
            .seen
            .iter()
            .any(|m| m.lines().any(|l| l == "WATCHDOG=1")),
        "WATCHDOG=1 sent without WATCHDOG_USEC: {:?}",
        notify.seen
    );
    assert!(!daemon.log().contains("watchdog"), "{}", daemon.log());
}

#[test]
fn reload_renews_a_changed_profile_and_its_dependents_only() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let source = AssumeRole::new("src", "SourceRole", BASE_PROFILE)
        .duration("1h")
        .session("sess-src");
    let dependent = AssumeRole::new("dep", "DependentRole", "src")
        .duration("1h")
        .session("sess-dep");
    let other = AssumeRole::new("other", "OtherRole", BASE_PROFILE)
        .duration("1h")
        .session("sess-other");
    // The config is a symlink into a directory the daemon does not watch, so only
    // `credfresh reload` applies the edit and its reply is the one that reports it.
    let real = env.root().join("dotfiles").join("config.toml");
    std::fs::create_dir_all(real.parent().unwrap()).expect("dotfiles dir");
    let text = env.write_config(&[source.clone(), dependent.clone(), other.clone()]);
    std::fs::write(&real, text).expect("write config");
    std::fs::remove_file(&env.config).expect("remove config");
    std::os::unix::fs::symlink(&real, &env.config).expect("symlink config");

    let daemon = Daemon::start(&env);
    for name in ["src", "dep", "other"] {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }
    let sections = |name: &str| {
        wait_for(Duration::from_secs(10), "the section in the file", || {
            env.section(name)
        })
    };
    let other_before = daemon.profile("other").expect("other managed");
    let other_keys = sections("other");
    let dep_keys = sections("dep");
    let src_keys = sections("src");

    // Point `src` at another role.
    let moved = AssumeRole::new("src", "MovedRole", BASE_PROFILE)
        .duration("1h")
        .session("sess-src");
    let mut text = env.daemon_table();
    for p in [&moved, &dependent, &other] {
        p.render(&mut text);
    }
    let tmp = real.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, &real).expect("replace config");

    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "config reloaded: 0 added (none), 2 changed (src, dep), 0 removed (none), 1 unchanged",
        "{}",
        show(&out)
    );

    // src is the new role, in the file as boto3 reads it.
    let src = wait_for(Duration::from_secs(30), "new [src] keys", || {
        env.section("src")
            .filter(|s| s["aws_access_key_id"] != src_keys["aws_access_key_id"])
    });
    let id = env.python("caller_identity.py", &["--profile", "src"], &[]);
    assert!(id.status.success(), "{}", show(&id));
    let id: serde_json::Value = serde_json::from_slice(&id.stdout).expect("JSON");
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/MovedRole/sess-src"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], src["aws_access_key_id"].as_str());
    // dep held credentials obtained through the old source: renewed too.
    wait_for(Duration::from_secs(30), "new [dep] keys", || {
        env.section("dep")
            .filter(|s| s["aws_access_key_id"] != dep_keys["aws_access_key_id"])
    });
    daemon.wait_state("dep", "fresh", Duration::from_secs(30));
    assert_eq!(
        daemon.log_lines("refreshed", "dep").len(),
        2,
        "{}",
        daemon.log()
    );
    // The unrelated profile kept its credentials and its schedule.
    let other_after = daemon.profile("other").expect("other managed");
    for key in ["last_refresh_at", "next_refresh_at", "expires_at", "state"] {
        assert_eq!(other_after[key], other_before[key], "other.{key} changed");
    }
    assert_eq!(sections("other"), other_keys);
    assert_eq!(
        daemon.log_lines("refreshed", "other").len(),
        1,
        "{}",
        daemon.log()
    );
    env.assert_secrets_never_logged(&daemon);
}

/// A service manager that never reads its notify socket (its queue fills after a few
/// watchdog pings) must not stall the daemon: status keeps answering, refreshes go on, and
/// SIGTERM still stops it at once.
#[test]
fn a_notify_socket_nobody_reads_never_stalls_the_daemon() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("svc", "SvcRole", BASE_PROFILE).duration("4s")]);
    let path = env.root().join("deaf-notify.sock");
    let _deaf = UnixDatagram::bind(&path).expect("bind NOTIFY_SOCKET");
    let path = path.display().to_string();
    let mut daemon = Daemon::start_with(
        &env,
        &[
            ("NOTIFY_SOCKET", path.as_str()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let first = daemon.wait_state("svc", "fresh", Duration::from_secs(30))["expires_at"].clone();
    // Pings every 0.5 s fill the queue within seconds; keep asking for 22 s.
    let until = Instant::now() + Duration::from_secs(22);
    while Instant::now() < until {
        let asked = Instant::now();
        let status = daemon.status();
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "GET /v1/status took {:?}",
            asked.elapsed()
        );
        assert!(status["profiles"].is_array(), "{status}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // 4 s credentials were refreshed meanwhile.
    wait_until(
        Duration::from_secs(30),
        "a refresh after the queue filled",
        || {
            daemon
                .profile("svc")
                .is_some_and(|p| p["state"] == "fresh" && p["expires_at"] != first)
        },
    );
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
}
