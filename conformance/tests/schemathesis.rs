//! A schema-driven client against the real host: schemathesis reads the
//! served `/openapi.json`, generates requests for every operation (valid
//! ones, invalid ones, and sequences that follow the document's links) and
//! checks every answer against the document. Any finding fails the test:
//! a 5xx, a response whose body, status, content type or headers the
//! document does not describe, or an invalid request that was accepted.
//!
//! Bounded: [`MAX_EXAMPLES`] cases per operation and phase, one worker, a
//! fixed seed (a failure replays with the same seed), about 20 s. The
//! checks that a document cannot satisfy for this API are left out:
//! `positive_data_acceptance` (JSON Schema cannot say "NFC, no format
//! characters" or "userId, status or both", so schema-valid requests are
//! rightly refused) and the authentication checks (this server is
//! anonymous on loopback).
//!
//! schemathesis comes from conformance/interop/requirements.txt, which
//! `cargo xtask test` installs into target/tools/venv and puts on PATH.

use std::process::Command;

use conformance::harness::{Backend, Fixture, Runtime, Server, Store};

/// Cases per operation and phase.
const MAX_EXAMPLES: &str = "30";
/// The seed of the generated cases, so that a finding reproduces.
const SEED: &str = "20260208";
const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,\
    content_type_conformance,response_headers_conformance,negative_data_rejection";

#[test]
fn generated_requests_get_the_answers_the_openapi_document_describes() {
    let server = Server::start(Backend::new(Runtime::Host, Store::Embedded, Fixture::Local));
    // Its files (.hypothesis/, any report) go to a folder of its own.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new("schemathesis")
        .arg("run")
        .arg(format!("{}/openapi.json", server.base))
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        // A slow 2-core machine is not a finding.
        .args(["--suppress-health-check", "too_slow"])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run schemathesis ({e}); it is pinned in conformance/interop/requirements.txt, \
                 which `cargo xtask test` installs into target/tools/venv (by hand: \
                 `cargo xtask tools`, then `. target/tools/venv/bin/activate`)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis reported findings ({}):\n{text}\n--- server log ---\n{}",
        output.status,
        server.log()
    );
    // What it did, for the test log.
    for line in text.lines().filter(|l| l.contains("generated")) {
        eprintln!("schemathesis: {}", line.trim());
    }
}
