//! Contracts: every operation may name JSON Schemas (2020-12) for its request body, its query parameters and its
//! responses by status. They are compiled once per snapshot ([`compile`]) against the store's schemas and the
//! reference types shipped in `schemas/ref/`, whose semantic checks are the custom formats of [`formats`] (NIK,
//! NIP, kode wilayah, NPWP, NIB, phone numbers); nothing is ever fetched: a remote `$ref` is a load error.
//! Every body is read strictly ([`json`]: no duplicate keys, one nesting limit, exact numbers) before either
//! validator judges it. [`check`] holds a request or a response to its contract on the data plane, accepting
//! most valid bodies in a [`single_pass`] (validated while parsed, no document tree) and leaving every other
//! body to the full validator, which decides and names the violations; a refused request is a
//! [`ContractError`]. [`export`] writes a service as the gateway enforces it as an OpenAPI 3.1 document
//! (discovery); importing OpenAPI documents is tooling, outside the data plane.
#![forbid(unsafe_code)]

pub mod check;
pub mod compile;
mod error;
pub mod export;
pub mod formats;
pub mod json;
pub mod multiple_of;
mod schema;
pub mod single_pass;
mod violation;

pub use error::ContractError;
pub use schema::{OperationContract, Schema};
pub use violation::Violation;

/// The custom `format` checks registered on every contract validator (the reference types).
pub const FORMATS: &[(&str, formats::FormatCheck)] = formats::FORMATS;
