//! A real `redis-server` for tests: on a free loopback port, no persistence, in its own temp
//! dir, killed when dropped. It can be killed and restarted on the same port, to test what
//! happens to clients when Redis goes away and comes back.
//!

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::free_port;

/// How long a starting server may take before the test fails (a readiness wait, not a timing
/// assertion: the machine is shared and may be slow).
const START_WAIT: Duration = Duration::from_secs(20);

pub struct RedisServer {
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// A server that requires `AUTH password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_inner(Some(password.to_owned()))
    }

    fn start_inner(password: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut server = Self { port: 0, password, dir, child: None };
        // The free port is found by binding :0 and letting go; another process can take it in
        // between, so try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn().is_ok() {
                return server;
            }
        }
        panic!("redis-server did not start; its log:\n{}", server.log());
    }

    /// `redis://127.0.0.1:<port>/` (with the password when there is one).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on port {}: {e}; its log:\n{}", self.port, self.log());
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.log_path();
        let mut cmd = Command::new(std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()));
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let mut child =
            cmd.spawn().map_err(|e| format!("cannot run redis-server (is it installed?): {e}"))?;
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if self.server_pid() == Some(child.id()) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("redis-server did not answer in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id of the server answering on our port, once one does. Checked against our
    /// child so that another test's server that grabbed the port is never mistaken for ours.
    fn server_pid(&self) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        if let Some(p) = &self.password {
            s.write_all(format!("AUTH {p}\r\n").as_bytes()).ok()?;
        }
        s.write_all(b"INFO server\r\n").ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while reply.len() < 64 * 1024 {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some(rest) = text.split("process_id:").nth(1)
                && let Some((pid, _)) = rest.split_once("\r\n")
            {
                return pid.trim().parse().ok();
            }
        }
        None
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
