//! The store operations in `item_model` types (validated by
//! `store_guest`'s export): one SQL statement per write, whose `WHERE` carries the condition.

use std::sync::atomic::{AtomicI64, Ordering};

use item_model::{
    BatchResult, BatchWrite, Cursor, IndexKey, Item, ItemPatch, NewItem, Order, Page, PutOutcome,
    Query, StoreError, Timestamp, Value,
};

use crate::codec;
use crate::db::{
    self, COLUMNS, Stored, first_integer, integer, optional_integer, optional_text, text,
};

type Result<T> = std::result::Result<T, StoreError>;

/// How often a write whose read-modify-write lost a race is tried again
/// before the caller is told to retry.
const ATTEMPTS: usize = 50;

/// The filter that hides expired rows; `?2` is now in epoch seconds.
const UNEXPIRED: &str = "(expires_at IS NULL OR expires_at > ?2)";

/// The time of one operation: the text written into items, and the epoch
/// seconds that decide expiry.
struct Now {
    text: String,
    seconds: i64,
}

/// A write time later than any this instance handed out before.
fn now() -> Now {
    static LAST_MICROS: AtomicI64 = AtomicI64::new(0);
    let clock = Timestamp::now().as_micros();
    let previous = LAST_MICROS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(clock.max(last.saturating_add(1)))
        })
        .unwrap_or(clock);
    let timestamp = Timestamp::from_micros(clock.max(previous.saturating_add(1)));
    Now {
        text: timestamp.to_string(),
        seconds: timestamp.unix_seconds(),
    }
}

/// A version from an `expected-version`: only the exact text of a stored
/// version matches, so `01` is not `1`.
fn version_number(expected: &str) -> Option<i64> {
    expected
        .parse::<i64>()
        .ok()
        .filter(|n| n.to_string() == expected)
}

/// The unexpired item with this id, if any.
fn load(id: &str, now: &Now) -> Result<Option<Stored>> {
    let rows = db::rows(
        &format!("SELECT {COLUMNS} FROM items WHERE id = ?1 AND {UNEXPIRED}"),
        &[text(id), integer(now.seconds)],
    )?;
    rows.into_iter().next().map(db::stored).transpose()
}

/// The error for a conditional write that changed nothing: the current
/// version, or `none` when the item is gone.
fn mismatch(id: &str, now: &Now) -> Result<StoreError> {
    Ok(StoreError::VersionMismatch(
        load(id, now)?.map(|current| current.item.version),
    ))
}

/// Deletes expired rows about once in 64 writes; reads hide them anyway,
/// so this only keeps the file from growing.
fn purge_now_and_then(now: &Now) {
    if Timestamp::now().as_micros() % 64 == 0 {
        let _ = db::rows(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            &[integer(now.seconds)],
        );
    }
}

pub fn get(id: &str) -> Result<Item> {
    load(id, &now())?
        .map(|stored| stored.item)
        .ok_or(StoreError::NotFound)
}

pub fn create(item: NewItem) -> Result<Item> {
    let now = now();
    purge_now_and_then(&now);
    // An expired row with the same id is replaced; a live one stays, and
    // then nothing is returned.
    let rows = db::rows(
        &format!(
            "INSERT INTO items ({COLUMNS}) VALUES (?1, ?3, ?3, 1, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, \
             updated_at = excluded.updated_at, version = 1, user_id = excluded.user_id, \
             status = excluded.status, expires_at = excluded.expires_at, \
             attributes = excluded.attributes \
             WHERE NOT {UNEXPIRED} RETURNING version"
        ),
        &[
            text(&item.id),
            integer(now.seconds),
            text(&now.text),
            optional_text(item.user_id.as_deref()),
            optional_text(item.status.as_deref()),
            optional_integer(item.expires_at),
            text(&codec::encode(&item.attributes)),
        ],
    )?;
    if rows.is_empty() {
        return Err(StoreError::AlreadyExists);
    }
    Ok(item.into_item(now.text.clone(), now.text, "1".into()))
}

/// The parameters `?1` id, `?2` now (seconds), `?3` now (text), `?4`..`?7`
/// the caller-owned fields, in the order the statements below use them.
fn item_parameters(item: &NewItem, now: &Now) -> Vec<db::SqlValue> {
    vec![
        text(&item.id),
        integer(now.seconds),
        text(&now.text),
        optional_text(item.user_id.as_deref()),
        optional_text(item.status.as_deref()),
        optional_integer(item.expires_at),
        text(&codec::encode(&item.attributes)),
    ]
}

/// The `created_at` and version a `RETURNING created_at, version` gave.
fn created_and_version(rows: Vec<db::Row>) -> Result<Option<(String, i64)>> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    match <[db::SqlValue; 2]>::try_from(row) {
        Ok(
            [
                db::SqlValue::Text(created_at),
                db::SqlValue::Integer(version),
            ],
        ) => Ok(Some((created_at, version))),
        _ => Err(StoreError::Backend(
            "Spin SQLite returned an unexpected row".into(),
        )),
    }
}

pub fn put(item: NewItem, expected_version: Option<&str>) -> Result<(Item, PutOutcome)> {
    let now = now();
    let mut parameters = item_parameters(&item, &now);
    let returned = match expected_version {
        // Unconditional: create, or replace keeping `created_at` (an
        // expired row counts as absent).
        None => created_and_version(db::rows(
            &format!(
                "INSERT INTO items ({COLUMNS}) VALUES (?1, ?3, ?3, 1, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (id) DO UPDATE SET \
                 created_at = CASE WHEN {UNEXPIRED} THEN created_at ELSE excluded.created_at END, \
                 version = CASE WHEN {UNEXPIRED} THEN version + 1 ELSE 1 END, \
                 updated_at = excluded.updated_at, user_id = excluded.user_id, \
                 status = excluded.status, expires_at = excluded.expires_at, \
                 attributes = excluded.attributes \
                 RETURNING created_at, version"
            ),
            &parameters,
        )?)?,
        // Conditional: the item must exist with that version.
        Some(expected) => match version_number(expected) {
            None => None,
            Some(version) => {
                parameters.push(integer(version));
                created_and_version(db::rows(
                    &format!(
                        "UPDATE items SET updated_at = ?3, version = version + 1, user_id = ?4, \
                         status = ?5, expires_at = ?6, attributes = ?7 \
                         WHERE id = ?1 AND version = ?8 AND {UNEXPIRED} \
                         RETURNING created_at, version"
                    ),
                    &parameters,
                )?)?
            }
        },
    };
    let Some((created_at, version)) = returned else {
        return Err(mismatch(&item.id, &now)?);
    };
    // Only a fresh row starts at version 1; a replaced one is past it.
    let outcome = if version == 1 {
        PutOutcome::Created
    } else {
        PutOutcome::Replaced
    };
    Ok((
        item.into_item(created_at, now.text, version.to_string()),
        outcome,
    ))
}

pub fn update(id: &str, patch: &ItemPatch, expected_version: Option<&str>) -> Result<Item> {
    // A merge needs the current item, so this is a compare-and-set on its
    // version: read, merge, write only if the version is still the one
    // read. A lost race with no expected version reads again.
    for _ in 0..ATTEMPTS {
        let now = now();
        let current = load(id, &now)?;
        let Some(mut stored) = current else {
            return Err(match expected_version {
                Some(_) => StoreError::VersionMismatch(None),
                None => StoreError::NotFound,
            });
        };
        if expected_version.is_some_and(|expected| expected != stored.item.version) {
            return Err(StoreError::VersionMismatch(Some(stored.item.version)));
        }
        patch.apply_to(&mut stored.item);
        let version = stored.version.saturating_add(1);
        let rows = db::rows(
            &format!(
                "UPDATE items SET updated_at = ?3, version = ?8, user_id = ?4, status = ?5, \
                 expires_at = ?6, attributes = ?7 \
                 WHERE id = ?1 AND version = ?9 AND {UNEXPIRED} RETURNING version"
            ),
            &[
                text(id),
                integer(now.seconds),
                text(&now.text),
                optional_text(stored.item.user_id.as_deref()),
                optional_text(stored.item.status.as_deref()),
                optional_integer(stored.item.expires_at),
                text(&codec::encode(&stored.item.attributes)),
                integer(version),
                integer(stored.version),
            ],
        )?;
        if first_integer(&rows) == Some(version) {
            stored.item.version = version.to_string();
            stored.item.updated_at = now.text;
            return Ok(stored.item);
        }
    }
    Err(contention())
}

fn contention() -> StoreError {
    StoreError::Unavailable("too many concurrent writes to this item; retry".into())
}

pub fn delete(id: &str, expected_version: Option<&str>) -> Result<()> {
    let now = now();
    let deleted = match expected_version {
        None => db::rows(
            &format!("DELETE FROM items WHERE id = ?1 AND {UNEXPIRED} RETURNING version"),
            &[text(id), integer(now.seconds)],
        )?,
        Some(expected) => match version_number(expected) {
            None => Vec::new(),
            Some(version) => db::rows(
                &format!(
                    "DELETE FROM items WHERE id = ?1 AND version = ?3 AND {UNEXPIRED} \
                     RETURNING version"
                ),
                &[text(id), integer(now.seconds), integer(version)],
            )?,
        },
    };
    match (deleted.is_empty(), expected_version) {
        (false, _) => Ok(()),
        (true, None) => Err(StoreError::NotFound),
        (true, Some(_)) => Err(mismatch(id, &now)?),
    }
}

/// The attribute's element of the `attributes` array (`?3` is its name).
const ELEMENT: &str =
    "(SELECT value FROM json_each(items.attributes) WHERE json_extract(value, '$.n') = ?3)";
/// Its index in the array.
const INDEX: &str =
    "(SELECT key FROM json_each(items.attributes) WHERE json_extract(value, '$.n') = ?3)";

/// The increment statement: `?1` id, `?2` now (seconds), `?3` attribute,
/// `?4` delta, `?5` now (text). It applies only when the attribute is
/// absent or an integer literal whose sum stays an integer (SQLite turns
/// an overflowing integer sum into a real), so that the update is one
/// atomic statement; when it does not apply, the caller finds out why.
fn increment_sql() -> String {
    let literal = format!("json_extract({ELEMENT}, '$.v.v')");
    let whole = format!(
        "(json_extract({ELEMENT}, '$.v.t') = 'number' AND typeof({literal}) = 'text' \
         AND (CAST(CAST({literal} AS INTEGER) AS TEXT) = {literal} OR {literal} = '-0') \
         AND typeof(CAST({literal} AS INTEGER) + ?4) = 'integer')"
    );
    format!(
        "UPDATE items SET attributes = CASE WHEN {INDEX} IS NULL \
         THEN json_insert(attributes, '$[#]', \
             json_object('n', ?3, 'v', json_object('t', 'number', 'v', CAST(?4 AS TEXT)))) \
         ELSE json_set(attributes, '$[' || {INDEX} || '].v.v', \
             CAST(CAST({literal} AS INTEGER) + ?4 AS TEXT)) END, \
         version = version + 1, updated_at = ?5 \
         WHERE id = ?1 AND {UNEXPIRED} AND ({ELEMENT} IS NULL OR {whole}) \
         RETURNING {COLUMNS}"
    )
}

pub fn increment(id: &str, attribute: &str, delta: i64) -> Result<Item> {
    let sql = increment_sql();
    for _ in 0..ATTEMPTS {
        let now = now();
        let rows = db::rows(
            &sql,
            &[
                text(id),
                integer(now.seconds),
                text(attribute),
                integer(delta),
                text(&now.text),
            ],
        )?;
        if let Some(row) = rows.into_iter().next() {
            return db::stored(row).map(|stored| stored.item);
        }
        // Nothing changed: say why, from the item as it is now. If it
        // turns out incrementable, it changed in between; try again.
        let current = load(id, &now)?.ok_or(StoreError::NotFound)?;
        let value = counter_value(attribute, current.item.attribute(attribute))?;
        value.checked_add(delta).ok_or_else(|| {
            StoreError::invalid(format!(
                "adding {delta} to attribute `{attribute}` ({value}) overflows a 64-bit integer"
            ))
        })?;
    }
    Err(contention())
}

/// The integer an increment starts from (the rules and messages of the
/// host's embedded store).
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
            )));
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
        StoreError::InvalidInput(message)
    })
}

pub fn batch(writes: Vec<BatchWrite>) -> Result<BatchResult> {
    let now = now();
    purge_now_and_then(&now);
    let mut result = BatchResult::default();
    // Each write is its own statement: the contract makes batches
    // non-atomic, and a remote database could not hold one transaction
    // across calls anyway.
    for write in writes {
        match write {
            BatchWrite::Put(put) => {
                let created_at = match &put.created_at {
                    Some(text) => Timestamp::parse(text)
                        .map_err(|e| StoreError::invalid(e.to_string()))?
                        .to_string(),
                    None => now.text.clone(),
                };
                let mut parameters = item_parameters(&put.item, &now);
                parameters.push(text(&created_at));
                let rows = db::rows(
                    &format!(
                        "INSERT INTO items ({COLUMNS}) VALUES (?1, ?8, ?3, 1, ?4, ?5, ?6, ?7) \
                         ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, \
                         version = CASE WHEN {UNEXPIRED} THEN version + 1 ELSE 1 END, \
                         updated_at = excluded.updated_at, user_id = excluded.user_id, \
                         status = excluded.status, expires_at = excluded.expires_at, \
                         attributes = excluded.attributes \
                         RETURNING version"
                    ),
                    &parameters,
                )?;
                let version = first_integer(&rows).ok_or_else(|| {
                    StoreError::Backend("Spin SQLite returned no version for a put".into())
                })?;
                result.put.push(put.item.into_item(
                    created_at,
                    now.text.clone(),
                    version.to_string(),
                ));
            }
            BatchWrite::Delete(id) => {
                db::rows("DELETE FROM items WHERE id = ?1", &[text(&id)])?;
                result.deleted.push(id);
            }
        }
    }
    Ok(result)
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
        "SELECT {COLUMNS} FROM items WHERE {column} = ?1 AND {UNEXPIRED} {position} \
         ORDER BY created_at {direction}, id {direction} LIMIT ?3"
    )
}

/// One page by keyset on (created_at, id): resuming strictly after the last
/// position shown is what keeps concurrent writes from causing skips or
/// repeats. One row past the limit tells whether another page follows.
pub fn query(query: Query) -> Result<Page> {
    let after = match &query.cursor {
        Some(text) => Some(Cursor::decode_for(text, &query)?),
        None => None,
    };
    let now = now();
    let mut parameters = vec![
        text(query.key.value()),
        integer(now.seconds),
        integer(i64::from(query.limit) + 1),
    ];
    if let Some(cursor) = &after {
        parameters.push(text(&cursor.created_at));
        parameters.push(text(&cursor.id));
    }
    let rows = db::rows(
        &query_sql(&query.key, query.order, after.is_some()),
        &parameters,
    )?;
    let mut items = rows
        .into_iter()
        .map(|row| db::stored(row).map(|stored| stored.item))
        .collect::<Result<Vec<_>>>()?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| Cursor::after(&query, &last.created_at, &last.id).encode())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
