//! The conformance suite on the mirror adapter component: api <- mirror <-
//! {Firestore adapter, DynamoDB adapter} (target/components/api-mirror.wasm),
//! served by our host with --store none.

conformance::conformance_suite!(HostComposed, Mirror, Local);
