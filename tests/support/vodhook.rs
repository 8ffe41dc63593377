//! The real `vodhook` binary under test: `vodhook serve` on a free loopback port (one, or a
//! [`Cluster`] of several sharing one configuration, as Function Compute runs them side by side),
//! and one-shot CLI runs (`plan`, `check-config`, `drain`, ...). Every process is a
//! [`Process`]: the one way output is captured, signals are sent and processes are stopped.
//!
//! By default the server logs JSON lines, as on Function Compute (`FC_FUNCTION_NAME` is set), so
//! tests read log records as data instead of matching text.
//!
//! The helpers block (processes, pipes): call them from `#[tokio::test(flavor = "multi_thread")]`
//! tests so that the stand-ins on the test's runtime keep answering meanwhile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{PATIENCE, Process, free_port, vodhook_command, wait_accepting};

/// Makes a configuration from the server's own URL.
type ConfigFn<'a> = Box<dyn Fn(&str) -> String + Send + 'a>;

/// What to start `vodhook serve` with.
#[derive(Default)]
pub struct Options<'a> {
    env: Vec<(String, String)>,
    /// Human-readable logs instead of the JSON that Function Compute gets.
    plain_logs: bool,
    /// The configuration, made from the server's own URL (`http://127.0.0.1:<port>/`).
    config: Option<ConfigFn<'a>>,
    /// An existing configuration file (shared by a cluster).
    config_file: Option<PathBuf>,
    /// `RLIMIT_NOFILE` for the process.
    descriptor_limit: Option<u64>,
}

impl<'a> Options<'a> {
    /// A server with this configuration text.
    pub fn config(text: &str) -> Self {
        let text = text.to_owned();
        Options::default().config_for(move |_| text.clone())
    }

    /// A configuration that names the server's own URL (e.g. as the VOD callback URL).
    pub fn config_for(mut self, config: impl Fn(&str) -> String + Send + 'a) -> Self {
        self.config = Some(Box::new(config));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(self, vars: &[(&str, &str)]) -> Self {
        vars.iter().fold(self, |options, (k, v)| options.env(k, v))
    }

    pub fn plain_logs(mut self) -> Self {
        self.plain_logs = true;
        self
    }

    /// As on Function Compute: the four variables FC sets in every instance, which together let
    /// vodhook believe FC's `x-fc-*` request headers (see [`fc_event_headers`]).
    pub fn on_fc(self) -> Self {
        FC_ENV.iter().fold(self, |options, (k, v)| options.env(k, v))
    }

    /// Starts the process with at most `limit` file descriptors (`RLIMIT_NOFILE`).
    pub fn descriptor_limit(mut self, limit: u64) -> Self {
        self.descriptor_limit = Some(limit);
        self
    }

    /// An existing configuration file (a cluster's shared one).
    pub fn config_file(mut self, path: &Path) -> Self {
        self.config_file = Some(path.to_path_buf());
        self
    }
}

/// What Function Compute sets in an instance's environment.
pub const FC_ENV: [(&str, &str); 4] = [
    ("FC_FUNCTION_NAME", "vodhook-test"),
    ("FC_REGION", "cn-shanghai"),
    ("FC_ACCOUNT_ID", "1234567890123456"),
    ("FC_INSTANCE_ID", "c-test-0001"),
];

/// The headers FC puts on an event invocation (`POST /invoke`), which only FC can send.
pub fn fc_event_headers(request_id: &str) -> Vec<(&'static str, String)> {
    vec![("x-fc-control-path", "/invoke".to_owned()), ("x-fc-request-id", request_id.to_owned())]
}

/// `vodhook serve`, accepting connections.
pub struct Vodhook {
    pub process: Process,
    pub addr: SocketAddr,
    config: Option<PathBuf>,
    // Last: the directory outlives the process writing into it.
    dir: tempfile::TempDir,
}

/// The server did not come up: how it exited and what it said.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    text: String,
}

impl StartFailure {
    /// Everything it printed.
    pub fn output(&self) -> String {
        self.text.clone()
    }
}

impl Vodhook {
    /// No configuration file: the built-in default, JSON logs, no auth key.
    pub fn start() -> Vodhook {
        Self::start_with(Options::default())
    }

    /// With `config` (TOML text) and `env`: the common case.
    pub fn serve(config: &str, env: &[(&str, &str)]) -> Vodhook {
        Self::start_with(Options::config(config).envs(env))
    }

    /// Starts `vodhook serve` and waits until its port accepts connections; panics, with its
    /// output, if it does not start.
    pub fn start_with(options: Options<'_>) -> Vodhook {
        Self::try_start_with(options)
            .unwrap_or_else(|f| panic!("vodhook serve did not start ({}):\n{}", f.status, f.text))
    }

    /// [`Vodhook::start_with`], returning how it failed when it exits instead of listening (a
    /// refused configuration, say). A port taken by another test between choosing and binding is
    /// retried with a new one.
    pub fn try_start_with(options: Options<'_>) -> Result<Vodhook, StartFailure> {
        let dir = tempfile::tempdir().expect("temporary directory");
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let config = match (&options.config_file, &options.config) {
                (Some(file), _) => Some(file.clone()),
                (None, Some(make)) => {
                    let path = dir.path().join("vodhook.toml");
                    std::fs::write(&path, make(&format!("http://{addr}/"))).expect("write the configuration");
                    Some(path)
                }
                (None, None) => None,
            };
            let mut command = vodhook_command(dir.path());
            command.arg("serve").env("VODHOOK_LISTEN", addr.to_string()).env("RUST_LOG", "info");
            if let Some(config) = &config {
                command.env("VODHOOK_CONFIG", config);
            }
            if !options.plain_logs {
                command.env("FC_FUNCTION_NAME", "vodhook-test");
            }
            for (key, value) in &options.env {
                command.env(key, value);
            }
            if let Some(limit) = options.descriptor_limit {
                limit_descriptors(&mut command, limit);
            }
            let mut process = Process::spawn("vodhook serve", command);
            if wait_accepting(&mut process, addr) {
                return Ok(Vodhook { process, addr, config, dir });
            }
            let text = process.logs.text();
            let status = process.wait_exit();
            if !text.contains("in use") {
                return Err(StartFailure { status, text });
            }
        }
        panic!("no free port found for vodhook in 5 tries");
    }

    /// `http://127.0.0.1:<port>/` + `path` (with or without its leading slash).
    /// The process's peak resident memory so far (`VmHWM` in `/proc/<pid>/status`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .expect("read the process's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The configuration file the server was started with.
    pub fn config_path(&self) -> &Path {
        self.config.as_deref().expect("started with a configuration")
    }

    /// A scratch directory that lives as long as the server (for CLI runs, extra files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn logs(&self) -> &super::process::Logs {
        &self.process.logs
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.process.logs.text()
    }

    /// The JSON log records printed so far (lines that are not JSON, such as FC's invoke
    /// markers, are skipped).
    pub fn records(&self) -> Vec<Value> {
        let lines = self.process.logs.all();
        lines
            .iter()
            .filter_map(|(_, line)| serde_json::from_str::<Value>(line).ok())
            .filter(|record| record.get("fields").is_some())
            .collect()
    }

    /// Log records whose message is `message`.
    pub fn records_with_message(&self, message: &str) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["fields"]["message"] == message).collect()
    }

    /// Waits until at least `n` records with `message` were printed (they go through a pipe, so
    /// they may arrive just after the response) and returns them all.
    pub fn wait_for_records(&self, message: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let records = self.records_with_message(message);
            if records.len() >= n {
                return records;
            }
            if started.elapsed() > PATIENCE {
                panic!("expected {n} log records {message:?}, found {}:\n{}", records.len(), self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The summary record (`request done`) of each request so far, in order; waits for `n`.
    pub fn summaries(&self, n: usize) -> Vec<Value> {
        self.wait_for_records("request done", n).into_iter().map(|r| r["fields"].clone()).collect()
    }

    /// Sends SIGKILL and waits: a crash.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Sends SIGTERM (what Function Compute sends on scale-in), without waiting.
    pub fn terminate(&mut self) {
        self.process.sigterm();
    }

    /// SIGTERM, then waits for the exit; returns the exit status and everything printed.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.process.sigterm();
        let status = self.process.wait_exit();
        (status, self.output())
    }

    /// Waits, off the async runtime's threads, for the process to exit.
    pub async fn exited(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.process.try_exit() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sets the child's `RLIMIT_NOFILE` to `limit` before it runs.
fn limit_descriptors(command: &mut std::process::Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: setrlimit is async-signal-safe and touches only the child being created.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Several `vodhook serve` processes with one configuration file, and the tools that share it.
pub struct Cluster {
    nodes: Vec<Vodhook>,
    config: PathBuf,
    /// What every instance's environment has beyond the defaults; the commands get it too.
    env: Vec<(String, String)>,
    // Last: the directory outlives the processes that read from it.
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes `config_toml` to a file and starts `n` instances with it, as on Function Compute
    /// (see [`Options::on_fc`]); returns once every one accepts connections.
    pub async fn start(n: usize, config_toml: &str) -> Cluster {
        Cluster::start_with_env(n, config_toml, &[]).await
    }

    /// [`Cluster::start`] with `env` set for every instance.
    pub async fn start_with_env(n: usize, config_toml: &str, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let config = dir.path().join("vodhook.toml");
        std::fs::write(&config, config_toml).expect("write the configuration");
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let options = Options::default().config_file(&config).on_fc().envs(env);
            let node = tokio::task::spawn_blocking(move || Vodhook::start_with(options));
            nodes.push(node.await.expect("the start thread"));
        }
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Cluster { nodes, config, env, dir }
    }

    pub fn node(&self, i: usize) -> &Vodhook {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Vodhook {
        &mut self.nodes[i]
    }

    pub fn nodes(&self) -> &[Vodhook] {
        &self.nodes
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Runs `vodhook <args>` to completion with the cluster's configuration and environment,
    /// off the async runtime's threads.
    pub async fn cli(&self, args: &[&str]) -> CliRun {
        let dir = self.dir.path().to_path_buf();
        let config = self.config.to_string_lossy().into_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut env = self.env.clone();
        env.extend([("VODHOOK_CONFIG".to_owned(), config), ("RUST_LOG".to_owned(), "info".to_owned())]);
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_cli(&dir, &args, &env)
        })
        .await
        .expect("the command's thread")
    }

    /// Every instance's log, labelled: for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- vodhook #{i} log ---\n{}\n", n.output()))
            .collect()
    }
}

/// What a one-shot CLI run printed.
#[derive(Debug)]
pub struct CliRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Both streams, for greps.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Stdout's lines, each parsed as JSON (panics, showing the output, on a line that is not).
    pub fn ndjson(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}\n{self:?}"))
            })
            .collect()
    }
}

/// Runs `vodhook <args>` to completion in `dir` with `env` (and nothing else vodhook reads).
pub fn run_cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CliRun {
    run_cli_with_input(dir, args, env, b"")
}

/// [`run_cli`] with `input` on stdin.
pub fn run_cli_with_input(dir: &Path, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> CliRun {
    let mut command = vodhook_command(dir);
    command.args(args).envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the vodhook binary");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().expect("wait for vodhook");
    // A command that does not read stdin may close it first: not a failure of the test.
    let _ = writer.join().expect("stdin writer");
    CliRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
