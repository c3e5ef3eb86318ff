//! The control socket's place is checked, never trusted: a symlink, a foreign file or a
//! directory owned by someone else where the socket should go makes the daemon refuse to start
//! (exit 1) without touching what is there.

use crate::support::{AssumeRole, Moto, TestEnv, BASE_PROFILE};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::process::{Command, Output};

fn start_daemon(env: &TestEnv) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credfresh"))
        .arg("--config")
        .arg(&env.config)
        .arg("daemon")
        .env_clear()
        .envs(env.vars())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    // It must refuse at once; a daemon still running after 10 s is a failure.
    for _ in 0..100 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the daemon started although its socket path was unsafe");
}

#[test]
fn unsafe_socket_paths_are_refused_not_followed() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("a", "ARole", BASE_PROFILE).duration("1h")]);
    let dir = env.socket.parent().unwrap().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A symlink where the socket goes: refused, the target untouched.
    let target = env.root().join("victim");
    std::fs::write(&target, "precious").unwrap();
    symlink(&target, &env.socket).unwrap();
    let out = start_daemon(&env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not this user's socket"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&env.socket)
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_file(&env.socket).unwrap();

    // A regular file in its place: refused, kept.
    std::fs::write(&env.socket, "not a socket").unwrap();
    let out = start_daemon(&env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&env.socket).unwrap(),
        "not a socket"
    );
    std::fs::remove_file(&env.socket).unwrap();

    // The directory belongs to another user: refused.
    nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let out = start_daemon(&env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("belongs to uid 65534"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nix::unistd::chown(&dir, Some(nix::unistd::getuid()), None).unwrap();

    // The directory is a symlink: refused.
    std::fs::remove_dir(&dir).unwrap();
    let elsewhere = env.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, &dir).unwrap();
    let out = start_daemon(&env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "nothing created through the link"
    );

    // A group/world-readable directory named credfresh is tightened; one with another name is refused.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = start_daemon(&env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the dir is not named credfresh here"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by other users"));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().mode() & 0o777,
        0o755,
        "left alone"
    );
}
