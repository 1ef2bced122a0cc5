//! The wasmtime side: one engine and one pre-linked component for the whole
//! process, and a fresh store and instance for every request, as
//! `wasmtime serve` does. A request can then never see another's memory,
//! and a guest that traps only fails its own request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use item_store::ItemStore;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;
use tracing::Instrument;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cache::{self, LoadError, Origin};
use crate::outgoing::{Connections, OutgoingClient};
use crate::server::{Deadlines, HandleError};
use item_store::{ItemStoreHost, ItemStoreView};

/// Requests served at once by default; the pooling allocator reserves
/// slots for this many instances, and further requests wait for a slot.
pub const DEFAULT_MAX_INSTANCES: u32 = 500;
/// How long a request waits for a free instance by default before it is
/// answered 503: long enough to ride out a burst, short enough that a
/// client is not left hanging while the server is saturated.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Linear memory one instance may grow to.
const MAX_MEMORY_BYTES: usize = 256 << 20;
/// Bytes of each linear memory (and of each table) that a slot keeps
/// resident between requests, reset in place: a request of the api touches
/// well under 1 MiB. Resident memory after a burst of N concurrent requests
/// stays at most N x memories per component x this, until the slots are reused.
const KEEP_RESIDENT_MEMORY_BYTES: usize = 2 << 20;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// Core instances, memories and tables a component may contain. A Rust
/// component has a handful of core instances (the program plus import
/// shims) and one memory; the largest composition shipped, api-mirror.wasm
/// (api, mirror and two adapters), has four of each component. The pool
/// holds that much for every instance: memories are address space only
/// until used.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// How often the epoch ticks; a running guest yields to the executor on
/// every tick, so it never holds a worker thread for long.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Guest running time (in ticks) after which a request is stopped: 30 s.
const MAX_GUEST_TICKS: u64 = 3_000;

/// What the runtime needs to know.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The api component (a `wasi:http/proxy` that imports the item store).
    pub component: PathBuf,
    /// Where compiled components are cached; `None` compiles every start.
    pub cache_dir: Option<PathBuf>,
    /// The request body limit the guest enforces (`EDGE_ITEMS_MAX_BODY_BYTES`).
    pub max_body_bytes: u64,
    /// More environment for the guest (`--env`), e.g. an adapter's settings.
    pub env: Vec<(String, String)>,
    /// Instances (so requests) at once.
    pub max_instances: u32,
    /// How long a request may wait for a free instance.
    pub queue_timeout: Duration,
    /// Moved as instances start and end (a metric).
    pub instances_in_use: Gauge,
    /// How the guests' outgoing requests are sent.
    pub outgoing: Connections,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine settings.
    #[error("cannot configure wasmtime: {0:#}")]
    Engine(wasmtime::Error),
    /// The component could not be read or compiled.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The component's imports or exports do not fit this host.
    #[error(
        "the component {path} does not fit this host (it must be a wasi:http/proxy that \
         imports at most WASI 0.2, wasi:http and edge-items:store/store; a component that \
         imports the store needs a --store other than `none`): {cause:#}"
    )]
    Link {
        /// The component file.
        path: PathBuf,
        /// What wasmtime could not link.
        cause: wasmtime::Error,
    },
    /// The guests' outgoing HTTP client could not be made (TLS setup).
    #[error("cannot make the outgoing HTTP client: {0}")]
    Outgoing(reqwest::Error),
}

/// The state of one request's store.
pub struct RequestState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Sends the guest's outgoing requests over the shared pool; `None`:
    /// wasmtime-wasi-http's default, a connection per request.
    outgoing: Option<OutgoingClient>,
    items: Option<ItemStoreHost>,
    limits: StoreLimits,
    /// Epoch ticks the guest has run for.
    ticks: u64,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ItemStoreView for RequestState {
    fn item_store(&mut self) -> &mut ItemStoreHost {
        self.items
            .as_mut()
            .expect("the import is linked only when a store is configured")
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: match &mut self.outgoing {
                Some(pooled) => pooled,
                None => wasmtime_wasi_http::default_hooks(),
            },
        }
    }
}

/// The engine, the pre-linked component and the shared item store.
pub struct Runtime {
    engine: Engine,
    pre: ProxyPre<RequestState>,
    store: Option<Arc<dyn ItemStore>>,
    outgoing: Option<OutgoingClient>,
    env: Vec<(String, String)>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    pooling: bool,
    origin: Origin,
    instances_in_use: Gauge,
}

/// The engine configuration, without the allocation strategy.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}

fn pooling_config(instances: u32) -> PoolingAllocationConfig {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances * MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances * MAX_MEMORIES_PER_COMPONENT)
        .total_tables(instances * MAX_TABLES_PER_COMPONENT)
        .total_stacks(instances)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(MAX_MEMORY_BYTES)
        // Reset a returned slot by rewriting only its dirty pages
        // (PAGEMAP_SCAN, Linux 6.7+; elsewhere the low addresses) instead of
        // madvise: the next request then takes no page faults and no
        // cross-core TLB shootdowns. Measured in BENCHMARKS.md (GET on the
        // embedded store about 2x); the cost is that a used slot keeps up
        // to this much of its memory resident.
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY_BYTES)
        .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pooling
}

/// An engine with the pooling allocator (instantiation is then a matter of
/// microseconds), or the on-demand allocator where the pooling allocator
/// cannot reserve its address space (for example under a low `ulimit -v`).
/// Returns whether pooling is in use.
pub fn build_engine(max_instances: u32) -> Result<(Engine, bool), RuntimeError> {
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
        max_instances,
    )));
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, true)),
        Err(e) => {
            tracing::warn!(
                error = %format!("{e:#}"),
                "the pooling allocator is unavailable; allocating instances on demand"
            );
            let mut config = base_config();
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
                .map(|engine| (engine, false))
                .map_err(RuntimeError::Engine)
        }
    }
}

impl Runtime {
    /// Builds the engine, loads (or compiles) the component and links it.
    /// Without a store, the item-store import is not provided: the
    /// component must bring its own (an api component composed with an
    /// adapter). Blocking: compiling can take seconds.
    pub fn new(
        config: &RuntimeConfig,
        store: Option<Arc<dyn ItemStore>>,
    ) -> Result<Self, RuntimeError> {
        let max_instances = config.max_instances.max(1);
        let (engine, pooling) = build_engine(max_instances)?;
        let (component, origin) =
            cache::load_component(&engine, &config.component, config.cache_dir.as_deref())?;
        let link = |cause| RuntimeError::Link {
            path: config.component.clone(),
            cause,
        };
        let mut linker = Linker::<RequestState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(RuntimeError::Engine)?;
        if store.is_some() {
            item_store::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        }
        let pre = linker.instantiate_pre(&component).map_err(link)?;
        let pre = ProxyPre::new(pre).map_err(link)?;
        tracing::info!(
            component = %config.component.display(),
            cached = origin == Origin::Cache,
            pooling,
            "component ready"
        );
        spawn_epoch_ticker(&engine);
        Ok(Self {
            engine,
            pre,
            store,
            outgoing: match config.outgoing {
                Connections::Pooled => Some(OutgoingClient::new().map_err(RuntimeError::Outgoing)?),
                Connections::PerRequest => None,
            },
            env: [(
                "EDGE_ITEMS_MAX_BODY_BYTES".to_string(),
                config.max_body_bytes.to_string(),
            )]
            .into_iter()
            .chain(config.env.iter().cloned())
            .collect(),
            slots: Arc::new(Semaphore::new(max_instances as usize)),
            queue_timeout: config.queue_timeout,
            pooling,
            origin,
            instances_in_use: config.instances_in_use.clone(),
        })
    }

    /// Whether the compiled component came from the cache.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Whether instances come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    fn new_store(&self) -> Store<RequestState> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env);
        // The guest's output goes to our stderr: stdout carries only the
        // `listening on` line that scripts read.
        wasi.stdout(std::io::stderr());
        wasi.stderr(std::io::stderr());
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outgoing: self.outgoing.clone(),
            items: self.store.clone().map(ItemStoreHost::new),
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY_BYTES)
                .instances(MAX_CORE_INSTANCES_PER_COMPONENT as usize)
                .memories(MAX_MEMORIES_PER_COMPONENT as usize)
                .tables(MAX_TABLES_PER_COMPONENT as usize)
                .build(),
            ticks: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.ticks += 1;
            if state.ticks > MAX_GUEST_TICKS {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Serves one request with a fresh instance, once one is free: waits
    /// at most the queue timeout for it. The instance keeps running in its
    /// own task after the response head is returned, to stream the body,
    /// until `deadlines.finish_by` at the latest. Dropping the returned
    /// future before it has a response stops the instance.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
        deadlines: Deadlines,
    ) -> Result<hyper::Response<HyperOutgoingBody>, HandleError>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let slot = match tokio::time::timeout(
            self.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(closed)) => return Err(HandleError::Failed(closed.into())),
            Err(_) => return Err(HandleError::NoInstance(self.queue_timeout)),
        };
        let mut store = self.new_store();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(HandleError::Failed)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(HandleError::Failed)?;
        let pre = self.pre.clone();
        let mut held = Held {
            store,
            _in_use: InUse::new(&self.instances_in_use),
            _slot: slot,
        };
        let task = tokio::task::spawn(
            async move {
                let run = async {
                    let store = &mut held.store;
                    let proxy = pre.instantiate_async(&mut *store).await?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut *store, request, out)
                        .await
                };
                let outcome = tokio::time::timeout_at(deadlines.finish_by, run).await;
                if outcome.is_err() {
                    tracing::warn!(
                        "a request's instance was still running at its deadline; stopped it"
                    );
                }
                drop(held);
                outcome.unwrap_or_else(|_| Err(wasmtime::format_err!("stopped at the deadline")))
            }
            .instrument(tracing::Span::current()),
        );
        // Until the response head, the task belongs to this future.
        let mut task = StopOnDrop::new(task);
        match receiver.await {
            Ok(Ok(response)) => {
                task.detach();
                Ok(response)
            }
            Ok(Err(code)) => Err(HandleError::Failed(wasmtime::format_err!(
                "the component answered with an error: {code:?}"
            ))),
            // The guest dropped the outparam without setting it: the task
            // says why (usually a trap).
            Err(_) => {
                let cause = match task.join().await {
                    Ok(Ok(())) => wasmtime::format_err!("the component returned no response"),
                    Ok(Err(e)) => e,
                    Err(e) => wasmtime::format_err!("the request task failed: {e}"),
                };
                Err(HandleError::Failed(
                    cause.context("the component did not respond"),
                ))
            }
        }
    }
}

/// What a request's instance holds while it runs. The fields drop in this
/// order, whether the request ends or is stopped: the instance goes back
/// to the pool before its slot is given up. The other way round, the next
/// request could take the slot while the pool is still full, and fail.
struct Held {
    store: Store<RequestState>,
    _in_use: InUse,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// One instance counted in the gauge while this lives.
struct InUse(Gauge);

impl InUse {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A request's task, stopped when dropped (the request was cancelled)
/// unless detached (the instance goes on writing its response body).
struct StopOnDrop<T> {
    task: tokio::task::JoinHandle<T>,
    detached: bool,
}

impl<T> StopOnDrop<T> {
    fn new(task: tokio::task::JoinHandle<T>) -> Self {
        Self {
            task,
            detached: false,
        }
    }

    fn detach(mut self) {
        self.detached = true;
    }

    async fn join(&mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.task).await
    }
}

impl<T> Drop for StopOnDrop<T> {
    fn drop(&mut self) {
        if !self.detached {
            self.task.abort();
        }
    }
}

/// Advances the engine's epoch until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the epoch ticker; guests will not be preempted");
    }
}
