//! Routing and snapshot micro-benchmarks on a 1,000-service corpus (50 OPDs x 20 services x 5 operations, see
//! `penghubung_benches::corpus`).
//!
//! * `route lookup/<case>`: the per-request hot path of the gateway, exactly as the pipeline runs it:
//!   `routing::split_service_path(path)` → `Snapshot::find_service(opd, service, major)` →
//!   `OperationTable::find(&Method, rest)`. Cases: a hit on the first and on the last service, a hit on the
//!   deepest template, a 404 for an unknown service, a 404 for an unknown operation path, and a 405 (which
//!   also builds the `Allow` header, as the gateway does).
//! * `snapshot load for 1,000 services/build`: `Snapshot::build` from already parsed documents (route table,
//!   operation tables, one upstream pool per service): the cost of a hot reload once the store is read.
//! * `snapshot load for 1,000 services/load_documents + build`: the whole reload path from a directory store:
//!   read the 1,050 TOML files, parse them, check them against the JSON Schemas, then build.
//!
//! Run: `cargo bench -p penghubung-benches --bench routing` (about a minute on 2 cores). Filter with
//! `cargo bench -p penghubung-benches --bench routing -- 'route lookup'`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Method;
use penghubung::error::GatewayError;
use penghubung::routing::split_service_path;
use penghubung::snapshot::{BuildContext, Snapshot};
use penghubung::store::load_documents;
use penghubung::tls::UpstreamTls;
use penghubung::Config;
use penghubung_benches::corpus::{self, OPDS, SERVICES_PER_OPD};

/// The gateway's lookup sequence for one request; returns the operation id or the error code.
fn lookup<'s>(snapshot: &'s Snapshot, method: &Method, path: &str) -> Result<Option<&'s str>, &'static str> {
    let address = split_service_path(path).map_err(|e| GatewayError::from(e).code())?;
    let service =
        snapshot.find_service(address.opd, address.service, address.major).ok_or(GatewayError::RouteNotFound.code())?;
    let operation = service.operations.find(method, address.rest).map_err(|e| GatewayError::from(e).code())?;
    Ok(operation.map(|o| &*o.id))
}

/// Config and upstream TLS settings, as the gateway builds them at start-up.
fn process_inputs(dir: &Path) -> (Config, UpstreamTls) {
    let config = Config::embedded_default(dir);
    let tls = UpstreamTls::from_config(&config).expect("upstream TLS config");
    (config, tls)
}

fn build(docs: &penghubung::store::Documents, config: &Config, tls: &UpstreamTls) -> Snapshot {
    let ctx = BuildContext { config, upstream_tls: tls, previous: None, adapters: None };
    Snapshot::build(docs, &ctx).unwrap_or_else(|problems| panic!("the corpus does not build: {problems:?}"))
}

/// One lookup case and the outcome the gateway must reach (checked before timing).
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    expected: Result<Option<&'static str>, &'static str>,
}

fn route_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, tls) = process_inputs(dir.path());
    let docs = corpus::documents(&corpus::generate(OPDS, SERVICES_PER_OPD));
    let snapshot = build(&docs, &config, &tls);
    assert_eq!(snapshot.route_count(), OPDS * SERVICES_PER_OPD);

    let first = format!("/{}/{}/v1", corpus::opd_id(0), corpus::service_name(0));
    let last = format!("/{}/{}/v1", corpus::opd_id(OPDS - 1), corpus::service_name(SERVICES_PER_OPD - 1));
    #[rustfmt::skip]
    let cases = [
        Case { name: "hit first service", method: Method::GET, path: format!("{first}/pasien/3171012345"), expected: Ok(Some("ambil")) },
        Case { name: "hit last service", method: Method::GET, path: format!("{last}/pasien/3171012345"), expected: Ok(Some("ambil")) },
        Case { name: "hit deepest template", method: Method::GET, path: format!("{last}/pasien/3171012345/kunjungan/77"), expected: Ok(Some("kunjungan-ambil")) },
        Case { name: "404 unknown service", method: Method::GET, path: format!("/{}/tidak-ada/v1/pasien/1", corpus::opd_id(OPDS - 1)), expected: Err("route.not_found") },
        Case { name: "404 unknown operation", method: Method::GET, path: format!("{last}/dokter/1"), expected: Err("route.not_found") },
        Case { name: "405 wrong method", method: Method::PUT, path: format!("{last}/pasien/3171012345"), expected: Err("route.method_not_allowed") },
    ];

    let mut group = c.benchmark_group("route lookup");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(50);
    for Case { name, method, path, expected } in &cases {
        assert_eq!(lookup(&snapshot, method, path), *expected, "{name}: {method} {path}");
        group.bench_with_input(BenchmarkId::from_parameter(name), path.as_str(), |b, path| {
            b.iter(|| lookup(&snapshot, black_box(method), black_box(path)).is_ok())
        });
    }
    group.finish();
}

fn snapshot_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, tls) = process_inputs(dir.path());
    let files = corpus::generate(OPDS, SERVICES_PER_OPD);
    let docs = corpus::documents(&files);
    let store = corpus::write_store(&dir.path().join("policies"), &files).expect("write the store");

    let mut group = c.benchmark_group("snapshot load for 1,000 services");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(10);
    group.bench_function("build", |b| b.iter_with_large_drop(|| build(black_box(&docs), &config, &tls)));
    group.bench_function("load_documents + build", |b| {
        b.iter_with_large_drop(|| {
            let (docs, problems) = load_documents(black_box(&store));
            assert!(problems.is_empty(), "{problems:?}");
            build(&docs, &config, &tls)
        })
    });
    group.finish();
}

criterion_group!(benches, route_lookup, snapshot_load);
criterion_main!(benches);
