//! The table layout, versioned with `PRAGMA user_version` so that a later
//! release can migrate files written by this one, whichever store wrote
//! them.
//!
//! Migrations run one statement at a time (Spin's SQLite runs one per call,
//! and a remote database cannot hold a transaction across calls), so every
//! statement of a step must be idempotent: two instances that find the
//! same old version both run the step, and the second changes nothing.
//! The version is set after its step, so a step cut short runs again. A
//! store that can (the embedded one) runs [`migrate`] in a transaction
//! anyway.

use crate::executor::{Executor, SqlError, SqlValue};

/// Step `n` brings a database from version `n` to `n + 1`.
const MIGRATIONS: &[&[&str]] = &[V1, V2, V3];

/// The schema version this code writes and reads.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The items table and its indexes. `IF NOT EXISTS` also adopts the tables
/// that the Spin adapter created before the schema had a version.
pub(crate) const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS items (
        id          TEXT PRIMARY KEY NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        version     INTEGER NOT NULL,
        user_id     TEXT,
        status      TEXT,
        expires_at  INTEGER,
        attributes  TEXT NOT NULL
    )",
    // The two list queries: equality on the key, then keyset order.
    "CREATE INDEX IF NOT EXISTS items_by_user ON items (user_id, created_at, id) \
     WHERE user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS items_by_status ON items (status, created_at, id) \
     WHERE status IS NOT NULL",
    // The purge of expired rows.
    "CREATE INDEX IF NOT EXISTS items_by_expiry ON items (expires_at) \
     WHERE expires_at IS NOT NULL",
];

/// The user-and-status list: both keys by equality, then keyset order. An
/// index of its own, so that one user's items in one status are read
/// without scanning either the user's other items or the status's other
/// users.
pub(crate) const V2: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS items_by_user_status ON items (user_id, status, created_at, id) \
     WHERE user_id IS NOT NULL AND status IS NOT NULL",
];

/// The records of writes applied at most once (`apply-once`): per key, the
/// request's fingerprint, when the record expires, and what the write did
/// (`item_model::once::Written::encode`). Written in the transaction of the
/// write itself.
const V3: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS idempotency (
        key         TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL,
        expires_at  INTEGER NOT NULL,
        written     TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at)",
];

/// Why the schema could not be brought to [`VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// The database was written by a newer release.
    #[error(
        "the item database has schema version {found}, newer than this program's \
         ({supported}); use a newer edge-items"
    )]
    Newer {
        /// The file's `user_version`.
        found: i64,
        /// [`VERSION`].
        supported: i64,
    },
    /// `PRAGMA user_version` holds no version this code ever wrote.
    #[error("the item database has schema version {0}, which no edge-items writes")]
    Unknown(i64),
    /// A statement of the migration failed.
    #[error("migrating the item database failed: {0}")]
    Sql(#[from] SqlError),
}

impl From<MigrateError> for item_model::StoreError {
    fn from(e: MigrateError) -> Self {
        match e {
            MigrateError::Sql(sql) => sql.into(),
            other => item_model::StoreError::Backend(other.to_string()),
        }
    }
}

/// The schema version of the database (0 for a new one).
pub fn version(db: &(impl Executor + ?Sized)) -> Result<i64, SqlError> {
    let rows = db.execute("PRAGMA user_version", &[])?;
    match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(version)) => Ok(*version),
        _ => Err(SqlError::Failed(
            "PRAGMA user_version returned no version".into(),
        )),
    }
}

/// Brings the database to [`VERSION`]; a database at it is left alone.
pub fn migrate(db: &(impl Executor + ?Sized)) -> Result<(), MigrateError> {
    let found = version(db)?;
    let from = match usize::try_from(found) {
        Ok(from) if found <= VERSION => from,
        Ok(_) => {
            return Err(MigrateError::Newer {
                found,
                supported: VERSION,
            });
        }
        Err(_) => return Err(MigrateError::Unknown(found)),
    };
    if from == 0 {
        // A new database: WAL lets reads run beside a write. Best effort,
        // as a database that cannot switch (a remote one, or one inside a
        // transaction) works without it; the mode stays with the file.
        let _ = db.execute("PRAGMA journal_mode = WAL", &[]);
    }
    for (step, statements) in MIGRATIONS.iter().enumerate().skip(from) {
        for statement in *statements {
            db.execute(statement, &[])?;
        }
        // PRAGMA takes no parameters; the number is ours.
        db.execute(&format!("PRAGMA user_version = {}", step + 1), &[])?;
    }
    Ok(())
}
