//! `refresh_token` (RFC 6749 §6) with rotation on every use and reuse detection
//! (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1).

use crate::client::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::grant::revoke_replayed_grant;
use crate::scope::Scope;
use crate::server::AuthorizationServer;
use crate::storage::{RefreshState, Rotation, TokenRecord};
use crate::token::{TokenDigest, TokenKind, TokenResponse};

const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked";

/// Exchanges a refresh token. Scope may narrow (the access token gets the narrower
/// scope; the new refresh token keeps the original grant), never widen (`invalid_scope`).
/// The presented token is rotated out; presenting a rotated-out token again revokes the
/// whole family.
pub async fn handle(
    server: &AuthorizationServer,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token = params.require("refresh_token")?;
    let digest = TokenDigest::of(token);
    let now = server.now();
    let old = match server.stores.refresh.refresh(&digest).await? {
        RefreshState::Active(r) => r,
        RefreshState::Rotated(r) => {
            if *r.client_id == *client.id() {
                log::warn!(
                    "twisted-oauth2: rotated-out refresh token reused by client `{}`",
                    client.id()
                );
                revoke_replayed_grant(server, r.grant_id).await?;
            }
            return Err(OAuthError::invalid_grant(INVALID_REFRESH));
        }
        RefreshState::Unknown => return Err(OAuthError::invalid_grant(INVALID_REFRESH)),
    };
    if old.is_expired(now) || *old.client_id != *client.id() {
        return Err(OAuthError::invalid_grant(INVALID_REFRESH));
    }
    let scope = match params.get("scope") {
        None => old.scope.clone(),
        Some(s) => {
            let s = Scope::parse_param(s)?;
            if !s.is_subset(&old.scope) {
                return Err(OAuthError::invalid_scope(
                    "scope exceeds the original grant",
                ));
            }
            s
        }
    };
    let cfg = &server.config;
    let new_refresh = server.new_value(TokenKind::Refresh)?;
    let access = server.new_value(TokenKind::Access)?;
    let new_record = TokenRecord {
        issued_at: now,
        expires_at: now + cfg.refresh_token_lifetime as i64,
        ..old.clone()
    };
    let new_digest = TokenDigest::of(&new_refresh);
    let access_digest = TokenDigest::of(&access);
    let access_record = TokenRecord {
        scope: scope.clone(),
        issued_at: now,
        expires_at: now + cfg.access_token_lifetime as i64,
        ..old.clone()
    };
    // The access token is stored before the rotation, so a failed write leaves the
    // presented refresh token active (a retry is not mistaken for reuse), and a revocation
    // of the grant racing this request reaches the new access token: after it the rotation
    // finds the family tombstoned (`GrantRevoked`, answered `invalid_grant`) and the access
    // token is withdrawn below. A put after the revocation is refused outright.
    server
        .stores
        .access
        .put_access(&access_digest, &access_record)
        .await?;
    let rotation = server
        .stores
        .refresh
        .rotate_refresh(&digest, &new_digest, &new_record)
        .await;
    if !matches!(rotation, Ok(Rotation::Rotated)) {
        // Nobody holds this access token yet: withdraw it.
        if let Err(e) = server.stores.access.revoke_access(&access_digest).await {
            log::warn!("twisted-oauth2: could not withdraw an unissued access token: {e}");
        }
    }
    match rotation? {
        Rotation::Rotated => {}
        Rotation::AlreadyRotated => {
            revoke_replayed_grant(server, old.grant_id).await?;
            return Err(OAuthError::invalid_grant(INVALID_REFRESH));
        }
        Rotation::Unknown => return Err(OAuthError::invalid_grant(INVALID_REFRESH)),
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: Some(cfg.access_token_lifetime as i64),
        refresh_token: Some(new_refresh),
        scope: scope.to_string(),
    })
}
