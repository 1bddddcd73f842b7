//! The grants of the token endpoint: one [`Grant`] trait that every grant implements
//! (built-in or added by an application), one [`GrantRegistry`] that dispatches them, one
//! issuance path (the token endpoint hands every [`Issue`] to it) and one family-revocation path
//! ([`GrantContext::revoke_grant`]). One file per built-in `grant_type`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::AuditEvent;
use crate::client::AuthMethod;
use crate::client::Client;
use crate::context::GrantContext;
use crate::error::{OAuthError, StorageError};
use crate::form::Params;
use crate::format::{AccessTokenFormat, IssuedToken};
use crate::grant_type::GrantType;
use crate::scope::Scope;
use crate::storage::{GrantId, PasswordVerifier, ReuseWindow, Rotation, TokenRecord};
use crate::token::{TokenDigest, TokenKind, TokenResponse};

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
#[cfg(feature = "password-grant")]
pub mod password;
pub mod refresh_token;

/// What a grant decided to issue. Built with [`Issue::new`] and its setters.
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
    /// The token family (grant) the tokens belong to; a new one when `None`.
    pub grant: Option<GrantId>,
    /// Extra members of the token response (e.g. `authorization_details`); the registered
    /// members (`access_token`, `token_type`, ...) cannot be overridden.
    pub response_members: Vec<(String, serde_json::Value)>,
    /// The resources the access token is for (RFC 8707); empty: the default audience
    /// ([`Resources::default_audience`](crate::resource_indicator::Resources::default_audience)).
    /// Use [`Resources::narrow`](crate::resource_indicator::Resources::narrow) with
    /// [`GrantRequest::resources`] to decide it.
    pub audience: Vec<Arc<str>>,
    /// The resources granted to the token family, kept with the refresh token so later
    /// refreshes may name any of them; empty: the same as [`Self::audience`].
    pub granted_resources: Vec<Arc<str>>,
    pub(crate) after: After,
    /// What to give back if issuance fails ([`Issue::release_on_failure`]).
    pub(crate) release: Option<Release>,
    /// The grant type, for audit events (set by the token endpoint).
    pub(crate) grant_type: Option<String>,
}

/// What a grant took and gives back when issuance fails for another reason than a revoked
/// grant (a store outage, a failing format or hook), so the client can retry: an
/// authorization code ([`ReleaseCode`]), a device code, a one-time assertion. Set with
/// [`Issue::release_on_failure`]. When the grant was revoked meanwhile (a replay won the
/// race), nothing is released: what was taken stays used.
#[async_trait]
pub trait ReleaseOnFailure: Send + Sync + 'static {
    /// Gives back what the grant took. A failure is logged; the client still gets the
    /// issuance error.
    async fn release(&self, ctx: &GrantContext<'_>) -> Result<(), StorageError>;
}

/// Releases a taken authorization code ([`CodeStore::release_code`](crate::storage::CodeStore::release_code)).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseCode(pub TokenDigest);

#[async_trait]
impl ReleaseOnFailure for ReleaseCode {
    async fn release(&self, ctx: &GrantContext<'_>) -> Result<(), StorageError> {
        ctx.stores.codes.release_code(&self.0).await
    }
}

/// A [`ReleaseOnFailure`] held by an [`Issue`].
#[derive(Clone)]
pub(crate) struct Release(Arc<dyn ReleaseOnFailure>);

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Release(..)")
    }
}

/// One access token just issued, as an [`AfterIssue`] hook sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct IssuedAccess<'a> {
    /// The client.
    pub client: &'a Client,
    /// What the token stands for.
    pub record: &'a TokenRecord,
    /// The token the format made (its value, `token_type`, lifetime, `jti`).
    pub token: &'a IssuedToken,
    /// The `grant_type` that issued it (`implicit` for the implicit grant; empty if unknown).
    pub grant_type: &'a str,
    /// Whether a refresh token was rotated for it (the `refresh_token` grant).
    pub refreshed: bool,
}

/// Runs after every access token is issued, on the one issuance path, before the response
/// is sent: it sees the issued value (OpenID Connect computes `at_hash` from it) and may add
/// members to the token response. An error withdraws the tokens just issued and answers
/// the error. Registered with
/// [`ServerBuilder::after_issue`](crate::server::ServerBuilder::after_issue); hooks run in
/// registration order.
#[async_trait]
pub trait AfterIssue: Send + Sync + 'static {
    /// Sees `issued`; may add members to `response` (registered members are kept).
    async fn after_issue(
        &self,
        ctx: &GrantContext<'_>,
        issued: &IssuedAccess<'_>,
        response: &mut TokenResponse,
    ) -> Result<(), OAuthError>;
}

/// What the issuance path does besides storing new tokens.
#[derive(Debug, Clone, Default)]
pub(crate) enum After {
    /// Nothing.
    #[default]
    Nothing,
    /// Rotate this refresh token out for the new one, whose record is the family's
    /// `record` with fresh times (refresh-token rotation, RFC 9700 §4.14.2).
    Rotate {
        old: TokenDigest,
        family: Box<TokenRecord>,
    },
}

impl Issue {
    /// Tokens with this scope, no subject, no extra data and no refresh token, in a new
    /// grant.
    pub fn new(scope: Scope) -> Self {
        Issue {
            scope,
            subject: None,
            extra: None,
            refresh_token: false,
            grant: None,
            response_members: Vec::new(),
            audience: Vec::new(),
            granted_resources: Vec::new(),
            after: After::Nothing,
            release: None,
            grant_type: None,
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

    /// Puts the tokens in an existing grant (token family).
    pub fn in_grant(mut self, grant: GrantId) -> Self {
        self.grant = Some(grant);
        self
    }

    /// Sets the access token's audience (see [`Self::audience`]).
    pub fn audience(mut self, audience: Vec<Arc<str>>) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the resources granted to the token family (see [`Self::granted_resources`]).
    pub fn granted_resources(mut self, resources: Vec<Arc<str>>) -> Self {
        self.granted_resources = resources;
        self
    }

    /// Gives `release` back what the grant took if issuance fails (see
    /// [`ReleaseOnFailure`]).
    pub fn release_on_failure(mut self, release: Arc<dyn ReleaseOnFailure>) -> Self {
        self.release = Some(Release(release));
        self
    }

    /// Adds a member to the token response.
    pub fn response_member(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.response_members.push((name.into(), value));
        self
    }
}

/// How the token endpoint authenticates the client before a [`Grant`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// Confidential clients authenticate; public clients identify themselves by
    /// `client_id` (RFC 6749 §2.3, §3.2.1). The default.
    PublicAllowed,
    /// Only confidential clients, authenticated; a public client is `unauthorized_client`.
    ConfidentialOnly,
    /// The library does not authenticate: the grant identifies the client itself (e.g.
    /// from an assertion); [`GrantRequest::client`] is `None`.
    Skipped,
}

/// The request a [`Grant`] decides.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct GrantRequest<'a> {
    /// The authenticated (or identified) client; `None` only under
    /// [`ClientAuthentication::Skipped`].
    pub client: Option<&'a Client>,
    /// How the client authenticated.
    pub method: Option<AuthMethod>,
    /// The form parameters.
    pub params: &'a Params,
    /// The HTTP request (method, URL, headers, transport).
    pub request: &'a crate::request::RequestContext<'a>,
    /// The resources the request names with `resource` (RFC 8707), each already checked
    /// to be known to the server (else the token endpoint answered `invalid_target`); empty
    /// when it names none.
    pub resources: &'a [Arc<str>],
}

impl<'a> GrantRequest<'a> {
    /// The client, or `invalid_client` when the grant skipped authentication and found
    /// none.
    pub fn client(&self) -> Result<&'a Client, OAuthError> {
        self.client
            .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))
    }
}

/// A grant of the token endpoint (RFC 6749 §4, §4.5): every built-in grant implements it,
/// and an application registers its own with
/// [`ServerBuilder::grant`](crate::server::ServerBuilder::grant) under an absolute-URI
/// `grant_type`.
///
/// The token endpoint checks the request, authenticates the client per
/// [`Grant::client_authentication`], checks the client may use the grant, calls
/// [`Grant::handle`], checks the scope against the server's and the client's, and issues
/// what the handler returned through the one issuance path. A handler may answer any RFC
/// error, registered or not ([`OAuthError`], e.g. `authorization_pending`).
#[async_trait]
pub trait Grant: Send + Sync + 'static {
    /// The `grant_type`, such as `urn:ietf:params:oauth:grant-type:device_code`.
    fn grant_type(&self) -> &str;

    /// How the client is authenticated before [`Grant::handle`] runs.
    fn client_authentication(&self) -> ClientAuthentication {
        ClientAuthentication::PublicAllowed
    }

    /// Decides the request: what to issue, or the error to answer.
    async fn handle(
        &self,
        ctx: &GrantContext<'_>,
        req: &GrantRequest<'_>,
    ) -> Result<Issue, OAuthError>;
}

/// The grants a server knows, by `grant_type`: the built-ins of this build and the
/// application's. The token endpoint dispatches through it; configuration checks and the
/// RFC 8414 `grant_types_supported` read it.
#[derive(Default, Clone)]
pub struct GrantRegistry {
    grants: HashMap<String, Arc<dyn Grant>>,
}

impl std::fmt::Debug for GrantRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl GrantRegistry {
    /// The built-in grants of this build (`password` only with a verifier).
    pub(crate) fn built_in(password: Option<Arc<dyn PasswordVerifier>>) -> Self {
        let mut r = GrantRegistry::default();
        r.insert(Arc::new(authorization_code::AuthorizationCode));
        r.insert(Arc::new(refresh_token::RefreshToken));
        r.insert(Arc::new(client_credentials::ClientCredentials));
        #[cfg(feature = "password-grant")]
        if let Some(v) = password {
            r.insert(Arc::new(password::Password::new(v)));
        }
        #[cfg(not(feature = "password-grant"))]
        let _ = password;
        r
    }

    pub(crate) fn insert(&mut self, grant: Arc<dyn Grant>) {
        self.grants.insert(grant.grant_type().to_owned(), grant);
    }

    /// The grant registered under `grant_type`.
    pub fn get(&self, grant_type: &str) -> Option<&Arc<dyn Grant>> {
        self.grants.get(grant_type)
    }

    /// Whether `grant_type` is registered (token endpoint grants) or is the implicit grant
    /// of this build (authorization endpoint).
    pub fn knows(&self, grant_type: &str) -> bool {
        self.grants.contains_key(grant_type)
            || (grant_type == GrantType::IMPLICIT.as_str() && GrantType::IMPLICIT.is_compiled_in())
            || (grant_type == GrantType::PASSWORD.as_str() && GrantType::PASSWORD.is_compiled_in())
    }

    /// Every registered `grant_type`, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.grants.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Why [`issue`] issued nothing.
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

const INVALID_REFRESH: &str = "the refresh token is invalid, expired or revoked";

/// The one issuance path: stores an access token (through the server's
/// [`AccessTokenFormat`](crate::format::AccessTokenFormat)) and, if asked and allowed, a
/// refresh token, for `issue`'s grant; or rotates a refresh token. If the grant is revoked
/// meanwhile (a store answers [`StorageError::GrantRevoked`]), whatever was already written
/// is withdrawn and the answer is `invalid_grant`.
pub(crate) async fn issue(
    ctx: &GrantContext<'_>,
    client: &Client,
    issue: Issue,
) -> Result<TokenResponse, OAuthError> {
    let release = issue.release.clone();
    match try_issue(ctx, client, issue).await {
        Ok(r) => Ok(r),
        Err(IssueError::Other(e)) => {
            if let Some(Release(r)) = &release {
                if let Err(re) = r.release(ctx).await {
                    log::error!(
                        "twisted-oauth2: could not release what the grant took after failed \
                         issuance: {re}"
                    );
                }
            }
            Err(e)
        }
        // Revoked by a replay: what was taken stays used.
        Err(IssueError::Revoked(e)) => Err(e),
    }
}

/// The format of `client`'s tokens, or `server_error` when it names one this server does
/// not have (a client created at run time: configured clients are checked at launch).
fn format_of<'a>(
    ctx: &GrantContext<'a>,
    client: &Client,
) -> Result<&'a Arc<dyn AccessTokenFormat>, OAuthError> {
    ctx.formats.for_client(client).ok_or_else(|| {
        log::error!(
            "twisted-oauth2: client `{}` names access token format `{}`, which is not \
             registered",
            crate::error::printable(client.id()),
            crate::error::printable(client.access_token_format().unwrap_or_default())
        );
        OAuthError::with_description(
            crate::error::ErrorCode::ServerError,
            "the server encountered an unexpected condition",
        )
    })
}

/// Runs the [`AfterIssue`] hooks over a fresh response.
async fn after_issue(
    ctx: &GrantContext<'_>,
    issued: &IssuedAccess<'_>,
    response: &mut TokenResponse,
) -> Result<(), OAuthError> {
    for hook in ctx.after_issue {
        hook.after_issue(ctx, issued, response).await?;
    }
    Ok(())
}

async fn try_issue(
    ctx: &GrantContext<'_>,
    client: &Client,
    issue: Issue,
) -> Result<TokenResponse, IssueError> {
    let now = ctx.now();
    let cfg = ctx.config;
    let grant = issue.grant.unwrap_or_else(GrantId::random);
    let audience = if issue.audience.is_empty() {
        vec![ctx.resources.default_audience().clone()]
    } else {
        issue.audience.clone()
    };
    let record = TokenRecord {
        client_id: client.shared_id(),
        scope: issue.scope.clone(),
        subject: issue.subject.clone(),
        extra: issue.extra.clone(),
        grant_id: grant,
        issued_at: now,
        expires_at: now + cfg.access_token_lifetime as i64,
        audience,
    };
    let format = format_of(ctx, client)?;
    let fctx = ctx.format_context().with_client(client);
    let grant_type = issue.grant_type.as_deref().unwrap_or_default();
    let refresh = match &issue.after {
        After::Rotate { old, family } => {
            // The access token is stored before the rotation, so a failed write leaves the
            // presented refresh token active (a retry is not mistaken for reuse), and a
            // revocation racing this request reaches the new access token: the rotation
            // then finds the family tombstoned and the access token is withdrawn.
            let new_refresh = ctx.new_value(TokenKind::Refresh)?;
            // The family keeps every resource granted to it, whatever this access token
            // narrowed to.
            let new_record = TokenRecord {
                issued_at: now,
                expires_at: now + cfg.refresh_token_lifetime as i64,
                ..(**family).clone()
            };
            let access = format.issue(&fctx, &record).await?;
            let mut resp = response(access.clone(), Some(new_refresh.clone()), &issue);
            let issued = IssuedAccess {
                client,
                record: &record,
                token: &access,
                grant_type,
                refreshed: true,
            };
            if let Err(e) = after_issue(ctx, &issued, &mut resp).await {
                withdraw_access(format, &fctx, &access).await;
                return Err(e.into());
            }
            let new_digest = TokenDigest::of(&new_refresh);
            let rotation = if cfg.refresh_token_reuse_interval > 0 {
                let window = ReuseWindow::new(now, cfg.refresh_token_reuse_interval);
                ctx.stores
                    .refresh
                    .rotate_refresh_within(old, &new_digest, &new_record, window)
                    .await
            } else {
                ctx.stores
                    .refresh
                    .rotate_refresh(old, &new_digest, &new_record)
                    .await
            };
            if !matches!(
                rotation,
                Ok(Rotation::Rotated | Rotation::WithinReuseInterval)
            ) {
                // Nobody holds this access token yet: withdraw it.
                withdraw_access(format, &fctx, &access).await;
            }
            match rotation? {
                Rotation::Rotated => {}
                Rotation::WithinReuseInterval => {
                    ctx.audit(AuditEvent::TokenRefreshedWithinReuseInterval {
                        client_id: client.shared_id(),
                        subject: issue.subject.clone(),
                        grant,
                    });
                    return Ok(resp);
                }
                Rotation::AlreadyRotated => {
                    let event = AuditEvent::RefreshReuseDetected {
                        client_id: client.shared_id(),
                        grant: family.grant_id,
                    };
                    revoke_replayed_grant(ctx, family.grant_id, event).await?;
                    return Err(OAuthError::invalid_grant(INVALID_REFRESH).into());
                }
                _ => return Err(OAuthError::invalid_grant(INVALID_REFRESH).into()),
            }
            ctx.audit(AuditEvent::TokenRefreshed {
                client_id: client.shared_id(),
                subject: issue.subject.clone(),
                grant,
            });
            return Ok(resp);
        }
        _ => {
            let with_refresh = issue.refresh_token
                && client.allows_grant(GrantType::REFRESH_TOKEN.as_str())
                && ctx.grant_enabled(GrantType::REFRESH_TOKEN.as_str());
            if with_refresh {
                Some(ctx.new_value(TokenKind::Refresh)?)
            } else {
                None
            }
        }
    };
    // The refresh token is stored first, so stores that track token families know the
    // grant has one when the access token arrives.
    let refresh_digest = refresh.as_deref().map(TokenDigest::of);
    if let Some(rd) = &refresh_digest {
        let rrecord = TokenRecord {
            expires_at: now + cfg.refresh_token_lifetime as i64,
            audience: if issue.granted_resources.is_empty() {
                record.audience.clone()
            } else {
                issue.granted_resources.clone()
            },
            ..record.clone()
        };
        ctx.stores.refresh.put_refresh(rd, &rrecord).await?;
    }
    // Do not leave an orphan refresh token behind (txoauth2 left orphans), nor one of a
    // grant revoked meanwhile.
    let withdraw_refresh = || async {
        if let Some(rd) = &refresh_digest {
            if let Err(re) = ctx.stores.refresh.revoke_refresh(rd).await {
                log::warn!("twisted-oauth2: could not withdraw an unissued refresh token: {re}");
            }
        }
    };
    let access = match format.issue(&fctx, &record).await {
        Ok(a) => a,
        Err(e) => {
            withdraw_refresh().await;
            return Err(e.into());
        }
    };
    let refresh_issued = refresh.is_some();
    let mut resp = response(access.clone(), refresh, &issue);
    let issued = IssuedAccess {
        client,
        record: &record,
        token: &access,
        grant_type,
        refreshed: false,
    };
    if let Err(e) = after_issue(ctx, &issued, &mut resp).await {
        withdraw_access(format, &fctx, &access).await;
        withdraw_refresh().await;
        return Err(e.into());
    }
    ctx.audit(AuditEvent::TokenIssued {
        client_id: client.shared_id(),
        subject: issue.subject.clone(),
        grant,
        grant_type: issue.grant_type.clone().unwrap_or_default(),
        refresh_token: refresh_issued,
    });
    Ok(resp)
}

/// Withdraws an access token nobody holds yet (issuance failed after it was made).
async fn withdraw_access(
    format: &Arc<dyn AccessTokenFormat>,
    fctx: &crate::format::FormatContext<'_>,
    access: &IssuedToken,
) {
    if let Err(e) = format.revoke(fctx, &access.value).await {
        log::warn!("twisted-oauth2: could not withdraw an unissued access token: {e}");
    }
}

fn response(access: IssuedToken, refresh: Option<String>, issue: &Issue) -> TokenResponse {
    let mut r = TokenResponse::new(access.value, access.expires_in, issue.scope.to_string());
    r.token_type = access.token_type;
    r.refresh_token = refresh;
    for (k, v) in &issue.response_members {
        r = r.member(k.clone(), v.clone());
    }
    r
}

/// [`GrantContext::revoke_grant`] for a replayed code or a reused refresh token, logged as
/// the security event it is.
pub(crate) async fn revoke_replayed_grant(
    ctx: &GrantContext<'_>,
    grant: GrantId,
    event: AuditEvent,
) -> Result<(), OAuthError> {
    ctx.audit(event);
    let (access, refresh) = ctx.revoke_grant(grant).await?;
    log::warn!(
        "twisted-oauth2: revoked grant {:032x} ({access} access, {refresh} refresh tokens)",
        grant.0
    );
    Ok(())
}
