//! `penghubung audit search DIR`: the records of a local log that match every given filter, printed as the
//! JSON lines they are. `--nik` takes an identifier and the Dinas's secret and looks for its keyed hash: the
//! log never holds the identifier itself.

use std::io::Write;
use std::path::Path;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::nik::keyed;
use super::writer::segment_files;

/// What to look for; every given filter must match.
#[derive(Debug, Default)]
pub struct Query {
    /// Client id (`opd/app`).
    pub client: Option<String>,
    /// Service key (`opd/name/vN`) or its prefix (`opd/name`, `opd`).
    pub service: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// An error code (`policy.no_grant`), or `allow` / `deny` / `error` for the decision.
    pub code: Option<String>,
    /// Keyed hash of a NIK.
    pub nik_hash: Option<String>,
    /// Also print change records (only when no exchange filter is given).
    pub changes: bool,
    /// Print only security events (refused TLS handshakes). They are also printed when `code` is a `tls.*`
    /// code; client, service and NIK filters match no security event.
    pub security: bool,
}

impl Query {
    /// Sets the NIK filter from the identifier and the HMAC secret.
    pub fn with_nik(mut self, nik: &str, key: &ring::hmac::Key) -> Self {
        self.nik_hash = Some(keyed(key, nik.as_bytes()));
        self
    }

    fn exchange_filters(&self) -> bool {
        self.client.is_some() || self.service.is_some() || self.code.is_some() || self.nik_hash.is_some()
    }

    fn matches(&self, record: &serde_json::Value) -> bool {
        let kind = record["kind"].as_str().unwrap_or_default();
        if self.security && kind != "security" {
            return false;
        }
        match kind {
            "exchange" => {}
            "change" if self.changes && !self.exchange_filters() => {}
            "security"
                if (self.security || self.code.as_deref().is_some_and(|c| c.starts_with("tls.")))
                    && self.client.is_none()
                    && self.service.is_none()
                    && self.nik_hash.is_none() => {}
            _ => return false,
        }
        let text = |key: &str| record[key].as_str().unwrap_or_default();
        if self.client.as_deref().is_some_and(|c| text("client") != c) {
            return false;
        }
        if let Some(service) = &self.service {
            let s = text("service");
            if !(s == service || s.strip_prefix(service.as_str()).is_some_and(|rest| rest.starts_with('/'))) {
                return false;
            }
        }
        if let Some(code) = &self.code {
            if text("code") != code && text("decision") != code {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Ok(time) = OffsetDateTime::parse(text("time"), &Rfc3339) else { return false };
            if self.since.is_some_and(|s| time < s) || self.until.is_some_and(|u| time > u) {
                return false;
            }
        }
        if let Some(hash) = &self.nik_hash {
            let found = record["nik"].as_array().is_some_and(|list| list.iter().any(|h| h.as_str() == Some(hash)));
            if !found {
                return false;
            }
        }
        true
    }
}

/// Parses an RFC 3339 time or a date (`2026-11-26`, midnight UTC).
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
        .map_err(|_| format!("`{text}` is not an RFC 3339 time (2026-11-26T08:00:00+07:00) or a date (2026-11-26)"))
}

/// Writes the matching lines to `out`; returns how many matched.
pub fn search(dir: &Path, query: &Query, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut matched = 0;
    for path in segment_files(dir)? {
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if query.matches(&record) {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                matched += 1;
            }
        }
    }
    Ok(matched)
}
