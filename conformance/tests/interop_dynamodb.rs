//! The service and the seed's boto3 code share one DynamoDB table (on
//! DynamoDB Local): items the API writes read naturally with boto3, and
//! items boto3 writes in the seed's shape are served by the API.

use conformance::harness::{
    assert_guarded_rename, assert_python_types, list_all, normalised_time, python, unique,
};
use conformance::{Backend, Fixture, Runtime, Server, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Our host's native DynamoDB store, on DynamoDB Local.
const NATIVE: Backend = Backend::new(Runtime::Host, Store::DynamoDb, Fixture::Local);

/// Runs one of the seed's boto3 calls (conformance/interop/dynamodb_client.py)
/// on this server's table.
fn boto3(s: &Server, action: &str, argument: Value) -> Value {
    let endpoint = std::env::var("EDGE_ITEMS_DYNAMODB_ENDPOINT").expect("checked by the harness");
    python(
        "dynamodb_client.py",
        &[&endpoint, s.namespace(), action, &argument.to_string()],
        &[
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_by_the_api_read_naturally_with_boto3() {
    let s = Server::start(NATIVE);
    let user = unique("user");
    let created = s
        .create(&json!({
            "id": "api-1", "name": "Made by the API", "description": "A great item",
            "likes": 5, "userId": user, "status": "active",
            "price": 19.99, "tags": ["a", "b"], "size": {"w": 2}
        }))
        .await;

    let got = boto3(&s, "get", json!({"itemId": "api-1"}));
    let (item, types) = (&got["item"], &got["types"]);
    assert_eq!(item["itemId"], "api-1", "{got}");
    assert_eq!(item["name"], "Made by the API");
    assert_eq!(item["description"], "A great item");
    assert_eq!(item["createdAt"], created["createdAt"], "ISO 8601 text");
    assert_eq!(item["updatedAt"], created["updatedAt"]);
    assert_eq!(item["likes"], 5);
    assert_eq!(item["userId"], user.as_str());
    assert_eq!(item["status"], "active");
    assert_eq!(item["price"], "19.99", "exact, not a float");
    assert_eq!(item["tags"], json!(["a", "b"]));
    assert_eq!(item["size"], json!({"w": 2}));
    assert_eq!(
        item["version"].to_string(),
        created["version"].as_str().expect("version"),
        "the ETag's version is a number attribute"
    );
    let shape = [
        ("itemId", "str"),
        ("name", "str"),
        ("description", "str"),
        ("createdAt", "str"),
        ("updatedAt", "str"),
        ("userId", "str"),
        ("status", "str"),
        ("likes", "Decimal"),
        ("price", "Decimal"),
        ("version", "Decimal"),
        ("tags", "list"),
        ("size", "dict"),
        // The byUserStatus index key (docs/aws.md), on items with both.
        ("__userStatus__", "str"),
    ];
    assert_python_types(types, &shape, "these attributes and no others (no `id`)");

    // A like through the API is a number boto3 reads back.
    let r = s.post("/items/api-1/likes", &json!({"by": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = boto3(&s, "get", json!({"itemId": "api-1"}));
    assert_eq!(got["item"]["likes"], 7);
    assert_eq!(got["types"]["likes"], "Decimal");

    // The seed's Query by userId (on the byUser index) finds API items.
    s.create(&json!({"id": "api-2", "userId": user})).await;
    s.create(&json!({"id": "other", "userId": unique("other")}))
        .await;
    let found = boto3(&s, "query_user", json!({"userId": user}));
    let mut ids: Vec<_> = found["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["itemId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["api-1", "api-2"], "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_with_boto3_in_the_seed_shape_are_served() {
    let s = Server::start(NATIVE);
    let user = unique("user");
    let put = boto3(
        &s,
        "put_seed",
        json!({"itemId": "item-123", "userId": user, "likes": 5}),
    );
    // Exactly the seed's four attributes, nothing else.
    let bare = boto3(&s, "put_seed", json!({"itemId": "seed-bare"}));

    let r = s.get("/items/item-123").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let item = r.json.clone();
    assert_eq!(item["id"], "item-123");
    assert_eq!(item["name"], "My Item");
    assert_eq!(item["description"], "A great item");
    assert_eq!(item["likes"], 5);
    assert_eq!(item["userId"], user.as_str());
    assert_eq!(
        item["createdAt"],
        normalised_time(&put["item"]["createdAt"])
    );
    assert_eq!(item["updatedAt"], item["createdAt"]);
    assert!(item.get("itemId").is_none(), "the key is the id: {item}");
    let etag = r.header("etag").expect("an ETag").to_string();

    let r = s.get("/items/seed-bare").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json["createdAt"],
        normalised_time(&bare["item"]["createdAt"])
    );
    let r = s.post("/items/seed-bare/likes", &json!({})).await;
    assert_eq!(r.json["likes"], 1, "no likes yet counts from 0: {}", r.text);

    // Its id is taken.
    s.post("/items", &json!({"id": "item-123"}))
        .await
        .assert_problem(409);

    // Listed by user with the API's own items, in time order, one page
    // at a time in both directions.
    let later = s.create(&json!({"id": "api-later", "userId": user})).await;
    assert!(later["createdAt"].as_str() > item["createdAt"].as_str());
    let query = format!("userId={user}");
    let r = s.get(&format!("/items?{query}")).await;
    let listed: Vec<_> = r.json["items"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{}", r.text);
    assert_eq!(listed[1], item, "listed as read");
    for (order, expected) in [
        ("desc", ["api-later", "item-123"]),
        ("asc", ["item-123", "api-later"]),
    ] {
        for limit in [1, 2, 5] {
            let ids = list_all(&s, &format!("{query}&order={order}"), limit).await;
            assert_eq!(ids, expected, "{order}, limit {limit}");
        }
    }

    // Likes and PATCH work on it, and boto3 sees the result.
    let r = s.post("/items/item-123/likes", &json!({"by": 2})).await;
    assert_eq!(r.json["likes"], 7, "{}", r.text);
    let etag_after_like = r.header("etag").expect("etag").to_string();
    assert_ne!(etag_after_like, etag);
    let r = assert_guarded_rename(&s, "/items/item-123", &etag, &etag_after_like, &item).await;
    assert_eq!(r.json["description"], "A great item");
    assert_eq!(r.json["likes"], 7);
    let got = boto3(&s, "get", json!({"itemId": "item-123"}));
    assert_eq!(got["item"]["name"], "Renamed", "{got}");
    assert_eq!(got["item"]["description"], "A great item");
    assert_eq!(got["item"]["likes"], 7);
    assert_eq!(got["types"]["likes"], "Decimal");
    assert_eq!(got["types"]["createdAt"], "str");

    // The seed's own update and delete are seen by the API.
    boto3(
        &s,
        "update_name",
        json!({"itemId": "item-123", "name": "From boto3"}),
    );
    assert_eq!(s.get("/items/item-123").await.json["name"], "From boto3");
    boto3(&s, "delete", json!({"itemId": "item-123"}));
    s.get("/items/item-123").await.assert_problem(404);
    assert_eq!(list_all(&s, &query, 5).await, ["api-later"]);
}
