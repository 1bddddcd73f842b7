//! Discovery and the cached JWKS against a small HTTP server on loopback (plain HTTP under
//! the debug override of the policy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::clock::FixedClock;
use crate::jwt::{Expectations, JwtRejection};
use crate::outbound::{Outbound, Policy};

const ED_A: &[u8] = include_bytes!("../jwt/testdata/ed25519-a.pem");
const ED_B: &[u8] = include_bytes!("../jwt/testdata/ed25519-b.pem");
const NOW: i64 = 1_800_000_000;

/// A canned answer: status, extra header lines, body.
type Route = (u16, String, String);

/// Path → its answer; and how often each path was asked.
#[derive(Clone, Default)]
struct Peer {
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    port: u16,
}

impl Peer {
    async fn start() -> Peer {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = Peer {
            port: l.local_addr().unwrap().port(),
            ..Peer::default()
        };
        let p = peer.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = req.split(' ').nth(1).unwrap_or("/").to_owned();
                    *p.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let (status, headers, body) =
                        p.routes.lock().unwrap().get(&path).cloned().unwrap_or((
                            404,
                            String::new(),
                            String::new(),
                        ));
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        peer
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, path: &str, status: u16, headers: &str, body: String) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.into(), (status, headers.into(), body));
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn jwks(keys: &[(&[u8], &str)]) -> String {
    let keys = keys
        .iter()
        .map(|(pem, kid)| {
            let mut jwk =
                Jwk::from_encoding_key(&EncodingKey::from_ed_pem(pem).unwrap(), Algorithm::EdDSA)
                    .unwrap();
            jwk.common.key_id = Some((*kid).into());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

fn token(pem: &[u8], kid: &str, iss: &str) -> String {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    let claims = json!({"iss": iss, "sub": "alice", "aud": "https://api.example",
                        "exp": NOW + 600, "iat": NOW});
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_pem(pem).unwrap()).unwrap()
}

fn policy() -> Policy {
    Policy::configured(64 * 1024, Duration::from_secs(5)).with_require_https(false)
}

fn remote(peer: &Peer, clock: Arc<FixedClock>) -> RemoteJwks {
    let uri = url::Url::parse(&format!("{}/jwks", peer.base())).unwrap();
    RemoteJwks::new(Outbound::new(&[], false).unwrap(), uri, policy(), clock)
}

#[tokio::test]
async fn the_jwks_is_fetched_once_and_kept_for_its_cache_lifetime() {
    let peer = Peer::start().await;
    peer.set(
        "/jwks",
        200,
        "cache-control: max-age=120\r\n",
        jwks(&[(ED_A, "a")]),
    );
    let clock = Arc::new(FixedClock::at(NOW));
    let r = remote(&peer, clock.clone());
    let iss = peer.base();
    let expect = Expectations::new(&iss, NOW);
    let t = token(ED_A, "a", &iss);
    for _ in 0..3 {
        assert!(r.verify(&t, &expect).await.unwrap().is_ok());
    }
    assert_eq!(peer.hits("/jwks"), 1);
    clock.advance(121);
    assert!(r.verify(&t, &expect).await.unwrap().is_ok());
    assert_eq!(peer.hits("/jwks"), 2);
}

#[tokio::test]
async fn a_value_that_is_not_a_jwt_costs_no_fetch() {
    let peer = Peer::start().await;
    let r = remote(&peer, Arc::new(FixedClock::at(NOW)));
    let iss = peer.base();
    assert_eq!(
        r.verify("opaque-value", &Expectations::new(&iss, NOW))
            .await,
        Ok(Err(JwtRejection::NotAJwt))
    );
    assert_eq!(peer.hits("/jwks"), 0);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_on_an_unknown_kid_at_most_once_per_period() {
    let peer = Peer::start().await;
    peer.set(
        "/jwks",
        200,
        "cache-control: max-age=3600\r\n",
        jwks(&[(ED_A, "a")]),
    );
    let r = remote(&peer, Arc::new(FixedClock::at(NOW)));
    let iss = peer.base();
    let expect = Expectations::new(&iss, NOW);
    assert!(r
        .verify(&token(ED_A, "a", &iss), &expect)
        .await
        .unwrap()
        .is_ok());
    // The issuer rotates to key b: its first token triggers one refetch.
    peer.set(
        "/jwks",
        200,
        "cache-control: max-age=3600\r\n",
        jwks(&[(ED_A, "a"), (ED_B, "b")]),
    );
    assert!(r
        .verify(&token(ED_B, "b", &iss), &expect)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(peer.hits("/jwks"), 2);
    // A flood of unknown kids within the period asks no more.
    for _ in 0..5 {
        assert_eq!(
            r.verify(&token(ED_B, "nope", &iss), &expect).await,
            Ok(Err(JwtRejection::UnknownKey))
        );
    }
    assert_eq!(peer.hits("/jwks"), 2);
}

#[tokio::test]
async fn an_issuer_down_from_the_start_is_unavailable_then_recovers() {
    let peer = Peer::start().await;
    peer.set("/jwks", 500, "", "oops".into());
    let clock = Arc::new(FixedClock::at(NOW));
    let r = remote(&peer, clock.clone());
    let iss = peer.base();
    let expect = Expectations::new(&iss, NOW);
    let t = token(ED_A, "a", &iss);
    let Err(RemoteError::Unavailable { retry_after, .. }) = r.verify(&t, &expect).await else {
        panic!("expected unavailable");
    };
    assert!(retry_after >= 1);
    // Within the retry delay: answered at once, without asking.
    assert!(matches!(
        r.verify(&t, &expect).await,
        Err(RemoteError::Unavailable { .. })
    ));
    assert_eq!(peer.hits("/jwks"), 1);
    // Not JSON is an outage too.
    clock.advance(RETRY_WITHOUT_KEYS as i64);
    peer.set("/jwks", 200, "", "<html>".into());
    assert!(matches!(
        r.verify(&t, &expect).await,
        Err(RemoteError::Unavailable { .. })
    ));
    clock.advance(RETRY_WITHOUT_KEYS as i64);
    peer.set("/jwks", 200, "", jwks(&[(ED_A, "a")]));
    assert!(r.verify(&t, &expect).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_previous_keys() {
    let peer = Peer::start().await;
    peer.set(
        "/jwks",
        200,
        "cache-control: max-age=60\r\n",
        jwks(&[(ED_A, "a")]),
    );
    let clock = Arc::new(FixedClock::at(NOW));
    let r = remote(&peer, clock.clone());
    let iss = peer.base();
    let expect = Expectations::new(&iss, NOW);
    let t = token(ED_A, "a", &iss);
    assert!(r.verify(&t, &expect).await.unwrap().is_ok());
    peer.set("/jwks", 503, "retry-after: 9\r\n", String::new());
    clock.advance(61);
    assert!(r.verify(&t, &expect).await.unwrap().is_ok());
    assert_eq!(peer.hits("/jwks"), 2);
    assert!(r.verify(&t, &expect).await.unwrap().is_ok());
    assert_eq!(
        peer.hits("/jwks"),
        2,
        "the next attempt waits RETRY_AFTER_FAILURE"
    );
}

#[tokio::test]
async fn discovery_reads_rfc8414_then_openid_configuration_and_checks_the_issuer() {
    let peer = Peer::start().await;
    let o = Outbound::new(&[], false).unwrap();
    let issuer = format!("{}/realms/acme", peer.base());
    let doc = |iss: &str| {
        json!({"issuer": iss, "jwks_uri": format!("{iss}/certs"),
               "introspection_endpoint": format!("{iss}/introspect")})
        .to_string()
    };
    // Only OpenID discovery (Keycloak-style realm path).
    peer.set(
        "/realms/acme/.well-known/openid-configuration",
        200,
        "",
        doc(&issuer),
    );
    let m = discover(&o, &issuer, &policy()).await.unwrap();
    assert_eq!(m.jwks_uri.unwrap().as_str(), format!("{issuer}/certs"));
    assert_eq!(
        peer.hits("/.well-known/oauth-authorization-server/realms/acme"),
        1
    );
    // RFC 8414 wins when present.
    peer.set(
        "/.well-known/oauth-authorization-server/realms/acme",
        200,
        "",
        doc(&issuer),
    );
    discover(&o, &issuer, &policy()).await.unwrap();
    assert_eq!(
        peer.hits("/realms/acme/.well-known/openid-configuration"),
        1
    );
    // A document naming another issuer is refused (RFC 8414 §3.3).
    peer.set(
        "/.well-known/oauth-authorization-server/realms/acme",
        200,
        "",
        doc("https://evil.example"),
    );
    assert!(matches!(
        discover(&o, &issuer, &policy()).await,
        Err(RemoteError::Misconfigured(_))
    ));
    // Nothing answers: unavailable.
    let gone = format!("{}/realms/none", peer.base());
    assert!(matches!(
        discover(&o, &gone, &policy()).await,
        Err(RemoteError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn concurrent_validations_of_a_stale_set_share_one_fetch() {
    let peer = Peer::start().await;
    peer.set(
        "/jwks",
        200,
        "cache-control: max-age=600\r\n",
        jwks(&[(ED_A, "a")]),
    );
    let r = remote(&peer, Arc::new(FixedClock::at(NOW)));
    let iss = peer.base();
    let t = token(ED_A, "a", &iss);
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (r, t, iss, done) = (r.clone(), t.clone(), iss.clone(), done.clone());
            tokio::spawn(async move {
                let expect = Expectations::new(&iss, NOW);
                assert!(r.verify(&t, &expect).await.unwrap().is_ok());
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 8);
    assert_eq!(peer.hits("/jwks"), 1);
}
