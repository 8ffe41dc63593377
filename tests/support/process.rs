//! Child processes for tests: spawned with stdout and stderr captured line by line (so tests
//! can wait for and assert on log lines), signalled (SIGTERM, as Function Compute and Lambda send
//! on scale-in), and stopped when dropped. Also the one list of environment variables vodhook
//! reads, removed from every vodhook the tests start, and free loopback ports.
//!
//! Waits here are waits for a condition (a port accepting, a log line, an exit), each with a
//! generous bound that only exists so a broken build fails instead of hanging CI.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long any wait may take before the test gives up (a hang guard, not an assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Environment variables vodhook reads (and proxies its HTTP client would), which the test
/// runner's own environment must not leak into a vodhook under test.
const CLEARED_ENV: &[&str] = &[
    "VODHOOK_CONFIG",
    "VODHOOK_CALLBACK_URL",
    "VODHOOK_AUTH_KEY",
    "VODHOOK_AUTH_KEY_PREVIOUS",
    "VODHOOK_IMS_AUTH_KEY",
    "VODHOOK_IMS_AUTH_KEY_PREVIOUS",
    "VODHOOK_LISTEN",
    "FC_CUSTOM_LISTEN_PORT",
    "FC_SERVER_PORT",
    "FC_FUNCTION_NAME",
    "FC_FUNCTION_HANDLER",
    "FC_REGION",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "RUST_LOG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Path of the `vodhook` binary Cargo built for these tests.
pub fn vodhook_path() -> &'static str {
    env!("CARGO_BIN_EXE_vodhook")
}

/// A `vodhook` command with a clean environment (none of the variables vodhook reads), run from
/// `dir` so that no `./vodhook.toml` is picked up by accident.
pub fn vodhook_command(dir: &Path) -> Command {
    let mut command = Command::new(vodhook_path());
    command.current_dir(dir).stdin(Stdio::null());
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
}

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The captured output of a process.
#[derive(Debug, Default)]
pub struct Logs {
    lines: Mutex<Vec<(Stream, String)>>,
    changed: Condvar,
}

impl Logs {
    /// The lines, even after a panic elsewhere poisoned the lock (the logs are wanted most then).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Stream, String)>> {
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, stream: Stream, line: String) {
        self.lock().push((stream, line));
        self.changed.notify_all();
    }

    /// Every line so far, both streams, in arrival order per stream.
    pub fn all(&self) -> Vec<(Stream, String)> {
        self.lock().clone()
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.lock().iter().filter(|(s, _)| *s == Stream::Stdout).map(|(_, l)| l.clone()).collect()
    }

    /// Everything so far as one text (for "never contains" checks and failure messages).
    pub fn text(&self) -> String {
        self.lock().iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The stdout lines that are JSON objects (vodhook logs JSON when it believes it runs on
    /// Function Compute or Lambda).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout().iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).collect()
    }

    /// Waits until a line satisfies `pred` and returns it; panics (with the logs) after
    /// [`PATIENCE`].
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.lock();
        loop {
            if let Some((_, line)) = lines.iter().find(|(_, l)| pred(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let text: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
                drop(lines);
                panic!("no log line {what} within {PATIENCE:?}; logs:\n{}", text.join("\n"));
            }
            lines =
                self.changed.wait_timeout(lines, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }

    /// Waits for a JSON log line satisfying `pred`.
    pub fn wait_for_json(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let line =
            self.wait_for(what, |l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| pred(&v)));
        serde_json::from_str(&line).expect("matched as JSON")
    }
}

fn capture(stream: Stream, source: impl Read + Send + 'static, logs: Arc<Logs>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned();
                    logs.push(stream, line);
                }
            }
        }
    });
}

/// A child process with captured output, stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    pub logs: Arc<Logs>,
    exit: Option<ExitStatus>,
    /// Signals go to the whole process group (the child leads its own).
    group: bool,
}

impl Process {
    /// Spawns `command` with stdout and stderr captured. `name` is for messages.
    pub fn spawn(name: &str, command: Command) -> Process {
        Self::spawn_inner(name, command, false)
    }

    /// Like [`Process::spawn`], in a process group of its own, so that signals (and the
    /// clean-up on drop) reach anything it starts too.
    pub fn spawn_group(name: &str, mut command: Command) -> Process {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        Self::spawn_inner(name, command, true)
    }

    fn spawn_inner(name: &str, mut command: Command, group: bool) -> Process {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let logs = Arc::new(Logs::default());
        capture(Stream::Stdout, child.stdout.take().expect("piped stdout"), logs.clone());
        capture(Stream::Stderr, child.stderr.take().expect("piped stderr"), logs.clone());
        Process { name: name.to_owned(), child, logs, exit: None, group }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while the process runs.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Sends SIGKILL: a crash, as far as anyone else can tell.
    pub fn kill(&mut self) {
        let _ = self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (as Function Compute and Lambda do on scale-in).
    pub fn sigterm(&mut self) {
        if let Err(e) = self.signal(libc::SIGTERM) {
            panic!("kill -TERM {}: {e}", self.pid());
        }
    }

    fn signal(&mut self, signal: libc::c_int) -> std::io::Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.pid()).map_err(std::io::Error::other)?;
        let target = if self.group { -pid } else { pid };
        // SAFETY: kill(2) on our own child (or the group it leads), not reaped yet.
        match unsafe { libc::kill(target, signal) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// Waits for the process to exit and returns its status; panics after [`PATIENCE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("{} did not exit within {PATIENCE:?}; logs:\n{}", self.name, self.logs.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} (pid {}) output ----\n{}\n----", self.name, self.pid(), self.logs.text());
        }
        if !self.is_running() {
            return;
        }
        let _ = self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.is_running() {
            let _ = self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Waits until `addr` accepts a TCP connection (true) or the process exits (false).
pub fn wait_accepting(process: &mut Process, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if !process.is_running() {
            // Give the reader threads a moment to collect the last words.
            std::thread::sleep(Duration::from_millis(50));
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() > deadline {
            panic!("nothing accepted on {addr} within {PATIENCE:?}; logs:\n{}", process.logs.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
