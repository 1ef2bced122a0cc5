//! The host's limits against hostile load and hostile input, over real TCP
//! against the real `edge-items` binary serving the real api component
//! (`EDGE_ITEMS_API_WASM`, as `cargo xtask test` sets it, else the release
//! build's path) on the embedded store. Each test starts its own host with
//! short limits and asserts outcomes (statuses, answers within generous
//! bounds, instances and budget coming back), not speed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod common;
use common::Host;

/// How long any single answer may take before a test calls it hung: far
/// above what any of them needs, even on two busy cores.
const PATIENCE: Duration = Duration::from_secs(60);

impl Host {
    /// Resident memory of the host process, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// One request on a new connection.
    async fn exchange(&self, request: &[u8]) -> Answer {
        let mut stream = self.connect().await;
        stream.write_all(request).await.expect("send");
        read_answer(&mut stream).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.exchange(
            format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
    }
}

fn post_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    )
}

/// A response read off the wire.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The problem `type`'s last part, checking the problem shape.
    fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["status"], self.status, "{body}");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:edge-items:problem:"))
            .unwrap_or_else(|| panic!("not a problem: {body}"))
            .to_string()
    }
}

/// Sends a head and a body on one connection and reads the answer.
async fn send_with_body(host: &Host, path: &str, body: &[u8]) -> Answer {
    let mut stream = host.connect().await;
    stream
        .write_all(post_head(path, body.len()).as_bytes())
        .await
        .expect("send head");
    // The server may answer before the whole body is in (e.g. a refusal).
    let _ = stream.write_all(body).await;
    read_answer(&mut stream).await
}

/// Reads one response: the head, then Content-Length bytes, or to the end
/// of the connection. Gives up after [`PATIENCE`].
async fn read_answer(stream: &mut TcpStream) -> Answer {
    tokio::time::timeout(PATIENCE, read_answer_now(stream))
        .await
        .expect("an answer in time")
}

async fn read_answer_now(stream: &mut TcpStream) -> Answer {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                return Answer {
                    head: String::from_utf8_lossy(&got).into_owned(),
                    ..Answer::default()
                };
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut answer = Answer {
        status,
        head,
        body: got[head_end..].to_vec(),
    };
    let length = answer
        .header("content-length")
        .and_then(|n| n.parse::<usize>().ok());
    while length.is_none_or(|n| answer.body.len() < n) {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.body.extend_from_slice(&buf[..n]),
        }
    }
    answer
}

/// Asks again (every 200 ms) until the answer is `want`, accepting only
/// `meanwhile` before it; returns when it came (since `since`).
async fn until_answered<F, Fut>(since: Instant, want: u16, meanwhile: u16, mut ask: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    loop {
        let answer = ask().await;
        if answer.status == want {
            return since.elapsed();
        }
        assert_eq!(answer.status, meanwhile, "{}", answer.head);
        assert!(
            since.elapsed() < PATIENCE,
            "still {meanwhile} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 600 connections send a POST head with Content-Length: 1000, 6 bytes of
/// body and then nothing. They hold no instance while their bodies do not
/// come: /healthz and writes keep answering, and each stalled request gets
/// 408 at the body deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_bodies_get_408_while_the_service_keeps_answering() {
    let body_timeout = Duration::from_secs(8);
    let host = Host::start(&["--body-timeout", "8s"]);
    let head = "POST /items HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"id\":";
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..600 {
        let mut stream = host.connect().await;
        stream.write_all(head.as_bytes()).await.expect("send");
        stalled.push(stream);
    }
    // While they stall: health checks and a write, each answered promptly.
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let asked = Instant::now();
        let health = tokio::time::timeout(Duration::from_secs(3), host.get("/healthz"))
            .await
            .expect("/healthz within 3 s while 600 bodies stall");
        assert_eq!(health.status, 200, "{health:?}");
        slowest = slowest.max(asked.elapsed());
        host.create_small(&format!("during-{i}")).await;
    }
    assert!(
        started.elapsed() < body_timeout,
        "the checks ran while the bodies were still stalled ({:?}); raise the body timeout",
        started.elapsed()
    );
    // Every stalled request: 408 in the problem format, after the deadline.
    let answers = answers_of(stalled, started).await;
    let mut timed_out = 0;
    for (answer, after) in &answers {
        assert_eq!(answer.status, 408, "{answer:?}");
        assert_eq!(answer.problem(), "body-timeout");
        assert!(*after >= body_timeout, "answered early: {after:?}");
        timed_out += 1;
    }
    let last = answers.iter().map(|(_, after)| *after).max().unwrap();
    eprintln!(
        "600 stalled bodies: {timed_out} got 408, the last {last:?} after the start; \
         /healthz answered in at most {slowest:?} meanwhile"
    );
    // Nothing is held afterwards.
    host.create_small("after").await;
    assert!(!host.log().contains(" ERROR "), "{}", host.log());
}

/// Reads the answer of every connection, concurrently, with the time it
/// came (since `started`).
async fn answers_of(streams: Vec<TcpStream>, started: Instant) -> Vec<(Answer, Duration)> {
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let answer = read_answer(&mut stream).await;
            (answer, started.elapsed())
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("reader task"));
    }
    answers
}

impl Host {
    async fn post_json(&self, path: &str, body: &Value) -> Answer {
        send_with_body(self, path, body.to_string().as_bytes()).await
    }

    /// Creates a small item, which must succeed.
    async fn create_small(&self, id: &str) {
        let created = self
            .post_json("/items", &json!({"id": id, "userId": "small"}))
            .await;
        assert_eq!(created.status, 201, "{created:?}");
    }
}

/// With one instance: a client that asks for a large response and never
/// reads it holds that instance, so others wait at most the queue timeout
/// and get 503 with Retry-After; at the write deadline the client is
/// disconnected, the instance ends, and requests succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_is_cut_off_and_its_instance_freed() {
    let host = Host::start(&[
        "--max-instances",
        "1",
        "--queue-timeout",
        "500ms",
        "--write-timeout",
        "4s",
        "--max-body-bytes",
        "20000000",
        "--memory-budget",
        "2GiB",
    ]);
    // One item of 18 MB (list pages stop at 4 MiB, so one large item makes
    // the large response): far more than the socket buffers, hyper's and
    // wasi:http's hold together.
    let description = "x".repeat(18_000_000);
    let item = json!({"id": "big", "userId": "reader", "description": description});
    let created = host.post_json("/items", &item).await;
    assert_eq!(created.status, 201, "{}", created.head);
    // A client with a small receive window asks and never reads.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("recv buffer");
    let mut reader = socket.connect(host.addr).await.expect("connect");
    reader
        .write_all(b"GET /items/big HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .expect("send");
    let asked = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The one instance is busy writing: others get 503 after the queue wait.
    let busy = host.get("/healthz").await;
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.problem(), "server-busy");
    assert_eq!(busy.header("retry-after").as_deref(), Some("1"));

    // After the write deadline the instance is free again.
    let freed = until_answered(asked, 200, 503, || host.get("/healthz")).await;
    assert!(
        freed >= Duration::from_secs(3),
        "freed before the deadline: {freed:?}"
    );

    // The reader was disconnected before the end of the response.
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let read_all = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the connection ends");
    assert!(
        received < 18_000_000,
        "got the whole response: {received} bytes"
    );
    eprintln!(
        "non-reader: instance free {freed:?} after the request (write timeout 4 s); \
         the client had {received} of about 18 MB when cut off"
    );
    assert!(
        host.log()
            .contains("did not take the response within the write timeout"),
        "{}",
        host.log()
    );
}

/// A client may keep 5 connections open; its 6th and 7th get 429 (one log
/// line for both), another client is not affected, and closing one makes
/// room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_per_client_are_capped() {
    let host = Host::start(&["--max-connections-per-ip", "5"]);
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut stream = host.connect().await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .expect("send");
        assert_eq!(read_answer(&mut stream).await.status, 200);
        open.push(stream);
    }
    for _ in 0..2 {
        let refused = host.get("/healthz").await;
        assert_eq!(refused.status, 429, "{refused:?}");
        assert_eq!(refused.problem(), "too-many-connections");
        assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
        assert_eq!(refused.header("connection").as_deref(), Some("close"));
    }
    // Another address (127.0.0.2 is loopback too) is another client.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().unwrap())
        .expect("bind 127.0.0.2");
    let mut other = socket.connect(host.addr).await.expect("connect");
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .expect("send");
    assert_eq!(read_answer(&mut other).await.status, 200);
    // Room again once one closes.
    drop(open.pop());
    until_answered(Instant::now(), 200, 429, || host.get("/healthz")).await;
    let log = host.log();
    let warnings = log
        .lines()
        .filter(|line| line.contains("reached its connection limit"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

/// With a budget of 50 MiB (20 bytes per body byte), two 1 MB bodies on
/// their way hold 40 MB: a third large body gets 503 with Retry-After at
/// once, small requests still succeed, and once a large body has been
/// served its share comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_bodies_beyond_the_memory_budget_get_503_while_small_ones_pass() {
    let host = Host::start(&["--memory-budget", "50MiB"]);
    let large = |id: &str| {
        let mut body = json!({"id": id, "userId": "m", "description": ""}).to_string();
        let pad = 1_000_000 - body.len();
        body = body.replacen(
            "\"description\":\"\"",
            &format!("\"description\":\"{}\"", "m".repeat(pad)),
            1,
        );
        assert_eq!(body.len(), 1_000_000);
        body
    };
    // Two large bodies announced, not sent yet.
    let mut holders = Vec::new();
    for id in ["hold-1", "hold-2"] {
        let mut stream = host.connect().await;
        stream
            .write_all(post_head("/items", 1_000_000).as_bytes())
            .await
            .expect("send head");
        holders.push((stream, large(id)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A third: refused before its body is sent (it asks to continue first).
    let head =
        post_head("/items", 1_000_000).replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    let refused = host.exchange(head.as_bytes()).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.problem(), "server-busy");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    // Small requests pass meanwhile.
    for i in 0..5 {
        host.create_small(&format!("small-{i}")).await;
        assert_eq!(host.get("/healthz").await.status, 200);
    }
    // The holders send their bodies and are served.
    for (stream, body) in &mut holders {
        stream.write_all(body.as_bytes()).await.expect("send body");
        let served = read_answer(stream).await;
        assert_eq!(served.status, 201, "{}", served.head);
    }
    drop(holders);
    // Their shares are back: a large body fits again.
    let again = large("after");
    until_answered(Instant::now(), 201, 503, || {
        send_with_body(&host, "/items", again.as_bytes())
    })
    .await;
}

/// Forty 1 MiB JSON arrays at once (twenty raised the host's resident
/// memory by 363 MB before the budget; forty by 657 MB here): with the
/// default budget of 256 MiB those that do not fit are refused with 503,
/// the rest are answered, and the growth stays well under the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_large_arrays_stay_within_the_default_budget() {
    let host = Host::start(&[]);
    let array = format!("[{}1]", "1,".repeat((1 << 20) / 2 - 2));
    assert!(array.len() <= 1 << 20);
    assert_eq!(host.get("/healthz").await.status, 200);
    let before = host.rss();
    let host = std::sync::Arc::new(host);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let host = host.clone();
        let array = array.clone();
        tasks.spawn(async move { send_with_body(&host, "/items", array.as_bytes()).await });
    }
    let mut peak = before;
    let mut statuses = Vec::new();
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(answer) => statuses.push(answer.expect("task").status),
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(20)) => peak = peak.max(host.rss()),
        }
    }
    statuses.sort_unstable();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    // A JSON array is not an item: 422 from the component when admitted.
    assert!(
        statuses.iter().all(|s| *s == 422 || *s == 503),
        "{statuses:?}"
    );
    let growth = peak.saturating_sub(before);
    eprintln!(
        "40 concurrent 1 MiB arrays: {} answered 422, {refused} refused 503; resident memory {} MiB -> peak {} MiB (+{} MiB)",
        40 - refused,
        before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < 300 << 20,
        "resident memory grew by {} MiB",
        growth >> 20
    );
    assert_eq!(host.get("/healthz").await.status, 200);
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host is 400 in the problem
/// format, logged as a request, not as an error; HTTP/1.0 may leave Host
/// out; two Hosts are 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_host_get_400_and_no_error_line() {
    let host = Host::start(&[]);
    let missing = host
        .exchange(b"GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.problem(), "missing-host");
    let body = "{\"id\":\"no-host\"}";
    let missing = host
        .exchange(
            format!(
                "POST /items HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(missing.status, 400, "{missing:?}");
    assert_eq!(missing.problem(), "missing-host");
    let repeated = host
        .exchange(b"GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(repeated.status, 400, "{repeated:?}");
    assert_eq!(repeated.problem(), "invalid-host");
    let http10 = host.exchange(b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(http10.status, 200, "{http10:?}");
    // Nothing was created by the refused POST.
    assert_eq!(host.get("/items/no-host").await.status, 404);
    let log = host.log();
    assert!(!log.contains("ERROR"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("GET") && l.contains("/healthz") && l.contains("status=400")),
        "the refusal has its request line:\n{log}"
    );
}
