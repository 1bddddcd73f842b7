//! The failed client authentication limit is keyed on the `client_id` *and* the client
//! address, with a higher per-`client_id` ceiling as the backstop (docs/rate-limits.md): a
//! guessing loop from one address is stopped, a stranger cannot lock a known client out
//! from their own address, guessing spread over many addresses meets the ceiling, and every
//! refusal is an audit event.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use common::{basic, config, FORM, SECURE};
use twisted_oauth2::audit::{AuditEvent, AuditSink};
use twisted_oauth2::endpoint::token::{self, TokenRequest};
use twisted_oauth2::endpoint::RequestContext;
use twisted_oauth2::server::AuthorizationServer;
use twisted_oauth2::token::TokenResponse;
use twisted_oauth2::OAuthError;

#[derive(Default)]
struct Events(Mutex<Vec<(String, String)>>);

impl AuditSink for Events {
    fn record(&self, event: &AuditEvent) {
        if let AuditEvent::RateLimited { limit, key, .. } = event {
            self.0
                .lock()
                .unwrap()
                .push((limit.to_string(), key.clone()));
        }
    }
}

fn server(failures: u32, ceiling: u32, window: u64) -> (AuthorizationServer, Arc<Events>) {
    let mut cfg = config();
    cfg.limits.client_auth_failures = failures;
    cfg.limits.client_auth_ceiling = ceiling;
    cfg.limits.client_auth_window = window;
    let events = Arc::new(Events::default());
    let s = AuthorizationServer::builder(cfg)
        .audit(events.clone())
        .build()
        .expect("valid config");
    (s, events)
}

async fn client_credentials(
    s: &AuthorizationServer,
    secret: &str,
    from: &str,
) -> Result<TokenResponse, OAuthError> {
    let auth = basic("svc", secret);
    let ip: IpAddr = from.parse().unwrap();
    token::handle(
        s,
        TokenRequest {
            body: b"grant_type=client_credentials&scope=a",
            content_type: Some(FORM),
            authorization: Some(&auth),
            transport: SECURE,
            request: RequestContext::new("POST", "/oauth2/token", SECURE).with_client_ip(Some(ip)),
            ..Default::default()
        },
    )
    .await
}

fn retry_after(e: &OAuthError) -> u64 {
    e.headers()
        .find(|(k, _)| *k == "Retry-After")
        .map(|(_, v)| v.parse().unwrap())
        .expect("Retry-After")
}

#[tokio::test]
async fn a_guessing_loop_from_one_address_is_stopped_after_the_configured_failures() {
    let (s, events) = server(3, 100, 600);
    for _ in 0..3 {
        let e = client_credentials(&s, "wrong", "198.51.100.7")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    for secret in ["wrong", "svc-secret"] {
        let e = client_credentials(&s, secret, "198.51.100.7")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 429, "that address waits, even with the secret");
        assert!((1..=600).contains(&retry_after(&e)));
    }
    let events = events.0.lock().unwrap();
    assert!(events
        .iter()
        .all(|(limit, key)| limit == "client_auth" && key == "198.51.100.7 svc"));
    assert!(events.len() >= 2, "the refusals are audited: {events:?}");
}

#[tokio::test]
async fn the_correct_secret_from_another_address_still_gets_tokens() {
    let (s, _) = server(3, 100, 600);
    for _ in 0..10 {
        let _ = client_credentials(&s, "wrong", "198.51.100.7").await;
    }
    assert_eq!(
        client_credentials(&s, "svc-secret", "198.51.100.7")
            .await
            .unwrap_err()
            .status(),
        429
    );
    // The stranger's loop does not lock the client out: from its own address it works.
    client_credentials(&s, "svc-secret", "203.0.113.20")
        .await
        .expect("tokens from another address");
    // The same /64 is the same address for IPv6; another /64 is not.
    for _ in 0..3 {
        let _ = client_credentials(&s, "wrong", "2001:db8:1:1::1").await;
    }
    assert_eq!(
        client_credentials(&s, "svc-secret", "2001:db8:1:1::2")
            .await
            .unwrap_err()
            .status(),
        429
    );
    client_credentials(&s, "svc-secret", "2001:db8:1:2::1")
        .await
        .expect("another /64");
}

#[tokio::test]
async fn the_per_client_id_ceiling_holds_against_guessing_from_many_addresses() {
    let (s, events) = server(3, 20, 600);
    // One failure from each of 20 addresses: no address reaches its own limit.
    for i in 0..20 {
        let e = client_credentials(&s, "wrong", &format!("192.0.2.{i}"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401, "attempt {i}");
    }
    // The ceiling is reached: every address is refused, with or without the secret.
    for from in ["192.0.2.200", "203.0.113.20"] {
        for secret in ["wrong", "svc-secret"] {
            let e = client_credentials(&s, secret, from).await.unwrap_err();
            assert_eq!(e.status(), 429, "{from}");
        }
    }
    assert!(events
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(limit, key)| limit == "client_auth_ceiling" && key == "svc"));
}

#[tokio::test]
async fn after_the_window_the_correct_secret_works_again() {
    let (s, _) = server(2, 100, 1);
    for _ in 0..2 {
        let _ = client_credentials(&s, "wrong", "198.51.100.7").await;
    }
    let e = client_credentials(&s, "svc-secret", "198.51.100.7")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    tokio::time::sleep(
        std::time::Duration::from_secs(retry_after(&e)) + std::time::Duration::from_millis(100),
    )
    .await;
    client_credentials(&s, "svc-secret", "198.51.100.7")
        .await
        .expect("the window has refilled");
}

#[tokio::test]
async fn other_clients_are_unaffected_by_a_limited_client_id() {
    let (s, _) = server(3, 3, 600);
    for i in 0..5 {
        let _ = client_credentials(&s, "wrong", &format!("192.0.2.{i}")).await;
    }
    let auth = basic("other", "other-secret");
    token::handle(
        &s,
        TokenRequest {
            body: b"grant_type=client_credentials&scope=a",
            content_type: Some(FORM),
            authorization: Some(&auth),
            transport: SECURE,
            request: RequestContext::new("POST", "/oauth2/token", SECURE)
                .with_client_ip("192.0.2.1".parse().ok()),
            ..Default::default()
        },
    )
    .await
    .expect("another client id");
}
