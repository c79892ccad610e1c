//! The national adapters end to end (`dukcapil`, `bkn-siasn`, `bsre`), against the doubles of
//! `penghubung_tests::national`, and the doubles' own behaviour (so that a test passing through the gateway
//! proves the adapter followed the system's flow, not that the double accepts anything).

use std::time::Duration;

use http::{Request, StatusCode};
use penghubung_tests::national::*;
use penghubung_tests::*;

/// Sends `request` on a fresh pooled client.
async fn call(request: Request<TestBody>) -> Collected {
    send(&http1_client(), request).await
}

/// A form POST to a token endpoint.
async fn token_request(url: &str, basic: Option<(&str, &str)>, form: &str) -> Collected {
    let mut request = Request::post(url).header("content-type", "application/x-www-form-urlencoded");
    if let Some((user, password)) = basic {
        request = request.header("authorization", format!("Basic {}", base64(format!("{user}:{password}").as_bytes())));
    }
    send(&http1_client(), request.body(full(form.to_string())).unwrap()).await
}

#[tokio::test]
async fn token_doubles_issue_expiring_tokens_that_the_bkn_double_requires_both_of() {
    let apim = TokenServer::client_credentials("apim", "bkn-key", "bkn-secret", Duration::from_secs(3600)).await;
    let sso = TokenServer::keycloak_password(
        "sso",
        "public-siasn",
        ("lamtim-client", "operator", "op-pass"),
        Duration::from_secs(3600),
    )
    .await;
    let bkn = BknDouble::start(apim.check(), sso.check()).await;

    let refused = token_request(&apim.url(), Some(("bkn-key", "wrong")), "grant_type=client_credentials").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"], "invalid_client");
    let wrong_user =
        token_request(&sso.url(), None, "grant_type=password&client_id=lamtim-client&username=operator&password=x")
            .await;
    assert_eq!(
        (wrong_user.status, wrong_user.json()["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_grant"))
    );

    let api = token_request(&apim.url(), Some(("bkn-key", "bkn-secret")), "grant_type=client_credentials").await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.json()["expires_in"], 3600);
    let api_token = api.json()["access_token"].as_str().unwrap().to_string();
    let user = token_request(
        &sso.url(),
        None,
        "grant_type=password&client_id=lamtim-client&username=operator&password=op-pass",
    )
    .await;
    let sso_token = user.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!((apim.issued(), sso.issued()), (1, 1));

    let url = format!("{}{BKN_API}/pns/data-utama/{BKN_NIP}", bkn.url());
    let siasn = |authorization: Option<String>, auth: Option<String>| {
        let mut request = Request::get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(value) = auth {
            request = request.header("auth", value);
        }
        call(request.body(empty()).unwrap())
    };
    let both = siasn(Some(format!("Bearer {api_token}")), Some(format!("bearer {sso_token}"))).await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.text());
    assert_eq!(both.json()["data"]["nipBaru"], BKN_NIP);
    assert_eq!(siasn(Some(format!("Bearer {api_token}")), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(siasn(None, Some(format!("bearer {sso_token}"))).await.status, StatusCode::UNAUTHORIZED);
    // Each token in the other's place is refused: the two come from different issuers.
    assert_eq!(
        siasn(Some(format!("Bearer {sso_token}")), Some(format!("bearer {api_token}"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    sso.expire_all();
    assert_eq!(
        siasn(Some(format!("Bearer {api_token}")), Some(format!("bearer {sso_token}"))).await.status,
        StatusCode::UNAUTHORIZED,
        "an expired SSO token is refused"
    );
    assert_eq!(bkn.refused(), 4);
}

#[tokio::test]
async fn dukcapil_double_answers_content_only_with_the_operator_credentials() {
    let credentials = DukcapilCredentials {
        user_id: "lamtim-operator".into(),
        password: "op-secret".into(),
        ip_user: "10.18.7.1".into(),
    };
    let dukcapil = DukcapilDouble::start(credentials).await;
    let post = |body: serde_json::Value| {
        call(
            Request::post(format!("{}{DUKCAPIL_CALL_NIK}", dukcapil.url()))
                .header("content-type", "application/json")
                .body(full(body.to_string()))
                .unwrap(),
        )
    };
    let without = post(serde_json::json!({"NIK": "1807015508900002"})).await;
    assert_eq!(without.status, StatusCode::OK);
    assert_eq!(without.json()["content"][0]["RESPON"], DUKCAPIL_REFUSED);
    let with = post(serde_json::json!({"NIK": "1807015508900002", "user_id": "lamtim-operator",
        "password": "op-secret", "IP_USER": "10.18.7.1"}))
    .await;
    assert_eq!(with.json()["content"][0]["NAMA_LGKP"], "SITI AMINAH");
    let unknown = post(serde_json::json!({"NIK": "1807019999990009", "user_id": "lamtim-operator",
        "password": "op-secret", "IP_USER": "10.18.7.1"}))
    .await;
    assert_eq!(unknown.json()["content"][0]["RESPON"], "Data Tidak Ditemukan");
    assert_eq!(dukcapil.bodies().len(), 3);
}

#[tokio::test]
async fn bsre_double_signs_a_multipart_upload_with_basic_credentials() {
    let bsre = BsreDouble::start("esign-lamtim", "basic-pass").await;
    let form = multipart_body(
        "x-boundary",
        &[
            ("file", Some("surat.pdf"), b"%PDF-1.7 surat keputusan"),
            ("nik", None, BSRE_SIGNER.0.as_bytes()),
            ("passphrase", None, BSRE_SIGNER.1.as_bytes()),
            ("tampilan", None, b"invisible"),
        ],
    );
    let sign = |basic: Option<&str>, body: Vec<u8>| {
        let mut request = Request::post(format!("{}/api/sign/pdf", bsre.url()))
            .header("content-type", "multipart/form-data; boundary=x-boundary");
        if let Some(b) = basic {
            request = request.header("authorization", format!("Basic {}", base64(b.as_bytes())));
        }
        call(request.body(full(body)).unwrap())
    };
    assert_eq!(sign(None, form.clone()).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sign(Some("esign-lamtim:wrong"), form.clone()).await.status, StatusCode::UNAUTHORIZED);
    let signed = sign(Some("esign-lamtim:basic-pass"), form).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text());
    assert!(signed.body.starts_with(BSRE_SIGNED_MARK));
    assert!(signed.body.ends_with(b"%PDF-1.7 surat keputusan"));
    let wrong_passphrase = multipart_body(
        "x-boundary",
        &[
            ("file", Some("surat.pdf"), b"%PDF"),
            ("nik", None, BSRE_SIGNER.0.as_bytes()),
            ("passphrase", None, b"no"),
            ("tampilan", None, b"invisible"),
        ],
    );
    let refused = sign(Some("esign-lamtim:basic-pass"), wrong_passphrase).await;
    assert_eq!((refused.status, refused.json()["status_code"].as_u64()), (StatusCode::BAD_REQUEST, Some(2031)));
    assert_eq!(bsre.signed(), [["file", "nik", "passphrase", "tampilan"]]);
}

// ---------------------------------------------------------------------------------------------------------
// The adapters through the real gateway.
// ---------------------------------------------------------------------------------------------------------

use std::collections::HashSet;
use std::path::Path;

use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki, TRUST_DOMAIN};

/// `[audit]` on, keys and NIK secret generated in the test directory.
const AUDIT_ON: &str = "[audit]\nenabled = true\ndir = \"audit\"\n";
/// The secrets store of these tests: files under the test directory's `secrets/`.
const SECRETS: &str = "\n[secrets]\ndir = \"secrets\"\n";

/// Writes `dir/secrets/{name}` with mode 0600.
fn write_secrets(dir: &Path, secrets: &[(&str, &str)]) {
    for (name, value) in secrets {
        write_secret(&dir.join("secrets"), name, value);
    }
}

/// Every file under `dir`, concatenated (audit segments, logs), as text.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out
}

/// `penghubung audit search LOG --nik NIK --secret-file SECRET`: the records found.
fn audit_search_nik(log: &Path, nik: &str, secret: &Path) -> Vec<serde_json::Value> {
    let output = std::process::Command::new(penghubung_binary())
        .args(["audit", "search"])
        .arg(log)
        .args(["--nik", nik, "--secret-file"])
        .arg(secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

const DUKCAPIL_OPERATIONS: &str = "\n[[operations]]\nid = \"cek-nik\"\nmethod = \"POST\"\npath = \"/CALL_NIK\"\n\
    request.schema = \"nasional/dukcapil-call-nik-permintaan.schema.json\"\n\
    responses.\"200\".schema = \"nasional/dukcapil-call-nik.schema.json\"\n\
    responses.\"404\".schema = \"pesan.schema.json\"\n\
    \n[[operations]]\nid = \"verifikasi\"\nmethod = \"POST\"\npath = \"/CALL_VERIFY_BY_ELEMEN\"\n\
    request.schema = \"nasional/dukcapil-verify-by-elemen-permintaan.schema.json\"\n\
    responses.\"200\".schema = \"nasional/dukcapil-verify-by-elemen.schema.json\"\n\
    responses.\"404\".schema = \"pesan.schema.json\"\n";

/// The documented schemas of the `dukcapil` adapter, as store documents.
fn dukcapil_schemas() -> Vec<(String, String)> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/national");
    let read = |name: &str| std::fs::read_to_string(docs.join(name)).unwrap();
    let pesan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/schemas/pesan.schema.json");
    vec![
        ("schemas/nasional/dukcapil-call-nik.schema.json".into(), read("dukcapil-call-nik.schema.json")),
        (
            "schemas/nasional/dukcapil-call-nik-permintaan.schema.json".into(),
            read("dukcapil-call-nik-request.schema.json"),
        ),
        (
            "schemas/nasional/dukcapil-verify-by-elemen.schema.json".into(),
            read("dukcapil-verify-by-elemen.schema.json"),
        ),
        (
            "schemas/nasional/dukcapil-verify-by-elemen-permintaan.schema.json".into(),
            read("dukcapil-verify-by-elemen-request.schema.json"),
        ),
        ("schemas/pesan.schema.json".into(), std::fs::read_to_string(pesan).unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dukcapil_adapter_injects_the_operator_credentials_and_maps_content_zero_under_the_policy() {
    let operator = DukcapilCredentials {
        user_id: "lamtim-operator-7".into(),
        password: "kata-sandi-operator-rahasia".into(),
        ip_user: "10.18.7.10".into(),
    };
    let dukcapil = DukcapilDouble::start(operator.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    write_secrets(
        dir.path(),
        &[
            ("dukcapil-user-id", &operator.user_id),
            ("dukcapil-password", &operator.password),
            ("dukcapil-salah", "bukan-ini"),
        ],
    );
    let endpoint = format!("{}/dukcapil/get_json/LAMTIM", dukcapil.url());
    let adapter = |password: &str| {
        format!(
            "\n[adapter]\nname = \"dukcapil\"\nmax_body = \"16KiB\"\n\n[adapter.settings]\n\
             user_id = {{ secret = \"dukcapil-user-id\" }}\npassword = {{ secret = \"{password}\" }}\nip_user = \"10.18.7.10\"\n"
        )
    };
    let mut documents = vec![
        docs::opd("disdukcapil"),
        docs::opd("dinkes"),
        docs::service(
            "disdukcapil",
            "dukcapil-pusat",
            std::slice::from_ref(&endpoint),
            &adapter("dukcapil-password"),
            DUKCAPIL_OPERATIONS,
        ),
        docs::service(
            "disdukcapil",
            "dukcapil-salah",
            std::slice::from_ref(&endpoint),
            &adapter("dukcapil-salah"),
            DUKCAPIL_OPERATIONS,
        ),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("simpus-pusat", "dinkes/simpus", "disdukcapil/dukcapil-pusat/v1", &["cek-nik", "verifikasi"]),
        docs::grant("simpus-salah", "dinkes/simpus", "disdukcapil/dukcapil-salah/v1", &["cek-nik"]),
        docs::unlimited_tier(),
    ];
    documents.extend(dukcapil_schemas());
    let config = write_mtls_setup(dir.path(), &documents, &pki, &format!("{AUDIT_ON}{SECRETS}"));
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let simpus = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinkes", "simpus"))));
    let base = format!("https://{}/disdukcapil", gateway.local_addrs()[0]);
    let post = |service: &str, request_id: &str, body: serde_json::Value| {
        Request::post(format!("{base}/{service}/v1/CALL_NIK"))
            .header("content-type", "application/json")
            .header("x-penghubung-purpose", "pelayanan-kesehatan")
            .header("x-request-id", request_id)
            .body(full(body.to_string()))
            .unwrap()
    };

    // The caller sends the NIK only; Dukcapil gets its names and the operator credentials.
    let found = send(&simpus, post("dukcapil-pusat", "cek-siti", serde_json::json!({"nik": "1807015508900002"}))).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text());
    assert_eq!(
        dukcapil.bodies(),
        [serde_json::json!({"NIK": "1807015508900002", "user_id": operator.user_id, "password": operator.password,
            "IP_USER": "10.18.7.10"})]
    );
    // content[0] in lower case, held to the documented schema: SIMPUS (rahasia) sees the rahasia fields, not the
    // mother's name (sangat_rahasia).
    let record = found.json();
    assert_eq!(record["nik"], "1807015508900002");
    assert_eq!(record["nama_lgkp"], "SITI AMINAH");
    assert_eq!(record["agama"], "ISLAM");
    assert!(record.get("nama_lgkp_ibu").is_none(), "{record}");
    assert!(record.get("content").is_none() && record.get("NAMA_LGKP").is_none(), "{record}");
    assert_eq!(found.headers["x-penghubung-redacted"], "/nama_lgkp_ibu");

    // A caller that tries to send credentials of its own is refused by the contract; Dukcapil sees nothing.
    let smuggled = serde_json::json!({"nik": "1807015508900002", "password": "dari-aplikasi"});
    let refused = send(&simpus, post("dukcapil-pusat", "selundup", smuggled)).await;
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "contract.request_invalid"));
    assert_eq!(dukcapil.bodies().len(), 1);

    // RESPON "Data Tidak Ditemukan" → 404 {"pesan"}; wrong operator credentials → 502 adapter.upstream_refused.
    let unknown =
        send(&simpus, post("dukcapil-pusat", "tidak-ada", serde_json::json!({"nik": "1807016501950004"}))).await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (StatusCode::NOT_FOUND, serde_json::json!({"pesan": "NIK tidak ditemukan"}))
    );
    let wrong = send(&simpus, post("dukcapil-salah", "salah", serde_json::json!({"nik": "1807015508900002"}))).await;
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (StatusCode::BAD_GATEWAY, "adapter.upstream_refused"),
        "{}",
        wrong.text()
    );
    assert_eq!(dukcapil.bodies()[2]["password"], "bukan-ini");
    // Verification by elements: one verdict per element sent, nothing personal comes back.
    let verify = Request::post(format!("{base}/dukcapil-pusat/v1/CALL_VERIFY_BY_ELEMEN"))
        .header("content-type", "application/json")
        .header("x-request-id", "verifikasi-siti")
        .body(full(r#"{"nik":"1807015508900002","treshold":"90","nama_lgkp":"SITI AMINAH","tgl_lhr":"15-08-1991"}"#))
        .unwrap();
    let verdict = send(&simpus, verify).await;
    assert_eq!(verdict.status, StatusCode::OK, "{}", verdict.text());
    assert_eq!(
        verdict.json(),
        serde_json::json!({"nik": "Sesuai", "nama_lgkp": "Sesuai (100)", "tgl_lhr": "Tidak Sesuai (0)"})
    );
    assert_eq!(dukcapil.bodies()[3]["TRESHOLD"], "90");
    assert_eq!(dukcapil.bodies()[3]["IP_USER"], "10.18.7.10");
    for answer in [&found, &refused, &unknown, &wrong, &verdict] {
        for secret in [&operator.password, &operator.user_id, "bukan-ini"] {
            assert!(!answer.text().contains(secret), "an answer holds a credential: {}", answer.text());
        }
    }

    // The audit holds the NIK only as an HMAC, and no credential.
    assert!(gateway.auditor().unwrap().checkpoint().await);
    let log = dir.path().join("audit");
    let audit = all_text(&log);
    for clear in ["1807015508900002", &operator.password, &operator.user_id, "bukan-ini"] {
        assert!(!audit.contains(clear), "the audit holds `{clear}` in clear");
    }
    let by_nik = audit_search_nik(&log, "1807015508900002", &dir.path().join("pki/audit-nik.secret"));
    let ids: HashSet<&str> = by_nik.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from(["cek-siti", "salah", "verifikasi-siti"]), "{by_nik:#?}");
    let siti = by_nik.iter().find(|r| r["request_id"] == "cek-siti").unwrap();
    assert_eq!(
        (&siti["service"], &siti["withheld"]),
        (&"disdukcapil/dukcapil-pusat/v1".into(), &"/nama_lgkp_ibu".into())
    );
    let salah = by_nik.iter().find(|r| r["request_id"] == "salah").unwrap();
    assert_eq!(salah["code"], "adapter.upstream_refused");
}

/// Starts an in-process gateway over plaintext (policy off) with `secrets` written first.
async fn gateway_with_secrets(documents: &[(String, String)], secrets: &[(&str, &str)]) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path(), secrets);
    let path = write_setup(dir.path(), documents, SECRETS);
    let config = penghubung::Config::load(&path).unwrap_or_else(|p| panic!("config: {p:?}"));
    let gateway = match penghubung::Gateway::start(config).await {
        Ok(gateway) => gateway,
        Err(e) => panic!("start: {e}\n{}", run_cli(&path, &["check"]).1),
    };
    let addr = gateway.local_addrs()[0];
    TestGateway { gateway: Some(gateway), dir, url: format!("http://{addr}"), addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bkn_adapter_sends_both_tokens_each_cached_and_refreshed_on_its_own() {
    let apim = TokenServer::client_credentials(
        "apim",
        "lamtim-consumer-key",
        "lamtim-consumer-secret",
        Duration::from_secs(3600),
    )
    .await;
    // The SSO's tokens live 2 s: expired before the second call, while the API manager's is still good.
    let sso = TokenServer::keycloak_password(
        "sso",
        "public-siasn",
        ("lamtim-client", "operator-lamtim", "sandi-sso-operator"),
        Duration::from_secs(2),
    )
    .await;
    let bkn = BknDouble::start(apim.check(), sso.check()).await;
    let settings = format!(
        "\n[adapter]\nname = \"bkn-siasn\"\n\n[adapter.settings]\ntoken_url = \"{}\"\n\
         consumer_key = {{ secret = \"bkn-key\" }}\nconsumer_secret = {{ secret = \"bkn-secret\" }}\n\
         sso_token_url = \"{}\"\nsso_client_id = \"lamtim-client\"\n\
         sso_username = {{ secret = \"bkn-sso-user\" }}\nsso_password = {{ secret = \"bkn-sso-password\" }}\n",
        apim.url(),
        sso.url()
    );
    let endpoint = format!("{}{BKN_API}", bkn.url());
    let documents = [docs::opd("bkd"), docs::service("bkd", "siasn", &[endpoint], &settings, "")];
    let gateway = gateway_with_secrets(
        &documents,
        &[
            ("bkn-key", "lamtim-consumer-key"),
            ("bkn-secret", "lamtim-consumer-secret"),
            ("bkn-sso-user", "operator-lamtim"),
            ("bkn-sso-password", "sandi-sso-operator"),
        ],
    )
    .await;
    let url = format!("{}/bkd/siasn/v1/pns/data-utama/{BKN_NIP}", gateway.url);
    // The caller's own credentials are replaced, not forwarded (the double would refuse them).
    let call = || {
        let request = Request::get(&url)
            .header("authorization", "Bearer dari-aplikasi")
            .header("auth", "bearer dari-aplikasi")
            .body(empty())
            .unwrap();
        async { send(&http1_client(), request).await }
    };

    let first = call().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.json()["data"]["nipBaru"], BKN_NIP);
    assert_eq!((apim.issued(), sso.issued()), (1, 1));
    assert_eq!(call().await.status, StatusCode::OK);
    assert_eq!((apim.issued(), sso.issued()), (1, 1), "both tokens cached");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(call().await.status, StatusCode::OK);
    assert_eq!((apim.issued(), sso.issued()), (1, 2), "only the SSO token was refreshed");
    assert_eq!(bkn.refused(), 0, "refreshed before use, never sent expired");

    // SIASN revokes the SSO token mid-flight: one 401, both tokens dropped, one retry with fresh ones.
    sso.set_lifetime(Duration::from_secs(3600));
    sso.expire_all();
    let retried = call().await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text());
    assert_eq!(bkn.refused(), 1);
    assert_eq!((apim.issued(), sso.issued()), (2, 3));
    let seen = bkn.upstream.seen();
    assert!(seen
        .iter()
        .all(|r| r.headers["authorization"] != "Bearer dari-aplikasi" && r.headers["auth"] != "bearer dari-aplikasi"));

    // The SSO endpoint down with no token cached: 503 adapter.token_unavailable with Retry-After.
    sso.set_down(true);
    sso.expire_all();
    let down = call().await;
    assert_eq!(
        (down.status, down.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "adapter.token_unavailable"),
        "{}",
        down.text()
    );
    assert!(down.headers.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsre_adapter_holds_the_account_and_the_passphrase_reaches_only_bsre() {
    let bsre = BsreDouble::start("esign-lamtim", "sandi-akun-esign").await;
    let dir = tempfile::tempdir().unwrap();
    write_secrets(
        dir.path(),
        &[("bsre-user", "esign-lamtim"), ("bsre-password", "sandi-akun-esign"), ("bsre-salah", "salah-sandi")],
    );
    let adapter = |password: &str| {
        format!(
            "\n[adapter]\nname = \"bsre\"\n\n[adapter.settings]\nusername = {{ secret = \"bsre-user\" }}\n\
             password = {{ secret = \"{password}\" }}\n"
        )
    };
    let documents = [
        docs::opd("diskominfo"),
        docs::service("diskominfo", "tte", &[bsre.url()], &adapter("bsre-password"), ""),
        docs::service("diskominfo", "tte-salah", &[bsre.url()], &adapter("bsre-salah"), ""),
    ];
    let config = write_setup(dir.path(), &documents, &format!("{AUDIT_ON}{SECRETS}\n[log]\nlevel = \"debug\"\n"));
    let gateway = GatewayProcess::start(&config);
    let form = multipart_body(
        "batas-tte",
        &[
            ("file", Some("sk-bupati.pdf"), b"%PDF-1.7 SK Bupati Lampung Timur"),
            ("nik", None, BSRE_SIGNER.0.as_bytes()),
            ("passphrase", None, BSRE_SIGNER.1.as_bytes()),
            ("tampilan", None, b"invisible"),
        ],
    );
    let sign = |service: &str, authorization: Option<&str>| {
        let mut request = Request::post(format!("{}/diskominfo/{service}/v1/api/sign/pdf", gateway.url))
            .header("content-type", "multipart/form-data; boundary=batas-tte")
            .header("x-request-id", service.to_string());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(full(form.clone())).unwrap();
        async { send(&http1_client(), request).await }
    };

    let signed = sign("tte", Some("Basic ZGFyaTphcGxpa2FzaQ==")).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text());
    assert_eq!(signed.headers["content-type"], "application/pdf");
    assert!(signed.body.starts_with(BSRE_SIGNED_MARK) && signed.body.ends_with(b"SK Bupati Lampung Timur"));
    assert_eq!(bsre.signed(), [["file", "nik", "passphrase", "tampilan"]]);
    let refused = sign("tte-salah", None).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::BAD_GATEWAY, "adapter.upstream_refused"),
        "{}",
        refused.text()
    );
    // The signer's status, the NIK in the path.
    let status = Request::get(format!("{}/diskominfo/tte/v1/api/user/status/{}", gateway.url, BSRE_SIGNER.0))
        .header("x-request-id", "status-penanda-tangan")
        .body(empty())
        .unwrap();
    let status = send(&http1_client(), status).await;
    assert_eq!((status.status, status.json()["status"].as_str()), (StatusCode::OK, Some("ISSUE")), "{}", status.text());

    // Stop the gateway (its audit trail is flushed), then look for the passphrase, the NIK and the account.
    gateway.signal("TERM");
    let mut gateway = gateway;
    let _ = gateway.child.wait();
    let log = gateway.log();
    assert!(log.contains("tte"), "the log has the exchanges:\n{log}");
    let audit = all_text(&dir.path().join("audit"));
    for clear in [BSRE_SIGNER.1, BSRE_SIGNER.0, "sandi-akun-esign", "salah-sandi"] {
        assert!(!log.contains(clear), "the log holds `{clear}`:\n{log}");
        assert!(!audit.contains(clear), "the audit holds `{clear}`");
    }
    let by_nik = audit_search_nik(&dir.path().join("audit"), BSRE_SIGNER.0, &dir.path().join("pki/audit-nik.secret"));
    let ids: HashSet<&str> = by_nik.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        HashSet::from(["tte", "tte-salah", "status-penanda-tangan"]),
        "the multipart nik (and the path's) is recorded as an HMAC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_reaches_the_national_doubles_with_credentials_only_the_gateway_holds() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("demo");
    let mut child = std::process::Command::new(penghubung_binary())
        .args(["demo", "--listen", "127.0.0.1:0", "--workdir"])
        .arg(&workdir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut printed = String::new();
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap_or(0) > 0 {
            printed.push_str(&line);
            if line.starts_with("Stop with Ctrl-C.") {
                break;
            }
            line.clear();
        }
        let _ = tx.send(printed);
        std::io::copy(&mut stdout, &mut std::io::sink()).ok();
    });
    let printed = rx.await.unwrap();
    let env: std::collections::HashMap<String, String> = std::fs::read_to_string(workdir.join("demo.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let read = |key: &str| std::fs::read_to_string(&env[key]).unwrap();
    let identity = penghubung::ca::Issued {
        cert_pem: read("PENGHUBUNG_CERT"),
        key_pem: read("PENGHUBUNG_KEY"),
        serial_hex: String::new(),
        spiffe: None,
    };
    let client = https_client(client_config(&read("PENGHUBUNG_CACERT"), Some(&identity)));
    let url = &env["PENGHUBUNG_URL"];

    // Through the splp adapter to the SPLP double (token fetched by the gateway).
    let sample = &env["PENGHUBUNG_SAMPLE_NASIONAL"];
    let region = send(&client, Request::get(format!("{url}{sample}")).body(empty()).unwrap()).await;
    assert_eq!(region.status, StatusCode::OK, "{}", region.text());
    assert_eq!(region.json()["nama"], "KAB. LAMPUNG TIMUR");
    // Through the dukcapil adapter to the Dukcapil double, as the printed instructions show it.
    let nik_path = "/disdukcapil/dukcapil-pusat/v1/CALL_NIK";
    assert!(printed.contains(nik_path), "{printed}");
    let request = Request::post(format!("{url}{nik_path}"))
        .header("content-type", "application/json")
        .body(full(r#"{"nik":"1807015508900002"}"#))
        .unwrap();
    let resident = send(&client, request).await;
    assert_eq!(resident.status, StatusCode::OK, "{}", resident.text());
    assert_eq!(resident.json()["nama_lgkp"], "SITI AMINAH");
    assert_eq!(resident.headers["x-penghubung-redacted"], "/nama_lgkp_ibu");

    // The national credentials are secret files (0600) the gateway reads; the client's side has none of them.
    use std::os::unix::fs::PermissionsExt as _;
    let mut secrets = Vec::new();
    for entry in std::fs::read_dir(workdir.join("secrets")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        secrets.push(std::fs::read_to_string(&path).unwrap());
    }
    assert_eq!(secrets.len(), 4);
    let client_side = format!(
        "{printed}{}{}{}{}",
        std::fs::read_to_string(workdir.join("demo.env")).unwrap(),
        all_text(&workdir.join("clients")),
        all_text(&workdir.join("policies")),
        region.text() + &resident.text()
    );
    for secret in &secrets {
        assert!(!client_side.contains(secret.as_str()), "a national credential is outside the secrets store");
    }
    drop(client);
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
}
