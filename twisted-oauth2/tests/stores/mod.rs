//! Backends for the store tests: a per-run SQLite file, a per-run PostgreSQL schema and a
//! per-run Redis key prefix, so parallel and repeated runs never collide. PostgreSQL and
//! Redis come from `TWISTED_OAUTH2_TEST_POSTGRES` / `TWISTED_OAUTH2_TEST_REDIS`; when unset
//! the tests print a notice and pass.
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use twisted_oauth2::storage::Stores;

/// A three-node Redis Cluster started by the test (`TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1`).
pub mod cluster;

pub const POSTGRES_ENV: &str = "TWISTED_OAUTH2_TEST_POSTGRES";
pub const REDIS_ENV: &str = "TWISTED_OAUTH2_TEST_REDIS";

fn unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `<unix seconds>_<random>`: unique per test process.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{}_{:08x}", unix(), rand::random::<u32>()))
}

fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            // Written to the stderr handle, not with `eprintln!`, so the test harness's
            // output capture does not hide the notice.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipping: {name} is unset, so this backend is not tested"
            );
            None
        }
    }
}

/// A fresh SQLite file URL for this process (old files of earlier runs are removed).
pub fn sqlite_url(tag: &str) -> String {
    let dir = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old && name.to_string_lossy().starts_with("twisted-oauth2-test-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path = dir.join(format!("twisted-oauth2-test-{tag}-{}.db", run_id()));
    format!("sqlite://{}", path.display())
}

pub async fn sqlite() -> Stores {
    match twisted_oauth2::storage::connect(&sqlite_url("kit")).await {
        Ok(s) => s,
        Err(e) => panic!("sqlite store: {e:?}"),
    }
}

/// The PostgreSQL URL of this run's own schema (created on first use; schemas of runs
/// older than an hour are dropped), or `None` (with a notice) when the variable is unset.
#[cfg(feature = "postgres")]
pub async fn postgres_url() -> Option<String> {
    postgres_url_tagged("").await
}

/// [`postgres_url`] with a schema of its own for `tag` (lower-case letters), for a test that
/// must see no other test's rows.
#[cfg(feature = "postgres")]
pub async fn postgres_url_tagged(tag: &str) -> Option<String> {
    use sqlx::{AssertSqlSafe, Connection, Row};

    let base = env(POSTGRES_ENV)?;
    assert!(
        tag.bytes().all(|b| b.is_ascii_lowercase()),
        "schema tag {tag}"
    );
    let schema = if tag.is_empty() {
        format!("tk_{}", run_id())
    } else {
        format!("tk_{}_{tag}", run_id())
    };
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"),
    };
    let mut created = false;
    for _ in 0..5 {
        // Concurrent `CREATE SCHEMA IF NOT EXISTS` may collide; the loser retries.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        if sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .is_ok()
        {
            created = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(created, "cannot create schema {schema}");
    let old = sqlx::query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tk\\_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    for row in old {
        let name: String = row.try_get(0).unwrap_or_default();
        let stamp: u64 = name
            .trim_start_matches("tk_")
            .split('_')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        if stamp.saturating_add(3600) < unix()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let _ = conn.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<Stores> {
    let url = postgres_url().await?;
    match twisted_oauth2::storage::connect(&url).await {
        Ok(s) => Some(s),
        Err(e) => panic!("postgres store: {e:?}"),
    }
}

/// The Redis URL with this run's key prefix, or `None` (with a notice) when unset.
#[cfg(feature = "redis")]
pub fn redis_url(tag: &str) -> Option<String> {
    let base = env(REDIS_ENV)?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base}{sep}key_prefix=twisted-oauth2-test:{}:{tag}:",
        run_id()
    ))
}

#[cfg(feature = "redis")]
pub async fn redis() -> Option<Stores> {
    let url = redis_url("kit")?;
    match twisted_oauth2::storage::connect(&url).await {
        Ok(s) => Some(s),
        Err(e) => panic!("redis store: {e:?}"),
    }
}
