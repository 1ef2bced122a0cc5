//! Retries, against DynamoDB Local behind a fault-injecting proxy.
//!
//! This is the one place with a stand-in: DynamoDB Local never throttles,
//! never fails with a 5xx and never loses a response, so a small proxy in
//! front of it injects exactly those faults; every request it lets through
//! is served by the real DynamoDB Local.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{endpoint, fresh_table, local_config};
use dynamodb_protocol::THROTTLE_RETRY_MS;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use item_store::{
    Attribute, ItemPatch, ItemStore, NewItem, Once, PutOutcome, StoreError, Timestamp, Value,
    Write, Written,
};
use store_dynamodb::{DynamoDbConfig, DynamoDbStore};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answer `ThrottlingException` without forwarding.
    Throttle,
    /// Answer 500 without forwarding.
    ServerError,
    /// Forward (DynamoDB applies it), then answer 500: a lost response.
    ApplyThenFail,
}

#[derive(Default)]
struct State {
    /// Faults for the next calls of an action, in order.
    faults: VecDeque<(&'static str, Fault)>,
    /// Every action the proxy received.
    seen: Vec<String>,
}

struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = format!("{}/", endpoint());
        let client = reqwest::Client::new();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, upstream, client) = (shared.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        handle(request, state.clone(), upstream.clone(), client.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    fn inject(&self, action: &'static str, fault: Fault, times: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..times {
            state.faults.push_back((action, fault));
        }
    }

    /// How many calls of `action` reached the proxy.
    fn count(&self, action: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.seen.iter().filter(|a| a.as_str() == action).count()
    }

    async fn store(&self, table: &str, retries: u32) -> DynamoDbStore {
        let config: DynamoDbConfig = local_config(table)
            .with_endpoint(&format!("http://{}", self.addr))
            .unwrap()
            .with_max_retries(retries);
        let store = DynamoDbStore::new(config).unwrap();
        store.provision().await.unwrap();
        store
    }
}

fn answer(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream: String,
    client: reqwest::Client,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let headers = request.headers().clone();
    let action = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or_default()
        .to_string();
    let body = request.into_body().collect().await?.to_bytes();
    let fault = {
        let mut state = state.lock().unwrap();
        state.seen.push(action.clone());
        match state.faults.front() {
            Some((a, fault)) if *a == action => {
                let fault = *fault;
                state.faults.pop_front();
                Some(fault)
            }
            _ => None,
        }
    };
    match fault {
        Some(Fault::Throttle) => {
            return Ok(answer(
                400,
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
            ));
        }
        Some(Fault::ServerError) => {
            return Ok(answer(
                500,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ));
        }
        _ => {}
    }
    let mut forward = client.post(&upstream);
    for name in [
        "x-amz-target",
        "content-type",
        "x-amz-date",
        "authorization",
    ] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            forward = forward.header(name, value);
        }
    }
    let Ok(response) = forward.body(body).send().await else {
        return Ok(answer(502, ""));
    };
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    if fault == Some(Fault::ApplyThenFail) {
        return Ok(answer(500, ""));
    }
    Ok(answer(status, &String::from_utf8_lossy(&body)))
}

fn likes(item: &item_store::Item) -> Option<&Value> {
    item.attribute("likes")
}

fn counter() -> NewItem {
    NewItem {
        id: "c".into(),
        attributes: vec![Attribute::new("likes", Value::Number("0".into()))],
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_are_resent_after_server_errors() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 4).await;
    store.create(counter()).await.unwrap();
    proxy.inject("GetItem", Fault::ServerError, 2);
    assert!(store.get("c").await.is_ok());
    assert_eq!(proxy.count("GetItem"), 3);
}

#[tokio::test]
async fn increments_are_resent_only_when_throttled() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 4).await;
    store.create(counter()).await.unwrap();

    // Throttled calls were not applied: resending is safe.
    proxy.inject("UpdateItem", Fault::Throttle, 2);
    let item = store.increment("c", "likes", 1).await.unwrap();
    assert_eq!(likes(&item), Some(&Value::Number("1".into())));
    assert_eq!(proxy.count("UpdateItem"), 3);

    // A lost response: applied once, never twice.
    proxy.inject("UpdateItem", Fault::ApplyThenFail, 1);
    let e = store.increment("c", "likes", 1).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert_eq!(proxy.count("UpdateItem"), 4);
    let item = store.get("c").await.unwrap();
    assert_eq!(likes(&item), Some(&Value::Number("2".into())));

    // Deletes are not resent after a server error either.
    proxy.inject("DeleteItem", Fault::ServerError, 1);
    let e = store.delete("c", None).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert_eq!(proxy.count("DeleteItem"), 1);
}

#[tokio::test]
async fn conditional_writes_recognise_their_own_lost_response() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 4).await;

    proxy.inject("PutItem", Fault::ApplyThenFail, 1);
    let created = store.create(counter()).await.unwrap();
    assert_eq!(created.version, "1");
    assert_eq!(proxy.count("PutItem"), 2);
    assert_eq!(store.get("c").await.unwrap(), created);

    proxy.inject("PutItem", Fault::ApplyThenFail, 1);
    let (replaced, outcome) = store.put(counter(), Some("1")).await.unwrap();
    assert_eq!(
        (replaced.version.as_str(), outcome),
        ("2", PutOutcome::Replaced)
    );

    proxy.inject("UpdateItem", Fault::ApplyThenFail, 1);
    let patch = ItemPatch {
        set: vec![Attribute::new("name", Value::Text("n".into()))],
        ..Default::default()
    };
    let updated = store.update("c", patch, Some("2")).await.unwrap();
    assert_eq!(updated.version, "3");
    assert_eq!(store.get("c").await.unwrap(), updated);
}

fn keyed_like(key: &str) -> (Write, Once) {
    let write = Write::Increment {
        id: "c".into(),
        attribute: "likes".into(),
        delta: 1,
    };
    let once = Once {
        key: key.into(),
        fingerprint: "f".into(),
        expires_at: Timestamp::now().unix_seconds() + 3600,
    };
    (write, once)
}

#[tokio::test]
async fn a_keyed_increment_whose_answer_is_lost_is_resent_and_applied_once() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 4).await;
    store.create(counter()).await.unwrap();

    // The transaction is applied, its answer lost; the driver resends it
    // with the same ClientRequestToken, and DynamoDB does not apply it again.
    proxy.inject("TransactWriteItems", Fault::ApplyThenFail, 1);
    let (write, once) = keyed_like("lost");
    let applied = store.apply_once(write.clone(), once.clone()).await.unwrap();
    assert!(!applied.replayed, "this call applied it");
    assert_eq!(proxy.count("TransactGetItems"), 1);
    assert_eq!(proxy.count("TransactWriteItems"), 2);
    let item = store.get("c").await.unwrap();
    assert_eq!(likes(&item), Some(&Value::Number("1".into())));
    assert_eq!(applied.written, Written::Item(item));

    // Throttled transactions were not applied: resent as well.
    proxy.inject("TransactWriteItems", Fault::Throttle, 2);
    let (write, once) = keyed_like("throttled");
    store.apply_once(write, once).await.unwrap();
    let item = store.get("c").await.unwrap();
    assert_eq!(likes(&item), Some(&Value::Number("2".into())));
}

#[tokio::test]
async fn after_an_ambiguous_failure_the_same_key_gets_the_replay() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 2).await;
    store.create(counter()).await.unwrap();

    // Every attempt reaches DynamoDB and every answer is lost: the call
    // fails, its outcome unknown to the caller.
    proxy.inject("TransactWriteItems", Fault::ApplyThenFail, 3);
    let (write, once) = keyed_like("ambiguous");
    let e = store
        .apply_once(write.clone(), once.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert_eq!(proxy.count("TransactWriteItems"), 3);

    // Asking again with the same key replays the one application.
    let applied = store.apply_once(write, once).await.unwrap();
    assert!(applied.replayed);
    let item = store.get("c").await.unwrap();
    assert_eq!(likes(&item), Some(&Value::Number("1".into())));
    assert_eq!(applied.written, Written::Item(item));
    assert_eq!(
        proxy.count("TransactWriteItems"),
        3,
        "the replay wrote nothing"
    );
}

#[tokio::test]
async fn persistent_throttling_and_dead_endpoints_are_reported() {
    let proxy = Proxy::start().await;
    let store = proxy.store(&fresh_table(), 2).await;
    proxy.inject("GetItem", Fault::Throttle, 3);
    assert_eq!(
        store.get("c").await,
        Err(StoreError::Throttled(THROTTLE_RETRY_MS))
    );
    assert_eq!(proxy.count("GetItem"), 3);

    // Nothing listens here.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let config = local_config(&fresh_table())
        .with_endpoint(&format!("http://{addr}"))
        .unwrap()
        .with_max_retries(1)
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2));
    let dead = DynamoDbStore::new(config).unwrap();
    let e = dead.get("c").await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Unavailable(m) if m.contains("cannot connect")),
        "{e:?}"
    );
}
