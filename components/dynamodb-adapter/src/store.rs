//! The store operations: build the protocol's exchange, run it. Input
//! arrives validated (`store_guest`'s export checks every call).

use std::sync::OnceLock;

use dynamodb_protocol::{Config, DynamoDb, EnvError, StoreError};
use item_model::{
    Applied, BatchResult, BatchWrite, Item, ItemPatch, NewItem, Once, Page, PutOutcome, Query,
    ScanPage, ScanRequest, Write, WriteClock,
};
use store_guest::{BlockingStore, StoreResult};

use crate::transport::run;

/// The item store on the configured DynamoDB table.
pub struct DynamoDbAdapter {
    protocol: DynamoDb,
    /// Write times from this instance strictly increase: equal `createdAt`
    /// values would leave the order of ties to DynamoDB.
    clock: WriteClock,
}

impl std::fmt::Debug for DynamoDbAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbAdapter")
            .field("endpoint", &self.protocol.config().endpoint())
            .field("table", &self.protocol.config().table())
            .finish()
    }
}

/// The configuration from `lookup`; missing or invalid credentials are
/// `unauthorized`, anything else about the setup is `backend`.
pub(crate) fn configure(lookup: impl Fn(&str) -> Option<String>) -> StoreResult<DynamoDbAdapter> {
    Config::from_env_with(lookup)
        .map(|config| DynamoDbAdapter {
            protocol: DynamoDb::new(config),
            clock: WriteClock::new(),
        })
        .map_err(|error| configuration_error(&error))
}

fn configuration_error(error: &EnvError) -> StoreError {
    let message = format!("the DynamoDB adapter is not configured: {error}");
    if error.is_credentials() {
        StoreError::Unauthorized(message)
    } else {
        StoreError::Backend(message)
    }
}

impl BlockingStore for DynamoDbAdapter {
    const NAME: &'static str = "dynamodb-adapter";

    /// Read from the environment once per instance (the environment does
    /// not change within one).
    fn instance() -> StoreResult<&'static Self> {
        static STORE: OnceLock<StoreResult<DynamoDbAdapter>> = OnceLock::new();
        STORE
            .get_or_init(|| configure(component_http::env))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn get(&self, id: &str) -> StoreResult<Item> {
        let db = &self.protocol;
        run(db, db.get(id, self.clock.now()))
    }

    fn create(&self, item: NewItem) -> StoreResult<Item> {
        let db = &self.protocol;
        run(db, db.create(item, self.clock.now()))
    }

    fn put(
        &self,
        item: NewItem,
        expected_version: Option<&str>,
    ) -> StoreResult<(Item, PutOutcome)> {
        let db = &self.protocol;
        let expected = expected_version.map(str::to_owned);
        run(db, db.put(item, expected, self.clock.now()))
    }

    fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<&str>,
    ) -> StoreResult<Item> {
        let db = &self.protocol;
        let expected = expected_version.map(str::to_owned);
        run(db, db.update(id, &patch, expected, self.clock.now()))
    }

    fn delete(&self, id: &str, expected_version: Option<&str>) -> StoreResult<()> {
        let db = &self.protocol;
        let expected = expected_version.map(str::to_owned);
        run(db, db.delete(id, expected, self.clock.now()))
    }

    fn increment(&self, id: &str, attribute: &str, delta: i64) -> StoreResult<Item> {
        let db = &self.protocol;
        run(db, db.increment(id, attribute, delta, self.clock.now()))
    }

    fn batch(&self, writes: Vec<BatchWrite>) -> StoreResult<BatchResult> {
        let db = &self.protocol;
        run(db, db.batch(writes, self.clock.now()))
    }

    fn apply_once(&self, write: Write, once: Once) -> StoreResult<Applied> {
        let db = &self.protocol;
        run(db, db.apply_once(write, once, self.clock.now()))
    }

    fn query(&self, query: Query) -> StoreResult<Page> {
        let db = &self.protocol;
        run(db, db.query(query, self.clock.now()))
    }

    fn scan(&self, request: ScanRequest) -> StoreResult<ScanPage> {
        let db = &self.protocol;
        run(db, db.scan(request, self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn missing_credentials_are_unauthorized_and_name_no_value() {
        let error = configure(lookup(&[("AWS_SECRET_ACCESS_KEY", "s3cr3t")])).unwrap_err();
        assert!(
            matches!(&error, StoreError::Unauthorized(m) if m.contains("AWS_ACCESS_KEY_ID")),
            "{error:?}"
        );
        let error = configure(lookup(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")])).unwrap_err();
        assert!(
            matches!(&error, StoreError::Unauthorized(m) if m.contains("AWS_SECRET_ACCESS_KEY") && !m.contains("AKIDEXAMPLE")),
            "{error:?}"
        );
    }

    #[test]
    fn other_setup_problems_are_backend_errors() {
        let error = configure(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::Backend(m) if m.contains("AWS_REGION")),
            "{error:?}"
        );
        let error = configure(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://a:s3cr3t@host"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::Backend(m) if !m.contains("s3cr3t")),
            "{error:?}"
        );
    }

    #[test]
    fn a_complete_setup_names_table_and_endpoint() {
        let db = configure(lookup(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("EDGE_ITEMS_DYNAMODB_TABLE", "Items-prod"),
        ]))
        .unwrap();
        assert_eq!(db.protocol.config().table(), "Items-prod");
        assert_eq!(
            db.protocol.config().endpoint(),
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
    }
}
