//! Adapters for national systems end to end: the gateway holds the credentials and tokens, the caller holds
//! none. Token caching under concurrency (one fetch for 100 callers), refresh ahead of expiry, one retry after a
//! 401, a failing token endpoint (503 with `Retry-After`, then recovery), the adapter's body limit (413 before
//! anything is sent), a SOAP envelope through a passthrough service, the `splp` adapter over mTLS against a
//! WSO2-like token endpoint, the generic adapters, `check`'s report of missing secrets, and no secret value in
//! any log line, audit segment, problem body or `check` output.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use penghubung::adapters::{ClientAuth, HttpClient, Secret, TokenProvider, TokenSource};
use penghubung_tests::mtls::{client_config, https_client, server_config, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::national::{
    base64, bearer_api, bearer_api_with_tls, write_secret, ClientAuthentication, TokenEndpoint, TokenEndpointSpec,
};
use penghubung_tests::redis::RedisServer;
use penghubung_tests::{
    docs, empty, full, http1_client, run_cli, send, write_setup, Collected, GatewayProcess, PatternBody, TestGateway,
    Upstream,
};

const CONSUMER_KEY: &str = "ck-Lampung-9f3a2c71";
const CONSUMER_SECRET: &str = "cs-Timur-5d8e0b44aa";

/// `[secrets] dir` pointing at `dir`.
fn secrets_config(dir: &Path) -> String {
    format!("[secrets]\ndir = \"{}\"\n", dir.display())
}

/// An `[adapter]` block for `splp` reading `splp-key` / `splp-secret`; `adapter_extra` goes into `[adapter]`,
/// `settings_extra` into its settings.
fn splp_adapter(token_url: &str, adapter_extra: &str, settings_extra: &str) -> String {
    format!(
        "[adapter]\nname = \"splp\"\n{adapter_extra}\n[adapter.settings]\ntoken_url = \"{token_url}\"\nconsumer_key = {{ secret = \"splp-key\" }}\nconsumer_secret = {{ secret = \"splp-secret\" }}\n{settings_extra}\n"
    )
}

/// The secrets directory of a test, holding the SPLP consumer key and secret.
fn splp_secrets() -> tempfile::TempDir {
    let secrets = tempfile::tempdir().unwrap();
    write_secret(secrets.path(), "splp-key", CONSUMER_KEY);
    write_secret(secrets.path(), "splp-secret", CONSUMER_SECRET);
    secrets
}

/// A gateway (plaintext listener, policy off) with one `splp` service `dinkes/nasional/v1` in front of `api`.
async fn splp_gateway(secrets: &Path, token_url: &str, api: &Upstream, adapter_extra: &str) -> TestGateway {
    let service = docs::service("dinkes", "nasional", &[api.url()], "", &splp_adapter(token_url, adapter_extra, ""));
    TestGateway::start(&[docs::opd("dinkes"), service], &secrets_config(secrets)).await
}

fn ok_api(
    text: &'static str,
) -> impl Fn(Request<hyper::body::Incoming>) -> std::future::Ready<Response<penghubung_tests::TestBody>> + Clone {
    move |_request| std::future::ready(Response::new(full(text)))
}

/// A client of the adapters' own HTTP client, without TLS roots (the doubles here speak plain HTTP).
fn plain_http_client() -> HttpClient {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    HttpClient::new(tls, Duration::from_secs(5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_token_cache_makes_one_token_request_for_100_concurrent_callers() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;

    // The provider alone: 100 concurrent callers, one token request, the same token for all.
    let source = TokenSource::ClientCredentials {
        token_url: endpoint.url().parse().unwrap(),
        client_id: Secret::literal(CONSUMER_KEY),
        client_secret: Secret::literal(CONSUMER_SECRET),
        auth: ClientAuth::Basic,
        scope: None,
    };
    let provider = Arc::new(TokenProvider::new(source, plain_http_client()));
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let provider = Arc::clone(&provider);
            tokio::spawn(async move { provider.token().await.map(|t| t.value().to_string()) })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().expect("a token"));
    }
    assert_eq!(endpoint.fetches(), 1, "exactly one token request for 100 concurrent callers");
    assert_eq!(tokens.len(), 1, "all callers share the one token");
    assert_eq!(provider.fetches(), 1);

    // Through the gateway: 100 concurrent requests to a fresh splp service, one more token request.
    let secrets = splp_secrets();
    let api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "").await;
    let client = http1_client();
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let (client, url) = (client.clone(), format!("{}/dinkes/nasional/v1/data/{i}", gw.url));
            tokio::spawn(async move { send(&client, Request::get(url).body(empty()).unwrap()).await })
        })
        .collect();
    for request in requests {
        let r = request.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(endpoint.fetches(), 2, "the gateway's 100 concurrent requests made one token request");
    assert_eq!(api.hits(), 100, "no request was refused and retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_ahead_of_expiry() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(2),
    ))
    .await;
    let secrets = splp_secrets();
    let api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "").await;
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_millis(4500) {
        let r = penghubung_tests::get(&format!("{}/dinkes/nasional/v1/x", gw.url)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(endpoint.fetches() >= 2, "the token was renewed ({} fetches)", endpoint.fetches());
    assert_eq!(
        api.hits(),
        requests,
        "every request carried a live token the first time: none met an expired one and needed a retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_mid_flight_is_retried_once_with_a_fresh_token() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;
    let secrets = splp_secrets();
    // The API echoes the body: the retried request must carry it again.
    let api = bearer_api(endpoint.check(), |request: Request<hyper::body::Incoming>| async move {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Response::new(full(body))
    })
    .await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "").await;
    let client = http1_client();
    let post = |body: &'static str| {
        let url = format!("{}/dinkes/nasional/v1/submit", gw.url);
        send(&client, Request::post(url).header("content-type", "application/json").body(full(body)).unwrap())
    };
    let r = post("{\"n\":1}").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "{\"n\":1}"));
    assert_eq!((endpoint.fetches(), api.hits()), (1, 1));

    endpoint.revoke_all(); // the national system forgets the token while the gateway still holds it
    let r = post("{\"n\":2}").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "{\"n\":2}"), "retried with a fresh token and the body");
    assert_eq!(endpoint.fetches(), 2, "one fresh token");
    assert_eq!(api.hits(), 3, "one refused try, one retry");

    // An API that refuses every token: one retry, then 502 adapter.upstream_refused (not the caller's fault).
    let refusing = Upstream::start(|_request| async {
        let mut response = Response::new(full("{\"fault\":\"invalid credentials\"}"));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
    })
    .await;
    let gw2 = splp_gateway(secrets.path(), &endpoint.url(), &refusing, "").await;
    let r = penghubung_tests::get(&format!("{}/dinkes/nasional/v1/x", gw2.url)).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (502, "adapter.upstream_refused"), "{}", r.text());
    assert_eq!(refusing.hits(), 2, "exactly one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_gives_503_with_retry_after_and_the_gateway_recovers() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;
    endpoint.set_failing(true);
    let secrets = splp_secrets();
    let api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "").await;
    let url = format!("{}/dinkes/nasional/v1/x", gw.url);

    let r = penghubung_tests::get(&url).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (503, "adapter.token_unavailable"), "{}", r.text());
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let calls = endpoint.server.hits();
    assert_eq!(calls, 1);

    // While the breaker is open the endpoint is left alone.
    let r = penghubung_tests::get(&url).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (503, "adapter.token_unavailable"));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(endpoint.server.hits(), calls, "no token request while the circuit is open");
    assert_eq!(api.hits(), 0, "nothing was sent without a token");

    endpoint.set_failing(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = penghubung_tests::get(&url).await;
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        assert_eq!(r.code(), "adapter.token_unavailable");
    };
    assert_eq!(recovered.status, 200, "recovered once the endpoint answers: {}", recovered.text());
    assert_eq!(endpoint.fetches(), 1);
    assert_eq!(api.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_adapter_limit_is_refused_with_413_before_anything_is_sent() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;
    let secrets = splp_secrets();
    let api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "max_body = \"1KiB\"").await;
    let url = format!("{}/dinkes/nasional/v1/upload", gw.url);

    // Declared too large.
    let request = Request::post(&url).body(full(vec![b'a'; 4096])).unwrap();
    let r = send(&http1_client(), request).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (413, "request.body_too_large"), "{}", r.text());
    // Streamed without a length, found too large as it arrives.
    let request = Request::post(&url).body(PatternBody::new(4096, 512).boxed()).unwrap();
    let r = send(&http1_client(), request).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (413, "request.body_too_large"), "{}", r.text());
    assert_eq!(endpoint.server.hits(), 0, "no token was asked for");
    assert_eq!(api.hits(), 0, "the national system saw nothing");

    // Within the limit it goes through.
    let request = Request::post(&url).body(full(vec![b'a'; 1024])).unwrap();
    assert_eq!(send(&http1_client(), request).await.status, 200);
    assert_eq!(api.hits(), 1);
}

const SOAP_ENVELOPE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:dk="urn:dukcapil:layanan">
  <soap:Header/>
  <soap:Body>
    <dk:CekStatus>
      <dk:Nomor>PB-2026-000123</dk:Nomor>
      <dk:Keterangan><![CDATA[a < b & "kutipan"]]></dk:Keterangan>
    </dk:CekStatus>
  </soap:Body>
</soap:Envelope>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soap_envelope_passes_through_unchanged_end_to_end() {
    // A SOAP 1.1 service: answers with its own envelope, echoing what it received inside it.
    let soap = Upstream::start(|request: Request<hyper::body::Incoming>| async move {
        let ok = request.headers().get("soapaction").is_some_and(|v| v == "\"urn:dukcapil:layanan#CekStatus\"")
            && request.headers().get("content-type").is_some_and(|v| v == "text/xml; charset=utf-8");
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut response = Response::new(full(body));
        *response.status_mut() = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        response.headers_mut().insert("content-type", "text/xml; charset=utf-8".parse().unwrap());
        response
    })
    .await;
    let passthrough = "[adapter]\nname = \"passthrough\"\n";
    let documents = [
        docs::opd("dukcapil"),
        docs::service("dukcapil", "soap", &[soap.url()], "", passthrough),
        docs::service("dukcapil", "polos", &[soap.url()], "", ""),
    ];
    let gw = TestGateway::start(&documents, "").await;
    for service in ["soap", "polos"] {
        let request = Request::post(format!("{}/dukcapil/{service}/v1/ws", gw.url))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"urn:dukcapil:layanan#CekStatus\"")
            .body(full(SOAP_ENVELOPE))
            .unwrap();
        let r = send(&http1_client(), request).await;
        assert_eq!(r.status, 200, "{service}: {}", r.text());
        assert_eq!(r.headers["content-type"], "text/xml; charset=utf-8", "{service}");
        assert_eq!(r.body.as_ref(), SOAP_ENVELOPE.as_bytes(), "{service}: the envelope came back byte for byte");
    }
    assert_eq!(soap.hits(), 2);
}

/// The gateway's own server certificate (for 127.0.0.1) reused by TLS doubles.
fn double_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let cert = std::fs::read_to_string(pki.dir.join("server.crt")).unwrap();
    let key = std::fs::read_to_string(pki.dir.join("server.key")).unwrap();
    server_config(&cert, &key, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splp_carries_an_mtls_caller_to_a_wso2_like_api_with_the_gateways_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tls = double_tls(&pki);
    let spec = TokenEndpointSpec::client_credentials(CONSUMER_KEY, CONSUMER_SECRET, Duration::from_secs(300));
    let endpoint = TokenEndpoint::start_with_tls(spec, Some(Arc::clone(&tls))).await;
    let api = bearer_api_with_tls(Some(tls), endpoint.check(), |request: Request<hyper::body::Incoming>| async move {
        let path = request.uri().path_and_query().unwrap().to_string();
        Response::builder()
            .header("content-type", "application/json")
            .body(full(format!("{{\"path\":\"{path}\"}}")))
            .unwrap()
    })
    .await;
    let secrets = splp_secrets();
    let adapter = splp_adapter(
        &endpoint.https_url(),
        "",
        "tenant = \"lampungtimurkab.go.id\"\ncontext = \"kependudukan\"\nversion = \"1.0.0\"\n",
    );
    let spiffe = format!("spiffe://{TRUST_DOMAIN}/opd/dinsos/app/sikasos");
    let documents = [
        docs::opd("dinsos"),
        docs::opd("nasional"),
        docs::service("nasional", "splp", &[format!("https://{}", api.addr)], "", &adapter),
        docs::client("dinsos", "sikasos", &spiffe, true),
        docs::grant("sikasos-splp", "dinsos/sikasos", "nasional/splp/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let extra = format!(
        "{}\n[upstream]\nca_files = [\"{}\"]\n",
        secrets_config(secrets.path()),
        pki.dir.join("ca.crt").display()
    );
    let config = write_mtls_setup(dir.path(), &documents, &pki, &extra);
    let gateway = penghubung::Gateway::start(penghubung::Config::load(&config).unwrap()).await.unwrap();
    let url = format!("https://{}", gateway.local_addrs()[0]);
    let client = https_client(client_config(&pki.ca_pem(), Some(&pki.client("dinsos", "sikasos"))));

    // The caller holds no national credential; what it sends as its own Authorization never reaches the SPLP.
    let request = Request::get(format!("{url}/nasional/splp/v1/penduduk/cari?kecamatan=sukadana"))
        .header("authorization", "Bearer caller-made-this-up")
        .body(empty())
        .unwrap();
    let r = send(&client, request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["path"],
        "/t/lampungtimurkab.go.id/kependudukan/1.0.0/penduduk/cari?kecamatan=sukadana",
        "WSO2's tenant path, then the caller's path and query"
    );
    let seen = &api.seen()[0];
    let authorization = seen.headers["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("Bearer tok"), "the gateway's token: {authorization}");
    assert!(!authorization.contains("caller-made-this-up"));
    assert_eq!(seen.headers["x-penghubung-client"], "dinsos/sikasos");
    assert_eq!((endpoint.fetches(), endpoint.refused()), (1, 0), "consumer key and secret by HTTP Basic, accepted");

    // A second call reuses the token.
    let r = send(&client, Request::get(format!("{url}/nasional/splp/v1/x")).body(empty()).unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(endpoint.fetches(), 1);

    // Without a certificate: refused before any token or national call.
    let anonymous = https_client(client_config(&pki.ca_pem(), None));
    let refused = anonymous.request(Request::get(format!("{url}/nasional/splp/v1/x")).body(empty()).unwrap()).await;
    assert!(refused.is_err() || refused.unwrap().status() != 200);
    assert_eq!(api.hits(), 2);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_adapters_put_the_gateways_credentials_where_the_caller_put_its_own() {
    let secrets = tempfile::tempdir().unwrap();
    write_secret(secrets.path(), "bpjs-user", "bpjs-operator");
    write_secret(secrets.path(), "bpjs-password", "pw-Rotating-1");
    write_secret(secrets.path(), "sipd-key", "key-Sipd-77c1");
    write_secret(secrets.path(), "kemkes-secret", "kemkes-Client-Secret-3");
    let spec = TokenEndpointSpec {
        auth: ClientAuthentication::Body,
        ..TokenEndpointSpec::client_credentials("kemkes-client", "kemkes-Client-Secret-3", Duration::from_secs(300))
    };
    let endpoint = TokenEndpoint::start(spec).await;
    let echo = Upstream::text("ok").await;
    let oauth_api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let basic = "[adapter]\nname = \"basic\"\n[adapter.settings]\nusername = { secret = \"bpjs-user\" }\npassword = { secret = \"bpjs-password\" }\n";
    let header_key =
        "[adapter]\nname = \"api-key\"\n[adapter.settings]\nheader = \"X-API-Key\"\nkey = { secret = \"sipd-key\" }\n";
    let query_key =
        "[adapter]\nname = \"api-key\"\n[adapter.settings]\nquery = \"api_key\"\nkey = { secret = \"sipd-key\" }\n";
    let underscore_key = format!("caller_headers = [\"user_key\"]\n{}", header_key.replace("X-API-Key", "user_key"));
    let oauth = format!(
        "[adapter]\nname = \"oauth2-client-credentials\"\n[adapter.settings]\ntoken_url = \"{}\"\nclient_id = \"kemkes-client\"\nclient_secret = {{ secret = \"kemkes-secret\" }}\nauth = \"body\"\nscope = \"read\"\n",
        endpoint.url()
    );
    let documents = [
        docs::opd("n"),
        docs::service("n", "basic", &[echo.url()], "", basic),
        docs::service("n", "header", &[echo.url()], "", header_key),
        docs::service("n", "query", &[echo.url()], "", query_key),
        docs::service("n", "oauth", &[oauth_api.url()], "", &oauth),
        docs::service("n", "underscore", &[echo.url()], "", &underscore_key),
    ];
    let gw = TestGateway::start(&documents, &secrets_config(secrets.path())).await;
    let client = http1_client();
    let call = |path: &str| {
        let request = Request::get(format!("{}{path}", gw.url))
            .header("authorization", "Basic Zm9yZ2VkOmZvcmdlZA==")
            .header("x-api-key", "forged")
            .body(empty())
            .unwrap();
        send(&client, request)
    };
    let expected_basic = |password: &str| format!("Basic {}", base64(format!("bpjs-operator:{password}").as_bytes()));

    assert_eq!(call("/n/basic/v1/peserta").await.status, 200);
    assert_eq!(echo.seen()[0].headers["authorization"], expected_basic("pw-Rotating-1").as_str());
    assert_eq!(call("/n/header/v1/x").await.status, 200);
    assert_eq!(echo.seen()[1].headers["x-api-key"], "key-Sipd-77c1");
    assert_eq!(call("/n/query/v1/x?a=1&api_key=forged&b=2").await.status, 200);
    assert_eq!(echo.seen()[2].uri, "/x?a=1&b=2&api_key=key-Sipd-77c1", "the caller's key dropped, the gateway's added");
    let r = call("/n/oauth/v1/x").await;
    assert_eq!(r.status, 200, "client id and secret in the form body: {}", r.text());
    assert_eq!((endpoint.fetches(), endpoint.refused()), (1, 0));

    // A header name with `_` passes when the service lists it; the caller's value is still replaced.
    let request =
        Request::get(format!("{}/n/underscore/v1/x", gw.url)).header("user_key", "forged").body(empty()).unwrap();
    assert_eq!(send(&client, request).await.status, 200);
    assert_eq!(echo.seen()[3].headers.get_all("user_key").iter().collect::<Vec<_>>(), ["key-Sipd-77c1"]);

    // A rotated password file is picked up without a restart or reload.
    write_secret(secrets.path(), "bpjs-password", "pw-Rotating-2");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(call("/n/basic/v1/peserta").await.status, 200);
    assert_eq!(echo.seen()[4].headers["authorization"], expected_basic("pw-Rotating-2").as_str());
}

#[test]
fn check_names_missing_and_unsafe_secrets_and_never_prints_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    write_secret(&secrets, "splp-key", CONSUMER_KEY);
    write_secret(&secrets, "open-password", "pw-World-Readable-9");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(secrets.join("open-password"), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let missing = splp_adapter("http://127.0.0.1:9/oauth2/token", "", ""); // splp-secret is not defined
    let open = "[adapter]\nname = \"basic\"\n[adapter.settings]\nusername = \"operator\"\npassword = { secret = \"open-password\" }\n";
    let inline = "[adapter]\nname = \"basic\"\n[adapter.settings]\nusername = \"operator\"\npassword = \"pw-Inline-Never-Echoed\"\n";
    let unknown = "[adapter]\nname = \"api-key\"\n[adapter.settings]\nheader = \"X-Key\"\nkey = { secret = \"splp-key\" }\ncolour = \"blue\"\n";
    let nameless = "[adapter]\nname = \"no-such-adapter\"\n";
    let documents = [
        docs::opd("n"),
        docs::service("n", "missing", &["http://127.0.0.1:9".into()], "", &missing),
        docs::service("n", "open", &["http://127.0.0.1:9".into()], "", open),
        docs::service("n", "inline", &["http://127.0.0.1:9".into()], "", inline),
        docs::service("n", "unknown", &["http://127.0.0.1:9".into()], "", unknown),
        docs::service("n", "nameless", &["http://127.0.0.1:9".into()], "", nameless),
    ];
    let config = write_setup(dir.path(), &documents, "[secrets]\ndir = \"secrets\"\n");
    let (code, output) = run_cli(&config, &["check"]);
    assert_eq!(code, 1, "{output}");
    for expected in [
        "secret `splp-secret` is not defined",
        "secret `open-password`",
        "0644",
        "`password` must name a secret",
        "`colour` is not a setting of this adapter",
        "`no-such-adapter` is not a known adapter",
    ] {
        assert!(output.contains(expected), "check says {expected:?}:\n{output}");
    }
    for value in [CONSUMER_KEY, "pw-World-Readable-9", "pw-Inline-Never-Echoed"] {
        assert!(!output.contains(value), "check printed a secret value:\n{output}");
    }
}

/// Every file under `dir`, as text.
fn all_text_under(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_or_token_appears_in_logs_audit_segments_problems_or_check_output() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;
    let api = bearer_api(endpoint.check(), ok_api("{\"ok\":true}")).await;
    let echo = Upstream::text("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    write_secret(&secrets, "splp-key", CONSUMER_KEY);
    write_secret(&secrets, "splp-secret", CONSUMER_SECRET);
    // One credential from the environment (inherited by the gateway process).
    let env_value = "env-Basic-Password-51e0";
    std::env::set_var("PENGHUBUNG_TEST_ADAPTERS_BASIC_PASSWORD", env_value);
    let basic = "[adapter]\nname = \"basic\"\n[adapter.settings]\nusername = \"operator\"\npassword = { secret = \"env-password\" }\n";
    let documents = [
        docs::opd("n"),
        docs::service("n", "splp", &[api.url()], "", &splp_adapter(&endpoint.url(), "max_body = \"1KiB\"", "")),
        docs::service("n", "basic", &[echo.url()], "", basic),
    ];
    let redis = RedisServer::start();
    let config_extra = format!(
        "[secrets]\ndir = \"secrets\"\nenv = {{ env-password = \"PENGHUBUNG_TEST_ADAPTERS_BASIC_PASSWORD\" }}\n\n[audit]\nenabled = true\ndir = \"audit\"\ncheckpoint_every = 1\ncheckpoint_interval = \"1s\"\ngateway_id = \"gw-secrets\"\n\n[log]\nlevel = \"debug\"\n\n{}",
        redis.config_section("")
    );
    let config = write_setup(dir.path(), &documents, &config_extra);
    let mut gateway = GatewayProcess::start(&config);
    let client = http1_client();
    let mut answers: Vec<Collected> = Vec::new();
    let url = |path: &str| format!("{}{path}", gateway.url);
    answers.push(send(&client, Request::get(url("/n/splp/v1/a")).body(empty()).unwrap()).await);
    answers.push(send(&client, Request::get(url("/n/basic/v1/b")).body(empty()).unwrap()).await);
    answers.push(send(&client, Request::post(url("/n/splp/v1/big")).body(full(vec![b'x'; 4096])).unwrap()).await);
    let issued = endpoint.issued_tokens();
    endpoint.revoke_all();
    endpoint.set_failing(true);
    answers.push(send(&client, Request::get(url("/n/splp/v1/c")).body(empty()).unwrap()).await);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 413, 503], "{:?}", answers.iter().map(Collected::text).collect::<Vec<_>>());
    assert!(echo.seen()[0].headers["authorization"].to_str().unwrap().starts_with("Basic "));
    let (code, check_output) = run_cli(&config, &["check"]);
    assert_eq!(code, 0, "{check_output}");
    // A graceful stop seals the audit log and ships it to the Redis stream before the process ends.
    gateway.signal("TERM");
    let status = gateway.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let stream: String =
        redis.stream("penghubung:audit:gw-secrets").iter().map(|(id, fields)| format!("{id} {fields:?}\n")).collect();

    let mut haystacks = vec![
        ("log", std::fs::read_to_string(dir.path().join("gateway.log")).unwrap()),
        ("audit segments", all_text_under(&dir.path().join("audit"))),
        ("check output", check_output),
        ("Redis stream", stream),
    ];
    haystacks.extend(answers.iter().map(|a| ("an answer", format!("{:?}\n{}", a.headers, a.text()))));
    assert!(haystacks[1].1.contains("/n/splp/v1"), "the audit trail recorded the exchanges");
    assert!(haystacks[3].1.contains("/n/splp/v1"), "the records were shipped to Redis");
    let mut needles = vec![CONSUMER_KEY.to_string(), CONSUMER_SECRET.to_string(), env_value.to_string()];
    needles.push(base64(format!("{CONSUMER_KEY}:{CONSUMER_SECRET}").as_bytes()));
    needles.push(base64(format!("operator:{env_value}").as_bytes()));
    needles.extend(issued);
    assert!(needles.len() >= 6, "a token was issued: {needles:?}");
    for (place, text) in &haystacks {
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "a secret or token appears in the {place}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_and_its_cached_token_survive_a_reload_until_its_settings_change() {
    let endpoint = TokenEndpoint::start(TokenEndpointSpec::client_credentials(
        CONSUMER_KEY,
        CONSUMER_SECRET,
        Duration::from_secs(300),
    ))
    .await;
    let secrets = splp_secrets();
    let api = bearer_api(endpoint.check(), ok_api("ok")).await;
    let gw = splp_gateway(secrets.path(), &endpoint.url(), &api, "").await;
    let url = format!("{}/dinkes/nasional/v1/x", gw.url);
    assert_eq!(penghubung_tests::get(&url).await.status, 200);
    assert_eq!(endpoint.fetches(), 1);

    // Another document changes: the service's adapter, and its token, stay.
    let generation = gw.gateway().snapshot().generation;
    let (key, text) = docs::opd("dinsos");
    gw.put_document(&key, &text);
    let generation = gw.wait_generation_above(generation).await;
    assert_eq!(penghubung_tests::get(&url).await.status, 200);
    assert_eq!(endpoint.fetches(), 1, "the reload kept the cached token");

    // The adapter's settings change: a new adapter, a new token.
    let service =
        docs::service("dinkes", "nasional", &[api.url()], "", &splp_adapter(&endpoint.url(), "", "scope = \"baca\"\n"));
    gw.put_document(&service.0, &service.1);
    gw.wait_generation_above(generation).await;
    assert_eq!(penghubung_tests::get(&url).await.status, 200);
    assert_eq!(endpoint.fetches(), 2, "new settings, new adapter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_grant_gets_a_keycloak_like_token_and_wrong_credentials_are_refused() {
    let spec = TokenEndpointSpec {
        auth: ClientAuthentication::Body,
        user: Some(("siasn-operator".into(), "pw-Sso-2026".into())),
        ..TokenEndpointSpec::client_credentials("siasn-client", "siasn-Client-Secret", Duration::from_secs(300))
    };
    let endpoint = TokenEndpoint::start(spec).await;
    let source = |password: &str| TokenSource::Password {
        token_url: endpoint.url().parse().unwrap(),
        client_id: Secret::literal("siasn-client"),
        client_secret: Some(Secret::literal("siasn-Client-Secret")),
        username: Secret::literal("siasn-operator"),
        password: Secret::literal(password),
        scope: Some("openid".into()),
    };
    let provider = TokenProvider::new(source("pw-Sso-2026"), plain_http_client()).for_adapter("bkn-siasn");
    let token = provider.token().await.expect("a token for the right password");
    assert!(endpoint.check().accepts(Some(&format!("Bearer {}", token.value()).parse().unwrap())));
    assert_eq!(endpoint.fetches(), 1);

    let wrong = TokenProvider::new(source("pw-Wrong"), plain_http_client()).for_adapter("bkn-siasn");
    let error = wrong.token().await.unwrap_err();
    assert!(
        matches!(error, penghubung::adapters::AdapterError::UpstreamRefused { adapter: "bkn-siasn", .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("pw-Wrong"));
    assert_eq!(endpoint.refused(), 1);
}
