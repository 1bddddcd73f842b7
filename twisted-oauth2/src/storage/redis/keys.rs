//! [`SigningKeyStore`] and [`RevokedJtiStore`] on Redis.
//!
//! - **Signing keys**: all under one hash tag, so one script sees them all, on one server
//!   or a Redis Cluster: `<prefix>{sk}:keys`, a hash from `<alg>:<generation>` to the
//!   record (JSON; the private key only as its sealed bytes); `<prefix>{sk}:kids`, a hash
//!   from kid to that field (a kid is unique); `<prefix>{sk}:retire`, a sorted set of the
//!   fields scored by `published_until`. Creation and purge are Lua scripts. No TTL: a key
//!   goes when [`SigningKeyStore::purge_keys`] (or [`Purge::purge_expired`]) passes its
//!   `published_until`.
//! - **Denylist**: `<prefix>jti:<sha256 of the jti>` holds the `exp`, with its TTL at the
//!   `exp` (`EXAT`), raised by a script so the later `exp` wins; its own slot on a cluster,
//!   so lookups spread over the nodes. The index `<prefix>{jti}:revoked` (a sorted set of
//!   jtis scored by `exp`, raised with `ZADD GT`) serves [`RevokedJtiStore::revoked_jtis`]
//!   and is trimmed by the purge.

use super::*;
use crate::storage::keys::{check_jti, KidTaken, MAX_JTI_LEN};
use crate::storage::{RevokedJtiStore, SigningKeyRecord, SigningKeyStore};

/// Stores a key unless its slot is taken. KEYS: keys hash, kids hash, retire set. ARGV:
/// slot field, kid, record JSON, published_until. Returns `{0, json}` stored, `{1, json}`
/// the slot's existing key, `{2, ''}` the kid belongs to another slot.
pub(super) const CREATE_KEY: &str = r#"
local won = redis.call('HGET', KEYS[1], ARGV[1])
if won then return {1, won} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return {2, ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return {0, ARGV[3]}
"#;

/// Deletes keys retired at or before ARGV[1] (same KEYS as [`CREATE_KEY`]); how many.
pub(super) const PURGE_KEYS: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, field in ipairs(gone) do
  local rec = redis.call('HGET', KEYS[1], field)
  if rec then
    redis.call('HDEL', KEYS[2], cjson.decode(rec).kid)
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
return #gone
"#;

/// Records a revoked jti's `exp` (ARGV[1]) in KEYS[1] with its TTL at ARGV[2] unless a
/// later or equal one is kept.
pub(super) const REVOKE_JTI: &str = r#"
local kept = tonumber(redis.call('GET', KEYS[1]))
if kept and kept >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
return 1
"#;

/// Deletes KEYS[1] if the `exp` it keeps is at or before ARGV[1].
pub(super) const UNREVOKE_EXPIRED_JTI: &str = r#"
local kept = tonumber(redis.call('GET', KEYS[1]))
if kept and kept <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
"#;

/// How many index entries one round of the denylist purge handles.
const PURGE_BATCH: usize = 1000;

impl Keys {
    /// The signing-key keys: keys hash, kids hash, retire set (one hash tag).
    fn signing_keys(&self) -> [String; 3] {
        ["keys", "kids", "retire"].map(|n| format!("{}{{sk}}:{n}", self.prefix))
    }

    fn jti_key(&self, jti: &str) -> String {
        format!("{}jti:{}", self.prefix, TokenDigest::of(jti).to_hex())
    }

    fn jti_index(&self) -> String {
        format!("{}{{jti}}:revoked", self.prefix)
    }
}

#[async_trait]
impl SigningKeyStore for RedisStore {
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError> {
        let json = encode(&key)?;
        let [keys, kids, retire] = self.keys.signing_keys();
        let field = format!("{}:{}", key.alg, key.generation);
        let scripts = self.scripts.clone();
        let kid = key.kid.clone();
        let until = key.published_until;
        let (state, stored): (i64, String) = self
            .run(|mut c| async move {
                scripts
                    .create_key
                    .key(&keys)
                    .key(&kids)
                    .key(&retire)
                    .arg(&field)
                    .arg(&kid)
                    .arg(&json)
                    .arg(until)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match state {
            0 => Ok(key),
            1 => decode(&stored),
            _ => Err(StorageError::other(KidTaken)),
        }
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let [keys, _, _] = self.keys.signing_keys();
        let all: Vec<String> = self
            .run(|mut c| async move { ::redis::cmd("HVALS").arg(&keys).query_async(&mut c).await })
            .await?;
        let mut published = Vec::with_capacity(all.len());
        for json in &all {
            let k: SigningKeyRecord = decode(json)?;
            if k.is_published(now) {
                published.push(k);
            }
        }
        published.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Ok(published)
    }

    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError> {
        let [keys, kids, retire] = self.keys.signing_keys();
        let scripts = self.scripts.clone();
        let n: u64 = self
            .run(|mut c| async move {
                scripts
                    .purge_keys
                    .key(&keys)
                    .key(&kids)
                    .key(&retire)
                    .arg(now)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(n)
    }
}

#[async_trait]
impl RevokedJtiStore for RedisStore {
    /// The entry first (what lookups read), then the index; each step keeps the later
    /// `exp`, so a retry after a failure between them is harmless.
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError> {
        check_jti(jti)?;
        let key = self.keys.jti_key(jti);
        let scripts = self.scripts.clone();
        self.run(|mut c| async move {
            scripts
                .revoke_jti
                .key(&key)
                .arg(exp)
                .arg(exp.max(1))
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await?;
        let index = self.keys.jti_index();
        let jti = jti.to_owned();
        self.run(|mut c| async move {
            ::redis::cmd("ZADD")
                .arg(&index)
                .arg("GT")
                .arg(exp)
                .arg(&jti)
                .query_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    /// A `jti` over [`MAX_JTI_LEN`] bytes cannot have been recorded: `false`, no command.
    async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
        if jti.len() > MAX_JTI_LEN {
            return Ok(false);
        }
        let key = self.keys.jti_key(jti);
        let exp: Option<i64> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(exp.is_some_and(|e| e > now))
    }

    async fn revoked_jtis(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let index = self.keys.jti_index();
        let listed: Vec<(String, f64)> = self
            .run(|mut c| async move {
                ::redis::cmd("ZRANGE")
                    .arg(&index)
                    .arg("+inf")
                    .arg(format!("({now}"))
                    .arg("BYSCORE")
                    .arg("REV")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(listed
            .into_iter()
            .map(|(jti, exp)| (jti, exp as i64))
            .collect())
    }

    /// Trims the index. An entry's own key expires at its `exp` on the Redis server's
    /// clock; only when `now` is ahead of that clock are the listed entries' keys deleted
    /// one by one (each only if it still keeps an `exp` at or before `now`).
    async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError> {
        let (server_now, _): (i64, i64) = self
            .run(|mut c| async move { ::redis::cmd("TIME").query_async(&mut c).await })
            .await?;
        let index = self.keys.jti_index();
        if now > server_now {
            let mut offset = 0usize;
            loop {
                let index = index.clone();
                let batch: Vec<String> = self
                    .run(|mut c| async move {
                        ::redis::cmd("ZRANGE")
                            .arg(&index)
                            .arg("-inf")
                            .arg(now)
                            .arg("BYSCORE")
                            .arg("LIMIT")
                            .arg(offset)
                            .arg(PURGE_BATCH)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                for jti in &batch {
                    let key = self.keys.jti_key(jti);
                    let scripts = self.scripts.clone();
                    self.run(|mut c| async move {
                        scripts
                            .unrevoke_expired_jti
                            .key(&key)
                            .arg(now)
                            .invoke_async::<i64>(&mut c)
                            .await
                    })
                    .await?;
                }
                if batch.len() < PURGE_BATCH {
                    break;
                }
                offset += PURGE_BATCH;
            }
        }
        self.run(|mut c| async move {
            ::redis::cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(now)
                .query_async(&mut c)
                .await
        })
        .await
    }
}
