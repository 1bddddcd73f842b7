//! `refresh_token` (RFC 6749 §6) with rotation on every use and reuse detection
//! (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1), with an optional reuse interval
//! (`refresh_token_reuse_interval`) for clients that refresh in parallel.

use async_trait::async_trait;

use crate::context::GrantContext;
use crate::error::OAuthError;
use crate::grant::{revoke_replayed_grant, After, Grant, GrantRequest, Issue};
use crate::grant_type::GrantType;
use crate::scope::Scope;
use crate::storage::RefreshState;
use crate::token::TokenDigest;

const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked";

/// The `refresh_token` grant. Scope may narrow (the access token gets the narrower scope;
/// the new refresh token keeps the original grant), never widen (`invalid_scope`). The
/// presented token is rotated out; presenting a rotated-out token again revokes the whole
/// family, unless it comes within the configured `refresh_token_reuse_interval` after the
/// rotation: then it gets fresh tokens of the same family.
#[derive(Debug, Default, Clone, Copy)]
pub struct RefreshToken;

#[async_trait]
impl Grant for RefreshToken {
    fn grant_type(&self) -> &str {
        GrantType::REFRESH_TOKEN.as_str()
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        let token = req.params.require("refresh_token")?;
        let digest = TokenDigest::of(token);
        let old = match ctx.stores.refresh.refresh(&digest).await? {
            RefreshState::Active(r) => r,
            // With a reuse interval the rotation decides, atomically, whether this use is
            // inside it (fresh tokens of the family) or reuse (the family is revoked).
            RefreshState::Rotated(r)
                if ctx.config.refresh_token_reuse_interval > 0 && *r.client_id == *client.id() =>
            {
                r
            }
            RefreshState::Rotated(r) => {
                if *r.client_id == *client.id() {
                    log::warn!(
                        "twisted-oauth2: rotated-out refresh token reused by client `{}`",
                        client.id()
                    );
                    let event = crate::audit::AuditEvent::RefreshReuseDetected {
                        client_id: client.shared_id(),
                        grant: r.grant_id,
                    };
                    revoke_replayed_grant(ctx, r.grant_id, event).await?;
                }
                return Err(OAuthError::invalid_grant(INVALID_REFRESH));
            }
            _ => return Err(OAuthError::invalid_grant(INVALID_REFRESH)),
        };
        if old.is_expired(ctx.now()) || *old.client_id != *client.id() {
            return Err(OAuthError::invalid_grant(INVALID_REFRESH));
        }
        let scope = match req.params.get("scope") {
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
        // RFC 8707 §2.2: each refresh may narrow the family's resources, never widen them.
        let audience = ctx.resources().narrow(&old.audience, req.resources)?;
        let mut issue = Issue::new(scope)
            .with_refresh_token(true)
            .in_grant(old.grant_id)
            .audience(audience);
        issue.subject = old.subject.clone();
        issue.extra = old.extra.clone();
        issue.after = After::Rotate {
            old: digest,
            family: Box::new(old),
        };
        Ok(issue)
    }
}
