//! The [`KeyRing`]: the signing keys of a server at runtime, and their scheduled rotation.
//!
//! # Sources
//!
//! - **Configured keys** (`[[oauth2.signing_keys.keys]]`): read once at launch from PEM,
//!   never written to a store. The first signs; the others are only published. The
//!   operator rotates them (docs/jwt.md, "Signing keys").
//! - **Generated keys**: one per listed algorithm per rotation period, kept in the
//!   store's [`SigningKeyStore`] with the private half sealed under the key-encryption key
//!   (AES-256-GCM, see docs/jwt.md). Created with
//!   [`create_key_if_absent`](SigningKeyStore::create_key_if_absent), so instances
//!   starting together on one store agree on one key per (algorithm, generation), and a
//!   restart reuses the stored keys.
//!
//! # The rotation timeline ([`RotationSchedule`])
//!
//! With period `P`, generation `g = floor(now / P)`. The key of generation `g` signs from
//! `g·P` until `(g+1)·P`; it is created (and so published) at the start of generation
//! `g-1`, a whole period before it signs; it stays published until
//! `(g+1)·P + access_token_lifetime + token_leeway`, when the last token it signed has
//! expired. At any time the JWKS holds the key that signs, the next one, and the previous
//! one while its tokens live. Only the very first key of a store signs at once (nothing
//! could have published it before).
//!
//! [`KeyRing::refresh`] brings the ring up to date (creating what the schedule needs); the
//! Rocket fairing calls it at launch and from a background task beside the purge loop,
//! at each change of the schedule and at least every minute, using the server's clock.
//! Readers ([`KeyRing::signer`], [`KeyRing::jwks_json`]) never lock: the state is swapped
//! whole ([`arc_swap`]). [`KeyRing::signer`] picks, at the time of the call, the key whose
//! signing period covers now, so a late refresh never makes a key sign outside its period.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::Algorithm;

use super::keys::{algorithm_name, algorithm_of, KeyError, PrivateKey, Signer};
use super::seal::{Kek, Keks};
use super::KeySet;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::storage::{SigningKeyRecord, SigningKeyStore};

/// `Cache-Control: max-age` of the JWKS with configured keys (their changes are the
/// operator's), seconds.
pub const CONFIGURED_JWKS_MAX_AGE: u64 = 600;

/// The longest `max-age` of the JWKS with generated keys, seconds (one day).
pub const MAX_JWKS_MAX_AGE: u64 = 86_400;

/// The longest time between two refreshes of the rotation task, seconds.
pub const MAX_REFRESH_INTERVAL: u64 = 60;

/// When generated keys sign and are published (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationSchedule {
    /// Seconds each key signs for (`signing_keys.rotation_period`).
    pub period: i64,
    /// Seconds a key stays published after it stops signing: the longest access-token
    /// lifetime plus the leeway.
    pub retire_after: i64,
}

impl RotationSchedule {
    /// A schedule with these periods (`period` at least 1).
    pub fn new(period: i64, retire_after: i64) -> Self {
        RotationSchedule {
            period: period.max(1),
            retire_after: retire_after.max(0),
        }
    }

    /// The generation that signs at `now`.
    pub fn generation(&self, now: i64) -> i64 {
        now.div_euclid(self.period)
    }

    /// When the key of generation `g` starts signing.
    pub fn signs_from(&self, g: i64) -> i64 {
        g.saturating_mul(self.period)
    }

    /// When the key of generation `g` stops signing.
    pub fn signs_until(&self, g: i64) -> i64 {
        self.signs_from(g.saturating_add(1))
    }

    /// When the key of generation `g` leaves the JWKS.
    pub fn published_until(&self, g: i64) -> i64 {
        self.signs_until(g).saturating_add(self.retire_after)
    }

    /// When the next key is published (created): the start of the next generation.
    pub fn next_publication(&self, now: i64) -> i64 {
        self.signs_until(self.generation(now))
    }
}

/// A key that may sign during `[from, until)`.
struct Slot {
    from: i64,
    until: i64,
    signer: Arc<Signer>,
}

/// What readers see, swapped whole.
struct RingState {
    /// The signing algorithm's keys, by `from`.
    signing: Vec<Slot>,
    /// The published keys.
    jwk_set: Arc<JwkSet>,
    /// `jwk_set` as JSON.
    jwks: Arc<str>,
    /// `jwk_set` ready to verify with.
    key_set: KeySet,
    /// The earliest `published_until` of a published generated key.
    next_retirement: Option<i64>,
}

impl RingState {
    fn empty() -> Self {
        RingState {
            signing: Vec::new(),
            jwk_set: Arc::new(JwkSet { keys: Vec::new() }),
            jwks: Arc::from(r#"{"keys":[]}"#),
            key_set: KeySet::empty(),
            next_retirement: None,
        }
    }

    fn new(
        signing: Vec<Slot>,
        keys: Vec<Jwk>,
        next_retirement: Option<i64>,
    ) -> Result<Self, KeyError> {
        let set = JwkSet { keys };
        let jwks = serde_json::to_string(&set).map_err(|_| KeyError::Crypto("JWKS"))?;
        let key_set = KeySet::from_jwk_set(set.clone()).map_err(|e| KeyError::BadRecord {
            kid: String::new(),
            reason: format!("the published keys do not verify: {e}"),
        })?;
        Ok(RingState {
            signing,
            jwk_set: Arc::new(set),
            jwks: Arc::from(jwks),
            key_set,
            next_retirement,
        })
    }
}

/// Generated keys: what to make and how to seal it.
struct Generated {
    algorithms: Vec<Algorithm>,
    schedule: RotationSchedule,
    rsa_bits: u32,
    keks: Keks,
}

enum Source {
    Configured,
    Generated(Generated),
}

struct Inner {
    state: ArcSwap<RingState>,
    clock: Arc<dyn Clock>,
    source: Source,
}

/// The signing keys of a server at runtime (contract C of issue 20): the key that signs
/// now, every published key, and the published JWKS, pre-serialised. Cheap to clone
/// (one `Arc`). A format reads it from the keys slot:
/// `ctx.keys()?.get::<KeyRing>()` ([`FormatKeys`](crate::format::FormatKeys)).
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.load();
        f.debug_struct("KeyRing")
            .field("generated", &self.is_generated())
            .field("published", &state.jwk_set.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The ring of `config.signing_keys` (whether or not `enabled`), on `clock`.
    ///
    /// Configured keys are read here (PEM files too: call this at launch, not on a
    /// request path) and the ring is complete. Generated keys need the key-encryption key
    /// (outside `allow_insecure_request_debug`, [`KeyError::NoKek`] without one) and
    /// [`Self::refresh`] before the first signature.
    pub fn from_config(config: &ServerConfig, clock: Arc<dyn Clock>) -> Result<KeyRing, KeyError> {
        let sk = &config.signing_keys;
        let source = if sk.keys.is_empty() {
            let algorithms = sk
                .algorithms
                .iter()
                .map(|a| algorithm_of(a).ok_or(KeyError::Crypto("unsupported algorithm")))
                .collect::<Result<Vec<_>, _>>()?;
            let current = match &sk.key_encryption_key {
                Some(k) => Kek::from_base64(k)?,
                None if config.allow_insecure_request_debug => {
                    log::warn!(
                        "twisted-oauth2: INSECURE: signing_keys.key_encryption_key is not set: \
                         generated signing keys are sealed under a key of this process only \
                         (allowed by allow_insecure_request_debug); keys a durable store keeps \
                         will not unseal after a restart. Set key_encryption_key in production."
                    );
                    Kek::ephemeral()?
                }
                None => return Err(KeyError::NoKek),
            };
            let retired = sk
                .retired_key_encryption_keys
                .iter()
                .map(|k| Kek::from_base64(k))
                .collect::<Result<Vec<_>, _>>()?;
            let retire_after = config
                .access_token_lifetime
                .saturating_add(config.token_leeway);
            Source::Generated(Generated {
                algorithms,
                schedule: RotationSchedule::new(
                    i64::try_from(sk.rotation_period).unwrap_or(i64::MAX),
                    i64::try_from(retire_after).unwrap_or(i64::MAX),
                ),
                rsa_bits: sk.rsa_key_size,
                keks: Keks::new(current, retired),
            })
        } else {
            Source::Configured
        };
        let state = match &source {
            Source::Configured => configured_state(config)?,
            Source::Generated(_) => RingState::empty(),
        };
        Ok(KeyRing {
            inner: Arc::new(Inner {
                state: ArcSwap::from_pointee(state),
                clock,
                source,
            }),
        })
    }

    /// Whether the keys are generated (kept in the store and rotated) rather than
    /// configured.
    pub fn is_generated(&self) -> bool {
        matches!(self.inner.source, Source::Generated(_))
    }

    /// The rotation schedule of generated keys.
    pub fn schedule(&self) -> Option<RotationSchedule> {
        match &self.inner.source {
            Source::Generated(g) => Some(g.schedule),
            Source::Configured => None,
        }
    }

    /// The key that signs now: the signing algorithm's key whose period covers the
    /// clock's time. `None` before the first [`Self::refresh`] of generated keys, or when
    /// the store was unreachable for a whole rotation period.
    pub fn signer(&self) -> Option<Arc<Signer>> {
        let now = self.inner.clock.unix();
        let state = self.inner.state.load();
        state
            .signing
            .iter()
            .rev()
            .find(|s| s.from <= now && now < s.until)
            .map(|s| s.signer.clone())
    }

    /// The published JWKS document (RFC 7517 §5): public members only.
    pub fn jwks_json(&self) -> Arc<str> {
        self.inner.state.load().jwks.clone()
    }

    /// Every published key as a [`KeySet`], to verify this server's own tokens with
    /// ([`verify_access_token`](super::verify_access_token)); cheap to clone.
    pub fn key_set(&self) -> KeySet {
        self.inner.state.load().key_set.clone()
    }

    /// The published keys as jsonwebtoken's [`JwkSet`].
    pub fn jwk_set(&self) -> Arc<JwkSet> {
        self.inner.state.load().jwk_set.clone()
    }

    /// Seconds the JWKS may be cached (`Cache-Control: max-age`): never past the time the
    /// next generated key is published (at most [`MAX_JWKS_MAX_AGE`]);
    /// [`CONFIGURED_JWKS_MAX_AGE`] for configured keys.
    pub fn cache_max_age(&self) -> u64 {
        match &self.inner.source {
            Source::Configured => CONFIGURED_JWKS_MAX_AGE,
            Source::Generated(g) => {
                let now = self.inner.clock.unix();
                let left = g.schedule.next_publication(now).saturating_sub(now);
                u64::try_from(left).unwrap_or(0).min(MAX_JWKS_MAX_AGE)
            }
        }
    }

    /// Seconds until the rotation task should [`Self::refresh`] again: the next change of
    /// the schedule (a key to publish, a key to retire), at most
    /// [`MAX_REFRESH_INTERVAL`], at least 1; `None` for configured keys.
    pub fn refresh_in(&self) -> Option<u64> {
        let Source::Generated(g) = &self.inner.source else {
            return None;
        };
        let now = self.inner.clock.unix();
        let mut next = g.schedule.next_publication(now);
        if let Some(r) = self.inner.state.load().next_retirement {
            next = next.min(r);
        }
        let wait = u64::try_from(next.saturating_sub(now)).unwrap_or(0);
        Some(wait.clamp(1, MAX_REFRESH_INTERVAL))
    }

    /// Brings generated keys up to date at the clock's time: creates (if absent) the keys
    /// of this generation and the next for every algorithm, drops retired ones, unseals
    /// the signing algorithm's keys and swaps the new state in. On error the previous
    /// state stays. Configured keys: nothing to do.
    pub async fn refresh(&self, store: Option<&dyn SigningKeyStore>) -> Result<(), KeyError> {
        let Source::Generated(g) = &self.inner.source else {
            return Ok(());
        };
        let store = store.ok_or(KeyError::NoStore)?;
        let now = self.inner.clock.unix();
        let generation = g.schedule.generation(now);
        let mut published = store.published_keys(now).await?;
        for &alg in &g.algorithms {
            let name = algorithm_name(alg);
            for gen in [generation, generation + 1] {
                if published
                    .iter()
                    .any(|r| r.alg == name && r.generation == gen)
                {
                    continue;
                }
                let record = new_record(g, alg, gen, now).await?;
                let winner = store.create_key_if_absent(record).await?;
                if winner.published_until > now && !published.iter().any(|r| r.kid == winner.kid) {
                    published.push(winner);
                }
            }
        }
        if let Err(e) = store.purge_keys(now).await {
            log::warn!("twisted-oauth2: purging retired signing keys failed: {e}");
        }
        published.retain(|r| r.published_until > now);
        published.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        let state = self.generated_state(g, &published, now)?;
        self.inner.state.store(Arc::new(state));
        Ok(())
    }

    /// The state of the stored `published` keys; the signing algorithm's live keys are
    /// unsealed (or taken from the current state when already unsealed).
    fn generated_state(
        &self,
        g: &Generated,
        published: &[SigningKeyRecord],
        now: i64,
    ) -> Result<RingState, KeyError> {
        let old = self.inner.state.load();
        let known: HashMap<&str, &Arc<Signer>> = old
            .signing
            .iter()
            .map(|s| (s.signer.kid(), &s.signer))
            .collect();
        let signing_alg = algorithm_name(g.algorithms[0]);
        let mut keys = Vec::with_capacity(published.len());
        let mut signing = Vec::new();
        for r in published {
            let bad = |reason: String| KeyError::BadRecord {
                kid: r.kid.clone(),
                reason,
            };
            let alg =
                algorithm_of(&r.alg).ok_or_else(|| bad(format!("unknown alg `{}`", r.alg)))?;
            let mut jwk: Jwk = serde_json::from_str(&r.public_jwk)
                .map_err(|e| bad(format!("its public JWK does not parse: {e}")))?;
            jwk.common.key_id = Some(r.kid.clone());
            jwk.common.key_algorithm = Some(alg.into());
            jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
            if r.alg == signing_alg && r.signs_until > now {
                let signer = match known.get(r.kid.as_str()) {
                    Some(s) => (*s).clone(),
                    None => {
                        let der = g
                            .keks
                            .unseal(&r.kid, &r.alg, r.generation, &r.sealed_private)?;
                        let key = PrivateKey::from_pkcs8(alg, &der).map_err(bad)?;
                        let derived = key.public_jwk(Some(&r.kid)).map_err(bad)?;
                        if derived.algorithm != jwk.algorithm {
                            return Err(bad(
                                "its private and public halves are different keys".into()
                            ));
                        }
                        Signer::new(r.kid.clone(), &key).map_err(bad)?
                    }
                };
                signing.push(Slot {
                    from: r.signs_from,
                    until: r.signs_until,
                    signer,
                });
            }
            keys.push(jwk);
        }
        signing.sort_by_key(|s| s.from);
        let next_retirement = published.iter().map(|r| r.published_until).min();
        RingState::new(signing, keys, next_retirement)
    }

    /// The id of the key-encryption key that seals new keys (generated keys only).
    pub fn key_encryption_key_id(&self) -> Option<&str> {
        match &self.inner.source {
            Source::Generated(g) => Some(g.keks.current_id()),
            Source::Configured => None,
        }
    }
}

/// A new sealed key record of `alg` for generation `gen`. Key generation (RSA takes
/// a while) runs on the runtime's blocking pool when there is one.
async fn new_record(
    g: &Generated,
    alg: Algorithm,
    gen: i64,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let bits = g.rsa_bits;
    let key = generate(alg, bits).await?;
    let jwk = key
        .public_jwk(None)
        .map_err(|_| KeyError::Crypto("public JWK"))?;
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let name = algorithm_name(alg);
    let sealed = g.keks.seal(&kid, name, gen, key.pkcs8())?;
    let public_jwk = serde_json::to_string(&jwk).map_err(|_| KeyError::Crypto("public JWK"))?;
    Ok(SigningKeyRecord::new(
        kid,
        name.to_owned(),
        gen,
        public_jwk,
        sealed,
        now,
        g.schedule.signs_from(gen),
        g.schedule.signs_until(gen),
        g.schedule.published_until(gen),
    ))
}

async fn generate(alg: Algorithm, bits: u32) -> Result<PrivateKey, KeyError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(move || PrivateKey::generate(alg, bits))
            .await
            .map_err(|_| KeyError::Crypto("key generation"))?,
        Err(_) => PrivateKey::generate(alg, bits),
    }
}

/// The complete state of configured keys: the first signs at any time.
fn configured_state(config: &ServerConfig) -> Result<RingState, KeyError> {
    let mut keys: Vec<Jwk> = Vec::new();
    let mut signing = Vec::new();
    for (i, k) in config.signing_keys.keys.iter().enumerate() {
        let index = i + 1;
        let bad = |reason: String| KeyError::Configured { index, reason };
        let text = match (&k.pem, &k.pem_file) {
            (Some(p), _) => zeroize::Zeroizing::new(p.clone().into_bytes()),
            (None, Some(path)) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| bad(format!("cannot read `pem_file` {path}: {e}")))?;
                if meta.len() > super::keys::MAX_PEM_LENGTH as u64 {
                    return Err(bad(format!("`pem_file` {path} is too large for a key")));
                }
                zeroize::Zeroizing::new(
                    std::fs::read(path)
                        .map_err(|e| bad(format!("cannot read `pem_file` {path}: {e}")))?,
                )
            }
            (None, None) => return Err(bad("set `pem_file` or `pem`".into())),
        };
        let key = PrivateKey::from_pem(&text).map_err(bad)?;
        let jwk = key.public_jwk(k.kid.as_deref()).map_err(bad)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        if keys
            .iter()
            .any(|o| o.common.key_id.as_deref() == Some(kid.as_str()))
        {
            return Err(bad(format!(
                "its kid `{kid}` is another key's (the same key listed twice?)"
            )));
        }
        if i == 0 {
            signing.push(Slot {
                from: i64::MIN,
                until: i64::MAX,
                signer: Signer::new(kid, &key).map_err(bad)?,
            });
        }
        keys.push(jwk);
    }
    RingState::new(signing, keys, None)
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
