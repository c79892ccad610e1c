//! One way an instance violates its schema, as the full validator names it and a problem response lists it.

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
