//! The opt-in ECS-style container credentials endpoint, for SDKs configured with
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`. It listens
//! on loopback only and answers only requests carrying the random token written (0600) at
//! start-up. SDKs refresh such credentials by themselves, unlike a file read once. Any local
//! user can connect, so it serves at most `MAX_CONNECTIONS` at once and drops a connection
//! whose request headers take longer than `HEADER_TIMEOUT` (its body `BODY_TIMEOUT`, its
//! unread reply `WRITE_TIMEOUT`), like the control socket; the
//! warnings about refused connections and wrong tokens reach the log at most once a minute.

use crate::api::{EndpointError, ProcessCredentials};
use crate::config::ContainerEndpoint;
use crate::control::{
    lookup, next_connection, path_name, shaped_error, spawn_connection, CarriesSecrets, Slots,
    Throttle,
};
use crate::fsutil;
use crate::scheduler::Vault;
use crate::snapshot::ProfileSnapshot;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the endpoint serves from.
#[derive(Clone)]
pub struct ContainerState {
    token: Arc<str>,
    wrong_tokens: Arc<Throttle>,
    credentials: watch::Receiver<Vault>,
    profiles: watch::Receiver<Vec<ProfileSnapshot>>,
}

/// The JSON the ECS endpoint returns and the SDKs parse.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
}

/// The plain copies of the secrets are wiped once the reply is serialized.
impl Drop for ContainerCredentials {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret_access_key.zeroize();
        self.token.zeroize();
    }
}

/// Binds the endpoint and writes a fresh random token to its file (0600, atomically),
/// removing temporary token files that runs started before `started` left behind.
pub async fn bind(
    settings: &ContainerEndpoint,
    credentials: watch::Receiver<Vault>,
    profiles: watch::Receiver<Vec<ProfileSnapshot>>,
    started: SystemTime,
) -> io::Result<(TcpListener, ContainerState)> {
    let token = random_token()?;
    crate::redact::register(&token);
    let (path, secret, started) = (settings.token_file.clone(), token.clone(), started);
    tokio::task::spawn_blocking(move || write_token(&path, &secret, started))
        .await
        .map_err(io::Error::other)??;
    let listener = TcpListener::bind(settings.addr).await?;
    Ok((
        listener,
        ContainerState {
            token: token.into(),
            wrong_tokens: Arc::default(),
            credentials,
            profiles,
        },
    ))
}

/// Serves until `shutdown`.
pub async fn serve(listener: TcpListener, state: ContainerState, shutdown: CancellationToken) {
    serve_endpoint(listener, credentials, state, shutdown, "container endpoint").await
}

/// Serves `handler` as `GET /v1/container-credentials/{profile}` on `listener` until
/// `shutdown`, with the control socket's connection limits and deadlines (`server` names it
/// in the log); the daemon's endpoint and `credfresh exec`'s private one.
pub(crate) async fn serve_endpoint<H, T, S>(
    listener: TcpListener,
    handler: H,
    state: S,
    shutdown: CancellationToken,
    server: &'static str,
) where
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    let app = Router::new()
        .route("/v1/container-credentials/{profile}", get(handler))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "use GET /v1/container-credentials/{profile}",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint takes only GET (see the Allow header)",
            )
        })
        .with_state(state)
        .layer(axum::middleware::map_response(shape_errors));
    let slots = Slots::new(error_body);
    while let Some((stream, _)) = next_connection(|| listener.accept(), &shutdown, server).await {
        let _ = stream.set_nodelay(true);
        spawn_connection(stream, &app, &slots, &shutdown, server);
    }
}

/// Marks a reply made by [`error`], which [`shape_errors`] leaves as it is.
#[derive(Clone, Copy)]
struct Shaped;

/// An error reply in the shape the SDKs parse ([`EndpointError`]).
pub(crate) fn error(code: StatusCode, message: &str) -> Response {
    let mut reply = shaped_error(error_body, code, message);
    reply.extensions_mut().insert(Shaped);
    reply
}

/// The endpoints' error shape (see `Slots::new`): an [`EndpointError`].
fn error_body(code: StatusCode, message: &str) -> serde_json::Value {
    serde_json::to_value(EndpointError::new(code.as_u16(), message))
        .unwrap_or_else(|_| serde_json::json!({ "error": message }))
}

/// The last stop of every reply of both endpoints: an error reply that [`error`] did not
/// make (one axum or a layer answers by itself, in plain text or with no body) gets the
/// [`EndpointError`] shape, its text (or the status's reason) as the message, its other
/// headers (`Allow`) kept.
async fn shape_errors(reply: Response) -> Response {
    use http_body_util::BodyExt;
    let code = reply.status();
    if !(code.is_client_error() || code.is_server_error())
        || reply.extensions().get::<Shaped>().is_some()
    {
        return reply;
    }
    let (mut parts, body) = reply.into_parts();
    let text = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        code.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let shaped = error(code, &message);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in shaped.headers() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, shaped.into_body())
}

/// The `{profile}` of an endpoint's path, percent-decoded; a name that does not decode to
/// UTF-8 is a `400` [`error`] (axum's own answer is plain text).
pub(crate) struct EndpointProfile(pub(crate) String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for EndpointProfile {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        let name = path_name(parts, state, error_body).await.map_err(|mut r| {
            r.extensions_mut().insert(Shaped);
            r
        })?;
        Ok(EndpointProfile(name))
    }
}

async fn credentials(
    State(s): State<ContainerState>,
    EndpointProfile(profile): EndpointProfile,
    headers: HeaderMap,
) -> Response {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match given {
        None => return error(StatusCode::UNAUTHORIZED, "missing Authorization header"),
        Some(t) if !constant_time_eq(t, s.token.as_bytes()) => {
            if let Some(held_back) = s.wrong_tokens.pass() {
                tracing::warn!(
                    held_back,
                    "container endpoint refused a request with a wrong token ({})",
                    Throttle::NOTE
                );
            }
            return error(StatusCode::FORBIDDEN, "wrong authorization token");
        }
        Some(_) => {}
    }
    match lookup(&s.credentials, &s.profiles, &profile) {
        Ok(c) => {
            let arn = s
                .credentials
                .borrow()
                .get(&profile)
                .and_then(|c| c.arn.clone());
            credentials_reply(c, arn)
        }
        Err((code, message)) => error(code, &message),
    }
}

/// The endpoint's reply carrying `c` (and the role's ARN when known), marked
/// [`CarriesSecrets`]; the plain copies of the secrets are wiped once it is serialized.
pub(crate) fn credentials_reply(mut c: ProcessCredentials, role_arn: Option<String>) -> Response {
    let mut reply = Json(ContainerCredentials {
        access_key_id: std::mem::take(&mut c.access_key_id),
        secret_access_key: std::mem::take(&mut c.secret_access_key),
        token: c.session_token.take(),
        expiration: std::mem::take(&mut c.expiration),
        role_arn,
    })
    .into_response();
    reply.extensions_mut().insert(CarriesSecrets);
    reply
}

/// Whether `a` equals `b`, in a time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the kernel, hex-encoded.
pub(crate) fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The start of the token file's temporary names, `.container-token.XXXXXX.tmp`.
const TEMP_PREFIX: &str = ".container-token.";

/// Whether `name` is one of the token file's temporary names (or an older release's
/// `.container-token.<pid>.tmp`).
fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp")
}

/// Writes `token` to `path` (0600) through a randomly named temporary file, after removing
/// the temporary files of earlier runs killed mid-write (older than `started`).
fn write_token(path: &Path, token: &str, started: SystemTime) -> io::Result<()> {
    let dir = fsutil::parent_dir(path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for p in fsutil::remove_leftovers(dir, is_temp_name, started) {
        tracing::info!(file = %p.display(), "removed a temporary file left by an interrupted run");
    }
    let tmp = fsutil::write_private(dir, TEMP_PREFIX, token.as_bytes())?;
    fsutil::persist(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_file_is_private_and_random() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/token");
        let a = random_token().unwrap();
        write_token(&path, &a, SystemTime::now()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), a);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token().unwrap());
        write_token(&path, "second", SystemTime::now()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
    }

    #[tokio::test]
    async fn errors_carry_code_and_message_for_the_sdks_and_error_for_older_clients() {
        use http_body_util::BodyExt;
        let reply = error(StatusCode::UNAUTHORIZED, "missing Authorization header");
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Code": "MissingAuthorizationToken",
                "Message": "missing Authorization header",
                "error": "missing Authorization header",
            })
        );
        // Read the way the Go SDK v2 does (`{"code","message"}`, case-insensitively).
        assert_eq!(crate::api::endpoint_error_code(403), "AccessDenied");
        assert_eq!(
            crate::api::endpoint_error_code(503),
            "CredentialsUnavailable"
        );
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
