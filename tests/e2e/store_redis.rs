//! The document store on Redis, against a real `redis-server`: `store push` and `store pull` (the real binary)
//! round-trip a folder store with its journal; two managers sharing one Redis store racing on one document: one
//! wins, the other gets `store.conflict` and nothing of it is written; Redis stopped: a write is refused with
//! `store.unavailable` and the old state is intact; history and rollback read the journal from Redis; two
//! managers revoking keep both serials in the shared revocation list and CRL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};

use penghubung::ca::{CertificateAuthority, Validity, DEVELOPMENT_TRUST_DOMAIN};
use penghubung::config::Config;
use penghubung::management::{Change, ChangeRequest, Kind, Manager};
use penghubung::store::journal::Journal;
use penghubung::store::{DirStore, DocumentStore, RedisStore};
use penghubung::types::documents::OpdDoc;
use penghubung_tests::penghubung_binary;
use penghubung_tests::redis::RedisServer;

const PREFIX: &str = "uji:store:";

/// A gateway's working directory (CA, folder store) and the Redis server of its store.
struct Site {
    dir: tempfile::TempDir,
    redis: RedisServer,
}

impl Site {
    /// A CA, a folder store with two OPDs, a tier and two operators, and a Redis server (persistent when
    /// asked, so that a restart keeps the data).
    fn new(persistent: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let pki = root.join("pki");
        let ca = CertificateAuthority::init(&pki, DEVELOPMENT_TRUST_DOMAIN, "Uji").unwrap();
        ca.issue_server(&["127.0.0.1".into()], Validity::days(30))
            .unwrap()
            .write(&pki.join("server.crt"), &pki.join("server.key"))
            .unwrap();
        let documents = [
            ("opds/diskominfo.toml", "id = \"diskominfo\"\nname = \"Dinas Komunikasi dan Informatika\"\nmandiri_tik = true\n"),
            ("opds/dinsos.toml", "id = \"dinsos\"\nname = \"Dinas Sosial\"\nmandiri_tik = true\n"),
            ("tiers/unlimited.toml", "id = \"unlimited\"\nunlimited = true\n"),
            (
                "operators/m-admin.toml",
                "id = \"m-admin\"\nname = \"Admin\"\nnip = \"198001012006041001\"\nopd = \"diskominfo\"\nroles = [\"admin\"]\n\n\
                 [identity]\nfingerprint_sha256 = [\"1111111111111111111111111111111111111111111111111111111111111111\"]\n",
            ),
            (
                "operators/m-keamanan.toml",
                "id = \"m-keamanan\"\nname = \"Keamanan\"\nnip = \"198001012006041002\"\nopd = \"diskominfo\"\nroles = [\"keamanan\"]\n\n\
                 [identity]\nfingerprint_sha256 = [\"2222222222222222222222222222222222222222222222222222222222222222\"]\n",
            ),
        ];
        let store = DirStore::new(root.join("policies"));
        for (key, text) in documents {
            store.put(key, text).unwrap();
        }
        let redis = if persistent { RedisServer::start_persistent() } else { RedisServer::start() };
        let site = Site { dir, redis };
        std::fs::write(site.config_path("dir"), site.config_text("dir")).unwrap();
        std::fs::write(site.config_path("redis"), site.config_text("redis")).unwrap();
        site
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self, backend: &str) -> PathBuf {
        self.root().join(format!("{backend}.toml"))
    }

    fn config_text(&self, backend: &str) -> String {
        format!(
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n\n[tls]\ncert_file = \"pki/server.crt\"\nkey_file = \
             \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\ncrl_files = [\"pki/crl.pem\"]\n\n[store]\n\
             path = \"policies\"\nseed_baseline = false\nbackend = \"{backend}\"\nredis_prefix = \"{PREFIX}\"\n\n{}",
            self.redis.config_section("timeout = \"1s\"\n")
        )
    }

    fn config(&self, backend: &str) -> Config {
        Config::load(&self.config_path(backend)).unwrap_or_else(|p| panic!("config: {p:?}"))
    }

    fn manager(&self) -> Manager {
        Manager::open(&self.config("redis")).unwrap()
    }

    fn redis_store(&self) -> RedisStore {
        RedisStore::of_config(&self.config("redis")).unwrap()
    }

    /// `penghubung store ARGS` (the real binary): exit code and output.
    fn store_command(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(penghubung_binary()).arg("store").args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    }

    fn push(&self) {
        let config = self.config_path("redis");
        let (code, out) = self.store_command(&["push", "--config", config.to_str().unwrap(), "--operator", "m-admin"]);
        assert_eq!(code, 0, "{out}");
    }
}

/// Renames OPD `dinsos` through `manager`, with the etag read just before.
fn rename_dinsos(manager: &Manager, name: &str) -> Result<(), penghubung::management::ManageError> {
    let actor = manager.operator_actor("m-admin")?;
    let etag = manager.get(&actor, Kind::Opd, "dinsos")?.etag;
    rename_dinsos_if(manager, name, &etag)
}

/// Renames OPD `dinsos` with `If-Match: if_match` (`*`: whatever it is when the change is prepared).
fn rename_dinsos_if(manager: &Manager, name: &str, if_match: &str) -> Result<(), penghubung::management::ManageError> {
    let actor = manager.operator_actor("m-admin")?;
    let doc = OpdDoc { id: "dinsos".into(), name: name.into(), mandiri_tik: true, contact: None, bandwidth: None };
    let request =
        ChangeRequest { change: Change::UpdateOpd(doc), reason: Some("uji".into()), if_match: Some(if_match.into()) };
    manager.apply(&actor, request).map(|_| ())
}

fn text_of(store: &dyn DocumentStore, key: &str) -> Option<String> {
    store.list().unwrap().0.into_iter().find(|d| d.key == key).map(|d| d.text)
}

#[test]
fn push_and_pull_round_trip_a_folder_store_with_its_journal() {
    let site = Site::new(false);
    // One recorded change in the folder store first, so that there is a journal to carry.
    let folder = Manager::open(&site.config("dir")).unwrap();
    rename_dinsos(&folder, "Dinas Sosial Kabupaten").unwrap();
    site.push();

    let redis = site.redis_store();
    let folder_store = DirStore::new(site.root().join("policies"));
    let (expected, _) = folder_store.list().unwrap();
    let (pushed, notes) = redis.list().unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let pairs = |docs: &[penghubung::store::StoredDocument]| -> Vec<(String, String)> {
        docs.iter().map(|d| (d.key.clone(), d.text.clone())).collect()
    };
    assert_eq!(pairs(&pushed), pairs(&expected));
    assert_eq!(redis.generation().unwrap(), 1, "one push, one commit");
    let changes = site.redis.stream(&format!("{PREFIX}changes"));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, "1-0");
    let fields: Vec<(&str, &str)> = changes[0].1.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(fields.contains(&("who", "m-admin")) && fields.contains(&("action", "store_push")), "{fields:?}");

    // The change made on the folder keeps its author in Redis's journal; the others are recorded as the push.
    let journal = redis.journal().unwrap();
    let dinsos = journal.entries("opds/dinsos.toml").unwrap();
    let who: Vec<(&str, &str)> = dinsos.iter().map(|e| (e.who.as_str(), e.action.as_str())).collect();
    assert_eq!(who, vec![("hand-edit", "hand_edit"), ("m-admin", "update_opd")]);
    let tier = journal.entries("tiers/unlimited.toml").unwrap();
    assert_eq!(tier.len(), 1);
    assert_eq!((tier[0].who.as_str(), tier[0].action.as_str(), tier[0].version), ("m-admin", "store_push", 1));

    // A second push without --force is refused: Redis is not empty.
    let config = site.config_path("redis");
    let (code, out) = site.store_command(&["push", "--config", config.to_str().unwrap(), "--operator", "m-admin"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--force"), "{out}");
    // An unknown operator is refused too.
    let (code, out) =
        site.store_command(&["push", "--config", config.to_str().unwrap(), "--operator", "nobody", "--force"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(redis.generation().unwrap(), 1, "nothing written by refused pushes");

    // A change through Redis, then pull: the folder holds the same documents and the journal with it.
    rename_dinsos(&site.manager(), "Dinas Sosial P3A").unwrap();
    let pulled = site.root().join("pulled");
    let (code, out) = site.store_command(&[
        "pull",
        "--config",
        config.to_str().unwrap(),
        "--to",
        pulled.to_str().unwrap(),
        "--operator",
        "m-admin",
    ]);
    assert_eq!(code, 0, "{out}");
    let pulled_store = DirStore::new(&pulled);
    assert_eq!(pairs(&pulled_store.list().unwrap().0), pairs(&redis.list().unwrap().0));
    let folder_journal = Journal::of_store(&pulled);
    let versions: Vec<(u64, String)> =
        folder_journal.entries("opds/dinsos.toml").unwrap().into_iter().map(|e| (e.version, e.who)).collect();
    assert_eq!(versions, vec![(1, "hand-edit".into()), (2, "m-admin".into()), (3, "m-admin".into())]);
    assert_eq!(folder_journal.len().unwrap(), journal.len().unwrap());
    // Pull refuses a folder that is not empty.
    let (code, out) = site.store_command(&[
        "pull",
        "--config",
        config.to_str().unwrap(),
        "--to",
        pulled.to_str().unwrap(),
        "--operator",
        "m-admin",
    ]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn of_two_concurrent_changes_on_two_managers_exactly_one_wins() {
    let site = Site::new(false);
    site.push();
    let managers = [Arc::new(site.manager()), Arc::new(site.manager())];
    let redis = site.redis_store();
    let mut conflicts = 0;
    for round in 0..10 {
        let before = redis.generation().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let outcomes: Vec<(String, Result<(), String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = managers
                .iter()
                .enumerate()
                .map(|(i, manager)| {
                    let barrier = Arc::clone(&barrier);
                    let name = format!("Dinas Sosial putaran {round} replika {i}");
                    s.spawn(move || {
                        barrier.wait();
                        // `*`: both prepare the change on the same generation; the commit decides.
                        let result = rename_dinsos_if(manager, &name, "*").map_err(|e| e.code().to_string());
                        (name, result)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let after = redis.generation().unwrap();
        let won: Vec<&String> = outcomes.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| n).collect();
        let lost: Vec<&Result<(), String>> = outcomes.iter().map(|(_, r)| r).filter(|r| r.is_err()).collect();
        let text = text_of(&redis, "opds/dinsos.toml").unwrap();
        if won.len() == 2 {
            // The two did not overlap after all (one finished reading after the other committed).
            assert_eq!(after, before + 2, "round {round}");
            continue;
        }
        assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
        conflicts += 1;
        assert_eq!(lost, vec![&Err("store.conflict".to_string())], "round {round}");
        assert_eq!(after, before + 1, "round {round}: only the winner committed");
        assert!(text.contains(won[0].as_str()), "round {round}: the winner's text is stored: {text}");
        let entries = redis.journal().unwrap().entries("opds/dinsos.toml").unwrap();
        let loser = outcomes.iter().find(|(_, r)| r.is_err()).unwrap();
        assert!(
            !entries.iter().any(|e| e.text.as_deref().is_some_and(|t| t.contains(loser.0.as_str()))),
            "round {round}: nothing of the loser is in the journal"
        );
    }
    assert!(conflicts > 0, "the two managers raced at least once");
    // A retry after a conflict succeeds (the manager reads the store again).
    rename_dinsos(&managers[1], "Dinas Sosial akhir").unwrap();
    assert!(text_of(&redis, "opds/dinsos.toml").unwrap().contains("Dinas Sosial akhir"));
}

#[test]
fn with_redis_down_a_write_is_refused_and_the_old_state_stays() {
    let mut site = Site::new(true);
    site.push();
    let manager = site.manager();
    rename_dinsos(&manager, "Dinas Sosial sebelum").unwrap();
    let generation = site.redis_store().generation().unwrap();

    site.redis.kill();
    let error = rename_dinsos(&manager, "Dinas Sosial saat mati").unwrap_err();
    assert_eq!((error.code(), error.status()), ("store.unavailable", 503), "{error}");
    let actor = manager.operator_actor("m-admin");
    assert!(actor.is_err(), "reads need the store too");

    site.redis.restart();
    let redis = site.redis_store();
    assert_eq!(redis.generation().unwrap(), generation, "nothing was written");
    let text = text_of(&redis, "opds/dinsos.toml").unwrap();
    assert!(text.contains("Dinas Sosial sebelum") && !text.contains("saat mati"), "{text}");
    // The same manager reconnects and writes again.
    rename_dinsos(&manager, "Dinas Sosial sesudah").unwrap();
    assert_eq!(redis.generation().unwrap(), generation + 1);
}

#[test]
fn history_and_rollback_read_the_journal_in_redis() {
    let site = Site::new(false);
    site.push();
    let manager = site.manager();
    rename_dinsos(&manager, "Dinas Sosial dua").unwrap();
    rename_dinsos(&manager, "Dinas Sosial tiga").unwrap();
    let admin = manager.operator_actor("m-admin").unwrap();
    let history = manager.history(&admin, Kind::Opd, "dinsos").unwrap();
    let names: Vec<(u64, String, String)> = history
        .iter()
        .map(|h| {
            let name = h.document.as_ref().map(|d| d["name"].as_str().unwrap_or("").to_string()).unwrap_or_default();
            (h.version, h.who.clone(), name)
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (1, "m-admin".into(), "Dinas Sosial".into()),
            (2, "m-admin".into(), "Dinas Sosial dua".into()),
            (3, "m-admin".into(), "Dinas Sosial tiga".into()),
        ]
    );
    let etag = manager.get(&admin, Kind::Opd, "dinsos").unwrap().etag;
    let rollback = ChangeRequest {
        change: Change::Rollback { kind: Kind::Opd, id: "dinsos".into(), version: 1 },
        reason: Some("kembali".into()),
        if_match: Some(etag),
    };
    manager.apply(&admin, rollback).unwrap();
    let text = text_of(&site.redis_store(), "opds/dinsos.toml").unwrap();
    assert!(text.contains("name = \"Dinas Sosial\""), "{text}");
    let history = manager.history(&admin, Kind::Opd, "dinsos").unwrap();
    assert_eq!((history.len(), history[3].action.as_str()), (4, "rollback"));
}

#[test]
fn two_managers_revoking_keep_both_serials() {
    let site = Site::new(false);
    site.push();
    let ca = CertificateAuthority::open(&site.root().join("pki")).unwrap();
    let first = ca.issue_client("dinsos", "satu", Validity::days(30)).unwrap();
    let second = ca.issue_client("dinsos", "dua", Validity::days(30)).unwrap();
    // Two replicas: each its own working copy of the CA folder (the same CA key), the same Redis store.
    let other = site.root().join("replica-b");
    std::fs::create_dir_all(other.join("pki")).unwrap();
    for file in ["ca.crt", "ca.key", "ca.toml", "revoked.txt", "crl.pem", "server.crt", "server.key"] {
        std::fs::copy(site.root().join("pki").join(file), other.join("pki").join(file)).unwrap();
    }
    std::fs::write(other.join("redis.toml"), site.config_text("redis")).unwrap();
    let manager_a = site.manager();
    let manager_b = Manager::open(&Config::load(&other.join("redis.toml")).unwrap()).unwrap();
    let revoke = |manager: &Manager, serial: &str| {
        let actor = manager.operator_actor("m-keamanan").unwrap();
        let request = ChangeRequest {
            change: Change::RevokeCertificate { serial_hex: serial.to_string() },
            reason: Some("kunci bocor".into()),
            if_match: None,
        };
        manager.apply(&actor, request).map(|_| ())
    };
    revoke(&manager_a, &first.serial_hex).unwrap();
    revoke(&manager_b, &second.serial_hex).unwrap();

    let shared = site.redis_store().shared_ca().unwrap().expect("the shared revocation list");
    let serials: Vec<&str> = shared.revoked.lines().collect();
    assert!(
        serials.contains(&first.serial_hex.as_str()) && serials.contains(&second.serial_hex.as_str()),
        "{serials:?}"
    );
    // The CRL in Redis parses with the gateway's own reader and lists both serials.
    let crl_file = site.root().join("shared-crl.pem");
    std::fs::write(&crl_file, &shared.crl_pem).unwrap();
    let crls = penghubung::tls::read_crls(&crl_file).unwrap();
    assert_eq!(crls.len(), 1);
    for serial in [&first.serial_hex, &second.serial_hex] {
        let bytes: Vec<u8> =
            (0..serial.len()).step_by(2).map(|i| u8::from_str_radix(&serial[i..i + 2], 16).unwrap()).collect();
        assert!(crls[0].as_ref().windows(bytes.len()).any(|w| w == bytes.as_slice()), "{serial} in the CRL");
    }
    // Replica B's local files have both too; replica A's has its own (the follower writes the rest).
    let local_b = std::fs::read_to_string(other.join("pki/revoked.txt")).unwrap();
    assert!(local_b.contains(&first.serial_hex) && local_b.contains(&second.serial_hex), "{local_b}");
    // Both revocations are in the journal, attributed.
    let revocations = site.redis_store().journal().unwrap().revocations().unwrap();
    assert_eq!(revocations.len(), 2);
    assert!(revocations.iter().all(|e| e.who == "m-keamanan" && e.action == "revoke_certificate"));
}
