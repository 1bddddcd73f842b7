//! JWT access tokens (RFC 9068): the `jwt` access-token format ([`JwtFormat`]), verifying
//! tokens against a set of public keys, and the server's own signing keys ([`KeyRing`]:
//! configured or generated, sealed in the store, rotated with overlap, published at
//! `GET <base>/jwks`; docs/jwt.md).
//!
//! [`verify_access_token`] checks a compact JWS against a [`KeySet`] (read from an RFC 7517
//! JWK Set) and [`Expectations`] (issuer, audiences, algorithms, leeway, time, `typ`),
//! following the JWT best current practices (RFC 8725): the algorithm is the key's, never
//! the token's; `none` and `HS*` are refused; a header cannot bring its own key (`jwk`,
//! `jku`, `x5u`, `x5c`) or processing rules (`crit`); a token over
//! [`MAX_TOKEN_LEN`] is refused before parsing. A value that is not JWT-shaped is
//! [`JwtRejection::NotAJwt`], decided without any decoding, so an opaque-token format can
//! still be asked about it.
//!
//! ```
//! use twisted_oauth2::jwt::{verify_access_token, Expectations, JwtRejection, KeySet};
//!
//! let keys = KeySet::from_jwks_json(br#"{"keys": [{"kty": "OKP", "crv": "Ed25519",
//!     "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
//! assert!(keys.contains("k1"));
//! let expect = Expectations::new("https://issuer.example", 1_800_000_000)
//!     .with_audiences(&["https://api.example"])
//!     .with_leeway(30);
//! assert_eq!(
//!     verify_access_token("an-opaque-value", &keys, &expect),
//!     Err(JwtRejection::NotAJwt)
//! );
//! ```

mod claims;
pub mod format;
pub mod keys;
mod keyset;
mod revocations;
pub mod rotation;
mod seal;
mod verify;

pub use format::{JwtFormat, JWT};
pub use keys::{KeyError, Signer};
pub use rotation::{KeyRing, RotationSchedule};

pub use keyset::{KeySet, KeySetError, MAX_KEYS, SUPPORTED_ALGORITHMS};
pub use verify::{verify_access_token, Expectations, JwtRejection, VerifiedJwt, MAX_TOKEN_LEN};
