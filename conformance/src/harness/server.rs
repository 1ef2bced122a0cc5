//! A running server: started on a backend (its fixture prepares the store,
//! its runtime module says how to start it), restarted, stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::backend::{Backend, Fixture, Runtime, Store};
use super::client::http_client;
use super::fixtures::{AwsKey, Site, prepare};
use super::{host, spin, wasmtime_serve};

/// How long a runtime may take to announce its address (compiling a
/// component on 2 busy cores can take a while).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How one runtime is started, as its module builds it.
pub(super) struct Launch {
    /// The command, with its arguments and environment; its streams are
    /// set when it is spawned.
    pub command: Command,
    /// Whether the runtime announces its address on stdout (else stderr).
    pub announces_on_stdout: bool,
    /// What precedes the base URL on the announcing line.
    pub prefix: &'static str,
}

/// A running server. Dropping it kills the process.
pub struct Server {
    pub base: String,
    pub backend: Backend,
    child: Child,
    /// Its log (`host.log`) and the runtime's local state.
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    site: Site,
    pub(super) client: reqwest::Client,
}

impl Server {
    /// Starts a server on `backend` with default settings.
    pub fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[])
    }

    /// Starts a server with extra host `serve` arguments (e.g. a body
    /// limit); other runtimes get their equivalent.
    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Server {
        Self::start_signed(backend, extra_args, None)
    }

    /// Starts a server whose store traffic goes through `route`: it gets
    /// the backend's address (the DynamoDB endpoint URL, or the Firestore
    /// emulator's `host:port`) and returns the one the server must use
    /// instead (a fault-injecting proxy's). For cloud stores only.
    pub fn start_routed(
        backend: Backend,
        extra_args: &[&str],
        route: impl FnOnce(&str) -> String,
    ) -> Server {
        assert!(
            backend.is_supported(),
            "the harness cannot start {backend:?}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let mut site = prepare(backend, None);
        match &mut site {
            Site::DynamoDb { endpoint, .. } => *endpoint = route(endpoint),
            Site::Firestore { emulator_host, .. } => *emulator_host = route(emulator_host),
            Site::Embedded | Site::Mirror { .. } => {
                panic!("only a single cloud store's traffic is routed")
            }
        }
        Self::launch(backend, dir, extra_args, site)
    }

    /// Starts our host on DynamoDB on moto, signing with `key` (e.g. a user
    /// from [`super::moto_service_user_without`]).
    pub fn start_on_moto_as(key: &AwsKey) -> Server {
        let backend = Backend::new(Runtime::Host, Store::DynamoDb, Fixture::Moto);
        Self::start_signed(backend, &[], Some(key))
    }

    fn start_signed(backend: Backend, extra_args: &[&str], key: Option<&AwsKey>) -> Server {
        assert!(
            backend.is_supported(),
            "the harness cannot start {backend:?}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let site = prepare(backend, key);
        Self::launch(backend, dir, extra_args, site)
    }

    fn launch(
        backend: Backend,
        dir: tempfile::TempDir,
        extra_args: Vec<String>,
        site: Site,
    ) -> Server {
        let launch = match backend.runtime {
            Runtime::Host | Runtime::HostComposed => {
                host::launch(backend, &site, dir.path(), &extra_args)
            }
            Runtime::WasmtimeServe => wasmtime_serve::launch(backend, &site, &extra_args),
            Runtime::SpinUp => spin::launch(backend, &site, dir.path(), &extra_args),
        };
        let (child, base) = spawn(backend, launch, &dir.path().join("host.log"));
        Server {
            base,
            backend,
            child,
            dir,
            extra_args,
            site,
            client: http_client(),
        }
    }

    /// Stops the server (SIGTERM, as a service manager would) and starts it
    /// again on the same data.
    pub fn restart(mut self) -> Server {
        let status = self.terminate();
        self.backend.assert_sigterm_exit(status);
        let backend = self.backend;
        let extra_args = std::mem::take(&mut self.extra_args);
        let site = self.site.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::launch(backend, dir, extra_args, site)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "{:?} did not exit within 15 s of SIGTERM",
            self.backend.runtime
        );
    }

    /// The server's log so far (its output, `host.log`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host.log")).unwrap_or_default()
    }

    /// The DynamoDB table or Firestore project of this server's items.
    pub fn namespace(&self) -> &str {
        self.site.namespace()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, self.backend.runtime);
    }
}

/// `spin up` runs its trigger as a child process, which killing `spin up`
/// alone would leave running: it gets a process group of its own, stopped
/// whole. The others stay in the test's group, so a Ctrl-C reaches them.
fn has_own_group(runtime: Runtime) -> bool {
    runtime == Runtime::SpinUp
}

fn stop(child: &mut Child, runtime: Runtime) {
    if has_own_group(runtime) && matches!(child.try_wait(), Ok(None)) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `launch` with both its streams in the log at `log_path`, and
/// returns it with the base URL it announces.
fn spawn(backend: Backend, launch: Launch, log_path: &Path) -> (Child, String) {
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log file")
    };
    let Launch {
        mut command,
        announces_on_stdout,
        prefix,
    } = launch;
    command.stdin(Stdio::null());
    if announces_on_stdout {
        command.stdout(Stdio::piped()).stderr(open_log());
    } else {
        command.stdout(open_log()).stderr(Stdio::piped());
    }
    if has_own_group(backend.runtime) {
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?} ({e})", command.get_program()));
    let announcing: Box<dyn Read + Send> = if announces_on_stdout {
        Box::new(child.stdout.take().expect("stdout"))
    } else {
        Box::new(child.stderr.take().expect("stderr"))
    };
    // Copies the announcing stream into the log for as long as it runs.
    let mut log = open_log();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(announcing).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            if let Some(url) = line.trim().strip_prefix(prefix) {
                let _ = tx.send(url.trim().trim_end_matches('/').to_string());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(base) => (child, base),
        Err(_) => {
            stop(&mut child, backend.runtime);
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            panic!("{backend:?} did not start; its output:\n{log}");
        }
    }
}

/// The host's `serve` options the cases use, as the component's own
/// environment variables, for runtimes that have no such options.
pub(super) fn serve_options_as_env(runtime: Runtime, extra_args: &[String]) -> Vec<String> {
    let mut env = Vec::new();
    let mut args = extra_args.iter();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--max-body-bytes", Some(n)) => env.push(format!("EDGE_ITEMS_MAX_BODY_BYTES={n}")),
            ("--env", Some(setting)) => env.push(setting.clone()),
            _ => panic!("no {runtime:?} equivalent for host arguments {extra_args:?}"),
        }
    }
    env
}
