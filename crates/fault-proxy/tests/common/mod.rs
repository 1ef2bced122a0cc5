//! A recording upstream and a raw HTTP/1.1 client over real sockets: the
//! client sees exactly what the proxy sends (or that it sends nothing),
//! and the upstream what reached it.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the upstream answers every request with (not UTF-8 on purpose).
pub const UPSTREAM_BODY: &[u8] = b"{\"ok\":true}\xff\x00\x01";

/// A request the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// In arrival order, names in lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// A hyper server that records every request and answers 201 with a few
/// headers and [`UPSTREAM_BODY`].
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, count) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            uri: parts.uri.to_string(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
                                .collect(),
                            body,
                        });
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(201)
                                .header("content-type", "application/x-amz-json-1.0")
                                .header("x-upstream", "yes")
                                .header("set-cookie", "a=1")
                                .header("set-cookie", "b=2")
                                .body(Full::new(Bytes::from_static(UPSTREAM_BODY)))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            seen,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An upstream that accepts connections and never answers.
pub async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// An address nothing listens on.
pub fn dead_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// An answer as it came over the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// In wire order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of a header (names compared without case).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A raw request with a `content-length`; `headers` go out as written.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A DynamoDB call (`POST /` with its target).
pub fn dynamodb(action: &str, body: &str) -> Vec<u8> {
    request(
        "POST",
        "/",
        &[
            ("Host", "dynamodb.us-east-1.amazonaws.com"),
            ("X-Amz-Target", &format!("DynamoDB_20120810.{action}")),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        body.as_bytes(),
    )
}

/// A Firestore REST call on the emulator's default database.
pub fn firestore(method: &str, suffix: &str, body: &str) -> Vec<u8> {
    let target = format!("/v1/projects/demo/databases/(default)/documents{suffix}");
    request(
        method,
        &target,
        &[
            ("Host", "127.0.0.1:8080"),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// One client connection, kept alive between requests.
pub struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buffer: Vec::new(),
        }
    }

    /// Sends `raw` and reads one answer; `Err` when the connection ended
    /// (EOF or reset) before a whole answer.
    pub async fn call(&mut self, raw: &[u8]) -> io::Result<Answer> {
        self.send(raw).await?;
        self.answer().await
    }

    pub async fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw).await
    }

    pub async fn answer(&mut self) -> io::Result<Answer> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = String::from_utf8(self.buffer[..end].to_vec()).unwrap();
                let mut lines = head.split("\r\n");
                let status = lines
                    .next()
                    .unwrap()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
                let headers: Vec<(String, String)> = lines
                    .map(|line| {
                        let (name, value) = line.split_once(':').unwrap();
                        (name.to_string(), value.trim().to_string())
                    })
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if self.buffer.len() >= end + 4 + length {
                    let rest = self.buffer.split_off(end + 4 + length);
                    let body = self.buffer[end + 4..].to_vec();
                    self.buffer = rest;
                    return Ok(Answer {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// Waits for the proxy to close the connection: `Ok` on a clean end
    /// (FIN), `Err` on a reset.
    pub async fn closed(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 1024];
        loop {
            if self.stream.read(&mut chunk).await? == 0 {
                return Ok(());
            }
        }
    }
}

/// One request on a fresh connection.
pub async fn call(addr: SocketAddr, raw: &[u8]) -> io::Result<Answer> {
    Client::connect(addr).await.call(raw).await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Short enough for tests.
pub fn quick() -> fault_proxy::Settings {
    fault_proxy::Settings {
        latency: Duration::from_millis(300),
        hang: Duration::from_millis(600),
        forward_timeout: Duration::from_secs(5),
        ..fault_proxy::Settings::default()
    }
}
