//! The endpoint toolkit: the Rocket pieces every endpoint of the library is made of, public
//! so that an extension endpoint (mounted with [`OAuth2::endpoint`](super::OAuth2::endpoint)
//! or [`OAuth2::form_endpoint`](super::OAuth2::form_endpoint)) is built from the same
//! security-relevant code instead of re-implementing it.
//!
//! - **Form endpoints**: implement [`FormEndpoint`] and mount it with [`form_routes`] (or
//!   [`OAuth2::form_endpoint`](super::OAuth2::form_endpoint)). Its handler, [`FormHandler`],
//!   caps the query ([`capped_query`]) and body ([`read_body`]), works out the transport
//!   ([`transport`]) and the client address ([`client_ip`]), hands the core a
//!   [`FormRequest`] with its [`RequestContext`](crate::endpoint::RequestContext) and
//!   answers `200` JSON with `Cache-Control: no-store` ([`json`]), or the [`OAuthError`]
//!   with its own status and headers. Other methods get `405` with `Allow: POST`
//!   ([`MethodNotAllowed`]); a CORS endpoint gets its `OPTIONS` preflight ([`Preflight`]).
//! - **Client authentication** as at the token endpoint is
//!   [`authenticate_for_grant`](crate::endpoint::client_auth::authenticate_for_grant).
//! - **State**: the server is in the fairing's [`OAuth2State`] ([`server`]); an extension
//!   keeps its own state with
//!   [`AuthorizationServer::extension_state`](crate::server::AuthorizationServer::extension_state).
//!
//! ```
//! use twisted_oauth2::endpoint::FormRequest;
//! use twisted_oauth2::rocket::toolkit::{form_routes, FormEndpoint};
//! use twisted_oauth2::rocket::OAuth2;
//! use twisted_oauth2::server::AuthorizationServer;
//! use twisted_oauth2::OAuthError;
//!
//! /// `POST <base>/echo`: answers the form's `word` parameter.
//! struct Echo;
//!
//! #[rocket::async_trait]
//! impl FormEndpoint for Echo {
//!     async fn handle(
//!         &self,
//!         server: &AuthorizationServer,
//!         form: FormRequest<'_>,
//!     ) -> Result<String, OAuthError> {
//!         let params = form.params(server)?;
//!         let word = params.require("word")?;
//!         Ok(serde_json::json!({ "word": word }).to_string())
//!     }
//! }
//!
//! let fairing = OAuth2::fairing().form_endpoint("/echo", Echo);
//! # let _ = (fairing, form_routes("/echo", Echo));
//! ```

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::response::Response;
use rocket::route::{Handler, Outcome, Route};

use super::OAuth2State;
use crate::endpoint::{FormRequest, Transport};
use crate::error::OAuthError;
use crate::server::AuthorizationServer;

/// The server of the fairing's [`OAuth2State`], when the fairing is attached (it always is
/// for routes the fairing mounts).
/// `None` too in resource-server-only mode ([`OAuth2::resource_server`](super::OAuth2::resource_server)).
pub fn server<'r>(req: &'r Request<'_>) -> Option<&'r Arc<AuthorizationServer>> {
    req.rocket()
        .state::<OAuth2State>()
        .and_then(OAuth2State::server)
}

/// A form-POST endpoint (`application/x-www-form-urlencoded`, as the token, revocation and
/// introspection endpoints): [`FormHandler`] does the HTTP part, this the protocol.
#[rocket::async_trait]
pub trait FormEndpoint: Send + Sync + 'static {
    /// Whether browser-based clients may call it cross-origin (for the origins of
    /// `cors_allowed_origins`): an `OPTIONS` preflight is mounted and the answers carry
    /// `Access-Control-Allow-Origin`. Default: `false` (an endpoint only servers call,
    /// such as introspection).
    fn cors(&self) -> bool {
        false
    }

    /// Answers one request: `Ok` is the JSON body of a `200 OK` with
    /// `Cache-Control: no-store`; `Err` is answered with its own status and headers.
    /// [`FormRequest::params`] checks the content type, transport and parameter bounds.
    async fn handle(
        &self,
        server: &AuthorizationServer,
        form: FormRequest<'_>,
    ) -> Result<String, OAuthError>;
}

/// The Rocket [`Handler`] of a [`FormEndpoint`]: bounded query and body, transport and
/// client address per the server's proxy rules, the core's answer as `no-store` JSON.
pub struct FormHandler<E: ?Sized> {
    endpoint: Arc<E>,
}

impl<E: ?Sized> Clone for FormHandler<E> {
    fn clone(&self) -> Self {
        FormHandler {
            endpoint: self.endpoint.clone(),
        }
    }
}

impl<E: FormEndpoint> FormHandler<E> {
    /// The handler of `endpoint`.
    pub fn new(endpoint: E) -> Self {
        FormHandler {
            endpoint: Arc::new(endpoint),
        }
    }
}

impl<E: FormEndpoint + ?Sized> FormHandler<E> {
    /// The handler of a shared `endpoint`.
    pub fn shared(endpoint: Arc<E>) -> Self {
        FormHandler { endpoint }
    }
}

#[rocket::async_trait]
impl<E: FormEndpoint + ?Sized> Handler for FormHandler<E> {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let Some(server) = server(req) else {
            log::error!("twisted-oauth2: a form endpoint is mounted without the OAuth2 fairing");
            return Outcome::Error(Status::InternalServerError);
        };
        let server = &**server;
        if self.endpoint.cors() {
            allow_cors(req);
        }
        let query = match capped_query(req, server) {
            Ok(q) => q,
            Err(e) => return Outcome::from(req, e),
        };
        let body = match read_body(data, server.config().max_body_size).await {
            Ok(b) => b,
            Err(e) => return Outcome::from(req, e),
        };
        let t = transport(req, server);
        let headers = RocketHeaders(req.headers());
        let form = FormRequest::new(
            &body,
            req.headers().get_one("Content-Type"),
            req.headers().get_one("Authorization"),
            query,
            t,
        )
        .with_request(request_context(req, &headers, t));
        match self.endpoint.handle(server, form).await {
            Ok(body) => Outcome::Success(json(Status::Ok, body)),
            Err(e) => Outcome::from(req, e),
        }
    }
}

/// The routes of a form endpoint at `path` (under the endpoints' base path when given to
/// [`OAuth2::endpoints`](super::OAuth2::endpoints)): `POST` to `endpoint`, `405` with
/// `Allow: POST` for `GET`, `PUT`, `DELETE` and `PATCH`, and the `OPTIONS` preflight when
/// [`FormEndpoint::cors`].
pub fn form_routes(path: &str, endpoint: impl FormEndpoint) -> Vec<Route> {
    let cors = endpoint.cors();
    let mut routes = vec![Route::new(Method::Post, path, FormHandler::new(endpoint))];
    for m in [Method::Get, Method::Put, Method::Delete, Method::Patch] {
        routes.push(Route::new(m, path, MethodNotAllowed("POST")));
    }
    if cors {
        routes.push(Route::new(
            Method::Options,
            path,
            Preflight::new("POST, OPTIONS"),
        ));
    }
    routes
}

/// Marks this request as answered by an endpoint browsers may call cross-origin: the
/// fairing's response hook adds `Access-Control-Allow-Origin` for an allowed `Origin`
/// (`cors_allowed_origins`) and exposes `WWW-Authenticate`.
pub fn allow_cors(req: &Request<'_>) {
    req.local_cache(CorsEndpoint::default)
        .0
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A JSON answer with `status`, `Cache-Control: no-store` and `Pragma: no-cache`
/// (RFC 6749 §5.1).
pub fn json<'r>(status: Status, body: String) -> Response<'r> {
    super::response::json(status, body)
}

/// Any method an endpoint does not serve: `405 Method Not Allowed` with `Allow` set to the
/// methods it does serve (RFC 9110 §15.5.6) and an `invalid_request` JSON body.
#[derive(Clone, Copy, Debug)]
pub struct MethodNotAllowed(pub &'static str);

#[rocket::async_trait]
impl Handler for MethodNotAllowed {
    async fn handle<'r>(&self, _req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let e = OAuthError::invalid_request(format!("this endpoint accepts only {}", self.0));
        let mut res = json(Status::MethodNotAllowed, e.to_json());
        res.set_header(Header::new("Allow", self.0));
        Outcome::Success(res)
    }
}

/// Rocket's header map as the core's [`Headers`](crate::endpoint::Headers).
pub struct RocketHeaders<'a>(pub &'a rocket::http::HeaderMap<'a>);

impl crate::endpoint::Headers for RocketHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get_one(name)
    }

    fn get_all(&self, name: &str) -> Vec<&str> {
        self.0.get(name).collect()
    }
}

/// The core's view of a Rocket request: method, path, query, `Host`, headers, transport
/// and the client address ([`client_ip`]).
pub fn request_context<'a>(
    req: &'a Request<'_>,
    headers: &'a RocketHeaders<'a>,
    transport: Transport,
) -> crate::endpoint::RequestContext<'a> {
    let origin = req.uri();
    crate::endpoint::RequestContext::new(req.method().as_str(), origin.path().as_str(), transport)
        .with_query(origin.query().map(|q| q.as_str()))
        .with_host(req.headers().get_one("Host"))
        .with_client_ip(client_ip(req, server(req).map(|s| &**s)))
        .with_headers(headers)
}

/// The client address every limit keys on
/// ([`AuthorizationServer::client_address`]): the TCP peer, or what a trusted proxy says.
/// Never Rocket's `ip_header`, which any client can set.
pub fn client_ip(
    req: &Request<'_>,
    server: Option<&AuthorizationServer>,
) -> Option<std::net::IpAddr> {
    let peer = req.remote().map(|a| a.ip());
    match server {
        Some(s) => s.client_address(peer, req.headers().get(&s.config().client_ip_header)),
        None => peer,
    }
}

/// Whether the request reached us over TLS: Rocket's own TLS, or a configured trusted
/// proxy header (`trusted_proxy_header`) saying `https`.
pub fn transport(req: &Request<'_>, server: &AuthorizationServer) -> Transport {
    transport_with(req, server.config().trusted_proxy_header.as_deref())
}

/// [`transport`] with the trusted proxy header given (the guards read it from their
/// validator's request policy).
pub(crate) fn transport_with(req: &Request<'_>, trusted_proxy_header: Option<&str>) -> Transport {
    let secure = req.rocket().config().tls_enabled()
        || trusted_proxy_header
            .and_then(|h| req.headers().get_one(h))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    Transport { secure }
}

/// Reads a body up to `limit` bytes (the server's `max_body_size`); `Err` answers `413`
/// with `invalid_request`.
pub async fn read_body(data: Data<'_>, limit: u64) -> Result<Vec<u8>, OAuthError> {
    use rocket::data::ToByteUnit;
    match data.open(limit.bytes()).into_bytes().await {
        Ok(b) if b.is_complete() => Ok(b.into_inner()),
        Ok(_) => Err(OAuthError::body_too_large(limit)),
        Err(e) => {
            log::warn!("twisted-oauth2: could not read request body: {e}");
            Err(OAuthError::invalid_request(
                "the request body could not be read",
            ))
        }
    }
}

/// The request's URL query, refused when longer than `max_query_length` (`414`).
pub fn capped_query<'a>(
    req: &'a Request<'_>,
    server: &AuthorizationServer,
) -> Result<Option<&'a str>, OAuthError> {
    let limit = server.config().max_query_length;
    match req.uri().query() {
        Some(q) if q.as_str().len() as u64 > limit => Err(OAuthError::query_too_long(limit)),
        q => Ok(q.map(|q| q.as_str())),
    }
}

/// The `Access-Control-Allow-Origin` value for this request's `Origin` under the
/// configured `cors_allowed_origins`: `*`, the origin itself (listed exactly), or `None`
/// (no `Origin`, CORS off, or not listed).
pub fn cors_origin(req: &Request<'_>, server: &AuthorizationServer) -> Option<String> {
    cors_origin_in(req, &server.config().cors_allowed_origins)
}

/// [`cors_origin`] under the `allowed` origins.
pub(crate) fn cors_origin_in(req: &Request<'_>, allowed: &[String]) -> Option<String> {
    let origin = req.headers().get_one("Origin")?;
    if allowed.iter().any(|o| o == "*") {
        Some("*".to_owned())
    } else if allowed.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        Some(origin.to_owned())
    } else {
        None
    }
}

/// Marks a request answered by an endpoint that browsers may call cross-origin (token,
/// revocation, registration, discovery): the response hook adds the CORS headers.
#[derive(Default)]
pub(crate) struct CorsEndpoint(pub(crate) std::sync::atomic::AtomicBool);

/// The `OPTIONS` preflight of a CORS endpoint (no credentials: cookies are never needed):
/// `204` with `Access-Control-Allow-Methods` set to its methods and the request headers
/// bearer and MCP clients send, for the origins of `cors_allowed_origins`; `403` when the
/// route validates `Origin` and refuses this one.
#[derive(Clone, Debug)]
pub struct Preflight {
    methods: &'static str,
}

impl Preflight {
    /// The preflight of an endpoint serving `methods` (e.g. `"POST, OPTIONS"`).
    pub fn new(methods: &'static str) -> Self {
        Preflight { methods }
    }
}

#[rocket::async_trait]
impl Handler for Preflight {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let Some(state) = req.rocket().state::<OAuth2State>() else {
            return Outcome::Success(Response::build().status(Status::NoContent).finalize());
        };
        // A route with Origin validation gives a refused origin nothing to go on.
        if super::guard::check_origin(req, state).is_err() {
            let res = Response::build().status(Status::Forbidden).finalize();
            return Outcome::Success(res);
        }
        let mut res = Response::build().status(Status::NoContent).finalize();
        if let Some(origin) = state.cors_origin(req) {
            // The allowed headers echo the requested `Mcp-Param-*` names.
            res.set_header(Header::new(
                "Vary",
                if origin == "*" {
                    "Access-Control-Request-Headers"
                } else {
                    "Origin, Access-Control-Request-Headers"
                },
            ));
            res.set_header(Header::new("Access-Control-Allow-Origin", origin));
            res.set_header(Header::new("Access-Control-Allow-Methods", self.methods));
            res.set_header(Header::new(
                "Access-Control-Allow-Headers",
                super::preflight_allow_headers(req.headers().get("Access-Control-Request-Headers")),
            ));
            res.set_header(Header::new("Access-Control-Max-Age", "600"));
        }
        Outcome::Success(res)
    }
}
