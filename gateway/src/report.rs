//! `penghubung report usage`: the monthly usage report ([`penghubung_report`]) of the audit trail the config
//! names (or, with `--redis`, of every replica's shipped records), with the OPDs' names and `[bandwidth]`
//! allocations read from its store. Written to stdout or `--out`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use penghubung_report::{Format, Month, Query, UtcOffset};
use penghubung_snapshot::store::load_documents;
use penghubung_types::config::Config;
use penghubung_types::documents::OpdDoc;

/// Exit code when the report was made but a segment of the trail did not verify.
pub const EXIT_UNVERIFIED: i32 = 3;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The month, YYYY-MM (default: this month).
    #[arg(long)]
    month: Option<String>,
    /// Only the exchanges this OPD made or served.
    #[arg(long)]
    opd: Option<String>,
    /// text, csv, json or html (a self-contained page with charts).
    #[arg(long, default_value = "text")]
    format: String,
    /// The local time days are counted in.
    #[arg(long, default_value = "+07:00")]
    utc_offset: String,
    /// Config file (penghubung.toml): its `[audit]` trail and its store's OPDs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Report over every replica's records shipped to this Redis (`redis://…` or `redis+sentinel://…`), each
    /// replica's stream verified, instead of the config's own audit folder.
    #[arg(long)]
    redis: Option<String>,
    /// With `--redis`: the streams' key pattern (`[audit] redis_stream`).
    #[arg(long, default_value = penghubung_audit::shipped::DEFAULT_PATTERN, requires = "redis")]
    stream_pattern: String,
    /// With `--redis`: an audit public key (PEM), once per replica key. Default: the config's
    /// `[audit] public_key_file`.
    #[arg(long, requires = "redis")]
    key: Vec<PathBuf>,
}

/// The store's OPD documents (names and allocations); none when the store cannot be read.
pub fn opd_documents(config: &Config) -> Vec<OpdDoc> {
    let Ok(store) = penghubung_snapshot::store::open(config) else { return Vec::new() };
    let (documents, _) = load_documents(&*store);
    documents.opds.into_iter().map(|(_, doc)| doc).collect()
}

/// Runs `penghubung report usage`; returns the exit code.
pub fn usage(args: &UsageArgs) -> i32 {
    let fail = |message: String| {
        eprintln!("penghubung report usage: {message}");
        2
    };
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(problems) => return crate::check::report(&problems),
        },
        None => Config::embedded_default(&std::env::current_dir().unwrap_or_default()),
    };
    let offset: UtcOffset = match args.utc_offset.parse() {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let month: Month = match &args.month {
        Some(text) => match text.parse() {
            Ok(m) => m,
            Err(e) => return fail(e),
        },
        None => Month::of(std::time::SystemTime::now(), offset),
    };
    let format: Format = match args.format.parse() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let query = Query { month, opd: args.opd.as_deref(), offset };
    let made = match &args.redis {
        Some(url) => {
            let key_files = if args.key.is_empty() {
                vec![config.resolve(&config.audit.public_key_file)]
            } else {
                args.key.clone()
            };
            match crate::shipped::read_keys(&key_files) {
                Ok(keys) => penghubung_report::usage_of_replicas(
                    url,
                    &args.stream_pattern,
                    &keys,
                    query,
                    &opd_documents(&config),
                ),
                Err(e) => Err(e),
            }
        }
        None => penghubung_report::usage_of_config(&config, query, &opd_documents(&config)).map_err(|e| e.to_string()),
    };
    let report = match made {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let text = penghubung_report::render(&report, format);
    let written = match &args.out {
        Some(path) => std::fs::write(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout().lock().write_all(text.as_bytes()).map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
        return fail(e);
    }
    if report.verification.verified {
        0
    } else {
        eprintln!(
            "penghubung report usage: {} segment(s) or replica stream(s) of the audit trail did not verify; flagged in \
             the report and not counted",
            report.verification.flagged.len()
        );
        EXIT_UNVERIFIED
    }
}
