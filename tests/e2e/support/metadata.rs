//! Fakes of the two metadata services a workload's identity comes from, on a loopback port:
//!
//! - EC2's IMDSv2: `PUT /latest/api/token` (needs `x-aws-ec2-metadata-token-ttl-seconds`,
//!   answers a token and the same header), then `GET /latest/meta-data/iam/security-credentials/`
//!   (the role name) and `GET …/security-credentials/ROLE` (the credentials JSON), both
//!   answering 401 without a valid `x-aws-ec2-metadata-token`.
//! - The ECS/SageMaker container endpoint: `GET /v2/credentials` with `Authorization: TOKEN`
//!   answering the credentials JSON, 401 without the header, 403 with a wrong token.
//!
//! Every issued key set is new and its `Expiration` is `now + lifetime`, as written by the
//! real services (`2026-11-23T10:00:00Z`). Every request is recorded for assertions.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// The container endpoint's path.
pub const CONTAINER_PATH: &str = "/v2/credentials";
const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// One set of credentials the fake issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret: String,
    /// `Token`.
    pub token: String,
    /// `Expiration` exactly as sent.
    pub expiration: String,
}

/// One request the fake received: method, path, and the answer's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `PUT`.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The status code answered.
    pub status: u16,
}

struct State {
    role: String,
    container_token: String,
    lifetime: Duration,
    /// Issue credentials whose `Expiration` is already past.
    expired: bool,
    /// Answer this status on the credentials document instead of credentials.
    fail_credentials: Option<u16>,
    /// IMDS session tokens handed out and still honoured.
    sessions: Vec<String>,
    /// Every IMDS session token issued, forgotten or not.
    all_sessions: Vec<String>,
    /// Refuse every session token on the metadata GETs, as if each had expired at once.
    refuse_sessions: bool,
    issued: Vec<Issued>,
    seen: Vec<Seen>,
    counter: u32,
}

/// The fake metadata server, stopped on drop.
pub struct MetadataFake {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetadataFake {
    /// Starts a fake whose instance role is `role` and whose container endpoint accepts
    /// `container_token`; credentials live `lifetime`.
    pub fn start(role: &str, container_token: &str, lifetime: Duration) -> MetadataFake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the metadata fake");
        MetadataFake::start_on(listener, role, container_token, lifetime)
    }

    /// [`MetadataFake::start`] serving on `listener`.
    pub fn start_on(
        listener: TcpListener,
        role: &str,
        container_token: &str,
        lifetime: Duration,
    ) -> MetadataFake {
        let addr = listener.local_addr().expect("fake's address");
        let state = Arc::new(Mutex::new(State {
            role: role.to_owned(),
            container_token: container_token.to_owned(),
            lifetime,
            expired: false,
            fail_credentials: None,
            sessions: Vec::new(),
            all_sessions: Vec::new(),
            refuse_sessions: false,
            issued: Vec::new(),
            seen: Vec::new(),
            counter: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let state = state.clone();
                        std::thread::spawn(move || serve(conn, &state));
                    }
                }
            })
        };
        MetadataFake {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (for `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The container endpoint's full URI (for `AWS_CONTAINER_CREDENTIALS_FULL_URI`).
    pub fn container_uri(&self) -> String {
        format!("{}{CONTAINER_PATH}", self.endpoint())
    }

    /// Every credential set issued so far.
    pub fn issued(&self) -> Vec<Issued> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// From now on, issue credentials that have already expired.
    pub fn issue_expired(&self, expired: bool) {
        self.state.lock().unwrap().expired = expired;
    }

    /// From now on, answer `status` on the credentials document (`None`: credentials again).
    pub fn fail_credentials(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail_credentials = status;
    }

    /// From now on (`true`), refuse every IMDS session token on the metadata GETs with 401.
    pub fn refuse_sessions(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_sessions = refuse;
    }

    /// Every IMDS session token handed out (the leak check searches for them).
    pub fn session_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().all_sessions.clone()
    }

    /// Forgets every IMDS session token handed out, as IMDS does after their TTL.
    pub fn forget_sessions(&self) {
        self.state.lock().unwrap().sessions.clear();
    }
}

impl Drop for MetadataFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    // The requests have no body (the token PUT sends Content-Length: 0 at most).
    Some(Request {
        method,
        path,
        headers,
    })
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let (status, extra, body) = answer(&req, &mut state.lock().unwrap());
    state.lock().unwrap().seen.push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        status,
    });
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

type Answer = (u16, Vec<(String, String)>, String);

fn plain(status: u16, body: &str) -> Answer {
    (status, Vec::new(), body.to_owned())
}

fn answer(req: &Request, s: &mut State) -> Answer {
    match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            let Some(ttl) = req.header("x-aws-ec2-metadata-token-ttl-seconds") else {
                return plain(400, "missing x-aws-ec2-metadata-token-ttl-seconds");
            };
            s.counter += 1;
            let token = format!("imds-session-token-{:04}-AQAEAFakeFakeFake==", s.counter);
            s.sessions.push(token.clone());
            s.all_sessions.push(token.clone());
            let headers = vec![(
                "x-aws-ec2-metadata-token-ttl-seconds".to_owned(),
                ttl.to_owned(),
            )];
            (200, headers, token)
        }
        ("GET", path) if path.starts_with(CREDS_PATH) => {
            let valid = !s.refuse_sessions
                && req
                    .header("x-aws-ec2-metadata-token")
                    .is_some_and(|t| s.sessions.iter().any(|k| k == t));
            if !valid {
                return plain(401, "");
            }
            let role = &path[CREDS_PATH.len()..];
            if role.is_empty() {
                return plain(200, &s.role.clone());
            }
            if role != s.role {
                return plain(404, "");
            }
            if let Some(code) = s.fail_credentials {
                return plain(code, "");
            }
            let c = issue(s, "IMDS");
            let updated = humantime::format_rfc3339_seconds(SystemTime::now());
            let body = format!(
                "{{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"{updated}\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"{}\",\n  \"SecretAccessKey\" : \"{}\",\n  \"Token\" : \"{}\",\n  \"Expiration\" : \"{}\"\n}}",
                c.access_key_id, c.secret, c.token, c.expiration
            );
            plain(200, &body)
        }
        ("GET", CONTAINER_PATH) => {
            match req.header("authorization") {
                None => return plain(401, "{\"message\":\"missing Authorization\"}"),
                Some(t) if t != s.container_token => {
                    return plain(403, "{\"message\":\"bad Authorization\"}")
                }
                Some(_) => {}
            }
            if let Some(code) = s.fail_credentials {
                return plain(code, "");
            }
            let c = issue(s, "CTNR");
            let body = format!(
                "{{\"AccessKeyId\":\"{}\",\"SecretAccessKey\":\"{}\",\"Token\":\"{}\",\"Expiration\":\"{}\",\"RoleArn\":\"arn:aws:iam::123456789012:role/{}\"}}",
                c.access_key_id, c.secret, c.token, c.expiration, s.role
            );
            plain(200, &body)
        }
        _ => plain(404, ""),
    }
}

fn issue(s: &mut State, tag: &str) -> Issued {
    s.counter += 1;
    let n = s.counter;
    let now = SystemTime::now();
    let expiry = if s.expired {
        now - Duration::from_secs(120)
    } else {
        now + s.lifetime
    };
    let c = Issued {
        access_key_id: format!("ASIA{tag}FAKE{n:08}"),
        secret: format!("{tag}fakeSecretNeverInLogs/{n:08}abcdefghij"),
        token: format!("{tag}FakeSessionTokenNeverInLogs+{n:08}//////=="),
        expiration: humantime::format_rfc3339_seconds(expiry).to_string(),
    };
    s.issued.push(c.clone());
    c
}
