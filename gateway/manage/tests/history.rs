//! History and rollback: every document keeps its versions with who, when and why; a version not made
//! through the management plane (seeded, or edited by hand) is kept as a `hand-edit`; a rollback restores a
//! version as a new, checked and recorded change. Every journal entry names an operator (or `hand-edit`).

mod support;

use penghubung_manage::{Change, ChangeRequest, Kind};
use penghubung_types::documents::OpdDoc;
use support::{Setup, OPERATORS};

fn update(setup: &Setup, who: &str, name: &str, reason: &str) {
    let actor = setup.actor(who);
    let etag = setup.manager.get(&actor, Kind::Opd, "dinsos").unwrap().etag;
    let doc = OpdDoc { id: "dinsos".into(), name: name.into(), mandiri_tik: true, contact: None, bandwidth: None };
    let request = ChangeRequest { change: Change::UpdateOpd(doc), reason: Some(reason.into()), if_match: Some(etag) };
    setup.manager.apply(&actor, request).unwrap();
}

#[test]
fn history_names_who_when_and_why_and_rollback_restores_a_version() {
    let setup = Setup::new();
    let seeded = setup.read("opds/dinsos.toml");
    update(&setup, "m-admin", "Dinas Sosial Kabupaten", "nama resmi");
    // A hand edit between two changes is kept as its own version.
    let hand = setup.read("opds/dinsos.toml").replace("Kabupaten", "Kab.");
    std::fs::write(setup.store().join("opds/dinsos.toml"), &hand).unwrap();
    update(&setup, "m-admin", "Dinas Sosial P3A", "penggabungan urusan");

    let auditor = setup.actor("m-auditor");
    let history = setup.manager.history(&auditor, Kind::Opd, "dinsos").unwrap();
    let summary: Vec<(u64, &str, &str, Option<&str>)> =
        history.iter().map(|h| (h.version, h.who.as_str(), h.action.as_str(), h.reason.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (1, "hand-edit", "hand_edit", None),
            (2, "m-admin", "update_opd", Some("nama resmi")),
            (3, "hand-edit", "hand_edit", None),
            (4, "m-admin", "update_opd", Some("penggabungan urusan")),
        ]
    );
    assert_eq!(history[0].document.as_ref().unwrap()["name"], "Dinas Sosial");
    assert_eq!(history[2].document.as_ref().unwrap()["name"], "Dinas Sosial Kab.");
    assert_eq!(history[3].digest, penghubung_snapshot::store::journal::digest_hex(&setup.read("opds/dinsos.toml")));
    assert!(history
        .iter()
        .all(|h| time::OffsetDateTime::parse(&h.at, &time::format_description::well_known::Rfc3339).is_ok()));

    // A rollback needs a reason and the current etag, and is checked and recorded like any change.
    let admin = setup.actor("m-admin");
    let etag = setup.manager.get(&admin, Kind::Opd, "dinsos").unwrap().etag;
    let rollback = |reason: Option<&str>, if_match: Option<String>| ChangeRequest {
        change: Change::Rollback { kind: Kind::Opd, id: "dinsos".into(), version: 1 },
        reason: reason.map(str::to_string),
        if_match,
    };
    assert_eq!(
        setup.manager.apply(&admin, rollback(None, Some(etag.clone()))).unwrap_err().code(),
        "admin.bad_request"
    );
    assert_eq!(
        setup.manager.apply(&admin, rollback(Some("salah ubah"), None)).unwrap_err().code(),
        "admin.precondition_required"
    );
    let applied = setup.manager.apply(&admin, rollback(Some("salah ubah"), Some(etag))).unwrap();
    assert!(applied.summary.contains("version 1"), "{}", applied.summary);
    assert_eq!(setup.read("opds/dinsos.toml"), seeded, "the text of version 1, comments and all");
    let last = setup.manager.history(&auditor, Kind::Opd, "dinsos").unwrap().pop().unwrap();
    assert_eq!((last.version, last.who.as_str(), last.action.as_str()), (5, "m-admin", "rollback"));
    assert_eq!(last.reason.as_deref(), Some("salah ubah"));
    // Rolling back to where it already is, or to a version that does not exist, is refused.
    let etag = setup.manager.get(&admin, Kind::Opd, "dinsos").unwrap().etag;
    let again = setup.manager.apply(&admin, rollback(Some("lagi"), Some(etag.clone()))).unwrap_err();
    assert_eq!(again.code(), "admin.conflict");
    let missing = ChangeRequest {
        change: Change::Rollback { kind: Kind::Opd, id: "dinsos".into(), version: 99 },
        reason: Some("x".into()),
        if_match: Some(etag),
    };
    assert_eq!(setup.manager.apply(&admin, missing).unwrap_err().code(), "admin.not_found");
}

#[test]
fn a_removed_document_keeps_its_history_and_can_come_back() {
    let setup = Setup::new();
    let keamanan = setup.actor("m-keamanan");
    let revoke = ChangeRequest {
        change: Change::RevokeGrant { id: "sikasos-bansos".into() },
        reason: Some("kerja sama berakhir".into()),
        if_match: None,
    };
    setup.manager.apply(&keamanan, revoke).unwrap();
    assert!(!setup.store().join("grants/sikasos-bansos.toml").exists());
    let history = setup.manager.history(&keamanan, Kind::Grant, "sikasos-bansos").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[1].who.as_str(), history[1].action.as_str()), ("m-keamanan", "revoke_grant"));
    assert!(history[1].document.is_none());
    // A rollback that would break the store is refused like any change: here it comes back whole.
    let admin = setup.actor("m-admin");
    let back = ChangeRequest {
        change: Change::Rollback { kind: Kind::Grant, id: "sikasos-bansos".into(), version: 1 },
        reason: Some("diperpanjang".into()),
        if_match: None,
    };
    setup.manager.apply(&admin, back).unwrap();
    assert!(setup.read("grants/sikasos-bansos.toml").contains("dinsos/sikasos"));
}

#[test]
fn every_journal_entry_names_an_operator() {
    let setup = Setup::new();
    update(&setup, "m-admin", "Dinas Sosial Kabupaten", "nama resmi");
    let approve = ChangeRequest {
        change: Change::Approve {
            service: "dinsos/bansos/v1".into(),
            kind: penghubung_manage::ApprovalKind::Operations,
        },
        reason: Some("uji fungsi".into()),
        if_match: None,
    };
    setup.manager.apply(&setup.actor("m-operasi"), approve).unwrap();
    let clearance = ChangeRequest {
        change: Change::SetClearance {
            client: "dinsos/sikasos".into(),
            clearance: penghubung_types::documents::Classification::Rahasia,
        },
        reason: None,
        if_match: None,
    };
    setup.manager.apply(&setup.actor("m-keamanan"), clearance).unwrap();
    let entries = setup.journal();
    assert!(entries.len() >= 5, "{entries:?}");
    let operators: Vec<&str> = OPERATORS.iter().map(|(id, _, _)| *id).collect();
    for entry in &entries {
        let who = entry["who"].as_str().unwrap();
        assert!(operators.contains(&who) || who == "hand-edit", "{entry}");
        if who != "hand-edit" {
            assert!(entry["before"].is_string() || entry["after"].is_string(), "{entry}");
        }
    }
    let whos: Vec<&str> = entries.iter().map(|e| e["who"].as_str().unwrap()).collect();
    for who in ["m-admin", "m-operasi", "m-keamanan"] {
        assert!(whos.contains(&who), "{whos:?}");
    }
}
