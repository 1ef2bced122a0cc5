//! Which backend keeps the items, chosen on the command line.
//!
//! Adding a backend is local to this file: a [`StoreKind`] variant, its
//! flags in [`StoreArgs`], and one match arm in [`StoreArgs::open`] that
//! builds an `Arc<dyn ItemStore>`. Cloud credentials come from the
//! standard environment variables of each cloud (see docs/aws.md and
//! docs/gcp.md), never from flags, so they stay out of shell history and
//! process listings.

use std::path::PathBuf;
use std::sync::Arc;

use item_store::ItemStore;

use crate::metrics::Metrics;
use store_dynamodb::{DynamoDbConfig, DynamoDbStore};
use store_embedded::EmbeddedStore;
use store_firestore::{FirestoreConfig, FirestoreStore};

/// The storage backends this binary can serve from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A local SQLite file (see `--data`); needs nothing else.
    Embedded,
    /// An Amazon DynamoDB table (AWS_* variables, `--dynamodb-*` flags).
    #[value(name = "dynamodb")]
    DynamoDb,
    /// A Google Cloud Firestore collection (FIRESTORE_EMULATOR_HOST or
    /// GOOGLE_APPLICATION_CREDENTIALS, `--firestore-*` flags).
    Firestore,
    /// No native store: the component brings its own (an api component
    /// composed with a storage adapter component).
    None,
}

/// `--embedded-sync`: SQLite's `synchronous` for the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbeddedSync {
    /// Every commit waits for the disk (`synchronous=FULL`).
    Full,
    /// Commits survive a process crash, not a power failure
    /// (`synchronous=NORMAL`).
    Normal,
}

/// Time to open a connection to a cloud backend, at most (and at most the
/// backend timeout).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The store flags of `edge-items serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Which backend keeps the items.
    #[arg(
        long = "store",
        env = "EDGE_ITEMS_STORE",
        value_enum,
        default_value_t = StoreKind::Embedded
    )]
    pub kind: StoreKind,

    /// The embedded store's database file (created if missing).
    #[arg(
        long,
        env = "EDGE_ITEMS_DATA",
        value_name = "FILE",
        default_value = ".data/items.db"
    )]
    pub data: PathBuf,

    /// How the embedded store commits: `full` waits for the disk, so an
    /// acknowledged write survives a power failure; `normal` is faster and
    /// survives a crash of the process, but may lose the last acknowledged
    /// writes if the machine loses power.
    #[arg(
        long,
        env = "EDGE_ITEMS_EMBEDDED_SYNC",
        value_enum,
        default_value_t = EmbeddedSync::Full
    )]
    pub embedded_sync: EmbeddedSync,

    /// How long one request to DynamoDB or Firestore may take before it
    /// counts as failed (and is resent when that is safe) [default: 10s
    /// for DynamoDB, 30s for Firestore].
    #[arg(
        long,
        env = "EDGE_ITEMS_BACKEND_TIMEOUT",
        value_name = "DURATION",
        value_parser = crate::limits::parse_timeout
    )]
    pub backend_timeout: Option<std::time::Duration>,

    /// `--dynamodb-*`, used with `--store dynamodb`.
    #[command(flatten)]
    pub dynamodb: DynamoDbArgs,

    /// `--firestore-*`, used with `--store firestore`.
    #[command(flatten)]
    pub firestore: FirestoreArgs,
}

/// Where the DynamoDB table is; credentials and region come from the
/// standard AWS variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DynamoDbArgs {
    /// The table [default: EDGE_ITEMS_DYNAMODB_TABLE, else `Items`].
    #[arg(long = "dynamodb-table", value_name = "NAME")]
    pub table: Option<String>,

    /// Endpoint override, e.g. DynamoDB Local at http://127.0.0.1:8000
    /// [default: AWS_ENDPOINT_URL_DYNAMODB, else the region's endpoint].
    #[arg(long = "dynamodb-endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
}

impl DynamoDbArgs {
    /// The environment's configuration, with credentials found as the AWS
    /// SDKs find them, and these flags on top.
    pub async fn config(&self) -> Result<DynamoDbConfig, OpenStoreError> {
        let mut config = DynamoDbConfig::from_default_chain().await.map_err(other)?;
        if let Some(endpoint) = &self.endpoint {
            config = config.with_endpoint(endpoint).map_err(other)?;
        }
        if let Some(table) = &self.table {
            config = config.with_table(table).map_err(other)?;
        }
        Ok(config)
    }
}

/// Which Firestore database; the emulator or the service-account key come
/// from FIRESTORE_EMULATOR_HOST / GOOGLE_APPLICATION_CREDENTIALS.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FirestoreArgs {
    /// The Google Cloud project [default: GOOGLE_CLOUD_PROJECT, else the
    /// key's project].
    #[arg(long = "firestore-project", value_name = "PROJECT")]
    pub project: Option<String>,

    /// The collection [default: FIRESTORE_COLLECTION, else `items`].
    #[arg(long = "firestore-collection", value_name = "NAME")]
    pub collection: Option<String>,
}

impl FirestoreArgs {
    /// The environment's configuration (Application Default Credentials)
    /// with these flags on top.
    pub fn config(&self) -> Result<FirestoreConfig, OpenStoreError> {
        let mut builder = FirestoreConfig::builder_from_env();
        if let Some(project) = &self.project {
            builder = builder.project_id(project);
        }
        if let Some(collection) = &self.collection {
            builder = builder.collection(collection);
        }
        builder.build().map_err(other)
    }
}

/// Why the chosen store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The embedded store's file could not be opened or migrated.
    #[error(transparent)]
    Embedded(#[from] store_embedded::OpenError),
    /// For backends whose setup errors need no variant of their own.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> OpenStoreError {
    OpenStoreError::Other(Box::new(e))
}

impl StoreArgs {
    /// Opens the chosen backend, counting its backend calls in `metrics`;
    /// `None` when the component brings its own.
    pub async fn open(
        &self,
        metrics: &Arc<Metrics>,
    ) -> Result<Option<Arc<dyn ItemStore>>, OpenStoreError> {
        Ok(Some(match self.kind {
            StoreKind::Embedded => {
                let path = self.data.clone();
                let durability = match self.embedded_sync {
                    EmbeddedSync::Full => store_embedded::Durability::Full,
                    EmbeddedSync::Normal => store_embedded::Durability::Normal,
                };
                // Opening may create and migrate the file: blocking work.
                let store =
                    tokio::task::spawn_blocking(move || EmbeddedStore::open_with(path, durability))
                        .await
                        .map_err(other)??;
                tracing::info!(path = %store.path().display(), "using the embedded store");
                Arc::new(store)
            }
            StoreKind::DynamoDb => {
                let mut config = self.dynamodb.config().await?;
                if let Some(timeout) = self.backend_timeout {
                    config = config.with_timeouts(CONNECT_TIMEOUT.min(timeout), timeout);
                }
                tracing::info!(
                    table = config.table(),
                    endpoint = config.endpoint(),
                    "using DynamoDB"
                );
                let store = DynamoDbStore::new(config).map_err(other)?;
                Arc::new(store.observed(metrics.backend_observer("dynamodb")))
            }
            StoreKind::Firestore => {
                let mut config = self.firestore.config()?;
                if let Some(timeout) = self.backend_timeout {
                    config.request_timeout = timeout;
                    config.connect_timeout = CONNECT_TIMEOUT.min(timeout);
                }
                tracing::info!("using Firestore");
                let store = FirestoreStore::connect(config).await.map_err(other)?;
                Arc::new(store.observed(metrics.backend_observer("firestore")))
            }
            StoreKind::None => {
                tracing::info!("no native store: the component brings its own");
                return Ok(None);
            }
        }))
    }
}
