//! The usage report's speed and memory: generates an audit trail of N exchange records over one month through
//! the real audit writer (hash chain, signed checkpoints, 64 MiB segments), then times `penghubung report
//! usage`'s library call on it, on one core, and prints records scanned per second and the peak RSS (VmHWM) of
//! the scan alone (the peak is reset after generating, through `/proc/self/clear_refs`).
//!
//! `report --records 10000000 [--dir DIR] [--keep] [--opds 40]`; with `--dir` holding a trail from an
//! earlier run (`--keep`) and `--scan-only`, it only scans.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Method};
use penghubung::audit::keys;
use penghubung::audit::record::{ExchangeRecord, Record};
use penghubung::audit::writer::{AuditWriter, Job, WriterSettings};
use penghubung::audit::AuditDurability;
use penghubung::reports::{usage, Month, Query};

const CODES: [Option<&str>; 8] =
    [None, None, None, None, None, Some("policy.no_grant"), Some("ratelimit.exceeded"), Some("upstream.timeout")];

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`): the scan's own time on a shared
/// machine, whatever else runs.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_string())
        .unwrap_or_default()
}

/// Interned header values and service keys: generating must not be the bottleneck.
struct Names {
    opds: Vec<HeaderValue>,
    clients: Vec<HeaderValue>,
    services: Vec<Arc<str>>,
}

fn names(opds: usize) -> Names {
    let ids: Vec<String> = (0..opds).map(|i| format!("opd{i:03}")).collect();
    Names {
        opds: ids.iter().map(|id| HeaderValue::from_str(id).unwrap()).collect(),
        clients: ids.iter().map(|id| HeaderValue::from_str(&format!("{id}/aplikasi")).unwrap()).collect(),
        services: ids.iter().flat_map(|id| (0..3).map(move |s| Arc::from(format!("{id}/layanan-{s}/v1")))).collect(),
    }
}

fn record(i: u64, n: u64, start: SystemTime, names: &Names) -> Record {
    let month = Duration::from_secs(30 * 86_400 - 60);
    let caller = (i * 7 % names.opds.len() as u64) as usize;
    let service = (i * 13 % names.services.len() as u64) as usize;
    let code = CODES[(i % 8) as usize];
    Record::Exchange(Box::new(ExchangeRecord {
        time: start + month.mul_f64(i as f64 / n as f64),
        request_id: HeaderValue::from_static("0192f1d2-7c3a-7b4e-9f10-2a3b4c5d6e7f"),
        traceparent: Some(HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),
        client: Some(names.clients[caller].clone()),
        caller_opd: Some(names.opds[caller].clone()),
        service: Some(Arc::clone(&names.services[service])),
        operation: Some(Arc::from("ambil-data")),
        method: Method::GET,
        path: Some(Arc::from("/data/{id}")),
        purpose: Some(HeaderValue::from_static("pelayanan-publik")),
        code,
        status: match code {
            None => 200,
            Some("policy.no_grant") => 403,
            Some("ratelimit.exceeded") => 429,
            _ => 504,
        },
        bytes_in: i % 700,
        bytes_out: 200 + i * 31 % 20_000,
        latency_us: 300 + i * 7919 % 150_000,
        upstream: Some(Arc::from("http://10.0.0.1:8080")),
        request_sha256: Some([1; 32]),
        response_sha256: Some([2; 32]),
        withheld: None,
        nik: Vec::new(),
        nik_overflow: false,
        complete: true,
        durability: AuditDurability::Async,
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = arg(&args, "--records", 1_000_000);
    let opds: usize = arg(&args, "--opds", 40);
    let keep = args.iter().any(|a| a == "--keep");
    let scan_only = args.iter().any(|a| a == "--scan-only");
    let temp = tempfile::tempdir().unwrap();
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit");
    let (private, public) = (dir.join("audit.key"), dir.join("audit.pub"));
    // 2026-11-01T00:00+07:00.
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_793_466_000);
    if !scan_only {
        let key = keys::generate(&private, &public).unwrap();
        let names = names(opds);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let began = Instant::now();
        runtime.block_on(async {
            let writer = AuditWriter::start(
                WriterSettings {
                    dir: log.clone(),
                    checkpoint_every: 1000,
                    checkpoint_interval: Duration::from_secs(3600),
                    segment_max_size: 64 << 20,
                    segment_max_age: Duration::from_secs(24 * 3600),
                    queue_capacity: 8192,
                    nik_key: penghubung::audit::sanitise::process_key().clone(),
                },
                key,
            )
            .unwrap();
            let sender = writer.sender();
            for i in 0..n {
                sender.send(Job::Record(record(i, n, start, &names), None)).await.unwrap();
            }
            assert!(writer.checkpoint().await);
        });
        let bytes: u64 = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        eprintln!("generated {n} records ({:.2} GiB) in {:.1?}", bytes as f64 / f64::from(1 << 30), began.elapsed());
    }
    // The scan's own peak: reset VmHWM (Linux: "5" resets the peak RSS).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let key = keys::PublicKey::read(&public).unwrap();
    let month: Month = "2026-11".parse().unwrap();
    let before = vm("VmHWM:");
    let (began, cpu) = (Instant::now(), cpu_ns());
    let report = usage(&log, &key, Query::month(month), &[]).unwrap();
    let (elapsed, cpu) = (began.elapsed(), Duration::from_nanos(cpu_ns() - cpu));
    let records = report.verification.records_checked;
    let bytes: u64 = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    println!("records scanned: {records} ({} exchanges counted) in {:.2?}", report.total.requests, elapsed);
    println!("records/s: {:.0} (wall clock)", records as f64 / elapsed.as_secs_f64());
    println!(
        "records per CPU second: {:.0} (CPU time of the scanning thread: {cpu:.2?})",
        records as f64 / cpu.as_secs_f64()
    );
    println!("MiB/s: {:.0}", bytes as f64 / f64::from(1 << 20) / elapsed.as_secs_f64());
    println!(
        "verified: {} ({} segments, {} checkpoints)",
        report.verification.verified, report.verification.segments, report.verification.checkpoints_verified
    );
    println!("peak RSS of the scan (VmHWM): {} (after generating, before the scan: {before})", vm("VmHWM:"));
    println!("callers: {}, providers: {}", report.callers.len(), report.providers.len());
    assert!(report.verification.verified && report.total.requests > 0);
    if keep {
        eprintln!("kept: {}", dir.display());
        std::mem::forget(temp);
    }
}
