//! `credfresh exec PROFILE -- COMMAND`: the command's SDK keeps getting fresh credentials
//! from a container endpoint (the daemon's when enabled, else a private one that lives as
//! long as the command), with the variables that would win over it removed, signals passed
//! on and the command's exit status returned.

use crate::support::{
    ensure_venv, free_port, repo_root, show, wait_until, AssumeRole, Daemon, Moto, TestEnv,
    BASE_PROFILE,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Writes a config with one `assume_role` profile `name` of `duration`, in `region`, with
/// the daemon's container endpoint when `endpoint`; returns the endpoint's port.
fn config(env: &TestEnv, name: &str, duration: &str, endpoint: bool) -> Option<u16> {
    let mut text = env.daemon_table();
    let port = endpoint.then(free_port);
    if let Some(port) = port {
        text.push_str(&format!("container_endpoint = \"127.0.0.1:{port}\"\n"));
    }
    AssumeRole::new(name, "ExecRole", BASE_PROFILE)
        .duration(duration)
        .render(&mut text);
    text.push_str("region = \"eu-west-1\"\n");
    env.write_config_text(&text);
    port
}

/// `credfresh --config C exec ARGS…` in the test's environment plus `extra`, without `drop`.
fn exec_command(env: &TestEnv, args: &[&str], extra: &[(&str, &str)], drop: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_credfresh"));
    cmd.arg("--config")
        .arg(&env.config)
        .arg("exec")
        .args(args)
        .env_clear()
        .envs(
            env.vars()
                .into_iter()
                .filter(|(k, _)| !drop.contains(&k.as_str())),
        )
        .envs(extra.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// Runs `exec` to completion; its output goes to the leak check's transcript.
fn exec_output(env: &TestEnv, args: &[&str], extra: &[(&str, &str)], drop: &[&str]) -> Output {
    let out = exec_command(env, args, extra, drop)
        .output()
        .expect("run credfresh exec");
    env.note(&format!("credfresh exec {}", args.join(" ")), &out);
    out
}

fn python() -> PathBuf {
    ensure_venv().join("bin/python")
}

fn script(name: &str) -> String {
    repo_root()
        .join("tests/py")
        .join(name)
        .display()
        .to_string()
}

/// Reads the report `exec_probe.py` wrote; its token is remembered for the leak check.
fn report(env: &TestEnv, path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the probe's report");
    if let Ok(token) = std::fs::read_to_string(path.with_extension("json.token")) {
        env.record_secret(&token);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The variables that would win over the endpoint, set in `exec`'s own environment.
const LEAKS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIALEAKEDINTOEXEC01"),
    ("AWS_SECRET_ACCESS_KEY", "leakedSecretMustNotReachTheChild"),
    ("AWS_SESSION_TOKEN", "leakedSessionToken"),
    ("AWS_SECURITY_TOKEN", "leakedSecurityToken"),
    ("AWS_PROFILE", "foreign"),
    ("AWS_DEFAULT_PROFILE", "foreign"),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
    ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Other"),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "/v2/credentials/x",
    ),
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale"),
];

/// What both endpoints must show the command: the endpoint and token, no variable that
/// wins over it, the profile's region, the credentials file hidden (its `[default]` has
/// keys), and errors the SDKs can read.
fn check_probe(r: &Value, what: &str) {
    let names: Vec<&str> = r["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (leak, _) in LEAKS
        .iter()
        .filter(|(k, _)| *k != "AWS_CONTAINER_AUTHORIZATION_TOKEN")
    {
        assert!(
            !names.contains(leak),
            "{what}: {leak} reached the command: {r}"
        );
    }
    for set in [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    ] {
        assert!(names.contains(&set), "{what}: no {set}: {r}");
    }
    assert_eq!(r["token_var_matches_file"], true, "{what}: {r}");
    let values = &r["values"];
    assert_eq!(values["CREDFRESH_PROFILE"], "job", "{what}: {r}");
    assert_eq!(values["AWS_REGION"], "eu-west-1", "{what}: {r}");
    assert_eq!(values["AWS_DEFAULT_REGION"], "eu-west-1", "{what}: {r}");
    assert_eq!(
        values["AWS_SHARED_CREDENTIALS_FILE"], "/dev/null",
        "{what}: {r}"
    );
    let url = values["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{what}: {url}");
    // Errors in the shape the Go, JS and Rust SDKs parse, plus `error` as before.
    for (probe, status, code) in [
        ("no_token", 401, "MissingAuthorizationToken"),
        ("wrong_token", 403, "AccessDenied"),
        ("other_profile", 404, "NotFound"),
    ] {
        let p = &r[probe];
        assert_eq!(p["status"], status, "{what} {probe}: {r}");
        assert_eq!(p["Code"], code, "{what} {probe}: {r}");
        let message = p["Message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{what} {probe}: {r}");
        assert_eq!(p["error"].as_str(), Some(message), "{what} {probe}: {r}");
    }
    assert_eq!(r["right_token"]["status"], 200, "{what}: {r}");
    let fields = r["right_token"]["fields"].to_string();
    for f in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(fields.contains(f), "{what}: {fields}");
    }
}

#[test]
fn exec_gives_the_command_only_its_endpoint_and_sdk_readable_errors() {
    let moto = Moto::start();
    let private = TestEnv::new(&moto);
    config(&private, "job", "1h", false);
    let shared = TestEnv::new(&moto);
    config(&shared, "job", "1h", true);
    let trace = [("RUST_LOG", "trace")];
    let daemons = [
        Daemon::start_with(&private, &trace),
        Daemon::start_with(&shared, &trace),
    ];
    for (env, daemon, what) in [
        (&private, &daemons[0], "private endpoint"),
        (&shared, &daemons[1], "daemon's endpoint"),
    ] {
        daemon.wait_state("job", "fresh", Duration::from_secs(30));
        let out_file = env.root().join("probe.json");
        let out_arg = out_file.display().to_string();
        let mut extra: Vec<(&str, &str)> = LEAKS.to_vec();
        extra.push(("RUST_LOG", "trace"));
        let out = exec_output(
            env,
            &[
                "job",
                "--",
                python().to_str().unwrap(),
                &script("exec_probe.py"),
                &out_arg,
            ],
            &extra,
            &["AWS_REGION"],
        );
        assert_eq!(out.status.code(), Some(0), "{what}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("AWS_SHARED_CREDENTIALS_FILE=/dev/null"),
            "{what}: says why the file is hidden: {stderr}"
        );
        let r = report(env, &out_file);
        check_probe(&r, what);
        let url = r["values"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
            .as_str()
            .unwrap();
        let token_file = r["values"]["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
            .as_str()
            .unwrap();
        if what == "private endpoint" {
            // Gone with the command: the port is closed and the token file removed.
            let addr = url.trim_start_matches("http://").split('/').next().unwrap();
            assert!(
                std::net::TcpStream::connect(addr).is_err(),
                "the private endpoint {addr} still listens"
            );
            assert!(!Path::new(token_file).exists(), "{token_file} left behind");
        } else {
            assert_eq!(
                Path::new(token_file),
                env.socket.parent().unwrap().join("container-token")
            );
            // `credfresh env` gives a shell the same variables, the token read from its file.
            let check = "eval \"$(\"$0\" --config \"$1\" env job)\" && \
                [ \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" = \"$(cat \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\")\" ] && \
                [ \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" = \"$2\" ] && \
                [ \"$AWS_SHARED_CREDENTIALS_FILE\" = /dev/null ] && \
                [ -z \"${AWS_PROFILE+x}${AWS_ACCESS_KEY_ID+x}${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI+x}\" ] && echo ok";
            let out = Command::new("sh")
                .args(["-c", check, env!("CARGO_BIN_EXE_credfresh")])
                .arg(&env.config)
                .arg(url)
                .env_clear()
                .envs(env.vars())
                .envs(LEAKS.iter().copied())
                .output()
                .expect("sh");
            env.note("eval credfresh env", &out);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "ok",
                "{}",
                show(&out)
            );
        }
        env.assert_secrets_never_logged(daemon);
    }
}

/// Starts `exec` of `long_client.py` (one boto3 session for `seconds`, no profile: the
/// default chain, so the endpoint) with the variables that would win over it set.
fn long_client(env: &TestEnv, seconds: u32, bucket: &str) -> Child {
    let seconds = seconds.to_string();
    let args: [String; 10] = [
        "job".into(),
        "--".into(),
        python().display().to_string(),
        script("long_client.py"),
        "--seconds".into(),
        seconds,
        "--interval".into(),
        "1.5".into(),
        "--bucket".into(),
        bucket.into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    exec_command(env, &args, LEAKS, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start credfresh exec")
}

#[test]
fn exec_keeps_one_long_lived_client_fresh_through_either_endpoint() {
    let moto = Moto::start();
    let private = TestEnv::new(&moto);
    config(&private, "job", "15s", false);
    let shared = TestEnv::new(&moto);
    config(&shared, "job", "15s", true);
    let daemons = [Daemon::start(&private), Daemon::start(&shared)];
    for d in &daemons {
        d.wait_state("job", "fresh", Duration::from_secs(30));
    }
    // 15 s credentials are refreshed about every 10 s: 45 s see at least 4 access keys.
    let clients = [
        (
            long_client(&private, 45, "via-private"),
            &private,
            "private endpoint",
        ),
        (
            long_client(&shared, 45, "via-daemon"),
            &shared,
            "daemon's endpoint",
        ),
    ];
    for (child, env, what) in clients {
        let out = child.wait_with_output().expect("wait for credfresh exec");
        env.note(&format!("credfresh exec ({what})"), &out);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", show(&out));
        let s: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {}", show(&out)));
        eprintln!("exec via the {what}: {s}");
        assert_eq!(s["errors"], 0, "{what}: {s}");
        assert!(s["calls"].as_u64().unwrap() >= 15, "{what}: {s}");
        assert!(
            s["access_keys"].as_u64().unwrap() >= 4,
            "{what}: one client should have followed 3 rotations (4 access keys): {s}"
        );
    }
    for (env, d) in [(&private, &daemons[0]), (&shared, &daemons[1])] {
        env.assert_secrets_never_logged(d);
    }
}

#[test]
fn exec_passes_signals_on_and_exits_with_the_commands_status() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    config(&env, "job", "1h", false);
    let daemon = Daemon::start(&env);
    daemon.wait_state("job", "fresh", Duration::from_secs(30));

    // The command's own exit status.
    let out = exec_output(&env, &["job", "--", "sh", "-c", "exit 5"], &[], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));

    // SIGTERM to exec reaches a command that handles it; its status comes back.
    let ready = env.root().join("ready");
    let got = env.root().join("got");
    let handler = "trap 'echo term > \"$1\"; exit 7' TERM; : > \"$0\"; while :; do sleep 0.1; done";
    let handler_args = ["job", "--", "sh", "-c", handler, ready.to_str().unwrap()];
    let mut child = start_and_wait(&env, &handler_args, got.to_str().unwrap(), &ready);
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().expect("wait for credfresh exec");
    assert_eq!(status.code(), Some(7));
    assert_eq!(
        std::fs::read_to_string(&got).unwrap_or_default().trim(),
        "term"
    );

    // A command the signal kills: 128 + 15, as a shell reports it.
    let ready = env.root().join("ready2");
    let sleeper = ["job", "--", "sh", "-c", ": > \"$0\"; exec sleep 60"];
    let mut child = start_and_wait(&env, &sleeper, ready.to_str().unwrap(), &ready);
    // `exec sleep` replaces the shell right after the file appears: wait until it has.
    wait_until(Duration::from_secs(20), "sleep to run", || {
        let pid = child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        children.unwrap_or_default().split_whitespace().any(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim() == "sleep")
        })
    });
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().expect("wait for credfresh exec");
    assert_eq!(status.code(), Some(143));

    // A command that cannot be found: 127, as a shell says.
    let out = exec_output(&env, &["job", "--", "/nonexistent/program"], &[], &[]);
    assert_eq!(out.status.code(), Some(127), "{}", show(&out));
    env.assert_secrets_never_logged(&daemon);
}

/// Starts `exec ARGS… LAST` and waits until its command has created `ready`.
fn start_and_wait(env: &TestEnv, args: &[&str], last: &str, ready: &Path) -> Child {
    let mut all = args.to_vec();
    all.push(last);
    let child = exec_command(env, &all, &[], &[])
        .stderr(Stdio::null())
        .spawn()
        .expect("start credfresh exec");
    wait_until(Duration::from_secs(20), "the command to start", || {
        ready.exists()
    });
    child
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, sig).expect("signal credfresh exec");
}

#[test]
fn exec_needs_the_daemon_and_the_profile_and_waits_for_its_credentials() {
    let mut moto = Moto::start();
    let env = TestEnv::new(&moto);
    config(&env, "job", "1h", false);
    let marker = env.root().join("ran");
    let touch = ["sh", "-c", ": > \"$0\"", marker.to_str().unwrap()];
    let with = |before: &[&'static str]| -> Vec<&str> {
        let mut a = before.to_vec();
        a.push("--");
        a.extend_from_slice(&touch);
        a
    };
    let out = exec_output(&env, &with(&["job"]), &[], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));

    // STS is down: the daemon holds nothing for the profile.
    moto.stop();
    let daemon = Daemon::start(&env);
    let out = exec_output(&env, &with(&["nope"]), &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = exec_output(&env, &with(&["--timeout", "2s", "job"]), &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting up to 2s for \"job\""), "{stderr}");
    assert!(stderr.contains("gave up after 2s"), "{stderr}");
    assert!(!marker.exists(), "the command ran without credentials");

    // STS is back: exec waits for the daemon's next attempt, then runs the command.
    moto.restart();
    let out = exec_output(&env, &with(&["job"]), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(marker.exists(), "the command did not run");
    env.assert_secrets_never_logged(&daemon);
}

/// What boto3 under `exec` resolves: `METHOD ACCESS_KEY`, or the error.
const WHO: &str = "import boto3\n\
try:\n    c = boto3.Session().get_credentials()\n    print(c.method, c.access_key)\n\
except Exception as e:\n    print('error', type(e).__name__, e)\n";

/// A `[default]` in the credentials file that is a credential source of any kind (not only
/// keys) would win over the endpoint: the file is hidden from the command, and `env` says so;
/// a credential source in the config file's `[default]` (here an SSO one missing its account,
/// which breaks boto3) stops `exec`, naming the line.
#[test]
fn exec_hides_any_default_credential_source_of_the_credentials_file() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    config(&env, "job", "1h", false);
    let daemon = Daemon::start(&env);
    daemon.wait_state("job", "fresh", Duration::from_secs(30));
    let hijack = "AKIAHIJACKEDBYDEFAULT";
    let other = env.root().join("otherc");
    let other_arg = other.display().to_string();
    let python = python();
    let who = ["job", "--", python.to_str().unwrap(), "-c", WHO];
    for (what, default) in [
        (
            "credential_process",
            format!(
                "credential_process = sh -c 'echo \"{{\\\"Version\\\": 1, \\\"AccessKeyId\\\": \\\"{hijack}\\\", \\\"SecretAccessKey\\\": \\\"x\\\"}}\"'\n"
            ),
        ),
        (
            "role_arn",
            "role_arn = arn:aws:iam::123456789012:role/Other\ncredential_source = Environment\n"
                .to_owned(),
        ),
        (
            "sso_account_id",
            "sso_account_id = 123456789012\nsso_role_name = R\nsso_start_url = https://x.invalid/start\nsso_region = us-east-1\n"
                .to_owned(),
        ),
    ] {
        std::fs::write(&other, format!("[default]\n{default}[base]\nregion = us-east-1\n"))
            .unwrap();
        let out = exec_output(
            &env,
            &who,
            &[("AWS_SHARED_CREDENTIALS_FILE", &other_arg)],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", show(&out));
        assert!(
            stdout.starts_with("container-role ") && !stdout.contains(hijack),
            "{what}: boto3 did not use the endpoint: {}",
            show(&out)
        );
        assert!(
            stderr.contains(&format!("{other_arg}:2: the `default` profile sets `{what}`"))
                && stderr.contains("AWS_SHARED_CREDENTIALS_FILE=/dev/null"),
            "{what}: says why the file is hidden: {stderr}"
        );
    }

    // `credfresh env` (with the daemon's endpoint) hides it the same way.
    let shell = TestEnv::new(&moto);
    config(&shell, "job", "1h", true);
    shell.set_var("AWS_SHARED_CREDENTIALS_FILE", &other_arg);
    let out = shell.cli(&["env", "job"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "{other_arg}:2: the default profile sets `sso_account_id`, which the SDKs would take before the endpoint:\nexport AWS_SHARED_CREDENTIALS_FILE=/dev/null\n"
        )),
        "{}",
        show(&out)
    );

    // In the config file it cannot be hidden without its regions and profiles: exit 2.
    let conf = env.root().join("otherconf");
    let conf_arg = conf.display().to_string();
    std::fs::write(
        &conf,
        "[default]\nregion = us-east-1\nsso_session = corp\nsso_role_name = R\n\n[sso-session corp]\nsso_start_url = https://x.invalid/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let out = exec_output(&env, &who, &[("AWS_CONFIG_FILE", &conf_arg)], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{conf_arg}:3: the `default` profile sets `sso_session`"
        )),
        "{}",
        show(&out)
    );
    env.assert_secrets_never_logged(&daemon);
}
