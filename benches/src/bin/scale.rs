//! The scale of a Dinas-wide document set: 10,000 services (100 OPDs x 100), 20,000 clients (200 per OPD) and
//! 100,000 grants (5 per client), generated as the TOML an operator keeps in the store. Measures:
//!
//! * **snapshot build**: compiling the parsed documents into a snapshot (what every reload does after reading
//!   the store), the median of `--rounds` builds;
//! * **resident memory**: what one build adds to the process (the snapshot's own size), and the process's
//!   resident size with the corpus text, the parsed documents and the snapshot held;
//! * **a policy decision**: `policy::authorize` as the pipeline runs it once the client is identified and the
//!   service found (allowed, listed operation and purpose), a tight loop of `--decisions` calls through
//!   `black_box`;
//! * **a full reload from Redis**: every document read by the Redis store (`RedisStore`: `HGETALL
//!   penghubung:store:docs`, the Redis store's data model), parsed and schema-checked (`load_documents`) and
//!   compiled, against a `redis-server` this program starts on a free port (or `--redis URL`; the hash is
//!   written first).
//!
//! `cargo build --release -p penghubung-benches --bin scale && target/release/scale [--rounds 3]
//! [--decisions 20000000] [--redis redis://127.0.0.1:6379]`. Times are wall clock and CPU time of this
//! thread (`/proc/thread-self/schedstat`), so that a busy machine shows in the difference.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};
use penghubung::policy;
use penghubung::snapshot::{BuildContext, Snapshot};
use penghubung::store::journal::JournalEntry;
use penghubung::store::redis::RedisStore;
use penghubung::store::{
    load_documents, ChangeMeta, DocumentKind, DocumentStore, Documents, Listing, StoreError, StoredDocument,
};
use penghubung::tls::UpstreamTls;
use penghubung::types::diagnostics::Diagnostic;
use penghubung::Config;
use penghubung_benches::corpus::{self, CorpusFile};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OPDS: usize = 100;
const SERVICES_PER_OPD: usize = 100;
const CLIENTS_PER_OPD: usize = 200;
const GRANTS_PER_CLIENT: usize = 5;
/// The Redis store's docs hash (`[store] redis_prefix` + `docs`).
const DOCS_HASH: &str = "penghubung:store:docs";

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// A `/proc/self/status` field in MiB (`VmRSS`, `VmHWM`).
fn mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (wall, cpu) = (Instant::now(), cpu_ns());
    let value = f();
    (value, wall.elapsed(), Duration::from_nanos(cpu_ns() - cpu))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn corpus_files() -> Vec<CorpusFile> {
    let mut files = corpus::generate(OPDS, SERVICES_PER_OPD);
    files.extend(corpus::clients_and_grants(OPDS, SERVICES_PER_OPD, CLIENTS_PER_OPD, GRANTS_PER_CLIENT));
    // The tier every generated grant names.
    files.push(CorpusFile {
        key: "tiers/silver.toml".into(),
        text: "id = \"silver\"\nrate = 100\nperiod = \"1s\"\nburst = 20\n".into(),
    });
    files
}

/// Every document of the corpus in memory, listed as a store would.
struct MemoryStore(Vec<CorpusFile>);

impl DocumentStore for MemoryStore {
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError> {
        let documents = self
            .0
            .iter()
            .filter_map(|f| {
                let kind = DocumentKind::of_key(&f.key)?;
                Some(StoredDocument { kind, key: f.key.clone(), origin: f.key.clone(), text: f.text.clone() })
            })
            .collect();
        Ok((documents, Vec::new()))
    }

    fn put(&self, key: &str, _text: &str) -> Result<(), StoreError> {
        Err(StoreError::InvalidKey { key: key.into(), reason: "read-only" })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        Err(StoreError::InvalidKey { key: key.into(), reason: "read-only" })
    }

    fn watch_dir(&self) -> Option<PathBuf> {
        None
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn list_with_generation(&self) -> Result<Listing, StoreError> {
        let (documents, notes) = self.list()?;
        Ok(Listing { documents, notes, generation: 0 })
    }

    fn generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn commit(
        &self,
        _: u64,
        _: &[(String, Option<String>)],
        _: &[JournalEntry],
        _: &ChangeMeta,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("the benchmark's store is read-only".into()))
    }
}

fn loaded(store: &dyn DocumentStore) -> Documents {
    let (documents, problems) = load_documents(store);
    let errors: Vec<_> = problems.iter().filter(|p| p.is_error()).collect();
    assert!(errors.is_empty(), "the corpus does not load: {:?}", &errors[..errors.len().min(5)]);
    documents
}

/// A `redis-server` on a free port, killed on drop.
struct RedisChild(Child);

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (RedisChild, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server), or pass --redis URL");
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (RedisChild(child), url)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = arg(&args, "--rounds", 3).max(1);
    let decisions: u64 = arg(&args, "--decisions", 20_000_000);
    let redis_url: Option<String> = args.iter().position(|a| a == "--redis").and_then(|i| args.get(i + 1)).cloned();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::embedded_default(dir.path());
    let tls = UpstreamTls::from_config(&config).expect("upstream TLS");
    let build = |docs: &Documents| {
        let ctx = BuildContext { config: &config, upstream_tls: &tls, previous: None, adapters: None };
        Snapshot::build(docs, &ctx).unwrap_or_else(|p| panic!("the corpus does not build: {:?}", &p[..p.len().min(5)]))
    };
    println!("resident before generating: {:.1} MiB", mib("VmRSS"));

    let files = corpus_files();
    let bytes: usize = files.iter().map(|f| f.text.len()).sum();
    let store = MemoryStore(files);
    let (docs, wall, cpu) = timed(|| loaded(&store));
    println!(
        "documents: {} services, {} clients, {} grants ({} documents, {:.1} MiB of TOML)",
        docs.services.len(),
        docs.clients.len(),
        docs.grants.len(),
        store.0.len(),
        bytes as f64 / 1048576.0
    );
    assert_eq!((docs.services.len(), docs.clients.len(), docs.grants.len()), (10_000, 20_000, 100_000));
    println!("parse + schema check (load_documents): {wall:.2?} wall, {cpu:.2?} CPU");
    let parsed_rss = mib("VmRSS");
    let first = build(&docs);
    println!(
        "resident with the corpus, the documents and one snapshot: {:.1} MiB ({:.1} MiB more than before the build)",
        mib("VmRSS"),
        mib("VmRSS") - parsed_rss
    );
    drop(first);

    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..rounds {
        let (snapshot, wall, cpu) = timed(|| build(&docs));
        drop(snapshot);
        walls.push(wall);
        cpus.push(cpu);
    }
    println!(
        "snapshot build (median of {rounds}): {:.2?} wall, {:.2?} CPU; rounds {walls:.2?}",
        median(walls.clone()),
        median(cpus)
    );

    let snapshot = build(&docs);
    drop(docs);
    drop(store);
    println!(
        "resident after dropping the corpus and the documents (freed pages stay with the allocator): {:.1} MiB \
         (process peak so far {:.1} MiB)",
        mib("VmRSS"),
        mib("VmHWM")
    );

    // One decision: client opd-03/app-04's first grant (listed operations and purposes).
    let client = snapshot.clients.get(&corpus::client_id(3, 4)).expect("client").clone();
    let n = 3 * CLIENTS_PER_OPD + 4;
    let target = (n * 7) % (OPDS * SERVICES_PER_OPD);
    let service = snapshot
        .find_service(&corpus::opd_id(target / SERVICES_PER_OPD), &corpus::service_name(target % SERVICES_PER_OPD), 1)
        .expect("service")
        .clone();
    let purpose = HeaderValue::from_static("pelayanan-publik");
    let now = policy::unix_now();
    let decide = |method: &Method, rest: &str| {
        let find_operation = || service.operations.find(method, rest);
        let (_, decision) =
            policy::authorize(&client.access, &service.access, find_operation, Some(&purpose), now, &mut ());
        decision.is_ok()
    };
    assert!(decide(&Method::GET, "/pasien/123"), "the chosen grant allows GET /pasien/{{id}}");
    assert!(!decide(&Method::POST, "/pasien"), "and not POST /pasien");
    let (allowed, wall, cpu) = timed(|| {
        let mut allowed = 0u64;
        for _ in 0..decisions {
            allowed += u64::from(decide(black_box(&Method::GET), black_box("/pasien/123")));
        }
        allowed
    });
    assert_eq!(allowed, decisions);
    println!(
        "policy decision (allow, listed operation and purpose, {decisions} calls): {:.1} ns wall, {:.1} ns CPU each",
        wall.as_nanos() as f64 / decisions as f64,
        cpu.as_nanos() as f64 / decisions as f64
    );
    drop(snapshot);

    // The full reload from Redis.
    let (_server, url) = match redis_url {
        Some(url) => (None, url),
        None => {
            let (child, url) = start_redis();
            (Some(child), url)
        }
    };
    {
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let mut connection = client.get_connection().expect("redis connection");
        let _: () = redis::cmd("DEL").arg(DOCS_HASH).query(&mut connection).expect("DEL");
        for chunk in corpus_files().chunks(5000) {
            let mut command = redis::cmd("HSET");
            command.arg(DOCS_HASH);
            for f in chunk {
                command.arg(&f.key).arg(&f.text);
            }
            let _: u64 = command.query(&mut connection).expect("HSET");
        }
    }
    let connector = penghubung_redis::Connector::new(&url).expect("redis url");
    let redis_store = RedisStore::new(connector, "penghubung:store:", Duration::from_secs(60));
    let (listed, wall, cpu) = timed(|| redis_store.list().expect("HGETALL").0.len());
    println!("HGETALL of {listed} documents: {wall:.2?} wall, {cpu:.2?} CPU (this thread)");
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..rounds {
        let (snapshot, wall, cpu) = timed(|| build(&loaded(&redis_store)));
        drop(snapshot);
        walls.push(wall);
        cpus.push(cpu);
    }
    println!(
        "full reload from Redis (HGETALL + parse + schema check + build, median of {rounds}): {:.2?} wall, {:.2?} CPU; rounds {walls:.2?}",
        median(walls.clone()),
        median(cpus)
    );
    println!("process peak resident: {:.1} MiB", mib("VmHWM"));
}
