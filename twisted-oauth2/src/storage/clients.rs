//! Writable clients: the [`ClientRegistry`] trait, the persisted [`ClientRecord`], and the
//! composition of a registry with the clients of the configuration.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ChainedClients, ClientStore};
use crate::client::{Client, SecretDigest};
use crate::clock::Clock;
use crate::error::{ConfigError, StorageError};

/// A [`ClientStore`] that can also create, update and delete clients (for dynamic client
/// registration, RFC 7591, or an admin API).
///
/// [`memory::MemoryStore`](super::memory::MemoryStore) and the durable backends implement
/// it. A store implementing it must also override [`ClientStore::as_registry`] to return
/// `Some(self)`: that is how the server finds the registry in [`Stores::clients`](super::Stores::clients)
/// (or in a store given to `ServerBuilder::client_store`).
///
/// Stores persist a client as its [`ClientRecord`] (the secret only as its digest).
///
/// The registry the server exposes
/// ([`AuthorizationServer::client_registry`](crate::server::AuthorizationServer::client_registry))
/// wraps the store's and composes it with the clients of the configuration: those win on
/// lookup, so creating a client with a configured id fails with
/// [`StorageError::ClientExists`], and updating or deleting one fails with
/// [`StorageError::ClientReadOnly`]. It also stamps [`Client::registered_at`] with the
/// server's clock when a created client has none, and keeps the stored time when an
/// update carries none. And it ends a deleted client's tokens: its
/// [`delete_client`](ClientRegistry::delete_client) first revokes every access and refresh
/// token issued to the client, leaving a client tombstone that refuses new ones
/// ([`AccessTokenStore::revoke_access_client`](super::AccessTokenStore::revoke_access_client),
/// [`RefreshTokenStore::revoke_refresh_client`](super::RefreshTokenStore::revoke_refresh_client)),
/// then deletes the client; a revocation that fails deletes nothing and is the error.
/// Until the tombstone lapses (the longest token lifetime after the deletion) no token is
/// issued under the deleted id, even to a client created again with it: change a client
/// with `update_client` rather than deleting and re-creating it.
#[async_trait]
pub trait ClientRegistry: ClientStore {
    /// Stores a new client. Fails with [`StorageError::ClientExists`], writing nothing, if
    /// a client with its id is already stored; of any number of concurrent creations with
    /// one id (on any number of server instances sharing the store) exactly one succeeds.
    async fn create_client(&self, client: &Client) -> Result<(), StorageError>;

    /// Replaces the stored client with `client`'s id by `client`; `false` if there is none
    /// (nothing is written).
    async fn update_client(&self, client: &Client) -> Result<bool, StorageError>;

    /// Deletes the client with this id; `false` if there was none.
    ///
    /// A store's own implementation deletes the client record only. Through the registry
    /// the server exposes
    /// ([`AuthorizationServer::client_registry`](crate::server::AuthorizationServer::client_registry)),
    /// which RFC 7592 `DELETE` and the expiry of unused registrations use, the client's
    /// tokens are revoked first (see the [trait docs](ClientRegistry)).
    async fn delete_client(&self, id: &str) -> Result<bool, StorageError>;

    /// Deletes the oldest unused registrations beyond the newest `keep`: clients with an
    /// [`expires_at`](Client::expires_at) (registered, no token received yet), oldest
    /// expiry first, expired ones in any case. Returns how many were deleted. Called after
    /// each registration with
    /// [`RegistrationConfig::max_unused_clients`](crate::config::RegistrationConfig::max_unused_clients),
    /// so a flood of registrations cannot grow the store; concurrent calls on several
    /// instances may overshoot `keep` by the registrations in flight, never lose a client
    /// that has received a token. Should be an indexed operation, not a scan of every client.
    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError>;
}

/// The persisted form of a [`Client`]: everything it holds, the secret only as its
/// SHA-256 digest. Serialized as JSON by the durable backends; every field has a default,
/// so records written before a field was added still decode.
///
/// To change a stored client, take its record, change the fields and build it again:
///
/// ```
/// # fn demo() -> Result<(), twisted_oauth2::error::ConfigError> {
/// use twisted_oauth2::client::Client;
/// use twisted_oauth2::storage::ClientRecord;
///
/// let client = Client::builder("app").redirect_uri("https://app.example/cb")
///     .grant_type("authorization_code").build()?;
/// let mut record = ClientRecord::from_client(&client);
/// record.redirect_uris.push("https://app.example/cb2".into());
/// let updated = record.to_client()?;
/// assert_eq!(updated.redirect_uris().len(), 2);
/// # Ok(()) }
/// # demo().unwrap();
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClientRecord {
    /// The `client_id`.
    pub id: String,
    /// The secret's SHA-256 digest in hex ([`SecretDigest::to_hex`]); `None` for a public
    /// client.
    pub secret_sha256: Option<String>,
    /// The display name, if set.
    pub name: Option<String>,
    /// The registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The grant types the client may use.
    pub grant_types: Vec<String>,
    /// The scopes the client may request; `None`: any scope the server accepts.
    pub scopes: Option<Vec<String>>,
    /// [`Client::allows_insecure_redirect`].
    pub allow_insecure_redirect: bool,
    /// [`Client::may_introspect`].
    pub introspect: bool,
    /// [`Client::logo_uri`].
    pub logo_uri: Option<String>,
    /// [`Client::is_verified`]. A record without it is unverified.
    pub verified: bool,
    /// [`Client::registered_at`], Unix seconds.
    pub registered_at: Option<i64>,
    /// [`Client::expires_at`], Unix seconds.
    pub expires_at: Option<i64>,
    /// [`Client::registration`]: what dynamic client registration recorded (the
    /// registration access token only as its digest).
    pub registration: Option<crate::client::RegistrationInfo>,
    /// [`Client::access_token_format`]; `None`: the server-wide default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<String>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field(
                "secret_sha256",
                &self.secret_sha256.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("registered_at", &self.registered_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ClientRecord {
    /// The record of `client`.
    pub fn from_client(client: &Client) -> Self {
        ClientRecord {
            id: client.id().to_owned(),
            secret_sha256: client.secret_digest().map(SecretDigest::to_hex),
            name: client.explicit_name().map(str::to_owned),
            redirect_uris: client
                .redirect_uris()
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            grant_types: client.grant_types().to_vec(),
            scopes: client
                .allowed_scopes()
                .map(|s| s.iter().map(str::to_owned).collect()),
            allow_insecure_redirect: client.allows_insecure_redirect(),
            introspect: client.may_introspect(),
            logo_uri: client.logo_uri().map(str::to_owned),
            verified: client.is_verified(),
            registered_at: client.registered_at(),
            expires_at: client.expires_at(),
            registration: client.registration().cloned(),
            access_token_format: client.access_token_format().map(str::to_owned),
        }
    }

    /// Builds (and validates) the [`Client`] again.
    pub fn to_client(&self) -> Result<Client, ConfigError> {
        let mut b = Client::builder(self.id.clone());
        if let Some(hex) = &self.secret_sha256 {
            let digest = SecretDigest::from_hex(hex).ok_or_else(|| ConfigError::Client {
                client: self.id.clone(),
                reason: "`secret_sha256` must be 64 hex digits".into(),
            })?;
            b = b.secret_digest(digest);
        }
        for u in &self.redirect_uris {
            b = b.redirect_uri(u.clone());
        }
        for g in &self.grant_types {
            b = b.grant_type(g.clone());
        }
        if let Some(scopes) = &self.scopes {
            b = b.scope(scopes.join(" "));
        }
        if let Some(n) = &self.name {
            b = b.name(n.clone());
        }
        if let Some(l) = &self.logo_uri {
            b = b.logo_uri(l.clone());
        }
        if let Some(t) = self.registered_at {
            b = b.registered_at(t);
        }
        if let Some(t) = self.expires_at {
            b = b.expires_at(t);
        }
        if let Some(f) = &self.access_token_format {
            b = b.access_token_format(f.clone());
        }
        if let Some(r) = &self.registration {
            b = b.registration(r.clone());
        }
        b.verified(self.verified)
            .allow_insecure_redirect(self.allow_insecure_redirect)
            .may_introspect(self.introspect)
            .build()
    }
}

/// The JSON a durable backend stores for `client`.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code)
)]
pub(crate) fn encode_client(client: &Client) -> Result<String, StorageError> {
    serde_json::to_string(&ClientRecord::from_client(client)).map_err(StorageError::other)
}

/// The client a durable backend stored as `json`; undecodable or invalid is
/// [`StorageError::Corrupt`].
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code)
)]
pub(crate) fn decode_client(json: &str) -> Result<Client, StorageError> {
    let record: ClientRecord =
        serde_json::from_str(json).map_err(|e| StorageError::Corrupt(Box::new(e)))?;
    record
        .to_client()
        .map_err(|e| StorageError::Corrupt(Box::new(e)))
}

/// The registry the server exposes: `inner`, behind the read-only clients that shadow it.
struct Composed {
    /// The whole lookup chain (what the server's [`Stores::clients`](super::Stores::clients)
    /// becomes).
    lookup: Arc<dyn ClientStore>,
    /// The read-only stores consulted before `inner` (configured clients first).
    shadow: Option<Arc<dyn ClientStore>>,
    inner: Arc<dyn ClientRegistry>,
    clock: Arc<dyn Clock>,
    /// Revokes a client's tokens before it is deleted.
    revoker: crate::context::ClientRevoker,
}

impl Composed {
    async fn shadowed(&self, id: &str) -> Result<bool, StorageError> {
        match &self.shadow {
            Some(s) => Ok(s.client(id).await?.is_some()),
            None => Ok(false),
        }
    }
}

#[async_trait]
impl ClientStore for Composed {
    async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        self.lookup.client(id).await
    }

    fn as_registry(self: Arc<Self>) -> Option<Arc<dyn ClientRegistry>> {
        Some(self)
    }
}

#[async_trait]
impl ClientRegistry for Composed {
    async fn create_client(&self, client: &Client) -> Result<(), StorageError> {
        if self.shadowed(client.id()).await? {
            return Err(StorageError::ClientExists);
        }
        if client.registered_at().is_some() {
            return self.inner.create_client(client).await;
        }
        let stamped = client.clone().with_registered_at(Some(self.clock.unix()));
        self.inner.create_client(&stamped).await
    }

    async fn update_client(&self, client: &Client) -> Result<bool, StorageError> {
        if self.shadowed(client.id()).await? {
            return Err(StorageError::ClientReadOnly);
        }
        if client.registered_at().is_some() {
            return self.inner.update_client(client).await;
        }
        let Some(stored) = self.inner.client(client.id()).await? else {
            return Ok(false);
        };
        let kept = client.clone().with_registered_at(stored.registered_at());
        self.inner.update_client(&kept).await
    }

    async fn delete_client(&self, id: &str) -> Result<bool, StorageError> {
        if self.shadowed(id).await? {
            return Err(StorageError::ClientReadOnly);
        }
        // No tombstone for an id that names no client (it would refuse a later client of
        // that id its tokens).
        if self.inner.client(id).await?.is_none() {
            return Ok(false);
        }
        // Tokens first: a failure leaves the client (and the caller can retry), and a token
        // written meanwhile is refused by the client's tombstone.
        let (access, refresh) = self.revoker.revoke(id).await?;
        log::debug!(
            "twisted-oauth2: revoked {access} access and {refresh} refresh tokens of client \
             `{}` before deleting it",
            crate::error::printable(id)
        );
        self.inner.delete_client(id).await
    }

    async fn trim_unused_clients(&self, keep: usize, now: i64) -> Result<u64, StorageError> {
        self.inner.trim_unused_clients(keep, now).await
    }
}

/// Composes the server's clients: `configured` first, then `extra` (given to
/// `ServerBuilder::client_store`), then `backend` ([`Stores::clients`](super::Stores::clients)).
/// Returns the lookup chain and, when `extra` or else `backend` is a [`ClientRegistry`],
/// that registry behind the stores that shadow it.
pub(crate) fn compose(
    configured: Option<Arc<dyn ClientStore>>,
    extra: Option<Arc<dyn ClientStore>>,
    backend: Arc<dyn ClientStore>,
    clock: Arc<dyn Clock>,
    revoker: crate::context::ClientRevoker,
) -> (Arc<dyn ClientStore>, Option<Arc<dyn ClientRegistry>>) {
    let chain = |a: Option<Arc<dyn ClientStore>>, b: Arc<dyn ClientStore>| match a {
        Some(a) => Arc::new(ChainedClients(a, b)) as Arc<dyn ClientStore>,
        None => b,
    };
    let (inner, shadow) = match extra.clone().and_then(|e| e.as_registry()) {
        Some(r) => (Some(r), configured.clone()),
        None => match backend.clone().as_registry() {
            Some(r) => {
                let shadow = match (configured.clone(), extra.clone()) {
                    (Some(c), Some(e)) => Some(chain(Some(c), e)),
                    (c, e) => c.or(e),
                };
                (Some(r), shadow)
            }
            None => (None, None),
        },
    };
    let after_extra = match extra {
        Some(e) => chain(Some(e), backend),
        None => backend,
    };
    let lookup = chain(configured, after_extra);
    let registry = inner.map(|inner| {
        Arc::new(Composed {
            lookup: lookup.clone(),
            shadow,
            inner,
            clock,
            revoker,
        }) as Arc<dyn ClientRegistry>
    });
    (lookup, registry)
}
