//! Brute-force limits: counted attempts per key (a client id, a signed-in user, an
//! address) under a [`Rule`], kept in a [`CounterStore`]. A key over its rule is refused
//! for the seconds [`CounterStore::hit`] returns: `429` with `Retry-After` at the
//! endpoints, a `429` page on the device verification page (the device-code grant's own
//! polling limit is `slow_down`, see [`crate::device`]). Only failures are counted, so a
//! client or user who gets it right is never slowed, and other keys are never affected.
//!
//! The limits in use ([`LimitsConfig`], `[oauth2.limits]`):
//!
//! | limit | key | default |
//! |---|---|---|
//! | failed client authentications | the `client_id` presented (token, revocation, introspection, device authorization endpoints; the registration access token at RFC 7592 registration management) | 10 per 60 s |
//! | unknown user codes entered | the signed-in user, and the client address (per /64 for IPv6) | 10 per 300 s |
//!
//! The default store is [`MemoryCounters`] (one process, on `governor`). With a Redis
//! `storage` URL (feature `redis`) the Redis store counts instead (a fixed window per key,
//! one Lua script per count, shared by every instance on that database): see
//! [`crate::storage::connect`]. Any other shared store is given with
//! [`ServerBuilder::counter_store`](crate::server::ServerBuilder::counter_store) or in the
//! stores' `dyn CounterStore` slot ([`StoresBuilder::slot`](crate::storage::StoresBuilder::slot)).
//! Every refusal is an [`AuditEvent::RateLimited`](crate::audit::AuditEvent::RateLimited).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// One limit: at most `max` counted attempts per key in `window_seconds`; the attempt
/// after the `max`-th is refused (as a token bucket refilled evenly over the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// The limit's name (in audit events and logs; a counter store's key space).
    pub name: &'static str,
    /// Attempts allowed per window; `0` turns the limit off.
    pub max: u32,
    /// The window in seconds.
    pub window_seconds: u64,
}

impl Rule {
    /// A rule.
    pub const fn new(name: &'static str, max: u32, window_seconds: u64) -> Self {
        Rule {
            name,
            max,
            window_seconds,
        }
    }
}

/// The `[oauth2.limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Failed client authentications per `client_id` per window. Default 10; `0`: off.
    pub client_auth_failures: u32,
    /// Seconds of that window. Default 60.
    pub client_auth_window: u64,
    /// Unknown user codes entered per signed-in user, and per address, per window.
    /// Default 10; `0`: off.
    pub user_code_failures: u32,
    /// Seconds of that window. Default 300.
    pub user_code_window: u64,
    /// Most keys [`MemoryCounters`] tracks per rule. Default 100 000.
    pub max_keys: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            client_auth_failures: 10,
            client_auth_window: 60,
            user_code_failures: 10,
            user_code_window: 300,
            max_keys: 100_000,
        }
    }
}

impl LimitsConfig {
    /// The rule of failed client authentications.
    pub fn client_auth(&self) -> Rule {
        Rule::new(
            "client_auth",
            self.client_auth_failures,
            self.client_auth_window,
        )
    }

    /// The rule of unknown user codes.
    pub fn user_code(&self) -> Rule {
        Rule::new("user_code", self.user_code_failures, self.user_code_window)
    }
}

/// Where attempts are counted. Both methods are atomic per key.
#[async_trait::async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Counts one attempt of `key` under `rule`: `Ok(None)` within the limit,
    /// `Ok(Some(seconds))` over it (the key is refused for that long).
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError>;

    /// Whether `key` is refused under `rule` now (without counting): the seconds left.
    async fn refused(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError>;
}

/// The in-process [`CounterStore`]: a bounded `governor` keyed limiter per rule, and the
/// keys refused with until when.
pub struct MemoryCounters {
    limiters: dashmap::DashMap<&'static str, std::sync::Arc<DefaultKeyedRateLimiter<String>>>,
    refused: dashmap::DashMap<(&'static str, String), std::time::Instant>,
    max_keys: usize,
}

impl std::fmt::Debug for MemoryCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCounters").finish_non_exhaustive()
    }
}

impl MemoryCounters {
    /// Counters keeping at most `max_keys` keys per rule (beyond, idle keys are forgotten
    /// first; while the table is still full new keys count in one shared bucket).
    pub fn new(max_keys: usize) -> Self {
        MemoryCounters {
            limiters: dashmap::DashMap::new(),
            refused: dashmap::DashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// The limiter of `rule`: its `max`-th counted attempt is the first one refused, which
    /// marks the key refused for the next attempt.
    fn limiter(
        &self,
        rule: &Rule,
        max: NonZeroU32,
    ) -> std::sync::Arc<DefaultKeyedRateLimiter<String>> {
        self.limiters
            .entry(rule.name)
            .or_insert_with(|| {
                let period = Duration::from_secs(rule.window_seconds.max(1)) / max.get();
                let burst = NonZeroU32::new(max.get() - 1).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period.max(Duration::from_millis(1)))
                    .unwrap_or_else(|| Quota::per_second(max))
                    .allow_burst(burst);
                std::sync::Arc::new(governor::RateLimiter::keyed(quota))
            })
            .clone()
    }
}

#[async_trait::async_trait]
impl CounterStore for MemoryCounters {
    async fn hit(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError> {
        let Some(max) = NonZeroU32::new(rule.max) else {
            return Ok(None);
        };
        if max.get() == 1 {
            // One attempt per window: refused from the next one on.
            let wait = Duration::from_secs(rule.window_seconds.max(1));
            self.refused.insert(
                (rule.name, key.to_owned()),
                std::time::Instant::now() + wait,
            );
            return Ok(Some(wait.as_secs()));
        }
        let l = self.limiter(rule, max);
        if l.len() >= self.max_keys {
            l.retain_recent();
        }
        let key = if l.len() >= self.max_keys {
            "(overflow)".to_owned()
        } else {
            key.to_owned()
        };
        match l.check_key(&key) {
            Ok(()) => Ok(None),
            Err(not_until) => {
                use governor::clock::{Clock, DefaultClock};
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if self.refused.len() >= self.max_keys {
                    let now = std::time::Instant::now();
                    self.refused.retain(|_, until| *until > now);
                }
                if self.refused.len() < self.max_keys {
                    self.refused
                        .insert((rule.name, key), std::time::Instant::now() + wait);
                }
                Ok(Some(secs.max(1)))
            }
        }
    }

    async fn refused(&self, rule: &Rule, key: &str) -> Result<Option<u64>, StorageError> {
        let k = (rule.name, key.to_owned());
        let Some(until) = self.refused.get(&k).map(|u| *u) else {
            return Ok(None);
        };
        let now = std::time::Instant::now();
        if until <= now {
            self.refused.remove(&k);
            return Ok(None);
        }
        let left = until - now;
        Ok(Some(left.as_secs() + u64::from(left.subsec_nanos() > 0)))
    }
}

/// The answer to a refused key at an endpoint: `429` with `Retry-After`.
pub(crate) fn too_many(code: crate::ErrorCode, what: &str, wait: u64) -> crate::OAuthError {
    crate::OAuthError::with_description(code, format!("too many {what}; retry later"))
        .with_status(429)
        .with_header("Retry-After", wait.max(1).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_over_its_rule_is_refused_and_others_are_not() {
        let c = MemoryCounters::new(100);
        let rule = Rule::new("t", 3, 60);
        for _ in 0..2 {
            assert_eq!(c.hit(&rule, "a").await.unwrap(), None);
        }
        // The third attempt is counted and marks the key refused for the fourth.
        let wait = c.hit(&rule, "a").await.unwrap().expect("refused");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(c.refused(&rule, "a").await.unwrap().is_some());
        assert_eq!(c.refused(&rule, "b").await.unwrap(), None);
        assert_eq!(
            c.hit(&rule, "b").await.unwrap(),
            None,
            "another key is unaffected"
        );
        let off = Rule::new("off", 0, 60);
        for _ in 0..100 {
            assert_eq!(c.hit(&off, "a").await.unwrap(), None);
        }
    }
}
