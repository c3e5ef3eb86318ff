//! Test 4: many rewrites leave every foreign byte alone; the file is 0600.

use crate::support::{
    ini, initial_credentials, show, wait_for, write_file, AssumeRole, Daemon, Moto, TestEnv,
    BASE_PROFILE,
};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const MANAGED: [&str; 2] = ["rotating", "appended"];

/// The initial file with a stale `[rotating]` section in the middle, which credfresh must
/// update in place, between foreign sections.
fn credentials_with_stale_section() -> String {
    let text = initial_credentials();
    let at = text.find("[foreign]").expect("fixture has [foreign]");
    format!(
        "{}[rotating]\naws_access_key_id = ASIASTALE00000000001\naws_secret_access_key = staleSecretFromYesterday00000000000000000\naws_session_token = staleTokenFromYesterday000000000000000000000000\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n\n# the foreign section follows\n{}",
        &text[..at],
        &text[at..]
    )
}

fn keys_in(text: &str) -> Vec<String> {
    MANAGED
        .iter()
        .map(|m| {
            ini::section(text, m)
                .and_then(|s| s.get("aws_access_key_id").cloned())
                .unwrap_or_default()
        })
        .collect()
}

fn keys(env: &TestEnv) -> Vec<String> {
    keys_in(&env.read_credentials())
}

/// Everything outside the managed sections is `expected`, and each managed section is
/// there exactly once.
fn check_foreign(text: &str, expected: &str, refresh: u32) {
    assert_eq!(
        ini::without_sections(text, &MANAGED),
        expected,
        "after refresh #{refresh} the bytes outside the managed sections changed; file:\n{text}"
    );
    for m in MANAGED {
        assert_eq!(ini::count(text, m), 1, "[{m}] not exactly once:\n{text}");
    }
}

#[test]
fn foreign_bytes_survive_twenty_rewrites_and_file_is_0600() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let original = credentials_with_stale_section();
    // Start readable by others: credfresh's rewrite must make it 0600.
    write_file(&env.credentials, &original, 0o644);
    env.record_secrets(&original);
    env.write_config(&[
        AssumeRole::new("rotating", "RotatingRole", BASE_PROFILE).duration("1h"),
        AssumeRole::new("appended", "AppendedRole", BASE_PROFILE).duration("1h"),
    ]);
    let mut expected_foreign = ini::without_sections(&original, &MANAGED);

    let daemon = Daemon::start(&env);
    for m in MANAGED {
        daemon.wait_state(m, "fresh", Duration::from_secs(30));
    }
    let mut previous = wait_for(
        Duration::from_secs(10),
        "both managed sections written",
        || {
            let k = keys(&env);
            (!k.iter().any(|k| k.is_empty() || k.starts_with("ASIASTALE"))).then_some(k)
        },
    );

    let mut stale_after_return = Vec::new();
    for i in 1..=20 {
        if i == 11 {
            // Another tool edits a foreign section between credfresh's writes.
            let out = env.aws(&[
                "configure",
                "set",
                "aws_secret_access_key",
                "e2eEditedByAwsCli0000000000000000000000",
                "--profile",
                "foreign",
            ]);
            assert!(out.status.success(), "{}", show(&out));
            let text = env.read_credentials();
            assert_eq!(
                ini::section(&text, "foreign").unwrap()["aws_secret_access_key"],
                "e2eEditedByAwsCli0000000000000000000000"
            );
            expected_foreign = ini::without_sections(&text, &MANAGED);
        }
        let out = env.cli(&["refresh"]);
        assert_eq!(out.status.code(), Some(0), "refresh #{i}:\n{}", show(&out));
        let text = env.read_credentials();
        check_foreign(&text, &expected_foreign, i);
        // `refresh` waits for the result, so the file holds the new keys once it returns.
        let now = keys_in(&text);
        if now.iter().zip(&previous).any(|(new, old)| new == old) {
            stale_after_return.push(i);
        }
        let now = wait_for(Duration::from_secs(10), "both sections rewritten", || {
            let now = keys(&env);
            now.iter()
                .zip(&previous)
                .all(|(new, old)| new != old)
                .then_some(now)
        });
        check_foreign(&env.read_credentials(), &expected_foreign, i);
        previous = now;
    }
    assert!(
        stale_after_return.is_empty(),
        "`credfresh refresh` exited 0 but the credentials file still held the previous keys \
         right after it returned, in refreshes {stale_after_return:?} of 20 (the write lands \
         after the command reports success)"
    );

    let text = env.read_credentials();
    assert!(!text.contains("STALE") && !text.contains("stale"), "{text}");
    assert!(text.contains("# the foreign section follows\n"));
    let mode = std::fs::metadata(&env.credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "credentials file mode is {mode:o}");
    let leftovers: Vec<String> = std::fs::read_dir(env.credentials.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left in ~/.aws: {leftovers:?}"
    );
    env.assert_secrets_never_logged(&daemon);
}
