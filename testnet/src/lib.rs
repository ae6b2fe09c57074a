//! # wsis-testnet
//!
//! A local WSIS federation of real `wsis node` processes on 127.0.0.1, driven through the `wsis` CLI exactly as
//! operators would drive it. Used by the `wsis-testnet` binary (the README's main job) and by the end-to-end
//! tests.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use wsis_testnet::{orgs, Testnet};
//! let mut net = Testnet::create("target/debug/wsis".into(), "/tmp/wsis-demo".into(), orgs::demo(12))?;
//! let outcome = wsis_testnet::scenario::annual_cycle(&mut net, &Default::default())?;
//! println!("{}", outcome.view_text);
//! # Ok(()) }
//! ```
//!
//! - Every node has its own data directory under the run directory, its own libp2p port and API port (both
//!   picked by the OS), and bootstraps from the convening secretariat's node.
//! - A command that depends on something another node did (a vote on a motion proposed elsewhere) is retried
//!   until the item has synced, with a deadline; nothing is faked by reading another node's state.
//! - Faults are real: `kill -9` of a node process, a partition by restarting nodes with blocked peers, a
//!   malicious process that pushes forged data.

pub mod malicious;
pub mod orgs;
pub mod partition;
pub mod report;
pub mod scenario;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wsis_node::api::types::Status;

/// How long a command that waits for sync is retried before the run fails.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(120);
/// CLI commands run at once by [`Testnet::par_retry`] (the machine may have 2 cores; the nodes need them too).
pub const MAX_PARALLEL_COMMANDS: usize = 6;
/// Pause between retries and between status polls.
const POLL: Duration = Duration::from_millis(200);

/// One organisation's node process.
pub struct NodeProc {
    pub spec: orgs::OrgSpec,
    pub dir: PathBuf,
    pub org: String,
    child: Option<Child>,
    /// libp2p address (with /p2p/…) other nodes bootstrap from. It changes at every start (the OS picks the
    /// port).
    pub address: Option<String>,
    /// The node's libp2p peer id (stable: it comes from `DATA/node.key`), once the node has run.
    pub peer_id: Option<String>,
    /// The node it bootstraps from when (re)started: node 0, or its half's first node while partitioned. Its
    /// own index means no bootstrap peer.
    pub bootstrap_from: usize,
    /// Peer ids passed as `--block-peer` when (re)started (the other half, while partitioned).
    pub blocked: Vec<String>,
    /// Highest resident set size seen for this node's processes (KiB).
    pub peak_rss_kib: u64,
    pub kills: u32,
}

/// A running local federation.
pub struct Testnet {
    pub wsis: PathBuf,
    pub root: PathBuf,
    pub nodes: Vec<NodeProc>,
    pub federation: String,
    /// Progress lines go here (the binary prints them; tests keep them quiet).
    pub progress: Box<dyn Fn(&str) + Send + Sync>,
    /// (node, op id) of every governance op a node acknowledged (the CLI printed its id); checked after kills.
    pub acked: std::sync::Mutex<Vec<(usize, String)>>,
    /// Parked ops a node may hold and still count as converged: ops that can never be completed (the malicious
    /// node's orphan flood) stay parked.
    pub tolerated_parked: std::sync::atomic::AtomicUsize,
}

/// What a CLI command printed (as JSON) or why it failed.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub stderr: String,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}: {}", self.code, self.stderr.trim())
    }
}
impl std::error::Error for CliError {}

/// What `wsis init --json` prints (the CLI's own output, not an API body).
#[derive(Debug, Deserialize)]
pub(crate) struct Initialised {
    pub org: String,
}

/// What `wsis federation create --json` prints.
#[derive(Debug, Deserialize)]
struct FederationCreated {
    federation: String,
}

/// The `op` of what a command that signed a governance op printed (the API's `OpDone`, or a draft's
/// `{"doc", "op"}`); other commands print no `op`.
#[derive(Debug, Deserialize)]
struct Signed {
    op: String,
}

/// Decodes what `wsis ARGS --json` printed as `T`: a missing or mistyped field is an error naming the command.
fn decode<T: DeserializeOwned, S: AsRef<std::ffi::OsStr>>(stdout: &[u8], args: &[S]) -> Result<T> {
    serde_json::from_slice(stdout).with_context(|| {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        format!(
            "wsis {} printed no JSON or not the expected {}",
            shown.join(" "),
            std::any::type_name::<T>()
        )
    })
}

impl Testnet {
    /// Initialises every organisation's data directory under `root`, creates the federation (the first org
    /// convenes it; the other secretariat orgs are named in the genesis), starts every node and admits everyone.
    pub fn create(wsis: PathBuf, root: PathBuf, specs: Vec<orgs::OrgSpec>) -> Result<Testnet> {
        if specs.is_empty() {
            bail!("a testnet needs at least one organisation");
        }
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let mut net = Testnet {
            wsis,
            root,
            nodes: Vec::new(),
            federation: String::new(),
            progress: Box::new(|_| {}),
            acked: Default::default(),
            tolerated_parked: Default::default(),
        };
        for spec in specs {
            let dir = net.root.join(spec.dir_name());
            if dir.exists() {
                bail!("{} exists: use a fresh --out directory", dir.display());
            }
            let mut args = vec![
                "init".to_string(),
                "--name".into(),
                spec.name.clone(),
                "--stakeholder".into(),
                spec.stakeholder.to_string(),
            ];
            if let Some(c) = spec.country {
                args.push("--country".into());
                args.push(c.to_string());
            }
            let Initialised { org } = net.run_as(&dir, &args)?;
            net.nodes.push(NodeProc {
                spec,
                dir,
                org,
                child: None,
                address: None,
                peer_id: None,
                bootstrap_from: 0,
                blocked: Vec::new(),
                peak_rss_kib: 0,
                kills: 0,
            });
        }
        Ok(net)
    }

    /// Creates the genesis on node 0 (with the other secretariat orgs), starts all nodes and admits everyone.
    pub fn launch(&mut self, federation_name: &str) -> Result<()> {
        let mut args = vec![
            "federation".to_string(),
            "create".into(),
            "--name".into(),
            federation_name.into(),
        ];
        for n in self.nodes.iter().skip(1).filter(|n| n.spec.secretariat) {
            args.push("--secretariat-inception".into());
            args.push(
                n.dir
                    .join(wsis_node::data_dir::INCEPTION_FILE)
                    .display()
                    .to_string(),
            );
        }
        let created: FederationCreated = self.run_as(&self.nodes[0].dir.clone(), &args)?;
        self.federation = created.federation;
        (self.progress)(&format!("federation {} created", self.federation));
        self.start_node(0)?;
        for i in 1..self.nodes.len() {
            self.start_node(i)?;
        }
        (self.progress)(&format!("{} nodes running", self.nodes.len()));
        // Admission by the convening secretariat, once each inception has reached it.
        for i in 1..self.nodes.len() {
            if self.nodes[i].spec.secretariat {
                continue;
            }
            let org = self.nodes[i].org.clone();
            self.cli_retry(0, &["org", "admit", &org])?;
        }
        self.wait_converged(SYNC_DEADLINE)?;
        (self.progress)("every organisation admitted");
        Ok(())
    }

    /// Runs `wsis [--json] --data-dir DIR ARGS`, returning its standard output, or its exit code and standard
    /// error as a [`CliError`].
    fn exec<S: AsRef<std::ffi::OsStr>>(
        &self,
        dir: &Path,
        json: bool,
        args: &[S],
    ) -> Result<Vec<u8>> {
        let mut cmd = Command::new(&self.wsis);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.wsis.display()))?;
        if !out.status.success() {
            let shown: Vec<String> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            return Err(CliError {
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
            .with_context(|| format!("wsis {}", shown.join(" ")));
        }
        Ok(out.stdout)
    }

    /// Runs `wsis --json --data-dir DIR ARGS`, decoding its JSON output as `T`.
    pub(crate) fn run_as<T: DeserializeOwned>(&self, dir: &Path, args: &[String]) -> Result<T> {
        decode(&self.exec(dir, true, args)?, args)
    }

    /// Runs a CLI command against node `i`, recording the op it signed (if it printed one) as acknowledged.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<Value> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out: Value = self.run_as(&self.nodes[i].dir, &args)?;
        if let Ok(Signed { op }) = Signed::deserialize(&out) {
            if let Ok(mut acked) = self.acked.lock() {
                acked.push((i, op));
            }
        }
        Ok(out)
    }

    /// [`Testnet::cli`], decoding the output as the API type `T` (a missing or mistyped field is an error).
    pub fn cli_as<T: DeserializeOwned>(&self, i: usize, args: &[&str]) -> Result<T> {
        let out = self.cli(i, args)?;
        T::deserialize(&out).with_context(|| {
            format!(
                "wsis {} printed not the expected {}",
                args.join(" "),
                std::any::type_name::<T>()
            )
        })
    }

    /// Runs `wsis` without `--json` (for the human-readable view).
    pub fn cli_text(&self, i: usize, args: &[&str]) -> Result<String> {
        let stdout = self.exec(&self.nodes[i].dir, false, args)?;
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// Runs commands on several nodes at once (at most [`MAX_PARALLEL_COMMANDS`] at a time), each retried until
    /// synced. Results in job order.
    pub fn par_retry(&self, jobs: &[(usize, Vec<String>)]) -> Result<Vec<Value>> {
        let mut results = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(MAX_PARALLEL_COMMANDS) {
            let chunk_results: Vec<Result<Value>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(i, args)| {
                        scope.spawn(move || {
                            let args: Vec<&str> = args.iter().map(String::as_str).collect();
                            self.cli_retry(*i, &args)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("a command thread panicked")))
                    })
                    .collect()
            });
            for r in chunk_results {
                results.push(r?);
            }
        }
        Ok(results)
    }

    /// Runs a CLI command against node `i`, retrying while it fails because something has not synced yet. A
    /// refusal saying the thing is already done counts as done.
    pub fn cli_retry(&self, i: usize, args: &[&str]) -> Result<Value> {
        let started = Instant::now();
        loop {
            match self.cli(i, args) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let text = format!("{e:#}");
                    if text.contains("already") {
                        return Ok(Value::Null);
                    }
                    if started.elapsed() > SYNC_DEADLINE {
                        return Err(e.context(format!(
                            "{} gave up after {:?}",
                            self.nodes[i].spec.acronym, SYNC_DEADLINE
                        )));
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    /// Starts (or restarts) node `i` and waits until its API answers; it bootstraps from
    /// [`NodeProc::bootstrap_from`] (which must be running) and blocks [`NodeProc::blocked`]. Records its new
    /// address and its peer id.
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let dir = self.nodes[i].dir.clone();
        let _ = wsis_node::data_dir::ApiAddrFile::of(&dir).remove();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .with_context(|| format!("opening {}/node.log", dir.display()))?;
        let mut cmd = Command::new(&self.wsis);
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&dir)
            .arg("--api")
            .arg("127.0.0.1:0")
            .arg("--listen")
            .arg("/ip4/127.0.0.1/tcp/0")
            .arg("--mdns")
            .arg("false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if i != 0 {
            cmd.arg("--federation").arg(&self.federation);
        }
        let from = self.nodes[i].bootstrap_from;
        if from != i {
            let boot = self.nodes[from].address.clone().ok_or_else(|| {
                anyhow!(
                    "{} has no address yet (start it first)",
                    self.nodes[from].spec.acronym
                )
            })?;
            cmd.arg("--bootstrap").arg(boot);
        }
        for peer in &self.nodes[i].blocked {
            cmd.arg("--block-peer").arg(peer);
        }
        let child = cmd.spawn().context("spawning wsis node")?;
        self.nodes[i].child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(c) = self.nodes[i].child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    bail!(
                        "{}'s node exited with {status}; see {}/node.log",
                        self.nodes[i].spec.acronym,
                        dir.display()
                    );
                }
            }
            if wsis_node::data_dir::ApiAddrFile::of(&dir).exists() {
                if let Some(status) = self.status_if_answering(i)? {
                    let addr = status.listen.iter().find(|a| a.contains("/tcp/")).cloned();
                    if let Some(a) = addr {
                        self.nodes[i].address = Some(a);
                        self.nodes[i].peer_id = Some(status.peer_id);
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > SYNC_DEADLINE {
                bail!(
                    "{}'s node did not start; see {}/node.log",
                    self.nodes[i].spec.acronym,
                    dir.display()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// `kill -9` node `i` (no flush, no goodbye).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.nodes[i].child.take() {
            self.sample_rss_of(i, c.id());
            c.kill().context("kill -9")?;
            let _ = c.wait();
            self.nodes[i].kills += 1;
        }
        Ok(())
    }

    /// Status of node `i`.
    pub fn status(&self, i: usize) -> Result<Status> {
        self.run_as(&self.nodes[i].dir, &["status".to_string()])
    }

    /// Status of node `i`, or `None` while it does not answer (stopped, starting, killed). An answer that is not
    /// a status is an error.
    pub fn status_if_answering(&self, i: usize) -> Result<Option<Status>> {
        let args = ["status".to_string()];
        match self.exec(&self.nodes[i].dir, true, &args) {
            Ok(stdout) => decode(&stdout, &args).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Records the peak RSS of every running node (VmHWM from /proc).
    pub fn sample_rss(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(pid) = self.nodes[i].child.as_ref().map(Child::id) {
                self.sample_rss_of(i, pid);
            }
        }
    }

    fn sample_rss_of(&mut self, i: usize, pid: u32) {
        let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let n = &mut self.nodes[i];
        n.peak_rss_kib = n.peak_rss_kib.max(hwm);
    }

    /// Waits until every node has the same governance digest and document digest and nothing parked. Returns
    /// how long it took.
    pub fn wait_converged(&mut self, deadline: Duration) -> Result<Duration> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_converged_among(&all, deadline)
    }

    /// [`Testnet::wait_converged`] for the nodes `among` only (one half of a partition).
    pub fn wait_converged_among(
        &mut self,
        among: &[usize],
        deadline: Duration,
    ) -> Result<Duration> {
        if among.is_empty() {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        loop {
            self.sample_rss();
            let statuses: Vec<Option<Status>> = among
                .iter()
                .map(|&i| self.status_if_answering(i))
                .collect::<Result<_>>()?;
            let key = |s: &Status| (s.gov_digest.clone(), s.docs_digest.clone(), s.ops_parked);
            let tolerated = self
                .tolerated_parked
                .load(std::sync::atomic::Ordering::SeqCst);
            let keys: Vec<_> = statuses.iter().map(|s| s.as_ref().map(key)).collect();
            if keys.iter().all(|k| k.is_some())
                && keys.windows(2).all(|w| {
                    w[0].as_ref().map(|k| (&k.0, &k.1)) == w[1].as_ref().map(|k| (&k.0, &k.1))
                })
                && keys.iter().flatten().all(|k| k.2 <= tolerated)
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > deadline {
                let summary: Vec<String> = among
                    .iter()
                    .map(|&i| &self.nodes[i])
                    .zip(&statuses)
                    .map(|(n, s)| match s {
                        Some(s) => format!(
                            "{}: {} ops, gov {}, docs {}",
                            n.spec.acronym,
                            s.ops,
                            short(&s.gov_digest),
                            short(&s.docs_digest)
                        ),
                        None => format!("{}: not answering", n.spec.acronym),
                    })
                    .collect();
                bail!("no convergence after {deadline:?}: {}", summary.join("; "));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The index of the node of `acronym`.
    pub fn index_of(&self, acronym: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.spec.acronym == acronym)
    }

    /// Stops every node with SIGTERM (graceful: flush and close), falling back to SIGKILL.
    pub fn stop_all(&mut self) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_nodes(&all);
    }

    /// Stops the nodes `which` with SIGTERM (all signalled first, so they shut down in parallel), falling back to
    /// SIGKILL after 10 s.
    pub fn stop_nodes(&mut self, which: &[usize]) {
        let mut children = Vec::new();
        for &i in which {
            if let Some(c) = self.nodes[i].child.take() {
                self.sample_rss_of(i, c.id());
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status();
                children.push(c);
            }
        }
        let started = Instant::now();
        for mut c in children {
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Splits the federation in two: every node is stopped (SIGTERM) and restarted with `--block-peer` for
    /// every node of the other half, bootstrapping within its own half: from node 0 in the half that has it,
    /// from its first node in the other (which starts first, without a bootstrap peer, since the other half's
    /// addresses are blocked anyway). Addresses change at each start, so they are recorded again. Peer ids are
    /// stable (`DATA/node.key`); a node that never ran yet has none, so the split needs every node started once.
    /// `a` and `b` must be disjoint, non-empty and together name every node. Undone by [`Testnet::heal`].
    pub fn partition(&mut self, a: &[usize], b: &[usize]) -> Result<()> {
        let n = self.nodes.len();
        let mut seen = vec![0u8; n];
        for &i in a.iter().chain(b) {
            if i >= n {
                bail!("partition: no node {i}");
            }
            seen[i] += 1;
        }
        if a.is_empty() || b.is_empty() || seen.iter().any(|&c| c != 1) {
            bail!("partition: the halves must be disjoint, non-empty and name every node once");
        }
        let peer_ids: Vec<String> = (0..n)
            .map(|i| {
                self.nodes[i]
                    .peer_id
                    .clone()
                    .ok_or_else(|| anyhow!("{} has no known peer id", self.nodes[i].spec.acronym))
            })
            .collect::<Result<_>>()?;
        let all: Vec<usize> = (0..n).collect();
        self.stop_nodes(&all);
        for (half, other) in [(a, b), (b, a)] {
            let first = if half.contains(&0) { 0 } else { half[0] };
            let blocked: Vec<String> = other.iter().map(|&j| peer_ids[j].clone()).collect();
            for &i in half {
                self.nodes[i].bootstrap_from = first;
                self.nodes[i].blocked = blocked.clone();
            }
            self.start_node(first)?;
            for &i in half.iter().filter(|&&i| i != first) {
                self.start_node(i)?;
            }
        }
        Ok(())
    }

    /// Ends a [`Testnet::partition`]: every node is stopped and restarted without blocked peers, bootstrapping
    /// from node 0 (started first) as at launch.
    pub fn heal(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_nodes(&all);
        for n in &mut self.nodes {
            n.bootstrap_from = 0;
            n.blocked.clear();
        }
        for i in all {
            self.start_node(i)?;
        }
        Ok(())
    }

    /// Peer ids node `i` is connected to now (from `wsis status`).
    pub fn connected_peers(&self, i: usize) -> Result<Vec<String>> {
        Ok(self.status(i)?.peers)
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The first 8 characters of a digest, as progress lines and errors show it.
fn short(digest: &str) -> &str {
    digest.get(..8).unwrap_or(digest)
}

/// Finds the `wsis` binary: `WSIS_BIN`, else next to the running executable (cargo puts both in one target
/// directory). Under `cargo run` (which builds only this package) a missing `wsis` is built first with the same
/// profile, so `cargo run --release -p wsis-testnet -- demo` is the whole set-up.
pub fn find_wsis() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("WSIS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let look = || {
        exe.ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join("wsis"))
            .find(|candidate| candidate.is_file())
    };
    if let Some(found) = look() {
        return Ok(found);
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        let release = exe.components().any(|c| c.as_os_str() == "release");
        eprintln!("building the wsis binary first (cargo build -p wsis-cli)…");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "wsis-cli", "--bin", "wsis"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().context("running cargo build -p wsis-cli")?;
        if !status.success() {
            bail!("cargo build -p wsis-cli failed");
        }
        if let Some(found) = look() {
            return Ok(found);
        }
    }
    bail!(
        "cannot find the `wsis` binary next to {}; build it (cargo build -p wsis-cli) or set WSIS_BIN",
        exe.display()
    )
}
