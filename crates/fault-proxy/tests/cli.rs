//! The binary: its first stdout line, a faulted request, its stats on
//! SIGUSR1 (still running) and on SIGTERM.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use common::{Upstream, call, dynamodb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_proxies_and_prints_stats_on_sigterm() {
    let upstream = Upstream::start().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fault-proxy"))
        .args(["--upstream", &upstream.url(), "--backend", "dynamodb"])
        .args([
            "--rate",
            "1",
            "--seed",
            "7",
            "--only-writes",
            "--faults",
            "throttle",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first:?}"));
    let addr = url.parse().unwrap();

    let read = call(addr, &dynamodb("GetItem", "{}")).await.unwrap();
    let write = call(addr, &dynamodb("PutItem", "{}")).await.unwrap();
    assert_eq!((read.status, write.status), (201, 400));
    assert!(
        write.json()["__type"]
            .as_str()
            .unwrap()
            .ends_with("#ProvisionedThroughputExceededException")
    );

    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-USR1");
    let mut snapshot = String::new();
    stdout.read_line(&mut snapshot).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(snapshot.trim()).unwrap();
    assert_eq!(
        (snapshot["requests"].clone(), snapshot["forwarded"].clone()),
        (2.into(), 1.into())
    );
    // Still serving after the snapshot.
    let again = call(addr, &dynamodb("GetItem", "{}")).await.unwrap();
    assert_eq!(again.status, 201);

    signal("-TERM");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let stats: serde_json::Value = serde_json::from_str(rest.trim()).unwrap();
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["forwarded"], 2);
    assert_eq!(stats["injected"]["throttle"], 1);
    assert_eq!(upstream.count(), 2);
}
