//! Test 8: a client with another uid is refused by the uid check itself, not just by file
//! permissions; the same request as the daemon's uid succeeds.

use crate::support::{show, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const NOBODY: &str = "65534";

fn curl(socket: &str, method: &str, path: &str, as_nobody: bool) -> Output {
    let curl_args = [
        "-q",
        "-sS",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "--unix-socket",
        socket,
    ];
    let url = format!("http://x{path}");
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            NOBODY,
            "--regid",
            NOBODY,
            "--clear-groups",
            "curl",
        ]);
        c
    } else {
        Command::new("curl")
    };
    cmd.args(curl_args)
        .arg(&url)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/")
        .stdin(Stdio::null())
        .output()
        .expect("run curl")
}

/// The HTTP status curl saw, if it got a reply.
fn http_code(out: &Output) -> Option<u16> {
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .filter(|c| *c != 0)
}

#[test]
fn another_uid_is_refused_by_the_socket() {
    assert!(
        nix::unistd::getuid().is_root(),
        "this test switches to uid {NOBODY} and must run as root"
    );
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("guarded", "GuardedRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("guarded", "fresh", Duration::from_secs(30));

    // The contract's file permissions first.
    let dir = env.socket.parent().unwrap();
    let dir_mode = fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "socket dir mode {dir_mode:o}");
    let sock_mode = fs::metadata(&env.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        sock_mode & 0o077,
        0,
        "socket mode {sock_mode:o} lets others in"
    );

    // Open the way through the file system, so only the uid check can refuse.
    for p in [env.root(), dir] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&env.socket, fs::Permissions::from_mode(0o666)).unwrap();
    let socket = env.socket.display().to_string();

    let mine = curl(&socket, "GET", "/v1/status", false);
    assert_eq!(http_code(&mine), Some(200), "as root:\n{}", show(&mine));
    assert!(String::from_utf8_lossy(&mine.stdout).contains("guarded"));

    for (method, path) in [
        ("GET", "/v1/status"),
        ("POST", "/v1/refresh"),
        ("GET", "/v1/credentials/guarded"),
    ] {
        let theirs = curl(&socket, method, path, true);
        let body = String::from_utf8_lossy(&theirs.stdout);
        assert!(
            !body.contains("guarded") && !body.contains("aws_"),
            "uid {NOBODY} got data from {method} {path}:\n{}",
            show(&theirs)
        );
        assert_eq!(
            http_code(&theirs),
            Some(403),
            "uid {NOBODY}, {method} {path}: want the 403 reply, not a reset:\n{}",
            show(&theirs)
        );
    }
    // Three refusals, one warning: the log is not theirs to flood.
    let warnings = daemon.log().matches("client of another user").count();
    assert_eq!(warnings, 1, "{}", daemon.log());

    // The daemon is unharmed and still serves its own uid.
    let again = curl(&socket, "GET", "/healthz", false);
    assert_eq!(http_code(&again), Some(200), "{}", show(&again));
    env.assert_secrets_never_logged(&daemon);
}
