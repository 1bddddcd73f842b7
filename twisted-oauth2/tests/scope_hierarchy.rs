//! Scope hierarchies (`scope_includes`; the MCP specification: servers MUST account for scope
//! hierarchies): a token granted an including scope opens routes requiring an included one,
//! through `#[oauth]`, the guards and introspection's scope, and RFC 9728 lists it. Before
//! `scope_includes`, `admin` opened nothing that required `a`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use serde_json::Value;
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{oauth, ServerConfig};

#[oauth(scope = "a")]
#[get("/a")]
fn needs_a() -> &'static str {
    "a"
}

#[oauth(scope = "read")]
#[get("/read")]
fn needs_read() -> &'static str {
    "read"
}

async fn app() -> Client {
    let mut cfg = ServerConfig {
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        scope_includes: BTreeMap::from([
            ("admin".to_owned(), vec!["a".to_owned(), "write".to_owned()]),
            ("write".to_owned(), vec!["read".to_owned()]),
        ]),
        ..common::config()
    };
    cfg.clients.push(common::client(
        "boss",
        Some("boss-secret"),
        &["client_credentials"],
        &["admin", "b"],
    ));
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(Arc::new(FixedClock::at(common::T0)))
                .on_authenticate(common::NoConsent),
        )
        .mount("/", routes![needs_a, needs_read]);
    Client::untracked(rocket).await.unwrap()
}

async fn token(c: &Client, scope: &str) -> String {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new(
            "Authorization",
            common::basic("boss", "boss-secret"),
        ))
        .body(format!("grant_type=client_credentials&scope={scope}"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn get(c: &Client, path: &str, token: &str) -> (Status, Option<String>) {
    let r = c
        .get(path.to_owned())
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    (
        r.status(),
        r.headers().get_one("WWW-Authenticate").map(str::to_owned),
    )
}

#[rocket::async_test]
async fn an_including_scope_opens_routes_requiring_the_included_ones_transitively() {
    let c = app().await;
    let admin = token(&c, "admin").await;
    assert_eq!(get(&c, "/a", &admin).await.0, Status::Ok);
    assert_eq!(
        get(&c, "/read", &admin).await.0,
        Status::Ok,
        "admin → write → read"
    );
    let b = token(&c, "b").await;
    let (status, challenge) = get(&c, "/a", &b).await;
    assert_eq!(status, Status::Forbidden);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"a\""),
        "the step-up challenge names the required scope: {challenge}"
    );
}

#[rocket::async_test]
async fn protected_resource_metadata_lists_the_including_scopes() {
    let c = app().await;
    let r = c
        .get("/.well-known/oauth-protected-resource")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .dispatch()
        .await;
    let doc: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let scopes: Vec<&str> = doc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["a", "admin", "read", "write"]);
}

#[test]
fn a_bad_scope_token_in_scope_includes_is_a_configuration_error() {
    let cfg = ServerConfig {
        issuer: "https://as.example".into(),
        scope_includes: BTreeMap::from([("admin".to_owned(), vec!["a b".to_owned()])]),
        ..Default::default()
    };
    let e = twisted_oauth2::AuthorizationServer::builder(cfg)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("scope_includes"), "{e}");
}
