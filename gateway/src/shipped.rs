//! `penghubung audit verify --redis URL`: verifies every replica's shipped audit stream
//! ([`penghubung_audit::shipped`]) and prints one block per replica: its records, first and last seq, the
//! checkpoints and the keys that signed them, gaps, and verified or why not. Exit code 0 when every replica's
//! stream verified, 1 otherwise (also when no stream matches the pattern).

use std::path::PathBuf;

use penghubung_audit::keys::PublicKey;
use penghubung_audit::shipped::{self, StreamReport};

/// Reads every `--key` (PEM public keys).
pub(crate) fn read_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, String> {
    paths.iter().map(|path| PublicKey::read(path).map_err(|e| e.to_string())).collect()
}

/// Runs the verification; returns the exit code.
pub fn verify(url: &str, pattern: &str, key_files: &[PathBuf]) -> i32 {
    let fail = |message: String| {
        eprintln!("penghubung audit verify: {message}");
        1
    };
    let keys = match read_keys(key_files) {
        Ok(keys) => keys,
        Err(e) => return fail(e),
    };
    let mut connection = match shipped::connect(url) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let streams = match shipped::find_streams(&mut connection, pattern) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if streams.is_empty() {
        println!("FAILED: no stream matches `{pattern}`: no replica has shipped records there");
        return 1;
    }
    let mut failed = 0;
    for stream in &streams {
        match shipped::verify_stream(&mut connection, &stream.stream, &keys) {
            Ok(report) => {
                failed += usize::from(!report.ok());
                print_report(&stream.replica, &stream.stream, &report);
            }
            Err(e) => {
                failed += 1;
                println!("replica {} (stream {}): FAILED: {e}", stream.replica, stream.stream);
            }
        }
    }
    if failed == 0 {
        println!("OK: {} replica(s), every stream verified", streams.len());
        0
    } else {
        println!("FAILED: {failed} of {} replica(s) did not verify", streams.len());
        1
    }
}

fn print_report(replica: &str, stream: &str, report: &StreamReport) {
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!("seq {first}..={last}"),
        _ => "no seq".into(),
    };
    let outcome = match report.failure() {
        Some(why) => format!("FAILED: {why}"),
        None => "verified".into(),
    };
    println!(
        "replica {replica} (stream {stream}): {outcome}\n  records: {} ({range}), checkpoints: {} signed by key(s) {}, \
         last checkpoint at seq {}",
        report.records,
        report.checkpoints,
        if report.key_ids.is_empty() { "-".to_string() } else { report.key_ids.join(", ") },
        report.last_checkpoint.map_or("-".to_string(), |s| s.to_string()),
    );
    if let Some(trimmed) = report.trimmed {
        println!("  gap: {trimmed} not in the stream (trimmed or collected before its first entry)");
    }
    for gap in &report.gaps {
        println!("  gap: {gap} missing between entries");
    }
    for warning in &report.warnings {
        println!("  warning: {warning}");
    }
}
