//! A synthetic document corpus for the routing and snapshot benchmarks: `opds` OPDs with `services_per_opd`
//! services each (50 x 20 = 1,000 by default), every service with five operations whose path templates look like
//! the real ones (`/pasien/{id}`, `/pasien/{id}/kunjungan`, ...). The corpus is TOML text, exactly what an
//! operator would keep in the store, so the same corpus feeds both the in-memory build benchmark ([`documents`]
//! parses it once, up front) and the full-load benchmark ([`write_store`] lays it out as a directory store that
//! `penghubung::store::load_documents` reads, parses and schema-checks on every iteration).
//!
//! Used by `cargo bench -p penghubung-benches --bench routing`; nothing here is timed by itself.

use std::path::Path;

use penghubung::store::documents::{OpdDoc, ServiceDoc};
use penghubung::store::validate::parse_document;
use penghubung::store::{DirStore, DocumentKind, Documents};

/// OPDs in the default corpus.
pub const OPDS: usize = 50;
/// Services per OPD in the default corpus.
pub const SERVICES_PER_OPD: usize = 20;

/// The operations every generated service declares: `(id, method, path template)`.
pub const OPERATIONS: [(&str, &str, &str); 5] = [
    ("daftar", "POST", "/pasien"),
    ("ambil", "GET", "/pasien/{id}"),
    ("hapus", "DELETE", "/pasien/{id}"),
    ("kunjungan", "GET", "/pasien/{id}/kunjungan"),
    ("kunjungan-ambil", "GET", "/pasien/{id}/kunjungan/{kunjungan_id}"),
];

/// The id of the `i`-th OPD (`opd-00`, `opd-01`, ...).
pub fn opd_id(i: usize) -> String {
    format!("opd-{i:02}")
}

/// The name of the `j`-th service of an OPD (`layanan-00`, ...).
pub fn service_name(j: usize) -> String {
    format!("layanan-{j:02}")
}

/// One document of the corpus: its store key (`services/opd-00/layanan-00.toml`) and its TOML text.
#[derive(Clone, Debug)]
pub struct CorpusFile {
    pub key: String,
    pub text: String,
}

/// The TOML documents of `opds` OPDs with `services_per_opd` services each. Upstreams point at loopback
/// ports that nobody listens on; building a snapshot never connects.
pub fn generate(opds: usize, services_per_opd: usize) -> Vec<CorpusFile> {
    let mut files = Vec::with_capacity(opds * (services_per_opd + 1));
    for i in 0..opds {
        let opd = opd_id(i);
        files.push(CorpusFile {
            key: format!("opds/{opd}.toml"),
            text: format!("id = \"{opd}\"\nname = \"Perangkat Daerah {i}\"\ncontact = \"tik@{opd}.go.id\"\n"),
        });
        for j in 0..services_per_opd {
            let name = service_name(j);
            let mut text = format!(
                "opd = \"{opd}\"\nname = \"{name}\"\nversion = 1\ntitle = \"Layanan {j} milik {opd}\"\n\
                 classification = \"terbatas\"\nstatus = \"active\"\n\n\
                 [upstream]\nendpoints = [\"http://127.0.0.1:{port}\", \"http://127.0.0.2:{port}\"]\n\
                 request_timeout = \"5s\"\n",
                port = 20_000 + i * 100 + j,
            );
            for (id, method, path) in OPERATIONS {
                text.push_str(&format!(
                    "\n[[operations]]\nid = \"{id}\"\nmethod = \"{method}\"\npath = \"{path}\"\nsummary = \"{method} {path}\"\n"
                ));
            }
            files.push(CorpusFile { key: format!("services/{opd}/{name}.toml"), text });
        }
    }
    files
}

/// Parses and schema-checks the corpus into [`Documents`] (once, outside any timing). Panics on an invalid
/// document: the generator is wrong then.
pub fn documents(files: &[CorpusFile]) -> Documents {
    let mut docs = Documents::default();
    for f in files {
        match DocumentKind::of_key(&f.key) {
            Some(DocumentKind::Opd) => {
                let doc: OpdDoc = parse_document(DocumentKind::Opd, &f.key, &f.text)
                    .unwrap_or_else(|p| panic!("generated {} is invalid: {p:?}", f.key));
                docs.opds.push((f.key.clone(), doc));
            }
            Some(DocumentKind::Service) => {
                let doc: ServiceDoc = parse_document(DocumentKind::Service, &f.key, &f.text)
                    .unwrap_or_else(|p| panic!("generated {} is invalid: {p:?}", f.key));
                docs.services.push((f.key.clone(), doc));
            }
            other => panic!("the corpus generates no {other:?} documents"),
        }
    }
    docs
}

/// Writes the corpus as a directory store under `root` (plain writes: this is set-up, not the timed part).
pub fn write_store(root: &Path, files: &[CorpusFile]) -> std::io::Result<DirStore> {
    for f in files {
        let path = root.join(&f.key);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&path, &f.text)?;
    }
    Ok(DirStore::new(root))
}
