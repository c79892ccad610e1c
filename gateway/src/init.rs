//! `penghubung init`: a production setup in one folder, with no sample data.
//!
//! | written | what |
//! |---|---|
//! | `penghubung.toml` | the data-plane listener, `[tls]`, the store, the audit trail, the admin API |
//! | `pki/ca.crt`, `ca.key` (0600), `crl.pem` | the Dinas's CA (or list BSrE's in `tls.client_ca_files` later) |
//! | `pki/server.crt`, `server.key` (0600) | the gateway's server certificate, for the data plane and the admin API |
//! | `policies/` | the production skeleton: the default rate tiers, the Dinas's own OPD, the shared schemas, and the first operator |
//! | `operators/{id}.crt`, `.key` (0600), `{id}.profile.toml` | the first `admin` operator's identity and its profile |
//!
//! The classification levels are built in (terbuka < terbatas < rahasia < sangat_rahasia). Nothing is
//! overwritten: `init` refuses a folder that already holds a config, a CA or a store.

use std::path::{Path, PathBuf};

use penghubung_snapshot::store::{DirStore, DocumentStore};
use penghubung_types::embedded::{skeleton_policies, SKELETON_OPD};

use crate::admin_client::Profile;
use crate::ca::{self, CertificateAuthority, Validity};

/// `penghubung init` options.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to create the setup in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The Dinas's own OPD (its id; the first operator belongs to it).
    #[arg(long, default_value = SKELETON_OPD)]
    pub opd: String,
    /// The OPD's full name.
    #[arg(long, default_value = "Dinas Komunikasi dan Informatika")]
    pub opd_name: String,
    /// The first operator's id (a slug: the identity in approvals and the audit trail).
    #[arg(long, default_value = "admin")]
    pub admin_id: String,
    /// The first operator's name.
    #[arg(long, default_value = "Administrator Penghubung")]
    pub admin_name: String,
    /// The first operator's NIP (18 digits).
    #[arg(long)]
    pub admin_nip: String,
    /// SPIFFE trust domain of client certificates (e.g. penghubung.lampungtimurkab.go.id).
    #[arg(long, default_value = ca::DEVELOPMENT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// Organisation named in the CA certificate.
    #[arg(long, default_value = "Pemerintah Daerah")]
    pub organisation: String,
    /// DNS names and addresses of the server certificate (repeat).
    #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub names: Vec<String>,
    /// The data plane's listen address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// The admin API's listen address.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub admin_listen: std::net::SocketAddr,
    /// The ops listener's address (metrics and probes, plain HTTP for the internal network).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub ops_listen: std::net::SocketAddr,
    /// Validity of the operator's certificate, in days.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
}

/// What `init` created, for the message and for tests.
#[derive(Debug)]
pub struct Created {
    pub config: PathBuf,
    pub profile: PathBuf,
    pub operator_cert: PathBuf,
    pub operator_key: PathBuf,
}

/// Runs `penghubung init`; returns the exit code.
pub fn run(args: &InitArgs) -> i32 {
    match create(args) {
        Ok(created) => {
            print!("{}", instructions(args, &created));
            0
        }
        Err(e) => {
            eprintln!("penghubung init: {e}");
            1
        }
    }
}

/// Creates the setup (see the module doc).
pub fn create(args: &InitArgs) -> Result<Created, String> {
    check_args(args)?;
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let dir = args.dir.canonicalize().map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let (config_path, pki, policies) = (dir.join("penghubung.toml"), dir.join("pki"), dir.join("policies"));
    for existing in [&config_path, &pki.join("ca.crt"), &policies] {
        if existing.exists() {
            return Err(format!("{} exists; init writes a new setup and overwrites nothing", existing.display()));
        }
    }
    let fail = |e: ca::CaError| e.to_string();
    let authority = CertificateAuthority::init(&pki, &args.trust_domain, &args.organisation).map_err(fail)?;
    authority
        .issue_server(&args.names, Validity::days(825))
        .and_then(|issued| issued.write(&pki.join("server.crt"), &pki.join("server.key")))
        .map_err(fail)?;
    let operators = dir.join("operators");
    let (operator_cert, operator_key) =
        (operators.join(format!("{}.crt", args.admin_id)), operators.join(format!("{}.key", args.admin_id)));
    let issued = authority.issue_operator(&args.admin_id, &args.opd, Validity::days(args.days)).map_err(fail)?;
    issued.write(&operator_cert, &operator_key).map_err(fail)?;
    let fingerprint = fingerprint_of(&issued.cert_pem)?;

    let store = DirStore::new(&policies);
    for (key, text) in skeleton_policies() {
        if key == "opds/diskominfo.toml" {
            continue;
        }
        store.put(key, text).map_err(|e| e.to_string())?;
    }
    store.put(&format!("opds/{}.toml", args.opd), &opd_document(args)).map_err(|e| e.to_string())?;
    store
        .put(&format!("operators/{}.toml", args.admin_id), &operator_document(args, &fingerprint))
        .map_err(|e| e.to_string())?;

    std::fs::write(&config_path, config_text(args)).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let profile_path = operators.join(format!("{}.profile.toml", args.admin_id));
    let profile = Profile {
        admin_url: Some(format!("https://{}", url_host(args))),
        cacert: Some(authority.cert_path()),
        operator_cert: Some(operator_cert.clone()),
        operator_key: Some(operator_key.clone()),
    };
    ca::write_file(&profile_path, profile.to_toml().as_bytes(), 0o600).map_err(fail)?;
    Ok(Created { config: config_path, profile: profile_path, operator_cert, operator_key })
}

fn check_args(args: &InitArgs) -> Result<(), String> {
    let slug = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !slug(&args.opd) {
        return Err(format!("--opd `{}`: lower-case letters, digits and '-'", args.opd));
    }
    if !slug(&args.admin_id) {
        return Err(format!("--admin-id `{}`: lower-case letters, digits and '-'", args.admin_id));
    }
    if args.admin_nip.len() != 18 || !args.admin_nip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("--admin-nip `{}`: a NIP has 18 digits", args.admin_nip));
    }
    if args.admin_name.trim().is_empty() || args.opd_name.trim().is_empty() {
        return Err("--admin-name and --opd-name must not be empty".into());
    }
    Ok(())
}

/// The admin listener's `host:port` as an operator's client reaches it (a wildcard address becomes loopback).
fn url_host(args: &InitArgs) -> String {
    let address = args.admin_listen;
    let ip = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    let ip = if ip.contains(':') { format!("[{ip}]") } else { ip };
    format!("{ip}:{}", address.port())
}

/// SHA-256 of the certificate's DER, lower-case hex: what an Operator document binds.
pub fn fingerprint_of(cert_pem: &str) -> Result<String, String> {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .ok_or("no certificate in the PEM text")?
        .map_err(|e| e.to_string())?;
    Ok(penghubung_tls::identity::hex(ring::digest::digest(&ring::digest::SHA256, der.as_ref()).as_ref()))
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

fn opd_document(args: &InitArgs) -> String {
    format!(
        "# The Dinas's own OPD, written by `penghubung init`.\nid = {}\nname = {}\nmandiri_tik = true\n",
        toml_string(&args.opd),
        toml_string(&args.opd_name)
    )
}

fn operator_document(args: &InitArgs, fingerprint: &str) -> String {
    format!(
        "# The first operator, written by `penghubung init`.\nid = {}\nname = {}\nnip = {}\nopd = {}\nroles = [\"admin\"]\nenabled = true\n\n[identity]\nfingerprint_sha256 = [\"{fingerprint}\"]\n",
        toml_string(&args.admin_id),
        toml_string(&args.admin_name),
        toml_string(&args.admin_nip),
        toml_string(&args.opd),
    )
}

fn config_text(args: &InitArgs) -> String {
    format!(
        "# Written by `penghubung init`. Every key: docs/configuration.md.\n\
         \n\
         [[listeners]]\nname = \"data\"\naddress = \"{listen}\"\n\n\
         [tls]\ncert_file = \"pki/server.crt\"\nkey_file = \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\ncrl_files = [\"pki/crl.pem\"]\n\n\
         [store]\npath = \"policies\"\n# init wrote the skeleton; an empty store stays empty.\nseed_baseline = false\n\n\
         [audit]\nenabled = true\ndir = \"audit\"\nkey_file = \"pki/audit-signing.key\"\npublic_key_file = \"pki/audit-signing.pub\"\nnik_secret_file = \"pki/audit-nik.secret\"\n\n\
         {admin}",
        listen = args.listen,
        admin = admin_section(args),
    )
}

/// The `[admin]` section (the admin API on its own listener, operators authenticated by certificates of this CA)
/// and the `[ops]` section.
fn admin_section(args: &InitArgs) -> String {
    format!(
        "[admin]\nlisten = \"{}\"\n\n# Metrics (/metrics) and probes (/health/live, /health/ready): keep it on the internal network.\n[ops]\nlisten = \"{}\"\n",
        args.admin_listen, args.ops_listen
    )
}

fn instructions(args: &InitArgs, created: &Created) -> String {
    let dir = created.config.parent().unwrap_or(Path::new("."));
    let config = created.config.display();
    let profile = created.profile.display();
    format!(
        "Penghubung set up in {dir}:\n\
         \x20 config      {config}\n\
         \x20 CA          {ca} (key 0600; keep it offline when you can)\n\
         \x20 store       {store}: default tiers, OPD `{opd}`, operator `{id}` (admin); no sample data\n\
         \x20 operator    {cert} and {key} (0600)\n\
         \x20 profile     {profile}\n\
         Classification levels: terbuka < terbatas < rahasia < sangat_rahasia.\n\
         \n\
         Next:\n\
         \x20 penghubung serve --config {config} &\n\
         \x20 mkdir -p ~/.config/penghubung && cp {profile} ~/.config/penghubung/operator.toml   # or: export PENGHUBUNG_PROFILE={profile}\n\
         \x20 penghubung operator list\n\
         \x20 penghubung opd create --id dinkes --name \"Dinas Kesehatan\" --reason \"OPD baru\"\n\
         \x20 penghubung operator create --id rudi-aptika --name \"Rudi\" --nip 198001012006041001 --opd {opd} --role operasi\n\
         \x20 penghubung ca issue-operator --operator rudi-aptika --out-dir operators\n\
         Every management command goes through the admin API on https://{admin}, as the operator whose certificate it presents.\n",
        dir = dir.display(),
        ca = dir.join("pki/ca.crt").display(),
        store = dir.join("policies").display(),
        opd = args.opd,
        id = args.admin_id,
        cert = created.operator_cert.display(),
        key = created.operator_key.display(),
        admin = url_host(args),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: InitArgs,
    }

    fn args(dir: &Path) -> InitArgs {
        let dir = dir.to_str().unwrap();
        Wrapper::parse_from(["init", "--dir", dir, "--admin-nip", "198503122010012003", "--admin-id", "sari-admin"])
            .args
    }

    #[test]
    fn init_writes_a_valid_setup_once_with_the_first_admin_bound_to_its_certificate() {
        let root = tempfile::tempdir().unwrap();
        let created = create(&args(&root.path().join("site"))).unwrap();
        let problems = crate::check::check(Some(&created.config));
        assert!(!penghubung_types::diagnostics::has_errors(&problems), "{problems:?}");
        let operator = std::fs::read_to_string(root.path().join("site/policies/operators/sari-admin.toml")).unwrap();
        let fingerprint = fingerprint_of(&std::fs::read_to_string(&created.operator_cert).unwrap()).unwrap();
        assert!(operator.contains(&fingerprint) && operator.contains("roles = [\"admin\"]"), "{operator}");
        let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions());
        assert_eq!(mode(&created.operator_key) & 0o777, 0o600);
        assert_eq!(mode(&root.path().join("site/pki/ca.key")) & 0o777, 0o600);
        let profile = Profile::read(&created.profile).unwrap();
        assert_eq!(profile.admin_url.as_deref(), Some("https://127.0.0.1:9443"));
        assert!(!root.path().join("site/policies/services").exists(), "no sample data");
        let again = create(&args(&root.path().join("site"))).unwrap_err();
        assert!(again.contains("overwrites nothing"), "{again}");
    }

    #[test]
    fn a_bad_nip_or_id_is_refused_before_anything_is_written() {
        let root = tempfile::tempdir().unwrap();
        let mut bad = args(&root.path().join("site"));
        bad.admin_nip = "123".into();
        assert!(create(&bad).unwrap_err().contains("18 digits"));
        bad.admin_nip = "198503122010012003".into();
        bad.admin_id = "Sari Admin".into();
        assert!(create(&bad).unwrap_err().contains("--admin-id"));
        assert!(!root.path().join("site").exists());
    }
}
