//! Contracts end to end: requests held to their JSON Schema before anything reaches the upstream (malformed
//! JSON with its position, violations with their pointers, 413, 415, query parameters, the Indonesian reference
//! types), upstream responses held to theirs (`enforce` and `report`), remote `$ref`s refused at load, an
//! OpenAPI document imported with the CLI and served back through discovery, and discovery showing each
//! client only what it may call.

use std::path::Path;

use http::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki};
use penghubung_tests::operators::{OperatorCli, ADMIN_SECTION};
use penghubung_tests::{docs, empty, full, http1_client, run_cli, send, Collected, TestBody, TestGateway, Upstream};
use serde_json::{json, Value};

/// A schema document `schemas/{path}`.
fn schema(path: &str, value: Value) -> (String, String) {
    (format!("schemas/{path}"), serde_json::to_string_pretty(&value).unwrap())
}

/// A service with one operation and its contract lines.
fn service(name: &str, upstream: &str, extra: &str, operations: &str) -> (String, String) {
    docs::service("disdukcapil", name, &[upstream.to_string()], "", &format!("{extra}\n{operations}"))
}

fn verifikasi_schema() -> Value {
    json!({
        "type": "object",
        "required": ["pemohon", "anggota"],
        "additionalProperties": false,
        "properties": {
            "pemohon": {"type": "string", "minLength": 1},
            "anggota": {"type": "array", "maxItems": 50, "items": {
                "type": "object", "required": ["nik", "nama"],
                "properties": {
                    "nik": {"$ref": "/ref/nik.schema.json"},
                    "nama": {"type": "string"},
                    "tanggal_lahir": {"$ref": "/ref/tanggal.schema.json"},
                    "nip": {"$ref": "/ref/nip.schema.json"},
                    "npwp": {"$ref": "/ref/npwp.schema.json"},
                    "nib": {"$ref": "/ref/nib.schema.json"},
                    "telepon": {"$ref": "/ref/telepon.schema.json"},
                    "kode_wilayah": {"$ref": "/ref/kode-wilayah.schema.json"}
                }
            }}
        }
    })
}

async fn post(gw: &TestGateway, path: &str, content_type: Option<&str>, body: &str) -> Collected {
    let mut request = Request::post(format!("{}{path}", gw.url));
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    send(&http1_client(), request.body(full(body.to_string())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_held_to_their_contract_before_anything_reaches_the_upstream() {
    let up = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        use http_body_util::BodyExt;
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Response::builder().header("content-type", "application/json").body(full(body)).unwrap()
    })
    .await;
    let operations = "\n[[operations]]\nid = \"verifikasi\"\nmethod = \"POST\"\npath = \"/verifikasi\"\nrequest.schema = \"dukcapil/verifikasi.json\"\n\n[[operations]]\nid = \"cari\"\nmethod = \"GET\"\npath = \"/cari\"\nquery.schema = \"dukcapil/cari.json\"\n";
    let documents = [
        docs::opd("disdukcapil"),
        service("kependudukan", &up.url(), "max_request_body = \"2KiB\"", operations),
        schema("dukcapil/verifikasi.json", verifikasi_schema()),
        schema(
            "dukcapil/cari.json",
            json!({"type": "object", "required": ["kode_wilayah"], "additionalProperties": false, "properties": {
                "kode_wilayah": {"$ref": "/ref/kode-wilayah.schema.json"},
                "halaman": {"type": "string", "pattern": "^[1-9][0-9]{0,3}$"}}}),
        ),
    ];
    let gw = TestGateway::start(&documents, "").await;
    let path = "/disdukcapil/kependudukan/v1/verifikasi";
    let json_ct = Some("application/json; charset=utf-8");

    // valid: forwarded byte for byte
    let valid = r#"{"pemohon": "puskesmas-01", "anggota": [{"nik": "1807015508900002", "nama": "SITI", "tanggal_lahir": "1990-08-15", "telepon": "081234567890", "kode_wilayah": "18.07.01.2001"}]}"#;
    let r = post(&gw, path, json_ct, valid).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), valid, "the upstream received the body unchanged");

    // malformed JSON: the position
    let r = post(&gw, path, json_ct, "{\n  \"pemohon\": \"x\",\n  anggota: []\n}").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "contract.malformed_json".to_string()));
    assert_eq!((r.json()["line"].as_u64(), r.json()["column"].as_u64()), (Some(3), Some(3)), "{}", r.text());

    // nested violations: every pointer, with the keyword
    let invalid = json!({"pemohon": "", "anggota": [
        {"nik": "1807015508900002", "nama": "SITI"},
        {"nik": "1807013102900001", "nama": "BUDI"},
        {"nama": "TANPA NIK", "tanggal_lahir": "15-08-1990"},
        {"nik": "1807015508900002", "nama": "X", "nip": "198503122010011001", "npwp": "09.254.294.3-407.000", "nib": "12345", "telepon": "0812-3456"}
    ], "lain": 1});
    let r = post(&gw, path, json_ct, &invalid.to_string()).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "contract.request_invalid".to_string()), "{}", r.text());
    let found: Vec<(String, String)> = r.json()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["pointer"].as_str().unwrap().to_string(), v["keyword"].as_str().unwrap().to_string()))
        .collect();
    for expected in [
        ("", "additionalProperties"),
        ("/pemohon", "minLength"),
        ("/anggota/1/nik", "format"), // 31 February does not exist
        ("/anggota/2", "required"),
        ("/anggota/2/tanggal_lahir", "format"),
        ("/anggota/3/nib", "pattern"),
        ("/anggota/3/telepon", "pattern"),
    ] {
        assert!(found.iter().any(|(p, k)| p == expected.0 && k == expected.1), "missing {expected:?} in {found:?}");
    }
    assert!(!found.iter().any(|(p, _)| p.starts_with("/anggota/0")), "a valid member is not reported: {found:?}");
    assert!(!found.iter().any(|(p, _)| p == "/anggota/3/nip" || p == "/anggota/3/npwp"), "{found:?}");

    // media type and size
    let r = post(&gw, path, None, valid).await;
    assert_eq!((r.status.as_u16(), r.code()), (415, "contract.unsupported_media_type".to_string()));
    let r = post(&gw, path, Some("text/plain"), valid).await;
    assert_eq!(r.status, 415);
    assert!(r.json()["detail"].as_str().unwrap().contains("application/json"), "{}", r.text());
    let big = format!(r#"{{"pemohon": "{}", "anggota": []}}"#, "x".repeat(3000));
    let r = post(&gw, path, json_ct, &big).await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "request.body_too_large".to_string()), "413 before parsing");
    let chunks = penghubung_tests::PatternBody::new(4096, 512).boxed(); // no Content-Length: cut off at the limit
    let request = Request::post(format!("{}{path}", gw.url)).header("content-type", "application/json").body(chunks);
    let r = send(&http1_client(), request.unwrap()).await;
    assert_eq!(r.status, 413, "{}", r.text());

    // query parameters
    let get = |q: &str| {
        let url = format!("{}/disdukcapil/kependudukan/v1/cari{q}", gw.url);
        async move { send(&http1_client(), Request::get(url).body(empty()).unwrap()).await }
    };
    assert_eq!(get("?kode_wilayah=18.07.01&halaman=2").await.status, 200);
    for bad in
        ["", "?kode_wilayah=18.00", "?kode_wilayah=99.01", "?kode_wilayah=18.07&halaman=0", "?kode_wilayah=18.07&x=1"]
    {
        let r = get(bad).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "contract.query_invalid".to_string()), "{bad}: {}", r.text());
    }
    assert_eq!(up.hits(), 2, "only the valid requests reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_responses_are_enforced_or_reported() {
    let up = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let body = if req.uri().path().ends_with("/baik") {
            r#"{"nik_terdaftar": true, "nama_cocok": false}"#
        } else {
            r#"{"nik_terdaftar": "ya", "catatan": "1807015508900002"}"#
        };
        Response::builder().header("content-type", "application/json").body(full(body)).unwrap()
    })
    .await;
    let operations = "\n[[operations]]\nid = \"baik\"\nmethod = \"GET\"\npath = \"/baik\"\nresponses.\"200\".schema = \"jawaban.json\"\n\n[[operations]]\nid = \"buruk\"\nmethod = \"GET\"\npath = \"/buruk\"\nresponses.\"200\".schema = \"jawaban.json\"\n";
    let jawaban = json!({"type": "object", "required": ["nik_terdaftar", "nama_cocok"], "additionalProperties": false,
        "properties": {"nik_terdaftar": {"type": "boolean"}, "nama_cocok": {"type": "boolean"}}});
    let documents = [
        docs::opd("disdukcapil"),
        service("ketat", &up.url(), "response_check = \"enforce\"", operations),
        service("longgar", &up.url(), "", operations),
        schema("jawaban.json", jawaban),
    ];
    let gw = TestGateway::start(&documents, "").await;
    let get = |path: &str| {
        let url = format!("{}/disdukcapil/{path}", gw.url);
        async move { send(&http1_client(), Request::get(url).body(empty()).unwrap()).await }
    };
    assert_eq!(get("ketat/v1/baik").await.status, 200);
    let r = get("ketat/v1/buruk").await;
    assert_eq!((r.status.as_u16(), r.code()), (502, "contract.response_invalid".to_string()), "{}", r.text());
    assert!(!r.text().contains("1807015508900002"), "the upstream's body is not passed on: {}", r.text());
    let problem = r.json();
    let pointers: Vec<&str> =
        problem["violations"].as_array().unwrap().iter().map(|v| v["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/nik_terdaftar") && pointers.contains(&""), "{pointers:?}");

    // report: passed on as it came, counted
    let r = get("longgar/v1/buruk").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["nik_terdaftar"], "ya");
    let health = penghubung_tests::get(&format!("{}/_penghubung/health", gw.url)).await.json();
    assert_eq!(health["contract_violations"], 2, "{health}");
}

#[test]
fn a_remote_ref_is_refused_when_the_store_loads() {
    let dir = tempfile::tempdir().unwrap();
    let operations = "\n[[operations]]\nid = \"x\"\nmethod = \"POST\"\npath = \"/x\"\nrequest.schema = \"jauh.json\"\n";
    let documents = [
        docs::opd("disdukcapil"),
        service("jauh", "http://127.0.0.1:9", "", operations),
        schema("jauh.json", json!({"properties": {"nik": {"$ref": "https://example.org/nik.json"}}})),
    ];
    let config = penghubung_tests::write_setup(dir.path(), &documents, "");
    let (code, text) = run_cli(&config, &["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("https://example.org/nik.json") && text.contains("not allowed"), "{text}");
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, TestBody>;

async fn get_json(client: &HttpsClient, url: String) -> Collected {
    send(client, Request::get(url).body(empty()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_openapi_document_round_trips_through_discovery() {
    let up = Upstream::start(|_req: Request<hyper::body::Incoming>| async move {
        Response::builder()
            .header("content-type", "application/json")
            .body(full(r#"{"nik_valid": true, "nama_cocok": true}"#))
            .unwrap()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let spiffe = format!("spiffe://{}/opd/dinsos/app/sikasos", penghubung_tests::mtls::TRUST_DOMAIN);
    let documents = [
        docs::opd("disdukcapil"),
        docs::opd("dinsos"),
        docs::client("dinsos", "sikasos", &spiffe, true),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, ADMIN_SECTION);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let operators = OperatorCli::start(dir.path(), &pki, &config, &gateway).await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openapi/dukcapil-verifikasi.json");
    let (code, text) = operators.run(
        "admin-uji",
        &[
            "service",
            "import-openapi",
            fixture.to_str().unwrap(),
            "--opd",
            "disdukcapil",
            "--service",
            "verifikasi",
            "--upstream",
            &up.url(),
            "--classification",
            "terbatas",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let s = "disdukcapil/verifikasi/v1";
    for (operator, args) in [
        ("admin-uji", vec!["service", "submit", "--service", s]),
        ("operasi-uji", vec!["service", "approve", "--service", s, "--operations", "--reason", "uji fungsi"]),
        ("keamanan-uji", vec!["service", "approve", "--service", s, "--security", "--reason", "uji keamanan"]),
        (
            "keamanan-uji",
            vec![
                "grant",
                "add",
                "--id",
                "sikasos-verifikasi",
                "--client",
                "dinsos/sikasos",
                "--service",
                s,
                "--operation",
                "*",
                "--tier",
                "unlimited",
            ],
        ),
    ] {
        let (code, text) = operators.run(operator, &args);
        assert_eq!(code, 0, "{args:?}: {text}");
    }
    let base = format!("https://{}", gateway.local_addrs()[0]);
    let client = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinsos", "sikasos"))));

    let catalogue = get_json(&client, format!("{base}/_penghubung/services")).await;
    assert_eq!(catalogue.status, 200, "{}", catalogue.text());
    let services = catalogue.json()["services"].as_array().unwrap().clone();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0]["service"], s);

    let exported = get_json(&client, format!("{base}/_penghubung/services/{s}/openapi.json")).await;
    assert_eq!(exported.status, 200, "{}", exported.text());
    let exported = exported.json();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let paths = |doc: &Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    out.push((method.to_string(), path.clone()));
                }
            }
        }
        out.sort();
        out
    };
    assert_eq!(paths(&exported), paths(&original));
    assert_eq!(exported["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
    let reimported = penghubung::openapi::import(&exported).expect("the export imports again");
    let mut ids: Vec<String> = reimported.operations.iter().map(|o| o.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["get-penduduk", "verifikasi-nik"]);

    // and the imported contract is enforced
    let post = |body: &'static str| {
        let request = Request::post(format!("{base}/{s}/verifikasi")).header("content-type", "application/json");
        send(&client, request.body(full(body)).unwrap())
    };
    let r = post(r#"{"nik": "123"}"#).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "contract.request_invalid".to_string()), "{}", r.text());
    operators.shutdown().await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_shows_each_client_only_what_it_may_call() {
    let up = Upstream::text("{}").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_trust_domain(dir.path(), penghubung::ca::DEVELOPMENT_TRUST_DOMAIN);
    let documents = docs::baseline(&up.url());
    let config = write_mtls_setup(dir.path(), &documents, &pki, "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let base = format!("https://{}", gateway.local_addrs()[0]);
    let listed = |id: &str| {
        let (opd, app) = id.split_once('/').unwrap();
        let client = https_client(client_config(&pki.ca_pem(), Some(&pki.client(opd, app))));
        let base = base.clone();
        async move {
            let r = get_json(&client, format!("{base}/_penghubung/services")).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let json = r.json();
            let mut out: Vec<(String, Vec<String>)> = json["services"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let ops = s["operations"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string());
                    (s["service"].as_str().unwrap().to_string(), ops.collect())
                })
                .collect();
            out.sort();
            (out, client)
        }
    };
    let (simpus, simpus_client) = listed("dinkes/simpus").await;
    assert_eq!(
        simpus,
        [
            ("bappeda/indikator/v1".to_string(), vec!["daftar-indikator".to_string(), "ambil-indikator".to_string()]),
            ("dinkes/rekam-medis/v1".to_string(), vec!["ambil-pasien".to_string(), "daftar-kunjungan".to_string()]),
            (
                "disdukcapil/kependudukan/v1".to_string(),
                vec!["ambil-penduduk".to_string(), "verifikasi-nik".to_string()]
            ),
        ],
        "the sangat_rahasia operation is not listed; bansos (no grant) and akta (draft) are not listed"
    );
    let (sikasos, _) = listed("dinsos/sikasos").await;
    assert_eq!(
        sikasos,
        [("disdukcapil/kependudukan/v1".to_string(), vec!["verifikasi-nik".to_string()])],
        "the expired grant and the testing service are not listed"
    );
    let (dashboard, _) = listed("diskominfo/dashboard").await;
    assert!(dashboard.iter().any(|(s, _)| s == "dinsos/bansos/v1"), "a test client sees the testing service");

    let r = get_json(&simpus_client, format!("{base}/_penghubung/services/dinsos/bansos/v1/openapi.json")).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "policy.no_grant".to_string()));
    let r = get_json(&simpus_client, format!("{base}/_penghubung/services/dinsos/tidak-ada/v1/openapi.json")).await;
    assert_eq!(r.status, 404);
    let r =
        get_json(&simpus_client, format!("{base}/_penghubung/services/disdukcapil/kependudukan/v1/openapi.json")).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    let verifikasi = &doc["paths"]["/verifikasi"]["post"];
    assert_eq!(verifikasi["operationId"], "verifikasi-nik");
    assert!(verifikasi["requestBody"]["content"]["application/json"]["schema"].is_object(), "{verifikasi}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn discovery_needs_an_identity_when_the_policy_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = penghubung_tests::write_config(dir.path(), &[docs::opd("dinkes")], "plaintext = true\n", "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let r = penghubung_tests::get(&format!("http://{}/_penghubung/services", gateway.local_addrs()[0])).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "identity.required".to_string()));
    gateway.shutdown().await;
}

/// The contract of the strict-reading tests: `single` stays within the single pass's keywords, `full` (the same
/// plus an `anyOf`) is decided by the full validator only. Both must refuse the same bodies.
fn strict_schemas() -> [(String, String); 2] {
    let properties = json!({
        "nik": {"$ref": "/ref/nik.schema.json"},
        "jumlah": {"type": "number", "maximum": 1000},
        "kode": {"enum": [18446744073709551615_u64, 7]},
        "catatan": {}
    });
    [
        schema(
            "ketat/single.json",
            json!({"type": "object", "required": ["nik"], "additionalProperties": false, "properties": properties}),
        ),
        schema(
            "ketat/full.json",
            json!({"type": "object", "anyOf": [{"required": ["nik"]}, {"required": ["nip"]}],
                "additionalProperties": false, "properties": properties}),
        ),
    ]
}

const STRICT_OPERATIONS: &str = "\n[[operations]]\nid = \"single\"\nmethod = \"POST\"\npath = \"/single\"\nrequest.schema = \"ketat/single.json\"\n\n[[operations]]\nid = \"full\"\nmethod = \"POST\"\npath = \"/full\"\nrequest.schema = \"ketat/full.json\"\n";

/// An upstream that echoes the body it received.
async fn echo() -> Upstream {
    Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        use http_body_util::BodyExt;
        let body = req.into_body().collect().await.unwrap().to_bytes();
        Response::builder().header("content-type", "application/json").body(full(body)).unwrap()
    })
    .await
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Finding 5: the document validated is the document forwarded. Duplicate keys (however spelled, wherever
/// they are), numbers beyond what can be compared exactly, and nesting beyond the limit are refused with their
/// own codes by both validators, and never reach the upstream; exact numbers are compared exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_validated_is_the_document_forwarded() {
    let up = echo().await;
    let [single, full_only] = strict_schemas();
    let documents = [docs::opd("disdukcapil"), service("ketat", &up.url(), "", STRICT_OPERATIONS), single, full_only];
    let gw = TestGateway::start(&documents, "").await;
    let ct = Some("application/json");
    let nik = "1807015508900002";
    let mut forwarded = 0;
    for operation in ["single", "full"] {
        let path = format!("/disdukcapil/ketat/v1/{operation}");
        let valid = format!(
            r#"{{"nik": "{nik}", "jumlah": 1000, "kode": 18446744073709551615, "catatan": {{"a": [1, 2.5]}}}}"#
        );
        let r = post(&gw, &path, ct, &valid).await;
        assert_eq!(r.status, 200, "{operation}: {}", r.text());
        assert_eq!(r.text(), valid, "forwarded unchanged");
        forwarded += 1;

        for (body, pointer) in [
            (format!(r#"{{"nik": "{nik}", "nik": "3201013104900001"}}"#), "/nik"),
            (format!(r#"{{"nik": "3201013104900001", "\u006e\u0069\u006b": "{nik}"}}"#), "/nik"),
            (format!(r#"{{"nik": "{nik}", "jumlah": 1, "jumlah": 5000}}"#), "/jumlah"),
            (format!(r#"{{"nik": "{nik}", "catatan": {{"x": 1, "y": {{"z": 1, "z": 2}}}}}}"#), "/catatan/y/z"),
            (format!(r#"{{"nik": "{nik}", "catatan": [0, {{"peran": "a", "peran": "admin"}}]}}"#), "/catatan/1/peran"),
        ] {
            let r = post(&gw, &path, ct, &body).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (400, "contract.duplicate_key".to_string()),
                "{body}: {}",
                r.text()
            );
            assert_eq!(r.json()["pointer"], pointer, "{body}");
        }

        // exact comparison: the double above 1000 is above 1000
        for jumlah in ["1000.0000000000001", "1000.0000000000002", "1e3001", "1000.5"] {
            let body = format!(r#"{{"nik": "{nik}", "jumlah": {jumlah}}}"#);
            let r = post(&gw, &path, ct, &body).await;
            let code = if jumlah == "1e3001" { "contract.malformed_json" } else { "contract.request_invalid" };
            assert_eq!((r.status.as_u16(), r.code()), (400, code.to_string()), "{body}: {}", r.text());
        }
        // more precise than a double or a 64-bit integer holds: refused, never rounded into range
        for (field, number) in [
            ("jumlah", "1000.00000000000001"),
            ("jumlah", "999.999999999999999999"),
            ("kode", "18446744073709551617"),
            ("kode", "18446744073709551615.0000000001"),
            ("catatan", "3.14159265358979323846264338"),
            ("jumlah", "1e-400"),
        ] {
            let body = format!(r#"{{"nik": "{nik}", "{field}": {number}}}"#);
            let r = post(&gw, &path, ct, &body).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (400, "contract.number_precision".to_string()),
                "{body}: {}",
                r.text()
            );
            assert_eq!(r.json()["pointer"], format!("/{field}"));
        }
        let r = post(&gw, &path, ct, &format!(r#"{{"nik": "{nik}", "jumlah": 999.9999999999999}}"#)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        forwarded += 1;

        // one nesting limit (128), under an unconstrained property and everywhere else
        for body in [
            format!(r#"{{"nik": "{nik}", "catatan": {}}}"#, nested(100_000)),
            format!(r#"{{"nik": "{nik}", "catatan": {}}}"#, nested(128)),
            format!(r#"{{"nik": "{nik}", "jumlah": {}}}"#, nested(128)),
            nested(100_000),
            format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000)),
        ] {
            let r = post(&gw, &path, ct, &body).await;
            assert_eq!((r.status.as_u16(), r.code()), (400, "contract.too_deep".to_string()), "{}", r.text());
        }
        let r = post(&gw, &path, ct, &format!(r#"{{"nik": "{nik}", "catatan": {}}}"#, nested(127))).await;
        assert_eq!(r.status, 200, "127 arrays inside the object: 128 levels");
        forwarded += 1;
    }
    assert_eq!(up.hits(), forwarded, "nothing refused reached the upstream");
}

/// The same reading over HTTP/2, the body arriving in several DATA frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_reading_holds_over_http2() {
    let up = echo().await;
    let [single, full_only] = strict_schemas();
    let documents = [docs::opd("disdukcapil"), service("ketat", &up.url(), "", STRICT_OPERATIONS), single, full_only];
    let gw = TestGateway::start(&documents, "").await;
    let client = penghubung_tests::http2_client();
    for operation in ["single", "full"] {
        let url = format!("{}/disdukcapil/ketat/v1/{operation}", gw.url);
        for (body, code) in [
            (r#"{"nik": "1807015508900002", "catatan": {"k": 1, "k": 2}}"#.to_string(), "contract.duplicate_key"),
            (r#"{"nik": "1807015508900002", "kode": 18446744073709551617}"#.to_string(), "contract.number_precision"),
            (format!(r#"{{"nik": "1807015508900002", "catatan": {}}}"#, nested(5000)), "contract.too_deep"),
            (r#"{"nik": "1807015508900002", "jumlah": 1000.0000000000001}"#.to_string(), "contract.request_invalid"),
            // 2^64 is exactly a double: compared (not in the enum), not refused for its precision
            (r#"{"nik": "1807015508900002", "kode": 18446744073709551616}"#.to_string(), "contract.request_invalid"),
        ] {
            let request = Request::post(&url).header("content-type", "application/json").body(full(body.clone()));
            let r = send(&client, request.unwrap()).await;
            assert_eq!((r.status.as_u16(), r.code()), (400, code.to_string()), "{operation}: {}", r.text());
        }
        let ok = r#"{"nik": "1807015508900002", "jumlah": 1000.0}"#;
        let request = Request::post(&url).header("content-type", "application/json").body(full(ok));
        assert_eq!(send(&client, request.unwrap()).await.status, 200);
    }
    assert_eq!(up.hits(), 2, "only the valid bodies reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nesting_limit_is_configured_once_for_both_validators() {
    let up = echo().await;
    let [single, full_only] = strict_schemas();
    let documents = [docs::opd("disdukcapil"), service("ketat", &up.url(), "", STRICT_OPERATIONS), single, full_only];
    let gw = TestGateway::start(&documents, "[limits]\nmax_json_depth = 8\n").await;
    for operation in ["single", "full"] {
        let path = format!("/disdukcapil/ketat/v1/{operation}");
        let ok = format!(r#"{{"nik": "1807015508900002", "catatan": {}}}"#, nested(7));
        assert_eq!(post(&gw, &path, Some("application/json"), &ok).await.status, 200);
        let deep = format!(r#"{{"nik": "1807015508900002", "catatan": {}}}"#, nested(8));
        let r = post(&gw, &path, Some("application/json"), &deep).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "contract.too_deep".to_string()), "{}", r.text());
        assert!(r.json()["detail"].as_str().unwrap().contains('8'), "{}", r.text());
    }
    assert_eq!(up.hits(), 2);
}

/// The false accept the JSON-Schema-Test-Suite found: `additionalProperties` does not see the `properties` of
/// an `allOf` branch or a `$ref` target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn additional_properties_does_not_look_into_other_subschemas() {
    let up = echo().await;
    let mut operations = String::new();
    let schemas = [
        json!({"allOf": [{"properties": {"a": {}}}], "additionalProperties": false}),
        json!({"allOf": [{"properties": {"a": {}}}, {"additionalProperties": false}]}),
        json!({"$ref": "#/$defs/d", "additionalProperties": false, "$defs": {"d": {"properties": {"a": {}}}}}),
        json!({"allOf": [{"properties": {"a": {"type": "integer"}}}], "additionalProperties": {"type": "string"}}),
    ];
    let mut documents = vec![docs::opd("disdukcapil")];
    for (i, value) in schemas.iter().enumerate() {
        operations.push_str(&format!(
            "\n[[operations]]\nid = \"o{i}\"\nmethod = \"POST\"\npath = \"/o{i}\"\nrequest.schema = \"all/s{i}.json\"\n"
        ));
        documents.push(schema(&format!("all/s{i}.json"), value.clone()));
    }
    documents.push(service("gabung", &up.url(), "", &operations));
    let gw = TestGateway::start(&documents, "").await;
    for i in 0..schemas.len() {
        let path = format!("/disdukcapil/gabung/v1/o{i}");
        let r = post(&gw, &path, Some("application/json"), r#"{"a": 1}"#).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "contract.request_invalid".to_string()), "{i}: {}", r.text());
        assert_eq!(post(&gw, &path, Some("application/json"), "{}").await.status, 200, "{i}");
    }
    assert_eq!(up.hits(), schemas.len());
}

/// A response with duplicate keys (or nested too deep) is not what its contract validated: withheld under
/// `enforce` like any violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_read_as_strictly_as_requests() {
    let up = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let body = match req.uri().path() {
            p if p.ends_with("/dua") => r#"{"nik_terdaftar": true, "nik_terdaftar": false}"#.to_string(),
            p if p.ends_with("/dalam") => format!(r#"{{"nik_terdaftar": true, "x": {}}}"#, nested(200)),
            _ => r#"{"nik_terdaftar": true}"#.to_string(),
        };
        Response::builder().header("content-type", "application/json").body(full(body)).unwrap()
    })
    .await;
    let mut operations = String::new();
    for name in ["baik", "dua", "dalam"] {
        operations.push_str(&format!(
            "\n[[operations]]\nid = \"{name}\"\nmethod = \"GET\"\npath = \"/{name}\"\nresponses.\"200\".schema = \"jawab.json\"\n"
        ));
    }
    let documents = [
        docs::opd("disdukcapil"),
        service("jawab", &up.url(), "response_check = \"enforce\"", &operations),
        schema("jawab.json", json!({"type": "object", "properties": {"nik_terdaftar": {"type": "boolean"}}})),
    ];
    let gw = TestGateway::start(&documents, "").await;
    let get = |name: &str| {
        let url = format!("{}/disdukcapil/jawab/v1/{name}", gw.url);
        async move { penghubung_tests::get(&url).await }
    };
    assert_eq!(get("baik").await.status, 200);
    for (name, keyword) in [("dua", "duplicate_key"), ("dalam", "max_json_depth")] {
        let r = get(name).await;
        assert_eq!((r.status.as_u16(), r.code()), (502, "contract.response_invalid".to_string()), "{}", r.text());
        assert_eq!(r.json()["violations"][0]["keyword"], keyword, "{}", r.text());
    }
}

/// `penghubung check` blames the schema at fault, once, not every operation that uses it (or every operation in
/// the store), and refuses every reference that leaves the store, with or without a scheme.
#[test]
fn check_names_the_schema_file_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let mut operations = String::new();
    for i in 0..30 {
        let schema = match i % 4 {
            0 => "baik.json",
            1 => "rusak/meta.json",
            2 => "rusak/hilang.json",
            _ => "rusak/pengguna.json",
        };
        operations.push_str(&format!(
            "\n[[operations]]\nid = \"o{i}\"\nmethod = \"POST\"\npath = \"/o{i}\"\nrequest.schema = \"{schema}\"\n"
        ));
    }
    let documents = [
        docs::opd("disdukcapil"),
        service("banyak", "http://127.0.0.1:9", "", &operations),
        schema("baik.json", json!({"type": "object", "properties": {"nik": {"$ref": "/ref/nik.schema.json"}}})),
        schema("rusak/meta.json", json!({"$schema": "https://example.org/bukan-draft", "type": "object"})),
        schema("rusak/pengguna.json", json!({"properties": {"a": {"$ref": "jauh.json"}}})),
        schema("rusak/jauh.json", json!({"properties": {"b": {"$ref": "//example.org/b.json"}}})),
        schema("rusak/hilang.json", json!({"properties": {"c": {"$ref": "tidak-ada.json#/$defs/c"}}})),
        schema("tak-terpakai.json", json!({"type": "string"})),
    ];
    let config = penghubung_tests::write_setup(dir.path(), &documents, "");
    let (code, text) = run_cli(&config, &["check"]);
    assert_eq!(code, 1, "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("error")).collect();
    assert!(text.contains("rusak/meta.json") && text.contains("example.org/bukan-draft"), "{text}");
    assert!(text.contains("rusak/jauh.json") && text.contains("https://example.org/b.json"), "{text}");
    assert!(!errors.iter().any(|l| l.contains("operation `o")), "no operation is blamed: {text}");
    assert!(!text.contains("baik.json:") && !text.contains("pengguna.json:"), "{text}");
    assert!(text.contains("rusak/hilang.json") && text.contains("rusak/tidak-ada.json"), "{text}");
    assert!(text.contains("check failed: 3 error(s)"), "{text}");
}
