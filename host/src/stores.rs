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
use store_mirror::{
    MirrorEvent, MirrorObserver, MirrorStore, Outbox, SqliteOutbox, StoreOutbox, WritePolicy,
};

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
    /// A primary store mirrored onto a secondary (`--primary`,
    /// `--secondary`, `--mirror-*`; docs/multi-cloud.md).
    Mirror,
    /// No native store: the component brings its own (an api component
    /// composed with a storage adapter component).
    None,
}

/// `--mirror-writes`: what a write does while the primary is down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MirrorWrites {
    /// Fail with 503, as the primary failed: nothing can conflict.
    #[default]
    Refuse,
    /// Write to the secondary and copy back when the primary returns (last
    /// writer wins; see docs/multi-cloud.md).
    Secondary,
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

    /// `--primary`, `--secondary`, `--mirror-*`, used with `--store mirror`.
    #[command(flatten)]
    pub mirror: MirrorArgs,
}

/// The two stores of `--store mirror` and how it replicates.
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// The store written first and read from: embedded:PATH,
    /// dynamodb:TABLE[@ENDPOINT] or firestore:[PROJECT/]COLLECTION.
    #[arg(long, env = "EDGE_ITEMS_MIRROR_PRIMARY", value_name = "STORE")]
    pub primary: Option<StoreSpec>,

    /// The store every write is replicated to and reads fail over to, named
    /// the same way.
    #[arg(long, env = "EDGE_ITEMS_MIRROR_SECONDARY", value_name = "STORE")]
    pub secondary: Option<StoreSpec>,

    /// Where the mirror lists the items the secondary (or, after writes
    /// during an outage, the primary) may not have yet, drained on start
    /// and in the background: a local file (one serving process per file),
    /// or `primary` to keep it in the primary store itself (for a host
    /// without a lasting disk; two more primary writes per write).
    #[arg(
        long = "mirror-outbox",
        env = "EDGE_ITEMS_MIRROR_OUTBOX",
        value_name = "FILE|primary",
        default_value = ".data/mirror-outbox.db"
    )]
    pub outbox: PathBuf,

    /// What a write does while the primary is down: `refuse` (503) or
    /// `secondary` (written there, copied back later; last writer wins).
    #[arg(
        long = "mirror-writes",
        env = "EDGE_ITEMS_MIRROR_WRITES",
        value_enum,
        default_value_t = MirrorWrites::Refuse
    )]
    pub writes: MirrorWrites,
}

impl MirrorArgs {
    /// Opens both stores of the mirror, with the serving flags' timeout.
    pub async fn open_sides(
        &self,
        metrics: &Arc<Metrics>,
        backend_timeout: Option<std::time::Duration>,
    ) -> Result<(Arc<dyn ItemStore>, Arc<dyn ItemStore>), OpenStoreError> {
        let (Some(primary), Some(secondary)) = (&self.primary, &self.secondary) else {
            return Err(OpenStoreError::Other(
                "--store mirror needs --primary STORE and --secondary STORE".into(),
            ));
        };
        if primary.to_string() == secondary.to_string() {
            return Err(OpenStoreError::Other(
                format!("--primary and --secondary name the same store ({primary})").into(),
            ));
        }
        let primary = primary.open_with(metrics, backend_timeout).await?;
        let secondary = secondary.open_with(metrics, backend_timeout).await?;
        Ok((primary, secondary))
    }

    /// The mirror over both stores; its drainer is started.
    pub async fn open(
        &self,
        metrics: &Arc<Metrics>,
        backend_timeout: Option<std::time::Duration>,
    ) -> Result<MirrorStore, OpenStoreError> {
        if self.writes == MirrorWrites::Secondary && self.outbox.as_os_str() == "primary" {
            return Err(OpenStoreError::Other(
                "--mirror-writes secondary needs the outbox in a file: kept in the primary, it \
                 cannot list the writes taken while the primary is down (use --mirror-outbox FILE)"
                    .into(),
            ));
        }
        let (primary, secondary) = self.open_sides(metrics, backend_timeout).await?;
        let policy = match self.writes {
            MirrorWrites::Refuse => WritePolicy::Refuse,
            MirrorWrites::Secondary => WritePolicy::Secondary,
        };
        let outbox = self
            .outbox(&primary, true)?
            .ok_or_else(|| OpenStoreError::Other("the mirror's outbox was not opened".into()))?;
        let observer = Arc::new(MirrorEvents(metrics.mirror_observer()));
        let mirror = MirrorStore::new(primary, secondary, outbox, policy).observed(observer);
        tracing::info!(
            primary = %self.primary.as_ref().map(ToString::to_string).unwrap_or_default(),
            secondary = %self.secondary.as_ref().map(ToString::to_string).unwrap_or_default(),
            outbox = %self.outbox.display(),
            "using a mirror"
        );
        mirror.spawn_drainer();
        Ok(mirror)
    }

    /// The outbox `--mirror-outbox` names: in `primary`, or a file (created
    /// when `create`, else `None` if there is none).
    pub fn outbox(
        &self,
        primary: &Arc<dyn ItemStore>,
        create: bool,
    ) -> Result<Option<Arc<dyn Outbox>>, OpenStoreError> {
        if self.outbox.as_os_str() == "primary" {
            return Ok(Some(Arc::new(StoreOutbox::new(primary.clone()))));
        }
        if !create && !self.outbox.exists() {
            return Ok(None);
        }
        let outbox = SqliteOutbox::open(&self.outbox).map_err(other)?;
        Ok(Some(Arc::new(outbox)))
    }
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

/// A mirror's events: counted in the metrics, and an answer from the
/// secondary noted for its request's `Edge-Items-Served-By` header.
struct MirrorEvents(Arc<dyn MirrorObserver>);

impl MirrorObserver for MirrorEvents {
    fn event(&self, event: MirrorEvent) {
        if matches!(
            event,
            MirrorEvent::ReadFromSecondary | MirrorEvent::WroteToSecondary
        ) {
            item_store::failover::note_served_by_secondary();
        }
        self.0.event(event);
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
            StoreKind::Mirror => Arc::new(self.mirror.open(metrics, self.backend_timeout).await?),
            StoreKind::None => {
                tracing::info!("no native store: the component brings its own");
                return Ok(None);
            }
        }))
    }
}

/// A store named in one word, for commands that open two (`edge-items
/// migrate --from SPEC --to SPEC`):
///
/// - `embedded:PATH`: the SQLite file at PATH;
/// - `dynamodb:TABLE`, or `dynamodb:TABLE@URL` with an endpoint (DynamoDB
///   Local); region and credentials from the AWS variables;
/// - `firestore:COLLECTION`, or `firestore:PROJECT/COLLECTION`; the emulator
///   or credentials from FIRESTORE_EMULATOR_HOST /
///   GOOGLE_APPLICATION_CREDENTIALS.
///
/// It holds no credential, so it can name a migration in its checkpoint.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    text: String,
    // Boxed: a StoreArgs holds specs itself (`--primary`).
    args: Box<StoreArgs>,
}

/// Why a store spec was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` names no store: use embedded:PATH, dynamodb:TABLE[@ENDPOINT] or firestore:[PROJECT/]COLLECTION"
)]
pub struct StoreSpecError(String);

impl std::str::FromStr for StoreSpec {
    type Err = StoreSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refused = || StoreSpecError(text.to_owned());
        let (kind, rest) = text.split_once(':').ok_or_else(refused)?;
        if rest.is_empty() {
            return Err(refused());
        }
        let mut args = StoreArgs {
            kind: StoreKind::None,
            data: PathBuf::new(),
            embedded_sync: EmbeddedSync::Full,
            backend_timeout: None,
            dynamodb: DynamoDbArgs::default(),
            firestore: FirestoreArgs::default(),
            mirror: MirrorArgs {
                primary: None,
                secondary: None,
                outbox: PathBuf::new(),
                writes: MirrorWrites::Refuse,
            },
        };
        match kind {
            "embedded" => {
                args.kind = StoreKind::Embedded;
                args.data = PathBuf::from(rest);
            }
            "dynamodb" => {
                args.kind = StoreKind::DynamoDb;
                let (table, endpoint) = match rest.split_once('@') {
                    Some((table, endpoint)) => (table, Some(endpoint.to_owned())),
                    None => (rest, None),
                };
                args.dynamodb.table = Some(table.to_owned());
                args.dynamodb.endpoint = endpoint;
            }
            "firestore" => {
                args.kind = StoreKind::Firestore;
                let (project, collection) = match rest.split_once('/') {
                    Some((project, collection)) => (Some(project.to_owned()), collection),
                    None => (None, rest),
                };
                args.firestore.project = project;
                args.firestore.collection = Some(collection.to_owned());
            }
            _ => return Err(refused()),
        }
        Ok(Self {
            text: text.to_owned(),
            args: Box::new(args),
        })
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl StoreSpec {
    /// Opens the store, its backend calls counted in `metrics`.
    pub async fn open(&self, metrics: &Arc<Metrics>) -> Result<Arc<dyn ItemStore>, OpenStoreError> {
        self.open_with(metrics, None).await
    }

    /// Opens the store with this backend timeout (the backend's default
    /// when `None`).
    pub async fn open_with(
        &self,
        metrics: &Arc<Metrics>,
        backend_timeout: Option<std::time::Duration>,
    ) -> Result<Arc<dyn ItemStore>, OpenStoreError> {
        let mut args = self.args.clone();
        args.backend_timeout = backend_timeout;
        // Boxed: `StoreArgs::open` opens specs itself (a mirror's sides).
        let store = Box::pin(args.open(metrics)).await?;
        // Every spec names a native store, so `open` returns one.
        store.ok_or_else(|| OpenStoreError::Other(format!("{self} is no native store").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_each_backend_and_its_place() {
        let spec: StoreSpec = "embedded:.data/old.db".parse().unwrap();
        assert_eq!(
            (spec.args.kind, spec.args.data.clone()),
            (StoreKind::Embedded, PathBuf::from(".data/old.db"))
        );
        let spec: StoreSpec = "dynamodb:Items@http://127.0.0.1:8000".parse().unwrap();
        assert_eq!(spec.args.kind, StoreKind::DynamoDb);
        assert_eq!(spec.args.dynamodb.table.as_deref(), Some("Items"));
        assert_eq!(
            spec.args.dynamodb.endpoint.as_deref(),
            Some("http://127.0.0.1:8000")
        );
        let spec: StoreSpec = "firestore:demo/items".parse().unwrap();
        assert_eq!(spec.args.firestore.project.as_deref(), Some("demo"));
        assert_eq!(spec.args.firestore.collection.as_deref(), Some("items"));
        assert_eq!(spec.to_string(), "firestore:demo/items");
        for bad in ["embedded", "embedded:", "mysql:x", "Items"] {
            let error = bad.parse::<StoreSpec>().unwrap_err();
            assert!(error.to_string().contains("embedded:PATH"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_mirror_refuses_writes_to_the_secondary_with_the_outbox_in_the_primary() {
        let mirror = MirrorArgs {
            primary: Some("embedded:a.db".parse().unwrap()),
            secondary: Some("embedded:b.db".parse().unwrap()),
            outbox: PathBuf::from("primary"),
            writes: MirrorWrites::Secondary,
        };
        let Err(error) = mirror.open(&Arc::new(Metrics::new()), None).await else {
            panic!("opened");
        };
        assert!(
            error.to_string().contains("--mirror-outbox FILE"),
            "{error}"
        );
    }
}
