//! The token endpoint (RFC 6749 §3.2, §4, §5, §6): checks the request, authenticates the
//! client once, then hands over to the handler of the `grant_type` in [`crate::grant`].

use crate::endpoint::client_auth::authenticate;
use crate::error::{ErrorCode, OAuthError};
use crate::grant;
use crate::server::AuthorizationServer;
use crate::token::TokenResponse;

/// A token request as the HTTP layer received it.
pub type TokenRequest<'a> = crate::endpoint::FormRequest<'a>;

/// Handles a token request. Every failure is the RFC 6749 §5.2 error to answer.
pub async fn handle(
    server: &AuthorizationServer,
    req: TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let params = req.params(server)?;
    let grant_type = params.require("grant_type")?;
    let builtin = matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) || (cfg!(feature = "password-grant") && grant_type == "password");
    let known = builtin || server.extensions.contains_key(grant_type);
    if !known || !server.grant_enabled(grant_type) {
        return Err(OAuthError::with_description(
            ErrorCode::UnsupportedGrantType,
            "the grant type is not supported by this server",
        ));
    }
    let auth = authenticate(server, &params, req.authorization).await?;
    let client = &*auth.client;
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(
            "the client is not allowed to use this grant type",
        ));
    }
    match grant_type {
        "authorization_code" => grant::authorization_code::handle(server, client, &params).await,
        "refresh_token" => grant::refresh_token::handle(server, client, &params).await,
        "client_credentials" => grant::client_credentials::handle(server, client, &params).await,
        #[cfg(feature = "password-grant")]
        "password" => grant::password::handle(server, client, &params).await,
        other => {
            let ext = server.extensions.get(other).cloned().ok_or_else(|| {
                OAuthError::with_description(
                    ErrorCode::UnsupportedGrantType,
                    "unsupported grant type",
                )
            })?;
            let issue = ext.handle(server, client, &params).await?;
            server.check_scope(&issue.scope, client)?;
            grant::issue_tokens(server, client, issue, crate::storage::GrantId::random()).await
        }
    }
}
