//! Penghubung's management plane: the operations the Dinas's operators perform on the gateway's store
//! ([`Manager`]), who may perform them ([`access`]: the authenticated [`Actor`], every [`Operation`] and the one
//! permission table), the shapes of the changes ([`change`]) and their errors ([`error`]). Every write is
//! checked against the whole resulting store, recorded in the store's journal (who, when, why, the digests
//! before and after) and can be looked back on and rolled back; [`backup`] exports the store as a signed
//! bundle and verifies one before an import; [`migrate`] moves a folder store into Redis and back. The tooling shared with the command line lives here too: the
//! whole-store check ([`check`]), the built-in CA ([`ca`]), OpenAPI import ([`openapi`], [`import`]),
//! `policy explain` ([`explain`]), the console's sign-in credentials ([`credentials`], [`totp`]) and the command line's local store changes ([`workspace`]). The admin API
//! (`penghubung-admin`) and the CLI are its clients; nothing on the data plane uses it.
#![forbid(unsafe_code)]

pub mod access;
pub mod backup;
pub mod ca;
pub mod change;
pub mod check;
pub mod credentials;
pub mod error;
pub mod explain;
mod history;
pub mod import;
mod manager;
pub mod migrate;
pub mod openapi;
mod plan;
pub mod stored;
pub mod totp;
pub mod workspace;

pub use access::{authorize, authorize_own, roles_for, Actor, Operation, PERMISSIONS};
pub use change::{Applied, Change, ChangeRequest, HistoryEntry, Kind, Versioned};
pub use credentials::{Credentials, LoginFailure, TotpEnrolment};
pub use error::ManageError;
pub use manager::{now_rfc3339, Manager};
pub use penghubung_policy::lifecycle::ApprovalKind;
pub use penghubung_types::config::Config;
pub use penghubung_types::documents::{OperatorDoc, OperatorIdentityDoc, Role};
pub use plan::{needs_reason, operation_of, MAX_CERTIFICATE_DAYS};
