//! Signing-key material: Ed25519 (`EdDSA`), P-256 (`ES256`) and RSA of at least 2048
//! bits (`RS256`), from PEM (configured keys) or generated with aws-lc-rs, and the
//! [`Signer`] a format signs with.
//!
//! Every key is checked and brought to one form when it is read: PKCS#8 v1 DER, parsed
//! by aws-lc-rs (never by code of this crate), from which jsonwebtoken's
//! [`EncodingKey`] and the public JWK (RFC 7517, with `kid`, `use: sig` and `alg`) are
//! made. A key's id defaults to its RFC 7638 thumbprint (SHA-256, base64url).

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use zeroize::Zeroizing;

use crate::error::StorageError;

/// Why signing keys could not be loaded, generated, sealed or unsealed. The messages name
/// the setting or the key id, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A configured key (`signing_keys.keys`, 1-based) cannot be used.
    #[error("setting `oauth2.signing_keys.keys`: key {index}: {reason}")]
    Configured {
        /// Its place in the list, from 1.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The key-encryption key setting is unusable.
    #[error("setting `oauth2.signing_keys.key_encryption_key`: {0}")]
    BadKek(&'static str),
    /// Generated keys need a key-encryption key.
    #[error(
        "setting `oauth2.signing_keys.key_encryption_key` is not set: generated signing keys are \
         kept in the store sealed under it (a store dump must hold no usable private key); set it \
         to 32 random bytes in base64 (`openssl rand -base64 32`), or list keys of your own in \
         `signing_keys.keys`"
    )]
    NoKek,
    /// A stored key cannot be unsealed.
    #[error("the signing key `{kid}` in the store cannot be unsealed: {reason}")]
    Unseal {
        /// The key's id.
        kid: String,
        /// Why.
        reason: String,
    },
    /// A stored key record is not usable (its JWK or algorithm).
    #[error("the signing key `{kid}` in the store is not usable: {reason}")]
    BadRecord {
        /// The key's id.
        kid: String,
        /// Why.
        reason: String,
    },
    /// No store holds signing keys.
    #[error(
        "generated signing keys need a SigningKeyStore in the stores' extension slot (every \
         built-in backend fills it); list keys of your own in `signing_keys.keys` otherwise"
    )]
    NoStore,
    /// The store failed.
    #[error("the signing-key store failed: {0}")]
    Storage(#[from] StorageError),
    /// A cryptographic operation failed (generation, random, sealing).
    #[error("signing-key cryptography failed: {0}")]
    Crypto(&'static str),
}

/// The JWS name of a signing algorithm, if it is one of ours.
pub(crate) fn algorithm_of(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

/// The JWS name of `alg`.
pub(crate) fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// A private signing key in its one form: the algorithm and PKCS#8 v1 DER (zeroed on drop).
pub(crate) struct PrivateKey {
    alg: Algorithm,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The smallest accepted RSA modulus, bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

/// The largest accepted PEM text, bytes (an RSA-8192 key is below 7 KiB).
pub(crate) const MAX_PEM_LENGTH: usize = 16 * 1024;

impl PrivateKey {
    /// The algorithm.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The PKCS#8 v1 DER (what is sealed into the store).
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// A fresh key for `alg` (`rsa_bits` for RS256).
    pub(crate) fn generate(alg: Algorithm, rsa_bits: u32) -> Result<PrivateKey, KeyError> {
        let fail = |_| KeyError::Crypto("key generation");
        let pkcs8 = match alg {
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Algorithm::RS256 => {
                use aws_lc_rs::rsa::KeySize;
                let size = match rsa_bits {
                    4096 => KeySize::Rsa4096,
                    3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa2048,
                };
                aws_lc_rs::rsa::KeyPair::generate(size)
                    .and_then(|k| k.as_der())
                    .map_err(fail)?
                    .as_ref()
                    .to_vec()
            }
            _ => return Err(KeyError::Crypto("unsupported algorithm")),
        };
        Ok(PrivateKey {
            alg,
            pkcs8: Zeroizing::new(pkcs8),
        })
    }

    /// The key of PKCS#8 DER `der` for `alg` (an unsealed stored key), checked.
    pub(crate) fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<PrivateKey, String> {
        let bad = |_| format!("not a PKCS#8 {} private key", algorithm_name(alg));
        let pkcs8 = match alg {
            Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(bad)?
                .to_pkcs8v1()
                .map_err(|_| "cannot encode the key".to_owned())?
                .as_ref()
                .to_vec(),
            Algorithm::ES256 => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(bad)?
                    .to_pkcs8v1()
                    .map_err(|_| "cannot encode the key".to_owned())?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RS256 => rsa_pkcs8(aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(bad)?)?,
            _ => return Err("unsupported algorithm".into()),
        };
        Ok(PrivateKey {
            alg,
            pkcs8: Zeroizing::new(pkcs8),
        })
    }

    /// The key of PEM text: PKCS#8 `PRIVATE KEY` (Ed25519, P-256 or RSA), PKCS#1
    /// `RSA PRIVATE KEY` or SEC 1 `EC PRIVATE KEY`; the algorithm follows from the key.
    pub(crate) fn from_pem(text: &[u8]) -> Result<PrivateKey, String> {
        if text.len() > MAX_PEM_LENGTH {
            return Err(format!("the PEM text is over {MAX_PEM_LENGTH} bytes"));
        }
        let pem = pem::parse(text).map_err(|_| "not PEM text".to_owned())?;
        let tag = pem.tag().to_owned();
        let der = Zeroizing::new(pem.into_contents());
        match tag.as_str() {
            "PRIVATE KEY" => {
                if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    let v1 = k.to_pkcs8v1().map_err(|_| "cannot encode the key")?;
                    return Ok(PrivateKey {
                        alg: Algorithm::EdDSA,
                        pkcs8: Zeroizing::new(v1.as_ref().to_vec()),
                    });
                }
                if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der) {
                    let v1 = k.to_pkcs8v1().map_err(|_| "cannot encode the key")?;
                    return Ok(PrivateKey {
                        alg: Algorithm::ES256,
                        pkcs8: Zeroizing::new(v1.as_ref().to_vec()),
                    });
                }
                match aws_lc_rs::rsa::KeyPair::from_pkcs8(&der) {
                    Ok(k) => Ok(PrivateKey {
                        alg: Algorithm::RS256,
                        pkcs8: Zeroizing::new(rsa_pkcs8(k)?),
                    }),
                    Err(_) => Err("not an Ed25519, P-256 or RSA (2048 bits or more) private key"
                        .into()),
                }
            }
            "RSA PRIVATE KEY" => {
                let k = aws_lc_rs::rsa::KeyPair::from_der(&der)
                    .map_err(|_| "not an RSA private key (PKCS#1) of 2048 bits or more")?;
                Ok(PrivateKey {
                    alg: Algorithm::RS256,
                    pkcs8: Zeroizing::new(rsa_pkcs8(k)?),
                })
            }
            "EC PRIVATE KEY" => {
                let k = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| "not a P-256 private key (only the P-256 curve, ES256, is supported)")?;
                let v1 = k.to_pkcs8v1().map_err(|_| "cannot encode the key")?;
                Ok(PrivateKey {
                    alg: Algorithm::ES256,
                    pkcs8: Zeroizing::new(v1.as_ref().to_vec()),
                })
            }
            "ENCRYPTED PRIVATE KEY" => Err(
                "the PEM key is encrypted; give it unencrypted (`openssl pkcs8 -topk8 -nocrypt`), \
                 from a file only the server may read"
                    .into(),
            ),
            "PUBLIC KEY" | "CERTIFICATE" | "RSA PUBLIC KEY" => {
                Err(format!("a `{tag}` is not a private key"))
            }
            other => Err(format!(
                "PEM `{}` is not a private key (expected `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
                crate::error::printable(other)
            )),
        }
    }

    /// jsonwebtoken's key for signing.
    pub(crate) fn encoding_key(&self) -> Result<EncodingKey, String> {
        let bad = |e: jsonwebtoken::errors::Error| format!("jsonwebtoken refuses the key: {e}");
        match self.alg {
            Algorithm::EdDSA => Ok(EncodingKey::from_ed_der(&self.pkcs8)),
            Algorithm::ES256 => Ok(EncodingKey::from_ec_der(&self.pkcs8)),
            // jsonwebtoken signs RSA from PKCS#1, which its PEM reader takes out of PKCS#8.
            Algorithm::RS256 => {
                let text = Zeroizing::new(pem::encode(&pem::Pem::new(
                    "PRIVATE KEY",
                    self.pkcs8.to_vec(),
                )));
                EncodingKey::from_rsa_pem(text.as_bytes()).map_err(bad)
            }
            _ => Err("unsupported algorithm".into()),
        }
    }

    /// The public JWK of this key with `kid` (its thumbprint when `None`), `use: sig` and
    /// `alg`.
    pub(crate) fn public_jwk(&self, kid: Option<&str>) -> Result<Jwk, String> {
        let enc = self.encoding_key()?;
        let mut jwk = Jwk::from_encoding_key(&enc, self.alg)
            .map_err(|e| format!("cannot make the public JWK: {e}"))?;
        let kid = match kid {
            Some(k) => k.to_owned(),
            None => thumbprint(&jwk)?,
        };
        jwk.common.key_id = Some(kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    }
}

/// PKCS#8 v1 DER of an RSA key, refused under 2048 bits.
fn rsa_pkcs8(k: aws_lc_rs::rsa::KeyPair) -> Result<Vec<u8>, String> {
    if k.public_modulus_len() < MIN_RSA_MODULUS {
        return Err("the RSA key is shorter than 2048 bits".into());
    }
    Ok(k.as_der()
        .map_err(|_| "cannot encode the key".to_owned())?
        .as_ref()
        .to_vec())
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a JWK's public members.
pub(crate) fn thumbprint(jwk: &Jwk) -> Result<String, String> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("cannot compute the JWK thumbprint: {e}"))
}

/// The key that signs now: its id, its algorithm and jsonwebtoken's [`EncodingKey`]
/// (from [`KeyRing::signer`](super::rotation::KeyRing::signer)). `Debug` never shows the key.
pub struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub(crate) fn new(kid: String, key: &PrivateKey) -> Result<Arc<Signer>, String> {
        Ok(Arc::new(Signer {
            kid,
            alg: key.algorithm(),
            key: key.encoding_key()?,
        }))
    }

    /// The key id (the JWS header's `kid`, and the JWK's in the JWKS).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm (the JWS header's `alg`).
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// jsonwebtoken's key.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// A JWS header for this key: `alg`, `kid` and `typ` (`at+jwt` for RFC 9068 tokens).
    pub fn header(&self, typ: &str) -> Header {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        h.typ = Some(typ.to_owned());
        h
    }

    /// Signs `claims` as a compact JWS with [`Self::header`]`(typ)`.
    pub fn sign<T: serde::Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.header(typ), claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test keys made with openssl (never use them elsewhere).
    const EC_SEC1: &str = include_str!("testdata/ec-sec1.pem");
    const EC_P384: &str = include_str!("testdata/ec-p384.pem");
    const RSA_PKCS1: &str = include_str!("testdata/rsa-pkcs1.pem");
    const RSA_1024: &str = include_str!("testdata/rsa-1024.pem");
    const ED25519: &str = include_str!("testdata/ed25519.pem");

    fn roundtrip(alg: Algorithm) {
        let k = PrivateKey::generate(alg, 2048).unwrap();
        let jwk = k.public_jwk(None).unwrap();
        let kid = jwk.common.key_id.clone().unwrap();
        assert_eq!(
            kid,
            thumbprint(&jwk).unwrap(),
            "the kid defaults to the thumbprint"
        );
        let json = serde_json::to_value(&jwk).unwrap();
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                json.get(private).is_none(),
                "public JWK holds `{private}`: {json}"
            );
        }
        assert_eq!(json["use"], "sig");
        assert_eq!(json["alg"], algorithm_name(alg));
        // What the store gets back unseals into the same key.
        let again = PrivateKey::from_pkcs8(alg, k.pkcs8()).unwrap();
        assert_eq!(again.public_jwk(None).unwrap(), jwk);
        // It signs, and the signature verifies with the published JWK.
        let signer = Signer::new(kid.clone(), &k).unwrap();
        let token = signer
            .sign(
                "at+jwt",
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
            )
            .unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn generated_ed25519_signs_and_verifies() {
        roundtrip(Algorithm::EdDSA);
    }

    #[test]
    fn generated_p256_signs_and_verifies() {
        roundtrip(Algorithm::ES256);
    }

    #[test]
    fn generated_rsa_signs_and_verifies() {
        roundtrip(Algorithm::RS256);
    }

    #[test]
    fn openssl_pem_keys_of_every_kind_are_read() {
        for (pem, alg) in [
            (EC_SEC1, Algorithm::ES256),
            (RSA_PKCS1, Algorithm::RS256),
            (ED25519, Algorithm::EdDSA),
        ] {
            let k = PrivateKey::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(k.algorithm(), alg);
            // Its PKCS#8 form reads back as the same key, and it signs.
            let p8 = pem::encode(&pem::Pem::new("PRIVATE KEY", k.pkcs8().to_vec()));
            let again = PrivateKey::from_pem(p8.as_bytes()).unwrap();
            assert_eq!(again.public_jwk(None).unwrap(), k.public_jwk(None).unwrap());
            let s = Signer::new("k".into(), &k).unwrap();
            s.sign("at+jwt", &serde_json::json!({"sub": "x"})).unwrap();
        }
    }

    #[test]
    fn weak_or_unsupported_keys_are_refused() {
        let e = PrivateKey::from_pem(RSA_1024.as_bytes()).unwrap_err();
        assert!(e.contains("2048"), "{e}");
        let e = PrivateKey::from_pem(EC_P384.as_bytes()).unwrap_err();
        assert!(e.contains("P-256"), "{e}");
    }

    #[test]
    fn thumbprint_is_rfc7638_3_1() {
        // The example key of RFC 7638 section 3.1 and its thumbprint.
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_keys_read_back_from_pkcs8_pem() {
        for alg in [Algorithm::EdDSA, Algorithm::RS256] {
            let g = PrivateKey::generate(alg, 2048).unwrap();
            let p8 = pem::encode(&pem::Pem::new("PRIVATE KEY", g.pkcs8().to_vec()));
            let read = PrivateKey::from_pem(p8.as_bytes()).unwrap();
            assert_eq!(read.algorithm(), alg);
            assert_eq!(read.public_jwk(None).unwrap(), g.public_jwk(None).unwrap());
        }
    }

    #[test]
    fn pem_that_is_no_usable_private_key_is_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "not PEM"),
            ("hello", "not PEM"),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "not a private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not an Ed25519",
            ),
        ];
        for (pem, want) in cases {
            let e = PrivateKey::from_pem(pem.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{pem:?}: {e}");
        }
        let huge = vec![b'A'; MAX_PEM_LENGTH + 1];
        assert!(PrivateKey::from_pem(&huge).unwrap_err().contains("over"));
    }

    #[test]
    fn signer_debug_shows_no_key() {
        let k = PrivateKey::generate(Algorithm::EdDSA, 0).unwrap();
        let s = Signer::new("k1".into(), &k).unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("k1") && !shown.contains("content"),
            "{shown}"
        );
    }
}
