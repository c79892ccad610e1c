//! A real Prometheus server per test (Debian's `prometheus` package, which `scripts/test.sh` installs), on a
//! free loopback port with its own data directory, scraping one target every second; killed on drop. Its HTTP
//! API answers instant queries ([`Prometheus::query`], [`Prometheus::wait_for`]). Also `promtool`, for the
//! example alert rules.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `prometheus` child process.
pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second, and waits until it is ready.
    pub async fn scraping(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: penghubung\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = crate::free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus runs (apt-get install prometheus; scripts/test.sh does it)");
        let prometheus = Prometheus { url: format!("http://127.0.0.1:{port}"), child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = tokio::time::timeout(Duration::from_secs(2), try_get(&format!("{}/-/ready", prometheus.url)))
                .await
                .ok()
                .flatten();
            if ready.is_some_and(|(status, _)| status == 200) {
                return prometheus;
            }
            assert!(Instant::now() < deadline, "prometheus did not become ready:\n{}", prometheus.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Prometheus's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the result vector as `(labels, value)` rows.
    pub async fn query(&self, expression: &str) -> Vec<(serde_json::Value, f64)> {
        let encoded: String = expression
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) =
            try_get(&format!("{}/api/v1/query?query={encoded}", self.url)).await.expect("the query API answers");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        assert_eq!(status, 200, "{expression}: {body}");
        answer["data"]["result"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        let value = row["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                        (row["metric"].clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to 30 s) until `expression`'s single value is `expected`; returns it.
    pub async fn wait_for(&self, expression: &str, expected: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.query(expression).await;
            if let [(_, value)] = rows.as_slice() {
                if *value == expected {
                    return *value;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{expression} did not reach {expected}: {rows:?}\nprometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url` over plain HTTP/1.1: the status and the body, or `None` when nothing answers.
pub async fn try_get(url: &str) -> Option<(u16, String)> {
    let request = http::Request::get(url).body(crate::empty()).unwrap();
    let response = crate::http1_client().request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `promtool check rules FILE`: the exit status's success and what it printed.
pub fn promtool_check_rules(file: &Path) -> (bool, String) {
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool runs (it comes with Debian's prometheus package)");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}
