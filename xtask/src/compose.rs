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

/// The interfaces the mirror composition wires by name.
const TYPES: &str = "edge-items:store/types@0.3.0";
const STORE: &str = "edge-items:store/store@0.3.0";
const SECONDARY_STORE: &str = "edge-items:store/secondary-store@0.3.0";
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.4";

/// Writes `api <- mirror <- {primary, secondary}` to `out`: `primary`'s
/// `store` export into the mirror's `store` import, `secondary`'s `store`
/// export into its `secondary-store` import (the two have the same shape),
/// the mirror's `store` into the api's. The WASI imports of all four are
/// left for the runtime. `wac plug` cannot name the second import, so the
/// graph is built by hand; the same as this wac file:
///
/// ```text
/// let primary = new edge-items:primary { ... };
/// let secondary = new edge-items:secondary { ... };
/// let mirror = new edge-items:mirror { types: primary.types, store: primary.store, secondary-store: secondary.store, ... };
/// let api = new edge-items:api { types: mirror.types, store: mirror.store, ... };
/// export api.incoming-handler;
/// ```
pub(crate) fn mirror(
    api: &Path,
    mirror: &Path,
    primary: &Path,
    secondary: &Path,
    out: &Path,
) -> Result<()> {
    let mut graph = CompositionGraph::new();
    let load = |graph: &mut CompositionGraph, name: &str, path: &Path| -> Result<_> {
        let package = Package::from_file(name, None, path, graph.types_mut())
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(graph.register_package(package)?)
    };
    let primary = load(&mut graph, "edge-items:primary", primary)?;
    let secondary = load(&mut graph, "edge-items:secondary", secondary)?;
    let mirror = load(&mut graph, "edge-items:mirror", mirror)?;
    let api = load(&mut graph, "edge-items:api", api)?;
    let primary = graph.instantiate(primary);
    let secondary = graph.instantiate(secondary);
    let mirror = graph.instantiate(mirror);
    let api = graph.instantiate(api);

    let types = graph.alias_instance_export(primary, TYPES)?;
    let store = graph.alias_instance_export(primary, STORE)?;
    let secondary_store = graph.alias_instance_export(secondary, STORE)?;
    graph.set_instantiation_argument(mirror, TYPES, types)?;
    graph.set_instantiation_argument(mirror, STORE, store)?;
    graph.set_instantiation_argument(mirror, SECONDARY_STORE, secondary_store)?;
    let mirrored_types = graph.alias_instance_export(mirror, TYPES)?;
    let mirrored = graph.alias_instance_export(mirror, STORE)?;
    graph.set_instantiation_argument(api, TYPES, mirrored_types)?;
    graph.set_instantiation_argument(api, STORE, mirrored)?;
    let handler = graph.alias_instance_export(api, INCOMING_HANDLER)?;
    graph.export(handler, INCOMING_HANDLER)?;
    let bytes = graph
        .encode(EncodeOptions::default())
        .context("composing the mirror")?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
