//! The `signing_keys` table of the `oauth2` configuration: the keys self-contained access
//! tokens are signed with and the JWKS publishes. Plain data, always compiled (so a
//! configuration with the table parses in every build); the keys themselves are made by
//! the `jwt` feature (`crate::jwt::rotation::KeyRing`), and docs/jwt.md ("Signing keys")
//! explains the choices.
//!
//! ```toml
//! [default.oauth2.signing_keys]
//! enabled = true
//! algorithms = ["ES256"]            # generated keys; the first signs
//! rotation_period = 2592000         # seconds (30 days)
//! key_encryption_key = "base64 of 32 random bytes"   # seals generated keys in the store
//!
//! # or keys of your own, never written to a store (the first signs):
//! # [[default.oauth2.signing_keys.keys]]
//! # pem_file = "/run/secrets/signing-key.pem"
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The JWS algorithms signing keys can have (RFC 7518 names).
pub const SIGNING_ALGORITHMS: &[&str] = &["EdDSA", "ES256", "RS256"];

/// The RSA modulus sizes generated RS256 keys can have, in bits.
pub const RSA_KEY_SIZES: &[u32] = &[2048, 3072, 4096];

/// Bounds of [`SigningKeysConfig::rotation_period`], seconds: one minute to ten years.
pub const ROTATION_PERIOD_RANGE: (u64, u64) = (60, 10 * 366 * 86_400);

/// Most keys given in [`SigningKeysConfig::keys`].
pub const MAX_CONFIGURED_KEYS: usize = 16;

/// The `signing_keys` table (`[default.oauth2.signing_keys]`). Default: off.
///
/// Keys come from one of two sources:
/// - **configured** ([`keys`](Self::keys) not empty): PEM private keys of the operator's
///   own; the first signs, the others are only published (a key about to sign, or a
///   retired key whose tokens are still live). They are never written to a store, and
///   rotation is the operator's (docs/jwt.md).
/// - **generated** (no `keys`): one key per listed algorithm per rotation period, made by
///   the server, kept in the store's `SigningKeyStore` with the private part sealed
///   (AES-256-GCM) under [`key_encryption_key`](Self::key_encryption_key), published a whole
///   period before it signs and until every token it signed has expired.
///
/// Neither `Debug` nor `Serialize` shows the key-encryption keys or inline PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningKeysConfig {
    /// Keep signing keys, publish them at `GET <base>/jwks` and name that URL as
    /// `jwks_uri` in the RFC 8414 metadata. Needs the `jwt` cargo feature. Default `false`.
    pub enabled: bool,
    /// The algorithms of generated keys, each one of `EdDSA` (Ed25519), `ES256` (P-256)
    /// and `RS256` (RSA): every listed algorithm has its keys generated and published;
    /// the first one's key signs. Default `["ES256"]`.
    pub algorithms: Vec<String>,
    /// Seconds each generated key signs for; the next key is published this long before
    /// it signs. At least 60 and at least `access_token_lifetime` + `token_leeway` (so at
    /// most three keys per algorithm are published at once). Default 2592000 (30 days).
    pub rotation_period: u64,
    /// The key-encryption key sealing generated private keys in the store: 32 random
    /// bytes in base64 (`openssl rand -base64 32`). Required for generated keys unless
    /// `allow_insecure_request_debug` (then a per-process key is made, and keys stored by
    /// an earlier process cannot be unsealed). Default none.
    #[serde(skip_serializing)]
    pub key_encryption_key: Option<String>,
    /// Earlier key-encryption keys (base64, 32 bytes each), used only to unseal keys
    /// stored before [`key_encryption_key`](Self::key_encryption_key) was changed.
    /// Default none.
    #[serde(skip_serializing)]
    pub retired_key_encryption_keys: Vec<String>,
    /// The modulus size of generated RS256 keys, bits: 2048, 3072 or 4096. Default 2048.
    pub rsa_key_size: u32,
    /// Keys of the operator's own (`[[default.oauth2.signing_keys.keys]]`); when set,
    /// nothing is generated. Default none.
    pub keys: Vec<SigningKeyConfig>,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for SigningKeysConfig {
    fn default() -> Self {
        SigningKeysConfig {
            enabled: false,
            algorithms: vec!["ES256".into()],
            rotation_period: 30 * 86_400,
            key_encryption_key: None,
            retired_key_encryption_keys: Vec::new(),
            rsa_key_size: 2048,
            keys: Vec::new(),
            __non_exhaustive: (),
        }
    }
}

impl fmt::Debug for SigningKeysConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeysConfig")
            .field("enabled", &self.enabled)
            .field("algorithms", &self.algorithms)
            .field("rotation_period", &self.rotation_period)
            .field(
                "key_encryption_key",
                &self.key_encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "retired_key_encryption_keys",
                &self.retired_key_encryption_keys.len(),
            )
            .field("rsa_key_size", &self.rsa_key_size)
            .field("keys", &self.keys)
            .finish()
    }
}

/// One `[[oauth2.signing_keys.keys]]` entry: a PEM private key (PKCS#8 `PRIVATE KEY` of
/// any of the three kinds, PKCS#1 `RSA PRIVATE KEY`, or SEC 1 `EC PRIVATE KEY`), from a
/// file or inline. The algorithm follows from the key (Ed25519 → `EdDSA`, P-256 →
/// `ES256`, RSA of at least 2048 bits → `RS256`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// Path of a PEM file holding the private key. Set this or [`pem`](Self::pem).
    pub pem_file: Option<String>,
    /// The PEM text itself (from an environment variable, say). Never serialized.
    #[serde(skip_serializing)]
    pub pem: Option<String>,
    /// The key id published in the JWKS and named in each token's `kid`. Default: the
    /// key's RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub kid: Option<String>,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl fmt::Debug for SigningKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyConfig")
            .field("pem_file", &self.pem_file)
            .field("pem", &self.pem.as_ref().map(|_| "<redacted>"))
            .field("kid", &self.kid)
            .finish()
    }
}

/// Longest accepted configured `kid`, bytes.
pub const MAX_KID_LENGTH: usize = 128;

impl SigningKeysConfig {
    /// Checks the settings that need no key material (the `jwt` feature checks the keys
    /// themselves when it loads them). `max_token_lifetime` is the longest access-token
    /// lifetime plus the leeway, seconds.
    pub(crate) fn validate(&self, max_token_lifetime: u64) -> Result<(), ConfigError> {
        let err = |key: &'static str, reason: String| ConfigError::Setting { key, reason };
        if !self.enabled {
            return Ok(());
        }
        if self.algorithms.is_empty() {
            return Err(err(
                "signing_keys.algorithms",
                "must name at least one algorithm".into(),
            ));
        }
        for (i, a) in self.algorithms.iter().enumerate() {
            if !SIGNING_ALGORITHMS.contains(&a.as_str()) {
                return Err(err(
                    "signing_keys.algorithms",
                    format!(
                        "unknown algorithm `{}`{}; valid are `EdDSA`, `ES256`, `RS256`",
                        crate::error::printable(a),
                        crate::grant_type::did_you_mean(a, SIGNING_ALGORITHMS.iter().copied())
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default()
                    ),
                ));
            }
            if self.algorithms[..i].contains(a) {
                return Err(err(
                    "signing_keys.algorithms",
                    format!("`{a}` is listed twice"),
                ));
            }
        }
        let (lo, hi) = ROTATION_PERIOD_RANGE;
        if !(lo..=hi).contains(&self.rotation_period) {
            return Err(err(
                "signing_keys.rotation_period",
                format!("must be between {lo} and {hi} seconds"),
            ));
        }
        if self.keys.is_empty() && self.rotation_period < max_token_lifetime {
            return Err(err(
                "signing_keys.rotation_period",
                format!(
                    "must be at least the access-token lifetime plus token_leeway \
                     ({max_token_lifetime} seconds), so that at most three keys per algorithm \
                     are published"
                ),
            ));
        }
        if !RSA_KEY_SIZES.contains(&self.rsa_key_size) {
            return Err(err(
                "signing_keys.rsa_key_size",
                "must be 2048, 3072 or 4096 (bits)".into(),
            ));
        }
        if self.keys.len() > MAX_CONFIGURED_KEYS {
            return Err(err(
                "signing_keys.keys",
                format!("at most {MAX_CONFIGURED_KEYS} keys may be listed"),
            ));
        }
        for (i, k) in self.keys.iter().enumerate() {
            match (&k.pem_file, &k.pem) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        "signing_keys.keys",
                        format!("key {}: set `pem_file` or `pem`, not both", i + 1),
                    ))
                }
                (None, None) => {
                    return Err(err(
                        "signing_keys.keys",
                        format!("key {}: set `pem_file` or `pem`", i + 1),
                    ))
                }
                _ => {}
            }
            if let Some(kid) = &k.kid {
                let ok = !kid.is_empty()
                    && kid.len() <= MAX_KID_LENGTH
                    && kid.bytes().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(err(
                        "signing_keys.keys",
                        format!(
                            "key {}: `kid` must be 1 to {MAX_KID_LENGTH} visible ASCII characters",
                            i + 1
                        ),
                    ));
                }
                if self.keys[..i].iter().any(|o| o.kid.as_ref() == Some(kid)) {
                    return Err(err(
                        "signing_keys.keys",
                        format!("key {}: `kid` `{kid}` is used twice", i + 1),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> SigningKeysConfig {
        SigningKeysConfig {
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_off() {
        let d = SigningKeysConfig::default();
        assert!(!d.enabled);
        d.validate(3600).unwrap();
        on().validate(3600).unwrap();
    }

    #[test]
    fn unknown_algorithm_suggests_the_near_one() {
        let c = SigningKeysConfig {
            algorithms: vec!["ES265".into()],
            ..on()
        };
        let e = c.validate(3600).unwrap_err().to_string();
        assert!(e.contains("signing_keys.algorithms"), "{e}");
        assert!(e.contains("did you mean `ES256`"), "{e}");
        let c = SigningKeysConfig {
            algorithms: vec!["HS256".into()],
            ..on()
        };
        assert!(
            c.validate(3600).is_err(),
            "HMAC is never a signing key here"
        );
    }

    #[test]
    fn rotation_period_shorter_than_token_lifetime_is_refused() {
        let c = SigningKeysConfig {
            rotation_period: 600,
            ..on()
        };
        let e = c.validate(3600).unwrap_err().to_string();
        assert!(e.contains("rotation_period"), "{e}");
        let c = SigningKeysConfig {
            rotation_period: 10,
            ..on()
        };
        assert!(c.validate(1).is_err());
    }

    #[test]
    fn a_configured_key_needs_exactly_one_source_and_a_sane_kid() {
        let both = SigningKeyConfig {
            pem_file: Some("a".into()),
            pem: Some("b".into()),
            ..Default::default()
        };
        let c = SigningKeysConfig {
            keys: vec![both],
            ..on()
        };
        assert!(c
            .validate(3600)
            .unwrap_err()
            .to_string()
            .contains("not both"));
        let bad_kid = SigningKeyConfig {
            pem: Some("b".into()),
            kid: Some("has space".into()),
            ..Default::default()
        };
        let c = SigningKeysConfig {
            keys: vec![bad_kid],
            ..on()
        };
        assert!(c.validate(3600).unwrap_err().to_string().contains("kid"));
    }

    #[test]
    fn secrets_are_neither_shown_nor_serialized() {
        let c = SigningKeysConfig {
            key_encryption_key: Some("S3CRETKEK".into()),
            keys: vec![SigningKeyConfig {
                pem: Some("-----BEGIN PRIVATE KEY-----SECRETPEM".into()),
                ..Default::default()
            }],
            ..on()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("S3CRETKEK") && !shown.contains("SECRETPEM"),
            "{shown}"
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("S3CRETKEK") && !json.contains("SECRETPEM"),
            "{json}"
        );
    }
}
