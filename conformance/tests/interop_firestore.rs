//! The service and the seed's google-cloud-firestore code share one
//! collection (on the Firestore emulator): items the API writes are native
//! documents to the Python client, and documents it writes in the seed's
//! shape (`set` with an id, `add` with a generated one) are served by the
//! API.

use conformance::harness::{
    assert_guarded_rename, assert_python_types, ids, list_all, normalised_time, python, unique,
};
use conformance::{Backend, Fixture, Runtime, Server, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Our host's native Firestore store, on the Firestore emulator.
const NATIVE: Backend = Backend::new(Runtime::Host, Store::Firestore, Fixture::Local);

/// Runs one of the seed's Python calls (conformance/interop/firestore_client.py)
/// on this server's project; FIRESTORE_EMULATOR_HOST is inherited.
fn firestore(s: &Server, action: &str, argument: Value) -> Value {
    python(
        "firestore_client.py",
        &[s.namespace(), action, &argument.to_string()],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_by_the_api_are_native_documents() {
    let s = Server::start(NATIVE);
    let status = unique("active");
    let created = s
        .create(&json!({
            "id": "api-1", "name": "Made by the API", "description": "A great item",
            "likes": 5, "userId": "u1", "status": status,
            "price": 19.99, "tags": ["a", "b"], "size": {"w": 2}
        }))
        .await;

    let got = firestore(&s, "get", json!({"id": "api-1"}));
    assert_eq!(got["exists"], true, "{got}");
    let (fields, types) = (&got["fields"], &got["types"]);
    assert_eq!(normalised_time(&fields["createdAt"]), created["createdAt"]);
    assert_eq!(normalised_time(&fields["updatedAt"]), created["updatedAt"]);
    assert_eq!(fields["name"], "Made by the API");
    assert_eq!(fields["description"], "A great item");
    assert_eq!(fields["likes"], 5);
    assert_eq!(fields["userId"], "u1");
    assert_eq!(fields["status"], status.as_str());
    assert_eq!(fields["price"], 19.99);
    assert_eq!(fields["tags"], json!(["a", "b"]));
    assert_eq!(fields["size"], json!({"w": 2}));
    let shape = [
        ("createdAt", "DatetimeWithNanoseconds"),
        ("updatedAt", "DatetimeWithNanoseconds"),
        ("name", "str"),
        ("description", "str"),
        ("likes", "int"),
        ("userId", "str"),
        ("status", "str"),
        ("price", "float"),
        ("tags", "list"),
        ("size", "dict"),
    ];
    assert_python_types(
        types,
        &shape,
        "these fields and no others (the id is the document's, the version its updateTime)",
    );

    // A like through the API is an int to Python.
    s.post("/items/api-1/likes", &json!({})).await;
    let got = firestore(&s, "get", json!({"id": "api-1"}));
    assert_eq!(got["fields"]["likes"], 6);
    assert_eq!(got["types"]["likes"], "int");

    // The seed's list query (status ==, createdAt descending) sees the
    // API's items in the API's own order.
    s.create(&json!({"id": "api-2", "status": status})).await;
    s.create(&json!({"id": "api-3", "status": unique("draft")}))
        .await;
    let listed = firestore(&s, "list_status", json!({"status": status}));
    assert_eq!(listed["ids"], json!(["api-2", "api-1"]), "{listed}");
    let r = s.get(&format!("/items?status={status}&order=desc")).await;
    assert_eq!(ids(&r), ["api-2", "api-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_written_in_the_seed_shape_are_served() {
    let s = Server::start(NATIVE);
    let status = unique("active");
    let set = firestore(
        &s,
        "set_seed",
        json!({"id": "item-123", "status": status, "likes": 5}),
    );
    let added = firestore(
        &s,
        "add_seed",
        json!({"name": "Added", "description": "via add()", "status": status}),
    );
    let added_id = added["id"].as_str().expect("an id").to_string();
    let later = s
        .create(&json!({"id": "api-later", "status": status}))
        .await;

    let r = s.get("/items/item-123").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let item = r.json.clone();
    assert_eq!(item["id"], "item-123");
    assert_eq!(item["name"], "My Item");
    assert_eq!(item["description"], "A great item");
    assert_eq!(item["likes"], 5);
    assert_eq!(item["status"], status.as_str());
    assert_eq!(item["createdAt"], normalised_time(&set["createdAt"]));
    assert!(
        item.get("itemId").is_none(),
        "the seed's itemId field is the id: {item}"
    );
    let etag = r.header("etag").expect("an ETag").to_string();

    let r = s.get(&format!("/items/{added_id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], added_id.as_str());
    assert_eq!(r.json["name"], "Added");
    assert_eq!(r.json["description"], "via add()");
    assert_eq!(r.json["createdAt"], normalised_time(&added["createdAt"]));
    assert!(later["createdAt"].as_str() > r.json["createdAt"].as_str());

    // Listed by status, newest first, with the API's own item, in one
    // page or many; the seed's own query agrees.
    let newest_first = ["api-later", added_id.as_str(), "item-123"];
    let r = s.get(&format!("/items?status={status}")).await;
    assert_eq!(ids(&r), newest_first, "{}", r.text);
    assert_eq!(r.json["items"][2], item, "listed as read");
    let listed = firestore(&s, "list_status", json!({"status": status}));
    assert_eq!(listed["ids"], json!(newest_first));
    for limit in [1, 2] {
        let desc = list_all(&s, &format!("status={status}&order=desc"), limit).await;
        assert_eq!(desc, newest_first, "limit {limit}");
        let mut asc = list_all(&s, &format!("status={status}&order=asc"), limit).await;
        asc.reverse();
        assert_eq!(asc, newest_first, "limit {limit}");
    }

    // Likes work on both, and stay ints for Python.
    let r = s.post("/items/item-123/likes", &json!({"by": 2})).await;
    assert_eq!(r.json["likes"], 7, "{}", r.text);
    let r = s
        .post(&format!("/items/{added_id}/likes"), &json!({}))
        .await;
    assert_eq!(r.json["likes"], 1, "no likes yet counts from 0: {}", r.text);

    // PATCH, guarded by the ETag: the one before the like is stale.
    let current = s.get("/items/item-123").await;
    let current_etag = current.header("etag").expect("etag").to_string();
    let r = assert_guarded_rename(&s, "/items/item-123", &etag, &current_etag, &item).await;
    assert_eq!(r.json["description"], "A great item");
    let patched_etag = r.header("etag").expect("etag").to_string();
    let got = firestore(&s, "get", json!({"id": "item-123"}));
    let fields = &got["fields"];
    assert_eq!(fields["name"], "Renamed", "{got}");
    assert_eq!(fields["likes"], 7);
    assert_eq!(got["types"]["likes"], "int");
    assert_eq!(got["types"]["createdAt"], "DatetimeWithNanoseconds");
    assert_eq!(normalised_time(&fields["createdAt"]), item["createdAt"]);
    assert_eq!(
        fields["itemId"], "item-123",
        "a field the API does not show is kept"
    );

    // The seed's own update changes the ETag (the version is the
    // document's updateTime), and its delete removes the item.
    firestore(
        &s,
        "update_name",
        json!({"id": "item-123", "name": "From Python"}),
    );
    let r = s.get("/items/item-123").await;
    assert_eq!(r.json["name"], "From Python");
    assert_ne!(r.header("etag"), Some(patched_etag.as_str()));
    let r = s
        .patch_if_match(
            "/items/item-123",
            &json!({"name": "Lost update"}),
            &patched_etag,
        )
        .await;
    r.assert_problem(412);
    firestore(&s, "delete", json!({"id": "item-123"}));
    s.get("/items/item-123").await.assert_problem(404);
    let r = s.get(&format!("/items?status={status}")).await;
    assert_eq!(ids(&r), ["api-later", added_id.as_str()]);
}
