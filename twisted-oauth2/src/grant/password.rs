//! `password` (RFC 6749 §4.3, legacy: removed in OAuth 2.1). Behind the `password-grant`
//! feature; uses the server's [`crate::storage::PasswordVerifier`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::context::GrantContext;
use crate::error::OAuthError;
use crate::grant::{Grant, GrantRequest, Issue};
use crate::grant_type::GrantType;
use crate::storage::PasswordVerifier;

/// The `password` grant over a [`PasswordVerifier`].
pub struct Password {
    verifier: Arc<dyn PasswordVerifier>,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password { .. }")
    }
}

impl Password {
    /// The grant checking passwords with `verifier`.
    pub fn new(verifier: Arc<dyn PasswordVerifier>) -> Self {
        Password { verifier }
    }
}

#[async_trait]
impl Grant for Password {
    fn grant_type(&self) -> &str {
        GrantType::PASSWORD.as_str()
    }

    /// Exchanges resource-owner credentials for tokens.
    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        let client = req.client()?;
        let username = req.params.require("username")?;
        let password = req.params.require("password")?;
        let scope = ctx.resolve_scope(req.params.get("scope"), client)?;
        let Some(subject) = self.verifier.verify(username, password).await? else {
            return Err(OAuthError::invalid_grant(
                "the username or password is invalid",
            ));
        };
        Ok(Issue::new(scope)
            .audience(req.resources.to_vec())
            .subject(Arc::<str>::from(subject))
            .with_refresh_token(true))
    }
}
