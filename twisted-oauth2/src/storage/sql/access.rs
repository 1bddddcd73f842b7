//! [`AccessTokenStore`] on SQL.

use super::*;

#[async_trait]
impl AccessTokenStore for SqlStore {
    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        let g = grant_bytes(grant);
        self.timed(async {
            on_pool!(self, |p| {
                sqlx::query(
                    "SELECT expires_at FROM oauth2_grant_tombstones \
                     WHERE grant_id = $1 AND kind = 'access'",
                )
                .bind(&g[..])
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get::<i64, usize>(0))
                .transpose()
            })
        })
        .await
    }

    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token(Kind::Access, token, record).await
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.fetch_record(async {
            opt_text!(
                self,
                "SELECT record FROM oauth2_access_tokens WHERE digest = $1",
                &token.0[..]
            )
        })
        .await
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        self.fetch_record(async {
            opt_text!(
                self,
                "DELETE FROM oauth2_access_tokens WHERE digest = $1 RETURNING record",
                &token.0[..]
            )
        })
        .await
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(Kind::Access, grant, until).await
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        self.revoke_client(Kind::Access, client_id, until).await
    }
}
