//! The device authorization grant (RFC 8628): its configuration, user codes, the
//! device-code store and the user's decision.
//!
//! A device without a browser (a CLI, a TV, an agent) asks `POST <base>/device_authorization`
//! ([`crate::endpoint::device_authorization`]) for a `device_code` and a short `user_code`,
//! shows the user the code and the verification URI, and polls the token endpoint with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`
//! ([`crate::grant::device_code`]) while the signed-in user approves or denies the code
//! ([`approve`], [`deny`]). Switched on with `[oauth2.device] enabled = true`
//! ([`DeviceConfig`]).
//!
//! The device code is 256 bits from the server's [`TokenGenerator`](crate::token::TokenGenerator)
//! and is kept only as its SHA-256 digest; the user code is `user_code_length` characters of
//! the RFC 8628 §6.1 base-20 alphabet (`BCDFGHJKLMNPQRSTVWXZ`), shown in groups of four
//! (`WDJB-MJHT`) and compared case- and dash-insensitively ([`normalize_user_code`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::scope::Scope;

/// The grant type of the token requests of this grant (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The RFC 8628 §6.1 user-code alphabet: 20 consonants, no vowels (no words), no look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// The `[oauth2.device]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceConfig {
    /// Mounts `POST <base>/device_authorization`, enables the device-code grant and
    /// advertises `device_authorization_endpoint`. Default: off.
    pub enabled: bool,
    /// Seconds a device code lives (`expires_in`). Default 600.
    pub code_lifetime: u64,
    /// The initial minimum polling interval in seconds (`interval`). Default 5.
    pub interval: u64,
    /// Characters of a user code (of the base-20 alphabet, about 4.3 bits each). Default 8,
    /// at least 6 and at most 16.
    pub user_code_length: usize,
    /// The `verification_uri` shown to the user: where the application serves its page for
    /// entering a code. Relative to the issuer when it starts with `/`. Default `/device`.
    pub verification_uri: String,
    /// Also answer `verification_uri_complete` (the URI with `?user_code=…`, for a QR code).
    /// The user still confirms the code on the page (RFC 8628 §5.4). Default: on.
    pub verification_uri_complete: bool,
    /// At most this many live device codes; a request beyond is `slow_down`-free
    /// `temporarily_unavailable`. Default 10 000.
    pub max_pending: usize,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            enabled: false,
            code_lifetime: 600,
            interval: 5,
            user_code_length: 8,
            verification_uri: "/device".into(),
            verification_uri_complete: true,
            max_pending: 10_000,
        }
    }
}

impl DeviceConfig {
    /// Checks the bounds; `Err` names the key and why.
    pub(crate) fn validate(&self) -> Result<(), crate::error::ConfigError> {
        let bad = |key: &'static str, reason: &str| crate::error::ConfigError::Setting {
            key,
            reason: reason.to_owned(),
        };
        if !(6..=16).contains(&self.user_code_length) {
            return Err(bad("device.user_code_length", "must be between 6 and 16"));
        }
        if self.code_lifetime == 0 || self.code_lifetime > 86_400 {
            return Err(bad(
                "device.code_lifetime",
                "must be between 1 and 86400 seconds",
            ));
        }
        if self.interval == 0 || self.interval > 3_600 {
            return Err(bad("device.interval", "must be between 1 and 3600 seconds"));
        }
        if self.verification_uri.trim().is_empty() {
            return Err(bad("device.verification_uri", "must not be empty"));
        }
        Ok(())
    }
}

/// What the user decided for a device code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeviceStatus {
    /// Not decided yet.
    Pending,
    /// Approved by `subject`, for `scope` (the requested scope, or less).
    Approved {
        /// The resource owner.
        subject: String,
        /// The scope granted.
        scope: Scope,
    },
    /// Denied.
    Denied,
}

/// A device authorization request as the store keeps it (never the device code itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceRecord {
    /// The client the codes were issued to; only it may poll.
    pub client_id: Arc<str>,
    /// The scope requested.
    pub scope: Scope,
    /// The resources requested (RFC 8707).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Arc<str>>,
    /// When the codes expire (Unix seconds).
    pub expires_at: i64,
    /// The current minimum polling interval in seconds (grows by 5 at each `slow_down`).
    pub interval: u64,
    /// When the client last polled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll: Option<i64>,
    /// The user's decision.
    pub status: DeviceStatus,
    /// Whether an approval was taken by a poll (the device code is spent; it stays stored
    /// until it expires so a failed issuance can give it back with
    /// [`DeviceCodeStore::release_device`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken: bool,
}

impl DeviceRecord {
    /// A pending request.
    pub fn new(
        client_id: impl Into<Arc<str>>,
        scope: Scope,
        resources: Vec<Arc<str>>,
        expires_at: i64,
        interval: u64,
    ) -> Self {
        DeviceRecord {
            client_id: client_id.into(),
            scope,
            resources,
            expires_at,
            interval,
            last_poll: None,
            status: DeviceStatus::Pending,
            taken: false,
        }
    }
}

/// The answer of one poll ([`DeviceCodeStore::poll`]), decided atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollOutcome {
    /// No such device code (never issued, already taken, denied and gone, or purged).
    /// A taken approval answers this too, until it is released.
    Unknown,
    /// Issued to another client: nothing was changed.
    WrongClient,
    /// Expired (and removed).
    Expired,
    /// Polled sooner than the interval allows: the interval grew by 5 seconds.
    SlowDown,
    /// Not decided yet.
    Pending,
    /// Denied (and removed).
    Denied,
    /// Approved and taken: this poller, and no other, gets the tokens.
    Approved(DeviceRecord),
}

/// What a poll does to the stored record ([`poll_transition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Nothing.
    Keep,
    /// Store this record instead (the poll time, a grown interval).
    Update(DeviceRecord),
    /// Remove the request (expired, denied, or taken).
    Remove,
}

/// The one poll state machine every [`DeviceCodeStore`] applies atomically (under a lock,
/// in a compare-and-set, or in a script): the answer to a poll by `client_id` at `now` of
/// `record`, and what to do with the record. Order: taken (`Unknown`), wrong client,
/// expired, too soon (`SlowDown`, the interval grows by 5 s), pending, denied, approved
/// (the record is kept, marked [`taken`](DeviceRecord::taken), until it expires).
pub fn poll_transition(record: &DeviceRecord, client_id: &str, now: i64) -> (PollOutcome, Change) {
    if record.taken {
        return (PollOutcome::Unknown, Change::Keep);
    }
    if *record.client_id != *client_id {
        return (PollOutcome::WrongClient, Change::Keep);
    }
    if record.expires_at <= now {
        return (PollOutcome::Expired, Change::Remove);
    }
    let too_soon = record
        .last_poll
        .is_some_and(|last| now < last.saturating_add(record.interval as i64));
    let mut next = record.clone();
    next.last_poll = Some(now);
    if too_soon {
        next.interval = next.interval.saturating_add(5);
        return (PollOutcome::SlowDown, Change::Update(next));
    }
    match record.status {
        DeviceStatus::Pending => (PollOutcome::Pending, Change::Update(next)),
        DeviceStatus::Denied => (PollOutcome::Denied, Change::Remove),
        DeviceStatus::Approved { .. } => {
            next.taken = true;
            (PollOutcome::Approved(record.clone()), Change::Update(next))
        }
    }
}

/// What [`DeviceCodeStore::release_device`] stores for `record` at `now`: the approval
/// taken back (not taken, no last poll, so the client's retry is answered at once), or
/// `None` when there is nothing to give back (not taken, or expired).
pub fn release_transition(record: &DeviceRecord, now: i64) -> Option<DeviceRecord> {
    if !record.taken || record.expires_at <= now {
        return None;
    }
    let mut next = record.clone();
    next.taken = false;
    next.last_poll = None;
    Some(next)
}

/// Where device authorization requests live. Every method is atomic per code: two pollers
/// after approval get exactly one [`PollOutcome::Approved`], and a decision is taken once.
/// Keys are the SHA-256 hex digest of the device code and the normalised user code.
#[async_trait::async_trait]
pub trait DeviceCodeStore: Send + Sync + 'static {
    /// Stores a new request. `Ok(false)` when the user code is in use (the caller draws
    /// another).
    async fn put_device(
        &self,
        device_digest: &str,
        user_code: &str,
        record: DeviceRecord,
    ) -> Result<bool, StorageError>;

    /// The pending request of a user code, unexpired at `now`.
    async fn by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceRecord>, StorageError>;

    /// Sets the decision of a pending, unexpired request, once: `Ok(false)` when there is
    /// none or it was decided already.
    async fn decide(
        &self,
        user_code: &str,
        status: DeviceStatus,
        now: i64,
    ) -> Result<bool, StorageError>;

    /// One poll by `client_id` at `now`, in this order: unknown, wrong client, expired
    /// (removed), too soon (`SlowDown`: the interval grows by 5 s), pending, denied
    /// (removed), approved (taken).
    async fn poll(
        &self,
        device_digest: &str,
        client_id: &str,
        now: i64,
    ) -> Result<PollOutcome, StorageError>;

    /// Gives back an approval a poll took (issuance failed for another reason than a revoked
    /// grant), so the device's next poll gets it again: applies [`release_transition`]
    /// atomically. `Ok(false)` when there is nothing to release (unknown, expired, not taken).
    async fn release_device(&self, device_digest: &str, now: i64) -> Result<bool, StorageError>;

    /// How many requests are live (bounds the table).
    async fn live(&self, now: i64) -> Result<usize, StorageError>;

    /// Removes expired requests; how many.
    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError>;
}

/// The in-memory [`DeviceCodeStore`] (one process; the default with `storage = "memory"`).
#[derive(Debug, Default)]
pub struct MemoryDeviceCodes {
    inner: std::sync::Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Device digest → record.
    devices: std::collections::HashMap<String, DeviceRecord>,
    /// User code → device digest.
    users: std::collections::HashMap<String, String>,
}

impl MemoryInner {
    fn remove(&mut self, digest: &str) {
        self.devices.remove(digest);
        self.users.retain(|_, d| d != digest);
    }
}

impl MemoryDeviceCodes {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryInner>, StorageError> {
        self.inner
            .lock()
            .map_err(|_| StorageError::Unavailable("device-code store lock poisoned".into()))
    }
}

#[async_trait::async_trait]
impl DeviceCodeStore for MemoryDeviceCodes {
    async fn put_device(
        &self,
        device_digest: &str,
        user_code: &str,
        record: DeviceRecord,
    ) -> Result<bool, StorageError> {
        let mut g = self.lock()?;
        // An expired request keeps its user code until the purge.
        if g.users.contains_key(user_code) {
            return Ok(false);
        }
        g.users
            .insert(user_code.to_owned(), device_digest.to_owned());
        g.devices.insert(device_digest.to_owned(), record);
        Ok(true)
    }

    async fn by_user_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<Option<DeviceRecord>, StorageError> {
        let g = self.lock()?;
        Ok(g.users
            .get(user_code)
            .and_then(|d| g.devices.get(d))
            .filter(|r| r.expires_at > now && r.status == DeviceStatus::Pending)
            .cloned())
    }

    async fn decide(
        &self,
        user_code: &str,
        status: DeviceStatus,
        now: i64,
    ) -> Result<bool, StorageError> {
        let mut g = self.lock()?;
        let Some(d) = g.users.get(user_code).cloned() else {
            return Ok(false);
        };
        match g.devices.get_mut(&d) {
            Some(r) if r.expires_at > now && r.status == DeviceStatus::Pending => {
                r.status = status;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn poll(
        &self,
        device_digest: &str,
        client_id: &str,
        now: i64,
    ) -> Result<PollOutcome, StorageError> {
        let mut g = self.lock()?;
        let Some(r) = g.devices.get(device_digest) else {
            return Ok(PollOutcome::Unknown);
        };
        let (outcome, change) = poll_transition(r, client_id, now);
        match change {
            Change::Keep => {}
            Change::Update(next) => {
                g.devices.insert(device_digest.to_owned(), next);
            }
            Change::Remove => g.remove(device_digest),
        }
        Ok(outcome)
    }

    async fn release_device(&self, device_digest: &str, now: i64) -> Result<bool, StorageError> {
        let mut g = self.lock()?;
        let Some(next) = g
            .devices
            .get(device_digest)
            .and_then(|r| release_transition(r, now))
        else {
            return Ok(false);
        };
        g.devices.insert(device_digest.to_owned(), next);
        Ok(true)
    }

    async fn live(&self, now: i64) -> Result<usize, StorageError> {
        let g = self.lock()?;
        Ok(g.devices.values().filter(|r| r.expires_at > now).count())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        let mut g = self.lock()?;
        let before = g.devices.len();
        g.devices.retain(|_, r| r.expires_at > now);
        let devices = std::mem::take(&mut g.devices);
        g.users.retain(|_, d| devices.contains_key(d));
        g.devices = devices;
        Ok((before - g.devices.len()) as u64)
    }
}

/// A user code as typed: ASCII letters upper-cased, dashes and spaces dropped; `None` when
/// what is left is not `length` characters of [`USER_CODE_ALPHABET`] (so a mistyped code is
/// refused without a store lookup).
pub fn normalize_user_code(typed: &str, length: usize) -> Option<String> {
    if typed.len() > 4 * length {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == length && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A normalised user code as shown: groups of four joined by `-` (`WDJB-MJHT`).
pub fn display_user_code(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 4);
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// A user code of `length` characters drawn from `random` (the generator's output): its
/// SHA-256, read as a number, in base 20 (bias below 2⁻³⁰ for up to 16 characters).
pub(crate) fn user_code_from(random: &str, length: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(random.as_bytes());
    let mut out = String::with_capacity(length);
    for chunk in digest.chunks(8).take(length.div_ceil(8).max(1) * 2) {
        let mut n = u64::from_be_bytes(chunk.try_into().unwrap_or([0; 8]));
        for _ in 0..8 {
            if out.len() == length {
                return out;
            }
            out.push(USER_CODE_ALPHABET[(n % 20) as usize] as char);
            n /= 20;
        }
    }
    out
}

/// The signed-in user's decision on a user code, once (the verification page's last step).
/// `Ok(false)`: no pending, unexpired request has that code (mistyped, expired, decided).
pub async fn approve(
    server: &crate::AuthorizationServer,
    user_code: &str,
    subject: &str,
    scope: Scope,
) -> Result<bool, crate::OAuthError> {
    let store = store(server)?;
    let status = DeviceStatus::Approved {
        subject: subject.to_owned(),
        scope,
    };
    Ok(store.decide(user_code, status, server.now()).await?)
}

/// Denies a user code, once; see [`approve`].
pub async fn deny(
    server: &crate::AuthorizationServer,
    user_code: &str,
) -> Result<bool, crate::OAuthError> {
    let store = store(server)?;
    Ok(store
        .decide(user_code, DeviceStatus::Denied, server.now())
        .await?)
}

/// The pending request of a user code as typed (normalised first), for the verification
/// page to show the client and scope before the user decides.
pub async fn pending(
    server: &crate::AuthorizationServer,
    typed: &str,
) -> Result<Option<(String, DeviceRecord)>, crate::OAuthError> {
    let Some(code) = normalize_user_code(typed, server.config().device.user_code_length) else {
        return Ok(None);
    };
    let store = store(server)?;
    Ok(store
        .by_user_code(&code, server.now())
        .await?
        .map(|r| (code, r)))
}

/// The server's device-code store.
pub(crate) fn store(
    server: &crate::AuthorizationServer,
) -> Result<&Arc<dyn DeviceCodeStore>, crate::OAuthError> {
    server.stores().device_codes.as_ref().ok_or_else(|| {
        crate::OAuthError::with_description(
            crate::ErrorCode::TemporarilyUnavailable,
            "the device authorization grant is not enabled",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_compare_case_and_dash_insensitively_rfc8628_6_1() {
        assert_eq!(
            normalize_user_code("wdjb-mjht", 8).as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" WDJB MJHT ", 8).as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJB-MJH", 8), None, "too short");
        assert_eq!(normalize_user_code("WDJA-MJHT", 8), None, "vowel");
        assert_eq!(normalize_user_code(&"-".repeat(100), 8), None, "bounded");
        assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
    }

    #[test]
    fn user_codes_are_drawn_from_the_base20_alphabet() {
        let a = user_code_from("one", 8);
        let b = user_code_from("two", 8);
        assert_eq!(a.len(), 8);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| USER_CODE_ALPHABET.contains(&c)));
        assert_eq!(user_code_from("x", 16).len(), 16);
    }
}
