//! The Firestore item store for the native host: the sans-IO
//! `firestore-protocol` operations, sent with one pooled keep-alive
//! reqwest client (rustls).
//!
//! Retries: capped exponential backoff with full jitter (a random pause
//! between zero and `min(max_delay, base_delay * 2^retry)`), and only where
//! a repeat is harmless:
//! - a request that never reached the server (connect failure) and an
//!   answer saying nothing was applied (`ABORTED`, `RESOURCE_EXHAUSTED`,
//!   HTTP 429) are retried for every request;
//! - a failure that leaves open whether the request was applied (timeout,
//!   broken connection, `UNAVAILABLE`, 5xx) is retried only for idempotent
//!   requests: reads, queries, commits under a precondition (a repeat fails
//!   the precondition and the operation recognises its own write) and
//!   batches (the same writes again). Increments are blind, so they are not
//!   repeated after such a failure.

mod config;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use firestore_protocol::{Credentials, Firestore, Operation, Outgoing, Retry, Step, retry_class};
use item_store::{
    BatchResult, BatchWrite, Item, ItemPatch, ItemStore, NewItem, Page, PutOutcome, Query,
    StoreError, StoreResult, Timestamp,
};
use rand::Rng;

pub use config::*;

/// The Firestore store. Cheap to share behind an `Arc`; one instance keeps
/// one connection pool and one cached token.
pub struct FirestoreStore {
    firestore: Firestore,
    http: reqwest::Client,
    credentials: Mutex<Credentials>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore")
            .field("firestore", &self.firestore)
            .finish_non_exhaustive()
    }
}

impl FirestoreStore {
    pub fn new(config: FirestoreConfig) -> Result<Self, ConfigError> {
        let (base_url, credentials) = match config.endpoint {
            Endpoint::Emulator { base_url } => (base_url, Credentials::emulator()),
            Endpoint::ServiceAccount { base_url, key } => {
                (base_url, Credentials::service_account(*key))
            }
        };
        let firestore = Firestore::new(
            &base_url,
            &config.project_id,
            &config.database,
            &config.collection,
        )?;
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "edge-items-store-firestore/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_keepalive(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Self {
            firestore,
            http,
            credentials: Mutex::new(credentials),
            retry: config.retry,
        })
    }

    /// From the environment; see [`FirestoreConfig::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(FirestoreConfig::from_env()?)
    }

    /// The collection this store reads and writes.
    pub fn firestore(&self) -> &Firestore {
        &self.firestore
    }

    /// Drives an operation to its result.
    async fn run<O: Operation + Send>(&self, mut op: O) -> StoreResult<O::Output> {
        let mut step = op.start();
        loop {
            match step {
                Step::Send(outgoing) => {
                    let (status, body) = self.send(&outgoing).await?;
                    step = op.resume(status, &body);
                }
                Step::Done(result) => return result,
            }
        }
    }

    /// Sends one request, retrying where that is safe (see the crate docs).
    async fn send(&self, outgoing: &Outgoing) -> StoreResult<(u16, Vec<u8>)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts;
            let request = self.prepare(outgoing)?;
            let failure = match self.http.execute(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) => {
                            let again = match retry_class(status, &body) {
                                Retry::No => false,
                                Retry::Always => true,
                                Retry::IfIdempotent => outgoing.idempotent,
                            };
                            if !again || last {
                                return Ok((status, body.to_vec()));
                            }
                            tracing::debug!(status, attempt, "retrying a Firestore request");
                            None
                        }
                        Err(e) => Some((describe(&e), outgoing.idempotent)),
                    }
                }
                // A connect error means the request never left: always safe.
                Err(e) => Some((describe(&e), e.is_connect() || outgoing.idempotent)),
            };
            if let Some((what, safe)) = failure {
                if !safe || last {
                    return Err(StoreError::Unavailable(format!(
                        "Firestore could not be reached ({what})"
                    )));
                }
                tracing::debug!(what, attempt, "retrying a Firestore request");
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// The request with a fresh `authorization` header.
    fn prepare(&self, outgoing: &Outgoing) -> StoreResult<reqwest::Request> {
        let mut request = outgoing.request.clone();
        let now = unix_now();
        {
            let mut credentials = self
                .credentials
                .lock()
                .map_err(|_| StoreError::Backend("the credentials lock is poisoned".into()))?;
            credentials
                .authorize(&mut request, now)
                .map_err(|e| StoreError::Unauthorized(e.to_string()))?;
        }
        reqwest::Request::try_from(request)
            .map_err(|_| StoreError::Backend("could not build a Firestore request".into()))
    }

    /// Full jitter: a random pause up to the capped exponential ceiling.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .retry
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.retry.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What went wrong on the wire, without the URL or any header.
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "the connection failed"
    }
}

#[async_trait]
impl ItemStore for FirestoreStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        self.run(self.firestore.get(id, Timestamp::now())).await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.run(self.firestore.create(item, Timestamp::now()))
            .await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(self.firestore.put(item, expected_version, Timestamp::now()))
            .await
    }

    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(
            self.firestore
                .update(id, patch, expected_version, Timestamp::now()),
        )
        .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(
            self.firestore
                .delete(id, expected_version, Timestamp::now()),
        )
        .await
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.run(
            self.firestore
                .increment(id, attribute, delta, Timestamp::now()),
        )
        .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        self.run(self.firestore.batch(writes, Timestamp::now()))
            .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.run(self.firestore.query(query, Timestamp::now()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_full_jitter() {
        let store = FirestoreStore::new(
            FirestoreConfig::builder()
                .emulator_host("127.0.0.1:1")
                .build()
                .unwrap(),
        )
        .unwrap();
        for attempt in 1..40 {
            assert!(store.backoff(attempt) <= store.retry.max_delay);
        }
        assert!(store.backoff(1) <= store.retry.base_delay);
    }
}
