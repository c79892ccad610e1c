//! Routing: services and operations are found, unknown paths get 404, wrong methods 405 with `Allow`,
//! and hostile paths never reach another service.

use http::Request;
use penghubung_tests::{docs, empty, get, http1_client, raw_exchange, raw_status, send, TestGateway, Upstream};

fn operations() -> String {
    docs::operation("ambil-pasien", "GET", "/pasien/{id}")
        + &docs::operation("kunjungan", "GET", "/pasien/{id}/kunjungan")
        + &docs::operation("baru", "POST", "/pasien")
}

#[tokio::test]
async fn routes_to_the_service_and_operation() {
    let dinkes = Upstream::text("dari dinkes").await;
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rekam-medis", &[dinkes.url()], "", &operations())],
        "",
    )
    .await;
    let r = get(&format!("{}/dinkes/rekam-medis/v1/pasien/RM-1?x=1", gw.url)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "dari dinkes");
    let seen = dinkes.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/pasien/RM-1?x=1", "the upstream gets the path after /v1 and the query");
    let r = get(&format!("{}/dinkes/rekam-medis/v1/pasien/RM-1/kunjungan", gw.url)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn unknown_routes_are_404_problem_json() {
    let up = Upstream::text("x").await;
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rekam-medis", &[up.url()], "", &operations())],
        "",
    )
    .await;
    for path in [
        "/dinkes/lain/v1/pasien/1",
        "/dinkes/rekam-medis/v2/pasien/1",
        "/dinkes/rekam-medis/v1/dokter/1",
        "/",
        "/dinkes",
    ] {
        let r = get(&format!("{}{path}", gw.url)).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
        let json = r.json();
        assert_eq!(json["code"], "route.not_found", "{path}");
        assert_eq!(json["status"], 404);
        assert_eq!(json["request_id"], r.headers["x-request-id"].to_str().unwrap());
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let up = Upstream::text("x").await;
    let gw = TestGateway::start(
        &[docs::opd("dinkes"), docs::service("dinkes", "rekam-medis", &[up.url()], "", &operations())],
        "",
    )
    .await;
    let request = Request::delete(format!("{}/dinkes/rekam-medis/v1/pasien/RM-1", gw.url)).body(empty()).unwrap();
    let r = send(&http1_client(), request).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD");
    assert_eq!(r.code(), "route.method_not_allowed");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn service_without_operations_passes_every_path_through() {
    let up = Upstream::text("pass").await;
    let gw =
        TestGateway::start(&[docs::opd("bappeda"), docs::service("bappeda", "data", &[up.url()], "", "")], "").await;
    let r = get(&format!("{}/bappeda/data/v1/any/deep/path", gw.url)).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.seen()[0].uri, "/any/deep/path");
}

#[tokio::test]
async fn hostile_paths_never_reach_another_service() {
    let dinkes = Upstream::text("dinkes").await;
    let capil = Upstream::text("disdukcapil").await;
    let gw = TestGateway::start(
        &[
            docs::opd("dinkes"),
            docs::opd("disdukcapil"),
            docs::service("dinkes", "rekam-medis", &[dinkes.url()], "", ""),
            docs::service("disdukcapil", "kependudukan", &[capil.url()], "", ""),
        ],
        "[server]\nmax_uri_bytes = 2048\nmax_header_bytes = \"8KiB\"\n",
    )
    .await;
    let cases: &[(&str, u16)] = &[
        ("/dinkes/../disdukcapil/kependudukan/v1/penduduk", 400),
        ("/dinkes/rekam-medis/v1/../../../disdukcapil/kependudukan/v1/x", 400),
        ("/dinkes/rekam-medis/v1/%2e%2e/%2e%2e/%2e%2e/disdukcapil/kependudukan/v1/x", 400),
        ("/dinkes/rekam-medis/v1/..%2F..%2F..%2Fdisdukcapil%2Fkependudukan%2Fv1", 400),
        ("/dinkes%2Frekam-medis/v1/x", 400),
        ("/dinkes/rekam-medis/v1/a%5C..%5Cb", 400),
        ("//disdukcapil/kependudukan/v1/x", 400),
        ("/dinkes//rekam-medis/v1/x", 400),
        ("/dinkes/rekam-medis/v1/%00", 400),
        ("/dinkes/rekam-medis/v1/%zz", 400),
        ("/disdukcapil%2fkependudukan/v1/x", 400),
        ("/DISDUKCAPIL/kependudukan/v1/x", 404),
    ];
    for (path, expected) in cases {
        let response =
            raw_exchange(gw.addr, format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
        assert_eq!(raw_status(&response), *expected, "{path}: {response}");
        assert!(response.contains("application/problem+json"), "{path}: {response}");
    }
    // Overlong path: 414 from the gateway's own limit.
    let long = format!("/dinkes/rekam-medis/v1/{}", "a".repeat(3000));
    let response =
        raw_exchange(gw.addr, format!("GET {long} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(raw_status(&response), 414, "{response}");
    assert!(response.contains("request.uri_too_long"));
    // Huge headers: 431 (our limit first, hyper's buffer limit beyond it).
    for size in [9_000, 100_000] {
        let big = format!(
            "GET /dinkes/rekam-medis/v1/x HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(size)
        );
        let response = raw_exchange(gw.addr, big.as_bytes()).await;
        assert_eq!(raw_status(&response), 431, "{size}: {response}");
    }
    // Garbage instead of HTTP gets a 400, not a hang.
    let response = raw_exchange(gw.addr, b"\x16\x03\x01garbage\r\n\r\n").await;
    assert_eq!(raw_status(&response), 400, "{response}");
    assert_eq!(capil.hits(), 0, "nothing reached Disdukcapil");
    assert_eq!(dinkes.hits(), 0, "nothing hostile reached Dinkes either");
}

/// The class of `..;` and `%252e%252e`: segments that Java servlet containers read as dots once a path parameter
/// is cut, spellings that a second decoding or Unicode normalisation turns into dots or separators, and overlong
/// UTF-8. On a pass-through service every one is 400 `request.invalid_path` and none reaches the upstream;
/// ordinary parameters, dots and escapes still pass.
#[tokio::test]
async fn parameter_and_double_encoded_dot_segments_never_reach_the_upstream() {
    let up = Upstream::text("pass").await;
    let gw =
        TestGateway::start(&[docs::opd("bappeda"), docs::service("bappeda", "data", &[up.url()], "", "")], "").await;
    let refused = [
        "/bappeda/data/v1/..;/admin",
        "/bappeda/data/v1/a/..;jsessionid=x/..;/admin",
        "/bappeda/data/v1/.;/admin",
        "/bappeda/data/v1/%2e%2e;x/admin",
        "/bappeda/data/v1/..%3B/admin",
        "/bappeda/data/v1/;/admin",
        "/bappeda/data/v1/%252e%252e/%252e%252e/admin",
        "/bappeda/data/v1/..%252fadmin",
        "/bappeda/data/v1/%255c..%255cadmin",
        "/bappeda/data/v1/%25252e%25252e/admin",
        "/bappeda/data/v1/%25u002e%25u002e/admin",
        "/bappeda/data/v1/%c0%ae%c0%ae/admin",
        "/bappeda/data/v1/%e0%80%ae/admin",
        "/bappeda/data/v1/%ef%bc%8e%ef%bc%8e/admin",
        "/bappeda/data/v1/a%ef%bc%8fadmin",
        "/bappeda/data/v1/.../admin",
        "/bappeda/data/v1/..%20/admin",
    ];
    for path in refused {
        let response =
            raw_exchange(gw.addr, format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
        assert_eq!(raw_status(&response), 400, "{path}: {response}");
        assert!(response.contains("request.invalid_path"), "{path}: {response}");
    }
    assert_eq!(up.hits(), 0, "nothing refused reached the upstream");
    for path in ["/bappeda/data/v1/laporan;versi=2/a.json", "/bappeda/data/v1/100%25/a%3Bb", "/bappeda/data/v1/..a"] {
        let r = get(&format!("{}{path}", gw.url)).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let seen: Vec<String> = up.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(seen, ["/laporan;versi=2/a.json", "/100%25/a%3Bb", "/..a"], "forwarded as sent");
}

/// A segment with a path parameter never matches a template parameter: a servlet container would route
/// `rahasia;x` as the literal `rahasia`, an operation the caller may not have been matched to.
#[tokio::test]
async fn a_path_parameter_cannot_dress_a_literal_as_a_template_parameter() {
    let up = Upstream::text("x").await;
    let ops = docs::operation("ambil", "GET", "/pasien/{id}") + &docs::operation("rahasia", "GET", "/pasien/rahasia");
    let gw =
        TestGateway::start(&[docs::opd("dinkes"), docs::service("dinkes", "rekam-medis", &[up.url()], "", &ops)], "")
            .await;
    for path in ["/pasien/rahasia;x", "/pasien/rahasia;jsessionid=1", "/pasien/12;a=b"] {
        let r = get(&format!("{}/dinkes/rekam-medis/v1{path}", gw.url)).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "route.not_found", "{path}");
    }
    assert_eq!(up.hits(), 0);
    let r = get(&format!("{}/dinkes/rekam-medis/v1/pasien/RM-1", gw.url)).await;
    assert_eq!(r.status, 200);
}
