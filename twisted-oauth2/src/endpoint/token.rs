//! The token endpoint (RFC 6749 §3.2, §4, §5, §6): checks the request, finds the grant in
//! the server's [`GrantRegistry`](crate::grant::GrantRegistry), authenticates the client
//! per the grant's policy, lets the grant decide, and issues through the one issuance path.

use crate::client::Client;
use crate::endpoint::client_auth::authenticate_for_grant;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{self, GrantRequest};
use crate::server::AuthorizationServer;
use crate::token::TokenResponse;

/// Runs after the token endpoint made a token response for `client`, before it is sent
/// (see [`ServerBuilder::on_token_issued`](crate::server::ServerBuilder::on_token_issued)).
/// A hook cannot fail the response: it logs what it could not do.
#[async_trait::async_trait]
pub trait TokenIssued: Send + Sync + 'static {
    /// Tokens were issued to `client` under `grant_type`.
    async fn issued(&self, server: &AuthorizationServer, client: &Client, grant_type: &str);
}

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
    let auth = authenticate_for_grant(
        server,
        &params,
        req.authorization,
        req.request.client_ip,
        grant_type,
        grant.client_authentication(),
    )
    .await?;
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
    for hook in server.issued_hooks() {
        hook.issued(server, client, grant_type).await;
    }
    Ok(response)
}
