//! Brute-force limits shared through Redis: two authorization servers built from one
//! `storage = "redis://…"` URL (as two instances behind a load balancer would be) count
//! failed client authentications in the same Redis counters, so a client id refused from an
//! address on one is refused from it on the other (and the per-client_id ceiling is shared); a server on another key prefix counts apart.
//!
//! Needs `TWISTED_OAUTH2_TEST_REDIS` (skips with a notice otherwise):
//! `cargo test -p twisted-oauth2 --features redis --test shared_limits`

#![cfg_attr(not(feature = "redis"), allow(dead_code, unused_imports))]

mod common;
mod stores;

use common::{basic, config, FORM, SECURE};
use twisted_oauth2::endpoint::token::{self, TokenRequest};
use twisted_oauth2::server::AuthorizationServer;
use twisted_oauth2::token::TokenResponse;
use twisted_oauth2::OAuthError;

async fn server(storage: &str) -> AuthorizationServer {
    let mut cfg = config();
    cfg.storage = storage.into();
    cfg.limits.client_auth_failures = 3;
    cfg.limits.client_auth_ceiling = 6;
    cfg.limits.client_auth_window = 600;
    AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .expect("a server on Redis")
}

async fn client_credentials(
    s: &AuthorizationServer,
    secret: &str,
) -> Result<TokenResponse, OAuthError> {
    from(s, secret, "198.51.100.7").await
}

async fn from(
    s: &AuthorizationServer,
    secret: &str,
    address: &str,
) -> Result<TokenResponse, OAuthError> {
    let auth = basic("svc", secret);
    token::handle(
        s,
        TokenRequest {
            body: b"grant_type=client_credentials&scope=a",
            content_type: Some(FORM),
            authorization: Some(&auth),
            query: None,
            transport: SECURE,
            request: twisted_oauth2::endpoint::RequestContext::new("POST", "/oauth2/token", SECURE)
                .with_client_ip(address.parse().ok()),
        },
    )
    .await
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_on_one_redis_share_the_failed_client_authentication_limit() {
    let Some(url) = stores::redis_url("shared-limits") else {
        return;
    };
    let a = server(&url).await;
    let b = server(&url).await;
    let Some(apart) = stores::redis_url("shared-limits-apart") else {
        return;
    };
    let c = server(&apart).await;
    // Failures alternate between the instances: 3 in all reach the limit.
    for s in [&a, &b, &a] {
        let e = client_credentials(s, "wrong").await.unwrap_err();
        assert_eq!(e.status(), 401);
    }
    for s in [&b, &a] {
        let e = client_credentials(s, "svc-secret").await.unwrap_err();
        assert_eq!(
            e.status(),
            429,
            "refused on both instances, even with the secret"
        );
        assert!(e
            .headers()
            .any(|(k, v)| k == "Retry-After" && (1..=600).contains(&v.parse::<u64>().unwrap())));
    }
    // The same client id from another address authenticates on either instance.
    from(&b, "svc-secret", "203.0.113.20")
        .await
        .expect("another address is not limited by that loop");
    // A server counting under another key prefix has seen none of them.
    client_credentials(&c, "svc-secret")
        .await
        .expect("another key space is unaffected");
    // The per-client_id ceiling is shared too: 3 more failures from fresh addresses,
    // alternating instances, make 6, and every address is refused on both.
    for (i, s) in [&a, &b, &a].into_iter().enumerate() {
        let e = from(s, "wrong", &format!("192.0.2.{i}")).await.unwrap_err();
        assert_eq!(e.status(), 401);
    }
    for s in [&a, &b] {
        let e = from(s, "svc-secret", "203.0.113.99").await.unwrap_err();
        assert_eq!(e.status(), 429, "the shared ceiling holds");
    }
}
