//! A revocation cannot be outrun, over real HTTP (RFC 6749 §4.1.2, RFC 6819 §5.1.5.4).
//!
//! The library is served by Rocket on a loopback port with each storage backend. For many
//! rounds a fresh authorization code is redeemed six times at once, each request on its own
//! TCP connection: at most one redemption may succeed, the replays revoke the grant, and
//! once every request has finished no access token handed out in the round may still open
//! a protected route (or be active at introspection). No request may get a 5xx.
//!
//! PostgreSQL and Redis need `TWISTED_OAUTH2_TEST_POSTGRES` / `TWISTED_OAUTH2_TEST_REDIS`
//! and skip with a notice otherwise; the Redis Cluster case starts a three-node cluster of
//! its own when `TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1`.
//!
//! `cargo test -p twisted-oauth2 --features sqlite,postgres,redis,testkit --test revocation_race`

#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

mod common;

use common::put_code;

mod stores;

mod live;

use live::{free_port, http, launch, loopback_figment, Served};

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::{get, routes};
use tokio::sync::Barrier;
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::Stores;
use twisted_oauth2::TokenInfo;

const REDIRECT: &str = "https://client.example/cb";
const ROUNDS: usize = 60;
const REDEMPTIONS: usize = 6;

#[get("/me")]
fn me(info: TokenInfo) -> String {
    info.client_id.to_string()
}

fn config(storage: &str) -> ServerConfig {
    let c = ClientConfig {
        id: "app".into(),
        secret: Some("app-secret".into()),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: Some(vec!["a".into(), "b".into()]),
        introspect: true,
        ..Default::default()
    };
    let mut cfg = ServerConfig {
        issuer: "https://as.example".into(),
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        storage: storage.into(),
        ..Default::default()
    };
    // Test keys in a shared Redis expire within the hour.
    cfg.refresh_token_lifetime = 3600;
    cfg.clients = vec![c];
    cfg
}

async fn serve(storage: &str, stores: Option<Stores>) -> Served {
    let port = free_port();
    let figment = loopback_figment(port).merge(("oauth2", config(storage)));
    let fairing = match stores {
        Some(s) => OAuth2::fairing().stores(s, storage),
        None => OAuth2::fairing(),
    }
    .on_authenticate(common::NoConsent);
    let rocket = rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![me]);
    launch(rocket, port, &format!("on {storage:?}")).await
}

fn basic() -> String {
    format!("Basic {}", STANDARD.encode("app:app-secret"))
}

/// Whether `token` still opens the protected route or is active at introspection.
async fn still_works(port: u16, token: &str) -> bool {
    let bearer = format!("Bearer {token}");
    let (me, _) = http(port, "GET", "/me", &[("Authorization", &bearer)], "").await;
    let (st, body) = http(
        port,
        "POST",
        "/oauth2/introspect",
        &[
            ("Authorization", &basic()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("token={token}"),
    )
    .await;
    let active = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["active"].as_bool());
    assert!(
        me == 200 || me == 401,
        "protected route answered {me}, not 200 or 401"
    );
    assert_eq!(st, 200, "introspection answered {st}: {body}");
    me == 200 || active != Some(false)
}

/// The race, `ROUNDS` times, against the server on `port` whose codes `direct` can write.
async fn race(name: &str, port: u16, direct: &Stores) {
    let mut surviving_rounds = Vec::new();
    let mut two_winners = Vec::new();
    let mut server_errors = Vec::new();
    let mut won = 0;
    for round in 0..ROUNDS {
        let code = put_code(direct).await;
        let body = format!("grant_type=authorization_code&code={code}");
        let barrier = Arc::new(Barrier::new(REDEMPTIONS));
        let tasks: Vec<_> = (0..REDEMPTIONS)
            .map(|_| {
                let (body, barrier) = (body.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    http(
                        port,
                        "POST",
                        "/oauth2/token",
                        &[
                            ("Authorization", &basic()),
                            ("Content-Type", "application/x-www-form-urlencoded"),
                        ],
                        &body,
                    )
                    .await
                })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            let (st, body) = match t.await {
                Ok(r) => r,
                Err(e) => panic!("request task: {e}"),
            };
            let v: serde_json::Value = match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(_) => panic!("{name} round {round}: not JSON ({st}): {body:?}"),
            };
            match st {
                200 => tokens.push(v["access_token"].as_str().unwrap_or_default().to_owned()),
                400 => assert_eq!(v["error"], "invalid_grant", "{name} round {round}: {v}"),
                s if s >= 500 => server_errors.push((round, s, v.to_string())),
                s => panic!("{name} round {round}: unexpected {s}: {v}"),
            }
        }
        won += tokens.len();
        if tokens.len() > 1 {
            two_winners.push(round);
        }
        let mut live = 0;
        for t in &tokens {
            if still_works(port, t).await {
                live += 1;
            }
        }
        if live > 0 {
            surviving_rounds.push(round);
        }
    }
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "{name}: {ROUNDS} rounds of {REDEMPTIONS} concurrent redemptions: {won} token \
             responses, {} rounds with a surviving access token {:?}, {} 5xx\n",
            surviving_rounds.len(),
            surviving_rounds,
            server_errors.len()
        ),
    );
    assert!(
        two_winners.is_empty(),
        "{name}: more than one 200 in rounds {two_winners:?}"
    );
    assert!(
        server_errors.is_empty(),
        "{name}: 5xx answers: {server_errors:?}"
    );
    assert!(
        surviving_rounds.is_empty(),
        "{name}: an access token outran the revocation of its grant in {} of {ROUNDS} rounds: \
         {surviving_rounds:?}",
        surviving_rounds.len()
    );
}

async fn race_on_url(name: &str, url: &str) {
    let served = serve(url, None).await;
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("connect {name}: {e:?}"),
    };
    race(name, served.port, &direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_replayed_code_leaves_no_live_token_over_http() {
    let stores = Stores::from_backend(Arc::new(MemoryStore::new()));
    let served = serve("memory", Some(stores.clone())).await;
    race("memory", served.port, &stores).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replayed_code_leaves_no_live_token_over_http() {
    race_on_url("sqlite", &stores::sqlite_url("race")).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replayed_code_leaves_no_live_token_over_http() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    race_on_url("postgres", &url).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replayed_code_leaves_no_live_token_over_http() {
    let Some(url) = stores::redis_url("race") else {
        return;
    };
    race_on_url("redis", &url).await;
}

/// The same on a three-node Redis Cluster the test starts (`TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1`).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_replayed_code_leaves_no_live_token_over_http() {
    let cluster = match tokio::task::spawn_blocking(stores::cluster::Cluster::start).await {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => panic!("starting the Redis Cluster: {e}"),
    };
    race_on_url("redis cluster", &cluster.url("race:")).await;
}
