//! Prometheus metrics for `GET /metrics`: counters updated by the scheduler and the writer,
//! gauges filled from the status snapshot at scrape time.

use crate::snapshot::ProfileSnapshot;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

/// Labels of per-profile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabel {
    /// The managed profile.
    pub profile: String,
}

/// Labels of failure counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The managed profile.
    pub profile: String,
    /// Short reason, one of [`REASONS`] or [`OTHER_REASON`].
    pub reason: &'static str,
}

/// The `reason` label values of failure counters besides [`OTHER_REASON`]: credfresh's own
/// reasons and the AWS error codes worth telling apart. A remote service can send any error
/// code; anything not listed is counted as `other`, so the label's values stay few.
pub const REASONS: &[&str] = &[
    // credfresh's own
    "aws_profile",
    "bad_response",
    "bad_status",
    "container_config",
    "cycle",
    "expired",
    "imds",
    "imds_token",
    "login_required",
    "no_expiry",
    "no_role",
    "request",
    "source_unavailable",
    "sso_cache",
    "timeout",
    "token_file",
    "unauthorized",
    "unknown",
    "unknown_profile",
    "unreachable",
    // STS, the SSO portal and SSO-OIDC
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "ForbiddenException",
    "IDPCommunicationError",
    "IDPRejectedClaim",
    "InternalFailure",
    "InternalServerException",
    "InvalidClientTokenId",
    "InvalidIdentityToken",
    "InvalidParameterValue",
    "InvalidRequestException",
    "MalformedPolicyDocument",
    "RegionDisabledException",
    "ResourceNotFoundException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SignatureDoesNotMatch",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "UnauthorizedException",
    "UnrecognizedClientException",
    "ValidationError",
];

/// The `reason` label of failures whose reason is not in [`REASONS`].
pub const OTHER_REASON: &str = "other";

/// The label value for `reason`: itself when listed in [`REASONS`], else [`OTHER_REASON`].
pub fn reason_label(reason: &str) -> &'static str {
    REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or(OTHER_REASON)
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric credfresh exports.
pub struct Metrics {
    registry: Registry,
    refreshes: Family<ProfileLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    file_writes: Counter,
    file_write_failures: Counter,
    seconds_to_expiry: Family<ProfileLabel, FloatGauge>,
    last_success: Family<ProfileLabel, FloatGauge>,
    up: Family<ProfileLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `credfresh_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("credfresh");
        let m = Metrics {
            refreshes: Family::default(),
            failures: Family::default(),
            file_writes: Counter::default(),
            file_write_failures: Counter::default(),
            seconds_to_expiry: Family::default(),
            last_success: Family::default(),
            up: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "refreshes",
            "Successful credential refreshes",
            m.refreshes.clone(),
        );
        registry.register(
            "refresh_failures",
            "Failed refresh attempts by reason",
            m.failures.clone(),
        );
        registry.register(
            "file_writes",
            "Rewrites of the credentials file",
            m.file_writes.clone(),
        );
        registry.register(
            "file_write_failures",
            "Failed attempts to write the credentials file",
            m.file_write_failures.clone(),
        );
        registry.register(
            "seconds_until_expiry",
            "Seconds until the held credentials expire (negative when expired)",
            m.seconds_to_expiry.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful refresh",
            m.last_success.clone(),
        );
        registry.register(
            "profile_valid",
            "1 when the profile holds valid credentials, else 0",
            m.up.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a successful refresh.
    pub fn refreshed(&self, profile: &str) {
        self.refreshes.get_or_create(&label(profile)).inc();
    }

    /// Counts a failed attempt; `reason` is counted as `other` unless it is one of [`REASONS`].
    pub fn failed(&self, profile: &str, reason: &str) {
        let l = FailureLabels {
            profile: profile.to_owned(),
            reason: reason_label(reason),
        };
        self.failures.get_or_create(&l).inc();
    }

    /// Drops the series of a profile that is no longer managed (a reload removed it).
    pub fn forget(&self, profile: &str) {
        self.refreshes.remove(&label(profile));
        for reason in REASONS.iter().copied().chain([OTHER_REASON]) {
            self.failures.remove(&FailureLabels {
                profile: profile.to_owned(),
                reason,
            });
        }
    }

    /// Counts a rewrite of the credentials file.
    pub fn file_written(&self) {
        self.file_writes.inc();
    }

    /// Counts a failed write of the credentials file.
    pub fn file_write_failed(&self) {
        self.file_write_failures.inc();
    }

    /// Renders the Prometheus text format, with gauges taken from `profiles` at `now`.
    pub fn render(&self, profiles: &[ProfileSnapshot], now: SystemTime) -> String {
        self.seconds_to_expiry.clear();
        self.last_success.clear();
        self.up.clear();
        for p in profiles {
            let l = label(&p.name);
            let valid = match p.expires_at.map(whole_seconds) {
                Some(exp) => {
                    let secs = match exp.duration_since(now) {
                        Ok(d) => d.as_secs_f64(),
                        Err(e) => -e.duration().as_secs_f64(),
                    };
                    self.seconds_to_expiry.get_or_create(&l).set(secs);
                    secs > 0.0
                }
                None => false,
            };
            self.up.get_or_create(&l).set(i64::from(valid));
            if let Some(t) = p.last_refresh_at.map(whole_seconds) {
                let unix = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                self.last_success.get_or_create(&l).set(unix.as_secs_f64());
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `t` without its fraction of a second: the gauges show the times the API shows, which are
/// whole seconds.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

fn label(profile: &str) -> ProfileLabel {
    ProfileLabel {
        profile: profile.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProfileState;
    use std::time::Duration;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::new();
        m.refreshed("a");
        m.refreshed("a");
        m.failed("a", "timeout");
        m.file_written();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let p = ProfileSnapshot {
            name: "a".into(),
            kind: "assume_role".into(),
            state: ProfileState::Fresh,
            expires_at: Some(now + Duration::from_secs(600)),
            next_refresh_at: None,
            last_refresh_at: Some(now),
            last_error: None,
            account_id: None,
            in_file_until: None,
        };
        let text = m.render(&[p], now);
        assert!(
            text.contains("credfresh_refreshes_total{profile=\"a\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("credfresh_refresh_failures_total{profile=\"a\",reason=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("credfresh_file_writes_total 1"), "{text}");
        assert!(
            text.contains("credfresh_seconds_until_expiry{profile=\"a\"} 600"),
            "{text}"
        );
        assert!(
            text.contains("credfresh_profile_valid{profile=\"a\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn reason_labels_are_a_fixed_set() {
        let m = Metrics::new();
        m.failed("a", "AccessDenied");
        m.failed("a", "SomeCodeARemoteMadeUp");
        m.failed("a", "AnotherOne");
        let text = m.render(&[], SystemTime::UNIX_EPOCH);
        assert!(
            text.contains(
                "credfresh_refresh_failures_total{profile=\"a\",reason=\"AccessDenied\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("credfresh_refresh_failures_total{profile=\"a\",reason=\"other\"} 2"),
            "{text}"
        );
        assert!(!text.contains("MadeUp"), "{text}");
    }

    #[test]
    fn forgotten_profiles_have_no_series() {
        let m = Metrics::new();
        for p in ["gone", "kept"] {
            m.refreshed(p);
            m.failed(p, "timeout");
            m.failed(p, "SomeCodeARemoteMadeUp");
        }
        m.forget("gone");
        let text = m.render(&[], SystemTime::UNIX_EPOCH);
        assert!(!text.contains("\"gone\""), "{text}");
        assert!(
            text.contains("credfresh_refreshes_total{profile=\"kept\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("credfresh_refresh_failures_total{profile=\"kept\",reason=\"other\"} 1"),
            "{text}"
        );
    }
}
