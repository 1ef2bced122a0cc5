//! Operability over real HTTP against the real `edge-items` binary serving
//! the real api component on the embedded store: request ids (kept,
//! generated, replaced; in the answer, problem bodies and JSON log lines),
//! `/readyz`, the admin listener's `/metrics`, and `edge-items probe`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Host, edge_items};

/// A response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
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
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One GET with extra header lines, on a new connection.
fn get(addr: SocketAddr, path: &str, headers: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: t\r\n{headers}connection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[test]
fn request_ids_are_kept_generated_or_replaced_and_reach_json_logs() {
    let host = Host::start(&["--log-format", "json"]);

    // Kept: in the header and as the 404 problem's instance.
    let answer = get(host.addr, "/items/nope", "x-request-id: op-test.1\r\n");
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(answer.header("x-request-id").as_deref(), Some("op-test.1"));
    assert_eq!(
        answer.json()["instance"],
        "urn:edge-items:request:op-test.1"
    );

    // Generated when absent, on a success too.
    let answer = get(host.addr, "/healthz", "");
    assert_eq!(answer.status, 200);
    assert!(
        is_uuid(&answer.header("x-request-id").unwrap()),
        "{answer:?}"
    );

    // Replaced when not sane; host and component agree on the new one.
    let long = "y".repeat(129);
    for bad in ["two words", "caf\u{e9}", long.as_str()] {
        let answer = get(host.addr, "/nowhere", &format!("x-request-id: {bad}\r\n"));
        assert_eq!(answer.status, 404, "{answer:?}");
        let id = answer.header("x-request-id").unwrap();
        assert!(is_uuid(&id), "{bad}: {id}");
        assert_eq!(
            answer.json()["instance"],
            format!("urn:edge-items:request:{id}")
        );
    }

    // Every line is JSON; the request's line carries its id in its span.
    let started = Instant::now();
    loop {
        let log = host.log();
        let lines: Vec<Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let found = lines.iter().any(|line| {
            line["span"]["request_id"] == "op-test.1"
                && line["fields"]["message"] == "request"
                && line["fields"]["status"] == 404
        });
        if found {
            assert!(
                log.lines()
                    .filter(|l| l.starts_with('{'))
                    .all(|l| serde_json::from_str::<Value>(l).is_ok()),
                "{log}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no JSON request line with the id:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readyz_reads_the_store_and_metrics_count_requests_on_the_admin_listener() {
    let host = Host::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = host.admin.expect("the admin address is printed");

    let ready = get(host.addr, "/readyz", "");
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json(), serde_json::json!({"status": "ready"}));
    for _ in 0..3 {
        assert_eq!(get(host.addr, "/items/some-id", "").status, 404);
    }
    // Not on the API's port.
    assert_eq!(get(host.addr, "/metrics", "").status, 404);

    let metrics = get(admin, "/metrics", "");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{metrics:?}"
    );
    for expected in [
        r#"edge_items_http_requests_total{method="GET",route="/items/{id}",status="404"} 3"#,
        r#"edge_items_http_requests_total{method="GET",route="/readyz",status="200"} 1"#,
        r#"edge_items_http_requests_total{method="GET",route="other",status="404"} 1"#,
        r#"edge_items_http_request_duration_seconds_count{method="GET",route="/items/{id}"} 3"#,
        "# TYPE edge_items_instances_in_use gauge",
        "edge_items_instances_in_use 0",
        r#"edge_items_admission_rejected_total{reason="instances"} 0"#,
        r#"edge_items_admission_rejected_total{reason="memory"} 0"#,
        r#"edge_items_admission_rejected_total{reason="connections"} 0"#,
        r#"edge_items_component_cache_total{result="hit"}"#,
        r#"edge_items_component_cache_total{result="miss"}"#,
    ] {
        assert!(
            metrics.body.contains(expected),
            "{expected} missing:\n{}",
            metrics.body
        );
    }
    assert!(!metrics.body.contains("some-id"), "no raw paths");
    assert_eq!(get(admin, "/other", "").status, 404);
}

#[test]
fn probe_exits_0_on_2xx_only() {
    let host = Host::start(&[]);
    let probe = |url: String| {
        edge_items()
            .args(["probe", &url, "--timeout", "10s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run probe")
    };
    assert!(probe(format!("http://{}/readyz", host.addr)).success());
    assert!(probe(format!("http://{}/healthz", host.addr)).success());
    let not_found = probe(format!("http://{}/nope", host.addr));
    assert_eq!(not_found.code(), Some(1));
    // Nothing listens there once the listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(probe(format!("http://{closed}/readyz")).code(), Some(1));
    assert_eq!(probe("https://example.invalid/".into()).code(), Some(1));
}
