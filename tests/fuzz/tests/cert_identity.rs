//! Certificate identity extraction (`PeerCertificate::parse`: subject DN, SPIFFE URI SANs, fingerprint) on
//! mutated DER of generated certificates and on arbitrary bytes, and the RFC 4514 subject parser on arbitrary
//! and on grammar-shaped strings. Properties: nothing panics; a parsed identity is consistent (fingerprint of the
//! input, SPIFFE ids only, the subject key is the key of the subject, the subject reads back from its RFC 4514
//! text to the same RDN sequence); a subject that parses re-encodes and re-parses to the same RDN sequence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bolero::TypeGenerator;
use penghubung::tls::dn::DistinguishedName;
use penghubung::tls::identity::PeerCertificate;

/// Certificates to mutate: varied subjects (string types, escapes-worthy characters), SANs with and without
/// SPIFFE ids.
/// Each with the byte range of its subject name.
fn corpus() -> &'static [(Vec<u8>, std::ops::Range<usize>)] {
    static CORPUS: OnceLock<Vec<(Vec<u8>, std::ops::Range<usize>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        use rcgen::{DnType, DnValue, SanType};
        let subjects: Vec<Vec<(DnType, DnValue)>> = vec![
            vec![
                (DnType::CountryName, DnValue::PrintableString("ID".try_into().unwrap())),
                (DnType::OrganizationName, DnValue::Utf8String("Pemerintah Kabupaten Lampung Timur".into())),
                (DnType::OrganizationalUnitName, DnValue::Utf8String("Diskominfo".into())),
                (DnType::CommonName, DnValue::Utf8String("dashboard".into())),
            ],
            vec![(DnType::CommonName, DnValue::Utf8String("dashboard,OU=Diskominfo+O=x\\\"#;<>=".into()))],
            vec![
                (DnType::CommonName, DnValue::BmpString("Budi Å".try_into().unwrap())),
                (DnType::LocalityName, DnValue::UniversalString("Sukadana".try_into().unwrap())),
                (DnType::OrganizationName, DnValue::TeletexString("Dinas".try_into().unwrap())),
                (
                    DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 25]),
                    DnValue::Ia5String("go".try_into().unwrap()),
                ),
            ],
            vec![],
        ];
        let sans: Vec<Vec<SanType>> = vec![
            vec![SanType::URI("spiffe://example.go.id/opd/dinkes/app/simpus".try_into().unwrap())],
            vec![
                SanType::DnsName("simpus.example.go.id".try_into().unwrap()),
                SanType::URI("https://example.go.id/".try_into().unwrap()),
                SanType::URI("spiffe://a/b".try_into().unwrap()),
            ],
            vec![],
            vec![],
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        subjects
            .into_iter()
            .zip(sans)
            .map(|(subject, sans)| {
                let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
                params.distinguished_name = rcgen::DistinguishedName::new();
                for (kind, value) in subject {
                    params.distinguished_name.push(kind, value);
                }
                params.subject_alt_names = sans;
                let der = params.self_signed(&key).unwrap().der().to_vec();
                let subject = subject_range(&der);
                (der, subject)
            })
            .collect()
    })
}

/// Where the subject name's encoding sits in a certificate.
fn subject_range(der: &[u8]) -> std::ops::Range<usize> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let raw = cert.subject().as_raw();
    let start = raw.as_ptr() as usize - der.as_ptr() as usize;
    start..start + raw.len()
}

/// Counts the inputs that got past the parser and prints the count at the end of a target, so that a run shows
/// it did not only exercise the error paths.
struct Accepted(&'static str, AtomicU64);

impl Accepted {
    fn new(what: &'static str) -> Self {
        Accepted(what, AtomicU64::new(0))
    }

    fn count(&self, accepted: bool) {
        self.1.fetch_add(u64::from(accepted), Ordering::Relaxed);
    }
}

impl Drop for Accepted {
    fn drop(&mut self) {
        eprintln!("{}: {} accepted", self.0, self.1.load(Ordering::Relaxed));
    }
}

/// The properties of whatever `PeerCertificate::parse` accepts; whether it did.
fn check_identity(der: &[u8]) -> bool {
    let Ok(peer) = PeerCertificate::parse(der) else { return false };
    assert_eq!(peer.fingerprint.len(), 64);
    assert!(peer.fingerprint.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(peer.spiffe.iter().all(|id| id.starts_with("spiffe://")), "{:?}", peer.spiffe);
    assert_eq!(peer.subject_key, peer.subject.as_ref().map(DistinguishedName::key));
    if let Some(subject) = &peer.subject {
        assert!(!subject.is_empty());
        let text = subject.to_rfc4514();
        let again =
            DistinguishedName::parse_rfc4514(&text).unwrap_or_else(|e| panic!("{text:?} does not read back: {e}"));
        assert_eq!(&again, subject, "{text:?}");
    }
    let _ = peer.serial_hex();
    true
}

/// The RFC 4514 round trip: what parses re-encodes and re-parses to the same RDN sequence and key; whether it
/// parsed.
fn check_subject(text: &str) -> bool {
    let Ok(name) = DistinguishedName::parse_rfc4514(text) else { return false };
    assert!(!name.is_empty());
    let encoded = name.to_rfc4514();
    let again = DistinguishedName::parse_rfc4514(&encoded)
        .unwrap_or_else(|e| panic!("{text:?} -> {encoded:?} does not read back: {e}"));
    assert_eq!(again, name, "{text:?} -> {encoded:?}");
    assert_eq!(again.key(), name.key());
    assert_eq!(again.to_rfc4514(), encoded, "the encoding is stable");
    true
}

/// Edits applied to a corpus certificate.
#[derive(Debug, TypeGenerator)]
struct Mutation {
    base: u8,
    /// Aim the edits at the subject's bytes (else anywhere).
    in_subject: bool,
    /// (position, byte) pairs: the byte at `position % len` is replaced.
    edits: Vec<(u16, u8)>,
    /// Bytes inserted at a position.
    insert: Option<(u16, Vec<u8>)>,
    /// Cut the certificate at `cut % len`.
    cut: Option<u16>,
}

#[test]
fn cert_identity_on_mutated_certificates() {
    let tried = penghubung_fuzz::Tried::new("cert_identity_on_mutated_certificates");
    let accepted = Accepted::new("mutated certificates");
    let corpus = corpus();
    for (der, _) in corpus {
        assert!(check_identity(der));
    }
    bolero::check!().with_type::<Mutation>().with_test_time(penghubung_fuzz::budget()).for_each(|m: &Mutation| {
        tried.one();
        let (der, subject) = &corpus[usize::from(m.base) % corpus.len()];
        let mut der = der.clone();
        let region = if m.in_subject && !subject.is_empty() { subject.clone() } else { 0..der.len() };
        // A few edits: a certificate with many is rarely readable.
        for (position, byte) in m.edits.iter().take(1 + m.edits.len() % 3) {
            let at = region.start + usize::from(*position) % region.len();
            der[at] = *byte;
        }
        if let Some((position, bytes)) = &m.insert {
            let at = usize::from(*position) % (der.len() + 1);
            der.splice(at..at, bytes.iter().copied());
        }
        if let Some(cut) = m.cut {
            der.truncate(usize::from(cut) % (der.len() + 1));
        }
        accepted.count(check_identity(&der));
    });
}

#[test]
fn cert_identity_on_arbitrary_bytes() {
    let tried = penghubung_fuzz::Tried::new("cert_identity_on_arbitrary_bytes");
    let accepted = Accepted::new("arbitrary bytes as certificates");
    bolero::check!().with_test_time(penghubung_fuzz::budget()).for_each(|input: &[u8]| {
        tried.one();
        accepted.count(check_identity(input));
    });
}

#[test]
fn rfc4514_subject_on_arbitrary_strings() {
    let tried = penghubung_fuzz::Tried::new("rfc4514_subject_on_arbitrary_strings");
    let accepted = Accepted::new("arbitrary subjects");
    bolero::check!().with_test_time(penghubung_fuzz::budget()).for_each(|input: &[u8]| {
        tried.one();
        // Half of the inputs start as a value, so that the value parser sees them.
        let text = String::from_utf8_lossy(input);
        match input.first() {
            Some(b) if b & 1 == 1 => {
                accepted.count(check_subject(&format!("CN={}", text.chars().skip(1).collect::<String>())))
            }
            _ => accepted.count(check_subject(&text)),
        }
    });
}

/// A generated name: RDNs of attributes, rendered as RFC 4514 text with random spacing, escapes and BER values,
/// so that most inputs get past the attribute types; `noise` then puts one stray character somewhere.
#[derive(Debug, TypeGenerator)]
struct GenName {
    #[generator(bolero::produce::<Vec<GenRdn>>().with().len(1usize..6))]
    rdns: Vec<GenRdn>,
    noise: Option<(u16, char)>,
}

#[derive(Debug, TypeGenerator)]
struct GenRdn {
    first: GenAttribute,
    #[generator(bolero::produce::<Vec<GenAttribute>>().with().len(0usize..3))]
    more: Vec<GenAttribute>,
}

#[derive(Debug, TypeGenerator)]
struct GenAttribute {
    kind: GenType,
    spaces: u8,
    value: GenValue,
}

#[derive(Debug, TypeGenerator)]
enum GenType {
    Keyword(u8),
    Oid(#[generator(bolero::produce::<Vec<u32>>().with().len(2usize..6))] Vec<u32>),
}

#[derive(Debug, TypeGenerator)]
enum GenValue {
    Text(#[generator(bolero::produce::<Vec<ValuePiece>>().with().len(0usize..8))] Vec<ValuePiece>),
    /// `#` and a BER value with this identifier octet.
    Ber(u8, #[generator(bolero::produce::<Vec<u8>>().with().len(0usize..16))] Vec<u8>),
    /// `#` and any hex digits.
    Hex(#[generator(bolero::produce::<Vec<u8>>().with().len(0usize..16))] Vec<u8>),
}

#[derive(Debug, TypeGenerator)]
enum ValuePiece {
    Text(#[generator(bolero::produce::<String>().with().len(0usize..12))] String),
    Char(char),
    /// `\` and one of the characters that must or may be escaped.
    Escape(u8),
    /// The UTF-8 bytes of a character as `\XX` escapes.
    HexEscape(char),
    /// One `\XX` escape of any byte (alone, most are not UTF-8).
    ByteEscape(u8),
    Space,
}

const KEYWORDS: &[&str] = &[
    "CN",
    "cn",
    "OU",
    "O",
    "C",
    "L",
    "ST",
    "STREET",
    "DC",
    "UID",
    "SN",
    "serialNumber",
    "E",
    "emailAddress",
    "OID.2.5.4.3",
];
const ESCAPABLE: &[u8] = b"\"+,;<>\\ #=";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn render(name: &GenName) -> String {
    let mut out = String::new();
    for (i, rdn) in name.rdns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in std::iter::once(&rdn.first).chain(&rdn.more).enumerate() {
            if j > 0 {
                out.push('+');
            }
            let spaces = " ".repeat(usize::from(attribute.spaces % 3));
            out.push_str(&spaces);
            match &attribute.kind {
                GenType::Keyword(k) => out.push_str(KEYWORDS[usize::from(*k) % KEYWORDS.len()]),
                GenType::Oid(arcs) => {
                    // Mostly valid first arcs (0-2, then below 40), so that the values get parsed too.
                    let arcs: Vec<String> = arcs
                        .iter()
                        .enumerate()
                        .map(|(i, arc)| match i {
                            0 => (arc % 3).to_string(),
                            1 => (arc % 40).to_string(),
                            _ => arc.to_string(),
                        })
                        .collect();
                    out.push_str(&arcs.join("."));
                }
            }
            out.push_str(&spaces);
            out.push('=');
            match &attribute.value {
                GenValue::Text(pieces) => {
                    for piece in pieces {
                        match piece {
                            ValuePiece::Text(text) => out.push_str(text),
                            ValuePiece::Char(c) => out.push(*c),
                            ValuePiece::Escape(e) => {
                                out.push('\\');
                                out.push(char::from(ESCAPABLE[usize::from(*e) % ESCAPABLE.len()]));
                            }
                            ValuePiece::HexEscape(c) => {
                                for b in c.to_string().bytes() {
                                    out.push_str(&format!("\\{b:02X}"));
                                }
                            }
                            ValuePiece::ByteEscape(b) => out.push_str(&format!("\\{b:02x}")),
                            ValuePiece::Space => out.push(' '),
                        }
                    }
                }
                GenValue::Ber(identifier, content) => {
                    let content = &content[..content.len().min(127)];
                    out.push('#');
                    out.push_str(&hex(&[*identifier, content.len() as u8]));
                    out.push_str(&hex(content));
                }
                GenValue::Hex(bytes) => {
                    out.push('#');
                    out.push_str(&hex(bytes));
                }
            }
            out.push_str(&spaces);
        }
    }
    // Noise in one input out of four.
    if let Some((at, c)) = name.noise.filter(|(at, _)| at % 2 == 0) {
        let mut at = usize::from(at) % (out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.insert(at, c);
    }
    out
}

#[test]
fn rfc4514_subject_on_generated_names() {
    let tried = penghubung_fuzz::Tried::new("rfc4514_subject_on_generated_names");
    let accepted = Accepted::new("generated subjects");
    bolero::check!().with_type::<GenName>().with_test_time(penghubung_fuzz::budget()).for_each(|name: &GenName| {
        tried.one();
        accepted.count(check_subject(&render(name)));
    });
}

/// Not random: every Unicode scalar value, alone and between letters, prepares to a string that prepares to
/// itself (RFC 4518 preparation is what the hash key holds; a preparation that moved on a second pass would let
/// the same name have two keys).
#[test]
fn every_character_prepares_to_a_fixed_point() {
    use penghubung::tls::dn::prepare;
    let mut checked = 0u64;
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        for text in [c.to_string(), format!("a{c}Z")] {
            if let Ok(once) = prepare(&text) {
                assert_eq!(prepare(&once).as_deref(), Ok(once.as_str()), "U+{:04X}", u32::from(c));
                checked += 1;
            }
        }
    }
    eprintln!("prepare: {checked} strings reach a fixed point");
}
