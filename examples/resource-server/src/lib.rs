//! A small notes API protected by twisted-oauth2 against an **external** authorization
//! server (Keycloak, Auth0, Microsoft Entra ID, node-oidc-provider, …): the library runs in
//! resource-server-only mode (`[oauth2.resource_server]` in `Rocket.toml`), builds no
//! authorization server of its own, and checks each token with
//! [`RemoteValidator`](twisted_oauth2::remote::RemoteValidator): JWTs against the issuer's
//! JWKS, opaque tokens by RFC 7662 introspection.
//!
//! - `GET /health`: open.
//! - `GET /notes`: scope `notes:read`; answers who asked (`sub`, `client_id`, `scope`).
//! - `POST /notes`: scope `notes:write`; `201 Created`.
//! - `GET /.well-known/oauth-protected-resource/notes` (RFC 9728): names the external
//!   issuer; the `WWW-Authenticate` challenges point to it.

use rocket::figment::Figment;
use rocket::response::status::Created;
use rocket::serde::json::Json;
use rocket::{get, post, routes, Build, Rocket};
use serde_json::{json, Value};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{oauth, TokenInfo};

/// The longest note read, bytes.
const MAX_NOTE: u64 = 4 * 1024;

/// `GET /health`: open, for load balancers.
#[get("/health")]
fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Who the token speaks for.
fn caller(info: &TokenInfo) -> Value {
    json!({
        "sub": info.subject.as_deref(),
        "client_id": &*info.client_id,
        "scope": info.scope.to_string(),
    })
}

/// `GET /notes`: needs `notes:read`.
#[oauth(scope = "notes:read")]
#[get("/notes")]
fn list_notes(info: TokenInfo) -> Json<Value> {
    Json(caller(&info))
}

/// `POST /notes`: needs `notes:write`; the body (text, up to 4 KiB) is echoed back.
#[oauth(scope = "notes:write")]
#[post("/notes", data = "<note>")]
async fn create_note(info: TokenInfo, note: rocket::Data<'_>) -> Created<Json<Value>> {
    use rocket::data::ToByteUnit;
    let text = match note.open(MAX_NOTE.bytes()).into_string().await {
        Ok(s) => s.into_inner(),
        Err(_) => String::new(),
    };
    let mut body = caller(&info);
    body["note"] = Value::String(text);
    Created::new("/notes").body(Json(body))
}

/// The API on `figment` with the fairing read from its `oauth2` table.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    app(figment, OAuth2::fairing())
}

/// The API on `figment` with this `fairing` (tests give it a clock of their own).
pub fn app(figment: Figment, fairing: OAuth2) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![health, list_notes, create_note])
}
