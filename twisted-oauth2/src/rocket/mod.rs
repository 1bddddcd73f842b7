//! The Rocket 0.5 adapter: the [`OAuth2`] fairing, the endpoints it mounts, the request
//! guards for protected routes and the consent step.
//!
//! This is the only module that imports `rocket`.
//!
//! ```no_run
//! use rocket::{get, launch, routes};
//! use twisted_oauth2::rocket::{OAuth2, Authorized};
//!
//! twisted_oauth2::required_scope!(ViewClock = "VIEW_CLOCK");
//!
//! #[get("/clock")]
//! fn clock(auth: Authorized<ViewClock>) -> String {
//!     format!("hello {}", auth.client_id)
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(OAuth2::fairing()).mount("/", routes![clock])
//! }
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rocket::request::Request;

use crate::endpoint::Transport;
use crate::server::AuthorizationServer;

mod builtin_consent;
mod consent;
mod fairing;
mod guard;
mod logger;
mod response;
mod routes;

pub use crate::endpoint::authorize::PendingAuthorization;
pub use builtin_consent::{
    escape_html, BuiltinConsent, ConsentPage, ConsentTemplates, DefaultTemplates, ErrorPage,
    ScopeLine, SignedIn, Theme, DEFAULT_CONTENT_SECURITY_POLICY, STYLESHEET,
};
pub use consent::{
    Consent, DecisionForm, OnAuthenticate, PendingRequests, BINDING_COOKIE, SECURE_BINDING_COOKIE,
};
pub use fairing::OAuth2;
pub use guard::{AuthResult, Authorized, NoScope, RequiredScope};
pub use logger::{redact, RedactingLogger};
pub use response::AuthorizeReply;

/// The state the fairing manages: the server and what the guards need.
pub struct OAuth2State {
    server: Arc<AuthorizationServer>,
    scopes_used: Mutex<BTreeSet<String>>,
    scope_routes: Mutex<std::collections::BTreeMap<String, BTreeSet<String>>>,
    resource_metadata: String,
}

impl std::fmt::Debug for OAuth2State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2State")
            .field("server", &self.server)
            .finish()
    }
}

impl OAuth2State {
    /// The authorization server.
    pub fn server(&self) -> &Arc<AuthorizationServer> {
        &self.server
    }

    /// The URL of the protected resource metadata (RFC 9728), sent as `resource_metadata`
    /// in the guards' `WWW-Authenticate` challenges.
    pub fn resource_metadata_url(&self) -> &str {
        &self.resource_metadata
    }

    /// Every scope required by a guard of a mounted route (collected at ignite).
    pub fn scopes_used(&self) -> BTreeSet<String> {
        self.scopes_used
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub(crate) fn register_scope(&self, scope: &str, marker: &str) {
        if let Ok(mut s) = self.scopes_used.lock() {
            s.extend(
                scope
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        if scope.is_empty() {
            return;
        }
        // `#[oauth]` markers are named `__TwistedOAuth2Scope_<handler>`; hand-written
        // markers (`required_scope!`) are named by their type.
        let short = marker.rsplit("::").next().unwrap_or(marker);
        let label = match short.strip_prefix("__TwistedOAuth2Scope_") {
            Some(handler) => format!("route `{handler}`"),
            None => format!("guards of `{short}`"),
        };
        if let Ok(mut m) = self.scope_routes.lock() {
            m.entry(scope.to_owned()).or_default().insert(label);
        }
    }

    /// Every required scope string with the routes (or marker types) requiring it.
    pub(crate) fn scope_routes(&self) -> Vec<(String, Vec<String>)> {
        self.scope_routes
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether the request reached us over TLS: Rocket's own TLS, or a configured trusted
/// proxy header saying `https`.
pub(crate) fn transport(req: &Request<'_>, server: &AuthorizationServer) -> Transport {
    let secure = req.rocket().config().tls_enabled()
        || server
            .config()
            .trusted_proxy_header
            .as_deref()
            .and_then(|h| req.headers().get_one(h))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    Transport { secure }
}
