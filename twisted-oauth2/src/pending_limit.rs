//! Bounds on pending authorization requests: the authorization endpoint stores a record for
//! every valid request before anyone has signed in, so an unauthenticated client could
//! otherwise fill the store. This table admits a request only while this server holds
//! fewer than `max_pending_requests` live ones, and keeps at most
//! `max_pending_per_user_agent` per browser (its binding cookie), dropping that browser's
//! oldest when it starts another.
//!
//! The table holds digests and expiry times only (about 100 bytes a request) and is used
//! on the authorization path, never on the token or validation hot paths.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::token::TokenDigest;

/// The outcome of [`PendingLimiter::admit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Admitted; the handle of a request of the same browser that was dropped to make
    /// room, which the caller deletes from the store.
    Admitted(Option<TokenDigest>),
    /// The table is full.
    Full,
}

#[derive(Default)]
struct Table {
    /// Live requests: handle digest -> (binding digest, expiry).
    live: HashMap<TokenDigest, (TokenDigest, i64)>,
    /// Each browser's live requests, oldest first.
    per_agent: HashMap<TokenDigest, VecDeque<TokenDigest>>,
    /// Every admitted request in admission order, for expiry; may hold entries already
    /// released (skipped, and compacted when it grows).
    order: VecDeque<(i64, TokenDigest)>,
}

impl Table {
    fn remove(&mut self, handle: &TokenDigest) -> bool {
        let Some((agent, _)) = self.live.remove(handle) else {
            return false;
        };
        if let Some(q) = self.per_agent.get_mut(&agent) {
            q.retain(|h| h != handle);
            if q.is_empty() {
                self.per_agent.remove(&agent);
            }
        }
        true
    }

    fn expire(&mut self, now: i64) {
        while let Some(&(expires, handle)) = self.order.front() {
            if expires > now {
                break;
            }
            self.order.pop_front();
            if self.live.get(&handle).is_some_and(|(_, e)| *e <= now) {
                self.remove(&handle);
            }
        }
    }
}

/// Counts this server's live pending requests, in total and per browser.
pub(crate) struct PendingLimiter {
    table: Mutex<Table>,
    max_total: usize,
    max_per_agent: usize,
}

impl PendingLimiter {
    pub(crate) fn new(max_total: usize, max_per_agent: usize) -> Self {
        PendingLimiter {
            table: Mutex::new(Table::default()),
            max_total: max_total.max(1),
            max_per_agent: max_per_agent.max(1),
        }
    }

    /// Admits a new pending request `handle` of browser `agent`, live until `expires`.
    pub(crate) fn admit(
        &self,
        handle: TokenDigest,
        agent: TokenDigest,
        expires: i64,
        now: i64,
    ) -> Admission {
        let Ok(mut t) = self.table.lock() else {
            // A panic while holding the lock cannot leave the table inconsistent in a way
            // that matters more than refusing; refuse rather than grow unbounded.
            return Admission::Full;
        };
        t.expire(now);
        if t.order.len() > 2 * self.max_total + 64 {
            let Table { live, order, .. } = &mut *t;
            order.retain(|(_, h)| live.contains_key(h));
        }
        let mut dropped = None;
        if t.per_agent.get(&agent).map_or(0, VecDeque::len) >= self.max_per_agent {
            if let Some(oldest) = t.per_agent.get(&agent).and_then(|q| q.front().copied()) {
                t.remove(&oldest);
                dropped = Some(oldest);
            }
        }
        if t.live.len() >= self.max_total {
            return Admission::Full;
        }
        t.live.insert(handle, (agent, expires));
        t.per_agent.entry(agent).or_default().push_back(handle);
        t.order.push_back((expires, handle));
        Admission::Admitted(dropped)
    }

    /// Forgets a request that was decided, refused or could not be stored.
    pub(crate) fn release(&self, handle: &TokenDigest) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(handle);
        }
    }

    /// Live requests counted (for tests and diagnostics).
    pub(crate) fn len(&self) -> usize {
        self.table.lock().map(|t| t.live.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> TokenDigest {
        TokenDigest::of(s)
    }

    #[test]
    fn total_is_bounded_and_frees_on_release_and_expiry() {
        let l = PendingLimiter::new(3, 10);
        for i in 0..3 {
            assert_eq!(
                l.admit(d(&format!("h{i}")), d(&format!("a{i}")), 100, 0),
                Admission::Admitted(None)
            );
        }
        assert_eq!(l.admit(d("h3"), d("a3"), 100, 0), Admission::Full);
        l.release(&d("h0"));
        assert_eq!(l.admit(d("h3"), d("a3"), 100, 0), Admission::Admitted(None));
        assert_eq!(l.admit(d("h4"), d("a4"), 200, 50), Admission::Full);
        // At t=100 every earlier request has expired.
        assert_eq!(
            l.admit(d("h4"), d("a4"), 200, 100),
            Admission::Admitted(None)
        );
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn one_browser_keeps_only_its_newest_requests() {
        let l = PendingLimiter::new(100, 2);
        assert_eq!(l.admit(d("h0"), d("a"), 100, 0), Admission::Admitted(None));
        assert_eq!(l.admit(d("h1"), d("a"), 100, 0), Admission::Admitted(None));
        assert_eq!(
            l.admit(d("h2"), d("a"), 100, 0),
            Admission::Admitted(Some(d("h0")))
        );
        assert_eq!(l.admit(d("h3"), d("b"), 100, 0), Admission::Admitted(None));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn a_flood_of_admit_and_release_keeps_the_order_queue_bounded() {
        let l = PendingLimiter::new(10, 10);
        for i in 0..10_000 {
            let h = d(&format!("h{i}"));
            assert!(matches!(
                l.admit(h, d("a"), 1_000, 0),
                Admission::Admitted(_)
            ));
            l.release(&h);
        }
        let t = l.table.lock().unwrap();
        assert!(t.order.len() <= 2 * 10 + 65, "{}", t.order.len());
        assert!(t.live.is_empty() && t.per_agent.is_empty());
    }
}
