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
//! eventually). To fill a page anyway it asks for `limit + 1` documents and,
//! when expired ones were among them, asks again after the last one seen,
//! until the page has `limit` items and one more live item proves that the
//! next page is not empty, or the results end. Then `next-cursor` is the
//! position of the last item returned. After [`MAX_ROUNDS`] requests it
//! stops early and the cursor holds the last position seen (possibly an
//! expired item's), so a long run of expired items costs several pages
//! rather than one slow one.

use http::Method;
use item_model::{Cursor, IndexKey, Item, Order, Page, Query, StoreError, Timestamp};
use serde_json::{Value as Json, json};

use crate::document::{CREATED_AT, Doc, STATUS, USER_ID};
use crate::error::RpcStatus;
use crate::names::Firestore;
use crate::ops::{StoreResult, send};
use sansio::{Operation, Response, Step};

/// Most `runQuery` requests for one page.
pub const MAX_ROUNDS: u32 = 8;
/// Most documents asked for in one request.
const MAX_FETCH: u32 = 2000;

struct QueryOp {
    fs: Firestore,
    query: Query,
    now: Timestamp,
    items: Vec<Item>,
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
    let (field, value) = match key {
        IndexKey::UserId(v) => (USER_ID, v),
        IndexKey::Status(v) => (STATUS, v),
    };
    let direction = match order {
        Order::Asc => "ASCENDING",
        Order::Desc => "DESCENDING",
    };
    let mut query = json!({
        "from": [{ "collectionId": collection }],
        "where": { "fieldFilter": {
            "field": { "fieldPath": field },
            "op": "EQUAL",
            "value": { "stringValue": value },
        }},
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
        let missing = self.query.limit.saturating_sub(len_u32(&self.items));
        self.requested = (missing + 1).saturating_add(self.skipped).min(MAX_FETCH);
        self.rounds += 1;
        let body = structured_query(
            self.fs.collection(),
            &self.query.key,
            self.query.order,
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

    fn page(&mut self, cursor_at: Option<(String, String)>) -> Step<Page> {
        let next_cursor =
            cursor_at.map(|(created_at, id)| Cursor::after(&self.query, &created_at, &id).encode());
        let items = std::mem::take(&mut self.items);
        self.finish(Ok(Page { items, next_cursor }))
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
}

fn len_u32(items: &[Item]) -> u32 {
    u32::try_from(items.len()).unwrap_or(u32::MAX)
}

impl Operation for QueryOp {
    type Output = Page;

    fn start(&mut self) -> Step<Page> {
        if let Some(text) = &self.query.cursor {
            match Cursor::decode_for(text, &self.query) {
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
            if len_u32(&self.items) < self.query.limit {
                self.items.push(item);
            } else {
                // One live item beyond the page: a next page exists.
                let at = self
                    .items
                    .last()
                    .map(|last| (last.created_at.clone(), last.id.clone()));
                return self.page(at);
            }
        }
        if received < self.requested {
            return self.page(None);
        }
        if self.rounds >= MAX_ROUNDS {
            let at = self.last_seen.clone();
            return self.page(at);
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
            query,
            now,
            items: Vec::new(),
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

    /// The composite indexes the queries need are the ones shipped.
    #[test]
    fn shipped_indexes_cover_every_query() {
        let file: Json = serde_json::from_str(include_str!("../firestore.indexes.json")).unwrap();
        let indexes = file["indexes"].as_array().unwrap();
        for key in [IndexKey::UserId("u".into()), IndexKey::Status("s".into())] {
            for order in [Order::Asc, Order::Desc] {
                let body = structured_query("items", &key, order, None, 10);
                let q = &body["structuredQuery"];
                let mut wanted = vec![(
                    q["where"]["fieldFilter"]["field"]["fieldPath"].clone(),
                    json!("ASCENDING"),
                )];
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
        assert!(
            ttl.iter()
                .any(|f| f["fieldPath"] == "expiresAt" && f["ttl"] == true)
        );
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
}
