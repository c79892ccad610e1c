//! The access decision on a large policy set: 1,000 services (50 OPDs x 20), 1,000 clients (20 per OPD) and
//! 10,000 grants (10 per client, see `penghubung_benches::corpus::clients_and_grants`).
//!
//! * `policy decision (10,000 grants)/<case>`: `policy::authorize` exactly as the pipeline runs it per request
//!   once the client is identified and the service found: the client's grants on the service (a hash lookup
//!   by service index), the operation match, lifecycle, grant terms (operation, window, purpose) and clearance.
//!   Cases: allowed with a purpose on a grant that lists operations and purposes; allowed on an all-operations
//!   grant; denied for a missing purpose; denied without any grant (the cheapest path).
//! * `policy decision (10,000 grants)/snapshot build`: compiling those documents (grants included) into a
//!   snapshot, the cost of a reload.
//!
//! Run: `cargo bench -p penghubung-benches --bench policy`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderValue, Method};
use penghubung::policy;
use penghubung::snapshot::{BuildContext, Snapshot};
use penghubung::tls::UpstreamTls;
use penghubung::Config;
use penghubung_benches::corpus::{self, OPDS, SERVICES_PER_OPD};

const CLIENTS_PER_OPD: usize = 20;
const GRANTS_PER_CLIENT: usize = 10;

fn decision(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::embedded_default(dir.path());
    let tls = UpstreamTls::from_config(&config).expect("upstream TLS");
    let mut files = corpus::generate(OPDS, SERVICES_PER_OPD);
    files.extend(corpus::clients_and_grants(OPDS, SERVICES_PER_OPD, CLIENTS_PER_OPD, GRANTS_PER_CLIENT));
    let docs = corpus::documents(&files);
    assert_eq!(docs.grants.len(), OPDS * CLIENTS_PER_OPD * GRANTS_PER_CLIENT);
    let build = || {
        let ctx = BuildContext { config: &config, upstream_tls: &tls, previous: None, adapters: None };
        Snapshot::build(&docs, &ctx).unwrap_or_else(|p| panic!("the corpus does not build: {p:?}"))
    };
    let snapshot = build();

    // The first grant of client opd-03/app-04 lists operations and purposes; its second grants everything.
    let client = &snapshot.clients[&corpus::client_id(3, 4)];
    let grant_target = |g: usize| {
        let n = 3 * CLIENTS_PER_OPD + 4;
        let target = (n * 7 + g * 97) % (OPDS * SERVICES_PER_OPD);
        (corpus::opd_id(target / SERVICES_PER_OPD), corpus::service_name(target % SERVICES_PER_OPD))
    };
    let service_of = |(opd, name): (String, String)| snapshot.find_service(&opd, &name, 1).expect("service").clone();
    let listed = service_of(grant_target(0));
    let everything = service_of(grant_target(1));
    let ungranted = snapshot
        .services
        .iter()
        .find(|s| client.access.grants_on(s.access.index).is_none())
        .expect("a service without a grant")
        .clone();
    let purpose = HeaderValue::from_static("pelayanan-publik");
    let now = policy::unix_now();
    let decide = |service: &penghubung::snapshot::CompiledService,
                  method: &Method,
                  rest: &str,
                  purpose: Option<&HeaderValue>| {
        let find_operation = || service.operations.find(method, rest);
        let (_, decision) = policy::authorize(&client.access, &service.access, find_operation, purpose, now, &mut ());
        decision.map(|p| p.grant.id.clone()).map_err(|e| penghubung::error::GatewayError::from(e).code())
    };
    // Check every case's outcome before timing it.
    assert!(decide(&listed, &Method::GET, "/pasien/123", Some(&purpose)).is_ok());
    assert!(decide(&everything, &Method::DELETE, "/pasien/123", None).is_ok());
    assert_eq!(decide(&listed, &Method::GET, "/pasien/123", None), Err("policy.purpose"));
    assert_eq!(decide(&ungranted, &Method::GET, "/pasien/123", None), Err("policy.no_grant"));

    let mut group = c.benchmark_group("policy decision (10,000 grants)");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(50);
    group.bench_function("allow, listed operation and purpose", |b| {
        b.iter(|| black_box(decide(&listed, black_box(&Method::GET), black_box("/pasien/123"), Some(&purpose))))
    });
    group.bench_function("allow, all operations", |b| {
        b.iter(|| black_box(decide(&everything, black_box(&Method::DELETE), black_box("/pasien/123"), None)))
    });
    group.bench_function("deny, purpose missing", |b| {
        b.iter(|| black_box(decide(&listed, black_box(&Method::GET), black_box("/pasien/123"), None)))
    });
    group.bench_function("deny, no grant", |b| {
        b.iter(|| black_box(decide(&ungranted, black_box(&Method::GET), black_box("/pasien/123"), None)))
    });
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("snapshot build", |b| b.iter(|| black_box(build())));
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
