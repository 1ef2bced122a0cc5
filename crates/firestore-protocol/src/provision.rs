//! Provisioning, sans-IO: the composite indexes of `firestore.indexes.json`
//! and the TTL policies on `expiresAt` of the items and of the
//! idempotency records (`{collection}-once`, see the `once` module),
//! through the Firestore Admin REST API
//! (`projects/*/databases/*/collectionGroups/*/indexes` and `fields`).
//!
//! Idempotent: it lists the indexes first and creates only the missing
//! ones, then lists again every few seconds until all are `READY` (an
//! index on an empty collection builds in minutes; a bounded number of
//! polls, then an error that says to run it again). Each TTL policy is
//! requested when absent and reported as Firestore states it: it turns
//! `ACTIVE` in the background, which may take longer than anyone should
//! wait for. The records need no composite index (they are only read by
//! name).
//!
//! The emulator does not implement the Admin API (it needs no indexes);
//! the state machine is tested here against scripted answers.

use std::time::Duration;

use item_model::StoreError;
use sansio::{Operation, Outgoing, Pause, Response, Step};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::error::map_error;
use crate::names::Firestore;

/// How long to wait between two looks at the indexes being built.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How many looks before giving up (30 minutes at [`POLL_INTERVAL`]).
pub const MAX_POLLS: u32 = 360;
/// The field with the items' expiry.
const TTL_FIELD: &str = "expiresAt";

/// One composite index: its query scope and ordered fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSpec {
    /// `COLLECTION` for this store's queries.
    pub query_scope: String,
    /// `(fieldPath, ASCENDING|DESCENDING)` in order, `__name__` last.
    pub fields: Vec<IndexField>,
}

/// One field of an index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexField {
    /// The field's path.
    pub field_path: String,
    /// `ASCENDING` or `DESCENDING`.
    #[serde(default)]
    pub order: Option<String>,
}

/// The indexes `firestore.indexes.json` declares, whatever collection
/// group it names: they are created on the store's collection.
pub fn wanted_indexes() -> Result<Vec<IndexSpec>, StoreError> {
    #[derive(Deserialize)]
    struct File {
        indexes: Vec<IndexSpec>,
    }
    serde_json::from_str::<File>(crate::INDEXES_JSON)
        .map(|f| f.indexes)
        .map_err(|e| StoreError::Backend(format!("firestore.indexes.json is not readable: {e}")))
}

/// What provisioning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Indexes that existed already.
    pub existing_indexes: usize,
    /// Indexes created now.
    pub created_indexes: usize,
    /// The TTL policy's state as Firestore gave it (`ACTIVE`, `CREATING`).
    pub ttl_state: String,
    /// Whether the TTL policy was requested now.
    pub ttl_requested: bool,
    /// The state of the TTL policy on the records' `expiresAt`
    /// (`{collection}-once`), as Firestore gave it.
    pub records_ttl_state: String,
    /// Whether that policy was requested now.
    pub records_ttl_requested: bool,
}

#[derive(Debug)]
enum State {
    Listing,
    Creating {
        missing: Vec<IndexSpec>,
    },
    Polling {
        polls: u32,
    },
    /// The TTL policy of the items (`records: false`) or of the records.
    ReadingTtl {
        records: bool,
    },
    SettingTtl {
        records: bool,
    },
}

/// The provisioning operation; see the module docs.
#[derive(Debug)]
pub struct Provision {
    collection_url: String,
    records_url: String,
    wanted: Vec<IndexSpec>,
    state: State,
    existing: usize,
    created: usize,
    /// The items' TTL state and whether it was requested now.
    ttl: Option<(String, bool)>,
}

impl Firestore {
    /// Creates the missing composite indexes and waits until all are
    /// `READY`, then makes sure `expiresAt` has a TTL policy, on the items
    /// and on the idempotency records.
    pub fn provision(&self) -> Result<Provision, StoreError> {
        Ok(Provision {
            collection_url: self.admin_url(),
            records_url: self.records_admin_url(),
            wanted: wanted_indexes()?,
            state: State::Listing,
            existing: 0,
            created: 0,
            ttl: None,
        })
    }
}

fn request(method: http::Method, url: &str, body: Option<Json>) -> Result<Outgoing, StoreError> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .map(|request| Outgoing::new(request, true))
        .map_err(|_| StoreError::Backend("could not build a Firestore Admin API request".into()))
}

/// The indexes Firestore lists, with their states.
fn listed(body: &[u8]) -> Result<Vec<(IndexSpec, String)>, StoreError> {
    #[derive(Deserialize)]
    struct Listed {
        #[serde(flatten)]
        spec: IndexSpec,
        #[serde(default)]
        state: String,
    }
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        indexes: Vec<Listed>,
    }
    let list: List = serde_json::from_slice(body).map_err(|_| {
        StoreError::Backend("Firestore listed the indexes in an unexpected form".into())
    })?;
    Ok(list
        .indexes
        .into_iter()
        .map(|l| (l.spec, l.state))
        .collect())
}

impl Provision {
    fn indexes_url(&self) -> String {
        format!("{}/indexes", self.collection_url)
    }

    fn ttl_url(&self, records: bool) -> String {
        let group = if records {
            &self.records_url
        } else {
            &self.collection_url
        };
        format!("{group}/fields/{TTL_FIELD}")
    }

    fn list(&mut self, pause: Pause) -> Step<Provisioned> {
        match request(http::Method::GET, &self.indexes_url(), None) {
            Ok(outgoing) => Step::Send(outgoing.paused(pause)),
            Err(e) => Step::Done(Err(e)),
        }
    }

    /// Creates the next missing index, or starts polling.
    fn create_next(&mut self, mut missing: Vec<IndexSpec>) -> Step<Provisioned> {
        let Some(spec) = missing.pop() else {
            self.state = State::Polling { polls: 0 };
            return self.list(Pause::None);
        };
        let fields: Vec<Json> = spec
            .fields
            .iter()
            .map(|f| json!({"fieldPath": f.field_path, "order": f.order}))
            .collect();
        let body = json!({"queryScope": spec.query_scope, "fields": fields});
        self.state = State::Creating { missing };
        match request(http::Method::POST, &self.indexes_url(), Some(body)) {
            // A repeated create answers ALREADY_EXISTS, taken as done.
            Ok(outgoing) => Step::Send(outgoing),
            Err(e) => Step::Done(Err(e)),
        }
    }

    fn read_ttl(&mut self, records: bool) -> Step<Provisioned> {
        self.state = State::ReadingTtl { records };
        match request(http::Method::GET, &self.ttl_url(records), None) {
            Ok(outgoing) => Step::Send(outgoing),
            Err(e) => Step::Done(Err(e)),
        }
    }

    /// One TTL policy is known: the items' leads to the records', the
    /// records' ends provisioning.
    fn ttl_known(&mut self, records: bool, state: String, requested: bool) -> Step<Provisioned> {
        if !records {
            self.ttl = Some((state, requested));
            return self.read_ttl(true);
        }
        let (ttl_state, ttl_requested) = self.ttl.take().unwrap_or_default();
        Step::Done(Ok(Provisioned {
            existing_indexes: self.existing,
            created_indexes: self.created,
            ttl_state,
            ttl_requested,
            records_ttl_state: state,
            records_ttl_requested: requested,
        }))
    }
}

/// The TTL state of a field as Firestore returns it, if it has a policy.
fn ttl_state(body: &[u8]) -> Option<String> {
    let field: Json = serde_json::from_slice(body).ok()?;
    let config = field.get("ttlConfig")?;
    Some(
        config
            .get("state")
            .and_then(Json::as_str)
            .unwrap_or("CREATING")
            .to_string(),
    )
}

impl Operation for Provision {
    type Output = Provisioned;

    fn start(&mut self) -> Step<Provisioned> {
        self.list(Pause::None)
    }

    fn resume(&mut self, response: &Response) -> Step<Provisioned> {
        let status = response.status().as_u16();
        let ok = response.status().is_success();
        let state = std::mem::replace(&mut self.state, State::Listing);
        match state {
            State::Listing => {
                if !ok {
                    return Step::Done(Err(map_error(status, response.body())));
                }
                let present = match listed(response.body()) {
                    Ok(present) => present,
                    Err(e) => return Step::Done(Err(e)),
                };
                let missing: Vec<IndexSpec> = self
                    .wanted
                    .iter()
                    .filter(|w| !present.iter().any(|(p, _)| p == *w))
                    .cloned()
                    .collect();
                self.existing = self.wanted.len() - missing.len();
                self.create_next(missing)
            }
            State::Creating { missing } => {
                if ok || status == 409 {
                    self.created += usize::from(ok);
                    self.create_next(missing)
                } else {
                    Step::Done(Err(map_error(status, response.body())))
                }
            }
            State::Polling { polls } => {
                if !ok {
                    return Step::Done(Err(map_error(status, response.body())));
                }
                let present = match listed(response.body()) {
                    Ok(present) => present,
                    Err(e) => return Step::Done(Err(e)),
                };
                let ready = self
                    .wanted
                    .iter()
                    .all(|w| present.iter().any(|(p, state)| p == w && state == "READY"));
                if ready {
                    return self.read_ttl(false);
                }
                if polls + 1 >= MAX_POLLS {
                    return Step::Done(Err(StoreError::Unavailable(
                        "the Firestore indexes are still building; run provisioning again later to wait for them".into(),
                    )));
                }
                self.state = State::Polling { polls: polls + 1 };
                self.list(Pause::Poll(POLL_INTERVAL))
            }
            State::ReadingTtl { records } => {
                if ok && let Some(state) = ttl_state(response.body()) {
                    return self.ttl_known(records, state, false);
                }
                if !ok && status != 404 {
                    return Step::Done(Err(map_error(status, response.body())));
                }
                self.state = State::SettingTtl { records };
                let url = format!("{}?updateMask=ttlConfig", self.ttl_url(records));
                match request(http::Method::PATCH, &url, Some(json!({"ttlConfig": {}}))) {
                    Ok(outgoing) => Step::Send(outgoing),
                    Err(e) => Step::Done(Err(e)),
                }
            }
            State::SettingTtl { records } => {
                if ok {
                    self.ttl_known(records, "CREATING".into(), true)
                } else {
                    Step::Done(Err(map_error(status, response.body())))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::PRODUCTION_BASE_URL;

    fn answer(status: u16, body: Json) -> Response {
        sansio::response(status, body.to_string())
    }

    fn index_json(spec: &IndexSpec, state: &str) -> Json {
        let fields: Vec<Json> = spec
            .fields
            .iter()
            .map(|f| json!({"fieldPath": f.field_path, "order": f.order}))
            .collect();
        json!({"name": "projects/p/x", "queryScope": spec.query_scope, "fields": fields, "state": state})
    }

    fn sent(step: Step<Provisioned>) -> Outgoing {
        match step {
            Step::Send(outgoing) => outgoing,
            Step::Done(result) => panic!("expected a request, got {result:?}"),
        }
    }

    fn provision() -> Provision {
        Firestore::new(PRODUCTION_BASE_URL, "demo", "(default)", "things")
            .unwrap()
            .provision()
            .unwrap()
    }

    #[test]
    fn the_index_file_declares_every_query_index() {
        let wanted = wanted_indexes().unwrap();
        assert_eq!(wanted.len(), 6);
        assert!(
            wanted
                .iter()
                .all(|w| w.fields.last().unwrap().field_path == "__name__")
        );
    }

    #[test]
    fn missing_indexes_are_created_then_awaited_then_ttl_requested() {
        let wanted = wanted_indexes().unwrap();
        let mut op = provision();
        let list = sent(op.start());
        assert_eq!(list.request.method(), http::Method::GET);
        assert_eq!(
            list.request.uri(),
            "https://firestore.googleapis.com/v1/projects/demo/databases/(default)/collectionGroups/things/indexes"
        );
        // Two exist already; four are created, one of them concurrently by
        // someone else (409).
        let present: Vec<Json> = wanted[..2].iter().map(|w| index_json(w, "READY")).collect();
        let mut step = op.resume(&answer(200, json!({"indexes": present})));
        for i in 0..4 {
            let create = sent(step);
            assert_eq!(create.request.method(), http::Method::POST);
            let body: Json = serde_json::from_slice(create.request.body()).unwrap();
            assert_eq!(body["queryScope"], "COLLECTION");
            let status = if i == 0 { 409 } else { 200 };
            step = op.resume(&answer(status, json!({"name": "operations/x"})));
        }
        // Polling: first still building, then all ready.
        let poll = sent(step);
        assert_eq!(poll.pause, Pause::None);
        let building: Vec<Json> = wanted
            .iter()
            .enumerate()
            .map(|(i, w)| index_json(w, if i == 5 { "CREATING" } else { "READY" }))
            .collect();
        let again = sent(op.resume(&answer(200, json!({"indexes": building}))));
        assert_eq!(again.pause, Pause::Poll(POLL_INTERVAL));
        let ready: Vec<Json> = wanted.iter().map(|w| index_json(w, "READY")).collect();
        let ttl = sent(op.resume(&answer(200, json!({"indexes": ready}))));
        assert!(
            ttl.request
                .uri()
                .to_string()
                .ends_with("/collectionGroups/things/fields/expiresAt")
        );
        let set = sent(op.resume(&answer(
            200,
            json!({"name": "x/fields/expiresAt", "indexConfig": {}}),
        )));
        assert_eq!(set.request.method(), http::Method::PATCH);
        assert!(
            set.request
                .uri()
                .to_string()
                .ends_with("?updateMask=ttlConfig")
        );
        // Then the records' TTL, already there.
        let records = sent(op.resume(&answer(200, json!({"name": "operations/y"}))));
        assert_eq!(records.request.method(), http::Method::GET);
        assert!(
            records
                .request
                .uri()
                .to_string()
                .ends_with("/collectionGroups/things-once/fields/expiresAt")
        );
        let Step::Done(Ok(done)) =
            op.resume(&answer(200, json!({"ttlConfig": {"state": "ACTIVE"}})))
        else {
            panic!("not done");
        };
        assert_eq!(
            done,
            Provisioned {
                existing_indexes: 2,
                created_indexes: 3,
                ttl_state: "CREATING".into(),
                ttl_requested: true,
                records_ttl_state: "ACTIVE".into(),
                records_ttl_requested: false,
            }
        );
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let wanted = wanted_indexes().unwrap();
        let mut op = provision();
        sent(op.start());
        let ready: Vec<Json> = wanted.iter().map(|w| index_json(w, "READY")).collect();
        let poll = sent(op.resume(&answer(200, json!({"indexes": ready.clone()}))));
        assert_eq!(poll.request.method(), http::Method::GET);
        let ttl = sent(op.resume(&answer(200, json!({"indexes": ready}))));
        assert_eq!(ttl.request.method(), http::Method::GET);
        let records = sent(op.resume(&answer(200, json!({"ttlConfig": {"state": "ACTIVE"}}))));
        assert!(
            records
                .request
                .uri()
                .to_string()
                .ends_with("/collectionGroups/things-once/fields/expiresAt")
        );
        // A records' collection that never had a policy: requested.
        let set = sent(op.resume(&answer(404, json!({}))));
        assert_eq!(set.request.method(), http::Method::PATCH);
        assert!(
            set.request
                .uri()
                .to_string()
                .ends_with("/collectionGroups/things-once/fields/expiresAt?updateMask=ttlConfig")
        );
        let Step::Done(Ok(done)) = op.resume(&answer(200, json!({"name": "operations/z"}))) else {
            panic!("not done");
        };
        assert_eq!(done.created_indexes, 0);
        assert_eq!(done.existing_indexes, 6);
        assert_eq!(done.ttl_state, "ACTIVE");
        assert!(!done.ttl_requested);
        assert_eq!(done.records_ttl_state, "CREATING");
        assert!(done.records_ttl_requested);
    }

    #[test]
    fn refusals_end_it_with_the_mapped_error() {
        let mut op = provision();
        sent(op.start());
        let refused = answer(
            403,
            json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "no"}}),
        );
        let Step::Done(Err(error)) = op.resume(&refused) else {
            panic!("not an error");
        };
        assert!(matches!(error, StoreError::Unauthorized(_)), "{error:?}");
    }
}
