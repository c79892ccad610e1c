//! The gateway's own HTTP/1.1 server head parser (`server::http1::request::head`) against `httparse` as the
//! oracle, on mutated real requests and on arbitrary bytes. On the same bytes both must agree on partial /
//! complete / invalid; when both take a head they agree on its length, method, target, version and every header
//! field. The gateway takes only the common case and hands the rest of the connection to hyper untouched: each
//! complete head it does not take must fall under one of the named [`HANDOFF_RULES`], never silently.

use bytes::BytesMut;
use penghubung::server::http1::request::{head, NotTaken};
use penghubung_fuzz::{seeded_input, show};

const SEEDS: &[&[u8]] = &[
    b"GET /dinkes/rekam-medis/v1/pasien/12?x=1 HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\nUser-Agent: curl/8.5.0\r\n\r\n",
    b"GET /bappeda/indikator/v1/ipm?tahun=2025 HTTP/1.1\r\nHost: gw.example.go.id\r\nConnection: keep-alive\r\nX-Request-Id: abc-1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
    b"DELETE /dinsos/bansos/v1/penerima/7 HTTP/1.1\r\nHost: gw\r\nX-Penghubung-Purpose: verifikasi\r\n\r\nGET /next HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"POST /dinsos/bansos/v1/penerima HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /a HTTP/1.0\r\n\r\n",
    b"HEAD /a HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"GET http://gw/a HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"GET /a HTTP/1.1\nHost: gw\nX-A: b\n\n",
    b"GET /a HTTP/1.1\r\nHost: gw\r\nX-Obs: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
];

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"\r\n\r\n",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\x80",
    b"#",
    b"?",
    b"%2e%2e",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: Upgrade\r\n",
    b"Host: a\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: h2c\r\n",
    b" HTTP/1.1",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"X_Forwarded_For: 1.2.3.4\r\n",
    b" folded\r\n",
    b"HEAD",
    b"CONNECT",
    b"g\xc3\xa9t",
    b"\"",
    b"{",
    b"|",
    b"\\",
];

/// A head `httparse` took completely.
#[derive(Debug)]
struct OracleHead {
    len: usize,
    method: String,
    target: String,
    version: u8,
    fields: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
enum Oracle {
    Partial,
    Invalid,
    Complete(OracleHead),
}

fn oracle(bytes: &[u8]) -> Oracle {
    let mut fields = [httparse::EMPTY_HEADER; penghubung::http1::decode::MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Oracle::Partial,
        Err(_) => Oracle::Invalid,
        Ok(httparse::Status::Complete(len)) => Oracle::Complete(OracleHead {
            len,
            method: request.method.unwrap_or_default().to_string(),
            target: request.path.unwrap_or_default().to_string(),
            version: request.version.unwrap_or_default(),
            fields: request.headers.iter().map(|f| (f.name.to_ascii_lowercase(), f.value.to_vec())).collect(),
        }),
    }
}

fn field<'a>(head: &'a OracleHead, name: &str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let name = name.to_string();
    head.fields.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v.as_slice())
}

/// Why the gateway hands a head `httparse` accepted to hyper instead of serving it itself: each rule is a
/// deliberate limit of the fast path (hyper then serves the request, or answers 400/501 itself).
type Rule = (&'static str, fn(&OracleHead) -> bool);

const HANDOFF_RULES: &[Rule] = &[
    ("not_http_1_1", |h| h.version != 1),
    ("head_or_connect", |h| h.method == "HEAD" || h.method == "CONNECT"),
    ("method_not_a_token_for_http", |h| http::Method::from_bytes(h.method.as_bytes()).is_err()),
    ("not_origin_form", |h| !h.target.starts_with('/')),
    ("request_body_framing", |h| {
        field(h, "content-length").next().is_some() || field(h, "transfer-encoding").next().is_some()
    }),
    ("expect_or_upgrade", |h| field(h, "expect").next().is_some() || field(h, "upgrade").next().is_some()),
    ("connection_other_than_keep_alive", |h| field(h, "connection").any(|v| !v.eq_ignore_ascii_case(b"keep-alive"))),
    ("field_not_representable", |h| {
        h.fields.iter().any(|(n, v)| {
            http::HeaderName::from_bytes(n.as_bytes()).is_err() || http::HeaderValue::from_bytes(v).is_err()
        })
    }),
    ("target_not_a_uri", |h| http::Uri::try_from(h.target.as_str()).is_err()),
];

const LARGEST: [usize; 3] = [64, 1024, 16 * 1024];

fn check(input: &[u8]) {
    let Some((&limit, rest)) = input.split_first() else { return };
    let largest = LARGEST[usize::from(limit) % LARGEST.len()];
    let bytes = seeded_input(SEEDS, TOKENS, rest);
    let mut buf = BytesMut::from(&bytes[..]);
    let parsed = head(&mut buf, largest);
    let expected = oracle(&bytes);
    let shown = show(&bytes);
    match (&expected, parsed) {
        (Oracle::Partial, Err(NotTaken::Partial)) if bytes.len() <= largest => {
            assert_eq!(&buf[..], &bytes[..], "{shown}")
        }
        (Oracle::Partial, Err(NotTaken::Handoff)) if bytes.len() > largest => {
            assert_eq!(&buf[..], &bytes[..], "{shown}")
        }
        (Oracle::Invalid, Err(NotTaken::Handoff)) => assert_eq!(&buf[..], &bytes[..], "untouched: {shown}"),
        (Oracle::Complete(h), Err(NotTaken::Handoff)) => {
            assert_eq!(&buf[..], &bytes[..], "untouched: {shown}");
            assert!(
                HANDOFF_RULES.iter().any(|(_, applies)| applies(h)),
                "handed off under no named rule: {h:?}\n{shown}"
            );
        }
        (Oracle::Complete(h), Ok(request)) => {
            if let Some((rule, _)) = HANDOFF_RULES.iter().find(|(_, applies)| applies(h)) {
                panic!("taken although `{rule}` applies: {h:?}\n{shown}");
            }
            assert_eq!(&buf[..], &bytes[h.len..], "what follows the head stays: {shown}");
            assert_eq!(request.method().as_str(), h.method, "{shown}");
            assert_eq!(request.version(), http::Version::HTTP_11, "{shown}");
            let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or_default();
            // Normalisation `fragment_dropped`: `httparse` lets a `#fragment` through, which no request target
            // has (RFC 9112 §3.2); `http::Uri` drops it (so does hyper on the other path), and the gateway routes,
            // logs and forwards the target without it: what it checks is what the upstream gets.
            let without_fragment = h.target.split('#').next().unwrap_or_default();
            assert_eq!(target, without_fragment, "{shown}");
            let mut taken: Vec<(String, Vec<u8>)> =
                request.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
            let mut expected_fields = h.fields.clone();
            // A HeaderMap groups fields by name; the order within one name is kept.
            taken.sort_by(|a, b| a.0.cmp(&b.0));
            expected_fields.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(taken, expected_fields, "{shown}");
        }
        (expected, parsed) => panic!("gateway {parsed:?}, httparse {expected:?}\n{shown}"),
    }
}

#[test]
fn http1_request_head() {
    penghubung_fuzz::fuzz_bytes("http1_request_head", check);
}

/// Fixed cases: one per handoff rule and per agreement, so the rules cannot rot unseen.
#[test]
fn http1_request_head_fixed_cases() {
    for seed in SEEDS {
        let mut input = vec![2u8, 1, 0];
        let index = SEEDS.iter().position(|s| s == seed).unwrap();
        input[2] = index as u8;
        check(&input);
        let mut arbitrary = vec![2u8, 0];
        arbitrary.extend_from_slice(seed);
        check(&arbitrary);
    }
}
