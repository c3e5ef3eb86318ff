//! Every SDK, every channel: the AWS SDKs for JavaScript v3 (npm), Go v2 and Ruby (Debian's
//! packages), boto3 and the AWS CLI v1 and v2 get the assumed role from credfresh through the
//! shared credentials file, `credential_process` and the daemon's container endpoint, in a
//! fresh process and (SDKs only: every CLI call is a new process) in one long-lived client
//! across rotations of 30 s credentials. Where an installed release lacks a channel the test
//! asserts the documented failure, so a package update that adds it makes the test fail and
//! the README's "Which SDKs and channels" table gets updated.
//!
//! The client programs live in tests/sdk/<lang>/ (mode `once` or `long SECONDS`); each prints
//! one JSON line per GetCallerIdentity: `{"call", "ok", "arn", "key"}` (the access key ID that
//! signed the request) or `{"call", "ok": false, "error"}`. STS is reached through a proxy in
//! front of moto that refuses expired credentials, as AWS does.

use crate::support::fault_proxy::FaultProxy;
use crate::support::{
    ensure_awscli_v2, ensure_venv, free_port, repo_root, run_ensure_script, wait_for, write_file,
    AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How credentials reach the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    File,
    Process,
    Container,
}

const CHANNELS: [Channel; 3] = [Channel::File, Channel::Process, Channel::Container];

impl Channel {
    /// The managed profile (and role) behind the channel: each channel has its own, so the
    /// ARN moto answers names the channel the credentials came through.
    fn profile(self) -> &'static str {
        match self {
            Channel::File => "sdk-file",
            Channel::Process => "sdk-process",
            Channel::Container => "sdk-container",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Channel::File => "SdkFileRole",
            Channel::Process => "SdkProcessRole",
            Channel::Container => "SdkContainerRole",
        }
    }
}

/// The clients under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// `@aws-sdk/client-sts` (tests/sdk/js/package-lock.json) on the machine's node.
    JsV3,
    /// Debian's `golang-github-aws-aws-sdk-go-v2-dev` 1.17.1 (config 1.17.10).
    GoV2,
    /// Debian's `ruby-aws-sdk-core` 3.168.1.
    Ruby,
    /// boto3 from the venv (tests/requirements.txt).
    Boto3,
    /// `aws` v1 from the venv.
    CliV1,
    /// `aws` v2 from scripts/ensure-awscli-v2.sh.
    CliV2,
}

const SDKS: [Client; 4] = [Client::JsV3, Client::GoV2, Client::Ruby, Client::Boto3];
const CLIENTS: [Client; 6] = [
    Client::JsV3,
    Client::GoV2,
    Client::Ruby,
    Client::Boto3,
    Client::CliV1,
    Client::CliV2,
];

/// Which container token variable(s) a client is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` only (current SDKs).
    File,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN` only (Debian's Go SDK reads nothing else).
    Value,
    /// Both.
    Both,
}

impl Client {
    /// The token variable this client's release reads (see the README's table).
    fn token(self) -> Token {
        match self {
            Client::GoV2 => Token::Value,
            Client::Ruby => Token::Both,
            _ => Token::File,
        }
    }

    /// Whether the installed release reads `AWS_CONTAINER_CREDENTIALS_FULL_URI` at all.
    fn reads_full_uri(self) -> bool {
        self != Client::Ruby
    }

    /// Whether one long-lived client follows rotations through `channel` (the README's
    /// table): file credentials are read once per client by every SDK.
    fn keeps_working(self, channel: Channel) -> bool {
        match channel {
            Channel::File => false,
            Channel::Process => true,
            Channel::Container => self.reads_full_uri(),
        }
    }
}

fn ruby() -> &'static Path {
    static RUBY: OnceLock<PathBuf> = OnceLock::new();
    RUBY.get_or_init(|| run_ensure_script("ensure-ruby-aws-sdk.sh"))
}

fn go_client() -> &'static Path {
    static GO: OnceLock<PathBuf> = OnceLock::new();
    GO.get_or_init(|| run_ensure_script("ensure-sdk-go.sh"))
}

fn js_modules() -> &'static Path {
    static JS: OnceLock<PathBuf> = OnceLock::new();
    JS.get_or_init(|| run_ensure_script("ensure-sdk-js.sh"))
}

/// One GetCallerIdentity as a client reported it.
#[derive(Debug)]
struct Call {
    ok: bool,
    arn: String,
    key: Option<String>,
    error: String,
}

/// What one run of a client printed.
#[derive(Debug)]
struct Run {
    what: String,
    calls: Vec<Call>,
    output: String,
}

impl Run {
    fn errors(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.error.as_str())
            .collect()
    }

    fn keys(&self) -> BTreeSet<&str> {
        self.calls
            .iter()
            .filter(|c| c.ok)
            .filter_map(|c| c.key.as_deref())
            .collect()
    }
}

/// moto behind the expiry-enforcing proxy, a daemon managing one profile per channel with
/// its container endpoint on, and the AWS files each channel's clients use.
struct Matrix {
    _moto: Moto,
    proxy: FaultProxy,
    env: TestEnv,
    daemon: Daemon,
    port: u16,
    token_file: PathBuf,
    token: String,
    process_config: PathBuf,
    plain_config: PathBuf,
    empty_credentials: PathBuf,
}

impl Matrix {
    fn start(duration: &str) -> Matrix {
        let moto = Moto::start();
        let proxy = FaultProxy::start(&moto.endpoint());
        let env = TestEnv::with_sts(&proxy.endpoint());
        let port = free_port();
        let mut text = env.daemon_table();
        text.push_str(&format!("container_endpoint = \"127.0.0.1:{port}\"\n"));
        for channel in CHANNELS {
            AssumeRole::new(channel.profile(), channel.role(), BASE_PROFILE)
                .duration(duration)
                .render(&mut text);
        }
        env.write_config_text(&text);
        let daemon = Daemon::start(&env);
        for channel in CHANNELS {
            daemon.wait_state(channel.profile(), "fresh", Duration::from_secs(60));
        }
        for channel in CHANNELS {
            wait_for(Duration::from_secs(10), "the section in the file", || {
                env.section(channel.profile())
            });
        }
        let token_file = env.socket.parent().unwrap().join("container-token");
        let token = std::fs::read_to_string(&token_file).expect("the container token file");
        env.record_secret(&token);
        let root = env.root().to_owned();
        let process_config = root.join("process-config");
        write_file(
            &process_config,
            &format!(
                "[default]\nregion = us-east-1\n\n[profile via-process]\nregion = us-east-1\ncredential_process = {} --config {} credential-process {}\n",
                env!("CARGO_BIN_EXE_credfresh"),
                env.config.display(),
                Channel::Process.profile()
            ),
            0o600,
        );
        let plain_config = root.join("plain-config");
        write_file(&plain_config, "[default]\nregion = us-east-1\n", 0o600);
        let empty_credentials = root.join("empty-credentials");
        write_file(&empty_credentials, "", 0o600);
        Matrix {
            _moto: moto,
            proxy,
            env,
            daemon,
            port,
            token_file,
            token,
            process_config,
            plain_config,
            empty_credentials,
        }
    }

    /// The variables that select `channel` (on top of the test's environment).
    fn channel_env(&self, channel: Channel, token: Token) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        match channel {
            Channel::File => vec![("AWS_PROFILE", channel.profile().to_owned())],
            Channel::Process => vec![
                ("AWS_PROFILE", "via-process".to_owned()),
                ("AWS_CONFIG_FILE", path(&self.process_config)),
                ("AWS_SHARED_CREDENTIALS_FILE", path(&self.empty_credentials)),
            ],
            Channel::Container => {
                let mut vars = vec![
                    (
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                        format!(
                            "http://127.0.0.1:{}/v1/container-credentials/{}",
                            self.port,
                            channel.profile()
                        ),
                    ),
                    ("AWS_CONFIG_FILE", path(&self.plain_config)),
                    ("AWS_SHARED_CREDENTIALS_FILE", path(&self.empty_credentials)),
                ];
                if matches!(token, Token::File | Token::Both) {
                    vars.push((
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                        path(&self.token_file),
                    ));
                }
                if matches!(token, Token::Value | Token::Both) {
                    vars.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN", self.token.clone()));
                }
                vars
            }
        }
    }

    /// Starts `client` in `mode` (`["once"]` or `["long", SECONDS]`) on `channel`.
    fn spawn(&self, client: Client, mode: &[&str], channel: Channel, token: Token) -> Child {
        let sdk = repo_root().join("tests/sdk");
        let mut cmd = match client {
            Client::JsV3 => {
                let mut c = Command::new("node");
                c.arg(sdk.join("js/client.js"));
                c
            }
            Client::GoV2 => Command::new(go_client()),
            Client::Ruby => {
                let mut c = Command::new(ruby());
                c.arg(sdk.join("ruby/client.rb"));
                c
            }
            Client::Boto3 => {
                let mut c = Command::new(ensure_venv().join("bin/python"));
                c.arg(sdk.join("python/client.py"));
                c
            }
            Client::CliV1 | Client::CliV2 => {
                assert_eq!(mode, ["once"], "every CLI call is a new process");
                let aws = if client == Client::CliV1 {
                    ensure_venv().join("bin/aws")
                } else {
                    ensure_awscli_v2().to_owned()
                };
                let mut c = Command::new(aws);
                c.args(["sts", "get-caller-identity", "--output", "json"]);
                c
            }
        };
        if !matches!(client, Client::CliV1 | Client::CliV2) {
            cmd.args(mode);
        }
        cmd.env_clear().envs(self.env.vars());
        if client == Client::JsV3 {
            cmd.env("NODE_PATH", js_modules());
        }
        // botocore reads only AWS_DEFAULT_REGION; no client may try the instance metadata.
        cmd.env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .envs(self.channel_env(channel, token))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {client:?}: {e}"))
    }

    /// Waits for a client started by [`Matrix::spawn`] (killing it after `deadline`) and reads
    /// its calls; every output is kept for the leak check.
    fn finish(
        &self,
        client: Client,
        channel: Channel,
        token: Token,
        child: Child,
        deadline: Instant,
    ) -> Run {
        let what = format!("{client:?} via {channel:?} (token {token:?})");
        let out = wait_until_deadline(child, deadline, &what);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let output = format!("status {}\n{stdout}\n{stderr}", out.status);
        self.env.note_text(&what, &output);
        let calls = if matches!(client, Client::CliV1 | Client::CliV2) {
            let arn = serde_json::from_str::<Value>(&stdout)
                .ok()
                .and_then(|v| v["Arn"].as_str().map(str::to_owned));
            vec![Call {
                ok: out.status.success() && arn.is_some(),
                arn: arn.unwrap_or_default(),
                key: None,
                error: stderr.trim().to_owned(),
            }]
        } else {
            assert!(out.status.success(), "{what} failed:\n{output}");
            stdout
                .lines()
                .map(|line| {
                    let v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("{what}: {e}: {line}\n{output}"));
                    Call {
                        ok: v["ok"] == true,
                        arn: v["arn"].as_str().unwrap_or_default().to_owned(),
                        key: v["key"].as_str().map(str::to_owned),
                        error: v["error"].as_str().unwrap_or_default().to_owned(),
                    }
                })
                .collect()
        };
        assert!(!calls.is_empty(), "{what} made no call:\n{output}");
        Run {
            what,
            calls,
            output,
        }
    }
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child`'s exit and output; kills it and panics when it is still running at
/// `deadline` (a hung SDK must not hang the suite).
fn wait_until_deadline(mut child: Child, deadline: Instant, what: &str) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("{what} was still running at its deadline:\n{out}\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Asserts every call of `run` succeeded as `channel`'s role.
fn assert_assumed_role(run: &Run, channel: Channel) {
    let role = format!(":assumed-role/{}/", channel.role());
    for call in &run.calls {
        assert!(call.ok, "{}: {}\n{}", run.what, call.error, run.output);
        assert!(call.arn.contains(&role), "{}: {}", run.what, call.arn);
    }
}

/// Asserts that `run` failed with `error` because its release does not read `variable`.
fn assert_lacks(run: &Run, variable: &str, error: &str) {
    let errors = run.errors();
    assert!(
        errors.len() == 1 && errors[0].contains(error),
        "{}: this release was not expected to read {variable}; if it does now, update the \
         README's SDK table and this test:\n{}",
        run.what,
        run.output
    );
}

#[test]
fn every_sdk_and_cli_gets_the_assumed_role_in_a_fresh_process_through_every_channel() {
    let started = Instant::now();
    let m = Matrix::start("1h");
    // The daemon's current key of each channel's profile: what a fresh process must sign with.
    let key_of = |channel: Channel| {
        m.env.section(channel.profile()).expect("section")["aws_access_key_id"].clone()
    };
    let mut cases = Vec::new();
    for client in CLIENTS {
        for channel in CHANNELS {
            cases.push((client, channel, client.token()));
        }
    }
    // Debian's Go SDK does not read the token file: the endpoint refuses it.
    cases.push((Client::GoV2, Channel::Container, Token::File));
    // Two at a time: the machine has two cores, and node, Ruby and Python start slowly.
    let mut runs = Vec::new();
    for pair in cases.chunks(2) {
        let children: Vec<_> = pair
            .iter()
            .map(|&(client, channel, token)| {
                (
                    client,
                    channel,
                    token,
                    m.spawn(client, &["once"], channel, token),
                )
            })
            .collect();
        let begun = Instant::now();
        for (client, channel, token, child) in children {
            let deadline = begun + Duration::from_secs(90);
            let run = m.finish(client, channel, token, child, deadline);
            eprintln!("{} took {:?}", run.what, begun.elapsed());
            runs.push((client, channel, token, run));
        }
    }
    for (client, channel, token, run) in &runs {
        let (client, channel, token) = (*client, *channel, *token);
        if channel == Channel::Container && !client.reads_full_uri() {
            // aws-sdk-core reads AWS_CONTAINER_CREDENTIALS_FULL_URI from 3.171.0 on.
            assert_lacks(
                run,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "MissingCredentialsError",
            );
        } else if client == Client::GoV2 && token == Token::File {
            // aws-sdk-go-v2 config reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE from 1.25.0 on;
            // without a token the endpoint answers 401, whose code and message the Go user
            // sees (an `{"error"}` body left them "failed to load credentials, : ").
            assert_lacks(
                run,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "failed to load credentials, MissingAuthorizationToken: missing Authorization header",
            );
        } else {
            assert_assumed_role(run, channel);
            if let Some(key) = &run.calls[0].key {
                assert_eq!(key, &key_of(channel), "{}", run.what);
            }
        }
    }
    // Each run that got credentials reached STS through the proxy.
    assert!(m.proxy.signers("GetCallerIdentity").len() >= runs.len() - 2);
    m.env.assert_secrets_never_logged(&m.daemon);
    eprintln!(
        "sdk matrix, fresh processes: {} runs in {:?}",
        runs.len(),
        started.elapsed()
    );
}

#[test]
fn one_long_lived_client_of_each_sdk_follows_rotations_through_process_and_endpoint() {
    let started = Instant::now();
    // Installs and builds first, so the clients start together.
    let _ = (js_modules(), go_client(), ruby(), ensure_venv());
    let m = Matrix::start("30s");
    // The daemon refreshes 30 s credentials about every 20 s: in 65 s a client that follows
    // them signs with 4 keys (3 at least), and file credentials expire 30 s in.
    let seconds = 65;
    let mut children = Vec::new();
    for client in SDKS {
        for channel in CHANNELS {
            if channel == Channel::Container && !client.reads_full_uri() {
                continue; // shown by the fresh-process test
            }
            let token = client.token();
            let child = m.spawn(client, &["long", &seconds.to_string()], channel, token);
            children.push((client, channel, token, child));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    let runs: Vec<_> = children
        .into_iter()
        .map(|(client, channel, token, child)| {
            let run = m.finish(client, channel, token, child, deadline);
            (client, channel, run)
        })
        .collect();
    let mut report = String::new();
    for (client, channel, run) in &runs {
        report.push_str(&format!(
            "{}: {} calls, {} errors, {} keys\n",
            run.what,
            run.calls.len(),
            run.errors().len(),
            run.keys().len()
        ));
        assert!(run.calls.len() >= 20, "{}:\n{}", run.what, run.output);
        let role = format!(":assumed-role/{}/", channel.role());
        for call in run.calls.iter().filter(|c| c.ok) {
            assert!(call.arn.contains(&role), "{}: {}", run.what, call.arn);
        }
        if client.keeps_working(*channel) {
            assert!(
                run.errors().is_empty(),
                "{} should keep working:\n{}",
                run.what,
                run.output
            );
            assert!(
                run.keys().len() >= 3,
                "{} did not follow the rotations (3 access keys at least):\n{}",
                run.what,
                run.output
            );
        } else {
            assert_eq!(
                run.keys().len(),
                1,
                "{} now follows rotations: update the README's SDK table and this test:\n{}",
                run.what,
                run.output
            );
            assert!(
                run.errors().iter().any(|e| e.contains("ExpiredToken")),
                "{} should fail once its credentials expire:\n{}",
                run.what,
                run.output
            );
        }
    }
    // The keys the clients report are the ones the proxy saw signing.
    let signers: BTreeSet<String> = m.proxy.signers("GetCallerIdentity").into_iter().collect();
    for (_, _, run) in &runs {
        for key in run.keys() {
            assert!(signers.contains(key), "{}: {key} never signed", run.what);
        }
    }
    m.env.assert_secrets_never_logged(&m.daemon);
    eprintln!(
        "sdk matrix, long-lived clients ({:?}):\n{report}",
        started.elapsed()
    );
}
