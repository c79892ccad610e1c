//! What an audit record says. Three kinds come from outside the writer: [`ExchangeRecord`] (one per request,
//! allowed or denied), [`ChangeRecord`] (one per document added, changed or removed) and [`SecurityRecord`]
//! (a refused TLS handshake, rate-limited by [`super::security`]). The writer adds two of
//! its own: `segment` (the first line of every segment file) and `checkpoint` (signed). The line format is
//! described by `schemas/audit/record.schema.json`; the members common to all kinds (`seq`, `prev`, `kind`,
//! `hash`) are written by the writer around the members written here. Every member a caller can influence
//! (request id, trace id, method, purpose) is written through the sanitiser
//! ([`sanitise`]), keyed with the audit trail's NIK secret; so is every line shipped to Redis,
//! since the shipper sends these lines byte for byte.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderValue, Method};
use ring::hmac;
use serde::Serialize;

use super::chain::push_hex_bytes;
use super::sanitise;
use penghubung_types::documents::AuditDurability;

/// A record handed to the writer.
#[derive(Debug)]
pub enum Record {
    Exchange(Box<ExchangeRecord>),
    Change(Box<ChangeRecord>),
    Security(Box<SecurityRecord>),
}

/// A security event: a TLS handshake the gateway refused, or the count of those not written one by one.
#[derive(Debug)]
pub struct SecurityRecord {
    pub time: SystemTime,
    /// `tls.no_certificate`, `tls.unknown_ca`, ... ([`super::security::TlsRefusal::code`]).
    pub code: &'static str,
    /// The peer's address (absent in a summary).
    pub peer: Option<std::net::SocketAddr>,
    /// A summary: how many refusals of this code were not written since when.
    pub suppressed: Option<(u64, SystemTime)>,
    /// A web console sign-in, failed sign-in or sign-out instead of a refused handshake.
    pub console: Option<ConsoleEvent>,
}

/// A web console event: `console.login` (allowed), `console.login_failed` and `console.login_locked` (denied,
/// with the reason), `console.logout` (allowed). Never the password or the TOTP code.
#[derive(Debug)]
pub struct ConsoleEvent {
    /// `console.login`, `console.login_failed`, `console.login_locked`, `console.logout`.
    pub event: &'static str,
    /// The operator id, or the username attempted (sanitised when written).
    pub who: String,
    /// Why a sign-in failed (`wrong_password`, `wrong_totp`, `unknown_user`, ...).
    pub reason: Option<&'static str>,
    /// `password` or `certificate`.
    pub method: &'static str,
}

impl SecurityRecord {
    /// A web console event from `peer` now.
    pub fn console(event: ConsoleEvent, peer: Option<std::net::SocketAddr>) -> SecurityRecord {
        SecurityRecord { time: SystemTime::now(), code: event.event, peer, suppressed: None, console: Some(event) }
    }
}

/// One exchange, as the gateway saw it. Built on the hot path from values it already holds (cheap clones);
/// formatted by the writer thread. Its `Debug` form is its sanitised members (keyed with the per-process key);
/// [`ExchangeRecord::logged`] writes them keyed with the audit secret.
#[derive(Clone)]
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

/// `allow` (forwarded), `deny` (refused by identity, policy or the audit itself) or `error` (anything else).
pub fn decision(code: Option<&str>) -> &'static str {
    match code {
        None => "allow",
        Some(c) if c.starts_with("policy.") || c.starts_with("identity.") || c.starts_with("audit.") => "deny",
        Some(_) => "error",
    }
}

/// RFC 3339 UTC with nanoseconds, always nine digits (so that times sort as text).
pub fn format_time(time: SystemTime) -> String {
    let mut out = Vec::with_capacity(30);
    push_time(&mut out, time);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`format_time`] of `time` to `out` (civil date from days since the epoch, no allocation).
pub fn push_time(out: &mut Vec<u8>, time: SystemTime) {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (secs, nanos) = (since.as_secs(), since.subsec_nanos());
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil for the proleptic Gregorian calendar (days >= 0 here).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, of_day / 3600, 2);
    out.push(b':');
    push_digits(out, of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, of_day % 60, 2);
    out.push(b'.');
    push_digits(out, u64::from(nanos), 9);
    out.push(b'Z');
}

/// `value` in decimal, zero-padded to `width` digits.
pub fn push_digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let (mut v, mut at) = (value, digits.len());
    while v > 0 {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let at = at.min(digits.len() - width);
    out.extend_from_slice(&digits[at..]);
}

/// Appends `value` as a JSON string (quoted; `"`, `\` and control characters escaped).
pub fn push_json_str(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut plain = 0;
    for (i, &b) in value.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&value[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&value[plain..]);
    out.push(b'"');
}

/// Members `,"key":value` appended to a record line.
struct Members<'a>(&'a mut Vec<u8>);

impl Members<'_> {
    /// A caller's value, through the sanitiser.
    fn clean_str(&mut self, key: &str, value: &str, nik_key: &hmac::Key) {
        self.str(key, &sanitise::clean(nik_key, value));
    }

    /// A caller's header value as text, through the sanitiser; left out when it is not visible ASCII.
    fn clean_header(&mut self, key: &str, value: &Option<HeaderValue>, nik_key: &hmac::Key) {
        if let Some(text) = value.as_ref().and_then(|v| sanitise::clean_header(nik_key, v)) {
            self.str(key, &text);
        }
    }

    fn key(&mut self, key: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.0, value.as_bytes());
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// A header value as text; left out when it is not visible ASCII (as the access log does).
    fn opt_header(&mut self, key: &str, value: &Option<HeaderValue>) {
        self.opt_str(key, value.as_ref().and_then(|v| v.to_str().ok()));
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        push_digits(self.0, value, 1);
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.0.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn digest(&mut self, key: &str, value: &Option<[u8; 32]>) {
        if let Some(digest) = value {
            self.key(key);
            self.0.push(b'"');
            push_hex_bytes(self.0, digest);
            self.0.push(b'"');
        }
    }

    fn time(&mut self, key: &str, value: SystemTime) {
        self.key(key);
        self.0.push(b'"');
        push_time(self.0, value);
        self.0.push(b'"');
    }
}

impl Record {
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Exchange(_) => "exchange",
            Record::Change(_) => "change",
            Record::Security(_) => "security",
        }
    }

    /// Appends `,"time":…` and the other members of this kind (no braces). Written by hand, member by member:
    /// this runs on the writer thread for every record, and serde's machinery cost it a quarter of its time.
    /// `nik_key` keys the sanitiser that the caller's values pass.
    pub fn write_members(&self, out: &mut Vec<u8>, nik_key: &hmac::Key) {
        let mut m = Members(out);
        match self {
            Record::Exchange(r) => {
                m.time("time", r.time);
                m.clean_str("request_id", r.request_id.to_str().unwrap_or("-"), nik_key);
                let trace_id = r.traceparent.as_ref().and_then(|t| t.to_str().ok()).and_then(|t| t.get(3..35));
                if let Some(trace_id) = trace_id {
                    m.clean_str("trace_id", trace_id, nik_key);
                }
                m.opt_header("client", &r.client);
                m.opt_header("opd", &r.opd);
                m.opt_str("service", r.service.as_deref());
                m.opt_str("operation", r.operation.as_deref());
                m.str("method", sanitise::method_label(&r.method));
                match (&r.path, &r.service) {
                    (Some(path), _) => m.str("path", path),
                    // A service without declared operations: its whole space.
                    (None, Some(service)) => {
                        m.key("path");
                        let mut whole = Vec::with_capacity(service.len() + 3);
                        whole.push(b'/');
                        whole.extend_from_slice(service.as_bytes());
                        whole.extend_from_slice(b"/*");
                        push_json_str(m.0, &whole);
                    }
                    (None, None) => {}
                }
                m.clean_header("purpose", &r.purpose, nik_key);
                m.str("decision", decision(r.code));
                m.opt_str("code", r.code);
                m.num("status", u64::from(r.status));
                m.num("bytes_in", r.bytes_in);
                m.num("bytes_out", r.bytes_out);
                m.num("latency_us", r.latency_us);
                m.opt_str("upstream", r.upstream.as_deref());
                m.digest("request_sha256", &r.request_sha256);
                m.digest("response_sha256", &r.response_sha256);
                m.opt_header("withheld", &r.withheld);
                if !r.nik.is_empty() {
                    m.key("nik");
                    m.0.push(b'[');
                    for (i, keyed) in r.nik.iter().enumerate() {
                        if i > 0 {
                            m.0.push(b',');
                        }
                        push_json_str(m.0, keyed.as_bytes());
                    }
                    m.0.push(b']');
                }
                if r.nik_overflow {
                    m.bool("nik_overflow", true);
                }
                m.bool("complete", r.complete);
                m.str("durability", durability_name(r.durability));
            }
            Record::Change(r) => {
                m.time("time", r.time);
                m.str("who", &r.who);
                m.str("document", &r.document);
                m.str("action", r.action.name());
                m.digest("before", &r.before);
                m.digest("after", &r.after);
                m.opt_str("reason", r.reason.as_deref());
                m.num("generation", r.generation);
            }
            Record::Security(r) => {
                m.time("time", r.time);
                match &r.console {
                    Some(console) => {
                        let allowed = matches!(console.event, "console.login" | "console.logout");
                        m.str("event", console.event);
                        m.str("decision", if allowed { "allow" } else { "deny" });
                        m.str("code", r.code);
                        m.clean_str("who", &console.who, nik_key);
                        m.str("method", console.method);
                        m.opt_str("reason", console.reason);
                    }
                    None => {
                        m.str("event", "tls.handshake_refused");
                        m.str("decision", "deny");
                        m.str("code", r.code);
                    }
                }
                if let Some(peer) = r.peer {
                    m.str("peer", &peer.to_string());
                }
                if let Some((count, since)) = r.suppressed {
                    m.num("suppressed", count);
                    m.time("since", since);
                }
            }
        }
    }
}

impl ExchangeRecord {
    /// The record's members as a log may show them (a record that could not be queued is logged instead):
    /// `{"time":…}`, the caller's values sanitised with `nik_key`.
    pub fn logged<'a>(&'a self, nik_key: &'a hmac::Key) -> impl std::fmt::Display + 'a {
        struct Logged<'a>(&'a ExchangeRecord, &'a hmac::Key);
        impl std::fmt::Display for Logged<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = Vec::with_capacity(512);
                Record::Exchange(Box::new(self.0.clone())).write_members(&mut out, self.1);
                // The members start with a comma: it becomes the opening brace.
                if let Some(first) = out.first_mut() {
                    *first = b'{';
                }
                out.push(b'}');
                f.write_str(&String::from_utf8_lossy(&out))
            }
        }
        Logged(self, nik_key)
    }
}

impl std::fmt::Debug for ExchangeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExchangeRecord {}", self.logged(sanitise::process_key()))
    }
}

/// How a durability is written in a record.
fn durability_name(durability: AuditDurability) -> &'static str {
    match durability {
        AuditDurability::Sync => "sync",
        AuditDurability::Async => "async",
    }
}

impl ChangeAction {
    /// How the action is written in a record.
    pub fn name(self) -> &'static str {
        match self {
            ChangeAction::Loaded => "loaded",
            ChangeAction::Added => "added",
            ChangeAction::Changed => "changed",
            ChangeAction::Removed => "removed",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn times_match_rfc3339_with_nine_digits() {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        for secs in [0u64, 951_782_400, 1_709_164_799, 1_795_651_200, 4_102_444_799, 253_402_300_799] {
            for nanos in [0u32, 1, 120_000_000, 999_999_999] {
                let at = UNIX_EPOCH + Duration::new(secs, nanos);
                let text = format_time(at);
                assert_eq!(text.len(), 30, "{text}");
                let parsed = time::OffsetDateTime::parse(&text, rfc3339).unwrap();
                assert_eq!(parsed, time::OffsetDateTime::from(at), "{text}");
            }
        }
        assert_eq!(format_time(UNIX_EPOCH + Duration::new(1_795_651_200, 5)), "2026-11-26T00:00:00.000000005Z");
    }

    #[test]
    fn the_callers_values_are_written_through_the_sanitiser() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"audit nik secret");
        let nik = "3201010101010001";
        let record = ExchangeRecord {
            time: SystemTime::UNIX_EPOCH,
            request_id: HeaderValue::from_str(&format!("id-{nik}")).unwrap(),
            traceparent: Some(HeaderValue::from_str(&format!("00-aaaa{nik}aaaaaaaaaaaa-00f067aa0ba902b7-01")).unwrap()),
            client: None,
            opd: None,
            service: None,
            operation: None,
            method: Method::from_bytes(nik.as_bytes()).unwrap(),
            path: None,
            purpose: Some(HeaderValue::from_str(&format!("cek-{}", "3201-0101-0101-0001")).unwrap()),
            code: Some("request.method_not_implemented"),
            status: 501,
            bytes_in: 0,
            bytes_out: 0,
            latency_us: 0,
            upstream: None,
            request_sha256: None,
            response_sha256: None,
            withheld: None,
            nik: Vec::new(),
            nik_overflow: false,
            complete: true,
            durability: AuditDurability::Async,
        };
        let tag = format!("nik:{}", &crate::nik::keyed(&key, nik.as_bytes())[..12]);
        let mut line = Vec::new();
        Record::Exchange(Box::new(record.clone())).write_members(&mut line, &key);
        let line = String::from_utf8(line).unwrap();
        for text in [line.clone(), record.logged(&key).to_string(), format!("{record:?}")] {
            assert!(!sanitise::holds_nik_shape(text.as_bytes()), "{text}");
            assert!(text.contains("\"method\":\"-\""), "{text}");
        }
        let members: serde_json::Value = serde_json::from_str(&format!("{{{}}}", &line[1..])).unwrap();
        assert_eq!(members["request_id"], format!("id-{tag}"));
        assert_eq!(members["trace_id"], format!("aaaa{tag}aaaaaaaaaaaa"));
        assert_eq!(members["purpose"], format!("cek-{tag}"));
    }

    #[test]
    fn strings_are_escaped_as_json() {
        for text in ["plain", "quote \" and \\ backslash", "tab\tnew\nline\r", "bell\u{7} del\u{7f}", "NIK ✓ ü"] {
            let mut out = Vec::new();
            push_json_str(&mut out, text.as_bytes());
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }
}
