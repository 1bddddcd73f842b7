//! [`ClientStore`] and [`ClientRegistry`] on Redis.

use super::*;

impl RedisStore {
    /// `SET key json <condition>`: whether it was set.
    pub(super) async fn set_client(
        &self,
        client: &Client,
        condition: &str,
    ) -> Result<bool, StorageError> {
        let json = encode_client(client)?;
        let key = self.keys.client_key(client.id());
        // A client whose registration expires vanishes then (`EXAT`); a `SET` without it
        // clears an earlier expiry.
        let expires = client.expires_at().map(|t| t.max(1));
        let set: Option<String> = self
            .run(|mut c| async move {
                let mut cmd = ::redis::cmd("SET");
                cmd.arg(&key).arg(&json).arg(condition);
                if let Some(t) = expires {
                    cmd.arg("EXAT").arg(t);
                }
                cmd.query_async(&mut c).await
            })
            .await?;
        if set.is_some() {
            self.index_unused(client.id(), client.expires_at()).await?;
        }
        Ok(set.is_some())
    }

    /// Adds `id` to the unused-registration index with its expiry, or removes it (`None`).
    pub(super) async fn index_unused(
        &self,
        id: &str,
        expires: Option<i64>,
    ) -> Result<(), StorageError> {
        let index = self.keys.unused_clients_key();
        let id = id.to_owned();
        self.run(|mut c| async move {
            match expires {
                Some(t) => {
                    ::redis::cmd("ZADD")
                        .arg(&index)
                        .arg(t)
                        .arg(&id)
                        .query_async::<i64>(&mut c)
                        .await
                }
                None => {
                    ::redis::cmd("ZREM")
                        .arg(&index)
                        .arg(&id)
                        .query_async::<i64>(&mut c)
                        .await
                }
            }
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl ClientStore for RedisStore {
    /// A client created through [`ClientRegistry`] (configured clients are looked up
    /// before this store).
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        let key = self.keys.client_key(id);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        match v {
            Some(j) => Ok(Some(Arc::new(decode_client(&j)?))),
            None => Ok(None),
        }
    }

    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        Some(self)
    }
}

#[async_trait]
impl ClientRegistry for RedisStore {
    async fn create_client(&self, client: &Client) -> Result<(), StorageError> {
        if self.set_client(client, "NX").await? {
            Ok(())
        } else {
            Err(StorageError::ClientExists)
        }
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StorageError> {
        self.set_client(client, "XX").await
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StorageError> {
        let key = self.keys.client_key(id);
        let n: i64 = self
            .run(|mut c| async move { ::redis::cmd("DEL").arg(&key).query_async(&mut c).await })
            .await?;
        self.index_unused(id, None).await?;
        Ok(n > 0)
    }

    /// The sorted set `<prefix>unused_clients` (score: expiry) indexes unused registrations:
    /// expired entries go, then the oldest beyond `keep` with their client keys. A client
    /// that received a token meanwhile (no expiry left) is kept.
    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError> {
        let index = self.keys.unused_clients_key();
        let i = index.clone();
        let expired: Vec<String> = self
            .run(|mut c| async move {
                ::redis::cmd("ZRANGE")
                    .arg(&i)
                    .arg("-inf")
                    .arg(now)
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(1000)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let i = index.clone();
        let count: usize = self
            .run(|mut c| async move { ::redis::cmd("ZCARD").arg(&i).query_async(&mut c).await })
            .await?;
        let excess = count
            .saturating_sub(expired.len())
            .saturating_sub(keep)
            .min(1000);
        let mut victims = expired;
        if excess > 0 {
            let i = index.clone();
            let skip = victims.len();
            let oldest: Vec<String> = self
                .run(|mut c| async move {
                    ::redis::cmd("ZRANGE")
                        .arg(&i)
                        .arg(skip)
                        .arg(skip + excess - 1)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            victims.extend(oldest);
        }
        let mut deleted = 0;
        for id in victims {
            // Still unused? `GET` then `DEL` leaves a race with a first token only in the
            // instant between them; such a client is then registered again by its owner.
            if let Some(c) = self.client(&id).await? {
                if c.expires_at().is_some() {
                    let key = self.keys.client_key(&id);
                    let n: i64 = self
                        .run(|mut c| async move {
                            ::redis::cmd("DEL").arg(&key).query_async(&mut c).await
                        })
                        .await?;
                    deleted += u64::from(n > 0);
                }
            }
            self.index_unused(&id, None).await?;
        }
        Ok(deleted)
    }
}
