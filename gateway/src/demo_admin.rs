//! The demo's management plane: the admin API's listener settings, the three demo operators (admin,
//! operasi, keamanan) with their certificates, keys and profiles, and the sample service left in `testing`
//! without approvals (Dinas Sosial's `bansos`, with a backend), so that a newcomer can take it live through
//! the CLI. `demo.rs` calls these; they write only into the demo's workdir.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::admin_client::Profile;
use crate::ca::{CertificateAuthority, Validity};
use penghubung_server::Gateway;
use penghubung_snapshot::store::{DirStore, DocumentStore};
use penghubung_types::config::Config;

/// The demo's operators (baseline `operators/` documents) and the `demo.env` name of each:
/// `PENGHUBUNG_OPERATOR_{ROLE}_CERT` and `_KEY`.
pub const OPERATORS: &[(&str, &str)] =
    &[("ADMIN", "sari-admin"), ("OPERASI", "rudi-aptika"), ("KEAMANAN", "dewi-persandian")];

/// The sample service left in `testing` without approvals.
pub const TESTING_SERVICE: &str = "dinsos/bansos/v1";
const TESTING_SERVICE_KEY: &str = "services/dinsos/bansos.toml";
/// A call of [`TESTING_SERVICE`] by its granted client, which answers once the service is active.
pub const TESTING_PATH: &str = "/dinsos/bansos/v1/penerima/1807015508900002";
/// The client granted [`TESTING_SERVICE`] (grant `sikasos-bansos`, purpose `penyaluran-bansos`).
pub const TESTING_CLIENT: (&str, &str) = ("dinsos", "sikasos");
/// The purpose that grant allows.
pub const TESTING_PURPOSE: &str = "penyaluran-bansos";

/// One demo operator's identity files.
#[derive(Debug, Clone)]
pub struct OperatorIdentity {
    /// `ADMIN`, `OPERASI`, `KEAMANAN`.
    pub env_name: &'static str,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub profile: PathBuf,
}

/// The `[admin]` section of the demo's config.
pub fn admin_section(listen: SocketAddr) -> String {
    format!("\n[admin]\nenabled = true\nlisten = \"{listen}\"\n")
}

/// A certificate and key for each demo operator (kept when already there), their fingerprints bound into
/// the operator documents, and a profile file each (`operators/{id}.profile.toml`).
pub fn issue_operator_identities(
    authority: &CertificateAuthority,
    store: &DirStore,
    workdir: &Path,
) -> Result<Vec<OperatorIdentity>, String> {
    let dir = workdir.join("operators");
    let mut identities = Vec::new();
    for (env_name, id) in OPERATORS {
        let key_path = format!("operators/{id}.toml");
        let text = std::fs::read_to_string(store.root().join(&key_path))
            .map_err(|e| format!("{}: {e}", store.root().join(&key_path).display()))?;
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{key_path}: {e}"))?;
        let opd = doc.get("opd").and_then(|v| v.as_str()).unwrap_or("diskominfo").to_string();
        let (cert, key) = (dir.join(format!("{id}.crt")), dir.join(format!("{id}.key")));
        if !(cert.is_file() && key.is_file()) {
            authority
                .issue_operator(id, &opd, Validity::days(30))
                .and_then(|issued| issued.write(&cert, &key))
                .map_err(|e| e.to_string())?;
        }
        let pem = std::fs::read_to_string(&cert).map_err(|e| format!("{}: {e}", cert.display()))?;
        let fingerprint = crate::init::fingerprint_of(&pem)?;
        let bound = doc
            .get("identity")
            .and_then(|i| i.get("fingerprint_sha256"))
            .and_then(|f| f.as_array())
            .is_some_and(|list| list.iter().any(|f| f.as_str() == Some(fingerprint.as_str())));
        if !bound {
            let mut list = toml_edit::Array::new();
            list.push(fingerprint);
            doc["identity"]["fingerprint_sha256"] = toml_edit::value(list);
            store.put(&key_path, &doc.to_string()).map_err(|e| e.to_string())?;
        }
        let profile = dir.join(format!("{id}.profile.toml"));
        identities.push(OperatorIdentity { env_name, cert, key, profile });
    }
    Ok(identities)
}

/// Writes each operator's profile, once the admin URL is known.
pub fn write_profiles(identities: &[OperatorIdentity], admin_url: &str, cacert: &Path) -> Result<(), String> {
    for identity in identities {
        let profile = Profile {
            admin_url: Some(admin_url.to_string()),
            cacert: Some(cacert.to_path_buf()),
            operator_cert: Some(identity.cert.clone()),
            operator_key: Some(identity.key.clone()),
        };
        crate::ca::write_file(&identity.profile, profile.to_toml().as_bytes(), 0o600).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The demo's admin listener and the URL operators reach it on.
pub struct RunningAdmin {
    pub server: penghubung_admin::AdminServer,
    pub url: String,
}

/// Starts the admin listener beside the demo's gateway (each change reloads the gateway at once).
pub async fn start(config: &Config, gateway: &Gateway) -> Result<RunningAdmin, String> {
    let server =
        crate::admin::start_beside(config, gateway).await?.ok_or("the demo's config has no [admin] section")?;
    let address = server.local_addr();
    let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    Ok(RunningAdmin { url: format!("https://{host}:{}", address.port()), server })
}

/// The demo operator who signs in to the web console with a password and a TOTP code.
pub const CONSOLE_OPERATOR: &str = "rudi-aptika";

/// Gives [`CONSOLE_OPERATOR`] a fresh random console password and TOTP secret (each demo run); the `demo.env`
/// lines naming them (`PENGHUBUNG_CONSOLE_USER`, `_PASSWORD`, `_TOTP_SECRET`) and the console's URL.
pub fn console_env_lines(config: &Config, admin_url: &str) -> Result<String, String> {
    console_env_lines_of_replicas(std::slice::from_ref(config), admin_url)
}

/// Like [`console_env_lines`], with the same password and TOTP secret in the console credentials of every
/// config (the cluster demo's replicas each keep their own credentials folder, as separate machines would).
pub fn console_env_lines_of_replicas(configs: &[Config], admin_url: &str) -> Result<String, String> {
    use ring::rand::SecureRandom;
    let random = ring::rand::SystemRandom::new();
    let mut password = [0u8; 15];
    random.fill(&mut password).map_err(|_| "no randomness for the console password")?;
    let password = penghubung_manage::totp::base32_encode(&password).to_ascii_lowercase();
    let mut secret = [0u8; penghubung_manage::totp::SECRET_BYTES];
    random.fill(&mut secret).map_err(|_| "no randomness for the console TOTP secret")?;
    for config in configs {
        let credentials = penghubung_manage::Credentials::new(config.console_credentials_dir());
        credentials.set_password(CONSOLE_OPERATOR, &password).map_err(|e| e.to_string())?;
        credentials.set_totp_secret(CONSOLE_OPERATOR, &secret).map_err(|e| e.to_string())?;
    }
    let secret = penghubung_manage::totp::base32_encode(&secret);
    Ok(format!(
        "PENGHUBUNG_CONSOLE_URL={admin_url}/\nPENGHUBUNG_CONSOLE_USER={CONSOLE_OPERATOR}\nPENGHUBUNG_CONSOLE_PASSWORD={password}\nPENGHUBUNG_CONSOLE_TOTP_SECRET={secret}\n"
    ))
}

/// The `demo.env` lines of the management plane (`clients`: the folder of the demo's client certificates).
pub fn env_lines(admin_url: &str, identities: &[OperatorIdentity], clients: &Path) -> String {
    let mut env = format!("PENGHUBUNG_ADMIN_URL={admin_url}\n");
    for identity in identities {
        let _ = writeln!(env, "PENGHUBUNG_OPERATOR_{}_CERT={}", identity.env_name, identity.cert.display());
        let _ = writeln!(env, "PENGHUBUNG_OPERATOR_{}_KEY={}", identity.env_name, identity.key.display());
    }
    let _ = writeln!(env, "PENGHUBUNG_TESTING_SERVICE={TESTING_SERVICE}");
    let _ = writeln!(env, "PENGHUBUNG_TESTING_PATH={TESTING_PATH}");
    let _ = writeln!(env, "PENGHUBUNG_TESTING_PURPOSE={TESTING_PURPOSE}");
    let (opd, app) = TESTING_CLIENT;
    let _ = writeln!(env, "PENGHUBUNG_TESTING_CERT={}", clients.join(format!("{opd}.{app}.crt")).display());
    let _ = writeln!(env, "PENGHUBUNG_TESTING_KEY={}", clients.join(format!("{opd}.{app}.key")).display());
    env
}

/// The lines `penghubung demo` prints about the management plane.
pub fn instructions(admin_url: &str, workdir: &Path) -> String {
    let env = workdir.join("demo.env");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Web console: {admin_url}/ (sign in as {CONSOLE_OPERATOR}: PENGHUBUNG_CONSOLE_PASSWORD and a code of \
         PENGHUBUNG_CONSOLE_TOTP_SECRET from {}; an operator certificate in the browser signs in at once)",
        env.display()
    );
    let _ = writeln!(
        out,
        "Admin API: {admin_url} (operators sari-admin: admin, rudi-aptika: operasi, dewi-persandian: keamanan)"
    );
    let _ = writeln!(out, "  source {}", env.display());
    let _ = writeln!(
        out,
        "  export PENGHUBUNG_OPERATOR_CERT=$PENGHUBUNG_OPERATOR_OPERASI_CERT PENGHUBUNG_OPERATOR_KEY=$PENGHUBUNG_OPERATOR_OPERASI_KEY"
    );
    let _ = writeln!(out, "  penghubung service list");
    let _ = writeln!(
        out,
        "  penghubung service approve --service {TESTING_SERVICE} --operations --reason \"uji fungsi lulus\""
    );
    let _ = writeln!(
        out,
        "  penghubung service approve --service {TESTING_SERVICE} --security --reason \"uji keamanan lulus\" --profile {}/operators/dewi-persandian.profile.toml   # then it is active",
        workdir.display()
    );
    out
}

/// Gives [`TESTING_SERVICE`] a backend on loopback (it stays in `testing`, without approvals).
pub async fn start_testing_sample(store: &DirStore) -> Result<(), String> {
    let address = crate::demo::start_backend(bansos).await.map_err(|e| e.to_string())?;
    crate::demo::point_service_at(store, TESTING_SERVICE_KEY, address)
}

/// Dinas Sosial's recipients of social assistance (fictitious).
fn bansos(method: &Method, path: &str, _body: Bytes) -> (StatusCode, String) {
    match (method, path.strip_prefix("/penerima/")) {
        (&Method::GET, Some("1807015508900002")) => (
            StatusCode::OK,
            serde_json::json!({"nik": "1807015508900002", "terdaftar": true, "program": ["PKH", "BPNT"],
                "tahap": "2026-IV"})
            .to_string(),
        ),
        (&Method::GET, Some(_)) => {
            (StatusCode::NOT_FOUND, serde_json::json!({"pesan": "bukan penerima bantuan"}).to_string())
        }
        _ => (StatusCode::NOT_FOUND, serde_json::json!({"pesan": "tidak ada"}).to_string()),
    }
}
