//! The consent page: the application's [`OnAuthenticate`] hook, the [`Consent`] it returns,
//! and the [`PendingRequests`] guard its decision route uses to grant or deny.

use std::fmt;

use rocket::http::Status;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder};
use rocket::{FromForm, Sentinel};

use super::response::AuthorizeReply;
use super::OAuth2State;
use crate::endpoint::authorize::{self, Grant, PendingAuthorization};
use crate::error::OAuthError;
use crate::scope::Scope;
use crate::server::AuthorizationServer;

/// The cookie that binds a pending authorization request to the browser that started it
/// (over plain HTTP; over TLS it is [`SECURE_BINDING_COOKIE`]).
pub const BINDING_COOKIE: &str = "twisted_oauth2_ua";

/// The application's consent step (txoauth2's `onAuthenticate`).
///
/// Called by the authorization endpoint with a validated request. Return a [`Consent`]: a
/// page that asks the user (its form posts `request_id`, `csrf_token` and the decision to
/// the app's decision route), or a redirect to the app's login that comes back to a page
/// that loads the request with [`PendingRequests::load`]. Return an [`OAuthError`] to refuse
/// the request (e.g. a scope the app will not grant); it is redirected to the client.
///
/// The request gives access to the app's guards (`req.guard::<User>().await`), cookies
/// and managed state.
///
/// # Implementing it: `#[rocket::async_trait]`
///
/// The trait is declared with `#[rocket::async_trait]`, which is why this page shows
/// `on_authenticate` returning a `Pin<Box<dyn Future …>>`. Write the method as an
/// `async fn` and **add `#[rocket::async_trait]` above the `impl`**. Without it rustc
/// answers ``error[E0195]: lifetime parameters or bounds on method `on_authenticate` do
/// not match the trait declaration``.
///
/// # Example
///
/// Ask a signed-in user, send anyone else to the app's login first (which comes back to
/// the app's consent route, see [`PendingRequests::load`]), and refuse a scope outright:
///
/// ```no_run
/// use rocket::request::Request;
/// use rocket::response::content::RawHtml;
/// use rocket::response::Redirect;
/// use twisted_oauth2::endpoint::authorize::PendingAuthorization;
/// use twisted_oauth2::rocket::{escape_html, Consent, OAuth2, OnAuthenticate};
/// use twisted_oauth2::{ErrorCode, OAuthError};
///
/// struct AskTheUser;
///
/// #[rocket::async_trait] // required: see above
/// impl OnAuthenticate for AskTheUser {
///     async fn on_authenticate(
///         &self,
///         req: &Request<'_>,
///         p: PendingAuthorization,
///     ) -> Result<Consent, OAuthError> {
///         if p.scope.contains("admin") {
///             // Redirected to the client as `error=access_denied`.
///             return Err(OAuthError::with_description(
///                 ErrorCode::AccessDenied,
///                 "admin is not granted to third-party clients",
///             ));
///         }
///         let Some(user) = req.cookies().get_private("user") else {
///             // Not signed in: the login comes back to `GET /consent?request_id=…`.
///             return Ok(Consent::new(Redirect::to(format!(
///                 "/login?request_id={}",
///                 p.request_id // base64url: safe in a query as it is
///             ))));
///         };
///         Ok(Consent::new(RawHtml(format!(
///             r#"<p>Signed in as {user}. <b>{client}</b> asks for <code>{scope}</code>;
///                you will be sent back to <code>{redirect}</code>.</p>
///                <form method="post" action="/consent">
///                  <input type="hidden" name="request_id" value="{rid}">
///                  <input type="hidden" name="csrf_token" value="{csrf}">
///                  <button name="decision" value="allow">Allow</button>
///                  <button name="decision" value="deny">Deny</button>
///                </form>"#,
///             user = escape_html(user.value()),
///             client = escape_html(p.client.name()),
///             scope = escape_html(&p.scope.to_string()),
///             redirect = escape_html(&p.redirect_uri),
///             rid = escape_html(&p.request_id),
///             csrf = escape_html(&p.csrf_token),
///         ))))
///     }
/// }
///
/// #[rocket::launch]
/// fn rocket() -> _ {
///     // The app also mounts its login, `GET /consent` and the decision route `POST /consent`.
///     rocket::build().attach(OAuth2::fairing().on_authenticate(AskTheUser))
/// }
/// ```
///
/// The consent chapter of the guide (`docs/consent.md`, module `guide::consent`) has a
/// complete app around it: login, the consent route after login, the decision route.
#[rocket::async_trait]
pub trait OnAuthenticate: Send + Sync + 'static {
    /// Shows the consent page for `pending`.
    async fn on_authenticate(
        &self,
        req: &Request<'_>,
        pending: PendingAuthorization,
    ) -> Result<Consent, OAuthError>;
}

type RespondFn = Box<dyn for<'r> FnOnce(&'r Request<'_>) -> response::Result<'static> + Send>;

/// Any Rocket response to show for a pending authorization request (a page or a
/// redirect). The library adds `X-Frame-Options: DENY`,
/// `Content-Security-Policy: frame-ancestors 'none'` and `Cache-Control: no-store`.
pub struct Consent(RespondFn);

impl Consent {
    /// Wraps any responder, e.g. `RawHtml(String)`, a `Template`, or a `Redirect`.
    pub fn new<R>(responder: R) -> Self
    where
        R: for<'r> Responder<'r, 'static> + Send + 'static,
    {
        Consent(Box::new(move |req| responder.respond_to(req)))
    }
}

impl fmt::Debug for Consent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Consent(..)")
    }
}

/// Responds with the wrapped responder plus the anti-framing and no-cache headers, so an
/// application's own consent route (e.g. after its login step) is protected the same way.
impl<'r> Responder<'r, 'static> for Consent {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = (self.0)(req)?;
        super::response::page_headers(&mut res);
        Ok(res)
    }
}

/// The cookie name over TLS: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain cannot plant it.
pub const SECURE_BINDING_COOKIE: &str = "__Host-twisted_oauth2_ua";

/// The fields of a consent form: `request_id`, `csrf_token` and `decision`
/// (`allow` or anything else to deny).
///
/// A missing field parses as empty, so a form without `csrf_token` or `request_id` reaches
/// [`PendingRequests::decide`] and gets the library's error page (not Rocket's `422`).
#[derive(Debug, Clone, FromForm)]
pub struct DecisionForm {
    /// [`PendingAuthorization::request_id`].
    #[field(default = String::new())]
    pub request_id: String,
    /// [`PendingAuthorization::csrf_token`].
    #[field(default = String::new())]
    pub csrf_token: String,
    /// `allow` grants; any other value denies.
    #[field(default = String::new())]
    pub decision: String,
}

impl DecisionForm {
    /// Whether the user pressed "allow".
    pub fn allowed(&self) -> bool {
        self.decision == "allow"
    }
}

/// Request guard for the application's decision route: loads, grants and denies pending
/// authorization requests of this browser (txoauth2's `grantAccess` / `denyAccess`).
///
/// A pending request can only be decided from the browser that started it (a cookie
/// binds it) and with its CSRF token; it is single use and expires.
pub struct PendingRequests<'r> {
    server: &'r AuthorizationServer,
    binding: Option<String>,
}

impl fmt::Debug for PendingRequests<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingRequests(..)")
    }
}

impl<'r> PendingRequests<'r> {
    /// The authorization server these pending requests belong to (for a page that also
    /// reads its configuration or its limits).
    pub fn server(&self) -> &'r AuthorizationServer {
        self.server
    }

    /// Loads a pending request for a consent page without consuming it (e.g. after the
    /// login step came back). Failures are an error page.
    pub async fn load(&self, request_id: &str) -> Result<PendingAuthorization, AuthorizeReply> {
        authorize::load(self.server, request_id, self.binding.as_deref())
            .await
            .map_err(AuthorizeReply::Restart)
    }

    /// Grants the request for `subject` (the user id, becomes `sub`), with `scope` narrowed
    /// if given, and `extra` application data kept with the tokens. Returns the redirect
    /// (`303`) to the client with `code`, `state` and `iss`.
    pub async fn grant(
        &self,
        request_id: &str,
        csrf_token: &str,
        subject: impl Into<String>,
        scope: Option<Scope>,
        extra: Option<serde_json::Value>,
    ) -> AuthorizeReply {
        let decision = Grant {
            subject: Some(subject.into()),
            scope,
            extra,
        };
        let record = match self.take(request_id, csrf_token).await {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let r = authorize::grant_taken(self.server, record, decision).await;
        AuthorizeReply::from_result(r, Status::SeeOther)
    }

    /// Denies the request: redirect (`303`) to the client with `access_denied`.
    pub async fn deny(&self, request_id: &str, csrf_token: &str) -> AuthorizeReply {
        let record = match self.take(request_id, csrf_token).await {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        AuthorizeReply::from_result(authorize::deny_taken(self.server, record), Status::SeeOther)
    }

    async fn take(
        &self,
        request_id: &str,
        csrf_token: &str,
    ) -> Result<crate::storage::PendingRecord, AuthorizeReply> {
        authorize::take(self.server, request_id, self.binding.as_deref(), csrf_token)
            .await
            .map_err(AuthorizeReply::Restart)
    }

    /// Decides a submitted [`DecisionForm`] for `subject`.
    pub async fn decide(&self, form: &DecisionForm, subject: impl Into<String>) -> AuthorizeReply {
        if form.allowed() {
            self.grant(&form.request_id, &form.csrf_token, subject, None, None)
                .await
        } else {
            self.deny(&form.request_id, &form.csrf_token).await
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for PendingRequests<'r> {
    type Error = &'static str;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match req
            .rocket()
            .state::<OAuth2State>()
            .and_then(OAuth2State::server)
        {
            Some(server) => request::Outcome::Success(PendingRequests {
                server,
                binding: super::decision::BrowserBinding::read(req, server),
            }),
            None => request::Outcome::Error((
                Status::InternalServerError,
                "the twisted-oauth2 fairing is not attached",
            )),
        }
    }
}

impl Sentinel for PendingRequests<'_> {
    fn abort(rocket: &rocket::Rocket<rocket::Ignite>) -> bool {
        super::fairing_missing(rocket, "PendingRequests")
    }
}
