//! Docker on a workstation: a single-file bind mount of the credentials file (`docker run -v
//! ~/.aws/credentials:/root/.aws/credentials`) refuses every rename onto it (`EBUSY`) and keeps
//! the inode the container saw. credfresh running where the file is such a mount says so, and
//! what to do instead, in `validate`, `status`, its log and the write error. The mount is
//! made for real in a private mount namespace (`unshare -m`, root), so nothing outside the
//! test sees it.

use crate::support::{http, show, wait_until, write_file, AssumeRole, Moto, TestEnv, BASE_PROFILE};
use std::process::{Command, Stdio};
use std::time::Duration;

const ADVICE: &str = "is a single-file bind mount";

#[test]
fn a_single_file_bind_mount_is_pointed_out_with_what_to_do_instead() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("job", "DockerRole", BASE_PROFILE).duration("1h")]);
    // The file as the container sees it: the host's file bind-mounted onto the path.
    let host_file = env.root().join("host-credentials");
    write_file(&host_file, &env.read_credentials(), 0o600);
    let bin = env!("CARGO_BIN_EXE_credfresh");
    let mounted = |args: &str| -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind \"$0\" \"$1\" && exec \"$2\" --config \"$3\" {args}"
            ))
            .arg(&host_file)
            .arg(&env.credentials)
            .arg(bin)
            .arg(&env.config)
            .env_clear()
            .envs(env.vars())
            .stdin(Stdio::null());
        cmd
    };

    // validate, where the file is a mount point of its own.
    let out = mounted("validate").output().expect("unshare validate");
    env.note("credfresh validate (mounted)", &out);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(ADVICE), "{text}");
    assert!(text.contains("-v ~/.aws:/root/.aws:ro"), "{text}");
    // …and not where it is an ordinary file.
    let plain = env.cli(&["validate"]);
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains(ADVICE),
        "{}",
        show(&plain)
    );

    // The daemon in that namespace: its log warns, its write fails with EBUSY and says why,
    // and `status` run in the same namespace points it out.
    let log = env.root().join("mounted-daemon.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut daemon = mounted("daemon")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("start the daemon in a mount namespace");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        Duration::from_secs(60),
        "the write to fail with EBUSY",
        || {
            http::get(&env.socket, "/v1/status").is_ok_and(|r| {
                r.body.contains("Device or resource busy") && r.body.contains(ADVICE)
            })
        },
    );
    assert!(read_log().contains(ADVICE), "{}", read_log());
    let status = Command::new("nsenter")
        .args(["-t", &daemon.id().to_string(), "-m", "--"])
        .arg(bin)
        .arg("--config")
        .arg(&env.config)
        .arg("status")
        .env_clear()
        .envs(env.vars())
        .output()
        .expect("nsenter status");
    env.note("credfresh status (mounted)", &status);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("warning: {}", env.credentials.display())),
        "{}",
        show(&status)
    );
    assert!(text.contains(ADVICE), "{text}");
    let _ = daemon.kill();
    let _ = daemon.wait();
}
