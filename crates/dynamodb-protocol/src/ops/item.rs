//! Single-item operations: get, create, put (read, then a conditional
//! write) and delete.

use item_model::{Item, NewItem, PutOutcome, StoreError, Timestamp};
use sansio::{Operation, Outgoing, Pause, Response, Step};
use serde_json::{Value as Json, json};

use super::{
    contention, expected_av, get_call, is_success, live, read_answer, request, send, to_json,
    version_of,
};
use crate::attr::{
    self, AttributeMap, VERSION, item_from_map, item_to_map, next_version, same_map,
};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// Write rounds of a put (or of a patch written whole) before giving up
/// under contention. Every round some writer wins, so n concurrent puts of
/// one item need at most n.
pub(super) const MAX_PUT_ROUNDS: u32 = 32;

impl DynamoDb {
    /// Reads an item (consistently).
    pub fn get(&self, id: &str, now: Timestamp) -> GetItem {
        GetItem {
            target: self.target(),
            id: id.to_string(),
            now: now.unix_seconds(),
        }
    }

    /// Creates an item; `already-exists` if an unexpired one has the id.
    pub fn create(&self, item: NewItem, now: Timestamp) -> CreateItem {
        let time = now.to_string();
        let wanted = item.into_item(time.clone(), time, "1".into());
        let prepared = item_to_map(&wanted).and_then(|map| Ok((item_from_map(&map)?, map)));
        CreateItem {
            target: self.target(),
            prepared,
            now: now.unix_seconds(),
        }
    }

    /// Creates or replaces an item, keeping `createdAt` on replace.
    pub fn put(&self, item: NewItem, expected_version: Option<String>, now: Timestamp) -> PutItem {
        PutItem {
            target: self.target(),
            item,
            expected: expected_version,
            now,
            rounds: 0,
            pending: None,
        }
    }

    /// Deletes an item.
    pub fn delete(&self, id: &str, expected_version: Option<String>, now: Timestamp) -> DeleteItem {
        let target = self.target();
        let mut e = Expr::default();
        let mut condition = e.live(now.unix_seconds());
        if let Some(expected) = &expected_version {
            let version = e.version_is(expected_av(expected).as_ref());
            condition = format!("{condition} AND {version}");
        }
        let mut body = request(target.table());
        body.insert("Key".into(), to_json(&attr::key(id)));
        body.insert("ConditionExpression".into(), json!(condition));
        body.insert(
            "ReturnValuesOnConditionCheckFailure".into(),
            json!("ALL_OLD"),
        );
        e.add_to(&mut body);
        // A resent delete that had been applied would report not-found
        // for a delete that succeeded; only throttled calls are resent.
        let call = target.call("DeleteItem", Json::Object(body), false);
        DeleteItem {
            target,
            call,
            expected: expected_version,
            now: now.unix_seconds(),
        }
    }
}

/// [`DynamoDb::get`].
#[derive(Debug)]
pub struct GetItem {
    target: Target,
    id: String,
    now: i64,
}

impl Operation for GetItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        send(get_call(&self.target, &self.id))
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        Step::Done(read_answer(response, &self.target).and_then(|item| {
            match live(item, self.now) {
                Some(map) => item_from_map(&map),
                None => Err(StoreError::NotFound),
            }
        }))
    }
}

/// A PutItem call that writes `map` under `condition`.
pub(super) fn put_call(
    target: &Target,
    map: &AttributeMap,
    condition: String,
    e: Expr,
) -> Result<Outgoing, StoreError> {
    let mut body = request(target.table());
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
    target.call("PutItem", Json::Object(body), true)
}

/// [`DynamoDb::create`].
#[derive(Debug)]
pub struct CreateItem {
    target: Target,
    prepared: Result<(Item, AttributeMap), StoreError>,
    now: i64,
}

impl Operation for CreateItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        match &self.prepared {
            Ok((_, map)) => {
                let mut e = Expr::default();
                let condition = e.free(self.now);
                send(put_call(&self.target, map, condition, e))
            }
            Err(e) => Step::Done(Err(e.clone())),
        }
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        let (item, map) = match &self.prepared {
            Ok(prepared) => prepared,
            Err(e) => return Step::Done(Err(e.clone())),
        };
        if is_success(response) {
            return Step::Done(Ok(item.clone()));
        }
        let error = ServiceError::parse(response);
        if error.is_conditional_check_failed() {
            // Our own write, found by a resend (on a first attempt, the
            // same item is someone else's).
            let ours = sansio::was_resent(response)
                && error.item.as_ref().is_some_and(|old| same_map(old, map));
            return Step::Done(if ours {
                Ok(item.clone())
            } else {
                Err(StoreError::AlreadyExists)
            });
        }
        Step::Done(Err(error.to_store_error("PutItem", self.target.table())))
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
    target: Target,
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
            return Step::Done(Err(contention()));
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
                let call = put_call(&self.target, &map, condition, e).map(|c| c.paused(pause));
                self.pending = Some(PendingPut { item, map, outcome });
                send(call)
            }
            Err(e) => Step::Done(Err(e)),
        }
    }
}

impl Operation for PutItem {
    type Output = (Item, PutOutcome);

    fn start(&mut self) -> Step<Self::Output> {
        send(get_call(&self.target, &self.item.id))
    }

    fn resume(&mut self, response: &Response) -> Step<Self::Output> {
        let Some(pending) = self.pending.take() else {
            // The answer to the first read.
            return match read_answer(response, &self.target) {
                Ok(item) => self.decide(item),
                Err(e) => Step::Done(Err(e)),
            };
        };
        if is_success(response) {
            return Step::Done(Ok((pending.item, pending.outcome)));
        }
        let error = ServiceError::parse(response);
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(error.to_store_error("PutItem", self.target.table())));
        }
        // A resend that finds exactly what it wrote has succeeded.
        if sansio::was_resent(response)
            && error
                .item
                .as_ref()
                .is_some_and(|old| same_map(old, &pending.map))
        {
            return Step::Done(Ok((pending.item, pending.outcome)));
        }
        self.decide(error.item)
    }
}

/// [`DynamoDb::delete`].
#[derive(Debug)]
pub struct DeleteItem {
    target: Target,
    call: Result<Outgoing, StoreError>,
    expected: Option<String>,
    now: i64,
}

impl Operation for DeleteItem {
    type Output = ();

    fn start(&mut self) -> Step<()> {
        send(self.call.clone())
    }

    fn resume(&mut self, response: &Response) -> Step<()> {
        if is_success(response) {
            return Step::Done(Ok(()));
        }
        let error = ServiceError::parse(response);
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(error.to_store_error("DeleteItem", self.target.table())));
        }
        Step::Done(Err(match (&self.expected, live(error.item, self.now)) {
            (None, _) => StoreError::NotFound,
            (Some(_), None) => StoreError::VersionMismatch(None),
            (Some(_), Some(map)) => StoreError::VersionMismatch(Some(version_of(&map))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use item_model::{Attribute, Value};

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
            done(create.resume(&ccf(Some(
                json!({"itemId": {"S": "a"}, "version": {"N": "4"}})
            )))),
            Err(StoreError::AlreadyExists)
        );
        // The same item on a first attempt is someone else's (two writers
        // in one microsecond); found by a resend, it is our own write.
        assert_eq!(
            done(create.resume(&ccf(Some(stored.clone())))),
            Err(StoreError::AlreadyExists)
        );
        let created = done(create.resume(&resent(ccf(Some(stored))))).unwrap();
        assert_eq!(
            created.attribute("likes"),
            Some(&Value::Number("1.5".into()))
        );
        assert_eq!(created.created_at, "2026-02-08T10:00:00.000001Z");
    }

    #[test]
    fn delete_maps_conditions() {
        let mut delete = db().delete("a", Some("2".into()), now());
        let step = delete.start();
        let Step::Send(call) = &step else { panic!() };
        assert!(!call.idempotent);
        assert_eq!(
            done(delete.resume(&ccf(Some(json!({"itemId": {"S": "a"}}))))),
            Err(StoreError::VersionMismatch(Some("0".into())))
        );
        let mut plain = db().delete("a", None, now());
        plain.start();
        assert_eq!(done(plain.resume(&ccf(None))), Err(StoreError::NotFound));
        assert_eq!(done(plain.resume(&ok(json!({})))), Ok(()));
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
        let sent = body(&put.resume(&ok(old)));
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
        let sent = body(&put.resume(&ccf(Some(newer))));
        assert_eq!(sent["Item"]["version"], json!({"N": "9"}));
        let (written, outcome) = done(put.resume(&ok(json!({})))).unwrap();
        assert_eq!(
            (written.version.as_str(), outcome),
            ("9", PutOutcome::Replaced)
        );

        // Create: nothing there.
        let mut put = db().put(item.clone(), None, now());
        put.start();
        let sent = body(&put.resume(&ok(json!({}))));
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_not_exists(#n0) OR #n1 <= :v0"
        );
        let (_, outcome) = done(put.resume(&ok(json!({})))).unwrap();
        assert_eq!(outcome, PutOutcome::Created);

        // Expected version: checked against the read.
        let mut put = db().put(item.clone(), Some("1".into()), now());
        put.start();
        assert_eq!(
            done(put.resume(&ok(json!({})))),
            Err(StoreError::VersionMismatch(None))
        );
        let mut put = db().put(item, Some("1".into()), now());
        put.start();
        let old = json!({"Item": {"itemId": {"S": "a"}, "version": {"N": "2"}}});
        assert_eq!(
            done(put.resume(&ok(old))),
            Err(StoreError::VersionMismatch(Some("2".into())))
        );
    }
}
