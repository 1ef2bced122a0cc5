//! The SQLite connection, the schema and the row layout.
//!
//! Spin opens one SQLite connection per `open` (kept for the instance's
//! life, which is one request); its `execute` runs one statement and
//! returns the rows, so `RETURNING` is how a write reports what it changed.

use std::cell::OnceCell;

use item_model::{Item, StoreError};

pub use crate::bindings::fermyon::spin::sqlite::Value as SqlValue;
use crate::bindings::fermyon::spin::sqlite::{Connection, Error, RowResult};
use crate::codec;

/// The Spin database label; spin.toml grants it with
/// `sqlite_databases = ["default"]`.
const DATABASE: &str = "default";

/// The table and its indexes, the layout of the host's embedded store
/// (crates/store-embedded). One statement each, since `execute` runs one.
const SCHEMA: [&str; 4] = [
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

/// The columns of an item, in the order [`stored`] reads them.
pub const COLUMNS: &str =
    "id, created_at, updated_at, version, user_id, status, expires_at, attributes";

/// One result row.
pub type Row = Vec<SqlValue>;

type Result<T> = std::result::Result<T, StoreError>;

thread_local! {
    /// The instance's connection, opened on first use.
    static CONNECTION: OnceCell<Connection> = const { OnceCell::new() };
}

/// Runs one statement and returns its rows. A database without the table
/// yet gets the schema, and the statement runs again: checking on every
/// call would cost a statement per request.
pub fn rows(sql: &str, parameters: &[SqlValue]) -> Result<Vec<Row>> {
    CONNECTION.with(|cell| {
        let connection = match cell.get() {
            Some(connection) => connection,
            None => {
                let opened = Connection::open(DATABASE).map_err(|e| error(&e))?;
                cell.get_or_init(|| opened)
            }
        };
        match connection.execute(sql, parameters) {
            Ok(result) => Ok(into_rows(result.rows)),
            Err(Error::Io(message)) if message.contains("no such table") => {
                create_schema(connection)?;
                connection
                    .execute(sql, parameters)
                    .map(|result| into_rows(result.rows))
                    .map_err(|e| error(&e))
            }
            Err(e) => Err(error(&e)),
        }
    })
}

fn into_rows(rows: Vec<RowResult>) -> Vec<Row> {
    rows.into_iter().map(|row| row.values).collect()
}

fn create_schema(connection: &Connection) -> Result<()> {
    // WAL lets reads run beside a write; a database that cannot switch
    // (a remote one, or a busy moment) works without it.
    let _ = connection.execute("PRAGMA journal_mode = WAL", &[]);
    for statement in SCHEMA {
        connection.execute(statement, &[]).map_err(|e| error(&e))?;
    }
    Ok(())
}

/// A short message for a SQLite failure: a busy or full database may pass
/// with a retry, anything else is a plain backend error.
fn error(e: &Error) -> StoreError {
    match e {
        Error::NoSuchDatabase | Error::AccessDenied => StoreError::Backend(format!(
            "Spin refused the SQLite database `{DATABASE}`: the component needs \
             `sqlite_databases = [\"{DATABASE}\"]` in spin.toml"
        )),
        Error::DatabaseFull => StoreError::Unavailable("the Spin SQLite database is full".into()),
        Error::InvalidConnection => {
            StoreError::Backend("the Spin SQLite connection is not valid".into())
        }
        Error::Io(message) if message.contains("locked") || message.contains("busy") => {
            StoreError::Unavailable(format!("the Spin SQLite database is busy: {message}"))
        }
        Error::Io(message) => StoreError::Backend(format!("Spin SQLite: {message}")),
    }
}

pub fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

pub fn integer(value: i64) -> SqlValue {
    SqlValue::Integer(value)
}

pub fn optional_text(value: Option<&str>) -> SqlValue {
    value.map_or(SqlValue::Null, text)
}

pub fn optional_integer(value: Option<i64>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::Integer)
}

/// An item as read from its row, with its version as a number.
pub struct Stored {
    pub item: Item,
    pub version: i64,
}

fn damaged(column: &str) -> StoreError {
    StoreError::Backend(format!(
        "the items table holds a damaged row (column `{column}`)"
    ))
}

/// The item of a row selected or returned with [`COLUMNS`].
pub fn stored(row: Row) -> Result<Stored> {
    let mut values = row.into_iter();
    let mut next = |column: &str| values.next().ok_or_else(|| damaged(column));
    let required_text = |value: SqlValue, column: &str| match value {
        SqlValue::Text(text) => Ok(text),
        _ => Err(damaged(column)),
    };
    let optional_text = |value: SqlValue, column: &str| match value {
        SqlValue::Text(text) => Ok(Some(text)),
        SqlValue::Null => Ok(None),
        _ => Err(damaged(column)),
    };
    let id = required_text(next("id")?, "id")?;
    let created_at = required_text(next("created_at")?, "created_at")?;
    let updated_at = required_text(next("updated_at")?, "updated_at")?;
    let SqlValue::Integer(version) = next("version")? else {
        return Err(damaged("version"));
    };
    let user_id = optional_text(next("user_id")?, "user_id")?;
    let status = optional_text(next("status")?, "status")?;
    let expires_at = match next("expires_at")? {
        SqlValue::Integer(seconds) => Some(seconds),
        SqlValue::Null => None,
        _ => return Err(damaged("expires_at")),
    };
    let attributes = required_text(next("attributes")?, "attributes")?;
    let attributes = codec::decode(&attributes).ok_or_else(|| damaged("attributes"))?;
    Ok(Stored {
        item: Item {
            id,
            created_at,
            updated_at,
            version: version.to_string(),
            user_id,
            status,
            expires_at,
            attributes,
        },
        version,
    })
}

/// The integer in the first column of the first row, if any.
pub fn first_integer(rows: &[Row]) -> Option<i64> {
    match rows.first()?.first()? {
        SqlValue::Integer(n) => Some(*n),
        _ => None,
    }
}
