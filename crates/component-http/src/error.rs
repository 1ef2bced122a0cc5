//! What can go wrong on the wire, sorted by what a retry may do.

use std::time::Duration;

/// Why an exchange failed. Messages name the failure only: never the URL,
/// a header or a body, so they cannot leak a credential.
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
    /// The response body is larger than [`crate::Options::max_response_bytes`].
    #[error("the response is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The runtime refused to send the request (a host that is not allowed
    /// outbound, a malformed URL or header): a repeat fails the same way.
    #[error("the runtime refused the request: {0}")]
    Refused(String),
    /// Called outside a WebAssembly component.
    #[error("outgoing HTTP is only available inside a component (wasm32-wasip2)")]
    NotInComponent,
}

impl TransportError {
    /// Whether a repeat may help, and for which requests.
    pub fn retry(&self) -> Retry {
        match self {
            TransportError::Connect(_) => Retry::Always,
            TransportError::Timeout(_) | TransportError::Broken(_) => Retry::IfIdempotent,
            TransportError::TooLarge(_)
            | TransportError::Refused(_)
            | TransportError::NotInComponent => Retry::No,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
            TransportError::NotInComponent,
        ] {
            assert!(!final_error.retry().allows(true), "{final_error}");
        }
    }
}
