//! The local clock is not AWS's clock: laptops, VMs after a resume and containers drift.
//! Credentials expire by the clock of the service that issued them, so credfresh estimates
//! the offset of the local clock from the `Date` header of every answer an AWS endpoint sends
//! (as botocore does for its clock-skew correction) and judges expiry, schedules refreshes and
//! signs requests on the server's clock: [`now`] is the local clock plus that offset.
//!
//! The estimate is process-wide: the offset is a property of the machine's clock, and every
//! SDK client credfresh builds shares the one HTTP client the sources make
//! (`sources::http_client`), which feeds it.

use crate::clock::{Clock, SystemClock};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How many recent samples the estimate is the median of: one answer delayed in a queue, or
/// from a host with its own bad clock, does not move it.
pub const SAMPLES: usize = 5;
/// `Date` has a resolution of one second.
pub const RESOLUTION: Duration = Duration::from_secs(1);
/// An offset larger than this is logged as a warning (once, and again when it changes by as
/// much), and shown by `credfresh status`.
pub const WARN_ABOVE: Duration = Duration::from_secs(60);

/// What a new sample changed that is worth a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The offset is beyond [`WARN_ABOVE`]: for the first time, or it changed by more than that
    /// since the last warning. Milliseconds, server minus local.
    Large(i64),
    /// The offset is back within [`WARN_ABOVE`] after a warning. Milliseconds.
    Settled(i64),
}

/// A running estimate of the offset of the server's clock from the local one.
pub struct ClockSkew {
    /// The current estimate in milliseconds, server minus local; read without the lock.
    offset_ms: AtomicI64,
    state: Mutex<State>,
}

struct State {
    recent: VecDeque<i64>,
    /// The offset last warned about, while a warning stands.
    warned: Option<i64>,
}

impl Default for ClockSkew {
    fn default() -> Self {
        Self::new()
    }
}

impl ClockSkew {
    /// No samples yet: an offset of zero.
    pub const fn new() -> Self {
        ClockSkew {
            offset_ms: AtomicI64::new(0),
            state: Mutex::new(State {
                recent: VecDeque::new(),
                warned: None,
            }),
        }
    }

    /// The estimated offset in milliseconds, server minus local (positive: the local clock is
    /// behind).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The estimated offset in whole seconds, as the status shows it.
    pub fn offset_seconds(&self) -> i64 {
        (self.offset_ms() as f64 / 1000.0).round() as i64
    }

    /// `local` moved onto the server's clock.
    pub fn to_server(&self, local: SystemTime) -> SystemTime {
        shift(local, self.offset_ms())
    }

    /// `server` moved onto the local clock.
    pub fn to_local(&self, server: SystemTime) -> SystemTime {
        shift(server, -self.offset_ms())
    }

    /// Takes one answer into account. The server stamped `date` (truncated to the second)
    /// somewhere between `sent` and `received` by the local clock, so the offset is somewhere
    /// in `[date − received, date + 1 s − sent]`; the sample is the point of that range
    /// closest to zero: only the offset the answer proves. A slow answer from a server in step
    /// (a loaded machine, a long queue) then gives no offset, where the middle of the range
    /// would shift every deadline by up to half the round trip.
    pub fn record(
        &self,
        date: SystemTime,
        sent: SystemTime,
        received: SystemTime,
    ) -> Option<Notice> {
        let earliest = millis_between(received, date);
        let latest = millis_between(sent, date + RESOLUTION);
        let sample = if earliest > 0 {
            earliest
        } else if latest < 0 {
            latest
        } else {
            0
        };
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        if state.recent.len() == SAMPLES {
            state.recent.pop_front();
        }
        state.recent.push_back(sample);
        let mut sorted: Vec<i64> = state.recent.iter().copied().collect();
        sorted.sort_unstable();
        let offset = sorted[sorted.len() / 2];
        self.offset_ms.store(offset, Ordering::Relaxed);
        let limit = WARN_ABOVE.as_millis() as i64;
        match state.warned {
            _ if offset.abs() > limit
                && state.warned.is_none_or(|w| (offset - w).abs() > limit) =>
            {
                state.warned = Some(offset);
                Some(Notice::Large(offset))
            }
            Some(_) if offset.abs() <= limit => {
                state.warned = None;
                Some(Notice::Settled(offset))
            }
            _ => None,
        }
    }
}

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
fn millis_between(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => d.as_millis().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
    }
}

fn shift(t: SystemTime, ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        t.checked_add(d).unwrap_or(t)
    } else {
        t.checked_sub(d).unwrap_or(t)
    }
}

/// The process-wide estimate every SDK answer feeds.
static ESTIMATE: ClockSkew = ClockSkew::new();

/// The process-wide estimate.
pub fn estimate() -> &'static ClockSkew {
    &ESTIMATE
}

/// The current time by the servers' clock: the local clock plus the estimated offset.
pub fn now() -> SystemTime {
    ESTIMATE.to_server(SystemTime::now())
}

/// Records the `Date` of an answer in the process-wide estimate and logs what is worth it.
fn observe(date: &str, sent: SystemTime, received: SystemTime) {
    use aws_smithy_types::date_time::{DateTime, Format};
    let Some(date) = DateTime::from_str(date, Format::HttpDate)
        .ok()
        .and_then(|d| SystemTime::try_from(d).ok())
    else {
        return;
    };
    match ESTIMATE.record(date, sent, received) {
        Some(Notice::Large(ms)) => tracing::warn!(
            clock_offset_seconds = ms / 1000,
            "the local clock is {} AWS's clock by {}; credfresh judges expiry by AWS's clock, \
             but other programs on this machine may not: fix the time (NTP, timedatectl)",
            if ms > 0 { "behind" } else { "ahead of" },
            humantime::format_duration(Duration::from_secs(ms.unsigned_abs() / 1000)),
        ),
        Some(Notice::Settled(ms)) => tracing::info!(
            clock_offset_seconds = ms / 1000,
            "the local clock is back within a minute of AWS's clock"
        ),
        None => {}
    }
}

/// The wall clock of the servers: the local clock plus the estimated offset. Deadlines given to
/// [`Clock::sleep_until`] are server times, converted back to the local clock for the timer.
pub struct ServerClock;

impl Clock for ServerClock {
    fn now(&self) -> SystemTime {
        now()
    }

    fn sleep_until(&self, deadline: SystemTime, wake: Duration) -> BoxFuture<'static, ()> {
        SystemClock.sleep_until(ESTIMATE.to_local(deadline), wake)
    }
}

/// The SDK's time source (request signing, its caches) on the servers' clock, as botocore
/// corrects its signatures for skew.
#[derive(Debug)]
pub struct ServerTime;

impl aws_smithy_async::time::TimeSource for ServerTime {
    fn now(&self) -> SystemTime {
        now()
    }
}

/// Wraps an HTTP client so that every answer with a `Date` header feeds the estimate.
pub fn reading_dates(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(DateReadingClient(inner))
}

#[derive(Debug)]
struct DateReadingClient(SharedHttpClient);

impl HttpClient for DateReadingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(DateReading(self.0.http_connector(settings, components)))
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct DateReading(SharedHttpConnector);

impl HttpConnector for DateReading {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = SystemTime::now();
        let answer = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let response = answer.await?;
            if let Some(date) = response.headers().get("date") {
                observe(date, sent, SystemTime::now());
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(secs: i64) -> SystemTime {
        shift(SystemTime::UNIX_EPOCH + T0, secs * 1000)
    }

    /// A sample of an answer that took `rtt_ms` and that a server `offset` seconds ahead
    /// stamped in the middle of the round trip.
    fn sample(skew: &ClockSkew, local: i64, offset: i64) -> Option<Notice> {
        let sent = at(local);
        let received = sent + Duration::from_millis(400);
        // The server's clock at the middle of the round trip, truncated to the second.
        let server = at(local + offset);
        skew.record(server, sent, received)
    }

    #[test]
    fn no_samples_is_no_offset() {
        let s = ClockSkew::new();
        assert_eq!(s.offset_ms(), 0);
        assert_eq!(s.to_server(at(5)), at(5));
    }

    #[test]
    fn a_server_ahead_gives_a_positive_offset_and_times_convert_both_ways() {
        let s = ClockSkew::new();
        sample(&s, 100, 1200);
        assert_eq!(s.offset_seconds(), 1200);
        assert!(
            (s.offset_ms() - 1_200_000).abs() <= 1000,
            "{}",
            s.offset_ms()
        );
        assert_eq!(s.to_local(s.to_server(at(7))), at(7));
        let s = ClockSkew::new();
        sample(&s, 100, -1200);
        // The second `Date` truncates away is not measurable: -1199.x is what it proves.
        assert!(
            (s.offset_seconds() + 1200).abs() <= 1,
            "{}",
            s.offset_seconds()
        );
        assert!(s.to_server(at(100)) < at(100));
    }

    #[test]
    fn offsets_within_the_resolution_of_date_count_as_zero() {
        let s = ClockSkew::new();
        for i in 0..SAMPLES as i64 {
            sample(&s, 100 + i, 0);
        }
        assert_eq!(s.offset_ms(), 0);
    }

    #[test]
    fn only_the_offset_an_answer_proves_is_taken() {
        let s = ClockSkew::new();
        // Sent at 100, answered at 110 (local); the server stamped 1305 on its way: its clock
        // is at least 1305 − 110 = 1195 s ahead.
        s.record(at(1305), at(100), at(110));
        assert_eq!(s.offset_ms(), 1_195_000);
        let s = ClockSkew::new();
        s.record(at(-1105), at(100), at(110));
        assert_eq!(s.offset_ms(), -1_204_000);
    }

    #[test]
    fn a_slow_answer_from_a_server_in_step_is_no_offset() {
        let s = ClockSkew::new();
        for i in 0..SAMPLES as i64 {
            // 2.6 s on the way (a loaded machine); the server stamped its second 2.5 s after
            // the request left, by a clock in step with ours.
            let sent = at(100 + 10 * i);
            let received = sent + Duration::from_millis(2600);
            s.record(at(102 + 10 * i), sent, received);
        }
        assert_eq!(s.offset_ms(), 0);
    }

    #[test]
    fn one_odd_answer_does_not_move_the_median() {
        let s = ClockSkew::new();
        for i in 0..3 {
            sample(&s, 100 + i, 600);
        }
        sample(&s, 110, -3000);
        assert_eq!(s.offset_seconds(), 600);
        // A lasting change wins once it is most of the recent samples.
        for i in 0..3 {
            sample(&s, 120 + i, 30);
        }
        assert_eq!(s.offset_seconds(), 30);
    }

    #[test]
    fn warns_once_again_on_a_large_change_and_says_when_it_settles() {
        let s = ClockSkew::new();
        assert_eq!(sample(&s, 0, 10), None, "10 s is not worth a warning");
        let mut notices = Vec::new();
        for i in 0..SAMPLES as i64 {
            notices.extend(sample(&s, 10 + i, 1200));
        }
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(matches!(notices[0], Notice::Large(ms) if (ms - 1_200_000).abs() < 1000));
        // A few seconds of drift is no news.
        let mut notices = Vec::new();
        for i in 0..SAMPLES as i64 {
            notices.extend(sample(&s, 20 + i, 1205));
        }
        assert_eq!(notices, vec![]);
        // Twenty minutes the other way is.
        let mut notices = Vec::new();
        for i in 0..SAMPLES as i64 {
            notices.extend(sample(&s, 30 + i, -1200));
        }
        assert!(
            matches!(notices[..], [Notice::Large(ms)] if ms < 0),
            "{notices:?}"
        );
        let mut notices = Vec::new();
        for i in 0..SAMPLES as i64 {
            notices.extend(sample(&s, 40 + i, 0));
        }
        assert_eq!(notices, vec![Notice::Settled(0)]);
    }
}
