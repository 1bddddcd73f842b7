//! A reusable user decision for pages that decide something (device verification, and
//! later flows): a CSRF token bound to this browser, checked in constant time and spent
//! once.
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

use crate::error::{ErrorCode, OAuthError};
use crate::server::AuthorizationServer;
use crate::token::TokenKind;

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
        use subtle::ConstantTimeEq;
        let secure = super::transport(req, server).secure;
        let name = self.cookie_name(secure);
        let expected = req
            .cookies()
            .get_private(&name)
            .map(|c| c.value().to_owned());
        req.cookies().remove_private(Cookie::build(name).path("/"));
        let ok = expected.is_some_and(|e| {
            !csrf_token.is_empty() && bool::from(e.as_bytes().ct_eq(csrf_token.as_bytes()))
        });
        if ok {
            Ok(())
        } else {
            Err(OAuthError::with_description(
                ErrorCode::AccessDenied,
                "the form's CSRF token is missing or wrong",
            ))
        }
    }
}
