//! The code wasmtime generates for `wit/item-store.wit`, walled off here:
//! the rest of the crate names it only through this module.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "edge-items:store/store-client",
    // Store calls do IO, so the host side is async; to the guest they
    // remain ordinary blocking calls.
    imports: { default: async },
});

pub(crate) use edge_items::store::store::Host as StoreHost;
pub(crate) use edge_items::store::types as wit;
