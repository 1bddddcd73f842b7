//! The store test kit (feature `testkit`): the behavioural suite every set of [`Stores`]
//! must pass, whichever backend holds them.
//!
//! Run it against your own store in one call from any Tokio test:
//!
//! ```no_run
//! # async fn my_stores() -> twisted_oauth2::storage::Stores { unimplemented!() }
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_store_passes_the_kit() {
//!     let passed = twisted_oauth2::testkit::run_all(my_stores().await).await;
//!     assert_eq!(passed, twisted_oauth2::testkit::CASES.len());
//! }
//! ```
//!
//! or get one `#[test]` per case (named after the case, so a failure names the broken
//! behaviour) with [`store_test_kit!`](crate::store_test_kit), given an async function
//! that returns the [`Stores`] (or `Option<Stores>`, `None` to skip with a notice):
//!
//! ```no_run
//! async fn my_stores() -> twisted_oauth2::storage::Stores {
//!     # unimplemented!()
//!     // connect to the store under test
//! }
//!
//! mod my_store_kit {
//!     twisted_oauth2::store_test_kit!(super::my_stores);
//! }
//! # fn main() {}
//! ```
//!
//! Every case uses fresh random digests and grant ids, so a store with shared state (one
//! database used by several test runs) can run it repeatedly and in parallel. Expiry is
//! judged on the system clock: records are written with `expires_at` relative to now, as
//! a server with the system clock would.
//!
//! A failing case panics with the case name and what went wrong.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::client::Client;
use crate::error::StorageError;
use crate::pkce::{ChallengeMethod, CodeChallenge};
use crate::scope::Scope;
use crate::storage::{
    ClientRecord, ClientRegistry, CodeRecord, CodeTake, GrantId, PendingRecord, RefreshState,
    ReuseWindow, Rotation, SigningKeyRecord, Stores, TokenRecord,
};
use crate::token::TokenDigest;

/// The future a [`Case`] returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case of the kit: takes the stores under test, panics on failure.
pub type Case = fn(Stores) -> CaseFuture;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the kit, by name, in the order [`run_all`] runs them.
        pub const CASES: &[(&str, Case)] = &[
            $((stringify!($name), |s| Box::pin(cases::$name(s)))),*
        ];

        /// Expands to one `#[test]` per kit case (see the [module docs](crate::testkit)).
        #[doc(hidden)]
        #[macro_export]
        macro_rules! __store_test_kit_cases {
            ($make:path) => {
                $(
                    #[test]
                    fn $name() {
                        $crate::testkit::run_case_with($make, $crate::testkit::cases::$name);
                    }
                )*
            };
        }
    };
}

cases!(
    access_put_get_revoke,
    access_revoke_by_grant,
    refresh_put_get_revoke,
    refresh_revoke_by_grant_includes_rotated,
    access_and_refresh_are_separate,
    records_round_trip_exactly,
    code_taken_once_then_replayed,
    code_concurrent_take_has_one_winner,
    code_release_allows_retry,
    refresh_rotation_outcomes,
    refresh_concurrent_rotation_has_one_winner,
    refresh_concurrent_rotations_within_the_reuse_interval_all_succeed,
    refresh_reuse_after_the_reuse_interval_is_refused,
    refresh_concurrent_rotation_without_a_reuse_interval_has_one_winner,
    pending_peek_then_take_once,
    pending_concurrent_take_has_one_winner,
    purge_removes_expired_keeps_live,
    token_write_for_a_revoked_grant_is_refused,
    rotation_for_a_revoked_grant_is_refused,
    tombstone_expires_and_is_purged,
    concurrent_writes_and_revocations_leave_no_token_of_a_revoked_grant,
    clients_create_read_update_delete,
    client_create_conflicts_on_an_existing_id,
    client_concurrent_creates_have_one_winner,
    purge_removes_expired_clients,
    client_revocation_removes_every_token_of_the_client_and_refuses_new_ones,
    client_tombstone_expires_and_is_purged,
    concurrent_writes_and_client_revocations_leave_no_token_of_the_client,
    device_poll_answers_in_order_and_takes_an_approval_once,
    device_concurrent_pollers_after_approval_have_one_winner,
    device_decision_is_taken_once_and_user_codes_are_unique,
    device_release_gives_a_taken_approval_back_once,
    access_grant_tombstone_reads_back,
    signing_key_concurrent_creators_of_one_generation_all_get_one_record,
    signing_keys_of_different_generations_and_algorithms_coexist,
    published_keys_exclude_retired_and_are_ordered_by_signs_from_then_kid,
    purge_keys_removes_retired_keys_only,
    revoked_jti_is_revoked_until_its_exp,
    revoked_jti_later_exp_wins,
    revoked_jtis_are_bounded_by_the_limit_latest_expiry_first,
    purge_revoked_jtis_removes_expired_keeps_live,
);

/// Generates one `#[test]` per kit case in the current module, each building a fresh
/// multi-threaded Tokio runtime and calling `$make().await` for the stores under test.
/// `$make` is the path of an async function returning [`Stores`] or `Option<Stores>`
/// (`None` skips the case; print why).
///
/// ```no_run
/// async fn stores() -> Option<twisted_oauth2::storage::Stores> {
///     let url = std::env::var("MY_STORE_URL").ok()?;
///     twisted_oauth2::storage::connect(&url).await.ok()
/// }
/// mod kit {
///     twisted_oauth2::store_test_kit!(super::stores);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_test_kit {
    ($make:path) => {
        $crate::__store_test_kit_cases!($make);
    };
}

/// What a kit factory may return: the stores, or `None` to skip.
pub trait KitStores {
    /// The stores, or `None` to skip.
    fn into_stores(self) -> Option<Stores>;
}

impl KitStores for Stores {
    fn into_stores(self) -> Option<Stores> {
        Some(self)
    }
}

impl KitStores for Option<Stores> {
    fn into_stores(self) -> Option<Stores> {
        self
    }
}

/// Runs every case against `stores`, in order; returns how many passed (all of them:
/// a failure panics, naming the case).
pub async fn run_all(stores: Stores) -> usize {
    for (name, case) in CASES {
        log::debug!("twisted-oauth2 store kit: {name}");
        case(stores.clone()).await;
    }
    CASES.len()
}

/// Runs the case called `name` against `stores`; `false` if there is no such case.
pub async fn run_case(name: &str, stores: Stores) -> bool {
    match CASES.iter().find(|(n, _)| *n == name) {
        Some((_, case)) => {
            case(stores).await;
            true
        }
        None => false,
    }
}

/// Builds a two-worker Tokio runtime, makes the stores with `make` and runs `case` on
/// them: the body of each test that [`store_test_kit!`](crate::store_test_kit) generates.
pub fn run_case_with<M, MF, K, CF>(make: M, case: fn(Stores) -> CF)
where
    M: FnOnce() -> MF,
    MF: Future<Output = K>,
    K: KitStores,
    CF: Future<Output = ()>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("store kit: cannot build a Tokio runtime: {e}"),
    };
    rt.block_on(async move {
        if let Some(stores) = make().await.into_stores() {
            case(stores).await;
        }
    });
}

/// The current Unix time in seconds (the kit's clock).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh random digest.
pub fn digest() -> TokenDigest {
    TokenDigest(rand::random())
}

/// A token record of `grant` that expires `ttl` seconds from now.
pub fn token_record(grant: GrantId, ttl: i64) -> TokenRecord {
    let now = now();
    TokenRecord {
        client_id: Arc::from("kit-client"),
        scope: Scope::from_tokens(["read", "write"]).unwrap_or_default(),
        subject: Some(Arc::from("kit-user")),
        extra: None,
        grant_id: grant,
        issued_at: now,
        expires_at: now + ttl,
        audience: vec![Arc::from("https://api.example/mcp")],
    }
}

/// A token record of `client` in `grant` that expires `ttl` seconds from now.
pub fn client_token_record(client: &str, grant: GrantId, ttl: i64) -> TokenRecord {
    TokenRecord {
        client_id: Arc::from(client),
        ..token_record(grant, ttl)
    }
}

/// A code record of `grant` that expires `ttl` seconds from now.
pub fn code_record(grant: GrantId, ttl: i64) -> CodeRecord {
    CodeRecord {
        client_id: Arc::from("kit-client"),
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: true,
        scope: Scope::from_tokens(["read"]).unwrap_or_default(),
        subject: Some(Arc::from("kit-user")),
        extra: None,
        challenge: Some(CodeChallenge {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: ChallengeMethod::S256,
        }),
        grant_id: grant,
        expires_at: now() + ttl,
        audience: vec![
            Arc::from("https://api.example/mcp"),
            Arc::from("https://other.example/"),
        ],
    }
}

/// A pending request that expires `ttl` seconds from now.
pub fn pending_record(ttl: i64) -> PendingRecord {
    PendingRecord {
        client_id: Arc::from("kit-client"),
        response_type: crate::grant_type::ResponseType::Code,
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: false,
        scope: Scope::from_tokens(["read"]).unwrap_or_default(),
        state: Some("kit-state".into()),
        challenge: None,
        csrf_token: "kit-csrf".into(),
        binding: digest(),
        expires_at: now() + ttl,
        audience: vec![Arc::from("https://api.example/mcp")],
    }
}

/// A fresh random client id.
pub fn client_id() -> String {
    format!("kit-client-{:016x}", rand::random::<u64>())
}

/// A confidential client with this id that sets every field a [`Client`] holds, so a
/// store that drops one fails [`cases::clients_create_read_update_delete`].
pub fn full_client(id: &str) -> Client {
    let built = Client::builder(id)
        .secret("kit-secret")
        .name("Kit client")
        .redirect_uri("https://client.example/cb")
        .redirect_uri("http://127.0.0.1/cb")
        .grant_type("authorization_code")
        .grant_type("refresh_token")
        .grant_type("client_credentials")
        .scope("read write")
        .allow_insecure_redirect(true)
        .may_introspect(true)
        .logo_uri("https://client.example/logo.png")
        .verified(false)
        .registered_at(now())
        .expires_at(now() + 86_400)
        .registration(crate::client::RegistrationInfo::new(
            crate::client::SecretDigest::of("kit-registration-token").to_hex(),
            "client_secret_basic",
            Some("read".into()),
        ))
        .build();
    match built {
        Ok(c) => c,
        Err(e) => panic!("store kit: the kit's client is invalid: {e}"),
    }
}

/// The registry of the stores under test, or `None` (with a notice) when the client store
/// is read-only.
fn registry(case: &str, s: &Stores) -> Option<std::sync::Arc<dyn ClientRegistry>> {
    let r = s.clients.clone().as_registry();
    if r.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "store kit `{case}`: skipped: the client store is not a ClientRegistry"
        );
    }
    r
}

/// Unwraps a store result, failing the case with `what` on error.
fn ok<T, E: std::fmt::Display>(case: &str, what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store kit `{case}`: {what} failed: {e}"),
    }
}

/// Asserts that a token write was refused with [`StorageError::GrantRevoked`].
fn refused<T: std::fmt::Debug>(case: &str, what: &str, r: Result<T, StorageError>) {
    match r {
        Err(StorageError::GrantRevoked) => {}
        other => panic!(
            "store kit `{case}`: {what} for a revoked grant gave {other:?}, not GrantRevoked"
        ),
    }
}

/// The cases, one function each. Each takes the stores under test and panics on failure.
pub mod cases {
    use super::*;

    const HOUR: i64 = 3600;

    /// Put, get and revoke an access token; revoking again finds nothing.
    pub async fn access_put_get_revoke(s: Stores) {
        let c = "access_put_get_revoke";
        let (t, rec) = (digest(), token_record(GrantId::random(), HOUR));
        assert_eq!(
            ok(c, "access", s.access.access(&t).await),
            None,
            "{c}: unknown"
        );
        ok(c, "put_access", s.access.put_access(&t, &rec).await);
        assert_eq!(
            ok(c, "access", s.access.access(&t).await).as_ref(),
            Some(&rec),
            "{c}"
        );
        let revoked = ok(c, "revoke_access", s.access.revoke_access(&t).await);
        assert_eq!(
            revoked.as_ref(),
            Some(&rec),
            "{c}: revoke returns the record"
        );
        assert_eq!(
            ok(c, "access", s.access.access(&t).await),
            None,
            "{c}: revoked"
        );
        let again = ok(c, "revoke_access", s.access.revoke_access(&t).await);
        assert_eq!(again, None, "{c}: second revoke finds nothing");
    }

    /// Revoking a grant removes its access tokens and no others, and reports how many.
    pub async fn access_revoke_by_grant(s: Stores) {
        let c = "access_revoke_by_grant";
        let (g, h) = (GrantId::random(), GrantId::random());
        let mine: Vec<_> = (0..3).map(|_| digest()).collect();
        let other = digest();
        for t in &mine {
            ok(
                c,
                "put_access",
                s.access.put_access(t, &token_record(g, HOUR)).await,
            );
        }
        ok(
            c,
            "put_access",
            s.access.put_access(&other, &token_record(h, HOUR)).await,
        );
        let n = ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 3, "{c}: count");
        for t in &mine {
            assert_eq!(
                ok(c, "access", s.access.access(t).await),
                None,
                "{c}: revoked"
            );
        }
        assert!(
            ok(c, "access", s.access.access(&other).await).is_some(),
            "{c}: another grant's token survives"
        );
        let n = ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 0, "{c}: nothing left");
    }

    /// A grant revocation's access tombstone reads back with its time (the later one when
    /// revoked twice); a grant never revoked has none. A self-contained format keeps its
    /// revocations this way ([`AccessTokenStore::access_grant_tombstone`](crate::storage::AccessTokenStore::access_grant_tombstone)).
    pub async fn access_grant_tombstone_reads_back(s: Stores) {
        let c = "access_grant_tombstone_reads_back";
        let (g, h) = (GrantId::random(), GrantId::random());
        assert_eq!(
            ok(
                c,
                "access_grant_tombstone",
                s.access.access_grant_tombstone(g).await
            ),
            None,
            "{c}: never revoked"
        );
        let until = now() + HOUR;
        ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, until).await,
        );
        let read = ok(
            c,
            "access_grant_tombstone",
            s.access.access_grant_tombstone(g).await,
        );
        // A store with native expiry may round to its own clock: allow a few seconds.
        assert!(
            read.is_some_and(|t| (t - until).abs() <= 5),
            "{c}: reads back {read:?}, laid until {until}"
        );
        ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, until + HOUR).await,
        );
        let read = ok(
            c,
            "access_grant_tombstone",
            s.access.access_grant_tombstone(g).await,
        );
        assert!(
            read.is_some_and(|t| (t - (until + HOUR)).abs() <= 5),
            "{c}: the later time is kept, read {read:?}"
        );
        assert_eq!(
            ok(
                c,
                "access_grant_tombstone",
                s.access.access_grant_tombstone(h).await
            ),
            None,
            "{c}: another grant has none"
        );
    }

    /// Put, read and revoke a refresh token.
    pub async fn refresh_put_get_revoke(s: Stores) {
        let c = "refresh_put_get_revoke";
        let (t, rec) = (digest(), token_record(GrantId::random(), HOUR));
        let st = ok(c, "refresh", s.refresh.refresh(&t).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: unknown");
        ok(c, "put_refresh", s.refresh.put_refresh(&t, &rec).await);
        let st = ok(c, "refresh", s.refresh.refresh(&t).await);
        assert_eq!(st, RefreshState::Active(rec.clone()), "{c}: active");
        let revoked = ok(c, "revoke_refresh", s.refresh.revoke_refresh(&t).await);
        assert_eq!(revoked, Some(rec), "{c}: revoke returns the record");
        let st = ok(c, "refresh", s.refresh.refresh(&t).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: revoked");
        let again = ok(c, "revoke_refresh", s.refresh.revoke_refresh(&t).await);
        assert_eq!(again, None, "{c}: second revoke finds nothing");
    }

    /// Revoking a grant removes its whole rotation family, rotated-out tokens included.
    pub async fn refresh_revoke_by_grant_includes_rotated(s: Stores) {
        let c = "refresh_revoke_by_grant_includes_rotated";
        let (g, h) = (GrantId::random(), GrantId::random());
        let (r1, r2, other) = (digest(), digest(), digest());
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r1, &token_record(g, HOUR)).await,
        );
        let rot = s
            .refresh
            .rotate_refresh(&r1, &r2, &token_record(g, HOUR))
            .await;
        assert_eq!(ok(c, "rotate_refresh", rot), Rotation::Rotated, "{c}");
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&other, &token_record(h, HOUR)).await,
        );
        let n = ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 2, "{c}: the rotated-out and the current token");
        for t in [&r1, &r2] {
            let st = ok(c, "refresh", s.refresh.refresh(t).await);
            assert_eq!(st, RefreshState::Unknown, "{c}: revoked");
        }
        let st = ok(c, "refresh", s.refresh.refresh(&other).await);
        assert!(
            matches!(st, RefreshState::Active(_)),
            "{c}: other grant survives"
        );
    }

    /// Access and refresh tokens live apart: a digest stored as one is unknown as the
    /// other, and revoking a grant's access tokens leaves its refresh tokens.
    pub async fn access_and_refresh_are_separate(s: Stores) {
        let c = "access_and_refresh_are_separate";
        let g = GrantId::random();
        let (a, r) = (digest(), digest());
        ok(
            c,
            "put_access",
            s.access.put_access(&a, &token_record(g, HOUR)).await,
        );
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r, &token_record(g, HOUR)).await,
        );
        assert_eq!(
            ok(c, "access", s.access.access(&r).await),
            None,
            "{c}: refresh as access"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&a).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: access as refresh");
        let n = ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 1, "{c}: only the access token");
        let st = ok(c, "refresh", s.refresh.refresh(&r).await);
        assert!(
            matches!(st, RefreshState::Active(_)),
            "{c}: refresh token kept"
        );
        let n = ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 1, "{c}: then the refresh token");
    }

    /// Every field of every record comes back exactly, including optional ones, extra
    /// JSON and non-ASCII text.
    pub async fn records_round_trip_exactly(s: Stores) {
        let c = "records_round_trip_exactly";
        let g = GrantId(u128::MAX - 7);
        let mut tr = token_record(g, HOUR);
        tr.subject = Some(Arc::from("usér ✓ \"quoted\""));
        tr.extra = Some(Arc::new(serde_json::json!({
            "role": "admin", "n": 42, "nested": {"list": [1, 2.5, null, true]}
        })));
        tr.scope = Scope::from_tokens(["a", "b:c", "https://api.example/x"]).unwrap_or_default();
        let t = digest();
        ok(c, "put_access", s.access.put_access(&t, &tr).await);
        assert_eq!(
            ok(c, "access", s.access.access(&t).await),
            Some(tr.clone()),
            "{c}: access"
        );
        let mut bare = token_record(GrantId(0), HOUR);
        bare.subject = None;
        bare.scope = Scope::empty();
        let r = digest();
        ok(c, "put_refresh", s.refresh.put_refresh(&r, &bare).await);
        let st = ok(c, "refresh", s.refresh.refresh(&r).await);
        assert_eq!(st, RefreshState::Active(bare), "{c}: refresh");
        let mut cr = code_record(g, 60);
        cr.extra = tr.extra.clone();
        let k = digest();
        ok(c, "put_code", s.codes.put_code(&k, &cr).await);
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(got, CodeTake::Taken(cr), "{c}: code");
        let mut pr = pending_record(600);
        pr.challenge = Some(CodeChallenge {
            challenge: "plain-verifier-plain-verifier-plain-verifier".into(),
            method: ChallengeMethod::Plain,
        });
        pr.state = Some("ünïcode & spaces".into());
        let p = digest();
        ok(c, "put_pending", s.pending.put_pending(&p, &pr).await);
        assert_eq!(
            ok(c, "pending", s.pending.pending(&p).await),
            Some(pr),
            "{c}: pending"
        );
    }

    /// A code is taken once; then it is a replay (with its record) until it expires.
    pub async fn code_taken_once_then_replayed(s: Stores) {
        let c = "code_taken_once_then_replayed";
        let (k, rec) = (digest(), code_record(GrantId::random(), 60));
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(got, CodeTake::Unknown, "{c}: unknown");
        ok(c, "put_code", s.codes.put_code(&k, &rec).await);
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(got, CodeTake::Taken(rec.clone()), "{c}: first take");
        for _ in 0..2 {
            let got = ok(c, "take_code", s.codes.take_code(&k).await);
            assert_eq!(got, CodeTake::Replayed(rec.clone()), "{c}: replay");
        }
    }

    /// Sixteen concurrent takers of one code: exactly one gets it, the others see a replay.
    pub async fn code_concurrent_take_has_one_winner(s: Stores) {
        let c = "code_concurrent_take_has_one_winner";
        let (k, rec) = (digest(), code_record(GrantId::random(), 60));
        ok(c, "put_code", s.codes.put_code(&k, &rec).await);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let codes = s.codes.clone();
                tokio::spawn(async move { codes.take_code(&k).await })
            })
            .collect();
        let (mut taken, mut replayed) = (0, 0);
        for t in tasks {
            match ok(c, "take_code", ok(c, "task", t.await)) {
                CodeTake::Taken(r) => {
                    assert_eq!(r, rec, "{c}");
                    taken += 1;
                }
                CodeTake::Replayed(_) => replayed += 1,
                other => panic!("store kit `{c}`: unexpected {other:?}"),
            }
        }
        assert_eq!((taken, replayed), (1, 15), "{c}: exactly one winner");
    }

    /// A released code can be taken again (a failed token write must not burn it);
    /// releasing an unknown code creates nothing.
    pub async fn code_release_allows_retry(s: Stores) {
        let c = "code_release_allows_retry";
        let (k, rec) = (digest(), code_record(GrantId::random(), 60));
        ok(c, "put_code", s.codes.put_code(&k, &rec).await);
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(got, CodeTake::Taken(rec.clone()), "{c}: first take");
        ok(c, "release_code", s.codes.release_code(&k).await);
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(
            got,
            CodeTake::Taken(rec.clone()),
            "{c}: taken again after release"
        );
        let got = ok(c, "take_code", s.codes.take_code(&k).await);
        assert_eq!(got, CodeTake::Replayed(rec), "{c}: then replayed");
        let unknown = digest();
        ok(c, "release_code", s.codes.release_code(&unknown).await);
        let got = ok(c, "take_code", s.codes.take_code(&unknown).await);
        assert_eq!(got, CodeTake::Unknown, "{c}: release creates nothing");
    }

    /// Rotation: `Rotated` once (old becomes rotated-out, new active), then
    /// `AlreadyRotated`; `Unknown` for an unknown token; losers store nothing.
    pub async fn refresh_rotation_outcomes(s: Stores) {
        let c = "refresh_rotation_outcomes";
        let g = GrantId::random();
        let (r1, r2, r3, r4) = (digest(), digest(), digest(), digest());
        let (rec1, rec2) = (token_record(g, HOUR), token_record(g, 2 * HOUR));
        ok(c, "put_refresh", s.refresh.put_refresh(&r1, &rec1).await);
        let rot = ok(
            c,
            "rotate_refresh",
            s.refresh.rotate_refresh(&r1, &r2, &rec2).await,
        );
        assert_eq!(rot, Rotation::Rotated, "{c}: first rotation");
        let st = ok(c, "refresh", s.refresh.refresh(&r1).await);
        assert_eq!(st, RefreshState::Rotated(rec1), "{c}: old is rotated out");
        let st = ok(c, "refresh", s.refresh.refresh(&r2).await);
        assert_eq!(st, RefreshState::Active(rec2.clone()), "{c}: new is active");
        let rot = ok(
            c,
            "rotate_refresh",
            s.refresh.rotate_refresh(&r1, &r3, &rec2).await,
        );
        assert_eq!(rot, Rotation::AlreadyRotated, "{c}: second rotation");
        let st = ok(c, "refresh", s.refresh.refresh(&r3).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: loser's token not stored");
        let rot = ok(
            c,
            "rotate_refresh",
            s.refresh.rotate_refresh(&digest(), &r4, &rec2).await,
        );
        assert_eq!(rot, Rotation::Unknown, "{c}: unknown token");
        let st = ok(c, "refresh", s.refresh.refresh(&r4).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: nothing stored for unknown");
        let rot = ok(
            c,
            "rotate_refresh",
            s.refresh.rotate_refresh(&r2, &r3, &rec2).await,
        );
        assert_eq!(rot, Rotation::Rotated, "{c}: the new token rotates in turn");
    }

    /// Sixteen concurrent rotations of one refresh token: one `Rotated`, the rest
    /// `AlreadyRotated`, and only the winner's new token exists.
    pub async fn refresh_concurrent_rotation_has_one_winner(s: Stores) {
        let c = "refresh_concurrent_rotation_has_one_winner";
        let g = GrantId::random();
        let old = digest();
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&old, &token_record(g, HOUR)).await,
        );
        let news: Vec<_> = (0..16).map(|_| digest()).collect();
        let tasks: Vec<_> = news
            .iter()
            .map(|n| {
                let (store, n) = (s.refresh.clone(), *n);
                let rec = token_record(g, HOUR);
                tokio::spawn(async move { store.rotate_refresh(&old, &n, &rec).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(ok(c, "rotate_refresh", ok(c, "task", t.await)));
        }
        let won = outcomes.iter().filter(|o| **o == Rotation::Rotated).count();
        let lost = outcomes
            .iter()
            .filter(|o| **o == Rotation::AlreadyRotated)
            .count();
        assert_eq!((won, lost), (1, 15), "{c}: exactly one winner");
        let mut active = 0;
        for (n, o) in news.iter().zip(&outcomes) {
            match ok(c, "refresh", s.refresh.refresh(n).await) {
                RefreshState::Active(_) => {
                    assert_eq!(*o, Rotation::Rotated, "{c}: only the winner's token");
                    active += 1;
                }
                RefreshState::Unknown => {}
                other => panic!("store kit `{c}`: unexpected {other:?}"),
            }
        }
        assert_eq!(active, 1, "{c}: one new token");
    }

    /// Concurrent rotations of one refresh token with `rotate_refresh_within`, inside the
    /// window. `n` tasks; returns each outcome with its new token.
    async fn rotate_concurrently(
        c: &str,
        s: &Stores,
        old: TokenDigest,
        g: GrantId,
        window: ReuseWindow,
        n: usize,
    ) -> Vec<(TokenDigest, Rotation)> {
        let news: Vec<_> = (0..n).map(|_| digest()).collect();
        let tasks: Vec<_> = news
            .iter()
            .map(|n| {
                let (store, n) = (s.refresh.clone(), *n);
                let rec = token_record(g, HOUR);
                tokio::spawn(
                    async move { store.rotate_refresh_within(&old, &n, &rec, window).await },
                )
            })
            .collect();
        let mut outcomes = Vec::new();
        for (n, t) in news.into_iter().zip(tasks) {
            outcomes.push((n, ok(c, "rotate_refresh_within", ok(c, "task", t.await))));
        }
        outcomes
    }

    /// Sixteen concurrent rotations of one refresh token inside a 60-second reuse
    /// interval: one `Rotated`, fifteen `WithinReuseInterval`, every new token active, the
    /// old one rotated out; a later use inside the window (the window does not slide with
    /// it) succeeds too. A store without reuse interval support
    /// (`supports_reuse_interval` false) must answer strictly: one winner, the rest
    /// `AlreadyRotated`.
    pub async fn refresh_concurrent_rotations_within_the_reuse_interval_all_succeed(s: Stores) {
        let c = "refresh_concurrent_rotations_within_the_reuse_interval_all_succeed";
        let supported = s.refresh.supports_reuse_interval();
        let g = GrantId::random();
        let old = digest();
        let rec = token_record(g, HOUR);
        ok(c, "put_refresh", s.refresh.put_refresh(&old, &rec).await);
        let t = now();
        let outcomes = rotate_concurrently(c, &s, old, g, ReuseWindow::new(t, 60), 16).await;
        let count = |want: &Rotation| outcomes.iter().filter(|(_, o)| o == want).count();
        if !supported {
            assert_eq!(
                (count(&Rotation::Rotated), count(&Rotation::AlreadyRotated)),
                (1, 15),
                "{c}: a store without reuse interval support rotates strictly"
            );
            return;
        }
        assert_eq!(
            (
                count(&Rotation::Rotated),
                count(&Rotation::WithinReuseInterval)
            ),
            (1, 15),
            "{c}: one rotation, the others inside the interval"
        );
        for (n, _) in &outcomes {
            let st = ok(c, "refresh", s.refresh.refresh(n).await);
            assert!(
                matches!(st, RefreshState::Active(ref r) if r.grant_id == g),
                "{c}: every new token is active in the family, got {st:?}"
            );
        }
        let st = ok(c, "refresh", s.refresh.refresh(&old).await);
        assert_eq!(
            st,
            RefreshState::Rotated(rec),
            "{c}: the old token stays rotated out"
        );
        // 59 seconds after the rotation: still inside; at 60 (the window measured from the
        // first rotation, not from the uses inside it) outside.
        let late = outcomes_of(c, &s, old, g, ReuseWindow::new(t + 59, 60)).await;
        assert_eq!(late.1, Rotation::WithinReuseInterval, "{c}: at 59 s");
        let after = outcomes_of(c, &s, old, g, ReuseWindow::new(t + 60, 60)).await;
        assert_eq!(after.1, Rotation::AlreadyRotated, "{c}: at 60 s");
        let st = ok(c, "refresh", s.refresh.refresh(&after.0).await);
        assert_eq!(
            st,
            RefreshState::Unknown,
            "{c}: nothing stored after the window"
        );
        // Every token of the family is still there (the store revokes nothing itself).
        for (n, _) in outcomes.iter().chain([&late]) {
            let st = ok(c, "refresh", s.refresh.refresh(n).await);
            assert!(matches!(st, RefreshState::Active(_)), "{c}: family kept");
        }
    }

    /// One `rotate_refresh_within` with a fresh new token.
    async fn outcomes_of(
        c: &str,
        s: &Stores,
        old: TokenDigest,
        g: GrantId,
        window: ReuseWindow,
    ) -> (TokenDigest, Rotation) {
        let n = digest();
        let rot = s
            .refresh
            .rotate_refresh_within(&old, &n, &token_record(g, HOUR), window)
            .await;
        (n, ok(c, "rotate_refresh_within", rot))
    }

    /// Outside the window a rotated-out token is reuse: `AlreadyRotated` and nothing stored,
    /// whether the window has passed, the token was rotated by a strict rotation (whose
    /// time is not recorded), or the interval is 0. An unknown token is `Unknown`; a
    /// revoked family refuses a use inside the window (`GrantRevoked`, nothing stored).
    pub async fn refresh_reuse_after_the_reuse_interval_is_refused(s: Stores) {
        let c = "refresh_reuse_after_the_reuse_interval_is_refused";
        let g = GrantId::random();
        let t = now();
        let (a, b) = (digest(), digest());
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&a, &token_record(g, HOUR)).await,
        );
        let rot = s
            .refresh
            .rotate_refresh_within(&a, &b, &token_record(g, HOUR), ReuseWindow::new(t, 30))
            .await;
        assert_eq!(
            ok(c, "rotate_refresh_within", rot),
            Rotation::Rotated,
            "{c}"
        );
        let (n, rot) = outcomes_of(c, &s, a, g, ReuseWindow::new(t + 31, 30)).await;
        assert_eq!(rot, Rotation::AlreadyRotated, "{c}: after the window");
        let st = ok(c, "refresh", s.refresh.refresh(&n).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: nothing stored");
        let (_, rot) = outcomes_of(c, &s, a, g, ReuseWindow::new(t, 0)).await;
        assert_eq!(rot, Rotation::AlreadyRotated, "{c}: an interval of 0");
        // Rotated by a strict rotation: no time recorded, never inside a window.
        let (x, y) = (digest(), digest());
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&x, &token_record(g, HOUR)).await,
        );
        let rot = s
            .refresh
            .rotate_refresh(&x, &y, &token_record(g, HOUR))
            .await;
        assert_eq!(ok(c, "rotate_refresh", rot), Rotation::Rotated, "{c}");
        let (_, rot) = outcomes_of(c, &s, x, g, ReuseWindow::new(now(), 60)).await;
        assert_eq!(
            rot,
            Rotation::AlreadyRotated,
            "{c}: after a strict rotation"
        );
        let (_, rot) = outcomes_of(c, &s, digest(), g, ReuseWindow::new(t, 60)).await;
        assert_eq!(rot, Rotation::Unknown, "{c}: unknown token");
        // A revoked family: refused even inside the window.
        ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(g, now() + HOUR).await,
        );
        let n = digest();
        refused(
            c,
            "rotate_refresh_within",
            s.refresh
                .rotate_refresh_within(&a, &n, &token_record(g, HOUR), ReuseWindow::new(t, 60))
                .await,
        );
        let st = ok(c, "refresh", s.refresh.refresh(&n).await);
        assert_eq!(
            st,
            RefreshState::Unknown,
            "{c}: nothing stored for a revoked family"
        );
    }

    /// With an interval of 0, concurrent `rotate_refresh_within` calls race as strict
    /// rotations do: exactly one `Rotated`, the rest `AlreadyRotated`, one new token.
    pub async fn refresh_concurrent_rotation_without_a_reuse_interval_has_one_winner(s: Stores) {
        let c = "refresh_concurrent_rotation_without_a_reuse_interval_has_one_winner";
        let g = GrantId::random();
        let old = digest();
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&old, &token_record(g, HOUR)).await,
        );
        let outcomes = rotate_concurrently(c, &s, old, g, ReuseWindow::new(now(), 0), 16).await;
        let won = outcomes
            .iter()
            .filter(|(_, o)| *o == Rotation::Rotated)
            .count();
        let lost = outcomes
            .iter()
            .filter(|(_, o)| *o == Rotation::AlreadyRotated)
            .count();
        assert_eq!((won, lost), (1, 15), "{c}: exactly one winner");
        for (n, o) in &outcomes {
            let st = ok(c, "refresh", s.refresh.refresh(n).await);
            match st {
                RefreshState::Active(_) => assert_eq!(*o, Rotation::Rotated, "{c}"),
                RefreshState::Unknown => {}
                other => panic!("store kit `{c}`: unexpected {other:?}"),
            }
        }
    }

    /// A pending request can be read any number of times, then taken once.
    pub async fn pending_peek_then_take_once(s: Stores) {
        let c = "pending_peek_then_take_once";
        let (h, rec) = (digest(), pending_record(600));
        assert_eq!(
            ok(c, "pending", s.pending.pending(&h).await),
            None,
            "{c}: unknown"
        );
        ok(c, "put_pending", s.pending.put_pending(&h, &rec).await);
        for _ in 0..2 {
            let got = ok(c, "pending", s.pending.pending(&h).await);
            assert_eq!(got.as_ref(), Some(&rec), "{c}: peek does not consume");
        }
        let got = ok(c, "take_pending", s.pending.take_pending(&h).await);
        assert_eq!(got, Some(rec), "{c}: take");
        let got = ok(c, "take_pending", s.pending.take_pending(&h).await);
        assert_eq!(got, None, "{c}: single use");
        assert_eq!(
            ok(c, "pending", s.pending.pending(&h).await),
            None,
            "{c}: gone"
        );
    }

    /// Sixteen concurrent takers of one pending request: exactly one gets it.
    pub async fn pending_concurrent_take_has_one_winner(s: Stores) {
        let c = "pending_concurrent_take_has_one_winner";
        let h = digest();
        ok(
            c,
            "put_pending",
            s.pending.put_pending(&h, &pending_record(600)).await,
        );
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = s.pending.clone();
                tokio::spawn(async move { store.take_pending(&h).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            if ok(c, "take_pending", ok(c, "task", t.await)).is_some() {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{c}: exactly one winner");
    }

    /// After a purge at `now`, expired codes, tokens and pending requests are gone and
    /// live ones are kept. (Stores with native expiry may drop expired entries earlier.)
    pub async fn purge_removes_expired_keeps_live(s: Stores) {
        let c = "purge_removes_expired_keeps_live";
        let g = GrantId::random();
        let (a_old, a_new, r_old, r_new) = (digest(), digest(), digest(), digest());
        let (k_old, k_new, p_old, p_new) = (digest(), digest(), digest(), digest());
        ok(
            c,
            "put_access",
            s.access.put_access(&a_old, &token_record(g, -10)).await,
        );
        ok(
            c,
            "put_access",
            s.access.put_access(&a_new, &token_record(g, HOUR)).await,
        );
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r_old, &token_record(g, -10)).await,
        );
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r_new, &token_record(g, HOUR)).await,
        );
        ok(
            c,
            "put_code",
            s.codes.put_code(&k_old, &code_record(g, -10)).await,
        );
        ok(
            c,
            "put_code",
            s.codes.put_code(&k_new, &code_record(g, 60)).await,
        );
        ok(
            c,
            "put_pending",
            s.pending.put_pending(&p_old, &pending_record(-10)).await,
        );
        ok(
            c,
            "put_pending",
            s.pending.put_pending(&p_new, &pending_record(600)).await,
        );
        ok(c, "purge_expired", s.purge.purge_expired(now()).await);
        assert_eq!(
            ok(c, "access", s.access.access(&a_old).await),
            None,
            "{c}: access"
        );
        assert!(
            ok(c, "access", s.access.access(&a_new).await).is_some(),
            "{c}: live access"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r_old).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: refresh");
        let st = ok(c, "refresh", s.refresh.refresh(&r_new).await);
        assert!(matches!(st, RefreshState::Active(_)), "{c}: live refresh");
        let got = ok(c, "take_code", s.codes.take_code(&k_old).await);
        assert_eq!(got, CodeTake::Unknown, "{c}: code");
        let got = ok(c, "take_code", s.codes.take_code(&k_new).await);
        assert!(matches!(got, CodeTake::Taken(_)), "{c}: live code");
        assert_eq!(
            ok(c, "pending", s.pending.pending(&p_old).await),
            None,
            "{c}: pending"
        );
        let got = ok(c, "pending", s.pending.pending(&p_new).await);
        assert!(got.is_some(), "{c}: live pending");
    }

    /// After a grant revocation, `put_access` / `put_refresh` of the grant store nothing and
    /// fail with `GrantRevoked`; other grants are unaffected; revoking again is fine.
    pub async fn token_write_for_a_revoked_grant_is_refused(s: Stores) {
        let c = "token_write_for_a_revoked_grant_is_refused";
        let (g, h) = (GrantId::random(), GrantId::random());
        let (a_before, r_before) = (digest(), digest());
        ok(
            c,
            "put_access",
            s.access.put_access(&a_before, &token_record(g, HOUR)).await,
        );
        ok(
            c,
            "put_refresh",
            s.refresh
                .put_refresh(&r_before, &token_record(g, HOUR))
                .await,
        );
        let n = ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 1, "{c}: the refresh token written before");
        let n = ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, now() + HOUR).await,
        );
        assert_eq!(n, 1, "{c}: the access token written before");
        let (a, r) = (digest(), digest());
        refused(
            c,
            "put_access",
            s.access.put_access(&a, &token_record(g, HOUR)).await,
        );
        refused(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r, &token_record(g, HOUR)).await,
        );
        assert_eq!(
            ok(c, "access", s.access.access(&a).await),
            None,
            "{c}: refused access token not stored"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r).await);
        assert_eq!(
            st,
            RefreshState::Unknown,
            "{c}: refused refresh token not stored"
        );
        // Another grant is unaffected.
        let (a2, r2) = (digest(), digest());
        ok(
            c,
            "put_access",
            s.access.put_access(&a2, &token_record(h, HOUR)).await,
        );
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r2, &token_record(h, HOUR)).await,
        );
        assert!(
            ok(c, "access", s.access.access(&a2).await).is_some(),
            "{c}: other grant's access token"
        );
        // Revoking again (a second replay) is fine and still refuses.
        let n = ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(g, now() + 2 * HOUR).await,
        );
        assert_eq!(n, 0, "{c}: nothing left to revoke");
        refused(
            c,
            "put_access",
            s.access.put_access(&digest(), &token_record(g, HOUR)).await,
        );
    }

    /// After a family revocation, rotating a token of the family changes nothing (the old
    /// token is not marked rotated, the new one is not stored) and fails with
    /// `GrantRevoked`.
    pub async fn rotation_for_a_revoked_grant_is_refused(s: Stores) {
        let c = "rotation_for_a_revoked_grant_is_refused";
        let (g, h) = (GrantId::random(), GrantId::random());
        let (r1, r2) = (digest(), digest());
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r1, &token_record(g, HOUR)).await,
        );
        ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(g, now() + HOUR).await,
        );
        refused(
            c,
            "rotate_refresh",
            s.refresh
                .rotate_refresh(&r1, &r2, &token_record(g, HOUR))
                .await,
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r2).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: new token not stored");
        // A token still present (here one of another grant) is left as it was when the
        // new record names the revoked family.
        let (k1, k2) = (digest(), digest());
        let kept = token_record(h, HOUR);
        ok(c, "put_refresh", s.refresh.put_refresh(&k1, &kept).await);
        refused(
            c,
            "rotate_refresh",
            s.refresh
                .rotate_refresh(&k1, &k2, &token_record(g, HOUR))
                .await,
        );
        let st = ok(c, "refresh", s.refresh.refresh(&k1).await);
        assert_eq!(
            st,
            RefreshState::Active(kept),
            "{c}: old token not rotated out"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&k2).await);
        assert_eq!(st, RefreshState::Unknown, "{c}: new token not stored");
    }

    /// A tombstone lasts until the time given: one already past is dropped by a purge
    /// (stores with native expiry may never keep it) and the grant's tokens are accepted
    /// again; a live one survives the purge.
    pub async fn tombstone_expires_and_is_purged(s: Stores) {
        let c = "tombstone_expires_and_is_purged";
        let (old, live) = (GrantId::random(), GrantId::random());
        ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(old, now() - 10).await,
        );
        ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(old, now() - 10).await,
        );
        ok(
            c,
            "revoke_access_grant",
            s.access.revoke_access_grant(live, now() + HOUR).await,
        );
        ok(
            c,
            "revoke_refresh_grant",
            s.refresh.revoke_refresh_grant(live, now() + HOUR).await,
        );
        ok(c, "purge_expired", s.purge.purge_expired(now()).await);
        let (a, r) = (digest(), digest());
        ok(
            c,
            "put_access after the tombstone expired",
            s.access.put_access(&a, &token_record(old, HOUR)).await,
        );
        ok(
            c,
            "put_refresh after the tombstone expired",
            s.refresh.put_refresh(&r, &token_record(old, HOUR)).await,
        );
        assert!(
            ok(c, "access", s.access.access(&a).await).is_some(),
            "{c}: stored after expiry"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r).await);
        assert!(
            matches!(st, RefreshState::Active(_)),
            "{c}: stored after expiry"
        );
        refused(
            c,
            "put_access",
            s.access
                .put_access(&digest(), &token_record(live, HOUR))
                .await,
        );
        refused(
            c,
            "put_refresh",
            s.refresh
                .put_refresh(&digest(), &token_record(live, HOUR))
                .await,
        );
    }

    /// 200 rounds, each on a fresh grant with one refresh token: an access put, a refresh
    /// put and a rotation race a revocation of the grant (refresh family first, then access
    /// tokens, as the core does), as tasks on the runtime. Each write may succeed or be
    /// refused, but once all are done no token of the grant is left.
    pub async fn concurrent_writes_and_revocations_leave_no_token_of_a_revoked_grant(s: Stores) {
        let c = "concurrent_writes_and_revocations_leave_no_token_of_a_revoked_grant";
        let mut survivors = Vec::new();
        for round in 0..200 {
            let g = GrantId::random();
            let (r0, r1, a, r) = (digest(), digest(), digest(), digest());
            ok(
                c,
                "put_refresh",
                s.refresh.put_refresh(&r0, &token_record(g, HOUR)).await,
            );
            let revoke = {
                let s = s.clone();
                async move {
                    if round % 2 == 1 {
                        tokio::task::yield_now().await;
                    }
                    // Far beyond any purge another case of the kit runs meanwhile on the
                    // same store (`purge_expired(now + 2 h)`), which would lift a
                    // shorter tombstone early and let a racing write through.
                    s.refresh
                        .revoke_refresh_grant(g, now() + 1000 * HOUR)
                        .await?;
                    s.access.revoke_access_grant(g, now() + 1000 * HOUR).await?;
                    Ok::<_, StorageError>(())
                }
            };
            let put_a = {
                let s = s.clone();
                async move { s.access.put_access(&a, &token_record(g, HOUR)).await }
            };
            let put_r = {
                let s = s.clone();
                async move { s.refresh.put_refresh(&r, &token_record(g, HOUR)).await }
            };
            let rotate = {
                let s = s.clone();
                async move {
                    s.refresh
                        .rotate_refresh(&r0, &r1, &token_record(g, HOUR))
                        .await
                        .map(|_| ())
                }
            };
            let tasks = [
                tokio::spawn(put_a),
                tokio::spawn(revoke),
                tokio::spawn(put_r),
                tokio::spawn(rotate),
            ];
            for t in tasks {
                match ok(c, "task", t.await) {
                    Ok(()) | Err(StorageError::GrantRevoked) => {}
                    Err(e) => panic!("store kit `{c}`: round {round}: {e}"),
                }
            }
            let live_a = ok(c, "access", s.access.access(&a).await).is_some();
            let mut live_r = Vec::new();
            for t in [&r0, &r1, &r] {
                let st = ok(c, "refresh", s.refresh.refresh(t).await);
                live_r.push(st != RefreshState::Unknown);
            }
            if live_a || live_r.contains(&true) {
                survivors.push((round, live_a, live_r));
            }
        }
        assert!(
            survivors.is_empty(),
            "{c}: tokens of a revoked grant survived in {} of 200 rounds \
             (round, access, [old, rotated-in, put refresh]): {survivors:?}",
            survivors.len()
        );
    }

    /// Revoking a client removes every access and refresh token issued to it, in every
    /// grant (rotated-out refresh tokens included), and leaves other clients' tokens;
    /// afterwards puts and rotations of the client, in a grant it had or a new one, are
    /// refused with `GrantRevoked`, while another client's are not.
    pub async fn client_revocation_removes_every_token_of_the_client_and_refuses_new_ones(
        s: Stores,
    ) {
        let c = "client_revocation_removes_every_token_of_the_client_and_refuses_new_ones";
        let (victim, other) = (client_id(), client_id());
        let (g1, g2, g3) = (GrantId::random(), GrantId::random(), GrantId::random());
        let (a1, a2, a_other) = (digest(), digest(), digest());
        let (r1, r1b, r2, r_other) = (digest(), digest(), digest(), digest());
        let rec = |g| client_token_record(&victim, g, HOUR);
        ok(c, "put_access", s.access.put_access(&a1, &rec(g1)).await);
        ok(c, "put_access", s.access.put_access(&a2, &rec(g2)).await);
        ok(c, "put_refresh", s.refresh.put_refresh(&r1, &rec(g1)).await);
        let rot = ok(
            c,
            "rotate_refresh",
            s.refresh.rotate_refresh(&r1, &r1b, &rec(g1)).await,
        );
        assert_eq!(rot, Rotation::Rotated, "{c}: rotated");
        ok(c, "put_refresh", s.refresh.put_refresh(&r2, &rec(g2)).await);
        let kept = client_token_record(&other, g3, HOUR);
        ok(c, "put_access", s.access.put_access(&a_other, &kept).await);
        ok(
            c,
            "put_refresh",
            s.refresh.put_refresh(&r_other, &kept).await,
        );
        let nr = ok(
            c,
            "revoke_refresh_client",
            s.refresh.revoke_refresh_client(&victim, now() + HOUR).await,
        );
        let na = ok(
            c,
            "revoke_access_client",
            s.access.revoke_access_client(&victim, now() + HOUR).await,
        );
        assert_eq!(na, 2, "{c}: access tokens revoked");
        assert_eq!(
            nr, 3,
            "{c}: refresh tokens revoked (rotated-out one included)"
        );
        for t in [&a1, &a2] {
            assert_eq!(
                ok(c, "access", s.access.access(t).await),
                None,
                "{c}: access token of the client is gone"
            );
        }
        for t in [&r1, &r1b, &r2] {
            let st = ok(c, "refresh", s.refresh.refresh(t).await);
            assert_eq!(st, RefreshState::Unknown, "{c}: refresh token is gone");
        }
        assert_eq!(
            ok(c, "access", s.access.access(&a_other).await).as_ref(),
            Some(&kept),
            "{c}: another client's access token stays"
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r_other).await);
        assert_eq!(
            st,
            RefreshState::Active(kept.clone()),
            "{c}: another client's refresh token stays"
        );
        let fresh = GrantId::random();
        for g in [g1, fresh] {
            refused(
                c,
                "put_access of a revoked client",
                s.access.put_access(&digest(), &rec(g)).await,
            );
            refused(
                c,
                "put_refresh of a revoked client",
                s.refresh.put_refresh(&digest(), &rec(g)).await,
            );
        }
        // A rotation of another client's token into a record of the revoked client.
        refused(
            c,
            "rotate_refresh of a revoked client",
            s.refresh
                .rotate_refresh(&r_other, &digest(), &client_token_record(&victim, g3, HOUR))
                .await,
        );
        let st = ok(c, "refresh", s.refresh.refresh(&r_other).await);
        assert_eq!(
            st,
            RefreshState::Active(kept.clone()),
            "{c}: a refused rotation leaves the old token"
        );
        ok(
            c,
            "put_access of another client",
            s.access
                .put_access(&digest(), &client_token_record(&other, fresh, HOUR))
                .await,
        );
        ok(
            c,
            "put_refresh of another client",
            s.refresh
                .put_refresh(&digest(), &client_token_record(&other, fresh, HOUR))
                .await,
        );
    }

    /// A client tombstone lasts until the time given: one already past is dropped by a
    /// purge (or never kept) and the client's tokens are accepted again; a live one
    /// survives the purge.
    pub async fn client_tombstone_expires_and_is_purged(s: Stores) {
        let c = "client_tombstone_expires_and_is_purged";
        let (old, live) = (client_id(), client_id());
        for (id, until) in [(&old, now() - 10), (&live, now() + 4 * HOUR)] {
            ok(
                c,
                "revoke_access_client",
                s.access.revoke_access_client(id, until).await,
            );
            ok(
                c,
                "revoke_refresh_client",
                s.refresh.revoke_refresh_client(id, until).await,
            );
        }
        ok(c, "purge_expired", s.purge.purge_expired(now()).await);
        let g = GrantId::random();
        let (a, r) = (digest(), digest());
        ok(
            c,
            "put_access after the client tombstone expired",
            s.access
                .put_access(&a, &client_token_record(&old, g, HOUR))
                .await,
        );
        ok(
            c,
            "put_refresh after the client tombstone expired",
            s.refresh
                .put_refresh(&r, &client_token_record(&old, g, HOUR))
                .await,
        );
        assert!(
            ok(c, "access", s.access.access(&a).await).is_some(),
            "{c}: stored after expiry"
        );
        refused(
            c,
            "put_access",
            s.access
                .put_access(&digest(), &client_token_record(&live, g, HOUR))
                .await,
        );
        refused(
            c,
            "put_refresh",
            s.refresh
                .put_refresh(&digest(), &client_token_record(&live, g, HOUR))
                .await,
        );
    }

    /// 100 rounds, each with a fresh client holding one refresh token: an access put in a
    /// new grant, a refresh put in another new grant and a rotation of the refresh token
    /// race a revocation of the client (refresh tokens first, then access tokens, as the
    /// core does). Each write may succeed or be refused, but once all are done no token of
    /// the client is left.
    pub async fn concurrent_writes_and_client_revocations_leave_no_token_of_the_client(s: Stores) {
        let c = "concurrent_writes_and_client_revocations_leave_no_token_of_the_client";
        let mut survivors = Vec::new();
        for round in 0..100 {
            let id: Arc<str> = Arc::from(client_id());
            let (g0, g1, g2) = (GrantId::random(), GrantId::random(), GrantId::random());
            let (r0, r1, a, r) = (digest(), digest(), digest(), digest());
            let rec = {
                let id = id.clone();
                move |g| client_token_record(&id, g, HOUR)
            };
            ok(c, "put_refresh", s.refresh.put_refresh(&r0, &rec(g0)).await);
            let revoke = {
                let (s, id) = (s.clone(), id.clone());
                async move {
                    if round % 2 == 1 {
                        tokio::task::yield_now().await;
                    }
                    // Far beyond any purge another case runs meanwhile on the same store.
                    s.refresh
                        .revoke_refresh_client(&id, now() + 1000 * HOUR)
                        .await?;
                    s.access
                        .revoke_access_client(&id, now() + 1000 * HOUR)
                        .await?;
                    Ok::<_, StorageError>(())
                }
            };
            let put_a = {
                let (s, rec) = (s.clone(), rec(g1));
                async move { s.access.put_access(&a, &rec).await }
            };
            let put_r = {
                let (s, rec) = (s.clone(), rec(g2));
                async move { s.refresh.put_refresh(&r, &rec).await }
            };
            let rotate = {
                let (s, rec) = (s.clone(), rec(g0));
                async move { s.refresh.rotate_refresh(&r0, &r1, &rec).await.map(|_| ()) }
            };
            let tasks = [
                tokio::spawn(put_a),
                tokio::spawn(revoke),
                tokio::spawn(put_r),
                tokio::spawn(rotate),
            ];
            for t in tasks {
                match ok(c, "task", t.await) {
                    Ok(()) | Err(StorageError::GrantRevoked) => {}
                    Err(e) => panic!("store kit `{c}`: round {round}: {e}"),
                }
            }
            let live_a = ok(c, "access", s.access.access(&a).await).is_some();
            let mut live_r = Vec::new();
            for t in [&r0, &r1, &r] {
                let st = ok(c, "refresh", s.refresh.refresh(t).await);
                live_r.push(st != RefreshState::Unknown);
            }
            if live_a || live_r.contains(&true) {
                survivors.push((round, live_a, live_r));
            }
        }
        assert!(
            survivors.is_empty(),
            "{c}: tokens of a revoked client survived in {} of 100 rounds \
             (round, access, [old, rotated-in, put refresh]): {survivors:?}",
            survivors.len()
        );
    }

    /// A client whose registration expired is gone after a purge (or at once, for a store
    /// that expires keys itself); one without expiry, or expiring later, stays. Skipped if
    /// the client store is not a [`ClientRegistry`].
    pub async fn purge_removes_expired_clients(s: Stores) {
        let c = "purge_removes_expired_clients";
        let Some(reg) = registry(c, &s) else { return };
        let build = |id: &str, expires: Option<i64>| {
            let b = Client::builder(id).redirect_uri("https://client.example/cb");
            let b = b.grant_type("authorization_code");
            let b = match expires {
                Some(t) => b.expires_at(t),
                None => b,
            };
            match b.build() {
                Ok(c) => c,
                Err(e) => panic!("store kit: the kit's client is invalid: {e}"),
            }
        };
        let (gone, later, never) = (client_id(), client_id(), client_id());
        ok(
            c,
            "create_client",
            reg.create_client(&build(&later, Some(now() + 3600))).await,
        );
        ok(
            c,
            "create_client",
            reg.create_client(&build(&never, None)).await,
        );
        ok(
            c,
            "create_client",
            reg.create_client(&build(&gone, Some(now() + 3600))).await,
        );
        // Expire `gone` by an update, as a store sees an unused registration age.
        ok(
            c,
            "update_client",
            reg.update_client(&build(&gone, Some(now() - 10))).await,
        );
        ok(c, "purge_expired", s.purge.purge_expired(now()).await);
        assert!(
            ok(c, "client", s.clients.client(&gone).await).is_none(),
            "{c}: an expired client is purged"
        );
        assert!(
            ok(c, "client", s.clients.client(&later).await).is_some(),
            "{c}: a client expiring later stays"
        );
        assert!(
            ok(c, "client", s.clients.client(&never).await).is_some(),
            "{c}: a client without expiry stays"
        );
        // Clearing the expiry keeps a client past its former expiry.
        ok(
            c,
            "update_client",
            reg.update_client(&build(&later, None)).await,
        );
        ok(
            c,
            "purge_expired",
            s.purge.purge_expired(now() + 7200).await,
        );
        assert!(
            ok(c, "client", s.clients.client(&later).await).is_some(),
            "{c}: a cleared expiry is kept"
        );
        for id in [&later, &never] {
            ok(c, "delete_client", reg.delete_client(id).await);
        }
    }

    /// Create, read, update and delete a client; every field survives the store (the secret
    /// as its digest), an update replaces it, a deletion removes it, and updating or
    /// deleting an unknown client reports `false`. Skipped if the client store is not a
    /// [`ClientRegistry`].
    pub async fn clients_create_read_update_delete(s: Stores) {
        let c = "clients_create_read_update_delete";
        let Some(reg) = registry(c, &s) else { return };
        let id = client_id();
        let client = full_client(&id);
        assert!(
            ok(c, "client", s.clients.client(&id).await).is_none(),
            "{c}: unknown"
        );
        ok(c, "create_client", reg.create_client(&client).await);
        let Some(read) = ok(c, "client", s.clients.client(&id).await) else {
            panic!("store kit `{c}`: a created client is not found");
        };
        assert_eq!(
            ClientRecord::from_client(&read),
            ClientRecord::from_client(&client),
            "{c}: round trip"
        );
        assert!(read.verify_secret("kit-secret"), "{c}: secret digest kept");
        assert!(!read.verify_secret("other"), "{c}: secret digest kept");
        let mut changed = ClientRecord::from_client(&client);
        changed.redirect_uris = vec!["https://client.example/other".into()];
        changed.name = None;
        changed.secret_sha256 = None;
        changed.grant_types = vec!["authorization_code".into()];
        changed.verified = true;
        changed.expires_at = None;
        let changed = ok(c, "to_client", changed.to_client());
        assert!(
            ok(c, "update_client", reg.update_client(&changed).await),
            "{c}: update finds the client"
        );
        let Some(read) = ok(c, "client", s.clients.client(&id).await) else {
            panic!("store kit `{c}`: an updated client is not found");
        };
        assert_eq!(
            ClientRecord::from_client(&read),
            ClientRecord::from_client(&changed),
            "{c}: updated"
        );
        assert!(read.is_public(), "{c}: the secret was removed");
        assert!(
            ok(c, "delete_client", reg.delete_client(&id).await),
            "{c}: delete finds the client"
        );
        assert!(
            ok(c, "client", s.clients.client(&id).await).is_none(),
            "{c}: deleted"
        );
        assert!(
            !ok(c, "delete_client", reg.delete_client(&id).await),
            "{c}: second delete finds nothing"
        );
        assert!(
            !ok(c, "update_client", reg.update_client(&changed).await),
            "{c}: update of a deleted client finds nothing"
        );
        assert!(
            ok(c, "client", s.clients.client(&id).await).is_none(),
            "{c}: an update does not create"
        );
    }

    /// Creating a client with an id already stored fails with
    /// [`StorageError::ClientExists`] and leaves the stored client unchanged.
    pub async fn client_create_conflicts_on_an_existing_id(s: Stores) {
        let c = "client_create_conflicts_on_an_existing_id";
        let Some(reg) = registry(c, &s) else { return };
        let id = client_id();
        let first = full_client(&id);
        ok(c, "create_client", reg.create_client(&first).await);
        let second = ok(
            c,
            "build",
            Client::builder(id.as_str())
                .grant_type("refresh_token")
                .build(),
        );
        match reg.create_client(&second).await {
            Err(StorageError::ClientExists) => {}
            other => panic!("store kit `{c}`: a second create gave {other:?}, not ClientExists"),
        }
        let Some(read) = ok(c, "client", s.clients.client(&id).await) else {
            panic!("store kit `{c}`: the first client is gone");
        };
        assert_eq!(
            ClientRecord::from_client(&read),
            ClientRecord::from_client(&first),
            "{c}: the first client stays"
        );
        ok(c, "delete_client", reg.delete_client(&id).await);
    }

    /// Of 16 concurrent creations with one id, exactly one succeeds and the others get
    /// [`StorageError::ClientExists`]; the stored client is the winner's.
    pub async fn client_concurrent_creates_have_one_winner(s: Stores) {
        let c = "client_concurrent_creates_have_one_winner";
        let Some(reg) = registry(c, &s) else { return };
        for round in 0..5 {
            let id = client_id();
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let reg = reg.clone();
                    let client = Client::builder(id.as_str())
                        .name(format!("contender {i}"))
                        .grant_type("refresh_token")
                        .build();
                    tokio::spawn(async move {
                        let client = client.map_err(StorageError::other)?;
                        reg.create_client(&client).await.map(|()| i)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                match ok(c, "task", t.await) {
                    Ok(i) => winners.push(i),
                    Err(StorageError::ClientExists) => {}
                    Err(e) => panic!("store kit `{c}`: round {round}: {e}"),
                }
            }
            assert_eq!(winners.len(), 1, "{c}: round {round}: winners {winners:?}");
            let Some(read) = ok(c, "client", s.clients.client(&id).await) else {
                panic!("store kit `{c}`: round {round}: no client stored");
            };
            assert_eq!(
                read.name(),
                format!("contender {}", winners[0]),
                "{c}: round {round}: the winner's client is stored"
            );
            ok(c, "delete_client", reg.delete_client(&id).await);
        }
    }

    /// The device-code store of `s`, or `None` (with a notice) when it has none: the
    /// device cases run only on stores that hold device codes.
    fn device_store(c: &str, s: &Stores) -> Option<Arc<dyn crate::device::DeviceCodeStore>> {
        let d = s.device_codes.clone();
        if d.is_none() {
            eprintln!("store kit `{c}`: skipped, the stores have no device_codes");
        }
        d
    }

    /// A fresh device request: its digest (hex), user code and record.
    fn device_request(client: &str, ttl: i64) -> (String, String, crate::device::DeviceRecord) {
        let user = crate::device::user_code_from(&digest().to_hex(), 8);
        let record = crate::device::DeviceRecord::new(
            client,
            Scope::parse("read").unwrap_or_else(|_| unreachable!()),
            Vec::new(),
            now() + ttl,
            5,
        );
        (digest().to_hex(), user, record)
    }

    /// RFC 8628 polling on the store: another client changes nothing, a poll sooner than
    /// the interval is `SlowDown` and grows it by 5 s, pending, then after approval the
    /// record is taken once (`Unknown` afterwards); a denied one answers `Denied` once; an
    /// expired one `Expired`.
    pub async fn device_poll_answers_in_order_and_takes_an_approval_once(s: Stores) {
        use crate::device::{DeviceStatus, PollOutcome};
        let c = "device_poll_answers_in_order_and_takes_an_approval_once";
        let Some(d) = device_store(c, &s) else { return };
        let t = now();
        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec.clone()).await),
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "other", t).await),
            PollOutcome::WrongClient,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t).await),
            PollOutcome::Pending,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 1).await),
            PollOutcome::SlowDown,
            "{c}"
        );
        // The interval is 10 s now, from the last poll.
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 6).await),
            PollOutcome::SlowDown,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 21).await),
            PollOutcome::Pending,
            "{c}"
        );
        let found = ok(c, "by_user_code", d.by_user_code(&user, t).await);
        assert_eq!(
            found.map(|r| r.client_id),
            Some(rec.client_id.clone()),
            "{c}"
        );
        let approved = DeviceStatus::Approved {
            subject: "alice".into(),
            scope: rec.scope.clone(),
        };
        assert!(
            ok(c, "decide", d.decide(&user, approved.clone(), t).await),
            "{c}"
        );
        assert!(
            ok(c, "by_user_code", d.by_user_code(&user, t).await).is_none(),
            "{c}: decided"
        );
        match ok(c, "poll", d.poll(&k, "kit-client", t + 60).await) {
            PollOutcome::Approved(r) => assert_eq!(r.status, approved, "{c}"),
            other => panic!("store kit `{c}`: an approved poll gave {other:?}"),
        }
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 120).await),
            PollOutcome::Unknown,
            "{c}: taken"
        );

        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec).await),
            "{c}"
        );
        assert!(
            ok(c, "decide", d.decide(&user, DeviceStatus::Denied, t).await),
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t).await),
            PollOutcome::Denied,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 60).await),
            PollOutcome::Unknown,
            "{c}"
        );

        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec).await),
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 601).await),
            PollOutcome::Expired,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 602).await),
            PollOutcome::Unknown,
            "{c}"
        );
        assert_eq!(
            ok(c, "poll", d.poll(&digest().to_hex(), "kit-client", t).await),
            PollOutcome::Unknown,
            "{c}"
        );
    }

    /// Sixteen concurrent pollers of one approved device code: exactly one is `Approved`.
    pub async fn device_concurrent_pollers_after_approval_have_one_winner(s: Stores) {
        use crate::device::{DeviceStatus, PollOutcome};
        let c = "device_concurrent_pollers_after_approval_have_one_winner";
        let Some(d) = device_store(c, &s) else { return };
        let t = now();
        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec.clone()).await),
            "{c}"
        );
        let approved = DeviceStatus::Approved {
            subject: "alice".into(),
            scope: rec.scope,
        };
        assert!(ok(c, "decide", d.decide(&user, approved, t).await), "{c}");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (d, k) = (d.clone(), k.clone());
                tokio::spawn(async move { d.poll(&k, "kit-client", t).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match ok(c, "task", task.await) {
                Ok(PollOutcome::Approved(_)) => wins += 1,
                Ok(PollOutcome::Unknown) => {}
                Err(StorageError::Unavailable(_)) => {}
                other => panic!("store kit `{c}`: unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1, "{c}: exactly one winner");
    }

    /// A taken approval released (issuance failed) is approved again for the next poll,
    /// once; a pending, an expired or an unknown request releases nothing.
    pub async fn device_release_gives_a_taken_approval_back_once(s: Stores) {
        use crate::device::{DeviceStatus, PollOutcome};
        let c = "device_release_gives_a_taken_approval_back_once";
        let Some(d) = device_store(c, &s) else { return };
        let t = now();
        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec.clone()).await),
            "{c}"
        );
        assert!(
            !ok(c, "release_device", d.release_device(&k, t).await),
            "{c}: a pending request has nothing to release"
        );
        let approved = DeviceStatus::Approved {
            subject: "alice".into(),
            scope: rec.scope,
        };
        assert!(ok(c, "decide", d.decide(&user, approved, t).await), "{c}");
        assert!(
            matches!(
                ok(c, "poll", d.poll(&k, "kit-client", t).await),
                PollOutcome::Approved(_)
            ),
            "{c}: first take"
        );
        assert!(
            ok(c, "release_device", d.release_device(&k, t).await),
            "{c}: released"
        );
        assert!(
            !ok(c, "release_device", d.release_device(&k, t).await),
            "{c}: released once"
        );
        // The retry is not slowed down by the poll that took it.
        match ok(c, "poll", d.poll(&k, "kit-client", t + 1).await) {
            PollOutcome::Approved(r) => assert!(
                matches!(&r.status, DeviceStatus::Approved { subject, .. } if subject == "alice"),
                "{c}"
            ),
            other => panic!("store kit `{c}`: a released approval polled as {other:?}"),
        }
        assert_eq!(
            ok(c, "poll", d.poll(&k, "kit-client", t + 60).await),
            PollOutcome::Unknown,
            "{c}: taken again"
        );
        assert!(
            !ok(c, "release_device", d.release_device(&k, t + 601).await),
            "{c}: an expired request releases nothing"
        );
        assert!(
            !ok(
                c,
                "release_device",
                d.release_device(&digest().to_hex(), t).await
            ),
            "{c}: unknown"
        );
    }

    /// Of sixteen concurrent decisions on one user code exactly one is taken; a second
    /// request with a user code in use is refused, and an unknown code decides nothing.
    pub async fn device_decision_is_taken_once_and_user_codes_are_unique(s: Stores) {
        use crate::device::DeviceStatus;
        let c = "device_decision_is_taken_once_and_user_codes_are_unique";
        let Some(d) = device_store(c, &s) else { return };
        let t = now();
        let (k, user, rec) = device_request("kit-client", 600);
        assert!(
            ok(c, "put_device", d.put_device(&k, &user, rec.clone()).await),
            "{c}"
        );
        let again = ok(
            c,
            "put_device",
            d.put_device(&digest().to_hex(), &user, rec).await,
        );
        assert!(!again, "{c}: a user code in use is refused");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (d, user) = (d.clone(), user.clone());
                tokio::spawn(async move {
                    let status = if i % 2 == 0 {
                        DeviceStatus::Denied
                    } else {
                        DeviceStatus::Approved {
                            subject: format!("user-{i}"),
                            scope: Scope::parse("read").unwrap_or_else(|_| unreachable!()),
                        }
                    };
                    d.decide(&user, status, t).await
                })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            match ok(c, "task", task.await) {
                Ok(true) => taken += 1,
                Ok(false) | Err(StorageError::Unavailable(_)) => {}
                Err(e) => panic!("store kit `{c}`: decide failed: {e}"),
            }
        }
        assert_eq!(taken, 1, "{c}: one decision");
        let unknown = crate::device::user_code_from(&digest().to_hex(), 8);
        assert!(
            !ok(
                c,
                "decide",
                d.decide(&unknown, DeviceStatus::Denied, t).await
            ),
            "{c}"
        );
    }

    fn key_store(c: &str, s: &Stores) -> Option<Arc<dyn crate::storage::SigningKeyStore>> {
        let k = s.get::<dyn crate::storage::SigningKeyStore>();
        if k.is_none() {
            eprintln!("store kit `{c}`: skipped, the stores have no SigningKeyStore slot");
        }
        k
    }

    fn jti_store(c: &str, s: &Stores) -> Option<Arc<dyn crate::storage::RevokedJtiStore>> {
        let j = s.get::<dyn crate::storage::RevokedJtiStore>();
        if j.is_none() {
            eprintln!("store kit `{c}`: skipped, the stores have no RevokedJtiStore slot");
        }
        j
    }

    /// A rotation slot no other case (or run) uses.
    fn generation() -> i64 {
        i64::from(rand::random::<u32>()) << 16
    }

    /// A key of `alg` in slot `generation`, published from `t - 60` until `until`, with a
    /// fresh kid and sealed bytes covering every byte value (binary, not UTF-8).
    fn signing_key(alg: &str, generation: i64, t: i64, until: i64) -> SigningKeyRecord {
        let kid = format!("kit-{}", digest().to_hex());
        let mut sealed: Vec<u8> = (0..=255u8).collect();
        sealed.extend_from_slice(&digest().0);
        SigningKeyRecord::new(
            kid.clone(),
            alg,
            generation,
            format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"kit","kid":"{kid}"}}"#),
            sealed,
            t - 60,
            t - 60,
            until.min(t + HOUR),
            until,
        )
    }

    /// The keys of `mine` (by kid) among `published`, in the order they came.
    fn only<'a>(published: &'a [SigningKeyRecord], mine: &[&str]) -> Vec<&'a SigningKeyRecord> {
        published
            .iter()
            .filter(|k| mine.contains(&k.kid.as_str()))
            .collect()
    }

    /// 16 concurrent creators of one `(alg, generation)`, each with a key of its own, all
    /// get the same stored record, which is one of theirs; a later creator gets it too, and
    /// it is published once.
    pub async fn signing_key_concurrent_creators_of_one_generation_all_get_one_record(s: Stores) {
        let c = "signing_key_concurrent_creators_of_one_generation_all_get_one_record";
        let Some(k) = key_store(c, &s) else { return };
        let (t, g) = (now(), generation());
        let candidates: Vec<SigningKeyRecord> = (0..16)
            .map(|_| signing_key("ES256", g, t, t + HOUR))
            .collect();
        let tasks: Vec<_> = candidates
            .iter()
            .cloned()
            .map(|key| {
                let k = k.clone();
                tokio::spawn(async move { k.create_key_if_absent(key).await })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let got = ok(c, "join", task.await);
            winners.push(ok(c, "create_key_if_absent", got));
        }
        let first = winners[0].clone();
        assert!(
            winners.iter().all(|w| *w == first),
            "{c}: creators got different records"
        );
        assert!(
            candidates.contains(&first),
            "{c}: the winner is not a candidate"
        );
        let late = signing_key("ES256", g, t, t + HOUR);
        let got = ok(
            c,
            "create_key_if_absent",
            k.create_key_if_absent(late).await,
        );
        assert_eq!(got, first, "{c}: a later creator replaced the winner");
        let published = ok(c, "published_keys", k.published_keys(t).await);
        let slot: Vec<_> = published
            .iter()
            .filter(|p| p.alg == "ES256" && p.generation == g)
            .collect();
        assert_eq!(slot, vec![&first], "{c}: the slot is published once");
    }

    /// Keys of the next generation, and of another algorithm in the same generation, are
    /// new keys: each creator gets its own record back, exactly as given, and all are
    /// published.
    pub async fn signing_keys_of_different_generations_and_algorithms_coexist(s: Stores) {
        let c = "signing_keys_of_different_generations_and_algorithms_coexist";
        let Some(k) = key_store(c, &s) else { return };
        let (t, g) = (now(), generation());
        let keys = [
            signing_key("EdDSA", g, t, t + HOUR),
            signing_key("EdDSA", g + 1, t, t + HOUR),
            signing_key("RS256", g, t, t + HOUR),
        ];
        for key in &keys {
            let got = ok(
                c,
                "create_key_if_absent",
                k.create_key_if_absent(key.clone()).await,
            );
            assert_eq!(&got, key, "{c}: the record did not round-trip");
        }
        let published = ok(c, "published_keys", k.published_keys(t).await);
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(only(&published, &kids).len(), 3, "{c}: {published:?}");
        for key in &keys {
            assert!(published.contains(key), "{c}: {} not published", key.kid);
        }
    }

    /// `published_keys(now)` lists keys whose `published_until` is after `now` (one
    /// retired at `now` exactly is not), ordered by `signs_from`, then `kid`.
    pub async fn published_keys_exclude_retired_and_are_ordered_by_signs_from_then_kid(s: Stores) {
        let c = "published_keys_exclude_retired_and_are_ordered_by_signs_from_then_kid";
        let Some(k) = key_store(c, &s) else { return };
        let (t, g) = (now(), generation());
        let tag = digest().to_hex();
        let key = |n: i64, kid: &str, signs_from: i64, until: i64| {
            let mut r = signing_key("EdDSA", g + n, t, until);
            r.kid = format!("kit-{tag}-{kid}");
            r.signs_from = signs_from;
            r
        };
        let next_b = key(0, "b", t + 100, t + HOUR);
        let current = key(1, "z", t - 100, t + HOUR);
        let next_a = key(2, "a", t + 100, t + HOUR);
        let retired = key(3, "c", t - 200, t - 1);
        let retired_now = key(4, "d", t - 150, t);
        for r in [&next_b, &current, &next_a, &retired, &retired_now] {
            ok(
                c,
                "create_key_if_absent",
                k.create_key_if_absent(r.clone()).await,
            );
        }
        let published = ok(c, "published_keys", k.published_keys(t).await);
        let kids: Vec<&str> = [&next_b, &current, &next_a, &retired, &retired_now]
            .iter()
            .map(|r| r.kid.as_str())
            .collect();
        let got = only(&published, &kids);
        assert_eq!(got, vec![&current, &next_a, &next_b], "{c}");
        let all_ordered = published
            .windows(2)
            .all(|w| (w[0].signs_from, &w[0].kid) <= (w[1].signs_from, &w[1].kid));
        assert!(all_ordered, "{c}: not ordered by (signs_from, kid)");
        assert!(
            published.iter().all(|p| p.published_until > t),
            "{c}: a retired key is published"
        );
        let earlier = ok(c, "published_keys", k.published_keys(t - 1).await);
        assert!(
            earlier.contains(&retired_now),
            "{c}: published before retiring"
        );
    }

    /// `purge_keys(now)` deletes keys retired at or before `now` (their slot is free for a
    /// new key afterwards) and keeps published ones.
    pub async fn purge_keys_removes_retired_keys_only(s: Stores) {
        let c = "purge_keys_removes_retired_keys_only";
        let Some(k) = key_store(c, &s) else { return };
        let (t, g) = (now(), generation());
        let retired = signing_key("ES256", g, t, t - 10);
        let retired_now = signing_key("ES256", g + 1, t, t);
        let live = signing_key("ES256", g + 2, t, t + HOUR);
        for r in [&retired, &retired_now, &live] {
            ok(
                c,
                "create_key_if_absent",
                k.create_key_if_absent(r.clone()).await,
            );
        }
        ok(c, "purge_keys", k.purge_keys(t).await);
        for (n, gone) in [(0, &retired), (1, &retired_now)] {
            let fresh = signing_key("ES256", g + n, t, t + HOUR);
            let got = ok(
                c,
                "create_key_if_absent",
                k.create_key_if_absent(fresh.clone()).await,
            );
            assert_eq!(got, fresh, "{c}: {} was not purged", gone.kid);
        }
        let again = signing_key("ES256", g + 2, t, t + HOUR);
        let got = ok(
            c,
            "create_key_if_absent",
            k.create_key_if_absent(again).await,
        );
        assert_eq!(got, live, "{c}: a published key was purged");
        let published = ok(c, "published_keys", k.published_keys(t).await);
        assert!(published.contains(&live), "{c}: live key not published");
    }

    /// A revoked jti is revoked while `now` is before its `exp` and not from `exp` on;
    /// revoking again is fine; other jtis are not revoked; a jti over 256 bytes is refused.
    pub async fn revoked_jti_is_revoked_until_its_exp(s: Stores) {
        let c = "revoked_jti_is_revoked_until_its_exp";
        let Some(j) = jti_store(c, &s) else { return };
        let t = now();
        let (jti, other) = (digest().to_hex(), digest().to_hex());
        assert!(
            !ok(c, "is_jti_revoked", j.is_jti_revoked(&jti, t).await),
            "{c}"
        );
        ok(c, "revoke_jti", j.revoke_jti(&jti, t + 60).await);
        ok(c, "revoke_jti again", j.revoke_jti(&jti, t + 60).await);
        for (at, revoked) in [(t, true), (t + 59, true), (t + 60, false), (t + 61, false)] {
            let got = ok(c, "is_jti_revoked", j.is_jti_revoked(&jti, at).await);
            assert_eq!(got, revoked, "{c}: at exp{:+}", at - t - 60);
        }
        assert!(
            !ok(c, "is_jti_revoked", j.is_jti_revoked(&other, t).await),
            "{c}"
        );
        let longest = "j".repeat(crate::storage::MAX_JTI_LEN);
        ok(
            c,
            "revoke_jti of 256 bytes",
            j.revoke_jti(&longest, t + 60).await,
        );
        assert!(
            ok(c, "is_jti_revoked", j.is_jti_revoked(&longest, t).await),
            "{c}"
        );
        let too_long = "j".repeat(crate::storage::MAX_JTI_LEN + 1);
        assert!(
            j.revoke_jti(&too_long, t + 60).await.is_err(),
            "{c}: a jti over 256 bytes was accepted"
        );
        assert!(
            !matches!(j.is_jti_revoked(&too_long, t).await, Ok(true)),
            "{c}: a refused jti reads back as revoked"
        );
    }

    /// Revoking a jti again with an earlier `exp` keeps the later one; with a later `exp`
    /// extends it.
    pub async fn revoked_jti_later_exp_wins(s: Stores) {
        let c = "revoked_jti_later_exp_wins";
        let Some(j) = jti_store(c, &s) else { return };
        let t = now();
        let jti = digest().to_hex();
        ok(c, "revoke_jti", j.revoke_jti(&jti, t + 60).await);
        ok(c, "revoke_jti earlier", j.revoke_jti(&jti, t + 30).await);
        assert!(
            ok(c, "is_jti_revoked", j.is_jti_revoked(&jti, t + 45).await),
            "{c}: an earlier exp replaced a later one"
        );
        ok(c, "revoke_jti later", j.revoke_jti(&jti, t + 120).await);
        assert!(
            ok(c, "is_jti_revoked", j.is_jti_revoked(&jti, t + 100).await),
            "{c}: a later exp did not extend"
        );
        assert!(
            !ok(c, "is_jti_revoked", j.is_jti_revoked(&jti, t + 120).await),
            "{c}"
        );
    }

    /// `revoked_jtis(now, limit)` lists at most `limit` live entries, the latest `exp`
    /// first, never an expired one.
    pub async fn revoked_jtis_are_bounded_by_the_limit_latest_expiry_first(s: Stores) {
        let c = "revoked_jtis_are_bounded_by_the_limit_latest_expiry_first";
        let Some(j) = jti_store(c, &s) else { return };
        let t = now();
        // Later than anything another case revokes, so these five lead the list.
        let far = t + 400 * 86_400 + i64::from(rand::random::<u16>());
        let mine: Vec<(String, i64)> = (0..5).map(|n| (digest().to_hex(), far + n)).collect();
        for (jti, exp) in &mine {
            ok(c, "revoke_jti", j.revoke_jti(jti, *exp).await);
        }
        let expired = digest().to_hex();
        ok(c, "revoke_jti", j.revoke_jti(&expired, t - 5).await);
        let got = ok(c, "revoked_jtis", j.revoked_jtis(t, 3).await);
        let want: Vec<(String, i64)> = mine.iter().rev().take(3).cloned().collect();
        assert_eq!(got, want, "{c}: limit 3");
        assert!(
            ok(c, "revoked_jtis", j.revoked_jtis(t, 0).await).is_empty(),
            "{c}: limit 0"
        );
        let all = ok(c, "revoked_jtis", j.revoked_jtis(t, 100_000).await);
        assert!(all.len() >= 5, "{c}: {} listed", all.len());
        assert!(
            all.windows(2).all(|w| w[0].1 >= w[1].1),
            "{c}: not latest first"
        );
        assert!(
            all.iter().all(|(_, exp)| *exp > t),
            "{c}: an expired jti listed"
        );
        assert!(
            !all.iter().any(|(jti, _)| *jti == expired),
            "{c}: expired listed"
        );
        // Past their exp, they are not listed.
        let later = ok(c, "revoked_jtis", j.revoked_jtis(far + 4, 10).await);
        assert!(later.is_empty(), "{c}: {later:?}");
    }

    /// `purge_revoked_jtis(now)` deletes entries whose `exp` is at or before `now` and
    /// keeps later ones.
    pub async fn purge_revoked_jtis_removes_expired_keeps_live(s: Stores) {
        let c = "purge_revoked_jtis_removes_expired_keeps_live";
        let Some(j) = jti_store(c, &s) else { return };
        let t = now();
        let (old, at_now, live) = (digest().to_hex(), digest().to_hex(), digest().to_hex());
        ok(c, "revoke_jti", j.revoke_jti(&old, t - 10).await);
        ok(c, "revoke_jti", j.revoke_jti(&at_now, t).await);
        ok(c, "revoke_jti", j.revoke_jti(&live, t + HOUR).await);
        ok(c, "purge_revoked_jtis", j.purge_revoked_jtis(t).await);
        // Asked about a time before their exp, purged entries are gone all the same.
        for gone in [&old, &at_now] {
            let got = ok(c, "is_jti_revoked", j.is_jti_revoked(gone, t - 20).await);
            assert!(!got, "{c}: not purged");
        }
        assert!(
            ok(c, "is_jti_revoked", j.is_jti_revoked(&live, t).await),
            "{c}"
        );
    }
}
