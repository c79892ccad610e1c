//! A real store for the management plane's tests: a temporary directory with a config, the gateway's CA (with a
//! server certificate), the audit signing keys, and a store of OPDs, services in each lifecycle state, a client,
//! a grant, tiers and one operator per role, each with a certificate issued by the CA. A template is built once
//! per test binary and copied for each test (every path in the config is relative).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use penghubung_manage::ca::{CertificateAuthority, Issued, Validity, DEVELOPMENT_TRUST_DOMAIN};
use penghubung_manage::{Actor, Config, Manager, Role};

/// The operators of the template store: id, roles, OPD.
pub const OPERATORS: &[(&str, &[Role], &str)] = &[
    ("m-admin", &[Role::Admin], "diskominfo"),
    ("m-operasi", &[Role::Operasi], "diskominfo"),
    ("m-keamanan", &[Role::Keamanan], "diskominfo"),
    ("m-opd", &[Role::OpdAdmin], "dinsos"),
    ("m-auditor", &[Role::Auditor], "diskominfo"),
    ("rudi-aptika", &[Role::Operasi, Role::Keamanan], "diskominfo"),
    ("dewi-persandian", &[Role::Keamanan], "diskominfo"),
];

/// The operator holding exactly `role` in the template.
pub fn operator_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "m-admin",
        Role::Operasi => "m-operasi",
        Role::Keamanan => "m-keamanan",
        Role::OpdAdmin => "m-opd",
        Role::Auditor => "m-auditor",
    }
}

const APPROVED: &str = "[approvals.operations]\nby = \"m-operasi\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"uji fungsi\"\n\n\
                        [approvals.security]\nby = \"dewi-persandian\"\nat = \"2026-01-01T00:00:00Z\"\nreason = \"uji keamanan\"\n";

fn service(name: &str, status: &str, extra: &str) -> (String, String) {
    (
        format!("services/dinsos/{name}.toml"),
        format!(
            "# Layanan {name} (dinsos).\nopd = \"dinsos\"\nname = \"{name}\"\nversion = 1\ntitle = \"Layanan {name}\"\n\
             classification = \"terbatas\"\nstatus = \"{status}\"\n{extra}\n[upstream]\nendpoints = [\"http://127.0.0.1:9\"]\n"
        ),
    )
}

/// The template's documents (operators without their fingerprints).
fn documents() -> Vec<(String, String)> {
    let mut docs = vec![
        (
            "opds/diskominfo.toml".to_string(),
            "id = \"diskominfo\"\nname = \"Dinas Komunikasi dan Informatika\"\nmandiri_tik = true\n".to_string(),
        ),
        ("opds/dinsos.toml".into(), "# Dinas Sosial.\nid = \"dinsos\"\nname = \"Dinas Sosial\"\nmandiri_tik = true\n".into()),
        ("tiers/unlimited.toml".into(), "id = \"unlimited\"\nunlimited = true\n".into()),
        ("tiers/cadangan.toml".into(), "id = \"cadangan\"\nrate = 5\n".into()),
        service("bansos", "testing", "submitted_by = \"m-opd\"\n"),
        service("draf", "draft", ""),
        service("arsip", "active", APPROVED),
        service("lama", "suspended", &format!("status_reason = \"perawatan\"\n{APPROVED}")),
        (
            "clients/dinsos/sikasos.toml".into(),
            format!(
                "id = \"dinsos/sikasos\"\nopd = \"dinsos\"\nname = \"SIKASOS\"\nclearance = \"terbatas\"\n\n[identity]\n\
                 spiffe = [\"spiffe://{DEVELOPMENT_TRUST_DOMAIN}/opd/dinsos/app/sikasos\"]\n"
            ),
        ),
        (
            "grants/sikasos-bansos.toml".into(),
            "id = \"sikasos-bansos\"\nclient = \"dinsos/sikasos\"\nservice = \"dinsos/bansos/v1\"\noperations = [\"*\"]\ntier = \"unlimited\"\n".into(),
        ),
    ];
    docs.sort();
    docs
}

/// The certificates (and keys) of the template's operators, by id.
pub struct Certificates(pub Vec<(String, Issued)>);

struct Template {
    dir: tempfile::TempDir,
    certificates: Vec<(String, Issued)>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pki = root.join("pki");
        let ca = CertificateAuthority::init(&pki, DEVELOPMENT_TRUST_DOMAIN, "Uji").unwrap();
        ca.issue_server(&["127.0.0.1".into(), "localhost".into()], Validity::days(30))
            .unwrap()
            .write(&pki.join("server.crt"), &pki.join("server.key"))
            .unwrap();
        penghubung_audit::keys::generate(&pki.join("audit-signing.key"), &pki.join("audit-signing.pub")).unwrap();
        std::fs::write(root.join("penghubung.toml"), CONFIG).unwrap();
        let store = root.join("policies");
        for (key, text) in documents() {
            write(&store.join(key), &text);
        }
        let mut certificates = Vec::new();
        for (id, roles, opd) in OPERATORS {
            let issued = ca.issue_operator(id, opd, Validity::days(30)).unwrap();
            let roles = roles.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ");
            let text = format!(
                "id = \"{id}\"\nname = \"Operator {id}\"\nnip = \"198001012006041001\"\nopd = \"{opd}\"\nroles = [{roles}]\n\n\
                 [identity]\nfingerprint_sha256 = [\"{}\"]\n",
                fingerprint(&issued.cert_pem)
            );
            write(&store.join(format!("operators/{id}.toml")), &text);
            certificates.push((id.to_string(), issued));
        }
        Template { dir, certificates }
    })
}

/// The config of every setup (paths relative to it).
pub const CONFIG: &str = "[[listeners]]\naddress = \"127.0.0.1:0\"\n\n[tls]\ncert_file = \"pki/server.crt\"\n\
    key_file = \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\ncrl_files = [\"pki/crl.pem\"]\n\n\
    [store]\npath = \"policies\"\nseed_baseline = false\n\n[reload]\ndebounce = \"50ms\"\n";

/// One test's copy of the template.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub manager: Manager,
}

impl Setup {
    pub fn new() -> Setup {
        let template = template();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.dir.path(), dir.path());
        let config = Config::load(&dir.path().join("penghubung.toml")).unwrap_or_else(|p| panic!("config: {p:?}"));
        let manager = Manager::open(&config).unwrap();
        Setup { dir, config, manager }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    /// The operator `id`, authenticated by its certificate.
    pub fn actor(&self, id: &str) -> Actor {
        let der = der(&self.certificate(id).cert_pem);
        self.manager.authenticate_certificate(&der).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    pub fn certificate(&self, id: &str) -> &'static Issued {
        &template().certificates.iter().find(|(i, _)| i == id).unwrap_or_else(|| panic!("no operator {id}")).1
    }

    /// The text of a store document.
    pub fn read(&self, key: &str) -> String {
        std::fs::read_to_string(self.store().join(key)).unwrap()
    }

    /// Every file under the store (journal included), by relative path, with its content.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }

    /// Every journal entry (parsed).
    pub fn journal(&self) -> Vec<serde_json::Value> {
        self.files()
            .into_iter()
            .filter(|(path, _)| path.starts_with(".history/"))
            .map(|(_, text)| serde_json::from_str(&text).unwrap())
            .collect()
    }
}

/// A CSR (PEM) for a fresh key; the key stays here.
pub fn csr() -> (String, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let csr = params.serialize_request(&key).unwrap();
    (csr.pem().unwrap(), key)
}

/// The DER of the first certificate of a PEM text.
pub fn der(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap().to_vec()
}

/// The SHA-256 fingerprint (lower-case hex) of a PEM certificate.
pub fn fingerprint(pem: &str) -> String {
    penghubung_manage::stored::fingerprint(&der(pem))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().to_string();
            out.push((rel, std::fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}
