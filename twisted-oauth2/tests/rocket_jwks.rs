//! Signing keys through Rocket (feature `jwt`): `GET <base>/jwks` (public keys only,
//! `Cache-Control` from the rotation schedule, CORS like the discovery documents),
//! `jwks_uri` in the RFC 8414 metadata, instances on one store agreeing on one key and a
//! restart reusing it (in memory, and on PostgreSQL and Redis when
//! `TWISTED_OAUTH2_TEST_POSTGRES` / `TWISTED_OAUTH2_TEST_REDIS` are set), and the launch
//! errors of bad signing-key configuration.

#![cfg(feature = "jwt")]

mod common;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod stores;

use std::sync::Arc;

use base64::Engine;
use common::log_capture::{capture, logged};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::{ServerConfig, SigningKeysConfig};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{SigningKeyStore, Stores};

/// The rotation period of these tests, seconds (one day).
const PERIOD: i64 = 86_400;
/// The fixed time: 1000 s into a generation.
const NOW: i64 = 20_000 * PERIOD + 1000;

fn kek(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn config() -> ServerConfig {
    let mut cfg = common::config();
    cfg.clients
        .retain(|c| !c.grant_types.iter().any(|g| g == "authorization_code"));
    cfg.signing_keys = SigningKeysConfig {
        enabled: true,
        algorithms: vec!["ES256".into(), "EdDSA".into()],
        rotation_period: PERIOD as u64,
        ..Default::default()
    };
    cfg
}

/// The figment of `cfg` with the key-encryption key (never serialized, so merged apart).
fn figment(cfg: ServerConfig, kek: Option<String>) -> Figment {
    // Not `rocket::Config::figment()`: the repository's Rocket.toml (the demo's) has keys.
    let f = Figment::from(rocket::Config::default())
        .merge(("log_level", "normal"))
        .merge(("oauth2", cfg));
    match kek {
        Some(k) => f.merge(("oauth2.signing_keys.key_encryption_key", k)),
        None => f,
    }
}

fn fairing() -> OAuth2 {
    OAuth2::fairing().clock(Arc::new(FixedClock::at(NOW)))
}

/// The stores of one memory store (shared by the instances of a test).
fn stores(keys: &Arc<MemoryStore>) -> Stores {
    Stores::from_backend(keys.clone())
}

async fn client(f: Figment, fairing: OAuth2) -> Client {
    Client::tracked(rocket::custom(f).attach(fairing))
        .await
        .expect("launches")
}

/// The launch was refused by the fairing (and the error is handled).
fn refused(e: rocket::Error) {
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}

async fn jwks(c: &Client) -> Value {
    let r = c.get("/oauth2/jwks").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    serde_json::from_str(&r.into_string().await.unwrap()).unwrap()
}

fn kids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[rocket::async_test]
async fn jwks_serves_public_keys_cacheable_until_the_next_publication_rfc7517_5() {
    let c = client(figment(config(), Some(kek(1))), fairing()).await;
    let r = c.get("/oauth2/jwks").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        r.headers().get_one("Content-Type"),
        Some("application/jwk-set+json")
    );
    // Never cached past the start of the next generation, when the next key is published.
    assert_eq!(
        r.headers().get_one("Cache-Control"),
        Some(format!("public, max-age={}", PERIOD - 1000).as_str())
    );
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    let doc: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    // Two algorithms, each with the key that signs and the next one.
    assert_eq!(keys.len(), 4);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].is_string() && k["alg"].is_string(), "{k}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                k.get(private).is_none(),
                "private member `{private}` in {k}"
            );
        }
    }
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs.iter().filter(|a| **a == "ES256").count(), 2);
    assert_eq!(algs.iter().filter(|a| **a == "EdDSA").count(), 2);
}

#[rocket::async_test]
async fn jwks_uri_is_in_the_metadata_and_the_document_is_readable_cross_origin() {
    let c = client(figment(config(), Some(kek(1))), fairing()).await;
    let meta: Value = serde_json::from_str(
        &c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["jwks_uri"], "https://as.example/oauth2/jwks");
    let pre = c
        .options("/oauth2/jwks")
        .header(Header::new("Origin", "https://spa.example"))
        .header(Header::new("Access-Control-Request-Method", "GET"))
        .dispatch()
        .await;
    assert_eq!(pre.status(), Status::NoContent);
    assert_eq!(
        pre.headers().get_one("Access-Control-Allow-Methods"),
        Some("GET, OPTIONS")
    );
    assert!(pre
        .headers()
        .get_one("Access-Control-Allow-Origin")
        .is_some());
    let r = c
        .get("/oauth2/jwks")
        .header(Header::new("Origin", "https://spa.example"))
        .dispatch()
        .await;
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
}

#[rocket::async_test]
async fn without_signing_keys_there_is_no_jwks() {
    let mut cfg = config();
    cfg.signing_keys = SigningKeysConfig::default();
    let c = client(figment(cfg, None), fairing()).await;
    assert_eq!(
        c.get("/oauth2/jwks").dispatch().await.status(),
        Status::NotFound
    );
    let meta = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(!meta.contains("jwks_uri"), "{meta}");
}

#[rocket::async_test]
async fn instances_on_one_store_agree_on_one_key_and_a_restart_reuses_it() {
    let keys = Arc::new(MemoryStore::new());
    let f = || figment(config(), Some(kek(1)));
    // Two instances launched at once.
    let (a, b) = rocket::tokio::join!(
        client(f(), fairing().stores(stores(&keys), "shared memory")),
        client(f(), fairing().stores(stores(&keys), "shared memory")),
    );
    let (ja, jb) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(ja, jb);
    assert_eq!(keys.published_keys(NOW).await.unwrap().len(), 4);
    drop((a, b));
    // A restart on the same store publishes the same keys.
    let again = client(f(), fairing().stores(stores(&keys), "shared memory")).await;
    assert_eq!(kids(&jwks(&again).await), kids(&ja));
}

#[rocket::async_test]
async fn a_wrong_key_encryption_key_aborts_launch_naming_the_key() {
    capture();
    let keys = Arc::new(MemoryStore::new());
    let first = client(
        figment(config(), Some(kek(1))),
        fairing().stores(stores(&keys), "shared memory"),
    )
    .await;
    drop(first);
    let e = Client::untracked(
        rocket::custom(figment(config(), Some(kek(2))))
            .attach(fairing().stores(stores(&keys), "shared memory")),
    )
    .await
    .expect_err("the stored keys do not unseal");
    refused(e);
    assert!(logged(&[
        "cannot be unsealed",
        "key_encryption_key",
        "retired_key_encryption_keys"
    ]));
}

#[rocket::async_test]
async fn generated_keys_without_a_key_encryption_key_abort_launch_and_say_how() {
    capture();
    let e = Client::untracked(rocket::custom(figment(config(), None)).attach(fairing()))
        .await
        .expect_err("no KEK");
    refused(e);
    assert!(logged(&[
        "oauth2.signing_keys.key_encryption_key",
        "openssl rand -base64 32"
    ]));
}

#[rocket::async_test]
async fn bad_signing_key_settings_abort_launch_naming_the_key() {
    capture();
    let mut cfg = config();
    cfg.signing_keys.algorithms = vec!["ES265".into()];
    let e = Client::untracked(rocket::custom(figment(cfg, Some(kek(1)))).attach(fairing()))
        .await
        .expect_err("unknown algorithm");
    refused(e);
    assert!(logged(&["signing_keys.algorithms", "did you mean `ES256`"]));

    let f = figment(config(), Some(kek(1))).merge(("oauth2.signing_keys.rotation_perod", 60));
    refused(
        Client::untracked(rocket::custom(f).attach(fairing()))
            .await
            .expect_err("a near-miss key"),
    );
    assert!(logged(&[
        "`oauth2.signing_keys.rotation_perod`",
        "did you mean `rotation_period`"
    ]));

    let f = figment(config(), Some("dG9vIHNob3J0".into()));
    refused(
        Client::untracked(rocket::custom(f).attach(fairing()))
            .await
            .expect_err("a short KEK"),
    );
    assert!(logged(&["key_encryption_key", "32 bytes"]));
}

#[rocket::async_test]
async fn configured_keys_are_published_and_a_bad_pem_aborts_launch() {
    capture();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/jwt/testdata");
    let f = figment(config(), None).merge((
        "oauth2.signing_keys.keys",
        vec![serde_json::json!({"pem_file": format!("{dir}/ed25519.pem"), "kid": "mine"})],
    ));
    let c = client(f, fairing()).await;
    let r = c.get("/oauth2/jwks").dispatch().await;
    assert_eq!(
        r.headers().get_one("Cache-Control"),
        Some("public, max-age=600")
    );
    let doc: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(kids(&doc), ["mine"]);
    assert_eq!(doc["keys"][0]["crv"], "Ed25519");

    let f = figment(config(), None).merge((
        "oauth2.signing_keys.keys",
        vec![serde_json::json!({"pem_file": format!("{dir}/rsa-1024.pem")})],
    ));
    refused(
        Client::untracked(rocket::custom(f).attach(fairing()))
            .await
            .expect_err("a weak key"),
    );
    assert!(logged(&["oauth2.signing_keys.keys", "key 1", "2048 bits"]));
}

/// Two instances on the store of `url` launched at once publish the same keys (one per
/// algorithm and generation), and a restart on it publishes them again. The system clock:
/// the stores expire retired keys by real time.
#[cfg(any(feature = "postgres", feature = "redis"))]
async fn instances_on_a_shared_store_agree(url: String) {
    let f = || {
        let mut cfg = config();
        cfg.storage = url.clone();
        figment(cfg, Some(kek(7)))
    };
    let (a, b) = rocket::tokio::join!(
        client(f(), OAuth2::fairing()),
        client(f(), OAuth2::fairing())
    );
    let (ja, jb) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(kids(&ja), kids(&jb));
    assert_eq!(kids(&ja).len(), 4, "one key per algorithm and generation");
    drop((a, b));
    let again = client(f(), OAuth2::fairing()).await;
    assert_eq!(kids(&jwks(&again).await), kids(&ja));
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn two_instances_on_one_postgresql_agree_on_one_first_key_and_survive_a_restart() {
    if let Some(url) = stores::postgres_url_tagged("jwks").await {
        instances_on_a_shared_store_agree(url).await;
    }
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn two_instances_on_one_redis_agree_on_one_first_key_and_survive_a_restart() {
    if let Some(url) = stores::redis_url("jwks") {
        instances_on_a_shared_store_agree(url).await;
    }
}
