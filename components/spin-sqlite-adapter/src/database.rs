//! Spin's SQLite as sqlite-core's executor.
//!
//! Spin opens one SQLite connection per `open` (kept for the instance's
//! life, which is one request); its `execute` runs one statement and
//! returns the rows, which is all the core asks. A statement refused for a
//! busy database runs once more, after a longer wait for the lock.

use std::cell::OnceCell;

use spin_sdk::sqlite::{Connection, Error, Value};
use sqlite_core::{Executor, Row, SqlError, SqlValue};

/// The Spin database label; spin.toml grants it with
/// `sqlite_databases = ["default"]`.
const DATABASE: &str = "default";

/// How long a connection waits for a lock once it has been refused one.
const LONGER_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 30000";

thread_local! {
    /// The instance's connection, opened on first use.
    static CONNECTION: OnceCell<Connection> = const { OnceCell::new() };
}

/// Spin's SQLite database `default`, through `fermyon:spin/sqlite@2.0.0`.
pub struct SpinDatabase;

impl Executor for SpinDatabase {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        CONNECTION.with(|cell| {
            let connection = match cell.get() {
                Some(connection) => connection,
                None => {
                    let opened = Connection::open(DATABASE).map_err(|e| sql_error(&e))?;
                    cell.get_or_init(|| opened)
                }
            };
            let params: Vec<Value> = params.iter().map(spin_value).collect();
            let result = match connection.execute(sql, &params) {
                // Spin's connection waits 5 s for a lock (rusqlite's
                // default), which a burst of instances, each with its own
                // connection, can outlast on a busy machine. A statement
                // that gave up changed nothing (SQLite rolls it back), so
                // this connection waits longer and runs it once more.
                Err(Error::Io(message)) if is_busy(&message) => {
                    let _ = connection.execute(LONGER_BUSY_TIMEOUT, &[]);
                    connection.execute(sql, &params)
                }
                result => result,
            }
            .map_err(|e| sql_error(&e))?;
            Ok(result
                .rows
                .into_iter()
                .map(|row| row.values.into_iter().map(sql_value).collect())
                .collect())
        })
    }
}

/// Whether SQLite refused the statement for a lock another connection held.
fn is_busy(message: &str) -> bool {
    matches!(SqlError::from_message(message), SqlError::Unavailable(_))
}

fn spin_value(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(n) => Value::Integer(*n),
        SqlValue::Real(x) => Value::Real(*x),
        SqlValue::Text(text) => Value::Text(text.clone()),
        SqlValue::Blob(bytes) => Value::Blob(bytes.clone()),
    }
}

fn sql_value(value: Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Integer(n) => SqlValue::Integer(n),
        Value::Real(x) => SqlValue::Real(x),
        Value::Text(text) => SqlValue::Text(text),
        Value::Blob(bytes) => SqlValue::Blob(bytes),
    }
}

/// What a Spin SQLite failure means to the core: a missing grant says how
/// to fix it, a full or busy database may pass with a retry, and SQLite's
/// own messages (`Io`) are classified by the core.
fn sql_error(e: &Error) -> SqlError {
    match e {
        Error::NoSuchDatabase | Error::AccessDenied => SqlError::Failed(format!(
            "Spin refused the SQLite database `{DATABASE}`: the component needs \
             `sqlite_databases = [\"{DATABASE}\"]` in spin.toml"
        )),
        Error::DatabaseFull => SqlError::Unavailable("the Spin SQLite database is full".into()),
        Error::InvalidConnection => {
            SqlError::Failed("the Spin SQLite connection is not valid".into())
        }
        Error::Io(message) => SqlError::from_message(format!("Spin SQLite: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        let values = [
            SqlValue::Null,
            SqlValue::Integer(i64::MIN),
            SqlValue::Real(-0.5),
            SqlValue::Text("ünï".into()),
            SqlValue::Blob(vec![0, 255]),
        ];
        for value in values {
            assert_eq!(sql_value(spin_value(&value)), value);
        }
    }

    #[test]
    fn errors_say_what_they_mean() {
        for refused in [Error::NoSuchDatabase, Error::AccessDenied] {
            match sql_error(&refused) {
                SqlError::Failed(message) => {
                    assert!(message.contains("sqlite_databases"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            sql_error(&Error::DatabaseFull),
            SqlError::Unavailable(_)
        ));
        assert!(matches!(
            sql_error(&Error::InvalidConnection),
            SqlError::Failed(_)
        ));
        assert!(matches!(
            sql_error(&Error::Io("no such table: items".into())),
            SqlError::MissingSchema(_)
        ));
        assert!(matches!(
            sql_error(&Error::Io("database is locked".into())),
            SqlError::Unavailable(_)
        ));
        assert!(matches!(
            sql_error(&Error::Io("disk I/O error".into())),
            SqlError::Failed(_)
        ));
    }

    #[test]
    fn only_a_lock_held_elsewhere_is_worth_waiting_for() {
        assert!(is_busy("database is locked"));
        assert!(!is_busy("no such table: items"));
        assert!(!is_busy("UNIQUE constraint failed: items.id"));
    }
}
