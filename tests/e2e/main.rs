//! End-to-end tests of Penghubung over real sockets: one test binary, one module per capability.

mod adapters;
mod admin_api;
mod audit;
mod browser;
mod cli;
mod connections;
mod console;
mod console_http;
mod contracts;
mod first_day;
mod forwarding;
mod http1_server;
mod jwt;
mod mtls;
mod national;
mod policy;
mod ratelimit;
mod reload;
mod routing;
mod sanitise;
mod shutdown;
mod streaming;
mod trust_boundary;
mod upstream_failures;
mod upstream_hygiene;
