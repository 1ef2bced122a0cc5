//! The conformance suite on the host's embedded single-file store.

conformance::conformance_suite!(Host, Embedded, Local);
