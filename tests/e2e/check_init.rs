//! `credfresh check` against moto (S3 and STS, with and without IAM authentication) and
//! `credfresh init` from an `~/.aws/config` with role, SSO and web identity profiles.

use crate::support::{
    ensure_venv, output_text, repo_root, show, wait_for, write_file, AssumeRole, Daemon, Moto,
    TestEnv, AWS_CONFIG, BASE_PROFILE,
};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const STEPS: [&str; 7] = [
    "credentials",
    "sts:GetCallerIdentity",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:HeadObject",
    "s3:GetObject",
    "s3:DeleteObject",
];

/// The outcome word (`ok`, `FAILED`, `skipped`) of `step` for `profile` in check's stdout.
fn outcome(stdout: &str, profile: &str, step: &str) -> String {
    let needle = format!(" {profile}: {step}: ");
    let line = stdout
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {step} line for {profile} in:\n{stdout}"));
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn check_passes_on_moto_with_a_bucket_and_names_a_missing_bucket() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("ml", "MlRole", BASE_PROFILE).duration("1h")]);
    env.set_var("AWS_ENDPOINT_URL_S3", &moto.endpoint());
    let out = env.aws(&["s3api", "create-bucket", "--bucket", "probe"]);
    assert!(out.status.success(), "{}", show(&out));
    let daemon = Daemon::start(&env);
    daemon.wait_state("ml", "fresh", Duration::from_secs(30));

    let out = env.cli(&["check", "ml", "--bucket", "s3://probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in STEPS {
        assert_eq!(outcome(&stdout, "ml", step), "ok", "{step}:\n{stdout}");
    }
    assert!(stdout.contains("from the daemon"), "{stdout}");
    assert!(
        stdout.contains("arn:aws:sts::123456789012:assumed-role/MlRole/"),
        "{stdout}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "no colour off a terminal: {stdout}"
    );
    // The probe object is gone.
    let out = env.aws(&["s3api", "list-objects-v2", "--bucket", "probe"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("credfresh-check"),
        "{}",
        show(&out)
    );

    // Without a bucket, every managed profile is checked (identity only).
    let out = env.cli(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3:"));

    // A bucket that does not exist is named, and the exit code is 1.
    let out = env.cli(&["check", "ml", "--bucket", "s3://no-such-bucket"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(outcome(&stdout, "ml", "s3:PutObject"), "FAILED", "{stdout}");
    assert!(
        stdout.contains("NoSuchBucket: bucket \"no-such-bucket\" does not exist"),
        "{stdout}"
    );
    assert_eq!(
        outcome(&stdout, "ml", "s3:GetObject"),
        "skipped",
        "{stdout}"
    );

    // An unknown profile is a usage error.
    let out = env.cli(&["check", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(output_text(&out).contains("no managed profile named \"nope\""));
    env.assert_secrets_never_logged(&daemon);

    // Without a daemon the credentials are fetched directly, and check still works.
    drop(daemon);
    let out = env.cli(&["check", "ml", "--bucket", "s3://probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the daemon is not running"),
        "{}",
        show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fetched directly"));

    // An unreachable S3 endpoint is named as such.
    env.set_var(
        "AWS_ENDPOINT_URL_S3",
        &format!("http://127.0.0.1:{}", crate::support::free_port()),
    );
    let out = env.cli(&["check", "ml", "--bucket", "s3://probe"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("unreachable: cannot reach S3 at http://127.0.0.1:"),
        "{}",
        show(&out)
    );
}

#[test]
fn check_names_access_denied_and_the_action_under_iam_authentication() {
    // moto lets the first requests through unchecked (the setup), then enforces signatures
    // and IAM policies like AWS.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "30")]);
    let env = TestEnv::new(&moto);
    env.set_var("AWS_ENDPOINT_URL_S3", &moto.endpoint());
    // Run directly, not through `env.python`: its output (the user's secret key) is the
    // test's own and must not land in the transcript the leak check searches.
    let out = Command::new(ensure_venv().join("bin/python"))
        .arg(repo_root().join("tests/py/iam_setup.py"))
        .args(["--endpoint", &moto.endpoint(), "--bucket", "probe"])
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .output()
        .expect("run iam_setup.py");
    assert!(
        out.status.success(),
        "iam_setup.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iam_setup.py printed no JSON: {e}"));
    let mut creds = std::fs::read_to_string(&env.credentials).unwrap();
    creds.push_str(&format!(
        "\n[checker]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key["AccessKeyId"].as_str().unwrap(),
        key["SecretAccessKey"].as_str().unwrap()
    ));
    write_file(&env.credentials, &creds, 0o600);
    env.write_config(&[AssumeRole::new("limited", "ListOnly", "checker").duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("limited", "fresh", Duration::from_secs(30));

    let out = env.cli(&["check", "limited", "--bucket", "s3://probe"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(outcome(&stdout, "limited", "credentials"), "ok", "{stdout}");
    assert_eq!(
        outcome(&stdout, "limited", "sts:GetCallerIdentity"),
        "ok",
        "{stdout}"
    );
    assert_eq!(
        outcome(&stdout, "limited", "s3:PutObject"),
        "FAILED",
        "{stdout}"
    );
    let put = stdout
        .lines()
        .find(|l| l.contains("limited: s3:PutObject:"))
        .unwrap();
    assert!(
        put.contains("AccessDenied")
            && put.contains("may not s3:PutObject on arn:aws:s3:::probe/credfresh-check/")
            && put.contains("assumed-role/ListOnly/"),
        "{put}"
    );
    // The role may list: that step passes and says so.
    assert_eq!(
        outcome(&stdout, "limited", "s3:ListBucket"),
        "ok",
        "{stdout}"
    );
    assert!(stdout.contains("1 check failed"), "{stdout}");
    env.assert_secrets_never_logged(&daemon);
}

const INIT_AWS_CONFIG: &str = "
[profile admin]
role_arn = arn:aws:iam::123456789012:role/Admin
source_profile = base
duration_seconds = 1800

[sso-session acme]
sso_start_url = https://acme.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = acme
sso_account_id = 123456789012
sso_role_name = PowerUserAccess
region = eu-west-1

[profile metaflow]
role_arn = arn:aws:iam::123456789012:role/MetaflowUserRole
source_profile = dev

[profile login-only]
sso_session = acme

[profile eks]
role_arn = arn:aws:iam::123456789012:role/EksPod
web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token
";

#[test]
fn init_writes_a_config_that_validates_and_never_overwrites_without_force() {
    let env = TestEnv::with_sts(&format!("http://127.0.0.1:{}", crate::support::free_port()));
    write_file(
        &env.aws_config,
        &format!("{AWS_CONFIG}{INIT_AWS_CONFIG}"),
        0o600,
    );
    assert!(!env.config.exists());

    let out = env.cli(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("credfresh validate"), "{stdout}");
    assert!(stdout.contains("credfresh daemon"), "{stdout}");
    let written = std::fs::read_to_string(&env.config).expect("init wrote the config");
    assert!(written.contains("\n[daemon]\n"), "{written}");
    assert!(written.contains("# refresh_before = \"15m\""), "{written}");

    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{written}\n{}", show(&out));
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.contains("[admin-fresh] assumes arn:aws:iam::123456789012:role/Admin for 30m with credentials of AWS profile \"base\""),
        "{v}"
    );
    assert!(
        v.contains("[dev-fresh] gets PowerUserAccess in account 123456789012 from SSO session \"acme\" (https://acme.awsapps.com/start, eu-west-1)"),
        "{v}"
    );
    // The role assumed with the SSO profile's credentials chains to the managed sso profile.
    assert!(
        v.contains("[metaflow-fresh] assumes arn:aws:iam::123456789012:role/MetaflowUserRole for 1h with credentials of managed profile \"dev-fresh\""),
        "{v}"
    );
    // An SSO profile without a role is written commented out, with the reason.
    assert!(
        written.contains("# name = \"login-only-fresh\"")
            && written.contains("[profile login-only] has no sso_account_id and sso_role_name"),
        "{written}"
    );
    assert!(
        v.contains("[eks-fresh] assumes arn:aws:iam::123456789012:role/EksPod")
            && v.contains("web identity token in /var/run/secrets/eks.amazonaws.com"),
        "{v}"
    );
    assert_eq!(v.matches("\n  [").count(), 4, "{v}");
    // Every generated profile is explained.
    for from in ["admin", "dev", "metaflow", "login-only", "eks"] {
        assert!(
            written.contains(&format!("# From [profile {from}]")),
            "{written}"
        );
    }

    // A second init keeps the file.
    std::fs::write(&env.config, format!("{written}# my edit\n")).unwrap();
    let out = env.cli(&["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        output_text(&out).contains("already exists") && output_text(&out).contains("--force"),
        "{}",
        show(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&env.config).unwrap(),
        format!("{written}# my edit\n")
    );
    // --force rewrites it.
    let out = env.cli(&["init", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(&env.config).unwrap(), written);

    // Without --config: $XDG_CONFIG_HOME/credfresh/config.toml, directories created.
    let xdg = env.root().join("xdg");
    let out = Command::new(env!("CARGO_BIN_EXE_credfresh"))
        .arg("init")
        .env_clear()
        .envs(env.vars())
        .env("XDG_CONFIG_HOME", &xdg)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("run credfresh init");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let at_xdg = xdg.join("credfresh/config.toml");
    assert_eq!(std::fs::read_to_string(&at_xdg).unwrap(), written);
}

#[test]
fn check_without_its_program_says_what_is_missing() {
    // A lone copy of `credfresh` (as if credfresh-check were not installed), no PATH entry.
    let dir = tempfile::tempdir().expect("tempdir");
    let lone = dir.path().join("credfresh");
    std::fs::copy(env!("CARGO_BIN_EXE_credfresh"), &lone).expect("copy credfresh");
    // A process another test forks while the copy is open for writing holds it open until it
    // execs: running the copy meanwhile fails with ETXTBSY, so that is retried.
    let out = wait_for(
        Duration::from_secs(10),
        "the copied credfresh to run",
        || match Command::new(&lone)
            .args(["--config", "/nonexistent/config.toml", "check"])
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", dir.path().join("empty"))
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => Some(out),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => None,
            Err(e) => panic!("run credfresh check: {e}"),
        },
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("`check` runs credfresh-check, which is installed beside credfresh"),
        "{text}"
    );
    // The other commands do not need it.
    let out = Command::new(&lone)
        .arg("--version")
        .output()
        .expect("run credfresh --version");
    assert!(out.status.success(), "{}", show(&out));

    // One found on PATH is told which credfresh runs it...
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let stand_in = bin.join("credfresh-check");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\necho \"for $CREDFRESH_CHECK_FOR: $*\"\n",
    )
    .expect("write stand-in");
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    // (ETXTBSY as above, here from exec of the freshly written stand-in.)
    let out = wait_for(Duration::from_secs(10), "the stand-in to run", || {
        let out = Command::new(&lone)
            .args(["check", "team"])
            .env("PATH", &bin)
            .output()
            .expect("run credfresh check");
        let busy = String::from_utf8_lossy(&out.stderr).contains("Text file busy");
        (!busy).then_some(out)
    });
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("for {}: check team\n", env!("CARGO_PKG_VERSION")),
        "{}",
        show(&out)
    );
    // ...and refuses to run for another version.
    let out = Command::new(env!("CARGO_BIN_EXE_credfresh-check"))
        .args(["check", "team"])
        .env("CREDFRESH_CHECK_FOR", "0.0.1")
        .output()
        .expect("run credfresh-check");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out)
            .contains("but this credfresh is 0.0.1; install both programs from the same release"),
        "{}",
        show(&out)
    );
}
