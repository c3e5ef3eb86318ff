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
use aws_credential_types::Credentials;
use aws_types::region::Region;
use std::path::{Path, PathBuf};

/// The credentials of AWS profile `name`, as the SDK's profile chain resolves them, after
/// [`check_files`]. Errors never carry the files' contents.
pub(super) async fn resolve(
    sdk: &SdkConfig,
    name: &str,
    region: &str,
) -> Result<Credentials, SourceError> {
    check_files().await?;
    provider(sdk, name, region)
        .provide_credentials()
        .await
        .map_err(|e| describe_provider_error(name, &e))
}

/// Reads the AWS config and credentials files where the SDK finds them, registers their
/// secrets for the log scrubber, and refuses a file the SDKs cannot read
/// ([`aws_files::decode`](crate::aws_files::decode): not UTF-8, or a BOM) with the file's path
/// and the problem's place. The SDK would read a non-UTF-8 file as empty, so profiles in it
/// seem undefined, and its own warning prints the whole file as decimal bytes (its log
/// target is switched off in `logging`).
async fn check_files() -> Result<(), SourceError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let files = [
        ("config", "AWS_CONFIG_FILE", ".aws/config"),
        (
            "credentials",
            "AWS_SHARED_CREDENTIALS_FILE",
            ".aws/credentials",
        ),
    ];
    for (what, var, default) in files {
        let path = match std::env::var_os(var).filter(|v| !v.is_empty()) {
            Some(p) => expand_home(PathBuf::from(p), home.as_deref()),
            None => match &home {
                Some(h) => h.join(default),
                None => continue,
            },
        };
        // A missing or unreadable file is the SDK's to report; it never shows contents.
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let bytes = zeroize::Zeroizing::new(bytes);
        match crate::aws_files::decode(&bytes) {
            Ok(text) => crate::redact::register_ini_secrets(text),
            Err(e) => {
                crate::redact::register_ini_secrets(&String::from_utf8_lossy(&bytes));
                // The user fixes the file: retried on the normal backoff, not the slow
                // cadence of failures only a policy or config change can fix.
                return Err(SourceError::transient(
                    "aws_file",
                    format!("the AWS {what} file {} {e}", path.display()),
                ));
            }
        }
    }
    Ok(())
}

/// `~/rest` under `home`, as the SDK expands the file variables.
fn expand_home(path: PathBuf, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// A provider for AWS profile `name`. Built per call so edits of the AWS files are seen.
fn provider(sdk: &SdkConfig, name: &str, region: &str) -> ProfileFileCredentialsProvider {
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

/// What the SDK's `credential_process` provider says when the helper fails; it goes on with
/// the helper's exit status, then [`HELPER_STDERR`] and the helper's whole stderr.
const HELPER_FAILED: &str = "external process exited with code ";
/// Where the SDK's message about a failed `credential_process` helper quotes its stderr.
const HELPER_STDERR: &str = ". Stderr:";

/// Describes why AWS profile `name` gave no credentials. A failed `credential_process`
/// helper's output is not passed on: it may hold a token credfresh never held (and so cannot
/// mask), such as the one the helper's own login uses.
fn describe_provider_error(name: &str, err: &CredentialsError) -> SourceError {
    let detail = super::chain(Some(err));
    let detail = match detail.find(HELPER_FAILED) {
        Some(at) => {
            let rest = &detail[at + HELPER_FAILED.len()..];
            let status = rest.split(HELPER_STDERR).next().unwrap_or_default().trim();
            format!(
                "its credential_process helper failed ({status}); its output is not shown, as it may hold secrets: run the helper yourself to see it"
            )
        }
        None => detail,
    };
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
    let c = resolve(sdk, name, &region).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_helpers_output_is_not_passed_on() {
        let helper = aws_config::credential_process::CredentialProcessProvider::new(
            "echo 'auth failed for token helperStderrTokenUnitTest' >&2; exit 3".to_owned(),
        );
        let err = helper.provide_credentials().await.unwrap_err();
        let e = describe_provider_error("legacy", &err);
        assert!(!e.message.contains("helperStderrTokenUnitTest"), "{e}");
        assert_eq!(
            e.message,
            "AWS profile \"legacy\" gave no credentials: its credential_process helper failed (exit status: 3); its output is not shown, as it may hold secrets: run the helper yourself to see it"
        );
    }

    #[test]
    fn home_is_expanded() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_home("~/.aws/c".into(), Some(home)),
            PathBuf::from("/home/u/.aws/c")
        );
        assert_eq!(
            expand_home("/x/c".into(), Some(home)),
            PathBuf::from("/x/c")
        );
    }
}
