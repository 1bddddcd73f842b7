//! [`RefreshTokenStore`] on SQL, with rotation.

use super::*;

impl SqlStore {
    /// A rotation, strict (`window` `None`) or with a reuse interval.
    pub(super) async fn rotate(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
        window: Option<ReuseWindow>,
    ) -> Result<Rotation, StorageError> {
        let rotated_at = window.map(|w| w.now);
        let earliest = window.map(|w| w.earliest_rotation());
        let json = encode(record)?;
        let grant = grant_bytes(record.grant_id);
        let rotated = self
            .timed(async {
                match &self.pool {
                    // The write lock first, so the tombstone check below reads the latest
                    // state.
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                        let revoked = sqlx::query(IS_TOMBSTONED)
                            .bind(&grant[..])
                            .bind(Kind::Refresh.name())
                            .bind(&*record.client_id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .is_some();
                        if revoked {
                            tx.rollback().await?;
                            return Ok(RotateTx::Revoked);
                        }
                        // Of concurrent rotations exactly one sees `rotated = FALSE`.
                        let n = sqlx::query(
                            "UPDATE oauth2_refresh_tokens SET rotated = TRUE, rotated_at = $2 \
                             WHERE digest = $1 AND rotated = FALSE",
                        )
                        .bind(&old.0[..])
                        .bind(rotated_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        let mut outcome = RotateTx::Rotated;
                        if n != 1 {
                            // Rotated out inside the window: the new token joins the
                            // family, the old one keeps its rotation time.
                            let within = match earliest {
                                None => false,
                                Some(t) => sqlx::query(
                                    "SELECT 1 FROM oauth2_refresh_tokens WHERE digest = $1 \
                                     AND rotated = TRUE AND rotated_at >= $2",
                                )
                                .bind(&old.0[..])
                                .bind(t)
                                .fetch_optional(&mut *tx)
                                .await?
                                .is_some(),
                            };
                            if !within {
                                tx.rollback().await?;
                                return Ok(RotateTx::NotActive);
                            }
                            outcome = RotateTx::Within;
                        }
                        sqlx::query(PUT_ROTATED)
                            .bind(&new.0[..])
                            .bind(&grant[..])
                            .bind(json.as_str())
                            .bind(record.expires_at)
                            .bind(&*record.client_id)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(outcome)
                    }
                    // One call of `oauth2_rotate_refresh` (schema version 4): under the
                    // family's shared advisory lock (a revocation of the family waits for
                    // it or comes first), the tombstone check, the conditional update that
                    // locks the old row (of concurrent rotations exactly one sees
                    // `rotated = FALSE`) and the insert of the new token, in one statement.
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(p) => {
                        // With a window, `oauth2_rotate_refresh_within` (schema version
                        // 6), which also records the rotation time and answers 3 for a
                        // token rotated out inside the window.
                        let sql = if window.is_some() {
                            "SELECT oauth2_rotate_refresh_within($1, $2, $3, $4, $5, $6, $7, \
                             $8, $9)"
                        } else {
                            "SELECT oauth2_rotate_refresh($1, $2, $3, $4, $5, $6, $7)"
                        };
                        let mut q = sqlx::query(sql)
                            .bind(&old.0[..])
                            .bind(&new.0[..])
                            .bind(&grant[..])
                            .bind(json.as_str())
                            .bind(record.expires_at)
                            .bind(GRANT_LOCK_CLASS)
                            .bind(grant_lock_key(record.grant_id));
                        if window.is_some() {
                            q = q.bind(rotated_at).bind(earliest);
                        }
                        let outcome: i32 = q.fetch_one(p).await?.try_get(0)?;
                        Ok(match outcome {
                            0 => RotateTx::Rotated,
                            2 => RotateTx::Revoked,
                            3 => RotateTx::Within,
                            _ => RotateTx::NotActive,
                        })
                    }
                }
            })
            .await?;
        match rotated {
            RotateTx::Rotated => return Ok(Rotation::Rotated),
            RotateTx::Within => return Ok(Rotation::WithinReuseInterval),
            RotateTx::Revoked => return Err(StorageError::GrantRevoked),
            RotateTx::NotActive => {}
        }
        Ok(match self.refresh(old).await? {
            RefreshState::Unknown => Rotation::Unknown,
            // Active again means it was revoked and re-put meanwhile; report the race.
            _ => Rotation::AlreadyRotated,
        })
    }
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token(Kind::Refresh, token, record).await
    }

    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError> {
        let row = self
            .fetch_decoded(async {
                opt_text_flag!(
                    self,
                    "SELECT record, rotated FROM oauth2_refresh_tokens WHERE digest = $1",
                    &token.0[..]
                )
            })
            .await?;
        Ok(match row {
            None => RefreshState::Unknown,
            Some((record, true)) => RefreshState::Rotated(record),
            Some((record, false)) => RefreshState::Active(record),
        })
    }

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
        self.fetch_record(async {
            opt_text!(
                self,
                "DELETE FROM oauth2_refresh_tokens WHERE digest = $1 RETURNING record",
                &token.0[..]
            )
        })
        .await
    }

    async fn revoke_refresh_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(Kind::Refresh, grant, until).await
    }

    async fn revoke_refresh_client(
        &self,
        client_id: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        self.revoke_client(Kind::Refresh, client_id, until).await
    }
}
