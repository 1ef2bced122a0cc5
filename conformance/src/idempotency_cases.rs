//! `Idempotency-Key`: every write applied at most once per key, repeats
//! answered from the record, on every runtime and store.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{Backend, Response, Server, unique};
use crate::tokens::issuer;

const REPLAYED: &str = "idempotent-replayed";

async fn keyed(
    s: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: &str,
) -> Response {
    s.send(method, path, body, &[("idempotency-key", key)])
        .await
}

async fn keyed_with(
    s: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Response {
    s.send(method, path, body, headers).await
}

/// The second answer is the first one again, marked replayed.
#[track_caller]
fn assert_replay(first: &Response, again: &Response) {
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(first.header(REPLAYED), None);
    assert_eq!(again.header(REPLAYED), Some("true"));
}

fn likes(s: &Response) -> i64 {
    s.json["likes"].as_i64().unwrap_or_default()
}

pub async fn idempotency_key_applies_each_write_once(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("once");

    // A create without an id: the repeat gets the same item, not a second.
    let body = json!({"name": "from a flaky phone", "userId": user});
    let key = format!("\"{}\"", unique("create"));
    let first = keyed(&s, Method::POST, "/items", Some(&body), &key).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = keyed(&s, Method::POST, "/items", Some(&body), &key).await;
    assert_replay(&first, &again);
    let listed = s.get(&format!("/items?userId={user}")).await;
    assert_eq!(
        listed.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    let id = first.json["id"].as_str().expect("id").to_string();
    let path = format!("/items/{id}");

    // The same key for another request: 422, and nothing written.
    let other = json!({"name": "something else", "userId": user});
    let reused = keyed(&s, Method::POST, "/items", Some(&other), &key).await;
    reused.assert_problem(422);
    assert_eq!(
        reused.json["type"],
        "urn:edge-items:problem:idempotency-key-reused"
    );
    let listed = s.get(&format!("/items?userId={user}")).await;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1));

    // Likes: three sends of one like count once.
    let like = unique("like");
    let first = keyed(&s, Method::POST, &format!("{path}/likes"), None, &like).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(likes(&first), 1);
    for _ in 0..2 {
        let again = keyed(&s, Method::POST, &format!("{path}/likes"), None, &like).await;
        assert_replay(&first, &again);
    }
    assert_eq!(likes(&s.get(&path).await), 1);
    // Without a key, each send counts (as before).
    s.post(&format!("{path}/likes"), &json!({})).await;
    assert_eq!(likes(&s.get(&path).await), 2);

    // PATCH under If-Match: the repeat replays instead of failing 412.
    let etag = s.get(&path).await.header("etag").expect("etag").to_string();
    let patch_key = unique("patch");
    let change = json!({"status": "done"});
    let headers = [
        ("idempotency-key", patch_key.as_str()),
        ("if-match", etag.as_str()),
    ];
    let first = keyed_with(&s, Method::PATCH, &path, Some(&change), &headers).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = keyed_with(&s, Method::PATCH, &path, Some(&change), &headers).await;
    assert_replay(&first, &again);

    // PUT under an If-Match list (the api reads before it writes): the
    // repeat still replays.
    let etag = first.header("etag").expect("etag").to_string();
    let list = format!("\"never\", {etag}");
    let put_key = unique("put");
    let replacement = json!({"name": "replaced", "userId": user});
    let headers = [
        ("idempotency-key", put_key.as_str()),
        ("if-match", list.as_str()),
    ];
    let first = keyed_with(&s, Method::PUT, &path, Some(&replacement), &headers).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = keyed_with(&s, Method::PUT, &path, Some(&replacement), &headers).await;
    assert_replay(&first, &again);

    // A batch: the repeat gets the same answer, items written once.
    let batch =
        json!({"put": [{"name": "b1", "userId": user}, {"id": unique("b2"), "userId": user}]});
    let batch_key = unique("batch");
    let first = keyed(&s, Method::POST, "/items:batch", Some(&batch), &batch_key).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = keyed(&s, Method::POST, "/items:batch", Some(&batch), &batch_key).await;
    assert_replay(&first, &again);
    let listed = s.get(&format!("/items?userId={user}")).await;
    assert_eq!(
        listed.json["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.text
    );

    // DELETE: the repeat is 204 again, not 404.
    let delete_key = unique("delete");
    let first = keyed(&s, Method::DELETE, &path, None, &delete_key).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text);
    let again = keyed(&s, Method::DELETE, &path, None, &delete_key).await;
    assert_replay(&first, &again);
    s.get(&path).await.assert_problem(404);

    // A write that fails records nothing: the same key applies later.
    let late = unique("late");
    let late_path = format!("/items/{late}");
    let late_key = unique("late-key");
    keyed(&s, Method::DELETE, &late_path, None, &late_key)
        .await
        .assert_problem(404);
    s.create(&json!({"id": late})).await;
    let applied = keyed(&s, Method::DELETE, &late_path, None, &late_key).await;
    assert_eq!(applied.status, StatusCode::NO_CONTENT, "{}", applied.text);
    assert_eq!(applied.header(REPLAYED), None);

    // A malformed key is refused before anything happens.
    for bad in ["\"unterminated", "caf\u{e9}"] {
        let r = s
            .send(
                Method::POST,
                "/items",
                Some(&body),
                &[("idempotency-key", bad)],
            )
            .await;
        if r.status == StatusCode::BAD_REQUEST {
            assert_eq!(
                r.json["type"],
                "urn:edge-items:problem:invalid-idempotency-key"
            );
        } else {
            // Some runtimes refuse a non-ASCII header value themselves.
            assert!(
                r.status.is_client_error(),
                "{bad:?}: {} {}",
                r.status,
                r.text
            );
        }
    }
    let long = "k".repeat(256);
    let r = keyed(&s, Method::POST, "/items", Some(&body), &long).await;
    r.assert_problem(400);
    assert_eq!(
        r.json["type"],
        "urn:edge-items:problem:invalid-idempotency-key"
    );
}

/// Twenty sends of one keyed like at once: it counts once; each send gets
/// the like's answer or 409 "in use" (never a second like, never a 5xx).
pub async fn concurrent_repeats_of_a_keyed_like_apply_once(backend: Backend) {
    let s = Server::start(backend);
    let item = s.create(&json!({"name": "hot"})).await;
    let path = format!("/items/{}/likes", item["id"].as_str().expect("id"));
    let key = unique("storm");
    let mut sends = JoinSet::new();
    for _ in 0..20 {
        let (client, url, key) = (s.client().clone(), s.url(&path), key.clone());
        sends.spawn(async move {
            let r = client
                .post(url)
                .header("idempotency-key", key)
                .send()
                .await
                .expect("send");
            Response::read(r).await
        });
    }
    let mut answered = Vec::new();
    while let Some(r) = sends.join_next().await {
        let r = r.expect("task");
        match r.status.as_u16() {
            200 => answered.push(r.json["likes"].clone()),
            409 => assert_eq!(
                r.json["type"],
                "urn:edge-items:problem:idempotency-key-in-use"
            ),
            other => panic!("{other}: {}", r.text),
        }
    }
    assert!(!answered.is_empty());
    assert!(answered.iter().all(|l| *l == json!(1)), "{answered:?}");
    let now = s
        .get(&format!("/items/{}", item["id"].as_str().unwrap()))
        .await;
    assert_eq!(now.json["likes"], 1);
}

/// Keys belong to the caller: two users' same key are two keys, and a
/// user's repeat of a write to its own item replays even where the api
/// reads the item first.
pub async fn idempotency_keys_are_scoped_to_the_caller(backend: Backend) {
    let args = issuer().server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Server::start_with(backend, &args);
    let idp = issuer();
    let (alice, bob) = (idp.token("alice"), idp.token("bob"));
    let send = async |token: &str, method: Method, path: &str, body: Option<&Value>, key: &str| {
        let bearer = format!("Bearer {token}");
        s.send(
            method,
            path,
            body,
            &[("authorization", &bearer), ("idempotency-key", key)],
        )
        .await
    };
    let key = unique("shared");
    let a = send(
        &alice,
        Method::POST,
        "/items",
        Some(&json!({"name": "a"})),
        &key,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let b = send(
        &bob,
        Method::POST,
        "/items",
        Some(&json!({"name": "b"})),
        &key,
    )
    .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    assert_eq!(b.header(REPLAYED), None, "bob's key is not alice's");
    assert_ne!(a.json["id"], b.json["id"]);
    assert_eq!(b.json["userId"], "bob");

    // Alice deletes her item; the repeat answers 204 again although the
    // item is gone (the api reads a user's item before writing it).
    let path = format!("/items/{}", a.json["id"].as_str().expect("id"));
    let delete_key = unique("delete");
    let first = send(&alice, Method::DELETE, &path, None, &delete_key).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text);
    let again = send(&alice, Method::DELETE, &path, None, &delete_key).await;
    assert_replay(&first, &again);
    // Bob's use of alice's delete key is his own (and finds nothing).
    send(&bob, Method::DELETE, &path, None, &delete_key)
        .await
        .assert_problem(404);
}
