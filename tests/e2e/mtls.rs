//! mTLS on every call, over real handshakes: missing, foreign, expired and revoked certificates are refused;
//! a valid certificate bound to no client gets 403; revocation and disabling bite on open connections; the
//! upstream sees the gateway's identity headers, never the caller's; TLS 1.1 is refused; certificates rotate
//! without restart; HTTPS upstreams are verified and can be called with the gateway's client certificate.

use std::time::Duration;

use http::{Request, Response};
use penghubung::ca::{CertificateAuthority, Validity};
use penghubung_tests::mtls::{
    client_config, client_config_with_versions, https_client, request_status, server_config, write_mtls_setup, Pki,
    TlsConnection, TRUST_DOMAIN,
};
use penghubung_tests::{docs, empty, full, send, GatewayProcess, TestGateway, Upstream};
use rustls::pki_types::pem::PemObject;

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

/// A gateway with mTLS in front of one service, and a registered client `dinkes/simpus`.
async fn setup(upstream: &Upstream) -> (TestGateway, Pki) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let documents = [
        docs::opd("dinkes"),
        docs::service("dinkes", "rm", &[upstream.url()], "", ""),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("simpus-rm", "dinkes/simpus", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, "");
    let config = penghubung::Config::load(&config).unwrap();
    let gateway = penghubung::Gateway::start(config).await.unwrap();
    let addr = gateway.local_addrs()[0];
    (TestGateway { gateway: Some(gateway), dir, url: format!("https://{addr}"), addr }, pki)
}

/// Waits past two TLS reload polls (100 ms each).
async fn let_tls_reload() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_registered_client_gets_through_and_the_upstream_sees_the_gateways_identity_headers() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    let simpus = pki.client("dinkes", "simpus");
    let client = https_client(client_config(&pki.ca_pem(), Some(&simpus)));
    let request = Request::get(format!("{}/dinkes/rm/v1/pasien/1", gw.url))
        .header("x-penghubung-client", "disdukcapil/forged")
        .header("x-penghubung-opd", "disdukcapil")
        .header("x-penghubung-anything", "x")
        .body(empty())
        .unwrap();
    let r = send(&client, request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &up.seen()[0].headers;
    assert_eq!(seen["x-penghubung-client"], "dinkes/simpus");
    assert_eq!(seen["x-penghubung-opd"], "dinkes");
    assert!(seen.get("x-penghubung-anything").is_none());
    assert_eq!(seen.get_all("x-penghubung-client").iter().count(), 1);
    assert_eq!(seen["x-forwarded-proto"], "https");
    // HTTP/2 over TLS (ALPN h2) works too.
    let r = send(
        &client,
        Request::get(format!("{}/dinkes/rm/v1/x", gw.url)).version(http::Version::HTTP_2).body(empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn missing_foreign_expired_and_not_yet_valid_certificates_are_refused_in_the_handshake() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    // No certificate.
    let outcome = request_status(gw.addr, client_config(&pki.ca_pem(), None), "/dinkes/rm/v1/x").await;
    assert!(outcome.is_err(), "no client certificate must be refused: {outcome:?}");
    // A certificate from another CA with the same SPIFFE id.
    let other_dir = tempfile::tempdir().unwrap();
    let other = CertificateAuthority::init(other_dir.path(), TRUST_DOMAIN, "Other").unwrap();
    let foreign = other.issue_client("dinkes", "simpus", Validity::days(30)).unwrap();
    let outcome = request_status(gw.addr, client_config(&pki.ca_pem(), Some(&foreign)), "/dinkes/rm/v1/x").await;
    assert!(outcome.is_err(), "a certificate from an unknown CA must be refused: {outcome:?}");
    // Expired and not yet valid.
    let now = time::OffsetDateTime::now_utc();
    for (name, validity) in [
        ("expired", Validity { not_before: now - time::Duration::days(10), not_after: now - time::Duration::days(1) }),
        (
            "not yet valid",
            Validity { not_before: now + time::Duration::days(1), not_after: now + time::Duration::days(10) },
        ),
    ] {
        let cert = pki.ca.issue_client("dinkes", "simpus", validity).unwrap();
        let outcome = request_status(gw.addr, client_config(&pki.ca_pem(), Some(&cert)), "/dinkes/rm/v1/x").await;
        assert!(outcome.is_err(), "{name} must be refused: {outcome:?}");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn a_valid_certificate_bound_to_no_client_gets_403_unknown_client() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    let stranger = pki.client("dinsos", "tamu");
    let mut connection = TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(&stranger))).await.unwrap();
    let (status, body) = connection.get("/dinkes/rm/v1/x", &[("x-penghubung-client", "dinkes/simpus")]).await.unwrap();
    assert_eq!(status, 403, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["code"], "identity.unknown_client");
    assert!(json["detail"].as_str().unwrap().contains("fingerprint"), "the caller learns what to register");
    assert_eq!(up.hits(), 0);
    // Health needs only a verified certificate (probes).
    let (status, _) = connection.get("/_penghubung/health", &[]).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revocation_refuses_new_connections_and_answers_403_on_open_ones() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    let simpus = pki.client("dinkes", "simpus");
    let config = client_config(&pki.ca_pem(), Some(&simpus));
    let mut open = TlsConnection::connect(gw.addr, config.clone()).await.unwrap();
    assert_eq!(open.get("/dinkes/rm/v1/x", &[]).await.unwrap().0, 200);

    pki.ca.revoke(&simpus.serial_hex).unwrap();
    let_tls_reload().await;

    let (status, body) = open.get("/dinkes/rm/v1/x", &[]).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("identity.revoked"), "{body}");
    let outcome = request_status(gw.addr, config, "/dinkes/rm/v1/x").await;
    assert!(outcome.is_err(), "a revoked certificate must be refused on a new connection: {outcome:?}");
    // Other certificates of the same client still work.
    let renewed = pki.client("dinkes", "simpus");
    assert_eq!(request_status(gw.addr, client_config(&pki.ca_pem(), Some(&renewed)), "/dinkes/rm/v1/x").await, Ok(200));
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn disabling_the_client_document_bites_on_the_next_request_of_an_open_connection() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    let simpus = pki.client("dinkes", "simpus");
    let mut open = TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(&simpus))).await.unwrap();
    assert_eq!(open.get("/dinkes/rm/v1/x", &[]).await.unwrap().0, 200);
    let generation = gw.gateway().snapshot().generation;
    let (key, text) = docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), false);
    gw.put_document(&key, &text);
    gw.wait_generation_above(generation).await;
    let (status, body) = open.get("/dinkes/rm/v1/x", &[]).await.unwrap();
    assert_eq!(status, 403);
    assert!(body.contains("identity.client_disabled"), "{body}");
}

#[tokio::test]
async fn tls_1_1_is_refused() {
    let up = Upstream::text("ok").await;
    let (gw, _pki) = setup(&up).await;
    // A TLS 1.1 ClientHello (no supported_versions extension), written by hand: rustls cannot offer 1.1.
    let mut hello = vec![0x03, 0x02];
    hello.extend_from_slice(&[7u8; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x02, (handshake.len() >> 8) as u8, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    let response = penghubung_tests::raw_exchange(gw.addr, &record).await;
    let bytes = response.as_bytes();
    assert!(bytes.first() != Some(&0x16), "the server must not answer with a ServerHello: {bytes:?}");
    if let Some(&kind) = bytes.first() {
        assert_eq!(kind, 0x15, "an alert record");
    }
    // And a rustls client limited to TLS 1.2 still works (1.2 and 1.3 are the supported versions).
    let simpus = _pki.client("dinkes", "simpus");
    let tls12 = client_config_with_versions(&_pki.ca_pem(), Some(&simpus), &[&rustls::version::TLS12]);
    assert_eq!(request_status(gw.addr, tls12, "/dinkes/rm/v1/x").await, Ok(200));
}

#[tokio::test]
async fn the_server_certificate_rotates_without_restart_and_a_broken_file_keeps_the_old_one() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    let simpus = pki.client("dinkes", "simpus");
    let config = client_config(&pki.ca_pem(), Some(&simpus));
    let before = TlsConnection::connect(gw.addr, config.clone()).await.unwrap().server_certificate();

    let rotated = pki.ca.issue_server(&["127.0.0.1".into()], Validity::days(60)).unwrap();
    rotated.write(&pki.dir.join("server.crt"), &pki.dir.join("server.key")).unwrap();
    let_tls_reload().await;
    let mut after = TlsConnection::connect(gw.addr, config.clone()).await.unwrap();
    assert_ne!(after.server_certificate(), before, "new connections see the new certificate");
    assert_eq!(after.get("/dinkes/rm/v1/x", &[]).await.unwrap().0, 200);

    std::fs::write(pki.dir.join("server.crt"), "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let_tls_reload().await;
    let mut still = TlsConnection::connect(gw.addr, config).await.unwrap();
    assert_eq!(still.server_certificate(), after.server_certificate(), "a broken file keeps the previous material");
    assert_eq!(still.get("/dinkes/rm/v1/x", &[]).await.unwrap().0, 200);
}

#[tokio::test]
async fn https_upstreams_are_verified_and_can_be_called_with_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // An upstream with a certificate from an unknown CA, and one from the gateway's trusted upstream CA that
    // also requires a client certificate.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = CertificateAuthority::init(rogue_dir.path(), "rogue.local", "Rogue").unwrap();
    let rogue_cert = rogue.issue_server(&["127.0.0.1".into()], Validity::days(30)).unwrap();
    let wrong =
        Upstream::start_with_tls(Some(server_config(&rogue_cert.cert_pem, &rogue_cert.key_pem, None)), |_req| async {
            Response::new(full("should not be reached"))
        })
        .await;
    let backend_cert = pki.ca.issue_server(&["127.0.0.1".into()], Validity::days(30)).unwrap();
    let secure = Upstream::start_with_tls(
        Some(server_config(&backend_cert.cert_pem, &backend_cert.key_pem, Some(&pki.ca_pem()))),
        |_req| async { Response::new(full("rahasia")) },
    )
    .await;
    let gateway_identity = pki.client("diskominfo", "penghubung");
    gateway_identity.write(&pki.dir.join("upstream-client.crt"), &pki.dir.join("upstream-client.key")).unwrap();
    let documents = [
        docs::opd("dinkes"),
        docs::service("dinkes", "salah", &[format!("https://{}", wrong.addr)], "", ""),
        docs::service(
            "dinkes",
            "aman",
            &[format!("https://{}", secure.addr)],
            &format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"",
                pki.dir.join("upstream-client.crt").display(),
                pki.dir.join("upstream-client.key").display()
            ),
            "",
        ),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        docs::grant("simpus-salah", "dinkes/simpus", "dinkes/salah/v1", &["*"]),
        docs::grant("simpus-aman", "dinkes/simpus", "dinkes/aman/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config_path = write_mtls_setup(
        dir.path(),
        &documents,
        &pki,
        &format!("[upstream]\ntrust_system_roots = false\nca_files = [\"{}\"]\n", pki.dir.join("ca.crt").display()),
    );
    let gw = GatewayProcess::start(&config_path);
    let simpus = pki.client("dinkes", "simpus");
    let client = https_client(client_config(&pki.ca_pem(), Some(&simpus)));
    let url = format!("https://{}", gw.addr);
    let r = send(&client, Request::get(format!("{url}/dinkes/salah/v1/x")).body(empty()).unwrap()).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.code(), "upstream.tls", "{}", gw.log());
    assert_eq!(wrong.hits(), 0);
    let r = send(&client, Request::get(format!("{url}/dinkes/aman/v1/x")).body(empty()).unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "rahasia");
    let presented = secure.seen()[0].client_certificate.clone().expect("the gateway presented a client certificate");
    let parsed = penghubung::tls::identity::PeerCertificate::parse(&presented).unwrap();
    assert_eq!(&*parsed.spiffe[0], spiffe("diskominfo", "penghubung"));
}

#[tokio::test]
async fn clients_can_be_bound_by_fingerprint_or_subject_as_well() {
    let up = Upstream::text("ok").await;
    let (gw, pki) = setup(&up).await;
    // Certificates whose SPIFFE id matches no client: bound instead by fingerprint and by subject DN.
    let by_fingerprint = pki.client("bappeda", "sipd");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(by_fingerprint.cert_pem.as_bytes()).unwrap();
    let peer = penghubung::tls::identity::PeerCertificate::parse(&der).unwrap();
    let colon_hex: Vec<String> =
        peer.fingerprint.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
    let by_subject = pki.client("dinsos", "sikasos");
    let generation = gw.gateway().snapshot().generation;
    for (key, text) in [
        docs::opd("bappeda"),
        docs::opd("dinsos"),
        (
            "clients/bappeda/sipd.toml".to_string(),
            format!(
                "id = \"bappeda/sipd\"\nopd = \"bappeda\"\nname = \"sipd\"\nclearance = \"terbatas\"\n[identity]\nfingerprint_sha256 = [\"{}\"]\n",
                colon_hex.join(":")
            ),
        ),
        (
            "clients/dinsos/sikasos.toml".to_string(),
            "id = \"dinsos/sikasos\"\nopd = \"dinsos\"\nname = \"sikasos\"\nclearance = \"terbatas\"\n[identity]\nsubject = [\"OU=dinsos, CN=sikasos\"]\n".to_string(),
        ),
        docs::grant("sipd-rm", "bappeda/sipd", "dinkes/rm/v1", &["*"]),
        docs::grant("sikasos-rm", "dinsos/sikasos", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ] {
        gw.put_document(&key, &text);
    }
    gw.wait_generation_above(generation).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // let the last documents land
    let _ = gw.gateway().reload();
    for (issued, expected) in [(&by_fingerprint, "bappeda/sipd"), (&by_subject, "dinsos/sikasos")] {
        let mut connection = TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(issued))).await.unwrap();
        let (status, body) = connection.get("/dinkes/rm/v1/x", &[]).await.unwrap();
        assert_eq!(status, 200, "{expected}: {body}");
        let seen = up.seen();
        assert_eq!(seen.last().unwrap().headers["x-penghubung-client"], expected);
    }
}

/// `(type, UTF8String value)` entries of a subject, in certificate order.
fn subject(entries: &[(rcgen::DnType, &str)]) -> Vec<(rcgen::DnType, rcgen::DnValue)> {
    entries.iter().map(|(kind, value)| (kind.clone(), rcgen::DnValue::Utf8String((*value).into()))).collect()
}

fn printable(value: &str) -> rcgen::DnValue {
    rcgen::DnValue::PrintableString(value.try_into().unwrap())
}

#[tokio::test]
async fn subjects_match_as_parsed_names_and_a_forged_subject_matches_no_client() {
    use rcgen::DnType::{CommonName as Cn, CountryName as C, OrganizationName as O, OrganizationalUnitName as Ou};
    const PEMKAB: &str = "Pemerintah Kabupaten Lampung Timur";
    let up = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let client = |opd: &str, app: &str, subject: &str| {
        (
            format!("clients/{opd}/{app}.toml"),
            format!(
                "id = \"{opd}/{app}\"\nopd = \"{opd}\"\nname = \"{app}\"\nclearance = \"terbatas\"\n[identity]\nsubject = [{}]\n",
                toml::Value::String(subject.into())
            ),
        )
    };
    let documents = [
        docs::opd("dinkes"),
        docs::opd("diskominfo"),
        docs::opd("dinsos"),
        docs::service("dinkes", "rm", &[up.url()], "", ""),
        // The baseline's dashboard binding, as the review attacked it.
        client("diskominfo", "dashboard", &format!("CN=dashboard,OU=Diskominfo,O={PEMKAB},C=ID")),
        // Escapes: a comma and a plus sign inside the CN.
        client("dinsos", "budi", "CN=Budi\\, S.Kom\\+1, OU = Dinas Sosial ,O=Pemkab,C=ID"),
        // A multi-valued RDN.
        client("dinsos", "multi", "CN=multi+UID=7,O=Pemkab,C=ID"),
        docs::grant("dashboard-rm", "diskominfo/dashboard", "dinkes/rm/v1", &["*"]),
        docs::grant("budi-rm", "dinsos/budi", "dinkes/rm/v1", &["*"]),
        docs::grant("multi-rm", "dinsos/multi", "dinkes/rm/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let config = write_mtls_setup(dir.path(), &documents, &pki, "");
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let addr = gateway.local_addrs()[0];
    let gw = TestGateway { gateway: Some(gateway), dir, url: format!("https://{addr}"), addr };

    // Legitimate certificates: UTF8String or PrintableString, other case and spacing: still their client.
    let legitimate = [
        (subject(&[(C, "ID"), (O, PEMKAB), (Ou, "Diskominfo"), (Cn, "dashboard")]), "diskominfo/dashboard"),
        (
            vec![
                (C, printable("ID")),
                (O, printable(PEMKAB)),
                (Ou, printable("DISKOMINFO")),
                (Cn, printable("Dashboard")),
            ],
            "diskominfo/dashboard",
        ),
        (
            subject(&[(C, "id"), (O, "pemerintah  kabupaten lampung timur "), (Ou, "Diskominfo"), (Cn, "dashboard")]),
            "diskominfo/dashboard",
        ),
        (subject(&[(C, "ID"), (O, "Pemkab"), (Ou, "Dinas Sosial"), (Cn, "Budi, S.Kom+1")]), "dinsos/budi"),
    ];
    for (entries, expected) in &legitimate {
        let issued = pki.client_with_subject(entries);
        let mut connection =
            TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(&issued))).await.unwrap();
        let (status, body) = connection.get("/dinkes/rm/v1/x", &[]).await.unwrap();
        assert_eq!(status, 200, "{expected} {entries:?}: {body}");
        assert_eq!(up.seen().last().unwrap().headers["x-penghubung-client"], *expected);
    }
    // Forged or merely similar certificates from the same trusted CA: no client.
    let forged = [
        // The review's case: one CN that reads like the whole DN of the dashboard.
        subject(&[(Cn, &format!("dashboard,OU=Diskominfo,O={PEMKAB},C=ID"))]),
        subject(&[(C, "ID"), (Cn, &format!("dashboard,OU=Diskominfo,O={PEMKAB}"))]),
        subject(&[(C, "ID"), (O, &format!("{PEMKAB},OU=Diskominfo")), (Cn, "dashboard")]),
        subject(&[(C, "ID"), (O, PEMKAB), (Ou, "Diskominfo"), (Cn, "dashboard+UID=1")]),
        subject(&[(C, "ID"), (O, PEMKAB), (Ou, "Diskominfo+CN=dashboard")]),
        subject(&[(C, "ID"), (O, PEMKAB), (Ou, "Diskominfo"), (Cn, "dashboard\\")]),
        subject(&[(C, "ID"), (O, PEMKAB), (Ou, "Diskominfo"), (Cn, "\"dashboard\"")]),
        // Attribute order: the same attributes in the other RDN order are another name.
        subject(&[(Cn, "dashboard"), (Ou, "Diskominfo"), (O, PEMKAB), (C, "ID")]),
        // One attribute short or one more.
        subject(&[(O, PEMKAB), (Ou, "Diskominfo"), (Cn, "dashboard")]),
        // (rcgen keeps one value per type, so the extra attribute is another type.)
        subject(&[
            (C, "ID"),
            (O, PEMKAB),
            (Ou, "Diskominfo"),
            (rcgen::DnType::LocalityName, "Sukadana"),
            (Cn, "dashboard"),
        ]),
        // Escaped names taken apart: the CN `Budi` and another attribute ` S.Kom+1`; the escapes themselves.
        subject(&[
            (C, "ID"),
            (O, "Pemkab"),
            (Ou, "Dinas Sosial"),
            (Cn, "Budi"),
            (rcgen::DnType::LocalityName, " S.Kom+1"),
        ]),
        subject(&[(C, "ID"), (O, "Pemkab"), (Ou, "Dinas Sosial"), (Cn, "Budi\\, S.Kom\\+1")]),
        // The multi-valued RDN written as two RDNs, either way round.
        subject(&[
            (C, "ID"),
            (O, "Pemkab"),
            (rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 1]), "7"),
            (Cn, "multi"),
        ]),
        subject(&[(C, "ID"), (O, "Pemkab"), (Cn, "multi+UID=7")]),
    ];
    for entries in &forged {
        let issued = pki.client_with_subject(entries);
        let mut connection =
            TlsConnection::connect(gw.addr, client_config(&pki.ca_pem(), Some(&issued))).await.unwrap();
        let (status, body) = connection.get("/dinkes/rm/v1/x", &[]).await.unwrap();
        assert_eq!(status, 403, "{entries:?}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], "identity.unknown_client", "{entries:?}");
    }
    assert_eq!(up.hits(), legitimate.len());

    // A subject that is not an RFC 4514 name is a validation error naming its file; the snapshot keeps serving.
    for bad in ["CN=dashboard;OU=Diskominfo", "CN=a\"b\",C=ID", "XX=dashboard", "CN=dashboard\\", ""] {
        gw.put_document("clients/dinsos/rusak.toml", &client("dinsos", "rusak", bad).1);
        let problems = gw.gateway().reload().expect_err(bad);
        assert!(
            problems.iter().any(|p| p.file.ends_with("clients/dinsos/rusak.toml") && p.message.contains("subject")),
            "{bad}: {problems:?}"
        );
    }
    let issued = pki.client_with_subject(&legitimate[0].0);
    assert_eq!(request_status(gw.addr, client_config(&pki.ca_pem(), Some(&issued)), "/dinkes/rm/v1/x").await, Ok(200));
}
