//! Discovery documents: authorization server metadata (RFC 8414) and protected resource
//! metadata (RFC 9728), built from the live [`AuthorizationServer`] so they never
//! advertise what the server does not do.
//!
//! # Where they are served
//!
//! RFC 8414 §3.1 (and RFC 9728 §3.1 likewise) inserts the well-known segment between the
//! host and the path of the identifier: the issuer `https://h` is described at
//! `https://h/.well-known/oauth-authorization-server`, the issuer `https://h/tenant` at
//! `https://h/.well-known/oauth-authorization-server/tenant`. See
//! [`authorization_server_metadata_path`] and [`protected_resource_metadata_path`]; the
//! Rocket fairing mounts both at the application root.
//!
//! # What is advertised
//!
//! - `authorization_endpoint`, `response_types_supported` (`code`, and `token` only with
//!   the `implicit-grant` feature and `implicit` enabled), `response_modes_supported` and
//!   `code_challenge_methods_supported` (`S256`, plus `plain` when
//!   [`ServerConfig::pkce_allow_plain`](crate::config::ServerConfig::pkce_allow_plain)) only
//!   when the authorization endpoint is served; without it `response_types_supported` is
//!   empty and the grants that need it (`authorization_code`, `implicit`) are left out of
//!   `grant_types_supported`.
//! - `grant_types_supported`: the enabled grants, extension grants included.
//! - `token_endpoint_auth_methods_supported` and
//!   `revocation_endpoint_auth_methods_supported`: `client_secret_basic`,
//!   `client_secret_post`, `none` (public clients).
//! - `introspection_endpoint_auth_methods_supported`: `client_secret_basic`,
//!   `client_secret_post`, and `Bearer` (the RFC 6750 token type, as RFC 8414 §2 allows)
//!   when [`ServerConfig::introspection_scope`](crate::config::ServerConfig::introspection_scope)
//!   is set. Public clients cannot introspect.
//! - `scopes_supported` only when configured
//!   ([`ServerConfig::scopes_supported`](crate::config::ServerConfig::scopes_supported)).
//! - `authorization_response_iss_parameter_supported: true` (RFC 9207): every
//!   authorization response carries `iss`.
//! - `jwks_uri` (`<base>/jwks`) when the server holds signing keys (feature `jwt`,
//!   `oauth2.signing_keys.enabled`; see `endpoint::jwks`).
//!
//! The protected resource document names the resource (the issuer unless
//! [`ServerConfig::resource`](crate::config::ServerConfig::resource) is set), this server as
//! its authorization server, the bearer methods the guards accept (`header`, plus `query`
//! when [`ServerConfig::allow_access_token_in_query`](crate::config::ServerConfig::allow_access_token_in_query))
//! and the scopes the caller passes: the Rocket adapter passes the scopes required by the
//! application's protected routes, collected at ignite.

use serde::Serialize;

use crate::grant_type::GrantType;
use crate::server::AuthorizationServer;

/// The RFC 8414 well-known suffix.
pub const AUTHORIZATION_SERVER_SUFFIX: &str = "oauth-authorization-server";

/// The RFC 9728 well-known suffix.
pub const PROTECTED_RESOURCE_SUFFIX: &str = "oauth-protected-resource";

/// The client authentication methods of the token and revocation endpoints.
const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];

/// Authorization server metadata (RFC 8414 §2). Absent members are not serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint, when served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The revocation endpoint (RFC 7009).
    pub revocation_endpoint: String,
    /// The introspection endpoint (RFC 7662).
    pub introspection_endpoint: String,
    /// The scopes the server knows, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// `response_type` values of the authorization endpoint.
    pub response_types_supported: Vec<String>,
    /// Response modes of the authorization endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    /// Grant types of the token endpoint.
    pub grant_types_supported: Vec<String>,
    /// PKCE methods (RFC 7636), when the authorization endpoint is served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods of the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods of the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Authentication methods of the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Authorization responses carry `iss` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// Members added by extensions
    /// ([`ServerBuilder::metadata_member`](crate::server::ServerBuilder::metadata_member)).
    #[serde(flatten)]
    pub members: serde_json::Map<String, serde_json::Value>,
}

impl AuthorizationServerMetadata {
    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Protected resource metadata (RFC 9728 §2). Absent members are not serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier.
    pub resource: String,
    /// The authorization servers whose tokens the resource accepts.
    pub authorization_servers: Vec<String>,
    /// The scopes the resource's protected routes require.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How a token may be sent: `header`, and `query` when allowed.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The RFC 8414 document of `server`. `authorization_endpoint` says whether the
/// authorization endpoint is served (the Rocket fairing serves it when an
/// `OnAuthenticate` hook is set).
pub fn authorization_server_metadata(
    server: &AuthorizationServer,
    authorization_endpoint: bool,
) -> AuthorizationServerMetadata {
    let cfg = server.config();
    let code =
        authorization_endpoint && server.grant_enabled(GrantType::AUTHORIZATION_CODE.as_str());
    let implicit = authorization_endpoint
        && GrantType::IMPLICIT.is_compiled_in()
        && server.grant_enabled(GrantType::IMPLICIT.as_str());
    let mut response_types = Vec::new();
    let mut response_modes = Vec::new();
    if code {
        response_types.push("code".to_owned());
        response_modes.push("query".to_owned());
    }
    if implicit {
        response_types.push("token".to_owned());
        response_modes.push("fragment".to_owned());
    }
    let grant_types = cfg
        .grant_types
        .iter()
        .filter(|g| server.grants().knows(g))
        .filter(|g| {
            if *g == GrantType::AUTHORIZATION_CODE.as_str() {
                code
            } else if *g == GrantType::IMPLICIT.as_str() {
                implicit
            } else {
                true
            }
        })
        .cloned()
        .collect();
    let mut pkce = Vec::new();
    if code {
        pkce.push("S256".to_owned());
        if cfg.pkce_allow_plain {
            pkce.push("plain".to_owned());
        }
    }
    let mut introspection_auth = strings(&["client_secret_basic", "client_secret_post"]);
    if cfg.introspection_scope.is_some() {
        introspection_auth.push("Bearer".to_owned());
    }
    AuthorizationServerMetadata {
        issuer: server.issuer().to_owned(),
        authorization_endpoint: (code || implicit).then(|| server.endpoint_url("authorize")),
        token_endpoint: server.endpoint_url("token"),
        revocation_endpoint: server.endpoint_url("revoke"),
        introspection_endpoint: server.endpoint_url("introspect"),
        scopes_supported: server
            .scopes_supported()
            .map(|s| s.iter().map(str::to_owned).collect()),
        response_types_supported: response_types,
        response_modes_supported: response_modes,
        grant_types_supported: grant_types,
        code_challenge_methods_supported: pkce,
        token_endpoint_auth_methods_supported: strings(CLIENT_AUTH_METHODS),
        revocation_endpoint_auth_methods_supported: strings(CLIENT_AUTH_METHODS),
        introspection_endpoint_auth_methods_supported: introspection_auth,
        authorization_response_iss_parameter_supported: true,
        members: {
            let mut members = extension_members(server);
            // Registration is advertised where what it registers can be used: MCP clients
            // register for the code grant, which needs the authorization endpoint.
            if cfg.registration.enabled && code {
                members.insert(
                    "registration_endpoint".into(),
                    server.endpoint_url("register").into(),
                );
            }
            #[cfg(feature = "jwt")]
            if crate::endpoint::jwks::key_ring(server).is_some() {
                members.insert(
                    "jwks_uri".into(),
                    crate::endpoint::jwks::jwks_uri(server).into(),
                );
            }
            if cfg.client_metadata.enabled {
                members.insert(
                    "client_id_metadata_document_supported".into(),
                    serde_json::Value::Bool(true),
                );
            }
            members
        },
    }
}

/// The extensions' members, without any the library computes.
fn extension_members(server: &AuthorizationServer) -> serde_json::Map<String, serde_json::Value> {
    const COMPUTED: &[&str] = &[
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "scopes_supported",
        "response_types_supported",
        "response_modes_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "authorization_response_iss_parameter_supported",
    ];
    server
        .metadata_members
        .iter()
        .filter(|(k, _)| !COMPUTED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The RFC 9728 document of the resource served with `server`, whose protected routes
/// require `scopes` (listed sorted, without duplicates).
pub fn protected_resource_metadata<I, S>(
    server: &AuthorizationServer,
    scopes: I,
) -> ProtectedResourceMetadata
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    protected_resource_metadata_for(server, resource_identifier(server), scopes)
}

/// The RFC 9728 document of `resource`: the application's own
/// ([`resource_identifier`]) or a route's
/// ([`ServerConfig::route_resources`](crate::config::ServerConfig::route_resources)).
pub fn protected_resource_metadata_for<I, S>(
    server: &AuthorizationServer,
    resource: &str,
    scopes: I,
) -> ProtectedResourceMetadata
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let cfg = server.config();
    let mut scopes: std::collections::BTreeSet<String> =
        scopes.into_iter().map(Into::into).collect();
    // A scope that includes a required one opens the route too (scope_includes).
    let including: Vec<String> = scopes
        .iter()
        .flat_map(|s| server.scope_hierarchy().including(s))
        .map(str::to_owned)
        .collect();
    scopes.extend(including);
    let mut bearer_methods = vec!["header".to_owned()];
    if cfg.allow_access_token_in_query {
        bearer_methods.push("query".to_owned());
    }
    ProtectedResourceMetadata {
        resource: resource.to_owned(),
        authorization_servers: vec![server.issuer().to_owned()],
        scopes_supported: scopes.into_iter().collect(),
        bearer_methods_supported: bearer_methods,
        resource_name: cfg.resource_name.clone(),
    }
}

/// The protected resource identifier: [`ServerConfig::resource`](crate::config::ServerConfig::resource),
/// or the issuer.
pub fn resource_identifier(server: &AuthorizationServer) -> &str {
    server
        .config()
        .resource
        .as_deref()
        .unwrap_or_else(|| server.issuer())
}

/// The path of the well-known document of `identifier` (RFC 8414 §3.1, RFC 9728 §3.1):
/// `/.well-known/<suffix>` followed by the identifier's path, if any.
///
/// ```
/// use twisted_oauth2::endpoint::metadata::well_known_path;
/// assert_eq!(
///     well_known_path("https://h/tenant", "oauth-authorization-server"),
///     "/.well-known/oauth-authorization-server/tenant"
/// );
/// assert_eq!(
///     well_known_path("https://h", "oauth-protected-resource"),
///     "/.well-known/oauth-protected-resource"
/// );
/// ```
pub fn well_known_path(identifier: &str, suffix: &str) -> String {
    format!(
        "/.well-known/{suffix}{}",
        crate::config::split_identifier(identifier).1
    )
}

/// The full URL of the well-known document of `identifier`.
pub fn well_known_url(identifier: &str, suffix: &str) -> String {
    format!(
        "{}{}",
        crate::config::split_identifier(identifier).0,
        well_known_path(identifier, suffix)
    )
}

/// Where the RFC 8414 document of `server` is served (the path the fairing mounts).
pub fn authorization_server_metadata_path(server: &AuthorizationServer) -> String {
    well_known_path(server.issuer(), AUTHORIZATION_SERVER_SUFFIX)
}

/// The full URL of the RFC 8414 document of `server`.
pub fn authorization_server_metadata_url(server: &AuthorizationServer) -> String {
    well_known_url(server.issuer(), AUTHORIZATION_SERVER_SUFFIX)
}

/// Where the RFC 9728 document is served (the path the fairing mounts).
pub fn protected_resource_metadata_path(server: &AuthorizationServer) -> String {
    well_known_path(resource_identifier(server), PROTECTED_RESOURCE_SUFFIX)
}

/// The full URL of the RFC 9728 document: the `resource_metadata` of the guards'
/// challenges (RFC 9728 §5.1).
pub fn protected_resource_metadata_url(server: &AuthorizationServer) -> String {
    well_known_url(resource_identifier(server), PROTECTED_RESOURCE_SUFFIX)
}

/// The full URL of the RFC 9728 document that answers for a request to `path`: the
/// route's own resource's, when `path` is under one of
/// [`ServerConfig::route_resources`](crate::config::ServerConfig::route_resources), else
/// [`protected_resource_metadata_url`].
pub fn protected_resource_metadata_url_for(server: &AuthorizationServer, path: &str) -> String {
    match server.resources().route_resource(path) {
        Some(r) => well_known_url(r, PROTECTED_RESOURCE_SUFFIX),
        None => protected_resource_metadata_url(server),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_insertion_rfc8414_3_1() {
        let s = AUTHORIZATION_SERVER_SUFFIX;
        assert_eq!(
            well_known_url("https://h/tenant", s),
            "https://h/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(
            well_known_url("https://h/a/b/", s),
            "https://h/.well-known/oauth-authorization-server/a/b"
        );
        assert_eq!(
            well_known_url("http://127.0.0.1:8000", s),
            "http://127.0.0.1:8000/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            well_known_url("https://h/", PROTECTED_RESOURCE_SUFFIX),
            "https://h/.well-known/oauth-protected-resource"
        );
    }
}
