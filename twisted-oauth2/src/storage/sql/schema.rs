//! The schema: its migrations, one entry per version, and [`SqlStore::migrate`].

use super::*;

/// The schema, one entry per version; each entry's statements run in one transaction.
/// Never edit a released entry: append a new version.
#[cfg(feature = "sqlite")]
pub(super) const SQLITE_MIGRATIONS: &[&[&str]] = &[
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
    &[
        // Version 8: signing keys of self-contained tokens (`sealed_private` is the
        // AEAD-sealed private key, never plaintext) and the jti denylist.
        "CREATE TABLE IF NOT EXISTS oauth2_signing_keys (kid TEXT PRIMARY KEY NOT NULL, \
     alg TEXT NOT NULL, generation BIGINT NOT NULL, public_jwk TEXT NOT NULL, \
     sealed_private BLOB NOT NULL, created_at BIGINT NOT NULL, signs_from BIGINT NOT NULL, \
     signs_until BIGINT NOT NULL, published_until BIGINT NOT NULL, UNIQUE (alg, generation))",
        "CREATE INDEX IF NOT EXISTS oauth2_signing_keys_published \
     ON oauth2_signing_keys (published_until)",
        "CREATE TABLE IF NOT EXISTS oauth2_revoked_jtis (jti TEXT PRIMARY KEY NOT NULL, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_revoked_jtis_expires \
     ON oauth2_revoked_jtis (expires_at)",
    ],
];

/// The PostgreSQL twin of `SQLITE_MIGRATIONS` (`BYTEA` instead of `BLOB`).
#[cfg(feature = "postgres")]
pub(super) const POSTGRES_MIGRATIONS: &[&[&str]] = &[
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
    &[
        // Version 8: signing keys and the jti denylist, as on SQLite.
        "CREATE TABLE IF NOT EXISTS oauth2_signing_keys (kid TEXT PRIMARY KEY, \
     alg TEXT NOT NULL, generation BIGINT NOT NULL, public_jwk TEXT NOT NULL, \
     sealed_private BYTEA NOT NULL, created_at BIGINT NOT NULL, signs_from BIGINT NOT NULL, \
     signs_until BIGINT NOT NULL, published_until BIGINT NOT NULL, UNIQUE (alg, generation))",
        "CREATE INDEX IF NOT EXISTS oauth2_signing_keys_published \
     ON oauth2_signing_keys (published_until)",
        "CREATE TABLE IF NOT EXISTS oauth2_revoked_jtis (jti TEXT PRIMARY KEY, \
     expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS oauth2_revoked_jtis_expires \
     ON oauth2_revoked_jtis (expires_at)",
    ],
];

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 8;

pub(super) const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS oauth2_schema_version \
     (version BIGINT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)";
pub(super) const CURRENT_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM oauth2_schema_version";
pub(super) const RECORD_VERSION: &str =
    "INSERT INTO oauth2_schema_version (version, applied_at) VALUES ($1, $2)";
/// A fixed key for `pg_advisory_xact_lock`, so concurrent instances migrate one at a time.
#[cfg(feature = "postgres")]
pub(super) const MIGRATION_LOCK: i64 = 0x7477_6f61_7574_6832; // "twoauth2"

impl SqlStore {
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
}
