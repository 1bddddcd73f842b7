//! The store test kit on every backend: memory always; SQLite with feature `sqlite`;
//! PostgreSQL (feature `postgres`) when `TWISTED_OAUTH2_TEST_POSTGRES` is set; Redis
//! (feature `redis`) when `TWISTED_OAUTH2_TEST_REDIS` is set.
//!
//! `cargo test -p twisted-oauth2 --features sqlite,postgres,redis,testkit --test store_kit`
#![cfg(feature = "testkit")]

mod stores;

use std::sync::Arc;

use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::Stores;

async fn memory() -> Stores {
    Stores::from_backend(Arc::new(MemoryStore::new()))
}

mod memory {
    twisted_oauth2::store_test_kit!(super::memory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_counts_every_case_on_memory() {
    let n = twisted_oauth2::testkit::run_all(memory().await).await;
    assert_eq!(n, twisted_oauth2::testkit::CASES.len());
    assert!(n >= 14);
    assert!(twisted_oauth2::testkit::run_case("code_release_allows_retry", memory().await).await);
    assert!(!twisted_oauth2::testkit::run_case("no_such_case", memory().await).await);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    twisted_oauth2::store_test_kit!(crate::stores::sqlite);
}

#[cfg(feature = "sqlite")]
mod sqlite_in_memory {
    async fn stores() -> twisted_oauth2::storage::Stores {
        match twisted_oauth2::storage::connect("sqlite::memory:").await {
            Ok(s) => s,
            Err(e) => panic!("sqlite::memory: {e:?}"),
        }
    }
    twisted_oauth2::store_test_kit!(stores);
}

#[cfg(feature = "postgres")]
mod postgres {
    twisted_oauth2::store_test_kit!(crate::stores::postgres);
}

#[cfg(feature = "redis")]
mod redis {
    twisted_oauth2::store_test_kit!(crate::stores::redis);
}

/// The kit catches a store whose code take is not atomic (read, yield, then write: two
/// concurrent takers both win), one that mixes up access and refresh tokens, and one whose
/// token put checks for a tombstone and writes in two steps (a revocation can run between).
mod kit_catches_broken_stores {
    use std::sync::Arc;

    use async_trait::async_trait;
    use twisted_oauth2::error::StorageError;
    use twisted_oauth2::storage::memory::MemoryStore;
    use twisted_oauth2::storage::{
        AccessTokenStore, CodeRecord, CodeStore, CodeTake, GrantId, RefreshState,
        RefreshTokenStore, ReuseWindow, Rotation, Stores, TokenRecord,
    };
    use twisted_oauth2::token::TokenDigest;

    /// Non-atomic take: looks, yields, then marks.
    struct RacyCodes {
        inner: MemoryStore,
        used: dashmap::DashSet<TokenDigest>,
    }

    #[async_trait]
    impl CodeStore for RacyCodes {
        async fn put_code(&self, c: &TokenDigest, r: &CodeRecord) -> Result<(), StorageError> {
            self.inner.put_code(c, r).await
        }
        async fn take_code(&self, c: &TokenDigest) -> Result<CodeTake, StorageError> {
            let was_used = self.used.contains(c);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.used.insert(*c);
            let take = self.inner.take_code(c).await?;
            self.inner.release_code(c).await?;
            Ok(match take {
                CodeTake::Taken(r) | CodeTake::Replayed(r) if !was_used => CodeTake::Taken(r),
                CodeTake::Taken(r) | CodeTake::Replayed(r) => CodeTake::Replayed(r),
                other => other,
            })
        }
        async fn release_code(&self, c: &TokenDigest) -> Result<(), StorageError> {
            self.used.remove(c);
            self.inner.release_code(c).await
        }
    }

    /// Answers access lookups from the refresh store too.
    struct LeakyAccess(Arc<MemoryStore>);

    #[async_trait]
    impl AccessTokenStore for LeakyAccess {
        async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
            self.0.put_access(t, r).await
        }
        async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
            if let Some(r) = self.0.access(t).await? {
                return Ok(Some(r));
            }
            Ok(match self.0.refresh(t).await? {
                RefreshState::Active(r) => Some(r),
                _ => None,
            })
        }
        async fn revoke_access(
            &self,
            t: &TokenDigest,
        ) -> Result<Option<TokenRecord>, StorageError> {
            self.0.revoke_access(t).await
        }
        async fn revoke_access_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
            self.0.revoke_access_grant(g, until).await
        }
        async fn revoke_access_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
            self.0.revoke_access_client(c, until).await
        }
    }

    /// An access store with tombstones whose check and write are not atomic: it checks,
    /// yields, then writes, so a revocation can slip in between.
    #[derive(Default)]
    struct CheckThenWrite {
        tokens: dashmap::DashMap<TokenDigest, TokenRecord>,
        tombstones: dashmap::DashMap<GrantId, i64>,
    }

    #[async_trait]
    impl AccessTokenStore for CheckThenWrite {
        async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
            if self.tombstones.contains_key(&r.grant_id) {
                return Err(StorageError::GrantRevoked);
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            self.tokens.insert(*t, r.clone());
            Ok(())
        }
        async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
            Ok(self.tokens.get(t).map(|r| r.clone()))
        }
        async fn revoke_access(
            &self,
            t: &TokenDigest,
        ) -> Result<Option<TokenRecord>, StorageError> {
            Ok(self.tokens.remove(t).map(|(_, r)| r))
        }
        async fn revoke_access_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
            self.tombstones.insert(g, until);
            let before = self.tokens.len();
            self.tokens.retain(|_, r| r.grant_id != g);
            Ok((before - self.tokens.len()) as u64)
        }
        async fn revoke_access_client(&self, c: &str, _until: i64) -> Result<u64, StorageError> {
            let before = self.tokens.len();
            self.tokens.retain(|_, r| &*r.client_id != c);
            Ok((before - self.tokens.len()) as u64)
        }
    }

    fn fails(case: fn(Stores) -> twisted_oauth2::testkit::CaseFuture, stores: Stores) -> bool {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            twisted_oauth2::testkit::run_case_with(move || async move { stores }, case)
        }));
        r.is_err()
    }

    #[test]
    fn racy_code_take_fails_the_concurrency_case() {
        let mem = Arc::new(MemoryStore::new());
        let mut s = Stores::from_backend(mem);
        s.codes = Arc::new(RacyCodes {
            inner: MemoryStore::new(),
            used: Default::default(),
        });
        let case = twisted_oauth2::testkit::CASES
            .iter()
            .find(|(n, _)| *n == "code_concurrent_take_has_one_winner")
            .map(|(_, c)| *c);
        assert!(
            case.is_some_and(|c| fails(c, s)),
            "the kit must catch a racy take"
        );
        let _ = Rotation::Unknown;
    }

    #[test]
    fn access_store_answering_refresh_tokens_fails_the_separation_case() {
        let mem = Arc::new(MemoryStore::new());
        let mut s = Stores::from_backend(mem.clone());
        s.access = Arc::new(LeakyAccess(mem));
        let case = twisted_oauth2::testkit::CASES
            .iter()
            .find(|(n, _)| *n == "access_and_refresh_are_separate")
            .map(|(_, c)| *c);
        assert!(
            case.is_some_and(|c| fails(c, s)),
            "the kit must catch mixed stores"
        );
    }

    #[test]
    fn non_atomic_tombstone_check_fails_the_revocation_race_case() {
        let mut s = Stores::from_backend(Arc::new(MemoryStore::new()));
        s.access = Arc::new(CheckThenWrite::default());
        let case = twisted_oauth2::testkit::CASES
            .iter()
            .find(|(n, _)| {
                *n == "concurrent_writes_and_revocations_leave_no_token_of_a_revoked_grant"
            })
            .map(|(_, c)| *c);
        assert!(
            case.is_some_and(|c| fails(c, s)),
            "the kit must catch a put that can outrun a revocation"
        );
    }

    /// `CheckThenWrite` revokes a client's tokens without a client tombstone: the kit's
    /// client revocation case catches the later write it lets through.
    #[test]
    fn client_revocation_without_a_tombstone_fails_the_client_revocation_case() {
        let mut s = Stores::from_backend(Arc::new(MemoryStore::new()));
        s.access = Arc::new(CheckThenWrite::default());
        let case = twisted_oauth2::testkit::CASES
            .iter()
            .find(|(n, _)| {
                *n == "client_revocation_removes_every_token_of_the_client_and_refuses_new_ones"
            })
            .map(|(_, c)| *c);
        assert!(
            case.is_some_and(|c| fails(c, s)),
            "the kit must catch a client revocation that lets new tokens in"
        );
    }

    /// A refresh store that says it supports the reuse interval but never closes the
    /// window (or one that claims support and rotates strictly): the kit's reuse interval
    /// cases catch both.
    struct ReuseWindowBroken {
        inner: Arc<MemoryStore>,
        never_closes: bool,
    }

    #[async_trait]
    impl RefreshTokenStore for ReuseWindowBroken {
        async fn put_refresh(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
            self.inner.put_refresh(t, r).await
        }
        async fn refresh(&self, t: &TokenDigest) -> Result<RefreshState, StorageError> {
            self.inner.refresh(t).await
        }
        async fn rotate_refresh(
            &self,
            old: &TokenDigest,
            new: &TokenDigest,
            r: &TokenRecord,
        ) -> Result<Rotation, StorageError> {
            self.inner.rotate_refresh(old, new, r).await
        }
        fn supports_reuse_interval(&self) -> bool {
            true
        }
        async fn rotate_refresh_within(
            &self,
            old: &TokenDigest,
            new: &TokenDigest,
            r: &TokenRecord,
            window: ReuseWindow,
        ) -> Result<Rotation, StorageError> {
            if self.never_closes {
                let open = ReuseWindow::new(window.now, 1_000_000);
                self.inner.rotate_refresh_within(old, new, r, open).await
            } else {
                self.inner.rotate_refresh(old, new, r).await
            }
        }
        async fn revoke_refresh(
            &self,
            t: &TokenDigest,
        ) -> Result<Option<TokenRecord>, StorageError> {
            self.inner.revoke_refresh(t).await
        }
        async fn revoke_refresh_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
            self.inner.revoke_refresh_grant(g, until).await
        }
        async fn revoke_refresh_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
            self.inner.revoke_refresh_client(c, until).await
        }
    }

    fn case(name: &str) -> Option<twisted_oauth2::testkit::Case> {
        twisted_oauth2::testkit::CASES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    #[test]
    fn a_reuse_window_that_never_closes_fails_the_after_the_interval_case() {
        let mem = Arc::new(MemoryStore::new());
        let mut s = Stores::from_backend(mem.clone());
        s.refresh = Arc::new(ReuseWindowBroken {
            inner: mem,
            never_closes: true,
        });
        assert!(
            case("refresh_reuse_after_the_reuse_interval_is_refused").is_some_and(|c| fails(c, s)),
            "the kit must catch a reuse window that never closes"
        );
    }

    #[test]
    fn a_store_claiming_reuse_support_but_rotating_strictly_fails_the_within_case() {
        let mem = Arc::new(MemoryStore::new());
        let mut s = Stores::from_backend(mem.clone());
        s.refresh = Arc::new(ReuseWindowBroken {
            inner: mem,
            never_closes: false,
        });
        assert!(
            case("refresh_concurrent_rotations_within_the_reuse_interval_all_succeed")
                .is_some_and(|c| fails(c, s)),
            "the kit must catch a store that claims support and rotates strictly"
        );
    }
}
