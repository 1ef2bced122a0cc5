//! Helpers shared by the tests that talk to real DynamoDB servers.

#![allow(dead_code)]

use std::time::SystemTime;

use dynamodb_protocol::{Config, Credentials, DynamoDb};
use rand::Rng;
use sansio::Protocol;
use store_dynamodb::{DynamoDbConfig, DynamoDbStore};

/// DynamoDB Local's endpoint, from the test harness.
pub(crate) fn endpoint() -> String {
    std::env::var("EDGE_ITEMS_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "EDGE_ITEMS_DYNAMODB_ENDPOINT is not set: start DynamoDB Local, see \
             ../shared/BACKENDS.md or cargo xtask test"
        )
    })
}

/// A table name no other test uses, so tests run in parallel.
pub(crate) fn fresh_table() -> String {
    format!("items-test-{:016x}", rand::rng().random::<u64>())
}

/// DynamoDB Local accepts any credentials (it checks no signature).
pub(crate) fn local_config(table: &str) -> DynamoDbConfig {
    let credentials = Credentials::new("AKIDEXAMPLE", "local-secret", None).expect("credentials");
    DynamoDbConfig::new("us-east-1", credentials)
        .and_then(|c| c.with_endpoint(&endpoint()))
        .and_then(|c| c.with_table(table))
        .expect("config")
}

/// A store on a new, provisioned table of DynamoDB Local.
pub(crate) async fn fresh_store() -> (DynamoDbStore, String) {
    let table = fresh_table();
    let store = DynamoDbStore::new(local_config(&table)).expect("store");
    let provisioned = store.provision().await.expect("provision");
    assert!(provisioned.created_table);
    (store, table)
}

/// The status and body of a raw call's answer.
pub(crate) struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends one raw DynamoDB call, as another client (boto3) would.
pub(crate) async fn raw_call(
    endpoint: &str,
    table: &str,
    credentials: Credentials,
    action: &'static str,
    body: serde_json::Value,
) -> RawResponse {
    let config = Config::new("us-east-1", credentials)
        .and_then(|c| c.with_endpoint(endpoint))
        .and_then(|c| c.with_table(table))
        .expect("config");
    let db = DynamoDb::new(config);
    let mut request = db.call(action, body, true).expect("call").request;
    db.authorize(&mut request, SystemTime::now()).expect("sign");
    let request = reqwest::Request::try_from(request).expect("request");
    let response = reqwest::Client::new().execute(request).await.expect("send");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body").to_vec();
    RawResponse { status, body }
}

/// Creates a table as provisioning made it before the `byUserStatus`
/// index existed (`byUser` and `byStatus` only), as another client would.
pub(crate) async fn create_older_table(endpoint: &str, table: &str, credentials: Credentials) {
    let index = |name: &str, key: &str| {
        serde_json::json!({"IndexName": name,
               "KeySchema": [{"AttributeName": key, "KeyType": "HASH"},
                             {"AttributeName": "createdAt", "KeyType": "RANGE"}],
               "Projection": {"ProjectionType": "ALL"}})
    };
    let definitions: Vec<_> = ["itemId", "userId", "status", "createdAt"]
        .iter()
        .map(|name| serde_json::json!({"AttributeName": name, "AttributeType": "S"}))
        .collect();
    let body = serde_json::json!({
        "TableName": table,
        "AttributeDefinitions": definitions,
        "KeySchema": [{"AttributeName": "itemId", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [index("byUser", "userId"), index("byStatus", "status")],
    });
    let r = raw_call(endpoint, table, credentials, "CreateTable", body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
