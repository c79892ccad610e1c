//! The gateway's audit keys: the Ed25519 key that signs checkpoints (private key PKCS#8 in PEM, mode 0600;
//! public key SubjectPublicKeyInfo in PEM, readable by `openssl pkey -pubin`), and the HMAC secret used to
//! store keyed hashes of personal identifiers (NIK) instead of the identifiers themselves.

use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::chain::{hex, unhex};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A problem with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.display().to_string(), source }
}

fn invalid(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Invalid { path: path.display().to_string(), reason: reason.into() }
}

/// The private key that signs checkpoints.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    /// First 16 hex digits of the SHA-256 of the public key: names the key in checkpoints.
    pub key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key.
    pub fn read(path: &Path) -> Result<SigningKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let der = pem_decode(&text, "PRIVATE KEY").ok_or_else(|| invalid(path, "not a PEM PRIVATE KEY"))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| invalid(path, format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, key_id })
    }

    /// Signs `message`; the signature in hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex(self.pair.sign(message).as_ref())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { raw, key_id: self.key_id.clone() }
    }
}

/// The public key a third party verifies checkpoints with.
#[derive(Clone, Debug)]
pub struct PublicKey {
    raw: [u8; 32],
    pub key_id: String,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM public key.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let der = pem_decode(&text, "PUBLIC KEY").ok_or_else(|| invalid(path, "not a PEM PUBLIC KEY"))?;
        let raw = der
            .strip_prefix(&SPKI_PREFIX[..])
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| invalid(path, "not an Ed25519 public key"))?;
        Ok(PublicKey { raw, key_id: key_id(&raw) })
    }

    /// Whether `signature_hex` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> bool {
        let Some(signature) = unhex(signature_hex) else { return false };
        UnparsedPublicKey::new(&signature::ED25519, &self.raw).verify(message, &signature).is_ok()
    }

    /// The PEM text.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem_encode(&der, "PUBLIC KEY")
    }
}

/// What a checkpoint signs: its sequence number and the hash of the record before it, which commits to the
/// whole chain up to there.
pub fn checkpoint_message(seq: u64, prev: &str) -> Vec<u8> {
    format!("penghubung-audit-checkpoint:v1:{seq}:{prev}").into_bytes()
}

fn key_id(public: &[u8]) -> String {
    hex(&ring::digest::digest(&ring::digest::SHA256, public).as_ref()[..8])
}

/// Writes a new key pair: `private` (0600) and `public`. Refuses to overwrite an existing private key.
pub fn generate(private: &Path, public: &Path) -> Result<SigningKey, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| invalid(private, format!("key generation: {e}")))?;
    write_secret(private, pem_encode(pkcs8.as_ref(), "PRIVATE KEY").as_bytes())?;
    let key = SigningKey::read(private)?;
    if let Some(dir) = public.parent() {
        std::fs::create_dir_all(dir).map_err(io(public))?;
    }
    std::fs::write(public, key.public().to_pem()).map_err(io(public))?;
    Ok(key)
}

/// Reads the signing key, generating the pair first when `generate_if_missing` and the private key is absent.
/// Returns the key and whether it was created.
pub fn load_or_generate(
    private: &Path,
    public: &Path,
    generate_if_missing: bool,
) -> Result<(SigningKey, bool), KeyError> {
    if !private.exists() && generate_if_missing {
        return Ok((generate(private, public)?, true));
    }
    let key = SigningKey::read(private)?;
    if !public.exists() {
        std::fs::write(public, key.public().to_pem()).map_err(io(public))?;
    }
    Ok((key, false))
}

/// Reads the HMAC secret (hex text), generating 32 random bytes (0600) when missing and allowed.
pub fn load_or_generate_secret(path: &Path, generate_if_missing: bool) -> Result<ring::hmac::Key, KeyError> {
    if !path.exists() && generate_if_missing {
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret).map_err(|_| invalid(path, "no randomness"))?;
        write_secret(path, format!("{}\n", hex(&secret)).as_bytes())?;
    }
    read_secret(path)
}

/// Reads an HMAC secret file: hex text (at least 16 bytes).
pub fn read_secret(path: &Path) -> Result<ring::hmac::Key, KeyError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let secret = unhex(text.trim())
        .filter(|s| s.len() >= 16)
        .ok_or_else(|| invalid(path, "the secret must be hex text of at least 16 bytes (32 hex digits)"))?;
    Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(path))?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(path))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn pem_encode(der: &[u8], label: &str) -> String {
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.split(&begin).nth(1)?.split(&end).next()?;
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k/audit.key"), dir.path().join("k/audit.pub"));
        let (key, created) = load_or_generate(&private, &public, true).unwrap();
        assert!(created);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&private).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let public_key = PublicKey::read(&public).unwrap();
        assert_eq!(public_key.key_id, key.key_id);
        let signature = key.sign(b"hello");
        assert!(public_key.verify(b"hello", &signature));
        assert!(!public_key.verify(b"hellO", &signature));
        let (again, created) = load_or_generate(&private, &public, true).unwrap();
        assert!(!created);
        assert_eq!(again.key_id, key.key_id);
        let secret = load_or_generate_secret(&dir.path().join("k/nik.secret"), true).unwrap();
        let again = read_secret(&dir.path().join("k/nik.secret")).unwrap();
        assert_eq!(ring::hmac::sign(&secret, b"x").as_ref(), ring::hmac::sign(&again, b"x").as_ref());
    }
}
