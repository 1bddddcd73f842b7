//! [`Purge`] on SQL.

use super::*;

#[async_trait]
impl Purge for SqlStore {
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        let mut total = 0;
        for sql in [
            "DELETE FROM oauth2_codes WHERE expires_at <= $1",
            "DELETE FROM oauth2_access_tokens WHERE expires_at <= $1",
            "DELETE FROM oauth2_refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM oauth2_pending WHERE expires_at <= $1",
            "DELETE FROM oauth2_grant_tombstones WHERE expires_at <= $1",
            "DELETE FROM oauth2_client_tombstones WHERE expires_at <= $1",
            // Clients whose registration expired (an unused dynamic registration), their
            // tokens first (one issued just before the expiry).
            "DELETE FROM oauth2_access_tokens WHERE client_id IN \
             (SELECT id FROM oauth2_clients WHERE expires_at <= $1)",
            "DELETE FROM oauth2_refresh_tokens WHERE client_id IN \
             (SELECT id FROM oauth2_clients WHERE expires_at <= $1)",
            "DELETE FROM oauth2_clients WHERE expires_at <= $1",
            // Retired signing keys and expired denylist entries (`super::keys`).
            "DELETE FROM oauth2_signing_keys WHERE published_until <= $1",
            "DELETE FROM oauth2_revoked_jtis WHERE expires_at <= $1",
        ] {
            total += self.timed(async { exec!(self, sql, now) }).await?;
        }
        Ok(total)
    }
}
