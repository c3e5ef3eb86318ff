//! The scheduler's long sleep on one kernel timer. tokio's hierarchical timer wheel reaches a
//! deadline a minute away in steps, waking the runtime once per wheel level on the way (about
//! 3 wake-ups for each 60 s sleep); an idle daemon should wake once a minute, so that sleep
//! uses a `timerfd` instead, which wakes the runtime once, when it fires.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Sleeps for `duration`. Unit tests run under tokio's paused clock, which only tokio's own
/// timers follow, so they use those.
pub async fn sleep(duration: Duration) {
    if cfg!(test) {
        tokio::time::sleep(duration).await;
    } else {
        kernel_sleep(duration).await;
    }
}

/// Sleeps for `duration` on a one-shot `CLOCK_MONOTONIC` timerfd; on tokio's timer when a
/// timerfd cannot be had.
async fn kernel_sleep(duration: Duration) {
    match timerfd(duration) {
        Some(timer) => {
            if timer.readable().await.is_err() {
                tokio::time::sleep(duration).await;
            }
        }
        None => tokio::time::sleep(duration).await,
    }
}

fn timerfd(duration: Duration) -> Option<AsyncFd<OwnedFd>> {
    // A zero expiration would disarm the timer instead of firing it at once.
    let duration = duration.max(Duration::from_nanos(1));
    let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
    let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags).ok()?;
    let expiration = Expiration::OneShot(TimeSpec::from_duration(duration));
    timer.set(expiration, TimerSetTimeFlags::empty()).ok()?;
    // SAFETY: the `OwnedFd` is an open timerfd that the `AsyncFd` owns until it is dropped,
    // and an `OwnedFd` always reports the same descriptor.
    unsafe { AsyncFd::register_with_interest(OwnedFd::from(timer), Interest::READABLE) }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn kernel_timer_fires_after_the_duration() {
        for ms in [0, 30, 120] {
            let start = Instant::now();
            kernel_sleep(Duration::from_millis(ms)).await;
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(ms), "{ms} ms took {took:?}");
            assert!(took < Duration::from_secs(5), "{ms} ms took {took:?}");
        }
    }

    #[tokio::test]
    async fn a_dropped_sleep_closes_its_timer() {
        let fds = || {
            std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count())
                .unwrap_or(0)
        };
        let before = fds();
        for _ in 0..100 {
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                kernel_sleep(Duration::from_secs(60)),
            )
            .await;
        }
        assert!(fds() <= before + 5, "{before} -> {}", fds());
    }
}
