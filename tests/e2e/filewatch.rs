//! Issue 15: one daemon per credentials file, a daemon that outlives its socket file, a
//! `refresh` that reports the file write, and a credentials file put right after it was
//! deleted, truncated or edited by hand.

use crate::support::{
    ini, output_text, show, wait_until, write_file, AssumeRole, Daemon, Moto, TestEnv, AWS_CONFIG,
    BASE_ACCESS_KEY_ID, BASE_SECRET,
};
use std::fs;
use std::path::Path;
use std::time::Duration;

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

#[test]
fn refresh_exits_1_when_the_file_cannot_be_updated() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let file = env.root().join("managed").join("credentials");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_file(&file, "[other]\naws_access_key_id = AKIAOTHER\n", 0o600);
    config_with_file(&env, &file);
    let daemon = Daemon::start(&env);
    daemon.wait_state("m1", "fresh", T);
    wait_until(T, "the first write", || has_m1(&file));

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
