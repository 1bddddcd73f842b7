//! The validation pipeline's core half and the [`TokenValidator`] seam.
//!
//! [`AuthorizationServer`] validates a presented access token in one place: it asks its
//! formats ([`FormatRegistry::validate`](crate::format::FormatRegistry::validate)) with a
//! [`ValidationContext`], then judges the record the format returned (expiry with the
//! configured leeway, the RFC 8707 audience, whether the client still exists). A refusal is
//! a typed [`Rejection`]: it is recorded as
//! [`AuditEvent::TokenRejected`] and logged at
//! debug level; the client gets RFC 6750 `invalid_token` whatever the reason.
//!
//! Protected routes (the Rocket guards and `#[oauth]`) do not hold the authorization server:
//! they hold a [`TokenValidator`] trait object in the Rocket state, which the
//! [`AuthorizationServer`] implements. A validator of another kind (a resource server that
//! trusts a remote authorization server's JWKS or introspection) plugs in there.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::endpoint::resource::{BearerRequest, TokenInfo};
use crate::error::OAuthError;
use crate::format::{Rejection, ValidToken, Validation, ValidationContext};
use crate::request::RequestContext;
use crate::scope::Scope;
use crate::server::AuthorizationServer;

/// Which audience a validation requires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience<'a> {
    /// The application's own (the default audience).
    Default,
    /// A route's own resource ([`Resources::admits_at`](crate::resource_indicator::Resources::admits_at)).
    Resource(&'a str),
    /// None: introspection answers for any resource.
    Any,
}

/// Validates `token` and judges it: `Ok(Err(reason))` for a refused token (recorded as an
/// audit event and a debug line; [`Rejection::Unknown`] only when `record_unknown`), `Err`
/// only for an outage.
pub(crate) async fn check(
    server: &AuthorizationServer,
    token: &str,
    request: Option<&RequestContext<'_>>,
    audience: Audience<'_>,
    record_unknown: bool,
) -> Result<Result<ValidToken, Rejection>, OAuthError> {
    let now = server.now();
    let leeway = i64::try_from(server.config.token_leeway).unwrap_or(0);
    let mut vctx = ValidationContext::new(now).with_leeway(leeway);
    vctx.request = request;
    vctx.default_audience = Some(&**server.resources().default_audience());
    if let Audience::Resource(r) = audience {
        vctx.audience = Some(r);
    }
    let ctx = server.context();
    let fctx = ctx.format_context();
    let (v, _) = server.formats.validate(&fctx, &vctx, token).await?;
    let outcome = match v {
        Validation::Valid(t) => judge(server, t, now, leeway, audience).await?,
        Validation::Rejected(r) => Err((r, None)),
    };
    Ok(outcome.map_err(|(reason, client)| {
        if record_unknown || reason != Rejection::Unknown {
            rejected(server, reason, client.as_ref());
        }
        reason
    }))
}

async fn judge(
    server: &AuthorizationServer,
    t: ValidToken,
    now: i64,
    leeway: i64,
    audience: Audience<'_>,
) -> Result<Result<ValidToken, (Rejection, Option<Arc<str>>)>, OAuthError> {
    let r = &t.record;
    let refuse = |reason| Ok(Err((reason, Some(r.client_id.clone()))));
    if r.is_expired(now.saturating_sub(leeway)) {
        return refuse(Rejection::Expired);
    }
    let admitted = match audience {
        Audience::Default => server.resources().admits(&r.audience),
        Audience::Resource(target) => server.resources().admits_at(&r.audience, target),
        Audience::Any => true,
    };
    if !admitted {
        return refuse(Rejection::WrongAudience);
    }
    if !server.client_exists(&r.client_id).await? {
        return refuse(Rejection::UnknownClient);
    }
    Ok(Ok(t))
}

/// Records a refusal: audit event and debug line (never the token).
pub(crate) fn rejected(server: &AuthorizationServer, reason: Rejection, client: Option<&Arc<str>>) {
    log::debug!(
        "twisted-oauth2: refused an access token: {reason}{}",
        client
            .map(|c| format!(" (client `{}`)", crate::error::printable(c)))
            .unwrap_or_default()
    );
    server.context().audit(AuditEvent::TokenRejected {
        reason,
        client_id: client.cloned(),
    });
}

/// How a protected request must be read before its token is validated: whether a query
/// may carry the token and the limits on that query, and how the transport and the client
/// address are found behind proxies. Built by the validator (the authorization server
/// fills it from its configuration); read by the HTTP layer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestPolicy {
    /// Whether `access_token` in the URL query counts (RFC 6750 §2.3).
    pub allow_access_token_in_query: bool,
    /// Longest URL query read, bytes (`414` beyond).
    pub max_query_length: u64,
    /// Most query parameters read.
    pub max_parameters: usize,
    /// The header a trusted proxy says `https` in, if any.
    pub trusted_proxy_header: Option<String>,
    /// The header trusted proxies put the client address in.
    pub client_ip_header: String,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        let c = crate::config::ServerConfig::default();
        RequestPolicy::of(&c)
    }
}

impl RequestPolicy {
    pub(crate) fn of(c: &crate::config::ServerConfig) -> Self {
        RequestPolicy {
            allow_access_token_in_query: c.allow_access_token_in_query,
            max_query_length: c.max_query_length,
            max_parameters: c.max_parameters,
            trusted_proxy_header: c.trusted_proxy_header.clone(),
            client_ip_header: c.client_ip_header.clone(),
        }
    }
}

/// What protected routes depend on to check a request's access token: held by the Rocket
/// adapter as `Arc<dyn TokenValidator>` in its state
/// ([`OAuth2State::validator`](crate::rocket::OAuth2State::validator)), implemented by
/// [`AuthorizationServer`]. See the [module docs](self).
///
/// Implementations must keep the hot path free of blocking I/O, global locks and
/// per-request configuration parsing.
#[async_trait]
pub trait TokenValidator: Send + Sync + 'static {
    /// Finds the request's single token (RFC 6750 §2) and validates it for the resource of
    /// the request's path: the token's description, or the RFC 6750 error to answer
    /// (`invalid_request`, the missing-token 401, `invalid_token` whatever the reason). No
    /// scope check ([`TokenValidator::satisfies`]).
    async fn authenticate(&self, req: &BearerRequest<'_>) -> Result<TokenInfo, OAuthError>;

    /// Whether `granted` holds every scope of `required` (space-separated; empty: any).
    fn satisfies(&self, granted: &Scope, required: &str) -> bool {
        granted.satisfies(required)
    }

    /// How the HTTP layer reads a protected request (computed once, not per request).
    fn request_policy(&self) -> &RequestPolicy;

    /// The client address of a request from `peer` carrying `forwarded` values of
    /// [`RequestPolicy::client_ip_header`]: the peer unless it is a trusted proxy.
    fn client_address(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
        let _ = forwarded;
        peer
    }

    /// The protected resource this validator guards, as a resource-server-only fairing
    /// ([`OAuth2::resource_server`](crate::rocket::OAuth2::resource_server)) publishes it in
    /// its RFC 9728 document and names it in the `resource_metadata` of its challenges.
    /// `None` (the default): no document is served. Unused next to an authorization
    /// server, which describes its own resource.
    fn protected_resource(&self) -> Option<ProtectedResource> {
        None
    }
}

/// The protected resource a [`TokenValidator`] guards, for the RFC 9728 document of a
/// resource-server-only fairing: its identifier and the authorization servers whose tokens
/// it accepts (RFC 9728 §2 `resource`, `authorization_servers`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtectedResource {
    /// The resource identifier (an `https` URL; its path places the document, RFC 9728
    /// §3.1).
    pub resource: String,
    /// The issuers of the tokens it accepts.
    pub authorization_servers: Vec<String>,
    /// A human-readable name.
    pub resource_name: Option<String>,
}

impl ProtectedResource {
    /// The resource `resource`, accepting tokens of `authorization_servers`.
    pub fn new(resource: impl Into<String>, authorization_servers: Vec<String>) -> Self {
        ProtectedResource {
            resource: resource.into(),
            authorization_servers,
            resource_name: None,
        }
    }

    /// Sets the human-readable name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }
}

#[async_trait]
impl TokenValidator for AuthorizationServer {
    async fn authenticate(&self, req: &BearerRequest<'_>) -> Result<TokenInfo, OAuthError> {
        crate::endpoint::require_secure(self, req.request.transport)?;
        let token = crate::endpoint::resource::extract(self, req, "")?;
        let route_resource = self.resources().route_resource(req.request.path);
        crate::endpoint::resource::lookup_for(
            self,
            token,
            "",
            route_resource.map(|r| &**r),
            Some(&req.request),
        )
        .await
    }

    fn satisfies(&self, granted: &Scope, required: &str) -> bool {
        self.scope_hierarchy().satisfies(granted, required)
    }

    fn request_policy(&self) -> &RequestPolicy {
        &self.request_policy
    }

    fn client_address(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
        AuthorizationServer::client_address(self, peer, forwarded.iter().copied())
    }
}
