//! In-memory stores: every storage trait over sharded concurrent maps (no global lock).
//!
//! Nothing survives a restart and nothing is shared between processes; use a durable
//! backend for that. Expired entries are dropped by [`Purge::purge_expired`], which the
//! Rocket fairing calls periodically.
//!
//! Access and refresh tokens, the entries a busy server holds by the million, live in a
//! compact sharded table: records sit in fixed-size slabs and two hash indexes (by
//! digest, by grant) hold 4-byte slot numbers, about 140 bytes per live access token in
//! all (see `docs/benchmarks.md`). Slots freed by revocation or purge are reused.
//!
//! Each table also keeps the tombstones of revoked grants, sharded by grant id. A put holds
//! the read lock of its grant's tombstone shard while it checks and writes; a grant
//! revocation takes that shard's write lock to lay the tombstone before it sweeps the
//! tokens, so a put either lands before the sweep (and is swept) or sees the tombstone.
//! Revoked clients have tombstones of their own, sharded by client id and locked the same
//! way; a client revocation scans the table for the client's tokens (no index by client:
//! it is rare, and an index would cost every token its bytes). A purge that drops expired
//! clients drops their tokens too.
//!
//! The store also keeps signing keys and the jti denylist of self-contained tokens
//! ([`SigningKeyStore`](super::SigningKeyStore), [`RevokedJtiStore`](super::RevokedJtiStore));
//! the denylist is capped at [`DEFAULT_REVOKED_JTI_LIMIT`] live entries (or the limit given
//! to [`MemoryStore::with_revoked_jti_limit`]), and a revocation that would pass the cap
//! fails rather than evict a live entry.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use dashmap::DashMap;
use hashbrown::HashTable;

use super::{
    AccessTokenStore, ClientRegistry, ClientStore, CodeRecord, CodeStore, CodeTake, GrantId,
    PendingRecord, PendingStore, Purge, RefreshState, RefreshTokenStore, ReuseWindow, Rotation,
    TokenRecord,
};
use crate::client::Client;
use crate::error::StorageError;
use crate::token::{BuildDigestHasher, TokenDigest};

mod keys;
pub use keys::DEFAULT_REVOKED_JTI_LIMIT;

/// All stores in memory.
#[derive(Default)]
pub struct MemoryStore {
    clients: DashMap<String, Arc<Client>>,
    codes: DashMap<TokenDigest, (CodeRecord, bool), BuildDigestHasher>,
    access: TokenTable<TokenRecord>,
    /// With the rotation time of a rotated-out token ([`NOT_RECORDED`] when a strict
    /// rotation, which knows no time, rotated it).
    refresh: TokenTable<(TokenRecord, Option<i64>)>,
    pending: DashMap<TokenDigest, PendingRecord, BuildDigestHasher>,
    signing_keys: keys::MemoryKeys,
    revoked_jtis: keys::Denylist,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("clients", &self.clients.len())
            .field("codes", &self.codes.len())
            .field("access_tokens", &self.access.len())
            .field("refresh_tokens", &self.refresh.len())
            .field("pending", &self.pending.len())
            .field("signing_keys", &self.signing_keys.len())
            .field("revoked_jtis", &self.revoked_jtis.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Registers a client (in addition to those from config), replacing one with the same
    /// id. See [`ClientRegistry`] for creation that refuses an existing id.
    pub fn add_client(&self, client: Client) {
        self.clients
            .insert(client.id().to_owned(), Arc::new(client));
    }

    /// Number of live access tokens held.
    pub fn access_token_count(&self) -> usize {
        self.access.len()
    }

    /// Number of refresh tokens held (including rotated-out ones kept for reuse detection).
    pub fn refresh_token_count(&self) -> usize {
        self.refresh.len()
    }

    /// Number of codes held (including used ones kept for replay detection).
    pub fn code_count(&self) -> usize {
        self.codes.len()
    }

    /// Number of pending authorization requests held.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        Ok(self.clients.get(id).map(|c| c.clone()))
    }

    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        Some(self)
    }
}

#[async_trait]
impl ClientRegistry for MemoryStore {
    async fn create_client(&self, client: &Client) -> Result<(), StorageError> {
        match self.clients.entry(client.id().to_owned()) {
            dashmap::mapref::entry::Entry::Occupied(_) => Err(StorageError::ClientExists),
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(Arc::new(client.clone()));
                Ok(())
            }
        }
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StorageError> {
        match self.clients.get_mut(client.id()) {
            Some(mut stored) => {
                *stored = Arc::new(client.clone());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StorageError> {
        Ok(self.clients.remove(id).is_some())
    }

    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError> {
        // (expiry, id) of every unused registration; the memory store is for one process
        // and tests, so a scan is acceptable here.
        let mut unused: Vec<(i64, String)> = self
            .clients
            .iter()
            .filter_map(|c| c.expires_at().map(|t| (t, c.id().to_owned())))
            .collect();
        let mut deleted = 0;
        unused.sort_unstable();
        let live = unused.iter().filter(|(t, _)| *t > now).count();
        let mut excess = live.saturating_sub(keep);
        for (t, id) in unused {
            if t > now {
                if excess == 0 {
                    break;
                }
                excess -= 1;
            }
            // Only if still unused (a first token may have cleared the expiry meanwhile).
            if self
                .clients
                .remove_if(&id, |_, c| c.expires_at().is_some())
                .is_some()
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        self.codes.insert(*code, (record.clone(), false));
        Ok(())
    }

    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError> {
        Ok(match self.codes.get_mut(code) {
            None => CodeTake::Unknown,
            Some(mut e) => {
                let (record, used) = &mut *e;
                if *used {
                    CodeTake::Replayed(record.clone())
                } else {
                    *used = true;
                    CodeTake::Taken(record.clone())
                }
            }
        })
    }

    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError> {
        if let Some(mut e) = self.codes.get_mut(code) {
            e.1 = false;
        }
        Ok(())
    }
}

#[async_trait]
impl AccessTokenStore for MemoryStore {
    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.access.insert_live(*token, record.clone())
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.access.get(token))
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.access.remove(token))
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        Ok(self.access.revoke_grant(grant, until))
    }

    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        Ok(self.access.tombstone(grant))
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        Ok(self.access.revoke_client(client_id, until))
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryStore {
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.refresh.insert_live(*token, (record.clone(), None))
    }

    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError> {
        Ok(match self.refresh.get(token) {
            None => RefreshState::Unknown,
            Some((r, Some(_))) => RefreshState::Rotated(r),
            Some((r, None)) => RefreshState::Active(r),
        })
    }

    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<Rotation, StorageError> {
        self.rotate(old, new, record, None)
    }

    fn supports_reuse_interval(&self) -> bool {
        true
    }

    async fn rotate_refresh_within(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: ReuseWindow,
    ) -> Result<Rotation, StorageError> {
        self.rotate(old, new, record, Some(window))
    }

    async fn revoke_refresh(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.refresh.remove(token).map(|(r, _)| r))
    }

    async fn revoke_refresh_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        Ok(self.refresh.revoke_grant(grant, until))
    }

    async fn revoke_refresh_client(
        &self,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        Ok(self.refresh.revoke_client(client_id, until))
    }
}

/// The rotation time of a token rotated out by a strict rotation, which knows no time:
/// never inside a reuse window.
const NOT_RECORDED: i64 = i64::MIN;

impl MemoryStore {
    /// A rotation, strict (`window` `None`) or with a reuse interval.
    fn rotate(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: Option<ReuseWindow>,
    ) -> Result<Rotation, StorageError> {
        // Under the family's tombstone read lock: a revocation of the family either comes
        // after (and sweeps the new token) or before (and the rotation changes nothing).
        self.refresh
            .while_live(record.grant_id, &record.client_id, || {
                self.refresh.insert(*new, (record.clone(), None));
                // The old token's shard is write-locked while its state is read and set, so
                // of concurrent rotations exactly one sees it active.
                let outcome = self
                    .refresh
                    .update(old, |(_, rotated)| match (*rotated, window) {
                        (None, w) => {
                            *rotated = Some(w.map_or(NOT_RECORDED, |w| w.now));
                            Rotation::Rotated
                        }
                        (Some(at), Some(w)) if at != NOT_RECORDED && w.contains(at) => {
                            Rotation::WithinReuseInterval
                        }
                        (Some(_), _) => Rotation::AlreadyRotated,
                    })
                    .unwrap_or(Rotation::Unknown);
                if !matches!(outcome, Rotation::Rotated | Rotation::WithinReuseInterval) {
                    self.refresh.remove(new);
                }
                outcome
            })
    }
}

#[async_trait]
impl PendingStore for MemoryStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        self.pending.insert(*handle, record.clone());
        Ok(())
    }

    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError> {
        Ok(self.pending.get(handle).map(|r| r.clone()))
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        Ok(self.pending.remove(handle).map(|(_, r)| r))
    }
}

#[async_trait]
impl Purge for MemoryStore {
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        let before = self.codes.len() + self.pending.len() + self.clients.len();
        self.codes.retain(|_, (r, _)| r.expires_at > now);
        self.pending.retain(|_, r| r.expires_at > now);
        // Clients whose registration expired (an unused dynamic registration), and with
        // them any token they were issued (one issued just before the expiry).
        let mut gone: HashSet<String> = HashSet::new();
        self.clients.retain(|id, c| {
            let keep = c.expires_at().is_none_or(|t| t > now);
            if !keep {
                gone.insert(id.clone());
            }
            keep
        });
        let after = self.codes.len() + self.pending.len() + self.clients.len();
        let tokens = self
            .access
            .retain(|r| !r.is_expired(now) && !gone.contains(&*r.client_id))
            + self
                .refresh
                .retain(|(r, _)| !r.is_expired(now) && !gone.contains(&*r.client_id));
        let tombstones = self.access.purge_tombstones(now) + self.refresh.purge_tombstones(now);
        let keys = self.signing_keys.purge(now) + self.revoked_jtis.purge(now);
        Ok(before.saturating_sub(after) as u64 + tokens + tombstones + keys)
    }
}

/// What the token table indexes a value under.
trait Granted {
    fn grant(&self) -> GrantId;
    /// The client the token was issued to.
    fn client(&self) -> &Arc<str>;
}

impl Granted for TokenRecord {
    fn grant(&self) -> GrantId {
        self.grant_id
    }
    fn client(&self) -> &Arc<str> {
        &self.client_id
    }
}

impl Granted for (TokenRecord, Option<i64>) {
    fn grant(&self) -> GrantId {
        self.0.grant_id
    }
    fn client(&self) -> &Arc<str> {
        &self.0.client_id
    }
}

/// One shard of client tombstones: client id → until.
type ClientTombstones = HashMap<Box<str>, i64>;

/// Shards (a power of two), chosen by a digest byte the hash indexes do not use.
const SHARDS: usize = 32;
/// Slots per slab: slabs are allocated whole and never move.
const SLAB: usize = 1024;

/// A sharded map from token digest to value, with a secondary index by grant.
///
/// Each shard keeps its entries in fixed-size slabs (no reallocation, no per-entry heap
/// allocation) and two [`HashTable`]s of 4-byte slot numbers: one hashed by digest, one by
/// grant. Freed slots go on a free list and are reused.
///
/// `revoked` holds the tombstones of revoked grants (grant → until), sharded by grant id,
/// and `revoked_clients` those of revoked clients (client id → until), sharded by a hash of
/// the id (see the [module docs](self)).
struct TokenTable<V> {
    shards: Box<[RwLock<Shard<V>>]>,
    revoked: Box<[RwLock<HashMap<GrantId, i64>>]>,
    revoked_clients: Box<[RwLock<ClientTombstones>]>,
    client_hasher: std::collections::hash_map::RandomState,
}

struct Slot<V> {
    digest: TokenDigest,
    value: V,
}

struct Shard<V> {
    slabs: Vec<Vec<Option<Slot<V>>>>,
    free: Vec<u32>,
    by_digest: HashTable<u32>,
    by_grant: HashTable<u32>,
}

impl<V> Default for TokenTable<V> {
    fn default() -> Self {
        TokenTable {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        slabs: Vec::new(),
                        free: Vec::new(),
                        by_digest: HashTable::new(),
                        by_grant: HashTable::new(),
                    })
                })
                .collect(),
            revoked: (0..SHARDS).map(|_| RwLock::default()).collect(),
            revoked_clients: (0..SHARDS).map(|_| RwLock::default()).collect(),
            client_hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

/// A digest's hash: its first eight bytes (SHA-256 output is already uniform).
fn digest_hash(d: &TokenDigest) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.0[..8]);
    u64::from_le_bytes(b)
}

/// A grant id's hash: folded and mixed, so patterned ids spread too.
fn grant_hash(g: GrantId) -> u64 {
    let m = (g.0 as u64 ^ (g.0 >> 64) as u64) as u128 * 0x9E37_79B9_7F4A_7C15;
    m as u64 ^ (m >> 64) as u64
}

fn slot_in<V>(slabs: &[Vec<Option<Slot<V>>>], i: u32) -> Option<&Slot<V>> {
    slabs
        .get(i as usize / SLAB)?
        .get(i as usize % SLAB)?
        .as_ref()
}

impl<V: Granted> Shard<V> {
    fn slot(&self, i: u32) -> Option<&Slot<V>> {
        slot_in(&self.slabs, i)
    }

    fn cell(&mut self, i: u32) -> Option<&mut Option<Slot<V>>> {
        self.slabs
            .get_mut(i as usize / SLAB)?
            .get_mut(i as usize % SLAB)
    }

    fn find(&self, d: &TokenDigest) -> Option<u32> {
        self.by_digest
            .find(digest_hash(d), |&i| {
                self.slot(i).is_some_and(|s| s.digest == *d)
            })
            .copied()
    }

    fn unlink_grant(&mut self, i: u32, grant: GrantId) {
        if let Ok(e) = self.by_grant.find_entry(grant_hash(grant), |&j| j == i) {
            e.remove();
        }
    }

    fn link_grant(&mut self, i: u32, grant: GrantId) {
        let Shard {
            slabs, by_grant, ..
        } = self;
        by_grant.insert_unique(grant_hash(grant), i, |&j| {
            slot_in(slabs, j).map_or(0, |s| grant_hash(s.value.grant()))
        });
    }

    fn insert(&mut self, digest: TokenDigest, value: V) {
        let grant = value.grant();
        if let Some(i) = self.find(&digest) {
            let mut old_grant = grant;
            if let Some(Some(slot)) = self.cell(i) {
                old_grant = slot.value.grant();
                slot.value = value;
            }
            if old_grant != grant {
                self.unlink_grant(i, old_grant);
                self.link_grant(i, grant);
            }
            return;
        }
        let slot = Some(Slot { digest, value });
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(cell) = self.cell(i) {
                    *cell = slot;
                }
                i
            }
            None => {
                if self.slabs.last().is_none_or(|s| s.len() == SLAB) {
                    self.slabs.push(Vec::with_capacity(SLAB));
                }
                let n = self.slabs.len() - 1;
                let last = &mut self.slabs[n];
                last.push(slot);
                (n * SLAB + last.len() - 1) as u32
            }
        };
        let Shard {
            slabs, by_digest, ..
        } = self;
        by_digest.insert_unique(digest_hash(&digest), i, |&j| {
            slot_in(slabs, j).map_or(0, |s| digest_hash(&s.digest))
        });
        self.link_grant(i, grant);
    }

    fn remove_at(&mut self, i: u32) -> Option<V> {
        let slot = self.cell(i)?.take()?;
        if let Ok(e) = self
            .by_digest
            .find_entry(digest_hash(&slot.digest), |&j| j == i)
        {
            e.remove();
        }
        self.unlink_grant(i, slot.value.grant());
        self.free.push(i);
        Some(slot.value)
    }

    /// Gives memory back after a purge left the indexes mostly empty.
    fn compact(&mut self) {
        let Shard {
            slabs,
            by_digest,
            by_grant,
            ..
        } = self;
        if by_digest.capacity() > 64 && by_digest.len() < by_digest.capacity() / 4 {
            by_digest.shrink_to_fit(|&j| slot_in(slabs, j).map_or(0, |s| digest_hash(&s.digest)));
            by_grant
                .shrink_to_fit(|&j| slot_in(slabs, j).map_or(0, |s| grant_hash(s.value.grant())));
        }
        if by_digest.is_empty() {
            self.slabs = Vec::new();
            self.free = Vec::new();
        }
    }
}

impl<V: Granted + Clone> TokenTable<V> {
    fn shard(&self, d: &TokenDigest) -> &RwLock<Shard<V>> {
        &self.shards[d.0[31] as usize & (SHARDS - 1)]
    }

    fn read(lock: &RwLock<Shard<V>>) -> RwLockReadGuard<'_, Shard<V>> {
        lock.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(lock: &RwLock<Shard<V>>) -> RwLockWriteGuard<'_, Shard<V>> {
        lock.write().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, digest: TokenDigest, value: V) {
        Self::write(self.shard(&digest)).insert(digest, value);
    }

    fn tombstones(&self, grant: GrantId) -> &RwLock<HashMap<GrantId, i64>> {
        // The top bits: the low ones also pick slots in the shards' grant indexes.
        &self.revoked[(grant_hash(grant) >> 58) as usize & (SHARDS - 1)]
    }

    fn client_tombstones(&self, client: &str) -> &RwLock<ClientTombstones> {
        let h = self.client_hasher.hash_one(client);
        &self.revoked_clients[(h >> 59) as usize & (SHARDS - 1)]
    }

    /// Runs `f` under the read locks of `grant`'s and `client`'s tombstone shards, unless
    /// either is tombstoned. Neither a grant nor a client revocation can lay its tombstone
    /// while `f` runs. (Revocations take one write lock each, so the two read locks cannot
    /// deadlock with them.)
    fn while_live<R>(
        &self,
        grant: GrantId,
        client: &str,
        f: impl FnOnce() -> R,
    ) -> Result<R, StorageError> {
        let tombs = self
            .tombstones(grant)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if tombs.contains_key(&grant) {
            return Err(StorageError::GrantRevoked);
        }
        let clients = self
            .client_tombstones(client)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if clients.contains_key(client) {
            return Err(StorageError::GrantRevoked);
        }
        let r = f();
        drop(clients);
        drop(tombs);
        Ok(r)
    }

    /// Inserts `value` unless its grant or its client is tombstoned.
    fn insert_live(&self, digest: TokenDigest, value: V) -> Result<(), StorageError> {
        let grant = value.grant();
        let client = value.client().clone();
        self.while_live(grant, &client, || self.insert(digest, value))
    }

    /// Tombstones `client` until `until` (keeping a later time), then removes every entry
    /// of the client (a scan); returns how many. As for a grant, the tombstone comes first.
    fn revoke_client(&self, client: &str, until: i64) -> u64 {
        {
            let mut tombs = self
                .client_tombstones(client)
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let t = tombs.entry(client.into()).or_insert(until);
            *t = (*t).max(until);
        }
        self.retain(|v| &**v.client() != client)
    }

    /// The time `grant`'s tombstone lasts until, if it has one.
    fn tombstone(&self, grant: GrantId) -> Option<i64> {
        self.tombstones(grant)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&grant)
            .copied()
    }

    /// Tombstones `grant` until `until` (keeping a later time), then removes its entries;
    /// returns how many. The tombstone is laid first, under its shard's write lock, so
    /// every put of the grant either finished before (and is swept here) or is refused.
    fn revoke_grant(&self, grant: GrantId, until: i64) -> u64 {
        {
            let mut tombs = self
                .tombstones(grant)
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let t = tombs.entry(grant).or_insert(until);
            *t = (*t).max(until);
        }
        self.remove_grant(grant)
    }

    /// Drops the tombstones whose time is at or before `now`; returns how many.
    fn purge_tombstones(&self, now: i64) -> u64 {
        let mut n = 0;
        for lock in self.revoked.iter() {
            let mut tombs = lock.write().unwrap_or_else(|e| e.into_inner());
            let before = tombs.len();
            tombs.retain(|_, until| *until > now);
            n += (before - tombs.len()) as u64;
            if tombs.is_empty() && tombs.capacity() > 64 {
                tombs.shrink_to_fit();
            }
        }
        for lock in self.revoked_clients.iter() {
            let mut tombs = lock.write().unwrap_or_else(|e| e.into_inner());
            let before = tombs.len();
            tombs.retain(|_, until| *until > now);
            n += (before - tombs.len()) as u64;
        }
        n
    }

    fn get(&self, digest: &TokenDigest) -> Option<V> {
        let shard = Self::read(self.shard(digest));
        let i = shard.find(digest)?;
        shard.slot(i).map(|s| s.value.clone())
    }

    /// Applies `f` to the value under `digest`, if any, under the shard's write lock.
    fn update<R>(&self, digest: &TokenDigest, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut shard = Self::write(self.shard(digest));
        let i = shard.find(digest)?;
        match shard.cell(i) {
            Some(Some(slot)) => Some(f(&mut slot.value)),
            _ => None,
        }
    }

    fn remove(&self, digest: &TokenDigest) -> Option<V> {
        let mut shard = Self::write(self.shard(digest));
        let i = shard.find(digest)?;
        shard.remove_at(i)
    }

    /// Removes every entry of `grant`; returns how many.
    fn remove_grant(&self, grant: GrantId) -> u64 {
        let mut n = 0;
        for lock in self.shards.iter() {
            let mut shard = Self::write(lock);
            loop {
                let found = shard
                    .by_grant
                    .find(grant_hash(grant), |&j| {
                        shard.slot(j).is_some_and(|s| s.value.grant() == grant)
                    })
                    .copied();
                match found {
                    Some(i) if shard.remove_at(i).is_some() => n += 1,
                    _ => break,
                }
            }
        }
        n
    }

    /// Keeps the entries `keep` accepts; returns how many were removed.
    fn retain(&self, mut keep: impl FnMut(&V) -> bool) -> u64 {
        let mut n = 0;
        for lock in self.shards.iter() {
            let mut shard = Self::write(lock);
            let slots = shard.slabs.iter().map(Vec::len).sum::<usize>();
            for i in 0..slots as u32 {
                if shard.slot(i).is_some_and(|s| !keep(&s.value)) && shard.remove_at(i).is_some() {
                    n += 1;
                }
            }
            shard.compact();
        }
        n
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| Self::read(s).by_digest.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;

    fn rec(grant: u128, expires_at: i64) -> TokenRecord {
        TokenRecord {
            client_id: Arc::from("c"),
            scope: Scope::empty(),
            subject: None,
            extra: None,
            grant_id: GrantId(grant),
            issued_at: 0,
            expires_at,
            audience: Vec::new(),
        }
    }

    fn d(n: u32) -> TokenDigest {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_le_bytes());
        b[31] = n as u8;
        TokenDigest(b)
    }

    #[test]
    fn overwrite_moves_the_token_to_its_new_grant() {
        let t = TokenTable::<TokenRecord>::default();
        t.insert(d(1), rec(1, 10));
        t.insert(d(1), rec(2, 10));
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove_grant(GrantId(1)), 0);
        assert_eq!(t.remove_grant(GrantId(2)), 1);
        assert_eq!(t.get(&d(1)), None);
    }

    #[test]
    fn freed_slots_are_reused_and_indexes_stay_consistent() {
        let t = TokenTable::<TokenRecord>::default();
        for n in 0..5000 {
            t.insert(d(n), rec(u128::from(n % 7), i64::from(n)));
        }
        assert_eq!(t.retain(|r| r.expires_at >= 2500), 2500);
        let slabs: usize = t
            .shards
            .iter()
            .map(|s| TokenTable::read(s).slabs.len())
            .sum();
        for n in 5000..7500 {
            t.insert(d(n), rec(u128::from(n % 7), i64::from(n)));
        }
        let after: usize = t
            .shards
            .iter()
            .map(|s| TokenTable::read(s).slabs.len())
            .sum();
        assert_eq!(slabs, after, "refilled freed slots, no new slabs");
        assert_eq!(t.len(), 5000);
        for n in 0..7500 {
            assert_eq!(t.get(&d(n)).is_some(), n >= 2500, "{n}");
        }
        let by_grant: u64 = (0..7).map(|g| t.remove_grant(GrantId(g))).sum();
        assert_eq!(by_grant, 5000);
        assert_eq!(t.len(), 0);
        assert_eq!(t.retain(|_| false), 0);
    }
}
