//! Writes applied at most once per key (WIT `apply-once`): the write and
//! its idempotency record in one DynamoDB transaction.
//!
//! # The record
//!
//! An item of the same table (a transaction spans items, and a second
//! table would have to be provisioned, granted and kept in step), keyed
//! `itemId = once/<key>`. Item ids never hold `/`, so no item has that
//! key; a record has no `userId`, `status` or `__userStatus__`, so it is in
//! no index and no query lists it, and the backfill Scan filters it out
//! (it looks for items with `userId`). It holds `fingerprint` (S),
//! `expiresAt` (N, the table's TTL attribute, so DynamoDB removes
//! records) and `written` (S, `Written::encode`). See [`crate::attr`].
//!
//! # A round
//!
//! 1. Read, consistently: a single-item write reads the record and the
//!    item in one `TransactGetItems` (one snapshot); a batch, whose writes
//!    are unconditional, reads only the record (`GetItem`).
//! 2. A live record (`expiresAt` after now; an expired one counts as
//!    absent) answers the call: `Record::answer` replays it, or says
//!    `key-reused` for another fingerprint.
//! 3. Otherwise the write is decided by `item_model::once::decide`
//!    against the live item (a failure, such as `not-found`, ends the call
//!    with nothing written) and marshalled as the plain operations do:
//!    `item_to_map`, and for update and increment the stored attributes
//!    they do not touch kept as stored (`update::rewritten_map`); a batch
//!    is `batch::prepare`'s actions, fixed before the first round.
//! 4. One `TransactWriteItems`: the record `Put`, on condition
//!    `attribute_not_exists(itemId) OR expiresAt <= :now` (an expired
//!    record is replaced), and the item's `Put` or `Delete`, on condition
//!    that the item is the one read (live at the version read, or free
//!    when read absent), or the batch's unconditional puts and deletes.
//!
//! A keyed single-item write or batch thus costs two requests when no one
//! else writes the item or key in between. A transaction DynamoDB
//! cancels because a condition failed or another transaction conflicted
//! means someone wrote in between: the call starts a new round, whose
//! read finds their record (and replays it) or their item (and decides
//! again). After [`MAX_PUT_ROUNDS`] rounds (the put's limit: each round
//! lets some writer through) it gives up: `key-in-use` when the record
//! was what kept conflicting, `throttled` when DynamoDB kept throttling
//! the transaction, else the contention error of the other
//! read-decide-write operations.
//!
//! # Resending
//!
//! Every `TransactWriteItems` carries a `ClientRequestToken`, so the
//! driver may resend it after an answer was lost: within 10 minutes
//! DynamoDB applies a token's transaction once and answers the resend
//! with success. The token is derived from the key, the round and what
//! tells this call from another with the same key (its fingerprint and
//! write time): two callers racing on one key must not share a token, as
//! DynamoDB refuses a token reused with other parameters
//! (`IdempotentParameterMismatchException`, which would then be a bug and
//! is a backend error). The reads are reads. A resend that arrives while
//! its first attempt is still being applied is answered
//! `TransactionInProgressException`; the call then starts a new round,
//! whose read finds the record holding exactly the result this call sent,
//! and answers it as applied now, not replayed.
//!
//! # Limits
//!
//! A transaction holds at most 100 actions, so a keyed batch holds at
//! most [`MAX_KEYED_BATCH`] writes beside its record. An item is at most
//! 400 KB, so a result whose record would pass [`MAX_RECORD_BYTES`] is
//! refused (`invalid-input`) before anything is written.

use item_model::once::{Decision, Record, decide};
use item_model::{Applied, Item, Once, StoreError, Timestamp, Write, Written};
use sansio::{Operation, Outgoing, Pause, Response, Step};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use super::batch::{BatchAction, prepare};
use super::item::MAX_PUT_ROUNDS;
use super::update::{patch_touches, rewritten_map};
use super::{ItemOut, contention, get_call, is_success, live, parse, read_answer, send, to_json};
use crate::attr::{
    self, AttributeMap, RECORD_PREFIX, VERSION, item_from_map, item_to_map, next_version,
    record_from_map, record_key, record_to_map,
};
use crate::error::{ServiceError, THROTTLE_RETRY_MS};
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// Most writes in a keyed batch: a transaction holds at most 100
/// actions, and one is the record.
pub const MAX_KEYED_BATCH: usize = 99;

/// Longest result a record may hold, in bytes: a DynamoDB item is at most
/// 400 KB (names and values), and the rest of the record and DynamoDB's
/// own counting need a margin.
pub const MAX_RECORD_BYTES: usize = 350 * 1024;

impl DynamoDb {
    /// Applies `write` at most once per `once.key`, atomically with its
    /// record (see the module docs). Input arrives validated.
    pub fn apply_once(&self, write: Write, once: Once, now: Timestamp) -> ApplyOnce {
        let plan = match write {
            Write::Batch(writes) => plan_batch(self.target().table(), writes, &once, now),
            single => Ok(Plan::Single(single)),
        };
        ApplyOnce {
            target: self.target(),
            once,
            now,
            plan,
            rounds: 0,
            lost: None,
            throttled: 0,
            sent: Vec::new(),
            pending: None,
        }
    }
}

/// What a call writes beside its record.
#[derive(Debug)]
enum Plan {
    /// Decided anew every round, against the item read.
    Single(Write),
    /// Fixed up front: batch writes are unconditional.
    Batch {
        actions: Vec<Json>,
        written: Written,
        record: Record,
    },
}

/// Why a round ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The record was written, or being written, by someone else.
    Record,
    /// The item changed between the read and the write.
    Item,
    /// DynamoDB throttled the transaction (nothing was applied).
    Throttled,
}

/// [`DynamoDb::apply_once`].
#[derive(Debug)]
pub struct ApplyOnce {
    target: Target,
    once: Once,
    /// The write time, the same in every round.
    now: Timestamp,
    plan: Result<Plan, StoreError>,
    /// Rounds begun (each a read, then usually a transaction).
    rounds: u32,
    /// Why the last round was lost.
    lost: Option<Lost>,
    /// Throttled rounds in a row, for the backoff before the next read.
    throttled: u32,
    /// The results this call's transactions recorded: a live record
    /// holding one with our fingerprint is this call's own write.
    sent: Vec<String>,
    /// The result of the transaction in flight; `None` while reading.
    pending: Option<Written>,
}

impl ApplyOnce {
    /// The read that begins a round, or the end when rounds are spent.
    fn read(&mut self) -> Step<Applied> {
        if self.rounds >= MAX_PUT_ROUNDS {
            return Step::Done(Err(match self.lost {
                Some(Lost::Record) => StoreError::KeyInUse,
                Some(Lost::Throttled) => StoreError::Throttled(THROTTLE_RETRY_MS),
                Some(Lost::Item) | None => contention(),
            }));
        }
        self.rounds += 1;
        self.pending = None;
        // After a lost race, a short random pause spreads the writers out
        // (as puts do); throttling backs off further each time.
        let pause = match self.lost {
            None => Pause::None,
            Some(Lost::Throttled) => Pause::Backoff(self.throttled),
            Some(Lost::Record | Lost::Item) => Pause::Backoff(1),
        };
        let call = match &self.plan {
            Ok(Plan::Single(write)) => {
                snapshot_call(&self.target, &self.once.key, write.id().unwrap_or_default())
            }
            Ok(Plan::Batch { .. }) => get_call(&self.target, &record_id(&self.once.key)),
            Err(e) => Err(e.clone()),
        };
        send(call.map(|c| c.paused(pause)))
    }

    /// A lost round: note why, and begin the next.
    fn retry(&mut self, lost: Lost) -> Step<Applied> {
        self.throttled = if lost == Lost::Throttled {
            self.throttled + 1
        } else {
            0
        };
        self.lost = Some(lost);
        self.read()
    }

    fn on_read(&mut self, response: &Response) -> Step<Applied> {
        let read = match &self.plan {
            Ok(Plan::Single(_)) => snapshot_answer(response, &self.target),
            Ok(Plan::Batch { .. }) => read_answer(response, &self.target)
                .map(|record| (record, None))
                .map_err(Failure::Error),
            Err(e) => Err(Failure::Error(e.clone())),
        };
        let (record, item) = match read {
            Ok(read) => read,
            Err(Failure::Lost(lost)) => return self.retry(lost),
            Err(Failure::Error(e)) => return Step::Done(Err(e)),
        };
        let seconds = self.now.unix_seconds();
        if let Some(map) = live(record, seconds) {
            return Step::Done(record_from_map(&map).and_then(|record| {
                if record.fingerprint == self.once.fingerprint
                    && self.sent.contains(&record.written)
                {
                    Written::decode(&record.written).map(Applied::now)
                } else {
                    record.answer(&self.once)
                }
            }));
        }
        let decided = match &self.plan {
            Ok(Plan::Single(write)) => single_action(self.target.table(), write, item, self.now)
                .and_then(|(action, written)| {
                    let record = record_of(&self.once, &written)?;
                    Ok((vec![action], written, record))
                }),
            Ok(Plan::Batch {
                actions,
                written,
                record,
            }) => Ok((actions.clone(), written.clone(), record.clone())),
            Err(e) => Err(e.clone()),
        };
        match decided {
            Ok((actions, written, record)) => self.write(actions, written, record),
            Err(e) => Step::Done(Err(e)),
        }
    }

    /// The transaction of this round: the record, then `actions`.
    fn write(&mut self, actions: Vec<Json>, written: Written, record: Record) -> Step<Applied> {
        let mut e = Expr::default();
        let free = e.free(self.now.unix_seconds());
        let mut put = Map::new();
        put.insert("TableName".into(), json!(self.target.table()));
        put.insert(
            "Item".into(),
            to_json(&record_to_map(&self.once.key, &record)),
        );
        put.insert("ConditionExpression".into(), json!(free));
        e.add_to(&mut put);
        let mut items = vec![json!({ "Put": put })];
        items.extend(actions);
        let body = json!({
            "TransactItems": items,
            "ClientRequestToken": request_token(&self.once, self.now, self.rounds),
        });
        self.sent.push(record.written);
        self.pending = Some(written);
        // Idempotent: DynamoDB applies a token's transaction once.
        send(self.target.call("TransactWriteItems", body, true))
    }

    fn on_write(&mut self, response: &Response, written: Written) -> Step<Applied> {
        if is_success(response) {
            return Step::Done(Ok(Applied::now(written)));
        }
        let error = ServiceError::parse(response);
        match lost_round(&error) {
            Some(lost) => self.retry(lost),
            None => Step::Done(Err(
                error.to_store_error("TransactWriteItems", self.target.table())
            )),
        }
    }
}

impl Operation for ApplyOnce {
    type Output = Applied;

    fn start(&mut self) -> Step<Applied> {
        self.read()
    }

    fn resume(&mut self, response: &Response) -> Step<Applied> {
        match self.pending.take() {
            None => self.on_read(response),
            Some(written) => self.on_write(response, written),
        }
    }
}

/// Why a read or a transaction gave no answer to act on.
enum Failure {
    /// Someone wrote in between: another round may succeed.
    Lost(Lost),
    /// The call's answer.
    Error(StoreError),
}

/// What a cancelled transaction (or a token still in progress) means for
/// the call; `None` for the failures the error module maps. The record is
/// always the first action of ours.
fn lost_round(error: &ServiceError) -> Option<Lost> {
    if error.is("TransactionInProgress") {
        // Our own transaction, resent, is still being applied.
        return Some(Lost::Record);
    }
    if !error.is("TransactionCanceled") {
        return None;
    }
    let reasons = &error.cancellation_reasons;
    let raced = |r: &String| r == "ConditionalCheckFailed" || r == "TransactionConflict";
    let throttled = |r: &String| r == "ThrottlingError" || r == "ProvisionedThroughputExceeded";
    if reasons.is_empty()
        || reasons
            .iter()
            .any(|r| r != "None" && !raced(r) && !throttled(r))
    {
        return None;
    }
    if reasons.first().is_some_and(raced) {
        Some(Lost::Record)
    } else if reasons.iter().any(raced) {
        Some(Lost::Item)
    } else {
        Some(Lost::Throttled)
    }
}

fn record_id(key: &str) -> String {
    format!("{RECORD_PREFIX}{key}")
}

/// The record of `written`, or `invalid-input` when it cannot be stored.
fn record_of(once: &Once, written: &Written) -> Result<Record, StoreError> {
    let record = Record::new(once, written);
    if record.written.len() > MAX_RECORD_BYTES {
        return Err(StoreError::invalid(
            "the result of this write is too large to record for an Idempotency-Key; \
             send it without the key or make it smaller",
        ));
    }
    Ok(record)
}

/// A keyed batch: `batch::prepare`'s actions as transaction actions, its
/// result and its record, or why it cannot be one transaction.
fn plan_batch(
    table: &str,
    writes: Vec<item_model::BatchWrite>,
    once: &Once,
    now: Timestamp,
) -> Result<Plan, StoreError> {
    if writes.len() > MAX_KEYED_BATCH {
        return Err(StoreError::invalid(format!(
            "a batch with an Idempotency-Key holds at most {MAX_KEYED_BATCH} writes on DynamoDB; split it"
        )));
    }
    let (result, actions) = prepare(writes, now)?;
    let actions = actions
        .into_iter()
        .map(|action| match action {
            BatchAction::Put(map) => json!({"Put": {"TableName": table, "Item": map}}),
            BatchAction::Delete(id) => {
                json!({"Delete": {"TableName": table, "Key": attr::key(&id)}})
            }
        })
        .collect();
    let written = Written::Batch(result);
    let record = record_of(once, &written)?;
    Ok(Plan::Batch {
        actions,
        written,
        record,
    })
}

/// The `TransactGetItems` of a round: the record, then the item.
fn snapshot_call(target: &Target, key: &str, id: &str) -> Result<Outgoing, StoreError> {
    let get = |key: AttributeMap| json!({"Get": {"TableName": target.table(), "Key": key}});
    let body = json!({"TransactItems": [get(record_key(key)), get(attr::key(id))]});
    target.call("TransactGetItems", body, true)
}

#[derive(Deserialize)]
struct SnapshotOut {
    #[serde(rename = "Responses", default)]
    responses: Vec<ItemOut>,
}

/// The record and the item a `TransactGetItems` answer holds (`None`:
/// absent).
fn snapshot_answer(
    response: &Response,
    target: &Target,
) -> Result<(Option<AttributeMap>, Option<AttributeMap>), Failure> {
    if !is_success(response) {
        let error = ServiceError::parse(response);
        return Err(match lost_round(&error) {
            Some(lost) => Failure::Lost(lost),
            None => Failure::Error(error.to_store_error("TransactGetItems", target.table())),
        });
    }
    let out = parse::<SnapshotOut>(response, "TransactGetItems").map_err(Failure::Error)?;
    let mut responses = out.responses.into_iter().map(|r| r.item);
    match (responses.next(), responses.next(), responses.next()) {
        (Some(record), Some(item), None) => Ok((record, item)),
        _ => Err(Failure::Error(StoreError::Backend(
            "DynamoDB answered TransactGetItems with the wrong number of items".into(),
        ))),
    }
}

/// The transaction action of a single-item write decided against
/// `stored` (as read: absent, expired or live), and what it returns.
fn single_action(
    table: &str,
    write: &Write,
    stored: Option<AttributeMap>,
    now: Timestamp,
) -> Result<(Json, Written), StoreError> {
    let seconds = now.unix_seconds();
    let current_map = live(stored.clone(), seconds);
    let current = current_map.as_ref().map(item_from_map).transpose()?;
    // Versions as the plain operations make them: a create starts at 1; a
    // put over an expired item continues its counter, so that an old ETag
    // cannot match the new item (so this reads `stored`, not the live item
    // `decide` passes).
    let version = |_: Option<&Item>| match write {
        Write::Create(_) => "1".to_string(),
        _ => next_version(stored.as_ref().and_then(|map| map.get(VERSION))),
    };
    let Decision {
        stored: after,
        written,
    } = decide(write, current.as_ref(), now, version)?;
    let mut e = Expr::default();
    let condition = match &current_map {
        Some(map) => {
            let there = e.live(seconds);
            let version = e.version_is(map.get(VERSION));
            format!("{there} AND {version}")
        }
        None => e.free(seconds),
    };
    let mut action = Map::new();
    action.insert("TableName".into(), json!(table));
    let (kind, written) = match after {
        None => {
            let id = write.id().unwrap_or_default();
            action.insert("Key".into(), to_json(&attr::key(id)));
            ("Delete", written)
        }
        Some(item) => {
            let map = match (write, &current_map) {
                (Write::Update { patch, .. }, Some(old)) => {
                    rewritten_map(old, &item, |name| patch_touches(patch, name))?
                }
                (Write::Increment { attribute, .. }, Some(old)) => {
                    rewritten_map(old, &item, |name| name == attribute)?
                }
                _ => item_to_map(&item)?,
            };
            // What a write returns is what later reads return (numbers in
            // DynamoDB's normal form).
            let item = item_from_map(&map)?;
            action.insert("Item".into(), to_json(&map));
            let written = match written {
                Written::Put(_, outcome) => Written::Put(item, outcome),
                _ => Written::Item(item),
            };
            ("Put", written)
        }
    };
    action.insert("ConditionExpression".into(), json!(condition));
    e.add_to(&mut action);
    Ok((json!({ kind: action }), written))
}

/// The `ClientRequestToken` of round `round` of the call with `once` at
/// `now`: the same for every resend of that transaction, different for
/// every other (another round, another caller with the same key). 32 hex
/// digits of a SHA-256, a dash and the round: at most 36 characters, as
/// DynamoDB allows.
fn request_token(once: &Once, now: Timestamp, round: u32) -> String {
    let digest = Sha256::new()
        .chain_update(once.key.as_bytes())
        .chain_update([0])
        .chain_update(once.fingerprint.as_bytes())
        .chain_update([0])
        .chain_update(now.as_micros().to_be_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{round}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use item_model::{Attribute, BatchPut, BatchWrite, ItemPatch, NewItem, PutOutcome, Value};

    fn once(fingerprint: &str) -> Once {
        Once {
            key: "k1".into(),
            fingerprint: fingerprint.into(),
            expires_at: now().unix_seconds() + 86_400,
        }
    }

    fn increment(delta: i64) -> Write {
        Write::Increment {
            id: "a".into(),
            attribute: "likes".into(),
            delta,
        }
    }

    fn stored(version: u32, likes: &str) -> Json {
        json!({"itemId": {"S": "a"}, "createdAt": {"S": "2026-01-01T00:00:00.000000Z"},
               "updatedAt": {"S": "2026-01-01T00:00:00.000000Z"}, "version": {"N": version.to_string()},
               "likes": {"N": likes}, "tags": {"SS": ["x", "y"]}})
    }

    fn record(fingerprint: &str, expires_at: i64, written: &Written) -> Json {
        json!({"itemId": {"S": "once/k1"}, "fingerprint": {"S": fingerprint},
               "expiresAt": {"N": expires_at.to_string()}, "written": {"S": written.encode()}})
    }

    /// A TransactGetItems answer: the record and the item, either absent.
    fn snapshot(record: Option<Json>, item: Option<Json>) -> Response {
        let entry = |item: Option<Json>| item.map_or_else(|| json!({}), |i| json!({"Item": i}));
        ok(json!({"Responses": [entry(record), entry(item)]}))
    }

    /// A TransactionCanceledException with these reasons, as AWS sends it.
    fn cancelled(reasons: &[&str]) -> Response {
        let listed: Vec<Json> = reasons.iter().map(|code| json!({"Code": code})).collect();
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", reasons.join(", ")),
            "CancellationReasons": listed,
        });
        sansio::response(400, body.to_string())
    }

    fn token(step: &Step<Applied>) -> String {
        body(step)["ClientRequestToken"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_keyed_increment_reads_a_snapshot_then_writes_item_and_record_together() {
        let mut op = db().apply_once(increment(2), once("f1"), now());
        let read = op.start();
        assert_eq!(action(&read), "TransactGetItems");
        assert!(sent(&read).idempotent);
        assert_eq!(
            body(&read),
            json!({"TransactItems": [
                {"Get": {"TableName": "Items", "Key": {"itemId": {"S": "once/k1"}}}},
                {"Get": {"TableName": "Items", "Key": {"itemId": {"S": "a"}}}},
            ]})
        );

        let write = op.resume(&snapshot(None, Some(stored(3, "5"))));
        assert_eq!(action(&write), "TransactWriteItems");
        assert!(sent(&write).idempotent, "a resend carries its token");
        let sent_body = body(&write);
        let token = sent_body["ClientRequestToken"].as_str().unwrap();
        assert!(token.len() <= 36 && token.ends_with("-1"), "{token}");
        let items = sent_body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let record = &items[0]["Put"];
        assert_eq!(record["TableName"], "Items");
        assert_eq!(
            record["ConditionExpression"],
            "attribute_not_exists(#n0) OR #n1 <= :v0"
        );
        assert_eq!(
            record["ExpressionAttributeNames"],
            json!({"#n0": "itemId", "#n1": "expiresAt"})
        );
        assert_eq!(
            record["ExpressionAttributeValues"][":v0"],
            json!({"N": now().unix_seconds().to_string()})
        );
        assert_eq!(record["Item"]["itemId"], json!({"S": "once/k1"}));
        assert_eq!(record["Item"]["fingerprint"], json!({"S": "f1"}));
        assert_eq!(
            record["Item"]["expiresAt"],
            json!({"N": once("f1").expires_at.to_string()})
        );
        assert!(record["Item"].get("userId").is_none());

        let item = &items[1]["Put"];
        assert_eq!(
            item["ConditionExpression"],
            "attribute_exists(#n0) AND (attribute_not_exists(#n1) OR #n1 > :v0) AND #n2 = :v1"
        );
        assert_eq!(item["ExpressionAttributeValues"][":v1"], json!({"N": "3"}));
        assert_eq!(item["Item"]["likes"], json!({"N": "7"}));
        assert_eq!(item["Item"]["version"], json!({"N": "4"}));
        assert_eq!(item["Item"]["updatedAt"], json!({"S": now().to_string()}));
        // What the increment does not touch stays as stored (a set of
        // another writer).
        assert_eq!(item["Item"]["tags"], json!({"SS": ["x", "y"]}));

        let applied = done(op.resume(&ok(json!({})))).unwrap();
        assert!(!applied.replayed);
        let Written::Item(counted) = &applied.written else {
            panic!("{applied:?}")
        };
        assert_eq!(counted.attribute("likes"), Some(&Value::Number("7".into())));
        assert_eq!(counted.version, "4");
        // The record holds exactly what the call returned.
        let recorded = record["Item"]["written"]["S"].as_str().unwrap();
        assert_eq!(Written::decode(recorded), Ok(applied.written));
    }

    #[test]
    fn creates_puts_updates_and_deletes_are_conditioned_on_what_was_read() {
        let new_item = NewItem {
            id: "a".into(),
            user_id: Some("u1".into()),
            status: Some("open".into()),
            attributes: vec![Attribute::new("price", Value::Number("1.50".into()))],
            ..NewItem::default()
        };
        // Create over nothing: the id must still be free.
        let mut op = db().apply_once(Write::Create(new_item.clone()), once("f"), now());
        op.start();
        let write = body(&op.resume(&snapshot(None, None)));
        let put = &write["TransactItems"][1]["Put"];
        assert_eq!(
            put["ConditionExpression"],
            "attribute_not_exists(#n0) OR #n1 <= :v0"
        );
        assert_eq!(put["Item"]["version"], json!({"N": "1"}));
        assert_eq!(put["Item"]["price"], json!({"N": "1.5"}));
        assert_eq!(put["Item"]["__userStatus__"], json!({"S": "u1\u{1f}open"}));
        let Written::Item(created) = done(op.resume(&ok(json!({})))).unwrap().written else {
            panic!()
        };
        assert_eq!(
            created.attribute("price"),
            Some(&Value::Number("1.5".into()))
        );

        // Create over an expired item continues nothing: version 1.
        let mut op = db().apply_once(Write::Create(new_item.clone()), once("f"), now());
        op.start();
        let mut old = stored(9, "1");
        old["expiresAt"] = json!({"N": "5"});
        let write = body(&op.resume(&snapshot(None, Some(old.clone()))));
        assert_eq!(
            write["TransactItems"][1]["Put"]["Item"]["version"],
            json!({"N": "1"})
        );
        // A put over it continues its counter, as the plain put does.
        let put_write = Write::Put {
            item: new_item.clone(),
            expected_version: None,
        };
        let mut op = db().apply_once(put_write.clone(), once("f"), now());
        op.start();
        let write = body(&op.resume(&snapshot(None, Some(old))));
        assert_eq!(
            write["TransactItems"][1]["Put"]["Item"]["version"],
            json!({"N": "10"})
        );
        let Written::Put(_, PutOutcome::Created) = done(op.resume(&ok(json!({})))).unwrap().written
        else {
            panic!()
        };

        // A put over a live item replaces it and keeps createdAt.
        let mut op = db().apply_once(put_write, once("f"), now());
        op.start();
        let write = body(&op.resume(&snapshot(None, Some(stored(3, "1")))));
        let put = &write["TransactItems"][1]["Put"];
        assert_eq!(put["ExpressionAttributeValues"][":v1"], json!({"N": "3"}));
        assert!(put["Item"].get("tags").is_none(), "a put replaces whole");
        let Written::Put(replaced, PutOutcome::Replaced) =
            done(op.resume(&ok(json!({})))).unwrap().written
        else {
            panic!()
        };
        assert_eq!(replaced.created_at, "2026-01-01T00:00:00.000000Z");

        // An update keeps what the patch does not touch.
        let patch = ItemPatch {
            status: Some(Some("done".into())),
            remove: vec!["likes".into()],
            ..ItemPatch::default()
        };
        let update = Write::Update {
            id: "a".into(),
            patch,
            expected_version: Some("3".into()),
        };
        let mut op = db().apply_once(update, once("f"), now());
        op.start();
        let write = body(&op.resume(&snapshot(None, Some(stored(3, "1")))));
        let put = &write["TransactItems"][1]["Put"]["Item"];
        assert_eq!(put["status"], json!({"S": "done"}));
        assert!(put.get("likes").is_none());
        assert_eq!(put["tags"], json!({"SS": ["x", "y"]}));
        assert_eq!(put["version"], json!({"N": "4"}));

        // A delete names the key, on condition of the version read.
        let delete = Write::Delete {
            id: "a".into(),
            expected_version: None,
        };
        let mut op = db().apply_once(delete, once("f"), now());
        op.start();
        let write = body(&op.resume(&snapshot(None, Some(stored(3, "1")))));
        let gone = &write["TransactItems"][1]["Delete"];
        assert_eq!(gone["Key"], json!({"itemId": {"S": "a"}}));
        assert_eq!(gone["ExpressionAttributeValues"][":v1"], json!({"N": "3"}));
        assert!(gone.get("Item").is_none());
        let applied = done(op.resume(&ok(json!({})))).unwrap();
        assert_eq!(applied.written, Written::Deleted);
    }

    #[test]
    fn a_failed_write_records_nothing() {
        let update = Write::Update {
            id: "a".into(),
            patch: ItemPatch::default(),
            expected_version: Some("2".into()),
        };
        let mut op = db().apply_once(update, once("f"), now());
        op.start();
        assert_eq!(
            done(op.resume(&snapshot(None, Some(stored(3, "1"))))),
            Err(StoreError::VersionMismatch(Some("3".into())))
        );
        let mut op = db().apply_once(increment(1), once("f"), now());
        op.start();
        assert_eq!(
            done(op.resume(&snapshot(None, None))),
            Err(StoreError::NotFound)
        );
    }

    #[test]
    fn a_live_record_is_replayed_or_refused_and_an_expired_one_is_not() {
        let earlier = Written::Deleted;
        let live = record("f1", now().unix_seconds() + 10, &earlier);
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        let applied = done(op.resume(&snapshot(Some(live.clone()), Some(stored(3, "1"))))).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: earlier.clone(),
                replayed: true
            }
        );

        let mut op = db().apply_once(increment(1), once("f2"), now());
        op.start();
        assert_eq!(
            done(op.resume(&snapshot(Some(live), None))),
            Err(StoreError::KeyReused)
        );

        let expired = record("f2", now().unix_seconds(), &earlier);
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        let write = op.resume(&snapshot(Some(expired), Some(stored(3, "1"))));
        assert_eq!(action(&write), "TransactWriteItems");

        let mut damaged = record("f1", now().unix_seconds() + 10, &earlier);
        damaged["written"] = json!({"S": "{}"});
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        assert!(matches!(
            done(op.resume(&snapshot(Some(damaged), None))),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn a_lost_race_starts_a_new_round_that_replays_the_winner() {
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        let first = op.resume(&snapshot(None, Some(stored(3, "1"))));
        let first_token = token(&first);
        // The item changed: read again, after a short pause.
        let reread = op.resume(&cancelled(&["None", "ConditionalCheckFailed"]));
        assert_eq!(action(&reread), "TransactGetItems");
        assert_eq!(sent(&reread).pause, Pause::Backoff(1));
        let second = op.resume(&snapshot(None, Some(stored(4, "2"))));
        let second_token = token(&second);
        assert_ne!(first_token, second_token, "every round has its own token");
        assert!(second_token.ends_with("-2"));
        assert_eq!(
            body(&second)["TransactItems"][1]["Put"]["Item"]["likes"],
            json!({"N": "3"})
        );
        // Another caller with the key won: its record is replayed.
        let reread = op.resume(&cancelled(&["ConditionalCheckFailed", "None"]));
        assert_eq!(action(&reread), "TransactGetItems");
        let theirs =
            Written::Item(item_from_map(&serde_json::from_value(stored(5, "3")).unwrap()).unwrap());
        let winner = record("f1", now().unix_seconds() + 10, &theirs);
        let applied = done(op.resume(&snapshot(Some(winner), Some(stored(5, "3"))))).unwrap();
        assert_eq!(
            applied,
            Applied {
                written: theirs,
                replayed: true
            }
        );

        // A conflicting transaction on the read counts the same way.
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        let again = op.resume(&cancelled(&["TransactionConflict", "None"]));
        assert_eq!(action(&again), "TransactGetItems");
    }

    #[test]
    fn the_same_transaction_resent_has_the_same_token() {
        let write = |now: Timestamp| {
            let mut op = db().apply_once(increment(1), once("f1"), now);
            op.start();
            token(&op.resume(&snapshot(None, Some(stored(3, "1")))))
        };
        assert_eq!(write(now()), write(now()));
        let later = Timestamp::from_micros(now().as_micros() + 1);
        assert_ne!(write(now()), write(later), "another call, another token");
        assert_ne!(
            request_token(&once("f1"), now(), 1),
            request_token(&once("f2"), now(), 1)
        );
        let longest = Once {
            key: "k".repeat(128),
            fingerprint: "f".repeat(128),
            expires_at: 0,
        };
        assert!(request_token(&longest, now(), MAX_PUT_ROUNDS).len() <= 36);
    }

    #[test]
    fn its_own_record_found_later_counts_as_applied_now() {
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        let write = op.resume(&snapshot(None, Some(stored(3, "1"))));
        let ours = body(&write)["TransactItems"][0]["Put"]["Item"].clone();
        let in_progress = error("TransactionInProgressException", "in progress");
        let reread = op.resume(&in_progress);
        assert_eq!(action(&reread), "TransactGetItems");
        let applied = done(op.resume(&snapshot(Some(ours), Some(stored(4, "2"))))).unwrap();
        assert!(!applied.replayed);
        let Written::Item(item) = applied.written else {
            panic!()
        };
        assert_eq!(item.version, "4");
    }

    #[test]
    fn rounds_are_bounded_and_say_what_kept_failing() {
        let cases: [(&[&str], StoreError); 3] = [
            (&["TransactionConflict", "None"], StoreError::KeyInUse),
            (&["None", "ConditionalCheckFailed"], contention()),
            (
                &["ThrottlingError", "None"],
                StoreError::Throttled(THROTTLE_RETRY_MS),
            ),
        ];
        for (reasons, expected) in cases {
            let mut op = db().apply_once(increment(1), once("f1"), now());
            let mut step = op.start();
            let mut writes = 0;
            let result = loop {
                step = match step {
                    Step::Done(result) => break result,
                    Step::Send(_) if action(&step) == "TransactGetItems" => {
                        op.resume(&snapshot(None, Some(stored(3, "1"))))
                    }
                    Step::Send(_) => {
                        writes += 1;
                        op.resume(&cancelled(reasons))
                    }
                };
            };
            assert_eq!(result, Err(expected), "{reasons:?}");
            assert_eq!(writes, MAX_PUT_ROUNDS);
        }
        // Throttling backs off further every round.
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        op.resume(&snapshot(None, Some(stored(3, "1"))));
        op.resume(&cancelled(&["ThrottlingError", "None"]));
        op.resume(&snapshot(None, Some(stored(3, "1"))));
        let third = op.resume(&cancelled(&["ThrottlingError", "None"]));
        assert_eq!(sent(&third).pause, Pause::Backoff(2));
    }

    #[test]
    fn other_refusals_are_mapped_by_the_error_module() {
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        op.resume(&snapshot(None, Some(stored(3, "1"))));
        let mismatch = error("IdempotentParameterMismatchException", "token reused");
        assert!(matches!(
            done(op.resume(&mismatch)),
            Err(StoreError::Backend(_))
        ));

        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        op.resume(&snapshot(None, Some(stored(3, "1"))));
        assert!(matches!(
            done(op.resume(&cancelled(&["None", "ValidationError"]))),
            Err(StoreError::InvalidInput(_))
        ));

        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        assert!(matches!(
            done(op.resume(&error("ResourceNotFoundException", "no table"))),
            Err(StoreError::Backend(m)) if m.contains("provisioning")
        ));
        let mut op = db().apply_once(increment(1), once("f1"), now());
        op.start();
        assert!(matches!(
            done(op.resume(&ok(json!({"Responses": [{}]})))),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn a_result_too_large_to_record_is_refused_before_writing() {
        let big = NewItem {
            id: "a".into(),
            attributes: vec![Attribute::new(
                "blob",
                Value::Text("x".repeat(MAX_RECORD_BYTES)),
            )],
            ..NewItem::default()
        };
        let mut op = db().apply_once(Write::Create(big.clone()), once("f"), now());
        assert_eq!(action(&op.start()), "TransactGetItems");
        let refused = done(op.resume(&snapshot(None, None))).unwrap_err();
        assert!(
            matches!(&refused, StoreError::InvalidInput(m) if m.contains("too large to record")),
            "{refused:?}"
        );
        // A batch is refused before its first request.
        let batch = Write::Batch(vec![BatchWrite::Put(BatchPut {
            item: big,
            created_at: None,
            updated_at: None,
        })]);
        let mut op = db().apply_once(batch, once("f"), now());
        assert!(matches!(
            done(op.start()),
            Err(StoreError::InvalidInput(m)) if m.contains("too large to record")
        ));
    }

    #[test]
    fn a_keyed_batch_is_one_transaction_of_at_most_99_writes() {
        let mut op = db().apply_once(Write::Batch(batch_of(100)), once("f"), now());
        let refused = done(op.start()).unwrap_err();
        assert_eq!(
            refused,
            StoreError::InvalidInput(
                "a batch with an Idempotency-Key holds at most 99 writes on DynamoDB; split it"
                    .into()
            )
        );

        let mut op = db().apply_once(Write::Batch(batch_of(99)), once("f"), now());
        let read = op.start();
        assert_eq!(action(&read), "GetItem");
        assert_eq!(
            body(&read),
            json!({"TableName": "Items", "Key": {"itemId": {"S": "once/k1"}}, "ConsistentRead": true})
        );
        let write = op.resume(&ok(json!({})));
        assert_eq!(action(&write), "TransactWriteItems");
        let sent_body = body(&write);
        let items = sent_body["TransactItems"].as_array().unwrap();
        assert_eq!(items.len(), 100);
        assert_eq!(items[0]["Put"]["Item"]["itemId"], json!({"S": "once/k1"}));
        // The puts and deletes of the plain batch, unconditional.
        let mut plain = db().batch(batch_of(99), now());
        let chunk = body(&plain.start())["RequestItems"]["Items"].clone();
        for (i, request) in chunk.as_array().unwrap().iter().enumerate() {
            match (&request["PutRequest"], &items[i + 1]["Put"]) {
                (Json::Null, _) => assert_eq!(
                    request["DeleteRequest"]["Key"],
                    items[i + 1]["Delete"]["Key"]
                ),
                (put, keyed) => assert_eq!(put["Item"], keyed["Item"]),
            }
        }
        assert_eq!(
            items[1]["Put"]["Item"]["createdAt"],
            json!({"S": "2019-12-31T22:00:00.000000Z"})
        );
        assert!(items[1]["Put"].get("ConditionExpression").is_none());
        assert_eq!(
            items[3],
            json!({"Delete": {"TableName": "Items", "Key": {"itemId": {"S": "d2"}}}})
        );
        let applied = done(op.resume(&ok(json!({})))).unwrap();
        let Written::Batch(result) = applied.written else {
            panic!()
        };
        assert_eq!((result.put.len(), result.deleted.len()), (66, 33));
        assert_eq!(result.put[1].version, now().as_micros().to_string());

        // A record found first is replayed, with no write.
        let mut op = db().apply_once(Write::Batch(batch_of(3)), once("f"), now());
        op.start();
        let earlier = Written::Batch(item_model::BatchResult::default());
        let found = json!({"Item": record("f", now().unix_seconds() + 1, &earlier)});
        assert_eq!(
            done(op.resume(&ok(found))),
            Ok(Applied {
                written: earlier,
                replayed: true
            })
        );
    }
}
