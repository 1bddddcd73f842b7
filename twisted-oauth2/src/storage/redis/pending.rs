//! [`PendingStore`] on Redis.

use super::*;

#[async_trait]
impl PendingStore for RedisStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.keys.key("pd", handle);
        // `EXAT` in the past deletes the key (Redis 6.2+), so an expired request is gone.
        self.run(|mut c| async move {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(&json)
                .arg("EXAT")
                .arg(record.expires_at.max(1))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError> {
        let key = self.keys.key("pd", handle);
        self.fetch_record(
            |mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await },
        )
        .await
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        let key = self.keys.key("pd", handle);
        self.fetch_record(|mut c| async move {
            ::redis::cmd("GETDEL").arg(&key).query_async(&mut c).await
        })
        .await
    }
}
