//! Endpoints as async functions over plain request data and the stores: no HTTP framework
//! here, so protocol tests call them directly.

pub mod authorize;
pub mod client_auth;
pub mod device_authorization;
pub mod introspect;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwks;
pub mod metadata;
pub mod register;
pub mod resource;
pub mod revoke;
pub mod token;

use crate::error::OAuthError;

pub use crate::request::{Headers, RequestContext, Transport};

/// A form `POST` as the HTTP layer received it: the shape of token, revocation and
/// introspection requests. Build it with [`FormRequest::new`] (or a struct literal ending
/// in `..Default::default()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FormRequest<'a> {
    /// The raw body.
    pub body: &'a [u8],
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The raw URL query, if any.
    pub query: Option<&'a str>,
    /// Transport facts.
    pub transport: Transport,
    /// The rest of the HTTP request (method, target, host, headers).
    pub request: RequestContext<'a>,
}

impl<'a> FormRequest<'a> {
    /// A form request with this body, `Content-Type`, `Authorization` and URL query.
    pub fn new(
        body: &'a [u8],
        content_type: Option<&'a str>,
        authorization: Option<&'a str>,
        query: Option<&'a str>,
        transport: Transport,
    ) -> Self {
        FormRequest {
            body,
            content_type,
            authorization,
            query,
            transport,
            request: RequestContext::new("POST", "", transport),
        }
    }

    /// Sets the request context.
    pub fn with_request(mut self, request: RequestContext<'a>) -> Self {
        self.request = request;
        self
    }

    /// The checks every such endpoint makes before reading parameters, in order: HTTPS
    /// (unless the debug override is set), `application/x-www-form-urlencoded`, no
    /// credentials in the URL query (RFC 6749 §2.3.1), and a strict parse of the body (no
    /// repeated parameter, valid percent-encoding and UTF-8).
    pub fn params(
        &self,
        server: &crate::AuthorizationServer,
    ) -> Result<crate::form::Params, OAuthError> {
        require_secure(server, self.transport)?;
        if !is_form_content_type(self.content_type) {
            return Err(OAuthError::invalid_request(
                "the Content-Type must be application/x-www-form-urlencoded",
            ));
        }
        let max = server.config.max_parameters;
        refuse_query_credentials(self.query, max)?;
        crate::form::Params::parse_limited(self.body, max)
    }
}

/// Refuses plain HTTP unless the debug override is set.
pub(crate) fn require_secure(
    server: &crate::AuthorizationServer,
    t: Transport,
) -> Result<(), OAuthError> {
    if t.secure || server.config.allow_insecure_request_debug {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "OAuth 2.0 requires requests over HTTPS",
        ))
    }
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded` (parameters such
/// as `charset=utf-8` allowed; another charset is not).
pub(crate) fn is_form_content_type(ct: Option<&str>) -> bool {
    let Some(ct) = ct else { return false };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return false;
    }
    parts.all(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        !k.trim().eq_ignore_ascii_case("charset")
            || v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    })
}

/// Parameters that must never travel in a URL query at the token, revocation and
/// introspection endpoints (RFC 6749 §2.3.1, §3.2).
pub(crate) const SECRET_PARAMS: &[&str] = &[
    "client_secret",
    "client_id",
    "code",
    "code_verifier",
    "refresh_token",
    "password",
    "token",
    "client_assertion",
];

/// Refuses a query string that carries credentials (or more than `max` parameters).
pub(crate) fn refuse_query_credentials(query: Option<&str>, max: usize) -> Result<(), OAuthError> {
    let Some(q) = query else { return Ok(()) };
    // A malformed query (bad escape, repeated or too many parameters) is refused as such.
    let params = crate::form::Params::parse_limited(q.as_bytes(), max)?;
    if SECRET_PARAMS.iter().any(|p| params.contains(p)) {
        return Err(OAuthError::invalid_request(
            "credentials must be sent in the request body, not the URL query",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_content_type_detection() {
        assert!(is_form_content_type(Some(
            "application/x-www-form-urlencoded"
        )));
        assert!(is_form_content_type(Some(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_form_content_type(Some(
            "application/x-www-form-urlencoded; charset=latin1"
        )));
        assert!(!is_form_content_type(Some("application/json")));
        assert!(!is_form_content_type(Some(
            "application/x-www-form-urlencodedx"
        )));
        assert!(!is_form_content_type(None));
    }

    #[test]
    fn query_credentials_are_refused_rfc6749_2_3_1() {
        assert!(refuse_query_credentials(Some("client_secret=x"), 64).is_err());
        assert!(refuse_query_credentials(Some("foo=bar"), 64).is_ok());
        assert!(refuse_query_credentials(None, 64).is_ok());
        assert!(refuse_query_credentials(Some("a=1&b=2"), 1).is_err());
    }
}
