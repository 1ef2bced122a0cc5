//! A Firestore database with its caller's credentials: the
//! [`sansio::Protocol`] of the Firestore operations.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use item_model::StoreError;
use sansio::{Protocol, Request, Response, Retry, RetryPolicy, TransportError};

use crate::auth::Credentials;
use crate::error::retry_class;
use crate::names::Firestore;

/// Firestore's retry numbers, for the native store and the component
/// alike: 5 attempts (Google's client libraries retry `UNAVAILABLE` a few
/// times; contention is also retried inside the read-then-write
/// operations), full jitter under a ceiling of 50 ms doubling up to 2 s.
pub const RETRY_POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_secs(2),
};

/// The database and the credentials its requests carry. The token is
/// kept with its key and renewed five minutes before it expires; the lock
/// is held only while a token is read or signed.
#[derive(Debug)]
pub struct Session {
    firestore: Firestore,
    credentials: Mutex<Credentials>,
}

impl Session {
    /// A session with no token yet: the first request fetches one.
    pub fn new(firestore: Firestore, credentials: Credentials) -> Self {
        Self {
            firestore,
            credentials: Mutex::new(credentials),
        }
    }

    /// The database, to build operations with.
    pub fn firestore(&self) -> &Firestore {
        &self.firestore
    }

    /// Replaces the credentials, e.g. with a renewed access token.
    pub fn replace_credentials(&self, credentials: Credentials) {
        match self.credentials.lock() {
            Ok(mut current) => *current = credentials,
            Err(poisoned) => *poisoned.into_inner() = credentials,
        }
    }
}

impl Protocol for Session {
    /// Sets `authorization: Bearer …`, renewing the token when it is due.
    fn authorize(&self, request: &mut Request, now: SystemTime) -> Result<(), StoreError> {
        let unix = crate::auth::unix_seconds(now);
        let mut credentials = self.credentials.lock().map_err(|_| {
            StoreError::Backend("the Firestore credentials lock is poisoned".into())
        })?;
        credentials
            .authorize(request, unix)
            .map_err(|e| StoreError::Unauthorized(e.to_string()))
    }

    fn classify(&self, response: &Response) -> Retry {
        retry_class(response)
    }

    /// Names the failure only: the URL is not repeated.
    fn unreachable(&self, _request: &Request, error: &TransportError) -> StoreError {
        match error {
            TransportError::Connect(_) | TransportError::Timeout(_) | TransportError::Broken(_) => {
                StoreError::Unavailable(format!("Firestore could not be reached: {error}"))
            }
            TransportError::TooLarge(_) | TransportError::Refused(_) => {
                StoreError::Backend(format!("Firestore request failed: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let firestore =
            Firestore::new("http://127.0.0.1:8681", "demo-p", "(default)", "items").unwrap();
        Session::new(firestore, Credentials::emulator())
    }

    #[test]
    fn every_attempt_carries_the_bearer_token() {
        let mut request = http::Request::get("http://127.0.0.1:8681/x")
            .body(Vec::new())
            .unwrap();
        session()
            .authorize(&mut request, SystemTime::now())
            .unwrap();
        assert_eq!(request.headers()["authorization"], "Bearer owner");
    }

    #[test]
    fn transport_failures_keep_their_meaning_and_name_no_address() {
        let request = http::Request::get("http://127.0.0.1:8681/x")
            .body(Vec::new())
            .unwrap();
        let session = session();
        let timeout =
            session.unreachable(&request, &TransportError::Timeout(Duration::from_secs(30)));
        assert!(matches!(&timeout, StoreError::Unavailable(m) if m.contains("30s")));
        let connect = session.unreachable(
            &request,
            &TransportError::Connect("connection refused".into()),
        );
        assert!(matches!(&connect, StoreError::Unavailable(m) if !m.contains("127.0.0.1")));
        let refused = TransportError::Refused("the host is not allowed".into());
        assert!(matches!(
            session.unreachable(&request, &refused),
            StoreError::Backend(m) if m.contains("not allowed")
        ));
    }

    #[test]
    fn contention_is_retried_for_every_request() {
        let aborted = br#"{"error": {"code": 409, "status": "ABORTED"}}"#;
        let answer = sansio::response(409, aborted.to_vec());
        assert_eq!(session().classify(&answer), Retry::Always);
    }
}
