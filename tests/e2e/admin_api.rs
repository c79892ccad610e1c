//! The admin API over real TLS: a gateway and its admin listener in this process, operators with certificates
//! issued by the test's CA, and the route table walked without a certificate and role by role. Then the
//! contract scripts depend on, etags, the whole-store check, an approval that takes a service live on the data
//! plane, and no private key or credential in any answer.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::{Method, Request, StatusCode};
use penghubung::admin::api::routes::{Input, Route, ROUTES};
use penghubung::management::ca::Issued;
use penghubung::management::Role;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki};
use penghubung_tests::{docs, full, operators, send, Collected, Upstream};
use serde_json::{json, Value};

/// The operators of the test store: id, OPD, roles.
const OPERATORS: &[(&str, &str, &[Role])] = &[
    ("sari-admin", "diskominfo", &[Role::Admin]),
    ("rudi-aptika", "diskominfo", &[Role::Operasi]),
    ("dewi-persandian", "diskominfo", &[Role::Keamanan]),
    ("agus-dinsos", "dinsos", &[Role::OpdAdmin]),
    ("tono-auditor", "inspektorat", &[Role::Auditor]),
    ("dua-peran", "diskominfo", &[Role::Operasi, Role::Keamanan]),
];

/// The operator holding exactly `role`.
fn operator_with(role: Role) -> &'static str {
    OPERATORS.iter().find(|(_, _, roles)| roles == &[role]).map(|(id, _, _)| *id).unwrap()
}

/// A gateway with mTLS, its admin listener, and a certificate for every operator and for one client app.
struct Admin {
    _upstream: Upstream,
    gateway: Option<penghubung::Gateway>,
    admin: Option<penghubung::admin::api::AdminServer>,
    dir: tempfile::TempDir,
    pki: Pki,
    admin_url: String,
    data_addr: SocketAddr,
    certificates: HashMap<&'static str, Issued>,
    app: Issued,
    /// Every answer body seen, for the no-secret check.
    seen: std::sync::Mutex<Vec<String>>,
}

/// The value of the credential the `dinsos/klaim/v1` service's adapter holds (never in an answer).
const ADAPTER_SECRET: &str = "Klaim-Sandi-Uji-6b1f0e";

/// The service the lifecycle tests take live: `dinsos/bansos/v1`, in testing, submitted by the OPD's admin.
fn bansos(upstream: &str) -> (String, String) {
    let (key, text) =
        docs::service("dinsos", "bansos", &[upstream.to_string()], "", &docs::operation("cek", "GET", "/status"));
    let text = text
        .replace("status = \"active\"", "status = \"testing\"\nsubmitted_by = \"agus-dinsos\"")
        .replace(docs::APPROVALS, "");
    (key, text)
}

impl Admin {
    async fn start() -> Admin {
        let upstream = Upstream::text("bansos ok").await;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let mut certificates = HashMap::new();
        let mut documents = vec![
            docs::opd("diskominfo"),
            docs::opd("dinsos"),
            docs::opd("inspektorat"),
            docs::unlimited_tier(),
            bansos(&upstream.url()),
            docs::grant("sikasos-bansos", "dinsos/sikasos", "dinsos/bansos/v1", &["*"]),
        ];
        let app = pki.client("dinsos", "sikasos");
        documents.push(docs::client("dinsos", "sikasos", app.spiffe.as_deref().unwrap(), true));
        for (id, opd, roles) in OPERATORS {
            let issued = pki.client(opd, &format!("operator-{id}"));
            let fingerprint = operators::fingerprint_of(&issued.cert_pem);
            documents.push(operators::document(id, opd, roles, &fingerprint));
            certificates.insert(*id, issued);
        }
        // A service whose adapter holds a credential: its document names the secret, the file holds the value.
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("klaim-password"), ADAPTER_SECRET).unwrap();
        std::fs::set_permissions(secrets.join("klaim-password"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let adapter = "[adapter]\nname = \"basic\"\n[adapter.settings]\nusername = \"dinsos\"\npassword = { secret = \"klaim-password\" }\n";
        let (key, text) = docs::service("dinsos", "klaim", &[upstream.url()], "", adapter);
        documents.push((key, text.replace("status = \"active\"", "status = \"draft\"").replace(docs::APPROVALS, "")));
        let extra = "[admin]\nlisten = \"127.0.0.1:0\"\n\n[audit]\nenabled = true\n\n[secrets]\ndir = \"secrets\"\n";
        let path = write_mtls_setup(dir.path(), &documents, &pki, extra);
        let config = penghubung::Config::load(&path).unwrap_or_else(|p| panic!("config: {p:?}"));
        let gateway = penghubung::Gateway::start(config.clone()).await.unwrap_or_else(|e| panic!("start: {e}"));
        let admin = penghubung::admin::start_beside(&config, &gateway).await.unwrap().expect("[admin] is on");
        Admin {
            _upstream: upstream,
            data_addr: gateway.local_addrs()[0],
            admin_url: format!("https://127.0.0.1:{}", admin.local_addr().port()),
            gateway: Some(gateway),
            admin: Some(admin),
            dir,
            pki,
            certificates,
            app,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Sends a request as `operator` (no certificate when `None`).
    async fn call(
        &self,
        operator: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Collected {
        let identity = operator.map(|id| &self.certificates[id]);
        self.call_as(identity, method, path, body.map(|b| b.to_string().into_bytes()), headers).await
    }

    async fn call_as(
        &self,
        identity: Option<&Issued>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Collected {
        let client = https_client(client_config(&self.pki.ca_pem(), identity));
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.admin_url));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = send(&client, request.body(full(body.unwrap_or_default())).unwrap()).await;
        self.seen.lock().unwrap().push(format!("{:?}\n{}", answer.headers, answer.text()));
        answer
    }

    /// `GET path` as `operator`, expecting 200: the JSON.
    async fn read(&self, operator: &str, path: &str) -> (Value, String) {
        let answer = self.call(Some(operator), Method::GET, path, None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text());
        let etag = answer.headers.get("etag").map(|e| e.to_str().unwrap().to_string()).unwrap_or_default();
        (answer.json(), etag)
    }

    /// A data-plane call by the client app: the status.
    async fn data_plane_status(&self, path: &str) -> StatusCode {
        let client = https_client(client_config(&self.pki.ca_pem(), Some(&self.app)));
        let uri = format!("https://127.0.0.1:{}{path}", self.data_addr.port());
        send(&client, Request::get(uri).body(full("")).unwrap()).await.status
    }

    fn store_file(&self, key: &str) -> std::path::PathBuf {
        self.dir.path().join("policies").join(key)
    }

    async fn stop(mut self) -> Vec<String> {
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A concrete path for a route: its parameters filled with ids in the `dinsos` OPD (the opd_admin's own).
fn sample_path(route: &Route, document: &str) -> String {
    let mut path = route.path.to_string();
    for (name, value) in [
        ("opd", "dinsos"),
        ("name", document),
        ("version", "v1"),
        ("app", document),
        ("grant", document),
        ("tier", document),
        ("operator", document),
    ] {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}

/// A body for a route that is well-formed JSON but names nothing that exists (nothing can be written).
fn harmless_body(route: &Route) -> Option<Value> {
    match route.input {
        Input::None => None,
        Input::Bundle => Some(json!({"not": "a bundle"})),
        Input::Json(_) => Some(json!({"document": {"id": "x"}, "unknown_field": true})),
    }
}

#[tokio::test]
async fn every_admin_route_answers_401_without_a_certificate() {
    let admin = Admin::start().await;
    let mut paths: Vec<(Method, String)> =
        ROUTES.iter().map(|r| (r.method.clone(), sample_path(r, "bansos"))).collect();
    paths.push((Method::GET, "/api/v1/no-such-route".into()));
    paths.push((Method::PATCH, "/api/v1/opds".into()));
    for (method, path) in &paths {
        let answer = admin.call(None, method.clone(), path, Some(json!({"reason": "x"})), &[]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", answer.text());
        assert_eq!(answer.headers["content-type"], "application/problem+json", "{method} {path}");
        assert_eq!(answer.code(), "admin.unauthenticated", "{method} {path}");
    }
    // A certificate from the right CA that no operator document lists is no operator either.
    let stranger = admin.pki.client("dinsos", "not-an-operator");
    let answer = admin.call_as(Some(&stranger), Method::GET, "/api/v1/services", None, &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "admin.unauthenticated".to_string()));
    // A certificate from another CA is no operator certificate: refused at the handshake, or 401.
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = Pki::new(elsewhere.path()).client("diskominfo", "operator-sari-admin");
    let addr: SocketAddr = admin.admin_url.trim_start_matches("https://").parse().unwrap();
    let config = client_config(&admin.pki.ca_pem(), Some(&foreign));
    match penghubung_tests::mtls::request_status(addr, config, "/api/v1/whoami").await {
        Ok(status) => assert_eq!(status, 401, "a foreign certificate was answered {status}"),
        Err(refused) => assert!(!refused.is_empty()),
    }
    // Whoever authenticates reaches the API.
    let (whoami, _) = admin.read("sari-admin", "/api/v1/whoami").await;
    assert_eq!(whoami["id"], "sari-admin");
    assert_eq!(whoami["roles"], json!(["admin"]));
    admin.stop().await;
}

#[tokio::test]
async fn the_route_table_walked_role_by_role() {
    let admin = Admin::start().await;
    let roles = [Role::Admin, Role::Operasi, Role::Keamanan, Role::OpdAdmin, Role::Auditor];
    let mut checked = 0;
    for route in ROUTES {
        let path = sample_path(route, "no-such-document");
        for role in roles {
            let operator = operator_with(role);
            let allowed = route.operation.is_none()
                || route.operations().any(|op| penghubung::management::roles_for(op).contains(&role));
            let answer = admin.call(Some(operator), route.method.clone(), &path, harmless_body(route), &[]).await;
            let what = format!("{} {} as {}: {} {}", route.method, path, role.as_str(), answer.status, answer.text());
            assert_ne!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
            if allowed {
                let refused_for_role =
                    answer.status == StatusCode::FORBIDDEN && answer.text().contains("lacks the role");
                assert!(!refused_for_role, "{what}");
                assert!(!answer.status.is_server_error() || answer.status == StatusCode::SERVICE_UNAVAILABLE, "{what}");
            } else {
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
                assert_eq!(answer.code(), "admin.forbidden", "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * roles.len());
    // Nothing of the walk was written: every body named nothing or was refused.
    assert!(!admin.store_file("opds/x.toml").exists());
    admin.stop().await;
}

#[tokio::test]
async fn the_usage_report_is_served_to_the_auditor_and_refused_to_operasi() {
    let admin = Admin::start().await;
    // One call on the data plane: refused (the service is still in testing), recorded with both OPDs.
    assert_ne!(admin.data_plane_status("/dinsos/bansos/v1/status").await, StatusCode::OK);
    let month = penghubung::reports::Month::of(std::time::SystemTime::now(), penghubung::reports::UtcOffset::WIB);
    let path = format!("/api/v1/reports/usage?month={month}&format=json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let answer = admin.call(Some("tono-auditor"), Method::GET, &path, None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let report = answer.json();
        let called = report["callers"].as_array().unwrap().iter().any(|c| c["opd"] == "dinsos");
        if called || std::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(report["month"], month.to_string());
    assert_eq!(report["verification"]["verified"], true, "{report}");
    let dinsos = report["callers"].as_array().unwrap().iter().find(|c| c["opd"] == "dinsos").expect("dinsos called");
    assert!(dinsos["requests"].as_u64().unwrap() >= 1);
    assert!(dinsos["denied"].as_u64().unwrap() >= 1, "{dinsos}");
    let provider = report["providers"].as_array().unwrap().iter().find(|p| p["opd"] == "dinsos").expect("provider");
    assert!(provider["top_callers"].as_array().unwrap().iter().any(|c| c["name"] == "dinsos/sikasos"), "{provider}");
    // The page for a head of office, as it is (not a download), with nothing to fetch.
    let html = admin
        .call(Some("tono-auditor"), Method::GET, &format!("/api/v1/reports/usage?month={month}&format=html"), None, &[])
        .await;
    assert_eq!(html.status, StatusCode::OK);
    assert_eq!(html.headers["content-type"], "text/html; charset=utf-8");
    assert!(html.text().contains("<svg") && !html.text().contains("<script"));
    // Keamanan and admin may; operasi and an OPD's admin may not.
    for (operator, allowed) in
        [("dewi-persandian", true), ("sari-admin", true), ("rudi-aptika", false), ("agus-dinsos", false)]
    {
        let answer = admin.call(Some(operator), Method::GET, &path, None, &[]).await;
        if allowed {
            assert_eq!(answer.status, StatusCode::OK, "{operator}: {}", answer.text());
        } else {
            assert_eq!((answer.status, answer.code()), (StatusCode::FORBIDDEN, "admin.forbidden".into()), "{operator}");
        }
    }
    // Bad input: a clear error.
    for bad in ["month=2026-13", "format=pdf", "utc_offset=7"] {
        let answer =
            admin.call(Some("tono-auditor"), Method::GET, &format!("/api/v1/reports/usage?{bad}"), None, &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}: {}", answer.text());
    }
    admin.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_every_route() {
    let admin = Admin::start().await;
    let (doc, _) = admin.read("tono-auditor", "/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for route in ROUTES {
        let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        assert_eq!(op["operationId"], route.name, "{} {}", route.method, route.path);
    }
    let approvals = &doc["paths"]["/api/v1/services/{opd}/{name}/{version}/approvals"]["post"];
    let roles: Vec<&str> = approvals["x-roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(roles, ["operasi", "keamanan"]);
    admin.stop().await;
}

#[tokio::test]
async fn services_list_and_documents_carry_ids_statuses_and_etags() {
    let admin = Admin::start().await;
    let (services, _) = admin.read("tono-auditor", "/api/v1/services").await;
    let bansos = services.as_array().unwrap().iter().find(|s| s["id"] == "dinsos/bansos/v1").expect("listed");
    assert_eq!(bansos["status"], "testing");
    let (document, etag) = admin.read("rudi-aptika", "/api/v1/services/dinsos/bansos/v1").await;
    assert_eq!(document["name"], "bansos");
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    assert_eq!(bansos["etag"], etag.as_str());
    // The summary report counts it and names the approvals it waits for.
    let (summary, _) = admin.read("tono-auditor", "/api/v1/reports/summary").await;
    assert_eq!(summary["services"]["by_status"]["testing"], 1, "{summary}");
    assert_eq!(summary["services"]["awaiting_operations_approval"], json!(["dinsos/bansos/v1"]));
    assert_eq!(summary["services"]["awaiting_security_approval"], json!(["dinsos/bansos/v1"]));
    // Policy explain answers from the store as it is: the service in testing is not for this client yet.
    let body = json!({"client": "dinsos/sikasos", "service": "dinsos/bansos/v1", "operation": "GET /status"});
    let answer = admin.call(Some("tono-auditor"), Method::POST, "/api/v1/policy/explain", Some(body), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let explanation = answer.json();
    assert_eq!(explanation["decision"], "deny", "{explanation}");
    assert!(!explanation["checks"].as_array().unwrap().is_empty());
    // An operator's credential never leaves: the fingerprints do (public), no password hash.
    let (operators, _) = admin.read("sari-admin", "/api/v1/operators").await;
    let ids: Vec<&str> = operators.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert!(OPERATORS.iter().all(|(id, _, _)| ids.contains(id)), "{ids:?}");
    assert!(operators.as_array().unwrap().iter().all(|o| o.get("password_hash").is_none()));
    admin.stop().await;
}

#[tokio::test]
async fn an_approval_through_the_api_takes_a_service_live_and_a_withdrawal_takes_it_back() {
    let admin = Admin::start().await;
    let approvals = "/api/v1/services/dinsos/bansos/v1/approvals";
    assert_ne!(admin.data_plane_status("/dinsos/bansos/v1/status").await, StatusCode::OK, "testing: not live");

    // The security team cannot give the operations approval.
    let operations = json!({"kind": "operations", "reason": "uji fungsi lulus"});
    let refused = admin.call(Some("dewi-persandian"), Method::POST, approvals, Some(operations.clone()), &[]).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::FORBIDDEN, "admin.forbidden".to_string()));
    // An operator holding both roles gives one approval...
    let answer = admin.call(Some("dua-peran"), Method::POST, approvals, Some(operations), &[]).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    // ...and never the other of the same service.
    let security = json!({"kind": "security", "reason": "uji penetrasi lulus"});
    let refused = admin.call(Some("dua-peran"), Method::POST, approvals, Some(security.clone()), &[]).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::FORBIDDEN, "admin.forbidden".to_string()));
    // The operations team cannot give the security approval.
    let refused = admin.call(Some("rudi-aptika"), Method::POST, approvals, Some(security.clone()), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_ne!(admin.data_plane_status("/dinsos/bansos/v1/status").await, StatusCode::OK, "one approval: not live");

    let answer = admin.call(Some("dewi-persandian"), Method::POST, approvals, Some(security), &[]).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    let (service, _) = admin.read("tono-auditor", "/api/v1/services/dinsos/bansos/v1").await;
    assert_eq!(service["status"], "active");
    assert_eq!(service["approvals"]["operations"]["by"], "dua-peran");
    assert_eq!(service["approvals"]["security"]["by"], "dewi-persandian");
    // The change reloaded the gateway before the answer left: the service answers at once.
    assert_eq!(admin.data_plane_status("/dinsos/bansos/v1/status").await, StatusCode::OK);

    // Each change names its operator and reason: in the document's history and in the audit trail.
    let (history, _) = admin.read("tono-auditor", "/api/v1/services/dinsos/bansos/v1/history").await;
    let entries = history.as_array().unwrap();
    let last = &entries[entries.len() - 1];
    assert_eq!((last["who"].as_str(), last["reason"].as_str()), (Some("dewi-persandian"), Some("uji penetrasi lulus")));
    let before = &entries[entries.len() - 2];
    assert_eq!(before["who"], "dua-peran");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (found, _) = admin.read("tono-auditor", "/api/v1/audit/search?changes=true").await;
        if found["records"].to_string().contains("dewi-persandian") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no change record names the operator: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A withdrawal takes it back to testing.
    let withdraw = format!("{approvals}?kind=security&reason=temuan%20baru");
    let answer = admin.call(Some("dewi-persandian"), Method::DELETE, &withdraw, None, &[]).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    let (service, _) = admin.read("tono-auditor", "/api/v1/services/dinsos/bansos/v1").await;
    assert_eq!(service["status"], "testing");
    assert_ne!(admin.data_plane_status("/dinsos/bansos/v1/status").await, StatusCode::OK);
    admin.stop().await;
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_a_missing_one_428() {
    let admin = Admin::start().await;
    let path = "/api/v1/opds/dinsos";
    let (mut opd, etag) = admin.read("sari-admin", path).await;
    opd["name"] = json!("Dinas Sosial");
    let body = json!({"document": opd, "reason": "nama resmi"});

    let missing = admin.call(Some("sari-admin"), Method::PUT, path, Some(body.clone()), &[]).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::PRECONDITION_REQUIRED, "admin.precondition_required".into())
    );

    let updated = admin.call(Some("sari-admin"), Method::PUT, path, Some(body.clone()), &[("if-match", &etag)]).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let new_etag = updated.headers["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);

    // A second operator still holding the first etag does not overwrite the change.
    let mut other = opd.clone();
    other["name"] = json!("Dinsos (lama)");
    let stale_body = json!({"document": other, "reason": "edit bersamaan"});
    let stale = admin.call(Some("sari-admin"), Method::PUT, path, Some(stale_body), &[("if-match", &etag)]).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::PRECONDITION_FAILED, "admin.precondition_failed".into()));
    let (now, etag_now) = admin.read("sari-admin", path).await;
    assert_eq!((now["name"].as_str(), etag_now), (Some("Dinas Sosial"), new_etag));
    admin.stop().await;
}

#[tokio::test]
async fn a_change_that_breaks_the_store_is_422_with_every_reason_and_nothing_written() {
    let admin = Admin::start().await;
    let grant = json!({
        "document": {
            "id": "hantu",
            "client": "dinsos/tidak-ada",
            "service": "dinsos/tidak-ada/v1",
            "operations": ["*"],
            "tier": "tidak-ada",
        },
        "reason": "uji",
    });
    let answer = admin.call(Some("dewi-persandian"), Method::POST, "/api/v1/grants", Some(grant), &[]).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    let problem = answer.json();
    assert_eq!(problem["code"], "admin.invalid_store");
    let problems: Vec<String> =
        problem["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    for named in ["dinsos/tidak-ada", "dinsos/tidak-ada/v1", "tidak-ada"] {
        assert!(problems.iter().any(|p| p.contains(named)), "{named} not among {problems:?}");
    }
    assert!(problems.len() >= 3, "{problems:?}");
    assert!(!admin.store_file("grants/hantu.toml").exists(), "nothing written");
    let absent = admin.call(Some("dewi-persandian"), Method::GET, "/api/v1/grants/hantu", None, &[]).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    admin.stop().await;
}

#[tokio::test]
async fn no_private_key_or_credential_appears_in_any_answer() {
    let admin = Admin::start().await;
    // An operator certificate from a CSR: the certificate comes back, the key never travelled.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "rudi-aptika");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let body = json!({"csr_pem": csr, "days": 30, "reason": "laptop baru"});
    let issued = admin
        .call(Some("sari-admin"), Method::POST, "/api/v1/operators/rudi-aptika/certificates", Some(body), &[])
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text());
    assert!(issued.json()["certificate_pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));

    for (operator, path) in [
        ("sari-admin", "/api/v1/operators"),
        ("sari-admin", "/api/v1/operators/rudi-aptika"),
        ("sari-admin", "/api/v1/operators/rudi-aptika/history"),
        ("sari-admin", "/api/v1/whoami"),
        ("tono-auditor", "/api/v1/store/export"),
        ("tono-auditor", "/api/v1/clients"),
        ("tono-auditor", "/api/v1/audit/search?changes=true"),
        ("sari-admin", "/api/v1/services"),
        ("sari-admin", "/api/v1/services/dinsos/klaim/v1"),
    ] {
        let answer = admin.call(Some(operator), Method::GET, path, None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    }
    let secrets = [
        std::fs::read_to_string(admin.pki.dir.join("ca.key")).unwrap(),
        std::fs::read_to_string(admin.pki.dir.join("server.key")).unwrap(),
        std::fs::read_to_string(admin.pki.dir.join("audit-signing.key")).unwrap(),
        std::fs::read_to_string(admin.pki.dir.join("audit-nik.secret")).unwrap(),
        key.serialize_pem(),
        ADAPTER_SECRET.to_string(),
    ];
    let seen = admin.stop().await;
    assert!(seen.len() >= 8);
    for answer in &seen {
        assert!(!answer.contains("PRIVATE KEY"), "a private key in an answer: {answer}");
        assert!(!answer.contains("password_hash"), "{answer}");
        for secret in &secrets {
            let secret = secret.trim();
            assert!(!answer.contains(secret), "a secret in an answer: {answer}");
        }
    }
}

#[tokio::test]
async fn unknown_paths_methods_and_oversized_bodies_are_problems_too() {
    let admin = Admin::start().await;
    let answer = admin.call(Some("sari-admin"), Method::GET, "/api/v1/no-such-route", None, &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::NOT_FOUND, "admin.no_route".to_string()));
    let answer = admin.call(Some("sari-admin"), Method::PATCH, "/api/v1/opds", None, &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::METHOD_NOT_ALLOWED, "admin.method_not_allowed".into()));
    let answer = admin.call(Some("sari-admin"), Method::POST, "/api/v1/opds", Some(json!({"document": 1})), &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "admin.bad_request".to_string()));
    let answer = admin.call(Some("sari-admin"), Method::GET, "/api/v1/services/dinsos/bansos/1", None, &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "a version is v<n>: {}", answer.text());
    let huge = vec![b' '; 33 << 20];
    let answer =
        admin.call_as(Some(&admin.certificates["sari-admin"]), Method::POST, "/api/v1/opds", Some(huge), &[]).await;
    assert_eq!((answer.status, answer.code()), (StatusCode::PAYLOAD_TOO_LARGE, "admin.payload_too_large".into()));
    admin.stop().await;
}

#[tokio::test]
async fn penghubung_serve_starts_the_admin_listener_beside_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let operator = pki.client("diskominfo", "operator-sari");
    let fingerprint = operators::fingerprint_of(&operator.cert_pem);
    let documents =
        [docs::opd("diskominfo"), operators::document("sari-admin", "diskominfo", &[Role::Admin], &fingerprint)];
    let path = write_mtls_setup(dir.path(), &documents, &pki, "[admin]\nlisten = \"127.0.0.1:0\"\n");
    let process = penghubung_tests::GatewayProcess::start(&path);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let admin_addr: SocketAddr = loop {
        let log = process.log();
        if let Some(addr) = log
            .lines()
            .find(|l| l.contains("admin API started"))
            .and_then(|l| l.split("admin_address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.trim_matches('"').parse().ok())
        {
            break addr;
        }
        assert!(std::time::Instant::now() < deadline, "no admin listener:\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", admin_addr.port());
    let anonymous = https_client(client_config(&pki.ca_pem(), None));
    let answer = send(&anonymous, Request::get(url("/api/v1/whoami")).body(full("")).unwrap()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text());

    let client = https_client(client_config(&pki.ca_pem(), Some(&operator)));
    let answer = send(&client, Request::get(url("/api/v1/whoami")).body(full("")).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["id"], "sari-admin");
    let body = json!({"document": {"id": "bappeda", "name": "Bappeda"}, "reason": "OPD baru"});
    let request = Request::post(url("/api/v1/opds")).header("content-type", "application/json");
    let answer = send(&client, request.body(full(body.to_string())).unwrap()).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.headers["location"], "/api/v1/opds/bappeda");
    assert!(dir.path().join("policies/opds/bappeda.toml").is_file());
    // The change reloaded the gateway; the log names the operator and holds no key.
    let log = process.log();
    assert!(log.contains("admin API") && log.contains("sari-admin"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[tokio::test]
async fn a_revoked_operator_certificate_no_longer_reaches_the_api() {
    let admin = Admin::start().await;
    let (whoami, _) = admin.read("rudi-aptika", "/api/v1/whoami").await;
    assert_eq!(whoami["id"], "rudi-aptika");
    let serial = admin.certificates["rudi-aptika"].serial_hex.clone();
    let body = json!({"serial_hex": serial, "reason": "laptop hilang"});
    let answer = admin.call(Some("dewi-persandian"), Method::POST, "/api/v1/revocations", Some(body), &[]).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    // The CRL was rewritten: a new connection with the revoked certificate is refused at the handshake, or
    // reaches no operator.
    let addr: SocketAddr = admin.admin_url.trim_start_matches("https://").parse().unwrap();
    let config = client_config(&admin.pki.ca_pem(), Some(&admin.certificates["rudi-aptika"]));
    match penghubung_tests::mtls::request_status(addr, config, "/api/v1/whoami").await {
        Ok(status) => assert_eq!(status, 401, "a revoked operator certificate was answered {status}"),
        Err(refused) => assert!(!refused.is_empty()),
    }
    // The revocation is in the audit trail, naming the operator and the reason.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (found, _) = admin.read("tono-auditor", "/api/v1/audit/search?changes=true").await;
        let records = found["records"].as_array().unwrap();
        let revocation = records.iter().find(|r| r.to_string().contains(&format!("ca/revocations/{serial}")));
        if let Some(record) = revocation {
            let text = record.to_string();
            assert!(text.contains("dewi-persandian") && text.contains("laptop hilang"), "{record}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no change record of the revocation: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Other operators are unaffected.
    let (whoami, _) = admin.read("dewi-persandian", "/api/v1/whoami").await;
    assert_eq!(whoami["id"], "dewi-persandian");
    admin.stop().await;
}

#[tokio::test]
async fn a_store_export_imports_back_in_both_forms_and_a_tampered_one_is_refused() {
    let admin = Admin::start().await;
    let exported = admin.call(Some("sari-admin"), Method::GET, "/api/v1/store/export", None, &[]).await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text());
    assert!(exported.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let bundle = exported.body.to_vec();
    let text = String::from_utf8(bundle.clone()).unwrap();
    assert!(text.contains("OPD dinsos"), "the export holds the documents");

    let tampered = text.replace("OPD dinsos", "OPD dinsoz").into_bytes();
    let refused = admin
        .call_as(
            Some(&admin.certificates["sari-admin"]),
            Method::POST,
            "/api/v1/store/import?reason=uji",
            Some(tampered),
            &[],
        )
        .await;
    assert!(refused.status.is_client_error(), "{} {}", refused.status, refused.text());
    assert!(refused.code().starts_with("admin."), "{}", refused.text());
    let (opd, _) = admin.read("sari-admin", "/api/v1/opds/dinsos").await;
    assert_eq!(opd["name"], "OPD dinsos", "a refused import changes nothing");

    let raw = admin
        .call_as(
            Some(&admin.certificates["sari-admin"]),
            Method::POST,
            "/api/v1/store/import?reason=pulih",
            Some(bundle),
            &[],
        )
        .await;
    assert!(raw.status.is_success(), "{}", raw.text());
    // A second import right after (within the same second) keeps the previous store under its own name too.
    let wrapped = json!({"bundle": serde_json::from_str::<Value>(&text).unwrap(), "reason": "pulih lagi"});
    let answer = admin.call(Some("sari-admin"), Method::POST, "/api/v1/store/import", Some(wrapped), &[]).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    let (services, _) = admin.read("tono-auditor", "/api/v1/services").await;
    assert!(services.as_array().unwrap().iter().any(|s| s["id"] == "dinsos/bansos/v1"));
    // Only an admin imports.
    let answer =
        admin.call(Some("tono-auditor"), Method::POST, "/api/v1/store/import", Some(json!({"bundle": {}})), &[]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    admin.stop().await;
}
