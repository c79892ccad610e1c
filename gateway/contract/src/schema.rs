//! What a contract compiles to: a [`Schema`] (the full validator, and the single-pass one when the schema stays
//! within its keywords), and the [`OperationContract`] of one operation (request body, query, responses).

use std::sync::Arc;

use jsonschema::Validator;

use crate::single_pass;

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
