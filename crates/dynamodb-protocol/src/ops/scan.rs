//! Scans: one page of one segment of every item (WIT `scan`), for export
//! and migration, over DynamoDB's own (parallel) Scan.
//!
//! - Segments are DynamoDB's: `Segment`/`TotalSegments`, which hash the
//!   key, so every item is in exactly one segment (sent only when there
//!   are several: one segment is a plain Scan).
//! - Reads are consistent (`ConsistentRead`), so a scan, and a catch-up
//!   scan with `updated_since`, sees every write acknowledged before it.
//! - The position in a cursor is the `itemId` of DynamoDB's
//!   `ExclusiveStartKey`: the last item taken when the page ended on its
//!   own (by bytes), else the `LastEvaluatedKey`, which may be the key of
//!   an idempotency record the filter dropped (`once/<key>`), or of an
//!   item the `updated_since` filter dropped.
//! - Expired items are returned, marked, until TTL removes them: an export
//!   copies what is stored; the importer decides.
//! - Idempotency records share the table (see `ops::once`) and are no
//!   items: the `FilterExpression` drops them (`NOT begins_with(itemId,
//!   "once/")`; item ids never hold `/`), and so does the reading side, in
//!   case one slips through.
//!
//! DynamoDB applies `Limit` before the filter, so one call may return fewer
//! items than asked while more follow; the exchange then reads on (from the
//! `LastEvaluatedKey`), at most [`MAX_SCAN_ROUNDS`] calls per page, and
//! returns a short (even empty) page with a cursor after that, so that a
//! long run of filtered items cannot hold a caller for long.

use item_model::{Offer, ScanPage, ScanPageBuilder, ScanRequest, StoreError, Timestamp};
use sansio::{Operation, Outgoing, Response, Step};
use serde_json::{Value as Json, json};

use super::{ScanOut, is_success, parse, request, send, to_json};
use crate::attr::{
    self, AttributeMap, AttributeValue, ITEM_ID, RECORD_PREFIX, UPDATED_AT, item_from_map,
};
use crate::error::ServiceError;
use crate::expr::Expr;
use crate::service::{DynamoDb, Target};

/// Scan calls per page before a page is returned short (with a cursor).
const MAX_SCAN_ROUNDS: u32 = 4;

impl DynamoDb {
    /// One page of one segment of a scan of the table (see the module
    /// docs). Input arrives validated (`item_model::validate::scan`); a
    /// cursor that is not this request's is `invalid-input`.
    pub fn scan(&self, request: ScanRequest, now: Timestamp) -> ScanItems {
        let (start_key, error) = match request.resume_after() {
            Ok(after) => (after.map(|id| attr::key(&id)), None),
            Err(e) => (None, Some(e.into())),
        };
        ScanItems {
            target: self.target(),
            page: ScanPageBuilder::new(&request),
            request,
            now: now.unix_seconds(),
            start_key,
            rounds: 0,
            error,
        }
    }
}

/// [`DynamoDb::scan`].
#[derive(Debug)]
pub struct ScanItems {
    target: Target,
    request: ScanRequest,
    /// The page so far.
    page: ScanPageBuilder,
    /// Expiry is judged at this time (epoch seconds).
    now: i64,
    /// Where the next Scan call starts.
    start_key: Option<AttributeMap>,
    /// Scan calls answered for this page.
    rounds: u32,
    /// A refused cursor, answered by `start`.
    error: Option<StoreError>,
}

impl ScanItems {
    fn call(&self) -> Result<Outgoing, StoreError> {
        let mut e = Expr::default();
        let id = e.name(ITEM_ID);
        let prefix = e.value(AttributeValue::s(RECORD_PREFIX));
        let mut filter = format!("NOT begins_with({id}, {prefix})");
        if let Some(since) = &self.request.updated_since {
            // Items we wrote hold `updatedAt` in the fixed-width form of
            // `since`, where text order is time order. Those of other
            // writers (no `updatedAt`, a number, another form of time,
            // which has another length) pass, and `wants` judges their
            // normalised time when they are read.
            let width = i64::try_from(since.len()).unwrap_or(i64::MAX);
            let updated = e.name(UPDATED_AT);
            let since = e.value(AttributeValue::s(since));
            let string = e.value(AttributeValue::s("S"));
            let width = e.value(AttributeValue::int(width));
            filter.push_str(&format!(
                " AND ({updated} >= {since} OR attribute_not_exists({updated}) \
                 OR NOT attribute_type({updated}, {string}) OR size({updated}) <> {width})"
            ));
        }
        let mut body = request(self.target.table());
        body.insert("ConsistentRead".into(), json!(true));
        body.insert("FilterExpression".into(), json!(filter));
        body.insert("Limit".into(), json!(self.page.wanted()));
        if self.request.segments > 1 {
            body.insert("Segment".into(), json!(self.request.segment));
            body.insert("TotalSegments".into(), json!(self.request.segments));
        }
        if let Some(start) = &self.start_key {
            body.insert("ExclusiveStartKey".into(), to_json(start));
        }
        e.add_to(&mut body);
        // A read: resending it is always safe.
        self.target.call("Scan", Json::Object(body), true)
    }

    /// The page so far, ending as `finish` says.
    fn finish(
        &mut self,
        finish: impl FnOnce(ScanPageBuilder, &ScanRequest) -> ScanPage,
    ) -> Step<ScanPage> {
        let page = std::mem::replace(&mut self.page, ScanPageBuilder::new(&self.request));
        Step::Done(Ok(finish(page, &self.request)))
    }
}

/// Whether a stored map is an idempotency record, not an item.
fn is_record(map: &AttributeMap) -> bool {
    matches!(map.get(ITEM_ID), Some(AttributeValue::S(id)) if id.starts_with(RECORD_PREFIX))
}

/// The `itemId` of a `LastEvaluatedKey`: the position a cursor carries.
fn position(key: &AttributeMap) -> Result<&str, StoreError> {
    match key.get(ITEM_ID) {
        Some(AttributeValue::S(id)) if !id.is_empty() => Ok(id),
        _ => Err(StoreError::Backend(
            "DynamoDB answered Scan with a LastEvaluatedKey without a string itemId".into(),
        )),
    }
}

impl Operation for ScanItems {
    type Output = ScanPage;

    fn start(&mut self) -> Step<ScanPage> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        send(self.call())
    }

    fn resume(&mut self, response: &Response) -> Step<ScanPage> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(error.to_store_error("Scan", self.target.table())));
        }
        let out = match parse::<ScanOut>(response, "Scan") {
            Ok(out) => out,
            Err(e) => return Step::Done(Err(e)),
        };
        self.rounds += 1;
        for map in &out.items {
            if is_record(map) {
                continue;
            }
            let item = match item_from_map(map) {
                Ok(item) => item,
                Err(e) => return Step::Done(Err(e)),
            };
            if !self.request.wants(&item) {
                continue;
            }
            if self.page.offer(item, self.now) == Offer::Full {
                // Full by bytes (DynamoDB returned at most `wanted`): the
                // next page starts after the last item taken, which this
                // segment returned, so it names a place in it.
                return self.finish(|page, request| page.finish(request, true));
            }
        }
        let Some(last) = out.last_evaluated_key else {
            return self.finish(|page, request| page.finish_at(request, None));
        };
        let at = match position(&last) {
            Ok(at) => at.to_owned(),
            Err(e) => return Step::Done(Err(e)),
        };
        if self.page.wanted() > 0 && self.rounds < MAX_SCAN_ROUNDS {
            self.start_key = Some(last);
            return send(self.call());
        }
        self.finish(|page, request| page.finish_at(request, Some(&at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use item_model::ScanCursor;

    const T1: &str = "2026-01-01T00:00:00.000000Z";
    const T2: &str = "2026-02-01T00:00:00.000000Z";

    fn stored(id: &str, updated: &str, expires: Option<i64>) -> Json {
        let mut item = json!({"itemId": {"S": id}, "createdAt": {"S": T1},
                              "updatedAt": {"S": updated}, "version": {"N": "1"}});
        if let Some(at) = expires {
            item["expiresAt"] = json!({"N": at.to_string()});
        }
        item
    }

    fn record(key: &str) -> Json {
        json!({"itemId": {"S": format!("once/{key}")}, "fingerprint": {"S": "f"},
               "expiresAt": {"N": "99999999999"}, "written": {"S": "x"}})
    }

    fn ids(page: &ScanPage) -> Vec<&str> {
        page.items.iter().map(|s| s.item.id.as_str()).collect()
    }

    /// The position a page's cursor resumes `request` after.
    fn resumes_after(request: &ScanRequest, page: &ScanPage) -> Option<String> {
        let cursor = page.next_cursor.as_deref()?;
        Some(ScanCursor::decode_for(cursor, request).unwrap().after)
    }

    #[test]
    fn a_segment_scan_is_consistent_and_filters_records_and_old_writes() {
        let mut request = ScanRequest::first(2, 4, 10);
        request.updated_since = Some(T2.into());
        let mut scan = db().scan(request, now());
        let step = scan.start();
        assert_eq!(action(&step), "Scan");
        assert!(sent(&step).idempotent);
        assert_eq!(
            body(&step),
            json!({
                "TableName": "Items",
                "ConsistentRead": true,
                "Limit": 10,
                "Segment": 2,
                "TotalSegments": 4,
                "FilterExpression": "NOT begins_with(#n0, :v0) AND (#n1 >= :v1 \
                    OR attribute_not_exists(#n1) OR NOT attribute_type(#n1, :v2) OR size(#n1) <> :v3)",
                "ExpressionAttributeNames": {"#n0": "itemId", "#n1": "updatedAt"},
                "ExpressionAttributeValues": {
                    ":v0": {"S": "once/"},
                    ":v1": {"S": T2},
                    ":v2": {"S": "S"},
                    ":v3": {"N": "27"},
                },
            })
        );
    }

    #[test]
    fn one_segment_is_a_plain_scan_and_a_cursor_starts_after_its_position() {
        let request = ScanRequest::first(0, 1, 5);
        let mut scan = db().scan(request.clone(), now());
        let sent = body(&scan.start());
        assert_eq!(sent["FilterExpression"], "NOT begins_with(#n0, :v0)");
        for absent in ["Segment", "TotalSegments", "ExclusiveStartKey"] {
            assert!(sent.get(absent).is_none(), "{sent}");
        }

        let next = ScanRequest {
            cursor: Some(request.cursor_after("once/k").encode()),
            ..request
        };
        let mut scan = db().scan(next, now());
        assert_eq!(
            body(&scan.start())["ExclusiveStartKey"],
            json!({"itemId": {"S": "once/k"}})
        );
    }

    #[test]
    fn a_bad_cursor_is_invalid_input_without_a_call() {
        let request = ScanRequest::first(1, 4, 5);
        let other = ScanRequest::first(2, 4, 5).cursor_after("a").encode();
        for cursor in ["bogus".to_string(), other] {
            let mut scan = db().scan(
                ScanRequest {
                    cursor: Some(cursor),
                    ..request.clone()
                },
                now(),
            );
            assert!(matches!(
                done(scan.start()),
                Err(StoreError::InvalidInput(_))
            ));
        }
    }

    #[test]
    fn the_last_page_has_no_cursor_and_marks_expired_items_and_drops_records() {
        let request = ScanRequest::first(0, 1, 10);
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        let past = now().unix_seconds() - 1;
        let answer =
            json!({"Items": [stored("a", T1, Some(past)), record("k"), stored("b", T1, None)]});
        let page = done(scan.resume(&ok(answer))).unwrap();
        assert_eq!(ids(&page), ["a", "b"]);
        assert!(page.items[0].expired && !page.items[1].expired);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn a_short_answer_reads_on_then_ends_at_the_last_evaluated_key() {
        let mut request = ScanRequest::first(0, 1, 3);
        request.updated_since = Some(T2.into());
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        // An item written before `since` (by another writer, whose time
        // the filter could not judge) is dropped on reading.
        let foreign = json!({"itemId": {"S": "old"}, "updatedAt": {"S": "2026-01-01T00:00:00"}});
        let answer = json!({"Items": [stored("a", T2, None), foreign],
                            "LastEvaluatedKey": {"itemId": {"S": "old"}}});
        let next = scan.resume(&ok(answer));
        let sent = body(&next);
        assert_eq!(sent["ExclusiveStartKey"], json!({"itemId": {"S": "old"}}));
        assert_eq!(sent["Limit"], 2);
        // Calls that find nothing more, up to the round limit: a short page
        // that resumes after the last key evaluated (here a record's).
        let empty = json!({"Items": [], "LastEvaluatedKey": {"itemId": {"S": "once/k"}}});
        scan.resume(&ok(empty.clone()));
        scan.resume(&ok(empty.clone()));
        let page = done(scan.resume(&ok(empty))).unwrap();
        assert_eq!(ids(&page), ["a"]);
        assert_eq!(resumes_after(&request, &page).as_deref(), Some("once/k"));
    }

    #[test]
    fn an_empty_page_may_carry_a_cursor() {
        let request = ScanRequest::first(3, 8, 2);
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        let answer =
            json!({"Items": [record("k")], "LastEvaluatedKey": {"itemId": {"S": "once/k"}}});
        for _ in 1..MAX_SCAN_ROUNDS {
            assert_eq!(action(&scan.resume(&ok(answer.clone()))), "Scan");
        }
        let page = done(scan.resume(&ok(answer))).unwrap();
        assert!(page.items.is_empty());
        assert_eq!(resumes_after(&request, &page).as_deref(), Some("once/k"));
    }

    #[test]
    fn a_full_page_resumes_after_its_last_item() {
        // Full by count: DynamoDB stopped at the limit and says where.
        let request = ScanRequest::first(0, 2, 2);
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        let answer = json!({"Items": [stored("a", T1, None), stored("b", T1, None)],
                            "LastEvaluatedKey": {"itemId": {"S": "b"}}});
        let page = done(scan.resume(&ok(answer))).unwrap();
        assert_eq!(resumes_after(&request, &page).as_deref(), Some("b"));

        // Full by bytes: three items of 1.5 MiB do not fit in 4 MiB; the
        // page ends after the second, whatever DynamoDB read beyond.
        let request = ScanRequest::first(0, 1, 100);
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        let big = |id: &str| {
            let mut item = stored(id, T1, None);
            item["blob"] = json!({"S": "x".repeat(1536 * 1024)});
            item
        };
        let answer = json!({"Items": [big("c"), big("d"), big("e")],
                            "LastEvaluatedKey": {"itemId": {"S": "e"}}});
        let page = done(scan.resume(&ok(answer))).unwrap();
        assert_eq!(ids(&page), ["c", "d"]);
        assert_eq!(resumes_after(&request, &page).as_deref(), Some("d"));
    }

    #[test]
    fn errors_and_odd_answers_are_store_errors() {
        let request = ScanRequest::first(0, 1, 5);
        let mut scan = db().scan(request.clone(), now());
        scan.start();
        assert!(matches!(
            done(scan.resume(&error("ProvisionedThroughputExceededException", "slow"))),
            Err(StoreError::Throttled(_))
        ));
        let mut scan = db().scan(request, now());
        scan.start();
        let answer = json!({"Items": [], "LastEvaluatedKey": {"itemId": {"N": "1"}}});
        assert!(matches!(
            done(scan.resume(&ok(answer))),
            Err(StoreError::Backend(_))
        ));
    }
}
