//! One HTTP/1.1 connection of the control socket or the container endpoint: deadlines for
//! headers, bodies and replies, a cap on open connections, and every reply but credentials
//! scrubbed of secrets. The servers accept; this module serves what they accepted.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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

/// The body of a server's error replies for a status and a message: every error one server
/// answers, its handlers' and this module's alike (a refused connection, a slow or large
/// body), has that server's shape.
pub(crate) type ErrorShape = fn(StatusCode, &str) -> serde_json::Value;

/// The connections one server has open, the throttle for warnings about refusing more, and
/// the shape of its error replies.
pub(crate) struct Slots {
    open: Arc<Semaphore>,
    refused: Throttle,
    shape: ErrorShape,
}

impl Slots {
    pub(crate) fn new(shape: ErrorShape) -> Self {
        Slots {
            open: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            refused: Throttle::default(),
            shape,
        }
    }

    /// Waits until every connection has closed, at most [`DRAIN`]: at shutdown, requests
    /// in flight (a `POST /v1/wait` answered `503`, a refresh answered with "the daemon
    /// stopped …") get their replies before the process exits.
    pub(crate) async fn drained(&self) {
        let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(DRAIN, self.open.acquire_many(all)).await;
    }
}

/// An error reply of `code` with the body `shape` makes of `message`.
pub(crate) fn shaped_error(shape: ErrorShape, code: StatusCode, message: &str) -> Response {
    use axum::response::IntoResponse;
    (code, axum::Json(shape(code, message))).into_response()
}

/// How long a stopping server waits for the replies in flight.
pub const DRAIN: Duration = Duration::from_secs(3);

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
            StatusCode::SERVICE_UNAVAILABLE,
            TOO_MANY_CONNECTIONS,
            slots.shape,
        ));
        return;
    };
    let app = app.clone();
    let shape = slots.shape;
    let service = hyper::service::service_fn(move |req| read_body_then(app.clone(), shape, req));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(WriteDeadline::new(stream)), service);
        tokio::pin!(conn);
        let r = tokio::select! {
            r = conn.as_mut() => r,
            _ = stop.cancelled() => {
                // The request in flight is answered (the server waits at most DRAIN), then
                // the connection closes.
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = r {
            tracing::debug!(server, "connection: {e}");
        }
    });
}

/// Reads `req`'s body within [`BODY_TIMEOUT`] and hands the whole request to `app`; a body
/// that is too slow (`408`) or too large (`413`) is answered without calling `app`, and the
/// connection is closed. Errors have the body `shape` makes.
async fn read_body_then(
    app: Router,
    shape: ErrorShape,
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
            return Ok(scrub_reply(reply, shape).await);
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
    let mut reply = shaped_error(shape, code, &message);
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
async fn scrub_reply(reply: Response, shape: ErrorShape) -> Response {
    use http_body_util::BodyExt;
    if reply.extensions().get::<CarriesSecrets>().is_some() {
        return reply;
    }
    let (mut parts, body) = reply.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::debug!("building a reply failed: {e}");
            return shaped_error(
                shape,
                StatusCode::INTERNAL_SERVER_ERROR,
                "the reply could not be built",
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

/// Waits briefly (at most 500 ms) for the request's headers, so that an HTTP client gets the
/// reply to a request it has sent rather than one it has not; then writes a complete JSON
/// error reply, shuts its side down, and reads what the client sends until the client closes
/// (at most 64 KiB, 500 ms) before closing: a socket closed with unread data is reset, and a
/// reset can reach the client before the reply. Its body is the one `shape` makes.
pub(super) async fn reply_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    status: StatusCode,
    message: &str,
    shape: ErrorShape,
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
    let body = shape(status, message).to_string();
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use axum::Json;

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
        let shape: ErrorShape = |_, m| serde_json::json!({ "error": m });
        let refused = shaped_error(
            shape,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("STS refused: token {secret}"),
        );
        let body = text(scrub_reply(refused, shape).await).await;
        assert_eq!(body, r#"{"error":"STS refused: token ***"}"#);
        let mut creds = Json(serde_json::json!({ "SessionToken": secret })).into_response();
        creds.extensions_mut().insert(CarriesSecrets);
        assert!(text(scrub_reply(creds, shape).await).await.contains(secret));
    }

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
}
