//! What the core asks of a store: run one statement.

use item_model::StoreError;

/// One SQLite value, as a parameter or in a result row: the cases of
/// SQLite's storage classes (and of Spin's `fermyon:spin/sqlite` value).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// An IEEE double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes, as stored.
    Blob(Vec<u8>),
}

/// One result row, its values in the order of the statement's columns.
pub type Row = Vec<SqlValue>;

/// Runs SQL for the core: the one thing a SQLite store implements.
pub trait Executor {
    /// Runs `sql`, one statement, with `?N` bound to `params[N - 1]`, and
    /// returns every row it yields (for a write, what its `RETURNING`
    /// names). The statement is atomic on its own: the core never needs
    /// two statements to hold together.
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError>;
}

/// Why a statement failed, as far as the core needs to tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// A table, column or index the statement names is not there: the
    /// database is new or older than this code, and a migration is due.
    #[error("{0}")]
    MissingSchema(String),
    /// The database cannot serve now (busy, locked, full, failing storage);
    /// the same call may pass later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl SqlError {
    /// Classifies a failure that SQLite reported only as text (Spin passes
    /// SQLite's message on, not its error code).
    pub fn from_message(message: impl Into<String>) -> Self {
        let message = message.into();
        let lower = message.to_ascii_lowercase();
        if lower.contains("no such table")
            || lower.contains("no such column")
            || lower.contains("no such index")
        {
            SqlError::MissingSchema(message)
        } else if lower.contains("database is locked")
            || lower.contains("database table is locked")
            || lower.contains("database is busy")
        {
            SqlError::Unavailable(message)
        } else {
            SqlError::Failed(message)
        }
    }
}

impl From<SqlError> for StoreError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Unavailable(message) => StoreError::Unavailable(message),
            SqlError::MissingSchema(message) | SqlError::Failed(message) => {
                StoreError::Backend(message)
            }
        }
    }
}
