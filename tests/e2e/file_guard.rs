//! Issue 15: the credentials file's other owners keep what is theirs: sections credfresh did
//! not write (an IAM user's long-term keys) are never replaced, names the readers treat
//! specially are refused, the file keeps its owner, and an oversized file is left alone.

use crate::support::{show, write_file, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A section with an IAM user's long-term keys, which credfresh did not write.
const LONG_TERM: &str =
    "\n[other]\naws_access_key_id = AKIAE2EOTHERUSER0001\naws_secret_access_key = e2eOtherLongTermSecret/000000000000000\n";

#[test]
fn a_section_credfresh_did_not_write_is_refused_by_validate_and_reload() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let mut creds = fs::read_to_string(&env.credentials).unwrap();
    creds.push_str(LONG_TERM);
    write_file(&env.credentials, &creds, 0o600);
    env.record_secrets(&creds);
    let header = creds.lines().position(|l| l == "[other]").unwrap() + 1;
    let located = format!("{}:{header}", env.credentials.display());

    env.write_config(&[AssumeRole::new("other", "OtherRole", BASE_PROFILE).duration("1h")]);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&located), "{located} not in:\n{stderr}");
    assert!(stderr.contains("[other]"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", env.config.display())),
        "{stderr}"
    );

    // A running daemon rejects the same config on reload and keeps the old one.
    let good = env.write_config(&[AssumeRole::new("m1", "Role-m1", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);
    let mut bad = good.clone();
    AssumeRole::new("other", "OtherRole", BASE_PROFILE)
        .duration("1h")
        .render(&mut bad);
    env.write_config_text(&bad);
    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&located),
        "{}",
        show(&out)
    );
    assert!(daemon.profile("other").is_none());
    let section = env.section("other").expect("[other] is still there");
    assert_eq!(section["aws_access_key_id"], "AKIAE2EOTHERUSER0001");
    env.assert_secrets_never_logged(&daemon);
}

/// A user replaces a managed section with long-term keys while the daemon runs: the writer
/// refuses to overwrite it and says which section, and the file keeps the user's bytes.
#[test]
fn the_writer_never_overwrites_a_section_it_did_not_write() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("m1", "Role-m1", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);

    let theirs = format!(
        "{}\n[m1]\naws_access_key_id = AKIAE2EM1USER0000001\naws_secret_access_key = e2eM1LongTermSecret/0000000000000000000\n",
        crate::support::initial_credentials()
    );
    write_file(&env.credentials, &theirs, 0o600);
    env.record_secrets(&theirs);

    let reply = daemon.post("/v1/profiles/m1/refresh");
    assert!(
        reply.body.contains("[m1]") && reply.body.contains("not written by credfresh"),
        "{}",
        reply.body
    );
    crate::support::wait_until(T, "file_error naming [m1]", || {
        daemon.status()["file_error"]
            .as_str()
            .is_some_and(|e| e.contains("[m1]"))
    });
    assert_eq!(fs::read_to_string(&env.credentials).unwrap(), theirs);
    env.assert_secrets_never_logged(&daemon);
}

/// Root rewriting another user's file (`~user/.aws/credentials`, uid 1000, mode 0644) keeps
/// its owner and group; only the mode is tightened to 0600.
#[test]
fn a_rewrite_keeps_the_owner_and_group_of_the_file() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to chown the file to another user");
        return;
    }
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    fs::set_permissions(
        &env.credentials,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::os::unix::fs::chown(&env.credentials, Some(1000), Some(1001)).unwrap();
    env.write_config(&[AssumeRole::new("m1", "Role-m1", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);
    crate::support::wait_for(T, "[m1] in the file", || env.section("m1"));
    let meta = fs::metadata(&env.credentials).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001), "owner taken over");
    assert_eq!(meta.mode() & 0o777, 0o600);
    env.assert_secrets_never_logged(&daemon);
}

/// One Latin-1 byte saved into the config (an editor in another encoding) while the daemon
/// runs: `status` and `reload` still reach it through the config's socket and say that the
/// config on disk is broken; the daemon refuses the file and keeps running the old one.
#[test]
fn a_broken_config_on_disk_does_not_hide_the_running_daemon() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let good = env.write_config(&[AssumeRole::new("m1", "Role-m1", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);

    let mut bytes = good.into_bytes();
    bytes.extend_from_slice(b"# caf\xe9\n");
    fs::write(&env.config, &bytes).unwrap();

    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config on disk is broken") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("m1"),
        "{}",
        show(&out)
    );

    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not running"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
    assert_eq!(daemon.wait_state("m1", "fresh", T)["name"], "m1");
}

/// A credentials file over the 8 MiB credfresh edits is left alone, byte for byte, and the
/// refusal is reported (`file_error` and the waiting `refresh`), not paid for in memory.
#[test]
fn a_credentials_file_over_the_size_limit_is_left_alone() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let big = env.root().join("big-credentials");
    let mut text = crate::support::initial_credentials();
    let mut i = 0;
    while text.len() <= 9 << 20 {
        text.push_str(&format!("[bulk{i}]\nregion = eu-west-1\n\n"));
        i += 1;
    }
    write_file(&big, &text, 0o600);
    let mut config = env.daemon_table();
    config.push_str(&format!("credentials_file = \"{}\"\n", big.display()));
    AssumeRole::new("m1", "Role-m1", BASE_PROFILE)
        .duration("1h")
        .render(&mut config);
    env.write_config_text(&config);
    let daemon = Daemon::start(&env);
    let reply = daemon.post("/v1/profiles/m1/refresh");
    assert!(reply.body.contains("larger than 8 MiB"), "{}", reply.body);
    crate::support::wait_until(T, "file_error about the size", || {
        daemon.status()["file_error"]
            .as_str()
            .is_some_and(|e| e.contains("larger than 8 MiB") && e.contains("big-credentials"))
    });
    assert!(
        fs::read_to_string(&big).unwrap() == text,
        "the big file changed"
    );
    env.assert_secrets_never_logged(&daemon);
}
