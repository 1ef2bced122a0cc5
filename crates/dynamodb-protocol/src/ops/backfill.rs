//! Backfill of `__userStatus__`: items written before the service kept
//! that key have `userId` and `status` but no `__userStatus__`, so they are
//! missing from `byUserStatus` until next written. This operation finds
//! them with a Scan of the whole table and gives each the key with one
//! conditional UpdateItem.
//!
//! The Scan is paginated (`ExclusiveStartKey`), projects only the key,
//! `userId`, `status` and `__userStatus__`, and filters on
//! `attribute_exists(userId) AND attribute_exists(status) AND
//! attribute_not_exists(__userStatus__)` (DynamoDB still reads, and bills,
//! every item: a filter only shortens the answer). Items are updated one
//! at a time, in the order scanned.
//!
//! Each update is `SET __userStatus__ = :joined` on the condition that
//! `userId` and `status` still hold the values scanned and
//! `__userStatus__` is still absent. A concurrent write that changed either
//! field (or deleted the item) has set or removed the key itself, so a
//! failed condition means there is nothing left to do: the item is counted
//! as skipped, not as an error. The update touches neither `version` nor
//! `updatedAt`: the item's content, and so its ETag, is unchanged, and
//! concurrent conditional writes are not disturbed. Safe to run while
//! serving, and idempotent: a second run finds nothing to update.
//!
//! Items that have `__userStatus__` with a value that disagrees with
//! `userId` and `status` are not looked for: every write of this service
//! sets, replaces or removes the key together with the two fields (see
//! `attr::item_to_map` and the patch paths in `update`), so such an item
//! can only come from a foreign writer that sets `__userStatus__` itself.
//!
//! Retries are the driver's: a throttled Scan or UpdateItem is resent with
//! backoff under [`crate::RETRY_POLICY`]; once its attempts are spent the
//! backfill ends with the error, and running it again resumes where it
//! matters (the items already updated no longer match the filter).

use std::collections::VecDeque;

use item_model::{StoreError, user_status};
use sansio::{Operation, Outgoing, Response, Step};
use serde_json::{Value as Json, json};

use super::{ScanOut, is_success, parse, request, send, to_json};
use crate::attr::{self, AttributeMap, AttributeValue, ITEM_ID, STATUS, USER_ID, USER_STATUS};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// DynamoDB's limit on a partition key value, in bytes: a joined key
/// longer than this cannot be indexed (only foreign items, with fields
/// longer than the service accepts, can reach it).
const MAX_PARTITION_KEY_BYTES: usize = 2048;

impl DynamoDb {
    /// Gives `__userStatus__` to every item that has `userId` and `status`
    /// but lacks it (see the module docs). Idempotent.
    pub fn backfill_user_status(&self) -> BackfillUserStatus {
        BackfillUserStatus {
            target: self.target(),
            state: BackfillState::Scanning,
            start_key: None,
            more: true,
            pending: VecDeque::new(),
            done: Backfilled::default(),
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Items the Scan returned: with `userId` and `status`, without
    /// `__userStatus__`.
    pub found: u64,
    /// Items given `__userStatus__` now.
    pub updated: u64,
    /// Items left alone: changed or deleted by a concurrent write since
    /// the Scan (which keeps the key right itself), or whose `userId` or
    /// `status` is not a string (written by another client; such an item
    /// is in no index of those fields) or too long to index.
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackfillState {
    Scanning,
    Updating,
}

/// An item to update: its id and the two fields as scanned.
#[derive(Debug)]
struct Found {
    id: String,
    user_id: String,
    status: String,
}

/// [`DynamoDb::backfill_user_status`].
#[derive(Debug)]
pub struct BackfillUserStatus {
    target: Target,
    state: BackfillState,
    /// Where the next Scan page starts.
    start_key: Option<AttributeMap>,
    /// Whether the Scan has pages left.
    more: bool,
    /// Items of the last page not updated yet; a page holds at most 1 MB
    /// of items, so this is bounded.
    pending: VecDeque<Found>,
    done: Backfilled,
}

fn text(map: &AttributeMap, name: &str) -> Option<String> {
    match map.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

impl BackfillUserStatus {
    fn scan(&mut self) -> Step<Backfilled> {
        self.state = BackfillState::Scanning;
        let mut e = Expr::default();
        let id = e.name(ITEM_ID);
        let user = e.name(USER_ID);
        let status = e.name(STATUS);
        let key = e.name(USER_STATUS);
        let mut body = request(self.target.table());
        body.insert(
            "ProjectionExpression".into(),
            json!(format!("{id}, {user}, {status}, {key}")),
        );
        body.insert(
            "FilterExpression".into(),
            json!(format!(
                "attribute_exists({user}) AND attribute_exists({status}) AND attribute_not_exists({key})"
            )),
        );
        if let Some(start) = &self.start_key {
            body.insert("ExclusiveStartKey".into(), to_json(start));
        }
        e.add_to(&mut body);
        send(self.target.call("Scan", Json::Object(body), true))
    }

    /// The UpdateItem of the next pending item, the next Scan page, or the
    /// end.
    fn next(&mut self) -> Step<Backfilled> {
        while let Some(found) = self.pending.pop_front() {
            let joined = user_status(&found.user_id, &found.status);
            if joined.len() > MAX_PARTITION_KEY_BYTES {
                self.done.skipped += 1;
                continue;
            }
            self.state = BackfillState::Updating;
            return send(self.update_call(&found, joined));
        }
        if self.more {
            return self.scan();
        }
        Step::Done(Ok(self.done.clone()))
    }

    fn update_call(&self, found: &Found, joined: String) -> Result<Outgoing, StoreError> {
        let mut e = Expr::default();
        let key = e.name(USER_STATUS);
        let user = e.name(USER_ID);
        let status = e.name(STATUS);
        let value = e.value(AttributeValue::s(joined));
        let user_was = e.value(AttributeValue::s(&found.user_id));
        let status_was = e.value(AttributeValue::s(&found.status));
        let mut body = request(self.target.table());
        body.insert("Key".into(), to_json(&attr::key(&found.id)));
        body.insert(
            "UpdateExpression".into(),
            json!(format!("SET {key} = {value}")),
        );
        // Comparisons with a missing attribute are false, so a deleted
        // item fails the condition too (the update cannot recreate it).
        body.insert(
            "ConditionExpression".into(),
            json!(format!(
                "{user} = {user_was} AND {status} = {status_was} AND attribute_not_exists({key})"
            )),
        );
        e.add_to(&mut body);
        // Idempotent: a resend after the first attempt was applied fails
        // its condition, which is a skip (the count is then one off, the
        // item right).
        self.target.call("UpdateItem", Json::Object(body), true)
    }

    fn on_page(&mut self, out: ScanOut) -> Step<Backfilled> {
        for map in &out.items {
            self.done.found += 1;
            let fields = (text(map, ITEM_ID), text(map, USER_ID), text(map, STATUS));
            match fields {
                (Some(id), Some(user_id), Some(status)) => self.pending.push_back(Found {
                    id,
                    user_id,
                    status,
                }),
                _ => self.done.skipped += 1,
            }
        }
        self.more = out.last_evaluated_key.is_some();
        self.start_key = out.last_evaluated_key;
        self.next()
    }
}

impl Operation for BackfillUserStatus {
    type Output = Backfilled;

    fn start(&mut self) -> Step<Backfilled> {
        self.scan()
    }

    fn resume(&mut self, response: &Response) -> Step<Backfilled> {
        match self.state {
            BackfillState::Scanning => {
                if !is_success(response) {
                    let error = ServiceError::parse(response);
                    return Step::Done(Err(error.to_store_error("Scan", self.target.table())));
                }
                match parse::<ScanOut>(response, "Scan") {
                    Ok(out) => self.on_page(out),
                    Err(e) => Step::Done(Err(e)),
                }
            }
            BackfillState::Updating => {
                if is_success(response) {
                    self.done.updated += 1;
                    return self.next();
                }
                let error = ServiceError::parse(response);
                if error.is_conditional_check_failed() {
                    // Changed since the Scan: that write kept the key.
                    self.done.skipped += 1;
                    return self.next();
                }
                Step::Done(Err(error.to_store_error("UpdateItem", self.target.table())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;

    fn found(id: &str, user: Option<&str>, status: Option<&str>) -> Json {
        let mut item = json!({"itemId": {"S": id}});
        if let Some(u) = user {
            item["userId"] = json!({"S": u});
        }
        if let Some(s) = status {
            item["status"] = json!({"S": s});
        }
        item
    }

    #[test]
    fn the_scan_projects_the_fields_and_filters_with_placeholders() {
        let mut b = db().backfill_user_status();
        let scan = b.start();
        assert_eq!(action(&scan), "Scan");
        assert!(sent(&scan).idempotent);
        assert_eq!(
            body(&scan),
            json!({
                "TableName": "Items",
                "ProjectionExpression": "#n0, #n1, #n2, #n3",
                "FilterExpression": "attribute_exists(#n1) AND attribute_exists(#n2) AND attribute_not_exists(#n3)",
                "ExpressionAttributeNames": {"#n0": "itemId", "#n1": "userId", "#n2": "status", "#n3": "__userStatus__"},
            })
        );
    }

    #[test]
    fn each_item_found_is_updated_on_its_scanned_fields_and_pages_follow() {
        let mut b = db().backfill_user_status();
        b.start();
        let page = json!({
            "Items": [found("a", Some("u1"), Some("active")), found("b", Some("u2"), Some("done"))],
            "LastEvaluatedKey": {"itemId": {"S": "b"}},
        });
        let update = b.resume(&ok(page));
        assert_eq!(action(&update), "UpdateItem");
        assert!(sent(&update).idempotent);
        assert_eq!(
            body(&update),
            json!({
                "TableName": "Items",
                "Key": {"itemId": {"S": "a"}},
                "UpdateExpression": "SET #n0 = :v0",
                "ConditionExpression": "#n1 = :v1 AND #n2 = :v2 AND attribute_not_exists(#n0)",
                "ExpressionAttributeNames": {"#n0": "__userStatus__", "#n1": "userId", "#n2": "status"},
                "ExpressionAttributeValues": {
                    ":v0": {"S": "u1\u{1f}active"},
                    ":v1": {"S": "u1"},
                    ":v2": {"S": "active"},
                },
            })
        );
        let second = b.resume(&ok(json!({})));
        assert_eq!(body(&second)["Key"], json!({"itemId": {"S": "b"}}));
        assert_eq!(
            body(&second)["ExpressionAttributeValues"][":v0"],
            json!({"S": "u2\u{1f}done"})
        );
        // The page is done: the next one starts after its last key.
        let scan = b.resume(&ok(json!({})));
        assert_eq!(action(&scan), "Scan");
        assert_eq!(
            body(&scan)["ExclusiveStartKey"],
            json!({"itemId": {"S": "b"}})
        );
        // An empty page that is the last: done.
        assert_eq!(
            done(b.resume(&ok(json!({"Items": []})))),
            Ok(Backfilled {
                found: 2,
                updated: 2,
                skipped: 0,
            })
        );
    }

    #[test]
    fn a_failed_condition_is_a_skip_and_other_errors_end_it() {
        let mut b = db().backfill_user_status();
        b.start();
        let page = json!({"Items": [
            found("a", Some("u1"), Some("active")),
            // Written by another client: not text, in no index.
            json!({"itemId": {"S": "n"}, "userId": {"N": "7"}, "status": {"S": "x"}}),
            found("b", Some("u1"), Some("active")),
        ]});
        let first = b.resume(&ok(page));
        assert_eq!(body(&first)["Key"], json!({"itemId": {"S": "a"}}));
        let next = b.resume(&ccf(None));
        assert_eq!(body(&next)["Key"], json!({"itemId": {"S": "b"}}));
        assert_eq!(
            done(b.resume(&ok(json!({})))),
            Ok(Backfilled {
                found: 3,
                updated: 1,
                skipped: 2,
            })
        );

        // Any other failure ends the backfill with the error.
        let mut b = db().backfill_user_status();
        b.start();
        b.resume(&ok(json!({"Items": [found("a", Some("u"), Some("s"))]})));
        let denied = error("AccessDeniedException", "not allowed");
        let e = done(b.resume(&denied)).unwrap_err();
        assert!(
            matches!(&e, StoreError::Unauthorized(m) if m.contains("dynamodb:UpdateItem")),
            "{e:?}"
        );
        let mut b = db().backfill_user_status();
        b.start();
        let e = done(b.resume(&error("AccessDeniedException", "no"))).unwrap_err();
        assert!(
            matches!(&e, StoreError::Unauthorized(m) if m.contains("dynamodb:Scan")),
            "{e:?}"
        );
    }

    #[test]
    fn nothing_to_do_is_one_scan() {
        let mut b = db().backfill_user_status();
        b.start();
        assert_eq!(
            done(b.resume(&ok(json!({"Items": [], "Count": 0, "ScannedCount": 5})))),
            Ok(Backfilled::default())
        );
    }

    /// Answers from a script, sleeping nowhere, and records the actions.
    struct Scripted {
        answers: VecDeque<Response>,
        actions: Vec<String>,
        slept: usize,
    }

    impl sansio::BlockingTransport for Scripted {
        fn send(&mut self, request: sansio::Request) -> Result<Response, sansio::TransportError> {
            let target = request.headers()["x-amz-target"].to_str().unwrap();
            self.actions
                .push(target.rsplit('.').next().unwrap().to_owned());
            self.answers
                .pop_front()
                .ok_or_else(|| sansio::TransportError::Refused("script ended".into()))
        }
        fn sleep(&mut self, _duration: std::time::Duration) {
            self.slept += 1;
        }
        fn random_u64(&mut self) -> u64 {
            3
        }
    }

    #[test]
    fn throttled_calls_are_resent_with_backoff_a_bounded_number_of_times() {
        let throttled = || error("ProvisionedThroughputExceededException", "slow down");
        let page = ok(json!({"Items": [found("a", Some("u"), Some("s"))]}));
        let mut transport = Scripted {
            answers: VecDeque::from([throttled(), page, throttled(), ok(json!({}))]),
            actions: Vec::new(),
            slept: 0,
        };
        let db = db();
        let done = sansio::drive_blocking(
            &db,
            crate::RETRY_POLICY,
            &mut transport,
            db.backfill_user_status(),
        );
        assert_eq!(
            done,
            Ok(Backfilled {
                found: 1,
                updated: 1,
                skipped: 0,
            })
        );
        assert_eq!(
            transport.actions,
            ["Scan", "Scan", "UpdateItem", "UpdateItem"]
        );
        assert_eq!(transport.slept, 2);

        // Throttled beyond the policy's attempts: the backfill ends, and
        // says so.
        let attempts = crate::RETRY_POLICY.max_attempts as usize;
        let mut transport = Scripted {
            answers: (0..attempts + 5).map(|_| throttled()).collect(),
            actions: Vec::new(),
            slept: 0,
        };
        let done = sansio::drive_blocking(
            &db,
            crate::RETRY_POLICY,
            &mut transport,
            db.backfill_user_status(),
        );
        assert!(matches!(done, Err(StoreError::Throttled(_))), "{done:?}");
        assert_eq!(transport.actions.len(), attempts);
    }

    #[test]
    fn a_key_too_long_to_index_is_skipped_without_a_call() {
        let mut b = db().backfill_user_status();
        b.start();
        let long = "u".repeat(MAX_PARTITION_KEY_BYTES);
        let page = json!({"Items": [found("a", Some(&long), Some("s"))]});
        assert_eq!(
            done(b.resume(&ok(page))),
            Ok(Backfilled {
                found: 1,
                updated: 0,
                skipped: 1,
            })
        );
    }
}
