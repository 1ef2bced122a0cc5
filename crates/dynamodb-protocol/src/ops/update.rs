//! Partial writes: update (SET and REMOVE under conditions) and
//! increment (an atomic ADD). Both are usually one UpdateItem call
//! returning `ALL_NEW`, sent and read by [`UpdateCall`].
//!
//! Two kinds of patch cannot be one UpdateItem, and are written as a read
//! and a conditional PutItem of the whole patched item instead
//! ([`RewriteItem`], two requests):
//! - a patch that sets `userId` or `status` and leaves the other as it is:
//!   the `byUserStatus` key (`__userStatus__`) joins both, and an update
//!   expression cannot concatenate a stored value with a new one;
//! - a patch whose update expression would exceed DynamoDB's 4 KB limit
//!   on an expression string (a few hundred attributes).
//!
//! Every other patch (most) stays one UpdateItem.

use std::collections::HashSet;

use item_model::{Item, ItemPatch, StoreError, Timestamp, counter, user_status};
use sansio::{Operation, Outgoing, Pause, Response, Step};
use serde_json::{Value as Json, json};

use super::item::{MAX_PUT_ROUNDS, put_call};
use super::{
    AttributesOut, contention, expected_av, get_call, is_success, live, parse, read_answer,
    request, send, to_json, version_of,
};
use crate::attr::{
    self, AttributeMap, AttributeValue, EXPIRES_AT, ITEM_ID, STATUS, UPDATED_AT, USER_ID,
    USER_STATUS, VERSION, item_from_map, item_to_map, next_version, same_map, value_to_av,
};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

impl DynamoDb {
    /// Changes part of an item.
    pub fn update(
        &self,
        id: &str,
        patch: &ItemPatch,
        expected_version: Option<String>,
        now: Timestamp,
    ) -> UpdateItem {
        let target = self.target();
        let mode = match update_call(&target, id, patch, expected_version.as_deref(), now) {
            Ok(Some(call)) => Mode::Update {
                update: UpdateCall {
                    target,
                    call: Ok(call),
                },
                // The patch, to recognise our own write after a resend.
                expected: expected_version.map(|version| (version, patch.clone())),
                now,
            },
            Ok(None) => Mode::Rewrite(RewriteItem {
                target,
                id: id.to_string(),
                patch: patch.clone(),
                expected: expected_version,
                now,
                rounds: 0,
                pending: None,
            }),
            Err(e) => Mode::Update {
                update: UpdateCall {
                    target,
                    call: Err(e),
                },
                expected: expected_version.map(|version| (version, ItemPatch::default())),
                now,
            },
        };
        UpdateItem { mode }
    }

    /// Atomically adds `delta` to a numeric attribute (absent counts as 0).
    pub fn increment(&self, id: &str, attribute: &str, delta: i64, now: Timestamp) -> Increment {
        let target = self.target();
        let mut e = Expr::default();
        let condition = e.live(now.unix_seconds());
        let updated = e.name(UPDATED_AT);
        let time = e.value(AttributeValue::s(now.to_string()));
        let name = e.name(attribute);
        let delta = e.value(AttributeValue::int(delta));
        let version = e.name(VERSION);
        let one = e.value(AttributeValue::int(1));
        let mut body = request(target.table());
        body.insert("Key".into(), to_json(&attr::key(id)));
        body.insert(
            "UpdateExpression".into(),
            json!(format!(
                "SET {updated} = {time} ADD {name} {delta}, {version} {one}"
            )),
        );
        body.insert("ConditionExpression".into(), json!(condition));
        body.insert("ReturnValues".into(), json!("ALL_NEW"));
        e.add_to(&mut body);
        // Not idempotent: an ADD resent after an unknown outcome could
        // count twice, so only throttled calls are resent.
        let call = target.call("UpdateItem", Json::Object(body), false);
        Increment {
            update: UpdateCall { target, call },
            attribute: attribute.to_string(),
        }
    }
}

/// One UpdateItem call with `ReturnValues: ALL_NEW`: what update and
/// increment share.
#[derive(Debug)]
struct UpdateCall {
    target: Target,
    call: Result<Outgoing, StoreError>,
}

impl UpdateCall {
    fn start(&self) -> Step<Item> {
        send(self.call.clone())
    }

    /// The item as updated, or DynamoDB's refusal for the operation to map.
    fn answer(&self, response: &Response) -> Result<Result<Item, StoreError>, ServiceError> {
        if !is_success(response) {
            return Err(ServiceError::parse(response));
        }
        Ok(
            parse::<AttributesOut>(response, "UpdateItem").and_then(|out| {
                out.attributes
                    .as_ref()
                    .map_or(Err(StoreError::NotFound), item_from_map)
            }),
        )
    }

    /// A refusal no operation maps itself.
    fn refused(&self, error: &ServiceError) -> StoreError {
        error.to_store_error("UpdateItem", self.target.table())
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

/// DynamoDB refuses an expression string over 4 KB (4096 bytes: "Invalid
/// UpdateExpression: Expression size has exceeded the maximum allowed
/// size"); a patch whose expressions would be longer than this is written
/// whole instead. The margin leaves room for a difference in counting.
pub(crate) const MAX_EXPRESSION_BYTES: usize = 4000;

/// What a patch does to the `byUserStatus` key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UserStatusChange {
    /// The patch touches neither `userId` nor `status`.
    Keep,
    Set(String),
    Remove,
    /// It sets one and keeps the other: the new key needs the stored item.
    NeedsStored,
}

fn user_status_change(patch: &ItemPatch) -> UserStatusChange {
    match (&patch.user_id, &patch.status) {
        (None, None) => UserStatusChange::Keep,
        (Some(None), _) | (_, Some(None)) => UserStatusChange::Remove,
        (Some(Some(user_id)), Some(Some(status))) => {
            UserStatusChange::Set(user_status(user_id, status))
        }
        (Some(Some(_)), None) | (None, Some(Some(_))) => UserStatusChange::NeedsStored,
    }
}

/// The UpdateItem call of a patch, or `None` when the patch must be
/// written whole (see the module docs).
fn update_call(
    target: &Target,
    id: &str,
    patch: &ItemPatch,
    expected: Option<&str>,
    now: Timestamp,
) -> Result<Option<Outgoing>, StoreError> {
    let user_status = user_status_change(patch);
    if user_status == UserStatusChange::NeedsStored {
        return Ok(None);
    }
    let mut e = Expr::default();
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    // The expression's length so far (each clause and its separator), to
    // stop building one that cannot be sent; checked exactly below.
    let mut size = 0;
    let set_names: HashSet<&str> = patch.set.iter().map(|a| a.name.as_str()).collect();
    for attribute in last_of_each(&patch.set, |a| &a.name) {
        let value = value_to_av(&attribute.name, &attribute.value)?;
        let clause = format!("{} = {}", e.name(&attribute.name), e.value(value));
        size += clause.len() + 2;
        if size > MAX_EXPRESSION_BYTES {
            return Ok(None);
        }
        sets.push(clause);
    }
    for name in last_of_each(&patch.remove, |n| n) {
        if !set_names.contains(name.as_str()) {
            let placeholder = e.name(name);
            size += placeholder.len() + 2;
            if size > MAX_EXPRESSION_BYTES {
                return Ok(None);
            }
            removes.push(placeholder);
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
    match user_status {
        UserStatusChange::Set(key) => sets.push(format!(
            "{} = {}",
            e.name(USER_STATUS),
            e.value(AttributeValue::s(key))
        )),
        UserStatusChange::Remove => removes.push(e.name(USER_STATUS)),
        UserStatusChange::Keep | UserStatusChange::NeedsStored => {}
    }
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
    if update.len() > MAX_EXPRESSION_BYTES || condition.len() > MAX_EXPRESSION_BYTES {
        return Ok(None);
    }
    let mut body = request(target.table());
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
    target
        .call("UpdateItem", Json::Object(body), true)
        .map(Some)
}

/// [`DynamoDb::update`]: one UpdateItem, or for the patches the module
/// docs name, a read and a conditional PutItem ([`RewriteItem`]).
#[derive(Debug)]
pub struct UpdateItem {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Update {
        update: UpdateCall,
        /// The expected version and the patch.
        expected: Option<(String, ItemPatch)>,
        now: Timestamp,
    },
    Rewrite(RewriteItem),
}

impl UpdateItem {
    /// Whether the patch is written whole, after a read (two requests).
    pub fn reads_first(&self) -> bool {
        matches!(self.mode, Mode::Rewrite(_))
    }
}

impl Operation for UpdateItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        match &mut self.mode {
            Mode::Update { update, .. } => update.start(),
            Mode::Rewrite(rewrite) => rewrite.start(),
        }
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        let (update, expected, now) = match &mut self.mode {
            Mode::Update {
                update,
                expected,
                now,
            } => (update, expected, now),
            Mode::Rewrite(rewrite) => return rewrite.resume(response),
        };
        let error = match update.answer(response) {
            Ok(result) => return Step::Done(result),
            Err(error) => error,
        };
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(update.refused(&error)));
        }
        let current = live(error.item, now.unix_seconds());
        let resent = sansio::was_resent(response);
        Step::Done(match (&*expected, current) {
            (None, _) => Err(StoreError::NotFound),
            (Some(_), None) => Err(StoreError::VersionMismatch(None)),
            (Some((expected, patch)), Some(map)) => {
                let item = item_from_map(&map);
                // Our own write, applied by an earlier attempt whose answer
                // was lost: only after a resend (on a first attempt it is
                // another writer's, even in the same microsecond), at our
                // time and the version after the expected one, holding
                // what the patch says.
                let ours = resent
                    && item.as_ref().is_ok_and(|item| {
                        item.updated_at == now.to_string()
                            && item.version == next_version(expected_av(expected).as_ref())
                            && holds(item, patch)
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

/// Whether `item` already holds everything `patch` sets and removes.
fn holds(item: &Item, patch: &ItemPatch) -> bool {
    let mut patched = item.clone();
    patch.apply_to(&mut patched);
    patched == *item
}

/// The write a rewrite is waiting on.
#[derive(Debug)]
struct PendingRewrite {
    item: Item,
    map: AttributeMap,
}

/// A patch written whole: a consistent GetItem, the patch applied in
/// memory (`ItemPatch::apply_to`, the merge every read-modify-write store
/// shares), then a PutItem on condition that the item is still there,
/// unexpired, at the version read. When the condition fails, the current
/// item comes back with the failure and the patch is applied again to it
/// (at most [`MAX_PUT_ROUNDS`] times); with an expected version, a
/// different version is the usual mismatch.
#[derive(Debug)]
struct RewriteItem {
    target: Target,
    id: String,
    patch: ItemPatch,
    expected: Option<String>,
    now: Timestamp,
    rounds: u32,
    pending: Option<PendingRewrite>,
}

impl RewriteItem {
    fn start(&mut self) -> Step<Item> {
        self.pending = None;
        send(get_call(&self.target, &self.id))
    }

    /// The next write, given the stored item (`None`: none).
    fn decide(&mut self, stored: Option<AttributeMap>) -> Step<Item> {
        self.rounds += 1;
        if self.rounds > MAX_PUT_ROUNDS {
            return Step::Done(Err(contention()));
        }
        let now = self.now.unix_seconds();
        let Some(stored) = live(stored, now) else {
            return Step::Done(Err(match self.expected {
                Some(_) => StoreError::VersionMismatch(None),
                None => StoreError::NotFound,
            }));
        };
        if let Some(expected) = &self.expected {
            let version = version_of(&stored);
            if &version != expected {
                return Step::Done(Err(StoreError::VersionMismatch(Some(version))));
            }
        }
        let prepared = patched_map(&stored, &self.patch, self.now)
            .and_then(|map| Ok((item_from_map(&map)?, map)));
        let (item, map) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Step::Done(Err(e)),
        };
        let mut e = Expr::default();
        let there = e.live(now);
        let version = e.version_is(stored.get(VERSION));
        let condition = format!("{there} AND {version}");
        // After a lost race, a short random pause spreads the writers out
        // (as puts do).
        let pause = if self.rounds > 1 {
            Pause::Backoff(1)
        } else {
            Pause::None
        };
        let call = put_call(&self.target, &map, condition, e).map(|c| c.paused(pause));
        self.pending = Some(PendingRewrite { item, map });
        send(call)
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        let Some(pending) = self.pending.take() else {
            // The answer to the read.
            return match read_answer(response, &self.target) {
                Ok(item) => self.decide(item),
                Err(e) => Step::Done(Err(e)),
            };
        };
        if is_success(response) {
            return Step::Done(Ok(pending.item));
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
            return Step::Done(Ok(pending.item));
        }
        self.decide(error.item)
    }
}

/// The stored item with the patch applied, as written back: the next
/// version, `updatedAt` now, `__userStatus__` from the new fields; what
/// the patch does not touch stays exactly as stored (see
/// [`rewritten_map`]), as an UpdateItem would leave it.
fn patched_map(
    stored: &AttributeMap,
    patch: &ItemPatch,
    now: Timestamp,
) -> Result<AttributeMap, StoreError> {
    let mut item = item_from_map(stored)?;
    patch.apply_to(&mut item);
    item.updated_at = now.to_string();
    item.version = next_version(stored.get(VERSION));
    rewritten_map(stored, &item, |name| patch_touches(patch, name))
}

/// Whether `patch` sets or removes the attribute `name` (a well-known
/// field or a free attribute).
pub(super) fn patch_touches(patch: &ItemPatch, name: &str) -> bool {
    match name {
        USER_ID => patch.user_id.is_some(),
        STATUS => patch.status.is_some(),
        EXPIRES_AT => patch.expires_at.is_some(),
        _ => patch.set.iter().any(|a| a.name == name) || patch.remove.iter().any(|n| n == name),
    }
}

/// `item`, a changed copy of `stored`, as written back over it: the
/// attributes a write always sets (`itemId`, `updatedAt`, `version`,
/// `__userStatus__`) and those `touched` names from the item, every other
/// attribute exactly as stored (sets and binaries of other writers, a
/// foreign `id`, the spelling of `createdAt`).
pub(super) fn rewritten_map(
    stored: &AttributeMap,
    item: &Item,
    touched: impl Fn(&str) -> bool,
) -> Result<AttributeMap, StoreError> {
    let mut map = item_to_map(item)?;
    for (name, value) in stored {
        let rewritten =
            matches!(name.as_str(), ITEM_ID | UPDATED_AT | VERSION | USER_STATUS) || touched(name);
        if !rewritten {
            map.insert(name.clone(), value.clone());
        }
    }
    Ok(map)
}

/// [`DynamoDb::increment`]: one UpdateItem with `ADD`, which DynamoDB
/// applies atomically, so concurrent increments never lose a count.
#[derive(Debug)]
pub struct Increment {
    update: UpdateCall,
    attribute: String,
}

impl Operation for Increment {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        self.update.start()
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        let error = match self.update.answer(response) {
            Ok(result) => return Step::Done(result),
            Err(error) => error,
        };
        Step::Done(Err(if error.is_conditional_check_failed() {
            StoreError::NotFound
        } else if error.is_validation() && error.message_contains("incorrect data type") {
            // DynamoDB does not say what the attribute holds.
            counter::not_a_number(&self.attribute, None)
        } else if error.is_validation() {
            StoreError::InvalidInput(format!(
                "attribute `{}` cannot be incremented by this amount: {}",
                self.attribute,
                error.summary()
            ))
        } else {
            self.update.refused(&error)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use item_model::{Attribute, Value};

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
            "SET #n0 = :v0, #n2 = :v1, #n5 = :v2, #n6 = :v3, #n7 = if_not_exists(#n7, :v4) + :v5 REMOVE #n1, #n3, #n4"
        );
        assert_eq!(
            sent["ExpressionAttributeNames"],
            json!({"#n0": "name", "#n1": "old", "#n2": "userId", "#n3": "status", "#n4": "__userStatus__",
                   "#n5": "expiresAt", "#n6": "updatedAt", "#n7": "version", "#n8": "itemId"})
        );
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_exists(#n8) AND (attribute_not_exists(#n5) OR #n5 > :v6) AND #n7 = :v7"
        );
        assert_eq!(sent["ExpressionAttributeValues"][":v7"], json!({"N": "3"}));
        assert_eq!(sent["ReturnValues"], "ALL_NEW");

        let current = json!({"itemId": {"S": "a"}, "version": {"N": "9"}});
        assert_eq!(
            done(update.resume(&ccf(Some(current)))),
            Err(StoreError::VersionMismatch(Some("9".into())))
        );
        assert_eq!(
            done(update.resume(&ccf(None))),
            Err(StoreError::VersionMismatch(None))
        );
        let expired = json!({"itemId": {"S": "a"}, "version": {"N": "3"}, "expiresAt": {"N": "5"}});
        assert_eq!(
            done(update.resume(&ccf(Some(expired)))),
            Err(StoreError::VersionMismatch(None))
        );
        // Our own write, found by a resend: our time, the next version and
        // what the patch says. On a first attempt, or holding another
        // patch, it is another writer's (two can share a microsecond).
        let ours = json!({"itemId": {"S": "a"}, "version": {"N": "4"}, "updatedAt": {"S": now().to_string()},
                          "userId": {"S": "u2"}, "expiresAt": {"N": "2000000000"}, "name": {"S": "new"}});
        assert_eq!(
            done(update.resume(&ccf(Some(ours.clone())))),
            Err(StoreError::VersionMismatch(Some("4".into())))
        );
        assert_eq!(
            done(update.resume(&resent(ccf(Some(ours.clone())))))
                .unwrap()
                .version,
            "4"
        );
        let mut theirs = ours;
        theirs["name"] = json!({"S": "another writer's"});
        assert_eq!(
            done(update.resume(&resent(ccf(Some(theirs))))),
            Err(StoreError::VersionMismatch(Some("4".into())))
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
            done(unversioned.resume(&ccf(None))),
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

    fn fields(user_id: Option<Option<&str>>, status: Option<Option<&str>>) -> ItemPatch {
        ItemPatch {
            user_id: user_id.map(|v| v.map(String::from)),
            status: status.map(|v| v.map(String::from)),
            set: vec![Attribute::new("name", Value::Text("n".into()))],
            ..Default::default()
        }
    }

    /// What one UpdateItem does to `__userStatus__`, read from its body.
    fn user_status_in(sent: &Json) -> Option<String> {
        let names = sent["ExpressionAttributeNames"].as_object().unwrap();
        let (name, _) = names
            .iter()
            .find(|(_, n)| n.as_str() == Some(USER_STATUS))?;
        let update = sent["UpdateExpression"].as_str().unwrap();
        let (set, remove) = update.split_once(" REMOVE ").unwrap_or((update, ""));
        if remove.split(", ").any(|n| n == name) {
            return Some("REMOVE".into());
        }
        let value = set
            .trim_start_matches("SET ")
            .split(", ")
            .find_map(|clause| clause.strip_prefix(&format!("{name} = ")))?;
        Some(
            sent["ExpressionAttributeValues"][value]["S"]
                .as_str()?
                .to_string(),
        )
    }

    #[test]
    fn the_user_status_key_follows_the_patch_or_needs_a_read() {
        let joined = "u2\u{1f}done";
        // (userId, status, what the one UpdateItem does to the key; None:
        // the patch reads first)
        type Field<'a> = Option<Option<&'a str>>;
        let cases: [(Field, Field, Field); 9] = [
            (None, None, Some(None)),
            (Some(Some("u2")), Some(Some("done")), Some(Some(joined))),
            (Some(None), None, Some(Some("REMOVE"))),
            (None, Some(None), Some(Some("REMOVE"))),
            (Some(None), Some(None), Some(Some("REMOVE"))),
            (Some(None), Some(Some("done")), Some(Some("REMOVE"))),
            (Some(Some("u2")), Some(None), Some(Some("REMOVE"))),
            (Some(Some("u2")), None, None),
            (None, Some(Some("done")), None),
        ];
        for (user_id, status, expected) in cases {
            let mut update = db().update("a", &fields(user_id, status), None, now());
            let step = update.start();
            let case = format!("userId {user_id:?}, status {status:?}");
            match expected {
                None => {
                    assert!(update.reads_first(), "{case}");
                    assert_eq!(action(&step), "GetItem", "{case}");
                    assert_eq!(body(&step)["ConsistentRead"], true, "{case}");
                }
                Some(key) => {
                    assert!(!update.reads_first(), "{case}");
                    assert_eq!(action(&step), "UpdateItem", "{case}");
                    assert_eq!(user_status_in(&body(&step)).as_deref(), key, "{case}");
                }
            }
        }
    }

    #[test]
    fn patches_over_the_expression_limit_read_first() {
        let set = |n: usize| ItemPatch {
            set: (0..n)
                .map(|i| Attribute::new(format!("a{i}"), Value::Null))
                .collect(),
            ..Default::default()
        };
        let remove = |n: usize| ItemPatch {
            remove: (0..n).map(|i| format!("a{i}")).collect(),
            ..Default::default()
        };
        // (patch, expected version, whether it is one UpdateItem)
        let cases = [
            (set(1), None, true),
            (set(200), Some("7"), true),
            (set(280), None, false),
            (set(1000), None, false),
            (remove(400), None, true),
            (remove(600), None, false),
            (remove(10_000), Some("7"), false),
        ];
        for (patch, expected, one_call) in cases {
            let size = (patch.set.len(), patch.remove.len());
            let mut update = db().update("a", &patch, expected.map(String::from), now());
            let step = update.start();
            assert_eq!(!update.reads_first(), one_call, "{size:?}");
            if one_call {
                let sent = body(&step);
                let text = sent["UpdateExpression"].as_str().unwrap();
                assert!(text.len() <= MAX_EXPRESSION_BYTES, "{size:?}");
            } else {
                assert_eq!(action(&step), "GetItem", "{size:?}");
            }
        }
        // The switch is where the text crosses the limit: the largest
        // one-call patch is close to it.
        let largest = (1..1000)
            .take_while(|&n| !db().update("a", &set(n), None, now()).reads_first())
            .last()
            .unwrap();
        let mut update = db().update("a", &set(largest), None, now());
        let sent = body(&update.start());
        let text = sent["UpdateExpression"].as_str().unwrap();
        assert!(text.len() > MAX_EXPRESSION_BYTES - 30, "{}", text.len());
    }

    #[test]
    fn a_rewrite_reads_applies_and_writes_on_the_version_read() {
        let patch = ItemPatch {
            status: Some(Some("done".into())),
            set: vec![Attribute::new("name", Value::Text("new".into()))],
            remove: vec!["old".into()],
            ..Default::default()
        };
        let stored = json!({
            "itemId": {"S": "a"}, "createdAt": {"S": "2026-01-01T00:00:00"},
            "version": {"N": "3"}, "userId": {"S": "u1"}, "status": {"S": "open"},
            "__userStatus__": {"S": "u1\u{1f}open"}, "old": {"S": "x"},
            "name": {"S": "before"}, "tags": {"SS": ["p", "q"]}, "id": {"S": "foreign"},
        });
        let mut update = db().update("a", &patch, None, now());
        let read = update.start();
        assert_eq!(action(&read), "GetItem");
        let write = update.resume(&ok(json!({"Item": stored})));
        assert_eq!(action(&write), "PutItem");
        let sent = body(&write);
        assert_eq!(
            sent["ConditionExpression"],
            "attribute_exists(#n0) AND (attribute_not_exists(#n1) OR #n1 > :v0) AND #n2 = :v1"
        );
        assert_eq!(sent["ExpressionAttributeValues"][":v1"], json!({"N": "3"}));
        let item = &sent["Item"];
        assert_eq!(item["status"], json!({"S": "done"}));
        assert_eq!(item["__userStatus__"], json!({"S": "u1\u{1f}done"}));
        assert_eq!(item["version"], json!({"N": "4"}));
        assert_eq!(item["updatedAt"], json!({"S": now().to_string()}));
        assert_eq!(item["name"], json!({"S": "new"}));
        assert!(item.get("old").is_none());
        // Untouched: as stored, as an UpdateItem would leave them.
        assert_eq!(item["tags"], json!({"SS": ["p", "q"]}));
        assert_eq!(item["id"], json!({"S": "foreign"}));
        assert_eq!(item["createdAt"], json!({"S": "2026-01-01T00:00:00"}));

        // Someone wrote in between: apply the patch again to what is there.
        let newer = json!({"itemId": {"S": "a"}, "version": {"N": "5"}, "userId": {"S": "u9"}});
        let again = update.resume(&ccf(Some(newer)));
        let Step::Send(call) = &again else { panic!() };
        assert_eq!(call.pause, Pause::Backoff(1));
        let sent = body(&again);
        assert_eq!(sent["Item"]["version"], json!({"N": "6"}));
        assert_eq!(sent["Item"]["__userStatus__"], json!({"S": "u9\u{1f}done"}));
        let written = sent["Item"].clone();
        // A resend that finds its own write has succeeded.
        let item = done(update.resume(&resent(ccf(Some(written))))).unwrap();
        assert_eq!(item.version, "6");
        assert_eq!(item.status.as_deref(), Some("done"));
        assert_eq!(item.attribute(USER_STATUS), None);

        // Gone between the read and the write, or never there.
        let mut update = db().update("a", &patch, None, now());
        update.start();
        update.resume(&ok(
            json!({"Item": {"itemId": {"S": "a"}, "version": {"N": "1"}}}),
        ));
        assert_eq!(done(update.resume(&ccf(None))), Err(StoreError::NotFound));
        let mut update = db().update("a", &patch, None, now());
        update.start();
        assert_eq!(
            done(update.resume(&ok(json!({})))),
            Err(StoreError::NotFound)
        );
        let expired = json!({"Item": {"itemId": {"S": "a"}, "expiresAt": {"N": "5"}}});
        let mut update = db().update("a", &patch, None, now());
        update.start();
        assert_eq!(done(update.resume(&ok(expired))), Err(StoreError::NotFound));
    }

    #[test]
    fn a_rewrite_with_an_expected_version_does_not_retry() {
        let patch = ItemPatch {
            user_id: Some(Some("u2".into())),
            ..Default::default()
        };
        let at = |v: &str| json!({"itemId": {"S": "a"}, "version": {"N": v}, "status": {"S": "s"}});
        let mut update = db().update("a", &patch, Some("3".into()), now());
        update.start();
        assert_eq!(
            done(update.resume(&ok(json!({"Item": at("2")})))),
            Err(StoreError::VersionMismatch(Some("2".into())))
        );
        let mut update = db().update("a", &patch, Some("3".into()), now());
        update.start();
        assert_eq!(
            done(update.resume(&ok(json!({})))),
            Err(StoreError::VersionMismatch(None))
        );
        let mut update = db().update("a", &patch, Some("3".into()), now());
        update.start();
        let sent = body(&update.resume(&ok(json!({"Item": at("3")}))));
        assert_eq!(sent["Item"]["__userStatus__"], json!({"S": "u2\u{1f}s"}));
        assert_eq!(
            done(update.resume(&ccf(Some(at("4"))))),
            Err(StoreError::VersionMismatch(Some("4".into())))
        );
    }

    #[test]
    fn a_rewrite_gives_up_after_bounded_rounds() {
        let patch = ItemPatch {
            status: Some(Some("s".into())),
            ..Default::default()
        };
        let mut update = db().update("a", &patch, None, now());
        update.start();
        let mut step = update.resume(&ok(
            json!({"Item": {"itemId": {"S": "a"}, "version": {"N": "1"}}}),
        ));
        for round in 2..=MAX_PUT_ROUNDS + 1 {
            assert_eq!(action(&step), "PutItem");
            let other = json!({"itemId": {"S": "a"}, "version": {"N": round.to_string()}});
            step = update.resume(&ccf(Some(other)));
        }
        assert!(matches!(done(step), Err(StoreError::Unavailable(_))));
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
        assert_eq!(done(inc.resume(&ccf(None))), Err(StoreError::NotFound));
        let wrong_type = error(
            "ValidationException",
            "An operand in the update expression has an incorrect data type",
        );
        let e = done(inc.resume(&wrong_type)).unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains("`likes` is not a number")),
            "{e}"
        );
    }
}
