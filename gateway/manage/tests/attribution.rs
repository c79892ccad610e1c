//! Attribution in the audit trail: a running gateway's reload records each document change with the operator
//! and reason of the management operation that made it (from the store's journal), and a change no operation
//! made as a `hand-edit`. Real gateway, real audit log.

mod support;

use std::time::{Duration, Instant};

use penghubung_manage::{ApprovalKind, Change, ChangeRequest, Config};
use penghubung_server::Gateway;
use support::Setup;

const AUDIT: &str = "\n[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 10\ncheckpoint_interval = \"1s\"\n";

/// The change records of the audit log under `dir`.
fn change_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if record.get("document").is_some() {
                out.push(record);
            }
        }
    }
    out
}

async fn wait_for_generation(gateway: &Gateway, generation: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while gateway.snapshot().generation < generation {
        assert!(Instant::now() < deadline, "no reload to generation {generation}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_record_names_the_operator_or_a_hand_edit() {
    let setup = Setup::new();
    let path = setup.dir.path().join("penghubung.toml");
    let text = std::fs::read_to_string(&path).unwrap() + AUDIT;
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let gateway = Gateway::start(config).await.unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(gateway.snapshot().generation, 1);

    // An approval through the management plane, picked up by the watcher.
    let approve = ChangeRequest {
        change: Change::Approve { service: "dinsos/bansos/v1".into(), kind: ApprovalKind::Operations },
        reason: Some("uji fungsi lulus".into()),
        if_match: None,
    };
    setup.manager.apply(&setup.actor("m-operasi"), approve).unwrap();
    wait_for_generation(&gateway, 2).await;
    // A grant revoked through it.
    let revoke = ChangeRequest {
        change: Change::RevokeGrant { id: "sikasos-bansos".into() },
        reason: Some("kerja sama berakhir".into()),
        if_match: None,
    };
    setup.manager.apply(&setup.actor("m-keamanan"), revoke).unwrap();
    wait_for_generation(&gateway, 3).await;
    // A hand edit.
    let key = setup.store().join("tiers/cadangan.toml");
    std::fs::write(key.with_extension("tmp-write"), "id = \"cadangan\"\nrate = 7\n").unwrap();
    std::fs::rename(key.with_extension("tmp-write"), &key).unwrap();
    wait_for_generation(&gateway, 4).await;
    assert!(gateway.auditor().unwrap().checkpoint().await);

    let records = change_records(&setup.dir.path().join("audit"));
    let find = |document: &str, action: &str| {
        records
            .iter()
            .find(|r| r["document"] == document && r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} of {document} in {records:#?}"))
    };
    let approved = find("services/dinsos/bansos.toml", "changed");
    assert_eq!((&approved["who"], &approved["reason"]), (&"m-operasi".into(), &"uji fungsi lulus".into()));
    let revoked = find("grants/sikasos-bansos.toml", "removed");
    assert_eq!((&revoked["who"], &revoked["reason"]), (&"m-keamanan".into(), &"kerja sama berakhir".into()));
    let edited = find("tiers/cadangan.toml", "changed");
    assert_eq!(edited["who"], "hand-edit");
    // Every change after the start names an operator or a hand edit.
    for record in records.iter().filter(|r| r["action"] != "loaded") {
        let who = record["who"].as_str().unwrap();
        assert!(["m-operasi", "m-keamanan", "hand-edit"].contains(&who), "{record}");
    }
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_store_is_served_and_watched() {
    let setup = Setup::new();
    let path = setup.dir.path().join("penghubung.toml");
    let text = std::fs::read_to_string(&path).unwrap() + AUDIT;
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let admin = setup.actor("m-admin");
    // The export carries a change the live store then loses again; importing brings it back.
    let keamanan = setup.actor("m-keamanan");
    let clearance = |level| ChangeRequest {
        change: Change::SetClearance { client: "dinsos/sikasos".into(), clearance: level },
        reason: None,
        if_match: None,
    };
    setup.manager.apply(&keamanan, clearance(penghubung_types::documents::Classification::Rahasia)).unwrap();
    let bundle = setup.manager.export(&admin).unwrap();
    setup.manager.apply(&keamanan, clearance(penghubung_types::documents::Classification::Terbuka)).unwrap();

    let gateway = Gateway::start(config).await.unwrap_or_else(|e| panic!("start: {e}"));
    let clearance_now = |gateway: &Gateway| gateway.snapshot().clients["dinsos/sikasos"].doc.clearance.as_str();
    assert_eq!(clearance_now(&gateway), "terbuka");
    setup.manager.import(&admin, &bundle, Some("pemulihan".into())).unwrap();
    // The swap of the store folder is seen without a signal.
    wait_for_generation(&gateway, 2).await;
    assert_eq!(clearance_now(&gateway), "rahasia");
    // And a later change inside the new folder is picked up too.
    setup.manager.apply(&keamanan, clearance(penghubung_types::documents::Classification::Terbatas)).unwrap();
    wait_for_generation(&gateway, 3).await;
    assert_eq!(clearance_now(&gateway), "terbatas");
    gateway.shutdown().await;
}
