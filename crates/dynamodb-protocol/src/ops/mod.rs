//! The store operations as [`sansio::Operation`]s over DynamoDB calls, one
//! file per concern: `item` (get, create, put, delete), `update` (update
//! and increment, which share their answer), `batch`, `once` (writes
//! applied at most once per key, in transactions), `query`, `scan` (every
//! item, for export), `provision`, `backfill` (of `__userStatus__` on older
//! items); the helpers they share are here.
//!
//! Concurrency: every write that depends on the stored state says so in a
//! `ConditionExpression` (the item exists and is not expired, the version
//! is the expected one), so concurrent writers cannot overwrite each other
//! unseen. Failed conditions ask for `ReturnValuesOnConditionCheckFailure:
//! ALL_OLD`, which tells not-found from version-mismatch (and gives the
//! current version) without a second read.
//!
//! Expiry: DynamoDB's TTL deletes expired items lazily (hours later), so
//! every read and condition checks `expiresAt` against the caller's clock.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use item_model::StoreError;
use sansio::{Outgoing, Response, Step};

use crate::attr::{self, AttributeMap, AttributeValue, EXPIRES_AT, item_from_map, version_av};
use crate::error::ServiceError;
use crate::number;
use crate::service::Target;

mod backfill;
mod batch;
mod item;
mod once;
mod provision;
mod query;
mod scan;
mod update;

pub use backfill::{BackfillUserStatus, Backfilled};
pub use batch::{BATCH_CHUNK, BatchWriteItems};
pub use item::{CreateItem, DeleteItem, GetItem, PutItem};
pub use once::{ApplyOnce, MAX_KEYED_BATCH, MAX_RECORD_BYTES};
pub use provision::{Provision, Provisioned};
pub use query::QueryItems;
pub use scan::ScanItems;
pub use update::{Increment, UpdateItem};

/// One page of a `Scan` answer (the backfill's and the export's).
#[derive(Deserialize)]
struct ScanOut {
    #[serde(rename = "Items", default)]
    items: Vec<AttributeMap>,
    #[serde(rename = "LastEvaluatedKey")]
    last_evaluated_key: Option<AttributeMap>,
}

/// The step that sends `call`, or ends with the error building it gave.
fn send<T>(call: Result<Outgoing, StoreError>) -> Step<T> {
    match call {
        Ok(outgoing) => Step::Send(outgoing),
        Err(error) => Step::Done(Err(error)),
    }
}

/// A request body with its table name.
fn request(table: &str) -> Map<String, Json> {
    let mut body = Map::new();
    body.insert("TableName".into(), json!(table));
    body
}

fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

fn is_success(response: &Response) -> bool {
    response.status().is_success()
}

fn parse<T: DeserializeOwned>(response: &Response, action: &str) -> Result<T, StoreError> {
    serde_json::from_slice(response.body())
        .map_err(|_| StoreError::Backend(format!("DynamoDB sent an unreadable answer to {action}")))
}

/// What a read-decide-write operation answers when every round lost its
/// race (another writer changed the item between its read and its write).
fn contention() -> StoreError {
    StoreError::Unavailable("the item kept changing under concurrent writes; retry".into())
}

/// Whether a stored item has expired at `now` (epoch seconds).
fn expired(map: &AttributeMap, now: i64) -> bool {
    matches!(map.get(EXPIRES_AT), Some(AttributeValue::N(n)) if number::to_i64(n).is_some_and(|at| at <= now))
}

/// The stored item, unless it is absent or expired.
fn live(map: Option<AttributeMap>, now: i64) -> Option<AttributeMap> {
    map.filter(|m| !expired(m, now))
}

/// An expected version as the stored value it must equal; `None` for
/// `"0"`, the version of an item without one.
fn expected_av(expected: &str) -> Option<AttributeValue> {
    (expected != "0").then(|| version_av(expected))
}

fn version_of(map: &AttributeMap) -> String {
    item_from_map(map).map_or_else(|_| "0".into(), |item| item.version)
}

fn get_call(target: &Target, id: &str) -> Result<Outgoing, StoreError> {
    let mut body = request(target.table());
    body.insert("Key".into(), to_json(&attr::key(id)));
    body.insert("ConsistentRead".into(), json!(true));
    target.call("GetItem", Json::Object(body), true)
}

#[derive(Deserialize)]
struct ItemOut {
    #[serde(rename = "Item")]
    item: Option<AttributeMap>,
}

/// The stored item a GetItem answer holds (`None` when absent, expired or
/// not), or the store error the answer means.
fn read_answer(response: &Response, target: &Target) -> Result<Option<AttributeMap>, StoreError> {
    if !is_success(response) {
        let error = ServiceError::parse(response);
        return Err(error.to_store_error("GetItem", target.table()));
    }
    parse::<ItemOut>(response, "GetItem").map(|out| out.item)
}

#[derive(Deserialize)]
struct AttributesOut {
    #[serde(rename = "Attributes")]
    attributes: Option<AttributeMap>,
}

/// What the operations' unit tests share: a protocol, a clock, canned
/// answers.
#[cfg(test)]
pub(crate) mod test_support {
    use item_model::Timestamp;
    use sansio::{Outgoing, Response, Step};
    use serde_json::{Value as Json, json};

    use crate::config::{Config, Credentials};
    use crate::service::DynamoDb;
    use item_model::StoreError;

    /// `n` batch writes: every third a delete, the others puts, the first
    /// with an imported creation time.
    pub(crate) fn batch_of(n: usize) -> Vec<item_model::BatchWrite> {
        use item_model::{BatchPut, BatchWrite, NewItem};
        (0..n)
            .map(|i| {
                if i % 3 == 2 {
                    BatchWrite::Delete(format!("d{i}"))
                } else {
                    BatchWrite::Put(BatchPut {
                        item: NewItem {
                            id: format!("p{i}"),
                            ..Default::default()
                        },
                        created_at: (i == 0).then(|| "2020-01-01T00:00:00+02:00".into()),
                        updated_at: None,
                    })
                }
            })
            .collect()
    }

    pub(crate) fn db() -> DynamoDb {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None).unwrap();
        DynamoDb::new(Config::new("us-east-1", credentials).unwrap())
    }

    pub(crate) fn now() -> Timestamp {
        Timestamp::parse("2026-02-08T10:00:00.000001Z").unwrap()
    }

    pub(crate) fn sent<T: std::fmt::Debug>(step: &Step<T>) -> &Outgoing {
        match step {
            Step::Send(outgoing) => outgoing,
            Step::Done(r) => panic!("expected a call, got {r:?}"),
        }
    }

    /// The action a step's call names.
    pub(crate) fn action<T: std::fmt::Debug>(step: &Step<T>) -> String {
        let target = &sent(step).request.headers()["x-amz-target"];
        target
            .to_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn body(step: &Step<impl std::fmt::Debug>) -> Json {
        serde_json::from_slice(sent(step).request.body()).unwrap()
    }

    pub(crate) fn ok(body: Json) -> Response {
        sansio::response(200, body.to_string())
    }

    pub(crate) fn error(kind: &str, message: &str) -> Response {
        let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
        sansio::response(400, body.to_string())
    }

    pub(crate) fn ccf(item: Option<Json>) -> Response {
        let mut body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
        });
        if let Some(item) = item {
            body["Item"] = item;
        }
        sansio::response(400, body.to_string())
    }

    /// `response` as the answer to a resend (the driver marks those).
    pub(crate) fn resent(mut response: Response) -> Response {
        sansio::mark_resent(&mut response);
        response
    }

    pub(crate) fn done<T: std::fmt::Debug>(step: Step<T>) -> Result<T, StoreError> {
        match step {
            Step::Done(r) => r,
            Step::Send(call) => panic!("expected the end, got {call:?}"),
        }
    }
}
