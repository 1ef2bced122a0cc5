//! The store operations in `item_model` types: validate as the host does
//! (a caller of an exported interface is not trusted to have done it),
//! build the protocol's exchange, run it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use dynamodb_protocol::{Config, DynamoDb, EnvError, StoreError};
use item_model::validate;
use item_model::{
    BatchResult, BatchWrite, Item, ItemPatch, NewItem, Page, PutOutcome, Query, Timestamp,
};

use crate::transport::run;

type Result<T> = std::result::Result<T, StoreError>;

/// The protocol for the configured table, read from the environment once
/// per instance (the environment does not change within one).
fn protocol() -> Result<&'static DynamoDb> {
    static PROTOCOL: OnceLock<Result<DynamoDb>> = OnceLock::new();
    PROTOCOL
        .get_or_init(|| configure(component_http::env))
        .as_ref()
        .map_err(Clone::clone)
}

/// The configuration from `lookup`; missing or invalid credentials are
/// `unauthorized`, anything else about the setup is `backend`.
pub(crate) fn configure(lookup: impl Fn(&str) -> Option<String>) -> Result<DynamoDb> {
    Config::from_env_with(lookup)
        .map(DynamoDb::new)
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

/// A write time later than any this instance handed out before: equal
/// `createdAt` values would leave the order of ties to DynamoDB.
fn now() -> Timestamp {
    static LAST_MICROS: AtomicI64 = AtomicI64::new(0);
    let clock = Timestamp::now().as_micros();
    let previous = LAST_MICROS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(clock.max(last.saturating_add(1)))
        })
        .unwrap_or(clock);
    Timestamp::from_micros(clock.max(previous.saturating_add(1)))
}

pub fn get(id: &str) -> Result<Item> {
    validate::id(id)?;
    let db = protocol()?;
    run(db, db.get(id, now()))
}

pub fn create(item: NewItem) -> Result<Item> {
    validate::new_item(&item)?;
    let db = protocol()?;
    run(db, db.create(item, now()))
}

pub fn put(item: NewItem, expected_version: Option<String>) -> Result<(Item, PutOutcome)> {
    validate::new_item(&item)?;
    let db = protocol()?;
    run(db, db.put(item, expected_version, now()))
}

pub fn update(id: &str, patch: &ItemPatch, expected_version: Option<String>) -> Result<Item> {
    validate::id(id)?;
    validate::patch(patch)?;
    let db = protocol()?;
    run(db, db.update(id, patch, expected_version, now()))
}

pub fn delete(id: &str, expected_version: Option<String>) -> Result<()> {
    validate::id(id)?;
    let db = protocol()?;
    run(db, db.delete(id, expected_version, now()))
}

pub fn increment(id: &str, attribute: &str, delta: i64) -> Result<Item> {
    validate::id(id)?;
    validate::increment(attribute)?;
    let db = protocol()?;
    run(db, db.increment(id, attribute, delta, now()))
}

pub fn batch(writes: Vec<BatchWrite>) -> Result<BatchResult> {
    validate::batch(&writes)?;
    let db = protocol()?;
    run(db, db.batch(writes, now()))
}

pub fn query(query: Query) -> Result<Page> {
    validate::query(&query)?;
    let db = protocol()?;
    run(db, db.query(query, now()))
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
        assert_eq!(db.config().table(), "Items-prod");
        assert_eq!(
            db.config().endpoint(),
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn invalid_input_is_refused_before_any_configuration() {
        assert!(matches!(get("a/b"), Err(StoreError::InvalidInput(_))));
        let bad = NewItem {
            id: "a".into(),
            attributes: vec![item_model::Attribute::new("id", item_model::Value::Null)],
            ..Default::default()
        };
        assert!(matches!(create(bad), Err(StoreError::InvalidInput(_))));
        assert!(matches!(
            increment("a", "version", 1),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            batch(Vec::new()),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn times_strictly_increase() {
        let times: Vec<_> = (0..1000).map(|_| now()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }
}
