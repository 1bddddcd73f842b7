//! Storage traits, narrow and per flow, and their records.
//!
//! Stores never see a token, code or handle: they are keyed by its [`TokenDigest`].
//! Access and refresh tokens live in separate stores, so one is never accepted as the other.
//! Code redemption ([`CodeStore::take_code`]) and refresh rotation
//! ([`RefreshTokenStore::rotate_refresh`]) are atomic, so two concurrent attempts cannot
//! both win; a rotation with a reuse interval
//! ([`RefreshTokenStore::rotate_refresh_within`]) has one winner and lets the others,
//! inside the interval, have fresh tokens of the same family.
//!
//! A revocation cannot be outrun: revoking a grant
//! ([`AccessTokenStore::revoke_access_grant`], [`RefreshTokenStore::revoke_refresh_grant`])
//! leaves a *tombstone* for the [`GrantId`] until a time the caller passes in, and a token
//! write for a tombstoned grant stores nothing and fails with
//! [`StorageError::GrantRevoked`]. Each store makes the check and the write atomic with
//! respect to the revocation, so a write racing a revocation either lands before it (and is
//! removed by it) or is refused. Without this, a code replay or a refresh-token reuse
//! revoking a grant while the legitimate request is still writing its tokens would leave
//! those tokens live (RFC 6749 §4.1.2, RFC 6819 §5.1.5.4).
//!
//! Revoking a *client* ([`AccessTokenStore::revoke_access_client`],
//! [`RefreshTokenStore::revoke_refresh_client`]; the server does it when a client is
//! deleted) works the same way: every token issued to the client goes, and a tombstone for
//! the client id refuses its token writes until the time passed in, atomically with respect
//! to the revocation.
//!
//! [`memory::MemoryStore`] implements every trait; so do the durable backends, each
//! behind its cargo feature: `sql::SqlStore` (features `sqlite`, `postgres`) and
//! `redis::RedisStore` (feature `redis`). [`connect`] opens any of them from a storage
//! URL. The `testkit` feature's `twisted_oauth2::testkit` module holds the behavioural
//! suite every store must pass.
//!
//! Self-contained (JWT) access tokens need two more stores, in extension slots of
//! [`Stores`]: the server's signing keys ([`SigningKeyStore`]) and the denylist of revoked
//! token ids ([`RevokedJtiStore`]). The built-in backends implement both and fill the slots.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::StorageError;
use crate::pkce::CodeChallenge;
use crate::scope::Scope;
use crate::token::TokenDigest;

mod builder;
pub mod cache;
pub(crate) mod clients;
mod connect;
mod keys;
pub mod memory;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod sql;

pub use builder::{MissingStore, StoresBuilder};
pub use clients::{ClientRecord, ClientRegistry};
pub use connect::connect;
pub(crate) use connect::{describe_storage, storage_kind};
pub use keys::{
    check_jti, JtiTooLong, KidTaken, RevokedJtiStore, SigningKeyRecord, SigningKeyStore,
    MAX_JTI_LEN,
};

/// Identifies one authorization (the family of tokens issued from one code, one
/// password grant, or one client-credentials request). Revoking a grant revokes every
/// token of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId(pub(crate) u128);

impl GrantId {
    /// A grant id from its 128-bit value (as a store keeps it).
    pub const fn from_u128(v: u128) -> Self {
        GrantId(v)
    }

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// A random id.
    pub fn random() -> Self {
        GrantId(rand::random())
    }
}

impl Serialize for GrantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:032x}", self.0))
    }
}

impl<'de> Deserialize<'de> for GrantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        u128::from_str_radix(&s, 16)
            .map(GrantId)
            .map_err(serde::de::Error::custom)
    }
}

/// What an access or refresh token stands for. Built with [`TokenRecord::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The client the token was issued to.
    pub client_id: Arc<str>,
    /// The granted scope.
    pub scope: Scope,
    /// The resource owner (user), when one granted it.
    pub subject: Option<Arc<str>>,
    /// Application data kept with the grant (txoauth2's `additionalData`).
    pub extra: Option<Arc<serde_json::Value>>,
    /// The grant the token belongs to.
    pub grant_id: GrantId,
    /// Issue time, Unix seconds.
    pub issued_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The resources the token is for (RFC 8707), as the server knows them; for a refresh
    /// token, every resource granted to its family. Empty: the default audience (see
    /// [`crate::resource_indicator`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<Arc<str>>,
}

impl TokenRecord {
    /// A record of a token issued to `client_id` with `scope` in `grant`, at
    /// `issued_at`, expiring at `expires_at` (Unix seconds); no subject, no extra data.
    pub fn new(
        client_id: impl Into<Arc<str>>,
        scope: Scope,
        grant_id: GrantId,
        issued_at: i64,
        expires_at: i64,
    ) -> Self {
        TokenRecord {
            client_id: client_id.into(),
            scope,
            subject: None,
            extra: None,
            grant_id,
            issued_at,
            expires_at,
            audience: Vec::new(),
        }
    }

    /// Sets the audience (the resources the token is for).
    pub fn with_audience(mut self, audience: Vec<Arc<str>>) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the resource owner.
    pub fn with_subject(mut self, subject: impl Into<Arc<str>>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the application data.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Arc::new(extra));
        self
    }

    /// Whether the token has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// An issued authorization code and what it is bound to (RFC 6749 §4.1.2, RFC 7636).
/// Built with [`CodeRecord::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeRecord {
    /// The client the code was issued to.
    pub client_id: Arc<str>,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was present in the authorization request (then the token
    /// request must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    /// The granted scope.
    pub scope: Scope,
    /// The resource owner.
    pub subject: Option<Arc<str>>,
    /// Application data kept with the grant.
    pub extra: Option<Arc<serde_json::Value>>,
    /// The PKCE challenge, if the request had one.
    pub challenge: Option<CodeChallenge>,
    /// The grant the tokens issued from this code will belong to.
    pub grant_id: GrantId,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The resources the authorization request named (RFC 8707), which token requests may
    /// narrow; empty when it named none (the default audience).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<Arc<str>>,
}

impl CodeRecord {
    /// A code of `client_id` for `redirect_uri` (sent in the request) and `scope`, in
    /// `grant`, expiring at `expires_at`; no subject, extra data or PKCE challenge.
    pub fn new(
        client_id: impl Into<Arc<str>>,
        redirect_uri: impl Into<String>,
        scope: Scope,
        grant_id: GrantId,
        expires_at: i64,
    ) -> Self {
        CodeRecord {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            redirect_uri_sent: true,
            scope,
            subject: None,
            extra: None,
            challenge: None,
            grant_id,
            expires_at,
            audience: Vec::new(),
        }
    }

    /// Sets the resources the authorization request named.
    pub fn with_audience(mut self, audience: Vec<Arc<str>>) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the resource owner.
    pub fn with_subject(mut self, subject: impl Into<Arc<str>>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the PKCE challenge.
    pub fn with_challenge(mut self, challenge: CodeChallenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Whether `redirect_uri` was sent in the authorization request.
    pub fn with_redirect_uri_sent(mut self, sent: bool) -> Self {
        self.redirect_uri_sent = sent;
        self
    }
}

/// The outcome of [`CodeStore::take_code`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CodeTake {
    /// The code was unused; it is now marked used and this caller alone holds it.
    Taken(CodeRecord),
    /// The code had been used already (a replay): the record tells which grant to revoke.
    Replayed(CodeRecord),
    /// No such code (never issued, or purged after expiry).
    Unknown,
}

/// The state of a stored refresh token.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RefreshState {
    /// Current and usable (if not expired).
    Active(TokenRecord),
    /// Rotated out: presenting it again is a reuse (RFC 9700 §4.14.2).
    Rotated(TokenRecord),
    /// No such token (never issued, revoked, or purged).
    Unknown,
}

/// The outcome of [`RefreshTokenStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rotation {
    /// The old token was active; it is now rotated out and the new one stored.
    Rotated,
    /// The old token had already been rotated out (a concurrent or replayed use).
    AlreadyRotated,
    /// The old token no longer exists.
    Unknown,
    /// The old token had been rotated out inside the [`ReuseWindow`] passed to
    /// [`RefreshTokenStore::rotate_refresh_within`]: the new one is stored in the same
    /// family and the old one stays rotated out, its rotation time unchanged.
    WithinReuseInterval,
}

/// The reuse interval of a refresh rotation
/// ([`RefreshTokenStore::rotate_refresh_within`]): a token rotated out at `rotated_at` may
/// be presented again while `now < rotated_at + interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReuseWindow {
    /// The time of this rotation, Unix seconds: what a store records as the old token's
    /// rotation time when it rotates an active token.
    pub now: i64,
    /// The reuse interval in seconds (the server's `refresh_token_reuse_interval`).
    pub interval: u64,
}

impl ReuseWindow {
    /// The window of a rotation at `now` with `interval` seconds of reuse.
    pub fn new(now: i64, interval: u64) -> Self {
        ReuseWindow { now, interval }
    }

    /// The earliest rotation time inside the window: a token rotated out at or after it
    /// (a later time, from another instance's clock, included) may be used again.
    pub fn earliest_rotation(&self) -> i64 {
        let interval = i64::try_from(self.interval).unwrap_or(i64::MAX);
        self.now.saturating_sub(interval).saturating_add(1)
    }

    /// Whether a token rotated out at `rotated_at` is inside the window.
    pub fn contains(&self, rotated_at: i64) -> bool {
        rotated_at >= self.earliest_rotation()
    }
}

/// A pending authorization request awaiting the resource owner's decision (made by the
/// authorization endpoint; stores keep and return it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingRecord {
    /// The client.
    pub client_id: Arc<str>,
    /// `code` (or `token` for the legacy implicit grant).
    pub response_type: crate::grant_type::ResponseType,
    /// The resolved redirect URI.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was present in the request.
    pub redirect_uri_sent: bool,
    /// The requested scope.
    pub scope: Scope,
    /// `state`, exactly as sent.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub challenge: Option<CodeChallenge>,
    /// The CSRF token the decision form must carry.
    pub csrf_token: String,
    /// Digest of the user-agent binding cookie value.
    pub binding: TokenDigest,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The resources the request named (RFC 8707); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<Arc<str>>,
}

impl PendingRecord {
    /// The consent protections of this pending request (its binding, its form's CSRF token
    /// and its expiry), checked by [`crate::decision::take_once`] before it is decided.
    pub fn decision_guard(&self) -> crate::decision::DecisionGuard<'_> {
        crate::decision::DecisionGuard::new(&self.binding, &self.csrf_token, self.expires_at)
    }
}

/// Looks up clients (txoauth2's `ClientStorage`).
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// The client with this id, if registered.
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError>;

    /// This store as a writable [`ClientRegistry`], if it is one. The default is `None`
    /// (read-only); a store implementing [`ClientRegistry`] returns `Some(self)`, which is
    /// how the server finds the registry among its [`Stores`] (see [`ClientRegistry`]).
    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        None
    }
}

/// Authorization codes (RFC 6749 §4.1.2): stored at grant time, taken once at the token
/// endpoint.
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Stores a new code.
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError>;
    /// Atomically marks the code used and returns its record. Exactly one of any number of
    /// concurrent callers gets [`CodeTake::Taken`]. A used code stays known (as
    /// [`CodeTake::Replayed`]) until it expires, so a replay can be detected.
    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError>;
    /// Undoes a [`CodeStore::take_code`] whose token writes failed, so a store outage does
    /// not burn the code.
    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError>;
}

/// Access tokens.
#[async_trait]
pub trait AccessTokenStore: Send + Sync + 'static {
    /// Stores an access token.
    ///
    /// If [`AccessTokenStore::revoke_access_grant`] has left a live tombstone for
    /// `record.grant_id`, stores nothing and fails with [`StorageError::GrantRevoked`].
    /// The tombstone check and the write are atomic with respect to that revocation: a
    /// concurrent put either completes before the revocation (which then removes the token)
    /// or sees the tombstone.
    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError>;
    /// The record of a live (not revoked) access token. Expiry is checked by the caller.
    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError>;
    /// Revokes one access token, returning its record if it existed.
    async fn revoke_access(&self, token: &TokenDigest)
        -> Result<Option<TokenRecord>, StorageError>;
    /// Revokes every access token of a grant; returns how many were revoked.
    ///
    /// Also leaves a tombstone for `grant` that lasts at least until `until` (Unix
    /// seconds): until then [`AccessTokenStore::put_access`] refuses the grant's tokens
    /// with [`StorageError::GrantRevoked`]. Revoking again keeps the later of the two
    /// times. After `until` the store may drop the tombstone ([`Purge::purge_expired`] at
    /// a later `now`, or native expiry). The core passes now plus the longest of the code,
    /// access and refresh token lifetimes, so nothing issued from the grant can still be
    /// valid when its tombstone goes.
    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError>;

    /// Revokes every access token issued to `client_id` (whatever its grant); returns how
    /// many were revoked. The server calls it (with
    /// [`RefreshTokenStore::revoke_refresh_client`]) before it deletes a client, so
    /// deleting a client ends its tokens.
    ///
    /// Also leaves a tombstone for the client id that lasts at least until `until`: until
    /// then [`AccessTokenStore::put_access`] of a record whose
    /// [`client_id`](TokenRecord::client_id) is `client_id` stores nothing and fails with
    /// [`StorageError::GrantRevoked`], atomically with respect to this revocation as for a
    /// grant tombstone (a concurrent put either completes before and is removed, or is
    /// refused). Revoking again keeps the later time; after `until` the store may drop the
    /// tombstone. The core passes the same time as for a grant revocation (see
    /// [`AccessTokenStore::revoke_access_grant`]).
    ///
    /// A store must not answer this with a full scan of every token if it can avoid it:
    /// index the tokens by client (the built-in durable stores do; the memory store scans).
    /// There is no default: a store that cannot revoke by client must say so with an error,
    /// never report success while the tokens stay valid.
    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError>;

    /// The time until which `grant`'s access-token tombstone lasts, if the store holds one
    /// (laid by [`AccessTokenStore::revoke_access_grant`]; it may already have passed: the
    /// caller compares with its clock). This is how a self-contained format, whose tokens
    /// the store does not hold, keeps its revocations in the store: it revokes with
    /// [`AccessTokenStore::revoke_access_grant`] and refuses a token whose grant reads back
    /// a tombstone in the future, on every instance sharing the store.
    ///
    /// The default says the store cannot ([`UnsupportedOperation`]): never an answer that
    /// would let a revoked token through. The built-in stores implement it.
    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        let _ = grant;
        Err(StorageError::other(UnsupportedOperation(
            "AccessTokenStore::access_grant_tombstone",
        )))
    }
}

/// A store was asked for an operation it does not implement (a trait method whose default
/// refuses, such as [`AccessTokenStore::access_grant_tombstone`]).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this store does not implement {0}")]
pub struct UnsupportedOperation(pub &'static str);

/// Refresh tokens, with rotation.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync + 'static {
    /// Stores a refresh token.
    ///
    /// If [`RefreshTokenStore::revoke_refresh_grant`] has left a live tombstone for
    /// `record.grant_id`, stores nothing and fails with [`StorageError::GrantRevoked`]
    /// (atomically with respect to that revocation, as for
    /// [`AccessTokenStore::put_access`]).
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError>;
    /// The state of a refresh token.
    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError>;
    /// Atomically rotates `old` out and stores `new` with `record`, if `old` is still active.
    ///
    /// If the family `record.grant_id` is tombstoned (see
    /// [`RefreshTokenStore::revoke_refresh_grant`]), changes nothing (`old` is not marked
    /// rotated, `new` is not stored) and fails with [`StorageError::GrantRevoked`],
    /// atomically with respect to the revocation.
    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<Rotation, StorageError>;
    /// Whether [`RefreshTokenStore::rotate_refresh_within`] honours its window. The
    /// default is `false`; the server refuses to start with a
    /// `refresh_token_reuse_interval` above 0 on a store that says `false`.
    fn supports_reuse_interval(&self) -> bool {
        false
    }
    /// Like [`RefreshTokenStore::rotate_refresh`], with a reuse interval, atomically:
    ///
    /// - `old` active: marks it rotated out at `window.now`, stores `new`:
    ///   [`Rotation::Rotated`];
    /// - `old` rotated out at a time the window [contains](ReuseWindow::contains): stores
    ///   `new` in the same family and leaves `old` as it is (its rotation time unchanged,
    ///   so the window never slides): [`Rotation::WithinReuseInterval`];
    /// - `old` rotated out before the window (or at a time the store did not record):
    ///   [`Rotation::AlreadyRotated`], nothing stored;
    /// - `old` unknown: [`Rotation::Unknown`];
    /// - family or client tombstoned: [`StorageError::GrantRevoked`], nothing changed, as
    ///   for [`RefreshTokenStore::rotate_refresh`].
    ///
    /// Of concurrent rotations of one active token exactly one gets [`Rotation::Rotated`];
    /// the others, inside the window, get [`Rotation::WithinReuseInterval`]. A store that
    /// implements this returns `true` from
    /// [`RefreshTokenStore::supports_reuse_interval`]. The default ignores the window (a
    /// strict [`RefreshTokenStore::rotate_refresh`]), which is atomic but never answers
    /// [`Rotation::WithinReuseInterval`].
    async fn rotate_refresh_within(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: ReuseWindow,
    ) -> Result<Rotation, StorageError> {
        let _ = window;
        self.rotate_refresh(old, new, record).await
    }
    /// Revokes one refresh token, returning its record if it existed.
    async fn revoke_refresh(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError>;
    /// Revokes every refresh token of a grant (the whole rotation family, rotated-out
    /// tokens included); returns how many were revoked.
    ///
    /// Also leaves a tombstone for `grant` that lasts at least until `until` (Unix
    /// seconds): until then [`RefreshTokenStore::put_refresh`] and
    /// [`RefreshTokenStore::rotate_refresh`] refuse the family with
    /// [`StorageError::GrantRevoked`]. Revoking again keeps the later time; after `until`
    /// the store may drop the tombstone (see [`AccessTokenStore::revoke_access_grant`]).
    async fn revoke_refresh_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError>;

    /// Revokes every refresh token issued to `client_id` (every family, rotated-out tokens
    /// included); returns how many were revoked.
    ///
    /// Also leaves a tombstone for the client id that lasts at least until `until`: until
    /// then [`RefreshTokenStore::put_refresh`] and [`RefreshTokenStore::rotate_refresh`]
    /// of a record of the client store nothing and fail with
    /// [`StorageError::GrantRevoked`], atomically with respect to this revocation (see
    /// [`AccessTokenStore::revoke_access_client`], which states the rest of the contract).
    async fn revoke_refresh_client(&self, client_id: &str, until: i64)
        -> Result<u64, StorageError>;
}

/// Pending authorization requests between the authorization endpoint and the decision.
#[async_trait]
pub trait PendingStore: Send + Sync + 'static {
    /// Stores a pending request under its handle's digest.
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError>;
    /// Reads a pending request without consuming it.
    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError>;
    /// Atomically removes and returns a pending request (single use).
    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError>;
}

/// Verifies resource-owner passwords for the password grant (txoauth2's `UserPasswordManager`).
#[async_trait]
pub trait PasswordVerifier: Send + Sync + 'static {
    /// The subject (user id) if `username`/`password` are valid, `None` otherwise.
    async fn verify(&self, username: &str, password: &str) -> Result<Option<String>, StorageError>;
}

/// Removes expired entries. Backends with native expiry (Redis TTLs) may do nothing.
#[async_trait]
pub trait Purge: Send + Sync + 'static {
    /// Deletes everything that expired before `now` (Unix seconds), grant tombstones whose
    /// `until` has passed included; returns how many.
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError>;
}

/// The full set of stores a server uses, as shared trait objects: six built-in slots and
/// extension slots for further store traits ([`Stores::get`]). Built with
/// [`Stores::builder`] ([`StoresBuilder`], checked at launch), or the shorthands
/// [`Stores::from_backend`] (the six built-in slots, and the extension slots a built-in
/// backend provides) and [`Stores::new`] (the six built-in slots, no extension slots);
/// replace a field to mix backends.
#[derive(Clone)]
#[non_exhaustive]
pub struct Stores {
    /// Clients. When this store is also a [`ClientRegistry`] (its
    /// [`ClientStore::as_registry`] says so, as [`memory::MemoryStore`] and the durable
    /// backends do), the server creates, updates and deletes clients through it
    /// ([`AuthorizationServer::client_registry`](crate::server::AuthorizationServer::client_registry)).
    pub clients: Arc<dyn ClientStore>,
    /// Authorization codes.
    pub codes: Arc<dyn CodeStore>,
    /// Access tokens.
    pub access: Arc<dyn AccessTokenStore>,
    /// Refresh tokens.
    pub refresh: Arc<dyn RefreshTokenStore>,
    /// Pending authorization requests.
    pub pending: Arc<dyn PendingStore>,
    /// Expiry purge.
    pub purge: Arc<dyn Purge>,
    /// Device authorization requests (RFC 8628), when the device grant is on. Left `None`
    /// with `storage = "memory"`, the server uses a
    /// [`MemoryDeviceCodes`](crate::device::MemoryDeviceCodes).
    pub device_codes: Option<Arc<dyn crate::device::DeviceCodeStore>>,
    /// Extension slots ([`StoresBuilder::slot`]).
    pub(crate) slots: builder::Slots,
}

impl Stores {
    /// Stores from separate parts.
    pub fn new(
        clients: Arc<dyn ClientStore>,
        codes: Arc<dyn CodeStore>,
        access: Arc<dyn AccessTokenStore>,
        refresh: Arc<dyn RefreshTokenStore>,
        pending: Arc<dyn PendingStore>,
        purge: Arc<dyn Purge>,
    ) -> Self {
        Stores {
            clients,
            codes,
            access,
            refresh,
            pending,
            purge,
            device_codes: None,
            slots: Default::default(),
        }
    }

    /// A [`StoresBuilder`] with every slot empty.
    pub fn builder() -> StoresBuilder {
        StoresBuilder::default()
    }

    /// The store in the extension slot of `T` ([`StoresBuilder::slot`]), if filled.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.slots.get::<T>()
    }

    /// Uses one backend for every store. A built-in backend also fills the extension slots
    /// it provides, as with [`StoresBuilder::backend`].
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: ClientStore + CodeStore + AccessTokenStore + RefreshTokenStore + PendingStore + Purge,
    {
        let mut slots = std::collections::HashMap::new();
        builder::fill_builtin_slots(backend.clone(), &mut slots);
        Stores {
            clients: backend.clone(),
            codes: backend.clone(),
            access: backend.clone(),
            refresh: backend.clone(),
            pending: backend.clone(),
            purge: backend,
            device_codes: None,
            slots: builder::Slots(Arc::new(slots)),
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stores {{ extension_slots: {}, .. }}",
            self.slots.names()
        )
    }
}

/// A [`ClientStore`] over a fixed list (clients from config).
#[derive(Debug, Default)]
pub struct StaticClients(std::collections::HashMap<String, Arc<Client>>);

impl StaticClients {
    /// Holds these clients.
    pub fn new(clients: impl IntoIterator<Item = Client>) -> Self {
        StaticClients(
            clients
                .into_iter()
                .map(|c| (c.id().to_owned(), Arc::new(c)))
                .collect(),
        )
    }

    /// Whether no clients are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[async_trait]
impl ClientStore for StaticClients {
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        Ok(self.0.get(id).cloned())
    }
}

/// Looks in `first`, then in `second`.
pub(crate) struct ChainedClients(
    pub(crate) Arc<dyn ClientStore>,
    pub(crate) Arc<dyn ClientStore>,
);

#[async_trait]
impl ClientStore for ChainedClients {
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        match self.0.client(id).await? {
            Some(c) => Ok(Some(c)),
            None => self.1.client(id).await,
        }
    }
}
