//! `password` (RFC 6749 §4.3, legacy: removed in OAuth 2.1). Behind the `password-grant`
//! feature; uses the server's [`crate::storage::PasswordVerifier`].

use std::sync::Arc;

use crate::client::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::grant::{issue_tokens, Issue};
use crate::server::AuthorizationServer;
use crate::storage::GrantId;
use crate::token::TokenResponse;

/// Exchanges resource-owner credentials for tokens.
pub async fn handle(
    server: &AuthorizationServer,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let username = params.require("username")?;
    let password = params.require("password")?;
    let scope = server.resolve_scope(params.get("scope"), client)?;
    let Some(verifier) = &server.password else {
        return Err(OAuthError::with_description(
            crate::ErrorCode::UnsupportedGrantType,
            "the password grant is not configured",
        ));
    };
    let Some(subject) = verifier.verify(username, password).await? else {
        return Err(OAuthError::invalid_grant(
            "the username or password is invalid",
        ));
    };
    let issue = Issue::new(scope)
        .subject(Arc::<str>::from(subject))
        .with_refresh_token(true);
    issue_tokens(server, client, issue, GrantId::random()).await
}
