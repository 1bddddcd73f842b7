//! The endpoints the fairing mounts, as Rocket [`Handler`]s holding the server: parse the
//! HTTP request into plain data, call the protocol core, answer with a responder.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::response::Responder;
use rocket::route::{Handler, Outcome, Route};

use super::consent::OnAuthenticate;
use super::decision::BrowserBinding;
use super::response::AuthorizeReply;
use super::toolkit::{form_routes, FormEndpoint, Preflight};
use super::OAuth2State;
use super::{capped_query, read_body, transport};
use crate::endpoint::authorize;
use crate::endpoint::metadata;
use crate::endpoint::{introspect, revoke, token, FormRequest};
use crate::error::OAuthError;
use crate::server::AuthorizationServer;

/// `POST <base>/token` (RFC 6749 §3.2).
pub(crate) struct TokenEndpoint;

#[rocket::async_trait]
impl FormEndpoint for TokenEndpoint {
    fn cors(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        server: &AuthorizationServer,
        form: FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        token::handle(server, form).await.map(|r| r.to_json())
    }
}

/// `POST <base>/revoke` (RFC 7009): `200 OK` with `{}` whether or not a token was revoked.
pub(crate) struct RevocationEndpoint;

#[rocket::async_trait]
impl FormEndpoint for RevocationEndpoint {
    fn cors(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        server: &AuthorizationServer,
        form: FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        revoke::handle(server, form).await.map(|()| "{}".to_owned())
    }
}

/// `POST <base>/introspect` (RFC 7662): the introspection JSON; not for browsers.
pub(crate) struct IntrospectionEndpoint;

#[rocket::async_trait]
impl FormEndpoint for IntrospectionEndpoint {
    async fn handle(
        &self,
        server: &AuthorizationServer,
        form: FormRequest<'_>,
    ) -> Result<String, OAuthError> {
        introspect::handle(server, form).await.map(|a| a.to_json())
    }
}

/// A public discovery document: `200 OK` JSON, readable cross-origin (browser-based
/// clients fetch it before they have any credentials).
fn document<'r>(body: String) -> Outcome<'r> {
    let res = rocket::Response::build()
        .status(Status::Ok)
        .header(rocket::http::ContentType::JSON)
        .header(Header::new("Access-Control-Allow-Origin", "*"))
        .sized_body(body.len(), std::io::Cursor::new(body))
        .finalize();
    Outcome::Success(res)
}

/// `GET /.well-known/oauth-authorization-server[/issuer path]` (RFC 8414): the document
/// is built once, at ignite.
#[derive(Clone)]
pub(crate) struct ServerMetadataHandler {
    doc: Arc<str>,
}

#[rocket::async_trait]
impl Handler for ServerMetadataHandler {
    async fn handle<'r>(&self, _req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        document(self.doc.to_string())
    }
}

/// `GET /.well-known/oauth-protected-resource[/resource path]` (RFC 9728), listing the
/// scopes the application's protected routes require.
#[derive(Clone)]
pub(crate) struct ResourceMetadataHandler(
    pub(crate) Arc<AuthorizationServer>,
    /// A route's own resource; `None`: the application's.
    pub(crate) Option<Arc<str>>,
);

#[rocket::async_trait]
impl Handler for ResourceMetadataHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let scopes = req
            .rocket()
            .state::<OAuth2State>()
            .map(OAuth2State::scopes_used)
            .unwrap_or_default();
        let doc = match &self.1 {
            Some(r) => metadata::protected_resource_metadata_for(&self.0, r, scopes),
            None => metadata::protected_resource_metadata(&self.0, scopes),
        };
        document(doc.to_json())
    }
}

/// `GET /.well-known/oauth-protected-resource[/resource path]` (RFC 9728) of a
/// resource-server-only fairing: the resource its validator describes, whose
/// `authorization_servers` are that validator's (an external issuer), listing the scopes
/// the protected routes require.
#[derive(Clone)]
pub(crate) struct RemoteResourceMetadataHandler(
    pub(crate) Arc<crate::validation::ProtectedResource>,
);

#[rocket::async_trait]
impl Handler for RemoteResourceMetadataHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let state = req.rocket().state::<OAuth2State>();
        let scopes = state.map(OAuth2State::scopes_used).unwrap_or_default();
        let mut bearer_methods = vec!["header".to_owned()];
        if state.is_some_and(|s| s.validator().request_policy().allow_access_token_in_query) {
            bearer_methods.push("query".to_owned());
        }
        let r = &self.0;
        let doc = metadata::ProtectedResourceMetadata {
            resource: r.resource.clone(),
            authorization_servers: r.authorization_servers.clone(),
            scopes_supported: scopes.into_iter().collect(),
            bearer_methods_supported: bearer_methods,
            resource_name: r.resource_name.clone(),
        };
        document(doc.to_json())
    }
}

/// Whether `path` can be mounted as a static Rocket route.
pub(crate) fn mountable(path: &str) -> bool {
    !path.contains(['<', '>'])
        && rocket::http::uri::Origin::parse(path).is_ok_and(|o| o.query().is_none())
}

/// The discovery routes, mounted at the application root. `Err` names a well-known path
/// that cannot be mounted (an issuer or resource path with characters Rocket refuses).
pub(crate) fn well_known_routes(
    server: &Arc<AuthorizationServer>,
    authorize_mounted: bool,
) -> Result<Vec<Route>, String> {
    let as_path = metadata::authorization_server_metadata_path(server);
    let rs_path = metadata::protected_resource_metadata_path(server);
    for p in [&as_path, &rs_path] {
        if !mountable(p) {
            return Err(format!(
                "the well-known path `{p}` derived from the issuer or resource cannot be mounted"
            ));
        }
    }
    let as_handler = ServerMetadataHandler {
        doc: metadata::authorization_server_metadata(server, authorize_mounted)
            .to_json()
            .into(),
    };
    let preflight = Preflight::new("GET, OPTIONS");
    let mut routes = vec![
        Route::new(Method::Get, &as_path, as_handler),
        Route::new(
            Method::Get,
            &rs_path,
            ResourceMetadataHandler(server.clone(), None),
        ),
        Route::new(Method::Options, &as_path, preflight.clone()),
        Route::new(Method::Options, &rs_path, preflight.clone()),
    ];
    // Each route that is a resource of its own has its document at its path-inserted URL.
    let mut mounted = vec![rs_path];
    for (_, resource) in server.resources().routes() {
        let path = metadata::well_known_path(resource, metadata::PROTECTED_RESOURCE_SUFFIX);
        if mounted.contains(&path) {
            continue;
        }
        if !mountable(&path) {
            return Err(format!(
                "the well-known path `{path}` derived from a route resource cannot be mounted"
            ));
        }
        routes.push(Route::new(
            Method::Get,
            &path,
            ResourceMetadataHandler(server.clone(), Some(resource.clone())),
        ));
        routes.push(Route::new(Method::Options, &path, preflight.clone()));
        mounted.push(path);
    }
    Ok(routes)
}

/// `GET` and `POST <base>/authorize`.
#[derive(Clone)]
pub(crate) struct AuthorizeHandler {
    pub(crate) server: Arc<AuthorizationServer>,
    pub(crate) on_authenticate: Arc<dyn OnAuthenticate>,
}

#[rocket::async_trait]
impl Handler for AuthorizeHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let server = &*self.server;
        let raw: Vec<u8> = if req.method() == Method::Post {
            if !crate::endpoint::is_form_content_type(req.headers().get_one("Content-Type")) {
                let e = OAuthError::invalid_request(
                    "the Content-Type must be application/x-www-form-urlencoded",
                );
                return Outcome::from(req, AuthorizeReply::Page(e));
            }
            match read_body(data, server.config().max_body_size).await {
                Ok(b) => b,
                Err(e) => return Outcome::from(req, AuthorizeReply::Page(e)),
            }
        } else {
            match capped_query(req, server) {
                Ok(q) => q.map(|q| q.as_bytes().to_vec()).unwrap_or_default(),
                Err(e) => return Outcome::from(req, AuthorizeReply::Page(e)),
            }
        };
        let binding = match BrowserBinding::of(req, server) {
            Ok(b) => b,
            Err(e) => return Outcome::from(req, AuthorizeReply::Page(e)),
        };
        let headers = super::RocketHeaders(req.headers());
        let request = super::request_context(req, &headers, transport(req, server));
        let pending =
            match authorize::validate_request(server, &raw, &request, binding.value()).await {
                Ok(p) => p,
                Err(e) => return Outcome::from(req, AuthorizeReply::from_error(e, Status::Found)),
            };
        // Only a stored pending request sets the cookie: error pages never do.
        binding.set(req, server);
        let request_id = pending.request_id.clone();
        match self
            .on_authenticate
            .on_authenticate(req, pending.clone())
            .await
        {
            Ok(consent) => match consent.respond_to(req) {
                Ok(res) => Outcome::Success(res),
                Err(status) => Outcome::Error(status),
            },
            Err(e) => {
                if let Err(de) = authorize::discard(server, &request_id).await {
                    log::warn!("twisted-oauth2: could not drop a refused pending request: {de}");
                }
                let reply = AuthorizeReply::from_error(
                    authorize::reject(server, &pending, e),
                    Status::Found,
                );
                Outcome::from(req, reply)
            }
        }
    }
}

/// The routes mounted under the base path: the form endpoints, and the authorization
/// endpoint when a consent hook is set.
pub(crate) fn routes(
    server: &Arc<AuthorizationServer>,
    on_auth: Option<Arc<dyn OnAuthenticate>>,
) -> Vec<Route> {
    let mut routes = form_routes("/token", TokenEndpoint);
    routes.extend(form_routes("/revoke", RevocationEndpoint));
    routes.extend(form_routes("/introspect", IntrospectionEndpoint));
    if let Some(on_auth) = on_auth {
        let h = AuthorizeHandler {
            server: server.clone(),
            on_authenticate: on_auth,
        };
        routes.push(Route::new(Method::Get, "/authorize", h.clone()));
        routes.push(Route::new(Method::Post, "/authorize", h));
    }
    routes
}
