//! [`ClientStore`] and [`ClientRegistry`] on SQL.

use super::*;

#[async_trait]
impl ClientStore for SqlStore {
    /// A client created through [`ClientRegistry`] (configured clients are looked up
    /// before this store).
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        let json = self
            .timed(async { opt_text!(self, "SELECT record FROM oauth2_clients WHERE id = $1", id) })
            .await?;
        match json {
            Some(j) => Ok(Some(Arc::new(decode_client(&j)?))),
            None => Ok(None),
        }
    }

    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        Some(self)
    }
}

#[async_trait]
impl ClientRegistry for SqlStore {
    async fn create_client(&self, client: &Client) -> Result<(), StorageError> {
        let json = encode_client(client)?;
        let n = self
            .timed(async {
                exec!(
                    self,
                    "INSERT INTO oauth2_clients (id, record, registered_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    client.id(),
                    json.as_str(),
                    client.registered_at(),
                    client.expires_at(),
                )
            })
            .await?;
        if n == 0 {
            return Err(StorageError::ClientExists);
        }
        Ok(())
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StorageError> {
        let json = encode_client(client)?;
        let n = self
            .timed(async {
                exec!(
                    self,
                    "UPDATE oauth2_clients SET record = $2, registered_at = $3, expires_at = $4 \
                     WHERE id = $1",
                    client.id(),
                    json.as_str(),
                    client.registered_at(),
                    client.expires_at(),
                )
            })
            .await?;
        Ok(n > 0)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StorageError> {
        let n = self
            .timed(async { exec!(self, "DELETE FROM oauth2_clients WHERE id = $1", id) })
            .await?;
        Ok(n > 0)
    }

    /// Two statements on the `expires_at` index: the expired unused clients, then those
    /// beyond the newest `keep` (at most 1000 a call: each registration adds one).
    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let expired = self
            .timed(async {
                exec!(
                    self,
                    "DELETE FROM oauth2_clients WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    now
                )
            })
            .await?;
        let excess = self
            .timed(async {
                exec!(
                    self,
                    "DELETE FROM oauth2_clients WHERE id IN (SELECT id FROM oauth2_clients \
                     WHERE expires_at IS NOT NULL ORDER BY expires_at DESC, id DESC \
                     LIMIT 1000 OFFSET $1) AND expires_at IS NOT NULL",
                    keep
                )
            })
            .await?;
        Ok(expired + excess)
    }
}
