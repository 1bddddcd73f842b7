//! The endpoints the fairing mounts, as Rocket [`Handler`]s holding the server: parse the
//! HTTP request into plain data, call the protocol core, answer with a responder.

use std::sync::Arc;

use rocket::data::{Data, ToByteUnit};
use rocket::http::{Header, Method, Status};
use rocket::request::Request;
use rocket::response::Responder;
use rocket::route::{Handler, Outcome, Route};

use super::consent::{binding_cookie, OnAuthenticate};
use super::response::{json, AuthorizeReply};
use super::transport;
use crate::endpoint::authorize;
use crate::endpoint::token::{self, TokenRequest};
use crate::error::OAuthError;
use crate::server::AuthorizationServer;

/// Reads a body up to `limit` bytes; `Err` answers 413 with `invalid_request`.
pub(crate) async fn read_body<'r>(data: Data<'r>, limit: u64) -> Result<Vec<u8>, OAuthError> {
    match data.open(limit.bytes()).into_bytes().await {
        Ok(b) if b.is_complete() => Ok(b.into_inner()),
        Ok(_) => Err(OAuthError::invalid_request("the request body is too large")),
        Err(e) => {
            log::warn!("twisted-oauth2: could not read request body: {e}");
            Err(OAuthError::invalid_request(
                "the request body could not be read",
            ))
        }
    }
}

/// Answers an error, with `413 Payload Too Large` for an oversize body.
fn body_error<'r>(req: &'r Request<'_>, e: OAuthError) -> Outcome<'r> {
    if e.description() == Some("the request body is too large") {
        return Outcome::Success(json(Status::PayloadTooLarge, e.to_json()));
    }
    Outcome::from(req, e)
}

/// `POST <base>/token`.
#[derive(Clone)]
pub(crate) struct TokenHandler(pub(crate) Arc<AuthorizationServer>);

#[rocket::async_trait]
impl Handler for TokenHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let server = &*self.0;
        let body = match read_body(data, server.config().max_body_size).await {
            Ok(b) => b,
            Err(e) => return body_error(req, e),
        };
        let ct = req.headers().get_one("Content-Type");
        let treq = TokenRequest {
            body: &body,
            content_type: ct,
            authorization: req.headers().get_one("Authorization"),
            query: req.uri().query().map(|q| q.as_str()),
            transport: transport(req, server),
        };
        match token::handle(server, treq).await {
            Ok(r) => Outcome::from(req, r),
            Err(e) => Outcome::from(req, e),
        }
    }
}

/// Any other method on a POST-only endpoint: `405` with `Allow: POST`.
#[derive(Clone)]
pub(crate) struct PostOnly;

#[rocket::async_trait]
impl Handler for PostOnly {
    async fn handle<'r>(&self, _req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let e = OAuthError::invalid_request("this endpoint accepts only POST");
        let mut res = json(Status::MethodNotAllowed, e.to_json());
        res.set_header(Header::new("Allow", "POST"));
        Outcome::Success(res)
    }
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
            req.uri()
                .query()
                .map(|q| q.as_str().as_bytes().to_vec())
                .unwrap_or_default()
        };
        let binding = match binding_cookie(req, server) {
            Ok(b) => b,
            Err(e) => return Outcome::from(req, AuthorizeReply::Page(e)),
        };
        let pending =
            match authorize::validate(server, &raw, transport(req, server), &binding).await {
                Ok(p) => p,
                Err(e) => return Outcome::from(req, AuthorizeReply::from_error(e, Status::Found)),
            };
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
                let _ = server
                    .stores()
                    .pending
                    .take_pending(&crate::token::TokenDigest::of(&request_id))
                    .await;
                let reply = AuthorizeReply::from_error(
                    authorize::reject(server, &pending, e),
                    Status::Found,
                );
                Outcome::from(req, reply)
            }
        }
    }
}

/// The routes mounted under the base path.
pub(crate) fn routes(
    server: &Arc<AuthorizationServer>,
    on_auth: Option<Arc<dyn OnAuthenticate>>,
) -> Vec<Route> {
    let mut routes = vec![Route::new(
        Method::Post,
        "/token",
        TokenHandler(server.clone()),
    )];
    for m in [Method::Get, Method::Put, Method::Delete, Method::Patch] {
        routes.push(Route::new(m, "/token", PostOnly));
    }
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
