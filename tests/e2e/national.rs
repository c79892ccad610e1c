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
        request = request
            .header("authorization", format!("Basic {}", base64_encode(format!("{user}:{password}").as_bytes())));
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
            request = request.header("authorization", format!("Basic {}", base64_encode(b.as_bytes())));
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
