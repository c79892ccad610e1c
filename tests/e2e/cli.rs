//! The command line: `penghubung check` reports every problem at once with file and line; `penghubung demo`
//! starts a working demo in one command and writes `demo.env`; `penghubung demo --cluster 3` starts Redis and three
//! replicas that share it.

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};

use penghubung_tests::mtls::{client_config, https_client};
use penghubung_tests::{docs, empty, penghubung_binary, send, write_setup};

use crate::shutdown::wait_for_line;

#[test]
fn check_reports_all_problems_at_once_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut documents = vec![docs::opd("dinkes")];
    // 1: schema errors in a service (bad classification on line 5, bad endpoint on line 8).
    documents.push((
        "services/dinkes/rm.toml".into(),
        "opd = \"dinkes\"\nname = \"rm\"\nversion = 1\ntitle = \"rm\"\nclassification = \"super\"\n\n[upstream]\nendpoints = [\"gopher://x\"]\n".into(),
    ));
    // 2: TOML syntax error on line 2.
    documents.push(("opds/rusak.toml".into(), "id = \"rusak\"\nname = = \"x\"\n".into()));
    // 3: a grant naming a client that does not exist.
    documents.push((
        "grants/g1.toml".into(),
        "id = \"g1\"\nclient = \"dinkes/hantu\"\nservice = \"dinkes/rm/v1\"\noperations = [\"*\"]\ntier = \"bronze\"\n"
            .into(),
    ));
    documents.push(("tiers/campur.toml".into(), "id = \"campur\"\nunlimited = true\nrate = 5\n".into()));
    // 5: a grant naming a tier that does not exist.
    documents.push(docs::client("dinkes", "simpus", "spiffe://x.local/opd/dinkes/app/simpus", true));
    documents.push(docs::opd("bappeda"));
    documents.push(docs::service("bappeda", "ind", &["http://127.0.0.1:9".to_string()], "", ""));
    documents.push(docs::grant_in_tier("g2", "dinkes/simpus", "bappeda/ind/v1", &["*"], "emas"));
    let config = write_setup(dir.path(), &documents, "");
    let output = Command::new(penghubung_binary()).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("services/dinkes/rm.toml:5:"), "{text}");
    assert!(text.contains("services/dinkes/rm.toml:8:"), "{text}");
    assert!(text.contains("opds/rusak.toml:2:"), "{text}");
    assert!(text.contains("client `dinkes/hantu`"), "{text}");
    // 4: a tier that contradicts itself.
    assert!(text.contains("tiers/campur.toml") && text.contains("unlimited tier has no"), "{text}");
    assert!(text.contains("grants/g2.toml") && text.contains("tier `emas`, which is not defined"), "{text}");
    assert!(text.contains("check failed"), "{text}");

    // A config with unknown keys: error with its line.
    std::fs::write(
        &config,
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[store]\npath = \"policies\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let output = Command::new(penghubung_binary()).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("penghubung.toml:5:"), "{text}");
    assert!(text.contains("colour"), "{text}");
}

#[test]
fn check_passes_on_the_baseline_policies() {
    let dir = tempfile::tempdir().unwrap();
    let baseline: Vec<(String, String)> =
        penghubung::baseline_policies().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(baseline.len() >= 10);
    let config = write_setup(dir.path(), &baseline, "");
    let output = Command::new(penghubung_binary()).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("check passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_mtls_in_one_command_and_its_samples_work() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("demo");
    let mut child = Command::new(penghubung_binary())
        .args(["demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workdir"])
        .arg(&workdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Read up to `ready:`, then keep draining stdout like a terminal would.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_for_line(&mut stdout, "ready: "));
        std::io::copy(&mut stdout, &mut std::io::sink()).ok();
    });
    let ready = rx.await.unwrap();
    let url = ready.trim_start_matches("ready: ").to_string();
    assert!(url.starts_with("https://"), "{url}");
    let env: std::collections::HashMap<String, String> = std::fs::read_to_string(workdir.join("demo.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    assert_eq!(env["PENGHUBUNG_URL"], url);
    let read = |key: &str| std::fs::read_to_string(&env[key]).unwrap_or_else(|e| panic!("{key}: {e}"));
    let identity = penghubung::ca::Issued {
        cert_pem: read("PENGHUBUNG_CERT"),
        key_pem: read("PENGHUBUNG_KEY"),
        serial_hex: String::new(),
        spiffe: None,
    };
    let client = https_client(client_config(&read("PENGHUBUNG_CACERT"), Some(&identity)));
    let samples: Vec<&String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("PENGHUBUNG_SAMPLE_") && !k.ends_with("_DENIED"))
        .map(|(_, v)| v)
        .collect();
    assert!(samples.len() >= 3, "{env:?}");
    for path in samples {
        let r = send(&client, http::Request::get(format!("{url}{path}")).body(empty()).unwrap()).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.json().is_object(), "{path}");
    }
    let r = send(&client, http::Request::get(format!("{url}/dinkes/tidak-ada/v1/x")).body(empty()).unwrap()).await;
    assert_eq!(r.code(), "route.not_found");
    // The gateway's own endpoints: health and discovery (recorded with the OPD marker where there is none).
    for own in ["/_penghubung/health", "/_penghubung/services"] {
        let r = send(&client, http::Request::get(format!("{url}{own}")).body(empty()).unwrap()).await;
        assert_eq!(r.status, 200, "{own}: {}", r.text());
    }
    // The policy at work: one call denied for clearance, one response with fields withheld.
    let denied = &env["PENGHUBUNG_SAMPLE_DENIED"];
    let r = send(&client, http::Request::get(format!("{url}{denied}")).body(empty()).unwrap()).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "policy.clearance".to_string()), "{}", r.text());
    let redacted = &env["PENGHUBUNG_SAMPLE_REDACTED"];
    let r = send(&client, http::Request::get(format!("{url}{redacted}")).body(empty()).unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let withheld = r.headers["x-penghubung-redacted"].to_str().unwrap().to_string();
    assert!(withheld.contains("/nama_ibu_kandung") && withheld.contains("/keluarga/*/status_perkawinan"), "{withheld}");
    let body = r.json();
    assert!(body.get("nama_ibu_kandung").is_none() && body["keluarga"][0].get("status_perkawinan").is_none(), "{body}");
    assert_eq!(body["keluarga"][0]["nik"], "1807011203850001", "rahasia fields stay for a rahasia client");
    // Rate limits at work (the samples above used two of the burst): the limited sample's tier lets SIMPUS
    // through at 5 per second, burst 5, so 100 quick
    // requests meet 429s (the burst and the refill pass, the rest is refused with Retry-After).
    let limited = &env["PENGHUBUNG_SAMPLE_LIMITED"];
    let started = std::time::Instant::now();
    let (mut ok, mut refused) = (0usize, 0usize);
    for _ in 0..100 {
        let r = send(&client, http::Request::get(format!("{url}{limited}")).body(empty()).unwrap()).await;
        assert!(r.headers.contains_key("ratelimit-policy") && r.headers.contains_key("ratelimit"), "{r:?}");
        match r.status.as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(r.code(), "ratelimit.exceeded");
                assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
                assert_eq!(r.headers["ratelimit-policy"], "\"grant\";q=5;w=1");
                refused += 1;
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    let bound = 5 + (5.0 * started.elapsed().as_secs_f64()).ceil() as usize + 1;
    assert!(ok >= 1 && ok <= bound, "{ok} admitted in {:?}", started.elapsed());
    assert!(refused > 0, "{ok} admitted, none refused");
    // Every baseline client has its pair.
    for name in ["dinkes.simpus", "dinsos.sikasos", "bappeda.sipd", "diskominfo.dashboard", "disdukcapil.siak"] {
        assert!(workdir.join("clients").join(format!("{name}.crt")).is_file(), "{name}");
        assert!(workdir.join("clients").join(format!("{name}.key")).is_file(), "{name}");
    }
    // The management plane: the admin API and three operators, one service left in testing to take live.
    demo_management_plane_works_from_demo_env(&env, &workdir);
    demo_testing_sample_answers_once_live(&env, &url).await;
    demo_console_signs_in_from_demo_env(&env).await;
    // Without a client certificate the handshake is refused.
    let anonymous = https_client(client_config(&read("PENGHUBUNG_CACERT"), None));
    let refused =
        anonymous.request(http::Request::get(format!("{url}/_penghubung/health")).body(empty()).unwrap()).await;
    assert!(refused.is_err(), "{refused:?}");
    // The ops listener: plain HTTP, its address in demo.env; the demo's traffic is in the metrics, with the demo
    // client's OPD among the callers.
    let ops = &env["PENGHUBUNG_OPS_URL"];
    let ready = penghubung_tests::get(&format!("{ops}/health/ready")).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let metrics = penghubung_tests::get(&format!("{ops}/metrics")).await.text();
    assert!(metrics.contains("caller_opd=\"dinkes\"") && metrics.contains("code=\"policy.clearance\""), "{metrics}");
    assert!(metrics.contains("penghubung_ratelimit_refusals_total{"), "{metrics}");
    // Close our keep-alive connections first: an HTTP/2 connection drains only when its client answers.
    drop((client, anonymous));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM drains and exits 0");

    // The demo kept an audit trail of those calls that anyone with the public key can verify.
    let verify = Command::new(penghubung_binary())
        .args(["audit", "verify", &env["PENGHUBUNG_AUDIT_DIR"], "--key", &env["PENGHUBUNG_AUDIT_PUBKEY"]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK:") || text.contains("\nOK:"), "{text}");
    let search =
        Command::new(penghubung_binary()).args(["audit", "search", &env["PENGHUBUNG_AUDIT_DIR"]]).output().unwrap();
    let records: Vec<serde_json::Value> =
        String::from_utf8_lossy(&search.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= 6, "one record per call: {records:?}");
    assert!(records.iter().any(|r| r["code"] == "policy.clearance" && r["decision"] == "deny"), "{records:?}");
    assert!(records.iter().any(|r| r["code"] == "route.not_found"), "{records:?}");
    let redacted = records.iter().find(|r| r["withheld"].as_str().is_some_and(|w| w.contains("/nama_ibu_kandung")));
    assert!(redacted.is_some(), "the withheld fields are recorded: {records:?}");
    // Every exchange names its caller OPD and its provider OPD, or the marker `-` where there is none.
    for r in records.iter().filter(|r| r["kind"] == "exchange") {
        assert!(r["caller_opd"].is_string() && r["provider_opd"].is_string(), "{r}");
    }
    // Health is answered before identify: no client, no service. Discovery: the client, no service.
    let marked = |r: &serde_json::Value| (r["caller_opd"].clone(), r["provider_opd"].clone());
    let own = |identified: bool| {
        records.iter().find(|r| {
            r["kind"] == "exchange"
                && r["service"].is_null()
                && r["code"].is_null()
                && r["client"].is_null() != identified
        })
    };
    assert_eq!(own(false).map(marked), Some(("-".into(), "-".into())), "health: {records:?}");
    assert_eq!(own(true).map(marked), Some(("dinkes".into(), "-".into())), "discovery: {records:?}");
    let unknown = records.iter().find(|r| r["code"] == "route.not_found").unwrap();
    assert_eq!(marked(unknown), ("dinkes".into(), "-".into()), "an unknown route: no provider");
    let limited = records.iter().find(|r| r["code"] == "ratelimit.exceeded").unwrap();
    assert_eq!(limited["provider_opd"], limited["service"].as_str().unwrap().split('/').next().unwrap());

    // The monthly usage report of this month reports the calls, with the demo client's OPD among the callers.
    let month = penghubung::reports::Month::of(std::time::SystemTime::now(), penghubung::reports::UtcOffset::WIB);
    let config = workdir.join("penghubung.toml");
    let output = Command::new(penghubung_binary())
        .args(["report", "usage", "--config", config.to_str().unwrap(), "--month", &month.to_string()])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verification"]["verified"], true, "{report}");
    let exchanges = records.iter().filter(|r| r["kind"] == "exchange").count() as u64;
    assert_eq!(report["total"]["requests"], exchanges, "every exchange of the demo is counted");
    let callers = report["callers"].as_array().unwrap();
    let dinkes = callers.iter().find(|c| c["opd"] == "dinkes").unwrap_or_else(|| panic!("{callers:?}"));
    assert_eq!(dinkes["name"].as_str().map(|n| !n.is_empty()), Some(true), "{dinkes}");
    assert!(dinkes["rate_limited"].as_u64().unwrap() >= 1, "{dinkes}");
    assert_eq!(dinkes["denials_by_code"]["policy.clearance"], 1, "{dinkes}");
    assert!(dinkes["top_callers"].as_array().unwrap().iter().any(|c| c["name"] == "dinkes/simpus"), "{dinkes}");
    assert!(callers.iter().any(|c| c["opd"] == "-"), "health is under the marker: {callers:?}");
    // The same as a page for a head of office.
    let page = workdir.join("usage.html");
    let output = Command::new(penghubung_binary())
        .args(["report", "usage", "--config", config.to_str().unwrap(), "--format", "html", "--out"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("dinkes") && html.contains("Jejak audit terverifikasi"));
}

/// What `demo.env` promises for the management plane: the admin URL, the three operators' certificates and
/// keys, and a service in `testing` without approvals that the operators can take live through the CLI.
fn demo_management_plane_works_from_demo_env(env: &std::collections::HashMap<String, String>, workdir: &Path) {
    assert!(env["PENGHUBUNG_ADMIN_URL"].starts_with("https://127.0.0.1:"), "{env:?}");
    let home = workdir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let as_operator = |role: &str, args: &[&str]| {
        let output = Command::new(penghubung_binary())
            .args(args)
            .env("HOME", &home)
            .env_remove("PENGHUBUNG_PROFILE")
            .env("PENGHUBUNG_ADMIN_URL", &env["PENGHUBUNG_ADMIN_URL"])
            .env("PENGHUBUNG_CACERT", &env["PENGHUBUNG_CACERT"])
            .env("PENGHUBUNG_OPERATOR_CERT", &env[&format!("PENGHUBUNG_OPERATOR_{role}_CERT")])
            .env("PENGHUBUNG_OPERATOR_KEY", &env[&format!("PENGHUBUNG_OPERATOR_{role}_KEY")])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    };
    let roles = [
        ("ADMIN", "sari-admin", "admin"),
        ("OPERASI", "rudi-aptika", "operasi"),
        ("KEAMANAN", "dewi-persandian", "keamanan"),
    ];
    for (role, id, role_name) in roles {
        let key = std::fs::read_to_string(&env[&format!("PENGHUBUNG_OPERATOR_{role}_KEY")]).unwrap();
        assert!(key.contains("PRIVATE KEY"), "{role}");
        let (code, text) = as_operator(role, &["operator", "whoami"]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains(&format!("\"{id}\"")) && text.contains(&format!("\"{role_name}\"")), "{text}");
    }
    let testing = &env["PENGHUBUNG_TESTING_SERVICE"];
    let (code, text) = as_operator("OPERASI", &["service", "list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("{testing}  testing")), "{testing} waits in testing: {text}");
    let (code, text) = as_operator("OPERASI", &["service", "show", "--service", testing]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("approvals"), "no approval yet: {text}");
    // A newcomer takes it live: the operations approval, then the security one by the other operator.
    let (code, text) =
        as_operator("OPERASI", &["service", "approve", "--service", testing, "--operations", "--reason", "uji fungsi"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = as_operator(
        "KEAMANAN",
        &["service", "approve", "--service", testing, "--security", "--reason", "uji keamanan"],
    );
    assert_eq!(code, Some(0), "{text}");
    let (_, text) = as_operator("ADMIN", &["service", "list"]);
    assert!(text.contains(&format!("{testing}  active")), "{text}");
}

/// The demo's service taken live through the CLI answers its granted client.
/// What `demo.env` promises for the web console: the dashboard for an operator certificate (200 text/html), and
/// a sign-in with the console user, password and a code of the TOTP secret.
async fn demo_console_signs_in_from_demo_env(env: &std::collections::HashMap<String, String>) {
    let console = &env["PENGHUBUNG_CONSOLE_URL"];
    assert_eq!(console, &format!("{}/", env["PENGHUBUNG_ADMIN_URL"]));
    let ca = std::fs::read_to_string(&env["PENGHUBUNG_CACERT"]).unwrap();
    let operator = penghubung::ca::Issued {
        cert_pem: std::fs::read_to_string(&env["PENGHUBUNG_OPERATOR_KEAMANAN_CERT"]).unwrap(),
        key_pem: std::fs::read_to_string(&env["PENGHUBUNG_OPERATOR_KEAMANAN_KEY"]).unwrap(),
        serial_hex: String::new(),
        spiffe: None,
    };
    let with_certificate = https_client(client_config(&ca, Some(&operator)));
    let dashboard = send(&with_certificate, http::Request::get(console.as_str()).body(empty()).unwrap()).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.text());
    assert!(dashboard.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(dashboard.text().contains("dewi-persandian"));

    let browser = https_client(client_config(&ca, None));
    let form = send(&browser, http::Request::get(format!("{console}login")).body(empty()).unwrap()).await;
    let cookie = form.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = form.text();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let code = penghubung_tests::operators::totp_now(&env["PENGHUBUNG_CONSOLE_TOTP_SECRET"]);
    let body = format!(
        "csrf={csrf}&username={}&password={}&totp={code}",
        env["PENGHUBUNG_CONSOLE_USER"], env["PENGHUBUNG_CONSOLE_PASSWORD"]
    );
    let login = http::Request::post(format!("{console}login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(penghubung_tests::full(body))
        .unwrap();
    let signed_in = send(&browser, login).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let session = signed_in.headers.get_all("set-cookie").iter().find_map(|v| {
        v.to_str()
            .ok()
            .filter(|v| v.starts_with("penghubung_session="))
            .map(|v| v.split(';').next().unwrap().to_string())
    });
    let home =
        http::Request::get(console.as_str()).header("cookie", session.expect("a session")).body(empty()).unwrap();
    let home = send(&browser, home).await;
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.text().contains(&env["PENGHUBUNG_CONSOLE_USER"]));
}

async fn demo_testing_sample_answers_once_live(env: &std::collections::HashMap<String, String>, url: &str) {
    let read = |key: &str| std::fs::read_to_string(&env[key]).unwrap_or_else(|e| panic!("{key}: {e}"));
    let identity = penghubung::ca::Issued {
        cert_pem: read("PENGHUBUNG_TESTING_CERT"),
        key_pem: read("PENGHUBUNG_TESTING_KEY"),
        serial_hex: String::new(),
        spiffe: None,
    };
    let client = https_client(client_config(&read("PENGHUBUNG_CACERT"), Some(&identity)));
    let request = http::Request::get(format!("{url}{}", env["PENGHUBUNG_TESTING_PATH"]))
        .header("x-penghubung-purpose", &env["PENGHUBUNG_TESTING_PURPOSE"])
        .body(empty())
        .unwrap();
    let r = send(&client, request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["terdaftar"], true, "{}", r.text());
}

#[test]
fn ca_commands_create_a_ca_and_a_server_certificate_where_the_config_says() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(penghubung_binary()).args(args).current_dir(dir.path()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    };
    let (code, text) = run(&["ca", "init", "--trust-domain", "contoh.go.id"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["ca", "init"]);
    assert_eq!(code, Some(1), "a second init must not overwrite the CA: {text}");
    let (code, text) = run(&["ca", "issue-server", "--name", "localhost", "--name", "127.0.0.1"]);
    assert_eq!(code, Some(0), "{text}");
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join(p)).unwrap().permissions()) & 0o777
    };
    assert_eq!(mode("pki/ca.key"), 0o600);
    assert_eq!(mode("pki/server.key"), 0o600);
    // With --config the CA goes where tls.client_ca_files says, the server certificate where [tls] says.
    std::fs::write(
        dir.path().join("site.toml"),
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[tls]\ncert_file = \"tls/gw.crt\"\nkey_file = \"tls/gw.key\"\nclient_ca_files = [\"ca-dinas/ca.crt\"]\n",
    )
    .unwrap();
    let (code, text) = run(&["ca", "init", "--config", "site.toml"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(dir.path().join("ca-dinas/ca.crt").is_file() && dir.path().join("ca-dinas/ca.key").is_file(), "{text}");
    let (code, text) = run(&["ca", "issue-server", "--config", "site.toml", "--name", "localhost"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(dir.path().join("tls/gw.crt").is_file() && mode("tls/gw.key") == 0o600, "{text}");
}

#[test]
fn check_warns_about_plaintext_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(dir.path(), &[docs::opd("dinkes")], "");
    let output = Command::new(penghubung_binary()).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("warning") && text.contains("plaintext"), "{text}");
    // A TLS listener without [tls] is an error.
    let text = std::fs::read_to_string(&config).unwrap().replace("plaintext = true\n", "");
    std::fs::write(&config, text).unwrap();
    let output = Command::new(penghubung_binary()).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("[tls]"), "{text}");
}

/// Whether a `redis-server` serving `port` still runs (its process title names its address).
fn redis_server_runs(port: &str) -> bool {
    let Ok(processes) = std::fs::read_dir("/proc") else { return false };
    processes.flatten().any(|p| {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let words: Vec<&str> = cmdline.split(['\0', ' ']).filter(|w| !w.is_empty()).collect();
        let serves = words.contains(&format!("127.0.0.1:{port}").as_str())
            || words.windows(2).any(|pair| pair[0] == "--port" && pair[1] == port);
        words.first().is_some_and(|w| w.ends_with("redis-server")) && serves
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_cluster_starts_redis_and_three_replicas_that_follow_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().join("demo");
    let mut child = Command::new(penghubung_binary())
        .args(["demo", "--cluster", "3", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workdir"])
        .arg(&workdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait_for_line(&mut stdout, "ready: "));
        std::io::copy(&mut stdout, &mut std::io::sink()).ok();
    });
    let ready = rx.await.unwrap();
    let env: std::collections::HashMap<String, String> = std::fs::read_to_string(workdir.join("demo.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let urls: Vec<&str> = env["PENGHUBUNG_URLS"].split(',').collect();
    let admin_urls: Vec<&str> = env["PENGHUBUNG_ADMIN_URLS"].split(',').collect();
    assert_eq!(urls.len(), 3, "{env:?}");
    assert_eq!(admin_urls.len(), 3, "{env:?}");
    assert_eq!(ready.trim_start_matches("ready: "), urls[0]);
    assert_eq!(env["PENGHUBUNG_URL"], urls[0], "the single demo's variables name the first replica");
    assert_eq!(env["PENGHUBUNG_ADMIN_URL"], admin_urls[0]);
    let unique: std::collections::HashSet<&&str> = urls.iter().chain(admin_urls.iter()).collect();
    assert_eq!(unique.len(), 6, "each replica has its own data and admin ports: {env:?}");
    let redis_port = env["PENGHUBUNG_REDIS_URL"].rsplit(':').next().unwrap().to_string();
    assert!(redis_server_runs(&redis_port), "the demo's redis-server runs on {redis_port}");

    let read = |key: &str| std::fs::read_to_string(&env[key]).unwrap_or_else(|e| panic!("{key}: {e}"));
    let identity = penghubung::ca::Issued {
        cert_pem: read("PENGHUBUNG_CERT"),
        key_pem: read("PENGHUBUNG_KEY"),
        serial_hex: String::new(),
        spiffe: None,
    };
    let client = https_client(client_config(&read("PENGHUBUNG_CACERT"), Some(&identity)));
    let sample = &env["PENGHUBUNG_SAMPLE_REKAM_MEDIS"];
    let call = |url: &str| {
        let request = http::Request::get(format!("{url}{sample}")).body(empty()).unwrap();
        send(&client, request)
    };
    for url in &urls {
        let r = call(url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        assert_eq!(r.json()["id"], "RM-000123", "{url}");
    }

    // The security operator revokes SIMPUS's grant to the medical records through the second replica.
    let operator = penghubung::ca::Issued {
        cert_pem: read("PENGHUBUNG_OPERATOR_KEAMANAN_CERT"),
        key_pem: read("PENGHUBUNG_OPERATOR_KEAMANAN_KEY"),
        serial_hex: String::new(),
        spiffe: None,
    };
    let admin = https_client(client_config(&read("PENGHUBUNG_CACERT"), Some(&operator)));
    let revoke =
        http::Request::delete(format!("{}/api/v1/grants/simpus-rekam-medis?reason=uji%20klaster", admin_urls[1]))
            .body(empty())
            .unwrap();
    let answer = send(&admin, revoke).await;
    assert!(answer.status.is_success(), "revoking through replica 2: {} {}", answer.status, answer.text());
    let revoked = std::time::Instant::now();
    for url in &urls {
        loop {
            let r = call(url).await;
            if r.status == 403 {
                assert_eq!(r.code(), "policy.no_grant", "{url}: {}", r.text());
                break;
            }
            assert_eq!(r.status, 200, "{url}: {}", r.text());
            assert!(
                revoked.elapsed() < std::time::Duration::from_secs(1),
                "{url} still serves the revoked grant after {:?}",
                revoked.elapsed()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // Every replica shipped its own audit chain to the demo's Redis, verified with the one public key.
    let verify_started = std::time::Instant::now();
    loop {
        let verify = Command::new(penghubung_binary())
            .args([
                "audit",
                "verify",
                "--redis",
                &env["PENGHUBUNG_REDIS_URL"],
                "--key",
                &env["PENGHUBUNG_AUDIT_PUBKEY"],
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&verify.stdout).into_owned();
        let all = ["demo-1", "demo-2", "demo-3"].iter().all(|id| text.contains(&format!("replica {id} ")));
        if verify.status.code() == Some(0) && all {
            break;
        }
        assert!(verify_started.elapsed() < std::time::Duration::from_secs(10), "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // SIGTERM stops every replica and the redis-server the demo started.
    drop((client, admin));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM drains and exits 0");
    assert!(!redis_server_runs(&redis_port), "the demo's redis-server is gone");
    assert!(std::net::TcpStream::connect(("127.0.0.1", redis_port.parse::<u16>().unwrap())).is_err());
    for url in &urls {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "{url} is closed");
    }
}

#[test]
fn demo_cluster_without_redis_server_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(penghubung_binary())
        .args(["demo", "--cluster", "3", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workdir"])
        .arg(dir.path().join("demo"))
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("redis-server") && text.contains("apt-get install redis-server"), "{text}");
    assert!(!dir.path().join("demo").exists(), "nothing is prepared without Redis");
}
