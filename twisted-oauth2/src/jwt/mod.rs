//! JWT access tokens (RFC 9068): signing keys, their rotation and the JWKS (feature `jwt`,
//! jsonwebtoken 12 on the aws-lc-rs backend; docs/jwt.md says why that backend).

pub mod keys;
pub mod rotation;
mod seal;

pub use keys::{KeyError, Signer};
pub use rotation::{KeyRing, RotationSchedule};
