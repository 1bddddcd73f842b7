//! `refresh_token_reuse_interval` through the protocol core (no server): a refresh token
//! presented again within the interval after its rotation gets fresh tokens of the same
//! family; after the interval the use is reuse and revokes the family; the audit events say
//! which; the setting is bounded and refused on a store that cannot honour it.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use twisted_oauth2::audit::{AuditEvent, AuditSink};
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::error::StorageError;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{
    GrantId, RefreshState, RefreshTokenStore, Rotation, Stores, TokenRecord,
};
use twisted_oauth2::token::{TokenDigest, TokenResponse};
use twisted_oauth2::{AuthorizationServer, ErrorCode, OAuthError};

#[derive(Default)]
struct Recorder(Mutex<Vec<AuditEvent>>);

impl AuditSink for Recorder {
    fn record(&self, event: &AuditEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .map(|v| v.iter().map(AuditEvent::kind).collect())
            .unwrap_or_default()
    }
}

fn with_interval(seconds: u64) -> ServerConfig {
    ServerConfig {
        refresh_token_reuse_interval: seconds,
        ..config()
    }
}

fn fixture_with_audit(cfg: ServerConfig) -> (Fixture, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = AuthorizationServer::builder(cfg)
        .clock(clock.clone())
        .audit(rec.clone())
        .build()
        .expect("valid config");
    (
        Fixture {
            server: Arc::new(server),
            clock,
        },
        rec,
    )
}

async fn first_tokens(f: &Fixture) -> TokenResponse {
    let code = f.code("web", "a", true).await;
    f.redeem_web(&code).await.expect("code redeemed")
}

async fn refresh(f: &Fixture, rt: &str) -> Result<TokenResponse, OAuthError> {
    f.token(
        &format!("grant_type=refresh_token&refresh_token={rt}&client_id=web"),
        None,
    )
    .await
}

#[tokio::test]
async fn parallel_refreshes_within_the_reuse_interval_all_succeed_and_every_token_works() {
    let (f, rec) = fixture_with_audit(with_interval(60));
    let f = Arc::new(f);
    let rt = first_tokens(&f)
        .await
        .refresh_token
        .expect("a refresh token");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (f, rt) = (f.clone(), rt.clone());
            tokio::spawn(async move { refresh(&f, &rt).await })
        })
        .collect();
    let mut issued = Vec::new();
    for t in tasks {
        issued.push(
            t.await
                .expect("task")
                .expect("every parallel refresh succeeds"),
        );
    }
    let kinds = rec.kinds();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("token_refreshed"), 1, "{kinds:?}");
    assert_eq!(
        count("token_refreshed_within_reuse_interval"),
        3,
        "{kinds:?}"
    );
    assert_eq!(count("refresh_reuse_detected"), 0, "{kinds:?}");
    for t in &issued {
        assert!(
            f.access_ok(&t.access_token).await,
            "every access token works"
        );
    }
    let mut refreshes = Vec::new();
    for t in &issued {
        let next = refresh(&f, t.refresh_token.as_deref().expect("a refresh token")).await;
        refreshes.push(next.expect("every returned refresh token refreshes"));
    }
    for t in issued.iter().chain(&refreshes) {
        assert!(f.access_ok(&t.access_token).await, "the family was kept");
    }
}

#[tokio::test]
async fn a_reuse_after_the_interval_revokes_the_family_and_the_window_does_not_slide() {
    let (f, rec) = fixture_with_audit(with_interval(60));
    let rt1 = first_tokens(&f)
        .await
        .refresh_token
        .expect("a refresh token");
    let t2 = refresh(&f, &rt1).await.expect("rotation");
    f.clock.advance(59);
    let t3 = refresh(&f, &rt1).await.expect("inside the interval");
    // 60 s after the rotation (not after the use inside the window): reuse.
    f.clock.advance(1);
    let e = refresh(&f, &rt1).await.expect_err("after the interval");
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    for t in [&t2, &t3] {
        assert!(!f.access_ok(&t.access_token).await, "family revoked");
        let rt = t.refresh_token.as_deref().expect("a refresh token");
        let e = refresh(&f, rt).await.expect_err("family revoked");
        assert_eq!(e.code(), ErrorCode::InvalidGrant);
    }
    // The refused access tokens of the revoked family are `token_rejected` events.
    let mut kinds = rec.kinds();
    assert_eq!(
        kinds.iter().filter(|&&k| k == "token_rejected").count(),
        2,
        "{kinds:?}"
    );
    kinds.retain(|&k| k != "token_rejected");
    assert_eq!(
        &kinds[kinds.len() - 3..],
        [
            "token_refreshed",
            "token_refreshed_within_reuse_interval",
            "refresh_reuse_detected"
        ],
        "{kinds:?}"
    );
}

#[tokio::test]
async fn without_a_reuse_interval_a_second_use_revokes_the_family_at_once() {
    let (f, rec) = fixture_with_audit(config());
    let rt1 = first_tokens(&f)
        .await
        .refresh_token
        .expect("a refresh token");
    let t2 = refresh(&f, &rt1).await.expect("rotation");
    let e = refresh(&f, &rt1).await.expect_err("strict rotation");
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    assert!(!f.access_ok(&t2.access_token).await);
    assert!(rec.kinds().contains(&"refresh_reuse_detected"));
}

#[tokio::test]
async fn a_rotated_token_of_another_client_is_refused_inside_the_interval_without_revoking() {
    let f = fixture_with(with_interval(60));
    let rt1 = first_tokens(&f)
        .await
        .refresh_token
        .expect("a refresh token");
    let t2 = refresh(&f, &rt1).await.expect("rotation");
    let e = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={rt1}"),
            Some(("app", "app-secret")),
        )
        .await
        .expect_err("another client");
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    assert!(
        f.access_ok(&t2.access_token).await,
        "the family is untouched"
    );
}

#[test]
fn a_reuse_interval_above_300_seconds_is_refused() {
    let e = AuthorizationServer::builder(with_interval(301))
        .build()
        .expect_err("too long");
    assert!(
        e.to_string().contains("refresh_token_reuse_interval"),
        "{e}"
    );
    AuthorizationServer::builder(with_interval(300))
        .build()
        .expect("300 s is accepted");
}

/// A refresh store that does not implement the reuse interval (the trait's defaults).
struct StrictOnly(Arc<MemoryStore>);

#[async_trait]
impl RefreshTokenStore for StrictOnly {
    async fn put_refresh(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        self.0.put_refresh(t, r).await
    }
    async fn refresh(&self, t: &TokenDigest) -> Result<RefreshState, StorageError> {
        self.0.refresh(t).await
    }
    async fn rotate_refresh(
        &self,
        old: &TokenDigest,
        new: &TokenDigest,
        r: &TokenRecord,
    ) -> Result<Rotation, StorageError> {
        self.0.rotate_refresh(old, new, r).await
    }
    async fn revoke_refresh(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.0.revoke_refresh(t).await
    }
    async fn revoke_refresh_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
        self.0.revoke_refresh_grant(g, until).await
    }
    async fn revoke_refresh_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
        self.0.revoke_refresh_client(c, until).await
    }
}

#[test]
fn a_reuse_interval_on_a_store_without_support_is_refused_at_build() {
    let mem = Arc::new(MemoryStore::new());
    let mut stores = Stores::from_backend(mem.clone());
    stores.refresh = Arc::new(StrictOnly(mem));
    let e = AuthorizationServer::builder(with_interval(60))
        .stores(stores.clone())
        .build()
        .expect_err("unsupported store");
    let shown = e.to_string();
    assert!(
        shown.contains("refresh_token_reuse_interval") && shown.contains("does not support"),
        "{shown}"
    );
    AuthorizationServer::builder(config())
        .stores(stores)
        .build()
        .expect("strict rotation needs no support");
}
