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
    let code = phases.time("bench", || {
        let mut script = Command::new("python3");
        script
            .arg(root.join("benches/bench.py"))
            .args(args)
            .envs(tools.env()?)
            .envs(running.env())
            .env("EDGE_ITEMS_BIN", host_binary(root))
            .env("BENCH_VENV", &bench.venv)
            .env("BASELINES_BIN", root.join("target/release"))
            .env("WRK", &bench.wrk);
        status(&mut script)
    });
    drop(running);
    phases.summary();
    code
}
