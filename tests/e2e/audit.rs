//! The audit trail end to end: one record per exchange with digests and keyed NIK hashes (found in the path and
//! in a body whose NIK is split across chunks), lookup by NIK without the log holding one, change records on
//! reload, `sync` records surviving `kill -9` under load, a full disk failing `sync` services closed with
//! nothing lost, and shipping to a Redis Stream (every record once, in order, also across gateway restarts and
//! Redis outages).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use penghubung::audit::chain::sha256_hex;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::redis::{RedisServer, StreamEntry};
use penghubung_tests::{
    docs, empty, full, http1_client, penghubung_binary, send, write_setup, GatewayProcess, TestBody, Upstream,
};

/// `[audit]` on, keys and secret generated in the test directory.
const AUDIT_ON: &str =
    "[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 50\ncheckpoint_interval = \"1s\"\n";

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

/// A body sent in exactly these frames.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn chunks(parts: &[&'static str]) -> TestBody {
    Chunks(parts.iter().map(|p| Bytes::from_static(p.as_bytes())).collect()).map_err(|never| match never {}).boxed()
}

/// `penghubung audit …`: exit code and stdout.
fn audit_cli(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(penghubung_binary()).arg("audit").args(args).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

fn verify(dir: &Path) -> (Option<i32>, String) {
    let log = dir.join("audit");
    let key = dir.join("pki/audit-signing.pub");
    audit_cli(&["verify", log.to_str().unwrap(), "--key", key.to_str().unwrap()])
}

/// Every whole record of a log (a torn last line is skipped).
fn records(log: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect::<Vec<_>>()
        })
        .collect()
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nik_lookup_finds_the_exchanges_and_the_log_never_holds_a_nik() {
    // The upstream reads the whole body (so the gateway sees its end) and answers with JSON.
    let upstream = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut response = http::Response::new(full(format!("{{\"diterima\":{}}}", body.len())));
        response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
        response
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let operations = format!(
        "{}{}",
        docs::operation("ambil-penduduk", "GET", "/penduduk/{nik}"),
        docs::operation("verifikasi-nik", "POST", "/verifikasi")
    );
    let service = docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", &operations);
    let documents = [
        docs::opd("disdukcapil"),
        docs::opd("dinsos"),
        docs::opd("dinkes"),
        service.clone(),
        docs::client("dinsos", "sikasos", &spiffe("dinsos", "sikasos"), true),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("sikasos", "dinsos/sikasos", "disdukcapil/kependudukan/v1", &["*"]),
        docs::grant("simpus", "dinkes/simpus", "disdukcapil/kependudukan/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, AUDIT_ON);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let url = format!("https://{}/disdukcapil/kependudukan/v1", gateway.local_addrs()[0]);
    let sikasos = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinsos", "sikasos"))));
    let simpus = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinkes", "simpus"))));

    // 1. The NIK in the path (and again in the query).
    let request = Request::get(format!("{url}/penduduk/1807015508900002?nik=1807015508900002"))
        .header("x-penghubung-purpose", "penyaluran-bansos")
        .header("x-request-id", "lihat-sikasos")
        .body(empty())
        .unwrap();
    assert_eq!(send(&sikasos, request).await.status, 200);
    // 2. The NIK in a body, split across two chunks.
    let body = "{\"nik\":\"1807015508900002\",\"nama\":\"Siti Aminah\"}";
    let request = Request::post(format!("{url}/verifikasi"))
        .header("x-penghubung-purpose", "pelayanan-kesehatan")
        .header("x-request-id", "verifikasi-simpus")
        .body(chunks(&["{\"nik\":\"18070155", "08900002\",\"nama\":\"Siti Aminah\"}"]))
        .unwrap();
    let answer = send(&simpus, request).await;
    assert_eq!(answer.status, 200);
    // 3. Another NIK; 4. a number that is not a NIK (17 digits); 5. a denial (no such operation).
    let request = Request::post(format!("{url}/verifikasi"))
        .header("x-request-id", "lain")
        .body(full("{\"nik\":\"3201010101010001\"}"))
        .unwrap();
    assert_eq!(send(&sikasos, request).await.status, 200);
    let request = Request::post(format!("{url}/verifikasi"))
        .header("x-request-id", "bukan-nik")
        .body(full("{\"nomor\":\"18070155089000021\"}"))
        .unwrap();
    assert_eq!(send(&sikasos, request).await.status, 200);
    let request = Request::get(format!("{url}/tidak-ada/1807015508900002"))
        .header("x-request-id", "ditolak")
        .body(empty())
        .unwrap();
    assert_eq!(send(&sikasos, request).await.status, 404);

    // A change of a document is recorded with the digests of its text before and after.
    let (key, before) = service;
    let after = before.replace("title = \"kependudukan\"", "title = \"Data kependudukan\"");
    assert_ne!(before, after);
    let store = dir.path().join("policies").join(&key);
    std::fs::write(store.with_extension("tmp-write"), &after).unwrap();
    std::fs::rename(store.with_extension("tmp-write"), &store).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.snapshot().generation < 2 {
        assert!(Instant::now() < deadline, "no reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gateway.auditor().unwrap().checkpoint().await);

    let log = dir.path().join("audit");
    let secret = dir.path().join("pki/audit-nik.secret");
    let search = |extra: &[&str]| {
        let mut args = vec!["search", log.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out) = audit_cli(&args);
        assert_eq!(code, Some(0), "{out}");
        lines(&out)
    };
    let found = search(&["--nik", "1807015508900002", "--secret-file", secret.to_str().unwrap()]);
    let ids: HashSet<&str> = found.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from(["lihat-sikasos", "verifikasi-simpus", "ditolak"]), "{found:#?}");
    let by_simpus = found.iter().find(|r| r["request_id"] == "verifikasi-simpus").unwrap();
    assert_eq!(by_simpus["client"], "dinkes/simpus");
    assert_eq!(by_simpus["caller_opd"], "dinkes");
    assert_eq!(by_simpus["provider_opd"], by_simpus["service"].as_str().unwrap().split('/').next().unwrap());
    assert_eq!(by_simpus["purpose"], "pelayanan-kesehatan");
    assert_eq!(by_simpus["operation"], "verifikasi-nik");
    assert_eq!(by_simpus["path"], "/verifikasi");
    assert_eq!(by_simpus["decision"], "allow");
    assert_eq!(by_simpus["bytes_in"], body.len());
    assert_eq!(by_simpus["request_sha256"], sha256_hex(body.as_bytes()), "digest of the body as streamed");
    assert_eq!(by_simpus["response_sha256"], sha256_hex(&answer.body));
    assert_eq!(by_simpus["bytes_out"], answer.body.len());
    assert_eq!(by_simpus["upstream"], upstream.url());
    assert_eq!(by_simpus["complete"], true);
    assert_eq!(by_simpus["trace_id"].as_str().unwrap().len(), 32);
    let by_sikasos = found.iter().find(|r| r["request_id"] == "lihat-sikasos").unwrap();
    assert_eq!(
        (&by_sikasos["client"], &by_sikasos["purpose"]),
        (&"dinsos/sikasos".into(), &"penyaluran-bansos".into())
    );
    assert_eq!(by_sikasos["path"], "/penduduk/{nik}", "the template, never the raw path");
    assert_eq!(by_sikasos["nik"].as_array().unwrap().len(), 1, "path and query: one NIK");
    let denied = found.iter().find(|r| r["request_id"] == "ditolak").unwrap();
    assert_eq!((&denied["decision"], &denied["code"]), (&"error".into(), &"route.not_found".into()));
    // An unknown operation of a known service: the service's OPD is the provider.
    assert_eq!((&denied["caller_opd"], &denied["provider_opd"]), (&"dinsos".into(), &"disdukcapil".into()));
    let other = search(&["--nik", "3201010101010001", "--secret-file", secret.to_str().unwrap()]);
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["request_id"], "lain");
    let not_nik = search(&["--nik", "8070155089000021", "--secret-file", secret.to_str().unwrap()]);
    assert!(not_nik.is_empty(), "{not_nik:?}");
    assert_eq!(search(&["--client", "dinsos/sikasos"]).len(), 4);
    assert_eq!(search(&["--client", "dinsos/sikasos", "--code", "route.not_found"]).len(), 1);
    assert_eq!(search(&["--service", "disdukcapil/kependudukan", "--code", "allow"]).len(), 4);
    assert!(search(&["--until", "2000-01-01"]).is_empty());
    assert_eq!(search(&["--since", "2000-01-01", "--client", "dinkes/simpus"]).len(), 1);

    // The change record.
    let changes = search(&["--changes"]);
    let changed = changes.iter().find(|r| r["action"] == "changed").unwrap_or_else(|| panic!("{changes:#?}"));
    assert_eq!(changed["document"], key);
    assert_eq!(changed["who"], "hand-edit", "no operation recorded this change: a hand edit");
    assert_eq!(changed["before"], sha256_hex(before.as_bytes()));
    assert_eq!(changed["after"], sha256_hex(after.as_bytes()));
    // The store as written, with the test operators `write_config` adds.
    let stored = documents.len() + docs::operators("x").len();
    assert_eq!(changes.iter().filter(|r| r["action"] == "loaded").count(), stored);

    // No NIK in clear anywhere in the log directory.
    for entry in std::fs::read_dir(&log).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("1807015508900002") && !text.contains("3201010101010001"));
    }
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");
    // Verifying with another key (made by `audit keygen`) fails on the first checkpoint.
    let other = dir.path().join("lain");
    let (code, out) = audit_cli(&["keygen", "--out", other.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(other.join("audit-signing.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(audit_cli(&["keygen", "--out", other.to_str().unwrap()]).0, Some(1), "never overwrites a key");
    let other_key = other.join("audit-signing.pub");
    let (code, out) = audit_cli(&["verify", log.to_str().unwrap(), "--key", other_key.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED") && out.contains("forged"), "{out}");
}

/// Sends one request; `Some(status)` only when the whole response arrived.
async fn complete_request(
    client: &hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, TestBody>,
    url: &str,
    id: &str,
) -> Option<u16> {
    let request = Request::get(url).header("x-request-id", id).body(empty()).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    tokio::time::timeout(Duration::from_secs(5), response.into_body().collect()).await.ok()?.ok()?;
    Some(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_records_of_every_completed_response_survive_kill_9_under_load() {
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"sync\"\n"),
    ];
    let config = write_setup(dir.path(), &documents, AUDIT_ON);
    let mut gateway = GatewayProcess::start(&config);
    let url = format!("{}/disdukcapil/kependudukan/v1/penduduk/1", gateway.url);
    let completed = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (url, completed, stop) = (url.clone(), Arc::clone(&completed), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let client = http1_client();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("k{t}-{i}");
                i += 1;
                if complete_request(&client, &url, &id).await == Some(200) {
                    completed.lock().unwrap().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateway.child.kill().unwrap(); // SIGKILL, in the middle of the load
    let _ = gateway.child.wait();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let completed = completed.lock().unwrap().clone();
    assert!(completed.len() > 50, "the load ran: {} requests completed", completed.len());
    let log = dir.path().join("audit");
    let recorded: HashSet<String> =
        records(&log).iter().filter_map(|r| r["request_id"].as_str().map(str::to_string)).collect();
    let missing: Vec<&String> = completed.iter().filter(|id| !recorded.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} completed responses have no record: {missing:?}",
        missing.len(),
        completed.len()
    );
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "the chain verifies after kill -9 (an incomplete tail is tolerated): {out}");

    // A restart resumes the chain (cutting a torn tail off), and the log still verifies.
    let gateway = GatewayProcess::start(&config);
    let url = format!("{}/disdukcapil/kependudukan/v1/penduduk/1", gateway.url);
    assert_eq!(complete_request(&http1_client(), &url, "setelah-restart").await, Some(200));
    gateway.signal("TERM");
    let mut gateway = gateway;
    let status = tokio::task::spawn_blocking(move || gateway.child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("OK: 2 segments"), "{out}");
    assert!(!out.contains("not yet signed"), "a clean shutdown signs everything: {out}");
    let last = records(&log);
    assert!(last.iter().any(|r| r["request_id"] == "setelah-restart"));
    assert_eq!(last.last().unwrap()["kind"], "checkpoint");
}

/// Unmounts a tmpfs when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_sync_services_closed_and_loses_no_record() {
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("audit");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the full-disk test did not run");
        return;
    }
    let _unmount = Mounted(mount.clone());
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"sync\"\n"),
        docs::service("disdukcapil", "statistik", &[upstream.url()], "", "audit = \"async\"\n"),
    ];
    let config = write_setup(dir.path(), &documents, AUDIT_ON);
    let gateway = GatewayProcess::start(&config);
    let client = http1_client();
    let sync_url = format!("{}/disdukcapil/kependudukan/v1/x", gateway.url);
    let async_url = format!("{}/disdukcapil/statistik/v1/x", gateway.url);
    let mut sent = vec!["sebelum".to_string()];
    assert_eq!(complete_request(&client, &sync_url, "sebelum").await, Some(200));

    // Fill the file system.
    let mut filler = std::fs::File::create(mount.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);

    // A sync request either completes (its record still fitted), sees its response fail (its record could not
    // be made durable), or, once the gateway knows, gets a 503 before anything is forwarded.
    let mut broken = None;
    let mut refused = None;
    for i in 0..60 {
        let id = format!("penuh-{i}");
        sent.push(id.clone());
        let request = Request::get(&sync_url).header("x-request-id", &id).body(empty()).unwrap();
        let outcome = match client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.into_body().collect().await.ok().map(|b| b.to_bytes()))
            }
            Err(_) => (0, None),
        };
        match outcome {
            // tmpfs allocates pages: records still fit in the segment's last page until it is full.
            (200, Some(_)) => continue,
            (503, Some(body)) => {
                refused = Some(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
                break;
            }
            _ => {
                // The response was cut off: its record could not be made durable.
                broken.get_or_insert((id, upstream.hits()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let refused = refused.expect("sync requests are refused with 503 while the audit log cannot be written");
    assert_eq!(refused["code"], "audit.unavailable");
    if let Some((broken_id, hits_then)) = broken {
        // The response whose record hit the full disk did not complete, and nothing was forwarded after it.
        assert_eq!(upstream.hits(), hits_then, "after {broken_id} nothing more was forwarded to the sync service");
    }
    // Refused before forwarding: the upstream sees none of these.
    let hits_then = upstream.hits();
    for i in 0..3 {
        let id = format!("ditolak-{i}");
        sent.push(id.clone());
        assert_eq!(complete_request(&client, &sync_url, &id).await, Some(503));
    }
    assert_eq!(upstream.hits(), hits_then);
    // An async service keeps answering (its record waits in the queue).
    sent.push("async-penuh".into());
    assert_eq!(complete_request(&client, &async_url, "async-penuh").await, Some(200));
    assert!(gateway.log().contains("AUDIT LOG UNAVAILABLE"), "said loudly:\n{}", gateway.log());

    // Space again: the held records are written and sync requests go through again.
    std::fs::remove_file(mount.join("filler")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let id = format!("pulih-{}", sent.len());
        sent.push(id.clone());
        if complete_request(&client, &sync_url, &id).await == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not recover:\n{}", gateway.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.signal("TERM");
    let mut gateway = gateway;
    let status = tokio::task::spawn_blocking(move || gateway.child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");
    let all = records(&mount);
    let recorded: HashSet<&str> = all.iter().filter_map(|r| r["request_id"].as_str()).collect();
    let lost: Vec<&String> = sent.iter().filter(|id| !recorded.contains(id.as_str())).collect();
    assert!(lost.is_empty(), "every request has its record: {lost:?}");
    assert!(all.iter().any(|r| r["code"] == "audit.unavailable" && r["decision"] == "deny"));
}

#[tokio::test]
async fn a_sync_response_is_released_only_with_its_record_on_disk_bodies_or_not() {
    let upstream = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let mut response = http::Response::new(full(if req.method() == http::Method::GET { "isi" } else { "" }));
        if req.method() == http::Method::DELETE {
            *response.status_mut() = http::StatusCode::NO_CONTENT;
        }
        response
    })
    .await;
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"sync\"\n"),
    ];
    // A long checkpoint interval: nothing but the sync path itself writes the records out.
    let config = AUDIT_ON.replace("\"1s\"", "\"1h\"");
    let gateway = penghubung_tests::TestGateway::start(&documents, &config).await;
    let log = gateway.dir.path().join("audit");
    let client = http1_client();
    for (method, id) in [("GET", "dengan-isi"), ("DELETE", "tanpa-isi"), ("HEAD", "kepala")] {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}/disdukcapil/kependudukan/v1/x", gateway.url))
            .header("x-request-id", id)
            .body(empty())
            .unwrap();
        let answer = send(&client, request).await;
        assert!(answer.status.is_success(), "{method}: {}", answer.status);
        // Read the files at once: the record must already be there.
        let found = records(&log).into_iter().find(|r| r["request_id"] == id);
        let record = found.unwrap_or_else(|| panic!("{method}: response released before its record was on disk"));
        assert_eq!(record["durability"], "sync");
        assert_eq!(record["status"], answer.status.as_u16());
    }
}

/// Every line of the segment files, in order (a torn last line is left out).
fn file_lines(log: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        lines.extend(text.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(|l| l.trim_end().to_string()));
    }
    lines
}

/// The stream holds exactly the lines of the files: one entry per record, in order, id `{seq}-0`, fields `seq`,
/// `hash` and `line` (the exact line), no gap, no duplicate.
fn assert_stream_is_the_files(stream: &[StreamEntry], lines: &[String]) {
    let ids: Vec<&str> = stream.iter().map(|(id, _)| id.as_str()).collect();
    let expected: Vec<String> = (1..=lines.len()).map(|seq| format!("{seq}-0")).collect();
    assert_eq!(ids, expected, "ids are the seqs 1..={}, each once", lines.len());
    for ((id, fields), line) in stream.iter().zip(lines) {
        let seq = id.trim_end_matches("-0");
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["seq", "hash", "line"], "{id}");
        assert_eq!(fields[0].1, seq);
        assert_eq!(&fields[2].1, line, "entry {id} is the exact line");
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["seq"].to_string(), seq);
        assert_eq!(record["hash"], fields[1].1.as_str());
    }
}

/// The `hash` member of a record line.
fn sha256_of_line(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["hash"].as_str().unwrap().to_string()
}

/// The gateway's `audit` health, polled until `done` holds (10 s at most).
async fn wait_audit(url: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let client = http1_client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = Request::get(format!("{url}/_penghubung/health")).body(empty()).unwrap();
        if let Ok(answer) = tokio::time::timeout(Duration::from_secs(2), send(&client, request)).await {
            let audit = answer.json()["audit"].clone();
            if done(&audit) {
                return audit;
            }
            assert!(Instant::now() < deadline, "{what}: {audit}");
        }
        assert!(Instant::now() < deadline, "{what}: no health answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything written is in the stream (and Redis is up).
fn caught_up(audit: &serde_json::Value) -> bool {
    audit["shipping"]["redis"] == "up" && audit["shipping"]["shipped_seq"] == audit["written_seq"]
}

/// `n` requests from 8 tasks; the number that completed with 200.
async fn requests(url: &str, n: usize) -> usize {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let client = http1_client();
            let mut ok = 0;
            for i in (t..n).step_by(8) {
                ok += usize::from(complete_request(&client, &url, &format!("r{i}")).await == Some(200));
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_shipped_to_a_redis_stream_once_in_order_also_across_restarts() {
    let redis = RedisServer::start();
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"async\"\n"),
    ];
    // Segments of 8 KiB: the shipper follows the chain across rotations.
    let config = format!(
        "{AUDIT_ON}segment_max_size = \"8KiB\"\ngateway_id = \"gw-a\"\n\n{}",
        redis.config_section("timeout = \"500ms\"\n")
    );
    let config = write_setup(dir.path(), &documents, &config);
    let log = dir.path().join("audit");
    let key = "penghubung:audit:gw-a";
    let start = || async { penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap() };

    let gateway = start().await;
    let url = format!("http://{}", gateway.local_addrs()[0]);
    let service = format!("{url}/disdukcapil/kependudukan/v1/penduduk/1");
    assert_eq!(requests(&service, 120).await, 120);
    let audit =
        wait_audit(&url, "shipping catches up", |a| caught_up(a) && a["written_seq"].as_u64() > Some(120)).await;
    assert_eq!(audit["shipping"]["stream"], key);
    // A shutdown seals the log with a checkpoint and ships it before it returns.
    gateway.shutdown().await;
    let lines = file_lines(&log);
    assert!(lines.len() > 120 && std::fs::read_dir(&log).unwrap().count() > 2, "rotated: {} lines", lines.len());
    assert_stream_is_the_files(&redis.stream(key), &lines);
    assert!(lines.last().unwrap().contains("\"kind\":\"checkpoint\""));

    // A restart continues after the stream's last entry: nothing shipped twice, nothing skipped.
    let gateway = start().await;
    let url = format!("http://{}", gateway.local_addrs()[0]);
    assert_eq!(requests(&format!("{url}/disdukcapil/kependudukan/v1/penduduk/2"), 40).await, 40);
    wait_audit(&url, "shipping catches up after a restart", |a| {
        caught_up(a) && a["written_seq"].as_u64() > Some(lines.len() as u64 + 40)
    })
    .await;
    gateway.shutdown().await;
    let lines = file_lines(&log);
    assert_stream_is_the_files(&redis.stream(key), &lines);

    // The stream lost (deleted by hand): everything is shipped again from the local files.
    assert!(redis.command(&format!("DEL {key}")).starts_with(":1"));
    let gateway = start().await;
    let url = format!("http://{}", gateway.local_addrs()[0]);
    wait_audit(&url, "everything is shipped again", |a| {
        caught_up(a) && a["written_seq"].as_u64() > Some(lines.len() as u64)
    })
    .await;
    gateway.shutdown().await;
    let lines = file_lines(&log);
    assert_stream_is_the_files(&redis.stream(key), &lines);
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");

    // A stream that holds another chain is never written to: a conflict, reported in the health.
    let last = lines.len();
    redis.command(&format!("DEL {key}"));
    redis.command(&format!("XADD {key} {last}-0 seq {last} hash {} line x", "0".repeat(64)));
    let gateway = start().await;
    let url = format!("http://{}", gateway.local_addrs()[0]);
    wait_audit(&url, "a foreign chain is a conflict", |a| a["shipping"]["redis"] == "conflict").await;
    gateway.shutdown().await;
    assert_eq!(redis.stream(key).len(), 1, "nothing shipped into a foreign chain");

    // A collector that deletes what it collected (`XTRIM … MINID`, here everything): shipping continues after
    // the stream's last id, nothing is shipped again.
    redis.command(&format!("DEL {key}"));
    let first =
        redis.command(&format!("XADD {key} {last}-0 seq {last} hash {} line x", sha256_of_line(&lines[last - 1])));
    assert!(first.contains(&format!("{last}-0")), "{first}");
    redis.command(&format!("XTRIM {key} MAXLEN 0"));
    let gateway = start().await;
    let url = format!("http://{}", gateway.local_addrs()[0]);
    wait_audit(&url, "shipping continues after a trimmed stream", |a| {
        caught_up(a) && a["written_seq"].as_u64() > Some(last as u64)
    })
    .await;
    gateway.shutdown().await;
    let lines = file_lines(&log);
    let ids: Vec<String> = redis.stream(key).into_iter().map(|(id, _)| id).collect();
    let expected: Vec<String> = (last + 1..=lines.len()).map(|seq| format!("{seq}-0")).collect();
    assert_eq!(ids, expected, "only the records after the trimmed ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_resumes_after_a_redis_outage_without_gaps_or_duplicates() {
    let mut redis = RedisServer::start_persistent();
    let upstream = Upstream::text("{\"status\":\"ok\"}").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [
        docs::opd("disdukcapil"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", "audit = \"sync\"\n"),
    ];
    let config = format!(
        "{AUDIT_ON}gateway_id = \"gw-b\"\n\n{}",
        redis.config_section("timeout = \"200ms\"\nmax_reconnect_backoff = \"200ms\"\n")
    );
    let gateway = GatewayProcess::start(&write_setup(dir.path(), &documents, &config));
    let key = "penghubung:audit:gw-b";
    wait_audit(&gateway.url, "shipping starts", caught_up).await;

    // Load from 4 tasks all along; Redis dies in the middle of it and comes back (with what it had stored).
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..4 {
        let (url, stop) = (format!("{}/disdukcapil/kependudukan/v1/x", gateway.url), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let client = http1_client();
            let mut ok = 0;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                ok += usize::from(complete_request(&client, &url, &format!("b{t}-{i}")).await == Some(200));
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    let down = wait_audit(&gateway.url, "the shipper sees Redis gone", |a| a["shipping"]["redis"] == "down").await;
    let shipped_before = down["shipping"]["shipped_seq"].as_u64().unwrap();
    assert!(shipped_before > 0, "{down}");
    // Requests go on while Redis is away: the records pile up in the files only.
    let written = down["written_seq"].as_u64().unwrap();
    wait_audit(&gateway.url, "records are written while Redis is down", |a| {
        a["written_seq"].as_u64() > Some(written + 50) && a["shipping"]["shipped_seq"].as_u64() == Some(shipped_before)
    })
    .await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ok = 0;
    for t in load {
        ok += t.await.unwrap();
    }
    assert!(ok > 50, "the load ran: {ok}");
    wait_audit(&gateway.url, "shipping catches up after the outage", caught_up).await;
    gateway.signal("TERM");
    let mut gateway = gateway;
    let status = tokio::task::spawn_blocking(move || gateway.child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));

    let lines = file_lines(&dir.path().join("audit"));
    assert_stream_is_the_files(&redis.stream(key), &lines);
    let exchanges = lines.iter().filter(|l| l.contains("\"kind\":\"exchange\"")).count();
    assert!(exchanges >= ok, "{exchanges} exchange records for {ok} completed requests");
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    let lost = log.matches("audit records are not shipped for now").count();
    let back = log.matches("Redis is reachable again: shipping the audit records").count();
    assert_eq!((lost, back), (1, 1), "the loss and the recovery are logged once each:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_are_rate_limited_security_events_that_verify() {
    use penghubung::ca::{CertificateAuthority, Validity};
    use penghubung_tests::mtls::request_status;
    const PER_INTERVAL: usize = 5;
    let upstream = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let documents = [
        docs::opd("dinkes"),
        docs::service("dinkes", "rm", &[upstream.url()], "", ""),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("simpus-rm", "dinkes/simpus", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let extra = format!("{AUDIT_ON}security_events_per_interval = {PER_INTERVAL}\nsecurity_event_interval = \"2s\"\n");
    let config = write_mtls_setup(dir.path(), &documents, &pki, &extra);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let addr = gateway.local_addrs()[0];
    let path = "/dinkes/rm/v1/x";

    // One refusal of each kind, over real handshakes.
    assert!(request_status(addr, client_config(&pki.ca_pem(), None), path).await.is_err());
    let other_dir = tempfile::tempdir().unwrap();
    let other = CertificateAuthority::init(other_dir.path(), TRUST_DOMAIN, "Other").unwrap();
    let foreign = other.issue_client("dinkes", "simpus", Validity::days(30)).unwrap();
    assert!(request_status(addr, client_config(&pki.ca_pem(), Some(&foreign)), path).await.is_err());
    let now = time::OffsetDateTime::now_utc();
    let expired = pki
        .ca
        .issue_client(
            "dinkes",
            "simpus",
            Validity { not_before: now - time::Duration::days(10), not_after: now - time::Duration::days(1) },
        )
        .unwrap();
    assert!(request_status(addr, client_config(&pki.ca_pem(), Some(&expired)), path).await.is_err());
    let revoked = pki.client("dinkes", "simpus");
    assert_eq!(request_status(addr, client_config(&pki.ca_pem(), Some(&revoked)), path).await, Ok(200));
    pki.ca.revoke(&revoked.serial_hex).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // two TLS reload polls
    assert!(request_status(addr, client_config(&pki.ca_pem(), Some(&revoked)), path).await.is_err());

    // A flood of refusals without a certificate, all at once.
    const FLOOD: usize = 60;
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        let config = client_config(&pki.ca_pem(), None);
        flood.spawn(async move { request_status(addr, config, "/dinkes/rm/v1/x").await });
    }
    while let Some(outcome) = flood.join_next().await {
        assert!(outcome.unwrap().is_err());
    }
    // The summary comes when the interval ends, without another refusal to trigger it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let auditor = gateway.auditor().unwrap();
    assert!(auditor.checkpoint().await);

    let log = dir.path().join("audit");
    let security: Vec<serde_json::Value> = records(&log).into_iter().filter(|r| r["kind"] == "security").collect();
    let events = |code: &str| -> Vec<&serde_json::Value> {
        security.iter().filter(|r| r["code"] == code && r.get("suppressed").is_none()).collect()
    };
    for code in ["tls.unknown_ca", "tls.expired", "tls.revoked"] {
        let found = events(code);
        assert_eq!(found.len(), 1, "{code}: {security:#?}");
        assert!(found[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{:?}", found[0]);
        assert_eq!((&found[0]["event"], &found[0]["decision"]), (&"tls.handshake_refused".into(), &"deny".into()));
    }
    // Bounded: at most PER_INTERVAL events per interval and one summary; every refusal accounted for.
    let no_certificate = events("tls.no_certificate");
    let summaries: Vec<&serde_json::Value> =
        security.iter().filter(|r| r["code"] == "tls.no_certificate" && r.get("suppressed").is_some()).collect();
    assert!(no_certificate.len() <= 2 * PER_INTERVAL && !summaries.is_empty(), "{security:#?}");
    let suppressed: u64 = summaries.iter().map(|s| s["suppressed"].as_u64().unwrap()).sum();
    assert_eq!(no_certificate.len() as u64 + suppressed, FLOOD as u64 + 1, "{security:#?}");
    assert!(summaries.iter().all(|s| s.get("peer").is_none() && s["since"].is_string()));
    // Nothing but the documented members (no certificate content, no secret).
    let allowed = ["seq", "prev", "kind", "time", "event", "decision", "code", "peer", "suppressed", "since", "hash"];
    for record in &security {
        assert!(record.as_object().unwrap().keys().all(|k| allowed.contains(&k.as_str())), "{record}");
    }

    // The trail with these events verifies, and search finds them.
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");
    let search = |extra: &[&str]| {
        let mut args = vec!["search", log.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out) = audit_cli(&args);
        assert_eq!(code, Some(0), "{out}");
        lines(&out)
    };
    let found = search(&["--security"]);
    assert_eq!(found.len(), security.len(), "{found:#?} {security:#?}");
    assert_eq!(search(&["--code", "tls.revoked"]).len(), 1);
    assert_eq!(search(&["--code", "tls.no_certificate"]).len(), no_certificate.len() + summaries.len());
    assert!(search(&["--client", "dinkes/simpus"]).iter().all(|r| r["kind"] == "exchange"));

    // Refusals suppressed in an interval that has not ended when the gateway stops are summarised before the
    // closing checkpoint: every refusal is still accounted for, and the trail verifies.
    const SECOND: usize = 3 * PER_INTERVAL;
    for _ in 0..SECOND {
        assert!(request_status(addr, client_config(&pki.ca_pem(), None), path).await.is_err());
    }
    gateway.shutdown().await;
    let written: u64 = records(&log)
        .iter()
        .filter(|r| r["kind"] == "security" && r["code"] == "tls.no_certificate")
        .map(|r| r.get("suppressed").map_or(1, |n| n.as_u64().unwrap()))
        .sum();
    assert_eq!(written, (FLOOD + 1 + SECOND) as u64);
    let (code, out) = verify(dir.path());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(upstream.hits(), 1);
}
