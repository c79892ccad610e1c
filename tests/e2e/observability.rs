//! The ops listener: a real Prometheus scraping `/metrics` and answering for the traffic the test sent, metric
//! labels that never hold what a caller sent, the probes without a client certificate, readiness following the
//! audit disk and a required Redis, and the example alert rules under `promtool`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http::Request;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::prometheus::{promtool_check_rules, try_get, Prometheus};
use penghubung_tests::redis::RedisServer;
use penghubung_tests::{docs, empty, http1_client, raw_exchange, send, write_setup, Upstream};

/// The ops listener on a free port.
const OPS: &str = "[ops]\nlisten = \"127.0.0.1:0\"\n";

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

async fn start(config: &Path) -> penghubung::Gateway {
    let config = penghubung::Config::load(config).unwrap_or_else(|p| panic!("config: {p:?}"));
    penghubung::Gateway::start(config).await.unwrap_or_else(|e| panic!("start: {e}"))
}

fn ops_url(gateway: &penghubung::Gateway, path: &str) -> String {
    format!("http://{}{path}", gateway.ops_addr().expect("[ops] is on"))
}

/// `GET` on the ops listener: status and body.
async fn ops_get(gateway: &penghubung::Gateway, path: &str) -> (u16, String) {
    try_get(&ops_url(gateway, path)).await.expect("the ops listener answers")
}

/// Polls `/health/ready` until its status is `status` (at most 20 s); returns the body.
async fn wait_ready(gateway: &penghubung::Gateway, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (now, body) = ops_get(gateway, "/health/ready").await;
        if now == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/health/ready stayed {now} (wanted {status}): {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_counters_of_the_tests_traffic() {
    let upstream = Upstream::text("{\"ok\":true}").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let documents = [
        docs::opd("dinkes"),
        docs::opd("dinsos"),
        docs::service("dinkes", "rm", &[upstream.url()], "", ""),
        docs::service("dinsos", "bansos", &[upstream.url()], "", ""),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("simpus-rm", "dinkes/simpus", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, OPS);
    let gateway = start(&config).await;
    let url = format!("https://{}", gateway.local_addrs()[0]);
    let client = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinkes", "simpus"))));
    for i in 0..5 {
        let r = send(&client, Request::get(format!("{url}/dinkes/rm/v1/pasien/{i}")).body(empty()).unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for _ in 0..3 {
        let r = send(&client, Request::get(format!("{url}/dinsos/bansos/v1/x")).body(empty()).unwrap()).await;
        assert_eq!(r.status, 403, "no grant: {}", r.text());
    }
    // A handshake without a certificate is refused and counted by its reason.
    let anonymous = https_client(client_config(&pki.ca_pem(), None));
    let refused = anonymous.request(Request::get(format!("{url}/dinkes/rm/v1/x")).body(empty()).unwrap()).await;
    assert!(refused.is_err(), "no certificate, no handshake");

    // The probes and the scrape need no client certificate: plain HTTP on the ops listener.
    assert_eq!(ops_get(&gateway, "/health/live").await.0, 200);
    assert_eq!(ops_get(&gateway, "/health/ready").await, (200, "{\"status\":\"ready\"}\n".to_string()));

    let prometheus = Prometheus::scraping(gateway.ops_addr().unwrap()).await;
    prometheus
        .wait_for(
            r#"sum(penghubung_requests_total{service="dinkes/rm/v1",caller_opd="dinkes",provider_opd="dinkes",status_class="2xx"})"#,
            5.0,
        )
        .await;
    let denied = prometheus.query(r#"penghubung_denials_total{service="dinsos/bansos/v1",caller_opd="dinkes"}"#).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].1, 3.0, "{denied:?}");
    let code = denied[0].0["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("policy."), "a policy code: {code}");
    prometheus
        .wait_for(r#"penghubung_request_duration_seconds_count{service="dinkes/rm/v1",status_class="2xx"}"#, 5.0)
        .await;
    prometheus.wait_for(r#"penghubung_upstream_duration_seconds_count{service="dinkes/rm/v1"}"#, 5.0).await;
    prometheus.wait_for(r#"penghubung_tls_handshakes_total{outcome="refused",reason="tls.no_certificate"}"#, 1.0).await;
    prometheus
        .wait_for(r#"count(penghubung_certificate_expiry_seconds{kind="client",name="dinkes/simpus"} > 0)"#, 1.0)
        .await;
    prometheus.wait_for(r#"count(penghubung_certificate_expiry_seconds{kind="server"} > 86400)"#, 1.0).await;
    prometheus.wait_for(r#"count(penghubung_certificate_expiry_seconds{kind="client_ca"} > 86400)"#, 1.0).await;
    prometheus.wait_for("penghubung_snapshot_generation", 1.0).await;
    prometheus.wait_for("penghubung_ready", 1.0).await;

    // OpenMetrics when asked for.
    let request = Request::get(ops_url(&gateway, "/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        .body(empty())
        .unwrap();
    let open = send(&http1_client(), request).await;
    assert!(open.headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(open.text().ends_with("# EOF\n"), "{}", open.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_labels_never_hold_what_the_caller_sent() {
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [docs::opd("dinkes"), docs::service("dinkes", "rm", &[upstream.url()], "", "")];
    let config = write_setup(dir.path(), &documents, OPS);
    let gateway = start(&config).await;
    let addr: SocketAddr = gateway.local_addrs()[0];
    let marker = "JAHAT";
    let nik = "1807015508900002";
    let hostile: Vec<String> = vec![
        format!("GET /dinkes/rm/v1/{marker}/{nik}?nik={nik}&{marker}=1 HTTP/1.1\r\nHost: a\r\nX-Request-Id: {marker}-id\r\nX-Penghubung-Purpose: {marker}\r\n\r\n"),
        format!("GET /{marker}/{marker}/v1/x HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /dinkes/{marker}/v9/{nik} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("{marker} /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /dinkes/rm/v1/%0a{marker}%22%7d HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /dinkes/rm/v1/../../{marker} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /_penghubung/{marker} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /_penghubung/services/{marker} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: {marker}\r\nHost: {marker}2\r\n\r\n"),
        format!("GET http://{marker}/dinkes/rm/v1/x HTTP/1.1\r\nHost: {marker}\r\n\r\n"),
        format!("GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: {marker}\r\n\r\n"),
        format!("GET /dinkes/rm/v1/{} HTTP/1.1\r\nHost: a\r\n\r\n", marker.repeat(3000)),
        format!("GET /dinkes/rm/v1/x HTTP/1.1\r\nHost: a\r\nX-{marker}: {}\r\n\r\n", marker.repeat(20_000)),
    ];
    for (i, request) in hostile.iter().enumerate() {
        let answer = raw_exchange(addr, request.as_bytes()).await;
        assert!(!answer.is_empty() || i >= 10, "request {i} got an answer: {request:?}");
    }
    // And random bytes in the request line.
    for _ in 0..50 {
        let path: String = (0..fastrand::usize(1..40)).map(|_| fastrand::char('!'..='~')).collect();
        let request = format!("GET /dinkes/rm/v1/{path}{marker} HTTP/1.1\r\nHost: a\r\nX-Request-Id: {path}\r\n\r\n");
        raw_exchange(addr, request.as_bytes()).await;
    }
    let (status, text) = ops_get(&gateway, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("penghubung_requests_total{service=\"dinkes/rm/v1\""), "traffic was counted:\n{text}");
    assert!(!text.contains(marker) && !text.contains(nik), "a caller's string in the metrics:\n{text}");
    // Every label value is one of the snapshot's ids, a class, a code, a kind or a bucket bound.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else { continue };
        let labels = labels.rsplit_once('}').unwrap().0;
        for pair in labels.split("\",").map(|p| p.trim_end_matches('"')) {
            let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
            let allowed = value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./+".contains(&b))
                || (key == "le" && value == "+Inf")
                || (key == "name" && value.bytes().all(|b| b.is_ascii_alphanumeric() || b" -_./".contains(&b)));
            assert!(allowed, "label {key}={value:?} in {line}");
            assert!(value.len() <= 64, "label {key} too long in {line}");
        }
    }
}

/// Unmounts a tmpfs when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        // Lazily: the audit writer's thread may still hold its segment open for a moment.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_while_the_audit_disk_is_full_and_true_again_after() {
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("audit");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "this test mounts a small tmpfs for the audit trail (run the suite as root, as CI does)");
    let _unmount = Mounted(mount.clone());
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"sync\"\n"),
    ];
    let config = write_setup(
        dir.path(),
        &documents,
        &format!(
            "[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 50\ncheckpoint_interval = \"1s\"\n\n{OPS}"
        ),
    );
    let gateway = start(&config).await;
    let url = format!("http://{}/disdukcapil/kependudukan/v1/x", gateway.local_addrs()[0]);
    assert_eq!(wait_ready(&gateway, 200).await, "{\"status\":\"ready\"}\n");

    // Fill the file system, then send sync requests until the writer has hit the full disk.
    let mut filler = std::fs::File::create(mount.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    let client = http1_client();
    for _ in 0..60 {
        let request = Request::get(&url).body(empty()).unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(3), client.request(request)).await;
        if matches!(answered, Ok(Ok(ref r)) if r.status() == 503) {
            break;
        }
    }
    let body = wait_ready(&gateway, 503).await;
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], "not_ready");
    assert_eq!(problem["not_ready"][0]["check"], "audit", "{body}");
    let (_, metrics) = ops_get(&gateway, "/metrics").await;
    assert!(metrics.contains("penghubung_audit_writable 0"), "{metrics}");
    assert!(metrics.contains("penghubung_ready 0"), "{metrics}");

    // Space again: the writer's retry succeeds and the gateway is ready.
    std::fs::remove_file(mount.join("filler")).unwrap();
    wait_ready(&gateway, 200).await;
    let (_, metrics) = ops_get(&gateway, "/metrics").await;
    assert!(metrics.contains("penghubung_audit_writable 1"), "{metrics}");
    let written = metrics
        .lines()
        .find_map(|l| l.strip_prefix("penghubung_audit_records_written_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(written > 0, "{metrics}");
    assert!(metrics.contains("penghubung_audit_fsync_duration_seconds_count"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_while_a_required_redis_is_down_and_true_again_after() {
    let mut redis = RedisServer::start();
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [docs::opd("dinkes"), docs::service("dinkes", "rm", &[upstream.url()], "", "")];
    let extra = format!(
        "{}\n{OPS}",
        redis.config_section("on_unavailable = \"fail_closed\"\nmax_reconnect_backoff = \"200ms\"")
    );
    let config = write_setup(dir.path(), &documents, &extra);
    let gateway = start(&config).await;
    wait_ready(&gateway, 200).await;

    redis.kill();
    let body = wait_ready(&gateway, 503).await;
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["not_ready"][0]["check"], "redis", "{body}");
    let (_, metrics) = ops_get(&gateway, "/metrics").await;
    assert!(metrics.contains("penghubung_redis_up 0"), "{metrics}");
    assert!(metrics.contains("penghubung_redis_fallback_switches_total 1"), "{metrics}");

    redis.restart();
    wait_ready(&gateway, 200).await;
    let (_, metrics) = ops_get(&gateway, "/metrics").await;
    assert!(metrics.contains("penghubung_redis_up 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_listener_answers_only_its_paths_and_metrics_can_be_off() {
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [docs::opd("dinkes"), docs::service("dinkes", "rm", &[upstream.url()], "", "")];
    let config = write_setup(dir.path(), &documents, "[ops]\nlisten = \"127.0.0.1:0\"\nmetrics = false\n");
    let gateway = start(&config).await;
    assert!(gateway.metrics().is_none());
    let (status, body) = ops_get(&gateway, "/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("metrics = false"), "{body}");
    assert_eq!(ops_get(&gateway, "/health/live").await.0, 200);
    assert_eq!(ops_get(&gateway, "/dinkes/rm/v1/x").await.0, 404, "the ops listener forwards nothing");
    assert_eq!(upstream.hits(), 0);
    let post = send(&http1_client(), Request::post(ops_url(&gateway, "/health/ready")).body(empty()).unwrap()).await;
    assert_eq!(post.status, 405);
    // Shutting down: not ready any more while draining.
    let ops = gateway.ops_addr().unwrap();
    let shutdown = tokio::spawn(gateway.shutdown());
    let _ = shutdown.await;
    assert!(try_get(&format!("http://{ops}/health/ready")).await.is_none_or(|(status, _)| status == 503));
}

#[test]
fn the_example_alert_rules_pass_promtool() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yml");
    let (ok, text) = promtool_check_rules(&rules);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    let yaml = std::fs::read_to_string(&rules).unwrap();
    for alert in [
        "PenghubungCertificateExpiresSoon",
        "PenghubungHighErrorRatio",
        "PenghubungAuditUnavailable",
        "PenghubungReloadFailing",
        "PenghubungRedisFallback",
        "PenghubungStoreUnreachable",
    ] {
        assert!(yaml.contains(&format!("alert: {alert}")), "{alert} is in the example rules");
    }
    assert!(yaml.contains("30 * 24 * 3600"), "certificates expiring within 30 days");
}
