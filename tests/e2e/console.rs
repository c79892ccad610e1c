//! The web console in a real browser: headless Chromium (through chromedriver and WebDriver) against a gateway
//! and its admin listener started in this process over real TLS, with operators whose console passwords and
//! TOTP secrets were enrolled through the admin API. Login with password and TOTP, its refusals and lockout;
//! a service taken live by three operators and then called on the data plane with a client certificate; a
//! self-approval refused with its reason on the page; actions a role may not take neither shown nor accepted;
//! CSRF; labels, layout at 1366×768 and the language switch on every page; the dashboard's screenshot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode};
use penghubung::ca::Issued;
use penghubung::management::Role;
use penghubung_tests::browser::{artifacts_dir, Browser, ENTER};
use penghubung_tests::console_credentials::{enrol, totp_at, totp_now, unix_now, wrong_totp};
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki};
use penghubung_tests::{docs, full, operators, send, Collected, Upstream};
use serde_json::{json, Value};

/// The operators of the console's store: id, OPD, roles.
const OPERATORS: &[(&str, &str, &[Role])] = &[
    ("sari-admin", "diskominfo", &[Role::Admin]),
    ("rudi-aptika", "diskominfo", &[Role::Operasi]),
    ("dewi-persandian", "diskominfo", &[Role::Keamanan]),
    ("agus-dinsos", "dinsos", &[Role::OpdAdmin]),
    ("tono-auditor", "inspektorat", &[Role::Auditor]),
    ("dua-peran", "diskominfo", &[Role::Operasi, Role::Keamanan]),
];

/// What the upstream of every service answers.
const UPSTREAM_TEXT: &str = "layanan dinsos siap";

/// The console's Content-Security-Policy, exactly.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `dinsos/bansos/v1`: in testing, submitted by the OPD's admin, waiting for both approvals.
fn bansos(upstream: &str) -> (String, String) {
    let (key, text) =
        docs::service("dinsos", "bansos", &[upstream.to_string()], "", &docs::operation("cek", "GET", "/status"));
    let text = text
        .replace("status = \"active\"", "status = \"testing\"\nsubmitted_by = \"agus-dinsos\"")
        .replace(docs::APPROVALS, "");
    (key, text)
}

/// `dinsos/klaim/v1`: a draft nobody has submitted yet.
fn klaim(upstream: &str) -> (String, String) {
    let (key, text) =
        docs::service("dinsos", "klaim", &[upstream.to_string()], "", &docs::operation("cek", "GET", "/status"));
    (key, text.replace("status = \"active\"", "status = \"draft\"").replace(docs::APPROVALS, ""))
}

/// The document of a new service as the console's create form takes it (TOML, as the API takes it).
fn new_service_document(name: &str, upstream: &str) -> String {
    format!(
        "opd = \"dinsos\"\nname = \"{name}\"\nversion = 1\ntitle = \"Layanan {name}\"\nclassification = \"terbatas\"\n\
         status = \"draft\"\n\n[[operations]]\nid = \"cek\"\nmethod = \"GET\"\npath = \"/status\"\n\n\
         [upstream]\nendpoints = [\"{upstream}\"]\n"
    )
}

/// An operator's console login.
#[derive(Clone)]
struct Login {
    id: &'static str,
    password: String,
    secret: String,
}

/// A gateway with mTLS and its admin listener (the console beside the API), certificates for every operator
/// and one client app, and every operator's console password and TOTP secret.
struct Console {
    upstream: Upstream,
    gateway: Option<penghubung::Gateway>,
    admin: Option<penghubung::admin::api::AdminServer>,
    dir: tempfile::TempDir,
    pki: Pki,
    url: String,
    data_addr: SocketAddr,
    certificates: HashMap<&'static str, Issued>,
    logins: HashMap<&'static str, Login>,
    app: Issued,
}

impl Console {
    async fn start() -> Console {
        Console::start_with("").await
    }

    /// Like [`Console::start`], with `extra` appended to the config (e.g. a `[console]` section).
    async fn start_with(extra: &str) -> Console {
        let upstream = Upstream::text(UPSTREAM_TEXT).await;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let mut certificates = HashMap::new();
        let mut documents = vec![
            docs::opd("diskominfo"),
            docs::opd("dinsos"),
            docs::opd("inspektorat"),
            docs::unlimited_tier(),
            bansos(&upstream.url()),
            klaim(&upstream.url()),
            docs::grant("sikasos-bansos", "dinsos/sikasos", "dinsos/bansos/v1", &["*"]),
        ];
        let app = pki.client("dinsos", "sikasos");
        documents.push(docs::client("dinsos", "sikasos", app.spiffe.as_deref().unwrap(), true));
        for (id, opd, roles) in OPERATORS {
            let issued = pki.client(opd, &format!("operator-{id}"));
            documents.push(operators::document(id, opd, roles, &operators::fingerprint_of(&issued.cert_pem)));
            certificates.insert(*id, issued);
        }
        let extra = format!("[admin]\nlisten = \"127.0.0.1:0\"\n\n[audit]\nenabled = true\n\n{extra}");
        let path = write_mtls_setup(dir.path(), &documents, &pki, &extra);
        let config = penghubung::Config::load(&path).unwrap_or_else(|p| panic!("config: {p:?}"));
        let gateway = penghubung::Gateway::start(config.clone()).await.unwrap_or_else(|e| panic!("start: {e}"));
        let admin = penghubung::admin::start_beside(&config, &gateway).await.unwrap().expect("[admin] is on");
        let url = format!("https://127.0.0.1:{}", admin.local_addr().port());
        let mut logins = HashMap::new();
        for (id, _, _) in OPERATORS {
            let password = format!("Sandi-{id}-2026!");
            let secret = enrol(&url, &pki.ca_pem(), &certificates[id], id, &password).await;
            logins.insert(*id, Login { id, password, secret });
        }
        Console {
            upstream,
            data_addr: gateway.local_addrs()[0],
            url,
            gateway: Some(gateway),
            admin: Some(admin),
            dir,
            pki,
            certificates,
            logins,
            app,
        }
    }

    fn login(&self, id: &str) -> Login {
        self.logins[id].clone()
    }

    fn page(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A request to the admin listener without a certificate, carrying `cookie` (`name=value; …`) when given.
    async fn plain(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        origin: Option<&str>,
    ) -> Collected {
        let client = https_client(client_config(&self.pki.ca_pem(), None));
        let mut request = Request::builder().method(method).uri(self.page(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if form.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        send(&client, request.body(full(form.unwrap_or_default().to_string())).unwrap()).await
    }

    /// A request as `operator` (its certificate), to the console or the API.
    async fn as_operator(&self, operator: &str, method: Method, path: &str, json_body: Option<Value>) -> Collected {
        let client = https_client(client_config(&self.pki.ca_pem(), Some(&self.certificates[operator])));
        let mut request = Request::builder().method(method).uri(self.page(path));
        if json_body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = json_body.map(|b| b.to_string()).unwrap_or_default();
        send(&client, request.body(full(body)).unwrap()).await
    }

    /// A service's document through the API, as the auditor.
    async fn service(&self, id: &str) -> Value {
        let answer = self.as_operator("tono-auditor", Method::GET, &format!("/api/v1/services/{id}"), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{id}: {}", answer.text());
        answer.json()
    }

    /// The data plane's answer to the client app calling `path`: the status and the body.
    async fn data_plane(&self, path: &str) -> (StatusCode, String) {
        let client = https_client(client_config(&self.pki.ca_pem(), Some(&self.app)));
        let uri = format!("https://127.0.0.1:{}{path}", self.data_addr.port());
        let answer = send(&client, Request::get(uri).body(full("")).unwrap()).await;
        (answer.status, answer.text())
    }

    async fn stop(mut self) {
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
        let _ = (&self.dir, &self.upstream);
    }
}

/// Fills the login form with `username`, `password` and `totp` and submits it; returns the answer's status.
async fn submit_login(browser: &Browser, console: &Console, username: &str, password: &str, totp: &str) -> u16 {
    if browser.path().await != "/login" || !browser.has("#login-form").await {
        browser.goto(&console.page("/login")).await;
    }
    assert!(browser.has("form#login-form[method=post][action='/login']").await, "{}", browser.html().await);
    assert!(browser.has("input#password[type=password][name=password]").await);
    assert!(browser.has("input#totp[name=totp][inputmode=numeric]").await);
    assert!(browser.has("#login-form input[type=hidden][name=csrf]").await);
    browser.fill("#username", username).await;
    browser.fill("#password", password).await;
    browser.fill("#totp", totp).await;
    browser.click_and_wait("#login-submit").await;
    browser.status().await
}

/// Logs `login` in with the current code (or the next step's when `next_step`) and checks the dashboard is shown.
async fn log_in(browser: &Browser, console: &Console, login: &Login, next_step: bool) {
    let code = if next_step { totp_at(&login.secret, unix_now() + 30) } else { totp_now(&login.secret) };
    let status = submit_login(browser, console, login.id, &login.password, &code).await;
    let error = format!("{:?} {:?}", browser.text_of("#login-error").await, browser.text_of("#error").await);
    assert_eq!((status, browser.path().await.as_str()), (200, "/"), "{} not logged in: {error:?}", login.id);
    let whoami = browser.text_of("header #whoami").await.unwrap_or_else(|| panic!("no #whoami in the header"));
    assert!(whoami.contains(login.id) || whoami.contains(&format!("Operator {}", login.id)), "{whoami}");
}

/// Clicks the header's logout button; the login page follows.
async fn log_out(browser: &Browser) {
    browser.click_and_wait("#logout").await;
    assert_eq!(browser.path().await, "/login");
    assert!(!browser.has("#whoami").await);
}

/// Fills the `reason` field of the form `button` belongs to, when that form has one.
async fn fill_reason(browser: &Browser, button: &str, reason: &str) {
    let script = "const button = document.querySelector(arguments[0]);
        const field = button && button.form ? button.form.querySelector('[name=reason]') : null;
        if (field) { field.value = arguments[1]; return true; } return false;";
    browser.execute(script, vec![json!(button), json!(reason)]).await;
}

/// The `name=value` pairs of the browser's cookies for the console, as a `Cookie` header.
async fn cookie_header(browser: &Browser) -> String {
    let cookies = browser.client().get_all_cookies().await.unwrap();
    cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; ")
}

/// Waits (10 s at most) until the data plane answers `path` with 200; the body.
async fn wait_live(console: &Console, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = console.data_plane(path).await;
        if status == StatusCode::OK {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} is not live: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_password_and_totp_opens_the_dashboard() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    browser.goto(&console.page("/")).await;
    assert!(!browser.has("#whoami").await, "nobody is logged in yet: {}", browser.html().await);

    log_in(&browser, &console, &console.login("rudi-aptika"), false).await;
    // The session cookie: Secure, HttpOnly, SameSite=Strict, Path=/, a fresh random id of 128 bits or more.
    let session = browser.client().get_named_cookie("penghubung_session").await.expect("a session cookie");
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert_eq!(session.path(), Some("/"));
    assert!(session.value().len() >= 22, "a session id of at least 128 bits: {}", session.value());
    assert_eq!(browser.execute("return document.cookie.includes('penghubung_session');", vec![]).await, false);

    // The dashboard's sections; the service waiting for the operations approval is among rudi's.
    for section in ["services-by-status", "approvals-waiting", "expiring", "recent-denials", "health"] {
        assert!(browser.has(&format!("#{section}")).await, "no #{section} on the dashboard");
    }
    let waiting = browser.text_of("#approvals-waiting").await.unwrap();
    assert!(waiting.contains("bansos"), "dinsos/bansos/v1 waits for an operations approval: {waiting}");
    let roles = browser.text_of("#whoami").await.unwrap();
    assert!(roles.contains("operasi"), "the header names the roles: {roles}");
    let shot = browser.screenshot("console-dashboard.png").await;
    assert_eq!(shot, artifacts_dir().join("console-dashboard.png"));

    // Logging out ends the session: the old cookie opens nothing any more.
    let old = format!("penghubung_session={}", session.value());
    log_out(&browser).await;
    let answer = console.plain(Method::GET, "/", Some(&old), None, None).await;
    assert!(!answer.text().contains("id=\"whoami\""), "a logged-out session still opens the dashboard");
    assert_ne!(answer.status, StatusCode::OK, "{}", answer.text());
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_totp_is_refused_like_every_other_failed_login() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let dewi = console.login("dewi-persandian");

    let status = submit_login(&browser, &console, dewi.id, &dewi.password, &wrong_totp(&dewi.secret)).await;
    assert_eq!((status, browser.path().await.as_str()), (401, "/login"));
    let wrong_totp_text = browser.text_of("#login-error[role=alert]").await.expect("an alert says why");
    assert!(wrong_totp_text.contains("console.login_failed"), "{wrong_totp_text}");
    assert!(browser.client().get_named_cookie("penghubung_session").await.is_err(), "no session after a failure");

    // A wrong password and an unknown user read exactly the same: nothing tells which part was wrong.
    let status = submit_login(&browser, &console, dewi.id, "Salah-Sandi-2026!", &totp_now(&dewi.secret)).await;
    assert_eq!(status, 401);
    assert_eq!(browser.text_of("#login-error").await.as_deref(), Some(wrong_totp_text.as_str()));
    let status = submit_login(&browser, &console, "tidak-ada", &dewi.password, &totp_now(&dewi.secret)).await;
    assert_eq!(status, 401);
    assert_eq!(browser.text_of("#login-error").await.as_deref(), Some(wrong_totp_text.as_str()));

    // The right code logs in; the same code again, in a second browser, is a replay and refused.
    let code = totp_now(&dewi.secret);
    let used_step = unix_now() / 30;
    let status = submit_login(&browser, &console, dewi.id, &dewi.password, &code).await;
    assert_eq!((status, browser.path().await.as_str()), (200, "/"), "{:?}", browser.text_of("#login-error").await);
    browser.close().await;
    let second = Browser::start().await;
    // The code stays within the accepted window (one step of skew) for at least 30 s after it was computed.
    if unix_now() / 30 <= used_step + 1 {
        let status = submit_login(&second, &console, dewi.id, &dewi.password, &code).await;
        assert_eq!(status, 401, "a TOTP code used once is refused the second time");
        assert!(second.text_of("#login-error").await.unwrap().contains("console.login_failed"));
    }
    second.close().await;

    // The failures are in the audit trail, naming the operator, never the password or the code.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut text = String::new();
        for kind in ["security", "changes"] {
            let path = format!("/api/v1/audit/search?{kind}=true");
            let found = console.as_operator("tono-auditor", Method::GET, &path, None).await;
            assert_eq!(found.status, StatusCode::OK, "{}", found.text());
            text.push_str(&found.text());
        }
        if text.contains("dewi-persandian") && text.contains("tidak-ada") {
            assert!(!text.contains("Salah-Sandi-2026!") && !text.contains(&dewi.password), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no audit record of the logins: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_login_even_with_the_right_password() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let rudi = console.login("rudi-aptika");
    for attempt in 1..=5 {
        let status = submit_login(&browser, &console, rudi.id, &format!("Tebakan-{attempt}-2026"), "123456").await;
        assert_eq!(status, 401, "failure {attempt}");
    }
    let status = submit_login(&browser, &console, rudi.id, &rudi.password, &totp_now(&rudi.secret)).await;
    assert_eq!(status, 429, "the sixth attempt is refused even with the right password and code");
    let text = browser.text_of("#login-error[role=alert]").await.expect("an alert says why");
    assert!(text.contains("console.login_locked"), "{text}");
    assert!(browser.client().get_named_cookie("penghubung_session").await.is_err());
    assert_eq!(browser.path().await, "/login");

    // The lock is the user's: another operator from the same address still logs in.
    log_in(&browser, &console, &console.login("dewi-persandian"), false).await;
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_operators_take_a_service_live_and_the_data_plane_answers() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let service = "dinsos/layanan/v1";
    let service_page = "/services/dinsos/layanan/v1";
    let (status, _) = console.data_plane("/dinsos/layanan/v1/status").await;
    assert_ne!(status, StatusCode::OK);

    // The OPD's admin creates the service and submits it.
    log_in(&browser, &console, &console.login("agus-dinsos"), false).await;
    browser.goto(&console.page("/services/new")).await;
    assert_eq!(browser.status().await, 200);
    assert!(browser.has("form#service-form input[type=hidden][name=csrf]").await);
    browser.fill("#service-form [name=opd]", "dinsos").await;
    browser.fill("#service-form [name=name]", "layanan").await;
    browser.fill("#service-form [name=version]", "1").await;
    browser.fill("#service-form [name=document]", &new_service_document("layanan", &console.upstream.url())).await;
    browser.navigate_by_script("document.getElementById('service-form').requestSubmit();", vec![]).await;
    assert_eq!(browser.path().await, service_page, "{}", browser.html().await);
    assert!(browser.has("#notice[role=status]").await, "{}", browser.html().await);
    assert_eq!(console.service(service).await["status"], "draft");

    fill_reason(&browser, "#action-submit", "siap diuji").await;
    browser.click_and_wait("#action-submit").await;
    assert_eq!(browser.path().await, service_page);
    assert!(browser.has("#notice[role=status]").await, "{:?}", browser.text_of("#error").await);
    let document = console.service(service).await;
    assert_eq!(
        (document["status"].as_str(), document["submitted_by"].as_str()),
        (Some("testing"), Some("agus-dinsos"))
    );
    // The OPD's admin grants its app the service (through the API: the console's pages list grants).
    let grant = json!({
        "document": {"id": "sikasos-layanan", "client": "dinsos/sikasos", "service": service,
                     "operations": ["*"], "tier": "unlimited"},
        "reason": "aplikasi sikasos memakai layanan",
    });
    let answer = console.as_operator("agus-dinsos", Method::POST, "/api/v1/grants", Some(grant)).await;
    assert!(answer.status.is_success(), "{}", answer.text());
    log_out(&browser).await;

    // The head of Aptika approves for operations; the service is not live on one approval.
    log_in(&browser, &console, &console.login("rudi-aptika"), false).await;
    browser.goto(&console.page(service_page)).await;
    fill_reason(&browser, "#action-approve-operations", "uji fungsi lulus").await;
    browser.click_and_wait("#action-approve-operations").await;
    assert!(browser.has("#notice[role=status]").await, "{:?}", browser.text_of("#error").await);
    assert_eq!(console.service(service).await["approvals"]["operations"]["by"], "rudi-aptika");
    let (status, _) = console.data_plane("/dinsos/layanan/v1/status").await;
    assert_ne!(status, StatusCode::OK, "one approval does not take it live");
    log_out(&browser).await;

    // The head of Persandian approves for security: the service is active and answers at once.
    log_in(&browser, &console, &console.login("dewi-persandian"), false).await;
    browser.goto(&console.page(service_page)).await;
    fill_reason(&browser, "#action-approve-security", "uji penetrasi lulus").await;
    browser.click_and_wait("#action-approve-security").await;
    assert!(browser.has("#notice[role=status]").await, "{:?}", browser.text_of("#error").await);
    let document = console.service(service).await;
    assert_eq!(document["status"], "active", "{document}");
    assert_eq!(document["approvals"]["security"]["by"], "dewi-persandian");
    assert_eq!(wait_live(&console, "/dinsos/layanan/v1/status").await, UPSTREAM_TEXT);
    // The service page shows who approved.
    let page = browser.text_of("main").await.unwrap_or_default();
    assert!(page.contains("rudi-aptika") && page.contains("dewi-persandian"), "{page}");
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_approval_is_refused_with_the_reason_on_the_page() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let page = "/services/dinsos/klaim/v1";
    // An operator holding both roles submits the draft...
    log_in(&browser, &console, &console.login("dua-peran"), false).await;
    browser.goto(&console.page(page)).await;
    fill_reason(&browser, "#action-submit", "siap").await;
    browser.click_and_wait("#action-submit").await;
    assert!(browser.has("#notice").await, "{:?}", browser.text_of("#error").await);
    assert_eq!(console.service("dinsos/klaim/v1").await["submitted_by"], "dua-peran");

    // ...and may not approve its own submission for security.
    if browser.has("#action-approve-security").await {
        fill_reason(&browser, "#action-approve-security", "saya sendiri").await;
        browser.click_and_wait("#action-approve-security").await;
    } else {
        browser.post_form(&format!("{page}/approve-security"), json!({"reason": "saya sendiri"})).await;
    }
    let status = browser.status().await;
    assert!((400..500).contains(&status), "a self-approval is a 4xx, not {status}");
    let error = browser.text_of("#error[role=alert]").await.expect("the refusal is on the page");
    assert!(error.contains("admin.forbidden"), "the manager's code: {error}");
    assert!(error.contains("dua-peran") && error.contains("another operator"), "the reason: {error}");
    let document = console.service("dinsos/klaim/v1").await;
    assert!(document["approvals"]["security"].is_null(), "{document}");
    assert_eq!(document["status"], "testing");
    browser.close().await;
    console.stop().await;
}

/// The ids of the lifecycle buttons on the page shown.
async fn action_buttons(browser: &Browser) -> Vec<String> {
    let value =
        browser.execute("return Array.from(document.querySelectorAll('[id^=action-]')).map(e => e.id);", vec![]).await;
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_sees_only_the_actions_it_may_take_and_is_refused_when_it_posts_others() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let page = "/services/dinsos/bansos/v1";

    // The auditor reads the service and sees no lifecycle action at all.
    log_in(&browser, &console, &console.login("tono-auditor"), false).await;
    browser.goto(&console.page(page)).await;
    assert_eq!(browser.status().await, 200);
    let text = browser.text_of("main").await.unwrap_or_default();
    assert!(text.contains("cek") && text.contains("terbatas"), "operations and classification: {text}");
    assert_eq!(action_buttons(&browser).await, Vec::<String>::new());
    // Posting the submit form anyway (with a valid CSRF token) is refused by the role table.
    browser.post_form(&format!("{page}/submit"), json!({})).await;
    assert_eq!(browser.status().await, 403);
    let error = browser.text_of("#error[role=alert]").await.expect("the refusal is on the page");
    assert!(error.contains("admin.forbidden"), "{error}");
    log_out(&browser).await;

    // The security team sees its approval, not the operations one nor submit.
    log_in(&browser, &console, &console.login("dewi-persandian"), false).await;
    browser.goto(&console.page(page)).await;
    let buttons = action_buttons(&browser).await;
    assert!(buttons.contains(&"action-approve-security".to_string()), "{buttons:?}");
    for hidden in ["action-approve-operations", "action-submit", "action-retire"] {
        assert!(!buttons.contains(&hidden.to_string()), "{hidden} shown to keamanan: {buttons:?}");
    }
    browser.post_form(&format!("{page}/approve-operations"), json!({"reason": "bukan wewenang"})).await;
    assert_eq!(browser.status().await, 403);
    let error = browser.text_of("#error[role=alert]").await.expect("the refusal is on the page");
    assert!(error.contains("admin.forbidden"), "{error}");
    let document = console.service("dinsos/bansos/v1").await;
    assert!(document["approvals"]["operations"].is_null(), "nothing was approved: {document}");
    log_out(&browser).await;

    // The OPD's admin sees no approval, suspension or retirement of its own OPD's service.
    log_in(&browser, &console, &console.login("agus-dinsos"), false).await;
    browser.goto(&console.page(page)).await;
    let buttons = action_buttons(&browser).await;
    for hidden in ["action-approve-operations", "action-approve-security", "action-retire", "action-suspend"] {
        assert!(!buttons.contains(&hidden.to_string()), "{hidden} shown to opd_admin: {buttons:?}");
    }
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_without_its_csrf_token_is_refused() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let page = "/services/dinsos/bansos/v1";

    // The login form too: its token is bound to the pre-session.
    let rudi = console.login("rudi-aptika");
    browser.goto(&console.page("/login")).await;
    browser.fill("#username", rudi.id).await;
    browser.fill("#password", &rudi.password).await;
    browser.fill("#totp", &totp_now(&rudi.secret)).await;
    browser.execute("document.querySelector('#login-form input[name=csrf]').remove();", vec![]).await;
    browser.click_and_wait("#login-submit").await;
    assert_eq!(browser.status().await, 403, "a login without its token");
    let error = format!("{:?}{:?}", browser.text_of("#error").await, browser.text_of("#login-error").await);
    assert!(error.contains("console.csrf_rejected"), "{error}");
    assert!(browser.client().get_named_cookie("penghubung_session").await.is_err());

    log_in(&browser, &console, &rudi, true).await;
    browser.goto(&console.page(page)).await;
    // The approval form with its token removed.
    fill_reason(&browser, "#action-approve-operations", "uji fungsi lulus").await;
    browser
        .execute(
            "document.querySelector('#action-approve-operations').form.querySelector('input[name=csrf]').remove();",
            vec![],
        )
        .await;
    browser.click_and_wait("#action-approve-operations").await;
    assert_eq!(browser.status().await, 403);
    let error = browser.text_of("#error[role=alert]").await.expect("the refusal is on the page");
    assert!(error.contains("console.csrf_rejected"), "{error}");
    // With a forged token.
    browser.goto(&console.page(page)).await;
    fill_reason(&browser, "#action-approve-operations", "uji fungsi lulus").await;
    browser
        .execute(
            "document.querySelector('#action-approve-operations').form.querySelector('input[name=csrf]').value = 'palsu';",
            vec![],
        )
        .await;
    browser.click_and_wait("#action-approve-operations").await;
    assert_eq!(browser.status().await, 403);
    assert!(browser.text_of("#error").await.unwrap_or_default().contains("console.csrf_rejected"));
    assert!(console.service("dinsos/bansos/v1").await["approvals"]["operations"].is_null(), "nothing approved");

    // The right token from another origin (a page elsewhere posting with the session's cookie) is refused too.
    browser.goto(&console.page(page)).await;
    let token = browser
        .execute(
            "return document.querySelector('#action-approve-operations').form.querySelector('input[name=csrf]').value;",
            vec![],
        )
        .await;
    let form = format!("csrf={}&reason=dari%20luar", token.as_str().unwrap());
    let cookies = cookie_header(&browser).await;
    let action = format!("{page}/approve-operations");
    let foreign =
        console.plain(Method::POST, &action, Some(&cookies), Some(&form), Some("https://penyerang.example")).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.text());
    assert!(foreign.text().contains("console.csrf_rejected"), "{}", foreign.text());
    assert!(console.service("dinsos/bansos/v1").await["approvals"]["operations"].is_null(), "nothing approved");
    // The same post from the console's own origin goes through: the refusals above were the token's.
    let own = console.plain(Method::POST, &action, Some(&cookies), Some(&form), Some(&console.url)).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.text());
    assert_eq!(console.service("dinsos/bansos/v1").await["approvals"]["operations"]["by"], "rudi-aptika");

    // Logging out without the token does not end the session.
    browser.goto(&console.page("/")).await;
    browser.execute("document.querySelector('#logout').form.querySelector('input[name=csrf]').remove();", vec![]).await;
    browser.click_and_wait("#logout").await;
    assert_eq!(browser.status().await, 403);
    browser.goto(&console.page("/")).await;
    assert!(browser.has("#whoami").await, "the session survived a logout without its token");
    browser.close().await;
    console.stop().await;
}

/// Checks the page shown: status 200, `<html lang>`, the logged-in header, a skip link, every field labelled,
/// no horizontal scroll at 1366×768, text contrast of WCAG AA. Returns what is wrong, one line each.
async fn check_page(browser: &Browser, path: &str, logged_in: bool, lang: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let status = browser.status().await;
    if status != 200 {
        problems.push(format!("{path}: status {status}"));
        return problems;
    }
    let html_lang = browser.execute("return document.documentElement.lang;", vec![]).await;
    if html_lang != lang {
        problems.push(format!("{path}: <html lang={html_lang}>, expected {lang}"));
    }
    if logged_in && !browser.has("header #whoami").await {
        problems.push(format!("{path}: no header #whoami"));
    }
    if logged_in && !browser.has("header #logout").await {
        problems.push(format!("{path}: no logout button in the header"));
    }
    if !browser.has("a[href^='#']").await {
        problems.push(format!("{path}: no skip link"));
    }
    for field in browser.unlabelled_fields().await {
        problems.push(format!("{path}: a field without a label: {field}"));
    }
    if let Some((scroll, inner)) = browser.sideways_overflow().await {
        problems.push(format!("{path}: scrolls sideways at 1366×768 (scrollWidth {scroll} > {inner})"));
    }
    for text in browser.low_contrast_text().await {
        problems.push(format!("{path}: contrast below WCAG AA: {text}"));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_labelled_readable_and_fits_a_laptop_screen() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let mut problems = Vec::new();
    browser.goto(&console.page("/login")).await;
    problems.extend(check_page(&browser, "/login", false, "id").await);
    log_in(&browser, &console, &console.login("sari-admin"), false).await;

    // The history page of a document: the service page links it, or its path follows the API's kinds.
    browser.goto(&console.page("/services/dinsos/bansos/v1")).await;
    let history = browser
        .execute(
            "const a = document.querySelector('a[href^=\"/history/\"]'); return a ? a.getAttribute('href') : null;",
            vec![],
        )
        .await;
    let history = history.as_str().unwrap_or("/history/services/dinsos/bansos/v1").to_string();
    let pages = [
        "/",
        "/opds",
        "/opds/dinsos",
        "/services",
        "/services/dinsos/bansos/v1",
        "/services/new",
        "/clients",
        "/clients/dinsos/sikasos",
        "/grants",
        "/audit",
        history.as_str(),
        "/explain",
        "/reports",
    ];
    let cookies = cookie_header(&browser).await;
    for path in pages {
        browser.goto(&console.page(path)).await;
        problems.extend(check_page(&browser, path, true, "id").await);
        // Every HTML answer carries the security headers.
        let answer = console.plain(Method::GET, path, Some(&cookies), None, None).await;
        let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !header("content-type").starts_with("text/html") {
            problems.push(format!("{path}: content-type {}", header("content-type")));
        }
        for (name, expected) in
            [("content-security-policy", CSP), ("x-content-type-options", "nosniff"), ("cache-control", "no-store")]
        {
            if header(name) != expected {
                problems.push(format!("{path}: {name} is {:?}, expected {expected:?}", header(name)));
            }
        }
        // No referrer leaves for another origin, and unlike `no-referrer`, `same-origin` lets Chromium send the
        // real `Origin` on the console's own forms, which the CSRF check requires (see the browser harness's tests).
        if header("referrer-policy") != "same-origin" {
            problems.push(format!("{path}: referrer-policy is {:?}", header("referrer-policy")));
        }
    }
    // The assets a page links are embedded and cached long.
    browser.goto(&console.page("/")).await;
    let assets = browser
        .execute(
            "return Array.from(document.querySelectorAll('link[href^=\"/assets/\"], script[src^=\"/assets/\"]'))
                .map(e => e.getAttribute('href') || e.getAttribute('src'));",
            vec![],
        )
        .await;
    let assets: Vec<String> = assets.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    if assets.is_empty() {
        problems.push("/: links no stylesheet under /assets/".into());
    }
    for asset in &assets {
        let answer = console.plain(Method::GET, asset, None, None, None).await;
        let cache = answer.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if answer.status != StatusCode::OK || !cache.contains("max-age") {
            problems.push(format!("{asset}: {} cache-control {cache:?}", answer.status));
        }
    }
    // No inline script or style on the dashboard (the CSP would block them).
    let inline = browser
        .execute(
            "return document.querySelectorAll('script:not([src]), style, [style]').length
                + Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length;",
            vec![],
        )
        .await;
    if inline != 0 {
        problems.push(format!("/: {inline} inline scripts, styles or handlers"));
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_is_indonesian_by_default_and_switches_to_english() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    browser.goto(&console.page("/login")).await;
    assert_eq!(browser.execute("return document.documentElement.lang;", vec![]).await, "id");
    let indonesian = browser.text_of("#login-submit").await.unwrap();

    browser.goto(&console.page("/login?lang=en")).await;
    assert_eq!(browser.execute("return document.documentElement.lang;", vec![]).await, "en");
    let english = browser.text_of("#login-submit").await.unwrap();
    assert_ne!(indonesian, english, "the button's text is translated");
    let cookie = browser.client().get_named_cookie("penghubung_lang").await.expect("the choice is kept");
    assert_eq!(cookie.value(), "en");
    // The choice sticks without the parameter, after login too.
    log_in(&browser, &console, &console.login("tono-auditor"), false).await;
    assert_eq!(browser.execute("return document.documentElement.lang;", vec![]).await, "en");

    // The language form switches back.
    assert!(browser.has("form[action='/language'][method=post]").await, "no language form on the dashboard");
    let script = "const form = document.querySelector('form[action=\"/language\"]');
        const field = form.querySelector('[name=lang]');
        if (field.tagName === 'SELECT' || field.type !== 'submit') { field.value = 'id'; form.requestSubmit(); }
        else { form.querySelector('[name=lang][value=id]').click(); }";
    browser.navigate_by_script(script, vec![]).await;
    assert_eq!(browser.execute("return document.documentElement.lang;", vec![]).await, "id");
    assert_eq!(browser.client().get_named_cookie("penghubung_lang").await.unwrap().value(), "id");
    assert!(browser.has("#whoami").await, "still logged in");
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_certificate_opens_the_dashboard_without_a_session() {
    let console = Console::start().await;
    let answer = console.as_operator("sari-admin", Method::GET, "/", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let content_type = answer.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(answer.headers["content-security-policy"], CSP);
    let html = answer.text();
    assert!(html.contains("id=\"whoami\"") && html.contains("sari-admin"), "{html}");
    assert!(answer.headers.get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("penghubung_session")));
    // Without a certificate or a session the dashboard is not shown.
    let anonymous = console.plain(Method::GET, "/", None, None, None).await;
    assert!(!anonymous.text().contains("id=\"whoami\""), "{}", anonymous.text());
    assert!(
        anonymous.status == StatusCode::SEE_OTHER || anonymous.status == StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.status
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_and_an_approval_work_by_keyboard_alone() {
    let console = Console::start().await;
    let browser = Browser::start().await;
    let rudi = console.login("rudi-aptika");
    browser.goto(&console.page("/login")).await;
    // The first Tab reaches the skip link.
    browser.press(penghubung_tests::browser::TAB).await;
    let first = browser.execute("return document.activeElement.getAttribute('href');", vec![]).await;
    assert!(first.as_str().is_some_and(|h| h.starts_with('#')), "the first Tab stop is no skip link: {first}");
    assert!(browser.focus_is_visible().await, "the skip link shows no focus");
    // Username, password and code in tab order, Enter submits.
    assert!(browser.tab_to("#username", 10).await, "Tab never reaches the username");
    browser.press(rudi.id).await;
    assert!(browser.tab_to("#password", 1).await, "the password does not follow the username");
    browser.press(&rudi.password).await;
    assert!(browser.tab_to("#totp", 1).await, "the code does not follow the password");
    assert!(browser.focus_is_visible().await, "the code field shows no focus");
    browser.press(&totp_now(&rudi.secret)).await;
    let old = browser.client().find(fantoccini::Locator::Css("html")).await.unwrap();
    browser.press(ENTER).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "Enter did not submit the login");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(browser.has("#whoami").await, "not logged in by keyboard: {:?}", browser.text_of("main").await);
    browser.goto(&console.page("/services/dinsos/bansos/v1")).await;

    // The approval: its reason field and its button by Tab, the button pressed with Enter.
    assert!(browser.tab_to("#approve-operations-reason", 60).await, "Tab never reaches the approval's reason");
    browser.press("diuji dengan papan ketik").await;
    assert!(browser.tab_to("#action-approve-operations", 3).await, "Tab never reaches the approval button");
    assert!(browser.focus_is_visible().await, "the approval button shows no focus");
    let old = browser.client().find(fantoccini::Locator::Css("html")).await.unwrap();
    browser.press(ENTER).await;
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "Enter did not press the approval button");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(browser.has("#notice[role=status]").await, "{:?}", browser.text_of("#error").await);
    assert_eq!(console.service("dinsos/bansos/v1").await["approvals"]["operations"]["by"], "rudi-aptika");
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_each_request_keeps_it_alive() {
    let console = Console::start_with("[console]\nsession_idle_timeout = \"4s\"\n").await;
    let browser = Browser::start().await;
    log_in(&browser, &console, &console.login("tono-auditor"), false).await;
    // Two requests 2.5 s apart: 5 s after the login, alive, since each one refreshed the idle clock.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        browser.goto(&console.page("/services")).await;
        assert!(browser.has("#whoami").await, "the session ended while in use");
    }
    // Unused longer than the idle timeout: over.
    tokio::time::sleep(Duration::from_secs(5)).await;
    browser.goto(&console.page("/services")).await;
    assert!(!browser.has("#whoami").await, "an idle session still opens pages");
    browser.close().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_one_address_lock_every_username_there() {
    let console = Console::start_with("[console]\nmax_failures_per_address = 3\n").await;
    let browser = Browser::start().await;
    for (attempt, user) in ["tidak-ada-1", "tidak-ada-2", "tidak-ada-3"].iter().enumerate() {
        let status = submit_login(&browser, &console, user, "Tebakan-2026-salah", "123456").await;
        assert_eq!(status, 401, "failure {}", attempt + 1);
    }
    // An operator who never failed, with the right password and code, from the same address.
    let sari = console.login("sari-admin");
    let status = submit_login(&browser, &console, sari.id, &sari.password, &totp_now(&sari.secret)).await;
    assert_eq!(status, 429, "the address is locked out");
    let text = browser.text_of("#login-error[role=alert]").await.expect("an alert says why");
    assert!(text.contains("console.login_locked"), "{text}");
    assert!(browser.client().get_named_cookie("penghubung_session").await.is_err());
    browser.close().await;
    console.stop().await;
}
