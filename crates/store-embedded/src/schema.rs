//! The table layout, versioned with `PRAGMA user_version` so that a later
//! release can migrate files written by this one.

use rusqlite::{Connection, TransactionBehavior};

/// The schema version this code writes and reads.
pub const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE items (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    user_id     TEXT,
    status      TEXT,
    expires_at  INTEGER,
    attributes  TEXT NOT NULL
);
-- The two list queries: equality on the key, then keyset order.
CREATE INDEX items_by_user ON items (user_id, created_at, id) WHERE user_id IS NOT NULL;
CREATE INDEX items_by_status ON items (status, created_at, id) WHERE status IS NOT NULL;
-- The purge of expired rows.
CREATE INDEX items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
";

pub enum MigrateError {
    Sqlite(rusqlite::Error),
    /// The file was written by a newer release.
    Newer(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

/// Brings the file to [`VERSION`], in one transaction so that two processes
/// opening a new file at once do not both create the tables.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match found {
        0 => {
            tx.execute_batch(V1)?;
            tx.pragma_update(None, "user_version", VERSION)?;
        }
        VERSION => {}
        newer => return Err(MigrateError::Newer(newer)),
    }
    tx.commit()?;
    Ok(())
}
