//! What an audit record says. Two kinds come from outside the writer: [`ExchangeRecord`] (one per request,
//! allowed or denied) and [`ChangeRecord`] (one per document added, changed or removed). The writer adds two of
//! its own: `segment` (the first line of every segment file) and `checkpoint` (signed). The line format is
//! described by `schemas/audit/record.schema.json`; the members common to all kinds (`seq`, `prev`, `kind`,
//! `hash`) are written by the writer around the members written here.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderValue, Method};
use serde::Serialize;

use super::chain::hex;
use crate::store::documents::AuditDurability;

/// A record handed to the writer.
#[derive(Debug)]
pub enum Record {
    Exchange(Box<ExchangeRecord>),
    Change(Box<ChangeRecord>),
}

/// One exchange, as the gateway saw it. Built on the hot path from values it already holds (cheap clones);
/// formatted by the writer thread.
#[derive(Debug)]
pub struct ExchangeRecord {
    /// When the request arrived.
    pub time: SystemTime,
    pub request_id: HeaderValue,
    /// The W3C `traceparent` sent upstream (the trace id is taken from it).
    pub traceparent: Option<HeaderValue>,
    pub client: Option<HeaderValue>,
    pub opd: Option<HeaderValue>,
    /// `{opd}/{name}/v{n}`.
    pub service: Option<Arc<str>>,
    /// Operation id.
    pub operation: Option<Arc<str>>,
    pub method: Method,
    /// The operation's path template (`/pasien/{id}`), never the raw path: raw paths and queries carry NIK.
    /// `None` for a service without declared operations (written as `/{service}/*`).
    pub path: Option<Arc<str>>,
    pub purpose: Option<HeaderValue>,
    /// The error code, `None` when the request was forwarded and answered.
    pub code: Option<&'static str>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// From arrival to the end of the response body.
    pub latency_us: u64,
    pub upstream: Option<Arc<str>>,
    /// SHA-256 of the request body as forwarded (absent when the body did not reach its end).
    pub request_sha256: Option<[u8; 32]>,
    /// SHA-256 of the response body as sent to the caller (absent when the caller went away first).
    pub response_sha256: Option<[u8; 32]>,
    /// `X-Penghubung-Redacted`: fields withheld from the response.
    pub withheld: Option<HeaderValue>,
    /// Keyed hashes of the NIKs seen in the path, the query and the request body.
    pub nik: Vec<String>,
    /// More NIKs than were kept.
    pub nik_overflow: bool,
    /// The response body reached its end (false: the caller went away or the stream broke).
    pub complete: bool,
    pub durability: AuditDurability,
}

/// A change of one document.
#[derive(Debug)]
pub struct ChangeRecord {
    pub time: SystemTime,
    /// Who made the change (`file` when it came from the store directory without a known author).
    pub who: String,
    /// The document key, e.g. `services/dinkes/rekam-medis.toml`.
    pub document: String,
    pub action: ChangeAction,
    /// SHA-256 of the text before and after.
    pub before: Option<[u8; 32]>,
    pub after: Option<[u8; 32]>,
    pub reason: Option<String>,
    /// The snapshot generation that the change produced.
    pub generation: u64,
}

/// What happened to a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// Present when the gateway started (the baseline later changes are compared with).
    Loaded,
    Added,
    Changed,
    Removed,
}

#[derive(Serialize)]
struct ExchangeMembers<'a> {
    time: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opd: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'a str>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    nik: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    nik_overflow: bool,
    complete: bool,
    durability: AuditDurability,
}

#[derive(Serialize)]
struct ChangeMembers<'a> {
    time: &'a str,
    who: &'a str,
    document: &'a str,
    action: ChangeAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    generation: u64,
}

/// `allow` (forwarded), `deny` (refused by identity, policy or the audit itself) or `error` (anything else).
pub fn decision(code: Option<&str>) -> &'static str {
    match code {
        None => "allow",
        Some(c) if c.starts_with("policy.") || c.starts_with("identity.") || c.starts_with("audit.") => "deny",
        Some(_) => "error",
    }
}

/// RFC 3339 UTC with nanoseconds (sorts as text).
pub fn format_time(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

impl Record {
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Exchange(_) => "exchange",
            Record::Change(_) => "change",
        }
    }

    /// Appends `,"time":…` and the other members of this kind (no braces).
    pub fn write_members(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let written = match self {
            Record::Exchange(r) => {
                let time = format_time(r.time);
                let text = |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (client, opd, purpose, withheld) =
                    (text(&r.client), text(&r.opd), text(&r.purpose), text(&r.withheld));
                let trace_id =
                    r.traceparent.as_ref().and_then(|t| t.to_str().ok()).and_then(|t| t.get(3..35)).map(str::to_owned);
                // A service without declared operations: its whole space.
                let pass_through = r.path.is_none().then(|| r.service.as_ref().map(|s| format!("/{s}/*"))).flatten();
                let members = ExchangeMembers {
                    time: &time,
                    request_id: r.request_id.to_str().unwrap_or("-"),
                    trace_id: trace_id.as_deref(),
                    client: client.as_deref(),
                    opd: opd.as_deref(),
                    service: r.service.as_deref(),
                    operation: r.operation.as_deref(),
                    method: r.method.as_str(),
                    path: pass_through.as_deref().or(r.path.as_deref()),
                    purpose: purpose.as_deref(),
                    decision: decision(r.code),
                    code: r.code,
                    status: r.status,
                    bytes_in: r.bytes_in,
                    bytes_out: r.bytes_out,
                    latency_us: r.latency_us,
                    upstream: r.upstream.as_deref(),
                    request_sha256: r.request_sha256.map(|d| hex(&d)),
                    response_sha256: r.response_sha256.map(|d| hex(&d)),
                    withheld: withheld.as_deref(),
                    nik: &r.nik,
                    nik_overflow: r.nik_overflow,
                    complete: r.complete,
                    durability: r.durability,
                };
                serde_json::to_writer(&mut *out, &members)
            }
            Record::Change(r) => {
                let time = format_time(r.time);
                let members = ChangeMembers {
                    time: &time,
                    who: &r.who,
                    document: &r.document,
                    action: r.action,
                    before: r.before.map(|d| hex(&d)),
                    after: r.after.map(|d| hex(&d)),
                    reason: r.reason.as_deref(),
                    generation: r.generation,
                };
                serde_json::to_writer(&mut *out, &members)
            }
        };
        // `{…}` → `,…`: the members join the common ones the writer wrote before.
        if written.is_ok() && out.len() > start + 2 && out.last() == Some(&b'}') {
            out[start] = b',';
            out.pop();
        } else {
            out.truncate(start);
        }
    }
}
