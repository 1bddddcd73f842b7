//! [`RefreshTokenStore`] on Redis, with rotation.

use super::*;

impl RedisStore {
    /// A rotation, strict (`window` `None`) or with a reuse interval (see
    /// [`RefreshTokenStore::rotate_refresh`] for the cluster rule).
    pub(super) async fn rotate(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: Option<ReuseWindow>,
    ) -> Result<Rotation, StorageError> {
        let grant = record.grant_id;
        let json = encode(record)?;
        let old_key = self.keys.token_key(&REFRESH, grant, old);
        let new_key = self.keys.token_key(&REFRESH, grant, new);
        let idx = self.keys.grant_key(REFRESH.index, grant);
        let tomb = self.keys.grant_key(REFRESH.tomb, grant);
        let ctomb = self
            .keys
            .client_grant_key(REFRESH.client_tomb, &record.client_id);
        let cset = self.keys.client_grant_key(CLIENT_GRANTS, &record.client_id);
        let grant_hex = format!("{:032x}", grant.0);
        if self.keys.layout == Layout::Cluster {
            self.join_client(&ctomb, &cset, &grant_hex, record.expires_at)
                .await?;
            // An old token without a pointer is unknown in any grant: the script, run in
            // the new record's grant, reports a tombstone or `Unknown`.
            if let Some(family) = self.pointed_grant(&REFRESH, old).await? {
                if family != grant {
                    let t = tomb.clone();
                    let revoked: bool = self
                        .run(|mut c| async move {
                            ::redis::cmd("EXISTS").arg(&t).query_async(&mut c).await
                        })
                        .await?;
                    if revoked {
                        return Err(StorageError::GrantRevoked);
                    }
                    return Err(StorageError::other(std::io::Error::other(
                        "on a Redis Cluster a refresh token rotates within its own grant",
                    )));
                }
            }
            self.set_pointer(&REFRESH, new, grant, record.expires_at)
                .await?;
        }
        let member = new.to_hex();
        let scripts = self.scripts.clone();
        let single = self.keys.layout == Layout::Single;
        let outcome = self
            .run(|mut c| async move {
                let mut inv = scripts.rotate.key(&old_key);
                inv.key(&new_key).key(&idx).key(&tomb);
                if single {
                    inv.key(&ctomb).key(&cset);
                }
                inv.arg(&json)
                    .arg(record.expires_at)
                    .arg(&member)
                    .arg(&grant_hex);
                if let Some(w) = window {
                    inv.arg(w.now).arg(w.earliest_rotation());
                }
                inv.invoke_async::<i64>(&mut c).await
            })
            .await;
        if !matches!(outcome, Ok(1 | 3)) {
            // Nothing was stored under `new` (or the outcome is unknown: a pointer to a
            // record that may exist is removed, which fails safe).
            self.drop_pointer(&REFRESH, new).await;
        }
        Ok(match outcome? {
            1 => Rotation::Rotated,
            2 => Rotation::AlreadyRotated,
            3 => Rotation::WithinReuseInterval,
            -1 => return Err(StorageError::GrantRevoked),
            _ => Rotation::Unknown,
        })
    }
}

#[async_trait]
impl RefreshTokenStore for RedisStore {
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token(&REFRESH, token, record).await
    }

    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError> {
        let Some(key) = self.record_key(&REFRESH, token).await? else {
            return Ok(RefreshState::Unknown);
        };
        let (rec, rot): (Option<String>, Option<String>) = self
            .run(|mut c| async move {
                ::redis::cmd("HMGET")
                    .arg(&key)
                    .arg("rec")
                    .arg("rot")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(match rec {
            None => RefreshState::Unknown,
            Some(j) if rot.as_deref() == Some("1") => RefreshState::Rotated(decode(&j)?),
            Some(j) => RefreshState::Active(decode(&j)?),
        })
    }

    /// On a cluster the rotation runs in the grant's slot, so `record.grant_id` must be the
    /// old token's grant (as it is for every rotation the server makes). A rotation into
    /// another grant is refused: [`StorageError::GrantRevoked`] if that grant is
    /// tombstoned, [`StorageError::Other`] otherwise; the old token is left as it was.
    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<Rotation, StorageError> {
        self.rotate(old, new, record, None).await
    }

    fn supports_reuse_interval(&self) -> bool {
        true
    }

    /// As [`RefreshTokenStore::rotate_refresh`] (the same cluster rule), with the window
    /// checked in the same script.
    async fn rotate_refresh_within(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: ReuseWindow,
    ) -> Result<Rotation, StorageError> {
        self.rotate(old, new, record, Some(window)).await
    }

    async fn revoke_refresh(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let Some(key) = self.record_key(&REFRESH, token).await? else {
            return Ok(None);
        };
        let scripts = self.scripts.clone();
        let record = self
            .fetch_record(
                |mut c| async move { scripts.revoke_one.key(&key).invoke_async(&mut c).await },
            )
            .await?;
        self.drop_pointer(&REFRESH, token).await;
        Ok(record)
    }

    async fn revoke_refresh_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(&REFRESH, grant, until).await
    }

    async fn revoke_refresh_client(
        &self,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        self.revoke_client(&REFRESH, client_id, until).await
    }
}
