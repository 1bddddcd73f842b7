//! [`PendingStore`] on SQL.

use super::*;

#[async_trait]
impl PendingStore for SqlStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        self.timed(async {
            exec!(
                self,
                "INSERT INTO oauth2_pending (digest, record, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (digest) DO UPDATE SET record = excluded.record, \
                 expires_at = excluded.expires_at",
                &handle.0[..],
                json.as_str(),
                record.expires_at,
            )
        })
        .await?;
        Ok(())
    }

    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError> {
        self.fetch_record(async {
            opt_text!(
                self,
                "SELECT record FROM oauth2_pending WHERE digest = $1",
                &handle.0[..]
            )
        })
        .await
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        self.fetch_record(async {
            opt_text!(
                self,
                "DELETE FROM oauth2_pending WHERE digest = $1 RETURNING record",
                &handle.0[..]
            )
        })
        .await
    }
}
