//! Redis high availability: a real primary, a replica and a sentinel (`redis-server --sentinel`) on free ports;
//! a gateway process reaches Redis through `redis+sentinel://`. A forced failover (`SENTINEL FAILOVER`:
//! the old primary lives on, demoted, and answers writes with `READONLY`) and then a failover after the new
//! primary is killed: the gateway serves every request throughout, and its rate limits and its audit shipping
//! continue on whichever server is the primary now.

use std::time::{Duration, Instant};

use http::Request;
use penghubung_tests::redis::{sentinel_url, RedisServer, SentinelServer};
use penghubung_tests::{docs, empty, http1_client, send, write_setup, GatewayProcess, Upstream};

const STREAM: &str = "penghubung:audit:gw-ha";

async fn health(url: &str) -> serde_json::Value {
    let request = Request::get(format!("{url}/_penghubung/health")).body(empty()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), send(&http1_client(), request)).await.expect("health answers").json()
}

/// Sends one request to `path` and asserts it was served.
async fn served(url: &str, path: &str) {
    let request = Request::get(format!("{url}{path}")).body(empty()).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), send(&http1_client(), request))
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer"));
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
}

/// Whether `server` has a rate-limit key of the service `name`.
fn has_limit_key(server: &RedisServer, name: &str) -> bool {
    server.command("KEYS penghubung:rl:*").contains(&format!("dinkes/{name}"))
}

/// The audit stream's length on `server`.
fn stream_len(server: &RedisServer) -> u64 {
    server.command(&format!("XLEN {STREAM}")).trim().trim_start_matches(':').parse().unwrap_or(0)
}

/// Waits until the sentinel names `port` as the primary and that server says so itself.
fn wait_primary(sentinel: &SentinelServer, server: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sentinel.primary_port() != Some(server.port) || !server.command("ROLE").contains("master") {
        assert!(Instant::now() < deadline, "no failover to {}: {:?}", server.port, sentinel.primary_port());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves a request to `service` every 20 ms until `done` holds (at most 20 s); every one must be served.
async fn serve_until(
    gateway: &GatewayProcess,
    service: &str,
    server: &RedisServer,
    mut done: impl FnMut() -> bool,
) -> usize {
    let url = &gateway.url;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{service}: the gateway never used the primary on {}: keys {:?}, stream {:?}, health {}, log {}",
            server.port,
            server.command("KEYS *"),
            server.command(&format!("XINFO STREAM {STREAM}")),
            health(url).await,
            gateway.log()
        );
        served(url, &format!("/dinkes/{service}/v1/x")).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sentinel_failovers_the_gateway_keeps_serving_and_limits_and_shipping_use_the_new_primary() {
    let first = RedisServer::start();
    let mut second = RedisServer::start_replica_of(first.port);
    let sentinel = SentinelServer::start(first.port, 1);
    assert_eq!(sentinel.primary_port(), Some(first.port));

    let upstream = Upstream::text("ok").await;
    let mut documents = vec![docs::opd("dinkes")];
    for name in ["satu", "dua", "tiga"] {
        documents.push(docs::service("dinkes", name, &[upstream.url()], "", &docs::rate_limit(1000, "60s", 1000)));
    }
    let config = format!(
        "[audit]\nenabled = true\ndir = \"audit\"\ngateway_id = \"gw-ha\"\ncheckpoint_interval = \"1s\"\n\n\
         [redis]\nurl = \"{}\"\ntimeout = \"200ms\"\nmax_reconnect_backoff = \"200ms\"\n",
        sentinel_url(&[&sentinel])
    );
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&write_setup(dir.path(), &documents, &config));
    let url = gateway.url.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&url).await["ratelimit"]["redis"] != "up" {
        assert!(Instant::now() < deadline, "the limiter never reached the primary through the sentinel");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Through the sentinel, the first server is the primary: the limits and the audit records are there.
    serve_until(&gateway, "satu", &first, || has_limit_key(&first, "satu") && stream_len(&first) > 0).await;
    let before = stream_len(&first);

    // A forced failover: the first server is demoted (it lives on, read-only); the second is the primary.
    sentinel.fail_over();
    wait_primary(&sentinel, &second);
    let sent =
        serve_until(&gateway, "dua", &second, || has_limit_key(&second, "dua") && stream_len(&second) > before + 2)
            .await;
    assert!(sent > 0);
    let state = health(&url).await;
    assert_eq!(state["ratelimit"]["redis"], "up", "{state}");

    // The new primary is killed: the sentinel promotes the first server again (a replica of the second by now).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !first.command("INFO replication").contains("master_link_status:up") {
        assert!(Instant::now() < deadline, "the demoted server never followed the new primary");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = stream_len(&second);
    second.kill();
    // Served all along, through the fallback while no primary answers.
    let sent = serve_until(&gateway, "tiga", &first, || {
        sentinel.primary_port() == Some(first.port) && has_limit_key(&first, "tiga") && stream_len(&first) > before + 2
    })
    .await;
    assert!(sent > 0);
    let state = health(&url).await;
    assert_eq!(state["ratelimit"]["redis"], "up", "{state}");
    assert_eq!(state["audit"]["shipping"]["redis"], "up", "{state}");
    assert!(upstream.hits() >= 3, "every request reached the upstream");
    let log = gateway.log();
    assert!(log.contains("Redis is reachable again"), "{log}");
}

/// Console sessions through `redis+sentinel://`: two replicas' session stores share them, and after a forced
/// failover new sessions are made on the new primary and seen by both (what reached the replica before the
/// failover survives it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_through_sentinel_are_shared_and_survive_a_failover() {
    use penghubung::console::{RedisSessions, SessionStore};

    let first = RedisServer::start();
    let second = RedisServer::start_replica_of(first.port);
    let sentinel = SentinelServer::start(first.port, 1);
    let text = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n[redis]\nurl = \"{}\"\n",
        sentinel_url(&[&sentinel])
    );
    let config = penghubung::Config::parse(&text, "c.toml", std::path::Path::new(".")).unwrap();
    let redis = config.redis.as_ref().unwrap();
    let (idle, absolute) = (Duration::from_secs(600), Duration::from_secs(3600));
    let a = RedisSessions::of_config(redis, idle, absolute).unwrap();
    let b = RedisSessions::of_config(redis, idle, absolute).unwrap();

    let session = a.create("ani").expect("a session on the primary");
    assert_eq!(b.touch(&session.id).expect("seen by the other replica").operator, "ani");
    let key = format!("penghubung:console:session:{}", session.id);
    assert!(first.command(&format!("EXISTS {key}")).starts_with(":1"), "written to the primary");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !second.command(&format!("EXISTS {key}")).starts_with(":1") {
        assert!(Instant::now() < deadline, "the replica never had the session");
        std::thread::sleep(Duration::from_millis(20));
    }

    sentinel.fail_over();
    wait_primary(&sentinel, &second);
    // The stores reconnect to the new primary (a call on a lost or demoted connection finds no session, once).
    let deadline = Instant::now() + Duration::from_secs(20);
    let renewed = loop {
        if let Some(renewed) = a.create("budi") {
            if second.command(&format!("EXISTS penghubung:console:session:{}", renewed.id)).starts_with(":1") {
                break renewed;
            }
        }
        assert!(Instant::now() < deadline, "sessions never moved to the new primary");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.touch(&renewed.id).is_none() {
        assert!(Instant::now() < deadline, "the other replica never read the new primary");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.touch(&session.id).expect("the replicated session survived").operator, "ani");
    b.remove(&session.id);
    assert!(a.touch(&session.id).is_none(), "signed out on one, gone on the other");
}

/// Store writes go to the primary Sentinel names. After a failover the store's next write finds the new primary
/// (a demoted primary answers writes with `READONLY`, which counts as a lost connection), and what was committed
/// before the failover is still there.
#[test]
fn store_writes_resume_on_the_new_primary_after_a_sentinel_failover() {
    use penghubung::store::redis::RedisStore;
    use penghubung::store::{ChangeMeta, DocumentStore, StoreError};

    let first = RedisServer::start();
    let second = RedisServer::start_replica_of(first.port);
    let sentinel = SentinelServer::start(first.port, 1);
    let text = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n[store]\nbackend = \"redis\"\n[redis]\nurl = \"{}\"\n",
        sentinel_url(&[&sentinel])
    );
    let config = penghubung::Config::parse(&text, "c.toml", std::path::Path::new(".")).unwrap();
    let store = RedisStore::of_config(&config).unwrap();
    let meta = ChangeMeta {
        who: "admin-uji".into(),
        action: "create_tier".into(),
        at: "2026-12-06T00:00:00Z".into(),
        ca: None,
    };
    let tier = |id: &str| vec![(format!("tiers/{id}.toml"), Some(format!("id = \"{id}\"\nrate = 10\nburst = 10\n")))];

    assert_eq!(store.commit(0, &tier("sebelum"), &[], &meta).expect("a write on the first primary"), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.command("GET penghubung:store:generation") != "$1\r\n1\r\n" {
        assert!(Instant::now() < deadline, "the replica never had generation 1");
        std::thread::sleep(Duration::from_millis(20));
    }

    sentinel.fail_over();
    wait_primary(&sentinel, &second);
    // Until the old primary is told to follow the new one it still takes writes, which its resync then drops
    // (Redis replicates asynchronously; docs/deployment.md says so). Write once it is a replica: its READONLY
    // answer must send the store to the new primary.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !first.command("ROLE").contains("slave") {
        assert!(Instant::now() < deadline, "the old primary never became a replica");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let generation = loop {
        match store.commit(1, &tier("sesudah"), &[], &meta) {
            Ok(generation) => break generation,
            Err(StoreError::Unavailable(e)) => {
                assert!(Instant::now() < deadline, "store writes never resumed after the failover: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(other) => panic!("the write after the failover: {other}"),
        }
    };
    assert_eq!(generation, 2, "one commit after the failover, on top of the replicated one");
    assert!(second.command("HEXISTS penghubung:store:docs tiers/sesudah.toml").starts_with(":1"), "on the new primary");
    let keys: Vec<String> = store.list().expect("the store reads").0.into_iter().map(|d| d.key).collect();
    assert!(
        keys.contains(&"tiers/sebelum.toml".to_string()) && keys.contains(&"tiers/sesudah.toml".to_string()),
        "{keys:?}"
    );
}
