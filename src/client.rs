//! The CLI's side of the control socket: one HTTP/1.1 request per connection.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::{Path, PathBuf};
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
    /// The connection or the exchange failed.
    #[error("talking to the daemon on {}: {message}", .socket.display())]
    Failed {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
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

/// Sends one request and returns the status and body.
pub async fn request(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
