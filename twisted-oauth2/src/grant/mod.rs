//! Grant handlers of the token endpoint, one file per `grant_type`, plus the shared token
//! issuance and the [`ExtensionGrant`] trait (RFC 6749 §4.5).

use std::sync::Arc;

use async_trait::async_trait;

use crate::client::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::scope::Scope;
use crate::server::AuthorizationServer;
use crate::storage::{GrantId, TokenRecord};
use crate::token::{TokenDigest, TokenKind, TokenResponse};

pub mod authorization_code;
pub mod client_credentials;
#[cfg(feature = "password-grant")]
pub mod password;
pub mod refresh_token;

/// What a grant decided to issue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Issue {
    /// The scope of the access token.
    pub scope: Scope,
    /// The resource owner, if any.
    pub subject: Option<Arc<str>>,
    /// Application data kept with the tokens.
    pub extra: Option<Arc<serde_json::Value>>,
    /// Whether to issue a refresh token too (only if the client may use `refresh_token`
    /// and the server enables it).
    pub refresh_token: bool,
}

impl Issue {
    /// Tokens with this scope, no subject, no extra data and no refresh token.
    pub fn new(scope: Scope) -> Self {
        Issue {
            scope,
            subject: None,
            extra: None,
            refresh_token: false,
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<Arc<str>>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the extra data.
    pub fn extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Arc::new(extra));
        self
    }

    /// Asks for a refresh token.
    pub fn with_refresh_token(mut self, yes: bool) -> Self {
        self.refresh_token = yes;
        self
    }
}

/// An extension grant (txoauth2's `onCustomGrantTypeRequest`), registered with
/// [`crate::server::ServerBuilder::extension_grant`] under its absolute-URI `grant_type`.
///
/// The library authenticates the client and checks it may use the grant before calling
/// [`ExtensionGrant::handle`]; the handler validates its own parameters and returns what to
/// issue, or an [`OAuthError`].
#[async_trait]
pub trait ExtensionGrant: Send + Sync + 'static {
    /// The `grant_type` URI, such as `urn:ietf:params:oauth:grant-type:device_code`.
    fn grant_type(&self) -> &str;

    /// Decides the request.
    async fn handle(
        &self,
        server: &AuthorizationServer,
        client: &Client,
        params: &Params,
    ) -> Result<Issue, OAuthError>;
}

/// Issues an access token (and a refresh token if asked and allowed) for `grant`.
pub(crate) async fn issue_tokens(
    server: &AuthorizationServer,
    client: &Client,
    issue: Issue,
    grant: GrantId,
) -> Result<TokenResponse, OAuthError> {
    let now = server.now();
    let cfg = &server.config;
    let access = server.new_value(TokenKind::Access)?;
    let client_id: Arc<str> = client.shared_id();
    let record = TokenRecord {
        client_id: client_id.clone(),
        scope: issue.scope.clone(),
        subject: issue.subject.clone(),
        extra: issue.extra.clone(),
        grant_id: grant,
        issued_at: now,
        expires_at: now + cfg.access_token_lifetime as i64,
    };
    let with_refresh = issue.refresh_token
        && client.allows_grant("refresh_token")
        && server.grant_enabled("refresh_token");
    let refresh = if with_refresh {
        Some(server.new_value(TokenKind::Refresh)?)
    } else {
        None
    };
    let access_digest = TokenDigest::of(&access);
    // The refresh token is stored first, so stores that track token families know the
    // grant has one when the access token arrives.
    let refresh_digest = refresh.as_deref().map(TokenDigest::of);
    if let Some(rd) = &refresh_digest {
        let rrecord = TokenRecord {
            expires_at: now + cfg.refresh_token_lifetime as i64,
            ..record.clone()
        };
        server.stores.refresh.put_refresh(rd, &rrecord).await?;
    }
    if let Err(e) = server
        .stores
        .access
        .put_access(&access_digest, &record)
        .await
    {
        // Do not leave an orphan refresh token behind (txoauth2 left orphans).
        if let Some(rd) = &refresh_digest {
            let _ = server.stores.refresh.revoke_refresh(rd).await;
        }
        return Err(e.into());
    }
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: Some(cfg.access_token_lifetime as i64),
        refresh_token: refresh,
        scope: issue.scope.to_string(),
    })
}

/// Revokes every access and refresh token of a grant (code replay, refresh reuse).
pub(crate) async fn revoke_grant(
    server: &AuthorizationServer,
    grant: GrantId,
) -> Result<(), OAuthError> {
    let a = server.stores.access.revoke_access_grant(grant).await?;
    let r = server.stores.refresh.revoke_refresh_grant(grant).await?;
    log::warn!(
        "twisted-oauth2: revoked grant {:032x} ({a} access, {r} refresh tokens)",
        grant.0
    );
    Ok(())
}
