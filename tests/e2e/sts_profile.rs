//! Test 1: a profile assumed from the static-key base profile lands in the credentials file,
//! and boto3 reading that file is the assumed role.

use crate::support::fault_proxy::FaultProxy;
use crate::support::{
    free_port, ini, rfc3339, show, wait_for, AssumeRole, Daemon, Moto, TestEnv, ACCOUNT,
    BASE_PROFILE,
};
use serde_json::Value;
use std::time::{Duration, SystemTime};

fn caller_identity(env: &TestEnv, profile: &str) -> Value {
    let out = env.python("caller_identity.py", &["--profile", profile], &[]);
    assert!(
        out.status.success(),
        "boto3 with --profile {profile} failed:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).expect("caller_identity.py prints JSON")
}

#[test]
fn assumed_profile_is_written_and_boto3_uses_it() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let training = AssumeRole::new("ml-training", "MLTrainingRole", BASE_PROFILE)
        .duration("1h")
        .session("e2e-session");
    // No session_name: the contract's default is credfresh-<profile>.
    let notebook = AssumeRole::new("notebook", "NotebookRole", BASE_PROFILE).duration("1h");
    env.write_config(&[training.clone(), notebook.clone()]);
    let original_foreign = ini::without_sections(&env.read_credentials(), &[]);

    let daemon = Daemon::start(&env);
    let status = daemon.wait_state("ml-training", "fresh", Duration::from_secs(30));
    daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    assert_eq!(status["account_id"], ACCOUNT, "{status}");

    // The writer may finish a moment after the state turns fresh.
    let section = wait_for(
        Duration::from_secs(10),
        "[ml-training] with all four keys in the credentials file",
        || {
            env.section("ml-training").filter(|s| {
                [
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "aws_session_token",
                    "x_credfresh_expiration",
                ]
                .iter()
                .all(|k| s.get(*k).is_some_and(|v| !v.is_empty()))
            })
        },
    );
    wait_for(Duration::from_secs(10), "[notebook] in the file", || {
        env.section("notebook")
    });

    // The expiry written is the source's own (duration 1h), the same the status reports.
    let written = &section["x_credfresh_expiration"];
    let expires = rfc3339(written, "x_credfresh_expiration");
    let lifetime = expires
        .duration_since(SystemTime::now())
        .expect("written expiry is in the future");
    assert!(
        lifetime > Duration::from_secs(55 * 60) && lifetime <= Duration::from_secs(3600),
        "expiry {written} is not about an hour away"
    );
    let status = daemon.profile("ml-training").unwrap();
    assert_eq!(status["expires_at"], written.as_str(), "{status}");

    // A user's program reading the file is the assumed role, with the file's keys.
    let id = caller_identity(&env, "ml-training");
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/MLTrainingRole/e2e-session"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], section["aws_access_key_id"].as_str());
    let id = caller_identity(&env, "notebook");
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/NotebookRole/credfresh-notebook"),
        "{id}"
    );

    // Nothing else in the file moved.
    let text = env.read_credentials();
    assert_eq!(
        ini::without_sections(&text, &["ml-training", "notebook"]),
        original_foreign,
        "foreign sections changed:\n{text}"
    );

    let _ = env.status_json();
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn the_general_aws_endpoint_url_reaches_sts() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    // Only the general variable: every service, STS included, goes to moto.
    env.remove_var("AWS_ENDPOINT_URL_STS");
    env.set_var("AWS_ENDPOINT_URL", &moto.endpoint());
    env.write_config(&[AssumeRole::new("general", "GeneralRole", BASE_PROFILE)
        .duration("1h")
        .session("sess-general")]);
    let daemon = Daemon::start(&env);
    let status = daemon.wait_state("general", "fresh", Duration::from_secs(30));
    assert_eq!(status["account_id"], ACCOUNT, "{status}");
    let section = wait_for(Duration::from_secs(10), "[general] in the file", || {
        env.section("general")
    });
    // moto issued these keys: it knows them as the assumed role.
    let endpoint = moto.endpoint();
    let out = env.python(
        "caller_identity.py",
        &["--profile", "general"],
        &[("AWS_ENDPOINT_URL_STS", endpoint.as_str())],
    );
    assert!(out.status.success(), "{}", show(&out));
    let id: Value = serde_json::from_slice(&out.stdout).expect("caller_identity.py prints JSON");
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/GeneralRole/sess-general"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], section["aws_access_key_id"].as_str());
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn sts_is_reached_through_the_http_proxy_of_the_environment() {
    // The STS endpoint is a port nobody listens on; only the proxy (HTTP_PROXY) reaches moto.
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let env = TestEnv::with_sts(&unreachable);
    env.write_config(&[AssumeRole::new("proxied", "ProxiedRole", BASE_PROFILE).duration("1h")]);
    let endpoint = proxy.endpoint();
    let daemon = Daemon::start_with(&env, &[("HTTP_PROXY", &endpoint)]);
    daemon.wait_state("proxied", "fresh", Duration::from_secs(30));
    let stats = proxy.stats();
    assert!(
        stats["proxied"].as_u64().unwrap_or(0) >= 1,
        "no request went through the proxy: {stats}"
    );
    assert_eq!(stats["by_action"]["AssumeRole"], 1, "{stats}");
}
