//! What the JWT format remembers in memory: the tokens it verified recently (so a repeat
//! validation costs a hash and a map lookup), and the revocations it must refuse on the hot
//! path: revoked `jti`s (filled from the [`RevokedJtiStore`] and kept current through the
//! revocation channel), revoked grants and deleted clients (from the channel and this
//! instance's own revocations).
//!
//! Memory answers alone only while it is known to be complete: the channel's subscription is
//! confirmed, the `jti` list was read from the store since, not longer ago than the
//! staleness bound, and the token expires after the earliest `exp` the list may be missing
//! (a list cut at its bound, or entries dropped because memory was full). Otherwise the
//! store is asked for the token's `jti`. Every map is bounded.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::format::ValidToken;
use crate::storage::cache::{Revocation, RevocationListener};
use crate::storage::GrantId;
use crate::token::{BuildDigestHasher, TokenDigest};

/// A token verified earlier: what validation answered, and until when it may be served.
#[derive(Clone)]
pub(crate) struct Verified {
    pub(crate) token: ValidToken,
    /// The token's `exp`: never served at or after it.
    pub(crate) exp: i64,
    /// Served while the clock is before this (the staleness bound: a grant tombstone laid
    /// by an instance whose notification was lost is read again by then).
    pub(crate) fresh_until: i64,
    /// The SHA-256 of the token's `jti`.
    pub(crate) jti: Option<TokenDigest>,
    /// The grant the token carries, if any.
    pub(crate) grant: Option<GrantId>,
    /// The SHA-256 of its client id.
    pub(crate) client: TokenDigest,
}

/// Bounds of [`Revocations`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Most verified tokens kept.
    pub(crate) max_verified: usize,
    /// Most revoked `jti`s (and grants, and clients) kept in memory.
    pub(crate) max_revoked: usize,
    /// Seconds after which memory is read from the store again.
    pub(crate) max_staleness: i64,
    /// Seconds a revocation of a grant or a client heard on the channel is kept (no token
    /// issued before it lives longer).
    pub(crate) hold: i64,
}

/// The in-memory state. Shared by the format and the channel's listener.
pub(crate) struct Revocations {
    bounds: Bounds,
    verified: DashMap<TokenDigest, Verified, BuildDigestHasher>,
    /// `jti` digest → its token's `exp`.
    jtis: DashMap<TokenDigest, i64, BuildDigestHasher>,
    /// Grant → until when its tokens are refused.
    grants: DashMap<GrantId, i64, BuildDigestHasher>,
    /// Client id digest → (revoked at, until): its tokens issued at or before "revoked at"
    /// are refused until "until".
    clients: DashMap<TokenDigest, (i64, i64), BuildDigestHasher>,
    /// The channel's subscription is confirmed and not lost.
    subscribed: AtomicBool,
    /// When the `jti` list was last read from the store since the subscription
    /// (`i64::MIN`: not since).
    loaded_at: AtomicI64,
    /// Tokens whose `exp` is at or before this may be missing from memory.
    floor: AtomicI64,
    /// A reload is running (one at a time).
    reloading: AtomicBool,
    /// Bumped by every subscription, loss and unreadable message: a reload that began
    /// before does not make memory complete.
    epoch: AtomicU64,
    /// Bumped by every revocation, loss and subscription: a verification that started
    /// before keeps nothing in the verified cache.
    seq: AtomicU64,
}

impl Revocations {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Revocations {
            bounds,
            verified: DashMap::with_hasher(BuildDigestHasher::default()),
            jtis: DashMap::with_hasher(BuildDigestHasher::default()),
            grants: DashMap::with_hasher(BuildDigestHasher::default()),
            clients: DashMap::with_hasher(BuildDigestHasher::default()),
            subscribed: AtomicBool::new(false),
            loaded_at: AtomicI64::new(i64::MIN),
            floor: AtomicI64::new(i64::MIN),
            reloading: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        }
    }

    pub(crate) fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The sequence number to pass to [`Self::keep`].
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the channel's subscription is confirmed.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// A token verified earlier, still fresh at `now`.
    pub(crate) fn verified(&self, digest: &TokenDigest, now: i64) -> Option<Verified> {
        let hit = self.verified.get(digest).map(|e| e.value().clone())?;
        if now < hit.exp && now < hit.fresh_until {
            return Some(hit);
        }
        self.verified.remove(digest);
        None
    }

    /// Keeps a verified token, unless a revocation, loss or subscription happened since
    /// `before` was read. When full, drops what is no longer fresh, and if that is not
    /// enough starts again empty (forgetting is always safe).
    pub(crate) fn keep(&self, digest: TokenDigest, v: Verified, now: i64, before: u64) {
        if self.seq() != before || v.exp <= now {
            return;
        }
        if self.verified.len() >= self.bounds.max_verified {
            self.verified
                .retain(|_, e| now < e.exp && now < e.fresh_until);
            if self.verified.len() >= self.bounds.max_verified {
                self.verified.clear();
            }
        }
        self.verified.insert(digest, v);
        // A revocation that bumped meanwhile may have missed what was just inserted.
        if self.seq() != before {
            self.verified.remove(&digest);
        }
    }

    /// Whether memory alone may say a token expiring at `exp` is not revoked by `jti`:
    /// subscribed, the list read since (and not longer ago than the staleness bound), and
    /// `exp` after the floor.
    pub(crate) fn memory_is_complete(&self, exp: i64, now: i64) -> bool {
        let at = self.loaded_at.load(Ordering::SeqCst);
        self.is_subscribed()
            && at != i64::MIN
            && now < at.saturating_add(self.bounds.max_staleness)
            && exp > self.floor.load(Ordering::SeqCst)
    }

    /// Whether the `jti` list should be read from the store now: claims the reload and
    /// returns the epoch to pass to [`Self::loaded`] (or call [`Self::load_failed`]).
    pub(crate) fn claim_reload(&self, now: i64) -> Option<u64> {
        let at = self.loaded_at.load(Ordering::SeqCst);
        let due = at == i64::MIN || now >= at.saturating_add(self.bounds.max_staleness);
        let claimed = due
            && self
                .reloading
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        claimed.then(|| self.epoch.load(Ordering::SeqCst))
    }

    /// The `jti` list read from the store at `now` (at most `limit` asked; `list` as the
    /// store returned it), begun in `epoch`: memory is complete from now on unless the
    /// subscription changed since.
    pub(crate) fn loaded(&self, list: Vec<(String, i64)>, limit: usize, now: i64, epoch: u64) {
        let truncated = list.len() >= limit;
        let soonest = list.iter().map(|(_, exp)| *exp).min();
        for (jti, exp) in list {
            self.insert_jti(TokenDigest::of(&jti), exp, now);
        }
        if truncated {
            if let Some(s) = soonest {
                self.raise_floor(s);
            }
        }
        if self.epoch.load(Ordering::SeqCst) == epoch && self.is_subscribed() {
            self.loaded_at.store(now, Ordering::SeqCst);
        }
        self.reloading.store(false, Ordering::SeqCst);
    }

    /// The reload failed: the next validation tries again.
    pub(crate) fn load_failed(&self) {
        self.reloading.store(false, Ordering::SeqCst);
    }

    fn raise_floor(&self, exp: i64) {
        self.floor.fetch_max(exp, Ordering::SeqCst);
    }

    fn insert_jti(&self, jti: TokenDigest, exp: i64, now: i64) {
        if exp <= now {
            return;
        }
        if self.jtis.len() >= self.bounds.max_revoked && !self.jtis.contains_key(&jti) {
            self.jtis.retain(|_, e| *e > now);
            if self.jtis.len() >= self.bounds.max_revoked {
                // Full of live entries: the soonest-expiring goes (perhaps the new one), and
                // tokens expiring by then are checked in the store from now on.
                let soonest = self.jtis.iter().map(|e| (*e.value(), *e.key())).min();
                match soonest {
                    Some((e, d)) if e < exp => {
                        self.raise_floor(e);
                        self.jtis.remove(&d);
                    }
                    _ => {
                        self.raise_floor(exp);
                        return;
                    }
                }
            }
        }
        self.jtis
            .entry(jti)
            .and_modify(|e| *e = (*e).max(exp))
            .or_insert(exp);
    }

    /// Whether memory says `jti` (its digest) is revoked at `now`.
    pub(crate) fn jti_revoked(&self, jti: &TokenDigest, now: i64) -> bool {
        self.jtis.get(jti).is_some_and(|e| *e > now)
    }

    /// Whether memory says the grant is revoked at `now`.
    pub(crate) fn grant_revoked(&self, grant: GrantId, now: i64) -> bool {
        self.grants.get(&grant).is_some_and(|e| *e > now)
    }

    /// Whether memory says a token of the client (its id's digest) issued at `issued_at` is
    /// revoked at `now`.
    pub(crate) fn client_revoked(&self, client: &TokenDigest, issued_at: i64, now: i64) -> bool {
        self.clients
            .get(client)
            .is_some_and(|e| issued_at <= e.0 && e.1 > now)
    }

    /// A revocation made here or heard on the channel, at `now`.
    pub(crate) fn apply(&self, revocation: Revocation, now: i64) {
        self.bump();
        let hold = now.saturating_add(self.bounds.hold);
        match revocation {
            Revocation::Jti(d, exp) => {
                self.insert_jti(d, exp, now);
                self.verified.retain(|_, e| e.jti != Some(d));
            }
            Revocation::Grant(g) => {
                bounded_insert(&self.grants, g, hold, now, self.bounds.max_revoked, |e| *e);
                self.verified.retain(|_, e| e.grant != Some(g));
            }
            Revocation::Client(c) => {
                bounded_insert(
                    &self.clients,
                    c,
                    (now, hold),
                    now,
                    self.bounds.max_revoked,
                    |e| e.1,
                );
                self.verified.retain(|_, e| e.client != c);
            }
            Revocation::Token(d) => {
                self.verified.remove(&d);
            }
            // A later kind: nothing of it is known here; forget every verified token.
            #[allow(unreachable_patterns)]
            _ => self.verified.clear(),
        }
        self.bump();
    }

    /// The subscription is confirmed: the `jti` list is read again at the next validation.
    fn on_subscribed(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.bump();
        self.verified.clear();
        self.loaded_at.store(i64::MIN, Ordering::SeqCst);
        self.subscribed.store(true, Ordering::SeqCst);
    }

    /// The subscription is lost: memory is no longer complete.
    fn on_lost(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.subscribed.store(false, Ordering::SeqCst);
        self.loaded_at.store(i64::MIN, Ordering::SeqCst);
        self.bump();
        self.verified.clear();
    }

    #[cfg(test)]
    pub(crate) fn verified_len(&self) -> usize {
        self.verified.len()
    }

    #[cfg(test)]
    pub(crate) fn revoked_len(&self) -> usize {
        self.jtis.len()
    }
}

/// Inserts into a bounded map of revocations: when full, drops the expired, then (still
/// full) the one ending soonest. A grant or client revocation dropped this way is still in
/// the store (tombstone, deleted client), read when the token is next verified.
fn bounded_insert<K, V>(
    map: &DashMap<K, V, BuildDigestHasher>,
    key: K,
    value: V,
    now: i64,
    cap: usize,
    until: impl Fn(&V) -> i64,
) where
    K: Eq + std::hash::Hash + Copy,
{
    if map.len() >= cap && !map.contains_key(&key) {
        map.retain(|_, v| until(v) > now);
        if map.len() >= cap {
            let soonest = map
                .iter()
                .map(|e| (until(e.value()), *e.key()))
                .min_by_key(|p| p.0);
            if let Some((_, k)) = soonest {
                map.remove(&k);
            }
        }
    }
    map.insert(key, value);
}

/// The channel's listener: a handle on the state, with the clock to date what it hears.
pub(crate) struct Listener {
    pub(crate) state: Arc<Revocations>,
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
}

impl RevocationListener for Listener {
    fn subscribed(&self) {
        self.state.on_subscribed();
    }

    fn lost(&self) {
        self.state.on_lost();
    }

    fn deliver(&self, revocation: Revocation) {
        self.state.apply(revocation, self.clock.unix());
    }

    fn deliver_unreadable(&self) {
        // It may have revoked anything: verified tokens are verified (and their grant read)
        // again, and the `jti` list is read again.
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
        self.state.bump();
        self.state.verified.clear();
        self.state.loaded_at.store(i64::MIN, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use crate::storage::TokenRecord;

    fn bounds() -> Bounds {
        Bounds {
            max_verified: 4,
            max_revoked: 3,
            max_staleness: 60,
            hold: 3600,
        }
    }

    fn verified(jti: &str, grant: Option<GrantId>, client: &str, exp: i64) -> Verified {
        let record = TokenRecord::new(client, Scope::empty(), GrantId::random(), 0, exp);
        Verified {
            token: ValidToken::new(record).with_jti(jti),
            exp,
            fresh_until: 1_000,
            jti: Some(TokenDigest::of(jti)),
            grant,
            client: TokenDigest::of(client),
        }
    }

    fn subscribed() -> Revocations {
        let r = Revocations::new(bounds());
        r.on_subscribed();
        r
    }

    #[test]
    fn a_verified_token_is_never_served_at_or_after_its_exp_nor_past_staleness() {
        let r = subscribed();
        let d = TokenDigest::of("tok");
        r.keep(d, verified("j", None, "c", 100), 10, r.seq());
        assert!(r.verified(&d, 99).is_some());
        assert!(r.verified(&d, 100).is_none());
        let mut v = verified("j", None, "c", 5_000);
        v.fresh_until = 50;
        r.keep(d, v, 10, r.seq());
        assert!(r.verified(&d, 49).is_some());
        assert!(r.verified(&d, 50).is_none());
    }

    #[test]
    fn the_verified_cache_holds_at_most_its_bound() {
        let r = subscribed();
        for i in 0..50 {
            let s = r.seq();
            r.keep(
                TokenDigest::of(&i.to_string()),
                verified("j", None, "c", 500),
                1,
                s,
            );
            assert!(r.verified_len() <= 4);
        }
    }

    #[test]
    fn a_verification_racing_a_revocation_keeps_nothing() {
        let r = subscribed();
        let before = r.seq();
        r.apply(Revocation::jti("other", 500), 1);
        r.keep(
            TokenDigest::of("t"),
            verified("j", None, "c", 500),
            1,
            before,
        );
        assert_eq!(r.verified_len(), 0);
    }

    #[test]
    fn revoking_a_jti_grant_or_client_evicts_its_verified_tokens_and_is_remembered() {
        let r = subscribed();
        let g = GrantId::random();
        let (a, b, c) = (
            TokenDigest::of("a"),
            TokenDigest::of("b"),
            TokenDigest::of("c"),
        );
        r.keep(a, verified("ja", None, "x", 500), 1, r.seq());
        r.keep(b, verified("jb", Some(g), "x", 500), 1, r.seq());
        r.keep(c, verified("jc", None, "gone", 500), 1, r.seq());
        r.apply(Revocation::jti("ja", 500), 2);
        assert!(r.verified(&a, 2).is_none() && r.verified(&b, 2).is_some());
        assert!(r.jti_revoked(&TokenDigest::of("ja"), 2));
        assert!(
            !r.jti_revoked(&TokenDigest::of("ja"), 500),
            "kept until exp only"
        );
        r.apply(Revocation::Grant(g), 3);
        assert!(r.verified(&b, 3).is_none() && r.grant_revoked(g, 3));
        r.apply(Revocation::client("gone"), 4);
        assert!(r.verified(&c, 4).is_none());
        let gone = TokenDigest::of("gone");
        assert!(r.client_revoked(&gone, 4, 5), "issued before the deletion");
        assert!(!r.client_revoked(&gone, 5, 5), "issued after it");
    }

    #[test]
    fn memory_is_complete_only_when_subscribed_loaded_fresh_and_above_the_floor() {
        let r = Revocations::new(bounds());
        assert!(!r.memory_is_complete(500, 1), "not subscribed");
        r.on_subscribed();
        assert!(!r.memory_is_complete(500, 1), "not loaded");
        let epoch = r.claim_reload(1).unwrap();
        assert!(r.claim_reload(1).is_none(), "one reload at a time");
        r.loaded(vec![("a".into(), 400)], 10, 1, epoch);
        assert!(r.memory_is_complete(500, 1));
        assert!(!r.memory_is_complete(500, 61), "stale after max_staleness");
        let epoch = r.claim_reload(61).unwrap();
        r.on_lost();
        r.on_subscribed();
        r.loaded(Vec::new(), 10, 61, epoch);
        assert!(!r.memory_is_complete(500, 61), "resubscribed while loading");
        r.on_lost();
        assert!(!r.memory_is_complete(500, 2), "lost");
    }

    #[test]
    fn a_truncated_list_sends_tokens_expiring_before_its_end_to_the_store() {
        let r = subscribed();
        let epoch = r.claim_reload(1).unwrap();
        // At the limit: the store may have had more, expiring sooner than 300.
        r.loaded(vec![("a".into(), 900), ("b".into(), 300)], 2, 1, epoch);
        assert!(r.memory_is_complete(301, 2));
        assert!(!r.memory_is_complete(300, 2));
    }

    #[test]
    fn a_full_denylist_drops_the_soonest_expiring_and_raises_the_floor() {
        let r = subscribed();
        let epoch = r.claim_reload(1).unwrap();
        r.loaded(Vec::new(), 10, 1, epoch);
        for (j, exp) in [("a", 100), ("b", 200), ("c", 300), ("d", 400)] {
            r.apply(Revocation::jti(j, exp), 1);
            assert!(r.revoked_len() <= 3);
        }
        assert!(!r.jti_revoked(&TokenDigest::of("a"), 1));
        assert!(!r.memory_is_complete(100, 1), "a is only in the store now");
        assert!(r.memory_is_complete(101, 1));
        assert!(r.jti_revoked(&TokenDigest::of("d"), 1));
    }

    #[test]
    fn the_listener_follows_the_channel() {
        let state = Arc::new(Revocations::new(bounds()));
        let l = Listener {
            state: state.clone(),
            clock: Arc::new(crate::clock::FixedClock::at(10)),
        };
        l.subscribed();
        assert!(state.is_subscribed());
        l.deliver(Revocation::jti("j", 100));
        assert!(state.jti_revoked(&TokenDigest::of("j"), 10));
        state.keep(
            TokenDigest::of("t"),
            verified("k", None, "c", 100),
            10,
            state.seq(),
        );
        l.deliver_unreadable();
        assert_eq!(state.verified_len(), 0);
        l.lost();
        assert!(!state.is_subscribed());
    }
}
