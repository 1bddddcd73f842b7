//! `client_credentials` (RFC 6749 §4.4): a confidential client acting on its own behalf.

use async_trait::async_trait;

use crate::context::GrantContext;
use crate::error::OAuthError;
use crate::grant::{Grant, GrantRequest, Issue};
use crate::grant_type::GrantType;

/// The `client_credentials` grant. Public clients are refused with
/// `unauthorized_client`; no refresh token is issued (RFC 6749 §4.4.3).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientCredentials;

#[async_trait]
impl Grant for ClientCredentials {
    fn grant_type(&self) -> &str {
        GrantType::CLIENT_CREDENTIALS.as_str()
    }

    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        if client.is_public() {
            return Err(OAuthError::unauthorized_client(
                "client_credentials is only for confidential clients",
            ));
        }
        let scope = ctx.resolve_scope(req.params.get("scope"), client)?;
        // RFC 8707 §2: any known resource; none named is the default audience.
        Ok(Issue::new(scope).audience(req.resources.to_vec()))
    }
}
