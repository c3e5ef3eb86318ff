//! Test 3: a chain — `a` assumes from `b`, `b` from the base profile — refreshes in order,
//! and `a`'s AssumeRole is signed with `b`'s credentials (seen by a proxy in front of moto).

use crate::support::fault_proxy::FaultProxy;
use crate::support::{
    rfc3339, show, wait_for, AssumeRole, Daemon, Moto, TestEnv, ACCOUNT, BASE_ACCESS_KEY_ID,
    BASE_PROFILE,
};
use std::time::Duration;

#[test]
fn chained_profiles_are_issued_source_first() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint());
    let env = TestEnv::with_sts(&proxy.endpoint());
    let base_key = BASE_ACCESS_KEY_ID.to_owned();
    // `a` is listed first so that file order cannot stand in for dependency order.
    env.write_config(&[
        AssumeRole::new("a", "RoleA", "b")
            .duration("1h")
            .session("sess-a"),
        AssumeRole::new("b", "RoleB", BASE_PROFILE)
            .duration("1h")
            .session("sess-b"),
    ]);
    let daemon = Daemon::start(&env);
    let a = daemon.wait_state("a", "fresh", Duration::from_secs(30));
    let b = daemon.wait_state("b", "fresh", Duration::from_secs(30));

    // Status lists sources before dependents.
    let status = daemon.status();
    let names: Vec<&str> = status["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a"], "status order: {status}");

    // a's credentials were issued after b's.
    let a_at = rfc3339(a["last_refresh_at"].as_str().unwrap(), "a.last_refresh_at");
    let b_at = rfc3339(b["last_refresh_at"].as_str().unwrap(), "b.last_refresh_at");
    assert!(a_at >= b_at, "a refreshed before its source b: {a} / {b}");
    let log = daemon.log();
    let first = |p: &str| {
        daemon
            .log_lines("refreshed", p)
            .first()
            .and_then(|line| log.find(line.as_str()))
            .unwrap_or_else(|| panic!("no \"refreshed\" log line for profile {p}:\n{log}"))
    };
    assert!(
        first("b") < first("a"),
        "the log shows a refreshed before b:\n{log}"
    );

    // Both sections are there, and each is its own role.
    let a_keys = wait_for(Duration::from_secs(10), "[a] in the file", || {
        env.section("a")
    });
    let b_keys = wait_for(Duration::from_secs(10), "[b] in the file", || {
        env.section("b")
    });
    assert_ne!(a_keys["aws_access_key_id"], b_keys["aws_access_key_id"]);
    // b's AssumeRole was signed with the base keys, then a's with b's new access key id.
    assert_eq!(
        proxy.signers("AssumeRole"),
        [base_key.clone(), b_keys["aws_access_key_id"].clone()]
    );
    for (profile, role, session) in [("a", "RoleA", "sess-a"), ("b", "RoleB", "sess-b")] {
        let out = env.python("caller_identity.py", &["--profile", profile], &[]);
        assert!(out.status.success(), "{}", show(&out));
        let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            id["Arn"],
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
            "{id}"
        );
    }

    // A forced refresh of both keeps the order.
    let before = daemon.log_lines("refreshed", "a").len();
    let out = env.cli(&["refresh", "a", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let lines: Vec<String> = daemon
        .log()
        .lines()
        .filter(|l| l.contains("refreshed"))
        .map(str::to_owned)
        .collect();
    let a_lines = daemon.log_lines("refreshed", "a");
    assert!(a_lines.len() > before, "refresh a b did not refresh a");
    let last_a = lines
        .iter()
        .rposition(|l| l == a_lines.last().unwrap())
        .unwrap();
    let b_lines = daemon.log_lines("refreshed", "b");
    let last_b = lines
        .iter()
        .rposition(|l| l == b_lines.last().unwrap())
        .unwrap();
    assert!(
        last_b < last_a,
        "after refresh, b's refresh was logged after a's"
    );
    // The forced refresh signed a's call with b's new key, not the one it replaced.
    let b_new = env.section("b").unwrap()["aws_access_key_id"].clone();
    assert_ne!(b_new, b_keys["aws_access_key_id"]);
    let signers = proxy.signers("AssumeRole");
    assert_eq!(signers[signers.len() - 2..], [base_key, b_new]);
    env.assert_secrets_never_logged(&daemon);
}
