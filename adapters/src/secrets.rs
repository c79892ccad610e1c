//! The credentials the gateway holds for national systems, kept apart from the store's documents: a document
//! names a secret (`{ secret = "splp-consumer-key" }`), never holds its value.
//!
//! A secret comes from the environment variable the config maps its name to (`[secrets] env`), else from the
//! file `<dir>/<name>` (`[secrets] dir`), which must be a regular file readable by its owner only (mode 0600 or
//! 0400). A file is read again when it changes (its modification time or length, checked at most once a
//! second), so a credential can be rotated without a restart. A [`SecretValue`] never shows its value through
//! `Debug` or `Display` (`[redacted]`), and its bytes are overwritten when the last copy is dropped.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a file secret is trusted before its file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// A secret's value. Cheap to clone (shared); shown as `[redacted]`; zeroed when the last clone is dropped.
#[derive(Clone)]
pub struct SecretValue(Arc<Zeroing>);

struct Zeroing(Box<[u8]>);

impl Drop for Zeroing {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            *byte = 0;
        }
        std::hint::black_box(&self.0);
    }
}

impl SecretValue {
    /// A value from text (checked UTF-8 by construction).
    pub fn new(value: &str) -> Self {
        SecretValue(Arc::new(Zeroing(value.as_bytes().into())))
    }

    /// The value, to put into a request. Never log, store or answer with it.
    pub fn expose(&self) -> &str {
        // Built only from `&str` (`new`) or checked UTF-8 (`from_bytes`).
        std::str::from_utf8(&self.0 .0).unwrap_or_default()
    }

    fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        let value = std::str::from_utf8(&bytes).ok().map(Self::new);
        drop(Zeroing(bytes.into_boxed_slice()));
        value
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.0 .0 == other.0 .0
    }
}

/// Why a secret cannot be had. Names the secret and where it was looked for; never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("`{name}` is not a secret name (lower-case letters, digits, `.`, `_` and `-`, at most 128)")]
    InvalidName { name: String },
    #[error("secret `{name}` is not defined: no [secrets] env entry names it and {}", match .dir { Some(dir) => format!("there is no file {}", dir.join(.name).display()), None => "[secrets] dir is not set".to_string() })]
    Undefined { name: String, dir: Option<PathBuf> },
    #[error("secret `{name}` comes from environment variable {variable}, which is not set (or empty)")]
    EnvUnset { name: String, variable: String },
    #[error("secret `{name}`: file {} must be readable by its owner only (mode 0600 or 0400), not {mode:04o}", path.display())]
    InsecureMode { name: String, path: PathBuf, mode: u32 },
    #[error("secret `{name}`: file {} cannot be read: {reason}", path.display())]
    Unreadable { name: String, path: PathBuf, reason: String },
    #[error("secret `{name}` is empty or not UTF-8 text")]
    Empty { name: String },
}

/// The secrets store: where secrets are looked up, and the handles already given out (shared, so that every
/// adapter using a secret sees the same rotation).
#[derive(Clone, Default)]
pub struct Secrets {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    dir: Option<PathBuf>,
    env: BTreeMap<String, String>,
    handles: Mutex<HashMap<String, Secret>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("dir", &self.inner.dir).field("env", &self.inner.env.keys()).finish()
    }
}

impl Secrets {
    /// Secrets from files under `dir` and from the environment variables `env` maps names to.
    pub fn new(dir: Option<PathBuf>, env: BTreeMap<String, String>) -> Self {
        Secrets { inner: Arc::new(Inner { dir, env, handles: Mutex::default() }) }
    }

    /// The directory secret files are read from, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// The current value of secret `name`.
    pub fn get(&self, name: &str) -> Result<SecretValue, SecretError> {
        self.handle(name)?.value()
    }

    /// A handle on secret `name` that reads its current value on [`Secret::value`]; fails now if the secret is
    /// not defined or cannot be read.
    pub fn handle(&self, name: &str) -> Result<Secret, SecretError> {
        if !is_secret_name(name) {
            return Err(SecretError::InvalidName { name: name.to_string() });
        }
        let mut handles = self.inner.handles.lock().unwrap_or_else(|e| e.into_inner());
        let handle = match handles.get(name) {
            Some(handle) => handle.clone(),
            None => {
                let source = match (self.inner.env.get(name), &self.inner.dir) {
                    (Some(variable), _) => Source::Env(variable.clone()),
                    (None, Some(dir)) => Source::File(dir.join(name)),
                    (None, None) => return Err(SecretError::Undefined { name: name.to_string(), dir: None }),
                };
                let handle =
                    Secret { slot: Arc::new(Slot { name: name.to_string(), source, cached: Mutex::default() }) };
                handles.insert(name.to_string(), handle.clone());
                handle
            }
        };
        drop(handles);
        handle.value().map(|_| handle)
    }
}

/// Whether `name` can name a secret (and so a file under the secrets directory: no `/`, no leading `.`).
fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// A handle on one secret (or on a value given in a setting, [`Secret::literal`], for a non-secret credential
/// part such as a client id). Cheap to clone.
#[derive(Clone)]
pub struct Secret {
    slot: Arc<Slot>,
}

struct Slot {
    name: String,
    source: Source,
    cached: Mutex<Option<Cached>>,
}

enum Source {
    Env(String),
    File(PathBuf),
    Literal(SecretValue),
}

struct Cached {
    value: SecretValue,
    modified: Option<SystemTime>,
    len: u64,
    checked: Instant,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.slot.name)
    }
}

impl Secret {
    /// A value that is not secret but is used where a secret may be (a client id written in the settings).
    pub fn literal(value: &str) -> Self {
        let source = Source::Literal(SecretValue::new(value));
        Secret { slot: Arc::new(Slot { name: "(setting)".to_string(), source, cached: Mutex::default() }) }
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The current value: the environment variable's, or the file's as it is now (read again when it changed).
    pub fn value(&self) -> Result<SecretValue, SecretError> {
        let name = &self.slot.name;
        match &self.slot.source {
            Source::Literal(value) => Ok(value.clone()),
            Source::Env(variable) => match std::env::var(variable) {
                Ok(value) if !value.is_empty() => Ok(SecretValue::new(&value)),
                _ => Err(SecretError::EnvUnset { name: name.clone(), variable: variable.clone() }),
            },
            Source::File(path) => {
                let mut cached = self.slot.cached.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if let Some(c) = cached.as_ref().filter(|c| now.duration_since(c.checked) < RECHECK) {
                    return Ok(c.value.clone());
                }
                let fresh = read_file(name, path, cached.as_ref(), now);
                match fresh {
                    Ok(c) => {
                        let value = c.value.clone();
                        *cached = Some(c);
                        Ok(value)
                    }
                    Err(e) => {
                        *cached = None;
                        Err(e)
                    }
                }
            }
        }
    }
}

/// Reads a secret file if it changed since `previous` (else keeps `previous`'s value).
fn read_file(name: &str, path: &Path, previous: Option<&Cached>, now: Instant) -> Result<Cached, SecretError> {
    let unreadable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => {
            SecretError::Undefined { name: name.to_string(), dir: path.parent().map(Path::to_path_buf) }
        }
        _ => SecretError::Unreadable { name: name.to_string(), path: path.to_path_buf(), reason: e.to_string() },
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(SecretError::Unreadable {
            name: name.to_string(),
            path: path.to_path_buf(),
            reason: "not a regular file".to_string(),
        });
    }
    check_mode(name, path, &metadata)?;
    let modified = metadata.modified().ok();
    if let Some(previous) = previous.filter(|p| p.modified == modified && p.len == metadata.len()) {
        return Ok(Cached { value: previous.value.clone(), modified, len: previous.len, checked: now });
    }
    let mut bytes = std::fs::read(path).map_err(unreadable)?;
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    let empty = || SecretError::Empty { name: name.to_string() };
    if bytes.is_empty() {
        return Err(empty());
    }
    let value = SecretValue::from_bytes(bytes).ok_or_else(empty)?;
    Ok(Cached { value, modified, len: metadata.len(), checked: now })
}

#[cfg(unix)]
fn check_mode(name: &str, path: &Path, metadata: &std::fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::InsecureMode { name: name.to_string(), path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &str, _: &Path, _: &std::fs::Metadata) -> Result<(), SecretError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, value: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_value_never_shows_itself() {
        let value = SecretValue::new("s3cr3t-value");
        assert_eq!(format!("{value:?} {value}"), "[redacted] [redacted]");
        assert_eq!(value.expose(), "s3cr3t-value");
        let secrets = Secrets::new(None, BTreeMap::new());
        assert!(!format!("{secrets:?}").contains("s3cr3t"));
    }

    #[test]
    fn files_must_be_private_and_are_read_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bkn-secret", "first\n", 0o600);
        write(dir.path(), "open", "visible", 0o640);
        write(dir.path(), "read-only", "kept\r\n", 0o400);
        write(dir.path(), "blank", "\n", 0o600);
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), BTreeMap::new());
        assert_eq!(secrets.get("bkn-secret").unwrap().expose(), "first", "the trailing newline is not part of it");
        assert_eq!(secrets.get("read-only").unwrap().expose(), "kept");
        let open = secrets.get("open").unwrap_err();
        assert!(matches!(open, SecretError::InsecureMode { mode: 0o640, .. }), "{open:?}");
        assert!(!open.to_string().contains("visible"));
        assert!(matches!(secrets.get("blank"), Err(SecretError::Empty { .. })));
        assert!(matches!(secrets.get("nothing-here"), Err(SecretError::Undefined { .. })));
        for bad in ["../etc/passwd", "a/b", ".hidden", "UPPER", ""] {
            assert!(matches!(secrets.get(bad), Err(SecretError::InvalidName { .. })), "{bad}");
        }

        let handle = secrets.handle("bkn-secret").unwrap();
        write(dir.path(), "bkn-secret", "second-longer\n", 0o600);
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(handle.value().unwrap().expose(), "second-longer", "rotated without a restart");
        std::fs::remove_file(dir.path().join("bkn-secret")).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert!(handle.value().is_err(), "a removed secret is gone, not remembered");
    }

    #[test]
    fn the_environment_mapping_comes_before_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "splp-key", "from-file", 0o600);
        let variable = "PENGHUBUNG_ADAPTERS_UNIT_SPLP_KEY";
        std::env::set_var(variable, "from-env");
        let env = BTreeMap::from([
            ("splp-key".to_string(), variable.to_string()),
            ("unset".to_string(), "PENGHUBUNG_ADAPTERS_UNIT_NEVER_SET".to_string()),
        ]);
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), env);
        assert_eq!(secrets.get("splp-key").unwrap().expose(), "from-env");
        let unset = secrets.get("unset").unwrap_err();
        assert!(unset.to_string().contains("PENGHUBUNG_ADAPTERS_UNIT_NEVER_SET"), "{unset}");
    }
}
