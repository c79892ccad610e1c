//! What the trail reader takes from one record line ([`Fields`]: `seq`, `prev`, `kind`, `sig` and the
//! [`Exchange`] members), read in one of two ways that give the same answer:
//!
//! - [`written`] expects the line as the audit writer writes it: `{"seq":…,"prev":"…","kind":"exchange"`, then
//!   the exchange members in the writer's fixed order, each one optional, no whitespace, no escapes. It compares
//!   each expected key with the bytes in place (one short fixed compare, no key search and no dispatch) and only
//!   skips the values the count never uses. At the first byte it does not expect (another kind, another order,
//!   an extra or repeated member, a backslash, whitespace, a number that is not a plain integer) it gives up.
//! - [`general`] reads any flat JSON object with [`members`] (any member order), as a record rewritten by
//!   another program may be.
//!
//! [`Fields::read`] tries the first and falls back to the second, so a line that surprises the fast reader costs
//! a second read, never a different count. The fast reader accepts a subset of what the general one reads, and
//! gives each member it takes the value and the slot the general one would.

use crate::scan::{members, Value};
use crate::tally::Exchange;

/// The members of a record line the trail reader uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `seq`, when it is an integer.
    pub seq: Option<u64>,
    /// The raw bytes of the `prev`, `kind` and `sig` strings (empty when absent or not strings).
    pub prev: &'a [u8],
    pub kind: &'a [u8],
    pub sig: &'a [u8],
    pub exchange: Exchange<'a>,
    /// Every member was read (the line is a flat JSON object).
    pub readable: bool,
}

impl<'a> Fields<'a> {
    /// Reads `line` with [`written`], or with [`general`] when the line is not laid out as the writer does.
    pub fn read(line: &'a [u8]) -> Fields<'a> {
        written(line).unwrap_or_else(|| general(line))
    }
}

/// Reads any flat JSON object, member by member, whatever their order (the last of repeated members wins).
pub fn general(line: &[u8]) -> Fields<'_> {
    let mut f = Fields { readable: true, ..Fields::default() };
    for member in members(line) {
        let Ok((k, v)) = member else {
            f.readable = false;
            break;
        };
        match (k, v) {
            (b"seq", Value::Num(n)) => f.seq = Some(n),
            (b"prev", Value::Str { raw, .. }) => f.prev = raw,
            (b"kind", Value::Str { raw, .. }) => f.kind = raw,
            (b"sig", Value::Str { raw, .. }) => f.sig = raw,
            _ => f.exchange.set(k, v),
        }
    }
    f
}

/// Reads an exchange line laid out as the audit writer writes it; `None` at anything else (the caller then
/// reads the line with [`general`]).
pub fn written(line: &[u8]) -> Option<Fields<'_>> {
    let mut c = Cursor { b: line, i: 0 };
    if !c.eat(b"{\"seq\":") {
        return None;
    }
    let seq = c.num()?;
    if !c.eat(b",\"prev\":") {
        return None;
    }
    let prev = c.string_of::<64>()?;
    let kind_at = c.i + b",\"kind\":\"".len();
    if !c.eat(b",\"kind\":\"exchange\"") {
        return None;
    }
    let kind = &line[kind_at..kind_at + 8];
    let mut e = Exchange::default();
    if c.eat(b",\"time\":") {
        if let Value::Str { raw, .. } = c.value_of::<30>()? {
            e.time = raw;
        }
    }
    // The members the count does not use: read (their values must be well formed) and dropped.
    if c.eat(b",\"request_id\":") {
        c.value_of::<36>()?;
    }
    if c.eat(b",\"trace_id\":") {
        c.value_of::<32>()?;
    }
    if c.eat(b",\"client\":") {
        e.client = Some(c.value()?);
    }
    if c.eat(b",\"caller_opd\":") {
        e.caller_opd = Some(c.value()?);
    }
    if c.eat(b",\"provider_opd\":") {
        e.provider_opd = Some(c.value()?);
    }
    if c.eat(b",\"service\":") {
        e.service = Some(c.value()?);
    }
    c.skip_each(&[b",\"operation\":", b",\"method\":", b",\"path\":", b",\"purpose\":"])?;
    if c.eat(b",\"decision\":") {
        e.decision = Some(c.value()?);
    }
    if c.eat(b",\"code\":") {
        e.code = Some(c.value()?);
    }
    if c.eat(b",\"status\":") {
        e.status = c.value()?.num().unwrap_or_default();
    }
    if c.eat(b",\"bytes_in\":") {
        e.bytes_in = c.value()?.num().unwrap_or_default();
    }
    if c.eat(b",\"bytes_out\":") {
        e.bytes_out = c.value()?.num().unwrap_or_default();
    }
    if c.eat(b",\"latency_us\":") {
        e.latency_us = c.value()?.num().unwrap_or_default();
    }
    if c.eat(b",\"upstream\":") {
        c.value()?;
    }
    if c.eat(b",\"request_sha256\":") {
        c.value_of::<64>()?;
    }
    if c.eat(b",\"response_sha256\":") {
        c.value_of::<64>()?;
    }
    c.skip_each(&[b",\"withheld\":", b",\"nik\":", b",\"nik_overflow\":", b",\"complete\":", b",\"durability\":"])?;
    if c.eat(b",\"hash\":") {
        c.value_of::<64>()?;
    }
    // The object ends here: what follows its closing brace is not read (as by `members`).
    if !c.eat(b"}") {
        return None;
    }
    Some(Fields { seq: Some(seq), prev, kind, sig: b"", exchange: e, readable: true })
}

/// A position in a line for [`written`].
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

/// The high bit of each byte of a little-endian word that is `"` or `\\`, exact up to the first such byte (a
/// borrow may also mark bytes after it): SWAR, a byte equal to the one sought becomes zero.
fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

/// The little-endian word at `at`.
fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
}

/// Whether `bytes` (at least a word long) hold no `"` and no `\\`: a word at a time, without an early exit,
/// the last word overlapping the one before it.
fn plain<const N: usize>(bytes: &[u8; N]) -> bool {
    const { assert!(N >= 8) };
    let mut found = specials(word(bytes, N - 8));
    let mut at = 0;
    while at + 8 < N {
        found |= specials(word(bytes, at));
        at += 8;
    }
    found == 0
}

/// The index of the first `"` or `\\` byte of a little-endian word.
fn quote_or_backslash(word: u64) -> Option<usize> {
    let found = specials(word);
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

impl<'a> Cursor<'a> {
    /// Moves past `literal` when the line continues with it.
    #[inline(always)]
    fn eat(&mut self, literal: &[u8]) -> bool {
        let hit = self.b.get(self.i..self.i + literal.len()) == Some(literal);
        if hit {
            self.i += literal.len();
        }
        hit
    }

    /// A plain integer (at most 19 digits: no overflow to check).
    fn num(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i) {
            if self.i - start == 19 {
                return None;
            }
            n = n * 10 + u64::from(d - b'0');
            self.i += 1;
        }
        // `1.5`, `1e3`: not an integer (read by the general reader as another kind of value).
        if self.i == start || matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    /// A string without escapes whose bytes are most likely `N` long (a digest, a time): checked in one go at
    /// that length, else searched.
    #[inline(always)]
    fn string_of<const N: usize>(&mut self) -> Option<&'a [u8]> {
        let start = self.i + 1;
        if let Some(bytes) = self.b.get(start..start + N) {
            let bytes: &[u8; N] = bytes.try_into().ok()?;
            if self.b[self.i] == b'"' && self.b.get(start + N) == Some(&b'"') && plain(bytes) {
                self.i = start + N + 1;
                return Some(bytes);
            }
        }
        self.string()
    }

    /// A string without escapes: its bytes between the quotes.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let rest = &self.b[start..];
        let mut from = 0;
        while from + 8 <= rest.len() {
            if let Some(at) = quote_or_backslash(word(rest, from)) {
                return self.closed(rest, from + at);
            }
            from += 8;
        }
        let at = from + rest[from..].iter().position(|&c| c == b'"' || c == b'\\')?;
        self.closed(rest, at)
    }

    /// The string of `rest` up to `at`, when `at` is its closing quote (not a backslash).
    #[inline(always)]
    fn closed(&mut self, rest: &'a [u8], at: usize) -> Option<&'a [u8]> {
        if rest[at] != b'"' {
            return None;
        }
        self.i += at + 2;
        Some(&rest[..at])
    }

    /// A value as [`members`] reads it, when it is a string without escapes, a plain integer, `true`, `false`,
    /// `null`, or an array of strings without escapes. A string (most values) is read in line.
    #[inline(always)]
    fn value(&mut self) -> Option<Value<'a>> {
        if self.b.get(self.i) == Some(&b'"') {
            return self.string().map(|raw| Value::Str { raw, escaped: false });
        }
        self.other()
    }

    /// [`Self::value`] when it is not a string.
    fn other(&mut self) -> Option<Value<'a>> {
        match *self.b.get(self.i)? {
            b'0'..=b'9' => self.num().map(Value::Num),
            b't' if self.eat(b"true") => Some(Value::Other),
            b'f' if self.eat(b"false") => Some(Value::Other),
            b'n' if self.eat(b"null") => Some(Value::Other),
            b'[' => {
                self.i += 1;
                if self.eat(b"]") {
                    return Some(Value::Other);
                }
                loop {
                    self.string()?;
                    if self.eat(b"]") {
                        return Some(Value::Other);
                    }
                    if !self.eat(b",") {
                        return None;
                    }
                }
            }
            _ => None,
        }
    }

    /// Skips the value of each of `members` (written `,"key":`, in this order) that comes next: members the
    /// count does not use.
    #[inline(always)]
    fn skip_each(&mut self, members: &[&[u8]]) -> Option<()> {
        for member in members {
            if self.eat(member) {
                self.value()?;
            }
        }
        Some(())
    }

    /// [`Self::value`], most likely a string `N` bytes long.
    #[inline(always)]
    fn value_of<const N: usize>(&mut self) -> Option<Value<'a>> {
        if self.b.get(self.i) == Some(&b'"') {
            return self.string_of::<N>().map(|raw| Value::Str { raw, escaped: false });
        }
        self.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as the writer lays it out, with `nik` (members) and `code`.
    fn exchange_line(nik: &str, code: Option<&str>) -> String {
        let code = code.map_or(String::new(), |c| format!(",\"code\":\"{c}\""));
        format!(
            "{{\"seq\":1234,\"prev\":\"{}\",\"kind\":\"exchange\",\"time\":\"2026-11-05T17:30:00.123456789Z\",\
             \"request_id\":\"0192f1d2-7c3a-7b4e-9f10-2a3b4c5d6e7f\",\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\
             \"client\":\"dinsos/sikasos\",\"caller_opd\":\"dinsos\",\"provider_opd\":\"disdukcapil\",\
             \"service\":\"disdukcapil/kependudukan/v1\",\"operation\":\"ambil-data\",\"method\":\"GET\",\
             \"path\":\"/data/{{id}}\",\"purpose\":\"pelayanan-publik\",\"decision\":\"deny\"{code},\"status\":403,\
             \"bytes_in\":12,\"bytes_out\":3456,\"latency_us\":7890,\"upstream\":\"http://10.0.0.1:8080\",\
             \"request_sha256\":\"{}\",\"response_sha256\":\"{}\"{nik},\"complete\":true,\"durability\":\"async\",\
             \"hash\":\"{}\"}}",
            "a".repeat(64),
            "1".repeat(64),
            "2".repeat(64),
            "f".repeat(64)
        )
    }

    #[test]
    fn a_written_line_reads_as_the_general_reader_reads_it() {
        for line in [
            exchange_line("", None),
            exchange_line("", Some("policy.no_grant")),
            exchange_line(",\"nik\":[\"k1\",\"k2\"]", None),
            exchange_line(",\"nik\":[]", None),
            exchange_line(",\"nik\":[\"k1\"],\"nik_overflow\":true", None),
        ] {
            let fast = written(line.as_bytes()).expect("the writer's layout is read by the fast reader");
            assert_eq!(fast, general(line.as_bytes()), "{line}");
            assert_eq!(Fields::read(line.as_bytes()), fast);
        }
        let line = exchange_line("", Some("policy.no_grant"));
        let fast = written(line.as_bytes()).unwrap();
        assert_eq!((fast.seq, fast.kind, fast.prev.len(), fast.sig), (Some(1234), &b"exchange"[..], 64, &b""[..]));
        let e = &fast.exchange;
        assert_eq!(e.time, b"2026-11-05T17:30:00.123456789Z");
        assert_eq!(e.caller_opd.unwrap().text().unwrap(), "dinsos");
        assert_eq!(e.code.unwrap().text().unwrap(), "policy.no_grant");
        assert_eq!((e.status, e.bytes_in, e.bytes_out, e.latency_us), (403, 12, 3456, 7890));
        // Members the writer leaves out are optional, the trailing hash too.
        let short = br#"{"seq":7,"prev":"p","kind":"exchange","status":200}"#;
        assert_eq!(written(short).unwrap(), general(short));
    }

    /// Lines the fast reader gives up on, and what the general reader makes of them.
    #[test]
    fn anything_else_falls_back_to_the_general_reader() {
        let base = exchange_line("", Some("upstream.timeout"));
        let cases = [
            // Reordered members.
            base.replace(
                "\"caller_opd\":\"dinsos\",\"provider_opd\":\"disdukcapil\"",
                "\"provider_opd\":\"disdukcapil\",\"caller_opd\":\"dinsos\"",
            ),
            // An extra member, a repeated one (the last wins), an older record's `opd`.
            base.replace(",\"status\":", ",\"extra\":{\"a\":[1]},\"status\":"),
            base.replace(",\"bytes_in\":12", ",\"bytes_in\":12,\"bytes_in\":99"),
            base.replace("\"caller_opd\":\"dinsos\"", "\"opd\":\"dinsos\""),
            // Missing header members, another kind, whitespace.
            base.replace("\"seq\":1234,", ""),
            base.replace("\"kind\":\"exchange\"", "\"kind\":\"checkpoint\",\"sig\":\"s\""),
            base.replace("\"kind\":\"exchange\"", "\"kind\":\"exchange2\""),
            base.replace(",\"status\":403", ", \"status\" : 403"),
            // Escaped strings, in a used and in a skipped member.
            base.replace("\"caller_opd\":\"dinsos\"", "\"caller_opd\":\"din\\u0073os\""),
            base.replace("\"caller_opd\":\"dinsos\"", "\"caller_opd\":\"din\\\"sos\""),
            base.replace("pelayanan-publik", "pelayanan\\\\publik"),
            base.replace("\"prev\":\"aaaa", "\"prev\":\"a\\\"aa"),
            // Values of other types or forms.
            base.replace("\"status\":403", "\"status\":403.0"),
            base.replace("\"status\":403", "\"status\":4e2"),
            base.replace("\"status\":403", "\"status\":123456789012345678901234"),
            base.replace("\"complete\":true", "\"complete\":tru"),
            base.replace("\"seq\":1234", "\"seq\":\"1234\""),
            // Malformed lines.
            base.replace(",\"status\":403", ",\"status\":"),
            base.replace(",\"status\":403", ",\"status\" 403"),
            base[..base.len() - 1].to_string(),
            base[..300].to_string(),
            format!(" {base}"),
        ];
        for line in &cases {
            assert!(written(line.as_bytes()).is_none(), "the fast reader took {line}");
            assert_eq!(Fields::read(line.as_bytes()), general(line.as_bytes()), "{line}");
        }
        // What the general reader made of some: the same counts as before any fast reader.
        fn read(line: &str) -> Fields<'_> {
            general(line.as_bytes())
        }
        assert_eq!(read(&cases[0]).exchange.caller_opd.unwrap().text().unwrap(), "dinsos");
        assert_eq!(read(&cases[2]).exchange.bytes_in, 99);
        assert_eq!(read(&cases[3]).exchange.opd.unwrap().text().unwrap(), "dinsos");
        assert_eq!(read(&cases[8]).exchange.caller_opd.unwrap().text().unwrap(), "dinsos");
        assert_eq!(read(&cases[12]).exchange.status, 0);
        assert!(!read(&cases[18]).readable);
        // Values of another type in the writer's layout: the fast reader takes them as the general one does.
        for line in [
            base.replace("\"status\":403", "\"status\":\"403\""),
            base.replace("\"caller_opd\":\"dinsos\"", "\"caller_opd\":7"),
            base.replace("\"time\":\"2026-11-05T17:30:00.123456789Z\"", "\"time\":null"),
            base.replace("\"complete\":true", "\"complete\":[\"a\",\"b\"]"),
        ] {
            assert_eq!(written(line.as_bytes()).expect("read"), general(line.as_bytes()), "{line}");
        }
        // Bytes after the closing brace are not read by either reader.
        let trailing = format!("{base} trailing");
        assert_eq!(written(trailing.as_bytes()).unwrap(), general(trailing.as_bytes()));
    }

    /// Every single-byte change, deletion and insertion of a written line: both readers agree whenever the fast
    /// one reads the line.
    #[test]
    fn both_readers_agree_on_every_small_change() {
        let base = exchange_line(",\"nik\":[\"k1\",\"k2\"]", Some("policy.no_grant"));
        let base = base.as_bytes();
        let mut fast = 0;
        let mut check = |line: &[u8]| {
            if let Some(f) = written(line) {
                fast += 1;
                assert_eq!(f, general(line), "{}", String::from_utf8_lossy(line));
            }
        };
        for at in 0..base.len() {
            for byte in [b'"', b'\\', b',', b':', b'}', b']', b'[', b' ', b'0', b'9', b'.', b'e', b'a', b't', b'n'] {
                let mut changed = base.to_vec();
                changed[at] = byte;
                check(&changed);
                changed.insert(at, byte);
                check(&changed);
            }
            let mut cut = base.to_vec();
            cut.remove(at);
            check(&cut);
        }
        assert!(fast > base.len(), "the fast reader reads most changed values ({fast})");
    }
}
