//! Dynamic client registration (RFC 7591) and management (RFC 7592) as Rocket handlers over
//! [`crate::endpoint::register`]; mounted only when `registration.enabled` is set.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::route::{Handler, Outcome, Route};

use super::response::json;
use super::{read_body, transport};
use crate::endpoint::register::{self, RegistrationRequest};
use crate::server::AuthorizationServer;

/// Which registration operation a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Register,
    Read,
    Update,
    Delete,
}

#[derive(Clone)]
struct RegisterHandler {
    server: Arc<AuthorizationServer>,
    op: Op,
}

#[rocket::async_trait]
impl Handler for RegisterHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let server = &*self.server;
        // Browser-based clients (MCP Inspector, web agents) register cross-origin.
        req.local_cache(super::CorsEndpoint::default)
            .0
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let body = if matches!(self.op, Op::Register | Op::Update) {
            match read_body(data, server.config().max_body_size).await {
                Ok(b) => b,
                Err(e) => return Outcome::from(req, e),
            }
        } else {
            Vec::new()
        };
        let r = RegistrationRequest {
            body: &body,
            content_type: req.headers().get_one("Content-Type"),
            authorization: req.headers().get_one("Authorization"),
            transport: transport(req, server),
            client_ip: super::client_ip(req, Some(server)),
        };
        // `/register/<client_id>`: the segment after `register`. A registered id is never a
        // client ID metadata document URL: such an id is answered as an unknown one (no
        // client has the empty id) instead of having its document fetched.
        let id = req
            .routed_segment(1)
            .filter(|id| !crate::client_metadata::is_metadata_document_url(id))
            .unwrap_or("");
        let answer = match self.op {
            Op::Register => register::register(server, r)
                .await
                .map(|i| (Status::Created, Some(i.to_json()))),
            Op::Read => register::read(server, id, r)
                .await
                .map(|i| (Status::Ok, Some(i.to_json()))),
            Op::Update => register::update(server, id, r)
                .await
                .map(|i| (Status::Ok, Some(i.to_json()))),
            Op::Delete => register::delete(server, id, r)
                .await
                .map(|()| (Status::NoContent, None)),
        };
        match answer {
            Ok((status, Some(body))) => Outcome::Success(json(status, body)),
            Ok((status, None)) => {
                let mut res = rocket::Response::build().status(status).finalize();
                res.set_header(rocket::http::Header::new("Cache-Control", "no-store"));
                Outcome::Success(res)
            }
            Err(e) => Outcome::from(req, e),
        }
    }
}

/// `POST /register` and `GET`/`PUT`/`DELETE /register/<client_id>` (under the base path).
pub(crate) fn routes(server: &Arc<AuthorizationServer>) -> Vec<Route> {
    let h = |op| RegisterHandler {
        server: server.clone(),
        op,
    };
    let mut routes = vec![
        Route::new(Method::Post, "/register", h(Op::Register)),
        Route::new(Method::Get, "/register/<client_id>", h(Op::Read)),
        Route::new(Method::Put, "/register/<client_id>", h(Op::Update)),
        Route::new(Method::Delete, "/register/<client_id>", h(Op::Delete)),
        Route::new(
            Method::Options,
            "/register",
            super::Preflight {
                server: server.clone(),
                methods: "POST, OPTIONS",
            },
        ),
        Route::new(
            Method::Options,
            "/register/<client_id>",
            super::Preflight {
                server: server.clone(),
                methods: "GET, PUT, DELETE, OPTIONS",
            },
        ),
    ];
    // Registration is POST only (RFC 7591 §3); management has its own methods.
    for m in [Method::Get, Method::Put, Method::Delete, Method::Patch] {
        routes.push(Route::new(m, "/register", super::routes::PostOnly));
    }
    routes.push(Route::new(
        Method::Post,
        "/register/<client_id>",
        MethodNotAllowed("GET, PUT, DELETE"),
    ));
    routes.push(Route::new(
        Method::Patch,
        "/register/<client_id>",
        MethodNotAllowed("GET, PUT, DELETE"),
    ));
    routes
}

/// Another method than the client configuration endpoint's (RFC 7592 §2): `405` with
/// `Allow`.
#[derive(Clone, Copy)]
struct MethodNotAllowed(&'static str);

#[rocket::async_trait]
impl Handler for MethodNotAllowed {
    async fn handle<'r>(&self, _req: &'r Request<'_>, _data: Data<'r>) -> Outcome<'r> {
        let e =
            crate::OAuthError::invalid_request(format!("this endpoint accepts only {}", self.0));
        let mut res = json(Status::MethodNotAllowed, e.to_json());
        res.set_header(rocket::http::Header::new("Allow", self.0));
        Outcome::Success(res)
    }
}
