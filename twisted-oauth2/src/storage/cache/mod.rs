//! The validation cache: a bounded in-process cache of validated access tokens in front
//! of a shared [`AccessTokenStore`], with revocations fanned out to every instance.
//!
//! [`CachedAccessStore`] wraps the real store. [`AccessTokenStore::access`] answers from
//! memory when it can; a miss reads the store and keeps the record. Every entry is bounded
//! three ways: the cache holds at most [`ValidationCacheConfig::max_entries`] records
//! (the oldest are evicted first), an entry is never served at or after its token's
//! `expires_at`, and an entry older than [`ValidationCacheConfig::max_staleness`] seconds
//! is read from the store again even when no notification came.
//!
//! Revocations ([`AccessTokenStore::revoke_access`],
//! [`AccessTokenStore::revoke_access_grant`], [`AccessTokenStore::revoke_access_client`])
//! go to the store first, then the local cache drops the token (or every cached token of
//! the grant, or of the client), then the revocation is published
//! on a [`RevocationChannel`], whose subscriber in every instance does the same:
//!
//! | store | channel | reaches |
//! |---|---|---|
//! | PostgreSQL | `postgres::PgNotifyChannel`: `LISTEN`/`NOTIFY` on its own connections (feature `postgres`) | every instance on the database |
//! | Redis, Redis Cluster | `redis::RedisPubSubChannel`: pub/sub on its own connections (feature `redis`) | every instance on the server or cluster (and key prefix) |
//! | SQLite, memory | [`LocalOnly`] | this process only |
//!
//! Correctness comes before speed. The cache serves only while its channel's subscription
//! is confirmed ([`RevocationSink::subscribed`]); when the channel reports it lost
//! ([`RevocationSink::lost`]), the cache is emptied and every lookup goes to the store
//! until the subscription is back. A lookup that missed and was still reading the store
//! when a revocation (any revocation), a loss or a resubscription arrived does not keep
//! what it read: a sequence number taken before the read must be unchanged, under the
//! shard lock, at insert time.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AccessTokenStore, GrantId, TokenRecord};
use crate::clock::Clock;
use crate::error::{ConfigError, StorageError};
use crate::token::{BuildDigestHasher, TokenDigest};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// The validation cache policy: the `validation_cache` table of the `oauth2`
/// configuration (`[default.oauth2.validation_cache]`). See the [module docs](self).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationCacheConfig {
    /// Cache validated access tokens in this process. Default `false`.
    pub enabled: bool,
    /// Most access tokens held; the oldest cached are evicted first. Default 100000.
    pub max_entries: usize,
    /// Seconds after which a cached token is read from the store again, notification or
    /// not. Default 60.
    pub max_staleness: u64,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for ValidationCacheConfig {
    fn default() -> Self {
        ValidationCacheConfig {
            enabled: false,
            max_entries: 100_000,
            max_staleness: 60,
            __non_exhaustive: (),
        }
    }
}

impl fmt::Debug for ValidationCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationCacheConfig")
            .field("enabled", &self.enabled)
            .field("max_entries", &self.max_entries)
            .field("max_staleness", &self.max_staleness)
            .finish()
    }
}

impl ValidationCacheConfig {
    /// Checks the settings (also when the cache is off, so a typo is found before it is
    /// turned on).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_entries == 0 {
            return Err(ConfigError::Setting {
                key: "validation_cache.max_entries",
                reason: "must be a positive limit".into(),
            });
        }
        if self.max_staleness == 0 || self.max_staleness > i64::MAX as u64 / 4 {
            return Err(ConfigError::Setting {
                key: "validation_cache.max_staleness",
                reason: "must be a positive number of seconds".into(),
            });
        }
        Ok(())
    }
}

/// A revocation as it travels between instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// One access token, by digest.
    Token(TokenDigest),
    /// Every access token of a grant.
    Grant(GrantId),
    /// Every access token of a client, named by the SHA-256 of its id
    /// ([`Revocation::client`]).
    Client(TokenDigest),
    /// One self-contained access token, by the SHA-256 of its `jti` (RFC 9068), revoked
    /// until its `exp` (Unix seconds) ([`Revocation::jti`]). The validation cache holds no
    /// such token and ignores it; the JWT format's denylist keeps it.
    Jti(TokenDigest, i64),
}

impl Revocation {
    /// The revocation of every access token of `client_id`.
    pub fn client(client_id: &str) -> Self {
        Revocation::Client(TokenDigest::of(client_id))
    }

    /// The revocation of the self-contained token whose `jti` is `jti`, until `exp`.
    pub fn jti(jti: &str, exp: i64) -> Self {
        Revocation::Jti(TokenDigest::of(jti), exp)
    }

    /// The wire form: `t` and 64 hex digits for a token, `g` and 32 for a grant, `c` and 64
    /// for a client (the SHA-256 of its id, so any id fits a notification), `j`, 64 hex
    /// digits and `:` and the decimal `exp` for a `jti`. An instance of an older version
    /// does not read `c` or `j`, and so empties its whole cache (never serving what the
    /// message may have revoked).
    pub fn encode(&self) -> String {
        match self {
            Revocation::Token(d) => format!("t{}", d.to_hex()),
            Revocation::Grant(g) => format!("g{:032x}", g.as_u128()),
            Revocation::Client(d) => format!("c{}", d.to_hex()),
            Revocation::Jti(d, exp) => format!("j{}:{exp}", d.to_hex()),
        }
    }

    /// Reads [`Revocation::encode`]'s form; anything else is `None`.
    pub fn decode(s: &str) -> Option<Self> {
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let digest = |h: &str| {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some(TokenDigest::from_bytes(bytes))
        };
        if let Some(h) = s.strip_prefix('t').filter(|h| hex(h, 64)) {
            return digest(h).map(Revocation::Token);
        }
        if let Some(h) = s.strip_prefix('c').filter(|h| hex(h, 64)) {
            return digest(h).map(Revocation::Client);
        }
        if let Some((h, exp)) = s.strip_prefix('j').and_then(|r| r.split_once(':')) {
            let exp = (hex(h, 64)
                && !exp.is_empty()
                && exp.len() <= 19
                && exp.bytes().all(|b| b.is_ascii_digit()))
            .then(|| exp.parse::<i64>().ok())
            .flatten()?;
            return digest(h).map(|d| Revocation::Jti(d, exp));
        }
        let h = s.strip_prefix('g').filter(|h| hex(h, 32))?;
        u128::from_str_radix(h, 16)
            .ok()
            .map(|v| Revocation::Grant(GrantId::from_u128(v)))
    }
}

/// Carries revocations between the instances sharing a store.
///
/// [`CachedAccessStore::new`] calls [`RevocationChannel::start`] once with the cache's
/// [`RevocationSink`]; the channel then delivers every revocation it receives (its own
/// included), says when its subscription is confirmed and when it is lost. The cache
/// serves only between [`RevocationSink::subscribed`] and [`RevocationSink::lost`].
#[async_trait]
pub trait RevocationChannel: Send + Sync + 'static {
    /// How revocations travel, for the launch log (`PostgreSQL LISTEN/NOTIFY`).
    fn describe(&self) -> &'static str;

    /// Starts delivering to `sink` (in a background task for a networked channel). A
    /// channel that cannot start (no async runtime, say) fails, and no cache is built.
    fn start(&self, sink: RevocationSink) -> Result<(), StorageError>;

    /// Sends a revocation to every subscribed instance. An error means other instances
    /// may not have heard of it.
    async fn publish(&self, revocation: Revocation) -> Result<(), StorageError>;
}

/// The channel of a store only this process uses (memory, a SQLite file on one machine):
/// revocations evict locally and go nowhere else.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalOnly;

#[async_trait]
impl RevocationChannel for LocalOnly {
    fn describe(&self) -> &'static str {
        "local only (this process)"
    }

    fn start(&self, sink: RevocationSink) -> Result<(), StorageError> {
        sink.subscribed();
        Ok(())
    }

    async fn publish(&self, _revocation: Revocation) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Whatever else keeps state a revocation must reach (the JWT format's denylist, a cache of
/// an extension): it receives what a [`RevocationChannel`] delivers once started with
/// [`RevocationSink::listener`]. Called from the channel's task: keep every method short
/// and free of I/O.
pub trait RevocationListener: Send + Sync + 'static {
    /// The subscription is confirmed: revocations from every instance arrive from now on.
    fn subscribed(&self);

    /// The subscription is lost: revocations of other instances may be missed until the
    /// next [`Self::subscribed`].
    fn lost(&self);

    /// A revocation arrived (its own instance's included).
    fn deliver(&self, revocation: Revocation);

    /// A message the channel could not read arrived: it may have revoked anything.
    fn deliver_unreadable(&self);
}

#[derive(Clone)]
enum SinkTarget {
    Cache(Weak<Shared>),
    Listener(Weak<dyn RevocationListener>),
}

/// Where a [`RevocationChannel`] delivers to: a handle on one cache (or one
/// [`RevocationListener`]), which does not keep it alive ([`RevocationSink::is_closed`]
/// once it is dropped).
#[derive(Clone)]
pub struct RevocationSink(SinkTarget);

impl fmt::Debug for RevocationSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSink")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl RevocationSink {
    /// A sink delivering to `listener` while it lives.
    pub fn listener(listener: Weak<dyn RevocationListener>) -> Self {
        RevocationSink(SinkTarget::Listener(listener))
    }

    /// The subscription is confirmed: the cache starts (or resumes) serving, empty.
    pub fn subscribed(&self) {
        match &self.0 {
            SinkTarget::Cache(w) => {
                if let Some(s) = w.upgrade() {
                    s.bump();
                    s.clear();
                    s.serving.store(true, Ordering::SeqCst);
                }
            }
            SinkTarget::Listener(w) => {
                if let Some(l) = w.upgrade() {
                    l.subscribed();
                }
            }
        }
    }

    /// The subscription is lost: the cache stops serving and is emptied.
    pub fn lost(&self) {
        match &self.0 {
            SinkTarget::Cache(w) => {
                if let Some(s) = w.upgrade() {
                    s.serving.store(false, Ordering::SeqCst);
                    s.bump();
                    s.clear();
                }
            }
            SinkTarget::Listener(w) => {
                if let Some(l) = w.upgrade() {
                    l.lost();
                }
            }
        }
    }

    /// A revocation arrived: drops the token, or every cached token of the grant or the
    /// client.
    pub fn deliver(&self, revocation: Revocation) {
        match &self.0 {
            SinkTarget::Cache(w) => {
                if let Some(s) = w.upgrade() {
                    s.evict(revocation);
                }
            }
            SinkTarget::Listener(w) => {
                if let Some(l) = w.upgrade() {
                    l.deliver(revocation);
                }
            }
        }
    }

    /// A message the channel could not read arrived (a newer peer, say): the whole cache is
    /// dropped, as it may have named anything.
    pub fn deliver_unreadable(&self) {
        match &self.0 {
            SinkTarget::Cache(w) => {
                if let Some(s) = w.upgrade() {
                    s.bump();
                    s.clear();
                }
            }
            SinkTarget::Listener(w) => {
                if let Some(l) = w.upgrade() {
                    l.deliver_unreadable();
                }
            }
        }
    }

    /// Whether the cache (or listener) is gone, so the channel can stop.
    pub fn is_closed(&self) -> bool {
        match &self.0 {
            SinkTarget::Cache(w) => w.strong_count() == 0,
            SinkTarget::Listener(w) => w.strong_count() == 0,
        }
    }
}

/// What the launch log says of a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    max_entries: usize,
    max_staleness: u64,
    channel: &'static str,
}

impl CachePolicy {
    /// At most this many tokens cached.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Seconds before a cached token is read again.
    pub fn max_staleness(&self) -> u64 {
        self.max_staleness
    }

    /// How revocations reach other instances ([`RevocationChannel::describe`]).
    pub fn channel(&self) -> &'static str {
        self.channel
    }
}

impl fmt::Display for CachePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "on, at most {} tokens, re-read after {} s, revocations via {}; not served while \
             the channel is down",
            self.max_entries, self.max_staleness, self.channel
        )
    }
}

struct Entry {
    record: TokenRecord,
    /// Served while the clock is before this: the earlier of the token's expiry and the
    /// time it was cached plus the staleness bound.
    valid_until: i64,
    /// Insertion number, matching this entry's place in [`Shard::order`].
    stamp: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<TokenDigest, Entry, BuildDigestHasher>,
    grants: HashMap<GrantId, Vec<TokenDigest>, BuildDigestHasher>,
    /// Insertion order (digest, stamp); stale pairs (removed or re-inserted entries) are
    /// skipped when popped and compacted away when they pile up.
    order: VecDeque<(TokenDigest, u64)>,
    next_stamp: u64,
}

impl Shard {
    fn remove(&mut self, digest: &TokenDigest) -> bool {
        let Some(e) = self.map.remove(digest) else {
            return false;
        };
        let g = e.record.grant_id;
        if let Some(list) = self.grants.get_mut(&g) {
            list.retain(|d| d != digest);
            if list.is_empty() {
                self.grants.remove(&g);
            }
        }
        true
    }

    fn clear(&mut self) {
        self.map.clear();
        self.grants.clear();
        self.order.clear();
    }

    fn insert(&mut self, digest: TokenDigest, record: TokenRecord, until: (i64, i64), cap: usize) {
        let (now, valid_until) = until;
        self.remove(&digest);
        // Evict in insertion order: the front is the oldest cached, so the first to go
        // stale; drop what is no longer valid, then the oldest until there is room.
        while let Some(&(d, stamp)) = self.order.front() {
            match self.map.get(&d) {
                Some(e) if e.stamp == stamp => {
                    if self.map.len() < cap && now < e.valid_until {
                        break;
                    }
                    self.order.pop_front();
                    self.remove(&d);
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.grants.entry(record.grant_id).or_default().push(digest);
        self.map.insert(
            digest,
            Entry {
                record,
                valid_until,
                stamp,
            },
        );
        self.order.push_back((digest, stamp));
        if self.order.len() > 2 * cap + 16 {
            let map = &self.map;
            self.order
                .retain(|(d, s)| map.get(d).is_some_and(|e| e.stamp == *s));
        }
    }
}

/// The state a [`CachedAccessStore`] shares with its channel's [`RevocationSink`].
struct Shared {
    shards: Box<[Mutex<Shard>]>,
    /// Every shard holds `per_shard` entries, the first `extra` one more: `max_entries` in all.
    per_shard: usize,
    extra: usize,
    max_staleness: i64,
    /// The subscription is confirmed and not lost.
    serving: AtomicBool,
    /// Bumped by every revocation, loss and subscription; a miss inserts only if it is
    /// unchanged since before its store read.
    seq: AtomicU64,
}

impl Shared {
    fn new(max_entries: usize, max_staleness: u64) -> Self {
        let max_entries = max_entries.max(1);
        // A power of two no larger than the bound, so every shard holds at least one.
        let mut n = 1usize;
        while n * 2 <= max_entries.min(32) {
            n *= 2;
        }
        Shared {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_entries / n,
            extra: max_entries % n,
            max_staleness: i64::try_from(max_staleness).unwrap_or(i64::MAX / 4),
            serving: AtomicBool::new(false),
            seq: AtomicU64::new(0),
        }
    }

    fn index(&self, digest: &TokenDigest) -> usize {
        // Bytes the map's hasher does not use, so shard and bucket are independent.
        let b = digest.as_bytes();
        (usize::from(b[8]) | usize::from(b[9]) << 8) & (self.shards.len() - 1)
    }

    fn shard(&self, digest: &TokenDigest) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.index(digest)])
    }

    fn bump(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }

    fn clear(&self) {
        for s in self.shards.iter() {
            lock(s).clear();
        }
    }

    fn evict(&self, revocation: Revocation) {
        // The bump comes first: a miss that read the store before it cannot insert after.
        self.bump();
        match revocation {
            Revocation::Token(d) => {
                self.shard(&d).remove(&d);
            }
            Revocation::Grant(g) => {
                for s in self.shards.iter() {
                    let mut s = lock(s);
                    if let Some(list) = s.grants.remove(&g) {
                        for d in list {
                            s.map.remove(&d);
                        }
                    }
                }
            }
            // Not a token this cache holds (a self-contained one).
            Revocation::Jti(..) => {}
            // Rare (a client deleted): a scan of the bounded cache, not an index.
            Revocation::Client(c) => {
                for s in self.shards.iter() {
                    let mut s = lock(s);
                    let gone: Vec<TokenDigest> = s
                        .map
                        .iter()
                        .filter(|(_, e)| TokenDigest::of(&e.record.client_id) == c)
                        .map(|(d, _)| *d)
                        .collect();
                    for d in gone {
                        s.remove(&d);
                    }
                }
            }
        }
    }

    fn get(&self, digest: &TokenDigest, now: i64) -> Option<TokenRecord> {
        let mut s = self.shard(digest);
        let e = s.map.get(digest)?;
        if now < e.valid_until {
            return Some(e.record.clone());
        }
        s.remove(digest);
        None
    }

    /// Keeps what a miss read, unless anything happened since `seq` was `before`.
    fn insert(&self, digest: TokenDigest, record: &TokenRecord, now: i64, before: u64) {
        let valid_until = record
            .expires_at
            .min(now.saturating_add(self.max_staleness));
        if valid_until <= now {
            return;
        }
        let i = self.index(&digest);
        let cap = self.per_shard + usize::from(i < self.extra);
        let mut s = lock(&self.shards[i]);
        if !self.serving.load(Ordering::SeqCst) || self.seq.load(Ordering::SeqCst) != before {
            return;
        }
        s.insert(digest, record.clone(), (now, valid_until), cap);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard lock leaves at worst a missing index entry; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An [`AccessTokenStore`] that caches validated tokens of the store it wraps. See the
/// [module docs](self).
pub struct CachedAccessStore {
    inner: Arc<dyn AccessTokenStore>,
    shared: Arc<Shared>,
    channel: Arc<dyn RevocationChannel>,
    clock: Arc<dyn Clock>,
    policy: CachePolicy,
}

impl fmt::Debug for CachedAccessStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedAccessStore")
            .field("policy", &self.policy)
            .field("serving", &self.is_serving())
            .finish_non_exhaustive()
    }
}

impl CachedAccessStore {
    /// Caches `inner`'s tokens under `config`'s bounds (its `enabled` is not read), with
    /// revocations on `channel`, and expiry and staleness read from `clock`. Starts the
    /// channel ([`RevocationChannel::start`]); the cache serves once it confirms its
    /// subscription. Bounds that are not positive are a [`StorageError::Other`] wrapping
    /// the [`ConfigError`].
    pub fn new(
        inner: Arc<dyn AccessTokenStore>,
        config: &ValidationCacheConfig,
        channel: Arc<dyn RevocationChannel>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StorageError> {
        config.validate().map_err(StorageError::other)?;
        let shared = Arc::new(Shared::new(config.max_entries, config.max_staleness));
        channel.start(RevocationSink(SinkTarget::Cache(Arc::downgrade(&shared))))?;
        let policy = CachePolicy {
            max_entries: config.max_entries,
            max_staleness: config.max_staleness,
            channel: channel.describe(),
        };
        Ok(CachedAccessStore {
            inner,
            shared,
            channel,
            clock,
            policy,
        })
    }

    /// The policy, as the launch log states it.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// Whether lookups are answered from memory now (the channel's subscription is
    /// confirmed and not lost).
    pub fn is_serving(&self) -> bool {
        self.shared.serving.load(Ordering::SeqCst)
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn publish(&self, revocation: Revocation) -> Result<(), StorageError> {
        self.shared.evict(revocation);
        let r = self.channel.publish(revocation).await;
        if let Err(e) = &r {
            log::warn!(
                "twisted-oauth2: a revocation could not be published on the validation cache's \
                 channel ({}): other instances may serve the revoked token for up to {} s: {e}",
                self.policy.channel,
                self.policy.max_staleness
            );
        }
        r
    }
}

#[async_trait]
impl AccessTokenStore for CachedAccessStore {
    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        self.inner.access_grant_tombstone(grant).await
    }

    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.inner.put_access(token, record).await
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        let now = self.clock.unix();
        let before = self.shared.seq.load(Ordering::SeqCst);
        let serving = self.shared.serving.load(Ordering::SeqCst);
        if serving {
            if let Some(r) = self.shared.get(token, now) {
                return Ok(Some(r));
            }
        }
        let found = self.inner.access(token).await?;
        if let (true, Some(r)) = (serving, &found) {
            self.shared.insert(*token, r, now, before);
        }
        Ok(found)
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let r = self.inner.revoke_access(token).await;
        let published = self.publish(Revocation::Token(*token)).await;
        let r = r?;
        published?;
        Ok(r)
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        let r = self.inner.revoke_access_grant(grant, until).await;
        let published = self.publish(Revocation::Grant(grant)).await;
        let n = r?;
        published?;
        Ok(n)
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        let r = self.inner.revoke_access_client(client_id, until).await;
        let published = self.publish(Revocation::client(client_id)).await;
        let n = r?;
        published?;
        Ok(n)
    }
}

/// The channel for the store a storage URL names (see [`crate::storage::connect`]):
/// PostgreSQL `LISTEN`/`NOTIFY` (feature `postgres`) and Redis pub/sub (feature `redis`)
/// on connections of their own, [`LocalOnly`] for `memory` and `sqlite`. Unknown schemes
/// and schemes whose feature is off are refused as [`crate::storage::connect`] refuses
/// them; a server that cannot be reached is [`StorageError::Unavailable`].
pub async fn revocation_channel_for(url: &str) -> Result<Arc<dyn RevocationChannel>, StorageError> {
    match super::storage_kind(url) {
        "memory" | "sqlite" => Ok(Arc::new(LocalOnly)),
        "postgres" => {
            #[cfg(feature = "postgres")]
            {
                Ok(Arc::new(postgres::PgNotifyChannel::connect(url).await?))
            }
            #[cfg(not(feature = "postgres"))]
            Err(super::connect::feature_off("postgres"))
        }
        "redis" => {
            #[cfg(feature = "redis")]
            {
                Ok(Arc::new(redis::RedisPubSubChannel::connect(url).await?))
            }
            #[cfg(not(feature = "redis"))]
            Err(super::connect::feature_off("redis"))
        }
        other => Err(StorageError::other(ConfigError::Setting {
            key: "storage",
            reason: format!(
                "unknown storage URL scheme `{}`",
                crate::error::printable(other)
            ),
        })),
    }
}

/// Spawns `task` on the current Tokio runtime, or says there is none.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn spawn<F>(task: F) -> Result<(), StorageError>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(task);
            Ok(())
        }
        Err(e) => Err(StorageError::other(e)),
    }
}

/// Backoff between reconnection attempts: doubling from 50 ms to 5 s.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis((50u64 << attempt.min(7)).min(5_000))
}

#[cfg(test)]
mod tests;
