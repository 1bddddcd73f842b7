//! The token endpoint (RFC 6749 §3.2, §4, §5, §6): checks the request, finds the grant in
//! the server's [`GrantRegistry`](crate::grant::GrantRegistry), authenticates the client
//! per the grant's policy, lets the grant decide, and issues through the one issuance path.

use crate::endpoint::client_auth::authenticate_from;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, ClientAuthentication, GrantRequest};
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
    let grant = match server.grants().get(grant_type) {
        Some(g) if server.grant_enabled(grant_type) => g.clone(),
        _ => {
            return Err(OAuthError::with_description(
                ErrorCode::UnsupportedGrantType,
                "the grant type is not supported by this server",
            ))
        }
    };
    let ctx = server.context();
    let auth = match grant.client_authentication() {
        ClientAuthentication::Skipped => None,
        policy => {
            let auth = authenticate_from(server, &params, req.authorization, req.request.client_ip)
                .await?;
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
            Some(auth)
        }
    };
    let resources = server.resources().requested(&params)?;
    let greq = GrantRequest {
        client: auth.as_ref().map(|a| &*a.client),
        method: auth.as_ref().map(|a| a.method),
        params: &params,
        request: &req.request,
        resources: &resources,
    };
    let mut issue = grant.handle(&ctx, &greq).await?;
    issue.grant_type = Some(grant_type.to_owned());
    // Whoever the grant found (itself, under a skipped authentication) gets the tokens.
    let client = greq.client()?;
    ctx.check_scope(&issue.scope, client)?;
    let response = grant::issue(&ctx, client, issue).await?;
    crate::endpoint::register::mark_used(server, client).await;
    Ok(response)
}
