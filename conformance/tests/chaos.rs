//! The chaos run (docs/RELIABILITY.md): our host on DynamoDB Local and the
//! Firestore emulator, natively and through the composed adapter
//! components, with 20% of backend requests faulted by `fault-proxy`.
//! `EDGE_ITEMS_CHAOS_OPS` sets the operations per run (default 2000).

use conformance::{Backend, Fixture, Runtime, Store, chaos};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_native_dynamodb() {
    chaos::run(Backend::new(Runtime::Host, Store::DynamoDb, Fixture::Local)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_native_firestore() {
    chaos::run(Backend::new(
        Runtime::Host,
        Store::Firestore,
        Fixture::Local,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_composed_dynamodb() {
    chaos::run(Backend::new(
        Runtime::HostComposed,
        Store::DynamoDb,
        Fixture::Local,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_composed_firestore() {
    chaos::run(Backend::new(
        Runtime::HostComposed,
        Store::Firestore,
        Fixture::Local,
    ))
    .await;
}
