//! Rate limits and quotas: in process (governor) and shared through a real `redis-server` that each test starts
//! on a free port. Quotas are small with long periods (tens of seconds) so that refills during a test cannot
//! change the outcome; bounds are `burst + rate × elapsed`.

use std::time::{Duration, Instant};

use http::Request;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::redis::RedisServer;
use penghubung_tests::{
    closed_port_url, docs, empty, http1_client, send, write_setup, Collected, GatewayProcess, TestBody, TestGateway,
    Upstream,
};

type Http1 = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, TestBody>;

/// GET with a client-side deadline: a request that hangs fails the test.
async fn get_within(client: &Http1, url: &str, deadline: Duration) -> Collected {
    let request = Request::get(url).body(empty()).unwrap();
    tokio::time::timeout(deadline, send(client, request))
        .await
        .unwrap_or_else(|_| panic!("{url}: no answer within {deadline:?}"))
}

fn header<'a>(r: &'a Collected, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header: {r:?}"))
}

/// A service limited to `rate` requests per `period` (burst = rate), plaintext, policy off.
fn limited_service(upstream: &Upstream, rate: u32, period: &str) -> Vec<(String, String)> {
    vec![
        docs::opd("dinkes"),
        docs::service("dinkes", "rm", &[upstream.url()], "", &docs::rate_limit(rate, period, rate)),
    ]
}

/// Sends `total` requests from `workers` concurrent tasks; returns (admitted, refused, elapsed).
async fn blast(urls: &[String], total: usize, workers: usize) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let urls = urls.to_vec();
        tasks.push(tokio::spawn(async move {
            let client = http1_client();
            let (mut ok, mut refused) = (0, 0);
            for i in (w..total).step_by(workers) {
                let r = get_within(&client, &urls[i % urls.len()], Duration::from_secs(5)).await;
                match r.status.as_u16() {
                    200 => ok += 1,
                    429 => {
                        assert_eq!(r.code(), "ratelimit.exceeded");
                        refused += 1
                    }
                    other => panic!("unexpected {other}: {}", r.text()),
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        refused += r;
    }
    (ok, refused, started.elapsed())
}

/// The most a GCRA of `rate` per `period` with `burst` may admit in `elapsed` (+1 for the cell in progress).
fn bound(rate: u32, period: Duration, burst: u32, elapsed: Duration) -> usize {
    burst as usize + (f64::from(rate) * elapsed.as_secs_f64() / period.as_secs_f64()).ceil() as usize + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_load_never_exceeds_rate_times_time_plus_burst_and_headers_are_right() {
    let upstream = Upstream::text("ok").await;
    let gw = TestGateway::start(&limited_service(&upstream, 10, "20s"), "").await;
    let url = format!("{}/dinkes/rm/v1/x", gw.url);
    let first = get_within(&http1_client(), &url, Duration::from_secs(5)).await;
    assert_eq!(first.status, 200);
    assert_eq!(header(&first, "ratelimit-policy"), "\"service\";q=10;w=20");
    assert_eq!(header(&first, "ratelimit"), "\"service\";r=9;t=2");
    let (ok, refused, elapsed) = blast(std::slice::from_ref(&url), 150, 8).await;
    let admitted = ok + 1;
    assert!(admitted >= 10, "the burst is admitted: {admitted}");
    assert!(admitted <= bound(10, Duration::from_secs(20), 10, elapsed), "{admitted} admitted in {elapsed:?}");
    assert_eq!(ok + refused, 150);
    assert_eq!(upstream.hits(), admitted, "a refused request never reaches the upstream");
    let r = get_within(&http1_client(), &url, Duration::from_secs(5)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=3).contains(&retry), "one request every 2 s: {retry}");
    assert_eq!(header(&r, "ratelimit-policy"), "\"service\";q=10;w=20");
    assert_eq!(header(&r, "ratelimit"), format!("\"service\";r=0;t={retry}"));
    assert!(r.json()["detail"].as_str().unwrap().contains("service rate limit"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_per_grant_client_service_and_opd_each_bite_independently() {
    let upstream = Upstream::text("ok").await;
    let big = Upstream::start(|_req| async { http::Response::new(penghubung_tests::full(vec![b'x'; 3000])) }).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let spiffe = |opd: &str, app: &str| format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}");
    let client_doc = |opd: &str, app: &str, extra: &str| {
        let (key, text) = docs::client(opd, app, &spiffe(opd, app), true);
        (key, text.replace("\n\n[identity]", &format!("\n{extra}\n[identity]")))
    };
    let mut documents = vec![
        docs::opd("dinkes"),
        (
            "opds/dinsos.toml".to_string(),
            "id = \"dinsos\"\nname = \"Dinsos\"\n[bandwidth]\nrequests_per_second = 1\nrequest_burst = 3\n".to_string(),
        ),
        (
            "opds/bappeda.toml".to_string(),
            "id = \"bappeda\"\nname = \"Bappeda\"\n[bandwidth]\nbytes_per_second = 1000\n".to_string(),
        ),
        docs::service("dinkes", "a", &[upstream.url()], "", ""),
        docs::service("dinkes", "b", &[upstream.url()], "", &docs::rate_limit(2, "60s", 2)),
        docs::service("dinkes", "big", &[big.url()], "", ""),
        docs::unlimited_tier(),
        docs::tier("ketat", 2, "60s", 2),
        client_doc("dinkes", "g1", ""),
        client_doc("dinkes", "g2", ""),
        client_doc("dinkes", "c1", &docs::rate_limit(3, "60s", 3)),
        client_doc("dinkes", "s1", ""),
        client_doc("dinkes", "s2", ""),
        client_doc("dinsos", "o1", ""),
        client_doc("dinsos", "o2", ""),
        client_doc("bappeda", "b1", ""),
        docs::grant_in_tier("g1-a", "dinkes/g1", "dinkes/a/v1", &["*"], "ketat"),
        docs::grant("g2-a", "dinkes/g2", "dinkes/a/v1", &["*"]),
        docs::grant("c1-a", "dinkes/c1", "dinkes/a/v1", &["*"]),
        docs::grant("c1-big", "dinkes/c1", "dinkes/big/v1", &["*"]),
        docs::grant("s1-b", "dinkes/s1", "dinkes/b/v1", &["*"]),
        docs::grant("s2-b", "dinkes/s2", "dinkes/b/v1", &["*"]),
        docs::grant("o1-a", "dinsos/o1", "dinkes/a/v1", &["*"]),
        docs::grant("o2-a", "dinsos/o2", "dinkes/a/v1", &["*"]),
        docs::grant("b1-big", "bappeda/b1", "dinkes/big/v1", &["*"]),
    ];
    documents.sort();
    let config = write_mtls_setup(dir.path(), &documents, &pki, "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let base = format!("https://{}", gateway.local_addrs()[0]);
    let as_client = |opd: &str, app: &str| https_client(client_config(&pki.ca_pem(), Some(&pki.client(opd, app))));
    let call = |client: &hyper_util::client::legacy::Client<_, TestBody>, path: &str| {
        let request = Request::get(format!("{base}{path}")).body(empty()).unwrap();
        let client = client.clone();
        async move { tokio::time::timeout(Duration::from_secs(5), send(&client, request)).await.expect("answers") }
    };
    let refused_by = |r: &Collected| {
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(r.headers.contains_key("retry-after"));
        let policy = header(r, "ratelimit-policy");
        policy.split(';').next().unwrap().trim_matches('"').to_string()
    };

    // Grant (tier `ketat`, 2 per minute): g1 is refused on its third call; g2 on the same service is not.
    let (g1, g2) = (as_client("dinkes", "g1"), as_client("dinkes", "g2"));
    for _ in 0..2 {
        let r = call(&g1, "/dinkes/a/v1/x").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(header(&r, "ratelimit-policy"), "\"grant\";q=2;w=60");
    }
    assert_eq!(refused_by(&call(&g1, "/dinkes/a/v1/x").await), "grant");
    let r = call(&g2, "/dinkes/a/v1/x").await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("ratelimit").is_none(), "no limit applies to g2 on a");

    // Client (3 per minute over all its calls): the fourth call is refused whichever service it goes to.
    let c1 = as_client("dinkes", "c1");
    for path in ["/dinkes/a/v1/x", "/dinkes/big/v1/x", "/dinkes/a/v1/y"] {
        assert_eq!(call(&c1, path).await.status, 200);
    }
    assert_eq!(refused_by(&call(&c1, "/dinkes/big/v1/x").await), "client");

    // Service (2 per minute for all callers): s1 uses it up, s2 is refused.
    let (s1, s2) = (as_client("dinkes", "s1"), as_client("dinkes", "s2"));
    for _ in 0..2 {
        let r = call(&s1, "/dinkes/b/v1/x").await;
        assert_eq!((r.status.as_u16(), header(&r, "ratelimit-policy")), (200, "\"service\";q=2;w=60"));
    }
    assert_eq!(refused_by(&call(&s2, "/dinkes/b/v1/x").await), "service");

    // OPD requests (dinsos: 1/s, burst 3, shared by its clients): o1 and o2 together get about 3.
    let (o1, o2) = (as_client("dinsos", "o1"), as_client("dinsos", "o2"));
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = call(if i % 2 == 0 { &o1 } else { &o2 }, "/dinkes/a/v1/x").await;
        if r.status == 429 {
            assert_eq!(refused_by(&r), "opd");
        }
        statuses.push(r.status.as_u16());
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses[..3].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(admitted <= bound(1, Duration::from_secs(1), 3, started.elapsed()), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");

    // OPD bytes (bappeda: 1000 bytes/s): a 3000-byte response puts the OPD 2 s in debt; the next call waits.
    let b1 = as_client("bappeda", "b1");
    let r = call(&b1, "/dinkes/big/v1/x").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 3000));
    assert_eq!(header(&r, "ratelimit-policy"), "\"opd-bytes\";q=1000;w=1;qu=\"content-bytes\"");
    let r = call(&b1, "/dinkes/big/v1/x").await;
    assert_eq!(refused_by(&r), "opd-bytes");
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_the_same_quota_keeps_the_counters_and_a_new_quota_starts_fresh() {
    let upstream = Upstream::text("ok").await;
    let gw = TestGateway::start(&limited_service(&upstream, 2, "60s"), "").await;
    let url = format!("{}/dinkes/rm/v1/x", gw.url);
    let client = http1_client();
    for _ in 0..2 {
        assert_eq!(get_within(&client, &url, Duration::from_secs(5)).await.status, 200);
    }
    assert_eq!(get_within(&client, &url, Duration::from_secs(5)).await.status, 429);
    let generation = gw.gateway().snapshot().generation;
    let (key, text) = docs::opd("dinsos");
    gw.put_document(&key, &text);
    let generation = gw.wait_generation_above(generation).await;
    let r = get_within(&client, &url, Duration::from_secs(5)).await;
    assert_eq!(r.status, 429, "an unrelated change kept the exhausted bucket");
    let (key, text) = docs::service("dinkes", "rm", &[upstream.url()], "", &docs::rate_limit(3, "60s", 3));
    gw.put_document(&key, &text);
    gw.wait_generation_above(generation).await;
    let r = get_within(&client, &url, Duration::from_secs(5)).await;
    assert_eq!(r.status, 200, "a new quota is a new bucket");
    assert_eq!(header(&r, "ratelimit-policy"), "\"service\";q=3;w=60");
}

/// Waits until the gateway's health says Redis is `state` (`up` / `down`).
async fn wait_redis(url: &str, state: &str) {
    let client = http1_client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get_within(&client, &format!("{url}/_penghubung/health"), Duration::from_secs(5)).await;
        if r.json()["ratelimit"]["redis"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "Redis never became {state}: {}", r.text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_sharing_one_redis_admit_together_no_more_than_one_limit() {
    let redis = RedisServer::start();
    let upstream = Upstream::text("ok").await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let documents = limited_service(&upstream, 10, "60s");
    let section = redis.config_section("timeout = \"500ms\"\nreplicas = 2\n");
    let a = GatewayProcess::start(&write_setup(dir_a.path(), &documents, &section));
    let b = GatewayProcess::start(&write_setup(dir_b.path(), &documents, &section));
    wait_redis(&a.url, "up").await;
    wait_redis(&b.url, "up").await;
    let urls = [format!("{}/dinkes/rm/v1/x", a.url), format!("{}/dinkes/rm/v1/x", b.url)];
    let (ok, refused, elapsed) = blast(&urls, 60, 6).await;
    assert!(ok >= 10, "the shared burst is admitted: {ok}");
    assert!(ok <= bound(10, Duration::from_secs(60), 10, elapsed), "{ok} admitted by both in {elapsed:?}");
    assert_eq!(ok + refused, 60);
    // Both refuse now, with the headers.
    for url in &urls {
        let r = get_within(&http1_client(), url, Duration::from_secs(5)).await;
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(header(&r, "ratelimit-policy"), "\"service\";q=10;w=60");
        let retry: u64 = header(&r, "retry-after").parse().unwrap();
        assert!((1..=7).contains(&retry), "{retry}");
        assert!(header(&r, "ratelimit").starts_with("\"service\";r=0;t="));
    }
    assert!(redis.command("DBSIZE").starts_with(":1"), "one key for the one limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_falls_back_within_the_timeout_and_shared_limits_resume_after_restart() {
    let mut redis = RedisServer::start();
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    // 20 per minute cluster-wide; with 2 replicas the local fallback allows 10 per minute here.
    let documents = limited_service(&upstream, 20, "60s");
    let section = redis.config_section(
        "timeout = \"100ms\"\non_unavailable = \"local_fallback\"\nreplicas = 2\nmax_reconnect_backoff = \"200ms\"\n",
    );
    let gw = GatewayProcess::start(&write_setup(dir.path(), &documents, &section));
    wait_redis(&gw.url, "up").await;
    let url = format!("{}/dinkes/rm/v1/x", gw.url);
    let client = http1_client();
    for _ in 0..5 {
        assert_eq!(get_within(&client, &url, Duration::from_secs(2)).await.status, 200);
    }

    // Load from 4 tasks; Redis dies in the middle. Every request is answered, none waits for Redis.
    let load = {
        let url = url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let client = http1_client();
                    let mut slowest = Duration::ZERO;
                    let mut statuses = Vec::new();
                    while started.elapsed() < Duration::from_millis(1200) {
                        let sent = Instant::now();
                        let r = get_within(&client, &url, Duration::from_secs(1)).await;
                        slowest = slowest.max(sent.elapsed());
                        statuses.push(r.status.as_u16());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    (slowest, statuses)
                }));
            }
            let mut all = Vec::new();
            let mut slowest = Duration::ZERO;
            for t in tasks {
                let (s, statuses) = t.await.unwrap();
                slowest = slowest.max(s);
                all.extend(statuses);
            }
            (slowest, all)
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.kill();
    let (slowest, statuses) = load.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(slowest < Duration::from_millis(800), "a request waited {slowest:?} (timeout 100 ms)");
    wait_redis(&gw.url, "down").await;
    // Redis admitted at most 20 in all; the fallback at most its share of 10 on top: never more than 30.
    let admitted = statuses.iter().filter(|s| **s == 200).count() + 5;
    assert!(admitted <= 30 + 2, "{admitted} admitted");
    let r = get_within(&client, &url, Duration::from_secs(1)).await;
    assert_eq!(r.status, 429, "the local share is used up too: {}", r.text());

    // Redis comes back (empty): the gateway reconnects on its own and the shared quota of 20 applies again.
    redis.restart();
    wait_redis(&gw.url, "up").await;
    let mut ok = 0;
    for _ in 0..25 {
        if get_within(&client, &url, Duration::from_secs(2)).await.status == 200 {
            ok += 1;
        }
    }
    // The fresh shared bucket holds 20, less what the fallback admitted meanwhile (at most its share of 10),
    // which is charged to Redis on its return: never a fresh burst on top.
    assert!((9..=20).contains(&ok), "the shared bucket, not the local share of 10: {ok}");
    let log = gw.log();
    assert!(log.contains("Redis is unreachable"), "{log}");
    assert!(log.contains("Redis is reachable again"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_redis_and_the_fallback_never_grants_a_fresh_burst() {
    let mut redis = RedisServer::start();
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    // Two services, 5 per minute each (burst 5), one replica: the fallback's share is the whole quota.
    let documents = vec![
        docs::opd("dinkes"),
        docs::service("dinkes", "satu", &[upstream.url()], "", &docs::rate_limit(5, "60s", 5)),
        docs::service("dinkes", "dua", &[upstream.url()], "", &docs::rate_limit(5, "60s", 5)),
    ];
    let section = redis.config_section(
        "timeout = \"100ms\"\non_unavailable = \"local_fallback\"\nreplicas = 1\nmax_reconnect_backoff = \"200ms\"\n",
    );
    let gw = GatewayProcess::start(&write_setup(dir.path(), &documents, &section));
    wait_redis(&gw.url, "up").await;
    let client = http1_client();
    let statuses = |path: &'static str, n: usize| {
        let (client, url) = (client.clone(), format!("{}{path}", gw.url));
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(get_within(&client, &url, Duration::from_secs(2)).await.status.as_u16());
            }
            out
        }
    };
    // Redis → fallback: what Redis admitted was counted on the local share too.
    assert_eq!(statuses("/dinkes/satu/v1/x", 5).await, [200; 5]);
    redis.kill();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let after_switch = statuses("/dinkes/satu/v1/x", 3).await;
    wait_redis(&gw.url, "down").await;
    let after_switch = [after_switch, statuses("/dinkes/satu/v1/x", 3).await].concat();
    assert!(after_switch.iter().all(|s| *s == 429), "the fallback granted a fresh burst: {after_switch:?}");

    // Fallback → Redis: what the fallback admitted is charged to Redis when it is back (even an empty one).
    assert_eq!(statuses("/dinkes/dua/v1/x", 6).await, [200, 200, 200, 200, 200, 429]);
    redis.restart();
    wait_redis(&gw.url, "up").await;
    let back = statuses("/dinkes/dua/v1/x", 3).await;
    assert!(back.iter().all(|s| *s == 429), "Redis granted a fresh burst on its return: {back:?}");
    assert!(redis.command("DBSIZE").starts_with(":1"), "the debt reached Redis: {}", redis.command("DBSIZE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_and_fail_closed_apply_at_once_while_redis_is_unreachable() {
    let upstream = Upstream::text("ok").await;
    let dead = closed_port_url().replace("http://", "redis://");
    let documents = limited_service(&upstream, 1, "60s");
    for (mode, expected) in [("fail_open", 200), ("fail_closed", 503)] {
        let section = format!("[redis]\nurl = \"{dead}\"\ntimeout = \"50ms\"\non_unavailable = \"{mode}\"\n");
        let gw = TestGateway::start(&documents, &section).await;
        let url = format!("{}/dinkes/rm/v1/x", gw.url);
        let client = http1_client();
        for _ in 0..3 {
            let started = Instant::now();
            let r = get_within(&client, &url, Duration::from_secs(2)).await;
            assert_eq!(r.status, expected, "{mode}: {}", r.text());
            assert!(started.elapsed() < Duration::from_millis(500), "{mode}: {:?}", started.elapsed());
            if expected == 503 {
                assert_eq!(r.code(), "ratelimit.unavailable");
                assert_eq!(header(&r, "retry-after"), "1");
            }
        }
    }
}

/// Sends requests from `workers` tasks, round robin over `urls`, for `duration`. Returns the admitted count
/// and the time from the first request sent to the last one answered.
async fn load_for(urls: &[String], workers: usize, duration: Duration) -> (usize, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let urls = urls.to_vec();
        tasks.push(tokio::spawn(async move {
            let client = http1_client();
            let mut ok = 0;
            let mut i = w;
            while started.elapsed() < duration {
                let r = get_within(&client, &urls[i % urls.len()], Duration::from_secs(5)).await;
                match r.status.as_u16() {
                    200 => ok += 1,
                    429 => assert_eq!(r.code(), "ratelimit.exceeded"),
                    other => panic!("unexpected {other}: {}", r.text()),
                }
                i += 1;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    (ok, started.elapsed())
}

/// What a GCRA of `rate` per second with `burst` allows in `elapsed`, starting full.
fn allowance(rate: u32, burst: u32, elapsed: Duration) -> f64 {
    f64::from(burst) + f64::from(rate) * elapsed.as_secs_f64()
}

/// Three in-process gateways (each with its own limiter and Redis connection) sharing one `redis-server` and
/// one service limit of 50/s, burst 50, under load spread over all three. Also the measurement of the limit
/// accuracy: `cargo test -p penghubung-tests --test e2e limit_accuracy -- --nocapture` prints the figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_accuracy_three_replicas_admit_within_five_percent_of_the_allowance() {
    let redis = RedisServer::start();
    let upstream = Upstream::text("ok").await;
    let documents = vec![
        docs::opd("dinkes"),
        docs::service("dinkes", "rm", &[upstream.url()], "", &docs::rate_limit(50, "1s", 50)),
    ];
    let section = redis.config_section("timeout = \"2s\"\nreplicas = 3\n");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(TestGateway::start(&documents, &section).await);
    }
    for gw in &replicas {
        wait_redis(&gw.url, "up").await;
    }
    let urls: Vec<String> = replicas.iter().map(|gw| format!("{}/dinkes/rm/v1/x", gw.url)).collect();
    let (admitted, elapsed) = load_for(&urls, 9, Duration::from_secs(4)).await;
    let allowed = allowance(50, 50, elapsed);
    let ratio = admitted as f64 / allowed;
    eprintln!(
        "limit accuracy, 3 replicas, 50/s burst 50: admitted {admitted} of {allowed:.1} allowed in {elapsed:.2?}: \
         {ratio:.4}"
    );
    assert!((0.95..=1.05).contains(&ratio), "admitted {admitted} of {allowed:.1} allowed: {ratio:.4}");
    assert_eq!(upstream.hits(), admitted, "a refused request never reaches the upstream");
    for gw in &replicas {
        let health =
            get_within(&http1_client(), &format!("{}/_penghubung/health", gw.url), Duration::from_secs(5)).await;
        assert_eq!(health.json()["ratelimit"]["fallback_requests"], 0, "Redis decided every request");
    }
}

/// Redis stopped and started again (with its data) three times under load over three replicas: the local
/// fallback, kept warm while Redis decided, never hands out a fresh burst at a switch, and what it admitted is
/// charged to Redis on its return; in all, no more than the allowance plus one replica's fallback share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_redis_under_load_admits_no_more_than_the_allowance_plus_one_fallback_share() {
    let mut redis = RedisServer::start_persistent();
    let upstream = Upstream::text("ok").await;
    let documents = vec![
        docs::opd("dinkes"),
        docs::service("dinkes", "rm", &[upstream.url()], "", &docs::rate_limit(50, "1s", 50)),
    ];
    let section = redis.config_section(
        // A killed Redis fails calls at once (the connection is reset), so a generous timeout loses nothing
        // here; it keeps a busy machine's slow answers from counting as outages (each one a switch).
        "timeout = \"1s\"\non_unavailable = \"local_fallback\"\nreplicas = 3\nmax_reconnect_backoff = \"200ms\"\n",
    );
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(TestGateway::start(&documents, &section).await);
    }
    for gw in &replicas {
        wait_redis(&gw.url, "up").await;
    }
    let urls: Vec<String> = replicas.iter().map(|gw| format!("{}/dinkes/rm/v1/x", gw.url)).collect();
    let flapper = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(900));
            redis.kill();
            std::thread::sleep(Duration::from_millis(600));
            redis.restart();
        }
        redis
    });
    let (admitted, elapsed) = load_for(&urls, 9, Duration::from_secs(5)).await;
    let redis = flapper.join().unwrap();
    let allowed = allowance(50, 50, elapsed);
    // One replica's fallback share: 50/3 per second, burst 50/3.
    let share = 16.0;
    eprintln!(
        "flapping Redis, 3 replicas, 50/s burst 50: admitted {admitted} of {allowed:.1} allowed in {elapsed:.2?}"
    );
    assert!(admitted as f64 <= allowed + share + 2.0, "admitted {admitted}, allowed {allowed:.1} + share {share}");
    assert!(admitted as f64 >= allowed * 0.7, "the fallback kept admitting: {admitted} of {allowed:.1}");
    let fallback_decided: u64 = {
        let mut total = 0;
        for gw in &replicas {
            let health =
                get_within(&http1_client(), &format!("{}/_penghubung/health", gw.url), Duration::from_secs(5)).await;
            total += health.json()["ratelimit"]["fallback_requests"].as_u64().unwrap();
        }
        total
    };
    assert!(fallback_decided > 0, "the fallback decided requests while Redis was down");
    drop(redis);
}
