//! The RFC 9068 access-token format: signed JWTs, registered as [`JWT`] (`jwt`).
//!
//! A client gets its access tokens in it with `access_token_format = "jwt"` in its
//! configuration (or [`ClientBuilder::access_token_format`](crate::client::ClientBuilder::access_token_format)),
//! every client with the server-wide `access_token_format = "jwt"`. Refresh tokens and codes
//! stay opaque. The server registers the format by itself when the `jwt` feature is on; it
//! signs with the [`KeyRing`] the server holds in its
//! [`FormatKeys`](crate::format::FormatKeys).
//!
//! # Issuance
//!
//! The header is `typ: at+jwt`, the signing key's `kid` and its algorithm; the claims are
//! RFC 9068 §2.2's (the table in docs/jwt.md, "JWT access tokens"). The `jti` is a fresh value
//! of the server's [`TokenGenerator`](crate::token::TokenGenerator). Issuing writes nothing:
//! a `client_credentials` token costs one signature and no store round trip.
//!
//! # Validation
//!
//! [`verify_access_token`] against the key ring's published keys: the signature, the
//! algorithm (from the key, never from the header), `typ`, `iss`, `exp`/`nbf` with
//! `token_leeway`. The core then judges expiry and the audience (`aud`, read into the
//! record) as for any token. A refusal's reason ([`Rejection`]) reaches the audit events
//! and the debug log only. Verified tokens are kept in a bounded cache keyed by the token's
//! SHA-256 (at most `jwt_access_tokens.max_verified`, never served at or after `exp`), so a
//! repeat validation is a hash and a map lookup.
//!
//! # Revocation
//!
//! Revoking a JWT (RFC 7009 `/revoke`, or withdrawing one whose issuance failed) puts its
//! `jti` on the denylist: the [`RevokedJtiStore`] keeps it until the token's `exp`, and
//! every instance keeps it in memory, filled from the store at start and kept current by
//! the server's [`RevocationChannel`] (PostgreSQL `LISTEN`/`NOTIFY`, Redis pub/sub;
//! [`Revocation::Jti`]). Revoking a grant (a replayed code, a reused refresh token, a revoked
//! refresh token) tombstones it in the store
//! ([`AccessTokenStore::revoke_access_grant`](crate::storage::AccessTokenStore::revoke_access_grant));
//! a JWT a user granted carries its grant (`gid`), whose tombstone is read when the token is
//! first verified and whose revocation reaches every instance's memory on the channel.
//! Deleting a client refuses its tokens issued before. The hot path reads memory only; it
//! asks the store only while memory may be incomplete (the channel's subscription not
//! confirmed or lost, the denylist not read since, or cut at its bound).
//!
//! With `jwt_access_tokens.stateless = true` there is no denylist and no tombstone read:
//! validation reads no store at all, and a revoked token stays valid until its `exp`.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use super::claims::{claims_of, record_of};
use super::revocations::{Bounds, Listener, Revocations, Verified};
use super::rotation::KeyRing;
use super::verify::{verify_access_token, Expectations};
use crate::clock::Clock;
use crate::config::JwtAccessTokensConfig;
use crate::error::StorageError;
use crate::format::{
    AccessTokenFormat, FormatContext, IssuedToken, Rejection, ValidToken, Validation,
    ValidationContext,
};
use crate::storage::cache::{Revocation, RevocationChannel, RevocationListener, RevocationSink};
use crate::storage::{GrantId, RevokedJtiStore, TokenRecord};
use crate::token::TokenDigest;

/// The name the JWT format is registered under.
pub const JWT: &str = "jwt";

/// The `typ` header of an RFC 9068 access token.
const TYP: &str = "at+jwt";

/// The RFC 9068 access-token format. See the [module docs](self).
#[derive(Clone)]
pub struct JwtFormat(Arc<Inner>);

struct Inner {
    state: Arc<Revocations>,
    stateless: bool,
    jtis: Option<Arc<dyn RevokedJtiStore>>,
    channel: Arc<dyn RevocationChannel>,
    listener: Arc<dyn RevocationListener>,
    started: OnceLock<()>,
}

impl std::fmt::Debug for JwtFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtFormat")
            .field("stateless", &self.0.stateless)
            .field("channel", &self.0.channel.describe())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
enum JwtIssueError {
    #[error("the jwt access-token format has no signing key (no key ring in the format keys, or none signs now)")]
    NoSigningKey,
    #[error("the jwt access-token format needs a revoked-jti store (the `dyn RevokedJtiStore` slot of the stores), or `jwt_access_tokens.stateless = true`")]
    NoDenylist,
    #[error("signing the access token failed: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

impl JwtFormat {
    /// The format under `config`, keeping revoked `jti`s in `jtis` (required unless
    /// stateless) and hearing other instances' revocations on `channel`, dated by `clock`.
    /// `hold` is how long a grant or client revocation heard on the channel is remembered
    /// (the longest access-token lifetime plus the leeway).
    pub(crate) fn new(
        config: &JwtAccessTokensConfig,
        jtis: Option<Arc<dyn RevokedJtiStore>>,
        channel: Arc<dyn RevocationChannel>,
        clock: Arc<dyn Clock>,
        hold: i64,
    ) -> Self {
        let state = Arc::new(Revocations::new(Bounds {
            max_verified: config.max_verified.max(1),
            max_revoked: config.max_revoked.max(1),
            max_staleness: i64::try_from(config.max_staleness).unwrap_or(60).max(1),
            hold: hold.max(1),
        }));
        let listener: Arc<dyn RevocationListener> = Arc::new(Listener {
            state: state.clone(),
            clock,
        });
        JwtFormat(Arc::new(Inner {
            state,
            stateless: config.stateless,
            jtis,
            channel,
            listener,
            started: OnceLock::new(),
        }))
    }

    /// Subscribes to the channel on first use (a networked channel needs the async runtime,
    /// which runs by then). A channel that cannot start leaves memory incomplete: every
    /// validation then asks the store.
    fn ensure_started(&self) {
        if self.0.stateless {
            return;
        }
        self.0.started.get_or_init(|| {
            let sink = RevocationSink::listener(Arc::downgrade(&self.0.listener));
            if let Err(e) = self.0.channel.start(sink) {
                log::error!(
                    "twisted-oauth2: the jwt format cannot hear revocations on {} ({e}): every \
                     validation asks the store",
                    self.0.channel.describe()
                );
            }
        });
    }

    fn denylist(&self) -> Result<&Arc<dyn RevokedJtiStore>, StorageError> {
        self.0
            .jtis
            .as_ref()
            .ok_or_else(|| StorageError::other(JwtIssueError::NoDenylist))
    }

    /// Verifies `token` (or finds it verified earlier): the verified token, or why not.
    async fn verified(
        &self,
        ctx: &FormatContext<'_>,
        check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<Result<Verified, Rejection>, StorageError> {
        let now = check.now;
        let state = &self.0.state;
        let digest = TokenDigest::of(token);
        if let Some(v) = state.verified(&digest, now) {
            return Ok(Ok(v));
        }
        let Some(ring) = ctx.keys().and_then(|k| k.get::<KeyRing>()) else {
            return Ok(Err(Rejection::Unknown));
        };
        let before = state.seq();
        let keys = ring.key_set();
        // Audience: judged by the core on the record (route resource, default audience,
        // any at introspection).
        let expect = Expectations::new(ctx.issuer(), now)
            .with_leeway(check.leeway)
            .with_require_typ(true);
        let jwt = match verify_access_token(token, &keys, &expect) {
            Ok(j) => j,
            Err(r) => return Ok(Err(r.into())),
        };
        let (record, jti, grant) = match record_of(&jwt.claims) {
            Ok(r) => r,
            Err(r) => return Ok(Err(r)),
        };
        if let (Some(g), false) = (grant, self.0.stateless) {
            if ctx
                .store()
                .access_grant_tombstone(g)
                .await?
                .is_some_and(|until| until > now)
            {
                return Ok(Err(Rejection::Revoked));
            }
        }
        let v = Verified {
            exp: record.expires_at,
            fresh_until: now.saturating_add(state.bounds().max_staleness),
            jti: Some(TokenDigest::of(&jti)),
            grant,
            client: TokenDigest::of(&record.client_id),
            token: ValidToken::new(record)
                .with_claims(jwt.claims)
                .with_jti(jti),
        };
        if self.0.stateless || state.is_subscribed() {
            state.keep(digest, v.clone(), now, before);
        }
        Ok(Ok(v))
    }

    /// Why a verified token is refused now, if it is: its client deleted, its grant or its
    /// `jti` revoked.
    async fn revoked(&self, v: &Verified, now: i64) -> Result<Option<Rejection>, StorageError> {
        let state = &self.0.state;
        if state.client_revoked(&v.client, v.token.record.issued_at, now) {
            return Ok(Some(Rejection::Revoked));
        }
        if self.0.stateless {
            return Ok(None);
        }
        if v.grant.is_some_and(|g| state.grant_revoked(g, now)) {
            return Ok(Some(Rejection::Revoked));
        }
        let (Some(jti), Some(jd)) = (v.token.jti.as_deref(), v.jti) else {
            return Ok(None);
        };
        if state.jti_revoked(&jd, now) {
            return Ok(Some(Rejection::Revoked));
        }
        if state.memory_is_complete(v.exp, now) {
            return Ok(None);
        }
        let store = self.denylist()?;
        if let Some(epoch) = state.claim_reload(now) {
            let limit = state.bounds().max_revoked;
            match store.revoked_jtis(now, limit).await {
                Ok(list) => state.loaded(list, limit, now, epoch),
                Err(e) => {
                    state.load_failed();
                    return Err(e);
                }
            }
            if state.jti_revoked(&jd, now) {
                return Ok(Some(Rejection::Revoked));
            }
            if state.memory_is_complete(v.exp, now) {
                return Ok(None);
            }
        }
        Ok(store
            .is_jti_revoked(jti, now)
            .await?
            .then_some(Rejection::Revoked))
    }

    /// Publishes a revocation made here; a failure is logged (the store has it, and other
    /// instances read it within `max_staleness`).
    async fn publish(&self, revocation: Revocation) {
        if let Err(e) = self.0.channel.publish(revocation).await {
            log::warn!(
                "twisted-oauth2: a JWT revocation could not be published on {} ({e}): other \
                 instances refuse the token once they read the store again",
                self.0.channel.describe()
            );
        }
    }
}

/// Whether `token` has a JWS compact shape (three base64url parts, a JSON header): cheap,
/// so an opaque value goes to the next format without hashing or parsing.
fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

#[async_trait]
impl AccessTokenFormat for JwtFormat {
    async fn issue(
        &self,
        ctx: &FormatContext<'_>,
        record: &TokenRecord,
    ) -> Result<IssuedToken, StorageError> {
        if !self.0.stateless {
            self.denylist()?;
        }
        let signer = ctx
            .keys()
            .and_then(|k| k.get::<KeyRing>())
            .and_then(KeyRing::signer)
            .ok_or_else(|| StorageError::other(JwtIssueError::NoSigningKey))?;
        let jti = ctx.random_value()?;
        let claims = claims_of(record, ctx.issuer(), &jti);
        let value = signer
            .sign(TYP, &claims)
            .map_err(|e| StorageError::other(JwtIssueError::Sign(e)))?;
        Ok(IssuedToken::for_record(value, record).with_jti(jti))
    }

    async fn validate(
        &self,
        ctx: &FormatContext<'_>,
        check: &ValidationContext<'_>,
        token: &str,
    ) -> Result<Validation, StorageError> {
        if !looks_like_jwt(token) {
            return Ok(Validation::Rejected(Rejection::Unknown));
        }
        self.ensure_started();
        let v = match self.verified(ctx, check, token).await? {
            Ok(v) => v,
            Err(r) => return Ok(Validation::Rejected(r)),
        };
        if let Some(r) = self.revoked(&v, check.now).await? {
            return Ok(Validation::Rejected(r));
        }
        Ok(Validation::Valid(v.token))
    }

    async fn revoke(
        &self,
        ctx: &FormatContext<'_>,
        token: &str,
    ) -> Result<Option<TokenRecord>, StorageError> {
        if !looks_like_jwt(token) {
            return Ok(None);
        }
        self.ensure_started();
        let now = ctx.now();
        let check = ValidationContext::new(now);
        let v = match self.verified(ctx, &check, token).await? {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        if self.0.stateless {
            log::info!(
                "twisted-oauth2: a JWT access token was revoked in stateless mode: it stays \
                 valid until its exp"
            );
            return Ok(Some(v.token.record));
        }
        let Some(jti) = v.token.jti.as_deref() else {
            return Ok(None);
        };
        if self.revoked(&v, now).await?.is_some() {
            return Ok(None);
        }
        self.denylist()?.revoke_jti(jti, v.exp).await?;
        let r = Revocation::jti(jti, v.exp);
        self.0.state.apply(r, now);
        self.publish(r).await;
        Ok(Some(v.token.record))
    }

    async fn revoke_grant(
        &self,
        ctx: &FormatContext<'_>,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        if self.0.stateless {
            return Ok(0);
        }
        let n = ctx.store().revoke_access_grant(grant, until).await?;
        let r = Revocation::Grant(grant);
        self.0.state.apply(r, ctx.now());
        self.publish(r).await;
        Ok(n)
    }

    async fn revoke_client(
        &self,
        ctx: &FormatContext<'_>,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        let n = ctx.store().revoke_access_client(client_id, until).await?;
        let r = Revocation::client(client_id);
        self.0.state.apply(r, ctx.now());
        self.publish(r).await;
        Ok(n)
    }
}

/// Whether the configuration gives any client its tokens in the `jwt` format.
pub(crate) fn used_by(config: &crate::config::ServerConfig) -> bool {
    config.access_token_format == JWT
        || config
            .clients
            .iter()
            .any(|c| c.access_token_format.as_deref() == Some(JWT))
}

/// The format the server registers as `jwt`.
pub(crate) fn for_server(
    config: &crate::config::ServerConfig,
    stores: &crate::storage::Stores,
    channel: Option<Arc<dyn RevocationChannel>>,
    clock: Arc<dyn Clock>,
) -> JwtFormat {
    let hold = i64::try_from(
        config
            .access_token_lifetime
            .saturating_add(config.token_leeway),
    )
    .unwrap_or(i64::MAX / 4);
    JwtFormat::new(
        &config.jwt_access_tokens,
        stores.get::<dyn RevokedJtiStore>(),
        channel.unwrap_or_else(|| Arc::new(crate::storage::cache::LocalOnly)),
        clock,
        hold,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_jws_compact_shape_is_this_formats() {
        assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJ9.sig"));
        for t in ["opaque-value", "eyJ.only-one-dot", "a.b.c", "eyJ.a.b.c", ""] {
            assert!(!looks_like_jwt(t), "{t}");
        }
    }
}
