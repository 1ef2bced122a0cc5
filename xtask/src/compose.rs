//! Pre-composed components: the api component with a storage adapter
//! plugged into its item-store import, for runtimes without component
//! dependencies (`wasmtime serve`, SpinKube, our host with `--store none`).
//! The same composition as `wac plug`, through the wac-graph library, so
//! no extra tool needs installing.

use std::path::Path;

use anyhow::{Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// Writes `api` with `adapter` plugged into its imports to `out`.
pub(crate) fn plug(api: &Path, adapter: &Path, out: &Path) -> Result<()> {
    let mut graph = CompositionGraph::new();
    let socket = Package::from_file("edge-items:api", None, api, graph.types_mut())
        .with_context(|| format!("reading {}", api.display()))?;
    let socket = graph.register_package(socket)?;
    let plug = Package::from_file("edge-items:adapter", None, adapter, graph.types_mut())
        .with_context(|| format!("reading {}", adapter.display()))?;
    let plug = graph.register_package(plug)?;
    wac_graph::plug(&mut graph, vec![plug], socket)
        .with_context(|| format!("plugging {} into {}", adapter.display(), api.display()))?;
    let bytes = graph.encode(EncodeOptions::default())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
