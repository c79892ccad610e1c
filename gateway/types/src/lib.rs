//! The lowest layer of Penghubung: the vocabulary every other crate shares and nothing of the request path.
//! [`config`] is the process config (`penghubung.toml`, with its embedded default), [`documents`] the typed
//! store documents (OPDs, services, clients, grants, tiers), [`diagnostics`] the located problems that `check`,
//! reload and the store report, [`deadline`] the lazily armed timers of the data plane, [`tap`] the watcher a
//! streaming body can carry, and [`embedded`] the baseline policies and JSON Schemas shipped inside the binary;
//! [`nik_shape`] tells whether a value may hold a NIK (pure functions over bytes, shared by the trust boundary
//! and the log sanitiser); [`units`] the human-friendly durations and byte sizes both the config and the
//! documents are written in. It depends on no other Penghubung crate.
#![forbid(unsafe_code)]

pub mod config;
pub mod deadline;
pub mod diagnostics;
pub mod documents;
pub mod embedded;
pub mod nik_shape;
pub mod tap;
pub mod units;
