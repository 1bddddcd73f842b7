//! [`SigningKeyStore`] and [`RevokedJtiStore`] on SQL (schema version 8): the tables
//! `oauth2_signing_keys` (`kid` primary key, `(alg, generation)` unique, the private key
//! only as its sealed bytes) and `oauth2_revoked_jtis` (`jti` primary key, purged by
//! `expires_at`).

use super::*;
use crate::storage::keys::{check_jti, KidTaken, MAX_JTI_LEN};
use crate::storage::{RevokedJtiStore, SigningKeyRecord, SigningKeyStore};

/// Inserts a key unless its kid or its `(alg, generation)` is taken.
const INSERT_KEY: &str = "INSERT INTO oauth2_signing_keys (kid, alg, generation, public_jwk, \
     sealed_private, created_at, signs_from, signs_until, published_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";

/// `(signs_from, kid)` with kids compared bytewise, as Rust orders them (PostgreSQL's
/// default collation may not be).
#[cfg(feature = "sqlite")]
const PUBLISHED_SQLITE: &str = "SELECT kid, alg, generation, public_jwk, sealed_private, \
     created_at, signs_from, signs_until, published_until FROM oauth2_signing_keys \
     WHERE published_until > $1 ORDER BY signs_from, kid";
#[cfg(feature = "postgres")]
const PUBLISHED_POSTGRES: &str = "SELECT kid, alg, generation, public_jwk, sealed_private, \
     created_at, signs_from, signs_until, published_until FROM oauth2_signing_keys \
     WHERE published_until > $1 ORDER BY signs_from, kid COLLATE \"C\"";

/// A key row (the columns of `INSERT_KEY`, in order).
type KeyRow = (String, String, i64, String, Vec<u8>, i64, i64, i64, i64);

fn key_of(r: KeyRow) -> SigningKeyRecord {
    SigningKeyRecord::new(r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8)
}

/// `fetch_all` or `fetch_optional` of key rows.
macro_rules! key_rows {
    ($self:expr, $fetch:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_pool!($self, |p| {
            sqlx::query_as::<_, KeyRow>($sql)
                $(.bind($bind))*
                .$fetch(p)
                .await
        })
    };
}

impl SqlStore {
    async fn key_in_slot(
        &self,
        alg: &str,
        generation: i64,
    ) -> Result<Option<SigningKeyRecord>, StorageError> {
        let sql = "SELECT kid, alg, generation, public_jwk, sealed_private, created_at, \
                   signs_from, signs_until, published_until FROM oauth2_signing_keys \
                   WHERE alg = $1 AND generation = $2";
        let row = self
            .timed(async { key_rows!(self, fetch_optional, sql, alg, generation) })
            .await?;
        Ok(row.map(key_of))
    }
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    /// `INSERT .. ON CONFLICT DO NOTHING`, then the row of the slot: the unique index
    /// makes a concurrent insert wait for the first and do nothing, so every caller reads
    /// the one that committed.
    async fn create_key_if_absent(
        &self,
        key: SigningKeyRecord,
    ) -> Result<SigningKeyRecord, StorageError> {
        // A purge between the insert and the read (of a key retired at creation) makes
        // the slot free again: try again, bounded.
        for _ in 0..3 {
            self.timed(async {
                exec!(
                    self,
                    INSERT_KEY,
                    key.kid.as_str(),
                    key.alg.as_str(),
                    key.generation,
                    key.public_jwk.as_str(),
                    &key.sealed_private[..],
                    key.created_at,
                    key.signs_from,
                    key.signs_until,
                    key.published_until,
                )
            })
            .await?;
            if let Some(winner) = self.key_in_slot(&key.alg, key.generation).await? {
                return Ok(winner);
            }
            let kid_taken = self
                .timed(async {
                    on_pool!(self, |p| {
                        sqlx::query("SELECT 1 FROM oauth2_signing_keys WHERE kid = $1")
                            .bind(key.kid.as_str())
                            .fetch_optional(p)
                            .await
                            .map(|r| r.is_some())
                    })
                })
                .await?;
            if kid_taken {
                return Err(StorageError::other(KidTaken));
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "signing key slot contended; retry",
        )))
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let rows = self
            .timed(async {
                match &self.pool {
                    #[cfg(feature = "sqlite")]
                    Pool::Sqlite(p) => {
                        sqlx::query_as::<_, KeyRow>(PUBLISHED_SQLITE)
                            .bind(now)
                            .fetch_all(p)
                            .await
                    }
                    #[cfg(feature = "postgres")]
                    Pool::Postgres(p) => {
                        sqlx::query_as::<_, KeyRow>(PUBLISHED_POSTGRES)
                            .bind(now)
                            .fetch_all(p)
                            .await
                    }
                }
            })
            .await?;
        Ok(rows.into_iter().map(key_of).collect())
    }

    async fn purge_keys(&self, now: i64) -> Result<u64, StorageError> {
        self.timed(async {
            exec!(
                self,
                "DELETE FROM oauth2_signing_keys WHERE published_until <= $1",
                now
            )
        })
        .await
    }
}

#[async_trait]
impl RevokedJtiStore for SqlStore {
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError> {
        check_jti(jti)?;
        self.timed(async {
            exec!(
                self,
                "INSERT INTO oauth2_revoked_jtis (jti, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (jti) DO UPDATE SET expires_at = \
                 CASE WHEN excluded.expires_at > oauth2_revoked_jtis.expires_at \
                 THEN excluded.expires_at ELSE oauth2_revoked_jtis.expires_at END",
                jti,
                exp,
            )
        })
        .await?;
        Ok(())
    }

    /// A `jti` over [`MAX_JTI_LEN`] bytes cannot have been recorded: `false`, no query.
    async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
        if jti.len() > MAX_JTI_LEN {
            return Ok(false);
        }
        self.timed(async {
            on_pool!(self, |p| {
                sqlx::query("SELECT 1 FROM oauth2_revoked_jtis WHERE jti = $1 AND expires_at > $2")
                    .bind(jti)
                    .bind(now)
                    .fetch_optional(p)
                    .await
                    .map(|r| r.is_some())
            })
        })
        .await
    }

    async fn revoked_jtis(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.timed(async {
            on_pool!(self, |p| {
                sqlx::query_as::<_, (String, i64)>(
                    "SELECT jti, expires_at FROM oauth2_revoked_jtis WHERE expires_at > $1 \
                     ORDER BY expires_at DESC LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(p)
                .await
            })
        })
        .await
    }

    async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError> {
        self.timed(async {
            exec!(
                self,
                "DELETE FROM oauth2_revoked_jtis WHERE expires_at <= $1",
                now
            )
        })
        .await
    }
}
