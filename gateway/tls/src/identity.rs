//! What a verified client certificate says about its holder. Parsed once per connection (after rustls has
//! verified the chain, validity and revocation), then matched per request against the `Client` documents of
//! the current snapshot by SHA-256 fingerprint, SPIFFE URI SAN or subject DN, in that order. Matching per
//! request (a few hash lookups) is what makes a disabled client or a new CRL bite on connections that are
//! already open. The subject is a parsed RDN sequence ([`super::dn`]), matched by its [`DnKey`], never by a
//! display string.

use ring::digest;

pub use super::dn::hex;
use super::dn::{DistinguishedName, DnKey};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The parts of a client's end-entity certificate the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// SHA-256 of the DER certificate, lower-case hex without separators.
    pub fingerprint: Box<str>,
    /// URI SANs of the form `spiffe://...`.
    pub spiffe: Box<[Box<str>]>,
    /// The subject DN as parsed RDNs; `None` when it is empty or cannot be matched (an undecodable string, a
    /// character RFC 4518 prohibits): such a certificate binds by fingerprint or SPIFFE id only.
    pub subject: Option<DistinguishedName>,
    /// [`DistinguishedName::key`] of `subject`, computed once per connection.
    pub subject_key: Option<DnKey>,
    /// Raw DER of the issuer name and the serial number, to match CRL entries.
    pub issuer: Box<[u8]>,
    pub serial: Box<[u8]>,
    /// The end of its validity, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl PeerCertificate {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("unreadable client certificate: {e}"))?;
        let spiffe = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(Box::<str>::from(*uri)),
                    _ => None,
                })
                .collect(),
            _ => Box::default(),
        };
        let subject = DistinguishedName::from_x509(cert.subject()).ok().filter(|name| !name.is_empty());
        Ok(Self {
            fingerprint: hex(digest::digest(&digest::SHA256, der).as_ref()).into(),
            spiffe,
            subject_key: subject.as_ref().map(DistinguishedName::key),
            subject,
            issuer: cert.issuer().as_raw().into(),
            serial: cert.raw_serial().into(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// The serial number as lower-case hex (for logs and `penghubung ca revoke`).
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }
}

/// A SHA-256 fingerprint as lower-case hex without separators (`AB:CD:...` and `abcd...` both accepted).
pub fn canonical_fingerprint(text: &str) -> String {
    text.chars().filter(|c| *c != ':').flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_accept_colons_and_case() {
        assert_eq!(canonical_fingerprint("AB:cd:01"), "abcd01");
    }

    #[test]
    fn certificates_yield_spiffe_subject_fingerprint_and_serial() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "simpus");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Dinas Kesehatan");
        params.subject_alt_names =
            vec![rcgen::SanType::URI("spiffe://example.go.id/opd/dinkes/app/simpus".try_into().unwrap())];
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x02]));
        let cert = params.self_signed(&key).unwrap();
        let peer = PeerCertificate::parse(cert.der()).unwrap();
        assert_eq!(&*peer.spiffe, [Box::from("spiffe://example.go.id/opd/dinkes/app/simpus")]);
        let subject = DistinguishedName::parse_rfc4514("O=Dinas Kesehatan, CN=simpus").unwrap();
        assert_eq!(peer.subject_key, Some(subject.key()));
        assert_eq!(peer.subject, Some(subject));
        assert_eq!(peer.fingerprint.len(), 64);
        assert_eq!(peer.serial_hex(), "0102");
    }
}
