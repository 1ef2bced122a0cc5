//! Scans: every item of the collection, in id-range segments and pages
//! (WIT `scan`), for export and migration.
//!
//! A page is `runQuery` on the items' collection (never the `-once`
//! records' one: a query on a collection id reads only that collection),
//! `orderBy __name__` ascending, restricted to the segment's id range
//! ([`segment_id_range`]) and, for a following page, to names after the
//! cursor's position (the last document id read). Within one collection a
//! document's name is the collection's name, `/` and the id, so comparing
//! names compares ids, and a bound or position id becomes a reference
//! value with [`Firestore::document_name`]. `__name__` filters and order
//! need no composite index.
//!
//! Expired items are read and marked (Firestore's TTL removes them only
//! eventually). `updated-since` is checked here, not in the query: an
//! inequality on `updatedAt` beside the `__name__` range would need a
//! composite index and would order by `updatedAt` first. Documents
//! filtered out still advance the position, so the cursor is the last
//! document consumed (taken or filtered out), and a page may be empty
//! while more follow.
//!
//! Like queries, each request asks for at most [`MAX_DOCUMENTS_PER_CALL`]
//! documents (the rest of the page and one more, which tells whether more
//! follow), so that no answer outgrows a transport's response limit
//! whatever the documents' size, and a page takes at most [`MAX_ROUNDS`]
//! requests; after that it ends early with a cursor.

use http::Method;
use item_model::{
    CursorError, Offer, ScanPage, ScanPageBuilder, ScanRequest, StoreError, Timestamp,
    segment_id_range,
};
use sansio::{Operation, Response, Step};
use serde_json::{Value as Json, json};

use crate::names::Firestore;
use crate::ops::{StoreResult, build, send, unexpected};
use crate::query::{MAX_DOCUMENTS_PER_CALL, MAX_ROUNDS, run_query_documents};

/// The `runQuery` body of one scan request: the documents of `collection`
/// with ids in `lower..upper` (either end open when `None`) and after
/// `after`, in name order, at most `limit`. Ids are turned into names with
/// `fs`.
pub(crate) fn scan_query(
    fs: &Firestore,
    (lower, upper): (Option<&str>, Option<&str>),
    after: Option<&str>,
    limit: u32,
) -> Json {
    let name = |op: &str, id: &str| {
        json!({ "fieldFilter": {
            "field": { "fieldPath": "__name__" },
            "op": op,
            "value": { "referenceValue": fs.document_name(id) },
        }})
    };
    let mut filters: Vec<Json> = Vec::new();
    if let Some(lower) = lower {
        filters.push(name("GREATER_THAN_OR_EQUAL", lower));
    }
    if let Some(upper) = upper {
        filters.push(name("LESS_THAN", upper));
    }
    if let Some(after) = after {
        filters.push(name("GREATER_THAN", after));
    }
    let mut query = json!({
        "from": [{ "collectionId": fs.collection() }],
        "orderBy": [{ "field": { "fieldPath": "__name__" }, "direction": "ASCENDING" }],
        "limit": limit,
    });
    match filters.len() {
        0 => {}
        1 => query["where"] = filters.remove(0),
        _ => {
            query["where"] = json!({ "compositeFilter": { "op": "AND", "filters": filters } });
        }
    }
    json!({ "structuredQuery": query })
}

struct ScanOp {
    fs: Firestore,
    request: ScanRequest,
    page: ScanPageBuilder,
    /// Unix seconds at which expiry is judged.
    now: i64,
    /// The segment's id range.
    lower: Option<String>,
    upper: Option<String>,
    /// The id of the last document consumed (taken or filtered out), or
    /// the cursor's position before the first.
    after: Option<String>,
    rounds: u32,
    requested: u32,
    done: bool,
}

impl ScanOp {
    fn fetch(&mut self) -> Step<ScanPage> {
        let wanted = u32::try_from(self.page.wanted()).unwrap_or(u32::MAX);
        self.requested = wanted.saturating_add(1).min(MAX_DOCUMENTS_PER_CALL);
        self.rounds += 1;
        let body = scan_query(
            &self.fs,
            (self.lower.as_deref(), self.upper.as_deref()),
            self.after.as_deref(),
            self.requested,
        );
        let request = build(Method::POST, &self.fs.method_url("runQuery"), Some(&body));
        match send(request, true) {
            Step::Done(result) => self.finish(result),
            step => step,
        }
    }

    fn finish(&mut self, result: StoreResult<ScanPage>) -> Step<ScanPage> {
        self.done = true;
        Step::Done(result)
    }

    /// The page, with a cursor after the last document consumed when more
    /// may follow.
    fn finish_at(&mut self, more: bool) -> Step<ScanPage> {
        let page = std::mem::replace(&mut self.page, ScanPageBuilder::new(&self.request));
        let position = self.after.as_deref().filter(|_| more);
        let page = page.finish_at(&self.request, position);
        self.finish(Ok(page))
    }
}

impl Operation for ScanOp {
    type Output = ScanPage;

    fn start(&mut self) -> Step<ScanPage> {
        match self.request.resume_after() {
            // A position is one of this collection's document ids; a `/`
            // would name a document elsewhere.
            Ok(Some(after)) if after.contains('/') => {
                return self.finish(Err(CursorError::Malformed.into()));
            }
            Ok(after) => self.after = after,
            Err(e) => return self.finish(Err(e.into())),
        }
        self.fetch()
    }

    fn resume(&mut self, response: &Response) -> Step<ScanPage> {
        if self.done {
            return Step::Done(Err(StoreError::Backend(
                "operation resumed after it finished".into(),
            )));
        }
        let (status, body) = (response.status().as_u16(), response.body().as_slice());
        let docs = match run_query_documents(status, body) {
            Ok(docs) => docs,
            Err(e) => return self.finish(Err(e)),
        };
        let received = u32::try_from(docs.len()).unwrap_or(u32::MAX);
        for doc in docs {
            // Only this collection's documents answer the query; anything
            // else would leave the position undefined.
            let Some(id) = self.fs.id_of(&doc.name) else {
                return self.finish(Err(unexpected("query response")));
            };
            let item = doc.item(id);
            if self.request.wants(&item) && self.page.offer(item, self.now) == Offer::Full {
                // This document proves that more follow; the next page
                // starts with it.
                return self.finish_at(true);
            }
            self.after = Some(id.to_owned());
        }
        if received < self.requested {
            // The segment has no more documents.
            return self.finish_at(false);
        }
        if self.rounds >= MAX_ROUNDS {
            return self.finish_at(true);
        }
        self.fetch()
    }
}

impl Firestore {
    /// One page of one segment of every item, expired ones marked (see the
    /// module docs).
    pub fn scan(
        &self,
        request: ScanRequest,
        now: Timestamp,
    ) -> impl Operation<Output = ScanPage> + Send + use<> {
        let (lower, upper) = segment_id_range(request.segment, request.segments);
        ScanOp {
            fs: self.clone(),
            page: ScanPageBuilder::new(&request),
            request,
            now: now.unix_seconds(),
            lower,
            upper,
            after: None,
            rounds: 0,
            requested: 0,
            done: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DEFAULT_DATABASE;

    fn fs() -> Firestore {
        Firestore::new("http://127.0.0.1:1", "demo-p", DEFAULT_DATABASE, "items").unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-02-08T10:00:00Z").unwrap()
    }

    /// A document as `runQuery` returns it; `updated` is its `updatedAt`.
    fn doc(fs: &Firestore, id: &str, updated: &str, expires: Option<&str>) -> Json {
        let mut fields = json!({
            "createdAt": {"timestampValue": "2026-01-01T00:00:00.000000Z"},
            "updatedAt": {"timestampValue": updated},
        });
        if let Some(at) = expires {
            fields["expiresAt"] = json!({"timestampValue": at});
        }
        json!({"document": {
            "name": fs.document_name(id),
            "fields": fields,
            "createTime": "2026-01-01T00:00:00Z",
            "updateTime": updated,
        }})
    }

    fn answer(docs: Vec<Json>) -> Response {
        let body = if docs.is_empty() {
            // What Firestore says when nothing matches.
            json!([{"readTime": "2026-02-08T10:00:00Z"}])
        } else {
            Json::Array(docs)
        };
        sansio::response(200, body.to_string().into_bytes())
    }

    /// The structured query of a request step.
    fn query_of(step: Step<ScanPage>) -> Json {
        match step {
            Step::Send(out) => {
                assert!(out.idempotent);
                assert!(
                    out.request
                        .uri()
                        .to_string()
                        .ends_with("/documents:runQuery")
                );
                let body: Json = serde_json::from_slice(out.request.body()).unwrap();
                body["structuredQuery"].clone()
            }
            Step::Done(r) => panic!("expected a request, got {r:?}"),
        }
    }

    fn page_of(step: Step<ScanPage>) -> ScanPage {
        match step {
            Step::Done(Ok(page)) => page,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    fn ids(page: &ScanPage) -> Vec<&str> {
        page.items.iter().map(|s| s.item.id.as_str()).collect()
    }

    fn name_filter(filter: &Json) -> (String, String) {
        let f = &filter["fieldFilter"];
        assert_eq!(f["field"]["fieldPath"], "__name__");
        (
            f["op"].as_str().unwrap().to_owned(),
            f["value"]["referenceValue"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn a_segment_is_a_name_range_in_name_order() {
        let fs = fs();
        let q = query_of(fs.scan(ScanRequest::first(1, 4, 100), now()).start());
        assert_eq!(q["from"], json!([{"collectionId": "items"}]));
        assert_eq!(
            q["orderBy"],
            json!([{"field": {"fieldPath": "__name__"}, "direction": "ASCENDING"}])
        );
        assert_eq!(q["limit"], MAX_DOCUMENTS_PER_CALL);
        let filters = q["where"]["compositeFilter"]["filters"].as_array().unwrap();
        assert_eq!(q["where"]["compositeFilter"]["op"], "AND");
        let filters: Vec<_> = filters.iter().map(name_filter).collect();
        assert_eq!(
            filters,
            [
                ("GREATER_THAN_OR_EQUAL".into(), fs.document_name("40")),
                ("LESS_THAN".into(), fs.document_name("80")),
            ]
        );

        // One segment: no filter at all; a small page asks for one more.
        let q = query_of(fs.scan(ScanRequest::first(0, 1, 5), now()).start());
        assert!(q.get("where").is_none());
        assert_eq!(q["limit"], 6);

        // The last segment is open at its end.
        let q = query_of(fs.scan(ScanRequest::first(3, 4, 5), now()).start());
        assert_eq!(
            name_filter(&q["where"]),
            ("GREATER_THAN_OR_EQUAL".into(), fs.document_name("c0"))
        );
    }

    #[test]
    fn a_following_page_starts_after_the_cursor() {
        let fs = fs();
        let mut request = ScanRequest::first(0, 2, 5);
        request.cursor = Some(request.cursor_after("3f-x").encode());
        let q = query_of(fs.scan(request, now()).start());
        let filters: Vec<_> = q["where"]["compositeFilter"]["filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(name_filter)
            .collect();
        assert_eq!(
            filters,
            [
                ("LESS_THAN".into(), fs.document_name("80")),
                ("GREATER_THAN".into(), fs.document_name("3f-x")),
            ]
        );
    }

    #[test]
    fn bad_cursors_are_invalid_input() {
        let fs = fs();
        let other = ScanRequest::first(1, 2, 5);
        let mut mine = ScanRequest::first(0, 2, 5);
        for cursor in [
            "garbage".to_owned(),
            other.cursor_after("a").encode(),
            mine.cursor_after("a/b").encode(),
        ] {
            mine.cursor = Some(cursor);
            assert!(
                matches!(
                    fs.scan(mine.clone(), now()).start(),
                    Step::Done(Err(StoreError::InvalidInput(_)))
                ),
                "{:?}",
                mine.cursor
            );
        }
    }

    #[test]
    fn pages_end_after_their_last_item_and_mark_expired_ones() {
        let fs = fs();
        let t = "2026-01-01T00:00:00Z";
        let request = ScanRequest::first(0, 1, 2);
        let mut op = fs.scan(request.clone(), now());
        assert_eq!(query_of(op.start())["limit"], 3);
        let page = page_of(op.resume(&answer(vec![
            doc(&fs, "a", t, Some("2026-02-01T00:00:00Z")),
            doc(&fs, "b", t, None),
            doc(&fs, "c", t, None),
        ])));
        assert_eq!(ids(&page), ["a", "b"]);
        assert!(page.items[0].expired && !page.items[1].expired);
        let mut next = request.clone();
        next.cursor = page.next_cursor;
        assert_eq!(next.resume_after().unwrap().as_deref(), Some("b"));

        // Fewer documents than asked for: the segment ends.
        let mut op = fs.scan(next, now());
        op.start();
        let page = page_of(op.resume(&answer(vec![doc(&fs, "c", t, None)])));
        assert_eq!(ids(&page), ["c"]);
        assert_eq!(page.next_cursor, None);

        let mut op = fs.scan(request, now());
        op.start();
        let page = page_of(op.resume(&answer(vec![])));
        assert!(page.items.is_empty() && page.next_cursor.is_none());
    }

    #[test]
    fn filtered_documents_advance_the_position() {
        let fs = fs();
        let (old, new) = ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
        let mut request = ScanRequest::first(0, 1, 2);
        request.updated_since = Some("2026-01-15T00:00:00.000000Z".into());

        // a (new), b (old), c (new): the page is full by count, so one more
        // document is asked for, after c.
        let mut op = fs.scan(request.clone(), now());
        op.start();
        let q = query_of(op.resume(&answer(vec![
            doc(&fs, "a", new, None),
            doc(&fs, "b", old, None),
            doc(&fs, "c", new, None),
        ])));
        assert_eq!(q["limit"], 1);
        assert_eq!(
            name_filter(&q["where"]),
            ("GREATER_THAN".into(), fs.document_name("c"))
        );
        // An old one: skipped, and the results go on.
        let q = query_of(op.resume(&answer(vec![doc(&fs, "d", old, None)])));
        assert_eq!(q["limit"], 1);
        // A new one: more follow, from after the last item taken.
        let page = page_of(op.resume(&answer(vec![doc(&fs, "e", new, None)])));
        assert_eq!(ids(&page), ["a", "c"]);
        let mut next = request.clone();
        next.cursor = page.next_cursor;
        assert_eq!(next.resume_after().unwrap().as_deref(), Some("d"));

        // Only old documents, round after round: an empty page whose cursor
        // is after the last one read.
        let mut op = fs.scan(request.clone(), now());
        let mut step = op.start();
        for round in 0..MAX_ROUNDS {
            let limit = query_of(step)["limit"].as_u64().unwrap();
            assert_eq!(limit, 3);
            let docs = (0..limit)
                .map(|i| doc(&fs, &format!("{round}-{i}"), old, None))
                .collect();
            step = op.resume(&answer(docs));
        }
        let page = page_of(step);
        assert!(page.items.is_empty());
        let mut next = request.clone();
        next.cursor = page.next_cursor;
        let last = format!("{}-2", MAX_ROUNDS - 1);
        assert_eq!(next.resume_after().unwrap(), Some(last));

        // Old documents up to the end: an empty last page.
        let mut op = fs.scan(request, now());
        op.start();
        let page = page_of(op.resume(&answer(vec![doc(&fs, "z", old, None)])));
        assert!(page.items.is_empty() && page.next_cursor.is_none());
    }

    #[test]
    fn foreign_and_failed_answers_are_errors() {
        let fs = fs();
        let mut op = fs.scan(ScanRequest::first(0, 1, 5), now());
        op.start();
        let mut stray = doc(&fs, "a", "2026-01-01T00:00:00Z", None);
        stray["document"]["name"] =
            json!("projects/demo-p/databases/(default)/documents/items-once/a");
        assert!(matches!(
            op.resume(&answer(vec![stray])),
            Step::Done(Err(StoreError::Backend(_)))
        ));

        let mut op = fs.scan(ScanRequest::first(0, 1, 5), now());
        op.start();
        let denied = json!({"error": {"code": 403, "status": "PERMISSION_DENIED"}});
        assert!(matches!(
            op.resume(&sansio::response(403, denied.to_string().into_bytes())),
            Step::Done(Err(StoreError::Unauthorized(_)))
        ));
    }
}
