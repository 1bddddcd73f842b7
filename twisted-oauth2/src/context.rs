//! [`GrantContext`]: what a grant handler (and an endpoint extension) may use of the
//! server — scope resolution, the clock, value generation, the stores, client lookup, a
//! view of the configuration, grant revocation — instead of the whole
//! [`AuthorizationServer`](crate::AuthorizationServer).

use std::sync::Arc;

use crate::audit::{AuditEvent, AuditSink};
use crate::client::Client;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::{ErrorCode, OAuthError};
use crate::format::{AccessTokenFormat, FormatContext, FormatKeys, FormatRegistry};
use crate::scope::Scope;
use crate::storage::{GrantId, Stores};
use crate::token::{is_b64token, TokenGenerator, TokenKind};

/// Most distinct scope strings kept parsed.
const SCOPE_CACHE_LIMIT: usize = 1024;

/// Parsed forms of recently requested scope strings, so tokens with the same scope share
/// one [`Scope`] and requests skip re-parsing. Bounded; holds only checked scopes.
#[derive(Default)]
pub(crate) struct ScopeCache(dashmap::DashMap<Box<str>, Scope>);

impl ScopeCache {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a grant handler or an extension may use of the server.
#[derive(Clone, Copy)]
pub struct GrantContext<'a> {
    pub(crate) config: &'a ServerConfig,
    pub(crate) issuer: &'a str,
    pub(crate) default_scope: Option<&'a Scope>,
    pub(crate) scopes_supported: Option<&'a Scope>,
    pub(crate) stores: &'a Stores,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) generator: &'a dyn TokenGenerator,
    pub(crate) formats: &'a FormatRegistry,
    pub(crate) keys: Option<&'a FormatKeys>,
    pub(crate) after_issue: &'a [Arc<dyn crate::grant::AfterIssue>],
    pub(crate) scope_cache: &'a ScopeCache,
    pub(crate) audit: Option<&'a dyn AuditSink>,
    pub(crate) resources: &'a crate::resource_indicator::Resources,
    pub(crate) client_metadata: Option<&'a crate::client_metadata::ClientMetadataResolver>,
    pub(crate) extension_state: &'a crate::server::ExtensionState,
}

impl std::fmt::Debug for GrantContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantContext")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl<'a> GrantContext<'a> {
    /// The server's one value of type `T`, as
    /// [`AuthorizationServer::extension_state`](crate::server::AuthorizationServer::extension_state)
    /// gives it (the same value: an extension's endpoint and its grant share it), made by
    /// `init` on first use. Use a type private to the extension.
    pub fn extension_state<T: Send + Sync + 'static>(
        &self,
        init: impl FnOnce(&GrantContext<'a>) -> T,
    ) -> Arc<T> {
        self.extension_state.get_or_init(|| init(self))
    }

    /// Records an audit event with the application's [`AuditSink`], if one is installed.
    pub fn audit(&self, event: AuditEvent) {
        if let Some(sink) = self.audit {
            sink.record(&event);
        }
    }

    /// The configuration (read-only).
    pub fn config(&self) -> &'a ServerConfig {
        self.config
    }

    /// The issuer identifier, without trailing slash.
    pub fn issuer(&self) -> &'a str {
        self.issuer
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The resources tokens may be issued for, and the default audience (RFC 8707).
    pub fn resources(&self) -> &'a crate::resource_indicator::Resources {
        self.resources
    }

    /// The stores.
    pub fn stores(&self) -> &'a Stores {
        self.stores
    }

    /// What an access-token format may use: the access store, the generator, the time,
    /// the issuer, the configuration and the keys (the issuance path adds the client).
    pub fn format_context(&self) -> FormatContext<'a> {
        FormatContext::new(&*self.stores.access, self.generator, self.now())
            .with_issuer(self.issuer)
            .with_config(self.config)
            .with_keys(self.keys)
    }

    /// The server-wide default access-token format.
    pub fn format(&self) -> &'a dyn AccessTokenFormat {
        &**self.formats.default_format()
    }

    /// Every access-token format of the server, by name ([`FormatRegistry`]).
    pub fn formats(&self) -> &'a FormatRegistry {
        self.formats
    }

    /// Whether the server enables `grant_type`.
    pub fn grant_enabled(&self, grant_type: &str) -> bool {
        self.config.grant_types.iter().any(|g| g == grant_type)
    }

    /// Looks up a client; a dynamically registered one whose registration expired
    /// ([`Client::expires_at`]) is not found. With client ID metadata documents on, an
    /// `https` URL id is resolved by its document ([`crate::client_metadata`]; the caller is
    /// not known here, so only the per-host fetch limits apply); a refused document is
    /// `invalid_request` with the reason.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        let now = self.clock.unix();
        if let Some(resolver) = self.client_metadata {
            if crate::client_metadata::is_metadata_document_url(id) {
                return resolver
                    .client(self.config, self.scopes_supported, id, None, now)
                    .await
                    .map(Some);
            }
        }
        Ok(self
            .stores
            .clients
            .client(id)
            .await?
            .filter(|c| !c.registration_expired(now)))
    }

    /// A fresh unguessable value (a code, a handle, a device code), checked against
    /// RFC 6750 `b64token`.
    pub fn new_value(&self, kind: TokenKind) -> Result<String, OAuthError> {
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
    /// it against the server's and the client's allowed scopes (`invalid_scope`).
    pub fn resolve_scope(
        &self,
        requested: Option<&str>,
        client: &Client,
    ) -> Result<Scope, OAuthError> {
        let max = self.config.max_scope_length;
        if requested.is_some_and(|s| s.len() > max) {
            return Err(OAuthError::invalid_scope(format!(
                "scope is too long (at most {max} bytes)"
            )));
        }
        let Some(s) = requested else {
            let scope = match self.default_scope {
                Some(d) => d.clone(),
                None => return Err(OAuthError::invalid_scope("scope is required")),
            };
            self.check_scope(&scope, client)?;
            return Ok(scope);
        };
        let cache = &self.scope_cache.0;
        let cached = cache.get(s).map(|hit| hit.clone());
        let scope = match cached {
            Some(scope) => scope,
            None => Scope::parse_param(s)?,
        };
        self.check_scope(&scope, client)?;
        // Only scopes that passed the checks against a known set (the server's
        // `scopes_supported` or the client's registered scopes) are remembered, so requests
        // with made-up scopes cannot fill the cache; the entry count is capped too.
        let known = self.scopes_supported.is_some() || client.allowed_scopes().is_some();
        if known && cache.len() < SCOPE_CACHE_LIMIT && !cache.contains_key(s) {
            cache.insert(s.into(), scope.clone());
        }
        Ok(scope)
    }

    /// Checks a scope against the server's `scopes_supported` and the client's scopes.
    pub fn check_scope(&self, scope: &Scope, client: &Client) -> Result<(), OAuthError> {
        if let Some(supported) = self.scopes_supported {
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

    /// How long a revoked grant's tombstone must last: until nothing issued from it could
    /// still be valid (its code, an access token, or a refresh token issued just before).
    pub(crate) fn tombstone_until(&self) -> i64 {
        let cfg = self.config;
        let longest = cfg
            .code_lifetime
            .max(cfg.access_token_lifetime)
            .max(cfg.refresh_token_lifetime);
        self.now()
            .saturating_add(i64::try_from(longest).unwrap_or(i64::MAX))
    }

    /// Revokes every access and refresh token of a grant and tombstones it, so a token
    /// write of the grant racing this call cannot outlive it (the one family-revocation
    /// path: code replay, refresh reuse, RFC 7009). The refresh family goes first, so no new
    /// access token can be minted from it while the access tokens are revoked. Returns how
    /// many (access, refresh) tokens were removed.
    pub async fn revoke_grant(&self, grant: GrantId) -> Result<(u64, u64), OAuthError> {
        let until = self.tombstone_until();
        let refresh = self
            .stores
            .refresh
            .revoke_refresh_grant(grant, until)
            .await?;
        let fctx = self.format_context();
        let mut access = 0;
        for f in self.formats.formats() {
            access += f.revoke_grant(&fctx, grant, until).await?;
        }
        Ok((access, refresh))
    }
}

/// What revoking a client needs: its token stores (the access store as the server reads
/// it, validation cache included), the access-token format, the generator a
/// [`FormatContext`] carries, and the longest token lifetime (for the tombstone). Held by
/// the server's client registry, which revokes before it deletes.
#[derive(Clone)]
pub(crate) struct ClientRevoker {
    pub(crate) access: Arc<dyn crate::storage::AccessTokenStore>,
    pub(crate) refresh: Arc<dyn crate::storage::RefreshTokenStore>,
    pub(crate) formats: FormatRegistry,
    pub(crate) generator: Arc<dyn TokenGenerator>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The longest of the code, access and refresh token lifetimes, seconds.
    pub(crate) longest_lifetime: u64,
}

impl ClientRevoker {
    /// Revokes every access and refresh token of `client_id` and tombstones the client for
    /// both until nothing issued before now could still be valid (as for a grant,
    /// [`GrantContext::revoke_grant`]): refresh tokens first, so no access token is minted
    /// from one meanwhile. Returns how many (access, refresh) tokens were removed.
    pub(crate) async fn revoke(
        &self,
        client_id: &str,
    ) -> Result<(u64, u64), crate::error::StorageError> {
        let now = self.clock.unix();
        let until = now.saturating_add(i64::try_from(self.longest_lifetime).unwrap_or(i64::MAX));
        let refresh = self.refresh.revoke_refresh_client(client_id, until).await?;
        let fctx = FormatContext::new(&*self.access, &*self.generator, now);
        let mut access = 0;
        for f in self.formats.formats() {
            access += f.revoke_client(&fctx, client_id, until).await?;
        }
        Ok((access, refresh))
    }
}
