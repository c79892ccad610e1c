//! The web console over real TLS, at the HTTP level (the browser flows are in `console.rs`): a gateway and its
//! admin listener in this process, operators with certificates issued by the test's CA. The dashboard for an
//! operator certificate with its security headers; the credential API and CLI; a password + TOTP sign-in into
//! a session, a code not accepted twice, sign-out; credentials in no journal, export, answer or audit record;
//! a form without its CSRF token or from another origin refused; lockout after repeated failures.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use http::{Method, Request, StatusCode};
use penghubung::management::ca::Issued;
use penghubung::management::Role;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki};
use penghubung_tests::operators::{totp_now, with_password};
use penghubung_tests::{docs, full, penghubung_binary, send, Collected, Upstream};
use serde_json::{json, Value};

const OPERATORS: &[(&str, &str, &[Role])] = &[
    ("sari-admin", "diskominfo", &[Role::Admin]),
    ("rudi-aptika", "diskominfo", &[Role::Operasi]),
    ("dewi-persandian", "diskominfo", &[Role::Keamanan]),
    ("agus-dinsos", "dinsos", &[Role::OpdAdmin]),
    ("dua-peran", "diskominfo", &[Role::Operasi, Role::Keamanan]),
];

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).next().unwrap().unwrap().to_vec()
}

struct Console {
    _upstream: Upstream,
    gateway: Option<penghubung::Gateway>,
    admin: Option<penghubung::admin::api::AdminServer>,
    dir: tempfile::TempDir,
    pki: Pki,
    url: String,
    certificates: HashMap<&'static str, Issued>,
}

impl Console {
    async fn start(console_section: &str) -> Console {
        let upstream = Upstream::text("bansos ok").await;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let (key, text) =
            docs::service("dinsos", "bansos", &[upstream.url()], "", &docs::operation("cek", "GET", "/status"));
        let bansos = (
            key,
            text.replace("status = \"active\"", "status = \"testing\"\nsubmitted_by = \"agus-dinsos\"")
                .replace(docs::APPROVALS, ""),
        );
        let mut documents = vec![docs::opd("diskominfo"), docs::opd("dinsos"), docs::unlimited_tier(), bansos];
        let mut certificates = HashMap::new();
        for (id, opd, roles) in OPERATORS {
            let issued = pki.client(opd, &format!("operator-{id}"));
            let fingerprint = penghubung::management::stored::fingerprint(&der(&issued.cert_pem));
            let roles = roles.iter().map(|r| format!("\"{}\"", r.as_str())).collect::<Vec<_>>().join(", ");
            documents.push((
                format!("operators/{id}.toml"),
                format!(
                    "id = \"{id}\"\nname = \"Operator {id}\"\nnip = \"198001012005011001\"\nopd = \"{opd}\"\nroles = [{roles}]\n\n[identity]\nfingerprint_sha256 = [\"{fingerprint}\"]\n"
                ),
            ));
            certificates.insert(*id, issued);
        }
        let extra = format!("[admin]\nlisten = \"127.0.0.1:0\"\n\n[audit]\nenabled = true\n\n{console_section}");
        let path = write_mtls_setup(dir.path(), &documents, &pki, &extra);
        let config = penghubung::Config::load(&path).unwrap_or_else(|p| panic!("config: {p:?}"));
        let gateway = penghubung::Gateway::start(config.clone()).await.unwrap_or_else(|e| panic!("start: {e}"));
        let admin = penghubung::admin::start_beside(&config, &gateway).await.unwrap().expect("[admin] is on");
        Console {
            _upstream: upstream,
            url: format!("https://127.0.0.1:{}", admin.local_addr().port()),
            gateway: Some(gateway),
            admin: Some(admin),
            dir,
            pki,
            certificates,
        }
    }

    /// A request as `operator` (its certificate) or with no certificate, with `cookies` and a body.
    async fn call(
        &self,
        operator: Option<&str>,
        method: Method,
        path: &str,
        cookies: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Collected {
        let identity = operator.map(|id| &self.certificates[id]);
        let client = https_client(client_config(&self.pki.ca_pem(), identity));
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.url));
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match form {
            Some(fields) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                fields.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
            }
            None => String::new(),
        };
        send(&client, request.body(full(body)).unwrap()).await
    }

    async fn api(&self, operator: &str, method: Method, path: &str, body: Option<Value>) -> Collected {
        let client = https_client(client_config(&self.pki.ca_pem(), Some(&self.certificates[operator])));
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.url));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        send(&client, request.body(full(body.map(|b| b.to_string()).unwrap_or_default())).unwrap()).await
    }

    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("policies")
    }

    /// `GET /login` without a certificate: the pre-session cookie and the form's CSRF token.
    async fn login_form(&self) -> (String, String) {
        let answer = self.call(None, Method::GET, "/login", "", None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let cookie = set_cookie(&answer, "penghubung_login").expect("a pre-session cookie");
        (format!("penghubung_login={cookie}"), csrf_of(&answer.text()))
    }

    /// A sign-in attempt (a fresh form each time).
    async fn sign_in(&self, username: &str, password: &str, code: &str) -> Collected {
        let (cookie, csrf) = self.login_form().await;
        let fields = [("csrf", csrf.as_str()), ("username", username), ("password", password), ("totp", code)];
        self.call(None, Method::POST, "/login", &cookie, Some(&fields), &[]).await
    }

    async fn stop(mut self) {
        if let Some(admin) = self.admin.take() {
            admin.shutdown().await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the `Set-Cookie` named `name`, and that its attributes are the strict ones.
fn set_cookie(answer: &Collected, name: &str) -> Option<String> {
    answer.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
        let (k, value) = pair.split_once('=')?;
        (k == name).then(|| {
            for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
                assert!(attributes.contains(attribute), "{name} cookie without {attribute}: {v}");
            }
            value.to_string()
        })
    })
}

/// The first hidden `csrf` input's value of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf input") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_string()
}

fn assert_html_with_headers(answer: &Collected) {
    let header = |name: &str| answer.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(header("content-type").starts_with("text/html"), "{:?}", answer.headers);
    assert_eq!(header("content-security-policy"), CSP);
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("cache-control"), "no-store");
    let text = answer.text();
    assert!(!text.contains("<script") && !text.contains("style="), "no inline script or style");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_answers_an_operator_certificate_with_html_and_its_security_headers() {
    let console = Console::start("").await;
    let answer = console.call(Some("dewi-persandian"), Method::GET, "/", "", None, &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_html_with_headers(&answer);
    let page = answer.text();
    assert!(page.contains("<html lang=\"id\">"), "Indonesian by default");
    for id in ["whoami", "services-by-status", "approvals-waiting", "expiring", "recent-denials", "health", "logout"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    assert!(page.contains("dewi-persandian") && page.contains("keamanan"), "who and roles in the header");
    assert!(page.contains("dinsos/bansos/v1"), "the security approval waits for dewi");

    let english = console.call(Some("rudi-aptika"), Method::GET, "/?lang=en", "", None, &[]).await;
    assert!(english.text().contains("<html lang=\"en\">") && english.text().contains("Dashboard"));

    // Without a certificate or a session: to the sign-in page.
    let anonymous = console.call(None, Method::GET, "/", "", None, &[]).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers["location"], "/login");

    // The stylesheet is embedded and cached long.
    let css_path = page.split("href=\"/assets/console-").nth(1).unwrap().split('"').next().unwrap();
    let css = console.call(None, Method::GET, &format!("/assets/console-{css_path}"), "", None, &[]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(css.headers["cache-control"].to_str().unwrap().contains("max-age=31536000"));

    // The API beside it is unchanged.
    let whoami = console.api("rudi-aptika", Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(whoami.status, StatusCode::OK);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_and_a_totp_code_start_a_session_that_signs_out() {
    let console = Console::start("").await;
    // Through the API: the operator's own password and TOTP secret.
    let short = console
        .api("rudi-aptika", Method::PUT, "/api/v1/operators/rudi-aptika/password", Some(json!({"password": "pendek"})))
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.text());
    let password = "kata-sandi-rudi-2026";
    let set = console
        .api("rudi-aptika", Method::PUT, "/api/v1/operators/rudi-aptika/password", Some(json!({"password": password})))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text());
    assert!(set.body.is_empty());
    let other = console
        .api(
            "rudi-aptika",
            Method::PUT,
            "/api/v1/operators/dewi-persandian/password",
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "another operator's password: {}", other.text());
    assert_eq!(other.json()["code"], "admin.forbidden");
    let enrolled = console.api("rudi-aptika", Method::POST, "/api/v1/operators/rudi-aptika/totp", None).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.text());
    let secret = enrolled.json()["secret"].as_str().unwrap().to_string();
    assert!(enrolled.json()["uri"].as_str().unwrap().starts_with("otpauth://totp/Penghubung:rudi-aptika?secret="));

    // Signed in: 303 to the dashboard with a strict session cookie, the pre-session dropped.
    let code = totp_now(&secret);
    let signed_in = console.sign_in("rudi-aptika", password, &code).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.text());
    assert_eq!(signed_in.headers["location"], "/");
    let session = set_cookie(&signed_in, "penghubung_session").expect("a session cookie");
    assert_eq!(session.len(), 64, "256 random bits");
    assert_eq!(set_cookie(&signed_in, "penghubung_login").as_deref(), Some(""), "the pre-session is dropped");
    let cookie = format!("penghubung_session={session}");
    let dashboard = console.call(None, Method::GET, "/", &cookie, None, &[]).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
    assert_html_with_headers(&dashboard);
    assert!(dashboard.text().contains("rudi-aptika"));

    // The same code again: refused like any failure.
    let replayed = console.sign_in("rudi-aptika", password, &code).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert!(replayed.text().contains("id=\"login-error\"") && replayed.text().contains("console.login_failed"));
    // Each cause answers the same words.
    let wrong_password = console.sign_in("rudi-aptika", "salah-salah-salah", &totp_now(&secret)).await;
    let unknown = console.sign_in("tidak-ada", password, &totp_now(&secret)).await;
    let error_of = |a: &Collected| {
        a.text().split("id=\"login-error\"").nth(1).unwrap().split("</div>").next().unwrap().to_string()
    };
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&wrong_password), error_of(&unknown), "no user enumeration");

    // Sign-out needs the CSRF token; then the session is gone.
    let refused = console.call(None, Method::POST, "/logout", &cookie, Some(&[]), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("console.csrf_rejected"));
    let csrf = csrf_of(&dashboard.text());
    let out = console.call(None, Method::POST, "/logout", &cookie, Some(&[("csrf", csrf.as_str())]), &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers["location"], "/login");
    let after = console.call(None, Method::GET, "/", &cookie, None, &[]).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");

    // Every sign-in, failure and sign-out is in the audit trail, with the reason and never the secret.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let trail = audit_text(&console);
    for needle in [
        "\"console.login\"",
        "\"console.login_failed\"",
        "\"replayed_totp\"",
        "\"wrong_password\"",
        "\"unknown_user\"",
        "\"console.logout\"",
    ] {
        assert!(trail.contains(needle), "{needle} not in the trail");
    }
    assert!(!trail.contains(password) && !trail.contains(&secret) && !trail.contains(&code));
    console.stop().await;
}

fn audit_text(console: &Console) -> String {
    let mut text = String::new();
    for entry in walk(&console.dir.path().join("audit")) {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    text
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_in_no_journal_export_answer_or_store_file() {
    let console = Console::start("").await;
    let password = "kata-sandi-admin-rahasia";
    let set = console
        .api("sari-admin", Method::PUT, "/api/v1/operators/agus-dinsos/password", Some(json!({"password": password})))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "an admin sets anyone's: {}", set.text());
    let enrolled = console.api("sari-admin", Method::POST, "/api/v1/operators/agus-dinsos/totp", None).await;
    let secret = enrolled.json()["secret"].as_str().unwrap().to_string();
    // A change through the API, so that the journal has entries.
    let submit = console.api("sari-admin", Method::GET, "/api/v1/operators/agus-dinsos", None).await;
    let export = console.api("sari-admin", Method::GET, "/api/v1/store/export", None).await;
    assert_eq!(export.status, StatusCode::OK);
    let list = console.api("sari-admin", Method::GET, "/api/v1/operators", None).await;
    let mut seen = vec![submit.text(), export.text(), list.text()];
    for path in walk(&console.store()) {
        seen.push(String::from_utf8_lossy(&std::fs::read(path).unwrap()).to_string());
    }
    seen.push(audit_text(&console));
    for text in &seen {
        assert!(!text.contains(password), "the password leaked");
        assert!(!text.contains(&secret), "the TOTP secret leaked");
        assert!(!text.contains("$argon2id$"), "the hash leaked");
    }
    // It is kept beside the store, 0600, as argon2id.
    let file = console.dir.path().join("console-credentials/agus-dinsos.json");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains("$argon2id$v=19$") && !stored.contains(password));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // The secret works once for a sign-in.
    let signed_in = console.sign_in("agus-dinsos", password, &totp_now(&secret)).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.text());
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_a_password_and_enrols_totp() {
    let console = Console::start("").await;
    let files = console.dir.path().join("cli");
    std::fs::create_dir_all(&files).unwrap();
    let issued = &console.certificates["sari-admin"];
    std::fs::write(files.join("op.crt"), &issued.cert_pem).unwrap();
    std::fs::write(files.join("op.key"), &issued.key_pem).unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(penghubung_binary())
            .args(args)
            .args(["--admin-url", &console.url, "--cacert"])
            .arg(console.pki.dir.join("ca.crt"))
            .arg("--operator-cert")
            .arg(files.join("op.crt"))
            .arg("--operator-key")
            .arg(files.join("op.key"))
            .env("HOME", &files)
            .env_remove("PENGHUBUNG_PROFILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    };
    let password = "kata-sandi-dari-cli-01";
    let (code, text) = run(&["operator", "set-password", "dewi-persandian"], &format!("{password}\n"));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(password));
    let (code, text) = run(&["operator", "set-password", "dewi-persandian"], "pendek\n");
    assert_ne!(code, 0, "too short: {text}");
    let (code, text) = run(&["operator", "enrol-totp", "dewi-persandian"], "");
    assert_eq!(code, 0, "{text}");
    let secret = text.lines().find_map(|l| l.strip_prefix("secret: ")).expect("the secret printed").trim().to_string();
    assert!(text.contains("otpauth://totp/Penghubung:dewi-persandian?"), "{text}");
    let signed_in = console.sign_in("dewi-persandian", password, &totp_now(&secret)).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.text());
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_or_from_another_origin_is_refused() {
    let console = Console::start("").await;
    let page = console.call(Some("rudi-aptika"), Method::GET, "/services/dinsos/bansos/v1", "", None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("id=\"action-approve-operations\""), "operasi may approve for operations");
    assert!(!page.text().contains("id=\"action-approve-security\""), "but not for security");
    let csrf = csrf_of(&page.text());
    let path = "/services/dinsos/bansos/v1/approve-operations";
    for (fields, headers) in [
        (vec![], vec![]),
        (vec![("csrf", "00ff")], vec![]),
        (vec![("csrf", csrf.as_str())], vec![("origin", "https://evil.example")]),
    ] {
        let refused = console.call(Some("rudi-aptika"), Method::POST, path, "", Some(&fields), &headers).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{fields:?} {headers:?}");
        assert!(refused.text().contains("id=\"error\"") && refused.text().contains("console.csrf_rejected"));
    }
    // Nothing was approved; with the token it is.
    let service = console.api("rudi-aptika", Method::GET, "/api/v1/services/dinsos/bansos/v1", None).await.json();
    assert!(service["approvals"]["operations"].is_null(), "{service}");
    let fields = [("csrf", csrf.as_str()), ("reason", "uji fungsi lulus")];
    let done = console.call(Some("rudi-aptika"), Method::POST, path, "", Some(&fields), &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let service = console.api("rudi-aptika", Method::GET, "/api/v1/services/dinsos/bansos/v1", None).await.json();
    assert_eq!(service["approvals"]["operations"]["by"], "rudi-aptika", "{service}");
    // Posted anyway by a role the table does not allow: the management plane's 403.
    let auditor_page =
        console.call(Some("agus-dinsos"), Method::GET, "/services/dinsos/bansos/v1", "", None, &[]).await;
    let theirs = csrf_of(&auditor_page.text());
    let forbidden = console
        .call(
            Some("agus-dinsos"),
            Method::POST,
            "/services/dinsos/bansos/v1/approve-security",
            "",
            Some(&[("csrf", theirs.as_str()), ("reason", "saya sendiri")]),
            &[],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{}", forbidden.text());
    assert!(forbidden.text().contains("admin.forbidden"));
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_username_even_for_the_right_password() {
    let console = Console::start("[console]\nmax_failures_per_user = 3\nlockout_window = \"1m\"\n").await;
    let password = "kata-sandi-dewi-2026";
    let secret = with_password(&console.store(), "dewi-persandian", password);
    for _ in 0..3 {
        let failed = console.sign_in("dewi-persandian", "salah-salah-salah", &totp_now(&secret)).await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    let locked = console.sign_in("dewi-persandian", password, &totp_now(&secret)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.text());
    assert!(locked.text().contains("id=\"login-error\"") && locked.text().contains("console.login_locked"));
    // Another operator is not locked out.
    let secret_other = with_password(&console.store(), "rudi-aptika", password);
    let other = console.sign_in("rudi-aptika", password, &totp_now(&secret_other)).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.text());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(audit_text(&console).contains("\"console.login_locked\""));
    console.stop().await;
}

async fn service_status(console: &Console) -> String {
    let service = console.api("sari-admin", Method::GET, "/api/v1/services/dinsos/bantuan/v1", None).await.json();
    service["status"].as_str().unwrap().to_string()
}

/// Posts a console form as `operator` (its certificate): the page's CSRF token is read first from `page`.
async fn post_form(console: &Console, operator: &str, page: &str, action: &str, fields: &[(&str, &str)]) -> Collected {
    let html = console.call(Some(operator), Method::GET, page, "", None, &[]).await;
    assert_eq!(html.status, StatusCode::OK, "{page}: {}", html.text());
    let csrf = csrf_of(&html.text());
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    console.call(Some(operator), Method::POST, action, "", Some(&all), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_created_in_the_console_goes_through_its_whole_lifecycle() {
    let console = Console::start("").await;
    let document = "title = \"<script>alert(1)</script>\"\nclassification = \"terbatas\"\n\n[upstream]\nendpoints = [\"http://127.0.0.1:9\"]\n";
    let fields = [("opd", "dinsos"), ("name", "bantuan"), ("version", "v1"), ("document", document)];
    let created = post_form(&console, "dua-peran", "/services/new", "/services", &fields).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text());
    let page = "/services/dinsos/bantuan/v1";
    assert_eq!(created.headers["location"], format!("{page}?done=created"));
    let shown = console.call(Some("dua-peran"), Method::GET, &format!("{page}?done=created"), "", None, &[]).await;
    let text = shown.text();
    assert!(text.contains("id=\"notice\" role=\"status\""), "{text}");
    assert!(text.contains("&lt;script&gt;") && !text.contains("<script>"), "values are escaped");
    assert!(text.contains("id=\"action-submit\""));

    let act = |operator: &'static str, action: &'static str, reason: &'static str| {
        let console = &console;
        async move {
            let path = format!("{page}/{action}");
            post_form(console, operator, page, &path, &[("reason", reason)]).await
        }
    };
    assert_eq!(act("dua-peran", "submit", "siap diuji").await.status, StatusCode::SEE_OTHER);
    assert_eq!(service_status(&console).await, "testing");
    // The submitter may not give the security approval: the page again, with the reason and its code.
    let refused = act("dua-peran", "approve-security", "saya sendiri").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let alert = refused
        .text()
        .split("id=\"error\" role=\"alert\">")
        .nth(1)
        .unwrap()
        .split("</div>")
        .next()
        .unwrap()
        .to_string();
    assert!(alert.contains("submitted") && alert.contains("admin.forbidden"), "{alert}");
    // An opd_admin of the OPD sees no approval button, and is refused when it posts one anyway.
    let agus = console.call(Some("agus-dinsos"), Method::GET, page, "", None, &[]).await.text();
    assert!(!agus.contains("action-approve") && !agus.contains("action-suspend"), "{agus}");
    assert_eq!(act("agus-dinsos", "approve-operations", "boleh?").await.status, StatusCode::FORBIDDEN);
    // Two approvals by two others: active.
    assert_eq!(act("rudi-aptika", "approve-operations", "uji fungsi lulus").await.status, StatusCode::SEE_OTHER);
    assert_eq!(act("dewi-persandian", "approve-security", "uji keamanan lulus").await.status, StatusCode::SEE_OTHER);
    assert_eq!(service_status(&console).await, "active");
    // Withdraw with a reason (back to testing), approve again, suspend, resume, retire.
    let withdrawn = post_form(
        &console,
        "dewi-persandian",
        page,
        &format!("{page}/withdraw"),
        &[("kind", "security"), ("reason", "temuan baru")],
    )
    .await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER, "{}", withdrawn.text());
    assert_eq!(service_status(&console).await, "testing");
    assert_eq!(act("dewi-persandian", "approve-security", "temuan ditutup").await.status, StatusCode::SEE_OTHER);
    assert_eq!(act("dewi-persandian", "suspend", "insiden").await.status, StatusCode::SEE_OTHER);
    assert_eq!(service_status(&console).await, "suspended");
    assert_eq!(act("dewi-persandian", "resume", "insiden selesai").await.status, StatusCode::SEE_OTHER);
    assert_eq!(service_status(&console).await, "active");
    assert_eq!(act("rudi-aptika", "retire", "diganti v2").await.status, StatusCode::SEE_OTHER);
    assert_eq!(service_status(&console).await, "retired");
    // The history shows every step, by whom and why.
    let history =
        console.call(Some("dewi-persandian"), Method::GET, "/history/services/dinsos/bantuan/v1", "", None, &[]).await;
    assert_eq!(history.status, StatusCode::OK);
    for needle in ["dua-peran", "rudi-aptika", "dewi-persandian", "temuan baru", "diganti v2"] {
        assert!(history.text().contains(needle), "{needle} not in the history");
    }
    console.stop().await;
}

/// The monthly usage report in the console: the same report the API gives, performed as the viewer. The data
/// plane's exchanges of this month are counted, the trail verified, both charts shown as SVG images (the page's
/// CSP allows no inline style); a role the report is not for is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_report_page_counts_this_months_exchanges_with_its_charts() {
    let console = Console::start("").await;
    let gateway = *console.gateway.as_ref().unwrap().local_addrs().first().expect("a data-plane listener");
    // Calls the store does not grant (an operator's certificate is no client): each is an exchange record all the
    // same, the caller unidentified.
    let client = https_client(client_config(&console.pki.ca_pem(), Some(&console.certificates["rudi-aptika"])));
    for _ in 0..3 {
        let request = Request::get(format!("https://127.0.0.1:{}/dinsos/bansos/v1/status", gateway.port()));
        let answer = send(&client, request.body(full("")).unwrap()).await;
        assert!(answer.status.is_client_error(), "{}", answer.text());
    }
    let month =
        &penghubung::reports::month::Month::of(std::time::SystemTime::now(), penghubung::reports::UtcOffset::default())
            .to_string();
    let mut counted = 0;
    for _ in 0..50 {
        // The audit writer is asynchronous: the records reach the segment shortly after the answers.
        let answer =
            console.call(Some("dewi-persandian"), Method::GET, &format!("/reports?month={month}"), "", None, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_html_with_headers(&answer);
        let html = answer.text();
        assert!(html.contains("id=\"usage-report\""), "{html}");
        assert!(html.contains("id=\"report-verification\" role=\"status\""), "the trail verified: {html}");
        assert_eq!(html.matches("src=\"data:image/svg+xml;base64,").count(), 2, "both charts");
        assert!(html.contains("id=\"report-callers\"") && html.contains("id=\"report-providers\""));
        let total = html.split("<dd>").nth(1).and_then(|r| r.split('<').next()).and_then(|n| n.parse::<u64>().ok());
        counted = total.expect("the total requests");
        if counted >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(counted >= 3, "the three calls are counted, got {counted}");
    // `operasi` is not among the report's roles (admin, keamanan, auditor).
    let refused = console.call(Some("rudi-aptika"), Method::GET, "/reports", "", None, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert!(refused.text().contains("admin.forbidden"), "{}", refused.text());
    console.stop().await;
}

/// Every visible field of every page has a label (`<label for>` naming its id, or `aria-label`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_every_page_has_a_label_in_both_languages() {
    let console = Console::start("").await;
    let pages = [
        "/",
        "/opds",
        "/opds/dinsos",
        "/services",
        "/services/new",
        "/services/dinsos/bansos/v1",
        "/clients",
        "/grants",
        "/audit",
        "/audit?from=2026-01-01&kind=exchange",
        "/history/services/dinsos/bansos/v1",
        "/explain",
        "/reports",
    ];
    for lang in ["id", "en"] {
        for page in pages {
            let separator = if page.contains('?') { '&' } else { '?' };
            let answer = console
                .call(Some("dua-peran"), Method::GET, &format!("{page}{separator}lang={lang}"), "", None, &[])
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.text());
            assert_html_with_headers(&answer);
            let html = answer.text();
            assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{page}");
            assert!(
                html.contains("class=\"skip\" href=\"#main\"") && html.contains("id=\"main\""),
                "{page}: skip link"
            );
            assert_labelled(page, &html);
            let cookie = answer
                .headers
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with(&format!("penghubung_lang={lang}")));
            assert!(cookie, "?lang= is kept in a cookie");
        }
    }
    let login = console.call(None, Method::GET, "/login?lang=en", "", None, &[]).await;
    assert_labelled("/login", &login.text());
    assert!(login.text().contains("id=\"login-form\"") && login.text().contains("inputmode=\"numeric\""));
    console.stop().await;
}

fn assert_labelled(page: &str, html: &str) {
    for tag in ["<input", "<select", "<textarea"] {
        for element in html.split(tag).skip(1) {
            let element = element.split('>').next().unwrap();
            if element.contains("type=\"hidden\"") || element.contains("aria-label=") {
                continue;
            }
            let id = element.split("id=\"").nth(1).map(|r| r.split('"').next().unwrap().to_string());
            let id = id.unwrap_or_else(|| panic!("{page}: {tag}{element}> has no id"));
            assert!(html.contains(&format!("<label for=\"{id}\"")), "{page}: #{id} has no label");
        }
    }
}

/// The real binary's log through a password change, an enrolment and sign-ins, right and wrong: the operator
/// ids and the events are there, no password, secret, code or hash is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_binarys_log_holds_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let operator = pki.client("diskominfo", "operator-sari");
    let fingerprint = penghubung::management::stored::fingerprint(&der(&operator.cert_pem));
    let documents = [
        docs::opd("diskominfo"),
        (
            "operators/sari-admin.toml".to_string(),
            format!(
                "id = \"sari-admin\"\nname = \"Sari\"\nnip = \"198001012005011001\"\nopd = \"diskominfo\"\nroles = [\"admin\"]\n\n[identity]\nfingerprint_sha256 = [\"{fingerprint}\"]\n"
            ),
        ),
    ];
    let path = write_mtls_setup(dir.path(), &documents, &pki, "[admin]\nlisten = \"127.0.0.1:0\"\n");
    let process = penghubung_tests::GatewayProcess::start(&path);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let port = loop {
        let log = process.log();
        if let Some(port) = log
            .lines()
            .find(|l| l.contains("admin API started"))
            .and_then(|l| l.split("admin_address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.trim_matches('"').parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port())
        {
            break port;
        }
        assert!(std::time::Instant::now() < deadline, "no admin listener:\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let url = format!("https://127.0.0.1:{port}");
    let admin = https_client(client_config(&pki.ca_pem(), Some(&operator)));
    let password = "kata-sandi-di-log-tidak-ada";
    let put = Request::put(format!("{url}/api/v1/operators/sari-admin/password"))
        .header("content-type", "application/json")
        .body(full(json!({"password": password}).to_string()))
        .unwrap();
    assert_eq!(send(&admin, put).await.status, StatusCode::NO_CONTENT);
    let enrol = Request::post(format!("{url}/api/v1/operators/sari-admin/totp")).body(full("")).unwrap();
    let secret = send(&admin, enrol).await.json()["secret"].as_str().unwrap().to_string();

    let browser = https_client(client_config(&pki.ca_pem(), None));
    let mut codes = Vec::new();
    for attempt in [("salah-salah-salah-salah", false), (password, true)] {
        let form = send(&browser, Request::get(format!("{url}/login")).body(full("")).unwrap()).await;
        let cookie = form.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let csrf = csrf_of(&form.text());
        let code = totp_now(&secret);
        let body = format!("csrf={csrf}&username=sari-admin&password={}&totp={code}", encode(attempt.0));
        let login = Request::post(format!("{url}/login"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(full(body))
            .unwrap();
        let answer = send(&browser, login).await;
        let expected = if attempt.1 { StatusCode::SEE_OTHER } else { StatusCode::UNAUTHORIZED };
        assert_eq!(answer.status, expected, "{}", answer.text());
        codes.push(code);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = process.log();
    assert!(log.contains("console.login_failed") && log.contains("console.login"), "{log}");
    assert!(log.contains("sari-admin"), "{log}");
    for secret_text in [password, "salah-salah-salah-salah", secret.as_str(), "$argon2id$"] {
        assert!(!log.contains(secret_text), "{secret_text} in the log:\n{log}");
    }
    for code in codes {
        assert!(!log.contains(&format!("totp={code}")) && !log.contains(&format!("\"{code}\"")), "{log}");
    }
}

/// `[console] sessions = "redis"`: two consoles (two gateways with their own stores, the same operators) share
/// one real `redis-server`. A session signed in on one is valid on the other; signing out on the other ends it
/// on both; with Redis gone there is no session (fail closed), and the id is never in a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_redis_is_valid_on_another_console_and_signing_out_there_ends_it_on_both() {
    let mut redis = penghubung_tests::redis::RedisServer::start();
    let section =
        format!("[console]\nsessions = \"redis\"\nsession_idle_timeout = \"10m\"\n\n{}", redis.config_section(""));
    let first = Console::start(&section).await;
    let second = Console::start(&section).await;
    let password = "kata-sandi-rudi-2026";
    let set = first
        .api("rudi-aptika", Method::PUT, "/api/v1/operators/rudi-aptika/password", Some(json!({"password": password})))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text());
    let enrolled = first.api("rudi-aptika", Method::POST, "/api/v1/operators/rudi-aptika/totp", None).await;
    let secret = enrolled.json()["secret"].as_str().unwrap().to_string();
    let signed_in = first.sign_in("rudi-aptika", password, &totp_now(&secret)).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.text());
    let session = set_cookie(&signed_in, "penghubung_session").expect("a session cookie");
    let cookie = format!("penghubung_session={session}");

    // The session is one key in Redis, with the idle timeout as its TTL.
    let key = format!("penghubung:console:session:{session}");
    let ttl = redis.command(&format!("PTTL {key}"));
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap_or_else(|_| panic!("PTTL: {ttl}"));
    assert!((590_000..=600_000).contains(&ttl), "idle timeout of 10 min: {ttl}");

    // Valid on both consoles.
    for console in [&first, &second] {
        let dashboard = console.call(None, Method::GET, "/", &cookie, None, &[]).await;
        assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text());
        assert!(dashboard.text().contains("rudi-aptika"));
    }
    // Signed out on the second (with its own CSRF token): gone on both.
    let dashboard = second.call(None, Method::GET, "/", &cookie, None, &[]).await;
    let csrf = csrf_of(&dashboard.text());
    let out = second.call(None, Method::POST, "/logout", &cookie, Some(&[("csrf", csrf.as_str())]), &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(redis.command(&format!("EXISTS {key}")).starts_with(":0"), "the key is deleted");
    for console in [&first, &second] {
        let after = console.call(None, Method::GET, "/", &cookie, None, &[]).await;
        assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended everywhere");
        assert_eq!(after.headers["location"], "/login");
    }

    // A new session (another operator: a TOTP code counts once), then Redis is gone: no session on either
    // console.
    let path = "/api/v1/operators/dewi-persandian";
    let set = first
        .api("dewi-persandian", Method::PUT, &format!("{path}/password"), Some(json!({"password": password})))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text());
    let enrolled = first.api("dewi-persandian", Method::POST, &format!("{path}/totp"), None).await;
    let secret = enrolled.json()["secret"].as_str().unwrap().to_string();
    let again = first.sign_in("dewi-persandian", password, &totp_now(&secret)).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    let cookie = format!("penghubung_session={}", set_cookie(&again, "penghubung_session").unwrap());
    assert_eq!(second.call(None, Method::GET, "/", &cookie, None, &[]).await.status, StatusCode::OK);
    redis.kill();
    for console in [&first, &second] {
        let started = std::time::Instant::now();
        let refused = console.call(None, Method::GET, "/", &cookie, None, &[]).await;
        assert_eq!(refused.status, StatusCode::SEE_OTHER, "fail closed: {}", refused.text());
        assert_eq!(refused.headers["location"], "/login");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }
    // Back with an empty Redis: the old session is not there; signing in works again.
    redis.restart();
    assert_eq!(first.call(None, Method::GET, "/", &cookie, None, &[]).await.status, StatusCode::SEE_OTHER);
}
