//! Backups: an export, imported into an empty store, gives the same documents and the same compiled snapshot;
//! a tampered export is refused and nothing changes; an import keeps the previous store and is recorded.

mod support;

use penghubung_manage::backup::Bundle;
use penghubung_manage::check;
use penghubung_manage::{Change, ChangeRequest, Config, Kind, Manager};
use penghubung_snapshot::store::{load_documents, DirStore, Documents};
use support::{Setup, CONFIG};

/// The documents of a store by key, with their digests (what the snapshot is compiled from).
fn digests(store: &std::path::Path) -> Vec<(String, [u8; 32])> {
    let (docs, problems): (Documents, _) = load_documents(&DirStore::new(store));
    assert!(problems.is_empty(), "{problems:?}");
    let mut digests = docs.digests;
    digests.sort();
    digests
}

/// A summary of a compiled snapshot: its services with status, clients, grants and tiers.
fn snapshot_summary(config: &Config) -> Vec<String> {
    let snapshot = check::load_and_compile(config, &DirStore::new(config.store_dir())).unwrap();
    let mut out: Vec<String> =
        snapshot.services.iter().map(|s| format!("service {} {}", s.key, s.doc.status)).collect();
    out.extend(snapshot.clients.values().map(|c| format!("client {} {}", c.doc.id, c.doc.clearance)));
    out.extend(snapshot.grants.iter().map(|g| format!("grant {} {} {}", g.id, g.client, g.service)));
    out.extend(snapshot.tiers.keys().map(|t| format!("tier {t}")));
    out.sort();
    out
}

/// An empty store beside a copy of the source's PKI (the same audit key verifies the export).
fn empty_target(source: &Setup) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::create_dir_all(dir.path().join("pki")).unwrap();
    for entry in std::fs::read_dir(source.dir.path().join("pki")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join("pki").join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("penghubung.toml"), CONFIG).unwrap();
    let config = Config::load(&dir.path().join("penghubung.toml")).unwrap();
    (dir, config)
}

#[test]
fn export_then_import_into_an_empty_store_gives_an_identical_snapshot() {
    let source = Setup::new();
    let admin = source.actor("m-admin");
    // Some history first, so that the export is not just the seed.
    let approve = ChangeRequest {
        change: Change::Approve {
            service: "dinsos/bansos/v1".into(),
            kind: penghubung_manage::ApprovalKind::Operations,
        },
        reason: Some("uji fungsi".into()),
        if_match: None,
    };
    source.manager.apply(&source.actor("m-operasi"), approve).unwrap();
    let bundle = source.manager.export(&admin).unwrap();
    let parsed: Bundle = serde_json::from_slice(&bundle).unwrap();
    assert_eq!(parsed.contents.exported_by, "m-admin");
    assert_eq!(parsed.contents.documents.len(), parsed.contents.manifest.len());
    assert!(parsed.contents.generation >= 1);
    assert!(!String::from_utf8_lossy(&bundle).contains("PRIVATE KEY"));

    let (target_dir, target_config) = empty_target(&source);
    let target = Manager::open(&target_config).unwrap();
    let applied = target.import(&admin, &bundle, Some("pemulihan ke server baru".into())).unwrap();
    assert!(applied.summary.contains("before-import"), "{}", applied.summary);

    assert_eq!(digests(&target_config.store_dir()), digests(&source.store()), "the same documents, byte for byte");
    assert_eq!(snapshot_summary(&target_config), snapshot_summary(&source.config), "the same compiled snapshot");
    // The previous (empty) store is kept beside the new one.
    let kept: Vec<_> = std::fs::read_dir(target_dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("policies.before-import-"))
        .collect();
    assert_eq!(kept.len(), 1);
    // The import is recorded, with its operator and reason.
    let history = target.history(&admin, Kind::Service, "dinsos/bansos/v1").unwrap();
    let last = history.last().unwrap();
    assert_eq!((last.who.as_str(), last.action.as_str()), ("m-admin", "import_store"));
    assert_eq!(last.reason.as_deref(), Some("pemulihan ke server baru"));
}

#[test]
fn a_tampered_export_is_refused_and_nothing_changes() {
    let setup = Setup::new();
    let admin = setup.actor("m-admin");
    let bundle = setup.manager.export(&admin).unwrap();
    let before = setup.files();
    let import = |bytes: &[u8]| setup.manager.import(&admin, bytes, Some("uji".into()));

    // A document changed, with its manifest digest recomputed to match: the signature no longer verifies.
    let mut tampered: Bundle = serde_json::from_slice(&bundle).unwrap();
    let document = tampered.contents.documents.iter_mut().find(|d| d.key == "clients/dinsos/sikasos.toml").unwrap();
    document.text = document.text.replace("terbatas", "sangat_rahasia");
    let digest = penghubung_snapshot::store::journal::digest_hex(&document.text);
    tampered.contents.manifest.iter_mut().find(|m| m.key == "clients/dinsos/sikasos.toml").unwrap().sha256 = digest;
    let refused = import(&serde_json::to_vec(&tampered).unwrap()).unwrap_err();
    assert_eq!(refused.code(), "admin.bad_request");
    assert!(refused.to_string().contains("signature does not verify"), "{refused}");

    // A document added without a signature; a signature of another key; not an export at all.
    let mut added: Bundle = serde_json::from_slice(&bundle).unwrap();
    added.contents.documents.push(penghubung_manage::backup::BundleDocument {
        key: "tiers/gratis.toml".into(),
        text: "id = \"gratis\"\nunlimited = true\n".into(),
    });
    assert!(import(&serde_json::to_vec(&added).unwrap()).is_err());
    let mut resigned: Bundle = serde_json::from_slice(&bundle).unwrap();
    resigned.signature = "00".repeat(64);
    assert_eq!(import(&serde_json::to_vec(&resigned).unwrap()).unwrap_err().code(), "admin.bad_request");
    assert_eq!(import(b"{}").unwrap_err().code(), "admin.bad_request");
    // An import needs a reason.
    assert_eq!(setup.manager.import(&admin, &bundle, None).unwrap_err().code(), "admin.bad_request");
    assert_eq!(setup.files(), before, "nothing changed");
    // The untouched export imports.
    setup.manager.import(&admin, &bundle, Some("pemulihan".into())).unwrap();
}
