//! The CLI's side of the control socket: one HTTP/1.1 request per connection.

use crate::env::Environment;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error(
        "the credfresh daemon is not running (nothing listens on {}); start it with `credfresh daemon`, or `systemctl --user start credfresh` where it is installed as a service",
        .0.display()
    )]
    NotRunning(PathBuf),
    /// The daemon kept refusing the connection: all its connections are taken.
    #[error(
        "the credfresh daemon on {} has all its {} connections taken and kept refusing new ones for {} s; too many requests are open at once (waits count for at most {} of them; the daemon's log names the refusals, and closes connections that send nothing within a few seconds); try again shortly",
        .0.display(),
        crate::control::MAX_CONNECTIONS,
        BUSY_RETRY.as_secs(),
        crate::readiness::MAX_WAITERS
    )]
    Busy(PathBuf),
    /// The connection or the exchange failed.
    #[error("talking to the daemon on {}: {message}", .socket.display())]
    Failed {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A success reply whose body is not what the request asks for.
    #[error("the daemon's reply could not be read: {0}")]
    BadReply(serde_json::Error),
}

/// What the daemon answered a typed request.
#[derive(Debug)]
pub enum Reply<T> {
    /// The reply the request asks for.
    Ok(T),
    /// Anything else: the status and the body (usually an [`crate::api::ErrorReply`]).
    Refused(StatusCode, Bytes),
}

/// `POST /v1/refresh` of `profiles` (all when empty): waits for the outcome of each.
pub async fn refresh(
    socket: &Path,
    profiles: &[String],
) -> Result<Reply<crate::control::RefreshReply>, ClientError> {
    let body = if profiles.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::json!({ "profiles": profiles })
    };
    let (code, body) = post_json(socket, "/v1/refresh", body).await?;
    success_reply(code, body)
}

/// `POST /v1/wait` for `profiles` (all when empty), waiting at most `timeout` (the daemon
/// caps it at [`crate::readiness::MAX_WAIT`]).
pub async fn wait(
    socket: &Path,
    profiles: &[String],
    timeout: Duration,
) -> Result<Reply<crate::readiness::WaitReply>, ClientError> {
    let mut body = serde_json::json!({ "timeout_seconds": timeout.as_secs_f64() });
    if !profiles.is_empty() {
        body["profiles"] = serde_json::json!(profiles);
    }
    let (code, body) = post_json(socket, "/v1/wait", body).await?;
    success_reply(code, body)
}

/// `POST /v1/profiles/{name}/mfa` with `code`: waits for the outcome.
pub async fn mfa(
    socket: &Path,
    profile: &str,
    code: &crate::mfa::MfaCode,
) -> Result<Reply<crate::control::RefreshReply>, ClientError> {
    let body = serde_json::json!({ "code": code.expose() });
    let path = url_path(&["v1", "profiles", profile, "mfa"]);
    let (code, body) = post_json(socket, &path, body).await?;
    success_reply(code, body)
}

/// `GET /v1/profiles/{name}/mfa`: which profile a code for `profile` is for.
pub async fn mfa_target(
    socket: &Path,
    profile: &str,
) -> Result<Reply<crate::control::MfaTarget>, ClientError> {
    let path = url_path(&["v1", "profiles", profile, "mfa"]);
    let (code, body) = request(socket, Method::GET, &path, None).await?;
    success_reply(code, body)
}

/// `POST` of a JSON body.
async fn post_json(
    socket: &Path,
    path: &str,
    body: serde_json::Value,
) -> Result<(StatusCode, Bytes), ClientError> {
    let body = body.to_string().into_bytes();
    request(socket, Method::POST, path, Some(body)).await
}

/// A success reply read as `T` (unreadable: [`ClientError::BadReply`]); any other status
/// refused.
fn success_reply<T: serde::de::DeserializeOwned>(
    code: StatusCode,
    body: Bytes,
) -> Result<Reply<T>, ClientError> {
    if !code.is_success() {
        return Ok(Reply::Refused(code, body));
    }
    serde_json::from_slice(&body)
        .map(Reply::Ok)
        .map_err(ClientError::BadReply)
}

/// `POST /v1/reload`. A config the daemon refuses is answered 422 with a
/// [`crate::api::ReloadReply`] too, so any status whose body reads as one is `Ok`.
pub async fn reload(socket: &Path) -> Result<Reply<crate::api::ReloadReply>, ClientError> {
    let (code, body) = request(socket, Method::POST, "/v1/reload", None).await?;
    Ok(any_status_reply(code, body))
}

/// A reply read as `T` whatever its status; refused when it does not read as one.
fn any_status_reply<T: serde::de::DeserializeOwned>(code: StatusCode, body: Bytes) -> Reply<T> {
    match serde_json::from_slice(&body) {
        Ok(r) => Reply::Ok(r),
        Err(_) => Reply::Refused(code, body),
    }
}

/// `POST /v1/prune`: removes (or, `dry_run`, lists) the sections of unconfigured profiles.
pub async fn prune(
    socket: &Path,
    dry_run: bool,
) -> Result<Reply<crate::control::PruneReply>, ClientError> {
    let body = serde_json::json!({ "dry_run": dry_run });
    let (code, body) = post_json(socket, "/v1/prune", body).await?;
    Ok(readable_success_reply(code, body))
}

/// A success reply read as `T`; refused when the status is not a success or the body does
/// not read as one.
fn readable_success_reply<T: serde::de::DeserializeOwned>(
    code: StatusCode,
    body: Bytes,
) -> Reply<T> {
    match serde_json::from_slice(&body) {
        Ok(r) if code.is_success() => Reply::Ok(r),
        _ => Reply::Refused(code, body),
    }
}

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL path of `segments`, each percent-encoded, so that a profile name holding `/`, `?`,
/// `%` or spaces stays one segment: `url_path(&["v1", "profiles", "a/b"])` is
/// `/v1/profiles/a%2Fb`.
pub fn url_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", utf8_percent_encode(s, SEGMENT)))
        .collect()
}

/// How long a request is retried while the daemon refuses connections because all are taken.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Sends one request and returns the status and body. While the daemon answers that all
/// its connections are taken, the request is retried for [`BUSY_RETRY`], then
/// [`ClientError::Busy`] says what is going on.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), ClientError> {
    let deadline = tokio::time::Instant::now() + BUSY_RETRY;
    let mut pause = Duration::from_millis(100);
    loop {
        let (code, bytes) = request_once(socket, method.clone(), path, body.clone()).await?;
        if !is_busy(code, &bytes) {
            return Ok((code, bytes));
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(ClientError::Busy(socket.to_owned()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Whether a reply is the daemon's refusal for want of a free connection.
fn is_busy(code: StatusCode, body: &[u8]) -> bool {
    code == StatusCode::SERVICE_UNAVAILABLE
        && serde_json::from_slice::<crate::api::ErrorReply>(body)
            .is_ok_and(|e| e.error == crate::control::TOO_MANY_CONNECTIONS)
}

/// One attempt of [`request`].
async fn request_once(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), ClientError> {
    let failed = |message: String| ClientError::Failed {
        socket: socket.to_owned(),
        message,
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(socket.to_owned())
            }
            _ => failed(e.to_string()),
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let has_body = body.is_some();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "credfresh");
    if has_body {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| failed(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}

/// The socket a client command talks to: `--socket`, else the config's, else the default.
/// A broken config on disk still yields its socket (read leniently), with a warning on stderr,
/// so the running daemon is found and can say why it refuses the file.
pub fn socket_path(flag: Option<PathBuf>, config_path: &Path, env: &Environment) -> PathBuf {
    let hint = crate::config::socket_hint(config_path, env);
    if let Some(broken) = &hint.broken {
        eprintln!("credfresh: warning: the config on disk is broken (the running daemon keeps the one it loaded):\n{broken}");
    }
    flag.or(hint.socket).unwrap_or_else(|| env.default_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_full_house_refusal_is_busy() {
        let full = serde_json::json!({ "error": crate::control::TOO_MANY_CONNECTIONS }).to_string();
        assert!(is_busy(StatusCode::SERVICE_UNAVAILABLE, full.as_bytes()));
        let other = br#"{"error":"profile \"x\" holds no valid credentials"}"#;
        assert!(!is_busy(StatusCode::SERVICE_UNAVAILABLE, other));
        assert!(!is_busy(StatusCode::OK, full.as_bytes()));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(url_path(&["v1", "status"]), "/v1/status");
        assert_eq!(
            url_path(&["v1", "credentials", "ml/team 1?#%"]),
            "/v1/credentials/ml%2Fteam%201%3F%23%25"
        );
        assert_eq!(
            url_path(&["v1", "profiles", "dev.eu-1_x~"]),
            "/v1/profiles/dev.eu-1_x~"
        );
        assert_eq!(url_path(&["v1", "profiles", "é"]), "/v1/profiles/%C3%A9");
    }

    #[test]
    fn typed_replies_keep_what_each_command_reports() {
        use crate::api::ReloadReply;
        use crate::control::{PruneReply, RefreshReply};
        let b = |s: &str| Bytes::from(s.to_owned());
        let error = r#"{"error":"no managed profile named \"x\""}"#;
        // refresh: a success must read, anything else is the daemon's refusal.
        let ok = success_reply::<RefreshReply>(StatusCode::OK, b(r#"{"profiles":[]}"#));
        assert!(matches!(ok, Ok(Reply::Ok(r)) if r.profiles.is_empty()));
        let refused = success_reply::<RefreshReply>(StatusCode::NOT_FOUND, b(error));
        assert!(matches!(
            refused,
            Ok(Reply::Refused(StatusCode::NOT_FOUND, _))
        ));
        let garbled = success_reply::<RefreshReply>(StatusCode::OK, b("{"));
        assert!(matches!(garbled, Err(ClientError::BadReply(_))));
        // reload: a refused config comes as 422 with a ReloadReply.
        let r: Reply<ReloadReply> = any_status_reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            b(r#"{"ok":false,"message":"bad"}"#),
        );
        assert!(matches!(r, Reply::Ok(r) if !r.ok && r.message == "bad"));
        let r: Reply<ReloadReply> = any_status_reply(StatusCode::SERVICE_UNAVAILABLE, b(error));
        assert!(matches!(
            r,
            Reply::Refused(StatusCode::SERVICE_UNAVAILABLE, _)
        ));
        // prune: only a readable success counts.
        let p: Reply<PruneReply> =
            readable_success_reply(StatusCode::OK, b(r#"{"removed":["a"],"dry_run":true}"#));
        assert!(matches!(p, Reply::Ok(p) if p.removed == ["a"] && p.dry_run));
        let p: Reply<PruneReply> = readable_success_reply(StatusCode::OK, b("{"));
        assert!(matches!(p, Reply::Refused(StatusCode::OK, _)));
    }
}
