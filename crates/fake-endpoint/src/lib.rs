//! For tests only: a small HTTP server that answers with a closure and
//! records every request, standing in for endpoints that exist only inside
//! a cloud (the EC2 instance metadata service, container credential
//! endpoints, Google's metadata server and token endpoint). Real servers
//! are used wherever one runs here (DynamoDB Local, moto, the Firestore
//! emulator); these fakes speak the documented protocols of the others.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request the endpoint received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// Header names in lower case; values as text.
    pub headers: HashMap<String, String>,
    /// The body as text.
    pub body: String,
}

/// What the endpoint answers: a status and a body.
pub type Answer = (u16, String);

/// A running endpoint; it stops with the test's runtime.
pub struct FakeEndpoint {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeEndpoint {
    /// Listens on a free loopback port; every response carries `headers`
    /// and what `answer` says of the request.
    pub async fn start(
        headers: &'static [(&'static str, &'static str)],
        answer: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    ) -> FakeEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (answer, log) = (answer.clone(), log.clone());
                    async move {
                        let seen = read(request).await;
                        let (status, body) = answer(&seen);
                        log.lock().expect("log lock").push(seen);
                        let mut response = Response::builder().status(status);
                        for (name, value) in headers {
                            response = response.header(*name, *value);
                        }
                        Ok::<_, Infallible>(
                            response
                                .body(Full::new(Bytes::from(body)))
                                .expect("a response"),
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
        FakeEndpoint { addr, seen }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log lock").clone()
    }

    /// How many requests went to `path`.
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

async fn read(request: Request<Incoming>) -> Seen {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_and_records() {
        let fake = FakeEndpoint::start(&[("x-fake", "yes")], |seen| {
            (201, format!("{} {} {}", seen.method, seen.path, seen.body))
        })
        .await;
        let mut stream = tokio::net::TcpStream::connect(fake.host()).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(
                b"PUT /a HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
            )
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(
            answer.contains("x-fake: yes") && answer.ends_with("PUT /a hi"),
            "{answer}"
        );
        assert_eq!(fake.count("/a"), 1);
        assert_eq!(fake.seen()[0].headers["host"], "h");
    }
}
