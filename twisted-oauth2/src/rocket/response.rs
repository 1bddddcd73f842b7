//! Responders: the only place where statuses and headers of OAuth answers are decided.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};

use crate::endpoint::authorize::{AuthorizeError, ClientRedirect};
use crate::error::OAuthError;
use crate::token::TokenResponse;

/// Headers every token, revocation and introspection answer carries (RFC 6749 §5.1).
pub(crate) fn no_store(res: &mut Response<'_>) {
    res.set_header(Header::new("Cache-Control", "no-store"));
    res.set_header(Header::new("Pragma", "no-cache"));
}

/// The `Content-Security-Policy` of every page served through the library; the fairing adds
/// `X-Frame-Options: DENY` to responses carrying it ([`frame_options`]).
pub(crate) const NO_FRAMING_CSP: &str = "frame-ancestors 'none'";

/// Headers of every page served through the library: no framing, no caching.
/// `X-Frame-Options: DENY` is set by the fairing's response hook ([`frame_options`]), which
/// runs after Rocket's Shield: set here, Shield would log a warning on every page because it
/// refuses to overwrite it.
pub(crate) fn page_headers(res: &mut Response<'_>) {
    res.set_header(Header::new("Content-Security-Policy", NO_FRAMING_CSP));
    res.set_header(Header::new("Cache-Control", "no-store"));
    res.set_header(Header::new("Referrer-Policy", "no-referrer"));
}

/// `X-Frame-Options: DENY` (replacing Shield's `SAMEORIGIN`) on a response whose
/// `Content-Security-Policy` forbids framing, for browsers without `frame-ancestors`.
pub(crate) fn frame_options(res: &mut Response<'_>) {
    let no_framing = res
        .headers()
        .get("Content-Security-Policy")
        .any(|v| v.contains(NO_FRAMING_CSP));
    if no_framing {
        res.set_header(Header::new("X-Frame-Options", "DENY"));
    }
}

/// The realm and the protected resource metadata URL of challenges.
fn realm(req: &Request<'_>) -> (String, Option<String>) {
    match req.rocket().state::<super::OAuth2State>() {
        Some(s) => (
            s.realm().to_owned(),
            Some(
                s.resource_metadata_url_for(req.uri().path().as_str())
                    .into_owned(),
            )
            .filter(|m| !m.is_empty()),
        ),
        None => ("twisted-oauth2".into(), None),
    }
}

/// A JSON body with a status and `Cache-Control: no-store`.
pub(crate) fn json<'r>(status: Status, body: String) -> Response<'r> {
    let mut res = Response::build()
        .status(status)
        .header(ContentType::JSON)
        .sized_body(body.len(), Cursor::new(body))
        .finalize();
    no_store(&mut res);
    res
}

/// Answers an [`OAuthError`] directly: its status, JSON body, `no-store`, its
/// `WWW-Authenticate` challenge if it has one, and its extra headers
/// ([`OAuthError::with_header`]).
impl<'r> Responder<'r, 'static> for OAuthError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = Status::from_code(self.status()).unwrap_or(Status::BadRequest);
        let mut res = json(status, self.to_json());
        let (realm, resource_metadata) = realm(req);
        if let Some(v) = self.www_authenticate(&realm, resource_metadata.as_deref()) {
            res.set_header(Header::new("WWW-Authenticate", v));
        }
        extra_headers(&self, &mut res);
        Ok(res)
    }
}

/// Writes an error's extra headers; a `WWW-Authenticate` one is added beside the error's own
/// challenge (several challenges may be offered, RFC 9110 §11.6.1).
pub(crate) fn extra_headers(e: &OAuthError, res: &mut Response<'_>) {
    for (name, value) in e.headers() {
        res.adjoin_header(Header::new(name.to_owned(), value.to_owned()));
    }
}

/// `200 OK` with the token JSON, `Cache-Control: no-store` and `Pragma: no-cache`.
impl<'r> Responder<'r, 'static> for TokenResponse {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        Ok(json(Status::Ok, self.to_json()))
    }
}

/// The answer of the authorization endpoint and of a consent decision.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthorizeReply {
    /// A redirect to the client (`303 See Other` after a form `POST`, else `302 Found`).
    Redirect(ClientRedirect, Status),
    /// An error page for the user about the client's request (the client is not trusted
    /// with the error).
    Page(OAuthError),
    /// An error page telling the user to start again from the application: the pending
    /// request is unknown, expired, already decided or was started in another browser, or
    /// the consent form was incomplete. Nothing is blamed on the client.
    Restart(OAuthError),
}

impl AuthorizeReply {
    pub(crate) fn from_error(e: AuthorizeError, status: Status) -> Self {
        match e {
            AuthorizeError::Page(e) => AuthorizeReply::Page(e),
            AuthorizeError::Redirect { redirect, .. } => AuthorizeReply::Redirect(redirect, status),
        }
    }

    pub(crate) fn from_result(r: Result<ClientRedirect, AuthorizeError>, status: Status) -> Self {
        match r {
            Ok(redirect) => AuthorizeReply::Redirect(redirect, status),
            Err(e) => AuthorizeReply::from_error(e, status),
        }
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        match self {
            AuthorizeReply::Redirect(r, _) => Some(r.location()),
            AuthorizeReply::Page(_) | AuthorizeReply::Restart(_) => None,
        }
    }
}

impl<'r> Responder<'r, 'static> for AuthorizeReply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        // With the built-in consent pages on, error pages use their templates and theme.
        let pages = req.rocket().state::<ErrorPages>();
        match self {
            AuthorizeReply::Redirect(r, status) => {
                let mut res = Response::build()
                    .status(status)
                    .header(Header::new("Location", r.location().to_owned()))
                    .finalize();
                page_headers(&mut res);
                Ok(res)
            }
            AuthorizeReply::Page(e) => Ok(match pages {
                Some(p) => p.error_response(&e, PageKind::ClientRequest),
                None => error_page(&e, PageKind::ClientRequest),
            }),
            AuthorizeReply::Restart(e) => Ok(match pages {
                Some(p) => p.error_response(&e, PageKind::Restart),
                None => error_page(&e, PageKind::Restart),
            }),
        }
    }
}

/// Renders the library's error pages differently (the built-in consent pages register
/// one, so error pages use their templates and theme).
pub(crate) trait RenderErrorPage: Send + Sync + 'static {
    /// The page for `e`.
    fn error_response(&self, e: &OAuthError, kind: PageKind) -> Response<'static>;
}

/// Managed state: the error-page renderer in use, when not the default.
pub(crate) struct ErrorPages(pub(crate) Box<dyn RenderErrorPage>);

impl ErrorPages {
    fn error_response(&self, e: &OAuthError, kind: PageKind) -> Response<'static> {
        self.0.error_response(e, kind)
    }
}

/// What an error page tells the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// The client's authorization request was invalid.
    ClientRequest,
    /// The pending request is gone or not this browser's: start again.
    Restart,
}

/// The library's error page for authorization problems the client must not learn about.
/// Server-side failures (5xx) say so and blame no one.
pub(crate) fn error_page(e: &OAuthError, kind: PageKind) -> Response<'static> {
    let (status, title, advice) = error_text(e, kind);
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body><h1>{title}</h1><p>{advice}</p><p><small><code>{}</code>: {}</small></p></body></html>\n",
        escape(e.code().as_str()),
        escape(e.description().unwrap_or("")),
    );
    html_page(status, body)
}

/// A `text/html` response with the page headers.
pub(crate) fn html_page(status: Status, body: String) -> Response<'static> {
    let mut res = Response::build()
        .status(status)
        .header(ContentType::HTML)
        .sized_body(body.len(), Cursor::new(body))
        .finalize();
    page_headers(&mut res);
    res
}

/// The status, title and advice of an error page: server-side failures (5xx) say so and
/// blame no one; a stale request asks to start again; only a bad client request blames
/// the client.
pub(crate) fn error_text(e: &OAuthError, kind: PageKind) -> (Status, &'static str, &'static str) {
    let status = Status::from_code(e.status()).unwrap_or(Status::BadRequest);
    let (title, advice) = if status.code >= 500 {
        (
            "Please try again later",
            "The authorization server cannot handle this request right now. Nothing was \
             shared with the application. Wait a moment, then start again from the application.",
        )
    } else {
        match kind {
            PageKind::Restart => (
                "This request is no longer valid",
                "This authorization request has expired, was already answered, or was started \
                 in another browser. Nothing was shared with the application. Go back to the \
                 application and start again.",
            ),
            PageKind::ClientRequest => (
                "Authorization error",
                "The application that sent you here made a request this server cannot accept. \
                 Nothing was shared with it. You can close this page.",
            ),
        }
    };
    (status, title, advice)
}

/// Escapes text for HTML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
