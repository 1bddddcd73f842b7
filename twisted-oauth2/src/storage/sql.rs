//! SQL stores over [`sqlx`]: a SQLite file (feature `sqlite`) or PostgreSQL (feature
//! `postgres`), one [`SqlStore`] implementing every storage trait.
//!
//! - **Schema**: seven tables (`oauth2_codes`, `oauth2_access_tokens`,
//!   `oauth2_refresh_tokens`, `oauth2_pending`, `oauth2_grant_tombstones`,
//!   `oauth2_client_tombstones`, `oauth2_clients`) plus `oauth2_schema_version`. The versioned
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

mod device;

/// The schema, one entry per version; each entry's statements run in one transaction.
/// Never edit a released entry: append a new version.
#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: &[&[&str]] = &[
    &[
        "CREATE TABLE IF NOT EXISTS oauth2_codes (digest BLOB PRIMARY KEY NOT NULL, \
     grant_id BLOB NOT NULL, record TEXT NOT NULL, used BOOLEAN NOT NULL DEFAULT FALSE, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_codes_expires ON oauth2_codes (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_access_tokens (digest BLOB PRIMARY KEY NOT NULL, \
     grant_id BLOB NOT NULL, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_access_grant ON oauth2_access_tokens (grant_id)",
        "CREATE INDEX IF NOT EXISTS oauth2_access_expires ON oauth2_access_tokens (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_refresh_tokens (digest BLOB PRIMARY KEY NOT NULL, \
     grant_id BLOB NOT NULL, record TEXT NOT NULL, rotated BOOLEAN NOT NULL DEFAULT FALSE, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_grant ON oauth2_refresh_tokens (grant_id)",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_expires ON oauth2_refresh_tokens (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_pending (digest BLOB PRIMARY KEY NOT NULL, \
     record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_pending_expires ON oauth2_pending (expires_at)",
    ],
    &[
        // Version 2: tombstones of revoked grants (`kind` is `access` or `refresh`).
        "CREATE TABLE IF NOT EXISTS oauth2_grant_tombstones (grant_id BLOB NOT NULL, \
     kind TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (grant_id, kind))",
        "CREATE INDEX IF NOT EXISTS oauth2_grant_tombstones_expires \
     ON oauth2_grant_tombstones (expires_at)",
    ],
    &[
        // Version 3: clients created at run time (`record` is a JSON `ClientRecord`).
        "CREATE TABLE IF NOT EXISTS oauth2_clients (id TEXT PRIMARY KEY NOT NULL, \
     record TEXT NOT NULL, registered_at BIGINT, expires_at BIGINT)",
        "CREATE INDEX IF NOT EXISTS oauth2_clients_expires ON oauth2_clients (expires_at)",
    ],
    // Version 4: PostgreSQL's write functions (one round trip per put and rotation);
    // SQLite needs none (its puts are one statement, its rotations run on the writer).
    &[],
    &[
        // Version 5: revocation by client. Tokens get their client id as a column (filled
        // from the records already stored), and revoked clients their tombstones.
        "ALTER TABLE oauth2_access_tokens ADD COLUMN client_id TEXT",
        "UPDATE oauth2_access_tokens SET client_id = json_extract(record, '$.client_id')",
        "CREATE INDEX IF NOT EXISTS oauth2_access_client ON oauth2_access_tokens (client_id)",
        "ALTER TABLE oauth2_refresh_tokens ADD COLUMN client_id TEXT",
        "UPDATE oauth2_refresh_tokens SET client_id = json_extract(record, '$.client_id')",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_client ON oauth2_refresh_tokens (client_id)",
        "CREATE TABLE IF NOT EXISTS oauth2_client_tombstones (client_id TEXT NOT NULL, \
     kind TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (client_id, kind))",
        "CREATE INDEX IF NOT EXISTS oauth2_client_tombstones_expires \
     ON oauth2_client_tombstones (expires_at)",
    ],
    &[
        // Version 6: the rotation time of a rotated-out refresh token (the reuse interval);
        // NULL for tokens rotated before (never inside a reuse window).
        "ALTER TABLE oauth2_refresh_tokens ADD COLUMN rotated_at BIGINT",
    ],
    &[
        // Version 7: device authorization requests (RFC 8628; `record` is a JSON
        // `DeviceRecord`, `digest` the device code's SHA-256 hex).
        "CREATE TABLE IF NOT EXISTS oauth2_device_codes (digest TEXT PRIMARY KEY NOT NULL, \
     user_code TEXT NOT NULL UNIQUE, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_device_codes_expires \
     ON oauth2_device_codes (expires_at)",
    ],
];

/// The PostgreSQL twin of `SQLITE_MIGRATIONS` (`BYTEA` instead of `BLOB`).
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: &[&[&str]] = &[
    &[
        "CREATE TABLE IF NOT EXISTS oauth2_codes (digest BYTEA PRIMARY KEY, \
     grant_id BYTEA NOT NULL, record TEXT NOT NULL, used BOOLEAN NOT NULL DEFAULT FALSE, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_codes_expires ON oauth2_codes (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_access_tokens (digest BYTEA PRIMARY KEY, \
     grant_id BYTEA NOT NULL, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_access_grant ON oauth2_access_tokens (grant_id)",
        "CREATE INDEX IF NOT EXISTS oauth2_access_expires ON oauth2_access_tokens (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_refresh_tokens (digest BYTEA PRIMARY KEY, \
     grant_id BYTEA NOT NULL, record TEXT NOT NULL, rotated BOOLEAN NOT NULL DEFAULT FALSE, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_grant ON oauth2_refresh_tokens (grant_id)",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_expires ON oauth2_refresh_tokens (expires_at)",
        "CREATE TABLE IF NOT EXISTS oauth2_pending (digest BYTEA PRIMARY KEY, \
     record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_pending_expires ON oauth2_pending (expires_at)",
    ],
    &[
        "CREATE TABLE IF NOT EXISTS oauth2_grant_tombstones (grant_id BYTEA NOT NULL, \
     kind TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (grant_id, kind))",
        "CREATE INDEX IF NOT EXISTS oauth2_grant_tombstones_expires \
     ON oauth2_grant_tombstones (expires_at)",
    ],
    &[
        // Version 3: clients created at run time (`record` is a JSON `ClientRecord`).
        "CREATE TABLE IF NOT EXISTS oauth2_clients (id TEXT PRIMARY KEY NOT NULL, \
     record TEXT NOT NULL, registered_at BIGINT, expires_at BIGINT)",
        "CREATE INDEX IF NOT EXISTS oauth2_clients_expires ON oauth2_clients (expires_at)",
    ],
    &[
        // Version 4: a token put and a refresh rotation as one call each (one round trip
        // instead of BEGIN, lock, statements, COMMIT). The functions are VOLATILE, so under
        // read committed each statement in them takes a fresh snapshot: the tombstone check
        // runs after the grant's shared advisory lock is held and sees a revocation that
        // committed while the call waited for it. The call is one statement, so its writes
        // commit (and the lock is released) together.
        "CREATE OR REPLACE FUNCTION oauth2_put_token(p_kind TEXT, p_digest BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     BEGIN \
       PERFORM pg_advisory_xact_lock_shared(p_class, p_key); \
       IF EXISTS (SELECT 1 FROM oauth2_grant_tombstones t \
                  WHERE t.grant_id = p_grant AND t.kind = p_kind) THEN \
         RETURN 0; \
       END IF; \
       IF p_kind = 'access' THEN \
         INSERT INTO oauth2_access_tokens AS a (digest, grant_id, record, expires_at) \
         VALUES (p_digest, p_grant, p_record, p_expires) \
         ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
         record = excluded.record, expires_at = excluded.expires_at; \
       ELSE \
         INSERT INTO oauth2_refresh_tokens AS r \
         (digest, grant_id, record, rotated, expires_at) \
         VALUES (p_digest, p_grant, p_record, FALSE, p_expires) \
         ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
         record = excluded.record, rotated = FALSE, expires_at = excluded.expires_at; \
       END IF; \
       RETURN 1; \
     END $fn$",
        // Returns 0 rotated, 1 the old token is not active (unknown or already rotated),
        // 2 the family is revoked.
        "CREATE OR REPLACE FUNCTION oauth2_rotate_refresh(p_old BYTEA, p_new BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     BEGIN \
       PERFORM pg_advisory_xact_lock_shared(p_class, p_key); \
       IF EXISTS (SELECT 1 FROM oauth2_grant_tombstones t \
                  WHERE t.grant_id = p_grant AND t.kind = 'refresh') THEN \
         RETURN 2; \
       END IF; \
       UPDATE oauth2_refresh_tokens SET rotated = TRUE \
       WHERE digest = p_old AND rotated = FALSE; \
       IF NOT FOUND THEN \
         RETURN 1; \
       END IF; \
       INSERT INTO oauth2_refresh_tokens AS r \
       (digest, grant_id, record, rotated, expires_at) \
       VALUES (p_new, p_grant, p_record, FALSE, p_expires) \
       ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
       record = excluded.record, rotated = FALSE, expires_at = excluded.expires_at; \
       RETURN 0; \
     END $fn$",
    ],
    &[
        // Version 5: revocation by client, as for SQLite, plus: the advisory lock key of a
        // client (the first 32 bits of the MD5 of its id), and new bodies for the write
        // functions (same signatures, so instances of version 4 still running call them
        // too): each takes the client's shared lock after the grant's, refuses a tombstoned
        // client, and fills the `client_id` column from the record.
        "ALTER TABLE oauth2_access_tokens ADD COLUMN IF NOT EXISTS client_id TEXT",
        "UPDATE oauth2_access_tokens SET client_id = record::json->>'client_id'",
        "CREATE INDEX IF NOT EXISTS oauth2_access_client ON oauth2_access_tokens (client_id)",
        "ALTER TABLE oauth2_refresh_tokens ADD COLUMN IF NOT EXISTS client_id TEXT",
        "UPDATE oauth2_refresh_tokens SET client_id = record::json->>'client_id'",
        "CREATE INDEX IF NOT EXISTS oauth2_refresh_client ON oauth2_refresh_tokens (client_id)",
        "CREATE TABLE IF NOT EXISTS oauth2_client_tombstones (client_id TEXT NOT NULL, \
     kind TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (client_id, kind))",
        "CREATE INDEX IF NOT EXISTS oauth2_client_tombstones_expires \
     ON oauth2_client_tombstones (expires_at)",
        "CREATE OR REPLACE FUNCTION oauth2_client_lock_key(p_client TEXT) RETURNS INT \
     LANGUAGE sql IMMUTABLE STRICT AS $fn$ \
     SELECT ('x' || left(md5(p_client), 8))::bit(32)::int $fn$",
        "CREATE OR REPLACE FUNCTION oauth2_put_token(p_kind TEXT, p_digest BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     DECLARE v_client TEXT := p_record::json->>'client_id'; \
     BEGIN \
       PERFORM pg_advisory_xact_lock_shared(p_class, p_key); \
       PERFORM pg_advisory_xact_lock_shared(1953456435, oauth2_client_lock_key(v_client)); \
       IF EXISTS (SELECT 1 FROM oauth2_grant_tombstones t \
                  WHERE t.grant_id = p_grant AND t.kind = p_kind) THEN \
         RETURN 0; \
       END IF; \
       IF EXISTS (SELECT 1 FROM oauth2_client_tombstones c \
                  WHERE c.client_id = v_client AND c.kind = p_kind) THEN \
         RETURN 0; \
       END IF; \
       IF p_kind = 'access' THEN \
         INSERT INTO oauth2_access_tokens AS a \
         (digest, grant_id, client_id, record, expires_at) \
         VALUES (p_digest, p_grant, v_client, p_record, p_expires) \
         ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
         client_id = excluded.client_id, record = excluded.record, \
         expires_at = excluded.expires_at; \
       ELSE \
         INSERT INTO oauth2_refresh_tokens AS r \
         (digest, grant_id, client_id, record, rotated, expires_at) \
         VALUES (p_digest, p_grant, v_client, p_record, FALSE, p_expires) \
         ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
         client_id = excluded.client_id, record = excluded.record, rotated = FALSE, \
         expires_at = excluded.expires_at; \
       END IF; \
       RETURN 1; \
     END $fn$",
        "CREATE OR REPLACE FUNCTION oauth2_rotate_refresh(p_old BYTEA, p_new BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     DECLARE v_client TEXT := p_record::json->>'client_id'; \
     BEGIN \
       PERFORM pg_advisory_xact_lock_shared(p_class, p_key); \
       PERFORM pg_advisory_xact_lock_shared(1953456435, oauth2_client_lock_key(v_client)); \
       IF EXISTS (SELECT 1 FROM oauth2_grant_tombstones t \
                  WHERE t.grant_id = p_grant AND t.kind = 'refresh') THEN \
         RETURN 2; \
       END IF; \
       IF EXISTS (SELECT 1 FROM oauth2_client_tombstones c \
                  WHERE c.client_id = v_client AND c.kind = 'refresh') THEN \
         RETURN 2; \
       END IF; \
       UPDATE oauth2_refresh_tokens SET rotated = TRUE \
       WHERE digest = p_old AND rotated = FALSE; \
       IF NOT FOUND THEN \
         RETURN 1; \
       END IF; \
       INSERT INTO oauth2_refresh_tokens AS r \
       (digest, grant_id, client_id, record, rotated, expires_at) \
       VALUES (p_new, p_grant, v_client, p_record, FALSE, p_expires) \
       ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
       client_id = excluded.client_id, record = excluded.record, rotated = FALSE, \
       expires_at = excluded.expires_at; \
       RETURN 0; \
     END $fn$",
    ],
    &[
        // Version 6: the rotation time of a rotated-out refresh token, and a rotation with
        // a reuse interval. `oauth2_rotate_refresh` gets a body that clears the time (same
        // signature); `oauth2_rotate_refresh_within` records `p_now` when it rotates an
        // active token, and for a token rotated at or after `p_earliest` stores the new one
        // without touching the old (returns 3). The conditional update locks the old row, so
        // a concurrent rotation waits for it and then sees it rotated; the time check is a
        // statement of its own, with a fresh snapshot that sees that rotation.
        "ALTER TABLE oauth2_refresh_tokens ADD COLUMN IF NOT EXISTS rotated_at BIGINT",
        "CREATE OR REPLACE FUNCTION oauth2_rotate_refresh_within(p_old BYTEA, p_new BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT, \
     p_now BIGINT, p_earliest BIGINT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     DECLARE v_client TEXT := p_record::json->>'client_id'; v_outcome INT := 0; \
     BEGIN \
       PERFORM pg_advisory_xact_lock_shared(p_class, p_key); \
       PERFORM pg_advisory_xact_lock_shared(1953456435, oauth2_client_lock_key(v_client)); \
       IF EXISTS (SELECT 1 FROM oauth2_grant_tombstones t \
                  WHERE t.grant_id = p_grant AND t.kind = 'refresh') THEN \
         RETURN 2; \
       END IF; \
       IF EXISTS (SELECT 1 FROM oauth2_client_tombstones c \
                  WHERE c.client_id = v_client AND c.kind = 'refresh') THEN \
         RETURN 2; \
       END IF; \
       UPDATE oauth2_refresh_tokens SET rotated = TRUE, rotated_at = p_now \
       WHERE digest = p_old AND rotated = FALSE; \
       IF NOT FOUND THEN \
         IF p_earliest IS NULL OR NOT EXISTS (SELECT 1 FROM oauth2_refresh_tokens o \
            WHERE o.digest = p_old AND o.rotated AND o.rotated_at >= p_earliest) THEN \
           RETURN 1; \
         END IF; \
         v_outcome := 3; \
       END IF; \
       INSERT INTO oauth2_refresh_tokens AS r \
       (digest, grant_id, client_id, record, rotated, rotated_at, expires_at) \
       VALUES (p_new, p_grant, v_client, p_record, FALSE, NULL, p_expires) \
       ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
       client_id = excluded.client_id, record = excluded.record, rotated = FALSE, \
       rotated_at = NULL, expires_at = excluded.expires_at; \
       RETURN v_outcome; \
     END $fn$",
        "CREATE OR REPLACE FUNCTION oauth2_rotate_refresh(p_old BYTEA, p_new BYTEA, \
     p_grant BYTEA, p_record TEXT, p_expires BIGINT, p_class INT, p_key INT) \
     RETURNS INT LANGUAGE plpgsql VOLATILE AS $fn$ \
     BEGIN \
       RETURN oauth2_rotate_refresh_within(p_old, p_new, p_grant, p_record, p_expires, \
         p_class, p_key, NULL, NULL); \
     END $fn$",
    ],
    &[
        // Version 7: device authorization requests, as on SQLite.
        "CREATE TABLE IF NOT EXISTS oauth2_device_codes (digest TEXT PRIMARY KEY, \
     user_code TEXT NOT NULL UNIQUE, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_device_codes_expires \
     ON oauth2_device_codes (expires_at)",
    ],
];

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 7;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS oauth2_schema_version \
     (version BIGINT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)";
const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM oauth2_schema_version";
const RECORD_VERSION: &str =
    "INSERT INTO oauth2_schema_version (version, applied_at) VALUES ($1, $2)";
/// A fixed key for `pg_advisory_xact_lock`, so concurrent instances migrate one at a time.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK: i64 = 0x7477_6f61_7574_6832; // "twoauth2"
/// The first key of the two-key advisory locks taken per grant (a key space apart from the
/// one-key `MIGRATION_LOCK`); the second key is the grant id folded to 32 bits.
#[cfg(feature = "postgres")]
const GRANT_LOCK_CLASS: i32 = 0x746f_6132; // "toa2"
/// The first key of the advisory locks taken per client (the second is the schema's
/// `oauth2_client_lock_key` of the id). Written out in the version-5 functions.
#[cfg(feature = "postgres")]
const CLIENT_LOCK_CLASS: i32 = 0x746f_6133; // "toa3", 1953456435

/// Stores a token unless its grant is tombstoned: 0 rows affected means refused (SQLite;
/// PostgreSQL calls `oauth2_put_token`).
#[cfg(feature = "sqlite")]
const PUT_ACCESS: &str =
    "INSERT INTO oauth2_access_tokens (digest, grant_id, record, expires_at, client_id) \
     SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM oauth2_grant_tombstones \
     WHERE grant_id = $2 AND kind = 'access') AND NOT EXISTS (SELECT 1 \
     FROM oauth2_client_tombstones WHERE client_id = $5 AND kind = 'access') \
     ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
     record = excluded.record, expires_at = excluded.expires_at, \
     client_id = excluded.client_id";
#[cfg(feature = "sqlite")]
const PUT_REFRESH: &str =
    "INSERT INTO oauth2_refresh_tokens (digest, grant_id, record, rotated, expires_at, \
     client_id) SELECT $1, $2, $3, FALSE, $4, $5 WHERE NOT EXISTS (SELECT 1 \
     FROM oauth2_grant_tombstones WHERE grant_id = $2 AND kind = 'refresh') \
     AND NOT EXISTS (SELECT 1 FROM oauth2_client_tombstones WHERE client_id = $5 \
     AND kind = 'refresh') \
     ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
     record = excluded.record, rotated = FALSE, expires_at = excluded.expires_at, \
     client_id = excluded.client_id";
/// Lays (or extends) a tombstone: `$1` grant, `$2` kind, `$3` until.
const PUT_TOMBSTONE: &str = "INSERT INTO oauth2_grant_tombstones (grant_id, kind, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (grant_id, kind) DO UPDATE SET expires_at = \
     CASE WHEN excluded.expires_at > oauth2_grant_tombstones.expires_at \
     THEN excluded.expires_at ELSE oauth2_grant_tombstones.expires_at END";
/// Lays (or extends) a client tombstone: `$1` client id, `$2` kind, `$3` until.
const PUT_CLIENT_TOMBSTONE: &str =
    "INSERT INTO oauth2_client_tombstones (client_id, kind, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (client_id, kind) DO UPDATE SET expires_at = \
     CASE WHEN excluded.expires_at > oauth2_client_tombstones.expires_at \
     THEN excluded.expires_at ELSE oauth2_client_tombstones.expires_at END";
/// The new token of a SQLite rotation.
#[cfg(feature = "sqlite")]
const PUT_ROTATED: &str = "INSERT INTO oauth2_refresh_tokens \
     (digest, grant_id, record, rotated, expires_at, client_id) \
     VALUES ($1, $2, $3, FALSE, $4, $5) ON CONFLICT (digest) DO UPDATE SET \
     grant_id = excluded.grant_id, record = excluded.record, \
     rotated = FALSE, expires_at = excluded.expires_at, client_id = excluded.client_id";
/// Whether the grant `$1` or the client `$3` has a tombstone for kind `$2`.
#[cfg(feature = "sqlite")]
const IS_TOMBSTONED: &str =
    "SELECT 1 FROM oauth2_grant_tombstones WHERE grant_id = $1 AND kind = $2 \
     UNION ALL SELECT 1 FROM oauth2_client_tombstones WHERE client_id = $3 AND kind = $2";

/// What a token kind's grant revocation needs.
#[derive(Clone, Copy)]
enum Kind {
    Access,
    Refresh,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Refresh => "refresh",
        }
    }

    /// The SQLite put statement of this kind.
    #[cfg(feature = "sqlite")]
    fn put(self) -> &'static str {
        match self {
            Kind::Access => PUT_ACCESS,
            Kind::Refresh => PUT_REFRESH,
        }
    }

    fn delete_grant(self) -> &'static str {
        match self {
            Kind::Access => "DELETE FROM oauth2_access_tokens WHERE grant_id = $1",
            Kind::Refresh => "DELETE FROM oauth2_refresh_tokens WHERE grant_id = $1",
        }
    }

    fn delete_client(self) -> &'static str {
        match self {
            Kind::Access => "DELETE FROM oauth2_access_tokens WHERE client_id = $1",
            Kind::Refresh => "DELETE FROM oauth2_refresh_tokens WHERE client_id = $1",
        }
    }
}

/// The second key of a grant's advisory lock.
#[cfg(feature = "postgres")]
fn grant_lock_key(g: GrantId) -> i32 {
    let v = g.0 as u64 ^ (g.0 >> 64) as u64;
    (v ^ (v >> 32)) as u32 as i32
}

/// The outcome of a rotation transaction.
enum RotateTx {
    Rotated,
    Within,
    NotActive,
    Revoked,
}

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

    /// Applies the embedded schema migrations that the database lacks. Idempotent; run by
    /// [`SqlStore::connect`]. Fails if the database has a newer schema than this library
    /// knows (a downgrade).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        self.timed(async {
            on_pool!(self, |p| {
                #[allow(unused_mut)]
                let mut tx = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => p.begin_with("BEGIN IMMEDIATE").await?,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => p.begin().await?,
                };
                #[cfg(feature = "postgres")]
                if matches!(self.pool, Pool::Postgres(_)) {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(MIGRATION_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(VERSION_TABLE).execute(&mut *tx).await?;
                let current: i64 = sqlx::query(CURRENT_VERSION)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                let steps = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => SQLITE_MIGRATIONS,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => POSTGRES_MIGRATIONS,
                };
                if current > steps.len() as i64 {
                    return Ok(Err(current));
                }
                for (i, stmts) in steps.iter().enumerate().skip(current.max(0) as usize) {
                    for s in *stmts {
                        sqlx::query(*s).execute(&mut *tx).await?;
                    }
                    sqlx::query(RECORD_VERSION)
                        .bind(i as i64 + 1)
                        .bind(unix_now())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Ok(()))
            })
        })
        .await?
        .map_err(|found| {
            StorageError::other(ConfigError::Setting {
                key: "storage",
                reason: format!(
                    "the database schema is version {found}, newer than this library's \
                     {SCHEMA_VERSION}: upgrade twisted-oauth2"
                ),
            })
        })
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

#[async_trait]
impl ClientStore for SqlStore {
    /// A client created through [`ClientRegistry`] (configured clients are looked up
    /// before this store).
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        let json = self
            .timed(async { opt_text!(self, "SELECT record FROM oauth2_clients WHERE id = $1", id) })
            .await?;
        match json {
            Some(j) => Ok(Some(Arc::new(decode_client(&j)?))),
            None => Ok(None),
        }
    }

    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        Some(self)
    }
}

#[async_trait]
impl ClientRegistry for SqlStore {
    async fn create_client(&self, client: &Client) -> Result<(), StorageError> {
        let json = encode_client(client)?;
        let n = self
            .timed(async {
                exec!(
                    self,
                    "INSERT INTO oauth2_clients (id, record, registered_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    client.id(),
                    json.as_str(),
                    client.registered_at(),
                    client.expires_at(),
                )
            })
            .await?;
        if n == 0 {
            return Err(StorageError::ClientExists);
        }
        Ok(())
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StorageError> {
        let json = encode_client(client)?;
        let n = self
            .timed(async {
                exec!(
                    self,
                    "UPDATE oauth2_clients SET record = $2, registered_at = $3, expires_at = $4 \
                     WHERE id = $1",
                    client.id(),
                    json.as_str(),
                    client.registered_at(),
                    client.expires_at(),
                )
            })
            .await?;
        Ok(n > 0)
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StorageError> {
        let n = self
            .timed(async { exec!(self, "DELETE FROM oauth2_clients WHERE id = $1", id) })
            .await?;
        Ok(n > 0)
    }

    /// Two statements on the `expires_at` index: the expired unused clients, then those
    /// beyond the newest `keep` (at most 1000 a call: each registration adds one).
    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let expired = self
            .timed(async {
                exec!(
                    self,
                    "DELETE FROM oauth2_clients WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    now
                )
            })
            .await?;
        let excess = self
            .timed(async {
                exec!(
                    self,
                    "DELETE FROM oauth2_clients WHERE id IN (SELECT id FROM oauth2_clients \
                     WHERE expires_at IS NOT NULL ORDER BY expires_at DESC, id DESC \
                     LIMIT 1000 OFFSET $1) AND expires_at IS NOT NULL",
                    keep
                )
            })
            .await?;
        Ok(expired + excess)
    }
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        let json = encode(record)?;
        self.timed(async {
            exec!(
                self,
                "INSERT INTO oauth2_codes (digest, grant_id, record, used, expires_at) \
                 VALUES ($1, $2, $3, FALSE, $4) ON CONFLICT (digest) DO UPDATE SET \
                 grant_id = excluded.grant_id, record = excluded.record, used = FALSE, \
                 expires_at = excluded.expires_at",
                &code.0[..],
                &grant_bytes(record.grant_id)[..],
                json.as_str(),
                record.expires_at,
            )
        })
        .await?;
        Ok(())
    }

    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError> {
        // A release between the conditional update and the read makes the code unused
        // again; then try again (bounded).
        for _ in 0..4 {
            let taken = self
                .timed(async {
                    opt_text!(
                        self,
                        "UPDATE oauth2_codes SET used = TRUE WHERE digest = $1 AND used = FALSE \
                         RETURNING record",
                        &code.0[..],
                    )
                })
                .await?;
            if let Some(json) = taken {
                return Ok(CodeTake::Taken(decode(&json)?));
            }
            let row = self
                .timed(async {
                    on_pool!(self, |p| {
                        sqlx::query("SELECT record, used FROM oauth2_codes WHERE digest = $1")
                            .bind(&code.0[..])
                            .fetch_optional(p)
                            .await?
                            .map(|r| -> Result<(String, bool), sqlx::Error> {
                                Ok((r.try_get(0)?, r.try_get(1)?))
                            })
                            .transpose()
                    })
                })
                .await?;
            match row {
                None => return Ok(CodeTake::Unknown),
                Some((json, true)) => return Ok(CodeTake::Replayed(decode(&json)?)),
                Some((_, false)) => continue,
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "authorization code contended; retry",
        )))
    }

    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError> {
        self.timed(async {
            exec!(
                self,
                "UPDATE oauth2_codes SET used = FALSE WHERE digest = $1",
                &code.0[..]
            )
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl AccessTokenStore for SqlStore {
    async fn access_grant_tombstone(&self, grant: GrantId) -> Result<Option<i64>, StorageError> {
        let g = grant_bytes(grant);
        self.timed(async {
            on_pool!(self, |p| {
                sqlx::query(
                    "SELECT expires_at FROM oauth2_grant_tombstones \
                     WHERE grant_id = $1 AND kind = 'access'",
                )
                .bind(&g[..])
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get::<i64, usize>(0))
                .transpose()
            })
        })
        .await
    }

    async fn put_access(
        &self,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.put_token(Kind::Access, token, record).await
    }

    async fn access(&self, token: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "SELECT record FROM oauth2_access_tokens WHERE digest = $1",
                    &token.0[..]
                )
            })
            .await?;
        row.map(|j| decode(&j)).transpose()
    }

    async fn revoke_access(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<TokenRecord>, StorageError> {
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "DELETE FROM oauth2_access_tokens WHERE digest = $1 RETURNING record",
                    &token.0[..]
                )
            })
            .await?;
        row.map(|j| decode(&j)).transpose()
    }

    async fn revoke_access_grant(&self, grant: GrantId, until: i64) -> Result<u64, StorageError> {
        self.revoke_grant(Kind::Access, grant, until).await
    }

    async fn revoke_access_client(&self, client_id: &str, until: i64) -> Result<u64, StorageError> {
        self.revoke_client(Kind::Access, client_id, until).await
    }
}

impl SqlStore {
    /// Runs `PUT_ACCESS` or `PUT_REFRESH` (SQLite) or `oauth2_put_token` (PostgreSQL);
    /// [`StorageError::GrantRevoked`] if the grant is tombstoned. On PostgreSQL the insert
    /// runs under the grant's shared advisory lock, so it cannot interleave with a
    /// revocation of the grant.
    async fn put_token(
        &self,
        kind: Kind,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let g = grant_bytes(record.grant_id);
        let n = self
            .timed(async {
                match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(p) => sqlx::query(kind.put())
                        .bind(&token.0[..])
                        .bind(&g[..])
                        .bind(json.as_str())
                        .bind(record.expires_at)
                        .bind(&*record.client_id)
                        .execute(p)
                        .await
                        .map(|r| r.rows_affected()),
                    // One call of `oauth2_put_token` (schema version 4): the shared lock,
                    // the tombstone check and the insert in one statement.
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(p) => {
                        sqlx::query("SELECT oauth2_put_token($1, $2, $3, $4, $5, $6, $7)")
                            .bind(kind.name())
                            .bind(&token.0[..])
                            .bind(&g[..])
                            .bind(json.as_str())
                            .bind(record.expires_at)
                            .bind(GRANT_LOCK_CLASS)
                            .bind(grant_lock_key(record.grant_id))
                            .fetch_one(p)
                            .await?
                            .try_get::<i32, usize>(0)
                            .map(|n| n as u64)
                    }
                }
            })
            .await?;
        if n == 0 {
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    /// Tombstones `grant` for `kind` until `until` and deletes its tokens of that kind, in
    /// one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: under the grant's exclusive
    /// advisory lock, which waits for the puts and rotations in flight to commit, so the
    /// `DELETE` sees their rows).
    async fn revoke_grant(
        &self,
        kind: Kind,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        let g = grant_bytes(grant);
        self.timed(async {
            on_pool!(self, |p| {
                #[allow(unused_mut)]
                let mut tx = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => p.begin_with("BEGIN IMMEDIATE").await?,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => p.begin().await?,
                };
                #[cfg(feature = "postgres")]
                if matches!(self.pool, Pool::Postgres(_)) {
                    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                        .bind(GRANT_LOCK_CLASS)
                        .bind(grant_lock_key(grant))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(PUT_TOMBSTONE)
                    .bind(&g[..])
                    .bind(kind.name())
                    .bind(until)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(kind.delete_grant())
                    .bind(&g[..])
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n)
            })
        })
        .await
    }

    /// Tombstones `client` for `kind` until `until` and deletes its tokens of that kind, in
    /// one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: under the client's exclusive
    /// advisory lock, which waits for the puts and rotations of the client in flight).
    async fn revoke_client(
        &self,
        kind: Kind,
        client: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        self.timed(async {
            on_pool!(self, |p| {
                #[allow(unused_mut)]
                let mut tx = match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(_) => p.begin_with("BEGIN IMMEDIATE").await?,
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(_) => p.begin().await?,
                };
                #[cfg(feature = "postgres")]
                if matches!(self.pool, Pool::Postgres(_)) {
                    sqlx::query("SELECT pg_advisory_xact_lock($1, oauth2_client_lock_key($2))")
                        .bind(CLIENT_LOCK_CLASS)
                        .bind(client)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(PUT_CLIENT_TOMBSTONE)
                    .bind(client)
                    .bind(kind.name())
                    .bind(until)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(kind.delete_client())
                    .bind(client)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n)
            })
        })
        .await
    }
}

impl SqlStore {
    /// A rotation, strict (`window` `None`) or with a reuse interval.
    async fn rotate(
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
            .timed(async {
                on_pool!(self, |p| {
                    sqlx::query(
                        "SELECT record, rotated FROM oauth2_refresh_tokens WHERE digest = $1",
                    )
                    .bind(&token.0[..])
                    .fetch_optional(p)
                    .await?
                    .map(|r| -> Result<(String, bool), sqlx::Error> {
                        Ok((r.try_get(0)?, r.try_get(1)?))
                    })
                    .transpose()
                })
            })
            .await?;
        Ok(match row {
            None => RefreshState::Unknown,
            Some((json, true)) => RefreshState::Rotated(decode(&json)?),
            Some((json, false)) => RefreshState::Active(decode(&json)?),
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
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "DELETE FROM oauth2_refresh_tokens WHERE digest = $1 RETURNING record",
                    &token.0[..]
                )
            })
            .await?;
        row.map(|j| decode(&j)).transpose()
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

#[async_trait]
impl PendingStore for SqlStore {
    async fn put_pending(
        &self,
        handle: &TokenDigest,
        record: &PendingRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        self.timed(async {
            exec!(
                self,
                "INSERT INTO oauth2_pending (digest, record, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (digest) DO UPDATE SET record = excluded.record, \
                 expires_at = excluded.expires_at",
                &handle.0[..],
                json.as_str(),
                record.expires_at,
            )
        })
        .await?;
        Ok(())
    }

    async fn pending(&self, handle: &TokenDigest) -> Result<Option<PendingRecord>, StorageError> {
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "SELECT record FROM oauth2_pending WHERE digest = $1",
                    &handle.0[..]
                )
            })
            .await?;
        row.map(|j| decode(&j)).transpose()
    }

    async fn take_pending(
        &self,
        handle: &TokenDigest,
    ) -> Result<Option<PendingRecord>, StorageError> {
        let row = self
            .timed(async {
                opt_text!(
                    self,
                    "DELETE FROM oauth2_pending WHERE digest = $1 RETURNING record",
                    &handle.0[..]
                )
            })
            .await?;
        row.map(|j| decode(&j)).transpose()
    }
}

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
        ] {
            total += self.timed(async { exec!(self, sql, now) }).await?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_unavailable() {
        assert!(transient_code("08006"));
        assert!(transient_code("57P01"));
        assert!(transient_code("40001"));
        assert!(transient_code("5")); // SQLITE_BUSY
        assert!(transient_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!transient_code("23505"));
        assert!(!transient_code("19")); // SQLITE_CONSTRAINT
    }

    /// A SQLite database at schema version `version` (its first migrations applied and
    /// recorded) holding one access token of `grant`: path, URL, token, record, and the
    /// open pool.
    #[cfg(feature = "sqlite")]
    async fn old_sqlite_database(
        tag: &str,
        version: usize,
        grant: GrantId,
    ) -> (
        std::path::PathBuf,
        String,
        TokenDigest,
        TokenRecord,
        sqlx::SqlitePool,
    ) {
        use std::str::FromStr;

        use crate::scope::Scope;
        let path = std::env::temp_dir().join(format!(
            "twisted-oauth2-test-{tag}-{:016x}.db",
            rand::random::<u64>()
        ));
        let url = format!("sqlite://{}", path.display());
        let token = TokenDigest(rand::random());
        let record = TokenRecord::new(
            "c",
            Scope::from_tokens(["a"]).unwrap(),
            grant,
            unix_now(),
            unix_now() + 3600,
        );
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query(VERSION_TABLE).execute(&pool).await.unwrap();
        for (i, step) in SQLITE_MIGRATIONS[..version].iter().enumerate() {
            for stmt in *step {
                sqlx::query(*stmt).execute(&pool).await.unwrap();
            }
            sqlx::query(RECORD_VERSION)
                .bind(i as i64 + 1)
                .bind(unix_now())
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO oauth2_access_tokens (digest, grant_id, record, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.0[..])
        .bind(&grant_bytes(grant)[..])
        .bind(encode(&record).unwrap())
        .bind(record.expires_at)
        .execute(&pool)
        .await
        .unwrap();
        (path, url, token, record, pool)
    }

    /// A database written by the version-1 schema (before grant tombstones) is upgraded
    /// in place at connect: its tokens stay, and revocations now leave tombstones.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_1_sqlite_database_upgrades_and_keeps_its_tokens() {
        let grant = GrantId::random();
        let (path, url, token, record, pool) = old_sqlite_database("upgrade", 1, grant).await;
        pool.close().await;
        let store = SqlStore::connect(&url).await.unwrap();
        let version: i64 = on_pool!(store, |p| sqlx::query(CURRENT_VERSION)
            .fetch_one(p)
            .await
            .unwrap()
            .try_get(0)
            .unwrap());
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(store.access(&token).await.unwrap(), Some(record.clone()));
        let n = store
            .revoke_access_grant(grant, unix_now() + 60)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let again = store.put_access(&token, &record).await;
        assert!(
            matches!(again, Err(StorageError::GrantRevoked)),
            "{again:?}"
        );
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// A database at schema version 2 (before `oauth2_clients`) is upgraded at connect: its
    /// tokens and tombstones stay, and clients can be created; connecting again changes
    /// nothing.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_2_sqlite_database_upgrades_to_writable_clients_and_keeps_its_tokens() {
        let (grant, revoked) = (GrantId::random(), GrantId::random());
        let (path, url, token, record, pool) = old_sqlite_database("upgrade2", 2, grant).await;
        {
            sqlx::query(PUT_TOMBSTONE)
                .bind(&grant_bytes(revoked)[..])
                .bind("access")
                .bind(unix_now() + 3600)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        for _ in 0..2 {
            let store = SqlStore::connect(&url).await.unwrap();
            let version: i64 = on_pool!(store, |p| sqlx::query(CURRENT_VERSION)
                .fetch_one(p)
                .await
                .unwrap()
                .try_get(0)
                .unwrap());
            assert_eq!(version, SCHEMA_VERSION);
            assert_eq!(store.access(&token).await.unwrap(), Some(record.clone()));
            let refused = store
                .put_access(
                    &TokenDigest(rand::random()),
                    &TokenRecord {
                        grant_id: revoked,
                        ..record.clone()
                    },
                )
                .await;
            assert!(
                matches!(refused, Err(StorageError::GrantRevoked)),
                "{refused:?}"
            );
            let client = Client::builder(format!("c-{:x}", rand::random::<u32>()))
                .grant_type("refresh_token")
                .build()
                .unwrap();
            store.create_client(&client).await.unwrap();
            assert!(store.client(client.id()).await.unwrap().is_some());
            store.close().await;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// A database at schema version 4 (before client revocation) is upgraded at connect:
    /// its tokens get their client id from their records, so revoking the client finds
    /// them, and the client is then refused new tokens.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_4_sqlite_database_upgrades_and_its_tokens_are_revocable_by_client() {
        let grant = GrantId::random();
        let (path, url, token, record, pool) = old_sqlite_database("upgrade4", 4, grant).await;
        pool.close().await;
        let store = SqlStore::connect(&url).await.unwrap();
        assert_eq!(store.access(&token).await.unwrap(), Some(record.clone()));
        let n = store
            .revoke_access_client(&record.client_id, unix_now() + 60)
            .await
            .unwrap();
        assert_eq!(n, 1, "the old token is found by its client");
        assert_eq!(store.access(&token).await.unwrap(), None);
        let again = store
            .put_access(&TokenDigest(rand::random()), &record)
            .await;
        assert!(
            matches!(again, Err(StorageError::GrantRevoked)),
            "{again:?}"
        );
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// A version-5 database (before rotation times) holds an active refresh token and
    /// one rotated out by a version-5 rotation: after the upgrade the rotated one is never
    /// inside a reuse window (its rotation time is unknown), and the active one rotates
    /// with a window and may then be used again inside it, once past it not.
    async fn version_5_refresh_tokens_after_the_upgrade(
        store: &SqlStore,
        active: TokenDigest,
        rotated: TokenDigest,
        grant: GrantId,
    ) {
        let rec = |ttl: i64| {
            TokenRecord::new(
                "c",
                crate::scope::Scope::from_tokens(["a"]).unwrap(),
                grant,
                unix_now(),
                unix_now() + ttl,
            )
        };
        let now = unix_now();
        let w = ReuseWindow::new(now, 60);
        let r = store
            .rotate_refresh_within(&rotated, &TokenDigest(rand::random()), &rec(60), w)
            .await;
        assert_eq!(r.unwrap(), Rotation::AlreadyRotated, "rotated by version 5");
        let r = store
            .rotate_refresh_within(&active, &TokenDigest(rand::random()), &rec(60), w)
            .await;
        assert_eq!(r.unwrap(), Rotation::Rotated);
        let again = TokenDigest(rand::random());
        let r = store
            .rotate_refresh_within(&active, &again, &rec(60), ReuseWindow::new(now + 30, 60))
            .await;
        assert_eq!(r.unwrap(), Rotation::WithinReuseInterval);
        assert!(matches!(
            store.refresh(&again).await.unwrap(),
            RefreshState::Active(_)
        ));
        let r = store
            .rotate_refresh_within(
                &active,
                &TokenDigest(rand::random()),
                &rec(60),
                ReuseWindow::new(now + 60, 60),
            )
            .await;
        assert_eq!(r.unwrap(), Rotation::AlreadyRotated, "past the window");
    }

    /// The refresh-token rows of a version-5 schema: `active` and `rotated` of `grant`.
    const V5_REFRESH_ROW: &str = "INSERT INTO oauth2_refresh_tokens \
         (digest, grant_id, record, rotated, expires_at, client_id) VALUES ($1, $2, $3, $4, $5, 'c')";

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_version_5_sqlite_database_upgrades_and_its_rotated_tokens_are_outside_any_reuse_window(
    ) {
        let grant = GrantId::random();
        let (path, url, _, record, pool) = old_sqlite_database("upgrade5", 5, grant).await;
        let (active, rotated) = (TokenDigest(rand::random()), TokenDigest(rand::random()));
        for (d, flag) in [(active, false), (rotated, true)] {
            sqlx::query(V5_REFRESH_ROW)
                .bind(&d.0[..])
                .bind(&grant_bytes(grant)[..])
                .bind(encode(&record).unwrap())
                .bind(flag)
                .bind(record.expires_at)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        let store = SqlStore::connect(&url).await.unwrap();
        version_5_refresh_tokens_after_the_upgrade(&store, active, rotated, grant).await;
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// As for SQLite, on PostgreSQL (`TWISTED_OAUTH2_TEST_POSTGRES`; a schema of its own,
    /// dropped at the end): the version-6 functions replace the version-5 ones.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_version_5_postgres_database_upgrades_and_its_rotated_tokens_are_outside_any_reuse_window(
    ) {
        let Ok(base) = std::env::var("TWISTED_OAUTH2_TEST_POSTGRES") else {
            eprintln!("skipping: TWISTED_OAUTH2_TEST_POSTGRES is unset");
            return;
        };
        let schema = format!("upgrade5_{:016x}", rand::random::<u64>());
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(VERSION_TABLE).execute(&pool).await.unwrap();
        for (i, step) in POSTGRES_MIGRATIONS[..5].iter().enumerate() {
            for stmt in *step {
                sqlx::query(*stmt).execute(&pool).await.unwrap();
            }
            sqlx::query(RECORD_VERSION)
                .bind(i as i64 + 1)
                .bind(unix_now())
                .execute(&pool)
                .await
                .unwrap();
        }
        let grant = GrantId::random();
        let record = TokenRecord::new(
            "c",
            crate::scope::Scope::from_tokens(["a"]).unwrap(),
            grant,
            unix_now(),
            unix_now() + 3600,
        );
        let (active, rotated) = (TokenDigest(rand::random()), TokenDigest(rand::random()));
        for (d, flag) in [(active, false), (rotated, true)] {
            sqlx::query(V5_REFRESH_ROW)
                .bind(&d.0[..])
                .bind(&grant_bytes(grant)[..])
                .bind(encode(&record).unwrap())
                .bind(flag)
                .bind(record.expires_at)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        let store = SqlStore::connect(&url).await.unwrap();
        version_5_refresh_tokens_after_the_upgrade(&store, active, rotated, grant).await;
        store.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .unwrap();
    }

    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn migrations_have_the_same_shape() {
        assert_eq!(SQLITE_MIGRATIONS.len(), POSTGRES_MIGRATIONS.len());
        assert_eq!(SQLITE_MIGRATIONS.len() as i64, SCHEMA_VERSION);
        for (i, (a, b)) in SQLITE_MIGRATIONS
            .iter()
            .zip(POSTGRES_MIGRATIONS)
            .enumerate()
        {
            // Version 4 is PostgreSQL's write functions only.
            if i == 3 {
                assert!(a.is_empty() && b.len() == 2);
                continue;
            }
            // Version 5: PostgreSQL also has the client lock key and the two functions.
            if i == 4 {
                assert_eq!(a.len() + 3, b.len());
                continue;
            }
            // Version 6: PostgreSQL also has the two rotation functions.
            if i == 5 {
                assert_eq!(a.len() + 2, b.len());
                continue;
            }
            assert_eq!(a.len(), b.len());
        }
    }
}
