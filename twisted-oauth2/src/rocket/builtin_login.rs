//! The built-in sign-in for the built-in consent page: a minimal, replaceable login where
//! the application supplies only "check this user's password" (a
//! [`PasswordVerifier`]).
//!
//! Enable it with [`OAuth2::builtin_login`](super::OAuth2::builtin_login) (or
//! [`BuiltinConsent::signing_in`](super::BuiltinConsent::signing_in) for a theme). Under the
//! base path (default `/oauth2`) the fairing then mounts, beside the consent pages:
//!
//! - `GET /login?next=…`: the sign-in form (`username`, `password`);
//! - `POST /login`: checks the form, signs the user in and answers `303 See Other` to `next`;
//! - `POST /logout`: signs out and answers `303` to `/`.
//!
//! What it does for you:
//!
//! - **The session** is a Rocket private cookie (encrypted and authenticated with Rocket's
//!   `secret_key`) holding the user's id and an expiry ([`BuiltinLogin::session_lifetime`],
//!   default 12 hours); `HttpOnly`, `SameSite=Lax`, `Secure` over TLS. It implements
//!   [`SignedIn`](super::SignedIn) for the consent page.
//! - **`next` stays local**: only a path on this server (`/…`, not `//…` nor anything with a
//!   backslash or a control character, at most 2048 bytes) is followed; anything else
//!   sends the user to `/`.
//! - **Login CSRF**: the form carries a token that must match a private cookie set with it,
//!   so another site cannot sign a browser in to an account of its choosing.
//! - **No framing**: `X-Frame-Options: DENY`, `Content-Security-Policy` with
//!   `frame-ancestors 'none'`, `Cache-Control: no-store`, `Referrer-Policy: no-referrer`.
//! - **Throttled attempts**: sign-in attempts are limited per user name and per client
//!   address ([`BuiltinLogin::attempts_per_minute`]), counted in the server's
//!   [`CounterStore`](crate::limits::CounterStore) (in process, or shared by every instance
//!   on Redis storage: see [`crate::limits`]); over the limit the answer is `429` with `Retry-After`, before the password is
//!   checked.
//! - Every field is bounded, and a wrong password and an unknown user get the same answer.
//!
//! Replace it by giving [`OAuth2::builtin_consent`](super::OAuth2::builtin_consent) your own
//! [`SignedIn`](super::SignedIn) and login URL.

use std::sync::Arc;
use std::time::Duration;

use rocket::data::Data;
use rocket::http::{Cookie, Header, Method, SameSite, Status};
use rocket::request::Request;
use rocket::response::Response;
use rocket::route::{Handler, Outcome, Route};

use super::builtin_consent::Inner;
use super::response::escape;
use super::{capped_query, read_body, transport};
use crate::form::Params;
use crate::server::AuthorizationServer;
use crate::storage::PasswordVerifier;
use crate::token::TokenKind;

/// The private cookie holding the signed-in user (`<expiry>.<user id>`).
pub const SESSION_COOKIE: &str = "twisted_oauth2_session";

/// The private cookie holding the sign-in form's CSRF token.
pub const LOGIN_CSRF_COOKIE: &str = "twisted_oauth2_login_csrf";

/// Longest accepted `next` in bytes.
const MAX_NEXT: usize = 2048;
/// Longest accepted user name in bytes.
const MAX_USERNAME: usize = 256;
/// Longest accepted password in bytes.
const MAX_PASSWORD: usize = 1024;

/// The built-in sign-in: the app's [`PasswordVerifier`] and the session and throttling
/// settings. Give it to [`BuiltinConsent::signing_in`](super::BuiltinConsent::signing_in),
/// or its verifier to [`OAuth2::builtin_login`](super::OAuth2::builtin_login).
///
/// ```no_run
/// use twisted_oauth2::rocket::{BuiltinConsent, BuiltinLogin, OAuth2, Theme};
/// use twisted_oauth2::error::StorageError;
/// use twisted_oauth2::storage::PasswordVerifier;
///
/// struct Users;
///
/// #[rocket::async_trait]
/// impl PasswordVerifier for Users {
///     async fn verify(&self, user: &str, password: &str) -> Result<Option<String>, StorageError> {
///         // A real app compares with a stored password hash (argon2, scrypt, bcrypt).
///         Ok((user == "alice" && password == "wonderland").then(|| user.to_owned()))
///     }
/// }
///
/// let login = BuiltinLogin::new(Users).session_lifetime(std::time::Duration::from_secs(3600));
/// let consent = BuiltinConsent::signing_in(login).theme(Theme::with_accent("#047857"));
/// let rocket = rocket::build().attach(OAuth2::fairing().builtin_consent_with(consent));
/// ```
pub struct BuiltinLogin {
    verifier: Arc<dyn PasswordVerifier>,
    session_lifetime: Duration,
    per_user: u32,
    per_address: u32,
}

impl std::fmt::Debug for BuiltinLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinLogin")
            .field("session_lifetime", &self.session_lifetime)
            .field("per_user", &self.per_user)
            .field("per_address", &self.per_address)
            .finish_non_exhaustive()
    }
}

impl BuiltinLogin {
    /// A sign-in checking passwords with `verifier`: `Ok(Some(id))` signs the user in as
    /// `id` (the tokens' `sub`), `Ok(None)` is a wrong user name or password.
    pub fn new(verifier: impl PasswordVerifier) -> Self {
        BuiltinLogin {
            verifier: Arc::new(verifier),
            session_lifetime: Duration::from_secs(12 * 3600),
            per_user: 5,
            per_address: 20,
        }
    }

    /// How long a sign-in lasts. Default 12 hours.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// Sign-in attempts allowed per minute for one user name and for one client address
    /// (an IPv6 /64), each also the burst. Default 5 and 20. `0` is taken as 1.
    pub fn attempts_per_minute(mut self, per_user: u32, per_address: u32) -> Self {
        self.per_user = per_user.max(1);
        self.per_address = per_address.max(1);
        self
    }

    pub(crate) fn into_inner(self) -> LoginInner {
        // A counter store refuses the `max`-th counted attempt; every attempt is counted
        // here, so `n` allowed attempts are a rule of `n + 1`.
        let rule = |name, n: u32| crate::limits::Rule::new(name, n.saturating_add(1), 60);
        LoginInner {
            verifier: self.verifier,
            session_lifetime: self.session_lifetime,
            users: rule("sign_in_user", self.per_user),
            addresses: rule("sign_in_address", self.per_address),
        }
    }
}

/// The parts of the sign-in the routes and the session share.
pub(crate) struct LoginInner {
    verifier: Arc<dyn PasswordVerifier>,
    session_lifetime: Duration,
    users: crate::limits::Rule,
    addresses: crate::limits::Rule,
}

/// The [`SignedIn`](super::SignedIn) of the built-in sign-in: the session cookie's user
/// while it has not expired.
pub(crate) struct Session;

#[rocket::async_trait]
impl super::SignedIn for Session {
    async fn user(&self, req: &Request<'_>) -> Option<String> {
        let now = super::toolkit::server(req).map(|s| s.now())?;
        let cookie = req.cookies().get_private(SESSION_COOKIE)?;
        let (exp, user) = cookie.value().split_once('.')?;
        let exp: i64 = exp.parse().ok()?;
        (exp > now && !user.is_empty()).then(|| user.to_owned())
    }
}

/// `next` when it is a path on this server, else `/`.
pub(crate) fn local_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.len() <= MAX_NEXT
                && n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// `GET` and `POST <base>/login`, `POST <base>/logout`.
#[derive(Clone)]
struct LoginHandler {
    server: Arc<AuthorizationServer>,
    consent: Arc<Inner>,
    login: Arc<LoginInner>,
    logout: bool,
}

impl LoginHandler {
    /// Counts this attempt for its address, then (if that is within its limit) for the user
    /// name: the seconds to wait when one of them is over its limit. A counter store that
    /// cannot be reached lets the attempt through (logged), as at the other limits.
    async fn throttled(
        &self,
        server: &AuthorizationServer,
        address: &str,
        user: &str,
    ) -> Option<u64> {
        for (rule, key) in [(&self.login.addresses, address), (&self.login.users, user)] {
            match server.counters().hit(rule, key).await {
                Ok(None) => {}
                Ok(Some(wait)) => return Some(wait),
                Err(e) => {
                    log::error!(
                        "twisted-oauth2: sign-in limit `{}` not counted: {e}",
                        rule.name
                    );
                }
            }
        }
        None
    }
}

/// What the form says above its fields.
enum Notice<'a> {
    None,
    Error(&'a str),
}

impl LoginHandler {
    fn cookie(&self, req: &Request<'_>, name: &'static str, value: String) -> Cookie<'static> {
        let mut c = Cookie::new(name, value);
        c.set_path("/");
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(transport(req, &self.server).secure);
        c
    }

    /// The form, with a fresh CSRF token in the form and its cookie.
    fn form(
        &self,
        req: &Request<'_>,
        status: Status,
        next: &str,
        notice: Notice<'_>,
        user: &str,
    ) -> Response<'static> {
        let csrf = match self.server.new_value(TokenKind::Handle) {
            Ok(v) => v,
            Err(e) => return self.consent.error_page(&e),
        };
        req.cookies()
            .add_private(self.cookie(req, LOGIN_CSRF_COOKIE, csrf.clone()));
        let notice = match notice {
            Notice::None => String::new(),
            Notice::Error(text) => {
                format!(
                    "<p class=\"unverified\" role=\"alert\">{}</p>",
                    escape(text)
                )
            }
        };
        let main = format!(
            "<main class=\"card\" aria-labelledby=\"title\">\
             <h1 id=\"title\">Sign in</h1>{notice}\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <p><label for=\"username\">User name</label><br>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required \
             maxlength=\"{MAX_USERNAME}\" value=\"{user}\"></p>\
             <p><label for=\"password\">Password</label><br>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required maxlength=\"{MAX_PASSWORD}\"></p>\
             <div class=\"actions\"><button type=\"submit\" class=\"allow\">Sign in</button></div>\
             </form></main>",
            action = escape(self.consent.login_url()),
            csrf = escape(&csrf),
            next = escape(next),
            user = escape(user),
        );
        self.consent.page(status, "Sign in", &main)
    }

    fn see_other(&self, to: &str) -> Response<'static> {
        let mut res = Response::build()
            .status(Status::SeeOther)
            .header(Header::new("Location", to.to_owned()))
            .finalize();
        super::response::page_headers(&mut res);
        res
    }

    async fn show(&self, req: &Request<'_>) -> Response<'static> {
        let query = match capped_query(req, &self.server) {
            Ok(q) => q.unwrap_or(""),
            Err(e) => return self.consent.error_page(&e),
        };
        let params =
            match Params::parse_limited(query.as_bytes(), self.server.config().max_parameters) {
                Ok(p) => p,
                Err(e) => return self.consent.error_page(&e),
            };
        let next = local_next(params.get("next"));
        self.form(req, Status::Ok, next, Notice::None, "")
    }

    async fn submit(&self, req: &Request<'_>, data: Data<'_>) -> Response<'static> {
        let server = &*self.server;
        if !crate::endpoint::is_form_content_type(req.headers().get_one("Content-Type")) {
            let e = crate::OAuthError::invalid_request(
                "the Content-Type must be application/x-www-form-urlencoded",
            );
            return self.consent.error_page(&e);
        }
        let params = match read_body(data, server.config().max_body_size)
            .await
            .and_then(|b| Params::parse_limited(&b, server.config().max_parameters))
        {
            Ok(p) => p,
            Err(e) => return self.consent.error_page(&e),
        };
        let field = |name| params.get(name).unwrap_or("");
        let next = local_next(params.get("next")).to_owned();
        let (user, password) = (field("username"), field("password"));
        let shown_user = if user.len() <= MAX_USERNAME { user } else { "" };
        // Login CSRF: the form's token must be the one its cookie carries.
        let expected = req.cookies().get_private(LOGIN_CSRF_COOKIE);
        let sent = field("csrf_token");
        let csrf_ok = expected.is_some_and(|c| {
            use subtle::ConstantTimeEq;
            !sent.is_empty() && bool::from(c.value().as_bytes().ct_eq(sent.as_bytes()))
        });
        if !csrf_ok {
            return self.form(
                req,
                Status::Forbidden,
                &next,
                Notice::Error("The sign-in form expired. Please sign in again."),
                shown_user,
            );
        }
        if user.is_empty()
            || password.is_empty()
            || user.len() > MAX_USERNAME
            || password.len() > MAX_PASSWORD
        {
            return self.form(
                req,
                Status::BadRequest,
                &next,
                Notice::Error("Enter your user name and password."),
                shown_user,
            );
        }
        let address = crate::rate_limit::limit_key(super::toolkit::client_ip(req, Some(server)));
        let throttled = self
            .throttled(server, &address.to_string(), &user.to_lowercase())
            .await;
        if let Some(wait) = throttled {
            log::warn!("twisted-oauth2: sign-in attempts throttled (retry in {wait} s)");
            let mut res = self.form(
                req,
                Status::TooManyRequests,
                &next,
                Notice::Error("Too many sign-in attempts. Wait a minute, then try again."),
                shown_user,
            );
            res.set_header(Header::new("Retry-After", wait.to_string()));
            return res;
        }
        match self.login.verifier.verify(user, password).await {
            Ok(Some(subject)) if !subject.is_empty() => {
                let exp = server
                    .now()
                    .saturating_add(self.login.session_lifetime.as_secs() as i64);
                req.cookies()
                    .remove_private(Cookie::from(LOGIN_CSRF_COOKIE));
                req.cookies().add_private(self.cookie(
                    req,
                    SESSION_COOKIE,
                    format!("{exp}.{subject}"),
                ));
                self.see_other(&next)
            }
            Ok(_) => self.form(
                req,
                Status::Unauthorized,
                &next,
                Notice::Error("Wrong user name or password."),
                shown_user,
            ),
            Err(e) => {
                log::error!("twisted-oauth2: the password verifier failed: {e}");
                self.form(
                    req,
                    Status::ServiceUnavailable,
                    &next,
                    Notice::Error("Signing in is not possible right now. Please try again later."),
                    shown_user,
                )
            }
        }
    }
}

#[rocket::async_trait]
impl Handler for LoginHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let res = if self.logout {
            req.cookies().remove_private(Cookie::from(SESSION_COOKIE));
            self.see_other("/")
        } else if req.method() == Method::Post {
            self.submit(req, data).await
        } else {
            self.show(req).await
        };
        Outcome::Success(res)
    }
}

/// The routes of the sign-in, to mount under the endpoints path.
pub(crate) fn routes(
    server: &Arc<AuthorizationServer>,
    consent: &Arc<Inner>,
    login: &Arc<LoginInner>,
) -> Vec<Route> {
    let h = LoginHandler {
        server: server.clone(),
        consent: consent.clone(),
        login: login.clone(),
        logout: false,
    };
    let out = LoginHandler {
        logout: true,
        ..h.clone()
    };
    vec![
        Route::new(Method::Get, "/login", h.clone()),
        Route::new(Method::Post, "/login", h),
        Route::new(Method::Post, "/logout", out),
    ]
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(
            local_next(Some("/oauth2/consent?request_id=x")),
            "/oauth2/consent?request_id=x"
        );
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(local_next(None), "/");
    }
}
