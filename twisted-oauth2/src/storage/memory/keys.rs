//! [`SigningKeyStore`] and [`RevokedJtiStore`] in memory, for [`MemoryStore`].
//!
//! Signing keys are few and read only by the key rotation, so they sit in one map under a
//! lock. The denylist is a sharded map (no global lock on the lookup path) with a cap: at
//! most [`DEFAULT_REVOKED_JTI_LIMIT`] live entries unless the store was made with
//! [`MemoryStore::with_revoked_jti_limit`]. A revocation that finds the list full first
//! drops the entries that expired before the latest `now` the store has been given; if it
//! is still full the revocation fails with [`StorageError::Unavailable`] (it never evicts a
//! live entry, which would make a revoked token valid again).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::RwLock;

use async_trait::async_trait;
use dashmap::DashMap;

use super::MemoryStore;
use crate::error::StorageError;
use crate::storage::keys::{check_jti, KidTaken, MAX_JTI_LEN};
use crate::storage::{RevokedJtiStore, SigningKeyRecord, SigningKeyStore};

/// The default cap on live entries of a [`MemoryStore`]'s jti denylist.
pub const DEFAULT_REVOKED_JTI_LIMIT: usize = 1_000_000;

/// The signing keys, by `(alg, generation)`.
#[derive(Default)]
pub(super) struct MemoryKeys(RwLock<BTreeMap<(String, i64), SigningKeyRecord>>);

impl MemoryKeys {
    pub(super) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(super) fn purge(&self, now: i64) -> u64 {
        let mut keys = self.0.write().unwrap_or_else(|e| e.into_inner());
        let before = keys.len();
        keys.retain(|_, k| k.published_until > now);
        (before - keys.len()) as u64
    }
}

/// The jti denylist: jti → exp, with a cap on its entries.
pub(super) struct Denylist {
    entries: DashMap<Box<str>, i64>,
    /// Entries held, kept exact so the cap is too.
    count: AtomicUsize,
    limit: usize,
    /// The latest `now` a caller passed: entries with an `exp` at or before it are dead.
    latest_now: AtomicI64,
}

impl Default for Denylist {
    fn default() -> Self {
        Denylist::with_limit(DEFAULT_REVOKED_JTI_LIMIT)
    }
}

/// The denylist of a [`MemoryStore`] is full of live entries.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory jti denylist holds its limit of {0} live entries")]
struct DenylistFull(usize);

impl Denylist {
    pub(super) fn with_limit(limit: usize) -> Self {
        Denylist {
            entries: DashMap::new(),
            count: AtomicUsize::new(0),
            limit,
            latest_now: AtomicI64::new(i64::MIN),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn saw(&self, now: i64) {
        self.latest_now.fetch_max(now, Ordering::Relaxed);
    }

    /// Inserts or raises `jti`; `false` when a new entry would exceed the cap.
    fn try_revoke(&self, jti: &str, exp: i64) -> bool {
        match self.entries.entry(Box::from(jti)) {
            dashmap::mapref::entry::Entry::Occupied(mut e) => {
                let kept = e.get_mut();
                *kept = (*kept).max(exp);
                true
            }
            dashmap::mapref::entry::Entry::Vacant(v) => {
                let limit = self.limit;
                let reserved = self
                    .count
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                        (c < limit).then_some(c + 1)
                    })
                    .is_ok();
                if reserved {
                    v.insert(exp);
                }
                reserved
            }
        }
    }

    pub(super) fn purge(&self, now: i64) -> u64 {
        self.saw(now);
        let mut removed = 0usize;
        self.entries.retain(|_, exp| {
            let keep = *exp > now;
            removed += usize::from(!keep);
            keep
        });
        self.count.fetch_sub(removed, Ordering::AcqRel);
        removed as u64
    }
}

impl MemoryStore {
    /// An empty store whose jti denylist ([`RevokedJtiStore`]) holds at most `limit` live
    /// entries (default [`DEFAULT_REVOKED_JTI_LIMIT`]).
    pub fn with_revoked_jti_limit(limit: usize) -> Self {
        MemoryStore {
            revoked_jtis: Denylist::with_limit(limit),
            ..MemoryStore::default()
        }
    }

    /// Number of signing keys held ([`SigningKeyStore`]).
    pub fn signing_key_count(&self) -> usize {
        self.signing_keys.len()
    }

    /// Number of jti denylist entries held ([`RevokedJtiStore`]), expired ones not yet
    /// purged included.
    pub fn revoked_jti_count(&self) -> usize {
        self.revoked_jtis.len()
    }
}

#[async_trait]
impl SigningKeyStore for MemoryStore {
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError> {
        let mut keys = self
            .signing_keys
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let slot = (key.alg.clone(), key.generation);
        if let Some(winner) = keys.get(&slot) {
            return Ok(winner.clone());
        }
        if keys.values().any(|k| k.kid == key.kid) {
            return Err(StorageError::other(KidTaken));
        }
        keys.insert(slot, key.clone());
        Ok(key)
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let mut out: Vec<SigningKeyRecord> = self
            .signing_keys
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|k| k.is_published(now))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Ok(out)
    }

    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.signing_keys.purge(now))
    }
}

#[async_trait]
impl RevokedJtiStore for MemoryStore {
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError> {
        check_jti(jti)?;
        let list = &self.revoked_jtis;
        if list.try_revoke(jti, exp) {
            return Ok(());
        }
        list.purge(list.latest_now.load(Ordering::Relaxed));
        if list.try_revoke(jti, exp) {
            return Ok(());
        }
        Err(StorageError::unavailable(DenylistFull(list.limit)))
    }

    /// A `jti` over [`MAX_JTI_LEN`] bytes cannot have been recorded: `false`.
    async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
        self.revoked_jtis.saw(now);
        if jti.len() > MAX_JTI_LEN {
            return Ok(false);
        }
        Ok(self
            .revoked_jtis
            .entries
            .get(jti)
            .is_some_and(|exp| *exp > now))
    }

    async fn revoked_jtis(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        self.revoked_jtis.saw(now);
        let mut live: Vec<(String, i64)> = self
            .revoked_jtis
            .entries
            .iter()
            .filter(|e| *e.value() > now)
            .map(|e| (e.key().to_string(), *e.value()))
            .collect();
        live.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        live.truncate(limit);
        Ok(live)
    }

    async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.revoked_jtis.purge(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => unreachable!("memory store futures are ready at once"),
        }
    }

    #[test]
    fn the_denylist_is_capped_and_never_evicts_a_live_entry() {
        let s = MemoryStore::with_revoked_jti_limit(3);
        for j in ["a", "b", "c"] {
            assert!(block(s.revoke_jti(j, 100)).is_ok());
        }
        // Raising an existing entry needs no room.
        assert!(block(s.revoke_jti("a", 200)).is_ok());
        assert!(matches!(
            block(s.revoke_jti("d", 100)),
            Err(StorageError::Unavailable(_))
        ));
        assert_eq!(s.revoked_jti_count(), 3);
        for j in ["a", "b", "c"] {
            assert!(block(s.is_jti_revoked(j, 50)).unwrap_or(false), "{j}");
        }
        assert!(!block(s.is_jti_revoked("d", 50)).unwrap_or(true));
    }

    #[test]
    fn a_full_denylist_drops_entries_dead_at_the_latest_now_it_saw() {
        let s = MemoryStore::with_revoked_jti_limit(2);
        assert!(block(s.revoke_jti("old", 10)).is_ok());
        assert!(block(s.revoke_jti("live", 100)).is_ok());
        // No `now` seen yet: nothing is known dead, so the list is full.
        assert!(block(s.revoke_jti("new", 100)).is_err());
        assert!(!block(s.is_jti_revoked("old", 20)).unwrap_or(true));
        assert!(block(s.revoke_jti("new", 100)).is_ok());
        assert_eq!(s.revoked_jti_count(), 2);
        assert!(block(s.is_jti_revoked("live", 20)).unwrap_or(false));
        assert!(block(s.is_jti_revoked("new", 20)).unwrap_or(false));
    }

    #[test]
    fn a_kid_taken_by_another_generation_is_refused() {
        let s = MemoryStore::new();
        let k = |gen| SigningKeyRecord::new("same", "ES256", gen, "{}", vec![1], 0, 0, 10, 20);
        assert!(block(s.create_key_if_absent(k(1))).is_ok());
        assert!(block(s.create_key_if_absent(k(2))).is_err());
        assert_eq!(s.signing_key_count(), 1);
    }
}
