//! [`AuthorizationServer`]: configuration, stores, clock and token generator assembled.

use std::fmt;
use std::sync::Arc;

use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::config::ServerConfig;
use crate::context::{GrantContext, ScopeCache};
use crate::error::{ConfigError, OAuthError};
use crate::format::{AccessTokenFormat, FormatKeys, FormatRegistry, OpaqueTokens};
use crate::grant::{Grant, GrantRegistry};
use crate::grant_type::{unknown_grant_type, GrantType};
use crate::scope::Scope;
use crate::storage::memory::MemoryStore;
use crate::storage::{ClientRegistry, ClientStore, PasswordVerifier, StaticClients, Stores};
use crate::token::{RandomTokenGenerator, TokenGenerator, TokenKind};

/// The assembled authorization server. Endpoint functions in [`crate::endpoint`] take it by
/// reference; the Rocket fairing keeps one in managed state.
pub struct AuthorizationServer {
    pub(crate) config: ServerConfig,
    pub(crate) issuer: String,
    pub(crate) default_scope: Option<Scope>,
    pub(crate) scopes_supported: Option<Scope>,
    pub(crate) stores: Stores,
    /// The writable clients, composed with the configured ones (see [`ClientRegistry`]).
    registry: Option<Arc<dyn ClientRegistry>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) generator: Arc<dyn TokenGenerator>,
    /// Every grant of the token endpoint, built-in and the application's.
    grants: GrantRegistry,
    /// How access tokens are made and read back, by name.
    pub(crate) formats: FormatRegistry,
    /// The keys formats sign and verify with.
    pub(crate) keys: Option<FormatKeys>,
    /// What runs after every access token is issued.
    pub(crate) after_issue: Vec<Arc<dyn crate::grant::AfterIssue>>,
    /// How protected requests are read (from the configuration, once).
    pub(crate) request_policy: crate::validation::RequestPolicy,
    /// The validation cache in front of the access store, when on.
    cache_policy: Option<crate::storage::cache::CachePolicy>,
    /// Members the application adds to the RFC 8414 document.
    pub(crate) metadata_members: Vec<(String, serde_json::Value)>,
    /// Parsed forms of recently requested scope strings.
    scope_cache: ScopeCache,
    /// The application's audit sink.
    audit: Option<Arc<dyn crate::audit::AuditSink>>,
    /// Live pending authorization requests, bounded in total and per browser.
    pub(crate) pending_limit: crate::pending_limit::PendingLimiter,
    /// What extensions keep beside the server ([`AuthorizationServer::extension_state`]).
    extension_state: ExtensionState,
    /// Run after every token response is made ([`ServerBuilder::on_token_issued`]).
    issued_hooks: Vec<Arc<dyn crate::endpoint::token::TokenIssued>>,
    /// Where brute-force attempts are counted ([`crate::limits`]).
    counters: Arc<dyn crate::limits::CounterStore>,
    /// The resources tokens may be issued for (RFC 8707).
    pub(crate) resources: crate::resource_indicator::Resources,
    /// Resolves client ID metadata documents, when on.
    pub(crate) client_metadata: Option<Arc<crate::client_metadata::ClientMetadataResolver>>,
    /// The parsed [`ServerConfig::trusted_proxies`].
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Which `Origin` values checked routes accept.
    origin_policy: crate::origin::OriginPolicy,
    /// Which scopes include others ([`ServerConfig::scope_includes`]).
    scope_hierarchy: crate::scope::ScopeHierarchy,
    /// Client ids recently found to exist (see [`AuthorizationServer::client_exists`]).
    known_clients: KnownClients,
}

/// Most client ids [`KnownClients`] remembers; when full it starts again empty.
const KNOWN_CLIENTS_MAX: usize = 65_536;
/// Seconds a client found to exist is not looked up again.
const KNOWN_CLIENT_SECONDS: i64 = 60;

/// Client ids found to exist, with when: a bounded, short-lived memo, so validating a
/// token does not look its client up every time. Forgetting is safe (the next lookup asks
/// the store); remembering a client deleted meanwhile is too, as deleting a client revokes
/// its tokens, and the memo lapses after [`KNOWN_CLIENT_SECONDS`] for tokens a store could
/// not revoke (stored by an older version).
#[derive(Default)]
struct KnownClients(dashmap::DashMap<Arc<str>, i64>);

/// One value per type, made on first use ([`AuthorizationServer::extension_state`]).
#[derive(Default)]
pub(crate) struct ExtensionState(
    dashmap::DashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>,
);

impl ExtensionState {
    /// The `T`, made by `init` on first use.
    pub(crate) fn get_or_init<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let id = std::any::TypeId::of::<T>();
        if let Some(v) = self.0.get(&id) {
            if let Ok(t) = v.value().clone().downcast::<T>() {
                return t;
            }
        }
        let made: Arc<dyn std::any::Any + Send + Sync> = Arc::new(init());
        let v = self.0.entry(id).or_insert(made).value().clone();
        // The map holds a `T` under `T`'s id: the downcast cannot fail.
        v.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("extension state is keyed by its type"))
    }
}

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.issuer)
            .field("grant_types", &self.config.grant_types)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Starts building a server from its configuration.
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            stores: None,
            client_store: None,
            clock: None,
            generator: None,
            grants: Vec::new(),
            password: None,
            formats: Vec::new(),
            default_format: None,
            stores_builder: None,
            store_steps: Vec::new(),
            keys: None,
            after_issue: Vec::new(),
            metadata_members: Vec::new(),
            audit: None,
            revocation_channel: None,
            metadata_fetcher: None,
            issued_hooks: Vec::new(),
            counters: None,
        }
    }

    /// Where brute-force attempts are counted ([`crate::limits`]; default
    /// [`MemoryCounters`](crate::limits::MemoryCounters)).
    pub fn counters(&self) -> &Arc<dyn crate::limits::CounterStore> {
        &self.counters
    }

    /// The value of type `T` an extension keeps beside this server (a limiter, a cache),
    /// made by `init` on first use and shared by every later call: the way an extension
    /// endpoint or grant keeps state without a field of its own on the server. Use a type
    /// private to the extension, so no other code can reach or replace it.
    pub fn extension_state<T: Send + Sync + 'static>(
        &self,
        init: impl FnOnce(&AuthorizationServer) -> T,
    ) -> Arc<T> {
        self.extension_state.get_or_init(|| init(self))
    }

    /// The hooks run after a token response is made ([`ServerBuilder::on_token_issued`]).
    pub(crate) fn issued_hooks(&self) -> &[Arc<dyn crate::endpoint::token::TokenIssued>] {
        &self.issued_hooks
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The issuer identifier, without trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The writable client store, for extensions such as dynamic client registration:
    /// `None` unless [`Stores::clients`] (or the store given to
    /// [`ServerBuilder::client_store`]) is a [`ClientRegistry`], as the built-in backends
    /// are. Clients it creates are found by [`Self::client`] at once. It is composed with
    /// the configured clients (`oauth2.clients`), which win on lookup and cannot be changed
    /// through it ([`StorageError::ClientExists`](crate::error::StorageError::ClientExists),
    /// [`StorageError::ClientReadOnly`](crate::error::StorageError::ClientReadOnly)).
    pub fn client_registry(&self) -> Option<&Arc<dyn ClientRegistry>> {
        self.registry.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The current time in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Whether the token endpoint accepts `grant_type`.
    pub fn grant_enabled(&self, grant_type: &str) -> bool {
        self.config.grant_types.iter().any(|g| g == grant_type)
    }

    /// The path under which the endpoints are served: the issuer's path (if any) followed
    /// by [`ServerConfig::base_path`], without trailing slash unless it is `/`
    /// (`/oauth2` for the issuer `https://h`, `/tenant/oauth2` for `https://h/tenant`).
    /// The Rocket fairing mounts the endpoints here, so the URLs the metadata advertises
    /// ([`Self::endpoint_url`]) are the ones served.
    pub fn endpoints_path(&self) -> String {
        let issuer_path = crate::config::split_identifier(&self.issuer).1;
        let base = self.config.base_path.trim_end_matches('/');
        let path = format!("{issuer_path}{base}");
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        }
    }

    /// The full URL of an endpoint under the base path (`token`, `authorize`, ...).
    pub fn endpoint_url(&self, name: &str) -> String {
        format!(
            "{}{}/{}",
            self.issuer,
            self.config.base_path.trim_end_matches('/'),
            name
        )
    }

    /// The client address every limit of the library keys on: `peer` (the TCP peer), unless
    /// it is one of [`ServerConfig::trusted_proxies`]; then the last address of the
    /// [`ServerConfig::client_ip_header`] values (`forwarded`, in order, each possibly a
    /// comma-separated chain) that is not a trusted proxy. A trusted peer that sends no
    /// usable address counts as itself. Rocket's `ip_header` plays no part: any client can
    /// set it.
    pub fn client_address<'a>(
        &self,
        peer: Option<std::net::IpAddr>,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> Option<std::net::IpAddr> {
        let trusted = |ip: &std::net::IpAddr| {
            let ip = canonical_ip(*ip);
            self.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        let peer = peer.map(canonical_ip)?;
        if !trusted(&peer) {
            return Some(peer);
        }
        let chain: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|v| v.split(','))
            .take(64)
            .collect();
        for hop in chain.iter().rev() {
            match parse_forwarded_ip(hop) {
                Some(ip) if trusted(&ip) => continue,
                Some(ip) => return Some(ip),
                // Garbage where the proxies put addresses: the nearest trustworthy party.
                None => return Some(peer),
            }
        }
        Some(peer)
    }

    /// Which scopes include others ([`ServerConfig::scope_includes`]): protected routes
    /// check required scopes through it.
    pub fn scope_hierarchy(&self) -> &crate::scope::ScopeHierarchy {
        &self.scope_hierarchy
    }

    /// Which `Origin` values routes with Origin validation accept ([`crate::origin`]).
    pub fn origin_policy(&self) -> &crate::origin::OriginPolicy {
        &self.origin_policy
    }

    /// The scopes the server advertises, if configured.
    pub fn scopes_supported(&self) -> Option<&Scope> {
        self.scopes_supported.as_ref()
    }

    /// Looks up a client. A dynamically registered one whose registration expired
    /// ([`Client::expires_at`], [`Client::registration`]) is not found, and is deleted from
    /// the [`ClientRegistry`] (best effort).
    ///
    /// With client ID metadata documents on ([`crate::client_metadata`]), an `https` URL id
    /// is resolved by its document, from the cache or fetched; a refused one is
    /// `invalid_request` with the reason, one that could not be retrieved `invalid_client`,
    /// and a lookup over a fetch limit `temporarily_unavailable`. The caller is not known
    /// here, so only the per-host fetch limits apply: where a request from a stranger can
    /// cause the lookup, use [`Self::client_for`].
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        self.client_for(id, None).await
    }

    /// [`Self::client`] for a request from `caller` (the client address as the HTTP layer
    /// determines it): a metadata document fetched for it counts against the caller's limit
    /// (`client_metadata.caller_fetches_per_minute`).
    pub async fn client_for(
        &self,
        id: &str,
        caller: Option<std::net::IpAddr>,
    ) -> Result<Option<Arc<Client>>, OAuthError> {
        if let Some(resolver) = &self.client_metadata {
            if crate::client_metadata::is_metadata_document_url(id) {
                return resolver
                    .client(
                        &self.config,
                        self.scopes_supported.as_ref(),
                        id,
                        caller,
                        self.now(),
                    )
                    .await
                    .map(Some);
            }
        }
        self.stored_client(id).await
    }

    /// Looks up a client in the stores only (configured and registered clients, as
    /// [`Self::client`] without expired registrations): never resolves a client ID metadata
    /// document, so a lookup no metadata-document client needs fetches nothing.
    pub async fn stored_client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        match self.stores.clients.client(id).await? {
            Some(c) if self.drop_if_expired(&c).await => Ok(None),
            found => Ok(found),
        }
    }

    /// Whether the client a stored token names still exists: configured, found by the
    /// client store (a registered client, or one of a store given to
    /// [`ServerBuilder::client_store`]; an expired registration counts as gone and is
    /// deleted), or, with client ID metadata documents on, an `https` URL id (not fetched
    /// here). Protected resources, introspection and the refresh grant refuse tokens of a
    /// client that does not (see `docs/storage.md`, "Deleted clients"): a client removed from
    /// the configuration can no longer use the tokens it held.
    ///
    /// A client found is remembered in this process for a minute (at most 65,536 ids), so
    /// the check costs a store lookup only then.
    pub async fn client_exists(&self, id: &Arc<str>) -> Result<bool, OAuthError> {
        let now = self.now();
        if let Some(t) = self.known_clients.0.get(id) {
            if now >= *t && now < t.saturating_add(KNOWN_CLIENT_SECONDS) {
                return Ok(true);
            }
        }
        if self.client_metadata.is_some() && crate::client_metadata::is_metadata_document_url(id) {
            return Ok(true);
        }
        let found = match self.stores.clients.client(id).await? {
            Some(c) => !self.drop_if_expired(&c).await,
            None => false,
        };
        if found {
            if self.known_clients.0.len() >= KNOWN_CLIENTS_MAX {
                self.known_clients.0.clear();
            }
            self.known_clients.0.insert(id.clone(), now);
        } else {
            self.known_clients.0.remove(id);
        }
        Ok(found)
    }

    /// What grants and extensions may use of the server: scope resolution, clock, value
    /// generation, stores, a configuration view, grant revocation.
    pub fn context(&self) -> GrantContext<'_> {
        GrantContext {
            config: &self.config,
            issuer: &self.issuer,
            default_scope: self.default_scope.as_ref(),
            scopes_supported: self.scopes_supported.as_ref(),
            stores: &self.stores,
            clock: &*self.clock,
            generator: &*self.generator,
            formats: &self.formats,
            keys: self.keys.as_ref(),
            after_issue: &self.after_issue,
            scope_cache: &self.scope_cache,
            audit: self.audit.as_deref(),
            resources: &self.resources,
            client_metadata: self.client_metadata.as_deref(),
            extension_state: &self.extension_state,
        }
    }

    /// How many client ID metadata documents (and failed fetches) are cached; 0 when the
    /// feature is off ([`crate::client_metadata`]).
    pub fn client_metadata_cached(&self) -> usize {
        self.client_metadata.as_ref().map_or(0, |r| r.cached())
    }

    /// The resources this server issues tokens for and the default audience (RFC 8707).
    pub fn resources(&self) -> &crate::resource_indicator::Resources {
        &self.resources
    }

    /// The grants of the token endpoint.
    pub fn grants(&self) -> &GrantRegistry {
        &self.grants
    }

    /// The server-wide default access-token format.
    pub fn access_token_format(&self) -> &dyn AccessTokenFormat {
        &**self.formats.default_format()
    }

    /// The keys slot formats read ([`ServerBuilder::format_keys`]; with
    /// `oauth2.signing_keys` on, the Rocket fairing fills it with the `jwt` feature's
    /// `KeyRing`), for extensions that serve or use those keys.
    pub fn format_keys(&self) -> Option<&FormatKeys> {
        self.keys.as_ref()
    }

    /// Every access-token format, by name ([`FormatRegistry`]).
    pub fn formats(&self) -> &FormatRegistry {
        &self.formats
    }

    /// The validation cache's policy, when `oauth2.validation_cache.enabled` put a
    /// [`CachedAccessStore`](crate::storage::cache::CachedAccessStore) in front of
    /// [`Stores::access`].
    pub fn validation_cache(&self) -> Option<&crate::storage::cache::CachePolicy> {
        self.cache_policy.as_ref()
    }

    /// A fresh value from the generator, checked against RFC 6750 `b64token`.
    pub(crate) fn new_value(&self, kind: TokenKind) -> Result<String, OAuthError> {
        self.context().new_value(kind)
    }

    /// Resolves a request's `scope`: parses it, falls back to the default scope, and checks
    /// it against the server's and the client's allowed scopes.
    pub(crate) fn resolve_scope(
        &self,
        requested: Option<&str>,
        client: &Client,
    ) -> Result<Scope, OAuthError> {
        self.context().resolve_scope(requested, client)
    }

    /// Number of parsed scope strings cached (for tests of the cache's bounds).
    #[doc(hidden)]
    pub fn scope_cache_len(&self) -> usize {
        self.scope_cache.len()
    }

    /// Number of pending authorization requests this server counts as live (for tests of
    /// the bound on pending requests).
    #[doc(hidden)]
    pub fn pending_count(&self) -> usize {
        self.pending_limit.len()
    }
}

impl AuthorizationServer {
    /// Whether `client` is a registered client that has expired at `now`; it is then deleted
    /// (best effort).
    async fn drop_if_expired(&self, client: &Client) -> bool {
        let (server, now) = (self, self.now());
        if !client.registration_expired(now) {
            return false;
        }
        let Some(at) = client.expires_at() else {
            return false;
        };
        if at > now {
            return false;
        }
        if let Some(r) = server.client_registry() {
            match r.delete_client(client.id()).await {
                Ok(_) | Err(crate::error::StorageError::ClientReadOnly) => {}
                Err(e) => log::warn!(
                    "twisted-oauth2: could not delete expired client `{}`: {e}",
                    client.id()
                ),
            }
        }
        true
    }
}

type StoreStep =
    Box<dyn FnOnce(crate::storage::StoresBuilder) -> crate::storage::StoresBuilder + Send>;

/// The name [`ServerBuilder::access_token_format`] registers its format under.
const CUSTOM_FORMAT: &str = "custom";

/// Builds an [`AuthorizationServer`].
pub struct ServerBuilder {
    config: ServerConfig,
    stores: Option<Stores>,
    client_store: Option<Arc<dyn ClientStore>>,
    clock: Option<Arc<dyn Clock>>,
    generator: Option<Arc<dyn TokenGenerator>>,
    grants: Vec<Arc<dyn Grant>>,
    password: Option<Arc<dyn PasswordVerifier>>,
    formats: Vec<(String, Arc<dyn AccessTokenFormat>)>,
    default_format: Option<String>,
    stores_builder: Option<crate::storage::StoresBuilder>,
    store_steps: Vec<StoreStep>,
    keys: Option<FormatKeys>,
    after_issue: Vec<Arc<dyn crate::grant::AfterIssue>>,
    metadata_members: Vec<(String, serde_json::Value)>,
    audit: Option<Arc<dyn crate::audit::AuditSink>>,
    revocation_channel: Option<Arc<dyn crate::storage::cache::RevocationChannel>>,
    metadata_fetcher: Option<Arc<dyn crate::client_metadata::ClientMetadataFetcher>>,
    issued_hooks: Vec<Arc<dyn crate::endpoint::token::TokenIssued>>,
    counters: Option<Arc<dyn crate::limits::CounterStore>>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder").finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Uses these stores (default: one [`MemoryStore`]).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Looks clients up here after those listed in config.
    pub fn client_store(mut self, store: Arc<dyn ClientStore>) -> Self {
        self.client_store = Some(store);
        self
    }

    /// Uses this clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this generator (default: [`RandomTokenGenerator`]).
    pub fn generator(mut self, generator: Arc<dyn TokenGenerator>) -> Self {
        self.generator = Some(generator);
        self
    }

    /// Registers a grant of the application (an extension grant, RFC 6749 §4.5, under
    /// an absolute-URI `grant_type`); its `grant_type` is enabled.
    pub fn grant(mut self, grant: Arc<dyn Grant>) -> Self {
        self.grants.push(grant);
        self
    }

    /// [`Self::grant`] (the name txoauth2 users look for).
    pub fn extension_grant(self, grant: Arc<dyn Grant>) -> Self {
        self.grant(grant)
    }

    /// Sends audit events (tokens issued, refreshed, reuse and replay detected, revoked,
    /// failed client authentication, consent) to `sink`.
    pub fn audit(mut self, sink: Arc<dyn crate::audit::AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Fans the validation cache's revocations out on this channel (for stores given with
    /// [`Self::stores`]; [`Self::build_connected`] opens the channel of the `storage` URL
    /// itself, as [`crate::storage::cache::revocation_channel_for`] does). Used only when
    /// `oauth2.validation_cache.enabled`; without it the cache evicts in this process only
    /// ([`LocalOnly`](crate::storage::cache::LocalOnly)), right for a store no other
    /// process shares.
    pub fn revocation_channel(
        mut self,
        channel: Arc<dyn crate::storage::cache::RevocationChannel>,
    ) -> Self {
        self.revocation_channel = Some(channel);
        self
    }

    /// Uses this access-token format for every client that names none: registers it as
    /// `custom` and makes it the server-wide default, whatever `access_token_format` says
    /// (default: [`OpaqueTokens`], `opaque`). See [`Self::token_format`] to offer several.
    pub fn access_token_format(mut self, format: Arc<dyn AccessTokenFormat>) -> Self {
        self.formats.push((CUSTOM_FORMAT.to_owned(), format));
        self.default_format = Some(CUSTOM_FORMAT.to_owned());
        self
    }

    /// Registers an access-token format under `name` ([`FormatRegistry`]): clients naming
    /// it (`access_token_format` of a client) get their tokens in it, and so does every
    /// client when `oauth2.access_token_format` names it. `opaque` is built in; registering
    /// a name again replaces the format.
    pub fn token_format(
        mut self,
        name: impl Into<String>,
        format: Arc<dyn AccessTokenFormat>,
    ) -> Self {
        self.formats.push((name.into(), format));
        self
    }

    /// Uses the stores `builder` builds, checked here: an empty required slot fails
    /// [`Self::build`] with a [`ConfigError::Setting`] for `storage` naming it
    /// ([`crate::storage::MissingStore`]). [`Self::stores`] wins when both are given.
    pub fn stores_builder(mut self, builder: crate::storage::StoresBuilder) -> Self {
        self.stores_builder = Some(builder);
        self
    }

    /// Changes the stores at build, whichever they are (given, connected from the `storage`
    /// URL, or the default memory store): `f` gets them as a
    /// [`StoresBuilder`](crate::storage::StoresBuilder) and may fill or require extension
    /// slots, or replace a built-in one; the result is checked as for
    /// [`Self::stores_builder`].
    pub fn store_slots(
        mut self,
        f: impl FnOnce(crate::storage::StoresBuilder) -> crate::storage::StoresBuilder + Send + 'static,
    ) -> Self {
        self.store_steps.push(Box::new(f));
        self
    }

    /// Fills the keys slot formats read ([`FormatKeys`],
    /// [`FormatContext::keys`](crate::format::FormatContext::keys)).
    pub fn format_keys(mut self, keys: FormatKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Adds a hook run after every access token is issued ([`crate::grant::AfterIssue`]).
    pub fn after_issue(mut self, hook: Arc<dyn crate::grant::AfterIssue>) -> Self {
        self.after_issue.push(hook);
        self
    }

    /// Adds a member to the RFC 8414 authorization server metadata (e.g.
    /// `registration_endpoint` or `device_authorization_endpoint` of an extension). The
    /// members the library computes are not overridden.
    pub fn metadata_member(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.metadata_members.push((name.into(), value));
        self
    }

    /// Fetches client ID metadata documents with `fetcher` (for example
    /// [`StaticDocuments`](crate::client_metadata::StaticDocuments), with no network)
    /// instead of over HTTPS. Used only when `oauth2.client_metadata.enabled`.
    pub fn client_metadata_fetcher(
        mut self,
        fetcher: Arc<dyn crate::client_metadata::ClientMetadataFetcher>,
    ) -> Self {
        self.metadata_fetcher = Some(fetcher);
        self
    }

    /// Sets the resource-owner password verifier for the `password` grant.
    pub fn password_verifier(mut self, verifier: Arc<dyn PasswordVerifier>) -> Self {
        self.password = Some(verifier);
        self
    }

    /// Runs `hook` after every successful token response of the token endpoint, in the
    /// order added (dynamic client registration uses it to end a registration's unused
    /// expiry).
    pub fn on_token_issued(mut self, hook: Arc<dyn crate::endpoint::token::TokenIssued>) -> Self {
        self.issued_hooks.push(hook);
        self
    }

    /// Counts brute-force attempts in `store` (default: the stores' extension slot of
    /// `dyn CounterStore`, which [`crate::storage::connect`] fills with a Redis URL, else
    /// in this process, on `governor`); give a shared store so several instances share
    /// the limits ([`crate::limits`]).
    pub fn counter_store(mut self, store: Arc<dyn crate::limits::CounterStore>) -> Self {
        self.counters = Some(store);
        self
    }

    /// Replaces the configuration (the fairing reads it at ignite, after the builder
    /// was set up).
    #[cfg(feature = "rocket")]
    pub(crate) fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration, taken out (a default left in its place).
    #[cfg(feature = "rocket")]
    pub(crate) fn take_config(mut self) -> (Self, ServerConfig) {
        let c = std::mem::take(&mut self.config);
        (self, c)
    }

    /// Whether stores were given ([`Self::stores`]).
    #[cfg(feature = "rocket")]
    pub(crate) fn has_stores(&self) -> bool {
        self.stores.is_some()
    }

    /// Whether a client store was given ([`Self::client_store`]).
    #[cfg(feature = "rocket")]
    pub(crate) fn has_client_store(&self) -> bool {
        self.client_store.is_some()
    }

    /// Whether the keys slot was filled ([`Self::format_keys`]).
    #[cfg(all(feature = "rocket", feature = "jwt"))]
    pub(crate) fn has_format_keys(&self) -> bool {
        self.keys.is_some()
    }

    /// The clock the server will use: the one given, or the system clock (as
    /// [`Self::build`] chooses).
    #[cfg(all(feature = "rocket", feature = "jwt"))]
    pub(crate) fn clock_or_system(&mut self) -> Arc<dyn Clock> {
        self.clock
            .get_or_insert_with(|| Arc::new(SystemClock))
            .clone()
    }

    /// Whether a revocation channel was given ([`Self::revocation_channel`]).
    #[cfg(feature = "rocket")]
    pub(crate) fn has_revocation_channel(&self) -> bool {
        self.revocation_channel.is_some()
    }

    /// Validates the configuration and assembles the server.
    ///
    /// Without [`Self::stores`], the configuration's `storage` must be `memory` (the
    /// default): this function cannot connect to a database, so any other `storage` is
    /// refused with a [`ConfigError::Setting`] for `storage`; use
    /// [`Self::build_connected`] or pass
    /// `.stores(twisted_oauth2::storage::connect(url).await?)`.
    ///
    /// Plaintext client secrets of the configuration are digested and dropped: the kept
    /// configuration ([`AuthorizationServer::config`]) has each `secret` replaced by its
    /// `secret_sha256`.
    pub fn build(self) -> Result<AuthorizationServer, ConfigError> {
        let mut config = self.config;
        let missing = |e: crate::storage::MissingStore| ConfigError::Setting {
            key: "storage",
            reason: e.to_string(),
        };
        let given = match (self.stores, self.stores_builder) {
            (Some(s), _) => Some(s),
            (None, Some(b)) => Some(b.build().map_err(missing)?),
            (None, None) => None,
        };
        if given.is_none() && crate::storage::storage_kind(&config.storage) != "memory" {
            return Err(ConfigError::Setting {
                key: "storage",
                reason: format!(
                    "is {} but `ServerBuilder::build` cannot connect to it and no stores were \
                     given: use `.build_connected().await`, or \
                     `.stores(twisted_oauth2::storage::connect(url).await?)` before `.build()`",
                    crate::storage::describe_storage(&config.storage)
                ),
            });
        }
        let v = config.validate()?;
        config.forget_client_secrets();
        let mut stores =
            given.unwrap_or_else(|| Stores::from_backend(Arc::new(MemoryStore::new())));
        if !self.store_steps.is_empty() {
            let mut b = crate::storage::StoresBuilder::from_stores(stores);
            for step in self.store_steps {
                b = step(b);
            }
            stores = b.build().map_err(missing)?;
        }
        if config.refresh_token_reuse_interval > 0 && !stores.refresh.supports_reuse_interval() {
            return Err(ConfigError::Setting {
                key: "refresh_token_reuse_interval",
                reason: "the refresh token store does not support a reuse interval \
                         (`RefreshTokenStore::supports_reuse_interval` is false): set it to 0 \
                         or use a store that implements `rotate_refresh_within`"
                    .into(),
            });
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let generator = self
            .generator
            .unwrap_or_else(|| Arc::new(RandomTokenGenerator) as Arc<dyn TokenGenerator>);
        let mut entries = vec![(
            crate::format::OPAQUE.to_owned(),
            Arc::new(OpaqueTokens) as Arc<dyn AccessTokenFormat>,
        )];
        // Built in with the feature, before the application's so a format of its own
        // registered as `jwt` replaces it.
        #[cfg(feature = "jwt")]
        {
            let replaced = self.formats.iter().any(|(n, _)| n == crate::jwt::JWT);
            if !replaced
                && crate::jwt::format::used_by(&config)
                && !config.jwt_access_tokens.stateless
                && stores
                    .get::<dyn crate::storage::RevokedJtiStore>()
                    .is_none()
            {
                return Err(ConfigError::Setting {
                    key: "access_token_format",
                    reason: "the `jwt` format keeps revoked tokens in a revoked-jti store, and \
                             the stores have none (the `dyn RevokedJtiStore` slot): give one, \
                             or set `jwt_access_tokens.stateless = true`"
                        .into(),
                });
            }
            entries.push((
                crate::jwt::JWT.to_owned(),
                Arc::new(crate::jwt::format::for_server(
                    &config,
                    &stores,
                    self.revocation_channel.clone(),
                    clock.clone(),
                )) as Arc<dyn AccessTokenFormat>,
            ));
        }
        entries.extend(self.formats);
        if let Some(d) = self.default_format {
            config.access_token_format = d;
        }
        let formats =
            FormatRegistry::new(&config.access_token_format, entries).map_err(|reason| {
                ConfigError::Setting {
                    key: "access_token_format",
                    reason,
                }
            })?;
        for c in &config.clients {
            if let Some(f) = &c.access_token_format {
                formats.check(f).map_err(|reason| ConfigError::Client {
                    client: c.id.clone(),
                    reason: format!("in `access_token_format`: {reason}"),
                })?;
            }
        }
        let cache_policy = if config.validation_cache.enabled {
            let channel = self
                .revocation_channel
                .unwrap_or_else(|| Arc::new(crate::storage::cache::LocalOnly));
            let cached = crate::storage::cache::CachedAccessStore::new(
                stores.access.clone(),
                &config.validation_cache,
                channel,
                clock.clone(),
            )
            .map_err(|e| ConfigError::Setting {
                key: "validation_cache",
                reason: format!("cannot start the revocation channel: {e}"),
            })?;
            let policy = cached.policy().clone();
            stores.access = Arc::new(cached);
            Some(policy)
        } else {
            None
        };
        // After the cache: a deleted client's tokens are evicted from it too.
        let revoker = crate::context::ClientRevoker {
            access: stores.access.clone(),
            refresh: stores.refresh.clone(),
            formats: formats.clone(),
            generator: generator.clone(),
            clock: clock.clone(),
            longest_lifetime: config
                .code_lifetime
                .max(config.access_token_lifetime)
                .max(config.refresh_token_lifetime),
        };
        let configured = (!v.clients.is_empty())
            .then(|| Arc::new(StaticClients::new(v.clients)) as Arc<dyn ClientStore>);
        let (clients, registry) = crate::storage::clients::compose(
            configured,
            self.client_store,
            stores.clients.clone(),
            clock.clone(),
            revoker,
        );
        stores.clients = clients;
        let mut grants = GrantRegistry::built_in(self.password.clone());
        for g in self.grants {
            let name = g.grant_type().to_owned();
            if GrantType::built_in(&name).is_some() || !GrantType::new(name.clone()).is_extension()
            {
                return Err(ConfigError::Setting {
                    key: "grant_types",
                    reason: format!(
                        "an application grant needs an absolute-URI grant_type; `{name}` is not one or clashes with a built-in grant"
                    ),
                });
            }
            if !config.grant_types.contains(&name) {
                config.grant_types.push(name.clone());
            }
            grants.insert(g);
        }
        if config.device.enabled {
            config.device.validate()?;
            if stores.device_codes.is_none() {
                if crate::storage::storage_kind(&config.storage) != "memory" {
                    return Err(ConfigError::Setting {
                        key: "device.enabled",
                        reason: format!(
                            "the device grant needs a device-code store and the {} has none \
                             yet: give one in `Stores::device_codes`",
                            crate::storage::describe_storage(&config.storage)
                        ),
                    });
                }
                stores.device_codes = Some(Arc::new(crate::device::MemoryDeviceCodes::default()));
            }
            let name = crate::device::GRANT_TYPE;
            if grants.get(name).is_none() {
                grants.insert(Arc::new(crate::grant::device_code::DeviceCodeGrant));
            }
            if !config.grant_types.iter().any(|g| g == name) {
                config.grant_types.push(name.to_owned());
            }
        }
        let registered: Vec<String> = grants.names().iter().map(|s| (*s).to_owned()).collect();
        for g in &config.grant_types {
            if g == GrantType::PASSWORD.as_str()
                && GrantType::PASSWORD.is_compiled_in()
                && grants.get(g).is_none()
            {
                return Err(ConfigError::Setting {
                    key: "grant_types",
                    reason: "the password grant needs a password verifier".into(),
                });
            }
            if !grants.knows(g) {
                let reason = if GrantType::new(g.clone()).is_extension() {
                    format!("extension grant `{g}` is enabled but no handler is registered")
                } else {
                    unknown_grant_type(g, &registered)
                };
                return Err(ConfigError::Setting {
                    key: "grant_types",
                    reason,
                });
            }
        }
        for c in &config.clients {
            if let Some(g) = c.grant_types.iter().find(|g| !grants.knows(g)) {
                return Err(ConfigError::Client {
                    client: c.id.clone(),
                    reason: format!("in `grant_types`: {}", unknown_grant_type(g, &registered)),
                });
            }
        }
        let client_metadata = if config.client_metadata.enabled {
            let fetcher = match self.metadata_fetcher {
                Some(f) => f,
                None => default_metadata_fetcher(&config.client_metadata)?,
            };
            Some(Arc::new(
                crate::client_metadata::ClientMetadataResolver::new(
                    config.client_metadata.clone(),
                    fetcher,
                ),
            ))
        } else {
            None
        };
        let origin_policy = crate::origin::OriginPolicy::new(
            &config,
            std::iter::once(v.issuer.as_str()).chain(v.resources.known()),
        )?;
        let pending_limit = crate::pending_limit::PendingLimiter::new(
            config.max_pending_requests,
            config.max_pending_per_user_agent,
        );
        let device_endpoint = config.device.enabled;
        let max_keys = config.limits.max_keys;
        let counters = self
            .counters
            .or_else(|| stores.get::<dyn crate::limits::CounterStore>())
            .unwrap_or_else(|| Arc::new(crate::limits::MemoryCounters::new(max_keys)));
        let request_policy = crate::validation::RequestPolicy::of(&config);
        let mut server = AuthorizationServer {
            issuer: v.issuer,
            default_scope: v.default_scope,
            scopes_supported: v.scopes_supported,
            config,
            stores,
            registry,
            clock,
            generator,
            grants,
            formats,
            keys: self.keys,
            after_issue: self.after_issue,
            request_policy,
            cache_policy,
            metadata_members: self.metadata_members,
            scope_cache: ScopeCache::default(),
            audit: self.audit,
            pending_limit,
            extension_state: ExtensionState::default(),
            counters,
            issued_hooks: std::iter::once(crate::endpoint::register::issued_hook())
                .chain(self.issued_hooks)
                .collect(),
            resources: v.resources,
            client_metadata,
            trusted_proxies: v.trusted_proxies,
            origin_policy,
            scope_hierarchy: v.scope_hierarchy,
            known_clients: KnownClients::default(),
        };
        if device_endpoint {
            // Through the public seam an extension endpoint uses.
            let url = server.endpoint_url("device_authorization");
            server
                .metadata_members
                .push(("device_authorization_endpoint".into(), url.into()));
        }
        Ok(server)
    }
}

impl ServerBuilder {
    /// [`Self::build`], after connecting the configuration's `storage` URL with
    /// [`crate::storage::connect`] when no stores were given (SQL schemas are created or
    /// migrated first). A store that cannot be opened is a [`ConfigError::Setting`] for
    /// `storage` naming the backend (without credentials) and the cause. With
    /// `oauth2.validation_cache.enabled`, or the `jwt` format in use and not stateless (and no
    /// [`Self::revocation_channel`]), the
    /// channel of the URL is opened too
    /// ([`crate::storage::cache::revocation_channel_for`]).
    pub async fn build_connected(mut self) -> Result<AuthorizationServer, ConfigError> {
        if self.stores.is_none() {
            self.config.validate()?;
            let url = self.config.storage.clone();
            let stores = crate::storage::connect(&url)
                .await
                .map_err(|e| storage_setting_error(&url, e))?;
            self.stores = Some(stores);
            if self.config.wants_revocation_channel() && self.revocation_channel.is_none() {
                let channel = crate::storage::cache::revocation_channel_for(&url)
                    .await
                    .map_err(|e| storage_setting_error(&url, e))?;
                self.revocation_channel = Some(channel);
            }
        }
        self.build()
    }
}

/// The HTTPS fetcher of client ID metadata documents, or why there is none.
fn default_metadata_fetcher(
    cfg: &crate::client_metadata::ClientMetadataConfig,
) -> Result<Arc<dyn crate::client_metadata::ClientMetadataFetcher>, ConfigError> {
    #[cfg(feature = "client-metadata")]
    {
        Ok(Arc::new(crate::client_metadata::HttpFetcher::new(cfg)?))
    }
    #[cfg(not(feature = "client-metadata"))]
    {
        let _ = cfg;
        Err(ConfigError::Setting {
            key: "client_metadata.enabled",
            reason: "fetching documents needs the `client-metadata` cargo feature (or a \
                     fetcher given with `ServerBuilder::client_metadata_fetcher`)"
                .into(),
        })
    }
}

/// A failure to open the `storage` URL as a configuration error.
fn storage_setting_error(url: &str, e: crate::error::StorageError) -> ConfigError {
    use crate::error::StorageError;
    let e = match e {
        StorageError::Other(cause) => match cause.downcast::<ConfigError>() {
            Ok(config) => return *config,
            Err(cause) => StorageError::Other(cause),
        },
        e => e,
    };
    let mut reason = format!("cannot open {}: {e}", crate::storage::describe_storage(url));
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(&format!(": {s}"));
        source = s.source();
    }
    ConfigError::Setting {
        key: "storage",
        reason,
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; others unchanged.
fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// One hop of a forwarded-address header: an address, possibly `[v6]`, `v4:port` or
/// `[v6]:port`.
fn parse_forwarded_ip(hop: &str) -> Option<std::net::IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<std::net::IpAddr>() {
        return Some(canonical_ip(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| canonical_ip(a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
                .map(canonical_ip)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(issuer: &str, base_path: &str) -> AuthorizationServer {
        let cfg = ServerConfig {
            issuer: issuer.into(),
            base_path: base_path.into(),
            ..Default::default()
        };
        AuthorizationServer::builder(cfg)
            .build()
            .expect("valid config")
    }

    #[test]
    fn endpoints_are_served_under_the_issuer_path() {
        let s = server("https://h", "/oauth2");
        assert_eq!(s.endpoints_path(), "/oauth2");
        assert_eq!(s.endpoint_url("token"), "https://h/oauth2/token");
        let s = server("https://h/tenant/", "/oauth2");
        assert_eq!(s.endpoints_path(), "/tenant/oauth2");
        assert_eq!(s.endpoint_url("token"), "https://h/tenant/oauth2/token");
        let s = server("https://h/tenant", "/");
        assert_eq!(s.endpoints_path(), "/tenant");
        assert_eq!(s.endpoint_url("token"), "https://h/tenant/token");
        let s = server("https://h:8443", "/");
        assert_eq!(s.endpoints_path(), "/");
        assert_eq!(s.endpoint_url("token"), "https://h:8443/token");
    }

    fn behind(proxies: &[&str]) -> AuthorizationServer {
        let cfg = ServerConfig {
            issuer: "https://h".into(),
            trusted_proxies: proxies.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        AuthorizationServer::builder(cfg)
            .build()
            .expect("valid config")
    }

    fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let direct = behind(&[]);
        assert_eq!(
            direct.client_address(ip("203.0.113.5"), ["198.51.100.1"]),
            ip("203.0.113.5"),
            "a forwarded-address header from an untrusted peer is ignored"
        );
        assert_eq!(direct.client_address(None, ["198.51.100.1"]), None);
        let s = behind(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(
            s.client_address(ip("127.0.0.1"), ["198.51.100.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            s.client_address(ip("::ffff:127.0.0.1"), ["198.51.100.1"]),
            ip("198.51.100.1")
        );
        // The last untrusted hop of a chain; what the client put in front is not believed.
        assert_eq!(
            s.client_address(ip("10.1.1.1"), ["6.6.6.6, 198.51.100.2, 10.0.0.3"]),
            ip("198.51.100.2")
        );
        assert_eq!(
            s.client_address(ip("10.1.1.1"), ["6.6.6.6", "[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(s.client_address(ip("10.1.1.1"), []), ip("10.1.1.1"));
        assert_eq!(
            s.client_address(ip("10.1.1.1"), ["unknown"]),
            ip("10.1.1.1")
        );
        // An untrusted peer in the trusted range's neighbourhood.
        assert_eq!(
            s.client_address(ip("11.0.0.1"), ["198.51.100.1"]),
            ip("11.0.0.1")
        );
    }

    #[test]
    fn trusted_proxies_must_be_addresses_or_prefixes() {
        let cfg = ServerConfig {
            issuer: "https://h".into(),
            trusted_proxies: vec!["nginx".into()],
            ..Default::default()
        };
        let e = AuthorizationServer::builder(cfg)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("trusted_proxies"), "{e}");
    }
}
