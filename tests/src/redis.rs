//! A real `redis-server` per test, on a free loopback port, without persistence (or, with
//! [`RedisServer::start_persistent`], with an fsynced append-only file in a temporary directory); killed on drop.
//! Never the system's Redis on 6379. `scripts/test.sh` makes sure the binary is installed.
//!
//! High availability: [`RedisServer::start_replica_of`] starts a replica of another server, and
//! [`SentinelServer`] a sentinel (`redis-server --sentinel`, from the same package) monitoring a primary, so
//! that a test can fail over (`SENTINEL FAILOVER`, or by killing the primary) and watch the gateway follow.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Where a persistent server keeps its append-only file.
    data: Option<tempfile::TempDir>,
    /// Its working directory (a replica writes the primary's snapshot there): never the test's own, where a
    /// later server would load it.
    work: tempfile::TempDir,
    /// The primary this server replicates (`--replicaof`), when it is a replica.
    replica_of: Option<u16>,
}

/// One stream entry: its id and its fields, in order.
pub type StreamEntry = (String, Vec<(String, String)>);

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        let port = crate::free_port();
        let mut server =
            RedisServer { port, child: None, data: None, replica_of: None, work: tempfile::tempdir().unwrap() };
        server.spawn();
        server
    }

    /// Like [`RedisServer::start`], but every write is in an fsynced append-only file (`appendfsync always`), so
    /// that a [`RedisServer::restart`] after a [`RedisServer::kill`] comes back with the data.
    pub fn start_persistent() -> RedisServer {
        let port = crate::free_port();
        let mut server = RedisServer {
            port,
            child: None,
            data: Some(tempfile::tempdir().unwrap()),
            replica_of: None,
            work: tempfile::tempdir().unwrap(),
        };
        server.spawn();
        server
    }

    /// A replica of the server on `primary_port` (not persistent), on a free port, once its link to the primary
    /// is up.
    pub fn start_replica_of(primary_port: u16) -> RedisServer {
        let port = crate::free_port();
        let mut server = RedisServer {
            port,
            child: None,
            data: None,
            replica_of: Some(primary_port),
            work: tempfile::tempdir().unwrap(),
        };
        server.spawn();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.command("INFO replication").contains("master_link_status:up") {
            assert!(Instant::now() < deadline, "the replica on {port} never synced with {primary_port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Every entry of the stream `key` (`XRANGE key - +`), through a real client.
    pub fn stream(&self, key: &str) -> Vec<StreamEntry> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
        redis::cmd("XRANGE").arg(key).arg("-").arg("+").query(&mut connection).unwrap()
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The `[redis]` config section pointing at this server, with `extra` keys.
    pub fn config_section(&self, extra: &str) -> String {
        format!("[redis]\nurl = \"{}\"\n{extra}\n", self.url())
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty unless persistent).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, line: &str) -> String {
        raw_command(self.port, line)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
        if let Some(primary) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        match &self.data {
            Some(dir) => command.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"]).arg(dir.path()),
            None => command.args(["--appendonly", "no", "--dir"]).arg(self.work.path()),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_ping(self.port);
    }
}

/// Waits until something on `port` answers `PING`.
fn wait_for_ping(port: u16) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 16];
            if stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut buf).is_ok_and(|n| n > 0) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sentinel (`redis-server <config> --sentinel`) on a free port, monitoring one primary under
/// [`SentinelServer::MASTER_NAME`] with quorum 1 and short timeouts (down after 500 ms), so that one sentinel
/// alone fails over within a few seconds. Killed on drop.
pub struct SentinelServer {
    pub port: u16,
    child: Option<Child>,
    /// Its config file lives here (a sentinel rewrites it).
    _dir: tempfile::TempDir,
}

impl SentinelServer {
    /// The name the primary is monitored under.
    pub const MASTER_NAME: &'static str = "penghubung";

    /// Starts a sentinel monitoring the primary on `primary_port`, and waits until it knows the primary's
    /// replicas (`replicas` of them).
    pub fn start(primary_port: u16, replicas: usize) -> SentinelServer {
        let port = crate::free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sentinel.conf");
        let name = Self::MASTER_NAME;
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {name} 500\nsentinel failover-timeout {name} 2000\n\
                 sentinel parallel-syncs {name} 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        wait_for_ping(port);
        let sentinel = SentinelServer { port, child: Some(child), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Known, and good to promote: flags exactly `slave` (not down or disconnected), its link up.
            let known = sentinel.command(&format!("SENTINEL REPLICAS {name}"));
            let good = known.matches("\r\nflags\r\n$5\r\nslave\r\n").count();
            let linked = known.matches("\r\nmaster-link-status\r\n$2\r\nok\r\n").count();
            if good >= replicas && linked >= replicas {
                return sentinel;
            }
            assert!(Instant::now() < deadline, "the sentinel never saw {replicas} good replica(s): {known}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `SENTINEL FAILOVER`, retried while the sentinel finds no replica good to promote yet (its view of a
    /// replica is refreshed periodically).
    pub fn fail_over(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = self.command(&format!("SENTINEL FAILOVER {}", Self::MASTER_NAME));
            if answer.starts_with("+OK") {
                return;
            }
            assert!(Instant::now() < deadline, "no failover: {answer}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The port of the primary this sentinel names now.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = self.command(&format!("SENTINEL GET-MASTER-ADDR-BY-NAME {}", Self::MASTER_NAME));
        reply.lines().filter(|l| !l.starts_with(['*', '$'])).nth(1)?.trim().parse().ok()
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, line: &str) -> String {
        raw_command(self.port, line)
    }
}

impl Drop for SentinelServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2/penghubung`.
pub fn sentinel_url(sentinels: &[&SentinelServer]) -> String {
    let hosts: Vec<String> = sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
    format!("redis+sentinel://{}/{}", hosts.join(","), SentinelServer::MASTER_NAME)
}

/// One command to `port` (inline protocol); the raw reply.
fn raw_command(port: u16, line: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("redis-server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let mut buf = [0u8; 16384];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
