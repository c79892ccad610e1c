//! Writing HTTP/1.1 messages, for both roles: how a body is delimited ([`Framing`], announced by its field),
//! the chunked framing (`chunk_start`, [`CHUNK_END`], [`LAST_CHUNK`]) and exact decimal numbers. The upstream
//! client frames request bodies with it, the server response bodies.

use http::header::CONTENT_LENGTH;
use http::{request, Method};
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

/// Appends `n` in decimal.
pub fn decimal(mut n: u64, out: &mut Vec<u8>) {
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
    use http::Request;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
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
