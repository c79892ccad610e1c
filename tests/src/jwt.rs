//! National callers' bearer tokens: signing keys (RS256 from the fixture keys, ES256 generated per test), tokens
//! signed here with any header and claims (also the malicious ones: `alg: none`, HS256 keyed with an RSA public
//! key), and a real JWKS server on `127.0.0.1:0` whose key set a test rotates, or breaks, while it runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Response, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use crate::{full, Upstream};

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A key that signs tokens, with its key id.
pub enum SigningKey {
    Rs256 { kid: String, key: RsaKeyPair },
    Es256 { kid: String, key: EcdsaKeyPair },
}

impl SigningKey {
    /// The fixture RSA key `name` (`rsa-a`, `rsa-b`) under key id `kid`.
    pub fn rsa(name: &str, kid: &str) -> SigningKey {
        use rustls::pki_types::pem::PemObject;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/jwt/{name}.pem"));
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_file(&path).unwrap();
        SigningKey::Rs256 { kid: kid.into(), key: RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap() }
    }

    /// A new P-256 key under key id `kid`.
    pub fn ec(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        SigningKey::Es256 { kid: kid.into(), key: EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap() }
    }

    pub fn kid(&self) -> &str {
        match self {
            SigningKey::Rs256 { kid, .. } | SigningKey::Es256 { kid, .. } => kid,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            SigningKey::Rs256 { .. } => "RS256",
            SigningKey::Es256 { .. } => "ES256",
        }
    }

    /// The RSA modulus (big-endian), for the key-confusion attack.
    pub fn rsa_modulus(&self) -> Vec<u8> {
        match self {
            SigningKey::Rs256 { key, .. } => {
                let components: ring::rsa::PublicKeyComponents<Vec<u8>> = key.public().into();
                components.n
            }
            SigningKey::Es256 { .. } => panic!("not an RSA key"),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match self {
            SigningKey::Rs256 { kid, key } => {
                let components: ring::rsa::PublicKeyComponents<Vec<u8>> = key.public().into();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&components.n), "e": b64(&components.e)})
            }
            SigningKey::Es256 { kid, key } => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        }
    }

    /// A token with the usual header (`alg`, `kid`, `typ`) and `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"}), claims)
    }

    /// A token with any header, signed by this key.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let signature = match self {
            SigningKey::Rs256 { key, .. } => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out).unwrap();
                out
            }
            SigningKey::Es256 { key, .. } => key.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned_token(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// An HS256 token whose HMAC key is `secret` (the key-confusion attack passes an RSA public key here).
pub fn hs256_token(kid: &str, secret: &[u8], claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A real JWKS endpoint: serves the current key set at any path, counts its requests, and answers 500 while
/// broken.
pub struct JwksServer {
    pub upstream: Upstream,
    keys: Arc<Mutex<Value>>,
    broken: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves the public keys of `keys`.
    pub async fn start(keys: &[&SigningKey]) -> JwksServer {
        let set = Arc::new(Mutex::new(Self::set_of(keys)));
        let broken = Arc::new(AtomicBool::new(false));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (s, b, f) = (Arc::clone(&set), Arc::clone(&broken), Arc::clone(&fetches));
        let upstream = Upstream::start(move |_req| {
            let (set, broken, fetches) = (Arc::clone(&s), Arc::clone(&b), Arc::clone(&f));
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                if broken.load(Ordering::SeqCst) {
                    let mut response = Response::new(full("down"));
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return response;
                }
                let body = set.lock().unwrap().to_string();
                let mut response = Response::new(full(body));
                response.headers_mut().insert("content-type", "application/jwk-set+json".parse().unwrap());
                response
            }
        })
        .await;
        JwksServer { upstream, keys: set, broken, fetches }
    }

    fn set_of(keys: &[&SigningKey]) -> Value {
        json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
    }

    /// The issuer rotates: from now on the set holds `keys` only.
    pub fn rotate(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = Self::set_of(keys);
    }

    /// Answers 500 (`true`) or the key set again (`false`).
    pub fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
    }

    /// How many times the gateway fetched the set.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.upstream.url())
    }
}

/// The `[[jwt_issuers]]` entry of the test issuer `splp`, fetching keys from `jwks_url`; `extra` adds settings.
pub fn issuer_section(jwks_url: &str, extra: &str) -> String {
    format!(
        "[[jwt_issuers]]\nname = \"splp\"\nissuer = \"{ISSUER}\"\naudiences = [\"{AUDIENCE}\"]\njwks_url = \"{jwks_url}\"\nalgorithms = [\"RS256\", \"ES256\"]\nmax_clock_skew = \"60s\"\n{extra}\n"
    )
}

/// The test issuer's `iss`.
pub const ISSUER: &str = "https://splp.test.go.id/oauth2/token";
/// The gateway's audience.
pub const AUDIENCE: &str = "penghubung-lampung-timur";

/// Claims the test issuer would put in a token for `subject`, valid for ten minutes.
pub fn claims(subject: &str) -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now, "exp": now + 600, "jti": format!("{}", fastrand::u64(..))})
}
