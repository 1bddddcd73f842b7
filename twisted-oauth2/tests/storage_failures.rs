//! A failing store answers with the RFC error and loses nothing (RFC 6749 §5.2).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use twisted_oauth2::error::StorageError;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{AccessTokenStore, GrantId, RefreshTokenStore, Stores, TokenRecord};
use twisted_oauth2::token::{SequentialTokenGenerator, TokenDigest};
use twisted_oauth2::{AuthorizationServer, ErrorCode};

/// An access-token store that fails while `down` is set.
struct Flaky {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
}

fn outage() -> StorageError {
    StorageError::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

#[async_trait]
impl AccessTokenStore for Flaky {
    async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(outage());
        }
        self.inner.put_access(t, r).await
    }
    async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(outage());
        }
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

/// A fixture over a memory store whose access tokens go through `access`.
fn fixture_over(mem: Arc<MemoryStore>, access: Arc<dyn AccessTokenStore>) -> Fixture {
    fixture_over_with(config(), mem, access)
}

/// [`fixture_over`] with `cfg`.
fn fixture_over_with(
    cfg: twisted_oauth2::config::ServerConfig,
    mem: Arc<MemoryStore>,
    access: Arc<dyn AccessTokenStore>,
) -> Fixture {
    let mut stores = Stores::from_backend(mem);
    stores.access = access;
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = AuthorizationServer::builder(cfg)
        .stores(stores)
        .clock(clock.clone())
        .generator(Arc::new(SequentialTokenGenerator::default()))
        .build()
        .unwrap();
    Fixture {
        server: Arc::new(server),
        clock,
    }
}

/// A flaky access-token store over a fresh memory store, and a fixture using it.
fn flaky_fixture() -> (Arc<Flaky>, Fixture) {
    let mem = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        inner: mem.clone(),
        down: AtomicBool::new(false),
    });
    let f = fixture_over(mem, flaky.clone());
    (flaky, f)
}

#[tokio::test]
async fn failed_token_write_does_not_burn_the_code_and_answers_temporarily_unavailable() {
    let (flaky, f) = flaky_fixture();
    let code = f.code("web", "a", true).await;

    flaky.down.store(true, Ordering::SeqCst);
    let e = f.redeem_web(&code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
    assert_eq!(e.status(), 503);
    assert!(
        !e.to_json().contains("refused"),
        "internal cause is not sent: {}",
        e.to_json()
    );

    flaky.down.store(false, Ordering::SeqCst);
    let t = f
        .redeem_web(&code)
        .await
        .expect("the code survived the outage");
    assert!(f.access_ok(&t.access_token).await);
}

#[tokio::test]
async fn failed_token_write_does_not_burn_the_refresh_token_rfc9700_4_14_2() {
    let (flaky, f) = flaky_fixture();
    let code = f.code("web", "a", true).await;
    let first = f.redeem_web(&code).await.unwrap();
    let refresh = first.refresh_token.expect("refresh token issued");
    let body = format!("grant_type=refresh_token&refresh_token={refresh}&client_id=web");

    flaky.down.store(true, Ordering::SeqCst);
    let e = f.token(&body, None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);

    flaky.down.store(false, Ordering::SeqCst);
    // The retry is not taken for reuse of a rotated-out token: the family lives on.
    let second = f
        .token(&body, None)
        .await
        .expect("the refresh token survived the outage");
    assert!(f.access_ok(&second.access_token).await);
    assert!(f.access_ok(&first.access_token).await);
    let next = second.refresh_token.expect("rotated");
    f.token(
        &format!("grant_type=refresh_token&refresh_token={next}&client_id=web"),
        None,
    )
    .await
    .expect("the new refresh token works");
}

/// An access-token store before whose writes the grant is revoked, as a revocation request
/// racing a refresh would; it remembers what was written.
struct RevokedMeanwhile {
    inner: Arc<MemoryStore>,
    armed: AtomicBool,
    written: std::sync::Mutex<Vec<TokenDigest>>,
}

#[async_trait]
impl AccessTokenStore for RevokedMeanwhile {
    async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.inner
                .revoke_refresh_grant(r.grant_id, T0 + 3600)
                .await?;
            self.inner
                .revoke_access_grant(r.grant_id, T0 + 3600)
                .await?;
        }
        self.written.lock().unwrap().push(*t);
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

#[tokio::test]
async fn grant_revoked_during_a_refresh_leaves_no_live_token_rfc7009_2_1() {
    let mem = Arc::new(MemoryStore::new());
    let racing = Arc::new(RevokedMeanwhile {
        inner: mem.clone(),
        armed: AtomicBool::new(false),
        written: Default::default(),
    });
    let f = fixture_over(mem.clone(), racing.clone());
    let code = f.code("web", "a", true).await;
    let first = f.redeem_web(&code).await.unwrap();
    let refresh = first.refresh_token.expect("refresh token issued");

    racing.armed.store(true, Ordering::SeqCst);
    let outcome = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=web"),
            None,
        )
        .await;
    assert!(
        outcome.is_err(),
        "a refresh racing the revocation of its grant issues nothing usable: {outcome:?}"
    );
    assert!(!f.access_ok(&first.access_token).await);
    let written = racing.written.lock().unwrap().clone();
    for digest in &written {
        assert!(
            mem.access(digest).await.unwrap().is_none(),
            "no access token of the revoked grant stays live"
        );
    }
}

#[tokio::test]
async fn lookup_during_outage_is_temporarily_unavailable_not_invalid_token() {
    let (flaky, f) = flaky_fixture();
    let t = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    flaky.down.store(true, Ordering::SeqCst);
    let e = twisted_oauth2::endpoint::resource::lookup(&f.server, &t.access_token, "a")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
    flaky.down.store(false, Ordering::SeqCst);
    assert!(f.access_ok(&t.access_token).await);
}

#[tokio::test]
async fn failed_token_write_does_not_burn_the_device_approval_rfc8628_3_5() {
    use twisted_oauth2::device::{self, GRANT_TYPE};
    use twisted_oauth2::endpoint::device_authorization;
    use twisted_oauth2::endpoint::FormRequest;

    let mut cfg = config();
    cfg.device.enabled = true;
    cfg.clients
        .push(client("cli", None, &[GRANT_TYPE, "refresh_token"], &["a"]));
    let mem = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        inner: mem.clone(),
        down: AtomicBool::new(false),
    });
    let f = fixture_over_with(cfg, mem, flaky.clone());
    let a = device_authorization::handle(
        &f.server,
        FormRequest {
            body: b"client_id=cli&scope=a",
            content_type: Some(FORM),
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (code, _) = device::pending(&f.server, &a.user_code)
        .await
        .unwrap()
        .expect("pending");
    let scope = twisted_oauth2::Scope::parse_param("a").unwrap();
    assert!(device::approve(&f.server, &code, "alice", scope)
        .await
        .unwrap());
    let poll = format!(
        "grant_type={GRANT_TYPE}&client_id=cli&device_code={}",
        a.device_code
    );

    flaky.down.store(true, Ordering::SeqCst);
    let e = f.token(&poll, None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);

    // The retry comes at once (no slow_down for the poll that failed) and gets the tokens.
    flaky.down.store(false, Ordering::SeqCst);
    let t = f
        .token(&poll, None)
        .await
        .expect("the approval survived the outage");
    assert!(f.access_ok(&t.access_token).await);
    f.clock.advance(10);
    let e = f.token(&poll, None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant, "then it is spent");
}
