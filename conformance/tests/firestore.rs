//! The conformance suite on the host's native Firestore store.

use conformance::Backend;

conformance::conformance_suite!(Backend::Firestore);
