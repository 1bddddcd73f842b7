//! JWT access tokens (RFC 9068), feature `jwt`.

mod claims;
//TMP pub mod format;
mod revocations;

//TMP pub use format::{JwtFormat, JWT};
