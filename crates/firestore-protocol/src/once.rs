//! `apply-once` (writes applied at most once per Idempotency-Key) on
//! Firestore, sans-IO.
//!
//! The record of a key is a document of its own collection,
//! `{collection}-once` (see [`Firestore::records_collection`]), next to
//! the items: document id = the key (a key of the form `__x__`, which
//! Firestore reserves, gets a leading `.`), fields `fingerprint`
//! (`stringValue`), `expiresAt` (`timestampValue`, like the items', so a
//! TTL policy on the collection group removes records) and `written`
//! (`stringValue`, [`Written::encode`]). Queries read only the items'
//! collection, so records never show in them.
//!
//! A round:
//!
//! 1. One `documents:batchGet` reads the record and the item together (a
//!    batch reads only the record): one request, one consistent snapshot.
//! 2. A live record (`expiresAt` after now) answers:
//!    [`Record::answer`], a replay or `key-reused`. An expired one counts
//!    as absent.
//! 3. Otherwise the write is decided by the same plan as its own
//!    function's (`ops`), so a keyed write checks, writes and answers
//!    exactly as an unkeyed one: one rule in one place. Increment is the
//!    exception: a blind transform cannot be recorded before it is known,
//!    so under a key it reads, adds with `item_model::counter`'s rules and
//!    writes the sum under the `updateTime` it read.
//! 4. One `:commit` holds the item's writes with their usual
//!    preconditions (`updateTime` as read, or `exists: false`; a batch's
//!    writes are unconditional) and the record, with `exists: false`, or
//!    `updateTime` = that of the expired record it replaces. A commit is
//!    atomic: the record exists exactly when the write applied.
//!
//! A failed precondition (someone wrote the item or the record in
//! between) starts a new round after a jittered backoff: a record found
//! then is replayed. After [`MAX_CONFLICTS`] lost races one last read
//! decides: a live record is replayed; a record that changed in the last
//! race is `key-in-use`; otherwise the contention error of the other
//! operations (`throttled`). Nothing was written by a call that ends so.
//!
//! Versions. An item's version is its `updateTime`, which Firestore sets
//! at the commit, after the record's text is written. Every document a
//! commit changes gets the commit time as its `updateTime` (checked
//! against the emulator), and every item write changes the item (its
//! `updatedAt` is this write's time), so the record's own `updateTime` is
//! the version of every item its write wrote. The record therefore keeps
//! the result with empty versions, and every answer, first or replayed,
//! is that text's result with the record's `updateTime` filled in
//! ([`with_version`]): the replay equals the first answer field for field
//! by construction. `updatedAt` is the write time the plan chose (this
//! call's clock, as for every write), kept in the text as it was.
//!
//! Retry safety. The commit is marked idempotent: resent after a lost
//! answer, it either fails its preconditions (the first one applied; the
//! next round finds the record, recognises the text it sent itself and
//! answers as applied now) or applies once. A caller who repeats the call
//! after an ambiguous failure gets the replay.
//!
//! Cost: a keyed write is 2 requests (batchGet + commit), one more
//! round of 2 per lost race; a replay is 1. Limits: the record is one
//! document (at most 1 MiB), so a result whose text exceeds
//! [`MAX_RECORD_BYTES`] is refused before anything is written; a batch's
//! commit holds its writes plus the record (101 of Firestore's 500).

use http::Method;
use item_model::once::Record;
use item_model::{Applied, BatchResult, Item, Once, StoreError, Timestamp, Write, Written};
use sansio::{Operation, Outgoing, Pause, Response, Step};
use serde_json::{Value as Json, json};

use crate::document::{self, Doc, EXPIRES_AT, Fields};
use crate::error::RpcStatus;
use crate::names::Firestore;
use crate::ops::{
    self, CONTENTION_RETRY_MS, CommitOutcome, Decision, MAX_CONFLICTS, Precondition, StoreResult,
    WriteResult, build, commit, commit_outcome, unexpected, update_write,
};

/// The largest record text (fingerprint and result) kept: a Firestore
/// document holds at most 1 MiB (1,048,576 bytes, names and field names
/// included); the rest is margin.
pub const MAX_RECORD_BYTES: usize = 900_000;

const FINGERPRINT: &str = "fingerprint";
const WRITTEN: &str = "written";

/// The write-specific part of `apply-once` (implemented in `ops` over the
/// plans of the store functions).
pub(crate) trait Keyed: Send {
    /// The item to read beside the record; `None` for a batch.
    fn id(&self) -> Option<&str>;
    /// Refuses, before any request, what Firestore cannot store.
    fn check(&mut self, fs: &Firestore) -> StoreResult<()>;
    /// The item's writes for the item as read now (expired or not), or
    /// the answer without writing.
    fn decide(&mut self, fs: &Firestore, item: Option<Doc>) -> Decision<Written>;
    /// What the write returns, given the `writeResults` of its writes.
    fn written(&mut self, results: &[WriteResult]) -> StoreResult<Written>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Writing,
    /// The last read after [`MAX_CONFLICTS`] lost races.
    Settling,
    Done,
}

/// The operation; see the module docs.
struct ApplyOnce {
    fs: Firestore,
    write: Box<dyn Keyed>,
    once: Once,
    now: Timestamp,
    record_name: String,
    item_name: Option<String>,
    state: State,
    conflicts: u32,
    /// The record's version at the previous read (`Some(None)`: absent).
    record_seen: Option<Option<String>>,
    /// Whether the record changed between the last two reads.
    record_moved: bool,
    /// The record text of the last commit sent, and its result.
    sent: Option<(String, Written)>,
    /// The number of item writes in that commit (the record comes last).
    item_writes: usize,
}

impl Firestore {
    /// Applies `write` at most once per `once.key`, atomically with its
    /// record (WIT `apply-once`); see the `once` module docs. Commits are
    /// safe to resend.
    pub fn apply_once(
        &self,
        write: Write,
        once: Once,
        now: Timestamp,
    ) -> impl Operation<Output = Applied> + Send + use<> {
        ApplyOnce {
            fs: self.clone(),
            write: ops::keyed(write, now),
            record_name: self.record_name(&once.key),
            once,
            now,
            item_name: None,
            state: State::Reading,
            conflicts: 0,
            record_seen: None,
            record_moved: false,
            sent: None,
            item_writes: 0,
        }
    }
}

/// The result of a commit whose record has `version` as its `updateTime`:
/// every item written gets it as its version (see the module docs).
fn with_version(written: Written, version: &str) -> Written {
    let fill = |mut item: Item| {
        if item.version.is_empty() {
            item.version = version.to_owned();
        }
        item
    };
    match written {
        Written::Item(item) => Written::Item(fill(item)),
        Written::Put(item, outcome) => Written::Put(fill(item), outcome),
        Written::Deleted => Written::Deleted,
        Written::Batch(result) => Written::Batch(BatchResult {
            put: result.put.into_iter().map(fill).collect(),
            deleted: result.deleted,
        }),
    }
}

/// The record a document holds.
fn record_of(doc: &Doc) -> StoreResult<Record> {
    let damaged = || StoreError::Backend("an idempotency record is damaged".into());
    Ok(Record {
        fingerprint: document::text_field(&doc.fields, FINGERPRINT).ok_or_else(damaged)?,
        expires_at: document::expiry_field(&doc.fields).ok_or_else(damaged)?,
        written: document::text_field(&doc.fields, WRITTEN).ok_or_else(damaged)?,
    })
}

/// The record document's fields.
fn record_fields(once: &Once, written: &str) -> StoreResult<Fields> {
    let mut fields = Fields::new();
    fields.insert(
        FINGERPRINT.into(),
        json!({ "stringValue": once.fingerprint }),
    );
    fields.insert(EXPIRES_AT.into(), document::expiry_value(once.expires_at)?);
    fields.insert(WRITTEN.into(), json!({ "stringValue": written }));
    Ok(fields)
}

/// The documents a `batchGet` answered for `names`, in that order
/// (`None`: missing). Firestore answers in any order, so by name.
fn batch_get(status: u16, body: &[u8], names: &[&str]) -> StoreResult<Vec<Option<Doc>>> {
    let unexpected = || unexpected("batchGet response");
    if !(200..300).contains(&status) {
        return Err(RpcStatus::parse(status, body).into_store_error());
    }
    let json: Json = serde_json::from_slice(body).map_err(|_| unexpected())?;
    let entries = json.as_array().ok_or_else(unexpected)?;
    let mut docs: Vec<Option<Doc>> = vec![None; names.len()];
    let mut answered = vec![false; names.len()];
    for entry in entries {
        if entry.get("error").is_some() {
            return Err(RpcStatus::parse(status, body).into_store_error());
        }
        let (name, doc) = if let Some(found) = entry.get("found") {
            let doc = Doc::parse(found).ok_or_else(unexpected)?;
            (doc.name.clone(), Some(doc))
        } else if let Some(missing) = entry.get("missing").and_then(Json::as_str) {
            (missing.to_owned(), None)
        } else {
            // A message with only a `readTime` or `transaction`.
            continue;
        };
        let index = names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(unexpected)?;
        docs[index] = doc;
        answered[index] = true;
    }
    if answered.contains(&false) {
        return Err(unexpected());
    }
    Ok(docs)
}

impl ApplyOnce {
    fn done(&mut self, result: StoreResult<Applied>) -> Step<Applied> {
        self.state = State::Done;
        Step::Done(result)
    }

    /// Reads the record (and the item) after `pause`.
    fn read(&mut self, pause: Pause) -> Step<Applied> {
        let mut documents = vec![self.record_name.as_str()];
        documents.extend(self.item_name.as_deref());
        let body = json!({ "documents": documents });
        match build(Method::POST, &self.fs.method_url("batchGet"), Some(&body)) {
            Ok(request) => Step::Send(Outgoing::new(request, true).paused(pause)),
            Err(e) => self.done(Err(e)),
        }
    }

    fn on_read(&mut self, record: Option<Doc>, item: Option<Doc>) -> Step<Applied> {
        let version = record.as_ref().map(|d| d.version.clone());
        if let Some(previous) = &self.record_seen {
            self.record_moved = *previous != version;
        }
        self.record_seen = Some(version);
        if let Some(doc) = &record {
            let found = match record_of(doc) {
                Ok(found) => found,
                Err(e) => return self.done(Err(e)),
            };
            if found.is_live(self.now) {
                // Our own commit, resent after its answer was lost: the
                // record holds the very text we sent.
                if let Some((text, written)) = &self.sent
                    && found.fingerprint == self.once.fingerprint
                    && found.written == *text
                {
                    let written = with_version(written.clone(), &doc.version);
                    return self.done(Ok(Applied::now(written)));
                }
                let answer = found.answer(&self.once).map(|applied| Applied {
                    written: with_version(applied.written, &doc.version),
                    replayed: applied.replayed,
                });
                return self.done(answer);
            }
        }
        if self.state == State::Settling {
            return self.done(Err(if self.record_moved {
                StoreError::KeyInUse
            } else {
                StoreError::Throttled(CONTENTION_RETRY_MS)
            }));
        }
        let mut writes = match self.write.decide(&self.fs, item) {
            Decision::Finish(result) => return self.done(result.map(Applied::now)),
            Decision::Write { writes, .. } => writes,
        };
        // The result before the commit, versions left empty (filled from
        // the record's `updateTime`).
        let placeholder = WriteResult {
            version: Some(String::new()),
            transforms: Vec::new(),
        };
        let written = match self.write.written(&vec![placeholder; writes.len()]) {
            Ok(written) => written,
            Err(e) => return self.done(Err(e)),
        };
        let text = written.encode();
        if text.len() + self.once.fingerprint.len() > MAX_RECORD_BYTES {
            return self.done(Err(StoreError::invalid(
                "the result of this write is too large to record for an Idempotency-Key; \
                 send it without the key or make it smaller",
            )));
        }
        let fields = match record_fields(&self.once, &text) {
            Ok(fields) => fields,
            Err(e) => return self.done(Err(e)),
        };
        let precondition = match &record {
            // Expired: replaced only if nobody else replaces it first.
            Some(expired) => Precondition::UpdateTime(expired.version.clone()),
            None => Precondition::Exists(false),
        };
        self.item_writes = writes.len();
        writes.push(update_write(
            self.record_name.clone(),
            &fields,
            None,
            Vec::new(),
            Some(&precondition),
        ));
        self.sent = Some((text, written));
        self.state = State::Writing;
        // A resend fails its preconditions or applies once: idempotent.
        commit(&self.fs, writes, true)
    }

    fn on_commit(&mut self, outcome: CommitOutcome) -> Step<Applied> {
        match outcome {
            CommitOutcome::Applied(results) => {
                let version = (results.len() == self.item_writes + 1)
                    .then(|| results.last().and_then(|r| r.version.clone()))
                    .flatten();
                match (version, self.sent.take()) {
                    (Some(version), Some((_, written))) => {
                        self.done(Ok(Applied::now(with_version(written, &version))))
                    }
                    _ => self.done(Err(unexpected("commit response"))),
                }
            }
            CommitOutcome::Conflict => {
                self.conflicts += 1;
                if self.conflicts > MAX_CONFLICTS {
                    self.state = State::Settling;
                } else {
                    self.state = State::Reading;
                }
                self.read(Pause::Backoff(self.conflicts))
            }
            CommitOutcome::Failed(e) => self.done(Err(e)),
        }
    }
}

impl Operation for ApplyOnce {
    type Output = Applied;

    fn start(&mut self) -> Step<Applied> {
        let checked = self.write.check(&self.fs).and_then(|()| {
            // The record's expiry must be a Firestore timestamp too.
            document::expiry_value(self.once.expires_at).map(drop)
        });
        if let Err(e) = checked {
            return self.done(Err(e));
        }
        self.item_name = self.write.id().map(|id| self.fs.document_name(id));
        self.state = State::Reading;
        self.read(Pause::None)
    }

    fn resume(&mut self, response: &Response) -> Step<Applied> {
        let (status, body) = (response.status().as_u16(), response.body().as_slice());
        match self.state {
            State::Reading | State::Settling => {
                let record_name = self.record_name.clone();
                let mut names = vec![record_name.as_str()];
                let item_name = self.item_name.clone();
                names.extend(item_name.as_deref());
                match batch_get(status, body, &names) {
                    Ok(mut docs) => {
                        let item = if docs.len() > 1 {
                            docs.pop().flatten()
                        } else {
                            None
                        };
                        let record = docs.pop().flatten();
                        self.on_read(record, item)
                    }
                    Err(e) => self.done(Err(e)),
                }
            }
            State::Writing => self.on_commit(commit_outcome(status, body)),
            State::Done => Step::Done(Err(StoreError::Backend(
                "operation resumed after it finished".into(),
            ))),
        }
    }
}

/// The state machine fed with scripted answers shaped like the
/// emulator's; the emulator tests of store-firestore run it for real.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DEFAULT_DATABASE;
    use item_model::{Attribute, BatchPut, BatchWrite, ItemPatch, NewItem, PutOutcome, Value};

    const T1: &str = "2026-02-08T10:00:01.123456Z";

    fn fs() -> Firestore {
        Firestore::new("http://127.0.0.1:1", "demo-p", DEFAULT_DATABASE, "items").unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-02-08T10:00:00Z").unwrap()
    }

    fn once(fingerprint: &str) -> Once {
        Once {
            key: "key-1".into(),
            fingerprint: fingerprint.into(),
            expires_at: now().unix_seconds() + 3600,
        }
    }

    fn sent(step: Step<Applied>) -> Outgoing {
        match step {
            Step::Send(out) => out,
            Step::Done(r) => panic!("expected a request, got {r:?}"),
        }
    }

    fn done(step: Step<Applied>) -> StoreResult<Applied> {
        match step {
            Step::Done(result) => result,
            Step::Send(out) => panic!("expected the end, got {out:?}"),
        }
    }

    fn reply(status: u16, body: &Json) -> Response {
        sansio::response(status, body.to_string().into_bytes())
    }

    fn body(out: &Outgoing) -> Json {
        serde_json::from_slice(out.request.body()).unwrap()
    }

    fn conflict() -> Response {
        reply(
            400,
            &json!({"error": {"code": 400, "status": "FAILED_PRECONDITION"}}),
        )
    }

    fn missing(name: &str) -> Json {
        json!({ "missing": name, "readTime": T1 })
    }

    fn found(name: &str, fields: &Json, update_time: &str) -> Json {
        json!({ "found": {
            "name": name,
            "fields": fields,
            "createTime": update_time,
            "updateTime": update_time,
        }, "readTime": T1 })
    }

    fn new_item(id: &str) -> NewItem {
        NewItem {
            id: id.into(),
            attributes: vec![Attribute::new("name", Value::Text("x".into()))],
            ..NewItem::default()
        }
    }

    fn put(id: &str) -> Write {
        Write::Put {
            item: new_item(id),
            expected_version: None,
        }
    }

    fn committed(versions: usize) -> Json {
        json!({
            "writeResults": vec![json!({ "updateTime": T1 }); versions],
            "commitTime": T1,
        })
    }

    #[test]
    fn a_keyed_put_is_one_read_and_one_commit_and_replays_exactly() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let mut op = fs.apply_once(put("a"), once("f1"), now());
        let read = sent(op.start());
        assert!(read.idempotent);
        assert!(
            read.request
                .uri()
                .to_string()
                .ends_with("/documents:batchGet")
        );
        assert_eq!(body(&read), json!({ "documents": [record, item] }));
        // Answered in another order than asked.
        let commit = sent(op.resume(&reply(200, &json!([missing(&item), missing(&record)]))));
        assert!(commit.idempotent, "a resent commit fails its preconditions");
        assert!(
            commit
                .request
                .uri()
                .to_string()
                .ends_with("/documents:commit")
        );
        let writes = body(&commit)["writes"].clone();
        assert_eq!(writes.as_array().unwrap().len(), 2);
        assert_eq!(writes[0]["update"]["name"], item.as_str());
        assert_eq!(writes[0]["currentDocument"], json!({"exists": false}));
        assert_eq!(writes[1]["update"]["name"], record.as_str());
        assert_eq!(writes[1]["currentDocument"], json!({"exists": false}));
        let fields = writes[1]["update"]["fields"].clone();
        assert_eq!(fields["fingerprint"], json!({"stringValue": "f1"}));
        assert_eq!(
            fields["expiresAt"],
            json!({"timestampValue": "2026-02-08T11:00:00Z"})
        );
        let text = fields["written"]["stringValue"].as_str().unwrap();
        assert!(text.contains(r#""version":"""#), "versions to fill: {text}");
        let first = done(op.resume(&reply(200, &committed(2)))).unwrap();
        assert!(!first.replayed);
        let Written::Put(made, PutOutcome::Created) = &first.written else {
            panic!("{first:?}")
        };
        assert_eq!(made.version, T1);
        assert_eq!(made.updated_at, "2026-02-08T10:00:00.000000Z");

        // The same key and fingerprint later: one read, the same result.
        let mut again = fs.apply_once(put("a"), once("f1"), now());
        sent(again.start());
        let item_doc = found(&item, &writes[0]["update"]["fields"], T1);
        let replay =
            done(again.resume(&reply(200, &json!([found(&record, &fields, T1), item_doc]))))
                .unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.written, first.written);

        // Another fingerprint under the key.
        let mut other = fs.apply_once(put("a"), once("f2"), now());
        sent(other.start());
        assert_eq!(
            done(other.resume(&reply(
                200,
                &json!([found(&record, &fields, T1), missing(&item)])
            ))),
            Err(StoreError::KeyReused)
        );
    }

    #[test]
    fn a_lost_race_reads_again_and_recognises_its_own_record() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let mut op = fs.apply_once(put("a"), once("f1"), now());
        sent(op.start());
        let commit = sent(op.resume(&reply(200, &json!([missing(&record), missing(&item)]))));
        let fields = body(&commit)["writes"][1]["update"]["fields"].clone();
        // The transport resent the commit after a lost answer; the resend
        // failed its preconditions: read again, after a backoff.
        let read = sent(op.resume(&conflict()));
        assert_eq!(read.pause, Pause::Backoff(1));
        let applied = done(op.resume(&reply(
            200,
            &json!([found(&record, &fields, T1), missing(&item)]),
        )))
        .unwrap();
        assert!(!applied.replayed, "this call's own commit applied it");
        let Written::Put(made, _) = applied.written else {
            panic!()
        };
        assert_eq!(made.version, T1);
    }

    #[test]
    fn someone_elses_write_in_between_is_decided_again() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let write = Write::Delete {
            id: "a".into(),
            expected_version: None,
        };
        let mut op = fs.apply_once(write, once("f1"), now());
        sent(op.start());
        let doc = found(&item, &json!({}), "2026-02-08T09:00:00Z");
        let commit = sent(op.resume(&reply(200, &json!([missing(&record), doc]))));
        let writes = body(&commit)["writes"].clone();
        assert_eq!(writes[0]["delete"], item.as_str());
        assert_eq!(
            writes[0]["currentDocument"],
            json!({"updateTime": "2026-02-08T09:00:00.000000Z"})
        );
        // Someone else deleted it meanwhile: not ours, nothing recorded.
        sent(op.resume(&conflict()));
        assert_eq!(
            done(op.resume(&reply(200, &json!([missing(&record), missing(&item)])))),
            Err(StoreError::NotFound)
        );
    }

    #[test]
    fn endless_contention_ends_in_throttled_or_key_in_use() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let doc = found(&item, &json!({}), "2026-02-08T09:00:00Z");
        let mut op = fs.apply_once(
            Write::Update {
                id: "a".into(),
                patch: ItemPatch::default(),
                expected_version: None,
            },
            once("f1"),
            now(),
        );
        let mut step = op.start();
        for _ in 0..=MAX_CONFLICTS {
            sent(step);
            let commit = sent(op.resume(&reply(200, &json!([missing(&record), doc.clone()]))));
            assert_eq!(body(&commit)["writes"].as_array().unwrap().len(), 2);
            step = op.resume(&conflict());
        }
        let last = sent(step);
        assert_eq!(last.pause, Pause::Backoff(MAX_CONFLICTS + 1));
        assert_eq!(
            done(op.resume(&reply(200, &json!([missing(&record), doc.clone()])))),
            Err(StoreError::Throttled(CONTENTION_RETRY_MS))
        );

        // The record is what keeps moving (expired records of the key
        // replaced by others, round after round).
        let mut op = fs.apply_once(put("a"), once("f1"), now());
        let expired = |n: u32| {
            let fields = json!({
                "fingerprint": {"stringValue": "old"},
                "expiresAt": {"timestampValue": "2020-01-01T00:00:00Z"},
                "written": {"stringValue": "{\"deleted\":true}"},
            });
            found(&record, &fields, &format!("2026-02-08T09:00:{n:02}Z"))
        };
        let mut step = op.start();
        for n in 0..=MAX_CONFLICTS {
            sent(step);
            let commit = sent(op.resume(&reply(200, &json!([expired(n), missing(&item)]))));
            assert_eq!(
                body(&commit)["writes"][1]["currentDocument"],
                json!({"updateTime": format!("2026-02-08T09:00:{n:02}.000000Z")})
            );
            step = op.resume(&conflict());
        }
        sent(step);
        assert_eq!(
            done(op.resume(&reply(200, &json!([expired(59), missing(&item)])))),
            Err(StoreError::KeyInUse)
        );
    }

    #[test]
    fn a_result_too_large_to_record_is_refused_before_writing() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let mut big = new_item("a");
        big.attributes = vec![Attribute::new(
            "blob",
            Value::Text("x".repeat(MAX_RECORD_BYTES)),
        )];
        let write = Write::Put {
            item: big,
            expected_version: None,
        };
        let mut op = fs.apply_once(write, once("f1"), now());
        sent(op.start());
        let refused = done(op.resume(&reply(200, &json!([missing(&record), missing(&item)]))));
        assert!(
            matches!(&refused, Err(StoreError::InvalidInput(m)) if m.contains("too large to record")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_keyed_increment_writes_the_exact_sum_under_the_read_version() {
        let fs = fs();
        let (record, item) = (fs.record_name("key-1"), fs.document_name("a"));
        let write = |attribute: &str| Write::Increment {
            id: "a".into(),
            attribute: attribute.into(),
            delta: 3,
        };
        let fields = json!({
            "like count": {"integerValue": "4"},
            "name": {"stringValue": "x"},
            "createdAt": {"timestampValue": "2026-02-08T08:00:00Z"},
        });
        let doc = found(&item, &fields, "2026-02-08T09:00:00Z");
        let mut op = fs.apply_once(write("like count"), once("f1"), now());
        sent(op.start());
        let commit = sent(op.resume(&reply(200, &json!([missing(&record), doc.clone()]))));
        assert!(commit.idempotent);
        let first = &body(&commit)["writes"][0];
        assert!(
            first.get("updateTransforms").is_none(),
            "no blind transform"
        );
        assert_eq!(
            first["update"]["fields"]["like count"],
            json!({"integerValue": "7"})
        );
        assert_eq!(
            first["updateMask"],
            json!({"fieldPaths": ["`like count`", "updatedAt"]})
        );
        assert_eq!(
            first["currentDocument"],
            json!({"updateTime": "2026-02-08T09:00:00.000000Z"})
        );
        let Written::Item(counted) = done(op.resume(&reply(200, &committed(2)))).unwrap().written
        else {
            panic!()
        };
        assert_eq!(
            counted.attribute("like count"),
            Some(&Value::Number("7".into()))
        );
        assert_eq!(counted.created_at, "2026-02-08T08:00:00.000000Z");
        assert_eq!(counted.version, T1);

        let mut op = fs.apply_once(write("name"), once("f1"), now());
        sent(op.start());
        assert!(matches!(
            done(op.resume(&reply(200, &json!([missing(&record), doc])))),
            Err(StoreError::InvalidInput(m)) if m.contains("is a string")
        ));
    }

    #[test]
    fn a_keyed_batch_reads_only_the_record_and_commits_its_writes_with_it() {
        let fs = fs();
        let record = fs.record_name("__key__");
        assert!(record.ends_with("/items-once/.__key__"));
        let writes = vec![
            BatchWrite::Put(BatchPut {
                item: new_item("a"),
                created_at: Some("2020-01-01T00:00:00Z".into()),
                updated_at: None,
            }),
            BatchWrite::Delete("b".into()),
        ];
        let key = Once {
            key: "__key__".into(),
            ..once("f1")
        };
        let mut op = fs.apply_once(Write::Batch(writes), key, now());
        let read = sent(op.start());
        assert_eq!(body(&read), json!({ "documents": [record] }));
        // An expired record of the key is replaced under its updateTime.
        let old = json!({
            "fingerprint": {"stringValue": "old"},
            "expiresAt": {"timestampValue": "2026-02-08T10:00:00Z"},
            "written": {"stringValue": "{\"deleted\":true}"},
        });
        let commit = sent(op.resume(&reply(
            200,
            &json!([found(&record, &old, "2026-02-08T09:00:00Z")]),
        )));
        let writes = body(&commit)["writes"].clone();
        assert_eq!(writes.as_array().unwrap().len(), 3);
        assert!(writes[0].get("currentDocument").is_none());
        assert_eq!(writes[1], json!({"delete": fs.document_name("b")}));
        assert_eq!(
            writes[2]["currentDocument"],
            json!({"updateTime": "2026-02-08T09:00:00.000000Z"})
        );
        let answer = json!({"writeResults": [{"updateTime": T1}, {}, {"updateTime": T1}]});
        let Written::Batch(result) = done(op.resume(&reply(200, &answer))).unwrap().written else {
            panic!()
        };
        assert_eq!(result.put[0].created_at, "2020-01-01T00:00:00.000000Z");
        assert_eq!(result.put[0].version, T1);
        assert_eq!(result.deleted, ["b"]);
    }

    #[test]
    fn a_damaged_record_is_a_backend_error_and_errors_are_mapped() {
        let fs = fs();
        let record = fs.record_name("key-1");
        let mut op = fs.apply_once(put("a"), once("f1"), now());
        sent(op.start());
        let damaged = found(&record, &json!({"fingerprint": {"stringValue": "f1"}}), T1);
        assert!(matches!(
            done(op.resume(&reply(200, &json!([damaged])))),
            Err(StoreError::Backend(_))
        ));
        let mut op = fs.apply_once(put("a"), once("f1"), now());
        sent(op.start());
        assert!(matches!(
            done(op.resume(&reply(
                403,
                &json!({"error": {"code": 403, "status": "PERMISSION_DENIED"}})
            ))),
            Err(StoreError::Unauthorized(_))
        ));
    }
}
