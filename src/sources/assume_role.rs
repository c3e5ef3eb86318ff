//! `sts:AssumeRole` with the credentials of a managed profile or of an AWS profile.

use super::{describe, SourceError, FALLBACK_REGION};
use crate::config::{AssumeRole, SourceRef};
use crate::creds::TempCredentials;
use aws_config::SdkConfig;
use aws_types::region::Region;

/// One `AssumeRole` call for profile `name`.
pub(super) async fn fetch(
    sdk: &SdkConfig,
    name: &str,
    spec: &AssumeRole,
    managed_source: Option<TempCredentials>,
) -> Result<TempCredentials, SourceError> {
    let region = spec
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .unwrap_or_else(|| FALLBACK_REGION.to_owned());
    let base = match &spec.source {
        SourceRef::Managed(src) => match managed_source {
            Some(c) => c.to_sdk(),
            None => {
                return Err(SourceError::transient(
                    "source_unavailable",
                    format!("source profile \"{src}\" has no valid credentials yet"),
                ))
            }
        },
        SourceRef::Aws(src) => super::aws_profile::resolve(sdk, src, &region).await?,
    };
    let conf = aws_sdk_sts::config::Builder::from(sdk)
        .region(Region::new(region))
        .credentials_provider(base)
        .build();
    let client = aws_sdk_sts::Client::from_conf(conf);
    let seconds = i32::try_from(spec.duration.as_secs()).unwrap_or(i32::MAX);
    let out = client
        .assume_role()
        .role_arn(&spec.role_arn)
        .role_session_name(&spec.session_name)
        .duration_seconds(seconds)
        .set_external_id(spec.external_id.clone())
        .send()
        .await
        .map_err(|e| {
            let mut err = describe("STS", &e);
            err.message = format!("assume {} for \"{name}\": {}", spec.role_arn, err.message);
            err
        })?;
    let arn = out.assumed_role_user().map(|u| u.arn());
    super::from_sts("AssumeRole", out.credentials(), arn)
}
