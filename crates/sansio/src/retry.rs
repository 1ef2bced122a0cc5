//! Which failures may be retried, and how patiently.

use std::time::Duration;

/// Whether an attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Final: a repeat would fail the same way, or succeeded already.
    No,
    /// Nothing was applied (no connection, or the server said so, as with
    /// throttling): safe for every request.
    Always,
    /// It is open whether the server acted (timeout, broken connection,
    /// 5xx): safe only for a request that may run twice.
    IfIdempotent,
}

impl Retry {
    /// Whether a request with this idempotency may be repeated.
    pub fn allows(self, idempotent: bool) -> bool {
        match self {
            Retry::No => false,
            Retry::Always => true,
            Retry::IfIdempotent => idempotent,
        }
    }
}

/// Why an exchange got no (usable) answer. Messages name the failure only:
/// never the URL, a header or a body, so they cannot leak a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request never reached the server (name lookup, connection
    /// refused or timed out, TLS handshake): repeating it is always safe.
    #[error("could not connect: {0}")]
    Connect(String),
    /// No complete answer before the deadline; the server may have acted.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed after the request left, or the answer was
    /// malformed; the server may have acted.
    #[error("the connection failed: {0}")]
    Broken(String),
    /// The response body is larger than the transport accepts.
    #[error("the response is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The request could not be sent at all (a host the runtime does not
    /// allow, a malformed URL, no HTTP client on this platform): a repeat
    /// fails the same way.
    #[error("the request was refused before sending: {0}")]
    Refused(String),
}

impl TransportError {
    /// A short name of the kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Broken(_) => "broken",
            Self::TooLarge(_) => "too_large",
            Self::Refused(_) => "refused",
        }
    }

    /// Whether a repeat may help, and for which requests.
    pub fn retry(&self) -> Retry {
        match self {
            TransportError::Connect(_) => Retry::Always,
            TransportError::Timeout(_) | TransportError::Broken(_) => Retry::IfIdempotent,
            TransportError::TooLarge(_) | TransportError::Refused(_) => Retry::No,
        }
    }
}

/// Capped exponential backoff with full jitter: before retry `n` (from 1)
/// the transport waits a random time between zero and
/// `min(max_delay, base_delay * 2^(n-1))`, so that many clients failing
/// together do not come back together ("Exponential Backoff And Jitter",
/// AWS architecture blog). The numbers of each backend are its protocol
/// crate's `RETRY_POLICY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of one request in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles per retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The ceiling of the pause before retry `retry` (1 for the first).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        self.base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The pause before retry `retry`, drawn with `random` (any u64 from
    /// the platform's random source): uniform in `0..=ceiling` at
    /// millisecond grain.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(random % ceiling.saturating_add(1).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        assert_eq!(POLICY.ceiling(1), Duration::from_millis(50));
        assert_eq!(POLICY.ceiling(2), Duration::from_millis(100));
        assert_eq!(POLICY.ceiling(3), Duration::from_millis(200));
        assert_eq!(POLICY.ceiling(6), Duration::from_millis(1600));
        assert_eq!(POLICY.ceiling(7), Duration::from_secs(2));
        assert_eq!(POLICY.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn backoff_is_full_jitter_below_the_ceiling() {
        assert_eq!(POLICY.backoff(1, 0), Duration::ZERO);
        assert_eq!(POLICY.backoff(1, 50), Duration::from_millis(50));
        assert_eq!(POLICY.backoff(1, 51), Duration::ZERO);
        assert_eq!(
            POLICY.backoff(9, u64::MAX),
            Duration::from_millis(u64::MAX % 2001)
        );
        for retry in 1..50 {
            for random in [0, 1, 12_345, u64::MAX] {
                assert!(POLICY.backoff(retry, random) <= POLICY.ceiling(retry));
            }
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..POLICY
        };
        assert_eq!(zero.backoff(3, 12345), Duration::ZERO);
    }

    #[test]
    fn only_safe_repeats_are_allowed() {
        let connect = TransportError::Connect("refused".into()).retry();
        assert!(connect.allows(false) && connect.allows(true));
        let timeout = TransportError::Timeout(Duration::from_secs(1)).retry();
        assert!(!timeout.allows(false) && timeout.allows(true));
        let broken = TransportError::Broken("reset".into()).retry();
        assert!(!broken.allows(false) && broken.allows(true));
        for final_error in [
            TransportError::TooLarge(1),
            TransportError::Refused("denied".into()),
        ] {
            assert!(!final_error.retry().allows(true), "{final_error}");
        }
        assert!(!Retry::No.allows(true));
    }
}
