//! The conformance cases: every endpoint and error of docs/http-api.md,
//! plus the concurrency promises of the item store. Each case starts its own
//! host on the given backend, so cases run in parallel and in isolation.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{Backend, Runtime, SPIN_ROUTE_ARG, Server, unique};

fn is_timestamp(v: &Value) -> bool {
    // 2026-02-08T10:00:00.000000Z: fixed width, UTC, microseconds.
    v.as_str().is_some_and(|s| {
        s.len() == 27 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
    })
}

fn etag_of(item: &Value) -> String {
    format!("\"{}\"", item["version"].as_str().expect("version"))
}

pub async fn create_and_read(backend: Backend) {
    let s = Server::start(backend);
    let r = s
        .post(
            "/items",
            &json!({"id": "item-123", "name": "My Item", "description": "A great item", "likes": 0, "userId": "u1", "status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("location"), Some("/items/item-123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let item = &r.json;
    assert_eq!(item["id"], "item-123");
    assert_eq!(item["name"], "My Item");
    assert_eq!(item["description"], "A great item");
    assert_eq!(item["likes"], 0);
    assert_eq!(item["userId"], "u1");
    assert_eq!(item["status"], "active");
    assert!(is_timestamp(&item["createdAt"]), "{item}");
    assert_eq!(item["createdAt"], item["updatedAt"]);
    assert_eq!(r.header("etag").map(str::to_string), Some(etag_of(item)));

    let got = s.get("/items/item-123").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.json, item);
    assert_eq!(got.header("etag").map(str::to_string), Some(etag_of(item)));
}

pub async fn create_generates_an_id(backend: Backend) {
    let s = Server::start(backend);
    let a = s.create(&json!({"name": "a"})).await;
    let b = s.create(&json!({"name": "b"})).await;
    let (ida, idb) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_ne!(ida, idb);
    assert_eq!(ida.len(), 36, "a UUID: {ida}");
    let got = s.get(&format!("/items/{ida}")).await;
    assert_eq!(got.json["name"], "a");
}

pub async fn create_twice_conflicts(backend: Backend) {
    let s = Server::start(backend);
    s.create(&json!({"id": "dup", "name": "first"})).await;
    let r = s
        .post("/items", &json!({"id": "dup", "name": "second"}))
        .await;
    r.assert_problem(409);
    assert_eq!(s.get("/items/dup").await.json["name"], "first");
}

pub async fn missing_item_is_404(backend: Backend) {
    let s = Server::start(backend);
    s.get("/items/nope").await.assert_problem(404);
    s.delete("/items/nope").await.assert_problem(404);
    s.patch("/items/nope", &json!({"name": "x"}))
        .await
        .assert_problem(404);
    s.post("/items/nope/likes", &json!({}))
        .await
        .assert_problem(404);
}

pub async fn if_none_match_gives_304(backend: Backend) {
    let s = Server::start(backend);
    let item = s.create(&json!({"id": "cached", "name": "n"})).await;
    let etag = etag_of(&item);
    let r = s
        .send(
            Method::GET,
            "/items/cached",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.text, "");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let weak = format!("W/{etag}");
    let r = s
        .send(
            Method::GET,
            "/items/cached",
            None,
            &[("if-none-match", &format!("\"other\", {weak}"))],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_MODIFIED,
        "weak comparison in a list"
    );
    let r = s
        .send(
            Method::GET,
            "/items/cached",
            None,
            &[("if-none-match", "\"other\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["name"], "n");
}

pub async fn put_creates_then_replaces(backend: Backend) {
    let s = Server::start(backend);
    let r = s
        .put(
            "/items/p1",
            &json!({"name": "one", "color": "red", "userId": "u"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("location"), Some("/items/p1"));
    let created = r.json;
    let r = s.put("/items/p1", &json!({"name": "two"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let replaced = r.json.clone();
    assert_eq!(replaced["name"], "two");
    assert!(
        replaced.get("color").is_none(),
        "put replaces whole: {replaced}"
    );
    assert!(replaced.get("userId").is_none(), "{replaced}");
    assert_eq!(
        replaced["createdAt"], created["createdAt"],
        "createdAt is kept"
    );
    assert_ne!(replaced["version"], created["version"]);
    assert_eq!(
        r.header("etag").map(str::to_string),
        Some(etag_of(&replaced))
    );
    // A body id must agree with the URL.
    s.put("/items/p1", &json!({"id": "other"}))
        .await
        .assert_problem(422);
}

pub async fn if_match_guards_writes(backend: Backend) {
    let s = Server::start(backend);
    let item = s.create(&json!({"id": "guarded", "name": "v1"})).await;
    let good = etag_of(&item);
    let stale = "\"stale-version\"";
    for (method, body) in [
        (Method::PUT, Some(json!({"name": "x"}))),
        (Method::PATCH, Some(json!({"name": "x"}))),
        (Method::DELETE, None),
    ] {
        let r = s
            .send(
                method.clone(),
                "/items/guarded",
                body.as_ref(),
                &[("if-match", stale)],
            )
            .await;
        r.assert_problem(412);
    }
    assert_eq!(
        s.get("/items/guarded").await.json["name"],
        "v1",
        "nothing changed"
    );

    let r = s
        .send(
            Method::PATCH,
            "/items/guarded",
            Some(&json!({"name": "v2"})),
            &[("if-match", &good)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v2 = etag_of(&r.json);
    assert_ne!(v2, good);
    // The old ETag is stale now.
    let r = s
        .send(
            Method::PUT,
            "/items/guarded",
            Some(&json!({"name": "v3"})),
            &[("if-match", &good)],
        )
        .await;
    r.assert_problem(412);
    let r = s
        .send(
            Method::PUT,
            "/items/guarded",
            Some(&json!({"name": "v3"})),
            &[("if-match", &v2)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v3 = etag_of(&r.json);
    let r = s
        .send(Method::DELETE, "/items/guarded", None, &[("if-match", &v3)])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // If-Match on a missing item fails, `*` included: no blind create.
    let r = s
        .send(
            Method::PUT,
            "/items/absent",
            Some(&json!({"name": "x"})),
            &[("if-match", "*")],
        )
        .await;
    r.assert_problem(412);
    s.get("/items/absent").await.assert_problem(404);
    let r = s
        .send(
            Method::PUT,
            "/items/absent",
            Some(&json!({"name": "x"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    r.assert_problem(412);
    // `*` on an existing item matches.
    s.create(&json!({"id": "star", "name": "s"})).await;
    let r = s
        .send(
            Method::PATCH,
            "/items/star",
            Some(&json!({"name": "t"})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

pub async fn patch_merges(backend: Backend) {
    let s = Server::start(backend);
    let item = s
        .create(&json!({"id": "m", "name": "old", "description": "d", "likes": 3, "status": "draft", "tags": ["a"]}))
        .await;
    let r = s
        .patch(
            "/items/m",
            &json!({"name": "new", "description": null, "status": "active", "tags": {"nested": [1, 2]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = r.json;
    assert_eq!(p["name"], "new");
    assert!(p.get("description").is_none(), "null removes: {p}");
    assert_eq!(p["likes"], 3, "untouched fields stay");
    assert_eq!(p["status"], "active");
    assert_eq!(p["tags"], json!({"nested": [1, 2]}));
    assert_eq!(p["createdAt"], item["createdAt"]);
    assert_ne!(p["version"], item["version"]);
    assert_eq!(s.get("/items/m").await.json, p);
    // Merge patch content type is accepted too.
    let r = s
        .client()
        .patch(s.url("/items/m"))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"status": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after = s.get("/items/m").await.json;
    assert!(after.get("status").is_none(), "{after}");
    // The id cannot change.
    s.patch("/items/m", &json!({"id": "other"}))
        .await
        .assert_problem(422);
}

pub async fn delete_then_gone(backend: Backend) {
    let s = Server::start(backend);
    s.create(&json!({"id": "gone", "userId": "del-user"})).await;
    let r = s.delete("/items/gone").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.text, "");
    s.get("/items/gone").await.assert_problem(404);
    s.delete("/items/gone").await.assert_problem(404);
    let list = s.get("/items?userId=del-user").await;
    assert_eq!(list.json["items"], json!([]));
}

pub async fn likes_increment(backend: Backend) {
    let s = Server::start(backend);
    s.create(&json!({"id": "liked", "name": "n"})).await;
    let r = s.post("/items/liked/likes", &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["likes"], 1, "an absent counter starts at 0");
    assert_eq!(r.header("etag").map(str::to_string), Some(etag_of(&r.json)));
    // No body at all means by 1.
    let r = s.send(Method::POST, "/items/liked/likes", None, &[]).await;
    assert_eq!(r.json["likes"], 2, "{}", r.text);
    let r = s.post("/items/liked/likes", &json!({"by": 10})).await;
    assert_eq!(r.json["likes"], 12);
    let r = s.post("/items/liked/likes", &json!({"by": -2})).await;
    assert_eq!(r.json["likes"], 10);
    s.post("/items/liked/likes", &json!({"by": 1.5}))
        .await
        .assert_problem(422);
    s.post("/items/liked/likes", &json!({"by": "one"}))
        .await
        .assert_problem(422);
    s.create(&json!({"id": "textlikes", "likes": "many"})).await;
    s.post("/items/textlikes/likes", &json!({}))
        .await
        .assert_problem(422);
    assert_eq!(s.get("/items/liked").await.json["likes"], 10);
}

/// Lists every item of a query by following `next`, asserting page sizes.
async fn list_all(s: &Server, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut path = format!("/items?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        let page = r.json["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit, "page over limit");
        items.extend(page.clone());
        match r.json["next"].as_str() {
            Some(next) => {
                assert!(!page.is_empty(), "a page with a next cursor has items");
                cursor = Some(next.to_string());
            }
            None => {
                assert!(
                    r.json.get("next").is_some(),
                    "`next` is present (null): {}",
                    r.text
                );
                return items;
            }
        }
    }
    panic!("paging did not end");
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

pub async fn list_by_user_in_order_with_paging(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("user");
    let mut created = Vec::new();
    for i in 0..7 {
        let item = s
            .create(&json!({"id": format!("u-{i}"), "userId": user, "n": i}))
            .await;
        created.push(item["id"].as_str().unwrap().to_string());
    }
    s.create(&json!({"id": "someone-else", "userId": unique("other")}))
        .await;
    s.create(&json!({"id": "no-user"})).await;

    let asc = list_all(&s, &format!("userId={user}&order=asc"), 3).await;
    assert_eq!(ids(&asc), created, "oldest first");
    let desc = list_all(&s, &format!("userId={user}&order=desc"), 2).await;
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(ids(&desc), newest_first);
    let default_order = s.get(&format!("/items?userId={user}")).await;
    assert_eq!(
        ids(default_order.json["items"].as_array().unwrap()),
        newest_first,
        "desc by default"
    );
    // createdAt really is ordered.
    let stamps: Vec<_> = asc
        .iter()
        .map(|i| i["createdAt"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted);
    // An exact page boundary: 7 items, limit 7.
    let all = s.get(&format!("/items?userId={user}&limit=7")).await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 7);
    if let Some(next) = all.json["next"].as_str() {
        let rest = s
            .get(&format!("/items?userId={user}&limit=7&cursor={next}"))
            .await;
        assert_eq!(rest.json["items"], json!([]));
        assert_eq!(rest.json["next"], Value::Null);
    }
}

pub async fn list_by_status_newest_first(backend: Backend) {
    let s = Server::start(backend);
    let status = unique("active");
    for i in 0..4 {
        s.create(&json!({"id": format!("s-{i}"), "status": status}))
            .await;
    }
    s.create(&json!({"id": "draft", "status": unique("draft")}))
        .await;
    let r = s.get(&format!("/items?status={status}&order=desc")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        ids(r.json["items"].as_array().unwrap()),
        ["s-3", "s-2", "s-1", "s-0"]
    );
    assert_eq!(r.json["next"], Value::Null);
    // A status change moves the item between lists.
    s.patch("/items/s-1", &json!({"status": null})).await;
    let r = s.get(&format!("/items?status={status}&order=asc")).await;
    assert_eq!(
        ids(r.json["items"].as_array().unwrap()),
        ["s-0", "s-2", "s-3"]
    );
}

pub async fn list_by_user_and_status(backend: Backend) {
    let s = Server::start(backend);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let (open, done) = (unique("open"), unique("done"));
    for (id, user, status) in [
        ("us-0", &alice, &open),
        ("us-1", &alice, &done),
        ("us-2", &bob, &open),
        ("us-3", &alice, &open),
        ("us-4", &alice, &open),
    ] {
        s.create(&json!({"id": id, "userId": user, "status": status}))
            .await;
    }
    s.create(&json!({"id": "us-no-status", "userId": alice}))
        .await;
    let list = |user: String, status: String, order: &'static str, limit: usize| {
        let s = &s;
        async move {
            let query = format!("userId={user}&status={status}&order={order}");
            ids(&list_all(s, &query, limit).await)
        }
    };
    assert_eq!(
        list(alice.clone(), open.clone(), "asc", 1).await,
        ["us-0", "us-3", "us-4"],
        "one user's items in one status, paged exactly"
    );
    assert_eq!(
        list(alice.clone(), open.clone(), "desc", 2).await,
        ["us-4", "us-3", "us-0"]
    );
    assert_eq!(list(bob.clone(), open.clone(), "asc", 5).await, ["us-2"]);
    // A patch of the status alone, of the user alone, a removal, a
    // replacement and a batch put each move the item between these lists.
    s.patch("/items/us-0", &json!({"status": done})).await;
    s.patch("/items/us-2", &json!({"userId": alice})).await;
    s.patch("/items/us-3", &json!({"userId": null})).await;
    let r = s
        .put("/items/us-1", &json!({"userId": alice, "status": open}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .post(
            "/items:batch",
            &json!({"put": [{"id": "us-no-status", "userId": alice, "status": open}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut now_open = list(alice.clone(), open.clone(), "asc", 2).await;
    now_open.sort();
    assert_eq!(now_open, ["us-1", "us-2", "us-4", "us-no-status"]);
    assert_eq!(list(alice.clone(), done.clone(), "asc", 2).await, ["us-0"]);
    assert!(list(bob.clone(), open.clone(), "asc", 5).await.is_empty());
    // Deleted items leave the list.
    s.send(Method::DELETE, "/items/us-4", None, &[]).await;
    let mut now_open = list(alice.clone(), open.clone(), "desc", 3).await;
    now_open.sort();
    assert_eq!(now_open, ["us-1", "us-2", "us-no-status"]);
    // A cursor names its query: not valid for the user's whole list.
    let r = s
        .get(&format!("/items?userId={alice}&status={open}&limit=1"))
        .await;
    let next = r.json["next"].as_str().expect("next").to_string();
    s.get(&format!("/items?userId={alice}&limit=1&cursor={next}"))
        .await
        .assert_problem(400);
}

/// Pages end by bytes as well as by count: items near the largest the
/// store keeps fill a page of `limit=100` long before 100 items, every
/// page stays near the 4 MiB budget, and paging still returns each item
/// once, in order.
pub async fn large_items_page_by_bytes(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("big");
    let size = backend.large_item_bytes();
    let per_page = (4 * 1024 * 1024) / size;
    let count = per_page + 3;
    let blob = "x".repeat(size);
    let mut created = Vec::new();
    for i in 0..count {
        let id = format!("big-{i:02}");
        let r = s
            .post("/items", &json!({"id": id, "userId": user, "blob": blob}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        created.push(id);
    }
    let mut seen = Vec::new();
    let mut path = format!("/items?userId={user}&order=asc&limit=100");
    let mut pages = 0;
    loop {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        pages += 1;
        let page = r.json["items"].as_array().unwrap();
        assert!(!page.is_empty(), "every page holds at least one item");
        assert!(
            page.len() <= per_page,
            "{} items of {size} bytes on one page",
            page.len()
        );
        assert!(
            r.text.len() <= 4 * 1024 * 1024 + 64 * 1024,
            "{}",
            r.text.len()
        );
        seen.extend(ids(page));
        match r.json["next"].as_str() {
            Some(next) => path = format!("/items?userId={user}&order=asc&limit=100&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, created, "each item once, in order");
    assert!(
        pages >= 2,
        "{count} items of {size} bytes took {pages} page(s)"
    );
}

pub async fn bad_list_requests_are_400(backend: Backend) {
    let s = Server::start(backend);
    for path in [
        "/items",
        "/items?userId=a&status=",
        "/items?userId=a&order=sideways",
        "/items?userId=a&limit=0",
        "/items?userId=a&limit=101",
        "/items?userId=a&limit=ten",
        "/items?userId=a&cursor=garbage",
        "/items?userId=",
    ] {
        s.get(path).await.assert_problem(400);
    }
    // A cursor from another query is refused.
    let user = unique("u");
    for i in 0..3 {
        s.create(&json!({"id": format!("c{i}"), "userId": user}))
            .await;
    }
    let r = s.get(&format!("/items?userId={user}&limit=1")).await;
    let next = r.json["next"].as_str().expect("next").to_string();
    let detail = s
        .get(&format!(
            "/items?userId={user}&limit=1&order=asc&cursor={next}"
        ))
        .await
        .assert_problem(400);
    assert!(detail.contains("cursor"), "{detail}");
    s.get(&format!("/items?userId=other&limit=1&cursor={next}"))
        .await
        .assert_problem(400);
}

pub async fn batch_puts_and_deletes(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("batch");
    s.create(&json!({"id": "b-old", "userId": user})).await;
    let puts: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("b-{i}"), "userId": user, "n": i}))
        .collect();
    let mut body = json!({"put": puts, "delete": ["b-old", "never-existed"]});
    body["put"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "b-imported", "createdAt": "2020-01-01T00:00:00Z", "userId": user}));
    body["put"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "no id"}));
    let r = s.post("/items:batch", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["put"].as_array().unwrap().len(), 32);
    assert_eq!(r.json["deleted"], json!(["b-old", "never-existed"]));
    let generated = r.json["put"][31]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/items/{generated}")).await.json["name"],
        "no id"
    );
    s.get("/items/b-old").await.assert_problem(404);
    assert_eq!(s.get("/items/b-17").await.json["n"], 17);
    let imported = s.get("/items/b-imported").await.json;
    assert_eq!(imported["createdAt"], "2020-01-01T00:00:00.000000Z");
    let all = list_all(&s, &format!("userId={user}&order=asc"), 100).await;
    assert_eq!(all.len(), 31);
    assert_eq!(all[0]["id"], "b-imported", "imported createdAt sorts first");

    // Limits and rules.
    let too_many: Vec<Value> = (0..101).map(|i| json!({"id": format!("x{i}")})).collect();
    s.post("/items:batch", &json!({"put": too_many}))
        .await
        .assert_problem(422);
    s.post("/items:batch", &json!({})).await.assert_problem(422);
    s.post(
        "/items:batch",
        &json!({"put": [{"id": "twice"}], "delete": ["twice"]}),
    )
    .await
    .assert_problem(422);
    s.post(
        "/items:batch",
        &json!({"put": [{"id": "bad", "userId": 5}]}),
    )
    .await
    .assert_problem(422);
    s.get("/items/bad").await.assert_problem(404);
}

/// Spin can mount the app under any route; the api then routes on what
/// follows the prefix (`spin-path-info`) and writes its URLs (`Location`,
/// `Link`) with the prefix, so clients can follow them. The other runtimes
/// serve it at `/`, where a client's own `spin-path-info` that disagrees
/// with the path changes nothing.
pub async fn mounted_under_a_route_prefix(backend: Backend) {
    let user = unique("mounted");
    if backend.runtime != Runtime::SpinUp {
        let s = Server::start(backend);
        let forged = [("spin-path-info", "/healthz")];
        let r = s.send(Method::GET, "/items/none", None, &forged).await;
        r.assert_problem(404);
        let body = json!({"name": "a", "userId": user});
        let r = s.send(Method::POST, "/items", Some(&body), &forged).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.json["id"].as_str().expect("id");
        assert_eq!(r.header("location"), Some(format!("/items/{id}").as_str()));
        return;
    }
    let s = Server::start_with(backend, &[SPIN_ROUTE_ARG, "/api/..."]);
    let health = s.get("/api/healthz").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    assert_eq!(s.get("/healthz").await.status, StatusCode::NOT_FOUND);

    let mut created = Vec::new();
    for name in ["a", "b", "c"] {
        let r = s
            .post("/api/items", &json!({"name": name, "userId": user}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.json["id"].as_str().expect("id").to_string();
        let location = r.header("location").expect("location").to_string();
        assert_eq!(location, format!("/api/items/{id}"));
        let got = s.get(&location).await;
        assert_eq!(got.status, StatusCode::OK, "GET {location}: {}", got.text);
        assert_eq!(got.json["name"], name);
        created.push(id);
    }
    let put = s.put("/api/items/put-mounted", &json!({"name": "p"})).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text);
    assert_eq!(put.header("location"), Some("/api/items/put-mounted"));

    // Follow the Link headers through the user's list, one item a page.
    let mut next = Some(format!("/api/items?userId={user}&order=asc&limit=1"));
    let mut seen = Vec::new();
    while let Some(url) = next.take() {
        assert!(
            seen.len() <= created.len(),
            "the pages do not end: {seen:?}"
        );
        let page = s.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "GET {url}: {}", page.text);
        for item in page.json["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_string());
        }
        next = page.header("link").map(|link| {
            let url = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(url, _)| url.to_string())
                .unwrap_or_else(|| panic!("not a next link: {link}"));
            assert!(url.starts_with("/api/items?"), "{link}");
            url
        });
    }
    assert_eq!(seen, created);
}

pub async fn openapi_and_health(backend: Backend) {
    let s = Server::start(backend);
    let r = s.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["status"], "ok");
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json;
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{doc}"
    );
    for (path, methods) in [
        ("/items", &["get", "post"][..]),
        ("/items/{id}", &["get", "put", "patch", "delete"][..]),
        ("/items/{id}/likes", &["post"][..]),
        ("/items:batch", &["post"][..]),
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"][..]),
        ("/openapi.json", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from OpenAPI"
            );
        }
    }
    assert!(doc["components"]["schemas"]["Item"].is_object());
}

/// `/readyz` reads the store; every answer carries `X-Request-Id` (the
/// client's when sane, else a new one), and a problem names it in
/// `instance`: the api component's rule, so on every runtime.
pub async fn readiness_and_request_ids(backend: Backend) {
    let s = Server::start(backend);
    let r = s.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({"status": "ready"}));
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let r = s.send(Method::HEAD, "/readyz", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);

    let id = format!("conformance-{}", unique("req"));
    let r = s
        .send(
            Method::GET,
            "/items/no-such-item",
            None,
            &[("x-request-id", &id)],
        )
        .await;
    r.assert_problem(404);
    assert_eq!(r.header("x-request-id"), Some(id.as_str()));
    assert_eq!(
        r.json["instance"],
        format!("urn:edge-items:request:{id}"),
        "{}",
        r.text
    );

    // Not sane (a space, too long): replaced, and the body agrees.
    for bad in ["two words".to_string(), "z".repeat(129)] {
        let r = s
            .send(Method::GET, "/nowhere", None, &[("x-request-id", &bad)])
            .await;
        r.assert_problem(404);
        let got = r.header("x-request-id").expect("an id").to_string();
        assert_ne!(got, bad);
        assert!(!got.is_empty() && got.len() <= 128, "{got}");
        assert_eq!(r.json["instance"], format!("urn:edge-items:request:{got}"));
    }
}

pub async fn protocol_errors(backend: Backend) {
    let s = Server::start_with(backend, &["--max-body-bytes", "1024"]);
    // Malformed JSON is 400; well-formed but wrong is 422.
    let r = s
        .client()
        .post(s.url("/items"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    crate::harness::Response::read(r).await.assert_problem(400);
    s.post("/items", &json!(["not", "an", "object"]))
        .await
        .assert_problem(422);
    s.post("/items", &json!({"userId": 42}))
        .await
        .assert_problem(422);
    // `itemId` is another name for `id`; two different ids are refused.
    s.post("/items", &json!({"id": "x", "itemId": "y"}))
        .await
        .assert_problem(422);
    s.post("/items", &json!({"__name__": "x"}))
        .await
        .assert_problem(422);
    s.post("/items", &json!({"expiresAt": "tomorrow"}))
        .await
        .assert_problem(422);
    // Unknown routes and methods.
    s.get("/nothing-here").await.assert_problem(404);
    s.get("/items/a/b/c").await.assert_problem(404);
    let r = s.send(Method::DELETE, "/items", None, &[]).await;
    r.assert_problem(405);
    let allow = r.header("allow").unwrap_or_default().to_uppercase();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    let r = s.send(Method::POST, "/items/x", None, &[]).await;
    r.assert_problem(405);
    assert!(r.header("allow").unwrap_or_default().contains("PATCH"));
    // Wrong content type.
    let r = s
        .client()
        .post(s.url("/items"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    crate::harness::Response::read(r).await.assert_problem(415);
    // Body over the configured limit (1 KiB here).
    let big = json!({"name": "x".repeat(4096)});
    s.post("/items", &big).await.assert_problem(413);
    // Over the limit without a Content-Length (chunked).
    let head = raw_chunked_post(&s, "/items", 8, 512).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // Invalid ids in the URL.
    let long = "x".repeat(201);
    for path in [
        format!("/items/{long}"),
        "/items/a%0Ab".to_string(),
        "/items/a%2Fb".to_string(),
        "/items/%7F".to_string(),
    ] {
        s.get(&path).await.assert_problem(400);
    }
    // Nothing was written by any of this.
    let r = s.post("/items:batch", &json!({"delete": ["probe"]})).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Sends a chunked POST (no Content-Length) of `chunks` x `size` spaces
/// over a raw connection and returns the start of the response.
async fn raw_chunked_post(s: &Server, path: &str, chunks: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
        // The server may answer 413 and stop reading before the end.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("an answer to a chunked body")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub async fn ids_and_numbers_round_trip(backend: Backend) {
    let s = Server::start(backend);
    // Unicode, spaces, colons and percent signs are fine in ids.
    let r = s
        .post("/items", &json!({"id": "ünï cödé:100%", "big": 0}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let location = r.header("location").unwrap().to_string();
    let got = s.get(&location).await;
    assert_eq!(got.status, StatusCode::OK, "{location}");
    assert_eq!(got.json["id"], "ünï cödé:100%");
    // Numbers keep their value exactly (no float rounding).
    let body = r#"{"id": "num", "big": 12345678901234567890123, "small": -0.000001, "price": 19.99, "flag": true, "nothing": null, "list": [1, "two", {"three": 3}]}"#;
    let r = s
        .client()
        .post(s.url("/items"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    if !backend.keeps_any_number() {
        // The backend cannot keep this number exactly: it must refuse it
        // clearly, never round it silently.
        let detail = crate::harness::Response::read(r).await.assert_problem(422);
        assert!(detail.contains("12345678901234567890123"), "{detail}");
        let r = s
            .client()
            .post(s.url("/items"))
            .header("content-type", "application/json")
            .body(body.replace("12345678901234567890123", "1234567890123456789"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    } else {
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let got = s.get("/items/num").await;
    let text = got.text;
    let big = if backend.keeps_any_number() {
        "12345678901234567890123"
    } else {
        "1234567890123456789"
    };
    assert!(text.contains(big), "{text}");
    assert_eq!(got.json["price"].to_string(), "19.99");
    assert_eq!(got.json["flag"], true);
    assert_eq!(got.json["nothing"], Value::Null);
    assert_eq!(got.json["list"], json!([1, "two", {"three": 3}]));
}

pub async fn expired_items_are_hidden(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("exp");
    s.create(&json!({"id": "old", "userId": user, "expiresAt": "2001-01-01T00:00:00Z"}))
        .await;
    s.create(&json!({"id": "fresh", "userId": user, "expiresAt": "2999-01-01T00:00:00Z"}))
        .await;
    s.create(&json!({"id": "epoch", "userId": user, "expiresAt": 1}))
        .await;
    s.get("/items/old").await.assert_problem(404);
    s.get("/items/epoch").await.assert_problem(404);
    let fresh = s.get("/items/fresh").await;
    assert_eq!(fresh.json["expiresAt"], "2999-01-01T00:00:00Z");
    let list = s.get(&format!("/items?userId={user}&limit=1")).await;
    assert_eq!(
        ids(list.json["items"].as_array().unwrap()),
        ["fresh"],
        "{}",
        list.text
    );
    assert_eq!(list.json["next"], Value::Null, "{}", list.text);
    // An expired id is free again.
    s.create(&json!({"id": "old", "userId": user})).await;
    // Expiry can be removed.
    let r = s.patch("/items/fresh", &json!({"expiresAt": null})).await;
    assert!(r.json.get("expiresAt").is_none(), "{}", r.text);
}

pub async fn concurrent_creates_list_exactly_once(backend: Backend) {
    let s = std::sync::Arc::new(Server::start(backend));
    let user = unique("many");
    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let s = s.clone();
        let user = user.clone();
        tasks.spawn(async move {
            let r = s
                .post(
                    "/items",
                    &json!({"id": format!("c-{i:03}"), "userId": user}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create task");
    }
    for i in 0..100 {
        let r = s.get(&format!("/items/c-{i:03}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    for order in ["asc", "desc"] {
        let listed = list_all(&s, &format!("userId={user}&order={order}"), 7).await;
        let listed_ids = ids(&listed);
        let unique_ids: HashSet<_> = listed_ids.iter().collect();
        assert_eq!(listed_ids.len(), 100, "{order}: every item exactly once");
        assert_eq!(unique_ids.len(), 100, "{order}: no repeats");
    }
}

pub async fn paging_survives_concurrent_writes(backend: Backend) {
    let s = Server::start(backend);
    let user = unique("live");
    for i in 0..20 {
        s.create(&json!({"id": format!("l-{i:02}"), "userId": user}))
            .await;
    }
    // Page oldest-first while new items arrive at the end and others are
    // deleted: every item that existed throughout is seen exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let mut path = format!("/items?userId={user}&order=asc&limit=3");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.get(&path).await;
        seen.extend(ids(r.json["items"].as_array().unwrap()));
        s.create(&json!({"id": format!("new-{round:02}"), "userId": user}))
            .await;
        if round == 1 {
            s.delete("/items/l-19").await;
        }
        round += 1;
        match r.json["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(round < 100, "paging must end");
    }
    let unique_seen: HashSet<_> = seen.iter().collect();
    assert_eq!(unique_seen.len(), seen.len(), "no repeats: {seen:?}");
    for i in 0..19 {
        assert!(
            seen.contains(&format!("l-{i:02}")),
            "l-{i:02} skipped: {seen:?}"
        );
    }
}

pub async fn concurrent_if_match_exactly_one_wins(backend: Backend) {
    let s = std::sync::Arc::new(Server::start(backend));
    let item = s.create(&json!({"id": "race", "winner": null})).await;
    let etag = etag_of(&item);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let s = s.clone();
        let etag = etag.clone();
        tasks.spawn(async move {
            let r = s
                .send(
                    Method::PATCH,
                    "/items/race",
                    Some(&json!({"winner": i})),
                    &[("if-match", &etag)],
                )
                .await;
            (i, r.status)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, status) = done.expect("task");
        match status {
            StatusCode::OK => winners.push(i),
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one wins: {winners:?}");
    assert_eq!(s.get("/items/race").await.json["winner"], winners[0]);
}

pub async fn concurrent_likes_add_up(backend: Backend) {
    let s = std::sync::Arc::new(Server::start(backend));
    s.create(&json!({"id": "popular", "likes": 0})).await;
    let mut tasks = JoinSet::new();
    for _ in 0..500 {
        let s = s.clone();
        tasks.spawn(async move {
            let r = s
                .send(Method::POST, "/items/popular/likes", None, &[])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("like task");
    }
    assert_eq!(s.get("/items/popular").await.json["likes"], 500);
}

pub async fn survives_restart(backend: Backend) {
    let s = Server::start(backend);
    let item = s
        .create(&json!({"id": "durable", "name": "kept", "userId": "r"}))
        .await;
    s.post("/items/durable/likes", &json!({"by": 3})).await;
    let s = s.restart();
    let got = s.get("/items/durable").await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.json["name"], "kept");
    assert_eq!(got.json["likes"], 3);
    assert_eq!(got.json["createdAt"], item["createdAt"]);
    let list = s.get("/items?userId=r").await;
    assert_eq!(ids(list.json["items"].as_array().unwrap()), ["durable"]);
}

pub async fn keep_alive_and_request_log(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(backend);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Two requests on one connection: the second is answered too.
    for _ in 0..2 {
        conn.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = String::new();
        while !got.contains("\"ok\"") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut buf))
                .await
                .expect("answer on a kept-alive connection")
                .unwrap();
            assert!(n > 0, "connection closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
    // The request log is the server's, not the component's: only checked
    // where the server writes one (our host; not wasmtime serve, whose log
    // format is not ours).
    if backend.logs_requests() {
        let log = s.log();
        assert!(
            log.lines()
                .any(|l| l.contains("GET") && l.contains("/healthz") && l.contains("200")),
            "one log line per request with method, path and status:\n{log}"
        );
    }
}

pub async fn graceful_shutdown(backend: Backend) {
    let mut s = Server::start(backend);
    s.create(&json!({"id": "before-stop"})).await;
    let status = s.terminate();
    // Success for our host; a runtime that leaves SIGTERM to its default
    // action (wasmtime serve) must die by exactly that signal.
    backend.assert_sigterm_exit(status);
}

/// Generates one `#[tokio::test]` per conformance case for the backend
/// `RUNTIME, STORE, FIXTURE` (variants of [`crate::Runtime`],
/// [`crate::Store`] and [`crate::Fixture`]).
#[macro_export]
macro_rules! conformance_suite {
    ($runtime:ident, $store:ident, $fixture:ident) => {
        $crate::conformance_suite!(@cases $crate::Backend::new(
            $crate::Runtime::$runtime,
            $crate::Store::$store,
            $crate::Fixture::$fixture,
        );
            create_and_read,
            create_generates_an_id,
            create_twice_conflicts,
            missing_item_is_404,
            if_none_match_gives_304,
            put_creates_then_replaces,
            if_match_guards_writes,
            patch_merges,
            delete_then_gone,
            likes_increment,
            list_by_user_in_order_with_paging,
            list_by_status_newest_first,
            list_by_user_and_status,
            large_items_page_by_bytes,
            bad_list_requests_are_400,
            batch_puts_and_deletes,
            openapi_and_health,
            mounted_under_a_route_prefix,
            readiness_and_request_ids,
            protocol_errors,
            ids_and_numbers_round_trip,
            expired_items_are_hidden,
            concurrent_creates_list_exactly_once,
            paging_survives_concurrent_writes,
            concurrent_if_match_exactly_one_wins,
            concurrent_likes_add_up,
            survives_restart,
            keep_alive_and_request_log,
            graceful_shutdown,
        );
        $crate::conformance_suite!(@auth $crate::Backend::new(
            $crate::Runtime::$runtime,
            $crate::Store::$store,
            $crate::Fixture::$fixture,
        );
            auth_refuses_anonymous_and_forged_tokens,
            auth_keeps_users_apart,
            auth_misconfiguration_fails_closed,
        );
        $crate::conformance_suite!(@hostile $crate::Backend::new(
            $crate::Runtime::$runtime,
            $crate::Store::$store,
            $crate::Fixture::$fixture,
        );
            identifiers_have_one_spelling,
            expiry_stays_within_rfc_3339,
            attribute_counts_are_bounded_and_patches_linear,
            head_and_options,
        );
        $crate::conformance_suite!(@once $crate::Backend::new(
            $crate::Runtime::$runtime,
            $crate::Store::$store,
            $crate::Fixture::$fixture,
        );
            idempotency_key_applies_each_write_once,
            concurrent_repeats_of_a_keyed_like_apply_once,
            idempotency_keys_are_scoped_to_the_caller,
        );
    };
    (@once $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::idempotency_cases::$case($backend).await;
            }
        )*
    };
    (@hostile $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::hostile_cases::$case($backend).await;
            }
        )*
    };
    (@auth $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::auth_cases::$case($backend).await;
            }
        )*
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::cases::$case($backend).await;
            }
        )*
    };
}
