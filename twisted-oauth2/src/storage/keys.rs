//! Signing keys and the revoked-`jti` denylist (contract A of issue 20): the store traits,
//! always compiled and free of JOSE. Filled in the stores' extension slots
//! (`stores.get::<dyn SigningKeyStore>()`).

use async_trait::async_trait;

use crate::error::StorageError;

/// One stored signing key. Its private half is sealed (AEAD) with the server's
/// key-encryption key, never plaintext.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SigningKeyRecord {
    /// The key id.
    pub kid: String,
    /// The JWS algorithm name: `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// The rotation slot; (`alg`, `generation`) is unique.
    pub generation: i64,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// The private key sealed with the key-encryption key.
    pub sealed_private: Vec<u8>,
    /// When it was created, Unix seconds.
    pub created_at: i64,
    /// When it starts signing.
    pub signs_from: i64,
    /// When it stops signing.
    pub signs_until: i64,
    /// When it leaves the JWKS.
    pub published_until: i64,
}

impl SigningKeyRecord {
    /// A record of these fields.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kid: String,
        alg: String,
        generation: i64,
        public_jwk: String,
        sealed_private: Vec<u8>,
        created_at: i64,
        signs_from: i64,
        signs_until: i64,
        published_until: i64,
    ) -> Self {
        SigningKeyRecord {
            kid,
            alg,
            generation,
            public_jwk,
            sealed_private,
            created_at,
            signs_from,
            signs_until,
            published_until,
        }
    }
}

/// Where generated signing keys are kept.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Stores `key` unless a key with the same (alg, generation) exists; returns the stored
    /// one (the winner). Atomic: concurrent callers all get the same record.
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError>;
    /// Every key whose `published_until` is after `now`, ordered by (signs_from, kid).
    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError>;
    /// Deletes keys whose `published_until` is at or before `now`; how many.
    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError>;
}

/// Signing keys in this process.
#[derive(Debug, Default)]
pub struct MemorySigningKeys(std::sync::Mutex<Vec<SigningKeyRecord>>);

#[async_trait]
impl SigningKeyStore for MemorySigningKeys {
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = v
            .iter()
            .find(|k| k.alg == key.alg && k.generation == key.generation)
        {
            return Ok(k.clone());
        }
        v.push(key.clone());
        Ok(key)
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = v
            .iter()
            .filter(|k| k.published_until > now)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Ok(out)
    }

    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let before = v.len();
        v.retain(|k| k.published_until > now);
        Ok((before - v.len()) as u64)
    }
}
