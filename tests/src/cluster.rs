//! Several gateway replicas sharing one document store in Redis, as real processes: one `redis-server` on a free
//! port (persistent, so that a restarted Redis comes back with its data) and `n` processes of the real binary
//! (`penghubung serve --config`). Each replica has its own work folder and its own copy of the test's CA, server
//! certificate and CRL, as separate machines would. Its config sets `[store] backend = "redis"`, and its data,
//! admin and ops listeners are on ports fixed at start, so a restarted replica comes back on the same URLs.
//!
//! The store is filled once from the test's documents, in one commit of the real Redis store attributed to
//! the harness's admin operator. The operators (`admin-uji`, `operasi-uji`, `keamanan-uji` of OPD `diskominfo`) have
//! certificates issued by the test's CA and bound into their documents, so a test can change the store through
//! any replica's admin API ([`Cluster::admin_call`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, Request};
use penghubung::management::ca::Issued;
use penghubung::management::Role;

use crate::mtls::{client_config, https_client, Pki};
use crate::redis::RedisServer;
use crate::{docs, full, operators, penghubung_binary, send, Collected};

/// The OPD of the harness's operators (added to the documents when missing).
pub const OPERATOR_OPD: &str = "diskominfo";

/// The harness's operators: id and role. Their ids are those [`docs::APPROVALS`] names.
pub const OPERATORS: &[(&str, Role)] =
    &[("admin-uji", Role::Admin), ("operasi-uji", Role::Operasi), ("keamanan-uji", Role::Keamanan)];

/// One gateway replica: its folder, its config, its fixed ports and its process while it runs.
pub struct Replica {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub data_port: u16,
    pub admin_port: u16,
    pub ops_port: u16,
    process: Option<Child>,
    /// How many times it was started (each start logs to its own file).
    starts: u32,
}

impl Replica {
    /// The data plane's base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.data_port)
    }

    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.admin_port)
    }

    /// The ops listener's base URL (plain HTTP).
    pub fn ops_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ops_port)
    }

    /// Whether its process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Everything its processes logged, oldest start first.
    pub fn log(&self) -> String {
        (1..=self.starts).map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default()).collect()
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.join(format!("gateway-{start}.log"))
    }
}

/// Redis and the replicas sharing it. Every process ends when the cluster is dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// The test's CA (each replica holds a copy of its files).
    pub pki: Pki,
    pub redis: RedisServer,
    pub replicas: Vec<Replica>,
    /// Each operator's certificate, by id.
    pub operators: HashMap<String, Issued>,
    /// `[store] redis_prefix` of every replica.
    pub prefix: String,
}

impl Cluster {
    /// Starts Redis, fills the store with `documents` (plus the harness's operators), and starts `n` replicas;
    /// returns once every replica answers `/health/ready` with 200. `config_extra` is appended to every
    /// replica's config.
    pub fn start(n: usize, documents: &[(String, String)], config_extra: &str) -> Cluster {
        Cluster::start_with(n, config_extra, |_| (documents.to_vec(), ())).0
    }

    /// Like [`Cluster::start`], with documents made by `documents` from the cluster's CA (for client
    /// certificates the documents bind); also returns what `documents` returned beside them.
    pub fn start_with<T>(
        n: usize,
        config_extra: &str,
        documents: impl FnOnce(&Pki) -> (Vec<(String, String)>, T),
    ) -> (Cluster, T) {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let redis = RedisServer::start_persistent();
        let prefix = "penghubung:store:".to_string();
        let (mut documents, made) = documents(&pki);
        if !documents.iter().any(|(key, _)| key == &format!("opds/{OPERATOR_OPD}.toml")) {
            documents.push(docs::opd(OPERATOR_OPD));
        }
        let mut certificates = HashMap::new();
        for (id, role) in OPERATORS {
            let issued = pki.client(OPERATOR_OPD, &format!("operator-{id}"));
            let fingerprint = operators::fingerprint_of(&issued.cert_pem);
            documents.push(operators::document(id, OPERATOR_OPD, &[*role], &fingerprint));
            certificates.insert(id.to_string(), issued);
        }
        let mut cluster =
            Cluster { dir, pki, redis, replicas: Vec::new(), operators: certificates, prefix: prefix.clone() };
        for i in 0..n {
            let replica = cluster.prepare_replica(i, config_extra);
            cluster.replicas.push(replica);
        }
        cluster.push_store(&documents);
        for i in 0..n {
            cluster.start_replica(i);
        }
        (cluster, made)
    }

    /// A replica's folder: a copy of the CA's files, an empty store folder, and its config.
    fn prepare_replica(&self, i: usize, config_extra: &str) -> Replica {
        let dir = self.dir.path().join(format!("replica-{i}"));
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).unwrap();
        for entry in std::fs::read_dir(&self.pki.dir).unwrap().flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), pki.join(entry.file_name())).unwrap();
            }
        }
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        let (data_port, admin_port, ops_port) = (crate::free_port(), crate::free_port(), crate::free_port());
        let config = format!(
            "[[listeners]]\naddress = \"127.0.0.1:{data_port}\"\n\n\
             [tls]\ncert_file = \"pki/server.crt\"\nkey_file = \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\ncrl_files = [\"pki/crl.pem\"]\nreload_interval = \"100ms\"\nhandshake_timeout = \"2s\"\n\n\
             [store]\nbackend = \"redis\"\npath = \"policies\"\nredis_prefix = \"{prefix}\"\nseed_baseline = false\n\n\
             [redis]\nurl = \"{url}\"\nmax_reconnect_backoff = \"200ms\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
             [ops]\nlisten = \"127.0.0.1:{ops_port}\"\n\n\
             [log]\nformat = \"human\"\nlevel = \"info\"\n\n{config_extra}\n",
            prefix = self.prefix,
            url = self.redis.url(),
        );
        let path = dir.join("penghubung.toml");
        std::fs::write(&path, config).unwrap();
        Replica { dir, config: path, data_port, admin_port, ops_port, process: None, starts: 0 }
    }

    /// Fills the empty Redis store with `documents` in one commit of the real Redis store, attributed to
    /// `admin-uji` (as `store push` records it).
    fn push_store(&self, documents: &[(String, String)]) {
        use penghubung::store::DocumentStore;
        let config = penghubung::Config::load(&self.replicas[0].config).unwrap_or_else(|p| panic!("config: {p:?}"));
        let store = penghubung::store::redis::RedisStore::of_config(&config).unwrap();
        let writes: Vec<(String, Option<String>)> =
            documents.iter().map(|(key, text)| (key.clone(), Some(text.clone()))).collect();
        let meta = penghubung::store::ChangeMeta {
            who: "admin-uji".into(),
            action: "store_push".into(),
            at: "2026-01-01T00:00:00Z".into(),
            ca: None,
        };
        let generation = store.commit(0, &writes, &[], &meta).unwrap_or_else(|e| panic!("filling the store: {e}"));
        assert_eq!(generation, 1);
    }

    /// Starts replica `i` (again) and waits until it is ready.
    pub fn start_replica(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        assert!(replica.process.is_none(), "replica {i} runs already");
        replica.starts += 1;
        let log = std::fs::File::create(replica.log_path(replica.starts)).unwrap();
        let child = Command::new(penghubung_binary())
            .args(["serve", "--config"])
            .arg(&replica.config)
            .current_dir(&replica.dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        replica.process = Some(child);
        self.wait_ready(i);
    }

    /// Waits until replica `i` answers `/health/ready` with 200 and its admin listener accepts connections.
    pub fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let replica = &mut self.replicas[i];
            if let Some(status) = replica.process.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                replica.process = None;
                panic!("replica {i} exited with {status}:\n{}", replica.log());
            }
            let ready = ops_get(replica.ops_port, "/health/ready").is_some_and(|(status, _)| status == 200);
            if ready && TcpStream::connect(("127.0.0.1", replica.admin_port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "replica {i} did not become ready:\n{}", replica.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills replica `i` (SIGKILL: no goodbye).
    pub fn kill_replica(&mut self, i: usize) {
        if let Some(mut child) = self.replicas[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills Redis (SIGKILL).
    pub fn kill_redis(&mut self) {
        self.redis.kill();
    }

    /// Starts Redis again on the same port, with the data it had (append-only file, fsynced per write).
    pub fn restart_redis(&mut self) {
        self.redis.restart();
    }

    /// The store generation in Redis (`GET {prefix}generation`).
    pub fn store_generation(&self) -> u64 {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
        let generation: Option<u64> =
            redis::cmd("GET").arg(format!("{}generation", self.prefix)).query(&mut connection).unwrap();
        generation.unwrap_or(0)
    }

    /// A request to replica `i`'s admin API as `operator`, with a JSON body when given.
    pub async fn admin_call(
        &self,
        i: usize,
        operator: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Collected {
        let identity = &self.operators[operator];
        let client = https_client(client_config(&self.pki.ca_pem(), Some(identity)));
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.replicas[i].admin_url()));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        send(&client, request.body(full(body)).unwrap()).await
    }

    /// `GET path` on replica `i`'s data plane as `identity`, on a new connection (a new TLS handshake, so
    /// the replica's current CRL applies): the status, or why the connection failed.
    pub async fn data_status(&self, i: usize, identity: &Issued, path: &str) -> Result<u16, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.replicas[i].data_port));
        crate::mtls::request_status(addr, client_config(&self.pki.ca_pem(), Some(identity)), path).await
    }

    /// Replica `i`'s `/health/ready`: the status and the body (`None` when the ops listener does not answer).
    pub fn ready(&self, i: usize) -> Option<(u16, String)> {
        ops_get(self.replicas[i].ops_port, "/health/ready")
    }

    /// Replica `i`'s `/metrics` (Prometheus text).
    pub fn metrics(&self, i: usize) -> String {
        ops_get(self.replicas[i].ops_port, "/metrics").map(|(_, body)| body).unwrap_or_default()
    }

    /// The value of an unlabelled metric of replica `i` (`penghubung_store_generation`).
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        self.metrics(i).lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.replicas.len() {
            self.kill_replica(i);
        }
    }
}

/// `GET path` on a plain-HTTP ops listener: the status and the body.
pub fn ops_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}
