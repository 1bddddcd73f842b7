//! The [`DeviceCodeStore`] of [`SqlStore`] (schema version 7, `oauth2_device_codes`): one
//! row per request, keyed by the device code's digest, with the user code unique. Every
//! change is a compare-and-set on the stored record (`WHERE record = <what was read>`), so
//! of concurrent pollers after approval exactly one marks the row taken and gets the tokens,
//! and a decision is taken once.

use async_trait::async_trait;
use sqlx::Row;

use super::{decode, encode, Pool, SqlStore};
use crate::device::{
    poll_transition, release_transition, Change, DeviceCodeStore, DeviceRecord, DeviceStatus,
    PollOutcome,
};
use crate::error::StorageError;

/// Bound on compare-and-set retries under contention.
const ATTEMPTS: usize = 8;

fn contended() -> StorageError {
    StorageError::unavailable(std::io::Error::other("device code contended; retry"))
}

impl SqlStore {
    /// The stored record text of a device digest.
    async fn device_row(&self, digest: &str) -> Result<Option<String>, StorageError> {
        self.timed(async {
            opt_text!(
                self,
                "SELECT record FROM oauth2_device_codes WHERE digest = $1",
                digest
            )
        })
        .await
    }

    /// Replaces `old` by `new` for `digest`; `false` when the record changed meanwhile.
    async fn device_cas(&self, digest: &str, old: &str, new: &str) -> Result<bool, StorageError> {
        let n = self
            .timed(async {
                exec!(
                    self,
                    "UPDATE oauth2_device_codes SET record = $3 WHERE digest = $1 AND record = $2",
                    digest,
                    old,
                    new
                )
            })
            .await?;
        Ok(n == 1)
    }

    /// Deletes `digest` if its record is still `old`; `false` when another caller won.
    async fn device_take(&self, digest: &str, old: &str) -> Result<bool, StorageError> {
        let n = self
            .timed(async {
                exec!(
                    self,
                    "DELETE FROM oauth2_device_codes WHERE digest = $1 AND record = $2",
                    digest,
                    old
                )
            })
            .await?;
        Ok(n == 1)
    }
}

#[async_trait]
impl DeviceCodeStore for SqlStore {
    async fn put_device(
        &self,
        device_digest: &str,
        user_code: &str,
        record: DeviceRecord,
    ) -> Result<bool, StorageError> {
        let json = encode(&record)?;
        let n = self
            .timed(async {
                exec!(
                    self,
                    "INSERT INTO oauth2_device_codes (digest, user_code, record, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    device_digest,
                    user_code,
                    json.as_str(),
                    record.expires_at
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceRecord>, StorageError> {
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "SELECT record FROM oauth2_device_codes WHERE user_code = $1 \
                     AND expires_at > $2",
                    user_code,
                    now
                )
            })
            .await?;
        let Some(json) = row else { return Ok(None) };
        let r: DeviceRecord = decode(&json)?;
        Ok((r.status == DeviceStatus::Pending).then_some(r))
    }

    async fn decide(
        &self,
        user_code: &str,
        status: DeviceStatus,
        now: i64,
    ) -> Result<bool, StorageError> {
        for _ in 0..ATTEMPTS {
            let row = self
                .timed(async {
                    on_pool!(self, |p| {
                        sqlx::query(
                            "SELECT digest, record FROM oauth2_device_codes WHERE user_code = $1",
                        )
                        .bind(user_code)
                        .fetch_optional(p)
                        .await?
                        .map(|r| -> Result<(String, String), sqlx::Error> {
                            Ok((r.try_get(0)?, r.try_get(1)?))
                        })
                        .transpose()
                    })
                })
                .await?;
            let Some((digest, old)) = row else {
                return Ok(false);
            };
            let mut r: DeviceRecord = decode(&old)?;
            if r.expires_at <= now || r.status != DeviceStatus::Pending {
                return Ok(false);
            }
            r.status = status.clone();
            if self.device_cas(&digest, &old, &encode(&r)?).await? {
                return Ok(true);
            }
        }
        Err(contended())
    }

    async fn poll(
        &self,
        device_digest: &str,
        client_id: &str,
        now: i64,
    ) -> Result<PollOutcome, StorageError> {
        for _ in 0..ATTEMPTS {
            let Some(old) = self.device_row(device_digest).await? else {
                return Ok(PollOutcome::Unknown);
            };
            let (outcome, change) = poll_transition(&decode(&old)?, client_id, now);
            let won = match change {
                Change::Keep => true,
                Change::Update(next) => {
                    self.device_cas(device_digest, &old, &encode(&next)?)
                        .await?
                }
                Change::Remove => self.device_take(device_digest, &old).await?,
            };
            if won {
                return Ok(outcome);
            }
        }
        Err(contended())
    }

    async fn release_device(&self, device_digest: &str, now: i64) -> Result<bool, StorageError> {
        for _ in 0..ATTEMPTS {
            let Some(old) = self.device_row(device_digest).await? else {
                return Ok(false);
            };
            let Some(next) = release_transition(&decode(&old)?, now) else {
                return Ok(false);
            };
            if self
                .device_cas(device_digest, &old, &encode(&next)?)
                .await?
            {
                return Ok(true);
            }
        }
        Err(contended())
    }

    async fn live(&self, now: i64) -> Result<usize, StorageError> {
        let n: i64 = self
            .timed(async {
                on_pool!(self, |p| {
                    sqlx::query("SELECT COUNT(*) FROM oauth2_device_codes WHERE expires_at > $1")
                        .bind(now)
                        .fetch_one(p)
                        .await?
                        .try_get::<i64, usize>(0)
                })
            })
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        self.timed(async {
            exec!(
                self,
                "DELETE FROM oauth2_device_codes WHERE expires_at <= $1",
                now
            )
        })
        .await
    }
}
