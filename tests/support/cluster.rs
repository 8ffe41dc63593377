//! Real `vodhook serve` processes for tests: N instances of the binary under test sharing one
//! configuration file, each on its own free loopback port, as Function Compute would run them
//! side by side. Their logs are kept (stdout and stderr, one file per instance) for the test to
//! search and to show when it fails; each one gets SIGTERM when dropped.
//!
//! ```ignore
//! let mut cluster = Cluster::start(2, &config_toml).await;
//! client.post(cluster.node(0).url("/")).body(event).send().await;
//! let out = cluster.cli(&["outbox", "list"]).await;      // `vodhook outbox list`, same config
//! cluster.node(0).terminate();                          // SIGTERM
//! let status = cluster.node_mut(0).wait_exit(WAIT).await;
//! ```
//!
//! Include with `#[path = "support/cluster.rs"] mod cluster;`. Every wait here is a deadline
//! that turns a hang into a failure, never a timing assertion.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, built by Cargo for this integration test.
pub const VODHOOK: &str = env!("CARGO_BIN_EXE_vodhook");

/// How long an instance may take to start accepting (a shared, busy machine can be slow).
const START_WAIT: Duration = Duration::from_secs(30);
/// How long an instance may take to exit after SIGTERM when a test drops it.
const STOP_WAIT: Duration = Duration::from_secs(15);
/// How long a one-shot command (`drain`, `outbox list`) may take.
const CLI_WAIT: Duration = Duration::from_secs(60);

/// Variables of the test's own environment that would change how the binary runs.
const SCRUBBED_ENV: &[&str] = &[
    "VODHOOK_CONFIG",
    "VODHOOK_LISTEN",
    "VODHOOK_AUTH_KEY",
    "VODHOOK_AUTH_KEY_PREVIOUS",
    "VODHOOK_CALLBACK_URL",
    "FC_FUNCTION_NAME",
    "FC_CUSTOM_LISTEN_PORT",
    "FC_SERVER_PORT",
    "AWS_LAMBDA_RUNTIME_API",
];

/// Several `vodhook serve` processes with one configuration, and the tools that share it.
pub struct Cluster {
    nodes: Vec<Node>,
    config: PathBuf,
    // Last: the directory outlives the processes writing into it.
    dir: tempfile::TempDir,
}

/// One `vodhook serve` process.
pub struct Node {
    index: usize,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

/// What a one-shot `vodhook` command did.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Cluster {
    /// Writes `config_toml` to a file and starts `n` instances with it; returns once every one
    /// answers `GET /healthz`.
    pub async fn start(n: usize, config_toml: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let config = dir.path().join("vodhook.toml");
        std::fs::write(&config, config_toml).expect("write the configuration");
        let mut nodes = Vec::with_capacity(n);
        for index in 0..n {
            nodes.push(Node::start(index, &config, dir.path()).await);
        }
        Cluster { nodes, config, dir }
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Runs `vodhook <args>` to completion with the cluster's configuration (`VODHOOK_CONFIG`).
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let mut command = Command::new(VODHOOK);
        command.args(args).env("VODHOOK_CONFIG", &self.config).env("RUST_LOG", "info").stdin(Stdio::null());
        for name in SCRUBBED_ENV.iter().filter(|n| **n != "VODHOOK_CONFIG") {
            command.env_remove(name);
        }
        let what = format!("vodhook {}", args.join(" "));
        let run = tokio::task::spawn_blocking(move || command.output());
        let output = tokio::time::timeout(CLI_WAIT, run)
            .await
            .unwrap_or_else(|_| panic!("`{what}` did not finish within {CLI_WAIT:?}"))
            .expect("the command's thread")
            .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
        CliOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Every instance's log, labelled: for failure messages.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| format!("--- vodhook #{} log ---\n{}", n.index, n.log())).collect()
    }
}

impl Node {
    async fn start(index: usize, config: &Path, dir: &Path) -> Node {
        let log = dir.join(format!("vodhook-{index}.log"));
        let mut last_log = String::new();
        // A free port is found by binding :0 and letting go; another process may take it before
        // vodhook binds it, so a start that dies is tried again on another port.
        for _ in 0..5 {
            let port = free_port();
            let mut node = Node { index, port, log: log.clone(), child: None };
            node.spawn(config);
            match node.wait_ready().await {
                Ok(()) => return node,
                Err(()) => last_log = node.log(),
            }
        }
        panic!("vodhook #{index} did not start; its last log:\n{last_log}");
    }

    fn spawn(&mut self, config: &Path) {
        let out = File::create(&self.log).expect("create the log file");
        let err = out.try_clone().expect("share the log file");
        let mut command = Command::new(VODHOOK);
        command
            .arg("serve")
            .env("VODHOOK_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("VODHOOK_CONFIG", config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for name in SCRUBBED_ENV.iter().filter(|n| !matches!(**n, "VODHOOK_CONFIG" | "VODHOOK_LISTEN")) {
            command.env_remove(name);
        }
        self.child = Some(command.spawn().unwrap_or_else(|e| panic!("cannot run {VODHOOK}: {e}")));
    }

    /// Waits until the instance answers `GET /healthz`; `Err` when it exited first.
    async fn wait_ready(&mut self) -> Result<(), ()> {
        let client = reqwest::Client::builder().no_proxy().build().expect("HTTP client");
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return Err(());
            }
            let answer = client.get(self.url("/healthz")).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "vodhook #{} did not answer within {START_WAIT:?}; its log:\n{}",
                    self.index,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (what Function Compute sends on scale-in), without waiting.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "TERM");
        }
    }

    /// Waits for the process to exit, failing the test if it has not within `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("the process was already waited for");
            if let Some(status) = child.try_wait().expect("wait for vodhook") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!("vodhook #{} did not exit within {within:?}; its log:\n{}", self.index, self.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Node {
    /// SIGTERM, a bounded wait, then SIGKILL: no process outlives its test.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `kill -<name> <pid>`: the standard tool, so the tests need no FFI for one signal.
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = status {
        panic!("cannot run `kill -{name} {pid}`: {e}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
