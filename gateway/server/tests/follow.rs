//! The store follower against a real `redis-server` (started here on a free port, with an fsynced append-only
//! file so that it comes back with its data). The documents are in a folder store, so this test needs no other
//! backend. Each test change edits the folder and then appends the change entry the Redis store would append.
//! The follower must reload once per batch, resync on a gap and after Redis comes back, report its state, and
//! copy the CRL and the revoked serials into the replica's files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use penghubung_server::follow::{FollowState, Follower};
use penghubung_server::reload::Reloader;
use penghubung_snapshot::store::DirStore;
use penghubung_types::config::Config;

const PREFIX: &str = "uji:store:";

struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Redis { port, dir: tempfile::tempdir().unwrap(), child: None };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).is_none() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command in RESP; the raw reply, `None` when Redis does not answer.
    fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).ok()?;
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// What a commit of the Redis store leaves behind: the new generation and its stream entry.
    fn commit(&self, generation: u64, keys: &str) {
        let g = generation.to_string();
        self.command(&["SET", &format!("{PREFIX}generation"), &g]).unwrap();
        let id = format!("{g}-0");
        let stream = format!("{PREFIX}changes");
        let reply = self
            .command(&["XADD", &stream, &id, "generation", &g, "keys", keys, "who", "uji", "action", "uji", "at", "0"])
            .unwrap();
        assert!(reply.contains(&id), "XADD: {reply}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn opd(store: &Path, id: &str) {
    let path = store.join(format!("opds/{id}.toml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("id = \"{id}\"\nname = \"OPD {id}\"\n")).unwrap();
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_reloads_on_changes_resyncs_on_gaps_and_outages_and_copies_revocations() {
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("policies");
    opd(&store, "dinkes");
    let text = "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n[store]\npath = \"policies\"\nseed_baseline = false\n[audit]\nenabled = false\n";
    let config = Arc::new(Config::parse(text, "uji.toml", dir.path()).unwrap_or_else(|p| panic!("{p:?}")));
    let upstream_tls = Arc::new(penghubung_tls::UpstreamTls::from_config(&config).unwrap());
    let (reloader, cell) =
        Reloader::start(Box::new(DirStore::new(store.clone())), Arc::clone(&config), upstream_tls, None).unwrap();
    let crl = dir.path().join("crl.pem");
    let revoked = dir.path().join("revoked.txt");
    let follower = Follower {
        connector: penghubung_redis::Connector::new(&redis.url()).unwrap(),
        keys: penghubung_snapshot::store::redis::StoreKeys::new(PREFIX),
        reloader: Arc::clone(&reloader),
        crl_files: vec![crl.clone()],
        revoked_file: Some(revoked.clone()),
        tls: None,
        max_backoff: Duration::from_millis(200),
    };
    let (state, task): (Arc<FollowState>, _) = follower.spawn();
    let snapshot = || cell.load().generation;
    let first = snapshot();

    // A change: the folder gains an OPD, and the stream an entry. One reload publishes it.
    opd(&store, "dinsos");
    redis.commit(1, "[\"opds/dinsos.toml\"]");
    wait("generation 1", || state.generation() == 1);
    assert!(snapshot() > first, "a new snapshot serves");
    assert!(state.up());
    assert_eq!(state.resyncs(), 0, "the first read at start is not a resync");

    // A gap in the generations (the stream skips 2): the whole store is read again.
    opd(&store, "bappeda");
    redis.commit(3, "[\"opds/bappeda.toml\"]");
    wait("generation 3", || state.generation() == 3);
    assert_eq!(state.resyncs(), 1, "a gap causes a resync");

    // A revocation: the store's CRL and revoked serials land in this replica's files.
    redis.command(&["SET", &format!("{PREFIX}crl"), "-----BEGIN X509 CRL-----uji"]).unwrap();
    redis.command(&["SET", &format!("{PREFIX}revoked"), "0a1b\n"]).unwrap();
    redis.commit(4, "[\"ca/revocations/0a1b\"]");
    wait("the CRL copied", || std::fs::read_to_string(&crl).is_ok_and(|t| t == "-----BEGIN X509 CRL-----uji"));
    assert_eq!(std::fs::read_to_string(&revoked).unwrap(), "0a1b\n");
    wait("generation 4", || state.generation() == 4);

    // Redis goes away: the replica keeps its snapshot and says the store is down.
    let serving = snapshot();
    redis.kill();
    wait("the store reported down", || !state.up());
    assert_eq!(snapshot(), serving, "the last snapshot keeps serving");
    assert_eq!(state.generation(), 4);

    // A change committed while this replica could not see it (written straight to the restarted Redis before
    // the follower reconnects): the resync after the reconnect finds it.
    redis.spawn();
    opd(&store, "bapenda");
    redis.commit(5, "[\"opds/bapenda.toml\"]");
    wait("following again at generation 5", || state.up() && state.generation() == 5);
    assert!(state.resyncs() >= 2, "the reconnect caused a resync");
    assert!(snapshot() > serving, "the change made during the outage serves");
    task.abort();
}
