//! The cache's bounds, expiry, staleness, revocation fan-out, the miss/revocation race and
//! the channel going down, over a counting memory store and an in-memory fake channel.

use std::sync::atomic::AtomicUsize;

use tokio::sync::oneshot;

use super::*;
use crate::clock::FixedClock;
use crate::scope::Scope;
use crate::storage::memory::MemoryStore;

const NOW: i64 = 1_000_000;

/// A memory store that counts reads and can hold one read until released.
#[derive(Default)]
struct Counting {
    store: MemoryStore,
    reads: AtomicUsize,
    #[allow(clippy::type_complexity)]
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl Counting {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// The next read says it started on the first channel and waits for the second.
    fn hold_next_read(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = Some((started_tx, release_rx));
        (started_rx, release_tx)
    }
}

#[async_trait]
impl AccessTokenStore for Counting {
    async fn put_access(&self, t: &TokenDigest, r: &TokenRecord) -> Result<(), StorageError> {
        self.store.put_access(t, r).await
    }
    async fn access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let found = self.store.access(t).await;
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((started, release)) = gate {
            let _ = started.send(());
            let _ = release.await;
        }
        found
    }
    async fn revoke_access(&self, t: &TokenDigest) -> Result<Option<TokenRecord>, StorageError> {
        self.store.revoke_access(t).await
    }
    async fn revoke_access_grant(&self, g: GrantId, until: i64) -> Result<u64, StorageError> {
        self.store.revoke_access_grant(g, until).await
    }
    async fn revoke_access_client(&self, c: &str, until: i64) -> Result<u64, StorageError> {
        self.store.revoke_access_client(c, until).await
    }
}

/// A channel in memory: the test decides when it is subscribed or lost, and sees what
/// was published.
#[derive(Default)]
struct FakeChannel {
    sink: Mutex<Option<RevocationSink>>,
    published: Mutex<Vec<Revocation>>,
    fail: AtomicBool,
    subscribe_on_start: bool,
}

impl FakeChannel {
    fn sink(&self) -> RevocationSink {
        match self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(s) => s,
            None => panic!("the cache did not start its channel"),
        }
    }
    fn published(&self) -> Vec<Revocation> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl RevocationChannel for FakeChannel {
    fn describe(&self) -> &'static str {
        "a test channel"
    }
    fn start(&self, sink: RevocationSink) -> Result<(), StorageError> {
        if self.subscribe_on_start {
            sink.subscribed();
        }
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
        Ok(())
    }
    async fn publish(&self, r: Revocation) -> Result<(), StorageError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StorageError::unavailable(std::io::Error::other("down")));
        }
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
        Ok(())
    }
}

struct Fixture {
    cache: Arc<CachedAccessStore>,
    inner: Arc<Counting>,
    channel: Arc<FakeChannel>,
    clock: Arc<FixedClock>,
}

fn fixture(max_entries: usize, max_staleness: u64, subscribed: bool) -> Fixture {
    let inner = Arc::new(Counting::default());
    let channel = Arc::new(FakeChannel {
        subscribe_on_start: subscribed,
        ..Default::default()
    });
    let clock = Arc::new(FixedClock::at(NOW));
    let config = ValidationCacheConfig {
        enabled: true,
        max_entries,
        max_staleness,
        ..Default::default()
    };
    let cache = match CachedAccessStore::new(inner.clone(), &config, channel.clone(), clock.clone())
    {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("cache: {e}"),
    };
    Fixture {
        cache,
        inner,
        channel,
        clock,
    }
}

fn record(grant: GrantId, expires_at: i64) -> TokenRecord {
    let scope = Scope::parse("a").unwrap_or_else(|e| panic!("{e}"));
    TokenRecord::new("app", scope, grant, NOW, expires_at)
}

async fn put(f: &Fixture, name: &str, grant: GrantId, expires_at: i64) -> TokenDigest {
    let d = TokenDigest::of(name);
    if let Err(e) = f.cache.put_access(&d, &record(grant, expires_at)).await {
        panic!("put: {e}");
    }
    d
}

async fn get(f: &Fixture, d: &TokenDigest) -> Option<TokenRecord> {
    match f.cache.access(d).await {
        Ok(r) => r,
        Err(e) => panic!("access: {e}"),
    }
}

#[tokio::test]
async fn a_hit_is_served_from_memory() {
    let f = fixture(100, 60, true);
    let d = put(&f, "t1", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &d).await.is_some());
    assert!(get(&f, &d).await.is_some());
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 1, "only the first lookup reads the store");
    assert_eq!(f.cache.len(), 1);
    // Unknown tokens are not cached: each lookup asks the store.
    let unknown = TokenDigest::of("nope");
    assert!(get(&f, &unknown).await.is_none());
    assert!(get(&f, &unknown).await.is_none());
    assert_eq!(f.inner.reads(), 3);
}

#[tokio::test]
async fn the_cache_never_holds_more_than_max_entries() {
    for max in [1usize, 7, 64, 100] {
        let f = fixture(max, 60, true);
        assert_eq!(f.cache.policy().max_entries(), max);
        let mut digests = Vec::new();
        for i in 0..(3 * max + 50) {
            let d = put(&f, &format!("t{i}"), GrantId::random(), NOW + 3600).await;
            assert!(get(&f, &d).await.is_some());
            assert!(f.cache.len() <= max, "{} > {max}", f.cache.len());
            digests.push(d);
        }
        // Evicted tokens are read from the store again, and still valid.
        for d in &digests {
            assert!(get(&f, d).await.is_some());
        }
        assert!(f.cache.len() <= max);
        assert!(!f.cache.is_empty());
    }
    // Filled with many tokens, every shard reaches its share: the bound is exact.
    let f = fixture(100, 60, true);
    for i in 0..2000 {
        let d = put(&f, &format!("t{i}"), GrantId::random(), NOW + 3600).await;
        assert!(get(&f, &d).await.is_some());
    }
    assert_eq!(f.cache.len(), 100);
    // Bounds that are not positive are refused.
    let zero = ValidationCacheConfig {
        max_entries: 0,
        ..Default::default()
    };
    let built = CachedAccessStore::new(
        Arc::new(MemoryStore::new()),
        &zero,
        Arc::new(LocalOnly),
        Arc::new(FixedClock::at(NOW)),
    );
    assert!(matches!(built, Err(StorageError::Other(_))));
}

#[tokio::test]
async fn an_entry_is_never_served_at_or_after_its_expiry() {
    let f = fixture(100, 600, true);
    let d = put(&f, "short", GrantId::random(), NOW + 5).await;
    assert!(get(&f, &d).await.is_some());
    f.clock.advance(4);
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 1);
    f.clock.advance(1);
    // The store still returns the record (expiry is the caller's check), but the cache
    // does not answer for it nor keep it.
    assert!(get(&f, &d).await.is_some());
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 3);
    assert_eq!(f.cache.len(), 0);
    // A record already expired when read is not cached either.
    let old = put(&f, "old", GrantId::random(), NOW).await;
    assert!(get(&f, &old).await.is_some());
    assert_eq!(f.cache.len(), 0);
}

#[tokio::test]
async fn an_entry_is_read_again_after_max_staleness() {
    let f = fixture(100, 10, true);
    let d = put(&f, "t", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &d).await.is_some());
    f.clock.advance(9);
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 1);
    f.clock.advance(1);
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 2, "a stale entry is read from the store");
    // A token revoked in the store behind the cache's back (no notification) is refused
    // once the entry is stale.
    let _ = f.inner.store.revoke_access(&d).await;
    assert!(get(&f, &d).await.is_some(), "within the staleness bound");
    f.clock.advance(10);
    assert!(get(&f, &d).await.is_none());
    assert!(get(&f, &d).await.is_none());
}

#[tokio::test]
async fn revocations_through_the_cache_evict_and_publish() {
    let f = fixture(100, 60, true);
    let g = GrantId::random();
    let a = put(&f, "a", g, NOW + 3600).await;
    let b = put(&f, "b", g, NOW + 3600).await;
    let c = put(&f, "c", g, NOW + 3600).await;
    let other = put(&f, "other", GrantId::random(), NOW + 3600).await;
    for d in [&a, &b, &c, &other] {
        assert!(get(&f, d).await.is_some());
    }
    assert_eq!(f.cache.len(), 4);
    assert!(matches!(f.cache.revoke_access(&a).await, Ok(Some(_))));
    assert!(get(&f, &a).await.is_none());
    assert!(matches!(
        f.cache.revoke_access_grant(g, NOW + 10).await,
        Ok(2)
    ));
    assert!(get(&f, &b).await.is_none());
    assert!(get(&f, &c).await.is_none());
    assert!(get(&f, &other).await.is_some());
    assert_eq!(
        f.channel.published(),
        vec![Revocation::Token(a), Revocation::Grant(g)]
    );
    // The tombstone still refuses the grant's new tokens through the cache.
    let late = TokenDigest::of("late");
    assert!(matches!(
        f.cache.put_access(&late, &record(g, NOW + 3600)).await,
        Err(StorageError::GrantRevoked)
    ));
}

#[tokio::test]
async fn revocations_from_other_instances_evict() {
    let f = fixture(100, 60, true);
    let g = GrantId::random();
    let a = put(&f, "a", g, NOW + 3600).await;
    let b = put(&f, "b", g, NOW + 3600).await;
    let c = put(&f, "c", GrantId::random(), NOW + 3600).await;
    for d in [&a, &b, &c] {
        assert!(get(&f, d).await.is_some());
    }
    // Another instance revoked in the store and published.
    let _ = f.inner.store.revoke_access(&c).await;
    assert!(get(&f, &c).await.is_some(), "cached until the notification");
    f.channel.sink().deliver(Revocation::Token(c));
    assert!(get(&f, &c).await.is_none());
    let _ = f.inner.store.revoke_access_grant(g, NOW + 10).await;
    f.channel.sink().deliver(Revocation::Grant(g));
    assert!(get(&f, &a).await.is_none());
    assert!(get(&f, &b).await.is_none());
    assert_eq!(f.cache.len(), 0);
}

/// A client revocation evicts that client's cached tokens, here and (delivered) from
/// another instance, and leaves other clients' tokens cached.
#[tokio::test]
async fn client_revocations_evict_the_clients_tokens_only() {
    let f = fixture(100, 60, true);
    let put_for = |client: &'static str, name: &'static str| {
        let f = &f;
        async move {
            let d = TokenDigest::of(name);
            let r = TokenRecord {
                client_id: client.into(),
                ..record(GrantId::random(), NOW + 3600)
            };
            if let Err(e) = f.cache.put_access(&d, &r).await {
                panic!("put: {e}");
            }
            d
        }
    };
    let (a1, a2, b) = (
        put_for("gone", "a1").await,
        put_for("gone", "a2").await,
        put_for("kept", "b").await,
    );
    for d in [&a1, &a2, &b] {
        assert!(get(&f, d).await.is_some());
    }
    // Revoked in the store by another instance: cached until the notification.
    let _ = f.inner.store.revoke_access_client("gone", NOW + 10).await;
    assert!(
        get(&f, &a1).await.is_some(),
        "cached until the notification"
    );
    f.channel.sink().deliver(Revocation::client("gone"));
    assert!(get(&f, &a1).await.is_none());
    assert!(get(&f, &a2).await.is_none());
    assert!(
        get(&f, &b).await.is_some(),
        "another client's token stays cached"
    );
    // Revoked here: evicted at once, and published.
    let c = put_for("local", "c").await;
    assert!(get(&f, &c).await.is_some());
    assert_eq!(
        f.cache.revoke_access_client("local", NOW + 10).await.ok(),
        Some(1)
    );
    assert!(get(&f, &c).await.is_none());
}

#[tokio::test]
async fn a_miss_racing_a_revocation_does_not_cache_what_it_read() {
    for grant_wide in [false, true] {
        let f = fixture(100, 60, true);
        let g = GrantId::random();
        let d = put(&f, "raced", g, NOW + 3600).await;
        let (started, release) = f.inner.hold_next_read();
        let cache = f.cache.clone();
        let miss = tokio::spawn(async move { cache.access(&d).await });
        let _ = started.await;
        // The read has the live record in hand; now the token is revoked elsewhere.
        if grant_wide {
            let _ = f.inner.store.revoke_access_grant(g, NOW + 10).await;
            f.channel.sink().deliver(Revocation::Grant(g));
        } else {
            let _ = f.inner.store.revoke_access(&d).await;
            f.channel.sink().deliver(Revocation::Token(d));
        }
        let _ = release.send(());
        let read = match miss.await {
            Ok(Ok(r)) => r,
            other => panic!("miss: {other:?}"),
        };
        assert!(
            read.is_some(),
            "the racing read saw the record before revocation"
        );
        assert_eq!(f.cache.len(), 0, "and did not keep it");
        assert!(
            get(&f, &d).await.is_none(),
            "the next lookup asks the store"
        );
    }
}

#[tokio::test]
async fn a_miss_racing_a_reconnection_does_not_cache_what_it_read() {
    let f = fixture(100, 60, true);
    let d = put(&f, "raced", GrantId::random(), NOW + 3600).await;
    let (started, release) = f.inner.hold_next_read();
    let cache = f.cache.clone();
    let miss = tokio::spawn(async move { cache.access(&d).await });
    let _ = started.await;
    // The channel drops (a revocation is missed meanwhile) and comes back.
    f.channel.sink().lost();
    let _ = f.inner.store.revoke_access(&d).await;
    f.channel.sink().subscribed();
    let _ = release.send(());
    assert!(matches!(miss.await, Ok(Ok(Some(_)))));
    assert_eq!(f.cache.len(), 0);
    assert!(get(&f, &d).await.is_none());
}

#[tokio::test]
async fn a_lost_channel_stops_serving_until_it_is_back() {
    let f = fixture(100, 60, true);
    let d = put(&f, "t", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &d).await.is_some());
    assert!(f.cache.is_serving());
    f.channel.sink().lost();
    assert!(!f.cache.is_serving());
    assert_eq!(f.cache.len(), 0, "the cache is emptied");
    // Revoked while the channel is down: the notification never comes, and the token is
    // refused at once because every lookup goes to the store.
    let _ = f.inner.store.revoke_access(&d).await;
    let reads = f.inner.reads();
    assert!(get(&f, &d).await.is_none());
    let live = put(&f, "live", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &live).await.is_some());
    assert!(get(&f, &live).await.is_some());
    assert_eq!(f.inner.reads(), reads + 3, "nothing is served from memory");
    assert_eq!(f.cache.len(), 0, "nor kept");
    f.channel.sink().subscribed();
    assert!(f.cache.is_serving());
    assert!(get(&f, &live).await.is_some());
    assert!(get(&f, &live).await.is_some());
    assert_eq!(f.inner.reads(), reads + 4, "served again once resubscribed");
}

#[tokio::test]
async fn nothing_is_served_before_the_subscription_is_confirmed() {
    let f = fixture(100, 60, false);
    let d = put(&f, "t", GrantId::random(), NOW + 3600).await;
    assert!(!f.cache.is_serving());
    assert!(get(&f, &d).await.is_some());
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 2);
    assert_eq!(f.cache.len(), 0);
    f.channel.sink().subscribed();
    assert!(get(&f, &d).await.is_some());
    assert!(get(&f, &d).await.is_some());
    assert_eq!(f.inner.reads(), 3);
}

#[tokio::test]
async fn a_failed_publish_is_an_error_after_the_store_and_local_eviction() {
    let f = fixture(100, 60, true);
    let d = put(&f, "t", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &d).await.is_some());
    f.channel.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.cache.revoke_access(&d).await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(get(&f, &d).await.is_none(), "revoked in the store and here");
    assert!(matches!(f.inner.store.access(&d).await, Ok(None)));
}

#[tokio::test]
async fn an_unreadable_message_empties_the_cache() {
    let f = fixture(100, 60, true);
    let d = put(&f, "t", GrantId::random(), NOW + 3600).await;
    assert!(get(&f, &d).await.is_some());
    f.channel.sink().deliver_unreadable();
    assert_eq!(f.cache.len(), 0);
    assert!(f.cache.is_serving());
}

#[tokio::test]
async fn a_dropped_cache_closes_its_sink() {
    let f = fixture(100, 60, true);
    let sink = f.channel.sink();
    assert!(!sink.is_closed());
    drop(f.cache);
    assert!(sink.is_closed());
    // Deliveries to a closed sink do nothing (and do not panic).
    sink.deliver(Revocation::Grant(GrantId::random()));
    sink.lost();
    sink.subscribed();
}

#[tokio::test]
async fn the_local_channel_serves_at_once() {
    let inner: Arc<dyn AccessTokenStore> = Arc::new(MemoryStore::new());
    let config = ValidationCacheConfig::default();
    let cache = match CachedAccessStore::new(
        inner,
        &config,
        Arc::new(LocalOnly),
        Arc::new(FixedClock::at(NOW)),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(cache.is_serving());
    assert_eq!(cache.policy().channel(), "local only (this process)");
    assert_eq!(cache.policy().max_staleness(), 60);
    assert!(cache.policy().to_string().contains("at most 100000 tokens"));
}

#[test]
fn revocations_round_trip_and_garbage_is_refused() {
    let d = TokenDigest::of("x");
    let g = GrantId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    for r in [
        Revocation::Token(d),
        Revocation::Grant(g),
        Revocation::client("a client id: any string, of any length"),
        Revocation::jti("a-jti", 1_800_000_000),
        Revocation::jti("", 0),
    ] {
        assert_eq!(Revocation::decode(&r.encode()), Some(r));
    }
    assert_eq!(
        Revocation::client("x").encode(),
        format!("c{}", TokenDigest::of("x").to_hex())
    );
    assert_eq!(
        Revocation::Grant(g).encode(),
        "g0123456789abcdef0011223344556677"
    );
    for bad in [
        "",
        "t",
        "g",
        "x00",
        "g0123",
        "t+123",
        "gzz23456789abcdef0011223344556677",
        "g0123456789abcdef00112233445566770",
        "té",
        "g+123456789abcdef0011223344556677",
        "j",
        "j:1",
        format!("j{}", d.to_hex()).as_str(),
        format!("j{}:", d.to_hex()).as_str(),
        format!("j{}:-1", d.to_hex()).as_str(),
        format!("j{}:+1", d.to_hex()).as_str(),
        format!("j{}:99999999999999999999", d.to_hex()).as_str(),
        format!("j{}:1:2", d.to_hex()).as_str(),
    ] {
        assert_eq!(Revocation::decode(bad), None, "{bad:?}");
    }
    assert_eq!(
        Revocation::jti("x", 42).encode(),
        format!("j{}:42", d.to_hex())
    );
    let token = Revocation::Token(d).encode();
    assert_eq!(token.len(), 65);
    assert_eq!(
        Revocation::decode(&token.to_uppercase().replacen('T', "t", 1)),
        Some(Revocation::Token(d))
    );
}

#[test]
fn bad_settings_name_their_key() {
    let ok = ValidationCacheConfig::default();
    assert!(ok.validate().is_ok());
    let e = ValidationCacheConfig {
        max_entries: 0,
        ..Default::default()
    }
    .validate();
    assert!(matches!(
        e,
        Err(ConfigError::Setting {
            key: "validation_cache.max_entries",
            ..
        })
    ));
    let e = ValidationCacheConfig {
        max_staleness: 0,
        ..Default::default()
    }
    .validate();
    assert!(matches!(
        e,
        Err(ConfigError::Setting {
            key: "validation_cache.max_staleness",
            ..
        })
    ));
}
