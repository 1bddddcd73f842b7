//! Resource-server building blocks against an external authorization server: its metadata
//! ([`discover`], RFC 8414 or OpenID Connect discovery), its signing keys, cached
//! ([`RemoteJwks`]), RFC 7662 introspection of opaque tokens with a short cache
//! ([`Introspector`]), and the [`RemoteValidator`] that puts them together behind the
//! [`TokenValidator`](crate::validation::TokenValidator) seam (what the fairing's
//! `[oauth2.resource_server]` mode uses). Every request goes out on the shared
//! [`Outbound`](crate::outbound::Outbound) client under a
//! [`Policy::configured`](crate::outbound::Policy::configured) policy (the issuer may be on
//! an internal network).
//!
//! The issuer's failures (down, an error status, a document that does not parse, a timeout)
//! are [`RemoteError::Unavailable`], which a protected route answers with `503` and
//! `Retry-After`; the next request after the retry delay asks again, so the server
//! recovers without restart.

mod discovery;
mod introspection;
mod jwks;
mod validator;

pub use discovery::{discover, IssuerMetadata};
pub use introspection::{Introspected, Introspector, INTROSPECTION_RETRY, NEGATIVE_TTL};
pub use jwks::{
    RemoteJwks, DEFAULT_TTL, MAX_TTL, MIN_TTL, RETRY_AFTER_FAILURE, RETRY_WITHOUT_KEYS,
    UNKNOWN_KID_REFETCH_PERIOD,
};
pub use validator::{
    RemoteValidator, RemoteValidatorBuilder, RETRY_DISCOVERY, RETRY_MISCONFIGURED,
};

/// Why the external authorization server could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// It could not be reached or gave an unusable answer; try again after `retry_after`
    /// seconds. The reason is for the log, never for a client.
    #[error("the authorization server is unavailable: {reason}")]
    Unavailable {
        /// What went wrong (for the log).
        reason: String,
        /// Seconds until it is worth asking again.
        retry_after: u64,
    },
    /// Its configuration or metadata is wrong (an `issuer` that differs from the configured
    /// one, a URL that does not parse): fixing the configuration is needed.
    #[error("the authorization server is misconfigured: {0}")]
    Misconfigured(String),
}

impl RemoteError {
    pub(crate) fn unavailable(reason: String, retry_after: Option<u64>) -> Self {
        RemoteError::Unavailable {
            reason,
            retry_after: retry_after.unwrap_or(RETRY_AFTER_FAILURE).clamp(1, 3600),
        }
    }
}

#[cfg(test)]
mod tests;
