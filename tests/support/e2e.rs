//! The real `vodhook` binary, for end-to-end tests: `vodhook serve` on a free loopback port with
//! a configuration file, its stdout and stderr captured, stopped with SIGTERM; and one-shot CLI
//! runs (`plan`, `check-config`, `simulate`, ...).
//!
//! The server logs JSON lines (as on Function Compute: `FC_FUNCTION_NAME` is set), so tests read
//! log records as data instead of matching text. The environment is cleared of every variable
//! vodhook reads, so the developer's shell cannot change what a test sees.
//!
//! The helpers block (processes, pipes): call them from `#[tokio::test(flavor = "multi_thread")]`
//! tests so that the stand-ins on the test's runtime keep answering meanwhile.
//!
//! Include with `#[path = "support/e2e.rs"] mod e2e;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long to wait for something that normally takes milliseconds (start-up, a log line to
/// come through the pipe, shutdown) before giving up with what was captured. A guard against
/// hanging, not a speed requirement: no test asserts on it.
const PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_vodhook")
}

/// Variables vodhook reads; removed from every child's environment unless a test sets them.
const READ_BY_VODHOOK: &[&str] = &[
    "VODHOOK_CONFIG",
    "VODHOOK_CALLBACK_URL",
    "VODHOOK_AUTH_KEY",
    "VODHOOK_AUTH_KEY_PREVIOUS",
    "VODHOOK_LISTEN",
    "FC_CUSTOM_LISTEN_PORT",
    "FC_SERVER_PORT",
    "FC_FUNCTION_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "RUST_LOG",
];

/// A command for the binary with a clean environment, run from a scratch directory (so no
/// `./vodhook.toml` is picked up by accident).
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for name in READ_BY_VODHOOK {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
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
    let output = command(dir, args, env).output().expect("run the vodhook binary");
    cli_run(output)
}

/// [`run_cli`] with `input` on stdin.
pub fn run_cli_with_input(dir: &Path, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> CliRun {
    let mut child = command(dir, args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the vodhook binary");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().expect("wait for vodhook");
    writer.join().expect("stdin writer").expect("write stdin");
    cli_run(output)
}

fn cli_run(output: std::process::Output) -> CliRun {
    CliRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `vodhook serve`.
pub struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    captured: Arc<Mutex<Captured>>,
    readers: Vec<JoinHandle<()>>,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// What the server printed so far.
#[derive(Debug, Default)]
struct Captured {
    stdout: String,
    stderr: String,
}

/// The server did not come up: how it exited and what it said.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl StartFailure {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Server {
    /// Starts `vodhook serve` with `config` (TOML text, written to a temporary file) and `env`,
    /// and waits until it accepts connections. Panics, with its output, if it does not start.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Server {
        Server::try_start(config, env).unwrap_or_else(|failure| {
            panic!("vodhook serve did not start ({}):\n{}", failure.status, failure.output())
        })
    }

    /// [`Server::start`], returning how it failed when it exits instead of listening (a
    /// refused configuration, say).
    pub fn try_start(config: &str, env: &[(&str, &str)]) -> Result<Server, StartFailure> {
        Server::try_start_with(|_| config.to_owned(), env)
    }

    /// [`Server::start`] with a configuration that names the server's own URL
    /// (`http://127.0.0.1:<port>/`), e.g. as the VOD callback URL.
    pub fn start_with(config: impl Fn(&str) -> String, env: &[(&str, &str)]) -> Server {
        Server::try_start_with(config, env).unwrap_or_else(|failure| {
            panic!("vodhook serve did not start ({}):\n{}", failure.status, failure.output())
        })
    }

    fn try_start_with(config: impl Fn(&str) -> String, env: &[(&str, &str)]) -> Result<Server, StartFailure> {
        let mut dir = tempfile::tempdir().expect("temporary directory");
        let config_path = dir.path().join("e2e-vodhook.toml");
        let mut attempts = 0;
        loop {
            attempts += 1;
            let addr = free_port();
            std::fs::write(&config_path, config(&format!("http://{addr}/")))
                .expect("write the configuration");
            match Server::spawn(dir, &config_path, addr, env) {
                Ok(server) => return Ok(server),
                // Another process took the port between our probe and the bind: try another.
                Err((back, failure)) if failure.output().contains("in use") && attempts < 5 => dir = back,
                Err((_, failure)) => return Err(failure),
            }
        }
    }

    fn spawn(
        dir: tempfile::TempDir,
        config: &Path,
        addr: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<Server, (tempfile::TempDir, StartFailure)> {
        let listen = addr.to_string();
        let config_text = config.to_str().expect("UTF-8 temp path");
        let mut vars = vec![
            ("VODHOOK_LISTEN", listen.as_str()),
            ("VODHOOK_CONFIG", config_text),
            // JSON log lines, as on Function Compute.
            ("FC_FUNCTION_NAME", "vodhook-e2e"),
        ];
        vars.extend_from_slice(env);
        let mut child = command(dir.path(), &["serve"], &vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vodhook serve");
        let captured = Arc::new(Mutex::new(Captured::default()));
        let readers = vec![
            reader(child.stdout.take().expect("piped stdout"), captured.clone(), true),
            reader(child.stderr.take().expect("piped stderr"), captured.clone(), false),
        ];
        let mut server = Server { child: None, addr, captured, readers, dir, config: config.to_path_buf() };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                server.join_readers();
                let failure = {
                    let captured = server.lock();
                    StartFailure { status, stdout: captured.stdout.clone(), stderr: captured.stderr.clone() }
                };
                return Err((server.into_dir(), failure));
            }
            if TcpStream::connect(addr).is_ok() {
                server.child = Some(child);
                return Ok(server);
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("vodhook serve did not listen on {addr}:\n{}", server.output());
            }
            std::thread::sleep(POLL);
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/` + `path` (without a leading slash).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration file the server was started with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// A scratch directory that lives as long as the server (for CLI runs, extra files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything printed so far, stdout then stderr.
    pub fn output(&self) -> String {
        let captured = self.lock();
        format!("{}{}", captured.stdout, captured.stderr)
    }

    /// The JSON log records printed so far (lines that are not JSON, such as FC's invoke
    /// markers, are skipped).
    pub fn records(&self) -> Vec<Value> {
        let captured = self.lock();
        captured
            .stdout
            .lines()
            .chain(captured.stderr.lines())
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
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
            std::thread::sleep(POLL);
        }
    }

    /// The summary record (`request done`) of each request so far, in order; waits for `n`.
    pub fn summaries(&self, n: usize) -> Vec<Value> {
        self.wait_for_records("request done", n).into_iter().map(|r| r["fields"].clone()).collect()
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit status and everything printed.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let status = self.terminate();
        (status, self.output())
    }

    fn terminate(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            return ExitStatus::default();
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if sent && started.elapsed() < PATIENCE => std::thread::sleep(POLL),
                _ => {
                    let _ = child.kill();
                    break child.wait().expect("wait for vodhook");
                }
            }
        };
        self.join_readers();
        status
    }

    /// The scratch directory of a server that never started.
    fn into_dir(mut self) -> tempfile::TempDir {
        let placeholder = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.captured.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Copies a child's stream, line by line, into `captured`.
fn reader(
    stream: impl Read + Send + 'static,
    captured: Arc<Mutex<Captured>>,
    stdout: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let mut captured = captured.lock().unwrap_or_else(|e| e.into_inner());
            if stdout {
                captured.stdout.push_str(&text);
            } else {
                captured.stderr.push_str(&text);
            }
            line.clear();
        }
    })
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address")
}

/// The headers VOD sends with a signed callback to `callback_url`, at `timestamp`.
pub fn vod_headers(callback_url: &str, key: &str, timestamp: i64) -> [(&'static str, String); 2] {
    [
        (vodhook::auth::TIMESTAMP_HEADER, timestamp.to_string()),
        (vodhook::auth::SIGNATURE_HEADER, vodhook::auth::signature(callback_url, timestamp, key)),
    ]
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A test fixture's text (`tests/fixtures/<name>`).
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A test fixture's path.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// vodhook's answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The body parsed as JSON (`Null` when it is not).
    pub json: Value,
    pub text: String,
}

/// POSTs `body` to `url` with `headers`, as VOD (or FC) would.
pub async fn post(url: &str, body: impl Into<String>, headers: &[(&str, String)]) -> Answer {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body.into());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the answer");
    Answer { status, headers, json: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

/// A VOD HTTP callback: `body` POSTed to `url`, signed for `callback_url` with `key` now.
pub async fn callback(url: &str, callback_url: &str, key: &str, body: &str) -> Answer {
    post(url, body, &vod_headers(callback_url, key, unix_now())).await
}
