//! Graceful shutdown: SIGTERM stops accepting and lets an in-flight slow request finish; a request that
//! outlives the grace period is cut when it ends.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use http::Response;
use penghubung::ShutdownOutcome;
use penghubung_tests::{docs, full, get, write_setup, GatewayProcess, TestGateway, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_slow_request() {
    let slow = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Response::new(full("selesai"))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(
        dir.path(),
        &[docs::opd("dinkes"), docs::service("dinkes", "lambat", &[slow.url()], "", "")],
        "[server]\nshutdown_grace = \"10s\"\n",
    );
    let mut gw = GatewayProcess::start(&config);
    let url = format!("{}/dinkes/lambat/v1/x", gw.url);
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "selesai");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit after draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    assert!(gw.log().contains("drained"), "{}", gw.log());
    assert!(std::net::TcpStream::connect(gw.addr).is_err(), "the listener is closed");
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let stuck = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Response::new(full("never"))
    })
    .await;
    let mut gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "macet", &[stuck.url()], "request_timeout = \"60s\"", "")],
        "[server]\nshutdown_grace = \"300ms\"\n",
    )
    .await;
    let url = format!("{}/dinkes/macet/v1/x", gw.url);
    let _pending = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let outcome = gw.gateway.take().unwrap().shutdown().await;
    assert_eq!(outcome, ShutdownOutcome::DeadlineReached);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// Reads lines from a child's stdout until one starts with `prefix`.
pub fn wait_for_line(reader: &mut BufReader<std::process::ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the process ended before printing `{prefix}`");
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

#[test]
fn sigterm_right_after_the_listener_is_announced_still_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(dir.path(), &[docs::opd("dinkes")], "");
    let mut gw = GatewayProcess::start(&config);
    gw.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "handled, not killed by the default action: {}", gw.log());
}
