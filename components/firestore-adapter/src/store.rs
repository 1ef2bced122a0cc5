//! The store operations: build the protocol's operation, run it with the
//! instance's credentials. Input arrives validated (`store_guest`'s export
//! checks every call).

use std::sync::OnceLock;

use firestore_protocol::{Firestore, Session};
use item_model::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, NewItem, Once, Page, PutOutcome, Query,
    ScanPage, ScanRequest, Write, WriteClock,
};
use sansio::Operation;
use store_guest::{BlockingStore, StoreResult};

use crate::config::Config;
use crate::transport;

/// The item store on the configured Firestore collection.
#[derive(Debug)]
pub struct FirestoreAdapter {
    /// The collection and the credentials; the signed access token is kept
    /// with its key and renewed five minutes before it expires.
    session: Session,
    clock: WriteClock,
}

impl FirestoreAdapter {
    /// The store `config` describes.
    pub fn new(config: Config) -> Self {
        Self {
            session: Session::new(config.firestore, config.credentials),
            clock: WriteClock::new(),
        }
    }

    /// Runs the operation `make` builds.
    fn run<O: Operation>(&self, make: impl FnOnce(&Firestore) -> O) -> StoreResult<O::Output> {
        transport::run(&self.session, make(self.session.firestore()))
    }
}

impl BlockingStore for FirestoreAdapter {
    const NAME: &'static str = "firestore-adapter";

    /// Read from the environment once per instance (the environment does
    /// not change within one).
    fn instance() -> StoreResult<&'static Self> {
        static STORE: OnceLock<StoreResult<FirestoreAdapter>> = OnceLock::new();
        STORE
            .get_or_init(|| Config::from_env().map(FirestoreAdapter::new))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn get(&self, id: &str) -> StoreResult<Item> {
        let now = self.clock.now();
        self.run(|fs| fs.get(id, now))
    }

    fn create(&self, item: NewItem) -> StoreResult<Item> {
        let now = self.clock.now();
        self.run(|fs| fs.create(item, now))
    }

    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let now = self.clock.now();
        let expected = expected_version.map(str::to_owned);
        self.run(|fs| fs.put(item, expected, now))
    }

    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        let now = self.clock.now();
        let expected = expected_version.map(str::to_owned);
        self.run(|fs| fs.update(id, patch, expected, now))
    }

    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let now = self.clock.now();
        let expected = expected_version.map(str::to_owned);
        self.run(|fs| fs.delete(id, expected, now))
    }

    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        let now = self.clock.now();
        self.run(|fs| fs.increment(id, attribute, delta, now))
    }

    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        let now = self.clock.now();
        self.run(|fs| fs.batch(writes, now))
    }

    fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        let now = self.clock.now();
        self.run(|fs| fs.apply_once(write, once, now))
    }

    fn query(&self, query: Query) -> StoreResult<Page> {
        let now = self.clock.now();
        self.run(|fs| fs.query(query, now))
    }

    fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        let now = self.clock.now();
        self.run(|fs| fs.scan(request, now))
    }
}
