//! Public verification keys by `kid`, read from a JWK Set (RFC 7517 §5).

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The most keys a [`KeySet`] keeps; further keys of a larger document are ignored (an
/// issuer publishes a handful: the current key and the ones rotating in and out).
pub const MAX_KEYS: usize = 64;

/// The algorithms a [`KeySet`] keeps keys for: the asymmetric JWS algorithms `jsonwebtoken`
/// verifies. `HS*` (a shared secret cannot be published) and `none` never are.
pub const SUPPORTED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// One verification key: its `kid`, the one algorithm it verifies and the key itself.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// Public verification keys by `kid`, each bound to one algorithm: its JWK `alg`, or, when
/// the JWK names none, the one its key type and curve imply (`OKP`/`Ed25519` → `EdDSA`,
/// `EC`/`P-256` → `ES256`, `EC`/`P-384` → `ES384`, `RSA` → `RS256`). A token's header never
/// chooses the algorithm (see [`verify_access_token`](super::verify_access_token)).
///
/// Built from a JWKS document with [`KeySet::from_jwks_json`] or from a parsed
/// [`JwkSet`] with [`KeySet::from_jwk_set`]. Keys that are not for signatures (`use`
/// other than `sig`, `key_ops` without `verify`), that are symmetric (`oct`), of an
/// algorithm outside [`SUPPORTED_ALGORITHMS`], whose `alg` does not fit their key type, or
/// that do not parse are skipped (and named in the debug log), so one odd key (an
/// encryption key beside the signing keys, as Keycloak publishes) does not hide the others.
///
/// Cheap to clone: the keys are shared.
#[derive(Clone, Default)]
pub struct KeySet {
    by_kid: Arc<HashMap<String, Vec<VerificationKey>>>,
    len: usize,
}

/// Why a document is not a usable key set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// The document is not a JSON object with a `keys` array (RFC 7517 §5).
    #[error("not a JWK Set document: {0}")]
    NotAJwkSet(String),
    /// The set names keys, but none can verify an access token (all are encryption keys,
    /// symmetric, of an unsupported algorithm or malformed).
    #[error("the JWK Set holds {0} keys and none is a usable signature verification key")]
    NoUsableKey(usize),
}

#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// A set with no keys (every token is then [`JwtRejection::UnknownKey`](super::JwtRejection::UnknownKey)).
    pub fn empty() -> KeySet {
        KeySet::default()
    }

    /// Reads a JWK Set document (RFC 7517 §5). Each key is read on its own: one that does
    /// not parse is skipped, not fatal.
    pub fn from_jwks_json(json: &[u8]) -> Result<KeySet, KeySetError> {
        let raw: RawSet =
            serde_json::from_slice(json).map_err(|e| KeySetError::NotAJwkSet(e.to_string()))?;
        let total = raw.keys.len();
        let mut keys = Vec::new();
        for value in raw.keys.into_iter().take(MAX_KEYS) {
            match serde_json::from_value::<Jwk>(value) {
                Ok(jwk) => keys.push(jwk),
                Err(e) => log::debug!("JWK Set: skipping a key that does not parse: {e}"),
            }
        }
        Self::build(keys.iter(), total)
    }

    /// Builds the set from parsed keys (the same rules as [`Self::from_jwks_json`]).
    pub fn from_jwk_set(set: JwkSet) -> Result<KeySet, KeySetError> {
        let total = set.keys.len();
        Self::build(set.keys.iter().take(MAX_KEYS), total)
    }

    fn build<'k>(keys: impl Iterator<Item = &'k Jwk>, total: usize) -> Result<KeySet, KeySetError> {
        let mut by_kid: HashMap<String, Vec<VerificationKey>> = HashMap::new();
        let mut len = 0;
        for jwk in keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match verification_key(jwk) {
                Ok((alg, key)) => {
                    let same = by_kid.entry(kid.clone()).or_default();
                    if same.iter().all(|k| k.alg != alg) {
                        same.push(VerificationKey { kid, alg, key });
                        len += 1;
                    } else {
                        log::debug!("JWK Set: skipping a second {alg:?} key with kid {kid:?}");
                    }
                }
                Err(why) => log::debug!("JWK Set: skipping key {kid:?}: {why}"),
            }
        }
        if len == 0 && total > 0 {
            return Err(KeySetError::NoUsableKey(total));
        }
        Ok(KeySet {
            by_kid: Arc::new(by_kid),
            len,
        })
    }

    /// Whether a key with this `kid` is in the set.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys a token whose header names `kid` (or none) and `alg` may be verified with:
    /// `Err(false)` when no key has that `kid`, `Err(true)` when keys have it but none is
    /// bound to `alg`. A token without `kid` matches only a set of exactly one key.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerificationKey, bool> {
        let candidates = match kid {
            Some(kid) => self.by_kid.get(kid).ok_or(false)?,
            None if self.len == 1 => self.by_kid.values().next().ok_or(false)?,
            None => return Err(false),
        };
        candidates.iter().find(|k| k.alg == alg).ok_or(true)
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.by_kid.keys().collect();
        kids.sort();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

/// The algorithm a JWK verifies and its decoding key, or why it is not usable.
fn verification_key(jwk: &Jwk) -> Result<(Algorithm, DecodingKey), &'static str> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("its use is not sig"),
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.iter().any(|op| matches!(op, KeyOperations::Verify)) {
            return Err("its key_ops lack verify");
        }
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err("an EC curve without a supported algorithm"),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => Algorithm::EdDSA,
            _ => return Err("an OKP curve without a supported algorithm"),
        },
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key"),
        _ => return Err("an unsupported key type"),
    };
    let alg = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => return Err("an unknown alg"),
        Some(named) => Algorithm::try_from(named).map_err(|_| "an alg that is not a JWS alg")?,
    };
    if !SUPPORTED_ALGORITHMS.contains(&alg) {
        return Err("an unsupported alg");
    }
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        _ => alg == implied,
    };
    if !fits {
        return Err("its alg does not fit its key type");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "key material that does not parse")?;
    Ok((alg, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed_jwk(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    fn doc(keys: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn reads_rfc7517_jwk_set_and_implies_the_algorithm_from_the_curve() {
        let set = KeySet::from_jwks_json(&doc(vec![ed_jwk("a"), ed_jwk("b")])).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains("a") && set.contains("b") && !set.contains("c"));
        assert!(set.find(Some("a"), Algorithm::EdDSA).is_ok());
        assert_eq!(set.find(Some("a"), Algorithm::RS256).err(), Some(true));
        assert_eq!(set.find(Some("c"), Algorithm::EdDSA).err(), Some(false));
    }

    #[test]
    fn skips_encryption_symmetric_and_malformed_keys_but_keeps_the_rest() {
        let mut enc = ed_jwk("enc");
        enc["use"] = json!("enc");
        let mut no_verify = ed_jwk("ops");
        no_verify["key_ops"] = json!(["sign"]);
        let oct = json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0", "alg": "HS256"});
        let broken = json!({"kty": "OKP", "crv": "Ed25519", "kid": "bad"});
        let oaep =
            json!({"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"});
        let mut mismatch = ed_jwk("mismatch");
        mismatch["alg"] = json!("ES256");
        let set = KeySet::from_jwks_json(&doc(vec![
            enc,
            no_verify,
            oct,
            broken,
            oaep,
            mismatch,
            ed_jwk("good"),
        ]))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains("good"));
    }

    #[test]
    fn a_set_of_only_unusable_keys_is_an_error_an_empty_set_is_not() {
        let oct = json!({"kty": "oct", "kid": "hs", "k": "c2VjcmV0"});
        assert!(matches!(
            KeySet::from_jwks_json(&doc(vec![oct])),
            Err(KeySetError::NoUsableKey(1))
        ));
        assert!(KeySet::from_jwks_json(&doc(vec![])).unwrap().is_empty());
        assert!(matches!(
            KeySet::from_jwks_json(b"{\"nokeys\": 1}"),
            Err(KeySetError::NotAJwkSet(_))
        ));
        assert!(matches!(
            KeySet::from_jwks_json(b"\xff"),
            Err(KeySetError::NotAJwkSet(_))
        ));
    }

    #[test]
    fn keeps_at_most_max_keys() {
        let keys = (0..MAX_KEYS + 10)
            .map(|i| ed_jwk(&format!("k{i}")))
            .collect();
        let set = KeySet::from_jwks_json(&doc(keys)).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
    }

    #[test]
    fn a_token_without_kid_matches_only_a_single_key_set() {
        let one = KeySet::from_jwks_json(&doc(vec![ed_jwk("a")])).unwrap();
        assert!(one.find(None, Algorithm::EdDSA).is_ok());
        let two = KeySet::from_jwks_json(&doc(vec![ed_jwk("a"), ed_jwk("b")])).unwrap();
        assert_eq!(two.find(None, Algorithm::EdDSA).err(), Some(false));
    }
}
