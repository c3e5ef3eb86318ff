//! `kind = "web_identity"` against moto's AssumeRoleWithWebIdentity, configured the way EKS
//! configures a pod (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE): the token file is read again
//! on every refresh, and a missing or empty one is a clear error naming the file.

use crate::support::{output_text, show, wait_for, Daemon, Moto, TestEnv, ACCOUNT};
use std::path::Path;
use std::time::Duration;

fn write_token(path: &Path, token: &str) {
    // Like the kubelet: a new file renamed over the old one.
    let tmp = path.with_extension("new");
    crate::support::write_file(&tmp, token, 0o600);
    std::fs::rename(&tmp, path).expect("rotate the token file");
}

fn token(n: u32) -> String {
    format!("eyJhbGciOiJSUzI1NiIsImtpZCI6ImUyZSJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.e2eSignature{n:04}NeverInLogs")
}

fn access_key(env: &TestEnv) -> Option<String> {
    env.section("eks")
        .and_then(|s| s.get("aws_access_key_id").cloned())
}

#[test]
fn token_file_is_reread_on_every_refresh() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    // Every child (the daemon, the CLI) logs at trace: no secret may reach the log.
    env.set_var("RUST_LOG", "trace");
    let token_file = env.root().join("token");
    write_token(&token_file, &token(1));
    for n in 1..=3 {
        env.record_secret(&token(n));
    }
    // What EKS (IRSA) sets in the pod; the config names neither.
    env.set_var(
        "AWS_ROLE_ARN",
        &format!("arn:aws:iam::{ACCOUNT}:role/PodRole"),
    );
    env.set_var(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        &token_file.display().to_string(),
    );
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\nduration = \"15m\"\n",
        env.daemon_table()
    ));

    let daemon = Daemon::start(&env);
    let fresh = daemon.wait_state("eks", "fresh", Duration::from_secs(30));
    assert_eq!(fresh["kind"], "web_identity", "{fresh}");
    assert_eq!(fresh["account_id"], ACCOUNT, "{fresh}");
    let first = wait_for(Duration::from_secs(10), "[eks] in the file", || {
        access_key(&env)
    });
    let section = env.section("eks").unwrap();
    assert_eq!(
        section["x_credfresh_expiration"],
        fresh["expires_at"].as_str().unwrap()
    );
    let out = env.python("caller_identity.py", &["--profile", "eks"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/PodRole/credfresh-eks"),
        "{id}"
    );

    // Rotated by the platform: the next refresh uses the new file.
    write_token(&token_file, &token(2));
    let out = env.cli(&["refresh", "eks"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let second = wait_for(Duration::from_secs(10), "new keys after rotation", || {
        access_key(&env).filter(|k| *k != first)
    });

    // Gone: the refresh fails naming the file, the last valid credentials stay.
    std::fs::remove_file(&token_file).unwrap();
    let out = env.cli(&["refresh", "eks"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let shown = token_file.display().to_string();
    assert!(
        output_text(&out).contains(&format!("cannot read the web identity token file {shown}")),
        "{}",
        show(&out)
    );
    let status = daemon.profile("eks").unwrap();
    assert_eq!(status["state"], "retrying", "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&shown)),
        "{status}"
    );
    assert_eq!(access_key(&env).as_deref(), Some(second.as_str()));

    // Empty (a half-written mount): also named, also kept.
    write_token(&token_file, "");
    let out = env.cli(&["refresh", "eks"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains(&format!("the web identity token file {shown} is empty")),
        "{}",
        show(&out)
    );

    // Back: fresh again with new keys.
    write_token(&token_file, &token(3));
    let out = env.cli(&["refresh", "eks"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("eks", "fresh", Duration::from_secs(10));
    wait_for(
        Duration::from_secs(10),
        "new keys after the token came back",
        || access_key(&env).filter(|k| *k != second && *k != first),
    );
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn web_identity_without_role_or_token_is_a_config_error() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\n",
        env.daemon_table()
    ));
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = output_text(&out);
    let config = env.config.display().to_string();
    assert!(
        text.contains(&format!(
            "{config}:4: profile \"eks\": kind \"web_identity\" needs `role_arn`"
        )) && text.contains("AWS_ROLE_ARN")
            && text.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{text}"
    );
}

#[test]
fn web_identity_is_the_source_of_a_narrower_role() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let token_file = env.root().join("token");
    write_token(&token_file, &token(1));
    env.record_secret(&token(1));
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/PodRole\"\ntoken_file = \"{}\"\nduration = \"15m\"\n\n[[profile]]\nname = \"team-data\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/TeamDataReadOnly\"\nsource_profile = \"eks\"\nsession_name = \"team-data-e2e\"\nduration = \"15m\"\n",
        env.daemon_table(),
        token_file.display()
    ));
    let out = env.cli(&["validate"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        output_text(&out).contains("with credentials of managed profile \"eks\""),
        "{}",
        show(&out)
    );

    let daemon = Daemon::start(&env);
    daemon.wait_state("eks", "fresh", Duration::from_secs(30));
    let team = daemon.wait_state("team-data", "fresh", Duration::from_secs(30));
    assert_eq!(team["account_id"], ACCOUNT, "{team}");
    let eks_key = wait_for(Duration::from_secs(10), "[eks] in the file", || {
        access_key(&env)
    });
    let team_key = wait_for(Duration::from_secs(10), "[team-data] in the file", || {
        env.section("team-data")
            .and_then(|s| s.get("aws_access_key_id").cloned())
    });
    assert_ne!(eks_key, team_key);
    // A program reading [team-data] is the narrower role, not the pod's.
    let out = env.python("caller_identity.py", &["--profile", "team-data"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/TeamDataReadOnly/team-data-e2e"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], team_key.as_str());
    env.assert_secrets_never_logged(&daemon);
}
