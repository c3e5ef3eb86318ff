//! Delivery to long-running programs: `credential_process`, the container endpoint and
//! `/v1/credentials` keep a program that built one boto3 session going across refreshes,
//! while a program holding credentials read from the file fails once they expire.
//! A proxy in front of moto enforces expiry the way AWS does (moto itself does not).

use crate::support::fault_proxy::FaultProxy;
use crate::support::{
    ensure_awscli_v2, ensure_venv, free_port, repo_root, show, wait_for, write_file, AssumeRole,
    Daemon, Moto, TestEnv, AWS_CONFIG, BASE_PROFILE,
};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `tests/py/long_client.py` with the test's environment plus `extra`.
fn long_client(
    env: &TestEnv,
    seconds: u32,
    profile: Option<&str>,
    bucket: &str,
    extra: &[(&str, String)],
) -> Child {
    let mut cmd = Command::new(ensure_venv().join("bin/python"));
    cmd.arg(repo_root().join("tests/py/long_client.py")).args([
        "--seconds",
        &seconds.to_string(),
        "--interval",
        "1.5",
        "--bucket",
        bucket,
    ]);
    if let Some(p) = profile {
        cmd.args(["--profile", p]);
    }
    cmd.env_clear()
        .envs(env.vars())
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start long_client.py")
}

fn summary(child: Child, what: &str) -> Value {
    let out = child.wait_with_output().expect("wait for long_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"))
}

/// Writes a config with the container endpoint on a free loopback port and one `assume_role`
/// profile `name` (role `role`, credentials for `duration`); returns the port.
fn config_with_endpoint(env: &TestEnv, name: &str, role: &str, duration: &str) -> u16 {
    let port = free_port();
    let mut text = env.daemon_table();
    text.push_str(&format!("container_endpoint = \"127.0.0.1:{port}\"\n"));
    AssumeRole::new(name, role, BASE_PROFILE)
        .duration(duration)
        .render(&mut text);
    env.write_config_text(&text);
    port
}

#[test]
fn long_running_clients_survive_refreshes_through_process_and_endpoint_but_not_the_file() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let env = TestEnv::with_sts(&proxy.endpoint());
    config_with_endpoint(&env, "live", "LiveRole", "30s");
    let daemon = Daemon::start(&env);
    daemon.wait_state("live", "fresh", Duration::from_secs(30));

    // What `credfresh env` prints is what the clients use.
    let process = env.cli(&["env", "--process", "live"]);
    let snippet = String::from_utf8_lossy(&process.stdout).into_owned();
    assert!(snippet.contains("[profile live-live]"), "{snippet}");
    let client_config = env.root().join("client-config");
    write_file(
        &client_config,
        &format!("[default]\nregion = us-east-1\n\n{snippet}"),
        0o600,
    );
    let exports = String::from_utf8_lossy(&env.cli(&["env", "live"]).stdout).into_owned();
    let export = |name: &str| -> String {
        let line = exports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in:\n{exports}"));
        line.trim_matches('\'').to_owned()
    };
    let empty = env.root().join("empty-credentials");
    write_file(&empty, "", 0o600);
    let plain_config = env.root().join("plain-config");
    write_file(&plain_config, "[default]\nregion = us-east-1\n", 0o600);

    // The daemon refreshes 30 s credentials about every 20 s: 3 refresh cycles take 60 s
    // and show 4 access keys; the margin covers start-up and jitter.
    let seconds = 85;
    let via_process = long_client(
        &env,
        seconds,
        Some("live-live"),
        "via-process",
        &[
            ("AWS_CONFIG_FILE", client_config.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.display().to_string()),
        ],
    );
    let via_endpoint = long_client(
        &env,
        seconds,
        None,
        "via-endpoint",
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                export("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                export("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            ),
            ("AWS_CONFIG_FILE", plain_config.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.display().to_string()),
        ],
    );
    let via_file = long_client(&env, seconds, Some("live"), "via-file", &[]);

    let process = summary(via_process, "credential_process");
    let endpoint = summary(via_endpoint, "container endpoint");
    let file = summary(via_file, "credentials file");
    eprintln!("delivery: credential_process {process}; container endpoint {endpoint}; file {file}");
    for (what, s) in [
        ("credential_process", &process),
        ("container endpoint", &endpoint),
    ] {
        assert_eq!(s["errors"], 0, "{what}: {s}");
        assert!(s["calls"].as_u64().unwrap() >= 30, "{what}: {s}");
        assert!(s["s3_calls"].as_u64().unwrap() >= 60, "{what}: {s}");
        assert!(
            s["access_keys"].as_u64().unwrap() >= 4,
            "{what} did not follow 3 refresh cycles (4 access keys): {s}"
        );
    }
    assert!(
        file["errors"].as_u64().unwrap() > 0,
        "the file client should fail: {file}"
    );
    assert!(
        file["first_error"]
            .as_str()
            .unwrap_or("")
            .contains("ExpiredToken"),
        "{file}"
    );
    let refreshes = daemon.log_lines("refreshed", "live").len();
    assert!(refreshes >= 4, "only {refreshes} refreshes");
    env.assert_secrets_never_logged(&daemon);
}

/// `credfresh ARGS…` whose stdout carries secrets by design (credential-process).
pub(crate) fn secret_cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_credfresh"));
    cmd.arg("--config").arg(&env.config).args(args);
    secret_output(env, &mut cmd, &format!("credfresh {}", args.join(" ")))
}

/// Runs `cmd` in the test's environment. Its stdout carries secrets by design, so it is kept
/// out of the transcript the leak check searches; its stderr is still searched.
fn secret_output(env: &TestEnv, cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    env.note_text(
        &format!("{what} (stderr)"),
        &String::from_utf8_lossy(&out.stderr),
    );
    out
}

#[test]
fn credentials_endpoint_metrics_and_direct_fetch() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let port = config_with_endpoint(&env, "api", "ApiRole", "1h");
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("api", "fresh", Duration::from_secs(30));

    // credential-process from the daemon's memory matches the file.
    let out = secret_cli(&env, &["credential-process", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).expect("credential_process JSON");
    assert_eq!(c["Version"], 1);
    let section = wait_for(Duration::from_secs(10), "the api section", || {
        env.section("api")
    });
    assert_eq!(
        c["AccessKeyId"].as_str(),
        Some(section["aws_access_key_id"].as_str())
    );
    assert_eq!(
        c["Expiration"].as_str(),
        Some(section["x_credfresh_expiration"].as_str())
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unknown = env.cli(&["credential-process", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));

    // The container endpoint wants the token from its 0600 file.
    let token_file = env.socket.parent().unwrap().join("container-token");
    let token = std::fs::read_to_string(&token_file).expect("token file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let url = format!("http://127.0.0.1:{port}/v1/container-credentials/api");
    let curl = |auth: Option<&str>| -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        if let Some(a) = auth {
            cmd.args(["-H", &format!("Authorization: {a}")]);
        }
        String::from_utf8_lossy(&cmd.output().expect("curl").stdout).into_owned()
    };
    assert_eq!(curl(None), "401");
    for _ in 0..5 {
        assert_eq!(curl(Some("wrong")), "403");
    }
    let warnings = daemon.log().matches("wrong token").count();
    assert_eq!(warnings, 1, "one warning a minute: {}", daemon.log());
    assert_eq!(curl(Some(&token)), "200");

    // /metrics parses with the Prometheus project's own parser.
    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200);
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
refreshes = [s for s in families["credfresh_refreshes"].samples if s.name.endswith("_total")]
assert any(s.labels["profile"] == "api" and s.value >= 1 for s in refreshes), refreshes
ttl = families["credfresh_seconds_until_expiry"].samples
assert any(s.labels["profile"] == "api" and 3000 < s.value <= 3600 for s in ttl), ttl
assert families["credfresh_file_writes"].samples[0].value >= 1
print("ok")
"#;
    let mut py = Command::new(ensure_venv().join("bin/python"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    py.stdin
        .take()
        .unwrap()
        .write_all(metrics.body.as_bytes())
        .unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        metrics.body,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    env.note_text("GET /metrics", &metrics.body);

    // Without a daemon, credential-process fetches directly and says so.
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(10));
    let out = secret_cli(&env, &["credential-process", "api"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    let direct: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_ne!(direct["AccessKeyId"], c["AccessKeyId"], "a new fetch");
    env.assert_secrets_never_logged(&daemon);
}

/// A profile name that is legal in the credentials file but not in a URL path (`/`, `%`,
/// `+`) is written, read back by botocore, and served by `status`, `credential-process` and
/// the URL `credfresh env` prints for the container endpoint.
#[test]
fn a_name_that_needs_percent_encoding_is_served_everywhere() {
    let name = "ml/team%20+1";
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    config_with_endpoint(&env, name, "OddRole", "1h");
    let daemon = Daemon::start(&env);
    daemon.wait_state(name, "fresh", Duration::from_secs(30));

    let section = wait_for(Duration::from_secs(10), "the odd section", || {
        env.section(name)
    });
    let key = section["aws_access_key_id"].clone();
    let read = env.aws(&["configure", "get", "aws_access_key_id", "--profile", name]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        key,
        "{read:?}"
    );

    let status = env.cli(&["status", "--json", name]);
    assert!(status.status.success(), "{}", crate::support::show(&status));
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["name"], name);

    let out = secret_cli(&env, &["credential-process", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).expect("credential_process JSON");
    assert_eq!(c["AccessKeyId"].as_str(), Some(key.as_str()));

    let exports = String::from_utf8_lossy(&env.cli(&["env", name]).stdout).into_owned();
    let url = exports
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_CONTAINER_CREDENTIALS_FULL_URI="))
        .map(|u| u.trim_matches('\'').to_owned())
        .unwrap_or_else(|| panic!("no URL in:\n{exports}"));
    assert!(url.ends_with("/ml%2Fteam%2520%2B1"), "{url}");
    let token_file = env.socket.parent().unwrap().join("container-token");
    let token = std::fs::read_to_string(&token_file).expect("token file");
    let body = Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: {token}"), &url])
        .output()
        .expect("curl");
    let reply: Value = serde_json::from_slice(&body.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body.stdout)));
    assert_eq!(reply["AccessKeyId"].as_str(), Some(key.as_str()));
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn aws_cli_v2_reads_the_file_and_runs_credential_process() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("api", "ApiRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("api", "fresh", Duration::from_secs(30));
    let section = wait_for(Duration::from_secs(10), "the api section", || {
        env.section("api")
    });
    write_file(
        &env.aws_config,
        &format!(
            "{AWS_CONFIG}\n[profile via-credfresh]\nregion = us-east-1\ncredential_process = {} --config {} credential-process api\n",
            env!("CARGO_BIN_EXE_credfresh"),
            env.config.display()
        ),
        0o600,
    );

    // The CLI v2 reading the file credfresh wrote, and through credential_process.
    for profile in ["api", "via-credfresh"] {
        let out = env.aws_v2(&["sts", "get-caller-identity", "--profile", profile]);
        assert!(out.status.success(), "{}", show(&out));
        let who: Value = serde_json::from_slice(&out.stdout).expect("get-caller-identity JSON");
        assert!(
            who["Arn"]
                .as_str()
                .unwrap_or("")
                .contains("assumed-role/ApiRole/"),
            "{profile}: {who}"
        );
    }

    // `aws configure export-credentials` hands on the daemon's credentials.
    let mut cmd = Command::new(ensure_awscli_v2());
    cmd.args([
        "configure",
        "export-credentials",
        "--profile",
        "via-credfresh",
    ])
    .args(["--format", "process"]);
    let out = secret_output(&env, &mut cmd, "aws configure export-credentials");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).expect("export-credentials JSON");
    assert_eq!(
        c["AccessKeyId"].as_str(),
        Some(section["aws_access_key_id"].as_str())
    );
    // The CLI writes the offset as +00:00 where credfresh writes Z: the instant is compared.
    let expiration = c["Expiration"].as_str().unwrap_or("");
    assert_eq!(
        expiration.get(..19),
        section["x_credfresh_expiration"].get(..19),
        "{expiration}"
    );
    env.assert_secrets_never_logged(&daemon);
}

/// A daemon killed between creating and renaming the endpoint's temporary token file leaves
/// it behind; in a container the daemon has the same pid (often 1) on every start, and the
/// token's volume outlives it. Later starts must still serve, and clear the leftovers.
#[test]
fn leftover_token_temp_files_never_keep_the_endpoint_down() {
    use std::os::unix::fs::DirBuilderExt;
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let port = config_with_endpoint(&env, "api", "ApiRole", "1h");
    let dir = env.socket.parent().unwrap().to_owned();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .expect("run dir");
    // The pids the daemon may get: 1 (a container), and the next ones on this machine.
    let next = Command::new("true").spawn().expect("spawn true").id();
    let pids = (1..=8).chain(next..next + 400);
    let leftovers: Vec<_> = pids
        .map(|pid| dir.join(format!(".container-token.{pid}.tmp")))
        .collect();
    for l in &leftovers {
        write_file(l, "stale", 0o600);
    }
    let daemon = Daemon::start(&env);
    daemon.wait_state("api", "fresh", Duration::from_secs(30));
    let token = std::fs::read_to_string(dir.join("container-token")).expect("token file");
    assert_ne!(token, "stale");
    let url = format!("http://127.0.0.1:{port}/v1/container-credentials/api");
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .args(["-H", &format!("Authorization: {token}")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let left: Vec<_> = leftovers.iter().filter(|l| l.exists()).collect();
    assert!(left.is_empty(), "leftovers not removed: {left:?}");
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
