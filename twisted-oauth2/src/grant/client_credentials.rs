//! `client_credentials` (RFC 6749 §4.4): a confidential client acting on its own behalf.

use crate::client::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::grant::{issue_tokens, Issue};
use crate::server::AuthorizationServer;
use crate::storage::GrantId;
use crate::token::TokenResponse;

/// Handles a `client_credentials` request from an authenticated client. Public clients are
/// refused with `unauthorized_client`; no refresh token is issued (RFC 6749 §4.4.3).
pub async fn handle(
    server: &AuthorizationServer,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials is only for confidential clients",
        ));
    }
    let scope = server.resolve_scope(params.get("scope"), client)?;
    issue_tokens(server, client, Issue::new(scope), GrantId::random()).await
}
