//! Protected resources (RFC 6750): extracting the bearer token, validating it, and the
//! `invalid_token` / `insufficient_scope` answers with their challenges.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::endpoint::{require_secure, Transport};
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::scope::Scope;
use crate::server::AuthorizationServer;
use crate::storage::GrantId;

/// What a valid access token stands for, handed to protected handlers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    /// The client the token was issued to.
    pub client_id: Arc<str>,
    /// The granted scope.
    pub scope: Scope,
    /// The resource owner who granted it, if any.
    #[serde(rename = "sub", skip_serializing_if = "Option::is_none")]
    pub subject: Option<Arc<str>>,
    /// Data the application attached at grant time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Arc<serde_json::Value>>,
    /// When the token was issued.
    #[serde(with = "chrono::serde::ts_seconds", rename = "iat")]
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    #[serde(with = "chrono::serde::ts_seconds", rename = "exp")]
    pub expires_at: DateTime<Utc>,
    /// The resources the token is for (RFC 8707); empty for a token stored without an
    /// audience (counted as the default one). Not serialized.
    #[serde(skip)]
    pub audience: Vec<Arc<str>>,
    /// The token's identifier (RFC 9068 `jti`), when its format names tokens. Not
    /// serialized.
    #[serde(skip)]
    pub jti: Option<Arc<str>>,
    /// The claims of a self-contained token as it carried them; `None` for an opaque
    /// token. Not serialized.
    #[serde(skip)]
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    #[serde(skip)]
    pub(crate) grant_id: GrantId,
}

impl TokenInfo {
    pub(crate) fn from_record(r: crate::storage::TokenRecord) -> Self {
        TokenInfo {
            client_id: r.client_id,
            scope: r.scope,
            subject: r.subject,
            extra: r.extra,
            issued_at: DateTime::from_timestamp(r.issued_at, 0).unwrap_or_default(),
            expires_at: DateTime::from_timestamp(r.expires_at, 0).unwrap_or_default(),
            audience: r.audience,
            jti: None,
            claims: None,
            grant_id: r.grant_id,
        }
    }

    /// The description of a validated token (what a
    /// [`TokenValidator`](crate::validation::TokenValidator) of another kind returns).
    pub fn from_valid(t: crate::format::ValidToken) -> Self {
        let mut info = TokenInfo::from_record(t.record);
        info.jti = t.jti;
        info.claims = t.claims;
        info
    }
}

/// Where a request may carry its token (RFC 6750 §2).
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerRequest<'a> {
    /// The `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// `access_token` from the URL query (counted only when the server allows it).
    pub query_token: Option<&'a str>,
    /// Whether `access_token` appeared in the query more than once.
    pub query_duplicate: bool,
    /// `access_token` from a form body (RFC 6750 §2.2).
    pub form_token: Option<&'a str>,
    /// The rest of the HTTP request (method, path, host, headers), e.g. for a
    /// proof-of-possession check.
    pub request: crate::request::RequestContext<'a>,
}

fn bearer_error(code: ErrorCode, description: &'static str, required: &str) -> OAuthError {
    OAuthError::with_description(code, description).with_challenge(Challenge::Bearer {
        scope: (!required.is_empty()).then(|| required.to_owned()),
    })
}

/// Finds the single token of a request. More than one method → `invalid_request` (400);
/// none → the "missing token" 401 whose challenge has no error code (RFC 6750 §3.1).
pub fn extract<'a>(
    server: &AuthorizationServer,
    req: &BearerRequest<'a>,
    required: &str,
) -> Result<&'a str, OAuthError> {
    extract_with(server.config.allow_access_token_in_query, req, required)
}

/// [`extract`], the query token counted when `allow_query`.
pub(crate) fn extract_with<'a>(
    allow_query: bool,
    req: &BearerRequest<'a>,
    required: &str,
) -> Result<&'a str, OAuthError> {
    let mut found: Option<&'a str> = None;
    let mut count = 0;
    if let Some(h) = req.authorization {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let t = rest.trim();
            if t.is_empty() || !crate::token::is_b64token(t) {
                return Err(bearer_error(
                    ErrorCode::InvalidRequest,
                    "malformed Authorization header",
                    required,
                ));
            }
            found = Some(t);
            count += 1;
        }
    }
    if allow_query {
        if req.query_duplicate {
            return Err(bearer_error(
                ErrorCode::InvalidRequest,
                "the request carries more than one access token",
                required,
            ));
        }
        if let Some(t) = req.query_token {
            found = Some(t);
            count += 1;
        }
    }
    if let Some(t) = req.form_token {
        found = Some(t);
        count += 1;
    }
    if count > 1 {
        return Err(bearer_error(
            ErrorCode::InvalidRequest,
            "the request carries more than one access token",
            required,
        ));
    }
    found.ok_or_else(|| OAuthError::no_token(required))
}

/// Looks up an access token; unknown, expired or revoked, issued to a client that no
/// longer exists ([`AuthorizationServer::client_exists`]), or issued for other resources
/// than this application's (RFC 8707: its audience lacks
/// [`Resources::default_audience`](crate::resource_indicator::Resources::default_audience))
/// → `invalid_token`.
pub async fn lookup(
    server: &AuthorizationServer,
    token: &str,
    required: &str,
) -> Result<TokenInfo, OAuthError> {
    lookup_at(server, token, required, None).await
}

/// [`lookup`] for a route that is a resource of its own (`resource`, from
/// [`Resources::route_resource`](crate::resource_indicator::Resources::route_resource)): the
/// token's audience must name it or a resource above it
/// ([`Resources::admits_at`](crate::resource_indicator::Resources::admits_at)). `None`: the
/// application's own resource, as [`lookup`].
pub async fn lookup_at(
    server: &AuthorizationServer,
    token: &str,
    required: &str,
    resource: Option<&str>,
) -> Result<TokenInfo, OAuthError> {
    lookup_for(server, token, required, resource, None).await
}

/// [`lookup_at`] with the request that presented the token (the formats see it in their
/// [`ValidationContext`](crate::format::ValidationContext)). Every refusal is recorded with
/// its [`Rejection`](crate::format::Rejection) (audit event, debug log); the client gets
/// `invalid_token` whatever it is.
pub async fn lookup_for(
    server: &AuthorizationServer,
    token: &str,
    required: &str,
    resource: Option<&str>,
    request: Option<&crate::request::RequestContext<'_>>,
) -> Result<TokenInfo, OAuthError> {
    let audience = match resource {
        Some(r) => crate::validation::Audience::Resource(r),
        None => crate::validation::Audience::Default,
    };
    match crate::validation::check(server, token, request, audience, true).await? {
        Ok(t) => Ok(TokenInfo::from_valid(t)),
        Err(crate::format::Rejection::WrongAudience) => Err(bearer_error(
            ErrorCode::InvalidToken,
            "the access token is for another resource",
            required,
        )),
        Err(_) => Err(bearer_error(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
            required,
        )),
    }
}

/// The whole check of a protected resource: transport, extraction, lookup and scope.
/// `required` is a space-separated scope list; all of it must be granted.
pub async fn authorize(
    server: &AuthorizationServer,
    req: &BearerRequest<'_>,
    transport: Transport,
    required: &str,
) -> Result<TokenInfo, OAuthError> {
    require_secure(server, transport)?;
    let token = extract(server, req, required)?;
    let info = lookup(server, token, required).await?;
    if !server.scope_hierarchy().satisfies(&info.scope, required) {
        return Err(bearer_error(
            ErrorCode::InsufficientScope,
            "the access token lacks a required scope",
            required,
        ));
    }
    Ok(info)
}
