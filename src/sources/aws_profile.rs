//! Credentials that the AWS SDK's own profile chain resolves: static keys, SSO, `credential_process`,
//! role profiles in `~/.aws/config`.

use super::{SourceError, FALLBACK_REGION};
use crate::creds::TempCredentials;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_types::region::Region;

/// A provider for AWS profile `name`. Built per call so edits of the AWS files are seen.
pub(super) fn provider(
    sdk: &SdkConfig,
    name: &str,
    region: &str,
) -> ProfileFileCredentialsProvider {
    let mut conf = ProviderConfig::default()
        .with_http_client(super::client_of(sdk))
        .with_region(Some(Region::new(region.to_owned())))
        .with_retry_config(RetryConfig::disabled());
    if let Some(timeouts) = sdk.timeout_config() {
        conf = conf.with_timeout_config(timeouts.clone());
    }
    ProfileFileCredentialsProvider::builder()
        .profile_name(name)
        .configure(&conf)
        .build()
}

/// Describes why AWS profile `name` gave no credentials.
pub(super) fn describe_provider_error(name: &str, err: &CredentialsError) -> SourceError {
    let detail = super::chain(Some(err));
    let message = format!("AWS profile \"{name}\" gave no credentials: {detail}");
    match err {
        CredentialsError::InvalidConfiguration(_) | CredentialsError::CredentialsNotLoaded(_) => {
            SourceError::permanent("aws_profile", message)
        }
        _ => SourceError::transient("aws_profile", message),
    }
}

/// Resolves AWS profile `name` and keeps the result if it is temporary.
pub(super) async fn fetch(sdk: &SdkConfig, name: &str) -> Result<TempCredentials, SourceError> {
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| FALLBACK_REGION.to_owned());
    let c = provider(sdk, name, &region)
        .provide_credentials()
        .await
        .map_err(|e| describe_provider_error(name, &e))?;
    let Some(expiration) = c.expiry() else {
        return Err(SourceError::permanent(
            "no_expiry",
            format!(
                "AWS profile \"{name}\" resolves to long-term keys that never expire; there is nothing to refresh, use it as the source_profile of an assume_role profile instead"
            ),
        ));
    };
    Ok(TempCredentials::from_sdk(&c, expiration))
}
