//! Shared code of Penghubung's benchmarks. Nothing here is timed by itself:
//!
//! * [`corpus`]: the synthetic 1,000-service document set used by the criterion benchmarks in
//!   `benches/routing.rs` (`cargo bench -p penghubung-benches --bench routing`).
//! * [`upstream`], [`peers`], [`loadgen`], [`report`]: the pieces of the load harness `src/bin/load.rs`, which
//!   compares requests/s and latency of direct calls, Penghubung, nginx and haproxy against one upstream
//!   (`cargo build --release -p penghubung && cargo run -p penghubung-benches --release --bin load`).
//! * [`pki`], [`mtls`]: its mTLS modes (`--mode mtls`, `full`, `memory`): certificates from the gateway's
//!   built-in CA, and the hyper + tokio-rustls generators for keep-alive requests (`GET`s, or `POST`s of a body
//!   with extra header fields), full handshakes and held idle connections over mTLS (Penghubung, nginx and
//!   haproxy with `verify required`).
//! * [`raw`]: reading the raw responses of the one-shot probes.
//! * [`token`]: the OAuth2 token endpoint of `load --mode adapter` (the `splp` adapter with a cached token).
//! * [`dukcapil`]: the contract of `benches/contract.rs` and `load --mode contract`: a Dukcapil-like batch
//!   schema on the reference types, and valid and invalid request bodies of an exact size.

pub mod corpus;
pub mod dukcapil;
pub mod loadgen;
pub mod mtls;
pub mod peers;
pub mod pki;
pub mod raw;
pub mod report;
pub mod token;
pub mod upstream;
