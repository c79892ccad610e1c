//! Cluster mode with real processes: three gateway replicas of the real binary sharing one document store in a
//! real `redis-server` ([`penghubung_tests::cluster`]). A grant revoked through one replica's admin API is
//! denied by the other two within a second. A client certificate revoked on one replica is refused by the
//! others. With Redis killed every replica keeps serving and writes are refused; with Redis back they resync
//! and no change is lost. A replica stopped while changes happen catches up when it starts again.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use penghubung::management::ca::Issued;
use penghubung_tests::cluster::Cluster;
use penghubung_tests::{docs, Upstream};
use serde_json::json;

/// The path the client apps call on every replica.
const PATH: &str = "/dinsos/bansos/v1/status";

/// A cluster of `n` replicas over one service (`dinsos/bansos/v1`) and two client apps, `dinsos/sikasos` and
/// `dinsos/sipena`, each with its own grant (`sikasos-bansos`, `sipena-bansos`).
struct Setup {
    cluster: Cluster,
    sikasos: Issued,
    sipena: Issued,
    _upstream: Upstream,
}

async fn setup(n: usize) -> Setup {
    let upstream = Upstream::text("bansos ok").await;
    let url = upstream.url();
    let (cluster, (sikasos, sipena)) = tokio::task::block_in_place(|| {
        Cluster::start_with(n, "", |pki| {
            let (sikasos, sipena) = (pki.client("dinsos", "sikasos"), pki.client("dinsos", "sipena"));
            let documents = vec![
                docs::opd("dinsos"),
                docs::unlimited_tier(),
                docs::service("dinsos", "bansos", &[url], "", &docs::operation("cek", "GET", "/status")),
                docs::client("dinsos", "sikasos", sikasos.spiffe.as_deref().unwrap(), true),
                docs::client("dinsos", "sipena", sipena.spiffe.as_deref().unwrap(), true),
                docs::grant("sikasos-bansos", "dinsos/sikasos", "dinsos/bansos/v1", &["*"]),
                docs::grant("sipena-bansos", "dinsos/sipena", "dinsos/bansos/v1", &["*"]),
            ];
            (documents, (sikasos, sipena))
        })
    });
    Setup { cluster, sikasos, sipena, _upstream: upstream }
}

impl Setup {
    /// The data-plane status of `identity` calling [`PATH`] on replica `i` (0 when the handshake is refused).
    async fn status(&self, i: usize, identity: &Issued) -> u16 {
        self.cluster.data_status(i, identity, PATH).await.unwrap_or(0)
    }

    /// Waits until `identity` is no longer answered 200 by replica `i`; how long that took from `since`.
    async fn wait_denied(&self, i: usize, identity: &Issued, since: Instant, within: Duration) -> Duration {
        loop {
            let status = self.status(i, identity).await;
            if status != 200 {
                return since.elapsed();
            }
            assert!(since.elapsed() < within, "replica {i} still admits the caller after {within:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Revokes grant `id` through replica `i`'s admin API; the answer.
    async fn revoke_grant(&self, i: usize, id: &str) -> penghubung_tests::Collected {
        let path = format!("/api/v1/grants/{id}?reason=uji%20klaster");
        self.cluster.admin_call(i, "keamanan-uji", Method::DELETE, &path, None).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_through_one_replica_is_denied_by_the_others_within_a_second() {
    let setup = setup(3).await;
    for i in 0..3 {
        assert_eq!(setup.status(i, &setup.sikasos).await, 200, "replica {i} serves the granted caller");
    }
    let answer = setup.revoke_grant(0, "sikasos-bansos").await;
    assert!(answer.status.is_success(), "revoking the grant: {} {}", answer.status, answer.text());
    let committed = Instant::now();
    assert_eq!(setup.status(0, &setup.sikasos).await, 403, "the replica that took the change denies at once");
    for i in [1, 2] {
        let took = setup.wait_denied(i, &setup.sikasos, committed, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(1), "replica {i} denied the revoked grant only after {took:?}");
        assert_eq!(setup.status(i, &setup.sikasos).await, 403, "replica {i} denies by policy, not by accident");
    }
    // The other caller's grant is untouched everywhere.
    for i in 0..3 {
        assert_eq!(setup.status(i, &setup.sipena).await, 200, "replica {i} still serves the other grant");
    }
    let generation = setup.cluster.store_generation();
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while setup.cluster.metric(i, "penghubung_store_generation") != Some(generation as f64) {
            assert!(Instant::now() < deadline, "replica {i}: {}", setup.cluster.metrics(i));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(setup.cluster.metric(i, "penghubung_store_up"), Some(1.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_on_one_replica_is_refused_by_the_others() {
    let setup = setup(3).await;
    for i in 0..3 {
        assert_eq!(setup.status(i, &setup.sikasos).await, 200);
    }
    let body = json!({ "serial_hex": setup.sikasos.serial_hex, "reason": "kunci bocor" });
    let answer = setup.cluster.admin_call(0, "keamanan-uji", Method::POST, "/api/v1/revocations", Some(body)).await;
    assert!(answer.status.is_success(), "revoking the certificate: {} {}", answer.status, answer.text());
    let revoked = Instant::now();
    for i in [1, 2] {
        // A new handshake with the revoked certificate is refused (or answered 401/403, never served).
        let took = setup.wait_denied(i, &setup.sikasos, revoked, Duration::from_secs(5)).await;
        let refused = setup.cluster.data_status(i, &setup.sikasos, PATH).await;
        assert!(refused.as_ref().map_or(true, |s| *s != 200), "replica {i} served a revoked certificate: {refused:?}");
        eprintln!("replica {i} refused the revoked certificate {took:?} after the revocation");
        // The replica's own CRL file now lists the serial (copied from the shared store).
        let crl = std::fs::read_to_string(setup.cluster.replicas[i].dir.join("pki/crl.pem")).unwrap();
        assert!(crl.contains("BEGIN X509 CRL"), "{crl}");
        let revoked_list = std::fs::read_to_string(setup.cluster.replicas[i].dir.join("pki/revoked.txt")).unwrap();
        assert!(revoked_list.to_ascii_lowercase().contains(&setup.sikasos.serial_hex.to_ascii_lowercase()));
    }
    // Another certificate of the same CA is still served everywhere.
    for i in 0..3 {
        assert_eq!(setup.status(i, &setup.sipena).await, 200, "replica {i} still serves an unrevoked certificate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_replicas_keep_serving_refuse_writes_and_resync_when_it_is_back() {
    let mut setup = setup(3).await;
    // A change before the outage.
    let answer = setup.revoke_grant(0, "sikasos-bansos").await;
    assert!(answer.status.is_success(), "{}", answer.text());
    for i in 0..3 {
        setup.wait_denied(i, &setup.sikasos, Instant::now(), Duration::from_secs(5)).await;
    }
    let before = setup.cluster.store_generation();

    setup.cluster.kill_redis();
    // Every replica keeps serving its last snapshot: the granted caller is served, the revoked one denied.
    for i in 0..3 {
        assert_eq!(setup.status(i, &setup.sipena).await, 200, "replica {i} serves while Redis is down");
        assert_eq!(setup.status(i, &setup.sikasos).await, 403, "replica {i} keeps the revocation while Redis is down");
    }
    // Health says so, and stays ready.
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = setup.cluster.ready(i).expect("the ops listener answers");
            if body.contains("unavailable (serving generation") {
                assert_eq!(status, 200, "a replica serving its last snapshot stays ready: {body}");
                break;
            }
            assert!(Instant::now() < deadline, "replica {i} does not report the store down: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(setup.cluster.metric(i, "penghubung_store_up"), Some(0.0));
    }
    // Writes are refused with a clear problem, and change nothing.
    let refused = setup.revoke_grant(1, "sipena-bansos").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text());
    assert_eq!(refused.code(), "store.unavailable", "{}", refused.text());

    tokio::task::block_in_place(|| setup.cluster.restart_redis());
    // The change made before the outage survived in Redis.
    assert_eq!(setup.cluster.store_generation(), before, "Redis came back with its data");
    // A change as soon as Redis is back (retried while the writing replica reconnects) reaches every replica.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = setup.revoke_grant(2, "sipena-bansos").await;
        if answer.status.is_success() {
            break;
        }
        assert_eq!(answer.code(), "store.unavailable", "{}", answer.text());
        assert!(Instant::now() < deadline, "writes did not resume: {}", answer.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = Instant::now();
    for i in 0..3 {
        setup.wait_denied(i, &setup.sipena, resumed, Duration::from_secs(10)).await;
        assert_eq!(setup.status(i, &setup.sikasos).await, 403, "replica {i} lost the change made before the outage");
    }
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = setup.cluster.ready(i).unwrap();
            if body.contains("following generation") {
                break;
            }
            assert!(Instant::now() < deadline, "replica {i} does not follow again: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(setup.cluster.metric(i, "penghubung_store_up"), Some(1.0));
        let resyncs = setup.cluster.metric(i, "penghubung_store_resyncs_total").unwrap_or(0.0);
        assert!(resyncs >= 1.0, "replica {i} resynced after the outage: {}", setup.cluster.metrics(i));
    }
    setup.cluster.replicas.iter().for_each(|r| assert!(r.is_running()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_while_changes_happen_catches_up_when_it_starts_again() {
    let mut setup = setup(3).await;
    setup.cluster.kill_replica(2);
    for id in ["sikasos-bansos", "sipena-bansos"] {
        let answer = setup.revoke_grant(0, id).await;
        assert!(answer.status.is_success(), "{}", answer.text());
    }
    let generation = setup.cluster.store_generation();
    tokio::task::block_in_place(|| setup.cluster.start_replica(2));
    assert_eq!(setup.status(2, &setup.sikasos).await, 403, "the restarted replica has the first change");
    assert_eq!(setup.status(2, &setup.sipena).await, 403, "the restarted replica has the second change");
    let deadline = Instant::now() + Duration::from_secs(5);
    while setup.cluster.metric(2, "penghubung_store_generation") != Some(generation as f64) {
        assert!(Instant::now() < deadline, "{}", setup.cluster.metrics(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And it follows what comes next: a change through it reaches the others.
    let body = json!({ "serial_hex": setup.sipena.serial_hex, "reason": "uji" });
    let answer = setup.cluster.admin_call(2, "keamanan-uji", Method::POST, "/api/v1/revocations", Some(body)).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    let deadline = Instant::now() + Duration::from_secs(5);
    while setup.cluster.store_generation() == generation {
        assert!(Instant::now() < deadline, "the revocation made no store change");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A replica (re)started while Redis is down cannot read its documents: it does not start half-configured and
/// does not hang; it exits with a non-zero status and says that the store in Redis is unreachable. Started again
/// once Redis is back, it serves.
#[test]
fn a_replica_started_while_redis_is_down_exits_and_says_why() {
    let mut cluster = Cluster::start(1, &[docs::opd("dinsos")], "");
    cluster.kill_replica(0);
    cluster.kill_redis();
    let replica = &cluster.replicas[0];
    let mut child = std::process::Command::new(penghubung_tests::penghubung_binary())
        .args(["serve", "--config"])
        .arg(&replica.config)
        .current_dir(&replica.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the replica neither served nor exited within 60 s with Redis down");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "it must not report success: {status}\n{stderr}");
    assert!(
        stderr.contains("cannot start: document store: Redis store redis://"),
        "the error names the store:\n{stderr}"
    );
    assert!(stderr.contains("unavailable"), "and says it is unavailable:\n{stderr}");
    assert!(!stderr.contains("valid configuration"), "not a problem of the documents:\n{stderr}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", replica.data_port)).is_err(), "nothing listens");
    cluster.restart_redis();
    cluster.start_replica(0);
}
