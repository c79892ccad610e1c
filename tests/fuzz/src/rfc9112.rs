//! A straightforward reference reading of an HTTP/1.1 response as RFC 9112 states it, written independently of
//! the gateway's incremental codec (`http1::decode`): the head by `httparse` (the oracle), the body's framing
//! by §6.3, chunked bodies by the grammar of §7.1. It reads the whole input at once, so that the gateway's
//! decoder, fed the same bytes in any pieces, must come to the same result.
//!
//! Where the gateway deliberately differs from the bare RFC, the reference says so under a name:
//! - `trailing_whitespace_after_chunk_size`: `5  \r\n` (BWS with no extension after it) is accepted, as hyper
//!   does: real servers pad chunk sizes, and no reading of it differs;
//! - `chunk_size_below_2^60`: a chunk size of 2^60 or more is refused (leading zeros do not count);
//! - `line_limit`: a chunk-size or trailer line longer than 4096 bytes is refused;
//! - `invalid_content_length_refused`: a `Content-Length` that is not one decimal (or a list of the same one)
//!   of at most 19 digits is refused, also beside `Transfer-Encoding` (where §6.3 would ignore it);
//! - `switching_protocols_refused`: a `101` is refused (the gateway forwards no upgrade);
//! - `status_100_to_999`: statuses below 100 are refused, 600–999 are passed on;
//! - `fields`: hop-by-hop fields are not passed on, except a `Connection` field that names other fields (kept so
//!   that the gateway's hop-by-hop rule removes those too), and `Content-Length` beside `Transfer-Encoding`
//!   is dropped.

/// The longest chunk-size or trailer line (without its CRLF).
pub const MAX_LINE: usize = 4096;

/// What a recipient makes of the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response: the body decoded; `rest` are the bytes after it.
    Response(Response),
    /// Not a valid response (or one the gateway refuses, by a rule above).
    Invalid(&'static str),
    /// The bytes end before the response does.
    Incomplete,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The fields passed on (names lowercase), sorted by name (the order within one name kept).
    pub fields: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Whether the connection may carry another exchange.
    pub reusable: bool,
    pub rest: Vec<u8>,
}

/// Reads one response (after any interim `1xx`) from `bytes`, which end where the connection closes.
pub fn response(bytes: &[u8], head_request: bool) -> Outcome {
    let mut at = 0;
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 100];
        let mut parsed = httparse::Response::new(&mut fields);
        let len = match parsed.parse(&bytes[at..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Outcome::Incomplete,
            Err(_) => return Outcome::Invalid("head"),
        };
        let status = parsed.code.unwrap_or_default();
        let version = parsed.version.unwrap_or_default();
        let fields: Vec<(String, Vec<u8>)> =
            parsed.headers.iter().map(|f| (f.name.to_ascii_lowercase(), f.value.to_vec())).collect();
        at += len;
        match status {
            101 => return Outcome::Invalid("switching_protocols_refused"),
            100..=199 => continue,
            0..=99 => return Outcome::Invalid("status_100_to_999"),
            _ => {}
        }
        return finish(status, version, fields, &bytes[at..], head_request);
    }
}

fn list<'a>(fields: &'a [(String, Vec<u8>)], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

fn finish(status: u16, version: u8, fields: Vec<(String, Vec<u8>)>, after: &[u8], head_request: bool) -> Outcome {
    let has = |name: &str| fields.iter().any(|(n, _)| n == name);
    let transfer_encoding = has("transfer-encoding");
    // `invalid_content_length_refused`: every element of every Content-Length field the same decimal.
    let mut length = None;
    for field in fields.iter().filter(|(n, _)| n == "content-length") {
        for element in field.1.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if element.is_empty() || element.len() > 19 || !element.iter().all(u8::is_ascii_digit) {
                return Outcome::Invalid("invalid_content_length_refused");
            }
            let n: u64 = std::str::from_utf8(element).unwrap().parse().unwrap();
            if length.is_some_and(|seen| seen != n) {
                return Outcome::Invalid("invalid_content_length_refused");
            }
            length = Some(n);
        }
    }
    let close_token = list(&fields, "connection").any(|t| t.eq_ignore_ascii_case(b"close"));
    let keep_alive_token = list(&fields, "connection").any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
    let mut reusable = if version == 0 { keep_alive_token } else { !close_token };
    // §6.3 point 3 and §6.1: both framings, or a Transfer-Encoding in HTTP/1.0, is faulty framing: read as the
    // coding says, then close.
    if transfer_encoding && (length.is_some() || version == 0) {
        reusable = false;
    }
    let mut passed: Vec<(String, Vec<u8>)> = fields
        .iter()
        .filter(|(n, v)| {
            let name = http::HeaderName::from_bytes(n.as_bytes()).unwrap();
            let names_fields = n == "connection"
                && v.split(|&b| b == b',').map(<[u8]>::trim_ascii).any(|t| {
                    !t.is_empty() && !t.eq_ignore_ascii_case(b"close") && !t.eq_ignore_ascii_case(b"keep-alive")
                });
            (!penghubung::http1::is_hop_by_hop(&name) || names_fields) && !(transfer_encoding && n == "content-length")
        })
        .cloned()
        .collect();
    passed.sort_by(|a, b| a.0.cmp(&b.0));
    let respond = |body: Vec<u8>, reusable: bool, rest: &[u8]| {
        Outcome::Response(Response { status, version, fields: passed.clone(), body, reusable, rest: rest.to_vec() })
    };
    if head_request || status == 204 || status == 304 {
        return respond(Vec::new(), reusable, after);
    }
    if transfer_encoding {
        let chunked_last =
            list(&fields, "transfer-encoding").last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        if !chunked_last {
            return respond(after.to_vec(), false, &[]); // §6.3 point 4: until the server closes
        }
        return match chunked(after) {
            Chunked::Body { body, rest } => respond(body, reusable, rest),
            Chunked::Invalid(why) => Outcome::Invalid(why),
            Chunked::Incomplete => Outcome::Incomplete,
        };
    }
    match length {
        Some(n) if (after.len() as u64) < n => Outcome::Incomplete,
        Some(n) => respond(after[..n as usize].to_vec(), reusable, &after[n as usize..]),
        None => respond(after.to_vec(), false, &[]),
    }
}

/// A chunked body read by the grammar of RFC 9112 §7.1.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked<'a> {
    Body { body: Vec<u8>, rest: &'a [u8] },
    Invalid(&'static str),
    Incomplete,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The line at the start of `bytes`, without its CRLF, and what follows it; `None` when no CRLF ends it yet.
fn line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    Some((&bytes[..end], &bytes[end + 2..]))
}

/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, plus
/// `trailing_whitespace_after_chunk_size`.
fn chunk_ext(mut ext: &[u8]) -> bool {
    let skip_ows = |s: &[u8]| -> usize { s.iter().take_while(|&&b| is_ows(b)).count() };
    loop {
        ext = &ext[skip_ows(ext)..];
        let Some(after_semicolon) = ext.strip_prefix(b";") else { return ext.is_empty() };
        ext = &after_semicolon[skip_ows(after_semicolon)..];
        let name = ext.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 {
            return false;
        }
        ext = &ext[name..];
        let before_value = ext;
        ext = &ext[skip_ows(ext)..];
        let Some(after_equals) = ext.strip_prefix(b"=") else {
            ext = before_value;
            continue;
        };
        ext = &after_equals[skip_ows(after_equals)..];
        if let Some(quoted) = ext.strip_prefix(b"\"") {
            // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
            let mut i = 0;
            loop {
                match quoted.get(i) {
                    None => return false,
                    Some(b'"') => break,
                    Some(b'\\') => match quoted.get(i + 1) {
                        Some(&c) if c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) || c >= 0x80 => i += 2,
                        _ => return false,
                    },
                    Some(&c) if c == b'\t' || c == b' ' || c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80 => {
                        i += 1
                    }
                    Some(_) => return false,
                }
            }
            ext = &quoted[i + 1..];
        } else {
            let value = ext.iter().take_while(|&&b| is_tchar(b)).count();
            if value == 0 {
                return false;
            }
            ext = &ext[value..];
        }
    }
}

/// `field-line = field-name ":" OWS field-value OWS`, the value made of VCHAR, obs-text, SP and HTAB.
fn field_line(line: &[u8]) -> bool {
    let name = line.iter().take_while(|&&b| is_tchar(b)).count();
    name > 0
        && line.get(name) == Some(&b':')
        && line[name + 1..].iter().all(|&b| is_ows(b) || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

/// Reads a chunked body from the start of `bytes`.
pub fn chunked(mut bytes: &[u8]) -> Chunked<'_> {
    let mut body = Vec::new();
    loop {
        let Some((size_line, after)) = line(bytes) else {
            return if bytes.len() > MAX_LINE + 1 { Chunked::Invalid("line_limit") } else { Chunked::Incomplete };
        };
        if size_line.len() > MAX_LINE {
            return Chunked::Invalid("line_limit");
        }
        let digits = size_line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Chunked::Invalid("chunk-size");
        }
        let significant = size_line[..digits].iter().skip_while(|&&b| b == b'0').count();
        if significant > 15 {
            return Chunked::Invalid("chunk_size_below_2^60");
        }
        let size = u64::from_str_radix(std::str::from_utf8(&size_line[..digits]).unwrap(), 16).unwrap_or(0);
        if !chunk_ext(&size_line[digits..]) {
            return Chunked::Invalid("chunk-ext");
        }
        bytes = after;
        if size == 0 {
            break;
        }
        if (bytes.len() as u64) < size {
            return Chunked::Incomplete;
        }
        body.extend_from_slice(&bytes[..size as usize]);
        bytes = &bytes[size as usize..];
        match bytes {
            [b'\r', b'\n', rest @ ..] => bytes = rest,
            [] | [b'\r'] => return Chunked::Incomplete,
            _ => return Chunked::Invalid("chunk-data CRLF"),
        }
    }
    // trailer-section CRLF
    loop {
        let Some((trailer, after)) = line(bytes) else {
            return if bytes.len() > MAX_LINE + 1 { Chunked::Invalid("line_limit") } else { Chunked::Incomplete };
        };
        if trailer.len() > MAX_LINE {
            return Chunked::Invalid("line_limit");
        }
        bytes = after;
        if trailer.is_empty() {
            return Chunked::Body { body, rest: bytes };
        }
        if !field_line(trailer) {
            return Chunked::Invalid("trailer field-line");
        }
    }
}
