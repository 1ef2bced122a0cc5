//! The native host of the edge-items service: it runs the api component
//! (a `wasi:http/proxy`) under wasmtime, one fresh instance per request, and
//! serves the component's `edge-items:store/store` import from a native
//! [`item_store::ItemStore`] chosen at start-up.
//!
//! - [`stores`]: the backends and their flags; a new backend plugs in there.
//! - [`runtime`]: engine, compiled-component cache, per-request instances
//!   (a bounded number, with a bounded wait for one).
//! - [`server`]: HTTP/1.1 accept loop, request log, graceful shutdown, and
//!   the limits on each request's work: [`limits`] (the settings),
//!   [`admission`] (memory budget, connections per client), [`body`]
//!   (request bodies read ahead), [`write_deadline`], [`authority`] (Host),
//!   [`problem`] (the server's own answers).
//! - [`metrics`]: Prometheus metrics and the admin listener that serves them.
//! - request ids: checked or made per request (`item_model::request_id`),
//!   sent to the component, logged in the request's span, and returned.

pub mod admission;
pub mod authority;
pub mod body;
pub mod cache;
pub mod limits;
pub mod metrics;
pub mod outgoing;
pub mod problem;
pub mod runtime;
pub mod server;
pub mod stores;
pub mod write_deadline;

use std::path::{Path, PathBuf};

/// The compiled-component cache used when none is given:
/// `$XDG_CACHE_HOME/edge-items` if that is set, else `cache/` beside the
/// embedded store's data file.
pub fn default_cache_dir(data_file: &Path, xdg_cache_home: Option<&Path>) -> PathBuf {
    match xdg_cache_home.filter(|dir| dir.is_absolute()) {
        Some(dir) => dir.join("edge-items"),
        None => data_file
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join("cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_defaults() {
        let data = Path::new(".data/items.db");
        assert_eq!(default_cache_dir(data, None), Path::new(".data/cache"));
        assert_eq!(
            default_cache_dir(data, Some(Path::new("/home/u/.cache"))),
            Path::new("/home/u/.cache/edge-items")
        );
        // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
        assert_eq!(
            default_cache_dir(data, Some(Path::new("rel"))),
            Path::new(".data/cache")
        );
        assert_eq!(
            default_cache_dir(Path::new("items.db"), None),
            Path::new("cache")
        );
    }
}
