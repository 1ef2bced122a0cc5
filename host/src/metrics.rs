//! Prometheus metrics (prometheus-client), served in the OpenMetrics text
//! format on the admin listener (`--admin-listen`), never on the API's
//! port. Labels are bounded: a route is its template, never the raw path,
//! and a method outside the API's is `OTHER`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use sansio::{Attempt, Observer, Retry};

use store_mirror::{MirrorEvent, MirrorObserver};

use crate::cache::Origin;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a request count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Labels of a latency observation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// Why the server refused a request before the component saw it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: &'static str,
}

/// Labels of a compiled-component cache lookup.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// Labels of a backend attempt: the store, and what came of it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
    outcome: &'static str,
}

/// Labels of a mirror event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabels {
    event: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Why a request was refused, as the `reason` label writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No instance became free within the queue timeout (503).
    Instances,
    /// The memory budget for request bodies was spent (503).
    Memory,
    /// The client was at its connection cap (429).
    Connections,
}

/// Every metric of the host, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    instances_in_use: Gauge,
    rejected: Family<RejectLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    backend_calls: Family<BackendLabels, Counter>,
    backend_retries: Family<BackendLabels, Counter>,
    mirror_events: Family<MirrorLabels, Counter>,
    mirror_pending: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Latency buckets: 1 ms doubling to about 33 s, which covers the
/// default 60 s request timeout's useful range.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("edge_items");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request head to its response head, by method and route template",
            latency.clone(),
        );
        let instances_in_use = Gauge::default();
        registry.register(
            "instances_in_use",
            "WebAssembly instances serving a request now (at most --max-instances)",
            instances_in_use.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "admission_rejected",
            "Requests refused before the component ran: instances (queue timeout), memory (body budget), connections (per-client cap)",
            rejected.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "component_cache",
            "Compiled-component cache lookups at start-up, by result (hit or miss)",
            cache.clone(),
        );
        let backend_calls = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_requests",
            "Requests the native store sent to DynamoDB or Firestore, by outcome: ok, client_error, server_error, throttled (not applied, retried), or why there was no answer (connect, timeout, broken, too_large, refused)",
            backend_calls.clone(),
        );
        let backend_retries = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_retries",
            "Requests the native store sent again, by the outcome that made it retry",
            backend_retries.clone(),
        );
        let mirror_events = Family::<MirrorLabels, Counter>::default();
        registry.register(
            "mirror_events",
            "With --store mirror: reads and writes the secondary answered (read_from_secondary, wrote_to_secondary), replications left to the outbox (deferred), items copied by its drain (drained) and items the store behind refused for good (refused)",
            mirror_events.clone(),
        );
        let mirror_pending = Gauge::default();
        registry.register(
            "mirror_outbox_items",
            "With --store mirror: items listed in the outbox, not yet on the side behind (after the last drain)",
            mirror_pending.clone(),
        );
        // Every reason and result from zero, so a rate() never misses a
        // series that has not happened yet.
        for reason in ["instances", "memory", "connections"] {
            drop(rejected.get_or_create(&RejectLabels { reason }));
        }
        for result in ["hit", "miss"] {
            drop(cache.get_or_create(&CacheLabels { result }));
        }
        Self {
            registry,
            requests,
            latency,
            instances_in_use,
            rejected,
            cache,
            backend_calls,
            backend_retries,
            mirror_events,
            mirror_pending,
        }
    }

    /// An observer of a mirror store that counts its events here; its
    /// series start at zero.
    pub fn mirror_observer(self: &Arc<Self>) -> Arc<dyn MirrorObserver> {
        for event in MIRROR_EVENTS {
            drop(self.mirror_events.get_or_create(&MirrorLabels { event }));
        }
        Arc::new(MirrorMetrics(self.clone()))
    }

    /// An observer of `backend`'s attempts (`dynamodb`, `firestore`) that
    /// counts them here.
    pub fn backend_observer(self: &Arc<Self>, backend: &'static str) -> Arc<dyn Observer> {
        Arc::new(BackendObserver {
            metrics: self.clone(),
            backend,
        })
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, method: &Method, path: &str, status: StatusCode, latency: Duration) {
        let method = method_label(method);
        let route = route_template(path);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(latency.as_secs_f64());
    }

    /// Counts one refusal.
    pub fn rejected(&self, why: Rejection) {
        let reason = match why {
            Rejection::Instances => "instances",
            Rejection::Memory => "memory",
            Rejection::Connections => "connections",
        };
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    /// Counts a compiled-component cache lookup.
    pub fn component_cache(&self, origin: Origin) {
        let result = match origin {
            Origin::Cache => "hit",
            Origin::Compiled => "miss",
        };
        self.cache.get_or_create(&CacheLabels { result }).inc();
    }

    /// The gauge of instances in use, for the runtime to move.
    pub fn instances_in_use(&self) -> Gauge {
        self.instances_in_use.clone()
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts a store's attempts into [`Metrics`].
struct BackendObserver {
    metrics: Arc<Metrics>,
    backend: &'static str,
}

/// What came of an attempt, as the `outcome` label writes it.
fn outcome_label(attempt: &Attempt) -> &'static str {
    match (attempt.status, attempt.failure) {
        (_, Some(failure)) => failure,
        (Some(_), None) if attempt.class == Retry::Always => "throttled",
        (Some(status), None) if status < 400 => "ok",
        (Some(status), None) if status < 500 => "client_error",
        _ => "server_error",
    }
}

impl Observer for BackendObserver {
    fn attempt(&self, attempt: &Attempt) {
        let labels = BackendLabels {
            backend: self.backend,
            outcome: outcome_label(attempt),
        };
        self.metrics.backend_calls.get_or_create(&labels).inc();
        if attempt.retried {
            self.metrics.backend_retries.get_or_create(&labels).inc();
        }
    }
}

/// The method as a label: the API's methods by name, anything else `OTHER`
/// (clients choose methods freely).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route template of a path, as the api component's router and
/// openapi.json write it (`/items/{id}`), or `other` for a path it does not
/// serve. The host cannot link the api crate (it is a component), so this
/// mirrors its path shapes; the ids are not checked, only their position.
pub fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match segments.as_slice() {
        ["items"] => "/items",
        ["items:batch"] => "/items:batch",
        ["items", _] => "/items/{id}",
        ["items", _, "likes"] => "/items/{id}/likes",
        ["openapi.json"] => "/openapi.json",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        _ => "other",
    }
}

/// Serves `GET /metrics` (and nothing else) on `listener` until
/// `shutdown` completes: one small HTTP/1.1 server apart from the API's,
/// so that metrics are never reachable where the API is.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |request| {
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(admin_answer(&metrics, &request)) }
        });
        let connection = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

/// The `event` label of each counted [`MirrorEvent`].
const MIRROR_EVENTS: [&str; 5] = [
    "read_from_secondary",
    "wrote_to_secondary",
    "deferred",
    "refused",
    "drained",
];

struct MirrorMetrics(Arc<Metrics>);

impl MirrorObserver for MirrorMetrics {
    fn event(&self, event: MirrorEvent) {
        let (event, by) = match event {
            MirrorEvent::ReadFromSecondary => ("read_from_secondary", 1),
            MirrorEvent::WroteToSecondary => ("wrote_to_secondary", 1),
            MirrorEvent::Deferred => ("deferred", 1),
            MirrorEvent::Refused => ("refused", 1),
            MirrorEvent::Drained(n) => ("drained", n),
            MirrorEvent::Pending(n) => {
                self.0.mirror_pending.set(n as i64);
                return;
            }
        };
        self.0
            .mirror_events
            .get_or_create(&MirrorLabels { event })
            .inc_by(by);
    }
}

fn admin_answer(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<bytes::Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, CONTENT_TYPE, metrics.encode())
        }
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET /metrics only\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "the admin listener serves GET /metrics only\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(bytes::Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_and_bounded() {
        for (path, template) in [
            ("/items", "/items"),
            ("/items:batch", "/items:batch"),
            ("/items/abc", "/items/{id}"),
            ("/items/a%2Fb", "/items/{id}"),
            ("/items/abc/likes", "/items/{id}/likes"),
            ("/healthz", "/healthz"),
            ("/readyz", "/readyz"),
            ("/openapi.json", "/openapi.json"),
            ("/items/a/b", "other"),
            ("/random-thing-12345", "other"),
            ("", "other"),
        ] {
            assert_eq!(route_template(path), template, "{path}");
        }
    }

    #[test]
    fn encodes_what_was_counted() {
        let metrics = Metrics::new();
        metrics.request(
            &Method::GET,
            "/items/x1",
            StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        metrics.request(
            &Method::from_bytes(b"BREW").unwrap(),
            "/x",
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        metrics.rejected(Rejection::Memory);
        metrics.component_cache(Origin::Cache);
        metrics.instances_in_use().inc();
        let text = metrics.encode();
        for expected in [
            r#"edge_items_http_requests_total{method="GET",route="/items/{id}",status="404"} 1"#,
            r#"edge_items_http_requests_total{method="OTHER",route="other",status="404"} 1"#,
            r#"edge_items_http_request_duration_seconds_count{method="GET",route="/items/{id}"} 1"#,
            r#"edge_items_admission_rejected_total{reason="memory"} 1"#,
            r#"edge_items_component_cache_total{result="hit"} 1"#,
            "edge_items_instances_in_use 1",
            r#"edge_items_admission_rejected_total{reason="connections"} 0"#,
            r#"edge_items_component_cache_total{result="miss"} 0"#,
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        assert!(!text.contains("x1"), "no raw paths");
        assert!(
            !text.contains("mirror_events_total{"),
            "no mirror, no series"
        );
    }

    #[test]
    fn a_mirror_s_events_are_counted_from_zero() {
        let metrics = Arc::new(Metrics::new());
        let observer = metrics.mirror_observer();
        observer.event(MirrorEvent::ReadFromSecondary);
        observer.event(MirrorEvent::Drained(3));
        observer.event(MirrorEvent::Pending(7));
        let text = metrics.encode();
        for expected in [
            r#"edge_items_mirror_events_total{event="read_from_secondary"} 1"#,
            r#"edge_items_mirror_events_total{event="drained"} 3"#,
            r#"edge_items_mirror_events_total{event="refused"} 0"#,
            "edge_items_mirror_outbox_items 7",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
