//! The private container credentials endpoint `credfresh exec` serves for its command when
//! the daemon's own endpoint is off (as `aws-vault exec --ecs-server` does): 127.0.0.1 on an
//! ephemeral port, its own random token, one profile only, alive as long as the command.
//! Every request is answered from the daemon's memory over the control socket (about a
//! millisecond), so the command's SDK sees each rotation the daemon makes and nothing is
//! cached here. Errors come in the shape the SDKs parse ([`crate::api::EndpointError`]).

use crate::api::{ErrorReply, ProcessCredentials};
use crate::client;
use crate::container::{
    constant_time_eq, credentials_reply, error, serve_endpoint, EndpointProfile,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hyper::Method;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the endpoint serves: one profile, with one token, from one daemon.
#[derive(Clone)]
struct Served {
    token: Arc<str>,
    profile: Arc<str>,
    socket: Arc<PathBuf>,
}

/// A bound private endpoint; [`PrivateEndpoint::serve`] answers until cancelled.
pub(super) struct PrivateEndpoint {
    listener: TcpListener,
    served: Served,
}

impl PrivateEndpoint {
    /// Binds 127.0.0.1 on a port the kernel picks, for `profile` with `token`.
    pub(super) async fn bind(
        socket: PathBuf,
        profile: &str,
        token: &str,
    ) -> std::io::Result<PrivateEndpoint> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(PrivateEndpoint {
            listener,
            served: Served {
                token: token.into(),
                profile: profile.into(),
                socket: Arc::new(socket),
            },
        })
    }

    /// The `AWS_CONTAINER_CREDENTIALS_FULL_URI` of the endpoint.
    pub(super) fn uri(&self) -> std::io::Result<String> {
        let addr = self.listener.local_addr()?;
        Ok(format!(
            "http://{addr}{}",
            client::url_path(&["v1", "container-credentials", &self.served.profile])
        ))
    }

    /// Serves until `stop` is cancelled; the port is closed when this returns.
    pub(super) async fn serve(self, stop: CancellationToken) {
        serve_endpoint(
            self.listener,
            credentials,
            self.served,
            stop,
            "exec endpoint",
        )
        .await
    }
}

async fn credentials(
    State(s): State<Served>,
    EndpointProfile(profile): EndpointProfile,
    headers: HeaderMap,
) -> Response {
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => return error(StatusCode::UNAUTHORIZED, "missing Authorization header"),
        Some(t) if !constant_time_eq(t.as_bytes(), s.token.as_bytes()) => {
            return error(StatusCode::FORBIDDEN, "wrong authorization token")
        }
        Some(_) => {}
    }
    if profile != *s.profile {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "this endpoint serves only profile \"{}\"",
                s.profile.escape_debug()
            ),
        );
    }
    let path = client::url_path(&["v1", "credentials", &s.profile]);
    match client::request(&s.socket, Method::GET, &path, None).await {
        Ok((code, body)) if code.is_success() => {
            match serde_json::from_slice::<ProcessCredentials>(&body) {
                Ok(c) => credentials_reply(c, None),
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the daemon's credentials reply could not be read",
                ),
            }
        }
        Ok((code, body)) => {
            let message = serde_json::from_slice::<ErrorReply>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            let code = if code == StatusCode::NOT_FOUND {
                // The daemon was restarted with a config that lacks the profile.
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                code
            };
            error(code, &message)
        }
        // The daemon stopped (or is restarting): the SDK retries later.
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
