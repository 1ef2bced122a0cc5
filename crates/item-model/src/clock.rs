//! Write times that strictly increase within one process or instance.
//! `createdAt` orders both secondary indexes, and two items created in the
//! same microsecond would leave the order of the tie to the backend; a
//! store takes every write time from one [`WriteClock`] instead.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::Timestamp;

/// Hands out times later than any it handed out before (the wall clock,
/// nudged forward by a microsecond where needed).
#[derive(Debug, Default)]
pub struct WriteClock {
    last_micros: AtomicI64,
}

impl WriteClock {
    /// A clock that has handed out nothing yet (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            last_micros: AtomicI64::new(0),
        }
    }

    /// A write time later than every earlier one from this clock.
    pub fn now(&self) -> Timestamp {
        self.after(Timestamp::now())
    }

    /// `wall`, or one microsecond after the last time handed out if that
    /// is not earlier.
    fn after(&self, wall: Timestamp) -> Timestamp {
        let clock = wall.as_micros();
        let previous = self
            .last_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(clock.max(last.saturating_add(1)))
            })
            .unwrap_or(clock);
        Timestamp::from_micros(clock.max(previous.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_strictly_increase() {
        let clock = WriteClock::new();
        let times: Vec<_> = (0..1000).map(|_| clock.now()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_clock_that_goes_back_is_overtaken() {
        let clock = WriteClock::new();
        let late = clock.after(Timestamp::from_micros(2_000));
        let early = clock.after(Timestamp::from_micros(1_000));
        assert_eq!(late.as_micros(), 2_000);
        assert_eq!(early.as_micros(), 2_001);
    }
}
