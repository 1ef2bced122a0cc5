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

/// What each write costs in backend requests, without and with a key (no
/// faults, no contention), counted at a proxy: writes without a key cost
/// what they cost before keys existed, and a keyed write is two requests
/// (read the key's record with the item, then one atomic write).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backend_requests_per_write() {
    // Without a key, in the order of `chaos::request_costs`: create, put
    // under If-Match, patch under If-Match, like, batch of one, delete.
    let expected = [
        (Store::DynamoDb, [1, 2, 1, 1, 1, 1]),
        (Store::Firestore, [1, 2, 2, 2, 1, 2]),
    ];
    for (store, without_key) in expected {
        let costs = chaos::request_costs(Backend::new(Runtime::Host, store, Fixture::Local)).await;
        let plain: Vec<u64> = costs.iter().map(|(_, plain, _)| *plain).collect();
        assert_eq!(plain, without_key, "{store:?} without a key: {costs:?}");
        for (operation, _, keyed) in costs {
            assert_eq!(keyed, 2, "{store:?} {operation} with a key");
        }
    }
}
