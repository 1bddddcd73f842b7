//! Load-test server for `bench/run.sh`, `bench/stores.sh` and `bench/soak.sh`: the
//! library's endpoints and `#[oauth]` routes beside the same routes without the library,
//! in one binary, with request logging off.
//!
//! Usage: `twisted-oauth2-bench [port] [storage]` (127.0.0.1, default 8300; storage
//! `memory` by default, or the `BENCH_STORAGE` variable): `memory`, `sqlite://file.db`,
//! `postgres://user@host:5432/db` or `redis://host:6379`.
//!
//! - Client `bench` / `bench-secret` may use `client_credentials`, `authorization_code`
//!   (redirect URI `http://127.0.0.1:9/cb`) and `refresh_token` with scopes `read write`.
//!   The authorization endpoint consents at once: its hook redirects to
//!   `/bench/approve`, which grants the pending request to the user `bench-user` (a load
//!   driver follows two redirects to get a code; nothing here is for production).
//! - Ceilings: `GET /open` and `POST /form` (the routes without any store), and on a
//!   durable store `POST /ceiling/token` (the form of `/form` plus one `INSERT` of a
//!   token-sized row, or one Redis `SET`) and `GET /ceiling/protected` (one `SELECT` by
//!   primary key, or one Redis `GET`), through the same driver as the library's store
//!   (sqlx, redis) but without the library.
//! - `GET /bench/stats`: the rows (SQL) or keys (Redis) the library's store holds, and
//!   the server's RSS, as one line of `name=value` pairs.
//! - PostgreSQL: the library's tables and the ceiling's table live in the schema
//!   `bench_oauth2_<port>`, Redis keys under `bench-oauth2-<port>:` and
//!   `bench-ceiling-<port>:` (so runs on different ports do not collide); both are
//!   emptied at launch and at shutdown. A SQLite file is used as given (the scripts start
//!   from a fresh file).
//! - `BENCH_ACCESS_TTL`, `BENCH_REFRESH_TTL`, `BENCH_CODE_TTL` (seconds) and
//!   `BENCH_PURGE_SECS` shorten lifetimes and the purge interval (the soak sets them).
//! - `BENCH_OAUTH2_TOML`: TOML merged over the configuration (top-level `[oauth2...]`
//!   tables), e.g. to turn on a setting the bench does not set itself.
//!   JWT access tokens (RFC 9068) for the bench client: `[oauth2] access_token_format =
//!   "jwt"` with `[oauth2.signing_keys] enabled = true` (generated keys; debug sealing).

use std::str::FromStr;
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::form::{Form, FromForm};
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{Redirect, Responder};
use rocket::{get, post, routes, State};
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::oauth;
use twisted_oauth2::rocket::{AuthorizeReply, Consent, OAuth2, OnAuthenticate, PendingRequests};
use twisted_oauth2::OAuthError;

/// The port this server listens on: part of the names below.
static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

fn port() -> u16 {
    PORT.get().copied().unwrap_or(0)
}

/// The PostgreSQL schema of the library's tables and the ceiling table.
fn pg_schema() -> String {
    format!("bench_oauth2_{}", port())
}

/// The Redis key prefix of the library's store.
fn redis_prefix() -> String {
    format!("bench-oauth2-{}:", port())
}

/// The Redis key prefix of the ceiling route.
fn ceiling_prefix() -> String {
    format!("bench-ceiling-{}:", port())
}

/// Drops this server's PostgreSQL schema (the name is made of a fixed word and a port).
async fn drop_schema(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", pg_schema());
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    Ok(())
}
/// The ceiling's write: one row of the shape of the library's access-token table.
const CEILING_INSERT: &str = "INSERT INTO bench_ceiling_tokens (digest, grant_id, record, \
     expires_at) VALUES ($1, $2, $3, $4)";
/// The ceiling's read: one row by primary key.
const CEILING_SELECT: &str = "SELECT record FROM bench_ceiling_tokens WHERE digest = $1";
/// The ceiling table: the library's access-token table, with its indexes (`{blob}`:
/// the byte-string type).
const CEILING_DDL: [&str; 4] = [
    "DROP TABLE IF EXISTS bench_ceiling_tokens",
    "CREATE TABLE bench_ceiling_tokens (digest {blob} PRIMARY KEY NOT NULL, \
     grant_id {blob} NOT NULL, record TEXT NOT NULL, expires_at BIGINT NOT NULL)",
    "CREATE INDEX bench_ceiling_tokens_grant ON bench_ceiling_tokens (grant_id)",
    "CREATE INDEX bench_ceiling_tokens_expires ON bench_ceiling_tokens (expires_at)",
];

/// `GET /protected`: needs a token with scope `read`.
#[oauth(scope = "read")]
#[get("/protected")]
fn protected() -> &'static str {
    "protected resource\n"
}

/// `GET /open`: the same handler without protection (the ceiling for `/protected`).
#[get("/open")]
fn open() -> &'static str {
    "protected resource\n"
}

#[derive(FromForm)]
struct TokenLikeForm<'r> {
    grant_type: &'r str,
    scope: Option<&'r str>,
}

/// A bare form-POST route of similar shape to the token endpoint (its ceiling): parses the
/// form, answers a small JSON body with no-store.
#[derive(Responder)]
#[response(content_type = "json")]
struct Json(String, Header<'static>);

fn token_like(value: &str, scope: &str) -> Json {
    Json(
        format!(
            "{{\"access_token\":\"{value}\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"{scope}\"}}"
        ),
        Header::new("Cache-Control", "no-store"),
    )
}

#[post("/form", data = "<form>")]
fn form(form: Form<TokenLikeForm<'_>>) -> Json {
    token_like(form.grant_type, form.scope.unwrap_or(""))
}

/// The ceiling's connection to the store the library runs on.
enum Ceiling {
    /// The memory store: its ceilings are `/open` and `/form`.
    Memory,
    /// A writer pool (`BENCH_SQLITE_WRITERS`, default 4: the library's pool size, and
    /// faster here than one writer) and a reader pool of 4 on the same file.
    Sqlite {
        writer: sqlx::SqlitePool,
        reader: sqlx::SqlitePool,
    },
    /// One pool.
    Postgres(sqlx::PgPool),
    /// One multiplexed, auto-reconnecting connection (as the library's Redis store).
    Redis(redis::aio::ConnectionManager),
}

/// The row the ceiling's validation route reads.
const KNOWN_DIGEST: [u8; 32] = [7; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A JSON record of the size the library stores per access token.
fn record_json(grant: &[u8; 16], now: i64) -> String {
    format!(
        "{{\"client_id\":\"bench\",\"scope\":\"read\",\"grant_id\":\"{}\",\"issued_at\":{now},\
         \"expires_at\":{},\"subject\":null,\"extra\":null}}",
        hex(grant),
        now + 3600
    )
}

/// Maps a driver error to a 503 (never shown to the client beyond the status).
fn unavailable<E: std::fmt::Display>(e: E) -> Status {
    eprintln!("ceiling store error: {e}");
    Status::ServiceUnavailable
}

/// `POST /ceiling/token`: `/form` plus one write of a fresh token-sized row.
#[post("/ceiling/token", data = "<form>")]
async fn ceiling_token(
    form: Form<TokenLikeForm<'_>>,
    ceiling: &State<Ceiling>,
) -> Result<Json, Status> {
    let digest: [u8; 32] = rand::random();
    let grant: [u8; 16] = rand::random();
    let now = unix_now();
    let record = record_json(&grant, now);
    match ceiling.inner() {
        Ceiling::Memory => return Err(Status::NotFound),
        Ceiling::Sqlite { writer, .. } => {
            sqlx::query(CEILING_INSERT)
                .bind(&digest[..])
                .bind(&grant[..])
                .bind(record.as_str())
                .bind(now + 3600)
                .execute(writer)
                .await
                .map_err(unavailable)?;
        }
        Ceiling::Postgres(pool) => {
            sqlx::query(CEILING_INSERT)
                .bind(&digest[..])
                .bind(&grant[..])
                .bind(record.as_str())
                .bind(now + 3600)
                .execute(pool)
                .await
                .map_err(unavailable)?;
        }
        Ceiling::Redis(conn) => {
            let mut c = conn.clone();
            let () = redis::cmd("SET")
                .arg(format!("{}{}", ceiling_prefix(), hex(&digest)))
                .arg(record.as_str())
                .arg("EX")
                .arg(3600)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(token_like(form.grant_type, form.scope.unwrap_or("")))
}

/// `GET /ceiling/protected`: one read of a known row by its key.
#[get("/ceiling/protected")]
async fn ceiling_protected(ceiling: &State<Ceiling>) -> Result<&'static str, Status> {
    use sqlx::Row;
    let found = match ceiling.inner() {
        Ceiling::Memory => return Err(Status::NotFound),
        Ceiling::Sqlite { reader, .. } => sqlx::query(CEILING_SELECT)
            .bind(&KNOWN_DIGEST[..])
            .fetch_optional(reader)
            .await
            .map_err(unavailable)?
            .map(|r| r.try_get::<String, usize>(0).is_ok()),
        Ceiling::Postgres(pool) => sqlx::query(CEILING_SELECT)
            .bind(&KNOWN_DIGEST[..])
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?
            .map(|r| r.try_get::<String, usize>(0).is_ok()),
        Ceiling::Redis(conn) => {
            let mut c = conn.clone();
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("{}{}", ceiling_prefix(), hex(&KNOWN_DIGEST)))
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            v.map(|_| true)
        }
    };
    match found {
        Some(true) => Ok("protected resource\n"),
        _ => Err(Status::InternalServerError),
    }
}

/// Deletes every Redis key under `prefix` (SCAN + UNLINK in batches).
async fn redis_clear(conn: &mut redis::aio::ConnectionManager, prefix: &str) -> u64 {
    redis_scan(conn, prefix, true).await
}

/// Counts (or deletes) the Redis keys under `prefix`.
async fn redis_scan(conn: &mut redis::aio::ConnectionManager, prefix: &str, delete: bool) -> u64 {
    let mut cursor: u64 = 0;
    let mut total = 0;
    loop {
        let r: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await;
        let Ok((next, keys)) = r else { return total };
        total += keys.len() as u64;
        if delete && !keys.is_empty() {
            let _: redis::RedisResult<u64> =
                redis::cmd("UNLINK").arg(&keys).query_async(conn).await;
        }
        if next == 0 {
            return total;
        }
        cursor = next;
    }
}

/// Creates the ceiling table afresh (on `pool`) and writes the row the validation route
/// reads.
async fn ceiling_table<DB>(pool: &sqlx::Pool<DB>, blob: &str, record: &str) -> Result<(), String>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for ddl in CEILING_DDL {
        // The only substitution is the column type, one of two literals.
        let ddl = ddl.replace("{blob}", blob);
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    sqlx::query(CEILING_INSERT)
        .bind(&KNOWN_DIGEST[..])
        .bind(&[1u8; 16][..])
        .bind(record)
        .bind(unix_now() + 3600)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Opens the ceiling's own connection and prepares its table (or keys) with the known row;
/// returns it with the storage URL the library gets.
async fn open_ceiling(storage: &str) -> Result<(Ceiling, String), String> {
    let now = unix_now();
    let grant = [1u8; 16];
    let record = record_json(&grant, now);
    if storage.starts_with("sqlite:") {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
        let opts = SqliteConnectOptions::from_str(storage)
            .map_err(|e| e.to_string())?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(5))
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let writers: u32 = std::env::var("BENCH_SQLITE_WRITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4);
        let writer = SqlitePoolOptions::new()
            .max_connections(writers.max(1))
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await
            .map_err(|e| e.to_string())?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(|e| e.to_string())?;
        ceiling_table(&writer, "BLOB", &record).await?;
        return Ok((Ceiling::Sqlite { writer, reader }, storage.to_owned()));
    }
    if storage.starts_with("postgres:") || storage.starts_with("postgresql:") {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        let sep = if storage.contains('?') { '&' } else { '?' };
        let url = format!("{storage}{sep}options=-c%20search_path%3D{}", pg_schema());
        let admin = sqlx::PgPool::connect(storage)
            .await
            .map_err(|e| e.to_string())?;
        drop_schema(&admin).await.map_err(|e| e.to_string())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {}",
            pg_schema()
        )))
        .execute(&admin)
        .await
        .map_err(|e| e.to_string())?;
        admin.close().await;
        let opts = PgConnectOptions::from_str(&url).map_err(|e| e.to_string())?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(|e| e.to_string())?;
        ceiling_table(&pool, "BYTEA", &record).await?;
        return Ok((Ceiling::Postgres(pool), url));
    }
    if storage.starts_with("redis") {
        let client = redis::Client::open(storage).map_err(|e| e.to_string())?;
        let mut conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| e.to_string())?;
        redis_clear(&mut conn, &redis_prefix()).await;
        redis_clear(&mut conn, &ceiling_prefix()).await;
        let () = redis::cmd("SET")
            .arg(format!("{}{}", ceiling_prefix(), hex(&KNOWN_DIGEST)))
            .arg(record.as_str())
            .arg("EX")
            .arg(24 * 3600)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let sep = if storage.contains('?') { '&' } else { '?' };
        let url = format!("{storage}{sep}key_prefix={}", redis_prefix());
        return Ok((Ceiling::Redis(conn), url));
    }
    Ok((Ceiling::Memory, storage.to_owned()))
}

/// Empties what the bench wrote to a shared store (called at shutdown).
async fn clean_up(ceiling: &Ceiling) {
    match ceiling {
        Ceiling::Postgres(pool) => {
            let _ = drop_schema(pool).await;
        }
        Ceiling::Redis(conn) => {
            let mut c = conn.clone();
            redis_clear(&mut c, &redis_prefix()).await;
            redis_clear(&mut c, &ceiling_prefix()).await;
        }
        Ceiling::Sqlite { .. } | Ceiling::Memory => {}
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The library's tables whose rows `/bench/stats` counts, and the query that counts them.
const TABLES: [(&str, &str); 5] = [
    ("oauth2_codes", "SELECT COUNT(*) FROM oauth2_codes"),
    (
        "oauth2_access_tokens",
        "SELECT COUNT(*) FROM oauth2_access_tokens",
    ),
    (
        "oauth2_refresh_tokens",
        "SELECT COUNT(*) FROM oauth2_refresh_tokens",
    ),
    ("oauth2_pending", "SELECT COUNT(*) FROM oauth2_pending"),
    (
        "oauth2_grant_tombstones",
        "SELECT COUNT(*) FROM oauth2_grant_tombstones",
    ),
];

/// `GET /bench/stats`: `rss_kib=.. <table>=<rows> ..` (SQL), `keys=..` (Redis).
#[get("/bench/stats")]
async fn stats(ceiling: &State<Ceiling>) -> String {
    use sqlx::Row;
    let mut out = format!("rss_kib={}", rss_kib());
    match ceiling.inner() {
        Ceiling::Memory => {}
        Ceiling::Sqlite { reader, .. } => {
            for (t, count) in TABLES {
                let n: i64 = match sqlx::query(count).fetch_one(reader).await {
                    Ok(r) => r.try_get(0).unwrap_or(-1),
                    Err(_) => -1,
                };
                out.push_str(&format!(" {t}={n}"));
            }
        }
        Ceiling::Postgres(pool) => {
            for (t, count) in TABLES {
                let n: i64 = match sqlx::query(count).fetch_one(pool).await {
                    Ok(r) => r.try_get(0).unwrap_or(-1),
                    Err(_) => -1,
                };
                out.push_str(&format!(" {t}={n}"));
            }
        }
        Ceiling::Redis(conn) => {
            let mut c = conn.clone();
            let n = redis_scan(&mut c, &redis_prefix(), false).await;
            out.push_str(&format!(" keys={n}"));
        }
    }
    out.push('\n');
    out
}

/// Consents at once: sends the browser to `/bench/approve` with the request's handle and
/// CSRF token.
struct AutoConsent;

#[rocket::async_trait]
impl OnAuthenticate for AutoConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        // Both values are base64url: safe in a query as they are.
        Ok(Consent::new(Redirect::to(format!(
            "/bench/approve?request_id={}&csrf_token={}",
            p.request_id, p.csrf_token
        ))))
    }
}

/// `GET /bench/approve`: grants the pending request to `bench-user`.
#[get("/bench/approve?<request_id>&<csrf_token>")]
async fn approve(
    request_id: &str,
    csrf_token: &str,
    pending: PendingRequests<'_>,
) -> AuthorizeReply {
    pending
        .grant(request_id, csrf_token, "bench-user", None, None)
        .await
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[rocket::launch]
async fn launch() -> _ {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().and_then(|p| p.parse().ok()).unwrap_or(8300);
    let _ = PORT.set(port);
    let storage = args
        .get(1)
        .cloned()
        .or_else(|| std::env::var("BENCH_STORAGE").ok())
        .unwrap_or_else(|| "memory".into());
    let (ceiling, library_url) = match open_ceiling(&storage).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twisted-oauth2-bench: cannot open the ceiling's store: {e}");
            std::process::exit(2);
        }
    };
    let client = ClientConfig {
        id: "bench".into(),
        secret: Some("bench-secret".into()),
        grant_types: vec![
            "client_credentials".into(),
            "authorization_code".into(),
            "refresh_token".into(),
        ],
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        scopes: Some(vec!["read".into(), "write".into()]),
        ..Default::default()
    };
    let defaults = ServerConfig::default();
    let cfg = ServerConfig {
        issuer: format!("http://127.0.0.1:{port}"),
        allow_insecure_request_debug: true,
        clients: vec![client],
        storage: library_url,
        access_token_lifetime: env_u64("BENCH_ACCESS_TTL", defaults.access_token_lifetime),
        refresh_token_lifetime: env_u64("BENCH_REFRESH_TTL", defaults.refresh_token_lifetime),
        code_lifetime: env_u64("BENCH_CODE_TTL", defaults.code_lifetime),
        ..Default::default()
    };
    // A release build needs a secret_key (the binding cookie is sealed with it): the bench
    // makes a random one.
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let figment = rocket::Config::figment()
        .merge(("secret_key", key))
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge((
            "log_level",
            std::env::var("ROCKET_LOG_LEVEL").unwrap_or_else(|_| "off".into()),
        ))
        .merge(("oauth2", cfg));
    let figment = match std::env::var("BENCH_OAUTH2_TOML") {
        Ok(toml) => {
            use rocket::figment::providers::Format;
            // Global: above the `oauth2` value merged above (also global), whatever the
            // selected profile.
            figment.merge(
                rocket::figment::providers::Toml::string(&toml)
                    .profile(rocket::figment::Profile::Global),
            )
        }
        Err(_) => figment,
    };
    let purge = Duration::from_secs(env_u64("BENCH_PURGE_SECS", 60).max(1));
    rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .on_authenticate(AutoConsent)
                .purge_interval(purge),
        )
        .attach(AdHoc::on_shutdown("bench clean-up", |rocket| {
            Box::pin(async move {
                if let Some(c) = rocket.state::<Ceiling>() {
                    clean_up(c).await;
                }
            })
        }))
        .manage(ceiling)
        .mount(
            "/",
            routes![
                protected,
                open,
                form,
                ceiling_token,
                ceiling_protected,
                stats,
                approve
            ],
        )
}
