#!/usr/bin/env python3
"""The benchmark: our service against what its users would run instead,
side by side in one run. Started by `cargo xtask bench`, which builds
everything, installs the tools, starts DynamoDB Local and the Firestore
emulator and passes their addresses here (see BENCHMARKS.md).

Every system serves the same HTTP contract and gets the same workloads
from wrk (benches/load.lua), in alternating rounds: round 1 runs every
workload on every system, then round 2 again, so that each system sees
the same machine noise. Each system's result is also a ratio against its
backend's baseline measured in the same round: the seed's handlers on
DynamoDB and on Firestore, the plain axum server on the embedded store.

Per system it records: requests/s, latency p50/p99/p99.9 (wrk), CPU time
per request of the server's processes (from /proc, so it holds even with
the load generator on the same cores), peak RSS, and the time from
process start to the first 200 (for our host, with an empty and with a
warm compiled-component cache). Results: target/bench/results.json and
target/bench/report.md.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
LOAD = ROOT / "benches" / "load.lua"
# Items created in each system before the workloads, and their owners
# (each user needs more than a page of 20 for `page2`).
ITEMS = 1000
USERS = 10
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# (workload, connections): single operations at c=16, the mix and a read
# at c=1 too.
WORKLOADS = [
    ("get", 16),
    ("post", 16),
    ("patch", 16),
    ("likes", 16),
    ("query", 16),
    ("page2", 16),
    ("mix", 16),
    ("get", 1),
    ("mix", 1),
]

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"bench.py: {name} is not set; run the benchmark with `cargo xtask bench`")
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (the state is
    [0]), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pids):
    """User plus system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICKS


class System:
    """One server under test: how to start it, and which baseline it is
    compared with."""

    def __init__(self, name, backend, describe, argv, extra_env=None, cache=None):
        self.name = name
        self.backend = backend
        self.describe = describe
        self.argv = argv  # a function of (port, workdir) -> argv
        self.extra_env = extra_env or {}
        self.cache = cache  # our host's --cache-dir, to measure cold and warm starts
        self.process = None
        self.port = None
        self.log = None
        self.only = None  # the workloads it runs, if not all

    def start(self, workdir):
        self.port = free_port()
        self.log = open(workdir / f"{self.name}.log", "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.argv(self.port, workdir),
            # BIND: the baselines' listen address.
            env={**os.environ, **self.extra_env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
            cwd=workdir,
        )
        deadline = started + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer /healthz within 120 s; see {self.log.name}")

    def stop(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self.process = None
        self.log.close()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def pids(self):
        """The server's processes: its process group (gunicorn's workers,
        Spin's trigger process)."""
        return [pid for pid in all_pids()
                if (fields := proc_stat(pid)) and int(fields[2]) == self.process.pid]  # pgrp

    def cpu_seconds(self):
        return cpu_seconds(self.pids())

    def peak_rss_mib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024


class RawDynamoDb(System):
    """No server: wrk sends GetItem straight to DynamoDB Local, on the
    table axum-sdk made and filled (RAW_TABLE in load.lua). The floor under
    every DynamoDB system; only the `get` workloads."""

    def __init__(self, endpoint):
        super().__init__("raw-getitem", "dynamodb", "a raw GetItem straight at DynamoDB Local (no server)",
                         None, {"RAW_TABLE": "SdkItems"})
        self.endpoint = endpoint
        self.only = {"get"}

    def start(self, workdir):
        return 0.0

    def stop(self):
        pass

    def url(self, path):
        return self.endpoint + path

    def cpu_seconds(self):
        return 0.0

    def peak_rss_mib(self):
        return 0.0


def request(url, method="GET", body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read() or b"null")


def seed_items(system):
    """ITEMS items with known ids, USERS users, created one after another
    per user so that each user's list has a stable newest-first order."""

    def create(i):
        item = {
            "id": f"bench-{i}",
            "name": "My Item",
            "description": "A great item",
            "likes": 0,
            "userId": f"u{i % USERS}",
            "status": "active",
        }
        status, _ = request(system.url("/items"), "POST", item)
        if status != 201:
            raise RuntimeError(f"{system.name}: creating bench-{i} gave {status}")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(ITEMS)))
    _, page = request(system.url(f"/items?userId=u0&limit=20"))
    if len(page["items"]) != 20 or not page.get("next"):
        raise RuntimeError(f"{system.name}: u0's first page is not a full page with a next cursor")
    cursor = urllib.parse.quote(page["next"], safe="")
    return f"/items?userId=u0&limit=20&cursor={cursor}"


# How to find each backend's process, for its CPU time per request.
BACKEND_PROCESS = {"dynamodb": "DynamoDBLocal", "firestore": "cloud-firestore-emulator"}


def backend_cpu_seconds(backend):
    """CPU time of the backend's processes (the emulators' JVMs): with the
    server's own CPU per request, it shows where a run's cores went."""
    marker = BACKEND_PROCESS.get(backend)
    if marker is None:
        return 0.0
    return cpu_seconds(pid for pid in all_pids() if marker.encode() in proc_cmdline(pid))


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def wrk(system, workload, connections, seconds, page2, run):
    threads = min(2, connections)
    backend_before = backend_cpu_seconds(system.backend)
    cpu_before = system.cpu_seconds()
    out = subprocess.run(
        [
            os.environ.get("WRK", "wrk"),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LOAD),
            system.url(""),
        ],
        env={
            **os.environ,
            "WORKLOAD": workload,
            "ITEMS": str(ITEMS),
            "USERS": str(USERS),
            "PAGE2": page2,
            "RUN": run,
            **({"COUNT_STATUSES": "1"} if COUNT_STATUSES else {}),
            **({"RAW_TABLE": system.extra_env["RAW_TABLE"]} if "RAW_TABLE" in system.extra_env else {}),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = system.cpu_seconds() - cpu_before
    backend_cpu = backend_cpu_seconds(system.backend) - backend_before
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    result["cpu_ms_per_request"] = 1000 * cpu / max(result["requests"], 1)
    result["backend_cpu_ms_per_request"] = 1000 * backend_cpu / max(result["requests"], 1)
    return result


def systems(selected, dynamodb=None, firestore=None):
    """The systems, on the backends' own addresses or on the given ones
    (the counting proxy's: `dynamodb` a URL, `firestore` host:port)."""
    edge = env("EDGE_ITEMS_BIN")
    dynamodb = dynamodb or env("EDGE_ITEMS_DYNAMODB_ENDPOINT")
    firestore = firestore or env("FIRESTORE_EMULATOR_HOST")
    venv = pathlib.Path(env("BENCH_VENV"))
    baselines = pathlib.Path(env("BASELINES_BIN"))
    components = ROOT / "target" / "components"
    api_wasm = ROOT / "target" / "wasm32-wasip2" / "release" / "api.wasm"
    spin = env("SPIN_BIN")
    wasmtime = env("WASMTIME_BIN")

    def gunicorn(store, extra):
        return (
            lambda port, _dir: [
                str(venv / "bin" / "gunicorn"),
                "--config",
                str(ROOT / "benches" / "seed" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(ROOT / "benches" / "seed"),
                "app:app",
            ],
            {"STORE": store, **extra},
        )

    def host(store_args, cache):
        def argv(port, workdir):
            store = store_args(workdir)
            component = [] if "--component" in store else ["--component", str(api_wasm)]
            return [edge, "serve", "--listen", f"127.0.0.1:{port}",
                    "--cache-dir", str(workdir / cache), *component, *store]
        return argv

    def composed(name, settings):
        env_args = []
        for key, value in settings.items():
            env_args += ["--env", f"{key}={value}"]
        return ["--store", "none", "--component", str(components / f"{name}.wasm"), *env_args]

    aws_settings = {"AWS_ENDPOINT_URL_DYNAMODB": dynamodb, **DUMMY_AWS}

    def table(system):
        return {"EDGE_ITEMS_DYNAMODB_TABLE": OUR_TABLES[system]}

    seed_d_cmd, seed_d_env = gunicorn(
        "dynamodb", {"DYNAMODB_ENDPOINT": dynamodb, "TABLE": "SeedItems", **DUMMY_AWS}
    )
    seed_f_cmd, seed_f_env = gunicorn(
        "firestore",
        {"FIRESTORE_EMULATOR_HOST": firestore, "GOOGLE_CLOUD_PROJECT": "bench-seed"},
    )
    all_systems = [
        System("seed-dynamodb", "dynamodb", "the seed's handlers: Flask + boto3 under gunicorn, a worker per core",
               seed_d_cmd, seed_d_env),
        System("axum-sdk", "dynamodb", "axum + the official aws-sdk-dynamodb (benches/baselines)",
               lambda port, _dir: [str(baselines / "axum-dynamodb")],
               {"DYNAMODB_ENDPOINT": dynamodb, "TABLE": "SdkItems", **DUMMY_AWS}),
        RawDynamoDb(dynamodb),
        System("host-dynamodb", "dynamodb", "our host, native DynamoDB store",
               host(lambda _d: ["--store", "dynamodb", "--dynamodb-endpoint", dynamodb,
                                "--dynamodb-table", OUR_TABLES["host-dynamodb"]], "cache-host-dynamodb"),
               DUMMY_AWS, cache="cache-host-dynamodb"),
        System("host-composed-dynamodb", "dynamodb", "our host, composed api + dynamodb adapter",
               host(lambda _d: composed("api-dynamodb", {**aws_settings, **table("host-composed-dynamodb")}),
                    "cache-host-composed-dynamodb"),
               cache="cache-host-composed-dynamodb"),
        System("host-composed-dynamodb-unpooled", "dynamodb",
               "the same, a new backend connection per request (--outgoing-connections per-request)",
               host(lambda _d: [*composed("api-dynamodb", {**aws_settings, **table("host-composed-dynamodb-unpooled")}),
                                "--outgoing-connections", "per-request"],
                    "cache-host-composed-dynamodb-unpooled"),
               cache="cache-host-composed-dynamodb-unpooled"),
        System("wasmtime-serve-dynamodb", "dynamodb", "wasmtime serve, the same composed component",
               lambda port, _dir: [
                   wasmtime, "serve", "-Scli", "--addr", f"127.0.0.1:{port}",
                   "--max-concurrent-requests", "100",
                   *sum((["--env", f"{k}={v}"] for k, v in
                         {**aws_settings, **table("wasmtime-serve-dynamodb")}.items()), []),
                   str(components / "api-dynamodb.wasm"),
               ]),
        System("spin-dynamodb", "dynamodb", "spin up -f spin.dynamodb.toml",
               lambda port, workdir: [
                   spin, "up", "--from", str(ROOT / "spin.dynamodb.toml"),
                   "--listen", f"127.0.0.1:{port}", "--state-dir", str(workdir / "spin-dynamodb"),
                   "--env", "ITEMS_AUTH=none",
               ],
               {f"SPIN_VARIABLE_{k}": v for k, v in {
                   "DYNAMODB_ENDPOINT": dynamodb, "DYNAMODB_TABLE": OUR_TABLES["spin-dynamodb"],
                   "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_REGION": "us-east-1",
               }.items()}),
        System("seed-firestore", "firestore", "the seed's handlers: Flask + google-cloud-firestore under gunicorn",
               seed_f_cmd, seed_f_env),
        System("host-firestore", "firestore", "our host, native Firestore store",
               host(lambda _d: ["--store", "firestore", "--firestore-project", "bench-native"],
                    "cache-host-firestore"),
               {"FIRESTORE_EMULATOR_HOST": firestore}, cache="cache-host-firestore"),
        System("host-composed-firestore", "firestore", "our host, composed api + firestore adapter",
               host(lambda _d: composed("api-firestore", {
                   "FIRESTORE_EMULATOR_HOST": firestore, "GOOGLE_CLOUD_PROJECT": "bench-composed"}),
                    "cache-host-composed-firestore"),
               cache="cache-host-composed-firestore"),
        System("axum-embedded", "embedded", "axum straight on store-embedded (no wasm): our own overhead",
               lambda port, workdir: [str(baselines / "axum-embedded")],
               {"DATA": "axum-embedded.db"}),
        System("host-embedded", "embedded", "our host, embedded SQLite store",
               host(lambda workdir: ["--store", "embedded", "--data", str(workdir / "host-embedded.db")],
                    "cache-embedded"),
               cache="cache-embedded"),
        System("spin-embedded", "embedded", "spin up -f spin.toml (Spin's SQLite)",
               lambda port, workdir: [
                   spin, "up", "--from", str(ROOT / "spin.toml"),
                   "--listen", f"127.0.0.1:{port}", "--state-dir", str(workdir / "spin-embedded"),
               ]),
    ]
    if selected:
        unknown = set(selected) - {s.name for s in all_systems}
        if unknown:
            sys.exit(f"bench.py: unknown systems {sorted(unknown)}; known: {[s.name for s in all_systems]}")
        all_systems = [s for s in all_systems if s.name in selected]
    return all_systems


SYSTEM_NAMES = [
    "seed-dynamodb", "axum-sdk", "raw-getitem", "host-dynamodb", "host-composed-dynamodb",
    "host-composed-dynamodb-unpooled", "wasmtime-serve-dynamodb", "spin-dynamodb",
    "seed-firestore", "host-firestore", "host-composed-firestore",
    "axum-embedded", "host-embedded", "spin-embedded",
]
# Built only by `cargo xtask bench` (benches/baselines, the AWS SDK): not
# in CI's smoke run, which must stay within its time budget.
SMOKE_SKIPS = {"axum-sdk", "raw-getitem", "axum-embedded"}

# Whether wrk counts non-2xx answers by status (the smoke run).
COUNT_STATUSES = False
# What the smoke run accepts besides 2xx, from spin-embedded only: Spin's
# SQLite answers 503 with Retry-After when its database stays locked under
# concurrent writers (the api's `unavailable`), and holds some writes for
# up to about 0.6 s behind that lock, so the mix's delete of an item can
# overtake the item's create on another connection and get 404. Both are
# the service working as documented under Spin's SQLite; every other
# system must answer 2xx only.
SMOKE_ACCEPTS = {"spin-embedded": {"503", "404"}}

# The DynamoDB table of each of our systems: named in its settings and
# made by `provision` with our own provisioning command.
OUR_TABLES = {
    "host-dynamodb": "bench_native",
    "host-composed-dynamodb": "bench_composed",
    "host-composed-dynamodb-unpooled": "bench_unpooled",
    "wasmtime-serve-dynamodb": "bench_wasmtime",
    "spin-dynamodb": "bench_spin",
}

BASELINE = {"dynamodb": "seed-dynamodb", "firestore": "seed-firestore", "embedded": "axum-embedded"}


def provision(chosen):
    """Tables for our DynamoDB systems, made by our own provisioning
    command (the seed and the SDK server make theirs at start)."""
    edge = env("EDGE_ITEMS_BIN")
    endpoint = env("EDGE_ITEMS_DYNAMODB_ENDPOINT")
    for system in chosen:
        if system.name in OUR_TABLES:
            subprocess.run(
                [edge, "provision", "dynamodb", "--dynamodb-table", OUR_TABLES[system.name],
                 "--dynamodb-endpoint", endpoint],
                env={**os.environ, **DUMMY_AWS},
                check=True,
                capture_output=True,
            )


# What one API operation is, for counting its backend requests: (name,
# method, path, body, headers), with {id} the item's id and {page2} the
# second page of a user's list in the path, and the body a function of
# (id, n), n counting the operation's repeats.
COUNTED_OPERATIONS = [
    ("create", "POST", "/items",
     lambda item_id, _n: {"id": item_id, "name": "My Item", "description": "A great item",
                          "likes": 0, "userId": "u1", "status": "active"}, {}),
    ("get", "GET", "/items/{id}", None, {}),
    ("patch", "PATCH", "/items/{id}", lambda _id, n: {"name": f"renamed {n}"}, {"If-Match": "*"}),
    ("likes", "POST", "/items/{id}/likes", lambda _id, _n: {}, {}),
    ("query", "GET", "/items?userId=u1&limit=20", None, {}),
    ("page2", "GET", "{page2}", None, {}),
    ("delete", "DELETE", "/items/{id}", None, {}),
]
COUNT_REPEATS = 10
# Systems whose backend traffic the counting proxy (HTTP/1.1) cannot carry.
NOT_COUNTED = {
    "seed-firestore": "google-cloud-firestore speaks gRPC (HTTP/2) to the emulator; the counting proxy speaks HTTP/1.1",
}
# What our systems must cost, per operation (BENCHMARKS.md, "Backend
# requests per write"): one request for each single-item operation on
# DynamoDB; on Firestore a conditional write reads first (no conditional
# update in its REST API short of a transaction).
OUR_BACKEND_REQUESTS = {
    "dynamodb": {"create": 1, "get": 1, "patch": 1, "likes": 1, "query": 1, "page2": 1, "delete": 1},
    "firestore": {"create": 1, "get": 1, "patch": 2, "likes": 2, "query": 1, "page2": 1, "delete": 2},
}


class CountingProxy:
    """fault-proxy with no faults in front of a backend: its stats, printed
    on SIGUSR1, count the requests it forwarded."""

    def __init__(self, upstream, backend):
        self.process = subprocess.Popen(
            [env("FAULT_PROXY_BIN"), "--upstream", upstream, "--backend", backend, "--rate", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )
        first = self.process.stdout.readline().strip()
        if not first.startswith("listening on "):
            raise RuntimeError(f"fault-proxy did not start: {first!r}")
        self.url = first.removeprefix("listening on ")

    def forwarded(self):
        self.process.send_signal(signal.SIGUSR1)
        return json.loads(self.process.stdout.readline())["forwarded"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)


def count_backend_requests(selected, page2, workdir):
    """Backend requests per API operation, counted at a proxy rather than
    timed: each DynamoDB and Firestore system is started again on a
    counting proxy and sends COUNT_REPEATS of each operation, one at a
    time. Returns {system: {operation: requests per operation}}."""
    proxies = {
        "dynamodb": CountingProxy(env("EDGE_ITEMS_DYNAMODB_ENDPOINT"), "dynamodb"),
        "firestore": CountingProxy("http://" + env("FIRESTORE_EMULATOR_HOST"), "firestore"),
    }
    counts = {}
    try:
        counted = systems(selected, dynamodb=proxies["dynamodb"].url,
                          firestore=proxies["firestore"].url.removeprefix("http://"))
        for system in counted:
            if system.backend not in proxies or isinstance(system, RawDynamoDb):
                continue
            if system.name in NOT_COUNTED:
                print(f"bench: {system.name}: backend requests not counted: {NOT_COUNTED[system.name]}")
                continue
            proxy = proxies[system.backend]
            system.start(workdir)
            try:
                counts[system.name] = count_operations(system, proxy, page2[system.name])
            finally:
                system.stop()
            print(f"bench: backend requests per operation, {system.name}: {counts[system.name]}", flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
    return counts


def count_operations(system, proxy, page2):
    ids = [f"count-{system.name}-{time.monotonic_ns()}-{i}" for i in range(COUNT_REPEATS)]
    # Not counted: what a server does once at start (each of the seed's
    # gunicorn workers creates or finds its table as it boots, maybe after
    # the first has answered): the count must stand still first.
    for _ in range(4):
        request(system.url(page2))
    settled = time.monotonic() + 10
    last = proxy.forwarded()
    while time.monotonic() < settled:
        time.sleep(0.5)
        now = proxy.forwarded()
        if now == last:
            break
        last = now
    per_operation = {}
    for name, method, path, body, headers in COUNTED_OPERATIONS:
        before = proxy.forwarded()
        for n, item_id in enumerate(ids):
            status, _ = request(system.url(path.format(id=item_id, page2=page2)), method,
                                body and body(item_id, n), headers)
            if status // 100 != 2:
                raise RuntimeError(f"{system.name}: {name} answered {status}")
        per_operation[name] = (proxy.forwarded() - before) / COUNT_REPEATS
    return per_operation


def file_sizes():
    sizes = {}
    for path in [
        ROOT / "target" / "wasm32-wasip2" / "release" / "api.wasm",
        *sorted((ROOT / "target" / "components").glob("*.wasm")),
        ROOT / "target" / "wasm32-wasip2" / "release" / "spin_sqlite_adapter.wasm",
    ]:
        if path.exists():
            sizes[path.name] = path.stat().st_size
    return sizes


def report(results, args):
    lines = [
        f"Measured {results['started']} UTC, {args.rounds} alternating rounds of "
        f"{args.seconds} s per workload, wrk on the same {os.cpu_count()} cores. "
        "`ratio` is the median over rounds of (system req/s / baseline req/s in the same round); "
        "latencies are medians over rounds; `CPU/req` is the server's CPU time per request, "
        "`backend CPU/req` that of DynamoDB Local's or the Firestore emulator's JVM.",
        "",
    ]
    by_name = {s["name"]: s for s in results["systems"]}
    for backend in ("dynamodb", "firestore", "embedded"):
        names = [s["name"] for s in results["systems"] if s["backend"] == backend]
        if not names:
            continue
        baseline = BASELINE[backend]
        lines += [f"### {backend} (baseline: {baseline})", ""]
        lines += ["| workload | system | req/s | ratio | p50 ms | p99 ms | p99.9 ms | CPU/req ms | backend CPU/req ms | non-2xx |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for workload, connections in WORKLOADS:
            key = f"{workload} c={connections}"
            for name in names:
                runs = by_name[name]["runs"].get(key)
                if not runs:
                    continue
                base = by_name.get(baseline, {}).get("runs", {}).get(key)
                ratios = [r["rps"] / b["rps"] for r, b in zip(runs, base or []) if b["rps"] > 0]
                med = lambda field: statistics.median(r[field] for r in runs)
                lines.append(
                    f"| {key} | {name} | {med('rps'):,.0f} | "
                    f"{(f'{statistics.median(ratios):.2f}' if ratios else '-')} | "
                    f"{med('p50_us') / 1000:.2f} | {med('p99_us') / 1000:.2f} | {med('p999_us') / 1000:.2f} | "
                    f"{med('cpu_ms_per_request'):.3f} | "
                    f"{statistics.median(r.get('backend_cpu_ms_per_request', 0) for r in runs):.3f} | "
                    f"{sum(r['non_2xx'] for r in runs)} |"
                )
        lines.append("")
    counts = results.get("backend_requests") or {}
    if counts:
        names = [name for name, *_ in COUNTED_OPERATIONS]
        lines += ["### Backend requests per API operation (counted at a proxy)", "",
                  "| system | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for system, per in counts.items():
            lines.append(f"| {system} | " + " | ".join(f"{per[n]:g}" for n in names) + " |")
        lines.append("")
        lines += [f"Not counted: {name}, {why}." for name, why in NOT_COUNTED.items()
                  if name in by_name] + [""]
    lines += ["### Start and memory", "",
              "| system | first 200 after start (s) | warm-cache start (s) | peak RSS MiB |", "|---|---|---|---|"]
    for s in results["systems"]:
        warm = s.get("warm_start_s")
        lines.append(
            f"| {s['name']} | {s['cold_start_s']:.2f} | {(f'{warm:.2f}' if warm else '-')} | {s['peak_rss_mib']:.0f} |"
        )
    lines += ["", "### Component sizes", "", "| file | bytes |", "|---|---|"]
    lines += [f"| {name} | {size:,} |" for name, size in results["sizes"].items()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--systems", nargs="*", help="only these systems (names in the report)")
    parser.add_argument("--workloads", nargs="*", help="only these workloads, e.g. get mix")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's check that the harness works: 1 round of 1 s, fewer items, the systems the "
        "main build makes (not the baselines), and it fails unless every system answered every "
        "workload with 2xx only",
    )
    args = parser.parse_args()

    global OUT, ITEMS, USERS, COUNT_STATUSES
    if args.smoke:
        COUNT_STATUSES = True
        args.rounds, args.seconds = 1, 1
        ITEMS, USERS = 200, 4
        OUT = OUT / "smoke"
        if not args.systems:
            args.systems = [s for s in SYSTEM_NAMES if s not in SMOKE_SKIPS]
    OUT.mkdir(parents=True, exist_ok=True)
    chosen = systems(args.systems)
    workloads = [w for w in WORKLOADS if not args.workloads or w[0] in args.workloads]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-", dir=OUT))
    results = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "sizes": file_sizes(),
        "systems": [],
    }
    provision(chosen)
    page2 = {}
    records = {}
    try:
        for system in chosen:
            # Each system is started alone (cold start on a quiet machine).
            if isinstance(system, RawDynamoDb):
                if "axum-sdk" not in records:
                    sys.exit("bench.py: raw-getitem reads axum-sdk's table; select axum-sdk before it")
                records[system.name] = {"name": system.name, "backend": system.backend,
                                        "describe": system.describe, "cold_start_s": 0.0, "runs": {}}
                page2[system.name] = ""
                continue
            cold = system.start(workdir)
            record = {"name": system.name, "backend": system.backend, "describe": system.describe,
                      "cold_start_s": cold, "runs": {}}
            if system.cache:
                # Again, now that the compiled component is cached.
                system.stop()
                record["warm_start_s"] = system.start(workdir)
            page2[system.name] = seed_items(system)
            records[system.name] = record
            print(f"bench: {system.name} up in {cold:.2f} s, {ITEMS} items created", flush=True)
        for round_ in range(1, args.rounds + 1):
            for workload, connections in workloads:
                for system in chosen:
                    if system.only is not None and workload not in system.only:
                        continue
                    run = f"r{round_}-{workload}-{connections}"
                    result = wrk(system, workload, connections, args.seconds, page2[system.name], run)
                    records[system.name]["runs"].setdefault(f"{workload} c={connections}", []).append(result)
                    print(f"bench: round {round_} {workload:6} c={connections:<2} {system.name:26} "
                          f"{result['rps']:9.0f} req/s  p99 {result['p99_us'] / 1000:7.2f} ms  "
                          f"non-2xx {result['non_2xx']}", flush=True)
        for system in chosen:
            records[system.name]["peak_rss_mib"] = system.peak_rss_mib()
            results["systems"].append(records[system.name])
    finally:
        for system in chosen:
            system.stop()
    results["backend_requests"] = count_backend_requests([s.name for s in chosen], page2, workdir)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    text = report(results, args)
    (OUT / "report.md").write_text(text)
    print(text)
    plot(results, OUT / "latency.png")
    print(f"bench: wrote {OUT / 'results.json'} and {OUT / 'report.md'}")
    def accepted(system, run):
        allowed = SMOKE_ACCEPTS.get(system, set()) if args.smoke else set()
        return sum(n for status, n in run["statuses"].items() if status in allowed)

    wrong = [
        f"{s['name']} {key}: {r['requests']} requests, {r['non_2xx']} non-2xx "
        f"(by status: {r['statuses'] or 'not counted'}), {r['socket_errors']} socket errors"
        for s in results["systems"]
        for key, runs in s["runs"].items()
        for r in runs
        if r["requests"] == 0 or r["non_2xx"] > accepted(s["name"], r) or r["socket_errors"]
    ]
    for name, per in results["backend_requests"].items():
        if name.startswith(("host-", "wasmtime-", "spin-")):
            expected = OUR_BACKEND_REQUESTS[next(s["backend"] for s in results["systems"] if s["name"] == name)]
            if per != expected:
                wrong.append(f"{name}: backend requests per operation {per}, expected {expected}")
    for line in wrong:
        print(f"bench: WRONG ANSWERS: {line}")
    if args.smoke:
        expected = {(s.name, f"{w} c={c}") for s in chosen for w, c in workloads
                    if s.only is None or w in s.only}
        ran = {(s["name"], key) for s in results["systems"] for key in s["runs"]}
        if wrong or expected - ran:
            sys.exit(f"bench: smoke failed: {len(wrong)} runs with wrong answers, "
                     f"{len(expected - ran)} runs missing")
        print(f"bench: smoke passed: {len(ran)} runs, no wrong answers")


def plot(results, path):
    """Latency percentiles of the single-item read and the mix at c=16,
    one panel per backend, log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no plot")
        return
    backends = [b for b in ("dynamodb", "firestore", "embedded")
                if any(s["backend"] == b for s in results["systems"])]
    fig, axes = plt.subplots(len(backends), 2, figsize=(13, 4.2 * len(backends)), squeeze=False)
    percentiles = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9")]
    for row, backend in enumerate(backends):
        for col, key in enumerate(("get c=16", "mix c=16")):
            ax = axes[row][col]
            for s in results["systems"]:
                runs = s["runs"].get(key)
                if s["backend"] != backend or not runs:
                    continue
                values = [statistics.median(r[field] for r in runs) / 1000 for field, _ in percentiles]
                ax.plot([label for _, label in percentiles], values, marker="o", label=s["name"])
            ax.set_yscale("log")
            ax.set_ylabel("latency, ms (log)")
            ax.set_title(f"{backend}: {key}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"edge-items benchmark, {results['started']} UTC ({results['cores']} cores, wrk on the same machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"bench: wrote {path}")


if __name__ == "__main__":
    main()
