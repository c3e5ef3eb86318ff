//! Where credentials come from. Each source makes exactly one attempt per call: the SDK's own
//! retries are off, because the scheduler's backoff is the only retry loop.

mod assume_role;
mod aws_profile;
mod instance;
mod session_token;
mod sso;
mod web_identity;

use crate::config::{DaemonSettings, Profile, ProfileSource};
use crate::creds::TempCredentials;
use crate::env::Environment;
use crate::mfa::{MfaManager, MfaSettings};
pub(crate) use crate::source_error::{chain, describe};
pub use crate::source_error::{FailureKind, SourceError};
use crate::sso::{TokenManager, TokenSettings};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Region used for STS when neither the profile nor the environment names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// The STS region of a profile: its own `region`, else the SDK's, else [`FALLBACK_REGION`].
fn sts_region(sdk: &SdkConfig, configured: Option<&String>) -> String {
    configured
        .cloned()
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .unwrap_or_else(|| FALLBACK_REGION.to_owned())
}

/// An STS client with the shared settings, in `region`, signing with `credentials`.
fn sts_client(
    sdk: &SdkConfig,
    region: &str,
    credentials: aws_credential_types::Credentials,
) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::config::Builder::from(sdk)
        .region(aws_types::region::Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// `duration` as STS's `DurationSeconds`.
fn duration_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
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
    mfa: Arc<MfaManager>,
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
            mfa: Arc::new(MfaManager::new(mfa_settings(env, daemon))),
        }
    }

    /// The MFA manager (the control socket hands it codes; the daemon applies reloads).
    pub fn mfa(&self) -> Arc<MfaManager> {
        self.mfa.clone()
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

/// The MFA manager's settings from the daemon settings.
pub fn mfa_settings(env: &Environment, daemon: &DaemonSettings) -> MfaSettings {
    MfaSettings {
        warn_before: daemon.warn_before,
        refresh_before: daemon.refresh_before,
        desktop: crate::sso::has_desktop(env),
        credentials_file: daemon.credentials_file.clone(),
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
        let mfa = self.mfa.clone();
        let name = profile.name.clone();
        let spec = profile.source.clone();
        Box::pin(async move {
            match spec {
                ProfileSource::AssumeRole(ar) => {
                    assume_role::fetch(&sdk, &mfa, &name, &ar, source).await
                }
                ProfileSource::SessionToken(st) => {
                    session_token::fetch(&sdk, &mfa, &name, &st).await
                }
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

/// Converts the credentials of an STS response (`operation` names it in errors); the
/// account comes from the assumed role's ARN.
pub fn from_sts(
    operation: &str,
    c: Option<&aws_sdk_sts::types::Credentials>,
    arn: Option<&str>,
) -> Result<TempCredentials, SourceError> {
    let c = c.ok_or_else(|| {
        SourceError::transient(
            "bad_response",
            format!("STS {operation} response holds no credentials"),
        )
    })?;
    // The SDK fills a required field the response lacks with its default: for
    // `Expiration` that is the Unix epoch, which no real answer holds.
    if *c.expiration() == aws_smithy_types::DateTime::from_secs(0) {
        return Err(SourceError::transient(
            "bad_response",
            format!("STS {operation} response has no Expiration"),
        ));
    }
    let expiration = SystemTime::try_from(*c.expiration()).map_err(|_| {
        SourceError::transient(
            "bad_response",
            format!("STS {operation} response has an unreadable Expiration"),
        )
    })?;
    Ok(TempCredentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: crate::redact::secret(c.secret_access_key().to_owned()),
        session_token: Some(crate::redact::secret(c.session_token().to_owned())),
        expiration,
        account_id: arn.and_then(crate::creds::account_from_arn),
        arn: arn.map(str::to_owned),
        check_again_at: None,
    })
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
    use aws_smithy_runtime_api::http::Response as HttpResponse;
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

    fn sts_credentials(expiration: aws_smithy_types::DateTime) -> aws_sdk_sts::types::Credentials {
        aws_sdk_sts::types::Credentials::builder()
            .access_key_id("ASIAEXAMPLE")
            .secret_access_key("very-secret-key")
            .session_token("very-secret-token")
            .expiration(expiration)
            .build()
            .unwrap()
    }

    #[test]
    fn sts_answer_without_expiration_says_so() {
        // What the SDK makes of an answer with no <Expiration>: the epoch.
        let c = sts_credentials(aws_smithy_types::DateTime::from_secs(0));
        let err = from_sts("AssumeRole", Some(&c), None).unwrap_err();
        assert_eq!(err.message, "STS AssumeRole response has no Expiration");
        assert_eq!(err.reason, "bad_response");
        let c = sts_credentials(aws_smithy_types::DateTime::from_secs(1_800_000_000));
        let ok = from_sts("AssumeRole", Some(&c), None).unwrap();
        assert_eq!(
            ok.expiration,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
        );
    }
}
