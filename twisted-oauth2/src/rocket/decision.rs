//! The Rocket side of [`crate::decision`], the protections every page that decides
//! something shares: [`UserDecision`], a CSRF token kept in a private cookie, for pages
//! without a server-side record per pending decision (device verification, and later
//! flows), checked in constant time and spent once; and [`BrowserBinding`], the per-browser
//! value a server-side record (the code flow's pending request, checked by
//! [`crate::decision::DecisionGuard`] and taken by [`crate::decision::take_once`]) is bound
//! to, so it is decided only from the browser that started it.
//!
//! [`UserDecision::issue`] makes a token, keeps it in a private cookie (authenticated
//! encryption with Rocket's `secret_key`; `HttpOnly`, `SameSite=Strict`, `Secure` over
//! TLS) named after the flow, and returns it for the form's hidden `csrf_token` field.
//! [`UserDecision::verify`] checks the posted token against the cookie and removes the
//! cookie, so a form is accepted once and only from the browser it was shown in. The
//! decision itself must still be single use in its store (as
//! [`crate::device::approve`] is).

use rocket::http::{Cookie, SameSite};
use rocket::request::Request;

use crate::error::OAuthError;
use crate::server::AuthorizationServer;
use crate::token::{is_b64token, TokenKind};

use super::consent::{BINDING_COOKIE, SECURE_BINDING_COOKIE};

/// The CSRF protection of one kind of decision page (its cookie's name part).
#[derive(Debug, Clone, Copy)]
pub struct UserDecision {
    flow: &'static str,
}

impl UserDecision {
    /// The decision of `flow` (letters, digits and `_`; e.g. `"device"`).
    pub const fn new(flow: &'static str) -> Self {
        UserDecision { flow }
    }

    fn cookie_name(&self, secure: bool) -> String {
        if secure {
            format!("__Host-twisted_oauth2_{}_csrf", self.flow)
        } else {
            format!("twisted_oauth2_{}_csrf", self.flow)
        }
    }

    /// A fresh CSRF token for the form about to be shown, remembered by this browser.
    pub fn issue(
        &self,
        req: &Request<'_>,
        server: &AuthorizationServer,
    ) -> Result<String, OAuthError> {
        let token = server.new_value(TokenKind::Handle)?;
        let secure = super::transport(req, server).secure;
        let cookie = Cookie::build((self.cookie_name(secure), token.clone()))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .path("/");
        req.cookies().add_private(cookie);
        Ok(token)
    }

    /// Checks the form's `csrf_token` against this browser's and spends it. `Err` is
    /// `access_denied` (no token issued to this browser, or another one).
    pub fn verify(
        &self,
        req: &Request<'_>,
        server: &AuthorizationServer,
        csrf_token: &str,
    ) -> Result<(), OAuthError> {
        let secure = super::transport(req, server).secure;
        let name = self.cookie_name(secure);
        let expected = req
            .cookies()
            .get_private(&name)
            .map(|c| c.value().to_owned());
        req.cookies().remove_private(Cookie::build(name).path("/"));
        if expected.is_some_and(|e| crate::decision::csrf_matches(&e, csrf_token)) {
            Ok(())
        } else {
            Err(crate::decision::DecisionRefused::BadCsrfToken.into())
        }
    }
}

fn binding_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_BINDING_COOKIE
    } else {
        BINDING_COOKIE
    }
}

/// The user-agent binding of a decision kept server-side (the code flow's pending
/// authorization request): the value of this browser's private binding cookie
/// ([`BINDING_COOKIE`], over TLS [`SECURE_BINDING_COOKIE`]), or a new value that
/// [`BrowserBinding::set`] sends once the record bound to it is stored. Store
/// [`value`](BrowserBinding::value) with the record and compare it with
/// [`BrowserBinding::read`] when the decision is posted. Unlike [`UserDecision`] it is not
/// spent: one browser keeps one binding across requests.
#[derive(Clone)]
pub struct BrowserBinding {
    value: String,
    fresh: bool,
}

impl std::fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserBinding(..)")
    }
}

impl BrowserBinding {
    /// The browser's binding value, if it carries one this server issued. The cookie is
    /// private (authenticated encryption with Rocket's `secret_key`), so a value chosen by
    /// anyone else, or copied from another cookie, is not accepted.
    pub fn read(req: &Request<'_>, server: &AuthorizationServer) -> Option<String> {
        let secure = super::transport(req, server).secure;
        let c = req.cookies().get_private(binding_cookie_name(secure))?;
        let v = c.value();
        (is_b64token(v) && v.len() >= 32).then(|| v.to_owned())
    }

    /// Reads the browser's binding or makes a new value (not yet sent).
    pub fn of(req: &Request<'_>, server: &AuthorizationServer) -> Result<Self, OAuthError> {
        if let Some(value) = Self::read(req, server) {
            return Ok(BrowserBinding {
                value,
                fresh: false,
            });
        }
        Ok(BrowserBinding {
            value: server.new_value(TokenKind::Handle)?,
            fresh: true,
        })
    }

    /// The binding value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Sends the cookie if the value is new: `HttpOnly`, `SameSite=Lax` (it must reach the
    /// authorization endpoint on the client's cross-site redirect), and over TLS `Secure`
    /// with the `__Host-` name.
    pub fn set(&self, req: &Request<'_>, server: &AuthorizationServer) {
        if !self.fresh {
            return;
        }
        let secure = super::transport(req, server).secure;
        let cookie = Cookie::build((binding_cookie_name(secure), self.value.clone()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/");
        req.cookies().add_private(cookie);
    }
}
