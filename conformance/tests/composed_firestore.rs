//! The conformance suite on the Firestore adapter component (composed with the api component; the host serves it with --store none).

conformance::conformance_suite!(HostComposed, Firestore, Local);
