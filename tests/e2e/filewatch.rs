//! Issue 15: one daemon per credentials file, a daemon that outlives its socket file, a
//! `refresh` that reports the file write, and a credentials file put right after it was
//! deleted, truncated or edited by hand.

use crate::support::{
    http, ini, output_text, show, wait_until, write_file, AssumeRole, Daemon, Moto, TestEnv,
    AWS_CONFIG, BASE_ACCESS_KEY_ID, BASE_PROFILE, BASE_SECRET,
};
use nix::sys::signal::Signal;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// A config managing `m1` in `file`, assumed from static keys in `~/.aws/config` (so that
/// breaking `file` leaves the source readable).
fn config_with_file(env: &TestEnv, file: &Path) {
    write_file(
        &env.aws_config,
        &format!(
            "{AWS_CONFIG}\n[profile keys]\naws_access_key_id = {BASE_ACCESS_KEY_ID}\naws_secret_access_key = {BASE_SECRET}\n"
        ),
        0o600,
    );
    let mut text = env.daemon_table();
    text.push_str(&format!("credentials_file = \"{}\"\n", file.display()));
    AssumeRole::new("m1", "Role-m1", "keys")
        .duration("1h")
        .render(&mut text);
    env.write_config_text(&text);
}

fn has_m1(file: &Path) -> bool {
    fs::read_to_string(file)
        .ok()
        .and_then(|t| ini::section(&t, "m1"))
        .is_some_and(|s| s.get("aws_session_token").is_some_and(|v| !v.is_empty()))
}

/// A daemon managing `m1` in a credentials file under `managed/` that also holds a foreign
/// `[other]` section, once `m1` has been written.
fn started_with_other_section(moto: &Moto) -> (TestEnv, PathBuf, Daemon) {
    let env = TestEnv::new(moto);
    let file = env.root().join("managed").join("credentials");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_file(&file, "[other]\naws_access_key_id = AKIAOTHER\n", 0o600);
    config_with_file(&env, &file);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);
    wait_until(T, "the first write", || has_m1(&file));
    (env, file, daemon)
}

#[test]
fn refresh_exits_1_when_the_file_cannot_be_updated() {
    let moto = Moto::start();
    let (env, file, daemon) = started_with_other_section(&moto);

    let scenarios: [(&str, &dyn Fn()); 2] = [
        ("a directory in its place", &|| {
            fs::remove_file(&file).unwrap();
            fs::create_dir(&file).unwrap();
        }),
        ("invalid UTF-8", &|| {
            fs::remove_dir(&file).unwrap();
            fs::write(&file, b"[other]\naws_access_key_id = \xff\xfe\n").unwrap();
        }),
    ];
    for (name, break_it) in scenarios {
        break_it();
        let out = env.cli(&["refresh"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", show(&out));
        assert!(
            output_text(&out).contains("the credentials file was not updated"),
            "{name}: {}",
            show(&out)
        );
    }
    env.assert_secrets_never_logged(&daemon);
}

/// Runs `credfresh ARGS…` (ARGS name the config) and waits up to `timeout` for it to exit; a process still
/// running then is killed and `None` returned.
fn run_for(env: &TestEnv, args: &[&str], timeout: Duration) -> Option<(Option<i32>, String)> {
    let log = env
        .root()
        .join(format!("run-{}.log", args.join("-").replace('/', "_")));
    let file = fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_credfresh"))
        .args(args)
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    env.note_text(&format!("credfresh {}", args.join(" ")), &text);
    code.map(|c| (c, text))
}

#[test]
fn a_second_daemon_for_the_same_file_refuses_to_start_naming_the_first() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let file = env.root().join("managed").join("credentials");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    config_with_file(&env, &file);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);

    // The same config with another socket, and a config naming the file through a symlink
    // and another path to its directory.
    let link = env.root().join("link-to-credentials");
    std::os::unix::fs::symlink(env.root().join("managed/../managed/credentials"), &link).unwrap();
    let other_socket = env.root().join("run2").join("cf.sock");
    let socket_arg = other_socket.display().to_string();
    let same = env.config.clone();
    let via_link = env.root().join("via-link.toml");
    let text = fs::read_to_string(&same)
        .unwrap()
        .replace(&file.display().to_string(), &link.display().to_string());
    write_file(&via_link, &text, 0o600);
    for config in [&same, &via_link] {
        let config = config.display().to_string();
        let out = run_for(
            &env,
            &["--config", &config, "--socket", &socket_arg, "daemon"],
            T,
        );
        let Some((code, text)) = out else {
            panic!("a second daemon for the same file ({config}) was still running after {T:?}")
        };
        assert_ne!(code, Some(0), "{text}");
        let pid = format!("pid {}", daemon.pid());
        assert!(
            text.contains(&pid) && text.contains(&env.socket.display().to_string()),
            "the refusal names neither the first daemon's {pid} nor its socket:\n{text}"
        );
        assert!(text.contains("credentials"), "{text}");
    }
    assert!(!other_socket.exists());
    assert_eq!(daemon.status()["pid"], daemon.pid());
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn a_deleted_socket_is_recreated_and_the_cli_names_the_daemon_meanwhile() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("m1", "Role-m1", BASE_PROFILE).duration("1h")]);
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);
    let answers = || matches!(http::get(&env.socket, "/healthz"), Ok(r) if r.status == 200);

    // The socket file deleted: back within seconds.
    fs::remove_file(&env.socket).unwrap();
    wait_until(T, "the deleted socket to answer again", answers);
    // Its whole directory deleted: the same.
    let run = env.socket.parent().unwrap().to_owned();
    fs::remove_dir_all(&run).unwrap();
    wait_until(
        T,
        "the socket in a deleted directory to answer again",
        answers,
    );

    // Its directory moved away (no deletion to notice): the CLI says which daemon holds the
    // file, and SIGHUP brings the socket back.
    fs::rename(&run, env.root().join("run.moved")).unwrap();
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains(&format!("pid {}", daemon.pid())) && text.contains("SIGHUP"),
        "{text}"
    );
    daemon.signal(Signal::SIGHUP);
    wait_until(T, "SIGHUP to recreate the socket", answers);
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(daemon.try_exit().is_none());
    env.assert_secrets_never_logged(&daemon);
}

fn m1_key(file: &Path) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    ini::section(&text, "m1")?.get("aws_access_key_id").cloned()
}

fn file_writes(daemon: &Daemon) -> String {
    daemon
        .get("/metrics")
        .body
        .lines()
        .find(|l| l.starts_with("credfresh_file_writes_total"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_deleted_truncated_or_hand_edited_file_gets_its_managed_sections_back() {
    let moto = Moto::start();
    let (env, file, daemon) = started_with_other_section(&moto);
    let key = m1_key(&file).unwrap();
    env.record_secrets(&fs::read_to_string(&file).unwrap());
    // Each change comes well after the writer's own check one second after each write
    // (`writer::VERIFY_AFTER`), which would put the sections back once by itself.
    let past_verify = || std::thread::sleep(Duration::from_secs(3));

    past_verify();
    fs::remove_file(&file).unwrap();
    wait_until(T, "[m1] back in the deleted file", || has_m1(&file));
    assert_eq!(m1_key(&file).as_deref(), Some(key.as_str()));

    past_verify();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .unwrap();
    wait_until(T, "[m1] back in the truncated file", || has_m1(&file));

    // A managed key edited by hand, and a foreign section added in the same edit.
    past_verify();
    let text = fs::read_to_string(&file).unwrap();
    let edited = format!(
        "{}\n[mine]\nregion = eu-north-1\n",
        text.replace(&key, "AKIAHANDEDITED000000")
    );
    fs::write(&file, &edited).unwrap();
    wait_until(T, "the managed key put back", || {
        m1_key(&file).as_deref() == Some(key.as_str())
    });
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        ini::section(&text, "mine").is_some_and(|s| s["region"] == "eu-north-1"),
        "{text}"
    );
    assert_eq!(daemon.profile("m1").unwrap()["state"], "fresh");

    // The daemon's own rewrite does not make it write again.
    let writes = file_writes(&daemon);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(file_writes(&daemon), writes, "rewrites without a change");
    env.assert_secrets_never_logged(&daemon);
}
