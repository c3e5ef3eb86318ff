//! `kind = "instance"`: IMDSv2 and the container endpoint (fakes in `support::metadata`),
//! the response's own expiry, clear errors on refused tokens, and an assume_role chained from
//! the instance identity.

use crate::support::metadata::{MetadataFake, Seen};
use crate::support::{output_text, show, wait_for, Daemon, Moto, TestEnv, ACCOUNT};
use serde_json::Value;
use std::time::Duration;

const ROLE: &str = "NotebookInstanceRole";
const CONTAINER_TOKEN: &str = "Basic e2eContainerAuthTokenNeverInLogs000";
const KEYS: [&str; 4] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "x_credfresh_expiration",
];

fn instance_config(env: &TestEnv, extra: &str) -> String {
    let text = format!(
        "{}\n[[profile]]\nname = \"notebook\"\nkind = \"instance\"\n{extra}",
        env.daemon_table()
    );
    env.write_config_text(&text);
    text
}

/// Waits until `[section]` holds `access_key_id`; returns the section.
fn wait_for_key(env: &TestEnv, section: &str, access_key_id: &str) -> crate::support::ini::Section {
    wait_for(
        Duration::from_secs(10),
        &format!("[{section}] with {access_key_id} in the credentials file"),
        || {
            env.section(section)
                .filter(|s| s.get("aws_access_key_id").map(String::as_str) == Some(access_key_id))
        },
    )
}

fn caller_identity(env: &TestEnv, profile: &str) -> Value {
    let out = env.python("caller_identity.py", &["--profile", profile], &[]);
    assert!(
        out.status.success(),
        "boto3 with {profile}:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).expect("caller_identity.py prints JSON")
}

#[test]
fn imdsv2_credentials_are_written_with_their_own_expiry() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    // Every child (the daemon, the CLI) logs at trace: no secret may reach the log.
    env.set_var("RUST_LOG", "trace");
    let imds = MetadataFake::start(ROLE, CONTAINER_TOKEN, Duration::from_secs(6 * 3600));
    env.set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    instance_config(&env, "");

    let daemon = Daemon::start(&env);
    let status = daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    let issued = imds.issued();
    assert_eq!(issued.len(), 1, "{issued:?}");
    let section = wait_for_key(&env, "notebook", &issued[0].access_key_id);
    for k in KEYS {
        assert!(section.get(k).is_some_and(|v| !v.is_empty()), "{k} missing");
    }
    assert_eq!(section["aws_secret_access_key"], issued[0].secret);
    assert_eq!(section["aws_session_token"], issued[0].token);
    // The expiry is the response's, to the second, in the file and in the status.
    assert_eq!(section["x_credfresh_expiration"], issued[0].expiration);
    assert_eq!(
        status["expires_at"],
        issued[0].expiration.as_str(),
        "{status}"
    );
    assert_eq!(status["kind"], "instance", "{status}");

    // The IMDSv2 dance, each step once: token, role name, credentials.
    let paths: Vec<(String, String, u16)> = imds
        .seen()
        .into_iter()
        .map(
            |Seen {
                 method,
                 path,
                 status,
             }| (method, path, status),
        )
        .collect();
    assert_eq!(
        paths,
        [
            ("PUT".into(), "/latest/api/token".into(), 200),
            (
                "GET".into(),
                "/latest/meta-data/iam/security-credentials/".into(),
                200
            ),
            (
                "GET".into(),
                format!("/latest/meta-data/iam/security-credentials/{ROLE}"),
                200
            ),
        ],
    );

    // A forced refresh fetches new credentials.
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let issued = imds.issued();
    assert_eq!(issued.len(), 2, "{issued:?}");
    wait_for_key(&env, "notebook", &issued[1].access_key_id);

    // A server error on the credentials document costs exactly one request per attempt (the
    // SDK's retries are off), and the last valid credentials stay.
    imds.fail_credentials(Some(500));
    let before = imds.seen().len();
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains("IMDS at http://127.0.0.1:"),
        "{}",
        show(&out)
    );
    let attempt: Vec<Seen> = imds.seen()[before..].to_vec();
    let credential_gets = attempt.iter().filter(|s| s.path.ends_with(ROLE)).count();
    assert_eq!(credential_gets, 1, "one attempt, one request: {attempt:?}");
    let failed = daemon.profile("notebook").unwrap();
    assert_eq!(failed["state"], "retrying", "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("answered HTTP 500")),
        "{failed}"
    );
    assert_eq!(
        env.section("notebook").unwrap()["aws_access_key_id"],
        issued[1].access_key_id
    );

    // IMDS forgetting its session tokens (their TTL ran out) does not matter: every attempt
    // starts with a new token.
    imds.fail_credentials(None);
    imds.forget_sessions();
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    for c in imds.issued() {
        env.record_secret(&c.secret);
        env.record_secret(&c.token);
    }
    for token in imds.session_tokens() {
        env.record_secret(&token);
    }
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn imds_credentials_that_already_expired_are_refused_not_extended() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let imds = MetadataFake::start(ROLE, CONTAINER_TOKEN, Duration::from_secs(3600));
    imds.issue_expired(true);
    env.set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    instance_config(&env, "");

    let daemon = Daemon::start(&env);
    let issued = wait_for(Duration::from_secs(30), "an expired issue", || {
        imds.issued().first().cloned()
    });
    // aws-config would stretch this to "now + 10-15 min"; credfresh keeps the truth and
    // refuses to write it.
    let error = wait_for(Duration::from_secs(30), "the refusal in status", || {
        daemon.profile("notebook").and_then(|p| {
            p["last_error"]
                .as_str()
                .filter(|e| e.contains("expired at"))
                .map(str::to_owned)
        })
    });
    assert!(error.contains(&issued.expiration), "{error} vs {issued:?}");
    assert!(
        env.section("notebook").is_none(),
        "expired credentials were written"
    );

    imds.issue_expired(false);
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let last = imds.issued().last().cloned().unwrap();
    let section = wait_for_key(&env, "notebook", &last.access_key_id);
    assert_eq!(section["x_credfresh_expiration"], last.expiration);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn container_endpoint_wins_and_a_wrong_token_is_a_clear_error() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    // Every child (the daemon, the CLI) logs at trace: no secret may reach the log.
    env.set_var("RUST_LOG", "trace");
    let fake = MetadataFake::start(ROLE, CONTAINER_TOKEN, Duration::from_secs(3600));
    env.record_secret(CONTAINER_TOKEN);
    // IMDS is configured too (at a port nobody serves): the container endpoint must win.
    env.set_var(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        &format!("http://127.0.0.1:{}", crate::support::free_port()),
    );
    env.set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", &fake.container_uri());
    // The token comes from a file, as on EKS Pod Identity and SageMaker.
    let token_file = env.root().join("container-token");
    crate::support::write_file(&token_file, "Basic wrong-token-0000000000000000", 0o600);
    env.set_var(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        &token_file.display().to_string(),
    );
    instance_config(&env, "");

    let daemon = Daemon::start(&env);
    let failed = daemon.wait_state("notebook", "error", Duration::from_secs(30));
    let error = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused the authorization token (HTTP 403)")
            && error.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{failed}"
    );
    assert!(fake.issued().is_empty());

    // The right token (the file is re-read on every attempt).
    crate::support::write_file(&token_file, CONTAINER_TOKEN, 0o600);
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let issued = fake.issued();
    assert_eq!(issued.len(), 1);
    let section = wait_for_key(&env, "notebook", &issued[0].access_key_id);
    assert_eq!(section["x_credfresh_expiration"], issued[0].expiration);
    let status = daemon.profile("notebook").unwrap();
    assert_eq!(status["expires_at"], issued[0].expiration.as_str());
    assert!(
        fake.seen().iter().all(|s| s.path == "/v2/credentials"),
        "IMDS was asked although the container endpoint is set: {:?}",
        fake.seen()
    );

    // A server error costs one request per attempt: the provider's own retries are off.
    fake.fail_credentials(Some(503));
    let before = fake.seen().len();
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains(
            "container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) answered HTTP 503"
        ),
        "{}",
        show(&out)
    );
    let attempt = fake.seen()[before..].to_vec();
    assert_eq!(attempt.len(), 1, "one attempt, one request: {attempt:?}");
    fake.fail_credentials(None);

    // The token file gone: the error names it.
    std::fs::remove_file(&token_file).unwrap();
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains(&token_file.display().to_string()),
        "the missing token file is not named:\n{}",
        show(&out)
    );
    drop(daemon);

    // AWS_CONTAINER_AUTHORIZATION_TOKEN without a file; missing header → 401.
    let env2 = TestEnv::new(&moto);
    env2.set_var("RUST_LOG", "trace");
    env2.set_var("AWS_CONTAINER_CREDENTIALS_FULL_URI", &fake.container_uri());
    instance_config(&env2, "");
    let daemon = Daemon::start(&env2);
    let failed = daemon.wait_state("notebook", "error", Duration::from_secs(30));
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("(HTTP 401)")),
        "{failed}"
    );
    drop(daemon);
    env2.set_var("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN);
    env2.record_secret(CONTAINER_TOKEN);
    let daemon = Daemon::start(&env2);
    daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    for c in fake.issued() {
        env2.record_secret(&c.secret);
        env2.record_secret(&c.token);
    }
    env2.assert_secrets_never_logged(&daemon);
}

#[test]
fn instance_identity_is_the_source_of_a_narrower_role() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let imds = MetadataFake::start(ROLE, CONTAINER_TOKEN, Duration::from_secs(3600));
    env.set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    instance_config(
        &env,
        &format!(
            "\n[[profile]]\nname = \"narrow\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/NarrowRole\"\nsource_profile = \"notebook\"\nduration = \"15m\"\n"
        ),
    );

    let daemon = Daemon::start(&env);
    daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    let narrow = daemon.wait_state("narrow", "fresh", Duration::from_secs(30));
    assert_eq!(narrow["account_id"], ACCOUNT, "{narrow}");
    let issued = imds.issued();
    wait_for_key(&env, "notebook", &issued[0].access_key_id);
    let section = wait_for(Duration::from_secs(10), "[narrow] in the file", || {
        env.section("narrow")
    });
    assert_ne!(section["aws_access_key_id"], issued[0].access_key_id);
    assert_eq!(
        section["x_credfresh_expiration"],
        narrow["expires_at"].as_str().unwrap()
    );

    // A program reading the file is the narrower role.
    let id = caller_identity(&env, "narrow");
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/NarrowRole/credfresh-narrow"),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], section["aws_access_key_id"].as_str());

    // Refreshing the chain goes through the instance identity again.
    let out = env.cli(&["refresh", "notebook", "narrow"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(imds.issued().len(), 2);
    for c in imds.issued() {
        env.record_secret(&c.secret);
        env.record_secret(&c.token);
    }
    env.assert_secrets_never_logged(&daemon);
}

/// One raw HTTP request to a fake on loopback; the status code it answered.
fn raw_status(endpoint: &str, request: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to the fake");
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn imds_refusing_the_session_token_is_retried_and_named() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let imds = MetadataFake::start(ROLE, CONTAINER_TOKEN, Duration::from_secs(6 * 3600));
    let creds = format!("/latest/meta-data/iam/security-credentials/{ROLE}");
    // The fake follows IMDSv2: no session token, or one it never issued, is refused with 401.
    let missing = format!("GET {creds} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&imds.endpoint(), &missing), 401);
    let wrong = format!(
        "GET {creds} HTTP/1.1\r\nHost: x\r\nx-aws-ec2-metadata-token: not-a-session-token\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(&imds.endpoint(), &wrong), 401);

    env.set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
    instance_config(&env, "");
    let daemon = Daemon::start(&env);
    daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    let first = imds.issued();
    wait_for_key(&env, "notebook", &first[0].access_key_id);

    // IMDS starts refusing the tokens it hands out: a transient failure (a new token may
    // work), named as such, with the old credentials kept.
    imds.refuse_sessions(true);
    let out = env.cli(&["refresh", "notebook"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let p = daemon.profile("notebook").unwrap();
    assert_eq!(p["state"], "retrying", "{p}");
    let error = p["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "IMDS at {} refused the session token (HTTP 401)",
            imds.endpoint()
        )),
        "{p}"
    );
    assert!(imds.seen().iter().any(|s| s.status == 401));
    assert_eq!(
        imds.issued().len(),
        1,
        "no credentials without a valid token"
    );
    assert_eq!(
        env.section("notebook").unwrap()["aws_access_key_id"],
        first[0].access_key_id
    );

    // Tokens accepted again: back to fresh by itself.
    imds.refuse_sessions(false);
    daemon.wait_state("notebook", "fresh", Duration::from_secs(30));
    for c in imds.issued() {
        env.record_secret(&c.secret);
        env.record_secret(&c.token);
    }
    env.assert_secrets_never_logged(&daemon);
}
