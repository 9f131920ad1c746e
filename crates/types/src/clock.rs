//! Time, handed in: the one clock trait every crate uses for deadlines, waits and
//! timestamps, so retries and polls are tested by stepping time instead of sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time for deadlines, wall-clock time for timestamps, and sleeping.
pub trait Clock: Send + Sync {
    /// Monotonic time: what deadlines are measured in.
    fn now(&self) -> Instant;
    /// Wall-clock time: what rate-limit resets and expiries are stated in.
    fn wall(&self) -> SystemTime;
    fn sleep(&self, duration: Duration);

    /// [`Clock::wall`] as whole seconds since the Unix epoch (0 before it).
    fn unix_now(&self) -> u64 {
        self.wall()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The machine's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }
}

#[cfg(any(test, feature = "fakes"))]
pub use manual::ManualClock;

#[cfg(any(test, feature = "fakes"))]
mod manual {
    use super::*;
    use std::sync::Mutex;

    /// A clock that moves only when slept on (both its clocks together), recording
    /// each sleep: for tests.
    #[derive(Debug)]
    pub struct ManualClock {
        start: Instant,
        epoch: SystemTime,
        sleeps: Mutex<Vec<Duration>>,
    }

    impl ManualClock {
        /// Wall-clock time starts at `unix_now`.
        pub fn at(unix_now: u64) -> Self {
            ManualClock {
                start: Instant::now(),
                epoch: UNIX_EPOCH + Duration::from_secs(unix_now),
                sleeps: Mutex::default(),
            }
        }
        /// Wall-clock time starts at an arbitrary fixed moment.
        pub fn new() -> Self {
            Self::default()
        }
        /// Every sleep so far, in order.
        pub fn sleeps(&self) -> Vec<Duration> {
            self.sleeps.lock().unwrap().clone()
        }
        /// How far the clock has moved.
        pub fn slept(&self) -> Duration {
            self.sleeps().iter().sum()
        }
    }

    impl Default for ManualClock {
        fn default() -> Self {
            Self::at(1_700_000_000)
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + self.slept()
        }
        fn wall(&self) -> SystemTime {
            self.epoch + self.slept()
        }
        fn sleep(&self, duration: Duration) {
            self.sleeps.lock().unwrap().push(duration);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_clock_moves_only_when_slept_on() {
        let clock = ManualClock::at(100);
        let (t0, w0) = (clock.now(), clock.unix_now());
        assert_eq!((clock.now(), w0), (t0, 100));
        clock.sleep(Duration::from_secs(3));
        clock.sleep(Duration::from_millis(2500));
        assert_eq!(clock.now() - t0, Duration::from_millis(5500));
        assert_eq!(clock.unix_now(), 105);
        assert_eq!(clock.sleeps().len(), 2);
    }

    #[test]
    fn the_system_clock_reads_the_real_time() {
        let after_2023 = SystemClock.unix_now() > 1_672_531_200;
        assert!(after_2023);
    }
}
