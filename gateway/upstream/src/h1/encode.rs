//! Writing a request to an HTTP/1.1 upstream: the head in one buffer (request line, the headers as the gateway
//! left them, then the gateway's own framing, [`Framing`] of the shared codec), and the body framed by
//! `Content-Length` when its size is known, else chunked.

use http::header::{HeaderValue, CONTENT_LENGTH, HOST};
use http::request;

use crate::headers::{Forwarding, NewTrace};
use penghubung_http1::encode::Framing;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::ForwardedFor;
    use http::{Method, Request};

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
}
