//! Test 5: `status --json` has every field of the contract; the table names every profile.

use crate::support::{
    http, output_text, rfc3339, show, AssumeRole, Daemon, Moto, TestEnv, ACCOUNT, BASE_PROFILE,
};
use serde_json::Value;
use std::time::{Duration, SystemTime};

const PROFILE_FIELDS: [&str; 8] = [
    "name",
    "kind",
    "state",
    "expires_at",
    "next_refresh_at",
    "last_refresh_at",
    "last_error",
    "account_id",
];
const STATES: [&str; 7] = [
    "pending",
    "fresh",
    "refreshing",
    "retrying",
    "expired",
    "login_required",
    "error",
];

fn time_of(p: &Value, field: &str) -> SystemTime {
    let v = p[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {p}"));
    rfc3339(v, field)
}

fn check_status(status: &Value, daemon: &Daemon, env: &TestEnv, started: SystemTime) {
    for key in [
        "version",
        "pid",
        "started_at",
        "credentials_file",
        "profiles",
    ] {
        assert!(status.get(key).is_some(), "status lacks {key}: {status}");
    }
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    assert_eq!(status["pid"], daemon.pid(), "{status}");
    let started_at = time_of(status, "started_at");
    let now = SystemTime::now();
    assert!(
        started_at + Duration::from_secs(2) >= started && started_at <= now,
        "started_at {} is not when the daemon started",
        status["started_at"]
    );
    assert_eq!(
        status["credentials_file"],
        env.credentials.display().to_string(),
        "{status}"
    );
    let profiles = status["profiles"].as_array().expect("profiles is an array");
    let names: Vec<&str> = profiles
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{status}");
    assert!(
        names.contains(&"alpha") && names.contains(&"bravo"),
        "{status}"
    );
    for p in profiles {
        for key in PROFILE_FIELDS {
            assert!(p.get(key).is_some(), "profile lacks {key}: {p}");
        }
        assert_eq!(p["kind"], "assume_role", "{p}");
        assert_eq!(p["state"], "fresh", "{p}");
        assert!(STATES.contains(&p["state"].as_str().unwrap()), "{p}");
        assert_eq!(p["account_id"], ACCOUNT, "{p}");
        assert!(p["last_error"].is_null(), "{p}");
        let expires = time_of(p, "expires_at");
        let next = time_of(p, "next_refresh_at");
        let last = time_of(p, "last_refresh_at");
        assert!(
            last <= now && last + Duration::from_secs(2) >= started,
            "{p}"
        );
        assert!(last <= next && next < expires, "{p}");
        // 1 h sessions, refresh_before 15m: refresh about 15 minutes before expiry.
        let lead = expires.duration_since(next).unwrap();
        assert!(
            lead >= Duration::from_secs(13 * 60) && lead <= Duration::from_secs(17 * 60),
            "next_refresh_at is {lead:?} before expiry, want about 15m: {p}"
        );
    }
}

#[test]
fn status_json_has_every_contract_field_and_table_lists_profiles() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[
        AssumeRole::new("alpha", "AlphaRole", BASE_PROFILE).duration("1h"),
        AssumeRole::new("bravo", "BravoRole", BASE_PROFILE).duration("1h"),
    ]);
    let started = SystemTime::now();
    let daemon = Daemon::start(&env);
    daemon.wait_state("alpha", "fresh", Duration::from_secs(30));
    daemon.wait_state("bravo", "fresh", Duration::from_secs(30));

    // The CLI and the socket tell the same story.
    let cli = env.status_json();
    check_status(&cli, &daemon, &env, started);
    let raw = daemon.get("/v1/status");
    env.note_text("GET /v1/status", &raw.body);
    let api: Value = serde_json::from_str(&raw.body).unwrap();
    check_status(&api, &daemon, &env, started);
    assert_eq!(cli["profiles"], api["profiles"]);

    // The plain table: a header naming the columns, then one line per profile with its
    // state (a summary line may come first).
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = table.lines().filter(|l| !l.trim().is_empty()).collect();
    let is_row = |l: &str, name: &str| l.split_whitespace().next() == Some(name);
    let header = lines
        .iter()
        .position(|l| {
            l.split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("state"))
        })
        .unwrap_or_else(|| panic!("no header line with a STATE column:\n{table}"));
    for name in ["alpha", "bravo"] {
        let rows: Vec<usize> = (0..lines.len())
            .filter(|&i| is_row(lines[i], name))
            .collect();
        assert_eq!(rows.len(), 1, "want one line for {name}:\n{table}");
        assert!(
            rows[0] > header,
            "the {name} line comes before the header:\n{table}"
        );
        assert!(
            lines[rows[0]].split_whitespace().any(|w| w == "fresh"),
            "the {name} line does not name its state:\n{table}"
        );
    }

    // One profile.
    let out = env.cli(&["status", "--json", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let one = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str::<Value>(&one).expect("status --json alpha prints JSON");
    assert!(one.contains("alpha") && !one.contains("bravo"), "{one}");
    let r = daemon.get("/v1/profiles/alpha");
    env.note_text("GET /v1/profiles/alpha", &r.body);
    assert_eq!(r.status, 200, "{}", r.body);
    let p: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(p["name"], "alpha", "{p}");
    for key in PROFILE_FIELDS {
        assert!(
            p.get(key).is_some(),
            "GET /v1/profiles/alpha lacks {key}: {p}"
        );
    }
    let r = daemon.post("/v1/profiles/alpha/refresh");
    env.note_text("POST /v1/profiles/alpha/refresh", &r.body);
    assert!(
        (200..300).contains(&r.status),
        "POST /v1/profiles/alpha/refresh: {} {}",
        r.status,
        r.body
    );
    let r = daemon.get("/v1/profiles/nosuch");
    assert_eq!(r.status, 404, "GET /v1/profiles/nosuch: {}", r.body);
    let out = env.cli(&["status", "nosuch"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(output_text(&out).contains("nosuch"), "{}", show(&out));
    assert!(http::get(daemon.socket(), "/healthz").unwrap().status == 200);

    env.assert_secrets_never_logged(&daemon);
}
