//! In-memory stores: every storage trait over sharded concurrent maps (no global lock).
//!
//! Nothing survives a restart and nothing is shared between processes; use a durable
//! backend for that. Expired entries are dropped by [`Purge::purge_expired`], which the
//! Rocket fairing calls periodically.

use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;

use super::{
    AccessTokenStore, ClientStore, CodeRecord, CodeStore, CodeTake, GrantId, PendingRecord,
    PendingStore, Purge, RefreshState, RefreshTokenStore, Rotation, TokenRecord,
};
use crate::client::Client;
use crate::error::StorageError;
use crate::token::{BuildDigestHasher, TokenDigest};

/// All stores in memory.
#[derive(Default)]
pub struct MemoryStore {
    clients: DashMap<String, Arc<Client>>,
    codes: DashMap<TokenDigest, (CodeRecord, bool), BuildDigestHasher>,
    access: DashMap<TokenDigest, TokenRecord, BuildDigestHasher>,
    access_by_grant: DashMap<GrantId, Vec<TokenDigest>, BuildDigestHasher>,
    refresh: DashMap<TokenDigest, (TokenRecord, bool), BuildDigestHasher>,
    refresh_by_grant: DashMap<GrantId, Vec<TokenDigest>, BuildDigestHasher>,
    pending: DashMap<TokenDigest, PendingRecord, BuildDigestHasher>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("clients", &self.clients.len())
            .field("codes", &self.codes.len())
            .field("access_tokens", &self.access.len())
            .field("refresh_tokens", &self.refresh.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Registers a client (in addition to those from config).
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

fn index(
    map: &DashMap<GrantId, Vec<TokenDigest>, BuildDigestHasher>,
    grant: GrantId,
    token: TokenDigest,
) {
    map.entry(grant).or_default().push(token);
}

#[async_trait]
impl AccessTokenStore for MemoryStore {
    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        index(&self.access_by_grant, record.grant_id, *token);
        self.access.insert(*token, record.clone());
        Ok(())
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.access.get(token).map(|r| r.clone()))
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.access.remove(token).map(|(_, r)| r))
    }

    async fn revoke_access_grant(&self, grant: GrantId) -> Result<u64, StorageError> {
        let Some((_, tokens)) = self.access_by_grant.remove(&grant) else {
            return Ok(0);
        };
        Ok(tokens
            .iter()
            .filter(|t| {
                self.access
                    .remove_if(t, |_, r| r.grant_id == grant)
                    .is_some()
            })
            .count() as u64)
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryStore {
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        index(&self.refresh_by_grant, record.grant_id, *token);
        self.refresh.insert(*token, (record.clone(), false));
        Ok(())
    }

    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError> {
        Ok(match self.refresh.get(token) {
            None => RefreshState::Unknown,
            Some(e) if e.1 => RefreshState::Rotated(e.0.clone()),
            Some(e) => RefreshState::Active(e.0.clone()),
        })
    }

    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<Rotation, StorageError> {
        // The new token is inserted first (nobody knows it yet), so a family revocation
        // racing with this rotation also removes it.
        self.put_refresh(new, record).await?;
        let outcome = match self.refresh.get_mut(old) {
            None => Rotation::Unknown,
            Some(e) if e.1 => Rotation::AlreadyRotated,
            Some(mut e) => {
                e.1 = true;
                Rotation::Rotated
            }
        };
        if outcome != Rotation::Rotated {
            self.refresh.remove(new);
        }
        Ok(outcome)
    }

    async fn revoke_refresh(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        Ok(self.refresh.remove(token).map(|(_, (r, _))| r))
    }

    async fn revoke_refresh_grant(&self, grant: GrantId) -> Result<u64, StorageError> {
        let Some((_, tokens)) = self.refresh_by_grant.remove(&grant) else {
            return Ok(0);
        };
        Ok(tokens
            .iter()
            .filter(|t| {
                self.refresh
                    .remove_if(t, |_, (r, _)| r.grant_id == grant)
                    .is_some()
            })
            .count() as u64)
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
        let before = self.codes.len() + self.access.len() + self.refresh.len() + self.pending.len();
        self.codes.retain(|_, (r, _)| r.expires_at > now);
        self.access.retain(|_, r| !r.is_expired(now));
        self.refresh.retain(|_, (r, _)| !r.is_expired(now));
        self.pending.retain(|_, r| r.expires_at > now);
        prune_index(&self.access_by_grant, |t| self.access.contains_key(t));
        prune_index(&self.refresh_by_grant, |t| self.refresh.contains_key(t));
        let after = self.codes.len() + self.access.len() + self.refresh.len() + self.pending.len();
        Ok(before.saturating_sub(after) as u64)
    }
}

fn prune_index(
    map: &DashMap<GrantId, Vec<TokenDigest>, BuildDigestHasher>,
    live: impl Fn(&TokenDigest) -> bool,
) {
    map.retain(|_, v| {
        v.retain(&live);
        !v.is_empty()
    });
}
