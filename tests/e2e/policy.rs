//! Access policy end to end, over mTLS with the shipped baseline policy set: the decision matrix (every
//! client × operation × purpose, checked against a reference model written here and against `policy explain`),
//! field redaction, grant validity windows, the service lifecycle driven by the security team's CLI, and policy
//! changes by file edit taking effect without a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use std::time::Duration;

use http::{Method, Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use penghubung::explain::{explain, OperationSpec};
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki};
use penghubung_tests::operators::{OperatorCli, ADMIN_SECTION};
use penghubung_tests::{docs, empty, full, run_cli, send, write_config, Collected, TestBody, TestGateway, Upstream};
use serde_json::{json, Value};

type HttpsClient = Client<HttpsConnector<HttpConnector>, TestBody>;

const BASELINE_CLIENTS: [&str; 5] =
    ["dinkes/simpus", "dinsos/sikasos", "bappeda/sipd", "diskominfo/dashboard", "disdukcapil/siak"];

/// The baseline documents, every upstream endpoint pointed at `upstream`.
fn baseline_documents(upstream: &str) -> Vec<(String, String)> {
    docs::baseline(upstream)
}

/// A resident record with fields of every classification, and visit lists with doctors' notes.
async fn data_upstream() -> Upstream {
    Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let path = req.uri().path().to_string();
        let body = if path.starts_with("/penduduk/") {
            json!({"nik": "1807015508900002", "nama": "SITI AMINAH", "agama": "ISLAM", "nama_ibu_kandung": "FATIMAH",
                   "disabilitas": "TIDAK ADA", "keluarga": [
                       {"nik": "1807011203850001", "nama": "BUDI", "hubungan": "SUAMI", "status_perkawinan": "KAWIN"},
                       {"nik": "1807014407150003", "nama": "PUTRI", "hubungan": "ANAK", "status_perkawinan": "BELUM KAWIN"}]})
            .to_string()
        } else if path.ends_with("/kunjungan") {
            json!({"pasien": "RM-1", "kunjungan": [{"tanggal": "2026-10-02", "poli": "Umum", "catatan_dokter": "ISPA"}]})
                .to_string()
        } else if path == "/teks" {
            return Response::builder().header("content-type", "text/plain").body(full("bukan json")).unwrap();
        } else {
            // pretty-printed on purpose: untouched responses must arrive byte for byte
            "{\n  \"ok\": true\n}".to_string()
        };
        Response::builder().header("content-type", "application/json").body(full(body)).unwrap()
    })
    .await
}

/// The baseline behind an mTLS gateway, with a client certificate for every baseline client.
struct Baseline {
    gw: TestGateway,
    upstream: Upstream,
    clients: HashMap<&'static str, HttpsClient>,
    pki: Pki,
}

/// Starts the baseline plus `extra_documents`.
async fn start_baseline(extra_documents: &[(String, String)]) -> Baseline {
    start_baseline_behind(data_upstream().await, extra_documents).await
}

/// Starts the baseline plus `extra_documents` in front of `upstream`.
async fn start_baseline_behind(upstream: Upstream, extra_documents: &[(String, String)]) -> Baseline {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_trust_domain(dir.path(), penghubung::ca::DEVELOPMENT_TRUST_DOMAIN);
    let mut documents = baseline_documents(&upstream.url());
    // `{UP}` in extra documents stands for the upstream's URL
    documents.extend(extra_documents.iter().map(|(k, t)| (k.clone(), t.replace("{UP}", &upstream.url()))));
    let config = write_mtls_setup(dir.path(), &documents, &pki, ADMIN_SECTION);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let addr = gateway.local_addrs()[0];
    let mut clients = HashMap::new();
    for id in BASELINE_CLIENTS {
        let (opd, app) = id.split_once('/').unwrap();
        let issued = pki.client(opd, app);
        clients.insert(id, https_client(client_config(&pki.ca_pem(), Some(&issued))));
    }
    Baseline {
        gw: TestGateway { gateway: Some(gateway), dir, url: format!("https://{addr}"), addr },
        upstream,
        clients,
        pki,
    }
}

impl Baseline {
    async fn call(&self, client: &str, method: &Method, path: &str, purpose: Option<&str>) -> Collected {
        let mut request = Request::builder().method(method.clone()).uri(format!("{}{path}", self.gw.url));
        if let Some(p) = purpose {
            request = request.header("x-penghubung-purpose", p);
        }
        let body = if *method == Method::POST { full(r#"{"nik":"1807015508900002","nama":"SITI"}"#) } else { empty() };
        let request = request.header("content-type", "application/json").body(body).unwrap();
        send(&self.clients[client], request).await
    }

    fn config(&self) -> PathBuf {
        self.gw.dir.path().join("penghubung.toml")
    }
}

/// `"allow"` for a forwarded request, else the problem code.
fn outcome(r: &Collected) -> String {
    if r.status == 200 {
        "allow".into()
    } else {
        r.code()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reference model: the policy rules of the issue, written independently of the gateway's implementation.

struct Model {
    clients: BTreeMap<String, Value>,
    services: Vec<Value>,
    grants: Vec<Value>,
}

fn toml_value(text: &str) -> Value {
    serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap()
}

impl Model {
    fn load() -> Model {
        let documents = baseline_documents("http://127.0.0.1:1");
        let of = |prefix: &'static str| {
            documents.iter().filter(move |(k, _)| k.starts_with(prefix)).map(|(_, t)| toml_value(t)).collect::<Vec<_>>()
        };
        Model {
            clients: of("clients/").into_iter().map(|c| (c["id"].as_str().unwrap().to_string(), c)).collect(),
            services: of("services/"),
            grants: of("grants/"), // sorted by file name, like the store lists them
        }
    }

    fn level(name: &str) -> usize {
        ["terbuka", "terbatas", "rahasia", "sangat_rahasia"].iter().position(|l| *l == name).unwrap()
    }

    fn expected(&self, client: &str, service: &Value, op: &Value, purpose: Option<&str>, now: i64) -> &'static str {
        let key = format!(
            "{}/{}/v{}",
            service["opd"].as_str().unwrap(),
            service["name"].as_str().unwrap(),
            service["version"]
        );
        let client = &self.clients[client];
        let grants: Vec<&Value> =
            self.grants.iter().filter(|g| g["client"] == client["id"] && g["service"] == key.as_str()).collect();
        if grants.is_empty() {
            return "policy.no_grant";
        }
        match service["status"].as_str().unwrap_or("draft") {
            "active" => {}
            "testing" if client["test_client"].as_bool().unwrap_or(false) => {}
            "testing" => return "policy.service_testing",
            _ => return "policy.service_not_active",
        }
        let time = |v: &Value| v.as_str().map(|t| penghubung::policy::grants::parse_time(t).unwrap());
        let well_formed = |p: &str| {
            !p.is_empty()
                && p.len() < 64
                && !p.starts_with('-')
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let mut best: (u8, &'static str) = (0, "");
        let mut chosen = false;
        for g in grants {
            let ops: Vec<&str> = g["operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
            let verdict = if !ops.contains(&"*") && !ops.contains(&op["id"].as_str().unwrap()) {
                (1, "policy.operation_not_granted")
            } else if time(&g["not_before"]).is_some_and(|t| now < t) {
                (2, "policy.grant_not_yet_valid")
            } else if time(&g["not_after"]).is_some_and(|t| now > t) {
                (2, "policy.grant_expired")
            } else {
                let purposes: Vec<&str> = g["purposes"]
                    .as_array()
                    .map(|a| a.iter().map(|p| p.as_str().unwrap()).collect())
                    .unwrap_or_default();
                match purpose {
                    Some(p) if !well_formed(p) => (3, "policy.purpose"),
                    _ if purposes.is_empty() => (4, ""),
                    Some(p) if purposes.contains(&p) => (4, ""),
                    _ => (3, "policy.purpose"),
                }
            };
            if verdict.0 == 4 {
                chosen = true;
                break;
            }
            if verdict.0 > best.0 {
                best = verdict;
            }
        }
        if !chosen {
            return best.1;
        }
        let required = Self::level(service["classification"].as_str().unwrap())
            .max(op["classification"].as_str().map_or(0, Self::level));
        if Self::level(client["clearance"].as_str().unwrap()) < required {
            return "policy.clearance";
        }
        "allow"
    }
}

fn concrete(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { "1807015508900002" } else { s }).collect::<Vec<_>>().join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_matrix_over_the_baseline_agrees_with_the_model_and_with_policy_explain() {
    let b = start_baseline(&[]).await;
    let model = Model::load();
    let snapshot = b.gw.gateway().snapshot();
    let purposes = [
        None,
        Some("penyaluran-bansos"),
        Some("pemutakhiran-dtks"),
        Some("uji-coba"),
        Some("perencanaan-pembangunan"),
        Some("Bukan Slug"),
    ];
    let mut cases = 0;
    let mut allowed = 0;
    let mut seen_codes: BTreeMap<String, usize> = BTreeMap::new();
    for client in BASELINE_CLIENTS {
        for service in &model.services {
            let key = format!(
                "{}/{}/v{}",
                service["opd"].as_str().unwrap(),
                service["name"].as_str().unwrap(),
                service["version"]
            );
            for op in service["operations"].as_array().unwrap() {
                let method = Method::from_bytes(op["method"].as_str().unwrap().as_bytes()).unwrap();
                let rest = concrete(op["path"].as_str().unwrap());
                for purpose in purposes {
                    let now = penghubung::policy::unix_now();
                    let expected = model.expected(client, service, op, purpose, now);
                    let r = b.call(client, &method, &format!("/{key}{rest}"), purpose).await;
                    let got = outcome(&r);
                    let case = format!("{client} {method} /{key}{rest} purpose={purpose:?}");
                    assert_eq!(got, expected, "{case}: {}", r.text());
                    if got != "allow" {
                        assert_eq!(r.status, 403, "{case}");
                        assert_eq!(r.headers["content-type"], "application/problem+json");
                        assert!(!r.json()["detail"].as_str().unwrap().is_empty());
                    }
                    let spec = OperationSpec::Request { method: method.clone(), path: rest.clone() };
                    let explained = explain(&snapshot, client, &key, &spec, purpose, now);
                    assert_eq!(explained.code.unwrap_or("allow"), expected, "policy explain disagrees on {case}");
                    cases += 1;
                    allowed += usize::from(expected == "allow");
                    *seen_codes.entry(expected.to_string()).or_default() += 1;
                }
            }
        }
    }
    assert!(cases >= 50, "{cases}");
    for code in [
        "allow",
        "policy.no_grant",
        "policy.service_testing",
        "policy.service_not_active",
        "policy.operation_not_granted",
        "policy.grant_expired",
        "policy.grant_not_yet_valid",
        "policy.purpose",
        "policy.clearance",
    ] {
        assert!(seen_codes.contains_key(code), "the matrix must exercise {code}: {seen_codes:?}");
    }
    assert_eq!(b.upstream.hits(), allowed, "a denied request never reaches the upstream");
    // the purpose reaches the upstream as the gateway validated it
    let seen = b.upstream.seen();
    assert!(seen.iter().any(|s| s.headers.get("x-penghubung-purpose").is_some_and(|p| p == "penyaluran-bansos")));
    assert!(seen.iter().all(|s| s.headers.get("x-penghubung-purpose").is_none_or(|p| p != "Bukan Slug")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_picked_decisions_have_their_exact_codes() {
    let b = start_baseline(&[]).await;
    let cases: &[(&str, Method, &str, Option<&str>, &str)] = &[
        ("dinsos/sikasos", Method::POST, "/disdukcapil/kependudukan/v1/verifikasi", Some("penyaluran-bansos"), "allow"),
        ("dinsos/sikasos", Method::POST, "/disdukcapil/kependudukan/v1/verifikasi", None, "policy.purpose"),
        (
            "dinsos/sikasos",
            Method::POST,
            "/disdukcapil/kependudukan/v1/verifikasi",
            Some("lain-lain"),
            "policy.purpose",
        ),
        // the 2025 grant covered this operation but has expired: that is the useful answer
        (
            "dinsos/sikasos",
            Method::GET,
            "/disdukcapil/kependudukan/v1/penduduk/1",
            Some("pemutakhiran-dtks"),
            "policy.grant_expired",
        ),
        (
            "bappeda/sipd",
            Method::POST,
            "/disdukcapil/kependudukan/v1/verifikasi",
            Some("perencanaan-pembangunan"),
            "policy.grant_not_yet_valid",
        ),
        ("dinkes/simpus", Method::GET, "/dinkes/rekam-medis/v1/pasien/1/kesehatan-jiwa", None, "policy.clearance"),
        ("dinkes/simpus", Method::GET, "/dinkes/rekam-medis/v1/pasien/1", Some("pelayanan-kesehatan"), "allow"),
        (
            "dinsos/sikasos",
            Method::GET,
            "/dinsos/bansos/v1/penerima/1",
            Some("penyaluran-bansos"),
            "policy.service_testing",
        ),
        ("diskominfo/dashboard", Method::GET, "/dinsos/bansos/v1/penerima/1", Some("uji-coba"), "allow"),
        ("disdukcapil/siak", Method::GET, "/disdukcapil/akta/v1/akta/1", None, "policy.service_not_active"),
        ("bappeda/sipd", Method::GET, "/dinkes/rekam-medis/v1/pasien/1", None, "policy.no_grant"),
        // no grant: the caller learns nothing about the operations either
        ("bappeda/sipd", Method::GET, "/dinkes/rekam-medis/v1/tidak/ada", None, "policy.no_grant"),
        ("dinkes/simpus", Method::GET, "/dinkes/rekam-medis/v1/tidak/ada", None, "route.not_found"),
        ("dinkes/simpus", Method::DELETE, "/dinkes/rekam-medis/v1/pasien/1", None, "route.method_not_allowed"),
        ("dinkes/simpus", Method::GET, "/dinkes/tidak-ada/v1/x", None, "route.not_found"),
    ];
    for (client, method, path, purpose, expected) in cases {
        let r = b.call(client, method, path, *purpose).await;
        assert_eq!(outcome(&r), *expected, "{client} {method} {path} {purpose:?}: {}", r.text());
    }
    // the reason helps without naming anybody else's grants
    let r = b.call("bappeda/sipd", &Method::GET, "/dinkes/rekam-medis/v1/pasien/1", None).await;
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("bappeda/sipd") && !detail.contains("simpus"), "{detail}");
    let r = b.call("dinsos/sikasos", &Method::POST, "/disdukcapil/kependudukan/v1/verifikasi", None).await;
    assert!(r.json()["detail"].as_str().unwrap().contains("penyaluran-bansos"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_above_the_clearance_are_withheld_and_other_responses_stream_untouched() {
    let extra = [
        // an operation whose response contract marks fields, answered by the upstream in plain text
        docs::grant("simpus-teks", "dinkes/simpus", "bappeda/teks/v1", &["*"]),
        (
            "services/bappeda/teks.toml".to_string(),
            format!(
                "opd = \"bappeda\"\nname = \"teks\"\nversion = 1\ntitle = \"t\"\nclassification = \"terbuka\"\nstatus = \"active\"\n{}\n[upstream]\nendpoints = [\"{{UP}}\"]\n\n[[operations]]\nid = \"teks\"\nmethod = \"GET\"\npath = \"/teks\"\nresponses.\"200\".schema = \"disdukcapil/penduduk.schema.json\"\n",
                docs::APPROVALS
            ),
        ),
    ];
    let b = start_baseline(&extra).await;

    // SIMPUS (rahasia): the sangat_rahasia fields are withheld, nested in arrays too
    let r = b.call("dinkes/simpus", &Method::GET, "/disdukcapil/kependudukan/v1/penduduk/1807015508900002", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["x-penghubung-redacted"], "/disabilitas, /keluarga/*/status_perkawinan, /nama_ibu_kandung");
    let body = r.json();
    assert_eq!(body["nama"], "SITI AMINAH");
    assert_eq!(body["agama"], "ISLAM", "rahasia stays for a rahasia client");
    assert!(body.get("nama_ibu_kandung").is_none() && body.get("disabilitas").is_none(), "{body}");
    assert_eq!(body["keluarga"][1], json!({"nik": "1807014407150003", "nama": "PUTRI", "hubungan": "ANAK"}));
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    let asked = b.upstream.seen().last().unwrap().headers.clone();
    assert_eq!(asked["accept-encoding"], "identity", "a filtered response is asked for uncompressed");

    let r = b.call("dinkes/simpus", &Method::GET, "/dinkes/rekam-medis/v1/pasien/RM-1/kunjungan", None).await;
    assert_eq!(r.headers["x-penghubung-redacted"], "/kunjungan/*/catatan_dokter");
    assert_eq!(r.json()["kunjungan"][0], json!({"tanggal": "2026-10-02", "poli": "Umum"}));

    // SIAK (sangat_rahasia) sees everything, streamed as the upstream sent it
    let r =
        b.call("disdukcapil/siak", &Method::GET, "/disdukcapil/kependudukan/v1/penduduk/1807015508900002", None).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-penghubung-redacted").is_none());
    assert_eq!(r.json()["nama_ibu_kandung"], "FATIMAH");
    // an operation without a marked contract is not touched at all (byte for byte)
    let r = b.call("dinkes/simpus", &Method::GET, "/dinkes/rekam-medis/v1/pasien/RM-1", None).await;
    assert_eq!(r.text(), "{\n  \"ok\": true\n}");
    assert!(r.headers.get("x-penghubung-redacted").is_none());

    // a response that cannot be filtered is withheld (fail closed), never passed on
    let r = b.call("dinkes/simpus", &Method::GET, "/bappeda/teks/v1/teks", None).await;
    assert_eq!((r.status.as_u16(), r.code()), (502, "policy.redaction_failed".to_string()), "{}", r.text());
    assert!(!r.text().contains("bukan json"));
}

/// The resident record of `data_upstream`, with fields of every classification.
fn resident_record() -> String {
    json!({"nik": "1807015508900002", "nama": "SITI AMINAH", "agama": "ISLAM", "nama_ibu_kandung": "FATIMAH",
           "disabilitas": "TIDAK ADA", "keluarga": [
               {"nik": "1807011203850001", "nama": "BUDI", "hubungan": "SUAMI", "status_perkawinan": "KAWIN"}]})
    .to_string()
}

/// A backend that honours `Range` and conditional requests as a file server would, and answers in every other
/// form on demand (the last path segment of `/penduduk/{mode}` names it).
async fn ranged_upstream() -> Upstream {
    Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let record = resident_record();
        let mode = req.uri().path().rsplit('/').next().unwrap_or("").to_string();
        let json = |status: u16, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("etag", "\"v1\"")
                .header("accept-ranges", "bytes")
                .body(full(body))
                .unwrap()
        };
        let partial = |from: usize, to: usize| {
            let to = to.min(record.len() - 1);
            Response::builder()
                .status(206)
                .header("content-type", "application/json")
                .header("content-range", format!("bytes {from}-{to}/{}", record.len()))
                .body(full(record[from..=to].to_string()))
                .unwrap()
        };
        if let Some(range) = req.headers().get("range").and_then(|v| v.to_str().ok()) {
            let (from, to) = range.trim_start_matches("bytes=").split_once('-').unwrap_or(("0", ""));
            return partial(from.parse().unwrap_or(0), to.parse().unwrap_or(usize::MAX));
        }
        if req.headers().contains_key("if-none-match") || req.headers().contains_key("if-modified-since") {
            return Response::builder().status(304).header("etag", "\"v1\"").body(empty()).unwrap();
        }
        match mode.as_str() {
            "selalu-206" => partial(0, record.len() / 2),
            "gagal-500" => json(500, record),
            "tidak-ada" => json(404, record),
            "tidak-ditemukan" => json(404, r#"{"pesan":"NIK tidak ditemukan"}"#.to_string()),
            "kosong-204" => Response::builder().status(204).body(empty()).unwrap(),
            "terkompresi" => Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body(full(record))
                .unwrap(),
            "teks" => Response::builder().header("content-type", "text/plain").body(full(record)).unwrap(),
            "ndjson" => Response::builder().header("content-type", "application/x-ndjson").body(full(record)).unwrap(),
            _ => json(200, record),
        }
    })
    .await
}

/// The same client over HTTP/1.1 only (the gateway's own HTTP/1.1 server and hyper's) and over HTTP/2.
fn clients_of_both_versions(b: &Baseline, id: &str) -> Vec<(&'static str, HttpsClient)> {
    let (opd, app) = id.split_once('/').unwrap();
    let pki = &b.pki;
    let issued = pki.client(opd, app);
    let h1 = client_config(&pki.ca_pem(), Some(&issued));
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(h1).https_only().enable_http1().build();
    let h1 = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let h2 = client_config(&pki.ca_pem(), Some(&issued));
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(h2).https_only().enable_http2().build();
    let h2 = Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build(connector);
    vec![("HTTP/1.1", h1), ("HTTP/2", h2)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_response_releases_a_field_above_the_clearance() {
    let b = start_baseline_behind(ranged_upstream().await, &[]).await;
    let secret = ["FATIMAH", "TIDAK ADA", "KAWIN"];
    let base = "/disdukcapil/kependudukan/v1/penduduk";
    for (version, client) in clients_of_both_versions(&b, "dinkes/simpus") {
        let call = |method: Method, mode: &str, headers: &[(&str, &str)]| {
            let mut request = Request::builder().method(method).uri(format!("{}{base}/{mode}", b.gw.url));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let request = request.body(empty()).unwrap();
            let client = client.clone();
            async move { send(&client, request).await }
        };
        let leaks = |r: &Collected| secret.iter().any(|s| r.text().contains(s));
        // The caller's range and conditional headers never reach the backend: it answers the whole record, which
        // is filtered.
        let ranges: [&[(&str, &str)]; 7] = [
            &[("range", "bytes=0-60")],
            &[("range", "bytes=60-")],
            &[("range", "bytes=0-10, 40-200")],
            &[("range", "bytes=0-60"), ("if-range", "\"v1\"")],
            &[("if-none-match", "\"v1\"")],
            &[("if-none-match", "*")],
            &[("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")],
        ];
        for headers in ranges {
            let r = call(Method::GET, "1807015508900002", headers).await;
            assert_eq!(r.status, 200, "{version} {headers:?}: {}", r.text());
            assert!(!leaks(&r), "{version} {headers:?} leaked: {}", r.text());
            assert_eq!(
                r.headers["x-penghubung-redacted"],
                "/disabilitas, /keluarga/*/status_perkawinan, /nama_ibu_kandung"
            );
            assert!(r.headers.get("accept-ranges").is_none() && r.headers.get("etag").is_none(), "{version}");
            let asked = b.upstream.seen().last().unwrap().headers.clone();
            for name in ["range", "if-range", "if-none-match", "if-modified-since"] {
                assert!(asked.get(name).is_none(), "{version}: {name} reached the backend");
            }
        }
        // Whatever the backend answers that cannot be filtered is withheld.
        for mode in ["selalu-206", "gagal-500", "tidak-ada", "terkompresi", "teks", "ndjson"] {
            let r = call(Method::GET, mode, &[]).await;
            assert_eq!((r.status.as_u16(), r.code()), (502, "policy.redaction_failed".into()), "{version} {mode}");
            assert!(!leaks(&r), "{version} {mode} leaked: {}", r.text());
        }
        // An answer that matches the unmarked schema declared for its status passes.
        let r = call(Method::GET, "tidak-ditemukan", &[]).await;
        assert_eq!((r.status.as_u16(), r.text()), (404, r#"{"pesan":"NIK tidak ditemukan"}"#.to_string()), "{version}");
        // Forms without a body pass without one.
        let r = call(Method::GET, "kosong-204", &[]).await;
        assert_eq!((r.status.as_u16(), r.body.len()), (204, 0), "{version}");
        let r = call(Method::HEAD, "1807015508900002", &[]).await;
        assert_eq!((r.status.as_u16(), r.body.len()), (200, 0), "{version} HEAD");
        assert!(r.headers.get("etag").is_none(), "{version} HEAD");
        // A client cleared for every field gets ranges as the backend serves them.
        let siak = &b.clients["disdukcapil/siak"];
        let request = Request::get(format!("{}{base}/1807015508900002", b.gw.url))
            .header("range", "bytes=0-9")
            .body(empty())
            .unwrap();
        let r = send(siak, request).await;
        assert_eq!((r.status.as_u16(), r.body.len()), (206, 10), "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_windows_open_and_close_on_time() {
    let up = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let spiffe = format!("spiffe://{}/opd/dinkes/app/simpus", penghubung_tests::mtls::TRUST_DOMAIN);
    let at = |offset: i64| {
        time::OffsetDateTime::from_unix_timestamp(penghubung::policy::unix_now() + offset)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let grant = |id: &str, service: &str, window: &str| {
        let (key, text) = docs::grant(id, "dinkes/simpus", service, &["*"]);
        (key, format!("{text}{window}"))
    };
    let documents = [
        docs::opd("dinkes"),
        docs::service("dinkes", "lama", &[up.url()], "", ""),
        docs::service("dinkes", "baru", &[up.url()], "", ""),
        docs::client("dinkes", "simpus", &spiffe, true),
        grant("berakhir", "dinkes/lama/v1", &format!("not_after = \"{}\"\n", at(2))),
        grant("mulai", "dinkes/baru/v1", &format!("not_before = \"{}\"\n", at(2))),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let url = format!("https://{}", gateway.local_addrs()[0]);
    let client = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinkes", "simpus"))));
    let get = |path: &str| send(&client, Request::get(format!("{url}{path}")).body(empty()).unwrap());
    assert_eq!(outcome(&get("/dinkes/lama/v1/x").await), "allow");
    assert_eq!(outcome(&get("/dinkes/baru/v1/x").await), "policy.grant_not_yet_valid");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(outcome(&get("/dinkes/lama/v1/x").await), "policy.grant_expired");
    assert_eq!(outcome(&get("/dinkes/baru/v1/x").await), "allow");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_needs_two_approvals_by_different_people_and_suspension_bites_on_the_next_request() {
    let up = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let spiffe =
        |opd: &str, app: &str| format!("spiffe://{}/opd/{opd}/app/{app}", penghubung_tests::mtls::TRUST_DOMAIN);
    let (service_key, service_text) = docs::service("dinsos", "bansos", &[up.url()], "", "");
    let draft = service_text.replace("status = \"active\"", "status = \"draft\"").replace(docs::APPROVALS, "");
    let mut tester = docs::client("diskominfo", "dashboard", &spiffe("diskominfo", "dashboard"), true);
    tester.1 = tester.1.replace("enabled = true", "enabled = true\ntest_client = true");
    let documents = [
        docs::opd("dinsos"),
        docs::opd("diskominfo"),
        (service_key, draft),
        docs::client("dinsos", "sikasos", &spiffe("dinsos", "sikasos"), true),
        tester,
        docs::grant("sikasos-bansos", "dinsos/sikasos", "dinsos/bansos/v1", &["*"]),
        docs::grant("dashboard-bansos", "diskominfo/dashboard", "dinsos/bansos/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, ADMIN_SECTION);
    let running = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let gateway = &running;
    let operators = OperatorCli::start(dir.path(), &pki, &config, gateway).await;
    let url = format!("https://{}", gateway.local_addrs()[0]);
    let sikasos = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinsos", "sikasos"))));
    let dashboard = https_client(client_config(&pki.ca_pem(), Some(&pki.client("diskominfo", "dashboard"))));
    let both = || async {
        let a = send(&sikasos, Request::get(format!("{url}/dinsos/bansos/v1/x")).body(empty()).unwrap()).await;
        let b = send(&dashboard, Request::get(format!("{url}/dinsos/bansos/v1/x")).body(empty()).unwrap()).await;
        (outcome(&a), outcome(&b))
    };
    // Each change goes through the admin API, which reloads the gateway before it answers.
    let step = |operator: &str, args: &[&str]| operators.run(operator, args);

    let draft_state = ("policy.service_not_active".to_string(), "policy.service_not_active".to_string());
    assert_eq!(both().await, draft_state);
    let s = "dinsos/bansos/v1";
    let (code, text) = step("admin-uji", &["service", "submit", "--service", s]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(both().await, ("policy.service_testing".to_string(), "allow".to_string()), "testing: test clients only");

    let (code, text) =
        step("operasi-uji", &["service", "approve", "--service", s, "--operations", "--reason", "uji fungsi lulus"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(both().await.0, "policy.service_testing", "one approval is not enough");
    let (code, text) =
        step("operasi-uji", &["service", "approve", "--service", s, "--security", "--reason", "saya juga"]);
    assert_eq!(code, 1, "the operations approver cannot give the security approval: {text}");
    assert!(text.contains("403") && text.contains("admin.forbidden"), "{text}");
    let (code, text) =
        step("keamanan-uji", &["service", "approve", "--service", s, "--security", "--reason", "uji keamanan lulus"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("active"), "{text}");
    assert_eq!(both().await, ("allow".to_string(), "allow".to_string()));
    let stored = std::fs::read_to_string(dir.path().join("policies/services/dinsos/bansos.toml")).unwrap();
    assert!(stored.contains("[approvals.security]") && stored.contains("by = \"keamanan-uji\""), "{stored}");

    // suspension bites on the next request, on an already open keep-alive connection too
    let (code, text) = step("keamanan-uji", &["service", "suspend", "--service", s, "--reason", "insiden keamanan"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(both().await, draft_state);
    let (code, text) = step("keamanan-uji", &["service", "resume", "--service", s]);
    assert_ne!(code, 0, "resume takes a reason: {text}");
    let (code, text) = step("keamanan-uji", &["service", "resume", "--service", s, "--reason", "insiden selesai"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(both().await.0, "allow");
    let (code, text) = step("admin-uji", &["service", "retire", "--service", s, "--reason", "diganti v2"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(both().await, draft_state);
    let (code, text) = step("keamanan-uji", &["service", "resume", "--service", s, "--reason", "coba lagi"]);
    assert_eq!(code, 1, "a retired service stays retired: {text}");
    operators.shutdown().await;

    // a hand edit cannot skip the approvals: the reload is refused and the old state keeps serving
    let path = dir.path().join("policies/services/dinsos/bansos.toml");
    let (_, fresh) = docs::service("dinsos", "bansos", &[up.url()], "", "");
    std::fs::write(&path, fresh.replace(docs::APPROVALS, "")).unwrap();
    assert!(gateway.reload().is_err(), "active without approvals must not load");
    assert_eq!(both().await, draft_state, "the previous snapshot (retired) still serves");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_clearances_change_by_cli_or_file_edit_without_restart() {
    let b = start_baseline(&[]).await;
    let config = b.config();
    let operators = OperatorCli::start(b.gw.dir.path(), &b.pki, &config, b.gw.gateway()).await;
    let kesehatan_jiwa = "/dinkes/rekam-medis/v1/pasien/1/kesehatan-jiwa";
    assert_eq!(outcome(&b.call("dinkes/simpus", &Method::GET, kesehatan_jiwa, None).await), "policy.clearance");

    // raise the clearance: the next request passes
    let generation = b.gw.gateway().snapshot().generation;
    let (code, text) = operators.run(
        "dewi-persandian",
        &["client", "clearance", "--client", "dinkes/simpus", "--clearance", "sangat_rahasia", "--reason", "rujukan"],
    );
    assert_eq!(code, 0, "{text}");
    b.gw.wait_generation_above(generation).await;
    assert_eq!(outcome(&b.call("dinkes/simpus", &Method::GET, kesehatan_jiwa, None).await), "allow");
    let r = b.call("dinkes/simpus", &Method::GET, "/disdukcapil/kependudukan/v1/penduduk/1", None).await;
    assert!(r.headers.get("x-penghubung-redacted").is_none(), "nothing is withheld any more");

    // explain from the CLI agrees, as JSON and with its exit code
    let (code, text) = run_cli(
        &config,
        &[
            "policy",
            "explain",
            "--client",
            "bappeda/sipd",
            "--service",
            "dinkes/rekam-medis/v1",
            "--operation",
            "ambil-pasien",
            "--json",
        ],
    );
    assert_eq!(code, 1, "{text}");
    let explained: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(explained["code"], "policy.no_grant");

    // add a grant from the CLI
    let generation = b.gw.gateway().snapshot().generation;
    let (code, text) = operators.run(
        "dewi-persandian",
        &[
            "grant",
            "add",
            "--id",
            "sipd-rekam-medis",
            "--client",
            "bappeda/sipd",
            "--service",
            "dinkes/rekam-medis/v1",
            "--operation",
            "ambil-pasien",
            "--purpose",
            "perencanaan-pembangunan",
            "--tier",
            "bronze",
        ],
    );
    assert_eq!(code, 0, "{text}");
    b.gw.wait_generation_above(generation).await;
    let r =
        b.call("bappeda/sipd", &Method::GET, "/dinkes/rekam-medis/v1/pasien/1", Some("perencanaan-pembangunan")).await;
    assert_eq!(outcome(&r), "policy.clearance", "granted now, but sipd is cleared for terbuka only");
    let (code, text) = run_cli(
        &config,
        &[
            "policy",
            "explain",
            "--client",
            "bappeda/sipd",
            "--service",
            "dinkes/rekam-medis/v1",
            "--operation",
            "GET /pasien/1",
            "--purpose",
            "perencanaan-pembangunan",
        ],
    );
    assert_eq!(code, 1);
    assert!(text.contains("policy.clearance") && text.contains("sipd-rekam-medis"), "{text}");

    // a change that would break the store is refused and nothing is written
    let (code, text) = operators.run(
        "dewi-persandian",
        &[
            "grant",
            "add",
            "--id",
            "salah",
            "--client",
            "bappeda/sipd",
            "--service",
            "dinkes/tidak-ada/v1",
            "--operation",
            "*",
            "--tier",
            "bronze",
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("admin.invalid_store") && text.contains("not registered"), "{text}");
    assert!(!b.gw.dir.path().join("policies/grants/salah.toml").exists());

    // revoke by CLI, then grant again by editing the file by hand
    let generation = b.gw.gateway().snapshot().generation;
    let (code, text) = operators.run(
        "dewi-persandian",
        &["grant", "revoke", "--id", "simpus-rekam-medis", "--reason", "tidak diperlukan lagi"],
    );
    assert_eq!(code, 0, "{text}");
    b.gw.wait_generation_above(generation).await;
    assert_eq!(
        outcome(&b.call("dinkes/simpus", &Method::GET, "/dinkes/rekam-medis/v1/pasien/1", None).await),
        "policy.no_grant"
    );
    let generation = b.gw.gateway().snapshot().generation;
    let (key, text) = docs::grant("simpus-rekam-medis", "dinkes/simpus", "dinkes/rekam-medis/v1", &["ambil-pasien"]);
    b.gw.put_document(&key, &text);
    b.gw.wait_generation_above(generation).await;
    assert_eq!(outcome(&b.call("dinkes/simpus", &Method::GET, "/dinkes/rekam-medis/v1/pasien/1", None).await), "allow");
    assert_eq!(
        outcome(&b.call("dinkes/simpus", &Method::GET, "/dinkes/rekam-medis/v1/pasien/1/kunjungan", None).await),
        "policy.operation_not_granted"
    );
}

#[tokio::test]
async fn a_listener_without_client_certificates_serves_nobody_when_the_policy_is_on() {
    let up = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let documents = [docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")];
    let config = write_config(dir.path(), &documents, "plaintext = true\n", "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let r = penghubung_tests::get(&format!("http://{}/dinkes/rm/v1/x", gateway.local_addrs()[0])).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "identity.required".to_string()));
    assert_eq!(up.hits(), 0);
    gateway.shutdown().await;
}
