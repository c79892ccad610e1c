//! What holding a request body to its contract costs on the data plane, for a Dukcapil-like batch of resident
//! records (`penghubung_benches::dukcapil`: NIK, kode wilayah, tanggal and telepon reference types, i.e. the
//! `nik`, `kode-wilayah`, `date` and `telepon` formats, nested address and family members) of exactly 1 KiB
//! (one record) and 64 KiB (many records). The validator is built as `Snapshot::build` builds it
//! (`contract::compile::Compiler` with `contract::FORMATS` and the reference schemas).
//!
//! Per size, group `contract <size>`:
//!
//! * `check_request_body, valid`: `contract::check::check_request_body`, exactly what the pipeline runs once the
//!   body is read: the schema's single pass (validation while parsing) accepts the body;
//! * `full path: parse only` and `full path: is_valid only` (on the parsed value): what a valid body cost
//!   before the single pass, `serde_json::from_slice` into a `Value` + `Validator::is_valid`;
//! * `check_request_body, invalid (3 violations)`: the error path: the single pass stops at the first violation,
//!   then the full path parses, `is_valid` fails, and the violations are collected (`iter_errors`, pointers,
//!   keywords, messages); the three violations sit in the last record.
//!
//! Every case's outcome is asserted before it is timed. Run: `cargo bench -p penghubung-benches --bench contract`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use penghubung::contract::check::check_request_body;
use penghubung::contract::ContractError;
use penghubung_benches::dukcapil;

fn contract(c: &mut Criterion) {
    let validator = dukcapil::validator();
    for (label, size) in [("1 KiB", 1024), ("64 KiB", 64 * 1024)] {
        let valid = Bytes::from(dukcapil::body(size));
        let invalid = Bytes::from(dukcapil::invalid_body(size));
        let records = dukcapil::records_in(&valid);

        // The outcomes, before anything is timed.
        assert_eq!(valid.len(), size);
        assert_eq!(invalid.len(), size);
        if let Err(e) = check_request_body(&valid, &validator) {
            panic!("the valid {label} body is refused: {e:?}");
        }
        let parsed: serde_json::Value = serde_json::from_slice(&valid).unwrap();
        assert!(validator.full.is_valid(&parsed));
        assert!(validator.accepts_in_single_pass(&valid), "the bench schema has a single pass");
        assert!(!validator.accepts_in_single_pass(&invalid));
        match check_request_body(&invalid, &validator) {
            Err(ContractError::RequestInvalid { violations }) => {
                let mut found: Vec<(String, String)> =
                    violations.iter().map(|v| (v.pointer.clone(), v.keyword.clone())).collect();
                found.sort();
                assert_eq!(found, dukcapil::expected_violations(records - 1), "{label}");
                assert!(violations.iter().all(|v| !v.message.is_empty()));
            }
            other => panic!("the invalid {label} body: expected contract.request_invalid, got {other:?}"),
        }
        println!("contract {label}: {records} record(s) of resident data, {size} bytes");

        let mut group = c.benchmark_group(format!("contract {label}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(50);
        group.bench_function("check_request_body, valid", |b| {
            b.iter(|| black_box(check_request_body(black_box(&valid), &validator).is_ok()))
        });
        group.bench_function("full path: parse only", |b| {
            b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&valid)).is_ok()))
        });
        group.bench_function("full path: is_valid only", |b| {
            b.iter(|| black_box(validator.full.is_valid(black_box(&parsed))))
        });
        group.bench_function("check_request_body, invalid (3 violations)", |b| {
            b.iter(|| black_box(check_request_body(black_box(&invalid), &validator).is_err()))
        });
        group.finish();
    }
}

criterion_group!(benches, contract);
criterion_main!(benches);
