//! The retry policy under injected faults. This uses a scripted fake HTTP
//! server, a mock, because neither Firestore nor its emulator can be made
//! to answer `UNAVAILABLE`, `ABORTED` or `RESOURCE_EXHAUSTED` on demand;
//! everything else is tested against the real emulator (emulator.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use item_store::{ItemStore, StoreError};
use store_firestore::{FirestoreConfig, FirestoreStore, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DOC: &str = r#"{"name":"projects/demo-faults/databases/(default)/documents/items/a","fields":{"likes":{"integerValue":"1"}},"createTime":"2026-02-08T10:00:00Z","updateTime":"2026-02-08T10:00:00Z"}"#;
const INCREMENTED: &str = r#"{"writeResults":[{"updateTime":"2026-02-08T10:00:01Z","transformResults":[{"integerValue":"2"}]}]}"#;

fn status(code: u16, status: &str) -> (u16, String) {
    (
        code,
        format!(r#"{{"error":{{"code":{code},"message":"injected","status":"{status}"}}}}"#),
    )
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_owned())
}

/// Serves the scripted answers in order (the last one repeats) and counts
/// the requests.
async fn fake(script: Vec<(u16, String)>) -> (FirestoreStore, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (code, body) = script[n.min(script.len() - 1)].clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let response = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    let config = FirestoreConfig::builder()
        .emulator_host(address.to_string())
        .project_id("demo-faults")
        .retry(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
        .build()
        .expect("config");
    (FirestoreStore::new(config).expect("store"), count)
}

/// Reads one request: headers, then `content-length` bytes of body.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return;
            }
        }
    }
}

#[tokio::test]
async fn reads_are_retried_after_unavailable() {
    let (store, count) = fake(vec![
        status(503, "UNAVAILABLE"),
        status(500, "INTERNAL"),
        ok(DOC),
    ])
    .await;
    let item = store.get("a").await.expect("third time lucky");
    assert_eq!(item.id, "a");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_give_up_after_the_last_attempt() {
    let (store, count) = fake(vec![status(503, "UNAVAILABLE")]).await;
    assert!(matches!(
        store.get("a").await,
        Err(StoreError::Unavailable(m)) if !m.contains("injected")
    ));
    assert_eq!(count.load(Ordering::SeqCst), 4);
    let (store, _) = fake(vec![status(429, "RESOURCE_EXHAUSTED")]).await;
    assert_eq!(store.get("a").await, Err(StoreError::Throttled(1000)));
}

#[tokio::test]
async fn a_blind_increment_is_not_repeated_after_an_ambiguous_failure() {
    let (store, count) = fake(vec![ok(DOC), status(503, "UNAVAILABLE"), ok(INCREMENTED)]).await;
    assert!(matches!(
        store.increment("a", "likes", 1).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "read, one commit, no repeat"
    );
}

#[tokio::test]
async fn an_increment_refused_before_applying_is_repeated() {
    let (store, count) = fake(vec![ok(DOC), status(409, "ABORTED"), ok(INCREMENTED)]).await;
    let item = store.increment("a", "likes", 1).await.expect("increment");
    assert_eq!(
        item.attribute("likes"),
        Some(&item_store::Value::Number("2".into()))
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn permission_errors_are_final() {
    let (store, count) = fake(vec![status(403, "PERMISSION_DENIED")]).await;
    assert!(matches!(
        store.get("a").await,
        Err(StoreError::Unauthorized(m)) if !m.contains("injected")
    ));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
