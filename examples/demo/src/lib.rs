//! The twisted-oauth2 demo: txoauth2's example server (a clock protected by the
//! `VIEW_CLOCK` scope) with a login page, a consent page and a token-info route.
//!
//! Routes: `GET /clock` (scope `VIEW_CLOCK`), `GET /me` (any token), `GET|POST /login`,
//! `GET|POST /consent`, `GET /client` (a browser client), and the library's endpoints under
//! `/oauth2`.

use std::collections::HashMap;
use std::sync::Mutex;

use rocket::figment::Figment;
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Rocket, State};
use serde::Deserialize;
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::rocket::{
    AuthorizeReply, Consent, DecisionForm, OAuth2, OnAuthenticate, PendingRequests,
};
use twisted_oauth2::{oauth, OAuthError, TokenInfo};

/// The session cookie of the demo's login.
const SESSION_COOKIE: &str = "demo_session";

/// A demo user from `[[default.demo.users]]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoUser {
    /// The login name (becomes the token's `sub`).
    pub username: String,
    /// The password.
    pub password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DemoConfig {
    users: Vec<DemoUser>,
}

/// The demo's users and login sessions.
#[derive(Debug, Default)]
pub struct Users {
    users: Vec<DemoUser>,
    sessions: Mutex<HashMap<String, String>>,
}

impl Users {
    fn check(&self, username: &str, password: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.users.iter().any(|u| {
            u.username == username && bool::from(u.password.as_bytes().ct_eq(password.as_bytes()))
        })
    }

    fn start_session(&self, username: &str) -> String {
        let id = random_id();
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(id.clone(), username.to_owned());
        }
        id
    }

    fn user_of(&self, session: &str) -> Option<String> {
        self.sessions.lock().ok()?.get(session).cloned()
    }
}

fn random_id() -> String {
    use twisted_oauth2::token::{RandomTokenGenerator, TokenGenerator, TokenKind};
    RandomTokenGenerator
        .generate(TokenKind::Handle)
        .unwrap_or_else(|_| "unavailable".into())
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

fn page(title: &str, body: &str) -> RawHtml<String> {
    RawHtml(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}button{{margin-right:1em}}</style>\
         </head><body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title)
    ))
}

/// The consent page for a pending request.
fn consent_page(user: &str, p: &PendingAuthorization) -> RawHtml<String> {
    let scopes: String = p
        .scope
        .iter()
        .map(|s| format!("<li>{}</li>", esc(s)))
        .collect();
    page(
        "Authorize access",
        &format!(
            "<p>Signed in as <b>{user}</b>.</p>\
             <p><b>{client}</b> asks for:</p><ul>{scopes}</ul>\
             <p>You will be sent back to <code>{redirect}</code>.</p>\
             <form method=\"post\" action=\"/consent\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{rid}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
             </form>",
            user = esc(user),
            client = esc(p.client.name()),
            redirect = esc(&p.redirect_uri),
            rid = esc(&p.request_id),
            csrf = esc(&p.csrf_token),
        ),
    )
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
            Outcome::Success(LoggedIn(user)) => Ok(Consent::new(consent_page(&user, &pending))),
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    RawHtml(format!("<html><body>{now}</body></html>"))
}

/// `GET /me`: the token's information as JSON (`client_id`, `scope`, `sub`, ...).
#[get("/me")]
fn me(info: TokenInfo) -> Json<TokenInfo> {
    Json(info)
}

/// `GET /login`: the login form. Contract: inputs `username` and `password`.
#[get("/login?<next>")]
fn login_page(next: Option<String>) -> RawHtml<String> {
    let next = next
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
    page(
        "Sign in",
        &format!(
            "<form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <p><label>Username <input name=\"username\" autocomplete=\"username\"></label></p>\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p>\
             <button type=\"submit\">Sign in</button></form>",
            esc(&next)
        ),
    )
}

#[derive(Debug, FromForm)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`.
#[post("/login", data = "<form>")]
fn login(
    form: Form<LoginForm>,
    users: &State<Users>,
    cookies: &CookieJar<'_>,
) -> Result<Redirect, RawHtml<String>> {
    if !users.check(&form.username, &form.password) {
        return Err(page(
            "Sign in failed",
            "<p>Wrong username or password. <a href=\"/login\">Try again</a>.</p>",
        ));
    }
    let session = users.start_session(&form.username);
    cookies.add(
        Cookie::build((SESSION_COOKIE, session))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/"),
    );
    let next = form
        .next
        .clone()
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
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
    Ok(Consent::new(consent_page(&user.0, &p)))
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

/// `GET /`: links.
#[get("/")]
fn index() -> RawHtml<String> {
    page(
        "twisted-oauth2 demo",
        "<p>See the README: start the code flow at <code>/oauth2/authorize</code>, \
         get tokens at <code>/oauth2/token</code>, and read <a href=\"/clock\">/clock</a> with a \
         token holding <code>VIEW_CLOCK</code>.</p><p><a href=\"/client\">Try the browser client</a> \
         (sign in as alice / wonderland).</p>",
    )
}

/// Builds the demo server from a figment (`rocket::Config::figment()` for the real thing).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let demo: DemoConfig = figment.extract_inner("demo").unwrap_or_default();
    rocket::custom(figment)
        .manage(Users {
            users: demo.users,
            sessions: Mutex::default(),
        })
        .attach(OAuth2::fairing().on_authenticate(DemoConsent))
        .mount(
            "/",
            routes![
                index,
                clock,
                me,
                login_page,
                login,
                consent_after_login,
                decide,
                browser_client
            ],
        )
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
    use super::is_local_path;

    #[test]
    fn next_must_stay_on_this_site() {
        assert!(is_local_path("/consent?request_id=x"));
        assert!(!is_local_path("//evil.example"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example"));
        assert!(!is_local_path("/\tevil"));
    }
}
