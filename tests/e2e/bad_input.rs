//! Hostile and broken input: every config in `tests/corpus/config/` is refused with exit code 2
//! and a message naming file, line and fix, and the same files sent to a running daemon by
//! reload leave the old config running. Malformed requests on the control socket get a 4xx and
//! never stall the daemon.

use crate::support::{repo_root, write_file, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The corpus: (file, expected line, expected text), from each file's `# expect:` first line.
fn corpus() -> Vec<(PathBuf, usize, String)> {
    let dir = repo_root().join("tests/corpus/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read corpus file");
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| {
                    panic!(
                        "{} lacks a `# expect: LINE: text` first line",
                        path.display()
                    )
                });
            let (line, what) = expect
                .split_once(": ")
                .unwrap_or((expect.trim_end_matches(':'), ""));
            (path, line.parse().expect("line number"), what.to_owned())
        })
        .collect()
}

/// An ~/.aws/config that makes `legacy` a role profile, for the conflict case.
fn env_with_legacy_role(moto: &Moto) -> TestEnv {
    let env = TestEnv::new(moto);
    write_file(
        &env.aws_config,
        "[default]\nregion = us-east-1\n\n[profile legacy]\nrole_arn = arn:aws:iam::123456789012:role/L\nsource_profile = base\n",
        0o600,
    );
    env
}

#[test]
fn every_broken_config_is_refused_with_file_line_and_reason() {
    let cases = corpus();
    assert!(cases.len() >= 30, "only {} corpus files", cases.len());
    let moto = Moto::start();
    let env = env_with_legacy_role(&moto);
    for (path, line, what) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_credfresh"))
            .arg("--config")
            .arg(&path)
            .arg("validate")
            .env_clear()
            .envs(env.vars())
            .output()
            .expect("run validate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let located = format!("{}:{line}: ", path.display());
        assert!(
            stderr.contains(&located),
            "{name}: expected {located:?} in:\n{stderr}"
        );
        assert!(
            stderr.contains(&what),
            "{name}: expected {what:?} in:\n{stderr}"
        );
    }
}

#[test]
fn broken_configs_sent_by_reload_leave_the_old_one_running() {
    let moto = Moto::start();
    let env = env_with_legacy_role(&moto);
    let good =
        env.write_config(&[AssumeRole::new("steady", "SteadyRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    let before = daemon.wait_state("steady", "fresh", Duration::from_secs(30));
    for (path, _, _) in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Keep the socket so the client finds the daemon; the rest is the broken file.
        let broken = std::fs::read_to_string(&path).unwrap();
        let text = if broken.contains("[daemon]") {
            broken.clone()
        } else {
            format!("{}{broken}", env.daemon_table())
        };
        env.write_config_text(&text);
        let out = env.cli(&["--socket", &env.socket.display().to_string(), "reload"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = daemon
            .profile("steady")
            .unwrap_or_else(|| panic!("{name}: old config gone"));
        assert_eq!(
            after["last_refresh_at"], before["last_refresh_at"],
            "{name}"
        );
    }
    env.write_config_text(&good);
    let out = env.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(daemon
        .status()
        .get("config_error")
        .is_none_or(|e| e.is_null()));
}

/// Sends raw bytes on the control socket and returns the status line of the reply ("" if the
/// daemon closed without one).
fn raw(socket: &std::path::Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The control socket's header timeout (`control::HEADER_TIMEOUT`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until the server closes `conn`; returns what it sent before closing.
fn read_until_closed(conn: &mut UnixStream, limit: Duration) -> String {
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut reply = Vec::new();
    match conn.read_to_end(&mut reply) {
        Ok(_) => String::from_utf8_lossy(&reply).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::new(),
        Err(e) => panic!("the connection was not closed within {limit:?}: {e}"),
    }
}

#[test]
fn malformed_requests_get_4xx_and_never_stall_the_daemon() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("calm", "CalmRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("calm", "fresh", Duration::from_secs(30));
    let sock = daemon.socket().to_owned();

    // Slowloris clients that never finish their headers (or never start them) hold only
    // their own connections, and only until the header timeout.
    let opened = Instant::now();
    let mut slow = UnixStream::connect(&sock).expect("connect");
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut silent = UnixStream::connect(&sock).expect("connect");

    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("unknown path", " 404 ", b"GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("wrong method", " 405 ", b"DELETE /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        (
            "bad JSON",
            " 400 ",
            b"POST /v1/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json".to_vec(),
        ),
        (
            "an array for prune",
            " 400 ",
            b"POST /v1/prune HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]".to_vec(),
        ),
        (
            "a misspelt prune option",
            " 400 ",
            b"POST /v1/prune HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"dryrun\": true}".to_vec(),
        ),
        (
            "a wrong type for refresh",
            " 400 ",
            b"POST /v1/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"profiles\": \"a\"}".to_vec(),
        ),
        ("garbage", " 400 ", b"\x16\x03\x01 this is not HTTP\r\n\r\n".to_vec()),
        ("oversized headers", " 431 ", {
            let mut v = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            v.extend(std::iter::repeat_n(b'a', 200_000));
            v.extend(b"\r\n\r\n");
            v
        }),
        ("unknown profile", " 404 ", b"GET /v1/profiles/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
    ];
    for (what, expected, bytes) in cases {
        let t = Instant::now();
        let status = raw(&sock, &bytes);
        assert!(
            status.starts_with("HTTP/1.1") && status.contains(expected),
            "{what}: expected{expected}got {status:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(12),
            "{what} took {:?}",
            t.elapsed()
        );
        // The daemon still answers at once.
        let t = Instant::now();
        assert_eq!(daemon.get("/healthz").status, 200, "after {what}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "healthz after {what} took {:?}",
            t.elapsed()
        );
    }

    // Both slow connections are closed once the header timeout has passed.
    for (what, conn) in [("half a request", &mut slow), ("nothing", &mut silent)] {
        let left = (HEADER_TIMEOUT + Duration::from_secs(15)).saturating_sub(opened.elapsed());
        let reply = read_until_closed(conn, left.max(Duration::from_secs(1)));
        assert!(
            opened.elapsed() >= HEADER_TIMEOUT,
            "a client sending {what} was dropped before the header timeout ({:?}): {reply:?}",
            opened.elapsed()
        );
        assert!(!reply.contains(" 200 "), "{what}: {reply:?}");
    }
    assert_eq!(daemon.get("/healthz").status, 200);
}

/// The container endpoint listens on TCP loopback, where any local user can connect: it serves
/// at most 64 connections at once (more get a 503 at once, not a hang, and one warning a
/// minute in the log), and drops one that has not sent its request headers within the header
/// timeout, so slow clients cannot lock it up.
#[test]
fn container_endpoint_caps_connections_and_drops_slow_clients() {
    use std::net::TcpStream;
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let port = crate::support::free_port();
    let mut text = env.daemon_table();
    text.push_str(&format!("container_endpoint = \"127.0.0.1:{port}\"\n"));
    AssumeRole::new("box", "BoxRole", BASE_PROFILE)
        .duration("1h")
        .render(&mut text);
    env.write_config_text(&text);
    let daemon = Daemon::start(&env);
    daemon.wait_state("box", "fresh", Duration::from_secs(30));
    let token_file = env.socket.parent().unwrap().join("container-token");
    let token = std::fs::read_to_string(&token_file).expect("token file");
    env.record_secret(&token);
    let get = || -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            s,
            "GET /v1/container-credentials/box HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    assert!(get().contains(" 200 "));

    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /v1/container-credentials/box HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    for _ in 0..20 {
        let refused = get();
        assert!(
            refused.contains(" 503 "),
            "connection over the cap: {refused:?}"
        );
    }
    // A client can make refusals at will: the log gets one warning a minute, not one each.
    let warnings = daemon.log().matches("refused a connection").count();
    assert_eq!(warnings, 1, "{}", daemon.log());
    // The control socket is not affected.
    assert_eq!(daemon.get("/healthz").status, 200);

    for conn in &mut slow {
        conn.set_read_timeout(Some(HEADER_TIMEOUT + Duration::from_secs(15)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest);
        assert!(
            closed.is_ok()
                || closed
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "a slow connection stayed open: {closed:?}"
        );
        assert!(
            !String::from_utf8_lossy(&rest).contains(" 200 "),
            "a slow client was served"
        );
    }
    assert!(
        opened.elapsed() >= HEADER_TIMEOUT,
        "slow clients dropped before the header timeout ({:?})",
        opened.elapsed()
    );
    assert!(
        get().contains(" 200 "),
        "served again once the slow clients are gone"
    );
    env.assert_secrets_never_logged(&daemon);
}

/// 64 clients that send `POST /v1/refresh` headers announcing a 1000-byte body and then one
/// byte a second take every connection: the CLI retries for a few seconds and then says what
/// is going on, and the daemon closes them once the body timeout passes, after which the CLI
/// works again while they are still trickling.
#[test]
fn slow_request_bodies_lose_their_connections_and_the_cli_says_why() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("slow", "SlowRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("slow", "fresh", Duration::from_secs(30));

    let mut slow: Vec<UnixStream> = (0..64)
        .map(|_| {
            let mut s = UnixStream::connect(daemon.socket()).expect("connect");
            s.write_all(
                b"POST /v1/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .unwrap();
            s
        })
        .collect();
    let writers: Vec<UnixStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        // One byte a second each, for at most 60 s.
        std::thread::spawn(move || {
            for _ in 0..60 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                for mut w in &writers {
                    let _ = w.write_all(b" ");
                }
            }
        })
    };

    // All 64 connections are taken: the CLI retries, then explains.
    let busy = env.cli(&["status"]);
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(busy.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connections taken") && stderr.contains("kept refusing"),
        "the CLI should say all connections are taken: {stderr}"
    );

    // The daemon drops the slow bodies; the CLI works again while they still trickle.
    crate::support::wait_until(Duration::from_secs(30), "credfresh status to work", || {
        env.cli(&["status"]).status.success()
    });
    assert!(
        !trickle.is_finished(),
        "the slow clients gave up by themselves"
    );
    let out = env.cli(&["credential-process", "slow"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for conn in &mut slow {
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest);
        assert!(
            closed.is_ok()
                || closed
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "a slow connection stayed open: {closed:?}"
        );
        let reply = String::from_utf8_lossy(&rest);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
            "a slow body got {reply:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = trickle.join();
}

/// Sends `method path` with `body` and returns the status line and the body of the reply.
fn exchange(socket: &std::path::Path, method: &str, path: &str, body: &str) -> (String, String) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.lines().next().unwrap_or_default().to_owned();
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The API takes only the bodies docs/API.md shows: `reload` an empty body or `{}` (a key is
/// a `400`, and nothing is reloaded), `refresh` an empty body (all) or a non-empty
/// `profiles` list (an empty one names nothing: `400`, nothing refreshed). A path name that
/// does not percent-decode to UTF-8 is a `400` with the JSON error body every error has.
#[test]
fn api_refuses_what_its_documentation_does_not_show_with_json_errors() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&[AssumeRole::new("calm", "CalmRole", BASE_PROFILE).duration("1h")]);
    let daemon = Daemon::start(&env);
    daemon.wait_state("calm", "fresh", Duration::from_secs(30));
    let sock = daemon.socket().to_owned();
    let before = daemon.profile("calm").expect("calm");

    // A reload that would add a profile, asked for with an unknown key: refused, not done.
    env.write_config(&[
        AssumeRole::new("calm", "CalmRole", BASE_PROFILE).duration("1h"),
        AssumeRole::new("added", "AddedRole", BASE_PROFILE).duration("1h"),
    ]);
    let cases = [
        (
            "POST",
            "/v1/reload",
            "{\"x\":1}",
            "body must be empty or {}",
        ),
        ("POST", "/v1/reload", "[]", "body must be empty or {}"),
        (
            "POST",
            "/v1/refresh",
            "{\"profiles\": []}",
            "names no profile",
        ),
        (
            "GET",
            "/v1/profiles/%ff%fe",
            "",
            "not percent-encoded UTF-8",
        ),
        (
            "POST",
            "/v1/profiles/%ff%fe/refresh",
            "",
            "not percent-encoded UTF-8",
        ),
        (
            "GET",
            "/v1/credentials/%ff%fe",
            "",
            "not percent-encoded UTF-8",
        ),
    ];
    for (method, path, body, needle) in cases {
        let (status, reply) = exchange(&sock, method, path, body);
        assert!(
            status.contains(" 400 "),
            "{method} {path} {body}: {status} {reply}"
        );
        let json: serde_json::Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("{method} {path} {body}: not JSON ({e}): {reply}"));
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{method} {path} {body}: {reply}");
    }
    assert!(
        daemon.profile("added").is_none(),
        "a refused reload was done"
    );
    let after = daemon.profile("calm").expect("calm");
    assert_eq!(
        before["last_refresh_at"], after["last_refresh_at"],
        "a refused refresh was done"
    );

    // The documented forms still work.
    let (status, reply) = exchange(&sock, "POST", "/v1/reload", "{}");
    assert!(status.contains(" 200 "), "{status} {reply}");
    daemon.wait_state("added", "fresh", Duration::from_secs(30));
    let (status, reply) = exchange(&sock, "POST", "/v1/refresh", "");
    assert!(status.contains(" 200 "), "{status} {reply}");
    let json: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    assert_eq!(
        json["profiles"].as_array().map(Vec::len),
        Some(2),
        "{reply}"
    );
    let out = env.cli(&["refresh"]);
    assert!(out.status.success(), "{}", crate::support::show(&out));
}
