//! The conformance suite on the host's embedded single-file store.

use conformance::Backend;

conformance::conformance_suite!(Backend::Embedded);
