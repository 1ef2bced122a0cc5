//! Queries: one page of `byUser`, `byStatus` or `byUserStatus`, filled
//! across as many Query calls as expired items make necessary, and bounded
//! in bytes by item_model's [`PageBuilder`].

use std::collections::BTreeMap;

use item_model::{
    Cursor, IndexName, Offer, Order, Page, PageBuilder, Query, StoreError, Timestamp,
};
use sansio::{Operation, Outgoing, Response, Step};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{expired, is_success, parse, request, send, to_json};
use crate::attr::{
    AttributeMap, AttributeValue, CREATED_AT, ITEM_ID, STATUS, USER_ID, USER_STATUS, item_from_map,
};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// Query calls per page before a page is returned short (with a cursor),
/// so that a long run of expired items cannot hold a caller for long.
const MAX_QUERY_ROUNDS: u32 = 16;

impl DynamoDb {
    /// One page of a query on `byUser`, `byStatus` or `byUserStatus`.
    pub fn query(&self, query: Query, now: Timestamp) -> QueryItems {
        let mut exchange = QueryItems {
            target: self.target(),
            now: now.unix_seconds(),
            after: None,
            start_key: None,
            rounds: 0,
            error: None,
            page: PageBuilder::new(query),
        };
        let query = exchange.page.query();
        if let Some(text) = &query.cursor {
            match Cursor::decode_for(text, query) {
                Ok(cursor) => {
                    let index = query.key.index();
                    exchange.start_key = Some(BTreeMap::from([
                        (ITEM_ID.to_string(), AttributeValue::s(&cursor.id)),
                        (
                            CREATED_AT.to_string(),
                            AttributeValue::s(&cursor.created_at),
                        ),
                        (
                            partition_attribute(index).to_string(),
                            AttributeValue::s(query.key.partition()),
                        ),
                    ]));
                    exchange.after = Some((cursor.created_at, cursor.id));
                }
                Err(e) => exchange.error = Some(e.into()),
            }
        }
        exchange
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
/// Bytes: DynamoDB answers at most 1 MB per call, and the page takes items
/// only while they fit its byte budget; the first item that does not fit
/// ends the page (with a cursor), and no further call is made, so a page
/// holds at most the budget plus one answer.
///
/// Ties: the indexes sort by `createdAt` only, and DynamoDB orders items
/// with equal `createdAt` its own way (not by id). `createdAt` has
/// microseconds, so ties are rare (batch imports with equal given
/// `createdAt` make them); the cursor still resumes exactly, because its
/// `ExclusiveStartKey` holds the item id too.
#[derive(Debug)]
pub struct QueryItems {
    target: Target,
    /// The page so far, with its query.
    page: PageBuilder,
    now: i64,
    /// The cursor's position, to drop the item there if it comes back (an
    /// item written by others with a `createdAt` not in our exact form
    /// sorts next to the position the cursor names, not at it).
    after: Option<(String, String)>,
    start_key: Option<AttributeMap>,
    rounds: u32,
    error: Option<StoreError>,
}

impl QueryItems {
    fn call(&self) -> Result<Outgoing, StoreError> {
        let query = self.page.query();
        let index = query.key.index();
        let mut e = Expr::default();
        let key = e.name(partition_attribute(index));
        let value = e.value(AttributeValue::s(query.key.partition()));
        let filter = e.not_expired(self.now);
        // The rest of the page and one more, to know whether a next page
        // exists (fewer once large items have been seen).
        let remaining = self.page.wanted();
        // After a short answer, read ahead more: the surplus is cut off
        // and the cursor points at the last item kept.
        let limit = if self.rounds == 0 {
            remaining
        } else {
            remaining.max((remaining * 4).min(1000))
        };
        let mut body = request(self.target.table());
        body.insert("IndexName".into(), json!(index_name(index)));
        body.insert(
            "KeyConditionExpression".into(),
            json!(format!("{key} = {value}")),
        );
        body.insert("FilterExpression".into(), json!(filter));
        body.insert("ScanIndexForward".into(), json!(query.order == Order::Asc));
        body.insert("Limit".into(), json!(limit));
        if let Some(start) = &self.start_key {
            body.insert("ExclusiveStartKey".into(), to_json(start));
        }
        e.add_to(&mut body);
        self.target.call("Query", Json::Object(body), true)
    }
}

fn index_name(index: IndexName) -> &'static str {
    index.as_str()
}

/// The attribute an index is partitioned on.
fn partition_attribute(index: IndexName) -> &'static str {
    match index {
        IndexName::ByUser => USER_ID,
        IndexName::ByStatus => STATUS,
        IndexName::ByUserStatus => USER_STATUS,
    }
}

impl Operation for QueryItems {
    type Output = Page;

    fn start(&mut self) -> Step<Page> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        send(self.call())
    }

    fn resume(&mut self, response: &Response) -> Step<Page> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(error.to_store_error("Query", self.target.table())));
        }
        let out = match parse::<QueryOut>(response, "Query") {
            Ok(out) => out,
            Err(e) => return Step::Done(Err(e)),
        };
        self.rounds += 1;
        for map in &out.items {
            if expired(map, self.now) {
                continue;
            }
            let item = match item_from_map(map) {
                Ok(item) => item,
                Err(e) => return Step::Done(Err(e)),
            };
            if self
                .after
                .as_ref()
                .is_some_and(|(created_at, id)| *created_at == item.created_at && *id == item.id)
            {
                continue;
            }
            if self.page.offer(item) == Offer::Full {
                // An item beyond the page (by count or by bytes): there is
                // a next page, and it starts after the last item of this
                // one.
                return Step::Done(Ok(self.page.page_with_more()));
            }
        }
        match out.last_evaluated_key {
            None => Step::Done(Ok(self.page.last_page())),
            Some(last) if self.rounds >= MAX_QUERY_ROUNDS => {
                // Return short, resuming after the last item examined.
                Step::Done(Ok(match item_from_map(&last) {
                    Ok(at) => self.page.page_resuming_after(&at.created_at, &at.id),
                    Err(_) => self.page.page_with_more(),
                }))
            }
            Some(last) => {
                self.start_key = Some(last);
                send(self.call())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use item_model::IndexKey;

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
        let sent = body(&q.resume(&ok(first)));
        assert_eq!(sent["ExclusiveStartKey"]["itemId"], json!({"S": "x"}));
        assert_eq!(sent["Limit"], 8);
        // An expired item slipping through is dropped too; the item after
        // the page only proves that there is a next page.
        let second = json!({"Items": [
            stored("e", "2026-01-03T00:00:00.000000Z", Some(1)),
            stored("b", "2026-01-04T00:00:00.000000Z", None),
            stored("c", "2026-01-05T00:00:00.000000Z", None)]});
        let page = done(q.resume(&ok(second))).unwrap();
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
        let page = done(next.resume(&ok(last))).unwrap();
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
    fn a_page_ends_at_its_byte_budget_without_another_call() {
        let query = Query {
            key: IndexKey::Status("active".into()),
            order: Order::Desc,
            limit: 100,
            cursor: None,
        };
        let big = |id: &str, created: &str| {
            let mut item = stored(id, created, None);
            item["blob"] = json!({"S": "x".repeat(1536 * 1024)});
            item
        };
        let mut q = db().query(query.clone(), now());
        assert_eq!(body(&q.start())["Limit"], 101);
        // Two items of 1.5 MiB fit in 4 MiB; the third ends the page, even
        // though DynamoDB has more to read.
        let answer = json!({"Items": [
            big("c", "2026-01-03T00:00:00.000000Z"),
            big("b", "2026-01-02T00:00:00.000000Z"),
            big("a", "2026-01-01T00:00:00.000000Z")],
            "LastEvaluatedKey": {"itemId": {"S": "a"}, "status": {"S": "active"}, "createdAt": {"S": "2026-01-01T00:00:00.000000Z"}}});
        let page = done(q.resume(&ok(answer))).unwrap();
        let ids: Vec<_> = page.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c", "b"]);
        let cursor = Cursor::decode_for(page.next_cursor.as_deref().unwrap(), &query).unwrap();
        assert_eq!(cursor.id, "b");
    }
}
