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
pub mod single_pass;

use std::sync::Arc;

use jsonschema::Validator;

pub use error::ContractError;

/// The custom `format` checks registered on every contract validator (the reference types).
pub const FORMATS: &[(&str, formats::FormatCheck)] = formats::FORMATS;

/// One compiled contract schema: the full validator, and the single-pass one when the schema stays within its
/// keywords.
#[derive(Debug)]
pub struct Schema {
    /// Decides every body the single pass does not accept, and names the violations.
    pub full: Validator,
    /// Accepts valid bodies without building a document tree; `None` when the schema uses keywords outside its
    /// subset.
    pub single_pass: Option<single_pass::SinglePass>,
    /// The nesting limit of a body (`limits.max_json_depth`), the same whichever validator decides.
    pub max_depth: usize,
}

impl Schema {
    /// Whether the single pass accepts `body` (`false`: the full validator must decide).
    pub fn accepts_in_single_pass(&self, body: &[u8]) -> bool {
        self.single_pass.as_ref().is_some_and(|pass| pass.accepts(body, self.max_depth))
    }
}

/// The compiled contract of one operation.
#[derive(Debug, Default)]
pub struct OperationContract {
    /// Body schema and the media type the body must have.
    pub request: Option<(Arc<Schema>, Arc<str>)>,
    pub query: Option<Arc<Schema>>,
    /// By status; 0 stands for `default`.
    pub responses: Vec<(u16, Arc<Schema>)>,
}

impl OperationContract {
    /// The response schema for `status` (exact, else `default`).
    pub fn response_for(&self, status: u16) -> Option<&Schema> {
        let exact = self.responses.iter().find(|(s, _)| *s == status);
        exact.or_else(|| self.responses.iter().find(|(s, _)| *s == 0)).map(|(_, v)| &**v)
    }

    pub fn is_empty(&self) -> bool {
        self.request.is_none() && self.query.is_none() && self.responses.is_empty()
    }
}

/// One way an instance violates its schema: where, which keyword, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer into the instance (`/anggota/0/nik`); empty for the whole document.
    pub pointer: String,
    /// The schema keyword that failed (`required`, `format`, `pattern`, ...).
    pub keyword: String,
    /// What is wrong; omitted for responses (it may quote upstream data the caller may not see).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}
