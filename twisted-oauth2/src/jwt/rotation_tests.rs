//! The key ring on a fixed clock: the rotation timeline, agreement between instances,
//! restarts, sealing and the launch errors.

use std::sync::Arc;

use base64::Engine;

use super::*;
use crate::clock::FixedClock;
use crate::config::{SigningKeyConfig, SigningKeysConfig};
use crate::storage::memory::MemoryStore;

/// Rotation period of these tests, seconds.
const P: i64 = 1000;
/// Access-token lifetime of these tests, seconds.
const LIFETIME: u64 = 90;
/// Token leeway of these tests, seconds.
const LEEWAY: u64 = 10;

fn kek(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn config(algorithms: &[&str], kek_byte: Option<u8>) -> ServerConfig {
    ServerConfig {
        issuer: "https://as.example".into(),
        access_token_lifetime: LIFETIME,
        token_leeway: LEEWAY,
        signing_keys: SigningKeysConfig {
            enabled: true,
            algorithms: algorithms.iter().map(|a| (*a).to_owned()).collect(),
            rotation_period: P as u64,
            key_encryption_key: kek_byte.map(kek),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn ring(config: &ServerConfig, clock: &Arc<FixedClock>) -> KeyRing {
    KeyRing::from_config(config, clock.clone()).unwrap()
}

/// The kids of the published JWKS, in order.
fn published(ring: &KeyRing) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&ring.jwks_json()).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn stored(store: &MemoryStore, now: i64) -> Vec<SigningKeyRecord> {
    store.published_keys(now).await.unwrap()
}

#[tokio::test]
async fn next_key_is_published_a_period_before_it_signs_and_retires_after_its_last_token() {
    let clock = Arc::new(FixedClock::at(5 * P + 500));
    let store = MemoryStore::new();
    let ring = ring(&config(&["ES256"], Some(1)), &clock);
    assert!(
        ring.signer().is_none(),
        "nothing signs before the first refresh"
    );
    ring.refresh(Some(&store)).await.unwrap();
    let keys = stored(&store, clock.unix()).await;
    assert_eq!(keys.len(), 2);
    let (g5, g6) = (keys[0].kid.clone(), keys[1].kid.clone());
    assert_eq!((keys[0].generation, keys[1].generation), (5, 6));
    assert_eq!(keys[1].signs_from, 6 * P);
    assert_eq!(keys[0].published_until, 6 * P + (LIFETIME + LEEWAY) as i64);
    // Generation 5 signs; generation 6 is already published, a whole period ahead.
    assert_eq!(ring.signer().unwrap().kid(), g5);
    assert_eq!(published(&ring), [g5.clone(), g6.clone()]);
    let set = ring.key_set();
    assert!(set.contains(&g5) && set.contains(&g6) && set.len() == 2);

    // At the boundary the next key signs at once, even before the task refreshes.
    clock.set(6 * P);
    assert_eq!(ring.signer().unwrap().kid(), g6);
    ring.refresh(Some(&store)).await.unwrap();
    let g7 = stored(&store, clock.unix()).await[2].kid.clone();
    // The retired key stays while tokens it signed at the last second can live.
    assert_eq!(published(&ring), [g5.clone(), g6.clone(), g7.clone()]);
    clock.set(6 * P + (LIFETIME + LEEWAY) as i64 - 1);
    ring.refresh(Some(&store)).await.unwrap();
    assert!(published(&ring).contains(&g5));
    // Then it leaves the JWKS and the store.
    clock.set(6 * P + (LIFETIME + LEEWAY) as i64);
    ring.refresh(Some(&store)).await.unwrap();
    assert_eq!(published(&ring), [g6.clone(), g7]);
    assert!(stored(&store, i64::MIN).await.iter().all(|r| r.kid != g5));
}

#[tokio::test]
async fn jwks_cache_lifetime_never_reaches_past_the_next_publication() {
    let clock = Arc::new(FixedClock::at(3 * P + 100));
    let store = MemoryStore::new();
    let ring = ring(&config(&["EdDSA"], Some(1)), &clock);
    ring.refresh(Some(&store)).await.unwrap();
    assert_eq!(ring.cache_max_age(), (P - 100) as u64);
    clock.set(4 * P - 1);
    assert_eq!(ring.cache_max_age(), 1);
    // The task wakes at the next change, and at least every minute.
    assert_eq!(ring.refresh_in(), Some(1));
    clock.set(4 * P);
    assert_eq!(ring.refresh_in(), Some(MAX_REFRESH_INTERVAL));
}

#[tokio::test]
async fn two_instances_starting_together_agree_on_one_key() {
    let clock = Arc::new(FixedClock::at(7 * P));
    let store = MemoryStore::new();
    let cfg = config(&["ES256", "EdDSA"], Some(1));
    let (a, b) = (ring(&cfg, &clock), ring(&cfg, &clock));
    let (ra, rb) = tokio::join!(a.refresh(Some(&store)), b.refresh(Some(&store)));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.signer().unwrap().kid(), b.signer().unwrap().kid());
    assert_eq!(a.jwks_json(), b.jwks_json());
    // One key per (algorithm, generation): two algorithms, two generations.
    assert_eq!(stored(&store, clock.unix()).await.len(), 4);
    // The first algorithm signs.
    assert_eq!(a.signer().unwrap().algorithm(), Algorithm::ES256);
}

#[tokio::test]
async fn a_restart_reuses_the_stored_keys() {
    let clock = Arc::new(FixedClock::at(2 * P + 1));
    let store = MemoryStore::new();
    let cfg = config(&["RS256"], Some(1));
    let first = ring(&cfg, &clock);
    first.refresh(Some(&store)).await.unwrap();
    let again = ring(&cfg, &clock);
    again.refresh(Some(&store)).await.unwrap();
    assert_eq!(first.signer().unwrap().kid(), again.signer().unwrap().kid());
    assert_eq!(first.jwks_json(), again.jwks_json());
    assert_eq!(stored(&store, clock.unix()).await.len(), 2);
}

#[tokio::test]
async fn the_store_holds_no_usable_private_key() {
    let clock = Arc::new(FixedClock::at(P));
    let store = MemoryStore::new();
    ring(&config(&["EdDSA", "ES256"], Some(1)), &clock)
        .refresh(Some(&store))
        .await
        .unwrap();
    let keks = Keks::new(Kek::from_base64(&kek(1)).unwrap(), Vec::new());
    for r in stored(&store, clock.unix()).await {
        let der = keks
            .unseal(&r.kid, &r.alg, r.generation, &r.sealed_private)
            .unwrap();
        // Not the DER, nor any 8-byte run of it (the 32-byte seed or scalar sits inside).
        assert!(
            !der.windows(8)
                .any(|w| r.sealed_private.windows(8).any(|s| s == w)),
            "the sealed blob of {} carries plaintext key bytes",
            r.kid
        );
        let jwk: serde_json::Value = serde_json::from_str(&r.public_jwk).unwrap();
        assert!(jwk.get("d").is_none(), "the stored JWK is public only");
    }
    // A stored record's blob moved onto another record does not unseal.
    let recs = stored(&store, clock.unix()).await;
    assert!(keks
        .unseal(
            &recs[0].kid,
            &recs[0].alg,
            recs[0].generation,
            &recs[1].sealed_private
        )
        .is_err());
}

#[tokio::test]
async fn a_wrong_key_encryption_key_refuses_with_its_id() {
    let clock = Arc::new(FixedClock::at(P));
    let store = MemoryStore::new();
    let sealed_with = ring(&config(&["ES256"], Some(1)), &clock);
    sealed_with.refresh(Some(&store)).await.unwrap();
    let wrong = ring(&config(&["ES256"], Some(2)), &clock);
    let e = wrong.refresh(Some(&store)).await.unwrap_err().to_string();
    assert!(e.contains("cannot be unsealed"), "{e}");
    assert!(
        e.contains(sealed_with.key_encryption_key_id().unwrap()),
        "the message names the KEK that sealed it: {e}"
    );
    assert!(wrong.signer().is_none());
    // The old key as a retired KEK unseals it.
    let mut cfg = config(&["ES256"], Some(2));
    cfg.signing_keys.retired_key_encryption_keys = vec![kek(1)];
    let rotated = ring(&cfg, &clock);
    rotated.refresh(Some(&store)).await.unwrap();
    assert_eq!(
        rotated.signer().unwrap().kid(),
        sealed_with.signer().unwrap().kid()
    );
}

#[tokio::test]
async fn a_tampered_public_half_is_refused() {
    let clock = Arc::new(FixedClock::at(P));
    let store = MemoryStore::new();
    ring(&config(&["ES256"], Some(1)), &clock)
        .refresh(Some(&store))
        .await
        .unwrap();
    // The same records, but the first one's public JWK is another key's.
    let tampered = MemoryStore::new();
    for (i, mut r) in stored(&store, 0).await.into_iter().enumerate() {
        if i == 0 {
            let other = crate::jwt::keys::PrivateKey::generate(Algorithm::ES256, 0).unwrap();
            r.public_jwk = serde_json::to_string(&other.public_jwk(Some(&r.kid)).unwrap()).unwrap();
        }
        tampered.create_key_if_absent(r).await.unwrap();
    }
    let e = ring(&config(&["ES256"], Some(1)), &clock)
        .refresh(Some(&tampered))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("different keys"), "{e}");
}

#[test]
fn generated_keys_need_a_key_encryption_key_outside_debug() {
    let clock = Arc::new(FixedClock::at(0));
    let e = KeyRing::from_config(&config(&["ES256"], None), clock.clone()).unwrap_err();
    assert!(matches!(e, KeyError::NoKek));
    assert!(e.to_string().contains("openssl rand -base64 32"), "{e}");
    let mut debug = config(&["ES256"], None);
    debug.allow_insecure_request_debug = true;
    assert!(KeyRing::from_config(&debug, clock.clone()).is_ok());
    let mut bad = config(&["ES256"], None);
    bad.signing_keys.key_encryption_key = Some("c2hvcnQ=".into());
    let e = KeyRing::from_config(&bad, clock).unwrap_err().to_string();
    assert!(
        e.contains("key_encryption_key") && e.contains("32 bytes"),
        "{e}"
    );
}

#[tokio::test]
async fn generated_keys_need_a_store() {
    let clock = Arc::new(FixedClock::at(0));
    let ring = ring(&config(&["ES256"], Some(1)), &clock);
    assert!(matches!(ring.refresh(None).await, Err(KeyError::NoStore)));
}

#[tokio::test]
async fn configured_keys_sign_first_publish_all_and_touch_no_store() {
    let clock = Arc::new(FixedClock::at(0));
    let mut cfg = config(&["ES256"], None);
    cfg.signing_keys.keys = vec![
        SigningKeyConfig {
            pem: Some(include_str!("testdata/ed25519.pem").into()),
            kid: Some("current".into()),
            ..Default::default()
        },
        SigningKeyConfig {
            pem_file: Some(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/src/jwt/testdata/rsa-pkcs1.pem"
                )
                .into(),
            ),
            ..Default::default()
        },
    ];
    let ring = ring(&cfg, &clock);
    assert!(!ring.is_generated());
    let s = ring.signer().unwrap();
    assert_eq!((s.kid(), s.algorithm()), ("current", Algorithm::EdDSA));
    let kids = published(&ring);
    assert_eq!(kids[0], "current");
    assert_eq!(kids.len(), 2);
    // The second key's kid is its RFC 7638 thumbprint.
    let jwk = &ring.jwk_set().keys[1];
    assert_eq!(kids[1], crate::jwt::keys::thumbprint(jwk).unwrap());
    let store = MemoryStore::new();
    ring.refresh(Some(&store)).await.unwrap();
    assert!(
        stored(&store, 0).await.is_empty(),
        "configured keys are never stored"
    );
    assert_eq!(ring.cache_max_age(), CONFIGURED_JWKS_MAX_AGE);
    assert_eq!(ring.refresh_in(), None);
    // Private members never reach the JWKS.
    for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"qi\""] {
        assert!(!ring.jwks_json().contains(private), "{}", ring.jwks_json());
    }
}

#[test]
fn configured_key_errors_name_the_key() {
    let clock = Arc::new(FixedClock::at(0));
    let mut cfg = config(&["ES256"], None);
    cfg.signing_keys.keys = vec![SigningKeyConfig {
        pem_file: Some("/nonexistent/key.pem".into()),
        ..Default::default()
    }];
    let e = KeyRing::from_config(&cfg, clock.clone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("signing_keys.keys")
            && e.contains("key 1")
            && e.contains("/nonexistent/key.pem"),
        "{e}"
    );
    let same = SigningKeyConfig {
        pem: Some(include_str!("testdata/ec-sec1.pem").into()),
        ..Default::default()
    };
    cfg.signing_keys.keys = vec![same.clone(), same];
    let e = KeyRing::from_config(&cfg, clock).unwrap_err().to_string();
    assert!(e.contains("key 2") && e.contains("listed twice"), "{e}");
}

#[tokio::test]
async fn tokens_the_signer_makes_verify_with_the_key_set_and_a_retired_key_still_verifies() {
    let clock = Arc::new(FixedClock::at(4 * P + 10));
    let store = MemoryStore::new();
    let ring = ring(&config(&["EdDSA", "RS256"], Some(1)), &clock);
    ring.refresh(Some(&store)).await.unwrap();
    let claims = |now: i64| {
        serde_json::json!({
            "iss": "https://as.example", "sub": "svc", "aud": "https://api.example",
            "exp": now + LIFETIME as i64, "iat": now, "jti": "j1", "client_id": "svc"
        })
    };
    let old = ring
        .signer()
        .unwrap()
        .sign("at+jwt", &claims(5 * P - 1))
        .unwrap();
    clock.set(5 * P + 5);
    ring.refresh(Some(&store)).await.unwrap();
    let new = ring
        .signer()
        .unwrap()
        .sign("at+jwt", &claims(5 * P + 5))
        .unwrap();
    for token in [&old, &new] {
        let expect = crate::jwt::Expectations::new("https://as.example", 5 * P + 5)
            .with_audiences(&["https://api.example"]);
        crate::jwt::verify_access_token(token, &ring.key_set(), &expect).unwrap();
    }
}
