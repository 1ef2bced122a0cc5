//! The conformance suite on the host's native Firestore store.

conformance::conformance_suite!(Host, Firestore, Local);
