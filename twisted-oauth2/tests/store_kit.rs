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
    let mut s = Stores::from_backend(Arc::new(MemoryStore::new()));
    s.device_codes = Some(Arc::new(
        twisted_oauth2::device::MemoryDeviceCodes::default(),
    ));
    s
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
        RefreshTokenStore, ReuseWindow, RevokedJtiStore, Rotation, SigningKeyRecord,
        SigningKeyStore, Stores, StoresBuilder, TokenRecord,
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

    /// Creation as a look, a yield, then an overwrite: concurrent creators of one slot each
    /// get their own key back.
    #[derive(Default)]
    struct RacyKeys(std::sync::Mutex<std::collections::HashMap<(String, i64), SigningKeyRecord>>);

    impl RacyKeys {
        fn lock(
            &self,
        ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, i64), SigningKeyRecord>>
        {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[async_trait]
    impl SigningKeyStore for RacyKeys {
        async fn create_key_if_absent(
            &self,
            key: SigningKeyRecord,
        ) -> Result<SigningKeyRecord, StorageError> {
            let slot = (key.alg.clone(), key.generation);
            let existing = self.lock().get(&slot).cloned();
            if let Some(k) = existing {
                return Ok(k);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.lock().insert(slot, key.clone());
            Ok(key)
        }
        async fn published_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StorageError> {
            let mut v: Vec<_> = self
                .lock()
                .values()
                .filter(|k| k.published_until > now)
                .cloned()
                .collect();
            v.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
            Ok(v)
        }
        async fn purge_keys(&self, now: i64) -> Result<u64, StorageError> {
            let mut keys = self.lock();
            let before = keys.len();
            keys.retain(|_, k| k.published_until > now);
            Ok((before - keys.len()) as u64)
        }
    }

    /// A denylist whose revocation overwrites the kept `exp` (an earlier one shortens it).
    #[derive(Default)]
    struct OverwritingDenylist(dashmap::DashMap<String, i64>);

    #[async_trait]
    impl RevokedJtiStore for OverwritingDenylist {
        async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StorageError> {
            twisted_oauth2::storage::check_jti(jti)?;
            self.0.insert(jti.to_owned(), exp);
            Ok(())
        }
        async fn is_jti_revoked(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
            Ok(self.0.get(jti).is_some_and(|e| *e > now))
        }
        async fn revoked_jtis(
            &self,
            now: i64,
            limit: usize,
        ) -> Result<Vec<(String, i64)>, StorageError> {
            let mut v: Vec<_> = self
                .0
                .iter()
                .filter(|e| *e.value() > now)
                .map(|e| (e.key().clone(), *e.value()))
                .collect();
            v.sort_by_key(|e| std::cmp::Reverse(e.1));
            v.truncate(limit);
            Ok(v)
        }
        async fn purge_revoked_jtis(&self, now: i64) -> Result<u64, StorageError> {
            let before = self.0.len();
            self.0.retain(|_, e| *e > now);
            Ok((before - self.0.len()) as u64)
        }
    }

    fn with_slots(keys: Arc<dyn SigningKeyStore>, jtis: Arc<dyn RevokedJtiStore>) -> Stores {
        let built = StoresBuilder::default()
            .backend(Arc::new(MemoryStore::new()))
            .slot::<dyn SigningKeyStore>(keys)
            .slot::<dyn RevokedJtiStore>(jtis)
            .build();
        match built {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_non_atomic_key_creation_fails_the_concurrent_creators_case() {
        let s = with_slots(
            Arc::new(RacyKeys::default()),
            Arc::new(OverwritingDenylist::default()),
        );
        assert!(
            case("signing_key_concurrent_creators_of_one_generation_all_get_one_record")
                .is_some_and(|c| fails(c, s)),
            "the kit must catch a key creation with two winners"
        );
    }

    #[test]
    fn a_denylist_where_an_earlier_exp_overwrites_fails_the_later_exp_case() {
        let memory = Arc::new(MemoryStore::new());
        let s = with_slots(memory, Arc::new(OverwritingDenylist::default()));
        assert!(
            case("revoked_jti_later_exp_wins").is_some_and(|c| fails(c, s)),
            "the kit must catch a revocation that shortens a kept exp"
        );
        // The same double passes the other denylist cases: the case above is what catches it.
        let s = with_slots(
            Arc::new(MemoryStore::new()),
            Arc::new(OverwritingDenylist::default()),
        );
        assert!(case("revoked_jti_is_revoked_until_its_exp").is_some_and(|c| !fails(c, s)));
    }
}

/// The key slots of every built-in backend: [`Stores::from_backend`], the
/// [`StoresBuilder::backend`](twisted_oauth2::storage::StoresBuilder::backend) and the URL
/// connector fill them, and the backend's `Purge::purge_expired` also purges retired keys
/// and expired denylist entries.
mod key_slots {
    use std::sync::Arc;

    use twisted_oauth2::storage::memory::MemoryStore;
    use twisted_oauth2::storage::{
        RevokedJtiStore, SigningKeyRecord, SigningKeyStore, Stores, StoresBuilder,
    };
    use twisted_oauth2::testkit::{digest, now};

    /// Both slots filled, and `purge_expired` removes a retired key and an expired jti.
    async fn slots_filled_and_purged(name: &str, s: Stores) {
        let (Some(keys), Some(jtis)) = (
            s.get::<dyn SigningKeyStore>(),
            s.get::<dyn RevokedJtiStore>(),
        ) else {
            panic!("{name}: the key slots are not filled");
        };
        let t = now();
        let generation = i64::from(rand::random::<u32>()) << 16;
        let retired = SigningKeyRecord::new(
            digest().to_hex(),
            "EdDSA",
            generation,
            "{}",
            vec![1, 2, 3],
            t - 100,
            t - 100,
            t - 50,
            t - 10,
        );
        let created = keys.create_key_if_absent(retired.clone()).await;
        assert_eq!(created.ok().as_ref(), Some(&retired), "{name}");
        let jti = digest().to_hex();
        assert!(jtis.revoke_jti(&jti, t - 10).await.is_ok(), "{name}");
        assert!(s.purge.purge_expired(t).await.is_ok(), "{name}");
        assert!(
            !matches!(jtis.is_jti_revoked(&jti, t - 20).await, Ok(true)),
            "{name}: purge_expired kept an expired jti"
        );
        let mut fresh = retired.clone();
        fresh.kid = digest().to_hex();
        let again = keys.create_key_if_absent(fresh.clone()).await;
        assert_eq!(
            again.ok().as_ref(),
            Some(&fresh),
            "{name}: purge_expired kept a retired key"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_fills_the_key_slots_by_every_route() {
        slots_filled_and_purged(
            "from_backend",
            Stores::from_backend(Arc::new(MemoryStore::new())),
        )
        .await;
        let built = StoresBuilder::default()
            .backend(Arc::new(MemoryStore::new()))
            .require::<dyn SigningKeyStore>("signing_keys")
            .require::<dyn RevokedJtiStore>("revoked_jtis")
            .build();
        match built {
            Ok(s) => slots_filled_and_purged("StoresBuilder::backend", s).await,
            Err(e) => panic!("{e}"),
        }
        match twisted_oauth2::storage::connect("memory").await {
            Ok(s) => slots_filled_and_purged("connect(memory)", s).await,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_fills_the_key_slots_and_purges_them() {
        slots_filled_and_purged("sqlite", crate::stores::sqlite().await).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_fills_the_key_slots_and_purges_them() {
        if let Some(s) = crate::stores::postgres().await {
            slots_filled_and_purged("postgres", s).await;
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_fills_the_key_slots_and_purges_them() {
        if let Some(s) = crate::stores::redis().await {
            slots_filled_and_purged("redis", s).await;
        }
    }

    /// A slot set before `backend` is kept; one set after replaces the backend's.
    #[test]
    fn backend_fills_only_empty_key_slots() {
        let own: Arc<dyn SigningKeyStore> = Arc::new(MemoryStore::new());
        let s = StoresBuilder::default()
            .slot::<dyn SigningKeyStore>(own.clone())
            .backend(Arc::new(MemoryStore::new()))
            .build();
        let kept = s.ok().and_then(|s| s.get::<dyn SigningKeyStore>());
        assert!(kept.is_some_and(|k| Arc::ptr_eq(&k, &own)));
    }

    /// A backend of another type fills no key slot, and a format that requires one makes
    /// the build (the launch) fail naming it; without the requirement it builds.
    #[test]
    fn a_backend_without_the_key_slots_is_missing_them_only_when_required() {
        let stores = Stores::from_backend(Arc::new(MemoryStore::new()));
        let mut plain = Stores::new(
            stores.clients.clone(),
            stores.codes.clone(),
            stores.access.clone(),
            stores.refresh.clone(),
            stores.pending.clone(),
            stores.purge.clone(),
        );
        assert!(plain.get::<dyn SigningKeyStore>().is_none());
        plain.device_codes = None;
        let b = StoresBuilder::from_stores(plain);
        assert!(b.clone().build().is_ok());
        let missing = b
            .require::<dyn RevokedJtiStore>("revoked_jtis")
            .build()
            .err();
        assert_eq!(missing.map(|m| m.0), Some("revoked_jtis".to_owned()));
    }
}
