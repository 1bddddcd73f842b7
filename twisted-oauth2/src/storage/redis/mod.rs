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
//!   nothing outlives its record and [`Purge::purge_expired`] only trims the signing keys
//!   and the jti denylist index (see `keys.rs`: keys under the `{sk}` hash tag, a revoked
//!   jti as `<prefix>jti:<sha256>` with a TTL at its `exp`). A used
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

mod access;
mod clients;
mod codes;
mod counters;
mod device;
mod keys;
mod pending;
mod purge;
mod refresh;
mod scripts;
#[cfg(test)]
mod tests;
mod tokens;

use scripts::*;

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

    /// The store's one fetch-and-decode: runs `op` (a command or script answering a JSON
    /// record or nil) as [`Self::run`] does and decodes the record; one that does not
    /// decode is [`StorageError::Corrupt`].
    async fn fetch_record<T, F, Fut>(&self, op: F) -> Result<Option<T>, StorageError>
    where
        T: serde::de::DeserializeOwned,
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<Option<String>, RedisError>>,
    {
        self.run(op).await?.map(|j| decode(&j)).transpose()
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
