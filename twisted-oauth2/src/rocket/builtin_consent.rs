//! The built-in consent experience: the library serves the consent page and its error pages,
//! the application says only who is signed in ([`SignedIn`]) and where to sign in.
//!
//! Enable it with [`OAuth2::builtin_consent`](super::OAuth2::builtin_consent) (or
//! [`OAuth2::builtin_consent_with`](super::OAuth2::builtin_consent_with) for a
//! [`Theme`] or your own [`ConsentTemplates`]). The fairing then mounts, under the base
//! path (default `/oauth2`):
//!
//! - `GET`/`POST /authorize`: validates the request; a signed-in user gets the consent page,
//!   anyone else is redirected to the login URL with `next=<base>/consent?request_id=…`;
//! - `GET /consent?request_id=…`: the consent page again (where the login returns);
//! - `POST /consent`: the decision (`request_id`, `csrf_token`, `decision` = `allow` or
//!   `deny`), answered `303 See Other` to the client.
//!
//! The protections are those of [`PendingRequests`](super::PendingRequests): the binding
//! cookie, the per-request CSRF token, single use, expiry, and the headers
//! `X-Frame-Options: DENY`, `Content-Security-Policy` with `frame-ancestors 'none'`,
//! `Cache-Control: no-store` and `Referrer-Policy: no-referrer` on every page.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::response::{Responder, Response};
use rocket::route::{Handler, Outcome, Route};

use super::consent::{Consent, OnAuthenticate};
use super::decision::BrowserBinding;
use super::response::{error_text, escape, html_page, AuthorizeReply, PageKind};
use super::{capped_query, read_body};
use crate::client::{display_host as redirect_host, is_acceptable_logo_uri, is_local_redirect};
use crate::endpoint::authorize::{self, Grant, PendingAuthorization};
use crate::error::OAuthError;
use crate::form::Params;
use crate::server::AuthorizationServer;

/// Who is signed in to the application: the one thing the built-in consent page needs
/// from it.
///
/// Implement it with `#[rocket::async_trait]`; `req` is the browser's request, so the
/// implementation can run the app's own guards or read its session cookie:
///
/// ```
/// use rocket::request::{Outcome, Request};
/// use twisted_oauth2::rocket::SignedIn;
///
/// struct Session;
///
/// #[rocket::async_trait]
/// impl SignedIn for Session {
///     async fn user(&self, req: &Request<'_>) -> Option<String> {
///         // A real app looks the cookie up in its session store.
///         req.cookies().get_private("user").map(|c| c.value().to_owned())
///     }
/// }
/// ```
#[rocket::async_trait]
pub trait SignedIn: Send + Sync + 'static {
    /// The signed-in user's id (it becomes the tokens' `sub`), or `None` to send the
    /// browser to the login URL.
    async fn user(&self, req: &Request<'_>) -> Option<String>;
}

/// The colours and font of the built-in pages, written into CSS custom properties
/// (`--accent`, `--on-accent`, `--bg`, `--surface`, `--text`, `--muted`, `--border`,
/// `--warn-bg`, `--warn-text`, `--font`).
///
/// Values are CSS values such as `#1d4ed8`, `rgb(29 78 216)` or
/// `system-ui, sans-serif`; a value with characters outside letters, digits, spaces and
/// `# % ( ) , . - _ + / '` (or with unbalanced quotes) is ignored and the default is used,
/// so a theme cannot break out of the stylesheet. The defaults meet WCAG AA contrast.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Theme {
    /// Buttons, links and focus rings. Default `#1d4ed8`.
    pub accent: String,
    /// Text on [`Theme::accent`]. Default `#ffffff`.
    pub on_accent: String,
    /// The page background. Default `#f3f4f6`.
    pub background: String,
    /// The card background. Default `#ffffff`.
    pub surface: String,
    /// Body text. Default `#111827`.
    pub text: String,
    /// Secondary text. Default `#4b5563`.
    pub muted: String,
    /// Borders. Default `#d1d5db`.
    pub border: String,
    /// Background of the "unverified application" note. Default `#fef3c7`.
    pub warning_background: String,
    /// Text of the "unverified application" note. Default `#78350f`.
    pub warning_text: String,
    /// The font stack. Default `system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif`.
    pub font: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            accent: "#1d4ed8".into(),
            on_accent: "#ffffff".into(),
            background: "#f3f4f6".into(),
            surface: "#ffffff".into(),
            text: "#111827".into(),
            muted: "#4b5563".into(),
            border: "#d1d5db".into(),
            warning_background: "#fef3c7".into(),
            warning_text: "#78350f".into(),
            font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif".into(),
        }
    }
}

impl Theme {
    /// The default theme with another accent colour (buttons, focus ring).
    pub fn with_accent(accent: impl Into<String>) -> Self {
        Theme {
            accent: accent.into(),
            ..Theme::default()
        }
    }

    /// The `:root { --accent: …; … }` rule of this theme, values checked (see [`Theme`]).
    pub fn css_variables(&self) -> String {
        let d = Theme::default();
        let pairs = [
            ("accent", &self.accent, &d.accent),
            ("on-accent", &self.on_accent, &d.on_accent),
            ("bg", &self.background, &d.background),
            ("surface", &self.surface, &d.surface),
            ("text", &self.text, &d.text),
            ("muted", &self.muted, &d.muted),
            ("border", &self.border, &d.border),
            ("warn-bg", &self.warning_background, &d.warning_background),
            ("warn-text", &self.warning_text, &d.warning_text),
            ("font", &self.font, &d.font),
        ];
        let mut out = String::from(":root{");
        for (name, value, default) in pairs {
            let v = if is_safe_css_value(value) {
                value
            } else {
                log::warn!(
                    "twisted-oauth2: theme value for --{name} ignored: not a plain CSS value"
                );
                default
            };
            out.push_str("--");
            out.push_str(name);
            out.push(':');
            out.push_str(v);
            out.push(';');
        }
        out.push('}');
        out
    }

    /// The whole stylesheet of the built-in pages: [`Theme::css_variables`] plus
    /// [`STYLESHEET`].
    pub fn stylesheet(&self) -> String {
        let mut css = self.css_variables();
        css.push_str(STYLESHEET);
        css
    }
}

fn is_safe_css_value(v: &str) -> bool {
    !v.trim().is_empty()
        && v.len() <= 200
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " #%(),.-_+/'".contains(c))
        && v.matches('\'').count().is_multiple_of(2)
}

/// The built-in pages' stylesheet, without the theme's variables (see
/// [`Theme::stylesheet`]). Templates of your own can reuse it.
pub const STYLESHEET: &str = include_str!("../../templates/consent.css");

/// The default `Content-Security-Policy` of the built-in pages: no scripts, no framing,
/// inline styles, `https` images only.
pub const DEFAULT_CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src https:; base-uri 'none'; frame-ancestors 'none'";

/// One requested scope as the consent page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeLine<'a> {
    /// The scope token, e.g. `VIEW_CLOCK`.
    pub scope: &'a str,
    /// Its text from [`ServerConfig::scope_descriptions`](crate::ServerConfig::scope_descriptions),
    /// if configured.
    pub description: Option<&'a str>,
}

/// What the consent page shows. Every field is raw text: a template must escape it
/// ([`escape_html`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsentPage<'a> {
    /// The signed-in user.
    pub user: &'a str,
    /// The client's display name ([`Client::name`](crate::Client::name)).
    pub client_name: &'a str,
    /// The `client_id`.
    pub client_id: &'a str,
    /// The client's logo, already checked to be an `https` URL.
    pub logo_uri: Option<&'a str>,
    /// Whether the client is verified ([`Client::is_verified`](crate::Client::is_verified));
    /// mark it when not.
    pub verified: bool,
    /// The requested scopes, sorted.
    pub scopes: Vec<ScopeLine<'a>>,
    /// The host (and port) the answer goes to, e.g. `app.example`; for a custom-scheme
    /// redirect URI of a native app, the scheme (`com.example.app:`).
    pub redirect_host: String,
    /// The whole redirect URI.
    pub redirect_uri: &'a str,
    /// For a client described by a client ID metadata document
    /// ([`Client::is_metadata_document`](crate::Client::is_metadata_document)): the host of
    /// its `client_id` URL, who publishes it.
    pub client_id_host: Option<String>,
    /// Whether the answer goes to this device (a loopback or `localhost` redirect URI) for a
    /// client anyone could claim to be (unverified): show a warning.
    pub local_redirect_warning: bool,
    /// The resources the token will be for (RFC 8707), when the request named any.
    pub resources: Vec<&'a str>,
    /// Where the form posts (`<base>/consent`).
    pub action: &'a str,
    /// The hidden field `request_id`.
    pub request_id: &'a str,
    /// The hidden field `csrf_token`.
    pub csrf_token: &'a str,
}

/// What an error page shows. Raw text: escape it ([`escape_html`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ErrorPage<'a> {
    /// The HTTP status (400, 403, 503, ...).
    pub status: u16,
    /// The heading, e.g. "This request is no longer valid".
    pub title: &'a str,
    /// What the user can do.
    pub advice: &'a str,
    /// The error (code and description, for the small print).
    pub error: &'a OAuthError,
}

/// The pages of the built-in consent experience; implement it to replace them (start from
/// [`DefaultTemplates`] and [`STYLESHEET`]).
///
/// The consent page's form must post to [`ConsentPage::action`] with the hidden fields
/// `request_id` and `csrf_token` and buttons `name="decision"` with values `allow` and
/// `deny`. Escape every field with [`escape_html`].
pub trait ConsentTemplates: Send + Sync + 'static {
    /// The consent page's HTML.
    fn consent_page(&self, page: &ConsentPage<'_>, theme: &Theme) -> String;

    /// An error page's HTML.
    fn error_page(&self, page: &ErrorPage<'_>, theme: &Theme) -> String;

    /// The `Content-Security-Policy` of every page; `frame-ancestors 'none'` is added when
    /// missing. Default [`DEFAULT_CONTENT_SECURITY_POLICY`].
    fn content_security_policy(&self) -> Cow<'static, str> {
        Cow::Borrowed(DEFAULT_CONTENT_SECURITY_POLICY)
    }
}

/// The library's styled, accessible, responsive pages (English, `lang="en"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultTemplates;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    escape(s)
}

fn document(title: &str, theme: &Theme, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{css}</style></head>\n<body>\n{main}\n</body></html>\n",
        title = escape(title),
        css = theme.stylesheet(),
    )
}

impl ConsentTemplates for DefaultTemplates {
    fn consent_page(&self, p: &ConsentPage<'_>, theme: &Theme) -> String {
        let initial = p
            .client_name
            .chars()
            .find(|c| c.is_alphanumeric())
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_else(|| "?".into());
        let logo = match p.logo_uri {
            Some(uri) => format!(
                "<img class=\"logo\" src=\"{}\" alt=\"\" width=\"56\" height=\"56\">",
                escape(uri)
            ),
            None => format!(
                "<span class=\"logo logo-letter\" aria-hidden=\"true\">{}</span>",
                escape(&initial)
            ),
        };
        let unverified = if p.verified {
            String::new()
        } else {
            "<p class=\"unverified\" role=\"note\"><strong>Unverified application.</strong> \
             This server has not checked who publishes it. Allow only if you trust it.</p>"
                .to_owned()
        };
        let scopes: String = p
            .scopes
            .iter()
            .map(|s| match s.description {
                Some(d) => format!(
                    "<li><span class=\"scope-text\">{}</span> <code class=\"scope-name\">{}</code></li>",
                    escape(d),
                    escape(s.scope)
                ),
                None => format!(
                    "<li><code class=\"scope-name\">{}</code></li>",
                    escape(s.scope)
                ),
            })
            .collect();
        let publisher = match &p.client_id_host {
            Some(h) => format!(
                "<p class=\"publisher\">Published by <strong>{}</strong> (its client ID \
                 metadata document).</p>",
                escape(h)
            ),
            None => String::new(),
        };
        let local = if p.local_redirect_warning {
            format!(
                "<p class=\"unverified\" role=\"note\"><strong>The answer goes to a program on \
                 this device</strong> ({}). Any program here can claim this name: allow only \
                 if you just started it yourself.</p>",
                escape(&p.redirect_host)
            )
        } else {
            String::new()
        };
        let resources = if p.resources.is_empty() {
            String::new()
        } else {
            let items: String = p
                .resources
                .iter()
                .map(|r| format!("<li><code>{}</code></li>", escape(r)))
                .collect();
            format!("<p class=\"resources-title\">At</p><ul class=\"resources\">{items}</ul>")
        };
        let scopes = if scopes.is_empty() {
            "<p>It asks for no particular permission.</p>".to_owned()
        } else {
            format!(
                "<h2 id=\"asks\">It will be able to</h2><ul class=\"scopes\" aria-labelledby=\"asks\">{scopes}</ul>"
            )
        };
        let main = format!(
            "<main class=\"card\" aria-labelledby=\"title\">\
             <header class=\"client\">{logo}<h1 id=\"title\"><span class=\"client-name\">{name}</span> \
             wants to access your account</h1></header>\
             {unverified}{publisher}{local}\
             <p class=\"who\">Signed in as <strong>{user}</strong></p>\
             {scopes}{resources}\
             <p class=\"redirect\">If you allow, you will be sent back to <strong>{host}</strong>.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <div class=\"actions\">\
             <button type=\"submit\" class=\"allow\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" class=\"deny\" name=\"decision\" value=\"deny\">Deny</button>\
             </div></form>\
             <p class=\"fine\">Client ID <code>{id}</code></p>\
             </main>",
            name = escape(p.client_name),
            user = escape(p.user),
            host = escape(&p.redirect_host),
            action = escape(p.action),
            rid = escape(p.request_id),
            csrf = escape(p.csrf_token),
            id = escape(p.client_id),
        );
        document(&format!("Allow {}?", p.client_name), theme, &main)
    }

    fn error_page(&self, p: &ErrorPage<'_>, theme: &Theme) -> String {
        let main = format!(
            "<main class=\"card\" aria-labelledby=\"title\">\
             <h1 id=\"title\">{title}</h1><p>{advice}</p>\
             <p class=\"fine\"><code>{code}</code>: {desc}</p></main>",
            title = escape(p.title),
            advice = escape(p.advice),
            code = escape(p.error.code().as_str()),
            desc = escape(p.error.description().unwrap_or("")),
        );
        document(p.title, theme, &main)
    }
}

/// The built-in consent experience: who is signed in, where to sign in, the theme and the
/// templates. Give it to [`OAuth2::builtin_consent_with`](super::OAuth2::builtin_consent_with).
///
/// ```no_run
/// # use rocket::request::Request;
/// # use twisted_oauth2::rocket::{BuiltinConsent, OAuth2, SignedIn, Theme};
/// # struct Session;
/// # #[rocket::async_trait]
/// # impl SignedIn for Session {
/// #     async fn user(&self, _: &Request<'_>) -> Option<String> { None }
/// # }
/// let consent = BuiltinConsent::new(Session, "/login").theme(Theme::with_accent("#047857"));
/// let rocket = rocket::build().attach(OAuth2::fairing().builtin_consent_with(consent));
/// ```
pub struct BuiltinConsent {
    signed_in: Arc<dyn SignedIn>,
    login_url: String,
    login: Option<super::builtin_login::BuiltinLogin>,
    theme: Theme,
    templates: Arc<dyn ConsentTemplates>,
}

impl fmt::Debug for BuiltinConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltinConsent")
            .field("login_url", &self.login_url)
            .field("theme", &self.theme)
            .finish_non_exhaustive()
    }
}

impl BuiltinConsent {
    /// The default pages for users known to `signed_in`; anyone else is sent to
    /// `login_url` (a path such as `/login`, or an absolute URL) with the query parameter
    /// `next` added: the local path of the consent page to come back to after signing in.
    pub fn new(signed_in: impl SignedIn, login_url: impl Into<String>) -> Self {
        BuiltinConsent {
            signed_in: Arc::new(signed_in),
            login_url: login_url.into(),
            login: None,
            theme: Theme::default(),
            templates: Arc::new(DefaultTemplates),
        }
    }

    /// The default pages with the library's own sign-in ([`BuiltinLogin`](super::BuiltinLogin)):
    /// anyone not signed in is sent to its form at `<base>/login`, and its session says who
    /// is. Chain [`Self::theme`] or [`Self::templates`] as with [`Self::new`].
    pub fn signing_in(login: super::builtin_login::BuiltinLogin) -> Self {
        BuiltinConsent {
            login: Some(login),
            ..BuiltinConsent::new(super::builtin_login::Session, String::new())
        }
    }

    /// Uses these colours and font.
    pub fn theme(mut self, theme: Theme) -> Self {
        self.theme = theme;
        self
    }

    /// Renders the pages with these templates instead of [`DefaultTemplates`].
    pub fn templates(mut self, templates: impl ConsentTemplates) -> Self {
        self.templates = Arc::new(templates);
        self
    }

    pub(crate) fn into_parts(self) -> (Arc<dyn OnAuthenticate>, Arc<Inner>) {
        let inner = Arc::new(Inner {
            signed_in: self.signed_in,
            login_url: self.login_url,
            login: self.login.map(|l| Arc::new(l.into_inner())),
            login_path: std::sync::OnceLock::new(),
            theme: self.theme,
            templates: self.templates,
            consent_path: std::sync::OnceLock::new(),
        });
        (Arc::new(Hook(inner.clone())), inner)
    }
}

/// The shared parts of the hook, the routes and the error pages.
pub(crate) struct Inner {
    signed_in: Arc<dyn SignedIn>,
    login_url: String,
    /// The built-in sign-in, when it is used.
    login: Option<Arc<super::builtin_login::LoginInner>>,
    /// `<endpoints path>/login` of the built-in sign-in, set at ignite.
    login_path: std::sync::OnceLock<String>,
    theme: Theme,
    templates: Arc<dyn ConsentTemplates>,
    /// `<endpoints path>/consent`, set at ignite.
    consent_path: std::sync::OnceLock<String>,
}

impl Inner {
    /// Where anyone not signed in is sent.
    pub(crate) fn login_url(&self) -> &str {
        match (&self.login, self.login_path.get()) {
            (Some(_), Some(p)) => p,
            (Some(_), None) => "/oauth2/login",
            (None, _) => &self.login_url,
        }
    }

    /// A page of the built-in sign-in with the theme and this CSP.
    pub(crate) fn page(&self, status: Status, title: &str, main: &str) -> Response<'static> {
        self.html(status, document(title, &self.theme, main))
    }

    /// The error page of `e` (restart the flow).
    pub(crate) fn error_page(&self, e: &OAuthError) -> Response<'static> {
        self.error(e, PageKind::Restart)
    }

    fn consent_path(&self) -> &str {
        self.consent_path
            .get()
            .map_or("/oauth2/consent", String::as_str)
    }

    fn csp(&self) -> String {
        let csp = self.templates.content_security_policy();
        if csp.contains("frame-ancestors") {
            csp.into_owned()
        } else {
            format!(
                "{}; frame-ancestors 'none'",
                csp.trim_end_matches([';', ' '])
            )
        }
    }

    /// An HTML response with the page headers and this CSP.
    fn html(&self, status: Status, body: String) -> Response<'static> {
        let mut res = html_page(status, body);
        res.set_header(Header::new("Content-Security-Policy", self.csp()));
        res
    }

    fn error(&self, e: &OAuthError, kind: PageKind) -> Response<'static> {
        let (status, title, advice) = error_text(e, kind);
        let page = ErrorPage {
            status: status.code,
            title,
            advice,
            error: e,
        };
        self.html(status, self.templates.error_page(&page, &self.theme))
    }

    /// The login URL with `next` = this request's consent page.
    fn login_location(&self, request_id: &str) -> String {
        let next = format!(
            "{}?request_id={}",
            self.consent_path(),
            url::form_urlencoded::byte_serialize(request_id.as_bytes()).collect::<String>()
        );
        let login_url = self.login_url();
        let sep = if login_url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}next={}",
            login_url,
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        )
    }

    fn to_login(&self, request_id: &str, status: Status) -> Response<'static> {
        let mut res = Response::build()
            .status(status)
            .header(Header::new("Location", self.login_location(request_id)))
            .finalize();
        super::response::page_headers(&mut res);
        res
    }

    fn consent(
        &self,
        server: &AuthorizationServer,
        user: &str,
        p: &PendingAuthorization,
    ) -> Response<'static> {
        let descriptions = &server.config().scope_descriptions;
        let scopes = p
            .scope
            .iter()
            .map(|s| ScopeLine {
                scope: s,
                description: descriptions.get(s).map(String::as_str),
            })
            .collect();
        let page = ConsentPage {
            user,
            client_name: p.client.name(),
            client_id: p.client.id(),
            logo_uri: p.client.logo_uri().filter(|u| is_acceptable_logo_uri(u)),
            verified: p.client.is_verified(),
            scopes,
            redirect_host: redirect_host(&p.redirect_uri),
            redirect_uri: &p.redirect_uri,
            client_id_host: p
                .client
                .is_metadata_document()
                .then(|| redirect_host(p.client.id())),
            local_redirect_warning: !p.client.is_verified() && is_local_redirect(&p.redirect_uri),
            resources: p.resources.iter().map(|r| &**r).collect(),
            action: self.consent_path(),
            request_id: &p.request_id,
            csrf_token: &p.csrf_token,
        };
        self.html(Status::Ok, self.templates.consent_page(&page, &self.theme))
    }
}

/// Lets [`AuthorizeReply`] render error pages with the templates (registered as
/// [`ErrorPages`](super::response::ErrorPages) state).
pub(crate) struct Pages(pub(crate) Arc<Inner>);

impl super::response::RenderErrorPage for Pages {
    fn error_response(&self, e: &OAuthError, kind: PageKind) -> Response<'static> {
        self.0.error(e, kind)
    }
}

/// The [`OnAuthenticate`] hook of the built-in pages.
struct Hook(Arc<Inner>);

struct Ready(Response<'static>);

impl<'r> Responder<'r, 'static> for Ready {
    fn respond_to(self, _req: &'r Request<'_>) -> rocket::response::Result<'static> {
        Ok(self.0)
    }
}

#[rocket::async_trait]
impl OnAuthenticate for Hook {
    async fn on_authenticate(
        &self,
        req: &Request<'_>,
        pending: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        let Some(server) = super::toolkit::server(req) else {
            return Err(OAuthError::with_description(
                crate::error::ErrorCode::ServerError,
                "the twisted-oauth2 fairing is not attached",
            ));
        };
        let res = match self.0.signed_in.user(req).await {
            Some(user) => self.0.consent(server, &user, &pending),
            None => self.0.to_login(&pending.request_id, Status::Found),
        };
        Ok(Consent::new(Ready(res)))
    }
}

/// `GET` and `POST <base>/consent`.
#[derive(Clone)]
struct ConsentHandler {
    server: Arc<AuthorizationServer>,
    inner: Arc<Inner>,
}

impl ConsentHandler {
    async fn show(&self, req: &Request<'_>) -> Response<'static> {
        let server = &*self.server;
        let query = match capped_query(req, server) {
            Ok(q) => q.unwrap_or(""),
            Err(e) => return self.inner.error(&e, PageKind::Restart),
        };
        let params = match Params::parse_limited(query.as_bytes(), server.config().max_parameters) {
            Ok(p) => p,
            Err(e) => return self.inner.error(&e, PageKind::Restart),
        };
        let request_id = params.get("request_id").unwrap_or("");
        let binding = BrowserBinding::read(req, server);
        let pending = match authorize::load(server, request_id, binding.as_deref()).await {
            Ok(p) => p,
            Err(e) => return self.inner.error(&e, PageKind::Restart),
        };
        match self.inner.signed_in.user(req).await {
            Some(user) => self.inner.consent(server, &user, &pending),
            None => self.inner.to_login(request_id, Status::SeeOther),
        }
    }

    async fn decide(&self, req: &Request<'_>, data: Data<'_>) -> Response<'static> {
        let server = &*self.server;
        if !crate::endpoint::is_form_content_type(req.headers().get_one("Content-Type")) {
            let e = OAuthError::invalid_request(
                "the Content-Type must be application/x-www-form-urlencoded",
            );
            return self.inner.error(&e, PageKind::Restart);
        }
        let params = match read_body(data, server.config().max_body_size)
            .await
            .and_then(|b| Params::parse_limited(&b, server.config().max_parameters))
        {
            Ok(p) => p,
            Err(e) => return self.inner.error(&e, PageKind::Restart),
        };
        let field = |name| params.get(name).unwrap_or("");
        let (request_id, csrf_token) = (field("request_id"), field("csrf_token"));
        let binding = BrowserBinding::read(req, server);
        let Some(user) = self.inner.signed_in.user(req).await else {
            // Signed out meanwhile: sign in again, then come back to the same request.
            return match authorize::load(server, request_id, binding.as_deref()).await {
                Ok(_) => self.inner.to_login(request_id, Status::SeeOther),
                Err(e) => self.inner.error(&e, PageKind::Restart),
            };
        };
        let record = match authorize::take(server, request_id, binding.as_deref(), csrf_token).await
        {
            Ok(r) => r,
            Err(e) => return self.inner.error(&e, PageKind::Restart),
        };
        let result = if field("decision") == "allow" {
            let grant = Grant {
                subject: Some(user),
                ..Grant::default()
            };
            authorize::grant_taken(server, record, grant).await
        } else {
            authorize::deny_taken(server, record)
        };
        match AuthorizeReply::from_result(result, Status::SeeOther) {
            AuthorizeReply::Redirect(r, status) => {
                let mut res = Response::build()
                    .status(status)
                    .header(Header::new("Location", r.location().to_owned()))
                    .finalize();
                super::response::page_headers(&mut res);
                res
            }
            AuthorizeReply::Page(e) => self.inner.error(&e, PageKind::ClientRequest),
            AuthorizeReply::Restart(e) => self.inner.error(&e, PageKind::Restart),
        }
    }
}

#[rocket::async_trait]
impl Handler for ConsentHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let res = if req.method() == Method::Post {
            self.decide(req, data).await
        } else {
            self.show(req).await
        };
        Outcome::Success(res)
    }
}

/// Checks the login URL, records the consent path, and returns the routes to mount under
/// the endpoints path.
pub(crate) fn routes(
    server: &Arc<AuthorizationServer>,
    inner: &Arc<Inner>,
) -> Result<Vec<Route>, String> {
    if inner.login.is_some() {
        let base = server.endpoints_path();
        let _ = inner
            .login_path
            .set(format!("{}/login", base.trim_end_matches('/')));
    }
    let probe = inner.login_location("x");
    if rocket::http::uri::Reference::parse(&probe).is_err() {
        return Err(format!(
            "the built-in consent's login URL `{}` is not a valid URI",
            inner.login_url
        ));
    }
    let path = format!("{}/consent", server.endpoints_path().trim_end_matches('/'));
    let _ = inner.consent_path.set(path);
    let h = ConsentHandler {
        server: server.clone(),
        inner: inner.clone(),
    };
    let mut routes = vec![
        Route::new(Method::Get, "/consent", h.clone()),
        Route::new(Method::Post, "/consent", h),
    ];
    if let Some(login) = &inner.login {
        routes.extend(super::builtin_login::routes(server, inner, login));
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_theme_values_fall_back_to_the_defaults() {
        let t = Theme {
            accent: "red}</style><script>alert(1)</script>".into(),
            font: "'unbalanced".into(),
            ..Theme::default()
        };
        let css = t.css_variables();
        assert!(!css.contains('<') && !css.contains("red}"), "{css}");
        assert!(css.contains("--accent:#1d4ed8;"), "{css}");
        assert!(css.contains("--font:system-ui"), "{css}");
        assert!(Theme::with_accent("rgb(4 120 87)")
            .css_variables()
            .contains("--accent:rgb(4 120 87);"));
    }

    #[test]
    fn local_redirects_are_loopback_or_localhost() {
        assert!(is_local_redirect("http://127.0.0.1:9000/cb"));
        assert!(is_local_redirect("http://127.1:9000/cb"));
        assert!(is_local_redirect("http://[::1]/cb"));
        assert!(is_local_redirect("http://localhost/callback"));
        assert!(!is_local_redirect("https://app.example/cb"));
        assert!(!is_local_redirect("com.example.app:/cb"));
    }

    #[test]
    fn redirect_hosts() {
        assert_eq!(redirect_host("https://app.example/cb"), "app.example");
        assert_eq!(redirect_host("http://127.0.0.1:9000/cb"), "127.0.0.1:9000");
        assert_eq!(redirect_host("com.example.app:/cb"), "com.example.app:");
    }
}
