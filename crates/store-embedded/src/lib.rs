//! The embedded default store: every item in one local SQLite file.
//!
//! It needs no server and no account, so `edge-items serve` works out of the
//! box; the semantics are those of `wit/item-store.wit`, the same as the
//! cloud backends. The schema, the SQL and the operations are
//! `sqlite-core`'s, shared with the Spin adapter, so either reads a file the
//! other wrote. What this crate adds is the file and its connections:
//! writes go through one connection behind a mutex, so writes of this
//! process never race, and each is one atomic statement, so neither do
//! those of another process on the same file; a batch runs in one
//! `BEGIN IMMEDIATE` transaction (fewer commits, and all or nothing). Reads
//! use a small pool of their own connections, which WAL mode lets run
//! beside the writer. SQLite calls block, so every operation runs on
//! tokio's blocking pool.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use item_store::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, ItemStore, NewItem, Once, Page, PutOutcome,
    Query, ScanPage, ScanRequest, StoreError, StoreResult, Timestamp, Write, WriteClock,
};
use rusqlite::{Connection, TransactionBehavior};
use sqlite_core::{Items, MigrateError, SqlError};

/// Reader connections kept open between reads; more are opened on demand.
const IDLE_READERS: usize = 4;
/// How long a connection waits for another process holding the file's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often writes also delete expired rows (they are hidden before that).
const PURGE_INTERVAL_SECONDS: i64 = 60;

/// Why the database file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file's parent directory could not be created.
    #[error("cannot create the directory for {path}: {source}")]
    Directory {
        /// The database file.
        path: PathBuf,
        /// Why creating its directory failed.
        source: std::io::Error,
    },
    /// SQLite could not open or set up the file.
    #[error("cannot open the item database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// The file was written by a newer release of edge-items.
    #[error(
        "the item database {path} has schema version {found}, newer than this program's \
         ({supported}); use a newer edge-items"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The file's schema version.
        found: i64,
        /// The newest this program knows ([`sqlite_core::schema::VERSION`]).
        supported: i64,
    },
    /// Bringing the schema up to date failed.
    #[error("cannot migrate the item database {path}: {source}")]
    Schema {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        source: MigrateError,
    },
}

/// An [`ItemStore`] on a local SQLite file. Cheap to clone; clones share
/// the connections.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
    /// Write times, strictly increasing even when the wall clock stalls or
    /// steps back.
    clock: WriteClock,
}

struct Writer {
    conn: Connection,
    /// When (epoch seconds) the next write also purges expired rows.
    next_purge: i64,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a closure leaves no half-done transaction behind (it
    // rolls back on drop), so the connection is still good after poisoning.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How hard a commit waits for the disk (SQLite's `synchronous` in WAL
/// mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives a power failure
    /// or an operating-system crash; each commit waits for an fsync of the
    /// WAL.
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster commits that survive the process
    /// crashing, but the last commits before a power failure or an OS crash
    /// can be lost (already acknowledged to clients). The database stays
    /// consistent either way.
    Normal,
}

/// Whether a write runs in a transaction of its own.
#[derive(Clone, Copy)]
enum Scope {
    /// One statement, atomic by itself.
    Statement,
    /// Several statements, committed together.
    Transaction,
}

impl EmbeddedStore {
    /// Opens the database at `path` with [`Durability::Full`], creating it
    /// (and its directory) if needed and migrating its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`EmbeddedStore::open`] with the durability of commits chosen.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
                path: path.clone(),
                source,
            })?;
        }
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        configure(&conn, durability).map_err(sqlite)?;
        // In one transaction, so that two processes opening a new file at
        // once do not both migrate it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        match sqlite_core::migrate(&*tx) {
            Ok(()) => tx.commit().map_err(sqlite)?,
            Err(MigrateError::Newer { found, supported }) => {
                return Err(OpenError::NewerSchema {
                    path,
                    found,
                    supported,
                });
            }
            Err(source) => return Err(OpenError::Schema { path, source }),
        }
        Ok(Self {
            shared: Arc::new(Shared {
                writer: Mutex::new(Writer {
                    conn,
                    next_purge: 0,
                }),
                readers: Mutex::new(Vec::new()),
                clock: WriteClock::new(),
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `op` on the writer connection, alone among this process's
    /// writes; now and then a successful write also purges expired rows.
    async fn write<T, F>(&self, scope: Scope, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Items<'_, Connection>) -> StoreResult<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        run_blocking(move || {
            let mut writer = lock(&shared.writer);
            let out = match scope {
                Scope::Statement => op(&Items::new(&writer.conn, &shared.clock))?,
                Scope::Transaction => {
                    let tx = writer
                        .conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(SqlError::from)?;
                    let out = op(&Items::new(&*tx, &shared.clock))?;
                    tx.commit().map_err(SqlError::from)?;
                    out
                }
            };
            let now = Timestamp::now();
            if now.unix_seconds() >= writer.next_purge {
                writer.next_purge = now.unix_seconds() + PURGE_INTERVAL_SECONDS;
                match Items::new(&writer.conn, &shared.clock).purge_expired(now) {
                    Ok(0) => {}
                    Ok(count) => tracing::debug!(count, "purged expired items"),
                    Err(e) => tracing::warn!(error = %e, "could not purge expired items"),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Runs `op` on a pooled reader connection.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Items<'_, Connection>) -> StoreResult<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        run_blocking(move || {
            let idle = lock(&shared.readers).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open_reader(&shared.path).map_err(SqlError::from)?,
            };
            let out = op(&Items::new(&conn, &shared.clock));
            let mut readers = lock(&shared.readers);
            if readers.len() < IDLE_READERS {
                readers.push(conn);
            }
            out
        })
        .await
    }
}

async fn run_blocking<T, F>(op: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> StoreResult<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Backend(
            "an embedded database operation was aborted".into(),
        )),
    }
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers run beside the writer.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the item database could not switch to WAL mode");
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

#[async_trait]
impl ItemStore for EmbeddedStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        let id = id.to_owned();
        self.read(move |items| items.get(&id)).await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.write(Scope::Statement, move |items| items.create(item))
            .await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let expected_version = expected_version.map(str::to_owned);
        self.write(Scope::Statement, move |items| {
            items.put(item, expected_version.as_deref())
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        let (id, expected_version) = (id.to_owned(), expected_version.map(str::to_owned));
        self.write(Scope::Statement, move |items| {
            items.update(&id, &patch, expected_version.as_deref())
        })
        .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let (id, expected_version) = (id.to_owned(), expected_version.map(str::to_owned));
        self.write(Scope::Statement, move |items| {
            items.delete(&id, expected_version.as_deref())
        })
        .await
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        let (id, attribute) = (id.to_owned(), attribute.to_owned());
        self.write(Scope::Statement, move |items| {
            items.increment(&id, &attribute, delta)
        })
        .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        // One transaction for speed; the contract allows but does not
        // promise atomicity.
        self.write(Scope::Transaction, move |items| items.batch(writes))
            .await
    }

    async fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        // The record is written in the write's own transaction: both are
        // kept, or neither.
        self.write(Scope::Transaction, move |items| {
            items.apply_once(write, &once)
        })
        .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.read(move |items| items.query(&query)).await
    }

    async fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        self.read(move |items| items.scan(&request)).await
    }
}
