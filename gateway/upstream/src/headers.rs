//! Header rules at the trust boundary: hop-by-hop headers are removed both ways, every `X-Penghubung-*` header
//! from a caller is dropped (identity is never taken from a header), and so is every caller header whose name
//! contains `_` (CGI/WSGI-style backends fold `X_Penghubung_Client` onto `X-Penghubung-Client`) and every header
//! backends commonly trust to override the client address, the URL or the method ([`OVERRIDE_HEADERS`]), unless
//! the service lists it in `caller_headers` (never one the gateway controls, under any spelling);
//! `X-Forwarded-*` and `Forwarded` are *set*
//! (not appended: the gateway only vouches for what it saw), `X-Request-Id` is kept when well-formed and
//! generated otherwise, and W3C `traceparent` is passed on (or started when absent or malformed). Neither may
//! hold a NIK-shaped run ([`penghubung_types::nik_shape`]): both end up in the access log and the audit
//! record.

use std::net::SocketAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST};

pub use penghubung_http1::is_hop_by_hop;
use penghubung_types::nik_shape::holds_nik_shape;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// The calling client's id (`{opd}/{app}`), set by the gateway from the verified certificate.
pub const X_PENGHUBUNG_CLIENT: HeaderName = HeaderName::from_static("x-penghubung-client");
/// The calling client's OPD.
pub const X_PENGHUBUNG_OPD: HeaderName = HeaderName::from_static("x-penghubung-opd");
/// The declared purpose of use, validated by the policy and forwarded (the caller's own header of that name is
/// read by the policy before the scrub; what the upstream sees is the gateway's copy).
pub const X_PENGHUBUNG_PURPOSE: HeaderName = HeaderName::from_static("x-penghubung-purpose");
/// Prefix of the headers only the gateway may set.
pub const GATEWAY_PREFIX: &str = "x-penghubung-";

fn is_gateway_header(name: &HeaderName) -> bool {
    name.as_str().starts_with(GATEWAY_PREFIX)
}

/// Headers that backends commonly trust to override the client's address, the URL or the method. A caller's are
/// removed unless the service lists them in `caller_headers`.
pub const OVERRIDE_HEADERS: [&str; 10] = [
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-method-override",
];

/// Headers the gateway sets, removes or frames itself, besides the hop-by-hop ones and `X-Penghubung-*`.
const CONTROLLED: [&str; 10] = [
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
    "traceparent",
    "tracestate",
    "accept-encoding",
];

/// Whether a header named `name` (any case, `_` read as `-`) is one the gateway controls: hop-by-hop,
/// `X-Penghubung-*`, the forwarding fields, framing, the request id and the trace. A caller never sets one of
/// these under any spelling, and no service may ask for one in `caller_headers`.
pub fn is_gateway_controlled(name: &str) -> bool {
    let folded: String =
        name.bytes().map(|b| if b == b'_' { '-' } else { char::from(b.to_ascii_lowercase()) }).collect();
    folded.starts_with(GATEWAY_PREFIX)
        || CONTROLLED.contains(&folded.as_str())
        || HeaderName::from_bytes(folded.as_bytes()).is_ok_and(|folded| is_hop_by_hop(&folded))
}

/// Whether a caller's header is removed before the request goes upstream (besides those `Connection` names):
/// hop-by-hop, `X-Penghubung-*`, a name with `_` (always when it folds onto a controlled name, otherwise unless
/// `allowed`), and the [`OVERRIDE_HEADERS`] unless `allowed`.
fn is_refused_from_caller(name: &HeaderName, allowed: &[HeaderName]) -> bool {
    if is_hop_by_hop(name) || is_gateway_header(name) {
        return true;
    }
    let text = name.as_str();
    if text.as_bytes().contains(&b'_') {
        return is_gateway_controlled(text) || !allowed.contains(name);
    }
    // Every override header starts with `x-` or `true-`: most names are passed over at the first byte.
    matches!(text.as_bytes().first(), Some(b'x' | b't')) && OVERRIDE_HEADERS.contains(&text) && !allowed.contains(name)
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those named in `Connection`. One pass over the
/// names; nothing is removed (or hashed) when none is present, which is the common case.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    remove_matching(headers, is_hop_by_hop);
}

/// Removes hop-by-hop headers and every header a caller may not send upstream (`X-Penghubung-*`, names with `_`,
/// the [`OVERRIDE_HEADERS`]) except those the service lists in `allowed` (its `caller_headers`), in one pass.
pub fn scrub_request(headers: &mut HeaderMap, allowed: &[HeaderName]) {
    remove_matching(headers, |name| is_refused_from_caller(name, allowed));
}

fn remove_matching(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    if !headers.keys().any(&doomed) {
        return;
    }
    let mut names: Vec<HeaderName> = headers.keys().filter(|k| doomed(k)).cloned().collect();
    names.extend(
        headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok()),
    );
    for name in names {
        headers.remove(name);
    }
}

/// The forwarding facts of one connection, computed once when it is accepted.
#[derive(Clone, Debug)]
pub struct ForwardedFor {
    /// `X-Forwarded-For`: the peer's IP.
    ip: HeaderValue,
    /// `Forwarded` without the host: `for=10.1.2.3;proto=https`.
    base: HeaderValue,
    proto: &'static str,
}

impl ForwardedFor {
    pub fn new(peer: SocketAddr, proto: &'static str) -> Self {
        let ip = peer.ip();
        let base =
            if ip.is_ipv6() { format!("for=\"[{ip}]\";proto={proto}") } else { format!("for={ip};proto={proto}") };
        Self {
            ip: HeaderValue::try_from(ip.to_string()).expect("an IP address is a valid header value"),
            base: HeaderValue::try_from(base).expect("for/proto is a valid header value"),
            proto,
        }
    }
}

/// The forwarding fields of one request (`X-Forwarded-For/-Proto/-Host`, `Forwarded`), set from what the gateway
/// saw (the connection, and the Host or `:authority` the caller used) and replacing any the caller sent. They are
/// inserted into a header map ([`Forwarding::insert`], HTTP/2), or written straight into a request head by the
/// HTTP/1.1 client ([`Forwarding::write`]), which skips the caller's ([`Forwarding::replaces`]).
#[derive(Clone, Copy, Debug)]
pub struct Forwarding<'a> {
    connection: &'a ForwardedFor,
    /// The caller's host, when it is safe to repeat.
    host: Option<&'a HeaderValue>,
}

impl<'a> Forwarding<'a> {
    pub fn new(connection: &'a ForwardedFor, original_host: Option<&'a HeaderValue>) -> Self {
        Self { connection, host: original_host.filter(|h| is_token_safe(h.as_bytes())) }
    }

    /// Whether a caller's field of this name is replaced (and so must not be passed on).
    pub fn replaces(name: &HeaderName) -> bool {
        *name == FORWARDED || *name == X_FORWARDED_FOR || *name == X_FORWARDED_PROTO || *name == X_FORWARDED_HOST
    }

    pub fn insert(&self, headers: &mut HeaderMap) {
        headers.insert(X_FORWARDED_FOR, self.connection.ip.clone());
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(self.connection.proto));
        match self.host {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host.clone());
                let mut value = Vec::with_capacity(self.connection.base.len() + 6 + host.len());
                value.extend_from_slice(self.connection.base.as_bytes());
                value.extend_from_slice(b";host=");
                value.extend_from_slice(host.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    headers.insert(FORWARDED, v);
                }
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
                headers.insert(FORWARDED, self.connection.base.clone());
            }
        }
    }

    /// Appends the fields as HTTP/1.1 header lines (the same fields and values [`Forwarding::insert`] sets).
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut line = |name: &HeaderName, parts: &[&[u8]]| {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            for part in parts {
                out.extend_from_slice(part);
            }
            out.extend_from_slice(b"\r\n");
        };
        line(&X_FORWARDED_FOR, &[self.connection.ip.as_bytes()]);
        line(&X_FORWARDED_PROTO, &[self.connection.proto.as_bytes()]);
        match self.host {
            Some(host) => {
                line(&X_FORWARDED_HOST, &[host.as_bytes()]);
                line(&FORWARDED, &[self.connection.base.as_bytes(), b";host=", host.as_bytes()]);
            }
            None => line(&FORWARDED, &[self.connection.base.as_bytes()]),
        }
    }
}

fn is_token_safe(host: &[u8]) -> bool {
    !host.is_empty() && host.len() <= 255 && host.iter().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(b))
}

/// The caller's `X-Request-Id` when it is 1..=128 characters of `[A-Za-z0-9._-]` and cannot be mistaken for a
/// NIK (no NIK-shaped run, see [`penghubung_types::nik_shape`]: `3201010101010001` or `3201-0101-0101-0001`
/// are replaced), otherwise a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty()
            && b.len() <= 128
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
            && !holds_nik_shape(b)
        {
            return v.clone();
        }
    }
    new_request_id()
}

/// A new random request id, as 32 lower-case hex digits, never NIK-shaped by construction (see
/// `never_sixteen_digits`; no scan, no redraw).
pub fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; 32];
    hex_into(fastrand::u128(..), &mut buf);
    never_sixteen_digits(&mut buf);
    HeaderValue::from_bytes(&buf).expect("hex is a valid header value")
}

/// Makes the last of every 16 hex digits a letter (`a`–`f`), so that no run of 16 decimal digits, the shape of
/// a NIK, can appear in a generated id (about 1.4 bits of entropy fewer per 16 digits).
#[inline]
fn never_sixteen_digits(hex: &mut [u8]) {
    let mut at = 15;
    while at < hex.len() {
        let digit = hex[at];
        if digit <= b'9' {
            hex[at] = b'a' + (digit - b'0') % 6;
        }
        at += 16;
    }
}

/// Keeps a valid W3C `traceparent`; otherwise starts a new trace (version 00, sampled).
pub fn ensure_traceparent(headers: &mut HeaderMap) {
    if let Some(trace) = trace_to_start(headers) {
        headers.insert(TRACEPARENT, trace.to_header_value());
    }
}

/// The trace a forwarded request starts, when the caller's `traceparent` is missing or invalid (an invalid
/// one is removed from `headers`). `None`: the caller's valid field stays in `headers` and travels with them.
/// The HTTP/1.1 client writes a started trace straight into the upstream head (no header value built).
pub fn trace_to_start(headers: &mut HeaderMap) -> Option<NewTrace> {
    match headers.get(TRACEPARENT) {
        Some(v) if is_valid_traceparent(v.as_bytes()) => None,
        Some(_) => {
            headers.remove(TRACEPARENT);
            Some(NewTrace::generate())
        }
        None => Some(NewTrace::generate()),
    }
}

/// A new W3C trace context (version 00, random trace and parent ids, sampled), in its wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewTrace([u8; 55]);

impl NewTrace {
    pub fn generate() -> Self {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-01";
        // Ids are never all zero (the forced letters see to it) and never NIK-shaped (16 decimal digits in a
        // row), which a valid caller's trace may not be either.
        hex_into(fastrand::u128(..), &mut buf[3..35]);
        hex_into(u128::from(fastrand::u64(..)), &mut buf[36..52]);
        never_sixteen_digits(&mut buf[3..35]);
        never_sixteen_digits(&mut buf[36..52]);
        NewTrace(buf)
    }

    /// The `traceparent` value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.0).expect("hex is a valid header value")
    }
}

/// `version-traceid-parentid-flags`, lower-case hex, ids not all zero, version not `ff`, and neither id
/// NIK-shaped (a run of 16 decimal digits: such a trace is replaced by a new one, so that the trace id the
/// access log and the audit record keep can never be a NIK).
pub fn is_valid_traceparent(v: &[u8]) -> bool {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' || (v.len() > 55 && v[55] != b'-') {
        return false;
    }
    let hex = |s: &[u8]| s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let nonzero = |s: &[u8]| s.iter().any(|c| *c != b'0');
    hex(&v[0..2])
        && &v[0..2] != b"ff"
        && hex(&v[3..35])
        && nonzero(&v[3..35])
        && hex(&v[36..52])
        && nonzero(&v[36..52])
        && hex(&v[53..55])
        && (v[0..2] != *b"00" || v.len() == 55)
        && !holds_nik_shape(&v[3..35])
        && !holds_nik_shape(&v[36..52])
}

/// Writes the low `out.len() * 4` bits of `value` as lower-case hex (`out.len()` even, at most 32).
fn hex_into(value: u128, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.to_be_bytes();
    let skip = 16 - out.len() / 2;
    for (pair, byte) in out.chunks_exact_mut(2).zip(&bytes[skip..]) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// The host the caller addressed: `Host` for HTTP/1.1, the URI authority for HTTP/2.
pub fn original_host(headers: &HeaderMap, uri: &http::Uri) -> Option<HeaderValue> {
    headers.get(HOST).cloned().or_else(|| uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::UPGRADE;

    #[test]
    fn forwarding_fields_written_and_inserted_agree() {
        let v4 = ForwardedFor::new("10.1.2.3:5000".parse().unwrap(), "https");
        let v6 = ForwardedFor::new("[2001:db8::1]:5000".parse().unwrap(), "http");
        let host = HeaderValue::from_static("gw.example.go.id:8443");
        let unsafe_host = HeaderValue::from_static("a b");
        for (connection, original) in [(&v4, Some(&host)), (&v6, Some(&host)), (&v4, None), (&v6, Some(&unsafe_host))] {
            let forwarding = Forwarding::new(connection, original);
            let mut map = HeaderMap::new();
            map.insert(X_FORWARDED_HOST, HeaderValue::from_static("spoofed"));
            forwarding.insert(&mut map);
            let inserted: String =
                map.iter().map(|(k, v)| format!("{}: {}\r\n", k, v.to_str().unwrap())).collect::<Vec<_>>().join("");
            let mut written = Vec::new();
            forwarding.write(&mut written);
            let mut written: Vec<&str> = std::str::from_utf8(&written).unwrap().split_inclusive("\r\n").collect();
            let mut inserted: Vec<&str> = inserted.split_inclusive("\r\n").collect();
            written.sort();
            inserted.sort();
            assert_eq!(written, inserted);
            assert!(map.keys().all(Forwarding::replaces));
        }
    }

    #[test]
    fn hop_by_hop_names_are_told_apart_from_their_neighbours() {
        let hop = [
            "connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authenticate",
            "proxy-authorization",
            "keep-alive",
            "proxy-connection",
        ];
        for name in hop {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
            assert!(is_hop_by_hop(&HeaderName::from_bytes(name.to_uppercase().as_bytes()).unwrap()), "{name}");
        }
        let others = [
            "tk",
            "trailed",
            "upgrades",
            "connectio",
            "keep-alivf",
            "content-length",
            "x-forwarded-for",
            "proxy-connectiox",
            "transfer-encodinx",
            "www-authenticate",
            "authorization",
            "host",
            "date",
        ];
        for name in others {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
        let mut untouched = HeaderMap::new();
        untouched.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut untouched);
        assert_eq!(untouched.len(), 1);
    }

    #[test]
    fn caller_gateway_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("x-penghubung-client", HeaderValue::from_static("dinkes/forged"));
        h.insert("X-Penghubung-Opd", HeaderValue::from_static("dinkes"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        scrub_request(&mut h, &[]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn underscore_spellings_of_controlled_headers_never_pass() {
        let controlled = [
            "X_Penghubung_Client",
            "x_penghubung_opd",
            "X-Penghubung_Purpose",
            "X_Forwarded_For",
            "x_forwarded_host",
            "Transfer_Encoding",
            "Content_Length",
            "Keep_Alive",
            "Proxy_Authorization",
            "X_Forwarded_Proto",
            "X_Request_Id",
            "Accept_Encoding",
        ];
        // Even a service that lists them gets none of them.
        let listed: Vec<HeaderName> =
            controlled.iter().map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()).collect();
        for name in controlled {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("spoofed"));
            h.insert("x-kept", HeaderValue::from_static("1"));
            scrub_request(&mut h, &listed);
            assert!(is_gateway_controlled(name), "{name}");
            assert_eq!(h.len(), 1, "{name} passed");
        }
    }

    #[test]
    fn other_underscore_and_override_headers_pass_only_when_listed() {
        let names =
            ["x_custom_id", "api_key", "x-real-ip", "true-client-ip", "x-original-url", "x-http-method-override"];
        for name in names {
            let header = HeaderName::from_static(name);
            let mut h = HeaderMap::new();
            h.insert(header.clone(), HeaderValue::from_static("v"));
            scrub_request(&mut h, &[]);
            assert!(h.is_empty(), "{name} passed unlisted");
            h.insert(header.clone(), HeaderValue::from_static("v"));
            scrub_request(&mut h, std::slice::from_ref(&header));
            assert_eq!(h.len(), 1, "{name} dropped although listed");
        }
        for name in OVERRIDE_HEADERS {
            assert!(!is_gateway_controlled(name), "{name} may be listed");
        }
    }

    #[test]
    fn forwarded_headers_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        let host = HeaderValue::from_static("gw.example:8080");
        let connection = ForwardedFor::new("10.1.2.3:5555".parse().unwrap(), "http");
        Forwarding::new(&connection, Some(&host)).insert(&mut h);
        assert_eq!(h[X_FORWARDED_FOR], "10.1.2.3");
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_HOST], "gw.example:8080");
        assert_eq!(h[FORWARDED], "for=10.1.2.3;proto=http;host=gw.example:8080");
    }

    #[test]
    fn request_ids_are_kept_or_generated() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        let generated = request_id(&h);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, new_request_id());
    }

    #[test]
    fn request_ids_that_could_be_a_nik_are_replaced() {
        let mut h = HeaderMap::new();
        for kept in ["550e8400-e29b-41d4-a716-446655440000", "req.320101010101000", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"]
        {
            h.insert(X_REQUEST_ID, HeaderValue::from_static(kept));
            assert_eq!(request_id(&h), kept);
        }
        for nik_shaped in [
            "3201010101010001",
            "req-3201010101010001",
            "3201010101010001-x",
            "3201-0101-0101-0001",
            "3201.0101.0101.0001",
            "3201_0101_0101_0001",
            "13201010101010001999",
            "32010101-0101-0001-aaaa-aaaaaaaaaaaa",
        ] {
            h.insert(X_REQUEST_ID, HeaderValue::from_static(nik_shaped));
            let replaced = request_id(&h);
            assert_ne!(replaced, nik_shaped);
            assert_eq!(replaced.len(), 32);
        }
        for _ in 0..10_000 {
            assert!(!holds_nik_shape(new_request_id().as_bytes()));
        }
    }

    #[test]
    fn a_traceparent_whose_ids_could_be_a_nik_is_replaced() {
        for nik_shaped in [
            "00-32010101010100014bf92f3577b34da6-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da63201010101010001-00f067aa0ba902b7-01",
            "00-4bf92f35320101010101000177b34da6-00f067aa0ba902b7-01",
            "00-00000000000000003201010101010001-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-3201010101010001-01",
        ] {
            assert!(!is_valid_traceparent(nik_shaped.as_bytes()), "{nik_shaped}");
            let mut h = HeaderMap::new();
            h.insert(TRACEPARENT, HeaderValue::from_static(nik_shaped));
            let started = trace_to_start(&mut h).expect("replaced by a new trace");
            assert!(h.get(TRACEPARENT).is_none());
            assert!(!holds_nik_shape(&started.as_bytes()[3..35]));
        }
        // 15 digits in a row are kept.
        assert!(is_valid_traceparent(b"00-320101010101000a4bf92f3577b34da6-00f067aa0ba902b7-01"));
        for _ in 0..10_000 {
            let trace = NewTrace::generate();
            assert!(is_valid_traceparent(trace.as_bytes()));
        }
    }

    #[test]
    fn traceparent_is_kept_or_started() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(valid));
        ensure_traceparent(&mut h);
        assert_eq!(h[TRACEPARENT], valid);
        h.insert(TRACEPARENT, HeaderValue::from_static("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
        ensure_traceparent(&mut h);
        assert!(is_valid_traceparent(h[TRACEPARENT].as_bytes()));
        assert_ne!(h[TRACEPARENT], valid);
    }

    #[test]
    fn a_trace_is_started_only_without_a_valid_one() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(valid));
        assert_eq!(trace_to_start(&mut h), None);
        assert_eq!(h[TRACEPARENT], valid, "the caller's trace travels in the headers");
        h.insert(TRACEPARENT, HeaderValue::from_static("ff-garbage"));
        let started = trace_to_start(&mut h).expect("an invalid trace is replaced");
        assert!(h.get(TRACEPARENT).is_none(), "the invalid field is not passed on");
        assert!(is_valid_traceparent(started.as_bytes()));
        let other = trace_to_start(&mut HeaderMap::new()).expect("no trace: one is started");
        assert!(is_valid_traceparent(other.as_bytes()));
        assert_ne!(started, other);
        assert_eq!(started.to_header_value().as_bytes(), started.as_bytes());
    }
}
