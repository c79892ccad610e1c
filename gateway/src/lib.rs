//! Penghubung: a *Sistem Penghubung Layanan* (service integration gateway) for Indonesian regional
//! governments. This crate is the top of the workspace: the `penghubung` binary and its commands (the CLI, the
//! demo, `check`, the security team's store changes, the CA commands, OpenAPI import, `policy explain`). The
//! data plane lives in the crates below it, which this library re-exports under their concern's name for
//! embedding and tests; `ARCHITECTURE.md` at the repository root draws them and their order.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_client;
pub mod admin_commands;
pub mod cli;
pub mod demo;
mod demo_admin;
mod exit;
pub mod init;
pub mod report;
pub mod shipped;

pub use penghubung_manage::workspace as manage;
pub use penghubung_manage::{ca, check, explain, openapi};

pub use penghubung_adapters as adapters;
pub use penghubung_audit as audit;
pub use penghubung_console as console;
pub use penghubung_contract as contract;
pub use penghubung_http1 as http1;
pub use penghubung_manage as management;
pub use penghubung_pipeline as pipeline;
pub use penghubung_pipeline::{body, discovery, error};
pub use penghubung_policy as policy;
pub use penghubung_ratelimit as ratelimit;
/// The usage report library (`penghubung report usage` is [`report`]).
pub use penghubung_report as reports;
pub use penghubung_routing as routing;
pub use penghubung_server as server;
pub use penghubung_server::{reload, telemetry};
pub use penghubung_snapshot as snapshot;
pub use penghubung_snapshot::store;
pub use penghubung_tls as tls;
pub use penghubung_types as types;
pub use penghubung_types::config::Config;
pub use penghubung_types::embedded::baseline_policies;
pub use penghubung_types::{config, deadline, diagnostics};
pub use penghubung_upstream as upstream;
pub use server::{Gateway, ShutdownOutcome, Signals, StartError};
