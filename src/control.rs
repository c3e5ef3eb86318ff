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
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

mod conn;
mod mfa;

pub(crate) use conn::{
    next_connection, shaped_error, spawn_connection, CarriesSecrets, ErrorShape, Slots, Throttle,
};
pub use conn::{MAX_CONNECTIONS, TOO_MANY_CONNECTIONS};
pub use mfa::MfaTarget;

/// How long a refresh request waits for its outcome before answering 504.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);
/// Refreshes (and MFA codes) waiting for their outcome at once. One beyond is answered `503`
/// at once, like a connection beyond the cap, so that requests held for up to
/// [`REFRESH_TIMEOUT`] (a hung STS) never take the connections `credential-process`, `status`
/// and the endpoints need; with [`crate::readiness::MAX_WAITERS`] they stay well below
/// [`MAX_CONNECTIONS`].
pub const MAX_REFRESHES: usize = 32;
/// How long a prune request waits for the writer before answering 504: one write in flight
/// (which waits at most `credentials_file::LOCK_TIMEOUT` for the lock) plus the prune itself.
pub const PRUNE_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// The slots of `POST /v1/wait` long polls, fewer than the connections.
    pub waits: crate::readiness::WaitSlots,
    /// The slots of [`MAX_REFRESHES`] refreshes waiting for their outcome; shared by every clone.
    pub refreshes: RefreshSlots,
}

/// The slots of [`MAX_REFRESHES`] refreshes waiting for their outcome.
#[derive(Clone)]
pub struct RefreshSlots(Arc<tokio::sync::Semaphore>);

impl Default for RefreshSlots {
    fn default() -> Self {
        RefreshSlots(Arc::new(tokio::sync::Semaphore::new(MAX_REFRESHES)))
    }
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
        .route(
            "/v1/profiles/{name}/mfa",
            post(mfa::hand_code).get(mfa::code_for),
        )
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
    let slots = Slots::new(error_body);
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
    slots.drained().await;
}

async fn refuse(stream: UnixStream) {
    conn::reply_and_close(
        stream,
        StatusCode::FORBIDDEN,
        "this socket serves only the user running credfresh",
        error_body,
    )
    .await;
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
        path_name(parts, state, error_body).await.map(ProfileName)
    }
}

/// The one `{…}` segment of `parts`' path, percent-decoded, or the error reply (in `shape`)
/// that says it is not percent-encoded UTF-8: both servers' path names.
pub(crate) async fn path_name<S: Send + Sync>(
    parts: &mut axum::http::request::Parts,
    state: &S,
    shape: ErrorShape,
) -> Result<String, Response> {
    use axum::extract::FromRequestParts;
    match UrlPath::<String>::from_request_parts(parts, state).await {
        Ok(UrlPath(name)) => Ok(name),
        Err(e) => Err(shaped_error(
            shape,
            e.status(),
            "the profile name in the path is not percent-encoded UTF-8 (encode it like ml%2Fteam%201)",
        )),
    }
}

pub(crate) fn error(code: StatusCode, message: String) -> Response {
    (code, Json(ErrorReply { error: message })).into_response()
}

/// The control socket's [`ErrorShape`]: `{"error": message}`, as [`error`] answers.
fn error_body(_: StatusCode, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message })
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
    let Ok(_slot) = s.refreshes.0.try_acquire() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            TOO_MANY_CONNECTIONS.into(),
        ));
    };
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
        Ok(req) => answer(s.profiles.clone(), &s.waits, req).await,
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

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A router whose writer takes prune requests and never answers them (a write stuck on
    /// the file's lock), and the receiving end that keeps them pending.
    fn stuck_writer() -> (Router, mpsc::Receiver<crate::writer::PruneRequest>) {
        stuck_writer_with(mpsc::channel(1).0)
    }

    /// [`stuck_writer`] sending scheduler commands on `commands`.
    fn stuck_writer_with(
        commands: mpsc::Sender<Command>,
    ) -> (Router, mpsc::Receiver<crate::writer::PruneRequest>) {
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
            waits: Default::default(),
            refreshes: Default::default(),
        };
        (router(state), prune_rx)
    }

    /// Refreshes held open for their outcome (a hung STS) take at most `MAX_REFRESHES`
    /// connections: one beyond is answered `503` at once, as a full server is, so the CLI
    /// retries it and `credential-process` and `status` keep connections to use.
    #[tokio::test(start_paused = true)]
    async fn refreshes_waiting_for_their_outcome_hold_at_most_their_share_of_connections() {
        let (commands, mut scheduler) = mpsc::channel(2 * MAX_REFRESHES);
        let (app, _held) = stuck_writer_with(commands);
        let mut pending = Vec::new();
        for _ in 0..MAX_REFRESHES {
            let app = app.clone();
            pending.push(tokio::spawn(async move {
                let req = Request::post("/v1/profiles/p/refresh").body(Body::empty());
                app.oneshot(req.unwrap()).await.unwrap().status()
            }));
        }
        for _ in 0..MAX_REFRESHES {
            assert!(scheduler.recv().await.is_some());
        }
        let started = tokio::time::Instant::now();
        let req = Request::post("/v1/refresh").body(Body::empty()).unwrap();
        let reply = app.clone().oneshot(req).await.unwrap();
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(started.elapsed(), Duration::ZERO);
        use http_body_util::BodyExt;
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        let body: ErrorReply = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error, TOO_MANY_CONNECTIONS);
        drop(scheduler);
        for p in pending {
            assert_eq!(p.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
        }
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
