//! `GET <base>/jwks`: the server's published signing keys as a JWK Set (RFC 7517 §5),
//! named `jwks_uri` in the RFC 8414 metadata (feature `jwt`, with
//! `oauth2.signing_keys.enabled`).
//!
//! The document holds public members only (a JWK never carries `d` or the RSA private
//! factors: it is made from the public half, and re-made from what the store holds). It
//! may be cached (`Cache-Control: public, max-age=N`) for
//! [`KeyRing::cache_max_age`] seconds: never past the time the next generated key is
//! published, so a resource server that honours the header always knows a key before it
//! signs. Browsers may read it from any origin, as the discovery documents.

use std::sync::Arc;

use crate::jwt::KeyRing;
use crate::server::AuthorizationServer;

/// The endpoint's name under the base path (`<base>/jwks`).
pub const JWKS_ENDPOINT: &str = "jwks";

/// The media type of a JWK Set (RFC 7517 §8.5.1).
pub const JWK_SET_MEDIA_TYPE: &str = "application/jwk-set+json";

/// The answer to `GET <base>/jwks`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksDocument {
    /// The JWK Set, JSON (pre-serialised by the ring; shared, not copied).
    pub body: Arc<str>,
    /// The `Cache-Control` value: `public, max-age=N`.
    pub cache_control: String,
}

/// The JWKS of `ring` as served now.
pub fn jwks(ring: &KeyRing) -> JwksDocument {
    JwksDocument {
        body: ring.jwks_json(),
        cache_control: format!("public, max-age={}", ring.cache_max_age()),
    }
}

/// The key ring of `server` (its [`format_keys`](AuthorizationServer::format_keys)
/// slot), when it holds one.
pub fn key_ring(server: &AuthorizationServer) -> Option<&KeyRing> {
    server.format_keys()?.get::<KeyRing>()
}

/// The full URL of the JWKS of `server` (`jwks_uri`).
pub fn jwks_uri(server: &AuthorizationServer) -> String {
    server.endpoint_url(JWKS_ENDPOINT)
}
