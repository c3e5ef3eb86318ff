//! The control socket: HTTP/1.1 + JSON over a Unix socket that only the daemon's own user
//! can reach (0700 directory, 0600 socket, peer uid checked on every connection).

use crate::api::{
    ErrorReply, ProcessCredentials, ProfileState, ProfileStatus, ReloadReply, Status,
};
use crate::metrics::Metrics;
use crate::scheduler::{Command, Vault};
use crate::snapshot::ProfileSnapshot;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio_util::sync::CancellationToken;

mod mfa;

/// How long a refresh request waits for its outcome before answering 504.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a prune request waits for the writer before answering 504: one write in flight
/// (which waits at most `credentials_file::LOCK_TIMEOUT` for the lock) plus the prune itself.
pub const PRUNE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body once its headers are in; a request
/// is thus read in at most `HEADER_TIMEOUT + BODY_TIMEOUT`, or answered `408` and closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body taken (requests are small JSON objects); more is a `413`.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a reply may wait for a client that reads none of it before the connection is
/// closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once (by each server); more get a `503` at once. A client that
/// holds connections open without finishing a request loses them after [`HEADER_TIMEOUT`]
/// (headers) or [`BODY_TIMEOUT`] (body), one that does not read its reply after
/// [`WRITE_TIMEOUT`].
pub const MAX_CONNECTIONS: usize = 64;
/// What a refused connection's `503` says; the CLI recognises it.
pub const TOO_MANY_CONNECTIONS: &str = "too many open connections; try again";

/// Lets a warning about something any client can repeat at will (a refused connection, a
/// wrong token) into the log at most once per [`Throttle::INTERVAL`], counting the ones held
/// back, so a misbehaving client cannot flood the journal.
#[derive(Default)]
pub(crate) struct Throttle(std::sync::Mutex<(Option<tokio::time::Instant>, u64)>);

impl Throttle {
    pub(crate) const INTERVAL: Duration = Duration::from_secs(60);
    /// Ends each throttled warning, which carries a `held_back` field.
    pub(crate) const NOTE: &str = "logged at most once a minute; held_back counts the others";

    /// `Some(n)` if the warning may be logged now, `n` being how many were held back since
    /// the last one; `None` if it is held back.
    pub(crate) fn pass(&self) -> Option<u64> {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        if state.0.is_some_and(|last| now - last < Self::INTERVAL) {
            state.1 += 1;
            return None;
        }
        state.0 = Some(now);
        Some(std::mem::take(&mut state.1))
    }
}

/// The connections one server has open, and the throttle for warnings about refusing more.
pub(crate) struct Slots {
    open: Arc<Semaphore>,
    refused: Throttle,
}

impl Slots {
    pub(crate) fn new() -> Self {
        Slots {
            open: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            refused: Throttle::default(),
        }
    }
}

/// What the handlers need: status snapshots to read and channels to send commands on.
#[derive(Clone)]
pub struct ControlState {
    /// Fixed facts about this daemon.
    pub meta: Meta,
    /// Every profile's status, published by the scheduler.
    pub profiles: watch::Receiver<Vec<ProfileSnapshot>>,
    /// The writer's last error.
    pub file_error: watch::Receiver<Option<String>>,
    /// Why the last config reload was rejected.
    pub config_error: watch::Receiver<Option<String>>,
    /// The credentials held, for `/v1/credentials/{name}`.
    pub credentials: watch::Receiver<Vault>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Commands for the scheduler.
    pub commands: mpsc::Sender<Command>,
    /// Reload requests for the daemon's main loop.
    pub reloads: mpsc::Sender<oneshot::Sender<ReloadReply>>,
    /// Prune requests for the writer, which owns the credentials file.
    pub prunes: mpsc::Sender<crate::writer::PruneRequest>,
    /// Where `POST /v1/profiles/{name}/mfa` hands MFA codes to the fetcher.
    pub mfa: Arc<crate::mfa::MfaManager>,
}

/// Facts about the daemon that do not change while it runs.
#[derive(Clone, Debug)]
pub struct Meta {
    /// credfresh version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// The credentials file.
    pub credentials_file: String,
}

/// Body of `POST /v1/refresh`: which profiles (all when the key is absent; an empty list
/// names none and is refused).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Profile names.
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
}

/// Body of `POST /v1/reload`: empty or `{}` (no options yet, so any key is refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {}

/// Body of `POST /v1/prune`. A misspelt key is refused rather than read as a real prune.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Only report what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// Reply of `POST /v1/prune`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PruneReply {
    /// Sections removed (or that would be, with `dry_run`).
    pub removed: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Reply of `POST /v1/refresh`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshReply {
    /// The outcome for each profile refreshed, sources first.
    pub profiles: Vec<ProfileStatus>,
}

impl RefreshReply {
    /// Whether every profile was refreshed and its credentials reached the file: `fresh`
    /// with no `last_error` (a fetch that succeeded but whose write failed is answered
    /// `retrying` with "the credentials file was not updated: …").
    pub fn delivered(&self) -> bool {
        self.profiles
            .iter()
            .all(|p| p.state == ProfileState::Fresh && p.last_error.is_none())
    }
}

/// Creates the socket's directory (0700, ours, not a symlink) and binds the socket (0600).
/// A stale socket left by a dead daemon is replaced; a live one is an error.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "socket path has no directory")
        })?;
    let uid = nix::unistd::getuid().as_raw();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => {
            return Err(io::Error::other(format!(
                "{} is not a directory (a symlink or file is in its place); remove it",
                dir.display()
            )))
        }
        Ok(m) if m.uid() != uid => {
            return Err(io::Error::other(format!(
                "{} belongs to uid {}, not to this user; choose another socket path",
                dir.display(),
                m.uid()
            )))
        }
        Ok(m) if m.mode() & 0o077 != 0 => {
            // Only dirs credfresh owns alone are tightened; shared ones like /tmp are refused.
            if dir.file_name().is_some_and(|n| n == "credfresh") {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            } else {
                return Err(io::Error::other(format!(
                    "{} is readable by other users (mode {:o}); put the socket in a directory of its own (e.g. .../credfresh/credfresh.sock)",
                    dir.display(),
                    m.mode() & 0o777
                )));
            }
        }
        Ok(_) => {}
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && m.uid() == uid => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another credfresh daemon is already listening on {}",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not this user's socket; remove it",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The API's routes.
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/status", get(status))
        .route("/v1/profiles/{name}", get(profile))
        .route("/v1/profiles/{name}/refresh", post(refresh_one))
        .route("/v1/profiles/{name}/mfa", post(mfa::hand_code))
        .route("/v1/refresh", post(refresh_many))
        .route("/v1/wait", post(wait))
        .route("/v1/reload", post(reload))
        .route("/v1/prune", post(prune))
        .route("/v1/credentials/{name}", get(credentials))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; see GET /v1/status".into(),
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method; see the Allow header".into(),
            )
        })
        .with_state(state)
}

/// Serves `listener` until `shutdown`, refusing peers whose uid is not the daemon's.
pub async fn serve(listener: UnixListener, state: ControlState, shutdown: CancellationToken) {
    let app = router(state);
    let uid = nix::unistd::getuid().as_raw();
    let slots = Slots::new();
    let strangers = Throttle::default();
    while let Some((stream, _)) =
        next_connection(|| listener.accept(), &shutdown, "control socket").await
    {
        let peer = stream.peer_cred().map(|c| c.uid());
        if peer.as_ref().ok() != Some(&uid) {
            if let Some(held_back) = strangers.pass() {
                tracing::warn!(peer_uid = ?peer.ok(), held_back, "refused a control socket client of another user ({})", Throttle::NOTE);
            }
            tokio::spawn(refuse(stream));
            continue;
        }
        spawn_connection(stream, &app, &slots, &shutdown, "control");
    }
}

/// The next connection `accept` yields, or `None` once `shutdown` is cancelled. A failed
/// accept (out of file descriptors, say) is logged and tried again 100 ms later.
pub(crate) async fn next_connection<T, F, A>(
    mut accept: F,
    shutdown: &CancellationToken,
    server: &'static str,
) -> Option<T>
where
    F: FnMut() -> A,
    A: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = accept() => match accepted {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::warn!(server, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves one accepted connection in its own task: HTTP/1.1 with [`HEADER_TIMEOUT`], a
/// 64 KiB header buffer, bodies read within [`BODY_TIMEOUT`] (at most [`MAX_BODY`]) before
/// the handler runs, and replies that must make progress within [`WRITE_TIMEOUT`]; or a `503`
/// when [`MAX_CONNECTIONS`] are open already. `server` names the server in debug logs.
pub(crate) fn spawn_connection<S>(
    stream: S,
    app: &Router,
    slots: &Slots,
    shutdown: &CancellationToken,
    server: &'static str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = slots.open.clone().try_acquire_owned() else {
        if let Some(held_back) = slots.refused.pass() {
            tracing::warn!(
                server,
                held_back,
                "refused a connection: {MAX_CONNECTIONS} connections are open already ({})",
                Throttle::NOTE
            );
        }
        tokio::spawn(reply_and_close(
            stream,
            "503 Service Unavailable",
            TOO_MANY_CONNECTIONS,
        ));
        return;
    };
    let app = app.clone();
    let service = hyper::service::service_fn(move |req| read_body_then(app.clone(), req));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(WriteDeadline::new(stream)), service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => if let Err(e) = r { tracing::debug!(server, "connection: {e}") },
            _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
        }
    });
}

/// Reads `req`'s body within [`BODY_TIMEOUT`] and hands the whole request to `app`; a body
/// that is too slow (`408`) or too large (`413`) is answered without calling `app`, and the
/// connection is closed.
async fn read_body_then(
    app: Router,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Response, std::convert::Infallible> {
    use http_body_util::{BodyExt, Limited};
    use tower::ServiceExt;
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await;
    let (code, message) = match read {
        Ok(Ok(body)) => {
            let req = hyper::Request::from_parts(parts, axum::body::Body::from(body.to_bytes()));
            let Ok(reply) = app.oneshot(req).await;
            return Ok(scrub_reply(reply).await);
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes"),
        ),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            format!("reading the request body: {e}"),
        ),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {BODY_TIMEOUT:?}"),
        ),
    };
    let mut reply = error(code, message);
    reply.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    Ok(reply)
}

/// Marks a reply whose body is credentials (`/v1/credentials/{name}`, the container
/// endpoint): the only replies [`scrub_reply`] leaves as they are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CarriesSecrets;

/// `reply` with every secret the process holds masked in its body (an error message can
/// quote a remote error that echoed a token), unless it is marked [`CarriesSecrets`]. Every
/// reply of both servers passes here; their bodies are small and already in memory.
async fn scrub_reply(reply: Response) -> Response {
    use http_body_util::BodyExt;
    if reply.extensions().get::<CarriesSecrets>().is_some() {
        return reply;
    }
    let (mut parts, body) = reply.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::debug!("building a reply failed: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the reply could not be built".into(),
            );
        }
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(crate::redact::scrub(&bytes)))
}

/// A connection whose writes fail with `TimedOut` once they have made no progress for
/// [`WRITE_TIMEOUT`], so a client that never reads its reply does not hold its slot.
pub(crate) struct WriteDeadline<S> {
    inner: S,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub(crate) fn new(inner: S) -> Self {
        WriteDeadline {
            inner,
            stalled: None,
        }
    }

    /// Passes `r` on; while it is `Pending` the stall timer runs, and fires as an error.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        r: std::task::Poll<io::Result<T>>,
    ) -> std::task::Poll<io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing of the reply for {WRITE_TIMEOUT:?}"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn refuse(stream: UnixStream) {
    reply_and_close(
        stream,
        "403 Forbidden",
        "this socket serves only the user running credfresh",
    )
    .await;
}

/// Waits briefly (at most 500 ms) for the request's headers, so that an HTTP client gets the
/// reply to a request it has sent rather than one it has not; then writes a complete JSON
/// error reply, shuts its side down, and reads what the client sends until the client closes
/// (at most 64 KiB, 500 ms) before closing: a socket closed with unread data is reset, and a
/// reset can reach the client before the reply.
async fn reply_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    status: &str,
    message: &str,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), read_head).await;
    let body = serde_json::json!({ "error": message }).to_string();
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply.as_bytes())).await;
    let _ = stream.shutdown().await;
    let mut rest = (&mut stream).take(64 * 1024);
    let mut sink = tokio::io::sink();
    let drain = tokio::io::copy(&mut rest, &mut sink);
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// The `{name}` of a path, percent-decoded; a name that does not decode to UTF-8 is a `400`
/// with the JSON error body every other error has (axum's own answer is plain text).
struct ProfileName(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ProfileName {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match UrlPath::<String>::from_request_parts(parts, state).await {
            Ok(UrlPath(name)) => Ok(ProfileName(name)),
            Err(e) => Err(error(
                e.status(),
                "the profile name in the path is not percent-encoded UTF-8 (encode it like ml%2Fteam%201)".into(),
            )),
        }
    }
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(ErrorReply { error: message })).into_response()
}

async fn status(State(s): State<ControlState>) -> Json<Status> {
    Json(Status {
        version: s.meta.version.clone(),
        pid: s.meta.pid,
        started_at: s.meta.started_at.clone(),
        credentials_file: s.meta.credentials_file.clone(),
        file_error: s.file_error.borrow().clone(),
        config_error: s.config_error.borrow().clone(),
        clock_offset_seconds: crate::skew::estimate().offset_seconds(),
        profiles: s
            .profiles
            .borrow()
            .iter()
            .map(ProfileSnapshot::to_wire)
            .collect(),
    })
}

/// The credentials of profile `name` in `credential_process` form, when they are valid by
/// the servers' clock.
pub fn lookup(
    credentials: &watch::Receiver<Vault>,
    profiles: &watch::Receiver<Vec<ProfileSnapshot>>,
    name: &str,
) -> Result<ProcessCredentials, (StatusCode, String)> {
    let now = crate::skew::now();
    if let Some(c) = credentials.borrow().get(name).filter(|c| c.valid_at(now)) {
        return Ok(ProcessCredentials::from_creds(c));
    }
    match profiles.borrow().iter().find(|p| p.name == name) {
        None => Err((
            StatusCode::NOT_FOUND,
            format!("no managed profile named \"{name}\""),
        )),
        Some(p) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "profile \"{name}\" holds no valid credentials (state {}{})",
                p.state,
                p.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

async fn credentials(State(s): State<ControlState>, ProfileName(name): ProfileName) -> Response {
    match lookup(&s.credentials, &s.profiles, &name) {
        Ok(c) => {
            let mut reply = Json(c).into_response();
            reply.extensions_mut().insert(CarriesSecrets);
            reply
        }
        Err((code, message)) => error(code, message),
    }
}

async fn metrics(State(s): State<ControlState>) -> Response {
    let profiles = s.profiles.borrow().clone();
    let body = s.metrics.render(&profiles, crate::skew::now());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn profile(State(s): State<ControlState>, ProfileName(name): ProfileName) -> Response {
    let found = s
        .profiles
        .borrow()
        .iter()
        .find(|p| p.name == name)
        .map(ProfileSnapshot::to_wire);
    match found {
        Some(p) => Json(p).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no managed profile named \"{name}\""),
        ),
    }
}

async fn refresh(s: &ControlState, names: Vec<String>) -> Result<Vec<ProfileStatus>, Response> {
    let (reply, rx) = oneshot::channel();
    s.commands
        .send(Command::Refresh { names, reply })
        .await
        .map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is shutting down".into(),
            )
        })?;
    match tokio::time::timeout(REFRESH_TIMEOUT, rx).await {
        Ok(Ok(Ok(out))) => Ok(out.iter().map(ProfileSnapshot::to_wire).collect()),
        Ok(Ok(Err(unknown))) => Err(error(
            StatusCode::NOT_FOUND,
            format!("no managed profile named {}", quoted(&unknown)),
        )),
        Ok(Err(_)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        )),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the refresh did not finish within {}s; see GET /v1/status",
                REFRESH_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn refresh_one(State(s): State<ControlState>, ProfileName(name): ProfileName) -> Response {
    match refresh(&s, vec![name]).await {
        Ok(mut out) if !out.is_empty() => Json(out.remove(0)).into_response(),
        Ok(_) => error(
            StatusCode::CONFLICT,
            "the profile was removed by a reload meanwhile".into(),
        ),
        Err(r) => r,
    }
}

/// A request body: empty (the defaults) or exactly the JSON object `T` describes; an array,
/// a misspelt key or a wrong type is refused with a message naming `shape` (answered `400`),
/// never a guess.
fn parse_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let bad = |why: String| format!("body must be {shape}: {why}");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => {
            serde_json::from_value(v).map_err(|e| bad(e.to_string()))
        }
        Ok(_) => Err(bad("not a JSON object".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

async fn refresh_many(State(s): State<ControlState>, body: Bytes) -> Response {
    let shape = "empty or {\"profiles\": [\"name\", ...]}";
    let names = match parse_body::<RefreshRequest>(&body, shape) {
        Ok(RefreshRequest { profiles: None }) => Vec::new(),
        Ok(RefreshRequest {
            profiles: Some(names),
        }) if names.is_empty() => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be {shape}: `profiles` names no profile; send an empty body to refresh them all"),
            )
        }
        Ok(RefreshRequest {
            profiles: Some(names),
        }) => names,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match refresh(&s, names).await {
        Ok(profiles) => Json(RefreshReply { profiles }).into_response(),
        Err(r) => r,
    }
}

/// `POST /v1/wait`: answers once every named profile's credentials are in the file, or
/// after the request's timeout (see [`crate::readiness`]).
async fn wait(State(s): State<ControlState>, body: Bytes) -> Response {
    use crate::readiness::{answer, WAIT_SHAPE};
    let answered = match parse_body(&body, WAIT_SHAPE) {
        Ok(req) => answer(s.profiles.clone(), req).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, e)),
    };
    match answered {
        Ok(reply) => Json(reply).into_response(),
        Err((code, message)) => error(code, message),
    }
}

async fn reload(State(s): State<ControlState>, body: Bytes) -> Response {
    if let Err(e) = parse_body::<ReloadRequest>(&body, "empty or {}") {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let (reply, rx) = oneshot::channel();
    if s.reloads.send(reply).await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        );
    }
    match rx.await {
        Ok(r) if r.ok => Json(r).into_response(),
        Ok(r) => (StatusCode::UNPROCESSABLE_ENTITY, Json(r)).into_response(),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        ),
    }
}

/// Removes the socket at `path` if it is still a socket (not something put there since).
pub fn remove_socket(path: &PathBuf) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// `POST /v1/prune`: removes the sections credfresh wrote (they carry
/// `x_credfresh_expiration`) for profiles that are no longer configured. Nothing else is
/// ever deleted.
async fn prune(State(s): State<ControlState>, body: Bytes) -> Response {
    let req: PruneRequest = match parse_body(&body, "empty or {\"dry_run\": true|false}") {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let keep = s.profiles.borrow().iter().map(|p| p.name.clone()).collect();
    let (reply, rx) = oneshot::channel();
    let request = crate::writer::PruneRequest {
        keep,
        dry_run: req.dry_run,
        reply,
    };
    let answer = tokio::time::timeout(PRUNE_TIMEOUT, async {
        s.prunes.send(request).await.ok()?;
        rx.await.ok()
    })
    .await;
    match answer {
        Ok(Some(Ok(removed))) => Json(PruneReply {
            removed,
            dry_run: req.dry_run,
        })
        .into_response(),
        Ok(Some(Err(e))) => error(StatusCode::CONFLICT, e),
        Ok(None) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the credentials file could not be pruned within {}s (another program may hold its lock); see `file_error` in GET /v1/status and try again",
                PRUNE_TIMEOUT.as_secs()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reply_nobody_reads_times_out() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut conn = WriteDeadline::new(ours);
        let reply = vec![b'x'; 4096];
        let err = conn.write_all(&reply).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_not_cut_off() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                tokio::time::sleep(WRITE_TIMEOUT / 2).await;
                match theirs.read(&mut buf).await {
                    Ok(0) | Err(_) => return got.len(),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut conn = WriteDeadline::new(ours);
        conn.write_all(&[b'x'; 256]).await.unwrap();
        drop(conn);
        assert_eq!(reader.await.unwrap(), 256);
    }

    #[tokio::test]
    async fn replies_are_scrubbed_unless_they_carry_credentials() {
        use http_body_util::BodyExt;
        let secret = "controlReplySecretUnitTest/0001==";
        crate::redact::register(secret);
        let text = |reply: Response| async move {
            let body = reply.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(body.to_vec()).unwrap()
        };
        let refused = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("STS refused: token {secret}"),
        );
        let body = text(scrub_reply(refused).await).await;
        assert_eq!(body, r#"{"error":"STS refused: token ***"}"#);
        let mut creds = Json(serde_json::json!({ "SessionToken": secret })).into_response();
        creds.extensions_mut().insert(CarriesSecrets);
        assert!(text(scrub_reply(creds).await).await.contains(secret));
    }
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn throttle_lets_one_warning_through_a_minute_and_counts_the_rest() {
        let throttle = Throttle::default();
        assert_eq!(throttle.pass(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.pass(), None);
        }
        tokio::time::sleep(Throttle::INTERVAL - Duration::from_millis(1)).await;
        assert_eq!(throttle.pass(), None);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(throttle.pass(), Some(1001));
        assert_eq!(throttle.pass(), None);
        tokio::time::sleep(Throttle::INTERVAL).await;
        assert_eq!(throttle.pass(), Some(1));
    }

    /// A router whose writer takes prune requests and never answers them (a write stuck on
    /// the file's lock), and the receiving end that keeps them pending.
    fn stuck_writer() -> (Router, mpsc::Receiver<crate::writer::PruneRequest>) {
        let (commands, _) = mpsc::channel(1);
        let (reloads, _) = mpsc::channel(1);
        let (prunes, prune_rx) = mpsc::channel(1);
        let state = ControlState {
            meta: Meta {
                version: "0".into(),
                pid: 1,
                started_at: "2026-11-23T10:00:00Z".into(),
                credentials_file: "/tmp/credentials".into(),
            },
            profiles: watch::channel(Vec::new()).1,
            file_error: watch::channel(None).1,
            config_error: watch::channel(None).1,
            credentials: watch::channel(Vault::default()).1,
            metrics: Arc::new(Metrics::new()),
            commands,
            reloads,
            prunes,
            mfa: Arc::new(crate::mfa::MfaManager::new(crate::mfa::MfaSettings {
                warn_before: Duration::from_secs(3600),
                refresh_before: Duration::from_secs(900),
                desktop: false,
                credentials_file: "/tmp/credentials".into(),
            })),
        };
        (router(state), prune_rx)
    }

    #[tokio::test]
    async fn a_wrong_method_gets_a_json_error_and_the_allowed_methods() {
        use http_body_util::BodyExt;
        let (app, _held) = stuck_writer();
        let reply = app
            .oneshot(Request::delete("/v1/status").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(reply.headers()["allow"].to_str().unwrap().contains("GET"));
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("method"), "{body}");
    }

    fn prune_request(body: &'static str) -> Request<Body> {
        Request::post("/v1/prune").body(Body::from(body)).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn prune_gives_up_when_the_writer_does_not_answer() {
        let (app, _held) = stuck_writer();
        let started = tokio::time::Instant::now();
        let reply = app.oneshot(prune_request("")).await.unwrap();
        assert_eq!(reply.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(started.elapsed(), PRUNE_TIMEOUT);
    }

    #[tokio::test]
    async fn prune_and_refresh_bodies_must_be_the_exact_object() {
        let (app, mut held) = stuck_writer();
        for body in [
            "[]",
            "[true]",
            "{\"dryrun\": true}",
            "{\"dry_run\": 1}",
            "nope",
        ] {
            let reply = app.clone().oneshot(prune_request(body)).await.unwrap();
            assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{body}");
        }
        assert!(held.try_recv().is_err(), "a bad body reached the writer");
        for body in [
            "[]",
            "{\"profile\": [\"a\"]}",
            "{\"profiles\": \"a\"}",
            "{\"profiles\": []}",
        ] {
            let req = Request::post("/v1/refresh").body(Body::from(body)).unwrap();
            let reply = app.clone().oneshot(req).await.unwrap();
            assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
