//! Load generators of the load harness, both closed-loop over HTTP/1.1 keep-alive: `connections` connections,
//! each sending its next request as soon as the previous response is fully read: a `GET`, or with a [`Post`]
//! ([`run_request`]) a `POST` of the same body with its `Content-Type` every time.
//!
//! * [`run_wrk`]: runs `wrk -t<threads> -c<connections> -d<secs>s --latency <url>` (preferred when `wrk` is on
//!   `PATH`: it is cheap, so more of the 2 cores is left to the proxy under test) and parses requests/s, p50,
//!   p99 and errors from its report. A `POST` is described by a Lua script in a temporary file
//!   (`wrk -s`: `wrk.method`, `wrk.body`, `wrk.headers["Content-Type"]`).
//! * [`run_hyper`]: the same workload written with hyper's client, on its own multi-thread Tokio runtime:
//!   one task per connection records every latency; the vectors are merged and sorted for the percentiles.
//!
//! Used by `cargo run -p penghubung-benches --release --bin load`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What one measurement found.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Completed requests.
    pub requests: u64,
    /// Non-2xx answers, connection and read errors, timeouts.
    pub errors: u64,
    /// CPU time the proxy (all its threads and worker processes) used per completed request during the run, in
    /// µs: (user space, kernel); set by the harness for the proxies it started. Steadier than the rate on a shared
    /// or noisy machine: it does not move when the load generator or the upstream are scheduled differently.
    pub proxy_cpu_us: Option<(f64, f64)>,
}

/// The generator to use.
#[derive(Clone, Debug)]
pub enum Generator {
    Wrk(std::path::PathBuf),
    Hyper,
}

impl Generator {
    pub fn describe(&self) -> String {
        match self {
            Generator::Wrk(path) => format!("wrk ({})", path.display()),
            Generator::Hyper => "built-in hyper client".to_string(),
        }
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: usize,
    /// Threads of the generator itself.
    pub threads: usize,
    pub duration: Duration,
}

/// A body sent with every request, as a `POST`.
#[derive(Clone, Debug)]
pub struct Post {
    pub body: Bytes,
    /// The `Content-Type` header.
    pub content_type: String,
    /// More header fields sent with every request (`load --mode full`: the declared purpose), as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl Post {
    /// The wrk script that sends this body (a Lua long string; the body must not close it).
    pub fn wrk_script(&self) -> Result<String, String> {
        let body = std::str::from_utf8(&self.body).map_err(|_| "wrk: the POST body must be UTF-8 text".to_string())?;
        let quotable = |text: &str| !text.contains('"') && !text.contains('\\') && !text.contains('\n');
        let fields = self.headers.iter().all(|(name, value)| quotable(name) && quotable(value));
        if body.contains("]==]") || !quotable(&self.content_type) || !fields {
            return Err("wrk: the POST body, content type or a header cannot be quoted in the Lua script".into());
        }
        let mut script = format!("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"{}\"\n", self.content_type);
        for (name, value) in &self.headers {
            let _ = writeln!(script, "wrk.headers[\"{name}\"] = \"{value}\"");
        }
        let _ = writeln!(script, "wrk.body = [==[{body}]==]");
        Ok(script)
    }
}

/// Runs `load` against `http://{addr}{path}` with `generator` (`GET`s).
pub fn run(generator: &Generator, addr: SocketAddr, path: &str, load: Load) -> Result<Stats, String> {
    run_request(generator, addr, path, None, load)
}

/// Like [`run`]; with `post`, every request is a `POST` of that body.
pub fn run_request(
    generator: &Generator,
    addr: SocketAddr,
    path: &str,
    post: Option<&Post>,
    load: Load,
) -> Result<Stats, String> {
    match generator {
        Generator::Wrk(wrk) => run_wrk(wrk, addr, path, post, load),
        Generator::Hyper => run_hyper(addr, path, post, load),
    }
}

/// Runs wrk and parses its `--latency` report.
pub fn run_wrk(wrk: &Path, addr: SocketAddr, path: &str, post: Option<&Post>, load: Load) -> Result<Stats, String> {
    let seconds = load.duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut command = Command::new(wrk);
    // Held until wrk has finished: the script file is removed when dropped.
    let script = match post {
        Some(post) => {
            let mut file = tempfile::Builder::new()
                .prefix("penghubung-load-")
                .suffix(".lua")
                .tempfile()
                .map_err(|e| format!("cannot create the wrk script: {e}"))?;
            std::io::Write::write_all(&mut file, post.wrk_script()?.as_bytes())
                .map_err(|e| format!("cannot write the wrk script: {e}"))?;
            command.arg("-s").arg(file.path());
            Some(file)
        }
        None => None,
    };
    let output = command
        .arg(format!("-t{}", load.threads.max(1)))
        .arg(format!("-c{}", load.connections.max(load.threads.max(1))))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("--latency")
        .arg(format!("http://{addr}{path}"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wrk.display()))?;
    drop(script);
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed ({}): {text}{}", output.status, String::from_utf8_lossy(&output.stderr)));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

/// Reads requests/s, p50, p99, the request count and the errors from wrk's `--latency` output.
pub fn parse_wrk(text: &str) -> Option<Stats> {
    let mut stats = Stats::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => rps = value.parse().ok(),
            ["50%", value] => p50 = parse_wrk_duration(value),
            ["99%", value] => p99 = parse_wrk_duration(value),
            [count, "requests", "in", ..] => stats.requests = count.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", count] => stats.errors += count.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                stats.errors += rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>();
            }
            _ => {}
        }
    }
    stats.requests_per_sec = rps?;
    stats.p50 = p50?;
    stats.p99 = p99?;
    Some(stats)
}

/// `812.00us`, `1.23ms`, `2.01s`, `1.50m`.
fn parse_wrk_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let nanos_per_unit = match unit {
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    Some(Duration::from_nanos((value * nanos_per_unit).round() as u64))
}

/// The hyper closed-loop generator.
pub fn run_hyper(addr: SocketAddr, path: &str, post: Option<&Post>, load: Load) -> Result<Stats, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(load.threads.max(1))
        .thread_name("bench-load")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load generator's runtime: {e}"))?;
    let path: std::sync::Arc<str> = path.into();
    let post = post.cloned().map(std::sync::Arc::new);
    runtime.block_on(async move {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + load.duration;
        let tasks: Vec<_> = (0..load.connections.max(1))
            .map(|_| tokio::spawn(connection_loop(addr, std::sync::Arc::clone(&path), post.clone(), deadline)))
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (mut found, failed) = task.await.map_err(|e| format!("a load task failed: {e}"))?;
            latencies.append(&mut found);
            errors += failed;
        }
        Ok(summarize(latencies, errors, started.elapsed()))
    })
}

/// Stats from the latencies (ns) of every successful request of a run, its errors and its wall time: the rate
/// is successes per second, the percentiles are nearest-rank.
pub fn summarize(mut latencies: Vec<u64>, errors: u64, elapsed: Duration) -> Stats {
    latencies.sort_unstable();
    let at = |q: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_nanos(latencies[index])
    };
    Stats {
        requests_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        requests: latencies.len() as u64,
        errors,
        proxy_cpu_us: None,
    }
}

/// One connection's loop until `deadline`: the latencies (ns) of its successful requests and its errors.
/// Reconnects after an error, with a short pause so a dead target does not spin.
async fn connection_loop(
    addr: SocketAddr,
    path: std::sync::Arc<str>,
    post: Option<std::sync::Arc<Post>>,
    deadline: tokio::time::Instant,
) -> (Vec<u64>, u64) {
    let mut latencies = Vec::with_capacity(4096);
    let mut errors = 0u64;
    let host = addr.to_string();
    while tokio::time::Instant::now() < deadline {
        let mut sender = match connect(addr).await {
            Ok(sender) => sender,
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while tokio::time::Instant::now() < deadline {
            let request = match &post {
                None => Request::get(&*path).header(HOST, &host).body(Full::new(Bytes::new())),
                Some(post) => {
                    let mut request = Request::post(&*path)
                        .header(HOST, &host)
                        .header(http::header::CONTENT_TYPE, &post.content_type);
                    for (name, value) in &post.headers {
                        request = request.header(name, value);
                    }
                    request.body(Full::new(post.body.clone()))
                }
            }
            .expect("a valid request");
            let sent = Instant::now();
            let exchange = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<StatusCode, hyper::Error>(status)
            };
            match tokio::time::timeout_at(deadline + Duration::from_secs(5), exchange).await {
                Ok(Ok(status)) if status.is_success() => latencies.push(sent.elapsed().as_nanos() as u64),
                Ok(Ok(_)) => errors += 1,
                _ => {
                    errors += 1;
                    break; // reconnect
                }
            }
        }
    }
    (latencies, errors)
}

async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:1/bench/echo/v1/anything
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  312.04us   9.87ms   88.12%
    Req/Sec    42.10k     1.20k   44.00k    80.00%
  Latency Distribution
     50%    1.48ms
     75%    1.60ms
     90%    1.80ms
     99%  812.00us
  209493 requests in 5.00s, 236.29MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  41898.41
Transfer/sec:     47.26MB
";

    #[test]
    fn wrk_scripts_post_the_body() {
        let post = Post {
            body: Bytes::from_static(br#"{"a": [1, "]"]}"#),
            content_type: "application/json".into(),
            headers: Vec::new(),
        };
        let script = post.wrk_script().unwrap();
        assert_eq!(
            script,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{\"a\": [1, \"]\"]}]==]\n"
        );
        let closing =
            Post { body: Bytes::from_static(b"x]==]y"), content_type: "text/plain".into(), headers: Vec::new() };
        assert!(closing.wrk_script().is_err());
        let purpose = Post { headers: vec![("X-Penghubung-Purpose".into(), "bench".into())], ..post };
        assert!(purpose.wrk_script().unwrap().contains("wrk.headers[\"X-Penghubung-Purpose\"] = \"bench\"\n"));
    }

    #[test]
    fn wrk_reports_are_read() {
        let s = parse_wrk(REPORT).unwrap();
        assert!((s.requests_per_sec - 41898.41).abs() < 1e-6);
        assert_eq!(s.p50, Duration::from_micros(1480));
        assert_eq!(s.p99, Duration::from_micros(812));
        assert_eq!(s.requests, 209_493);
        assert_eq!(s.errors, 7);
    }
}
