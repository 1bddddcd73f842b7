//! What the access and refresh token stores share: the guarded puts, grant and client
//! revocations with their tombstones.

use super::*;

/// The first key of the two-key advisory locks taken per grant (a key space apart from the
/// one-key `MIGRATION_LOCK`); the second key is the grant id folded to 32 bits.
#[cfg(feature = "postgres")]
pub(super) const GRANT_LOCK_CLASS: i32 = 0x746f_6132; // "toa2"
/// The first key of the advisory locks taken per client (the second is the schema's
/// `oauth2_client_lock_key` of the id). Written out in the version-5 functions.
#[cfg(feature = "postgres")]
pub(super) const CLIENT_LOCK_CLASS: i32 = 0x746f_6133; // "toa3", 1953456435

/// Stores a token unless its grant is tombstoned: 0 rows affected means refused (SQLite;
/// PostgreSQL calls `oauth2_put_token`).
#[cfg(feature = "sqlite")]
pub(super) const PUT_ACCESS: &str =
    "INSERT INTO oauth2_access_tokens (digest, grant_id, record, expires_at, client_id) \
     SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM oauth2_grant_tombstones \
     WHERE grant_id = $2 AND kind = 'access') AND NOT EXISTS (SELECT 1 \
     FROM oauth2_client_tombstones WHERE client_id = $5 AND kind = 'access') \
     ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
     record = excluded.record, expires_at = excluded.expires_at, \
     client_id = excluded.client_id";
#[cfg(feature = "sqlite")]
pub(super) const PUT_REFRESH: &str =
    "INSERT INTO oauth2_refresh_tokens (digest, grant_id, record, rotated, expires_at, \
     client_id) SELECT $1, $2, $3, FALSE, $4, $5 WHERE NOT EXISTS (SELECT 1 \
     FROM oauth2_grant_tombstones WHERE grant_id = $2 AND kind = 'refresh') \
     AND NOT EXISTS (SELECT 1 FROM oauth2_client_tombstones WHERE client_id = $5 \
     AND kind = 'refresh') \
     ON CONFLICT (digest) DO UPDATE SET grant_id = excluded.grant_id, \
     record = excluded.record, rotated = FALSE, expires_at = excluded.expires_at, \
     client_id = excluded.client_id";
/// Lays (or extends) a tombstone: `$1` grant, `$2` kind, `$3` until.
pub(super) const PUT_TOMBSTONE: &str =
    "INSERT INTO oauth2_grant_tombstones (grant_id, kind, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (grant_id, kind) DO UPDATE SET expires_at = \
     CASE WHEN excluded.expires_at > oauth2_grant_tombstones.expires_at \
     THEN excluded.expires_at ELSE oauth2_grant_tombstones.expires_at END";
/// Lays (or extends) a client tombstone: `$1` client id, `$2` kind, `$3` until.
pub(super) const PUT_CLIENT_TOMBSTONE: &str =
    "INSERT INTO oauth2_client_tombstones (client_id, kind, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (client_id, kind) DO UPDATE SET expires_at = \
     CASE WHEN excluded.expires_at > oauth2_client_tombstones.expires_at \
     THEN excluded.expires_at ELSE oauth2_client_tombstones.expires_at END";
/// The new token of a SQLite rotation.
#[cfg(feature = "sqlite")]
pub(super) const PUT_ROTATED: &str = "INSERT INTO oauth2_refresh_tokens \
     (digest, grant_id, record, rotated, expires_at, client_id) \
     VALUES ($1, $2, $3, FALSE, $4, $5) ON CONFLICT (digest) DO UPDATE SET \
     grant_id = excluded.grant_id, record = excluded.record, \
     rotated = FALSE, expires_at = excluded.expires_at, client_id = excluded.client_id";
/// Whether the grant `$1` or the client `$3` has a tombstone for kind `$2`.
#[cfg(feature = "sqlite")]
pub(super) const IS_TOMBSTONED: &str =
    "SELECT 1 FROM oauth2_grant_tombstones WHERE grant_id = $1 AND kind = $2 \
     UNION ALL SELECT 1 FROM oauth2_client_tombstones WHERE client_id = $3 AND kind = $2";

/// What a token kind's grant revocation needs.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Access,
    Refresh,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Refresh => "refresh",
        }
    }

    /// The SQLite put statement of this kind.
    #[cfg(feature = "sqlite")]
    pub(super) fn put(self) -> &'static str {
        match self {
            Kind::Access => PUT_ACCESS,
            Kind::Refresh => PUT_REFRESH,
        }
    }

    pub(super) fn delete_grant(self) -> &'static str {
        match self {
            Kind::Access => "DELETE FROM oauth2_access_tokens WHERE grant_id = $1",
            Kind::Refresh => "DELETE FROM oauth2_refresh_tokens WHERE grant_id = $1",
        }
    }

    pub(super) fn delete_client(self) -> &'static str {
        match self {
            Kind::Access => "DELETE FROM oauth2_access_tokens WHERE client_id = $1",
            Kind::Refresh => "DELETE FROM oauth2_refresh_tokens WHERE client_id = $1",
        }
    }
}

/// The second key of a grant's advisory lock.
#[cfg(feature = "postgres")]
pub(super) fn grant_lock_key(g: GrantId) -> i32 {
    let v = g.0 as u64 ^ (g.0 >> 64) as u64;
    (v ^ (v >> 32)) as u32 as i32
}

/// The outcome of a rotation transaction.
pub(super) enum RotateTx {
    Rotated,
    Within,
    NotActive,
    Revoked,
}

impl SqlStore {
    /// Runs `PUT_ACCESS` or `PUT_REFRESH` (SQLite) or `oauth2_put_token` (PostgreSQL);
    /// [`StorageError::GrantRevoked`] if the grant is tombstoned. On PostgreSQL the insert
    /// runs under the grant's shared advisory lock, so it cannot interleave with a
    /// revocation of the grant.
    pub(super) async fn put_token(
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
    pub(super) async fn revoke_grant(
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
    pub(super) async fn revoke_client(
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
