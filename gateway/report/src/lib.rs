//! Per-OPD monthly usage from the audit trail (Perbup Lampung Timur 16/2023 Pasal 21: each OPD's use of the
//! connection is monitored and evaluated every month). The audit trail is the tamper-evident record, so the
//! report is computed from it alone: [`usage`] streams the segments of the month ([`trail`]), verifying each
//! one's chain and signatures as it reads it, counts every exchange by caller OPD and by provider OPD
//! ([`tally`]; latency quantiles from a fixed log-bucket histogram, [`sketch`]), and builds a [`UsageReport`]
//! ([`model`]) that renders as text, CSV, JSON or a self-contained HTML page with SVG charts ([`mod@render`]).
//!
//! Memory grows with the number of OPDs, services, clients and error codes, never with the number of records;
//! each record is read from its line without building a JSON tree ([`mod@line`]: in the writer's member order
//! when it is laid out so, else member by member with [`scan`]). With several replicas,
//! [`replicas`] reports over every replica's records shipped to Redis, each replica's stream verified. `penghubung report usage` and the
//! admin API (`GET /api/v1/reports/usage`) call [`usage`] and [`render::render`]; so can the web console.
#![forbid(unsafe_code)]

pub mod line;
pub mod model;
pub mod month;
pub mod render;
pub mod replicas;
pub mod scan;
pub mod sketch;
pub mod tally;
pub mod trail;

use std::path::Path;

use penghubung_audit::keys::PublicKey;
use penghubung_types::config::Config;
use penghubung_types::documents::OpdDoc;

pub use model::UsageReport;
pub use month::{Month, UtcOffset};
pub use render::{bandwidth_chart_svg, daily_chart_svg, render, render_html, Format};
pub use replicas::usage_of_replicas;

/// What went wrong before a report could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("audit trail {dir}: {source}")]
    Trail { dir: String, source: std::io::Error },
    #[error("the audit trail is off ([audit] enabled = false): there is nothing to report from")]
    AuditOff,
    #[error("audit public key {path}: {message}")]
    Key { path: String, message: String },
}

/// What to report on.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub month: Month,
    /// Only the exchanges this OPD made or served.
    pub opd: Option<&'a str>,
    /// The local time days and months are counted in (WIB by default).
    pub offset: UtcOffset,
}

impl Query<'_> {
    pub fn month(month: Month) -> Query<'static> {
        Query { month, opd: None, offset: UtcOffset::default() }
    }
}

/// The usage report of `query.month` from the audit trail in `audit_dir`, verified with `key`. `opds` gives
/// the OPDs' names and `[bandwidth]` allocations (the store's OPD documents).
pub fn usage(audit_dir: &Path, key: &PublicKey, query: Query<'_>, opds: &[OpdDoc]) -> Result<UsageReport, ReportError> {
    let scanned = trail::scan(audit_dir, key, query.month, query.offset, query.opd)
        .map_err(|source| ReportError::Trail { dir: audit_dir.display().to_string(), source })?;
    Ok(model::build(&scanned.tally, scanned.verification, query.month, query.offset, query.opd, opds))
}

/// [`usage`] of the audit trail a config names (`[audit] dir`, verified with `[audit] public_key_file`).
pub fn usage_of_config(config: &Config, query: Query<'_>, opds: &[OpdDoc]) -> Result<UsageReport, ReportError> {
    if !config.audit.enabled {
        return Err(ReportError::AuditOff);
    }
    let path = config.resolve(&config.audit.public_key_file);
    let key = PublicKey::read(&path)
        .map_err(|e| ReportError::Key { path: path.display().to_string(), message: e.to_string() })?;
    usage(&config.resolve(&config.audit.dir), &key, query, opds)
}
