//! The revocation endpoint (RFC 7009).
//!
//! The request is checked like a token request: HTTPS (unless the debug override is set),
//! `application/x-www-form-urlencoded`, no credentials in the URL query, no repeated
//! parameter. The client authenticates as at the token endpoint
//! ([`client_auth::authenticate`](crate::endpoint::client_auth::authenticate)):
//! `client_secret_basic`, `client_secret_post`, or `none` for a public client, which may
//! revoke its own tokens (RFC 7009 §5).
//!
//! # Policy
//!
//! - `token` is required; `token_type_hint` is optional and only a hint (RFC 7009 §2.1):
//!   `access_token` looks in the access-token store first, `refresh_token` in the
//!   refresh-token store first, and a token of the other type is still found and revoked.
//!   Any other hint value is ignored and both stores are searched (RFC 7009 §2.1: the
//!   server extends its search across all supported token types), as at introspection.
//! - An unknown, expired or already revoked token is answered with success, as is a token
//!   issued to another client: that token is left alone and the caller learns nothing
//!   about it (RFC 7009 §2.1, §2.2).
//! - Revoking a refresh token revokes its whole grant: every refresh token of its rotation
//!   family (including rotated-out ones) and every access token issued from the same grant
//!   (RFC 7009 §2.1 "SHOULD also invalidate all access tokens based on the same
//!   authorization grant"). A rotated-out refresh token of the client counts as its
//!   family's: revoking it ends the grant too.
//! - Revoking an access token revokes that access token only; the refresh tokens of its
//!   grant stay usable. With
//!   [`ServerConfig::revoke_grant_on_access_token_revocation`](crate::config::ServerConfig::revoke_grant_on_access_token_revocation)
//!   set, the whole grant (its access and refresh tokens) is revoked instead.

use crate::client::Client;
use crate::endpoint::client_auth::authenticate_from;
use crate::error::OAuthError;
use crate::form::Params;
use crate::server::AuthorizationServer;
use crate::storage::{GrantId, RefreshState};
use crate::token::TokenDigest;

/// A revocation request as the HTTP layer received it.
pub type RevokeRequest<'a> = crate::endpoint::FormRequest<'a>;

/// The `token_type_hint` values of RFC 7009 §2.1 (also used by RFC 7662 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// Parses a `token_type_hint` parameter; absent or an unknown value → `Ok(None)`
    /// (RFC 7009 §2.1: a hint the server does not know only widens its search).
    pub fn parse(params: &Params) -> Result<Option<Self>, OAuthError> {
        match params.get("token_type_hint") {
            None => Ok(None),
            Some("access_token") => Ok(Some(TokenTypeHint::AccessToken)),
            Some("refresh_token") => Ok(Some(TokenTypeHint::RefreshToken)),
            Some(_) => Ok(None),
        }
    }

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// Handles a revocation request. `Ok(())` is answered `200 OK` whether or not a token was
/// revoked; every failure is the RFC 7009 §2.2.1 / RFC 6749 §5.2 error to answer.
pub async fn handle(
    server: &AuthorizationServer,
    req: RevokeRequest<'_>,
) -> Result<(), OAuthError> {
    let params = req.params(server)?;
    let auth = authenticate_from(server, &params, req.authorization, req.request.client_ip).await?;
    let client: &Client = &auth.client;
    let token = params.require("token")?;
    let hint = TokenTypeHint::parse(&params)?;
    let digest = TokenDigest::of(token);
    let outcome = match hint {
        Some(TokenTypeHint::RefreshToken) => match revoke_refresh(server, client, &digest).await? {
            Outcome::NotFound => revoke_access(server, client, token).await?,
            found => found,
        },
        _ => match revoke_access(server, client, token).await? {
            Outcome::NotFound => revoke_refresh(server, client, &digest).await?,
            found => found,
        },
    };
    match outcome {
        Outcome::Revoked => {}
        Outcome::NotFound => log::debug!(
            "twisted-oauth2: revocation by client `{}` of an unknown token ({} method)",
            client.id(),
            auth.method.as_str()
        ),
        Outcome::OtherClient => log::info!(
            "twisted-oauth2: client `{}` tried to revoke another client's token; left alone",
            client.id()
        ),
    }
    Ok(())
}

enum Outcome {
    Revoked,
    NotFound,
    OtherClient,
}

async fn revoke_access(
    server: &AuthorizationServer,
    client: &Client,
    token: &str,
) -> Result<Outcome, OAuthError> {
    let ctx = server.context();
    let fctx = ctx.format_context();
    // The record whatever its state: judge nothing, revoke through the format that knows it.
    let mut check = crate::format::ValidationContext::new(ctx.now());
    check.judge = false;
    let (validation, format) = ctx.formats().validate(&fctx, &check, token).await?;
    let Some(record) = validation.valid().map(|t| t.record) else {
        return Ok(Outcome::NotFound);
    };
    if *record.client_id != *client.id() {
        return Ok(Outcome::OtherClient);
    }
    // The presented token itself first: a store may index only grants that have a refresh
    // family, so a grant-wide revocation alone might not reach it.
    format.revoke(&fctx, token).await?;
    ctx.audit(crate::audit::AuditEvent::Revoked {
        client_id: client.shared_id(),
        grant: record.grant_id,
        whole_grant: server.config.revoke_grant_on_access_token_revocation,
    });
    if server.config.revoke_grant_on_access_token_revocation {
        revoke_whole_grant(server, record.grant_id, client).await?;
    } else {
        log::debug!(
            "twisted-oauth2: client `{}` revoked an access token of grant {:032x}",
            client.id(),
            record.grant_id.0
        );
    }
    Ok(Outcome::Revoked)
}

async fn revoke_refresh(
    server: &AuthorizationServer,
    client: &Client,
    digest: &TokenDigest,
) -> Result<Outcome, OAuthError> {
    let record = match server.stores.refresh.refresh(digest).await? {
        RefreshState::Active(r) | RefreshState::Rotated(r) => r,
        _ => return Ok(Outcome::NotFound),
    };
    if *record.client_id != *client.id() {
        return Ok(Outcome::OtherClient);
    }
    // The presented token first, so it is gone even if a family index is incomplete.
    server.stores.refresh.revoke_refresh(digest).await?;
    server.context().audit(crate::audit::AuditEvent::Revoked {
        client_id: client.shared_id(),
        grant: record.grant_id,
        whole_grant: true,
    });
    revoke_whole_grant(server, record.grant_id, client).await?;
    Ok(Outcome::Revoked)
}

async fn revoke_whole_grant(
    server: &AuthorizationServer,
    grant: GrantId,
    client: &Client,
) -> Result<(), OAuthError> {
    // Tombstoned too, so an issuance of this grant racing the revocation cannot outlive it.
    let (access, refresh) = server.context().revoke_grant(grant).await?;
    log::debug!(
        "twisted-oauth2: client `{}` revoked grant {:032x} ({access} access, {refresh} refresh tokens)",
        client.id(),
        grant.0,
    );
    Ok(())
}
