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

use crate::server::AuthorizationServer;

mod builtin_consent;
mod builtin_login;
mod consent;
mod decision;
mod device;
mod device_page;
mod fairing;
mod guard;
mod launch;
mod logger;
mod register;
mod response;
mod routes;
#[cfg(feature = "jwt")]
mod signing_keys;
pub mod toolkit;

pub(crate) use toolkit::{
    capped_query, read_body, request_context, transport, transport_with, CorsEndpoint, Preflight,
    RocketHeaders,
};

pub use crate::endpoint::authorize::PendingAuthorization;
pub use builtin_consent::{
    escape_html, BuiltinConsent, ConsentPage, ConsentTemplates, DefaultTemplates, ErrorPage,
    ScopeLine, SignedIn, Theme, DEFAULT_CONTENT_SECURITY_POLICY, STYLESHEET,
};
pub use builtin_login::{BuiltinLogin, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
pub use consent::{
    Consent, DecisionForm, OnAuthenticate, PendingRequests, BINDING_COOKIE, SECURE_BINDING_COOKIE,
};
pub use decision::{BrowserBinding, UserDecision};
pub use fairing::OAuth2;
pub use guard::{AuthResult, Authorized, NoScope, RequiredScope};
pub use logger::{redact, RedactingLogger};
pub use response::AuthorizeReply;

/// The state the fairing manages: the authorization server (none in resource-server-only
/// mode) and what the guards need.
///
/// The guards ([`Authorized`], [`AuthResult`], `#[oauth]`) read only the
/// [`validator`](Self::validator) and the settings held here (realm, origin policy, CORS
/// origins, the RFC 9728 metadata URL), never the authorization server, so they work the
/// same with a validator of another kind and no authorization server at all
/// ([`OAuth2::resource_server`]).
pub struct OAuth2State {
    server: Option<Arc<AuthorizationServer>>,
    /// What the guards check tokens with (the server, as a [`TokenValidator`], unless
    /// another was plugged in).
    ///
    /// [`TokenValidator`]: crate::validation::TokenValidator
    validator: Arc<dyn crate::validation::TokenValidator>,
    scopes_used: Mutex<BTreeSet<String>>,
    scope_routes: Mutex<std::collections::BTreeMap<String, BTreeSet<String>>>,
    /// The RFC 9728 document's URL; empty when none is served.
    resource_metadata: String,
    /// The realm of the challenges.
    realm: String,
    /// Which `Origin` values checked routes accept.
    origin_policy: crate::origin::OriginPolicy,
    /// `cors_allowed_origins`.
    cors_allowed_origins: Vec<String>,
    /// The application's routes opened to browser clients (`OAuth2::cors_route`).
    cors_paths: Vec<String>,
    /// The routes whose `Origin` is validated (`cors_route` and `check_origin`).
    origin_paths: Vec<String>,
}

impl std::fmt::Debug for OAuth2State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2State")
            .field("server", &self.server)
            .field("resource_metadata", &self.resource_metadata)
            .finish_non_exhaustive()
    }
}

impl OAuth2State {
    /// The authorization server, or `None` in resource-server-only mode
    /// ([`OAuth2::resource_server`], or an `[oauth2.resource_server]` table), where there is
    /// none.
    pub fn server(&self) -> Option<&Arc<AuthorizationServer>> {
        self.server.as_ref()
    }

    /// What protected routes ([`Authorized`], [`AuthResult`], `#[oauth]`) validate tokens
    /// with: a [`TokenValidator`](crate::validation::TokenValidator), the authorization
    /// server unless another was plugged in.
    pub fn validator(&self) -> &Arc<dyn crate::validation::TokenValidator> {
        &self.validator
    }

    /// The URL of the protected resource metadata (RFC 9728), sent as `resource_metadata`
    /// in the guards' `WWW-Authenticate` challenges; empty when no document is served (a
    /// resource-server-only fairing whose validator describes no
    /// [`ProtectedResource`](crate::validation::ProtectedResource)).
    pub fn resource_metadata_url(&self) -> &str {
        &self.resource_metadata
    }

    /// The `resource_metadata` URL of the challenges of a request to `path`: that of the
    /// route's own resource when `path` is under a
    /// [`route_resources`](crate::config::ServerConfig::route_resources) entry, else
    /// [`Self::resource_metadata_url`].
    pub fn resource_metadata_url_for(&self, path: &str) -> std::borrow::Cow<'_, str> {
        match &self.server {
            Some(server) if server.resources().route_resource(path).is_some() => {
                crate::endpoint::metadata::protected_resource_metadata_url_for(server, path).into()
            }
            _ => self.resource_metadata.as_str().into(),
        }
    }

    /// The realm of the guards' challenges.
    pub(crate) fn realm(&self) -> &str {
        &self.realm
    }

    /// The `Access-Control-Allow-Origin` value for the request's `Origin`
    /// ([`toolkit::cors_origin`]).
    pub(crate) fn cors_origin(&self, req: &rocket::Request<'_>) -> Option<String> {
        toolkit::cors_origin_in(req, &self.cors_allowed_origins)
    }

    /// The launch banner's line on `Origin` validation.
    pub(crate) fn origin_check_line(&self) -> String {
        if self.origin_paths.is_empty() {
            "  origin check: off (no route opened with cors_route or check_origin)".to_owned()
        } else {
            format!(
                "  origin check: {} (allowed: {})",
                self.origin_paths.join(", "),
                self.origin_policy.describe()
            )
        }
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

/// Logs the abort reason when a guard is used without the fairing.
pub(crate) fn fairing_missing(rocket: &rocket::Rocket<rocket::Ignite>, guard: &str) -> bool {
    let missing = rocket.state::<OAuth2State>().is_none();
    if missing {
        log::error!(
            "twisted-oauth2: a route uses `{guard}`{} but the OAuth2 fairing is not attached; \
             attach `twisted_oauth2::rocket::OAuth2::fairing()`",
            if guard == "Authorized" {
                " (#[oauth] inserts it)"
            } else {
                ""
            }
        );
    }
    missing
}

/// The request headers every preflight allows: what bearer clients (`Authorization`,
/// `DPoP`) and MCP clients of every revision send (`MCP-Protocol-Version`,
/// `Mcp-Session-Id` up to 2025-11-25; `Mcp-Method` and `Mcp-Name` since 2026-07-28).
const PREFLIGHT_HEADERS: &[&str] = &[
    "Authorization",
    "Content-Type",
    "DPoP",
    "MCP-Protocol-Version",
    "Mcp-Session-Id",
    "Mcp-Method",
    "Mcp-Name",
];

/// The prefix of the MCP 2026-07-28 headers mirroring tool parameters (`x-mcp-header`).
const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// At most this many `Mcp-Param-*` names of one preflight are echoed, each at most
/// [`MAX_PREFLIGHT_HEADER_NAME`] bytes; further or longer ones are left out (the browser
/// then refuses that request, as for any header not allowed).
const MAX_PREFLIGHT_PARAM_HEADERS: usize = 32;
const MAX_PREFLIGHT_HEADER_NAME: usize = 128;

/// The `Access-Control-Allow-Headers` of a preflight: [`PREFLIGHT_HEADERS`], then the
/// `Mcp-Param-*` names the browser asked for in `Access-Control-Request-Headers`. A prefix
/// cannot be allowed with a wildcard (and `*` never covers `Authorization`), so those are
/// echoed: only names that start with `Mcp-Param-` (any case), are RFC 9110 tokens, and
/// are within the bounds; every other requested name is allowed only if it is in the list.
pub(crate) fn preflight_allow_headers<'a>(requested: impl Iterator<Item = &'a str>) -> String {
    let mut allowed = PREFLIGHT_HEADERS.join(", ");
    let mut echoed: Vec<&str> = Vec::new();
    let names = requested.flat_map(|v| v.split(',')).map(str::trim);
    // Bounded whatever the header's size: a browser asks for a few names.
    for name in names.take(4 * MAX_PREFLIGHT_PARAM_HEADERS) {
        if echoed.len() == MAX_PREFLIGHT_PARAM_HEADERS {
            break;
        }
        let is_param = name.len() > MCP_PARAM_PREFIX.len()
            && name.len() <= MAX_PREFLIGHT_HEADER_NAME
            && name
                .get(..MCP_PARAM_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(MCP_PARAM_PREFIX))
            && name.bytes().all(is_tchar);
        if is_param && !echoed.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            echoed.push(name);
        }
    }
    for name in echoed {
        allowed.push_str(", ");
        allowed.push_str(name);
    }
    allowed
}

/// An RFC 9110 §5.6.2 `tchar`: the bytes of a header field name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::preflight_allow_headers;

    #[test]
    fn preflight_echoes_requested_mcp_param_headers_only_within_bounds() {
        let allowed = preflight_allow_headers(
            [
                "authorization, mcp-method, Mcp-Param-Region",
                "x-other, mcp-param-",
            ]
            .into_iter(),
        );
        assert!(
            allowed.ends_with(", Mcp-Method, Mcp-Name, Mcp-Param-Region"),
            "{allowed}"
        );
        assert!(
            !allowed.to_ascii_lowercase().contains("x-other"),
            "{allowed}"
        );
        assert!(!allowed.contains("mcp-param-,"), "{allowed}");

        let long = format!("mcp-param-{}", "a".repeat(200));
        let bad = preflight_allow_headers(
            [
                long.as_str(),
                "mcp-param-a b",
                "mcp-param-x\u{e9}",
                "mcp-param-r, MCP-PARAM-R",
            ]
            .into_iter(),
        );
        assert!(!bad.contains(&long) && !bad.contains("a b") && !bad.contains('\u{e9}'));
        assert_eq!(
            bad.matches("mcp-param-r").count() + bad.matches("MCP-PARAM-R").count(),
            1
        );

        let many: Vec<String> = (0..100).map(|i| format!("mcp-param-p{i}")).collect();
        let joined = many.join(",");
        let capped = preflight_allow_headers(std::iter::once(joined.as_str()));
        assert_eq!(capped.matches("mcp-param-").count(), 32);
    }
}
