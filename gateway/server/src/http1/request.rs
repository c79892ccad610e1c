//! Reading a caller's request head in place (`httparse`; header values share the received bytes). Only the
//! common, unambiguous case is taken: an HTTP/1.1 request without a body (no `Content-Length`, no
//! `Transfer-Encoding`), in origin form, not `HEAD` or `CONNECT`, without `Expect`, `Upgrade` or a `Connection`
//! other than `keep-alive`. Anything else (bodies, HTTP/1.0, the HTTP/2 preface, malformed or oversized heads)
//! is a [`NotTaken::Handoff`]: hyper serves the rest of that connection, with the exact behaviour it always had.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Request, Uri, Version};

use penghubung_http1::decode::{field_spans, FieldSpan, FieldSpans, MAX_HEADERS};
use penghubung_upstream::body::Inbound;

/// Why the read buffer holds no request this server takes.
#[derive(Debug)]
pub enum NotTaken {
    /// Not a whole head yet.
    Partial,
    /// Something this server leaves to hyper; the buffer is untouched.
    Handoff,
}

/// Parses the request head at the start of `buf`: a whole request head, now taken from the buffer, or why not. A
/// head still incomplete after `largest` bytes is handed off (hyper then answers it with the usual limits).
pub fn head(buf: &mut BytesMut, largest: usize) -> Result<Request<Inbound>, NotTaken> {
    if buf.is_empty() {
        return Err(NotTaken::Partial);
    }
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut parsed, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= largest => return Err(NotTaken::Partial),
        _ => return Err(NotTaken::Handoff),
    };
    let method = match Method::from_bytes(parsed.method.unwrap_or_default().as_bytes()) {
        Ok(method) if method != Method::HEAD && method != Method::CONNECT => method,
        _ => return Err(NotTaken::Handoff),
    };
    let target = parsed.path.unwrap_or_default();
    if parsed.version != Some(1) || !target.starts_with('/') {
        return Err(NotTaken::Handoff);
    }
    let base = buf.as_ptr() as usize;
    let target = (target.as_ptr() as usize - base, target.as_ptr() as usize - base + target.len());
    let mut spans = FieldSpans::new();
    field_spans(buf, parsed.headers, &mut spans);
    let bytes = buf.split_to(len).freeze();
    match build(&bytes, method, target, &spans) {
        Some(request) => Ok(request),
        None => {
            // Put the head back in front of what followed it: hyper reads it all again.
            let mut replay = BytesMut::with_capacity(bytes.len() + buf.len());
            replay.extend_from_slice(&bytes);
            replay.extend_from_slice(buf);
            *buf = replay;
            Err(NotTaken::Handoff)
        }
    }
}

/// The request, or `None` when a field or the target calls for a hand-off.
fn build(bytes: &Bytes, method: Method, target: (usize, usize), spans: &[FieldSpan]) -> Option<Request<Inbound>> {
    // Room for what the gateway adds (`x-request-id`, `traceparent`) without growing.
    let mut headers = HeaderMap::with_capacity(spans.len() + 4);
    for &(name_start, name_end, value_start, value_end) in spans {
        let name = HeaderName::from_bytes(&bytes[name_start as usize..name_end as usize]).ok()?;
        let value = HeaderValue::from_maybe_shared(bytes.slice(value_start as usize..value_end as usize)).ok()?;
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return None;
        }
        if name == CONNECTION && !value.as_bytes().eq_ignore_ascii_case(b"keep-alive") {
            return None;
        }
        headers.append(name, value);
    }
    let uri = Uri::from_maybe_shared(bytes.slice(target.0..target.1)).ok()?;
    let mut request = Request::new(Inbound::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Result<Request<Inbound>, NotTaken>, BytesMut) {
        let mut buf = BytesMut::from(text);
        (head(&mut buf, 1024), buf)
    }

    #[test]
    fn a_body_less_request_is_taken_and_what_follows_stays() {
        let (parsed, rest) = parse("GET /a/b/v1/x?q=1 HTTP/1.1\r\nHost: gw\r\nX-One: 1\r\n\r\nGET /next");
        let Ok(request) = parsed else { panic!("{parsed:?}") };
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/a/b/v1/x");
        assert_eq!(request.uri().query(), Some("q=1"));
        assert_eq!(request.headers()["host"], "gw");
        assert_eq!(request.headers()["x-one"], "1");
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn an_incomplete_head_waits_until_it_is_too_large() {
        assert!(matches!(parse("GET /a HTTP/1.1\r\nHost: gw\r\n").0, Err(NotTaken::Partial)));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(2000));
        let (parsed, rest) = parse(&long);
        assert!(matches!(parsed, Err(NotTaken::Handoff)));
        assert_eq!(rest.len(), long.len(), "nothing consumed");
    }

    #[test]
    fn anything_but_the_common_case_is_handed_to_hyper_untouched() {
        for text in [
            "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET /a HTTP/1.0\r\n\r\n",
            "HEAD /a HTTP/1.1\r\n\r\n",
            "CONNECT gw:443 HTTP/1.1\r\n\r\n",
            "GET http://gw/a HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "PUT /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET /a HTTP/1.1\r\nX: \x01\r\n\r\n",
        ] {
            let (parsed, rest) = parse(text);
            assert!(matches!(parsed, Err(NotTaken::Handoff)), "{text:?}: {parsed:?}");
            assert_eq!(&rest[..], text.as_bytes(), "{text:?}: the buffer is as it was");
        }
    }

    #[test]
    fn keep_alive_and_body_less_posts_are_taken() {
        let (parsed, _) = parse("POST /a HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n");
        let Ok(request) = parsed else { panic!("{parsed:?}") };
        assert_eq!(request.method(), Method::POST);
        assert!(http_body::Body::is_end_stream(request.body()));
    }
}
