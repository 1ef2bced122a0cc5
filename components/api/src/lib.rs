//! The items CRUD API as a WASI 0.2 component.
//!
//! It exports `wasi:http/incoming-handler` and imports only
//! `edge-items:store/store` (plus plain WASI), so the same `.wasm` runs under
//! `wasmtime serve`, Spin and our own host; whoever runs it supplies the
//! store. Configuration: `EDGE_ITEMS_MAX_BODY_BYTES` (formerly
//! `ITEMS_MAX_BODY_BYTES`) and the `ITEMS_AUTH` / `ITEMS_JWT_*` settings from the
//! environment (docs/configuration.md).
//!
//! Where things are:
//! - `mount`: the prefix the app is mounted at under Spin (pure)
//! - `router`: method + path -> route (pure)
//! - `handlers`: one function per route
//! - `body`, `query`, `conditional`: request parsing and validation (pure)
//! - `problem`, `response`: error and response shapes (pure)
//! - `http`: the wasi:http edge (body limit, writing responses)
//! - `store`: the imported store, in item_model types
//!
//! `openapi.json` (served at `GET /openapi.json`) documents the behaviour;
//! `docs/http-api.md` is the contract.

pub mod auth;
pub mod body;
pub mod conditional;
pub mod handlers;
pub mod http;
pub mod idempotency;
pub mod mount;
pub mod problem;
pub mod query;
pub mod response;
pub mod router;
mod store;

#[cfg(test)]
mod openapi_tests;

// Natively (for `cargo test`) the export's symbol name, which contains
// `:` and `@`, cannot be linked into a shared library, so the entry point
// exists only in the wasm build; everything it calls is tested natively.
#[cfg(target_arch = "wasm32")]
mod component {
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::http::types::{IncomingRequest, ResponseOutparam};

    use crate::{handlers, http};

    struct Api;

    impl Guest for Api {
        fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
            let request = http::Request::new(request);
            let mut response = handlers::handle(&request);
            if crate::store::served_by_secondary() {
                // A mirror answered from its secondary: the data may lag
                // the primary's (docs/multi-cloud.md).
                response = response.with_header(item_model::SERVED_BY_HEADER, "secondary");
            }
            let head = request.method == crate::router::Method::Head;
            http::send(response, response_out, head);
        }
    }

    wasip2::http::proxy::export!(Api);
}
