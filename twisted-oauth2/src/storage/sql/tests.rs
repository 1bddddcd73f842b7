//! Unit tests of the SQL store: error mapping, schema upgrades from every earlier version.

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
async fn a_version_5_sqlite_database_upgrades_and_its_rotated_tokens_are_outside_any_reuse_window()
{
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

/// What a version-7 database (before signing keys and the jti denylist) holds after the
/// upgrade to version 8: its token, and working key and denylist tables.
async fn version_7_database_after_the_upgrade(
    store: &SqlStore,
    token: &TokenDigest,
    record: &TokenRecord,
) {
    use crate::storage::{RevokedJtiStore, SigningKeyRecord, SigningKeyStore};
    let version: i64 = on_pool!(store, |p| sqlx::query(CURRENT_VERSION)
        .fetch_one(p)
        .await
        .unwrap()
        .try_get(0)
        .unwrap());
    assert_eq!(version, 8);
    assert_eq!(store.access(token).await.unwrap(), Some(record.clone()));
    let t = unix_now();
    let key = SigningKeyRecord::new(
        "k8",
        "EdDSA",
        1,
        "{}",
        vec![0, 255, 7],
        t,
        t,
        t + 60,
        t + 120,
    );
    assert_eq!(store.create_key_if_absent(key.clone()).await.unwrap(), key);
    assert_eq!(store.published_keys(t).await.unwrap(), vec![key]);
    store.revoke_jti("j8", t + 60).await.unwrap();
    assert!(store.is_jti_revoked("j8", t).await.unwrap());
}

/// A version-7 SQLite database upgrades to version 8 at connect and keeps its tokens.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_version_7_sqlite_database_upgrades_to_signing_keys_and_keeps_its_tokens() {
    let grant = GrantId::random();
    let (path, url, token, record, pool) = old_sqlite_database("upgrade7", 7, grant).await;
    pool.close().await;
    let store = SqlStore::connect(&url).await.unwrap();
    version_7_database_after_the_upgrade(&store, &token, &record).await;
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// As for SQLite, on PostgreSQL (`TWISTED_OAUTH2_TEST_POSTGRES`; a schema of its own,
/// dropped at the end).
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_version_7_postgres_database_upgrades_to_signing_keys_and_keeps_its_tokens() {
    let Ok(base) = std::env::var("TWISTED_OAUTH2_TEST_POSTGRES") else {
        eprintln!("skipping: TWISTED_OAUTH2_TEST_POSTGRES is unset");
        return;
    };
    let schema = format!("upgrade7_{:016x}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(VERSION_TABLE).execute(&pool).await.unwrap();
    for (i, step) in POSTGRES_MIGRATIONS[..7].iter().enumerate() {
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
    let token = TokenDigest(rand::random());
    sqlx::query(
        "INSERT INTO oauth2_access_tokens (digest, grant_id, client_id, record, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.0[..])
    .bind(&grant_bytes(grant)[..])
    .bind("c")
    .bind(encode(&record).unwrap())
    .bind(record.expires_at)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = SqlStore::connect(&url).await.unwrap();
    version_7_database_after_the_upgrade(&store, &token, &record).await;
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
