//! The retry delay after failures: exponential with jitter, capped. The scheduler uses it per
//! profile, the writer per failed write, the SSO token manager per session.

use std::time::Duration;

/// First retry delay after a failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Retry delays double up to this cap.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// The delay before retry number `failures` (1 = first failure): about 1 s doubling to a 5 min
/// cap, scaled by 0.75–1.25 through `jitter` in `[0, 1]` so retries of many profiles spread out.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = BACKOFF_START.saturating_mul(1 << exp).min(BACKOFF_CAP);
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
        .min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let seq: Vec<u64> = (1..=12).map(|n| backoff(n, 0.5).as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
        assert!(backoff(1, 0.0) >= Duration::from_millis(750));
    }
}
