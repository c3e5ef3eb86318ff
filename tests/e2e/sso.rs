//! `kind = "sso"` against the project's fake IAM Identity Center (portal + SSO-OIDC) and moto
//! STS: role credentials into the file, the AWS CLI's token cache read and written in its
//! format (and read by boto3), one token refresh per session, `credfresh login` (with
//! `SlowDownException`), `login_required` without hammering, the warning (log and desktop
//! notification) before a session ends, and the legacy inline `sso_start_url` form. Faults of
//! the portal and SSO-OIDC are in `sso_faults.rs`.

use crate::support::sso::{Minted, SsoFake};
use crate::support::{
    child_path, output_text, show, wait_for, wait_until, write_file, AssumeRole, Daemon, Moto,
    TestEnv, ACCOUNT, AWS_CONFIG,
};
use serde_json::Value;
use sha1::Digest;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const START_URL: &str = "https://acme.awsapps.com/start";
/// sha1("acme"), the cache file name botocore and the AWS CLI use for `[sso-session acme]`.
const CACHE_KEY: &str = "293abb6b76d7791c0732cc517d38c4b5c734b87f";

pub(crate) fn sso_env(fake: &SsoFake, sts: &str) -> TestEnv {
    let env = TestEnv::with_sts(sts);
    env.set_var("AWS_ENDPOINT_URL_SSO", &fake.endpoint());
    env.set_var("AWS_ENDPOINT_URL_SSO_OIDC", &fake.endpoint());
    write_file(
        &env.aws_config,
        &format!(
            "{AWS_CONFIG}\n[sso-session acme]\nsso_start_url = {START_URL}\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n\n[profile boto-sso]\nsso_session = acme\nsso_account_id = {ACCOUNT}\nsso_role_name = PowerUserAccess\nregion = us-east-1\n"
        ),
        0o600,
    );
    env
}

pub(crate) fn sso_profile(name: &str, role: &str) -> String {
    format!(
        "\n[[profile]]\nname = \"{name}\"\nkind = \"sso\"\nsso_session = \"acme\"\naccount_id = \"{ACCOUNT}\"\nrole_name = \"{role}\"\n"
    )
}

/// Writes the config: the daemon table and one `sso` profile, `sso-admin` (PowerUserAccess).
pub(crate) fn write_admin_config(env: &TestEnv) {
    let mut text = env.daemon_table();
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess"));
    env.write_config_text(&text);
}

pub(crate) fn cache_path(env: &TestEnv) -> PathBuf {
    env.home
        .join(".aws/sso/cache")
        .join(format!("{CACHE_KEY}.json"))
}

fn rfc(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Writes the cache file as `aws sso login` leaves it (renamed into place).
pub(crate) fn write_cache(env: &TestEnv, m: &Minted, expires_in: Duration, with_refresh: bool) {
    write_cache_at(&cache_path(env), m, expires_in, with_refresh);
}

/// [`write_cache`] to the cache file at `path`.
pub(crate) fn write_cache_at(path: &Path, m: &Minted, expires_in: Duration, with_refresh: bool) {
    let now = SystemTime::now();
    let mut v = serde_json::json!({
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": m.access_token,
        "expiresAt": rfc(now + expires_in),
        "clientId": m.client_id,
        "clientSecret": m.client_secret,
        "registrationExpiresAt": rfc(now + Duration::from_secs(90 * 86400)),
    });
    if with_refresh {
        v["refreshToken"] = Value::String(m.refresh_token.clone());
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("json.tmp");
    write_file(&tmp, &v.to_string(), 0o600);
    std::fs::rename(&tmp, path).unwrap();
}

pub(crate) fn read_cache(env: &TestEnv) -> Value {
    serde_json::from_str(&std::fs::read_to_string(cache_path(env)).expect("read the SSO cache"))
        .expect("the SSO cache is JSON")
}

pub(crate) fn check_no_leaks(env: &TestEnv, fake: &SsoFake, daemon: &Daemon) {
    for s in fake.secrets() {
        env.record_secret(&s);
    }
    env.assert_secrets_never_logged(daemon);
}

#[test]
fn sso_profile_and_metaflow_chain_get_credentials_and_boto3_reads_the_cache() {
    let moto = Moto::start();
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, &moto.endpoint());
    let m = fake.mint();
    write_cache(&env, &m, Duration::from_secs(3600), true);
    let mut text = env.daemon_table();
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess"));
    AssumeRole::new("metaflow", "MetaflowUserRole", "sso-admin")
        .duration("15m")
        .render(&mut text);
    env.write_config_text(&text);

    let out = env.cli(&["validate"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        output_text(&out).contains("SSO session \"acme\""),
        "{}",
        show(&out)
    );

    let daemon = Daemon::start(&env);
    let admin = daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));
    assert_eq!(admin["kind"], "sso");
    assert_eq!(admin["account_id"], ACCOUNT);
    let meta = daemon.wait_state("metaflow", "fresh", Duration::from_secs(30));
    assert_eq!(meta["account_id"], ACCOUNT);
    let section = wait_for(Duration::from_secs(10), "[sso-admin] in the file", || {
        env.section("sso-admin")
    });
    assert!(
        section["aws_access_key_id"].starts_with("ASIASSOFAKE"),
        "{section:?}"
    );
    // The expiry written is the portal's own (epoch ms in the response).
    assert_eq!(
        section["x_credfresh_expiration"],
        admin["expires_at"].as_str().unwrap()
    );
    let metaflow = wait_for(Duration::from_secs(10), "[metaflow] in the file", || {
        env.section("metaflow")
    });
    // A program using the written SSO → AssumeRole section: boto3 GetCallerIdentity (moto).
    let out = env.python("caller_identity.py", &["--profile", "metaflow"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        id["Arn"].as_str().unwrap_or("").starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/MetaflowUserRole/"
        )),
        "{id}"
    );
    assert_eq!(id["AccessKeyId"], metaflow["aws_access_key_id"].as_str());
    // No token refresh was needed: an hour is left.
    assert_eq!(fake.count("CreateToken:refresh_token"), 0);

    // boto3 resolves its own SSO profile from the same cache, against the same fake portal.
    let before = fake.count("GetRoleCredentials");
    let out = env.python("sso_credentials.py", &["boto-sso"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        got["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIASSOFAKE"),
        "{got}"
    );
    assert_eq!(fake.count("GetRoleCredentials"), before + 1);
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn near_expiry_token_is_refreshed_once_for_five_profiles_and_rotated() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    // Every child (the daemon, the CLI) logs at trace: no secret may reach the log.
    env.set_var("RUST_LOG", "trace");
    let m = fake.mint();
    let old_expiry = SystemTime::now() + Duration::from_secs(25);
    write_cache(&env, &m, Duration::from_secs(25), true);
    let mut text = env.daemon_table();
    text.push_str("refresh_before = \"10s\"\n");
    let names = ["sso-admin", "sso-read", "sso-data", "sso-ml", "sso-ops"];
    for (i, name) in names.iter().enumerate() {
        text.push_str(&sso_profile(name, &format!("Role{i}")));
    }
    env.write_config_text(&text);
    let daemon = Daemon::start(&env);
    for name in names {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }
    assert_eq!(fake.count("CreateToken:refresh_token"), 0);

    // About 10 s before expiresAt the token is refreshed, by one of the five profiles.
    let cache = wait_for(Duration::from_secs(30), "a refreshed access token", || {
        let c = read_cache(&env);
        (c["accessToken"] != m.access_token.as_str()).then_some(c)
    });
    assert!(
        SystemTime::now() < old_expiry,
        "refreshed only after expiresAt"
    );
    assert_ne!(
        cache["refreshToken"],
        m.refresh_token.as_str(),
        "rotated refresh token kept"
    );
    assert_eq!(cache["clientId"], m.client_id.as_str());
    assert_eq!(cache["startUrl"], START_URL);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cache_path(&env)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Every profile got new role credentials with the new token…
    wait_until(Duration::from_secs(20), "all profiles refetched", || {
        fake.count("GetRoleCredentials") >= 10
    });
    for name in names {
        daemon.wait_state(name, "fresh", Duration::from_secs(10));
    }
    // …and the session was refreshed exactly once.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(fake.count("CreateToken:refresh_token"), 1);
    assert_eq!(fake.count("CreateToken:device_code"), 0);

    // botocore reads the rotated cache: a boto3 SSO profile sends the new access token and
    // has no reason to refresh it itself.
    let before = fake.count("GetRoleCredentials");
    let out = env.python("sso_credentials.py", &["boto-sso"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fake.count("GetRoleCredentials"), before + 1);
    let bearers = fake.bearer_tokens();
    assert_eq!(
        bearers.last().map(String::as_str),
        read_cache(&env)["accessToken"].as_str(),
        "boto3 used the rotated access token"
    );
    assert_ne!(bearers.last(), Some(&m.access_token));
    assert_eq!(fake.count("CreateToken:refresh_token"), 1);
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn login_no_browser_writes_the_cli_cache_and_profiles_go_fresh() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    // Every child (the daemon, the CLI) logs at trace: no secret may reach the log.
    env.set_var("RUST_LOG", "trace");
    write_admin_config(&env);
    let daemon = Daemon::start(&env);
    let p = daemon.wait_state("sso-admin", "login_required", Duration::from_secs(30));
    let err = p["last_error"].as_str().unwrap();
    assert!(err.contains("credfresh login --sso-session acme"), "{err}");

    let opened = fake_browser(&env);
    // The first poll is told to slow down: the next one waits 5 s longer (RFC 8628 §3.5).
    fake.slow_down_next(1);
    // --no-browser wins even with a desktop.
    let login = start_login(&env, &["--no-browser"], "code: ");
    let printed = login.printed.clone();
    assert!(
        printed.contains("https://device.sso.us-east-1.amazonaws.com/"),
        "{printed}"
    );
    assert!(!printed.contains("browser window was opened"), "{printed}");
    assert!(!opened.exists(), "--no-browser opened a browser");
    // The CLI polls (AuthorizationPendingException) until the user confirms.
    wait_until(Duration::from_secs(10), "a pending poll", || {
        fake.count("CreateToken:device_code") >= 1
    });
    let codes = wait_for(Duration::from_secs(10), "a pending device code", || {
        let c = fake.approve_all();
        (!c.is_empty()).then_some(c)
    });
    assert!(printed.contains(&codes[0]), "{printed}");
    let (code, printed) = finish_login(login);
    env.note_text("credfresh login --no-browser", &printed);
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("Refreshed sso-admin"), "{printed}");
    let polls = fake.times("CreateToken:device_code");
    assert!(polls.len() >= 2, "polled while pending");
    let gap = polls[1] - polls[0];
    assert!(
        gap >= Duration::from_millis(5900),
        "after SlowDownException the next poll came {gap:?} later"
    );
    assert_eq!(fake.count("RegisterClient"), 1);

    // The cache holds what the AWS CLI writes.
    let cache = read_cache(&env);
    for key in [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "refreshToken",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
    ] {
        assert!(cache[key].is_string(), "{key} missing in the cache");
    }
    assert_eq!(cache["startUrl"], START_URL);
    assert_eq!(cache["region"], "us-east-1");
    let exp = cache["expiresAt"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(5));
    assert!(env.section("sso-admin").is_some());
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn login_with_several_sessions_asks_which() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    let mut cfg = std::fs::read_to_string(&env.aws_config).unwrap();
    cfg.push_str("\n[sso-session other]\nsso_start_url = https://other.awsapps.com/start\nsso_region = eu-west-1\n");
    write_file(&env.aws_config, &cfg, 0o600);
    let mut text = env.daemon_table();
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess"));
    text.push_str(&format!(
        "\n[[profile]]\nname = \"other\"\nkind = \"sso\"\nsso_session = \"other\"\naccount_id = \"{ACCOUNT}\"\nrole_name = \"Admin\"\n"
    ));
    env.write_config_text(&text);
    let out = env.cli(&["login", "--no-browser"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("--sso-session acme") && text.contains("--sso-session other"),
        "{text}"
    );
    assert_eq!(fake.total(), 0);

    // A missing sso-session is a config error naming the file and the fix.
    let mut text = env.daemon_table();
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess").replace("\"acme\"", "\"nope\""));
    env.write_config_text(&text);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("[sso-session nope]") && text.contains("profile \"sso-admin\""),
        "{text}"
    );
}

#[test]
fn revoked_refresh_token_is_login_required_without_hammering_until_a_new_login() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    let m = fake.mint();
    write_cache(&env, &m, Duration::from_secs(3600), true);
    write_admin_config(&env);
    let daemon = Daemon::start(&env);
    let fresh = daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));
    let keys = wait_for(Duration::from_secs(10), "[sso-admin] in the file", || {
        env.section("sso-admin")
    });

    // The session is revoked: the portal rejects the token, OIDC the refresh token.
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    let out = env.cli(&["refresh", "sso-admin"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let p = daemon.wait_state("sso-admin", "login_required", Duration::from_secs(10));
    let err = p["last_error"].as_str().unwrap();
    assert!(err.contains("credfresh login --sso-session acme"), "{err}");
    assert!(err.contains("InvalidGrantException"), "{err}");
    assert_eq!(p["next_refresh_at"], Value::Null, "{p}");
    // The last valid credentials stay, in status and in the file.
    assert_eq!(p["expires_at"], fresh["expires_at"]);
    assert_eq!(env.section("sso-admin").unwrap(), keys);

    // No retries: the fake sees nothing more.
    let requests = fake.total();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(fake.total(), requests, "login_required must not retry");
    assert_eq!(
        daemon.profile("sso-admin").unwrap()["state"],
        "login_required"
    );

    // Warned once: one line for the profile's state change, one for the session (with the
    // desktop notification, when there is a desktop), however long it stays parked.
    let log = daemon.log();
    let parked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("login required, not retrying"))
        .collect();
    assert_eq!(parked.len(), 1, "{log}");
    assert!(parked[0].contains("WARN"), "{}", parked[0]);
    let session: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("SSO session \"acme\" needs a new login")
                && !l.contains("login required, not retrying")
        })
        .collect();
    assert_eq!(session.len(), 1, "{log}");
    assert!(session[0].contains("WARN"), "{}", session[0]);
    // The portal refused the access token: nothing claims it works until some later time.
    assert!(
        !err.contains("ends at") && !err.contains("valid until"),
        "{err}"
    );

    // `aws sso login` elsewhere writes a new cache file: fresh again within 2 s.
    let m2 = fake.mint();
    let t0 = Instant::now();
    write_cache(&env, &m2, Duration::from_secs(3600), true);
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(2));
    println!("login elsewhere picked up after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(2));
    wait_until(Duration::from_secs(10), "new keys in the file", || {
        env.section("sso-admin").unwrap() != keys
    });
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn session_ending_within_warn_before_is_warned_once() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    let m = fake.mint();
    // No refresh token: the session ends with the access token, within warn_before.
    write_cache(&env, &m, Duration::from_secs(3600), false);
    let mut text = env.daemon_table();
    text.push_str("warn_before = \"2h\"\n");
    let names = ["sso-admin", "sso-read", "sso-data", "sso-ml", "sso-ops"];
    for (i, name) in names.iter().enumerate() {
        text.push_str(&sso_profile(name, &format!("Role{i}")));
    }
    env.write_config_text(&text);
    let shown = fake_notify_send(&env);
    env.set_var("DISPLAY", ":0");
    let daemon = Daemon::start(&env);
    for name in names {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let warnings: Vec<String> = daemon
        .log()
        .lines()
        .filter(|l| l.contains("SSO session \"acme\" ends at"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}\n{}", daemon.log());
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("credfresh login --sso-session acme"),
        "{}",
        warnings[0]
    );
    let notes = wait_for(Duration::from_secs(5), "a desktop notification", || {
        std::fs::read_to_string(&shown).ok()
    });
    let notes: Vec<&str> = notes.lines().collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].starts_with("--app-name=credfresh|credfresh|SSO session \"acme\" ends at"),
        "{}",
        notes[0]
    );
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn legacy_inline_start_url_uses_the_cache_the_cli_keys_by_start_url() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    // `aws sso login --profile` of a profile with `sso_start_url` (no `[sso-session]`) keys
    // the cache by sha1(start URL) and leaves no refresh token.
    let m = fake.mint();
    let key = hex::encode(sha1::Sha1::digest(START_URL.as_bytes()));
    let path = env.home.join(".aws/sso/cache").join(format!("{key}.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cache = serde_json::json!({
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": m.access_token,
        "expiresAt": rfc(SystemTime::now() + Duration::from_secs(3600)),
    });
    write_file(&path, &cache.to_string(), 0o600);
    let mut aws_config = std::fs::read_to_string(&env.aws_config).unwrap();
    aws_config.push_str(&format!(
        "\n[profile boto-legacy]\nsso_start_url = {START_URL}\nsso_region = us-east-1\nsso_account_id = {ACCOUNT}\nsso_role_name = ReadOnly\n"
    ));
    write_file(&env.aws_config, &aws_config, 0o600);
    let mut text = env.daemon_table();
    text.push_str(&format!(
        "\n[[profile]]\nname = \"legacy\"\nkind = \"sso\"\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\naccount_id = \"{ACCOUNT}\"\nrole_name = \"ReadOnly\"\n"
    ));
    env.write_config_text(&text);

    let daemon = Daemon::start(&env);
    daemon.wait_state("legacy", "fresh", Duration::from_secs(30));
    let section = wait_for(Duration::from_secs(10), "[legacy] in the file", || {
        env.section("legacy")
    });
    assert!(section["aws_access_key_id"].starts_with("ASIASSOFAKE"));
    // botocore finds the same cache file for its legacy profile.
    let before = fake.count("GetRoleCredentials");
    let out = env.python("sso_credentials.py", &["boto-legacy"], &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fake.count("GetRoleCredentials"), before + 1);
    // Without a refresh token nothing asks SSO-OIDC; the session ends with the access token.
    assert_eq!(fake.count("CreateToken:refresh_token"), 0);
    check_no_leaks(&env, &fake, &daemon);
}

/// A `xdg-open` in a directory put first on the test's `PATH` that records each URL it is
/// asked to open, one per line, in the returned file.
fn fake_browser(env: &TestEnv) -> PathBuf {
    let bin = env.home.join("bin");
    let opened = env.home.join("browser-opened");
    std::fs::create_dir_all(&bin).unwrap();
    write_file(
        &bin.join("xdg-open"),
        &format!("#!/bin/sh\necho \"$1\" >>'{}'\n", opened.display()),
        0o755,
    );
    env.set_var("PATH", &format!("{}:{}", bin.display(), child_path()));
    opened
}

/// A `credfresh login` under way: its stdout is read line by line until it prints what the
/// test waits for.
struct Login {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    printed: String,
}

/// Starts `credfresh login ARGS` with `DISPLAY` set; returns it once it printed `until`.
fn start_login(env: &TestEnv, args: &[&str], until: &str) -> Login {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credfresh"))
        .arg("--config")
        .arg(&env.config)
        .arg("login")
        .args(args)
        .env_clear()
        .envs(env.vars())
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run credfresh login");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !printed.contains(until) {
        assert!(
            Instant::now() < deadline,
            "no {until:?} printed:\n{printed}"
        );
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
    }
    Login {
        child,
        stdout,
        printed,
    }
}

/// Waits for the login to end: its exit code and everything it printed (stdout, then stderr).
fn finish_login(login: Login) -> (Option<i32>, String) {
    let Login {
        child,
        mut stdout,
        mut printed,
    } = login;
    let _ = std::io::Read::read_to_string(&mut stdout, &mut printed);
    let out = child.wait_with_output().unwrap();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), printed)
}

#[test]
fn login_opens_the_browser_once_and_works_without_a_daemon() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    write_admin_config(&env);
    let opened = fake_browser(&env);

    // No daemon runs; the user's desktop has a display.
    let login = start_login(&env, &[], "Waiting for the sign-in");
    assert!(
        login.printed.contains("browser window was opened"),
        "{}",
        login.printed
    );
    wait_until(Duration::from_secs(10), "a pending poll", || {
        fake.count("CreateToken:device_code") >= 2
    });
    let codes = fake.approve_all();
    assert_eq!(codes.len(), 1);
    let (code, printed) = finish_login(login);
    env.note_text("credfresh login", &printed);
    assert_eq!(code, Some(0), "{printed}");
    assert!(
        printed.contains("No credfresh daemon is running"),
        "{printed}"
    );
    // The browser was asked once, for the URL with the code, however often the CLI polled.
    let urls = std::fs::read_to_string(&opened).expect("xdg-open was run");
    let urls: Vec<&str> = urls.lines().collect();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(
        urls[0].starts_with("https://device.sso.us-east-1.amazonaws.com/")
            && urls[0].contains(&codes[0]),
        "{urls:?}"
    );
    let cache = read_cache(&env);
    assert!(cache["accessToken"].is_string() && cache["refreshToken"].is_string());

    // The daemon started later uses that login.
    let daemon = Daemon::start(&env);
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(30));
    check_no_leaks(&env, &fake, &daemon);
}

#[test]
fn login_denied_or_timed_out_fails_with_a_clear_message() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    write_admin_config(&env);
    fake_browser(&env);

    // The user clicks "Deny".
    let login = start_login(&env, &["--no-browser"], "Waiting for the sign-in");
    wait_until(Duration::from_secs(10), "a pending poll", || {
        fake.count("CreateToken:device_code") >= 1
    });
    assert_eq!(fake.deny_all().len(), 1);
    let (code, printed) = finish_login(login);
    let mut all = printed.clone();
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains(
            "login to SSO session \"acme\" failed: the sign-in was denied in the browser"
        ),
        "{printed}"
    );

    // Nobody confirms before the device code expires.
    let login = start_login(&env, &["--no-browser"], "Waiting for the sign-in");
    wait_until(Duration::from_secs(10), "a pending poll", || {
        fake.count("CreateToken:device_code") >= 3
    });
    fake.expire_device_codes();
    let (code, printed) = finish_login(login);
    all.push_str(&printed);
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains(
            "the device code expired before the sign-in was confirmed; run `credfresh login` again"
        ),
        "{printed}"
    );
    assert!(!cache_path(&env).exists(), "nothing cached");
    // --no-browser never opened one.
    assert!(!env.home.join("browser-opened").exists());
    for secret in fake.secrets() {
        assert!(
            !all.contains(&secret),
            "a secret the fake issued was printed"
        );
    }
}

#[test]
fn without_sso_profiles_the_cache_dir_is_neither_created_nor_watched_until_one_is_added() {
    let moto = Moto::start();
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, &moto.endpoint());
    let mut text = env.daemon_table();
    AssumeRole::new("metaflow", "MetaflowUserRole", crate::support::BASE_PROFILE).render(&mut text);
    env.write_config_text(&text);
    let daemon = Daemon::start(&env);
    daemon.wait_state("metaflow", "fresh", Duration::from_secs(30));
    // A sidecar with a read-only home would have logged a warning here at every start.
    assert!(!env.home.join(".aws/sso").exists(), "~/.aws/sso created");
    assert!(
        !daemon.log().contains("SSO token cache"),
        "{}",
        daemon.log()
    );

    // An sso profile added by a reload starts the watcher: a login is picked up by itself.
    text.push_str(&sso_profile("sso-admin", "PowerUserAccess"));
    env.write_config_text(&text);
    let out = env.cli(&["reload"]);
    assert!(out.status.success(), "{}", show(&out));
    daemon.wait_state("sso-admin", "login_required", Duration::from_secs(30));
    assert!(env.home.join(".aws/sso/cache").is_dir());
    write_cache(&env, &fake.mint(), Duration::from_secs(3600), true);
    daemon.wait_state("sso-admin", "fresh", Duration::from_secs(2));
    check_no_leaks(&env, &fake, &daemon);
}

/// A `notify-send` first on the test's `PATH` that records what it was asked to show, one
/// notification per line, in the returned file.
pub(crate) fn fake_notify_send(env: &TestEnv) -> PathBuf {
    let bin = env.home.join("bin");
    let shown = env.home.join("notifications");
    std::fs::create_dir_all(&bin).unwrap();
    write_file(
        &bin.join("notify-send"),
        &format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" >>'{}'\necho >>'{}'\n",
            shown.display(),
            shown.display()
        ),
        0o755,
    );
    env.set_var("PATH", &format!("{}:{}", bin.display(), child_path()));
    shown
}

#[test]
fn session_refused_without_warning_is_notified_once_over_the_session_bus() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = sso_env(&fake, "http://127.0.0.1:9");
    write_cache(&env, &fake.mint(), Duration::from_secs(3600), true);
    let mut text = env.daemon_table();
    let names = ["sso-admin", "sso-read", "sso-data", "sso-ml", "sso-ops"];
    for (i, name) in names.iter().enumerate() {
        text.push_str(&sso_profile(name, &format!("Role{i}")));
    }
    env.write_config_text(&text);
    // A systemd user unit of a desktop login: no DISPLAY, but the session bus.
    let shown = fake_notify_send(&env);
    env.set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus");
    let daemon = Daemon::start(&env);
    for name in names {
        daemon.wait_state(name, "fresh", Duration::from_secs(30));
    }

    // IAM Identity Center ends the session early: nothing could be warned ahead.
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for name in names {
        daemon.wait_state(name, "login_required", Duration::from_secs(10));
    }
    // A second round changes nothing: still one notification.
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let notes = wait_for(Duration::from_secs(5), "a desktop notification", || {
        std::fs::read_to_string(&shown).ok()
    });
    std::thread::sleep(Duration::from_millis(500));
    let notes = std::fs::read_to_string(&shown).unwrap_or(notes);
    let notes: Vec<&str> = notes.lines().collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0]
            .starts_with("--app-name=credfresh|credfresh|SSO session \"acme\" needs a new login:")
            && notes[0].contains("credfresh login --sso-session acme"),
        "{}",
        notes[0]
    );
    check_no_leaks(&env, &fake, &daemon);
}
