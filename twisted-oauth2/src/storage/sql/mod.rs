//! SQL stores over [`sqlx`]: a SQLite file (feature `sqlite`) or PostgreSQL (feature
//! `postgres`), one [`SqlStore`] implementing every storage trait.
//!
//! - **Schema**: the tables `oauth2_codes`, `oauth2_access_tokens`,
//!   `oauth2_refresh_tokens`, `oauth2_pending`, `oauth2_grant_tombstones`,
//!   `oauth2_client_tombstones`, `oauth2_clients`, `oauth2_device_codes`,
//!   `oauth2_signing_keys` and `oauth2_revoked_jtis` (the stores of `super::keys`; a key's
//!   private half only as its sealed bytes) plus `oauth2_schema_version`. The versioned
//!   DDL is embedded and applied at connect, idempotently and under a lock (a PostgreSQL
//!   advisory lock, a SQLite `BEGIN IMMEDIATE`), so several instances may start at once.
//!   On PostgreSQL the tables live in the connection's `search_path` (choose a schema with
//!   `?options=-c%20search_path%3Dmyschema` in the URL).
//! - **Rows** are keyed by the 32-byte [`TokenDigest`] (`BLOB`/`BYTEA`); records are stored
//!   as JSON text beside the columns the store queries (`grant_id`, `expires_at`, the
//!   `used`/`rotated` flags, and for tokens `client_id`).
//! - **Atomicity**: a code is taken with one conditional
//!   `UPDATE ... SET used = TRUE WHERE digest = $1 AND used = FALSE RETURNING record`;
//!   refresh rotation is a conditional update of the old row and an insert of the new one
//!   in one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: one call of the schema's
//!   `oauth2_rotate_refresh` function, a single statement). Of any number of concurrent
//!   callers, on any number of server instances, exactly one wins.
//! - **Revoked grants**: revoking a grant writes a row in `oauth2_grant_tombstones` (grant,
//!   `access` or `refresh`, until) and deletes the grant's tokens in one transaction; token
//!   puts and rotations refuse a tombstoned grant ([`StorageError::GrantRevoked`]). On
//!   SQLite a put is a single `INSERT ... SELECT ... WHERE NOT EXISTS (tombstone)` and a
//!   revocation or rotation a `BEGIN IMMEDIATE` transaction, so writers are serialized. On
//!   PostgreSQL (read committed) both sides first take a transaction-scoped advisory lock
//!   on the grant, shared for puts and rotations, exclusive for the revocation, so a put
//!   cannot check for the tombstone before the revocation commits and write after it
//!   (write skew). Puts and rotations are one round trip each: the schema's
//!   `oauth2_put_token` and `oauth2_rotate_refresh` functions (schema version 4, `VOLATILE`
//!   PL/pgSQL) take the lock, then check the tombstone in a statement of its own, which
//!   reads with a fresh snapshot and so sees a revocation that committed while the call
//!   waited for the lock.
//! - **Revoked clients**: revoking a client writes a row in `oauth2_client_tombstones`
//!   (client id, kind, until) and deletes the client's tokens of that kind by the indexed
//!   `client_id` column, in one transaction, locked as a grant revocation is (SQLite: the
//!   writer lock; PostgreSQL: an exclusive advisory lock on the client, which every put and
//!   rotation takes shared after the grant's). Puts and rotations refuse a tombstoned
//!   client as they refuse a tombstoned grant. Schema version 5 added the column (filled
//!   from the stored records at upgrade, so older tokens are found too), the table, and on
//!   PostgreSQL new bodies for `oauth2_put_token` and `oauth2_rotate_refresh` (same
//!   signatures: they read the client from the record, so an instance of an older version
//!   still running against the upgraded database honours client tombstones as well). A
//!   purge deletes the tokens of the clients whose registration it expires.
//! - **Reuse interval**: schema version 6 added `rotated_at` to `oauth2_refresh_tokens`
//!   (NULL for tokens rotated before, which are never inside an interval). A rotation with
//!   a [`ReuseWindow`] sets it in the conditional update; when that finds the token
//!   already rotated, a second statement in the same transaction (SQLite: under the writer
//!   lock; PostgreSQL: in `oauth2_rotate_refresh_within`, after the row lock the update
//!   waited for, with a fresh snapshot) compares it with the window and stores the new token
//!   without touching the old one.
//! - **Expiry**: rows are never honoured past `expires_at` (the callers check), and
//!   [`Purge::purge_expired`] deletes them; the Rocket fairing runs it periodically.
//! - **Failures**: acquiring a connection and every operation are bounded by timeouts
//!   (default 3 s and 5 s); an unreachable database, a timeout or a busy SQLite file is
//!   [`StorageError::Unavailable`] (answered `temporarily_unavailable`), anything else
//!   [`StorageError::Other`]. The pool reconnects by itself when the database returns.
//!   Pooled PostgreSQL connections are not pinged before each use (that ping was a round
//!   trip per operation): a connection that broke while idle fails one operation as
//!   [`StorageError::Unavailable`] and is replaced.
//! - **Clients**: `SqlStore` is a [`ClientRegistry`]: clients created through it live in
//!   `oauth2_clients` (`id` primary key, the [`ClientRecord`](super::ClientRecord) as JSON,
//!   `registered_at`, `expires_at`); a creation is one `INSERT ... ON CONFLICT (id) DO
//!   NOTHING`, so of concurrent creations with one id exactly one wins. Clients from the
//!   configuration or a [`ClientStore`] given to the server are consulted first.
//!   Schema version 3 added the table; older databases are upgraded at connect and keep
//!   their rows. Version 4 added PostgreSQL's write functions (nothing on SQLite); version 5
//!   the client revocations; version 6 the rotation times.
//!
//! ```no_run
//! # async fn demo() -> Result<(), twisted_oauth2::error::StorageError> {
//! use std::sync::Arc;
//! use twisted_oauth2::storage::{sql::SqlStore, Stores};
//!
//! let store = SqlStore::connect("sqlite://oauth2.db").await?;
//! let stores = Stores::from_backend(Arc::new(store));
//! # let _ = stores; Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::clients::{decode_client, encode_client};
use super::{
    AccessTokenStore, ClientRegistry, ClientStore, CodeRecord, CodeStore, CodeTake, GrantId,
    PendingRecord, PendingStore, Purge, RefreshState, RefreshTokenStore, ReuseWindow, Rotation,
    TokenRecord,
};
use crate::client::Client;
use crate::error::{ConfigError, StorageError};
use crate::token::TokenDigest;

/// Pool and timeout settings of a [`SqlStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqlOptions {
    /// Most connections the pool opens. Default 10 (SQLite: 4; an in-memory SQLite
    /// database always uses 1).
    pub max_connections: u32,
    /// How long a request waits for a connection (including opening one) before the store
    /// reports [`StorageError::Unavailable`]. Default 3 s.
    pub acquire_timeout: Duration,
    /// The longest one store operation may take before it is abandoned as
    /// [`StorageError::Unavailable`]. Default 5 s.
    pub operation_timeout: Duration,
    /// How long SQLite waits for a lock held by another connection or process. Default 5 s.
    pub sqlite_busy_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqlOptions {
    /// Sets [`SqlOptions::max_connections`].
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`SqlOptions::acquire_timeout`].
    pub fn acquire_timeout(mut self, t: Duration) -> Self {
        self.acquire_timeout = t;
        self
    }

    /// Sets [`SqlOptions::operation_timeout`].
    pub fn operation_timeout(mut self, t: Duration) -> Self {
        self.operation_timeout = t;
        self
    }
}

enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool. The SQL is shared: both SQLite and
/// PostgreSQL accept `$n` placeholders, `ON CONFLICT` upserts and `RETURNING`.
macro_rules! on_pool {
    ($self:expr, |$p:ident| $body:expr) => {
        match &$self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($p) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => $body,
        }
    };
}

/// `fetch_optional` of one text column.
macro_rules! opt_text {
    ($self:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_pool!($self, |p| {
            sqlx::query($sql)
                $(.bind($bind))*
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get::<String, usize>(0))
                .transpose()
        })
    };
}

/// `fetch_optional` of a text column and a boolean (a record and its `used` or `rotated`
/// flag).
macro_rules! opt_text_flag {
    ($self:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_pool!($self, |p| {
            sqlx::query($sql)
                $(.bind($bind))*
                .fetch_optional(p)
                .await?
                .map(|r| -> Result<(String, bool), sqlx::Error> {
                    Ok((r.try_get(0)?, r.try_get(1)?))
                })
                .transpose()
        })
    };
}

/// `execute`, giving the number of rows affected.
macro_rules! exec {
    ($self:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_pool!($self, |p| {
            sqlx::query($sql)
                $(.bind($bind))*
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
    };
}

/// All stores in one SQL database. See the [module docs](self).
pub struct SqlStore {
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

mod access;
mod clients;
mod codes;
mod device;
mod keys;
mod pending;
mod purge;
mod refresh;
mod schema;
#[cfg(test)]
mod tests;
mod tokens;

pub use schema::SCHEMA_VERSION;
#[allow(unused_imports)]
use schema::*;
use tokens::*;

impl SqlStore {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`) with
    /// default [`SqlOptions`] and applies the schema. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        SqlStore::connect_with(url, SqlOptions::default()).await
    }

    /// Connects with explicit options and applies the schema.
    pub async fn connect_with(url: &str, options: SqlOptions) -> Result<Self, StorageError> {
        let scheme = url.split(':').next().unwrap_or_default();
        let store = match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => SqlStore::sqlite(url, &options).await?,
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => SqlStore::postgres(url, &options).await?,
            other => {
                return Err(StorageError::other(ConfigError::Setting {
                    key: "storage",
                    reason: format!(
                        "`{other}` is not a SQL URL scheme enabled in this build of twisted-oauth2"
                    ),
                }))
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite(url: &str, o: &SqlOptions) -> Result<Self, StorageError> {
        use std::str::FromStr;

        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| bad_url(e.to_string()))?
            .create_if_missing(true)
            .busy_timeout(o.sqlite_busy_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = if in_memory {
            opts
        } else {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        // An embedded connection cannot go stale: skip the ping before each use.
        let mut pool = SqlitePoolOptions::new()
            .acquire_timeout(o.acquire_timeout)
            .test_before_acquire(false);
        pool = if in_memory {
            // One connection, never closed: the database lives as long as it does.
            pool.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(o.max_connections.min(4))
        };
        let pool = connect_timed(o, pool.connect_with(opts)).await?;
        Ok(SqlStore {
            pool: Pool::Sqlite(pool),
            timeout: o.operation_timeout,
        })
    }

    #[cfg(feature = "postgres")]
    async fn postgres(url: &str, o: &SqlOptions) -> Result<Self, StorageError> {
        use std::str::FromStr;

        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| bad_url(e.to_string()))?
            .application_name("twisted-oauth2");
        // No liveness ping before each use (a round trip per operation, the store's
        // most common cost after the statement itself): a connection that broke while
        // idle fails its next operation as `Unavailable` and the pool replaces it.
        let pool = PgPoolOptions::new()
            .max_connections(o.max_connections)
            .acquire_timeout(o.acquire_timeout)
            .test_before_acquire(false);
        let pool = connect_timed(o, pool.connect_with(opts)).await?;
        Ok(SqlStore {
            pool: Pool::Postgres(pool),
            timeout: o.operation_timeout,
        })
    }

    /// Wraps an existing SQLite pool (the caller chose its options) and applies the schema.
    #[cfg(feature = "sqlite")]
    pub async fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Result<Self, StorageError> {
        let store = SqlStore {
            pool: Pool::Sqlite(pool),
            timeout: SqlOptions::default().operation_timeout,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing PostgreSQL pool (the caller chose its options) and applies the
    /// schema.
    #[cfg(feature = "postgres")]
    pub async fn from_postgres_pool(pool: sqlx::PgPool) -> Result<Self, StorageError> {
        let store = SqlStore {
            pool: Pool::Postgres(pool),
            timeout: SqlOptions::default().operation_timeout,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    /// The store's one fetch-and-decode: runs `query` (a row of a JSON record text and
    /// `extra` columns, or none) under the operation timeout and decodes the record; a
    /// record that does not decode is [`StorageError::Corrupt`].
    async fn fetch_decoded<T: serde::de::DeserializeOwned, X>(
        &self,
        query: impl Future<Output = Result<Option<(String, X)>, sqlx::Error>>,
    ) -> Result<Option<(T, X)>, StorageError> {
        match self.timed(query).await? {
            Some((json, extra)) => Ok(Some((decode(&json)?, extra))),
            None => Ok(None),
        }
    }

    /// [`Self::fetch_decoded`] of a query giving the record text alone.
    async fn fetch_record<T: serde::de::DeserializeOwned>(
        &self,
        query: impl Future<Output = Result<Option<String>, sqlx::Error>>,
    ) -> Result<Option<T>, StorageError> {
        let rows = async { Ok(query.await?.map(|j| (j, ()))) };
        Ok(self.fetch_decoded(rows).await?.map(|(r, ())| r))
    }

    /// Runs a database operation under the operation timeout, mapping its error.
    async fn timed<T>(
        &self,
        op: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StorageError::unavailable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "SQL store operation timed out",
            ))),
        }
    }
}

async fn connect_timed<P>(
    o: &SqlOptions,
    connect: impl Future<Output = Result<P, sqlx::Error>>,
) -> Result<P, StorageError> {
    // `acquire_timeout` bounds the pool's first connection; this is a backstop.
    match tokio::time::timeout(o.acquire_timeout + Duration::from_secs(1), connect).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(StorageError::unavailable(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to the SQL store timed out",
        ))),
    }
}

fn bad_url(reason: String) -> StorageError {
    StorageError::other(ConfigError::Setting {
        key: "storage",
        reason,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether a database error code means "try again later": PostgreSQL connection,
/// resource, shutdown and serialization classes; SQLite busy, locked, I/O and full.
fn transient_code(code: &str) -> bool {
    // A PostgreSQL SQLSTATE is always five characters; SQLite's numeric codes are shorter.
    if code.len() < 5 {
        let n = code.parse::<i64>().unwrap_or(0);
        // SQLite (extended) result code: the primary code is the low byte.
        return matches!(n & 0xff, 5 | 6 | 10 | 13 | 14);
    }
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "40001" | "40P01" | "55P03")
}

/// Maps a sqlx error: unreachable, timed out or busy is [`StorageError::Unavailable`],
/// undecodable data [`StorageError::Corrupt`], the rest [`StorageError::Other`].
fn map_err(e: sqlx::Error) -> StorageError {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            StorageError::unavailable(e)
        }
        E::Database(ref db) if db.code().is_some_and(|c| transient_code(&c)) => {
            StorageError::unavailable(e)
        }
        E::ColumnDecode { .. } | E::Decode(_) => StorageError::Corrupt(Box::new(e)),
        _ => StorageError::other(e),
    }
}

fn encode<T: serde::Serialize>(record: &T) -> Result<String, StorageError> {
    serde_json::to_string(record).map_err(StorageError::other)
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|e| StorageError::Corrupt(Box::new(e)))
}

fn grant_bytes(g: GrantId) -> [u8; 16] {
    g.0.to_be_bytes()
}
