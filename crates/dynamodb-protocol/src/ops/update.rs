//! Partial writes: update (SET and REMOVE under conditions) and
//! increment (an atomic ADD). Both are one UpdateItem call returning
//! `ALL_NEW`, sent and read by [`UpdateCall`].

use std::collections::HashSet;

use item_model::{Item, ItemPatch, StoreError, Timestamp, counter};
use sansio::{Operation, Outgoing, Response, Step};
use serde_json::{Value as Json, json};

use super::{AttributesOut, expected_av, is_success, live, parse, request, send, to_json};
use crate::attr::{
    self, AttributeValue, EXPIRES_AT, STATUS, UPDATED_AT, USER_ID, VERSION, item_from_map,
    next_version, value_to_av,
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
        let call = update_call(&target, id, patch, expected_version.as_deref(), now);
        UpdateItem {
            update: UpdateCall { target, call },
            expected: expected_version,
            now,
        }
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

fn update_call(
    target: &Target,
    id: &str,
    patch: &ItemPatch,
    expected: Option<&str>,
    now: Timestamp,
) -> Result<Outgoing, StoreError> {
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
    target.call("UpdateItem", Json::Object(body), true)
}

/// [`DynamoDb::update`].
#[derive(Debug)]
pub struct UpdateItem {
    update: UpdateCall,
    expected: Option<String>,
    now: Timestamp,
}

impl Operation for UpdateItem {
    type Output = Item;

    fn start(&mut self) -> Step<Item> {
        self.update.start()
    }

    fn resume(&mut self, response: &Response) -> Step<Item> {
        let error = match self.update.answer(response) {
            Ok(result) => return Step::Done(result),
            Err(error) => error,
        };
        if !error.is_conditional_check_failed() {
            return Step::Done(Err(self.update.refused(&error)));
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
        // Our own write, found by a resend.
        let ours = json!({"itemId": {"S": "a"}, "version": {"N": "4"}, "updatedAt": {"S": now().to_string()}});
        assert_eq!(done(update.resume(&ccf(Some(ours)))).unwrap().version, "4");

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
