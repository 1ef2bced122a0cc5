//! Which backend keeps the items, chosen on the command line.
//!
//! Adding a backend is local to this file: a [`StoreKind`] variant, its
//! flags in [`StoreArgs`] (with an `EDGE_ITEMS_*` env var each), and one
//! match arm in [`StoreArgs::open`] that builds an `Arc<dyn ItemStore>`.

use std::path::PathBuf;
use std::sync::Arc;

use item_store::ItemStore;
use store_embedded::EmbeddedStore;

/// The storage backends this binary can serve from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A local SQLite file (see `--data`); needs nothing else.
    Embedded,
}

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
}

/// Why the chosen store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error(transparent)]
    Embedded(#[from] store_embedded::OpenError),
    /// For backends whose setup errors need no variant of their own.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreArgs {
    /// Opens the chosen backend.
    pub async fn open(&self) -> Result<Arc<dyn ItemStore>, OpenStoreError> {
        Ok(match self.kind {
            StoreKind::Embedded => {
                let path = self.data.clone();
                // Opening may create and migrate the file: blocking work.
                let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(path))
                    .await
                    .map_err(|e| OpenStoreError::Other(Box::new(e)))??;
                tracing::info!(path = %store.path().display(), "using the embedded store");
                Arc::new(store)
            }
        })
    }
}
