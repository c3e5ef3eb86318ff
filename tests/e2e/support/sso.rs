//! A fake of IAM Identity Center for the tests, on a loopback port: the SSO portal and
//! SSO-OIDC on one server, with the real services' paths, headers, JSON field names and error
//! shapes (restJson1: `x-amzn-errortype` header, OIDC errors as `error` / `error_description`).
//!
//! - portal: `GET /federation/credentials?account_id=…&role_name=…` with
//!   `x-amz-sso_bearer_token` → `{"roleCredentials":{…,"expiration":<epoch ms>}}`, or 401
//!   `UnauthorizedException` for an unknown or expired token;
//! - OIDC: `POST /client/register`, `POST /device_authorization`, `POST /token` (grant types
//!   `urn:ietf:params:oauth:grant-type:device_code` and `refresh_token`) with
//!   `AuthorizationPendingException`, `SlowDownException`, `AccessDeniedException`,
//!   `InvalidGrantException`, `InvalidClientException`, `ExpiredTokenException`.
//!
//! HTTP statuses follow botocore's service models ([`ERROR_STATUS`]); two answers the models
//! do not list are real-world ones kept for fault tests: the portal's `ForbiddenException`
//! ("No access", HTTP 403, for a role the user is not assigned) and a gateway's
//! `ServiceUnavailableException` (HTTP 503).
//!
#![allow(dead_code)] // the control API is complete; not every test uses every knob

//! Tests steer it through methods (approve a device code, expire access tokens, revoke refresh
//! tokens, rotate refresh tokens, fail or slow down requests, inject a lasting [`Fault`] into
//! one operation) and read its request counts and times.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The device-code grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A token set the fake issued (what a login leaves in the cache).
#[derive(Clone, Debug)]
pub struct Minted {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// The client registration.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: String,
}

/// A fault one operation answers with until it is set back to [`Fault::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Normal answers.
    None,
    /// HTTP 500 `InternalServerException`.
    Status500,
    /// HTTP 503 `ServiceUnavailableException`.
    Status503,
    /// HTTP 429 `TooManyRequestsException`.
    Throttle,
    /// HTTP 403 `ForbiddenException` "No access" (the portal's answer for a role the user
    /// is not assigned).
    Forbidden,
    /// HTTP 401 `UnauthorizedException` (the portal's answer for a token it does not take).
    Unauthorized,
    /// Reads the request, then says nothing for 60 s (or until the fake stops).
    Hang,
    /// Sends half a response head and closes the connection.
    Close,
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// The normal answer without its `expiration` (the portal's `roleCredentials`).
    NoExpiration,
}

struct Device {
    client_id: String,
    user_code: String,
    approved: bool,
    denied: bool,
    expires: SystemTime,
}

struct State {
    access: HashMap<String, SystemTime>,
    refresh: BTreeSet<String>,
    clients: HashMap<String, String>,
    devices: HashMap<String, Device>,
    counts: BTreeMap<String, u32>,
    secrets: BTreeSet<String>,
    access_lifetime: Duration,
    role_lifetime: Duration,
    rotate_refresh: bool,
    fail_next: u32,
    slow_down_next: u32,
    faults: HashMap<String, Fault>,
    times: Vec<(String, Instant)>,
    counter: u32,
    /// The bearer token of each `GetRoleCredentials`, oldest first.
    bearers: Vec<String>,
    /// Called with new tokens, as another tool's refresh would leave them, when the next
    /// refresh-token `CreateToken` arrives; that request then gets `InvalidGrantException`.
    race: Option<Box<dyn FnOnce(Minted) + Send>>,
}

/// The fake SSO portal + SSO-OIDC, stopped on drop.
pub struct SsoFake {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SsoFake {
    /// Starts the fake; access tokens it issues live `access_lifetime`, role credentials 1 h.
    pub fn start(access_lifetime: Duration) -> SsoFake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SSO fake");
        let port = listener.local_addr().expect("fake's address").port();
        let state = Arc::new(Mutex::new(State {
            access: HashMap::new(),
            refresh: BTreeSet::new(),
            clients: HashMap::new(),
            devices: HashMap::new(),
            counts: BTreeMap::new(),
            secrets: BTreeSet::new(),
            access_lifetime,
            role_lifetime: Duration::from_secs(3600),
            rotate_refresh: true,
            fail_next: 0,
            slow_down_next: 0,
            faults: HashMap::new(),
            times: Vec::new(),
            counter: 0,
            bearers: Vec::new(),
            race: None,
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
                        let stop = stop.clone();
                        std::thread::spawn(move || serve(conn, &state, &stop));
                    }
                }
            })
        };
        SsoFake {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SSO` and `AWS_ENDPOINT_URL_SSO_OIDC`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Registers a client and issues tokens for it, as a finished login would.
    pub fn mint(&self) -> Minted {
        let mut s = self.lock();
        let (client_id, client_secret) = register(&mut s);
        let (access_token, refresh_token) = issue_tokens(&mut s);
        Minted {
            access_token,
            refresh_token,
            client_id,
            client_secret,
        }
    }

    /// Approves every pending device code (the user confirmed in the browser); returns their
    /// user codes.
    pub fn approve_all(&self) -> Vec<String> {
        let mut s = self.lock();
        s.devices
            .values_mut()
            .filter(|d| !d.approved)
            .map(|d| {
                d.approved = true;
                d.user_code.clone()
            })
            .collect()
    }

    /// Denies every pending device code (the user chose "Deny" in the browser); returns their
    /// user codes.
    pub fn deny_all(&self) -> Vec<String> {
        let mut s = self.lock();
        s.devices
            .values_mut()
            .filter(|d| !d.approved)
            .map(|d| {
                d.denied = true;
                d.user_code.clone()
            })
            .collect()
    }

    /// Lets every pending device code expire (nobody confirmed in time).
    pub fn expire_device_codes(&self) {
        for d in self.lock().devices.values_mut() {
            d.expires = UNIX_EPOCH;
        }
    }

    /// Makes every access token issued so far invalid at the portal.
    pub fn expire_access_tokens(&self) {
        for exp in self.lock().access.values_mut() {
            *exp = UNIX_EPOCH;
        }
    }

    /// Revokes every refresh token issued so far (`InvalidGrantException` from now on).
    pub fn revoke_refresh_tokens(&self) {
        self.lock().refresh.clear();
    }

    /// Whether a refresh gives a new refresh token (the default) or keeps the old one.
    pub fn rotate_refresh_tokens(&self, rotate: bool) {
        self.lock().rotate_refresh = rotate;
    }

    /// The next refresh-token `CreateToken` finds that another tool (the AWS CLI, botocore)
    /// has just refreshed with the same refresh token: the fake rotates it, hands the new
    /// tokens to `rotated` (which writes them to the cache as that tool would) and answers
    /// the request `InvalidGrantException`.
    pub fn rotate_behind_next_refresh(&self, rotated: impl FnOnce(Minted) + Send + 'static) {
        self.lock().race = Some(Box::new(rotated));
    }

    /// The bearer token (`x-amz-sso_bearer_token`) of each `GetRoleCredentials`, oldest first.
    pub fn bearer_tokens(&self) -> Vec<String> {
        self.lock().bearers.clone()
    }

    /// Answers the next `n` requests with HTTP 500 `InternalServerException`.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// Answers the next `n` device-code polls with `SlowDownException`.
    pub fn slow_down_next(&self, n: u32) {
        self.lock().slow_down_next = n;
    }

    /// Answers every request for `op` (a name as in [`SsoFake::count`]) with `fault` from now
    /// on; [`Fault::None`] ends it.
    pub fn fault(&self, op: &str, fault: Fault) {
        self.lock().faults.insert(op.to_owned(), fault);
    }

    /// When each request for `op` arrived, oldest first.
    pub fn times(&self, op: &str) -> Vec<Instant> {
        self.lock()
            .times
            .iter()
            .filter(|(w, _)| w == op)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Requests per endpoint: `GetRoleCredentials`, `RegisterClient`,
    /// `StartDeviceAuthorization`, `CreateToken:device_code`, `CreateToken:refresh_token`.
    pub fn count(&self, what: &str) -> u32 {
        self.lock().counts.get(what).copied().unwrap_or(0)
    }

    /// Every request counted so far.
    pub fn total(&self) -> u32 {
        self.lock().counts.values().sum()
    }

    /// Every secret the fake issued (tokens, client secrets, role secrets).
    pub fn secrets(&self) -> BTreeSet<String> {
        self.lock().secrets.clone()
    }
}

impl Drop for SsoFake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn next(s: &mut State) -> u32 {
    s.counter += 1;
    s.counter
}

fn register(s: &mut State) -> (String, String) {
    let n = next(s);
    let id = format!("fakeClientId{n:04}");
    let secret = format!("fakeClientSecretNeverInLogs{n:08}xyz");
    s.clients.insert(id.clone(), secret.clone());
    s.secrets.insert(secret.clone());
    (id, secret)
}

fn issue_tokens(s: &mut State) -> (String, String) {
    let n = next(s);
    let access = format!("aoaFakeAccessTokenNeverInLogs{n:08}");
    let refresh = format!("aorFakeRefreshTokenNeverInLogs{n:08}");
    let exp = SystemTime::now() + s.access_lifetime;
    s.access.insert(access.clone(), exp);
    s.refresh.insert(refresh.clone());
    s.secrets.insert(access.clone());
    s.secrets.insert(refresh.clone());
    (access, refresh)
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
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
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

type Answer = (u16, Option<&'static str>, Value);

/// What the connection gets: an HTTP answer or a misbehaviour.
enum Reply {
    Http(Answer),
    Hang,
    Close,
    Garbage,
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let reply = answer(&req, &mut state.lock().unwrap());
    let (status, error_type, body) = match reply {
        Reply::Http(a) => a,
        Reply::Hang => {
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        Reply::Close => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"roleCre",
            );
            let _ = conn.flush();
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        Reply::Garbage => {
            let body = "<html><body>502 Bad Gateway \u{0} \u{fffd}</body></html>";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.flush();
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
    };
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nx-amzn-requestid: fake-{}\r\n",
        body.len(),
        std::process::id()
    );
    if let Some(t) = error_type {
        head.push_str(&format!("x-amzn-errortype: {t}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// The HTTP status of each modelled error the fake sends, as the `httpStatusCode` of its
/// shape in botocore's `sso-oidc` and `sso` service models (`sso_model.rs` checks this).
pub const ERROR_STATUS: &[(&str, u16)] = &[
    ("AccessDeniedException", 400),
    ("AuthorizationPendingException", 400),
    ("ExpiredTokenException", 400),
    ("InternalServerException", 500),
    ("InvalidClientException", 401),
    ("InvalidClientMetadataException", 400),
    ("InvalidGrantException", 400),
    ("InvalidRequestException", 400),
    ("SlowDownException", 400),
    ("TooManyRequestsException", 429),
    ("UnauthorizedException", 401),
    ("UnsupportedGrantTypeException", 400),
];

/// The operations the fake serves: method, path, and the name [`SsoFake::count`] uses
/// (`CreateToken` is counted per grant type).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/federation/credentials", "GetRoleCredentials"),
    ("POST", "/client/register", "RegisterClient"),
    ("POST", "/device_authorization", "StartDeviceAuthorization"),
    ("POST", "/token", "CreateToken"),
];

/// The header that carries the access token to the portal.
pub const BEARER_HEADER: &str = "x-amz-sso_bearer_token";

fn status_of(kind: &str) -> u16 {
    ERROR_STATUS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(400, |(_, s)| *s)
}

fn oidc_error(kind: &'static str, error: &str, description: &str) -> Answer {
    (
        status_of(kind),
        Some(kind),
        json!({"error": error, "error_description": description}),
    )
}

fn answer(req: &Request, s: &mut State) -> Reply {
    let what = match operation(req) {
        Some(w) => w,
        None => {
            return Reply::Http((
                404,
                Some("NotFoundException"),
                json!({"message": "no such operation"}),
            ))
        }
    };
    *s.counts.entry(what.clone()).or_default() += 1;
    s.times.push((what.clone(), Instant::now()));
    let fault = s.faults.get(&what).copied().unwrap_or(Fault::None);
    let error = |status, kind, message: &str| {
        Reply::Http((
            status,
            Some(kind),
            json!({"message": message, "error": kind, "error_description": message}),
        ))
    };
    match fault {
        Fault::None => {}
        Fault::Status500 => return error(500, "InternalServerException", "injected failure"),
        Fault::Status503 => {
            return error(
                503,
                "ServiceUnavailableException",
                "injected unavailability",
            )
        }
        Fault::Throttle => return error(429, "TooManyRequestsException", "rate exceeded"),
        Fault::Forbidden => return error(403, "ForbiddenException", "No access"),
        Fault::Unauthorized => {
            return error(
                401,
                "UnauthorizedException",
                "Session token not found or invalid",
            )
        }
        Fault::Hang => return Reply::Hang,
        Fault::Close => return Reply::Close,
        Fault::Garbage => return Reply::Garbage,
        Fault::NoExpiration => {
            let mut answer = respond(&what, req, s);
            if let Some(c) = answer
                .2
                .get_mut("roleCredentials")
                .and_then(|c| c.as_object_mut())
            {
                c.remove("expiration");
            }
            return Reply::Http(answer);
        }
    }
    Reply::Http(respond(&what, req, s))
}

/// The operation a request calls, named as in [`SsoFake::count`].
fn operation(req: &Request) -> Option<String> {
    let (_, _, op) = ROUTES
        .iter()
        .find(|(m, p, _)| *m == req.method && *p == req.path)?;
    if *op != "CreateToken" {
        return Some((*op).to_owned());
    }
    Some(format!(
        "CreateToken:{}",
        match req.field("grantType") {
            Some(DEVICE_GRANT) => "device_code",
            Some(other) => other,
            None => "none",
        }
    ))
}

/// The answer of the fake service itself (after faults).
fn respond(what: &str, req: &Request, s: &mut State) -> Answer {
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return (
            500,
            Some("InternalServerException"),
            json!({"error": "server_error", "error_description": "injected failure"}),
        );
    }
    let now = SystemTime::now();
    match what {
        "GetRoleCredentials" => {
            if let Some(t) = req.header(BEARER_HEADER) {
                s.bearers.push(t.to_owned());
            }
            let valid = req
                .header(BEARER_HEADER)
                .and_then(|t| s.access.get(t))
                .is_some_and(|exp| *exp > now);
            if !valid {
                return (
                    status_of("UnauthorizedException"),
                    Some("UnauthorizedException"),
                    json!({"message": "Session token not found or invalid"}),
                );
            }
            let (Some(account), Some(role)) =
                (req.query.get("account_id"), req.query.get("role_name"))
            else {
                return (
                    status_of("InvalidRequestException"),
                    Some("InvalidRequestException"),
                    json!({"message": "account_id and role_name are required"}),
                );
            };
            let n = next(s);
            let secret = format!("ssoRoleSecretNeverInLogs/{n:08}abcdefghijkl");
            let token = format!("ssoRoleSessionTokenNeverInLogs+{n:08}{account}{role}//==");
            s.secrets.insert(secret.clone());
            s.secrets.insert(token.clone());
            let exp = (now + s.role_lifetime)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            (
                200,
                None,
                json!({"roleCredentials": {
                    "accessKeyId": format!("ASIASSOFAKE{n:08}"),
                    "secretAccessKey": secret,
                    "sessionToken": token,
                    "expiration": exp,
                }}),
            )
        }
        "RegisterClient" => {
            if req.field("clientName").is_none() || req.field("clientType") != Some("public") {
                return oidc_error(
                    "InvalidClientMetadataException",
                    "invalid_client_metadata",
                    "clientName and clientType=public are required",
                );
            }
            let (id, secret) = register(s);
            let issued = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
            (
                200,
                None,
                json!({"clientId": id, "clientSecret": secret, "clientIdIssuedAt": issued,
                       "clientSecretExpiresAt": issued + 90 * 86400}),
            )
        }
        "StartDeviceAuthorization" => {
            let client = req.field("clientId").unwrap_or_default().to_owned();
            if s.clients.get(&client).map(String::as_str) != req.field("clientSecret") {
                return oidc_error("InvalidClientException", "invalid_client", "unknown client");
            }
            let n = next(s);
            let device = format!("fakeDeviceCodeNeverInLogs{n:08}");
            let user_code = format!("FAKE-{n:04}");
            s.secrets.insert(device.clone());
            s.devices.insert(
                device.clone(),
                Device {
                    client_id: client,
                    user_code: user_code.clone(),
                    approved: false,
                    denied: false,
                    expires: now + Duration::from_secs(600),
                },
            );
            (
                200,
                None,
                json!({"deviceCode": device, "userCode": user_code,
                       "verificationUri": "https://device.sso.us-east-1.amazonaws.com/",
                       "verificationUriComplete": format!("https://device.sso.us-east-1.amazonaws.com/?user_code={user_code}"),
                       "expiresIn": 600, "interval": 1}),
            )
        }
        _ => {
            let client = req.field("clientId").unwrap_or_default().to_owned();
            if s.clients.get(&client).map(String::as_str) != req.field("clientSecret") {
                return oidc_error("InvalidClientException", "invalid_client", "unknown client");
            }
            let lifetime = s.access_lifetime.as_secs();
            match what {
                "CreateToken:device_code" => {
                    let code = req.field("deviceCode").unwrap_or_default();
                    let Some(d) = s.devices.get(code) else {
                        return oidc_error(
                            "InvalidGrantException",
                            "invalid_grant",
                            "unknown device code",
                        );
                    };
                    if d.client_id != client {
                        return oidc_error(
                            "InvalidGrantException",
                            "invalid_grant",
                            "wrong client",
                        );
                    }
                    if d.expires < now {
                        return oidc_error(
                            "ExpiredTokenException",
                            "expired_token",
                            "device code expired",
                        );
                    }
                    if s.slow_down_next > 0 {
                        s.slow_down_next -= 1;
                        return oidc_error("SlowDownException", "slow_down", "polling too fast");
                    }
                    if d.denied {
                        return oidc_error(
                            "AccessDeniedException",
                            "access_denied",
                            "the user denied the authorization",
                        );
                    }
                    if !d.approved {
                        return oidc_error(
                            "AuthorizationPendingException",
                            "authorization_pending",
                            "the user has not confirmed yet",
                        );
                    }
                    s.devices.remove(code);
                    let (access, refresh) = issue_tokens(s);
                    (
                        200,
                        None,
                        json!({"accessToken": access, "tokenType": "Bearer", "expiresIn": lifetime, "refreshToken": refresh}),
                    )
                }
                "CreateToken:refresh_token" => {
                    let old = req.field("refreshToken").unwrap_or_default().to_owned();
                    if s.refresh.contains(&old) {
                        if let Some(rotated) = s.race.take() {
                            let (access_token, refresh_token) = issue_tokens(s);
                            s.refresh.remove(&old);
                            rotated(Minted {
                                access_token,
                                refresh_token,
                                client_id: client,
                                client_secret: req
                                    .field("clientSecret")
                                    .unwrap_or_default()
                                    .to_owned(),
                            });
                        }
                    }
                    if !s.refresh.contains(&old) {
                        return oidc_error(
                            "InvalidGrantException",
                            "invalid_grant",
                            "the refresh token is invalid or expired",
                        );
                    }
                    let (access, refresh) = issue_tokens(s);
                    let refresh = if s.rotate_refresh {
                        s.refresh.remove(&old);
                        refresh
                    } else {
                        s.refresh.remove(&refresh);
                        old
                    };
                    (
                        200,
                        None,
                        json!({"accessToken": access, "tokenType": "Bearer", "expiresIn": lifetime, "refreshToken": refresh}),
                    )
                }
                _ => oidc_error(
                    "UnsupportedGrantTypeException",
                    "unsupported_grant_type",
                    "unsupported grant type",
                ),
            }
        }
    }
}
