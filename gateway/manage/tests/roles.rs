//! Every role against every operation, through the real manager on a real store: an operation is allowed
//! exactly to the roles the permission table lists for it (and then succeeds), and refused with
//! `admin.forbidden` to every other role, with nothing written. An `opd_admin` is held to its own OPD.

mod support;

use penghubung_manage::{
    authorize, roles_for, Actor, ApprovalKind, Change, ChangeRequest, Kind, ManageError, Operation, Role,
};
use penghubung_types::documents::{Classification, ClientDoc, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc};
use support::{csr, operator_of, Setup};

fn opd(id: &str, name: &str) -> OpdDoc {
    OpdDoc { id: id.into(), name: name.into(), mandiri_tik: false, contact: None, bandwidth: None }
}

fn new_service(name: &str) -> ServiceDoc {
    toml::from_str(&format!(
        "opd = \"dinsos\"\nname = \"{name}\"\nversion = 1\ntitle = \"Baru\"\nclassification = \"terbatas\"\n\
         [upstream]\nendpoints = [\"http://127.0.0.1:9\"]\n"
    ))
    .unwrap()
}

fn etag(setup: &Setup, kind: Kind, id: &str) -> Option<String> {
    Some(setup.manager.get(&setup.actor("m-admin"), kind, id).unwrap().etag)
}

const OPENAPI: &str = r#"{"openapi": "3.1.0", "info": {"title": "Impor", "version": "1"},
  "paths": {"/data": {"get": {"operationId": "lihat", "responses": {"200": {"description": "ok",
  "content": {"application/json": {"schema": {"type": "object"}}}}}}}}}"#;

/// A valid request for a write operation, as `role` would make it, on `setup`'s store.
fn request(setup: &Setup, op: Operation, role: Role) -> ChangeRequest {
    let reason = Some("uji matriks".to_string());
    let change = match op {
        Operation::CreateOpd => Change::CreateOpd(opd("dinkes", "Dinas Kesehatan")),
        Operation::UpdateOpd => {
            return ChangeRequest {
                change: Change::UpdateOpd(OpdDoc { mandiri_tik: true, ..opd("dinsos", "Dinas Sosial Kabupaten") }),
                reason,
                if_match: etag(setup, Kind::Opd, "dinsos"),
            }
        }
        Operation::CreateService => Change::CreateService(new_service("baru")),
        Operation::UpdateService => {
            let mut doc: ServiceDoc = toml::from_str(&setup.read("services/dinsos/bansos.toml")).unwrap();
            doc.title = "Bantuan sosial".into();
            return ChangeRequest {
                change: Change::UpdateService(doc),
                reason,
                if_match: etag(setup, Kind::Service, "dinsos/bansos/v1"),
            };
        }
        Operation::ImportOpenApi => Change::ImportOpenApi {
            opd: "dinsos".into(),
            name: "impor".into(),
            version: 1,
            document: serde_json::from_str(OPENAPI).unwrap(),
            upstream: Some("http://127.0.0.1:9".into()),
            classification: Some(Classification::Terbatas),
        },
        Operation::SubmitService => Change::Submit { service: "dinsos/draf/v1".into() },
        Operation::ApproveOperations => {
            Change::Approve { service: "dinsos/bansos/v1".into(), kind: ApprovalKind::Operations }
        }
        Operation::ApproveSecurity => {
            Change::Approve { service: "dinsos/bansos/v1".into(), kind: ApprovalKind::Security }
        }
        Operation::WithdrawApproval => Change::Withdraw {
            service: "dinsos/arsip/v1".into(),
            kind: if role == Role::Operasi { ApprovalKind::Operations } else { ApprovalKind::Security },
        },
        Operation::SuspendService => Change::Suspend { service: "dinsos/arsip/v1".into() },
        Operation::ResumeService => Change::Resume { service: "dinsos/lama/v1".into() },
        Operation::RetireService => Change::Retire { service: "dinsos/bansos/v1".into() },
        Operation::CreateClient => Change::CreateClient(ClientDoc {
            id: "dinsos/baru".into(),
            opd: "dinsos".into(),
            name: "Aplikasi baru".into(),
            clearance: Classification::Terbuka,
            enabled: true,
            test_client: false,
            identity: penghubung_types::documents::ClientIdentityDoc {
                spiffe: vec!["spiffe://penghubung.lampungtimurkab.go.id/opd/dinsos/app/baru".into()],
                ..Default::default()
            },
            rate_limit: None,
        }),
        Operation::SetClearance => {
            Change::SetClearance { client: "dinsos/sikasos".into(), clearance: Classification::Rahasia }
        }
        Operation::SetClientEnabled => Change::SetClientEnabled { client: "dinsos/sikasos".into(), enabled: false },
        Operation::IssueClientCertificate => {
            Change::IssueClientCertificate { client: "dinsos/sikasos".into(), csr_pem: csr().0, days: 30 }
        }
        Operation::RevokeCertificate => Change::RevokeCertificate { serial_hex: "1f2e3d".into() },
        Operation::AddGrant => Change::AddGrant(GrantDoc {
            id: "sikasos-arsip".into(),
            client: "dinsos/sikasos".into(),
            service: "dinsos/arsip/v1".into(),
            operations: vec!["*".into()],
            purposes: vec![],
            tier: "unlimited".into(),
            not_before: None,
            not_after: None,
            reason: None,
        }),
        Operation::RevokeGrant => Change::RevokeGrant { id: "sikasos-bansos".into() },
        Operation::PutTier => Change::PutTier(toml::from_str("id = \"perak\"\nrate = 50\n").unwrap()),
        Operation::DeleteTier => Change::DeleteTier { id: "cadangan".into() },
        Operation::CreateOperator => Change::CreateOperator(OperatorDoc {
            id: "baru".into(),
            name: "Operator baru".into(),
            nip: "199001012015011001".into(),
            opd: "dinsos".into(),
            roles: vec![Role::OpdAdmin],
            enabled: true,
            identity: Default::default(),
            password_hash: None,
        }),
        Operation::UpdateOperator => {
            let mut doc: OperatorDoc = toml::from_str(&setup.read("operators/m-auditor.toml")).unwrap();
            doc.name = "Auditor Inspektorat".into();
            return ChangeRequest {
                change: Change::UpdateOperator(doc),
                reason,
                if_match: etag(setup, Kind::Operator, "m-auditor"),
            };
        }
        Operation::IssueOperatorCertificate => {
            Change::IssueOperatorCertificate { operator: "m-auditor".into(), csr_pem: csr().0, days: 30 }
        }
        Operation::Rollback => {
            // Version 1 is the OPD as seeded; version 2 an update by the admin.
            let admin = setup.actor("m-admin");
            let update = request(setup, Operation::UpdateOpd, Role::Admin);
            setup.manager.apply(&admin, update).unwrap();
            return ChangeRequest {
                change: Change::Rollback { kind: Kind::Opd, id: "dinsos".into(), version: 1 },
                reason,
                if_match: etag(setup, Kind::Opd, "dinsos"),
            };
        }
        other => panic!("{other} is not a write"),
    };
    ChangeRequest { change, reason, if_match: None }
}

/// What an operation needs prepared before it runs (the preparation may itself write, as a rollback's does).
enum Prepared {
    Write(Box<ChangeRequest>),
    Import(Vec<u8>),
    Other,
}

fn is_write(op: Operation) -> bool {
    !(op.as_str().starts_with("list_")
        || op.as_str().starts_with("get_")
        || matches!(
            op,
            Operation::History
                | Operation::ExportStore
                | Operation::ImportStore
                | Operation::Explain
                | Operation::AuditSearch
                | Operation::AuditVerify
                | Operation::Reports
                | Operation::SetOperatorPassword
                | Operation::EnrolTotp
        ))
}

fn prepare(setup: &Setup, op: Operation, role: Role) -> Prepared {
    if op == Operation::ImportStore {
        Prepared::Import(setup.manager.export(&setup.actor("m-admin")).unwrap())
    } else if is_write(op) {
        Prepared::Write(Box::new(request(setup, op, role)))
    } else {
        Prepared::Other
    }
}

/// Runs `op` as `actor` on `setup`; `Ok` or the error.
fn run(setup: &Setup, actor: &Actor, op: Operation, prepared: Prepared) -> Result<(), ManageError> {
    let kind_of = |op: Operation| match op {
        Operation::ListOpds | Operation::GetOpd => Kind::Opd,
        Operation::ListServices | Operation::GetService => Kind::Service,
        Operation::ListClients | Operation::GetClient => Kind::Client,
        Operation::ListGrants | Operation::GetGrant => Kind::Grant,
        Operation::ListTiers | Operation::GetTier => Kind::Tier,
        _ => Kind::Operator,
    };
    let id_of = |kind: Kind| match kind {
        Kind::Opd => "dinsos",
        Kind::Service => "dinsos/bansos/v1",
        Kind::Client => "dinsos/sikasos",
        Kind::Grant => "sikasos-bansos",
        Kind::Tier => "unlimited",
        Kind::Operator => "m-opd",
    };
    match op {
        Operation::ListOpds
        | Operation::ListServices
        | Operation::ListClients
        | Operation::ListGrants
        | Operation::ListTiers
        | Operation::ListOperators => setup.manager.list(actor, kind_of(op)).map(|_| ()),
        Operation::GetOpd
        | Operation::GetService
        | Operation::GetClient
        | Operation::GetGrant
        | Operation::GetTier
        | Operation::GetOperator => setup.manager.get(actor, kind_of(op), id_of(kind_of(op))).map(|_| ()),
        Operation::History => setup.manager.history(actor, Kind::Service, "dinsos/bansos/v1").map(|_| ()),
        Operation::ExportStore => setup.manager.export(actor).map(|_| ()),
        Operation::ImportStore => {
            let Prepared::Import(bundle) = prepared else { unreachable!() };
            setup.manager.import(actor, &bundle, Some("pemulihan uji".into())).map(|_| ())
        }
        // Not store operations: the admin API answers them from the audit log and the snapshot after this check.
        Operation::Explain | Operation::AuditSearch | Operation::AuditVerify | Operation::Reports => {
            authorize(actor, op, None)
        }
        // Console credentials: every role for its own (an admin's for anyone's: see the test below).
        Operation::SetOperatorPassword => setup.manager.set_password(actor, &actor.id, "kata-sandi-uji-panjang"),
        Operation::EnrolTotp => setup.manager.enrol_totp(actor, &actor.id).map(|_| ()),
        _ => {
            let Prepared::Write(request) = prepared else { unreachable!() };
            setup.manager.apply(actor, *request).map(|_| ())
        }
    }
}

#[test]
fn every_role_against_every_operation() {
    let mut table = Vec::new();
    for op in Operation::all() {
        for role in Role::ALL {
            let setup = Setup::new();
            let actor = setup.actor(operator_of(role));
            assert_eq!(actor.roles, vec![role]);
            let prepared = prepare(&setup, op, role);
            let before = setup.files();
            let outcome = run(&setup, &actor, op, prepared);
            let allowed = roles_for(op).contains(&role);
            match (&outcome, allowed) {
                (Ok(()), true) => {}
                (Err(ManageError::Forbidden { .. }), false) => {
                    assert_eq!(setup.files(), before, "{op} refused to {role} wrote nothing");
                }
                _ => panic!("{op} as {role}: allowed by the table: {allowed}, outcome {outcome:?}"),
            }
            table.push((op, role, allowed));
        }
    }
    // Deny is the default: every operation is in the table, and the writes nobody may do do not exist.
    assert_eq!(table.len(), Operation::all().count() * Role::ALL.len());
    for op in Operation::all() {
        assert!(!roles_for(op).is_empty(), "{op} is allowed to some role");
    }
    // The auditor only reads.
    let auditor_writes: Vec<_> = table
        .iter()
        .filter(|(_, role, allowed)| *role == Role::Auditor && *allowed)
        .filter(|(op, _, _)| {
            !matches!(
                op,
                Operation::Explain
                    | Operation::AuditSearch
                    | Operation::AuditVerify
                    | Operation::Reports
                    | Operation::ExportStore
                    | Operation::History
                    | Operation::SetOperatorPassword
                    | Operation::EnrolTotp
            ) && !op.as_str().starts_with("list_")
                && !op.as_str().starts_with("get_")
        })
        .collect();
    assert!(auditor_writes.is_empty(), "{auditor_writes:?}");
}

#[test]
fn an_opd_admin_is_held_to_its_own_opd() {
    let setup = Setup::new();
    // An opd_admin of diskominfo: every write it may do on dinsos's documents is refused.
    let outsider =
        Actor { id: "m-opd".into(), name: "x".into(), opd: "diskominfo".into(), roles: vec![Role::OpdAdmin] };
    let before = setup.files();
    for op in Operation::all().filter(|op| roles_for(*op).contains(&Role::OpdAdmin)) {
        if op.as_str().starts_with("list_") || op.as_str().starts_with("get_") || op == Operation::History {
            continue;
        }
        if matches!(op, Operation::Explain | Operation::SetOperatorPassword | Operation::EnrolTotp) {
            continue;
        }
        let outcome = setup.manager.apply(&outsider, request(&setup, op, Role::OpdAdmin));
        assert!(matches!(outcome, Err(ManageError::Forbidden { .. })), "{op}: {outcome:?}");
    }
    assert_eq!(setup.files(), before);
    // It sees its own OPD's services only, and every OPD.
    let own = setup.actor("m-opd");
    let services = setup.manager.list(&own, Kind::Service).unwrap();
    assert!(services.iter().all(|s| s.id.starts_with("dinsos/")) && !services.is_empty());
    assert_eq!(setup.manager.list(&outsider, Kind::Service).unwrap(), vec![]);
    let not_found = setup.manager.get(&outsider, Kind::Service, "dinsos/bansos/v1").unwrap_err();
    assert_eq!(not_found.code(), "admin.not_found");
    assert_eq!(setup.manager.list(&outsider, Kind::Opd).unwrap().len(), 2);
}

#[test]
fn a_certificate_names_an_enabled_operator_or_nobody() {
    let setup = Setup::new();
    let actor = setup.actor("rudi-aptika");
    assert_eq!(actor.roles, vec![Role::Operasi, Role::Keamanan]);
    // A certificate of the same CA that no operator document binds.
    let ca = penghubung_manage::ca::CertificateAuthority::open(&setup.dir.path().join("pki")).unwrap();
    let stranger = ca.issue_client("dinsos", "sikasos", penghubung_manage::ca::Validity::days(1)).unwrap();
    let refused = setup.manager.authenticate_certificate(&support::der(&stranger.cert_pem)).unwrap_err();
    assert_eq!((refused.code(), refused.status()), ("admin.unauthenticated", 401));
    // A disabled operator is refused.
    let admin = setup.actor("m-admin");
    let mut doc: OperatorDoc = toml::from_str(&setup.read("operators/m-auditor.toml")).unwrap();
    doc.enabled = false;
    let if_match = etag(&setup, Kind::Operator, "m-auditor");
    setup.manager.apply(&admin, ChangeRequest { change: Change::UpdateOperator(doc), reason: None, if_match }).unwrap();
    let der = support::der(&setup.certificate("m-auditor").cert_pem);
    assert_eq!(setup.manager.authenticate_certificate(&der).unwrap_err().code(), "admin.unauthenticated");
    // A revoked operator certificate is refused.
    let keamanan = setup.actor("m-keamanan");
    let serial = penghubung_tls::identity::PeerCertificate::parse(&support::der(&setup.certificate("m-opd").cert_pem))
        .unwrap()
        .serial_hex();
    let revoke = ChangeRequest {
        change: Change::RevokeCertificate { serial_hex: serial },
        reason: Some("laptop hilang".into()),
        if_match: None,
    };
    setup.manager.apply(&keamanan, revoke).unwrap();
    let der = support::der(&setup.certificate("m-opd").cert_pem);
    assert_eq!(setup.manager.authenticate_certificate(&der).unwrap_err().code(), "admin.unauthenticated");
}

#[test]
fn console_credentials_are_an_operators_own_or_an_admins_to_set() {
    let setup = Setup::new();
    let (admin, keamanan) = (setup.actor("m-admin"), setup.actor("m-keamanan"));
    let refused = setup.manager.set_password(&keamanan, "m-opd", "kata-sandi-uji-panjang").unwrap_err();
    assert_eq!(refused.code(), "admin.forbidden", "{refused}");
    assert_eq!(setup.manager.enrol_totp(&keamanan, "m-opd").unwrap_err().code(), "admin.forbidden");
    setup.manager.set_password(&admin, "m-opd", "kata-sandi-uji-panjang").unwrap();
    let enrolment = setup.manager.enrol_totp(&admin, "m-opd").unwrap();
    assert_eq!(
        setup.manager.set_password(&admin, "nobody", "kata-sandi-uji-panjang").unwrap_err().code(),
        "admin.not_found"
    );
    assert_eq!(setup.manager.set_password(&admin, "m-opd", "pendek").unwrap_err().code(), "admin.bad_request");
    // The sign-in through the management plane: the operator, then the code is spent.
    let secret = penghubung_manage::totp::base32_decode(&enrolment.secret).unwrap();
    let now = 1_800_000_000;
    let code = penghubung_manage::totp::code_at(&secret, now);
    let actor = setup.manager.authenticate_password("m-opd", "kata-sandi-uji-panjang", &code, now).unwrap();
    assert_eq!(actor.id, "m-opd");
    let again = setup.manager.authenticate_password("m-opd", "kata-sandi-uji-panjang", &code, now);
    assert_eq!(again.unwrap_err(), penghubung_manage::LoginFailure::ReplayedTotp);
    let unknown = setup.manager.authenticate_password("nobody", "kata-sandi-uji-panjang", &code, now);
    assert_eq!(unknown.unwrap_err(), penghubung_manage::LoginFailure::UnknownUser);
    // Nothing of it in the store.
    for (_, text) in setup.files() {
        assert!(!text.contains("argon2") && !text.contains(&enrolment.secret));
    }
}
