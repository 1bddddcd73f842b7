//! Token values: generation ([`TokenGenerator`]), the digest stores key them by
//! ([`TokenDigest`]) and the token endpoint's success body ([`TokenResponse`], RFC 6749 §5.1).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StorageError;

/// What a generated value is for; a generator may use it to pick formats or prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
    /// An authorization code.
    Code,
    /// A pending authorization request handle or a CSRF token.
    Handle,
    /// An internal grant identifier.
    Grant,
}

/// Creates token values (txoauth2's `TokenFactory`). Every value a generator returns is
/// checked against the RFC 6750 `b64token` syntax before use; a value that fails is a
/// `server_error`, never sent.
pub trait TokenGenerator: Send + Sync + 'static {
    /// A fresh, unguessable value.
    fn generate(&self, kind: TokenKind) -> Result<String, StorageError>;
}

/// The default generator: 256 bits from the operating system's RNG, base64url without
/// padding (43 characters).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomTokenGenerator;

impl TokenGenerator for RandomTokenGenerator {
    fn generate(&self, _kind: TokenKind) -> Result<String, StorageError> {
        let mut buf = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| StorageError::other(std::io::Error::other(e.to_string())))?;
        Ok(URL_SAFE_NO_PAD.encode(buf))
    }
}

/// A deterministic generator for tests: `<kind>-<n>` (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[derive(Debug, Default)]
pub struct SequentialTokenGenerator(std::sync::atomic::AtomicU64);

#[cfg(any(test, feature = "test-util"))]
impl TokenGenerator for SequentialTokenGenerator {
    fn generate(&self, kind: TokenKind) -> Result<String, StorageError> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let k = match kind {
            TokenKind::Access => "at",
            TokenKind::Refresh => "rt",
            TokenKind::Code => "code",
            TokenKind::Handle => "h",
            TokenKind::Grant => "g",
        };
        Ok(format!("{k}-{n}"))
    }
}

/// Whether `s` matches RFC 6750 §2.1 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The SHA-256 digest of a token, code or handle: what stores keep instead of the value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenDigest(pub(crate) [u8; 32]);

/// Hashes as its first eight bytes: a SHA-256 output is already uniformly distributed, so
/// hash maps keyed by digests need no further hashing.
impl std::hash::Hash for TokenDigest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// A [`std::hash::Hasher`] for keys that are already uniformly random ([`TokenDigest`],
/// random grant ids): it keeps the last `u64`/`u128` written, folded to 64 bits. Other
/// writes fall back to FNV-1a so it stays correct for any key.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

/// Builds [`DigestHasher`]s.
pub(crate) type BuildDigestHasher = std::hash::BuildHasherDefault<DigestHasher>;

impl TokenDigest {
    /// A digest from its 32 bytes (as a store keeps it).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenDigest(bytes)
    }

    /// The 32 bytes of the digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Digests a presented value.
    pub fn of(value: &str) -> Self {
        TokenDigest(Sha256::digest(value.as_bytes()).into())
    }

    /// Lowercase hex, for keys in external stores.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        s
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but keep logs short.
        write!(f, "TokenDigest({}..)", &self.to_hex()[..8])
    }
}

/// An access token type (RFC 6749 §7.1): how the token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TokenType {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449): bound to a proof-of-possession key.
    #[serde(rename = "DPoP")]
    DPoP,
}

impl TokenType {
    /// The `token_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "Bearer",
            TokenType::DPoP => "DPoP",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for TokenType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The successful token response (RFC 6749 §5.1). Built with [`TokenResponse::new`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// How the token is presented: `Bearer` unless a format binds it (`DPoP`).
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// A refresh token, when one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope.
    pub scope: String,
    /// Members added by a grant (RFC 6749 §5.1 allows more); never one of the above.
    #[serde(flatten)]
    pub members: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// A `Bearer` response with this access token, lifetime in seconds and scope.
    pub fn new(access_token: String, expires_in: i64, scope: String) -> Self {
        TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: Some(expires_in),
            refresh_token: None,
            scope,
            members: serde_json::Map::new(),
        }
    }

    /// Adds a member; the registered members (`access_token`, `token_type`, `expires_in`,
    /// `refresh_token`, `scope`) are not overridden.
    pub fn member(mut self, name: String, value: serde_json::Value) -> Self {
        const REGISTERED: &[&str] = &[
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope",
        ];
        if !REGISTERED.contains(&name.as_str()) {
            self.members.insert(name, value);
        }
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tokens_are_256_bit_b64token_rfc6750_2_1() {
        let g = RandomTokenGenerator;
        let a = g.generate(TokenKind::Access).unwrap();
        let b = g.generate(TokenKind::Access).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(is_b64token(&a));
    }

    #[test]
    fn b64token_syntax() {
        assert!(is_b64token("abc.DEF-_~+/=="));
        assert!(!is_b64token(""));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
        assert!(!is_b64token("a,b"));
    }

    #[test]
    fn digest_hex_is_sha256() {
        assert_eq!(
            TokenDigest::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn token_response_omits_absent_fields_rfc6749_5_1() {
        let r = TokenResponse::new("t".into(), 3600, "a".into());
        assert_eq!(
            r.to_json(),
            r#"{"access_token":"t","token_type":"Bearer","expires_in":3600,"scope":"a"}"#
        );
        assert!(!format!("{r:?}").contains("\"t\""));
        let r = r
            .member("authorization_details".into(), serde_json::json!([]))
            .member("token_type".into(), serde_json::json!("DPoP"));
        assert_eq!(
            r.to_json(),
            r#"{"access_token":"t","token_type":"Bearer","expires_in":3600,"scope":"a","authorization_details":[]}"#
        );
    }
}
