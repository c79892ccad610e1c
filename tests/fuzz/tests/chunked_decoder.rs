//! The upstream client's chunked body decoder (`http1::decode::Decoder`) against a reference decoder of RFC
//! 9112 §7.1 (`penghubung_fuzz::rfc9112::chunked`), on mutated chunked bodies and arbitrary bytes fed in random
//! pieces: the same body and the same bytes after it, or both refuse. The reference's named deviations from the
//! bare RFC are the gateway's deliberate limits.

use penghubung::http1::decode::{Chunk, Decoder};
use penghubung_fuzz::rfc9112::{self, Chunked, Outcome};
use penghubung_fuzz::{gateway_body, pieces, seeded_input, show};

const SEEDS: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;a=b\r\nhello\r\n1 ; q=\"x;y\\\"z\"\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\nX-B: c d\r\n\r\nNEXT",
    b"000005\r\nhello\r\n00\r\n\r\n",
    b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\n\r\n",
    b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"5  \r\nhello\r\n0\t\r\n\r\n",
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
    b"F",
    b"x",
    b"-",
    b"+",
    b"\x00",
    b"\xff",
    b"0\r\n\r\n",
    b"\r\n0\r\n\r\n",
    b"ffffffffffffffff",
    b"0fffffffffffffff",
    b"1000000000000000",
    b"; a = b",
    b";a=\"\"",
    b"X: y\r\n",
    b" folded\r\n",
    b":",
    b"\r\n\r\n",
];

fn check(input: &[u8]) {
    let Some((&choice, rest)) = input.split_first() else { return };
    let (sizes, rest) = rest.split_at((usize::from(choice) % 16).min(rest.len()));
    let bytes = seeded_input(SEEDS, TOKENS, rest);
    let expected = match rfc9112::chunked(&bytes) {
        Chunked::Body { body, rest } => Ok((body, rest.to_vec())),
        Chunked::Invalid(_) | Chunked::Incomplete => Err(()),
    };
    let mut buf = bytes::BytesMut::new();
    let mut feed = pieces(bytes.len(), sizes).into_iter();
    let got = match gateway_body(Decoder::Chunked(Chunk::Size), &mut buf, &bytes, &mut feed) {
        Ok(body) => {
            let mut rest = buf.to_vec();
            feed.for_each(|piece| rest.extend_from_slice(&bytes[piece]));
            Ok((body, rest))
        }
        Err(Outcome::Invalid(_) | Outcome::Incomplete) => Err(()),
        Err(Outcome::Response(_)) => unreachable!("a body decoder returns no response"),
    };
    assert_eq!(got, expected, "pieces {sizes:?}\n{}", show(&bytes));
}

#[test]
fn chunked_decoder() {
    penghubung_fuzz::fuzz_bytes("chunked_decoder", check);
}

#[test]
fn chunked_decoder_seeds() {
    for index in 0..SEEDS.len() {
        for choice in [0u8, 1, 2, 5] {
            check(&[choice, 1, 2, 3, 4, 5, 1, index as u8]);
        }
    }
}
