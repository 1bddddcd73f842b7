//! A failing store answers with the RFC error and loses nothing (RFC 6749 §5.2).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use twisted_oauth2::error::StorageError;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{AccessTokenStore, GrantId, Stores, TokenRecord};
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
    async fn revoke_access_grant(&self, g: GrantId) -> Result<u64, StorageError> {
        self.inner.revoke_access_grant(g).await
    }
}

#[tokio::test]
async fn failed_token_write_does_not_burn_the_code_and_answers_temporarily_unavailable() {
    let mem = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        inner: mem.clone(),
        down: AtomicBool::new(false),
    });
    let mut stores = Stores::from_backend(mem);
    stores.access = flaky.clone();
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = AuthorizationServer::builder(config())
        .stores(stores)
        .clock(clock.clone())
        .generator(Arc::new(SequentialTokenGenerator::default()))
        .build()
        .unwrap();
    let f = Fixture {
        server: Arc::new(server),
        clock,
    };
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
async fn lookup_during_outage_is_temporarily_unavailable_not_invalid_token() {
    let mem = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        inner: mem.clone(),
        down: AtomicBool::new(false),
    });
    let mut stores = Stores::from_backend(mem);
    stores.access = flaky.clone();
    let server = AuthorizationServer::builder(config())
        .stores(stores)
        .build()
        .unwrap();
    let f = Fixture {
        server: Arc::new(server),
        clock: Arc::new(twisted_oauth2::clock::FixedClock::at(T0)),
    };
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
