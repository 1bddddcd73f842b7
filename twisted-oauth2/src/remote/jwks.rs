//! An external issuer's JWKS, cached: refreshed when its `Cache-Control` lifetime ends and
//! on a token naming an unknown `kid` (at most once per [`UNKNOWN_KID_REFETCH_PERIOD`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::RemoteError;
use crate::clock::Clock;
use crate::jwt::{verify_access_token, Expectations, JwtRejection, KeySet, VerifiedJwt};
use crate::outbound::{Outbound, Policy};

/// The shortest a fetched JWKS is kept (a `max-age` below is raised to it).
pub const MIN_TTL: i64 = 60;
/// The longest a fetched JWKS is kept (a `max-age` above is lowered to it).
pub const MAX_TTL: i64 = 24 * 3600;
/// How long a JWKS without `Cache-Control` is kept.
pub const DEFAULT_TTL: i64 = 300;
/// After a failed refresh, how long the previous keys are used before the next attempt.
pub const RETRY_AFTER_FAILURE: u64 = 30;
/// After a failed first fetch (no keys yet), how long requests are answered
/// [`RemoteError::Unavailable`] without asking the issuer again.
pub const RETRY_WITHOUT_KEYS: u64 = 5;
/// A token naming a `kid` the set lacks triggers a refetch at most once per this period.
pub const UNKNOWN_KID_REFETCH_PERIOD: Duration = Duration::from_secs(10);

struct Cached {
    /// `None` until a fetch succeeds.
    keys: Option<KeySet>,
    /// Unix seconds until which this state is used without asking the issuer.
    fresh_until: i64,
    /// Bumped at every refresh attempt (to tell whether another task refreshed already).
    generation: u64,
}

impl Cached {
    fn keys_or_unavailable(&self, now: i64) -> Result<KeySet, RemoteError> {
        self.keys.clone().ok_or_else(|| {
            RemoteError::unavailable(
                "the issuer's keys could not be fetched".into(),
                Some(u64::try_from(self.fresh_until - now).unwrap_or(0).max(1)),
            )
        })
    }
}

struct Inner {
    outbound: Outbound,
    jwks_uri: url::Url,
    policy: Policy,
    clock: Arc<dyn Clock>,
    state: ArcSwap<Cached>,
    refresh: tokio::sync::Mutex<()>,
    unknown_kid: DefaultDirectRateLimiter,
}

/// An external issuer's key set, cached (cheap to clone: shared).
///
/// A validation with a fresh cached set does no I/O and takes no lock (the set is read
/// through [`arc_swap`]). A stale set is refreshed by one task while others wait for its
/// answer; when the issuer cannot be reached the previous keys stay in use
/// ([`RETRY_AFTER_FAILURE`] seconds until the next attempt) and only a server that has
/// never had keys answers [`RemoteError::Unavailable`].
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("jwks_uri", &self.inner.jwks_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// The set published at `jwks_uri`, fetched on first use with `policy`.
    pub fn new(
        outbound: Outbound,
        jwks_uri: url::Url,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let quota = Quota::with_period(UNKNOWN_KID_REFETCH_PERIOD)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        RemoteJwks {
            inner: Arc::new(Inner {
                outbound,
                jwks_uri,
                policy,
                clock,
                state: ArcSwap::from_pointee(Cached {
                    keys: None,
                    fresh_until: i64::MIN,
                    generation: 0,
                }),
                refresh: tokio::sync::Mutex::new(()),
                unknown_kid: RateLimiter::direct(quota),
            }),
        }
    }

    /// Where the set is fetched from.
    pub fn uri(&self) -> &url::Url {
        &self.inner.jwks_uri
    }

    /// The current keys, refreshed first when stale.
    pub async fn key_set(&self) -> Result<KeySet, RemoteError> {
        let state = self.inner.state.load_full();
        let now = self.inner.clock.unix();
        if state.fresh_until > now {
            return state.keys_or_unavailable(now);
        }
        self.refresh(state.generation).await
    }

    /// Verifies `token` with the issuer's keys: `Ok(Err(reason))` for a refused token, `Err`
    /// only when the keys cannot be had. A value that is not JWT-shaped is refused without
    /// I/O.
    pub async fn verify(
        &self,
        token: &str,
        expect: &Expectations<'_>,
    ) -> Result<Result<VerifiedJwt, JwtRejection>, RemoteError> {
        let state = self.inner.state.load_full();
        let now = self.inner.clock.unix();
        let empty = KeySet::empty();
        let first = verify_access_token(token, state.keys.as_ref().unwrap_or(&empty), expect);
        if matches!(first, Err(JwtRejection::NotAJwt | JwtRejection::Malformed)) {
            return Ok(first);
        }
        let refetch = if state.fresh_until <= now {
            true
        } else if state.keys.is_none() {
            return Err(state.keys_or_unavailable(now).unwrap_err());
        } else {
            first == Err(JwtRejection::UnknownKey) && self.inner.unknown_kid.check().is_ok()
        };
        if !refetch {
            return Ok(first);
        }
        let keys = self.refresh(state.generation).await?;
        Ok(verify_access_token(token, &keys, expect))
    }

    /// Fetches the set unless another task already refreshed after `seen` (then its answer
    /// is used).
    async fn refresh(&self, seen: u64) -> Result<KeySet, RemoteError> {
        let _one = self.inner.refresh.lock().await;
        let current = self.inner.state.load_full();
        let now = self.inner.clock.unix();
        if current.generation != seen {
            return current.keys_or_unavailable(now);
        }
        let (next, result) = match self.fetch().await {
            Ok((keys, ttl)) => (
                Cached {
                    keys: Some(keys.clone()),
                    fresh_until: now + ttl,
                    generation: current.generation + 1,
                },
                Ok(keys),
            ),
            Err(e) => {
                log::warn!("JWKS refresh from {} failed: {e}", self.inner.jwks_uri);
                let (keys, wait) = match &current.keys {
                    Some(keys) => (Some(keys.clone()), RETRY_AFTER_FAILURE),
                    None => (None, RETRY_WITHOUT_KEYS),
                };
                let next = Cached {
                    keys,
                    fresh_until: now + wait as i64,
                    generation: current.generation + 1,
                };
                let result = next.keys_or_unavailable(now);
                (next, result)
            }
        };
        self.inner.state.store(Arc::new(next));
        result
    }

    async fn fetch(&self) -> Result<(KeySet, i64), RemoteError> {
        let u = &self.inner.jwks_uri;
        let answer = self
            .inner
            .outbound
            .get(
                u,
                "application/jwk-set+json, application/json",
                &self.inner.policy,
            )
            .await
            .map_err(|e| RemoteError::unavailable(format!("{u}: {e}"), None))?;
        if answer.status != 200 {
            return Err(RemoteError::unavailable(
                format!("{u} answered {}", answer.status),
                answer.retry_after,
            ));
        }
        let keys = KeySet::from_jwks_json(&answer.body)
            .map_err(|e| RemoteError::unavailable(format!("{u}: {e}"), None))?;
        let ttl = answer
            .max_age
            .map_or(DEFAULT_TTL, |s| i64::try_from(s).unwrap_or(MAX_TTL))
            .clamp(MIN_TTL, MAX_TTL);
        Ok((keys, ttl))
    }
}
