//! Queries: `runQuery` with a structured query per page.
//!
//! `where userId == X` (or `status == X`), `orderBy createdAt, __name__`
//! in the requested direction (both keys the same way, so the composite
//! indexes of `firestore.indexes.json` serve it), `limit`, and for a
//! following page `startAt {values: [createdAt, name], before: false}`,
//! which starts just after the cursor's position: paging resumes from a
//! position, never an offset, so it neither skips nor repeats items while
//! others write.
//!
//! Expired items are filtered here (Firestore's TTL deletes them only
//! eventually). To fill a page anyway it asks for the rest of the page and
//! one more document and, when expired ones were among them, asks again
//! after the last one seen, until the page is full and one more live item
//! proves that the next page is not empty, or the results end. Then
//! `next-cursor` is the position of the last item returned. After
//! [`MAX_ROUNDS`] requests it stops early and the cursor holds the last
//! position seen (possibly an expired item's), so a long run of expired
//! items costs several pages rather than one slow one.
//!
//! Bytes: the page is item_model's [`PageBuilder`], full when the next item
//! would take it past its byte budget. Firestore has no byte limit on an
//! answer, so every request asks for at most [`MAX_DOCUMENTS_PER_CALL`]
//! documents, and, once documents have been seen, no more than the rest of
//! the budget holds at the size of the largest of them; once the page is
//! full, no further request is made.

use http::Method;
use item_model::{Cursor, IndexKey, Offer, Order, Page, PageBuilder, Query, StoreError, Timestamp};
use serde_json::{Value as Json, json};

use crate::document::{CREATED_AT, Doc, STATUS, USER_ID};
use crate::error::RpcStatus;
use crate::names::Firestore;
use crate::ops::{StoreResult, send};
use sansio::{Operation, Response, Step};

/// Most `runQuery` requests for one page.
pub const MAX_ROUNDS: u32 = 8;
/// Most documents asked for in one request. A document holds at most
/// 1 MiB, so an answer holds at most about 24 MiB, under the adapter
/// component's 32 MiB limit on a response, whatever the documents; the
/// API's default page (20 items and one to look ahead) still takes one
/// request, and its largest (100) five.
pub(crate) const MAX_DOCUMENTS_PER_CALL: u32 = 24;

struct QueryOp {
    fs: Firestore,
    /// The page so far, with its query.
    page: PageBuilder,
    now: Timestamp,
    /// The last position seen: `createdAt` as stored and the document name.
    after: Option<(Json, String)>,
    /// The same position as (created-at, id), for a cursor.
    last_seen: Option<(String, String)>,
    skipped: u32,
    rounds: u32,
    requested: u32,
    done: bool,
}

/// The `runQuery` body for one request (public for the index check).
pub(crate) fn structured_query(
    collection: &str,
    key: &IndexKey,
    order: Order,
    after: Option<&(Json, String)>,
    limit: u32,
) -> Json {
    let equal = |field: &str, value: &str| {
        json!({ "fieldFilter": {
            "field": { "fieldPath": field },
            "op": "EQUAL",
            "value": { "stringValue": value },
        }})
    };
    // One user's items in one status need both fields equal, and a
    // composite index (userId, status, createdAt) in firestore.indexes.json.
    let filter = match key {
        IndexKey::UserId(v) => equal(USER_ID, v),
        IndexKey::Status(v) => equal(STATUS, v),
        IndexKey::UserStatus { user_id, status } => json!({ "compositeFilter": {
            "op": "AND",
            "filters": [equal(USER_ID, user_id), equal(STATUS, status)],
        }}),
    };
    let direction = match order {
        Order::Asc => "ASCENDING",
        Order::Desc => "DESCENDING",
    };
    let mut query = json!({
        "from": [{ "collectionId": collection }],
        "where": filter,
        "orderBy": [
            { "field": { "fieldPath": CREATED_AT }, "direction": direction },
            { "field": { "fieldPath": "__name__" }, "direction": direction },
        ],
        "limit": limit,
    });
    if let Some((created_at, name)) = after {
        query["startAt"] = json!({
            "values": [created_at, { "referenceValue": name }],
            "before": false,
        });
    }
    json!({ "structuredQuery": query })
}

impl QueryOp {
    fn fetch(&mut self) -> Step<Page> {
        let wanted = u32::try_from(self.page.wanted()).unwrap_or(u32::MAX);
        self.requested = wanted
            .saturating_add(self.skipped)
            .min(MAX_DOCUMENTS_PER_CALL);
        self.rounds += 1;
        let query = self.page.query();
        let body = structured_query(
            self.fs.collection(),
            &query.key,
            query.order,
            self.after.as_ref(),
            self.requested,
        );
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(self.fs.method_url("runQuery"))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|_| StoreError::Backend("could not build a Firestore request".into()));
        match send(request, true) {
            Step::Done(result) => self.finish(result),
            step => step,
        }
    }

    fn finish(&mut self, result: StoreResult<Page>) -> Step<Page> {
        self.done = true;
        Step::Done(result)
    }

    fn documents(&self, status: u16, body: &[u8]) -> StoreResult<Vec<Doc>> {
        if !(200..300).contains(&status) {
            let rpc = RpcStatus::parse(status, body);
            if rpc.is("FAILED_PRECONDITION") {
                // A query has no preconditions: this is Firestore asking
                // for an index.
                return Err(StoreError::Backend(
                    "Firestore refused the query (FAILED_PRECONDITION); deploy the composite indexes of firestore.indexes.json".into(),
                ));
            }
            return Err(rpc.into_store_error());
        }
        run_query_documents(status, body)
    }
}

/// The documents of a `runQuery` answer, in its order; shared by queries
/// and scans so that both read documents alike.
pub(crate) fn run_query_documents(status: u16, body: &[u8]) -> StoreResult<Vec<Doc>> {
    if !(200..300).contains(&status) {
        return Err(RpcStatus::parse(status, body).into_store_error());
    }
    let unexpected = || StoreError::Backend("unexpected query response from Firestore".into());
    let json: Json = serde_json::from_slice(body).map_err(|_| unexpected())?;
    let entries = json.as_array().ok_or_else(unexpected)?;
    let mut docs = Vec::new();
    for entry in entries {
        if entry.get("error").is_some() {
            return Err(RpcStatus::parse(500, entry.to_string().as_bytes()).into_store_error());
        }
        if let Some(doc) = entry.get("document") {
            docs.push(Doc::parse(doc).ok_or_else(unexpected)?);
        }
    }
    Ok(docs)
}

impl Operation for QueryOp {
    type Output = Page;

    fn start(&mut self) -> Step<Page> {
        let query = self.page.query();
        if let Some(text) = &query.cursor {
            match Cursor::decode_for(text, query) {
                Ok(cursor) => {
                    self.after = Some((
                        json!({ "timestampValue": cursor.created_at }),
                        self.fs.document_name(&cursor.id),
                    ));
                }
                Err(e) => return self.finish(Err(e.into())),
            }
        }
        self.fetch()
    }

    fn resume(&mut self, response: &Response) -> Step<Page> {
        let (status, body) = (response.status().as_u16(), response.body().as_slice());
        if self.done {
            return Step::Done(Err(StoreError::Backend(
                "operation resumed after it finished".into(),
            )));
        }
        let docs = match self.documents(status, body) {
            Ok(docs) => docs,
            Err(e) => return self.finish(Err(e)),
        };
        let received = len_u32_docs(&docs);
        for doc in docs {
            let Some(id) = self.fs.id_of(&doc.name).map(str::to_owned) else {
                continue;
            };
            let item = doc.item(&id);
            self.after = Some((
                doc.fields.get(CREATED_AT).cloned().unwrap_or(Json::Null),
                doc.name.clone(),
            ));
            self.last_seen = Some((item.created_at.clone(), id));
            if doc.is_expired(self.now) {
                self.skipped += 1;
                continue;
            }
            if self.page.offer(item) == Offer::Full {
                // One live item beyond the page (by count or by bytes): a
                // next page exists.
                let page = self.page.page_with_more();
                return self.finish(Ok(page));
            }
        }
        if received < self.requested {
            let page = self.page.last_page();
            return self.finish(Ok(page));
        }
        if self.rounds >= MAX_ROUNDS {
            let page = match &self.last_seen {
                Some((created_at, id)) => self.page.page_resuming_after(created_at, id),
                None => self.page.page_with_more(),
            };
            return self.finish(Ok(page));
        }
        self.fetch()
    }
}

fn len_u32_docs(docs: &[Doc]) -> u32 {
    u32::try_from(docs.len()).unwrap_or(u32::MAX)
}

impl Firestore {
    /// Lists items by user id or status (see the module docs).
    pub fn query(
        &self,
        query: Query,
        now: Timestamp,
    ) -> impl Operation<Output = Page> + Send + use<> {
        QueryOp {
            fs: self.clone(),
            page: PageBuilder::new(query),
            now,
            after: None,
            last_seen: None,
            skipped: 0,
            rounds: 0,
            requested: 0,
            done: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// firebase.json, beside the index file, deploys that file
    /// (`firebase deploy --only firestore:indexes`, docs/gcp.md).
    #[test]
    fn firebase_json_deploys_the_shipped_indexes() {
        let config: Json = serde_json::from_str(include_str!("../firebase.json")).unwrap();
        assert_eq!(config["firestore"]["indexes"], "firestore.indexes.json");
    }

    /// The composite indexes the queries need are the ones shipped.
    #[test]
    fn shipped_indexes_cover_every_query() {
        let file: Json = serde_json::from_str(include_str!("../firestore.indexes.json")).unwrap();
        let indexes = file["indexes"].as_array().unwrap();
        let both = IndexKey::UserStatus {
            user_id: "u".into(),
            status: "s".into(),
        };
        for key in [
            IndexKey::UserId("u".into()),
            IndexKey::Status("s".into()),
            both,
        ] {
            for order in [Order::Asc, Order::Desc] {
                let body = structured_query("items", &key, order, None, 10);
                let q = &body["structuredQuery"];
                // Equality fields first (ascending), then the order.
                let equal = match q["where"]["compositeFilter"]["filters"].as_array() {
                    Some(filters) => filters.iter().collect(),
                    None => vec![&q["where"]],
                };
                let mut wanted: Vec<_> = equal
                    .iter()
                    .map(|f| {
                        (
                            f["fieldFilter"]["field"]["fieldPath"].clone(),
                            json!("ASCENDING"),
                        )
                    })
                    .collect();
                for o in q["orderBy"].as_array().unwrap() {
                    wanted.push((o["field"]["fieldPath"].clone(), o["direction"].clone()));
                }
                let covered = indexes.iter().any(|index| {
                    index["collectionGroup"] == "items"
                        && index["queryScope"] == "COLLECTION"
                        && index["fields"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| (f["fieldPath"].clone(), f["order"].clone()))
                            .eq(wanted.iter().cloned())
                });
                assert!(covered, "no index for {key:?} {order:?}: {wanted:?}");
            }
        }
        let ttl = file["fieldOverrides"].as_array().unwrap();
        // The items' TTL, and the Idempotency-Key records' (`once`).
        for group in ["items", "items-once"] {
            assert!(
                ttl.iter().any(|f| f["collectionGroup"] == group
                    && f["fieldPath"] == "expiresAt"
                    && f["ttl"] == true),
                "{group}"
            );
        }
    }

    #[test]
    fn a_following_page_starts_after_the_cursor() {
        let body = structured_query(
            "items",
            &IndexKey::Status("active".into()),
            Order::Desc,
            Some(&(
                json!({"timestampValue": "2026-02-08T10:00:00.000000Z"}),
                "projects/p/databases/(default)/documents/items/a".into(),
            )),
            21,
        );
        let q = &body["structuredQuery"];
        assert_eq!(q["limit"], 21);
        assert_eq!(q["startAt"]["before"], false);
        assert_eq!(
            q["startAt"]["values"][1]["referenceValue"],
            "projects/p/databases/(default)/documents/items/a"
        );
        assert_eq!(q["orderBy"][1]["direction"], "DESCENDING");
    }

    fn run_query_answer(fs: &Firestore, docs: &[(&str, &str, usize)]) -> Response {
        let entries: Vec<Json> = docs
            .iter()
            .map(|(id, created_at, blob_bytes)| {
                json!({"document": {
                    "name": fs.document_name(id),
                    "fields": {
                        "status": {"stringValue": "active"},
                        "createdAt": {"timestampValue": created_at},
                        "blob": {"stringValue": "x".repeat(*blob_bytes)},
                    },
                    "createTime": created_at,
                    "updateTime": created_at,
                }})
            })
            .collect();
        sansio::response(200, Json::Array(entries).to_string().into_bytes())
    }

    fn requested_limit(step: &Step<Page>) -> u64 {
        match step {
            Step::Send(out) => {
                let body: Json = serde_json::from_slice(out.request.body()).unwrap();
                body["structuredQuery"]["limit"].as_u64().unwrap()
            }
            Step::Done(r) => panic!("expected a request, got {r:?}"),
        }
    }

    #[test]
    fn requests_are_capped_and_a_page_ends_at_its_byte_budget() {
        let fs = Firestore::new(
            "http://127.0.0.1:1",
            "demo-p",
            crate::names::DEFAULT_DATABASE,
            "items",
        )
        .unwrap();
        let query = Query {
            key: IndexKey::Status("active".into()),
            order: Order::Asc,
            limit: 100,
            cursor: None,
        };
        let now = Timestamp::parse("2026-02-08T10:00:00Z").unwrap();
        let mut op = fs.query(query.clone(), now);
        let first = op.start();
        assert_eq!(requested_limit(&first), u64::from(MAX_DOCUMENTS_PER_CALL));
        // A full answer of small documents: the next request asks again.
        let small: Vec<(String, String)> = (0..24)
            .map(|i| {
                (
                    format!("s{i:02}"),
                    format!("2026-01-01T00:00:{i:02}.000000Z"),
                )
            })
            .collect();
        let small: Vec<(&str, &str, usize)> = small
            .iter()
            .map(|(id, at)| (id.as_str(), at.as_str(), 10))
            .collect();
        let second = op.resume(&run_query_answer(&fs, &small));
        assert_eq!(requested_limit(&second), u64::from(MAX_DOCUMENTS_PER_CALL));
        // Then documents of 1.5 MiB: two fit in what is left of the 4 MiB,
        // the third ends the page with a cursor at the second.
        let big = 1536 * 1024;
        let answer = run_query_answer(
            &fs,
            &[
                ("b0", "2026-01-02T00:00:00.000000Z", big),
                ("b1", "2026-01-02T00:00:01.000000Z", big),
                ("b2", "2026-01-02T00:00:02.000000Z", big),
            ],
        );
        let page = match op.resume(&answer) {
            Step::Done(Ok(page)) => page,
            other => panic!("expected the page, got {other:?}"),
        };
        assert_eq!(page.items.len(), 26);
        let cursor = Cursor::decode_for(page.next_cursor.as_deref().unwrap(), &query).unwrap();
        assert_eq!(cursor.id, "b1");
    }
}
