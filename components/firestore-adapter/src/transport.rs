//! Runs `firestore-protocol` operations over `component-http` with
//! `sansio`'s blocking driver and [`RETRY_POLICY`] (the native store's
//! numbers), so that a write is never applied twice:
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
//! Every attempt is authorized afresh by the [`Session`], so a token
//! renewed in between is used. After the last attempt the last answer goes
//! to the operation, which maps it like any other.

use std::time::Duration;

use component_http::{Options, WasiHttp};
use firestore_protocol::{RETRY_POLICY, Session};
use item_model::StoreError;
use sansio::Operation;

/// The native store's limits: 5 s to connect, 30 s per exchange.
pub const OPTIONS: Options = Options {
    timeout: Duration::from_secs(30),
    connect_timeout: Duration::from_secs(5),
    max_response_bytes: 32 * 1024 * 1024,
};

/// Runs `op` to its result.
pub fn run<O: Operation>(session: &Session, op: O) -> Result<O::Output, StoreError> {
    sansio::drive_blocking(
        session,
        RETRY_POLICY,
        &mut WasiHttp::new(OPTIONS.with_env_timeout()),
        op,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use firestore_protocol::{Credentials, Firestore};

    #[test]
    fn outside_a_component_an_operation_fails_cleanly() {
        let firestore =
            Firestore::new("http://127.0.0.1:9", "demo-x", "(default)", "items").unwrap();
        let session = Session::new(firestore, Credentials::emulator());
        let result = run(
            &session,
            session.firestore().get("a", item_model::Timestamp::now()),
        );
        assert!(
            matches!(&result, Err(StoreError::Backend(m)) if m.contains("only available inside a component")),
            "{result:?}"
        );
    }
}
