//! Writing a response to an HTTP/1.1 caller: the head (status line, the response's fields, `date` when absent,
//! the framing the gateway chose) and the body framed by `content-length` when its size is known, chunked
//! otherwise. Framing fields in the response's own map are not trusted: the gateway writes its own.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::StatusCode;
use http_body::Body;

pub use penghubung_http1::encode::Framing;
use penghubung_http1::encode::{chunk_start, CHUNK_END, LAST_CHUNK};

/// Writes the head for `parts` and a body like `body` into `out`, and returns the body's framing. `close`
/// announces that the connection ends after this response.
pub fn head<B: Body>(out: &mut Vec<u8>, parts: &Parts, body: &B, close: bool) -> Framing {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let bodiless = parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::None
    } else if body.is_end_stream() {
        Framing::Length(0)
    } else if let Some(n) = body.size_hint().exact() {
        Framing::Length(n)
    } else if let Some(n) =
        parts.headers.get(CONTENT_LENGTH).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok())
    {
        Framing::Length(n)
    } else {
        Framing::Chunked
    };
    let mut dated = false;
    for (name, value) in &parts.headers {
        let skip = *name == TRANSFER_ENCODING || *name == CONNECTION || (*name == CONTENT_LENGTH && !bodiless);
        if !skip {
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        dated |= *name == DATE;
    }
    framing.write_field(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !dated {
        date(out);
    }
    out.extend_from_slice(b"\r\n");
    framing
}

/// Frames body bytes after [`head`].
#[derive(Debug)]
pub struct Encoder {
    framing: Framing,
    /// The body produced more or fewer bytes than its announced length: the connection must end.
    broken: bool,
}

impl Encoder {
    pub fn new(framing: Framing) -> Self {
        Self { framing, broken: false }
    }

    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::Length(0))
    }

    /// Appends `data`, framed, to `out`.
    pub fn data(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let take = self.begin_direct(out, data.len());
        out.extend_from_slice(&data[..take]);
        self.end_direct(out);
    }

    /// Frames `len` bytes that the caller writes itself, straight after what is in `out`: returns how many of
    /// them may go out. Then [`Encoder::end_direct`].
    pub fn begin_direct(&mut self, out: &mut Vec<u8>, len: usize) -> usize {
        match &mut self.framing {
            Framing::None => 0,
            Framing::Length(remaining) => {
                let take = len.min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                *remaining -= take as u64;
                self.broken |= take < len;
                take
            }
            Framing::Chunked => {
                if len > 0 {
                    chunk_start(len, out);
                }
                len
            }
        }
    }

    /// Closes what [`Encoder::begin_direct`] opened.
    pub fn end_direct(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::Chunked {
            out.extend_from_slice(CHUNK_END);
        }
    }

    /// Ends the body (the last chunk, when chunked).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Chunked => out.extend_from_slice(LAST_CHUNK),
            Framing::Length(remaining) => self.broken |= remaining > 0,
            Framing::None => {}
        }
    }

    /// Whether the caller can no longer tell where this response ends, so the connection must close.
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `date` field of the current second (`date: ...\r\n`), formatted once a second per thread.
    static DATE_LINE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
}

fn date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    DATE_LINE.with_borrow_mut(|(cached_second, line)| {
        if *cached_second != second || line.is_empty() {
            line.clear();
            field(line, b"date", httpdate::fmt_http_date(now).as_bytes());
            *cached_second = second;
        }
        out.extend_from_slice(line);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::Response;
    use http_body_util::Full;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn a_sized_body_gets_its_own_length_and_a_date() {
        let response = Response::builder()
            .status(404)
            .header("content-length", "999")
            .header("transfer-encoding", "chunked")
            .header("x-request-id", "abc")
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let (parts, body) = response.into_parts();
        let mut out = Vec::new();
        assert_eq!(head(&mut out, &parts, &body, false), Framing::Length(5));
        let head = text(&out);
        assert!(
            head.starts_with("HTTP/1.1 404 Not Found\r\nx-request-id: abc\r\ncontent-length: 5\r\ndate: "),
            "{head}"
        );
        assert!(head.ends_with(" GMT\r\n\r\n"), "{head}");
        assert!(!head.contains("999") && !head.contains("chunked"), "{head}");
    }

    #[test]
    fn an_unsized_body_is_chunked_and_a_closing_response_says_so() {
        let (parts, body) = Response::new(Unsized).into_parts();
        let mut out = Vec::new();
        let framing = head(&mut out, &parts, &body, true);
        assert_eq!(framing, Framing::Chunked);
        assert!(text(&out).contains("transfer-encoding: chunked\r\nconnection: close\r\n"));
        let mut encoder = Encoder::new(framing);
        out.clear();
        encoder.data(&mut out, &[b'x'; 26]);
        encoder.data(&mut out, b"");
        encoder.finish(&mut out);
        assert_eq!(text(&out), format!("1a\r\n{}\r\n0\r\n\r\n", "x".repeat(26)));
        assert!(!encoder.is_broken());
    }

    #[test]
    fn a_body_that_breaks_its_length_breaks_the_connection() {
        let mut encoder = Encoder::new(Framing::Length(3));
        let mut out = Vec::new();
        encoder.data(&mut out, b"abcd");
        assert_eq!(out, b"abc");
        assert!(encoder.is_broken());
        let mut short = Encoder::new(Framing::Length(3));
        short.data(&mut out, b"ab");
        short.finish(&mut out);
        assert!(short.is_broken());
    }

    #[test]
    fn the_upstream_date_is_kept_and_not_doubled() {
        let (parts, body) = Response::builder()
            .header("date", "Tue, 01 Jan 2030 00:00:00 GMT")
            .body(Full::new(Bytes::from_static(b"x")))
            .unwrap()
            .into_parts();
        let mut out = Vec::new();
        head(&mut out, &parts, &body, false);
        assert_eq!(text(&out).matches("date: ").count(), 1, "{}", text(&out));
        assert!(text(&out).contains("date: Tue, 01 Jan 2030 00:00:00 GMT\r\n"));
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        for status in [204, 304] {
            let (parts, body) = Response::builder().status(status).body(Full::new(Bytes::new())).unwrap().into_parts();
            let mut out = Vec::new();
            assert_eq!(head(&mut out, &parts, &body, false), Framing::None);
            assert!(!text(&out).contains("content-length"), "{}", text(&out));
            assert!(!Encoder::new(Framing::None).has_body());
        }
    }

    /// A body without a size: the shape of a streamed upstream body.
    struct Unsized;

    impl Body for Unsized {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
    }
}
