//! Why fetching credentials failed, and whether trying again can help: the one error type of
//! every source (STS, the SSO portal, IMDS, an AWS profile), and the reading of the
//! AWS SDK's errors into it. A leaf: the SSO token manager and the sources both use it.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

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

/// Turns an SDK error into a message that says what happened and which service was involved.
pub fn describe<E>(service: &str, err: &SdkError<E, HttpResponse>) -> SourceError
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
pub fn chain(err: Option<&(dyn std::error::Error + 'static)>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn chain_joins_sources_and_drops_repeats() {
        let inner = Layer("connection refused", None);
        let mid = Layer("connection refused", Some(Box::new(inner)));
        let outer = Layer("dispatch failure", Some(Box::new(mid)));
        assert_eq!(chain(Some(&outer)), "dispatch failure: connection refused");
        assert_eq!(chain(None), "unknown error");
    }

    #[test]
    fn constructors_set_kind_and_reason() {
        let e = SourceError::login_required("run aws sso login");
        assert_eq!(
            (e.kind, e.reason.as_str()),
            (FailureKind::LoginRequired, "login_required")
        );
        assert_eq!(
            SourceError::permanent("AccessDenied", "no").kind,
            FailureKind::Permanent
        );
        assert_eq!(
            SourceError::transient("timeout", "slow").to_string(),
            "slow"
        );
    }
}
