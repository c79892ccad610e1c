//! The demo's national systems: a double of the national SPLP (a WSO2-like token endpoint and an API under
//! `/t/{tenant}/{context}/{version}/…` that requires its bearer token) and a double of Dukcapil's NIK service
//! (JSON `POST`s whose body must carry the operator credentials, answers under `content[0]`). The demo writes
//! their credentials as secret files (mode 0600) under `DIR/secrets`, services that reach them through the
//! `splp` and `dukcapil` adapters, and grants for the demo client, which holds no national credential: the
//! gateway does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use penghubung_snapshot::store::{DirStore, DocumentStore};

/// The config section naming the directory the demo's secrets are written to.
pub(super) const SECRETS_CONFIG: &str = "\n[secrets]\ndir = \"secrets\"\n";

/// A path through the gateway to the SPLP double (`PENGHUBUNG_SAMPLE_NASIONAL`): Kemendagri's region reference
/// for Kabupaten Lampung Timur, through the `splp` adapter.
pub(super) const SAMPLE_NASIONAL: &str = "/diskominfo/splp-wilayah/v1/kabupaten/18.07";
/// A path through the gateway to the Dukcapil double (`POST` with `{"nik": …}`), through the `dukcapil` adapter;
/// shown in the instructions only (every `PENGHUBUNG_SAMPLE_*` of `demo.env` answers a `GET`).
pub(super) const SAMPLE_NASIONAL_NIK: &str = "/disdukcapil/dukcapil-pusat/v1/CALL_NIK";

/// The SPLP's tenant, API context and version the double serves.
const SPLP_TENANT: &str = "splp.layanan.go.id";
const SPLP_CONTEXT: &str = "kemendagri-wilayah";
const SPLP_VERSION: &str = "1.0";
/// How long the SPLP double's tokens live.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The documented response schema of the `dukcapil` adapter's `CALL_NIK` (with `x-klasifikasi`).
const DUKCAPIL_RESPONSE_SCHEMA: &str = include_str!("../../../docs/national/dukcapil-call-nik.schema.json");
const DUKCAPIL_REQUEST_SCHEMA: &str = include_str!("../../../docs/national/dukcapil-call-nik-request.schema.json");

/// The `demo.env` line of the national sample.
pub(super) fn write_env(env: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(env, "PENGHUBUNG_SAMPLE_NASIONAL={SAMPLE_NASIONAL}");
}

/// The demo's instructions for the national samples (`tls`: curl's certificate options).
pub(super) fn write_instructions(out: &mut String, tls: &str, url: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "  curl -s {tls} {url}{SAMPLE_NASIONAL}   # national SPLP (double): the gateway holds the consumer key and fetches the token"
    );
    let _ = writeln!(
        out,
        "  curl -s {tls} -i -H 'content-type: application/json' -d '{{\"nik\":\"1807015508900002\"}}' {url}{SAMPLE_NASIONAL_NIK}   # Dukcapil (double): operator credentials injected by the gateway; nama_lgkp_ibu withheld"
    );
}

/// The credentials of the two doubles, generated per demo start.
struct Credentials {
    splp_key: String,
    splp_secret: String,
    dukcapil_user: String,
    dukcapil_password: String,
    dukcapil_ip: &'static str,
}

/// Starts the SPLP and Dukcapil doubles, writes their credentials as secrets under `workdir/secrets`, and the
/// services and grants that reach them into `store`.
pub(super) async fn start(store: &DirStore, workdir: &Path) -> Result<(), String> {
    let random = |prefix: &str| format!("{prefix}-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let credentials = Arc::new(Credentials {
        splp_key: random("demo-key"),
        splp_secret: random("demo-secret"),
        dukcapil_user: "demo-operator-lamtim".to_string(),
        dukcapil_password: random("demo-password"),
        dukcapil_ip: "10.18.7.10",
    });
    let secrets = workdir.join("secrets");
    write_secret(&secrets, "demo-splp-consumer-key", &credentials.splp_key)?;
    write_secret(&secrets, "demo-splp-consumer-secret", &credentials.splp_secret)?;
    write_secret(&secrets, "demo-dukcapil-user-id", &credentials.dukcapil_user)?;
    write_secret(&secrets, "demo-dukcapil-password", &credentials.dukcapil_password)?;
    let tokens: Tokens = Arc::default();
    let splp = serve(Arc::new({
        let (credentials, tokens) = (Arc::clone(&credentials), Arc::clone(&tokens));
        move |method: &Method, path: &str, headers: &HeaderMap, body: Bytes| {
            splp_answer(&credentials, &tokens, method, path, headers, &body)
        }
    }))
    .await
    .map_err(|e| format!("starting the SPLP double: {e}"))?;
    let dukcapil = serve(Arc::new({
        let credentials = Arc::clone(&credentials);
        move |method: &Method, path: &str, _: &HeaderMap, body: Bytes| {
            dukcapil_answer(&credentials, method, path, &body)
        }
    }))
    .await
    .map_err(|e| format!("starting the Dukcapil double: {e}"))?;
    write_documents(store, splp, dukcapil, credentials.dukcapil_ip)
}

/// Writes `value` to `dir/name` with mode 0600 (the secrets store refuses anything more open).
fn write_secret(dir: &Path, name: &str, value: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_documents(store: &DirStore, splp: SocketAddr, dukcapil: SocketAddr, ip_user: &str) -> Result<(), String> {
    // The baseline's operations and security approvers (operator ids, as the baseline services name them).
    let approvals = "[approvals.operations]\nby = \"rudi-aptika\"\nat = \"2026-01-01T00:00:00+07:00\"\nreason = \"Layanan nasional demo.\"\n\n[approvals.security]\nby = \"dewi-persandian\"\nat = \"2026-01-01T00:00:00+07:00\"\nreason = \"Kredensial nasional dipegang gateway, bukan aplikasi OPD.\"\n";
    let splp_service = format!(
        "# Written by `penghubung demo`: Kemendagri's region reference through the national SPLP (double).\n\
         opd = \"diskominfo\"\nname = \"splp-wilayah\"\nversion = 1\ntitle = \"Referensi wilayah (SPLP)\"\n\
         classification = \"terbuka\"\nstatus = \"active\"\n\n{approvals}\n[upstream]\nendpoints = [\"http://{splp}\"]\n\n\
         [adapter]\nname = \"splp\"\n\n[adapter.settings]\ntoken_url = \"http://{splp}/oauth2/token\"\n\
         consumer_key = {{ secret = \"demo-splp-consumer-key\" }}\nconsumer_secret = {{ secret = \"demo-splp-consumer-secret\" }}\n\
         tenant = \"{SPLP_TENANT}\"\ncontext = \"{SPLP_CONTEXT}\"\nversion = \"{SPLP_VERSION}\"\n\n\
         [[operations]]\nid = \"ambil-kabupaten\"\nmethod = \"GET\"\npath = \"/kabupaten/{{kode}}\"\n"
    );
    let dukcapil_service = format!(
        "# Written by `penghubung demo`: Dukcapil's NIK service (double); the operator credentials are the gateway's.\n\
         opd = \"disdukcapil\"\nname = \"dukcapil-pusat\"\nversion = 1\ntitle = \"Data penduduk Dukcapil (pusat)\"\n\
         classification = \"rahasia\"\nstatus = \"active\"\naudit = \"sync\"\n\n{approvals}\n[upstream]\n\
         endpoints = [\"http://{dukcapil}/dukcapil/get_json/LAMTIM\"]\n\n[adapter]\nname = \"dukcapil\"\nmax_body = \"16KiB\"\n\n\
         [adapter.settings]\nuser_id = {{ secret = \"demo-dukcapil-user-id\" }}\npassword = {{ secret = \"demo-dukcapil-password\" }}\n\
         ip_user = \"{ip_user}\"\n\n[[operations]]\nid = \"cek-nik\"\nmethod = \"POST\"\npath = \"/CALL_NIK\"\n\
         request.schema = \"nasional/dukcapil-call-nik-permintaan.schema.json\"\n\
         responses.\"200\".schema = \"nasional/dukcapil-call-nik.schema.json\"\nresponses.\"404\".schema = \"pesan.schema.json\"\n"
    );
    let grant = |id: &str, service: &str, operation: &str| {
        format!(
            "# Written by `penghubung demo`.\nid = \"{id}\"\nclient = \"dinkes/simpus\"\nservice = \"{service}\"\n\
             operations = [\"{operation}\"]\ntier = \"silver\"\n"
        )
    };
    let documents = [
        ("schemas/nasional/dukcapil-call-nik.schema.json", DUKCAPIL_RESPONSE_SCHEMA.to_string()),
        ("schemas/nasional/dukcapil-call-nik-permintaan.schema.json", DUKCAPIL_REQUEST_SCHEMA.to_string()),
        ("services/diskominfo/splp-wilayah.toml", splp_service),
        ("services/disdukcapil/dukcapil-pusat.toml", dukcapil_service),
        ("grants/simpus-splp-wilayah.toml", grant("simpus-splp-wilayah", "diskominfo/splp-wilayah/v1", "*")),
        (
            "grants/simpus-dukcapil-pusat.toml",
            grant("simpus-dukcapil-pusat", "disdukcapil/dukcapil-pusat/v1", "cek-nik"),
        ),
    ];
    for (key, text) in documents {
        store.put(key, &text).map_err(|e| format!("{key}: {e}"))?;
    }
    Ok(())
}

/// Issued tokens and when each expires.
type Tokens = Arc<Mutex<HashMap<String, Instant>>>;

type Handler = Arc<dyn Fn(&Method, &str, &HeaderMap, Bytes) -> (StatusCode, String) + Send + Sync>;

/// Serves `handler` on a loopback port.
async fn serve(handler: Handler) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = Arc::clone(&handler);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move {
                    let (parts, body) = req.into_parts();
                    let body = Limited::new(body, 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let (status, json) = handler(&parts.method, parts.uri.path(), &parts.headers, body);
                    let mut response = Response::new(Full::new(Bytes::from(json)));
                    *response.status_mut() = status;
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(response)
                }
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

fn json(status: StatusCode, value: serde_json::Value) -> (StatusCode, String) {
    (status, value.to_string())
}

/// The SPLP double: `POST /oauth2/token` (client credentials, consumer key and secret by HTTP Basic) and the
/// region reference under `/t/{tenant}/{context}/{version}/kabupaten/{kode}`, which requires a live token.
fn splp_answer(
    credentials: &Credentials,
    tokens: &Mutex<HashMap<String, Instant>>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    let header = |name: http::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if path == "/oauth2/token" {
        let expected =
            format!("Basic {}", base64(format!("{}:{}", credentials.splp_key, credentials.splp_secret).as_bytes()));
        let form = String::from_utf8_lossy(body);
        if method != Method::POST || !form.split('&').any(|p| p == "grant_type=client_credentials") {
            return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": "unsupported_grant_type"}));
        }
        if header(http::header::AUTHORIZATION) != expected {
            return json(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "invalid_client"}));
        }
        let token = format!("{:032x}", fastrand::u128(..));
        let mut issued = tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        issued.retain(|_, expires| *expires > now);
        issued.insert(token.clone(), now + TOKEN_LIFETIME);
        return json(
            StatusCode::OK,
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME.as_secs(), "scope": "default"}),
        );
    }
    let live = header(http::header::AUTHORIZATION).strip_prefix("Bearer ").is_some_and(|token| {
        tokens.lock().unwrap_or_else(|e| e.into_inner()).get(token).is_some_and(|expires| *expires > Instant::now())
    });
    if !live {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"code": "900901", "message": "Invalid Credentials", "description": "Invalid Credentials. Make sure you have given the correct access token"}),
        );
    }
    let prefix = format!("/t/{SPLP_TENANT}/{SPLP_CONTEXT}/{SPLP_VERSION}/kabupaten/");
    match path.strip_prefix(&prefix) {
        Some("18.07") if method == Method::GET => json(
            StatusCode::OK,
            serde_json::json!({"kode": "18.07", "nama": "KAB. LAMPUNG TIMUR", "ibukota": "SUKADANA", "provinsi": "LAMPUNG",
                "jumlah_kecamatan": 24, "sumber": "Kemendagri (double)"}),
        ),
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({"pesan": "wilayah tidak ditemukan"})),
    }
}

/// The Dukcapil double: `POST …/CALL_NIK` with `NIK` and the operator's `user_id`, `password`, `IP_USER`.
fn dukcapil_answer(credentials: &Credentials, method: &Method, path: &str, body: &[u8]) -> (StatusCode, String) {
    let page = |content: serde_json::Value| {
        json(
            StatusCode::OK,
            serde_json::json!({"content": [content], "lastPage": true, "numberOfElements": 1, "sort": null,
                "totalElements": 1, "firstPage": true, "number": 0, "size": 1}),
        )
    };
    if method != Method::POST || !path.ends_with("/CALL_NIK") {
        return json(StatusCode::NOT_FOUND, serde_json::json!({"message": "layanan tidak ada"}));
    }
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |name: &str| request.get(name).and_then(|v| v.as_str()).unwrap_or("");
    if text("user_id") != credentials.dukcapil_user
        || text("password") != credentials.dukcapil_password
        || text("IP_USER") != credentials.dukcapil_ip
    {
        return page(serde_json::json!({"RESPON": "User ID atau Password salah"}));
    }
    match text("NIK") {
        "1807015508900002" => page(serde_json::json!({"NIK": "1807015508900002", "NO_KK": "1807010101200001",
            "NAMA_LGKP": "SITI AMINAH", "TMPT_LHR": "SUKADANA", "TGL_LHR": "15-08-1990", "JENIS_KLMIN": "Perempuan",
            "AGAMA": "ISLAM", "STATUS_KAWIN": "KAWIN", "JENIS_PKRJN": "WIRASWASTA", "NAMA_LGKP_IBU": "FATIMAH",
            "ALAMAT": "DESA SUKADANA", "NO_RT": "2", "NO_RW": "1", "KEL_NAME": "SUKADANA", "KEC_NAME": "SUKADANA",
            "KAB_NAME": "LAMPUNG TIMUR", "PROP_NAME": "LAMPUNG"})),
        _ => page(serde_json::json!({"RESPON": "Data Tidak Ditemukan"})),
    }
}

/// Standard Base64 with padding (the SPLP double's check of HTTP Basic).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() { char::from(ALPHABET[((n >> shift) & 63) as usize]) } else { '=' });
        }
    }
    out
}
