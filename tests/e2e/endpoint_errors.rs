//! Every error of both container endpoints (the daemon's and `credfresh exec`'s private one)
//! comes in the shape the SDKs read, `{"Code", "Message", "error"}`: the ones credfresh's
//! handlers make and the ones the router or the connection layer would otherwise answer by
//! itself (a wrong method, a path that is not UTF-8, an unknown path, a body too large, a
//! connection over the cap).

use crate::support::{show, wait_until, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

/// A reply read off the wire: status, headers (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` to
/// 127.0.0.1:`port` with `Connection: close`, and reads the whole reply.
fn send(port: u16, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{head}\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let _ = s.write_all(body);
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut raw = Vec::new();
    let _ = r.read_to_end(&mut raw);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(&raw) } else { raw };
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
    out
}

/// Asserts `r` is an error of `status` in the endpoint's shape with `code`; returns its message.
fn assert_shaped(what: &str, r: &Reply, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: {}",
        r.body
    );
    let v: Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{what}: {e}: {:?}", r.body));
    assert_eq!(v["Code"], code, "{what}: {v}");
    let message = v["Message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: {v}");
    assert_eq!(v["error"], message, "{what}: {v}");
    message.to_owned()
}

/// Every kind of error the endpoint on `port` serving `profile` with `token` can answer.
fn check_every_error(port: u16, profile: &str, token: &str) {
    let path = format!("/v1/container-credentials/{profile}");
    let auth = format!("Authorization: {token}");
    let ok = send(port, &format!("GET {path} HTTP/1.1\r\n{auth}"), b"");
    assert_eq!(ok.status, 200, "{}", ok.status);

    for method in ["POST", "PUT", "DELETE"] {
        let r = send(
            port,
            &format!("{method} {path} HTTP/1.1\r\n{auth}\r\nContent-Length: 0"),
            b"",
        );
        assert_shaped(method, &r, 405, "MethodNotAllowed");
        assert!(
            r.header("allow").is_some_and(|a| a.contains("GET")),
            "{method}: {:?}",
            r.headers
        );
    }
    for head in [
        format!("GET /v1/container-credentials/%ff HTTP/1.1\r\n{auth}"),
        "GET /v1/container-credentials/%ff HTTP/1.1".to_owned(),
    ] {
        let m = assert_shaped(&head, &send(port, &head, b""), 400, "InvalidRequest");
        assert!(m.contains("percent-encoded UTF-8"), "{m}");
    }
    for head in [
        format!("GET /nope HTTP/1.1\r\n{auth}"),
        format!("POST /v1/container-credentials HTTP/1.1\r\n{auth}"),
    ] {
        assert_shaped(&head, &send(port, &head, b""), 404, "NotFound");
    }
    let r = send(port, &format!("GET {path} HTTP/1.1"), b"");
    assert_shaped("no token", &r, 401, "MissingAuthorizationToken");
    let r = send(
        port,
        &format!("GET {path} HTTP/1.1\r\nAuthorization: wrong"),
        b"",
    );
    assert_shaped("wrong token", &r, 403, "AccessDenied");
    let big = vec![b'x'; 70 * 1024];
    let r = send(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\n{auth}\r\nContent-Length: {}",
            big.len()
        ),
        &big,
    );
    assert_shaped("large body", &r, 413, "RequestTooLarge");

    // Over the connection cap.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let r = send(port, &format!("GET {path} HTTP/1.1\r\n{auth}"), b"");
    let m = assert_shaped("over the cap", &r, 503, "CredentialsUnavailable");
    assert!(m.contains("too many open connections"), "{m}");
    drop(idle);
    wait_until(Duration::from_secs(30), "served again", || {
        send(port, &format!("GET {path} HTTP/1.1\r\n{auth}"), b"").status == 200
    });
}

fn config(env: &TestEnv, endpoint: Option<u16>) {
    let mut text = env.daemon_table();
    if let Some(port) = endpoint {
        text.push_str(&format!("container_endpoint = \"127.0.0.1:{port}\"\n"));
    }
    AssumeRole::new("box", "BoxRole", BASE_PROFILE)
        .duration("1h")
        .render(&mut text);
    env.write_config_text(&text);
}

#[test]
fn every_error_of_the_daemons_endpoint_has_the_sdk_shape() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let port = crate::support::free_port();
    config(&env, Some(port));
    let daemon = Daemon::start(&env);
    daemon.wait_state("box", "fresh", Duration::from_secs(30));
    let token = std::fs::read_to_string(env.socket.parent().unwrap().join("container-token"))
        .expect("token file");
    env.record_secret(&token);
    check_every_error(port, "box", &token);
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn every_error_of_the_exec_endpoint_has_the_sdk_shape() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    config(&env, None);
    let daemon = Daemon::start(&env);
    daemon.wait_state("box", "fresh", Duration::from_secs(30));
    let report = env.root().join("exec-endpoint");
    let script = format!(
        "printf '%s\\n%s\\n' \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" > '{}.tmp' && mv '{0}.tmp' '{0}' && {{ read line || true; }}",
        report.display()
    );
    let mut exec = env
        .command(&["exec", "box", "--", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start credfresh exec");
    let text = crate::support::wait_for(Duration::from_secs(30), "the exec'd command", || {
        std::fs::read_to_string(&report).ok()
    });
    let mut lines = text.lines();
    let uri = lines.next().unwrap().to_owned();
    let token = lines.next().unwrap().to_owned();
    env.record_secret(&token);
    let port: u16 = uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{uri}"));
    check_every_error(port, "box", &token);
    drop(exec.stdin.take());
    let out = exec.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    env.assert_secrets_never_logged(&daemon);
}
