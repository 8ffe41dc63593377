//! Real `redis-server`s for tests, each on free loopback ports, no persistence, in its own temp
//! dir, killed when dropped:
//!
//! - [`RedisServer`]: plain (optionally with a password), or TLS-only ([`RedisServer::start_tls`])
//!   with a certificate from a private CA the test makes ([`Ca`], with `openssl`). It can be
//!   killed and restarted on the same port, to test what clients do when Redis goes away.
//! - [`RedisCluster`]: three primaries joined by `redis-cli --cluster create`.
//! - [`Redis`]: any of the three production shapes vodhook supports, with the `[dedup]`
//!   settings that reach it, so one suite can run against each.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vodhook::config::{DedupBackend, DedupConfig};
use vodhook::redact::Secret;

use super::process::free_port;

/// How long a starting server may take before the test fails (a readiness wait, not a timing
/// assertion: the machine is shared and may be slow).
const START_WAIT: Duration = Duration::from_secs(20);

/// A private certificate authority, made with `openssl` for this test alone.
pub struct Ca {
    dir: tempfile::TempDir,
    name: String,
}

/// A certificate and its key, issued by a [`Ca`].
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let ca = Ca { dir: tempfile::tempdir().expect("temp dir for the CA"), name: name.to_owned() };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &ca.path("ca.key"),
            "-out",
            &ca.path("ca.pem"),
        ]);
        ca
    }

    /// The CA certificate (PEM): what `tls_ca_file` names.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names` (DNS names; IP addresses as `IP:...`).
    pub fn issue(&self, label: &str, names: &[&str]) -> Issued {
        let sans: Vec<String> = names
            .iter()
            .map(|n| if n.starts_with("IP:") { n.to_string() } else { format!("DNS:{n}") })
            .collect();
        let ext = self.dir.path().join(format!("{label}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )
        .expect("write the extensions file");
        let (key, csr, cert) = (
            self.path(&format!("{label}.key")),
            self.path(&format!("{label}.csr")),
            self.path(&format!("{label}.pem")),
        );
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={}", names[0]),
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &self.path("ca.pem"),
            "-CAkey",
            &self.path("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext.to_string_lossy(),
            "-out",
            &cert,
        ]);
        Issued { cert: PathBuf::from(cert), key: PathBuf::from(key) }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ca({})", self.name)
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (./scripts/test installs it): {e}"));
    assert!(out.status.success(), "openssl {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// How a server listens.
#[derive(Debug, Clone)]
enum Listen {
    Plain,
    /// TLS only (`--port 0 --tls-port P`), with this certificate and the CA that issued it.
    Tls {
        issued: Issued,
        ca: PathBuf,
    },
}

pub struct RedisServer {
    port: u16,
    password: Option<String>,
    listen: Listen,
    /// `Some(bus port)` for a cluster node.
    cluster_bus: Option<u16>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_inner(None, Listen::Plain, false)
    }

    /// A server that requires `AUTH password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_inner(Some(password.to_owned()), Listen::Plain, false)
    }

    /// A TLS-only server presenting `issued` (a certificate from `ca`), no plain port.
    pub fn start_tls(issued: &Issued, ca: &Ca) -> Self {
        Self::start_inner(None, Listen::Tls { issued: issued.clone(), ca: ca.cert() }, false)
    }

    fn start_inner(password: Option<String>, listen: Listen, cluster: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        let mut server = Self { port: 0, password, listen, cluster_bus: None, dir, child: None };
        // The free port is found by binding :0 and letting go; another process can take it in
        // between, so try a few.
        for _ in 0..5 {
            server.port = free_port();
            server.cluster_bus = cluster.then(free_port);
            if server.spawn().is_ok() {
                return server;
            }
        }
        panic!("redis-server did not start; its log:\n{}", server.log());
    }

    /// `redis://127.0.0.1:<port>/` (with the password when there is one); `rediss://localhost`
    /// for a TLS server (the name its certificate carries).
    pub fn url(&self) -> String {
        let auth = self.password.as_ref().map(|p| format!(":{p}@")).unwrap_or_default();
        match &self.listen {
            Listen::Plain => format!("redis://{auth}127.0.0.1:{}/", self.port),
            Listen::Tls { .. } => format!("rediss://{auth}localhost:{}/", self.port),
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
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.listen {
            Listen::Plain => {
                cmd.arg("--port").arg(self.port.to_string());
            }
            Listen::Tls { issued, ca } => {
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"])
                    .arg("--tls-cert-file")
                    .arg(&issued.cert)
                    .arg("--tls-key-file")
                    .arg(&issued.key)
                    .arg("--tls-ca-cert-file")
                    .arg(ca);
            }
        }
        if let Some(bus) = self.cluster_bus {
            cmd.args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--cluster-port", &bus.to_string()])
                .arg("--cluster-config-file")
                .arg(self.dir.path().join("nodes.conf"));
        }
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let _ = std::fs::remove_file(&log);
        let mut child =
            cmd.spawn().map_err(|e| format!("cannot run redis-server (is it installed?): {e}"))?;
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if self.is_ours(child.id()) {
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

    /// Whether the server answering on our port is our child `pid`. A plain server is asked its
    /// process id (so another test's server that grabbed the port is never mistaken for ours); a
    /// TLS server, which plain TCP cannot ask, is ready when its own log says so.
    fn is_ours(&self, pid: u32) -> bool {
        match self.listen {
            Listen::Plain => self.server_pid() == Some(pid),
            Listen::Tls { .. } => self.log().contains("Ready to accept connections"),
        }
    }

    fn server_pid(&self) -> Option<u32> {
        let reply = self.plain_command("INFO server")?;
        let rest = reply.split("process_id:").nth(1)?;
        rest.split_once("\r\n")?.0.trim().parse().ok()
    }

    /// One command over plain TCP (inline protocol), the raw reply; `None` if there is none.
    pub fn plain_command(&self, command: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        if let Some(p) = &self.password {
            s.write_all(format!("AUTH {p}\r\n").as_bytes()).ok()?;
        }
        s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while reply.len() < 64 * 1024 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&reply).into_owned();
            let text = if self.password.is_some() {
                text.strip_prefix("+OK\r\n").unwrap_or("").to_owned()
            } else {
                text
            };
            if is_complete(&text) {
                return Some(text);
            }
        }
        None
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Whether `text` holds one whole reply: a bulk string (`$<len>\r\n<data>\r\n`) or a
/// one-line reply (`+`, `-`, `:`).
fn is_complete(text: &str) -> bool {
    match text.strip_prefix('$') {
        Some(rest) => rest
            .split_once("\r\n")
            .and_then(|(len, data)| len.parse::<usize>().ok().map(|len| data.len() >= len + 2))
            .unwrap_or(false),
        None => text.contains("\r\n"),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three primaries (no replicas), each on its own free ports.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> =
            (0..3).map(|_| RedisServer::start_inner(None, Listen::Plain, true)).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli (./scripts/test installs redis-tools): {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every running node says `cluster_state:ok` and knows all three primaries.
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let ready = self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let info = n.plain_command("CLUSTER INFO").unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URL: the first node (the client discovers the others).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Kills node `i` (SIGKILL): its slots are gone until it comes back.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// How many keys node `i` holds (`DBSIZE`).
    pub fn keys_on(&self, i: usize) -> usize {
        let reply = self.nodes[i].plain_command("DBSIZE").unwrap_or_default();
        reply.trim().trim_start_matches(':').parse().unwrap_or(0)
    }
}

/// The production shapes of Redis vodhook supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    /// TLS only, with a certificate from a private CA (`tls_ca_file`).
    Tls,
    /// A 3-node Redis Cluster (`cluster = true`).
    Cluster,
}

/// A running Redis of one [`Shape`], with what vodhook needs to reach it.
pub enum Redis {
    Plain(RedisServer),
    Tls { server: RedisServer, ca: Ca },
    Cluster(RedisCluster),
}

impl Redis {
    pub fn start(shape: Shape) -> Redis {
        match shape {
            Shape::Plain => Redis::Plain(RedisServer::start()),
            Shape::Tls => {
                let ca = Ca::new("vodhook test CA");
                let issued = ca.issue("server", &["localhost", "IP:127.0.0.1"]);
                Redis::Tls { server: RedisServer::start_tls(&issued, &ca), ca }
            }
            Shape::Cluster => Redis::Cluster(RedisCluster::start()),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Redis::Plain(s) | Redis::Tls { server: s, .. } => s.url(),
            Redis::Cluster(c) => c.url(),
        }
    }

    fn ca_file(&self) -> Option<PathBuf> {
        match self {
            Redis::Tls { ca, .. } => Some(ca.cert()),
            _ => None,
        }
    }

    /// `[dedup]` for this Redis, keys under `prefix`.
    pub fn dedup_config(&self, prefix: &str) -> DedupConfig {
        DedupConfig {
            backend: DedupBackend::Redis,
            url: Some(Secret::new(self.url())),
            key_prefix: prefix.into(),
            tls_ca_file: self.ca_file(),
            cluster: matches!(self, Redis::Cluster(_)),
            ..DedupConfig::default()
        }
    }

    /// The `[dedup]` section of a configuration file for this Redis.
    pub fn dedup_toml(&self) -> String {
        let mut toml = format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\n", self.url());
        if let Some(ca) = self.ca_file() {
            toml.push_str(&format!("tls_ca_file = {:?}\n", ca.display().to_string()));
        }
        if matches!(self, Redis::Cluster(_)) {
            toml.push_str("cluster = true\n");
        }
        toml
    }

    pub fn cluster(&self) -> Option<&RedisCluster> {
        match self {
            Redis::Cluster(c) => Some(c),
            _ => None,
        }
    }

    pub fn ca(&self) -> Option<&Ca> {
        match self {
            Redis::Tls { ca, .. } => Some(ca),
            _ => None,
        }
    }
}

/// A server that speaks RESP and answers every command with the same well-formed integer
/// (`:2`): a store that cannot be trusted, for what vodhook does with answers its scripts cannot
/// give. Each connection on its own thread; stops when dropped (the listener closes).
pub struct LyingRedis {
    port: u16,
    _listener: std::sync::Arc<std::net::TcpListener>,
}

impl LyingRedis {
    pub fn start(answer: i64) -> LyingRedis {
        let listener = std::sync::Arc::new(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
        let port = listener.local_addr().expect("local addr").port();
        let accepting = listener.clone();
        std::thread::spawn(move || {
            for stream in accepting.incoming() {
                let Ok(stream) = stream else { return };
                std::thread::spawn(move || answer_every_command(stream, answer));
            }
        });
        LyingRedis { port, _listener: listener }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// Reads RESP arrays of bulk strings (what clients send) and answers each with `:answer`.
fn answer_every_command(stream: TcpStream, answer: i64) {
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    let read_line = |reader: &mut std::io::BufReader<TcpStream>, line: &mut String| {
        line.clear();
        std::io::BufRead::read_line(reader, line).ok().filter(|n| *n > 0).map(|_| line.trim_end().to_owned())
    };
    while let Some(head) = read_line(&mut reader, &mut line) {
        if let Some(count) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) {
            for _ in 0..count {
                let Some(len) = read_line(&mut reader, &mut line) else { return };
                let len: usize = len.trim_start_matches('$').parse().unwrap_or(0);
                let mut data = vec![0; len + 2];
                if reader.read_exact(&mut data).is_err() {
                    return;
                }
            }
        }
        if writer.write_all(format!(":{answer}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}
