//! A generated month written through the real audit writer (hash chain, signed checkpoints, rotation) with
//! this test's key: the report's numbers equal counts kept independently while generating; a tampered segment
//! is flagged and its exchanges are not counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
use penghubung_audit::keys::{self, PublicKey};
use penghubung_audit::record::{ExchangeRecord, Record};
use penghubung_audit::writer::{segment_files, AuditWriter, Job, WriterSettings};
use penghubung_audit::AuditDurability;
use penghubung_report::{render, usage, Format, Month, Query};
use penghubung_types::documents::{BandwidthDoc, OpdDoc};
use penghubung_types::units::ByteSize;

const CALLERS: [&str; 6] = ["dinsos", "dinkes", "disdik", "bappeda", "dpmptsp", "bpbd"];
const SERVICES: [&str; 4] =
    ["disdukcapil/kependudukan/v1", "dinkes/rekam-medis/v2", "bpkad/anggaran/v1", "dinsos/dtks/v1"];
const CODES: [Option<&str>; 6] =
    [None, None, None, Some("policy.no_grant"), Some("ratelimit.exceeded"), Some("upstream.timeout")];

/// What the test expects, counted independently of the report.
#[derive(Default, Debug, PartialEq)]
struct Expected {
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    denied: u64,
    rate_limited: u64,
    errors: u64,
    by_caller: BTreeMap<String, u64>,
    by_provider: BTreeMap<String, u64>,
    caller_bytes: BTreeMap<String, u64>,
    caller_codes: BTreeMap<(String, String), u64>,
    daily: BTreeMap<(String, u32), u64>,
    latencies: Vec<u64>,
}

struct Generated {
    exchange: ExchangeRecord,
    /// Local (WIB) day in November, 0-based; `None` outside the month.
    day: Option<u32>,
}

fn generate(i: u64, start: SystemTime, span: Duration) -> Generated {
    // Spread over the span in time order; a few before and after November (WIB).
    let at = start + span.mul_f64(i as f64 / 6000.0);
    let caller = (i % 7 != 6).then(|| CALLERS[(i * 5 % 6) as usize]); // every 7th: no identified caller
    let service = (i % 11 != 10).then(|| SERVICES[(i % 4) as usize]); // every 11th: health/unknown route
    let code = CODES[(i % 6) as usize];
    let status = match code {
        None => 200,
        Some("policy.no_grant") => 403,
        Some("ratelimit.exceeded") => 429,
        _ => 504,
    };
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 7 * 3600;
    let (y, m, d) = penghubung_report::month::civil_from_days((secs / 86_400) as i64);
    let day = (y == 2026 && m == 11).then_some(d - 1);
    let exchange = ExchangeRecord {
        time: at,
        request_id: HeaderValue::from_str(&format!("req-{i}")).unwrap(),
        traceparent: None,
        client: caller.map(|c| HeaderValue::from_str(&format!("{c}/app{}", i % 3)).unwrap()),
        caller_opd: caller.map(HeaderValue::from_static),
        service: service.map(Arc::from),
        operation: None,
        method: Method::GET,
        path: None,
        purpose: None,
        code,
        status,
        bytes_in: i % 500,
        bytes_out: (i * 37) % 9000,
        latency_us: 200 + (i * 7919) % 90_000,
        upstream: None,
        request_sha256: None,
        response_sha256: None,
        withheld: None,
        nik: Vec::new(),
        nik_overflow: false,
        complete: true,
        durability: AuditDurability::Async,
    };
    Generated { exchange, day }
}

fn expect(expected: &mut Expected, g: &Generated) {
    let Some(day) = g.day else { return };
    let e = &g.exchange;
    let caller = e.caller_opd.as_ref().map_or("-", |v| v.to_str().unwrap()).to_string();
    let provider = e.service.as_deref().map_or("-", |s| s.split('/').next().unwrap()).to_string();
    expected.requests += 1;
    expected.bytes_in += e.bytes_in;
    expected.bytes_out += e.bytes_out;
    match e.code {
        Some("policy.no_grant") => expected.denied += 1,
        Some("ratelimit.exceeded") => {
            expected.rate_limited += 1;
            expected.errors += 1;
        }
        Some(_) => expected.errors += 1,
        None => {}
    }
    if let Some(code) = e.code {
        *expected.caller_codes.entry((caller.clone(), code.to_string())).or_default() += 1;
    }
    *expected.by_caller.entry(caller.clone()).or_default() += 1;
    *expected.by_provider.entry(provider).or_default() += 1;
    *expected.caller_bytes.entry(caller.clone()).or_default() += e.bytes_in + e.bytes_out;
    *expected.daily.entry((caller, day)).or_default() += 1;
    expected.latencies.push(e.latency_us);
}

async fn write_month(dir: &Path) -> (PathBuf, PublicKey, Expected) {
    let key = keys::generate(&dir.join("audit.key"), &dir.join("audit.pub")).unwrap();
    let public = key.public();
    let log = dir.join("audit");
    let settings = WriterSettings {
        dir: log.clone(),
        checkpoint_every: 100,
        checkpoint_interval: Duration::from_secs(3600),
        segment_max_size: 256 * 1024,
        segment_max_age: Duration::from_secs(3600),
        queue_capacity: 1024,
        nik_key: penghubung_audit::sanitise::process_key().clone(),
    };
    let writer = AuditWriter::start(settings, key).unwrap();
    // 2026-10-31T12:00Z (19:00 WIB, still October locally) to 2026-12-01T00:00Z (07:00 WIB, December).
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_793_448_000);
    let span = Duration::from_secs(30 * 86_400 + 12 * 3600);
    let mut expected = Expected::default();
    for i in 0..6000 {
        let g = generate(i, start, span);
        expect(&mut expected, &g);
        writer.sender().send(Job::Record(Record::Exchange(Box::new(g.exchange)), None)).await.unwrap();
    }
    assert!(writer.checkpoint().await);
    drop(writer);
    tokio::time::sleep(Duration::from_millis(50)).await;
    (log, public, expected)
}

fn opds() -> Vec<OpdDoc> {
    let doc = |id: &str, name: &str, bps: Option<u64>| OpdDoc {
        id: id.into(),
        name: name.into(),
        mandiri_tik: false,
        contact: None,
        bandwidth: bps.map(|b| BandwidthDoc {
            requests_per_second: Some(5),
            request_burst: None,
            bytes_per_second: Some(ByteSize(b)),
            byte_burst: None,
        }),
    };
    vec![doc("dinsos", "Dinas Sosial", Some(1024)), doc("dinkes", "Dinas Kesehatan", None)]
}

fn check(report: &penghubung_report::UsageReport, expected: &Expected) {
    let t = &report.total;
    assert_eq!(
        (t.requests, t.bytes_in, t.bytes_out, t.denied, t.rate_limited, t.errors),
        (
            expected.requests,
            expected.bytes_in,
            expected.bytes_out,
            expected.denied,
            expected.rate_limited,
            expected.errors
        )
    );
    let by = |list: &[penghubung_report::model::OpdUsage]| -> BTreeMap<String, u64> {
        list.iter().map(|u| (u.opd.clone(), u.requests)).collect()
    };
    assert_eq!(by(&report.callers), expected.by_caller);
    assert_eq!(by(&report.providers), expected.by_provider);
    for caller in &report.callers {
        assert_eq!(caller.bytes_in + caller.bytes_out, expected.caller_bytes[&caller.opd], "{}", caller.opd);
        for (code, n) in caller.denials_by_code.iter().chain(&caller.errors_by_code) {
            assert_eq!(*n, expected.caller_codes[&(caller.opd.clone(), code.clone())], "{} {code}", caller.opd);
        }
        for (day, d) in caller.daily.iter().enumerate() {
            let want = expected.daily.get(&(caller.opd.clone(), day as u32)).copied().unwrap_or(0);
            assert_eq!(d.requests, want, "{} day {}", caller.opd, day + 1);
        }
    }
    // Latency quantiles within the stated error of the exact nearest-rank ones.
    let mut sorted = expected.latencies.clone();
    sorted.sort_unstable();
    for (q, got) in [(0.5, t.latency_ms.p50), (0.95, t.latency_ms.p95), (0.99, t.latency_ms.p99)] {
        let exact = sorted[(q * sorted.len() as f64).ceil() as usize - 1] as f64 / 1000.0;
        let got = got.unwrap();
        assert!((got - exact).abs() <= exact * report.latency_relative_error + 0.01, "q{q}: {got} vs {exact}");
    }
}

#[tokio::test]
async fn the_report_equals_independent_counts_and_flags_a_tampered_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (log, key, expected) = write_month(dir.path()).await;
    let files = segment_files(&log).unwrap();
    assert!(files.len() >= 5, "several segments: {files:?}");
    assert!(expected.by_caller.len() >= 6 && expected.requests > 5000, "{expected:?}");
    let month: Month = "2026-11".parse().unwrap();
    let report = usage(&log, &key, Query::month(month), &opds()).unwrap();
    assert!(report.verification.verified, "{:?}", report.verification);
    assert_eq!(report.verification.segments_verified, report.verification.segments);
    assert!(report.verification.checkpoints_verified as usize >= files.len(), "{:?}", report.verification);
    check(&report, &expected);
    assert_eq!(report.days, 30);
    assert_eq!(report.utc_offset, "+07:00");
    // The allocation: 1 KiB/s over 30 days.
    let dinsos = report.callers.iter().find(|u| u.opd == "dinsos").unwrap();
    assert_eq!(dinsos.name.as_deref(), Some("Dinas Sosial"));
    let allocation = dinsos.allocation.as_ref().unwrap();
    assert_eq!(allocation.month_bytes, Some(1024 * 30 * 86_400));
    assert_eq!(allocation.month_requests, Some(5 * 30 * 86_400));
    let used = (dinsos.bytes_in + dinsos.bytes_out) as f64 * 100.0 / (1024.0 * 30.0 * 86_400.0);
    assert!((allocation.bytes_used_percent.unwrap() - used).abs() < 0.01);
    assert!(report.callers.iter().find(|u| u.opd == "dinkes").unwrap().allocation.is_none());
    // Top services of the total are the generated ones.
    let top: Vec<&str> = report.total.top_services.iter().map(|s| s.name.as_str()).collect();
    for s in SERVICES {
        assert!(top.contains(&s), "{top:?}");
    }

    // One OPD: only the exchanges it made or served.
    let only = usage(&log, &key, Query { opd: Some("dinkes"), ..Query::month(month) }, &opds()).unwrap();
    let as_caller = expected.by_caller["dinkes"];
    let as_provider = only.providers.iter().find(|u| u.opd == "dinkes").unwrap().requests;
    let both = only.callers.iter().find(|u| u.opd == "dinkes").unwrap().requests;
    assert_eq!(both, as_caller);
    assert!(only.total.requests >= as_caller.max(as_provider) && only.total.requests < expected.requests);

    // Every form renders the numbers; the HTML page is self-contained.
    let text = render(&report, Format::Text);
    assert!(text.contains("TERVERIFIKASI") && text.contains("dinsos (Dinas Sosial)"), "{text}");
    let csv = render(&report, Format::Csv);
    let header = csv.lines().next().unwrap().split(',').count();
    assert!(csv.lines().all(|l| l.split(',').count() == header), "{csv}");
    assert!(csv.contains(&format!("summary,total,*,,,,{},", expected.requests)), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
    assert_eq!(json["total"]["requests"], expected.requests);
    let html = render(&report, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && html.contains("Jejak audit terverifikasi"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="), "no script, no asset");

    // Another month: nothing of November.
    let october = usage(&log, &key, Query::month("2026-10".parse().unwrap()), &opds()).unwrap();
    assert!(october.total.requests > 0 && october.total.requests < 100, "{}", october.total.requests);
    assert!(october.verification.segments < report.verification.segments);

    // Tamper with one record in a middle segment: that segment is flagged, its exchanges are not counted.
    let victim = &files[files.len() / 2];
    let text = std::fs::read_to_string(victim).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let target = lines.iter().position(|l| l.contains("\"bytes_out\":")).unwrap();
    let forged = lines[target].replacen("\"bytes_out\":", "\"bytes_out\":9", 1);
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    changed[target] = forged;
    std::fs::write(victim, changed.join("\n") + "\n").unwrap();
    let in_victim = lines
        .iter()
        .filter(|l| l.contains("\"kind\":\"exchange\""))
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = v["time"].as_str().unwrap();
            ("2026-10-31T17:00:00".."2026-11-30T17:00:00").contains(&t)
        })
        .count() as u64;
    assert!(in_victim > 0);
    let tampered = usage(&log, &key, Query::month(month), &opds()).unwrap();
    let v = &tampered.verification;
    assert!(!v.verified);
    assert_eq!(v.flagged.len(), 1, "{v:?}");
    let flagged = &v.flagged[0];
    assert_eq!(flagged.file, victim.file_name().unwrap().to_str().unwrap());
    assert_eq!(flagged.problem, "modified");
    assert_eq!(flagged.at, format!("{}:{}", flagged.file, target + 1));
    assert_eq!(flagged.exchanges_not_counted, in_victim);
    assert_eq!(tampered.total.requests, expected.requests - in_victim);
    assert_eq!(v.segments_verified, v.segments - 1, "the segments after it still verify (linked): {v:?}");
    assert!(render(&tampered, Format::Text).contains("TIDAK TERVERIFIKASI"));
    assert!(render(&tampered, Format::Html).contains("TIDAK terverifikasi"));

    // A segment removed from the middle: the next one is flagged (the chain is broken).
    std::fs::write(victim, text).unwrap();
    let gone = &files[files.len() / 2 - 1];
    std::fs::remove_file(gone).unwrap();
    let removed = usage(&log, &key, Query::month(month), &opds()).unwrap();
    assert!(!removed.verification.verified);
    assert_eq!(removed.verification.flagged[0].problem, "truncated", "{:?}", removed.verification);
}
