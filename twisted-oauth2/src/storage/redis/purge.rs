//! [`Purge`] on Redis: nothing to do, every key expires by its TTL.

use super::*;

#[async_trait]
impl Purge for RedisStore {
    /// Nothing to do: every key carries a TTL at its record's expiry (a tombstone at its
    /// `until`).
    async fn purge_expired(&self, _now: i64) -> Result<u64, StorageError> {
        Ok(0)
    }
}
