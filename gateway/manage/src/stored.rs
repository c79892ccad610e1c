//! The store's documents as the operations see them: each typed document found by kind and id ([`Found`]),
//! its etag, its JSON form for answers (without the console's password hash), the OPD it belongs to, and the
//! SHA-256 digests the etags and the journal use.

use serde::Serialize;

use penghubung_snapshot::store::{DocumentKind, StoredDocument};
use penghubung_types::documents::{ClientDoc, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc, TierDoc};

use crate::access::Actor;
use crate::change::{Kind, Versioned};
use crate::error::ManageError;
use penghubung_types::documents::Role;

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    penghubung_tls::identity::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The SHA-256 fingerprint of a certificate (DER), lower-case hex without colons.
pub fn fingerprint(cert_der: &[u8]) -> String {
    sha256_hex(cert_der)
}

/// The etag of a stored text: the first 32 hex digits of its SHA-256, quoted.
pub fn etag(text: &str) -> String {
    format!("\"{}\"", &sha256_hex(text.as_bytes())[..32])
}

/// One typed document of the store.
#[derive(Clone, Debug)]
pub struct Found {
    pub kind: Kind,
    pub id: String,
    /// The OPD the document belongs to (none for tiers).
    pub opd: Option<String>,
    pub stored: StoredDocument,
    pub document: serde_json::Value,
}

impl Found {
    /// Parses a stored document of `kind`.
    pub fn read(kind: Kind, stored: &StoredDocument) -> Result<Found, String> {
        fn parse<T: serde::de::DeserializeOwned + Serialize>(text: &str) -> Result<(T, serde_json::Value), String> {
            let doc: T = toml::from_str(text).map_err(|e| e.to_string())?;
            let value = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
            Ok((doc, value))
        }
        let (id, opd, document) = match kind {
            Kind::Opd => {
                let (d, v) = parse::<OpdDoc>(&stored.text)?;
                (d.id.clone(), Some(d.id), v)
            }
            Kind::Service => {
                let (d, v) = parse::<ServiceDoc>(&stored.text)?;
                (d.key(), Some(d.opd), v)
            }
            Kind::Client => {
                let (d, v) = parse::<ClientDoc>(&stored.text)?;
                (d.id, Some(d.opd), v)
            }
            Kind::Grant => {
                let (d, v) = parse::<GrantDoc>(&stored.text)?;
                // A grant belongs to the OPD of the service it opens: the owner of the data decides.
                let opd = d.service.split('/').next().map(str::to_string);
                (d.id, opd, v)
            }
            Kind::Tier => {
                let (d, v) = parse::<TierDoc>(&stored.text)?;
                (d.id, None, v)
            }
            Kind::Operator => {
                let (d, mut v) = parse::<OperatorDoc>(&stored.text)?;
                if let Some(map) = v.as_object_mut() {
                    map.remove("password_hash");
                }
                (d.id, Some(d.opd), v)
            }
        };
        Ok(Found { kind, id, opd, stored: stored.clone(), document })
    }

    /// The document with its etag.
    pub fn versioned(&self) -> Versioned {
        Versioned { id: self.id.clone(), etag: etag(&self.stored.text), document: self.document.clone() }
    }
}

/// The document of `kind` with `id`.
pub fn find(documents: &[StoredDocument], kind: Kind, id: &str) -> Result<Found, ManageError> {
    documents
        .iter()
        .filter(|d| Kind::of(d.kind) == Some(kind))
        .filter_map(|d| Found::read(kind, d).ok())
        .find(|f| f.id == id)
        .ok_or_else(|| ManageError::not_found(format!("there is no {kind} `{id}`")))
}

/// Whether an actor may see a document: everyone but an `opd_admin` without another role sees everything; an
/// `opd_admin` sees its own OPD's documents, the grants its clients hold, the OPDs and the tiers.
pub fn visible_to(actor: &Actor, found: &Found) -> bool {
    if actor.roles.iter().any(|r| *r != Role::OpdAdmin) {
        return true;
    }
    let own = found.opd.as_deref() == Some(actor.opd.as_str());
    match found.kind {
        Kind::Opd | Kind::Tier => true,
        Kind::Grant => {
            own || found.document["client"].as_str().is_some_and(|c| c.starts_with(&format!("{}/", actor.opd)))
        }
        _ => own,
    }
}

/// Every operator document of the store that parses.
pub fn operators(documents: &[StoredDocument]) -> Vec<OperatorDoc> {
    documents
        .iter()
        .filter(|d| d.kind == DocumentKind::Operator)
        .filter_map(|d| toml::from_str::<OperatorDoc>(&d.text).ok())
        .collect()
}
