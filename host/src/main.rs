//! `edge-items`: the command line of the native host.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use host::limits::{Limits, parse_duration, parse_size, parse_timeout};
use host::metrics::Metrics;
use host::outgoing::Connections;
use host::runtime::{Runtime, RuntimeConfig};
use host::server::{Server, shutdown_signal};
use host::stores::{DynamoDbArgs, FirestoreArgs, StoreArgs};
use store_dynamodb::DynamoDbStore;
use store_firestore::FirestoreStore;
use tracing_subscriber::EnvFilter;

mod migrate_command;
mod reconcile_command;

/// Serves the edge-items HTTP API from its WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "edge-items", version)]
struct Cli {
    /// How log lines on stderr are written: `text` for people, `json` (one
    /// object per line, with the request's span and its `request_id`) for
    /// log pipelines. RUST_LOG picks what is logged.
    #[arg(
        long,
        global = true,
        env = "EDGE_ITEMS_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// The formats of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// tracing's human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API over HTTP/1.1 until SIGINT or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Create what a cloud backend needs (tables, indexes, TTL) and wait
    /// until it is ready. Safe to run again.
    #[command(subcommand)]
    Provision(ProvisionCommand),
    /// Copy every item from one store to another (any two of embedded,
    /// DynamoDB and Firestore), resumably, and compare them
    /// (docs/multi-cloud.md).
    Migrate(Box<migrate_command::MigrateArgs>),
    /// Make a mirror's secondary equal to its primary: drain the outbox,
    /// compare every item, repair the differences (docs/multi-cloud.md).
    Reconcile(Box<reconcile_command::ReconcileArgs>),
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise: a health check
    /// for images without curl (the Dockerfile's HEALTHCHECK).
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// The URL to GET (`http://` only), e.g. http://127.0.0.1:8080/readyz.
    url: String,

    /// How long connecting and the answer may take together.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = parse_timeout
    )]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum ProvisionCommand {
    /// The DynamoDB table with its byUser, byStatus and byUserStatus
    /// indexes (added to an existing table that lacks one) and TTL on
    /// expiresAt (credentials from the AWS_* variables). When byUserStatus
    /// had to be added, older items are then given its key (a Scan of the
    /// table and one write per such item).
    #[command(name = "dynamodb")]
    DynamoDb(ProvisionDynamoDbArgs),
    /// The Firestore composite indexes of firestore.indexes.json (created
    /// where missing, then awaited until READY) and the TTL policy on
    /// expiresAt, through the Firestore Admin API, with the same
    /// credentials as serving. Not for the emulator, which needs neither.
    #[command(name = "firestore")]
    Firestore(ProvisionFirestoreArgs),
}

#[derive(Debug, Args)]
struct ProvisionFirestoreArgs {
    #[command(flatten)]
    store: FirestoreArgs,
}

#[derive(Debug, Args)]
struct ProvisionDynamoDbArgs {
    #[command(flatten)]
    store: DynamoDbArgs,

    /// Give items written before byUserStatus existed its key even if the
    /// index was already there (for example after older instances kept
    /// writing during an upgrade). Safe to repeat: a second run finds
    /// nothing to do.
    #[arg(long)]
    backfill: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (`host:port`; port 0 picks a free port).
    #[arg(
        long,
        env = "EDGE_ITEMS_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: String,

    #[command(flatten)]
    store: StoreArgs,

    /// Where to serve Prometheus metrics (`GET /metrics`), apart from the
    /// API; off unless given. Keep it private: it tells how the service is
    /// used.
    #[arg(long, env = "EDGE_ITEMS_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<String>,

    /// Largest request body the API accepts, in bytes (larger ones get 413).
    #[arg(
        long,
        env = "EDGE_ITEMS_MAX_BODY_BYTES",
        value_name = "BYTES",
        default_value_t = 1_048_576
    )]
    max_body_bytes: u64,

    /// The api component to run.
    #[arg(
        long,
        env = "EDGE_ITEMS_COMPONENT",
        value_name = "WASM",
        default_value = "target/wasm32-wasip2/release/api.wasm"
    )]
    component: PathBuf,

    /// Where compiled components are cached [default: $XDG_CACHE_HOME/edge-items,
    /// else `cache/` beside the data file].
    #[arg(long, env = "EDGE_ITEMS_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// How the component's outgoing HTTP requests (an adapter's backend
    /// calls) are sent: over one pool of keep-alive connections, or with a
    /// new connection each (wasmtime's default).
    #[arg(
        long,
        env = "EDGE_ITEMS_OUTGOING_CONNECTIONS",
        value_enum,
        default_value_t = Connections::Pooled
    )]
    outgoing_connections: Connections,

    /// Environment for the component, as NAME=VALUE, or NAME to pass this
    /// process's value on (e.g. an adapter component's AWS_* settings).
    /// Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,

    /// Serve without authentication on an address other computers can
    /// reach. Without it, the host refuses to start there unless the
    /// component's ITEMS_AUTH (from `--env` or this process's environment)
    /// is `jwt`.
    #[arg(long, env = "EDGE_ITEMS_ALLOW_ANONYMOUS")]
    allow_anonymous: bool,

    /// Seconds to let requests in flight finish after SIGINT/SIGTERM.
    #[arg(
        long,
        env = "EDGE_ITEMS_SHUTDOWN_GRACE",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    shutdown_grace: u64,

    #[command(flatten)]
    limits: LimitArgs,
}

/// The bounds on each request's work (docs/SECURITY.md, "Limits").
/// Durations are seconds (`30`, `1.5`) or carry a unit (`30s`, `500ms`,
/// `2m`); sizes are bytes or carry a unit (`64KiB`, `256MiB`, `1GiB`).
#[derive(Debug, Args)]
struct LimitArgs {
    /// Time a client has to send a request head; also how long a kept-alive
    /// connection may stay idle.
    #[arg(
        long,
        env = "EDGE_ITEMS_HEADER_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_timeout
    )]
    header_timeout: Duration,

    /// Time from a request head to the end of its body (408 after it).
    #[arg(
        long,
        env = "EDGE_ITEMS_BODY_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_timeout
    )]
    body_timeout: Duration,

    /// Time from a request head to the response head (504 after it, and the
    /// request's instance is stopped).
    #[arg(
        long,
        env = "EDGE_ITEMS_REQUEST_TIMEOUT",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_timeout
    )]
    request_timeout: Duration,

    /// Time from the response head to its last byte; a client that does not
    /// read it by then is disconnected.
    #[arg(
        long,
        env = "EDGE_ITEMS_WRITE_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_timeout
    )]
    write_timeout: Duration,

    /// Requests served at once (one WebAssembly instance each).
    #[arg(
        long,
        env = "EDGE_ITEMS_MAX_INSTANCES",
        value_name = "N",
        default_value_t = host::runtime::DEFAULT_MAX_INSTANCES,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    max_instances: u32,

    /// How long a request may wait for a free instance (503 with
    /// Retry-After after it; 0 answers at once).
    #[arg(
        long,
        env = "EDGE_ITEMS_QUEUE_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    queue_timeout: Duration,

    /// Connections one client (an IPv4 address, an IPv6 /64) may keep open
    /// (429 and closed above it; 0: no cap).
    #[arg(
        long,
        env = "EDGE_ITEMS_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = host::limits::DEFAULT_MAX_CONNECTIONS_PER_IP
    )]
    max_connections_per_ip: usize,

    /// Estimated memory all request bodies in flight may cost together,
    /// charged 20 bytes per body byte (503 with Retry-After when full; 0:
    /// no budget).
    #[arg(
        long,
        env = "EDGE_ITEMS_MEMORY_BUDGET",
        value_name = "SIZE",
        default_value = "256MiB",
        value_parser = parse_size
    )]
    memory_budget: u64,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        let limits = &self.limits;
        Limits {
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            request_timeout: limits.request_timeout,
            write_timeout: limits.write_timeout,
            max_connections_per_ip: limits.max_connections_per_ip,
            memory_budget: limits.memory_budget,
            max_body_bytes: self.max_body_bytes,
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
            host::default_cache_dir(&self.store.data, xdg.as_deref())
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Provision(ProvisionCommand::DynamoDb(args)) => {
            runtime.block_on(provision_dynamodb(args))
        }
        Command::Provision(ProvisionCommand::Firestore(args)) => {
            runtime.block_on(provision_firestore(args))
        }
        Command::Probe(args) => runtime.block_on(probe(&args.url, args.timeout)),
        Command::Migrate(args) => runtime.block_on(migrate_command::migrate(*args)),
        Command::Reconcile(args) => runtime.block_on(reconcile_command::reconcile(*args)),
    }
}

/// What is logged without RUST_LOG: our own info lines; only warnings
/// from aws-config, whose info lines describe each credential provider
/// (key ids included) at every renewal.
const DEFAULT_LOG_FILTER: &str = "info,aws_config=warn,aws_runtime=warn,aws_smithy_runtime=warn";

/// Logs to stderr in `format`, filtered by RUST_LOG (default
/// [`DEFAULT_LOG_FILTER`]).
fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// `edge-items probe`: one GET over plain HTTP/1.1, Ok on 2xx.
async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "`{url}`: only http:// URLs can be probed"
    );
    let authority = uri
        .authority()
        .with_context(|| format!("`{url}` names no host"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((authority.host(), port))
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        let request = format!(
            "GET {target} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: edge-items-probe\r\nconnection: close\r\n\r\n"
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        // The status line is all we need.
        while !head.contains(&b'\n') && head.len() < 4096 {
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{url}: no answer within {timeout:?}"))??;
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let status = probe_status(line).with_context(|| format!("{url}: not an HTTP answer"))?;
    anyhow::ensure!((200..300).contains(&status), "{url}: {line}");
    Ok(())
}

/// The status code of an HTTP/1.x status line.
fn probe_status(line: &str) -> Option<u16> {
    let mut parts = line.split_ascii_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// The api component's authentication settings (jwt-auth), passed on from
/// this process's environment when `--env` does not set them, so that a
/// container's or unit's environment configures them as for any service.
const AUTH_SETTINGS: [&str; 5] = [
    jwt_auth::AUTH,
    jwt_auth::JWKS,
    jwt_auth::ISSUER,
    jwt_auth::AUDIENCE,
    jwt_auth::LEEWAY,
];

/// `--env` values: NAME=VALUE as given, NAME from this process; then the
/// authentication settings this process has and `--env` did not give.
fn guest_env(
    specs: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = specs
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            Some(_) => anyhow::bail!("--env `{spec}`: the name is empty"),
            None => lookup(spec)
                .map(|value| (spec.clone(), value))
                .with_context(|| format!("--env {spec}: this process has no such variable")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for name in AUTH_SETTINGS {
        if !env.iter().any(|(given, _)| given == name)
            && let Some(value) = lookup(name)
        {
            env.push((name.to_string(), value));
        }
    }
    Ok(env)
}

/// Refuses to serve anonymously where others can connect: the component
/// would let anyone read, overwrite and delete every item.
fn check_exposure(
    addr: std::net::SocketAddr,
    env: &[(String, String)],
    allow_anonymous: bool,
) -> anyhow::Result<()> {
    let auth = env
        .iter()
        .rev()
        .find(|(name, _)| name == jwt_auth::AUTH)
        .map(|(_, value)| value.trim().to_ascii_lowercase());
    let anonymous = matches!(auth.as_deref(), None | Some("" | "none"));
    if anonymous && !addr.ip().is_loopback() && !allow_anonymous {
        anyhow::bail!(
            "refusing to serve {addr} without authentication: anyone who can reach it could read, \
             change and delete every item. Set ITEMS_AUTH=jwt with ITEMS_JWT_JWKS, ITEMS_JWT_ISSUER \
             and ITEMS_JWT_AUDIENCE (docs/SECURITY.md), listen on a loopback address, or pass \
             --allow-anonymous if another layer authenticates callers"
        );
    }
    Ok(())
}

async fn provision_firestore(args: ProvisionFirestoreArgs) -> anyhow::Result<()> {
    let config = args.store.config().context("cannot configure Firestore")?;
    if matches!(config.endpoint, store_firestore::Endpoint::Emulator { .. }) {
        anyhow::bail!(
            "FIRESTORE_EMULATOR_HOST is set: the emulator needs no indexes or TTL policy, and does not implement the Admin API"
        );
    }
    let store = FirestoreStore::connect(config)
        .await
        .context("cannot configure Firestore")?;
    let collection = store.firestore().collection().to_string();
    let done = store
        .provision()
        .await
        .with_context(|| format!("cannot provision collection group {collection}"))?;
    let ttl = |group: &str, state: &str, requested: bool| {
        if requested {
            format!(
                "TTL on {group}.expiresAt requested ({state}; it becomes ACTIVE in the background)"
            )
        } else {
            format!("TTL on {group}.expiresAt {state}")
        }
    };
    let items_ttl = ttl(&collection, &done.ttl_state, done.ttl_requested);
    let records = store.firestore().records_collection();
    let records_ttl = ttl(records, &done.records_ttl_state, done.records_ttl_requested);
    println!(
        "collection group {collection} is ready ({} indexes created, {} already there, all READY; {items_ttl}; {records_ttl} (Idempotency-Key records))",
        done.created_indexes, done.existing_indexes
    );
    Ok(())
}

async fn provision_dynamodb(args: ProvisionDynamoDbArgs) -> anyhow::Result<()> {
    let config = args
        .store
        .config()
        .await
        .context("cannot configure DynamoDB")?;
    let table = config.table().to_string();
    let store = DynamoDbStore::new(config).context("cannot configure DynamoDB")?;
    let provisioned = store
        .provision()
        .await
        .with_context(|| format!("cannot provision table {table}"))?;
    let how = if provisioned.created_table {
        "created"
    } else {
        "already existed"
    };
    let added = if provisioned.added_indexes.is_empty() {
        String::new()
    } else {
        format!(", added index {}", provisioned.added_indexes.join(", "))
    };
    println!(
        "table {table} is ready ({how}{added}; indexes byUser, byStatus and byUserStatus active, TTL on expiresAt)"
    );
    if provisioned.needs_backfill() || args.backfill {
        let backfilled = store
            .backfill_user_status()
            .await
            .with_context(|| format!("cannot backfill __userStatus__ in table {table}; it is safe to run again with --backfill"))?;
        println!(
            "backfilled __userStatus__ on {} older items of {table} ({} skipped: changed meanwhile or not indexable)",
            backfilled.updated, backfilled.skipped
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Bind first, so that a taken port fails before seconds of compiling.
    let server = Server::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics = Arc::new(Metrics::new());
    let store = args
        .store
        .open(&metrics)
        .await
        .context("cannot open the item store")?;
    let admin = match &args.admin_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--admin-listen)"))?,
        ),
        None => None,
    };
    let env = guest_env(&args.env, |name| std::env::var(name).ok())?;
    check_exposure(server.local_addr()?, &env, args.allow_anonymous)?;
    let config = RuntimeConfig {
        component: args.component.clone(),
        cache_dir: Some(args.cache_dir()),
        max_body_bytes: args.max_body_bytes,
        env,
        max_instances: args.limits.max_instances,
        queue_timeout: args.limits.queue_timeout,
        instances_in_use: metrics.instances_in_use(),
        outgoing: args.outgoing_connections,
    };
    let limits = args.limits();
    tracing::info!(
        max_instances = config.max_instances,
        queue_timeout = ?config.queue_timeout,
        header_timeout = ?limits.header_timeout,
        body_timeout = ?limits.body_timeout,
        request_timeout = ?limits.request_timeout,
        write_timeout = ?limits.write_timeout,
        max_connections_per_ip = limits.max_connections_per_ip,
        memory_budget = limits.memory_budget,
        "limits"
    );
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(&config, store))
        .await
        .context("the start-up task failed")??;
    metrics.component_cache(runtime.origin());
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    let addr = server.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    if let Some(admin) = admin {
        let admin_addr = admin.local_addr()?;
        // Ends with the process; it holds no request state.
        tokio::spawn(host::metrics::serve_admin(
            admin,
            metrics.clone(),
            std::future::pending(),
        ));
        writeln!(stdout, "admin listening on http://{admin_addr}")?;
    }
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    let grace = Duration::from_secs(args.shutdown_grace);
    let server = server.with_metrics(metrics);
    if !server.run(Arc::new(runtime), limits, shutdown, grace).await {
        tracing::warn!("exiting with requests unfinished");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use host::stores::StoreKind;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["edge-items", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(args) => *args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_and_flags() {
        // Only meaningful when the EDGE_ITEMS_* variables are not set.
        if std::env::vars().any(|(k, _)| k.starts_with("EDGE_ITEMS_")) {
            return;
        }
        let args = serve(&[]);
        assert_eq!(args.listen, "127.0.0.1:8080");
        assert_eq!(args.store.kind, StoreKind::Embedded);
        assert_eq!(args.store.data, PathBuf::from(".data/items.db"));
        assert_eq!(args.max_body_bytes, 1_048_576);
        assert_eq!(
            args.component,
            PathBuf::from("target/wasm32-wasip2/release/api.wasm")
        );
        assert_eq!(args.cache_dir, None);

        let args = serve(&[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "embedded",
            "--data",
            "x/items.db",
            "--max-body-bytes",
            "10",
            "--component",
            "api.wasm",
            "--cache-dir",
            "c",
        ]);
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(args.store.data, PathBuf::from("x/items.db"));
        assert_eq!(args.max_body_bytes, 10);
        assert_eq!(args.component, PathBuf::from("api.wasm"));
        assert_eq!(args.cache_dir(), PathBuf::from("c"));
    }

    #[test]
    fn log_format_and_probe_arguments() {
        if std::env::var_os("EDGE_ITEMS_LOG_FORMAT").is_none() {
            let cli = Cli::try_parse_from(["edge-items", "serve"]).unwrap();
            assert_eq!(cli.log_format, LogFormat::Text);
        }
        let cli = Cli::try_parse_from(["edge-items", "serve", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["edge-items", "serve", "--log-format", "xml"]).is_err());
        let cli =
            Cli::try_parse_from(["edge-items", "probe", "http://127.0.0.1:1/readyz"]).unwrap();
        assert!(
            matches!(cli.command, Command::Probe(ProbeArgs { timeout, .. }) if timeout == Duration::from_secs(3))
        );
        assert_eq!(probe_status("HTTP/1.1 204 No Content"), Some(204));
        assert_eq!(probe_status("HTTP/1.0 503"), Some(503));
        assert_eq!(probe_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(probe_status(""), None);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--store", "dynamo"][..],
            &["--max-body-bytes", "-1"],
            &["--unknown"],
        ] {
            let parsed = Cli::try_parse_from(["edge-items", "serve"].iter().chain(bad));
            assert!(parsed.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limit_defaults_and_flags() {
        // Only meaningful when the EDGE_ITEMS_* variables are not set.
        if std::env::vars().any(|(k, _)| k.starts_with("EDGE_ITEMS_")) {
            return;
        }
        let args = serve(&[]);
        assert_eq!(args.limits(), Limits::default());
        assert_eq!(
            args.limits.max_instances,
            host::runtime::DEFAULT_MAX_INSTANCES
        );
        assert_eq!(
            args.limits.queue_timeout,
            host::runtime::DEFAULT_QUEUE_TIMEOUT
        );

        let args = serve(&[
            "--header-timeout",
            "10",
            "--body-timeout",
            "2.5s",
            "--request-timeout",
            "1m",
            "--write-timeout",
            "500ms",
            "--max-instances",
            "8",
            "--queue-timeout",
            "0",
            "--max-connections-per-ip",
            "16",
            "--memory-budget",
            "64MiB",
            "--max-body-bytes",
            "2048",
        ]);
        assert_eq!(
            args.limits(),
            Limits {
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_millis(2500),
                request_timeout: Duration::from_secs(60),
                write_timeout: Duration::from_millis(500),
                max_connections_per_ip: 16,
                memory_budget: 64 << 20,
                max_body_bytes: 2048,
            }
        );
        assert_eq!(args.limits.max_instances, 8);
        assert_eq!(args.limits.queue_timeout, Duration::ZERO);
    }

    #[test]
    fn bad_limits_are_refused() {
        for bad in [
            &["--body-timeout", "0"][..],
            &["--write-timeout", "-1s"],
            &["--request-timeout", "soon"],
            &["--queue-timeout", "1w"],
            &["--max-instances", "0"],
            &["--max-connections-per-ip", "-3"],
            &["--memory-budget", "1MB"],
        ] {
            let parsed = Cli::try_parse_from(["edge-items", "serve"].iter().chain(bad));
            assert!(parsed.is_err(), "{bad:?}");
        }
    }

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn auth_settings_reach_the_component_unless_env_overrides_them() {
        let process = [
            ("ITEMS_AUTH", "jwt"),
            ("ITEMS_JWT_ISSUER", "https://issuer.example"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let env = guest_env(
            &["ITEMS_AUTH=none".into(), "AWS_REGION".into()],
            lookup(&process),
        )
        .unwrap();
        assert_eq!(
            env,
            [
                ("ITEMS_AUTH".to_string(), "none".to_string()),
                ("AWS_REGION".into(), "eu-west-1".into()),
                ("ITEMS_JWT_ISSUER".into(), "https://issuer.example".into()),
            ]
        );
        assert!(guest_env(&["MISSING".into()], lookup(&process)).is_err());
        assert!(guest_env(&["=x".into()], lookup(&process)).is_err());
    }

    #[test]
    fn anonymous_serving_stays_on_loopback_unless_allowed() {
        let public: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let loopback: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6_loopback: std::net::SocketAddr = "[::1]:8080".parse().unwrap();
        let none = vec![("ITEMS_AUTH".to_string(), "none".to_string())];
        let jwt = vec![("ITEMS_AUTH".to_string(), "JWT".to_string())];
        assert!(check_exposure(loopback, &[], false).is_ok());
        assert!(check_exposure(v6_loopback, &none, false).is_ok());
        let refused = check_exposure(public, &[], false).unwrap_err().to_string();
        assert!(refused.contains("ITEMS_AUTH=jwt") && refused.contains("--allow-anonymous"));
        assert!(check_exposure(public, &none, false).is_err());
        assert!(check_exposure(public, &none, true).is_ok());
        assert!(check_exposure(public, &jwt, false).is_ok());
    }
}
