//! `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): single-use codes bound to client,
//! redirect URI, scope and PKCE challenge; a replayed code revokes its tokens.

use async_trait::async_trait;

use crate::context::GrantContext;
use crate::error::OAuthError;
use crate::grant::{revoke_replayed_grant, Grant, GrantRequest, Issue, ReleaseCode};
use crate::grant_type::GrantType;
use crate::storage::CodeTake;
use crate::token::TokenDigest;

const INVALID_CODE: &str = "the authorization code is invalid, expired or already used";

/// The `authorization_code` grant.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuthorizationCode;

#[async_trait]
impl Grant for AuthorizationCode {
    fn grant_type(&self) -> &str {
        GrantType::AUTHORIZATION_CODE.as_str()
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        handle(ctx, req).await
    }
}

/// Redeems a code for an authenticated (or identified public) client.
///
/// The code is taken atomically, so of any number of concurrent redemptions exactly one
/// can succeed. A second use fails with `invalid_grant` and revokes every token issued from
/// the code (RFC 6749 §4.1.2). A failed attempt (wrong client, redirect URI or verifier)
/// burns the code: it is handed to no one. If storing the tokens fails, the code is
/// released so the client can retry, unless the failure is that the grant was revoked
/// meanwhile (a replay of the code won the race): then the tokens written are withdrawn,
/// the code stays used, and the answer is `invalid_grant`.
async fn handle(ctx: &GrantContext<'_>, req: &GrantRequest<'_>) -> Result<Issue, OAuthError> {
    let client = req.client()?;
    let params = req.params;
    let code = params.require("code")?;
    let digest = TokenDigest::of(code);
    let record = match ctx.stores.codes.take_code(&digest).await? {
        CodeTake::Taken(r) => r,
        CodeTake::Replayed(r) => {
            log::warn!(
                "twisted-oauth2: authorization code replayed by client `{}`",
                client.id()
            );
            let event = crate::audit::AuditEvent::CodeReplayed {
                client_id: client.shared_id(),
                grant: r.grant_id,
            };
            revoke_replayed_grant(ctx, r.grant_id, event).await?;
            return Err(OAuthError::invalid_grant(INVALID_CODE));
        }
        CodeTake::Unknown => return Err(OAuthError::invalid_grant(INVALID_CODE)),
    };
    if record.expires_at <= ctx.now() || *record.client_id != *client.id() {
        return Err(OAuthError::invalid_grant(INVALID_CODE));
    }
    match params.get("redirect_uri") {
        Some(uri) if !crate::client::same_redirect_uri(uri, &record.redirect_uri) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
        None if record.redirect_uri_sent => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: it was sent in the authorization request",
            ))
        }
        _ => {}
    }
    if let Some(v) = params.get("code_verifier") {
        if !crate::pkce::is_valid_syntax(v) {
            return Err(OAuthError::invalid_request(
                "code_verifier is malformed: RFC 7636 section 4.1 requires 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
    }
    match (&record.challenge, params.get("code_verifier")) {
        (Some(ch), Some(v)) if ch.verify(v) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("code_verifier does not match"))
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    // RFC 8707 §2.2: the token request may narrow the resources the code was granted for.
    let resources = ctx.resources();
    let audience = resources.narrow(&record.audience, req.resources)?;
    let granted = resources.narrow(&record.audience, &[])?;
    let mut issue = Issue::new(record.scope.clone())
        .with_refresh_token(true)
        .in_grant(record.grant_id)
        .audience(audience)
        .granted_resources(granted);
    issue.subject = record.subject.clone();
    issue.extra = record.extra.clone();
    Ok(issue.release_on_failure(std::sync::Arc::new(ReleaseCode(digest))))
}
