//! Hot reload: a new service appears without restart and without failing in-flight requests; an invalid
//! document is rejected and the previous snapshot keeps serving.

use std::time::Duration;

use http::Response;
use penghubung::reload::Reloaded;
use penghubung_tests::{docs, full, get, TestGateway, Upstream};

#[tokio::test]
async fn a_new_service_is_served_without_restart_and_in_flight_requests_finish() {
    let slow = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Response::new(full("slow but fine"))
    })
    .await;
    let fresh = Upstream::text("layanan baru").await;
    let gw =
        TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "lambat", &[slow.url()], "", "")], "").await;
    let before = gw.gateway().snapshot().generation;
    assert_eq!(get(&format!("{}/dinsos/bansos/v1/x", gw.url)).await.status, 404);

    let url = format!("{}/dinkes/lambat/v1/x", gw.url);
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (key, text) = docs::opd("dinsos");
    gw.put_document(&key, &text);
    let (key, text) = docs::service("dinsos", "bansos", &[fresh.url()], "", "");
    gw.put_document(&key, &text);
    let after = gw.wait_generation_above(before).await;
    // Both documents may land in one reload or two; wait until the service is there.
    let mut r = get(&format!("{}/dinsos/bansos/v1/x", gw.url)).await;
    for _ in 0..100 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        r = get(&format!("{}/dinsos/bansos/v1/x", gw.url)).await;
    }
    assert_eq!(r.status, 200, "generation {after}: {}", r.text());
    assert_eq!(r.text(), "layanan baru");
    let old = in_flight.await.unwrap();
    assert_eq!(old.status, 200, "the request in flight during the reload finished");
    assert_eq!(old.text(), "slow but fine");
}

#[tokio::test]
async fn an_invalid_document_is_rejected_and_the_old_snapshot_keeps_serving() {
    let up = Upstream::text("tetap jalan").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    let generation = gw.gateway().snapshot().generation;
    // Broken: unknown classification and a bad endpoint, in a document that replaces the working one.
    let broken = format!(
        "opd = \"dinkes\"\nname = \"rm\"\nversion = 1\ntitle = \"rm\"\nclassification = \"super\"\n[upstream]\nendpoints = [\"{}\", \"gopher://x\"]\n",
        up.url()
    );
    gw.put_document("services/dinkes/rm.toml", &broken);
    let problems = match gw.gateway().reload() {
        Err(problems) => problems,
        Ok(outcome) => panic!("an invalid document was accepted: {outcome:?}"),
    };
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(problems.iter().all(|p| p.file.ends_with("services/dinkes/rm.toml")), "{problems:?}");
    assert!(problems.iter().all(|p| p.line > 0), "{problems:?}");
    // The watcher's reload also failed; the old snapshot is still the one serving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.gateway().snapshot().generation, generation);
    let r = get(&format!("{}/dinkes/rm/v1/x", gw.url)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "tetap jalan");
    // Fixing it is picked up again.
    let (key, text) = docs::service("dinkes", "rm", &[up.url()], "request_timeout = \"5s\"", "");
    gw.put_document(&key, &text);
    gw.wait_generation_above(generation).await;
    assert!(matches!(gw.gateway().reload(), Ok(Reloaded::Unchanged(_))));
}

#[tokio::test]
async fn a_cross_document_error_is_rejected_too() {
    let up = Upstream::text("ok").await;
    let gw = TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "")], "").await;
    // A service of an OPD that does not exist.
    let (key, text) = docs::service("tidakada", "x", &[up.url()], "", "");
    gw.put_document(&key, &text);
    let problems = gw.gateway().reload().unwrap_err();
    assert!(problems.iter().any(|p| p.message.contains("OPD `tidakada` is not registered")), "{problems:?}");
    assert_eq!(get(&format!("{}/dinkes/rm/v1/x", gw.url)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_documents_when_watching_is_off() {
    let up = Upstream::text("lewat SIGHUP").await;
    let dir = tempfile::tempdir().unwrap();
    let config = penghubung_tests::write_setup(dir.path(), &[docs::opd("dinkes")], "[reload]\nwatch = false\n");
    // write_setup already wrote a [reload] table: keep only ours.
    let text = std::fs::read_to_string(&config).unwrap().replacen("[reload]\ndebounce = \"50ms\"\n", "", 1);
    std::fs::write(&config, text).unwrap();
    let gw = penghubung_tests::GatewayProcess::start(&config);
    let url = format!("{}/dinkes/baru/v1/x", gw.url);
    assert_eq!(get(&url).await.status, 404);
    let (key, text) = docs::service("dinkes", "baru", &[up.url()], "", "");
    std::fs::create_dir_all(dir.path().join("policies/services/dinkes")).unwrap();
    std::fs::write(dir.path().join("policies").join(key), text).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&url).await.status, 404, "without watching, nothing changes by itself");
    gw.signal("HUP");
    let mut status = 0;
    for _ in 0..100 {
        status = get(&url).await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "{}", gw.log());
    assert!(gw.log().contains("SIGHUP"), "{}", gw.log());
}
