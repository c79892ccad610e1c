//! Writes: an update needs the etag it was read at (428 without, 412 when stale, nothing written); a change that
//! would break the store is refused with every reason, and nothing is written; creates refuse what exists;
//! certificates are issued from CSRs, bound by fingerprint, and no private key appears anywhere.

mod support;

use penghubung_manage::{Change, ChangeRequest, Kind, ManageError};
use penghubung_types::documents::{ClientDoc, GrantDoc, OpdDoc};
use support::{csr, Setup};

fn opd_update(name: &str, if_match: Option<String>) -> ChangeRequest {
    ChangeRequest {
        change: Change::UpdateOpd(OpdDoc {
            id: "dinsos".into(),
            name: name.into(),
            mandiri_tik: true,
            contact: None,
            bandwidth: None,
        }),
        reason: None,
        if_match,
    }
}

#[test]
fn a_stale_etag_is_refused_and_a_missing_one_required() {
    let setup = Setup::new();
    let admin = setup.actor("m-admin");
    let read = setup.manager.get(&admin, Kind::Opd, "dinsos").unwrap();
    assert!(read.etag.starts_with('"') && read.etag.ends_with('"') && read.etag.len() == 34, "{}", read.etag);
    let before = setup.files();
    let missing = setup.manager.apply(&admin, opd_update("Dinas Sosial A", None)).unwrap_err();
    assert_eq!((missing.code(), missing.status()), ("admin.precondition_required", 428));
    // Two operators read the same version; the first write wins, the second gets 412.
    let first = setup.manager.apply(&admin, opd_update("Dinas Sosial A", Some(read.etag.clone()))).unwrap();
    assert_ne!(first.etag.as_deref(), Some(read.etag.as_str()));
    let after_first = setup.files();
    assert_ne!(after_first, before);
    let stale = setup.manager.apply(&admin, opd_update("Dinas Sosial B", Some(read.etag.clone()))).unwrap_err();
    assert_eq!((stale.code(), stale.status()), ("admin.precondition_failed", 412));
    assert_eq!(setup.files(), after_first, "the stale write wrote nothing");
    assert!(setup.read("opds/dinsos.toml").contains("Dinas Sosial A"));
    // The etag the write answered is the one a read gives, without the quotes too.
    let reread = setup.manager.get(&admin, Kind::Opd, "dinsos").unwrap();
    assert_eq!(first.etag.as_deref(), Some(reread.etag.as_str()));
    let unquoted = reread.etag.trim_matches('"').to_string();
    setup.manager.apply(&admin, opd_update("Dinas Sosial C", Some(unquoted))).unwrap();
    // A transition checks an etag when one is given.
    let keamanan = setup.actor("m-keamanan");
    let suspend = ChangeRequest {
        change: Change::Suspend { service: "dinsos/arsip/v1".into() },
        reason: Some("insiden".into()),
        if_match: Some("\"00000000000000000000000000000000\"".into()),
    };
    assert_eq!(setup.manager.apply(&keamanan, suspend).unwrap_err().code(), "admin.precondition_failed");
}

#[test]
fn a_change_that_breaks_the_store_is_refused_with_every_reason() {
    let setup = Setup::new();
    let keamanan = setup.actor("m-keamanan");
    let before = setup.files();
    let grant = GrantDoc {
        id: "rusak".into(),
        client: "dinkes/simpus".into(),
        service: "dinkes/rekam-medis/v1".into(),
        operations: vec!["*".into()],
        purposes: vec![],
        tier: "emas".into(),
        not_before: None,
        not_after: None,
        reason: None,
    };
    let refused = setup
        .manager
        .apply(&keamanan, ChangeRequest { change: Change::AddGrant(grant), reason: None, if_match: None })
        .unwrap_err();
    let ManageError::InvalidStore { problems } = &refused else { panic!("{refused:?}") };
    assert_eq!((refused.code(), refused.status()), ("admin.invalid_store", 422));
    let all = problems.join("\n");
    assert!(problems.len() >= 2, "{all}");
    assert!(problems.len() >= 3, "{all}");
    assert!(
        all.contains("dinkes/simpus") && all.contains("dinkes/rekam-medis/v1") && all.contains("`emas`"),
        "names each unknown: {all}"
    );
    assert!(problems.iter().all(|p| p.contains("grants/rusak.toml")), "each reason names the document: {all}");
    assert_eq!(setup.files(), before, "nothing written, no journal entry");

    // A client of an OPD that does not exist, the situation `ca issue-client` used to write.
    let admin = setup.actor("m-admin");
    let client = ClientDoc {
        id: "dinkes/simpus".into(),
        opd: "dinkes".into(),
        name: "SIMPUS".into(),
        clearance: Default::default(),
        enabled: true,
        test_client: false,
        identity: penghubung_types::documents::ClientIdentityDoc {
            spiffe: vec!["spiffe://penghubung.lampungtimurkab.go.id/opd/dinkes/app/simpus".into()],
            ..Default::default()
        },
        rate_limit: None,
    };
    let refused = setup
        .manager
        .apply(&admin, ChangeRequest { change: Change::CreateClient(client), reason: None, if_match: None })
        .unwrap_err();
    let ManageError::InvalidStore { problems } = &refused else { panic!("{refused:?}") };
    assert!(problems.iter().any(|p| p.contains("OPD `dinkes` is not registered")), "{problems:?}");
    // Issuing a certificate for a client that does not exist is refused before anything is signed.
    let issue = ChangeRequest {
        change: Change::IssueClientCertificate { client: "dinkes/simpus".into(), csr_pem: csr().0, days: 30 },
        reason: None,
        if_match: None,
    };
    let refused = setup.manager.apply(&keamanan, issue).unwrap_err();
    assert_eq!(refused.code(), "admin.not_found");
    assert!(refused.to_string().contains("create it first"), "{refused}");
    // Removing the last admin would leave the gateway unmanageable.
    let mut doc: penghubung_types::documents::OperatorDoc =
        toml::from_str(&setup.read("operators/m-admin.toml")).unwrap();
    doc.enabled = false;
    let etag = setup.manager.get(&admin, Kind::Operator, "m-admin").unwrap().etag;
    let refused = setup
        .manager
        .apply(&admin, ChangeRequest { change: Change::UpdateOperator(doc), reason: None, if_match: Some(etag) })
        .unwrap_err();
    assert!(refused.to_string().contains("no enabled operator holds the role `admin`"), "{refused}");
    assert_eq!(setup.files(), before);
}

#[test]
fn creates_refuse_what_exists_and_new_services_are_drafts() {
    let setup = Setup::new();
    let admin = setup.actor("m-admin");
    let opd = OpdDoc { id: "dinsos".into(), name: "x".into(), mandiri_tik: false, contact: None, bandwidth: None };
    let refused =
        setup.manager.apply(&admin, ChangeRequest { change: Change::CreateOpd(opd), reason: None, if_match: None });
    assert_eq!(refused.unwrap_err().code(), "admin.conflict");
    let mut service: penghubung_types::documents::ServiceDoc = toml::from_str(
        "opd = \"dinsos\"\nname = \"pintas\"\nversion = 1\ntitle = \"t\"\nclassification = \"terbuka\"\n\
         status = \"active\"\n[upstream]\nendpoints = [\"http://127.0.0.1:9\"]\n",
    )
    .unwrap();
    let create = |s| ChangeRequest { change: Change::CreateService(s), reason: None, if_match: None };
    let refused = setup.manager.apply(&admin, create(service.clone())).unwrap_err();
    assert_eq!(refused.code(), "admin.bad_request", "a new service cannot skip the approvals");
    service.status = Default::default();
    let created = setup.manager.apply(&admin, create(service)).unwrap();
    assert_eq!(created.id, "dinsos/pintas/v1");
    assert!(setup.read("services/dinsos/pintas.toml").contains("# Created by operator `m-admin`"));
    let listed = setup.manager.list(&admin, Kind::Service).unwrap();
    let pintas = listed.iter().find(|s| s.id == "dinsos/pintas/v1").unwrap();
    assert_eq!(pintas.document["status"], "draft");
}

#[test]
fn certificates_come_from_csrs_and_no_private_key_is_anywhere() {
    let setup = Setup::new();
    let keamanan = setup.actor("m-keamanan");
    let (request, key) = csr();
    let issued = setup
        .manager
        .apply(
            &keamanan,
            ChangeRequest {
                change: Change::IssueClientCertificate { client: "dinsos/sikasos".into(), csr_pem: request, days: 30 },
                reason: None,
                if_match: None,
            },
        )
        .unwrap();
    let cert = issued.certificate_pem.clone().unwrap();
    let fingerprint = support::fingerprint(&cert);
    assert!(setup.read("clients/dinsos/sikasos.toml").contains(&fingerprint));
    // The certificate carries the CSR's public key and the client's SPIFFE id.
    let der = support::der(&cert);
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(parsed.public_key().subject_public_key.data.as_ref(), key.public_key_raw());
    let peer = penghubung_tls::identity::PeerCertificate::parse(&der).unwrap();
    assert_eq!(
        peer.spiffe.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        vec!["spiffe://penghubung.lampungtimurkab.go.id/opd/dinsos/app/sikasos".to_string()]
    );
    // A CSR that is not one, and a validity out of bounds, are refused.
    for (csr_pem, days) in [
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_string(), 30),
        (csr().0, 0),
        (csr().0, 5000),
    ] {
        let refused = setup.manager.apply(
            &keamanan,
            ChangeRequest {
                change: Change::IssueClientCertificate { client: "dinsos/sikasos".into(), csr_pem, days },
                reason: None,
                if_match: None,
            },
        );
        assert_eq!(refused.unwrap_err().code(), "admin.bad_request");
    }
    // An operator certificate authenticates as that operator.
    let admin = setup.actor("m-admin");
    let issued_operator = setup
        .manager
        .apply(
            &admin,
            ChangeRequest {
                change: Change::IssueOperatorCertificate { operator: "m-auditor".into(), csr_pem: csr().0, days: 30 },
                reason: None,
                if_match: None,
            },
        )
        .unwrap();
    let der = support::der(issued_operator.certificate_pem.as_deref().unwrap());
    assert_eq!(setup.manager.authenticate_certificate(&der).unwrap().id, "m-auditor");
    // No private key in any answer, document or journal entry.
    let answers = format!(
        "{issued:?}{issued_operator:?}{:?}{:?}",
        setup.manager.list(&admin, Kind::Operator).unwrap(),
        setup.manager.history(&admin, Kind::Client, "dinsos/sikasos").unwrap()
    );
    assert!(!answers.contains("PRIVATE KEY"), "{answers}");
    for (path, text) in setup.files() {
        assert!(!text.contains("PRIVATE KEY"), "{path}");
    }
}

#[test]
fn an_operators_password_hash_is_never_answered() {
    let setup = Setup::new();
    let admin = setup.actor("m-admin");
    let mut doc: penghubung_types::documents::OperatorDoc =
        toml::from_str(&setup.read("operators/m-auditor.toml")).unwrap();
    doc.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0$aGFzaA".into());
    let etag = setup.manager.get(&admin, Kind::Operator, "m-auditor").unwrap().etag;
    setup
        .manager
        .apply(
            &admin,
            ChangeRequest { change: Change::UpdateOperator(doc.clone()), reason: None, if_match: Some(etag) },
        )
        .unwrap();
    let read = setup.manager.get(&admin, Kind::Operator, "m-auditor").unwrap();
    assert!(read.document.get("password_hash").is_none(), "{}", read.document);
    let history = format!("{:?}", setup.manager.history(&admin, Kind::Operator, "m-auditor").unwrap());
    assert!(!history.contains("argon2"), "{history}");
    // An update that does not carry the hash (as read) keeps it.
    doc.password_hash = None;
    doc.name = "Auditor".into();
    setup
        .manager
        .apply(&admin, ChangeRequest { change: Change::UpdateOperator(doc), reason: None, if_match: Some(read.etag) })
        .unwrap();
    assert!(setup.read("operators/m-auditor.toml").contains("argon2id"));
}
