//! `fault-proxy`: the library's proxy from the command line, for manual
//! chaos runs. Prints `listening on http://ADDR` as its first stdout line
//! (as `edge-items serve` does, for the scripts that wait for it), logs to
//! stderr, and prints its stats as one JSON line on SIGINT or SIGTERM, and
//! on SIGUSR1 without stopping (the benchmark counts backend requests per
//! API operation from two such lines).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fault_proxy::{Backend, Fault, FaultProxy, Schedule, Settings};
use tracing_subscriber::EnvFilter;

/// A fault-injecting HTTP/1.1 reverse proxy for DynamoDB Local or the
/// Firestore emulator, on a seeded, reproducible schedule. Durations are
/// seconds (`30`, `1.5`) or carry a unit (`30s`, `500ms`, `2m`).
#[derive(Debug, Parser)]
#[command(name = "fault-proxy", version)]
struct Cli {
    /// Where to listen (port 0: a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Where to forward: http://host:port.
    #[arg(long, value_name = "URL")]
    upstream: String,

    /// The upstream's protocol: the shape of injected errors, and what a
    /// write is (`dynamodb` or `firestore`).
    #[arg(long, value_parser = |text: &str| text.parse::<Backend>())]
    backend: Backend,

    /// Share of eligible requests that get a fault, 0 to 1.
    #[arg(long, default_value_t = 0.2, value_parser = parse_rate)]
    rate: f64,

    /// Seeds the schedule: the same seed and order of requests give the
    /// same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Only writes get faults (DynamoDB PutItem, UpdateItem, DeleteItem,
    /// TransactWriteItems, BatchWriteItem; Firestore :commit, :batchWrite,
    /// PATCH, DELETE, create).
    #[arg(long)]
    only_writes: bool,

    /// The fault kinds to draw from, as KIND or KIND=WEIGHT, comma-separated
    /// (server-error, unavailable, throttle, reset-before-forwarding,
    /// reset-after-forwarding, latency, hang); default: all, equally.
    #[arg(long, value_name = "KINDS", value_delimiter = ',', value_parser = parse_kind)]
    faults: Vec<(Fault, u32)>,

    /// How long the latency fault holds an answer back.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    latency: Duration,

    /// How long the hang fault keeps a connection open unanswered.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    hang: Duration,

    /// How long the upstream may take to answer (504 after it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    forward_timeout: Duration,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut schedule = Schedule::new(cli.seed, cli.rate);
    if !cli.faults.is_empty() {
        schedule = schedule.with_kinds(cli.faults.clone());
    }
    if cli.only_writes {
        schedule = schedule.only_writes();
    }
    let settings = Settings {
        listen: cli.listen,
        latency: cli.latency,
        hang: cli.hang,
        forward_timeout: cli.forward_timeout,
        ..Settings::default()
    };
    // Both before the first line, so that a signal sent as soon as it is
    // read finds its handler (SIGUSR1's default would end the process).
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    let mut snapshots = stats_signal().context("cannot install the signal handlers")?;
    let proxy = FaultProxy::start(&cli.upstream, cli.backend, schedule.clone(), settings)
        .await
        .context("cannot start the proxy")?;
    print_line(&format!("listening on {}", proxy.url()))?;
    tracing::info!(
        upstream = %cli.upstream,
        backend = %cli.backend,
        seed = schedule.seed,
        rate = schedule.rate,
        kinds = ?schedule.kinds,
        only = ?schedule.only,
        "proxying"
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = snapshots.recv() => print_line(&serde_json::to_string(&proxy.stats())?)?,
        }
    }
    let stats = serde_json::to_string(&proxy.stats())?;
    tracing::info!(%stats, "stopping");
    print_line(&stats)?;
    Ok(())
}

/// One line on stdout, flushed at once: the scripts that read it wait.
fn print_line(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

/// A message on every SIGUSR1: print the stats so far.
#[cfg(unix)]
fn stats_signal() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut user1 = signal(SignalKind::user_defined1())?;
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while user1.recv().await.is_some() {
            if sender.send(()).await.is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

/// No SIGUSR1 here: a closed channel, whose `select!` branch is disabled.
#[cfg(not(unix))]
fn stats_signal() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    let (_, receiver) = tokio::sync::mpsc::channel(1);
    Ok(receiver)
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{text}` is not a rate between 0 and 1")),
    }
}

fn parse_kind(text: &str) -> Result<(Fault, u32), String> {
    let (name, weight) = match text.split_once('=') {
        Some((name, weight)) => {
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{weight}` is not a weight (a whole number)"))?;
            (name, weight)
        }
        None => (text, 1),
    };
    Ok((name.parse::<Fault>().map_err(|e| e.to_string())?, weight))
}

/// A duration in the grammar of every setting of this project
/// ([`item_model::duration::parse`]: `30`, `1.5`, `500ms`, `2m`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    item_model::duration::parse(text).ok_or_else(|| {
        format!("`{text}` is not a duration: write seconds (`30`, `1.5`, `30s`), `500ms` or `2m`")
    })
}

/// A duration as [`parse_duration`], but more than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "a timeout of zero would fail every request; give more than `{text}`"
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["fault-proxy"].iter().chain(args))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_full_form() {
        let cli = parse(&[
            "--upstream",
            "http://127.0.0.1:8000",
            "--backend",
            "dynamodb",
        ])
        .unwrap();
        assert_eq!(cli.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!((cli.rate, cli.seed, cli.only_writes), (0.2, 0, false));
        assert!(cli.faults.is_empty());
        assert_eq!(cli.latency, Duration::from_millis(200));
        assert_eq!(cli.hang, Duration::from_secs(30));

        let cli = parse(&[
            "--listen",
            "127.0.0.1:9000",
            "--upstream",
            "http://127.0.0.1:8080",
            "--backend",
            "firestore",
            "--rate",
            "0.5",
            "--seed",
            "7",
            "--only-writes",
            "--faults",
            "reset-after-forwarding=3,throttle",
            "--latency",
            "1.5",
            "--hang",
            "2m",
        ])
        .unwrap();
        assert_eq!(cli.backend, Backend::Firestore);
        assert_eq!((cli.rate, cli.seed, cli.only_writes), (0.5, 7, true));
        assert_eq!(
            cli.faults,
            [(Fault::ResetAfterForwarding, 3), (Fault::Throttle, 1)]
        );
        assert_eq!(cli.latency, Duration::from_millis(1500));
        assert_eq!(cli.hang, Duration::from_secs(120));
    }

    #[test]
    fn bad_values_are_refused() {
        let base = ["--upstream", "http://127.0.0.1:8000", "--backend"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(with(&["sqlite"]).is_err());
        assert!(with(&["dynamodb", "--rate", "1.5"]).is_err());
        assert!(with(&["dynamodb", "--faults", "explode"]).is_err());
        assert!(with(&["dynamodb", "--faults", "hang=-1"]).is_err());
        assert!(with(&["dynamodb", "--latency", "-1s"]).is_err());
        assert!(with(&["dynamodb", "--forward-timeout", "0"]).is_err());
        assert!(with(&["dynamodb"]).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "ms", "1e3", "inf", "-1", "1.2.3", "."] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
