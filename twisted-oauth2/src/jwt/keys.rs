//! TEMPORARY SHIM of contract C (helper `keys` owns this file): replaced on merge.
#![allow(missing_docs)]
use std::sync::Arc;

use super::KeySet;

pub struct Signer {
    kid: String,
    alg: jsonwebtoken::Algorithm,
    key: jsonwebtoken::EncodingKey,
}

impl Signer {
    pub fn new(kid: &str, alg: jsonwebtoken::Algorithm, key: jsonwebtoken::EncodingKey) -> Self {
        Signer { kid: kid.into(), alg, key }
    }
    pub fn kid(&self) -> &str {
        &self.kid
    }
    pub fn alg(&self) -> jsonwebtoken::Algorithm {
        self.alg
    }
    pub fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.key
    }
}

#[derive(Clone)]
pub struct KeyRing {
    signer: Arc<Signer>,
    set: KeySet,
    jwks: Arc<str>,
}

impl KeyRing {
    pub fn shim(signer: Signer, jwks: &str) -> Self {
        KeyRing {
            signer: Arc::new(signer),
            set: KeySet::from_jwks_json(jwks.as_bytes()).unwrap(),
            jwks: jwks.into(),
        }
    }
    pub fn signer(&self) -> Option<Arc<Signer>> {
        Some(self.signer.clone())
    }
    pub fn key_set(&self) -> KeySet {
        self.set.clone()
    }
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks.clone()
    }
}
