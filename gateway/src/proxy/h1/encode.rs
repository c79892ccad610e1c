//! Writing a request to an HTTP/1.1 upstream: the head in one buffer (request line, the headers as the gateway
//! left them, then the gateway's own framing), and the body framed by `Content-Length` when its size is known,
//! else chunked.

use http::header::{HeaderValue, CONTENT_LENGTH, HOST};
use http::{request, Method};

use crate::proxy::headers::{Forwarding, NewTrace};
use http_body::SizeHint;

/// How a body is delimited on the wire (requests to upstreams, responses to HTTP/1.1 callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n` (n may be 0), then exactly n bytes.
    Length(u64),
    /// No body and no `Content-Length` (GET, HEAD, ...; `204` and `304` responses).
    None,
    /// `Transfer-Encoding: chunked`: the size is not known in advance.
    Chunked,
}

impl Framing {
    /// Appends the field that announces this framing (`content-length: n` or `transfer-encoding: chunked`).
    pub fn write_field(self, out: &mut Vec<u8>) {
        match self {
            Framing::Length(n) => {
                out.extend_from_slice(b"content-length: ");
                decimal(n, out);
                out.extend_from_slice(b"\r\n");
            }
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::None => {}
        }
    }

    /// The framing for a request whose body has `hint` and ends now (`empty`).
    pub fn for_request(parts: &request::Parts, empty: bool, hint: &SizeHint) -> Self {
        if empty {
            // Methods whose requests usually carry a body say "none" explicitly, as does a caller who said so.
            let usual_body = !matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE | Method::CONNECT
            );
            return if usual_body || parts.headers.contains_key(CONTENT_LENGTH) {
                Framing::Length(0)
            } else {
                Framing::None
            };
        }
        match hint.exact() {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    }
}

/// What the gateway itself puts in a request head besides the caller's method and headers.
#[derive(Clone, Copy, Debug)]
pub struct GatewayFields<'a> {
    /// The path after `/{opd}/{service}/v{major}` as the caller sent it (already checked; may be empty), which
    /// follows the endpoint's base path.
    pub rest: &'a str,
    /// The caller's query, passed on as sent.
    pub query: Option<&'a str>,
    pub forwarding: Forwarding<'a>,
    /// The trace the gateway started (the caller sent no valid `traceparent`), written as `traceparent`.
    pub trace: Option<&'a NewTrace>,
}

/// Appends the request head to `out`: `METHOD {base}{rest}?{query} HTTP/1.1`, the endpoint's `Host`, the
/// caller's headers except those the gateway sets (`Host`, the forwarding fields, `Content-Length`; hop-by-hop
/// headers, `Transfer-Encoding` among them, were removed before), the forwarding fields, a started trace, the
/// framing header, and the blank line.
pub fn head(
    parts: &request::Parts,
    base_path: &str,
    host: &HeaderValue,
    gateway: &GatewayFields<'_>,
    framing: Framing,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(base_path.as_bytes());
    out.extend_from_slice(if gateway.rest.is_empty() { b"/" } else { gateway.rest.as_bytes() });
    if let Some(query) = gateway.query {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH || name == HOST || Forwarding::replaces(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    gateway.forwarding.write(out);
    if let Some(trace) = gateway.trace {
        out.extend_from_slice(b"traceparent: ");
        out.extend_from_slice(trace.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    framing.write_field(out);
    out.extend_from_slice(b"\r\n");
}

/// Appends the line that opens a chunk of `len` bytes.
pub fn chunk_start(len: usize, out: &mut Vec<u8>) {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(len >> (shift * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// What ends a chunk.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::headers::ForwardedFor;
    use http::Request;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn heads_carry_the_gateway_fields_and_framing_only() {
        let connection = ForwardedFor::new("10.0.0.7:4000".parse().unwrap(), "https");
        let upstream = HeaderValue::from_static("up:80");
        let caller_host = HeaderValue::from_static("gw.local");
        let forwarding = Forwarding::new(&connection, Some(&caller_host));
        let gateway = GatewayFields { rest: "/b", query: Some("x=1"), forwarding, trace: None };
        let p = parts(
            Method::POST,
            "/dinkes/pasien/v1/b?x=1",
            &[
                ("host", "gw.local"),
                ("content-length", "999"),
                ("x-y", "z"),
                ("x-forwarded-for", "6.6.6.6"),
                ("forwarded", "for=6.6.6.6"),
            ],
        );
        let mut out = Vec::new();
        head(&p, "/a", &upstream, &gateway, Framing::Length(12), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /a/b?x=1 HTTP/1.1\r\nhost: up:80\r\nx-y: z\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: https\r\n\
             x-forwarded-host: gw.local\r\nforwarded: for=10.0.0.7;proto=https;host=gw.local\r\ncontent-length: 12\r\n\r\n"
        );
        let trace = NewTrace::generate();
        let forwarding = Forwarding::new(&connection, None);
        let gateway = GatewayFields { rest: "", query: None, forwarding, trace: Some(&trace) };
        let mut out = Vec::new();
        head(&parts(Method::PUT, "/dinkes/pasien/v1", &[]), "", &upstream, &gateway, Framing::Chunked, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "PUT / HTTP/1.1\r\nhost: up:80\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: https\r\n\
                 forwarded: for=10.0.0.7;proto=https\r\ntraceparent: {}\r\ntransfer-encoding: chunked\r\n\r\n",
                std::str::from_utf8(trace.as_bytes()).unwrap()
            )
        );
    }

    #[test]
    fn empty_bodies_are_framed_by_method() {
        let exact = SizeHint::with_exact(0);
        assert_eq!(Framing::for_request(&parts(Method::GET, "/", &[]), true, &exact), Framing::None);
        assert_eq!(Framing::for_request(&parts(Method::POST, "/", &[]), true, &exact), Framing::Length(0));
        let declared = parts(Method::DELETE, "/", &[("content-length", "0")]);
        assert_eq!(Framing::for_request(&declared, true, &exact), Framing::Length(0));
        assert_eq!(Framing::for_request(&parts(Method::POST, "/", &[]), false, &SizeHint::new()), Framing::Chunked);
        let seven = SizeHint::with_exact(7);
        assert_eq!(Framing::for_request(&parts(Method::POST, "/", &[]), false, &seven), Framing::Length(7));
    }

    #[test]
    fn numbers_are_written_exactly() {
        for (n, text) in [(0u64, "0"), (7, "7"), (10, "10"), (u64::MAX, "18446744073709551615")] {
            let mut out = Vec::new();
            decimal(n, &mut out);
            assert_eq!(out, text.as_bytes());
        }
        for (n, text) in [(0usize, "0\r\n"), (1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (0x1234ab, "1234ab\r\n")] {
            let mut out = Vec::new();
            chunk_start(n, &mut out);
            assert_eq!(out, text.as_bytes());
        }
    }
}
