//! The store operations as sans-IO state machines.
//!
//! An [`Operation`] hands out HTTP requests ([`Step::Send`]) and takes the
//! responses back until it has its result ([`Step::Done`]); the transport
//! (reqwest natively, wasi:http in a component) only sends, authorizes and
//! retries. Some operations need several round trips:
//!
//! - create commits with `currentDocument.exists = false`; when the id is
//!   taken it reads the document, and an expired one (hidden from every
//!   read) is replaced under a precondition on its `updateTime`.
//! - put, update and delete read first (to hide expired items, to keep
//!   `createdAt`, to return the whole new item) and then commit under a
//!   precondition on the `updateTime` they read; when someone else wrote in
//!   between, they read again and decide again. So an expected version is
//!   checked atomically, and repeating a commit is harmless: a repeat fails
//!   its precondition, and the next read recognises the operation's own
//!   write (same fields, same `updatedAt`) as done.
//! - increment reads (to hide expired items and refuse a non-numeric
//!   field), then commits a blind `increment` field transform with
//!   `exists = true`, so concurrent increments never conflict and never
//!   lose an update. Its version is the commit's `updateTime`; the other
//!   fields of the returned item are those read just before. It is not
//!   idempotent: transports must not repeat it after an ambiguous failure.
//!   Firestore saturates an integer that would overflow at the i64 limit,
//!   and adds in double arithmetic when the field is a double.
//!
//! - apply-once (an Idempotency-Key) runs the same plans, read beside the
//!   key's record and committed with it (`crate::once`); there increment
//!   is a read-modify-write ([`CountPlan`]) whose result is known before
//!   the commit.
//!
//! No operation uses a transaction: preconditions give the same guarantees
//! with one commit, and the emulator's `GET ?transaction=` (which can hang)
//! is never needed.
//!
//! Preconditions always travel in a `:commit` body, never as the
//! `currentDocument.updateTime` query parameter (the emulator reads that as
//! zero).

use http::{Method, Request, header};
use item_model::{
    Attribute, BatchResult, BatchWrite, Item, ItemPatch, NewItem, PutOutcome, StoreError,
    Timestamp, Value, Write, Written, counter,
};
use sansio::{Operation, Outgoing, Response, Step};
use serde_json::{Value as Json, json};

use crate::document::{self, Doc, Fields, UPDATED_AT};
use crate::error::RpcStatus;
use crate::names::{Firestore, field_path};
use crate::once::Keyed;
use crate::value;

/// What every store operation returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// How often a read-then-write operation reads again after losing a race
/// before it gives up with `Throttled` (apply-once: or `KeyInUse`).
pub(crate) const MAX_CONFLICTS: u32 = 16;
/// The pause `Throttled` suggests after that.
pub(crate) const CONTENTION_RETRY_MS: u32 = 100;

pub(crate) fn unexpected(what: &str) -> StoreError {
    StoreError::Backend(format!("unexpected {what} from Firestore"))
}

pub(crate) fn build(
    method: Method,
    url: &str,
    body: Option<&Json>,
) -> StoreResult<Request<Vec<u8>>> {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, "application/json");
    if body.is_some() {
        // The emulator refuses POST bodies without it.
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    request
        .body(bytes)
        .map_err(|_| StoreError::Backend("could not build a Firestore request".into()))
}

pub(crate) fn send<T>(request: StoreResult<Request<Vec<u8>>>, idempotent: bool) -> Step<T> {
    match request {
        Ok(request) => Step::Send(Outgoing::new(request, idempotent)),
        Err(e) => Step::Done(Err(e)),
    }
}

/// A `currentDocument` precondition.
#[derive(Debug, Clone)]
pub(crate) enum Precondition {
    Exists(bool),
    UpdateTime(String),
}

impl Precondition {
    pub(crate) fn json(&self) -> Json {
        match self {
            Precondition::Exists(exists) => json!({ "exists": exists }),
            Precondition::UpdateTime(time) => json!({ "updateTime": time }),
        }
    }
}

/// A `Write` that sets a document: whole (no mask) or the masked fields.
pub(crate) fn update_write(
    name: String,
    fields: &Fields,
    mask: Option<Vec<String>>,
    transforms: Vec<Json>,
    precondition: Option<&Precondition>,
) -> Json {
    let mut write = json!({ "update": { "name": name, "fields": fields } });
    if let Some(paths) = mask {
        write["updateMask"] = json!({ "fieldPaths": paths });
    }
    if !transforms.is_empty() {
        write["updateTransforms"] = Json::Array(transforms);
    }
    if let Some(p) = precondition {
        write["currentDocument"] = p.json();
    }
    write
}

pub(crate) fn delete_write(name: String, precondition: Option<&Precondition>) -> Json {
    let mut write = json!({ "delete": name });
    if let Some(p) = precondition {
        write["currentDocument"] = p.json();
    }
    write
}

pub(crate) fn commit<T>(fs: &Firestore, writes: Vec<Json>, idempotent: bool) -> Step<T> {
    let body = json!({ "writes": writes });
    send(
        build(Method::POST, &fs.method_url("commit"), Some(&body)),
        idempotent,
    )
}

fn read<T>(fs: &Firestore, id: &str) -> Step<T> {
    send(build(Method::GET, &fs.document_url(id), None), true)
}

/// A document read: `None` when there is none.
fn read_outcome(status: u16, body: &[u8]) -> StoreResult<Option<Doc>> {
    if (200..300).contains(&status) {
        let json: Json = serde_json::from_slice(body).map_err(|_| unexpected("document"))?;
        return Doc::parse(&json)
            .map(Some)
            .ok_or_else(|| unexpected("document"));
    }
    let rpc = RpcStatus::parse(status, body);
    if rpc.is("NOT_FOUND") {
        Ok(None)
    } else {
        Err(rpc.into_store_error())
    }
}

/// One entry of a commit's `writeResults`.
#[derive(Debug, Clone)]
pub(crate) struct WriteResult {
    /// The new version; `None` after a delete.
    pub version: Option<String>,
    pub transforms: Vec<Json>,
}

pub(crate) enum CommitOutcome {
    Applied(Vec<WriteResult>),
    /// A precondition failed: someone else wrote first.
    Conflict,
    Failed(StoreError),
}

pub(crate) fn commit_outcome(status: u16, body: &[u8]) -> CommitOutcome {
    if (200..300).contains(&status) {
        let Ok(json) = serde_json::from_slice::<Json>(body) else {
            return CommitOutcome::Failed(unexpected("commit response"));
        };
        let results = json
            .get("writeResults")
            .and_then(Json::as_array)
            .map(|results| {
                results
                    .iter()
                    .map(|r| WriteResult {
                        version: r
                            .get("updateTime")
                            .and_then(Json::as_str)
                            .and_then(document::canonical_version),
                        transforms: r
                            .get("transformResults")
                            .and_then(Json::as_array)
                            .cloned()
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        return CommitOutcome::Applied(results);
    }
    let rpc = RpcStatus::parse(status, body);
    if rpc.is("FAILED_PRECONDITION") || rpc.is("ALREADY_EXISTS") || rpc.is("NOT_FOUND") {
        CommitOutcome::Conflict
    } else {
        CommitOutcome::Failed(rpc.into_store_error())
    }
}

/// The version a single-write commit produced.
fn first_version(results: &[WriteResult]) -> StoreResult<String> {
    results
        .first()
        .and_then(|r| r.version.clone())
        .ok_or_else(|| unexpected("commit response"))
}

/// What a read-then-write operation does once it has read the document.
pub(crate) enum Decision<T> {
    Finish(StoreResult<T>),
    Write { writes: Vec<Json>, idempotent: bool },
}

impl<T> Decision<T> {
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Decision<U> {
        match self {
            Decision::Finish(result) => Decision::Finish(result.map(f)),
            Decision::Write { writes, idempotent } => Decision::Write { writes, idempotent },
        }
    }
}

/// The operation-specific part of a read-then-write operation.
pub(crate) trait Plan {
    type Output;
    fn id(&self) -> &str;
    /// Encodes what the operation writes before any round trip, refusing
    /// what Firestore cannot store. Input arrives validated (the host and
    /// the component's export own `item_model::validate`).
    fn check(&mut self) -> StoreResult<()> {
        Ok(())
    }
    /// A write to try before any read (create), if any.
    fn first(&mut self, _fs: &Firestore) -> Option<Decision<Self::Output>> {
        None
    }
    /// `doc` is the document as read now (expired or not).
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Self::Output>;
    /// Forgets what recognises the plan's own earlier commit (see
    /// `decide`). A keyed write calls it before every round: there the
    /// record, written in the same commit, is what recognises it, and a
    /// guess from the item alone (a delete finding nothing) must not
    /// answer for a write that was never recorded.
    fn forget(&mut self) {}
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Self::Output>;
}

enum State {
    Reading,
    Writing,
    Done,
}

/// Drives a [`Plan`]: read, decide, commit, and read again after a lost race.
struct ReadWrite<P> {
    fs: Firestore,
    plan: P,
    state: State,
    conflicts: u32,
}

impl<P: Plan> ReadWrite<P> {
    fn new(fs: &Firestore, plan: P) -> Self {
        Self {
            fs: fs.clone(),
            plan,
            state: State::Reading,
            conflicts: 0,
        }
    }

    fn apply(&mut self, decision: Decision<P::Output>) -> Step<P::Output> {
        match decision {
            Decision::Finish(result) => self.done(result),
            Decision::Write { writes, idempotent } => {
                self.state = State::Writing;
                commit(&self.fs, writes, idempotent)
            }
        }
    }

    fn done(&mut self, result: StoreResult<P::Output>) -> Step<P::Output> {
        self.state = State::Done;
        Step::Done(result)
    }
}

impl<P: Plan> Operation for ReadWrite<P> {
    type Output = P::Output;

    fn start(&mut self) -> Step<P::Output> {
        if let Err(e) = self
            .fs
            .check_id(self.plan.id())
            .and_then(|()| self.plan.check())
        {
            return self.done(Err(e));
        }
        match self.plan.first(&self.fs) {
            Some(decision) => self.apply(decision),
            None => {
                self.state = State::Reading;
                read(&self.fs, self.plan.id())
            }
        }
    }

    fn resume(&mut self, response: &Response) -> Step<P::Output> {
        let (status, body) = (response.status().as_u16(), response.body().as_slice());
        match self.state {
            State::Reading => match read_outcome(status, body) {
                Ok(doc) => {
                    let decision = self.plan.decide(&self.fs, doc);
                    self.apply(decision)
                }
                Err(e) => self.done(Err(e)),
            },
            State::Writing => match commit_outcome(status, body) {
                CommitOutcome::Applied(results) => {
                    let result = self.plan.finish(&results);
                    self.done(result)
                }
                CommitOutcome::Conflict if self.conflicts < MAX_CONFLICTS => {
                    self.conflicts += 1;
                    self.state = State::Reading;
                    read(&self.fs, self.plan.id())
                }
                CommitOutcome::Conflict => {
                    self.done(Err(StoreError::Throttled(CONTENTION_RETRY_MS)))
                }
                CommitOutcome::Failed(e) => self.done(Err(e)),
            },
            State::Done => Step::Done(Err(StoreError::Backend(
                "operation resumed after it finished".into(),
            ))),
        }
    }
}

/// The live document a conditional write applies to: absent or expired is
/// `not-found` (a version mismatch when a version was expected), another
/// version than the expected one a version mismatch.
fn live_at_version(doc: Option<Doc>, expected: Option<&str>, now: Timestamp) -> StoreResult<Doc> {
    let Some(doc) = doc.filter(|d| !d.is_expired(now)) else {
        return Err(match expected {
            Some(_) => StoreError::VersionMismatch(None),
            None => StoreError::NotFound,
        });
    };
    match expected {
        Some(expected) if !document::same_version(&doc.version, expected) => {
            Err(StoreError::VersionMismatch(Some(doc.version)))
        }
        _ => Ok(doc),
    }
}

struct GetPlan {
    id: String,
    now: Timestamp,
}

impl Plan for GetPlan {
    type Output = Item;
    fn id(&self) -> &str {
        &self.id
    }
    fn decide(&mut self, _fs: &Firestore, doc: Option<Doc>) -> Decision<Item> {
        Decision::Finish(match doc {
            Some(doc) => {
                let item = doc.item(&self.id);
                if item.is_expired(self.now.unix_seconds()) {
                    Err(StoreError::NotFound)
                } else {
                    Ok(item)
                }
            }
            None => Err(StoreError::NotFound),
        })
    }
    fn finish(&mut self, _results: &[WriteResult]) -> StoreResult<Item> {
        Err(unexpected("write"))
    }
}

struct CreatePlan {
    item: NewItem,
    now: Timestamp,
    fields: Fields,
    /// Whether a document with exactly our fields is our own lost write.
    recognise: bool,
}

impl CreatePlan {
    fn write(&self, fs: &Firestore, precondition: Precondition) -> Decision<Item> {
        Decision::Write {
            writes: vec![update_write(
                fs.document_name(&self.item.id),
                &self.fields,
                None,
                Vec::new(),
                Some(&precondition),
            )],
            idempotent: true,
        }
    }
}

impl Plan for CreatePlan {
    type Output = Item;
    fn id(&self) -> &str {
        &self.item.id
    }
    fn check(&mut self) -> StoreResult<()> {
        let now = self.now.to_string();
        self.fields = document::item_fields(&self.item, &now, &now)?;
        Ok(())
    }
    fn first(&mut self, fs: &Firestore) -> Option<Decision<Item>> {
        Some(self.write(fs, Precondition::Exists(false)))
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Item> {
        match doc {
            None => self.write(fs, Precondition::Exists(false)),
            // Our own earlier attempt, whose answer was lost.
            Some(doc) if self.recognise && value::same_fields(&doc.fields, &self.fields) => {
                Decision::Finish(Ok(doc.item(&self.item.id)))
            }
            Some(doc) if doc.is_expired(self.now) => {
                self.write(fs, Precondition::UpdateTime(doc.version))
            }
            Some(_) => Decision::Finish(Err(StoreError::AlreadyExists)),
        }
    }
    fn forget(&mut self) {
        self.recognise = false;
    }
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Item> {
        let version = first_version(results)?;
        Ok(document::item_from_fields(
            &self.item.id,
            &self.fields,
            None,
            &version,
        ))
    }
}

struct PutPlan {
    item: NewItem,
    expected: Option<String>,
    now: Timestamp,
    pending: Option<(Fields, PutOutcome)>,
}

impl Plan for PutPlan {
    type Output = (Item, PutOutcome);
    fn id(&self) -> &str {
        &self.item.id
    }
    fn check(&mut self) -> StoreResult<()> {
        // Value errors show before any round trip.
        let now = self.now.to_string();
        document::item_fields(&self.item, &now, &now).map(drop)
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Self::Output> {
        if let (Some((fields, outcome)), Some(doc)) = (&self.pending, &doc)
            && value::same_fields(&doc.fields, fields)
        {
            return Decision::Finish(Ok((doc.item(&self.item.id), *outcome)));
        }
        let live = doc.as_ref().filter(|d| !d.is_expired(self.now));
        if let Some(expected) = &self.expected {
            match live {
                None => return Decision::Finish(Err(StoreError::VersionMismatch(None))),
                Some(d) if !document::same_version(&d.version, expected) => {
                    return Decision::Finish(Err(StoreError::VersionMismatch(Some(
                        d.version.clone(),
                    ))));
                }
                Some(_) => {}
            }
        }
        let now = self.now.to_string();
        let (created_at, outcome, precondition) = match (live, &doc) {
            (Some(d), _) => (
                d.item(&self.item.id).created_at,
                PutOutcome::Replaced,
                Precondition::UpdateTime(d.version.clone()),
            ),
            (None, Some(expired)) => (
                now.clone(),
                PutOutcome::Created,
                Precondition::UpdateTime(expired.version.clone()),
            ),
            (None, None) => (
                now.clone(),
                PutOutcome::Created,
                Precondition::Exists(false),
            ),
        };
        let fields = match document::item_fields(&self.item, &created_at, &now) {
            Ok(fields) => fields,
            Err(e) => return Decision::Finish(Err(e)),
        };
        let write = update_write(
            fs.document_name(&self.item.id),
            &fields,
            None,
            Vec::new(),
            Some(&precondition),
        );
        self.pending = Some((fields, outcome));
        Decision::Write {
            writes: vec![write],
            idempotent: true,
        }
    }
    fn forget(&mut self) {
        self.pending = None;
    }
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Self::Output> {
        let version = first_version(results)?;
        let (fields, outcome) = self.pending.as_ref().ok_or_else(|| unexpected("write"))?;
        Ok((
            document::item_from_fields(&self.item.id, fields, None, &version),
            *outcome,
        ))
    }
}

struct UpdatePlan {
    id: String,
    patch: ItemPatch,
    expected: Option<String>,
    now: Timestamp,
    changes: Vec<(String, Option<Json>)>,
    /// The fields and `createTime` the last commit would leave.
    pending: Option<(Fields, Option<String>)>,
}

impl Plan for UpdatePlan {
    type Output = Item;
    fn id(&self) -> &str {
        &self.id
    }
    fn check(&mut self) -> StoreResult<()> {
        self.changes = document::patch_changes(&self.patch, &self.now.to_string())?;
        Ok(())
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Item> {
        if let (Some((fields, _)), Some(doc)) = (&self.pending, &doc)
            && value::same_fields(&doc.fields, fields)
        {
            return Decision::Finish(Ok(doc.item(&self.id)));
        }
        let doc = match live_at_version(doc, self.expected.as_deref(), self.now) {
            Ok(doc) => doc,
            Err(e) => return Decision::Finish(Err(e)),
        };
        let set: Fields = self
            .changes
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
            .collect();
        let mask = self
            .changes
            .iter()
            .map(|(name, _)| field_path(name))
            .collect();
        let write = update_write(
            fs.document_name(&self.id),
            &set,
            Some(mask),
            Vec::new(),
            Some(&Precondition::UpdateTime(doc.version.clone())),
        );
        self.pending = Some((
            document::apply_changes(&doc.fields, &self.changes),
            doc.create_time,
        ));
        Decision::Write {
            writes: vec![write],
            idempotent: true,
        }
    }
    fn forget(&mut self) {
        self.pending = None;
    }
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Item> {
        let version = first_version(results)?;
        let (fields, create_time) = self.pending.as_ref().ok_or_else(|| unexpected("write"))?;
        Ok(document::item_from_fields(
            &self.id,
            fields,
            create_time.as_deref(),
            &version,
        ))
    }
}

struct DeletePlan {
    id: String,
    expected: Option<String>,
    now: Timestamp,
    sent: bool,
}

impl Plan for DeletePlan {
    type Output = ();
    fn id(&self) -> &str {
        &self.id
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<()> {
        if self.sent && doc.is_none() {
            // Our delete (or a concurrent one) took effect: gone either way.
            return Decision::Finish(Ok(()));
        }
        let doc = match live_at_version(doc, self.expected.as_deref(), self.now) {
            Ok(doc) => doc,
            Err(e) => return Decision::Finish(Err(e)),
        };
        self.sent = true;
        Decision::Write {
            writes: vec![delete_write(
                fs.document_name(&self.id),
                Some(&Precondition::UpdateTime(doc.version)),
            )],
            idempotent: true,
        }
    }
    fn forget(&mut self) {
        self.sent = false;
    }
    fn finish(&mut self, _results: &[WriteResult]) -> StoreResult<()> {
        Ok(())
    }
}

struct IncrementPlan {
    id: String,
    attribute: String,
    delta: i64,
    now: Timestamp,
    read: Option<Doc>,
}

impl Plan for IncrementPlan {
    type Output = Item;
    fn id(&self) -> &str {
        &self.id
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Item> {
        let Some(doc) = doc.filter(|d| !d.is_expired(self.now)) else {
            return Decision::Finish(Err(StoreError::NotFound));
        };
        if let Some(field) = doc.fields.get(&self.attribute)
            && !document::is_numeric(field)
        {
            let kind = counter::kind(&value::decode(field));
            return Decision::Finish(Err(counter::not_a_number(&self.attribute, Some(kind))));
        }
        let mut fields = Fields::new();
        fields.insert(
            UPDATED_AT.into(),
            json!({ "timestampValue": self.now.to_string() }),
        );
        let write = update_write(
            fs.document_name(&self.id),
            &fields,
            Some(vec![UPDATED_AT.into()]),
            vec![json!({
                "fieldPath": field_path(&self.attribute),
                "increment": { "integerValue": self.delta.to_string() },
            })],
            Some(&Precondition::Exists(true)),
        );
        self.read = Some(doc);
        Decision::Write {
            writes: vec![write],
            idempotent: false,
        }
    }
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Item> {
        let version = first_version(results)?;
        let new_value = results
            .first()
            .and_then(|r| r.transforms.first())
            .ok_or_else(|| unexpected("transform result"))?;
        let doc = self.read.as_ref().ok_or_else(|| unexpected("write"))?;
        let mut fields = doc.fields.clone();
        fields.insert(self.attribute.clone(), new_value.clone());
        fields.insert(
            UPDATED_AT.into(),
            json!({ "timestampValue": self.now.to_string() }),
        );
        Ok(document::item_from_fields(
            &self.id,
            &fields,
            doc.create_time.as_deref(),
            &version,
        ))
    }
}

/// The writes of a batch and what they return, shared by [`Batch`] and
/// the keyed batch (`apply-once`), so both write and answer alike.
pub(crate) struct BatchPlan {
    writes: Vec<BatchWrite>,
    now: Timestamp,
    /// The fields of each put, in request order.
    puts: Vec<(String, Fields)>,
}

impl BatchPlan {
    fn new(writes: Vec<BatchWrite>, now: Timestamp) -> Self {
        Self {
            writes,
            now,
            puts: Vec::new(),
        }
    }

    /// The unconditional writes of the commit, in request order.
    pub(crate) fn request(&mut self, fs: &Firestore) -> StoreResult<Vec<Json>> {
        let now = self.now.to_string();
        self.puts.clear();
        let mut writes = Vec::with_capacity(self.writes.len());
        for write in &self.writes {
            match write {
                BatchWrite::Put(put) => {
                    // Given times are kept (imports keep their history), in
                    // the canonical spelling the items show.
                    let kept = |given: &Option<String>| match given {
                        Some(text) => Timestamp::parse(text)
                            .map(|t| t.to_string())
                            .map_err(|e| StoreError::invalid(e.to_string())),
                        None => Ok(now.clone()),
                    };
                    let (created_at, updated_at) = (kept(&put.created_at)?, kept(&put.updated_at)?);
                    let fields = document::item_fields(&put.item, &created_at, &updated_at)?;
                    writes.push(update_write(
                        fs.document_name(&put.item.id),
                        &fields,
                        None,
                        Vec::new(),
                        None,
                    ));
                    self.puts.push((put.item.id.clone(), fields));
                }
                BatchWrite::Delete(id) => {
                    writes.push(delete_write(fs.document_name(id), None));
                }
            }
        }
        Ok(writes)
    }

    /// What the batch returns, from the `writeResults` of its writes.
    pub(crate) fn result(&self, results: &[WriteResult]) -> StoreResult<BatchResult> {
        if results.len() != self.writes.len() {
            return Err(unexpected("commit response"));
        }
        let mut out = BatchResult::default();
        let mut puts = self.puts.iter();
        for (write, result) in self.writes.iter().zip(results) {
            match write {
                BatchWrite::Put(_) => {
                    let (Some((id, fields)), Some(version)) = (puts.next(), &result.version) else {
                        return Err(unexpected("commit response"));
                    };
                    out.put
                        .push(document::item_from_fields(id, fields, None, version));
                }
                BatchWrite::Delete(id) => out.deleted.push(id.clone()),
            }
        }
        Ok(out)
    }
}

/// A batch: one `:commit` of unconditional writes. Firestore applies a
/// commit atomically, which is more than the interface promises. Writing
/// the same puts and deletes again leaves the same data, so a transport
/// may repeat it.
struct Batch {
    fs: Firestore,
    plan: BatchPlan,
    done: bool,
}

impl Operation for Batch {
    type Output = BatchResult;

    fn start(&mut self) -> Step<BatchResult> {
        match self.plan.request(&self.fs) {
            Ok(writes) => commit(&self.fs, writes, true),
            Err(e) => {
                self.done = true;
                Step::Done(Err(e))
            }
        }
    }

    fn resume(&mut self, response: &Response) -> Step<BatchResult> {
        let (status, body) = (response.status().as_u16(), response.body().as_slice());
        if self.done {
            return Step::Done(Err(unexpected("response")));
        }
        self.done = true;
        Step::Done(match commit_outcome(status, body) {
            CommitOutcome::Applied(results) => self.plan.result(&results),
            CommitOutcome::Conflict => Err(unexpected("commit response")),
            CommitOutcome::Failed(e) => Err(e),
        })
    }
}

/// `increment` under an Idempotency-Key: the recorded result must be
/// exact before the commit, which a blind transform cannot give. So it
/// reads, adds with the counter rules of `item_model::counter` (a whole
/// 64-bit number, no overflow, absent counts as 0) and writes the sum as
/// an update of that one attribute under the `updateTime` it read:
/// concurrent increments conflict and read again instead of adding
/// blindly.
struct CountPlan {
    attribute: String,
    delta: i64,
    update: UpdatePlan,
}

impl Plan for CountPlan {
    type Output = Item;
    fn id(&self) -> &str {
        &self.update.id
    }
    fn decide(&mut self, fs: &Firestore, doc: Option<Doc>) -> Decision<Item> {
        let Some(live) = doc.as_ref().filter(|d| !d.is_expired(self.update.now)) else {
            return Decision::Finish(Err(StoreError::NotFound));
        };
        let current = live.fields.get(&self.attribute).map(value::decode);
        let sum = counter::start_value(&self.attribute, current.as_ref())
            .and_then(|start| counter::add(&self.attribute, start, self.delta));
        let sum = match sum {
            Ok(sum) => sum,
            Err(e) => return Decision::Finish(Err(e)),
        };
        self.update.patch = ItemPatch {
            set: vec![Attribute::new(
                self.attribute.clone(),
                Value::Number(sum.to_string()),
            )],
            ..ItemPatch::default()
        };
        if let Err(e) = self.update.check() {
            return Decision::Finish(Err(e));
        }
        self.update.decide(fs, doc)
    }
    fn forget(&mut self) {
        self.update.forget();
    }
    fn finish(&mut self, results: &[WriteResult]) -> StoreResult<Item> {
        self.update.finish(results)
    }
}

/// A single-item plan under an Idempotency-Key: its output as `Written`.
struct Single<P: Plan> {
    plan: P,
    written: fn(P::Output) -> Written,
}

impl<P: Plan + Send> Keyed for Single<P> {
    fn id(&self) -> Option<&str> {
        Some(self.plan.id())
    }
    fn check(&mut self, fs: &Firestore) -> StoreResult<()> {
        fs.check_id(self.plan.id())?;
        self.plan.check()
    }
    fn decide(&mut self, fs: &Firestore, item: Option<Doc>) -> Decision<Written> {
        self.plan.forget();
        self.plan.decide(fs, item).map(self.written)
    }
    fn written(&mut self, results: &[WriteResult]) -> StoreResult<Written> {
        self.plan.finish(results).map(self.written)
    }
}

impl Keyed for BatchPlan {
    fn id(&self) -> Option<&str> {
        None
    }
    fn check(&mut self, fs: &Firestore) -> StoreResult<()> {
        self.request(fs).map(drop)
    }
    fn decide(&mut self, fs: &Firestore, _item: Option<Doc>) -> Decision<Written> {
        match self.request(fs) {
            Ok(writes) => Decision::Write {
                writes,
                idempotent: true,
            },
            Err(e) => Decision::Finish(Err(e)),
        }
    }
    fn written(&mut self, results: &[WriteResult]) -> StoreResult<Written> {
        self.result(results).map(Written::Batch)
    }
}

/// The plan of a write under an Idempotency-Key: the same plan as its own
/// function's (so a keyed write checks, writes and answers exactly as an
/// unkeyed one), except increment (see [`CountPlan`]).
pub(crate) fn keyed(write: Write, now: Timestamp) -> Box<dyn Keyed> {
    match write {
        Write::Create(item) => Box::new(Single {
            plan: CreatePlan {
                item,
                now,
                fields: Fields::new(),
                recognise: false,
            },
            written: Written::Item,
        }),
        Write::Put {
            item,
            expected_version,
        } => Box::new(Single {
            plan: PutPlan {
                item,
                expected: expected_version,
                now,
                pending: None,
            },
            written: |(item, outcome)| Written::Put(item, outcome),
        }),
        Write::Update {
            id,
            patch,
            expected_version,
        } => Box::new(Single {
            plan: update_plan(id, patch, expected_version, now),
            written: Written::Item,
        }),
        Write::Delete {
            id,
            expected_version,
        } => Box::new(Single {
            plan: DeletePlan {
                id,
                expected: expected_version,
                now,
                sent: false,
            },
            written: |()| Written::Deleted,
        }),
        Write::Increment {
            id,
            attribute,
            delta,
        } => Box::new(Single {
            plan: CountPlan {
                attribute,
                delta,
                update: update_plan(id, ItemPatch::default(), None, now),
            },
            written: Written::Item,
        }),
        Write::Batch(writes) => Box::new(BatchPlan::new(writes, now)),
    }
}

fn update_plan(
    id: String,
    patch: ItemPatch,
    expected: Option<String>,
    now: Timestamp,
) -> UpdatePlan {
    UpdatePlan {
        id,
        patch,
        expected,
        now,
        changes: Vec::new(),
        pending: None,
    }
}

/// The operations, each for the time `now` (used for `createdAt`,
/// `updatedAt` and to hide expired items).
impl Firestore {
    /// Reads an item; an expired one is `NotFound`.
    pub fn get(&self, id: &str, now: Timestamp) -> impl Operation<Output = Item> + Send + use<> {
        ReadWrite::new(self, GetPlan { id: id.into(), now })
    }

    /// Creates an item; an expired item under the id is replaced.
    pub fn create(
        &self,
        item: NewItem,
        now: Timestamp,
    ) -> impl Operation<Output = Item> + Send + use<> {
        ReadWrite::new(
            self,
            CreatePlan {
                item,
                now,
                fields: Fields::new(),
                recognise: true,
            },
        )
    }

    /// Creates or replaces an item (keeping `createdAt`), checking
    /// `expected_version` in the commit's precondition.
    pub fn put(
        &self,
        item: NewItem,
        expected_version: Option<String>,
        now: Timestamp,
    ) -> impl Operation<Output = (Item, PutOutcome)> + Send + use<> {
        ReadWrite::new(
            self,
            PutPlan {
                item,
                expected: expected_version,
                now,
                pending: None,
            },
        )
    }

    /// Applies a patch to an existing item, read then committed under a
    /// precondition (read again after a lost race).
    pub fn update(
        &self,
        id: &str,
        patch: ItemPatch,
        expected_version: Option<String>,
        now: Timestamp,
    ) -> impl Operation<Output = Item> + Send + use<> {
        ReadWrite::new(self, update_plan(id.into(), patch, expected_version, now))
    }

    /// Deletes an existing, unexpired item.
    pub fn delete(
        &self,
        id: &str,
        expected_version: Option<String>,
        now: Timestamp,
    ) -> impl Operation<Output = ()> + Send + use<> {
        ReadWrite::new(
            self,
            DeletePlan {
                id: id.into(),
                expected: expected_version,
                now,
                sent: false,
            },
        )
    }

    /// Adds `delta` with a field transform, so concurrent increments never
    /// conflict; not idempotent (see the module docs).
    pub fn increment(
        &self,
        id: &str,
        attribute: &str,
        delta: i64,
        now: Timestamp,
    ) -> impl Operation<Output = Item> + Send + use<> {
        ReadWrite::new(
            self,
            IncrementPlan {
                id: id.into(),
                attribute: attribute.into(),
                delta,
                now,
                read: None,
            },
        )
    }

    /// One atomic `:commit` of unconditional writes; safe to repeat.
    pub fn batch(
        &self,
        writes: Vec<BatchWrite>,
        now: Timestamp,
    ) -> impl Operation<Output = BatchResult> + Send + use<> {
        Batch {
            fs: self.clone(),
            plan: BatchPlan::new(writes, now),
            done: false,
        }
    }
}

/// The state machines fed with canned responses, for the paths a real
/// server cannot be made to take on demand (a lost answer, endless
/// contention). The emulator tests of store-firestore cover the rest.
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

    fn sent<T: std::fmt::Debug>(step: Step<T>) -> Outgoing {
        match step {
            Step::Send(out) => out,
            Step::Done(r) => panic!("expected a request, got {r:?}"),
        }
    }

    fn reply(status: u16, body: &[u8]) -> Response {
        sansio::response(status, body.to_vec())
    }

    fn body(out: &Outgoing) -> Json {
        serde_json::from_slice(out.request.body()).unwrap()
    }

    fn error(status: &str) -> Vec<u8> {
        json!({"error": {"code": 400, "status": status}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn create_recognises_its_own_lost_write() {
        let fs = fs();
        let mut op = fs.create(
            NewItem {
                id: "a".into(),
                ..Default::default()
            },
            now(),
        );
        let commit = sent(op.start());
        assert!(commit.idempotent);
        assert_eq!(commit.request.method(), Method::POST);
        assert!(
            commit
                .request
                .uri()
                .to_string()
                .ends_with("/documents:commit")
        );
        assert_eq!(commit.request.headers()["content-type"], "application/json");
        let write = &body(&commit)["writes"][0];
        assert_eq!(write["currentDocument"], json!({"exists": false}));
        // The transport repeated the commit after a lost answer; the repeat
        // finds the document the first attempt wrote.
        let read = sent(op.resume(&reply(409, &error("ALREADY_EXISTS"))));
        assert_eq!(read.request.method(), Method::GET);
        let doc = json!({
            "name": fs.document_name("a"),
            "fields": write["update"]["fields"],
            "createTime": "2026-02-08T10:00:01.000001Z",
            "updateTime": "2026-02-08T10:00:01.000001Z",
        });
        match op.resume(&reply(200, doc.to_string().as_bytes())) {
            Step::Done(Ok(item)) => assert_eq!(item.version, "2026-02-08T10:00:01.000001Z"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_refuses_a_live_document() {
        let fs = fs();
        let mut op = fs.create(
            NewItem {
                id: "a".into(),
                ..Default::default()
            },
            now(),
        );
        sent(op.start());
        sent(op.resume(&reply(409, &error("ALREADY_EXISTS"))));
        let other = json!({
            "name": fs.document_name("a"),
            "fields": {"name": {"stringValue": "someone else's"}},
            "updateTime": "2026-02-08T09:00:00Z",
        });
        assert!(matches!(
            op.resume(&reply(200, other.to_string().as_bytes())),
            Step::Done(Err(StoreError::AlreadyExists))
        ));
    }

    #[test]
    fn endless_contention_ends_in_throttled() {
        let fs = fs();
        let mut op = fs.update("a", ItemPatch::default(), None, now());
        let doc = json!({
            "name": fs.document_name("a"),
            "fields": {},
            "updateTime": "2026-02-08T09:00:00Z",
        })
        .to_string();
        let mut step = op.start();
        for _ in 0..=MAX_CONFLICTS {
            let read = sent(step);
            assert_eq!(read.request.method(), Method::GET);
            let commit = sent(op.resume(&reply(200, doc.as_bytes())));
            let write = &body(&commit)["writes"][0];
            assert_eq!(
                write["currentDocument"],
                json!({"updateTime": "2026-02-08T09:00:00.000000Z"})
            );
            assert_eq!(write["updateMask"], json!({"fieldPaths": ["updatedAt"]}));
            step = op.resume(&reply(400, &error("FAILED_PRECONDITION")));
        }
        assert!(matches!(step, Step::Done(Err(StoreError::Throttled(_)))));
    }

    #[test]
    fn a_repeated_delete_that_finds_nothing_succeeded() {
        let fs = fs();
        let mut op = fs.delete("a", None, now());
        sent(op.start());
        let doc = json!({"name": fs.document_name("a"), "updateTime": "2026-02-08T09:00:00Z"});
        let commit = sent(op.resume(&reply(200, doc.to_string().as_bytes())));
        assert!(commit.idempotent);
        sent(op.resume(&reply(400, &error("FAILED_PRECONDITION"))));
        assert!(matches!(
            op.resume(&reply(404, &error("NOT_FOUND"))),
            Step::Done(Ok(()))
        ));
    }

    #[test]
    fn increments_are_not_idempotent_and_use_a_transform() {
        let fs = fs();
        let mut op = fs.increment("a", "like count", 3, now());
        sent(op.start());
        let doc = json!({
            "name": fs.document_name("a"),
            "fields": {"like count": {"integerValue": "4"}},
            "updateTime": "2026-02-08T09:00:00Z",
        });
        let commit = sent(op.resume(&reply(200, doc.to_string().as_bytes())));
        assert!(!commit.idempotent);
        let write = &body(&commit)["writes"][0];
        assert_eq!(
            write["updateTransforms"],
            json!([{"fieldPath": "`like count`", "increment": {"integerValue": "3"}}])
        );
        assert_eq!(write["currentDocument"], json!({"exists": true}));
        let answer = br#"{"writeResults":[{"updateTime":"2026-02-08T10:00:01Z","transformResults":[{"integerValue":"7"}]}]}"#;
        match op.resume(&reply(200, answer)) {
            Step::Done(Ok(item)) => {
                assert_eq!(
                    item.attribute("like count"),
                    Some(&item_model::Value::Number("7".into()))
                );
                assert_eq!(item.version, "2026-02-08T10:00:01.000000Z");
                assert_eq!(item.updated_at, "2026-02-08T10:00:00.000000Z");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_is_one_commit() {
        let fs = fs();
        let writes = vec![
            BatchWrite::Put(item_model::BatchPut {
                item: NewItem {
                    id: "a".into(),
                    ..Default::default()
                },
                created_at: Some("2020-01-01T00:00:00Z".into()),
                updated_at: None,
            }),
            BatchWrite::Delete("b".into()),
        ];
        let mut op = fs.batch(writes, now());
        let commit = sent(op.start());
        assert!(commit.idempotent);
        let body = body(&commit);
        assert_eq!(body["writes"][1], json!({"delete": fs.document_name("b")}));
        assert!(body["writes"][0].get("currentDocument").is_none());
        let answer = br#"{"writeResults":[{"updateTime":"2026-02-08T10:00:01Z"},{}]}"#;
        match op.resume(&reply(200, answer)) {
            Step::Done(Ok(result)) => {
                assert_eq!(result.put[0].created_at, "2020-01-01T00:00:00.000000Z");
                assert_eq!(result.put[0].updated_at, "2026-02-08T10:00:00.000000Z");
                assert_eq!(result.deleted, ["b"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_put_keeps_a_given_updated_at() {
        let fs = fs();
        let writes = vec![BatchWrite::Put(item_model::BatchPut {
            item: NewItem {
                id: "a".into(),
                ..Default::default()
            },
            created_at: Some("2020-01-01T00:00:00Z".into()),
            updated_at: Some("2021-06-01T12:30:00.5+02:00".into()),
        })];
        let mut op = fs.batch(writes, now());
        let commit = sent(op.start());
        let fields = &body(&commit)["writes"][0]["update"]["fields"];
        assert_eq!(
            fields["updatedAt"],
            json!({"timestampValue": "2021-06-01T10:30:00.500000Z"})
        );
        let answer = br#"{"writeResults":[{"updateTime":"2026-02-08T10:00:01Z"}]}"#;
        match op.resume(&reply(200, answer)) {
            Step::Done(Ok(result)) => {
                let item = &result.put[0];
                assert_eq!(item.created_at, "2020-01-01T00:00:00.000000Z");
                assert_eq!(item.updated_at, "2021-06-01T10:30:00.500000Z");
                // The version is still the store's own.
                assert_eq!(item.version, "2026-02-08T10:00:01.000000Z");
            }
            other => panic!("{other:?}"),
        }
    }
}
