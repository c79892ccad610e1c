//! Distinguished names as parsed sequences of RDNs, never as display strings.
//!
//! A [`DistinguishedName`] is the sequence of RDNs of an X.501 name in certificate (DER) order; each RDN is a
//! set of attributes (type OID and value). It comes either from a certificate ([`DistinguishedName::from_x509`])
//! or from the RFC 4514 text a `Client` document holds ([`DistinguishedName::parse_rfc4514`]); both end in the
//! same structure, so a comma, a plus sign or an escape inside a value can never forge another attribute.
//!
//! String values (UTF8String, PrintableString, TeletexString, BMPString, UniversalString, IA5String, ...) are
//! prepared as RFC 4518 says for caseIgnoreMatch (RFC 5280 section 7.1): characters mapped to nothing or to a
//! space, case folded, NFKC, prohibited characters refused, insignificant spaces removed. So `Dinas  Kesehatan`
//! in a UTF8String and `dinas kesehatan` in a PrintableString compare equal. Values of other types compare by
//! their exact encoding. RDNs compare in order; the attributes of a multi-valued RDN compare as a set.
//!
//! [`DistinguishedName::key`] is an injective byte encoding of the prepared sequence: the hash key by which the
//! snapshot finds a client per request.

use std::fmt;

use x509_parser::x509::X509Name;

/// Why a name cannot be read (or cannot be matched, RFC 4518: a prohibited character makes a match undefined).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DnError(String);

fn error(message: impl Into<String>) -> DnError {
    DnError(message.into())
}

/// An attribute value, prepared for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttributeValue {
    /// A string type, prepared (RFC 4518, caseIgnoreMatch).
    Text(Box<str>),
    /// Any other type: its tag and content octets, compared exactly.
    Other { class: u8, constructed: bool, tag: u32, content: Box<[u8]> },
}

/// One attribute of an RDN: type and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attribute {
    /// The arcs of the attribute type's OID (`[2, 5, 4, 3]` for CN).
    pub oid: Box<[u64]>,
    pub value: AttributeValue,
}

/// A relative distinguished name: a set of attributes (sorted, so that their order does not matter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rdn(Box<[Attribute]>);

impl Rdn {
    fn new(mut attributes: Vec<Attribute>) -> Self {
        attributes.sort();
        Rdn(attributes.into_boxed_slice())
    }

    pub fn attributes(&self) -> &[Attribute] {
        &self.0
    }
}

/// A distinguished name: its RDNs in certificate order (the most significant first, e.g. `C` before `CN`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistinguishedName(Box<[Rdn]>);

/// The hash key of a [`DistinguishedName`]: an injective encoding of its prepared RDN sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnKey(Box<[u8]>);

/// The attribute types a subject may name by keyword (RFC 4514 section 3, and the usual certificate ones).
/// The first keyword of an OID is the one [`DistinguishedName::to_rfc4514`] writes.
const KEYWORDS: &[(&str, &[u64])] = &[
    ("CN", &[2, 5, 4, 3]),
    ("SN", &[2, 5, 4, 4]),
    ("surname", &[2, 5, 4, 4]),
    ("serialNumber", &[2, 5, 4, 5]),
    ("C", &[2, 5, 4, 6]),
    ("L", &[2, 5, 4, 7]),
    ("ST", &[2, 5, 4, 8]),
    ("S", &[2, 5, 4, 8]),
    ("STREET", &[2, 5, 4, 9]),
    ("O", &[2, 5, 4, 10]),
    ("OU", &[2, 5, 4, 11]),
    ("title", &[2, 5, 4, 12]),
    ("businessCategory", &[2, 5, 4, 15]),
    ("postalCode", &[2, 5, 4, 17]),
    ("name", &[2, 5, 4, 41]),
    ("GN", &[2, 5, 4, 42]),
    ("givenName", &[2, 5, 4, 42]),
    ("initials", &[2, 5, 4, 43]),
    ("generationQualifier", &[2, 5, 4, 44]),
    ("dnQualifier", &[2, 5, 4, 46]),
    ("pseudonym", &[2, 5, 4, 65]),
    ("organizationIdentifier", &[2, 5, 4, 97]),
    ("DC", &[0, 9, 2342, 19_200_300, 100, 1, 25]),
    ("UID", &[0, 9, 2342, 19_200_300, 100, 1, 1]),
    ("emailAddress", &[1, 2, 840, 113_549, 1, 9, 1]),
    ("E", &[1, 2, 840, 113_549, 1, 9, 1]),
];

/// Longest subject text or encoded name accepted (a name is a few hundred bytes; this bounds hostile input).
const MAX_NAME_BYTES: usize = 16 * 1024;

impl DistinguishedName {
    /// The RDNs, in certificate order.
    pub fn rdns(&self) -> &[Rdn] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The subject or issuer of a parsed certificate.
    pub fn from_x509(name: &X509Name<'_>) -> Result<Self, DnError> {
        if name.as_raw().len() > MAX_NAME_BYTES {
            return Err(error("the name is too long"));
        }
        let mut rdns = Vec::new();
        for rdn in name.iter() {
            let mut attributes = Vec::new();
            for attribute in rdn.iter() {
                let oid = oid_arcs(attribute.attr_type().as_bytes())?;
                let any = attribute.attr_value();
                let header = &any.header;
                let value =
                    AttributeValue::from_parts(header.class() as u8, header.constructed(), header.tag().0, any.data)?;
                attributes.push(Attribute { oid, value });
            }
            if attributes.is_empty() {
                return Err(error("an RDN without attributes"));
            }
            rdns.push(Rdn::new(attributes));
        }
        Ok(DistinguishedName(rdns.into_boxed_slice()))
    }

    /// Reads an RFC 4514 string (`CN=app,OU=Diskominfo,O=Pemkab,C=ID`): RDNs separated by `,` and written
    /// last first, attributes of a multi-valued RDN joined by `+`, types by keyword or dotted OID, values with
    /// the escapes `\,` `\+` `\"` `\\` `\;` `\<` `\>` `\=` `\#` `\ ` and `\XX` (UTF-8 bytes in hex), or `#` and the
    /// hex BER encoding of the value. Spaces around `,`, `+` and `=` are allowed. An empty name is refused.
    pub fn parse_rfc4514(text: &str) -> Result<Self, DnError> {
        if text.len() > MAX_NAME_BYTES {
            return Err(error("the subject is too long"));
        }
        let mut reader = Reader { bytes: text.as_bytes(), at: 0 };
        let mut rdns = Vec::new();
        reader.skip_spaces();
        if reader.at_end() {
            return Err(error("the subject is empty"));
        }
        loop {
            let mut attributes = Vec::new();
            let separator = loop {
                attributes.push(reader.attribute()?);
                match reader.next() {
                    Some(b'+') => continue,
                    other => break other,
                }
            };
            rdns.push(Rdn::new(attributes));
            match separator {
                None => break,
                Some(b',') => continue,
                Some(b';') => return Err(error("`;` separates nothing in RFC 4514; write `,` (or `\\;` in a value)")),
                Some(other) => return Err(error(format!("unexpected `{}`", char::from(other).escape_default()))),
            }
        }
        rdns.reverse();
        Ok(DistinguishedName(rdns.into_boxed_slice()))
    }

    /// The RFC 4514 text of the prepared name (last RDN first). Reading it back gives the same name.
    pub fn to_rfc4514(&self) -> String {
        let mut out = String::new();
        for (i, rdn) in self.0.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, attribute) in rdn.0.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                match KEYWORDS.iter().find(|(_, oid)| **oid == *attribute.oid) {
                    Some((keyword, _)) => out.push_str(keyword),
                    None => {
                        let arcs: Vec<String> = attribute.oid.iter().map(u64::to_string).collect();
                        out.push_str(&arcs.join("."));
                    }
                }
                out.push('=');
                match &attribute.value {
                    AttributeValue::Text(text) => escape_value(&mut out, text),
                    AttributeValue::Other { class, constructed, tag, content } => {
                        out.push('#');
                        out.push_str(&hex(&encode_tlv(*class, *constructed, *tag, content)));
                    }
                }
            }
        }
        out
    }

    /// The hash key: counts and lengths before every part, so that no two names share a key.
    pub fn key(&self) -> DnKey {
        let mut out = Vec::with_capacity(64);
        let push_len = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u32).to_be_bytes());
        push_len(&mut out, self.0.len());
        for rdn in self.0.iter() {
            push_len(&mut out, rdn.0.len());
            for attribute in rdn.0.iter() {
                push_len(&mut out, attribute.oid.len());
                for arc in attribute.oid.iter() {
                    out.extend_from_slice(&arc.to_be_bytes());
                }
                match &attribute.value {
                    AttributeValue::Text(text) => {
                        out.push(0);
                        push_len(&mut out, text.len());
                        out.extend_from_slice(text.as_bytes());
                    }
                    AttributeValue::Other { class, constructed, tag, content } => {
                        out.push(1);
                        out.push(*class);
                        out.push(u8::from(*constructed));
                        out.extend_from_slice(&tag.to_be_bytes());
                        push_len(&mut out, content.len());
                        out.extend_from_slice(content);
                    }
                }
            }
        }
        DnKey(out.into_boxed_slice())
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc4514())
    }
}

impl AttributeValue {
    /// A value from its BER parts: string types decoded and prepared, anything else kept as it is.
    pub fn from_parts(class: u8, constructed: bool, tag: u32, content: &[u8]) -> Result<Self, DnError> {
        if class != 0 || constructed {
            return Ok(AttributeValue::Other { class, constructed, tag, content: content.into() });
        }
        let ascii = |name: &str| -> Result<String, DnError> {
            if content.is_ascii() {
                Ok(content.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(error(format!("a {name} with a byte outside ASCII")))
            }
        };
        let text = match tag {
            12 => std::str::from_utf8(content).map_err(|_| error("a UTF8String that is not UTF-8"))?.to_string(),
            18 => ascii("NumericString")?,
            19 => ascii("PrintableString")?,
            22 => ascii("IA5String")?,
            26 => ascii("VisibleString")?,
            // T.61 read as ISO 8859-1, as most implementations do.
            20 => content.iter().map(|&b| char::from(b)).collect(),
            28 => {
                if content.len() % 4 != 0 {
                    return Err(error("a UniversalString whose length is not a multiple of 4"));
                }
                content
                    .chunks_exact(4)
                    .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                    .collect::<Option<String>>()
                    .ok_or_else(|| error("a UniversalString with an invalid character"))?
            }
            30 => {
                if content.len() % 2 != 0 {
                    return Err(error("a BMPString whose length is odd"));
                }
                let units = content.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| error("a BMPString with an invalid character"))?
            }
            _ => return Ok(AttributeValue::Other { class, constructed, tag, content: content.into() }),
        };
        Ok(AttributeValue::Text(prepare(&text)?.into_boxed_str()))
    }
}

/// RFC 4518 string preparation for caseIgnoreMatch: map, fold case, NFKC, prohibit, remove insignificant
/// spaces. Repeated until nothing changes (a fold can undo what NFKC composed), so that preparing a prepared
/// string gives it back.
pub fn prepare(text: &str) -> Result<String, DnError> {
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
    let mut current = text.to_string();
    for _ in 0..4 {
        let mut mapped = String::with_capacity(current.len());
        for c in current.chars() {
            match c {
                '\u{9}'..='\u{d}' | '\u{85}' => mapped.push(' '),
                '\u{ad}' | '\u{1806}' | '\u{34f}' | '\u{180b}'..='\u{180d}' | '\u{fe00}'..='\u{fe0f}' | '\u{fffc}' => {}
                '\u{200b}' => {}
                '\u{0}'..='\u{8}'
                | '\u{e}'..='\u{1f}'
                | '\u{7f}'..='\u{84}'
                | '\u{86}'..='\u{9f}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{180e}'
                | '\u{200c}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2063}'
                | '\u{206a}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}' => {}
                '\u{a0}'
                | '\u{1680}'
                | '\u{2000}'..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}' => mapped.push(' '),
                c => mapped.extend(c.to_uppercase().flat_map(char::to_lowercase)),
            }
        }
        let normalised = nfkc.normalize(&mapped);
        if let Some(bad) = normalised.chars().find(|c| prohibited(*c)) {
            return Err(error(format!("the character U+{:04X} is prohibited in a name (RFC 4518)", u32::from(bad))));
        }
        let next = normalised.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        if next == current {
            return Ok(next);
        }
        current = next;
    }
    Ok(current)
}

/// RFC 4518 section 2.4: private use, non-characters, the replacement character and the deprecated
/// display-changing characters.
fn prohibited(c: char) -> bool {
    let u = u32::from(c);
    matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD | 0xFDD0..=0xFDEF | 0xFFFD)
        || u & 0xFFFE == 0xFFFE
        || matches!(u, 0x340 | 0x341)
}

/// Writes a prepared value with RFC 4514 escapes.
fn escape_value(out: &mut String, text: &str) {
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
}

/// The arcs of an OID from its content octets (minimal base-128 encoding, arcs that fit 64 bits).
fn oid_arcs(bytes: &[u8]) -> Result<Box<[u64]>, DnError> {
    let bad = || error("an attribute type that is not a valid OID");
    if bytes.is_empty() || bytes.len() > 64 {
        return Err(bad());
    }
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    let mut started = false;
    for &b in bytes {
        if !started && b == 0x80 {
            return Err(bad()); // not minimal
        }
        started = true;
        value = value.checked_mul(128).ok_or_else(bad)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
            started = false;
        }
    }
    if started {
        return Err(bad());
    }
    Ok(arcs.into_boxed_slice())
}

/// Identifier octets, definite length and content.
fn encode_tlv(class: u8, constructed: bool, tag: u32, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    let first = (class << 6) | if constructed { 0x20 } else { 0 };
    if tag < 31 {
        out.push(first | tag as u8);
    } else {
        out.push(first | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i > 0 { g | 0x80 } else { *g });
        }
    }
    let len = content.len();
    if len < 128 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one BER value (`#hex` in RFC 4514): identifier, definite length, content, nothing after it.
fn decode_tlv(bytes: &[u8]) -> Result<AttributeValue, DnError> {
    let bad = |what: &str| error(format!("the `#` value is not one BER value: {what}"));
    let (&first, mut rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    let class = first >> 6;
    let constructed = first & 0x20 != 0;
    let mut tag = u32::from(first & 0x1f);
    if tag == 0x1f {
        tag = 0;
        let mut count = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or_else(|| bad("truncated tag"))?;
            rest = r;
            count += 1;
            // Minimal, and within 32 bits (what a certificate's tag can be; five groups of seven bits).
            if count > 5 || (count == 1 && b == 0x80) || tag > u32::MAX >> 7 {
                return Err(bad("tag number too long"));
            }
            tag = (tag << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&len_byte, r) = rest.split_first().ok_or_else(|| bad("no length"))?;
    rest = r;
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("indefinite or impossible length"));
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() != len {
        return Err(bad("the length does not match the content"));
    }
    AttributeValue::from_parts(class, constructed, tag, rest)
}

/// A cursor over RFC 4514 text.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// `type=value`, with the spaces around it; stops before `+`, `,` or `;`.
    fn attribute(&mut self) -> Result<Attribute, DnError> {
        self.skip_spaces();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            self.at += 1;
        }
        let name = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
        let oid = attribute_type(name)?;
        self.skip_spaces();
        if self.next() != Some(b'=') {
            return Err(error(format!("`=` expected after the attribute type `{name}`")));
        }
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.at += 1;
            let start = self.at;
            while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                self.at += 1;
            }
            let digits = &self.bytes[start..self.at];
            if digits.is_empty() || digits.len() % 2 != 0 {
                return Err(error("a `#` value needs an even number of hex digits"));
            }
            let bytes: Vec<u8> = digits.chunks(2).map(|pair| hex_value(pair[0]) << 4 | hex_value(pair[1])).collect();
            self.skip_spaces();
            decode_tlv(&bytes)?
        } else {
            AttributeValue::Text(prepare(&self.string()?)?.into_boxed_str())
        };
        Ok(Attribute { oid, value })
    }

    /// A string value up to an unescaped `+`, `,` or `;` (escapes resolved, UTF-8 checked).
    fn string(&mut self) -> Result<String, DnError> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b'+' | b',' | b';' => break,
                b'\\' => {
                    self.at += 1;
                    match self.next() {
                        Some(c @ (b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b' ' | b'#' | b'=')) => out.push(c),
                        Some(h) if h.is_ascii_hexdigit() => match self.next() {
                            Some(l) if l.is_ascii_hexdigit() => out.push(hex_value(h) << 4 | hex_value(l)),
                            _ => return Err(error("`\\` must be followed by two hex digits or a special character")),
                        },
                        _ => return Err(error("`\\` must be followed by two hex digits or a special character")),
                    }
                }
                b'"' | b'<' | b'>' | 0 => {
                    return Err(error(format!("`{}` must be escaped in a value", char::from(b).escape_default())))
                }
                _ => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| error("the escaped bytes of a value are not UTF-8"))
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// A keyword (case-insensitive) or a dotted OID (`2.5.4.3`, also `OID.2.5.4.3`).
fn attribute_type(name: &str) -> Result<Box<[u64]>, DnError> {
    if name.is_empty() {
        return Err(error("an attribute type is missing"));
    }
    if let Some((_, oid)) = KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return Ok((*oid).into());
    }
    let dotted = name.strip_prefix("OID.").or_else(|| name.strip_prefix("oid.")).unwrap_or(name);
    if dotted.starts_with(|c: char| c.is_ascii_digit()) {
        let arcs: Option<Vec<u64>> = dotted
            .split('.')
            .map(|arc| {
                let minimal = arc == "0" || !arc.starts_with('0');
                (minimal && !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| arc.parse::<u64>().ok())
                    .flatten()
            })
            .collect();
        if let Some(arcs) = arcs {
            // The first two arcs share one subidentifier (40 * first + second), which must fit 64 bits.
            let valid =
                arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40) && arcs[0] * 40 <= u64::MAX - arcs[1];
            if valid {
                return Ok(arcs.into_boxed_slice());
            }
        }
        return Err(error(format!("`{name}` is not a valid OID")));
    }
    Err(error(format!("unknown attribute type `{name}` (use a keyword such as CN, OU, O, C, or a dotted OID)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn parse(text: &str) -> DistinguishedName {
        DistinguishedName::parse_rfc4514(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The subject of a certificate made by rcgen from `(type, value)` pairs in DER order.
    fn certificate_subject(entries: &[(rcgen::DnType, rcgen::DnValue)]) -> DistinguishedName {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in entries {
            params.distinguished_name.push(kind.clone(), value.clone());
        }
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        DistinguishedName::from_x509(parsed.subject()).unwrap()
    }

    fn utf8(text: &str) -> rcgen::DnValue {
        rcgen::DnValue::Utf8String(text.into())
    }

    #[test]
    fn a_comma_inside_a_value_is_one_value_not_more_attributes() {
        use rcgen::DnType::*;
        // The review's forged certificate: one CN holding the text of another client's whole DN.
        let forged = certificate_subject(&[(CommonName, utf8("dashboard,OU=Diskominfo,O=Pemkab,C=ID"))]);
        let dashboard = parse("CN=dashboard,OU=Diskominfo,O=Pemkab,C=ID");
        assert_ne!(forged.key(), dashboard.key());
        assert_eq!(forged.rdns().len(), 1);
        assert_eq!(forged.key(), parse("CN=dashboard\\,OU=Diskominfo\\,O=Pemkab\\,C=ID").key());
        assert_eq!(forged.key(), parse("CN=dashboard\\2COU=Diskominfo\\2CO=Pemkab\\2CC=ID").key());
        // The same with `+` (a forged multi-valued RDN) and with `;` (an old separator).
        let plus = certificate_subject(&[(CommonName, utf8("dashboard+OU=Diskominfo"))]);
        assert_ne!(plus.key(), parse("CN=dashboard+OU=Diskominfo").key());
        assert_eq!(plus.key(), parse("CN=dashboard\\+OU=Diskominfo").key());
        let semicolon = certificate_subject(&[(CommonName, utf8("dashboard;OU=Diskominfo"))]);
        assert_eq!(semicolon.key(), parse("CN=dashboard\\;OU=Diskominfo").key());
        assert!(DistinguishedName::parse_rfc4514("CN=dashboard;OU=Diskominfo").is_err());
        // Quotes, backslashes, `=` and a leading `#` inside values.
        let odd = certificate_subject(&[(CommonName, utf8("a\"b\\c=d")), (OrganizationName, utf8("#1 <x>"))]);
        assert_eq!(odd.key(), parse("O=\\#1 \\<x\\>,CN=a\\\"b\\\\c=d").key());
        assert_eq!(odd.key(), parse(&odd.to_rfc4514()).key());
    }

    #[test]
    fn rdns_compare_in_order_and_multi_valued_rdns_as_sets() {
        use rcgen::DnType::*;
        let ordered = certificate_subject(&[(CountryName, utf8("ID")), (CommonName, utf8("app"))]);
        assert_eq!(ordered.key(), parse("CN=app,C=ID").key());
        assert_ne!(ordered.key(), parse("C=ID,CN=app").key(), "RFC 4514 writes the last RDN first");
        assert_ne!(ordered.key(), parse("CN=app+C=ID").key(), "one multi-valued RDN is not two RDNs");
        assert_eq!(parse("CN=app+OU=x,C=ID").key(), parse("OU=x + CN=app , C=ID").key());
        assert_ne!(parse("CN=app+OU=x,C=ID").key(), parse("CN=app,OU=x,C=ID").key());
        assert_ne!(parse("CN=app,C=ID").key(), parse("CN=app,C=ID,C=ID").key());
    }

    #[test]
    fn string_types_compare_by_their_characters_ignoring_case_and_extra_spaces() {
        use rcgen::DnType::*;
        let printable = certificate_subject(&[
            (CountryName, rcgen::DnValue::PrintableString("ID".try_into().unwrap())),
            (OrganizationName, rcgen::DnValue::PrintableString("Dinas Kesehatan".try_into().unwrap())),
        ]);
        let utf8_name =
            certificate_subject(&[(CountryName, utf8("id")), (OrganizationName, utf8("  dinas   KESEHATAN "))]);
        let bmp = certificate_subject(&[
            (CountryName, rcgen::DnValue::BmpString("ID".try_into().unwrap())),
            (OrganizationName, rcgen::DnValue::BmpString("Dinas Kesehatan".try_into().unwrap())),
        ]);
        let teletex = certificate_subject(&[
            (CountryName, rcgen::DnValue::TeletexString("ID".try_into().unwrap())),
            (OrganizationName, rcgen::DnValue::TeletexString("DINAS KESEHATAN".try_into().unwrap())),
        ]);
        let universal = certificate_subject(&[
            (CountryName, rcgen::DnValue::UniversalString("ID".try_into().unwrap())),
            (OrganizationName, rcgen::DnValue::UniversalString("Dinas\tKesehatan".try_into().unwrap())),
        ]);
        let text = parse("O=Dinas Kesehatan,C=ID");
        for name in [&printable, &utf8_name, &bmp, &teletex, &universal] {
            assert_eq!(name.key(), text.key(), "{name}");
        }
        assert_ne!(text.key(), parse("O=Dinas Kesehatan Kota,C=ID").key());
        assert_ne!(text.key(), parse("O=DinasKesehatan,C=ID").key());
        // Non-ASCII through escapes and as it is; NFKC and the characters mapped to nothing.
        assert_eq!(parse("CN=Dinas Pendidikan \\C3\\89").key(), parse("CN=dinas pendidikan é").key());
        assert_eq!(parse("CN=e\u{301}").key(), parse("CN=\u{e9}").key());
        assert_eq!(parse("CN=ｄａｓｈｂｏａｒｄ").key(), parse("CN=dashboard").key());
        assert_eq!(parse("CN=dash\u{ad}board").key(), parse("CN=dashboard").key());
        assert_eq!(parse("CN=Straße").key(), parse("CN=STRASSE").key());
    }

    #[test]
    fn hex_values_and_oids_name_the_same_attributes() {
        // #0c03617070: UTF8String "app"; #13024944: PrintableString "ID".
        assert_eq!(parse("2.5.4.3=#0c03617070,C=#13024944").key(), parse("CN=APP,C=id").key());
        assert_eq!(parse("OID.2.5.4.3=app").key(), parse("cn=app").key());
        // A value of another type compares by its encoding: an INTEGER is not the string "1".
        // Tags of any size within 32 bits read back (five octets of tag number).
        for big in ["2.5.4.3=#9f8fffffff7f00", "2.5.4.3=#bf1f0105", "2.5.4.3=#1f2000"] {
            let name = parse(big);
            assert_eq!(parse(&name.to_rfc4514()), name, "{big}");
        }
        assert!(DistinguishedName::parse_rfc4514("2.5.4.3=#9f9fffffff7f00").is_err(), "beyond 32 bits");
        let integer = parse("2.5.4.5=#020101");
        assert_ne!(integer.key(), parse("serialNumber=1").key());
        assert_eq!(integer.key(), parse(&integer.to_rfc4514()).key());
    }

    #[test]
    fn subjects_that_are_not_rfc4514_are_refused() {
        for bad in [
            "",
            "   ",
            "CN",
            "CN=a,",
            "CN=a,,O=b",
            "=a",
            "XX=a",
            "CN=a\"b",
            "CN=a\\",
            "CN=a\\q",
            "CN=a\\4",
            "CN=\\ff",
            "CN=#",
            "CN=#0c",
            "CN=#0c0461",
            "CN=#0c01ff",
            "CN=a;O=b",
            "1=a",
            "1.=a",
            "3.1=a",
            "1.40=a",
            "2.05.4=a",
            "CN=a<b",
            "CN=\u{e000}",
            "CN=a\u{fffd}",
        ] {
            assert!(DistinguishedName::parse_rfc4514(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn prepared_names_read_back_to_the_same_name() {
        for text in [
            "CN=app,OU=Diskominfo,O=Pemerintah Kabupaten Lampung Timur,C=ID",
            "CN=\\#x\\ ,O=\\ a \\ ",
            "CN=a\\+b+UID=c\\,d,DC=example,DC=go,DC=id",
            "1.3.6.1.4.1.99999.1=#04020102",
            "CN=",
            "CN=\\\\\\\"",
        ] {
            let name = parse(text);
            let again = parse(&name.to_rfc4514());
            assert_eq!(name, again, "{text} -> {}", name.to_rfc4514());
        }
    }
}
