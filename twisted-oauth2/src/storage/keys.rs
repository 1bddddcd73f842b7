//! Stores for self-contained (JWT) access tokens: the server's signing keys
//! ([`SigningKeyStore`]) and the denylist of revoked token ids ([`RevokedJtiStore`]).
//!
//! Both are extension slots of [`Stores`](super::Stores): a format or the key rotation reads
//! them with `stores.get::<dyn SigningKeyStore>()` and requires them with
//! [`StoresBuilder::require`](super::StoresBuilder::require), so a backend without them is
//! a launch error only when something needs them. Every built-in backend fills both slots
//! when it is given to [`StoresBuilder::backend`](super::StoresBuilder::backend),
//! [`Stores::from_backend`](super::Stores::from_backend) or opened by
//! [`connect`](super::connect).
//!
//! Nothing here knows JOSE: a key is its public JWK as JSON text and its private half
//! *sealed* (encrypted with an AEAD under a key-encryption key the store never sees), so a
//! dump of the store holds no usable credential.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// The longest `jti` a [`RevokedJtiStore`] accepts, in bytes. The server's own token ids
/// are far shorter; a longer one is refused with a [`StorageError`] (bounded input).
pub const MAX_JTI_LEN: usize = 256;

/// One signing key of the server, as a [`SigningKeyStore`] keeps it. Built with
/// [`SigningKeyRecord::new`].
///
/// `(alg, generation)` is unique: the generation is the rotation slot (for instance the
/// number of rotation periods since the epoch), so instances that rotate at the same time
/// race to create one key and [`SigningKeyStore::create_key_if_absent`] picks the winner.
/// `kid` is unique too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SigningKeyRecord {
    /// The key id (the JWS `kid` header and the JWK `kid`).
    pub kid: String,
    /// The JWS algorithm name: `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// The rotation slot; `(alg, generation)` is unique.
    pub generation: i64,
    /// The public key as a JWK, JSON text.
    pub public_jwk: String,
    /// The private key sealed (AEAD) with the key-encryption key; never the plaintext key.
    pub sealed_private: Vec<u8>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The key signs from this time (Unix seconds)…
    pub signs_from: i64,
    /// …until this time.
    pub signs_until: i64,
    /// The key leaves the published key set (JWKS) after this time, and may then be purged
    /// ([`SigningKeyStore::purge_keys`]).
    pub published_until: i64,
}

impl SigningKeyRecord {
    /// A key record from its parts (see the fields).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kid: impl Into<String>,
        alg: impl Into<String>,
        generation: i64,
        public_jwk: impl Into<String>,
        sealed_private: Vec<u8>,
        created_at: i64,
        signs_from: i64,
        signs_until: i64,
        published_until: i64,
    ) -> Self {
        SigningKeyRecord {
            kid: kid.into(),
            alg: alg.into(),
            generation,
            public_jwk: public_jwk.into(),
            sealed_private,
            created_at,
            signs_from,
            signs_until,
            published_until,
        }
    }

    /// Whether the key is still published (in the JWKS) at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        self.published_until > now
    }
}

/// Shows the sealed private key only by its length.
impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("public_jwk", &self.public_jwk)
            .field(
                "sealed_private",
                &format_args!("<{} sealed bytes>", self.sealed_private.len()),
            )
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .field("signs_until", &self.signs_until)
            .field("published_until", &self.published_until)
            .finish()
    }
}

/// The server's signing keys, shared by every instance of one deployment (the extension
/// slot `dyn SigningKeyStore` of [`Stores`](super::Stores)).
///
/// A store keeps records as given and never looks inside `public_jwk` or
/// `sealed_private`. Calls are rare (key rotation, start-up), never per request.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Stores `key` unless a key with the same `(alg, generation)` exists; returns the
    /// stored one (the winner). Atomic on every backend: concurrent callers all get the
    /// same record. A `key` whose `kid` is already used by a key of another
    /// `(alg, generation)` is refused with a [`StorageError`], nothing stored.
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError>;

    /// Every key whose `published_until` is after `now`, ordered by `(signs_from, kid)`.
    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError>;

    /// Deletes keys whose `published_until` is at or before `now`; returns how many.
    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError>;
}

/// The denylist of revoked self-contained tokens by their `jti` (the extension slot
/// `dyn RevokedJtiStore` of [`Stores`](super::Stores)). An entry only has to outlive the
/// token: it is kept until the token's `exp`, then may go.
#[async_trait]
pub trait RevokedJtiStore: Send + Sync + 'static {
    /// Records `jti` as revoked until `exp` (idempotent; the later `exp` wins). A `jti`
    /// longer than [`MAX_JTI_LEN`] bytes is refused with a [`StorageError`] (callers never
    /// pass one).
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError>;

    /// Whether `jti` is revoked with an `exp` after `now`.
    async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError>;

    /// Revoked jtis with `exp` after `now`, at most `limit`, soonest-expiring last (to fill
    /// an instance's in-memory denylist at start: the ones kept longest come first).
    async fn revoked_jtis(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StorageError>;

    /// Deletes entries whose `exp` is at or before `now`; returns how many.
    async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError>;
}

/// A `jti` over [`MAX_JTI_LEN`] bytes.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a jti of {0} bytes is over the limit of {MAX_JTI_LEN}")]
pub struct JtiTooLong(pub usize);

/// Refuses a `jti` over [`MAX_JTI_LEN`] bytes (for store implementations).
pub fn check_jti(jti: &str) -> Result<(), StorageError> {
    if jti.len() > MAX_JTI_LEN {
        return Err(StorageError::other(JtiTooLong(jti.len())));
    }
    Ok(())
}

/// A [`SigningKeyRecord`] whose `kid` is taken by a key of another `(alg, generation)`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the key id is already used by another signing key")]
pub struct KidTaken;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_sealed_key() {
        let k = SigningKeyRecord::new("k1", "EdDSA", 7, "{}", vec![0xAB; 40], 1, 2, 3, 4);
        let shown = format!("{k:?}");
        assert!(shown.contains("<40 sealed bytes>"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(k.is_published(3) && !k.is_published(4));
    }

    #[test]
    fn a_jti_over_the_limit_is_refused() {
        assert!(check_jti(&"a".repeat(MAX_JTI_LEN)).is_ok());
        assert!(check_jti(&"a".repeat(MAX_JTI_LEN + 1)).is_err());
    }
}
