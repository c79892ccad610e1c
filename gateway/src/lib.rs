//! Penghubung: a *Sistem Penghubung Layanan* (service integration gateway) for Indonesian regional
//! governments. OPD applications call each other's services through it; it routes, checks and forwards every
//! call, reading one immutable [`snapshot::Snapshot`] compiled from the documents in the store.
//!
//! Module map (see `ARCHITECTURE.md`): [`config`] process config, [`store`] documents, [`snapshot`] compiled view,
//! [`contract`] JSON Schema contracts, [`discovery`] what a client may call,
//! [`routing`] path lookup, [`tls`] mTLS material, client identity and upstream TLS, [`ca`] the built-in CA,
//! [`openapi`] OpenAPI import (tooling),
//! [`proxy`] upstream forwarding and connection pools, [`ratelimit`] rate limits and
//! quotas (local or Redis), [`error`] the one error→response mapping, [`pipeline`] the
//! request pipeline as named phases, [`body`] the response body it sends, [`policy`] the access decision
//! (grants, purposes, lifecycle, clearance, field redaction), [`server`] listeners, signals and graceful
//! shutdown, [`reload`] hot reload, [`check`] `penghubung check`, [`manage`] the security team's store changes,
//! [`demo`] the one-command demo, [`cli`] the command line, [`telemetry`] logging, [`audit`] the
//! tamper-evident audit trail.
#![forbid(unsafe_code)]

pub mod audit;
pub mod body;
pub mod ca;
pub mod check;
pub mod cli;
pub mod contract;
pub mod demo;
pub mod discovery;
pub mod error;
pub mod explain;
mod exit;
pub mod http1;
pub mod manage;
pub mod openapi;
pub mod pipeline;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use penghubung_types::config::Config;
pub use penghubung_types::embedded::baseline_policies;
pub use penghubung_types::{config, deadline, diagnostics};
pub use server::{Gateway, ShutdownOutcome, Signals, StartError};
