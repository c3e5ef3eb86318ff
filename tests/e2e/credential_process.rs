//! `kind = "aws_profile"` wrapping a `credential_process` profile of `~/.aws/config`: the
//! helper's keys land in their own section with the helper's own `Expiration`, for tools that
//! only read the credentials file; a failing helper is reported and the old keys stay. And an
//! `assume_role` whose `source_profile` is such a profile.

use crate::support::{
    ensure_venv, output_text, repo_root, show, wait_for, write_file, AssumeRole, Daemon, Moto,
    TestEnv, ACCOUNT, AWS_CONFIG,
};
use std::time::{Duration, SystemTime};

/// The token `tests/py/credential_process.py` quotes on stderr when it fails.
const HELPER_LOGIN_TOKEN: &str = "helperLoginTokenNeverShown/0123456789+e2e==";

/// Adds `[profile legacy]` to `~/.aws/config`, whose `credential_process` is
/// `tests/py/credential_process.py` issuing 90-minute credentials; returns the helper's state
/// file (a counter of its runs).
fn legacy_helper_profile(env: &TestEnv) -> std::path::PathBuf {
    let state = env.root().join("helper").join("counter");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let helper = format!(
        "{} {} --state {} --lifetime 5400",
        ensure_venv().join("bin/python").display(),
        repo_root().join("tests/py/credential_process.py").display(),
        state.display()
    );
    write_file(
        &env.aws_config,
        &format!(
            "{AWS_CONFIG}\n[profile legacy]\ncredential_process = {helper}\nregion = us-east-1\n"
        ),
        0o600,
    );
    state
}

#[test]
fn aws_profile_keeps_a_credential_process_profile_fresh() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let state = legacy_helper_profile(&env);
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"wrapped\"\nkind = \"aws_profile\"\naws_profile = \"legacy\"\n",
        env.daemon_table()
    ));

    let daemon = Daemon::start(&env);
    let status = daemon.wait_state("wrapped", "fresh", Duration::from_secs(30));
    assert_eq!(status["kind"], "aws_profile", "{status}");
    let section = wait_for(Duration::from_secs(10), "[wrapped] in the file", || {
        env.section("wrapped")
    });
    assert_eq!(section["aws_access_key_id"], "ASIAPROCESS000000000001");
    assert!(section["aws_session_token"].starts_with("processSessionToken"));
    // The helper's own Expiration (90 min), in the file and in the status.
    let written = &section["x_credfresh_expiration"];
    assert_eq!(status["expires_at"], written.as_str(), "{status}");
    let left = crate::support::rfc3339(written, "x_credfresh_expiration")
        .duration_since(SystemTime::now())
        .expect("in the future");
    assert!(
        left > Duration::from_secs(85 * 60) && left <= Duration::from_secs(90 * 60),
        "{written} is not the helper's 90 minutes"
    );

    // Each refresh runs the helper again.
    let out = env.cli(&["refresh", "wrapped"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    wait_for(Duration::from_secs(10), "the helper's second keys", || {
        env.section("wrapped")
            .filter(|s| s["aws_access_key_id"] == "ASIAPROCESS000000000002")
    });

    // A failing helper: reported with the profile's name and the helper's exit status, the
    // old keys stay. Its stderr quotes a token credfresh never held: not passed on.
    env.record_secret(HELPER_LOGIN_TOKEN);
    write_file(&state.parent().unwrap().join("fail"), "", 0o600);
    let out = env.cli(&["refresh", "wrapped"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for part in [
        "AWS profile \"legacy\" gave no credentials",
        "credential_process helper failed (exit status: 1)",
        "run the helper yourself",
    ] {
        assert!(output_text(&out).contains(part), "{part:?}: {}", show(&out));
    }
    for args in [&["status"][..], &["status", "--json"]] {
        env.cli(args);
    }
    env.note_text("/v1/status", &daemon.get("/v1/status").body);
    assert_eq!(
        env.section("wrapped").unwrap()["aws_access_key_id"],
        "ASIAPROCESS000000000002"
    );
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn assume_role_from_a_credential_process_profile() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let state = legacy_helper_profile(&env);
    // `legacy` is not managed: the SDK's profile chain runs the helper for the base keys.
    env.write_config(&[AssumeRole::new("team", "TeamRole", "legacy")
        .duration("1h")
        .session("sess-team")]);

    // The helper's secrets never reach the file; the leak check must still know them.
    for n in 1..=3 {
        env.record_secret(&format!("processSecretNeverInLogs/{n:012}"));
        env.record_secret(&format!("processSessionTokenNeverInLogs+{n:012}=="));
    }
    let daemon = Daemon::start(&env);
    daemon.wait_state("team", "fresh", Duration::from_secs(30));
    let section = wait_for(Duration::from_secs(10), "[team] in the file", || {
        env.section("team")
    });
    assert!(
        std::fs::read_to_string(&state)
            .is_ok_and(|n| n.trim().parse::<u32>().is_ok_and(|n| n >= 1)),
        "the credential_process helper never ran"
    );
    assert!(
        env.section("legacy").is_none(),
        "the source profile's keys were written"
    );
    let out = env.python("caller_identity.py", &["--profile", "team"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/TeamRole/sess-team"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], section["aws_access_key_id"].as_str());
    env.assert_secrets_never_logged(&daemon);
}
