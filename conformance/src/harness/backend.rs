//! What the suite runs against, as data: a runtime serving the api
//! component, the store it keeps items in, and the fixture that provides
//! that store. Every difference the cases must know about is a method here,
//! derived from those three, so no case names a backend.

/// The program serving the api component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Our host (`edge-items serve`) serving `api.wasm`, with the store
    /// implemented natively in the host.
    Host,
    /// Our host serving a composed component (api + adapter) with
    /// `--store none`: the store is the adapter, inside WebAssembly.
    HostComposed,
    /// `wasmtime serve` from wasmtime-cli, serving a composed component.
    WasmtimeServe,
    /// `spin up` on one of the repository's Spin manifests; Spin composes
    /// the api with its adapter dependency itself.
    SpinUp,
}

/// Where the items live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A single SQLite file: our host's embedded store, or Spin's SQLite.
    Embedded,
    DynamoDb,
    Firestore,
    /// The mirror store: the Firestore emulator as primary, mirrored onto
    /// DynamoDB Local; natively our host's `--store mirror`, composed
    /// target/components/api-mirror.wasm (api <- mirror <- firestore,
    /// dynamodb). This way round, whatever the primary accepts the
    /// secondary can hold too (Firestore refuses numbers DynamoDB would
    /// take, and DynamoDB items are the smaller).
    Mirror,
}

/// What provides the store for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// On this machine, fresh per server: a new file for the embedded
    /// store, a new table on DynamoDB Local (`EDGE_ITEMS_DYNAMODB_ENDPOINT`),
    /// a new project on the Firestore emulator (`FIRESTORE_EMULATOR_HOST`).
    Local,
    /// DynamoDB on moto with SigV4 and IAM enforced (one moto per test
    /// process, one table per server): an admin provisions the table, and
    /// the server signs as a user holding only the run-time statement of
    /// crates/store-dynamodb/iam-policy.json.
    Moto,
}

/// One backend of the suite: `runtime` x `store` x `fixture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub runtime: Runtime,
    pub store: Store,
    pub fixture: Fixture,
}

impl Backend {
    pub const fn new(runtime: Runtime, store: Store, fixture: Fixture) -> Backend {
        Backend {
            runtime,
            store,
            fixture,
        }
    }

    /// Whether the harness can start this combination: composed components
    /// exist only for the cloud stores, the Spin manifests tested are the
    /// embedded and the DynamoDB one, and moto stands in for DynamoDB only.
    pub fn is_supported(self) -> bool {
        use {Fixture::*, Runtime::*, Store::*};
        matches!(
            (self.runtime, self.store, self.fixture),
            (Host, _, Local)
                | (
                    HostComposed | WasmtimeServe,
                    DynamoDb | Firestore | Mirror,
                    Local
                )
                | (SpinUp, Embedded | DynamoDb, Local)
                | (Host | HostComposed, DynamoDb, Moto)
        )
    }

    /// Whether numbers of any size and precision survive (Firestore keeps
    /// only 64-bit integers and doubles, and refuses the rest).
    pub fn keeps_any_number(self) -> bool {
        !matches!(self.store, Store::Firestore | Store::Mirror)
    }

    /// A size of free-attribute text that an item of this store can hold
    /// with room to spare: DynamoDB keeps items up to 400 KB, Firestore
    /// documents up to 1 MiB, SQLite what the api's 1 MiB body allows.
    pub fn large_item_bytes(self) -> usize {
        match self.store {
            Store::DynamoDb | Store::Mirror => 350 * 1024,
            _ => 900 * 1024,
        }
    }

    /// Whether the server writes one log line per request (method, path,
    /// status). Our host and Spin do; `wasmtime serve` logs no requests at
    /// all, only the guest's own output, and it is not ours to change.
    pub fn logs_requests(self) -> bool {
        self.runtime != Runtime::WasmtimeServe
    }

    /// Whether the server exits with status 0 on SIGTERM. Our host shuts
    /// down gracefully; `wasmtime serve` 48 handles only Ctrl-C (SIGINT)
    /// and leaves SIGTERM to its default action, so it dies by the signal.
    pub fn exits_zero_on_sigterm(self) -> bool {
        self.runtime != Runtime::WasmtimeServe
    }

    /// Asserts the exit status a SIGTERM must give on this backend: success
    /// for our host, death by exactly that signal (no crash, no hang) for a
    /// runtime that does not handle it.
    #[track_caller]
    pub fn assert_sigterm_exit(self, status: std::process::ExitStatus) {
        use std::os::unix::process::ExitStatusExt;
        if self.exits_zero_on_sigterm() {
            assert!(status.success(), "exit status on SIGTERM: {status}");
        } else {
            assert_eq!(
                status.signal(),
                Some(15),
                "exit status on SIGTERM: {status}"
            );
        }
    }
}
