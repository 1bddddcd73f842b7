//! The validation cache across instances, over real HTTP: two Rocket servers on loopback
//! ports share one PostgreSQL database (and, separately, one Redis), each with the
//! validation cache on and its revocation channel opened from the `storage` URL.
//!
//! - A token validated on B (so B has it cached) and revoked on A through
//!   `/oauth2/revoke` is refused by B within 250 ms at p99 over 200 trials (the issue's
//!   acceptance bound); the distribution is printed.
//! - When B's notification connection is killed, B empties its cache and stops serving from
//!   it: a cached token revoked in the store meanwhile (no notification can reach B) is
//!   refused, and once the subscription is back B serves from its cache again.
//!
//! The cache's staleness bound is set far above the test's duration, so only a
//! notification or the channel's loss can explain a refusal. Tests run one at a time (the
//! kill test must not disturb the others' listeners).
//!
//! The trials run on a three-node Redis Cluster the test starts, too
//! (`TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1`).
//!
//! Needs `TWISTED_OAUTH2_TEST_POSTGRES` / `TWISTED_OAUTH2_TEST_REDIS` (skips with a notice
//! otherwise): `cargo test -p twisted-oauth2 --features postgres,redis --test validation_cache`

#![cfg_attr(
    not(all(feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

mod stores;

mod live;

use live::{free_port, http, launch, loopback_figment, Served};

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::{get, routes};
use twisted_oauth2::config::{ClientConfig, ServerConfig, ValidationCacheConfig};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::storage::Stores;
use twisted_oauth2::token::TokenDigest;
use twisted_oauth2::TokenInfo;

const TRIALS: usize = 200;
/// The issue's acceptance bound on the p99 of revocation reaching the other instance.
const P99_BOUND: Duration = Duration::from_millis(250);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[get("/me")]
fn me(info: TokenInfo) -> String {
    info.client_id.to_string()
}

fn config(storage: &str) -> ServerConfig {
    config_with(storage, false)
}

/// [`config`], revoking the whole grant on an access token's revocation when `grant_wide`.
fn config_with(storage: &str, grant_wide: bool) -> ServerConfig {
    let c = ClientConfig {
        id: "app".into(),
        secret: Some("app-secret".into()),
        grant_types: vec!["client_credentials".into()],
        scopes: Some(vec!["a".into()]),
        ..Default::default()
    };
    let mut cfg = ServerConfig {
        issuer: "https://as.example".into(),
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        storage: storage.into(),
        validation_cache: ValidationCacheConfig {
            enabled: true,
            max_entries: 10_000,
            max_staleness: 3600,
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.access_token_lifetime = 1800;
    cfg.revoke_grant_on_access_token_revocation = grant_wide;
    cfg.clients = vec![c];
    cfg
}

async fn serve(storage: &str) -> Served {
    serve_with(config(storage)).await
}

/// The consent hook open registration needs at launch (these tests never authorize).
struct NoConsent;

#[rocket::async_trait]
impl twisted_oauth2::rocket::OnAuthenticate for NoConsent {
    async fn on_authenticate(
        &self,
        _req: &rocket::Request<'_>,
        _p: twisted_oauth2::endpoint::authorize::PendingAuthorization,
    ) -> Result<twisted_oauth2::rocket::Consent, twisted_oauth2::OAuthError> {
        Err(twisted_oauth2::OAuthError::with_description(
            twisted_oauth2::error::ErrorCode::AccessDenied,
            "no consent in this test",
        ))
    }
}

async fn serve_with(cfg: ServerConfig) -> Served {
    // Installed before any Rocket, which keeps it (see `launch_line`).
    capture();
    let port = free_port();
    let mut fairing = OAuth2::fairing();
    if cfg.registration.enabled {
        fairing = fairing.on_authenticate(NoConsent);
    }
    let figment = loopback_figment(port).merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![me]);
    launch(rocket, port, "").await
}

fn basic() -> String {
    format!("Basic {}", STANDARD.encode("app:app-secret"))
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn token(port: u16) -> String {
    let (st, body) = http(
        port,
        "POST",
        "/oauth2/token",
        &[("Authorization", &basic()), FORM],
        "grant_type=client_credentials&scope=a",
    )
    .await;
    assert_eq!(st, 200, "token: {body}");
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => v["access_token"].as_str().unwrap_or_default().to_owned(),
        Err(_) => panic!("token: not JSON: {body:?}"),
    }
}

async fn me_status(port: u16, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    let (st, _) = http(port, "GET", "/me", &[("Authorization", &bearer)], "").await;
    assert!(st == 200 || st == 401, "protected route answered {st}");
    st
}

async fn revoke(port: u16, token: &str) {
    let (st, body) = http(
        port,
        "POST",
        "/oauth2/revoke",
        &[("Authorization", &basic()), FORM],
        &format!("token={token}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(st, 200, "revoke: {body}");
}

/// Polls B until it refuses `token`; the time from `start`, or `None` after `limit`.
async fn until_refused(
    port: u16,
    token: &str,
    start: Instant,
    limit: Duration,
) -> Option<Duration> {
    loop {
        if me_status(port, token).await == 401 {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Revokes in the store directly, past every cache: no notification is sent.
async fn revoke_behind_the_caches(direct: &Stores, token: &str) {
    if let Err(e) = direct.access.revoke_access(&TokenDigest::of(token)).await {
        panic!("direct revocation: {e}");
    }
}

/// Whether B serves `token` from its cache: validated twice, revoked behind the caches,
/// and still accepted (only a cache can answer for a token the store no longer has).
async fn served_from_cache(b: u16, a: u16, direct: &Stores) -> bool {
    let t = token(a).await;
    assert_eq!(me_status(b, &t).await, 200);
    assert_eq!(me_status(b, &t).await, 200);
    revoke_behind_the_caches(direct, &t).await;
    me_status(b, &t).await == 200
}

/// Waits (up to 10 s) until both instances have confirmed their subscriptions.
async fn wait_until_serving(a: u16, b: u16, direct: &Stores) {
    let start = Instant::now();
    while !(served_from_cache(b, a, direct).await && served_from_cache(a, b, direct).await) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the caches did not start serving within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    let line = format!(
        "{name}: revocation on A refused on B, {} trials: min {:.2} ms, p50 {:.2} ms, p90 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
        samples.len(),
        ms(samples[0]),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(samples[samples.len() - 1]),
        mean
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
    at(0.99)
}

async fn revocation_reaches_the_other_instance(name: &str, url: &str) {
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("{name}: direct store: {e}"),
    };
    let (a, b) = (serve(url).await, serve(url).await);
    wait_until_serving(a.port, b.port, &direct).await;
    let mut samples = Vec::with_capacity(TRIALS);
    for trial in 0..TRIALS {
        let t = token(a.port).await;
        // Validated on B twice: the first fills B's cache, the second is a hit.
        assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
        assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
        let start = Instant::now();
        revoke(a.port, &t).await;
        match until_refused(b.port, &t, start, Duration::from_secs(5)).await {
            Some(d) => samples.push(d),
            None => panic!("{name} trial {trial}: B still accepts the token 5 s after revocation"),
        }
        assert_eq!(me_status(a.port, &t).await, 401, "{name} trial {trial}: A");
    }
    let p99 = report(name, samples);
    assert!(
        p99 <= P99_BOUND,
        "{name}: p99 {p99:?} exceeds the acceptance bound {P99_BOUND:?}"
    );
}

/// A grant revoked on A reaches B's cache too: two tokens of one grant (written to the store
/// directly) are cached on B; revoking one on A with `revoke_grant_on_access_token_revocation`
/// revokes the grant, and B must then refuse the other, which only the grant's notification
/// can evict from B's cache.
async fn grant_revocation_reaches_the_other_instance(name: &str, url: &str) {
    use twisted_oauth2::storage::{GrantId, TokenRecord};
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("{name}: direct store: {e}"),
    };
    let (a, b) = (
        serve_with(config_with(url, true)).await,
        serve_with(config_with(url, true)).await,
    );
    wait_until_serving(a.port, b.port, &direct).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for trial in 0..20 {
        let grant = GrantId::random();
        let scope = twisted_oauth2::Scope::from_tokens(["a"]).unwrap_or_default();
        let record = TokenRecord::new("app", scope, grant, now, now + 1800);
        let (first, second) = (
            format!("first-{:032x}", rand::random::<u128>()),
            format!("second-{:032x}", rand::random::<u128>()),
        );
        for t in [&first, &second] {
            if let Err(e) = direct.access.put_access(&TokenDigest::of(t), &record).await {
                panic!("{name}: put_access: {e}");
            }
            assert_eq!(me_status(b.port, t).await, 200, "{name} trial {trial}");
            assert_eq!(me_status(b.port, t).await, 200, "{name} trial {trial}");
        }
        let start = Instant::now();
        revoke(a.port, &first).await;
        match direct.access.access(&TokenDigest::of(&second)).await {
            Ok(None) => {}
            other => panic!("{name}: the store still has the grant's other token: {other:?}"),
        }
        assert!(
            until_refused(b.port, &second, start, Duration::from_secs(5))
                .await
                .is_some(),
            "{name} trial {trial}: B still accepts a token of the grant revoked on A"
        );
    }
}

/// A client deleted on A (RFC 7592 `DELETE` of its registration) reaches B's cache: a token
/// of the registered client (written to the store directly) is cached on B, and B has seen
/// the client exist; after the deletion on A, B must refuse it, which only the client's
/// notification can explain (the staleness bound is an hour, and B remembers the client).
async fn client_deletion_reaches_the_other_instance(name: &str, url: &str) {
    use twisted_oauth2::storage::{GrantId, TokenRecord};
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("{name}: direct store: {e}"),
    };
    let cfg = || {
        let mut c = config(url);
        c.registration.enabled = true;
        c
    };
    let (a, b) = (serve_with(cfg()).await, serve_with(cfg()).await);
    wait_until_serving(a.port, b.port, &direct).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for trial in 0..5 {
        let (st, body) = http(
            a.port,
            "POST",
            "/oauth2/register",
            &[("Content-Type", "application/json")],
            r#"{"redirect_uris":["http://127.0.0.1/cb"]}"#,
        )
        .await;
        assert_eq!(st, 201, "{name}: register: {body}");
        let v: serde_json::Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(_) => panic!("{name}: register: not JSON: {body:?}"),
        };
        let id = v["client_id"].as_str().unwrap_or_default().to_owned();
        let reg = v["registration_access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let scope = twisted_oauth2::Scope::from_tokens(["a"]).unwrap_or_default();
        let record = TokenRecord::new(id.as_str(), scope, GrantId::random(), now, now + 1800);
        let t = format!("client-{:032x}", rand::random::<u128>());
        if let Err(e) = direct
            .access
            .put_access(&TokenDigest::of(&t), &record)
            .await
        {
            panic!("{name}: put_access: {e}");
        }
        assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
        assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
        let start = Instant::now();
        let bearer = format!("Bearer {reg}");
        let (st, body) = http(
            a.port,
            "DELETE",
            &format!("/oauth2/register/{id}"),
            &[("Authorization", &bearer)],
            "",
        )
        .await;
        assert_eq!(st, 204, "{name}: DELETE: {body}");
        assert!(
            until_refused(b.port, &t, start, Duration::from_secs(5))
                .await
                .is_some(),
            "{name} trial {trial}: B still accepts a token of the client deleted on A"
        );
    }
}

/// `kill` drops the notification connections; the caches must stop serving, refuse a
/// token revoked meanwhile, and serve again once resubscribed.
async fn a_dropped_channel_disables_the_cache<F, Fut>(name: &str, url: &str, kill: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("{name}: direct store: {e}"),
    };
    let (a, b) = (serve(url).await, serve(url).await);
    wait_until_serving(a.port, b.port, &direct).await;
    // Cached on B, then the channel goes.
    let cached = token(a.port).await;
    assert_eq!(me_status(b.port, &cached).await, 200);
    assert_eq!(me_status(b.port, &cached).await, 200);
    let killed = kill().await;
    assert!(
        killed >= 2,
        "{name}: killed {killed} notification connections, expected both"
    );
    let start = Instant::now();
    // Revoked while the channel is down: no notification can reach B.
    revoke_behind_the_caches(&direct, &cached).await;
    match until_refused(b.port, &cached, start, Duration::from_secs(3)).await {
        Some(d) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "{name}: B refused the token revoked while its channel was down after {:.1} ms",
                d.as_secs_f64() * 1000.0
            );
        }
        None => panic!("{name}: B served a token revoked while its notification channel was down"),
    }
    // And keeps refusing it (nothing stale comes back after the reconnect).
    for _ in 0..20 {
        assert_eq!(me_status(b.port, &cached).await, 401, "{name}");
    }
    // The subscription comes back by itself, and B serves from its cache again.
    wait_until_serving(a.port, b.port, &direct).await;
    let back = start.elapsed();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{name}: both caches serve again {:.0} ms after the kill",
        back.as_secs_f64() * 1000.0
    );
    // Revocations reach B again.
    let t = token(a.port).await;
    assert_eq!(me_status(b.port, &t).await, 200);
    let start = Instant::now();
    revoke(a.port, &t).await;
    assert!(
        until_refused(b.port, &t, start, Duration::from_secs(2))
            .await
            .is_some(),
        "{name}: after the reconnect a revocation on A does not reach B"
    );
}

#[cfg(feature = "postgres")]
async fn kill_pg_listeners(base: &str) -> u64 {
    use sqlx::{Connection, Row};
    let mut c = match sqlx::PgConnection::connect(base).await {
        Ok(c) => c,
        Err(e) => panic!("postgres: {e}"),
    };
    let sql = "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
               WHERE application_name = $1 AND query ILIKE 'LISTEN%'";
    let n: i64 = match sqlx::query(sql)
        .bind(twisted_oauth2::storage::cache::postgres::LISTENER_APPLICATION_NAME)
        .fetch_one(&mut c)
        .await
        .and_then(|r| r.try_get(0))
    {
        Ok(n) => n,
        Err(e) => panic!("pg_terminate_backend: {e}"),
    };
    let _ = c.close().await;
    n.max(0) as u64
}

#[cfg(feature = "redis")]
async fn kill_redis_subscribers(base: &str) -> u64 {
    let client = match redis::Client::open(base) {
        Ok(c) => c,
        Err(e) => panic!("redis: {e}"),
    };
    let mut c = match client.get_multiplexed_async_connection().await {
        Ok(c) => c,
        Err(e) => panic!("redis: {e}"),
    };
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("KILL").arg("TYPE").arg("pubsub");
    match cmd.query_async::<u64>(&mut c).await {
        Ok(n) => n,
        Err(e) => panic!("CLIENT KILL TYPE pubsub: {e}"),
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocation_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    revocation_reaches_the_other_instance("postgres", &url).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropped_listener_disables_the_cache() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let base = std::env::var(stores::POSTGRES_ENV).unwrap_or_default();
    a_dropped_channel_disables_the_cache("postgres", &url, || kill_pg_listeners(&base)).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_grant_revocation_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    grant_revocation_reaches_the_other_instance("postgres", &url).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_client_deletion_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    client_deletion_reaches_the_other_instance("postgres", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_client_deletion_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::redis_url("vcache-client") else {
        return;
    };
    client_deletion_reaches_the_other_instance("redis", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_grant_revocation_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::redis_url("vcache-grant") else {
        return;
    };
    grant_revocation_reaches_the_other_instance("redis", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revocation_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::redis_url("vcache") else {
        return;
    };
    revocation_reaches_the_other_instance("redis", &url).await;
}

/// On a three-node Redis Cluster started by the test (classic pub/sub reaches every node).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_revocation_reaches_the_other_instance() {
    let _serial = SERIAL.lock().await;
    let cluster = match tokio::task::spawn_blocking(stores::cluster::Cluster::start).await {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => panic!("cluster: {e}"),
    };
    let url = cluster.url(&format!("vcache:{}:", stores::run_id()));
    revocation_reaches_the_other_instance("redis cluster", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dropped_subscriber_disables_the_cache() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::redis_url("vcache-kill") else {
        return;
    };
    let base = std::env::var(stores::REDIS_ENV).unwrap_or_default();
    a_dropped_channel_disables_the_cache("redis", &url, || kill_redis_subscribers(&base)).await;
}

/// The library's log lines in this test binary. Installed before any Rocket is built
/// (Rocket keeps a logger installed before it), whichever test runs first.
struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("twisted_oauth2")
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{}", record.args()));
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static LOG: std::sync::OnceLock<&'static Capture> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(std::sync::Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

/// The `validation cache:` line of the launch log of a server on `cfg`.
async fn launch_line(cfg: ServerConfig) -> String {
    let lines = launch_log(cfg, OAuth2::fairing()).await;
    lines
        .iter()
        .flat_map(|l| l.lines())
        // The banner's own line; other tests' log lines ("twisted-oauth2: validation cache:
        // cannot SUBSCRIBE …") land in the same process-wide capture.
        .map(str::trim)
        .find(|l| l.starts_with("validation cache:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no validation cache line in the launch log: {lines:?}"))
}

/// The library's log lines while a server on `cfg` with `fairing` launches.
async fn launch_log(cfg: ServerConfig, fairing: OAuth2) -> Vec<String> {
    let c = capture();
    log::set_max_level(log::LevelFilter::Info);
    if let Ok(mut v) = c.0.lock() {
        v.clear();
    }
    let figment = rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", cfg));
    let client =
        rocket::local::asynchronous::Client::untracked(rocket::custom(figment).attach(fairing))
            .await;
    assert!(client.is_ok(), "the server did not launch");
    c.0.lock().map(|v| v.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_log_states_the_policy() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config("memory");
    cfg.validation_cache.enabled = false;
    assert_eq!(launch_line(cfg).await, "validation cache: off");
    let mut cfg = config("memory");
    cfg.validation_cache.max_entries = 500;
    cfg.validation_cache.max_staleness = 7;
    assert_eq!(
        launch_line(cfg).await,
        "validation cache: on, at most 500 tokens, re-read after 7 s, revocations via local \
         only (this process); not served while the channel is down"
    );
    // Stores given in code without a channel: local only, and a warning says so.
    let stores = Stores::from_backend(std::sync::Arc::new(
        twisted_oauth2::storage::memory::MemoryStore::new(),
    ));
    let log = launch_log(config("memory"), OAuth2::fairing().stores(stores, "mine")).await;
    assert!(
        log.iter()
            .any(|l| l.contains("evicts revoked tokens in this process only")),
        "{log:?}"
    );
    // A SQLite file is one machine's: local eviction only.
    #[cfg(feature = "sqlite")]
    {
        let line = launch_line(config(&stores::sqlite_url("vcache"))).await;
        assert!(line.contains("revocations via local only"), "{line}");
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = stores::postgres_url().await {
        let line = launch_line(config(&url)).await;
        assert!(
            line.contains("revocations via PostgreSQL LISTEN/NOTIFY"),
            "{line}"
        );
    }
    #[cfg(feature = "redis")]
    if let Some(url) = stores::redis_url("vcache-log") {
        let line = launch_line(config(&url)).await;
        assert!(line.contains("revocations via Redis pub/sub"), "{line}");
    }
}

/// `build_connected` opens the channel the `storage` URL calls for; stores given in code
/// get the channel given with them, or none (local only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_wires_the_channel_of_the_storage_url() {
    use twisted_oauth2::AuthorizationServer;
    let _serial = SERIAL.lock().await;
    let channel_of = |s: &AuthorizationServer| s.validation_cache().map(|p| p.channel());
    let built = |cfg: ServerConfig| async move {
        match AuthorizationServer::builder(cfg).build_connected().await {
            Ok(s) => s,
            Err(e) => panic!("build_connected: {e}"),
        }
    };
    let mut off = config("memory");
    off.validation_cache.enabled = false;
    assert_eq!(channel_of(&built(off).await), None);
    assert_eq!(
        channel_of(&built(config("memory")).await),
        Some("local only (this process)")
    );
    let mut bad = config("memory");
    bad.validation_cache.max_staleness = 0;
    match AuthorizationServer::builder(bad).build_connected().await {
        Err(e) => assert!(
            e.to_string().contains("validation_cache.max_staleness"),
            "{e}"
        ),
        Ok(_) => panic!("a zero staleness bound must be refused"),
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = stores::postgres_url().await {
        assert_eq!(
            channel_of(&built(config(&url)).await),
            Some("PostgreSQL LISTEN/NOTIFY")
        );
        // Stores given in code: the channel given with them.
        let stores = match twisted_oauth2::storage::connect(&url).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let channel = match twisted_oauth2::storage::cache::revocation_channel_for(&url).await {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let s = AuthorizationServer::builder(config(&url))
            .stores(stores.clone())
            .revocation_channel(channel)
            .build();
        assert_eq!(
            s.as_ref().ok().and_then(channel_of),
            Some("PostgreSQL LISTEN/NOTIFY")
        );
        let s = AuthorizationServer::builder(config(&url))
            .stores(stores)
            .build();
        assert_eq!(
            s.as_ref().ok().and_then(channel_of),
            Some("local only (this process)")
        );
    }
    #[cfg(feature = "redis")]
    if let Some(url) = stores::redis_url("vcache-build") {
        assert_eq!(
            channel_of(&built(config(&url)).await),
            Some("Redis pub/sub")
        );
    }
}

/// `stores` with its access store behind a validation cache on `channel` (the system clock).
#[cfg(feature = "testkit")]
fn cached(
    mut stores: Stores,
    channel: std::sync::Arc<dyn twisted_oauth2::storage::cache::RevocationChannel>,
) -> Stores {
    let config = ValidationCacheConfig {
        enabled: true,
        max_entries: 64,
        max_staleness: 3600,
        ..Default::default()
    };
    match twisted_oauth2::storage::cache::CachedAccessStore::new(
        stores.access.clone(),
        &config,
        channel,
        std::sync::Arc::new(twisted_oauth2::clock::SystemClock),
    ) {
        Ok(c) => stores.access = std::sync::Arc::new(c),
        Err(e) => panic!("cache: {e}"),
    }
    stores
}

/// The store test kit through the cache: the wrapper keeps the access-store contract
/// (revocations, tombstones, records round-tripping) on memory and on PostgreSQL with its
/// channel.
#[cfg(feature = "testkit")]
mod kit_memory_cached {
    async fn stores() -> twisted_oauth2::storage::Stores {
        let memory = twisted_oauth2::storage::Stores::from_backend(std::sync::Arc::new(
            twisted_oauth2::storage::memory::MemoryStore::new(),
        ));
        super::cached(
            memory,
            std::sync::Arc::new(twisted_oauth2::storage::cache::LocalOnly),
        )
    }
    twisted_oauth2::store_test_kit!(stores);
}

#[cfg(all(feature = "testkit", feature = "postgres"))]
mod kit_postgres_cached {
    async fn stores() -> Option<twisted_oauth2::storage::Stores> {
        let url = crate::stores::postgres_url().await?;
        let stores = match twisted_oauth2::storage::connect(&url).await {
            Ok(s) => s,
            Err(e) => panic!("postgres: {e}"),
        };
        let channel = match twisted_oauth2::storage::cache::revocation_channel_for(&url).await {
            Ok(c) => c,
            Err(e) => panic!("channel: {e}"),
        };
        Some(super::cached(stores, channel))
    }
    twisted_oauth2::store_test_kit!(stores);
}

/// JWT access tokens (RFC 9068, the `jwt` format) on two instances of one store: they agree
/// on one generated signing key, accept each other's tokens, and a `jti` revoked on A is
/// refused by B within the same 250 ms p99 bound (the denylist reaches B's memory through
/// the storage URL's revocation channel).
#[cfg(feature = "jwt")]
mod jwt {
    use super::*;

    /// The key-encryption key both instances seal generated keys with (test only).
    const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    async fn serve_jwt(storage: &str) -> Served {
        capture();
        let mut cfg = config(storage);
        cfg.clients[0].access_token_format = Some("jwt".into());
        cfg.signing_keys.enabled = true;
        let port = free_port();
        // The KEK is never serialized with the configuration: merged on its own.
        let figment = loopback_figment(port)
            .merge(("oauth2", cfg))
            .merge(("oauth2.signing_keys.key_encryption_key", KEK));
        let rocket = rocket::custom(figment)
            .attach(OAuth2::fairing())
            .mount("/", routes![me]);
        launch(rocket, port, "").await
    }

    fn kid(token: &str) -> String {
        let header = token.split('.').next().unwrap_or_default();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        assert_eq!(v["typ"], "at+jwt", "header {v}");
        v["kid"].as_str().unwrap_or_default().to_owned()
    }

    pub(super) async fn jwt_revocation_reaches_the_other_instance(name: &str, url: &str) {
        let (a, b) = (serve_jwt(url).await, serve_jwt(url).await);
        let (ta, tb) = (token(a.port).await, token(b.port).await);
        assert_eq!(
            kid(&ta),
            kid(&tb),
            "{name}: both instances sign with one key"
        );
        assert_eq!(
            me_status(b.port, &ta).await,
            200,
            "{name}: B accepts A's JWT"
        );
        assert_eq!(
            me_status(a.port, &tb).await,
            200,
            "{name}: A accepts B's JWT"
        );
        let mut samples = Vec::with_capacity(TRIALS);
        for trial in 0..TRIALS {
            let t = token(a.port).await;
            // Verified on B twice: the first fills B's verified-token cache, the second is a hit.
            assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
            assert_eq!(me_status(b.port, &t).await, 200, "{name} trial {trial}");
            let start = Instant::now();
            revoke(a.port, &t).await;
            match until_refused(b.port, &t, start, Duration::from_secs(5)).await {
                Some(d) => samples.push(d),
                None => {
                    panic!("{name} trial {trial}: B still accepts the JWT 5 s after revocation")
                }
            }
            assert_eq!(me_status(a.port, &t).await, 401, "{name} trial {trial}: A");
        }
        let p99 = report(&format!("{name} (jwt)"), samples);
        assert!(
            p99 <= P99_BOUND,
            "{name} (jwt): p99 {p99:?} exceeds the acceptance bound {P99_BOUND:?}"
        );
        // A third instance started later agrees on the stored key and knows the revocations.
        let c = serve_jwt(url).await;
        assert_eq!(
            me_status(c.port, &tb).await,
            200,
            "{name}: a later instance accepts"
        );
        revoke(b.port, &tb).await;
        assert!(
            until_refused(c.port, &tb, Instant::now(), Duration::from_secs(5))
                .await
                .is_some(),
            "{name}: a later instance sees a revocation"
        );
    }
}

#[cfg(all(feature = "jwt", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_jwt_instances_share_one_key_and_see_each_others_revocations() {
    let _serial = SERIAL.lock().await;
    // A schema of its own: the store-kit key records other tests of this process write are
    // not sealed keys, and the servers here refuse to launch on a key they cannot unseal.
    let Some(url) = stores::postgres_url_tagged("jwt").await else {
        return;
    };
    jwt::jwt_revocation_reaches_the_other_instance("postgres", &url).await;
}

#[cfg(all(feature = "jwt", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_jwt_instances_share_one_key_and_see_each_others_revocations() {
    let _serial = SERIAL.lock().await;
    let Some(url) = stores::redis_url("vcache-jwt") else {
        return;
    };
    jwt::jwt_revocation_reaches_the_other_instance("redis", &url).await;
}
