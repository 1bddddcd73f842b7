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
//! | failed client authentications | the `client_id` presented and the client address together (token, revocation, introspection, device authorization endpoints; the registration access token at RFC 7592 registration management) | 10 per 60 s |
//! | their ceiling | the `client_id` presented, from every address together | 100 per 60 s |
//! | unknown user codes entered | the signed-in user, and the client address (per /64 for IPv6) | 10 per 300 s |
//!
//! Limits on guessing one subject's secret (a client's secret, a user's password) are a
//! [`FailureLimit`]: a low limit per subject *and* address, so a stranger who knows a
//! `client_id` or a user name cannot lock it out from their own address, and a higher
//! ceiling per subject as the backstop against guessing spread over many addresses. An
//! application's own sign-in form uses the same component (the demo's `/login` does).
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
    /// Failed client authentications per `client_id` from one client address (an IPv4
    /// address, an IPv6 /64) per window. Default 10; `0`: off.
    pub client_auth_failures: u32,
    /// Seconds of that window (and of the ceiling's). Default 60.
    pub client_auth_window: u64,
    /// Failed client authentications per `client_id` from every address together per
    /// window: the backstop against guessing spread over many addresses (when it is
    /// reached the `client_id` is refused from everywhere until the window refills).
    /// Default 100; `0`: off.
    pub client_auth_ceiling: u32,
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
            client_auth_ceiling: 100,
            user_code_failures: 10,
            user_code_window: 300,
            max_keys: 100_000,
        }
    }
}

impl LimitsConfig {
    /// The rule of failed client authentications per `client_id` and address.
    pub fn client_auth(&self) -> Rule {
        Rule::new(
            "client_auth",
            self.client_auth_failures,
            self.client_auth_window,
        )
    }

    /// The ceiling of failed client authentications per `client_id`.
    pub fn client_auth_ceiling(&self) -> Rule {
        Rule::new(
            "client_auth_ceiling",
            self.client_auth_ceiling,
            self.client_auth_window,
        )
    }

    /// The [`FailureLimit`] of client authentication: [`client_auth`](Self::client_auth)
    /// per `client_id` and address, [`client_auth_ceiling`](Self::client_auth_ceiling) per
    /// `client_id`, nothing per address alone.
    pub fn client_auth_limit(&self) -> FailureLimit {
        FailureLimit::new(self.client_auth(), self.client_auth_ceiling())
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

/// Failed attempts at one subject's secret (a client's secret, a user's password, a
/// token), counted in the server's [`CounterStore`] under up to three [`Rule`]s:
///
/// - `per_address`: per subject *and* client address (an IPv4 address, an IPv6 /64): the
///   low limit a guessing loop meets first. The same subject from another address is not
///   affected, so a stranger cannot lock a known subject out;
/// - `ceiling`: per subject from every address together, higher: the backstop against
///   guessing spread over many addresses (while it holds, the subject is refused
///   everywhere);
/// - `address` (off unless [`with_address_rule`](Self::with_address_rule)): per address
///   across subjects, against one address trying many subjects (password spraying).
///
/// Ask [`refused`](Self::refused) before checking the secret (refused: answer `429` with
/// `Retry-After`, without checking it) and call [`failed`](Self::failed) when the check
/// failed; a success counts nothing. Every refusal is an
/// [`AuditEvent::RateLimited`](crate::audit::AuditEvent::RateLimited) naming the rule and its
/// key (`<address> <subject>`, `<subject>` or `<address>`). A counter store that cannot be
/// reached refuses nobody (logged).
///
/// ```
/// use twisted_oauth2::limits::{FailureLimit, Rule};
/// # async fn demo(server: &twisted_oauth2::server::AuthorizationServer) {
/// const LOGIN: FailureLimit = FailureLimit::new(
///     Rule::new("app_login", 5, 60),
///     Rule::new("app_login_user", 100, 60),
/// )
/// .with_address_rule(Rule::new("app_login_address", 20, 60));
/// let address = "192.0.2.7".parse().ok();
/// if let Some(wait) = LOGIN.refused(server, "alice", address).await {
///     // 429 with `Retry-After: {wait}`, without checking the password.
/// #   let _ = wait;
///     return;
/// }
/// let password_ok = false; // the application's check
/// if !password_ok {
///     LOGIN.failed(server, "alice", address).await;
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureLimit {
    /// Failures per subject and address.
    pub per_address: Rule,
    /// Failures per subject from every address.
    pub ceiling: Rule,
    /// Failures per address across subjects (`max` 0: off).
    pub address: Rule,
}

impl FailureLimit {
    /// Failures counted per subject and address under `per_address`, and per subject
    /// under `ceiling`.
    pub const fn new(per_address: Rule, ceiling: Rule) -> Self {
        FailureLimit {
            per_address,
            ceiling,
            address: Rule::new("", 0, 1),
        }
    }

    /// Failures also counted per address across subjects, under `address`.
    pub const fn with_address_rule(mut self, address: Rule) -> Self {
        self.address = address;
        self
    }

    /// Each rule in use with its key for `subject` from `address`.
    fn keys(&self, subject: &str, address: Option<std::net::IpAddr>) -> Vec<(&Rule, String)> {
        let addr = crate::rate_limit::limit_key(address).to_string();
        [
            (&self.per_address, format!("{addr} {subject}")),
            (&self.ceiling, subject.to_owned()),
            (&self.address, addr),
        ]
        .into_iter()
        .filter(|(rule, _)| rule.max > 0)
        .collect()
    }

    /// Whether `subject` from `address` is refused now (nothing is counted): the seconds
    /// to wait, audited as `rate_limited`.
    pub async fn refused(
        &self,
        server: &crate::server::AuthorizationServer,
        subject: &str,
        address: Option<std::net::IpAddr>,
    ) -> Option<u64> {
        for (rule, key) in self.keys(subject, address) {
            match server.counters().refused(rule, &key).await {
                Ok(Some(wait)) => {
                    audit_refusal(server, rule, key, wait);
                    return Some(wait);
                }
                Ok(None) => {}
                Err(e) => log::warn!("twisted-oauth2: cannot read the limit `{}`: {e}", rule.name),
            }
        }
        None
    }

    /// Counts one failure of `subject` from `address` under every rule: the seconds to
    /// wait when one of them is now over its limit (audited as `rate_limited`).
    pub async fn failed(
        &self,
        server: &crate::server::AuthorizationServer,
        subject: &str,
        address: Option<std::net::IpAddr>,
    ) -> Option<u64> {
        let mut refused = None;
        for (rule, key) in self.keys(subject, address) {
            match server.counters().hit(rule, &key).await {
                Ok(Some(wait)) => {
                    audit_refusal(server, rule, key, wait);
                    refused = refused.max(Some(wait));
                }
                Ok(None) => {}
                Err(e) => log::warn!(
                    "twisted-oauth2: cannot count under the limit `{}`: {e}",
                    rule.name
                ),
            }
        }
        refused
    }
}

/// The audit event of a refusal under `rule`.
fn audit_refusal(server: &crate::server::AuthorizationServer, rule: &Rule, key: String, wait: u64) {
    server
        .context()
        .audit(crate::audit::AuditEvent::RateLimited {
            limit: rule.name,
            key,
            retry_after: wait,
        });
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
