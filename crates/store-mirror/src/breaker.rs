//! A circuit breaker on the primary. A call to a dead backend takes its
//! whole retry budget (seconds) before it fails; without a breaker every
//! read during an outage would pay that before reaching the secondary. So
//! once the primary is found down, calls skip it for a cool-down; then one
//! call at a time probes it, and the first success closes the breaker.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the primary is skipped after it was found down.
pub(crate) const COOL_DOWN: Duration = Duration::from_secs(3);

#[derive(Default)]
pub(crate) struct Breaker {
    open_until: Mutex<Option<Instant>>,
    probing: AtomicBool,
}

/// Permission to call the primary; report how it went with
/// [`Attempt::succeeded`] or [`Attempt::failed`]. Dropped without a
/// report (the request was cancelled), a probe frees its slot.
pub(crate) struct Attempt<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Breaker {
    /// `None` while the primary is to be skipped.
    pub(crate) fn attempt(&self) -> Option<Attempt<'_>> {
        let open_until = *self.open_until.lock().unwrap_or_else(|p| p.into_inner());
        match open_until {
            None => Some(Attempt {
                breaker: self,
                probe: false,
            }),
            Some(until) if Instant::now() < until => None,
            Some(_) => (!self.probing.swap(true, Ordering::AcqRel)).then_some(Attempt {
                breaker: self,
                probe: true,
            }),
        }
    }

    fn set(&self, open_until: Option<Instant>) {
        *self.open_until.lock().unwrap_or_else(|p| p.into_inner()) = open_until;
    }
}

impl Attempt<'_> {
    /// The primary answered (an error of the request's own included).
    pub(crate) fn succeeded(self) {
        if self.probe {
            tracing::info!("mirror: the primary answers again");
        }
        self.breaker.set(None);
    }

    /// The primary is down: skip it for a cool-down.
    pub(crate) fn failed(self) {
        self.breaker.set(Some(Instant::now() + COOL_DOWN));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_opens_it_and_one_probe_at_a_time_closes_it() {
        let breaker = Breaker::default();
        breaker.attempt().expect("closed").failed();
        assert!(breaker.attempt().is_none(), "skipped during the cool-down");
        // The cool-down is over.
        breaker.set(Some(Instant::now() - Duration::from_millis(1)));
        let probe = breaker.attempt().expect("a probe");
        assert!(breaker.attempt().is_none(), "one probe at a time");
        drop(probe); // cancelled: the slot is free again
        let probe = breaker.attempt().expect("another probe");
        probe.succeeded();
        assert!(breaker.attempt().is_some(), "closed again");
        assert!(breaker.attempt().is_some(), "and no longer probing");
    }
}
