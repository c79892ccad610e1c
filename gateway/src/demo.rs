//! `penghubung demo`: one command that shows the gateway working. It starts sample OPD backends on loopback
//! (Disdukcapil's population data, Dinas Kesehatan's patient records, Bappeda's open indicators), writes a
//! config and the baseline documents into the workdir (pointing the demo services at those backends), creates
//! a CA, the gateway's server certificate and a client certificate for every baseline client
//! (`DIR/clients/{opd}.{app}.crt` and `.key`), starts the gateway with mTLS, prints `ready: <url>` and curl
//! commands that use the certificates, and writes `demo.env` for scripts.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::ca::{CertificateAuthority, Validity, DEVELOPMENT_TRUST_DOMAIN};
use crate::demo_admin;
use crate::exit::{exit_code, start_failed};
use penghubung_server::telemetry;
use penghubung_server::{Gateway, Signals, StartError};
use penghubung_snapshot::store::{DirStore, DocumentStore};
use penghubung_types::config::Config;
use penghubung_types::documents::ClientDoc;

mod cluster;
mod national;

/// A demo backend and the service document it stands behind.
struct DemoBackend {
    /// Store key of the service document.
    service_key: &'static str,
    /// Name used in `demo.env` (`PENGHUBUNG_SAMPLE_<NAME>`).
    env_name: &'static str,
    /// A sample route through the gateway.
    sample_path: &'static str,
    handler: fn(&Method, &str, Bytes) -> (StatusCode, String),
}

const BACKENDS: &[DemoBackend] = &[
    DemoBackend {
        service_key: "services/disdukcapil/kependudukan.toml",
        env_name: "KEPENDUDUKAN",
        sample_path: "/disdukcapil/kependudukan/v1/penduduk/1807015508900002",
        handler: kependudukan,
    },
    DemoBackend {
        service_key: "services/dinkes/rekam-medis.toml",
        env_name: "REKAM_MEDIS",
        sample_path: "/dinkes/rekam-medis/v1/pasien/RM-000123",
        handler: rekam_medis,
    },
    DemoBackend {
        service_key: "services/bappeda/indikator.toml",
        env_name: "INDIKATOR",
        sample_path: "/bappeda/indikator/v1/indikator",
        handler: indikator,
    },
];

/// The client whose certificate `demo.env` names (`PENGHUBUNG_CERT` / `PENGHUBUNG_KEY`).
const DEFAULT_CLIENT: (&str, &str) = ("dinkes", "simpus");

/// A path the default client may not call: the mental-health history is `sangat_rahasia`, SIMPUS is cleared
/// for `rahasia` (403 `policy.clearance`).
const SAMPLE_DENIED: &str = "/dinkes/rekam-medis/v1/pasien/RM-000123/kesehatan-jiwa";
/// A path whose response has fields above the default client's clearance (withheld, listed in
/// `X-Penghubung-Redacted`).
const SAMPLE_REDACTED: &str = "/disdukcapil/kependudukan/v1/penduduk/1807015508900002";

/// A path the default client may call a few times per second only: its grant (`simpus-indikator`) gets the
/// demo tier [`DEMO_TIER`], so 100 quick requests meet 429 `ratelimit.exceeded`.
const SAMPLE_LIMITED: &str = "/bappeda/indikator/v1/indikator";
/// The grant behind [`SAMPLE_LIMITED`] and the slow tier the demo gives it.
const LIMITED_GRANT: &str = "grants/simpus-indikator.toml";
const DEMO_TIER: (&str, &str) = (
    "tiers/demo-lambat.toml",
    "# Written by `penghubung demo`: a slow tier so that rate limiting shows (5 requests per second, burst 5).\nid = \"demo-lambat\"\ntitle = \"Demo: lambat\"\nrate = 5\nperiod = \"1s\"\nburst = 5\n",
);

/// Runs the demo until SIGINT/SIGTERM; returns the exit code. With `cluster` (`--cluster N`): a `redis-server`
/// and N replicas sharing it (`demo/cluster.rs`).
pub async fn run(workdir: PathBuf, listen: SocketAddr, admin_listen: SocketAddr, cluster: Option<usize>) -> i32 {
    // Before `ready:` is printed, so that whoever reads it can stop the demo with SIGTERM at once.
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("penghubung demo: cannot install signal handlers: {e}");
            return 1;
        }
    };
    if let Some(replicas) = cluster {
        return cluster::run(&workdir, listen, admin_listen, replicas, signals).await;
    }
    match prepare_and_start(&workdir, listen, admin_listen).await {
        Ok((gateway, admin, url, workdir)) => {
            let ops_url = gateway.ops_addr().map(|a| format!("http://{a}"));
            print_instructions(&url, &admin.url, ops_url.as_deref(), &workdir, None);
            let outcome = gateway.run_until_signal(signals).await;
            admin.server.shutdown().await;
            exit_code(outcome)
        }
        Err(DemoError::Start(StartError::Bind { address, source })) => {
            eprintln!(
                "penghubung demo: cannot listen on {address}: {source}. Try `--listen 127.0.0.1:0` for a free port."
            );
            1
        }
        Err(DemoError::Start(e)) => start_failed(e),
        Err(DemoError::Setup(e)) => {
            eprintln!("penghubung demo: {e}");
            1
        }
    }
}

enum DemoError {
    Setup(String),
    Start(StartError),
}

/// The demo's workdir once prepared: the sample store (its services pointed at the running backends), the CA,
/// the server and client certificates, and the operators' identities.
struct Prepared {
    workdir: PathBuf,
    authority: CertificateAuthority,
    operators: Vec<demo_admin::OperatorIdentity>,
}

/// `what: e` as a setup failure.
fn setup(what: &str, e: &dyn std::fmt::Display) -> DemoError {
    DemoError::Setup(format!("{what}: {e}"))
}

/// Starts the sample backends and prepares the workdir (kept from an earlier run where it can be).
async fn prepare(workdir: &Path, listen: SocketAddr) -> Result<Prepared, DemoError> {
    std::fs::create_dir_all(workdir).map_err(|e| setup(&format!("cannot create {}", workdir.display()), &e))?;
    let workdir = workdir.canonicalize().map_err(|e| setup("workdir", &e))?;
    let store = DirStore::new(workdir.join("policies"));
    store.seed_baseline_if_empty().map_err(|e| setup("seeding the store", &e))?;
    for backend in BACKENDS {
        let address = start_backend(backend.handler).await.map_err(|e| setup("starting a demo backend", &e))?;
        point_service_at(&store, backend.service_key, address).map_err(|e| setup(backend.service_key, &e))?;
    }
    slow_down_limited_sample(&store).map_err(|e| setup("demo tier", &e))?;
    national::start(&store, &workdir).await.map_err(|e| setup("national doubles", &e))?;
    demo_admin::start_testing_sample(&store).await.map_err(|e| setup("the sample in testing", &e))?;
    let pki = workdir.join("pki");
    let authority = if pki.join("ca.crt").is_file() {
        CertificateAuthority::open(&pki)
    } else {
        CertificateAuthority::init(&pki, DEVELOPMENT_TRUST_DOMAIN, "Demo Penghubung")
    }
    .map_err(|e| setup("demo CA", &e))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    authority
        .issue_server(&names, Validity::days(30))
        .and_then(|issued| issued.write(&pki.join("server.crt"), &pki.join("server.key")))
        .map_err(|e| setup("demo server certificate", &e))?;
    issue_client_certificates(&authority, &store, &workdir.join("clients"))
        .map_err(|e| setup("demo client certificates", &e))?;
    let operators = demo_admin::issue_operator_identities(&authority, &store, &workdir)
        .map_err(|e| setup("demo operator certificates", &e))?;
    Ok(Prepared { workdir, authority, operators })
}

async fn prepare_and_start(
    workdir: &Path,
    listen: SocketAddr,
    admin_listen: SocketAddr,
) -> Result<(Gateway, demo_admin::RunningAdmin, String, PathBuf), DemoError> {
    let Prepared { workdir, authority, operators } = prepare(workdir, listen).await?;
    let config_path = workdir.join("penghubung.toml");
    let config_text = config_text(listen, admin_listen, "[store]\npath = \"policies\"\n", "");
    std::fs::write(&config_path, config_text).map_err(|e| setup("writing penghubung.toml", &e))?;
    let config = Config::load(&config_path)
        .map_err(|p| DemoError::Setup(p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))?;
    telemetry::init_logging(&config.log);
    let gateway = Gateway::start(config.clone()).await.map_err(DemoError::Start)?;
    let admin = demo_admin::start(&config, &gateway).await.map_err(|e| setup("the admin API", &e))?;
    let address = gateway.local_addrs()[0];
    let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
    let url = format!("https://{host}:{}", address.port());
    let mut env = sample_env(&url, &authority, &workdir);
    if let Some(ops) = gateway.ops_addr() {
        let _ = writeln!(env, "PENGHUBUNG_OPS_URL=http://{ops}");
    }
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_DIR={}", workdir.join("audit").display());
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_PUBKEY={}", workdir.join("pki/audit-signing.pub").display());
    let _ = writeln!(env, "PENGHUBUNG_AUDIT_NIK_SECRET={}", workdir.join("pki/audit-nik.secret").display());
    demo_admin::write_profiles(&operators, &admin.url, &authority.cert_path())
        .map_err(|e| setup("operator profiles", &e))?;
    env.push_str(&demo_admin::env_lines(&admin.url, &operators, &workdir.join("clients")));
    env.push_str(&demo_admin::console_env_lines(&config, &admin.url).map_err(|e| setup("console credentials", &e))?);
    std::fs::write(workdir.join("demo.env"), env).map_err(|e| setup("writing demo.env", &e))?;
    Ok((gateway, admin, url, workdir))
}

/// The demo's config: one listener on `listen`, mTLS with the demo CA, the admin API on `admin_listen`, the
/// audit trail, the ops listener on a free port and the adapters' secrets. `store`: the `[store]` section (and
/// what goes with it); `audit_extra`: more keys of `[audit]`.
fn config_text(listen: SocketAddr, admin_listen: SocketAddr, store: &str, audit_extra: &str) -> String {
    format!(
        "# Written by `penghubung demo`.\n[[listeners]]\nname = \"demo\"\naddress = \"{listen}\"\n\n[tls]\ncert_file = \"pki/server.crt\"\nkey_file = \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\ncrl_files = [\"pki/crl.pem\"]\n\n{store}\n[log]\nformat = \"human\"\nlevel = \"info\"\n\n[audit]\nenabled = true\ndir = \"audit\"\nkey_file = \"pki/audit-signing.key\"\npublic_key_file = \"pki/audit-signing.pub\"\nnik_secret_file = \"pki/audit-nik.secret\"\n{audit_extra}\n[ops]\nlisten = \"127.0.0.1:0\"\n{}",
        demo_admin::admin_section(admin_listen)
    ) + national::SECRETS_CONFIG
}

/// The first lines of `demo.env`: the data plane's URL, the CA, the default client's certificate and key, and
/// the sample paths.
fn sample_env(url: &str, authority: &CertificateAuthority, workdir: &Path) -> String {
    let (opd, app) = DEFAULT_CLIENT;
    let mut env = format!(
        "PENGHUBUNG_URL={url}\nPENGHUBUNG_CACERT={}\nPENGHUBUNG_CERT={}\nPENGHUBUNG_KEY={}\n",
        authority.cert_path().display(),
        workdir.join("clients").join(format!("{opd}.{app}.crt")).display(),
        workdir.join("clients").join(format!("{opd}.{app}.key")).display(),
    );
    for b in BACKENDS {
        let _ = writeln!(env, "PENGHUBUNG_SAMPLE_{}={}", b.env_name, b.sample_path);
    }
    let _ = writeln!(env, "PENGHUBUNG_SAMPLE_DENIED={SAMPLE_DENIED}");
    let _ = writeln!(env, "PENGHUBUNG_SAMPLE_REDACTED={SAMPLE_REDACTED}");
    let _ = writeln!(env, "PENGHUBUNG_SAMPLE_LIMITED={SAMPLE_LIMITED}");
    national::write_env(&mut env);
    env
}

/// A certificate for every client document whose SPIFFE id this CA can vouch for, unless one exists already.
fn issue_client_certificates(authority: &CertificateAuthority, store: &DirStore, out: &Path) -> Result<(), String> {
    let (documents, _) = store.list().map_err(|e| e.to_string())?;
    for d in documents.iter().filter(|d| d.kind == penghubung_snapshot::store::DocumentKind::Client) {
        let Ok(client) = toml::from_str::<ClientDoc>(&d.text) else { continue };
        let Some((opd, app)) = client.id.split_once('/') else { continue };
        if !client.identity.spiffe.contains(&authority.spiffe_id(opd, app)) {
            continue;
        }
        let (cert, key) = (out.join(format!("{opd}.{app}.crt")), out.join(format!("{opd}.{app}.key")));
        if cert.is_file() && key.is_file() {
            continue;
        }
        authority
            .issue_client(opd, app, Validity::days(30))
            .and_then(|issued| issued.write(&cert, &key))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the demo tier and gives it to the grant behind [`SAMPLE_LIMITED`] (keeping the rest of the grant).
fn slow_down_limited_sample(store: &DirStore) -> Result<(), String> {
    store.put(DEMO_TIER.0, DEMO_TIER.1).map_err(|e| e.to_string())?;
    let path = store.root().join(LIMITED_GRANT);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    doc["tier"] = toml_edit::value("demo-lambat");
    store.put(LIMITED_GRANT, &doc.to_string()).map_err(|e| e.to_string())
}

/// Rewrites the service's `upstream.endpoints` to the demo backend, keeping the rest of the document.
pub(crate) fn point_service_at(store: &DirStore, key: &str, address: SocketAddr) -> Result<(), String> {
    let path = store.root().join(key);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    let mut endpoints = toml_edit::Array::new();
    endpoints.push(format!("http://{address}"));
    doc["upstream"]["endpoints"] = toml_edit::value(endpoints);
    store.put(key, &doc.to_string()).map_err(|e| e.to_string())
}

/// Prints `ready: <url>` and the commands to try, in one write. A closed stdout (whoever started the demo stopped
/// reading after `ready:`) is not an error: the demo keeps serving. `cluster`: the cluster demo's lines about its
/// replicas and Redis (the store is then in Redis, the audit trails per replica).
fn print_instructions(url: &str, admin_url: &str, ops_url: Option<&str>, workdir: &Path, cluster: Option<&str>) {
    use std::io::Write as _;
    let mut out = String::new();
    let (opd, app) = DEFAULT_CLIENT;
    let clients = workdir.join("clients");
    let tls = format!(
        "--cacert {} --cert {} --key {}",
        workdir.join("pki/ca.crt").display(),
        clients.join(format!("{opd}.{app}.crt")).display(),
        clients.join(format!("{opd}.{app}.key")).display()
    );
    let _ = writeln!(out, "ready: {url}");
    out.push('\n');
    if let Some(cluster) = cluster {
        out.push_str(cluster);
        out.push('\n');
    }
    let _ = writeln!(out, "Penghubung demo is serving with mTLS (client `{opd}/{app}`). Try:");
    let _ = writeln!(out, "  curl -s {tls} {url}/_penghubung/health");
    for b in BACKENDS {
        let _ = writeln!(out, "  curl -s {tls} {url}{}", b.sample_path);
    }
    let _ = writeln!(
        out,
        "  curl -s {tls} -i {url}{SAMPLE_REDACTED}   # fields above `rahasia` withheld: see X-Penghubung-Redacted"
    );
    let _ = writeln!(
        out,
        "  curl -s {tls} {url}{SAMPLE_DENIED}   # 403 policy.clearance: sangat_rahasia, SIMPUS is cleared for rahasia"
    );
    let _ = writeln!(out, "  curl -s {tls} {url}/dinsos/bansos/v1/penerima/1807015508900002   # 403 policy.no_grant");
    let _ = writeln!(out, "  curl -s {tls} {url}/_penghubung/services   # what this client may call (discovery)");
    let _ = writeln!(
        out,
        "  curl -s {tls} {url}/_penghubung/services/disdukcapil/kependudukan/v1/openapi.json   # its contract"
    );
    let _ = writeln!(
        out,
        "  curl -s {tls} -X POST -H 'content-type: application/json' -d '{{\"nik\":\"123\",\"nama\":\"X\"}}' {url}/disdukcapil/kependudukan/v1/verifikasi   # 400 contract.request_invalid"
    );
    let _ = writeln!(
        out,
        "  curl -s {tls} -X POST -H 'content-type: application/json' -d '{{\"nik\":\"1807015508900002\",\"nama\":\"SITI AMINAH\"}}' {url}/disdukcapil/kependudukan/v1/verifikasi"
    );
    let _ = writeln!(out, "  curl -s {tls} -i {url}/dinkes/tidak-ada/v1/x   # 404 route.not_found (problem+json)");
    national::write_instructions(&mut out, &tls, url);
    let _ = writeln!(
        out,
        "  for i in $(seq 100); do curl -s -o /dev/null -w '%{{http_code}}\\n' {tls} {url}{SAMPLE_LIMITED}; done | sort | uniq -c   # tier demo-lambat: 5/s, then 429 ratelimit.exceeded"
    );
    let _ = writeln!(
        out,
        "  curl -s --cacert {} {url}/_penghubung/health   # no client certificate: the handshake is refused",
        workdir.join("pki/ca.crt").display()
    );
    if let Some(ops) = ops_url {
        let _ = writeln!(
            out,
            "  curl -s {ops}/metrics   # Prometheus metrics on the ops listener (plain HTTP, no certificate)"
        );
        let _ = writeln!(out, "  curl -s {ops}/health/ready   # readiness for load balancers");
    }
    let _ = writeln!(out, "Every demo client's certificate is in {}/{{opd}}.{{app}}.crt and .key", clients.display());
    let _ = writeln!(out, "Or: source {}/demo.env && curl --cacert \"$PENGHUBUNG_CACERT\" --cert \"$PENGHUBUNG_CERT\" --key \"$PENGHUBUNG_KEY\" \"$PENGHUBUNG_URL$PENGHUBUNG_SAMPLE_REKAM_MEDIS\"", workdir.display());
    out.push('\n');
    if cluster.is_none() {
        let _ = writeln!(
            out,
            "Documents: {}/policies (edit one: the gateway reloads it without a restart)",
            workdir.display()
        );
        let _ = writeln!(out, "Variables: source {}/demo.env", workdir.display());
        let _ = writeln!(
            out,
            "Monthly usage per OPD: penghubung report usage --config {}/penghubung.toml --format html --out usage.html",
            workdir.display()
        );
        let _ = writeln!(
            out,
            "Policy dry run: penghubung policy explain --config {}/penghubung.toml --client dinsos/sikasos --service disdukcapil/kependudukan/v1 --operation \"POST /verifikasi\" --purpose penyaluran-bansos",
            workdir.display()
        );
        let _ = writeln!(
            out,
            "Audit trail: penghubung audit verify {0}/audit --key {0}/pki/audit-signing.pub   (search: penghubung audit search {0}/audit --client dinkes/simpus)",
            workdir.display()
        );
    }
    out.push_str(&demo_admin::instructions(admin_url, workdir));
    let _ = writeln!(out, "Stop with Ctrl-C.");
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
}

pub(crate) async fn start_backend(
    handler: fn(&Method, &str, Bytes) -> (StatusCode, String),
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                let (parts, body) = req.into_parts();
                let body = Limited::new(body, 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let (status, json) = handler(&parts.method, parts.uri.path(), body);
                let mut response = Response::new(Full::new(Bytes::from(json)));
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                Ok::<_, Infallible>(response)
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// Sample residents (fictitious): NIK, name, sex, birth place and date, address.
const PENDUDUK: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "1807015508900002",
        "SITI AMINAH",
        "PEREMPUAN",
        "SUKADANA",
        "1990-08-15",
        "Desa Sukadana, Kec. Sukadana, Kab. Lampung Timur",
    ),
    (
        "1807011203850001",
        "BUDI SANTOSO",
        "LAKI-LAKI",
        "METRO",
        "1985-03-12",
        "Desa Pasar Sukadana, Kec. Sukadana, Kab. Lampung Timur",
    ),
];

fn json(status: StatusCode, value: serde_json::Value) -> (StatusCode, String) {
    (status, value.to_string())
}

fn kependudukan(method: &Method, path: &str, body: Bytes) -> (StatusCode, String) {
    match (method, path.strip_prefix("/penduduk/")) {
        (&Method::GET, Some(nik)) => match PENDUDUK.iter().find(|p| p.0 == nik) {
            Some((nik, nama, jk, tempat, tanggal, alamat)) => json(
                StatusCode::OK,
                serde_json::json!({"nik": nik, "nama": nama, "jenis_kelamin": jk, "tempat_lahir": tempat,
                "tanggal_lahir": tanggal, "alamat": alamat, "kode_wilayah": "18.07.01", "agama": "ISLAM",
                "nama_ibu_kandung": "FATIMAH", "disabilitas": "TIDAK ADA",
                "keluarga": [
                    {"nik": "1807011203850001", "nama": "BUDI SANTOSO", "hubungan": "SUAMI", "status_perkawinan": "KAWIN"},
                    {"nik": "1807014407150003", "nama": "PUTRI AMELIA", "hubungan": "ANAK", "status_perkawinan": "BELUM KAWIN"}
                ]}),
            ),
            None => json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "NIK tidak ditemukan"})),
        },
        _ if method == Method::POST && path == "/verifikasi" => {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let nik = request["nik"].as_str().unwrap_or("");
            let nama = request["nama"].as_str().unwrap_or("");
            let found = PENDUDUK.iter().find(|p| p.0 == nik);
            json(
                StatusCode::OK,
                serde_json::json!({"nik_terdaftar": found.is_some(),
                    "nama_cocok": found.is_some_and(|p| p.1.eq_ignore_ascii_case(nama))}),
            )
        }
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "tidak ada"})),
    }
}

fn rekam_medis(method: &Method, path: &str, _body: Bytes) -> (StatusCode, String) {
    let Some(rest) = path.strip_prefix("/pasien/").filter(|_| method == Method::GET) else {
        return json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "tidak ada"}));
    };
    match rest.split_once('/') {
        None if rest == "RM-000123" => json(
            StatusCode::OK,
            serde_json::json!({"id": "RM-000123", "nama": "SITI AMINAH", "nik": "1807015508900002",
                "golongan_darah": "O", "alergi": ["penisilin"], "faskes": "Puskesmas Sukadana"}),
        ),
        Some(("RM-000123", "kunjungan")) => json(
            StatusCode::OK,
            serde_json::json!({"pasien": "RM-000123", "kunjungan": [
                {"tanggal": "2026-10-02", "poli": "Umum", "diagnosa_icd10": "J06.9", "catatan_dokter": "ISPA ringan"},
                {"tanggal": "2026-11-10", "poli": "Gigi", "diagnosa_icd10": "K02.1", "catatan_dokter": "karies"}]}),
        ),
        Some(("RM-000123", "kesehatan-jiwa")) => json(
            StatusCode::OK,
            serde_json::json!({"pasien": "RM-000123", "riwayat": [{"tahun": 2024, "catatan": "(fiktif)"}]}),
        ),
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "pasien tidak ditemukan"})),
    }
}

fn indikator(method: &Method, path: &str, _body: Bytes) -> (StatusCode, String) {
    const DATA: &[(&str, &str, f64, &str)] = &[
        ("IPM", "Indeks Pembangunan Manusia", 71.2, "indeks"),
        ("TPT", "Tingkat Pengangguran Terbuka", 4.1, "persen"),
        ("KEMISKINAN", "Persentase Penduduk Miskin", 13.6, "persen"),
    ];
    let row = |(kode, nama, nilai, satuan): &(&str, &str, f64, &str)| serde_json::json!({"kode": kode, "nama": nama, "nilai": nilai, "satuan": satuan, "tahun": 2025});
    if method != Method::GET {
        return json(StatusCode::METHOD_NOT_ALLOWED, serde_json::json!({"pesan": "hanya GET"}));
    }
    match path {
        "/indikator" => json(StatusCode::OK, serde_json::json!({"data": DATA.iter().map(row).collect::<Vec<_>>()})),
        _ => match path.strip_prefix("/indikator/").and_then(|k| DATA.iter().find(|d| d.0 == k)) {
            Some(d) => json(StatusCode::OK, row(d)),
            None => json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "indikator tidak ditemukan"})),
        },
    }
}
