//! The DynamoDB item store for the native host: the sans-IO protocol of
//! `dynamodb-protocol` run by `sansio`'s async driver over one pooled,
//! keep-alive reqwest client (`sansio-reqwest`).
//!
//! Retries (the protocol decides, `dynamodb_protocol::RETRY_POLICY` sets
//! the numbers, the adapter component follows the same): every call is
//! retried with capped exponential backoff and full jitter when DynamoDB
//! throttles it (a throttled request was not applied,
//! so even an increment may be resent) or when the connection could not be
//! opened. Server errors (5xx), timeouts and broken connections leave the
//! outcome of a write unknown, so those are retried only for calls the
//! protocol marks idempotent: reads, the conditional puts and updates (a
//! resend that finds its own write counts as done), batch writes (fixed
//! items, unconditional), and the transactions of `apply_once` (each
//! carries a ClientRequestToken, so DynamoDB applies it once). Plain
//! increments and deletes are not resent then: the caller gets
//! `unavailable` and decides, or sends them with an Idempotency-Key
//! (`apply_once`), which makes repeating them safe: a keyed write reads
//! before it writes, and a transaction costs twice the write capacity, so
//! plain writes keep their single request.
//!
//! Configuration comes from the standard AWS variables (see
//! [`DynamoDbConfig::from_env`]); [`DynamoDbStore::provision`] creates the
//! table, its indexes and TTL, and [`DynamoDbStore::backfill_user_status`]
//! gives older items the `byUserStatus` key (`edge-items provision
//! dynamodb` runs it when that index was added, or with `--backfill`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dynamodb_protocol::{Config, Credentials, DynamoDb, RETRY_POLICY};
use item_store::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, ItemStore, NewItem, Once, Page, PutOutcome,
    Query, ScanPage, ScanRequest, StoreResult, Write, WriteClock,
};
use sansio::{Operation, RetryPolicy};
use sansio_reqwest::ReqwestTransport;

use crate::credentials::{CachedChain, CredentialSource};

mod credentials;

pub use dynamodb_protocol::{Backfilled, DEFAULT_TABLE, EnvError, Provisioned, TABLE_VARIABLE};

/// Why the store could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum DynamoDbConfigError {
    /// A variable [`DynamoDbConfig::from_env`] reads is missing or invalid.
    #[error(transparent)]
    Environment(#[from] dynamodb_protocol::EnvError),
    /// A value given in code (not the environment) is invalid.
    #[error(transparent)]
    Invalid(#[from] dynamodb_protocol::ConfigError),
    /// reqwest could not build its client (TLS setup).
    #[error("cannot build the HTTP client for DynamoDB")]
    Client,
    /// The default chain found no credentials (why is in the log).
    #[error("{0}")]
    NoCredentials(String),
    /// No region in the environment, the profile or the instance metadata.
    #[error(
        "no AWS region: set AWS_REGION (or a `region` in the AWS profile in use) to use the DynamoDB store"
    )]
    NoRegion,
}

/// How to reach DynamoDB. `Debug` shows no credential.
#[derive(Debug, Clone)]
pub struct DynamoDbConfig {
    protocol: Config,
    credentials: CredentialSource,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl DynamoDbConfig {
    /// The regional AWS endpoint, table `Items`, default timeouts.
    pub fn new(region: &str, credentials: Credentials) -> Result<Self, DynamoDbConfigError> {
        Ok(Self::with_protocol(Config::new(region, credentials)?))
    }

    fn with_protocol(protocol: Config) -> Self {
        Self {
            protocol,
            credentials: CredentialSource::Fixed,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            retry: RETRY_POLICY,
        }
    }

    /// From the standard AWS variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, `AWS_REGION`
    /// (or `AWS_DEFAULT_REGION`), and the optional endpoint override
    /// `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`), as the AWS SDKs
    /// read them, plus the table name in `EDGE_ITEMS_DYNAMODB_TABLE`
    /// (default `Items`). The adapter component reads the same variables
    /// with the same rules ([`Config::from_env_with`]).
    pub fn from_env() -> Result<Self, DynamoDbConfigError> {
        let protocol = Config::from_env_with(|name| std::env::var(name).ok())?;
        Ok(Self::with_protocol(protocol))
    }

    /// As the AWS SDKs find credentials: the static keys of
    /// [`DynamoDbConfig::from_env`] when `AWS_ACCESS_KEY_ID` is set, else
    /// the SDKs' default chain (profiles, web identity, container and
    /// instance credentials; see the `credentials` module), asked once
    /// now, so that a service without credentials fails at start, and then
    /// renewed before they expire. The region comes from `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, else the profile or the instance metadata.
    pub async fn from_default_chain() -> Result<Self, DynamoDbConfigError> {
        let lookup = |name: &str| std::env::var(name).ok();
        if Config::credentials_from_env_with(lookup)?.is_some() {
            return Self::from_env();
        }
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let region = match from_env("AWS_REGION").or_else(|| from_env("AWS_DEFAULT_REGION")) {
            Some(region) => region,
            None => credentials::default_region()
                .await
                .ok_or(DynamoDbConfigError::NoRegion)?,
        };
        let chain = CachedChain::new(region.trim()).await;
        let first = chain
            .current(std::time::SystemTime::now())
            .await
            .map_err(|e| match e {
                item_store::StoreError::Unauthorized(message) => {
                    DynamoDbConfigError::NoCredentials(message)
                }
                other => DynamoDbConfigError::NoCredentials(other.to_string()),
            })?;
        let protocol = Config::from_env_with_credentials(
            |name| match name {
                "AWS_REGION" => Some(region.clone()),
                _ => lookup(name),
            },
            first,
        )?;
        Ok(Self {
            credentials: CredentialSource::Chain(Arc::new(chain)),
            ..Self::with_protocol(protocol)
        })
    }

    /// Another endpoint, such as DynamoDB Local (`http://127.0.0.1:8000`).
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, DynamoDbConfigError> {
        self.protocol = self.protocol.with_endpoint(endpoint)?;
        Ok(self)
    }

    /// Another table than `Items`.
    pub fn with_table(mut self, table: &str) -> Result<Self, DynamoDbConfigError> {
        self.protocol = self.protocol.with_table(table)?;
        Ok(self)
    }

    /// Time allowed to open a connection, and for a whole request.
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// Resends of one call after transient failures (0 disables them).
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.retry.max_attempts = retries.saturating_add(1);
        self
    }

    /// The table the store uses.
    pub fn table(&self) -> &str {
        self.protocol.table()
    }

    /// The endpoint requests go to (for logs: it carries no credential).
    pub fn endpoint(&self) -> &str {
        self.protocol.endpoint()
    }
}

/// An [`ItemStore`] on a DynamoDB table. Cheap to clone; clones share the
/// connection pool.
#[derive(Clone)]
pub struct DynamoDbStore {
    inner: Arc<Inner>,
    /// Told of every backend attempt (the host's metrics).
    observer: Option<Arc<dyn sansio::Observer>>,
}

struct Inner {
    protocol: DynamoDb,
    credentials: CredentialSource,
    transport: ReqwestTransport,
    retry: RetryPolicy,
    /// Write times from this process strictly increase: `createdAt` orders
    /// the indexes, and equal times would leave the order of ties to
    /// DynamoDB.
    clock: WriteClock,
}

impl std::fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbStore")
            .field("endpoint", &self.inner.protocol.config().endpoint())
            .field("table", &self.inner.protocol.config().table())
            .finish()
    }
}

impl DynamoDbStore {
    /// A store with its own connection pool and the config's timeouts.
    pub fn new(config: DynamoDbConfig) -> Result<Self, DynamoDbConfigError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|_| DynamoDbConfigError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                protocol: DynamoDb::new(config.protocol),
                credentials: config.credentials,
                transport: ReqwestTransport::new(http, config.request_timeout),
                retry: config.retry,
                clock: WriteClock::new(),
            }),
            observer: None,
        })
    }

    /// The same store, telling `observer` of every attempt at DynamoDB
    /// (calls, retries and failures, for metrics).
    pub fn observed(mut self, observer: Arc<dyn sansio::Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Creates the table with its indexes if it is absent, waits until
    /// all are ACTIVE, and enables TTL on `expiresAt`. Safe to repeat.
    pub async fn provision(&self) -> StoreResult<Provisioned> {
        self.run(self.inner.protocol.provision()).await
    }

    /// Gives `__userStatus__` to the items written before the store kept
    /// it (those with `userId` and `status` and without the key), so that
    /// `byUserStatus` lists them: one Scan of the whole table and one
    /// conditional UpdateItem per such item, one at a time. Safe while
    /// serving, and idempotent. Run it once the table and its indexes are
    /// ACTIVE (after [`DynamoDbStore::provision`]).
    pub async fn backfill_user_status(&self) -> StoreResult<Backfilled> {
        self.run(self.inner.protocol.backfill_user_status()).await
    }

    /// A write time later than any this store handed out before.
    fn now(&self) -> item_store::Timestamp {
        self.inner.clock.now()
    }

    /// Drives an operation to its end (see the crate docs for retries).
    /// Signs with the current credentials (renewed ones, from the chain).
    async fn run<O: Operation + Send>(&self, operation: O) -> StoreResult<O::Output> {
        let inner = &self.inner;
        let observer = self.observer.as_deref();
        let renewed = inner.credentials.current().await?;
        let protocol = match renewed {
            None => std::borrow::Cow::Borrowed(&inner.protocol),
            Some(credentials) => {
                std::borrow::Cow::Owned(inner.protocol.with_credentials(credentials))
            }
        };
        let (retry, transport) = (inner.retry, &inner.transport);
        sansio::drive_async_observed(protocol.as_ref(), retry, transport, operation, observer).await
    }
}

#[async_trait]
impl ItemStore for DynamoDbStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        self.run(self.inner.protocol.get(id, self.now())).await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.run(self.inner.protocol.create(item, self.now())).await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(self.inner.protocol.put(item, expected_version, self.now()))
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
            self.inner
                .protocol
                .update(id, &patch, expected_version, self.now()),
        )
        .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let expected_version = expected_version.map(str::to_owned);
        self.run(self.inner.protocol.delete(id, expected_version, self.now()))
            .await
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.run(
            self.inner
                .protocol
                .increment(id, attribute, delta, self.now()),
        )
        .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        self.run(self.inner.protocol.batch(writes, self.now()))
            .await
    }

    async fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        self.run(self.inner.protocol.apply_once(write, once, self.now()))
            .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.run(self.inner.protocol.query(query, self.now())).await
    }

    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        self.run(self.inner.protocol.scan(request, self.now()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_credentials() {
        let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI", None).unwrap();
        let config = DynamoDbConfig::new("us-east-1", credentials)
            .unwrap()
            .with_endpoint("http://127.0.0.1:8000")
            .unwrap()
            .with_table("Items-test")
            .unwrap()
            .with_max_retries(2);
        assert_eq!(config.retry.max_attempts, 3);
        let text = format!("{config:?}");
        assert!(
            !text.contains("AKIDEXAMPLE") && !text.contains("wJalr"),
            "{text}"
        );
        assert_eq!(config.table(), "Items-test");
        let store = DynamoDbStore::new(config).unwrap();
        assert!(format!("{store:?}").contains("127.0.0.1:8000"));
    }

    #[test]
    fn times_strictly_increase() {
        let credentials = Credentials::new("a", "b", None).unwrap();
        let store =
            DynamoDbStore::new(DynamoDbConfig::new("us-east-1", credentials).unwrap()).unwrap();
        let times: Vec<_> = (0..1000).map(|_| store.now()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }
}
