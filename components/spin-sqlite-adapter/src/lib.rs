//! The item store on Spin's built-in SQLite, as a WASI 0.2 component.
//!
//! It exports `edge-items:store/types` and `edge-items:store/store` (world
//! `store-provider` in `wit/item-store.wit`) and imports Spin's
//! `fermyon:spin/sqlite@2.0.0` (through spin-sdk), so spin.toml plugs it
//! into the api component as a component dependency and `spin up` serves
//! items with no account and no server: Spin keeps the database (label
//! `default`) in its state directory (`.spin/sqlite_db.db` by default).
//!
//! The schema, the SQL and the operations are `sqlite-core`'s, shared with
//! the host's embedded store, so either reads a file the other wrote. Every
//! write is one SQL statement, so it is atomic on any SQLite Spin connects
//! to: the local file, or a remote database (Turso/libSQL, Fermyon Cloud)
//! where a transaction cannot span two calls. This crate adds the
//! connection (`database`) and when to purge expired rows.
//!
//! The one exception is `apply-once`: a write and its idempotency record
//! are two statements, held together by `BEGIN IMMEDIATE` .. `COMMIT` on
//! the instance's connection. That holds on Spin's local SQLite file (the
//! default); a remote database that runs each statement on its own would
//! keep the two apart, so docs/RELIABILITY.md gives no exactly-once
//! promise there.

mod database;

use item_model::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, NewItem, Once, Page, PutOutcome, Query,
    ScanPage, ScanRequest, Timestamp, Write, WriteClock,
};
use sqlite_core::{Executor, Items};
use store_guest::{BlockingStore, StoreResult};

pub use database::SpinDatabase;

/// The item store on Spin's SQLite database `default`.
pub struct SpinSqliteAdapter {
    database: SpinDatabase,
    /// Write times of this instance (one request): strictly increasing.
    clock: WriteClock,
}

static ADAPTER: SpinSqliteAdapter = SpinSqliteAdapter {
    database: SpinDatabase,
    clock: WriteClock::new(),
};

impl SpinSqliteAdapter {
    fn items(&self) -> Items<'_, SpinDatabase> {
        Items::new(&self.database, &self.clock)
    }

    /// Deletes expired rows about once in 64 creating writes: an instance
    /// lives for one request, so it has no timer, and reads hide expired
    /// rows anyway; this only keeps the file from growing.
    fn purge_now_and_then(&self) {
        let now = Timestamp::now();
        if purge_due(now) {
            // Best effort: the write that follows reports real trouble.
            let _ = self.items().purge_expired(now);
        }
    }
}

/// Whether a write at `now` also purges: a cheap lottery on the clock.
fn purge_due(now: Timestamp) -> bool {
    now.as_micros() % 64 == 0
}

impl BlockingStore for SpinSqliteAdapter {
    const NAME: &'static str = "spin-sqlite-adapter";

    fn instance() -> StoreResult<&'static Self> {
        Ok(&ADAPTER)
    }

    fn get(&self, id: &str) -> StoreResult<Item> {
        self.items().get(id)
    }

    fn create(&self, item: NewItem) -> StoreResult<Item> {
        self.purge_now_and_then();
        self.items().create(item)
    }

    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        self.items().put(item, expected_version)
    }

    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        self.items().update(id, &patch, expected_version)
    }

    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        self.items().delete(id, expected_version)
    }

    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        self.items().increment(id, attribute, delta)
    }

    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        self.purge_now_and_then();
        self.items().batch(writes)
    }

    fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        self.purge_now_and_then();
        // The write and its record in one transaction on this instance's
        // connection (see the crate's notes for remote databases).
        self.database.execute("BEGIN IMMEDIATE", &[])?;
        let result = self.items().apply_once(write, &once);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        if let Err(e) = self.database.execute(end, &[]) {
            let _ = self.database.execute("ROLLBACK", &[]);
            return Err(e.into());
        }
        result
    }

    fn query(&self, query: Query) -> StoreResult<Page> {
        self.items().query(&query)
    }

    fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        self.items().scan(&request)
    }
}

#[cfg(target_arch = "wasm32")]
store_guest::export_store!(SpinSqliteAdapter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_write_in_64_purges() {
        let due = (0..6400)
            .filter(|micros| purge_due(Timestamp::from_micros(*micros)))
            .count();
        assert_eq!(due, 100);
    }
}
