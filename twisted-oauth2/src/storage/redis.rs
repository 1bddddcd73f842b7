//! A Redis store (feature `redis`): every storage trait over the `redis` crate's
//! auto-reconnecting, multiplexed [`ConnectionManager`].
//!
//! - **Keys** (`<prefix>` defaults to `oauth2:`; digests in hex): `<prefix>code:<digest>`
//!   and `<prefix>rt:<digest>` are hashes (`rec` = JSON record, `used`/`rot` = flag),
//!   `<prefix>at:<digest>` and `<prefix>pd:<digest>` strings (JSON), `<prefix>atg:<grant>`
//!   and `<prefix>rtg:<grant>` sets indexing a grant's access and refresh tokens, and
//!   `<prefix>atx:<grant>` / `<prefix>rtx:<grant>` the tombstones of a revoked grant.
//! - **Expiry**: every key gets a TTL at its record's `expires_at` (`EXAT`, on the Redis
//!   server's clock), and an index set lives as long as its longest-lived member, so
//!   nothing outlives its record and [`Purge::purge_expired`] has nothing to do. A used
//!   code stays (as [`CodeTake::Replayed`]) until its expiry.
//!   A tombstone expires at the `until` its revocation passed.
//! - **Atomicity**: code take, code release, token puts with their index, refresh
//!   rotation and grant revocation are Lua scripts (atomic on the server); single-token
//!   revocation uses `GETDEL` or a `MULTI` block. Of any number of concurrent callers on any
//!   number of server instances, exactly one takes a code or rotates a refresh token. A
//!   grant revocation lays its tombstone and deletes the grant's tokens in one script, and
//!   the put and rotation scripts check the tombstone before writing, so no write of a
//!   revoked grant survives.
//! - **Failures**: connection and response timeouts (3 s each) and an operation timeout
//!   (5 s); a refused, dropped or timed-out connection is [`StorageError::Unavailable`].
//!   The connection manager reconnects by itself when Redis returns.
//! - **Requirements**: Redis 6.2 or newer (`GETDEL`, `SET ... EXAT`). Standalone Redis
//!   (or a primary behind a proxy); Redis Cluster is not supported, as the grant scripts
//!   touch keys they do not declare.
//! - **Clients**: `RedisStore` is a [`ClientRegistry`]: a client created through it is the
//!   string `<prefix>client:<client id>` (its [`ClientRecord`](super::ClientRecord) as JSON,
//!   no TTL); creation is `SET ... NX`, so of concurrent creations with one id exactly one
//!   wins, and an update `SET ... XX`. Clients from the configuration or a [`ClientStore`]
//!   given to the server are consulted first.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use async_trait::async_trait;

use super::clients::{decode_client, encode_client};
use super::{
    AccessTokenStore, ClientRegistry, ClientStore, CodeRecord, CodeStore, CodeTake, GrantId,
    PendingRecord, PendingStore, Purge, RefreshState, RefreshTokenStore, Rotation, TokenRecord,
};
use crate::client::Client;
use crate::error::{ConfigError, StorageError};
use crate::token::TokenDigest;

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key, so several servers or tests can share one database.
    /// Default `oauth2:`.
    pub key_prefix: String,
    /// Longest wait for a connection to be established. Default 3 s.
    pub connection_timeout: Duration,
    /// Longest wait for one response. Default 3 s.
    pub response_timeout: Duration,
    /// The longest one store operation may take before it is abandoned as
    /// [`StorageError::Unavailable`]. Default 5 s.
    pub operation_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "oauth2:".into(),
            connection_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisOptions {
    /// Sets [`RedisOptions::key_prefix`].
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`RedisOptions::operation_timeout`].
    pub fn operation_timeout(mut self, t: Duration) -> Self {
        self.operation_timeout = t;
        self
    }
}

/// Stores a token (a string or a flagged hash) with its TTL and adds it to its grant's
/// index, extending the index's TTL to the token's if that is later. An already expired
/// record is not stored (and replaces, by deletion, any value under the key).
///
/// KEYS: token key, index key, and optionally the grant's tombstone key: if that exists,
/// nothing is written and the script returns -1. ARGV: record JSON, expires_at, index
/// member, flag field (empty for a string value).
const PUT_TOKEN: &str = r#"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[1])
if exp <= now then return 0 end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', exp)
else
  redis.call('HSET', KEYS[1], 'rec', ARGV[1], ARGV[4], '0')
  redis.call('EXPIREAT', KEYS[1], exp)
end
if KEYS[2] ~= KEYS[1] then
  redis.call('SADD', KEYS[2], ARGV[3])
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[2], exp) end
end
return 1
"#;

/// Marks a code used. Returns `{0, ''}` unknown, `{1, rec}` taken, `{2, rec}` replayed.
const TAKE_CODE: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'rec', 'used')
if not r[1] then return {0, ''} end
if r[2] == '1' then return {2, r[1]} end
redis.call('HSET', KEYS[1], 'used', '1')
return {1, r[1]}
"#;

/// Marks a code unused again, if it still exists (never creates a key without TTL).
const RELEASE_CODE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'used', '0') end
return 1
"#;

/// Rotates a refresh token. KEYS: old, new, index, family tombstone. ARGV: new record,
/// expires_at, new member. Returns 0 unknown, 1 rotated, 2 already rotated, -1 the family
/// is tombstoned (nothing changed).
const ROTATE: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local st = redis.call('HGET', KEYS[1], 'rot')
if not st then return 0 end
if st == '1' then return 2 end
redis.call('HSET', KEYS[1], 'rot', '1')
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[2])
if exp > now then
  redis.call('HSET', KEYS[2], 'rec', ARGV[1], 'rot', '0')
  redis.call('EXPIREAT', KEYS[2], exp)
  redis.call('SADD', KEYS[3], ARGV[3])
  local ttl = redis.call('TTL', KEYS[3])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[3], exp) end
end
return 1
"#;

/// Tombstones a grant until ARGV[2] (keeping a later expiry; not at all if that time has
/// passed), then deletes every token of its index and the index. KEYS: index, tombstone.
/// ARGV: token key prefix, until. Returns how many tokens existed.
const REVOKE_GRANT: &str = r#"
local untl = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
if untl > now then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 0 or now + ttl < untl then redis.call('SET', KEYS[2], '1', 'EXAT', untl) end
end
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
"#;

struct Scripts {
    put_token: Script,
    take_code: Script,
    release_code: Script,
    rotate: Script,
    revoke_grant: Script,
}

/// All stores in one Redis database. See the [module docs](self).
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, `rediss://` needs the
    /// `redis` crate's TLS features). A `key_prefix` query parameter sets
    /// [`RedisOptions::key_prefix`]; other options are the defaults.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let (url, prefix) = split_prefix(url)?;
        let mut options = RedisOptions::default();
        if let Some(p) = prefix {
            options.key_prefix = p;
        }
        RedisStore::connect_with(&url, options).await
    }

    /// Connects with explicit options (a `key_prefix` in the URL is not read here).
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StorageError> {
        let client = ::redis::Client::open(url).map_err(|e| {
            StorageError::other(ConfigError::Setting {
                key: "storage",
                reason: format!("invalid Redis URL: {e}"),
            })
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connection_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connect = ConnectionManager::new_with_config(client, config);
        let conn = match tokio::time::timeout(
            options.connection_timeout + Duration::from_secs(1),
            connect,
        )
        .await
        {
            Ok(r) => r.map_err(map_err)?,
            Err(_) => return Err(timed_out("connecting to Redis timed out")),
        };
        Ok(RedisStore {
            conn,
            prefix: options.key_prefix,
            timeout: options.operation_timeout,
            scripts: Arc::new(Scripts {
                put_token: Script::new(PUT_TOKEN),
                take_code: Script::new(TAKE_CODE),
                release_code: Script::new(RELEASE_CODE),
                rotate: Script::new(ROTATE),
                revoke_grant: Script::new(REVOKE_GRANT),
            }),
        })
    }

    /// Uses an existing connection manager (the caller chose its configuration).
    pub fn from_connection_manager(conn: ConnectionManager, options: RedisOptions) -> Self {
        RedisStore {
            conn,
            prefix: options.key_prefix,
            timeout: options.operation_timeout,
            scripts: Arc::new(Scripts {
                put_token: Script::new(PUT_TOKEN),
                take_code: Script::new(TAKE_CODE),
                release_code: Script::new(RELEASE_CODE),
                rotate: Script::new(ROTATE),
                revoke_grant: Script::new(REVOKE_GRANT),
            }),
        }
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, kind: &str, digest: &TokenDigest) -> String {
        format!("{}{kind}:{}", self.prefix, digest.to_hex())
    }

    fn client_key(&self, id: &str) -> String {
        format!("{}client:{id}", self.prefix)
    }

    /// `SET key json <condition>`: whether it was set.
    async fn set_client(&self, client: &Client, condition: &str) -> Result<bool, StorageError> {
        let json = encode_client(client)?;
        let key = self.client_key(client.id());
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
        Ok(set.is_some())
    }

    fn grant_key(&self, kind: &str, grant: GrantId) -> String {
        format!("{}{kind}:{:032x}", self.prefix, grant.0)
    }

    /// Runs one Redis operation on a clone of the (multiplexed) connection under the
    /// operation timeout, mapping its error.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StorageError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.timeout, op(self.conn.clone())).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(timed_out("Redis store operation timed out")),
        }
    }

    /// Stores a token with its index entry, unless the grant has a tombstone under
    /// `tombstone` ([`StorageError::GrantRevoked`]).
    async fn put_token(
        &self,
        kind: &str,
        index: &str,
        tombstone: &str,
        token: &TokenDigest,
        record: &TokenRecord,
        flag: &str,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.key(kind, token);
        let idx = self.grant_key(index, record.grant_id);
        let tomb = self.grant_key(tombstone, record.grant_id);
        let member = token.to_hex();
        let scripts = self.scripts.clone();
        let n = self
            .run(|mut c| async move {
                scripts
                    .put_token
                    .key(&key)
                    .key(&idx)
                    .key(&tomb)
                    .arg(&json)
                    .arg(record.expires_at)
                    .arg(&member)
                    .arg(flag)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        if n < 0 {
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    async fn revoke_grant(
        &self,
        index: &str,
        kind: &str,
        tombstone: &str,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        let idx = self.grant_key(index, grant);
        let tomb = self.grant_key(tombstone, grant);
        let prefix = format!("{}{kind}:", self.prefix);
        let scripts = self.scripts.clone();
        let n = self
            .run(|mut c| async move {
                scripts
                    .revoke_grant
                    .key(&idx)
                    .key(&tomb)
                    .arg(&prefix)
                    .arg(until)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(n.max(0) as u64)
    }
}

/// Splits a `key_prefix` query parameter off a Redis URL.
fn split_prefix(url: &str) -> Result<(String, Option<String>), StorageError> {
    let Ok(mut u) = url::Url::parse(url) else {
        return Ok((url.to_owned(), None));
    };
    let mut prefix = None;
    let rest: Vec<(String, String)> = u
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "key_prefix" {
                prefix = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if prefix.is_none() {
        return Ok((url.to_owned(), None));
    }
    if rest.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((u.into(), prefix))
}

fn timed_out(what: &'static str) -> StorageError {
    StorageError::unavailable(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// Refused, dropped or timed-out connections and a loading, read-only or down server are
/// [`StorageError::Unavailable`]; the rest [`StorageError::Other`].
fn map_err(e: RedisError) -> StorageError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if transient {
        StorageError::unavailable(e)
    } else {
        StorageError::other(e)
    }
}

fn encode<T: serde::Serialize>(record: &T) -> Result<String, StorageError> {
    serde_json::to_string(record).map_err(StorageError::other)
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|e| StorageError::Corrupt(Box::new(e)))
}

#[async_trait]
impl ClientStore for RedisStore {
    /// A client created through [`ClientRegistry`] (configured clients are looked up
    /// before this store).
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        let key = self.client_key(id);
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
        let key = self.client_key(id);
        let n: i64 = self
            .run(|mut c| async move { ::redis::cmd("DEL").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(n > 0)
    }
}

#[async_trait]
impl CodeStore for RedisStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.key("code", code);
        let scripts = self.scripts.clone();
        // No index: the script sees KEYS[2] == KEYS[1] and skips it.
        self.run(|mut c| async move {
            scripts
                .put_token
                .key(&key)
                .key(&key)
                .arg(&json)
                .arg(record.expires_at)
                .arg("")
                .arg("used")
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError> {
        let key = self.key("code", code);
        let scripts = self.scripts.clone();
        let (state, json) = self
            .run(|mut c| async move {
                scripts
                    .take_code
                    .key(&key)
                    .invoke_async::<(i64, String)>(&mut c)
                    .await
            })
            .await?;
        Ok(match state {
            1 => CodeTake::Taken(decode(&json)?),
            2 => CodeTake::Replayed(decode(&json)?),
            _ => CodeTake::Unknown,
        })
    }

    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError> {
        let key = self.key("code", code);
        let scripts = self.scripts.clone();
        self.run(|mut c| async move {
            scripts
                .release_code
                .key(&key)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl AccessTokenStore for RedisStore {
    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token("at", "atg", "atx", token, record, "").await
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        let key = self.key("at", token);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|j| decode(&j)).transpose()
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        // The grant index keeps a stale member; revoking the grant then finds nothing
        // under it, and the index expires with its last token.
        let key = self.key("at", token);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GETDEL").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|j| decode(&j)).transpose()
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant("atg", "at", "atx", grant, until).await
    }
}

#[async_trait]
impl RefreshTokenStore for RedisStore {
    async fn put_refresh(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token("rt", "rtg", "rtx", token, record, "rot")
            .await
    }

    async fn refresh(&self, token: &TokenDigest) -> Result<RefreshState, StorageError> {
        let key = self.key("rt", token);
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

    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<Rotation, StorageError> {
        let json = encode(record)?;
        let old_key = self.key("rt", old);
        let new_key = self.key("rt", new);
        let idx = self.grant_key("rtg", record.grant_id);
        let tomb = self.grant_key("rtx", record.grant_id);
        let member = new.to_hex();
        let scripts = self.scripts.clone();
        let outcome = self
            .run(|mut c| async move {
                scripts
                    .rotate
                    .key(&old_key)
                    .key(&new_key)
                    .key(&idx)
                    .key(&tomb)
                    .arg(&json)
                    .arg(record.expires_at)
                    .arg(&member)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(match outcome {
            1 => Rotation::Rotated,
            2 => Rotation::AlreadyRotated,
            -1 => return Err(StorageError::GrantRevoked),
            _ => Rotation::Unknown,
        })
    }

    async fn revoke_refresh(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let key = self.key("rt", token);
        let (rec, _): (Option<String>, i64) = self
            .run(|mut c| async move {
                ::redis::pipe()
                    .atomic()
                    .hget(&key, "rec")
                    .del(&key)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        rec.map(|j| decode(&j)).transpose()
    }

    async fn revoke_refresh_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant("rtg", "rt", "rtx", grant, until).await
    }
}

#[async_trait]
impl PendingStore for RedisStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.key("pd", handle);
        // `EXAT` in the past deletes the key (Redis 6.2+), so an expired request is gone.
        self.run(|mut c| async move {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(&json)
                .arg("EXAT")
                .arg(record.expires_at.max(1))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError> {
        let key = self.key("pd", handle);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|j| decode(&j)).transpose()
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        let key = self.key("pd", handle);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GETDEL").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|j| decode(&j)).transpose()
    }
}

#[async_trait]
impl Purge for RedisStore {
    /// Nothing to do: every key carries a TTL at its record's expiry (a tombstone at its
    /// `until`).
    async fn purge_expired(&self, _now: i64) -> Result<u64, StorageError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefix_is_split_off_the_url() {
        let (u, p) = split_prefix("redis://127.0.0.1:6379/0?key_prefix=t1:").unwrap();
        assert_eq!(u, "redis://127.0.0.1:6379/0");
        assert_eq!(p.as_deref(), Some("t1:"));
        let (u, p) = split_prefix("redis://h/1?protocol=resp3&key_prefix=a").unwrap();
        assert_eq!(u, "redis://h/1?protocol=resp3");
        assert_eq!(p.as_deref(), Some("a"));
        let (u, p) = split_prefix("redis://h").unwrap();
        assert_eq!((u.as_str(), p), ("redis://h", None));
    }
}
