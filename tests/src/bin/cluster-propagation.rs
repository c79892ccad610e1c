//! How long a change takes to serve on every replica: three replicas of the real binary sharing a real
//! `redis-server` ([`penghubung_tests::cluster`]). Each round turns a client app off or on through one replica's
//! admin API, each round on the next replica. It then polls the data plane of all three replicas, each poll a
//! new mTLS connection, until each one answers the app as the change says (403 when off, 200 when on). The
//! report gives p50, p99 and the maximum: from sending the write to the last replica serving it, and from the
//! write's answer (the change committed) to the last replica serving it.
//!
//! `cargo run -p penghubung-tests --bin cluster-propagation [-- ROUNDS]` (default 100 rounds). It measures
//! latency, not throughput.

use std::time::{Duration, Instant};

use http::Method;
use penghubung_tests::cluster::Cluster;
use penghubung_tests::{docs, Upstream};
use serde_json::json;

const PATH: &str = "/dinsos/bansos/v1/status";
const REPLICAS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(100, |n| n.parse().expect("ROUNDS is a number"));
    let upstream = Upstream::text("bansos ok").await;
    let url = upstream.url();
    let (cluster, app) = tokio::task::block_in_place(|| {
        Cluster::start_with(REPLICAS, "", |pki| {
            let app = pki.client("dinsos", "sikasos");
            let documents = vec![
                docs::opd("dinsos"),
                docs::unlimited_tier(),
                docs::service("dinsos", "bansos", &[url], "", &docs::operation("cek", "GET", "/status")),
                docs::client("dinsos", "sikasos", app.spiffe.as_deref().unwrap(), true),
                docs::grant("sikasos-bansos", "dinsos/sikasos", "dinsos/bansos/v1", &["*"]),
            ];
            (documents, app)
        })
    });
    let mut from_send = Vec::with_capacity(rounds);
    let mut from_commit = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let enabled = round % 2 == 1;
        let expected = if enabled { 200 } else { 403 };
        let writer = round % REPLICAS;
        let sent = Instant::now();
        let body = json!({ "enabled": enabled, "reason": "propagation benchmark" });
        let path = "/api/v1/clients/dinsos/sikasos/enabled";
        let answer = cluster.admin_call(writer, "keamanan-uji", Method::POST, path, Some(body)).await;
        assert!(answer.status.is_success(), "round {round}: {} {}", answer.status, answer.text());
        let committed = Instant::now();
        let serving = wait_serving(&cluster, &app, expected).await;
        let done = serving.into_iter().max().unwrap();
        from_send.push(done - sent);
        from_commit.push(done.saturating_duration_since(committed));
    }
    println!("change propagation over {REPLICAS} replicas, {rounds} rounds (debug build of the gateway):");
    report("write sent -> serving on all replicas", &mut from_send);
    report("write answered -> serving on all replicas", &mut from_commit);
}

/// Polls every replica until it answers `expected`; the instant each one did.
async fn wait_serving(cluster: &Cluster, app: &penghubung::management::ca::Issued, expected: u16) -> Vec<Instant> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done: Vec<Option<Instant>> = vec![None; REPLICAS];
    while done.iter().any(Option::is_none) {
        for (i, slot) in done.iter_mut().enumerate() {
            if slot.is_none() && cluster.data_status(i, app, PATH).await.unwrap_or(0) == expected {
                *slot = Some(Instant::now());
            }
        }
        assert!(Instant::now() < deadline, "a replica did not serve the change within 30 s");
    }
    done.into_iter().flatten().collect()
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "  {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}
