//! Shared settings of the fuzz targets in `tests/`. Each target is a `#[test]` that drives one parser of
//! hostile input with `bolero` on the stable toolchain, for a bounded time: [`budget`] (20 s each by default,
//! `PENGHUBUNG_FUZZ_SECONDS` to change it; `scripts/fuzz.sh` runs every target for an hour). A target prints
//! how many inputs it tried; every crash or disagreement it finds becomes a regression case of its own beside
//! the target.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long each target runs: `PENGHUBUNG_FUZZ_SECONDS`, 20 s when unset or unreadable.
pub fn budget() -> Duration {
    let seconds = std::env::var("PENGHUBUNG_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(20);
    Duration::from_secs(seconds)
}

/// Counts the inputs a target tried and prints the count when dropped (at the end of the target).
#[derive(Debug)]
pub struct Tried {
    target: &'static str,
    count: AtomicU64,
}

impl Tried {
    pub fn new(target: &'static str) -> Self {
        Self { target, count: AtomicU64::new(0) }
    }

    /// One more input.
    pub fn one(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Tried {
    fn drop(&mut self) {
        eprintln!("fuzz {}: {} inputs tried", self.target, self.count());
    }
}

/// Builds one input from the fuzzer's bytes. The first byte chooses: even, the rest of the bytes as they are
/// (arbitrary input); odd, one of `seeds` (real, well-formed inputs) changed by a few edits that the following
/// bytes describe (insert, delete or replace a byte, insert one of `tokens`, repeat or cut a span). Mutated
/// seeds reach the paths behind a valid prefix, which random bytes rarely do.
pub fn seeded_input(seeds: &[&[u8]], tokens: &[&[u8]], bytes: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = bytes.split_first() else { return Vec::new() };
    if mode % 2 == 0 || seeds.is_empty() {
        return rest.to_vec();
    }
    let Some((&pick, mut edits)) = rest.split_first() else { return Vec::new() };
    let mut out = seeds[usize::from(pick) % seeds.len()].to_vec();
    // At most eight edits: more would leave little of the seed.
    for _ in 0..8 {
        let [op, hi, lo, arg, tail @ ..] = edits else { break };
        edits = tail;
        let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (out.len() + 1);
        match op % 8 {
            0 => out.insert(at, *arg),
            1 if at < out.len() => {
                out.remove(at);
            }
            2 if at < out.len() => out[at] = *arg,
            3 | 4 if !tokens.is_empty() => {
                let token = tokens[usize::from(*arg) % tokens.len()];
                out.splice(at..at, token.iter().copied());
            }
            5 => {
                let end = (at + usize::from(*arg % 32) + 1).min(out.len());
                let span = out[at..end].to_vec();
                out.splice(at..at, span);
            }
            6 => out.truncate(at),
            _ => {}
        }
    }
    out
}

/// Splits `len` bytes into pieces whose sizes `sizes` chooses (each 1..=256, cycling; one piece when empty):
/// the reads a peer's segments would make.
pub fn pieces(len: usize, sizes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < len {
        let size = if sizes.is_empty() { len } else { usize::from(sizes[i % sizes.len()]) + 1 };
        let end = (start + size).min(len);
        out.push(start..end);
        start = end;
        i += 1;
    }
    out
}

/// `bytes` as printable text for assertion messages.
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

pub mod rfc9112;

/// The gateway's upstream codec (`http1::decode`) reading `bytes` as an upstream's response that arrives in
/// the pieces `sizes` chooses, then the connection closes: the same [`rfc9112::Outcome`] as the reference.
pub fn gateway_response(bytes: &[u8], head_request: bool, sizes: &[u8]) -> rfc9112::Outcome {
    use penghubung::http1::decode;
    let mut buf = bytes::BytesMut::new();
    let mut feed = pieces(bytes.len(), sizes).into_iter();
    let head = loop {
        match decode::head(&mut buf, head_request) {
            Err(_) => return rfc9112::Outcome::Invalid("gateway"),
            Ok(Some(head)) => break head,
            Ok(None) => match feed.next() {
                Some(piece) => buf.extend_from_slice(&bytes[piece]),
                None => return rfc9112::Outcome::Incomplete,
            },
        }
    };
    let body = match gateway_body(head.decoder, &mut buf, bytes, &mut feed) {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    let mut rest = buf.to_vec();
    for piece in feed {
        rest.extend_from_slice(&bytes[piece]);
    }
    let mut fields: Vec<(String, Vec<u8>)> =
        head.response.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let version = u8::from(head.response.version() == http::Version::HTTP_11);
    rfc9112::Outcome::Response(rfc9112::Response {
        status: head.response.status().as_u16(),
        version,
        fields,
        body,
        reusable: head.reusable,
        rest,
    })
}

/// Drives `decoder` over `buf`, feeding it the next pieces of `bytes` when it needs more; at the end of the
/// pieces the connection closes.
pub fn gateway_body(
    mut decoder: penghubung::http1::decode::Decoder,
    buf: &mut bytes::BytesMut,
    bytes: &[u8],
    feed: &mut impl Iterator<Item = std::ops::Range<usize>>,
) -> Result<Vec<u8>, rfc9112::Outcome> {
    use penghubung::http1::decode::Step;
    let mut body = Vec::new();
    loop {
        match decoder.decode(buf) {
            Err(_) => return Err(rfc9112::Outcome::Invalid("gateway")),
            Ok(Step::Data(data)) => body.extend_from_slice(&data),
            Ok(Step::Done) => return Ok(body),
            Ok(Step::NeedMore) => match feed.next() {
                Some(piece) => buf.extend_from_slice(&bytes[piece]),
                None if decoder.eof().is_ok() => return Ok(body),
                None => return Err(rfc9112::Outcome::Incomplete),
            },
        }
    }
}

/// Whether two outcomes agree: the same response, or both a failed exchange (invalid and incomplete alike: a
/// malformed line may be refused at once or when the connection closes, depending on where the reads split).
pub fn agree(a: &rfc9112::Outcome, b: &rfc9112::Outcome) -> bool {
    use rfc9112::Outcome::{Incomplete, Invalid, Response};
    match (a, b) {
        (Response(a), Response(b)) => a == b,
        (Invalid(_) | Incomplete, Invalid(_) | Incomplete) => true,
        _ => false,
    }
}

/// Drives `check` with arbitrary bytes (seeded mutations are the target's own business) for [`budget`], and
/// prints how many inputs `target` tried: the whole of a byte-input target.
pub fn fuzz_bytes(target: &'static str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let tried = Tried::new(target);
    bolero::check!().with_test_time(budget()).for_each(|input: &[u8]| {
        tried.one();
        check(input);
    });
}

/// A small deterministic generator (xorshift) for targets that build their inputs from a seed the fuzzer
/// chooses.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True once in `one_in` times.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
