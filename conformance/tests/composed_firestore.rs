//! The conformance suite on the Firestore adapter component (composed with the api component; the host serves it with --store none).

use conformance::Backend;

conformance::conformance_suite!(Backend::ComposedFirestore);
