//! The conformance suite on the host's mirror store: the Firestore emulator
//! mirrored onto DynamoDB Local (`--store mirror`).

conformance::conformance_suite!(Host, Mirror, Local);
