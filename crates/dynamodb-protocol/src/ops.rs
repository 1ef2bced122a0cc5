//! The store operations as exchanges of DynamoDB calls.
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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use item_model::{
    BatchResult, BatchWrite, Cursor, IndexName, Item, ItemPatch, NewItem, Order, Page, PutOutcome,
    Query, StoreError, Timestamp, validate,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use crate::attr::{
    self, AttributeMap, AttributeValue, CREATED_AT, EXPIRES_AT, ITEM_ID, STATUS, UPDATED_AT,
    USER_ID, VERSION, item_from_map, item_to_map, next_version, same_map, value_to_av, version_av,
};
use crate::config::Config;
use crate::error::{ServiceError, THROTTLE_RETRY_MS};
use crate::exchange::{Call, Exchange, HttpRequest, HttpResponse, Pause, Step};
use crate::expr::Expr;
use crate::number;
use crate::sign::sign_headers;

/// Most writes in one BatchWriteItem call (a DynamoDB limit).
pub const BATCH_CHUNK: usize = 25;
/// Consecutive BatchWriteItem answers with unprocessed items before we
/// give up and report throttling.
const MAX_BATCH_RESENDS: u32 = 10;
/// Query calls per page before a page is returned short (with a cursor),
/// so that a long run of expired items cannot hold a caller for long.
const MAX_QUERY_ROUNDS: u32 = 16;
/// Write rounds of a put before giving up under contention. Every round
/// some writer wins, so n concurrent puts of one item need at most n.
const MAX_PUT_ROUNDS: u32 = 32;
/// How long provisioning waits for a table to become ACTIVE.
const PROVISION_POLL: Duration = Duration::from_millis(500);
const MAX_PROVISION_POLLS: u32 = 240;

/// The DynamoDB API version every target names.
const TARGET_PREFIX: &str = "DynamoDB_20120810";

/// The protocol for one table: builds exchanges and signs their calls.
#[derive(Debug, Clone)]
pub struct DynamoDb {
    config: Config,
}

impl DynamoDb {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The signed HTTP request for `call`, at `time` (sign again for every
    /// resend: a signature is only valid for a few minutes).
    pub fn sign(&self, call: &Call, time: SystemTime) -> Result<HttpRequest, StoreError> {
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.0".to_string(),
            ),
            (
                "x-amz-target".to_string(),
                format!("{TARGET_PREFIX}.{}", call.action),
            ),
        ];
        let mut request = HttpRequest {
            method: "POST",
            url: format!("{}/", self.config.endpoint()),
            headers,
            body: call.body.clone(),
        };
        sign_headers(
            self.config.credentials(),
            self.config.region(),
            "dynamodb",
            &mut request,
            time,
        )?;
        Ok(request)
    }

    fn table(&self) -> String {
        self.config.table().to_string()
    }

    /// Reads an item (consistently).
    pub fn get(&self, id: &str, now: Timestamp) -> GetItem {
        GetItem {
            table: self.table(),
            id: id.to_string(),
            now: now.unix_seconds(),
        }
    }

    /// Creates an item; `already-exists` if an unexpired one has the id.
    pub fn create(&self, item: NewItem, now: Timestamp) -> CreateItem {
        let prepared = validate::new_item(&item).and_then(|()| {
            let time = now.to_string();
            let wanted = item.into_item(time.clone(), time, "1".into());
            let map = item_to_map(&wanted)?;
            Ok((item_from_map(&map)?, map))
        });
        CreateItem {
            table: self.table(),
            prepared,
            now: now.unix_seconds(),
        }
    }

    /// Creates or replaces an item, keeping `createdAt` on replace.
    pub fn put(&self, item: NewItem, expected_version: Option<String>, now: Timestamp) -> PutItem {
        PutItem {
            table: self.table(),
            error: validate::new_item(&item).err(),
            item,
            expected: expected_version,
            now,
            rounds: 0,
            pending: None,
        }
    }

    /// Changes part of an item.
    pub fn update(
        &self,
        id: &str,
        patch: &ItemPatch,
        expected_version: Option<String>,
        now: Timestamp,
    ) -> UpdateItem {
        let call = validate::id(id)
            .and_then(|()| validate::patch(patch))
            .and_then(|()| update_call(&self.config, id, patch, expected_version.as_deref(), now));
        UpdateItem {
            table: self.table(),
            call,
            expected: expected_version,
            now,
        }
    }

    /// Atomically adds `delta` to a numeric attribute (absent counts as 0).
    pub fn increment(&self, id: &str, attribute: &str, delta: i64, now: Timestamp) -> Increment {
        let call = validate::id(id)
            .and_then(|()| validate::increment(attribute))
            .map(|()| {
                let mut e = Expr::default();
                let condition = e.live(now.unix_seconds());
                let updated = e.name(UPDATED_AT);
                let time = e.value(AttributeValue::s(now.to_string()));
                let target = e.name(attribute);
                let delta = e.value(AttributeValue::int(delta));
                let version = e.name(VERSION);
                let one = e.value(AttributeValue::int(1));
                let mut body = request(self.config.table());
                body.insert("Key".into(), to_json(&attr::key(id)));
                body.insert(
                    "UpdateExpression".into(),
                    json!(format!(
                        "SET {updated} = {time} ADD {target} {delta}, {version} {one}"
                    )),
                );
                body.insert("ConditionExpression".into(), json!(condition));
                body.insert("ReturnValues".into(), json!("ALL_NEW"));
                e.add_to(&mut body);
                // Not idempotent: an ADD resent after an unknown outcome
                // could count twice, so only throttled calls are resent.
                Call::new("UpdateItem", Json::Object(body), false)
            });
        Increment {
            table: self.table(),
            attribute: attribute.to_string(),
            call,
        }
    }

    /// Deletes an item.
    pub fn delete(&self, id: &str, expected_version: Option<String>, now: Timestamp) -> DeleteItem {
        let call = validate::id(id).map(|()| {
            let mut e = Expr::default();
            let mut condition = e.live(now.unix_seconds());
            if let Some(expected) = &expected_version {
                let version = e.version_is(expected_av(expected).as_ref());
                condition = format!("{condition} AND {version}");
            }
            let mut body = request(self.config.table());
            body.insert("Key".into(), to_json(&attr::key(id)));
            body.insert("ConditionExpression".into(), json!(condition));
            body.insert(
                "ReturnValuesOnConditionCheckFailure".into(),
                json!("ALL_OLD"),
            );
            e.add_to(&mut body);
            // A resent delete that had been applied would report not-found
            // for a delete that succeeded; only throttled calls are resent.
            Call::new("DeleteItem", Json::Object(body), false)
        });
        DeleteItem {
            table: self.table(),
            call,
            expected: expected_version,
            now: now.unix_seconds(),
        }
    }

    /// Applies up to 100 unconditional writes, in BatchWriteItem calls of
    /// 25, resending what DynamoDB leaves unprocessed.
    ///
    /// A batch put cannot read the version it replaces (BatchWriteItem has
    /// no conditions or update expressions), so it writes the write time
    /// in microseconds as the version: a different value from the one it
    /// replaces, and larger than any counter conditional writes reach.
    pub fn batch(&self, writes: Vec<BatchWrite>, now: Timestamp) -> BatchWriteItems {
        let mut exchange = BatchWriteItems {
            table: self.table(),
            result: BatchResult::default(),
            queue: VecDeque::new(),
            resends: 0,
            error: None,
        };
        if let Err(e) = validate::batch(&writes) {
            exchange.error = Some(e);
            return exchange;
        }
        let time = now.to_string();
        let version = now.as_micros().to_string();
        for write in writes {
            let request = match write {
                BatchWrite::Put(put) => {
                    let created = put
                        .created_at
                        .as_deref()
                        .and_then(|c| Timestamp::parse(c).ok())
                        .map_or_else(|| time.clone(), |t| t.to_string());
                    let item = put.item.into_item(created, time.clone(), version.clone());
                    let stored = item_to_map(&item).and_then(|map| Ok((item_from_map(&map)?, map)));
                    match stored {
                        Ok((item, map)) => {
                            exchange.result.put.push(item);
                            json!({"PutRequest": {"Item": map}})
                        }
                        Err(e) => {
                            exchange.error = Some(e);
                            return exchange;
                        }
                    }
                }
                BatchWrite::Delete(id) => {
                    let request = json!({"DeleteRequest": {"Key": attr::key(&id)}});
                    exchange.result.deleted.push(id);
                    request
                }
            };
            exchange.queue.push_back(request);
        }
        exchange
    }

    /// One page of a query on `byUser` or `byStatus`.
    pub fn query(&self, query: Query, now: Timestamp) -> QueryItems {
        let mut exchange = QueryItems {
            table: self.table(),
            now: now.unix_seconds(),
            after: None,
            start_key: None,
            items: Vec::new(),
            rounds: 0,
            error: None,
            query,
        };
        if let Err(e) = validate::query(&exchange.query) {
            exchange.error = Some(e);
            return exchange;
        }
        if let Some(text) = &exchange.query.cursor {
            match Cursor::decode_for(text, &exchange.query) {
                Ok(cursor) => {
                    let index = exchange.query.key.index();
                    exchange.start_key = Some(BTreeMap::from([
                        (ITEM_ID.to_string(), AttributeValue::s(&cursor.id)),
                        (
                            CREATED_AT.to_string(),
                            AttributeValue::s(&cursor.created_at),
                        ),
                        (
                            index.attribute().to_string(),
                            AttributeValue::s(exchange.query.key.value()),
                        ),
                    ]));
                    exchange.after = Some((cursor.created_at, cursor.id));
                }
                Err(e) => exchange.error = Some(e.into()),
            }
        }
        exchange
    }

    /// Creates the table (if absent) with its two indexes, waits until all
    /// are ACTIVE, and enables TTL on `expiresAt`. Idempotent.
    pub fn provision(&self) -> Provision {
        Provision {
            table: self.table(),
            state: ProvisionState::Describing,
            created: false,
            polls: 0,
        }
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

fn is_success(response: &HttpResponse) -> bool {
    (200..300).contains(&response.status)
}

fn parse<T: DeserializeOwned>(response: &HttpResponse, action: &str) -> Result<T, StoreError> {
    serde_json::from_slice(&response.body)
        .map_err(|_| StoreError::Backend(format!("DynamoDB sent an unreadable answer to {action}")))
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

fn get_call(table: &str, id: &str) -> Call {
    let mut body = request(table);
    body.insert("Key".into(), to_json(&attr::key(id)));
    body.insert("ConsistentRead".into(), json!(true));
    Call::new("GetItem", Json::Object(body), true)
}

#[derive(Deserialize)]
struct ItemOut {
    #[serde(rename = "Item")]
    item: Option<AttributeMap>,
}

#[derive(Deserialize)]
struct AttributesOut {
    #[serde(rename = "Attributes")]
    attributes: Option<AttributeMap>,
}

/// [`DynamoDb::get`].
#[derive(Debug)]
pub struct GetItem {
    table: String,
    id: String,
    now: i64,
}

impl Exchange for GetItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        if let Err(e) = validate::id(&self.id) {
            return Step::Done(Err(e));
        }
        Step::Send(get_call(&self.table, &self.id))
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Item> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(error.to_store_error("GetItem", &self.table)));
        }
        Step::Done(parse::<ItemOut>(response, "GetItem").and_then(|out| {
            match live(out.item, self.now) {
                Some(map) => item_from_map(&map),
                None => Err(StoreError::NotFound),
            }
        }))
    }
}

/// A PutItem call that writes `map` under `condition`.
fn put_call(table: &str, map: &AttributeMap, condition: String, e: Expr) -> Call {
    let mut body = request(table);
    body.insert("Item".into(), to_json(map));
    body.insert("ConditionExpression".into(), json!(condition));
    body.insert(
        "ReturnValuesOnConditionCheckFailure".into(),
        json!("ALL_OLD"),
    );
    e.add_to(&mut body);
    // Idempotent: a resend after an applied write fails its condition and
    // finds exactly the item it wrote (compared whole, to the microsecond
    // of `updatedAt`), which counts as success.
    Call::new("PutItem", Json::Object(body), true)
}

/// [`DynamoDb::create`].
#[derive(Debug)]
pub struct CreateItem {
    table: String,
    prepared: Result<(Item, AttributeMap), StoreError>,
    now: i64,
}

impl Exchange for CreateItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        match &self.prepared {
            Ok((_, map)) => {
                let mut e = Expr::default();
                let condition = e.free(self.now);
                Step::Send(put_call(&self.table, map, condition, e))
            }
            Err(e) => Step::Done(Err(e.clone())),
        }
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Item> {
        let (item, map) = match &self.prepared {
            Ok(prepared) => prepared,
            Err(e) => return Step::Done(Err(e.clone())),
        };
        if is_success(response) {
            return Step::Done(Ok(item.clone()));
        }
        let error = ServiceError::parse(response);
        if error.is_conditional_check_failed() {
            let ours = error.item.as_ref().is_some_and(|old| same_map(old, map));
            return Step::Done(if ours {
                Ok(item.clone())
            } else {
                Err(StoreError::AlreadyExists)
            });
        }
        Step::Done(Err(error.to_store_error("PutItem", &self.table)))
    }
}

/// The write a put is waiting on.
#[derive(Debug)]
struct PendingPut {
    item: Item,
    map: AttributeMap,
    outcome: PutOutcome,
}

/// [`DynamoDb::put`]: reads the item, then writes the whole new item under
/// a condition on what it read (no item, or the version it had). When the
/// condition fails, the current item comes back with the failure and the
/// put decides again from it; so concurrent writers never lose an update
/// unseen, and `createdAt` is always the one of the item replaced.
#[derive(Debug)]
pub struct PutItem {
    table: String,
    error: Option<StoreError>,
    item: NewItem,
    expected: Option<String>,
    now: Timestamp,
    rounds: u32,
    pending: Option<PendingPut>,
}

impl PutItem {
    /// The next write, given the stored item (`None`: none, or expired).
    fn decide(&mut self, stored: Option<AttributeMap>) -> Step<(Item, PutOutcome)> {
        self.rounds += 1;
        if self.rounds > MAX_PUT_ROUNDS {
            return Step::Done(Err(StoreError::Unavailable(
                "the item kept changing under concurrent writes; retry".into(),
            )));
        }
        let now = self.now.unix_seconds();
        let current = live(stored.clone(), now);
        if let Some(expected) = &self.expected {
            match &current {
                None => return Step::Done(Err(StoreError::VersionMismatch(None))),
                Some(map) => {
                    let version = version_of(map);
                    if &version != expected {
                        return Step::Done(Err(StoreError::VersionMismatch(Some(version))));
                    }
                }
            }
        }
        let time = self.now.to_string();
        let mut e = Expr::default();
        let (created_at, version, condition, outcome) = match &current {
            None => {
                // Continue the counter of an expired item, so an old ETag
                // cannot match the new item.
                let version = next_version(stored.as_ref().and_then(|m| m.get(VERSION)));
                (time.clone(), version, e.free(now), PutOutcome::Created)
            }
            Some(map) => {
                let created_at = item_from_map(map).map_or_else(|_| time.clone(), |i| i.created_at);
                let old_version = map.get(VERSION);
                let condition = e.version_is(old_version);
                (
                    created_at,
                    next_version(old_version),
                    condition,
                    PutOutcome::Replaced,
                )
            }
        };
        let wanted = self.item.clone().into_item(created_at, time, version);
        let prepared = item_to_map(&wanted).and_then(|map| Ok((item_from_map(&map)?, map)));
        match prepared {
            Ok((item, map)) => {
                // After a lost race, wait a short random while (the first
                // backoff step) so that a crowd of writers spreads out
                // instead of colliding again; longer waits only slow the
                // crowd down, as each round lets one writer through.
                let pause = if self.rounds > 1 {
                    Pause::Backoff(1)
                } else {
                    Pause::None
                };
                let call = put_call(&self.table, &map, condition, e).paused(pause);
                self.pending = Some(PendingPut { item, map, outcome });
                Step::Send(call)
            }
            Err(e) => Step::Done(Err(e)),
        }
    }
}

impl Exchange for PutItem {
    type Output = (Item, PutOutcome);

    fn start(&mut self) -> Step<Self::Output> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        Step::Send(get_call(&self.table, &self.item.id))
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Self::Output> {
        let Some(pending) = self.pending.take() else {
            // The answer to the first read.
            if !is_success(response) {
                let error = ServiceError::parse(response);
                return Step::Done(Err(error.to_store_error("GetItem", &self.table)));
            }
            return match parse::<ItemOut>(response, "GetItem") {
                Ok(out) => self.decide(out.item),
                Err(e) => Step::Done(Err(e)),
            };
        };
        if is_success(response) {
            return Step::Done(Ok((pending.item, pending.outcome)));
        }
        let error = ServiceError::parse(response);
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(error.to_store_error("PutItem", &self.table)));
        }
        if error
            .item
            .as_ref()
            .is_some_and(|old| same_map(old, &pending.map))
        {
            return Step::Done(Ok((pending.item, pending.outcome)));
        }
        self.decide(error.item)
    }
}

/// Keeps the last of each name (the host rejects duplicates; this only
/// guards DynamoDB from overlapping paths).
fn last_of_each<T>(list: &[T], name: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<&T> = list
        .iter()
        .rev()
        .filter(|x| seen.insert(name(x).to_string()))
        .collect();
    kept.reverse();
    kept
}

fn update_call(
    config: &Config,
    id: &str,
    patch: &ItemPatch,
    expected: Option<&str>,
    now: Timestamp,
) -> Result<Call, StoreError> {
    let mut e = Expr::default();
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let set_names: HashSet<&str> = patch.set.iter().map(|a| a.name.as_str()).collect();
    for attribute in last_of_each(&patch.set, |a| &a.name) {
        let value = value_to_av(&attribute.name, &attribute.value)?;
        sets.push(format!("{} = {}", e.name(&attribute.name), e.value(value)));
    }
    for name in last_of_each(&patch.remove, |n| n) {
        if !set_names.contains(name.as_str()) {
            removes.push(e.name(name));
        }
    }
    let mut text_field = |field: &str, change: &Option<Option<String>>| match change {
        Some(Some(v)) => sets.push(format!(
            "{} = {}",
            e.name(field),
            e.value(AttributeValue::s(v))
        )),
        Some(None) => removes.push(e.name(field)),
        None => {}
    };
    text_field(USER_ID, &patch.user_id);
    text_field(STATUS, &patch.status);
    match patch.expires_at {
        Some(Some(at)) => sets.push(format!(
            "{} = {}",
            e.name(EXPIRES_AT),
            e.value(AttributeValue::int(at))
        )),
        Some(None) => removes.push(e.name(EXPIRES_AT)),
        None => {}
    }
    sets.push(format!(
        "{} = {}",
        e.name(UPDATED_AT),
        e.value(AttributeValue::s(now.to_string()))
    ));
    let version = e.name(VERSION);
    let zero = e.value(AttributeValue::int(0));
    let one = e.value(AttributeValue::int(1));
    sets.push(format!(
        "{version} = if_not_exists({version}, {zero}) + {one}"
    ));
    let mut update = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        update = format!("{update} REMOVE {}", removes.join(", "));
    }
    let mut condition = e.live(now.unix_seconds());
    if let Some(expected) = expected {
        let version = e.version_is(expected_av(expected).as_ref());
        condition = format!("{condition} AND {version}");
    }
    let mut body = request(config.table());
    body.insert("Key".into(), to_json(&attr::key(id)));
    body.insert("UpdateExpression".into(), json!(update));
    body.insert("ConditionExpression".into(), json!(condition));
    body.insert("ReturnValues".into(), json!("ALL_NEW"));
    body.insert(
        "ReturnValuesOnConditionCheckFailure".into(),
        json!("ALL_OLD"),
    );
    e.add_to(&mut body);
    // Idempotent: SET and REMOVE give the same item when applied twice
    // (the opaque version just moves on once more); with an expected
    // version, a resend that finds our own `updatedAt` and the next
    // version counts as success.
    Ok(Call::new("UpdateItem", Json::Object(body), true))
}

/// [`DynamoDb::update`].
#[derive(Debug)]
pub struct UpdateItem {
    table: String,
    call: Result<Call, StoreError>,
    expected: Option<String>,
    now: Timestamp,
}

impl Exchange for UpdateItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        Step::Send(match &self.call {
            Ok(call) => call.clone(),
            Err(e) => return Step::Done(Err(e.clone())),
        })
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Item> {
        if is_success(response) {
            return Step::Done(
                parse::<AttributesOut>(response, "UpdateItem").and_then(|out| {
                    out.attributes
                        .as_ref()
                        .map_or(Err(StoreError::NotFound), item_from_map)
                }),
            );
        }
        let error = ServiceError::parse(response);
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(error.to_store_error("UpdateItem", &self.table)));
        }
        let current = live(error.item, self.now.unix_seconds());
        Step::Done(match (&self.expected, current) {
            (None, _) => Err(StoreError::NotFound),
            (Some(_), None) => Err(StoreError::VersionMismatch(None)),
            (Some(expected), Some(map)) => {
                let item = item_from_map(&map);
                let ours = item.as_ref().is_ok_and(|item| {
                    item.updated_at == self.now.to_string()
                        && item.version == next_version(expected_av(expected).as_ref())
                });
                match item {
                    Ok(item) if ours => Ok(item),
                    Ok(item) => Err(StoreError::VersionMismatch(Some(item.version))),
                    Err(e) => Err(e),
                }
            }
        })
    }
}

/// [`DynamoDb::increment`]: one UpdateItem with `ADD`, which DynamoDB
/// applies atomically, so concurrent increments never lose a count.
#[derive(Debug)]
pub struct Increment {
    table: String,
    attribute: String,
    call: Result<Call, StoreError>,
}

impl Exchange for Increment {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        Step::Send(match &self.call {
            Ok(call) => call.clone(),
            Err(e) => return Step::Done(Err(e.clone())),
        })
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Item> {
        if is_success(response) {
            return Step::Done(
                parse::<AttributesOut>(response, "UpdateItem").and_then(|out| {
                    out.attributes
                        .as_ref()
                        .map_or(Err(StoreError::NotFound), item_from_map)
                }),
            );
        }
        let error = ServiceError::parse(response);
        Step::Done(Err(if error.is_conditional_check_failed() {
            StoreError::NotFound
        } else if error.is_validation() && error.message_contains("incorrect data type") {
            StoreError::InvalidInput(format!(
                "attribute `{}` is not a number, so it cannot be incremented",
                self.attribute
            ))
        } else if error.is_validation() {
            StoreError::InvalidInput(format!(
                "attribute `{}` cannot be incremented by this amount: {}",
                self.attribute,
                error.summary()
            ))
        } else {
            error.to_store_error("UpdateItem", &self.table)
        }))
    }
}

/// [`DynamoDb::delete`].
#[derive(Debug)]
pub struct DeleteItem {
    table: String,
    call: Result<Call, StoreError>,
    expected: Option<String>,
    now: i64,
}

impl Exchange for DeleteItem {
    type Output = ();

    fn start(&mut self) -> Step<()> {
        Step::Send(match &self.call {
            Ok(call) => call.clone(),
            Err(e) => return Step::Done(Err(e.clone())),
        })
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<()> {
        if is_success(response) {
            return Step::Done(Ok(()));
        }
        let error = ServiceError::parse(response);
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(error.to_store_error("DeleteItem", &self.table)));
        }
        Step::Done(Err(match (&self.expected, live(error.item, self.now)) {
            (None, _) => StoreError::NotFound,
            (Some(_), None) => StoreError::VersionMismatch(None),
            (Some(_), Some(map)) => StoreError::VersionMismatch(Some(version_of(&map))),
        }))
    }
}

#[derive(Deserialize)]
struct BatchOut {
    #[serde(rename = "UnprocessedItems", default)]
    unprocessed: BTreeMap<String, Vec<Json>>,
}

/// [`DynamoDb::batch`]. Each call carries at most [`BATCH_CHUNK`] writes;
/// what DynamoDB leaves unprocessed is sent again first, in a call marked
/// [`Pause::Backoff`] so that the transport backs off before sending it.
#[derive(Debug)]
pub struct BatchWriteItems {
    table: String,
    result: BatchResult,
    /// Write requests (`PutRequest`/`DeleteRequest`) not yet accepted.
    queue: VecDeque<Json>,
    /// Answers in a row that left work unprocessed.
    resends: u32,
    error: Option<StoreError>,
}

impl BatchWriteItems {
    /// Write requests not yet accepted by DynamoDB.
    pub fn unprocessed(&self) -> usize {
        self.queue.len()
    }

    fn next_call(&mut self, pause: Pause) -> Step<BatchResult> {
        let take = self.queue.len().min(BATCH_CHUNK);
        let chunk: Vec<Json> = self.queue.drain(..take).collect();
        let mut items = Map::new();
        items.insert(self.table.clone(), Json::Array(chunk));
        let body = json!({"RequestItems": items});
        // Idempotent: unconditional puts of a fixed item and deletes.
        Step::Send(Call::new("BatchWriteItem", body, true).paused(pause))
    }
}

impl Exchange for BatchWriteItems {
    type Output = BatchResult;

    fn start(&mut self) -> Step<BatchResult> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        self.next_call(Pause::None)
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<BatchResult> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(error.to_store_error("BatchWriteItem", &self.table)));
        }
        let mut out = match parse::<BatchOut>(response, "BatchWriteItem") {
            Ok(out) => out,
            Err(e) => return Step::Done(Err(e)),
        };
        let unprocessed = out.unprocessed.remove(&self.table).unwrap_or_default();
        if unprocessed.is_empty() {
            self.resends = 0;
            if self.queue.is_empty() {
                return Step::Done(Ok(std::mem::take(&mut self.result)));
            }
            return self.next_call(Pause::None);
        }
        self.resends += 1;
        if self.resends > MAX_BATCH_RESENDS {
            return Step::Done(Err(StoreError::Throttled(THROTTLE_RETRY_MS)));
        }
        for request in unprocessed.into_iter().rev() {
            self.queue.push_front(request);
        }
        self.next_call(Pause::Backoff(self.resends))
    }
}

#[derive(Deserialize)]
struct QueryOut {
    #[serde(rename = "Items", default)]
    items: Vec<AttributeMap>,
    #[serde(rename = "LastEvaluatedKey")]
    last_evaluated_key: Option<AttributeMap>,
}

/// [`DynamoDb::query`]. DynamoDB applies `Limit` before the filter that
/// hides expired items, so one call can return fewer than `limit` items
/// while more follow; the exchange keeps querying (from each
/// `LastEvaluatedKey`) until the page is full or the index ends. It reads
/// one item beyond the page, so that `next-cursor` is only given when more
/// items follow (the last page of an exact multiple has none). The next
/// cursor is the position of the last item returned, so pages never skip
/// or repeat an item.
///
/// Ties: the indexes sort by `createdAt` only, and DynamoDB orders items
/// with equal `createdAt` its own way (not by id). `createdAt` has
/// microseconds, so ties are rare (batch imports with equal given
/// `createdAt` make them); the cursor still resumes exactly, because its
/// `ExclusiveStartKey` holds the item id too.
#[derive(Debug)]
pub struct QueryItems {
    table: String,
    query: Query,
    now: i64,
    /// The cursor's position, to drop the item there if it comes back (an
    /// item written by others with a `createdAt` not in our exact form
    /// sorts next to the position the cursor names, not at it).
    after: Option<(String, String)>,
    start_key: Option<AttributeMap>,
    items: Vec<Item>,
    rounds: u32,
    error: Option<StoreError>,
}

impl QueryItems {
    fn call(&self) -> Call {
        let index = self.query.key.index();
        let mut e = Expr::default();
        let key = e.name(index.attribute());
        let value = e.value(AttributeValue::s(self.query.key.value()));
        let filter = e.not_expired(self.now);
        // The page and one more, to know whether a next page exists.
        let remaining = (self.query.limit as usize + 1)
            .saturating_sub(self.items.len())
            .max(1);
        // After a short answer, read ahead more: the surplus is cut off
        // and the cursor points at the last item kept.
        let limit = if self.rounds == 0 {
            remaining
        } else {
            remaining.max((remaining * 4).min(1000))
        };
        let mut body = request(&self.table);
        body.insert("IndexName".into(), json!(index_name(index)));
        body.insert(
            "KeyConditionExpression".into(),
            json!(format!("{key} = {value}")),
        );
        body.insert("FilterExpression".into(), json!(filter));
        body.insert(
            "ScanIndexForward".into(),
            json!(self.query.order == Order::Asc),
        );
        body.insert("Limit".into(), json!(limit));
        if let Some(start) = &self.start_key {
            body.insert("ExclusiveStartKey".into(), to_json(start));
        }
        e.add_to(&mut body);
        Call::new("Query", Json::Object(body), true)
    }

    fn page(&mut self, next: Option<(String, String)>) -> Step<Page> {
        Step::Done(Ok(Page {
            items: std::mem::take(&mut self.items),
            next_cursor: next
                .map(|(created_at, id)| Cursor::after(&self.query, &created_at, &id).encode()),
        }))
    }
}

fn index_name(index: IndexName) -> &'static str {
    index.as_str()
}

impl Exchange for QueryItems {
    type Output = Page;

    fn start(&mut self) -> Step<Page> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        Step::Send(self.call())
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Page> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(error.to_store_error("Query", &self.table)));
        }
        let out = match parse::<QueryOut>(response, "Query") {
            Ok(out) => out,
            Err(e) => return Step::Done(Err(e)),
        };
        self.rounds += 1;
        let limit = self.query.limit as usize;
        for map in &out.items {
            if expired(map, self.now) {
                continue;
            }
            let item = match item_from_map(map) {
                Ok(item) => item,
                Err(e) => return Step::Done(Err(e)),
            };
            let position = (item.created_at.clone(), item.id.clone());
            if self.after.as_ref() == Some(&position) {
                continue;
            }
            if self.items.len() >= limit {
                // One item beyond the page: there is a next page, and it
                // starts after the last item of this one.
                let last = self
                    .items
                    .last()
                    .map(|i| (i.created_at.clone(), i.id.clone()));
                return self.page(last);
            }
            self.items.push(item);
        }
        match out.last_evaluated_key {
            None => self.page(None),
            Some(last) if self.rounds >= MAX_QUERY_ROUNDS => {
                // Return short, resuming after the last item examined.
                let position = item_from_map(&last).ok().map(|i| (i.created_at, i.id));
                self.page(position)
            }
            Some(last) => {
                self.start_key = Some(last);
                Step::Send(self.call())
            }
        }
    }
}

/// What provisioning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provisioned {
    /// Whether the table was created now (false: it existed).
    pub created_table: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProvisionState {
    Describing,
    Creating,
    DescribingTtl,
    UpdatingTtl,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeOut {
    table: TableDescription,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableDescription {
    #[serde(default)]
    table_status: String,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexDescription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexDescription {
    index_name: String,
    #[serde(default)]
    index_status: String,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlOut {
    time_to_live_description: Option<TtlDescription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlDescription {
    #[serde(default)]
    time_to_live_status: String,
    attribute_name: Option<String>,
}

fn key_schema(elements: &[(&str, &str)]) -> Json {
    Json::Array(
        elements
            .iter()
            .map(|(name, kind)| json!({"AttributeName": name, "KeyType": kind}))
            .collect(),
    )
}

fn has_keys(schema: &[KeyElement], wanted: &[(&str, &str)]) -> bool {
    wanted.iter().all(|(name, kind)| {
        schema
            .iter()
            .any(|k| k.attribute_name == *name && k.key_type == *kind)
    })
}

/// The indexes and their keys.
const INDEXES: [(IndexName, &str); 2] =
    [(IndexName::ByUser, USER_ID), (IndexName::ByStatus, STATUS)];

/// [`DynamoDb::provision`].
#[derive(Debug)]
pub struct Provision {
    table: String,
    state: ProvisionState,
    created: bool,
    polls: u32,
}

impl Provision {
    fn describe(&mut self, pause: Pause) -> Step<Provisioned> {
        self.state = ProvisionState::Describing;
        Step::Send(Call::new("DescribeTable", json!({"TableName": self.table}), true).paused(pause))
    }

    fn poll(&mut self) -> Step<Provisioned> {
        self.polls += 1;
        if self.polls > MAX_PROVISION_POLLS {
            return Step::Done(Err(StoreError::Unavailable(format!(
                "table `{}` did not become ACTIVE in time",
                self.table
            ))));
        }
        self.describe(Pause::Poll(PROVISION_POLL))
    }

    fn create(&mut self) -> Step<Provisioned> {
        self.state = ProvisionState::Creating;
        let definitions: Vec<Json> = [ITEM_ID, USER_ID, STATUS, CREATED_AT]
            .iter()
            .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
            .collect();
        let indexes: Vec<Json> = INDEXES
            .iter()
            .map(|(index, key)| {
                json!({
                    "IndexName": index.as_str(),
                    "KeySchema": key_schema(&[(key, "HASH"), (CREATED_AT, "RANGE")]),
                    "Projection": {"ProjectionType": "ALL"},
                })
            })
            .collect();
        let body = json!({
            "TableName": self.table,
            "AttributeDefinitions": definitions,
            "KeySchema": key_schema(&[(ITEM_ID, "HASH")]),
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": indexes,
        });
        Step::Send(Call::new("CreateTable", body, true))
    }

    fn on_table(&mut self, table: &TableDescription) -> Step<Provisioned> {
        if !has_keys(&table.key_schema, &[(ITEM_ID, "HASH")]) || table.key_schema.len() != 1 {
            return Step::Done(Err(StoreError::Backend(format!(
                "table `{}` exists with another key; this store needs the partition key `itemId` alone",
                self.table
            ))));
        }
        let mut all_active = table.table_status == "ACTIVE";
        for (index, key) in INDEXES {
            let found = table
                .global_secondary_indexes
                .iter()
                .find(|i| i.index_name == index.as_str());
            match found {
                Some(i) if has_keys(&i.key_schema, &[(key, "HASH"), (CREATED_AT, "RANGE")]) => {
                    all_active &= i.index_status == "ACTIVE";
                }
                _ => {
                    return Step::Done(Err(StoreError::Backend(format!(
                        "table `{}` lacks the global secondary index `{}` ({key}, createdAt); add it or use a new table",
                        self.table,
                        index.as_str()
                    ))));
                }
            }
        }
        if all_active {
            self.state = ProvisionState::DescribingTtl;
            Step::Send(Call::new(
                "DescribeTimeToLive",
                json!({"TableName": self.table}),
                true,
            ))
        } else {
            self.poll()
        }
    }
}

impl Exchange for Provision {
    type Output = Provisioned;

    fn start(&mut self) -> Step<Provisioned> {
        self.describe(Pause::None)
    }

    fn on_response(&mut self, response: &HttpResponse) -> Step<Provisioned> {
        let ok = is_success(response);
        let error = (!ok).then(|| ServiceError::parse(response));
        match (self.state, error) {
            (ProvisionState::Describing, None) => {
                match parse::<DescribeOut>(response, "DescribeTable") {
                    Ok(out) => self.on_table(&out.table),
                    Err(e) => Step::Done(Err(e)),
                }
            }
            (ProvisionState::Describing, Some(e)) if e.is("ResourceNotFound") && !self.created => {
                self.create()
            }
            (ProvisionState::Creating, None) => {
                self.created = true;
                self.describe(Pause::None)
            }
            // Someone else is creating it: wait for them.
            (ProvisionState::Creating, Some(e)) if e.is("ResourceInUse") => self.poll(),
            (ProvisionState::DescribingTtl, None) => {
                let out = match parse::<TtlOut>(response, "DescribeTimeToLive") {
                    Ok(out) => out,
                    Err(e) => return Step::Done(Err(e)),
                };
                let (status, name) = out.time_to_live_description.map_or_else(
                    || (String::new(), None),
                    |d| (d.time_to_live_status, d.attribute_name),
                );
                match status.as_str() {
                    "ENABLED" | "ENABLING" if name.as_deref() == Some(EXPIRES_AT) => {
                        Step::Done(Ok(Provisioned {
                            created_table: self.created,
                        }))
                    }
                    "ENABLED" | "ENABLING" => Step::Done(Err(StoreError::Backend(format!(
                        "table `{}` has TTL on another attribute; this store needs it on `expiresAt`",
                        self.table
                    )))),
                    _ => {
                        self.state = ProvisionState::UpdatingTtl;
                        Step::Send(Call::new(
                            "UpdateTimeToLive",
                            json!({
                                "TableName": self.table,
                                "TimeToLiveSpecification": {"Enabled": true, "AttributeName": EXPIRES_AT},
                            }),
                            true,
                        ))
                    }
                }
            }
            (ProvisionState::UpdatingTtl, None) => Step::Done(Ok(Provisioned {
                created_table: self.created,
            })),
            (ProvisionState::UpdatingTtl, Some(e))
                if e.is_validation() && e.message_contains("already enabled") =>
            {
                Step::Done(Ok(Provisioned {
                    created_table: self.created,
                }))
            }
            (state, Some(e)) => {
                let action = match state {
                    ProvisionState::Describing => "DescribeTable",
                    ProvisionState::Creating => "CreateTable",
                    ProvisionState::DescribingTtl => "DescribeTimeToLive",
                    ProvisionState::UpdatingTtl => "UpdateTimeToLive",
                };
                Step::Done(Err(e.to_store_error(action, &self.table)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credentials;
    use item_model::{Attribute, BatchPut, IndexKey, Value};

    fn db() -> DynamoDb {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None).unwrap();
        DynamoDb::new(Config::new("us-east-1", credentials).unwrap())
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-02-08T10:00:00.000001Z").unwrap()
    }

    fn body(step: &Step<impl std::fmt::Debug>) -> Json {
        match step {
            Step::Send(call) => serde_json::from_slice(&call.body).unwrap(),
            Step::Done(r) => panic!("expected a call, got {r:?}"),
        }
    }

    fn ok(body: Json) -> HttpResponse {
        HttpResponse {
            status: 200,
            body: body.to_string().into_bytes(),
        }
    }

    fn ccf(item: Option<Json>) -> HttpResponse {
        let mut body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
        });
        if let Some(item) = item {
            body["Item"] = item;
        }
        HttpResponse {
            status: 400,
            body: body.to_string().into_bytes(),
        }
    }

    fn done<T: std::fmt::Debug>(step: Step<T>) -> Result<T, StoreError> {
        match step {
            Step::Done(r) => r,
            Step::Send(call) => panic!("expected the end, got {call:?}"),
        }
    }

    #[test]
    fn signed_request_shape() {
        let call = Call::new("GetItem", json!({"TableName": "Items"}), true);
        let request = db().sign(&call, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://dynamodb.us-east-1.amazonaws.com/");
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-amz-target"), Some("DynamoDB_20120810.GetItem"));
        assert_eq!(header("content-type"), Some("application/x-amz-json-1.0"));
        assert!(header("authorization").is_some_and(|a| a.contains(
            "/19700101/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target,"
        )));
        let debug = format!("{request:?}");
        assert!(!debug.contains("Signature="), "{debug}");
    }

    #[test]
    fn create_is_conditional_and_reports_conflicts() {
        let item = NewItem {
            id: "a".into(),
            attributes: vec![Attribute::new("likes", Value::Number("1.50".into()))],
            ..Default::default()
        };
        let mut create = db().create(item, now());
        let sent = body(&create.start());
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_not_exists(#n0) OR #n1 <= :v0"
        );
        assert_eq!(sent["Item"]["likes"], json!({"N": "1.5"}));
        assert_eq!(sent["Item"]["version"], json!({"N": "1"}));
        assert_eq!(sent["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
        let stored = sent["Item"].clone();
        assert_eq!(
            done(create.on_response(&ccf(Some(
                json!({"itemId": {"S": "a"}, "version": {"N": "4"}})
            )))),
            Err(StoreError::AlreadyExists)
        );
        // A resend that finds exactly what it wrote has succeeded.
        let created = done(create.on_response(&ccf(Some(stored)))).unwrap();
        assert_eq!(
            created.attribute("likes"),
            Some(&Value::Number("1.5".into()))
        );
        assert_eq!(created.created_at, "2026-02-08T10:00:00.000001Z");
    }

    #[test]
    fn update_builds_set_and_remove() {
        let patch = ItemPatch {
            user_id: Some(Some("u2".into())),
            status: Some(None),
            expires_at: Some(Some(2_000_000_000)),
            set: vec![Attribute::new("name", Value::Text("new".into()))],
            remove: vec!["old".into(), "old".into()],
        };
        let mut update = db().update("a", &patch, Some("3".into()), now());
        let sent = body(&update.start());
        assert_eq!(
            sent["UpdateExpression"],
            "SET #n0 = :v0, #n2 = :v1, #n4 = :v2, #n5 = :v3, #n6 = if_not_exists(#n6, :v4) + :v5 REMOVE #n1, #n3"
        );
        assert_eq!(
            sent["ExpressionAttributeNames"],
            json!({"#n0": "name", "#n1": "old", "#n2": "userId", "#n3": "status", "#n4": "expiresAt",
                   "#n5": "updatedAt", "#n6": "version", "#n7": "itemId"})
        );
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_exists(#n7) AND (attribute_not_exists(#n4) OR #n4 > :v6) AND #n6 = :v7"
        );
        assert_eq!(sent["ExpressionAttributeValues"][":v7"], json!({"N": "3"}));
        assert_eq!(sent["ReturnValues"], "ALL_NEW");

        let current = json!({"itemId": {"S": "a"}, "version": {"N": "9"}});
        assert_eq!(
            done(update.on_response(&ccf(Some(current)))),
            Err(StoreError::VersionMismatch(Some("9".into())))
        );
        assert_eq!(
            done(update.on_response(&ccf(None))),
            Err(StoreError::VersionMismatch(None))
        );
        let expired = json!({"itemId": {"S": "a"}, "version": {"N": "3"}, "expiresAt": {"N": "5"}});
        assert_eq!(
            done(update.on_response(&ccf(Some(expired)))),
            Err(StoreError::VersionMismatch(None))
        );
        // Our own write, found by a resend.
        let ours = json!({"itemId": {"S": "a"}, "version": {"N": "4"}, "updatedAt": {"S": now().to_string()}});
        assert_eq!(
            done(update.on_response(&ccf(Some(ours)))).unwrap().version,
            "4"
        );

        let mut unversioned = db().update("a", &ItemPatch::default(), None, now());
        let sent = body(&unversioned.start());
        assert!(
            !sent["ConditionExpression"]
                .as_str()
                .unwrap()
                .contains("#n1 =")
        );
        assert_eq!(
            done(unversioned.on_response(&ccf(None))),
            Err(StoreError::NotFound)
        );
        // Version "0" is the version of an item without one (boto3's).
        let mut zero = db().update("a", &ItemPatch::default(), Some("0".into()), now());
        let sent = body(&zero.start());
        assert!(
            sent["ConditionExpression"]
                .as_str()
                .unwrap()
                .ends_with("AND attribute_not_exists(#n1)")
        );
    }

    #[test]
    fn increment_and_its_errors() {
        let mut inc = db().increment("a", "likes", -2, now());
        let step = inc.start();
        let Step::Send(call) = &step else { panic!() };
        assert!(!call.idempotent);
        let sent = body(&step);
        assert_eq!(
            sent["UpdateExpression"],
            "SET #n2 = :v1 ADD #n3 :v2, #n4 :v3"
        );
        assert_eq!(sent["ExpressionAttributeValues"][":v2"], json!({"N": "-2"}));
        assert_eq!(done(inc.on_response(&ccf(None))), Err(StoreError::NotFound));
        let wrong_type = HttpResponse {
            status: 400,
            body: br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"An operand in the update expression has an incorrect data type"}"#.to_vec(),
        };
        let e = done(inc.on_response(&wrong_type)).unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains("`likes` is not a number")),
            "{e}"
        );
        let e = done(db().increment("a", "version", 1, now()).start()).unwrap_err();
        assert!(matches!(e, StoreError::InvalidInput(_)));
    }

    #[test]
    fn delete_maps_conditions() {
        let mut delete = db().delete("a", Some("2".into()), now());
        let step = delete.start();
        let Step::Send(call) = &step else { panic!() };
        assert!(!call.idempotent);
        assert_eq!(
            done(delete.on_response(&ccf(Some(json!({"itemId": {"S": "a"}}))))),
            Err(StoreError::VersionMismatch(Some("0".into())))
        );
        let mut plain = db().delete("a", None, now());
        plain.start();
        assert_eq!(
            done(plain.on_response(&ccf(None))),
            Err(StoreError::NotFound)
        );
        assert_eq!(done(plain.on_response(&ok(json!({})))), Ok(()));
    }

    #[test]
    fn put_reads_then_writes_conditionally() {
        let item = NewItem {
            id: "a".into(),
            ..Default::default()
        };
        // Replace: keeps createdAt, conditions on the version read.
        let mut put = db().put(item.clone(), None, now());
        assert_eq!(body(&put.start())["ConsistentRead"], true);
        let old = json!({"Item": {"itemId": {"S": "a"}, "createdAt": {"S": "2020-01-01T00:00:00"}, "version": {"N": "7"}, "gone": {"S": "x"}}});
        let sent = body(&put.on_response(&ok(old)));
        assert_eq!(sent["ConditionExpression"], "#n0 = :v0");
        assert_eq!(sent["ExpressionAttributeValues"][":v0"], json!({"N": "7"}));
        assert_eq!(
            sent["Item"]["createdAt"],
            json!({"S": "2020-01-01T00:00:00.000000Z"})
        );
        assert_eq!(sent["Item"]["version"], json!({"N": "8"}));
        assert!(sent["Item"].get("gone").is_none());
        // Someone wrote in between: decide again from the item sent back.
        let newer = json!({"itemId": {"S": "a"}, "createdAt": {"S": "2020-01-01T00:00:00.000000Z"}, "version": {"N": "8"}, "updatedAt": {"S": "2026-01-01T00:00:00.000000Z"}});
        let sent = body(&put.on_response(&ccf(Some(newer))));
        assert_eq!(sent["Item"]["version"], json!({"N": "9"}));
        let (written, outcome) = done(put.on_response(&ok(json!({})))).unwrap();
        assert_eq!(
            (written.version.as_str(), outcome),
            ("9", PutOutcome::Replaced)
        );

        // Create: nothing there.
        let mut put = db().put(item.clone(), None, now());
        put.start();
        let sent = body(&put.on_response(&ok(json!({}))));
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_not_exists(#n0) OR #n1 <= :v0"
        );
        let (_, outcome) = done(put.on_response(&ok(json!({})))).unwrap();
        assert_eq!(outcome, PutOutcome::Created);

        // Expected version: checked against the read.
        let mut put = db().put(item.clone(), Some("1".into()), now());
        put.start();
        assert_eq!(
            done(put.on_response(&ok(json!({})))),
            Err(StoreError::VersionMismatch(None))
        );
        let mut put = db().put(item, Some("1".into()), now());
        put.start();
        let old = json!({"Item": {"itemId": {"S": "a"}, "version": {"N": "2"}}});
        assert_eq!(
            done(put.on_response(&ok(old))),
            Err(StoreError::VersionMismatch(Some("2".into())))
        );
    }

    fn batch_of(n: usize) -> Vec<BatchWrite> {
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
                    })
                }
            })
            .collect()
    }

    fn requests(step: &Step<BatchResult>) -> Vec<Json> {
        body(step)["RequestItems"]["Items"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn batches_go_in_chunks_of_25_and_resend_unprocessed() {
        let mut batch = db().batch(batch_of(60), now());
        let first = batch.start();
        assert_eq!(requests(&first).len(), 25);
        assert_eq!(
            requests(&first)[0]["PutRequest"]["Item"]["createdAt"],
            json!({"S": "2019-12-31T22:00:00.000000Z"})
        );
        let second = batch.on_response(&ok(json!({"UnprocessedItems": {}})));
        let chunk = requests(&second);
        assert_eq!(chunk.len(), 25);
        // Two of them come back unprocessed: they go first, after a backoff.
        let left = json!({"UnprocessedItems": {"Items": [chunk[3].clone(), chunk[4].clone()]}});
        let third = batch.on_response(&ok(left));
        let Step::Send(call) = &third else { panic!() };
        assert_eq!(call.pause, Pause::Backoff(1));
        let resent = requests(&third);
        assert_eq!(resent.len(), 12);
        assert_eq!(resent[0], chunk[3]);
        assert_eq!(resent[1], chunk[4]);
        let result = done(batch.on_response(&ok(json!({})))).unwrap();
        assert_eq!(result.put.len(), 40);
        assert_eq!(result.deleted.len(), 20);
        assert_eq!(result.put[0].created_at, "2019-12-31T22:00:00.000000Z");
        assert_eq!(result.put[1].version, now().as_micros().to_string());
    }

    #[test]
    fn batches_give_up_when_nothing_gets_through() {
        let mut batch = db().batch(batch_of(1), now());
        let mut step = batch.start();
        for _ in 0..MAX_BATCH_RESENDS {
            let stuck = json!({"UnprocessedItems": {"Items": requests(&step)}});
            step = batch.on_response(&ok(stuck));
        }
        let stuck = json!({"UnprocessedItems": {"Items": requests(&step)}});
        assert_eq!(
            done(batch.on_response(&ok(stuck))),
            Err(StoreError::Throttled(THROTTLE_RETRY_MS))
        );
    }

    fn stored(id: &str, created: &str, expires: Option<i64>) -> Json {
        let mut item = json!({"itemId": {"S": id}, "status": {"S": "active"}, "createdAt": {"S": created}, "version": {"N": "1"}});
        if let Some(at) = expires {
            item["expiresAt"] = json!({"N": at.to_string()});
        }
        item
    }

    #[test]
    fn queries_fill_the_page_and_resume_after_the_last_item() {
        let query = Query {
            key: IndexKey::Status("active".into()),
            order: Order::Asc,
            limit: 2,
            cursor: None,
        };
        let mut q = db().query(query.clone(), now());
        let sent = body(&q.start());
        assert_eq!(sent["IndexName"], "byStatus");
        assert_eq!(sent["Limit"], 3);
        assert_eq!(sent["ScanIndexForward"], true);
        assert_eq!(sent["KeyConditionExpression"], "#n0 = :v0");
        assert_eq!(
            sent["FilterExpression"],
            "attribute_not_exists(#n1) OR #n1 > :v1"
        );
        // The filter hid one item: one item, and more to read.
        let first = json!({"Items": [stored("a", "2026-01-01T00:00:00.000000Z", None)],
                           "LastEvaluatedKey": {"itemId": {"S": "x"}, "status": {"S": "active"}, "createdAt": {"S": "2026-01-02T00:00:00.000000Z"}}});
        let sent = body(&q.on_response(&ok(first)));
        assert_eq!(sent["ExclusiveStartKey"]["itemId"], json!({"S": "x"}));
        assert_eq!(sent["Limit"], 8);
        // An expired item slipping through is dropped too; the item after
        // the page only proves that there is a next page.
        let second = json!({"Items": [
            stored("e", "2026-01-03T00:00:00.000000Z", Some(1)),
            stored("b", "2026-01-04T00:00:00.000000Z", None),
            stored("c", "2026-01-05T00:00:00.000000Z", None)]});
        let page = done(q.on_response(&ok(second))).unwrap();
        let ids: Vec<_> = page.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let cursor = Cursor::decode_for(page.next_cursor.as_deref().unwrap(), &query).unwrap();
        assert_eq!(
            (cursor.created_at.as_str(), cursor.id.as_str()),
            ("2026-01-04T00:00:00.000000Z", "b")
        );

        // The next page starts there.
        let mut next = db().query(
            Query {
                cursor: page.next_cursor,
                ..query.clone()
            },
            now(),
        );
        let sent = body(&next.start());
        assert_eq!(
            sent["ExclusiveStartKey"],
            json!({"itemId": {"S": "b"}, "status": {"S": "active"}, "createdAt": {"S": "2026-01-04T00:00:00.000000Z"}})
        );
        let last = json!({"Items": [stored("c", "2026-01-05T00:00:00.000000Z", None)]});
        let page = done(next.on_response(&ok(last))).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next_cursor, None);

        let mut other = db().query(
            Query {
                cursor: Some("bogus".into()),
                ..query
            },
            now(),
        );
        assert!(matches!(
            done(other.start()),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn provisioning_creates_waits_and_enables_ttl() {
        let mut p = db().provision();
        let step = p.start();
        let Step::Send(call) = &step else { panic!() };
        assert_eq!(call.action, "DescribeTable");
        let missing = HttpResponse {
            status: 400,
            body: br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#.to_vec(),
        };
        let create = p.on_response(&missing);
        let Step::Send(call) = &create else { panic!() };
        assert_eq!(call.action, "CreateTable");
        let sent = body(&create);
        assert_eq!(sent["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(sent["GlobalSecondaryIndexes"][1]["IndexName"], "byStatus");
        assert_eq!(
            sent["GlobalSecondaryIndexes"][1]["Projection"]["ProjectionType"],
            "ALL"
        );
        p.on_response(&ok(json!({"TableDescription": {}})));
        let table = |status: &str| {
            let index = |name: &str, key: &str| {
                json!({"IndexName": name, "IndexStatus": status,
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}]})
            };
            ok(
                json!({"Table": {"TableStatus": status, "KeySchema": [{"AttributeName": "itemId", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [index("byUser", "userId"), index("byStatus", "status")]}}),
            )
        };
        let wait = p.on_response(&table("CREATING"));
        let Step::Send(call) = &wait else { panic!() };
        assert_eq!(call.pause, Pause::Poll(PROVISION_POLL));
        let ttl = p.on_response(&table("ACTIVE"));
        let Step::Send(call) = &ttl else { panic!() };
        assert_eq!(call.action, "DescribeTimeToLive");
        let update = p.on_response(&ok(
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        ));
        assert_eq!(
            body(&update)["TimeToLiveSpecification"]["AttributeName"],
            "expiresAt"
        );
        let already = HttpResponse {
            status: 400,
            body: br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"TimeToLive is already enabled"}"#.to_vec(),
        };
        assert_eq!(
            done(p.on_response(&already)),
            Ok(Provisioned {
                created_table: true
            })
        );
    }
}
