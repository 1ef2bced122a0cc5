//! Compiled-component cache: compiling the api component takes seconds,
//! loading the machine code wasmtime produced for it last time takes
//! milliseconds.
//!
//! An entry is `<dir>/<key>.cwasm` with key = sha256 of the component's
//! bytes, the wasmtime version and the engine's compatibility fingerprint
//! (target, compiler flags, tunables, features), so a changed component or
//! configuration simply misses. Entries are written to a temporary file and
//! renamed into place, so a reader never sees half an entry.

use std::hash::Hash;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release the workspace pins (Cargo.toml); part of the key
/// so that an upgrade never reads an older release's code.
const WASMTIME_VERSION: &str = "48.0.8";

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from a cache entry.
    Cache,
    /// Compiled now (and stored, if a cache directory was given).
    Compiled,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file could not be read.
    #[error("cannot read the component {path}: {source}")]
    Read {
        /// The component file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not a component wasmtime can compile.
    #[error("cannot compile the component {path}: {cause:#}")]
    Compile {
        /// The component file.
        path: PathBuf,
        /// wasmtime's reason.
        cause: wasmtime::Error,
    },
}

/// Feeds a `Hash` value into SHA-256, to fold the engine fingerprint into
/// the key.
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The cache key of `wasm` compiled by `engine`.
pub fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.0.update(b"edge-items component cache v1\0");
    hasher.0.update(WASMTIME_VERSION.as_bytes());
    hasher.0.update(b"\0");
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(b"\0");
    hasher.0.update(wasm);
    hex(&hasher.0.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Loads the component at `path`, from `cache_dir` when it holds an entry
/// for it, else by compiling it (and then storing an entry). Cache trouble
/// is logged and never fatal.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> Result<(Component, Origin), LoadError> {
    let wasm = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let entry = cache_dir.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, &wasm))));
    if let Some(entry) = entry.as_deref().filter(|e| e.is_file()) {
        // SAFETY: `deserialize_file` runs the machine code in the file, so
        // the file must come from `Component::serialize` of a compatible
        // engine and must not be tampered with. Entries are only ever
        // written by `store_entry` below from `Component::serialize`, under
        // a name that includes the engine's compatibility fingerprint, and
        // renamed into place whole; the directory is ours (created 0700)
        // and whoever can write to it could as well replace this binary.
        // wasmtime additionally checks the header and refuses an entry
        // from an incompatible engine, which we then recompile over.
        match unsafe { Component::deserialize_file(engine, entry) } {
            Ok(component) => {
                tracing::debug!(entry = %entry.display(), "loaded the compiled component from the cache");
                return Ok((component, Origin::Cache));
            }
            Err(e) => tracing::warn!(
                entry = %entry.display(),
                error = %format!("{e:#}"),
                "ignoring an unusable cache entry; recompiling"
            ),
        }
    }
    let started = std::time::Instant::now();
    let component = Component::from_binary(engine, &wasm).map_err(|cause| LoadError::Compile {
        path: path.to_path_buf(),
        cause,
    })?;
    tracing::info!(
        component = %path.display(),
        seconds = started.elapsed().as_secs_f32(),
        "compiled the component"
    );
    if let (Some(dir), Some(entry)) = (cache_dir, entry.as_deref()) {
        match component.serialize() {
            Ok(bytes) => match store_entry(dir, entry, &bytes) {
                Ok(()) => {
                    tracing::debug!(entry = %entry.display(), "cached the compiled component")
                }
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot write the component cache; continuing without it"
                ),
            },
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot serialise the component"),
        }
    }
    Ok((component, Origin::Compiled))
}

/// Writes `bytes` to `entry` atomically: a temporary file in the same
/// directory, flushed, then renamed over the entry.
fn store_entry(dir: &Path, entry: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".cwasm-")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(entry).map_err(|e| e.error)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    }

    #[test]
    fn round_trips_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("empty.wasm");
        std::fs::write(&wasm, EMPTY_COMPONENT).unwrap();
        let cache = dir.path().join("cache").join("nested");
        let engine = engine();

        let (_, origin) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let key = cache_key(&engine, EMPTY_COMPONENT);
        let entry = cache.join(format!("{key}.cwasm"));
        assert!(entry.is_file());
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left behind: {names:?}");

        let (_, origin) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert_eq!(origin, Origin::Cache);

        // A damaged entry is replaced, not trusted.
        std::fs::write(&entry, b"not machine code").unwrap();
        let (_, origin) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert_eq!(origin, Origin::Cache);

        // Without a cache directory it just compiles.
        let (_, origin) = load_component(&engine, &wasm, None).unwrap();
        assert_eq!(origin, Origin::Compiled);
    }

    #[test]
    fn key_depends_on_bytes_and_engine() {
        let engine = engine();
        let key = cache_key(&engine, EMPTY_COMPONENT);
        assert_eq!(key.len(), 64);
        assert_eq!(key, cache_key(&engine, EMPTY_COMPONENT));
        assert_ne!(key, cache_key(&engine, b"\0asm\x0d\x00\x01\x00\x00"));
        let mut other = wasmtime::Config::new();
        other.wasm_component_model(true);
        other.cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&other).unwrap();
        assert_ne!(key, cache_key(&other, EMPTY_COMPONENT));
    }

    #[test]
    fn a_missing_component_is_a_clear_error() {
        let err = load_component(&engine(), Path::new("does/not/exist.wasm"), None).unwrap_err();
        assert!(err.to_string().contains("does/not/exist.wasm"), "{err}");
    }
}
