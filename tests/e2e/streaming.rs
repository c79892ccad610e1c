//! Bodies stream both ways: 1 GiB up and 1 GiB down through the real binary with bounded memory, and body
//! limits answer 413 (declared length before anything is sent; chunked bodies when they pass the limit).

use http::{Request, Response};
use penghubung_tests::{
    count_pattern, docs, full, http1_client, send, write_setup, GatewayProcess, PatternBody, TestGateway, Upstream,
};

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_each_way_streams_through_in_bounded_memory() {
    let up = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        if req.method() == http::Method::POST {
            let received = count_pattern(req.into_body()).await;
            Response::new(full(format!("{received:?}")))
        } else {
            Response::new(PatternBody::new(GIB, 64 * 1024).boxed())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(
        dir.path(),
        &[
            docs::opd("arsip"),
            docs::service("arsip", "berkas", &[up.url()], "request_timeout = \"120s\"", "max_request_body = \"2GiB\""),
        ],
        "[log]\nlevel = \"info\"\n",
    );
    let gw = GatewayProcess::start(&config);
    let baseline = gw.peak_rss_kib();
    let client = http1_client();

    let upload = Request::post(format!("{}/arsip/berkas/v1/unggah", gw.url))
        .body(PatternBody::new(GIB, 64 * 1024).boxed())
        .unwrap();
    let r = send(&client, upload).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("Ok({GIB})"), "the upstream received exactly 1 GiB, byte for byte");

    let response = client
        .request(Request::get(format!("{}/arsip/berkas/v1/unduh", gw.url)).body(penghubung_tests::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(count_pattern(response.into_body()).await, Ok(GIB), "the caller received exactly 1 GiB");

    let peak = gw.peak_rss_kib();
    eprintln!("gateway peak RSS: {baseline} KiB at start, {peak} KiB after 2 GiB streamed");
    // Growth, not an absolute figure: the start-up footprint depends on the build and the allocator. Buffering
    // either body would add 1 GiB.
    let growth = peak.saturating_sub(baseline);
    assert!(growth < 48 * 1024, "peak RSS grew by {growth} KiB: the body was buffered, not streamed");
}

#[tokio::test]
async fn body_limits_answer_413() {
    let up = Upstream::start(|req: Request<hyper::body::Incoming>| async move {
        let n = count_pattern(req.into_body()).await;
        Response::new(full(format!("{n:?}")))
    })
    .await;
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rm", &[up.url()], "", "max_request_body = \"1MiB\"")],
        "",
    )
    .await;
    let client = http1_client();
    // Declared length over the limit: refused before anything reaches the upstream.
    let r = send(&client, Request::post(format!("{}/dinkes/rm/v1/x", gw.url)).body(full(vec![0u8; 2 << 20])).unwrap())
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "request.body_too_large");
    assert_eq!(up.hits(), 0);
    // Chunked (no declared length) over the limit: cut off when it passes the limit.
    let body = PatternBody::new(3 << 20, 16 * 1024).boxed();
    let body = http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(http_body_util::BodyStream::new(body)));
    let r = send(&client, Request::post(format!("{}/dinkes/rm/v1/x", gw.url)).body(body).unwrap()).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.code(), "request.body_too_large");
    // Under the limit passes.
    let r = send(
        &client,
        Request::post(format!("{}/dinkes/rm/v1/x", gw.url)).body(PatternBody::new(1 << 20, 8192).boxed()).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("Ok({})", 1 << 20));
}
