//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2; OAuth 2.1; RFC 7636; RFC 9207).
//!
//! [`validate`] checks a request in a fixed order. Problems with `client_id` or
//! `redirect_uri` are shown to the user ([`AuthorizeError::Page`]), never redirected, so the
//! endpoint is no open redirector. Everything later is redirected to the client
//! ([`AuthorizeError::Redirect`]) with `error`, `error_description`, `state` (only if sent)
//! and `iss` — when the client is verified ([`Client::is_verified`]: configured or added
//! by the application). An unverified client (dynamically registered, or a client ID
//! metadata document) picked its redirect URIs itself, so until the request is valid and
//! the user has seen it, its errors are shown as the error page too (RFC 9700 §4.11.2);
//! the decision ([`deny`], errors at [`grant`]) is redirected as for every client. A valid request becomes a [`PendingAuthorization`] stored until the resource
//! owner decides with [`grant`] or [`deny`].

use std::sync::Arc;

use crate::client::{is_insecure_redirect, Client};
use crate::endpoint::{require_secure, Transport};
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::grant_type::{GrantType, ResponseType};
use crate::pending_limit::Admission;
use crate::pkce::{ChallengeMethod, CodeChallenge};
use crate::scope::Scope;
use crate::server::AuthorizationServer;
use crate::storage::{CodeRecord, GrantId, PendingRecord};
use crate::token::{TokenDigest, TokenKind};

/// Where the response parameters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// In the query (`response_type=code`).
    Query,
    /// In the fragment (`response_type=token`, legacy implicit grant).
    Fragment,
}

impl ResponseMode {
    /// Where the parameters of a response to `response_type` go.
    pub fn of(response_type: ResponseType) -> Self {
        if response_type.uses_fragment() {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

/// A redirect back to the client carrying a result or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    location: String,
}

impl ClientRedirect {
    /// Builds the URL: `redirect_uri` with `params` added to its query (keeping the
    /// registered query) or put in the fragment, form-encoded. The redirect URI is used as
    /// it is (the normalised form [`RedirectUri`](crate::client::RedirectUri) validated), not
    /// re-serialised by another parser, so the `Location` is the URI that was matched.
    pub fn new(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Self {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        // Registered URIs never have a fragment; drop one defensively.
        let base = redirect_uri.split('#').next().unwrap_or_default();
        let mut location = String::with_capacity(base.len() + encoded.len() + 1);
        location.push_str(base);
        match mode {
            ResponseMode::Query => {
                match base.find('?') {
                    None => location.push('?'),
                    Some(i) if i + 1 == base.len() || base.ends_with('&') => {}
                    Some(_) => location.push('&'),
                }
                location.push_str(&encoded);
            }
            ResponseMode::Fragment => {
                location.push('#');
                location.push_str(&encoded);
            }
        }
        ClientRedirect { location }
    }

    /// The `Location` header value.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown to the user as an error page (HTTP 400); the client is not trusted with it.
    Page(OAuthError),
    /// Sent back to the client by redirect.
    Redirect {
        /// The redirect.
        redirect: ClientRedirect,
        /// The error, for logging and tests.
        error: OAuthError,
    },
}

impl AuthorizeError {
    /// The wire error.
    pub fn error(&self) -> &OAuthError {
        match self {
            AuthorizeError::Page(e) => e,
            AuthorizeError::Redirect { error, .. } => error,
        }
    }
}

/// A validated authorization request awaiting the resource owner's decision.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// The client.
    pub client: Arc<Client>,
    /// `code`, or `token` for the legacy implicit grant.
    pub response_type: ResponseType,
    /// The requested scope.
    pub scope: Scope,
    /// The redirect URI the result will go to.
    pub redirect_uri: String,
    /// `state`, exactly as sent.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub code_challenge: Option<CodeChallenge>,
    /// The resources the request named (RFC 8707), as the server knows them; empty when it
    /// named none (the token will be for the application's own resource).
    pub resources: Vec<Arc<str>>,
    /// The handle that identifies this request in the decision form (`request_id`).
    pub request_id: String,
    /// The CSRF token the decision form must send back (`csrf_token`).
    pub csrf_token: String,
}

/// An error redirect with `state` (only if sent) and `iss`.
fn redirect_error(
    server: &AuthorizationServer,
    uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: OAuthError,
) -> AuthorizeError {
    let mut params: Vec<(&str, &str)> = vec![("error", error.code().as_str())];
    if let Some(d) = error.description() {
        params.push(("error_description", d));
    }
    if let Some(u) = error.uri() {
        params.push(("error_uri", u));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", server.issuer()));
    AuthorizeError::Redirect {
        redirect: ClientRedirect::new(uri, mode, &params),
        error,
    }
}

/// Validates an authorization request (query of a `GET`, or form body of a `POST`) and
/// stores it as pending, bound to the user agent by `binding` (the value of a cookie the
/// HTTP layer keeps for this browser).
pub async fn validate(
    server: &AuthorizationServer,
    raw: &[u8],
    transport: Transport,
    binding: &str,
) -> Result<PendingAuthorization, AuthorizeError> {
    let request = crate::request::RequestContext::new("GET", "", transport);
    validate_request(server, raw, &request, binding).await
}

/// [`validate`] with the whole HTTP request (method, path, host, headers, transport), as
/// the Rocket adapter calls it, so checks that need more than the parameters (pushed
/// authorization requests, proof of possession) have it.
pub async fn validate_request(
    server: &AuthorizationServer,
    raw: &[u8],
    request: &crate::request::RequestContext<'_>,
    binding: &str,
) -> Result<PendingAuthorization, AuthorizeError> {
    let transport = request.transport;
    let params = Params::parse_keep_duplicates_limited(raw, server.config.max_parameters)
        .map_err(AuthorizeError::Page)?;
    // 1. client_id: shown to the user.
    let client_id = params
        .unique("client_id")
        .map_err(AuthorizeError::Page)?
        .ok_or_else(|| AuthorizeError::Page(OAuthError::missing_parameter("client_id")))?;
    let client = server
        .client_for(client_id, request.client_ip)
        .await
        .map_err(AuthorizeError::Page)?
        .ok_or_else(|| AuthorizeError::Page(OAuthError::invalid_request("unknown client_id")))?;
    // 2. redirect_uri: shown to the user.
    let requested = params
        .unique("redirect_uri")
        .map_err(AuthorizeError::Page)?;
    let (redirect_uri, redirect_uri_sent) = match requested {
        Some(r) => {
            // Parsed strictly and normalised (never repaired): the normal form is what is
            // matched, recorded for the token endpoint and redirected to.
            let Ok(r) = crate::client::RedirectUri::parse(r) else {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(
                    "redirect_uri is not a valid absolute URI (RFC 3986)",
                )));
            };
            if client
                .matching_redirect(&r, server.config.allow_localhost_any_port)
                .is_none()
            {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(
                    "redirect_uri is not registered for this client",
                )));
            }
            (r.as_str().to_owned(), true)
        }
        None => match client.redirect_uris() {
            [only] => (only.as_str().to_owned(), false),
            [] => {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(
                    "the client has no registered redirect_uri",
                )))
            }
            _ => {
                return Err(AuthorizeError::Page(OAuthError::missing_parameter(
                    "redirect_uri",
                )));
            }
        },
    };
    // From here on, errors go back to the client: a verified one. An unverified client
    // (self-registered, a metadata document) chose its own redirect URIs, so redirecting its
    // errors before anyone signed in would make this endpoint a redirector to any site
    // (RFC 9700 §4.11.2): they are shown as the error page instead.
    let trusted_redirect = client.is_verified();
    let first_rt = params.get("response_type");
    let implicit_on =
        GrantType::IMPLICIT.is_compiled_in() && server.grant_enabled(GrantType::IMPLICIT.as_str());
    let mut mode = if first_rt == Some(ResponseType::Token.as_str()) && implicit_on {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    let fail = |mode, state: Option<&str>, e| {
        if trusted_redirect {
            Err(redirect_error(server, &redirect_uri, mode, state, e))
        } else {
            Err(AuthorizeError::Page(e))
        }
    };
    let state = match params.unique("state") {
        Ok(Some(s)) if s.len() > server.config.max_state_length => {
            // Too long to echo back: the error goes without it.
            return fail(
                mode,
                None,
                OAuthError::invalid_request(format!(
                    "state is too long (at most {} bytes)",
                    server.config.max_state_length
                )),
            );
        }
        Ok(s) => s,
        Err(e) => return fail(mode, None, e),
    };
    let response_type = match params.unique("response_type") {
        Ok(Some(rt)) => rt,
        Ok(None) => return fail(mode, state, OAuthError::missing_parameter("response_type")),
        Err(e) => return fail(mode, state, e),
    };
    let rtype = match ResponseType::parse(response_type) {
        Some(ResponseType::Token) if !implicit_on => None,
        other => other,
    };
    let Some(rtype) = rtype else {
        return fail(
            ResponseMode::Query,
            state,
            OAuthError::with_description(
                ErrorCode::UnsupportedResponseType,
                "the response_type is not supported",
            ),
        );
    };
    let grant = rtype.grant_type();
    let grant_type = grant.as_str();
    if grant == GrantType::AUTHORIZATION_CODE {
        mode = ResponseMode::Query;
    }
    if let Err(e) = require_secure(server, transport) {
        return fail(mode, state, e);
    }
    if !client.allows_grant(grant_type)
        || (grant == GrantType::AUTHORIZATION_CODE && !server.grant_enabled(grant_type))
    {
        return fail(
            mode,
            state,
            OAuthError::unauthorized_client("the client is not allowed to use this response_type"),
        );
    }
    let scope = match params.unique("scope") {
        Ok(s) => match server.resolve_scope(s, &client) {
            Ok(s) => s,
            Err(e) => return fail(mode, state, e),
        },
        Err(e) => return fail(mode, state, e),
    };
    // Resource indicators (RFC 8707 §2): every value known, else `invalid_target`.
    let resources = match server.resources().requested(&params) {
        Ok(r) => r,
        Err(e) => return fail(mode, state, e),
    };
    // PKCE (RFC 7636, OAuth 2.1 §4.1.1).
    let challenge = match (
        params.unique("code_challenge"),
        params.unique("code_challenge_method"),
    ) {
        (Err(e), _) | (_, Err(e)) => return fail(mode, state, e),
        (Ok(None), Ok(Some(_))) => {
            return fail(
                mode,
                state,
                OAuthError::invalid_request("code_challenge_method without code_challenge"),
            )
        }
        (Ok(None), Ok(None)) => None,
        (Ok(Some(ch)), Ok(m)) => {
            let method = match m.map(ChallengeMethod::parse) {
                None => {
                    if server.config.pkce_allow_plain {
                        ChallengeMethod::Plain
                    } else {
                        return fail(
                            mode,
                            state,
                            OAuthError::invalid_request(
                                "code_challenge_method is required (S256); plain is not enabled",
                            ),
                        );
                    }
                }
                Some(None) => {
                    return fail(
                        mode,
                        state,
                        OAuthError::invalid_request("unsupported code_challenge_method"),
                    )
                }
                Some(Some(m)) => m,
            };
            if method == ChallengeMethod::Plain && !server.config.pkce_allow_plain {
                return fail(
                    mode,
                    state,
                    OAuthError::invalid_request(
                        "code_challenge_method plain is not allowed; use S256",
                    ),
                );
            }
            match CodeChallenge::new(ch, method) {
                Ok(c) => Some(c),
                Err(e) => return fail(mode, state, e),
            }
        }
    };
    if grant == GrantType::AUTHORIZATION_CODE
        && challenge.is_none()
        && (client.is_public() || server.config.pkce_required_for_all_clients)
    {
        return fail(
            mode,
            state,
            OAuthError::invalid_request("code_challenge is required (PKCE, RFC 7636)"),
        );
    }
    let request_id = server.new_value(TokenKind::Handle).map_err(fail_page)?;
    let csrf_token = server.new_value(TokenKind::Handle).map_err(fail_page)?;
    let handle = TokenDigest::of(&request_id);
    let agent = TokenDigest::of(binding);
    let expires_at = server.now() + server.config.pending_lifetime as i64;
    match server
        .pending_limit
        .admit(handle, agent, expires_at, server.now())
    {
        Admission::Admitted(None) => {}
        Admission::Admitted(Some(dropped)) => {
            // This browser's oldest pending request makes room; it can no longer be decided.
            if let Err(e) = server.stores.pending.take_pending(&dropped).await {
                log::warn!("twisted-oauth2: could not drop an old pending request: {e}");
            }
        }
        Admission::Full => {
            log::warn!(
                "twisted-oauth2: {} pending authorization requests held (max_pending_requests): refusing new ones until some expire",
                server.config.max_pending_requests
            );
            return Err(AuthorizeError::Page(
                OAuthError::with_description(
                    ErrorCode::TemporarilyUnavailable,
                    "too many authorization requests are waiting for a decision; try again in a few minutes",
                )
                .with_status(503),
            ));
        }
    }
    let record = PendingRecord {
        client_id: Arc::from(client.id()),
        response_type: rtype,
        redirect_uri: redirect_uri.clone(),
        redirect_uri_sent,
        scope: scope.clone(),
        state: state.map(str::to_owned),
        challenge: challenge.clone(),
        csrf_token: csrf_token.clone(),
        binding: agent,
        expires_at,
        audience: resources.clone(),
    };
    if let Err(e) = server.stores.pending.put_pending(&handle, &record).await {
        server.pending_limit.release(&handle);
        return fail(mode, state, e.into());
    }
    Ok(PendingAuthorization {
        client,
        response_type: rtype,
        scope,
        redirect_uri,
        state: state.map(str::to_owned),
        code_challenge: challenge,
        resources,
        request_id,
        csrf_token,
    })
}

fn fail_page(e: OAuthError) -> AuthorizeError {
    AuthorizeError::Page(e)
}

/// Turns an error raised by the application's consent hook into the redirect it causes.
pub fn reject(
    server: &AuthorizationServer,
    pending: &PendingAuthorization,
    error: OAuthError,
) -> AuthorizeError {
    let mode = ResponseMode::of(pending.response_type);
    redirect_error(
        server,
        &pending.redirect_uri,
        mode,
        pending.state.as_deref(),
        error,
    )
}

/// Loads a pending request for a consent page without consuming it. It must be bound to
/// the same user agent (`binding`).
pub async fn load(
    server: &AuthorizationServer,
    request_id: &str,
    binding: Option<&str>,
) -> Result<PendingAuthorization, OAuthError> {
    let record = server
        .stores
        .pending
        .pending(&TokenDigest::of(request_id))
        .await?
        .ok_or(crate::decision::DecisionRefused::Unknown)?;
    check_binding(server, &record, binding)?;
    to_pending(server, record, request_id).await
}

fn check_binding(
    server: &AuthorizationServer,
    record: &PendingRecord,
    binding: Option<&str>,
) -> Result<(), OAuthError> {
    record
        .decision_guard()
        .check_browser(server.now(), binding)
        .map_err(OAuthError::from)
}

async fn to_pending(
    server: &AuthorizationServer,
    record: PendingRecord,
    request_id: &str,
) -> Result<PendingAuthorization, OAuthError> {
    let client = server
        .client(&record.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("the client is no longer registered"))?;
    Ok(PendingAuthorization {
        client,
        response_type: record.response_type,
        scope: record.scope,
        redirect_uri: record.redirect_uri,
        state: record.state,
        code_challenge: record.challenge,
        resources: record.audience,
        request_id: request_id.to_owned(),
        csrf_token: record.csrf_token,
    })
}

/// Takes a pending request for a decision: checks the user-agent binding and the CSRF
/// token, then removes it (single use). Every error means the user must start again from
/// the application (the request is unknown, expired, decided, from another browser, or
/// the form's CSRF token is wrong), or is a store failure (5xx).
pub async fn take(
    server: &AuthorizationServer,
    request_id: &str,
    binding: Option<&str>,
    csrf_token: &str,
) -> Result<PendingRecord, OAuthError> {
    let digest = TokenDigest::of(request_id);
    let pending = &server.stores.pending;
    let taken = crate::decision::take_once(
        pending.pending(&digest),
        PendingRecord::decision_guard,
        server.now(),
        binding,
        csrf_token,
        || pending.take_pending(&digest),
    )
    .await;
    match taken {
        Ok(record) => {
            server.pending_limit.release(&digest);
            Ok(record)
        }
        Err(Ok(crate::decision::DecisionRefused::Unknown)) => {
            // Taken by a concurrent decision, or gone: release the slot either way.
            server.pending_limit.release(&digest);
            Err(crate::decision::DecisionRefused::Unknown.into())
        }
        Err(Ok(refused)) => Err(refused.into()),
        Err(Err(e)) => Err(e.into()),
    }
}

/// Drops a pending request that will not be decided (the consent hook refused it).
pub async fn discard(server: &AuthorizationServer, request_id: &str) -> Result<(), OAuthError> {
    let digest = TokenDigest::of(request_id);
    server.pending_limit.release(&digest);
    server.stores.pending.take_pending(&digest).await?;
    Ok(())
}

/// What the resource owner granted.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The resource owner (user id); becomes `sub`.
    pub subject: Option<String>,
    /// A narrower scope than requested, or `None` for the requested scope.
    pub scope: Option<Scope>,
    /// Application data kept with the tokens (txoauth2's `additionalData`).
    pub extra: Option<serde_json::Value>,
}

/// The resource owner's decision: the pending request identified by `request_id` (bound to
/// `binding`, proven by `csrf_token`) is granted. Returns the redirect carrying `code`,
/// `state` and `iss` (or, for the implicit grant, the token in the fragment).
///
/// Errors before the pending request is consumed (unknown, expired, other browser, bad
/// CSRF token) are for an error page; a refused insecure redirect URI is too.
pub async fn grant(
    server: &AuthorizationServer,
    request_id: &str,
    binding: Option<&str>,
    csrf_token: &str,
    decision: Grant,
) -> Result<ClientRedirect, AuthorizeError> {
    let record = take(server, request_id, binding, csrf_token)
        .await
        .map_err(AuthorizeError::Page)?;
    grant_taken(server, record, decision).await
}

/// [`grant`] for a request already [`take`]n.
pub async fn grant_taken(
    server: &AuthorizationServer,
    record: PendingRecord,
    decision: Grant,
) -> Result<ClientRedirect, AuthorizeError> {
    let implicit = record.response_type == ResponseType::Token;
    let mode = if implicit {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    let state = record.state.as_deref();
    let client = match server.client(&record.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(redirect_error(
                server,
                &record.redirect_uri,
                mode,
                state,
                OAuthError::invalid_request("the client is no longer registered"),
            ))
        }
        Err(e) => return Err(redirect_error(server, &record.redirect_uri, mode, state, e)),
    };
    if is_insecure_redirect(&record.redirect_uri)
        && !client.allows_insecure_redirect()
        && !server.config.allow_insecure_request_debug
    {
        return Err(AuthorizeError::Page(OAuthError::invalid_request(
            "refusing to send a code to a plain-HTTP redirect URI",
        )));
    }
    let scope = match decision.scope {
        Some(s) if !s.is_subset(&record.scope) => {
            return Err(redirect_error(
                server,
                &record.redirect_uri,
                mode,
                state,
                OAuthError::invalid_scope("granted scope exceeds the requested scope"),
            ))
        }
        Some(s) => s,
        None => record.scope.clone(),
    };
    let subject: Option<Arc<str>> = decision.subject.map(Arc::from);
    let extra = decision.extra.map(Arc::new);
    let iss = server.issuer().to_owned();
    if implicit {
        return implicit_grant(server, &client, &record, scope, subject, extra).await;
    }
    let code = server
        .new_value(TokenKind::Code)
        .map_err(|e| redirect_error(server, &record.redirect_uri, mode, state, e))?;
    let code_record = CodeRecord {
        client_id: record.client_id.clone(),
        redirect_uri: record.redirect_uri.clone(),
        redirect_uri_sent: record.redirect_uri_sent,
        scope,
        subject,
        extra,
        challenge: record.challenge.clone(),
        grant_id: GrantId::random(),
        expires_at: server.now() + server.config.code_lifetime as i64,
        audience: record.audience.clone(),
    };
    if let Err(e) = server
        .stores
        .codes
        .put_code(&TokenDigest::of(&code), &code_record)
        .await
    {
        return Err(redirect_error(
            server,
            &record.redirect_uri,
            mode,
            state,
            e.into(),
        ));
    }
    server
        .context()
        .audit(crate::audit::AuditEvent::ConsentGranted {
            client_id: code_record.client_id.clone(),
            subject: code_record.subject.clone(),
            grant: code_record.grant_id,
        });
    let mut params: Vec<(&str, &str)> = vec![("code", &code)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &iss));
    Ok(ClientRedirect::new(
        &record.redirect_uri,
        ResponseMode::Query,
        &params,
    ))
}

#[cfg(feature = "implicit-grant")]
async fn implicit_grant(
    server: &AuthorizationServer,
    client: &Client,
    record: &PendingRecord,
    scope: Scope,
    subject: Option<Arc<str>>,
    extra: Option<Arc<serde_json::Value>>,
) -> Result<ClientRedirect, AuthorizeError> {
    let state = record.state.as_deref();
    let mut issue = crate::grant::Issue::new(scope).audience(record.audience.clone());
    issue.subject = subject;
    issue.extra = extra;
    issue.grant_type = Some(crate::grant_type::GrantType::IMPLICIT.as_str().to_owned());
    let t = crate::grant::issue(&server.context(), client, issue)
        .await
        .map_err(|e| {
            redirect_error(
                server,
                &record.redirect_uri,
                ResponseMode::Fragment,
                state,
                e,
            )
        })?;
    let expires = t.expires_in.unwrap_or_default().to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("access_token", &t.access_token),
        ("token_type", "Bearer"),
        ("expires_in", &expires),
        ("scope", &t.scope),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", server.issuer()));
    Ok(ClientRedirect::new(
        &record.redirect_uri,
        ResponseMode::Fragment,
        &params,
    ))
}

#[cfg(not(feature = "implicit-grant"))]
async fn implicit_grant(
    server: &AuthorizationServer,
    _client: &Client,
    record: &PendingRecord,
    _scope: Scope,
    _subject: Option<Arc<str>>,
    _extra: Option<Arc<serde_json::Value>>,
) -> Result<ClientRedirect, AuthorizeError> {
    Err(redirect_error(
        server,
        &record.redirect_uri,
        ResponseMode::Fragment,
        record.state.as_deref(),
        OAuthError::with_description(
            ErrorCode::UnsupportedResponseType,
            "the implicit grant is disabled",
        ),
    ))
}

/// The resource owner denied: `access_denied` to the client (RFC 6749 §4.1.2.1).
pub async fn deny(
    server: &AuthorizationServer,
    request_id: &str,
    binding: Option<&str>,
    csrf_token: &str,
) -> Result<ClientRedirect, AuthorizeError> {
    let record = take(server, request_id, binding, csrf_token)
        .await
        .map_err(AuthorizeError::Page)?;
    deny_taken(server, record)
}

/// [`deny`] for a request already [`take`]n.
pub fn deny_taken(
    server: &AuthorizationServer,
    record: PendingRecord,
) -> Result<ClientRedirect, AuthorizeError> {
    server
        .context()
        .audit(crate::audit::AuditEvent::ConsentDenied {
            client_id: record.client_id.clone(),
        });
    let mode = ResponseMode::of(record.response_type);
    match redirect_error(
        server,
        &record.redirect_uri,
        mode,
        record.state.as_deref(),
        OAuthError::with_description(
            ErrorCode::AccessDenied,
            "the resource owner denied the request",
        ),
    ) {
        AuthorizeError::Redirect { redirect, .. } => Ok(redirect),
        page => Err(page),
    }
}
