//! A synthetic document corpus for the routing and snapshot benchmarks: `opds` OPDs with `services_per_opd`
//! services each (50 x 20 = 1,000 by default), every service with five operations whose path templates look like
//! the real ones (`/pasien/{id}`, `/pasien/{id}/kunjungan`, ...). The corpus is TOML text, exactly what an
//! operator would keep in the store, so the same corpus feeds both the in-memory build benchmark ([`documents`]
//! parses it once, up front) and the full-load benchmark ([`write_store`] lays it out as a directory store that
//! `penghubung::store::load_documents` reads, parses and schema-checks on every iteration).
//!
//! Used by `cargo bench -p penghubung-benches --bench routing`; nothing here is timed by itself.

use std::path::Path;

use penghubung::store::documents::{ClientDoc, GrantDoc, OpdDoc, ServiceDoc};
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
                 [approvals.operations]\nby = \"ops\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"ok\"\n\n\
                 [approvals.security]\nby = \"sec\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"ok\"\n\n\
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
    // The operators who gave the approvals above (and the admin every store with operators needs).
    if opds > 0 {
        for (id, role, n) in [("bench-admin", "admin", 1), ("ops", "operasi", 2), ("sec", "keamanan", 3)] {
            files.push(CorpusFile {
                key: format!("operators/{id}.toml"),
                text: format!(
                    "id = \"{id}\"\nname = \"{id}\"\nnip = \"19800101200601100{n}\"\nopd = \"{}\"\nroles = [\"{role}\"]\n\n[identity]\n",
                    opd_id(0)
                ),
            });
        }
    }
    files
}

/// The client of OPD `i`, number `k` (`opd-00/app-00`).
pub fn client_id(i: usize, k: usize) -> String {
    format!("{}/app-{k:02}", opd_id(i))
}

/// `clients_per_opd` clients in each of the `opds` OPDs (clearance `rahasia`, bound by SPIFFE id), each with
/// `grants_per_client` grants on services spread over the whole corpus: every other grant names two operations
/// and a purpose list, the rest all operations and any purpose. Add to [`generate`]'s files.
pub fn clients_and_grants(
    opds: usize,
    services_per_opd: usize,
    clients_per_opd: usize,
    grants_per_client: usize,
) -> Vec<CorpusFile> {
    let services = opds * services_per_opd;
    let mut files = Vec::new();
    for i in 0..opds {
        for k in 0..clients_per_opd {
            let id = client_id(i, k);
            files.push(CorpusFile {
                key: format!("clients/{id}.toml"),
                text: format!(
                    "id = \"{id}\"\nopd = \"{opd}\"\nname = \"App {k}\"\nclearance = \"rahasia\"\n\n\
                     [identity]\nspiffe = [\"spiffe://bench.local/opd/{opd}/app/app-{k:02}\"]\n",
                    opd = opd_id(i)
                ),
            });
            let n = i * clients_per_opd + k;
            for g in 0..grants_per_client {
                let target = (n * 7 + g * 97) % services;
                let service =
                    format!("{}/{}/v1", opd_id(target / services_per_opd), service_name(target % services_per_opd));
                let gid = format!("g-{i:02}-{k:02}-{g:02}");
                let terms = if g % 2 == 0 {
                    "operations = [\"ambil\", \"kunjungan\"]\npurposes = [\"pelayanan-publik\", \"perencanaan\"]\n"
                } else {
                    "operations = [\"*\"]\n"
                };
                files.push(CorpusFile {
                    key: format!("grants/{gid}.toml"),
                    text: format!(
                        "id = \"{gid}\"\nclient = \"{id}\"\nservice = \"{service}\"\n{terms}tier = \"silver\"\n\
                         not_before = \"2026-01-01T00:00:00+07:00\"\nnot_after = \"2030-12-31T23:59:59+07:00\"\n"
                    ),
                });
            }
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
            Some(DocumentKind::Client) => {
                let doc: ClientDoc = parse_document(DocumentKind::Client, &f.key, &f.text)
                    .unwrap_or_else(|p| panic!("generated {} is invalid: {p:?}", f.key));
                docs.clients.push((f.key.clone(), doc));
            }
            Some(DocumentKind::Grant) => {
                let doc: GrantDoc = parse_document(DocumentKind::Grant, &f.key, &f.text)
                    .unwrap_or_else(|p| panic!("generated {} is invalid: {p:?}", f.key));
                docs.grants.push((f.key.clone(), doc));
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
