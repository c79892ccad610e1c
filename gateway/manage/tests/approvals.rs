//! The two approvals: two different operators (by id, whatever their names), each holding the approval's role;
//! never both by one operator, whatever roles it holds; the security approval never by the submitter; a
//! withdrawal, with a reason, takes an active service back to testing. Every step is recorded with its operator.

mod support;

use penghubung_manage::{Actor, ApprovalKind, Change, ChangeRequest, Kind, ManageError};
use support::Setup;

fn approve(service: &str, kind: ApprovalKind) -> ChangeRequest {
    ChangeRequest {
        change: Change::Approve { service: service.into(), kind },
        reason: Some("uji lulus".into()),
        if_match: None,
    }
}

fn status(setup: &Setup, service: &str) -> String {
    let actor = setup.actor("m-auditor");
    setup.manager.get(&actor, Kind::Service, service).unwrap().document["status"].as_str().unwrap().to_string()
}

#[test]
fn one_operator_under_two_names_is_one_operator() {
    let setup = Setup::new();
    // The operator holds both roles; the first approval is given as the certificate names it.
    let rudi = setup.actor("rudi-aptika");
    setup.manager.apply(&rudi, approve("dinsos/bansos/v1", ApprovalKind::Operations)).unwrap();
    // The same operator, its name spelled otherwise: the identity is the id, so it is the same operator.
    let spelled = Actor { name: "Rudi (Kabid Aptika)".into(), ..rudi.clone() };
    let before = setup.files();
    let refused = setup.manager.apply(&spelled, approve("dinsos/bansos/v1", ApprovalKind::Security)).unwrap_err();
    assert_eq!((refused.code(), refused.status()), ("admin.forbidden", 403), "{refused}");
    assert!(refused.to_string().contains("already gave the other approval"), "{refused}");
    assert_eq!(setup.files(), before, "nothing written");
    assert_eq!(status(&setup, "dinsos/bansos/v1"), "testing");
    // A different operator with the role gives it: the service is active.
    let dewi = setup.actor("dewi-persandian");
    let applied = setup.manager.apply(&dewi, approve("dinsos/bansos/v1", ApprovalKind::Security)).unwrap();
    assert!(applied.summary.contains("testing → active"), "{}", applied.summary);
    assert_eq!(status(&setup, "dinsos/bansos/v1"), "active");
    let text = setup.read("services/dinsos/bansos.toml");
    assert!(text.starts_with("# Layanan bansos (dinsos)."), "comments kept: {text}");
    assert!(text.contains("by = \"rudi-aptika\"") && text.contains("by = \"dewi-persandian\""), "{text}");
}

#[test]
fn the_same_operator_with_both_roles_cannot_give_both_approvals() {
    let setup = Setup::new();
    let rudi = setup.actor("rudi-aptika");
    setup.manager.apply(&rudi, approve("dinsos/bansos/v1", ApprovalKind::Security)).unwrap();
    let refused = setup.manager.apply(&rudi, approve("dinsos/bansos/v1", ApprovalKind::Operations)).unwrap_err();
    assert_eq!(refused.code(), "admin.forbidden");
    // An operator without the role is refused too.
    let keamanan = setup.actor("m-keamanan");
    let refused = setup.manager.apply(&keamanan, approve("dinsos/bansos/v1", ApprovalKind::Operations)).unwrap_err();
    assert_eq!(refused.code(), "admin.forbidden");
    assert!(refused.to_string().contains("lacks the role"), "{refused}");
    // An approval needs a reason.
    let operasi = setup.actor("m-operasi");
    let without = ChangeRequest { reason: Some("  ".into()), ..approve("dinsos/bansos/v1", ApprovalKind::Operations) };
    assert_eq!(setup.manager.apply(&operasi, without).unwrap_err().code(), "admin.bad_request");
    setup.manager.apply(&operasi, approve("dinsos/bansos/v1", ApprovalKind::Operations)).unwrap();
    assert_eq!(status(&setup, "dinsos/bansos/v1"), "active");
}

#[test]
fn the_submitter_cannot_give_the_security_approval() {
    let setup = Setup::new();
    let rudi = setup.actor("rudi-aptika");
    let submit =
        ChangeRequest { change: Change::Submit { service: "dinsos/draf/v1".into() }, reason: None, if_match: None };
    setup.manager.apply(&rudi, submit).unwrap();
    assert_eq!(status(&setup, "dinsos/draf/v1"), "testing");
    assert!(setup.read("services/dinsos/draf.toml").contains("submitted_by = \"rudi-aptika\""));
    let refused = setup.manager.apply(&rudi, approve("dinsos/draf/v1", ApprovalKind::Security)).unwrap_err();
    assert_eq!(refused.code(), "admin.forbidden");
    assert!(refused.to_string().contains("submitted"), "{refused}");
    // It may give the operations approval; another operator gives the security one.
    setup.manager.apply(&rudi, approve("dinsos/draf/v1", ApprovalKind::Operations)).unwrap();
    setup.manager.apply(&setup.actor("dewi-persandian"), approve("dinsos/draf/v1", ApprovalKind::Security)).unwrap();
    assert_eq!(status(&setup, "dinsos/draf/v1"), "active");
}

#[test]
fn a_withdrawal_reverts_active_to_testing() {
    let setup = Setup::new();
    let dewi = setup.actor("dewi-persandian");
    let withdraw = |reason: Option<&str>| ChangeRequest {
        change: Change::Withdraw { service: "dinsos/arsip/v1".into(), kind: ApprovalKind::Security },
        reason: reason.map(str::to_string),
        if_match: None,
    };
    assert_eq!(setup.manager.apply(&dewi, withdraw(None)).unwrap_err().code(), "admin.bad_request");
    // An operasi operator cannot withdraw the security approval.
    let operasi = setup.actor("m-operasi");
    assert_eq!(setup.manager.apply(&operasi, withdraw(Some("x"))).unwrap_err().code(), "admin.forbidden");
    let applied = setup.manager.apply(&dewi, withdraw(Some("temuan uji penetrasi"))).unwrap();
    assert!(applied.summary.contains("active → testing"), "{}", applied.summary);
    assert_eq!(status(&setup, "dinsos/arsip/v1"), "testing");
    let text = setup.read("services/dinsos/arsip.toml");
    assert!(text.contains("[approvals.operations]") && !text.contains("[approvals.security]"), "{text}");
    // Nothing left to withdraw.
    let again = setup.manager.apply(&dewi, withdraw(Some("lagi"))).unwrap_err();
    assert_eq!(again.code(), "admin.conflict");
    // The journal names the operator and the reason.
    let last = setup.manager.history(&operasi, Kind::Service, "dinsos/arsip/v1").unwrap().pop().unwrap();
    assert_eq!((last.who.as_str(), last.action.as_str()), ("dewi-persandian", "withdraw_approval"));
    assert_eq!(last.reason.as_deref(), Some("temuan uji penetrasi"));
}

#[test]
fn lifecycle_transitions_need_their_state_and_reason() {
    let setup = Setup::new();
    let keamanan = setup.actor("m-keamanan");
    let suspend = |service: &str, reason: Option<&str>| ChangeRequest {
        change: Change::Suspend { service: service.into() },
        reason: reason.map(str::to_string),
        if_match: None,
    };
    assert_eq!(
        setup.manager.apply(&keamanan, suspend("dinsos/arsip/v1", None)).unwrap_err().code(),
        "admin.bad_request"
    );
    setup.manager.apply(&keamanan, suspend("dinsos/arsip/v1", Some("insiden"))).unwrap();
    assert_eq!(status(&setup, "dinsos/arsip/v1"), "suspended");
    let conflict = setup.manager.apply(&keamanan, suspend("dinsos/draf/v1", Some("x"))).unwrap_err();
    assert_eq!((conflict.code(), conflict.status()), ("admin.conflict", 409));
    let resume =
        ChangeRequest { change: Change::Resume { service: "dinsos/arsip/v1".into() }, reason: None, if_match: None };
    assert_eq!(setup.manager.apply(&keamanan, resume.clone()).unwrap_err().code(), "admin.bad_request");
    let resume = ChangeRequest { reason: Some("insiden ditangani".into()), ..resume };
    setup.manager.apply(&keamanan, resume).unwrap();
    assert_eq!(status(&setup, "dinsos/arsip/v1"), "active");
    let missing = setup.manager.apply(&keamanan, suspend("dinsos/tidak-ada/v1", Some("x"))).unwrap_err();
    assert!(matches!(missing, ManageError::NotFound { .. }), "{missing:?}");
}
