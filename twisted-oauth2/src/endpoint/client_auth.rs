//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): HTTP Basic with form-urlencoded id and secret, or `client_id` and
//! `client_secret` in the body, never both; public clients send `client_id` only.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::client::Client;
use crate::error::{Challenge, OAuthError};
use crate::form::{decode, Params};
use crate::grant::ClientAuthentication;
use crate::server::AuthorizationServer;

pub use crate::client::AuthMethod;

/// An authenticated (or, for public clients, identified) client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client.
    pub client: Arc<Client>,
    /// How it authenticated.
    pub method: AuthMethod,
}

/// Parses an `Authorization: Basic` value into id and secret, each form-urlencoded
/// (RFC 6749 §2.3.1). `Ok(None)` when the header uses another scheme.
pub(crate) fn parse_basic(header: &str) -> Result<Option<(String, String)>, OAuthError> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || {
        OAuthError::invalid_client("malformed HTTP Basic credentials")
            .with_challenge(Challenge::Basic)
    };
    let raw = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let i = raw.iter().position(|b| *b == b':').ok_or_else(bad)?;
    let id = decode(&raw[..i]).map_err(|_| bad())?;
    let secret = decode(&raw[i + 1..]).map_err(|_| bad())?;
    Ok(Some((id, secret)))
}

/// Authenticates the client of a request. The caller's address is not known here, so a
/// client ID metadata document fetched for the lookup counts only against the per-host
/// limits: endpoints use [`authenticate_from`].
pub async fn authenticate(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
) -> Result<AuthenticatedClient, OAuthError> {
    authenticate_from(server, params, authorization, None).await
}

/// [`authenticate`] for a request from `caller` (the client address as the HTTP layer
/// determines it, [`RequestContext::client_ip`](crate::endpoint::RequestContext::client_ip)).
///
/// With client ID metadata documents on, a URL `client_id` is a public client: presented
/// with a secret (HTTP Basic, even with an empty password, or `client_secret`) it fails
/// authentication at once, without its document being fetched. Identified by `client_id`
/// alone, its document is resolved, a fetch counting against `caller`'s limit.
pub async fn authenticate_from(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
    caller: Option<std::net::IpAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    authenticate_with(server, params, authorization, caller, true).await
}

/// [`authenticate_from`]; with `documents` false (the introspection endpoint, which no
/// public client may call), a URL `client_id` fails authentication without a fetch however
/// it is presented.
pub(crate) async fn authenticate_with(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
    caller: Option<std::net::IpAddr>,
    documents: bool,
) -> Result<AuthenticatedClient, OAuthError> {
    // The client id whose authentication failed, counted against the brute-force limit.
    let failed = std::sync::Mutex::new(None::<String>);
    let r = authenticate_counted(server, params, authorization, caller, documents, &failed).await;
    let id = failed.lock().ok().and_then(|mut f| f.take());
    if let Some(id) = id {
        server
            .config()
            .limits
            .client_auth_limit()
            .failed(server, &id, caller)
            .await;
    }
    r
}

/// [`authenticate_with`], noting in `failed` the client id whose authentication failed; a
/// client id over its limit of failures (from `caller`, or its ceiling:
/// [`LimitsConfig::client_auth_limit`](crate::limits::LimitsConfig::client_auth_limit)) is
/// refused (`429`) before its secret is checked.
async fn authenticate_counted(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
    caller: Option<std::net::IpAddr>,
    documents: bool,
    failed: &std::sync::Mutex<Option<String>>,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = match authorization {
        Some(h) => match parse_basic(h)? {
            Some(b) => Some(b),
            None => {
                return Err(OAuthError::invalid_client(
                    "unsupported client authentication scheme",
                ))
            }
        },
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let (id, secret, method) = match basic {
        Some((id, secret)) => {
            if params.contains("client_secret") {
                return Err(OAuthError::invalid_request(
                    "the client used more than one authentication method",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            (id, secret, AuthMethod::Basic)
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(s)) => (id.to_owned(), s.to_owned(), AuthMethod::Post),
            (Some(id), None) => (id.to_owned(), String::new(), AuthMethod::None),
            (None, _) => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                ));
            }
        },
    };
    // A client id over its limit of failures from this address, or over its ceiling, is
    // refused before its secret is checked.
    let limit = server.config().limits.client_auth_limit();
    if let Some(wait) = limit.refused(server, &id, caller).await {
        return Err(crate::limits::too_many(
            crate::ErrorCode::InvalidClient,
            "failed client authentications",
            wait,
        ));
    }
    let fail = |m: AuthMethod| {
        if let Ok(mut f) = failed.lock() {
            *f = Some(id.clone());
        }
        server
            .context()
            .audit(crate::audit::AuditEvent::ClientAuthenticationFailed {
                client_id: Some(id.clone()),
                method: m.as_str(),
            });
        let e = OAuthError::invalid_client("client authentication failed");
        if m == AuthMethod::Basic {
            e.with_challenge(Challenge::Basic)
        } else {
            e
        }
    };
    if server.client_metadata.is_some()
        && crate::client_metadata::is_metadata_document_url(&id)
        && (method != AuthMethod::None || !documents)
    {
        // A metadata-document client has no secret and cannot be authenticated here: its
        // document is not fetched for this request.
        return Err(fail(method));
    }
    let Some(client) = server.client_for(&id, caller).await? else {
        return Err(fail(method));
    };
    if client.is_public() {
        // A public client has no secret: an empty Basic password is accepted as plain
        // identification, anything else is a failed authentication.
        if !secret.is_empty() {
            return Err(fail(method));
        }
        return Ok(AuthenticatedClient {
            client,
            method: AuthMethod::None,
        });
    }
    if method == AuthMethod::None || !client.verify_secret(&secret) {
        return Err(fail(method));
    }
    // A registered client authenticates the way it registered (RFC 7591 §2
    // `token_endpoint_auth_method`): a secret sent another way is refused.
    if let Some(info) = client.registration() {
        if info.token_endpoint_auth_method != method.as_str() {
            return Err(fail(method));
        }
    }
    Ok(AuthenticatedClient { client, method })
}

/// The token endpoint's client-authentication policy as one function, for any endpoint
/// that serves a grant (the token endpoint, the device authorization endpoint, an
/// extension's): under [`ClientAuthentication::Skipped`] nothing is checked (`Ok(None)`);
/// otherwise the client authenticates ([`authenticate_from`], counting a failure against
/// `caller`), must be allowed `grant_type` (`unauthorized_client`), and under
/// [`ClientAuthentication::ConfidentialOnly`] must not be public (`unauthorized_client`).
pub async fn authenticate_for_grant(
    server: &AuthorizationServer,
    params: &Params,
    authorization: Option<&str>,
    caller: Option<std::net::IpAddr>,
    grant_type: &str,
    policy: ClientAuthentication,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    if policy == ClientAuthentication::Skipped {
        return Ok(None);
    }
    let auth = authenticate_from(server, params, authorization, caller).await?;
    if !auth.client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(
            "the client is not allowed to use this grant type",
        ));
    }
    if policy == ClientAuthentication::ConfidentialOnly && auth.client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "this grant type is only for confidential clients",
        ));
    }
    Ok(Some(auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_values_are_form_urlencoded_rfc6749_2_3_1() {
        let h = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word"));
        assert_eq!(
            parse_basic(&h).unwrap(),
            Some(("my:client".into(), "p@ss word".into()))
        );
        let h = format!("bAsIc {}", STANDARD.encode("a:b"));
        assert_eq!(parse_basic(&h).unwrap(), Some(("a".into(), "b".into())));
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_challenge() {
        let e = parse_basic("Basic !!!").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidClient);
        assert_eq!(e.challenge(), Some(&Challenge::Basic));
        let e = parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidClient);
        assert_eq!(parse_basic("Bearer x").unwrap(), None);
    }
}
