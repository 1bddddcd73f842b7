//! An issuance that loses the race against a revocation of its grant (RFC 6749 §4.1.2,
//! RFC 6819 §5.1.5.4): the token endpoint answers `invalid_grant` (not a 5xx), withdraws
//! what it wrote, and the code stays used.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use twisted_oauth2::error::StorageError;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{
    AccessTokenStore, CodeStore, CodeTake, GrantId, RefreshTokenStore, Stores, TokenRecord,
};
use twisted_oauth2::token::{SequentialTokenGenerator, TokenDigest};
use twisted_oauth2::{AuthorizationServer, ErrorCode};

/// An access-token store before whose next write the grant is revoked (refresh family
/// first, then access tokens, with tombstones), as a replay of the code would.
struct RevokedBeforeAccessWrite {
    inner: Arc<MemoryStore>,
    armed: AtomicBool,
}

#[async_trait]
impl AccessTokenStore for RevokedBeforeAccessWrite {
    async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.inner
                .revoke_refresh_grant(r.grant_id, T0 + 3600)
                .await?;
            self.inner
                .revoke_access_grant(r.grant_id, T0 + 3600)
                .await?;
        }
        self.inner.put_access(t, r).await
    }
    async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.inner.access(t).await
    }
    async fn revoke_access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.inner.revoke_access(t).await
    }
    async fn revoke_access_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
        self.inner.revoke_access_grant(g, until).await
    }
    async fn revoke_access_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
        self.inner.revoke_access_client(c, until).await
    }
}

fn fixture_with_racing_access() -> (Arc<MemoryStore>, Arc<RevokedBeforeAccessWrite>, Fixture) {
    let mem = Arc::new(MemoryStore::new());
    let racing = Arc::new(RevokedBeforeAccessWrite {
        inner: mem.clone(),
        armed: AtomicBool::new(false),
    });
    let mut stores = Stores::from_backend(mem.clone());
    stores.access = racing.clone();
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = AuthorizationServer::builder(config())
        .stores(stores)
        .clock(clock.clone())
        .generator(Arc::new(SequentialTokenGenerator::default()))
        .build()
        .unwrap();
    (
        mem,
        racing,
        Fixture {
            server: Arc::new(server),
            clock,
        },
    )
}

#[tokio::test]
async fn code_redemption_outrun_by_a_revocation_is_invalid_grant_and_burns_the_code() {
    let (mem, racing, f) = fixture_with_racing_access();
    let code = f.code("web", "a", true).await;

    racing.armed.store(true, Ordering::SeqCst);
    let e = f.redeem_web(&code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant, "{}", e.to_json());
    assert_eq!(e.status(), 400);
    assert_eq!(mem.access_token_count(), 0, "no access token stored");
    assert_eq!(
        mem.refresh_token_count(),
        0,
        "the refresh token written first is gone"
    );

    // The code was not released: it is still marked used (a retry is a replay).
    let state = mem.take_code(&TokenDigest::of(&code)).await.unwrap();
    assert!(matches!(state, CodeTake::Replayed(_)), "{state:?}");
    let again = f.redeem_web(&code).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::InvalidGrant);
    assert_eq!(mem.access_token_count(), 0);
}

#[tokio::test]
async fn refresh_outrun_by_a_revocation_is_invalid_grant_and_leaves_nothing_live() {
    let (mem, racing, f) = fixture_with_racing_access();
    let code = f.code("web", "a", true).await;
    let first = f.redeem_web(&code).await.unwrap();
    let refresh = first.refresh_token.expect("refresh token issued");

    racing.armed.store(true, Ordering::SeqCst);
    let e = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=web"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant, "{}", e.to_json());
    assert!(!f.access_ok(&first.access_token).await);
    assert_eq!(mem.access_token_count(), 0);
    assert_eq!(mem.refresh_token_count(), 0);
}
