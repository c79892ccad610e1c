//! Audit across replicas: two gateways, each with its own chain, signing key and `gateway_id`, ship to one real
//! `redis-server`. `penghubung audit verify --redis` verifies every replica's stream (records, seq range,
//! checkpoints with each replica's key) and reports a tampered entry and records missing between entries;
//! `penghubung report usage --redis` sums both replicas' exchanges into one report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http::Request;
use penghubung_tests::redis::RedisServer;
use penghubung_tests::{docs, empty, http1_client, penghubung_binary, send, write_setup, Upstream};

/// `[audit]` on with a checkpoint every 20 records.
const AUDIT_ON: &str =
    "[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 20\ncheckpoint_interval = \"1s\"\n";

/// `penghubung ARGS…`: exit code and stdout.
fn cli(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(penghubung_binary()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)))
}

/// Every whole line of a replica's segment files, in order.
fn file_lines(log: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// A replica: its directory (config, PKI with its own audit key, audit folder).
struct Replica {
    dir: tempfile::TempDir,
}

impl Replica {
    fn key(&self) -> String {
        self.dir.path().join("pki/audit-signing.pub").to_str().unwrap().to_string()
    }

    fn lines(&self) -> Vec<String> {
        file_lines(&self.dir.path().join("audit"))
    }
}

/// Starts a gateway with `gateway_id = id` shipping to `redis`, sends `n` requests, waits until everything is
/// shipped and shuts it down (which seals the log with a checkpoint and ships it).
async fn run_replica(redis: &RedisServer, upstream: &Upstream, id: &str, n: usize) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"async\"\n"),
    ];
    let config = format!("{AUDIT_ON}gateway_id = \"{id}\"\n\n{}", redis.config_section("timeout = \"500ms\"\n"));
    let config = write_setup(dir.path(), &documents, &config);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let url = format!("http://{}", gateway.local_addrs()[0]);
    let client = http1_client();
    for i in 0..n {
        let request = Request::get(format!("{url}/disdukcapil/kependudukan/v1/penduduk/{i}")).body(empty()).unwrap();
        assert_eq!(send(&client, request).await.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = Request::get(format!("{url}/_penghubung/health")).body(empty()).unwrap();
        let audit = send(&client, request).await.json()["audit"].clone();
        if audit["shipping"]["redis"] == "up" && audit["shipping"]["shipped_seq"] == audit["written_seq"] {
            break;
        }
        assert!(Instant::now() < deadline, "{id}: shipping does not catch up: {audit}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.shutdown().await;
    Replica { dir }
}

/// Copies `from` into the stream `to` entry by entry, passing each `(seq, line)` through `edit` (`None` skips
/// the entry): what someone with write access to Redis could leave behind.
fn copy_stream(redis: &RedisServer, from: &str, to: &str, edit: impl Fn(u64, &str) -> Option<String>) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
    for (id, fields) in redis.stream(from) {
        let seq: u64 = id.trim_end_matches("-0").parse().unwrap();
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
        let Some(line) = edit(seq, &field("line")) else { continue };
        let _: String = redis::cmd("XADD")
            .arg(to)
            .arg(&id)
            .arg("seq")
            .arg(seq)
            .arg("hash")
            .arg(field("hash"))
            .arg("line")
            .arg(line)
            .query(&mut connection)
            .unwrap();
    }
}

fn exchanges(lines: &[String]) -> u64 {
    lines.iter().filter(|l| l.contains("\"kind\":\"exchange\"")).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replicas_shipped_chain_verifies_and_tampering_and_gaps_are_reported() {
    let redis = RedisServer::start();
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let a = run_replica(&redis, &upstream, "gw-a", 45).await;
    let b = run_replica(&redis, &upstream, "gw-b", 30).await;
    let (lines_a, lines_b) = (a.lines(), b.lines());
    let url = redis.url();

    // Both replicas, each verified with its own key.
    let (code, out) = cli(&["audit", "verify", "--redis", &url, "--key", &a.key(), "--key", &b.key()]);
    assert_eq!(code, Some(0), "{out}");
    for (id, lines) in [("gw-a", &lines_a), ("gw-b", &lines_b)] {
        let block = format!(
            "replica {id} (stream penghubung:audit:{id}): verified\n  records: {} (seq 1..={}), checkpoints: ",
            lines.len(),
            lines.len()
        );
        assert!(out.contains(&block), "{id}: {out}");
    }
    assert!(out.contains("OK: 2 replica(s), every stream verified"), "{out}");

    // A replica's key missing: its checkpoints cannot be verified.
    let (code, out) = cli(&["audit", "verify", "--redis", &url, "--key", &a.key()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("replica gw-b (stream penghubung:audit:gw-b): FAILED:") && out.contains("--key"), "{out}");
    assert!(out.contains("replica gw-a (stream penghubung:audit:gw-a): verified"), "{out}");

    // The usage report over both replicas: their exchanges summed.
    let (code, out) =
        cli(&["report", "usage", "--redis", &url, "--key", &a.key(), "--key", &b.key(), "--format", "json"]);
    assert_eq!(code, Some(0), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verification"]["verified"], true, "{report}");
    assert_eq!(report["verification"]["segments"], 2, "{report}");
    let both = exchanges(&lines_a) + exchanges(&lines_b);
    assert!(both >= 75, "{both}");
    assert_eq!(report["total"]["requests"], both, "{}", report["total"]);
    let provider = report["providers"].as_array().unwrap().iter().find(|p| p["opd"] == "disdukcapil").unwrap();
    assert_eq!(provider["requests"], 75, "{provider}");

    // A forged copy of gw-a's stream with one record's content changed (its hash left as it was).
    copy_stream(&redis, "penghubung:audit:gw-a", "penghubung:audit:gw-forged", |seq, line| {
        if seq != 10 {
            return Some(line.to_string());
        }
        let forged = line.replacen("\"time\":\"2", "\"time\":\"1", 1);
        assert_ne!(forged, line);
        Some(forged)
    });
    // gw-b's stream with records 5..=7 deleted.
    copy_stream(&redis, "penghubung:audit:gw-b", "penghubung:audit:gw-gap", |seq, line| {
        (!(5..=7).contains(&seq)).then(|| line.to_string())
    });
    let (code, out) = cli(&["audit", "verify", "--redis", &url, "--key", &a.key(), "--key", &b.key()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("replica gw-forged (stream penghubung:audit:gw-forged): FAILED: penghubung:audit:gw-forged entry 10-0 (seq 10): modified"),
        "{out}"
    );
    assert!(
        out.contains(
            "replica gw-gap (stream penghubung:audit:gw-gap): FAILED: records missing between entries (seq 5..=7)"
        ),
        "{out}"
    );
    assert!(out.contains("  gap: seq 5..=7 missing between entries"), "{out}");
    assert!(out.contains("replica gw-a (stream penghubung:audit:gw-a): verified"), "{out}");
    assert!(out.contains("FAILED: 2 of 4 replica(s) did not verify"), "{out}");

    // The report flags both and counts only the verified replicas.
    let (code, out) =
        cli(&["report", "usage", "--redis", &url, "--key", &a.key(), "--key", &b.key(), "--format", "json"]);
    assert_eq!(code, Some(3), "{out}");
    let json = &out[..out.rfind('}').unwrap() + 1];
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(report["verification"]["verified"], false);
    let flagged: Vec<&str> =
        report["verification"]["flagged"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(flagged, ["penghubung:audit:gw-forged", "penghubung:audit:gw-gap"]);
    assert_eq!(report["total"]["requests"], both);

    // Only one replica, by the stream pattern.
    let (code, out) = cli(&[
        "audit",
        "verify",
        "--redis",
        &url,
        "--key",
        &b.key(),
        "--stream-pattern",
        "penghubung:audit:{gateway_id}-b",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("replica gw (stream penghubung:audit:gw-b): verified"), "{out}");

    // No stream at all under a pattern: a failure, said.
    let (code, out) =
        cli(&["audit", "verify", "--redis", &url, "--key", &a.key(), "--stream-pattern", "x:{gateway_id}"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no stream matches `x:{gateway_id}`"), "{out}");
}
