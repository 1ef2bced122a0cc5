//! The row layout: the columns of an item, its parameters and its mapping
//! back from a result row.

use item_model::{Item, NewItem, StoreError};

use crate::codec;
use crate::executor::{Row, SqlValue};

/// The columns of an item, in the order [`stored`] reads them.
pub(crate) const COLUMNS: &str =
    "id, created_at, updated_at, version, user_id, status, expires_at, attributes";

pub(crate) fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

pub(crate) fn integer(value: i64) -> SqlValue {
    SqlValue::Integer(value)
}

pub(crate) fn optional_text(value: Option<&str>) -> SqlValue {
    value.map_or(SqlValue::Null, text)
}

pub(crate) fn optional_integer(value: Option<i64>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::Integer)
}

/// The caller-owned fields of an item as parameters: `user_id`, `status`,
/// `expires_at`, `attributes`.
pub(crate) fn owned_fields(
    user_id: Option<&str>,
    status: Option<&str>,
    expires_at: Option<i64>,
    attributes: &[item_model::Attribute],
) -> [SqlValue; 4] {
    [
        optional_text(user_id),
        optional_text(status),
        optional_integer(expires_at),
        text(&codec::encode(attributes)),
    ]
}

/// [`owned_fields`] of a new item.
pub(crate) fn new_item_fields(item: &NewItem) -> [SqlValue; 4] {
    owned_fields(
        item.user_id.as_deref(),
        item.status.as_deref(),
        item.expires_at,
        &item.attributes,
    )
}

/// An item as read from its row, with its version as a number.
pub(crate) struct Stored {
    pub item: Item,
    pub version: i64,
}

/// A row that does not hold an item as this code writes them.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// This column is missing or of the wrong type.
    #[error("the items table holds a damaged row (column `{0}`)")]
    Damaged(&'static str),
    /// The attributes column does not decode.
    #[error("the items table holds a damaged row: {0}")]
    Attributes(#[from] codec::DecodeError),
}

impl From<RowError> for StoreError {
    fn from(e: RowError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// The item of a row selected or returned with [`COLUMNS`].
pub(crate) fn stored(row: Row) -> Result<Stored, RowError> {
    let mut values = row.into_iter();
    let mut next = |column| values.next().ok_or(RowError::Damaged(column));
    let required_text = |value, column| match value {
        SqlValue::Text(text) => Ok(text),
        _ => Err(RowError::Damaged(column)),
    };
    let optional_text = |value, column| match value {
        SqlValue::Text(text) => Ok(Some(text)),
        SqlValue::Null => Ok(None),
        _ => Err(RowError::Damaged(column)),
    };
    let id = required_text(next("id")?, "id")?;
    let created_at = required_text(next("created_at")?, "created_at")?;
    let updated_at = required_text(next("updated_at")?, "updated_at")?;
    let SqlValue::Integer(version) = next("version")? else {
        return Err(RowError::Damaged("version"));
    };
    let user_id = optional_text(next("user_id")?, "user_id")?;
    let status = optional_text(next("status")?, "status")?;
    let expires_at = match next("expires_at")? {
        SqlValue::Integer(seconds) => Some(seconds),
        SqlValue::Null => None,
        _ => return Err(RowError::Damaged("expires_at")),
    };
    let attributes = codec::decode(&required_text(next("attributes")?, "attributes")?)?;
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

/// The idempotency record of a row selected as `fingerprint, expires_at,
/// written`.
pub(crate) fn record(row: Row) -> Result<item_model::once::Record, RowError> {
    let mut values = row.into_iter();
    match (values.next(), values.next(), values.next()) {
        (
            Some(SqlValue::Text(fingerprint)),
            Some(SqlValue::Integer(expires_at)),
            Some(SqlValue::Text(written)),
        ) => Ok(item_model::once::Record {
            fingerprint,
            expires_at,
            written,
        }),
        _ => Err(RowError::Damaged("idempotency")),
    }
}

/// The integer in the first column of the first row, if any.
pub(crate) fn first_integer(rows: &[Row]) -> Option<i64> {
    match rows.first()?.first()? {
        SqlValue::Integer(n) => Some(*n),
        _ => None,
    }
}

/// The `created_at` and version of a `RETURNING created_at, version`.
pub(crate) fn created_and_version(rows: Vec<Row>) -> Result<Option<(String, i64)>, RowError> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut values = row.into_iter();
    match (values.next(), values.next()) {
        (Some(SqlValue::Text(created_at)), Some(SqlValue::Integer(version))) => {
            Ok(Some((created_at, version)))
        }
        (Some(SqlValue::Text(_)), _) => Err(RowError::Damaged("version")),
        _ => Err(RowError::Damaged("created_at")),
    }
}
