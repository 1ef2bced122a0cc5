//! Queries: one page of `byUser` or `byStatus`, filled across as many
//! Query calls as expired items make necessary.

use std::collections::BTreeMap;

use item_model::{Cursor, IndexName, Item, Order, Page, Query, StoreError, Timestamp};
use sansio::{Operation, Outgoing, Response, Step};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{expired, is_success, parse, request, send, to_json};
use crate::attr::{AttributeMap, AttributeValue, CREATED_AT, ITEM_ID, item_from_map};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// Query calls per page before a page is returned short (with a cursor),
/// so that a long run of expired items cannot hold a caller for long.
const MAX_QUERY_ROUNDS: u32 = 16;

impl DynamoDb {
    /// One page of a query on `byUser` or `byStatus`.
    pub fn query(&self, query: Query, now: Timestamp) -> QueryItems {
        let mut exchange = QueryItems {
            target: self.target(),
            now: now.unix_seconds(),
            after: None,
            start_key: None,
            items: Vec::new(),
            rounds: 0,
            error: None,
            query,
        };
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
    target: Target,
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
    fn call(&self) -> Result<Outgoing, StoreError> {
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
        let mut body = request(self.target.table());
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
        self.target.call("Query", Json::Object(body), true)
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
}
