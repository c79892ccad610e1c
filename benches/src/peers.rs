//! The proxies the load harness compares, each started as a child process with a generated config in a
//! temporary directory: Penghubung itself (the release binary), nginx and haproxy (when installed; Debian:
//! `apt-get install -y nginx haproxy`). Every child is held by a [`ChildGuard`] that stops it when dropped —
//! also when the harness returns early with an error or panics — so no proxy outlives a run.
//!
//! Each proxy has an mTLS variant (`start_*_mtls`, for `--mode mtls`) that serves the bench PKI's server
//! certificate ([`crate::pki::Pki`]), requires a client certificate from the bench CA (checked against its CRL)
//! and is only considered ready once it answers over mTLS. [`start_penghubung_full`] adds every check a
//! deployment runs (`--mode full`); [`start_penghubung_default`] runs the embedded default config and
//! [`ChildGuard::rss_kib`] reads resident memory (`--mode memory`).
//!
//! Used by `cargo run -p penghubung-benches --release --bin load`; measures nothing by itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::pki::Pki;
pub use crate::raw::parse_response;

/// The path every target is asked for: the route of the bench service on Penghubung; the other targets
/// ignore the path.
pub const BENCH_PATH: &str = "/bench/echo/v1/anything";

/// Anything that went wrong while starting or checking a peer, in words.
pub type Error = String;

/// A child process that is stopped when the guard is dropped: SIGTERM first (nginx's master then stops its
/// workers, Penghubung drains), SIGKILL after a short grace.
pub struct ChildGuard {
    name: String,
    child: Child,
    /// The child's temporary directory (config, logs); removed after the child is gone.
    dir: Option<TempDir>,
}

/// The kernel's clock ticks per second for process times (`getconf CLK_TCK`; 100 on Linux when unknown).
/// CPU time used by a process, split into user space and the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

/// What the harness reads of `/proc/PID/stat`.
struct ProcStat {
    parent: u32,
    cpu: CpuTime,
}

impl ProcStat {
    fn read(pid: u32) -> Option<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the `)` closing the command name come field 3 (state), 4 (parent), ..., 14 (utime), 15 (stime).
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let ticks = |i: usize| {
            Some(Duration::from_secs_f64(fields.get(i)?.parse::<u64>().ok()? as f64 / clock_ticks_per_second()))
        };
        Some(ProcStat { parent: fields.get(1)?.parse().ok()?, cpu: CpuTime { user: ticks(11)?, system: ticks(12)? } })
    }
}

/// `VmRSS` of `/proc/PID/status` in KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

impl ChildGuard {
    /// Spawns `command` with stdout and stderr sent to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, dir: TempDir) -> Result<ChildGuard, Error> {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log")))
            .map_err(|e| format!("{name}: cannot create its log file: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("{name}: {e}"))?;
        command.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(log2));
        let child = command.spawn().map_err(|e| format!("{name}: cannot start {command:?}: {e}"))?;
        Ok(ChildGuard { name: name.to_string(), child, dir: Some(dir) })
    }

    /// CPU time the child and its own children (nginx's workers) have used so far, all threads, from
    /// `/proc/PID/stat`; `None` where that cannot be read.
    pub fn cpu_time(&self) -> Option<CpuTime> {
        let pid = self.child.id();
        let mut total = ProcStat::read(pid)?.cpu;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(other) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(stat) = ProcStat::read(other).filter(|s| s.parent == pid) {
                total.user += stat.cpu.user;
                total.system += stat.cpu.system;
            }
        }
        Some(total)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (`VmRSS` of `/proc/PID/status`, KiB) of the child plus that of its own children (nginx's
    /// workers); `None` where that cannot be read. Pages shared between a master and its workers count twice, as
    /// they do when adding up `ps`'s RSS column.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id();
        let mut total = vm_rss_kib(pid)?;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(other) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if ProcStat::read(other).is_some_and(|s| s.parent == pid) {
                total += vm_rss_kib(other).unwrap_or(0);
            }
        }
        Some(total)
    }

    /// The child's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("."), TempDir::path)
    }

    /// The child's combined output so far (for error messages).
    pub fn output(&self) -> String {
        let mut text = std::fs::read_to_string(self.dir().join(format!("{}.log", self.name))).unwrap_or_default();
        if let Ok(errors) = std::fs::read_to_string(self.dir().join("error.log")) {
            text.push_str(&errors);
        }
        text
    }

    /// Waits until `GET path` on `addr` answers `200`, failing early if the child exits.
    pub fn wait_ready(&mut self, addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), Error> {
        self.wait_ready_by(addr, path, timeout, || http_get(addr, path))
    }

    /// Waits until `GET path` on `addr` over mTLS (with `config`'s client certificate) answers `200`, failing
    /// early if the child exits.
    pub fn wait_ready_tls(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<(), Error> {
        self.wait_ready_by(addr, path, timeout, || {
            crate::mtls::https_get(addr, path, Arc::clone(config)).map(|(status, body, _)| (status, body))
        })
    }

    /// Waits until `probe` (a `GET path` on `addr`) answers `200`, failing early if the child exits.
    fn wait_ready_by(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> std::io::Result<(u16, Vec<u8>)>,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited with {status} before it was ready:\n{}", self.name, self.output()));
            }
            match probe() {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{} did not answer GET {path} with 200 on {addr} within {timeout:?} (last: {last}):\n{}",
            self.name,
            self.output()
        ))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // nginx writes its pid file; once the master is gone its workers are too. Remove the directory last.
        drop(self.dir.take());
    }
}

/// A free loopback port (bound and released; another process could take it in between, which is unlikely).
pub fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// One blocking `GET` with `Connection: close`: the status and the body (assumed not chunked). Used for
/// readiness and sanity checks only, never for load.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// One blocking `POST` of `body` with `content_type` and `Connection: close`: the status and the body (assumed
/// not chunked). For sanity checks only, never for load.
pub fn http_post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// `name` on `PATH`, or in the sbin folders that a non-root `PATH` often lacks.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The first line a program prints for `args` (on stdout or stderr), e.g. its version.
pub fn program_version(program: &Path, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

fn tempdir(name: &str) -> Result<TempDir, Error> {
    tempfile::Builder::new()
        .prefix(&format!("penghubung-load-{name}-"))
        .tempdir()
        .map_err(|e| format!("{name}: cannot create a temporary directory: {e}"))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A started peer: its process and where it listens.
pub struct Peer {
    pub guard: ChildGuard,
    pub addr: SocketAddr,
}

/// How a peer's listener is reached: plain HTTP, or mTLS with the bench PKI (server certificate, client CA,
/// CRL) and the client config the readiness probe presents.
#[derive(Clone, Copy)]
pub enum Listener<'a> {
    Plain,
    Mtls { pki: &'a Pki, client: &'a Arc<rustls::ClientConfig> },
}

impl Listener<'_> {
    fn wait_ready(self, guard: &mut ChildGuard, addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), Error> {
        match self {
            Listener::Plain => guard.wait_ready(addr, path, timeout),
            Listener::Mtls { client, .. } => guard.wait_ready_tls(addr, path, timeout, client),
        }
    }
}

/// Both approvals an active service needs (the policy refuses to load one without them).
const APPROVALS: &str = "[approvals.operations]\nby = \"bench-operasi\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"bench\"\n\n\
                         [approvals.security]\nby = \"bench-keamanan\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"bench\"\n";

/// A path as a TOML basic string (the harness's temporary paths hold no control characters).
fn toml_path(path: &Path) -> String {
    format!("\"{}\"", path.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
}

/// Starts the Penghubung binary at `binary` with `threads` runtime workers, one plaintext listener, logging at
/// `warn` without access log, no file watching, and a store holding only `bench/echo` v1 → `upstream`.
///
/// A plaintext listener has no caller identity, so the policy is off (`[policy] enforce = false`): this
/// measures the bare proxy.
pub fn start_penghubung(binary: &Path, threads: usize, upstream: SocketAddr) -> Result<Peer, Error> {
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Plain,
        false,
        &BenchLimits::Off,
        "",
        &BenchStore::default(),
        &[],
    )
}

/// Rate limits of a Penghubung under load (`--mode ratelimit`).
pub enum BenchLimits {
    /// `[ratelimit] enabled = false`.
    Off,
    /// The service has a `rate_limit` too high to refuse anything (every request is still counted), in process.
    Local,
    /// The same limit shared through Redis at this URL (one script call per request).
    Redis(String),
}

/// Like [`start_penghubung`] (plaintext, policy off), with `limits`.
pub fn start_penghubung_limited(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    limits: &BenchLimits,
) -> Result<Peer, Error> {
    start_penghubung_with(binary, threads, upstream, Listener::Plain, false, limits, "", &BenchStore::default(), &[])
}

/// A `redis-server` on a free loopback port without persistence (for `--mode ratelimit`); stopped on drop.
pub fn start_redis(binary: &Path) -> Result<(ChildGuard, String), Error> {
    let dir = tempdir("redis")?;
    let port = free_port()?;
    let mut command = Command::new(binary);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .current_dir(dir.path());
    let mut guard = ChildGuard::spawn("redis-server", command, dir)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((guard, format!("redis://127.0.0.1:{port}")));
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            return Err(format!("redis-server exited ({status}): {}", guard.output()));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("redis-server did not listen on {port}: {}", guard.output()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`start_penghubung`] (plaintext, policy off), with an audit trail: `None` none, `Some("async")` or
/// `Some("sync")` for every exchange. The segments, the key and the NIK secret go to the peer's temporary
/// directory (on the same disk as `/tmp`, so `sync` pays a real fsync per group commit).
pub fn start_penghubung_audit(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    durability: Option<&str>,
) -> Result<Peer, Error> {
    let audit = match durability {
        None => "[audit]\nenabled = false\n".to_string(),
        Some(d) => audit_section(d),
    };
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Plain,
        false,
        &BenchLimits::Off,
        &audit,
        &BenchStore::default(),
        &[],
    )
}

/// The adapter of the bench service in `--mode adapter`.
pub enum BenchAdapter<'a> {
    /// `[adapter] name = "passthrough"`: the adapter phase runs and changes nothing.
    Passthrough,
    /// `[adapter] name = "splp"`: a bearer token from `token_url` (consumer key and secret by HTTP Basic, read
    /// from the secret files in `secrets_dir`), cached and put on every request.
    Splp { token_url: &'a str, secrets_dir: &'a Path },
}

/// The names of the secret files [`BenchAdapter::Splp`] reads its consumer key and secret from.
pub const BENCH_SPLP_SECRETS: [&str; 2] = ["bench-splp-consumer-key", "bench-splp-consumer-secret"];

/// Like [`start_penghubung`] (plaintext, policy, limits and audit off), with `adapter` on the bench service:
/// the two gateways of `--mode adapter` differ in nothing else.
pub fn start_penghubung_adapter(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    adapter: &BenchAdapter<'_>,
) -> Result<Peer, Error> {
    let (service_extra, extra) = match adapter {
        BenchAdapter::Passthrough => ("\n[adapter]\nname = \"passthrough\"\n".to_string(), String::new()),
        BenchAdapter::Splp { token_url, secrets_dir } => (
            format!(
                "\n[adapter]\nname = \"splp\"\n\n[adapter.settings]\ntoken_url = \"{token_url}\"\n\
                 consumer_key = {{ secret = \"{}\" }}\nconsumer_secret = {{ secret = \"{}\" }}\n",
                BENCH_SPLP_SECRETS[0], BENCH_SPLP_SECRETS[1]
            ),
            format!("\n[secrets]\ndir = {}\n", toml_path(secrets_dir)),
        ),
    };
    let store = BenchStore { service_extra, ..BenchStore::default() };
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Plain,
        false,
        &BenchLimits::Off,
        &format!("[audit]\nenabled = false\n{extra}"),
        &store,
        &[],
    )
}

/// Starts `penghubung serve` on its embedded default config (`penghubung::config::DEFAULT_CONFIG`: an mTLS
/// listener, one worker thread per core, the baseline store seeded into `./policies`, access log, file
/// watching, the `async` audit trail) in a temporary directory, changed in two places only: the listener's
/// address is a free loopback port instead of `127.0.0.1:8443`, and with `audit` false `[audit] enabled =
/// false`. Its `./pki` holds the bench PKI's server certificate, CA and CRL under the default names (the
/// audit signing key and NIK secret are created there as usual). Ready once `/_penghubung/health` answers
/// over mTLS with `client`. For `--mode memory`.
pub fn start_penghubung_default(
    binary: &Path,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
    audit: bool,
) -> Result<Peer, Error> {
    let dir = tempdir("penghubung-default")?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = penghubung::config::DEFAULT_CONFIG.to_string();
    let listen = "address = \"127.0.0.1:8443\"";
    if !config.contains(listen) {
        return Err(format!("the embedded default config no longer has `{listen}`; update the harness"));
    }
    config = config.replacen(listen, &format!("address = \"{addr}\""), 1);
    // The ops listener on a free port (the default's 9090 may be taken).
    config = config.replacen("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"", 1);
    if !audit {
        let enabled = config
            .find("\n[audit]")
            .and_then(|section| Some(section + config[section..].find("\nenabled = true")?))
            .ok_or("the embedded default config no longer has `[audit] enabled = true`; update the harness")?;
        config.replace_range(enabled..enabled + "\nenabled = true".len(), "\nenabled = false");
    }
    write(&dir.path().join("penghubung.toml"), &config)?;
    for (from, to) in [
        (&pki.server_cert, "server.crt"),
        (&pki.server_key, "server.key"),
        (&pki.ca_cert, "ca.crt"),
        (&pki.crl, "crl.pem"),
    ] {
        let target = dir.path().join("pki").join(to);
        std::fs::create_dir_all(dir.path().join("pki")).map_err(|e| format!("cannot create pki/: {e}"))?;
        std::fs::copy(from, &target)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), target.display()))?;
    }
    let mut command = Command::new(binary);
    command.arg("serve").arg("--config").arg("penghubung.toml").current_dir(dir.path());
    let mut guard = ChildGuard::spawn("penghubung", command, dir)?;
    Listener::Mtls { pki, client }.wait_ready(&mut guard, addr, "/_penghubung/health", Duration::from_secs(30))?;
    Ok(Peer { guard, addr })
}

/// Peak resident memory (KiB) of `penghubung check --config penghubung.toml` run in `dir` (a directory
/// prepared by [`start_penghubung_default`]), measured by `/usr/bin/time -v`; the command must succeed.
pub fn check_peak_rss_kib(binary: &Path, dir: &Path) -> Result<u64, Error> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return Err("needs /usr/bin/time (Debian: apt-get install -y time)".into());
    }
    let output = Command::new(time)
        .arg("-v")
        .arg(binary)
        .args(["check", "--config", "penghubung.toml"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {} check: {e}", binary.display()))?;
    let report = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "penghubung check failed ({}): {}{report}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no peak RSS in /usr/bin/time's report: {report}"))
}

/// Counts the lines of the segment files of a peer started by [`start_penghubung_audit`].
pub fn audit_records(peer: &Peer) -> usize {
    let Some(dir) = peer.guard.dir.as_ref().map(|d| d.path().join("audit")) else { return 0 };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|text| text.lines().count())
                .sum()
        })
        .unwrap_or(0)
}

/// Like [`start_penghubung`], but with an mTLS listener: `[tls]` names the bench PKI's server certificate, CA
/// and CRL, and the store also holds the `Client` document `clients/bench/loadgen.toml` that binds the load
/// generator's SPIFFE id and the grant `grants/bench-echo.toml` that lets it call `bench/echo`. With `policy`
/// the gateway decides every request (identity, grant, lifecycle, clearance); without, it forwards after
/// the mTLS handshake only. Ready once `/_penghubung/health` answers 200 over mTLS with `client`.
pub fn start_penghubung_mtls(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
    policy: bool,
) -> Result<Peer, Error> {
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Mtls { pki, client },
        policy,
        &BenchLimits::Off,
        "",
        &BenchStore::default(),
        &[],
    )
}

/// The operation of the bench service in `--mode contract` (`POST /bench/echo/v1/anything`).
pub const CONTRACT_OPERATION: &str =
    "[[operations]]\nid = \"kirim-penduduk\"\nmethod = \"POST\"\npath = \"/anything\"\n";

/// Like [`start_penghubung`] (plaintext, policy off), but the bench service declares one operation,
/// `POST /anything` ([`CONTRACT_OPERATION`]); with `contract`, its request body must satisfy the Dukcapil batch
/// schema ([`crate::dukcapil`], stored at `schemas/disdukcapil/penduduk-batch.schema.json` and compiled with
/// the reference types when the snapshot is built), `application/json`. Without, the same operation and the
/// same store (schema file included) but no `request.schema`: the body is streamed to the upstream unread.
pub fn start_penghubung_contract(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    contract: bool,
) -> Result<Peer, Error> {
    let request = if contract {
        format!("request.schema = \"{}\"\nrequest.content_type = \"application/json\"\n", crate::dukcapil::SCHEMA_PATH)
    } else {
        String::new()
    };
    let store = BenchStore {
        service_extra: format!("\n{CONTRACT_OPERATION}{request}"),
        grant_extra: String::new(),
        files: vec![(format!("schemas/{}", crate::dukcapil::SCHEMA_PATH), crate::dukcapil::schema_text())],
    };
    start_penghubung_with(binary, threads, upstream, Listener::Plain, false, &BenchLimits::Off, "", &store, &[])
}

/// What the bench store holds besides the OPD and the bench service: lines appended to the service document
/// (`[[operations]]`), lines appended to the mTLS grant `grants/bench-echo.toml` (`purposes`), and more files by
/// their path in the store.
#[derive(Default)]
pub struct BenchStore {
    pub service_extra: String,
    pub grant_extra: String,
    pub files: Vec<(String, String)>,
}

/// The purpose the grant of `--mode full` lists and its load generator declares in `X-Penghubung-Purpose`.
pub const FULL_PURPOSE: &str = "bench-load";

/// The audit section of a gateway recording every exchange with `durability` (`async` or `sync`) in its
/// temporary directory's `audit/` (key and NIK secret created there).
fn audit_section(durability: &str) -> String {
    format!("[audit]\nenabled = true\ndir = \"audit\"\ndurability = \"{durability}\"\n")
}

/// Penghubung the way a deployment runs it (`--mode full`): the mTLS listener and store of
/// [`start_penghubung_mtls`] with the policy on, a grant that lists the purpose [`FULL_PURPOSE`] (which every
/// request must then declare), local rate limits too high to refuse anything (the grant's tier and the
/// service's `rate_limit`, both counted per request), an `async` audit trail, and the request contract of
/// [`start_penghubung_contract`] on `POST /anything`.
///
/// With a `wrapper` (e.g. `valgrind --tool=callgrind ...`), the gateway is started as `wrapper... binary serve`.
/// The `[ops]` section that turns metrics on (ops listener on a free port), for `--metrics on`.
pub const METRICS_ON: &str = "\n[ops]\nlisten = \"127.0.0.1:0\"\nmetrics = true\n";

/// Like [`start_penghubung`] (plaintext, policy, limits and audit off), with metrics recorded for every request
/// (`--metrics on`).
pub fn start_penghubung_metrics(binary: &Path, threads: usize, upstream: SocketAddr) -> Result<Peer, Error> {
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Plain,
        false,
        &BenchLimits::Off,
        METRICS_ON,
        &BenchStore::default(),
        &[],
    )
}

pub fn start_penghubung_full(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
    wrapper: &[String],
) -> Result<Peer, Error> {
    start_penghubung_full_with(binary, threads, upstream, pki, client, wrapper, "")
}

/// `[traces]` sending spans to the OTLP/HTTP sink at `sink`, `percent` of the requests sampled.
pub fn traces_section(sink: SocketAddr, percent: u32) -> String {
    format!("[traces]\nendpoint = \"http://{sink}/v1/traces\"\nsample_ratio = {}\n", f64::from(percent) / 100.0)
}

/// Like [`start_penghubung`] (plaintext, policy, limits and audit off), with `extra` config (`[traces]`).
pub fn start_penghubung_extra(binary: &Path, threads: usize, upstream: SocketAddr, extra: &str) -> Result<Peer, Error> {
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Plain,
        false,
        &BenchLimits::Off,
        extra,
        &BenchStore::default(),
        &[],
    )
}

/// Like [`start_penghubung_full`], with `extra` config after the audit section (`[traces]`, or `--metrics on`:
/// [`METRICS_ON`]).
pub fn start_penghubung_full_with(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
    wrapper: &[String],
    extra: &str,
) -> Result<Peer, Error> {
    let store = BenchStore {
        service_extra: format!(
            "\n{CONTRACT_OPERATION}request.schema = \"{}\"\nrequest.content_type = \"application/json\"\n",
            crate::dukcapil::SCHEMA_PATH
        ),
        grant_extra: format!("purposes = [\"{FULL_PURPOSE}\"]\n"),
        files: vec![(format!("schemas/{}", crate::dukcapil::SCHEMA_PATH), crate::dukcapil::schema_text())],
    };
    start_penghubung_with(
        binary,
        threads,
        upstream,
        Listener::Mtls { pki, client },
        true,
        &BenchLimits::Local,
        &format!("{}\n{extra}", audit_section("async")),
        &store,
        wrapper,
    )
}

#[allow(clippy::too_many_arguments)]
fn start_penghubung_with(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    listener: Listener<'_>,
    policy: bool,
    limits: &BenchLimits,
    extra: &str,
    bench_store: &BenchStore,
    wrapper: &[String],
) -> Result<Peer, Error> {
    let dir = tempdir("penghubung")?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = dir.path().join("penghubung.toml");
    // A plaintext listener has no caller identity: the policy must be off there (the bare proxy is measured).
    let plaintext = if matches!(listener, Listener::Plain) { "plaintext = true\n" } else { "" };
    let (limits_config, service_limit) = match limits {
        BenchLimits::Off => (String::from("[ratelimit]\nenabled = false\n\n"), ""),
        BenchLimits::Local => (
            String::from("[ratelimit]\nenabled = true\n\n"),
            "rate_limit = { rate = 1000000000, burst = 1000000000 }\n",
        ),
        BenchLimits::Redis(url) => (
            format!("[ratelimit]\nenabled = true\n\n[redis]\nurl = \"{url}\"\ntimeout = \"200ms\"\n\n"),
            "rate_limit = { rate = 1000000000, burst = 1000000000 }\n",
        ),
    };
    let tls = match listener {
        Listener::Plain => String::new(),
        Listener::Mtls { pki, .. } => format!(
            "[tls]\ncert_file = {}\nkey_file = {}\nclient_ca_files = [{}]\ncrl_files = [{}]\n\n",
            toml_path(&pki.server_cert),
            toml_path(&pki.server_key),
            toml_path(&pki.ca_cert),
            toml_path(&pki.crl),
        ),
    };
    write(
        &config,
        &format!(
            "# Generated by the penghubung-benches load harness.\n\
             [[listeners]]\nname = \"bench\"\naddress = \"{addr}\"\n{plaintext}\n\
             {tls}\
             [store]\npath = \"policies\"\nseed_baseline = false\n\n\
             [server]\nworker_threads = {threads}\nshutdown_grace = \"1s\"\n\n\
             [log]\nlevel = \"warn\"\naccess_log = false\n\n\
             [reload]\nwatch = false\n\n\
             [policy]\nenforce = {policy}\n\n{limits_config}{extra}"
        ),
    )?;
    let store = dir.path().join("policies");
    write(&store.join("opds/bench.toml"), "id = \"bench\"\nname = \"Bench\"\n")?;
    for (id, role, n) in
        [("bench-owner", "admin", 1), ("bench-operasi", "operasi", 2), ("bench-keamanan", "keamanan", 3)]
    {
        write(
            &store.join(format!("operators/{id}.toml")),
            &format!(
                "id = \"{id}\"\nname = \"{id}\"\nnip = \"19800101200601100{n}\"\nopd = \"bench\"\nroles = [\"{role}\"]\n\n[identity]\n"
            ),
        )?;
    }
    write(
        &store.join("services/bench/echo.toml"),
        &format!(
            "opd = \"bench\"\nname = \"echo\"\nversion = 1\ntitle = \"echo\"\nclassification = \"terbuka\"\n\
             status = \"active\"\n{service_limit}\n{APPROVALS}\n[upstream]\nendpoints = [\"http://{upstream}\"]\n{}",
            bench_store.service_extra
        ),
    )?;
    for (path, text) in &bench_store.files {
        write(&store.join(path), text)?;
    }
    if let Listener::Mtls { pki, .. } = listener {
        write(&store.join("clients/bench/loadgen.toml"), &pki.client_document())?;
        write(
            &store.join("grants/bench-echo.toml"),
            &format!(
                "id = \"bench-echo\"\nclient = \"bench/loadgen\"\nservice = \"bench/echo/v1\"\noperations = [\"*\"]\n\
                 tier = \"bench\"\n{}",
                bench_store.grant_extra
            ),
        )?;
        write(
            &store.join("tiers/bench.toml"),
            "id = \"bench\"\ntitle = \"Bench\"\nrate = 1000000000\nperiod = \"1s\"\nburst = 1000000000\n",
        )?;
    }
    // Under a wrapper (valgrind) the gateway starts many times slower.
    let (mut command, ready_within) = match wrapper.split_first() {
        None => (Command::new(binary), Duration::from_secs(15)),
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            (command, Duration::from_secs(180))
        }
    };
    command.arg("serve").arg("--config").arg(&config).current_dir(dir.path());
    let mut guard = ChildGuard::spawn("penghubung", command, dir)?;
    listener.wait_ready(&mut guard, addr, "/_penghubung/health", ready_within)?;
    Ok(Peer { guard, addr })
}

/// Starts nginx (`nginx` binary at `binary`) as a reverse proxy to `upstream` with `threads` worker processes
/// and a keep-alive upstream pool.
pub fn start_nginx(binary: &Path, threads: usize, upstream: SocketAddr) -> Result<Peer, Error> {
    start_nginx_with(binary, threads, upstream, Listener::Plain, NginxFields::Stock)
}

/// Like [`start_nginx`], but nginx sends the upstream the fields Penghubung sends ([`GATEWAY_FIELDS`]) and
/// returns a request id to the caller: nginx doing the same job. The upstream shares the machine's cores, and
/// parsing six more fields per request costs it about as much as the proxy itself spends on a request (hyper:
/// 7.1k instructions per request behind stock nginx, 13.1k behind Penghubung, 13.7k behind this config).
pub fn start_nginx_same_fields(binary: &Path, threads: usize, upstream: SocketAddr) -> Result<Peer, Error> {
    start_nginx_with(binary, threads, upstream, Listener::Plain, NginxFields::Gateway)
}

/// What nginx adds to the requests it forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NginxFields {
    /// Nothing (`Host` and an empty `Connection` only): the stock reverse-proxy config.
    Stock,
    /// [`GATEWAY_FIELDS`].
    Gateway,
}

/// The nginx directives that send what Penghubung sends upstream: `X-Forwarded-For`, `-Proto`, `-Host`,
/// `Forwarded`, a request id (also returned to the caller), and a W3C `traceparent` (built from the request id:
/// nginx has no trace generator without a module; the upstream parses the same 55 bytes).
pub const GATEWAY_FIELDS: &str = "\
    proxy_set_header X-Forwarded-For $remote_addr;\n\
    proxy_set_header X-Forwarded-Proto $scheme;\n\
    proxy_set_header X-Forwarded-Host $host;\n\
    proxy_set_header Forwarded \"for=$remote_addr;proto=$scheme;host=$host\";\n\
    proxy_set_header X-Request-Id $request_id;\n\
    proxy_set_header traceparent \"00-$request_id-00f067aa0ba902b7-01\";\n\
    add_header X-Request-Id $request_id always;\n";

/// Like [`start_nginx`], but the listener is `ssl` with the bench PKI's server certificate and requires a
/// client certificate from the bench CA (`ssl_verify_client on`, checked against the CRL), TLS 1.2 and 1.3.
pub fn start_nginx_mtls(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
) -> Result<Peer, Error> {
    start_nginx_with(binary, threads, upstream, Listener::Mtls { pki, client }, NginxFields::Stock)
}

fn start_nginx_with(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    listener: Listener<'_>,
    fields: NginxFields,
) -> Result<Peer, Error> {
    let fields = match fields {
        NginxFields::Stock => "",
        NginxFields::Gateway => GATEWAY_FIELDS,
    };
    let dir = tempdir("nginx")?;
    // The workers run as `nobody` when the harness runs as root: let them reach their temp folders.
    set_mode(dir.path(), 0o755)?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tmp = dir.path().display().to_string();
    let config = dir.path().join("nginx.conf");
    let listen = match listener {
        Listener::Plain => format!("\x20       listen {addr};\n"),
        Listener::Mtls { pki, .. } => format!(
            "\x20       listen {addr} ssl;\n\
             \x20       ssl_certificate {};\n\
             \x20       ssl_certificate_key {};\n\
             \x20       ssl_client_certificate {};\n\
             \x20       ssl_verify_client on;\n\
             \x20       ssl_crl {};\n\
             \x20       ssl_protocols TLSv1.2 TLSv1.3;\n",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca_cert.display(),
            pki.crl.display(),
        ),
    };
    write(
        &config,
        &format!(
            "# Generated by the penghubung-benches load harness.\n\
             worker_processes {threads};\n\
             daemon off;\n\
             error_log {tmp}/error.log warn;\n\
             pid {tmp}/nginx.pid;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   client_body_temp_path {tmp}/client_body;\n\
             \x20   proxy_temp_path {tmp}/proxy;\n\
             \x20   fastcgi_temp_path {tmp}/fastcgi;\n\
             \x20   uwsgi_temp_path {tmp}/uwsgi;\n\
             \x20   scgi_temp_path {tmp}/scgi;\n\
             \x20   keepalive_requests 1000000;\n\
             \x20   upstream backend {{\n\
             \x20       server {upstream};\n\
             \x20       keepalive 64;\n\
             \x20       keepalive_requests 1000000;\n\
             \x20   }}\n\
             \x20   server {{\n\
             {listen}\
             \x20       location / {{\n\
             \x20           proxy_pass http://backend;\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n\
             {fields}\
             \x20       }}\n\
             \x20   }}\n\
             }}\n"
        ),
    )?;
    let mut command = Command::new(binary);
    command.arg("-p").arg(dir.path()).arg("-e").arg(dir.path().join("error.log")).arg("-c").arg(&config);
    let mut guard = ChildGuard::spawn("nginx", command, dir)?;
    listener.wait_ready(&mut guard, addr, BENCH_PATH, Duration::from_secs(10))?;
    Ok(Peer { guard, addr })
}

/// Starts haproxy (`haproxy` binary at `binary`) in HTTP mode with `threads` threads, reusing server-side
/// connections.
pub fn start_haproxy(binary: &Path, threads: usize, upstream: SocketAddr) -> Result<Peer, Error> {
    start_haproxy_with(binary, threads, upstream, Listener::Plain)
}

/// Like [`start_haproxy`], but the frontend binds with `ssl crt server.pem ca-file ca.crt verify required
/// crl-file crl.pem`, TLS 1.2 and up, ALPN `http/1.1`.
pub fn start_haproxy_mtls(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    pki: &Pki,
    client: &Arc<rustls::ClientConfig>,
) -> Result<Peer, Error> {
    start_haproxy_with(binary, threads, upstream, Listener::Mtls { pki, client })
}

fn start_haproxy_with(
    binary: &Path,
    threads: usize,
    upstream: SocketAddr,
    listener: Listener<'_>,
) -> Result<Peer, Error> {
    let dir = tempdir("haproxy")?;
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = dir.path().join("haproxy.cfg");
    let ssl = match listener {
        Listener::Plain => String::new(),
        Listener::Mtls { pki, .. } => format!(
            " ssl crt {} ca-file {} verify required crl-file {} ssl-min-ver TLSv1.2 alpn http/1.1",
            pki.server_pem.display(),
            pki.ca_cert.display(),
            pki.crl.display(),
        ),
    };
    write(
        &config,
        &format!(
            "# Generated by the penghubung-benches load harness.\n\
             global\n    nbthread {threads}\n    maxconn 4096\n\n\
             defaults\n    mode http\n    option http-keep-alive\n    timeout connect 5s\n\
             \x20   timeout client 30s\n    timeout server 30s\n    timeout http-keep-alive 30s\n\n\
             frontend bench\n    bind {addr}{ssl}\n    default_backend upstream\n\n\
             backend upstream\n    http-reuse always\n    server s1 {upstream}\n"
        ),
    )?;
    let mut command = Command::new(binary);
    command.arg("-db").arg("-f").arg(&config);
    let mut guard = ChildGuard::spawn("haproxy", command, dir)?;
    listener.wait_ready(&mut guard, addr, BENCH_PATH, Duration::from_secs(10))?;
    Ok(Peer { guard, addr })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}
