//! The retry policy under injected faults. This uses a scripted fake HTTP
//! server, a mock, because neither Firestore nor its emulator can be made
//! to answer `UNAVAILABLE`, `ABORTED` or `RESOURCE_EXHAUSTED` on demand;
//! everything else is tested against the real emulator (emulator.rs).
//! The lost-answer test at the end puts a proxy in front of the real
//! emulator (`FIRESTORE_EMULATOR_HOST`) that loses answers on purpose.

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
                respond(&mut socket, code, &body).await;
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

/// Answers with `code` and a JSON `body`, then closes the connection.
async fn respond(socket: &mut tokio::net::TcpStream, code: u16, body: &str) {
    let response = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
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

// A lost answer in front of the real emulator: a proxy forwards every
// request to it, and answers a commit it forwarded with UNAVAILABLE while
// `lose` says so (the commit applied, its answer lost).

struct Proxy {
    store: FirestoreStore,
    /// Commits whose answers are still to be lost.
    lose: Arc<AtomicUsize>,
    /// Commits forwarded.
    commits: Arc<AtomicUsize>,
}

/// Reads one request whole: the request line and headers, then
/// `content-length` bytes of body.
async fn read_whole(socket: &mut tokio::net::TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            let mut words = head.lines().next()?.split(' ');
            let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
            return Some((method, path, buffer[end + 4..end + 4 + length].to_vec()));
        }
    }
}

async fn proxy(project: &str) -> Proxy {
    let emulator = std::env::var("FIRESTORE_EMULATOR_HOST")
        .expect("FIRESTORE_EMULATOR_HOST: these tests need a running Firestore emulator");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let lose = Arc::new(AtomicUsize::new(0));
    let commits = Arc::new(AtomicUsize::new(0));
    let (to_lose, counted) = (lose.clone(), commits.clone());
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (http, emulator) = (http.clone(), emulator.clone());
            let (to_lose, counted) = (to_lose.clone(), counted.clone());
            tokio::spawn(async move {
                let Some((method, path, body)) = read_whole(&mut socket).await else {
                    return;
                };
                let forwarded = http
                    .request(
                        method.parse().expect("method"),
                        format!("http://{emulator}{path}"),
                    )
                    .header("content-type", "application/json")
                    .header("authorization", "Bearer owner")
                    .body(body)
                    .send()
                    .await
                    .expect("the emulator answers");
                let mut code = forwarded.status().as_u16();
                let mut text = forwarded.text().await.expect("body");
                if path.ends_with(":commit") {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let lost = to_lose
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if lost {
                        (code, text) = status(503, "UNAVAILABLE");
                    }
                }
                respond(&mut socket, code, &text).await;
            });
        }
    });
    let config = FirestoreConfig::builder()
        .emulator_host(address.to_string())
        .project_id(project)
        .retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        })
        .build()
        .expect("config");
    Proxy {
        store: FirestoreStore::new(config).expect("store"),
        lose,
        commits,
    }
}

fn like() -> item_store::Write {
    item_store::Write::Increment {
        id: "a".into(),
        attribute: "likes".into(),
        delta: 1,
    }
}

fn once(key: &str) -> item_store::Once {
    item_store::Once {
        key: key.into(),
        fingerprint: "f".into(),
        expires_at: item_store::Timestamp::now().unix_seconds() + 3600,
    }
}

fn likes(item: &item_store::Item) -> Option<&item_store::Value> {
    item.attribute("likes")
}

#[tokio::test]
async fn a_keyed_commit_whose_answer_is_lost_is_resent_and_applied_once() {
    let project = format!("faults-{:016x}", rand::random::<u64>());
    let proxy = proxy(&project).await;
    let one = item_store::Value::Number("1".into());
    proxy
        .store
        .create(item_store::NewItem {
            id: "a".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let created_commits = proxy.commits.load(Ordering::SeqCst);

    // The commit applies, its answer is lost; the driver resends it (it
    // is idempotent), the resend fails its preconditions, and the next
    // read finds this call's own record.
    proxy.lose.store(1, Ordering::SeqCst);
    let applied = proxy
        .store
        .apply_once(like(), once("k1"))
        .await
        .expect("applied");
    assert!(!applied.replayed, "this call applied it");
    let item_store::Written::Item(item) = &applied.written else {
        panic!("{applied:?}")
    };
    assert_eq!(likes(item), Some(&one));
    assert_eq!(
        proxy.commits.load(Ordering::SeqCst) - created_commits,
        2,
        "the commit and its resend"
    );
    let stored = proxy.store.get("a").await.expect("get");
    assert_eq!(likes(&stored), Some(&one), "applied exactly once");
    assert_eq!(stored.version, item.version);

    // Every answer lost: the call fails without an answer, the caller
    // repeats it with the same key and gets the replay.
    proxy.lose.store(usize::MAX, Ordering::SeqCst);
    assert!(matches!(
        proxy.store.apply_once(like(), once("k2")).await,
        Err(StoreError::Unavailable(_))
    ));
    proxy.lose.store(0, Ordering::SeqCst);
    let replay = proxy
        .store
        .apply_once(like(), once("k2"))
        .await
        .expect("replay");
    assert!(replay.replayed);
    let item_store::Written::Item(item) = &replay.written else {
        panic!("{replay:?}")
    };
    let two = item_store::Value::Number("2".into());
    assert_eq!(likes(item), Some(&two));
    let stored = proxy.store.get("a").await.expect("get");
    assert_eq!(likes(&stored), Some(&two), "applied exactly once");
    assert_eq!(stored.version, item.version);
}
