//! [`AuthorizationServer`]: configuration, stores, clock and token generator assembled.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::client::Client;
use crate::clock::{Clock, SystemClock};
use crate::config::ServerConfig;
use crate::error::{ConfigError, ErrorCode, OAuthError};
use crate::grant::ExtensionGrant;
use crate::scope::Scope;
use crate::storage::memory::MemoryStore;
use crate::storage::{ClientRegistry, ClientStore, PasswordVerifier, StaticClients, Stores};
use crate::token::{is_b64token, RandomTokenGenerator, TokenGenerator, TokenKind};

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
    pub(crate) extensions: HashMap<String, Arc<dyn ExtensionGrant>>,
    #[cfg_attr(not(feature = "password-grant"), allow(dead_code))]
    pub(crate) password: Option<Arc<dyn PasswordVerifier>>,
    /// Parsed forms of recently requested scope strings, so tokens with the same scope
    /// share one [`Scope`] and requests skip re-parsing.
    scope_cache: dashmap::DashMap<Box<str>, Scope>,
    /// Live pending authorization requests, bounded in total and per browser.
    pub(crate) pending_limit: crate::pending_limit::PendingLimiter,
}

/// Most distinct scope strings kept parsed.
const SCOPE_CACHE_LIMIT: usize = 1024;

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
            extensions: Vec::new(),
            password: None,
        }
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
        let issuer_path = crate::endpoint::metadata::split(&self.issuer).1;
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

    /// The scopes the server advertises, if configured.
    pub fn scopes_supported(&self) -> Option<&Scope> {
        self.scopes_supported.as_ref()
    }

    /// Looks up a client.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        Ok(self.stores.clients.client(id).await?)
    }

    /// A fresh value from the generator, checked against RFC 6750 `b64token`.
    pub(crate) fn new_value(&self, kind: TokenKind) -> Result<String, OAuthError> {
        let v = self.generator.generate(kind).map_err(OAuthError::from)?;
        if !is_b64token(&v) {
            log::error!(
                "twisted-oauth2: the token generator returned a value outside RFC 6750 b64token"
            );
            return Err(OAuthError::with_description(
                ErrorCode::ServerError,
                "the server encountered an unexpected condition",
            ));
        }
        Ok(v)
    }

    /// Resolves a request's `scope`: parses it, falls back to the default scope, and checks
    /// it against the server's and the client's allowed scopes.
    pub(crate) fn resolve_scope(
        &self,
        requested: Option<&str>,
        client: &Client,
    ) -> Result<Scope, OAuthError> {
        if requested.is_some_and(|s| s.len() > self.config.max_scope_length) {
            return Err(OAuthError::invalid_scope(format!(
                "scope is too long (at most {} bytes)",
                self.config.max_scope_length
            )));
        }
        let Some(s) = requested else {
            let scope = match &self.default_scope {
                Some(d) => d.clone(),
                None => return Err(OAuthError::invalid_scope("scope is required")),
            };
            self.check_scope(&scope, client)?;
            return Ok(scope);
        };
        let cached = self.scope_cache.get(s).map(|hit| hit.clone());
        let scope = match cached {
            Some(scope) => scope,
            None => Scope::parse_param(s)?,
        };
        self.check_scope(&scope, client)?;
        // Only scopes that passed the checks against a known set (the server's
        // `scopes_supported` or the client's registered scopes) are remembered, so requests
        // with made-up scopes cannot fill the cache; the entry count is capped too.
        let known = self.scopes_supported.is_some() || client.allowed_scopes().is_some();
        if known && self.scope_cache.len() < SCOPE_CACHE_LIMIT && !self.scope_cache.contains_key(s)
        {
            self.scope_cache.insert(s.into(), scope.clone());
        }
        Ok(scope)
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

    pub(crate) fn check_scope(&self, scope: &Scope, client: &Client) -> Result<(), OAuthError> {
        if let Some(supported) = &self.scopes_supported {
            if !scope.is_subset(supported) {
                return Err(OAuthError::invalid_scope("unknown scope requested"));
            }
        }
        if let Some(allowed) = client.allowed_scopes() {
            if !scope.is_subset(allowed) {
                return Err(OAuthError::invalid_scope(
                    "scope exceeds what the client may request",
                ));
            }
        }
        Ok(())
    }
}

/// Builds an [`AuthorizationServer`].
pub struct ServerBuilder {
    config: ServerConfig,
    stores: Option<Stores>,
    client_store: Option<Arc<dyn ClientStore>>,
    clock: Option<Arc<dyn Clock>>,
    generator: Option<Arc<dyn TokenGenerator>>,
    extensions: Vec<Arc<dyn ExtensionGrant>>,
    password: Option<Arc<dyn PasswordVerifier>>,
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

    /// Registers an extension grant (RFC 6749 §4.5); its `grant_type` is enabled.
    pub fn extension_grant(mut self, grant: Arc<dyn ExtensionGrant>) -> Self {
        self.extensions.push(grant);
        self
    }

    /// Sets the resource-owner password verifier for the `password` grant.
    pub fn password_verifier(mut self, verifier: Arc<dyn PasswordVerifier>) -> Self {
        self.password = Some(verifier);
        self
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
        if self.stores.is_none() && crate::storage::storage_kind(&config.storage) != "memory" {
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
        let mut stores = self
            .stores
            .unwrap_or_else(|| Stores::from_backend(Arc::new(MemoryStore::new())));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let configured = (!v.clients.is_empty())
            .then(|| Arc::new(StaticClients::new(v.clients)) as Arc<dyn ClientStore>);
        let (clients, registry) = crate::storage::clients::compose(
            configured,
            self.client_store,
            stores.clients.clone(),
            clock.clone(),
        );
        stores.clients = clients;
        let mut extensions = HashMap::new();
        for e in self.extensions {
            let name = e.grant_type().to_owned();
            if matches!(
                name.as_str(),
                "authorization_code"
                    | "refresh_token"
                    | "client_credentials"
                    | "password"
                    | "implicit"
            ) || name.is_empty()
            {
                return Err(ConfigError::Setting {
                    key: "grant_types",
                    reason: format!("extension grant `{name}` clashes with a built-in grant"),
                });
            }
            if !config.grant_types.contains(&name) {
                config.grant_types.push(name.clone());
            }
            extensions.insert(name, e);
        }
        for g in &config.grant_types {
            if g.contains(':') && !extensions.contains_key(g) {
                return Err(ConfigError::Setting {
                    key: "grant_types",
                    reason: format!(
                        "extension grant `{g}` is enabled but no handler is registered"
                    ),
                });
            }
        }
        if config.grant_types.iter().any(|g| g == "password") && self.password.is_none() {
            return Err(ConfigError::Setting {
                key: "grant_types",
                reason: "the password grant needs a password verifier".into(),
            });
        }
        let pending_limit = crate::pending_limit::PendingLimiter::new(
            config.max_pending_requests,
            config.max_pending_per_user_agent,
        );
        Ok(AuthorizationServer {
            issuer: v.issuer,
            default_scope: v.default_scope,
            scopes_supported: v.scopes_supported,
            config,
            stores,
            registry,
            clock,
            generator: self
                .generator
                .unwrap_or_else(|| Arc::new(RandomTokenGenerator)),
            extensions,
            password: self.password,
            scope_cache: dashmap::DashMap::new(),
            pending_limit,
        })
    }
}

impl ServerBuilder {
    /// [`Self::build`], after connecting the configuration's `storage` URL with
    /// [`crate::storage::connect`] when no stores were given (SQL schemas are created or
    /// migrated first). A store that cannot be opened is a [`ConfigError::Setting`] for
    /// `storage` naming the backend (without credentials) and the cause.
    pub async fn build_connected(mut self) -> Result<AuthorizationServer, ConfigError> {
        if self.stores.is_none() {
            self.config.validate()?;
            let url = self.config.storage.clone();
            let stores = crate::storage::connect(&url)
                .await
                .map_err(|e| storage_setting_error(&url, e))?;
            self.stores = Some(stores);
        }
        self.build()
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
}
