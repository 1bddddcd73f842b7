//! [`AccessTokenStore`] on Redis.

use super::*;

#[async_trait]
impl AccessTokenStore for RedisStore {
    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        /// The tombstone's expiry as Unix seconds on the server's clock (`-2`: none).
        const TOMBSTONE_UNTIL: &str = r#"
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then return ttl end
return tonumber(redis.call('TIME')[1]) + ttl
"#;
        static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| Script::new(TOMBSTONE_UNTIL));
        let key = self.keys.grant_key(ACCESS.tomb, grant);
        let t: i64 = self
            .run(|mut c| async move { script.key(&key).invoke_async(&mut c).await })
            .await?;
        // A tombstone always has an expiry; -2 is none, -1 (none set) cannot be ours.
        Ok((t >= 0).then_some(t))
    }

    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token(&ACCESS, token, record).await
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        let Some(key) = self.record_key(&ACCESS, token).await? else {
            return Ok(None);
        };
        self.fetch_record(
            |mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await },
        )
        .await
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        // The grant index keeps a stale member; revoking the grant then finds nothing
        // under it, and the index expires with its last token.
        let Some(key) = self.record_key(&ACCESS, token).await? else {
            return Ok(None);
        };
        let record = self
            .fetch_record(|mut c| async move {
                ::redis::cmd("GETDEL").arg(&key).query_async(&mut c).await
            })
            .await?;
        self.drop_pointer(&ACCESS, token).await;
        Ok(record)
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(&ACCESS, grant, until).await
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        self.revoke_client(&ACCESS, client_id, until).await
    }
}
