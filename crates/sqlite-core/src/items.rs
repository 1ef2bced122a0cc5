//! The store operations, with the semantics of `wit/item-store.wit`, on
//! any [`Executor`]. Input has been validated by the caller.
//!
//! Every write is one statement whose `WHERE` carries its condition, and
//! `RETURNING` tells whether (and how) the row changed: a version check is
//! `version = ?`, an increment is done by SQLite's JSON functions inside
//! the `UPDATE`. Only `update` must read first (a merge needs the current
//! item); it writes only if the version is still the one it read, and
//! reads again when it lost that race.

use item_model::once::Record;
use item_model::{
    Applied, BatchResult, BatchWrite, Cursor, IndexKey, Item, ItemPatch, NewItem, Offer, Once,
    Order, Page, PageBuilder, PutOutcome, Query, ScanPage, ScanPageBuilder, ScanRequest,
    StoreError, Timestamp, Write, WriteClock, Written, counter, segment_id_range,
};

use crate::executor::{Executor, Row, SqlError, SqlValue};
use crate::row::{
    self, COLUMNS, Stored, created_and_version, first_integer, integer, new_item_fields, text,
};
use crate::schema;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How often a write whose read-modify-write lost a race is tried again
/// before the caller is told to retry.
const ATTEMPTS: usize = 50;

/// Most rows one statement of a page reads: statements are cheap (the
/// local file, or one call into Spin's host), and a row may be as large as
/// the api's body limit, so a page reads a few rows at a time and holds not
/// much more than its byte budget.
const ROWS_PER_STATEMENT: usize = 16;

/// The filter that hides expired rows; `?2` is now in epoch seconds.
const UNEXPIRED: &str = "(expires_at IS NULL OR expires_at > ?2)";

/// The time of one operation: the text written into items, and the epoch
/// seconds that decide expiry.
struct Now {
    text: String,
    seconds: i64,
}

impl From<Timestamp> for Now {
    fn from(timestamp: Timestamp) -> Self {
        Self {
            text: timestamp.to_string(),
            seconds: timestamp.unix_seconds(),
        }
    }
}

/// The items table of one database, reached through `D`, with write times
/// from one clock (which should live as long as the store, so that its
/// times keep increasing).
pub struct Items<'a, D: ?Sized> {
    db: &'a D,
    clock: &'a WriteClock,
}

impl<'a, D: Executor + ?Sized> Items<'a, D> {
    /// Borrows the database and the clock. Runs nothing yet: a database
    /// without the current schema is migrated by the first statement that
    /// misses it.
    pub fn new(db: &'a D, clock: &'a WriteClock) -> Self {
        Self { db, clock }
    }

    fn write_time(&self) -> Now {
        self.clock.now().into()
    }

    /// Runs one statement; a database that lacks the table or a column of
    /// it is migrated first, and the statement runs again. (Checking the
    /// version on every call would cost a statement per request in Spin,
    /// where each request is a new instance.)
    fn rows(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>> {
        match self.db.execute(sql, params) {
            Err(SqlError::MissingSchema(_)) => {
                schema::migrate(self.db)?;
                Ok(self.db.execute(sql, params)?)
            }
            result => Ok(result?),
        }
    }

    /// The unexpired item with this id, if any.
    fn load(&self, id: &str, now: &Now) -> Result<Option<Stored>> {
        let rows = self.rows(
            &format!("SELECT {COLUMNS} FROM items WHERE id = ?1 AND {UNEXPIRED}"),
            &[text(id), integer(now.seconds)],
        )?;
        Ok(rows.into_iter().next().map(row::stored).transpose()?)
    }

    /// The error for a conditional write that changed nothing: the current
    /// version, or `none` when the item is gone.
    fn mismatch(&self, id: &str, now: &Now) -> Result<StoreError> {
        Ok(StoreError::VersionMismatch(
            self.load(id, now)?.map(|current| current.item.version),
        ))
    }

    /// Reads an unexpired item.
    pub fn get(&self, id: &str) -> Result<Item> {
        self.load(id, &Timestamp::now().into())?
            .map(|stored| stored.item)
            .ok_or(StoreError::NotFound)
    }

    /// Creates an item; `already-exists` if a live item has the id (an
    /// expired one is replaced).
    pub fn create(&self, item: NewItem) -> Result<Item> {
        let now = self.write_time();
        let rows = self.rows(
            &upsert(
                "?3",
                "created_at = excluded.created_at, version = 1",
                &format!("WHERE NOT {UNEXPIRED} RETURNING version"),
            ),
            &item_params(&item.id, &now, new_item_fields(&item)),
        )?;
        if rows.is_empty() {
            return Err(StoreError::AlreadyExists);
        }
        Ok(item.into_item(now.text.clone(), now.text, "1".into()))
    }

    /// Creates or replaces an item; with an expected version, only that
    /// version of a live item is replaced.
    pub fn put(&self, item: NewItem, expected_version: Option<&str>) -> Result<(Item, PutOutcome)> {
        let now = self.write_time();
        let mut params = item_params(&item.id, &now, new_item_fields(&item));
        let returned = match expected_version {
            // Unconditional: create, or replace keeping `created_at` (an
            // expired row counts as absent).
            None => created_and_version(self.rows(
                &upsert(
                    "?3",
                    &format!(
                        "created_at = CASE WHEN {UNEXPIRED} THEN created_at \
                         ELSE excluded.created_at END, {}",
                        renewed_version()
                    ),
                    "RETURNING created_at, version",
                ),
                &params,
            )?)?,
            // Conditional: the item must exist with that version.
            Some(expected) => match version_number(expected) {
                None => None,
                Some(version) => {
                    params.push(integer(version));
                    created_and_version(self.rows(
                        &format!(
                            "UPDATE items SET updated_at = ?3, version = version + 1, \
                             user_id = ?4, status = ?5, expires_at = ?6, attributes = ?7 \
                             WHERE id = ?1 AND version = ?8 AND {UNEXPIRED} \
                             RETURNING created_at, version"
                        ),
                        &params,
                    )?)?
                }
            },
        };
        let Some((created_at, version)) = returned else {
            return Err(self.mismatch(&item.id, &now)?);
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

    /// Merges a patch into a live item, under an optional expected version:
    /// a compare-and-set on the version read.
    pub fn update(
        &self,
        id: &str,
        patch: &ItemPatch,
        expected_version: Option<&str>,
    ) -> Result<Item> {
        for _ in 0..ATTEMPTS {
            let now = self.write_time();
            let Some(mut stored) = self.load(id, &now)? else {
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
            let mut params = item_params(
                id,
                &now,
                row::owned_fields(
                    stored.item.user_id.as_deref(),
                    stored.item.status.as_deref(),
                    stored.item.expires_at,
                    &stored.item.attributes,
                ),
            );
            params.extend([integer(version), integer(stored.version)]);
            let rows = self.rows(
                &format!(
                    "UPDATE items SET updated_at = ?3, version = ?8, user_id = ?4, status = ?5, \
                     expires_at = ?6, attributes = ?7 \
                     WHERE id = ?1 AND version = ?9 AND {UNEXPIRED} RETURNING version"
                ),
                &params,
            )?;
            if first_integer(&rows) == Some(version) {
                stored.item.version = version.to_string();
                stored.item.updated_at = now.text;
                return Ok(stored.item);
            }
            // The item changed since it was read: read it again (with an
            // expected version, the next read reports the mismatch).
        }
        Err(contention())
    }

    /// Deletes a live item, under an optional expected version.
    pub fn delete(&self, id: &str, expected_version: Option<&str>) -> Result<()> {
        let now = self.write_time();
        let deleted = match expected_version {
            None => self.rows(
                &format!("DELETE FROM items WHERE id = ?1 AND {UNEXPIRED} RETURNING version"),
                &[text(id), integer(now.seconds)],
            )?,
            Some(expected) => match version_number(expected) {
                None => Vec::new(),
                Some(version) => self.rows(
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
            (true, Some(_)) => Err(self.mismatch(id, &now)?),
        }
    }

    /// Adds `delta` to a numeric attribute (absent counts as 0) in one
    /// statement; when the statement does not apply, the item as it is now
    /// says why, in item_model's words.
    pub fn increment(&self, id: &str, attribute: &str, delta: i64) -> Result<Item> {
        let sql = increment_sql();
        for _ in 0..ATTEMPTS {
            let now = self.write_time();
            let rows = self.rows(
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
                return Ok(row::stored(row)?.item);
            }
            let current = self.load(id, &now)?.ok_or(StoreError::NotFound)?;
            let value = counter::start_value(attribute, current.item.attribute(attribute))?;
            counter::add(attribute, value, delta)?;
            // It is incrementable now, so it changed in between: again.
        }
        Err(contention())
    }

    /// Applies unconditional puts and deletes, each its own statement (the
    /// contract does not make a batch atomic; a store may wrap the call in
    /// a transaction). A put keeps the given `created_at`, else takes now.
    pub fn batch(&self, writes: Vec<BatchWrite>) -> Result<BatchResult> {
        let now = self.write_time();
        // Every kept time is read before anything is written, so a bad one
        // changes nothing.
        let kept = |time: &Option<String>| match time {
            Some(text) => Timestamp::parse(text)
                .map(|t| t.to_string())
                .map_err(|e| StoreError::invalid(e.to_string())),
            None => Ok(now.text.clone()),
        };
        let times = writes
            .iter()
            .map(|write| match write {
                BatchWrite::Put(put) => Ok((kept(&put.created_at)?, kept(&put.updated_at)?)),
                BatchWrite::Delete(_) => Ok((String::new(), String::new())),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut result = BatchResult::default();
        for (write, (created_at, updated_at)) in writes.into_iter().zip(times) {
            match write {
                BatchWrite::Put(put) => {
                    // `?3`, the written time, is the kept `updated_at`;
                    // expiry is still judged at now (`?2`).
                    let written = Now {
                        text: updated_at,
                        seconds: now.seconds,
                    };
                    let mut params =
                        item_params(&put.item.id, &written, new_item_fields(&put.item));
                    params.push(text(&created_at));
                    let rows = self.rows(
                        &upsert(
                            "?8",
                            &format!("created_at = excluded.created_at, {}", renewed_version()),
                            "RETURNING version",
                        ),
                        &params,
                    )?;
                    let version = first_integer(&rows).ok_or_else(|| {
                        StoreError::Backend("the database returned no version for a put".into())
                    })?;
                    result.put.push(put.item.into_item(
                        created_at,
                        written.text,
                        version.to_string(),
                    ));
                }
                BatchWrite::Delete(id) => {
                    self.rows("DELETE FROM items WHERE id = ?1", &[text(&id)])?;
                    result.deleted.push(id);
                }
            }
        }
        Ok(result)
    }

    /// One page of one segment of every item, expired ones included and
    /// marked (WIT `scan`): a keyset walk in id order over the primary key,
    /// the segment being an id range ([`segment_id_range`]), resuming
    /// strictly after the last id read. Rows are read a few at a time, as
    /// [`Self::query`] does; rows the `updated-since` filter drops are
    /// filtered by SQLite, so the walk stays one index range.
    pub fn scan(&self, request: &ScanRequest) -> Result<ScanPage> {
        let (lower, upper) = segment_id_range(request.segment, request.segments);
        let mut after = request.resume_after()?;
        let now = Timestamp::now().unix_seconds();
        let mut page = ScanPageBuilder::new(request);
        loop {
            let rows_wanted = page.wanted().min(ROWS_PER_STATEMENT);
            let mut sql = format!("SELECT {COLUMNS} FROM items WHERE 1");
            let mut params = Vec::new();
            let mut bound = |sql: &mut String, condition: &str, value: &str| {
                params.push(text(value));
                sql.push_str(&format!(" AND {condition} ?{}", params.len()));
            };
            match &after {
                Some(position) => bound(&mut sql, "id >", position),
                None => {
                    if let Some(lower) = &lower {
                        bound(&mut sql, "id >=", lower);
                    }
                }
            }
            if let Some(upper) = &upper {
                bound(&mut sql, "id <", upper);
            }
            if let Some(since) = &request.updated_since {
                bound(&mut sql, "updated_at >=", since);
            }
            sql.push_str(&format!(" ORDER BY id LIMIT {}", rows_wanted + 1));
            let rows = self.rows(&sql, &params)?;
            let fetched = rows.len();
            for row in rows {
                let item = row::stored(row)?.item;
                let id = item.id.clone();
                if page.offer(item, now) == Offer::Full {
                    return Ok(page.finish(request, true));
                }
                after = Some(id);
            }
            if fetched <= rows_wanted {
                return Ok(page.finish(request, false));
            }
        }
    }

    /// One page by keyset on (created_at, id): resuming strictly after the
    /// last position shown is what keeps concurrent writes from causing
    /// skips or repeats. Rows are fetched a few at a time, as many as
    /// item_model's [`PageBuilder`] wants (at most [`ROWS_PER_STATEMENT`]),
    /// each statement resuming after the last row read, until the page is
    /// full by count or by bytes; the row that does not fit tells that
    /// another page follows.
    pub fn query(&self, query: &Query) -> Result<Page> {
        let mut after = match &query.cursor {
            Some(text) => {
                let cursor = Cursor::decode_for(text, query)?;
                Some((cursor.created_at, cursor.id))
            }
            None => None,
        };
        let now = Now::from(Timestamp::now());
        let mut page = PageBuilder::new(query.clone());
        loop {
            let rows_wanted = page.wanted().min(ROWS_PER_STATEMENT);
            let position = after.as_ref().map(|(c, i)| (c.as_str(), i.as_str()));
            let (sql, params) =
                query_statement(&query.key, query.order, now.seconds, rows_wanted, position);
            let rows = self.rows(&sql, &params)?;
            let fetched = rows.len();
            for row in rows {
                let item = row::stored(row)?.item;
                after = Some((item.created_at.clone(), item.id.clone()));
                if page.offer(item) == Offer::Full {
                    return Ok(page.page_with_more());
                }
            }
            if fetched < rows_wanted {
                return Ok(page.last_page());
            }
        }
    }

    /// Applies a write at most once per key (WIT `apply-once`): finds the
    /// key's live record, or applies the write as its own function does
    /// and records what it did. The caller runs this in one transaction,
    /// so that the write and its record are kept or lost together and no
    /// other writer sees the one without the other.
    pub fn apply_once(&self, write: Write, once: &Once) -> Result<Applied> {
        let now = Timestamp::now();
        let rows = self.rows(
            "SELECT fingerprint, expires_at, written FROM idempotency \
             WHERE key = ?1 AND expires_at > ?2",
            &[text(&once.key), integer(now.unix_seconds())],
        )?;
        if let Some(row) = rows.into_iter().next() {
            return row::record(row)?.answer(once);
        }
        let written = match write {
            Write::Create(item) => Written::Item(self.create(item)?),
            Write::Put {
                item,
                expected_version,
            } => {
                let (item, outcome) = self.put(item, expected_version.as_deref())?;
                Written::Put(item, outcome)
            }
            Write::Update {
                id,
                patch,
                expected_version,
            } => Written::Item(self.update(&id, &patch, expected_version.as_deref())?),
            Write::Delete {
                id,
                expected_version,
            } => {
                self.delete(&id, expected_version.as_deref())?;
                Written::Deleted
            }
            Write::Increment {
                id,
                attribute,
                delta,
            } => Written::Item(self.increment(&id, &attribute, delta)?),
            Write::Batch(writes) => Written::Batch(self.batch(writes)?),
        };
        let record = Record::new(once, &written);
        // An expired record of the same key is replaced.
        self.rows(
            "INSERT INTO idempotency (key, fingerprint, expires_at, written) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET \
             fingerprint = excluded.fingerprint, expires_at = excluded.expires_at, \
             written = excluded.written",
            &[
                text(&once.key),
                text(&record.fingerprint),
                integer(record.expires_at),
                text(&record.written),
            ],
        )?;
        Ok(Applied::now(written))
    }

    /// Deletes the rows and idempotency records expired at `now` and
    /// counts the rows. Reads hide them anyway; this only keeps the file
    /// from growing, so a store calls it now and then.
    pub fn purge_expired(&self, now: Timestamp) -> Result<usize> {
        let rows = self.rows(
            "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1 RETURNING 1",
            &[integer(now.unix_seconds())],
        )?;
        self.rows(
            "DELETE FROM idempotency WHERE expires_at <= ?1",
            &[integer(now.unix_seconds())],
        )?;
        Ok(rows.len())
    }
}

/// The parameters every item write starts with: `?1` id, `?2` now
/// (seconds), `?3` now (text), `?4`..`?7` the caller-owned fields
/// ([`row::owned_fields`]).
fn item_params(id: &str, now: &Now, fields: [SqlValue; 4]) -> Vec<SqlValue> {
    let mut params = vec![text(id), integer(now.seconds), text(&now.text)];
    params.extend(fields);
    params
}

/// The version of a row written over an id: the next one of a live item,
/// 1 where the old row had expired (it counts as absent).
fn renewed_version() -> String {
    format!("version = CASE WHEN {UNEXPIRED} THEN version + 1 ELSE 1 END")
}

/// An insert of a fresh row (`created_at` from the parameter `created`,
/// version 1, the rest from [`item_params`]) that, where the id is taken,
/// sets `on_conflict` and the caller-owned fields instead; `tail` follows
/// (a `WHERE` for the update, `RETURNING`).
fn upsert(created: &str, on_conflict: &str, tail: &str) -> String {
    format!(
        "INSERT INTO items ({COLUMNS}) VALUES (?1, {created}, ?3, 1, ?4, ?5, ?6, ?7) \
         ON CONFLICT (id) DO UPDATE SET {on_conflict}, updated_at = excluded.updated_at, \
         user_id = excluded.user_id, status = excluded.status, \
         expires_at = excluded.expires_at, attributes = excluded.attributes {tail}"
    )
}

fn contention() -> StoreError {
    StoreError::Unavailable("too many concurrent writes to this item; retry".into())
}

/// A version from an `expected-version`: only the exact text of a stored
/// version matches, so `01` is not `1`.
fn version_number(expected: &str) -> Option<i64> {
    expected
        .parse::<i64>()
        .ok()
        .filter(|n| n.to_string() == expected)
}

/// The attribute's element of the `attributes` array (`?3` is its name).
const ELEMENT: &str =
    "(SELECT value FROM json_each(items.attributes) WHERE json_extract(value, '$.n') = ?3)";
/// Its index in the array.
const INDEX: &str =
    "(SELECT key FROM json_each(items.attributes) WHERE json_extract(value, '$.n') = ?3)";

/// The increment statement: `?1` id, `?2` now (seconds), `?3` attribute,
/// `?4` delta, `?5` now (text). It applies only when the attribute is
/// absent or a whole-number literal (`counter::start_value`'s rule for
/// JSON number literals) whose sum stays an integer (SQLite turns an
/// overflowing integer sum into a real), so that the update is one atomic
/// statement; when it does not apply, the caller finds out why.
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

/// The statement for one read of a page and its parameters: `?1` the key
/// value (the user id for the user-and-status index), `?2` now (seconds,
/// for [`UNEXPIRED`]), `?3` the rows to fetch, then the status for the
/// user-and-status index and, resuming, the (created_at, id) to start
/// strictly after.
pub(crate) fn query_statement(
    key: &IndexKey,
    order: Order,
    now_seconds: i64,
    rows: usize,
    after: Option<(&str, &str)>,
) -> (String, Vec<SqlValue>) {
    let mut params = vec![
        SqlValue::Null,
        integer(now_seconds),
        integer(i64::try_from(rows).unwrap_or(i64::MAX)),
    ];
    // `INDEXED BY` names the index each list is built for: a database
    // that lacks it (one written before it existed) fails with "no such
    // index" and is migrated by [`Items::rows`], rather than answering from
    // a slower index for ever.
    let (index, matches) = match key {
        IndexKey::UserId(user_id) => {
            params[0] = text(user_id);
            ("items_by_user", "user_id = ?1".to_string())
        }
        IndexKey::Status(status) => {
            params[0] = text(status);
            ("items_by_status", "status = ?1".to_string())
        }
        IndexKey::UserStatus { user_id, status } => {
            params[0] = text(user_id);
            params.push(text(status));
            let at = params.len();
            (
                "items_by_user_status",
                format!("user_id = ?1 AND status = ?{at}"),
            )
        }
    };
    let (compare, direction) = match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let position = match after {
        Some((created_at, id)) => {
            params.extend([text(created_at), text(id)]);
            let at = params.len();
            format!("AND (created_at, id) {compare} (?{}, ?{at})", at - 1)
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM items INDEXED BY {index} WHERE {matches} AND {UNEXPIRED} {position} \
         ORDER BY created_at {direction}, id {direction} LIMIT ?3"
    );
    (sql, params)
}
