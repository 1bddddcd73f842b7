//! Request guards for protected routes (RFC 6750): [`Authorized`] (fails without a valid
//! token holding its scopes), [`AuthResult`] (never fails; the twin of txoauth2's
//! `isAuthorized`), and [`TokenInfo`] itself.
//!
//! A failing guard records its RFC 6750 challenge in the request-local cache; the fairing's
//! response hook writes `WWW-Authenticate` onto the final response, so the application's
//! own catchers keep working and a header set by the application is left alone.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Mutex;

use rocket::http::Status;
use rocket::request::{self, FromRequest, Request};
use rocket::{Ignite, Rocket, Sentinel};

use super::{fairing_missing, OAuth2State};
use crate::endpoint::resource::{BearerRequest, TokenInfo};
use crate::error::{Challenge, ErrorCode, OAuthError};
use crate::form::Params;
use crate::request::RequestContext;

/// The scopes a guard requires, as a space-separated list (all are required).
///
/// `#[oauth(scope = "...")]` implements it on a hidden marker type; write one by hand with
/// [`required_scope!`](crate::required_scope).
pub trait RequiredScope: Send + Sync + 'static {
    /// The required scopes, space-separated; empty for "any valid token".
    const SCOPE: &'static str;
}

/// No particular scope: any valid access token.
#[derive(Debug)]
pub enum NoScope {}

impl RequiredScope for NoScope {
    const SCOPE: &'static str = "";
}

/// Declares a marker type for [`Authorized`] / [`AuthResult`]:
/// `required_scope!(pub ViewClock = "VIEW_CLOCK");`. The scope is checked against
/// RFC 6749 §3.3 ([`is_valid_scope`](crate::scope::is_valid_scope)) at compile time, where
/// the macro is written: a bad scope is a constant-evaluation error naming the marker and the
/// scope.
#[macro_export]
macro_rules! required_scope {
    ($vis:vis $name:ident = $scope:literal) => {
        #[doc = concat!("Requires the scope `", $scope, "`.")]
        #[derive(Debug)]
        $vis enum $name {}
        const _: () = if !$crate::scope::is_valid_scope($scope) {
            ::core::panic!(
                "{}",
                ::core::concat!(
                    "invalid scope in `required_scope!(",
                    ::core::stringify!($name),
                    " = ",
                    ::core::stringify!($scope),
                    ")`: a scope is one or more scope tokens separated by single spaces, each \
                     token printable ASCII other than space, `\"` and `\\` (RFC 6749 section 3.3)",
                )
            );
        };
        impl $crate::rocket::RequiredScope for $name {
            const SCOPE: &'static str = $scope;
        }
    };
}

/// The last challenge a guard produced for this request.
#[derive(Default)]
pub(crate) struct ChallengeSlot(pub(crate) Mutex<Option<OAuthError>>);

/// Set when the token came from the URL query: the response gets `Cache-Control: private`.
#[derive(Default)]
pub(crate) struct QueryTokenUsed(pub(crate) std::sync::atomic::AtomicBool);

/// Set when a request was refused for its `Origin`: the response gets no challenge and no
/// CORS headers.
#[derive(Default)]
pub(crate) struct OriginRefused(pub(crate) std::sync::atomic::AtomicBool);

/// `Err(403)` when the route validates `Origin` and the request's is present and not allowed
/// ([`crate::origin`]).
pub(crate) fn check_origin(req: &Request<'_>, state: &OAuth2State) -> Result<(), OAuthError> {
    if state.origin_paths.is_empty() {
        return Ok(());
    }
    let path = req.uri().path();
    if !state.origin_paths.iter().any(|p| p == path.as_str()) {
        return Ok(());
    }
    let mut origins = req.headers().get("Origin");
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    if origins.next().is_none() && state.origin_policy.allows(origin) {
        return Ok(());
    }
    req.local_cache(OriginRefused::default)
        .0
        .store(true, std::sync::atomic::Ordering::Relaxed);
    log::debug!(
        "twisted-oauth2: refused a request to {} from Origin {} (not allowed; see allowed_origins)",
        crate::error::printable(path.as_str()),
        crate::error::printable(origin)
    );
    Err(OAuthError::invalid_request("the request's Origin is not allowed").with_status(403))
}

fn record(req: &Request<'_>, e: &OAuthError) {
    if let Ok(mut slot) = req.local_cache(ChallengeSlot::default).0.lock() {
        *slot = Some(e.clone());
    }
}

/// Looks the request's token up once per request (no scope check), memoized.
async fn lookup<'r>(
    req: &'r Request<'_>,
    state: &OAuth2State,
) -> &'r Result<TokenInfo, OAuthError> {
    req.local_cache_async(async {
        let validator = &*state.validator;
        let policy = validator.request_policy();
        let headers = super::RocketHeaders(req.headers());
        let forwarded: Vec<&str> = req.headers().get(&policy.client_ip_header).collect();
        let client_ip = validator.client_address(req.remote().map(|a| a.ip()), &forwarded);
        let origin = req.uri();
        let query = origin.query().map(|q| q.as_str());
        let request = RequestContext::new(
            req.method().as_str(),
            origin.path().as_str(),
            super::transport_with(req, policy.trusted_proxy_header.as_deref()),
        )
        .with_query(query)
        .with_host(req.headers().get_one("Host"))
        .with_client_ip(client_ip)
        .with_headers(&headers);
        let mut breq = BearerRequest {
            authorization: req.headers().get_one("Authorization"),
            request,
            ..Default::default()
        };
        let params;
        if policy.allow_access_token_in_query {
            if let Some(q) = query {
                if q.len() as u64 > policy.max_query_length {
                    return Err(OAuthError::query_too_long(policy.max_query_length));
                }
                // A query that is not valid form encoding is a malformed request (RFC 6750
                // §3.1 `invalid_request`), not a request without a query token.
                params =
                    Params::parse_keep_duplicates_limited(q.as_bytes(), policy.max_parameters)?;
                match params.unique("access_token") {
                    Ok(t) => breq.query_token = t,
                    Err(_) => breq.query_duplicate = true,
                }
            }
        }
        let info = validator.authenticate(&breq).await;
        let extracted = match &info {
            Ok(_) => true,
            Err(e) => e.code() == ErrorCode::InvalidToken,
        };
        if extracted && breq.query_token.is_some() {
            // The token came from the query (a second carrier would have been refused).
            req.local_cache(QueryTokenUsed::default)
                .0
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        info
    })
    .await
}

/// Checks the request for `required`; the error carries the challenge for `required`.
pub(crate) async fn check(req: &Request<'_>, required: &str) -> Result<TokenInfo, OAuthError> {
    let Some(state) = req.rocket().state::<OAuth2State>() else {
        log::error!("twisted-oauth2: a protected route ran without the OAuth2 fairing attached");
        return Err(OAuthError::with_description(
            ErrorCode::ServerError,
            "the server encountered an unexpected condition",
        ));
    };
    check_origin(req, state)?;
    let rescope = |e: &OAuthError| match e.challenge() {
        Some(Challenge::Bearer { .. }) => e.clone().with_challenge(Challenge::Bearer {
            scope: (!required.is_empty()).then(|| required.to_owned()),
        }),
        _ => e.clone(),
    };
    match lookup(req, state).await {
        Err(e) => Err(rescope(e)),
        Ok(info) if state.validator.satisfies(&info.scope, required) => Ok(info.clone()),
        Ok(_) => Err(OAuthError::with_description(
            ErrorCode::InsufficientScope,
            "the access token lacks a required scope",
        )
        .with_challenge(Challenge::Bearer {
            scope: Some(required.to_owned()),
        })),
    }
}

fn status_of(e: &OAuthError) -> Status {
    Status::from_code(e.status()).unwrap_or(Status::BadRequest)
}

/// A valid access token holding every scope of `S`. Fails with the RFC 6750 answer:
/// 401 (no token: challenge without error code; bad, expired or revoked token:
/// `invalid_token`), 403 `insufficient_scope`, 400 `invalid_request` (more than one
/// token, or plain HTTP).
///
/// Dereferences to the [`TokenInfo`].
pub struct Authorized<S: RequiredScope = NoScope> {
    info: TokenInfo,
    _scope: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> std::fmt::Debug for Authorized<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorized")
            .field("required", &S::SCOPE)
            .field("info", &self.info)
            .finish()
    }
}

impl<S: RequiredScope> Authorized<S> {
    /// The token's information.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// Takes the token's information.
    pub fn into_info(self) -> TokenInfo {
        self.info
    }
}

impl<S: RequiredScope> Deref for Authorized<S> {
    type Target = TokenInfo;
    fn deref(&self) -> &TokenInfo {
        &self.info
    }
}

#[rocket::async_trait]
impl<'r, S: RequiredScope> FromRequest<'r> for Authorized<S> {
    type Error = OAuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, OAuthError> {
        match check(req, S::SCOPE).await {
            Ok(info) => request::Outcome::Success(Authorized {
                info,
                _scope: PhantomData,
            }),
            Err(e) => {
                record(req, &e);
                request::Outcome::Error((status_of(&e), e))
            }
        }
    }
}

impl<S: RequiredScope> Sentinel for Authorized<S> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if let Some(state) = rocket.state::<OAuth2State>() {
            state.register_scope(S::SCOPE, std::any::type_name::<S>());
            if let Some(e) = super::launch::route_scope(state, S::SCOPE, std::any::type_name::<S>())
            {
                log::error!("twisted-oauth2: {e}");
                return true;
            }
        }
        fairing_missing(rocket, "Authorized")
    }
}

/// The outcome of the token check, handed to the handler instead of failing: the twin of
/// txoauth2's `isAuthorized`. Returning the error from the handler answers it with its
/// status and `WWW-Authenticate` challenge.
pub struct AuthResult<S: RequiredScope = NoScope> {
    result: Result<TokenInfo, OAuthError>,
    _scope: PhantomData<fn() -> S>,
}

impl<S: RequiredScope> std::fmt::Debug for AuthResult<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuthResult").field(&self.result).finish()
    }
}

impl<S: RequiredScope> AuthResult<S> {
    /// Whether the request is authorized.
    pub fn is_authorized(&self) -> bool {
        self.result.is_ok()
    }

    /// The token information, or why the request is not authorized.
    pub fn result(&self) -> Result<&TokenInfo, &OAuthError> {
        self.result.as_ref()
    }

    /// Takes the result.
    pub fn into_result(self) -> Result<TokenInfo, OAuthError> {
        self.result
    }
}

#[rocket::async_trait]
impl<'r, S: RequiredScope> FromRequest<'r> for AuthResult<S> {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        request::Outcome::Success(AuthResult {
            result: check(req, S::SCOPE).await,
            _scope: PhantomData,
        })
    }
}

impl<S: RequiredScope> Sentinel for AuthResult<S> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if let Some(state) = rocket.state::<OAuth2State>() {
            state.register_scope(S::SCOPE, std::any::type_name::<S>());
            if let Some(e) = super::launch::route_scope(state, S::SCOPE, std::any::type_name::<S>())
            {
                log::error!("twisted-oauth2: {e}");
                return true;
            }
        }
        fairing_missing(rocket, "AuthResult")
    }
}

/// [`TokenInfo`] as a guard: a valid access token with any scope (fails like
/// [`Authorized<NoScope>`](Authorized)). Next to `#[oauth]` it reuses the check already made.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for TokenInfo {
    type Error = OAuthError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, OAuthError> {
        match check(req, "").await {
            Ok(info) => request::Outcome::Success(info),
            Err(e) => {
                let already = req
                    .local_cache(ChallengeSlot::default)
                    .0
                    .lock()
                    .map(|s| s.is_some())
                    .unwrap_or(false);
                if !already {
                    record(req, &e);
                }
                request::Outcome::Error((status_of(&e), e))
            }
        }
    }
}

impl Sentinel for TokenInfo {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "TokenInfo")
    }
}
