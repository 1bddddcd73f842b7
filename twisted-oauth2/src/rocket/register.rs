//! Dynamic client registration (RFC 7591) and management (RFC 7592) as Rocket handlers over
//! [`crate::endpoint::register`]; mounted only when `registration.enabled` is set.

use rocket::data::Data;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::route::{Handler, Outcome, Route};

use super::toolkit::{self, allow_cors, client_ip, json, read_body, transport};
use super::toolkit::{MethodNotAllowed, Preflight};
use crate::endpoint::register::{self, RegistrationRequest};

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
    op: Op,
}

#[rocket::async_trait]
impl Handler for RegisterHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let Some(server) = toolkit::server(req) else {
            return Outcome::Error(Status::InternalServerError);
        };
        let server = &**server;
        // Browser-based clients (MCP Inspector, web agents) register cross-origin.
        allow_cors(req);
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
            client_ip: client_ip(req, Some(server)),
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

/// `POST /register` and `GET`/`PUT`/`DELETE /register/<client_id>` (under the base path),
/// with their preflights and `405` answers: mounted by the fairing as extension endpoints
/// when `registration.enabled` is set.
pub(crate) fn routes() -> Vec<Route> {
    let h = |op| RegisterHandler { op };
    let mut routes = vec![
        Route::new(Method::Post, "/register", h(Op::Register)),
        Route::new(Method::Get, "/register/<client_id>", h(Op::Read)),
        Route::new(Method::Put, "/register/<client_id>", h(Op::Update)),
        Route::new(Method::Delete, "/register/<client_id>", h(Op::Delete)),
        Route::new(
            Method::Options,
            "/register",
            Preflight::new("POST, OPTIONS"),
        ),
        Route::new(
            Method::Options,
            "/register/<client_id>",
            Preflight::new("GET, PUT, DELETE, OPTIONS"),
        ),
    ];
    // Registration is POST only (RFC 7591 §3); management has its own methods.
    for m in [Method::Get, Method::Put, Method::Delete, Method::Patch] {
        routes.push(Route::new(m, "/register", MethodNotAllowed("POST")));
    }
    for m in [Method::Post, Method::Patch] {
        routes.push(Route::new(
            m,
            "/register/<client_id>",
            MethodNotAllowed("GET, PUT, DELETE"),
        ));
    }
    routes
}
