//! The proxy over real sockets: a recording upstream behind it, a raw
//! client in front.

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use common::{Client, UPSTREAM_BODY, Upstream, call, dynamodb, firestore, quick, request};
use fault_proxy::{Backend, Fault, FaultProxy, Filter, MARKER_HEADER, Schedule, Settings};

async fn proxy(upstream: &Upstream, backend: Backend, schedule: Schedule) -> FaultProxy {
    FaultProxy::start(&upstream.url(), backend, schedule, quick())
        .await
        .unwrap()
}

/// What a client saw of one request: the fault named by the proxy's
/// marker header, `forwarded`, or `closed`.
fn outcome(answer: &io::Result<common::Answer>) -> String {
    match answer {
        Ok(answer) => answer
            .header(MARKER_HEADER)
            .unwrap_or("forwarded")
            .to_string(),
        Err(_) => "closed".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rate_zero_everything_passes_unchanged() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, Backend::DynamoDb, Schedule::none()).await;
    let body = b"{\"TableName\":\"items\"}\x00\xff\xfe binary";
    let raw = request(
        "POST",
        "/some/path?b=2&a=%20x",
        &[
            ("Host", "dynamodb.us-east-1.amazonaws.com"),
            ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
            ("X-Amz-Date", "20240101T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc",
            ),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Connection", "keep-alive"),
        ],
        body,
    );
    let answer = call(proxy.addr(), &raw).await.unwrap();

    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, UPSTREAM_BODY);
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(answer.all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(
        answer.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(answer.header(MARKER_HEADER), None);

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("POST", "/some/path?b=2&a=%20x")
    );
    assert_eq!(seen.body.as_ref(), body);
    let one = |name: &str| String::from_utf8(seen.header(name).concat()).unwrap();
    assert_eq!(one("host"), "dynamodb.us-east-1.amazonaws.com");
    assert_eq!(one("x-amz-target"), "DynamoDB_20120810.PutItem");
    assert_eq!(one("x-amz-date"), "20240101T000000Z");
    assert!(one("authorization").ends_with("Signature=abc"));
    assert_eq!(seen.header("x-multi"), [b"one".as_slice(), b"two"]);
    assert!(seen.header("connection").is_empty(), "hop-by-hop");

    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.forwarded, stats.failed), (1, 1, 0));
    assert_eq!(stats.injected.total(), 0);
    assert!(proxy.injections().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_kept_alive_on_both_sides() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, Backend::DynamoDb, Schedule::none()).await;
    let mut client = Client::connect(proxy.addr()).await;
    for n in 0..3 {
        let answer = client
            .call(&dynamodb("GetItem", &format!("{{\"n\":{n}}}")))
            .await;
        assert_eq!(answer.unwrap().status, 201);
    }
    assert_eq!(upstream.count(), 3);
    assert_eq!(
        upstream.connections(),
        1,
        "the upstream connection is pooled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_arrives_byte_for_byte() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, Backend::Firestore, Schedule::none()).await;
    let raw = b"POST /v1/x:commit HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_eq!(call(proxy.addr(), raw).await.unwrap().status, 201);
    let seen = &upstream.seen()[0];
    assert_eq!(seen.body.as_ref(), b"hello world");
    assert_eq!(seen.header("host"), [b"127.0.0.1:8080".as_slice()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_errors_come_in_its_json_shape() {
    let upstream = Upstream::start().await;
    for (fault, want) in [
        (
            Fault::ServerError,
            vec![(500, "com.amazonaws.dynamodb.v20120810#InternalServerError")],
        ),
        (
            Fault::Unavailable,
            vec![(503, "com.amazonaws.dynamodb.v20120810#ServiceUnavailable")],
        ),
        (
            Fault::Throttle,
            vec![
                (
                    400,
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                ),
                (400, "com.amazon.coral.availability#ThrottlingException"),
                (
                    400,
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                ),
            ],
        ),
    ] {
        let proxy = proxy(&upstream, Backend::DynamoDb, Schedule::always(fault)).await;
        let mut client = Client::connect(proxy.addr()).await;
        for (status, kind) in &want {
            let answer = client.call(&dynamodb("PutItem", "{}")).await.unwrap();
            assert_eq!(answer.status, *status, "{fault}");
            assert_eq!(answer.json()["__type"], *kind);
            assert!(answer.json()["message"].is_string());
            assert_eq!(
                answer.header("content-type"),
                Some("application/x-amz-json-1.0")
            );
            assert_eq!(answer.header("x-amzn-ErrorType"), kind.rsplit('#').next());
            assert_eq!(answer.header(MARKER_HEADER), Some(fault.name()));
        }
        assert_eq!(proxy.stats().injected.get(fault), want.len() as u64);
        assert_eq!(proxy.stats().forwarded, 0);
    }
    assert_eq!(upstream.count(), 0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firestore_errors_come_in_googles_json_shape() {
    let upstream = Upstream::start().await;
    for (fault, want) in [
        (Fault::ServerError, vec![(500, "INTERNAL")]),
        (Fault::Unavailable, vec![(503, "UNAVAILABLE")]),
        (
            Fault::Throttle,
            vec![
                (429, "RESOURCE_EXHAUSTED"),
                (503, "UNAVAILABLE"),
                (409, "ABORTED"),
                (429, "RESOURCE_EXHAUSTED"),
            ],
        ),
    ] {
        let proxy = proxy(&upstream, Backend::Firestore, Schedule::always(fault)).await;
        let mut client = Client::connect(proxy.addr()).await;
        for (status, code) in &want {
            let answer = client
                .call(&firestore("POST", ":commit", "{}"))
                .await
                .unwrap();
            assert_eq!(answer.status, *status, "{fault}");
            let error = &answer.json()["error"];
            assert_eq!(
                (error["code"].as_u64(), error["status"].as_str()),
                (Some(u64::from(*status)), Some(*code))
            );
            assert!(
                answer
                    .header("content-type")
                    .unwrap()
                    .starts_with("application/json")
            );
        }
        assert_eq!(proxy.stats().injected.get(fault), want.len() as u64);
    }
    assert_eq!(upstream.count(), 0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_forwarding_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let proxy = proxy(
        &upstream,
        Backend::DynamoDb,
        Schedule::always(Fault::ResetBeforeForwarding),
    )
    .await;
    let error = call(proxy.addr(), &dynamodb("PutItem", "{}"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    assert_eq!(upstream.count(), 0);
    let stats = proxy.stats();
    assert_eq!(
        (stats.forwarded, stats.injected.reset_before_forwarding),
        (0, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_forwarding_applies_the_write_and_loses_the_answer() {
    let upstream = Upstream::start().await;
    let proxy = proxy(
        &upstream,
        Backend::DynamoDb,
        Schedule::always(Fault::ResetAfterForwarding),
    )
    .await;
    let error = call(proxy.addr(), &dynamodb("PutItem", "{\"n\":1}"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "the write reached the upstream");
    assert_eq!(seen[0].body.as_ref(), b"{\"n\":1}");
    let stats = proxy.stats();
    assert_eq!(
        (stats.forwarded, stats.injected.reset_after_forwarding),
        (1, 1)
    );
    let injections = proxy.injections();
    assert_eq!(injections.len(), 1);
    assert_eq!(injections[0].request, 1);
    assert_eq!(injections[0].fault, Fault::ResetAfterForwarding);
    assert_eq!(
        injections[0].target.as_deref(),
        Some("DynamoDB_20120810.PutItem")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_the_upstreams_answer() {
    let upstream = Upstream::start().await;
    let proxy = proxy(
        &upstream,
        Backend::DynamoDb,
        Schedule::always(Fault::Latency),
    )
    .await;
    let started = Instant::now();
    let answer = call(proxy.addr(), &dynamodb("GetItem", "{}"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= quick().latency,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (201, UPSTREAM_BODY)
    );
    assert_eq!(upstream.count(), 1);
    let stats = proxy.stats();
    assert_eq!((stats.forwarded, stats.injected.latency), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_answers_nothing_then_closes() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, Backend::DynamoDb, Schedule::always(Fault::Hang)).await;
    let mut client = Client::connect(proxy.addr()).await;
    let started = Instant::now();
    client.send(&dynamodb("PutItem", "{}")).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(200), client.answer()).await;
    assert!(
        early.is_err(),
        "answered within the client's timeout: {early:?}"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), client.closed()).await;
    assert!(matches!(end, Ok(Ok(()))), "not closed cleanly: {end:?}");
    assert!(started.elapsed() >= quick().hang, "{:?}", started.elapsed());
    assert_eq!(upstream.count(), 0, "a hang does not forward");
    assert_eq!(proxy.stats().injected.hang, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_proxy_ends_hanging_connections_and_listening() {
    let upstream = Upstream::start().await;
    let settings = Settings {
        hang: Duration::from_secs(60),
        ..quick()
    };
    let proxy = FaultProxy::start(
        &upstream.url(),
        Backend::Firestore,
        Schedule::always(Fault::Hang),
        settings,
    )
    .await
    .unwrap();
    let addr = proxy.addr();
    let mut client = Client::connect(addr).await;
    client
        .send(&firestore("POST", ":commit", "{}"))
        .await
        .unwrap();
    while proxy.stats().injected.hang == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(proxy);
    let end = tokio::time::timeout(Duration::from_secs(5), client.closed()).await;
    assert!(end.is_ok(), "the hanging connection stayed open");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The kinds that answer, so one keep-alive connection can see them all.
fn answering(seed: u64) -> Schedule {
    Schedule::new(seed, 0.5).with_kinds([
        (Fault::ServerError, 1),
        (Fault::Unavailable, 1),
        (Fault::Throttle, 1),
    ])
}

async fn outcomes(upstream: &Upstream, schedule: Schedule, n: usize) -> Vec<String> {
    let proxy = proxy(upstream, Backend::DynamoDb, schedule).await;
    let mut client = Client::connect(proxy.addr()).await;
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(outcome(&client.call(&dynamodb("PutItem", "{}")).await));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_faults() {
    let upstream = Upstream::start().await;
    let first = outcomes(&upstream, answering(42), 40).await;
    let again = outcomes(&upstream, answering(42), 40).await;
    let other = outcomes(&upstream, answering(43), 40).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    let planned: Vec<String> = answering(42)
        .plan(40)
        .into_iter()
        .map(|fault| fault.map_or("forwarded".into(), |f| f.name().to_string()))
        .collect();
    assert_eq!(first, planned, "the proxy follows Schedule::plan");
    assert!(first.iter().any(|o| o == "forwarded") && first.iter().any(|o| o != "forwarded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_exactly_what_was_injected() {
    let upstream = Upstream::start().await;
    let schedule = Schedule::new(5, 0.7).with_kinds([
        (Fault::ServerError, 1),
        (Fault::Throttle, 1),
        (Fault::ResetBeforeForwarding, 1),
        (Fault::ResetAfterForwarding, 2),
        (Fault::Latency, 1),
    ]);
    let settings = Settings {
        latency: Duration::from_millis(1),
        ..quick()
    };
    let plan = schedule.plan(40);
    let proxy = FaultProxy::start(&upstream.url(), Backend::DynamoDb, schedule, settings)
        .await
        .unwrap();
    for planned in &plan {
        // A fresh connection each time: resets end them.
        let seen = call(proxy.addr(), &dynamodb("UpdateItem", "{}")).await;
        let want = match planned {
            None | Some(Fault::Latency) => "forwarded",
            Some(Fault::ResetBeforeForwarding | Fault::ResetAfterForwarding) => "closed",
            Some(fault) => fault.name(),
        };
        assert_eq!(outcome(&seen), want, "{planned:?}");
    }
    let count = |fault| plan.iter().filter(|p| **p == Some(fault)).count() as u64;
    let stats = proxy.stats();
    for fault in Fault::ALL {
        assert_eq!(stats.injected.get(fault), count(fault), "{fault}");
    }
    let clean = plan.iter().filter(|p| p.is_none()).count() as u64;
    let forwarded = clean + count(Fault::ResetAfterForwarding) + count(Fault::Latency);
    assert_eq!(stats.forwarded, forwarded);
    assert_eq!(
        upstream.count() as u64,
        forwarded,
        "forwarded is what the upstream saw"
    );
    assert_eq!((stats.requests, stats.eligible, stats.failed), (40, 40, 0));
    assert!(count(Fault::ResetAfterForwarding) > 0 && count(Fault::ResetBeforeForwarding) > 0);
    let injected: Vec<(u64, Fault)> = proxy
        .injections()
        .iter()
        .map(|i| (i.request, i.fault))
        .collect();
    let planned: Vec<(u64, Fault)> = plan
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|fault| (i as u64 + 1, fault)))
        .collect();
    assert_eq!(injected, planned);
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(
        json["injected"]["reset_after_forwarding"],
        count(Fault::ResetAfterForwarding)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writes_get_faults_on_dynamodb() {
    let upstream = Upstream::start().await;
    let schedule = Schedule::always(Fault::ServerError).only_writes();
    let proxy = proxy(&upstream, Backend::DynamoDb, schedule).await;
    let mut client = Client::connect(proxy.addr()).await;
    for (action, status) in [
        ("GetItem", 201),
        ("PutItem", 500),
        ("Query", 201),
        ("UpdateItem", 500),
        ("DeleteItem", 500),
        ("TransactWriteItems", 500),
        ("BatchWriteItem", 500),
        ("DescribeTable", 201),
    ] {
        assert_eq!(
            client.call(&dynamodb(action, "{}")).await.unwrap().status,
            status,
            "{action}"
        );
    }
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.eligible, stats.forwarded), (8, 5, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writes_get_faults_on_firestore() {
    let upstream = Upstream::start().await;
    let schedule = Schedule::always(Fault::Unavailable).only_writes();
    let proxy = proxy(&upstream, Backend::Firestore, schedule).await;
    let mut client = Client::connect(proxy.addr()).await;
    for (method, suffix, status) in [
        ("GET", "/items/a", 201),
        ("POST", ":commit", 503),
        ("POST", ":runQuery", 201),
        ("POST", ":beginTransaction", 201),
        ("PATCH", "/items/a", 503),
    ] {
        let answer = client.call(&firestore(method, suffix, "{}")).await.unwrap();
        assert_eq!(answer.status, status, "{method} {suffix}");
    }
    assert_eq!(upstream.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_filter_picks_requests_by_body() {
    let upstream = Upstream::start().await;
    let filter = Filter::matching(|request| request.body.windows(5).any(|w| w == b"chaos"));
    let schedule = Schedule::always(Fault::Throttle).only(filter);
    let proxy = proxy(&upstream, Backend::DynamoDb, schedule).await;
    let mut client = Client::connect(proxy.addr()).await;
    assert_eq!(
        client
            .call(&dynamodb("PutItem", "{\"id\":\"calm\"}"))
            .await
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        client
            .call(&dynamodb("PutItem", "{\"id\":\"chaos-1\"}"))
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(proxy.stats().eligible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_pauses_and_resumes() {
    let upstream = Upstream::start().await;
    let proxy = proxy(&upstream, Backend::DynamoDb, answering(9)).await;
    let plan = answering(9).plan(20);
    let mut client = Client::connect(proxy.addr()).await;
    let mut seen = Vec::new();
    for n in 0..30 {
        // Requests 10 to 19 while paused: forwarded, no draws.
        proxy.set_enabled(!(10..20).contains(&n));
        let got = outcome(&client.call(&dynamodb("PutItem", "{}")).await);
        if (10..20).contains(&n) {
            assert_eq!(got, "forwarded");
        } else {
            seen.push(got);
        }
    }
    assert!(proxy.is_enabled());
    let planned: Vec<String> = plan
        .into_iter()
        .map(|fault| fault.map_or("forwarded".into(), |f| f.name().to_string()))
        .collect();
    assert_eq!(seen, planned, "resuming continues the schedule");
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.eligible), (30, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_are_refused_unforwarded() {
    let upstream = Upstream::start().await;
    let settings = Settings {
        max_body_bytes: 1024,
        ..quick()
    };
    let proxy = FaultProxy::start(
        &upstream.url(),
        Backend::DynamoDb,
        Schedule::none(),
        settings,
    )
    .await
    .unwrap();
    let big = "x".repeat(2048);
    let answer = call(proxy.addr(), &dynamodb("PutItem", &big))
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header(MARKER_HEADER), Some("failed"));
    assert_eq!(upstream.count(), 0);
    assert_eq!(proxy.stats().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_502_and_504() {
    let dead = FaultProxy::start(
        &common::dead_address().to_string(),
        Backend::DynamoDb,
        Schedule::none(),
        quick(),
    )
    .await
    .unwrap();
    let answer = call(dead.addr(), &dynamodb("GetItem", "{}")).await.unwrap();
    assert_eq!(
        (answer.status, answer.header(MARKER_HEADER)),
        (502, Some("failed"))
    );
    assert_eq!((dead.stats().failed, dead.stats().forwarded), (1, 0));

    let settings = Settings {
        forward_timeout: Duration::from_millis(200),
        ..quick()
    };
    let silent = common::silent_upstream().await;
    // A fault that forwards does not count when forwarding fails.
    let slow = FaultProxy::start(
        &format!("http://{silent}"),
        Backend::DynamoDb,
        Schedule::always(Fault::ResetAfterForwarding),
        settings,
    )
    .await
    .unwrap();
    let answer = call(slow.addr(), &dynamodb("PutItem", "{}")).await.unwrap();
    assert_eq!(answer.status, 504);
    assert_eq!((slow.stats().failed, slow.stats().injected.total()), (1, 0));
}

/// For synchronous harnesses: the proxy on its own thread, used with
/// blocking sockets.
#[test]
fn spawn_thread_serves_synchronous_tests() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(Upstream::start());
    let proxy = FaultProxy::spawn_thread(
        &upstream.url(),
        Backend::DynamoDb,
        Schedule::always(Fault::ServerError).only_writes(),
        quick(),
    )
    .unwrap();
    let exchange = |action: &str| {
        let mut stream = std::net::TcpStream::connect(proxy.addr()).unwrap();
        let mut raw = dynamodb(action, "{}");
        // `connection: close`, so that reading to the end reads one answer.
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        raw.splice(head_end + 2..head_end + 2, *b"connection: close\r\n");
        stream.write_all(&raw).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    };
    assert!(exchange("GetItem").starts_with(b"HTTP/1.1 201"));
    assert!(exchange("PutItem").starts_with(b"HTTP/1.1 500"));
    assert_eq!(upstream.count(), 1);
    assert_eq!(proxy.stats().injected.server_error, 1);
    let addr = proxy.addr();
    drop(proxy);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped on drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_keep_their_case_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw upstream: hyper's would lower-case what it reports.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let head = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nX-Amzn-RequestId: R1\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let proxy = FaultProxy::start(
        &addr.to_string(),
        Backend::DynamoDb,
        Schedule::none(),
        quick(),
    )
    .await
    .unwrap();
    let answer = call(proxy.addr(), &dynamodb("GetItem", "{}"))
        .await
        .unwrap();
    let head = head.await.unwrap();
    assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains("\r\nHost: dynamodb.us-east-1.amazonaws.com\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"),
        "{head}"
    );
    assert!(
        answer
            .headers
            .iter()
            .any(|(name, _)| name == "X-Amzn-RequestId"),
        "{answer:?}"
    );
}
