//! The project's build steps, in Rust so they run wherever cargo does.
//!
//! ```text
//! cargo xtask build            components (wasm32-wasip2) and the host, release
//! cargo xtask build-components the components only (spin.toml's build command)
//! cargo xtask serve [ARGS..]   build, then `edge-items serve ARGS..` (embedded store by default)
//! cargo xtask test             build, install the test tools into target/tools, start the
//!                              local backends, run every test, stop them
//! cargo xtask test ARGS..      the same, but only `cargo test --release ARGS..`
//!                              (e.g. `-p conformance --test embedded`)
//! cargo xtask lint             cargo fmt --check, clippy -D warnings (native and wasm),
//!                              Spectral on the OpenAPI document, cfn-lint on the
//!                              CloudFormation template (each installed into target/tools),
//!                              the Spin manifests and SpinApp against their schemas
//! cargo xtask fuzz [SECONDS]   run every cargo-fuzz target of fuzz/ for SECONDS each
//!                              (default 60; `cargo xtask fuzz 600` for a long run)
//! cargo xtask tools            install the test tools into target/tools (`test` does it
//!                              first) and print their environment (for tests by hand)
//! cargo xtask backends         start the local backends and wait (for running tests by hand)
//! cargo xtask bench [ARGS..]   the benchmark of BENCHMARKS.md: every system side by side
//!                              on DynamoDB Local, the Firestore emulator and the embedded
//!                              store (benches/bench.py ARGS: --rounds, --seconds, --systems,
//!                              --workloads); report in target/bench/report.md
//! ```

mod backends;
mod bench;
mod compose;
mod fuzz;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The guest and adapter components, built for wasm32-wasip2. Each also
/// compiles natively, where `cargo xtask test` runs its unit tests (a
/// `cdylib`-only crate runs them too; an `rlib` is needed only to use the
/// crate from another).
const COMPONENTS: &[&str] = &[
    "api",
    "dynamodb-adapter",
    "firestore-adapter",
    "spin-sqlite-adapter",
    "mirror-adapter",
];
/// Adapters that also get a Spin flavour (target/components/NAME-spin.wasm),
/// whose configuration comes from Spin variables before the environment
/// (component-http's `spin-variables` feature).
const SPIN_FLAVOURS: &[&str] = &["dynamodb-adapter", "firestore-adapter"];
/// Pre-composed components (target/components/NAME.wasm): api + adapter;
/// and api-mirror.wasm, api + mirror + two adapters ([`compose::mirror`]).
const COMPOSED: &[(&str, &str)] = &[
    ("api-dynamodb", "dynamodb_adapter"),
    ("api-firestore", "firestore_adapter"),
];
const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match command.as_str() {
        "build" => {
            build(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        "build-components" => {
            build_components(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        "serve" => {
            build(&root)?;
            let mut host = Command::new(host_binary(&root));
            host.arg("serve").args(&rest);
            status(&mut host)
        }
        "test" => test(&root, &rest),
        "bench" => bench::run(&root, &rest),
        "lint" => lint(&root),
        "fuzz" => {
            let seconds = match rest.first() {
                None => fuzz::DEFAULT_SECONDS,
                Some(text) => text
                    .parse()
                    .with_context(|| format!("SECONDS must be a whole number, not `{text}`"))?,
            };
            fuzz::run_all(&root, seconds)?;
            Ok(ExitCode::SUCCESS)
        }
        "tools" => {
            let tools = tools::ensure_all(&root)?;
            for line in tools.shell_exports() {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        "backends" => {
            let running = backends::start_all(&root, &tools::dynamodb_local(&root)?)?;
            for (key, value) in running.env() {
                println!("export {key}={value}");
            }
            eprintln!("backends are running; press Ctrl-C to stop them");
            loop {
                std::thread::park();
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask build | build-components | serve [ARGS..] | test [ARGS..] | lint | fuzz [SECONDS] | tools | backends | bench [ARGS..]"
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// `cargo xtask test`: every test with everything it needs, each phase
/// timed. Without ARGS, the workspace's tests and then the components'
/// unit tests natively, then a short fuzz run ([`fuzz_phase`]); with ARGS,
/// only `cargo test --release ARGS`.
fn test(root: &Path, args: &[String]) -> Result<ExitCode> {
    let mut phases = Phases::default();
    phases.time("build", || build(root))?;
    let tools = phases.time("tool installs", || tools::ensure_all(root))?;
    let running = phases.time("backends start", || {
        backends::start_all(root, &tools.dynamodb_local)
    })?;
    let env: Vec<_> = tools
        .env()?
        .into_iter()
        .chain(running.env().into_iter().map(|(k, v)| (k.into(), v.into())))
        .chain([
            ("EDGE_ITEMS_BIN".into(), host_binary(root).into()),
            (
                "EDGE_ITEMS_API_WASM".into(),
                component_path(root, "api").into(),
            ),
        ])
        .collect();
    let runs: Vec<Vec<String>> = if args.is_empty() {
        // --no-fail-fast: one failing test binary must not hide the others'.
        let whole = |packages: Vec<String>| [vec!["--no-fail-fast".to_string()], packages].concat();
        vec![
            whole([vec!["--workspace".to_string()], component_excludes()].concat()),
            whole(component_packages()),
        ]
    } else {
        vec![args.to_vec()]
    };
    let result = phases.time("tests", || {
        // Every run, even after a failing one, so one run shows every failure.
        let mut code = ExitCode::SUCCESS;
        for run in &runs {
            let mut test = cargo();
            test.args(["test", "--release"])
                .args(run)
                .envs(env.iter().cloned());
            let status = status(&mut test)?;
            if status != ExitCode::SUCCESS {
                code = status;
            }
        }
        Ok(code)
    });
    // The benchmark harness, briefly, on the same backends (so it cannot rot).
    let smoked = if args.is_empty() {
        phases.time("bench smoke", || bench::smoke(root, &tools, &running))
    } else {
        Ok(())
    };
    drop(running);
    let fuzzed = if args.is_empty() {
        phases.time("fuzz", || fuzz_phase(root))
    } else {
        Ok(())
    };
    phases.summary();
    let code = result?;
    smoked?;
    fuzzed?;
    Ok(code)
}

/// The OpenAPI document Spectral lints (rules in .spectral.yaml).
const OPENAPI: &str = "components/api/openapi.json";
/// The CloudFormation templates cfn-lint checks.
const CFN_TEMPLATES: &[&str] = &["deploy/aws/items-table.yaml"];

/// `cargo xtask lint`, the CI lint phase: every step runs, even after a
/// failing one (so one run shows every finding), each timed; it fails if
/// any step did.
fn lint(root: &Path) -> Result<ExitCode> {
    let mut phases = Phases::default();
    let mut failed = Vec::new();
    let mut check = |phases: &mut Phases, name: &'static str, f: &mut dyn FnMut() -> Result<()>| {
        if let Err(e) = phases.time(name, f) {
            eprintln!("xtask: {name}: {e:#}");
            failed.push(name);
        }
    };
    check(&mut phases, "rustfmt", &mut || {
        ensure_lint_components()?;
        run_ok(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    check(&mut phases, "clippy native", &mut || {
        run_ok(cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "api",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    check(&mut phases, "clippy wasm", &mut || {
        run_ok(
            cargo()
                .args(["clippy", "--target", WASM_TARGET, "--all-targets"])
                .args(component_packages())
                .args(["--", "-D", "warnings"]),
        )?;
        // The Spin flavour's code, compiled only with its feature.
        run_ok(cargo().args([
            "clippy",
            "--target",
            WASM_TARGET,
            "-p",
            "component-http",
            "--features",
            "spin-variables",
            "--",
            "-D",
            "warnings",
        ]))
    });
    let tools = phases.time("lint tool installs", || tools::lint_tools(root));
    match &tools {
        Ok(tools) => {
            check(&mut phases, "spectral", &mut || {
                run_ok(
                    Command::new(&tools.spectral)
                        .args(["lint", "--fail-severity=warn", "--ruleset"])
                        .arg(root.join(".spectral.yaml"))
                        .arg(OPENAPI),
                )
            });
            check(&mut phases, "cfn-lint", &mut || {
                run_ok(Command::new(&tools.cfn_lint).args(CFN_TEMPLATES))
            });
            // The Spin manifests and deploy/spinapp.yaml against their schemas.
            check(&mut phases, "manifest schemas", &mut || {
                run_ok(Command::new(&tools.python).arg(root.join("xtask/validate_manifests.py")))
            });
        }
        Err(e) => {
            eprintln!("xtask: Spectral, cfn-lint and the manifest schemas did not run: {e:#}");
            failed.push("lint tool installs");
        }
    }
    phases.summary();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("lint failed: {}", failed.join(", "))
    }
}

/// Seconds per fuzz target in `cargo xtask test`.
const TEST_FUZZ_SECONDS: u64 = 10;

/// The fuzz phase of `cargo xtask test`: every target for
/// [`TEST_FUZZ_SECONDS`], from its seeds and what earlier runs on this
/// machine found. Short, to fit the CI budget (about a minute of fuzzing,
/// and a few minutes to build the targets the first time); a long run is
/// `cargo xtask fuzz 600`.
fn fuzz_phase(root: &Path) -> Result<()> {
    fuzz::run_all(root, TEST_FUZZ_SECONDS)
}

/// The time each phase of a command took, printed as it ends and again
/// together at the end.
#[derive(Default)]
struct Phases {
    done: Vec<(&'static str, f64)>,
}

impl Phases {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let result = f();
        let seconds = start.elapsed().as_secs_f64();
        let outcome = if result.is_ok() {
            "took"
        } else {
            "failed after"
        };
        eprintln!("xtask: {name} {outcome} {seconds:.1} s");
        self.done.push((name, seconds));
        result
    }

    fn summary(&self) {
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(name, seconds)| format!("{name} {seconds:.1} s"))
            .collect();
        eprintln!("xtask: phases: {}", parts.join(", "));
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `--exclude` arguments that keep the wasm-only packages out of native builds.
fn component_excludes() -> Vec<String> {
    COMPONENTS
        .iter()
        .flat_map(|c| ["--exclude".to_string(), c.to_string()])
        .collect()
}

fn component_packages() -> Vec<String> {
    COMPONENTS
        .iter()
        .flat_map(|c| ["-p".to_string(), c.to_string()])
        .collect()
}

/// Where `cargo build --target wasm32-wasip2 --release` leaves a component.
pub fn component_path(root: &Path, name: &str) -> PathBuf {
    root.join("target")
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{name}.wasm"))
}

fn host_binary(root: &Path) -> PathBuf {
    root.join("target/release/edge-items")
}

/// Where `cargo xtask build` leaves a pre-composed component.
pub fn composed_path(root: &Path, name: &str) -> PathBuf {
    root.join("target/components").join(format!("{name}.wasm"))
}

fn build(root: &Path) -> Result<()> {
    build_components(root)?;
    run_ok(cargo().args(["build", "--release", "-p", "host"]))?;
    Ok(())
}

/// The components, their Spin flavours and the pre-composed components.
fn build_components(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    run_ok(
        cargo()
            .args(["build", "--release", "--target", WASM_TARGET])
            .args(component_packages()),
    )?;
    build_spin_flavours(root)?;
    let api = component_path(root, "api");
    for (name, adapter) in COMPOSED {
        let out = composed_path(root, name);
        compose::plug(&api, &component_path(root, adapter), &out)?;
        eprintln!("xtask: composed {}", out.display());
    }
    // The mirror: Firestore mirrored onto DynamoDB (this way round, every
    // item the primary takes the secondary can hold).
    let out = composed_path(root, "api-mirror");
    compose::mirror(
        &api,
        &component_path(root, "mirror_adapter"),
        &component_path(root, "firestore_adapter"),
        &component_path(root, "dynamodb_adapter"),
        &out,
    )?;
    eprintln!("xtask: composed {}", out.display());
    Ok(())
}

/// Builds the adapters with `spin-variables` in a target dir of their own
/// (the same crates with another feature set would otherwise overwrite the
/// default flavours, which must stay free of Spin imports) and copies them
/// to target/components/NAME-spin.wasm, where spin.dynamodb.toml and
/// spin.firestore.toml take them.
fn build_spin_flavours(root: &Path) -> Result<()> {
    let target_dir = root.join("target/spin");
    let mut command = cargo();
    command
        .args(["build", "--release", "--target", WASM_TARGET])
        .args(["--features", "component-http/spin-variables"])
        .arg("--target-dir")
        .arg(&target_dir);
    for adapter in SPIN_FLAVOURS {
        command.args(["-p", adapter]);
    }
    run_ok(&mut command)?;
    for adapter in SPIN_FLAVOURS {
        let built = target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", adapter.replace('-', "_")));
        let out = root
            .join("target/components")
            .join(format!("{adapter}-spin.wasm"));
        std::fs::create_dir_all(root.join("target/components"))?;
        std::fs::copy(&built, &out)
            .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
        eprintln!("xtask: Spin flavour {}", out.display());
    }
    Ok(())
}

/// rust-toolchain.toml lists clippy and rustfmt, but an older rustup only
/// installs them with the toolchain, not for a toolchain already present.
fn ensure_lint_components() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()
        .context("running rustup")?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> = ["clippy", "rustfmt"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run_ok(
        Command::new("rustup")
            .args(["component", "add"])
            .args(missing),
    )
}

/// rust-toolchain.toml lists the target, but an older rustup only installs
/// it with the toolchain, not for a toolchain already present.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run_ok(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn status(command: &mut Command) -> Result<ExitCode> {
    let status = command
        .status()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn run_ok(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
