//! The end-to-end harness: a Python venv with the local AWS fakes, a moto STS server per
//! test, a throw-away HOME with AWS files, and the real `credfresh` binary run as a daemon.
//!
//! Everything polls with deadlines; nothing sleeps a fixed time when a condition can be
//! watched. Every test owns its temp dir, its moto and its daemon, so tests run in parallel.

pub mod fault_proxy;
pub mod http;
pub mod ini;
pub mod metadata;
pub mod mfa_gate;
pub mod sso;

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The account moto puts in every ARN it issues.
pub const ACCOUNT: &str = "123456789012";

/// The static-key profile every assumed role starts from (in the credentials file).
pub const BASE_PROFILE: &str = "base";
/// Fake long-term keys of [`BASE_PROFILE`]; moto accepts any keys.
pub const BASE_ACCESS_KEY_ID: &str = "AKIAE2EBASEEXAMPLE01";
/// The secret of [`BASE_PROFILE`]: must never show up in a log or a reply.
pub const BASE_SECRET: &str = "e2eBaseSecretKeyNeverInLogs/0123456789abc";

/// How long a daemon or moto gets to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The credentials file every test starts with: a base profile, foreign sections, comments,
/// odd spacing and unknown keys that credfresh must leave byte-for-byte alone.
pub fn initial_credentials() -> String {
    format!(
        "# Shared credentials for the credfresh end-to-end tests.\n\
         # Hand-written comments must survive every rewrite.   \n\
         \n\
         [default]\n\
         aws_access_key_id = AKIAE2EDEFAULT000001\n\
         aws_secret_access_key = e2eDefaultSecretNeverInLogs/000000000000\n\
         \n\
         ; a semicolon comment before the base profile\n\
         [{BASE_PROFILE}]\n\
         aws_access_key_id = {BASE_ACCESS_KEY_ID}\n\
         aws_secret_access_key = {BASE_SECRET}\n\
         \n\
         [foreign]\n\
         # a comment inside a foreign section\n\
         aws_access_key_id=AKIAE2EFOREIGN000001\n\
         aws_secret_access_key=e2eForeignSecret+With/Odd=Chars00000000\n\
         x_unknown_key = kept as is   \n\
         region=eu-west-1\n\
         \n\
         \n\
         [another-tool]\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/someone\n"
    )
}

/// `~/.aws/config` of every test.
pub const AWS_CONFIG: &str =
    "[default]\nregion = us-east-1\n\n[profile foreign]\nregion = eu-west-1\n";

// ---------------------------------------------------------------------------------------
// The Python venv
// ---------------------------------------------------------------------------------------

/// The lines of the shell here-document that `opener` (a whole line, e.g. `cat >f <<EOF`)
/// starts in `script`, up to its `end` line; panics when there is none.
pub fn here_document<'a>(script: &'a str, opener: &str, end: &str) -> Vec<&'a str> {
    let body: Vec<&str> = script
        .lines()
        .skip_while(|l| *l != opener)
        .skip(1)
        .take_while(|l| *l != end)
        .collect();
    assert!(!body.is_empty(), "no here-document {opener:?}");
    body
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/ensure-venv.sh` once per test binary and returns the venv's path. Panics
/// (never skips) when the venv cannot be made: the tests need the fakes.
pub fn ensure_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = run_ensure_script("ensure-venv.sh");
        assert!(
            venv.join("bin/python").exists() && venv.join("bin/moto_server").exists(),
            "ensure-venv.sh reported {} but it has no bin/python or bin/moto_server",
            venv.display()
        );
        venv
    })
}

/// AWS CLI v2's `aws`, installed into `target/tools` by `scripts/ensure-awscli-v2.sh` on first
/// use (Linux x86_64); panics when it cannot be installed.
pub fn ensure_awscli_v2() -> &'static Path {
    static AWS: OnceLock<PathBuf> = OnceLock::new();
    AWS.get_or_init(|| {
        let aws = run_ensure_script("ensure-awscli-v2.sh");
        assert!(
            aws.is_file(),
            "ensure-awscli-v2.sh printed {}",
            aws.display()
        );
        aws
    })
}

/// libfaketime's preload library, installed by `scripts/ensure-libfaketime.sh` on first use;
/// panics when it cannot be installed.
pub fn ensure_libfaketime() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let lib = run_ensure_script("ensure-libfaketime.sh");
        assert!(
            lib.is_file(),
            "ensure-libfaketime.sh printed {}",
            lib.display()
        );
        lib
    })
}

/// `kubernetes-validate` (with the Kubernetes schemas it ships), installed into its own venv
/// by `scripts/ensure-kubernetes-validate.sh` on first use; panics when it cannot be installed.
pub fn ensure_kubernetes_validate() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let program = run_ensure_script("ensure-kubernetes-validate.sh");
        assert!(
            program.is_file(),
            "ensure-kubernetes-validate.sh printed {}",
            program.display()
        );
        program
    })
}

/// Runs `scripts/SCRIPT`, which installs something on first use and prints its path last;
/// panics with its output when it fails.
pub fn run_ensure_script(script: &str) -> PathBuf {
    let script = repo_root().join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        out.status
    );
    PathBuf::from(
        stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("{} printed no path:\n{stderr}", script.display()))
            .trim(),
    )
}

/// `PATH` for every child: the system's, with the venv's `bin` first.
pub fn child_path() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ensure_venv().join("bin").display()
    )
}

// ---------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()));
}

/// Polls `probe` every 50 ms until it returns a value; panics naming `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Whether something answers HTTP on `127.0.0.1:port`.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// The last `max` bytes of a file, for failure messages.
pub fn tail(path: &Path, max: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Removes ANSI colour sequences, so log lines can be matched as plain text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses a strict RFC 3339 UTC time (`2026-11-23T10:00:00Z`), panicking with `what`.
pub fn rfc3339(value: &str, what: &str) -> SystemTime {
    humantime::parse_rfc3339(value)
        .unwrap_or_else(|e| panic!("{what} = {value:?} is not an RFC 3339 UTC time: {e}"))
}

// ---------------------------------------------------------------------------------------
// moto
// ---------------------------------------------------------------------------------------

/// A moto server on a loopback port, killed on drop.
pub struct Moto {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    starts: u32,
    vars: Vec<(String, String)>,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers HTTP.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Like [`Moto::start`], with extra environment variables for moto (e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which turns IAM authentication on).
    pub fn start_with(vars: &[(&str, &str)]) -> Moto {
        let mut moto = Moto {
            port: 0,
            child: None,
            dir: tempdir("moto"),
            starts: 0,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut errors = Vec::new();
        // Another process may grab the free port first; then try another one.
        for _ in 0..3 {
            moto.port = free_port();
            match moto.spawn() {
                Ok(()) => return moto,
                Err(e) => errors.push(e),
            }
        }
        panic!("moto did not start:\n{}", errors.join("\n"));
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("moto-{}.log", self.starts))
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = File::create(self.log_path()).expect("moto log file");
        let venv = ensure_venv();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .env_clear()
            .env("PATH", child_path())
            .env("HOME", self.dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("moto log file"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run moto_server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "moto_server on port {} exited with {status}:\n{}",
                    self.port,
                    tail(&self.log_path(), 4000)
                ));
            }
            if answers_http(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "moto_server on port {} did not answer within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    tail(&self.log_path(), 4000)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port moto listens on (kept across [`Moto::stop`] and [`Moto::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills moto and waits until the port refuses connections.
    pub fn stop(&mut self) {
        self.kill();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_until(Duration::from_secs(10), "moto's port to close", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
        });
    }

    /// Starts moto again on the same port (its state starts empty).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("moto did not restart: {e}"),
                // The old socket may linger a moment; try again.
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- moto log (port {}) ----\n{}",
                self.port,
                tail(&self.log_path(), 4000)
            );
        }
    }
}

/// A temp dir directly under /tmp with a short name, so socket paths stay short.
fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cf-{prefix}-"))
        .tempdir_in("/tmp")
        .expect("temp dir under /tmp")
}

// ---------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------

/// One `[[profile]]` of kind `assume_role` for the config builder.
#[derive(Clone, Debug)]
pub struct AssumeRole {
    /// Section name in the credentials file.
    pub name: String,
    /// The role name; the ARN is `arn:aws:iam::123456789012:role/ROLE`.
    pub role: String,
    /// `source_profile`.
    pub source: String,
    /// `duration`, when set.
    pub duration: Option<String>,
    /// `session_name`, when set.
    pub session_name: Option<String>,
}

impl AssumeRole {
    /// `name` assuming `role` with the credentials of `source`.
    pub fn new(name: &str, role: &str, source: &str) -> Self {
        AssumeRole {
            name: name.into(),
            role: role.into(),
            source: source.into(),
            duration: None,
            session_name: None,
        }
    }

    /// Sets `duration`.
    pub fn duration(mut self, d: &str) -> Self {
        self.duration = Some(d.into());
        self
    }

    /// Sets `session_name`.
    pub fn session(mut self, s: &str) -> Self {
        self.session_name = Some(s.into());
        self
    }

    /// The role's ARN.
    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/{}", self.role)
    }

    /// Appends this profile as a [[profile]] table.
    pub fn render(&self, out: &mut String) {
        out.push_str("\n[[profile]]\n");
        out.push_str(&format!("name = \"{}\"\n", self.name));
        out.push_str("kind = \"assume_role\"\n");
        out.push_str(&format!("role_arn = \"{}\"\n", self.role_arn()));
        out.push_str(&format!("source_profile = \"{}\"\n", self.source));
        if let Some(d) = &self.duration {
            out.push_str(&format!("duration = \"{d}\"\n"));
        }
        if let Some(s) = &self.session_name {
            out.push_str(&format!("session_name = \"{s}\"\n"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The test environment
// ---------------------------------------------------------------------------------------

/// A temp HOME with AWS files, a config path and a socket path, and a record of every
/// secret seen in the credentials file and every CLI/HTTP output, for the leak check.
pub struct TestEnv {
    dir: tempfile::TempDir,
    /// The temp HOME.
    pub home: PathBuf,
    /// `~/.aws/credentials` (also `AWS_SHARED_CREDENTIALS_FILE`).
    pub credentials: PathBuf,
    /// `~/.aws/config` (also `AWS_CONFIG_FILE`).
    pub aws_config: PathBuf,
    /// The credfresh config file.
    pub config: PathBuf,
    /// The control socket (`[daemon] socket`).
    pub socket: PathBuf,
    /// `AWS_ENDPOINT_URL_STS`.
    pub sts_endpoint: String,
    secrets: Mutex<BTreeSet<String>>,
    transcript: Mutex<Vec<String>>,
    extra_vars: Mutex<Vec<(String, String)>>,
    removed_vars: Mutex<Vec<String>>,
}

impl TestEnv {
    /// An environment whose STS is `moto`.
    pub fn new(moto: &Moto) -> TestEnv {
        TestEnv::with_sts(&moto.endpoint())
    }

    /// An environment whose STS endpoint is `endpoint` (possibly nothing at all).
    pub fn with_sts(endpoint: &str) -> TestEnv {
        let dir = tempdir("e2e");
        let root = dir.path().to_owned();
        let home = root.join("home");
        let aws = home.join(".aws");
        fs::create_dir_all(&aws).expect("create ~/.aws");
        let env = TestEnv {
            credentials: aws.join("credentials"),
            aws_config: aws.join("config"),
            config: root.join("config.toml"),
            socket: root.join("run").join("cf.sock"),
            home,
            dir,
            sts_endpoint: endpoint.to_owned(),
            secrets: Mutex::new(BTreeSet::new()),
            transcript: Mutex::new(Vec::new()),
            extra_vars: Mutex::new(Vec::new()),
            removed_vars: Mutex::new(Vec::new()),
        };
        assert!(
            env.socket.as_os_str().len() < 100,
            "socket path too long: {}",
            env.socket.display()
        );
        write_file(&env.credentials, &initial_credentials(), 0o600);
        write_file(&env.aws_config, AWS_CONFIG, 0o600);
        env.record_secrets(&initial_credentials());
        env
    }

    /// The temp dir holding everything.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `[daemon]` table every generated config starts with.
    pub fn daemon_table(&self) -> String {
        format!("[daemon]\nsocket = \"{}\"\n", self.socket.display())
    }

    /// Writes a config managing `profiles`; returns its text.
    pub fn write_config(&self, profiles: &[AssumeRole]) -> String {
        let mut text = self.daemon_table();
        for p in profiles {
            p.render(&mut text);
        }
        self.write_config_text(&text);
        text
    }

    /// Writes a config managing `profiles` whose `[daemon] credentials_file` is `file` (the
    /// SDK still reads the base profile from `~/.aws/credentials`).
    pub fn write_config_with_file(&self, file: &Path, profiles: &[AssumeRole]) {
        let mut text = self.daemon_table();
        text.push_str(&format!("credentials_file = \"{}\"\n", file.display()));
        for p in profiles {
            p.render(&mut text);
        }
        self.write_config_text(&text);
    }

    /// Writes `text` as the config file (atomically, so a daemon never reads half of it; a
    /// symlinked config is written where it points, as editors do).
    pub fn write_config_text(&self, text: &str) {
        let target = fs::canonicalize(&self.config).unwrap_or_else(|_| self.config.clone());
        let tmp = target.with_extension("toml.tmp");
        write_file(&tmp, text, 0o600);
        fs::rename(&tmp, &target).expect("replace config");
    }

    /// The environment every child gets (after `env_clear`).
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("HOME", self.home.display().to_string()),
            ("PATH", child_path()),
            ("AWS_ENDPOINT_URL_STS", self.sts_endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("RUST_LOG", "credfresh=debug".to_owned()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.credentials.display().to_string(),
            ),
            ("AWS_CONFIG_FILE", self.aws_config.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(self.extra_vars.lock().unwrap().iter().cloned())
        .filter(|(k, _)| !self.removed_vars.lock().unwrap().contains(k))
        .collect()
    }

    /// Adds `name=value` to the environment of every child started from now on (the
    /// platform's variables: `AWS_ROLE_ARN`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`, …).
    pub fn set_var(&self, name: &str, value: &str) {
        let mut vars = self.extra_vars.lock().unwrap();
        vars.retain(|(k, _)| k != name);
        vars.push((name.to_owned(), value.to_owned()));
    }

    /// Leaves `name` out of the environment of every child started from now on (e.g.
    /// `AWS_ENDPOINT_URL_STS`, to test the general `AWS_ENDPOINT_URL`).
    pub fn remove_var(&self, name: &str) {
        self.removed_vars.lock().unwrap().push(name.to_owned());
    }

    /// Remembers a secret that is not in the credentials file (a web identity token, a
    /// container authorization token) for the leak check.
    pub fn record_secret(&self, secret: &str) {
        self.secrets.lock().unwrap().insert(secret.to_owned());
    }

    /// `credfresh --config CONFIG ARGS…` with the controlled environment, stdin closed and
    /// the output piped, to spawn (or change first).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_credfresh"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .envs(self.vars())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// `credfresh --config CONFIG ARGS…` with the controlled environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run credfresh");
        self.note(&format!("credfresh {}", args.join(" ")), &out);
        out
    }

    /// `credfresh status --json`, which must succeed, as JSON.
    pub fn status_json(&self) -> Value {
        let out = self.cli(&["status", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "credfresh status --json failed:\n{}",
            show(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "credfresh status --json printed no JSON ({e}):\n{}",
                show(&out)
            )
        })
    }

    /// The credentials file; every secret in it is remembered for the leak check.
    pub fn read_credentials(&self) -> String {
        let text = fs::read_to_string(&self.credentials).expect("read the credentials file");
        self.record_secrets(&text);
        text
    }

    /// The keys of `section` in the credentials file, if it is there.
    pub fn section(&self, section: &str) -> Option<ini::Section> {
        ini::section(&self.read_credentials(), section)
    }

    /// Runs `tests/py/SCRIPT` with the venv's Python and the controlled environment plus
    /// `extra` variables.
    pub fn python(&self, script: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let path = repo_root().join("tests/py").join(script);
        let out = Command::new(ensure_venv().join("bin/python"))
            .arg(&path)
            .args(args)
            .env_clear()
            .envs(self.vars())
            .envs(extra.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .output()
            .expect("run the venv's python");
        self.note(&format!("python {script} {}", args.join(" ")), &out);
        out
    }

    /// Runs the AWS CLI (v1) from the venv with the controlled environment.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.run_aws(&ensure_venv().join("bin/aws"), args)
    }

    /// Runs AWS CLI v2 with the controlled environment.
    pub fn aws_v2(&self, args: &[&str]) -> Output {
        self.run_aws(ensure_awscli_v2(), args)
    }

    fn run_aws(&self, aws: &Path, args: &[&str]) -> Output {
        let out = Command::new(aws)
            .args(args)
            .env_clear()
            .envs(self.vars())
            .env("AWS_PAGER", "")
            .stdin(Stdio::null())
            .output()
            .expect("run aws");
        // The command line may carry a value the test plants; only the output is searched.
        self.note(&format!("aws {}", args.first().unwrap_or(&"")), &out);
        out
    }

    /// Remembers every `aws_secret_access_key` and `aws_session_token` value in `text`.
    pub fn record_secrets(&self, text: &str) {
        let mut secrets = self.secrets.lock().unwrap();
        for (_, section) in ini::parse(text) {
            for key in ["aws_secret_access_key", "aws_session_token"] {
                if let Some(v) = section.get(key) {
                    secrets.insert(v.clone());
                }
            }
        }
    }

    /// Adds a command's output to the transcript the leak check searches.
    pub fn note(&self, what: &str, out: &Output) {
        self.transcript
            .lock()
            .unwrap()
            .push(format!("$ {what}\n{}", show(out)));
    }

    /// Adds any text (an HTTP reply) to the transcript the leak check searches.
    pub fn note_text(&self, what: &str, text: &str) {
        self.transcript
            .lock()
            .unwrap()
            .push(format!("$ {what}\n{text}"));
    }

    /// Asserts that no secret seen in the credentials file during the test appears in the
    /// daemon's log, in any CLI output or in any HTTP reply of the test.
    pub fn assert_secrets_never_logged(&self, daemon: &Daemon) {
        self.read_credentials();
        let secrets = self.secrets.lock().unwrap().clone();
        let transcript = self.transcript.lock().unwrap().join("\n");
        let places = [
            ("the daemon's log", daemon.log()),
            ("CLI and HTTP output", transcript),
        ];
        assert_secrets_absent(&secrets, &places);
    }
}

/// The forms a `Debug` or `Display` print can give `secret`: the text itself, its bytes as a
/// decimal list (`115, 101, 99`, as `Debug` prints a `Vec<u8>` or a `FromUtf8Error`), its
/// bytes in lower- and upper-case hex, and percent-encoded as in a form body or URL (upper-
/// and lower-case hex digits; a space as `%20` and as `+`).
pub fn secret_encodings(secret: &str) -> [(&'static str, String); 8] {
    let bytes = secret.as_bytes();
    let decimal = bytes
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let upper = hex.to_ascii_uppercase();
    let percent: String = bytes
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let lower = lower_escapes(&percent);
    let form = percent.replace("%20", "+");
    let form_lower = lower.replace("%20", "+");
    [
        ("text", secret.to_owned()),
        ("decimal bytes", decimal),
        ("hex", hex),
        ("HEX", upper),
        ("percent-encoded", percent),
        ("percent-encoded, lower-case", lower),
        ("form-encoded", form),
        ("form-encoded, lower-case", form_lower),
    ]
}

/// `text` with the hex digits of its `%XX` escapes in lower case.
fn lower_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escape = 0;
    for c in text.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Panics if any of `secrets` (long enough to be unambiguous), in any of the forms of
/// [`secret_encodings`], occurs in any of `places`.
pub fn assert_secrets_absent(secrets: &BTreeSet<String>, places: &[(&str, String)]) {
    assert!(!secrets.is_empty(), "no secrets were recorded to check");
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        for (place, text) in places {
            for (form, encoded) in secret_encodings(secret) {
                let Some(at) = text.find(encoded.as_str()) else {
                    continue;
                };
                let start = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                panic!(
                    "a secret ({}…, {} chars) appears as {form} in {place}: …{}…",
                    &secret[..4],
                    secret.len(),
                    &text[start..at]
                );
            }
        }
    }
}

/// A command's exit status, stdout and stderr, for messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout and stderr together.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `text` to `path` with `mode`.
pub fn write_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// `credfresh daemon` running in the background, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    pid: u32,
    log: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    /// Starts the daemon for `env` and waits until its socket answers `GET /healthz`.
    pub fn start(env: &TestEnv) -> Daemon {
        Daemon::start_with(env, &[])
    }

    /// Like [`Daemon::start`], with `extra` environment variables (e.g. `NOTIFY_SOCKET`).
    pub fn start_with(env: &TestEnv, extra: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(env, extra, false)
    }

    /// Like [`Daemon::start_with`], with `args` between the global options and `daemon`
    /// (e.g. `--log-level debug`).
    pub fn start_with_args(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Daemon {
        Daemon::spawn_args(env, args, extra, false)
    }

    /// Like [`Daemon::start`], but the daemon logs into a pipe that the test copies to the
    /// log file, so limits on the daemon's file writes (`RLIMIT_FSIZE`) spare its log.
    pub fn start_piped(env: &TestEnv) -> Daemon {
        Daemon::spawn(env, &[], true)
    }

    fn spawn(env: &TestEnv, extra: &[(&str, &str)], piped: bool) -> Daemon {
        Daemon::spawn_args(env, &[], extra, piped)
    }

    fn spawn_args(env: &TestEnv, args: &[&str], extra: &[(&str, &str)], piped: bool) -> Daemon {
        let log = env.root().join("daemon.log");
        let file = File::create(&log).expect("daemon log file");
        let (stdout, stderr) = if piped {
            (Stdio::null(), Stdio::piped())
        } else {
            (
                Stdio::from(file.try_clone().expect("daemon log file")),
                Stdio::from(file.try_clone().expect("daemon log file")),
            )
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_credfresh"))
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .arg("daemon")
            .env_clear()
            .envs(env.vars())
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn credfresh daemon");
        if let Some(mut pipe) = child.stderr.take() {
            let mut file = file;
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || file.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        let mut d = Daemon {
            pid: child.id(),
            child: Some(child),
            exit: None,
            log,
            socket: env.socket.clone(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = d.try_exit() {
                panic!(
                    "credfresh daemon exited with {status} before serving its socket:\n{}",
                    d.log()
                );
            }
            if matches!(http::get(&d.socket, "/healthz"), Ok(r) if r.status == 200) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "credfresh daemon did not answer GET /healthz on {} within {START_TIMEOUT:?}:\n{}",
                d.socket.display(),
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Everything the daemon wrote to stderr (and stdout) so far, without colour codes.
    pub fn log(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(
            &fs::read(&self.log).unwrap_or_default(),
        ))
    }

    /// Log lines with message `message` about `profile` (`profile=NAME` in the line).
    pub fn log_lines(&self, message: &str, profile: &str) -> Vec<String> {
        let field = format!("profile={profile}");
        self.log()
            .lines()
            .filter(|l| l.contains(message))
            .filter(|l| {
                l.match_indices(&field).any(|(i, _)| {
                    let after = l[i + field.len()..].chars().next();
                    !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
                })
            })
            .map(str::to_owned)
            .collect()
    }

    /// `GET path` on the control socket.
    pub fn get(&self, path: &str) -> http::Response {
        http::get(&self.socket, path)
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}\n{}", self.log()))
    }

    /// `POST path` on the control socket.
    pub fn post(&self, path: &str) -> http::Response {
        http::request(&self.socket, "POST", path)
            .unwrap_or_else(|e| panic!("POST {path} failed: {e}\n{}", self.log()))
    }

    /// `GET /v1/status` as JSON.
    pub fn status(&self) -> Value {
        let r = self.get("/v1/status");
        assert_eq!(r.status, 200, "GET /v1/status: {}", r.body);
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("GET /v1/status is not JSON ({e}): {}", r.body))
    }

    /// The status entry of `name`, if the daemon manages it.
    pub fn profile(&self, name: &str) -> Option<Value> {
        self.status()["profiles"]
            .as_array()
            .expect("status has a profiles array")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    /// Waits until profile `name` is in `state`; returns its status entry.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Value {
        let mut last = None;
        let what = format!("profile {name} to be {state}");
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.profile(name);
            if p.as_ref().is_some_and(|p| p["state"] == state) {
                return p.unwrap();
            }
            last = p.or(last);
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last status: {}\n--- daemon log ---\n{}",
                    last.map_or("(not listed)".into(), |p| p.to_string()),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the daemon");
    }

    /// The exit status if the daemon has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                    self.child = None;
                }
            }
        }
        self.exit
    }

    /// Waits until the daemon exits; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- credfresh daemon log (pid {}) ----\n{}",
                self.pid,
                tail(&self.log, 16000)
            );
        }
    }
}
