//! The upstream client's response codec (`http1::decode`: head, framing, body) against a reference reading
//! of RFC 9112 (`penghubung_fuzz::rfc9112`: the head by `httparse`, framing by §6.3, chunked bodies by §7.1),
//! on mutated real responses and arbitrary bytes, fed in random pieces as reads would bring them. Bodies framed
//! by `Content-Length`, chunked and until close; responses that smuggle (both framings, differing lengths,
//! obs-fold, bare LF, HTTP/1.0 with a coding) are refused or read as RFC 9112 says, and the bytes after the
//! response (the next one on a reused connection) are the same for both.

use penghubung_fuzz::{agree, gateway_response, rfc9112, seeded_input, show};

const SEEDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\n{\"nama\":1}\nHTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close, X-Secret\r\nX-Secret: s\r\n\r\n1\r\nz\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
];

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b";",
    b"=",
    b"\"",
    b"\\",
    b"0",
    b"f",
    b"\r\n\r\n",
    b"0\r\n\r\n",
    b"\x00",
    b"\xff",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 5, 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked,\r\n",
    b"Transfer-Encoding: \r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"HTTP/1.0",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b" 101 ",
    b" 099 ",
    b" 999 ",
    b"ffffffffffffffff",
    b"0000000000000000005",
    b";ext=\"q\\\"\"",
    b"\r\nHTTP/1.1 200 OK\r\n",
];

fn check(input: &[u8]) {
    let Some((&choice, rest)) = input.split_first() else { return };
    let (sizes_len, rest) = (usize::from(choice >> 1) % 16, rest);
    let (sizes, rest) = rest.split_at(sizes_len.min(rest.len()));
    let head_request = choice & 1 == 1;
    let bytes = seeded_input(SEEDS, TOKENS, rest);
    let expected = rfc9112::response(&bytes, head_request);
    let got = gateway_response(&bytes, head_request, sizes);
    assert!(
        agree(&expected, &got),
        "gateway {got:?}\nRFC 9112 {expected:?}\nHEAD {head_request}, pieces {sizes:?}\n{}",
        show(&bytes)
    );
}

#[test]
fn http1_response_head() {
    penghubung_fuzz::fuzz_bytes("http1_response_head", check);
}

/// Every seed as it is, whole and in small pieces, with and without HEAD.
#[test]
fn http1_response_head_seeds() {
    for index in 0..SEEDS.len() {
        for choice in [0u8, 1, 2, 3, 30, 31] {
            check(&[choice, 3, 1, index as u8]);
        }
    }
}
