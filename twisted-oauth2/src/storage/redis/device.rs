//! The [`DeviceCodeStore`] of [`RedisStore`]. A request is the hash
//! `<prefix>{dc}:u:<user code>` (`d` = the device code's digest, `rec` = the JSON
//! [`DeviceRecord`]); the pointer `<prefix>{dc}:p:<digest>` names the user code, and
//! `<prefix>{dc}:z` (a sorted set of user codes scored by expiry) bounds how many are
//! live. All three share the hash tag `{dc}`, so they are in one Redis Cluster slot and a
//! request is created by one script ([`PUT_DEVICE`]): record, pointer and live entry are
//! written together or not at all (no orphan user code or pointer). Device codes are few
//! (`device.max_pending`) and short-lived, so one slot holds them. Every key has a TTL at
//! the record's expiry. Every change of a record is a
//! compare-and-set script on its one key, so of concurrent pollers after approval exactly
//! one marks it taken and gets the tokens (a failed issuance gives it back), and a decision is taken once.

use async_trait::async_trait;

use super::{decode, encode, RedisStore};
use crate::device::{
    poll_transition, release_transition, Change, DeviceCodeStore, DeviceRecord, DeviceStatus,
    PollOutcome,
};
use crate::error::StorageError;

/// Creates a request if its user code is free, in one step: the record, the pointer from
/// the device code's digest, and the live-set entry. KEYS: record, pointer, live set (one
/// slot). ARGV: digest, record, expires_at, user code. Returns 1 created, 0 the user code
/// is in use (nothing written).
pub(super) const PUT_DEVICE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'rec', ARGV[2])
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
redis.call('SET', KEYS[2], ARGV[4], 'EXAT', tonumber(ARGV[3]))
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[4])
return 1
"#;

/// Replaces (or with an empty new value deletes) the record if it is still `old`.
/// KEYS: record. ARGV: old, new. Returns 1 done, 0 changed meanwhile.
pub(super) const CAS_DEVICE: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'rec')
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'rec', ARGV[2]) end
return 1
"#;

/// Bound on compare-and-set retries under contention.
const ATTEMPTS: usize = 8;

impl RedisStore {
    fn device_key(&self, user_code: &str) -> String {
        format!("{}{{dc}}:u:{user_code}", self.keys.prefix)
    }

    fn device_pointer(&self, digest: &str) -> String {
        format!("{}{{dc}}:p:{digest}", self.keys.prefix)
    }

    fn device_live_key(&self) -> String {
        format!("{}{{dc}}:z", self.keys.prefix)
    }

    /// The digest and record text of a user code's request.
    async fn device_get(&self, key: &str) -> Result<Option<(String, String)>, StorageError> {
        let key = key.to_owned();
        let (d, rec): (Option<String>, Option<String>) = self
            .run(|mut c| async move {
                ::redis::cmd("HMGET")
                    .arg(&key)
                    .arg("d")
                    .arg("rec")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(d.zip(rec))
    }

    /// [`CAS_DEVICE`]; `new` `None` deletes.
    async fn device_cas(
        &self,
        key: &str,
        old: &str,
        new: Option<&str>,
    ) -> Result<bool, StorageError> {
        let (key, old, new) = (key.to_owned(), old.to_owned(), new.unwrap_or("").to_owned());
        let scripts = self.scripts.clone();
        let n: i64 = self
            .run(|mut c| async move {
                scripts
                    .cas_device
                    .key(&key)
                    .arg(&old)
                    .arg(&new)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(n == 1)
    }
}

#[async_trait]
impl DeviceCodeStore for RedisStore {
    async fn put_device(
        &self,
        device_digest: &str,
        user_code: &str,
        record: DeviceRecord,
    ) -> Result<bool, StorageError> {
        let json = encode(&record)?;
        let key = self.device_key(user_code);
        let pointer = self.device_pointer(device_digest);
        let live = self.device_live_key();
        let exp = record.expires_at.max(1);
        let scripts = self.scripts.clone();
        let (digest, code) = (device_digest.to_owned(), user_code.to_owned());
        let created: i64 = self
            .run(|mut c| async move {
                scripts
                    .put_device
                    .key(&key)
                    .key(&pointer)
                    .key(&live)
                    .arg(&digest)
                    .arg(&json)
                    .arg(exp)
                    .arg(&code)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(created == 1)
    }

    async fn by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceRecord>, StorageError> {
        let Some((_, json)) = self.device_get(&self.device_key(user_code)).await? else {
            return Ok(None);
        };
        let r: DeviceRecord = decode(&json)?;
        Ok((r.expires_at > now && r.status == DeviceStatus::Pending).then_some(r))
    }

    async fn decide(
        &self,
        user_code: &str,
        status: DeviceStatus,
        now: i64,
    ) -> Result<bool, StorageError> {
        let key = self.device_key(user_code);
        for _ in 0..ATTEMPTS {
            let Some((_, old)) = self.device_get(&key).await? else {
                return Ok(false);
            };
            let mut r: DeviceRecord = decode(&old)?;
            if r.expires_at <= now || r.status != DeviceStatus::Pending {
                return Ok(false);
            }
            r.status = status.clone();
            if self.device_cas(&key, &old, Some(&encode(&r)?)).await? {
                return Ok(true);
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "device code contended; retry",
        )))
    }

    async fn poll(
        &self,
        device_digest: &str,
        client_id: &str,
        now: i64,
    ) -> Result<PollOutcome, StorageError> {
        let pointer = self.device_pointer(device_digest);
        let p = pointer.clone();
        let code: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&p).query_async(&mut c).await })
            .await?;
        let Some(code) = code else {
            return Ok(PollOutcome::Unknown);
        };
        let key = self.device_key(&code);
        for _ in 0..ATTEMPTS {
            let Some((digest, old)) = self.device_get(&key).await? else {
                return Ok(PollOutcome::Unknown);
            };
            if digest != device_digest {
                return Ok(PollOutcome::Unknown);
            }
            let (outcome, change) = poll_transition(&decode(&old)?, client_id, now);
            let won = match change {
                Change::Keep => true,
                Change::Update(next) => self.device_cas(&key, &old, Some(&encode(&next)?)).await?,
                Change::Remove => {
                    let won = self.device_cas(&key, &old, None).await?;
                    if won {
                        let p = pointer.clone();
                        self.run(|mut c| async move {
                            ::redis::cmd("DEL").arg(&p).query_async::<i64>(&mut c).await
                        })
                        .await?;
                    }
                    won
                }
            };
            if won {
                return Ok(outcome);
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "device code contended; retry",
        )))
    }

    async fn release_device(&self, device_digest: &str, now: i64) -> Result<bool, StorageError> {
        let p = self.device_pointer(device_digest);
        let code: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&p).query_async(&mut c).await })
            .await?;
        let Some(code) = code else { return Ok(false) };
        let key = self.device_key(&code);
        for _ in 0..ATTEMPTS {
            let Some((digest, old)) = self.device_get(&key).await? else {
                return Ok(false);
            };
            if digest != device_digest {
                return Ok(false);
            }
            let Some(next) = release_transition(&decode(&old)?, now) else {
                return Ok(false);
            };
            if self.device_cas(&key, &old, Some(&encode(&next)?)).await? {
                return Ok(true);
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "device code contended; retry",
        )))
    }

    async fn live(&self, now: i64) -> Result<usize, StorageError> {
        let live = self.device_live_key();
        let l = live.clone();
        self.run(|mut c| async move {
            ::redis::cmd("ZREMRANGEBYSCORE")
                .arg(&l)
                .arg("-inf")
                .arg(now)
                .query_async::<i64>(&mut c)
                .await
        })
        .await?;
        let n: i64 = self
            .run(|mut c| async move { ::redis::cmd("ZCARD").arg(&live).query_async(&mut c).await })
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Nothing to do but trim the live set: every key has a TTL at its expiry.
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        let live = self.device_live_key();
        let n: i64 = self
            .run(|mut c| async move {
                ::redis::cmd("ZREMRANGEBYSCORE")
                    .arg(&live)
                    .arg("-inf")
                    .arg(now)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
