//! Runs `dynamodb-protocol` operations over `component-http` with
//! `sansio`'s blocking driver: the protocol signs every attempt afresh
//! (wall clock from `wasi:clocks`) and decides what may be resent, the
//! driver honours the operations' pauses and [`RETRY_POLICY`] (the native
//! store's numbers), so a write is never applied twice:
//!
//! - throttled (DynamoDB did not apply the call) or no connection (nothing
//!   was sent): resent for every call;
//! - 5xx, timeout, broken connection (the call may have been applied):
//!   resent only for calls the protocol marks idempotent (reads,
//!   conditional puts and updates, batch writes), never for increments
//!   and deletes;
//! - anything else: final.
//!
//! After the last attempt the last answer goes to the operation, which
//! maps a 503 or a throttling error like any other.

use std::time::Duration;

use component_http::{Options, WasiHttp};
use dynamodb_protocol::{DynamoDb, RETRY_POLICY, StoreError};
use sansio::Operation;

/// The native store's limits: 3 s to connect, 10 s per request.
const OPTIONS: Options = Options {
    timeout: Duration::from_secs(10),
    connect_timeout: Duration::from_secs(3),
    max_response_bytes: 32 * 1024 * 1024,
};

/// Runs `operation` to its end.
pub(crate) fn run<O: Operation>(
    protocol: &DynamoDb,
    operation: O,
) -> Result<O::Output, StoreError> {
    sansio::drive_blocking(
        protocol,
        RETRY_POLICY,
        &mut WasiHttp::new(OPTIONS.with_env_timeout()),
        operation,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamodb_protocol::{Config, Credentials};
    use item_model::Timestamp;

    #[test]
    fn outside_a_component_an_operation_fails_cleanly() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None).unwrap();
        let config = Config::new("us-east-1", credentials)
            .and_then(|c| c.with_endpoint("http://127.0.0.1:9"))
            .unwrap();
        let db = DynamoDb::new(config);
        let result = run(&db, db.get("a", Timestamp::now()));
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("GetItem") && m.contains("only available inside a component")),
            "{result:?}"
        );
    }
}
