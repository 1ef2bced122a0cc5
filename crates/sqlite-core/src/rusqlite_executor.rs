//! The core on a rusqlite connection (feature `rusqlite`): what the
//! embedded store runs it on, and what the tests use. Statements are
//! prepared once per connection and cached.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql};

use crate::executor::{Executor, Row, SqlError, SqlValue};

impl Executor for Connection {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        Ok(run(self, sql, params)?)
    }
}

/// For a store's own calls around the core (transactions, connections).
impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        sql_error(&e)
    }
}

fn run(conn: &Connection, sql: &str, params: &[SqlValue]) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(
            (0..columns)
                .map(|index| row.get_ref(index).map(sql_value))
                .collect::<rusqlite::Result<Row>>()?,
        );
    }
    Ok(out)
}

fn sql_value(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(n) => SqlValue::Integer(n),
        ValueRef::Real(x) => SqlValue::Real(x),
        // Text that is not UTF-8 is no text this code wrote: the row
        // mapping reports it as damaged.
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => SqlValue::Text(text.to_owned()),
            Err(_) => SqlValue::Blob(bytes.to_vec()),
        },
        ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
    }
}

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Integer(n) => ValueRef::Integer(*n),
            SqlValue::Real(x) => ValueRef::Real(*x),
            SqlValue::Text(text) => ValueRef::Text(text.as_bytes()),
            SqlValue::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

/// Busy and IO-level trouble may pass with a retry; anything else is
/// classified by its message.
fn sql_error(e: &rusqlite::Error) -> SqlError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            SqlError::Unavailable(format!("the SQLite database is busy: {e}"))
        }
        Some(
            ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory,
        ) => SqlError::Unavailable(format!("the SQLite database failed: {e}")),
        _ => SqlError::from_message(format!("SQLite: {e}")),
    }
}
