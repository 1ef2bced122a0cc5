//! Retries with capped exponential backoff and full jitter: before retry
//! `n` (1-based) the caller sleeps a random time between zero and
//! `min(max_delay, base_delay * 2^(n-1))`, so that many instances failing
//! together do not come back together. The same policy and defaults as the
//! native stores.

use std::time::Duration;

use crate::{Options, Retry, TransportError, platform, send, sleep};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles per retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 50 ms doubling up to 2 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry `retry` (1 for the first), drawn from the
    /// runtime's random source (`wasi:random`).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, platform::random_u64())
    }

    /// The ceiling of the pause before retry `retry`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// [`RetryPolicy::backoff`] with the random number given: full jitter,
    /// uniform in `0..=ceiling` at millisecond grain.
    fn backoff_with(&self, retry: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(random % ceiling.saturating_add(1).max(1))
    }
}

/// Runs `attempt` until it says a repeat would not help or is not safe for
/// a request of this idempotency, or the attempts are used up, sleeping the
/// backoff in between; returns the last attempt's outcome.
///
/// `attempt` returns its outcome and whether it may be repeated. Building
/// the request inside it lets each attempt carry fresh credentials (a
/// renewed token, a new signature).
pub fn retry<T>(
    policy: &RetryPolicy,
    idempotent: bool,
    mut attempt: impl FnMut() -> (T, Retry),
) -> T {
    let mut attempts = 0u32;
    loop {
        attempts = attempts.saturating_add(1);
        let (outcome, class) = attempt();
        if attempts >= policy.max_attempts || !class.allows(idempotent) {
            return outcome;
        }
        sleep(policy.backoff(attempts));
    }
}

/// [`send`] with [`retry`]: a transport failure is retried as
/// [`TransportError::retry`] says, an answer as `classify` says (for
/// example throttling as [`Retry::Always`], 5xx as [`Retry::IfIdempotent`]).
/// After the last attempt the last answer is returned as it is, so the
/// caller maps a final 503 like any other.
pub fn send_retrying(
    request: &http::Request<Vec<u8>>,
    options: &Options,
    policy: &RetryPolicy,
    idempotent: bool,
    classify: impl Fn(&http::Response<Vec<u8>>) -> Retry,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    retry(policy, idempotent, || {
        match send(request.clone(), options) {
            Ok(response) => {
                let class = classify(&response);
                (Ok(response), class)
            }
            Err(error) => {
                let class = error.retry();
                (Err(error), class)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(3),
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(1), Duration::from_millis(50));
        assert_eq!(policy.ceiling(2), Duration::from_millis(100));
        assert_eq!(policy.ceiling(3), Duration::from_millis(200));
        assert_eq!(policy.ceiling(7), Duration::from_secs(2));
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn backoff_is_full_jitter_below_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_with(1, 0), Duration::ZERO);
        assert_eq!(policy.backoff_with(1, 50), Duration::from_millis(50));
        assert_eq!(policy.backoff_with(1, 51), Duration::ZERO);
        assert_eq!(
            policy.backoff_with(9, u64::MAX),
            Duration::from_millis(u64::MAX % 2001)
        );
        for retry in 1..50 {
            assert!(policy.backoff(retry) <= policy.ceiling(retry));
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.backoff_with(3, 12345), Duration::ZERO);
    }

    #[test]
    fn repeats_only_what_is_safe() {
        // Safe for everyone: repeated until the attempts run out.
        let mut calls = 0;
        let last = retry(&quick(), false, || {
            calls += 1;
            (calls, Retry::Always)
        });
        assert_eq!((calls, last), (4, 4));
        // Ambiguous: not repeated for a request that must not run twice...
        calls = 0;
        retry(&quick(), false, || {
            calls += 1;
            ((), Retry::IfIdempotent)
        });
        assert_eq!(calls, 1);
        // ...but repeated for one that may.
        calls = 0;
        retry(&quick(), true, || {
            calls += 1;
            ((), Retry::IfIdempotent)
        });
        assert_eq!(calls, 4);
        // Stops at the first final outcome.
        calls = 0;
        let outcome = retry(&quick(), true, || {
            calls += 1;
            if calls < 2 {
                ("busy", Retry::Always)
            } else {
                ("done", Retry::No)
            }
        });
        assert_eq!((calls, outcome), (2, "done"));
    }

    #[test]
    fn a_transport_that_is_not_there_is_not_retried() {
        let request = http::Request::get("http://127.0.0.1:9/").body(Vec::new());
        let result = send_retrying(
            &request.unwrap(),
            &Options::default(),
            &quick(),
            true,
            |_| Retry::No,
        );
        assert_eq!(result.unwrap_err(), TransportError::NotInComponent);
    }
}
