//! Hostile input, answered the same on every runtime and store (docs/
//! SECURITY.md): identifiers with one spelling, expiry within RFC 3339,
//! bounded attribute counts and linear patches, HEAD and OPTIONS.

use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::harness::{Backend, Server};

pub async fn identifiers_have_one_spelling(backend: Backend) {
    let s = Server::start(backend);
    // NFC é is one item; its NFD spelling would be a second, look-alike one.
    let nfc = "caf\u{e9}";
    let nfd = "cafe\u{301}";
    s.create(&json!({"id": nfc, "name": "n"})).await;
    let detail = s
        .post("/items", &json!({"id": nfd}))
        .await
        .assert_problem(422);
    assert!(detail.contains("NFC"), "{detail}");
    let path = format!("/items/{}", utf8_percent_encode(nfd, NON_ALPHANUMERIC));
    s.get(&path).await.assert_problem(400);
    // Invisible characters in ids, attribute names and index values.
    for invisible in ["a\u{200b}b", "admin\u{202e}gpj", "\u{2066}x", "\u{feff}bom"] {
        s.post("/items", &json!({"id": invisible}))
            .await
            .assert_problem(422);
        let mut body = Map::new();
        body.insert(invisible.to_string(), json!(1));
        s.post("/items", &Value::Object(body))
            .await
            .assert_problem(422);
        s.post("/items", &json!({"userId": invisible}))
            .await
            .assert_problem(422);
        let path = format!(
            "/items/{}",
            utf8_percent_encode(invisible, NON_ALPHANUMERIC)
        );
        s.get(&path).await.assert_problem(400);
    }
    let got = s
        .get(&format!(
            "/items/{}",
            utf8_percent_encode(nfc, NON_ALPHANUMERIC)
        ))
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
}

pub async fn expiry_stays_within_rfc_3339(backend: Backend) {
    let s = Server::start(backend);
    for bad in [
        json!(9_223_372_036_854_775_807_i64),
        json!(253_402_300_800_i64),
        json!(-1),
    ] {
        let detail = s
            .post("/items", &json!({"id": "e", "expiresAt": bad}))
            .await
            .assert_problem(422);
        assert!(detail.contains("expiresAt"), "{detail}");
    }
    s.patch("/items/e", &json!({"expiresAt": 253_402_300_800_i64}))
        .await
        .assert_problem(422);
    // The last second RFC 3339 can write survives a GET -> PUT round trip.
    let item = s
        .create(&json!({"id": "e", "expiresAt": 253_402_300_799_i64}))
        .await;
    assert_eq!(item["expiresAt"], "9999-12-31T23:59:59Z");
    let r = s.put("/items/e", &item).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        s.get("/items/e").await.json["expiresAt"],
        "9999-12-31T23:59:59Z"
    );
}

/// `count` attributes `a0`..
fn attributes(count: usize) -> Map<String, Value> {
    (0..count).map(|i| (format!("a{i}"), json!(i))).collect()
}

pub async fn attribute_counts_are_bounded_and_patches_linear(backend: Backend) {
    let s = Server::start(backend);
    // Over the default limit of 1000 attributes per write: refused at once.
    let mut body = attributes(1001);
    body.insert("id".into(), json!("many"));
    let detail = s
        .post("/items", &Value::Object(body))
        .await
        .assert_problem(422);
    assert!(detail.contains("limit is 1000"), "{detail}");
    // At the limit: stored, then a patch removing every name at once while
    // a small create must still complete promptly.
    let mut body = attributes(1000);
    body.insert("id".into(), json!("wide"));
    let created = s.post("/items", &Value::Object(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let removal = Value::Object((0..1000).map(|i| (format!("a{i}"), Value::Null)).collect());
    let started = Instant::now();
    let (patched, small) = tokio::join!(s.patch("/items/wide", &removal), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = s.post("/items", &json!({"id": "small"})).await;
        (r.status, started.elapsed())
    });
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let left: Vec<&String> = patched
        .json
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with('a'))
        .collect();
    assert!(left.is_empty(), "every attribute removed: {left:?}");
    assert_eq!(small.0, StatusCode::CREATED);
    assert!(
        small.1 < Duration::from_secs(30),
        "the small create waited {:?}",
        small.1
    );
}

pub async fn head_and_options(backend: Backend) {
    let s = Server::start(backend);
    let item = s.create(&json!({"id": "h", "name": "n"})).await;
    let get = s.get("/items/h").await;
    for path in [
        "/healthz",
        "/items/h",
        "/openapi.json",
        "/items?userId=nobody",
    ] {
        let r = s.send(Method::HEAD, path, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "HEAD {path}");
        assert_eq!(r.text, "", "HEAD {path} has no body");
        assert!(
            r.header("content-type").is_some_and(|t| t.contains("json")),
            "HEAD {path}"
        );
    }
    let head = s.send(Method::HEAD, "/items/h", None, &[]).await;
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(
        head.header("etag").map(str::to_owned),
        Some(format!("\"{}\"", item["version"].as_str().unwrap()))
    );
    s.send(Method::HEAD, "/items/nope", None, &[]).await;
    for (path, allow) in [
        ("/items", "GET, HEAD, POST, OPTIONS"),
        ("/items/h", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"),
        ("/items/h/likes", "POST, OPTIONS"),
        ("/items:batch", "POST, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
    ] {
        let r = s.send(Method::OPTIONS, path, None, &[]).await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "OPTIONS {path}: {}",
            r.text
        );
        assert_eq!(r.header("allow"), Some(allow), "OPTIONS {path}");
    }
    s.send(Method::OPTIONS, "/nope", None, &[])
        .await
        .assert_problem(404);
    let r = s.send(Method::TRACE, "/items", None, &[]).await;
    r.assert_problem(405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}
