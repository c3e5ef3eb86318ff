//! `credfresh mfa` against a daemon that is busy: a code handed over while the profile's
//! `mfa_process` helper waits (for a touch that never comes) is used at once and stops the
//! helper with its children; a code given for a role two links below the session settles
//! the whole chain; the profile is checked before a code is read; a helper that echoes its
//! code on stderr never puts it in the log.

use crate::support::mfa_gate::{
    assert_code_absent, mfa, mfa_with_stdin, record_issued, totp, MfaGate, SECRET, SERIAL,
};
use crate::support::{
    ensure_venv, output_text, repo_root, show, wait_for, Daemon, Moto, TestEnv, ACCOUNT,
    BASE_PROFILE,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The MFA session `mfa-base` (with `extra` keys), a role `app` chained from it, and
/// `more` profiles after them.
fn config(env: &TestEnv, extra: &str, more: &str) {
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"mfa-base\"\nkind = \"session_token\"\nsource_profile = \"{BASE_PROFILE}\"\nmfa_serial = \"{SERIAL}\"\nduration = \"15m\"\n{extra}\n\
         [[profile]]\nname = \"app\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/App\"\nsource_profile = \"mfa-base\"\nduration = \"1h\"\n{more}",
        env.daemon_table()
    ));
}

/// An executable shell script at `path`.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether process `pid` still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

/// The state the daemon reports for profile `name` now.
fn state_of(daemon: &Daemon, name: &str) -> String {
    let status = daemon.status();
    let profile = status["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_default();
    profile["state"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_code_handed_over_while_mfa_process_waits_is_used_at_once() {
    let moto = Moto::start();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/NeedsMfa");
    let gate = MfaGate::start(&moto.endpoint(), &[&role]);
    let env = TestEnv::with_sts(&gate.endpoint());
    env.set_var("RUST_LOG", "trace");
    // A helper that waits for a touch that never comes, in a child of its own.
    let helper = env.root().join("hang.sh");
    let child_pid = env.root().join("child.pid");
    script(
        &helper,
        &format!(
            "sleep 1000 &\necho $! > {}\necho 'touch your key' >&2\nwait\n",
            child_pid.display()
        ),
    );
    // Another profile of the same device, without a helper.
    let strict = format!(
        "\n[[profile]]\nname = \"strict\"\nkind = \"assume_role\"\nrole_arn = \"{role}\"\nsource_profile = \"{BASE_PROFILE}\"\nduration = \"1h\"\nmfa_serial = \"{SERIAL}\"\n"
    );
    config(
        &env,
        &format!("mfa_process = \"{}\"\n", helper.display()),
        &strict,
    );
    let daemon = Daemon::start(&env);
    let child: u32 = wait_for(WAIT, "the helper to start", || {
        std::fs::read_to_string(&child_pid)
            .ok()?
            .trim()
            .parse()
            .ok()
    });

    // The device's other profile asks for its code while the helper still waits: the
    // helper holds nothing the other profile needs.
    daemon.wait_state("strict", "login_required", Duration::from_secs(55));
    let (first, second) = (totp(SECRET, 0), totp(SECRET, 1));
    let out = mfa(&env, "strict", &first);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        alive(child),
        "the helper's run ended before the code was used"
    );

    // A code for the helper's own profile stops the helper and is used at once.
    let out = mfa(&env, "mfa-base", &second);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!output_text(&out).contains("mfa_process"), "{}", show(&out));
    assert_eq!(state_of(&daemon, "mfa-base"), "fresh");
    // Used while the helper waited, not after its 60 s ran out.
    let log = daemon.log();
    assert!(!log.contains("gave no code within"), "{log}");
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    // With its children: the whole process group is stopped.
    wait_for(
        Duration::from_secs(10),
        "the helper's child to be stopped",
        || (!alive(child)).then_some(()),
    );
    daemon.wait_state("app", "fresh", WAIT);

    let log = daemon.log();
    for code in [&first, &second] {
        assert_code_absent(code, &[("the daemon's log", log.clone())]);
    }
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn a_code_for_a_role_two_links_down_settles_the_chain_and_the_profile_is_checked_first() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let more = format!(
        "\n[[profile]]\nname = \"chained\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/Chained\"\nsource_profile = \"app\"\nduration = \"1h\"\n\n\
         [[profile]]\nname = \"plain\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/Plain\"\nsource_profile = \"{BASE_PROFILE}\"\nduration = \"1h\"\n"
    );
    config(&env, "", &more);
    let daemon = Daemon::start(&env);
    daemon.wait_state("chained", "login_required", WAIT);

    // Usage errors (exit 2), the profile named before any code is read.
    let out = env.cli(&["mfa", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        output_text(&out).contains("no managed profile named \"nosuch\""),
        "{}",
        show(&out)
    );
    let out = env.cli(&["mfa", "plain"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        output_text(&out).contains("uses no MFA device"),
        "{}",
        show(&out)
    );
    let out = mfa_with_stdin(&env, "mfa-base", b"\xff\xfe12\n");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(gate.requests("GetSessionToken"), 0);

    // The code, given for the role two links below the session: all three are fresh when
    // the command answers.
    let code = totp(SECRET, 0);
    let out = mfa(&env, "chained", &code);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for name in ["mfa-base", "app", "chained"] {
        assert_eq!(state_of(&daemon, name), "fresh", "{name}");
    }
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    assert_code_absent(&code, &[("the daemon's log", daemon.log())]);
}

#[test]
fn a_code_a_helper_echoes_on_stderr_is_not_logged() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    env.set_var("RUST_LOG", "trace");
    let helper = env.root().join("echo.sh");
    script(
        &helper,
        &format!(
            "c=$({} {} {SECRET})\necho \"$c\"\necho \"verbose: code=$c\" >&2\necho \"spaced: ${{c%???}} ${{c#???}}\" >&2\necho 'all done' >&2\n",
            ensure_venv().join("bin/python").display(),
            repo_root().join("tests/py/totp.py").display(),
        ),
    );
    config(
        &env,
        &format!("mfa_process = \"{}\"\n", helper.display()),
        "",
    );
    let daemon = Daemon::start(&env);
    daemon.wait_state("mfa-base", "fresh", WAIT);
    let log = daemon.log();
    // The helper's other lines are logged.
    assert!(log.contains("totp.py: touch your key"), "{log}");
    assert!(log.contains("all done"), "{log}");
    for d in -2..=1 {
        assert_code_absent(&totp(SECRET, d), &[("the daemon's log", log.clone())]);
    }
    assert!(!log.contains("spaced:"), "{log}");
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}
