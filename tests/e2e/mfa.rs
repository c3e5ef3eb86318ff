//! MFA: `session_token` profiles and roles chained from them, `credfresh mfa`, `mfa_process`,
//! roles that demand MFA, the 1 h role-chaining cap, reload and restart, against moto behind
//! an STS gate that checks codes as AWS does (`tests/py/mfa_gate.py`).

use crate::support::mfa_gate::{
    assert_code_absent, mfa, record_issued, totp, wrong_code, MfaGate, SECRET, SERIAL,
};
use crate::support::{
    ensure_venv, output_text, repo_root, rfc3339, show, wait_for, wait_until, Daemon, Moto,
    TestEnv, ACCOUNT, BASE_PROFILE,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The MFA session and a role chained from it that lives `role_duration`.
fn session_config(env: &TestEnv, extra: &str, role_duration: &str) -> String {
    let text = format!(
        "{}\n[[profile]]\nname = \"mfa-base\"\nkind = \"session_token\"\nsource_profile = \"{BASE_PROFILE}\"\nmfa_serial = \"{SERIAL}\"\nduration = \"15m\"\n{extra}\n\
         [[profile]]\nname = \"app\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/App\"\nsource_profile = \"mfa-base\"\nduration = \"{role_duration}\"\n",
        env.daemon_table()
    );
    env.write_config_text(&text);
    text
}

fn access_key(env: &TestEnv, section: &str) -> Option<String> {
    env.section(section)
        .and_then(|s| s.get("aws_access_key_id").cloned())
}

#[test]
fn one_code_keeps_a_chain_fresh_and_codes_are_checked_and_never_shown() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    env.set_var("RUST_LOG", "trace");
    session_config(&env, "", "6s");
    let daemon = Daemon::start(&env);

    // No code yet: both wait for one, saying what to run; nothing asks STS for a session.
    let base = daemon.wait_state("mfa-base", "login_required", WAIT);
    let hint = "credfresh mfa mfa-base";
    assert!(
        base["last_error"].as_str().unwrap().contains(hint),
        "{base}"
    );
    let app = daemon.wait_state("app", "login_required", WAIT);
    assert!(app["last_error"].as_str().unwrap().contains(hint), "{app}");
    assert_eq!(gate.requests("GetSessionToken"), 0);
    assert_eq!(gate.requests("AssumeRole"), 0);

    // A code that is not 6 digits, or none at all, is refused before the daemon hears of it,
    // without repeating what was typed.
    let out = env.cli(&["mfa", "mfa-base", "--code", "98765x"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(!output_text(&out).contains("98765"), "{}", show(&out));
    let out = env.cli(&["mfa", "mfa-base"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(output_text(&out).contains("stdin ended"), "{}", show(&out));

    // A wrong code: refused with STS's reason, exit 1, still waiting for a code.
    let wrong = wrong_code(SECRET);
    let out = mfa(&env, "mfa-base", &wrong);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MultiFactorAuthentication failed with invalid MFA one time pass code"),
        "{}",
        show(&out)
    );
    daemon.wait_state("mfa-base", "login_required", WAIT);

    // The right code, given for the role: the session starts, then the role, at once.
    let right = totp(SECRET, 0);
    let out = mfa(&env, "app", &right);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("mfa-base", "fresh", WAIT);
    daemon.wait_state("app", "fresh", WAIT);
    assert!(env.section("mfa-base").is_some());

    // The role rotates again and again on that one session.
    let mut keys = vec![access_key(&env, "app").unwrap()];
    while keys.len() < 4 {
        let next = wait_for(WAIT, "the chained role to rotate", || {
            access_key(&env, "app").filter(|k| !keys.contains(k))
        });
        keys.push(next);
    }
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    assert_eq!(
        gate.requests("GetSessionToken"),
        2,
        "one refused, one accepted"
    );

    // The same code again is refused: a code is good once.
    let out = mfa(&env, "mfa-base", &right);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(gate.refused(), ["AccessDenied", "AccessDenied"]);
    // The session it had keeps the role going.
    let last = keys.last().cloned();
    wait_until(WAIT, "the role to rotate after the refusal", || {
        access_key(&env, "app") != last
    });

    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
    let places = [
        ("the daemon's log", daemon.log()),
        ("the status", daemon.status().to_string()),
        (
            "the CLI's output",
            env.cli(&["status"])
                .stdout
                .iter()
                .map(|&b| b as char)
                .collect(),
        ),
    ];
    assert_code_absent(&wrong, &places);
    assert_code_absent(&right, &places);
}

#[test]
fn mfa_process_gives_the_codes_and_one_code_is_never_spent_twice() {
    let moto = Moto::start();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/NeedsMfa");
    let gate = MfaGate::start(&moto.endpoint(), &[&role]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let runs = env.root().join("helper-runs");
    let helper = format!(
        "{} {} {SECRET} {}",
        ensure_venv().join("bin/python").display(),
        repo_root().join("tests/py/totp.py").display(),
        runs.display()
    );
    // Two profiles of one device need a code at the same moment: the session, and a role
    // that demands MFA itself.
    let extra = format!(
        "mfa_process = \"{helper}\"\n\n[[profile]]\nname = \"strict\"\nkind = \"assume_role\"\nrole_arn = \"{role}\"\nsource_profile = \"{BASE_PROFILE}\"\nduration = \"1h\"\nmfa_serial = \"{SERIAL}\"\nmfa_process = \"{helper}\"\n"
    );
    session_config(&env, &extra, "1h");
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("mfa-base", "fresh", Duration::from_secs(120));
    daemon.wait_state("app", "fresh", Duration::from_secs(120));
    daemon.wait_state("strict", "fresh", Duration::from_secs(120));
    assert!(gate.refused().is_empty(), "refused: {:?}", gate.refused());
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    let helper_runs = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert!(helper_runs >= 2, "the helper ran {helper_runs} times");
    // Its stderr is logged; its stdout (the code) is not.
    let mut log = daemon.log();

    // A restart takes both sessions over from the file: the helper is not asked again
    // (a hardware key would want a touch), and only the plain role is assumed anew.
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(WAIT);
    let assumed = gate.accepted("AssumeRole");
    let daemon = Daemon::start(&env);
    for name in ["mfa-base", "app", "strict"] {
        daemon.wait_state(name, "fresh", WAIT);
    }
    let again = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(again, helper_runs, "the helper ran again after the restart");
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    assert_eq!(gate.accepted("AssumeRole"), assumed + 1);
    log.push_str(&daemon.log());
    assert!(log.contains("totp.py: touch your key"), "{log}");
    for d in -4..=1 {
        assert_code_absent(&totp(SECRET, d), &[("the daemon's log", log.clone())]);
    }
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn reload_and_restart_keep_the_mfa_session() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    // The 15-minute session is refreshed 5 minutes and warned about a minute ahead (not the
    // default 15 minutes and hour, which would ask for a code at once).
    let table = env.daemon_table();
    let text = session_config(&env, "", "1h").replacen(
        &table,
        &format!("{table}warn_before = \"1m\"\nrefresh_before = \"5m\"\n"),
        1,
    );
    env.write_config_text(&text);
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("mfa-base", "login_required", WAIT);
    let out = mfa(&env, "mfa-base", &totp(SECRET, 0));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("app", "fresh", WAIT);
    let base_key = access_key(&env, "mfa-base").unwrap();

    // Refreshing everything while the session runs needs no code: it is handed out again.
    let out = env.cli(&["refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(daemon.profile("mfa-base").unwrap()["state"], "fresh");
    assert_eq!(access_key(&env, "mfa-base").unwrap(), base_key);
    assert_eq!(gate.accepted("GetSessionToken"), 1);

    // A role added by a reload refreshes from the running session: no new code.
    env.write_config_text(&format!(
        "{text}\n[[profile]]\nname = \"app2\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/App2\"\nsource_profile = \"mfa-base\"\n"
    ));
    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("app2", "fresh", WAIT);
    assert_eq!(daemon.profile("mfa-base").unwrap()["state"], "fresh");

    // A reload that changes the session's duration, helper or region keeps the session
    // (they apply from the next one): no code asked for, the roles stay fresh.
    let longer = text.replacen("duration = \"15m\"", "duration = \"16m\"", 1);
    env.write_config_text(&format!(
        "{longer}\n[[profile]]\nname = \"app2\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/App2\"\nsource_profile = \"mfa-base\"\n"
    ));
    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = env.cli(&["wait", "mfa-base", "app", "app2", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(daemon.profile("mfa-base").unwrap()["state"], "fresh");
    assert_eq!(access_key(&env, "mfa-base").unwrap(), base_key);
    assert_eq!(gate.accepted("GetSessionToken"), 1);

    // A restart takes over the session the credentials file (0600) holds.
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(WAIT);
    let before = gate.accepted("GetSessionToken");
    let daemon = Daemon::start(&env);
    let base = daemon.wait_state("mfa-base", "fresh", WAIT);
    daemon.wait_state("app", "fresh", WAIT);
    daemon.wait_state("app2", "fresh", WAIT);
    assert_eq!(access_key(&env, "mfa-base").unwrap(), base_key);
    assert_eq!(gate.accepted("GetSessionToken"), before);
    assert_eq!(before, 1);
    let expires = rfc3339(base["expires_at"].as_str().unwrap(), "expires_at");
    assert!(
        expires > std::time::SystemTime::now() + Duration::from_secs(600),
        "{base}"
    );

    // A reload that makes the session another user's drops it: that user needs a code.
    env.write_config_text(&text.replacen(
        &format!("source_profile = \"{BASE_PROFILE}\""),
        "source_profile = \"default\"",
        1,
    ));
    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let base = daemon.wait_state("mfa-base", "login_required", WAIT);
    let error = base["last_error"].as_str().unwrap();
    assert!(
        error.contains("credfresh mfa mfa-base") && error.contains("session was dropped"),
        "{base}"
    );
    assert!(!error.contains("before then"), "{base}");
    // The roles keep serving their still-valid credentials until they expire.
    let app = daemon.wait_state("app", "login_required", WAIT);
    assert!(app["expires_at"].is_string(), "{app}");
    let out = env.cli(&["wait", "app", "--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn a_role_assumed_with_role_credentials_asks_for_an_hour_at_most() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let text = format!(
        "{}\n[[profile]]\nname = \"outer\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/Outer\"\nsource_profile = \"{BASE_PROFILE}\"\nduration = \"2h\"\n\n\
         [[profile]]\nname = \"inner\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::{ACCOUNT}:role/Inner\"\nsource_profile = \"outer\"\nduration = \"3h\"\n",
        env.daemon_table()
    );
    env.write_config_text(&text);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("assumes arn:aws:iam::123456789012:role/Inner for 1h"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("role chaining").count(), 1, "{stdout}");
    assert!(
        stdout.contains("profile \"inner\": `duration` = \"3h\" cut to 1h"),
        "{stdout}"
    );

    let daemon = Daemon::start(&env);
    let inner = daemon.wait_state("inner", "fresh", WAIT);
    let outer = daemon.wait_state("outer", "fresh", WAIT);
    let lifetime = |p: &serde_json::Value| {
        rfc3339(p["expires_at"].as_str().unwrap(), "expires_at")
            .duration_since(rfc3339(
                p["last_refresh_at"].as_str().unwrap(),
                "last_refresh_at",
            ))
            .unwrap()
    };
    assert!(lifetime(&inner) <= Duration::from_secs(3600 + 5), "{inner}");
    assert!(lifetime(&outer) > Duration::from_secs(3600 + 60), "{outer}");
    // The gate saw outer's role keys sign inner's AssumeRole, and had nothing to refuse.
    assert!(gate.stats()["role_keys"].as_u64().unwrap() >= 2);
    assert_eq!(gate.stats()["chain_refused"], 0);
    let log = daemon.log();
    assert_eq!(log.matches("cut to 1h").count(), 1, "{log}");
}

#[test]
fn init_chains_mfa_roles_from_a_session_token_profile() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    std::fs::write(
        &env.aws_config,
        format!(
            "[default]\nregion = us-east-1\n\n[profile admin]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/Admin\nsource_profile = {BASE_PROFILE}\nmfa_serial = {SERIAL}\n\n\
             [profile ops]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/Ops\nsource_profile = {BASE_PROFILE}\nmfa_serial = {SERIAL}\n"
        ),
    )
    .unwrap();
    let out = env.cli(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("MFA session (GetSessionToken)").count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains("[base-mfa-fresh] MFA session"), "{stdout}");
    assert_eq!(
        stdout
            .matches("credentials of managed profile \"base-mfa-fresh\"")
            .count(),
        2,
        "{stdout}"
    );
}

/// Only roles with `mfa_serial` move to the MFA session, and only an IAM user's keys open
/// one: a role with `mfa_serial` whose source is a role or SSO profile is assumed with a code,
/// one that names itself is commented out; `validate` refuses a hand-written session of a
/// role profile, naming the AWS config's line.
#[test]
fn init_and_validate_open_mfa_sessions_only_with_iam_user_keys() {
    let env = TestEnv::with_sts(&format!("http://127.0.0.1:{}", crate::support::free_port()));
    let role = |name: &str, src: &str, mfa: bool| {
        let serial = if mfa {
            format!("mfa_serial = {SERIAL}\n")
        } else {
            String::new()
        };
        format!("[profile {name}]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/{name}\nsource_profile = {src}\n{serial}\n")
    };
    std::fs::write(
        &env.aws_config,
        format!(
            "[default]\nregion = us-east-1\n\n{}{}{}[profile sso-ish]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = {ACCOUNT}\nsso_role_name = Power\n\n{}{}",
            role("nomfa", BASE_PROFILE, false),
            role("admin", BASE_PROFILE, true),
            role("chain2", "admin", true),
            role("fromsso", "sso-ish", true),
            role("selfref", "selfref", true),
        ),
    )
    .unwrap();
    let out = env.cli(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let written = std::fs::read_to_string(&env.config).unwrap();
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{written}\n{}", show(&out));
    let v = String::from_utf8_lossy(&out.stdout);
    assert_eq!(v.matches("MFA session (GetSessionToken)").count(), 1, "{v}");
    assert!(v.contains("[base-mfa-fresh] MFA session"), "{v}");
    for (role, src) in [
        ("nomfa-fresh", "AWS profile \"base\""),
        ("admin-fresh", "managed profile \"base-mfa-fresh\""),
        ("chain2-fresh", "managed profile \"admin-fresh\""),
        ("fromsso-fresh", "managed profile \"sso-ish-fresh\""),
    ] {
        let line = v
            .lines()
            .find(|l| l.contains(&format!("[{role}]")))
            .unwrap_or_else(|| panic!("no {role} in {v}"));
        assert!(line.contains(&format!("credentials of {src}")), "{line}");
    }
    assert!(
        written.contains("# name = \"selfref-fresh\"") && written.contains("names itself"),
        "{written}"
    );

    // A hand-written session of a role profile is refused, naming where the role is defined.
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"s\"\nkind = \"session_token\"\nsource_profile = \"admin\"\nmfa_serial = \"{SERIAL}\"\n",
        env.daemon_table()
    ));
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = output_text(&out);
    let at = format!(
        "{}:9 defines [profile admin] with `role_arn`",
        env.aws_config.display()
    );
    assert!(
        text.contains(&at) && text.contains("long-term keys"),
        "{text}"
    );

    // Valid, but noted: a session not longer than warn_before, a helper that cannot run.
    env.write_config_text(&format!(
        "{}\n[[profile]]\nname = \"s\"\nkind = \"session_token\"\nsource_profile = \"{BASE_PROFILE}\"\nmfa_serial = \"{SERIAL}\"\nduration = \"15m\"\n\n\
         [[profile]]\nname = \"h\"\nkind = \"session_token\"\nsource_profile = \"{BASE_PROFILE}\"\nmfa_serial = \"{SERIAL}-2\"\nmfa_process = \"/nonexistent/helper\"\n",
        env.daemon_table()
    ));
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("not longer than warn_before (1h), so the next code is asked for after two thirds of it"),
        "{text}"
    );
    assert!(
        text.contains("`mfa_process` program \"/nonexistent/helper\" does not exist"),
        "{text}"
    );
}

/// A restart takes a session over as it is: inside the warning window the code is asked for
/// at once, and an expiry no GetSessionToken of this `duration` can grant is not trusted.
#[test]
fn a_restart_warns_at_once_and_trusts_no_impossible_expiry() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let text = session_config(&env, "", "1h");
    let table = env.daemon_table();
    let with_warn = |w: &str| text.replacen(&table, &format!("{table}warn_before = \"{w}\"\n"), 1);
    env.write_config_text(&with_warn("1m"));
    let mut daemon = Daemon::start(&env);
    daemon.wait_state("mfa-base", "login_required", WAIT);
    let out = mfa(&env, "mfa-base", &totp(SECRET, 0));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("app", "fresh", WAIT);
    let base = daemon.profile("mfa-base").unwrap();
    let end = rfc3339(base["expires_at"].as_str().unwrap(), "expires_at");
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(WAIT);

    // Restarted with less than warn_before left: taken over, and a code is asked for at once
    // (not after two thirds of what is left, minutes later).
    wait_until(WAIT, "the session to run 6 s", || {
        std::time::SystemTime::now() + Duration::from_secs(14 * 60 + 54) > end
    });
    env.write_config_text(&with_warn("14m57s"));
    let mut daemon = Daemon::start(&env);
    let base = daemon.wait_state("mfa-base", "login_required", Duration::from_secs(30));
    let error = base["last_error"].as_str().unwrap();
    assert!(
        error.contains("the MFA session of \"mfa-base\" ends at"),
        "{base}"
    );
    assert!(base["expires_at"].is_string(), "{base}");
    daemon.wait_state("app", "fresh", WAIT);
    assert_eq!(gate.accepted("GetSessionToken"), 1);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(WAIT);

    // An expiry in 2099 is no session STS granted for 15 minutes: not taken over.
    let file = std::fs::read_to_string(&env.credentials).unwrap();
    let end = env.section("mfa-base").unwrap()["x_credfresh_expiration"].clone();
    assert_eq!(file.matches(end.as_str()).count(), 1, "{file}");
    std::fs::write(&env.credentials, file.replace(&end, "2099-01-01T00:00:00Z")).unwrap();
    env.write_config_text(&with_warn("1m"));
    let daemon = Daemon::start(&env);
    let base = daemon.wait_state("mfa-base", "login_required", WAIT);
    assert!(
        base["last_error"]
            .as_str()
            .unwrap()
            .contains("needs a code"),
        "{base}"
    );
    let log = daemon.log();
    assert!(
        log.contains("lasts longer than its `duration` allows"),
        "{log}"
    );
    assert!(!log.contains("took over"), "{log}");

    // A device that is not the user's: the answer names mfa_serial, not a new code.
    env.write_config_text(&with_warn("1m").replace(SERIAL, &format!("{SERIAL}-nobody")));
    let out = env.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = mfa(&env, "mfa-base", &totp(SECRET, 0));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("check `mfa_serial`") && !text.contains("with a new code"),
        "{text}"
    );
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}

/// Once a session warned about has ended, its error no longer says "before then".
#[test]
fn an_ended_mfa_session_no_longer_says_before_then() {
    let moto = Moto::start();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/Short");
    let gate = MfaGate::start(&moto.endpoint(), &[&role]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let table = env.daemon_table();
    env.write_config_text(&format!(
        "{table}warn_before = \"25s\"\n\n[[profile]]\nname = \"r\"\nkind = \"assume_role\"\nrole_arn = \"{role}\"\nsource_profile = \"{BASE_PROFILE}\"\nmfa_serial = \"{SERIAL}\"\nduration = \"20s\"\n"
    ));
    let daemon = Daemon::start(&env);
    daemon.wait_state("r", "login_required", WAIT);
    let out = mfa(&env, "r", &totp(SECRET, 0));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let r = daemon.wait_state("r", "login_required", WAIT);
    assert!(
        r["last_error"].as_str().unwrap().contains("before then"),
        "{r}"
    );
    let end = rfc3339(r["expires_at"].as_str().unwrap(), "expires_at");
    let r = wait_for(WAIT, "the ended session's error to change", || {
        let r = daemon.profile("r").unwrap();
        let error = r["last_error"].as_str().unwrap_or_default().to_owned();
        (!error.contains("before then")).then_some(r)
    });
    assert!(std::time::SystemTime::now() >= end, "{r}");
    assert!(
        r["last_error"].as_str().unwrap().contains("needs a code"),
        "{r}"
    );
    record_issued(&env, &gate);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn the_end_of_an_mfa_session_is_warned_about_once_ahead() {
    let moto = Moto::start();
    let gate = MfaGate::start(&moto.endpoint(), &[]);
    let env = TestEnv::with_sts(&gate.endpoint());
    let text = session_config(&env, "", "1h");
    // A 15-minute session, warned about 14m50s ahead: 10 s after it starts.
    let table = env.daemon_table();
    env.write_config_text(&text.replacen(&table, &format!("{table}warn_before = \"14m50s\"\n"), 1));
    let shown = crate::sso::fake_notify_send(&env);
    env.set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus");
    let daemon = Daemon::start(&env);
    daemon.wait_state("mfa-base", "login_required", WAIT);
    let out = mfa(&env, "mfa-base", &totp(SECRET, 0));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    daemon.wait_state("app", "fresh", WAIT);

    // Ten seconds on: a code is needed before the session ends; the role stays fresh.
    let base = daemon.wait_state("mfa-base", "login_required", WAIT);
    let error = base["last_error"].as_str().unwrap();
    assert!(
        error.contains("the MFA session of \"mfa-base\" ends at")
            && error.contains("credfresh mfa mfa-base"),
        "{base}"
    );
    assert!(base["expires_at"].is_string(), "{base}");
    assert_eq!(daemon.profile("app").unwrap()["state"], "fresh");
    let notes = wait_for(Duration::from_secs(5), "a desktop notification", || {
        std::fs::read_to_string(&shown).ok()
    });
    let warnings: Vec<String> = daemon
        .log()
        .lines()
        .filter(|l| l.contains("the MFA session of \"mfa-base\" ends at"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert_eq!(notes.lines().count(), 1, "{notes}");
    assert!(
        notes.contains("the MFA session of \"mfa-base\" ends at"),
        "{notes}"
    );
    // Asked again, it says the same and notifies no more.
    let out = env.cli(&["refresh", "mfa-base"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        output_text(&out).contains("credfresh mfa mfa-base"),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read_to_string(&shown).unwrap().lines().count(), 1);
    assert_eq!(gate.accepted("GetSessionToken"), 1);

    // The next code starts a new session.
    let out = mfa(&env, "mfa-base", &totp(SECRET, 1));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(gate.accepted("GetSessionToken"), 2);
}
