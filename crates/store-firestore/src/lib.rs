//! The Firestore item store for the native host: the sans-IO
//! `firestore-protocol` operations, run by `sansio`'s async driver over one
//! pooled keep-alive reqwest client (rustls, `sansio-reqwest`).
//!
//! Retries (the protocol decides, `firestore_protocol::RETRY_POLICY` sets
//! the default numbers, the adapter component follows the same): capped
//! exponential backoff with full jitter (a random pause between zero and
//! `min(max_delay, base_delay * 2^(retry-1))`), and only where a repeat is
//! harmless:
//! - a request that never reached the server (connect failure) and an
//!   answer saying nothing was applied (`ABORTED`, `RESOURCE_EXHAUSTED`,
//!   HTTP 429) are retried for every request;
//! - a failure that leaves open whether the request was applied (timeout,
//!   broken connection, `UNAVAILABLE`, 5xx) is retried only for idempotent
//!   requests: reads, queries, commits under a precondition (a repeat fails
//!   the precondition and the operation recognises its own write) and
//!   batches (the same writes again), and the commits of `apply_once`
//!   (a repeat fails the record's precondition, and the next read finds the
//!   record). Increments are blind, so they are not repeated after such a
//!   failure; under an Idempotency-Key they are not blind (see
//!   `firestore_protocol`'s `once` module).

mod config;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use firestore_protocol::{Credentials, Firestore, Session};
use item_store::{
    BatchResult, BatchWrite, Item, ItemPatch, ItemStore, NewItem, Page, PutOutcome, Query,
    ScanPage, ScanRequest, StoreResult, Timestamp, WriteClock,
};
use sansio::Operation;
use sansio_reqwest::ReqwestTransport;

pub use config::*;

use crate::tokens::{Fetch, TokenFetcher};

/// The Firestore store. Cheap to share behind an `Arc`; one instance keeps
/// one connection pool and one cached token.
pub struct FirestoreStore {
    session: Session,
    /// For credentials whose tokens are fetched (a user's, the metadata
    /// server's); service-account keys sign their own in the session.
    tokens: Option<TokenFetcher>,
    /// Told of every backend attempt (the host's metrics).
    observer: Option<std::sync::Arc<dyn sansio::Observer>>,
    transport: ReqwestTransport,
    retry: RetryPolicy,
    /// Write times from this process strictly increase: `createdAt` orders
    /// the queries, and equal times would leave ties to Firestore.
    clock: WriteClock,
}

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore")
            .field("firestore", self.session.firestore())
            .finish_non_exhaustive()
    }
}

impl FirestoreStore {
    /// Sets up the HTTP client; connects to nothing yet, so a wrong
    /// endpoint shows on the first call.
    pub fn new(config: FirestoreConfig) -> Result<Self, ConfigError> {
        let (base_url, credentials, fetch) = match config.endpoint {
            Endpoint::Emulator { base_url } => (base_url, Credentials::emulator(), None),
            Endpoint::ServiceAccount { base_url, key } => {
                (base_url, Credentials::service_account(*key), None)
            }
            Endpoint::AuthorizedUser { base_url, user } => {
                (base_url, tokens::no_token_yet(), Some(Fetch::User(user)))
            }
            Endpoint::MetadataServer { base_url, host } => (
                base_url,
                tokens::no_token_yet(),
                Some(Fetch::Metadata(host)),
            ),
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
        let token_http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Self {
            session: Session::new(firestore, credentials),
            tokens: fetch.map(|fetch| TokenFetcher::new(fetch, token_http)),
            observer: None,
            transport: ReqwestTransport::new(http, config.request_timeout),
            retry: config.retry,
            clock: WriteClock::new(),
        })
    }

    /// From the environment; see [`FirestoreConfig::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(FirestoreConfig::from_env()?)
    }

    /// As [`FirestoreStore::new`], then gets the first token now, so that
    /// a service without usable credentials fails at start; on the
    /// metadata server, also reads the project when none was given.
    pub async fn connect(mut config: FirestoreConfig) -> Result<Self, ConfigError> {
        if config.project_id.is_empty()
            && let Endpoint::MetadataServer { host, .. } = &config.endpoint
        {
            let http = reqwest::Client::new();
            let probe = TokenFetcher::new(Fetch::Metadata(host.clone()), http);
            config.project_id = probe
                .project_id()
                .await
                .map_err(|e| ConfigError::Token(e.to_string()))?
                .ok_or(ConfigError::NoProject)?;
        }
        let store = Self::new(config)?;
        if let Some(tokens) = &store.tokens {
            tokens
                .ensure_fresh(&store.session)
                .await
                .map_err(|e| ConfigError::Token(e.to_string()))?;
        }
        Ok(store)
    }

    /// The same store, telling `observer` of every attempt at Firestore
    /// (calls, retries and failures, for metrics).
    pub fn observed(mut self, observer: std::sync::Arc<dyn sansio::Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Creates the missing composite indexes, waits until all are READY,
    /// and makes sure `expiresAt` has a TTL policy (see
    /// `firestore_protocol::provision`). Safe to repeat.
    pub async fn provision(&self) -> StoreResult<firestore_protocol::provision::Provisioned> {
        let operation = self.firestore().provision()?;
        self.run(operation).await
    }

    /// The collection this store reads and writes.
    pub fn firestore(&self) -> &Firestore {
        self.session.firestore()
    }

    /// Drives an operation to its result (see the crate docs for retries).
    async fn run<O: Operation + Send>(&self, op: O) -> StoreResult<O::Output> {
        if let Some(tokens) = &self.tokens {
            tokens.ensure_fresh(&self.session).await?;
        }
        let observer = self.observer.as_deref();
        sansio::drive_async_observed(&self.session, self.retry, &self.transport, op, observer).await
    }

    /// A write time later than any this store handed out before.
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

#[async_trait]
impl ItemStore for FirestoreStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        self.run(self.firestore().get(id, self.now())).await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.run(self.firestore().create(item, self.now())).await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(self.firestore().put(item, expected_version, self.now()))
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
            self.firestore()
                .update(id, patch, expected_version, self.now()),
        )
        .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(self.firestore().delete(id, expected_version, self.now()))
            .await
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.run(self.firestore().increment(id, attribute, delta, self.now()))
            .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        self.run(self.firestore().batch(writes, self.now())).await
    }

    async fn apply_once(
        &self,
        write: item_store::Write,
        once: item_store::Once,
    ) -> StoreResult<item_store::Applied> {
        self.run(self.firestore().apply_once(write, once, self.now()))
            .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.run(self.firestore().query(query, self.now())).await
    }

    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        self.run(self.firestore().scan(request, self.now())).await
    }
}
