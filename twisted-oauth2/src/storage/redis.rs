//! A Redis store (feature `redis`): every storage trait over the `redis` crate's
//! auto-reconnecting, multiplexed [`ConnectionManager`] on one Redis server, or its async
//! cluster client on a Redis Cluster.
//!
//! - **Keys on one server** (`redis://`; `<prefix>` defaults to `oauth2:`; digests in
//!   hex): `<prefix>code:<digest>` and `<prefix>rt:<digest>` are hashes (`rec` = JSON
//!   record, `used`/`rot` = flag, and for a rotated-out refresh token `rat` = its rotation
//!   time when a rotation with a reuse interval recorded it), `<prefix>at:<digest>` and `<prefix>pd:<digest>` strings
//!   (JSON), `<prefix>atg:<grant>` and `<prefix>rtg:<grant>` sets indexing a grant's access
//!   and refresh tokens, and `<prefix>atx:<grant>` / `<prefix>rtx:<grant>` the tombstones of
//!   a revoked grant. Per client (`<client>` is the SHA-256 of its id, in hex):
//!   `<prefix>clg:<client>`, a sorted set of the client's grants (scored by the expiry of
//!   their longest-lived token), and `<prefix>catx:<client>` / `<prefix>crtx:<client>`, the
//!   tombstones of a revoked client.
//! - **Keys on a Redis Cluster** (`redis+cluster://`, [`RedisStore::connect_cluster`]):
//!   codes, pending requests and clients as on one server (each is one key). Access and
//!   refresh tokens live with their grant, under the grant's hash tag so that one grant's
//!   keys share one slot: `<prefix>{g:<grant>}:at:<digest>`, `<prefix>{g:<grant>}:rt:<digest>`,
//!   the indexes `<prefix>{g:<grant>}:atg` / `:rtg` and the tombstones `:atx` / `:rtx`; a
//!   client's keys share the client's tag: `<prefix>{c:<client>}:clg`, `:catx`, `:crtx`. A
//!   lookup by digest first reads the pointer `<prefix>ptr:at:<digest>` (or `ptr:rt:`, in the
//!   digest's own slot; the grant id, with the token's TTL), then the record in the grant's
//!   slot: two round trips where one server needs one. The grant's record is authoritative:
//!   a pointer whose record is gone (revoked) finds nothing.
//! - **Expiry**: every key gets a TTL at its record's `expires_at` (`EXAT`, on the Redis
//!   server's clock), and an index set lives as long as its longest-lived member, so
//!   nothing outlives its record and [`Purge::purge_expired`] has nothing to do. A used
//!   code stays (as [`CodeTake::Replayed`]) until its expiry.
//!   A tombstone expires at the `until` its revocation passed.
//! - **Atomicity**: code take, code release, token puts with their index, refresh
//!   rotation, single refresh-token revocation and grant revocation are Lua scripts
//!   (atomic on the server); single access-token revocation is `GETDEL`. Every script names
//!   every key it touches in `KEYS`, and on a cluster all of one script's keys are in one
//!   grant's slot. Of any number of concurrent callers on any number of server instances,
//!   exactly one takes a code or rotates a refresh token. A grant revocation lays its
//!   tombstone and deletes the grant's tokens in one script (which the store runs again if
//!   a token joined the index after it listed the index), and the put and rotation scripts
//!   check the tombstone before writing, in the same slot, so no write of a revoked grant
//!   survives.
//! - **Revoked clients**: every token put and rotation also adds its grant to the client's
//!   grant set and checks the client's tombstone, atomically (on one server inside the put
//!   script; on a cluster in a script of its own in the client's slot, run before the
//!   grant's). A client revocation lays the client's tombstone and lists the client's live
//!   grants in one script, then revokes each grant as above (grant tombstones included). A
//!   put that joined the set before the tombstone has its grant listed and revoked; one
//!   after it is refused. Tokens stored by a version before the client sets existed are not
//!   listed: they are refused at validation once their client no longer exists (see
//!   `docs/storage.md`), and expire with their TTL. A client whose registration expires
//!   vanishes by its key's TTL without touching its tokens, which are refused the same way.
//! - **Failures**: connection and response timeouts (3 s each) and an operation timeout
//!   (5 s); a refused, dropped or timed-out connection is [`StorageError::Unavailable`].
//!   The connection manager (or cluster client) reconnects by itself when Redis returns.
//! - **Requirements**: Redis 6.2 or newer (`GETDEL`, `SET ... EXAT`): one server (or a
//!   primary behind a proxy) with `redis://`, or a Redis Cluster with `redis+cluster://`.
//!   The two key layouts differ: a store moved from one server to a cluster starts empty.
//! - **Clients**: `RedisStore` is a [`ClientRegistry`]: a client created through it is the
//!   string `<prefix>client:<client id>` (its [`ClientRecord`](super::ClientRecord) as JSON,
//!   no TTL); creation is `SET ... NX`, so of concurrent creations with one id exactly one
//!   wins, and an update `SET ... XX`. Clients from the configuration or a [`ClientStore`]
//!   given to the server are consulted first.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Script, ServerErrorKind, Value};
use async_trait::async_trait;

use super::clients::{decode_client, encode_client};
use super::{
    AccessTokenStore, ClientRegistry, ClientStore, CodeRecord, CodeStore, CodeTake, GrantId,
    PendingRecord, PendingStore, Purge, RefreshState, RefreshTokenStore, ReuseWindow, Rotation,
    TokenRecord,
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
///
/// Optionally (one server) KEYS[4] the client's tombstone and KEYS[5] its grant set, with
/// ARGV[5] the grant: a tombstoned client is refused (-1) and a stored token's grant joins
/// the set ([`JOIN_CLIENT`]'s work, in the same script).
const PUT_TOKEN: &str = r#"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[1])
if exp <= now then return 0 end
if KEYS[5] then
  local s = redis.call('ZSCORE', KEYS[5], ARGV[5])
  if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[5], exp, ARGV[5]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local ttl = redis.call('TTL', KEYS[5])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[5], exp) end
end
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

/// Rotates a refresh token. KEYS: old, new, index, family tombstone, and optionally (one
/// server) the client's tombstone and grant set. ARGV: new record, expires_at, new member,
/// grant, and with a reuse interval the rotation time and the earliest rotation time inside
/// the window. Returns 0 unknown, 1 rotated, 2 already rotated (outside the window), 3
/// rotated out inside the window (the new token is stored, the old one left as it was), -1
/// the family or the client is tombstoned (nothing changed). A rotated-out token's hash
/// keeps its rotation time in `rat` (absent when a strict rotation rotated it).
const ROTATE: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local st = redis.call('HGET', KEYS[1], 'rot')
if not st then return 0 end
local outcome = 1
if st == '1' then
  if not ARGV[6] then return 2 end
  local at = tonumber(redis.call('HGET', KEYS[1], 'rat'))
  if not at or at < tonumber(ARGV[6]) then return 2 end
  outcome = 3
elseif ARGV[5] then
  redis.call('HSET', KEYS[1], 'rot', '1', 'rat', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'rot', '1')
end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[2])
if exp > now then
  redis.call('HSET', KEYS[2], 'rec', ARGV[1], 'rot', '0')
  redis.call('EXPIREAT', KEYS[2], exp)
  redis.call('SADD', KEYS[3], ARGV[3])
  local ttl = redis.call('TTL', KEYS[3])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[3], exp) end
  if KEYS[6] then
    local s = redis.call('ZSCORE', KEYS[6], ARGV[4])
    if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[6], exp, ARGV[4]) end
    local cttl = redis.call('TTL', KEYS[6])
    if cttl < 0 or now + cttl < exp then redis.call('EXPIREAT', KEYS[6], exp) end
  end
end
return outcome
"#;

/// A token of a client is about to be written (cluster layout, in the client's slot):
/// refuses a tombstoned client (-1), else adds the grant to the client's grant set with the
/// token's expiry (keeping a later one) and returns 1. KEYS: client tombstone, grant set.
/// ARGV: grant, expires_at.
const JOIN_CLIENT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
if exp <= now then return 1 end
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[2], exp, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local ttl = redis.call('TTL', KEYS[2])
if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[2], exp) end
return 1
"#;

/// Tombstones a client until ARGV[1] (keeping a later expiry; not at all if that time has
/// passed) and returns the grants of its grant set whose tokens may still live. KEYS:
/// client tombstone, grant set.
const MARK_CLIENT: &str = r#"
local untl = tonumber(ARGV[1])
local now = tonumber(redis.call('TIME')[1])
if untl > now then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 or now + ttl < untl then redis.call('SET', KEYS[1], '1', 'EXAT', untl) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZRANGE', KEYS[2], 0, -1)
"#;

/// Tombstones a grant until ARGV[1] (keeping a later expiry; not at all if that time has
/// passed), then deletes the tokens the caller listed and the index, unless the index
/// holds a member the caller did not list (a token written since it read the index): then
/// it deletes nothing and returns -1, and the caller lists the index again. KEYS: index,
/// tombstone, then the listed tokens' keys. ARGV: until, then the listed index members in
/// the order of their keys. Returns how many of the listed tokens existed.
const REVOKE_GRANT: &str = r#"
local untl = tonumber(ARGV[1])
local now = tonumber(redis.call('TIME')[1])
if untl > now then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 0 or now + ttl < untl then redis.call('SET', KEYS[2], '1', 'EXAT', untl) end
end
local listed = {}
for i = 2, #ARGV do listed[ARGV[i]] = true end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not listed[m] then return -1 end
end
local n = 0
for i = 3, #KEYS do n = n + redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
return n
"#;

/// Deletes a flagged hash, returning its record (nil if there was none). KEYS: the hash.
const REVOKE_ONE: &str = r#"
local r = redis.call('HGET', KEYS[1], 'rec')
if r then redis.call('DEL', KEYS[1]) end
return r
"#;

/// The name of a client's grant set (see the [module docs](self)).
const CLIENT_GRANTS: &str = "clg";

/// How many times a grant revocation lists the grant's index and runs [`REVOKE_GRANT`]
/// before giving up. Once its tombstone is laid (the first run) no token joins the index,
/// so the second run succeeds unless the tombstone's time had already passed.
const REVOKE_ATTEMPTS: usize = 8;

mod counters;
mod device;

struct Scripts {
    put_token: Script,
    take_code: Script,
    release_code: Script,
    rotate: Script,
    revoke_grant: Script,
    revoke_one: Script,
    join_client: Script,
    mark_client: Script,
    put_device: Script,
    cas_device: Script,
}

impl Scripts {
    fn new() -> Arc<Self> {
        Arc::new(Scripts {
            put_token: Script::new(PUT_TOKEN),
            take_code: Script::new(TAKE_CODE),
            release_code: Script::new(RELEASE_CODE),
            rotate: Script::new(ROTATE),
            revoke_grant: Script::new(REVOKE_GRANT),
            revoke_one: Script::new(REVOKE_ONE),
            join_client: Script::new(JOIN_CLIENT),
            mark_client: Script::new(MARK_CLIENT),
            put_device: Script::new(device::PUT_DEVICE),
            cas_device: Script::new(device::CAS_DEVICE),
        })
    }
}

/// The key names of one token kind.
struct Kind {
    /// The record (`at`, `rt`).
    rec: &'static str,
    /// The grant's index set.
    index: &'static str,
    /// The grant's tombstone.
    tomb: &'static str,
    /// A client's tombstone.
    client_tomb: &'static str,
    /// The flag field of a hash record; empty for a string record.
    flag: &'static str,
}

const ACCESS: Kind = Kind {
    rec: "at",
    index: "atg",
    tomb: "atx",
    client_tomb: "catx",
    flag: "",
};

const REFRESH: Kind = Kind {
    rec: "rt",
    index: "rtg",
    tomb: "rtx",
    client_tomb: "crtx",
    flag: "rot",
};

/// Which key layout the store uses (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One server: tokens under their digest.
    Single,
    /// A Redis Cluster: tokens under their grant's hash tag, found through a pointer.
    Cluster,
}

/// The connection: one server's manager or the cluster client's connection. Both are
/// multiplexed and cheap to clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The key names of one store: its prefix and layout (see the [module docs](self)).
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    layout: Layout,
}

impl Keys {
    /// A key of one digest (codes and pending requests, in both layouts; tokens on one
    /// server).
    fn key(&self, kind: &str, digest: &TokenDigest) -> String {
        format!("{}{kind}:{}", self.prefix, digest.to_hex())
    }

    fn client_key(&self, id: &str) -> String {
        format!("{}client:{id}", self.prefix)
    }

    /// The sorted set of unused registrations (score: their expiry).
    fn unused_clients_key(&self) -> String {
        format!("{}unused_clients", self.prefix)
    }

    /// A per-grant key (index or tombstone).
    fn grant_key(&self, name: &str, grant: GrantId) -> String {
        match self.layout {
            Layout::Single => format!("{}{name}:{:032x}", self.prefix, grant.0),
            Layout::Cluster => format!("{}{{g:{:032x}}}:{name}", self.prefix, grant.0),
        }
    }

    /// A per-client key (grant set or tombstone), named by the SHA-256 of the client id.
    fn client_grant_key(&self, name: &str, client: &str) -> String {
        let h = TokenDigest::of(client).to_hex();
        match self.layout {
            Layout::Single => format!("{}{name}:{h}", self.prefix),
            Layout::Cluster => format!("{}{{c:{h}}}:{name}", self.prefix),
        }
    }

    /// The record key of a token of `grant` whose digest (an index member) is `hex`.
    fn token_key_hex(&self, kind: &Kind, grant: GrantId, hex: &str) -> String {
        match self.layout {
            Layout::Single => format!("{}{}:{hex}", self.prefix, kind.rec),
            Layout::Cluster => format!("{}{{g:{:032x}}}:{}:{hex}", self.prefix, grant.0, kind.rec),
        }
    }

    fn token_key(&self, kind: &Kind, grant: GrantId, token: &TokenDigest) -> String {
        self.token_key_hex(kind, grant, &token.to_hex())
    }

    /// The cluster layout's pointer from a token's digest to its grant.
    fn pointer_key(&self, kind: &Kind, token: &TokenDigest) -> String {
        format!("{}ptr:{}:{}", self.prefix, kind.rec, token.to_hex())
    }
}

/// All stores in one Redis database or one Redis Cluster. See the [module docs](self).
pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix)
            .field("cluster", &(self.keys.layout == Layout::Cluster))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url`: `redis://[:password@]host:port[/db]` (`rediss://` needs the
    /// `redis` crate's TLS features) for one server, or
    /// `redis+cluster://[[user]:password@]host:port,host:port,...` for a Redis Cluster (any
    /// of its nodes; the client discovers the rest). A `key_prefix` query parameter sets
    /// [`RedisOptions::key_prefix`]; other options are the defaults.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        if is_cluster_url(url) {
            let (nodes, prefix) = parse_cluster_url(url)?;
            let mut options = RedisOptions::default();
            if let Some(p) = prefix {
                options.key_prefix = p;
            }
            return RedisStore::connect_cluster(&nodes, options).await;
        }
        let (url, prefix) = split_prefix(url)?;
        let mut options = RedisOptions::default();
        if let Some(p) = prefix {
            options.key_prefix = p;
        }
        RedisStore::connect_with(&url, options).await
    }

    /// Connects to one server with explicit options (a `key_prefix` in the URL is not read
    /// here).
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
        Ok(RedisStore::from_connection_manager(conn, options))
    }

    /// Connects to a Redis Cluster through any of its nodes, each a
    /// `redis://[[user]:password@]host:port` URL, with the cluster key layout (see the
    /// [module docs](self)). The key prefix must not contain `{` or `}` (it would change
    /// the hash tag that keeps a grant's keys in one slot).
    pub async fn connect_cluster<S: AsRef<str>>(
        nodes: &[S],
        options: RedisOptions,
    ) -> Result<Self, StorageError> {
        check_cluster_prefix(&options.key_prefix)?;
        let client = ClusterClientBuilder::new(nodes.iter().map(|n| n.as_ref()))
            .connection_timeout(options.connection_timeout)
            .response_timeout(options.response_timeout)
            .build()
            .map_err(|e| {
                StorageError::other(ConfigError::Setting {
                    key: "storage",
                    reason: format!("invalid Redis Cluster nodes: {e}"),
                })
            })?;
        let conn = match tokio::time::timeout(
            options.connection_timeout + Duration::from_secs(1),
            client.get_async_connection(),
        )
        .await
        {
            Ok(r) => r.map_err(map_err)?,
            Err(_) => return Err(timed_out("connecting to the Redis Cluster timed out")),
        };
        RedisStore::from_cluster_connection(conn, options)
    }

    /// Uses an existing connection manager (the caller chose its configuration), with the
    /// one-server key layout.
    pub fn from_connection_manager(conn: ConnectionManager, options: RedisOptions) -> Self {
        RedisStore {
            conn: Conn::Single(conn),
            keys: Keys {
                prefix: options.key_prefix,
                layout: Layout::Single,
            },
            timeout: options.operation_timeout,
            scripts: Scripts::new(),
        }
    }

    /// Uses an existing cluster connection (the caller chose its configuration), with the
    /// cluster key layout. Fails if the key prefix contains `{` or `}`.
    pub fn from_cluster_connection(
        conn: ClusterConnection,
        options: RedisOptions,
    ) -> Result<Self, StorageError> {
        check_cluster_prefix(&options.key_prefix)?;
        Ok(RedisStore {
            conn: Conn::Cluster(conn),
            keys: Keys {
                prefix: options.key_prefix,
                layout: Layout::Cluster,
            },
            timeout: options.operation_timeout,
            scripts: Scripts::new(),
        })
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// Whether the store uses the Redis Cluster key layout.
    pub fn is_cluster(&self) -> bool {
        self.keys.layout == Layout::Cluster
    }

    /// The record key of a stored token: on a cluster through its pointer (`None`: no
    /// pointer, so no such token).
    async fn record_key(
        &self,
        kind: &Kind,
        token: &TokenDigest,
    ) -> Result<Option<String>, StorageError> {
        match self.keys.layout {
            Layout::Single => Ok(Some(self.keys.key(kind.rec, token))),
            Layout::Cluster => Ok(self
                .pointed_grant(kind, token)
                .await?
                .map(|g| self.keys.token_key(kind, g, token))),
        }
    }

    /// The grant a cluster pointer names, if there is one.
    async fn pointed_grant(
        &self,
        kind: &Kind,
        token: &TokenDigest,
    ) -> Result<Option<GrantId>, StorageError> {
        let key = self.keys.pointer_key(kind, token);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|s| parse_grant(&s)).transpose()
    }

    /// Points a token's digest at its grant until `expires_at` (an expiry already passed
    /// deletes the pointer).
    async fn set_pointer(
        &self,
        kind: &Kind,
        token: &TokenDigest,
        grant: GrantId,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let key = self.keys.pointer_key(kind, token);
        let value = format!("{:032x}", grant.0);
        self.run(|mut c| async move {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EXAT")
                .arg(expires_at.max(1))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Deletes a cluster pointer whose token is gone or was never stored. A failure is
    /// ignored: a pointer without its record grants nothing and expires with the token.
    async fn drop_pointer(&self, kind: &Kind, token: &TokenDigest) {
        if self.keys.layout != Layout::Cluster {
            return;
        }
        let key = self.keys.pointer_key(kind, token);
        let r = self
            .run(|mut c| async move {
                ::redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if r.is_err() {
            log::debug!("twisted-oauth2: a Redis token pointer was left to expire");
        }
    }

    /// `SET key json <condition>`: whether it was set.
    async fn set_client(&self, client: &Client, condition: &str) -> Result<bool, StorageError> {
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
    async fn index_unused(&self, id: &str, expires: Option<i64>) -> Result<(), StorageError> {
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

    /// Runs one Redis operation on a clone of the (multiplexed) connection under the
    /// operation timeout, mapping its error.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StorageError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.timeout, op(self.conn.clone())).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(timed_out("Redis store operation timed out")),
        }
    }

    /// Stores a token with its index entry, unless the grant has a tombstone
    /// ([`StorageError::GrantRevoked`]). On a cluster the pointer is written first, so a
    /// stored token is always reachable; a refused write's pointer is deleted again.
    async fn put_token(
        &self,
        kind: &Kind,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let grant = record.grant_id;
        let key = self.keys.token_key(kind, grant, token);
        let idx = self.keys.grant_key(kind.index, grant);
        let tomb = self.keys.grant_key(kind.tomb, grant);
        let ctomb = self
            .keys
            .client_grant_key(kind.client_tomb, &record.client_id);
        let cset = self.keys.client_grant_key(CLIENT_GRANTS, &record.client_id);
        let grant_hex = format!("{:032x}", grant.0);
        let member = token.to_hex();
        let single = self.keys.layout == Layout::Single;
        if !single {
            // The client's slot first: a revocation of the client that lists its grants
            // after this either sees this grant or was seen here.
            self.join_client(&ctomb, &cset, &grant_hex, record.expires_at)
                .await?;
            self.set_pointer(kind, token, grant, record.expires_at)
                .await?;
        }
        let scripts = self.scripts.clone();
        let flag = kind.flag;
        let n = self
            .run(|mut c| async move {
                let mut inv = scripts.put_token.key(&key);
                inv.key(&idx).key(&tomb);
                if single {
                    inv.key(&ctomb).key(&cset);
                }
                inv.arg(&json)
                    .arg(record.expires_at)
                    .arg(&member)
                    .arg(flag)
                    .arg(&grant_hex)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        if n < 0 {
            self.drop_pointer(kind, token).await;
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    /// [`JOIN_CLIENT`] (cluster layout): [`StorageError::GrantRevoked`] if the client is
    /// tombstoned.
    async fn join_client(
        &self,
        ctomb: &str,
        cset: &str,
        grant_hex: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let scripts = self.scripts.clone();
        let n = self
            .run(|mut c| async move {
                scripts
                    .join_client
                    .key(ctomb)
                    .key(cset)
                    .arg(grant_hex)
                    .arg(expires_at)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        if n < 0 {
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    /// Tombstones `client` for `kind` and lists its grants ([`MARK_CLIENT`]), then revokes
    /// each of them for `kind` (see the [module docs](self)); returns how many tokens went.
    async fn revoke_client(
        &self,
        kind: &Kind,
        client: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        let ctomb = self.keys.client_grant_key(kind.client_tomb, client);
        let cset = self.keys.client_grant_key(CLIENT_GRANTS, client);
        let scripts = self.scripts.clone();
        let grants: Vec<String> = {
            let (ctomb, cset) = (&ctomb, &cset);
            self.run(|mut c| async move {
                scripts
                    .mark_client
                    .key(ctomb)
                    .key(cset)
                    .arg(until)
                    .invoke_async(&mut c)
                    .await
            })
            .await?
        };
        let mut n = 0;
        for g in &grants {
            n += self.revoke_grant(kind, parse_grant(g)?, until).await?;
        }
        Ok(n)
    }

    /// Tombstones `grant` and deletes its tokens of `kind`: lists the grant's index, then
    /// runs [`REVOKE_GRANT`] with every listed token's key declared, again if a token
    /// joined the index in between.
    async fn revoke_grant(
        &self,
        kind: &Kind,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        let idx = self.keys.grant_key(kind.index, grant);
        let tomb = self.keys.grant_key(kind.tomb, grant);
        for _ in 0..REVOKE_ATTEMPTS {
            let members: Vec<String> = {
                let idx = idx.clone();
                self.run(|mut c| async move {
                    ::redis::cmd("SMEMBERS").arg(&idx).query_async(&mut c).await
                })
                .await?
            };
            let keys: Vec<String> = members
                .iter()
                .map(|m| self.keys.token_key_hex(kind, grant, m))
                .collect();
            let scripts = self.scripts.clone();
            let (idx, tomb) = (&idx, &tomb);
            let n = self
                .run(|mut c| async move {
                    scripts
                        .revoke_grant
                        .key(idx)
                        .key(tomb)
                        .key(&keys)
                        .arg(until)
                        .arg(&members)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await?;
            if n >= 0 {
                return Ok(n as u64);
            }
        }
        Err(StorageError::other(std::io::Error::other(
            "tokens kept joining the grant's index during its revocation",
        )))
    }
}

/// Whether `url` names a Redis Cluster (`redis+cluster://`).
pub(crate) fn is_cluster_url(url: &str) -> bool {
    url.trim()
        .get(..16)
        .is_some_and(|s| s.eq_ignore_ascii_case("redis+cluster://"))
}

fn cluster_url_error(reason: impl Into<String>) -> StorageError {
    StorageError::other(ConfigError::Setting {
        key: "storage",
        reason: reason.into(),
    })
}

/// Splits `redis+cluster://[[user]:password@]host:port,host:port,...[/][?key_prefix=...]`
/// into one `redis://` URL per node (each with the credentials) and the key prefix.
/// Errors never repeat the URL, which may hold a password. (Also for other users of a
/// cluster storage URL, e.g. a revocation channel subscribing on one of its nodes.)
pub(crate) fn parse_cluster_url(url: &str) -> Result<(Vec<String>, Option<String>), StorageError> {
    let url = url.trim();
    let rest = url
        .get(16..)
        .filter(|_| is_cluster_url(url))
        .ok_or_else(|| cluster_url_error("a Redis Cluster URL starts with `redis+cluster://`"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    if hosts.contains('/') {
        return Err(cluster_url_error(
            "a Redis Cluster URL has no database path (a cluster has database 0 only)",
        ));
    }
    let mut nodes = Vec::new();
    for node in hosts.split(',') {
        let node = node.trim();
        let valid = node.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(['@', '?', '#', ' '])
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(cluster_url_error(
                "every node of a Redis Cluster URL is `host:port`, separated by commas",
            ));
        }
        nodes.push(match auth {
            Some(a) => format!("redis://{a}@{node}"),
            None => format!("redis://{node}"),
        });
    }
    let mut prefix = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "key_prefix" {
            prefix = Some(v.into_owned());
        } else {
            return Err(cluster_url_error(format!(
                "unknown Redis Cluster URL parameter `{}` (only `key_prefix`)",
                crate::error::printable(&k)
            )));
        }
    }
    Ok((nodes, prefix))
}

/// A cluster key prefix must leave the grant's `{g:...}` the first hash tag of its keys.
fn check_cluster_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.contains(['{', '}']) {
        return Err(cluster_url_error(
            "a Redis Cluster key prefix must not contain `{` or `}` (hash tags)",
        ));
    }
    Ok(())
}

/// A grant id as a cluster pointer holds it (32 hex digits).
fn parse_grant(s: &str) -> Result<GrantId, StorageError> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StorageError::Corrupt(
            "a Redis token pointer does not hold a grant id".into(),
        ));
    }
    u128::from_str_radix(s, 16)
        .map(GrantId)
        .map_err(|e| StorageError::Corrupt(Box::new(e)))
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

#[async_trait]
impl CodeStore for RedisStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.keys.key("code", code);
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
        let key = self.keys.key("code", code);
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
        let key = self.keys.key("code", code);
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
        let Some(key) = self.record_key(&ACCESS, token).await? else {
            return Ok(None);
        };
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GETDEL").arg(&key).query_async(&mut c).await })
            .await?;
        self.drop_pointer(&ACCESS, token).await;
        v.map(|j| decode(&j)).transpose()
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(&ACCESS, grant, until).await
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        self.revoke_client(&ACCESS, client_id, until).await
    }
}

impl RedisStore {
    /// A rotation, strict (`window` `None`) or with a reuse interval (see
    /// [`RefreshTokenStore::rotate_refresh`] for the cluster rule).
    async fn rotate(
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
        let rec: Option<String> = self
            .run(|mut c| async move { scripts.revoke_one.key(&key).invoke_async(&mut c).await })
            .await?;
        self.drop_pointer(&REFRESH, token).await;
        rec.map(|j| decode(&j)).transpose()
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

#[async_trait]
impl PendingStore for RedisStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.keys.key("pd", handle);
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
        let key = self.keys.key("pd", handle);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|j| decode(&j)).transpose()
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        let key = self.keys.key("pd", handle);
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

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        let (nodes, p) =
            parse_cluster_url("redis+cluster://:pw@10.0.0.1:7001, 10.0.0.2:7002/?key_prefix=t:")
                .unwrap();
        assert_eq!(
            nodes,
            ["redis://:pw@10.0.0.1:7001", "redis://:pw@10.0.0.2:7002"]
        );
        assert_eq!(p.as_deref(), Some("t:"));
        let (nodes, p) = parse_cluster_url("REDIS+CLUSTER://[::1]:7001").unwrap();
        assert_eq!((nodes, p), (vec!["redis://[::1]:7001".to_owned()], None));
        for bad in [
            "redis+cluster://",
            "redis+cluster://h1:7001,",
            "redis+cluster://h1",
            "redis+cluster://h1:0",
            "redis+cluster://h1:70000",
            "redis+cluster://h1:7001/0",
            "redis+cluster://:s3cret@h1:7001?db=1",
            "redis://h1:7001",
        ] {
            match parse_cluster_url(bad) {
                Err(StorageError::Other(e)) => {
                    assert!(!e.to_string().contains("s3cret"), "{bad}: {e}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(is_cluster_url(" redis+cluster://h:1"));
        assert!(!is_cluster_url("redis://h:1"));
    }

    #[test]
    fn cluster_keys_of_one_grant_share_a_hash_tag() {
        assert!(check_cluster_prefix("oauth2:").is_ok());
        assert!(check_cluster_prefix("a{b}:").is_err());
        let g = GrantId(0xab);
        let t = TokenDigest([7; 32]);
        let hex = t.to_hex();
        let cluster = Keys {
            prefix: "p:".into(),
            layout: Layout::Cluster,
        };
        let tag = "p:{g:000000000000000000000000000000ab}:";
        assert_eq!(cluster.token_key(&ACCESS, g, &t), format!("{tag}at:{hex}"));
        assert_eq!(cluster.token_key(&REFRESH, g, &t), format!("{tag}rt:{hex}"));
        assert_eq!(cluster.grant_key(ACCESS.index, g), format!("{tag}atg"));
        assert_eq!(cluster.grant_key(REFRESH.tomb, g), format!("{tag}rtx"));
        assert_eq!(cluster.pointer_key(&ACCESS, &t), format!("p:ptr:at:{hex}"));
        let single = Keys {
            prefix: "p:".into(),
            layout: Layout::Single,
        };
        assert_eq!(single.token_key(&ACCESS, g, &t), format!("p:at:{hex}"));
        assert_eq!(
            single.grant_key(REFRESH.index, g),
            "p:rtg:000000000000000000000000000000ab"
        );
        assert_eq!(
            parse_grant("000000000000000000000000000000ab").ok(),
            Some(g)
        );
        for bad in [
            "ab",
            "+00000000000000000000000000000ab",
            "zz000000000000000000000000000000",
        ] {
            assert!(
                matches!(parse_grant(bad), Err(StorageError::Corrupt(_))),
                "{bad}"
            );
        }
    }
}
