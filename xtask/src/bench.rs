//! `cargo xtask bench [ARGS..]`: the benchmark of BENCHMARKS.md. Builds
//! the host, the components and the baseline servers (benches/baselines,
//! a workspace of its own so that CI never builds the AWS SDK), installs
//! the test tools plus the seed's Python packages, checks for wrk, starts
//! DynamoDB Local and the Firestore emulator, then runs benches/bench.py
//! with ARGS (`--rounds`, `--seconds`, `--systems`, `--workloads`), which
//! starts every system, drives it and writes target/bench/report.md.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::{Phases, backends, build, cargo, host_binary, run_ok, status, tools};

/// The baseline servers' own workspace.
const BASELINES: &str = "benches/baselines/Cargo.toml";

pub(crate) fn run(root: &Path, args: &[String]) -> Result<ExitCode> {
    let mut phases = Phases::default();
    phases.time("build", || {
        build(root)?;
        build_fault_proxy()?;
        // Into the main target folder, so that shared crates build once.
        run_ok(
            cargo()
                .args(["build", "--release", "--manifest-path", BASELINES])
                .env("CARGO_TARGET_DIR", root.join("target")),
        )
    })?;
    let (tools, bench) = phases.time("tool installs", || {
        Ok((tools::ensure_all(root)?, tools::bench_tools(root)?))
    })?;
    let running = phases.time("backends start", || {
        backends::start_all(root, &tools.dynamodb_local)
    })?;
    let code = phases.time("bench", || script(root, &tools, &bench, &running, args));
    drop(running);
    phases.summary();
    code
}

/// CI's smoke run of the harness (`cargo xtask test` calls it while the
/// backends run): every system the main build makes answers every
/// workload, 2xx only, for a second each. The baselines are left out (the
/// AWS SDK would not fit CI's budget).
pub(crate) fn smoke(root: &Path, tools: &tools::Tools, running: &backends::Running) -> Result<()> {
    build_fault_proxy()?;
    let bench = tools::bench_tools(root)?;
    match script(root, tools, &bench, running, &["--smoke".to_string()])? {
        ExitCode::SUCCESS => Ok(()),
        _ => anyhow::bail!("the benchmark's smoke run failed (its output is above)"),
    }
}

/// The counting proxy bench.py puts in front of each backend (see
/// `FAULT_PROXY_BIN` below); only the benchmark needs its release build.
fn build_fault_proxy() -> Result<()> {
    run_ok(cargo().args(["build", "--release", "-p", "fault-proxy"]))
}

/// benches/bench.py ARGS, told where everything is.
fn script(
    root: &Path,
    tools: &tools::Tools,
    bench: &tools::BenchTools,
    running: &backends::Running,
    args: &[String],
) -> Result<ExitCode> {
    // The benchmark's venv: matplotlib for the plot.
    let mut script = Command::new(bench.venv.join("bin/python3"));
    script
        .arg(root.join("benches/bench.py"))
        .args(args)
        .envs(tools.env()?)
        .envs(running.env())
        .env("EDGE_ITEMS_BIN", host_binary(root))
        .env("FAULT_PROXY_BIN", root.join("target/release/fault-proxy"))
        .env("BENCH_VENV", &bench.venv)
        .env("BASELINES_BIN", root.join("target/release"))
        .env("WRK", &bench.wrk);
    status(&mut script)
}
