//! The deployment examples in `deploy/`, checked with the real tools: the systemd unit passes
//! `systemd-analyze verify`, and haproxy with `deploy/haproxy.cfg` (addresses replaced) in front of two gateway
//! processes passes TLS through in TCP mode, so that each replica sees the caller's client certificate and
//! authorizes the request by its identity; health checks go to each replica's ops listener, and a replica
//! killed is routed around.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Request;
use penghubung_tests::mtls::{client_config, https_client, write_mtls_setup, Pki, TRUST_DOMAIN};
use penghubung_tests::{docs, empty, send, GatewayProcess, Upstream};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of `tool`, or a failure that says how to install it.
fn require(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(tool)).find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed: this test needs it (Debian: apt-get install {package}; scripts/test.sh does)"
        )
    })
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = require("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(repository().join("deploy/penghubung.service")).unwrap();
    // The binary is not installed here: point ExecStart at the one just built (verify checks it is executable).
    let binary = penghubung_tests::penghubung_binary();
    assert!(unit.contains("ExecStart=/usr/local/bin/penghubung serve --config /etc/penghubung/penghubung.toml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("penghubung.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/penghubung", binary.to_str().unwrap())).unwrap();
    let output = Command::new(analyze).args(["verify", "--man=no"]).arg(&path).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "systemd-analyze verify failed:\n{said}");
    assert!(!said.contains("penghubung.service"), "systemd-analyze verify has findings:\n{said}");
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "User=penghubung"] {
        assert!(unit.contains(hardening), "{hardening}");
    }
}

/// haproxy in the foreground with `config`.
struct Haproxy {
    child: Child,
    log: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deploy/haproxy.cfg` with its frontend on `port` and one `server` per `(data, ops)` address pair; the
/// process settings a test cannot use (chroot, user, daemon, syslog) left out and `maxconn` within the test's file
/// limit.
fn haproxy_config(port: u16, replicas: &[(std::net::SocketAddr, std::net::SocketAddr)]) -> String {
    let example = std::fs::read_to_string(repository().join("deploy/haproxy.cfg")).unwrap();
    let mut out = String::new();
    let mut servers = 0;
    for line in example.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["chroot", ..] | ["user", ..] | ["group", ..] | ["daemon"] | ["log", "/dev/log", ..] => continue,
            ["bind", ":8443"] => out.push_str(&format!("    bind 127.0.0.1:{port}\n")),
            // Within the test process's own file limit.
            ["maxconn", _] => out.push_str("    maxconn 1000\n"),
            ["server", name, _, "check", "port", _] => {
                servers += 1;
                if servers == 1 {
                    for (n, (data, ops)) in replicas.iter().enumerate() {
                        out.push_str(&format!(
                            "    server {}{} {data} check addr {} port {}\n",
                            name.trim_end_matches(char::is_numeric),
                            n + 1,
                            ops.ip(),
                            ops.port()
                        ));
                    }
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert_eq!(servers, 2, "the example names two replicas:\n{example}");
    out
}

fn start_haproxy(config: &str, dir: &Path) -> Haproxy {
    let haproxy = require("haproxy", "haproxy");
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let check = Command::new(&haproxy).args(["-c", "-f"]).arg(&path).output().unwrap();
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
    let log = dir.join("haproxy.log");
    let child = Command::new(&haproxy)
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let haproxy = Haproxy { child, log };
    let port = config.lines().find_map(|l| l.trim().strip_prefix("bind 127.0.0.1:")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(
            Instant::now() < deadline,
            "haproxy does not listen:\n{}",
            std::fs::read_to_string(&haproxy.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    haproxy
}

/// A gateway process sharing the CA `pki`, with its ops listener on `ops`.
fn replica(pki: &Pki, dir: &Path, documents: &[(String, String)], ops: u16) -> GatewayProcess {
    let config = write_mtls_setup(dir, documents, pki, &format!("[ops]\nlisten = \"127.0.0.1:{ops}\"\n"));
    GatewayProcess::start(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_in_tcp_mode_passes_mtls_through_to_every_replica() {
    let upstream = Upstream::text("dari hulu").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let spiffe = format!("spiffe://{TRUST_DOMAIN}/opd/dinkes/app/simpus");
    let documents = [
        docs::opd("dinkes"),
        docs::service("dinkes", "layanan", &[upstream.url()], "", ""),
        docs::client("dinkes", "simpus", &spiffe, true),
        docs::grant("simpus-layanan", "dinkes/simpus", "dinkes/layanan/v1", &["*"]),
        docs::unlimited_tier(),
    ];
    let (one, two) = (dir.path().join("gw1"), dir.path().join("gw2"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let (ops1, ops2) = (penghubung_tests::free_port(), penghubung_tests::free_port());
    let gw1 = replica(&pki, &one, &documents, ops1);
    let mut gw2 = replica(&pki, &two, &documents, ops2);
    let ops = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let front = penghubung_tests::free_port();
    let haproxy = start_haproxy(&haproxy_config(front, &[(gw1.addr, ops(ops1)), (gw2.addr, ops(ops2))]), dir.path());
    let url = format!("https://127.0.0.1:{front}/dinkes/layanan/v1/data");
    let simpus = pki.client("dinkes", "simpus");
    let stranger = pki.client("dinkes", "lain");

    // One connection per request (a new client each time), until both replicas have served some.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let served = |gateway: &GatewayProcess| {
        gateway
            .log()
            .lines()
            .filter(|l| l.contains("request_id=\"lewat-haproxy-") && l.contains("dinkes/simpus"))
            .count()
    };
    while served(&gw1) == 0 || served(&gw2) == 0 {
        assert!(
            Instant::now() < deadline,
            "both replicas should serve through haproxy; haproxy log:\n{}\nreplica 1:\n{}\nreplica 2:\n{}",
            std::fs::read_to_string(&haproxy.log).unwrap_or_default(),
            gw1.log(),
            gw2.log()
        );
        n += 1;
        let client = https_client(client_config(&pki.ca_pem(), Some(&simpus)));
        let request = Request::get(&url).header("x-request-id", format!("lewat-haproxy-{n}")).body(empty()).unwrap();
        let answer = send(&client, request).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.text(), "dari hulu");
    }

    // A certificate of a client with no grant: the replica saw who it is and denied it.
    let client = https_client(client_config(&pki.ca_pem(), Some(&stranger)));
    let answer = send(&client, Request::get(&url).body(empty()).unwrap()).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    // No certificate: the replica refuses the handshake (haproxy does not terminate TLS).
    let client = https_client(client_config(&pki.ca_pem(), None));
    let refused = client.request(Request::get(&url).body(empty()).unwrap()).await;
    assert!(refused.is_err() || refused.unwrap().status() != 200);

    // A replica killed: every new connection goes to the other one.
    let _ = gw2.child.kill();
    let _ = gw2.child.wait();
    let before = served(&gw1);
    for i in 0..10 {
        let client = https_client(client_config(&pki.ca_pem(), Some(&simpus)));
        let request =
            Request::get(&url).header("x-request-id", format!("lewat-haproxy-mati-{i}")).body(empty()).unwrap();
        let answer = send(&client, request).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(served(&gw1), before + 10, "{}", gw1.log());
}
