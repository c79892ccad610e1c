//! A security team's first day through the CLI, against the real binary: `penghubung init` writes a production
//! setup, `penghubung serve` runs the gateway and the admin API, and every management command is an HTTPS
//! call of the admin API as an operator (certificate from `init` or `ca issue-operator`). The service created
//! that day goes live only with two approvals by two operators holding the two roles, and then answers
//! through the data plane.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use penghubung_tests::mtls::{client_config, https_client};
use penghubung_tests::{empty, penghubung_binary, send, GatewayProcess, Upstream};

/// A NIP for the test operators (18 digits).
const NIP: &str = "198001012006041001";

/// The setup `init` wrote and the running gateway.
struct Site {
    dir: PathBuf,
    home: PathBuf,
    gateway: GatewayProcess,
    admin_url: String,
}

/// Who runs a command: a profile file, or a certificate and key given through the environment.
enum As {
    Profile(PathBuf),
    Env { cert: PathBuf, key: PathBuf },
}

impl Site {
    /// `init` into a temporary folder, then `serve` it (both listeners on free ports).
    fn init_and_serve(root: &Path) -> Site {
        let dir = root.join("site");
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let (code, text) = run_in(
            root,
            &home,
            &[
                "init",
                "--dir",
                "site",
                "--admin-id",
                "sari-admin",
                "--admin-name",
                "Sari",
                "--admin-nip",
                NIP,
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--ops-listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("penghubung serve --config") && text.contains("operator.toml"), "how to use it: {text}");
        let gateway = GatewayProcess::start(&dir.join("penghubung.toml"));
        let admin = wait_for_admin(&gateway);
        Site { dir, home, gateway, admin_url: format!("https://{admin}") }
    }

    /// Runs `penghubung ARGS` as an operator, in the site's folder.
    fn run(&self, who: As, args: &[&str]) -> (i32, String) {
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        full.extend(["--admin-url".to_string(), self.admin_url.clone()]);
        let mut env: Vec<(&str, String)> = Vec::new();
        match who {
            As::Profile(profile) => full.extend(["--profile".to_string(), profile.display().to_string()]),
            As::Env { cert, key } => {
                env.push(("PENGHUBUNG_CACERT", self.dir.join("pki/ca.crt").display().to_string()));
                env.push(("PENGHUBUNG_OPERATOR_CERT", cert.display().to_string()));
                env.push(("PENGHUBUNG_OPERATOR_KEY", key.display().to_string()));
            }
        }
        let args: Vec<&str> = full.iter().map(String::as_str).collect();
        run_in(&self.dir, &self.home, &args, &env)
    }

    fn admin_profile(&self) -> PathBuf {
        self.dir.join("operators/sari-admin.profile.toml")
    }

    /// The first admin, through the profile `init` wrote.
    fn admin(&self) -> As {
        As::Profile(self.admin_profile())
    }

    /// An operator whose certificate `ca issue-operator` wrote, through the environment.
    fn operator(&self, id: &str) -> As {
        As::Env { cert: self.file(&format!("operators/{id}.crt")), key: self.file(&format!("operators/{id}.key")) }
    }

    fn file(&self, path: &str) -> PathBuf {
        self.dir.join(path)
    }
}

/// Runs the binary in `dir` with `HOME` set to `home` (no operator profile of the machine's user is read).
fn run_in(dir: &Path, home: &Path, args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let mut command = Command::new(penghubung_binary());
    command.args(args).current_dir(dir).env("HOME", home);
    for name in ["PENGHUBUNG_ADMIN_URL", "PENGHUBUNG_CACERT", "PENGHUBUNG_OPERATOR_CERT", "PENGHUBUNG_OPERATOR_KEY"] {
        command.env_remove(name);
    }
    command.env_remove("PENGHUBUNG_PROFILE");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// The admin listener's bound address, from the gateway's log.
pub fn wait_for_admin(gateway: &GatewayProcess) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = gateway.log();
        if let Some(address) = log
            .lines()
            .find(|l| l.contains("admin API started"))
            .and_then(|l| l.split("admin_address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.trim_matches('"').parse::<SocketAddr>().ok())
        {
            return address;
        }
        assert!(Instant::now() < deadline, "the admin API did not start:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_teams_first_day_takes_a_new_service_live_with_two_operators() {
    let root = tempfile::tempdir().unwrap();
    let site = Site::init_and_serve(root.path());

    // init seeded a production skeleton: the Dinas's OPD, the default tiers, the first operator, no samples.
    let (code, text) = site.run(site.admin(), &["opd", "list"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("diskominfo") && !text.contains("dinkes") && !text.contains("disdukcapil"), "{text}");
    let (code, text) = site.run(site.admin(), &["tier", "list"]);
    assert!(code == 0 && text.contains("bronze") && text.contains("unlimited"), "{text}");
    let (code, text) = site.run(site.admin(), &["operator", "whoami"]);
    assert!(code == 0 && text.contains("\"sari-admin\"") && text.contains("\"admin\""), "{text}");

    // The admin registers an OPD and two colleagues, one per approval, and issues their certificates (the keys
    // are generated on this machine; the API only sees a CSR).
    let step = |who: As, args: &[&str]| {
        let (code, text) = site.run(who, args);
        assert_eq!(code, 0, "penghubung {}: {text}", args.join(" "));
        text
    };
    step(site.admin(), &["opd", "create", "--id", "dinsos", "--name", "Dinas Sosial", "--reason", "OPD baru"]);
    for (id, role) in [("rudi-aptika", "operasi"), ("dewi-persandian", "keamanan")] {
        step(
            site.admin(),
            &["operator", "create", "--id", id, "--name", id, "--nip", NIP, "--opd", "diskominfo", "--role", role],
        );
        let text = step(site.admin(), &["ca", "issue-operator", "--operator", id, "--out-dir", "operators"]);
        assert!(text.contains(&format!("operators/{id}.crt")), "{text}");
        let key = std::fs::read_to_string(site.file(&format!("operators/{id}.key"))).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(site.file(&format!("operators/{id}.key"))).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{id}'s key");
    }
    let (code, text) = site.run(site.operator("rudi-aptika"), &["operator", "whoami"]);
    assert!(code == 0 && text.contains("\"rudi-aptika\"") && text.contains("\"operasi\""), "{text}");

    // The OPD's service, its client application with a certificate, and a grant.
    let backend = Upstream::text("{\"penerima\":true}").await;
    let upstream = backend.url();
    step(
        site.admin(),
        &[
            "service",
            "create",
            "--opd",
            "dinsos",
            "--name",
            "bansos",
            "--title",
            "Penerima bansos",
            "--classification",
            "terbatas",
            "--upstream",
            &upstream,
            "--reason",
            "layanan baru",
        ],
    );
    let dewi = || site.operator("dewi-persandian");
    let rudi = || site.operator("rudi-aptika");
    step(
        site.admin(),
        &["client", "create", "--opd", "dinsos", "--app", "sipadu", "--clearance", "terbatas", "--reason", "aplikasi"],
    );
    let text = step(dewi(), &["client", "issue-cert", "--client", "dinsos/sipadu", "--out-dir", "clients"]);
    assert!(text.contains("clients/dinsos.sipadu.crt"), "{text}");
    step(
        dewi(),
        &[
            "grant",
            "add",
            "--id",
            "sipadu-bansos",
            "--client",
            "dinsos/sipadu",
            "--service",
            "dinsos/bansos/v1",
            "--operation",
            "*",
            "--tier",
            "bronze",
            "--reason",
            "penyaluran",
        ],
    );

    // Submitted by the admin; the operations approval by rudi, who cannot give the security one.
    step(site.admin(), &["service", "submit", "--service", "dinsos/bansos/v1", "--reason", "siap diuji"]);
    let (code, text) = site
        .run(rudi(), &["service", "approve", "--service", "dinsos/bansos/v1", "--security", "--reason", "saya juga"]);
    assert_eq!(code, 1, "operasi cannot give the security approval: {text}");
    assert!(text.contains("403") && text.contains("admin.forbidden"), "{text}");
    step(
        rudi(),
        &["service", "approve", "--service", "dinsos/bansos/v1", "--operations", "--reason", "uji fungsi lulus"],
    );
    let (_, text) = site.run(site.admin(), &["service", "list"]);
    assert!(text.contains("dinsos/bansos/v1  testing"), "one approval is not enough: {text}");
    step(
        dewi(),
        &["service", "approve", "--service", "dinsos/bansos/v1", "--security", "--reason", "uji keamanan lulus"],
    );
    let (_, text) = site.run(site.admin(), &["service", "list"]);
    assert!(text.contains("dinsos/bansos/v1  active"), "{text}");

    // The application calls it through the data plane with the certificate issued through the API.
    let identity = penghubung::ca::Issued {
        cert_pem: std::fs::read_to_string(site.file("clients/dinsos.sipadu.crt")).unwrap(),
        key_pem: std::fs::read_to_string(site.file("clients/dinsos.sipadu.key")).unwrap(),
        serial_hex: String::new(),
        spiffe: None,
    };
    let ca = std::fs::read_to_string(site.file("pki/ca.crt")).unwrap();
    let client = https_client(client_config(&ca, Some(&identity)));
    let url = format!("https://127.0.0.1:{}/dinsos/bansos/v1/penerima/1", site.gateway.addr.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = send(&client, http::Request::get(&url).body(empty()).unwrap()).await;
        if r.status == 200 {
            assert_eq!(r.text(), "{\"penerima\":true}");
            break;
        }
        assert!(Instant::now() < deadline, "the service never answered: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(backend.hits() >= 1);

    // What the gateway would decide, asked through the API (the same decision function as the data plane).
    let (code, text) = site.run(
        rudi(),
        &[
            "policy",
            "explain",
            "--remote",
            "--client",
            "dinsos/sipadu",
            "--service",
            "dinsos/bansos/v1",
            "--operation",
            "GET /penerima/1",
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("decision: ALLOW") && text.contains("sipadu-bansos"), "{text}");

    // A tier of the Dinas's own, written and read back.
    step(
        site.admin(),
        &["tier", "put", "--id", "perak-plus", "--rate", "30", "--burst", "60", "--reason", "tier baru"],
    );
    let (code, text) = site.run(rudi(), &["tier", "show", "--id", "perak-plus"]);
    assert!(code == 0 && text.contains("\"rate\": 30") && text.contains("etag"), "{text}");

    // A laptop is lost: the keamanan operator revokes its certificate; the next request is refused.
    step(dewi(), &["client", "revoke", "--cert", "clients/dinsos.sipadu.crt", "--reason", "laptop hilang"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = https_client(client_config(&ca, Some(&identity)));
        match fresh.request(http::Request::get(&url).body(empty()).unwrap()).await {
            Ok(response) if response.status() == 200 => {}
            Ok(_) | Err(_) => break,
        }
        assert!(Instant::now() < deadline, "the revoked certificate still gets through");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The history names who did what; a withdrawal takes the service back to testing.
    let (code, text) = site.run(site.admin(), &["service", "history", "--service", "dinsos/bansos/v1"]);
    assert_eq!(code, 0, "{text}");
    for who in ["sari-admin", "rudi-aptika", "dewi-persandian"] {
        assert!(text.contains(who), "{who} in the history: {text}");
    }
    let (code, text) = site
        .run(rudi(), &["service", "withdraw", "--service", "dinsos/bansos/v1", "--operations", "--reason", "regresi"]);
    assert_eq!(code, 0, "{text}");
    let (_, text) = site.run(site.admin(), &["service", "list"]);
    assert!(text.contains("dinsos/bansos/v1  testing"), "a withdrawal reverts active to testing: {text}");
}

#[test]
fn ca_issue_client_for_an_unknown_opd_is_refused_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let site = Site::init_and_serve(root.path());
    let store_before = list_files(&site.file("policies"));
    let (code, text) = site
        .run(site.admin(), &["ca", "issue-client", "--opd", "dinas-hantu", "--app", "sipadu", "--out-dir", "clients"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("dinas-hantu"), "the message names the unknown OPD: {text}");
    assert!(text.contains("422") || text.contains("403") || text.contains("404"), "{text}");
    assert!(!site.file("clients").exists(), "no key or certificate written: {text}");
    assert_eq!(list_files(&site.file("policies")), store_before, "the store is unchanged");
    // The gateway keeps serving its documents: a later change still goes through.
    let (code, text) = site.run(site.admin(), &["opd", "list"]);
    assert!(code == 0 && text.contains("diskominfo"), "{text}");
}

#[test]
fn management_commands_name_what_is_missing_to_reach_the_admin_api() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (code, text) = run_in(root.path(), &home, &["service", "list"], &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--cacert") && text.contains("PENGHUBUNG_CACERT") && text.contains("profile"), "{text}");
    // Nothing answers on the address: the message names it.
    let ca = root.path().join("ca.pem");
    let (code, text) = run_in(
        root.path(),
        &home,
        &[
            "opd",
            "list",
            "--admin-url",
            "https://127.0.0.1:9",
            "--cacert",
            ca.to_str().unwrap(),
            "--operator-cert",
            "x",
            "--operator-key",
            "y",
        ],
        &[],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ca.pem"), "the unreadable CA file is named: {text}");
}

#[test]
fn help_texts_describe_the_operator_commands_without_by() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let help = |args: &[&str]| {
        let (code, text) = run_in(root.path(), &home, args, &[]);
        assert_eq!(code, 0, "{text}");
        text
    };
    let top = help(&["--help"]);
    for command in ["init", "opd", "service", "client", "grant", "tier", "operator", "store", "ca", "audit"] {
        assert!(top.contains(&format!("  {command} ")), "`{command}` listed: {top}");
    }
    assert!(top.contains("PENGHUBUNG_OPERATOR_CERT") && top.contains("operator.toml"), "{top}");
    let approve = help(&["service", "approve", "--help"]);
    assert!(!approve.contains("--by"), "{approve}");
    for flag in ["--operations", "--security", "--reason", "--admin-url", "--operator-cert", "--profile"] {
        assert!(approve.contains(flag), "{flag}: {approve}");
    }
    let service = help(&["service", "--help"]);
    for verb in [
        "create",
        "list",
        "show",
        "update",
        "submit",
        "approve",
        "withdraw",
        "suspend",
        "resume",
        "retire",
        "import-openapi",
        "history",
        "rollback",
    ] {
        assert!(service.contains(&format!("  {verb} ")), "service {verb}: {service}");
    }
    let init = help(&["init", "--help"]);
    assert!(init.contains("--opd") && init.contains("--admin-nip") && init.contains("--dir"), "{init}");
}

fn list_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn store_export_and_import_through_the_cli_refuse_a_tampered_backup() {
    let root = tempfile::tempdir().unwrap();
    let site = Site::init_and_serve(root.path());
    let (code, text) = site.run(site.admin(), &["store", "export", "--out", "backup.json"]);
    assert_eq!(code, 0, "{text}");
    let backup = std::fs::read_to_string(site.file("backup.json")).unwrap();
    assert!(backup.contains("opds/diskominfo.toml"), "every document is in the backup");
    assert!(!backup.contains("PRIVATE KEY"), "no key in a backup");
    let (code, text) = site.run(site.admin(), &["opd", "create", "--id", "dinsos", "--name", "Dinas Sosial"]);
    assert_eq!(code, 0, "{text}");
    // A tampered backup is refused and the live store is kept.
    std::fs::write(site.file("tampered.json"), backup.replace("Dinas Komunikasi", "Dinas Komunikasi Palsu")).unwrap();
    let (code, text) = site.run(site.admin(), &["store", "import", "tampered.json", "--reason", "pemulihan"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("signature does not verify"), "{text}");
    let (_, listed) = site.run(site.admin(), &["opd", "list"]);
    assert!(listed.contains("dinsos"), "the live store is kept: {listed}");
    // The real one replaces the live store (the OPD created after the export is gone).
    let (code, text) = site.run(site.admin(), &["store", "import", "backup.json", "--reason", "pemulihan"]);
    assert_eq!(code, 0, "{text}");
    let (_, listed) = site.run(site.admin(), &["opd", "list"]);
    assert!(listed.contains("diskominfo") && !listed.contains("dinsos"), "{listed}");
}
