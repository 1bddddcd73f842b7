//! The twisted-oauth2 demo: txoauth2's example server (a clock protected by the
//! `VIEW_CLOCK` scope) with a login page, a consent page and a token-info route.
//!
//! Routes: `GET /clock` (scope `VIEW_CLOCK`), `POST /mcp` (an MCP server whose one tool
//! reads the clock; scope `VIEW_CLOCK`; see [`mcp`]), `GET /me` (any token), `GET|POST /login`,
//! `GET|POST /consent`, `GET /client` (a browser client), `GET /demo.css` (the pages'
//! stylesheet), and the library's endpoints under `/oauth2`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Rocket, State};
use serde::Deserialize;
use twisted_oauth2::client::{display_host, is_local_redirect};
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::rocket::{
    AuthorizeReply, Consent, DecisionForm, OAuth2, OAuth2State, OnAuthenticate, PendingRequests,
};
use twisted_oauth2::{oauth, OAuthError, TokenInfo};

pub mod mcp;

/// The session cookie of the demo's login.
const SESSION_COOKIE: &str = "demo_session";

/// How long a demo login lasts by default (the cookie and the server-side session alike).
const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Most live login sessions held; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// A demo user from `[[default.demo.users]]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoUser {
    /// The login name (becomes the token's `sub`).
    pub username: String,
    /// The password.
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct DemoConfig {
    users: Vec<DemoUser>,
    /// Seconds a login lasts (`[default.demo] session_lifetime`). Default 8 hours.
    session_lifetime: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            users: Vec::new(),
            session_lifetime: DEFAULT_SESSION_LIFETIME.as_secs(),
        }
    }
}

/// The demo's users and login sessions. Sessions expire after the configured lifetime
/// (8 hours by default) and at most `MAX_SESSIONS` (10,000) are held.
#[derive(Debug, Default)]
pub struct Users {
    users: Vec<DemoUser>,
    lifetime: Duration,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl Users {
    fn check(&self, username: &str, password: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.users.iter().any(|u| {
            u.username == username && bool::from(u.password.as_bytes().ct_eq(password.as_bytes()))
        })
    }

    /// A new session id for `username`, or `None` when no random id could be made.
    fn start_session(&self, username: &str) -> Option<String> {
        let id = random_id()?;
        let now = Instant::now();
        let mut s = self.sessions.lock().ok()?;
        s.retain(|_, (_, expires)| *expires > now);
        if s.len() >= MAX_SESSIONS {
            let oldest = s
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                s.remove(&k);
            }
        }
        s.insert(id.clone(), (username.to_owned(), now + self.lifetime));
        Some(id)
    }

    fn user_of(&self, session: &str) -> Option<String> {
        let mut s = self.sessions.lock().ok()?;
        match s.get(session) {
            Some((user, expires)) if *expires > Instant::now() => Some(user.clone()),
            Some(_) => {
                s.remove(session);
                None
            }
            None => None,
        }
    }
}

/// A random session id from the OS generator; `None` if the generator failed (the
/// login then fails: never a guessable fallback).
fn random_id() -> Option<String> {
    use twisted_oauth2::token::{RandomTokenGenerator, TokenGenerator, TokenKind};
    RandomTokenGenerator.generate(TokenKind::Handle).ok()
}

/// The logged-in demo user.
#[derive(Debug)]
pub struct LoggedIn(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for LoggedIn {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let user = req
            .rocket()
            .state::<Users>()
            .zip(req.cookies().get(SESSION_COOKIE))
            .and_then(|(users, c)| users.user_of(c.value()));
        match user {
            Some(u) => Outcome::Success(LoggedIn(u)),
            None => Outcome::Forward(rocket::http::Status::Unauthorized),
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The demo's one stylesheet, served at `/demo.css` to every page (and `/client`).
const STYLESHEET: &str = include_str!("../static/demo.css");

fn page(title: &str, body: &str) -> RawHtml<String> {
    RawHtml(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/demo.css\"></head>\
         <body><main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = esc(title)
    ))
}

/// What each scope lets a client do, from `oauth2.scope_descriptions`.
fn scope_descriptions(rocket: &Rocket<rocket::Orbit>) -> BTreeMap<String, String> {
    rocket
        .state::<OAuth2State>()
        .and_then(|s| s.server().map(|s| s.config().scope_descriptions.clone()))
        .unwrap_or_default()
}

/// The note shown wherever an unverified client's name is (consent and login pages).
const UNVERIFIED_NOTE: &str =
    "<p class=\"warn\" role=\"note\"><strong>Unverified application.</strong> \
     Nobody has checked who publishes it: allow only if you trust it.</p>";

/// The consent page for a pending request: the client, each scope with its description,
/// where the answer goes, Allow and Deny.
fn consent_page(
    user: &str,
    p: &PendingAuthorization,
    descriptions: &BTreeMap<String, String>,
) -> RawHtml<String> {
    let scopes: String = p
        .scope
        .iter()
        .map(|s| match descriptions.get(s) {
            Some(d) => format!(
                "<li><span class=\"what\">{}</span> <code>{}</code></li>",
                esc(d),
                esc(s)
            ),
            None => format!("<li><code>{}</code></li>", esc(s)),
        })
        .collect();
    // Who the client is, as far as the server knows: clients that registered themselves
    // (RFC 7591) or that are only a metadata-document URL are not vouched for by anyone.
    let mut notes = String::new();
    if !p.client.is_verified() {
        notes.push_str(UNVERIFIED_NOTE);
    }
    if p.client.is_metadata_document() {
        notes.push_str(&format!(
            "<p class=\"muted\">Published by <strong>{}</strong> (its client ID metadata \
             document).</p>",
            esc(&display_host(p.client.id()))
        ));
    }
    if !p.client.is_verified() && is_local_redirect(&p.redirect_uri) {
        notes.push_str(
            "<p class=\"warn\" role=\"note\">The answer goes to a program on this device. \
             Any program here can use this name: allow only if you just started it.</p>",
        );
    }
    let resources: String = p
        .resources
        .iter()
        .map(|r| format!("<li><code>{}</code></li>", esc(r)))
        .collect();
    if !resources.is_empty() {
        notes.push_str(&format!(
            "<p class=\"muted\">For use at:</p><ul class=\"scopes\">{resources}</ul>"
        ));
    }
    page(
        &format!("Allow {}?", p.client.name()),
        &format!(
            "<p class=\"muted\">Signed in as <strong>{user}</strong></p>{notes}\
             <p><strong>{client}</strong> wants to:</p><ul class=\"scopes\">{scopes}</ul>\
             <p class=\"muted\">If you allow, you will be sent back to <strong>{host}</strong> \
             (<code>{redirect}</code>).</p>\
             <form method=\"post\" action=\"/consent\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <div class=\"actions\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>\
             </div></form>",
            user = esc(user),
            client = esc(p.client.name()),
            // Where the code really goes: the host of the normalised redirect URI as the
            // browser resolves it, in ASCII (punycode for internationalised names).
            host = esc(&display_host(&p.redirect_uri)),
            redirect = esc(&p.redirect_uri),
            rid = esc(&p.request_id),
            csrf = esc(&p.csrf_token),
        ),
    )
}

/// Who is signed in, for the library's device verification page (`/device`).
struct DemoSignedIn;

#[rocket::async_trait]
impl twisted_oauth2::rocket::SignedIn for DemoSignedIn {
    async fn user(&self, req: &Request<'_>) -> Option<String> {
        req.guard::<LoggedIn>().await.succeeded().map(|u| u.0)
    }
}

/// The demo's consent step: log in first if needed, then ask.
struct DemoConsent;

#[rocket::async_trait]
impl OnAuthenticate for DemoConsent {
    async fn on_authenticate(
        &self,
        req: &Request<'_>,
        pending: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        match req.guard::<LoggedIn>().await {
            Outcome::Success(LoggedIn(user)) => Ok(Consent::new(consent_page(
                &user,
                &pending,
                &scope_descriptions(req.rocket()),
            ))),
            _ => {
                let next = format!("/consent?request_id={}", pending.request_id);
                Ok(Consent::new(Redirect::to(rocket::uri!(login_page(
                    next = Some(next)
                )))))
            }
        }
    }
}

/// `GET /clock`: txoauth2's example page, protected by scope `VIEW_CLOCK`.
#[oauth(scope = "VIEW_CLOCK")]
#[get("/clock")]
fn clock() -> RawHtml<String> {
    RawHtml(format!("<html><body>{}</body></html>", clock_seconds()))
}

/// The demo clock: seconds since the Unix epoch (what `/clock` and the MCP tool show).
fn clock_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `GET /me`: the token's information as JSON (`client_id`, `scope`, `sub`, ...).
#[get("/me")]
fn me(info: TokenInfo) -> Json<TokenInfo> {
    Json(info)
}

/// The client of the pending request a login leads to, as the login page names it.
struct Asking {
    name: String,
    verified: bool,
}

/// The login form, posting `next` back; `problem` is shown above it, and `asking` (the
/// client of the pending request `next` leads to, marked when unverified) below the
/// heading.
fn login_form(next: &str, problem: Option<&str>, asking: Option<&Asking>) -> RawHtml<String> {
    let problem = problem
        .map(|p| format!("<p class=\"alert\" role=\"alert\">{}</p>", esc(p)))
        .unwrap_or_default();
    let asking = asking
        .map(|c| {
            format!(
                "<p class=\"asking\">Sign in to continue to <strong>{}</strong>.</p>{}",
                esc(&c.name),
                if c.verified { "" } else { UNVERIFIED_NOTE }
            )
        })
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "{asking}{problem}<form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"muted\">Demo users: alice / wonderland, bob / builder.</p>",
            esc(next)
        ),
    )
}

/// The name of the client asking, when `next` is the consent page of a pending request of
/// this browser (nothing for anything else: `load` checks the binding cookie).
async fn asking_client(next: &str, pending: &PendingRequests<'_>) -> Option<Asking> {
    let origin = rocket::http::uri::Origin::parse(next).ok()?;
    if origin.path() != "/consent" {
        return None;
    }
    let request_id = origin
        .query()?
        .segments()
        .find(|(k, _)| *k == "request_id")?
        .1
        .to_owned();
    let p = pending.load(&request_id).await.ok()?;
    Some(Asking {
        name: p.client.name().to_owned(),
        verified: p.client.is_verified(),
    })
}

/// `GET /login`: the login form. Contract: inputs `username` and `password`.
#[get("/login?<next>")]
async fn login_page(next: Option<String>, pending: PendingRequests<'_>) -> RawHtml<String> {
    let next = safe_next(next.as_deref());
    let asking = asking_client(&next, &pending).await;
    login_form(&next, None, asking.as_ref())
}

#[derive(Debug, FromForm)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Refuses a login `POST` another site made the browser send (login CSRF: a cross-site
/// form posting the attacker's credentials would sign the victim in as the attacker).
/// Browsers label cross-site requests with `Sec-Fetch-Site` and `Origin`; clients that
/// send neither (curl, tests) are not browsers being misled and pass.
pub struct SameOrigin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let h = req.headers();
        let fetch_ok = h.get_one("Sec-Fetch-Site").is_none_or(|v| {
            v.eq_ignore_ascii_case("same-origin") || v.eq_ignore_ascii_case("none")
        });
        let origin_ok = match (h.get_one("Origin"), h.get_one("Host")) {
            (None, _) => true,
            (Some(origin), Some(host)) => rocket::http::uri::Absolute::parse(origin)
                .ok()
                .and_then(|o| o.authority().map(|a| a.to_string()))
                .is_some_and(|a| a.eq_ignore_ascii_case(host)),
            (Some(_), None) => false,
        };
        if fetch_ok && origin_ok {
            Outcome::Success(SameOrigin)
        } else {
            Outcome::Error((rocket::http::Status::Forbidden, ()))
        }
    }
}

/// Failed sign-ins of the demo's `/login`, counted in the library's counter store (in
/// process, or shared by every instance on Redis storage) with the library's public
/// limiter ([`FailureLimit`](twisted_oauth2::limits::FailureLimit)): 5 wrong passwords per
/// user name and client address per minute, 20 per address over all user names, and a
/// ceiling of 100 per user name from every address. Over a limit the answer is `429` with
/// `Retry-After`, before the password is checked; a stranger guessing from their address
/// does not lock the user out from theirs.
pub const LOGIN_LIMIT: twisted_oauth2::limits::FailureLimit =
    twisted_oauth2::limits::FailureLimit::new(
        twisted_oauth2::limits::Rule::new("demo_login", 5, 60),
        twisted_oauth2::limits::Rule::new("demo_login_user", 100, 60),
    )
    .with_address_rule(twisted_oauth2::limits::Rule::new(
        "demo_login_address",
        20,
        60,
    ));

/// The client address as the library's limits see it (the TCP peer, or what a trusted
/// proxy says; never Rocket's `ip_header`).
struct ClientAddress(Option<std::net::IpAddr>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientAddress {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        use twisted_oauth2::rocket::toolkit;
        Outcome::Success(ClientAddress(toolkit::client_ip(
            req,
            toolkit::server(req).map(|s| &**s),
        )))
    }
}

/// What a refused sign-in answers.
#[derive(rocket::Responder)]
enum LoginRefused {
    /// A page with its status.
    Page((rocket::http::Status, RawHtml<String>)),
    /// Too many failed sign-ins: `429` with `Retry-After`.
    #[response(status = 429)]
    Wait(RawHtml<String>, rocket::http::Header<'static>),
}

/// `POST /login`. A wrong password shows the form again, keeping `next` (the pending
/// authorization); a cross-site post is refused; failed sign-ins are limited
/// ([`LOGIN_LIMIT`]).
#[post("/login", data = "<form>")]
async fn login(
    origin: Result<SameOrigin, ()>,
    form: Form<LoginForm>,
    users: &State<Users>,
    cookies: &CookieJar<'_>,
    pending: PendingRequests<'_>,
    address: ClientAddress,
) -> Result<Redirect, LoginRefused> {
    use rocket::http::Status;
    let next = safe_next(form.next.as_deref());
    if origin.is_err() {
        return Err(LoginRefused::Page((
            Status::Forbidden,
            page(
                "Sign in refused",
                "<p>This sign-in was sent from another site, so it was refused. \
                 Open the sign-in page of this site and sign in there.</p>",
            ),
        )));
    }
    let server = pending.server();
    if let Some(wait) = LOGIN_LIMIT.refused(server, &form.username, address.0).await {
        return Err(LoginRefused::Wait(
            login_form(
                &next,
                Some("Too many failed sign-ins. Wait a minute and try again."),
                None,
            ),
            rocket::http::Header::new("Retry-After", wait.to_string()),
        ));
    }
    if !users.check(&form.username, &form.password) {
        LOGIN_LIMIT.failed(server, &form.username, address.0).await;
        // 200 with the form again (a 401 would need a WWW-Authenticate challenge).
        let asking = asking_client(&next, &pending).await;
        return Err(LoginRefused::Page((
            Status::Ok,
            login_form(
                &next,
                Some("Wrong username or password. Try again."),
                asking.as_ref(),
            ),
        )));
    }
    let Some(session) = users.start_session(&form.username) else {
        return Err(LoginRefused::Page((
            Status::ServiceUnavailable,
            login_form(
                &next,
                Some("Signing in is not possible right now. Try again in a moment."),
                None,
            ),
        )));
    };
    cookies.add(
        Cookie::build((SESSION_COOKIE, session))
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(rocket::time::Duration::seconds(
                users.lifetime.as_secs().min(i64::MAX as u64) as i64,
            ))
            .path("/"),
    );
    Ok(Redirect::to(next))
}

/// `GET /consent?request_id=...`: the consent page after the login step.
#[get("/consent?<request_id>")]
async fn consent_after_login(
    request_id: &str,
    user: LoggedIn,
    pending: PendingRequests<'_>,
) -> Result<Consent, AuthorizeReply> {
    let p = pending.load(request_id).await?;
    let descriptions = &pending.server().config().scope_descriptions;
    Ok(Consent::new(consent_page(&user.0, &p, descriptions)))
}

/// `POST /consent`: the decision. Contract: `decision` = `allow` or `deny`.
#[post("/consent", data = "<form>")]
async fn decide(
    form: Form<DecisionForm>,
    user: LoggedIn,
    pending: PendingRequests<'_>,
) -> AuthorizeReply {
    pending.decide(&form, user.0).await
}

/// `GET /client`: a public browser client (PKCE in JavaScript) that signs in and reads
/// `/clock` with the access token: the code flow end to end in a browser.
#[get("/client")]
fn browser_client() -> RawHtml<&'static str> {
    RawHtml(include_str!("../static/client.html"))
}

/// `GET /demo.css`: the stylesheet of every demo page.
#[get("/demo.css")]
fn stylesheet() -> (rocket::http::ContentType, &'static str) {
    (rocket::http::ContentType::CSS, STYLESHEET)
}

/// `GET /`: links.
#[get("/")]
fn index() -> RawHtml<String> {
    page(
        "twisted-oauth2 demo",
        "<p>An OAuth 2.1 authorization server protecting a clock. See the README: start the \
         code flow at <code>/oauth2/authorize</code>, get tokens at <code>/oauth2/token</code>, and \
         read <a href=\"/clock\">/clock</a> with a token holding <code>VIEW_CLOCK</code>.</p>\
         <p><a href=\"/client\">Try the browser client</a> (sign in as alice / wonderland).</p>\
         <p>MCP clients: the Model Context Protocol server is at <code>/mcp</code> (Streamable \
         HTTP, MCP 2025-11-25 and 2026-07-28, one tool, <code>get_time</code>); clients register \
         themselves.</p>",
    )
}

/// Gives the figment a random `secret_key` when it has none and the profile is not
/// `debug` (Rocket refuses to launch a release build without one, because the library's
/// browser-binding cookie is sealed with it). For the demo and benchmarks only: a real
/// deployment sets `secret_key` (the same on every instance; see docs/security.md).
pub fn with_ephemeral_secret_key(figment: Figment) -> Figment {
    let profile = figment.profile().clone();
    // `contains("secret_key")` is no test: Rocket's own default provider always holds one
    // (the zero key), which a release build refuses to launch with.
    let configured = figment
        .extract::<rocket::Config>()
        .is_ok_and(|c| !c.secret_key.is_zero());
    if configured || profile == rocket::Config::DEBUG_PROFILE {
        return figment;
    }
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    eprintln!(
        "twisted-oauth2-demo: no secret_key in the `{profile}` profile: using a random one \
         (consent cookies end with this process; set secret_key in production)"
    );
    figment.merge(("secret_key", key))
}

/// Builds the demo server from a figment (`rocket::Config::figment()` for the real thing).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let demo: DemoConfig = figment.extract_inner("demo").unwrap_or_default();
    rocket::custom(figment)
        .manage(Users {
            users: demo.users,
            lifetime: Duration::from_secs(demo.session_lifetime),
            sessions: Mutex::default(),
        })
        .attach(
            OAuth2::fairing()
                .on_authenticate(DemoConsent)
                // The device flow's page (RFC 8628): a signed-in user enters the code a
                // CLI shows, at `/device` (`[default.oauth2.device]` in Rocket.toml).
                .device_verification(DemoSignedIn, "/login")
                // Audit events (tokens issued, reuse, replay, revocation, failed client
                // authentication, consent) in the log, target `twisted_oauth2::audit`.
                .audit(std::sync::Arc::new(twisted_oauth2::audit::LogAudit))
                // Browser MCP clients (MCP Inspector, web agents) may call /mcp cross-origin.
                .cors_route("/mcp", "POST, GET, OPTIONS")
                // The clock's 401 is readable cross-origin, so its preflight is served too
                // (a browser sends the token only after one).
                .cors_route("/clock", "GET, OPTIONS"),
        )
        .mount(
            "/",
            routes![
                index,
                clock,
                mcp::mcp,
                mcp::mcp_get,
                mcp::mcp_delete,
                me,
                login_page,
                login,
                consent_after_login,
                decide,
                browser_client,
                stylesheet
            ],
        )
}

/// The `next` target as a URI Rocket can send in `Location`: a local path (see
/// [`is_local_path`]) with characters a URI cannot hold (spaces, quotes, non-ASCII)
/// percent-encoded; anything else is `/`.
fn safe_next(next: Option<&str>) -> String {
    const ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'\\')
        .add(b'^')
        .add(b'`')
        .add(b'{')
        .add(b'|')
        .add(b'}');
    next.filter(|n| is_local_path(n))
        .map(|n| percent_encoding::utf8_percent_encode(n, ENCODE).to_string())
        .filter(|n| rocket::http::uri::Origin::parse(n).is_ok())
        .unwrap_or_else(|| "/".into())
}

/// Whether `next` is a path on this site: `/...`, but not `//host` or `/\host` (which
/// browsers read as another host), and without control characters.
fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::{is_local_path, safe_next};

    #[test]
    fn next_must_stay_on_this_site() {
        assert!(is_local_path("/consent?request_id=x"));
        assert!(!is_local_path("//evil.example"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example"));
        assert!(!is_local_path("/\tevil"));
    }

    #[test]
    fn next_is_always_a_sendable_uri() {
        assert_eq!(safe_next(Some("/a b")), "/a%20b");
        assert_eq!(safe_next(Some("/a%20b")), "/a%20b");
        assert_eq!(safe_next(Some("/\u{e9}")), "/%C3%A9");
        assert_eq!(safe_next(Some("/\"")), "/%22");
        for odd in ["/100%", "/%zz", "/a#b", "/[x]", "/\u{0}", "/a?b=c d&e"] {
            let n = safe_next(Some(odd));
            assert!(rocket::http::uri::Origin::parse(&n).is_ok(), "{odd} -> {n}");
        }
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(
            safe_next(Some("/consent?request_id=abc")),
            "/consent?request_id=abc"
        );
    }
}
