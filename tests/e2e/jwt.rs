//! National callers with OAuth2/JWT bearer tokens, over real TLS against a real JWKS server: a listener with
//! `client_certificate = "optional"` takes a caller without a certificate when its token verifies; the token
//! maps to a Client document whose grants apply; every kind of bad token is refused with 401 and its own code
//! (nothing reaches the upstream); keys rotate through a refresh on an unknown `kid` that is single-flight and
//! cooled down; keys that cannot be fetched fail closed; a certificate still wins over a token; the caller's
//! `Authorization` never goes upstream, and no token lands in the log or the audit trail.

use std::time::Duration;

use http::Request;
use penghubung_tests::jwt::{self, claims, hs256_token, issuer_section, unsigned_token, JwksServer, SigningKey};
use penghubung_tests::mtls::{client_config, https_client, Pki, TRUST_DOMAIN};
use penghubung_tests::{docs, empty, send, Collected, GatewayProcess, TestGateway, Upstream};
use serde_json::json;

/// The subject the test issuer gives the national caller.
const SUBJECT: &str = "splp-client-bkn";

/// The documents: `dinkes/rm` with a read and a delete operation; the national caller `nasional/splp`, bound to
/// the token subject and granted the read only; the mTLS client `dinkes/simpus`, granted everything.
fn documents(upstream: &Upstream) -> Vec<(String, String)> {
    let operations = format!(
        "{}{}",
        docs::operation("baca-pasien", "GET", "/pasien/{id}"),
        docs::operation("hapus-pasien", "DELETE", "/pasien/{id}")
    );
    let national = (
        "clients/nasional/splp.toml".to_string(),
        format!(
            "id = \"nasional/splp\"\nopd = \"nasional\"\nname = \"SPLP\"\nclearance = \"rahasia\"\nenabled = true\n\n[[identity.jwt]]\nissuer = \"splp\"\nsubject = \"{SUBJECT}\"\n"
        ),
    );
    vec![
        docs::opd("dinkes"),
        docs::opd("nasional"),
        docs::service("dinkes", "rm", &[upstream.url()], "", &operations),
        national,
        docs::client("dinkes", "simpus", &format!("spiffe://{TRUST_DOMAIN}/opd/dinkes/app/simpus"), true),
        docs::grant("splp-rm", "nasional/splp", "dinkes/rm/v1", &["baca-pasien"]),
        docs::grant("simpus-rm", "dinkes/simpus", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ]
}

/// Writes the setup: one TLS listener where the client certificate is optional, the issuer `splp` fetching its
/// keys from `jwks`, `extra` appended to the config.
fn write(dir: &std::path::Path, upstream: &Upstream, jwks: &JwksServer, issuer_extra: &str, extra: &str) -> Pki {
    let pki = Pki::new(dir);
    let config_extra = format!("{}\n{}\n{extra}", pki.tls_section(), issuer_section(&jwks.url(), issuer_extra));
    penghubung_tests::write_config(dir, &documents(upstream), "client_certificate = \"optional\"\n", &config_extra);
    pki
}

/// The gateway in process over [`write`]'s setup.
async fn start(upstream: &Upstream, jwks: &JwksServer, issuer_extra: &str) -> (TestGateway, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = write(dir.path(), upstream, jwks, issuer_extra, "");
    let config = penghubung::Config::load(&dir.path().join("penghubung.toml")).unwrap_or_else(|p| panic!("{p:?}"));
    let gateway = penghubung::Gateway::start(config).await.unwrap();
    let addr = gateway.local_addrs()[0];
    (TestGateway { gateway: Some(gateway), dir, url: format!("https://{addr}"), addr }, pki)
}

/// Sends `method path` without a client certificate, with `Authorization: Bearer token` when given.
async fn call(gw: &TestGateway, pki: &Pki, method: &str, path: &str, token: Option<&str>) -> Collected {
    let client = https_client(client_config(&pki.ca_pem(), None));
    let mut request = Request::builder().method(method).uri(format!("{}{path}", gw.url));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(&client, request.body(empty()).unwrap()).await
}

/// A refused token: 401 (or the given status), the code, and the RFC 6750 challenge.
fn assert_refused(response: &Collected, code: &str, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.text());
    assert_eq!(response.code(), code, "{what}: {}", response.text());
    let challenge = response.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
    if code != "identity.token_missing" {
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
    }
}

#[tokio::test]
async fn a_token_maps_to_its_client_whose_grants_apply_and_authorization_stays_behind() {
    let up = Upstream::text("ok").await;
    let (rsa, ec) = (SigningKey::rsa("rsa-a", "rsa-2026-01"), SigningKey::ec("ec-2026-01"));
    let jwks = JwksServer::start(&[&rsa, &ec]).await;
    let (gw, pki) = start(&up, &jwks, "").await;

    for key in [&rsa, &ec] {
        let token = key.sign(&claims(SUBJECT));
        let r = call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&token)).await;
        assert_eq!(r.status, 200, "{}: {}", key.alg(), r.text());
        // The granted client's identity goes upstream; the caller's token does not.
        let seen = up.seen().pop().unwrap();
        assert_eq!(seen.headers["x-penghubung-client"], "nasional/splp");
        assert_eq!(seen.headers["x-penghubung-opd"], "nasional");
        assert!(seen.headers.get("authorization").is_none(), "the token went upstream: {:?}", seen.headers);
        // The grant covers the read only: the delete is refused by the policy.
        let r = call(&gw, &pki, "DELETE", "/dinkes/rm/v1/pasien/7", Some(&token)).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.code().starts_with("policy."), "{}", r.text());
    }
    assert_eq!(up.hits(), 2, "the refused deletes never reached the upstream");
    // The same over HTTP/2 (ALPN h2 on the same listener).
    let client = https_client(client_config(&pki.ca_pem(), None));
    let request = Request::get(format!("{}/dinkes/rm/v1/pasien/7", gw.url))
        .version(http::Version::HTTP_2)
        .header("authorization", format!("Bearer {}", ec.sign(&claims(SUBJECT))))
        .body(empty())
        .unwrap();
    let r = send(&client, request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.headers["x-penghubung-client"], "nasional/splp");
    assert!(seen.headers.get("authorization").is_none());

    // A valid token for a subject no client is bound to: 403, like an unknown certificate.
    let r = call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&rsa.sign(&claims("someone-else")))).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (403, "identity.unknown_client"), "{}", r.text());
    // Within the allowed clock skew an expired token still passes; the health endpoint needs no token.
    let mut late = claims(SUBJECT);
    late["exp"] = json!(jwt::now() - 20);
    let r = call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&rsa.sign(&late))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(call(&gw, &pki, "GET", "/_penghubung/health", None).await.status, 200);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_their_own_code() {
    let up = Upstream::text("ok").await;
    let rsa = SigningKey::rsa("rsa-a", "rsa-2026-01");
    let jwks = JwksServer::start(&[&rsa]).await;
    let (gw, pki) = start(&up, &jwks, "").await;
    let path = "/dinkes/rm/v1/pasien/7";
    let now = jwt::now();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = claims(SUBJECT);
        c[key] = value;
        c
    };
    let other_key = SigningKey::rsa("rsa-b", "rsa-2026-01");
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned_token(&claims(SUBJECT)), "identity.token_algorithm"),
        ("alg none with a signature", format!("{}sig", unsigned_token(&claims(SUBJECT))), "identity.token_algorithm"),
        (
            "HS256 keyed with the RSA public key (key confusion)",
            hs256_token(rsa.kid(), &rsa.rsa_modulus(), &claims(SUBJECT)),
            "identity.token_algorithm",
        ),
        (
            "RS256 header on the key, ES256 named",
            rsa.sign_with_header(&json!({"alg": "ES256", "kid": rsa.kid()}), &claims(SUBJECT)),
            "identity.token_algorithm",
        ),
        ("expired beyond the skew", rsa.sign(&with("exp", json!(now - 300))), "identity.token_expired"),
        ("not yet valid beyond the skew", rsa.sign(&with("nbf", json!(now + 300))), "identity.token_not_yet_valid"),
        ("wrong audience", rsa.sign(&with("aud", json!("another-gateway"))), "identity.token_audience"),
        ("wrong issuer", rsa.sign(&with("iss", json!("https://evil.example/"))), "identity.token_issuer"),
        (
            "unknown kid after refresh",
            SigningKey::rsa("rsa-b", "not-published").sign(&claims(SUBJECT)),
            "identity.token_unknown_key",
        ),
        ("signed by another key under a published kid", other_key.sign(&claims(SUBJECT)), "identity.token_signature"),
        (
            "no expiry",
            rsa.sign(&json!({"iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "sub": SUBJECT})),
            "identity.token_malformed",
        ),
        ("malformed", "not-a-jwt".to_string(), "identity.token_malformed"),
        ("four segments", format!("{}.x", rsa.sign(&claims(SUBJECT))), "identity.token_malformed"),
    ];
    for (what, token, code) in &cases {
        let r = call(&gw, &pki, "GET", path, Some(token)).await;
        assert_refused(&r, code, what);
        assert!(!r.text().contains(token.as_str()), "{what}: the token is echoed: {}", r.text());
    }
    assert_refused(&call(&gw, &pki, "GET", path, None).await, "identity.token_missing", "no token");
    assert_eq!(up.hits(), 0, "no refused token reaches the upstream");
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_the_refresh_an_unknown_kid_triggers() {
    let up = Upstream::text("ok").await;
    let old = SigningKey::rsa("rsa-a", "2026-01");
    let jwks = JwksServer::start(&[&old]).await;
    let (gw, pki) = start(&up, &jwks, "refresh_cooldown = \"60s\"").await;
    let path = "/dinkes/rm/v1/pasien/7";
    assert_eq!(call(&gw, &pki, "GET", path, Some(&old.sign(&claims(SUBJECT)))).await.status, 200);
    let fetched = jwks.fetches();

    // The issuer rotates to a new key and retires the old one.
    let new = SigningKey::ec("2026-02");
    jwks.rotate(&[&new]);
    let r = call(&gw, &pki, "GET", path, Some(&new.sign(&claims(SUBJECT)))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwks.fetches(), fetched + 1, "one refresh brought the new key");
    // The old key is gone with the refresh.
    assert_refused(
        &call(&gw, &pki, "GET", path, Some(&old.sign(&claims(SUBJECT)))).await,
        "identity.token_unknown_key",
        "retired key",
    );
    assert_eq!(jwks.fetches(), fetched + 1, "within the cool-down no token makes the gateway fetch again");
}

#[tokio::test]
async fn unknown_kids_make_one_fetch_per_cool_down_however_many_callers_send_them() {
    let up = Upstream::text("ok").await;
    let key = SigningKey::rsa("rsa-a", "2026-01");
    let jwks = JwksServer::start(&[&key]).await;
    let (gw, pki) = start(&up, &jwks, "refresh_cooldown = \"60s\"").await;
    let fetched = jwks.fetches();
    assert_eq!(fetched, 1, "the key set is fetched once at start");
    let gw = std::sync::Arc::new(gw);
    let pki = std::sync::Arc::new(pki);
    for round in 0..2 {
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (gw, pki) = (std::sync::Arc::clone(&gw), std::sync::Arc::clone(&pki));
                let token = SigningKey::ec(&format!("ghost-{round}-{i}")).sign(&claims(SUBJECT));
                tokio::spawn(async move { call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&token)).await })
            })
            .collect();
        for c in calls {
            assert_refused(&c.await.unwrap(), "identity.token_unknown_key", "ghost kid");
        }
        assert_eq!(jwks.fetches(), fetched + 1, "round {round}: 20 concurrent unknown kids, one fetch in all");
    }
    // Known keys keep working meanwhile.
    assert_eq!(call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&key.sign(&claims(SUBJECT)))).await.status, 200);
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_fail_closed_until_the_endpoint_recovers() {
    let up = Upstream::text("ok").await;
    let key = SigningKey::ec("2026-01");
    let jwks = JwksServer::start(&[&key]).await;
    jwks.set_broken(true);
    let (gw, pki) = start(&up, &jwks, "refresh_cooldown = \"1s\"").await;
    let token = key.sign(&claims(SUBJECT));
    let r = call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&token)).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code(), "identity.token_keys_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(up.hits(), 0);

    jwks.set_broken(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&token)).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.code(), "identity.token_keys_unavailable", "{}", r.text());
        assert!(tokio::time::Instant::now() < deadline, "the keys were never fetched again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_certificate_wins_over_a_token_and_neither_goes_upstream() {
    let up = Upstream::text("ok").await;
    let key = SigningKey::rsa("rsa-a", "2026-01");
    let jwks = JwksServer::start(&[&key]).await;
    let (gw, pki) = start(&up, &jwks, "").await;
    let simpus = pki.client("dinkes", "simpus");
    let client = https_client(client_config(&pki.ca_pem(), Some(&simpus)));
    let request = Request::delete(format!("{}/dinkes/rm/v1/pasien/7", gw.url))
        .header("authorization", format!("Bearer {}", key.sign(&claims(SUBJECT))))
        .body(empty())
        .unwrap();
    // The certificate's client (granted everything) decides, not the token's (granted the read only).
    let r = send(&client, request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.headers["x-penghubung-client"], "dinkes/simpus");
    assert!(seen.headers.get("authorization").is_none());
    // A certificate from no trusted CA is still refused in the handshake on this listener.
    let rogue =
        penghubung::ca::CertificateAuthority::init(&gw.dir.path().join("rogue"), TRUST_DOMAIN, "Rogue").unwrap();
    let rogue_client = rogue.issue_client("dinkes", "simpus", penghubung::ca::Validity::days(1)).unwrap();
    let outcome = penghubung_tests::mtls::request_status(
        gw.addr,
        client_config(&pki.ca_pem(), Some(&rogue_client)),
        "/dinkes/rm/v1/pasien/7",
    )
    .await;
    assert!(outcome.is_err(), "a foreign certificate must be refused: {outcome:?}");
}

// Multi-threaded: the JWKS server must answer while this thread waits for the gateway process to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_lands_in_the_log_or_the_audit_trail() {
    let up = Upstream::text("ok").await;
    let key = SigningKey::rsa("rsa-a", "2026-01");
    let jwks = JwksServer::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = "[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 1\n";
    let pki = write(dir.path(), &up, &jwks, "", audit);
    let gateway = GatewayProcess::start(&dir.path().join("penghubung.toml"));
    let gw = TestGateway { gateway: None, dir, url: format!("https://{}", gateway.addr), addr: gateway.addr };
    let good = key.sign(&claims(SUBJECT));
    let expired =
        key.sign(&json!({"iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "sub": SUBJECT, "exp": jwt::now() - 3600}));
    let ghost = SigningKey::ec("ghost").sign(&claims(SUBJECT));
    assert_eq!(call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&good)).await.status, 200);
    assert_eq!(call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&expired)).await.status, 401);
    assert_eq!(call(&gw, &pki, "GET", "/dinkes/rm/v1/pasien/7", Some(&ghost)).await.status, 401);
    gateway.signal("TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline && !gateway.log().contains("bye") {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut written = gateway.log();
    assert!(written.contains("token signing keys loaded"), "{written}");
    let mut stack = vec![gw.dir.path().join("audit")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                written.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    assert!(written.contains("nasional/splp"), "the audit trail names the national caller's client");
    for token in [&good, &expired, &ghost] {
        for part in token.split('.') {
            assert!(!written.contains(part), "a token segment was written to the log or the audit trail");
        }
    }
}

#[tokio::test]
async fn a_client_binding_an_untrusted_issuer_or_a_taken_subject_does_not_load() {
    let up = Upstream::text("ok").await;
    let key = SigningKey::rsa("rsa-a", "2026-01");
    let jwks = JwksServer::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &up, &jwks, "", "");
    let store = dir.path().join("policies/clients/nasional");
    std::fs::write(
        store.join("ghost.toml"),
        "id = \"nasional/ghost\"\nopd = \"nasional\"\nname = \"Ghost\"\nclearance = \"terbuka\"\n\n[[identity.jwt]]\nissuer = \"ghost-idp\"\nsubject = \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        store.join("twin.toml"),
        format!("id = \"nasional/twin\"\nopd = \"nasional\"\nname = \"Twin\"\nclearance = \"terbuka\"\n\n[[identity.jwt]]\nissuer = \"splp\"\nsubject = \"{SUBJECT}\"\n"),
    )
    .unwrap();
    let config = penghubung::Config::load(&dir.path().join("penghubung.toml")).unwrap();
    let Err(penghubung::StartError::Documents(problems)) = penghubung::Gateway::start(config).await else {
        panic!("the documents must not load");
    };
    let all = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n");
    assert!(all.contains("issuer `ghost-idp` is not one of the config's [[jwt_issuers]]"), "{all}");
    assert!(all.contains(&format!("token subject `{SUBJECT}` of issuer `splp` is already bound")), "{all}");
}
