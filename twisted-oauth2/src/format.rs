//! Access-token formats: how an access token's value is made at issuance and turned back
//! into its record at validation, introspection and revocation.
//!
//! Every site asks the server's [`AccessTokenFormat`]: the token endpoint and the implicit
//! grant to [`issue`](AccessTokenFormat::issue), protected resources and introspection to
//! [`validate`](AccessTokenFormat::validate), revocation to
//! [`revoke`](AccessTokenFormat::revoke), and grant revocation (code replay, refresh reuse,
//! RFC 7009) to [`revoke_grant`](AccessTokenFormat::revoke_grant). The default,
//! [`OpaqueTokens`], makes random values and keeps their SHA-256 digests in the
//! [`AccessTokenStore`]. A self-contained format (a signed JWT, RFC 9068) makes a value that
//! carries its record, and may keep a deny-list for revocation. Refresh tokens and codes
//! stay opaque.

use async_trait::async_trait;

use crate::error::StorageError;
use crate::storage::{AccessTokenStore, GrantId, TokenRecord};
use crate::token::{is_b64token, TokenDigest, TokenGenerator, TokenKind};

/// What a format may use: the access-token store, the token generator and the time.
#[derive(Clone, Copy)]
pub struct FormatContext<'a> {
    pub(crate) store: &'a dyn AccessTokenStore,
    pub(crate) generator: &'a dyn TokenGenerator,
    pub(crate) now: i64,
}

impl std::fmt::Debug for FormatContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatContext")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> FormatContext<'a> {
    /// A context over these parts (for formats that wrap another, and for tests).
    pub fn new(
        store: &'a dyn AccessTokenStore,
        generator: &'a dyn TokenGenerator,
        now: i64,
    ) -> Self {
        FormatContext {
            store,
            generator,
            now,
        }
    }

    /// The access-token store.
    pub fn store(&self) -> &'a dyn AccessTokenStore {
        self.store
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// A fresh random value from the server's generator, checked against RFC 6750
    /// `b64token`.
    pub fn random_value(&self) -> Result<String, StorageError> {
        let v = self.generator.generate(TokenKind::Access)?;
        if is_b64token(&v) {
            Ok(v)
        } else {
            Err(StorageError::other(BadGeneratedValue))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the token generator returned a value outside RFC 6750 b64token")]
struct BadGeneratedValue;

/// How access tokens are made and read back. See the [module docs](self).
///
/// Implementations must honour the grant tombstones of the store contract: a token of a
/// revoked grant must not validate ([`StorageError::GrantRevoked`] at issuance, or refused
/// at validation), so a revocation cannot be outrun.
#[async_trait]
pub trait AccessTokenFormat: Send + Sync + 'static {
    /// Makes the value of a new access token for `record` (and records whatever
    /// validation will need). A grant revoked meanwhile is
    /// [`StorageError::GrantRevoked`].
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<String, StorageError>;

    /// The record of a token this format issued, if it is known and not revoked. Expiry
    /// is checked by the caller.
    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError>;

    /// Revokes one token, returning its record if it was live.
    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError>;

    /// Revokes every access token of a grant and tombstones the grant until `until`.
    /// The default asks the store ([`AccessTokenStore::revoke_access_grant`]).
    async fn revoke_grant(
        &self,
        ctx: &FormatContext<'_>,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        ctx.store.revoke_access_grant(grant, until).await
    }

    /// Revokes every access token issued to `client_id` and tombstones the client until
    /// `until` (the server does it when the client is deleted). The default asks the store
    /// ([`AccessTokenStore::revoke_access_client`]). A self-contained format whose tokens
    /// the store does not hold overrides it (with a deny-list of the client until `until`),
    /// or relies on the server refusing tokens of clients that no longer exist.
    async fn revoke_client(
        &self,
        ctx: &FormatContext<'_>,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        ctx.store.revoke_access_client(client_id, until).await
    }
}

/// The default format: 256-bit random values (base64url), stored by SHA-256 digest in the
/// [`AccessTokenStore`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OpaqueTokens;

#[async_trait]
impl AccessTokenFormat for OpaqueTokens {
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<String, StorageError> {
        let value = ctx.random_value()?;
        ctx.store
            .put_access(&TokenDigest::of(&value), record)
            .await?;
        Ok(value)
    }

    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        ctx.store.access(&TokenDigest::of(token)).await
    }

    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        ctx.store.revoke_access(&TokenDigest::of(token)).await
    }
}
