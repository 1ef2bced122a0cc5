//! Drives a `firestore-protocol` [`Operation`] over `component-http`, with
//! the native store's rules, so that a write is never applied twice:
//!
//! - no connection (nothing was sent), or an answer saying nothing was
//!   applied (`ABORTED`, `RESOURCE_EXHAUSTED`, 429): resent for every
//!   request;
//! - a timeout, a broken connection, `UNAVAILABLE` or a 5xx (the request
//!   may have been applied): resent only for requests the operation marks
//!   idempotent (reads, queries, commits under a precondition, batches),
//!   never for an increment;
//! - anything else: final.
//!
//! Every attempt is authorized afresh, so a token renewed in between is
//! used. After the last attempt the last answer goes to the operation,
//! which maps it like any other.

use std::time::Duration;

use component_http::{Options, Retry, RetryPolicy, TransportError, now_unix};
use firestore_protocol::{Credentials, Operation, Outgoing, Step, retry_class};
use item_model::StoreError;

/// The native store's limits: 5 s to connect, 30 s per exchange.
pub const OPTIONS: Options = Options {
    timeout: Duration::from_secs(30),
    connect_timeout: Duration::from_secs(5),
    max_response_bytes: 32 * 1024 * 1024,
};

/// The native store's backoff: 5 attempts, full jitter under a ceiling of
/// 50 ms doubling up to 2 s.
pub const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_secs(2),
};

/// Runs `op` to its result.
pub fn run<O: Operation>(
    credentials: &mut Credentials,
    mut op: O,
) -> Result<O::Output, StoreError> {
    let mut step = op.start();
    loop {
        match step {
            Step::Send(outgoing) => {
                let (status, body) = send(credentials, &outgoing)?;
                step = op.resume(status, &body);
            }
            Step::Done(result) => return result,
        }
    }
}

/// One request of an operation, resent where that is safe.
fn send(credentials: &mut Credentials, outgoing: &Outgoing) -> Result<(u16, Vec<u8>), StoreError> {
    component_http::retry(&POLICY, outgoing.idempotent, || {
        let mut request = outgoing.request.clone();
        if let Err(e) = credentials.authorize(&mut request, now_unix()) {
            return (Err(StoreError::Unauthorized(e.to_string())), Retry::No);
        }
        match component_http::send(request, &OPTIONS) {
            Ok(response) => {
                let status = response.status().as_u16();
                let class = match retry_class(status, response.body()) {
                    firestore_protocol::Retry::No => Retry::No,
                    firestore_protocol::Retry::Always => Retry::Always,
                    firestore_protocol::Retry::IfIdempotent => Retry::IfIdempotent,
                };
                (Ok((status, response.into_body())), class)
            }
            Err(e) => {
                let class = e.retry();
                (Err(transport_error(e)), class)
            }
        }
    })
}

/// A transport failure as the store reports it.
pub fn transport_error(e: TransportError) -> StoreError {
    match e {
        TransportError::Connect(_) | TransportError::Timeout(_) | TransportError::Broken(_) => {
            StoreError::Unavailable(format!("Firestore could not be reached: {e}"))
        }
        TransportError::TooLarge(_)
        | TransportError::Refused(_)
        | TransportError::NotInComponent => {
            StoreError::Backend(format!("Firestore request failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_keep_their_meaning() {
        assert!(matches!(
            transport_error(TransportError::Timeout(Duration::from_secs(30))),
            StoreError::Unavailable(m) if m.contains("30s")
        ));
        assert!(matches!(
            transport_error(TransportError::Refused("the host is not allowed".into())),
            StoreError::Backend(m) if m.contains("not allowed")
        ));
    }

    #[test]
    fn outside_a_component_an_operation_fails_cleanly() {
        let firestore = firestore_protocol::Firestore::new(
            "http://127.0.0.1:9",
            "demo-x",
            "(default)",
            "items",
        )
        .unwrap();
        let mut credentials = Credentials::emulator();
        let result = run(
            &mut credentials,
            firestore.get("a", item_model::Timestamp::now()),
        );
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("only available inside a component")),
            "{result:?}"
        );
    }
}
