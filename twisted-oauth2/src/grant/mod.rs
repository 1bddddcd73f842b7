//! Grant handlers of the token endpoint, one file per `grant_type`, plus the shared token
//! issuance and the [`ExtensionGrant`] trait (RFC 6749 §4.5).

use std::sync::Arc;

use async_trait::async_trait;

use crate::client::Client;
use crate::error::{OAuthError, StorageError};
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

/// Why [`try_issue_tokens`] issued nothing.
#[derive(Debug)]
pub(crate) enum IssueError {
    /// The grant was revoked (a code replay or a refresh reuse won the race): nothing was
    /// stored, and the grant must not be retried.
    Revoked(OAuthError),
    /// Any other failure (a store outage, a failed token generator).
    Other(OAuthError),
}

impl From<IssueError> for OAuthError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Revoked(e) | IssueError::Other(e) => e,
        }
    }
}

impl From<StorageError> for IssueError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::GrantRevoked => IssueError::Revoked(e.into()),
            other => IssueError::Other(other.into()),
        }
    }
}

impl From<OAuthError> for IssueError {
    fn from(e: OAuthError) -> Self {
        IssueError::Other(e)
    }
}

/// Issues an access token (and a refresh token if asked and allowed) for `grant`.
pub(crate) async fn issue_tokens(
    server: &AuthorizationServer,
    client: &Client,
    issue: Issue,
    grant: GrantId,
) -> Result<TokenResponse, OAuthError> {
    Ok(try_issue_tokens(server, client, issue, grant).await?)
}

/// [`issue_tokens`], telling a revoked grant apart from other failures.
///
/// If the grant is revoked meanwhile (a store answers [`StorageError::GrantRevoked`]),
/// whatever was already written for it is withdrawn and the answer is `invalid_grant`.
pub(crate) async fn try_issue_tokens(
    server: &AuthorizationServer,
    client: &Client,
    issue: Issue,
    grant: GrantId,
) -> Result<TokenResponse, IssueError> {
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
        // Do not leave an orphan refresh token behind (txoauth2 left orphans), nor one of a
        // grant revoked meanwhile.
        if let Some(rd) = &refresh_digest {
            if let Err(re) = server.stores.refresh.revoke_refresh(rd).await {
                log::warn!("twisted-oauth2: could not withdraw an unissued refresh token: {re}");
            }
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

/// How many tokens [`revoke_grant`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revoked {
    pub(crate) access: u64,
    pub(crate) refresh: u64,
}

/// How long a revoked grant's tombstone must last: until nothing issued from it could still
/// be valid (its code, an access token, or a refresh token issued just before).
pub(crate) fn tombstone_until(server: &AuthorizationServer) -> i64 {
    let cfg = &server.config;
    let longest = cfg
        .code_lifetime
        .max(cfg.access_token_lifetime)
        .max(cfg.refresh_token_lifetime);
    server
        .now()
        .saturating_add(i64::try_from(longest).unwrap_or(i64::MAX))
}

/// Revokes every access and refresh token of a grant (code replay, refresh reuse, RFC 7009
/// revocation of a refresh token) and tombstones it, so a token write of the grant racing
/// this call cannot outlive it. The refresh family goes first, so no new access token can be
/// minted from it while the access tokens are revoked.
pub(crate) async fn revoke_grant(
    server: &AuthorizationServer,
    grant: GrantId,
) -> Result<Revoked, OAuthError> {
    let until = tombstone_until(server);
    let refresh = server
        .stores
        .refresh
        .revoke_refresh_grant(grant, until)
        .await?;
    let access = server
        .stores
        .access
        .revoke_access_grant(grant, until)
        .await?;
    Ok(Revoked { access, refresh })
}

/// [`revoke_grant`] for a replayed code or a reused refresh token, logged as the security
/// event it is.
pub(crate) async fn revoke_replayed_grant(
    server: &AuthorizationServer,
    grant: GrantId,
) -> Result<(), OAuthError> {
    let n = revoke_grant(server, grant).await?;
    log::warn!(
        "twisted-oauth2: revoked grant {:032x} ({} access, {} refresh tokens)",
        grant.0,
        n.access,
        n.refresh
    );
    Ok(())
}
