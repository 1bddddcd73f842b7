//! [`Purge`] on Redis: tokens, codes and tombstones expire by their TTLs; signing keys
//! and the denylist index are trimmed here.

use super::*;
use crate::storage::{RevokedJtiStore, SigningKeyStore};

#[async_trait]
impl Purge for RedisStore {
    /// Every token, code, pending request and tombstone key carries a TTL at its record's
    /// expiry (a tombstone at its `until`), so this only purges retired signing keys and
    /// expired denylist entries ([`SigningKeyStore::purge_keys`],
    /// [`RevokedJtiStore::purge_revoked_jtis`]).
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.purge_keys(now).await? + self.purge_revoked_jtis(now).await?)
    }
}
