//! Server configuration: read by the Rocket fairing from the `oauth2` table of Rocket's
//! figment (`Rocket.toml`, `ROCKET_OAUTH2`), or built in code.
//!
//! Every key has a default; see the field docs and `docs/configuration.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::client::{Client, SecretDigest};
use crate::error::ConfigError;
use crate::scope::Scope;

mod resource_server;
pub use crate::signing_keys::{SigningKeyConfig, SigningKeysConfig};
pub use crate::storage::cache::ValidationCacheConfig;
pub use resource_server::{IntrospectionConfig, ResourceServerConfig, ALGORITHM_NAMES};

/// Server-wide settings.
///
/// Its `Debug` output shows the `storage` URL without user name, password or query (see
/// [`crate::storage::connect`]) and client secrets as `<redacted>`, so it can be logged.
///
/// Build it with struct-update syntax, which keeps working when settings are added:
/// `ServerConfig { issuer: "https://as.example".into(), ..Default::default() }`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The issuer identifier (RFC 8414 §2, RFC 9207): scheme, host, optional port and path.
    /// Required: the server refuses to build without it. (The Rocket fairing derives it from
    /// Rocket's address and port when `allow_insecure_request_debug` is on, and says so.)
    pub issuer: String,
    /// Where the endpoints are mounted. Default `/oauth2`.
    pub base_path: String,
    /// The realm named in `WWW-Authenticate` challenges. Default `twisted-oauth2`.
    pub realm: String,
    /// Let `http://localhost` redirect URIs match any port, like `http://127.0.0.1` and
    /// `http://[::1]` (RFC 8252 §7.3). Native clients such as Claude Code register
    /// `http://localhost/callback`. Default `false` (RFC 8252 §8.3 prefers IP literals).
    pub allow_localhost_any_port: bool,
    /// Origins allowed to call the token, revocation and registration endpoints and to
    /// read the discovery documents from a browser (CORS, without credentials): `"*"` for
    /// any, or exact origins such as `"https://inspector.example"`; empty turns CORS off.
    /// Protected routes' 401/403 answers to such origins expose `WWW-Authenticate`.
    /// Default `["*"]` (the endpoints take no cookies, so no ambient authority is exposed).
    pub cors_allowed_origins: Vec<String>,
    /// Origins that may reach routes whose `Origin` is checked (routes opened with
    /// `OAuth2::cors_route` or `OAuth2::check_origin`; see [`crate::origin`]): exact
    /// origins, or a loopback host with any port (`http://localhost:*`). The server's own
    /// origins and the exact origins of [`cors_allowed_origins`](Self::cors_allowed_origins)
    /// are allowed too; `"*"` is refused. Default: none besides those.
    pub allowed_origins: Vec<String>,
    /// Accept plain-HTTP requests (development only; launch logs a warning). Default `false`.
    pub allow_insecure_request_debug: bool,
    /// A header set by a trusted reverse proxy that says `https` when the client used TLS,
    /// such as `X-Forwarded-Proto`. Default: none (only Rocket's own TLS counts).
    pub trusted_proxy_header: Option<String>,
    /// The reverse proxies whose [`client_ip_header`](Self::client_ip_header) is believed:
    /// IP addresses or CIDR prefixes (`"127.0.0.1"`, `"10.0.0.0/8"`, `"::1"`). Every limit
    /// of the library keys on the client address, which is the TCP peer's address unless
    /// that peer is listed here; then it is the last address in the header that is not a
    /// listed proxy. Default: none (the peer address; Rocket's `ip_header` is never used, as
    /// any client can send it).
    pub trusted_proxies: Vec<String>,
    /// The header listed [`trusted_proxies`](Self::trusted_proxies) put the client address
    /// in: one address (`X-Real-IP`) or a comma-separated chain (`X-Forwarded-For`).
    /// Default `"X-Real-IP"`.
    pub client_ip_header: String,
    /// Access token lifetime in seconds. Default 3600.
    pub access_token_lifetime: u64,
    /// The server-wide access-token format, by registered name: `opaque` (random values
    /// kept in the store, the default) or one the application registers
    /// ([`crate::format::FormatRegistry`]). A client may name its own
    /// ([`ClientConfig::access_token_format`]). An unknown name is refused at launch.
    pub access_token_format: String,
    /// Seconds of clock skew a self-contained access token's `exp`/`nbf`/`iat` may be off
    /// by ([`crate::format::ValidationContext::leeway`]). Default 0; at most 300.
    pub token_leeway: u64,
    /// Refresh token lifetime in seconds (each rotation starts a new period). Default 30 days.
    pub refresh_token_lifetime: u64,
    /// Seconds during which a rotated-out refresh token may be presented again and get
    /// fresh tokens of the same family instead of counting as reuse (which revokes the
    /// family): MCP hosts and other clients refresh in parallel with one refresh token.
    /// At most 300; the store must support it
    /// ([`RefreshTokenStore::supports_reuse_interval`](crate::storage::RefreshTokenStore::supports_reuse_interval);
    /// every built-in store does). Default 0 (strict rotation: any second use is reuse).
    pub refresh_token_reuse_interval: u64,
    /// Authorization code lifetime in seconds. Default 60.
    pub code_lifetime: u64,
    /// Lifetime of a pending authorization request awaiting consent, in seconds. Default 600.
    pub pending_lifetime: u64,
    /// Grant types the token endpoint accepts. Default `authorization_code`, `refresh_token`,
    /// `client_credentials`. `password` needs the `password-grant` feature, `implicit` the
    /// `implicit-grant` feature; extension grants are enabled by registering them.
    pub grant_types: Vec<String>,
    /// Scope used when a request omits `scope` (txoauth2's `defaultScope`). Default: none,
    /// so a request without scope is refused with `invalid_scope`.
    pub default_scope: Option<String>,
    /// Every scope the server knows; when set, other scopes are refused with `invalid_scope`
    /// and the list is published in the metadata. Default: any syntactically valid scope.
    pub scopes_supported: Option<Vec<String>>,
    /// Require PKCE from confidential clients too (public clients always need it).
    /// Default `false`.
    pub pkce_required_for_all_clients: bool,
    /// Accept `code_challenge_method=plain`. Default `false` (S256 only).
    pub pkce_allow_plain: bool,
    /// Largest accepted form body in bytes at the token, revocation and introspection
    /// endpoints. Default 16384.
    pub max_body_size: u64,
    /// Longest accepted URL query in bytes at every endpoint that reads one (the
    /// authorization endpoint's `GET`, and the query of the form endpoints). Longer is
    /// `invalid_request` (an error page at the authorization endpoint). Default 8192.
    pub max_query_length: u64,
    /// Most parameters accepted in one form body or URL query. More is `invalid_request`.
    /// Default 64.
    pub max_parameters: usize,
    /// Longest accepted `state` in bytes (authorization endpoint). Longer is
    /// `invalid_request`. Default 2048.
    pub max_state_length: usize,
    /// Longest accepted `scope` parameter in bytes (authorization and token endpoints).
    /// Longer is `invalid_scope`. Default 1024.
    pub max_scope_length: usize,
    /// Most pending authorization requests (awaiting the user's decision) this server
    /// holds at once. When full, new requests get an error page (503) until older ones
    /// are decided or expire. Default 10000.
    pub max_pending_requests: usize,
    /// Most pending authorization requests per browser (per user-agent binding cookie).
    /// A browser that starts more loses its oldest. Default 32.
    pub max_pending_per_user_agent: usize,
    /// Accept `access_token` in the URL query at protected resources (RFC 6750 §2.3,
    /// discouraged). Default `false`.
    pub allow_access_token_in_query: bool,
    /// Revoking an access token also revokes the refresh tokens of its grant. Default `false`.
    pub revoke_grant_on_access_token_revocation: bool,
    /// A bearer token holding this scope may call the introspection endpoint. Default none.
    pub introspection_scope: Option<String>,
    /// The protected resource identifier published in the RFC 9728 protected resource
    /// metadata (an `http(s)` URL without query or fragment); its well-known document is
    /// served at `/.well-known/oauth-protected-resource` plus the URL's path.
    /// Default: the issuer.
    pub resource: Option<String>,
    /// A human-readable name of the protected resource (RFC 9728 `resource_name`).
    /// Default none.
    pub resource_name: Option<String>,
    /// Other resource servers this server issues access tokens for (RFC 8707 resource
    /// indicators): absolute URIs without fragment that clients may name with `resource`.
    /// The application's own [`Self::resource`] is always known and is the audience of
    /// tokens whose requests name no resource (see [`crate::resource_indicator`]).
    /// Default none.
    pub resources: Vec<String>,
    /// Routes (or mount points) that are resources of their own (RFC 8707, RFC 9728): route
    /// path → resource identifier, such as `"/mcp" = "https://api.example.com/mcp"` (the MCP
    /// endpoint's URL, which MCP clients name as `resource`). A value that is a path
    /// (`"/mcp" = "/mcp"`) is taken relative to the origin of [`Self::resource`]. Requests to
    /// the path and below it accept tokens for that resource or for one above it (the
    /// origin's, say: the tokens of requests naming no resource); their challenges point to
    /// its RFC 9728 document, served at the path-inserted well-known URL
    /// (`/.well-known/oauth-protected-resource/mcp`). Default none.
    pub route_resources: std::collections::BTreeMap<String, String>,
    /// Scopes that include others (the MCP specification: servers MUST account for scope
    /// hierarchies): scope → the scopes it includes, transitively, e.g.
    /// `scope_includes = { admin = ["VIEW_CLOCK"] }`. A token granted `admin` then opens
    /// routes requiring `VIEW_CLOCK` (`#[oauth]`, the guards, introspection's
    /// `introspection_scope`), and the RFC 9728 `scopes_supported` lists `admin` beside the
    /// scopes routes require. See [`crate::scope::ScopeHierarchy`]. Default none.
    pub scope_includes: std::collections::BTreeMap<String, Vec<String>>,
    /// Where codes, tokens and pending requests are kept, as a storage URL: `memory`,
    /// `sqlite://path.db`, `postgres://...` or `redis://...` (each durable kind needs its
    /// cargo feature; see [`crate::storage::connect`]). Used by the Rocket fairing when no
    /// stores are given in code. Default `memory`.
    pub storage: String,
    /// What each scope lets a client do, in words for the resource owner: scope token →
    /// text (`[default.oauth2.scope_descriptions]`). Shown by the built-in consent page
    /// next to each requested scope; a scope without an entry is shown by its name.
    /// Default none.
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    /// The clients (txoauth2's `ClientStorage` contents). Default none.
    pub clients: Vec<ClientConfig>,
    /// Dynamic client registration (RFC 7591, RFC 7592): the `registration` table.
    /// Default: off. See [`crate::endpoint::register`].
    pub registration: RegistrationConfig,
    /// The device authorization grant (RFC 8628): the `device` table. Default: off. See
    /// [`crate::device`].
    pub device: crate::device::DeviceConfig,
    /// Brute-force limits: the `limits` table. See [`crate::limits`].
    pub limits: crate::limits::LimitsConfig,
    /// Client ID metadata documents: the `client_metadata` table. Default: off. See
    /// [`crate::client_metadata`].
    pub client_metadata: ClientMetadataConfig,
    /// The validation cache of access tokens (the `validation_cache` table). Default: off.
    /// See [`crate::storage::cache`].
    pub validation_cache: ValidationCacheConfig,
    /// JWT access tokens (RFC 9068, feature `jwt`): the `jwt_access_tokens` table, read by
    /// the `jwt` format ([`JwtAccessTokensConfig`]).
    pub jwt_access_tokens: JwtAccessTokensConfig,
    /// The keys self-contained access tokens are signed with, published at
    /// `GET <base>/jwks` (the `signing_keys` table). Default: off. See
    /// [`SigningKeysConfig`] and docs/jwt.md.
    pub signing_keys: SigningKeysConfig,
    /// Resource-server-only mode against an external issuer (the `resource_server` table):
    /// when set, the Rocket fairing builds no authorization server. Default: absent. See
    /// [`ResourceServerConfig`] and docs/resource-server.md.
    pub resource_server: Option<ResourceServerConfig>,
    /// Not a setting: makes exhaustive struct literals impossible, so adding settings is
    /// not a breaking change. Use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            issuer: String::new(),
            base_path: "/oauth2".into(),
            realm: "twisted-oauth2".into(),
            allow_insecure_request_debug: false,
            trusted_proxy_header: None,
            trusted_proxies: Vec::new(),
            client_ip_header: "X-Real-IP".into(),
            access_token_lifetime: 3600,
            access_token_format: crate::format::OPAQUE.into(),
            token_leeway: 0,
            refresh_token_lifetime: 30 * 24 * 3600,
            refresh_token_reuse_interval: 0,
            code_lifetime: 60,
            pending_lifetime: 600,
            grant_types: crate::grant_type::GrantType::DEFAULT
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            default_scope: None,
            scopes_supported: None,
            pkce_required_for_all_clients: false,
            pkce_allow_plain: false,
            max_body_size: 16 * 1024,
            max_query_length: 8 * 1024,
            max_parameters: crate::form::DEFAULT_MAX_PARAMETERS,
            max_state_length: 2048,
            max_scope_length: 1024,
            max_pending_requests: 10_000,
            max_pending_per_user_agent: 32,
            allow_localhost_any_port: false,
            cors_allowed_origins: vec!["*".into()],
            allowed_origins: Vec::new(),
            allow_access_token_in_query: false,
            revoke_grant_on_access_token_revocation: false,
            introspection_scope: None,
            resource: None,
            resource_name: None,
            resources: Vec::new(),
            route_resources: Default::default(),
            scope_includes: Default::default(),
            storage: "memory".into(),
            scope_descriptions: Default::default(),
            clients: Vec::new(),
            registration: Default::default(),
            device: Default::default(),
            limits: Default::default(),
            client_metadata: Default::default(),
            validation_cache: Default::default(),
            jwt_access_tokens: Default::default(),
            signing_keys: Default::default(),
            resource_server: None,
            __non_exhaustive: (),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("issuer", &self.issuer)
            .field("base_path", &self.base_path)
            .field("realm", &self.realm)
            .field(
                "allow_insecure_request_debug",
                &self.allow_insecure_request_debug,
            )
            .field("trusted_proxy_header", &self.trusted_proxy_header)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("client_ip_header", &self.client_ip_header)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("access_token_format", &self.access_token_format)
            .field("token_leeway", &self.token_leeway)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field(
                "refresh_token_reuse_interval",
                &self.refresh_token_reuse_interval,
            )
            .field("code_lifetime", &self.code_lifetime)
            .field("pending_lifetime", &self.pending_lifetime)
            .field("grant_types", &self.grant_types)
            .field("default_scope", &self.default_scope)
            .field("scopes_supported", &self.scopes_supported)
            .field(
                "pkce_required_for_all_clients",
                &self.pkce_required_for_all_clients,
            )
            .field("pkce_allow_plain", &self.pkce_allow_plain)
            .field("max_body_size", &self.max_body_size)
            .field("allow_localhost_any_port", &self.allow_localhost_any_port)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_query_length", &self.max_query_length)
            .field("max_parameters", &self.max_parameters)
            .field("max_state_length", &self.max_state_length)
            .field("max_scope_length", &self.max_scope_length)
            .field("max_pending_requests", &self.max_pending_requests)
            .field(
                "max_pending_per_user_agent",
                &self.max_pending_per_user_agent,
            )
            .field(
                "allow_access_token_in_query",
                &self.allow_access_token_in_query,
            )
            .field(
                "revoke_grant_on_access_token_revocation",
                &self.revoke_grant_on_access_token_revocation,
            )
            .field("introspection_scope", &self.introspection_scope)
            .field("resource", &self.resource)
            .field("resource_name", &self.resource_name)
            .field("resources", &self.resources)
            .field("route_resources", &self.route_resources)
            .field("scope_includes", &self.scope_includes)
            .field("storage", &crate::storage::describe_storage(&self.storage))
            .field("scope_descriptions", &self.scope_descriptions)
            .field("clients", &self.clients)
            .field("registration", &self.registration)
            .field("client_metadata", &self.client_metadata)
            .field("validation_cache", &self.validation_cache)
            .field("jwt_access_tokens", &self.jwt_access_tokens)
            .field("signing_keys", &self.signing_keys)
            .field("resource_server", &self.resource_server)
            .finish()
    }
}

/// One `[[oauth2.clients]]` entry.
///
/// Neither its `Debug` nor its `Serialize` output contains a plaintext `secret`: `Debug`
/// shows `<redacted>`, and serializing writes the secret's SHA-256 as `secret_sha256`
/// instead (so a serialized and re-read configuration authenticates the same client).
// `remote = "Self"` makes the derives inherent functions, wrapped by the impls below.
///
/// Build it with struct-update syntax: `ClientConfig { id: "app".into(), ..Default::default() }`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The `client_id`.
    pub id: String,
    /// The secret of a confidential client (hashed at load, never kept: the server built
    /// from this configuration keeps `secret_sha256` instead). Omit for a public client.
    pub secret: Option<String>,
    /// The SHA-256 of the secret in hex, instead of `secret`.
    pub secret_sha256: Option<String>,
    /// A display name for consent pages.
    pub name: Option<String>,
    /// Registered redirect URIs (exact match; loopback port may vary).
    pub redirect_uris: Vec<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<String>,
    /// Scopes the client may request. Omitted: any scope the server accepts.
    pub scopes: Option<Vec<String>>,
    /// Allow plain-HTTP non-loopback redirect URIs (development only).
    pub allow_insecure_redirect: bool,
    /// May call the introspection endpoint.
    pub introspect: bool,
    /// The client's logo on the built-in consent page: an `https` URL. Default none.
    pub logo_uri: Option<String>,
    /// Whether the operator vouches for this client's name and logo; `false` marks it as
    /// unverified on the built-in consent page. Default `true`
    /// ([`Client::is_verified`]).
    pub verified: Option<bool>,
    /// The access-token format of this client's tokens, by registered name (`opaque`, or
    /// one the application registers); omitted: the server-wide `access_token_format`.
    /// An unknown name is refused at launch.
    pub access_token_format: Option<String>,
    /// Not a setting: makes exhaustive struct literals impossible, so adding keys is not a
    /// breaking change. Use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Serialize for ClientConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut shown = self.clone();
        shown.forget_secret();
        if self.secret.is_some() && self.secret_sha256.is_some() {
            // Both set is refused at build; keep it refused without showing the secret.
            shown.secret = Some("<redacted>".into());
        }
        ClientConfig::serialize(&shown, s)
    }
}

impl<'de> Deserialize<'de> for ClientConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ClientConfig::deserialize(d)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Replaces a plaintext `secret` by its digest in `secret_sha256` (unless that is set
    /// too, which validation refuses).
    fn forget_secret(&mut self) {
        if let Some(plain) = self.secret.take() {
            if self.secret_sha256.is_none() {
                self.secret_sha256 = Some(SecretDigest::of(&plain).to_hex());
            }
        }
    }

    /// Builds the [`Client`].
    pub fn to_client(&self) -> Result<Client, ConfigError> {
        let mut b = Client::builder(self.id.clone());
        match (&self.secret, &self.secret_sha256) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Client {
                    client: self.id.clone(),
                    reason: "set `secret` or `secret_sha256`, not both".into(),
                })
            }
            (Some(s), None) => b = b.secret(s),
            (None, Some(h)) => {
                b = b.secret_digest(SecretDigest::from_hex(h).ok_or_else(|| {
                    ConfigError::Client {
                        client: self.id.clone(),
                        reason: "`secret_sha256` must be 64 hex digits".into(),
                    }
                })?)
            }
            (None, None) => {}
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
        b = b.verified(self.verified.unwrap_or(true));
        if let Some(f) = &self.access_token_format {
            b = b.access_token_format(f.clone());
        }
        b.allow_insecure_redirect(self.allow_insecure_redirect)
            .may_introspect(self.introspect)
            .build()
    }
}

impl ServerConfig {
    /// Drops every client's plaintext `secret`, keeping its digest in `secret_sha256`
    /// (after [`ServerConfig::validate`]).
    pub(crate) fn forget_client_secrets(&mut self) {
        for c in &mut self.clients {
            c.forget_secret();
        }
    }

    /// Checks the settings and returns the parsed forms the server needs.
    /// Whether revocations must travel between instances: the validation cache is on, or
    /// the `jwt` format (feature `jwt`) is in use and not stateless.
    pub(crate) fn wants_revocation_channel(&self) -> bool {
        #[cfg(feature = "jwt")]
        let jwt = crate::jwt::format::used_by(self) && !self.jwt_access_tokens.stateless;
        #[cfg(not(feature = "jwt"))]
        let jwt = false;
        self.validation_cache.enabled || jwt
    }

    pub(crate) fn validate(&self) -> Result<ValidatedConfig, ConfigError> {
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::Setting {
                key: "issuer",
                reason: "is not set: set it to the public URL clients use, such as https://auth.example.com".into(),
            });
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| ConfigError::Setting {
            key: "issuer",
            reason: format!("not a URL: {e}"),
        })?;
        if !matches!(issuer.scheme(), "http" | "https")
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(ConfigError::Setting {
                key: "issuer",
                reason: "must be an http(s) URL without query or fragment (RFC 8414 section 2)"
                    .into(),
            });
        }
        if !self.base_path.starts_with('/')
            || self.base_path.ends_with('/') && self.base_path.len() > 1
        {
            return Err(ConfigError::Setting {
                key: "base_path",
                reason: "must start with `/` and not end with `/`".into(),
            });
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| parse_proxy(p))
            .collect::<Result<Vec<_>, _>>()?;
        if rocket_header_name_invalid(&self.client_ip_header) {
            return Err(ConfigError::Setting {
                key: "client_ip_header",
                reason: "must be a header name".into(),
            });
        }
        let default_scope = match &self.default_scope {
            None => None,
            Some(s) => Some(Scope::parse(s).map_err(|e| ConfigError::Setting {
                key: "default_scope",
                reason: e.to_string(),
            })?),
        };
        let scopes_supported = match &self.scopes_supported {
            None => None,
            Some(v) => Some(Scope::from_tokens(v).map_err(|e| ConfigError::Setting {
                key: "scopes_supported",
                reason: e.to_string(),
            })?),
        };
        for token in self.scope_descriptions.keys() {
            if Scope::parse(token).map_or(true, |s| s.len() != 1) {
                return Err(ConfigError::Setting {
                    key: "scope_descriptions",
                    reason: format!("`{token}` is not a single scope token"),
                });
            }
        }
        if let Some(s) = &self.introspection_scope {
            Scope::parse(s).map_err(|e| ConfigError::Setting {
                key: "introspection_scope",
                reason: e.to_string(),
            })?;
        }
        if let Some(r) = &self.resource {
            let ok = url::Url::parse(r)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none());
            if !ok || r.contains(['#', '?']) {
                return Err(ConfigError::Setting {
                    key: "resource",
                    reason:
                        "must be an http(s) URL without query or fragment (RFC 9728 section 1.2)"
                            .into(),
                });
            }
        }
        let own = match &self.resource {
            Some(r) => r.as_str(),
            None => self.issuer.trim_end_matches('/'),
        };
        let scope_hierarchy =
            crate::scope::ScopeHierarchy::new(&self.scope_includes).map_err(|reason| {
                ConfigError::Setting {
                    key: "scope_includes",
                    reason,
                }
            })?;
        let mut route_resources = Vec::with_capacity(self.route_resources.len());
        for (path, r) in &self.route_resources {
            let bad = |reason: &str| ConfigError::Setting {
                key: "route_resources",
                reason: format!("`{}`: {reason}", crate::error::printable(path)),
            };
            if !path.starts_with('/') || path.contains(['<', '>', '?', '#']) || path.len() > 512 {
                return Err(bad("the route must be a static path starting with `/`"));
            }
            let resource = if r.starts_with('/') {
                format!("{}{}", split_identifier(own).0, r)
            } else {
                r.clone()
            };
            let ok = url::Url::parse(&resource)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none());
            if !ok || resource.contains('#') {
                return Err(bad(
                    "the resource must be an http(s) URL without query or fragment, or a path",
                ));
            }
            route_resources.push((path.trim_end_matches('/').to_owned(), resource));
        }
        let resources = crate::resource_indicator::Resources::new(
            own,
            self.resources
                .iter()
                .map(String::as_str)
                .chain(route_resources.iter().map(|(_, r)| r.as_str())),
        )
        .map_err(|reason| ConfigError::Setting {
            key: "resources",
            reason,
        })?
        .with_routes(route_resources);
        for (key, v) in [
            ("access_token_lifetime", self.access_token_lifetime),
            ("code_lifetime", self.code_lifetime),
            ("pending_lifetime", self.pending_lifetime),
            ("refresh_token_lifetime", self.refresh_token_lifetime),
        ] {
            if v == 0 || v > i64::MAX as u64 / 4 {
                return Err(ConfigError::Setting {
                    key,
                    reason: "must be a positive number of seconds".into(),
                });
            }
        }
        if self.token_leeway > 300 {
            return Err(ConfigError::Setting {
                key: "token_leeway",
                reason: "must be at most 300 seconds".into(),
            });
        }
        if self.refresh_token_reuse_interval > MAX_REFRESH_TOKEN_REUSE_INTERVAL {
            return Err(ConfigError::Setting {
                key: "refresh_token_reuse_interval",
                reason: format!(
                    "must be at most {MAX_REFRESH_TOKEN_REUSE_INTERVAL} seconds (a stolen \
                     refresh token is usable without reuse detection for that long)"
                ),
            });
        }
        for (key, v) in [
            ("max_body_size", self.max_body_size),
            ("max_query_length", self.max_query_length),
            ("max_parameters", self.max_parameters as u64),
            ("max_state_length", self.max_state_length as u64),
            ("max_scope_length", self.max_scope_length as u64),
            ("max_pending_requests", self.max_pending_requests as u64),
            (
                "max_pending_per_user_agent",
                self.max_pending_per_user_agent as u64,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Setting {
                    key,
                    reason: "must be a positive limit".into(),
                });
            }
        }
        self.registration.validate()?;
        self.client_metadata
            .validate(self.allow_insecure_request_debug)?;
        self.validation_cache.validate()?;
        self.jwt_access_tokens.validate()?;
        self.signing_keys
            .validate(self.access_token_lifetime + self.token_leeway)?;
        let mut clients = Vec::with_capacity(self.clients.len());
        for c in &self.clients {
            if clients.iter().any(|x: &Client| x.id() == c.id) {
                return Err(ConfigError::Client {
                    client: c.id.clone(),
                    reason: "listed twice".into(),
                });
            }
            clients.push(c.to_client()?);
        }
        Ok(ValidatedConfig {
            scope_hierarchy,
            trusted_proxies,
            issuer: self.issuer.trim_end_matches('/').to_owned(),
            default_scope,
            scopes_supported,
            clients,
            resources,
        })
    }
}

/// The largest accepted `refresh_token_reuse_interval`, in seconds.
pub(crate) const MAX_REFRESH_TOKEN_REUSE_INTERVAL: u64 = 300;

/// One `trusted_proxies` entry: an address (a /32 or /128) or a CIDR prefix.
fn parse_proxy(p: &str) -> Result<ipnet::IpNet, ConfigError> {
    let p = p.trim();
    p.parse::<ipnet::IpNet>()
        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| ConfigError::Setting {
            key: "trusted_proxies",
            reason: format!("`{p}` is not an IP address or CIDR prefix"),
        })
}

/// Whether `name` is not an HTTP header name (RFC 9110 token).
fn rocket_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits an `http(s)` URL without query or fragment into origin and path, dropping a
/// terminating `/` from the path.
pub(crate) fn split_identifier(identifier: &str) -> (&str, &str) {
    let after_scheme = identifier.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match identifier[after_scheme..].find('/') {
        Some(i) => identifier.split_at(after_scheme + i),
        None => (identifier, ""),
    };
    (origin, path.trim_end_matches('/'))
}

/// The parsed parts of a [`ServerConfig`].
#[derive(Debug)]
pub(crate) struct ValidatedConfig {
    pub(crate) scope_hierarchy: crate::scope::ScopeHierarchy,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) issuer: String,
    pub(crate) default_scope: Option<Scope>,
    pub(crate) scopes_supported: Option<Scope>,
    pub(crate) clients: Vec<Client>,
    pub(crate) resources: crate::resource_indicator::Resources,
}

/// The registration policy: the `registration` table of the `oauth2` configuration
/// (`[default.oauth2.registration]`). See [`crate::endpoint::register`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Serve `POST <base>/register` and its management endpoints, and advertise
    /// `registration_endpoint`. Default `false`.
    pub enabled: bool,
    /// The SHA-256 (64 hex digits) of the initial access token registration requires
    /// (RFC 7591 §3). Default none: registration is open.
    pub initial_access_token_sha256: Option<String>,
    /// Allow `http://127.0.0.1` and `http://[::1]` redirect URIs. Default `true`.
    pub allow_loopback: bool,
    /// Allow `http://localhost` redirect URIs. Default `false`.
    pub allow_localhost: bool,
    /// Allow `https` redirect URIs. Default `true`.
    pub allow_https: bool,
    /// Allow private-use URI scheme redirects (`com.example.app:/cb`). Default `true`.
    pub allow_private_use_schemes: bool,
    /// Make a registered `scope` the client's allowed scopes. Default `false`: a registered
    /// scope does not block a later request for more.
    pub restrict_scope: bool,
    /// Registrations allowed per client IP address and minute (burst the same); `0`
    /// disables the limit. Default 10.
    pub rate_limit_per_minute: u32,
    /// Most client addresses the rate limiter tracks. Default 10000.
    pub rate_limit_max_ips: usize,
    /// Seconds a registered client that never received a token stays valid; `0`: forever.
    /// Default 86400 (one day).
    pub unused_client_lifetime: u64,
    /// Let open registration (no [`initial_access_token_sha256`](Self::initial_access_token_sha256))
    /// register `client_credentials` clients. Default `false`: without an initial access
    /// token only grants a user approves (`authorization_code`, `refresh_token`) are
    /// registrable, since anyone could otherwise mint machine tokens. Wherever
    /// `client_credentials` is registered, the registered `scope` (or the server's
    /// `default_scope`) is the client's ceiling, whatever [`restrict_scope`](Self::restrict_scope) says.
    pub open_client_credentials: bool,
    /// Most registered clients that have not received a token yet, in the whole store.
    /// Beyond it each new registration deletes the oldest unused ones, so a flood of
    /// registrations cannot grow the store. `0`: no cap. Default 10000.
    pub max_unused_clients: usize,
    /// Most registrations per client address (IPv4 address or IPv6 /64) within
    /// [`unused_client_lifetime`](Self::unused_client_lifetime) (one day if that is `0`),
    /// on top of the per-minute limit; over it `429`. `0`: no cap. Default 50.
    pub max_registrations_per_address: u32,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            enabled: false,
            initial_access_token_sha256: None,
            allow_loopback: true,
            allow_localhost: false,
            allow_https: true,
            allow_private_use_schemes: true,
            restrict_scope: false,
            rate_limit_per_minute: 10,
            rate_limit_max_ips: 10_000,
            unused_client_lifetime: 86_400,
            open_client_credentials: false,
            max_unused_clients: 10_000,
            max_registrations_per_address: 50,
            __non_exhaustive: (),
        }
    }
}

impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("enabled", &self.enabled)
            .field(
                "initial_access_token_sha256",
                &self.initial_access_token_sha256.as_ref().map(|_| "<set>"),
            )
            .field("allow_loopback", &self.allow_loopback)
            .field("allow_localhost", &self.allow_localhost)
            .field("allow_https", &self.allow_https)
            .field("allow_private_use_schemes", &self.allow_private_use_schemes)
            .field("restrict_scope", &self.restrict_scope)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_limit_max_ips", &self.rate_limit_max_ips)
            .field("unused_client_lifetime", &self.unused_client_lifetime)
            .field("open_client_credentials", &self.open_client_credentials)
            .field("max_unused_clients", &self.max_unused_clients)
            .field(
                "max_registrations_per_address",
                &self.max_registrations_per_address,
            )
            .finish()
    }
}

impl RegistrationConfig {
    /// Checks the settings.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.initial_access_token_sha256 {
            if SecretDigest::from_hex(h).is_none() {
                return Err(ConfigError::Setting {
                    key: "registration.initial_access_token_sha256",
                    reason: "must be 64 hex digits (the SHA-256 of the token)".into(),
                });
            }
        }
        if self.rate_limit_max_ips == 0 {
            return Err(ConfigError::Setting {
                key: "registration.rate_limit_max_ips",
                reason: "must be a positive limit".into(),
            });
        }
        if self.unused_client_lifetime > i64::MAX as u64 / 4 {
            return Err(ConfigError::Setting {
                key: "registration.unused_client_lifetime",
                reason: "is too large".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults plus the one required setting.
    fn base() -> ServerConfig {
        ServerConfig {
            issuer: "https://as.example".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_with_an_issuer_are_valid() {
        base().validate().unwrap();
        let e = ServerConfig::default().validate().unwrap_err().to_string();
        assert!(e.contains("oauth2.issuer") && e.contains("not set"), "{e}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        let c = ServerConfig {
            issuer: "not a url".into(),
            ..base()
        };
        assert!(c.validate().unwrap_err().to_string().contains("issuer"));
        let c = ServerConfig {
            default_scope: Some("a  b".into()),
            ..base()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("default_scope"));
        let c = ServerConfig {
            code_lifetime: 0,
            ..base()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("code_lifetime"));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = ClientConfig {
            id: "x".into(),
            secret: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn storage_credentials_are_redacted_in_debug() {
        let c = ServerConfig {
            storage: "postgres://app:s3cret@db.internal:5432/oauth?sslmode=require".into(),
            clients: vec![ClientConfig {
                id: "x".into(),
                secret: Some("hunter2".into()),
                ..Default::default()
            }],
            ..base()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal:5432/oauth"), "{shown}");
    }

    #[test]
    fn duplicate_client_ids_are_refused() {
        let c = ServerConfig {
            clients: vec![
                ClientConfig {
                    id: "a".into(),
                    ..Default::default()
                },
                ClientConfig {
                    id: "a".into(),
                    ..Default::default()
                },
            ],
            ..base()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }
}

/// The `client_metadata` table of the `oauth2` configuration: client ID metadata documents
/// (see [`crate::client_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientMetadataConfig {
    /// Resolve `https` URL client ids by fetching their metadata documents, and advertise
    /// `client_id_metadata_document_supported`. Default `false`.
    pub enabled: bool,
    /// When not empty, only documents on these hosts (exact names, case-insensitive) are
    /// fetched. Default: any public host.
    pub allowed_hosts: Vec<String>,
    /// Debug override: also fetch from loopback, private and other special-use addresses
    /// (for a client served on `127.0.0.1` in development and tests). Refused unless
    /// `allow_insecure_request_debug` is on too. Default `false`.
    pub allow_special_use_addresses: bool,
    /// PEM files of extra root certificates to trust for the fetch (a test CA, or a private
    /// CA in an air-gapped deployment). Default none.
    pub root_certificates: Vec<String>,
    /// The largest document accepted, in bytes. Default 5120.
    pub max_document_size: usize,
    /// The longest a fetch may take, in seconds. Default 5.
    pub fetch_timeout: u64,
    /// The shortest time a document (or a failed fetch) is cached, in seconds. Default 60.
    pub min_cache_lifetime: u64,
    /// The longest time a document is cached, in seconds. Default 86400.
    pub max_cache_lifetime: u64,
    /// The most documents kept in the cache. Default 1000.
    pub max_cached_documents: usize,
    /// The most fetches in flight at once; a lookup beyond it is answered
    /// `temporarily_unavailable` (503) without fetching, and is not cached. Default 16.
    pub max_concurrent_fetches: usize,
    /// The most fetches in flight at once for documents on one host, so that slow documents
    /// on one host cannot hold every slot of `max_concurrent_fetches`; beyond it, `503` as
    /// there. Default (unset): a quarter of `max_concurrent_fetches`, at least 1.
    pub max_concurrent_fetches_per_host: Option<usize>,
    /// Fetches (lookups that miss the cache) one caller may cause per minute, keyed by its
    /// address (IPv6 by /64); beyond, `429 temporarily_unavailable` with `Retry-After`,
    /// nothing fetched or cached. `0` turns the limit off. Default 20.
    pub caller_fetches_per_minute: u32,
    /// Fetches per minute of documents on one host, whoever causes them; beyond, `503
    /// temporarily_unavailable`, nothing fetched or cached. `0` turns the limit off.
    /// Default 60.
    pub host_fetches_per_minute: u32,
    /// The most callers, and the most hosts, the two rate limits track; while a table is
    /// full (after forgetting idle entries) the callers or hosts not in it share one
    /// bucket. Default 10000.
    pub rate_limit_max_keys: usize,
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for ClientMetadataConfig {
    fn default() -> Self {
        ClientMetadataConfig {
            enabled: false,
            allowed_hosts: Vec::new(),
            allow_special_use_addresses: false,
            root_certificates: Vec::new(),
            max_document_size: 5120,
            fetch_timeout: 5,
            min_cache_lifetime: 60,
            max_cache_lifetime: 86_400,
            max_cached_documents: 1000,
            max_concurrent_fetches: 16,
            max_concurrent_fetches_per_host: None,
            caller_fetches_per_minute: 20,
            host_fetches_per_minute: 60,
            rate_limit_max_keys: 10_000,
            __non_exhaustive: (),
        }
    }
}

impl ClientMetadataConfig {
    pub(crate) fn validate(&self, debug_override: bool) -> Result<(), ConfigError> {
        let err = |key: &'static str, reason: &str| ConfigError::Setting {
            key,
            reason: reason.to_owned(),
        };
        if self.allow_special_use_addresses && !debug_override {
            return Err(err(
                "client_metadata.allow_special_use_addresses",
                "is a debug override: it needs allow_insecure_request_debug = true",
            ));
        }
        if self.max_document_size == 0 || self.max_document_size > 1024 * 1024 {
            return Err(err(
                "client_metadata.max_document_size",
                "must be between 1 and 1048576 bytes",
            ));
        }
        if self.fetch_timeout == 0 || self.fetch_timeout > 60 {
            return Err(err(
                "client_metadata.fetch_timeout",
                "must be between 1 and 60 seconds",
            ));
        }
        if self.min_cache_lifetime > self.max_cache_lifetime {
            return Err(err(
                "client_metadata.min_cache_lifetime",
                "must not exceed max_cache_lifetime (seconds)",
            ));
        }
        if self.max_concurrent_fetches == 0 {
            return Err(err(
                "client_metadata.max_concurrent_fetches",
                "must be at least 1",
            ));
        }
        if self.max_cached_documents == 0 {
            return Err(err(
                "client_metadata.max_cached_documents",
                "must be at least 1",
            ));
        }
        if self
            .max_concurrent_fetches_per_host
            .is_some_and(|n| n == 0 || n > self.max_concurrent_fetches)
        {
            return Err(err(
                "client_metadata.max_concurrent_fetches_per_host",
                "must be between 1 and max_concurrent_fetches",
            ));
        }
        if self.rate_limit_max_keys == 0 {
            return Err(err(
                "client_metadata.rate_limit_max_keys",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The most fetches in flight for one host: `max_concurrent_fetches_per_host`, or a
    /// quarter of `max_concurrent_fetches` (at least 1).
    pub fn fetches_per_host(&self) -> usize {
        self.max_concurrent_fetches_per_host
            .unwrap_or(self.max_concurrent_fetches / 4)
            .max(1)
    }
}

/// How the `jwt` access-token format (RFC 9068, feature `jwt`) keeps revocations: the
/// `jwt_access_tokens` table of the `oauth2` configuration. See the JWT chapter of the guide
/// ("Revocation: the trade-off").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtAccessTokensConfig {
    /// Skip the revoked-`jti` denylist and grant tombstones: validation then reads no store
    /// at all, and a revoked JWT (at `/revoke`, by refresh-token reuse) stays valid until
    /// its `exp`. Tokens of a deleted client are still refused. Default `false`.
    pub stateless: bool,
    /// Most verified tokens kept in memory, so a repeat validation skips the signature
    /// check. Default 100000.
    pub max_verified: usize,
    /// Most revoked `jti`s (and revoked grants, and deleted clients) kept in memory; beyond
    /// it the soonest-expiring are checked in the store instead. Default 100000.
    pub max_revoked: usize,
    /// Seconds after which the in-memory denylist is read from the store again and a
    /// verified token's grant is checked again, notification or not. Default 60.
    pub max_staleness: u64,
    /// Not a setting: use `..Default::default()`.
    #[doc(hidden)]
    #[serde(skip)]
    pub __non_exhaustive: (),
}

impl Default for JwtAccessTokensConfig {
    fn default() -> Self {
        JwtAccessTokensConfig {
            stateless: false,
            max_verified: 100_000,
            max_revoked: 100_000,
            max_staleness: 60,
            __non_exhaustive: (),
        }
    }
}

impl JwtAccessTokensConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("jwt_access_tokens.max_verified", self.max_verified),
            ("jwt_access_tokens.max_revoked", self.max_revoked),
        ] {
            if v == 0 || v > 100_000_000 {
                return Err(ConfigError::Setting {
                    key,
                    reason: "must be a positive limit (at most 100000000)".into(),
                });
            }
        }
        if self.max_staleness == 0 || self.max_staleness > 86_400 {
            return Err(ConfigError::Setting {
                key: "jwt_access_tokens.max_staleness",
                reason: "must be between 1 and 86400 seconds".into(),
            });
        }
        Ok(())
    }
}
