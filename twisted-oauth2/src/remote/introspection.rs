//! RFC 7662 token introspection at the external issuer, for opaque access tokens, with a
//! short bounded cache.
//!
//! The cache is keyed by the token's SHA-256 (the token itself is never kept nor logged).
//! An active answer is reused until the earlier of its `exp` and the configured lifetime;
//! an inactive one for at most [`NEGATIVE_TTL`] seconds. Each table holds at most the
//! configured number of entries (expired entries are dropped when it is full, then the
//! table is emptied if still full), so memory is bounded whatever tokens arrive. The
//! trade-off: a token revoked at the issuer may be accepted for up to the cache lifetime.
//!
//! When the endpoint cannot be used (down, a 5xx or another unexpected status, a timeout,
//! an answer that is not introspection JSON), requests are answered
//! [`RemoteError::Unavailable`] for [`INTROSPECTION_RETRY`] seconds (or the endpoint's own
//! `Retry-After`) without asking again; the first request after that asks again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::RemoteError;
use crate::clock::Clock;
use crate::outbound::{Outbound, Policy};

/// The longest an inactive answer is reused, seconds.
pub const NEGATIVE_TTL: i64 = 5;
/// After a failed introspection, seconds until the endpoint is asked again.
pub const INTROSPECTION_RETRY: u64 = 5;

type Digest32 = [u8; 32];

/// What the issuer said about a token.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Introspected {
    /// `active: true`, with every member of the answer.
    Active(Arc<Map<String, Value>>),
    /// `active: false` (unknown, expired, revoked, or not for this client to know).
    Inactive,
}

/// An RFC 7662 client of one introspection endpoint, authenticating with
/// `client_secret_basic`, with its cache (cheap to share behind an `Arc`).
pub struct Introspector {
    outbound: Outbound,
    policy: Policy,
    endpoint: url::Url,
    client_id: String,
    client_secret: String,
    clock: Arc<dyn Clock>,
    ttl: i64,
    max_cached: usize,
    active: DashMap<Digest32, (i64, Arc<Map<String, Value>>)>,
    inactive: DashMap<Digest32, i64>,
    /// Unix seconds before which the endpoint is not asked (after a failure).
    down_until: AtomicI64,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Introspects at `endpoint` as `client_id`/`client_secret`, keeping active answers
    /// for up to `ttl` seconds (`0`: no cache) and at most `max_cached` of each kind.
    pub fn new(
        outbound: Outbound,
        policy: Policy,
        endpoint: url::Url,
        (client_id, client_secret): (String, String),
        clock: Arc<dyn Clock>,
        ttl: u64,
        max_cached: usize,
    ) -> Self {
        Introspector {
            outbound,
            policy,
            endpoint,
            client_id,
            client_secret,
            clock,
            ttl: i64::try_from(ttl).unwrap_or(3600),
            max_cached: max_cached.max(1),
            active: DashMap::new(),
            inactive: DashMap::new(),
            down_until: AtomicI64::new(i64::MIN),
        }
    }

    /// The endpoint asked.
    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// What the issuer says about `token`: from the cache when fresh, else asked.
    pub async fn introspect(&self, token: &str) -> Result<Introspected, RemoteError> {
        let key: Digest32 = Sha256::digest(token.as_bytes()).into();
        let now = self.clock.unix();
        if let Some(hit) = self.active.get(&key) {
            if hit.0 > now {
                return Ok(Introspected::Active(hit.1.clone()));
            }
        }
        if self.inactive.get(&key).is_some_and(|until| *until > now) {
            return Ok(Introspected::Inactive);
        }
        let down = self.down_until.load(Ordering::Relaxed);
        if down > now {
            return Err(RemoteError::unavailable(
                format!("introspection at {} failed recently", self.endpoint),
                Some(u64::try_from(down - now).unwrap_or(1)),
            ));
        }
        match self.ask(token).await {
            Ok(answer) => {
                self.remember(key, &answer, now);
                Ok(answer)
            }
            Err(e) => {
                let wait = match &e {
                    RemoteError::Unavailable { retry_after, .. } => *retry_after,
                    _ => INTROSPECTION_RETRY,
                };
                self.down_until
                    .store(now.saturating_add(wait as i64), Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn remember(&self, key: Digest32, answer: &Introspected, now: i64) {
        if self.ttl <= 0 {
            return;
        }
        match answer {
            Introspected::Active(claims) => {
                let mut until = now.saturating_add(self.ttl);
                if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
                    until = until.min(exp);
                }
                if until <= now {
                    return;
                }
                if self.active.len() >= self.max_cached {
                    self.active.retain(|_, v| v.0 > now);
                    if self.active.len() >= self.max_cached {
                        self.active.clear();
                    }
                }
                self.active.insert(key, (until, claims.clone()));
            }
            Introspected::Inactive => {
                if self.inactive.len() >= self.max_cached {
                    self.inactive.retain(|_, until| *until > now);
                    if self.inactive.len() >= self.max_cached {
                        self.inactive.clear();
                    }
                }
                self.inactive
                    .insert(key, now.saturating_add(self.ttl.min(NEGATIVE_TTL)));
            }
        }
    }

    async fn ask(&self, token: &str) -> Result<Introspected, RemoteError> {
        let u = &self.endpoint;
        let answer = self
            .outbound
            .post_form(
                u,
                &[("token", token), ("token_type_hint", "access_token")],
                Some((&self.client_id, &self.client_secret)),
                &self.policy,
            )
            .await
            .map_err(|e| {
                RemoteError::unavailable(
                    format!("introspection at {u}: {e}"),
                    Some(INTROSPECTION_RETRY),
                )
            })?;
        match answer.status {
            200 => {}
            401 | 403 => {
                log::error!(
                    "twisted-oauth2: the introspection endpoint {u} refused this resource \
                     server's client credentials (client `{}`): check \
                     resource_server.introspection",
                    crate::error::printable(&self.client_id)
                );
                return Err(RemoteError::unavailable(
                    format!("introspection at {u} answered {}", answer.status),
                    None,
                ));
            }
            s => {
                return Err(RemoteError::unavailable(
                    format!("introspection at {u} answered {s}"),
                    answer.retry_after.or(Some(INTROSPECTION_RETRY)),
                ))
            }
        }
        let body: Map<String, Value> = serde_json::from_slice(&answer.body).map_err(|e| {
            RemoteError::unavailable(
                format!("introspection at {u}: not a JSON object: {e}"),
                Some(INTROSPECTION_RETRY),
            )
        })?;
        match body.get("active") {
            Some(Value::Bool(true)) => Ok(Introspected::Active(Arc::new(body))),
            Some(Value::Bool(false)) => Ok(Introspected::Inactive),
            _ => Err(RemoteError::unavailable(
                format!("introspection at {u}: the answer has no boolean `active` (RFC 7662 §2.2)"),
                Some(INTROSPECTION_RETRY),
            )),
        }
    }
}
