//! `penghubung demo --cluster N`: cluster mode in one command. The demo prepares its workdir as the single demo
//! does (sample backends, the sample store, CA and certificates), then starts a `redis-server` from `PATH` on a
//! free loopback port with its data in `DIR/redis`, pushes the sample store into it the way `penghubung store
//! push` does (attributed to the demo's admin operator), and starts N gateway replicas in this process that
//! share it: each with its own folder `DIR/replica-{i}` (a copy of the CA's files and the adapters' secrets,
//! as separate machines would hold), its own data, admin and ops listeners, its own `[audit] gateway_id`
//! (`demo-{i}`) and audit trail. A change made through any replica's admin API is committed once in Redis and
//! followed by every replica. `demo.env` gets `PENGHUBUNG_URLS` (and `_ADMIN_URLS`, `_OPS_URLS`,
//! `PENGHUBUNG_REDIS_URL`) besides everything the single demo writes, which names the first replica.
//! SIGINT/SIGTERM stops every replica, then the `redis-server`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{config_text, prepare, print_instructions, sample_env, setup, DemoError, Prepared};
use crate::demo_admin::{self, RunningAdmin};
use crate::exit::{exit_code, start_failed};
use penghubung_server::{telemetry, Gateway, Signals, StartError};
use penghubung_types::config::Config;

/// The demo operator a push of the sample store is attributed to (an `admin` of the baseline).
const PUSH_OPERATOR: &str = "sari-admin";

/// The most replicas `--cluster` starts.
pub const MAX_REPLICAS: usize = 9;

/// One running replica.
struct Replica {
    gateway: Gateway,
    admin: RunningAdmin,
    url: String,
    ops_url: Option<String>,
    dir: PathBuf,
}

/// Runs the cluster demo until SIGINT/SIGTERM; returns the exit code.
pub(super) async fn run(
    workdir: &Path,
    listen: SocketAddr,
    admin_listen: SocketAddr,
    replicas: usize,
    signals: Signals,
) -> i32 {
    let Some(binary) = find_on_path("redis-server") else {
        eprintln!(
            "penghubung demo: --cluster needs `redis-server` on PATH (Debian/Ubuntu: `apt-get install redis-server`; \
             Fedora: `dnf install redis`; macOS: `brew install redis`)"
        );
        return 1;
    };
    match start(workdir, listen, admin_listen, replicas, &binary).await {
        Ok((running, redis, workdir)) => {
            let first = &running[0];
            print_instructions(
                &first.url,
                &first.admin.url,
                first.ops_url.as_deref(),
                &workdir,
                Some(&instructions(&running, &redis, &workdir)),
            );
            let mut admins = Vec::new();
            let mut gateways = Vec::new();
            for replica in running {
                admins.push(replica.admin.server);
                gateways.push(replica.gateway);
            }
            let outcome = Gateway::run_all_until_signal(gateways, signals).await;
            for admin in admins {
                admin.shutdown().await;
            }
            redis.stop().await;
            exit_code(outcome)
        }
        Err(DemoError::Start(StartError::Bind { address, source })) => {
            eprintln!(
                "penghubung demo: cannot listen on {address}: {source}. Try `--listen 127.0.0.1:0 --admin-listen \
                 127.0.0.1:0` for free ports."
            );
            1
        }
        Err(DemoError::Start(e)) => start_failed(e),
        Err(DemoError::Setup(e)) => {
            eprintln!("penghubung demo: {e}");
            1
        }
    }
}

/// Prepares the workdir, starts Redis, pushes the sample store and starts the replicas; writes `demo.env`.
async fn start(
    workdir: &Path,
    listen: SocketAddr,
    admin_listen: SocketAddr,
    replicas: usize,
    redis_binary: &Path,
) -> Result<(Vec<Replica>, RedisServer, PathBuf), DemoError> {
    if !(1..=MAX_REPLICAS).contains(&replicas) {
        return Err(DemoError::Setup(format!("--cluster takes 1 to {MAX_REPLICAS} replicas, not {replicas}")));
    }
    let Prepared { workdir, authority, operators } = prepare(workdir, listen).await?;
    // One audit signing key and one NIK secret for every replica (each keeps its own copy), so that one public
    // key verifies every replica's trail and a NIK searched for is found in each.
    let pki = workdir.join("pki");
    penghubung_audit::keys::load_or_generate(&pki.join("audit-signing.key"), &pki.join("audit-signing.pub"), true)
        .map_err(|e| setup("the audit signing key", &e))?;
    penghubung_audit::keys::load_or_generate_secret(&pki.join("audit-nik.secret"), true)
        .map_err(|e| setup("the audit NIK secret", &e))?;

    let redis = RedisServer::start(redis_binary, &workdir.join("redis")).await.map_err(DemoError::Setup)?;
    // The operator's machine's config (store push and pull, report, policy explain): the first replica's
    // addresses, the store in Redis.
    let main_config = workdir.join("penghubung.toml");
    std::fs::write(&main_config, replica_config(listen, admin_listen, &redis.url(), "demo"))
        .map_err(|e| setup("writing penghubung.toml", &e))?;
    let config = load(&main_config)?;
    telemetry::init_logging(&config.log);
    tokio::task::spawn_blocking(move || penghubung_manage::migrate::push(&config, PUSH_OPERATOR, true))
        .await
        .map_err(|e| setup("pushing the sample store to Redis", &e))?
        .map_err(|e| setup("pushing the sample store to Redis", &e))?;

    let mut configs = Vec::new();
    for i in 1..=replicas {
        let dir = workdir.join(format!("replica-{i}"));
        for folder in ["pki", "secrets"] {
            copy_files(&workdir.join(folder), &dir.join(folder))
                .map_err(|e| setup(&format!("copying {folder} to {}", dir.display()), &e))?;
        }
        let path = dir.join("penghubung.toml");
        let text =
            replica_config(offset(listen, i - 1), offset(admin_listen, i - 1), &redis.url(), &format!("demo-{i}"));
        std::fs::write(&path, text).map_err(|e| setup(&format!("writing {}", path.display()), &e))?;
        configs.push((load(&path)?, dir));
    }
    let mut running: Vec<Replica> = Vec::new();
    for (config, dir) in &configs {
        let gateway = Gateway::start(config.clone()).await.map_err(DemoError::Start)?;
        let admin = demo_admin::start(config, &gateway).await.map_err(|e| setup("the admin API", &e))?;
        let url = base_url(gateway.local_addrs()[0]);
        let ops_url = gateway.ops_addr().map(|a| format!("http://{a}"));
        running.push(Replica { gateway, admin, url, ops_url, dir: dir.clone() });
    }

    let first = &running[0];
    let mut env = sample_env(&first.url, &authority, &workdir);
    let join = |each: &dyn Fn(&Replica) -> String| running.iter().map(each).collect::<Vec<_>>().join(",");
    let _ = writeln!(env, "PENGHUBUNG_URLS={}", join(&|r| r.url.clone()));
    let _ = writeln!(env, "PENGHUBUNG_ADMIN_URLS={}", join(&|r| r.admin.url.clone()));
    let _ = writeln!(env, "PENGHUBUNG_OPS_URLS={}", join(&|r| r.ops_url.clone().unwrap_or_default()));
    let _ = writeln!(env, "PENGHUBUNG_REDIS_URL={}", redis.url());
    if let Some(ops) = &first.ops_url {
        let _ = writeln!(env, "PENGHUBUNG_OPS_URL={ops}");
    }
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_DIR={}", first.dir.join("audit").display());
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_DIRS={}", join(&|r| r.dir.join("audit").display().to_string()));
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_PUBKEY={}", pki.join("audit-signing.pub").display());
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_NIK_SECRET={}", pki.join("audit-nik.secret").display());
    demo_admin::write_profiles(&operators, &first.admin.url, &authority.cert_path())
        .map_err(|e| setup("operator profiles", &e))?;
    env.push_str(&demo_admin::env_lines(&first.admin.url, &operators, &workdir.join("clients")));
    let configs: Vec<Config> = configs.into_iter().map(|(config, _)| config).collect();
    env.push_str(
        &demo_admin::console_env_lines_of_replicas(&configs, &first.admin.url)
            .map_err(|e| setup("console credentials", &e))?,
    );
    std::fs::write(workdir.join("demo.env"), env).map_err(|e| setup("writing demo.env", &e))?;
    Ok((running, redis, workdir))
}

/// A replica's config (relative paths: its own folder), the store and the shared state in Redis at `redis_url`.
fn replica_config(listen: SocketAddr, admin_listen: SocketAddr, redis_url: &str, gateway_id: &str) -> String {
    let store = format!(
        "[store]\nbackend = \"redis\"\npath = \"policies\"\nseed_baseline = false\n\n[redis]\nurl = \"{redis_url}\"\n"
    );
    config_text(listen, admin_listen, &store, &format!("gateway_id = \"{gateway_id}\"\n"))
}

fn load(path: &Path) -> Result<Config, DemoError> {
    Config::load(path).map_err(|p| DemoError::Setup(p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

/// `address` with its port moved by `by` (port 0, any free port, stays 0).
fn offset(address: SocketAddr, by: usize) -> SocketAddr {
    let mut address = address;
    if address.port() != 0 {
        address.set_port(address.port().saturating_add(u16::try_from(by).unwrap_or(u16::MAX)));
    }
    address
}

fn base_url(address: SocketAddr) -> String {
    let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    format!("https://{host}:{}", address.port())
}

/// Copies every file of `from` (not recursively) into `to`, keeping their modes.
fn copy_files(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The cluster's lines of the instructions: each replica's URLs, Redis, and where the store now is.
fn instructions(replicas: &[Replica], redis: &RedisServer, workdir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} replicas share the store in Redis at {} (data in {}):",
        replicas.len(),
        redis.url(),
        redis.dir.display()
    );
    for (i, r) in replicas.iter().enumerate() {
        let _ = writeln!(
            out,
            "  replica demo-{}: {}   admin {}   ops {}   audit {}",
            i + 1,
            r.url,
            r.admin.url,
            r.ops_url.as_deref().unwrap_or("-"),
            r.dir.join("audit").display()
        );
    }
    let _ = writeln!(
        out,
        "A change through any replica's admin API reaches every replica (the sample store was pushed from {}/policies; \
         edit through the admin API or the console, not the folder).",
        workdir.display()
    );
    let _ = writeln!(
        out,
        "Audit trails: penghubung audit verify --redis {} --key {}/pki/audit-signing.pub",
        redis.url(),
        workdir.display()
    );
    let _ = writeln!(
        out,
        "Monthly usage over every replica: penghubung report usage --config {}/penghubung.toml --redis {} --format html --out usage.html",
        workdir.display(),
        redis.url()
    );
    let _ = writeln!(out, "Variables (PENGHUBUNG_URLS names every replica): source {}/demo.env", workdir.display());
    out
}

/// `name` in a folder of `PATH`, when it is an executable file there.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The demo's `redis-server`: a child process in its own process group (a Ctrl-C in the terminal reaches the
/// demo, which stops the replicas before Redis), killed when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `binary` on a free loopback port with its append-only file in `dir`, and waits until it answers
    /// `PING` (another free port is tried when one was taken meanwhile).
    async fn start(binary: &Path, dir: &Path) -> Result<RedisServer, String> {
        use std::os::unix::process::CommandExt as _;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port for Redis: {e}"))?
                .port();
            let log = std::fs::File::create(dir.join("redis.log")).map_err(|e| format!("redis.log: {e}"))?;
            let child = Command::new(binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "yes", "--appendfsync", "everysec", "--dir"])
                .arg(dir)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| format!("redis.log: {e}"))?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
            let mut server = RedisServer { child: Some(child), port, dir: dir.to_path_buf() };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(format!("redis-server did not start: {last_error} (see {})", dir.join("redis.log").display()))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("it exited ({status})"));
            }
            if self.command("PING").await.is_some_and(|reply| reply.starts_with("+PONG")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("it did not answer PING within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One inline command; the first reply bytes.
    async fn command(&self, line: &str) -> Option<String> {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            stream.write_all(format!("{line}\r\n").as_bytes()).await.ok()?;
            let mut reply = [0u8; 64];
            let n = stream.read(&mut reply).await.ok()?;
            Some(String::from_utf8_lossy(&reply[..n]).into_owned())
        };
        tokio::time::timeout(Duration::from_secs(1), exchange).await.ok().flatten()
    }

    /// Asks Redis to shut down (it writes its append-only file), and kills it when it has not exited in 5 s.
    async fn stop(mut self) {
        let _ = self.command("SHUTDOWN").await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_take_the_following_ports_or_free_ones() {
        let listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(offset(listen, 0), listen);
        assert_eq!(offset(listen, 2).port(), 8445);
        let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(offset(free, 2).port(), 0);
        let last: SocketAddr = "127.0.0.1:65535".parse().unwrap();
        assert_eq!(offset(last, 1).port(), 65535, "no overflow: the bind then reports the taken port");
    }

    #[test]
    fn a_replica_config_puts_the_store_in_redis_under_its_own_gateway_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pki")).unwrap();
        for file in ["server.crt", "server.key", "ca.crt", "crl.pem"] {
            std::fs::write(dir.path().join("pki").join(file), "").unwrap();
        }
        let path = dir.path().join("penghubung.toml");
        let text = replica_config(
            "127.0.0.1:8444".parse().unwrap(),
            "127.0.0.1:9444".parse().unwrap(),
            "redis://127.0.0.1:6390",
            "demo-2",
        );
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.audit.gateway_id(), "demo-2");
        assert_eq!(config.redis.as_ref().map(|r| r.url.as_str()), Some("redis://127.0.0.1:6390"));
        assert_eq!(config.console_credentials_dir(), dir.path().join("console-credentials"));
        assert!(!config.store.seed_baseline);
    }
}
