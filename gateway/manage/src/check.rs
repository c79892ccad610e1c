//! `penghubung check`: validates the config and every document and reports *all* problems at once, each with
//! its file and line. Nothing is started and nothing is written.

use std::path::Path;

use penghubung_snapshot::store::{load_documents, DocumentStore};
use penghubung_snapshot::{BuildContext, Snapshot};
use penghubung_tls as tls;
use penghubung_types::config::Config;
use penghubung_types::diagnostics::{has_errors, Diagnostic};

/// Every problem of the config at `config_path` (or the embedded default, anchored at the current directory)
/// and of the documents it points to.
pub fn check(config_path: Option<&Path>) -> Vec<Diagnostic> {
    let config = match config_path {
        Some(path) => Config::load(path),
        None => Ok(Config::embedded_default(&std::env::current_dir().unwrap_or_default())),
    };
    let config = match config {
        Ok(c) => c,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    let store: Box<dyn DocumentStore> = match penghubung_snapshot::store::open(&config) {
        Ok(store) => store,
        Err(e) => return vec![Diagnostic::error("[store]", e.to_string())],
    };
    let store_dir = config.store_dir();
    if store.watch_dir().is_some() && !store_dir.is_dir() {
        problems.push(Diagnostic::error(
            store_dir.display().to_string(),
            "the store directory does not exist (`penghubung serve` seeds it with the production skeleton; `penghubung init` writes a whole setup)",
        ));
        return problems;
    }
    let (docs, mut found) = load_documents(&*store);
    problems.append(&mut found);
    let config_name = config_path.map_or_else(|| "<embedded default>".to_string(), |p| p.display().to_string());
    problems.extend(config.warnings(&config_name));
    if let Some(tls_config) = config.tls.as_ref().filter(|t| !t.generate_if_missing) {
        if let Err(e) = tls::material::TlsState::load(tls_config, &config) {
            problems.push(Diagnostic::error(format!("{config_name} [tls]"), e));
        }
    }
    if let Err(mut found) = compile(&config, &docs) {
        problems.append(&mut found);
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    problems.dedup();
    problems
}

/// Compiles documents into a snapshot the way the gateway does (nothing is started, no connection is made).
pub fn compile(config: &Config, docs: &penghubung_snapshot::store::Documents) -> Result<Snapshot, Vec<Diagnostic>> {
    let upstream_tls = tls::UpstreamTls::from_config(config).map_err(|e| vec![Diagnostic::error("upstream TLS", e)])?;
    let adapters = penghubung_snapshot::adapters::registry(config, &upstream_tls);
    let ctx = BuildContext { config, upstream_tls: &upstream_tls, previous: None, adapters: Some(&adapters) };
    Snapshot::build(docs, &ctx)
}

/// Loads every document of `store` and compiles it: the snapshot, or every problem (warnings included).
pub fn load_and_compile(config: &Config, store: &dyn DocumentStore) -> Result<Snapshot, Vec<Diagnostic>> {
    let (docs, mut problems) = load_documents(store);
    if has_errors(&problems) {
        return Err(problems);
    }
    compile(config, &docs).map_err(|mut found| {
        problems.append(&mut found);
        problems
    })
}

/// Every problem of the documents of `store` (warnings included): those of each document on its own, then,
/// with the documents that passed, those between documents. Unlike [`load_and_compile`], the second pass runs
/// even when the first found errors, so that a refused change lists every reason at once.
pub fn every_problem(config: &Config, store: &dyn DocumentStore) -> Vec<Diagnostic> {
    let (docs, mut problems) = load_documents(store);
    if let Err(mut found) = compile(config, &docs) {
        problems.append(&mut found);
    }
    problems.dedup();
    problems
}

/// Prints a report and returns the process exit code (1 when any error was found).
pub fn report(problems: &[Diagnostic]) -> i32 {
    for p in problems {
        println!("{p}");
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    if has_errors(problems) {
        println!("check failed: {errors} error(s), {warnings} warning(s)");
        1
    } else {
        println!("check passed: config and documents are valid ({warnings} warning(s))");
        0
    }
}
