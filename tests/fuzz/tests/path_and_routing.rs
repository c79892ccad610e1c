//! Path checking and routing (`routing::path::split_service_path`, the operation and route tables), by
//! properties rather than an oracle, on mutated real paths (with the hostile spellings as tokens) and arbitrary
//! bytes:
//! - no panic;
//! - an accepted path splits into its parts and nothing else;
//! - no accepted segment is, in any spelling after decoding (once, twice, `%u`, Unicode compatibility forms,
//!   with a `;` path parameter cut off, with trailing dots and spaces dropped), `.` or `..` or empty, nor holds
//!   a `/`, `\` or control byte, nor fails to be UTF-8;
//! - spelling a path differently (letters and digits percent-encoded, escapes in the other case) neither
//!   changes whether it is refused as a path nor, when both spellings reach a service, which service and
//!   operation they reach.

use penghubung::error::GatewayError;
use penghubung::routing::{split_service_path, CompiledOperation, OperationTable, RouteTable};
use penghubung_fuzz::seeded_input;
use percent_encoding::percent_decode;

const SEEDS: &[&[u8]] = &[
    b"/dinkes/rekam-medis/v1/pasien/RM-12",
    b"/dinkes/rekam-medis/v1/pasien/RM-12/kunjungan",
    b"/dinkes/rekam-medis/v2/pasien/rahasia",
    b"/dinkes/rekam-medis/v1/pasien",
    b"/bappeda/indikator/v1/ipm/2025.json",
    b"/disdukcapil/kependudukan/v1/penduduk/3201010101010001",
    b"/dinkes/rekam-medis/v1/pasien/caf%C3%A9/a%20b",
    b"/dinkes/rekam-medis/v1/",
    b"/dinkes/rekam-medis/v1/laporan;versi=2/x",
];

const TOKENS: &[&[u8]] = &[
    b"/",
    b".",
    b"..",
    b"/../",
    b"/./",
    b"%2e",
    b"%2E",
    b"%2f",
    b"%2F",
    b"%5c",
    b"\\",
    b";",
    b"..;",
    b"%3b",
    b"%3B",
    b"%25",
    b"%252e",
    b"%252f",
    b"%25u002e",
    b"%u002e",
    b"%c0%ae",
    b"%c0%af",
    b"%e0%80%ae",
    b"%ef%bc%8e",
    b"%ef%bc%8f",
    b"%e2%80%a5",
    b"%e2%80%a4",
    b"%cd%be",
    b"%00",
    b"%0a",
    b"%7f",
    b"%20",
    b" ",
    b"%",
    b"%%",
    b"%g0",
    b"//",
    b"v1",
    b"v0",
    b"v01",
    b"\xef\xbc\x8e",
    b"\xc3\xa9",
    b"?",
    b"#",
];

/// Unicode characters whose compatibility form (NFKC) holds `.`, `/`, `\` or `;`, with that form (the whole
/// list, computed from the Unicode tables), so that the property sees what a normalising backend sees.
const COMPATIBILITY: &[(char, &str)] = &[
    ('\u{37e}', ";"),
    ('\u{2024}', "."),
    ('\u{2025}', ".."),
    ('\u{2026}', "..."),
    ('\u{2100}', "a/c"),
    ('\u{2101}', "a/s"),
    ('\u{2105}', "c/o"),
    ('\u{2106}', "c/u"),
    ('\u{2488}', "1."),
    ('\u{2489}', "2."),
    ('\u{248a}', "3."),
    ('\u{248b}', "4."),
    ('\u{248c}', "5."),
    ('\u{248d}', "6."),
    ('\u{248e}', "7."),
    ('\u{248f}', "8."),
    ('\u{2490}', "9."),
    ('\u{2491}', "10."),
    ('\u{2492}', "11."),
    ('\u{2493}', "12."),
    ('\u{2494}', "13."),
    ('\u{2495}', "14."),
    ('\u{2496}', "15."),
    ('\u{2497}', "16."),
    ('\u{2498}', "17."),
    ('\u{2499}', "18."),
    ('\u{249a}', "19."),
    ('\u{249b}', "20."),
    ('\u{33c2}', "a.m."),
    ('\u{33c7}', "Co."),
    ('\u{33d8}', "p.m."),
    ('\u{fe14}', ";"),
    ('\u{fe19}', "..."),
    ('\u{fe30}', ".."),
    ('\u{fe52}', "."),
    ('\u{fe54}', ";"),
    ('\u{fe68}', "\\"),
    ('\u{ff0e}', "."),
    ('\u{ff0f}', "/"),
    ('\u{ff1b}', ";"),
    ('\u{ff3c}', "\\"),
    ('\u{1f100}', "0."),
];

fn compatibility_form(text: &str) -> String {
    text.chars()
        .map(|c| {
            COMPATIBILITY.iter().find(|(from, _)| *from == c).map_or_else(|| c.to_string(), |(_, to)| to.to_string())
        })
        .collect()
}

/// Whether a name is what servers read as the current or parent folder: dots (and spaces, which Windows-style
/// servers drop at the end of a name) only, or nothing at all.
fn is_dot_name(name: &str) -> bool {
    name.is_empty() || (name.contains('.') && name.chars().all(|c| c == '.' || c == ' '))
}

fn assert_segment_is_safe(segment: &str, path: &str) {
    assert!(!segment.is_empty(), "empty segment in {path:?}");
    let once = percent_decode(segment.as_bytes()).collect::<Vec<u8>>();
    assert!(!once.iter().any(|&b| b == b'/' || b == b'\\' || b < 0x20 || b == 0x7f), "{segment:?} in {path:?}");
    let Ok(once) = String::from_utf8(once) else { panic!("not UTF-8 once decoded: {segment:?} in {path:?}") };
    let twice = percent_decode(once.as_bytes()).collect::<Vec<u8>>();
    assert_eq!(twice, once.as_bytes(), "a second decoding changes {segment:?} in {path:?}");
    let u_escape = once
        .match_indices("%u")
        .chain(once.match_indices("%U"))
        .any(|(at, _)| once.as_bytes().get(at + 2..at + 6).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    assert!(!u_escape, "a %u escape after decoding {segment:?} in {path:?}");
    for form in [once.clone(), compatibility_form(&once)] {
        assert!(!form.contains('/') && !form.contains('\\'), "a separator in {form:?} of {segment:?} in {path:?}");
        let name = form.split(';').next().unwrap_or_default();
        assert!(!is_dot_name(name), "a dot name {name:?} from {segment:?} in {path:?}");
    }
    // A servlet container cuts the parameter off the raw segment, then decodes.
    let raw_name = segment.split(';').next().unwrap_or_default();
    let raw_name = percent_decode(raw_name.as_bytes()).decode_utf8_lossy();
    assert!(!is_dot_name(&raw_name), "a dot name {raw_name:?} from {segment:?} in {path:?}");
}

/// `path` spelt differently: letters and digits that `choices` picks percent-encoded, the hex digits of its
/// escapes in the other case. It means the same to every server.
fn respell(path: &str, choices: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() * 3);
    let mut escape_left = 0;
    for (i, c) in path.chars().enumerate() {
        let choice = choices.get(i % choices.len().max(1)).copied().unwrap_or(0);
        if escape_left > 0 {
            escape_left -= 1;
            out.push(if choice & 1 == 1 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        } else if c == '%' {
            escape_left = 2;
            out.push(c);
        } else if c.is_ascii_alphanumeric() && choice & 2 == 2 && i > 0 {
            out.push_str(&format!("%{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    out
}

struct Tables {
    routes: RouteTable,
    operations: OperationTable,
}

fn tables() -> Tables {
    let mut routes = RouteTable::default();
    routes.insert("dinkes", "rekam-medis", 1, 0);
    routes.insert("dinkes", "rekam-medis", 2, 1);
    routes.insert("bappeda", "indikator", 1, 2);
    routes.insert("disdukcapil", "kependudukan", 1, 3);
    let operations = [
        ("ambil", "GET", "/pasien/{id}"),
        ("kunjungan", "GET", "/pasien/{id}/kunjungan"),
        ("baru", "POST", "/pasien"),
        ("rahasia", "GET", "/pasien/rahasia"),
        ("hapus", "DELETE", "/pasien/{id}"),
        ("ipm", "GET", "/ipm/{tahun}"),
    ];
    let operations = operations
        .iter()
        .enumerate()
        .map(|(i, (id, method, template))| CompiledOperation::new(i, id, method, template).unwrap())
        .collect();
    Tables { routes, operations: OperationTable::new(operations) }
}

/// The operation a path matched (`None` on a pass-through service), or the code of the error.
type Operation = Result<Option<String>, &'static str>;

/// Where a path leads: refused (with the code), or the service index and the operation.
fn route(tables: &Tables, path: &str) -> Result<(Option<usize>, Operation), &'static str> {
    let address = split_service_path(path).map_err(|e| GatewayError::from(e).code())?;
    let service = tables.routes.find(address.opd, address.service, address.major);
    let operation = tables
        .operations
        .find(&http::Method::GET, address.rest)
        .map(|op| op.map(|op| op.id.to_string()))
        .map_err(|e| GatewayError::from(e).code());
    Ok((service, operation))
}

fn check(tables: &Tables, input: &[u8]) {
    let Some((&respell_len, rest)) = input.split_first() else { return };
    let (choices, rest) = rest.split_at((usize::from(respell_len) % 8).min(rest.len()));
    let bytes = seeded_input(SEEDS, TOKENS, rest);
    let path = String::from_utf8_lossy(&bytes);
    let Ok(address) = split_service_path(&path) else {
        return;
    };
    let version = format!("v{}", address.major);
    assert_eq!(format!("/{}/{}/{version}{}", address.opd, address.service, address.rest), path, "split of {path:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if i == last && i >= 3 && segment.is_empty() {
            continue; // a trailing slash after the service address
        }
        assert_segment_is_safe(segment, &path);
    }
    let respelt = respell(&path, choices);
    let (original, other) = (route(tables, &path), route(tables, &respelt));
    // Refused as a path or not: the same for every spelling. (The service address is looked up as spelt, so
    // an encoded `v1` or OPD is not found: 404, never another service.)
    let refused = |r: &Result<_, &str>| matches!(r, Err("request.invalid_path"));
    assert_eq!(refused(&original), refused(&other), "{path:?} and {respelt:?}: {original:?} / {other:?}");
    if let (Ok((Some(a), op_a)), Ok((Some(b), op_b))) = (&original, &other) {
        assert_eq!((a, op_a), (b, op_b), "{path:?} and {respelt:?} lead to different places");
    }
}

#[test]
fn path_and_routing() {
    let tables = tables();
    penghubung_fuzz::fuzz_bytes("path_and_routing", |input| check(&tables, input));
}

#[test]
fn path_and_routing_seeds_and_tokens() {
    let tables = tables();
    for index in 0..SEEDS.len() {
        check(&tables, &[2, 3, 2, 1, index as u8]);
        for token in 0..TOKENS.len() {
            // The seed with one token inserted at its end, and in its middle.
            check(&tables, &[2, 3, 2, 1, index as u8, 3, 0xff, 0xff, token as u8]);
            check(&tables, &[2, 3, 2, 1, index as u8, 3, 0, 24, token as u8]);
        }
    }
}
