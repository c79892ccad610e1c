//! The console's sign-in credentials of operators who have no certificate in their browser: an argon2id
//! password hash (a PHC string) and a TOTP secret (RFC 6238), one file per operator in the credentials folder
//! (`[console] credentials_dir`, default `console-credentials` beside the store), mode 0600 in a 0700 folder.
//!
//! They are kept out of the store on purpose: the store's documents are journaled in full, exported in clear
//! in the signed bundle, answered by the API and shown in a history; a credential must be in none of those. The
//! files are written atomically (a temporary file renamed over the old one) and never logged; the TOTP secret
//! leaves the server once, in the enrolment answer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::ManageError;
use crate::totp;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (argon2 takes any length; this bounds the work a request asks for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// One operator's credentials file.
#[derive(Clone, Default, Deserialize, Serialize)]
struct Stored {
    /// argon2id PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// Base32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp_secret: Option<String>,
    /// The step of the last code accepted (a code is accepted once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp_last_step: Option<u64>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why a password + TOTP sign-in failed (recorded in the audit trail; the person signing in sees one message
/// for all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    UnknownUser,
    Disabled,
    /// The operator has no password or no TOTP secret enrolled.
    NoCredentials,
    WrongPassword,
    WrongTotp,
    /// The TOTP code was right but already used.
    ReplayedTotp,
    /// The credentials could not be read.
    Unavailable,
}

impl LoginFailure {
    /// The reason as the audit record writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::Disabled => "disabled",
            LoginFailure::NoCredentials => "no_credentials",
            LoginFailure::WrongPassword => "wrong_password",
            LoginFailure::WrongTotp => "wrong_totp",
            LoginFailure::ReplayedTotp => "replayed_totp",
            LoginFailure::Unavailable => "unavailable",
        }
    }
}

/// A TOTP enrolment: the secret and its `otpauth://` URI, answered once.
#[derive(Clone, Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(<secret>)")
    }
}

/// The credentials folder.
pub struct Credentials {
    dir: PathBuf,
    /// Held for each read-modify-write of a file (the TOTP replay step, an enrolment).
    writing: Mutex<()>,
}

impl Credentials {
    pub fn new(dir: PathBuf) -> Credentials {
        Credentials { dir, writing: Mutex::new(()) }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, operator: &str) -> Result<PathBuf, ManageError> {
        let slug = !operator.is_empty()
            && operator.len() <= 64
            && operator.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && !operator.starts_with('-');
        if !slug {
            return Err(ManageError::bad_request(format!("`{}` is not an operator id", operator.escape_debug())));
        }
        Ok(self.dir.join(format!("{operator}.json")))
    }

    fn read(&self, operator: &str) -> Result<Stored, ManageError> {
        let path = self.path(operator)?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ManageError::unavailable(format!("the credentials of `{operator}` cannot be read: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
            Err(e) => Err(ManageError::unavailable(format!("the credentials of `{operator}` cannot be read: {e}"))),
        }
    }

    fn write(&self, operator: &str, stored: &Stored) -> Result<(), ManageError> {
        let path = self.path(operator)?;
        let failed = |e: std::io::Error| ManageError::unavailable(format!("the credentials folder: {e}"));
        create_private_dir(&self.dir).map_err(failed)?;
        let bytes = serde_json::to_vec(stored).map_err(|e| ManageError::unavailable(e.to_string()))?;
        let temporary = self.dir.join(format!(".{operator}.json.{}", fastrand::u64(..)));
        write_private(&temporary, &bytes).map_err(failed)?;
        std::fs::rename(&temporary, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            failed(e)
        })
    }

    /// Sets the operator's password (the caller checked the operator exists and may be changed by the actor).
    pub fn set_password(&self, operator: &str, password: &str) -> Result<(), ManageError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut stored = self.read(operator)?;
        stored.password = Some(hash);
        self.write(operator, &stored)
    }

    /// Sets a TOTP secret (raw bytes), replacing any before; the replay step starts afresh.
    pub fn set_totp_secret(&self, operator: &str, secret: &[u8]) -> Result<(), ManageError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut stored = self.read(operator)?;
        stored.totp_secret = Some(totp::base32_encode(secret));
        stored.totp_last_step = None;
        self.write(operator, &stored)
    }

    /// A new random TOTP secret for the operator, replacing any before.
    pub fn enrol_totp(&self, operator: &str) -> Result<TotpEnrolment, ManageError> {
        let mut secret = [0u8; totp::SECRET_BYTES];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| ManageError::unavailable("no randomness for a TOTP secret"))?;
        self.set_totp_secret(operator, &secret)?;
        let base32 = totp::base32_encode(&secret);
        Ok(TotpEnrolment { uri: totp::otpauth_uri("Penghubung", operator, &base32), secret: base32 })
    }

    /// Checks a password and a TOTP code at `unix_seconds`; on success the code's step is spent. The password
    /// is checked (argon2id, the slow part) even for an operator with no credentials, against a fixed hash, so
    /// that timing tells nothing.
    pub fn verify(&self, operator: &str, password: &str, code: &str, unix_seconds: u64) -> Result<(), LoginFailure> {
        let stored = self.read(operator).map_err(|_| LoginFailure::Unavailable)?;
        let password_ok = verify_password(stored.password.as_deref(), password);
        let (Some(_), Some(secret)) = (&stored.password, &stored.totp_secret) else {
            return Err(LoginFailure::NoCredentials);
        };
        if !password_ok {
            return Err(LoginFailure::WrongPassword);
        }
        let secret = totp::base32_decode(secret).ok_or(LoginFailure::Unavailable)?;
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        // Read again under the lock: two sign-ins with one code race for the same step.
        let mut stored = self.read(operator).map_err(|_| LoginFailure::Unavailable)?;
        let Some(step) = totp::verify(&secret, code, unix_seconds, None) else {
            return Err(LoginFailure::WrongTotp);
        };
        if stored.totp_last_step.is_some_and(|last| step <= last) {
            return Err(LoginFailure::ReplayedTotp);
        }
        stored.totp_last_step = Some(step);
        self.write(operator, &stored).map_err(|_| LoginFailure::Unavailable)
    }

    /// A password checked in full without an operator (an unknown username costs the same as a known one).
    pub fn burn(password: &str) {
        let _ = verify_password(None, password);
    }
}

/// A password the console accepts: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes, no control characters.
pub fn check_password(password: &str) -> Result<(), ManageError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ManageError::bad_request(format!("a password has at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ManageError::bad_request(format!("a password has at most {MAX_PASSWORD_BYTES} bytes")));
    }
    if password.chars().any(char::is_control) {
        return Err(ManageError::bad_request("a password may not hold control characters"));
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh 16-byte salt (argon2's default cost: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, ManageError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| ManageError::unavailable("no randomness for a salt"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ManageError::unavailable(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ManageError::unavailable(format!("hashing the password: {e}")))
}

/// Whether `password` matches `hash` (a fixed hash of nothing when `None`, always false, same cost).
fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("penghubung-no-such-operator").unwrap_or_default());
    let (phc, real) = match hash {
        Some(hash) => (hash, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_and_a_code_sign_in_once() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(dir.path().join("creds"));
        let now = 1_800_000_000;
        assert_eq!(credentials.verify("ani", "x", "000000", now), Err(LoginFailure::NoCredentials));
        assert!(credentials.set_password("ani", "short").is_err(), "at least 12 characters");
        credentials.set_password("ani", "kata-sandi-panjang").unwrap();
        credentials.set_totp_secret("ani", b"12345678901234567890").unwrap();
        let code = totp::code_at(b"12345678901234567890", now);
        assert_eq!(credentials.verify("ani", "wrong-password!", &code, now), Err(LoginFailure::WrongPassword));
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(credentials.verify("ani", "kata-sandi-panjang", &wrong, now), Err(LoginFailure::WrongTotp));
        assert_eq!(credentials.verify("ani", "kata-sandi-panjang", &code, now), Ok(()));
        assert_eq!(credentials.verify("ani", "kata-sandi-panjang", &code, now), Err(LoginFailure::ReplayedTotp));

        let text = std::fs::read_to_string(dir.path().join("creds/ani.json")).unwrap();
        assert!(text.contains("$argon2id$v=19$"), "{text}");
        assert!(!text.contains("kata-sandi-panjang"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("creds/ani.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("creds")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert!(credentials.set_password("../etc", "kata-sandi-panjang").is_err(), "ids are slugs");
    }
}
