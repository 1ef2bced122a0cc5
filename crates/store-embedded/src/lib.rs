//! The embedded default store: every item in one local SQLite file.
//!
//! It needs no server and no account, so `edge-items serve` works out of the
//! box; the semantics are those of `wit/item-store.wit`, the same as the
//! cloud backends. Writes go through one connection behind a mutex, each in
//! a `BEGIN IMMEDIATE` transaction, which makes conditional writes and
//! increments exact under any concurrency; reads use a small pool of their
//! own connections, which WAL mode lets run beside the writer. SQLite calls
//! block, so every operation runs on tokio's blocking pool.

mod codec;
mod schema;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use item_store::{
    BatchResult, BatchWrite, Cursor, IndexKey, Item, ItemPatch, ItemStore, NewItem, Order, Page,
    PutOutcome, Query, StoreError, StoreResult, Timestamp, Value,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Reader connections kept open between reads; more are opened on demand.
const IDLE_READERS: usize = 4;
/// How long a connection waits for another process holding the file's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often writes also delete expired rows (they are hidden before that).
const PURGE_INTERVAL_SECONDS: i64 = 60;

/// Why the database file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the directory for {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the item database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the item database {path} has schema version {found}, newer than this program's \
         ({supported}); use a newer edge-items"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
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
}

struct Writer {
    conn: Connection,
    /// Last timestamp handed out, so that write times strictly increase even
    /// when the clock stalls or steps back.
    last_micros: i64,
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

/// The time of one operation: the text written into items, and the epoch
/// seconds that decide expiry.
#[derive(Clone)]
struct Now {
    text: String,
    seconds: i64,
}

impl Now {
    fn at(timestamp: Timestamp) -> Self {
        Self {
            text: timestamp.to_string(),
            seconds: timestamp.unix_seconds(),
        }
    }
}

/// A failure inside a blocking operation, turned into a [`StoreError`] at
/// the boundary (the orphan rule forbids `From<rusqlite::Error>` for it).
enum Fail {
    Store(StoreError),
    Db(rusqlite::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<item_store::CursorError> for Fail {
    fn from(e: item_store::CursorError) -> Self {
        Fail::Store(e.into())
    }
}

impl From<Fail> for StoreError {
    fn from(fail: Fail) -> Self {
        match fail {
            Fail::Store(e) => e,
            Fail::Db(e) => db_error(&e),
        }
    }
}

/// A short message for a SQLite failure: busy and IO-level trouble may pass
/// with a retry, anything else is a plain backend error.
fn db_error(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            StoreError::Unavailable("the embedded database is busy".into())
        }
        Some(C::DiskFull | C::SystemIoFailure | C::CannotOpen | C::OutOfMemory) => {
            StoreError::Unavailable(format!("the embedded database failed: {e}"))
        }
        _ => StoreError::Backend(format!("embedded database: {e}")),
    }
}

type Result<T, E = Fail> = std::result::Result<T, E>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a closure leaves no half-done transaction behind (it
    // rolls back on drop), so the connection is still good after poisoning.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating it (and its directory) if
    /// needed and migrating its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
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
        configure(&conn).map_err(sqlite)?;
        match schema::migrate(&mut conn) {
            Ok(()) => {}
            Err(schema::MigrateError::Sqlite(source)) => return Err(sqlite(source)),
            Err(schema::MigrateError::Newer(found)) => {
                return Err(OpenError::NewerSchema {
                    path,
                    found,
                    supported: schema::VERSION,
                });
            }
        }
        Ok(Self {
            shared: Arc::new(Shared {
                writer: Mutex::new(Writer {
                    conn,
                    last_micros: 0,
                    next_purge: 0,
                }),
                readers: Mutex::new(Vec::new()),
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `op` in an immediate (write-locked) transaction on the writer
    /// connection, with a fresh, strictly increasing time.
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Now) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        run_blocking(move || {
            let mut writer = lock(&shared.writer);
            let micros = Timestamp::now()
                .as_micros()
                .max(writer.last_micros.saturating_add(1));
            writer.last_micros = micros;
            let now = Now::at(Timestamp::from_micros(micros));
            let tx = writer
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = op(&tx, &now)?;
            tx.commit()?;
            if now.seconds >= writer.next_purge {
                writer.next_purge = now.seconds + PURGE_INTERVAL_SECONDS;
                purge_expired(&writer.conn, now.seconds);
            }
            Ok(out)
        })
        .await
    }

    /// Runs `op` on a pooled reader connection.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Now) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        run_blocking(move || {
            let idle = lock(&shared.readers).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => open_reader(&shared.path)?,
            };
            let out = op(&conn, &Now::at(Timestamp::now()));
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
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result.map_err(StoreError::from),
        Err(_) => Err(StoreError::Backend(
            "an embedded database operation was aborted".into(),
        )),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers run beside the writer; with WAL, NORMAL sync keeps
    // every commit across an application crash.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the item database could not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Deletes expired rows; best effort, since reads hide them anyway.
fn purge_expired(conn: &Connection, now_seconds: i64) {
    let purged = conn.execute(
        "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        params![now_seconds],
    );
    match purged {
        Ok(0) => {}
        Ok(count) => tracing::debug!(count, "purged expired items"),
        Err(e) => tracing::warn!(error = %e, "could not purge expired items"),
    }
}

/// An item as read from its row, with its version as a number.
struct Stored {
    item: Item,
    version: i64,
}

const COLUMNS: &str =
    "id, created_at, updated_at, version, user_id, status, expires_at, attributes";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let version: i64 = row.get(3)?;
    let attributes: String = row.get(7)?;
    let attributes = codec::decode(&attributes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Stored {
        item: Item {
            id: row.get(0)?,
            created_at: row.get(1)?,
            updated_at: row.get(2)?,
            version: version.to_string(),
            user_id: row.get(4)?,
            status: row.get(5)?,
            expires_at: row.get(6)?,
            attributes,
        },
        version,
    })
}

/// The unexpired item with this id, if any.
fn load(conn: &Connection, id: &str, now: &Now) -> Result<Option<Stored>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM items \
         WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
    ))?;
    Ok(stmt
        .query_row(params![id, now.seconds], from_row)
        .optional()?)
}

/// Writes the whole row, replacing any row with the same id (including an
/// expired one).
fn save(conn: &Connection, item: &Item, version: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    stmt.execute(params![
        item.id,
        item.created_at,
        item.updated_at,
        version,
        item.user_id,
        item.status,
        item.expires_at,
        codec::encode(&item.attributes),
    ])?;
    Ok(())
}

fn remove(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM items WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// Checks `expected` against the current item; an absent item matches no
/// version.
fn check_version(current: Option<&Stored>, expected: Option<&str>) -> Result<()> {
    match (expected, current) {
        (None, _) => Ok(()),
        (Some(expected), Some(current)) if current.item.version == expected => Ok(()),
        (Some(_), current) => {
            Err(StoreError::VersionMismatch(current.map(|c| c.item.version.clone())).into())
        }
    }
}

/// The current item for a conditional write: `not-found` without a
/// condition, `version-mismatch(none)` with one (a condition on an absent
/// item fails like HTTP `If-Match` does).
fn existing(conn: &Connection, id: &str, expected: Option<&str>, now: &Now) -> Result<Stored> {
    let current = load(conn, id, now)?;
    check_version(current.as_ref(), expected)?;
    current.ok_or(Fail::Store(StoreError::NotFound))
}

/// Bumps the store-owned fields of an item being rewritten.
fn touch(stored: &mut Stored, now: &Now) {
    stored.version = stored.version.saturating_add(1);
    stored.item.version = stored.version.to_string();
    stored.item.updated_at.clone_from(&now.text);
}

/// The integer an increment starts from.
fn counter_value(attribute: &str, value: Option<&Value>) -> Result<i64> {
    let literal = match value {
        None => return Ok(0),
        Some(Value::Number(literal)) => literal,
        Some(other) => {
            let kind = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Text(_) => "a string",
                Value::Json(_) => "an array or object",
                Value::Number(_) => "a number",
            };
            return Err(StoreError::invalid(format!(
                "attribute `{attribute}` is {kind}, not a number, so it cannot be incremented"
            ))
            .into());
        }
    };
    literal.parse::<i64>().map_err(|_| {
        let digits = literal.strip_prefix('-').unwrap_or(literal);
        let message = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!(
                "attribute `{attribute}` ({literal}) is outside the range of 64-bit integers, \
                 so it cannot be incremented"
            )
        } else {
            format!(
                "attribute `{attribute}` ({literal}) is not a whole number, so it cannot be \
                 incremented"
            )
        };
        Fail::Store(StoreError::InvalidInput(message))
    })
}

#[async_trait]
impl ItemStore for EmbeddedStore {
    async fn get(&self, id: &str) -> StoreResult<Item> {
        let id = id.to_owned();
        self.read(move |conn, now| {
            load(conn, &id, now)?
                .map(|s| s.item)
                .ok_or(Fail::Store(StoreError::NotFound))
        })
        .await
    }

    async fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.write(move |tx, now| {
            if load(tx, &item.id, now)?.is_some() {
                return Err(StoreError::AlreadyExists.into());
            }
            let item = item.into_item(now.text.clone(), now.text.clone(), "1".into());
            save(tx, &item, 1)?;
            Ok(item)
        })
        .await
    }

    async fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let expected_version = expected_version.map(str::to_owned);
        self.write(move |tx, now| {
            let current = load(tx, &item.id, now)?;
            check_version(current.as_ref(), expected_version.as_deref())?;
            let (created_at, version, outcome) = match current {
                Some(c) => (
                    c.item.created_at,
                    c.version.saturating_add(1),
                    PutOutcome::Replaced,
                ),
                None => (now.text.clone(), 1, PutOutcome::Created),
            };
            let item = item.into_item(created_at, now.text.clone(), version.to_string());
            save(tx, &item, version)?;
            Ok((item, outcome))
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        let expected_version = expected_version.map(str::to_owned);
        let id = id.to_owned();
        self.write(move |tx, now| {
            let mut stored = existing(tx, &id, expected_version.as_deref(), now)?;
            patch.apply_to(&mut stored.item);
            touch(&mut stored, now);
            save(tx, &stored.item, stored.version)?;
            Ok(stored.item)
        })
        .await
    }

    async fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let expected_version = expected_version.map(str::to_owned);
        let id = id.to_owned();
        self.write(move |tx, now| {
            existing(tx, &id, expected_version.as_deref(), now)?;
            remove(tx, &id)
        })
        .await
    }

    async fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        let (id, attribute) = (id.to_owned(), attribute.to_owned());
        self.write(move |tx, now| {
            let mut stored = existing(tx, &id, None, now)?;
            let current = counter_value(&attribute, stored.item.attribute(&attribute))?;
            let next = current.checked_add(delta).ok_or_else(|| {
                StoreError::invalid(format!(
                    "adding {delta} to attribute `{attribute}` ({current}) overflows a 64-bit \
                     integer"
                ))
            })?;
            let value = Value::Number(next.to_string());
            match stored
                .item
                .attributes
                .iter_mut()
                .find(|a| a.name == attribute)
            {
                Some(existing) => existing.value = value,
                None => stored
                    .item
                    .attributes
                    .push(item_store::Attribute::new(attribute, value)),
            }
            touch(&mut stored, now);
            save(tx, &stored.item, stored.version)?;
            Ok(stored.item)
        })
        .await
    }

    async fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        // One transaction for speed; the contract allows but does not
        // promise atomicity.
        self.write(move |tx, now| {
            let mut result = BatchResult::default();
            for write in writes {
                match write {
                    BatchWrite::Put(put) => {
                        let created_at = match &put.created_at {
                            Some(text) => Timestamp::parse(text)
                                .map_err(|e| StoreError::invalid(e.to_string()))?
                                .to_string(),
                            None => now.text.clone(),
                        };
                        let version =
                            load(tx, &put.item.id, now)?.map_or(1, |c| c.version.saturating_add(1));
                        let item =
                            put.item
                                .into_item(created_at, now.text.clone(), version.to_string());
                        save(tx, &item, version)?;
                        result.put.push(item);
                    }
                    BatchWrite::Delete(id) => {
                        remove(tx, &id)?;
                        result.deleted.push(id);
                    }
                }
            }
            Ok(result)
        })
        .await
    }

    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.read(move |conn, now| query_page(conn, &query, now))
            .await
    }
}

/// The statement for a page: `?1` key, `?2` now (seconds), `?3` rows to
/// fetch, and with a cursor `?4`/`?5` the (created_at, id) to resume after.
fn query_sql(key: &IndexKey, order: Order, resume: bool) -> String {
    let column = match key {
        IndexKey::UserId(_) => "user_id",
        IndexKey::Status(_) => "status",
    };
    let (compare, direction) = match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let position = if resume {
        format!("AND (created_at, id) {compare} (?4, ?5)")
    } else {
        String::new()
    };
    format!(
        "SELECT {COLUMNS} FROM items \
         WHERE {column} = ?1 AND (expires_at IS NULL OR expires_at > ?2) {position} \
         ORDER BY created_at {direction}, id {direction} LIMIT ?3"
    )
}

/// One page by keyset on (created_at, id): resuming strictly after the last
/// position shown is what keeps concurrent writes from causing skips or
/// repeats.
fn query_page(conn: &Connection, query: &Query, now: &Now) -> Result<Page> {
    let after = match &query.cursor {
        Some(text) => Some(Cursor::decode_for(text, query)?),
        None => None,
    };
    let mut stmt = conn.prepare_cached(&query_sql(&query.key, query.order, after.is_some()))?;
    let fetch = i64::from(query.limit) + 1;
    let key = query.key.value();
    let rows = match &after {
        Some(c) => stmt.query_map(
            params![key, now.seconds, fetch, c.created_at, c.id],
            from_row,
        )?,
        None => stmt.query_map(params![key, now.seconds, fetch], from_row)?,
    };
    let mut items = rows
        .map(|r| r.map(|s| s.item))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| Cursor::after(query, &last.created_at, &last.id).encode())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
