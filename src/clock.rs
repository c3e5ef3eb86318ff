//! The wall clock, behind a trait so tests can jump it, and the real one: on Linux a
//! `CLOCK_REALTIME` timerfd that also wakes when the clock is set or jumps.

use futures_util::future::BoxFuture;
use std::time::{Duration, SystemTime};

/// The wall clock, injected so tests can jump it.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Sleeps until the wall clock reaches `deadline`, which is `wake` from now. A clock that
    /// can watch the wall clock also resolves at once when it is set or jumps (a resume from
    /// suspend), so a deadline the jump passed is acted on without delay. May resolve early:
    /// the scheduler then only looks again. The default is a monotonic sleep of `wake`, which
    /// stops during suspend; the scheduler's once-a-minute cap (`scheduler::MAX_SLEEP`) then
    /// notices jumps.
    fn sleep_until(&self, deadline: SystemTime, wake: Duration) -> BoxFuture<'static, ()> {
        let _ = deadline;
        Box::pin(tokio::time::sleep(wake))
    }
}

/// The real wall clock. On Linux, [`Clock::sleep_until`] is a `CLOCK_REALTIME` timerfd armed
/// at the deadline with `TFD_TIMER_CANCEL_ON_SET`: the kernel wakes it when the deadline
/// passes, including right after a resume, and cancels it when the clock is set. It is also
/// the only timer an idle daemon arms: one kernel wake-up per sleep, where tokio's timer wheel
/// would wake the runtime on its way down the wheel's levels. Elsewhere (macOS), and should
/// the timerfd fail, a monotonic sleep with the once-a-minute check.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(target_os = "linux")]
    fn sleep_until(&self, deadline: SystemTime, wake: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Err(e) = realtime_timer(deadline).await {
                tracing::debug!(
                    "no wall-clock timer, relying on the once-a-minute check for clock jumps: {e}"
                );
                tokio::time::sleep(wake).await;
            }
        })
    }
}

/// Waits on a fresh `CLOCK_REALTIME` timerfd armed at `deadline` (absolute, cancelled when the
/// clock is set). One timer per wait: the scheduler waits at most once per turn of its loop.
#[cfg(target_os = "linux")]
async fn realtime_timer(deadline: SystemTime) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use std::os::fd::OwnedFd;
    use tokio::io::unix::AsyncFd;

    let timer = TimerFd::new(
        ClockId::CLOCK_REALTIME,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // An all-zero expiry would disarm the timer instead of firing it.
    let at = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .max(Duration::from_nanos(1));
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(at)),
        TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
    )?;
    let fd = OwnedFd::from(timer);
    // SAFETY: the AsyncFd owns `fd`, so it stays open and the same descriptor until dropped.
    let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
    loop {
        let mut ready = fd.readable().await?;
        // Reading takes the expiry count. ECANCELED (the clock was set) is a wake-up too, and
        // so, harmlessly, is EINTR; EAGAIN means the readiness was stale.
        let read = ready.try_io(|fd| match nix::unistd::read(fd.get_ref(), &mut [0u8; 8]) {
            Ok(_) | Err(Errno::ECANCELED | Errno::EINTR) => Ok(()),
            Err(e) => Err(std::io::Error::from(e)),
        });
        if let Ok(result) = read {
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn system_clock_timer_fires_at_its_deadline() {
        // The real CLOCK_REALTIME timerfd: resolves once the wall clock reaches the deadline (not
        // before), and at once for a deadline already past; the hour-long fallback sleep would
        // time out.
        let hour = Duration::from_secs(3600);
        let deadline = SystemTime::now() + Duration::from_millis(200);
        tokio::time::timeout(
            Duration::from_secs(10),
            SystemClock.sleep_until(deadline, hour),
        )
        .await
        .expect("the timer fired");
        assert!(SystemTime::now() >= deadline);
        tokio::time::timeout(
            Duration::from_secs(10),
            SystemClock.sleep_until(SystemTime::UNIX_EPOCH, hour),
        )
        .await
        .expect("a past deadline fires at once");
    }
}
