//! Load harness: how much throughput and latency Penghubung costs compared with calling the upstream directly
//! and with nginx and haproxy doing the same job, all measured in ONE run against the same upstream.
//!
//! It starts an in-process upstream (fixed body, HTTP/1.1 keep-alive, its own thread), the `penghubung`
//! release binary as a child process (one route `/bench/echo/v1/anything` to that upstream), and nginx and
//! haproxy when installed; then, per target, a short warm-up and a closed-loop measurement with `wrk` (or the
//! built-in hyper client when `wrk` is missing), and prints req/s, p50, p99 and ratios. Every child process is
//! stopped when the harness ends, also on error.
//!
//! Run:
//!
//! ```text
//! cargo build --release -p penghubung
//! cargo run -p penghubung-benches --release --bin load -- [--duration 10s] [--connections 64] [--threads 1]
//!     [--body 1024] [--warmup 2s] [--rounds 1] [--load-threads 1] [--generator auto|wrk|hyper]
//!     [--skip-nginx] [--skip-haproxy] [--gateway PATH] [--mode plain|mtls|ratelimit|audit|contract|adapter|full|memory]
//!     [--handshake-connections N] [--request-body 1KiB] [--idle-connections 1000] [--traces off,1,100]
//! ```
//!
//! `--traces off,1,100` (with `--mode plain` or `--mode full`) adds, in the same run, a Penghubung target per
//! listed setting that exports traces (`[traces]`) with 1% or 100% of the requests sampled, to a local OTLP/HTTP
//! sink (a second harness upstream answering every export with 200), and prints each one's paired ratios to the
//! same Penghubung without traces.
//!
//! Peers: `apt-get install -y nginx haproxy wrk` (Debian). Each is optional; a missing one is reported and
//! skipped. In the plain mode nginx runs twice: stock (`nginx`), and `nginx+fields`, which also sends the
//! upstream what Penghubung sends (`X-Forwarded-*`, `Forwarded`, a request id, `traceparent`; see
//! `peers::GATEWAY_FIELDS`), so that the upstream does the same work behind both. Penghubung's paired ratios
//! against each are printed.
//!
//! `--mode upstream` only serves the harness's upstream (`--body` bytes per response) and prints
//! `upstream: http://ADDR` until stdin closes, for measuring a proxy against the very same backend elsewhere
//! (`UPSTREAM=harness benches/scripts/instructions-per-request.sh`).
//!
//! `--mode mtls` measures the same proxies with mTLS listeners instead (no direct run): certificates from the
//! gateway's built-in CA in a temporary directory (server certificate for `127.0.0.1`, client certificate
//! `spiffe://bench.local/opd/bench/app/loadgen` bound by a `Client` document in Penghubung's store, nginx with
//! `ssl_verify_client on`, haproxy with `verify required`, all checking the CA's CRL). Because wrk cannot
//! present a client certificate, the load comes from the built-in hyper + tokio-rustls generator
//! (`penghubung_benches::mtls`), in two workloads per target:
//!
//! * keep-alive: `--connections` mTLS connections, sequential HTTP/1.1 `GET`s on each: requests/s, p50, p99;
//! * full handshakes: `--handshake-connections` tasks, each opening a new TCP + TLS connection per request
//!   (resumption disabled, so every handshake is full and verifies the client certificate), one `GET` with
//!   `Connection: close`: handshakes/s and p50/p99 of connect + handshake + response.
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode mtls [--duration 5s] [--handshake-connections 64]
//! ```
//!
//! `--mode ratelimit` measures what rate limits cost: three Penghubung processes on the same upstream (plaintext,
//! policy off, so the service's `rate_limit` is the one limit a request meets), with limits switched off, with
//! the limit in process (governor), and with the limit shared through Redis (a `redis-server` the harness
//! starts on a free port; one `EVALSHA` round trip per request). The quota is too high to refuse anything, so
//! every request pays for its check and none is refused.
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode ratelimit [--duration 5s] [--rounds 3]
//! ```
//!
//! `--mode audit` measures what the audit trail costs: direct, then three Penghubung processes over plaintext
//! with the policy off, one without an audit trail, one recording every exchange `async`, one `sync` (each
//! response's end released only once its record is fsynced, group commit), interleaved per round, with the
//! ratios to the audit-off run and the number of records each audited gateway wrote.
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode audit [--duration 5s] [--rounds 3]
//! ```
//!
//! `--mode contract` measures what holding request bodies to their contract costs: `POST`s of a JSON body
//! (`--request-body`, default 1 KiB: a Dukcapil-like batch of resident records, `penghubung_benches::dukcapil`)
//! direct, then through two Penghubung processes over plaintext with the policy off whose bench service
//! declares the same operation `POST /anything`: one without a contract (the body is streamed through unread),
//! one with `request.schema` (the body is read whole, parsed and validated against the batch schema with the
//! reference formats before it is forwarded). Before measuring, the contract gateway must refuse an invalid
//! body with 400 `contract.request_invalid` and accept the valid one; interleaved rounds, ratios to the
//! no-contract run.
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode contract [--duration 5s] [--rounds 3]
//! ```
//!
//! `--mode adapter` measures what an outbound adapter costs: two Penghubung processes over plaintext with the
//! policy off, on the same upstream, whose bench service differs only in its `[adapter]`: `passthrough` (the
//! adapter phase runs and changes nothing) and `splp` (a bearer token from an in-process OAuth2 token endpoint,
//! `penghubung_benches::token`, consumer key and secret read from secret files, put on every request). The token
//! lives an hour, so after the first request the `splp` gateway runs on its cached token: the harness checks that
//! both answer 200 before measuring and that the token endpoint was asked exactly once in the whole run.
//! Interleaved rounds, `splp`'s ratio to `passthrough` (goal: at least 0.95x).
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode adapter [--duration 5s] [--rounds 3]
//! ```
//!
//! `--mode full` measures the path a deployment runs against a bare proxy and a bare Penghubung, in one run on the
//! same upstream, with the same request: a `POST` of the 1 KiB Dukcapil batch (`--request-body`) with
//! `Content-Type: application/json` and `X-Penghubung-Purpose: bench-load`, sequential on `--connections`
//! keep-alive connections:
//!
//! * `full`: Penghubung with an mTLS listener and the load generator's client certificate (the `--mode mtls`
//!   PKI and store), `[policy] enforce = true` with a grant that lists the purpose, local rate limits (the
//!   grant's tier and the service's `rate_limit`, too high to refuse anything), the `async` audit trail, and
//!   the request contract of `--mode contract` on `POST /anything` (`peers::start_penghubung_full`);
//! * `bare`: Penghubung with the plain mode's setup (plaintext listener, policy and limits off, no audit, no
//!   contract);
//! * `nginx`: the `--mode mtls` nginx (`ssl_verify_client on`, CRL, keep-alive upstream pool), no checks.
//!
//! The mTLS targets are loaded by the built-in hyper + tokio-rustls generator, `bare` by the built-in hyper
//! client over plain TCP (`--generator wrk` switches it to wrk). Before measuring, `full` must refuse an
//! invalid body (400 `contract.request_invalid`), a request without the purpose (403 `policy.purpose`) and a
//! caller without a client certificate, and nginx the latter. Per round, and as medians of the round-by-round
//! pairs: `full`'s requests/s and p99 as ratios to `nginx` and to `bare`, and every proxy's own CPU time per
//! request (user + kernel from `/proc/PID/stat` over the measured run, all threads and workers, divided by the
//! requests it completed).
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode full [--duration 5s] [--rounds 3]
//! ```
//!
//! With `--metrics on`, `--mode plain` and `--mode full` also start the same Penghubung with the ops listener and
//! metrics on (`penghubung+metrics`, `full+metrics`), measure it interleaved with the one without, and print its
//! requests/s as a ratio to it (the goal is at least 0.98x).
//!
//! With `--callgrind FILE`, `--mode full` runs only the `full` target, started under `valgrind --tool=callgrind
//! --instr-atstart=no --callgrind-out-file=FILE`; after the uninstrumented warm-up it switches instrumentation
//! on (`callgrind_control -i on`) for one measured run, then off, dumps the profile (`FILE.1`) and prints
//! `callgrind: N requests`: the user-space instructions per request of the full path, as
//! `FULL=1 benches/scripts/instructions-per-request.sh` reports them.
//!
//! `--mode memory` measures resident memory (`VmRSS` of `/proc/PID/status`, a few seconds after each step):
//! `penghubung serve` on its embedded default config (only the listener's port changed, the bench PKI in its
//! `./pki`, the baseline store seeded as on a first start) with the audit trail on and off, idle and then with
//! `--idle-connections` (default 1,000) idle mTLS keep-alive connections that each made one request; a stock
//! nginx master and one worker (the `--mode mtls` config; the sum of their RSS) in the same two situations;
//! and the peak RSS of `penghubung check` on the same config and store (`/usr/bin/time -v`). No load is run.
//!
//! ```text
//! cargo run -p penghubung-benches --release --bin load -- --mode memory [--idle-connections 1000]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use penghubung::config::units::{parse_bytes, parse_duration};
use penghubung_benches::dukcapil;
use penghubung_benches::loadgen::{self, Generator, Load, Post, Stats};
use penghubung_benches::mtls;
use penghubung_benches::mtls::HeldConnections;
use penghubung_benches::peers::{self, Peer, BENCH_PATH};
use penghubung_benches::pki::Pki;
use penghubung_benches::report::{self, Row};
use penghubung_benches::token::TokenEndpoint;
use penghubung_benches::upstream::Upstream;

const USAGE: &str = "\
usage: load [options]

Measures direct → upstream, Penghubung, nginx and haproxy in one run and prints a table.
With --mode mtls: Penghubung, nginx and haproxy behind mTLS listeners, keep-alive requests/s and full
handshakes/s, measured with the built-in hyper + tokio-rustls client (wrk cannot present client certificates).

options:
  --mode M            plain (HTTP, default), mtls (client certificates, TLS 1.3), ratelimit (limits off vs
                      in process vs through Redis; needs redis-server), audit (audit trail off, async and
                      sync, plaintext), contract (POST of a JSON body without and with a request contract),
                      adapter (the splp adapter with a cached token against passthrough, plaintext),
                      full (mTLS + policy + purpose + local limits + async audit + request contract, against
                      a bare Penghubung and nginx with mTLS), memory (resident memory idle and with idle mTLS
                      connections, against nginx; peak of `penghubung check`)
                      or upstream (only serve the harness's upstream, print its address, stop when stdin closes)
  --duration D        measured time per target (default 10s; units ms, s, m)
  --warmup D          warm-up per target before measuring (default 2s)
  --connections N     concurrent keep-alive connections (default 64)
  --threads N         worker threads of Penghubung, nginx worker_processes, haproxy nbthread (default 1)
  --load-threads N    threads of the load generator (default 1)
  --body SIZE         upstream response body (default 1024; also 1KiB, 16KiB)
  --request-body SIZE contract, full: the JSON request body POSTed (default 1KiB)
  --idle-connections N
                      memory: idle mTLS keep-alive connections held open (default 1000)
  --callgrind FILE    full: only the full target, run under valgrind's callgrind, instrumented during the
                      measured run only; its profile is dumped to FILE.1 and the requests are printed
                      (benches/scripts/instructions-per-request.sh with FULL=1)
  --metrics on|off    plain, full: also measure the same Penghubung with [ops] metrics = true and print its
                      ratio to the one without (default off)
  --rounds N          measure every target N times, interleaved (reverse order every other round); report each target's median round (default 1)
  --generator G       auto (wrk when on PATH, else hyper), wrk or hyper (default auto; mtls: always hyper)
  --handshake-connections N
                      mtls: concurrent connect+handshake+request loops (default: --connections)
  --gateway PATH      the penghubung binary (default: target/release/penghubung next to this program)
  --skip-nginx        do not run nginx
  --skip-haproxy      do not run haproxy
  --traces LIST       plain, full: also measure Penghubung exporting traces to a local OTLP sink, for each of
                      `off`, `1` and `100` (percent of requests sampled) listed, e.g. off,1,100 (default off)
  -h, --help          this text
";

/// What the harness measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Plain HTTP/1.1: direct, Penghubung, nginx, haproxy.
    Plain,
    /// mTLS listeners: keep-alive requests and full handshakes.
    Mtls,
    /// Plain HTTP through Penghubung with rate limits off, local, and in Redis.
    Ratelimit,
    /// Audit trail off, async, sync.
    Audit,
    /// POST with a JSON body: no contract, request contract.
    Contract,
    /// The `splp` adapter with a cached token against `passthrough`.
    Adapter,
    /// Every check on (mTLS, policy, purpose, limits, audit, contract) vs bare Penghubung vs nginx with mTLS.
    Full,
    /// Resident memory idle and with idle connections, Penghubung and nginx.
    Memory,
    /// Only the upstream, until stdin closes.
    Upstream,
}

struct Args {
    mode: Mode,
    handshake_connections: Option<usize>,
    idle_connections: usize,
    callgrind: Option<PathBuf>,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    threads: usize,
    load_threads: usize,
    body: usize,
    request_body: usize,
    rounds: usize,
    generator: String,
    gateway: Option<PathBuf>,
    skip_nginx: bool,
    skip_haproxy: bool,
    /// Percentages of requests traced, each an extra target (`--traces`); empty: tracing off only.
    traces: Vec<u32>,
    /// `--metrics on`: `--mode plain` and `--mode full` also measure the same Penghubung with metrics recorded.
    metrics: bool,
}

/// The extra targets of `--traces`, by the percentage they sample: plain mode's, then full mode's.
const TRACED: [(u32, &str, &str); 2] =
    [(1, "penghubung+traces1%", "full+traces1%"), (100, "penghubung+traces100%", "full+traces100%")];

/// Reads `--traces`: `off`, `1` and `100`, comma-separated.
fn parse_traces(text: &str) -> Result<Vec<u32>, String> {
    let mut percents = Vec::new();
    for setting in text.split(',').map(str::trim) {
        match setting {
            "off" => {}
            "1" => percents.push(1),
            "100" => percents.push(100),
            other => return Err(format!("--traces takes off, 1 and 100 (comma-separated), not `{other}`")),
        }
    }
    percents.dedup();
    Ok(percents)
}

/// The OTLP/HTTP sink of `--traces`: a harness upstream with an empty body (an empty protobuf
/// `ExportTraceServiceResponse`), started only when a traced target is asked for.
fn trace_sink(args: &Args) -> Result<Option<Upstream>, String> {
    if args.traces.is_empty() {
        return Ok(None);
    }
    let sink = Upstream::start(0).map_err(|e| format!("cannot start the OTLP sink: {e}"))?;
    println!("  OTLP/HTTP trace sink: http://{}/v1/traces", sink.addr());
    Ok(Some(sink))
}

/// Per traced target, its paired ratios to `base` (the same Penghubung without traces).
fn traced_ratios(targets: &[Target], results: &[Vec<Stats>], base: &str) -> Vec<String> {
    let index = |name: &str| targets.iter().position(|t| t.name == name);
    let mut lines = Vec::new();
    for (_, plain, full) in TRACED {
        for name in [plain, full] {
            if let (Some(traced), Some(base)) = (index(name), index(base)) {
                let (per_round, median) = paired_ratios(results, traced, base);
                let per_round: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
                let (_, p99) = paired_p99_ratios(results, traced, base);
                lines.push(format!(
                    "  {name} vs {base} per round: {} (median {median:.2}x, p99 {p99:.2}x)",
                    per_round.join(", "),
                    base = targets[base].name
                ));
            }
        }
    }
    lines
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        mode: Mode::Plain,
        handshake_connections: None,
        idle_connections: 1000,
        callgrind: None,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        connections: 64,
        threads: 1,
        load_threads: 1,
        body: 1024,
        request_body: 1024,
        rounds: 1,
        generator: "auto".into(),
        gateway: None,
        skip_nginx: false,
        skip_haproxy: false,
        traces: Vec::new(),
        metrics: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{flag} needs a value"));
        let count = |text: String, flag: &str| -> Result<usize, String> {
            match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} needs a whole number above 0, not `{text}`")),
            }
        };
        match flag.as_str() {
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "plain" => Mode::Plain,
                    "mtls" => Mode::Mtls,
                    "ratelimit" => Mode::Ratelimit,
                    "audit" => Mode::Audit,
                    "contract" => Mode::Contract,
                    "adapter" => Mode::Adapter,
                    "full" => Mode::Full,
                    "memory" => Mode::Memory,
                    "upstream" => Mode::Upstream,
                    other => {
                        return Err(format!(
                    "--mode must be plain, mtls, ratelimit, audit, contract, adapter, full, memory or upstream, not \
                             `{other}`"
                ))
                    }
                }
            }
            "--handshake-connections" => args.handshake_connections = Some(count(value()?, &flag)?),
            "--idle-connections" => args.idle_connections = count(value()?, &flag)?,
            "--callgrind" => args.callgrind = Some(PathBuf::from(value()?)),
            "--duration" => args.duration = parse_duration(&value()?)?,
            "--warmup" => args.warmup = parse_duration(&value()?)?,
            "--connections" => args.connections = count(value()?, &flag)?,
            "--threads" => args.threads = count(value()?, &flag)?,
            "--load-threads" => args.load_threads = count(value()?, &flag)?,
            "--rounds" => args.rounds = count(value()?, &flag)?,
            "--body" => args.body = parse_bytes(&value()?)? as usize,
            "--request-body" => args.request_body = parse_bytes(&value()?)? as usize,
            "--generator" => args.generator = value()?,
            "--gateway" => args.gateway = Some(PathBuf::from(value()?)),
            "--skip-nginx" => args.skip_nginx = true,
            "--skip-haproxy" => args.skip_haproxy = true,
            "--traces" => args.traces = parse_traces(&value()?)?,
            "--metrics" => {
                args.metrics = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--metrics must be on or off, not `{other}`")),
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    if args.duration.is_zero() {
        return Err("--duration must be above zero".into());
    }
    if !args.traces.is_empty() && !matches!(args.mode, Mode::Plain | Mode::Full) {
        return Err("--traces applies to --mode plain and --mode full".into());
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    // Every child process lives inside `run`; they are all stopped before we get here.
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A measured target: its name, address and (for proxies) the process behind it.
struct Target {
    name: &'static str,
    addr: std::net::SocketAddr,
    peer: Option<Peer>,
}

fn run(args: &Args) -> Result<(), String> {
    let gateway = || gateway_binary(args);
    match args.mode {
        Mode::Plain => run_plain(args, &gateway()?),
        Mode::Mtls => run_mtls(args, &gateway()?),
        Mode::Ratelimit => run_ratelimit(args, &gateway()?),
        Mode::Audit => run_audit(args, &gateway()?),
        Mode::Contract => run_contract(args, &gateway()?),
        Mode::Adapter => run_adapter(args, &gateway()?),
        Mode::Full => run_full(args, &gateway()?),
        Mode::Memory => run_memory(args, &gateway()?),
        Mode::Upstream => serve_upstream(args),
    }
}

/// `--mode upstream`: the harness's upstream alone, until stdin closes.
fn serve_upstream(args: &Args) -> Result<(), String> {
    let upstream = Upstream::start(args.body).map_err(|e| format!("upstream: {e}"))?;
    println!("upstream: http://{}", upstream.addr());
    std::io::Write::flush(&mut std::io::stdout()).map_err(|e| e.to_string())?;
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    Ok(())
}

/// `--mode contract`: POSTs of a JSON body direct, through a gateway without and one with a request contract.
fn run_contract(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let generator = plain_generator(args)?;
    let valid = dukcapil::body(args.request_body);
    let invalid = dukcapil::invalid_body(args.request_body);
    let records = dukcapil::records_in(&valid);
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    print_header("Penghubung load harness: request contracts", "gateway", args, &upstream);
    println!(
        "  request: POST {BENCH_PATH}, application/json, {} bytes ({records} resident record(s), schema {})",
        valid.len(),
        dukcapil::SCHEMA_PATH
    );
    println!("  generator: {}", generator.describe());
    let mut targets = vec![Target { name: report::DIRECT, addr: upstream.addr(), peer: None }];
    for (name, contract) in [("no contract", false), ("contract", true)] {
        let peer = peers::start_penghubung_contract(gateway, args.threads, upstream.addr(), contract)?;
        println!("  penghubung, {name}: {}", peer.addr);
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    // Before anything is measured: the contract gateway refuses the invalid body and forwards the valid one;
    // the others forward both (nothing checks them).
    let post = |t: &Target, body: &[u8]| {
        peers::http_post(t.addr, BENCH_PATH, "application/json", body)
            .map_err(|e| format!("{}: POST {BENCH_PATH} failed: {e}", t.name))
    };
    for t in &targets {
        let (status, answer) = post(t, &invalid)?;
        let text = String::from_utf8_lossy(&answer);
        if t.name == "contract" {
            if status != 400 || !text.contains("contract.request_invalid") {
                return Err(format!("contract: an invalid body was answered {status}: {text}"));
            }
            println!("  contract: invalid body refused: 400 contract.request_invalid");
        } else if status != 200 {
            return Err(format!("{}: an unchecked body was answered {status}: {text}", t.name));
        }
        let (status, answer) = post(t, &valid)?;
        if status != 200 || answer.len() != args.body {
            return Err(format!(
                "{}: the valid body was answered {status} with {} bytes, expected 200 with {}",
                t.name,
                answer.len(),
                args.body
            ));
        }
    }
    let payload = Post { body: valid.into(), content_type: "application/json".into(), headers: Vec::new() };
    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let results = measure_rounds(args, &targets, "POST", load, |t, load| {
        loadgen::run_request(&generator, t.addr, BENCH_PATH, Some(&payload), load)
    })?;
    let (per_round, paired_median) = paired_ratios(&results, 2, 1);
    let per_round: Vec<String> = per_round.iter().map(|r| format!("{r:.2}x")).collect();
    print_proxy_cpu(&targets, &results);
    let rows = median_rows(&targets, results);
    let off = rows.iter().find(|r| r.target == "no contract").map_or(1.0, |r| r.stats.requests_per_sec.max(1.0));
    println!();
    print_markdown_table(&format!("POST, {} byte JSON body", args.request_body), "vs no contract", &rows, off);
    println!("  contract vs no contract per round: {} (median {paired_median:.2}x)", per_round.join(", "));
    if rows.iter().any(|r| r.stats.errors > 0) {
        println!("\nwarning: some requests failed (see the errors column); those runs are not comparable");
    }
    drop(targets);
    drop(upstream);
    Ok(())
}

/// `--mode full`'s targets, by name.
const FULL: &str = "full";
/// `full` with metrics recorded (`--metrics on`).
const FULL_METRICS: &str = "full+metrics";
/// The plain mode's Penghubung with metrics recorded (`--metrics on`).
const PLAIN_METRICS: &str = "penghubung+metrics";
const BARE: &str = "bare";

/// `--mode full`: Penghubung with every check, bare Penghubung and nginx with mTLS, the same POST on each.
fn run_full(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    // The mTLS targets are loaded by the hyper + rustls generator; `bare` by its plaintext sibling unless wrk is
    // asked for, so that the three share one client stack.
    let generator = match args.generator.as_str() {
        "auto" | "hyper" => Generator::Hyper,
        _ => plain_generator(args)?,
    };
    let valid = dukcapil::body(args.request_body);
    let invalid = dukcapil::invalid_body(args.request_body);
    let purpose = ("X-Penghubung-Purpose".to_string(), peers::FULL_PURPOSE.to_string());
    let post = |body: &[u8], headers: Vec<(String, String)>| Post {
        body: body.to_vec().into(),
        content_type: "application/json".into(),
        headers,
    };
    let payload = post(&valid, vec![purpose.clone()]);
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    let pki = Pki::generate()?;
    let tls = pki.client_config(true)?;
    print_header("Penghubung load harness: the full path", "proxies", args, &upstream);
    println!(
        "  request: POST {BENCH_PATH}, application/json, {} bytes ({} resident record(s)), {}: {}",
        valid.len(),
        dukcapil::records_in(&valid),
        purpose.0,
        purpose.1
    );
    println!(
        "  generators: built-in hyper + tokio-rustls client (client certificate {}) for the mTLS targets; {} for bare",
        pki.client_spiffe,
        generator.describe()
    );

    let wrapper: Vec<String> = match &args.callgrind {
        None => Vec::new(),
        Some(out) => vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            "--instr-atstart=no".into(),
            format!("--callgrind-out-file={}", out.display()),
        ],
    };
    let mut targets = Vec::new();
    let peer = peers::start_penghubung_full(gateway, args.threads, upstream.addr(), &pki, &tls, &wrapper)?;
    println!(
        "  {FULL}: https://{} ({}; mTLS, policy on with grant and purpose, local limits, async audit, request contract)",
        peer.addr,
        gateway.display()
    );
    targets.push(Target { name: FULL, addr: peer.addr, peer: Some(peer) });
    let sink = if args.callgrind.is_none() { trace_sink(args)? } else { None };
    for (percent, _, name) in TRACED.into_iter().filter(|(p, _, _)| sink.is_some() && args.traces.contains(p)) {
        let traces = peers::traces_section(sink.as_ref().ok_or("no trace sink")?.addr(), percent);
        let peer =
            peers::start_penghubung_full_with(gateway, args.threads, upstream.addr(), &pki, &tls, &wrapper, &traces)?;
        println!("  {name}: https://{} (as {FULL}, and traces: {percent}% sampled, exported to the sink)", peer.addr);
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    if args.metrics && args.callgrind.is_none() {
        let peer = peers::start_penghubung_full_with(
            gateway,
            args.threads,
            upstream.addr(),
            &pki,
            &tls,
            &[],
            peers::METRICS_ON,
        )?;
        println!("  {FULL_METRICS}: https://{} (the same, with [ops] metrics = true)", peer.addr);
        targets.push(Target { name: FULL_METRICS, addr: peer.addr, peer: Some(peer) });
    }
    if args.callgrind.is_none() {
        let peer = peers::start_penghubung(gateway, args.threads, upstream.addr())?;
        println!("  {BARE}: http://{} (plaintext, policy, limits and audit off, no contract)", peer.addr);
        targets.push(Target { name: BARE, addr: peer.addr, peer: Some(peer) });
    }
    match (args.skip_nginx || args.callgrind.is_some(), peers::find_program("nginx")) {
        (true, _) => println!("  nginx: skipped"),
        (false, None) => println!("  nginx: not installed, skipped (Debian: apt-get install -y nginx)"),
        (false, Some(nginx)) => {
            let peer = peers::start_nginx_mtls(&nginx, args.threads, upstream.addr(), &pki, &tls)?;
            println!("  nginx: https://{} ({}; mTLS, no checks)", peer.addr, peers::program_version(&nginx, &["-v"]));
            targets.push(Target { name: report::NGINX, addr: peer.addr, peer: Some(peer) });
        }
    }

    // Before measuring: every target forwards the request; `full` refuses what its checks are there to refuse.
    let send = |t: &Target, post: &Post, config: &std::sync::Arc<rustls::ClientConfig>| {
        let answer = match t.name {
            BARE => peers::http_post(t.addr, BENCH_PATH, &post.content_type, &post.body),
            _ => mtls::https_request(t.addr, BENCH_PATH, Some(post), std::sync::Arc::clone(config))
                .map(|(s, b, _)| (s, b)),
        };
        answer.map(|(status, body)| (status, String::from_utf8_lossy(&body).into_owned()))
    };
    let anonymous = pki.client_config_without_certificate()?;
    for t in &targets {
        let (status, body) =
            send(t, &payload, &tls).map_err(|e| format!("{}: POST {BENCH_PATH} failed: {e}", t.name))?;
        if status != 200 || body.len() != args.body {
            return Err(format!(
                "{}: the valid POST was answered {status} with {} bytes: {body:.200}",
                t.name,
                body.len()
            ));
        }
        if t.name == BARE {
            continue;
        }
        match send(t, &payload, &anonymous) {
            Ok((200, _)) => return Err(format!("{}: answered 200 to a caller without a client certificate", t.name)),
            Ok((status, _)) => println!("  {}: without a client certificate: HTTP {status}", t.name),
            Err(_) => println!("  {}: without a client certificate: handshake refused", t.name),
        }
        if t.name != FULL {
            continue;
        }
        let refusals = [
            ("an invalid body", post(&invalid, vec![purpose.clone()]), 400, "contract.request_invalid"),
            ("no purpose", post(&valid, Vec::new()), 403, "policy.purpose"),
        ];
        for (what, request, expected, code) in refusals {
            let (status, body) = send(t, &request, &tls).map_err(|e| format!("{FULL}: POST with {what}: {e}"))?;
            if status != expected || !body.contains(code) {
                return Err(format!("{FULL}: a POST with {what} was answered {status}: {body:.300}"));
            }
            println!("  {FULL}: a POST with {what} is refused: {status} {code}");
        }
    }

    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    if let Some(out) = &args.callgrind {
        return count_full_instructions(args, &targets[0], &payload, load, &tls, out);
    }
    let results = measure_rounds(args, &targets, "POST", load, |t, load| match t.name {
        BARE => loadgen::run_request(&generator, t.addr, BENCH_PATH, Some(&payload), load),
        _ => mtls::run_keepalive_request(t.addr, BENCH_PATH, Some(&payload), load, std::sync::Arc::clone(&tls)),
    })?;

    let index = |name: &str| targets.iter().position(|t| t.name == name);
    let full = index(FULL).ok_or("no full target")?;
    println!();
    println!("{FULL} round by round (rate and p99 as ratios; CPU = the proxy's user + kernel time per request):");
    for round in 0..args.rounds {
        let s = &results[full][round];
        let mut line = format!(
            "  round {}/{}: {FULL} {:.0} req/s, p99 {}",
            round + 1,
            args.rounds,
            s.requests_per_sec,
            report::format_latency(s.p99)
        );
        for peer in [report::NGINX, BARE] {
            if let Some(i) = index(peer) {
                let b = &results[i][round];
                let _ = std::fmt::Write::write_fmt(
                    &mut line,
                    format_args!(
                        "; vs {peer}: req/s {:.2}x, p99 {:.2}x",
                        s.requests_per_sec / b.requests_per_sec.max(1.0),
                        s.p99.as_secs_f64() / b.p99.as_secs_f64().max(1e-9)
                    ),
                );
            }
        }
        let cpu: Vec<String> = targets
            .iter()
            .zip(&results)
            .filter_map(|(t, r)| r[round].proxy_cpu_us.map(|(u, k)| format!("{} {:.1}", t.name, u + k)))
            .collect();
        println!("{line}; CPU µs/req: {}", cpu.join(", "));
    }
    let mut summary = Vec::new();
    if let Some(with) = index(FULL_METRICS) {
        let (_, rate) = paired_ratios(&results, with, full);
        let (_, p99) = paired_p99_ratios(&results, with, full);
        let cpu =
            paired_cpu_ratios(&results, with, full).map_or(String::new(), |c| format!(", CPU per request {c:.2}x"));
        summary.push(format!(
            "  {FULL_METRICS} vs {FULL} (metrics on vs off, median of the rounds' pairs; goal ≥ 0.98x): req/s {rate:.2}x, p99 {p99:.2}x{cpu}"
        ));
    }
    for peer in [report::NGINX, BARE] {
        if let Some(base) = index(peer) {
            let (_, rate) = paired_ratios(&results, full, base);
            let (_, p99) = paired_p99_ratios(&results, full, base);
            let cpu =
                paired_cpu_ratios(&results, full, base).map_or(String::new(), |c| format!(", CPU per request {c:.2}x"));
            summary.push(format!(
                "  {FULL} vs {peer} (median of the rounds' pairs): req/s {rate:.2}x, p99 {p99:.2}x{cpu}"
            ));
        }
    }
    summary.extend(traced_ratios(&targets, &results, FULL));
    let cpu: Vec<Option<f64>> = (0..targets.len()).map(|i| median_cpu(&results, i)).collect();
    let errors: Vec<u64> = results.iter().map(|r| r.iter().map(|s| s.errors).sum()).collect();
    let rows = median_rows(&targets, results);
    println!();
    println!("| target | req/s | p50 | p99 | proxy CPU µs/req | errors |");
    println!("|---|---|---|---|---|---|");
    for ((row, cpu), errors) in rows.iter().zip(&cpu).zip(&errors) {
        println!(
            "| {} | {:.0} | {} | {} | {} | {errors} |",
            row.target,
            row.stats.requests_per_sec,
            report::format_latency(row.stats.p50),
            report::format_latency(row.stats.p99),
            cpu.map_or("-".to_string(), |c| format!("{c:.1}")),
        );
    }
    println!("  (req/s, p50, p99: each target's median round; CPU: the median over rounds)");
    for line in &summary {
        println!("{line}");
    }
    if let (Some(f), Some(n)) = (cpu[full], index(report::NGINX).and_then(|i| cpu[i])) {
        println!("  {FULL} CPU per request vs nginx: {f:.1} µs vs {n:.1} µs ({:.2}x)", f / n.max(1e-9));
    }
    if let Some(peer) = targets[full].peer.as_ref() {
        println!("  {FULL}: {} audit lines written in all", peers::audit_records(peer));
    }
    if errors.iter().any(|e| *e > 0) {
        println!("\nwarning: some requests failed (see the errors column); those runs are not comparable");
    }
    drop(targets);
    drop(upstream);
    drop(pki);
    Ok(())
}

/// `--mode full --callgrind FILE`: the warm-up uninstrumented, then one measured run with callgrind's
/// instrumentation on; dumps the profile and prints the requests it covered.
fn count_full_instructions(
    args: &Args,
    target: &Target,
    payload: &Post,
    load: Load,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    out: &std::path::Path,
) -> Result<(), String> {
    let pid = target.peer.as_ref().ok_or("no gateway process")?.guard.pid().to_string();
    let control = |what: &[&str]| -> Result<(), String> {
        let status = std::process::Command::new("callgrind_control")
            .args(what)
            .arg(&pid)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run callgrind_control (apt-get install -y valgrind): {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("callgrind_control {} {pid} failed: {status}", what.join(" ")))
        }
    };
    let run = |load: Load| {
        mtls::run_keepalive_request(target.addr, BENCH_PATH, Some(payload), load, std::sync::Arc::clone(tls))
    };
    if !args.warmup.is_zero() {
        run(Load { duration: args.warmup, ..load })?;
    }
    control(&["-i", "on"])?;
    let stats = run(load)?;
    control(&["-i", "off"])?;
    control(&["-d"])?;
    println!("callgrind: {} requests, {} errors, profile {}.1", stats.requests, stats.errors, out.display());
    if stats.errors > 0 {
        return Err(format!("{} requests failed under callgrind", stats.errors));
    }
    Ok(())
}

/// How long `--mode memory` lets a process settle before it reads its RSS.
const SETTLE: Duration = Duration::from_secs(3);

/// `--mode memory`: resident memory of Penghubung on its embedded default and of nginx, idle and with idle mTLS
/// connections; the peak of `penghubung check`.
fn run_memory(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    let pki = Pki::generate()?;
    let tls = pki.client_config(true)?;
    let idle = args.idle_connections;
    println!("Penghubung load harness: resident memory");
    println!(
        "  penghubung: {} serve on the embedded default config (listener port changed, bench PKI); nginx: the --mode mtls config, {} worker(s)",
        gateway.display(),
        args.threads
    );
    println!("  RSS read {SETTLE:?} after each step (VmRSS; nginx: master + workers); idle connections: {idle} mTLS keep-alive, one GET each");
    let rss = |peer: &peers::Peer| -> Result<u64, String> {
        std::thread::sleep(SETTLE);
        peer.guard.rss_kib().ok_or_else(|| format!("cannot read the RSS of pid {}", peer.guard.pid()))
    };
    let hold = |peer: &peers::Peer, path: &str| -> Result<HeldConnections, String> {
        mtls::hold_connections(peer.addr, path, idle, std::sync::Arc::clone(&tls))
    };
    // (what, KiB, the situation: idle or with connections; nginx's row of the same situation is the peer)
    let mut rows: Vec<(String, u64, bool)> = Vec::new();
    let mut check = None;
    for audit in [true, false] {
        let peer = peers::start_penghubung_default(gateway, &pki, &tls, audit)?;
        let state = if audit { "audit on" } else { "audit off" };
        rows.push((format!("penghubung serve, idle, {state}"), rss(&peer)?, false));
        if audit {
            let held = hold(&peer, "/_penghubung/health")?;
            rows.push((format!("penghubung serve, {} idle mTLS connections, {state}", held.len()), rss(&peer)?, true));
            drop(held);
            check = Some(peers::check_peak_rss_kib(gateway, peer.guard.dir()));
        }
    }
    match (args.skip_nginx, peers::find_program("nginx")) {
        (true, _) => println!("  nginx: skipped (--skip-nginx)"),
        (false, None) => println!("  nginx: not installed, skipped (Debian: apt-get install -y nginx)"),
        (false, Some(nginx)) => {
            let peer = peers::start_nginx_mtls(&nginx, args.threads, upstream.addr(), &pki, &tls)?;
            println!("  nginx: {}", peers::program_version(&nginx, &["-v"]));
            rows.push(("nginx master + worker, idle".into(), rss(&peer)?, false));
            let held = hold(&peer, BENCH_PATH)?;
            rows.push((format!("nginx master + worker, {} idle mTLS connections", held.len()), rss(&peer)?, true));
            drop(held);
        }
    }
    match check {
        Some(Ok(kib)) => rows.push(("penghubung check, peak".into(), kib, false)),
        Some(Err(e)) => println!("  penghubung check: {e}"),
        None => {}
    }
    let nginx = |connections: bool| rows.iter().find(|r| r.0.starts_with("nginx") && r.2 == connections).map(|r| r.1);
    println!();
    println!("| what | RSS | vs nginx in the same situation (check: vs nginx idle) |");
    println!("|---|---|---|");
    for (name, kib, connections) in &rows {
        let ratio = nginx(*connections).map_or("-".to_string(), |n| format!("{:.1}x", *kib as f64 / n.max(1) as f64));
        println!("| {name} | {:.1} MiB | {ratio} |", *kib as f64 / 1024.0);
    }
    drop(upstream);
    drop(pki);
    Ok(())
}

/// `--mode ratelimit`: the same gateway with limits off, in process, and in Redis; one table, ratios to "off".
fn run_ratelimit(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let generator = plain_generator(args)?;
    let redis_server = peers::find_program("redis-server")
        .ok_or("--mode ratelimit needs redis-server on PATH (Debian: apt-get install -y redis-server)")?;
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    let (redis, redis_url) = peers::start_redis(&redis_server)?;
    print_header("Penghubung load harness: rate limits", "gateway", args, &upstream);
    println!("  redis: {redis_url} ({})", peers::program_version(&redis_server, &["--version"]));
    println!("  generator: {}", generator.describe());
    let mut targets = Vec::new();
    for (name, limits) in [
        ("limits off", peers::BenchLimits::Off),
        ("local", peers::BenchLimits::Local),
        ("redis", peers::BenchLimits::Redis(redis_url.clone())),
    ] {
        let peer = peers::start_penghubung_limited(gateway, args.threads, upstream.addr(), &limits)?;
        let (status, body) =
            peers::http_get(peer.addr, BENCH_PATH).map_err(|e| format!("{name}: GET {BENCH_PATH} failed: {e}"))?;
        if status != 200 || body.len() != args.body {
            return Err(format!("{name}: GET {BENCH_PATH} answered {status} with {} bytes", body.len()));
        }
        println!("  penghubung ({name}): {}", peer.addr);
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let results =
        measure_rounds(args, &targets, "plain", load, |t, load| loadgen::run(&generator, t.addr, BENCH_PATH, load))?;
    print_proxy_cpu(&targets, &results);
    let rows = median_rows(&targets, results);
    let off = rows.first().map_or(1.0, |r| r.stats.requests_per_sec.max(1.0));
    println!();
    print_markdown_table("Penghubung, plain HTTP", "vs limits off", &rows, off);
    drop(targets);
    drop(redis);
    drop(upstream);
    Ok(())
}

fn plain_generator(args: &Args) -> Result<Generator, String> {
    Ok(match args.generator.as_str() {
        "hyper" => Generator::Hyper,
        "wrk" => Generator::Wrk(
            peers::find_program("wrk").ok_or("--generator wrk: wrk is not on PATH (apt-get install -y wrk)")?,
        ),
        "auto" => peers::find_program("wrk").map_or(Generator::Hyper, Generator::Wrk),
        other => return Err(format!("--generator must be auto, wrk or hyper, not `{other}`")),
    })
}

/// The first lines of every plain-HTTP mode's report: what runs where, and how it is loaded.
fn print_header(title: &str, proxies: &str, args: &Args, upstream: &Upstream) {
    println!("{title}");
    println!(
        "  machine: {} cores | {proxies}: {} thread(s) | load: {} connection(s), {} generator thread(s), {:?} per target after {:?} warm-up, {} round(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.threads,
        args.connections,
        args.load_threads,
        args.duration,
        args.warmup,
        args.rounds,
    );
    println!("  upstream: {} (in-process, {} byte body)", upstream.addr(), args.body);
}

/// The penghubung binary: `--gateway`, or `penghubung` next to this program; it must exist.
fn gateway_binary(args: &Args) -> Result<PathBuf, String> {
    let gateway = match &args.gateway {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this program's path: {e}"))?
            .parent()
            .map(|dir| dir.join("penghubung"))
            .unwrap_or_else(|| PathBuf::from("penghubung")),
    };
    if !gateway.is_file() {
        return Err(format!(
            "the gateway binary {} is missing: run `cargo build --release -p penghubung` first (or pass --gateway PATH)",
            gateway.display()
        ));
    }
    Ok(gateway)
}

/// The plain mode's second nginx: the same config plus [`peers::GATEWAY_FIELDS`].
const NGINX_SAME_FIELDS: &str = "nginx+fields";

fn run_plain(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let generator = plain_generator(args)?;

    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    print_header("Penghubung load harness", "proxies", args, &upstream);
    println!("  generator: {}", generator.describe());

    let mut targets = vec![Target { name: report::DIRECT, addr: upstream.addr(), peer: None }];
    let peer = peers::start_penghubung(gateway, args.threads, upstream.addr())?;
    println!("  penghubung: {} ({})", peer.addr, gateway.display());
    targets.push(Target { name: "penghubung", addr: peer.addr, peer: Some(peer) });
    let sink = trace_sink(args)?;
    for (percent, name, _) in TRACED.into_iter().filter(|(p, _, _)| args.traces.contains(p)) {
        let sink = sink.as_ref().ok_or("no trace sink")?.addr();
        let peer = peers::start_penghubung_extra(
            gateway,
            args.threads,
            upstream.addr(),
            &peers::traces_section(sink, percent),
        )?;
        println!("  {name}: {} (traces: {percent}% of the requests sampled, exported to the sink)", peer.addr);
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    if args.metrics {
        let peer = peers::start_penghubung_metrics(gateway, args.threads, upstream.addr())?;
        println!("  {PLAIN_METRICS}: {} (the same, with [ops] metrics = true)", peer.addr);
        targets.push(Target { name: PLAIN_METRICS, addr: peer.addr, peer: Some(peer) });
    }

    match (args.skip_nginx, peers::find_program("nginx")) {
        (true, _) => println!("  nginx: skipped (--skip-nginx)"),
        (false, None) => {
            println!("  nginx: not installed, skipped (Debian: apt-get install -y nginx)")
        }
        (false, Some(nginx)) => {
            let peer = peers::start_nginx(&nginx, args.threads, upstream.addr())?;
            println!("  nginx: {} ({})", peer.addr, peers::program_version(&nginx, &["-v"]));
            targets.push(Target { name: report::NGINX, addr: peer.addr, peer: Some(peer) });
            let peer = peers::start_nginx_same_fields(&nginx, args.threads, upstream.addr())?;
            println!(
                "  {NGINX_SAME_FIELDS}: {} (nginx also sending the upstream Penghubung's forwarding fields, request id \
                 and traceparent)",
                peer.addr
            );
            targets.push(Target { name: NGINX_SAME_FIELDS, addr: peer.addr, peer: Some(peer) });
        }
    }
    match (args.skip_haproxy, peers::find_program("haproxy")) {
        (true, _) => println!("  haproxy: skipped (--skip-haproxy)"),
        (false, None) => {
            println!("  haproxy: not installed, skipped (Debian: apt-get install -y haproxy)")
        }
        (false, Some(haproxy)) => {
            let peer = peers::start_haproxy(&haproxy, args.threads, upstream.addr())?;
            println!("  haproxy: {} ({})", peer.addr, peers::program_version(&haproxy, &["-v"]));
            targets.push(Target { name: "haproxy", addr: peer.addr, peer: Some(peer) });
        }
    }

    // Every target must really answer with the upstream's body before it is measured.
    for t in &targets {
        let (status, body) =
            peers::http_get(t.addr, BENCH_PATH).map_err(|e| format!("{}: GET {BENCH_PATH} failed: {e}", t.name))?;
        if status != 200 || body.len() != args.body {
            return Err(format!(
                "{}: GET {BENCH_PATH} answered {status} with {} bytes, expected 200 with {}",
                t.name,
                body.len(),
                args.body
            ));
        }
    }

    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let results =
        measure_rounds(args, &targets, "GET", load, |t, load| loadgen::run(&generator, t.addr, BENCH_PATH, load))?;
    print_proxy_cpu(&targets, &results);
    let index = |name: &str| targets.iter().position(|t| t.name == name);
    let mut paired = Vec::new();
    if let (Some(with), Some(without)) = (index(PLAIN_METRICS), index("penghubung")) {
        let (per_round, median) = paired_ratios(&results, with, without);
        let per_round: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
        paired.push(format!(
            "  {PLAIN_METRICS} vs penghubung (metrics on vs off; goal ≥ 0.98x) per round: {} (median {median:.2}x)",
            per_round.join(", ")
        ));
    }
    for peer in [report::NGINX, NGINX_SAME_FIELDS] {
        if let (Some(gateway), Some(base)) = (index("penghubung"), index(peer)) {
            let (per_round, median) = paired_ratios(&results, gateway, base);
            let per_round: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
            paired.push(format!("  penghubung vs {peer} per round: {} (median {median:.2}x)", per_round.join(", ")));
            let (per_round, median) = paired_p99_ratios(&results, gateway, base);
            let per_round: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
            paired.push(format!("    p99 vs {peer} per round: {} (median {median:.2}x)", per_round.join(", ")));
        }
    }

    paired.extend(traced_ratios(&targets, &results, "penghubung"));
    let rows = median_rows(&targets, results);
    println!();
    for line in &paired {
        println!("{line}");
    }
    println!();
    print!("{}", report::table(&rows));
    if rows.iter().any(|r| r.stats.errors > 0) {
        println!("\nwarning: some requests failed (see the errors column); those runs are not comparable");
    }
    // `targets` (and with it every child process) and then `upstream` are dropped here.
    drop(targets);
    drop(upstream);
    Ok(())
}

/// `--mode mtls`: Penghubung, nginx and haproxy with mTLS listeners and the same upstream; per round and target
/// the keep-alive workload, then per target the full-handshake workload; two tables of median rounds.
fn run_mtls(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    if args.generator == "wrk" {
        return Err("--mode mtls: wrk cannot present a client certificate; leave --generator at auto or hyper".into());
    }
    let handshake_connections = args.handshake_connections.unwrap_or(args.connections);
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    let pki = Pki::generate()?;
    // Keep-alive connections make one handshake each; resumption would not change anything there.
    let keepalive_tls = pki.client_config(true)?;
    let handshake_tls = pki.client_config(false)?;
    println!("Penghubung load harness: mTLS");
    println!(
        "  machine: {} cores | proxies: {} thread(s) | load: {} keep-alive connection(s), {} handshake loop(s), {} generator thread(s), {:?} per workload and target after {:?} warm-up, {} round(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.threads,
        args.connections,
        handshake_connections,
        args.load_threads,
        args.duration,
        args.warmup,
        args.rounds,
    );
    println!("  upstream: {} (in-process, plaintext, {} byte body)", upstream.addr(), args.body);
    println!(
        "  pki: built-in CA (trust domain {}) in {}; server certificate for 127.0.0.1 and localhost; client {}",
        penghubung_benches::pki::TRUST_DOMAIN,
        pki.dir().display(),
        pki.client_spiffe
    );
    println!(
        "  generator: built-in hyper + tokio-rustls client (ring, client certificate, HTTP/1.1; handshakes without resumption)"
    );

    let mut targets = Vec::new();
    let peer = peers::start_penghubung_mtls(gateway, args.threads, upstream.addr(), &pki, &keepalive_tls, true)?;
    println!(
        "  penghubung: https://{} ({}; policy on: identity, grant, lifecycle, clearance)",
        peer.addr,
        gateway.display()
    );
    targets.push(Target { name: "penghubung", addr: peer.addr, peer: Some(peer) });
    let peer = peers::start_penghubung_mtls(gateway, args.threads, upstream.addr(), &pki, &keepalive_tls, false)?;
    println!("  penghubung-nopolicy: https://{} (same, with [policy] enforce = false)", peer.addr);
    targets.push(Target { name: "penghubung-nopolicy", addr: peer.addr, peer: Some(peer) });
    match (args.skip_nginx, peers::find_program("nginx")) {
        (true, _) => println!("  nginx: skipped (--skip-nginx)"),
        (false, None) => println!("  nginx: not installed, skipped (Debian: apt-get install -y nginx)"),
        (false, Some(nginx)) => {
            let peer = peers::start_nginx_mtls(&nginx, args.threads, upstream.addr(), &pki, &keepalive_tls)?;
            println!("  nginx: https://{} ({})", peer.addr, peers::program_version(&nginx, &["-v"]));
            targets.push(Target { name: report::NGINX, addr: peer.addr, peer: Some(peer) });
        }
    }
    match (args.skip_haproxy, peers::find_program("haproxy")) {
        (true, _) => println!("  haproxy: skipped (--skip-haproxy)"),
        (false, None) => println!("  haproxy: not installed, skipped (Debian: apt-get install -y haproxy)"),
        (false, Some(haproxy)) => {
            let peer = peers::start_haproxy_mtls(&haproxy, args.threads, upstream.addr(), &pki, &keepalive_tls)?;
            println!("  haproxy: https://{} ({})", peer.addr, peers::program_version(&haproxy, &["-v"]));
            targets.push(Target { name: "haproxy", addr: peer.addr, peer: Some(peer) });
        }
    }

    // Every target must answer with the upstream's body over mTLS, and must NOT serve a caller without a
    // client certificate (a refused handshake, or nginx's 400), before it is measured.
    let anonymous = pki.client_config_without_certificate()?;
    for t in &targets {
        let (status, body, negotiated) = mtls::https_get(t.addr, BENCH_PATH, std::sync::Arc::clone(&handshake_tls))
            .map_err(|e| format!("{}: GET {BENCH_PATH} over mTLS failed: {e}", t.name))?;
        if status != 200 || body.len() != args.body {
            return Err(format!(
                "{}: GET {BENCH_PATH} over mTLS answered {status} with {} bytes, expected 200 with {}",
                t.name,
                body.len(),
                args.body
            ));
        }
        let refused = match mtls::https_get(t.addr, BENCH_PATH, std::sync::Arc::clone(&anonymous)) {
            Ok((200, _, _)) => {
                return Err(format!("{}: answered 200 to a caller without a client certificate", t.name))
            }
            Ok((status, _, _)) => format!("HTTP {status}"),
            Err(_) => "handshake refused".to_string(),
        };
        println!("  {}: negotiated {negotiated}; without a client certificate: {refused}", t.name);
    }

    let keepalive = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let handshakes = Load { connections: handshake_connections, ..keepalive };
    let mut found_keepalive: Vec<Vec<Stats>> = vec![Vec::new(); targets.len()];
    let mut found_handshakes: Vec<Vec<Stats>> = vec![Vec::new(); targets.len()];
    println!();
    for round in 1..=args.rounds {
        for (t, found) in targets.iter().zip(found_keepalive.iter_mut()) {
            found.push(measure_once(args, round, ("keep-alive", "req/s"), t, keepalive, |load| {
                mtls::run_keepalive(t.addr, BENCH_PATH, load, std::sync::Arc::clone(&keepalive_tls))
            })?);
        }
        for (t, found) in targets.iter().zip(found_handshakes.iter_mut()) {
            found.push(measure_once(args, round, ("handshakes", "hs/s"), t, handshakes, |load| {
                mtls::run_handshakes(t.addr, BENCH_PATH, load, std::sync::Arc::clone(&handshake_tls))
            })?);
        }
    }

    let keepalive_rows = median_rows(&targets, found_keepalive);
    let handshake_rows = median_rows(&targets, found_handshakes);
    println!();
    println!(
        "mTLS keep-alive: {} connections, sequential HTTP/1.1 GETs, one handshake per connection",
        args.connections
    );
    print!("{}", report::table_vs_nginx(&keepalive_rows, "req/s"));
    println!();
    println!(
        "mTLS full handshakes: {handshake_connections} loops of connect + full handshake (client certificate, no resumption) + one GET (Connection: close) + close; latency = connect to end of response"
    );
    print!("{}", report::table_vs_nginx(&handshake_rows, "handshakes/s"));
    if keepalive_rows.iter().chain(&handshake_rows).any(|r| r.stats.errors > 0) {
        println!(
            "\nwarning: some requests or handshakes failed (see the errors columns); those runs are not comparable"
        );
    }
    drop(targets);
    drop(upstream);
    drop(pki);
    Ok(())
}

/// `--mode audit`: direct, and Penghubung without an audit trail, with `async` and with `sync` records.
fn run_audit(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let generator = plain_generator(args)?;
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    print_header("Penghubung load harness: audit trail", "gateway", args, &upstream);
    println!("  generator: {}", generator.describe());
    let mut targets = vec![Target { name: report::DIRECT, addr: upstream.addr(), peer: None }];
    let mut audited = Vec::new();
    for (name, durability) in [("audit off", None), ("audit async", Some("async")), ("audit sync", Some("sync"))] {
        let peer = peers::start_penghubung_audit(gateway, args.threads, upstream.addr(), durability)?;
        println!("  penghubung, {name}: {}", peer.addr);
        if durability.is_some() {
            audited.push((name, targets.len()));
        }
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    for t in &targets {
        let (status, body) =
            peers::http_get(t.addr, BENCH_PATH).map_err(|e| format!("{}: GET {BENCH_PATH} failed: {e}", t.name))?;
        if status != 200 || body.len() != args.body {
            return Err(format!("{}: GET {BENCH_PATH} answered {status} with {} bytes", t.name, body.len()));
        }
    }
    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let results = measure_rounds(args, &targets, "keep-alive", load, |t, load| {
        loadgen::run(&generator, t.addr, BENCH_PATH, load)
    })?;
    print_proxy_cpu(&targets, &results);
    let base = targets.iter().position(|t| t.name == "audit off");
    let paired: Vec<String> = audited
        .iter()
        .filter_map(|(name, index)| {
            let (ratios, median) = paired_ratios(&results, *index, base?);
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            Some(format!("  {name} vs audit off, round by round: {} (median {median:.2}x)", each.join(", ")))
        })
        .collect();
    let rows = median_rows(&targets, results);
    let off = rows.iter().find(|r| r.target == "audit off").map(|r| r.stats.requests_per_sec);
    println!();
    println!("{:<12} {:>10} {:>10} {:>10} {:>14} {:>8}", "target", "req/s", "p50", "p99", "vs audit off", "errors");
    for row in &rows {
        let s = &row.stats;
        let ratio = off.filter(|o| *o > 0.0).map_or("-".to_string(), |o| format!("{:.2}x", s.requests_per_sec / o));
        println!(
            "{:<12} {:>10.0} {:>10} {:>10} {:>14} {:>8}",
            row.target,
            s.requests_per_sec,
            report::format_latency(s.p50),
            report::format_latency(s.p99),
            ratio,
            s.errors
        );
    }
    for line in &paired {
        println!("{line}");
    }
    for (name, index) in audited {
        if let Some(peer) = targets[index].peer.as_ref() {
            println!("  {name}: {} audit lines written in all", peers::audit_records(peer));
        }
    }
    drop(targets);
    drop(upstream);
    Ok(())
}

/// `--mode adapter`: the `splp` adapter with a cached token against `passthrough`, same upstream, same run.
fn run_adapter(args: &Args, gateway: &std::path::Path) -> Result<(), String> {
    let generator = plain_generator(args)?;
    let upstream = Upstream::start(args.body).map_err(|e| format!("cannot start the upstream: {e}"))?;
    let tokens = TokenEndpoint::start().map_err(|e| format!("cannot start the token endpoint: {e}"))?;
    let secrets = tempfile::Builder::new()
        .prefix("penghubung-load-secrets-")
        .tempdir()
        .map_err(|e| format!("cannot create the secrets directory: {e}"))?;
    for (name, value) in peers::BENCH_SPLP_SECRETS.iter().zip(["bench-consumer-key", "bench-consumer-secret"]) {
        write_secret(&secrets.path().join(name), value)?;
    }
    print_header("Penghubung load harness: outbound adapter", "gateway", args, &upstream);
    println!("  generator: {} | token endpoint: {} (tokens live 1 h)", generator.describe(), tokens.url());
    let token_url = tokens.url();
    let mut targets = Vec::new();
    for (name, adapter) in [
        ("passthrough", peers::BenchAdapter::Passthrough),
        ("splp", peers::BenchAdapter::Splp { token_url: &token_url, secrets_dir: secrets.path() }),
    ] {
        let peer = peers::start_penghubung_adapter(gateway, args.threads, upstream.addr(), &adapter)?;
        println!("  penghubung, adapter {name}: {}", peer.addr);
        targets.push(Target { name, addr: peer.addr, peer: Some(peer) });
    }
    for t in &targets {
        let (status, body) =
            peers::http_get(t.addr, BENCH_PATH).map_err(|e| format!("{}: GET {BENCH_PATH} failed: {e}", t.name))?;
        if status != 200 || body.len() != args.body {
            return Err(format!("{}: GET {BENCH_PATH} answered {status} with {} bytes", t.name, body.len()));
        }
    }
    if tokens.requests() != 1 {
        return Err(format!("the splp gateway asked for {} tokens before the run, not 1", tokens.requests()));
    }
    let load = Load { connections: args.connections, threads: args.load_threads, duration: args.duration };
    let results = measure_rounds(args, &targets, "keep-alive", load, |t, load| {
        loadgen::run(&generator, t.addr, BENCH_PATH, load)
    })?;
    print_proxy_cpu(&targets, &results);
    let (ratios, median_ratio) = paired_ratios(&results, 1, 0);
    let rows = median_rows(&targets, results);
    println!();
    print_markdown_table("adapter", "vs passthrough", &rows, rows[0].stats.requests_per_sec.max(1.0));
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!("  splp vs passthrough, round by round: {} (median {median_ratio:.2}x; goal >= 0.95x)", each.join(", "));
    println!("  token requests in the whole run: {} (the splp adapter ran on its cached token)", tokens.requests());
    drop(targets);
    drop(upstream);
    Ok(())
}

/// Writes a secret file with mode 0600 (the gateway refuses more open ones).
fn write_secret(path: &std::path::Path, value: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `args.rounds` interleaved rounds: in each, every target in turn ([`measure_once`]), in reverse order every
/// other round. Each target's stats, round by round, in the order of `targets`.
fn measure_rounds(
    args: &Args,
    targets: &[Target],
    workload: &str,
    load: Load,
    measure: impl Fn(&Target, Load) -> Result<Stats, String>,
) -> Result<Vec<Vec<Stats>>, String> {
    let mut results: Vec<Vec<Stats>> = vec![Vec::new(); targets.len()];
    println!();
    for round in 1..=args.rounds {
        // Every other round runs the targets in reverse order, so that a drift of the machine's speed during a
        // round (another tenant, the upstream warming up) does not always favour the same target.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let t = &targets[i];
            results[i].push(measure_once(args, round, (workload, "req/s"), t, load, |load| measure(t, load))?);
        }
    }
    Ok(results)
}

/// One target in one round: the warm-up (unless `--warmup 0s`), then the measured run with the gateway's CPU
/// time ([`with_proxy_cpu`]); prints the round's line. `what`: the workload's name and its rate's unit.
fn measure_once(
    args: &Args,
    round: usize,
    (workload, unit): (&str, &str),
    target: &Target,
    load: Load,
    measure: impl Fn(Load) -> Result<Stats, String>,
) -> Result<Stats, String> {
    if !args.warmup.is_zero() {
        measure(Load { duration: args.warmup, ..load })
            .map_err(|e| format!("{} ({workload} warm-up): {e}", target.name))?;
    }
    let stats = with_proxy_cpu(target, || measure(load)).map_err(|e| format!("{} ({workload}): {e}", target.name))?;
    print_round(round, args.rounds, workload, target.name, &stats, unit);
    Ok(stats)
}

fn print_round(round: usize, rounds: usize, workload: &str, target: &str, stats: &Stats, unit: &str) {
    println!(
        "  round {round}/{rounds}: {workload:<10} {target:<10} {:>9.0} {unit:<5}  p50 {:>9}  p99 {:>9}  errors {}{}",
        stats.requests_per_sec,
        report::format_latency(stats.p50),
        report::format_latency(stats.p99),
        stats.errors,
        stats.proxy_cpu_us.map_or(String::new(), |(user, system)| format!(
            "  CPU {:.1} µs/req ({user:.1} user, {system:.1} kernel)",
            user + system
        )),
    );
}

/// Runs one measurement of `target` and, when it is a proxy the harness started, notes the CPU time (all threads
/// and worker processes) it used per completed request meanwhile, in user space and in the kernel.
fn with_proxy_cpu(target: &Target, run: impl FnOnce() -> Result<Stats, String>) -> Result<Stats, String> {
    let cpu = || target.peer.as_ref().and_then(|p| p.guard.cpu_time());
    let before = cpu();
    let mut stats = run()?;
    if let (Some(before), Some(after)) = (before, cpu()) {
        let per_request = |a: std::time::Duration, b: std::time::Duration| {
            a.saturating_sub(b).as_secs_f64() * 1e6 / stats.requests.max(1) as f64
        };
        stats.proxy_cpu_us = Some((per_request(after.user, before.user), per_request(after.system, before.system)));
    }
    Ok(stats)
}

/// One line with each proxy's median CPU per request and its difference to the first of them.
fn print_proxy_cpu(targets: &[Target], results: &[Vec<Stats>]) {
    let measured: Vec<(&str, f64)> =
        (0..targets.len()).filter_map(|i| Some((targets[i].name, median_cpu(results, i)?))).collect();
    let Some(&(_, base)) = measured.first() else { return };
    let cells: Vec<String> = measured
        .iter()
        .enumerate()
        .map(|(i, (name, us))| match i {
            0 => format!("{name} {us:.1} µs"),
            _ => format!("{name} {us:.1} µs ({:+.1})", us - base),
        })
        .collect();
    println!(
        "  proxy CPU per request (user + kernel, all threads and workers; median of rounds): {}",
        cells.join(", ")
    );
}

/// The ratios of target `index` to target `base` round by round (each pair measured back to back, so a slow
/// drift of the machine affects both alike), and their median: steadier than the ratio of two medians.
fn paired_ratios(results: &[Vec<Stats>], index: usize, base: usize) -> (Vec<f64>, f64) {
    let ratios: Vec<f64> = results[index]
        .iter()
        .zip(&results[base])
        .map(|(s, b)| s.requests_per_sec / b.requests_per_sec.max(1.0))
        .collect();
    let median = median(ratios.clone()).unwrap_or(0.0);
    (ratios, median)
}

/// The median over rounds of target `index`'s proxy CPU per request (user + kernel) divided by target `base`'s in
/// the same round; `None` unless both were measured.
fn paired_cpu_ratios(results: &[Vec<Stats>], index: usize, base: usize) -> Option<f64> {
    let total = |s: &Stats| s.proxy_cpu_us.map(|(user, system)| user + system);
    median(
        results[index].iter().zip(&results[base]).filter_map(|(s, b)| Some(total(s)? / total(b)?.max(1e-9))).collect(),
    )
}

/// Round by round, target `index`'s p99 latency against target `base`'s (below 1: a lower tail), and the median.
fn paired_p99_ratios(results: &[Vec<Stats>], index: usize, base: usize) -> (Vec<f64>, f64) {
    let ratios: Vec<f64> = results[index]
        .iter()
        .zip(&results[base])
        .map(|(s, b)| s.p99.as_secs_f64() / b.p99.as_secs_f64().max(1e-9))
        .collect();
    let median = median(ratios.clone()).unwrap_or(0.0);
    (ratios, median)
}

/// The median of `values` (the mean of the two middle ones for an even count), `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// A markdown table of median rows: rate, p50, p99, the rate against `base` (column `ratio`), errors.
fn print_markdown_table(title: &str, ratio: &str, rows: &[Row], base: f64) {
    println!("| {title} | req/s | p50 | p99 | {ratio} | errors |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {} | {} | {:.2}x | {} |",
            r.target,
            r.stats.requests_per_sec,
            report::format_latency(r.stats.p50),
            report::format_latency(r.stats.p99),
            r.stats.requests_per_sec / base,
            r.stats.errors
        );
    }
}

/// The median over rounds of the proxy CPU per request (user + kernel) of target `index`, if measured.
fn median_cpu(results: &[Vec<Stats>], index: usize) -> Option<f64> {
    median(results.get(index)?.iter().filter_map(|s| s.proxy_cpu_us.map(|(user, system)| user + system)).collect())
}

/// Per target, the round with the median rate.
fn median_rows(targets: &[Target], results: Vec<Vec<Stats>>) -> Vec<Row> {
    targets
        .iter()
        .zip(results)
        .map(|(t, mut rounds)| {
            rounds.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
            Row { target: t.name.to_string(), stats: rounds.swap_remove(rounds.len() / 2) }
        })
        .collect()
}
