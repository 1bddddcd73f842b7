//! Sealing of generated private keys at rest: AES-256-GCM (aws-lc-rs `aead`) under the
//! key-encryption key (KEK) of `oauth2.signing_keys.key_encryption_key`.
//!
//! A sealed blob is `version (1) ‖ id length (1) ‖ KEK id ‖ nonce (12) ‖ ciphertext ‖ tag
//! (16)`. The KEK id names which KEK sealed it, so the KEK can be changed
//! (`retired_key_encryption_keys` unseal the older blobs); it is derived from the KEK by
//! SHA-256 and reveals nothing usable about it. The associated data binds the blob to its
//! record (`kid`, `alg`, generation): a blob copied onto another record does not unseal.
//! Nonces are random (96 bits) from the system generator; a server seals a handful of
//! keys per rotation period, far below the bound for random GCM nonces.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::KeyError;

/// The blob format this module writes.
const VERSION: u8 = 1;
/// Bytes of a KEK.
pub(crate) const KEK_LEN: usize = 32;
/// Bytes of the GCM tag.
const TAG_LEN: usize = 16;

/// One key-encryption key and its id.
pub(crate) struct Kek {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Kek, KeyError> {
        if bytes.len() != KEK_LEN {
            return Err(KeyError::BadKek("must be 32 bytes"));
        }
        let digest = Sha256::new()
            .chain_update(b"twisted-oauth2 key-encryption key id\0")
            .chain_update(bytes)
            .finalize();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9]);
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::BadKek("is not an AES-256 key"))?;
        Ok(Kek {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A KEK from its base64 text (standard or URL-safe alphabet, padding optional).
    pub(crate) fn from_base64(text: &str) -> Result<Kek, KeyError> {
        let t = text.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(t)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
            .map(Zeroizing::new)
            .map_err(|_| KeyError::BadKek("is not base64"))?;
        Kek::from_bytes(&bytes)
    }

    /// A random KEK for this process only.
    pub(crate) fn ephemeral() -> Result<Kek, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| KeyError::Crypto("random"))?;
        Kek::from_bytes(&bytes[..])
    }

    /// Its id, as written in the blobs it seals.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// The KEKs of a server: the one that seals, and retired ones that still unseal.
#[derive(Debug)]
pub(crate) struct Keks {
    current: Kek,
    retired: Vec<Kek>,
}

/// What a blob is bound to.
fn aad(kid: &str, alg: &str, generation: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(48 + kid.len());
    v.extend_from_slice(b"twisted-oauth2 signing key\0");
    v.extend_from_slice(kid.as_bytes());
    v.push(0);
    v.extend_from_slice(alg.as_bytes());
    v.push(0);
    v.extend_from_slice(&generation.to_be_bytes());
    v
}

impl Keks {
    /// The sealing KEK and the retired ones.
    pub(crate) fn new(current: Kek, retired: Vec<Kek>) -> Keks {
        Keks { current, retired }
    }

    /// The id of the KEK that seals.
    pub(crate) fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Seals `plaintext` for the record (`kid`, `alg`, `generation`).
    pub(crate) fn seal(
        &self,
        kid: &str,
        alg: &str,
        generation: i64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Crypto("random"))?;
        let id = self.current.id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(kid, alg, generation)),
                &mut *body,
            )
            .map_err(|_| KeyError::Crypto("seal"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The id of the KEK `blob` names, if it is a blob of this format.
    pub(crate) fn blob_kek_id(blob: &[u8]) -> Option<&str> {
        let (&version, rest) = blob.split_first()?;
        let (&n, rest) = rest.split_first()?;
        if version != VERSION || rest.len() < n as usize {
            return None;
        }
        std::str::from_utf8(&rest[..n as usize]).ok()
    }

    /// Unseals the blob of the record (`kid`, `alg`, `generation`).
    pub(crate) fn unseal(
        &self,
        kid: &str,
        alg: &str,
        generation: i64,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let id = Self::blob_kek_id(blob).ok_or(KeyError::Unseal {
            kid: kid.to_owned(),
            reason: "the sealed private key is not in a format this version reads".into(),
        })?;
        let kek = std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::Unseal {
                kid: kid.to_owned(),
                reason: format!(
                    "it was sealed with the key-encryption key `{id}`, which is neither \
                     signing_keys.key_encryption_key (`{}`) nor one of \
                     retired_key_encryption_keys",
                    self.current.id
                ),
            })?;
        let rest = &blob[2 + id.len()..];
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyError::Unseal {
                kid: kid.to_owned(),
                reason: "the sealed private key is truncated".into(),
            });
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unseal {
            kid: kid.to_owned(),
            reason: "the sealed private key is truncated".into(),
        })?;
        let mut body = Zeroizing::new(sealed.to_vec());
        let n = kek
            .key
            .open_in_place(nonce, Aad::from(aad(kid, alg, generation)), &mut body)
            .map_err(|_| KeyError::Unseal {
                kid: kid.to_owned(),
                reason: format!(
                    "it does not open under the key-encryption key `{id}`: the stored \
                     record was altered"
                ),
            })?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; KEK_LEN]).unwrap()
    }

    #[test]
    fn sealed_blob_opens_only_for_its_record_and_kek() {
        let keks = Keks::new(kek(1), Vec::new());
        let secret = b"private key bytes, never in the blob";
        let blob = keks.seal("kid1", "ES256", 7, secret).unwrap();
        assert!(
            !blob.windows(secret.len()).any(|w| w == secret),
            "the blob must not contain the plaintext"
        );
        assert_eq!(&*keks.unseal("kid1", "ES256", 7, &blob).unwrap(), secret);
        // Bound to the record: another kid, alg or generation does not open it.
        assert!(keks.unseal("kid2", "ES256", 7, &blob).is_err());
        assert!(keks.unseal("kid1", "RS256", 7, &blob).is_err());
        assert!(keks.unseal("kid1", "ES256", 8, &blob).is_err());
        // A flipped bit does not open.
        let mut bad = blob.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(keks.unseal("kid1", "ES256", 7, &bad).is_err());
        // Truncated and empty blobs are refused, not a panic.
        for n in 0..blob.len() {
            assert!(keks.unseal("kid1", "ES256", 7, &blob[..n]).is_err());
        }
    }

    #[test]
    fn another_kek_is_named_in_the_error_and_retired_keks_still_open() {
        let old = Keks::new(kek(1), Vec::new());
        let blob = old.seal("k", "EdDSA", 0, b"x").unwrap();
        let other = Keks::new(kek(2), Vec::new());
        let e = other
            .unseal("k", "EdDSA", 0, &blob)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(kek(1).id()) && e.contains("retired_key_encryption_keys"),
            "{e}"
        );
        let rotated = Keks::new(kek(2), vec![kek(1)]);
        assert_eq!(&*rotated.unseal("k", "EdDSA", 0, &blob).unwrap(), b"x");
    }

    #[test]
    fn kek_must_be_32_bytes_of_base64() {
        use base64::Engine;
        let good = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert!(Kek::from_base64(&good).is_ok());
        assert!(Kek::from_base64(&format!(" {good}\n")).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        assert!(Kek::from_base64(&short).is_err());
        assert!(Kek::from_base64("not base64 at all!").is_err());
        // The id is stable and differs between keys.
        assert_eq!(kek(3).id(), kek(3).id());
        assert_ne!(kek(3).id(), kek(4).id());
    }
}
