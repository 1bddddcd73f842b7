//! The introspection endpoint (RFC 7662).
//!
//! The request is checked like a token request (HTTPS, form content type, no credentials
//! in the URL query, no repeated parameter). The caller must be authorized (RFC 7662 §2.1,
//! §4), in one of two ways:
//!
//! - as a **confidential client** allowed to introspect (`introspect = true` in its config,
//!   [`Client::may_introspect`](crate::Client::may_introspect)), with `client_secret_basic`
//!   or `client_secret_post`. Public clients (`none`) cannot introspect: their `client_id`
//!   is no credential, and the endpoint would become a token-scanning oracle.
//! - with a **bearer access token** (`Authorization: Bearer`) holding every scope of
//!   [`ServerConfig::introspection_scope`](crate::config::ServerConfig::introspection_scope)
//!   (only when that setting is present).
//!
//! Failures: no or failed client authentication, or a client not allowed to introspect →
//! `401 invalid_client` with a `Basic` challenge; an unknown, expired or revoked bearer
//! token → `401 invalid_token` with a `Bearer` challenge; a bearer token without the
//! introspection scope → `403 insufficient_scope` (RFC 6750 §3.1); a missing `token` →
//! `400 invalid_request`.
//!
//! # Answers
//!
//! `{"active": false}` for a token that is unknown, expired, revoked, a refresh token
//! rotated out, issued to a client that no longer exists, or not a token this server issued; nothing else is said about it
//! (RFC 7662 §2.2). An active token is described by `active`, `scope`, `client_id`,
//! `token_type` (`Bearer` for access tokens, `refresh_token` for refresh tokens), `exp`,
//! `iat`, `iss`, and, when a resource owner granted it, `sub` and `username` (both the
//! subject: the library knows no separate user name). The application data attached at
//! grant time is never disclosed.
//!
//! `token_type_hint` is a hint only (RFC 7662 §2.1): `refresh_token` looks in the
//! refresh-token store first, anything else in the access-token store first, and the other
//! store is searched when the first has no such token. An unknown hint value is ignored.
//!
//! **Audience** (RFC 8707): `aud` lists the resources the token is for (a string when there
//! is one, an array otherwise); a resource server checks that it names itself. A token
//! stored without an audience is reported with the default one
//! ([`Resources::default_audience`](crate::resource_indicator::Resources::default_audience)).
//! Introspection does not judge the audience: a token for another resource is `active`.

use serde::Serialize;

use crate::endpoint::client_auth::{authenticate_with, AuthMethod};
use crate::endpoint::resource::{self, BearerRequest, TokenInfo};
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::form::Params;
use crate::server::AuthorizationServer;
use crate::storage::{RefreshState, TokenRecord};
use crate::token::TokenDigest;

/// An introspection request as the HTTP layer received it.
pub type IntrospectRequest<'a> = crate::endpoint::FormRequest<'a>;

/// Who called the introspection endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Introspector {
    /// A confidential client allowed to introspect.
    Client {
        /// The client id.
        client_id: String,
        /// How it authenticated.
        method: AuthMethod,
    },
    /// A bearer token holding the introspection scope.
    Bearer(TokenInfo),
}

/// The introspection response (RFC 7662 §2.2). Absent members are not serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The resource owner (the same value as `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The resource owner who granted the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The resources the token is for (RFC 8707; RFC 7662 §2.2 `aud`): one string, or an
    /// array of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

impl Introspection {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Introspection {
            active: false,
            scope: None,
            client_id: None,
            username: None,
            token_type: None,
            exp: None,
            iat: None,
            sub: None,
            iss: None,
            aud: None,
        }
    }

    fn active(server: &AuthorizationServer, r: TokenRecord, token_type: &str) -> Self {
        let subject = r.subject.as_deref().map(str::to_owned);
        let aud = match r.audience.as_slice() {
            [] => serde_json::Value::from(&**server.resources().default_audience()),
            [one] => serde_json::Value::from(&**one),
            many => many.iter().map(|a| serde_json::Value::from(&**a)).collect(),
        };
        Introspection {
            active: true,
            scope: Some(r.scope.to_string()),
            client_id: Some(r.client_id.to_string()),
            username: subject.clone(),
            token_type: Some(token_type.to_owned()),
            exp: Some(r.expires_at),
            iat: Some(r.issued_at),
            sub: subject,
            iss: Some(server.issuer().to_owned()),
            aud: Some(aud),
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"active":false}"#.to_owned())
    }
}

/// Handles an introspection request. Every failure is the error to answer (see the module
/// documentation for statuses and challenges).
pub async fn handle(
    server: &AuthorizationServer,
    req: IntrospectRequest<'_>,
) -> Result<Introspection, OAuthError> {
    let params = req.params(server)?;
    let caller =
        authorize_caller(server, &params, req.authorization, req.request.client_ip).await?;
    let token = params.require("token")?;
    let refresh_first = params.get("token_type_hint") == Some("refresh_token");
    let digest = TokenDigest::of(token);
    let answer = if refresh_first {
        match refresh(server, &digest).await? {
            Some(a) => a,
            None => access(server, token)
                .await?
                .unwrap_or_else(Introspection::inactive),
        }
    } else {
        match access(server, token).await? {
            Some(a) => a,
            None => refresh(server, &digest)
                .await?
                .unwrap_or_else(Introspection::inactive),
        }
    };
    log::debug!(
        "twisted-oauth2: introspection by {}: active={}",
        match &caller {
            Introspector::Client { client_id, .. } => format!("client `{client_id}`"),
            Introspector::Bearer(info) => format!("a bearer token of client `{}`", info.client_id),
        },
        answer.active
    );
    Ok(answer)
}

/// The access token's description, or `None` when the store has no such live token.
async fn access(
    server: &AuthorizationServer,
    token: &str,
) -> Result<Option<Introspection>, OAuthError> {
    // Expired, revoked, of a client that no longer exists (deleted, or removed from the
    // configuration): not active. Unknown: perhaps a refresh token.
    let audience = crate::validation::Audience::Any;
    Ok(
        match crate::validation::check(server, token, None, audience, false).await? {
            Ok(t) => Some(Introspection::active(server, t.record, "Bearer")),
            Err(crate::format::Rejection::Unknown) => None,
            Err(_) => Some(Introspection::inactive()),
        },
    )
}

/// The refresh token's description, or `None` when the store does not know it.
async fn refresh(
    server: &AuthorizationServer,
    digest: &TokenDigest,
) -> Result<Option<Introspection>, OAuthError> {
    Ok(match server.stores.refresh.refresh(digest).await? {
        RefreshState::Active(r) if !r.is_expired(server.now()) => {
            if server.client_exists(&r.client_id).await? {
                Some(Introspection::active(server, r, "refresh_token"))
            } else {
                Some(Introspection::inactive())
            }
        }
        RefreshState::Active(_) | RefreshState::Rotated(_) => Some(Introspection::inactive()),
        _ => None,
    })
}

/// A 401 `invalid_client` always carries a challenge here (RFC 7235 §3.1).
fn basic_challenge(e: OAuthError) -> OAuthError {
    if e.code() == ErrorCode::InvalidClient && e.challenge().is_none() {
        e.with_challenge(Challenge::Basic)
    } else {
        e
    }
}

fn bearer_scheme(authorization: Option<&str>) -> bool {
    authorization.is_some_and(|h| {
        let h = h.trim();
        let scheme = h.split_once(' ').map_or(h, |(s, _)| s);
        scheme.eq_ignore_ascii_case("bearer")
    })
}

/// Decides whether the caller may introspect; `client_ip` (the caller's address,
/// [`RequestContext::client_ip`](crate::endpoint::RequestContext::client_ip)) is the
/// address a failed client authentication counts against.
pub async fn authorize_caller(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
) -> Result<Introspector, OAuthError> {
    if bearer_scheme(authorization) {
        let Some(required) = server.config.introspection_scope.as_deref() else {
            return Err(OAuthError::invalid_client(
                "bearer tokens are not accepted at the introspection endpoint",
            )
            .with_challenge(Challenge::Basic));
        };
        if params.contains("client_secret") || params.contains("client_id") {
            return Err(OAuthError::invalid_request(
                "the request used more than one authentication method",
            ));
        }
        let breq = BearerRequest {
            authorization,
            ..Default::default()
        };
        let token = resource::extract(server, &breq, required)?;
        let info = resource::lookup(server, token, required).await?;
        if !server.scope_hierarchy().satisfies(&info.scope, required) {
            return Err(OAuthError::with_description(
                ErrorCode::InsufficientScope,
                "the access token lacks the introspection scope",
            )
            .with_challenge(Challenge::Bearer {
                scope: Some(required.to_owned()),
            }));
        }
        return Ok(Introspector::Bearer(info));
    }
    // No metadata-document client may introspect: none is fetched here.
    let auth = authenticate_with(server, params, authorization, client_ip, false)
        .await
        .map_err(basic_challenge)?;
    if auth.method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "a public client cannot call the introspection endpoint",
        )
        .with_challenge(Challenge::Basic));
    }
    if !auth.client.may_introspect() {
        return Err(
            OAuthError::invalid_client("the client is not allowed to introspect tokens")
                .with_challenge(Challenge::Basic),
        );
    }
    Ok(Introspector::Client {
        client_id: auth.client.id().to_owned(),
        method: auth.method,
    })
}
