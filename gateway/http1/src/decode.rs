//! Reading an HTTP/1.1 upstream's response: the head parsed in place (`httparse`; header values are slices of
//! the received bytes, not copies), interim `1xx` responses skipped, the body's framing decided as RFC 9112 §6.3
//! says, and the body decoded from the connection's read buffer (`Content-Length`, chunked, or until the
//! upstream closes). Whatever the upstream sends, the outcome is a response or a [`DecodeError`]: never a panic.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};

use super::is_hop_by_hop;

/// The largest response head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields accepted in a response head.
pub const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE_BYTES: usize = 4096;

/// What is wrong with what the upstream sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the response head is not HTTP/1.x: {0}")]
    Malformed(httparse::Error),
    #[error("the response head exceeds {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the response has more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("the response status {0} is not valid")]
    Status(u16),
    #[error("the upstream switched protocols, which the gateway does not forward")]
    Upgrade,
    #[error("the response header `{0}` is not valid")]
    Header(String),
    #[error("the response has an invalid Content-Length")]
    ContentLength,
    #[error("the chunked response body is malformed")]
    Chunk,
    #[error("the upstream closed the connection before the response body was complete")]
    Incomplete,
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// `n` more bytes.
    Length(u64),
    /// Chunked transfer coding, in the given state.
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    UntilClose,
    /// The body has ended.
    Done,
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank line (trailers are not forwarded).
    Trailers,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub response: Response<()>,
    pub decoder: Decoder,
    /// Whether the connection can carry another request once this body has been read.
    pub reusable: bool,
}

/// One step of body decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// More bytes must be read first.
    NeedMore,
    Done,
}

/// Parses the response head at the start of `buf`, skipping interim (`1xx`) responses. `Ok(None)`: the head is
/// not complete yet. On success the head's bytes are taken from `buf`, which then starts with the body.
pub fn head(buf: &mut BytesMut, head_request: bool) -> Result<Option<Head>, DecodeError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len =
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => return Err(DecodeError::HeadTooLarge),
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => return Err(DecodeError::TooManyHeaders),
                Err(e) => return Err(DecodeError::Malformed(e)),
            };
        if len > MAX_HEAD_BYTES {
            return Err(DecodeError::HeadTooLarge);
        }
        let code = parsed.code.unwrap_or_default();
        if code == 101 {
            return Err(DecodeError::Upgrade);
        }
        if (100..200).contains(&code) {
            buf.advance(len);
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| DecodeError::Status(code))?;
        let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        let mut spans = FieldSpans::new();
        field_spans(buf, parsed.headers, &mut spans);
        let bytes = buf.split_to(len).freeze();
        // Room for what the gateway adds on the way back (`x-request-id`, policy fields) without growing.
        let mut headers = HeaderMap::with_capacity(spans.len() + 4);
        let mut framing = Framing::default();
        for &(name_start, name_end, value_start, value_end) in &spans {
            let (name_start, name_end) = (name_start as usize, name_end as usize);
            let (value_start, value_end) = (value_start as usize, value_end as usize);
            let name = HeaderName::from_bytes(&bytes[name_start..name_end])
                .map_err(|_| DecodeError::Header(String::from_utf8_lossy(&bytes[name_start..name_end]).into()))?;
            let value = HeaderValue::from_maybe_shared(bytes.slice(value_start..value_end))
                .map_err(|_| DecodeError::Header(name.to_string()))?;
            framing.observe(&name, &value)?;
            // Hop-by-hop fields end here (they were only for this connection), except a `Connection` that names
            // further fields: it stays, so that the gateway's hop-by-hop rule removes those too.
            if !is_hop_by_hop(&name) {
                headers.append(name, value);
            } else if name == CONNECTION && framing.names_fields {
                framing.names_fields = false;
                headers.append(name, value);
            }
        }
        if framing.transfer_encoding.is_some() {
            // The transfer coding decides the length; a Content-Length beside it is wrong for the decoded body.
            headers.remove(CONTENT_LENGTH);
        }
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        let no_body = head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
        let (decoder, delimited) = framing.decoder(no_body);
        let keep_alive = match version {
            Version::HTTP_10 => framing.keep_alive,
            _ => !framing.close,
        };
        // Faulty framing (RFC 9112 §6.1, §6.3): both `Transfer-Encoding` and `Content-Length`, or a coding in an
        // HTTP/1.0 response. The body is read as the coding says; the connection is never used again.
        let faulty =
            framing.transfer_encoding.is_some() && (framing.content_length.is_some() || version == Version::HTTP_10);
        return Ok(Some(Head { response, decoder, reusable: keep_alive && delimited && !faulty }));
    }
}

/// Where a header field's name and value lie in the buffer it was parsed from: `(name start, name end, value
/// start, value end)`, so that the values can share the received bytes once the head is split off.
pub type FieldSpan = (u32, u32, u32, u32);

/// The spans of one head's fields: room for [`MAX_HEADERS`] on the stack, not zeroed beforehand (a zeroed
/// array would cost a 1.6 KB `memset` per head).
pub type FieldSpans = smallvec::SmallVec<[FieldSpan; 128]>;

/// Appends the spans of `fields`, parsed in place from `buf` (a head of at most 4 GiB), to `spans`. (Filled in
/// place: returned by value, the spans would be copied on every head.)
pub fn field_spans(buf: &[u8], fields: &[httparse::Header<'_>], spans: &mut FieldSpans) {
    let base = buf.as_ptr() as usize;
    for field in fields.iter().take(MAX_HEADERS) {
        let name = (field.name.as_ptr() as usize - base) as u32;
        let value = (field.value.as_ptr() as usize - base) as u32;
        spans.push((name, name + field.name.len() as u32, value, value + field.value.len() as u32));
    }
}

/// What the head's framing headers said.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    /// `Transfer-Encoding` was present; `chunked` when its last coding is chunked.
    transfer_encoding: Option<bool>,
    close: bool,
    keep_alive: bool,
    /// `Connection` names fields other than `close` and `keep-alive`.
    names_fields: bool,
}

impl Framing {
    fn observe(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), DecodeError> {
        if *name == CONTENT_LENGTH {
            // `5` or `5, 5`: every value must be the same number.
            for part in value.as_bytes().split(|&b| b == b',') {
                let n = parse_decimal(part.trim_ascii()).ok_or(DecodeError::ContentLength)?;
                if self.content_length.is_some_and(|seen| seen != n) {
                    return Err(DecodeError::ContentLength);
                }
                self.content_length = Some(n);
            }
        } else if *name == TRANSFER_ENCODING {
            // The final coding of the combined list (fields in order; empty elements do not count, RFC 9110
            // §5.6.1): `chunked` then an empty field is still chunked.
            let last = value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii).rfind(|c| !c.is_empty());
            let chunked = self.transfer_encoding.unwrap_or(false);
            self.transfer_encoding = Some(last.map_or(chunked, |c| c.eq_ignore_ascii_case(b"chunked")));
        } else if *name == CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                let close = token.eq_ignore_ascii_case(b"close");
                let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                self.close |= close;
                self.keep_alive |= keep_alive;
                self.names_fields |= !close && !keep_alive && !token.is_empty();
            }
        }
        Ok(())
    }

    /// The body decoder, and whether the body's end is known without closing the connection.
    fn decoder(&self, no_body: bool) -> (Decoder, bool) {
        if no_body {
            return (Decoder::Done, true);
        }
        match (self.transfer_encoding, self.content_length) {
            // Both present: the length is ignored (RFC 9112 §6.3); the caller does not reuse the connection.
            (Some(true), _) => (Decoder::Chunked(Chunk::Size), true),
            (Some(false), _) => (Decoder::UntilClose, false),
            (None, Some(0)) => (Decoder::Done, true),
            (None, Some(n)) => (Decoder::Length(n), true),
            (None, None) => (Decoder::UntilClose, false),
        }
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1.1): hex digits (leading zeros allowed, below 2^60), then
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`. Whitespace after the size or the last
/// extension is accepted (real servers pad sizes; hyper accepts it too); anything else is refused.
fn chunk_size_line(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let zeros = line[..digits].iter().take_while(|&&b| b == b'0').count();
    let significant = &line[zeros..digits];
    if digits == 0 || significant.len() > 15 || !chunk_extensions(&line[digits..]) {
        return None;
    }
    significant.iter().try_fold(0u64, |n, &d| (d as char).to_digit(16).map(|v| n * 16 + u64::from(v)))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn skip_whitespace(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

fn skip_token(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|&&b| is_tchar(b)).count();
    (n > 0).then(|| &s[n..])
}

/// The chunk extensions after the size, as [`chunk_size_line`] says.
fn chunk_extensions(mut ext: &[u8]) -> bool {
    loop {
        ext = skip_whitespace(ext);
        let Some(rest) = ext.strip_prefix(b";") else { return ext.is_empty() };
        let Some(rest) = skip_token(skip_whitespace(rest)) else { return false };
        ext = rest;
        let Some(value) = skip_whitespace(rest).strip_prefix(b"=") else { continue };
        let value = skip_whitespace(value);
        ext = match value.strip_prefix(b"\"") {
            Some(quoted) => match quoted_string_end(quoted) {
                Some(end) => &quoted[end..],
                None => return false,
            },
            None => match skip_token(value) {
                Some(rest) => rest,
                None => return false,
            },
        };
    }
}

/// Past the closing quote of a quoted-string whose opening quote is already taken.
fn quoted_string_end(s: &[u8]) -> Option<usize> {
    let text = |c: u8| c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) || c >= 0x80;
    let mut i = 0;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if s.get(i + 1).is_some_and(|&c| text(c)) => i += 2,
            b'\\' => return None,
            c if text(c) => i += 1,
            _ => return None,
        }
    }
}

/// `field-line` of a trailer: a token, `:`, then visible characters, obs-text, spaces and tabs only.
fn is_field_line(line: &[u8]) -> bool {
    skip_token(line)
        .and_then(|rest| rest.strip_prefix(b":"))
        .is_some_and(|value| value.iter().all(|&b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b) || b >= 0x80))
}

/// The length of the line at the start of `buf`, which ends with CRLF (a bare LF is refused): `None` until its
/// end has arrived. A line longer than [`MAX_LINE_BYTES`] is refused, however the reads split it.
fn line_end(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(0) => Err(DecodeError::Chunk),
        Some(i) if buf[i - 1] == b'\r' && i - 1 <= MAX_LINE_BYTES => Ok(Some(i - 1)),
        Some(_) => Err(DecodeError::Chunk),
        // The line and its CR fit in one byte more than the limit.
        None if buf.len() > MAX_LINE_BYTES + 1 => Err(DecodeError::Chunk),
        None => Ok(None),
    }
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// Takes the next piece of the body from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        loop {
            match self {
                Decoder::Done => return Ok(Step::Done),
                Decoder::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = (*left).min(buf.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        *self = Decoder::Done;
                    }
                    return Ok(Step::Data(buf.split_to(n as usize).freeze()));
                }
                Decoder::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                Decoder::Chunked(Chunk::Size) => {
                    let Some(end) = line_end(buf)? else { return Ok(Step::NeedMore) };
                    let size = chunk_size_line(&buf[..end]).ok_or(DecodeError::Chunk)?;
                    buf.advance(end + 2);
                    *self = Decoder::Chunked(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) });
                }
                Decoder::Chunked(Chunk::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = (*left).min(buf.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        *self = Decoder::Chunked(Chunk::DataEnd);
                    }
                    let data = buf.split_to(n as usize).freeze();
                    // A chunk that ends with the message: finish now, so that the connection is released with
                    // the last data frame.
                    if buf.starts_with(b"\r\n0\r\n\r\n") {
                        buf.advance(7);
                        *self = Decoder::Done;
                    }
                    return Ok(Step::Data(data));
                }
                Decoder::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(DecodeError::Chunk);
                    }
                    buf.advance(2);
                    *self = Decoder::Chunked(Chunk::Size);
                }
                Decoder::Chunked(Chunk::Trailers) => {
                    let Some(end) = line_end(buf)? else { return Ok(Step::NeedMore) };
                    if end > 0 && !is_field_line(&buf[..end]) {
                        return Err(DecodeError::Chunk);
                    }
                    buf.advance(end + 2);
                    if end == 0 {
                        *self = Decoder::Done;
                    }
                }
            }
        }
    }

    /// The upstream closed the connection: the end of an until-close body, a truncated body otherwise.
    pub fn eof(&mut self) -> Result<(), DecodeError> {
        match self {
            Decoder::UntilClose | Decoder::Done => {
                *self = Decoder::Done;
                Ok(())
            }
            _ => Err(DecodeError::Incomplete),
        }
    }

    /// What is known of the remaining body's size.
    pub fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Decoder::Length(n) => http_body::SizeHint::with_exact(*n),
            Decoder::Done => http_body::SizeHint::with_exact(0),
            _ => http_body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Head>, DecodeError> {
        head(&mut BytesMut::from(text), false)
    }

    /// Decodes the whole body of `wire` fed in pieces of `step` bytes.
    fn body(mut decoder: Decoder, wire: &[u8], step: usize) -> Result<Vec<u8>, DecodeError> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Done => return Ok(out),
                Step::NeedMore if fed < wire.len() => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
                Step::NeedMore => {
                    decoder.eof()?;
                    return Ok(out);
                }
            }
        }
    }

    #[test]
    fn heads_decide_framing_and_reuse() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello").unwrap().unwrap();
        assert_eq!(h.response.status(), 200);
        assert_eq!(h.response.headers()["x-a"], "b");
        assert_eq!((h.decoder, h.reusable), (Decoder::Length(5), true));
        let h = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::Chunked(Chunk::Size), true));
        let h = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::Chunked(Chunk::Size), false), "both: never reused");
        assert!(h.response.headers().get("content-length").is_none(), "the length beside a coding is not passed on");
        let h = parse("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::UntilClose, false));
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(!h.reusable);
        let h = parse("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap().unwrap();
        assert!(!h.reusable, "HTTP/1.0 closes unless it says keep-alive");
        let h = parse("HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap();
        assert!(h.reusable);
        let h = parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.decoder, Decoder::Done);
        let h = head(&mut BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), true).unwrap().unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::Done, true), "a HEAD response has no body");
    }

    #[test]
    fn hop_by_hop_fields_stop_here() {
        let h = parse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n")
            .unwrap()
            .unwrap();
        let names: Vec<&str> = h.response.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-a"]);
        assert_eq!(h.decoder, Decoder::Chunked(Chunk::Size), "framing was read before the fields were dropped");
        let h = parse("HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.response.headers()["connection"], "close, X-Secret", "kept for the hop-by-hop rule");
        assert!(!h.reusable);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut buf = BytesMut::from("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        let h = head(&mut buf, false).unwrap().unwrap();
        assert_eq!(h.response.status(), 201);
        assert!(buf.is_empty());
        assert_eq!(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(), DecodeError::Upgrade);
    }

    #[test]
    fn bad_heads_are_errors() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le").unwrap().map(|h| h.decoder), None, "partial");
        assert!(matches!(parse("SMTP ready\r\n\r\n"), Err(DecodeError::Malformed(_))));
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n").unwrap_err(), DecodeError::ContentLength);
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").unwrap_err(), DecodeError::ContentLength);
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").unwrap().unwrap().decoder,
            Decoder::Length(5)
        );
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("x-{i}: v\r\n")).collect();
        assert_eq!(parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).unwrap_err(), DecodeError::TooManyHeaders);
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&huge).unwrap_err(), DecodeError::HeadTooLarge);
        assert!(parse("HTTP/1.1 999999 What\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_decode_in_any_pieces() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(body(Decoder::Chunked(Chunk::Size), wire, step).unwrap(), b"hello 0123456789", "step {step}");
        }
        assert_eq!(body(Decoder::Chunked(Chunk::Size), b"5\r\nhel", 2), Err(DecodeError::Incomplete));
        assert_eq!(body(Decoder::Chunked(Chunk::Size), b"zz\r\n", 4), Err(DecodeError::Chunk));
        assert_eq!(body(Decoder::Chunked(Chunk::Size), b"5\r\nhelloXX0\r\n\r\n", 4), Err(DecodeError::Chunk));
        assert_eq!(body(Decoder::Chunked(Chunk::Size), b"fffffffffffffffff\r\n", 64), Err(DecodeError::Chunk));
        assert_eq!(body(Decoder::Chunked(Chunk::Size), &[b'1'; 5000], 5000), Err(DecodeError::Chunk));
    }

    /// Fuzz finding (`http1_response_head`): faulty framing (RFC 9112 §6.1, §6.3) left the connection reusable.
    #[test]
    fn faulty_framing_is_never_reused() {
        for text in [
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(!parse(text).unwrap().unwrap().reusable, "{text:?}");
        }
    }

    /// Fuzz finding (`http1_response_head`): the final coding is the last non-empty element of the combined list.
    #[test]
    fn the_final_coding_ignores_empty_list_elements() {
        for (codings, chunked) in [
            ("Transfer-Encoding: chunked,\r\n", true),
            ("Transfer-Encoding: chunked, ,\r\n", true),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n", true),
            ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", true),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", false),
            ("Transfer-Encoding: chunked, gzip\r\n", false),
            ("Transfer-Encoding: \r\n", false),
        ] {
            let h = parse(&format!("HTTP/1.1 200 OK\r\n{codings}\r\n")).unwrap().unwrap();
            let expected = if chunked { Decoder::Chunked(Chunk::Size) } else { Decoder::UntilClose };
            assert_eq!(h.decoder, expected, "{codings:?}");
        }
    }

    /// Fuzz finding (`chunked_decoder`): chunk-size lines and trailers follow RFC 9112 §7.1; whitespace after
    /// the size is the one leniency.
    #[test]
    fn chunk_lines_follow_the_grammar() {
        for (size_line, valid) in [
            ("5", true),
            ("0005", true),
            ("00000000000000000005", true),
            ("5  \t", true),
            ("5;a", true),
            ("5 ; a = b ; c=\"q;\\\"x\"", true),
            ("5;a=\"\"", true),
            ("1000000000000000", false),
            ("5;\x00a", false),
            ("5;a\rb", false),
            ("5 x", false),
            ("5;", false),
            ("5;a=", false),
            ("5;a=\"open", false),
            ("5;a=b c", false),
            (" 5", false),
            ("+5", false),
            ("0x5", false),
            ("", false),
        ] {
            let wire = format!("{size_line}\r\nhello\r\n0\r\n\r\n");
            let got = body(Decoder::Chunked(Chunk::Size), wire.as_bytes(), 3);
            if valid {
                assert_eq!(got.unwrap(), b"hello", "{size_line:?}");
            } else {
                assert_eq!(got, Err(DecodeError::Chunk), "{size_line:?}");
            }
        }
        assert_eq!(chunk_size_line(b"0fffffffffffffff"), Some((1 << 60) - 1), "the largest size");
        for trailer in ["no colon", " folded", "X: \x01", ": empty name", "X\t: y"] {
            let wire = format!("0\r\n{trailer}\r\n\r\n");
            assert_eq!(body(Decoder::Chunked(Chunk::Size), wire.as_bytes(), 2), Err(DecodeError::Chunk), "{trailer:?}");
        }
        let wire = b"0\r\nX-A: b c\t\r\nX-\xff: \xff\r\n\r\n";
        assert_eq!(body(Decoder::Chunked(Chunk::Size), wire, 2), Err(DecodeError::Chunk), "a name is a token");
        assert!(body(Decoder::Chunked(Chunk::Size), b"0\r\nX-A: b c\t\xff\r\n\r\n", 2).is_ok());
    }

    /// Fuzz finding (`chunked_decoder`): a long line was refused or not depending on where the reads split it.
    #[test]
    fn the_line_limit_does_not_depend_on_the_reads() {
        let longest = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(MAX_LINE_BYTES - 2));
        let too_long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(MAX_LINE_BYTES - 1));
        for step in [1, 7, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 2, 10_000] {
            assert_eq!(body(Decoder::Chunked(Chunk::Size), longest.as_bytes(), step).unwrap(), b"hello", "{step}");
            assert_eq!(
                body(Decoder::Chunked(Chunk::Size), too_long.as_bytes(), step),
                Err(DecodeError::Chunk),
                "{step}"
            );
        }
    }

    #[test]
    fn the_last_chunk_ends_the_body_with_its_data() {
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
        let mut decoder = Decoder::Chunked(Chunk::Size);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Step::Data(Bytes::from_static(b"hello")));
        assert!(decoder.is_done() && buf.is_empty());
    }

    #[test]
    fn length_and_close_delimited_bodies() {
        assert_eq!(body(Decoder::Length(5), b"hello", 2).unwrap(), b"hello");
        assert_eq!(body(Decoder::Length(5), b"hel", 2), Err(DecodeError::Incomplete));
        assert_eq!(body(Decoder::UntilClose, b"until the end", 4).unwrap(), b"until the end");
        let mut buf = BytesMut::from(&b"helloNEXT"[..]);
        let mut decoder = Decoder::Length(5);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Step::Data(Bytes::from_static(b"hello")));
        assert_eq!(&buf[..], b"NEXT", "bytes past the body stay in the buffer");
    }
}
