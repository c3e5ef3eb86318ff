//! Where credentials come from. Each source makes exactly one attempt per call: the SDK's own
//! retries are off, because the scheduler's backoff is the only retry loop.

mod assume_role;
mod aws_profile;
mod instance;
mod sso;
mod web_identity;

use crate::config::{DaemonSettings, Profile, ProfileSource};
use crate::creds::TempCredentials;
use crate::env::Environment;
use crate::sso::{TokenManager, TokenSettings};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// Region used for STS when neither the profile nor the environment names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// What a failure means for the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A later attempt may succeed: retried with the exponential backoff.
    Transient,
    /// Retrying cannot help until someone changes something (access denied, bad ARN):
    /// retried, but slowly.
    Permanent,
    /// Only a human can help (a new SSO login): the scheduler stops retrying the profile
    /// until the SSO token cache changes or a refresh is asked for.
    LoginRequired,
}

/// Why a fetch failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// Human-readable reason, lowercase, never holding a secret.
    pub message: String,
    /// Short machine-readable reason, e.g. `AccessDenied`, `timeout`, `unreachable`.
    pub reason: String,
    /// Whether, and how soon, trying again can help.
    pub kind: FailureKind,
}

impl SourceError {
    /// A failure that a later attempt may not repeat.
    pub fn transient(reason: &str, message: impl Into<String>) -> Self {
        Self::new(FailureKind::Transient, reason, message)
    }

    /// A failure that only a change of config or permissions can fix.
    pub fn permanent(reason: &str, message: impl Into<String>) -> Self {
        Self::new(FailureKind::Permanent, reason, message)
    }

    /// A failure that only a human can fix (a new SSO login); its reason is `login_required`.
    pub fn login_required(message: impl Into<String>) -> Self {
        Self::new(FailureKind::LoginRequired, "login_required", message)
    }

    /// A failure of `kind`. `message` and `reason` may quote a remote or SDK error, which can
    /// echo a token of the request: every secret the process holds is masked in them.
    pub fn new(kind: FailureKind, reason: &str, message: impl Into<String>) -> Self {
        SourceError {
            message: crate::redact::scrub_str(&message.into()),
            reason: crate::redact::scrub_str(reason),
            kind,
        }
    }
}

/// Fetches credentials for a profile; the scheduler holds one and tests substitute fakes.
pub trait Fetcher: Send + Sync + 'static {
    /// One attempt at credentials for `profile`. `source` holds the credentials of its managed
    /// `source_profile`, when it has one.
    fn fetch(
        &self,
        profile: &Profile,
        source: Option<TempCredentials>,
    ) -> BoxFuture<'static, Result<TempCredentials, SourceError>>;
}

/// The real fetcher, talking to AWS (or whatever the `AWS_ENDPOINT_URL*` variables point at).
#[derive(Clone)]
pub struct AwsFetcher {
    sdk: Arc<SdkConfig>,
    sso: Arc<TokenManager>,
}

/// The SDK's shared settings (region, endpoints, HTTP client) with retries off and short
/// timeouts, and the time of the servers' clock ([`crate::skew`]); every client credfresh
/// builds starts from these.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .time_source(crate::skew::ServerTime)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts())
        .no_credentials()
        .load()
        .await
}

/// A new HTTPS client (hyper 1, rustls with ring, the system's root certificates), built as
/// the SDK builds its default one, minus its larger crypto library: the SDK's timeouts, and
/// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` from the environment. Tokens in
/// the requests' headers are registered with [`crate::redact`] before they are sent; the
/// `Date` of every answer feeds the clock-offset estimate ([`crate::skew`]).
pub fn http_client() -> SharedHttpClient {
    crate::skew::reading_dates(SharedHttpClient::new(Registering(hyper_client())))
}

/// Request headers that carry a token: the SSO portal's bearer token, the IMDS session
/// token, a session token, and the container endpoint's `authorization` (SigV4 signatures in
/// that header are not registered: they are no secret and would crowd out real ones).
const TOKEN_HEADERS: &[&str] = &[
    "x-amz-sso_bearer_token",
    "x-aws-ec2-metadata-token",
    "x-amz-security-token",
    "authorization",
];

/// An HTTP client whose connectors register the tokens of [`TOKEN_HEADERS`].
#[derive(Debug)]
struct Registering(SharedHttpClient);

impl HttpClient for Registering {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RegisteringConnector(
            self.0.http_connector(settings, components),
        ))
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct RegisteringConnector(SharedHttpConnector);

impl HttpConnector for RegisteringConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        for name in TOKEN_HEADERS {
            if let Some(value) = request.headers().get(*name) {
                if !value.starts_with("AWS4-") {
                    crate::redact::register(value);
                }
            }
        }
        self.0.call(request)
    }
}

fn hyper_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The HTTP client of `sdk` (every `SdkConfig` credfresh loads has one), else a new one.
fn client_of(sdk: &SdkConfig) -> SharedHttpClient {
    sdk.http_client().unwrap_or_else(http_client)
}

impl AwsFetcher {
    /// Loads the SDK's shared settings once; SSO tokens come from `env`'s `~/.aws/sso/cache`.
    pub async fn load(env: &Environment, daemon: &DaemonSettings) -> Self {
        let sdk = Arc::new(sdk_config().await);
        let sso = TokenManager::new(
            sdk.clone(),
            crate::sso::cache::cache_dir(env.home()),
            token_settings(env, daemon),
        );
        AwsFetcher {
            sdk,
            sso: Arc::new(sso),
        }
    }

    /// The shared SDK settings (region, endpoints, no retries, short timeouts), for other
    /// clients that must behave the same (`credfresh check`).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The SSO token manager (the daemon applies reloaded settings to it).
    pub fn tokens(&self) -> Arc<TokenManager> {
        self.sso.clone()
    }
}

/// The token manager's settings from the daemon settings.
pub fn token_settings(env: &Environment, daemon: &DaemonSettings) -> TokenSettings {
    TokenSettings {
        refresh_before: daemon.refresh_before,
        warn_before: daemon.warn_before,
        desktop: crate::sso::has_desktop(env),
    }
}

/// Per-attempt limits: an unreachable or hung endpoint fails fast into the backoff loop.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(20))
        .operation_attempt_timeout(Duration::from_secs(25))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

impl Fetcher for AwsFetcher {
    fn fetch(
        &self,
        profile: &Profile,
        source: Option<TempCredentials>,
    ) -> BoxFuture<'static, Result<TempCredentials, SourceError>> {
        let sdk = self.sdk.clone();
        let sso = self.sso.clone();
        let name = profile.name.clone();
        let spec = profile.source.clone();
        Box::pin(async move {
            match spec {
                ProfileSource::AssumeRole(ar) => assume_role::fetch(&sdk, &name, &ar, source).await,
                ProfileSource::AwsProfile { aws_profile } => {
                    aws_profile::fetch(&sdk, &aws_profile).await
                }
                ProfileSource::WebIdentity(w) => web_identity::fetch(&sdk, &name, &w).await,
                ProfileSource::Instance => instance::fetch(client_of(&sdk)).await,
                ProfileSource::Sso(s) => sso::fetch(&sdk, &sso, &name, &s).await,
            }
        })
    }
}

/// Turns an SDK error into a message that says what happened and which service was involved.
pub(crate) fn describe<E>(service: &str, err: &SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let Some(code) = e.code() else {
                // No error code: the body was not the service's (a proxy page, garbage).
                return SourceError::transient(
                    "bad_response",
                    format!(
                        "{service} sent a response that could not be read (HTTP {})",
                        ctx.raw().status().as_u16()
                    ),
                );
            };
            let message = e.message().unwrap_or("no message");
            let text = format!("{service} refused: {code}: {message}");
            match code {
                "AccessDenied"
                | "AccessDeniedException"
                | "InvalidClientTokenId"
                | "MalformedPolicyDocument"
                | "ValidationError"
                | "InvalidParameterValue"
                | "RegionDisabledException"
                | "UnrecognizedClientException"
                | "InvalidIdentityToken"
                | "IDPRejectedClaim" => SourceError::permanent(code, text),
                _ => SourceError::transient(code, text),
            }
        }
        SdkError::TimeoutError(_) => {
            SourceError::transient("timeout", format!("{service} did not answer in time"))
        }
        SdkError::DispatchFailure(e) if e.is_timeout() => {
            SourceError::transient("timeout", format!("{service} did not answer in time"))
        }
        SdkError::DispatchFailure(e) => SourceError::transient(
            "unreachable",
            format!(
                "cannot reach {service}: {}",
                chain(
                    e.as_connector_error()
                        .map(|c| c as &(dyn std::error::Error + 'static))
                )
            ),
        ),
        SdkError::ResponseError(_) => SourceError::transient(
            "bad_response",
            format!("{service} sent a response that could not be read"),
        ),
        SdkError::ConstructionFailure(_) => SourceError::permanent(
            "request",
            format!(
                "could not build the {service} request: {}",
                chain(Some(err))
            ),
        ),
        _ => SourceError::transient(
            "unknown",
            format!("{service} call failed: {}", chain(Some(err))),
        ),
    }
}

/// Renders an error and its sources on one line.
pub(crate) fn chain(err: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts = Vec::new();
    let mut next = err;
    while let Some(e) = next {
        let s = e.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        next = e.source();
    }
    if parts.is_empty() {
        "unknown error".into()
    } else {
        parts.join(": ")
    }
}

/// Fetches `name` once without a daemon: its managed sources first, top of the chain down.
pub async fn fetch_chain(
    fetcher: &dyn Fetcher,
    config: &crate::config::Config,
    name: &str,
) -> Result<TempCredentials, SourceError> {
    let find = |n: &str| config.profiles.iter().find(|p| p.name == n);
    let mut chain = Vec::new();
    let mut at = Some(name);
    while let Some(n) = at {
        let p = find(n).ok_or_else(|| {
            SourceError::permanent(
                "unknown_profile",
                format!(
                    "no managed profile named \"{n}\" in {}",
                    config.path.display()
                ),
            )
        })?;
        chain.push(p);
        // Validated configs have no cycles; the bound keeps a broken one from looping.
        if chain.len() > config.profiles.len() {
            return Err(SourceError::permanent(
                "cycle",
                "source_profile chain is a cycle",
            ));
        }
        at = p.source.managed_source();
    }
    let mut source = None;
    for p in chain.into_iter().rev() {
        source = Some(fetcher.fetch(p, source).await?);
    }
    source.ok_or_else(|| {
        SourceError::permanent(
            "unknown_profile",
            format!("no managed profile named \"{name}\""),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    #[derive(Debug)]
    struct Ok200;

    impl HttpConnector for Ok200 {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                200.try_into().unwrap(),
                SdkBody::empty(),
            )))
        }
    }

    #[tokio::test]
    async fn header_tokens_are_registered_before_sending() {
        let connector = RegisteringConnector(SharedHttpConnector::new(Ok200));
        let mut request = HttpRequest::empty();
        request
            .headers_mut()
            .insert("x-aws-ec2-metadata-token", "imdsHeaderTokenUnitTest0001==");
        request.headers_mut().insert(
            "authorization",
            "AWS4-HMAC-SHA256 Signature=sigUnitTest0001",
        );
        connector.call(request).await.unwrap();
        let line =
            "token imdsHeaderTokenUnitTest0001== sig AWS4-HMAC-SHA256 Signature=sigUnitTest0001";
        assert_eq!(
            String::from_utf8(crate::redact::scrub(line.as_bytes())).unwrap(),
            "token *** sig AWS4-HMAC-SHA256 Signature=sigUnitTest0001"
        );
    }
}
