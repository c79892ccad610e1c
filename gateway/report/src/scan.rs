//! Reading record lines without building a JSON tree: [`members`] walks the flat object the audit writer
//! writes (`{"seq":…,"prev":"…","kind":"…",…,"hash":"…"}`) member by member, borrowing every key and value
//! from the line. It reads any valid flat JSON object (any member order; arrays of scalars are skipped), so a
//! record rewritten by another tool still parses; a line it cannot read is reported as malformed by the caller.

use std::borrow::Cow;

/// A member's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string's raw bytes between its quotes; `escaped` when it holds a backslash escape.
    Str { raw: &'a [u8], escaped: bool },
    /// A non-negative integer.
    Num(u64),
    /// Anything else (booleans, null, arrays, other numbers).
    Other,
}

impl<'a> Value<'a> {
    /// The string's text (unescaped when needed); `None` for a non-string or invalid UTF-8.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Str { raw, escaped: false } => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
            Value::Str { raw, escaped: true } => {
                let mut quoted = Vec::with_capacity(raw.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(raw);
                quoted.push(b'"');
                serde_json::from_slice::<String>(&quoted).ok().map(Cow::Owned)
            }
            _ => None,
        }
    }

    pub fn num(self) -> Option<u64> {
        match self {
            Value::Num(n) => Some(n),
            _ => None,
        }
    }
}

/// The members of a flat JSON object, in order. Stops (yielding `Err`) at the first byte that does not fit.
pub fn members(line: &[u8]) -> Members<'_> {
    Members { b: line, i: 0, opened: false, done: false }
}

pub struct Members<'a> {
    b: &'a [u8],
    i: usize,
    /// The object's `{` was read (it may follow whitespace).
    opened: bool,
    done: bool,
}

/// How many bytes of a string are searched a word at a time before a vector search.
const SHORT: usize = 32;

/// The index of the first `"` or `\\` byte of a little-endian word (SWAR: a byte equal to the one sought becomes
/// zero, and the lowest zero byte is found exactly).
fn quote_or_backslash(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let found = zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')));
    (found != 0).then(|| found.trailing_zeros() as usize / 8)
}

/// A line that is not a flat JSON object.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl<'a> Members<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    /// The bytes of a string whose opening quote is at `self.i`; leaves `self.i` after the closing quote.
    fn string(&mut self) -> Result<(&'a [u8], bool), Malformed> {
        let start = self.i + 1;
        let rest = self.b.get(start..).ok_or(Malformed)?;
        // Most strings are short (every key, ids, codes): their first bytes are searched a word at a time, in
        // line, before a vector search (which costs more to set up than a short string takes).
        let mut from = 0;
        while from < SHORT && from + 8 <= rest.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&rest[from..from + 8]);
            match quote_or_backslash(u64::from_le_bytes(word)) {
                Some(at) if rest[from + at] == b'"' => {
                    self.i = start + from + at + 1;
                    return Ok((&rest[..from + at], false));
                }
                Some(at) => {
                    from += at;
                    break;
                }
                None => from += 8,
            }
        }
        let mut escaped = false;
        loop {
            let at = from + memchr::memchr2(b'"', b'\\', rest.get(from..).ok_or(Malformed)?).ok_or(Malformed)?;
            if rest[at] == b'"' {
                self.i = start + at + 1;
                return Ok((&rest[..at], escaped));
            }
            escaped = true;
            from = at + 2;
        }
    }

    fn value(&mut self) -> Result<Value<'a>, Malformed> {
        self.skip_ws();
        match self.b.get(self.i) {
            Some(b'"') => self.string().map(|(raw, escaped)| Value::Str { raw, escaped }),
            Some(b'0'..=b'9') => {
                let start = self.i;
                let mut n: u64 = 0;
                let mut overflow = false;
                while let Some(d @ b'0'..=b'9') = self.b.get(self.i) {
                    match n.checked_mul(10).and_then(|n| n.checked_add(u64::from(d - b'0'))) {
                        Some(v) => n = v,
                        None => overflow = true,
                    }
                    self.i += 1;
                }
                if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) || overflow {
                    self.scalar_rest();
                    return Ok(Value::Other);
                }
                debug_assert!(self.i > start);
                Ok(Value::Num(n))
            }
            Some(b'[' | b'{') => {
                let mut depth = 0usize;
                while let Some(&c) = self.b.get(self.i) {
                    match c {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(Value::Other);
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(Malformed)
            }
            Some(_) => {
                self.scalar_rest();
                Ok(Value::Other)
            }
            None => Err(Malformed),
        }
    }

    /// Skips a literal or a number's remainder up to the next `,` or `}`.
    fn scalar_rest(&mut self) {
        while self.i < self.b.len() && !matches!(self.b[self.i], b',' | b'}') {
            self.i += 1;
        }
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a [u8], Value<'a>), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.skip_ws();
        let fail = |m: &mut Self| {
            m.done = true;
            Some(Err(Malformed))
        };
        match self.b.get(self.i) {
            Some(b'{') if !self.opened => {
                self.opened = true;
                self.i += 1;
            }
            Some(b',') if self.opened => self.i += 1,
            Some(b'}') if self.opened => {
                self.done = true;
                return None;
            }
            _ => return fail(self),
        }
        self.skip_ws();
        if self.b.get(self.i) != Some(&b'"') {
            // `{}`: an empty object.
            if self.b.get(self.i) == Some(&b'}') {
                self.done = true;
                return None;
            }
            return fail(self);
        }
        let Ok((key, _)) = self.string() else { return fail(self) };
        self.skip_ws();
        if self.b.get(self.i) != Some(&b':') {
            return fail(self);
        }
        self.i += 1;
        match self.value() {
            Ok(value) => Some(Ok((key, value))),
            Err(_) => fail(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_end_at_their_first_unescaped_quote_wherever_it_falls() {
        for len in 0..80 {
            let text = "x".repeat(len);
            let line = format!("{{\"k\":\"{text}\",\"e\":\"{}\\\"q\"}}", "y".repeat(len));
            let all: Vec<_> = members(line.as_bytes()).collect::<Result<_, _>>().unwrap();
            assert_eq!(all[0].1.text().unwrap(), text);
            assert_eq!(all[1].1.text().unwrap(), format!("{}\"q", "y".repeat(len)));
        }
    }

    #[test]
    fn members_of_a_record_line() {
        let line = br#"{"seq":12,"prev":"ab","kind":"exchange","nik":["a\"]","b"],"x":{"y":[1]},"ok":true,"f":1.5,"s":"a\"b","hash":"cd"}"#;
        let all: Vec<_> = members(line).collect::<Result<_, _>>().unwrap();
        let keys: Vec<&[u8]> = all.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [&b"seq"[..], b"prev", b"kind", b"nik", b"x", b"ok", b"f", b"s", b"hash"]);
        assert_eq!(all[0].1, Value::Num(12));
        assert_eq!(all[2].1.text().unwrap(), "exchange");
        assert_eq!(all[3].1, Value::Other);
        assert_eq!(all[6].1, Value::Other);
        assert_eq!(all[7].1.text().unwrap(), "a\"b");
        for bad in [&b"{\"a\":"[..], b"{\"a\" 1}", b"[1]", b"{\"a\":\"open}", b"{\"a\":1,,}"] {
            assert!(members(bad).any(|m| m.is_err()), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(members(b"{}").count(), 0);
        // Whitespace around the object, as any JSON reader takes it; a lone `}` is not an object.
        let spaced: Vec<_> = members(b" \t{ \"seq\" : 7 }").collect::<Result<_, _>>().unwrap();
        assert_eq!(spaced, [(&b"seq"[..], Value::Num(7))]);
        assert!(members(b"}").any(|m| m.is_err()));
    }
}
