//! `credfresh login`: the OAuth device authorization flow against SSO-OIDC, as `aws sso login`
//! runs it, writing the same token cache file.

use super::cache::{self, CachedToken};
use super::oidc_client;
use crate::config::SsoSession;
use aws_config::SdkConfig;
use aws_sdk_ssooidc::error::ProvideErrorMetadata;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The grant type of the device flow's `CreateToken`.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A cached client registration is reused while it has at least this long left.
const REGISTRATION_MARGIN: Duration = Duration::from_secs(3600);

/// How often to poll `CreateToken` when StartDeviceAuthorization names no interval.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How the browser is (not) opened.
pub struct Browser {
    /// Open the verification URL in a browser (once).
    pub open: bool,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoginError(pub String);

fn sdk_error<E>(
    what: &str,
    e: &aws_sdk_ssooidc::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> LoginError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    LoginError(format!(
        "{what}: {}",
        crate::source_error::describe("SSO-OIDC", e)
    ))
}

/// Runs the device authorization for `session`, prints the URL and code to `out`, and writes
/// the token to the cache file at `path`. Returns the new token's expiry.
pub async fn login(
    sdk: &SdkConfig,
    session: &SsoSession,
    path: &Path,
    browser: Browser,
    out: &mut (dyn Write + Send),
) -> Result<SystemTime, LoginError> {
    let client = oidc_client(sdk, session);
    let now = SystemTime::now();
    // A registration the cache still holds is reused, as the AWS CLI does.
    let old = cache::read(path).ok().filter(|t| {
        t.start_url.as_deref() == Some(session.start_url.as_str())
            && t.client_id.is_some()
            && t.client_secret.is_some()
            && t.registration_expires_at
                .is_some_and(|r| r > now + REGISTRATION_MARGIN)
    });
    let (client_id, client_secret, registration_expires_at) = match old {
        Some(t) => (
            t.client_id.unwrap_or_default(),
            t.client_secret
                .unwrap_or_else(|| SecretString::from(String::new())),
            t.registration_expires_at.unwrap_or(now),
        ),
        None => {
            let reg = client
                .register_client()
                .client_name("credfresh")
                .client_type("public")
                .set_scopes(Some(session.scopes.clone()))
                .send()
                .await
                .map_err(|e| sdk_error("cannot register the client", &e))?;
            let (Some(id), Some(secret)) = (reg.client_id(), reg.client_secret()) else {
                return Err(LoginError(
                    "SSO-OIDC RegisterClient answered without a client id or secret".into(),
                ));
            };
            let expires = SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(reg.client_secret_expires_at()).unwrap_or(0));
            (
                id.to_owned(),
                crate::redact::secret(secret.to_owned()),
                expires,
            )
        }
    };
    let auth = client
        .start_device_authorization()
        .client_id(&client_id)
        .client_secret(client_secret.expose_secret())
        .start_url(&session.start_url)
        .send()
        .await
        .map_err(|e| sdk_error("cannot start the device authorization", &e))?;
    let Some(device_code) = auth.device_code() else {
        return Err(LoginError(
            "SSO-OIDC StartDeviceAuthorization answered without a device code".into(),
        ));
    };
    crate::redact::register(device_code);
    let url = auth
        .verification_uri_complete()
        .or(auth.verification_uri())
        .unwrap_or_default()
        .to_owned();
    let code = auth.user_code().unwrap_or_default();
    let _ = writeln!(
        out,
        "To sign in to SSO session \"{}\", open this URL in a browser and confirm the code:\n\n  {url}\n\n  code: {code}\n",
        session.label()
    );
    if browser.open {
        if open_browser(&url) {
            let _ = writeln!(out, "(a browser window was opened)");
        } else {
            let _ = writeln!(out, "(could not open a browser; open the URL yourself)");
        }
    }
    let _ = writeln!(out, "Waiting for the sign-in to be confirmed…");
    let _ = out.flush();
    let deadline = SystemTime::now() + Duration::from_secs(auth.expires_in().max(1) as u64);
    let mut interval = poll_interval(auth.interval());
    loop {
        tokio::time::sleep(interval).await;
        if SystemTime::now() > deadline {
            return Err(LoginError(
                "the device code expired before the sign-in was confirmed; run `credfresh login` again".into(),
            ));
        }
        let result = client
            .create_token()
            .client_id(&client_id)
            .client_secret(client_secret.expose_secret())
            .grant_type(DEVICE_GRANT)
            .device_code(device_code)
            .send()
            .await;
        let token = match result {
            Ok(t) => t,
            Err(e) => {
                match e.as_service_error().and_then(|s| s.code()) {
                    Some("AuthorizationPendingException") => continue,
                    Some("SlowDownException") => {
                        interval += Duration::from_secs(5);
                        continue;
                    }
                    Some("ExpiredTokenException") => {
                        return Err(LoginError(
                            "the device code expired before the sign-in was confirmed; run `credfresh login` again".into(),
                        ))
                    }
                    Some("AccessDeniedException") => {
                        return Err(LoginError("the sign-in was denied in the browser".into()))
                    }
                    _ => return Err(sdk_error("cannot get the token", &e)),
                }
            }
        };
        let Some(access) = token.access_token() else {
            return Err(LoginError(
                "SSO-OIDC CreateToken answered without an access token".into(),
            ));
        };
        let expires_at = SystemTime::now() + Duration::from_secs(token.expires_in().max(0) as u64);
        let cached = CachedToken {
            start_url: Some(session.start_url.clone()),
            region: Some(session.region.clone()),
            access_token: crate::redact::secret(access.to_owned()),
            expires_at,
            refresh_token: token
                .refresh_token()
                .map(|r| crate::redact::secret(r.to_owned())),
            client_id: Some(client_id.clone()),
            client_secret: Some(client_secret.clone()),
            registration_expires_at: Some(registration_expires_at),
            extra: Default::default(),
        };
        cache::write(path, &cached).map_err(|e| {
            LoginError(format!(
                "signed in, but cannot write the token cache {}: {e}",
                path.display()
            ))
        })?;
        return Ok(expires_at);
    }
}

/// The polling interval StartDeviceAuthorization asked for; 5 s, the OAuth device flow's
/// default (RFC 8628 §3.2), when it named none.
fn poll_interval(seconds: i32) -> Duration {
    if seconds > 0 {
        Duration::from_secs(seconds as u64)
    } else {
        DEFAULT_POLL_INTERVAL
    }
}

/// Opens `url` in the desktop's browser (`xdg-open`, `open` on macOS), once.
fn open_browser(url: &str) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_every_five_seconds_unless_told_otherwise() {
        assert_eq!(poll_interval(0), Duration::from_secs(5));
        assert_eq!(poll_interval(-1), Duration::from_secs(5));
        assert_eq!(poll_interval(1), Duration::from_secs(1));
        assert_eq!(poll_interval(10), Duration::from_secs(10));
    }
}
