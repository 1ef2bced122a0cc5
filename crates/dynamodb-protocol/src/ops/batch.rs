//! Batches: up to 100 unconditional writes in BatchWriteItem calls of
//! [`BATCH_CHUNK`], resending what DynamoDB leaves unprocessed.

use std::collections::{BTreeMap, VecDeque};

use item_model::{BatchResult, BatchWrite, StoreError, Timestamp};
use sansio::{Operation, Pause, Response, Step};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::{is_success, parse, send};
use crate::attr::{self, AttributeMap, item_from_map, item_to_map};
use crate::error::{ServiceError, THROTTLE_RETRY_MS};
use crate::service::{DynamoDb, Target};

/// Most writes in one BatchWriteItem call (a DynamoDB limit).
pub const BATCH_CHUNK: usize = 25;
/// Consecutive BatchWriteItem answers with unprocessed items before we
/// give up and report throttling.
const MAX_BATCH_RESENDS: u32 = 10;

impl DynamoDb {
    /// 25, resending what DynamoDB leaves unprocessed.
    ///
    /// A batch put cannot read the version it replaces (BatchWriteItem has
    /// no conditions or update expressions), so it writes the write time
    /// in microseconds as the version: a different value from the one it
    /// replaces, and larger than any counter conditional writes reach.
    pub fn batch(&self, writes: Vec<BatchWrite>, now: Timestamp) -> BatchWriteItems {
        let mut exchange = BatchWriteItems {
            target: self.target(),
            result: BatchResult::default(),
            queue: VecDeque::new(),
            resends: 0,
            in_flight: 0,
            error: None,
        };
        match prepare(writes, now) {
            Ok((result, actions)) => {
                exchange.result = result;
                exchange.queue = actions
                    .into_iter()
                    .map(|action| match action {
                        BatchAction::Put(map) => json!({"PutRequest": {"Item": map}}),
                        BatchAction::Delete(id) => {
                            json!({"DeleteRequest": {"Key": attr::key(&id)}})
                        }
                    })
                    .collect();
            }
            Err(e) => exchange.error = Some(e),
        }
        exchange
    }
}

/// One write of a batch as DynamoDB takes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum BatchAction {
    /// Put this item, unconditionally.
    Put(AttributeMap),
    /// Delete the item with this id, if any.
    Delete(String),
}

/// What a batch writes and what it returns, in request order: the rule of
/// [`DynamoDb::batch`] (a given `createdAt` and `updatedAt`, each else now;
/// the write time in microseconds as the version), shared with a keyed batch (`ops::once`),
/// which writes the same actions in one transaction.
pub(super) fn prepare(
    writes: Vec<BatchWrite>,
    now: Timestamp,
) -> Result<(BatchResult, Vec<BatchAction>), StoreError> {
    let time = now.to_string();
    let version = now.as_micros().to_string();
    let mut result = BatchResult::default();
    let mut actions = Vec::with_capacity(writes.len());
    for write in writes {
        match write {
            BatchWrite::Put(put) => {
                // Given times are kept (an import keeps its history), in
                // our fixed-width form; the version is always new.
                let kept = |given: Option<&str>| {
                    given
                        .and_then(|t| Timestamp::parse(t).ok())
                        .map_or_else(|| time.clone(), |t| t.to_string())
                };
                let created = kept(put.created_at.as_deref());
                let updated = kept(put.updated_at.as_deref());
                let item = put.item.into_item(created, updated, version.clone());
                let map = item_to_map(&item)?;
                result.put.push(item_from_map(&map)?);
                actions.push(BatchAction::Put(map));
            }
            BatchWrite::Delete(id) => {
                result.deleted.push(id.clone());
                actions.push(BatchAction::Delete(id));
            }
        }
    }
    Ok((result, actions))
}

#[derive(Deserialize)]
struct BatchOut {
    #[serde(rename = "UnprocessedItems", default)]
    unprocessed: BTreeMap<String, Vec<Json>>,
}

/// [`DynamoDb::batch`]. Each call carries at most [`BATCH_CHUNK`] writes;
/// what DynamoDB leaves unprocessed is sent again first, in a call marked
/// [`Pause::Backoff`] so that the transport backs off before sending it.
#[derive(Debug)]
pub struct BatchWriteItems {
    target: Target,
    result: BatchResult,
    /// Write requests (`PutRequest`/`DeleteRequest`) not yet accepted.
    queue: VecDeque<Json>,
    /// Answers in a row that left work unprocessed.
    resends: u32,
    /// How many write requests the call in flight carries: an answer may
    /// leave at most these unprocessed, so the queue never grows and the
    /// number of calls stays bounded whatever DynamoDB answers.
    in_flight: usize,
    error: Option<StoreError>,
}

impl BatchWriteItems {
    /// Write requests not yet accepted by DynamoDB.
    pub fn unprocessed(&self) -> usize {
        self.queue.len()
    }

    fn next_call(&mut self, pause: Pause) -> Step<BatchResult> {
        let take = self.queue.len().min(BATCH_CHUNK);
        self.in_flight = take;
        let chunk: Vec<Json> = self.queue.drain(..take).collect();
        let mut items = Map::new();
        items.insert(self.target.table().to_string(), Json::Array(chunk));
        let body = json!({"RequestItems": items});
        // Idempotent: unconditional puts of a fixed item and deletes.
        send(
            self.target
                .call("BatchWriteItem", body, true)
                .map(|call| call.paused(pause)),
        )
    }
}

impl Operation for BatchWriteItems {
    type Output = BatchResult;

    fn start(&mut self) -> Step<BatchResult> {
        if let Some(e) = &self.error {
            return Step::Done(Err(e.clone()));
        }
        self.next_call(Pause::None)
    }

    fn resume(&mut self, response: &Response) -> Step<BatchResult> {
        if !is_success(response) {
            let error = ServiceError::parse(response);
            return Step::Done(Err(
                error.to_store_error("BatchWriteItem", self.target.table())
            ));
        }
        let mut out = match parse::<BatchOut>(response, "BatchWriteItem") {
            Ok(out) => out,
            Err(e) => return Step::Done(Err(e)),
        };
        let unprocessed = out
            .unprocessed
            .remove(self.target.table())
            .unwrap_or_default();
        if unprocessed.len() > self.in_flight {
            return Step::Done(Err(StoreError::Backend(
                "DynamoDB answered BatchWriteItem with more unprocessed requests than were sent"
                    .into(),
            )));
        }
        if unprocessed.is_empty() {
            self.resends = 0;
            if self.queue.is_empty() {
                return Step::Done(Ok(std::mem::take(&mut self.result)));
            }
            return self.next_call(Pause::None);
        }
        self.resends += 1;
        if self.resends > MAX_BATCH_RESENDS {
            return Step::Done(Err(StoreError::Throttled(THROTTLE_RETRY_MS)));
        }
        for request in unprocessed.into_iter().rev() {
            self.queue.push_front(request);
        }
        self.next_call(Pause::Backoff(self.resends))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;

    fn requests(step: &Step<BatchResult>) -> Vec<Json> {
        body(step)["RequestItems"]["Items"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn an_answer_cannot_add_work() {
        let writes = (0..3)
            .map(|i| BatchWrite::Delete(format!("d{i}")))
            .collect::<Vec<_>>();
        let mut batch = db().batch(writes, now());
        let step = batch.start();
        let mut sent = requests(&step);
        sent.push(sent[0].clone());
        let answer = json!({"UnprocessedItems": {"Items": sent}});
        assert!(matches!(
            done(batch.resume(&ok(answer))),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn batches_go_in_chunks_of_25_and_resend_unprocessed() {
        let mut batch = db().batch(batch_of(60), now());
        let first = batch.start();
        assert_eq!(requests(&first).len(), 25);
        assert_eq!(
            requests(&first)[0]["PutRequest"]["Item"]["createdAt"],
            json!({"S": "2019-12-31T22:00:00.000000Z"})
        );
        let second = batch.resume(&ok(json!({"UnprocessedItems": {}})));
        let chunk = requests(&second);
        assert_eq!(chunk.len(), 25);
        // Two of them come back unprocessed: they go first, after a backoff.
        let left = json!({"UnprocessedItems": {"Items": [chunk[3].clone(), chunk[4].clone()]}});
        let third = batch.resume(&ok(left));
        let Step::Send(call) = &third else { panic!() };
        assert_eq!(call.pause, Pause::Backoff(1));
        let resent = requests(&third);
        assert_eq!(resent.len(), 12);
        assert_eq!(resent[0], chunk[3]);
        assert_eq!(resent[1], chunk[4]);
        let result = done(batch.resume(&ok(json!({})))).unwrap();
        assert_eq!(result.put.len(), 40);
        assert_eq!(result.deleted.len(), 20);
        assert_eq!(result.put[0].created_at, "2019-12-31T22:00:00.000000Z");
        assert_eq!(result.put[1].version, now().as_micros().to_string());
    }

    #[test]
    fn a_put_keeps_the_times_it_is_given_and_gets_a_new_version() {
        use item_model::{BatchPut, NewItem};
        let put = |created_at: Option<&str>, updated_at: Option<&str>| {
            BatchWrite::Put(BatchPut {
                item: NewItem {
                    id: "a".into(),
                    ..Default::default()
                },
                created_at: created_at.map(String::from),
                updated_at: updated_at.map(String::from),
            })
        };
        let writes = vec![
            put(
                Some("2020-01-01T00:00:00Z"),
                Some("2021-06-01T12:00:00.5+02:00"),
            ),
            put(None, Some("2021-06-01T10:00:00.000001Z")),
            put(None, None),
        ];
        let mut batch = db().batch(writes, now());
        let sent = requests(&batch.start());
        let stored = |i: usize, name: &str| sent[i]["PutRequest"]["Item"][name].clone();
        assert_eq!(
            stored(0, "createdAt"),
            json!({"S": "2020-01-01T00:00:00.000000Z"})
        );
        assert_eq!(
            stored(0, "updatedAt"),
            json!({"S": "2021-06-01T10:00:00.500000Z"})
        );
        assert_eq!(stored(1, "createdAt"), json!({"S": now().to_string()}));
        assert_eq!(
            stored(1, "updatedAt"),
            json!({"S": "2021-06-01T10:00:00.000001Z"})
        );
        assert_eq!(stored(2, "updatedAt"), json!({"S": now().to_string()}));
        let version = json!({"N": now().as_micros().to_string()});
        assert!((0..3).all(|i| stored(i, "version") == version));

        let result = done(batch.resume(&ok(json!({})))).unwrap();
        assert_eq!(result.put[0].created_at, "2020-01-01T00:00:00.000000Z");
        assert_eq!(result.put[0].updated_at, "2021-06-01T10:00:00.500000Z");
        assert_eq!(result.put[1].updated_at, "2021-06-01T10:00:00.000001Z");
    }

    #[test]
    fn batches_give_up_when_nothing_gets_through() {
        let mut batch = db().batch(batch_of(1), now());
        let mut step = batch.start();
        for _ in 0..MAX_BATCH_RESENDS {
            let stuck = json!({"UnprocessedItems": {"Items": requests(&step)}});
            step = batch.resume(&ok(stuck));
        }
        let stuck = json!({"UnprocessedItems": {"Items": requests(&step)}});
        assert_eq!(
            done(batch.resume(&ok(stuck))),
            Err(StoreError::Throttled(THROTTLE_RETRY_MS))
        );
    }
}
