//! Load-test server for `bench/run.sh`: the library's endpoints and `#[oauth]` routes beside
//! the same routes without the library, in one binary, with request logging off.
//!
//! Usage: `twisted-oauth2-bench [port]` (127.0.0.1, default 8300). Client `bench` /
//! `bench-secret` may use `client_credentials` with scopes `read write`.

use rocket::form::{Form, FromForm};
use rocket::http::{ContentType, Header};
use rocket::response::Responder;
use rocket::{get, post, routes};
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::oauth;
use twisted_oauth2::rocket::OAuth2;

/// `GET /protected`: needs a token with scope `read`.
#[oauth(scope = "read")]
#[get("/protected")]
fn protected() -> &'static str {
    "protected resource\n"
}

/// `GET /open`: the same handler without protection (the ceiling for `/protected`).
#[get("/open")]
fn open() -> &'static str {
    "protected resource\n"
}

#[derive(FromForm)]
struct TokenLikeForm<'r> {
    grant_type: &'r str,
    scope: Option<&'r str>,
}

/// A bare form-POST route of similar shape to the token endpoint (its ceiling): parses the
/// form, answers a small JSON body with no-store.
#[derive(Responder)]
#[response(content_type = "json")]
struct Json(String, Header<'static>);

#[post("/form", data = "<form>")]
fn form(form: Form<TokenLikeForm<'_>>) -> Json {
    Json(
        format!(
            "{{\"access_token\":\"{}\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"{}\"}}",
            form.grant_type,
            form.scope.unwrap_or("")
        ),
        Header::new("Cache-Control", "no-store"),
    )
}

#[rocket::launch]
fn launch() -> _ {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8300);
    let client = ClientConfig {
        id: "bench".into(),
        secret: Some("bench-secret".into()),
        grant_types: vec!["client_credentials".into()],
        scopes: Some(vec!["read".into(), "write".into()]),
        ..Default::default()
    };
    let cfg = ServerConfig {
        issuer: format!("http://127.0.0.1:{port}"),
        allow_insecure_request_debug: true,
        clients: vec![client],
        ..Default::default()
    };
    // A release build needs a secret_key (the binding cookie is sealed with it): the bench
    // makes a random one.
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let figment = rocket::Config::figment()
        .merge(("secret_key", key))
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge((
            "log_level",
            std::env::var("ROCKET_LOG_LEVEL").unwrap_or_else(|_| "off".into()),
        ));
    let _ = ContentType::JSON;
    rocket::custom(figment)
        .attach(OAuth2::fairing().config(cfg))
        .mount("/", routes![protected, open, form])
}
