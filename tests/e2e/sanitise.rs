//! No NIK reaches the access log, the audit trail or the Redis stream in clear through a value the caller
//! controls. A generated corpus of valid NIKs (region, birth date, serial), each written in one of many
//! spellings (plain, grouped with `-`, `.`, `_`, spaces, `+` or `%20`, percent-encoded once or twice, inside
//! longer strings, at the start or the end, inside mixed-case hex), is sent in every field the gateway logs or
//! records, and in those it does not: request id, purpose (on a grant without a purpose list and on one with),
//! `traceparent` (trace id and parent id), the method token (pass-through and templated services), path and
//! query, `User-Agent`, `Referer`, other header values, bodies, and requests that end in errors. The real
//! binary runs with mTLS, the access log on stderr, the audit trail on and shipping to a real `redis-server`;
//! afterwards neither the log, nor the segment files, nor the stream entries hold any NIK of the corpus, in any
//! of the spellings the test knows how to read back (raw, and percent-decoded with separators removed).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::{Method, Request};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use penghubung_tests::mtls::{client_config, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::redis::RedisServer;
use penghubung_tests::{docs, empty, full, send, Collected, GatewayProcess, TestBody, Upstream};

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, TestBody>;

fn spiffe(opd: &str, app: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/opd/{opd}/app/{app}")
}

/// Province codes of Indonesia (the first two digits of a NIK).
const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65, 71, 72, 73, 74, 75,
    76, 81, 82, 91, 92, 93, 94, 95, 96,
];

/// `count` distinct valid NIKs: province, regency, district, birth date `DDMMYY` (day + 40 for women), serial.
fn generate_niks(rng: &mut fastrand::Rng, count: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut niks = Vec::new();
    while niks.len() < count {
        let province = PROVINCES[rng.usize(..PROVINCES.len())];
        let day = rng.u32(1..=28) + if rng.bool() { 40 } else { 0 };
        let nik = format!(
            "{province:02}{:02}{:02}{day:02}{:02}{:02}{:04}",
            rng.u32(1..=79),
            rng.u32(1..=49),
            rng.u32(1..=12),
            rng.u32(0..=99),
            rng.u32(1..=9999)
        );
        assert_eq!(nik.len(), 16);
        if seen.insert(nik.clone()) {
            niks.push(nik);
        }
    }
    niks
}

/// Random hex digits, lower case or mixed case.
fn hex(rng: &mut fastrand::Rng, len: usize, mixed_case: bool) -> String {
    (0..len)
        .map(|_| {
            let c = b"0123456789abcdef"[rng.usize(..16)] as char;
            if mixed_case && rng.bool() {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Every spelling of a NIK the corpus uses.
fn spellings(nik: &str, rng: &mut fastrand::Rng) -> Vec<String> {
    let groups = |sep: &str| [&nik[0..4], &nik[4..8], &nik[8..12], &nik[12..16]].join(sep);
    let percent = |upper: bool| {
        nik.bytes().map(|d| if upper { format!("%{d:02X}") } else { format!("%{d:02x}") }).collect::<String>()
    };
    vec![
        nik.to_string(),
        groups("-"),
        format!("{}.{}.{}", &nik[0..6], &nik[6..12], &nik[12..16]),
        groups("_"),
        groups(" "),
        groups("+"),
        groups("%20"),
        groups(" - "),
        percent(true),
        percent(false),
        nik.bytes().map(|d| format!("%25{d:02x}")).collect(),
        format!("cek-{nik}"),
        format!("{nik}-selesai"),
        format!("{}{nik}{}", hex(rng, 6, true), hex(rng, 6, true)),
        format!("9{nik}7"),
        format!("NIK:{nik}"),
    ]
}

/// Makes a spelling fit a URI: spaces and other bytes outside the unreserved/sub-delims set percent-encoded.
fn uri_safe(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `traceparent` carrying `nik` in its trace id (at the start, the middle or the end, hex around it in lower
/// or mixed case) or as its parent id.
fn traceparent_with(nik: &str, variant: usize, rng: &mut fastrand::Rng) -> String {
    let mixed = variant % 2 == 1;
    let (trace, parent) = match variant % 4 {
        0 => (format!("{nik}{}", hex(rng, 16, mixed)), hex(rng, 16, false)),
        1 => (format!("{}{nik}{}", hex(rng, 8, mixed), hex(rng, 8, mixed)), hex(rng, 16, false)),
        2 => (format!("{}{nik}", hex(rng, 16, mixed)), hex(rng, 16, false)),
        _ => (hex(rng, 32, false), nik.to_string()),
    };
    format!("00-{trace}-{parent}-01")
}

/// A client over HTTP/1.1 only, or over HTTP/2 only.
fn client(config: rustls::ClientConfig, http2: bool) -> HttpsClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_only();
    let connector = if http2 { builder.enable_http2().build() } else { builder.enable_http1().build() };
    Client::builder(TokioExecutor::new()).http2_only(http2).build(connector)
}

/// Percent-decodes `%XY` (once).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ways a NIK can be read back from `text`: as written, and percent-decoded twice with every separator the
/// corpus uses removed (which puts `3201-0101-…` or `%33%32…` back together).
fn readings(text: &str) -> [String; 2] {
    let decoded = percent_decode(&percent_decode(text));
    let joined: String = decoded.chars().filter(|c| !matches!(c, '-' | '.' | '_' | ' ' | '+')).collect();
    [text.to_string(), joined]
}

/// The first NIK of `niks` that can be read in `text`, with the line it is on.
fn nik_in(text: &str, niks: &[String]) -> Option<String> {
    let readings = readings(text);
    for nik in niks {
        for reading in &readings {
            if let Some(at) = reading.find(nik.as_str()) {
                let line = reading[..at].lines().last().unwrap_or_default();
                let rest: String = reading[at..].chars().take(40).collect();
                return Some(format!("NIK {nik}: {line}{rest}…"));
            }
        }
    }
    None
}

/// Asserts that no NIK of `niks` can be read in `text` (`what` names the artefact).
fn assert_no_nik(what: &str, text: &str, niks: &[String]) {
    if let Some(found) = nik_in(text, niks) {
        panic!("{what} holds a NIK in clear: {found}");
    }
}

/// The check reads back every spelling of the corpus, wherever it stands in a line: a leak would be seen.
#[test]
fn the_leak_check_reads_back_every_spelling_of_the_corpus() {
    let mut rng = fastrand::Rng::with_seed(17);
    let niks = generate_niks(&mut rng, 200);
    for nik in &niks {
        assert!(nik[6..8].parse::<u32>().unwrap() % 40 <= 31 && nik[12..].parse::<u32>().unwrap() >= 1, "{nik}");
        for spelled in spellings(nik, &mut rng) {
            for text in [
                format!("INFO penghubung::access: request_id=\"{spelled}\" method={spelled} status=200"),
                format!("{{\"seq\":9,\"purpose\":\"{spelled}\"}}"),
                format!("line={}", uri_safe(&spelled)),
            ] {
                assert!(nik_in(&text, &niks).is_some_and(|f| f.contains(nik.as_str())), "not seen: {text}");
            }
        }
    }
    let unrelated = "INFO request_id=\"4bf92f3577b34da6a3ce929d0e0e4736\" latency_us=1234 time=2026-12-06T10:00:00Z";
    assert_eq!(nik_in(unrelated, &niks), None);
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Sends `request`; the collected answer (or a panic naming `what`).
async fn exchange(client: &HttpsClient, request: Request<TestBody>, what: &str) -> Collected {
    match tokio::time::timeout(Duration::from_secs(10), send(client, request)).await {
        Ok(answer) => answer,
        Err(_) => panic!("{what}: no answer"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_corpus_of_nik_injections_never_reaches_a_log_a_record_or_the_stream_in_clear() {
    let seed =
        std::env::var("PENGHUBUNG_NIK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("NIK corpus seed {seed} (PENGHUBUNG_NIK_SEED={seed} repeats it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let niks = generate_niks(&mut rng, 48);

    let redis = RedisServer::start();
    let upstream = Upstream::start(|req: http::Request<hyper::body::Incoming>| async move {
        let body = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
        let mut response = http::Response::new(full(format!("{{\"diterima\":{body}}}")));
        response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
        response
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let operations = format!(
        "{}{}",
        docs::operation("ambil-penduduk", "GET", "/penduduk/{nik}"),
        docs::operation("verifikasi-nik", "POST", "/verifikasi")
    );
    let purposes_grant = (
        "grants/simpus-arsip.toml".to_string(),
        "id = \"simpus-arsip\"\nclient = \"dinkes/simpus\"\nservice = \"disdukcapil/arsip/v1\"\noperations = [\"*\"]\n\
         tier = \"unlimited\"\npurposes = [\"pelayanan-kesehatan\"]\n"
            .to_string(),
    );
    let documents = [
        docs::opd("disdukcapil"),
        docs::opd("dinsos"),
        docs::opd("dinkes"),
        docs::service("disdukcapil", "kependudukan", &[upstream.url()], "", &operations),
        docs::service("disdukcapil", "arsip", &[upstream.url()], "", ""),
        docs::client("dinsos", "sikasos", &spiffe("dinsos", "sikasos"), true),
        docs::client("dinkes", "simpus", &spiffe("dinkes", "simpus"), true),
        // Grants without a purpose list: any purpose of the grammar.
        docs::grant("sikasos-penduduk", "dinsos/sikasos", "disdukcapil/kependudukan/v1", &["*"]),
        docs::grant("sikasos-arsip", "dinsos/sikasos", "disdukcapil/arsip/v1", &["*"]),
        purposes_grant,
        docs::unlimited_tier(),
    ];
    let stream_key = "penghubung:audit:gw-nik";
    let config = format!(
        "[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 50\ncheckpoint_interval = \"1s\"\n\
         gateway_id = \"gw-nik\"\n\n{}",
        redis.config_section("timeout = \"500ms\"\n")
    );
    let config = write_mtls_setup(dir.path(), &documents, &pki, &config);
    let mut gateway = GatewayProcess::start(&config);
    let base = format!("https://{}", gateway.addr);
    let penduduk = format!("{base}/disdukcapil/kependudukan/v1");
    let arsip = format!("{base}/disdukcapil/arsip/v1");
    let sikasos_identity = pki.client("dinsos", "sikasos");
    let simpus_identity = pki.client("dinkes", "simpus");
    let sikasos = [
        client(client_config(&pki.ca_pem(), Some(&sikasos_identity)), false),
        client(client_config(&pki.ca_pem(), Some(&sikasos_identity)), true),
    ];
    let simpus = [
        client(client_config(&pki.ca_pem(), Some(&simpus_identity)), false),
        client(client_config(&pki.ca_pem(), Some(&simpus_identity)), true),
    ];

    // A clean exchange first: what the caller sends is kept when it holds no NIK.
    let request = Request::get(format!("{penduduk}/penduduk/x"))
        .header("x-request-id", "uji-bersih-1")
        .header("x-penghubung-purpose", "penyaluran-bansos-2027")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .body(empty())
        .unwrap();
    let answer = exchange(&sikasos[0], request, "clean").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["x-request-id"], "uji-bersih-1");

    let mut sent = 1;
    let mut methods_refused = 0;
    for (k, nik) in niks.iter().enumerate() {
        let spelled = spellings(nik, &mut rng);
        // Each field takes another spelling of the same NIK, so every spelling reaches every field.
        let pick = |field: usize| spelled[(k + field * 5) % spelled.len()].clone();
        let (id, purpose, agent, other, in_path, in_query, method) =
            (pick(0), pick(1), pick(2), pick(3), pick(4), pick(5), pick(6));
        // A path segment still percent-encoded after one decoding is refused before anything else (400
        // `request.invalid_path`, checked below); the templated and pass-through cases take another spelling.
        let double_encoded_path = in_path.contains("%25").then(|| in_path.clone());
        let in_path = if double_encoded_path.is_some() { spelled[(k + 7) % 10].clone() } else { in_path };
        let trace = traceparent_with(nik, k, &mut rng);
        let via = k % 2; // HTTP/1.1 and HTTP/2 in turn
        let with_headers = |builder: http::request::Builder, purpose: &str| {
            builder
                .header("x-request-id", id.as_str())
                .header("x-penghubung-purpose", purpose)
                .header("traceparent", trace.as_str())
                .header("user-agent", agent.as_str())
                .header("referer", format!("https://siak.example/{}", uri_safe(&other)))
                .header("x-catatan", other.as_str())
                .header("x-nik", nik.as_str())
        };
        let what = |case: &str| format!("NIK #{k} {nik}, {case}");

        // 1. The NIK as the purpose, on a grant without a purpose list: refused by the grammar.
        let request = with_headers(
            Request::get(format!("{penduduk}/penduduk/{}?nik={}", uri_safe(&in_path), uri_safe(&in_query))),
            &purpose,
        )
        .body(empty())
        .unwrap();
        let answer = exchange(&sikasos[via], request, &what("purpose")).await;
        assert_eq!((answer.status.as_u16(), answer.code()), (403, "policy.purpose".to_string()), "{}", what("purpose"));
        let echoed = answer.headers["x-request-id"].to_str().unwrap().to_string();
        assert!(echoed != id && echoed.len() == 32, "{}: request id {echoed}", what("request id"));

        // 2. The same with a valid purpose: forwarded, answered, recorded.
        let request = with_headers(
            Request::get(format!("{penduduk}/penduduk/{}?nik={}", uri_safe(&in_path), uri_safe(&in_query))),
            "penyaluran-bansos",
        )
        .body(empty())
        .unwrap();
        let answer = exchange(&sikasos[via], request, &what("templated")).await;
        assert_eq!(answer.status, 200, "{}: {}", what("templated"), answer.text());

        // 3. A pass-through service, the NIK in the path and the query.
        let request = with_headers(
            Request::get(format!("{arsip}/{}/{nik}?q={}", uri_safe(&in_path), uri_safe(&in_query))),
            "penyaluran-bansos",
        )
        .body(empty())
        .unwrap();
        let answer = exchange(&sikasos[via], request, &what("pass-through")).await;
        assert_eq!(answer.status, 200, "{}: {}", what("pass-through"), answer.text());

        // 4. The NIK in the method token, on the pass-through and on the templated service: 501.
        for (target, tokens) in
            [(&arsip, [method.clone(), nik.clone()]), (&penduduk, [nik.clone(), format!("GET{nik}")])]
        {
            for token in tokens {
                let Ok(method) = Method::from_bytes(token.as_bytes()) else { continue };
                let request = with_headers(Request::builder().method(method).uri(format!("{target}/penduduk/1")), "x")
                    .body(empty())
                    .unwrap();
                let answer = exchange(&sikasos[via], request, &what("method")).await;
                assert_eq!(
                    (answer.status.as_u16(), answer.code()),
                    (501, "request.method_not_implemented".to_string()),
                    "{}: {token}",
                    what("method")
                );
                assert!(!answer.text().contains(nik.as_str()), "the token is not echoed");
                sent += 1;
                methods_refused += 1;
            }
        }

        // 5. The NIK as the purpose on a grant with a purpose list.
        let request = with_headers(Request::get(format!("{arsip}/x")), &purpose).body(empty()).unwrap();
        let answer = exchange(&simpus[via], request, &what("purpose list")).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "policy.purpose".to_string()),
            "{}",
            what("purpose list")
        );

        // 6. In a body (the audit keeps its keyed hash only), with a purpose of the list.
        let body = format!("{{\"nik\":\"{nik}\",\"catatan\":\"{}\"}}", other.replace('"', ""));
        let request = with_headers(Request::post(format!("{arsip}/verifikasi")), "pelayanan-kesehatan")
            .header("content-type", "application/json")
            .body(full(body))
            .unwrap();
        let answer = exchange(&simpus[via], request, &what("body")).await;
        assert_eq!(answer.status, 200, "{}: {}", what("body"), answer.text());

        // 7. Errors: a refused path, no such route, and no such operation of the service.
        if let Some(path) = &double_encoded_path {
            let request = with_headers(Request::get(format!("{penduduk}/penduduk/{}", uri_safe(path))), "x")
                .body(empty())
                .unwrap();
            let answer = exchange(&sikasos[via], request, &what("refused path")).await;
            assert_eq!(
                (answer.status.as_u16(), answer.code()),
                (400, "request.invalid_path".to_string()),
                "{}",
                what("refused path")
            );
            sent += 1;
        }
        let request =
            with_headers(Request::get(format!("{base}/disdukcapil/{}/v1/x", uri_safe(&in_path))), "penyaluran-bansos")
                .body(empty())
                .unwrap();
        assert_eq!(exchange(&sikasos[via], request, &what("route")).await.status, 404);
        let request =
            with_headers(Request::delete(format!("{penduduk}/tidak-ada/{}", uri_safe(&in_path))), "penyaluran-bansos")
                .body(empty())
                .unwrap();
        let status = exchange(&sikasos[via], request, &what("operation")).await.status;
        assert!(status == 404 || status == 405, "{}: {status}", what("operation"));
        sent += 7;
    }
    assert!(methods_refused >= niks.len() * 3, "most method tokens were sent ({methods_refused})");

    // Everything recorded is shipped, then the gateway stops (closing checkpoint, shipped on the way out).
    let health = client(client_config(&pki.ca_pem(), Some(&sikasos_identity)), false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = Request::get(format!("{base}/_penghubung/health")).body(empty()).unwrap();
        let audit = exchange(&health, request, "health").await.json()["audit"].clone();
        if audit["shipping"]["redis"] == "up"
            && audit["shipping"]["shipped_seq"] == audit["written_seq"]
            && audit["written_seq"].as_u64() > Some(sent as u64)
        {
            break;
        }
        assert!(Instant::now() < deadline, "shipping did not catch up: {audit}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.signal("TERM");
    let _ = gateway.child.wait();

    let log = gateway.log();
    let access: Vec<&str> = log.lines().filter(|l| l.contains("penghubung::access")).collect();
    assert!(access.len() >= sent, "one access line per request: {} of {sent}", access.len());
    assert!(access.iter().any(|l| l.contains("uji-bersih-1") && l.contains("penyaluran-bansos-2027")));
    let refused: Vec<&&str> = access.iter().filter(|l| l.contains("request.method_not_implemented")).collect();
    assert_eq!(refused.len(), methods_refused);
    assert!(refused.iter().all(|l| l.contains("method=-")), "{}", refused[0]);
    eprintln!("{sent} requests; a refused method in the access log: {}", refused[0]);
    assert_no_nik("the access log", &log, &niks);

    let audit_dir = dir.path().join("audit");
    let mut lines = Vec::new();
    for file in segment_files(&audit_dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert_no_nik(&file.display().to_string(), &text, &niks);
        lines.extend(text.lines().map(str::to_string));
    }
    let records: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let exchanges: Vec<&serde_json::Value> = records.iter().filter(|r| r["kind"] == "exchange").collect();
    assert!(exchanges.len() >= sent, "one record per request: {} of {sent}", exchanges.len());
    let clean = exchanges.iter().find(|r| r["request_id"] == "uji-bersih-1").expect("the clean exchange");
    assert_eq!(
        (&clean["purpose"], &clean["trace_id"]),
        (&"penyaluran-bansos-2027".into(), &"4bf92f3577b34da6a3ce929d0e0e4736".into())
    );
    for record in &exchanges {
        if record["request_id"] != "uji-bersih-1" {
            let id = record["request_id"].as_str().unwrap();
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "a generated request id: {id}");
        }
        let trace = record["trace_id"].as_str().unwrap();
        assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()), "{trace}");
    }
    let hashed = exchanges.iter().filter(|r| r["nik"].as_array().is_some_and(|n| !n.is_empty())).count();
    assert!(hashed >= niks.len() * 3, "NIKs in paths and bodies are kept as keyed hashes ({hashed})");
    assert!(exchanges.iter().any(|r| r["method"] == "-" && r["code"] == "request.method_not_implemented"));

    let stream = redis.stream(stream_key);
    assert!(stream.len() >= exchanges.len(), "shipped: {} entries for {} records", stream.len(), exchanges.len());
    let shipped: String = stream
        .iter()
        .flat_map(|(id, fields)| std::iter::once(id.clone()).chain(fields.iter().map(|(k, v)| format!("{k}={v}"))))
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_nik("the Redis stream", &shipped, &niks);
}
