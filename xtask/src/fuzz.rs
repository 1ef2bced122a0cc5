//! `cargo xtask fuzz [SECONDS]`: every cargo-fuzz target of fuzz/ (one per
//! file in fuzz/fuzz_targets) for SECONDS each, on the nightly toolchain
//! (libFuzzer's instrumentation needs it).
//!
//! Each target starts from its seed corpus in fuzz/corpus/TARGET (read
//! only, committed) and keeps what it finds in target/fuzz-corpus/TARGET,
//! so that a later run goes on from there. A crash (a panic, a failed
//! assertion, an input slower than [`INPUT_TIMEOUT_SECS`] or over
//! [`RSS_LIMIT_MB`]) fails the run; libFuzzer saves the input under
//! fuzz/artifacts/TARGET/, and the line printed says how to replay it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::tools;

/// Seconds per target when `cargo xtask fuzz` is given none.
pub(crate) const DEFAULT_SECONDS: u64 = 60;
/// One input that takes longer than this is a finding: every target does
/// bounded work per input.
const INPUT_TIMEOUT_SECS: u64 = 10;
/// Memory one fuzzing process may use (libFuzzer's default, stated).
const RSS_LIMIT_MB: u64 = 2048;
/// Lines of a failed target's log shown: from the panic (or libFuzzer's
/// own error: a timeout, out of memory) on.
const FINDING_LINES: usize = 12;
/// The fuzz targets are built without a sanitizer: the code they reach is
/// safe Rust (no `unsafe` in the crates fuzzed), so AddressSanitizer would
/// only slow them down; debug assertions (and with them overflow checks)
/// are on, so an arithmetic overflow is a crash too.
const BUILD_FLAGS: [&str; 3] = ["--sanitizer", "none", "--debug-assertions"];

/// The fuzz targets: the files of fuzz/fuzz_targets, by name.
pub(crate) fn targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_string()))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

/// Builds every target, then runs each for `seconds`; fails on the first
/// crash (after the other targets have run, so one run reports them all).
pub(crate) fn run_all(root: &Path, seconds: u64) -> Result<()> {
    let cargo_fuzz = tools::cargo_fuzz(root)?;
    ensure_nightly()?;
    let start = Instant::now();
    let mut build = fuzz_command(&cargo_fuzz, root);
    build.args(["build"]).args(BUILD_FLAGS);
    crate::run_ok(&mut build).context("building the fuzz targets")?;
    eprintln!(
        "xtask: fuzz targets built in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut crashed = Vec::new();
    for target in targets(root)? {
        if let Err(e) = run_one(&cargo_fuzz, root, &target, seconds) {
            eprintln!("xtask: {e:#}");
            crashed.push(target);
        }
    }
    if !crashed.is_empty() {
        bail!("fuzzing found crashes in: {}", crashed.join(", "));
    }
    Ok(())
}

/// cargo-fuzz on nightly, with the workspace's target directory.
fn fuzz_command(cargo_fuzz: &Path, root: &Path) -> Command {
    let mut command = Command::new(cargo_fuzz);
    // cargo-fuzz runs `cargo` from PATH, rustup's proxy, which takes the
    // toolchain from this variable before rust-toolchain.toml.
    command
        .arg("fuzz")
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .current_dir(root);
    // The workspace's target directory (fuzz/ is a workspace of its own,
    // whose default would be fuzz/target).
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        command.env("CARGO_TARGET_DIR", root.join("target"));
    }
    command
}

fn run_one(cargo_fuzz: &Path, root: &Path, target: &str, seconds: u64) -> Result<()> {
    let found = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&found)?;
    let seeds = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    let started = SystemTime::now();
    let start = Instant::now();
    let mut run = fuzz_command(cargo_fuzz, root);
    run.args(["run"])
        .args(BUILD_FLAGS)
        .arg(target)
        // The first folder receives what the fuzzer finds; the seeds are
        // only read.
        .arg(&found)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg("-print_final_stats=1");
    // libFuzzer reports every new input; that goes to a log of its own,
    // and its end is shown when the target fails.
    let logs = root.join("target/fuzz-logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    run.stdout(log.try_clone()?).stderr(log);
    let status = run
        .status()
        .with_context(|| format!("starting cargo-fuzz for {target}"))?;
    let outcome = if status.success() {
        "no crash"
    } else {
        "CRASH"
    };
    eprintln!(
        "xtask: fuzz {target}: {outcome} after {:.1} s (log: {})",
        start.elapsed().as_secs_f64(),
        shown(root, &log_path)
    );
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    for line in finding(&text) {
        eprintln!("  {line}");
    }
    let saved = newest_since(&artifacts, started);
    match saved {
        Some(input) => bail!(
            "fuzz target {target} crashed; the input is saved as {} \
             (replay: cargo +nightly fuzz run {} {target} {})",
            shown(root, &input),
            BUILD_FLAGS.join(" "),
            shown(root, &input),
        ),
        None => bail!(
            "fuzz target {target} failed ({status}) without saving an input; see its output above"
        ),
    }
}

/// What a failed run's log says went wrong: [`FINDING_LINES`] lines from
/// the first panic or libFuzzer error, else its last lines.
fn finding(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))
        .unwrap_or(lines.len().saturating_sub(FINDING_LINES));
    lines[start..].iter().take(FINDING_LINES).copied().collect()
}

/// The newest file in `dir` written since `since`.
fn newest_since(dir: &Path, since: SystemTime) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(modified, _)| *modified >= since)
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// libFuzzer's instrumentation (`-Zsanitizer`, sancov passes) needs a
/// nightly toolchain beside the pinned one.
fn ensure_nightly() -> Result<()> {
    let works = Command::new("rustc")
        .arg("--version")
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .output()
        .is_ok_and(|out| out.status.success());
    if !works {
        bail!(
            "fuzzing needs a nightly toolchain beside the pinned one: \
             rustup toolchain install nightly --profile minimal"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_starts_at_the_panic() {
        let log = "INFO: seed\n#2 NEW cov\nthread '<unnamed>' panicked at x.rs:1:1:\nboom\n";
        assert_eq!(
            finding(log),
            ["thread '<unnamed>' panicked at x.rs:1:1:", "boom"]
        );
        assert_eq!(finding("a\nb"), ["a", "b"]);
    }

    #[test]
    fn every_target_has_a_seed_corpus_and_a_bin() {
        let root = crate::workspace_root();
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        for target in targets(&root).unwrap() {
            let seeds = root.join("fuzz/corpus").join(&target);
            let count = std::fs::read_dir(&seeds)
                .map(|d| d.count())
                .unwrap_or_default();
            assert!(count > 0, "{} has no seeds", seeds.display());
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "fuzz/Cargo.toml has no [[bin]] {target}"
            );
        }
    }
}
