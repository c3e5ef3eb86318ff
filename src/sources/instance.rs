//! The platform's own identity: the container credentials endpoint (ECS, SageMaker, EKS Pod
//! Identity) when its variables are set, else EC2's instance metadata service (IMDSv2).
//!
//! Both go through aws-config's providers, built afresh for every attempt so that nothing is
//! cached between attempts and no provider falls back to credentials it fetched earlier:
//! - `EcsCredentialsProvider` reads `AWS_CONTAINER_CREDENTIALS_FULL_URI` /
//!   `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)`
//!   itself. Its HTTP operation retries only when the provider config has a sleep
//!   implementation, so it gets `ProviderConfig::empty()`: one request per attempt.
//! - `ImdsCredentialsProvider` uses an `imds::Client` with `max_attempts(1)` (token PUT, role
//!   name GET, credentials GET; each once) that honours `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
//!   The provider replaces an `Expiration` that is already in the past with "now + 10–15
//!   minutes" (its "static stability" for SDK clients). credfresh must write and report the
//!   response's own expiry, so the provider (not the client) gets a clock frozen at the Unix
//!   epoch: to it, no response is ever stale, and the expiry passes through unchanged. Expired
//!   credentials are then refused by the scheduler like those of any other source.

use super::{chain, SourceError};
use crate::creds::TempCredentials;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds::client::error::ImdsError;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_smithy_async::time::StaticTimeSource;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::{Duration, SystemTime};

const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const ENV_RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
const ENV_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
const ENV_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const ENV_IMDS_ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const DEFAULT_IMDS: &str = "http://169.254.169.254";

/// Where the credentials come from, decided from the environment on every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// The container endpoint, named by the variable that configures it.
    Container(&'static str),
    /// IMDSv2 at this base URL.
    Imds(String),
}

impl Endpoint {
    fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        // The same precedence as the SDKs: the relative URI (ECS, SageMaker) wins.
        if var(ENV_RELATIVE_URI).is_some() {
            Endpoint::Container(ENV_RELATIVE_URI)
        } else if var(ENV_FULL_URI).is_some() {
            Endpoint::Container(ENV_FULL_URI)
        } else {
            Endpoint::Imds(var(ENV_IMDS_ENDPOINT).unwrap_or_else(|| DEFAULT_IMDS.to_owned()))
        }
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One attempt at the instance's or container's role credentials.
pub(super) async fn fetch(http: SharedHttpClient) -> Result<TempCredentials, SourceError> {
    match Endpoint::from_env(process_var) {
        Endpoint::Container(var) => container(var, http).await,
        Endpoint::Imds(base) => imds(&base, http).await,
    }
}

async fn container(
    var: &'static str,
    http: SharedHttpClient,
) -> Result<TempCredentials, SourceError> {
    tracing::debug!(endpoint = var, "fetching container credentials");
    // The provider reads the token file too, but its error does not say which file.
    // Both tokens are registered so the log never shows them (the provider sends them in
    // the `authorization` header).
    if let Some(token) = process_var(ENV_TOKEN) {
        crate::redact::register(&token);
    }
    if let Some(path) = process_var(ENV_TOKEN_FILE) {
        match tokio::fs::read(&path).await {
            Ok(token) => crate::redact::register(&String::from_utf8_lossy(&token)),
            Err(e) => {
                return Err(SourceError::transient(
                    "token_file",
                    format!(
                        "cannot read the container authorization token file {path} ({ENV_TOKEN_FILE}): {e}"
                    ),
                ))
            }
        }
    }
    let provider = EcsCredentialsProvider::builder()
        .configure(&ProviderConfig::empty().with_http_client(http))
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(20))
        .build();
    let c = provider
        .provide_credentials()
        .await
        .map_err(|e| describe_container_error(var, &e))?;
    temp_credentials(c, &format!("the container endpoint ({var})"))
}

async fn imds(base: &str, http: SharedHttpClient) -> Result<TempCredentials, SourceError> {
    tracing::debug!(endpoint = base, "fetching instance credentials from IMDSv2");
    let conf = ProviderConfig::default().with_http_client(http);
    let client = aws_config::imds::Client::builder()
        .configure(&conf)
        .max_attempts(1)
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(15))
        .build();
    let frozen = conf.with_time_source(StaticTimeSource::new(SystemTime::UNIX_EPOCH));
    let provider = ImdsCredentialsProvider::builder()
        .configure(&frozen)
        .imds_client(client)
        .build();
    let c = provider
        .provide_credentials()
        .await
        .map_err(|e| describe_imds_error(base, &e))?;
    temp_credentials(c, &format!("IMDS at {base}"))
}

fn temp_credentials(c: Credentials, from: &str) -> Result<TempCredentials, SourceError> {
    let Some(expiration) = c.expiry() else {
        return Err(SourceError::transient(
            "bad_response",
            format!("{from} returned credentials without an Expiration"),
        ));
    };
    Ok(TempCredentials::from_sdk(&c, expiration))
}

/// An HTTP status the container endpoint answered with, found in the provider's message.
fn container_status(detail: &str) -> Option<u16> {
    let rest = detail
        .split("Non-success status from HTTP credential provider:")
        .nth(1)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The provider error's causes, without its generic top line ("the credential provider was
/// not enabled", "unexpected credentials error").
fn causes(err: &CredentialsError) -> String {
    match std::error::Error::source(err) {
        Some(inner) => chain(Some(inner)),
        None => chain(Some(err)),
    }
}

fn describe_container_error(var: &str, err: &CredentialsError) -> SourceError {
    let detail = causes(err);
    let status = container_status(&detail);
    match (err, status) {
        (_, Some(code @ (401 | 403))) => SourceError::permanent(
            "unauthorized",
            format!(
                "the container credentials endpoint ({var}) refused the authorization token (HTTP {code}); check AWS_CONTAINER_AUTHORIZATION_TOKEN / {ENV_TOKEN_FILE}"
            ),
        ),
        (_, Some(code)) => SourceError::transient(
            "bad_status",
            format!("the container credentials endpoint ({var}) answered HTTP {code}"),
        ),
        (CredentialsError::InvalidConfiguration(_) | CredentialsError::CredentialsNotLoaded(_), _) => {
            SourceError::permanent(
                "container_config",
                format!("the container credentials endpoint is misconfigured ({var}): {detail}"),
            )
        }
        _ => SourceError::transient(
            "unreachable",
            format!("cannot get credentials from the container endpoint ({var}): {detail}"),
        ),
    }
}

fn describe_imds_error(base: &str, err: &CredentialsError) -> SourceError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(imds) = e.downcast_ref::<ImdsError>() {
            return describe_imds(base, imds);
        }
        next = e.source();
    }
    let detail = causes(err);
    if detail.contains("received 404 from IMDS") {
        return SourceError::permanent(
            "no_role",
            format!(
                "IMDS at {base} lists no IAM role: attach an instance profile to this instance"
            ),
        );
    }
    if detail.contains("could not communicate with IMDS") {
        return SourceError::transient(
            "unreachable",
            format!("cannot reach IMDS at {base}: {detail}"),
        );
    }
    match err {
        CredentialsError::InvalidConfiguration(_) => {
            SourceError::permanent("imds", format!("IMDS at {base}: {detail}"))
        }
        _ => SourceError::transient("imds", format!("IMDS at {base}: {detail}")),
    }
}

fn describe_imds(base: &str, err: &ImdsError) -> SourceError {
    match err {
        ImdsError::FailedToLoadToken(ctx) if ctx.is_dispatch_failure() => SourceError::transient(
            "unreachable",
            format!("cannot reach IMDS at {base}: {}", chain(Some(err))),
        ),
        ImdsError::FailedToLoadToken(_) => SourceError::transient(
            "imds_token",
            format!(
                "IMDS at {base} gave no session token (PUT /latest/api/token): {}",
                chain(Some(err))
            ),
        ),
        // The response's Debug (which the SDK's Display includes) is left out: only its status.
        ImdsError::ErrorResponse(ctx) => match ctx.response().status().as_u16() {
            401 => SourceError::transient(
                "imds_unauthorized",
                format!("IMDS at {base} refused the session token (HTTP 401)"),
            ),
            404 => SourceError::permanent(
                "no_role",
                format!("IMDS at {base} has no credentials for this instance (HTTP 404): attach an instance profile"),
            ),
            code => SourceError::transient(
                "bad_status",
                format!("IMDS at {base} answered HTTP {code}"),
            ),
        },
        _ => SourceError::transient("imds", format!("IMDS at {base}: {}", chain(Some(err)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_container_endpoint_wins_when_configured() {
        assert_eq!(
            Endpoint::from_env(env(&[])),
            Endpoint::Imds(DEFAULT_IMDS.into())
        );
        assert_eq!(
            Endpoint::from_env(env(&[(ENV_IMDS_ENDPOINT, "http://127.0.0.1:1")])),
            Endpoint::Imds("http://127.0.0.1:1".into())
        );
        assert_eq!(
            Endpoint::from_env(env(&[
                (ENV_IMDS_ENDPOINT, "http://127.0.0.1:1"),
                (ENV_FULL_URI, "http://127.0.0.1:2/creds"),
            ])),
            Endpoint::Container(ENV_FULL_URI)
        );
        assert_eq!(
            Endpoint::from_env(env(&[
                (ENV_FULL_URI, "http://127.0.0.1:2/creds"),
                (ENV_RELATIVE_URI, "/v2/credentials/x"),
            ])),
            Endpoint::Container(ENV_RELATIVE_URI)
        );
    }

    #[test]
    fn container_status_is_found_in_the_provider_message() {
        let msg = "provider error: Non-success status from HTTP credential provider: 401";
        assert_eq!(container_status(msg), Some(401));
        let msg = "Non-success status from HTTP credential provider: StatusCode(403)";
        assert_eq!(container_status(msg), Some(403));
        assert_eq!(
            container_status("dispatch failure: connection refused"),
            None
        );
    }
}
