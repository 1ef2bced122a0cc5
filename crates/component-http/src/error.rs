//! What can go wrong on the wire: `sansio`'s [`TransportError`], sorted by
//! what a retry may do, shared with the native transport.

pub use sansio::{Retry, TransportError};

/// Why sending failed outside a component.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn not_in_component() -> TransportError {
    TransportError::Refused(
        "outgoing HTTP is only available inside a component (wasm32-wasip2)".into(),
    )
}
