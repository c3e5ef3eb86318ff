//! `tests/py/fault_proxy.py`: a proxy in front of moto that enforces credential expiry and
//! injects STS faults on command.

use super::{ensure_venv, free_port, repo_root, wait_until};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The running proxy, killed on drop.
pub struct FaultProxy {
    child: Child,
    port: u16,
}

/// Starts `tests/py/SCRIPT --port PORT --upstream UPSTREAM` (a fake in front of moto) and
/// waits until it listens; returns it and its port.
pub fn spawn_python_fake(script: &str, upstream: &str) -> (Child, u16) {
    let port = free_port();
    let child = Command::new(ensure_venv().join("bin/python"))
        .arg(repo_root().join("tests/py").join(script))
        .args(["--port", &port.to_string(), "--upstream", upstream])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    wait_until(
        Duration::from_secs(15),
        &format!("{script} to listen"),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (child, port)
}

/// `METHOD PATH` with a JSON `body` to a fake's control path on `port`; its JSON reply.
pub fn control_request(port: u16, method: &str, path: &str, body: &str) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the fake");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send to the fake");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read from the fake");
    let json = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("fake's reply {reply:?}: {e}"))
}

/// The strings of a JSON array (none when it is not one).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` (moto's endpoint).
    pub fn start(upstream: &str) -> FaultProxy {
        let (child, port) = spawn_python_fake("fault_proxy.py", upstream);
        FaultProxy { child, port }
    }

    /// The URL clients and the daemon use as their STS endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, method: &str, body: &str) -> Value {
        control_request(self.port, method, "/__fault", body)
    }

    /// Makes the next `count` requests (all, when `None`) fail with `mode`; "pass" ends it.
    pub fn fault(&self, mode: &str, count: Option<u32>) {
        let body = match count {
            Some(n) => format!("{{\"mode\": \"{mode}\", \"count\": {n}}}"),
            None => format!("{{\"mode\": \"{mode}\"}}"),
        };
        self.control("POST", &body);
    }

    /// Requests seen so far: `{"requests", "faulted", "by_action": {...}, "issued": [...],
    /// "signers": [{"action", "key_id"}, ...]}`.
    pub fn stats(&self) -> Value {
        self.control("GET", "")
    }

    /// Every secret access key and session token STS issued through the proxy.
    pub fn issued_secrets(&self) -> Vec<String> {
        strings(&self.stats()["issued"])
    }

    /// The access key ids that signed requests for STS `action`, in order.
    pub fn signers(&self, action: &str) -> Vec<String> {
        self.stats()["signers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["action"] == action)
                    .filter_map(|s| s["key_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many requests the proxy has seen.
    pub fn requests(&self) -> u64 {
        self.stats()["requests"].as_u64().unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
